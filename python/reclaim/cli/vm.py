"""``reclaim vm fetch`` and ``reclaim crosscheck --vm ARCH``: the command-line side of the VM
oracle (:mod:`reclaim.vm`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from reclaim.cli.common import Subparsers
from reclaim.vm.assets import DEBIAN_ARCH, cache_dir, fetch, fetch_kernel_source, manifest_path

#: How ``reclaim vm`` is described in ``reclaim --help``.
HELP = "the VM oracle's assets: QEMU, cross compiler, Debian's Linux 6.12 kernels (fetch)"


def add_parser(sub: Subparsers) -> None:
    """Register ``reclaim vm fetch`` on the command's subparsers."""
    vm = sub.add_parser(
        "vm",
        help=HELP,
        epilog="example: reclaim vm fetch   (as root: installs QEMU and the cross compiler)",
    )
    vsub = vm.add_subparsers(dest="vm_command")
    f = vsub.add_parser(
        "fetch",
        help="install QEMU and the s390x cross compiler, download the kernels and busybox, "
        "build the agent (cached)",
    )
    f.add_argument(
        "--arch",
        action="append",
        choices=list(DEBIAN_ARCH),
        help="only this guest arch (repeatable; default both)",
    )
    f.add_argument(
        "--refresh", action="store_true", help="re-read the package lists, take newer packages"
    )
    f.add_argument("--json", action="store_true", help="print the manifest as JSON")
    f.add_argument(
        "--kernel-source",
        action="store_true",
        help="also download Debian's linux-source-6.12 of the guest kernel's version and unpack "
        "the parts the fidelity audit reads (mm/, include/, arch/s390/, ...) into the cache",
    )
    f.set_defaults(func=cmd_vm_fetch)

    def usage(_args: argparse.Namespace) -> int:
        vm.print_help()
        return 2

    vm.set_defaults(func=usage)


def cmd_vm_fetch(args: argparse.Namespace) -> int:
    """``reclaim vm fetch``: install and download the VM assets; print what was used."""
    t0 = time.monotonic()
    m = fetch(args.arch, refresh=args.refresh, log=lambda s: print(s, file=sys.stderr))
    src = None
    if getattr(args, "kernel_source", False):
        arch = (args.arch or list(DEBIAN_ARCH))[0]
        src = fetch_kernel_source(
            arch=arch, refresh=args.refresh, log=lambda s: print(s, file=sys.stderr)
        )
    took = time.monotonic() - t0
    if args.json:
        print(m.to_json())
        return 0
    for arch in args.arch or list(DEBIAN_ARCH):
        print(f"{arch}: {m.cite(arch)}")
    if src is not None:
        print(f"kernel source: {src}")
    print(f"manifest: {manifest_path()} (cache {cache_dir()}), {took:.1f} s")
    return 0


def cmd_crosscheck_vm(
    args: argparse.Namespace, progress: Callable[[int, int], object] | None = None
) -> int:
    """``reclaim crosscheck --vm ARCH``: the scenario library in a Linux 6.12 guest against
    the model (same arch, profile 6.12). Returns 1 if a scenario disagrees in a way that is
    not a documented difference (see :data:`reclaim.crosscheck.vm.KNOWN_DIFFERENCES`)."""
    from reclaim.crosscheck import format_table
    from reclaim.crosscheck.vm import crosscheck_vm, known_difference

    rows, vm = crosscheck_vm(args.vm, args.scenario, progress=progress, accel=args.accel)
    run = vm.run
    head = {
        "arch": args.vm,
        "kernel": run.manifest if run else "",
        "release": vm.info.get("release"),
        "lru_gen_at_boot": vm.info.get("lru_gen_boot"),
        "lru_gen": vm.info.get("lru_gen"),
        "thp": vm.info.get("thp"),
        "accel": args.accel,
        "boot_s": round(run.boot_s, 1) if run else None,
        "total_s": round(run.total_s, 1) if run else None,
        "manifest": str(manifest_path()),
    }
    unexplained = [
        r for r in rows if not r.agree and not r.skipped and not known_difference(args.vm, r)
    ]
    if args.json:
        out = {
            "guest": head,
            "rows": [{**r.__dict__, "known": known_difference(args.vm, r)} for r in rows],
        }
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"guest: {head['kernel']}")
        print(
            f"       {head['release']}, lru_gen {head['lru_gen_at_boot']} at boot -> "
            f"{head['lru_gen']}, {args.accel}, boot {head['boot_s']} s, "
            f"whole run {head['total_s']} s"
        )
        print(format_table(rows))
        for r in rows:
            why = known_difference(args.vm, r)
            if why:
                print(f"known difference {r.scenario}: {why}")
    if run is not None and not run.finished:
        tail = "\n".join(run.log[-20:])
        print(f"the guest did not finish (QEMU exit {run.returncode}):\n{tail}", file=sys.stderr)
        return 1
    return 1 if unexplained else 0


__all__ = ["HELP", "add_parser", "cmd_crosscheck_vm", "cmd_vm_fetch"]
