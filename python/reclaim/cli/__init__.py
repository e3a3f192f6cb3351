"""The ``reclaim`` command line: one module per subcommand (``demo``, ``study``, ``explore``,
``replay``, ``export``, ``sweep``, ``crosscheck``, ``bench``, ``vm``), each with its parser and its
``cmd_*`` function; :func:`main` is the entry point (also ``python -m reclaim``).

Errors are one readable line on stderr (exit code 2 for bad input, 1 for a failed run); no
traceback reaches the user for a ReclaimError. Exit codes: 0 success, 1 a run failed or an
engine error, 2 bad usage or arguments, 3 (study, explore) the outcome was a hang or a violation
when --fail-on-hang is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import reclaim
from reclaim.cli import (
    bench,
    bisect,
    crosscheck,
    demo,
    explore,
    export,
    profiles,
    replay,
    study,
    sweep,
    vm,
)
from reclaim.cli.common import Parser, Progress
from reclaim.cli.crosscheck import cmd_crosscheck
from reclaim.cli.demo import cmd_demo
from reclaim.cli.explore import cmd_explore
from reclaim.cli.export import cmd_export
from reclaim.cli.replay import cmd_replay
from reclaim.cli.study import STUDY_PARAMS, cmd_study_postcopy

EPILOG = """examples:
  reclaim demo                          the 2018 seed bug on 4.17 next to its fix on 4.18
  reclaim demo --json --plot out.png    machine-readable, plot written to out.png
  reclaim study postcopy --profile 4.17 --guest-memory 1GiB --seed 3
  reclaim study postcopy --profile 4.18 --free-policy random --json
  reclaim explore --profile 4.17        find the seed bug from a scenario that does not mention it
  reclaim explore --profile all --start listen --bound 8
  reclaim replay trace.oracleGeneral --memory 25%   replay a trace under memory pressure
  reclaim crosscheck --vm s390x        the scenario library on a real Linux 6.12 s390x guest
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``reclaim`` command (every subcommand but ``sweep`` and
    ``bench``, which have their own)."""
    p = Parser(
        prog="reclaim",
        description="An executable model of Linux memory reclaim on s390.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"reclaim {reclaim.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in (
        demo,
        explore,
        profiles,
        bisect,
        replay,
        study,
        export,
        sweep,
        bench,
        crosscheck,
        vm,
    ):
        command.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reclaim`` command with ``argv`` (default ``sys.argv[1:]``) and return its exit
    code; errors become one line on stderr (see the module docstring for the codes)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except (reclaim.ArgumentError, reclaim.FormatError, reclaim.FileError, TypeError) as e:
        print(f"reclaim: error: {e}", file=sys.stderr)
        return 2
    except reclaim.ReclaimError as e:
        print(f"reclaim: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reclaim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (head, less) went away: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # an output path that cannot be written, a directory that is a file
        where = f"{e.filename}: " if e.filename else ""
        print(f"reclaim: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["sweep"]:  # its own parser (reclaim.cli.sweep), help included
        return sweep.main(argv[1:])
    if argv[:1] == ["bench"]:  # its own parser (reclaim.cli.bench)
        return bench.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    rc: int = args.func(args)
    return rc


__all__ = [
    "STUDY_PARAMS",
    "Progress",
    "build_parser",
    "cmd_crosscheck",
    "cmd_demo",
    "cmd_explore",
    "cmd_export",
    "cmd_replay",
    "cmd_study_postcopy",
    "main",
]
