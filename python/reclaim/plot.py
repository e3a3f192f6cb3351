"""Plots of study results (matplotlib, written to PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reclaim._reclaim import PostcopyResult
from reclaim.output import png_path, save_figure

# ttu result codes of rmap:try_to_unmap_one events (field "result")
_SWAP, _DROP = 0, 1

#: The colours of the timeline, by what they mean (the legend names each).
COLORS: dict[str, str] = {
    "precopy": "#dde8f5",
    "postcopy": "#f5eadd",
    "swapped": "#4a7ab5",
    "dropped (pte_unused)": "#c0392b",
    "CBRL zap": "#e67e22",
    "wait": "#b39ddb",
    "stall": "#c0392b",
}

#: The destination's reclaim decisions of the timeline: (legend name, metric counting them).
SERIES: tuple[tuple[str, str], ...] = (
    ("swapped", "dest_pages_swapped"),
    ("dropped (pte_unused)", "dest_pages_dropped"),
    ("CBRL zap", "dest_cbrl_zapped"),
)


def _phases(r: PostcopyResult) -> tuple[float | None, float | None]:
    """(switch to postcopy, completion) in seconds, from the migration phase events."""
    stop = done = None
    for e in r.events("qemu:migration_phase"):
        phase = e.fields().get("phase")
        if e.host == 0 and phase == 2:
            stop = e.t / 1e9
        if e.host == 1 and phase == 3:
            done = e.t / 1e9
    return stop, done


def reclaim_times(r: PostcopyResult) -> dict[str, list[float]]:
    """The times (s) of the destination's reclaim decisions on guest pages, by series name (see
    :data:`SERIES`): pages swapped and dropped by try_to_unmap_one, swap PTEs zapped by the
    CBRL. A study of a large guest keeps no per-page swap events (trace "chain" or "rare"):
    its "swapped" list is empty while its metric counts them."""
    out: dict[str, list[float]] = {name: [] for name, _ in SERIES}
    for e in r.events("rmap:try_to_unmap_one"):
        if e.host == 1:
            res = e.fields().get("result")
            if res == _SWAP:
                out["swapped"].append(e.t / 1e9)
            elif res == _DROP:
                out["dropped (pte_unused)"].append(e.t / 1e9)
    out["CBRL zap"] = [
        e.t / 1e9 for e in r.events("kvm:gmap_zap") if e.host == 1 and e.fields().get("zapped") == 1
    ]
    return out


def vcpu_waits(r: PostcopyResult, end: float) -> dict[int, list[tuple[float, float]]]:
    """Each destination vCPU's waits on userfaults as (start, length) in seconds, from
    ``kvm:vcpu_blocked`` to the thread's ``sched:thread_woken`` (or to `end`)."""
    waits: dict[int, float] = {}
    spans: dict[int, list[tuple[float, float]]] = {}
    for e in r.events():
        if e.host != 1 or e.tid >= 64:
            continue
        if e.name == "kvm:vcpu_blocked":
            waits[e.tid] = e.t / 1e9
        elif e.name == "sched:thread_woken" and e.tid in waits:
            t0 = waits.pop(e.tid)
            spans.setdefault(e.tid, []).append((t0, e.t / 1e9 - t0))
    for tid, t0 in waits.items():
        spans.setdefault(tid, []).append((t0, end - t0))
    return spans


def _panel(fig: Any, spec: Any, r: PostcopyResult, share: Any) -> tuple[Any, Any]:
    """The two axes of one result: the reclaim curves over the vCPU rows."""
    from matplotlib.patches import Patch

    sub = spec.subgridspec(2, 1, height_ratios=[2.2, 0.5 + 0.32 * r.vcpus], hspace=0.05)
    ax = fig.add_subplot(sub[0], sharex=share)
    av = fig.add_subplot(sub[1], sharex=ax)
    stop, done = _phases(r)
    end = done if done is not None else r.metrics["total_time_ns"] / 1e9
    for a in (ax, av):
        if stop is not None:
            a.axvspan(0, stop, color=COLORS["precopy"], zorder=0)
            a.axvspan(stop, end, color=COLORS["postcopy"], zorder=0)
        if done is not None:
            a.axvline(done, color="black", linewidth=0.8, linestyle=":", zorder=1)
    # the reclaim curves: cumulative pages, on their own y scale
    m = r.metrics
    times = reclaim_times(r)
    handles: list[Any] = []
    for name, metric in SERIES:
        ts = times[name]
        label = f"{name}: {m[metric]} pages"
        if ts:
            (line,) = ax.step(
                [0.0, *ts, end],
                [0, *range(1, len(ts) + 1), len(ts)],
                where="post",
                color=COLORS[name],
                label=label,
                linewidth=1.4,
            )
            handles.append(line)
        else:
            handles.append(Patch(facecolor="none", edgecolor=COLORS[name], label=label))
    # a log scale above 10 pages: a few hundred pte_unused drops stay visible next to tens of
    # thousands of pages swapped
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylabel("destination pages\n(cumulative, log)", fontsize=8)
    ax.tick_params(labelsize=8, labelbottom=False)
    ax.set_ylim(bottom=0, top=max([10, *(len(v) for v in times.values())]) * 8)
    ax.grid(axis="y", alpha=0.3)
    # the vCPU rows
    spans = vcpu_waits(r, end)
    for v in range(r.vcpus):
        av.broken_barh(spans.get(v, []), (v + 0.15, 0.7), color=COLORS["wait"])
    handles.append(Patch(color=COLORS["wait"], label="vCPU waits on a userfault"))
    stalls = r.stalls
    for st in stalls:
        since = int(str(st["since"])) / 1e9
        waited = int(str(st["waited_ns"])) / 1e9
        v = int(str(st["vcpu"]))
        av.broken_barh([(since, max(waited, end / 400))], (v + 0.15, 0.7), color=COLORS["stall"])
        by = (
            "only the end of migration released it"
            if st["released_by"] == "postcopy cleanup"
            else ("never released" if st["released_by"] == "never" else "woken before the end")
        )
        av.annotate(
            f"stalled {waited:.3f} s: {by}",
            (since, v + 0.5),
            xytext=(-6, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=7,
            color=COLORS["stall"],
        )
    if stalls:
        handles.append(Patch(color=COLORS["stall"], label="waits for a page QEMU already sent"))
    handles.append(Patch(color=COLORS["precopy"], label="precopy"))
    handles.append(Patch(color=COLORS["postcopy"], label="postcopy"))
    if done is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="black", linestyle=":", label="migration complete"))
    av.set_yticks([v + 0.5 for v in range(r.vcpus)], [f"vCPU {v}" for v in range(r.vcpus)])
    av.tick_params(labelsize=8)
    av.set_ylim(0, r.vcpus)
    av.invert_yaxis()
    title = f"{r.profile} (QEMU {r.qemu}, seed {r.seed}): {r.outcome}"
    h = r.hang
    if h is not None:
        title += f": vCPU {h['vcpu']} waits for guest page {int(h['gfn'] or 0):#x}"
    if stalls:
        from reclaim.stall import watchdog_note

        title += f"\nlongest stall {max(int(str(s['waited_ns'])) for s in stalls) / 1e9:.3f} s; "
        title += watchdog_note(max(int(str(s["waited_ns"])) for s in stalls))
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return ax, av


def timeline_figure(results: Sequence[PostcopyResult]) -> Any:
    """The matplotlib Figure :func:`timeline` writes (for a notebook, or to inspect): per
    result an axes of reclaim curves and, below it, an axes of vCPU rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [2.9 + 0.25 * r.vcpus for r in results]
    fig = plt.figure(figsize=(13, sum(heights) + 0.4))
    outer = fig.add_gridspec(len(results), 1, height_ratios=heights, hspace=0.42)
    share = None
    last = None
    for i, r in enumerate(results):
        ax, av = _panel(fig, outer[i], r, share)
        share = ax
        if i < len(results) - 1:
            av.tick_params(labelbottom=False)
        last = av
    if last is not None:
        last.set_xlabel("simulated time (s)")
    fig.subplots_adjust(left=0.08, right=0.78, top=0.96, bottom=0.06)
    return fig


def timeline(results: Sequence[PostcopyResult], path: str | Path) -> Path:
    """One panel per result, on one time axis: above, the destination's reclaim decisions as
    cumulative page counts (pages swapped by try_to_unmap_one, pages dropped because of
    pte_unused, swap PTEs zapped by the CBRL; the legend gives the study's totals, the table's
    numbers); below, one row per vCPU with its waits for userfaults, a wait for a page QEMU
    already sent in red with how long it stalled and what released it; the precopy and
    postcopy phases shaded and the end of the migration dotted. Returns the path of the PNG
    (`path`, with ``.png`` added if it has no suffix; its directory must exist)."""
    out = png_path(path, "the timeline plot")
    import matplotlib.pyplot as plt

    fig = timeline_figure(results)
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["COLORS", "SERIES", "reclaim_times", "timeline", "timeline_figure", "vcpu_waits"]
