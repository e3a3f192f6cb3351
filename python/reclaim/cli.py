"""The ``reclaim`` command line.

Errors are one readable line on stderr (exit code 2 for bad input, 1 for a failed run); no
traceback reaches the user for a ReclaimError.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import reclaim

EPILOG = """examples:
  reclaim demo                 the 2018 seed bug on "4.17" next to its fix on "4.18"
  reclaim demo --json          the same, machine-readable
"""


def _seed_unit(profile: str) -> dict[str, object]:
    """The seed chain at unit level on one profile, from the engine's mechanisms."""
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap="16MiB", seed=0)
    qemu = k.spawn("qemu-system-s390x", kvm=True)
    ram = qemu.mmap(4 * 4096)
    for i in range(4):
        qemu.write(ram + i * 4096, 0x1000 + i)
    uffd = qemu.userfaultfd()
    uffd.register(ram, 4 * 4096, missing=True)
    qemu.essa(ram, "set_unused")
    k.reclaim(4)
    state_after_reclaim = qemu.page_state(ram)
    qemu.essa(ram, "set_stable")
    access = qemu.read(ram)
    k.check()
    return {
        "profile": profile,
        "pte_after_reclaim": state_after_reclaim,
        "guest_reuse": access.kind,
        "userfault": access.blocked,
        "pte_unused_dropped": k.vmstat()["model_pte_unused_dropped"],
        "swapped": qemu.rss()["MM_SWAPENTS"],
    }


def cmd_demo(args: argparse.Namespace) -> int:
    rows = [_seed_unit(p) for p in ("4.17", "4.18")]
    if args.json:
        import json

        print(json.dumps(rows, indent=2))
        return 0
    print("The seed chain at unit level: a KVM guest page, received during postcopy")
    print("(registered with userfaultfd MISSING), marked UNUSED by the guest (ESSA), picked by")
    print("host reclaim, then reused by the guest.\n")
    print(f"{'profile':8} {'PTE after reclaim':18} {'dropped':8} {'guest reuse':12}")
    for r in rows:
        print(
            f"{r['profile']!s:8} {r['pte_after_reclaim']!s:18} "
            f"{r['pte_unused_dropped']!s:8} {r['guest_reuse']!s:12}"
        )
    print(
        "\n4.17 drops the page (pte_unused) and the guest's next touch is a userfault for a page"
        "\nQEMU already sent; 4.18 swaps it (userfaultfd_armed) and the touch is a swap-in."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reclaim",
        description="An executable model of Linux memory reclaim on s390.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"reclaim {reclaim.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="the seed bug on 4.17 and its fix on 4.18, side by side")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc: int = args.func(args)
        return rc
    except reclaim.ArgumentError as e:
        print(f"reclaim: error: {e}", file=sys.stderr)
        return 2
    except reclaim.ReclaimError as e:
        print(f"reclaim: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
