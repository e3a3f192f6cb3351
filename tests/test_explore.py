"""The explorer: it finds the seed bug and its siblings by itself, shrinks and replays them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import reclaim
from reclaim.explorer import Finding

UF = "userfault_on_received"


def _uf(profile: str, depth: int, **scenario: object) -> reclaim.ExploreResult:
    sc = reclaim.Scenario(profile, **scenario)  # type: ignore[arg-type]
    return reclaim.explore(sc, depth=depth, predicates=[UF], walks=0, progress=False)


def _is_one_minimal(f: Finding) -> bool:
    """Removing any single step loses the violation (or makes the trace impossible)."""
    for i in range(len(f.steps)):
        shorter = list(f.steps[:i] + f.steps[i + 1 :])
        try:
            r = f.scenario.replay(shorter, predicates=[f.predicate])
        except reclaim.ArgumentError:
            continue
        if r.violation is not None and r.violation.cause == f.cause:
            return False
    return True


def test_explorer_finds_the_seed_bug_on_4_17_from_a_neutral_scenario() -> None:
    # the default scenario: four guest pages, one of each migration state, all guest actions
    r = reclaim.explore("4.17", predicates=[UF], progress=False)
    assert r.exhaustive and r.depth_completed == 10
    assert r.seconds < 30
    f = r.found(UF, "pte_unused")
    assert f is not None, r.text()
    assert len(f.steps) == 7
    assert any(s.startswith(("reclaim", "direct_reclaim")) for s in f.steps)
    assert "pte_unused" in "\n".join(f.explained)
    assert "already received" in f.message
    assert _is_one_minimal(f)
    # the finding replays to the same violation at its last step
    rep = f.scenario.replay(list(f.steps))
    assert rep.violation is not None
    assert (rep.violation.predicate, rep.violation.cause) == (UF, "pte_unused")
    assert rep.step == len(f.steps) - 1
    assert rep.state.userfaults == [int(f.steps[-1].split(":")[2])]


def test_the_fix_keeps_reclaim_off_armed_pages_on_4_18_and_6_12() -> None:
    # from LISTEN on, every guest page is in an armed VMA: the reclaim path is clean on 4.18+
    for profile in ("4.18", "6.12"):
        r = _uf(profile, 6, start="listen")
        assert r.exhaustive and r.states > 10_000
        assert r.found(UF, "pte_unused") is None, r.text()
    assert _uf("4.17", 6, start="listen").found(UF, "pte_unused") is not None


def test_switchover_window_drops_unused_pages_before_listen_on_4_18() -> None:
    r = _uf("4.18", 7)
    f = r.found(UF, "pte_unused")
    assert f is not None
    drop = next(i for i, e in enumerate(f.explained) if "pte_unused" in e)
    listen = next(i for i, e in enumerate(f.explained) if "LISTEN" in e)
    assert drop < listen, f.text()


def test_each_way_a_received_page_goes_missing_is_found_where_the_profile_has_it() -> None:
    # the pre-4.14 zero page: a page received as zero in precopy is the shared zero page;
    # enabling storage keys zaps it (fa41ba0d08de moved that to s390_enable_sie)
    zero = {"pages": ["zero_received", "used_received"], "guest_steps": ["alloc", "enable_skey"]}
    assert _uf("4.13", 6, **zero).found(UF, "zero_page") is not None
    for profile in ("4.17", "4.18", "6.12"):
        r = _uf(profile, 6, **zero)
        assert r.exhaustive and r.found(UF, "zero_page") is None, r.text()
    # the CBRL zap of a swapped UNUSED page and DIAG 0x10 are unguarded on every profile
    for profile in ("4.18", "6.12"):
        r = _uf(profile, 7, start="listen", guest_steps=["alloc", "free", "diag10"])
        assert r.found(UF, "cbrl") is not None
        assert r.found(UF, "diag10") is not None


def test_report_names_causes_not_found_up_to_the_bound() -> None:
    text = _uf("4.18", 5, start="listen").text()
    assert "searched every interleaving up to depth 5" in text
    assert "pte_unused drop in try_to_unmap_one: none up to the bound" in text


def test_a_user_predicate_written_in_python_is_checked_and_shrunk() -> None:
    seen: list[str] = []

    def no_swapped_guest_page(st: reclaim.ExploreState) -> str | None:
        seen.append(st.phase)
        for g in range(st.pages):
            if st.pte(g).swap():
                return f"guest page {g} is swapped out"
        return None

    r = reclaim.explore(
        "4.18", depth=4, predicates=[], predicate=no_swapped_guest_page, walks=0, progress=False
    )
    f = r.found("custom")
    assert f is not None and "swapped out" in f.message
    assert f.steps[-1].startswith(("reclaim", "direct_reclaim"))
    assert len(f.steps) == 1
    assert seen
    assert f.title == "your predicate no_swapped_guest_page"
    code = f.pytest()
    assert "predicate=no_swapped_guest_page" in code and "paste it here" in code
    replay = f.scenario.replay(list(f.steps), predicates=[], predicate=no_swapped_guest_page)
    assert replay.violation is not None and replay.violation.predicate == "custom"


def test_an_exception_in_a_user_predicate_ends_the_search_and_propagates() -> None:
    def broken(st: reclaim.ExploreState) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        reclaim.explore("4.17", depth=6, predicate=broken, progress=False)
    with pytest.raises(reclaim.ArgumentError, match="returns None or True"):
        reclaim.explore("4.17", depth=6, predicate=lambda st: 3, progress=False)  # type: ignore[arg-type,return-value]


def test_progress_callback_can_stop_the_search() -> None:
    calls: list[int] = []

    def progress(states: int) -> None:
        calls.append(states)
        if len(calls) == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        reclaim.explore("4.17", depth=12, progress=progress)
    assert calls[:2] == [4096, 8192]


def test_generated_python_and_pytest_code_replays_the_finding(tmp_path: Path) -> None:
    f = _uf("4.17", 7).found(UF, "pte_unused")
    assert f is not None
    ns: dict[str, object] = {}
    exec(compile(f.pytest(), "finding.py", "exec"), ns)
    test = next(v for k, v in ns.items() if k.startswith("test_"))
    assert callable(test)
    test()
    script = tmp_path / "replay.py"
    script.write_text(f.python())
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert "userfault_on_received" in out.stdout


def test_same_seed_gives_the_same_findings() -> None:
    a = reclaim.explore("4.18", depth=5, walks=50, seed=7, progress=False)
    b = reclaim.explore("4.18", depth=5, walks=50, seed=7, progress=False)
    assert [(f.predicate, f.cause, f.steps) for f in a.findings] == [
        (f.predicate, f.cause, f.steps) for f in b.findings
    ]
    assert (a.states, a.transitions) == (b.states, b.transitions)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pages": ["used", "free_zero"]}, "unknown page class"),
        ({"pages": []}, "1 to 16 guest pages"),
        ({"vcpus": 0}, "1 to 4 vCPUs"),
        ({"guest_steps": ["jump"]}, "unknown guest step"),
        ({"start": "precopy"}, "switchover"),
        ({"host_pages": 8}, "host_pages"),
        ({"qemu": "9.9"}, "QEMU"),
    ],
)
def test_bad_scenarios_are_refused_with_a_reason(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(reclaim.ArgumentError, match=match):
        reclaim.Scenario("4.17", **kwargs)  # type: ignore[arg-type]


def test_bad_replays_and_bounds_are_refused() -> None:
    sc = reclaim.Scenario("4.17")
    with pytest.raises(reclaim.ArgumentError, match="not enabled"):
        sc.replay(["alloc:0:0"])  # the guest does not run before RUN
    with pytest.raises(reclaim.ArgumentError, match="unknown step"):
        sc.replay(["jump"])
    with pytest.raises(reclaim.ArgumentError, match="unknown predicate"):
        reclaim.explore(sc, predicates=["nothing"], progress=False)
    with pytest.raises(reclaim.ArgumentError, match="depth"):
        reclaim.explore(sc, depth=0, progress=False)
    # before RUN only the migration stream and host reclaim move
    first = sc.initial_steps()
    assert first[0] == "deliver" and "direct_reclaim" in first
    assert {f"reclaim:{g}" for g in range(4)} <= set(first)
    assert not any(s.startswith(("alloc", "free", "read", "write")) for s in first)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim.cli", "explore", *args], capture_output=True, text=True
    )


def test_cli_explore_reports_findings_as_json_and_writes_pytest_tests(tmp_path: Path) -> None:
    tests = tmp_path / "test_found.py"
    r = _cli(
        "--profile", "4.17", "--bound", "7", "--predicate", UF, "--json", "--pytest", str(tests)
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    causes = {f["cause"]: f for f in out[0]["findings"]}
    assert {"pte_unused", "diag10"} <= set(causes)
    assert causes["pte_unused"]["minimal"] == "shortest"
    assert out[0]["exhaustive"] is True
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    assert f"{len(out[0]['findings'])} passed" in run.stdout


def test_cli_explore_exit_codes() -> None:
    assert _cli("--profile", "4.17", "--bound", "7", "--fail-on-violation").returncode == 3
    bad = _cli("--profile", "4.17", "--predicate", "nothing")
    assert bad.returncode == 2
    assert "unknown predicate" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_walk_finding_is_shrunk_to_a_shortest_trace_not_just_by_deleting_steps() -> None:
    # a random walk finds the CBRL zap of a swapped UNUSED page in a long trace; deleting steps
    # alone left 18 (it reached EOF by page requests: fault, fault thread, request, page)
    r = reclaim.explore("4.17", depth=6, walks=3000, predicates=["blocked_at_end"], progress=False)
    f = r.found("blocked_at_end", "cbrl")
    assert f is not None, r.text()
    assert f.minimal == "shortest_for_its_guest_steps"
    # hand-checked: five stream messages to RUN, direct reclaim swaps page 0 out, the source
    # sends the two discarded pages, the guest frees page 0 (its ESSA puts it on the CBRL),
    # KVM zaps the swap PTE, the guest takes the page again and parks, EOF
    hand = [
        *["deliver"] * 5,
        "direct_reclaim",
        "send_next",
        "send_next",
        "deliver",
        "deliver",
        "free:0:0",
        "intercept:0",
        "alloc:0:0",
        "deliver",
    ]
    rep = f.scenario.replay(hand, predicates=["blocked_at_end"])
    assert rep.violation is not None and rep.step == len(hand) - 1
    assert (rep.violation.predicate, rep.violation.cause) == ("blocked_at_end", "cbrl")
    assert len(f.steps) <= len(hand), f.text()
    assert _is_one_minimal(f)
    # and what the exhaustive search finds is a shortest trace
    assert all(g.minimal == "shortest" for g in _uf("4.17", 7).findings)


def test_intercept_needs_its_vcpu_running() -> None:
    # page 0 is swapped out, then freed: its ESSA puts it on vCPU 0's CBRL
    sc = reclaim.Scenario("4.17", start="listen")
    prefix = ["reclaim:0", "deliver", "free:0:0"]
    assert sc.replay([*prefix, "intercept:0"]).violation is None
    # vCPU 0 parks on page 2 (discarded, not sent yet): it executes no ESSA, so KVM processes
    # no CBRL of it until the page arrives
    with pytest.raises(reclaim.ArgumentError, match="not enabled"):
        sc.replay([*prefix, "read:0:2", "intercept:0"])
    # traces written before direct reclaim had its name still replay
    assert sc.replay(["reclaim_batch"]).state.pte(0).swap()


def test_blocked_at_end_and_data_lost_are_each_checked_on_their_own() -> None:
    # the seed, finished: the guest's write parks on the dropped page until the cleanup
    seed = reclaim.Scenario(
        "4.17", start="listen", pages=["free_received", "used_dirty"], guest_steps=["alloc"]
    )
    alone = reclaim.explore(seed, depth=7, walks=0, predicates=["blocked_at_end"], progress=False)
    f = alone.found("blocked_at_end", "pte_unused")
    assert f is not None and f.minimal == "shortest", alone.text()
    assert f.steps[-1] == "deliver" and "EOF" in f.explained[-1]
    # the write completes after UFFDIO_UNREGISTER: nothing is lost, and selecting data_lost
    # alone reports nothing else
    lost = reclaim.explore(seed, depth=7, walks=0, predicates=["data_lost"], progress=False)
    assert lost.findings == ()
    assert seed.replay(list(f.steps), predicates=["data_lost"]).violation is None
    # two vCPUs: a read woken with a write to its page in flight may see the old value
    racy = reclaim.Scenario("4.17", start="listen", vcpus=2, pages=["free_received", "used_dirty"])
    trace = ["deliver", "send_next", "read:1:1", "write:0:1", "deliver"]
    assert racy.replay(trace, predicates=["data_lost"]).violation is None


def test_states_counts_every_distinct_state_visited() -> None:
    a = reclaim.explore("4.18", depth=3, walks=0, progress=False)
    b = reclaim.explore("4.18", depth=3, walks=100, progress=False)
    # the walks visit states beyond the bound, and they count
    assert b.states > a.states
    # the initial state and each distinct successor: a state per step at most
    assert 1 < a.states <= a.transitions + 1
    assert b.states_per_second == pytest.approx(b.states / b.seconds)
    assert b.steps_per_second == pytest.approx(b.transitions / b.seconds)
    assert "states/s" in b.text()


@pytest.mark.parametrize("step", ["alloc:0:99", "write:0:99", "free:0:99"])
def test_explain_refuses_a_step_replay_refuses(step: str) -> None:
    # page 99 is beyond guest RAM; before RUN the guest does not run at all
    with pytest.raises(reclaim.ArgumentError, match="not enabled"):
        reclaim.Scenario("4.17").explain([step])
    sc = reclaim.Scenario("4.17", start="listen")
    with pytest.raises(reclaim.ArgumentError, match="not enabled"):
        sc.explain(["reclaim:0", "deliver", step])
    with pytest.raises(reclaim.ArgumentError, match="not enabled"):
        sc.replay(["reclaim:0", "deliver", step])
    assert len(sc.explain(["reclaim:0", "deliver"])) == 2


def _findings(r: reclaim.ExploreResult) -> list[tuple[str, str, int, str]]:
    return [(f.predicate, f.cause, len(f.steps), f.minimal) for f in r.findings]


@pytest.mark.parametrize("profile", ["4.17", "4.18", "6.12"])
@pytest.mark.parametrize(("start", "depth"), [("switchover", 7), ("listen", 5)])
def test_partial_order_reduction_finds_what_every_interleaving_finds(
    profile: str, start: str, depth: int
) -> None:
    sc = reclaim.Scenario(profile, start=start)
    kw: dict[str, object] = {"depth": depth, "walks": 20, "seed": 3, "progress": False}
    plain = reclaim.explore(sc, por=False, **kw)  # type: ignore[arg-type]
    por = reclaim.explore(sc, **kw)  # type: ignore[arg-type]
    assert plain.exhaustive and por.exhaustive
    # the same (predicate, cause) pairs, each with a trace as short and as minimal
    assert _findings(por) == _findings(plain)
    for f in por.findings:
        assert f.scenario.replay(list(f.steps), predicates=[f.predicate]).violation is not None
    assert (plain.por, plain.pruned) == (False, 0)
    assert por.por and por.pruned > 0
    assert por.transitions < plain.transitions
    assert "partial-order reduction" in por.text()


def test_cli_explore_no_por_takes_every_interleaving() -> None:
    args = ("--profile", "4.18", "--start", "listen", "--bound", "4", "--walks", "0", "--json")
    on, off = (json.loads(_cli(*args, *extra).stdout)[0] for extra in ((), ("--no-por",)))
    assert (on["por"], off["por"]) == (True, False)
    assert on["pruned"] > 0 == off["pruned"]
    assert [(f["cause"], len(f["steps"])) for f in on["findings"]] == [
        (f["cause"], len(f["steps"])) for f in off["findings"]
    ]


def test_cli_explore_compare_searches_both_profiles_as_asked_with_no_por(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`reclaim explore --profile A --compare B --no-por` explores both without the reduction,
    as the plain `--no-por` does: the comparison is of the same search."""
    import reclaim.cli
    import reclaim.explorer

    seen: list[bool] = []
    real = reclaim.explorer.explore

    def spy(*a: object, **kw: object) -> object:
        seen.append(bool(kw.get("por", True)))
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(reclaim.explorer, "explore", spy)
    argv = ["explore", "--profile", "4.17", "--compare", "4.18", "--bound", "3", "--walks", "0"]
    assert reclaim.cli.main([*argv, "--json", "--no-por"]) == 0
    assert seen == [False, False]
