"""API fuzzing in CI: a short run of the state machine of
``tests/fuzz_api.py`` over the whole Python API. ``tests/fuzz_long.py`` (``make fuzz``) runs
the same machine for 100,000 calls and more."""

from __future__ import annotations

import time

import fuzz_api
import pytest
import reclaim
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

#: The CI budget: about 60 machines of up to 50 steps (a few seconds without a failure).
CI_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_api_fuzzing(capsys: pytest.CaptureFixture[str]) -> None:
    """Random call sequences: every call returns or raises a documented error, and after
    each one Kernel.check() and the model of page contents hold. Reports the calls made."""
    fuzz_api.STATS.reset()
    t0 = time.perf_counter()
    try:
        run_state_machine_as_test(fuzz_api.ApiMachine, settings=CI_SETTINGS)
    finally:
        s = fuzz_api.STATS
        dt = time.perf_counter() - t0
        with capsys.disabled():
            print(
                f"\nAPI fuzzing: {s.calls} API calls ({len(s.per_api)} distinct APIs) in "
                f"{s.machines} machines, {s.steps} steps, {s.checks} Kernel.check() calls, "
                f"{dt:.1f}s ({s.calls / max(dt, 1e-9):.0f} calls/s)"
            )
    assert s.calls > 1000, "the machine made too few calls to mean anything"
    assert s.outcomes["Process.read: ok"] and s.outcomes["Process.write: ok"]


def test_size_arguments_are_parsed_like_the_engine() -> None:
    """The model's reading of size arguments agrees with the engine (mmap lengths)."""
    k = reclaim.Kernel(profile="6.12", memory="1MiB", swap="0")
    p = k.spawn("p")
    sizes: list[int | str] = [
        "4KiB",
        " 8 k",
        "1 MiB",
        "4096",
        "3b",
        "lots",
        "-4096",
        "",
        "4.5KiB",
        "1.1b",
        "1.2.3k",
        "1.k",
    ]
    for v in [*sizes, 4096, -1]:
        expected = fuzz_api.size_value(v)
        try:
            a = p.mmap(v)
        except reclaim.ReclaimError:
            assert expected in (None, 0), v
        else:
            assert expected, v
            (end,) = [e for s, e, _ in p.vmas() if s <= a < e]
            assert end - a == fuzz_api.page_align(expected), v
            p.munmap(a, expected)


def test_migration_and_scenario_fuzzing() -> None:
    """PostcopyRun (advance, queries, snapshot/restore) and Scenario.replay/explain under
    random calls: check() after each, useful rejections, restored runs continue identically."""
    fuzz_api.STATS.reset()
    run_state_machine_as_test(
        fuzz_api.MigrationMachine,
        settings=settings(CI_SETTINGS, max_examples=15, stateful_step_count=25),
    )
    s = fuzz_api.STATS
    assert (
        s.per_api["PostcopyRun.advance"]
        and s.per_api["Scenario.replay"] + s.per_api["Scenario.explain"]
    ), dict(s.per_api)
