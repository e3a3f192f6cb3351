"""Export a run for other tools: Chrome Trace Event JSON and ftrace-style text.

* :func:`chrome_trace` writes the JSON that the Perfetto UI (ui.perfetto.dev) and
  ``chrome://tracing`` open: a process per host, a thread per vCPU with the intervals it was
  blocked on a userfault, kswapd and direct reclaim passes, pte_unused drops and userfaults as
  instants, free memory and swap use as counters, and for a hung study a process of its own,
  "causal chain", whose steps are joined by flow arrows and whose hang is a marked slice.
* :func:`ftrace_text` renders the event log as the lines of ``/sys/kernel/tracing/trace``, the
  ``mm_vmscan_*`` tracepoints in the kernel's own ``TP_printk`` formats.
"""

from __future__ import annotations

import bisect
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from reclaim._reclaim import EVENT_KINDS, TTU_RESULTS, Event, Kernel, PostcopyResult
from reclaim.events import select
from reclaim.exceptions import ArgumentError
from reclaim.output import output_path, write_text

if TYPE_CHECKING:
    import pandas as pd

#: A vmstat sample: (simulated ns, host, counters by name).
Sample = tuple[int, int, Mapping[str, int]]

_KIND = {name: i for i, name in enumerate(EVENT_KINDS)}
_DROP_PTE_UNUSED = TTU_RESULTS.index("drop_pte_unused")
# QEMU's own threads in a postcopy study (rust/qemu/source.rs, rust/qemu/dest.rs); every other
# thread id of the QEMU process is a vCPU index.
_QEMU_THREADS = {1000: "QEMU migration thread", 1001: "QEMU load thread"}


class _Trace:
    """Trace events under construction: a process per host, threads named per host."""

    def __init__(self, host_names: Mapping[int, str]) -> None:
        self.host_names = host_names
        self.meta: list[dict[str, object]] = []
        self.timed: list[tuple[int, dict[str, object]]] = []
        self.threads: dict[tuple[int, str], int] = {}
        self.hosts: set[int] = set()

    def _meta(self, name: str, pid: int, tid: int, args: dict[str, object]) -> None:
        self.meta.append({"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args})

    def pid(self, host: int) -> int:
        pid = host + 1
        if host not in self.hosts:
            self.hosts.add(host)
            self._meta(
                "process_name", pid, pid, {"name": self.host_names.get(host, f"host {host}")}
            )
            self._meta("process_sort_index", pid, pid, {"sort_index": host})
        return pid

    def tid(self, host: int, thread: str) -> int:
        if (host, thread) not in self.threads:
            pid = self.pid(host)
            index = sum(1 for h, _ in self.threads if h == host)
            tid = pid * 1000 + index
            self.threads[host, thread] = tid
            self._meta("thread_name", pid, tid, {"name": thread})
            self._meta("thread_sort_index", pid, tid, {"sort_index": index})
        return self.threads[host, thread]

    def slice(
        self, host: int, thread: str, name: str, t0: int, t1: int, args: dict[str, object]
    ) -> None:
        pid, tid = self.pid(host), self.tid(host, thread)
        event = {"name": name, "ph": "X", "ts": t0 / 1000, "dur": (t1 - t0) / 1000}
        self.timed.append((t0, event | {"pid": pid, "tid": tid, "args": args}))

    def instant(self, host: int, thread: str, name: str, t: int, args: dict[str, object]) -> None:
        pid, tid = self.pid(host), self.tid(host, thread)
        event = {"name": name, "ph": "i", "s": "t", "ts": t / 1000}
        self.timed.append((t, event | {"pid": pid, "tid": tid, "args": args}))

    def flow(self, pid: int, tid: int, ident: int, t0: int, t1: int) -> None:
        """A flow arrow from the slice enclosing `t0` to the slice starting at `t1` (both on
        `pid`/`tid`): the Trace Event format's flow events (``s`` then ``f``, bound to the
        enclosing slices)."""
        common = {"name": "causes", "cat": "chain", "id": ident, "pid": pid, "tid": tid}
        self.timed.append((t0, common | {"ph": "s", "ts": t0 / 1000}))
        self.timed.append((t1, common | {"ph": "f", "bp": "e", "ts": t1 / 1000}))

    def counter(self, host: int, name: str, t: int, value: int) -> None:
        pid = self.pid(host)
        event = {"name": name, "ph": "C", "ts": t / 1000, "pid": pid, "tid": pid}
        self.timed.append((t, event | {"args": {"pages": value}}))

    def document(self, other: dict[str, object]) -> dict[str, object]:
        timed = [e for _, e in sorted(self.timed, key=lambda te: te[0])]  # stable: s before f
        return {"traceEvents": self.meta + timed, "displayTimeUnit": "ms", "otherData": other}


def _pairs(
    cols: Mapping[str, npt.NDArray[Any]], begin: str, end: str, per_thread: bool
) -> list[tuple[int, int, int | None]]:
    """(host, index of `begin`, index of the matching `end` or None) for every interval from an
    event `begin` to the next `end` on the same host (and thread if `per_thread`)."""
    kind = cols["kind"]
    idx = np.flatnonzero((kind == _KIND[begin]) | (kind == _KIND[end]))
    is_begin = (kind[idx] == _KIND[begin]).tolist()
    hosts = cols["host"][idx].tolist()
    zeros = [0] * len(idx)
    pids = cols["pid"][idx].tolist() if per_thread else zeros
    tids = cols["tid"][idx].tolist() if per_thread else zeros
    open_at: dict[tuple[int, int, int], int] = {}
    out: list[tuple[int, int, int | None]] = []
    for i, b, key in zip(idx.tolist(), is_begin, zip(hosts, pids, tids, strict=True), strict=True):
        if b:
            open_at.setdefault(key, i)
        elif key in open_at:
            out.append((key[0], open_at.pop(key), i))
    out.extend((key[0], i, None) for key, i in open_at.items())
    return out


def _is_frame(x: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(x, pandas.DataFrame)


def _frame_rows(frame: pd.DataFrame) -> list[Sample]:
    """The rows of a vmstat_series DataFrame as samples."""
    host = frame.attrs.get("host")
    if host is None:
        raise ArgumentError(
            "a samples DataFrame needs attrs['host'] (vmstat_series sets it); "
            "or pass (t_ns, host, dict) tuples"
        )
    names = [str(c) for c in frame.columns]
    return [
        (round(float(t_s) * 1e9), int(host), dict(zip(names, values, strict=True)))
        for t_s, values in zip(frame.index, frame.to_numpy().tolist(), strict=True)
    ]


def _sample_rows(samples: pd.DataFrame | Iterable[pd.DataFrame | Sample] | None) -> list[Sample]:
    """Samples from a vmstat_series DataFrame, a list of them, or (t_ns, host, dict) tuples."""
    if samples is None:
        return []
    # DataFrames are Any to mypy (pandas has no type information here)
    items: list[Any] = [samples] if _is_frame(samples) else list(samples)
    rows: list[Sample] = []
    for item in items:
        if _is_frame(item):
            rows += _frame_rows(item)
        else:
            t, host, stat = item
            rows.append((int(t), int(host), stat))
    return rows


def chrome_trace(
    result: PostcopyResult | Kernel,
    path: str | Path,
    *,
    samples: pd.DataFrame | Iterable[pd.DataFrame | Sample] | None = None,
) -> Path:
    """Write `result`'s events as Chrome Trace Event JSON (``{"traceEvents": [...],
    "displayTimeUnit": "ms"}``, timestamps in microseconds of simulated time), the format the
    Perfetto UI opens; returns the path.

    Processes are hosts ("source" and "destination" of a PostcopyResult; "kernel" for a
    Kernel), named by ``process_name`` metadata. Threads (``thread_name`` metadata): each vCPU
    (and QEMU thread) that blocked or faulted, with a slice "blocked on userfault" from each
    ``kvm:vcpu_blocked`` to the ``sched:thread_woken`` of the same thread (or to the end of the
    run, with ``args.open_at_end``) and an instant "userfault" per
    ``userfaultfd:handle_userfault``; "kswapd0" with a slice per ``mm_vmscan_kswapd_wake`` →
    ``mm_vmscan_kswapd_sleep``; "direct reclaim" with a slice per
    ``mm_vmscan_direct_reclaim_begin`` → ``_end``. Each ``rmap:try_to_unmap_one`` that dropped a
    page because of pte_unused is an instant "drop_pte_unused" on kswapd0 if a kswapd pass was
    running, else on "direct reclaim" (the model does not record the reclaiming task).
    ``otherData`` holds the profile (and QEMU version, seed and outcome of a study).

    The result holds no vmstat samples: pass `samples` for counters — the DataFrame of
    :func:`reclaim.events.vmstat_series` (its ``attrs["host"]`` names the host), a list of such
    DataFrames (one per host), or an iterable of ``(t_ns, host, vmstat dict)`` tuples. Each
    sample gives a counter "free pages" (``nr_free_pages``) and "swap in use" (pages, counted as
    the host's first sample's ``nr_swap_pages`` minus the current one: exact when swap is
    empty at the first sample, as at the t=0 row of vmstat_series on a fresh run).

    The file is written atomically: a failed write leaves an existing file as it was. Its
    directory must exist (none is created): else a FileError before any work is done.
    """
    output_path(path, "the trace")
    cols = select(result)
    t: list[int] = cols["t"].tolist()
    end = max(t, default=0)
    if isinstance(result, PostcopyResult):
        out = _Trace({0: "source", 1: "destination"})
        other: dict[str, object] = {"profile": result.profile, "qemu": result.qemu}
        other |= {"seed": result.seed, "outcome": result.outcome}
        end = max(end, result.metrics["total_time_ns"])
    else:
        out = _Trace({0: "kernel"})
        other = {"profile": result.profile.name}
    postcopy = isinstance(result, PostcopyResult)
    for host in np.unique(cols["host"]).tolist():
        out.pid(host)

    def thread_name(i: int) -> str:
        pid, tid = int(cols["pid"][i]), int(cols["tid"][i])
        return _QEMU_THREADS.get(tid, f"vCPU {tid}") if postcopy else f"pid {pid} thread {tid}"

    def hexa(col: str, i: int) -> str:
        return hex(int(cols[col][i]))

    stalls = result.stalls if isinstance(result, PostcopyResult) else []
    stall_at = {(int(str(st["vcpu"])), int(str(st["since"]))): st for st in stalls}
    for host, i, j in _pairs(cols, "kvm:vcpu_blocked", "sched:thread_woken", True):
        args: dict[str, object] = {"gaddr": hexa("a", i), "hva": hexa("addr", i)}
        if j is None:
            args["open_at_end"] = True
        t1 = end if j is None else t[j]
        st = stall_at.get((int(cols["tid"][i]), t[i])) if host == 1 else None
        if st is not None:
            args |= {"HANG": "a page QEMU had already sent", "released_by": st["released_by"]}
        out.slice(host, thread_name(i), "blocked on userfault", t[i], t1, args)
    if isinstance(result, PostcopyResult):
        _chain_track(out, result, end)
    for i in np.flatnonzero(cols["kind"] == _KIND["userfaultfd:handle_userfault"]).tolist():
        args = {"addr": hexa("addr", i), "flags": int(cols["c"][i])}
        out.instant(int(cols["host"][i]), thread_name(i), "userfault", t[i], args)
    kswapd: dict[int, list[tuple[int, int]]] = {}
    for host, i, j in _pairs(cols, "mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep", False):
        t1 = end if j is None else t[j]
        kswapd.setdefault(host, []).append((t[i], t1))
        args = {"order": int(cols["c"][i])}
        if j is None:
            args["open_at_end"] = True
        out.slice(host, "kswapd0", "kswapd", t[i], t1, args)
    for host, i, j in _pairs(
        cols, "mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end", False
    ):
        args = {"open_at_end": True} if j is None else {"nr_reclaimed": int(cols["a"][j])}
        out.slice(host, "direct reclaim", "direct reclaim", t[i], end if j is None else t[j], args)
    for passes in kswapd.values():
        passes.sort()
    starts = {h: [p[0] for p in passes] for h, passes in kswapd.items()}
    drops = (cols["kind"] == _KIND["rmap:try_to_unmap_one"]) & (cols["b"] == _DROP_PTE_UNUSED)
    for i in np.flatnonzero(drops).tolist():
        host = int(cols["host"][i])
        k = bisect.bisect_right(starts.get(host, []), t[i]) - 1
        thread = "kswapd0" if k >= 0 and t[i] <= kswapd[host][k][1] else "direct reclaim"
        args = {"pfn": hexa("a", i), "addr": hexa("addr", i), "pid": int(cols["pid"][i])}
        out.instant(host, thread, "drop_pte_unused", t[i], args)
    swap_base: dict[int, int] = {}
    for ts, host, stat in sorted(_sample_rows(samples), key=lambda s: (s[1], s[0])):
        if "nr_free_pages" in stat:
            out.counter(host, "free pages", ts, int(stat["nr_free_pages"]))
        if "nr_swap_pages" in stat:
            base = swap_base.setdefault(host, int(stat["nr_swap_pages"]))
            out.counter(host, "swap in use", ts, base - int(stat["nr_swap_pages"]))
    return write_text(path, json.dumps(out.document(other), separators=(",", ":")), "trace")


def _chain_track(out: _Trace, r: PostcopyResult, end: int) -> None:
    """The causal chain of `r`'s hang as a process of its own: thread "steps" with a slice per
    step (steps at one time merged), each lasting until the next, joined by flow arrows; thread
    "HANG vCPU n" with a slice over each of that vCPU's stalls (from its block on a page QEMU
    had already sent to its release, or the end of the run)."""
    h = r.hang
    if h is None or not r.chain:
        return
    pid = 100  # hosts are pids 1 and 2
    gfn = int(str(h["gfn"]))
    out._meta("process_name", pid, pid, {"name": f"causal chain: guest page {gfn:#x}"})
    out._meta("process_sort_index", pid, pid, {"sort_index": -1})  # on top
    steps_tid = pid * 1000
    out._meta("thread_name", pid, steps_tid, {"name": "steps (arrows: what led to what)"})
    out._meta("thread_sort_index", pid, steps_tid, {"sort_index": 0})
    groups: list[tuple[int, list[dict[str, object]]]] = []
    for step in r.chain:
        ts = int(str(step["t"]))
        if groups and groups[-1][0] == ts:
            groups[-1][1].append(step)
        else:
            groups.append((ts, [step]))
    for n, (ts, group) in enumerate(groups):
        t1 = groups[n + 1][0] if n + 1 < len(groups) else max(end, ts)
        args: dict[str, object] = {
            f"step {k + 1}": f"{s['host']}: {s['what']}" for k, s in enumerate(group)
        }
        args["events"] = ", ".join(str(s["event"]) for s in group)
        name = f"{group[0]['host']}: {group[0]['what']}"
        event = {"name": name, "ph": "X", "ts": ts / 1000, "dur": (t1 - ts) / 1000}
        out.timed.append((ts, event | {"pid": pid, "tid": steps_tid, "args": args}))
        if n > 0:
            out.flow(pid, steps_tid, n, groups[n - 1][0], ts)
    from reclaim.stall import describe

    for st in r.stalls:
        since = int(str(st["since"]))
        waited = int(str(st["waited_ns"]))
        vcpu = int(str(st["vcpu"]))
        hang_tid = pid * 1000 + 1 + vcpu
        if not any(m["tid"] == hang_tid for m in out.meta):
            out._meta("thread_name", pid, hang_tid, {"name": f"HANG vCPU {vcpu}"})
            out._meta("thread_sort_index", pid, hang_tid, {"sort_index": 1 + vcpu})
        name = (
            f"HANG: vCPU {st['vcpu']} waits {waited / 1e9:.3f} s for page {int(str(st['gfn'])):#x}"
        )
        args = {"what": describe(st), "released_by": st["released_by"]}
        event = {"name": name, "ph": "X", "ts": since / 1000, "dur": waited / 1000}
        event["cname"] = "terrible"  # chrome://tracing's red
        out.timed.append((since, event | {"pid": pid, "tid": hang_tid, "args": args}))


# ----------------------------------------------------------------------------- ftrace text

# Formats of include/trace/events/vmscan.h (mainline), for the fields the model records.
_NID = 0  # the model has one node
_PRIORITY = 12  # DEF_PRIORITY: the shrink events do not record the scan priority
_FLAGS = "RECLAIM_WB_ANON|RECLAIM_WB_ASYNC"  # trace_reclaim_flags(file=0)
_GFP = "GFP_HIGHUSER_MOVABLE"  # the only allocation that enters direct reclaim in the model


def _shrink_inactive(f: Mapping[str, int]) -> str:
    return (
        f"nid={_NID} nr_scanned={f['nr_scanned']} nr_reclaimed={f['nr_reclaimed']} "
        "nr_dirty=0 nr_writeback=0 nr_congested=0 nr_immediate=0 "
        "nr_activate_anon=0 nr_activate_file=0 nr_ref_keep=0 "
        f"nr_unmap_fail={f['nr_unmap_fail']} priority={_PRIORITY} flags={_FLAGS}"
    )


def _shrink_active(f: Mapping[str, int]) -> str:
    taken, deactivated = f["nr_taken"], f["nr_deactivated"]
    return (
        f"nid={_NID} nr_taken={taken} nr_active={taken - deactivated} "
        f"nr_deactivated={deactivated} nr_referenced={f['nr_referenced']} "
        f"priority={_PRIORITY} flags={_FLAGS}"
    )


def _lru_isolate(f: Mapping[str, int]) -> str:
    lru = {0: "inactive_anon", 2: "inactive_file"}.get(f["lru"], "unevictable")
    return (
        f"classzone=0 order=0 nr_requested={_MAX_LRU_BATCH} nr_scanned={f['nr_scanned']} "
        f"nr_skipped=0 nr_taken={f['nr_taken']} lru={lru}"
    )


_MAX_LRU_BATCH = 4096  # MGLRU's scan_folios asks for MAX_LRU_BATCH (v6.12)


def _lru_insertion(f: Mapping[str, int]) -> str:
    fl = f["flags"]
    # trace_pagemap_flags (include/trace/events/pagemap.h): M a/f s b d B
    marks = "".join(
        on if fl & bit else off
        for bit, on, off in (
            (0x01, "M", " "),
            (0x02, "a", "f"),
            (0x08, "s", " "),
            (0x10, "b", " "),
            (0x20, "d", " "),
            (0x40, "B", " "),
        )
    )
    return f"folio={f['pfn'] * 64:016x} pfn={f['pfn']:#x} lru={f['lru']} flags={marks}"


_VMSCAN: dict[str, Callable[[Mapping[str, int]], str]] = {
    "mm_vmscan_kswapd_wake": lambda f: f"nid={f['nid']} order={f['order']}",
    "mm_vmscan_kswapd_sleep": lambda f: f"nid={f['nid']}",
    "mm_vmscan_direct_reclaim_begin": lambda f: f"order={f['order']} gfp_flags={_GFP}",
    "mm_vmscan_direct_reclaim_end": lambda f: f"nr_reclaimed={f['nr_reclaimed']}",
    "mm_vmscan_lru_shrink_inactive": _shrink_inactive,
    "mm_vmscan_lru_shrink_active": _shrink_active,
    "mm_vmscan_lru_isolate": _lru_isolate,
    "mm_lru_insertion": _lru_insertion,
    # the model's name of the writeback event; its tracepoint is mm_vmscan_writepage up to
    # v5.17 (Event.tracepoint), with the same TP_printk
    "mm_vmscan_write_folio": lambda f: (
        f"page={f['pfn'] * 64:016x} pfn={f['pfn']:#x} flags={_FLAGS}"
    ),
}

#: The prefix of the model's own events in the ftrace text: no kernel tracepoint mirrors them.
MODEL_PREFIX = "reclaim:"

_HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


# QEMU's thread names (qemu_thread_create) of a study's migration threads: (host, tid) -> comm
_QEMU_COMMS = {(0, 1000): "live_migration", (1, 1001): "postcopy/listen"}


def _qemu_comm(e: Event) -> str:
    """The QEMU thread of an event of the QEMU process: QEMU's own events come from its
    migration threads (the source's live_migration; the destination's postcopy/fault for page
    requests, postcopy/listen for the rest), an event of a QEMU thread id from that thread,
    anything else from the vCPU of its thread id."""
    if e.name.startswith("qemu:"):
        if e.host == 0:
            return "live_migration"
        return "postcopy/fault" if "request" in e.name else "postcopy/listen"
    return _QEMU_COMMS.get((e.host, e.tid), f"CPU {e.tid}/KVM")


_NOTE_STUDY = """\
# reclaim: the model has no CPUs: the CPU column is the host (000 source, 001 destination).
# reclaim: events named reclaim:<name> are the model's own, not kernel tracepoints.
# reclaim: tasks: QEMU's vCPU threads "CPU n/KVM", its migration threads live_migration
# reclaim: (source), postcopy/fault and postcopy/listen (destination), kswapd0 during a kswapd
# reclaim: pass; <...> is a task the model does not record (direct reclaim runs in the
# reclaim: allocating task).
"""

_NOTE_KERNEL = """\
# reclaim: the model has no CPUs: the CPU column is the host (000).
# reclaim: events named reclaim:<name> are the model's own, not kernel tracepoints.
# reclaim: <...> is a task the model does not record (direct reclaim runs in the allocating task).
"""


def ftrace_text(
    source: PostcopyResult | Kernel, path: str | Path | None = None, *, host: int | None = None
) -> str:
    """The event log of `source` as the text of ``/sys/kernel/tracing/trace`` (nop tracer);
    also written to `path` if given. `host` keeps one host's events.

    Each line is ``<task>-<pid> [<cpu>] ..... <secs>.<usecs>: <tracepoint>: <fields>`` with the
    kernel's column widths. The CPU column holds the host (000 a lone kernel or the source,
    001 the destination): the model has no CPUs, and the header says so in ``# reclaim:``
    comment lines. The task is the process name for a Kernel's live processes; in a study,
    QEMU's threads by their names (vCPUs ``CPU n/KVM`` as with ``-name debug-threads=on``, the
    migration threads ``live_migration``, ``postcopy/fault`` and ``postcopy/listen``);
    ``kswapd0`` for reclaim
    events during a kswapd pass; else ``<...>`` (as ftrace prints a task whose name it has not
    recorded); the model gives reclaim events pid 0.

    The ``mm_vmscan_*`` tracepoints use the TP_printk formats of
    include/trace/events/vmscan.h (mainline Linux), filled with what the model records
    (rust/sim/log.rs, ``EVENT_FIELDS``) and fixed values for what it does not:

    - ``mm_vmscan_kswapd_wake: nid=%d order=%d`` and ``mm_vmscan_kswapd_sleep: nid=%d``.
    - ``mm_vmscan_direct_reclaim_begin: order=%d gfp_flags=GFP_HIGHUSER_MOVABLE`` (user page
      allocations are the only ones that enter direct reclaim in the model) and
      ``mm_vmscan_direct_reclaim_end: nr_reclaimed=%lu``.
    - ``mm_vmscan_lru_shrink_inactive``: nr_scanned, nr_reclaimed and nr_unmap_fail from the
      model; nid=0 (one node); nr_dirty, nr_writeback, nr_congested, nr_immediate,
      nr_activate_anon, nr_activate_file and nr_ref_keep are 0 (not recorded);
      priority=12 (DEF_PRIORITY; the scan priority is not recorded).
    - ``mm_vmscan_lru_shrink_active``: nr_taken, nr_deactivated, nr_referenced from the model,
      nr_active = nr_taken - nr_deactivated (the model puts every other taken page back on the
      active list), nid=0, priority=12.
    - ``mm_vmscan_lru_isolate`` (traced by MGLRU's ``scan_folios`` only): nr_scanned, nr_taken
      and lru from the model; classzone=0, order=0, nr_requested=4096 (MAX_LRU_BATCH),
      nr_skipped=0 (one zone).
    - ``mm_lru_insertion: folio=%p pfn=0x%lx lru=%d flags=%s%s%s%s%s%s`` (pagemap.h, off until
      ``Kernel.trace_enable("mm_lru_insertion")``): pfn, ``folio_lru_list`` and the
      ``trace_pagemap_flags`` letters from the model (``d`` and ``B`` never: no
      PG_mappedtodisk, no buffer heads); ``folio`` as ``page`` below. 4.13-4.18 print
      ``page=%p pfn=%lu``: the export writes the 6.12 form for every profile.
    - ``mm_vmscan_write_folio: page=%p pfn=0x%lx flags=%s`` (v5.18+; ``mm_vmscan_writepage``
      with the same format on 4.13, 4.17 and 4.18): the model has no struct page array;
      ``page`` is printed as pfn * 64 (sizeof(struct page)) in the 16 hex digits of a hashed
      %p.
    - ``flags`` is always ``RECLAIM_WB_ANON|RECLAIM_WB_ASYNC``: the model writes only
      swap-backed pages, and its shrink events do not record whether the list was anon or file.

    A tracepoint line carries the tracepoint's name in the release of the host's profile
    (``Event.tracepoint``). Every other event is the model's own and is written
    ``reclaim:<name>: <fields>`` (e.g. ``reclaim:rmap:try_to_unmap_one``) with the fields of its
    ``Event.text``: no kernel tracepoint has those names.

    `path` is written atomically (a failed write leaves an existing file as it was); its
    directory must exist (none is created): else a FileError before any work is done.
    """
    if path is not None:
        output_path(path, "the trace")
    comms = {p.pid: p.name[:15] for p in source.processes()} if isinstance(source, Kernel) else {}
    events: list[Event] = [e for e in source.events() if host is None or e.host == host]
    # QEMU's threads in a study: vCPUs as QEMU names them (-name debug-threads=on), its
    # migration threads by their thread names
    qemu = {(e.host, e.pid) for e in events if e.name.startswith(("qemu:", "kvm:"))}
    postcopy = isinstance(source, PostcopyResult)
    kswapd_on: set[int] = set()
    direct_on: set[int] = set()
    lines: list[str] = []
    for e in events:
        name = e.name
        if name == "mm_vmscan_kswapd_wake":
            kswapd_on.add(e.host)
        elif name == "mm_vmscan_direct_reclaim_begin":
            direct_on.add(e.host)
        fmt = _VMSCAN.get(name)
        if e.pid in comms:
            comm = comms[e.pid]
        elif postcopy and (e.host, e.pid) in qemu:
            comm = _qemu_comm(e)
        elif fmt is not None and e.pid == 0 and e.host in kswapd_on - direct_on:
            comm = "kswapd0"
        else:
            comm = "<...>"
        body = fmt(e.fields()) if fmt is not None else e.text[len(name) :].lstrip()
        secs, rest = divmod(e.t, 1_000_000_000)
        tp = e.tracepoint or MODEL_PREFIX + name
        lines.append(
            f"{comm:>16}-{e.pid:<7} [{e.host:03d}] ..... {secs:5d}.{rest // 1000:06d}: {tp}: {body}"
        )
        if name == "mm_vmscan_kswapd_sleep":
            kswapd_on.discard(e.host)
        elif name == "mm_vmscan_direct_reclaim_end":
            direct_on.discard(e.host)
    cpus = len({e.host for e in events}) or 1
    note = _NOTE_STUDY if postcopy else _NOTE_KERNEL
    text = _HEADER.format(n=len(lines), cpus=cpus) + note + "".join(line + "\n" for line in lines)
    if path is not None:
        write_text(path, text, "trace")
    return text


__all__ = ["MODEL_PREFIX", "Sample", "chrome_trace", "ftrace_text"]
