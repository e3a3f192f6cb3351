"""``reclaim crosscheck --replay`` and ``reclaim crosscheck --trace FILE --vm ARCH``: the
replay oracle's command line (:mod:`reclaim.crosscheck.replay`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import reclaim
from reclaim import tracegen
from reclaim.trace import Trace


def add_arguments(cc: argparse.ArgumentParser) -> None:
    """The replay oracle's options of ``reclaim crosscheck``."""
    g = cc.add_argument_group(
        "trace replay against a Linux 6.12 guest (issue 18; needs reclaim vm fetch)"
    )
    g.add_argument("--replay", action="store_true", help="run the replay matrix")
    g.add_argument("--trace", help="replay this trace file (any format reclaim reads) once")
    g.add_argument("--guest-memory", default="256MiB", help="the guest's memory (--trace)")
    g.add_argument("--page-cluster", type=int, default=0, help="vm.page-cluster (0 or 3)")
    g.add_argument("--lru-gen", choices=("on", "off"), default="off", help="MGLRU")
    g.add_argument(
        "--watermark-boost-factor",
        type=int,
        metavar="N",
        help="the guest's vm.watermark_boost_factor (default the kernel's 15000; 0: no "
        "watermark boosting, which the model does not have)",
    )
    g.add_argument("--runs", type=int, default=3, help="kernel runs per setting (spread)")
    g.add_argument("--shmem", action="store_true", help="map shmem, not private anon memory")
    g.add_argument(
        "--patterns", help=f"matrix traces, comma-separated ({','.join(tracegen.PATTERNS)})"
    )
    g.add_argument("--fractions", default="0.25,0.5", help="matrix memory sizes, of the pages")
    g.add_argument("--requests", type=int, default=200_000, help="matrix trace requests")
    g.add_argument("--pages", type=int, default=20_000, help="matrix trace pages")
    g.add_argument("--plot", help="write the miss-ratio plot to this PNG file")
    g.add_argument(
        "--results",
        action="append",
        help="table and plot results saved with --json (repeatable; no guest runs)",
    )


def dense(trace: Trace) -> Trace:
    """The trace with its keys renumbered 0.. in order of first appearance's rank (sorted),
    so that a sparse trace maps as many pages as it has distinct keys."""
    uniq, inv = np.unique(trace.keys, return_inverse=True)
    del uniq
    return Trace(trace.format, inv.astype(np.uint64), trace.writes, trace.times)


def cmd(args: argparse.Namespace) -> int:
    """Run the replay oracle as the options say; print the table (or JSON)."""
    from reclaim.crosscheck import replay as rp

    def note(s: str) -> None:
        if not args.json:
            print(f"  {s}", file=sys.stderr, flush=True)

    if args.results:
        checks = []
        for f in args.results:
            try:
                saved = json.loads(Path(f).read_text())
            except (OSError, ValueError) as e:
                raise reclaim.ArgumentError(
                    f"--results {f}: not a saved --json output ({e})"
                ) from e
            saved = saved if isinstance(saved, list) else [saved]
            checks += [rp.ReplayCheck.from_dict(d) for d in saved]
    elif args.trace:
        if not args.vm:
            raise reclaim.ArgumentError("--trace needs --vm x86_64 or --vm s390x")
        trace = dense(reclaim.trace.read(args.trace))
        mib = reclaim.units.size(args.guest_memory, "--guest-memory") >> 20
        checks = [
            rp.run_trace(
                trace,
                Path(args.trace).stem,
                arch=args.vm,
                guest_memory_mib=mib,
                page_cluster=args.page_cluster,
                lru_gen=args.lru_gen,
                runs=args.runs,
                shmem=args.shmem,
                watermark_boost_factor=args.watermark_boost_factor,
                accel=args.accel,
                on_line=note,
            )
        ]
    else:
        patterns = args.patterns.split(",") if args.patterns else list(tracegen.PATTERNS)
        fractions = [float(f) for f in args.fractions.split(",")]
        checks = rp.run_matrix(
            arches=[args.vm] if args.vm else ["x86_64"],
            traces=patterns,
            fractions=fractions,
            requests=args.requests,
            pages=args.pages,
            page_clusters=[args.page_cluster],
            lru_gens=[args.lru_gen],
            runs=args.runs,
            watermark_boost_factor=args.watermark_boost_factor,
            on_check=lambda c: note(f"{c.trace} {c.arch} {c.guest_memory_mib} MiB done"),
            on_line=note,
        )
    if args.plot:
        rp.plot(checks, Path(args.plot))
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=1, default=str))
    else:
        print(rp.format_table(checks))
    return 0
