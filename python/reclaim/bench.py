"""``reclaim bench``: the benchmark suite, side by side with what users would use instead.

Each measurement runs ``repeat`` times and reports the median; ratios are taken between
medians measured in the same run (timings on shared machines are noisy: compare ratios). The
peers are optional: libCacheSim (``pip install '.[bench]'``) for trace replay, and this
machine's kernel (through ``madvise``) for reclaim. A peer that is missing is reported as
skipped with the reason. The Rust-only numbers (criterion) are in ``benches/`` (``make bench``).

Suites (``--only``):

- ``replay``: a zipf(1.0) oracleGeneral trace, host memory / cache 25% of its distinct pages:
  ``reclaim.replay`` (the full model: page tables, s390 young emulation, LRU lists, reclaim
  with try_to_unmap and swap) against libCacheSim's CLOCK and LRU on the same file.
- ``reclaim``: pages per second through MADV_PAGEOUT in the model (anon to swap, and the
  pte_unused drop of a KVM guest's unused pages), next to the host kernel's cost per page of
  MADV_PAGEOUT on anon pages (needs active swap) and on MADV_FREE pages (discarded).
- ``memory``: model heap per resident page (frame, PTE, PGSTE, LRU links) and RSS growth.
- ``python``: ``Process.access_batch`` on numpy arrays against ``run_workload`` generating the
  same kind of accesses in Rust (the Python overhead).
- ``faults``: first-touch and swap-in faults per second through ``access_batch``, next to the
  host kernel's (stores to new anon pages; loads after MADV_PAGEOUT, needs active swap).
- ``explore``: distinct states the explorer visits per second on the 4.17 switchover scenario.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import reclaim
from reclaim.crosscheck.libc import libc
from reclaim.crosscheck.uapi import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE
from reclaim.trace import replay, write_zipf

PAGE = 4096


@dataclass
class Row:
    """One line of the table: our number, a peer's, their ratio and the target.

    ``suite`` the suite it belongs to (``"replay"``, ``"reclaim"``, ...), ``what`` what was
    measured, ``value`` our number in ``unit``; ``peer`` and ``peer_value`` what it is compared
    with (empty and None when there is no peer), ``ratio`` value / peer_value; ``target`` the
    goal in words and ``met`` whether it was reached (None without a target); ``note`` more
    context (miss ratios, why a peer was skipped)."""

    suite: str
    what: str
    value: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """How big each suite runs (``--quick`` shrinks everything for a smoke test).

    ``trace_requests`` and ``trace_pages``: the Zipf trace the replay suite writes (requests,
    distinct pages); ``reclaim_pages``: pages the reclaim suite pages out to swap;
    ``drop_pages``: pages of its pte_unused drop (and of the host comparison); ``memory_pages``:
    resident pages the memory suite measures; ``batch_accesses``: accesses of the Python
    overhead suite; ``explore_depth``: the explorer suite's bound; ``repeat``: runs per number
    (the median is reported)."""

    trace_requests: int
    trace_pages: int
    reclaim_pages: int
    drop_pages: int
    memory_pages: int
    batch_accesses: int
    explore_depth: int
    repeat: int


FULL = Sizes(10_000_000, 1 << 20, 4 << 20, 1 << 20, 1 << 20, 4_000_000, 10, 3)
QUICK = Sizes(100_000, 10_000, 1 << 14, 1 << 12, 1 << 14, 50_000, 6, 1)


def _median(f: Callable[[], float], repeat: int) -> float:
    return statistics.median(f() for _ in range(repeat))


def _rss_kib() -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def _populated(
    pages: int, *, kvm: bool, memory: int | None = None, swap: bool = True
) -> tuple[reclaim.Kernel, reclaim.Process, int]:
    """A process with ``pages`` anon pages written; memory for twice as many (or ``memory``
    pages), swap for all of them (or none)."""
    mem = (memory or 2 * pages) * PAGE
    k = reclaim.Kernel(profile="6.12", memory=mem, swap=(pages + 1) * PAGE if swap else 0)
    for name in ("mm:handle_mm_fault", "mm_vmscan_write_folio"):
        k.mute(name)
    p = k.spawn("bench", kvm=kvm)
    a = p.mmap(pages * PAGE)
    addrs = a + np.arange(pages, dtype=np.uint64) * PAGE
    p.access_batch(addrs, np.ones(pages, dtype=bool))
    return k, p, a


# -- replay ------------------------------------------------------------------------------------


def suite_replay(sz: Sizes, tmp: Path) -> list[Row]:
    path = tmp / "zipf.oracleGeneral.bin"
    write_zipf(path, sz.trace_requests, sz.trace_pages, s=1.0, seed=1, format="oracle")
    results = [replay(path, memory=0.25) for _ in range(sz.repeat)]
    ours = statistics.median(r.requests_per_second for r in results)
    r0 = results[0]
    rows = [
        Row(
            "replay",
            f"reclaim replay, {sz.trace_requests:,} requests over {r0.distinct_pages:,} pages",
            ours,
            "req/s",
            note=f"miss ratio {r0.miss_ratio:.4f}, memory {r0.memory // PAGE:,} pages",
        )
    ]
    try:
        import libcachesim as lcs
    except ImportError:
        rows.append(
            Row("replay", "libCacheSim CLOCK", 0, "req/s", note="skipped: pip install '.[bench]'")
        )
        return rows
    cache_bytes = (r0.memory // PAGE) * PAGE
    for name, cls in (("CLOCK", lcs.Clock), ("LRU", lcs.LRU)):
        miss = 0.0

        def once(cls: type = cls) -> float:
            nonlocal miss
            reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
            cache = cls(cache_size=cache_bytes)
            t = time.perf_counter()
            miss = cache.process_trace(reader)[0]
            return sz.trace_requests / (time.perf_counter() - t)

        theirs = _median(once, sz.repeat)
        rows.append(
            Row(
                "replay",
                f"reclaim replay vs libCacheSim {name}",
                ours,
                "req/s",
                f"libCacheSim {name}",
                theirs,
                ours / theirs,
                ">= 1x CLOCK" if name == "CLOCK" else "",
                ours >= theirs if name == "CLOCK" else None,
                f"their miss ratio {miss:.4f}",
            )
        )
    return rows


# -- reclaim -----------------------------------------------------------------------------------

MADV_FREE, MADV_PAGEOUT = 8, 21


@contextlib.contextmanager
def _host_anon(pages: int) -> Iterator[tuple[Any, int, np.ndarray]]:
    """``pages`` of private anonymous memory of this process from the host kernel, untouched:
    (libc, address, a uint8 numpy view of it); unmapped at the end."""
    lib = libc()
    size = pages * PAGE
    addr = lib.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    try:
        view = memoryview((ctypes.c_char * size).from_address(addr)).cast("B")
        yield lib, addr, np.frombuffer(view, dtype=np.uint8)
    finally:
        lib.munmap(addr, size)


def host_ns_per_page(pages: int, *, lazyfree: bool) -> float:
    """The host kernel's time per page of MADV_PAGEOUT over ``pages`` written anon pages
    (first MADV_FREE'd, so reclaim discards them, if ``lazyfree``)."""
    with _host_anon(pages) as (lib, addr, mem):
        mem[::PAGE] = 1
        if lazyfree:
            lib.madvise(addr, pages * PAGE, MADV_FREE)
        t = time.perf_counter_ns()
        lib.madvise(addr, pages * PAGE, MADV_PAGEOUT)
        return (time.perf_counter_ns() - t) / pages


def host_faults_per_second(pages: int, *, swap_in: bool) -> float:
    """The host kernel's page faults per second: a store to each of ``pages`` untouched anon
    pages (first touch), or (``swap_in``) a load of each after MADV_PAGEOUT sent them to swap
    (swap-in, with the kernel's swap readahead). numpy's strided access makes the loop's own
    cost about a nanosecond a page."""
    with _host_anon(pages) as (lib, addr, mem):
        if swap_in:
            mem[::PAGE] = 1
            lib.madvise(addr, pages * PAGE, MADV_PAGEOUT)
            t = time.perf_counter_ns()
            total = int(mem[::PAGE].sum(dtype=np.uint64))
            dt = time.perf_counter_ns() - t
            assert total == pages, "the pages came back with their content"
        else:
            t = time.perf_counter_ns()
            mem[::PAGE] = 1
            dt = time.perf_counter_ns() - t
        return pages / dt * 1e9


def _swap_active() -> bool:
    try:
        return len(Path("/proc/swaps").read_text().splitlines()) > 1
    except OSError:
        return False


def suite_reclaim(sz: Sizes) -> list[Row]:
    rows = []
    for what, pages, kvm in (
        ("anon to swap", sz.reclaim_pages, False),
        ("pte_unused drop", sz.drop_pages, True),
    ):

        def once(pages: int = pages, kvm: bool = kvm) -> float:
            _, p, a = _populated(pages, kvm=kvm)
            if kvm:
                for i in range(pages):
                    p.essa(a + i * PAGE, "set_unused")
            t = time.perf_counter()
            p.madvise(a, pages * PAGE, "pageout")
            return pages / (time.perf_counter() - t)

        ours = _median(once, sz.repeat)
        host: float | None = None
        note = ""
        lazy = what == "pte_unused drop"  # a drop without I/O: compare with a lazyfree discard
        if lazy or _swap_active():
            try:
                host = 1e9 / _median(
                    partial(host_ns_per_page, sz.drop_pages, lazyfree=lazy), sz.repeat
                )
                note = (
                    "host: MADV_FREE then MADV_PAGEOUT (discard)"
                    if lazy
                    else "host: MADV_PAGEOUT to swap"
                )
            except OSError as e:  # MADV_PAGEOUT needs Linux 5.4
                note = f"host skipped: {e}"
        else:
            note = "host skipped: no active swap (swapon a swap file to compare)"
        rows.append(
            Row(
                "reclaim",
                f"model MADV_PAGEOUT, {what}, {pages:,} pages",
                ours,
                "pages/s",
                "host kernel" if host else "",
                host,
                ours / host if host else None,
                ">= 10M/s, >= 20x host",
                ours >= 10e6 and (host is None or ours >= 20 * host),
                note,
            )
        )
    return rows


# -- memory ------------------------------------------------------------------------------------


def suite_memory(sz: Sizes) -> list[Row]:
    rows = []
    for kvm in (False, True):
        rss0 = _rss_kib()
        # memory just above the pages (the watermarks keep about 1% free), no swap device
        mem = sz.memory_pages * 103 // 100 + 1024
        k, p, _ = _populated(sz.memory_pages, kvm=kvm, memory=mem, swap=False)
        rss = (_rss_kib() - rss0) * 1024 / sz.memory_pages
        heap = k.heap_bytes() / sz.memory_pages
        target = 48 if kvm else 40  # issue 21's targets
        rows.append(
            Row(
                "memory",
                f"bytes per resident page, {'KVM guest (PTE + PGSTE)' if kvm else 'process'}",
                heap,
                "B",
                target=f"<= {target} B",
                met=heap <= target,
                note=f"RSS growth {rss:.0f} B/page (the whole kernel, its free frames included)",
            )
        )
        del k, p
    return rows


# -- python overhead, faults -------------------------------------------------------------------


def suite_python(sz: Sizes) -> list[Row]:
    n = sz.batch_accesses
    pages = max(1024, n // 16)

    def kernel() -> tuple[reclaim.Process, int]:
        k = reclaim.Kernel(profile="6.12", memory=2 * pages * PAGE, swap=0)
        k.mute("mm:handle_mm_fault")
        p = k.spawn("bench")
        return p, p.mmap(pages * PAGE)

    p, a = kernel()
    ref = p.run_workload("zipf:0.9", start=a, length=pages * PAGE, count=n, arrays=True)
    addrs, writes = ref.addrs, ref.writes
    assert addrs is not None and writes is not None

    def rust() -> float:
        p, a = kernel()
        t = time.perf_counter()
        p.run_workload("zipf:0.9", start=a, length=pages * PAGE, count=n)
        return time.perf_counter() - t

    def numpy_batch() -> float:
        p, _ = kernel()  # the same address space layout: the same addresses
        t = time.perf_counter()
        p.access_batch(addrs, writes)
        return time.perf_counter() - t

    r, b = _median(rust, sz.repeat), _median(numpy_batch, sz.repeat)
    return [
        Row(
            "python",
            f"access_batch (numpy) vs run_workload (Rust), {n:,} accesses",
            n / b,
            "acc/s",
            "run_workload",
            n / r,
            b / r,
            "<= 1.2x time",
            b / r <= 1.2,
            "ratio is time(numpy batch) / time(generated in Rust)",
        )
    ]


def suite_faults(sz: Sizes) -> list[Row]:
    n = sz.memory_pages

    def first_touch() -> float:
        k = reclaim.Kernel(profile="6.12", memory=2 * n * PAGE, swap=0)
        k.mute("mm:handle_mm_fault")
        p = k.spawn("bench")
        a = p.mmap(n * PAGE)
        addrs = a + np.arange(n, dtype=np.uint64) * PAGE
        t = time.perf_counter()
        p.access_batch(addrs, np.ones(n, dtype=bool))
        return n / (time.perf_counter() - t)

    def swap_in() -> float:
        k, p, a = _populated(n, kvm=False)
        # one page read per fault: without it, swap readahead makes 7 of 8 sequential faults
        # swap-cache hits (minor)
        k.page_cluster = 0
        p.madvise(a, n * PAGE, "pageout")
        addrs = a + np.arange(n, dtype=np.uint64) * PAGE
        t = time.perf_counter()
        r = p.access_batch(addrs)
        assert r.counts["major"] == n
        return n / (time.perf_counter() - t)

    rows = []
    for what, ours, major in (
        ("first touch (do_anonymous_page)", first_touch, False),
        ("swap-in (do_swap_page, major)", swap_in, True),
    ):
        value = _median(ours, sz.repeat)
        host: float | None = None
        note = ""
        if major and not _swap_active():
            note = "host skipped: no active swap (swapon a swap file to compare)"
        else:
            try:
                host = _median(partial(host_faults_per_second, n, swap_in=major), sz.repeat)
                note = "host: loads after MADV_PAGEOUT" if major else "host: stores to new pages"
            except OSError as e:  # MADV_PAGEOUT needs Linux 5.4
                note = f"host skipped: {e}"
        rows.append(
            Row(
                "faults",
                f"{what} through access_batch",
                value,
                "faults/s",
                "host kernel" if host else "",
                host,
                value / host if host else None,
                note=note,
            )
        )
    return rows


def suite_explore(sz: Sizes) -> list[Row]:
    rs = [
        reclaim.explore("4.17", depth=sz.explore_depth, walks=0, progress=False)
        for _ in range(sz.repeat)
    ]
    r = rs[len(rs) // 2]
    return [
        Row(
            "explore",
            f"explorer, 4.17 switchover scenario, depth {sz.explore_depth}, all predicates",
            statistics.median(x.states_per_second for x in rs),
            "states/s",
            note=f"{r.states:,} distinct states, {r.transitions:,} steps, "
            f"{statistics.median(x.steps_per_second for x in rs):,.0f} steps/s",
        )
    ]


SUITES = ("replay", "reclaim", "memory", "python", "faults", "explore")


def run(only: Sequence[str] = SUITES, *, quick: bool = False, progress: bool = True) -> list[Row]:
    """Run the suites named in ``only``; returns the table's rows."""
    unknown = [s for s in only if s not in SUITES]
    if unknown:
        raise reclaim.ArgumentError(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    sz = QUICK if quick else FULL
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="reclaim-bench-") as tmp:
        for s in only:
            if progress:
                print(f"reclaim bench: {s} ...", file=sys.stderr, flush=True)
            if s == "replay":
                rows += suite_replay(sz, Path(tmp))
            else:
                rows += {
                    "reclaim": suite_reclaim,
                    "memory": suite_memory,
                    "python": suite_python,
                    "faults": suite_faults,
                    "explore": suite_explore,
                }[s](sz)
    return rows


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table (the one ``reclaim bench`` prints)."""
    head = ("suite", "measurement", "value", "unit", "peer", "peer value", "ratio", "target", "met")
    body = [
        (
            r.suite,
            r.what,
            _num(r.value),
            r.unit,
            r.peer,
            _num(r.peer_value),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *body)
    ]
    lines.insert(1, "-" * len(lines[0]))
    notes = [f"  {r.suite}/{r.what}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "reclaim": reclaim.__version__,
    }


__all__ = [
    "FULL",
    "QUICK",
    "SUITES",
    "Row",
    "Sizes",
    "format_table",
    "host_ns_per_page",
    "machine",
    "run",
]
