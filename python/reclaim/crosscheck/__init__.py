"""Cross-check the model's userfaultfd and fault paths against the real kernel of this machine.

A :class:`Scenario` (see :mod:`reclaim.crosscheck.scenario` for the format) runs on the model
(:func:`run_model`) and on the host kernel (:func:`run_host`, via ctypes: needs Linux x86_64
and root, skips otherwise); :func:`compare` lists where their observations differ, and
:func:`crosscheck` runs the :data:`LIBRARY` (or some of it) into rows for
:func:`format_table`::

    from reclaim import crosscheck
    print(crosscheck.format_table(crosscheck.crosscheck()))

:mod:`reclaim.crosscheck.ctest` exports scenarios as a kselftest-style C program (TAP, the
model's observations as the expectations) for machines without Python or the model.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from reclaim.crosscheck.host import run_host
from reclaim.crosscheck.library import BY_NAME, LIBRARY
from reclaim.crosscheck.model import run_model
from reclaim.crosscheck.scenario import (
    Msg,
    Observation,
    PageRef,
    RunResult,
    Scenario,
    Step,
    check_expectations,
    locate,
    locate_range,
    make_msg,
)


def compare(scenario: Scenario, model_result: RunResult, host_result: RunResult) -> list[str]:
    """The differences between a model run and a kernel run of ``scenario``, one line per
    step whose observations differ (empty when they agree, or when either side skipped)."""
    if model_result.skipped is not None or host_result.skipped is not None:
        return []
    diffs = []
    m_obs, h_obs = model_result.observations, host_result.observations
    for i in range(max(len(m_obs), len(h_obs))):
        label = scenario.steps[i].label() if i < len(scenario.steps) else "?"
        m = m_obs[i].render() if i < len(m_obs) else "(no observation)"
        h = h_obs[i].render() if i < len(h_obs) else "(no observation)"
        if m != h:
            diffs.append(f"step {i} ({label}): model {m!r} != kernel {h!r}")
    return diffs


@dataclass
class Row:
    """One scenario of a cross-check: the two summaries (``model``, ``kernel``), whether they
    ``agree``, why it was ``skipped`` (None if it ran on both sides), the ``differences`` (see
    :func:`compare`) and ``notes`` (the runners' remarks, and expectations the kernel run did
    not meet)."""

    scenario: str
    model: str
    kernel: str
    agree: bool
    skipped: str | None
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def host_arch() -> str:
    """The arch of this machine in the model's naming (``x86_64``, ``s390x``...)."""
    return platform.machine()


def crosscheck(
    names: list[str] | None = None,
    arch: str | None = None,
    profile: str = "6.12",
    progress: Callable[[int, int], object] | None = None,
) -> list[Row]:
    """Run the scenarios ``names`` (all of :data:`LIBRARY` for None) on the model (``arch``,
    the host's by default) and on the host kernel, one :class:`Row` each. ``progress`` is
    called with (scenarios done, scenarios in all) after each one."""
    chosen = LIBRARY if names is None else [BY_NAME[n] for n in names]
    model_arch = arch or host_arch()
    rows = []
    for i, sc in enumerate(chosen, 1):
        rows.append(make_row(sc, run_model(sc, profile=profile, arch=model_arch), run_host(sc)))
        if progress is not None:
            progress(i, len(chosen))
    return rows


def make_row(sc: Scenario, m: RunResult, h: RunResult) -> Row:
    """The :class:`Row` of a model run ``m`` and a kernel run ``h`` of ``sc`` (the host's or
    a guest's): the differences, and the kernel's unmet expectations among the notes."""
    skipped = m.skipped or h.skipped
    diffs = compare(sc, m, h)
    notes = [f"model: {n}" for n in m.notes] + [f"kernel: {n}" for n in h.notes]
    notes += check_expectations(sc, h)
    return Row(
        scenario=sc.name,
        model=m.summary(sc),
        kernel=h.summary(sc),
        agree=skipped is None and not diffs,
        skipped=skipped,
        differences=diffs,
        notes=notes,
    )


def format_table(rows: list[Row], width: int = 48) -> str:
    """A text table of rows: scenario, verdict, model and kernel summaries (cut to
    ``width``), then the differences and skip reasons under their row."""
    name_w = max([len("scenario"), *(len(r.scenario) for r in rows)])
    head = f"{'scenario':<{name_w}}  {'verdict':<8}  {'model':<{width}}  kernel"
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = "skipped" if r.skipped else ("agree" if r.agree else "DIFFER")
        model = r.model if len(r.model) <= width else r.model[: width - 1] + "…"
        kernel = r.kernel if len(r.kernel) <= width else r.kernel[: width - 1] + "…"
        lines.append(f"{r.scenario:<{name_w}}  {verdict:<8}  {model:<{width}}  {kernel}")
        if r.skipped:
            lines.append(f"{'':<{name_w}}    skipped: {r.skipped}")
        lines.extend(f"{'':<{name_w}}    {d}" for d in r.differences)
    n_agree = sum(r.agree for r in rows)
    n_skip = sum(r.skipped is not None for r in rows)
    lines.append(
        f"{len(rows)} scenarios: {n_agree} agree, {len(rows) - n_agree - n_skip} differ, "
        f"{n_skip} skipped"
    )
    return "\n".join(lines)


__all__ = [
    "LIBRARY",
    "Msg",
    "Observation",
    "PageRef",
    "Row",
    "RunResult",
    "Scenario",
    "Step",
    "check_expectations",
    "compare",
    "crosscheck",
    "format_table",
    "host_arch",
    "locate",
    "locate_range",
    "make_msg",
    "make_row",
    "run_host",
    "run_model",
]
