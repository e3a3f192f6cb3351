"""Sweeps at scale: serial, local (processes), dask and resumed
sweeps of the same grid give the same table (but for wall times); a killed sweep loses no
finished run and does not redo it; a run that raises records its error and the sweep goes on;
grid files, the command line and the summary plot."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import reclaim
from conftest import SMALL_STUDY
from hypothesis import given, settings
from hypothesis import strategies as st
from reclaim.studies import postcopy
from reclaim.sweeper import _expand, load_grid, summary, summary_plot, sweep

SMALL: dict[str, Any] = dict(SMALL_STUDY)
GRID: dict[str, object] = {"profile": ["4.17", "4.18"], "seed": [0, 1], **SMALL}
PNG = b"\x89PNG\r\n\x1a\n"


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


class Counting:
    """The postcopy study, counting its runs (serial sweeps only: it is not sent anywhere)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> reclaim.studies.PostcopyResult:
        self.calls.append(params)
        return postcopy(**params)


def seeded(*, seed: int) -> reclaim.studies.PostcopyResult:
    """A study of one parameter (no **kwargs): its grid keys are checked against it."""
    return postcopy(seed=seed, **SMALL)


def crash_on_seed_1(**params: Any) -> reclaim.studies.PostcopyResult:
    """The postcopy study, but the run of seed 1 kills its process (as the OOM killer would)."""
    if params["seed"] == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return postcopy(**params)


@pytest.fixture(scope="module")
def serial() -> pd.DataFrame:
    return reclaim.sweep("postcopy", GRID, executor="serial")  # the package-level name


def test_serial_table_has_a_row_per_point_in_grid_order(serial: pd.DataFrame) -> None:
    assert list(zip(serial["profile"], serial["seed"], strict=True)) == [
        ("4.17", 0),
        ("4.17", 1),
        ("4.18", 0),
        ("4.18", 1),
    ]
    assert list(serial["outcome"]) == ["hung", "hung", "completed", "completed"]
    assert serial["error"].isna().all() and (serial["seconds"] > 0).all()
    assert (serial["guest_memory"] == "16MiB").all(), "scalars are constant columns"
    cols = list(serial.columns)
    assert cols[:9] == [*GRID, "outcome", "failure"]
    assert cols[-3:] == ["log_hash", "error", "seconds"]
    assert {"userfaults_on_received", "dest_pages_dropped"} <= set(cols)
    r = postcopy("4.17", seed=1, **SMALL)
    assert (
        serial["log_hash"][1] == r.log_hash
        and serial["dest_pages_dropped"][1] == (r.metrics["dest_pages_dropped"])
    )


def test_local_processes_give_the_serial_table(serial: pd.DataFrame) -> None:
    seen: list[tuple[int, int, int]] = []
    local = sweep("postcopy", GRID, workers=2, progress=lambda *a: seen.append(a))
    same(serial, local)
    assert seen[0] == (0, 0, 4) and seen[-1] == (4, 0, 4)


def test_dask_client_cluster_and_address_give_the_serial_table(serial: pd.DataFrame) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        same(serial, sweep("postcopy", GRID, executor=client))
        same(serial, sweep("postcopy", GRID, executor=cluster))
        same(serial, sweep("postcopy", GRID, executor=cluster.scheduler_address))
        assert client.status == "running", "the caller's client is left open"


def test_dask_worker_processes_give_the_serial_table(serial: pd.DataFrame) -> None:
    """Runs and results cross process boundaries (pickled), as on a real cluster."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        same(serial, sweep("postcopy", GRID, executor=cluster))


def test_dask_executor_without_dask_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(reclaim.ArgumentError, match=r"pip install 'reclaim\[dask\]'"):
        sweep("postcopy", GRID, executor="tcp://127.0.0.1:8786")


KILLED = """
import json, sys, time
from reclaim.studies import postcopy
from reclaim.sweeper import sweep

def slow(**params):
    time.sleep(0.5)
    return postcopy(**params)

sweep(slow, json.loads(sys.argv[2]), executor="serial", out=sys.argv[1])
"""


def test_killed_sweep_resumes_without_redoing_finished_runs(
    tmp_path: Path, serial: pd.DataFrame
) -> None:
    grid = {**GRID, "seed": [0, 1, 2, 3]}
    out = tmp_path / "runs.parquet"
    journal = tmp_path / ".runs.parquet.journal"  # the runs since the table was last written

    def journaled() -> int:
        return len(journal.read_text().splitlines()) if journal.exists() else 0

    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.Popen([sys.executable, str(script), str(out), json.dumps(grid)])
    try:
        deadline = time.monotonic() + 120
        # kill it between two writes of the table, with finished runs only in the journal
        while not (out.exists() and journaled() >= 2):
            assert proc.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "no runs finished in 120 s"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = pd.read_parquet(out)
    finished = len(before) + journaled()
    assert 1 <= len(before) < finished < 8 and before["error"].isna().all()

    study = Counting()
    resumed = sweep(study, grid, executor="serial", out=out)
    assert len(study.calls) == 8 - finished, "no finished run is lost or redone"
    done = set(zip(before["profile"], before["seed"], strict=True))
    assert all((c["profile"], c["seed"]) not in done for c in study.calls)
    kept = resumed.merge(before[["profile", "seed", "seconds"]], on=["profile", "seed"])
    assert (kept["seconds_x"] == kept["seconds_y"]).all() and (kept["seconds_x"] >= 0.5).all()
    assert not journal.exists(), "the table written at the end holds every run"

    full = sweep("postcopy", grid, executor="serial")
    same(full, resumed)
    same(full, pd.read_parquet(out))
    same(serial, full[full["seed"] < 2].reset_index(drop=True))
    again = Counting()
    same(full, sweep(again, grid, executor="serial", out=out))
    assert again.calls == [], "a finished sweep resumes to nothing"


def test_a_run_that_raises_records_its_error_and_the_sweep_goes_on(tmp_path: Path) -> None:
    grid = {"profile": "4.18", "workload": ["gaussian", "zipf:0.9"], "seed": 0, **SMALL}
    seen: list[tuple[int, int, int]] = []
    out = tmp_path / "runs.parquet"
    df = sweep("postcopy", grid, workers=2, out=out, progress=lambda *a: seen.append(a))
    assert df["error"][0].startswith("ArgumentError:") and "access pattern" in df["error"][0]
    assert pd.isna(df["outcome"][0]) and pd.isna(df["log_hash"][0])
    assert pd.isna(df["userfaults"][0])
    assert df["outcome"][1] == "completed" and pd.isna(df["error"][1])
    assert seen[-1] == (2, 1, 2)
    assert list(summary(df)[["workload", "completed", "error", "runs"]].itertuples(False)) == [
        ("gaussian", 0, 1, 1),
        ("zipf:0.9", 1, 0, 1),
    ]
    study = Counting()
    same(df, sweep(study, grid, executor="serial", out=out))
    assert [c["workload"] for c in study.calls] == ["gaussian"], "errors are run again"


def test_a_run_that_kills_its_process_is_the_only_error() -> None:
    grid = {**GRID, "profile": "4.18", "seed": [0, 1, 2, 3]}
    df = sweep(crash_on_seed_1, grid, workers=2)
    assert list(df["seed"]) == [0, 1, 2, 3]
    assert "BrokenProcessPool" in df["error"][1], df["error"][1]
    assert list(df["outcome"].drop(index=1)) == ["completed"] * 3
    assert df["error"].drop(index=1).isna().all()


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    sweep("postcopy", {**GRID, "workload": ["zipf", "gaussian"]}, executor="serial")
    assert "\rsweep [" in tty.getvalue() and tty.getvalue().endswith("8/8 done, 4 failed\n")


def test_resume_keeps_rows_outside_the_grid_and_refuses_other_parameters(tmp_path: Path) -> None:
    out = tmp_path / "runs.parquet"
    first = sweep("postcopy", {**GRID, "profile": "4.17"}, executor="serial", out=out)
    study = Counting()
    df = sweep(study, {**GRID, "profile": "4.18"}, executor="serial", out=out)
    assert len(study.calls) == 2
    assert list(df["profile"]) == ["4.18", "4.18", "4.17", "4.17"], "grid rows, then the rest"
    same(first, df.tail(2).reset_index(drop=True))
    with pytest.raises(reclaim.ArgumentError, match="holds a sweep over"):
        sweep("postcopy", {**GRID, "vcpus": [1]}, executor="serial", out=out)
    with pytest.raises(reclaim.ArgumentError, match="mix"):
        sweep("postcopy", {**GRID, "seed": ["0"]}, executor="serial", out=out)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"executor": "threads"}, "unknown executor"),
        ({"executor": "serial", "workers": 2}, "local executor only"),
        ({"workers": 0}, "positive"),
        ({"executor": 3}, "not a dask Client"),
        ({"grid": {"seed": [0, 0]}}, "twice"),
        ({"grid": {"seed": [0, "1"]}}, "mix"),
        ({"grid": {"seed": []}}, "no values"),
        ({"grid": {"outcome": [1]}}, "result column"),
        ({"grid": {"seed": [{}]}}, "not a str"),
        ({"study": "precopy"}, "unknown study"),
        ({"study": lambda **p: postcopy(**p)}, "not picklable"),
        ({"grid": {**GRID, "sed": [0]}}, r"postcopy study has no parameter 'sed' \(did you mean"),
        ({"grid": {**GRID, "host_mem": "8MiB"}}, r"its parameters: profile, source_profile"),
        ({"study": seeded}, r"the study seeded has no parameter 'profile'; its parameters: seed$"),
        ({"executor": "tcp://127.0.0.1:1"}, r"no dask scheduler at tcp://127.0.0.1:1 \(Conn"),
        ({"executor": "tcp://127.0.0.1"}, r"not a scheduler address like 'tcp://host:8786'"),
    ],
)
def test_bad_sweeps_are_refused_before_running(kwargs: dict[str, Any], match: str) -> None:
    """Each refused before any run (a misspelled grid key once, not at every point; a
    scheduler that refuses connections at once, not after dask's 30 s connect timeout)."""
    if str(kwargs.get("executor", "")).startswith("tcp://"):
        pytest.importorskip("distributed")
    args: dict[str, Any] = {"study": "postcopy", "grid": GRID, **kwargs}
    start = time.monotonic()
    with pytest.raises(reclaim.ArgumentError, match=match):
        sweep(args.pop("study"), args.pop("grid"), **args)
    assert time.monotonic() - start < 3


TOML = """
study = "postcopy"
executor = "serial"
out = "runs/postcopy.parquet"

[grid]
profile = ["4.17", "4.18"]
dest_memory = ["12MiB", "14MiB"]
seed = [0]
guest_memory = "16MiB"
source_memory = "24MiB"
other_load = "2MiB"
bandwidth = "25MB/s"
"""


def test_load_grid_reads_the_documented_format(tmp_path: Path) -> None:
    (tmp_path / "grid.toml").write_text(TOML)
    spec = load_grid(tmp_path / "grid.toml")
    assert spec.study == "postcopy" and spec.executor == "serial" and spec.workers is None
    assert spec.out == tmp_path / "runs" / "postcopy.parquet", "relative to the grid file"
    assert spec.grid["profile"] == ["4.17", "4.18"] and spec.grid["guest_memory"] == "16MiB"
    (tmp_path / "bad.toml").write_text('exector = "serial"\n[grid]\nseed = [0]\n')
    with pytest.raises(reclaim.FormatError, match="unknown keys"):
        load_grid(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text("[grid]\nseed = [[0]]\n")
    with pytest.raises(reclaim.FormatError, match=r"grid\.seed"):
        load_grid(tmp_path / "bad.toml")
    with pytest.raises(reclaim.FileError):
        load_grid(tmp_path / "missing.toml")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "reclaim.sweeper", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)


def test_cli_runs_a_grid_file_with_json_summary_and_plot(tmp_path: Path) -> None:
    (tmp_path / "grid.toml").write_text(TOML)
    r = cli("grid.toml", "--json", "--plot", "hang.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["runs"] == 4 and doc["errors"] == 0
    assert doc["out"] == str(tmp_path / "runs" / "postcopy.parquet")
    assert {(s["profile"], s["dest_memory"]) for s in doc["summary"]} == {
        ("4.17", "12MiB"),
        ("4.17", "14MiB"),
        ("4.18", "12MiB"),
        ("4.18", "14MiB"),
    }
    assert all(s["runs"] == 1 for s in doc["summary"])
    assert (tmp_path / doc["plot"]).read_bytes()[:8] == PNG
    assert len(pd.read_parquet(doc["out"])) == 4

    r = cli("grid.toml", "--executor", "serial", "--workers", "2", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "reclaim: error:" in r.stderr and "local executor only" in r.stderr
    (tmp_path / "bad.toml").write_text("[grid]\n")
    r = cli("bad.toml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("reclaim: error:"), r.stderr
    (tmp_path / "typo.toml").write_text(TOML.replace("seed =", "sed =").replace("runs/", "typo/"))
    r = cli("typo.toml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(
        "reclaim: error: grid: the postcopy study has no parameter 'sed' (did you mean 'seed'?)"
    )
    assert not (tmp_path / "typo").exists(), "nothing ran"
    r = cli("grid.toml", "--plot", "no/such/h.png", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == (
        "reclaim: error: cannot write --plot no/such/h.png: no directory no/such\n"
    )


def test_summary_plot_keeps_coinciding_series_visible(
    serial: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(self: Figure, *a: Any, **k: Any) -> None:
        drawn.append(self)
        save(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", keep)
    # one series per (profile, seed): 4.17's two seeds have the same hang rate at every x, as
    # have 4.18's: lines that would lie on one another
    summary_plot(serial, tmp_path / "p.png", by=("profile", "seed"), x="profile")
    lines = drawn[0].axes[0].get_lines()
    assert len(lines) == 4
    styles = {(ln.get_marker(), ln.get_linestyle()) for ln in lines}
    assert len(styles) == 4  # each series its own marker and line style
    xs = [tuple(np.asarray(ln.get_xdata()).tolist()) for ln in lines]
    assert len(set(xs)) == 4  # and shifted sideways: no two series at the same places
    legend = drawn[0].axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "profile=4.17, seed=0",
        "profile=4.17, seed=1",
        "profile=4.18, seed=0",
        "profile=4.18, seed=1",
    ]


def test_summary_plot_writes_a_png(serial: pd.DataFrame, tmp_path: Path) -> None:
    path = summary_plot(serial, tmp_path / "seed", by=("profile",), x="seed")
    assert path == tmp_path / "seed.png", "the suffix added, the real path returned"
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(reclaim.FileError, match="no directory"):
        summary_plot(serial, tmp_path / "plots" / "seed.png", by=("profile",), x="seed")
    assert not (tmp_path / "plots").exists(), "no directory created"
    path = summary_plot(serial, tmp_path / "by-profile.png", by=(), x="profile")
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(reclaim.ArgumentError, match="cannot plot"):
        summary_plot(serial, tmp_path / "x.png", x="dest_swap")


GRID_TOML = b"""study = "postcopy"
out = "runs.parquet"
executor = "serial"
workers = 2

[grid]
profile = ["4.17", "4.18"]
seed = [0, 1]
guest_memory = "16MiB"
turnover = 0.2
cmma = true
"""


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, len(GRID_TOML)), st.integers(0, 8), st.binary(max_size=8)),
        max_size=4,
    )
)
def test_mutated_grid_files_load_or_are_refused_with_a_reclaim_error(
    cuts: list[tuple[int, int, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The grid file parser on damaged input: a GridFile whose grid expands, or FormatError /
    ArgumentError (a ReclaimError naming the file), never another exception."""
    text = bytearray(GRID_TOML)
    for at, drop, insert in cuts:
        text[at : at + drop] = insert
    path = tmp_path_factory.mktemp("grid") / "grid.toml"
    path.write_bytes(bytes(text))
    try:
        g = load_grid(path)
        _expand(g.grid)
    except (reclaim.FormatError, reclaim.ArgumentError) as e:
        assert str(e), "an error with no message"


def test_a_switch_axis_runs_each_point_on_its_variant() -> None:
    """``set.cbrl_guard`` as an axis: the 4.18 point hangs on the CBRL path (FINDINGS.md §1),
    the point with the guard completes, in worker processes that never derived the variant."""
    grid = {
        "profile": "4.18",
        "set.cbrl_guard": ["None", "UffdArmed"],
        "seed": [0],
        "guest_memory": "128MiB",
        "free_policy": "random",
    }
    df = sweep("postcopy", grid, executor="local", workers=2, progress=False)
    assert list(df["set.cbrl_guard"]) == ["None", "UffdArmed"]
    assert df["error"].isna().all(), df["error"]
    assert list(df["outcome"]) == ["hung", "completed"]
    assert df["dest_cbrl_zapped"][0] > 0 and df["dest_cbrl_zapped"][1] == 0


@pytest.mark.parametrize(
    ("axis", "match"),
    [
        ({"set.cbrl_gard": ["UffdArmed"]}, r"names no profile switch; the switches: .*cbrl_guard"),
        (
            {"set.cbrl_guard": ["None", "Yes"]},
            r"cannot be \"Yes\"; its values are: None, UffdArmed",
        ),
        ({"set.cbrl-guard": ["None"]}, r"not a valid keyword name \(or set.<switch>"),
    ],
)
def test_a_switch_axis_is_checked_before_any_run(axis: dict[str, object], match: str) -> None:
    calls = Counting()
    with pytest.raises(reclaim.ArgumentError, match=match):
        sweep(calls, {"profile": "4.18", "seed": [0], **axis}, executor="serial")
    assert calls.calls == []


def test_a_grid_file_sets_switches_in_a_grid_set_table(tmp_path: Path) -> None:
    (tmp_path / "grid.toml").write_text(
        '[grid]\nprofile = "6.12"\nseed = [0]\n\n[grid.set]\ndiag10_guard = ["None", "UffdArmed"]\n'
    )
    spec = load_grid(tmp_path / "grid.toml")
    assert spec.grid == {"profile": "6.12", "seed": [0], "set.diag10_guard": ["None", "UffdArmed"]}
    (tmp_path / "bad.toml").write_text('[grid]\nseed = [0]\nset = "x"\n')
    with pytest.raises(reclaim.FormatError, match=r"grid\.set must be a table"):
        load_grid(tmp_path / "bad.toml")
