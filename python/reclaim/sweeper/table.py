"""A sweep's table: its rows in grid order, the parquet file written atomically, and the journal
of finished runs a killed sweep is resumed from."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reclaim.exceptions import ArgumentError, FileError, FormatError
from reclaim.output import write_bytes
from reclaim.sweeper.grid import _HEAD, _RESERVED, _TAIL, Value, _check_kinds
from reclaim.sweeper.runs import _Result

if TYPE_CHECKING:
    import pandas as pd

#: Seconds between two writes of the table (at least).
_SAVE_EVERY = 2.0


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
