"""Your own kernel variant: define it, list the switches, compare two profiles.

A variant is a built-in profile with some switches changed (every release difference, and every
candidate fix of FINDINGS.md, is a switch; ``reclaim.SWITCHES`` lists them with the commit behind
each)::

    import reclaim
    fix = reclaim.Profile.derive("4.18", "4.18+cbrl-guard", cbrl_guard="UffdArmed")
    reclaim.studies.postcopy(fix, free_policy="random", seed=0)
    from reclaim.variants import compare_explore
    print(compare_explore("4.18", fix, start="listen", depth=8).text())

or in TOML (``reclaim ... --profile-file variant.toml``)::

    base = "4.18"
    name = "4.18+cbrl-guard"
    [switches]
    cbrl_guard = "UffdArmed"

A derived profile is defined for the process that derived it: every API that takes a profile
name accepts its name from then on, and it pickles (to sweep workers) as its base and switches.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reclaim._reclaim import PROFILE_NAMES, SWITCHES, VARIANTS, Profile
from reclaim.exceptions import FileError, ProfileError

if TYPE_CHECKING:
    from reclaim.explorer import ExploreResult, Finding
    from reclaim.studies.postcopy import PostcopyResult

_EINVAL = 22


def _error(msg: str) -> ProfileError:
    return ProfileError(msg, _EINVAL, "EINVAL")


def profile_name(profile: str | Profile) -> str:
    """The name an API takes for ``profile`` (a name already, or a :class:`Profile`: a variant
    is registered under its name when derived or unpickled)."""
    return profile if isinstance(profile, str) else profile.name


def as_profile(profile: str | Profile, arch: str = "s390x") -> Profile:
    """``profile`` as a :class:`Profile` (a built-in or derived name, or a Profile)."""
    return profile if isinstance(profile, Profile) else Profile(profile, arch)


def _restore_profile(base: str, name: str, arch: str, switches: dict[str, object]) -> Profile:
    """Unpickle a variant: derive it again (a no-op where this process has it already)."""
    return Profile.derive(base, name, arch=arch, **switches)


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """``["cbrl_guard=UffdArmed", ...]`` (the CLI's repeatable ``--set``) as a dict; a value
    is checked when the profile is derived."""
    out: dict[str, str] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq or not k.strip() or not v.strip():
            raise _error(f"--set wants SWITCH=VALUE (e.g. cbrl_guard=UffdArmed), not {item!r}")
        out[k.strip()] = v.strip()
    return out


def load_profile_file(path: str | Path, arch: str = "s390x") -> Profile:
    """Derive the variant a TOML file describes: ``base`` (a profile name), ``name`` (optional),
    ``arch`` (optional) and a ``[switches]`` table of switch = value."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as e:
        raise FileError(f"cannot read the profile file {p}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _error(f"the profile file {p} is not valid TOML: {e}") from e
    unknown = set(data) - {"base", "name", "arch", "switches"}
    if unknown:
        raise _error(
            f"the profile file {p} has unknown keys {sorted(unknown)}; "
            "it takes base, name, arch and a [switches] table"
        )
    base = data.get("base")
    if not isinstance(base, str):
        raise _error(f'the profile file {p} needs base = "<profile>" (one of {PROFILE_NAMES})')
    switches = data.get("switches", {})
    if not isinstance(switches, dict):
        raise _error(f"the profile file {p}: switches must be a table ([switches])")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise _error(f"the profile file {p}: name must be a string")
    a = data.get("arch", arch)
    if not isinstance(a, str):
        raise _error(f"the profile file {p}: arch must be a string")
    return Profile.derive(base, name, arch=a, **switches)


def from_options(
    profile: str | Profile,
    sets: Sequence[str] | None = None,
    file: str | Path | None = None,
    name: str | None = None,
) -> str:
    """The profile name the CLI's ``--profile P --set S=V ... --profile-file F`` stand for: the
    file's variant (or P), with the ``--set`` switches changed on top."""
    base: str | Profile = load_profile_file(file) if file else profile
    changes = parse_sets(sets or ())
    if not changes:
        return profile_name(base)
    return Profile.derive(base, name, **changes).name


def switch_rows() -> list[dict[str, object]]:
    """Every switch with its value in each built-in profile and the commit behind it."""
    profs = [Profile(n) for n in PROFILE_NAMES]
    rows = []
    for s in SWITCHES:
        row = dict(s)
        row["by_profile"] = {p.name: p.switches()[str(s["name"])] for p in profs}
        rows.append(row)
    return rows


def profiles_text() -> str:
    """The listing of ``reclaim profiles``: the releases, their switches, the commit behind
    each."""
    lines = [
        "profiles: "
        + ", ".join(f"{n} (v{'.'.join(map(str, Profile(n).release))})" for n in PROFILE_NAMES)
    ]
    lines.append("")
    head = f"{'switch':<30}" + "".join(f"{n:>22}" for n in PROFILE_NAMES)
    lines.append(head)
    for row in switch_rows():
        by = row["by_profile"]
        assert isinstance(by, dict)
        lines.append(f"{row['name']!s:<30}" + "".join(f"{by[n]!s:>22}" for n in PROFILE_NAMES))
        values = row["values"]
        if row["kind"] == "choice" and isinstance(values, list):
            lines.append(f"    values: {', '.join(map(str, values))}")
        lines.append(f"    commit: {row['commit']}")
    lines.append("")
    for v in VARIANTS:
        lines.append(f"variant {v['name']}: {v['stands_for']}")
    lines.append("")
    lines.append(
        "derive a variant: --profile 4.18 --set cbrl_guard=UffdArmed (repeatable), "
        "--profile-file variant.toml, or reclaim.Profile.derive(...)"
    )
    return "\n".join(lines)


# --- compare ---------------------------------------------------------------------------------


def _by_cause(r: ExploreResult) -> dict[tuple[str, str], Finding]:
    out: dict[tuple[str, str], Finding] = {}
    for f in r.findings:
        key = (f.predicate, f.cause)
        if key not in out or len(f.steps) < len(out[key].steps):
            out[key] = f
    return out


@dataclass(frozen=True)
class ExploreComparison:
    """The findings of two explorations ``a`` and ``b`` of the same scenario on two profiles,
    by (predicate, cause): what appears on b (``appear``), disappears (``disappear``) and
    persists (``persist``)."""

    a: ExploreResult
    b: ExploreResult
    appear: tuple[tuple[str, str], ...]
    disappear: tuple[tuple[str, str], ...]
    persist: tuple[tuple[str, str], ...]

    def text(self) -> str:
        """The comparison, one line per (predicate, cause), with the shortest trace lengths."""
        fa, fb = _by_cause(self.a), _by_cause(self.b)
        pa, pb = self.a.scenario.profile, self.b.scenario.profile
        lines = [
            f"explore {pa} -> {pb} (bound {self.a.depth}; {self.a.states:,} and "
            f"{self.b.states:,} states; "
            + ("exhaustive" if self.a.exhaustive and self.b.exhaustive else "not exhaustive")
            + ")"
        ]
        for label, keys in (
            ("appear", self.appear),
            ("disappear", self.disappear),
            ("persist", self.persist),
        ):
            for key in keys:
                f = fb.get(key) or fa[key]
                la = len(fa[key].steps) if key in fa else None
                lb = len(fb[key].steps) if key in fb else None
                lines.append(
                    f"  {label:<10} {f.predicate} via {f.cause_text}: "
                    f"{'none' if la is None else la} -> {'none' if lb is None else lb} steps"
                )
        if not (self.appear or self.disappear or self.persist):
            lines.append("  no findings on either profile")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """Machine-readable form (``--json``)."""
        fa, fb = _by_cause(self.a), _by_cause(self.b)

        def entry(k: tuple[str, str]) -> dict[str, object]:
            return {
                "predicate": k[0],
                "cause": k[1],
                "steps_a": list(fa[k].steps) if k in fa else None,
                "steps_b": list(fb[k].steps) if k in fb else None,
            }

        return {
            "a": self.a.scenario.profile,
            "b": self.b.scenario.profile,
            "depth": self.a.depth,
            "exhaustive": self.a.exhaustive and self.b.exhaustive,
            "states": [self.a.states, self.b.states],
            "appear": [entry(k) for k in self.appear],
            "disappear": [entry(k) for k in self.disappear],
            "persist": [entry(k) for k in self.persist],
        }


def compare_results(a: ExploreResult, b: ExploreResult) -> ExploreComparison:
    """Compare two exploration results (of the same scenario on two profiles)."""
    ka, kb = set(_by_cause(a)), set(_by_cause(b))
    return ExploreComparison(
        a=a,
        b=b,
        appear=tuple(sorted(kb - ka)),
        disappear=tuple(sorted(ka - kb)),
        persist=tuple(sorted(ka & kb)),
    )


def scenario_for(profile: str | Profile, **scenario: object) -> object:
    """``reclaim.Scenario(profile, **scenario)`` (a variant object is passed as it is)."""
    from reclaim._reclaim import Scenario

    return Scenario(profile, **scenario)  # type: ignore[arg-type]


_SCENARIO_KEYS = ("qemu", "pages", "vcpus", "host_pages", "swap_pages", "guest_steps", "start")


def compare_explore(a: str | Profile, b: str | Profile, **options: object) -> ExploreComparison:
    """Explore the same scenario on profiles ``a`` and ``b`` and compare the findings by cause.
    ``options``: the scenario's (qemu, pages, vcpus, host_pages, swap_pages, guest_steps,
    start) and :func:`reclaim.explore`'s (depth, max_states, walks, walk_len, seed,
    predicates, por)."""
    from reclaim.explorer import explore

    sc = {k: v for k, v in options.items() if k in _SCENARIO_KEYS}
    ex = {k: v for k, v in options.items() if k not in _SCENARIO_KEYS}
    ex.setdefault("progress", False)
    ra = explore(scenario_for(a, **sc), **ex)  # type: ignore[arg-type]
    rb = explore(scenario_for(b, **sc), **ex)  # type: ignore[arg-type]
    return compare_results(ra, rb)


#: The metrics the study comparison reports (means over the seeds).
STUDY_METRICS = (
    "userfaults_on_received",
    "dest_pages_dropped",
    "dest_pages_swapped",
    "dest_cbrl_zapped",
    "total_time_ns",
    "vcpu_blocked_ns",
)


@dataclass(frozen=True)
class StudyComparison:
    """Postcopy studies of profiles ``a`` and ``b`` over the same ``seeds`` and parameters:
    their results ``results_a`` and ``results_b``, one per seed."""

    a: str
    b: str
    seeds: tuple[int, ...]
    results_a: tuple[PostcopyResult, ...]
    results_b: tuple[PostcopyResult, ...]

    def outcomes(self) -> dict[str, tuple[int, int]]:
        """How many seeds ended in each outcome, on a and on b."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.results_a:
            x, y = out.get(r.outcome, (0, 0))
            out[r.outcome] = (x + 1, y)
        for r in self.results_b:
            x, y = out.get(r.outcome, (0, 0))
            out[r.outcome] = (x, y + 1)
        return out

    def changed(self) -> list[tuple[int, str, str]]:
        """The seeds whose outcome differs: (seed, a's outcome, b's)."""
        return [
            (s, ra.outcome, rb.outcome)
            for s, ra, rb in zip(self.seeds, self.results_a, self.results_b, strict=True)
            if ra.outcome != rb.outcome
        ]

    def metrics(self) -> dict[str, tuple[float, float]]:
        """The mean of each metric of :data:`STUDY_METRICS` over the seeds, on a and on b."""
        n = len(self.seeds)

        def mean(rs: Sequence[PostcopyResult], k: str) -> float:
            return sum(float(r.metrics[k]) for r in rs) / n

        return {k: (mean(self.results_a, k), mean(self.results_b, k)) for k in STUDY_METRICS}

    def text(self) -> str:
        """The comparison: outcomes, the seeds that changed, metric means."""
        lines = [f"postcopy {self.a} -> {self.b} over seeds {', '.join(map(str, self.seeds))}"]
        lines.append("  outcomes:")
        for o, (x, y) in sorted(self.outcomes().items()):
            lines.append(f"    {o:<12} {x:>4} -> {y:<4}")
        ch = self.changed()
        lines.append(
            "  seeds whose outcome changed: "
            + (", ".join(f"{s} ({x} -> {y})" for s, x, y in ch) or "none")
        )
        lines.append("  metrics (mean):")
        for k, (ma, mb) in self.metrics().items():
            lines.append(f"    {k:<24} {ma:>14.1f} -> {mb:<14.1f}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """Machine-readable form (``--json``)."""
        return {
            "a": self.a,
            "b": self.b,
            "seeds": list(self.seeds),
            "outcomes": {k: list(v) for k, v in self.outcomes().items()},
            "changed": [list(c) for c in self.changed()],
            "metrics": {k: list(v) for k, v in self.metrics().items()},
        }


def compare_study(
    a: str | Profile,
    b: str | Profile,
    seeds: Iterable[int] = range(4),
    **params: Any,
) -> StudyComparison:
    """Run :func:`reclaim.studies.postcopy` with ``params`` on profiles ``a`` and ``b`` for
    each seed and compare outcomes and metrics. A ``source_profile`` in ``params`` stays the
    source of both runs; without it each run's source is its own profile."""
    from reclaim.studies.postcopy import postcopy

    ss = tuple(seeds)
    if not ss:
        raise _error("compare_study needs at least one seed")
    na, nb = profile_name(a), profile_name(b)
    ra = tuple(postcopy(na, seed=s, **params) for s in ss)
    rb = tuple(postcopy(nb, seed=s, **params) for s in ss)
    return StudyComparison(a=na, b=nb, seeds=ss, results_a=ra, results_b=rb)


def switch_values(profile: str | Profile) -> Mapping[str, object]:
    """Only the switches of ``profile`` (without what the arch offers)."""
    sw = as_profile(profile).switches()
    return {str(s["name"]): sw[str(s["name"])] for s in SWITCHES}


# --- command line (thin hooks in reclaim.cli) --------------------------------------------------


def add_variant_options(p: argparse.ArgumentParser, *, compare: str | None = None) -> None:
    """``--set SWITCH=VALUE`` (repeatable) and ``--profile-file FILE``; with ``compare`` (its
    help text) also ``--compare PROFILE`` and ``--compare-set``/``--compare-file``."""
    p.add_argument(
        "--set",
        action="append",
        metavar="SWITCH=VALUE",
        help="change a switch of --profile (repeatable; `reclaim profiles` lists them)",
    )
    p.add_argument("--profile-file", metavar="TOML", help="a variant: base, name, [switches]")
    if compare:
        p.add_argument("--compare", metavar="PROFILE", help=compare)
        p.add_argument(
            "--compare-set",
            action="append",
            metavar="SWITCH=VALUE",
            help="change a switch of --compare (repeatable)",
        )
        p.add_argument("--compare-file", metavar="TOML", help="--compare as a variant file")


def resolve_cli_profile(args: argparse.Namespace, profile: str) -> str:
    """The profile name ``--profile``, ``--set`` and ``--profile-file`` stand for."""
    return from_options(profile, getattr(args, "set", None), getattr(args, "profile_file", None))


def resolve_cli_compare(args: argparse.Namespace) -> str | None:
    """The profile ``--compare``, ``--compare-set`` and ``--compare-file`` stand for (None
    without them)."""
    base = getattr(args, "compare", None)
    file = getattr(args, "compare_file", None)
    sets = getattr(args, "compare_set", None)
    if base is None and file is None:
        if sets:
            raise _error("--compare-set needs --compare PROFILE (or --compare-file)")
        return None
    return from_options(base or "4.18", sets, file)


def cmd_profiles(args: argparse.Namespace) -> int:
    """``reclaim profiles``: the releases, their switches and the commit behind each."""
    if getattr(args, "json", False):
        print(json.dumps({"profiles": list(PROFILE_NAMES), "switches": switch_rows()}, indent=2))
    else:
        print(profiles_text())
    return 0


def add_profiles_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``reclaim profiles`` subcommand."""
    pp = sub.add_parser(
        "profiles",
        help="list the kernel profiles, their switches and the commit behind each",
        epilog="example: reclaim profiles --json",
    )
    pp.add_argument("--json", action="store_true", help="machine-readable output")
    pp.set_defaults(func=cmd_profiles)


def cmd_explore_compare(
    args: argparse.Namespace, profile: str, other: str, scenario: dict[str, object]
) -> int:
    """``reclaim explore --profile A --compare B``: the findings by cause that appear,
    disappear and persist from A to B."""
    c = compare_explore(
        profile,
        other,
        **scenario,
        depth=args.bound,
        max_states=args.max_states,
        walks=args.walks,
        walk_len=args.walk_len,
        seed=args.seed,
        predicates=args.predicate,
        por=args.por,
    )
    print(json.dumps(c.as_dict(), indent=2) if args.json else c.text())
    return 3 if (args.fail_on_violation and (c.appear or c.persist)) else 0


def seeds_arg(text: str) -> list[int]:
    """``--seeds``: ``0-7``, ``0,3,5`` or a count ``8`` (seeds 0..7)."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        return list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds wants 0-7, 0,3,5 or a count, not {text!r}"
        ) from None


def cmd_study_compare(
    args: argparse.Namespace, profile: str, other: str, params: dict[str, object]
) -> int:
    """``reclaim study postcopy --profile A --compare B``: outcomes and metrics over seeds."""
    seeds = (
        args.seeds
        if args.seeds is not None
        else ([args.seed] if args.seed is not None else list(range(4)))
    )
    params = {k: v for k, v in params.items() if k != "seed"}
    c = compare_study(profile, other, seeds, **params)
    print(json.dumps(c.as_dict(), indent=2) if args.json else c.text())
    return 0


__all__ = [
    "STUDY_METRICS",
    "ExploreComparison",
    "StudyComparison",
    "add_profiles_parser",
    "add_variant_options",
    "as_profile",
    "cmd_explore_compare",
    "cmd_profiles",
    "cmd_study_compare",
    "compare_explore",
    "compare_results",
    "compare_study",
    "from_options",
    "load_profile_file",
    "parse_sets",
    "profile_name",
    "profiles_text",
    "resolve_cli_compare",
    "resolve_cli_profile",
    "switch_rows",
    "switch_values",
]
