"""The event log as data: pandas DataFrames, Arrow tables and vmstat time series.

A :class:`~reclaim.Kernel` or a study result (:class:`~reclaim.studies.PostcopyResult`) gives
its events as numpy columns (``event_arrays()``); this module turns them into tables without
per-event Python work::

    from reclaim.events import to_frame
    drops = to_frame(result, kinds="rmap:try_to_unmap_one", host=1)  # ... pfn, result, pteval
    df = to_frame(result)          # every kind: the fields of all of them, <NA> where unused

Columns (:data:`BASE_COLUMNS`): ``t`` (simulated ns, uint64), ``host`` (uint8: 0 a lone kernel
or the source, 1 the destination), ``kind`` (the trace name, categorical over every name of
:data:`reclaim._reclaim.EVENT_KINDS` so that codes agree between tables), ``pid`` (uint32),
``tid`` (uint16), ``addr`` (uint64, 0 if none); then the kinds' own fields by their names, as
the kernel's tracepoints name them (``pfn``, ``order``, ``nr_reclaimed``, ...;
:data:`reclaim._reclaim.EVENT_FIELDS` lists them per kind): one column per name used by the
kinds in the table (:func:`field_columns`), uint64 where every row's kind has that field,
else nullable (pandas ``UInt64``, Arrow nulls) with <NA> in the rows of kinds without it.

The engine stores each event's fields in three generic slots ``a``, ``b``, ``c``
(:data:`COLUMNS`: what :func:`select` and ``event_arrays()`` return); ``columns="generic"``
gives a table with those slots instead of names, the layout of earlier releases.

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

#: The columns every event table has, in order; the kinds' named fields follow them.
BASE_COLUMNS: tuple[str, ...] = ("t", "host", "kind", "pid", "tid", "addr")

#: The engine's event columns (``event_arrays()``, :func:`select`, ``columns="generic"``):
#: the base columns and the three generic field slots whose meaning per kind EVENT_FIELDS gives.
COLUMNS: tuple[str, ...] = (*BASE_COLUMNS, "a", "b", "c")

_SLOTS = ("a", "b", "c")

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


def field_columns(kinds: str | Iterable[str]) -> list[str]:
    """The named field columns of a table of the events of `kinds`: every field name of those
    kinds, in the order of EVENT_KINDS and then of each kind's fields, each once."""
    codes = set(_kind_codes(kinds))
    names: list[str] = []
    for code, kind in enumerate(EVENT_KINDS):
        if code in codes:
            names += [n for n in EVENT_FIELDS[kind] if n is not None and n not in names]
    return names


def _named_fields(
    cols: Mapping[str, npt.NDArray[Any]], kinds: str | Iterable[str] | None
) -> dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_] | None]]:
    """Each named field of the table as (values, missing): values taken from the slot the
    row's kind keeps it in; `missing` marks rows whose kind has no such field (None if none
    does). The fields are those of `kinds` if given, else of the kinds in the rows."""
    present = np.unique(cols["kind"]).tolist()
    names = field_columns(kinds if kinds is not None else [EVENT_KINDS[k] for k in present])
    out: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_] | None]] = {}
    codes = cols["kind"].astype(np.intp)
    for name in names:
        # per kind code: which slot holds `name` (-1: the kind has no such field)
        slot_of = np.full(len(EVENT_KINDS), -1, dtype=np.intp)
        for code, kind in enumerate(EVENT_KINDS):
            fields = EVENT_FIELDS[kind]
            if name in fields:
                slot_of[code] = fields.index(name)
        slot = slot_of[codes]
        values = np.zeros(len(codes), dtype=np.uint64)
        for i, g in enumerate(_SLOTS):
            here = slot == i
            values[here] = cols[g][here]
        missing = slot < 0
        out[name] = (values, missing if missing.any() else None)
    return out


def _check_layout(columns: str) -> None:
    if columns not in ("named", "generic"):
        raise ArgumentError(
            f"columns must be 'named' (the kinds' field names) or 'generic' (a, b, c), "
            f"not {columns!r}"
        )


def to_frame(
    source: EventSource,
    *,
    since: int | None = None,
    until: int | None = None,
    pid: int | Iterable[int] | None = None,
    kinds: str | Iterable[str] | None = None,
    host: int | None = None,
    columns: str = "named",
) -> pd.DataFrame:
    """The events of a Kernel or PostcopyResult as a pandas DataFrame, one row per event in
    log order: the :data:`BASE_COLUMNS`, then the kinds' fields by name (dtypes and <NA> in
    the module docstring; which names: :func:`field_columns` of `kinds`, or of the kinds in
    the table). ``columns="generic"`` gives the engine's slots ``a``, ``b``, ``c`` instead
    (:data:`COLUMNS`).

    Filters (all optional, combined with "and"): `since` / `until` keep ``since <= t < until``
    in simulated ns; `pid` one pid or several; `kinds` one trace name or several (unknown names
    raise ArgumentError); `host` 0 or 1. The base columns share the engine's buffers when no
    filter applies."""
    _check_layout(columns)
    pd_ = _require("pandas", "reclaim.events.to_frame")
    cols = select(source, since=since, until=until, pid=pid, kinds=kinds, host=host)
    data: dict[str, object] = {name: cols[name] for name in BASE_COLUMNS}
    data["kind"] = pd_.Categorical.from_codes(cols["kind"], categories=EVENT_KINDS)
    if columns == "generic":
        data |= {g: cols[g] for g in _SLOTS}
    else:
        for name, (values, missing) in _named_fields(cols, kinds).items():
            data[name] = values if missing is None else pd_.arrays.IntegerArray(values, missing)
    return pd_.DataFrame(data, copy=False)


def fields_frame(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of `df` (from :func:`to_frame`, either layout) of the trace name `kind`: the
    base columns without the (now constant) ``kind``, then the kind's fields by name
    (``EVENT_FIELDS[kind]``) as uint64; the other kinds' fields are dropped. Values stay
    numeric (a try_to_unmap_one ``result`` is an index into TTU_RESULTS, a fault ``path`` into
    FAULT_PATHS)."""
    if kind not in EVENT_FIELDS:
        raise ArgumentError(f"unknown event kind {kind!r}; the kinds are EVENT_KINDS")
    names = EVENT_FIELDS[kind]
    rows = df[df["kind"] == kind]
    base = [c for c in BASE_COLUMNS if c != "kind"]
    if all(g in df.columns for g in _SLOTS):
        rename = {g: n for g, n in zip(_SLOTS, names, strict=True) if n is not None}
        return rows[base + list(rename)].rename(columns=rename)
    used = [n for n in names if n is not None]
    absent = [n for n in used if n not in df.columns]
    if absent:
        raise ArgumentError(f"the table has no column(s) {absent}: it holds no {kind} events")
    out = rows[base + used].copy()
    for n in used:
        out[n] = out[n].astype(np.uint64)
    return out


def to_arrow(
    source: EventSource,
    *,
    since: int | None = None,
    until: int | None = None,
    pid: int | Iterable[int] | None = None,
    kinds: str | Iterable[str] | None = None,
    host: int | None = None,
    columns: str = "named",
) -> pa.Table:
    """The events as a pyarrow Table with the columns of :func:`to_frame` (filters and
    `columns` as there): named fields are uint64, null in the rows of kinds without them. The
    base columns wrap the numpy buffers without copying; ``kind`` is a dictionary array (int8
    indices into every EVENT_KINDS name). The schema metadata key ``reclaim.event_fields``
    holds EVENT_FIELDS as JSON."""
    _check_layout(columns)
    pa_ = _require("pyarrow", "reclaim.events.to_arrow")
    cols = select(source, since=since, until=until, pid=pid, kinds=kinds, host=host)
    arrays: dict[str, object] = {name: pa_.array(cols[name]) for name in BASE_COLUMNS}
    arrays["kind"] = pa_.DictionaryArray.from_arrays(
        pa_.array(cols["kind"].view(np.int8)), pa_.array(EVENT_KINDS, type=pa_.string())
    )
    if columns == "generic":
        arrays |= {g: pa_.array(cols[g]) for g in _SLOTS}
    else:
        for name, (values, missing) in _named_fields(cols, kinds).items():
            arrays[name] = pa_.array(values, mask=missing)
    return pa_.table(arrays, metadata={"reclaim.event_fields": json.dumps(EVENT_FIELDS)})


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
    "BASE_COLUMNS",
    "COLUMNS",
    "EventSource",
    "RunSource",
    "field_columns",
    "fields_frame",
    "run_slices",
    "select",
    "to_arrow",
    "to_frame",
    "vmstat_series",
]
