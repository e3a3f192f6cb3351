"""The ``reclaim`` command as a user runs it: subcommands, files written, exit codes, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg


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
    assert r.stderr.strip() == f"reclaim: error: {tmp_path / 'afile'}: File exists"
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
