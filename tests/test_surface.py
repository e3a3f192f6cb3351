"""Users' surface (issue: users' surface). Acceptance: the event log as DataFrame and Arrow
table (dtypes, filters, field names), vmstat time series of a running study, a Chrome Trace
Event file Perfetto opens (per-phase keys, metadata, blocked vCPUs of the 4.17 hang), ftrace
text in the kernel's mm_vmscan formats, and a page-state heatmap PNG."""

from __future__ import annotations

import functools
import itertools
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import reclaim
from conftest import SMALL_STUDY
from reclaim._reclaim import EVENT_FIELDS, EVENT_KINDS, TTU_RESULTS
from reclaim.events import (
    COLUMNS,
    fields_frame,
    run_slices,
    select,
    to_arrow,
    to_frame,
    vmstat_series,
)
from reclaim.export import chrome_trace, ftrace_text
from reclaim.heatmap import bin_states, page_heatmap
from reclaim.studies import PostcopyResult, postcopy, prepare

SMALL: dict[str, Any] = {**SMALL_STUDY, "seed": 1}
EVERY = 50_000_000  # 50 ms
PNG = b"\x89PNG\r\n\x1a\n"
DTYPES = {
    "t": np.uint64,
    "host": np.uint8,
    "pid": np.uint32,
    "tid": np.uint16,
    "addr": np.uint64,
    "a": np.uint64,
    "b": np.uint64,
    "c": np.uint64,
}


@pytest.fixture(scope="module")
def run417() -> tuple[pd.DataFrame, PostcopyResult]:
    """The destination's vmstat every 50 ms of a 4.17 run, and its result."""
    return vmstat_series(functools.partial(prepare, "4.17", **SMALL), host=1, every_ns=EVERY)


@pytest.fixture(scope="module")
def r417(run417: tuple[pd.DataFrame, PostcopyResult]) -> PostcopyResult:
    return run417[1]


@pytest.fixture(scope="module")
def df417(r417: PostcopyResult) -> pd.DataFrame:
    return to_frame(r417)


def oom_kernel() -> reclaim.Kernel:
    """A kernel without swap filled until a fault fails: kswapd gives up, direct reclaim runs."""
    k = reclaim.Kernel(profile="4.18", memory="16MiB", swap=0, seed=1)
    p = k.spawn("stress-ng-vm")
    ram = p.mmap("24MiB")
    for i in range(6144):
        if p.write(ram + i * 4096, i).kind != "completed":
            break
    return k


def swap_kernel() -> reclaim.Kernel:
    """Two processes, one writing more than memory: kswapd swaps."""
    k = reclaim.Kernel(profile="4.18", memory="16MiB", swap="16MiB", seed=1)
    a, b = k.spawn("writer"), k.spawn("reader")
    ra, rb = a.mmap("20MiB"), b.mmap("64KiB")
    for i in range(16):
        b.write(rb + i * 4096, i)
    for i in range(5120):
        a.write(ra + i * 4096, i)
    return k


# ------------------------------------------------------------------------ DataFrame / Arrow


def test_frame_has_the_columns_dtypes_and_every_event(
    r417: PostcopyResult, df417: pd.DataFrame
) -> None:
    assert tuple(df417.columns) == COLUMNS
    assert len(df417) == r417.n_events
    for name, dtype in DTYPES.items():
        assert df417[name].dtype == dtype, name
    assert isinstance(df417["kind"].dtype, pd.CategoricalDtype)
    assert list(df417["kind"].cat.categories) == EVENT_KINDS
    first = r417.events()[0]
    row = df417.iloc[0]
    assert (row["t"], row["kind"], row["pid"], row["tid"]) == (
        first.t,
        first.name,
        first.pid,
        first.tid,
    )
    assert Counter(df417["kind"].astype(str)) == Counter(e.name for e in r417.events())


def test_frame_filters_time_pid_kind_host(r417: PostcopyResult, df417: pd.DataFrame) -> None:
    since, until = 400_000_000, 700_000_000
    part = to_frame(r417, since=since, until=until)
    assert len(part) > 0
    assert part["t"].min() >= since and part["t"].max() < until
    assert len(part) == ((df417["t"] >= since) & (df417["t"] < until)).sum()
    pid = to_frame(r417, pid=101)
    assert len(pid) > 0 and set(pid["pid"]) == {101}
    assert len(to_frame(r417, pid=[100, 101])) == df417["pid"].isin([100, 101]).sum()
    drops = to_frame(r417, kinds="rmap:try_to_unmap_one", host=1)
    assert set(drops["kind"].astype(str)) == {"rmap:try_to_unmap_one"}
    assert set(drops["host"]) == {1}
    two = to_frame(r417, kinds=["mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep"])
    assert Counter(two["kind"].astype(str)) == {
        "mm_vmscan_kswapd_wake": (df417["kind"] == "mm_vmscan_kswapd_wake").sum(),
        "mm_vmscan_kswapd_sleep": (df417["kind"] == "mm_vmscan_kswapd_sleep").sum(),
    }
    both = to_frame(r417, since=since, until=until, kinds="kvm:vcpu_blocked", pid=100, host=1)
    expect = df417[
        (df417["t"] >= since)
        & (df417["t"] < until)
        & (df417["kind"] == "kvm:vcpu_blocked")
        & (df417["pid"] == 100)
        & (df417["host"] == 1)
    ]
    assert len(both) == len(expect) > 0
    assert len(to_frame(r417, until=0)) == 0
    with pytest.raises(reclaim.ArgumentError, match="unknown event kind"):
        to_frame(r417, kinds="mm_vmscan_nonsense")


def test_frame_of_a_kernel_filters_by_process() -> None:
    k = swap_kernel()
    df = to_frame(k)
    assert len(df) == len(k.events())
    reader = next(p.pid for p in k.processes() if p.name == "reader")
    mine = to_frame(k, pid=reader, kinds="mm:handle_mm_fault")
    assert len(mine) == 16 and set(mine["pid"]) == {reader}


def test_fields_frame_names_the_generic_fields(df417: pd.DataFrame) -> None:
    ttu = fields_frame(df417, "rmap:try_to_unmap_one")
    assert list(ttu.columns) == ["t", "host", "pid", "tid", "addr", "pfn", "result", "pteval"]
    assert len(ttu) == (df417["kind"] == "rmap:try_to_unmap_one").sum()
    dropped = (ttu["result"] == TTU_RESULTS.index("drop_pte_unused")).sum()
    assert dropped > 0
    sleep = fields_frame(df417, "mm_vmscan_kswapd_sleep")
    assert list(sleep.columns) == ["t", "host", "pid", "tid", "addr", "nid"]
    for kind, names in EVENT_FIELDS.items():
        cols = list(fields_frame(df417.head(0), kind).columns)
        assert cols == ["t", "host", "pid", "tid", "addr", *[n for n in names if n]], kind
    with pytest.raises(reclaim.ArgumentError):
        fields_frame(df417, "nonsense")


def test_arrow_table_schema_and_rows(r417: PostcopyResult, df417: pd.DataFrame) -> None:
    table = to_arrow(r417)
    assert isinstance(table, pa.Table)
    assert table.num_rows == r417.n_events
    assert table.schema.names == list(COLUMNS)
    for name, dtype in DTYPES.items():
        assert table.schema.field(name).type == pa.from_numpy_dtype(dtype), name
    assert table.schema.field("kind").type == pa.dictionary(pa.int8(), pa.string())
    assert table.column("kind").to_pylist()[:50] == df417["kind"].astype(str).tolist()[:50]
    meta = table.schema.metadata[b"reclaim.event_fields"]
    assert json.loads(meta) == EVENT_FIELDS
    assert table.to_pandas()["kind"].astype(str).equals(df417["kind"].astype(str))
    part = to_arrow(r417, kinds=["kvm:vcpu_blocked"], since=500_000_000, host=1)
    assert part.num_rows == len(to_frame(r417, kinds=["kvm:vcpu_blocked"], since=500_000_000))


def test_select_without_filters_is_the_engine_columns(r417: PostcopyResult) -> None:
    cols = select(r417)
    assert set(cols) == set(COLUMNS)
    assert all(len(c) == r417.n_events for c in cols.values())


def test_frame_and_arrow_share_the_column_buffers(
    monkeypatch: pytest.MonkeyPatch, r417: PostcopyResult
) -> None:
    made: list[dict[str, np.ndarray]] = []

    def spy(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        made.append(select(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(reclaim.events, "select", spy)
    df = to_frame(r417)
    numeric = [c for c in COLUMNS if c != "kind"]
    assert all(np.shares_memory(df[c].to_numpy(), made[-1][c]) for c in numeric)
    t = to_arrow(r417)
    assert all(
        t.column(c).chunks[0].buffers()[1].address == made[-1][c].ctypes.data for c in numeric
    )


def test_missing_pandas_or_pyarrow_is_an_argument_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, r417: PostcopyResult
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(reclaim.ArgumentError, match=r"pip install 'reclaim\[data\]'"):
        to_frame(r417)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(reclaim.ArgumentError, match="pyarrow"):
        to_arrow(r417)
    # the exports need neither
    assert chrome_trace(r417, tmp_path / "t.json", samples=[(0, 1, {"nr_free_pages": 1})])
    assert ftrace_text(r417, host=0).startswith("# tracer: nop")


# ------------------------------------------------------------------------------- vmstat


def test_vmstat_series_is_a_time_series_to_the_end_of_the_run(
    run417: tuple[pd.DataFrame, PostcopyResult],
) -> None:
    series, result = run417
    t = series.index.to_numpy()
    assert series.index.name == "t"
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert np.allclose(np.diff(t)[:-1], EVERY / 1e9)
    assert t[-1] == pytest.approx(result.metrics["total_time_ns"] / 1e9)
    assert series.attrs == {"host": 1, "every_ns": EVERY}
    assert {"nr_free_pages", "nr_swap_pages", "pswpout", "pgmajfault"} <= set(series.columns)
    assert all(dtype == np.int64 for dtype in series.dtypes)
    dest_pages = (14 << 20) // 4096
    assert series["nr_free_pages"].between(0, dest_pages).all()
    for counter in ("pswpout", "pswpin", "pgfault", "pgsteal_kswapd"):
        assert series[counter].is_monotonic_increasing, counter
    last = series.iloc[-1]
    assert last["pgmajfault"] == result.metrics["dest_pgmajfault"]
    assert last["pswpout"] > 0 and last["nr_swap_pages"] < series["nr_swap_pages"].iloc[0]
    assert result.outcome == "hung"


def test_vmstat_series_counters_and_arguments() -> None:
    run = prepare("4.18", **SMALL)
    series, result = vmstat_series(
        run, host=0, every_ns=200_000_000, counters=["nr_free_pages", "pgfault"]
    )
    assert list(series.columns) == ["nr_free_pages", "pgfault"]
    assert result.outcome == "completed"
    assert list(run_slices(run, EVERY)) == [run.now]  # finished: one sample, no step
    with pytest.raises(reclaim.ArgumentError, match="unknown vmstat counter"):
        vmstat_series(prepare("4.18", **SMALL), host=1, every_ns=EVERY, counters=["nr_fre"])
    with pytest.raises(reclaim.ArgumentError, match="every_ns"):
        vmstat_series(prepare("4.18", **SMALL), host=1, every_ns=0)


# -------------------------------------------------------------------------- Chrome trace

PHASES = {"X", "i", "C", "M", "s", "f"}
METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def check_trace_event_format(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys the Trace Event format requires per phase; returns the events."""
    assert set(doc) >= {"traceEvents", "displayTimeUnit"} and doc["displayTimeUnit"] == "ms"
    events: list[dict[str, Any]] = doc["traceEvents"]
    for e in events:
        assert {"name", "ph", "ts", "pid", "tid"} <= set(e), e
        assert isinstance(e["name"], str) and e["ph"] in PHASES, e
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] >= 0, e
        elif e["ph"] == "C":
            assert e["args"] and all(isinstance(v, int | float) for v in e["args"].values()), e
        elif e["ph"] == "i":
            assert e.get("s", "t") in {"g", "p", "t"}, e
        elif e["ph"] in {"s", "f"}:  # flow events: an id, and "f" binds to its enclosing slice
            assert isinstance(e["id"], int) and e["cat"], e
            assert e["ph"] == "s" or e["bp"] == "e", e
        else:
            assert e["name"] in METADATA and isinstance(e["args"], dict), e
    return events


def test_chrome_trace_of_the_417_hang(
    tmp_path: Path, run417: tuple[pd.DataFrame, PostcopyResult]
) -> None:
    series, r = run417
    path = chrome_trace(r, tmp_path / "sub" / "417.json", samples=series)
    assert path == tmp_path / "sub" / "417.json"
    doc = json.loads(path.read_text())
    events = check_trace_event_format(doc)
    assert doc["otherData"]["outcome"] == "hung"
    meta = [e for e in events if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    hosts = {p: n for p, n in procs.items() if not n.startswith("causal chain")}
    assert sorted(hosts.values()) == ["destination", "source"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert {"vCPU 0", "vCPU 1", "kswapd0"} <= set(threads.values())
    for e in events:
        if e["ph"] in {"X", "i"}:
            assert (e["pid"], e["tid"]) in threads, e
    dest = next(pid for pid, name in procs.items() if name == "destination")
    blocked = [e for e in events if e["name"] == "blocked on userfault"]
    n_blocked = sum(1 for e in r.events("kvm:vcpu_blocked"))
    assert len(blocked) == n_blocked > 0
    assert all(e["pid"] == dest and threads[dest, e["tid"]].startswith("vCPU") for e in blocked)
    woken = fields_frame(to_frame(r, kinds="sched:thread_woken"), "sched:thread_woken")
    assert sum(e["dur"] for e in blocked) == pytest.approx(woken["blocked_ns"].sum() / 1e3)
    hang = r.hang
    assert hang is not None
    assert any(
        e["ts"] == pytest.approx(int(hang["since"] or 0) / 1e3)
        and threads[dest, e["tid"]] == f"vCPU {hang['vcpu']}"
        for e in blocked
    )
    by_thread: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if e["ph"] == "X":
            by_thread.setdefault(e["tid"], []).append((e["ts"], e["dur"]))
    for spans in by_thread.values():  # slices of a thread do not overlap
        spans.sort()
        assert all(a + d <= b + 1e-6 for (a, d), (b, _) in itertools.pairwise(spans))
    names = Counter(e["name"] for e in events)
    assert names["userfault"] == r.metrics["userfaults"]
    assert names["drop_pte_unused"] == r.metrics["dest_pages_dropped"] > 0
    assert names["kswapd"] == len(r.events("mm_vmscan_kswapd_wake"))
    counters = [e for e in events if e["ph"] == "C"]
    assert Counter(e["name"] for e in counters) == {
        "free pages": len(series),
        "swap in use": len(series),
    }
    swap = [e["args"]["pages"] for e in counters if e["name"] == "swap in use"]
    assert swap[0] == 0 and max(swap) > 0


def test_perfetto_shows_the_causal_chain_as_arrows_on_a_track_of_its_own(
    tmp_path: Path, r417: PostcopyResult
) -> None:
    doc = json.loads(chrome_trace(r417, tmp_path / "chain.json").read_text())
    events = check_trace_event_format(doc)
    hang = r417.hang
    assert hang is not None
    procs = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    chain_pid = next(p for p, n in procs.items() if n.startswith("causal chain"))
    assert procs[chain_pid] == f"causal chain: guest page {hang['gfn']:#x}"
    threads = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    steps = [e for e in events if e["ph"] == "X" and e["pid"] == chain_pid]
    step_slices = [e for e in steps if threads[e["tid"]].startswith("steps")]
    # every step of the chain is on the track (steps at one instant share a slice)
    assert len(step_slices) == len({int(str(s["t"])) for s in r417.chain}) > 3
    assert any("pte_unused" in e["name"] for e in step_slices)
    # consecutive steps are joined by arrows: a start in one slice, a finish where the next begins
    flows = [e for e in events if e["ph"] in {"s", "f"}]
    assert len(flows) == 2 * (len(step_slices) - 1)
    starts = {e["ts"] for e in step_slices}
    assert all(e["ts"] in starts for e in flows if e["ph"] == "f")
    # the hang: a marked slice on its own thread, as long as the stall
    marked = [e for e in steps if threads[e["tid"]] == f"HANG vCPU {hang['vcpu']}"]
    assert len(marked) == 1 and marked[0]["name"].startswith(f"HANG: vCPU {hang['vcpu']} waits")
    stall = next(s for s in r417.stalls if s["vcpu"] == hang["vcpu"])
    assert marked[0]["dur"] == pytest.approx(int(str(stall["waited_ns"])) / 1e3)
    assert "only the end of the migration released it" in marked[0]["args"]["what"]
    blocked = [e for e in events if e["name"] == "blocked on userfault" and "HANG" in e["args"]]
    assert len(blocked) == len(r417.stalls)


def test_chrome_trace_of_418_and_of_sample_tuples(tmp_path: Path) -> None:
    run = prepare("4.18", **SMALL)
    samples = []
    for now in run_slices(run, EVERY):
        samples += [(now, host, run.vmstat(host)) for host in (0, 1)]
    r = run.result()
    doc = json.loads(chrome_trace(r, tmp_path / "418.json", samples=samples).read_text())
    events = check_trace_event_format(doc)
    names = Counter((e["pid"], e["name"]) for e in events)
    assert not any(name == "drop_pte_unused" for _, name in names)
    assert names[1, "free pages"] == names[2, "free pages"] == len(samples) // 2
    bad = pd.DataFrame({"nr_free_pages": [1]})
    with pytest.raises(reclaim.ArgumentError, match="attrs"):
        chrome_trace(r, tmp_path / "bad.json", samples=bad)


def test_chrome_trace_of_a_kernel_has_direct_reclaim(tmp_path: Path) -> None:
    k = oom_kernel()
    doc = json.loads(chrome_trace(k, tmp_path / "k.json").read_text())
    events = check_trace_event_format(doc)
    direct = [e for e in events if e["name"] == "direct reclaim" and e["ph"] == "X"]
    assert len(direct) == len(k.events("mm_vmscan_direct_reclaim_begin")) > 0
    assert all(e["args"] == {"nr_reclaimed": 0} for e in direct)
    assert doc["otherData"] == {"profile": "4.18"}


# --------------------------------------------------------------------------- ftrace text

LINE = re.compile(
    r"^(?P<task>.{16})-(?P<pid>\d+) +\[(?P<cpu>\d{3})\] \.{5} +(?P<secs>\d+)\.(?P<usecs>\d{6}): "
    r"(?P<tp>[\w:]+): (?P<fields>.*)$"
)
# TP_printk of include/trace/events/vmscan.h (mainline), with the fields the model fills.
TP_PRINTK = {
    "mm_vmscan_kswapd_wake": "nid=%d order=%d",
    "mm_vmscan_kswapd_sleep": "nid=%d",
    "mm_vmscan_direct_reclaim_begin": "order=%d gfp_flags=%s",
    "mm_vmscan_direct_reclaim_end": "nr_reclaimed=%lu",
    "mm_vmscan_lru_shrink_inactive": "nid=%d nr_scanned=%ld nr_reclaimed=%ld nr_dirty=%ld "
    "nr_writeback=%ld nr_congested=%ld nr_immediate=%ld nr_activate_anon=%d "
    "nr_activate_file=%d nr_ref_keep=%ld nr_unmap_fail=%ld priority=%d flags=%s",
    "mm_vmscan_lru_shrink_active": "nid=%d nr_taken=%ld nr_active=%ld nr_deactivated=%ld "
    "nr_referenced=%ld priority=%d flags=%s",
    "mm_vmscan_write_folio": "page=%p pfn=0x%lx flags=%s",
}


def printk_regex(fmt: str) -> re.Pattern[str]:
    conv = {"%d": r"-?\d+", "%ld": r"-?\d+", "%lu": r"\d+", "%lx": "[0-9a-f]+"}
    conv |= {"%p": "[0-9a-f]{16}", "%s": r"[A-Z_|]+"}
    parts = re.split(r"(%l?[dux]|%[ps])", fmt)
    return re.compile("".join(conv.get(p, re.escape(p)) for p in parts) + "$")


def check_ftrace(text: str, n: int) -> list[re.Match[str]]:
    lines = text.splitlines()
    assert lines[0] == "# tracer: nop"
    body = [line for line in lines if not line.startswith("#")]
    assert len(body) == n
    matches = []
    for line in body:
        m = LINE.match(line)
        assert m, line
        fmt = TP_PRINTK.get(m["tp"])
        if fmt is not None:
            assert printk_regex(fmt).match(m["fields"]), line
        matches.append(m)
    stamps = [int(m["secs"]) * 1_000_000 + int(m["usecs"]) for m in matches]
    assert stamps == sorted(stamps)
    return matches


def test_ftrace_text_of_a_study_in_the_kernel_formats(tmp_path: Path, r417: PostcopyResult) -> None:
    text = ftrace_text(r417, tmp_path / "trace")
    assert (tmp_path / "trace").read_text() == text
    matches = check_ftrace(text, r417.n_events)
    seen = Counter(m["tp"] for m in matches)
    for tp in (
        "mm_vmscan_kswapd_wake",
        "mm_vmscan_kswapd_sleep",
        "mm_vmscan_lru_shrink_inactive",
        "mm_vmscan_lru_shrink_active",
        "mm_vmscan_write_folio",
    ):
        assert seen[tp] > 0, tp
    vmscan = [m for m in matches if m["tp"].startswith("mm_vmscan")]
    assert {m["task"].strip() for m in vmscan} == {"kswapd0"}
    assert {m["cpu"] for m in vmscan} == {"001"}
    write = next(e for e in r417.events("mm_vmscan_write_folio"))
    line = next(m for m in vmscan if m["tp"] == "mm_vmscan_write_folio")
    assert f"pfn={write.fields()['pfn']:#x} " in line["fields"]
    assert line["fields"].endswith("flags=RECLAIM_WB_ANON|RECLAIM_WB_ASYNC")
    sleep = next(m for m in vmscan if m["tp"] == "mm_vmscan_kswapd_sleep")
    assert sleep["fields"] == "nid=0"
    fault = next(m for m in matches if m["tp"] == "mm:handle_mm_fault")
    assert re.match(r"pid=\d+ tid=\d+ addr=0x[0-9a-f]+ pfn=0x[0-9a-f]+ path=\S+", fault["fields"])
    dest = ftrace_text(r417, host=1)
    check_ftrace(dest, int((to_frame(r417)["host"] == 1).sum()))


def test_ftrace_text_of_a_study_names_qemus_threads_and_says_what_the_model_lacks(
    r417: PostcopyResult,
) -> None:
    text = ftrace_text(r417)
    notes = [line for line in text.splitlines() if line.startswith("# reclaim:")]
    assert any(
        "no CPUs: the CPU column is the host (000 source, 001 destination)" in n for n in notes
    )
    assert any("<...>" in n for n in notes)
    tasks = {m["task"].strip(): m for m in check_ftrace(text, r417.n_events)}
    # QEMU's threads as the kernel would name them: vCPUs "CPU n/KVM", the migration threads
    assert {"CPU 0/KVM", "CPU 1/KVM", "live_migration", "postcopy/listen", "kswapd0"} <= set(tasks)
    assert tasks["live_migration"]["cpu"] == "000" and tasks["postcopy/listen"]["cpu"] == "001"
    blocked = [m for m in check_ftrace(text, r417.n_events) if m["tp"] == "kvm:vcpu_blocked"]
    assert blocked and all(m["task"].strip().endswith("/KVM") for m in blocked)
    phases = [m for m in check_ftrace(text, r417.n_events) if m["tp"] == "qemu:migration_phase"]
    assert {m["task"].strip() for m in phases} == {"live_migration", "postcopy/listen"}
    requests = [m for m in tasks.values() if m["tp"] == "qemu:postcopy_ram_fault_thread_request"]
    assert all(m["task"].strip() == "postcopy/fault" for m in requests)


def test_ftrace_text_of_a_kernel_names_tasks_and_direct_reclaim() -> None:
    k = oom_kernel()
    matches = check_ftrace(ftrace_text(k), len(k.events()))
    begin = next(m for m in matches if m["tp"] == "mm_vmscan_direct_reclaim_begin")
    assert begin["fields"] == "order=0 gfp_flags=GFP_HIGHUSER_MOVABLE"
    assert begin["task"].strip() == "<...>"
    end = next(m for m in matches if m["tp"] == "mm_vmscan_direct_reclaim_end")
    assert end["fields"] == "nr_reclaimed=0"
    faults = [m for m in matches if m["tp"] == "mm:handle_mm_fault"]
    assert {m["task"].strip() for m in faults} == {"stress-ng-vm"}
    k2 = swap_kernel()
    shrink = [
        m
        for m in check_ftrace(ftrace_text(k2), len(k2.events()))
        if m["tp"] == "mm_vmscan_lru_shrink_inactive"
    ]
    assert shrink and all(m["task"].strip() == "kswapd0" for m in shrink)
    assert all(
        m["fields"].endswith("priority=12 flags=RECLAIM_WB_ANON|RECLAIM_WB_ASYNC") for m in shrink
    )


# ------------------------------------------------------------------------------ heatmap


def test_bin_states_gives_fractions_per_bin() -> None:
    states = np.array([0, 1, 1, 2, 2, 2, 1, 0, 3, 1], dtype=np.uint8)
    frac = bin_states(states, 4)
    assert frac.shape == (4, 4)  # none, present, swapped, lost (received, then dropped)
    assert np.allclose(frac.sum(axis=1), 1.0)
    assert np.allclose(frac[0], [0.5, 0.5, 0.0, 0.0])  # pages 0-1
    assert np.allclose(frac[3], [1 / 3, 1 / 3, 0.0, 1 / 3])  # pages 7-9
    assert bin_states(states, 100).shape == (10, 4)  # at most one bin per page


def test_page_heatmap_png(tmp_path: Path) -> None:
    factory = functools.partial(prepare, "4.17", **SMALL)
    path = page_heatmap(factory, every_ns=EVERY, path=tmp_path / "heat.png")
    assert path == tmp_path / "heat.png"
    data = path.read_bytes()
    assert data[:8] == PNG and 10_000 < len(data) < 2_000_000
    image = matplotlib.image.imread(path)
    assert image.shape == (500, 1200, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    run = prepare("4.18", **SMALL)
    small = page_heatmap(run, host=0, every_ns=EVERY, path=tmp_path / "src.png", max_pages=64)
    assert matplotlib.image.imread(small).shape == (500, 1200, 4)
    with pytest.raises(reclaim.ArgumentError, match="max_pages"):
        page_heatmap(factory, every_ns=EVERY, path=tmp_path / "x.png", max_pages=0)


def test_postcopy_small_study_outcomes() -> None:
    """The small study these tests use hangs on 4.17 and completes on 4.18."""
    assert postcopy("4.17", **SMALL).outcome == "hung"
    assert postcopy("4.18", **SMALL).outcome == "completed"
