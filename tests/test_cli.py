"""The ``reclaim`` command as a user runs it: subcommands, files written, exit codes, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import reclaim
from reclaim.studies.postcopy import MAX_TIME
from reclaim.trace import replay, write_zipf


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_help_lists_every_subcommand() -> None:
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("demo", "study", "explore", "replay", "export", "sweep", "crosscheck", "bench"):
        assert re.search(rf"^\s+{cmd}\s", r.stdout, re.M), cmd


def test_demo_json_runs_the_three_runs_and_writes_the_plot(tmp_path: Path) -> None:
    plot = tmp_path / "demo.png"
    r = run("demo", "--json", "--plot", str(plot))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [x["outcome"] for x in out["runs"]][:2] == ["hung", "completed"]
    assert out["plot"] == str(plot)
    assert mpimg.imread(plot).shape[2] in (3, 4)


def test_export_writes_a_perfetto_trace_ftrace_text_and_a_heatmap(tmp_path: Path) -> None:
    trace, text, png = tmp_path / "t.json", tmp_path / "t.txt", tmp_path / "h.png"
    r = run(
        "export",
        "--profile",
        "4.17",
        "--guest-memory",
        "32MiB",
        "--perfetto",
        str(trace),
        "--ftrace",
        str(text),
        "--host",
        "1",
        "--heatmap",
        str(png),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["outcome"] == "hung" and out["perfetto"] == str(trace)
    events = json.loads(trace.read_text())["traceEvents"]
    assert {"M", "X", "C"} <= {e["ph"] for e in events}
    assert any(e["name"] == "blocked on userfault" for e in events)
    lines = [ln for ln in text.read_text().splitlines() if not ln.startswith("#")]
    assert lines and all(" [001] " in ln for ln in lines)
    assert any("mm_vmscan_lru_shrink_inactive: nid=0 nr_scanned=" in ln for ln in lines)
    assert mpimg.imread(png).shape[:2] == (500, 1200)


def test_export_without_an_output_is_a_one_line_error() -> None:
    r = run("export", "--profile", "4.17")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == "reclaim: error: say what to write: --perfetto, --ftrace and/or --heatmap"
    )


def test_an_output_path_that_cannot_be_written_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "t.json"  # a path through a regular file
    r = run("export", "--profile", "4.17", "--guest-memory", "16MiB", "--perfetto", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"reclaim: error: cannot write --perfetto {out}: {tmp_path / 'afile'} is not a directory"
    )
    assert "Traceback" not in r.stderr


def test_sweep_and_crosscheck_are_reachable(tmp_path: Path) -> None:
    h = run("sweep", "--help")
    assert h.returncode == 0 and "usage: reclaim sweep" in h.stdout
    missing = run("sweep", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    listed = run("crosscheck", "--list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) >= 25
    bad = run("crosscheck", "--scenario", "nothing")
    assert bad.returncode == 2 and "reclaim crosscheck --list" in bad.stderr


def test_a_closed_pipe_is_not_a_traceback() -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "reclaim.cli", "crosscheck", "--list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait() == 0 and "Traceback" not in err


def test_bench_quick_json_reports_rows_with_targets_and_the_machine() -> None:
    r = run("bench", "--quick", "--only", "memory", "--only", "reclaim", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["machine"]["cpus"] >= 1 and out["machine"]["kernel"]
    rows = {(x["suite"], x["what"]): x for x in out["rows"]}
    assert {s for s, _ in rows} == {"memory", "reclaim"}
    for x in out["rows"]:
        assert x["value"] > 0 and x["unit"] and x["target"]
    drop = next(x for (s, w), x in rows.items() if "pte_unused drop" in w)
    assert drop["peer"] == "host kernel" and drop["ratio"] == drop["value"] / drop["peer_value"]
    faults = run("bench", "--quick", "--only", "faults", "--json")
    assert faults.returncode == 0, faults.stderr
    first = next(x for x in json.loads(faults.stdout)["rows"] if "first touch" in x["what"])
    assert first["peer"] == "host kernel" and first["peer_value"] > 0
    assert first["ratio"] == first["value"] / first["peer_value"]
    bad = run("bench", "--only", "nothing")
    assert bad.returncode == 2


@pytest.mark.parametrize(
    ("args", "option", "bad", "low", "high"),
    [
        (["replay", "TRACE", "--limit"], "--limit", "-5", 1, 2**64 - 1),
        (["replay", "TRACE", "--limit"], "--limit", "0", 1, 2**64 - 1),
        (["replay", "TRACE", "--seed"], "--seed", "-1", 0, 2**64 - 1),
        (["explore", "--bound"], "--bound", "-1", 0, 2**32 - 1),
        (["explore", "--vcpus"], "--vcpus", "-1", 1, 2**32 - 1),
        (["explore", "--host-pages"], "--host-pages", "-1", 0, 2**64 - 1),
        (["explore", "--walks"], "--walks", "-1", 0, 2**64 - 1),
        (["explore", "--walk-len"], "--walk-len", "-1", 0, 2**32 - 1),
        (["explore", "--max-states"], "--max-states", "-1", 0, 2**64 - 1),
        (["explore", "--seed"], "--seed", str(2**64), 0, 2**64 - 1),
        (["demo", "--seed"], "--seed", "-1", 0, 2**64 - 1),
        (["study", "postcopy", "--seed"], "--seed", "-1", 0, 2**64 - 1),
        (["study", "postcopy", "--precopy-iterations"], "--precopy-iterations", "-1", 0, 2**32 - 1),
        (["study", "postcopy", "--vcpus"], "--vcpus", "0", 1, 2**32 - 1),
        (["export", "--perfetto", "t.json", "--seed"], "--seed", "-1", 0, 2**64 - 1),
        (["sweep", "grid.toml", "--workers"], "--workers", "0", 1, 2**64 - 1),
    ],
)
def test_integer_options_out_of_range_are_one_line_errors_naming_the_option(
    tmp_path: Path, args: list[str], option: str, bad: str, low: int, high: int
) -> None:
    """Every integer option is checked before anything runs: one line on stderr, exit 2, the
    option and its range named (no OverflowError traceback from the engine)."""
    trace = tmp_path / "t.bin"
    write_zipf(trace, 100, 10, format="binary")
    argv = [str(trace) if a == "TRACE" else a for a in args]
    r = run(*argv, bad, cwd=tmp_path)
    assert r.returncode == 2
    prog = "reclaim " + " ".join(a for a in argv if not a.startswith("-") and "." not in a)
    assert r.stderr.splitlines() == [
        f"{prog}: error: argument {option}: must be an integer from {low} to {high}, got {bad} "
        f"(see {prog} --help)"
    ]
    assert not list(tmp_path.glob("t.json")), "nothing ran"


def test_a_non_integer_option_is_a_one_line_error() -> None:
    r = run("demo", "--seed", "1.5")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "reclaim demo: error: argument --seed: expected an integer, not '1.5' "
        "(see reclaim demo --help)"
    ]


def test_replay_of_zero_requests_is_refused_by_the_api(tmp_path: Path) -> None:
    trace = tmp_path / "t.bin"
    write_zipf(trace, 100, 10, format="binary")
    with pytest.raises(reclaim.ArgumentError, match=r"^limit must be at least 1"):
        replay(trace, limit=0)
    with pytest.raises(reclaim.ArgumentError, match=r"^limit must be an integer from 0 to"):
        replay(trace, limit=-1)


@pytest.mark.parametrize("json_out", [False, True])
def test_a_failed_study_run_says_why_and_exits_1(json_out: bool) -> None:
    """A run that stops before the migration ends (max_time reached) is outcome "failed":
    the reason is in the text or the JSON and on stderr, and the exit code is 1 (README: 1 = a
    run failed)."""
    why = "the migration did not complete within 0 s of simulated time"
    argv = ["study", "postcopy", "--guest-memory", "16MiB", "--max-time", "0"]
    r = run(*argv, *["--json"] * json_out)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"reclaim: 4.18 seed 0 failed: {why}"]
    if json_out:
        out = json.loads(r.stdout)
        assert out["outcome"] == "failed" and out["failure"] == why
    else:
        assert f"4.18 seed 0: failed: {why}" in r.stdout
    ok = run("study", "postcopy", "--guest-memory", "16MiB", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["failure"] is None


def test_a_negative_max_time_is_refused() -> None:
    r = run("study", "postcopy", "--max-time", "-1")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"reclaim: error: max_time must be from 0 to {MAX_TIME:.3g} seconds, got -1.0"
    ]


def test_a_plot_into_a_missing_directory_is_refused_before_running_and_creates_nothing(
    tmp_path: Path,
) -> None:
    target = tmp_path / "no" / "such" / "x.png"
    for argv in (["study", "postcopy"], ["demo"]):
        r = run(*argv, "--plot", str(target))
        assert r.returncode == 2
        assert r.stderr.splitlines() == [
            f"reclaim: error: cannot write --plot {target}: no directory {target.parent}"
        ]
    r = run("export", "--heatmap", str(target))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"reclaim: error: cannot write --heatmap {target}: no directory {target.parent}"
    ]
    for option in ("--perfetto", "--ftrace"):
        r = run("export", option, str(target.with_suffix(".json")))
        assert r.returncode == 2
        assert r.stderr.splitlines() == [
            f"reclaim: error: cannot write {option} {target.with_suffix('.json')}: "
            f"no directory {target.parent}"
        ]
    assert not (tmp_path / "no").exists()
    r = run("export", "--heatmap", str(tmp_path / "h.jpg"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"reclaim: error: --heatmap writes a PNG image: give a name ending in .png, not "
        f"{tmp_path / 'h.jpg'}"
    ]


def test_a_heatmap_named_without_suffix_is_written_and_reported_as_png(tmp_path: Path) -> None:
    r = run("export", "--guest-memory", "16MiB", "--heatmap", str(tmp_path / "x"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["heatmap"] == str(tmp_path / "x.png")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
