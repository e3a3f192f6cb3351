"""The event log as data: pandas DataFrames, Arrow tables and vmstat time series.

A :class:`~reclaim.Kernel` or a study result (:class:`~reclaim.studies.PostcopyResult`) gives
its events as numpy columns (``event_arrays()``); this module turns them into tables without
per-event Python work::

    from reclaim.events import to_frame, fields_frame
    df = to_frame(result, kinds=["rmap:try_to_unmap_one"], host=1)
    drops = fields_frame(df, "rmap:try_to_unmap_one")    # columns pfn, result, pteval

Columns: ``t`` (simulated ns, uint64), ``host`` (uint8: 0 a lone kernel or the source, 1 the
destination), ``kind`` (the trace name, categorical over every name of
:data:`reclaim._reclaim.EVENT_KINDS` so that codes agree between tables), ``pid`` (uint32),
``tid`` (uint16), ``addr`` (uint64, 0 if none), and the generic fields ``a``, ``b``, ``c``
(uint64) whose meaning per kind :data:`reclaim._reclaim.EVENT_FIELDS` gives.

pandas and pyarrow are optional (``pip install 'reclaim[data]'``); they are imported when a
function needs them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from reclaim._reclaim import EVENT_FIELDS, EVENT_KINDS, PostcopyResult, PostcopyRun
from reclaim.exceptions import ArgumentError

if TYPE_CHECKING:
    # Neither ships type information (no pandas-stubs here): both are Any to mypy.
    import pandas as pd
    import pyarrow as pa

#: The columns of an event table, in order.
COLUMNS: tuple[str, ...] = ("t", "host", "kind", "pid", "tid", "addr", "a", "b", "c")

#: A running study, or a callable that builds one (e.g. ``functools.partial(prepare, "4.17")``).
RunSource = PostcopyRun | Callable[[], PostcopyRun]


class EventSource(Protocol):
    """Anything with an event log as numpy columns: a Kernel or a PostcopyResult."""

    def event_arrays(self) -> Mapping[str, npt.NDArray[Any]]:
        """The columns of :data:`COLUMNS`; ``kind`` holds indices into EVENT_KINDS."""
        ...


def _require(module: str, what: str) -> ModuleType:
    """Import an optional dependency (``"pandas"``, ``"pyarrow"``) for `what`, or raise
    :class:`~reclaim.ArgumentError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ArgumentError(
            f"{what} needs {module}, which is not installed: pip install 'reclaim[data]'"
        ) from e


def _kind_codes(kinds: str | Iterable[str]) -> list[int]:
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in names if k not in EVENT_FIELDS]
    if unknown:
        raise ArgumentError(f"unknown event kind(s) {unknown}; the kinds are EVENT_KINDS")
    return [EVENT_KINDS.index(k) for k in names]


def select(
    source: EventSource,
    *,
    since: int | None = None,
    until: int | None = None,
    pid: int | Iterable[int] | None = None,
    kinds: str | Iterable[str] | None = None,
    host: int | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """The event columns of `source` (see :data:`COLUMNS`), keeping events with ``since <= t <
    until`` (simulated ns), of process(es) `pid`, of the trace name(s) `kinds`, on `host`.
    Without filters the engine's arrays are returned as they are (no copy)."""
    cols = dict(source.event_arrays())
    t = cols["t"]
    mask = np.ones(len(t), dtype=bool)
    if since is not None:
        mask &= t >= np.uint64(since)
    if until is not None:
        mask &= t < np.uint64(until)
    if pid is not None:
        pids = [pid] if isinstance(pid, int) else list(pid)
        mask &= np.isin(cols["pid"], np.asarray(pids, dtype=np.uint32))
    if kinds is not None:
        mask &= np.isin(cols["kind"], np.asarray(_kind_codes(kinds), dtype=np.uint8))
    if host is not None:
        mask &= cols["host"] == host
    if mask.all():
        return cols
    return {name: col[mask] for name, col in cols.items()}


def to_frame(
    source: EventSource,
    *,
    since: int | None = None,
    until: int | None = None,
    pid: int | Iterable[int] | None = None,
    kinds: str | Iterable[str] | None = None,
    host: int | None = None,
) -> pd.DataFrame:
    """The events of a Kernel or PostcopyResult as a pandas DataFrame with the columns of
    :data:`COLUMNS` (dtypes in the module docstring), one row per event in log order.

    Filters (all optional, combined with "and"): `since` / `until` keep ``since <= t < until``
    in simulated ns; `pid` one pid or several; `kinds` one trace name or several (unknown names
    raise ArgumentError); `host` 0 or 1. The numeric columns share the engine's buffers when no
    filter applies."""
    pd_ = _require("pandas", "reclaim.events.to_frame")
    cols = select(source, since=since, until=until, pid=pid, kinds=kinds, host=host)
    data: dict[str, object] = dict(cols)
    data["kind"] = pd_.Categorical.from_codes(cols["kind"], categories=EVENT_KINDS)
    return pd_.DataFrame({name: data[name] for name in COLUMNS}, copy=False)


def fields_frame(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of `df` (from :func:`to_frame`) of the trace name `kind`, with ``a``, ``b``,
    ``c`` renamed to the kind's field names (``EVENT_FIELDS[kind]``); generic columns the kind
    does not use and the (now constant) ``kind`` column are dropped. Values stay numeric (a
    try_to_unmap_one ``result`` is an index into TTU_RESULTS, a fault ``path`` into
    FAULT_PATHS)."""
    if kind not in EVENT_FIELDS:
        raise ArgumentError(f"unknown event kind {kind!r}; the kinds are EVENT_KINDS")
    names = EVENT_FIELDS[kind]
    rename = {g: n for g, n in zip("abc", names, strict=True) if n is not None}
    unused = [g for g, n in zip("abc", names, strict=True) if n is None]
    rows = df[df["kind"] == kind]
    return rows.drop(columns=["kind", *unused]).rename(columns=rename)


def to_arrow(
    source: EventSource,
    *,
    since: int | None = None,
    until: int | None = None,
    pid: int | Iterable[int] | None = None,
    kinds: str | Iterable[str] | None = None,
    host: int | None = None,
) -> pa.Table:
    """The events as a pyarrow Table with the columns of :data:`COLUMNS` (filters as in
    :func:`to_frame`). Numeric columns wrap the numpy buffers without copying; ``kind`` is a
    dictionary array (int8 indices into every EVENT_KINDS name). The schema metadata key
    ``reclaim.event_fields`` holds EVENT_FIELDS as JSON."""
    pa_ = _require("pyarrow", "reclaim.events.to_arrow")
    cols = select(source, since=since, until=until, pid=pid, kinds=kinds, host=host)
    arrays: dict[str, object] = {name: pa_.array(col) for name, col in cols.items()}
    arrays["kind"] = pa_.DictionaryArray.from_arrays(
        pa_.array(cols["kind"].view(np.int8)), pa_.array(EVENT_KINDS, type=pa_.string())
    )
    return pa_.table(
        {name: arrays[name] for name in COLUMNS},
        metadata={"reclaim.event_fields": json.dumps(EVENT_FIELDS)},
    )


def _run_of(run_or_factory: RunSource) -> PostcopyRun:
    """The run itself, or the one the factory builds."""
    return run_or_factory if isinstance(run_or_factory, PostcopyRun) else run_or_factory()


def run_slices(run: PostcopyRun, every_ns: int) -> Iterator[int]:
    """Drive `run` to its end in slices of `every_ns` simulated ns with ``run.advance``,
    yielding the simulated time ``run.now`` before the first slice and after each slice that
    moved time forward (strictly increasing). Sample the run (``vmstat``, ``page_states``) at
    each step; ``run.result()`` is final when the iterator is exhausted."""
    if every_ns <= 0:
        raise ArgumentError(f"every_ns must be a positive number of ns, not {every_ns!r}")

    def steps() -> Iterator[int]:
        last = run.now
        yield last
        target, done = last, False
        while not done:
            target += every_ns
            done = run.advance(target)
            if run.now > last:
                last = run.now
                yield last

    return steps()


def vmstat_series(
    run_or_factory: RunSource,
    *,
    host: int,
    every_ns: int,
    counters: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, PostcopyResult]:
    """Run a postcopy study to its end, sampling ``/proc/vmstat`` of `host` (0 source,
    1 destination) every `every_ns` simulated ns; returns ``(series, result)``.

    `run_or_factory` is a fresh :class:`~reclaim.studies.PostcopyRun` (from
    :func:`reclaim.studies.prepare`) or a callable returning one. ``series`` is a DataFrame
    indexed by simulated time in seconds (index ``t``, strictly increasing, the first row at the
    run's start, the last at its end) with one int64 column per vmstat counter (all of them, in
    the kernel's order, or `counters`; an unknown name raises ArgumentError); ``series.attrs``
    holds ``host`` and ``every_ns`` (:func:`reclaim.export.chrome_trace` reads ``host``).
    ``result`` is the finished run's :class:`~reclaim.studies.PostcopyResult`."""
    pd_ = _require("pandas", "reclaim.events.vmstat_series")
    run = _run_of(run_or_factory)
    times: list[int] = []
    rows: list[list[int]] = []
    names: list[str] | None = None
    for now in run_slices(run, every_ns):
        stat = run.vmstat(host)
        if names is None:
            names = list(stat) if counters is None else list(counters)
            unknown = [n for n in names if n not in stat]
            if unknown:
                raise ArgumentError(f"unknown vmstat counter(s) {unknown}; known: {list(stat)}")
        times.append(now)
        rows.append([stat[n] for n in names])
    index = pd_.Index(np.asarray(times, dtype=np.float64) / 1e9, name="t")
    df = pd_.DataFrame(np.asarray(rows, dtype=np.int64), index=index, columns=names)
    df.attrs.update(host=host, every_ns=every_ns)
    return df, run.result()


__all__ = [
    "COLUMNS",
    "EventSource",
    "RunSource",
    "fields_frame",
    "run_slices",
    "select",
    "to_arrow",
    "to_frame",
    "vmstat_series",
]
