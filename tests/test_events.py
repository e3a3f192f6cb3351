"""The event log as a DataFrame and an Arrow table (dtypes, filters, field names) and the
vmstat time series of a running study (reclaim.events)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import reclaim
from conftest import EVERY, SMALL, swap_kernel
from reclaim._reclaim import EVENT_FIELDS, EVENT_KINDS, TTU_RESULTS
from reclaim.events import (
    BASE_COLUMNS,
    COLUMNS,
    field_columns,
    fields_frame,
    run_slices,
    select,
    to_arrow,
    to_frame,
    vmstat_series,
)
from reclaim.export import chrome_trace, ftrace_text
from reclaim.studies import PostcopyResult, postcopy, prepare

DTYPES = {
    "t": np.uint64,
    "host": np.uint8,
    "pid": np.uint32,
    "tid": np.uint16,
    "addr": np.uint64,
}


# ------------------------------------------------------------------------ DataFrame / Arrow


def test_frame_has_the_columns_dtypes_and_every_event(
    r417: PostcopyResult, df417: pd.DataFrame
) -> None:
    kinds = sorted({e.name for e in r417.events()}, key=EVENT_KINDS.index)
    assert tuple(df417.columns) == (*BASE_COLUMNS, *field_columns(kinds))
    assert "a" not in df417.columns and "pfn" in df417.columns
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


def test_fields_frame_keeps_one_kind_and_its_fields(
    r417: PostcopyResult, df417: pd.DataFrame
) -> None:
    generic = fields_frame(to_frame(r417, columns="generic"), "rmap:try_to_unmap_one")
    assert generic.equals(fields_frame(df417, "rmap:try_to_unmap_one"))
    ttu = fields_frame(df417, "rmap:try_to_unmap_one")
    assert list(ttu.columns) == ["t", "host", "pid", "tid", "addr", "pfn", "result", "pteval"]
    assert len(ttu) == (df417["kind"] == "rmap:try_to_unmap_one").sum()
    dropped = (ttu["result"] == TTU_RESULTS.index("drop_pte_unused")).sum()
    assert dropped > 0
    sleep = fields_frame(df417, "mm_vmscan_kswapd_sleep")
    assert list(sleep.columns) == ["t", "host", "pid", "tid", "addr", "nid"]
    every = to_frame(r417, kinds=list(EVENT_FIELDS)).head(0)
    for kind, names in EVENT_FIELDS.items():
        cols = list(fields_frame(every, kind).columns)
        assert cols == ["t", "host", "pid", "tid", "addr", *[n for n in names if n]], kind
    with pytest.raises(reclaim.ArgumentError):
        fields_frame(df417, "nonsense")


def test_columns_are_the_tracepoint_fields_by_name_with_na_where_a_kind_has_none(
    r417: PostcopyResult, df417: pd.DataFrame
) -> None:
    events = r417.events()
    # every named value is the event's field of that name (Event.fields()), <NA> elsewhere
    for i in range(0, len(events), max(1, len(events) // 300)):
        fields = events[i].fields()
        row = df417.iloc[i]
        for name in field_columns(list(dict.fromkeys(df417["kind"].astype(str)))):
            if name in fields:
                assert row[name] == fields[name], (i, name)
            else:
                assert row[name] is pd.NA, (i, name)
    # one kind: its fields only, plain uint64, in the kernel tracepoint's order
    wake = to_frame(r417, kinds="mm_vmscan_kswapd_wake")
    assert list(wake.columns) == [*BASE_COLUMNS, "nid", "zid", "order"]
    assert all(wake[c].dtype == np.uint64 for c in ("nid", "zid", "order"))
    ttu = to_frame(r417, kinds="rmap:try_to_unmap_one")
    assert (ttu["result"] == TTU_RESULTS.index("drop_pte_unused")).sum() > 0
    # the engine's slots stay reachable
    generic = to_frame(r417, columns="generic")
    assert tuple(generic.columns) == COLUMNS
    assert generic["a"].dtype == np.uint64
    with pytest.raises(reclaim.ArgumentError, match="columns must be 'named'"):
        to_frame(r417, columns="abc")


def test_arrow_table_schema_and_rows(r417: PostcopyResult, df417: pd.DataFrame) -> None:
    table = to_arrow(r417)
    assert isinstance(table, pa.Table)
    assert table.num_rows == r417.n_events
    assert table.schema.names == list(df417.columns)
    assert table.column("pfn").null_count == df417["pfn"].isna().sum() > 0
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
    numeric = [c for c in BASE_COLUMNS if c != "kind"]
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


def test_postcopy_small_study_outcomes() -> None:
    """The small study these tests use hangs on 4.17 and completes on 4.18."""
    assert postcopy("4.17", **SMALL).outcome == "hung"
    assert postcopy("4.18", **SMALL).outcome == "completed"
