"""The postcopy run and the explorer's scenario under random calls (see :mod:`fuzz_api`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import reclaim
from fuzz_machine import ApiMachineBase
from fuzz_model import (
    PROFILES,
    STATS,
    U64,
    Violation,
    _value_or_call,
    damage_file,
    mostly,
)
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule


class MigrationMachine(RuleBasedStateMachine):
    """The postcopy run and the explorer's scenario under random calls: PostcopyRun.advance
    with good and bad times, its queries, snapshot and restore (a restored run continues
    exactly as the run it was taken from; a damaged file is a FormatError), and
    Scenario.replay / explain of step lists mixing the scenario's steps with garbage. After
    every call the run passes check(), and every rejection is a useful ReclaimError (or a
    TypeError / OverflowError from the PyO3 conversion of a wrong Python value)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="reclaim-fuzz-")
        self.run: Any = None
        self.scenario: reclaim.Scenario | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(
        self, api: str, fn: Callable[..., Any], *args: Any, conversion: bool = False
    ) -> tuple[bool, Any]:
        """``fn(*args)``: (True, its result), or (False, None) for an allowed rejection."""
        STATS.calls += 1
        STATS.per_api[api] += 1
        try:
            return True, fn(*args)
        except reclaim.ReclaimError as e:
            if isinstance(e, reclaim.InternalError | reclaim.InvariantError):
                raise Violation(f"{api}{args!r} raised {type(e).__name__}: {e}") from e
            ApiMachineBase.judge_message(f"{api}{args!r}", e)
            STATS.errors[f"{api}: {type(e).__name__}"] += 1
            return False, None
        except (TypeError, OverflowError) as e:
            if not conversion:
                raise Violation(f"{api}{args!r} raised {type(e).__name__}: {e}") from e
            return False, None
        finally:
            if self.run is not None:
                self.run.check()

    @initialize(
        profile=st.sampled_from(PROFILES),
        guest=st.sampled_from(["4MiB", "8MiB"]),
        seed=st.integers(0, 3),
    )
    def setup(self, profile: str, guest: str, seed: int) -> None:
        from reclaim.studies.postcopy import prepare

        self.run = prepare(profile, guest_memory=guest, seed=seed, turnover=0.2)
        self.scenario = reclaim.Scenario(profile)

    @rule(delta=mostly(st.integers(0, 50_000_000), st.sampled_from([-1, U64, "1ms", 1.5, None])))
    def advance(self, delta: Any) -> None:
        until = self.run.now + delta if isinstance(delta, int) and delta >= 0 else delta
        conversion = not (isinstance(until, int) and 0 <= until < U64)
        before = self.run.now
        ok, _ = self.call("PostcopyRun.advance", self.run.advance, until, conversion=conversion)
        if not ok and self.run.now != before:
            raise Violation(f"a refused advance({until!r}) moved the clock")

    @rule(
        host=mostly(st.sampled_from([0, 1]), st.sampled_from([2, -1, "dest"])),
        what=st.sampled_from(["vmstat", "page_states", "progress", "steps", "heap", "result"]),
    )
    def query(self, host: Any, what: str) -> None:
        r = self.run
        bad = host not in (0, 1)
        if what == "vmstat":
            self.call("PostcopyRun.vmstat", r.vmstat, host, conversion=bad)
        elif what == "page_states":
            self.call("PostcopyRun.page_states", r.page_states, host, conversion=bad)
        elif what == "result":
            _, res = self.call("PostcopyRun.result", r.result)
            if res is None or res.outcome not in ("completed", "hung", "failed"):
                raise Violation(f"PostcopyRun.result() gave {res!r}")
        else:
            _value_or_call(
                {"progress": lambda: r.progress, "steps": lambda: r.steps}.get(what, r.heap_bytes)
            )

    @rule(
        name=st.sampled_from(["mm:handle_mm_fault", "userfaultfd:wake", "try_to_unmap", "nothing"]),
        on=st.booleans(),
    )
    def mute(self, name: str, on: bool) -> None:
        self.call("PostcopyRun.mute", self.run.mute, name, on)

    @rule(damage=st.sampled_from([None, None, "truncate", "flip"]), cut=st.floats(0, 1))
    def snapshot_restore(self, damage: str | None, cut: float) -> None:
        from reclaim._reclaim import PostcopyRun

        path = os.path.join(self.tmp, "run.snap")
        self.call("PostcopyRun.snapshot", self.run.snapshot, path)
        if damage is not None:
            damage_file(path, damage, cut)
            try:
                PostcopyRun.restore(path)
            except reclaim.FormatError as e:
                ApiMachineBase.judge_message("PostcopyRun.restore", e)
                return
            raise Violation(f"a {damage} snapshot was restored")
        _, twin = self.call("PostcopyRun.restore", PostcopyRun.restore, path)
        until = self.run.now + 20_000_000
        self.call("PostcopyRun.advance", self.run.advance, until)
        self.call("PostcopyRun.advance", twin.advance, until)
        twin.check()
        a, b = self.run.result(), twin.result()
        if (a.log_hash, a.outcome, self.run.now) != (b.log_hash, b.outcome, twin.now):
            raise Violation("a restored run does not continue as the run it was taken from")
        self.run = twin

    @rule(data=st.data(), n=st.integers(0, 8))
    def replay(self, data: st.DataObject, n: int) -> None:
        sc = self.scenario
        assert sc is not None
        known = sc.initial_steps()
        garbage = ["", "reclaim:99", "read:9:0", "alloc:0", "deliver:1", "\x00"]
        steps = [data.draw(st.sampled_from(known * 6 + garbage)) for _ in range(n)]
        which = data.draw(st.sampled_from(["replay", "explain"]))
        fn = sc.replay if which == "replay" else sc.explain
        self.call(f"Scenario.{which}", fn, steps)
