"""Plots of study results (matplotlib, written to PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reclaim._reclaim import PostcopyResult
from reclaim.output import png_path

# ttu result codes of rmap:try_to_unmap_one events (field "result")
_SWAP, _DROP = 0, 1


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


def timeline(results: Sequence[PostcopyResult], path: str | Path) -> Path:
    """One panel per result: the migration phases; the destination's reclaim decisions as
    cumulative counts (pages swapped by try_to_unmap_one, pages dropped because of pte_unused,
    swap PTEs zapped by the CBRL); each vCPU's waits for userfaults, with the wait for a page
    QEMU already sent in red. Returns the path of the PNG written (`path`, with ``.png`` added
    if it has no suffix; its directory must exist)."""
    out = png_path(path, "the timeline plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.0 * len(results)), sharex=True)
    if len(results) == 1:
        axes = [axes]
    for ax, r in zip(axes, results, strict=True):
        stop, done = _phases(r)
        end = done if done is not None else r.metrics["total_time_ns"] / 1e9
        if stop is not None:
            ax.axvspan(0, stop, color="#dde8f5", label="precopy")
            ax.axvspan(stop, end, color="#f5eadd", label="postcopy")
        series: dict[str, list[float]] = {"swapped": [], "dropped (pte_unused)": [], "CBRL zap": []}
        for e in r.events("rmap:try_to_unmap_one"):
            if e.host == 1:
                res = e.fields().get("result")
                if res == _SWAP:
                    series["swapped"].append(e.t / 1e9)
                elif res == _DROP:
                    series["dropped (pte_unused)"].append(e.t / 1e9)
        series["CBRL zap"] = [
            e.t / 1e9
            for e in r.events("kvm:gmap_zap")
            if e.host == 1 and e.fields().get("zapped") == 1
        ]
        colors = {"swapped": "#4a7ab5", "dropped (pte_unused)": "#c0392b", "CBRL zap": "#e67e22"}
        top = max([len(v) for v in series.values()] + [1])
        for name, ts in series.items():
            if ts:
                ys = [2.0 + 1.8 * (i + 1) / top for i in range(len(ts))]
                ax.step(ts, ys, where="post", color=colors[name], label=f"{name}: {len(ts)}")
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
        for tid, sp in spans.items():
            ax.broken_barh(sp, (0.15 + 0.6 * tid, 0.45), color="#c9b3d9")
        h = r.hang
        title = f"{r.profile} (QEMU {r.qemu}, seed {r.seed}): {r.outcome}"
        if h is not None:
            since = int(h["since"] or 0) / 1e9
            until = (int(h["released_at"]) / 1e9) if h["released_at"] is not None else end
            vcpu = int(h["vcpu"] or 0)
            ax.broken_barh(
                [(since, max(until - since, end / 400))],
                (0.15 + 0.6 * vcpu, 0.45),
                color="#c0392b",
                label="waits for a page QEMU already sent",
            )
            title += f": vCPU {vcpu} waits for guest page {int(h['gfn'] or 0):#x}"
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_yticks([0.375 + 0.6 * i for i in range(2)] + [2.9])
        ax.set_yticklabels(["vCPU 0 waits", "vCPU 1 waits", "reclaim (cumulative)"], fontsize=8)
        ax.set_ylim(0, 4.4)
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    axes[-1].set_xlabel("simulated time (s)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["timeline"]
