"""A page-state heatmap of a running study, like damo's access heatmap (matplotlib, PNG).

x is simulated time, y the guest's pages (binned), and each cell's color mixes four colors by
the fraction of the bin's pages in each state at that time: light grey for none (not mapped on
the host: not received yet), blue for present, orange for swapped out, and, on the
destination, red for a page QEMU had received whose PTE is none again (dropped by
``pte_unused`` in try_to_unmap_one, or a swap PTE zapped through the CBRL): QEMU will never send
it again, so the guest's next touch of it hangs. A bin of only present pages is pure blue;
half present, half swapped is a blend of the two; the legend says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from reclaim._reclaim import PostcopyResult
from reclaim.events import RunSource, _run_of, run_slices, select
from reclaim.exceptions import ArgumentError
from reclaim.output import png_path, save_figure

#: RGB of the page states 0 none, 1 present, 2 swapped (pagemap) and 3 lost: received by the
#: destination's QEMU, then dropped or zapped (none again).
STATE_COLORS: dict[str, tuple[float, float, float]] = {
    "none": (0.93, 0.93, 0.93),
    "present": (0.17, 0.42, 0.69),
    "swapped": (0.90, 0.45, 0.13),
    "lost": (0.80, 0.10, 0.10),
}

#: What each state means, as the legend says it.
STATE_LABELS: dict[str, str] = {
    "none": "none (not received yet)",
    "present": "present",
    "swapped": "swapped out",
    "lost": "received, then dropped (pte_unused) or zapped: never sent again",
}

_LOST = 3

_POSTCOPY = 2  # qemu:migration_phase "postcopy"


def bin_states(states: npt.NDArray[np.uint8], bins: int) -> npt.NDArray[np.float64]:
    """The fraction of pages in state none / present / swapped / lost (columns 0 to 3) in each
    of `bins` contiguous, nearly equal bins of `states` (one row per bin; at most one bin per
    page)."""
    n = len(states)
    bins = max(1, min(bins, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    onehot = (states[:, None] == np.arange(4, dtype=np.uint8)[None, :]).astype(np.float64)
    counts = np.add.reduceat(onehot, edges[:-1], axis=0)
    return counts / np.diff(edges)[:, None]


@dataclass(frozen=True)
class PageStates:
    """What :func:`page_heatmap` draws: the study's page states sampled over time. ``times``
    the sample times (s); ``fractions`` bins x times x 4, the share of each bin's pages none /
    present / swapped / lost; ``pages`` the guest's pages; ``most_lost`` the most pages lost
    (received by the destination, then none again) at one sample; ``result`` the study's
    result."""

    #: Sample times (s).
    times: list[float]
    #: bins x times x 4: the fraction of each bin's pages none / present / swapped / lost.
    fractions: npt.NDArray[np.float64]
    #: The guest's pages.
    pages: int
    #: The most pages "lost" (received by the destination, then none again) at one sample.
    most_lost: int
    result: PostcopyResult


def page_states_over_time(
    run_factory_or_run: RunSource, *, host: int = 1, every_ns: int, max_pages: int = 4096
) -> PageStates:
    """Run a postcopy study to its end, sampling the state of every guest page on `host` every
    `every_ns` simulated ns (see the module docstring for the states), binned into at most
    `max_pages` rows."""
    if max_pages < 1:
        raise ArgumentError(f"max_pages must be at least 1, not {max_pages}")
    run = _run_of(run_factory_or_run)
    times: list[float] = []
    columns: list[npt.NDArray[np.float64]] = []
    pages = 0
    lost = 0
    for now in run_slices(run, every_ns):
        states = run.page_states(host)
        if host == 1:
            gone = (states == 0) & run.received()
            lost = max(lost, int(gone.sum()))
            states = np.where(gone, np.uint8(_LOST), states)
        pages = len(states)
        times.append(now / 1e9)
        columns.append(bin_states(states, max_pages))
    return PageStates(times, np.stack(columns, axis=1), pages, lost, run.result())


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
    described in the module docstring to the PNG `path` (1200 x 500 pixels); returns the path.

    `run_factory_or_run` is a fresh PostcopyRun (:func:`reclaim.studies.prepare`) or a callable
    returning one. Pages are binned into at most `max_pages` rows. A dashed line marks the
    switch to postcopy; the title gives the study's profile and outcome. ``.png`` is added to a
    `path` with no suffix; its directory must exist."""
    out = png_path(path, "the heatmap")
    h = page_states_over_time(run_factory_or_run, host=host, every_ns=every_ns, max_pages=max_pages)
    times, result, pages = h.times, h.result, h.pages
    rgb = h.fractions @ np.array(list(STATE_COLORS.values()))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    half = every_ns / 2e9
    fig, ax = plt.subplots(figsize=(12, 5))
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
    shown = [s for s in STATE_COLORS if host == 1 or s != "lost"]
    handles = [
        Patch(facecolor=STATE_COLORS[s], edgecolor="0.5", label=STATE_LABELS[s]) for s in shown
    ]
    if switches:
        handles.append(Patch(facecolor="none", edgecolor="black", ls="--", label="postcopy starts"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="each cell mixes these colours\nby the share of its pages",
        title_fontsize=8,
    )
    where = ("source", "destination")[host]
    ax.set_title(
        f"{result.profile} (QEMU {result.qemu}, seed {result.seed}): {result.outcome}; "
        f"guest pages on the {where}"
        + (f"; at most {h.most_lost} received pages lost at once" if host == 1 else ""),
        fontsize=10,
        loc="left",
    )
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("guest page (gfn)")
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    plt.close(fig)
    return out


__all__ = [
    "STATE_COLORS",
    "STATE_LABELS",
    "PageStates",
    "bin_states",
    "page_heatmap",
    "page_states_over_time",
]
