"""A sweep table summarized: outcome counts by parameter, and the plot of an outcome's rate."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reclaim.exceptions import ArgumentError
from reclaim.output import png_path, save_figure
from reclaim.sweeper.grid import Value, _kind
from reclaim.sweeper.table import _pandas

if TYPE_CHECKING:
    import pandas as pd


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
    axis). ``.png`` is added to a `path` with no suffix; its directory must exist."""
    from matplotlib.figure import Figure

    out = png_path(path, "the sweep plot")

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
    # lines that coincide stay visible: each series has its own marker and line style and is
    # shifted sideways by a little (a dodge of at most a third of the smallest x step)
    series = list(dict.fromkeys(keys[i] for i in ran))
    steps = [b - a for a, b in itertools.pairwise(sorted(coord.values())) if b > a]
    dodge = (min(steps) if steps else 1.0) / 3 / max(len(series), 1)
    for n, key in enumerate(series):
        hits: dict[Value, list[int]] = {}
        for i in ran:
            if keys[i] == key:
                hits.setdefault(xs[i], []).append(labels[i] == outcome)
        shift = (n - (len(series) - 1) / 2) * dodge
        pos = [coord[v] + shift for v in hits]
        rates = [sum(h) / len(h) for h in hits.values()]
        name = ", ".join(f"{b}={k}" for b, k in zip(by, key, strict=True)) or "all runs"
        ax.plot(
            pos,
            rates,
            marker="osD^v<>"[n % 7],
            linestyle=("-", "--", ":", "-.")[n % 4],
            markersize=7,
            alpha=0.85,
            label=name,
        )
    if not numeric:
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
    ax.set_xlabel(x)
    ax.set_ylabel(f"fraction {outcome}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"fraction of runs {outcome} ({len(ran)} runs)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out, dpi=110)


__all__ = ["summary", "summary_plot"]
