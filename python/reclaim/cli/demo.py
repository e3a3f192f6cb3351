"""``reclaim demo``: the seed bug on 4.17 next to its fix on 4.18."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reclaim.cli.common import (
    Progress,
    Subparsers,
    integer,
    postcopy_row,
    print_chain,
    print_table,
    report_failures,
)
from reclaim.output import png_path
from reclaim.studies.postcopy import postcopy


def cmd_demo(args: argparse.Namespace) -> int:
    """``reclaim demo``: the postcopy study on 4.17 (the seed bug: the migration hangs) next to
    4.18 (the fix), and 4.18 with a guest that frees cold pages: a table, the causal chain of
    the hang and a timeline plot (unless --no-plot). Returns 0, or 1 if a run failed."""
    plot = None if args.no_plot else png_path(args.plot, "--plot")  # refused before the runs
    runs = [
        ("4.17 (before the fix)", "4.17", {}),
        ("4.18 (the fix)", "4.18", {}),
        ("4.18, guest frees cold pages", "4.18", {"free_policy": "random"}),
    ]
    results = []
    for label, profile, extra in runs:
        p = Progress(label, not args.json)
        results.append((label, postcopy(profile, seed=args.seed, progress=p, **extra)))
        p.close()
    rows = [postcopy_row(r, label) for label, r in results]
    plot_path: Path | None = None
    if plot is not None:
        from reclaim.plot import timeline

        plot_path = timeline([r for _, r in results], plot)
    if args.json:
        out = {"runs": rows, "plot": str(plot_path) if plot_path else None}
        print(json.dumps(out, indent=2, default=str))
        return report_failures(rows, text=False)
    print("Postcopy migration of a 256 MiB s390 KVM guest to a host with less free memory")
    print(f"(QEMU 3.0 logic, seed {args.seed}); the same workload on each kernel profile:\n")
    print_table(rows)
    print_chain(rows[0])
    print("\n4.17: host reclaim drops a received page the guest marked UNUSED (pte_unused); the")
    print("guest reuses it, the userfault asks QEMU for a page it already sent: the vCPU hangs.")
    print("4.18: the page in an armed VMA goes to swap instead; the guest's touch is a swap-in.")
    third = rows[2]
    if third["outcome"] == "hung":
        print("4.18 with cold frees: still hangs, through the CBRL (ESSA on a swapped-out page,")
        print("__gmap_zap → ptep_zap_unused, no userfaultfd check): a residual path,")
        print("see FINDINGS.md.")
    if plot_path:
        print(f"\ntimeline plot: {plot_path}")
    return report_failures(rows, text=True)


def add_parser(sub: Subparsers) -> None:
    """Add ``demo`` and its options to the subcommands."""
    d = sub.add_parser(
        "demo",
        help="the seed bug on 4.17 and its fix on 4.18, side by side",
        epilog="example: reclaim demo --seed 3 --plot /tmp/demo.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--seed", type=integer(), default=0, help="the seed of every run (default 0)")
    d.add_argument("--plot", default="reclaim-demo.png", help="where to write the timeline PNG")
    d.add_argument("--no-plot", action="store_true", help="do not write the plot")
    d.set_defaults(func=cmd_demo)
