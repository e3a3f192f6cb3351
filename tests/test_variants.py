"""Derived profiles (issue 20): define a variant without a rebuild, use it everywhere a profile
is taken, compare two profiles, bisect their switch differences."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import reclaim
from reclaim.bisect import bisect, ddmin
from reclaim.variants import compare_explore, compare_study, load_profile_file

UF = "userfault_on_received"


def _causes(profile: str | reclaim.Profile, depth: int, **scenario: object) -> set[str]:
    sc = reclaim.Scenario(profile, **scenario)  # type: ignore[arg-type]
    r = reclaim.explore(sc, depth=depth, predicates=[UF], walks=0, progress=False)
    return {f.cause for f in r.findings}


def test_derive_changes_the_named_switches_and_keeps_the_rest() -> None:
    p = reclaim.Profile.derive("4.18", "t-cbrl", cbrl_guard="UffdArmed")
    assert p.name == "t-cbrl" and not p.builtin and p.base == reclaim.Profile("4.18")
    assert p.diff(reclaim.Profile("4.18")) == {"cbrl_guard": ("UffdArmed", "None")}
    assert p.release == (4, 18)
    # registered by name: every API that takes a name takes it
    assert reclaim.Profile("t-cbrl") == p
    assert reclaim.Kernel(profile="t-cbrl").profile == p


def test_derive_without_a_name_names_the_changes() -> None:
    p = reclaim.Profile.derive("4.17", unused_guard="uffdarmed")
    assert p.name == "4.17+unused_guard=UffdArmed"
    assert p.switches()["unused_guard"] == "UffdArmed"


@pytest.mark.parametrize(
    ("switches", "listed"),
    [
        ({"cbrl_gaurd": "UffdArmed"}, "cbrl_guard"),
        ({"unused_guard": "Sometimes"}, "None, UffdArmed, PresentAndUffdArmed"),
        ({"swp_exclusive": "maybe"}, "true, false"),
        ({"unused_guard": 3}, "None, UffdArmed, PresentAndUffdArmed"),
    ],
)
def test_an_unknown_switch_or_value_is_a_profile_error_listing_the_choices(
    switches: dict[str, Any], listed: str
) -> None:
    with pytest.raises(reclaim.ProfileError) as e:
        reclaim.Profile.derive("4.18", "t-bad", **switches)
    assert listed in str(e.value)
    assert e.value.errno == 22
    assert isinstance(e.value, reclaim.ArgumentError)


def test_a_variant_name_is_not_taken_twice_or_built_in() -> None:
    reclaim.Profile.derive("4.18", "t-once", diag10_guard="UffdArmed")
    assert reclaim.Profile.derive("4.18", "t-once", diag10_guard="UffdArmed").name == "t-once"
    with pytest.raises(reclaim.ProfileError, match="already defined"):
        reclaim.Profile.derive("4.18", "t-once")
    with pytest.raises(reclaim.ProfileError, match="built-in"):
        reclaim.Profile.derive("4.17", "4.18", unused_guard="UffdArmed")
    with pytest.raises(reclaim.ProfileError, match="letters, digits"):
        reclaim.Profile.derive("4.17", "has space")


def test_every_switch_is_listed_with_its_commit() -> None:
    names = [s["name"] for s in reclaim.SWITCHES]
    assert "unused_guard" in names and "cbrl_guard" in names
    for s in reclaim.SWITCHES:
        assert s["commit"], s
    seed = next(s for s in reclaim.SWITCHES if s["name"] == "unused_guard")
    assert "bce73e484239" in str(seed["commit"])
    # switches() has every switch of the table
    assert set(names) <= set(reclaim.Profile("6.12").switches())


def test_a_variant_pickles_to_a_process_that_never_derived_it() -> None:
    p = reclaim.Profile.derive("6.12", "t-pickle", cmma_apply="AfterListen")
    blob = pickle.dumps(p)
    code = (
        "import pickle, sys, reclaim; p = pickle.loads(sys.stdin.buffer.read()); "
        "print(p.name, p.switches()['cmma_apply'], reclaim.Profile('t-pickle') == p)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=blob, capture_output=True, check=True
    ).stdout.decode()
    assert out.split() == ["t-pickle", "AfterListen", "True"]


def test_a_snapshot_restores_a_variant_with_its_switches(tmp_path: Path) -> None:
    p = reclaim.Profile.derive("4.18", "t-snap", cbrl_guard="UffdArmed")
    k = reclaim.Kernel(profile=p, memory="16MiB", swap="16MiB")
    k.snapshot(tmp_path / "k.snap")
    r = reclaim.Kernel.restore(tmp_path / "k.snap")
    assert r.profile == p and r.profile.name == "t-snap"


def test_a_toml_file_defines_a_variant(tmp_path: Path) -> None:
    f = tmp_path / "v.toml"
    f.write_text('base = "4.18"\nname = "t-toml"\n[switches]\ncbrl_guard = "UffdArmed"\n')
    p = load_profile_file(f)
    assert p.name == "t-toml" and p.switches()["cbrl_guard"] == "UffdArmed"
    f.write_text('base = "4.18"\n[switches]\nnope = 1\n')
    with pytest.raises(reclaim.ProfileError, match="unknown switch"):
        load_profile_file(f)
    f.write_text('bas = "4.18"\n')
    with pytest.raises(reclaim.ProfileError, match="unknown keys"):
        load_profile_file(f)


def test_the_cbrl_guard_removes_the_cbrl_finding_and_nothing_appears() -> None:
    # FINDINGS.md §1: from LISTEN, __gmap_zap clears a received page's swap PTE (5 steps)
    fix = reclaim.Profile.derive("4.18", "t-cbrl-fix", cbrl_guard="UffdArmed")
    c = compare_explore("4.18", fix, start="listen", depth=6, walks=0, predicates=[UF])
    assert (UF, "cbrl") in c.disappear
    assert c.appear == ()
    assert (UF, "diag10") in c.persist


def test_the_diag10_guard_removes_the_diag10_finding() -> None:
    fix = reclaim.Profile.derive("6.12", "t-diag-fix", diag10_guard="UffdArmed")
    assert "diag10" in _causes("6.12", 4, start="listen")
    assert "diag10" not in _causes(fix, 4, start="listen")


def test_applying_storage_attributes_after_listen_closes_the_switchover_window() -> None:
    # FINDINGS.md §3: on 4.18 the pte_unused drop is found only from the switchover (7 steps)
    order = reclaim.Profile.derive("4.18", "t-order", cmma_apply="AfterListen")
    kernel = reclaim.Profile.derive("4.18", "t-nonres", cmma_set_unused="NonResidentOnly")
    pages = ["free_received"]
    assert "pte_unused" in _causes("4.18", 7, pages=pages)
    assert "pte_unused" not in _causes(order, 7, pages=pages)
    assert "pte_unused" not in _causes(kernel, 7, pages=pages)


def test_bisect_names_unused_guard_between_4_17_and_4_18() -> None:
    r = bisect("4.18", "4.17", "pte_unused", start="listen", depth=4)
    assert r.switches == ("unused_guard",)
    assert r.differences["unused_guard"] == ("UffdArmed", "None")
    assert r.steps and r.steps[-1].startswith("alloc")


def test_bisect_finds_the_one_switch_among_several() -> None:
    # bad: 4.18 with the seed fix undone and two unrelated switches changed
    bad = reclaim.Profile.derive(
        "4.18", "t-bis-bad", unused_guard="None", swp_exclusive=True, madv_cold_pageout=True
    )
    r = bisect("4.18", bad, "pte_unused", start="listen", depth=4)
    assert set(r.differences) == {"unused_guard", "swp_exclusive", "madv_cold_pageout"}
    assert r.switches == ("unused_guard",)


def test_bisect_refuses_a_finding_the_bad_profile_does_not_have() -> None:
    with pytest.raises(reclaim.ProfileError, match="does not find"):
        bisect("4.17", "4.18", "pte_unused", start="listen", depth=4)


def test_ddmin_finds_a_one_minimal_pair() -> None:
    calls: list[tuple[str, ...]] = []

    def test(s: tuple[str, ...]) -> bool:
        calls.append(s)
        return {"c", "f"} <= set(s)

    assert set(ddmin(list("abcdefgh"), test)) == {"c", "f"}


def test_study_compare_reports_outcomes_and_metrics_per_seed() -> None:
    fix = reclaim.Profile.derive("4.18", "t-study-cbrl", cbrl_guard="UffdArmed")
    c = compare_study("4.18", fix, [0], guest_memory="64MiB", free_policy="random")
    assert c.seeds == (0,)
    assert set(c.metrics()) >= {"userfaults_on_received", "dest_cbrl_zapped"}
    assert c.metrics()["dest_cbrl_zapped"][1] == 0  # the guard never zaps in an armed VMA
    assert "postcopy 4.18 -> t-study-cbrl" in c.text()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim.cli", *args], capture_output=True, text=True
    )


def test_cli_profiles_lists_switches_and_commits() -> None:
    r = _cli("profiles", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    row = next(s for s in d["switches"] if s["name"] == "unused_guard")
    assert row["by_profile"] == {
        "4.13": "None",
        "4.17": "None",
        "4.18": "UffdArmed",
        "6.12": "UffdArmed",
    }


def test_cli_explore_compare_with_set() -> None:
    r = _cli(
        "explore", "--profile", "4.18", "--compare", "4.18", "--compare-set",
        "cbrl_guard=UffdArmed", "--start", "listen", "--bound", "6", "--walks", "0",
        "--predicate", UF, "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [e["cause"] for e in d["disappear"]] == ["cbrl"]
    assert d["appear"] == []


def test_cli_bisect_names_unused_guard() -> None:
    r = _cli("bisect", "--good", "4.18", "--bad", "4.17", "--finding", "pte_unused", "--bound", "4")
    assert r.returncode == 0, r.stderr
    assert "unused_guard: UffdArmed -> None" in r.stdout


def test_cli_unknown_switch_is_exit_2_with_the_choices() -> None:
    r = _cli("explore", "--profile", "4.18", "--set", "cbrl_guard=Maybe")
    assert r.returncode == 2
    assert "None, UffdArmed" in r.stderr
