"""Sweep grids: a mapping of parameter names to values expanded into points, and the TOML grid
file (format in :mod:`reclaim.sweeper`)."""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reclaim.exceptions import ArgumentError, FileError, FormatError

#: A parameter value: what a grid axis lists and what a table cell holds.
Value = str | int | float | bool | None

#: Result columns, in table order around the metric columns.
_HEAD = ("outcome", "failure")
_TAIL = ("log_hash", "error", "seconds")
_RESERVED = frozenset(_HEAD + _TAIL)


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
#:
#: A cap, not a lazily iterated product, because a sweep needs its whole grid: the table's rows
#: are in grid order whatever order runs finish in, a resumed sweep matches the rows of its
#: parquet file and journal against every point (the keys of all points), the progress total is
#: the grid's size and the dask executor submits every pending point at once. A million points
#: (a few hundred MB of parameter dicts) is also more than a day of core time at the 0.1 s a
#: small postcopy run takes: a larger grid is one nobody finishes, and is better split.
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


def axes(grid: Mapping[str, object]) -> list[str]:
    """The parameters of a grid that take more than one value."""
    return [
        n
        for n, v in grid.items()
        if isinstance(v, Sequence) and not isinstance(v, str | bytes) and len(v) > 1
    ]


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


__all__ = ["GridFile", "Value", "axes", "load_grid"]
