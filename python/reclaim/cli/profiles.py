"""``reclaim profiles``: the releases, their switches and the commit behind each
(:mod:`reclaim.variants`)."""

from __future__ import annotations

from reclaim.cli.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    """Add ``profiles`` to the subcommands."""
    from reclaim.variants import add_profiles_parser

    add_profiles_parser(sub)
