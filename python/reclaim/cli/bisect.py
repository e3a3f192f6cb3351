"""``reclaim bisect``: the smallest set of switches between two profiles that makes a finding
appear (:mod:`reclaim.bisect`)."""

from __future__ import annotations

from reclaim.cli.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    """Add ``bisect`` to the subcommands."""
    from reclaim.bisect import add_bisect_parser

    add_bisect_parser(sub)
