"""``reclaim bench``: the benchmark suite (:mod:`reclaim.bench`) and its table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict

from reclaim.cli.common import Parser, Subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """``reclaim bench``: returns 0, or 2 for bad arguments."""
    import reclaim.bench
    from reclaim.bench import SUITES, format_table, machine, run

    doc = reclaim.bench.__doc__
    ap = Parser(prog="reclaim bench", description=doc.split("\n\n")[0] if doc else None)
    ap.add_argument(
        "--only", action="append", choices=SUITES, help="run only this suite (repeatable)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="small sizes, one repetition (a smoke test)"
    )
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    rows = run(args.only or SUITES, quick=args.quick, progress=not args.json)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        m = machine()
        print(f"machine: {m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']}\n")
        print(format_table(rows))
    return 0


def add_parser(sub: Subparsers) -> None:
    """Add ``bench`` to the subcommands for the top-level help; its arguments go to `main`,
    which has its own parser (and help)."""
    bn = sub.add_parser(
        "bench",
        help="the benchmark suite: replay vs libCacheSim, reclaim vs the host kernel, speed",
        add_help=False,
    )
    bn.add_argument("args", nargs=argparse.REMAINDER, help="see reclaim bench --help")


__all__ = ["main"]
