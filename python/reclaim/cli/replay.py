"""``reclaim replay``: a memory-access trace replayed under memory pressure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reclaim.cli.common import Progress, Subparsers, integer
from reclaim.variants import add_variant_options


def cmd_replay(args: argparse.Namespace) -> int:
    """``reclaim replay``: replay a memory-access trace under memory pressure and print the
    hits, faults and reclaim counts. Returns the exit code."""
    from reclaim.trace import replay
    from reclaim.variants import resolve_cli_profile

    args.profile = resolve_cli_profile(args, args.profile)
    p = Progress(Path(args.trace).name, not args.json, unit="requests")
    r = replay(
        args.trace,
        format=args.format,
        profile=args.profile,
        memory=args.memory,
        swap=args.swap,
        kvm=args.kvm,
        limit=args.limit,
        seed=args.seed,
        progress=p,
    )
    p.close()
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
        return 0
    print(f"{r.path} ({r.format}, {r.mapping} mapping) on profile {r.profile}:")
    print(f"  memory {r.memory >> 20} MiB, swap {r.swap >> 20} MiB")
    rows = [
        ("requests", r.requests),
        ("distinct pages", r.distinct_pages),
        ("hits", r.hits),
        ("minor faults", r.minor_faults),
        ("major faults", r.major_faults),
        ("miss ratio", f"{r.miss_ratio:.4f}"),
        ("pages reclaimed", r.pages_reclaimed),
        ("pages swapped out", r.pages_swapped_out),
        ("resident pages", r.resident_pages),
        ("seconds", f"{r.seconds:.3f} (+{r.scan_seconds:.3f} reading the trace first)"),
        ("requests/second", f"{r.requests_per_second:,.0f}"),
    ]
    for name, v in rows:
        print(f"  {name:<18} {v}")
    return 0


def add_parser(sub: Subparsers) -> None:
    """Add ``replay`` and its options to the subcommands."""
    rp = sub.add_parser(
        "replay",
        help="replay a memory-access trace (binary, CSV, libCacheSim oracleGeneral, DAMON, perf "
        "mem) under pressure",
        epilog="""examples:
  reclaim replay trace.bin                      host memory: 25% of the trace's pages
  reclaim replay trace.oracleGeneral --memory 10% --profile 4.18 --json
  reclaim replay accesses.csv --memory 64MiB --limit 1000000

A miss is an access to a page that was not resident: a minor fault (first touch, swap cache)
or a major fault (swap-in); miss ratio = misses / requests. Formats: docs/trace-format.md.
exit codes: 0 done, 1 engine error, 2 bad input (a malformed trace names offset or line)""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("trace", help="the trace file")
    rp.add_argument(
        "--format",
        choices=["auto", "binary", "csv", "oracle", "oracleGeneral", "damon", "perf"],
        default="auto",
        help="the trace's format (default auto: by magic, name and content; oracleGeneral is "
        "oracle; damon: damo record output; perf: perf mem samples from perf script or perf mem "
        "report -D; zstd-compressed files are read directly)",
    )
    rp.add_argument("--profile", default="6.12", help="kernel profile (default 6.12)")
    rp.add_argument(
        "--memory",
        default="25%",
        help="host memory: a share of the trace's pages (25%%, the default) or a size (64MiB)",
    )
    rp.add_argument("--swap", help="swap size (default: room for every page)")
    rp.add_argument("--limit", type=integer(1), help="replay only the first LIMIT requests")
    rp.add_argument("--kvm", action="store_true", help="a KVM host process (PGSTEs)")
    rp.add_argument("--seed", type=integer(), default=0, help="the kernel's seed (default 0)")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    add_variant_options(rp)
    rp.set_defaults(func=cmd_replay)
