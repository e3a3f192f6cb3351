"""Sweeps: a study run over a grid of parameters, locally on every core or on a dask cluster.

A grid maps parameter names to lists of values; the sweep runs the study once per point of
their Cartesian product (the first parameter varies slowest) and returns one row per run::

    import reclaim
    from reclaim.sweeper import summary, summary_plot

    df = reclaim.sweep(
        "postcopy",
        {
            "profile": ["4.17", "4.18"],
            "host_memory": ["12MiB", "14MiB"],
            "seed": list(range(20)),
            "guest_memory": "16MiB",  # a scalar is a constant of every run
            "source_memory": "24MiB",
        },
        out="postcopy.parquet",
    )
    print(summary(df))
    summary_plot(df, "hang-rate.png", by=("profile",), x="host_memory")

The columns are the parameters, ``outcome``, ``failure``, one column per metric, ``log_hash``,
``error`` (None, or the error of a run that raised: it does not stop the sweep) and
``seconds`` (wall time of the run). Rows are in grid order whatever the executor, so a serial,
local, dask or resumed sweep gives the same table except for ``seconds``.

With ``out``, every finished run is appended at once to a journal beside the table
(``.OUT.journal``, one JSON line per run, fsynced), and the table is written as parquet after
the first run, then at most every 2 s (or ten times what a write takes, for tables of many
thousand rows) and at the end, atomically (a temporary file in the same directory, fsync,
rename), after which the journal is emptied: a killed sweep loses no finished run (a line cut
short by the kill is ignored). Run it again with the same ``out`` and it keeps the
rows there, runs only the points that have no row or whose row holds an error, and keeps rows
of points that are not in the grid (after the grid's rows).

Executors: ``"local"`` (alias ``"processes"``, the default) runs ``workers`` processes, one per
core by default; ``"serial"`` runs in this process (any callable, no pickling); a dask
``distributed.Client``, a cluster (``LocalCluster``, ...) or a scheduler address
(``"tcp://host:8786"``) runs on dask, which is the optional extra ``pip install 'reclaim[dask]'``.

A grid file is TOML: the table ``[grid]`` holds the parameters (a list is an axis, a scalar a
constant); optional top-level keys are ``study`` (default ``"postcopy"``), ``out`` (relative
to the file's directory), ``executor`` and ``workers``::

    study = "postcopy"
    out = "postcopy-16MiB.parquet"
    executor = "local"

    [grid]
    profile = ["4.17", "4.18", "6.12"]
    seed = [0, 1, 2, 3, 4, 5, 6, 7]
    host_memory = ["12MiB", "14MiB", "16MiB"]
    guest_memory = "16MiB"
    source_memory = "24MiB"
    other_load = "2MiB"
    bandwidth = "25MB/s"

and runs with ``reclaim sweep grid.toml [--out FILE.parquet] [--executor local|serial|ADDRESS]
[--workers N] [--plot FILE.png] [--json]`` (also ``python -m reclaim.sweeper``). Exit codes: 0
every run finished, 1 some run raised an error or the engine failed, 2 bad input, 130
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import pickle
import sys
import time
import tomllib
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from reclaim.exceptions import ArgumentError, FileError, FormatError, ReclaimError
from reclaim.output import save_figure, write_bytes
from reclaim.progress import StatusLine, bar

if TYPE_CHECKING:
    import pandas as pd

#: A parameter value: what a grid axis lists and what a table cell holds.
Value = str | int | float | bool | None
#: Progress callback of a sweep: (runs done, runs that raised an error, runs in the grid).
SweepProgress = Callable[[int, int, int], None]

#: Result columns, in table order around the metric columns.
_HEAD = ("outcome", "failure")
_TAIL = ("log_hash", "error", "seconds")
_RESERVED = frozenset(_HEAD + _TAIL)
#: Seconds between two writes of the table (at least).
_SAVE_EVERY = 2.0


class StudyResult(Protocol):
    """What a study returns (a :class:`~reclaim.studies.PostcopyResult` or alike)."""

    @property
    def outcome(self) -> str:
        """How the run ended: "completed", "hung" or "failed"."""

    @property
    def failure(self) -> str | None:
        """Why a run failed, or None."""

    @property
    def metrics(self) -> Mapping[str, int]:
        """The run's counters, one column each."""

    @property
    def log_hash(self) -> int:
        """The hash of the run's event log."""


#: A study: called with a grid point's parameters as keywords.
Study = Callable[..., StudyResult]


class _Result(TypedDict):
    outcome: str | None
    failure: str | None
    metrics: dict[str, int]
    log_hash: int | None
    error: str | None
    seconds: float


def _run_point(study: Study, params: dict[str, Value]) -> _Result:
    """Run one grid point; an exception becomes the run's error. Runs in the workers."""
    start = time.perf_counter()
    try:
        r = study(**params)
        metrics = dict(r.metrics)
        clash = sorted(set(metrics) & (set(params) | _RESERVED))
        if clash:
            raise ArgumentError(f"metrics {clash} have the names of parameters or columns")
        return {
            "outcome": r.outcome,
            "failure": r.failure,
            "metrics": metrics,
            "log_hash": r.log_hash,
            "error": None,
            "seconds": time.perf_counter() - start,
        }
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # the engine's PanicException is a BaseException
        return _failed(e, time.perf_counter() - start)


def _failed(e: BaseException, seconds: float) -> _Result:
    return {
        "outcome": None,
        "failure": None,
        "metrics": {},
        "log_hash": None,
        "error": f"{type(e).__name__}: {e}",
        "seconds": seconds,
    }


def _settle(get: Callable[[], _Result]) -> _Result:
    """The result of a future; a future that failed (its worker died) gives an error row."""
    try:
        return get()
    except Exception as e:
        return _failed(e, 0.0)


# ---------------------------------------------------------------------------------- the grid


def _scalar(v: object, where: str) -> Value:
    import numpy as np

    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, str | int | float | bool):
        return v
    raise ArgumentError(f"{where}: {v!r} is not a str, int, float, bool or None")


def _kind(v: Value) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "str" if isinstance(v, str) else "none"


def _check_kinds(name: str, values: Sequence[Value], where: str = "grid") -> None:
    kinds = {_kind(v) for v in values} - {"none"}
    if len(kinds) > 1:
        raise ArgumentError(
            f"{where}: the values of {name!r} mix {' and '.join(sorted(kinds))}: "
            "one parameter takes one type"
        )


#: The most points one sweep runs: the grid is counted before its points are built, so that a
#: small TOML file of long axes cannot make the sweep build a product of billions of points.
MAX_POINTS = 1_000_000


def _expand(grid: Mapping[str, object]) -> tuple[list[str], list[dict[str, Value]]]:
    """The parameter names and the points of the grid, in grid order."""
    import numpy as np

    if not isinstance(grid, Mapping) or not grid:
        raise ArgumentError("grid must be a non-empty mapping of parameter name -> values")
    names: list[str] = []
    axes: list[list[Value]] = []
    for name, spec in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ArgumentError(f"grid parameter {name!r} is not a valid keyword name")
        if name in _RESERVED:
            raise ArgumentError(f"grid parameter {name!r} has the name of a result column")
        if isinstance(spec, np.ndarray):
            spec = spec.tolist()
        if isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
            values = [_scalar(v, f"grid[{name!r}]") for v in spec]
            if not values:
                raise ArgumentError(f"grid parameter {name!r} has no values")
            seen: set[Value] = set()
            for v in values:
                if v in seen:
                    raise ArgumentError(f"grid parameter {name!r} lists {v!r} twice")
                seen.add(v)
        else:
            values = [_scalar(spec, f"grid[{name!r}]")]
        _check_kinds(name, values)
        names.append(name)
        axes.append(values)
    n = math.prod(len(a) for a in axes)
    if n > MAX_POINTS:
        raise ArgumentError(
            f"the grid has {n:,} points ({' x '.join(str(len(a)) for a in axes)}); a sweep "
            f"runs at most {MAX_POINTS:,} (its table holds a row per point): split the grid"
        )
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    return names, points


def _axes(grid: Mapping[str, object]) -> list[str]:
    """The parameters of a grid that take more than one value."""
    return [
        n
        for n, v in grid.items()
        if isinstance(v, Sequence) and not isinstance(v, str | bytes) and len(v) > 1
    ]


def _study(study: str | Study) -> Study:
    if study == "postcopy":
        from reclaim.studies.postcopy import postcopy

        return postcopy
    if isinstance(study, str) or not callable(study):
        raise ArgumentError(f"unknown study {study!r}: give 'postcopy' or a callable")
    return study


# ------------------------------------------------------------------------------ the table


def _pandas() -> Any:
    """pandas, once pyarrow is known to be there too."""
    try:
        import pandas
        import pyarrow  # noqa: F401
    except ImportError:
        raise ArgumentError("sweeps need pandas and pyarrow: pip install 'reclaim[data]'") from None
    return pandas


def _frame(names: Sequence[str], rows: Sequence[dict[str, Value]]) -> pd.DataFrame:
    """The table of `rows`: nullable dtypes inferred from the values, so that the same rows
    give the same table however they were produced (run, or read back from parquet)."""
    pd = _pandas()
    fixed = set(names) | _RESERVED
    metrics = list(dict.fromkeys(k for r in rows for k in r if k not in fixed))
    dtypes = {"outcome": "string", "failure": "string", "error": "string"}
    dtypes |= {"log_hash": "UInt64", "seconds": "float64"}
    cols = {}
    for c in [*names, *_HEAD, *metrics, *_TAIL]:
        values = [r.get(c) for r in rows]
        if c in dtypes:
            cols[c] = pd.array(values, dtype=dtypes[c])
        elif c in metrics and all(v is None for v in values):
            cols[c] = pd.array(values, dtype="Int64")
        else:
            cols[c] = pd.array(values)
    return pd.DataFrame(cols)


def _row(params: dict[str, Value], r: _Result) -> dict[str, Value]:
    return {
        **params,
        "outcome": r["outcome"],
        "failure": r["failure"],
        **r["metrics"],
        "log_hash": r["log_hash"],
        "error": r["error"],
        "seconds": r["seconds"],
    }


def _read(out: Path, names: Sequence[str]) -> list[dict[str, Value]]:
    """The rows of an earlier sweep's table at `out` (none if there is no file)."""
    if not out.exists():
        return []
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(out)
    except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError
        raise FormatError(f"{out} is not a readable parquet file: {e}") from None
    cols = table.column_names
    if "outcome" not in cols or "error" not in cols:
        raise FormatError(f"{out} is not a sweep table (no outcome or error column)")
    params = cols[: cols.index("outcome")]
    if set(params) != set(names):
        raise ArgumentError(
            f"{out} holds a sweep over ({', '.join(params)}), not over ({', '.join(names)}): "
            "give another out"
        )
    rows: list[dict[str, Value]] = table.to_pylist()
    return rows


def _append_journal(journal: Path, row: dict[str, Value]) -> None:
    """Append one finished run to the journal and sync it, before anything else happens."""
    try:
        journal.parent.mkdir(parents=True, exist_ok=True)
        with open(journal, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise FileError(f"cannot write {journal}: {e.strerror or e}") from None


def _read_journal(journal: Path) -> list[dict[str, Value]]:
    """The runs of a journal; a last line cut short (the sweep was killed writing it) is
    dropped, as is anything that is not a row."""
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise FileError(f"cannot read {journal}: {e.strerror or e}") from None
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "outcome" in row and "error" in row:
            rows.append(row)
    return rows


def _write(df: pd.DataFrame, out: Path) -> None:
    """Write `df` to `out` as Parquet through the one atomic writer (:mod:`reclaim.output`):
    a failed write leaves the old file, and the new file's mode honours the umask."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    write_bytes(out, buf.getvalue().to_pybytes(), "sweep table")


class _Bar(StatusLine):
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self) -> None:
        super().__init__(delay=0.0, interval=0.1)

    def __call__(self, done: int, failed: int, total: int) -> None:
        frac = done / total if total else 1.0
        self.show(f"sweep {bar(frac)} {done}/{total} done, {failed} failed", final=done >= total)


@dataclass
class _Table:
    """The rows of a sweep as they come in, in grid order, written to `out` now and then."""

    names: list[str]
    points: list[dict[str, Value]]
    out: Path | None
    done: dict[int, dict[str, Value]] = field(default_factory=dict)
    extra: list[dict[str, Value]] = field(default_factory=list)
    #: Rows of `done` whose run raised an error.
    failed: int = 0
    dirty: bool = False
    saved: float = -math.inf
    #: Seconds between writes: 2, or ten times what a write takes (big tables).
    every: float = _SAVE_EVERY

    @property
    def journal(self) -> Path:
        """The runs finished since the table was last written, one JSON line each."""
        assert self.out is not None
        return self.out.with_name(f".{self.out.name}.journal")

    def resume(self) -> None:
        """Take the rows of `out` and its journal: finished grid points are done, other
        points' rows extra."""
        if self.out is None:
            return
        index = {self.key(p): i for i, p in enumerate(self.points)}
        journaled = _read_journal(self.journal)
        rows = {self.key(r): r for r in _read(self.out, self.names) + journaled}
        old = list(rows.values())
        for n in self.names:
            _check_kinds(n, [p[n] for p in self.points] + [r[n] for r in old], str(self.out))
        for r in old:
            i = index.get(self.key(r))
            if i is None:
                self.extra.append(r)
            elif r["error"] is None:
                self.done[i] = r
        self.dirty = bool(journaled)  # the table does not hold them yet

    def key(self, r: Mapping[str, Value]) -> tuple[Value, ...]:
        """The parameter tuple of a row or point."""
        return tuple(r[n] for n in self.names)

    def add(self, i: int, r: _Result) -> None:
        """Record the result of point `i`; write the table if the last write is old enough."""
        self.done[i] = _row(self.points[i], r)
        self.failed += r["error"] is not None
        self.dirty = True
        if self.out is not None:
            _append_journal(self.journal, self.done[i])
        if time.monotonic() - self.saved >= self.every:
            self.save()

    def frame(self) -> pd.DataFrame:
        """The table: grid rows in grid order, then the extra rows."""
        return _frame(self.names, [self.done[i] for i in sorted(self.done)] + self.extra)

    def save(self) -> None:
        """Write the table to `out` if it changed."""
        if self.out is not None and self.dirty:
            start = time.monotonic()
            _write(self.frame(), self.out)
            with contextlib.suppress(FileNotFoundError):
                self.journal.unlink()
            self.dirty = False
            self.saved = time.monotonic()
            self.every = max(_SAVE_EVERY, 10 * (self.saved - start))


# --------------------------------------------------------------------------- the executors

_Pending = list[tuple[int, dict[str, Value]]]


def _local(study: Study, pending: _Pending, workers: int) -> Iterator[tuple[int, _Result]]:
    """Runs in `workers` processes, at most four runs a worker queued. A process that dies
    (killed, out of memory) breaks the pool and loses the runs in it: each of those runs again
    alone, so that only the run that kills its process records the error."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    queue = deque(pending)
    while queue:
        lost: _Pending = []
        pool = ProcessPoolExecutor(min(workers, len(queue)), mp_context=ctx)
        try:
            running: dict[Future[_Result], tuple[int, dict[str, Value]]] = {}
            while (queue or running) and not lost:
                while queue and len(running) < 4 * workers:
                    i, p = queue.popleft()
                    running[pool.submit(_run_point, study, p)] = (i, p)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i, p = running.pop(fut)
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        lost.append((i, p))
                        continue
                    except Exception as e:  # the result or the arguments do not pickle
                        r = _failed(e, 0.0)
                    yield i, r
            lost += running.values()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for i, p in sorted(lost):
            with ProcessPoolExecutor(1, mp_context=ctx) as alone:
                yield i, _settle(alone.submit(_run_point, study, p).result)


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ArgumentError(
            "dask executors need dask.distributed: pip install 'reclaim[dask]'"
        ) from None
    return distributed


def _dask(executor: object, study: Study, pending: _Pending) -> Iterator[tuple[int, _Result]]:
    distributed = _distributed()
    own = not isinstance(executor, distributed.Client)
    try:
        client: Any = distributed.Client(executor) if own else executor
    except OSError as e:
        raise ArgumentError(f"cannot reach the dask scheduler of {executor!r}: {e}") from None
    futures: dict[Any, int] = {}
    try:
        for i, p in pending:
            futures[client.submit(_run_point, study, p, pure=False)] = i
        for fut in distributed.as_completed(list(futures)):
            yield futures.pop(fut), _settle(fut.result)
    finally:
        if futures:
            client.cancel(list(futures))
        if own:
            client.close()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_executor(executor: object, study: Study, workers: int | None) -> None:
    """Refuse an executor, a worker count or a study the sweep cannot run with."""
    local = executor in ("local", "processes")
    if workers is not None and (not local or isinstance(workers, bool) or workers < 1):
        raise ArgumentError("workers must be a positive int, for the local executor only")
    if isinstance(executor, str) and "://" not in executor:
        if not local and executor != "serial":
            raise ArgumentError(
                f"unknown executor {executor!r}: 'local', 'serial', a dask Client or cluster, "
                "or a scheduler address like 'tcp://host:8786'"
            )
    else:
        distributed = _distributed()
        if not isinstance(executor, str | distributed.Client | distributed.deploy.Cluster):
            raise ArgumentError(f"executor {executor!r} is not a dask Client or cluster")
    if executor != "serial":
        try:
            pickle.dumps(study)
        except Exception:
            raise ArgumentError(
                f"study {study!r} cannot be sent to workers (not picklable): define it at the "
                "top level of a module, or use executor='serial'"
            ) from None


def _results(
    executor: object, study: Study, pending: _Pending, workers: int | None
) -> Generator[tuple[int, _Result], None, None]:
    """The results of the pending points as they finish, from a checked executor."""
    if not pending:
        return
    if executor == "serial":
        for i, p in pending:
            yield i, _run_point(study, p)
    elif executor in ("local", "processes"):
        yield from _local(study, pending, workers or _cores())
    else:
        yield from _dask(executor, study, pending)


# ------------------------------------------------------------------------------- the API


def sweep(
    study: str | Study,
    grid: Mapping[str, object],
    *,
    executor: object = "local",
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: SweepProgress | bool | None = None,
) -> pd.DataFrame:
    """Run `study` at every point of `grid` and return the table, one row per run.

    `study` is "postcopy" or a callable taking the parameters as keywords and returning a
    result with ``outcome``, ``failure``, ``metrics`` and ``log_hash`` (for the local and dask
    executors it must be picklable: a module-level function). `grid` maps parameter names to
    lists of values (scalars are constants). `executor` is "local" (alias "processes"):
    `workers` processes, one per core by default; "serial"; a dask ``Client``, cluster or
    scheduler address. `out` is a parquet file written as runs finish and resumed from (see
    the module's documentation). `progress`: None shows a bar on stderr when it is a
    terminal, False shows nothing, a callable is called with (done, failed, total), counting
    the resumed rows as done and the runs that raised an error as failed.
    """
    _pandas()
    fn = _study(study)
    names, points = _expand(grid)
    _check_executor(executor, fn, workers)
    table = _Table(names, points, Path(out) if out is not None else None)
    table.resume()
    pending = [(i, p) for i, p in enumerate(points) if i not in table.done]
    results = _results(executor, fn, pending, workers)
    bar = _Bar() if progress is None and sys.stderr.isatty() else None
    report = progress if callable(progress) else bar
    total = len(points)
    try:
        if report is not None:
            report(len(table.done), table.failed, total)
        with contextlib.closing(results):
            for i, r in results:
                table.add(i, r)
                if report is not None:
                    report(len(table.done), table.failed, total)
    finally:
        if bar is not None:
            bar.close()
        table.save()
    return table.frame()


def _params(df: pd.DataFrame) -> list[str]:
    cols = list(df.columns)
    if "outcome" not in cols:
        raise ArgumentError("not a sweep table: it has no outcome column")
    return cols[: cols.index("outcome")]


def _labels(df: pd.DataFrame) -> list[str]:
    """The outcome of each row, "error" for a run that raised."""
    return [
        "error" if isinstance(e, str) else str(o)
        for o, e in zip(df["outcome"].tolist(), df["error"].tolist(), strict=True)
    ]


def summary(df: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Outcome counts of a sweep table by parameters: one row per combination of `by` (in
    table order), a column per outcome ("error": the run raised) and ``runs``. `by` defaults
    to the parameters that take more than one value, except ``seed``."""
    pd = _pandas()
    params = _params(df)
    if by is None:
        by = [p for p in params if p != "seed" and df[p].nunique(dropna=False) > 1]
    missing = [b for b in by if b not in params]
    if missing:
        raise ArgumentError(f"cannot summarize by {missing}: the parameters are {params}")
    labels = _labels(df)
    order = ["completed", "hung", "failed", "error"]
    outcomes = [o for o in order if o in labels] + sorted(set(labels) - set(order))
    counts: dict[tuple[Value, ...], dict[str, int]] = {}
    keys = zip(*(df[b].tolist() for b in by), strict=True) if by else ((),) * len(df)
    for key, label in zip(keys, labels, strict=True):
        c = counts.setdefault(tuple(key), dict.fromkeys([*outcomes, "runs"], 0))
        c[label] += 1
        c["runs"] += 1
    rows = [{**dict(zip(by, k, strict=True)), **c} for k, c in counts.items()]
    return pd.DataFrame(rows, columns=[*by, *outcomes, "runs"])


def summary_plot(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    by: Sequence[str] = ("profile",),
    x: str | None = None,
    outcome: str = "hung",
) -> Path:
    """Plot the fraction of runs with `outcome` (default: hung) against the parameter `x`
    (default: the destination's memory, host_memory or its older name dest_memory), one
    line per combination of the `by` parameters, to a PNG at `path`; returns the path. Runs
    that raised an error are left out; x values are in table order (numbers on a numeric
    axis)."""
    from matplotlib.figure import Figure

    params = _params(df)
    if x is None:  # the destination's memory, by its name or its older one
        x = "dest_memory" if "dest_memory" in params else "host_memory"
    missing = [c for c in (*by, x) if c not in params]
    if missing:
        raise ArgumentError(f"cannot plot by {missing}: the parameters are {params}")
    labels = _labels(df)
    xs = df[x].tolist()
    keys = list(zip(*(df[b].tolist() for b in by), strict=True)) if by else [()] * len(df)
    ran = [i for i, label in enumerate(labels) if label != "error"]
    x_values = list(dict.fromkeys(xs[i] for i in ran))
    numeric = all(_kind(v) == "number" for v in x_values)
    coord = {
        v: float(v) if numeric and isinstance(v, int | float) else float(n)
        for n, v in enumerate(x_values)
    }
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    # lines that coincide stay visible: each has its own marker, smaller than the last one's
    for n, key in enumerate(dict.fromkeys(keys[i] for i in ran)):
        hits: dict[Value, list[int]] = {}
        for i in ran:
            if keys[i] == key:
                hits.setdefault(xs[i], []).append(labels[i] == outcome)
        pos = [coord[v] for v in hits]
        rates = [sum(h) / len(h) for h in hits.values()]
        name = ", ".join(f"{b}={k}" for b, k in zip(by, key, strict=True)) or "all runs"
        ax.plot(pos, rates, marker="osD^v<>"[n % 7], markersize=max(3, 10 - 2 * n), label=name)
    if not numeric:
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
    ax.set_xlabel(x)
    ax.set_ylabel(f"fraction {outcome}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"fraction of runs {outcome} ({len(ran)} runs)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, dpi=110)


@dataclass(frozen=True)
class GridFile:
    """A grid file (TOML, see the module's documentation): the ``grid``, the ``study`` it runs
    (``"postcopy"``), the parquet file ``out`` the rows go to, the ``executor`` (``"local"``,
    ``"serial"`` or a dask scheduler address) and its ``workers`` (None: one per core)."""

    #: Parameter name -> list of values (an axis) or a value (a constant).
    grid: dict[str, Value | list[Value]]
    study: str = "postcopy"
    #: The parquet file, relative paths resolved against the grid file's directory.
    out: Path | None = None
    executor: str = "local"
    workers: int | None = None


def load_grid(path: str | os.PathLike[str]) -> GridFile:
    """Read a TOML grid file. Raises FileError if it cannot be read, FormatError naming the
    key if it is not a grid file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise FileError(f"cannot read {p}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise FormatError(f"{p}: {e}") from None
    except UnicodeDecodeError as e:
        raise FormatError(f"{p}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    unknown = sorted(set(doc) - {"grid", "study", "out", "executor", "workers"})
    if unknown:
        raise FormatError(f"{p}: unknown keys {unknown} (grid, study, out, executor, workers)")
    grid = doc.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise FormatError(f"{p}: no [grid] table of parameters")
    for name, v in grid.items():
        for item in v if isinstance(v, list) else [v]:
            if not isinstance(item, str | int | float | bool):
                raise FormatError(f"{p}: grid.{name}: {item!r} is not a string, number or bool")
    for key in ("study", "out", "executor"):
        if key in doc and not isinstance(doc[key], str):
            raise FormatError(f"{p}: {key} must be a string")
    workers = doc.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise FormatError(f"{p}: workers must be an integer")
    return GridFile(
        grid=grid,
        study=doc.get("study", "postcopy"),
        out=p.absolute().parent / doc["out"] if "out" in doc else None,
        executor=doc.get("executor", "local"),
        workers=workers,
    )


def _plot_axes(grid: Mapping[str, object]) -> tuple[tuple[str, ...], str]:
    """(by, x) of the CLI's plot: x is the destination's memory (host_memory, or its older name
    dest_memory) if the grid varies it, else its first axis other than profile and seed; one line
    per profile."""
    axes = [a for a in _axes(grid) if a != "seed"]
    others = [a for a in axes if a != "profile"]
    memory = [a for a in others if a in ("host_memory", "dest_memory")]
    if memory:
        x = memory[0]
    elif others:
        x = others[0]
    elif axes:
        return (), axes[0]
    else:
        raise ArgumentError("nothing to plot: the grid varies no parameter but the seed")
    return (("profile",) if "profile" in axes else ()), x


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reclaim sweep",
        description="Run a study over a grid of parameters (a TOML file) and summarize.",
        epilog="example: reclaim sweep grid.toml --out runs.parquet --plot hang-rate.png",
    )
    p.add_argument("grid", help="the TOML grid file")
    p.add_argument("--out", help="parquet file of the results, resumed if it exists")
    p.add_argument("--executor", help="local (default), serial or a scheduler tcp://host:port")
    p.add_argument("--workers", type=int, help="processes of the local executor (default: cores)")
    p.add_argument("--plot", help="write a PNG of the hang rate by parameter here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``reclaim sweep`` command: `argv` are its arguments (after "sweep"); returns the
    exit code (0 every run finished, 1 a run raised an error, 2 bad input, 130 interrupted)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse printed the usage and the error, or the help
        return e.code if isinstance(e.code, int) else 2
    out: Path | None = None
    try:
        spec = load_grid(args.grid)
        out = Path(args.out) if args.out else spec.out
        df = sweep(
            spec.study,
            spec.grid,
            executor=args.executor or spec.executor,
            out=out,
            workers=args.workers if args.workers is not None else spec.workers,
            progress=False if args.json else None,
        )
        table = summary(df)
        plot = summary_plot(df, args.plot, *_plot_axes(spec.grid)) if args.plot else None
    except (ArgumentError, FormatError, FileError, TypeError) as e:
        print(f"reclaim: error: {e}", file=sys.stderr)
        return 2
    except ReclaimError as e:
        print(f"reclaim: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = f"; finished runs are in {out}" if out else ""
        print(f"reclaim: interrupted{kept}", file=sys.stderr)
        return 130
    errors = [e for e in df["error"].tolist() if isinstance(e, str)]
    if args.json:
        doc = {
            "runs": len(df),
            "errors": len(errors),
            "out": str(out) if out else None,
            "plot": str(plot) if plot else None,
            "summary": json.loads(table.to_json(orient="records")),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"{len(df)} runs, {len(errors)} raised an error" + (f"; table: {out}" if out else ""))
        print(table.to_string(index=False))
        if plot:
            print(f"\nplot: {plot}")
    if errors:
        print(f"reclaim: {len(errors)} runs raised an error, first: {errors[0]}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "GridFile",
    "Study",
    "StudyResult",
    "SweepProgress",
    "Value",
    "load_grid",
    "main",
    "summary",
    "summary_plot",
    "sweep",
]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
