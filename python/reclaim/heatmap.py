"""A page-state heatmap of a running study, like damo's access heatmap (matplotlib, PNG).

x is simulated time, y the guest's pages (binned), and each cell's color mixes three colors by
the fraction of the bin's pages in each pagemap state at that time: light grey for none (not
mapped on the host: not received yet, or dropped), blue for present, orange for swapped out.
A bin of only present pages is pure blue; half present, half swapped is a blend of the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from reclaim.events import RunSource, _run_of, run_slices, select
from reclaim.exceptions import ArgumentError
from reclaim.output import png_path

#: RGB of the pagemap states 0 none, 1 present, 2 swapped.
STATE_COLORS: dict[str, tuple[float, float, float]] = {
    "none": (0.93, 0.93, 0.93),
    "present": (0.17, 0.42, 0.69),
    "swapped": (0.90, 0.45, 0.13),
}

_POSTCOPY = 2  # qemu:migration_phase "postcopy"


def bin_states(states: npt.NDArray[np.uint8], bins: int) -> npt.NDArray[np.float64]:
    """The fraction of pages in state none / present / swapped (columns 0, 1, 2) in each of
    `bins` contiguous, nearly equal bins of `states` (one row per bin; at most one bin per
    page)."""
    n = len(states)
    bins = max(1, min(bins, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    onehot = (states[:, None] == np.arange(3, dtype=np.uint8)[None, :]).astype(np.float64)
    counts = np.add.reduceat(onehot, edges[:-1], axis=0)
    return counts / np.diff(edges)[:, None]


def page_heatmap(
    run_factory_or_run: RunSource,
    *,
    host: int = 1,
    every_ns: int,
    path: str | Path,
    max_pages: int = 4096,
) -> Path:
    """Run a postcopy study to its end, recording the pagemap state of every guest page on
    `host` (0 source, 1 destination) every `every_ns` simulated ns, and draw the heatmap
    described in the module docstring to the PNG `path` (1000 x 500 pixels); returns the path.

    `run_factory_or_run` is a fresh PostcopyRun (:func:`reclaim.studies.prepare`) or a callable
    returning one. Pages are binned into at most `max_pages` rows. A dashed line marks the
    switch to postcopy; the title gives the study's profile and outcome. ``.png`` is added to a
    `path` with no suffix; its directory must exist."""
    out = png_path(path, "the heatmap")
    if max_pages < 1:
        raise ArgumentError(f"max_pages must be at least 1, not {max_pages}")
    run = _run_of(run_factory_or_run)
    times: list[float] = []
    columns: list[npt.NDArray[np.float64]] = []
    pages = 0
    for now in run_slices(run, every_ns):
        states = run.page_states(host)
        pages = len(states)
        times.append(now / 1e9)
        columns.append(bin_states(states, max_pages))
    result = run.result()
    frac = np.stack(columns, axis=1)  # bins x times x 3
    rgb = frac @ np.array(list(STATE_COLORS.values()))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    half = every_ns / 2e9
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.imshow(
        np.clip(rgb, 0.0, 1.0),
        aspect="auto",
        interpolation="nearest",
        origin="lower",
        extent=(times[0] - half, times[-1] + half, 0, pages),
    )
    phases = select(result, kinds="qemu:migration_phase", host=0)
    switches = phases["t"][phases["a"] == _POSTCOPY].tolist()
    for t in switches:
        ax.axvline(t / 1e9, color="black", linestyle="--", linewidth=1)
    handles = [Patch(facecolor=c, edgecolor="0.5", label=s) for s, c in STATE_COLORS.items()]
    if switches:
        handles.append(Patch(facecolor="none", edgecolor="black", ls="--", label="postcopy"))
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    where = ("source", "destination")[host]
    ax.set_title(
        f"{result.profile} (QEMU {result.qemu}, seed {result.seed}): {result.outcome}; "
        f"guest pages on the {where}",
        fontsize=10,
        loc="left",
    )
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("guest page (gfn)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


__all__ = ["STATE_COLORS", "bin_states", "page_heatmap"]
