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
Before any run, a sweep refuses a grid parameter the study does not take (naming it and the
study's parameters) and a scheduler address that refuses the connection or does not answer
within 5 s.

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

A parameter ``set.<switch>`` is an axis over a profile switch (``reclaim profiles`` lists
them): each point runs on its ``profile`` (the study's default where the grid has none)
derived with that switch, and the table keeps the ``set.<switch>`` column. In TOML, the
table ``[grid.set]`` holds them (or quote the key: ``"set.unused_guard" = [...]``)::

    [grid]
    profile = "4.18"
    seed = [0, 1, 2, 3]
    free_policy = "random"

    [grid.set]
    cbrl_guard = ["Off", "UffdArmed"]

A switch or value that does not exist is refused before any run, with the list of switches
or of the switch's values.

A grid file runs with ``reclaim sweep grid.toml [--out FILE.parquet] [--executor
local|serial|ADDRESS] [--workers N] [--plot FILE.png] [--json]`` (:mod:`reclaim.cli.sweep`; also
``python -m reclaim.sweeper``). Exit codes: 0 every run finished, 1 some run raised an error
or the engine failed, 2 bad input, 130 interrupted.

The package: :mod:`~reclaim.sweeper.grid` (grids and grid files), :mod:`~reclaim.sweeper.runs`
(one run), :mod:`~reclaim.sweeper.executors` (serial, local processes, dask),
:mod:`~reclaim.sweeper.table` (the table, its parquet file and journal, resuming) and
:mod:`~reclaim.sweeper.summary` (outcome counts and the plot).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reclaim.progress import StatusLine, bar
from reclaim.sweeper.executors import _check_executor, _results
from reclaim.sweeper.grid import GridFile, Value, check_switch_axes, load_grid
from reclaim.sweeper.grid import _expand as _expand
from reclaim.sweeper.runs import Study, StudyResult, _check_parameters, _study
from reclaim.sweeper.summary import summary, summary_plot
from reclaim.sweeper.table import _pandas, _Table

if TYPE_CHECKING:
    import pandas as pd

#: Progress callback of a sweep: (runs done, runs that raised an error, runs in the grid).
SweepProgress = Callable[[int, int, int], None]


class _Bar(StatusLine):
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self) -> None:
        super().__init__(delay=0.0, interval=0.1)

    def __call__(self, done: int, failed: int, total: int) -> None:
        frac = done / total if total else 1.0
        self.show(f"sweep {bar(frac)} {done}/{total} done, {failed} failed", final=done >= total)


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
    _check_parameters(fn, names)
    check_switch_axes(grid)
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


__all__ = [
    "GridFile",
    "Study",
    "StudyResult",
    "SweepProgress",
    "Value",
    "load_grid",
    "summary",
    "summary_plot",
    "sweep",
]
