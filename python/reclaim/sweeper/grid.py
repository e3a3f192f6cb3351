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
from typing import Any

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


#: The prefix of a grid parameter that sets a profile switch: ``set.unused_guard`` runs each
#: point on the point's ``profile`` derived with that switch (:func:`switch_params`).
SWITCH_PREFIX = "set."


def is_switch(name: str) -> bool:
    """Whether the grid parameter ``name`` sets a profile switch (``set.<switch>``)."""
    return name.startswith(SWITCH_PREFIX)


def switch_params(
    params: Mapping[str, Value], default_profile: str = "4.18"
) -> tuple[dict[str, Value], str | None]:
    """A grid point's study parameters, with its ``set.<switch>`` parameters folded into the
    ``profile`` parameter: the point's profile (``default_profile`` where the grid has none)
    derived with those switches, under its derived name; None for the profile when the point
    sets no switch."""
    switches: dict[str, Any] = {
        k[len(SWITCH_PREFIX) :]: v for k, v in params.items() if is_switch(k)
    }
    rest = {k: v for k, v in params.items() if not is_switch(k)}
    if not switches:
        return rest, None
    from reclaim._reclaim import Profile

    base = rest.get("profile", default_profile)
    derived = Profile.derive(str(base), None, **switches)
    rest["profile"] = derived.name
    return rest, derived.name


def check_switch_axes(grid: Mapping[str, object], default_profile: str = "4.18") -> None:
    """Refuse, before any run, a ``set.<switch>`` axis whose switch or value does not exist
    (ArgumentError listing the switches, or the switch's values)."""
    from reclaim._reclaim import SWITCHES, Profile
    from reclaim.exceptions import ProfileError

    names = [str(s["name"]) for s in SWITCHES]
    keys = [k for k in grid if isinstance(k, str) and is_switch(k)]
    if not keys:
        return
    prof = grid.get("profile", default_profile)
    profiles = list(prof) if isinstance(prof, Sequence) and not isinstance(prof, str) else [prof]
    for key in keys:
        sw = key[len(SWITCH_PREFIX) :]
        if sw not in names:
            raise ArgumentError(
                f"grid: {key!r} names no profile switch; the switches: {', '.join(names)}"
            )
        spec = grid[key]
        values = list(spec) if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
        for v in values:
            for base in profiles:
                try:
                    one: dict[str, Any] = {sw: v}
                    Profile.derive(str(base), None, **one)
                except ProfileError as e:  # its message lists the switch's values
                    raise ArgumentError(f"grid: {key} = {v!r}: {e}") from None


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
        bare = name[len(SWITCH_PREFIX) :] if isinstance(name, str) and is_switch(name) else name
        if not isinstance(bare, str) or not bare.isidentifier():
            raise ArgumentError(
                f"grid parameter {name!r} is not a valid keyword name "
                f"(or {SWITCH_PREFIX}<switch> for a profile switch)"
            )
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
    sets = grid.pop("set", None)  # [grid.set] switch = [values]: the set.<switch> axes
    if sets is not None:
        if not isinstance(sets, dict):
            raise FormatError(f"{p}: grid.set must be a table of switch = values ([grid.set])")
        grid.update({f"{SWITCH_PREFIX}{k}": v for k, v in sets.items()})
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


__all__ = [
    "SWITCH_PREFIX",
    "GridFile",
    "Value",
    "axes",
    "check_switch_axes",
    "is_switch",
    "load_grid",
    "switch_params",
]
