"""What "hung" means for the guest: each vCPU's stall on a page that was never coming, what
released it, and what a real guest prints for a stall that long; and the timeline that shows
it (labels and series, not pixels)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import SMALL_STUDY
from reclaim._reclaim import PostcopyResult, guest_watchdogs
from reclaim.plot import SERIES, reclaim_times, timeline_figure
from reclaim.stall import describe, watchdog_note
from reclaim.studies.postcopy import postcopy

STUDY: dict[str, Any] = dict(SMALL_STUDY)


@pytest.fixture(scope="module")
def hung() -> PostcopyResult:
    return postcopy("4.17", **STUDY)


@pytest.fixture(scope="module")
def fixed() -> PostcopyResult:
    return postcopy("4.18", **STUDY)


def test_a_417_hang_is_a_stall_that_only_the_postcopy_cleanup_ends(
    hung: PostcopyResult, fixed: PostcopyResult
) -> None:
    assert hung.outcome == "hung"
    h = hung.hang
    assert h is not None
    stalls = hung.stalls
    mine = [s for s in stalls if s["vcpu"] == h["vcpu"] and s["gfn"] == h["gfn"]]
    assert len(mine) == 1, stalls
    st = mine[0]
    end = hung.metrics["total_time_ns"]
    # qemu/dest.rs cleanup (postcopy_ram_incoming_cleanup: UFFDIO_UNREGISTER) wakes it at the end
    assert st["since"] == h["since"]
    assert st["released_by"] == "postcopy cleanup"
    assert st["released_at"] == end
    assert st["waited_ns"] == end - int(str(st["since"])) > 0
    assert st["guest_would_show"] == []  # the small study's stall lasts well under 20 s
    assert fixed.outcome == "completed" and fixed.stalls == []


def test_guest_watchdogs_are_the_kernels_defaults() -> None:
    # kernel/watchdog.c get_softlockup_thresh() = watchdog_thresh (10) * 2;
    # kernel/rcu/Kconfig.debug RCU_CPU_STALL_TIMEOUT default 21;
    # lib/Kconfig.debug DEFAULT_HUNG_TASK_TIMEOUT default 120 (kernel/hung_task.c)
    dogs = guest_watchdogs()
    assert [(d["name"], d["threshold_s"]) for d in dogs] == [
        ("soft lockup", 20),
        ("RCU CPU stall warning", 21),
        ("hung task", 120),
    ]
    assert all(d["knob"] and d["source"] and d["message"] for d in dogs)


def _stall(waited_s: float, released_by: str = "postcopy cleanup") -> dict[str, object]:
    return {
        "vcpu": 1,
        "gfn": 0x2A,
        "since": 0,
        "waited_ns": int(waited_s * 1e9),
        "released_at": None,
        "released_by": released_by,
        "guest_would_show": [],
    }


def test_describe_says_how_long_what_released_it_and_what_a_guest_prints() -> None:
    short = describe(_stall(0.049))
    assert "vCPU 1 waited 0.049 s on guest page 0x2a" in short
    assert "only the end of the migration released it" in short
    assert "prints nothing" in short
    long = describe(_stall(25, "never"))
    assert "nothing released it" in long
    assert "soft lockup (> 20 s)" in long and "RCU CPU stall warning (> 21 s)" in long
    assert "hung task" not in long
    assert "hung task (> 120 s)" in watchdog_note(121 * 10**9)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args], capture_output=True, text=True, timeout=300
    )


def _options() -> list[str]:
    return [a for k, v in SMALL_STUDY.items() for a in (f"--{k.replace('_', '-')}", v)]


def test_study_reports_the_stall_in_text_and_json() -> None:
    r = run_cli("study", "postcopy", "--profile", "4.17", *_options(), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["outcome"] == "hung"
    assert out["stalls"] and out["stalls"][0]["released_by"] == "postcopy cleanup"
    assert out["stalls"][0]["waited_ns"] > 0
    text = run_cli("study", "postcopy", "--profile", "4.17", *_options())
    assert text.returncode == 0, text.stderr
    words = " ".join(text.stdout.split())  # the sentences are wrapped at 100 columns
    assert "what the guest would see" in words
    assert "only the end of the migration released it" in words
    assert "a real guest prints nothing for a stall this short" in words


# ------------------------------------------------------------------------------ the timeline


def _vcpu_labels(ax: object) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]  # type: ignore[attr-defined]


def test_timeline_has_a_labelled_row_per_vcpu_under_the_reclaim_curves() -> None:
    r = postcopy("4.17", vcpus=4, **STUDY)
    fig = timeline_figure([r])
    curves, rows = fig.axes
    assert _vcpu_labels(rows) == ["vCPU 0", "vCPU 1", "vCPU 2", "vCPU 3"]
    # the vCPU rows are their own axes: nothing of them is drawn among the curves
    assert rows.get_ylim() == (4.0, 0.0)
    assert curves.get_ylabel().startswith("destination pages")
    top = curves.get_ylim()[1]
    assert top >= max(len(v) for v in reclaim_times(r).values())
    fig.clear()


def test_timeline_legend_counts_are_the_tables_pages_and_name_the_wait_colours(
    hung: PostcopyResult,
) -> None:
    fig = timeline_figure([hung])
    curves, rows = fig.axes
    labels = [t.get_text() for t in curves.get_legend().get_texts()]
    m = hung.metrics
    for name, metric in SERIES:
        assert f"{name}: {m[metric]} pages" in labels, labels
    assert "vCPU waits on a userfault" in labels
    assert "waits for a page QEMU already sent" in labels
    assert "migration complete" in labels
    notes = [t.get_text() for t in rows.texts]
    assert any(n.startswith("stalled ") and "only the end of migration" in n for n in notes)
    assert "longest stall" in curves.get_title(loc="left")
    fig.clear()


def test_reclaim_curves_count_what_the_table_counts(hung: PostcopyResult) -> None:
    times = reclaim_times(hung)
    assert len(times["dropped (pte_unused)"]) == hung.metrics["dest_pages_dropped"] > 0
    assert len(times["CBRL zap"]) == hung.metrics["dest_cbrl_zapped"]
