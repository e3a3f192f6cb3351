"""``reclaim sweep``: a study over a grid of parameters from a TOML file (see
:mod:`reclaim.sweeper` for the grid format), its summary and plot.

``reclaim sweep grid.toml [--out FILE.parquet] [--executor local|serial|ADDRESS] [--workers N]
[--plot FILE.png] [--json]`` (also ``python -m reclaim.sweeper``). Exit codes: 0 every run
finished, 1 some run raised an error or the engine failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from reclaim.cli.common import Parser, Subparsers, integer
from reclaim.exceptions import ArgumentError, FileError, FormatError, ReclaimError
from reclaim.output import png_path


def _plot_axes(grid: Mapping[str, object]) -> tuple[tuple[str, ...], str]:
    """(by, x) of the CLI's plot: x is the destination's memory (host_memory, or its older name
    dest_memory) if the grid varies it, else its first axis other than profile and seed; one line
    per profile."""
    from reclaim.sweeper.grid import axes

    varied = [a for a in axes(grid) if a != "seed"]
    others = [a for a in varied if a != "profile"]
    memory = [a for a in others if a in ("host_memory", "dest_memory")]
    if memory:
        x = memory[0]
    elif others:
        x = others[0]
    elif varied:
        return (), varied[0]
    else:
        raise ArgumentError("nothing to plot: the grid varies no parameter but the seed")
    return (("profile",) if "profile" in varied else ()), x


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="reclaim sweep",
        description="Run a study over a grid of parameters (a TOML file) and summarize.",
        epilog="example: reclaim sweep grid.toml --out runs.parquet --plot hang-rate.png",
    )
    p.add_argument("grid", help="the TOML grid file")
    p.add_argument("--out", help="parquet file of the results, resumed if it exists")
    p.add_argument("--executor", help="local (default), serial or a scheduler tcp://host:port")
    p.add_argument(
        "--workers", type=integer(1), help="processes of the local executor (default: cores)"
    )
    p.add_argument("--plot", help="write a PNG of the hang rate by parameter here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``reclaim sweep`` command: `argv` are its arguments (after "sweep"); returns the
    exit code (0 every run finished, 1 a run raised an error, 2 bad input, 130 interrupted)."""
    from reclaim.sweeper import load_grid, summary, summary_plot, sweep

    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # the parser printed its one-line error, or the help
        return e.code if isinstance(e.code, int) else 2
    out: Path | None = None
    try:
        plot_to = png_path(args.plot, "--plot") if args.plot else None  # refused before the runs
        spec = load_grid(args.grid)
        out = Path(args.out) if args.out else spec.out
        df = sweep(
            spec.study,
            spec.grid,
            executor=args.executor or spec.executor,
            out=out,
            workers=args.workers if args.workers is not None else spec.workers,
            progress=False if args.json else None,
        )
        table = summary(df)
        plot = summary_plot(df, plot_to, *_plot_axes(spec.grid)) if plot_to else None
    except (ArgumentError, FormatError, FileError, TypeError) as e:
        print(f"reclaim: error: {e}", file=sys.stderr)
        return 2
    except ReclaimError as e:
        print(f"reclaim: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = f"; finished runs are in {out}" if out else ""
        print(f"reclaim: interrupted{kept}", file=sys.stderr)
        return 130
    errors = [e for e in df["error"].tolist() if isinstance(e, str)]
    if args.json:
        doc = {
            "runs": len(df),
            "errors": len(errors),
            "out": str(out) if out else None,
            "plot": str(plot) if plot else None,
            "summary": json.loads(table.to_json(orient="records")),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"{len(df)} runs, {len(errors)} raised an error" + (f"; table: {out}" if out else ""))
        print(table.to_string(index=False))
        if plot:
            print(f"\nplot: {plot}")
    if errors:
        print(f"reclaim: {len(errors)} runs raised an error, first: {errors[0]}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Subparsers) -> None:
    """Add ``sweep`` to the subcommands for the top-level help; its arguments go to `main`,
    which has its own parser (and help)."""
    sw = sub.add_parser(
        "sweep",
        help="run a study over a grid of parameters (TOML), locally or on Dask; resumable",
        add_help=False,
    )
    sw.add_argument("args", nargs=argparse.REMAINDER, help="see reclaim sweep --help")


__all__ = ["main"]
