"""Bisect over switches: which switch differences between two profiles make a finding appear.

``bisect(good, bad, cause)`` takes the switches whose values differ between ``good`` (where the
explorer does not find ``cause``) and ``bad`` (where it does), and searches them by delta
debugging (Zeller's ddmin) with the explorer as the test: a test profile is ``good`` with a
subset of the switches set to ``bad``'s values. The result is a 1-minimal set: the finding
appears with all of it and disappears when any one switch is taken back. Between 4.18 (good)
and 4.17 (bad) the seed bug's cause ``pte_unused`` bisects to ``unused_guard``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reclaim._reclaim import Profile
from reclaim.exceptions import ProfileError
from reclaim.explorer import CAUSES, DEFAULT_MAX_STATES, explore
from reclaim.variants import _SCENARIO_KEYS, as_profile, scenario_for

_EINVAL = 22


@dataclass(frozen=True)
class BisectResult:
    """What :func:`bisect` found: between ``good`` and ``bad``, for ``predicate`` via
    ``cause``, the ``differences`` (switch: (good's value, bad's)), the 1-minimal set
    ``switches`` of bad's values that makes the finding appear on good, the finding's shortest
    ``steps`` with them, the number of explorer runs ``tests`` and their ``log``."""

    good: str
    bad: str
    cause: str
    predicate: str
    #: The switches that differ between good and bad, and their values there.
    differences: dict[str, tuple[object, object]]
    #: The smallest set found (1-minimal) that makes the finding appear on good.
    switches: tuple[str, ...]
    #: The shortest trace of the finding on good with those switches.
    steps: tuple[str, ...]
    #: Explorer runs made (each a distinct subset).
    tests: int
    #: Each test: (the subset, found or not), in the order run.
    log: tuple[tuple[tuple[str, ...], bool], ...] = field(default_factory=tuple)

    def text(self) -> str:
        """The result in words."""
        vals = ", ".join(
            f"{s}: {self.differences[s][0]} -> {self.differences[s][1]}" for s in self.switches
        )
        lines = [
            f"bisect {self.good} (good) .. {self.bad} (bad) for {self.predicate} via {self.cause}: "
            f"{len(self.differences)} switch differences, {self.tests} explorer runs",
            f"  the finding appears with: {vals}",
            "  shortest trace with them:",
        ]
        lines += [f"    {i:2}. {s}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """Machine-readable form (``--json``)."""
        return {
            "good": self.good,
            "bad": self.bad,
            "cause": self.cause,
            "predicate": self.predicate,
            "differences": {k: list(v) for k, v in self.differences.items()},
            "switches": list(self.switches),
            "steps": list(self.steps),
            "tests": self.tests,
        }


def ddmin(changes: Sequence[str], test: Callable[[tuple[str, ...]], bool]) -> tuple[str, ...]:
    """Zeller's ddmin: a 1-minimal subset of ``changes`` for which ``test`` holds, given that it
    holds for all of ``changes``."""
    c = tuple(changes)
    n = 2
    while len(c) >= 2:
        size = -(-len(c) // n)
        chunks = [c[i : i + size] for i in range(0, len(c), size)]
        for chunk in chunks:
            if test(chunk):
                c, n = chunk, 2
                break
        else:
            for chunk in chunks:
                rest = tuple(x for x in c if x not in chunk)
                if len(chunks) > 2 and test(rest):
                    c, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(c):
                    break
                n = min(len(c), 2 * n)
    return c


def bisect(
    good: str | Profile,
    bad: str | Profile,
    cause: str,
    *,
    predicate: str = "userfault_on_received",
    depth: int = 8,
    max_states: int = DEFAULT_MAX_STATES,
    walks: int = 0,
    **scenario: object,
) -> BisectResult:
    """The smallest set of ``bad``'s switch values that makes the explorer find ``predicate``
    via ``cause`` (a key of ``reclaim.explorer.CAUSES``) on ``good``. ``scenario``: the
    scenario's options (start, pages, qemu, ...). Raises :class:`reclaim.ProfileError` when the
    finding is not on ``bad``, already on ``good``, or the profiles have different arches."""
    if cause not in CAUSES:
        raise ProfileError(
            f"unknown cause {cause!r}; the causes are: {', '.join(CAUSES)}", _EINVAL, "EINVAL"
        )
    unknown = set(scenario) - set(_SCENARIO_KEYS)
    if unknown:
        raise ProfileError(
            f"unknown scenario options {sorted(unknown)}; they are {', '.join(_SCENARIO_KEYS)}",
            _EINVAL,
            "EINVAL",
        )
    g, b = as_profile(good), as_profile(bad)
    if g.arch != b.arch:
        raise ProfileError(
            f"{g.name} is {g.arch}, {b.name} is {b.arch}: bisect one arch", _EINVAL, "EINVAL"
        )
    diff = {k: (va, vb) for k, (va, vb) in g.diff(b).items()}
    cache: dict[frozenset[str], tuple[bool, tuple[str, ...]]] = {}
    log: list[tuple[tuple[str, ...], bool]] = []

    def run(subset: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
        key = frozenset(subset)
        if key not in cache:
            p = g.with_switches_of(b, sorted(subset), f"{g.name}+bisect")
            r = explore(
                scenario_for(p, **scenario),  # type: ignore[arg-type]
                depth=depth,
                max_states=max_states,
                walks=walks,
                predicates=[predicate],
                progress=False,
            )
            hits = [f for f in r.findings if f.cause == cause]
            best = min(hits, key=lambda f: len(f.steps)) if hits else None
            cache[key] = (best is not None, tuple(best.steps) if best else ())
            log.append((tuple(sorted(subset)), best is not None))
        return cache[key]

    if run(tuple(diff))[0] is False:
        raise ProfileError(
            f"the explorer does not find {predicate} via {cause} on {b.name} (bound {depth}): "
            "nothing to bisect; try a larger --bound or another --start",
            _EINVAL,
            "EINVAL",
        )
    if run(())[0]:
        raise ProfileError(
            f"{predicate} via {cause} is on {g.name} already: pick a good profile without it",
            _EINVAL,
            "EINVAL",
        )
    minimal = ddmin(sorted(diff), lambda s: run(s)[0])
    return BisectResult(
        good=g.name,
        bad=b.name,
        cause=cause,
        predicate=predicate,
        differences=diff,
        switches=tuple(minimal),
        steps=run(minimal)[1],
        tests=len(cache),
        log=tuple(log),
    )


def cmd_bisect(args: argparse.Namespace) -> int:
    """``reclaim bisect --good A --bad B --finding CAUSE``."""
    from reclaim.variants import from_options

    good = from_options(args.good, args.good_set, args.good_file)
    bad = from_options(args.bad, args.bad_set, args.bad_file)
    scenario: dict[str, Any] = {"start": args.start, "qemu": args.qemu}
    if args.pages:
        scenario["pages"] = [x.strip() for x in args.pages.split(",") if x.strip()]
    r = bisect(
        good,
        bad,
        args.finding,
        predicate=args.predicate,
        depth=args.bound,
        max_states=args.max_states,
        **scenario,
    )
    print(json.dumps(r.as_dict(), indent=2) if args.json else r.text())
    return 0


def add_bisect_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``reclaim bisect`` subcommand."""
    bp = sub.add_parser(
        "bisect",
        help="find the switches between two profiles that make an explorer finding appear",
        epilog="""examples:
  reclaim bisect --good 4.18 --bad 4.17 --finding pte_unused --start listen
  reclaim bisect --good-file fixed.toml --bad 4.18 --finding cbrl

causes: """
        + ", ".join(CAUSES)
        + """
exit codes: 0 found, 2 bad input (the finding is not on --bad, or already on --good)""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bp.add_argument("--good", required=True, help="a profile without the finding")
    bp.add_argument("--good-set", action="append", metavar="SWITCH=VALUE", help="vary --good")
    bp.add_argument("--good-file", metavar="TOML", help="--good as a variant file")
    bp.add_argument("--bad", required=True, help="a profile with the finding")
    bp.add_argument("--bad-set", action="append", metavar="SWITCH=VALUE", help="vary --bad")
    bp.add_argument("--bad-file", metavar="TOML", help="--bad as a variant file")
    bp.add_argument("--finding", required=True, choices=list(CAUSES), help="the finding's cause")
    bp.add_argument(
        "--predicate",
        default="userfault_on_received",
        help="the explorer predicate the finding violates (default userfault_on_received)",
    )
    bp.add_argument(
        "--start",
        choices=["switchover", "listen"],
        default="listen",
        help="search from before the storage attributes, or from just after LISTEN (default)",
    )
    bp.add_argument("--qemu", default="3.0", help="QEMU logic: 3.0 (default) or 5.2")
    bp.add_argument("--pages", help="guest page classes, comma-separated")
    bp.add_argument("--bound", type=int, default=8, help="explorer depth (default 8)")
    bp.add_argument(
        "--max-states",
        type=int,
        default=DEFAULT_MAX_STATES,
        help=f"state budget a run (default {DEFAULT_MAX_STATES})",
    )
    bp.add_argument("--json", action="store_true", help="machine-readable output")
    bp.set_defaults(func=cmd_bisect)


__all__ = ["BisectResult", "add_bisect_parser", "bisect", "cmd_bisect", "ddmin"]
