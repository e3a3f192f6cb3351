"""The explorer: every interleaving of a small postcopy scenario, up to a bound.

A :class:`reclaim.Scenario` is the destination host at the postcopy switchover with a few guest
pages in the states a migration creates (received and used, received and free, dirtied after
they were sent, never sent). The actors whose steps interleave are the migration stream,
QEMU's source and fault thread, the guest's vCPUs (ESSA, DIAG 0x10, storage keys), KVM's CBRL
processing and host reclaim (one page through ``shrink_folio_list``, or a batch). Nothing in
the scenario mentions a bug: the explorer searches every order of steps up to ``depth`` (with
state hashing), then takes seeded random walks beyond it, checks the predicates after every
step, and returns each violation as a minimal step list (``Finding.minimal`` says in which
sense), described in kernel terms and replayable::

    import reclaim
    result = reclaim.explore("4.17", depth=8)
    for f in result.findings:
        print(f.text())
        print(f.pytest())

Predicates: ``userfault_on_received`` (no userfault for a page the destination already
received), ``blocked_at_end`` (no vCPU parked when the migration ends), ``data_lost`` (a page
the guest uses reads the last value it wrote), ``invariants`` (the model's rss, mapcount,
refcount, LRU, swap and rmap consistency), and a Python function of the state of your own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reclaim import _reclaim
from reclaim._reclaim import (
    PREDICATE_NAMES,
    Counterexample,
    ExploreReport,
    ExploreState,
    Scenario,
    explore_scenario,
)
from reclaim.progress import StatusLine

#: A user predicate: None or True while the state is fine, a message (or False) when not.
UserPredicate = Callable[[ExploreState], "str | bool | None"]

#: The ways a received page can become missing, as ``Violation.cause`` names them (the
#: engine's table, ``reclaim._reclaim.CAUSES``, without its catch-all "other").
CAUSES: dict[str, str] = {k: v for k, v in _reclaim.CAUSES.items() if k != "other"}


#: Who takes each explorer step, by the step's name (the part before the first ``:``), in the
#: recipe's terms: the guest (inside the VM), the destination host's kernel (reclaim and KVM) or
#: QEMU and the migration.
ACTORS: dict[str, str] = {
    **dict.fromkeys(("alloc", "free", "read", "write", "diag10", "enable_skey"), "guest"),
    **dict.fromkeys(("age", "reclaim", "direct_reclaim", "reclaim_batch", "intercept"), "host"),
    **dict.fromkeys(("deliver", "send_next", "serve_request", "fault_thread"), "qemu"),
}

#: The QEMU behaviour each ``Scenario.qemu`` value models, for the recipe.
QEMU_LOGIC: dict[str, str] = {
    "3.0": "QEMU 3.0 to 5.1 postcopy: the fault thread requests every faulting page and the "
    "source drops requests for pages it already sent",
    "5.2": "QEMU 5.2 or later postcopy: the destination sends no request for a page it "
    "already received",
}


def _name(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s).strip("_")


@dataclass(frozen=True)
class Finding:
    """A violation and a minimal step list that leads to it (see ``minimal``).

    ``scenario`` is the scenario searched; ``predicate`` the predicate violated
    (``"userfault_on_received"``, ..., ``"custom"`` for yours) and ``cause`` how (a key of
    :data:`CAUSES`, or ``"other"``), ``cause_text`` in words; ``message`` what the predicate
    said; ``steps`` the steps from the initial state in their text form (``"reclaim:1"``), which
    :meth:`reclaim.Scenario.replay` takes, and ``explained`` each one in kernel and QEMU terms;
    ``user_predicate`` your predicate function for a ``"custom"`` finding (else None)."""

    scenario: Scenario
    predicate: str
    cause: str
    cause_text: str
    message: str
    steps: tuple[str, ...]
    explained: tuple[str, ...]
    #: How minimal ``steps`` is: "shortest" (found by the exhaustive search: no shorter trace
    #: leads to the violation), "shortest_for_its_guest_steps" (found by a random walk: no
    #: shorter trace with the same guest steps, each any number of times, and any steps of the
    #: migration, QEMU, KVM and host reclaim leads to it),
    #: "one_minimal" (removing any step loses it; the search for a shorter one ran out of
    #: states) or "unshrunk" (the search was stopped first).
    minimal: str = "shortest"
    #: The user's predicate, for a "custom" finding.
    user_predicate: UserPredicate | None = field(default=None, compare=False, repr=False)

    @classmethod
    def _of(cls, scenario: Scenario, c: Counterexample, user: UserPredicate | None) -> Finding:
        v = c.violation
        return cls(
            scenario,
            v.predicate,
            v.cause,
            v.cause_text,
            v.message,
            tuple(c.steps),
            tuple(c.explained),
            c.minimal,
            user if v.predicate == "custom" else None,
        )

    @property
    def title(self) -> str:
        """What was violated, and how: "userfault_on_received via pte_unused drop ..."."""
        if self.user_predicate is not None:
            return f"your predicate {getattr(self.user_predicate, '__name__', '?')}"
        if self.cause == "other":
            return self.predicate
        return f"{self.predicate} via {self.cause_text}"

    def text(self) -> str:
        """The finding in kernel and QEMU terms, one numbered line per step."""
        width = max(len(s) for s in self.steps)
        how = self.minimal.replace("_", " ")
        lines = [f"{self.title}: {len(self.steps)} steps ({how})", f"  {self.message}"]
        for i, (s, e) in enumerate(zip(self.steps, self.explained, strict=True), 1):
            lines.append(f"  {i:2}. {s:<{width}}  {e}")
        return "\n".join(lines)

    def _imports(self) -> tuple[str, str]:
        """The import lines, and the replay's extra argument for the user's predicate."""
        f = self.user_predicate
        if f is None:
            return "import reclaim\n", ""
        name = getattr(f, "__name__", "predicate")
        module = getattr(f, "__module__", "__main__")
        if module == "__main__" or "<" in getattr(f, "__qualname__", "<"):
            where = f"# {name}: the predicate you explored with, from your script: paste it here\n"
        else:
            where = f"from {module} import {name}\n"
        return f"import reclaim\n{where}", f", predicate={name}"

    def python(self) -> str:
        """Python code that replays the finding."""
        imports, extra = self._imports()
        steps = "".join(f'    "{s}",\n' for s in self.steps)
        return (
            f"{imports}\n"
            f"scenario = {self.scenario!r}\n"
            f"replay = scenario.replay([\n{steps}]{extra})\n"
            "print(replay.violation)\n"
        )

    def recipe(self) -> str:
        """A written reproduction recipe for a real s390x KVM host (Markdown): the kernel and
        QEMU to run, the guest and host actions in order, the expected chain, and the code
        that replays it in the model. For findings that need KVM and QEMU, which no test of
        this machine can run."""
        from reclaim._reclaim import Profile

        sc = self.scenario
        prof = Profile(sc.profile)
        release = "v" + ".".join(map(str, prof.release))
        kernel = f"Linux {release} (profile {sc.profile})"
        if not prof.builtin:
            base = prof.base
            mine, theirs = prof.switches(), base.switches()
            changed = [f"{k}={mine[k]}" for k in mine if mine[k] != theirs.get(k)]
            kernel = (
                f"Linux {release}, profile {base.name} with {', '.join(changed) or 'no change'} "
                f"(the variant {sc.profile}: FINDINGS.md §6 says what each switch stands for)"
            )
        qemu = QEMU_LOGIC.get(sc.qemu, f"QEMU logic {sc.qemu}")
        start = (
            "at the postcopy switchover (STATTR_FLAG_DONE applied, before LISTEN registers "
            "guest RAM with userfaultfd)"
            if sc.start == "switchover"
            else "after LISTEN (guest RAM registered with userfaultfd, postcopy running)"
        )
        who = {"guest": "guest", "host": "host kernel", "qemu": "QEMU / migration"}
        rows = []
        by_actor: dict[str, list[str]] = {"guest": [], "host": [], "qemu": []}
        for i, (st, ex) in enumerate(zip(self.steps, self.explained, strict=True), 1):
            actor = ACTORS.get(st.split(":", 1)[0], "host")
            rows.append(f"| {i} | {who[actor]} | `{st}` | {ex} |")
            by_actor[actor].append(f"{i}. {ex}")
        lines = [
            f"# Reproduction recipe: {self.title} ({sc.profile})",
            "",
            f"Found by the model's explorer (`reclaim explore`): {len(self.steps)} steps, "
            f"{self.minimal.replace('_', ' ')}. It needs an s390x host with KVM and a postcopy "
            "migration, which no test of an x86 machine runs: a prediction to confirm.",
            "",
            "## Setup",
            "",
            f"- Destination host kernel: {kernel}, s390x, with swap, THP off.",
            f"- QEMU: {qemu} (`Scenario.qemu = {sc.qemu!r}`).",
            f"- Guest: {sc.vcpus} vCPU(s), CMMA on (the guest's ESSA hints); its pages "
            f"by index: {', '.join(f'{i}: {c}' for i, c in enumerate(sc.pages))}.",
            f"- Destination memory: {sc.host_pages} pages for the guest, {sc.swap_pages} of "
            "swap, so that reclaim meets guest pages during postcopy.",
            f"- Start: {start}.",
            "",
            "## Actions in order",
            "",
            "| # | who | step | what happens |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
        for actor, head in (
            ("guest", "Guest actions"),
            ("host", "Host actions (kernel, KVM)"),
            ("qemu", "QEMU and the migration"),
        ):
            lines += [f"### {head}", ""] + (by_actor[actor] or ["(none)"]) + [""]
        lines += [
            "## Expected chain",
            "",
            f"{self.cause_text if self.cause != 'other' else self.predicate}: {self.message}",
            "",
            "The steps above, in their order, are the chain; a kernel without the hazard "
            "ends the same actions with no such violation.",
            "",
            "## Replay in the model",
            "",
            "```python",
            self.python().rstrip("\n"),
            "```",
            "",
        ]
        return "\n".join(lines)

    def pytest(self) -> str:
        """A pytest test that replays the finding and asserts it (paste it into a test file)."""
        imports, extra = self._imports()
        steps = "".join(f'            "{s}",\n' for s in self.steps)
        name = _name(f"test_{self.predicate}_via_{self.cause}_on_{self.scenario.profile}")
        return (
            f"{imports}\n\n"
            f"def {name}() -> None:\n"
            f"    scenario = {self.scenario!r}\n"
            "    replay = scenario.replay(\n"
            f"        [\n{steps}        ]{extra}\n"
            "    )\n"
            "    assert replay.violation is not None\n"
            f'    assert replay.violation.predicate == "{self.predicate}"\n'
            f'    assert replay.violation.cause == "{self.cause}"\n'
        )


@dataclass(frozen=True)
class ExploreResult:
    """What :func:`explore` searched and found.

    ``scenario`` the scenario searched; ``findings`` the first violation of each (predicate,
    cause), shrunk; ``predicates`` the predicates checked (``"custom"`` for yours); ``depth``
    the bound asked for and ``depth_completed`` the deepest bound searched completely within
    ``max_states`` (the state budget); ``states`` the distinct states visited and
    ``transitions`` the steps applied (over all passes and walks); ``exhaustive`` whether every
    interleaving up to ``depth`` was searched; ``walks`` the random walks taken beyond it;
    ``seconds`` the wall time; ``por`` whether partial-order reduction was on and ``pruned``
    the steps it did not take (each only reordered independent steps of an interleaving
    already searched)."""

    scenario: Scenario
    findings: tuple[Finding, ...]
    predicates: tuple[str, ...]
    depth: int
    depth_completed: int
    max_states: int
    #: Distinct states visited over all search passes and walks (the initial state included).
    states: int
    #: Steps applied over all search passes and walks.
    transitions: int
    exhaustive: bool
    walks: int
    seconds: float
    por: bool = True
    #: Steps the exhaustive passes did not take (partial-order reduction; 0 without it).
    pruned: int = 0

    @property
    def states_per_second(self) -> float:
        """Distinct states visited per second."""
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def steps_per_second(self) -> float:
        """Steps applied per second (the iterative deepening applies shallow steps again in
        each deeper pass, so there are more steps than states)."""
        return self.transitions / self.seconds if self.seconds > 0 else 0.0

    def found(self, predicate: str, cause: str | None = None) -> Finding | None:
        """The finding for ``predicate`` (and ``cause``), if any."""
        for f in self.findings:
            if f.predicate == predicate and (cause is None or f.cause == cause):
                return f
        return None

    def _repr_html_(self) -> str:
        """The result as an HTML table (Jupyter): what was searched and each finding."""
        from html import escape

        sc = self.scenario
        rows = [
            ("scenario", f"profile {sc.profile}, QEMU {sc.qemu}, {len(sc.pages)} guest pages"),
            ("searched", f"depth {self.depth_completed} of {self.depth}, {self.states:,} states"),
            ("exhaustive", str(self.exhaustive)),
        ]
        rows += [(f"{f.predicate} ({f.cause})", f"{len(f.steps)} steps") for f in self.findings]
        if not self.findings:
            rows.append(("findings", "no violation up to the bound"))
        cells = "".join(
            f'<tr><th style="text-align:left">{escape(k)}</th><td>{escape(v)}</td></tr>'
            for k, v in rows
        )
        return f"<table><caption><b>ExploreResult</b></caption>{cells}</table>"

    def text(self) -> str:
        """A report: what was searched, each finding, and the causes found nowhere."""
        sc = self.scenario
        cover = (
            f"every interleaving up to depth {self.depth}"
            if self.exhaustive
            else f"depth {self.depth_completed} completely, deeper until the budget of "
            f"{self.max_states:,} states"
        )
        out = [
            f"profile {sc.profile}, QEMU {sc.qemu}: {len(sc.pages)} guest pages "
            f"({', '.join(sc.pages)}), {sc.vcpus} vCPU(s), {sc.host_pages} host pages",
            f"searched {cover}: {self.states:,} states, {self.transitions:,} steps, "
            f"{self.walks} random walks, {self.seconds:.1f} s "
            f"({self.states_per_second:,.0f} states/s, {self.steps_per_second:,.0f} steps/s)",
        ]
        if self.por:
            out.append(
                f"partial-order reduction: {self.pruned:,} steps not taken (they only reorder "
                "independent steps of an interleaving searched)"
            )
        for f in self.findings:
            out += ["", f.text()]
        if "userfault_on_received" in self.predicates:
            missing = [t for c, t in CAUSES.items() if not self.found("userfault_on_received", c)]
            if missing:
                out.append("")
                out += [f"userfault_on_received via {t}: none up to the bound" for t in missing]
        if not self.findings:
            out += ["", "no violation up to the bound"]
        return "\n".join(out)


class _Bar(StatusLine):
    """States searched, on stderr, once a search runs longer than a second."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def __call__(self, states: int) -> None:
        self.show(f"{self.label}: {states:>12,} states  {self.elapsed:6.1f} s")


#: The explorer's default state budget: 4.18 from LISTEN at bound 10 (5,950,590 states, about
#: 650 MB) fits in it (BENCHMARKS.md, explorer).
DEFAULT_MAX_STATES = 8_000_000


def explore(
    scenario: Scenario | str = "4.17",
    *,
    depth: int = 10,
    max_states: int = DEFAULT_MAX_STATES,
    walks: int = 200,
    walk_len: int = 40,
    seed: int = 0,
    predicates: Sequence[str] | None = None,
    predicate: UserPredicate | None = None,
    progress: Callable[[int], object] | bool | None = None,
    por: bool = True,
) -> ExploreResult:
    """Search ``scenario`` (or the default scenario of a profile name) for violations.

    ``predicates`` selects built-in predicates (all by default; see ``PREDICATES``);
    ``predicate`` adds your own, a function of an :class:`reclaim.ExploreState`.
    ``progress``: a function of the states searched so far, True for a bar on stderr, or None
    for a bar only when stderr is a terminal. An exception raised by ``predicate`` or
    ``progress`` (or Ctrl-C) ends the search and propagates. ``por``: partial-order reduction
    (sleep sets) in the exhaustive search, the same findings from fewer states; ``por=False``
    takes every interleaving (for comparison). A user ``predicate`` may read any of the state,
    so with one every interleaving is taken anyway.
    """
    sc = Scenario(scenario) if isinstance(scenario, str) else scenario
    names = tuple(PREDICATE_NAMES if predicates is None else predicates)
    bar: _Bar | None = None
    cb: Callable[[int], object] | None
    if callable(progress):
        cb = progress
    elif progress or (progress is None and sys.stderr.isatty()):
        bar = _Bar(f"explore {sc.profile}")
        cb = bar
    else:
        cb = None
    try:
        r: ExploreReport = explore_scenario(
            sc,
            depth=depth,
            max_states=max_states,
            walks=walks,
            walk_len=walk_len,
            seed=seed,
            predicates=list(names),
            predicate=predicate,
            progress=cb,
            por=por,
        )
    finally:
        if bar:
            bar.close()
    return ExploreResult(
        scenario=sc,
        findings=tuple(Finding._of(sc, c, predicate) for c in r.found),
        predicates=names + (("custom",) if predicate else ()),
        depth=r.depth,
        depth_completed=r.depth_completed,
        max_states=r.max_states,
        states=r.states,
        transitions=r.transitions,
        exhaustive=r.exhaustive,
        walks=r.walks,
        seconds=r.seconds,
        por=r.por,
        pruned=r.pruned,
    )


#: The built-in predicates.
PREDICATES: tuple[str, ...] = tuple(PREDICATE_NAMES)

__all__ = [
    "CAUSES",
    "PREDICATES",
    "ExploreResult",
    "Finding",
    "Scenario",
    "UserPredicate",
    "explore",
]
