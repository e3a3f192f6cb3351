"""Memory-access traces: read, write and generate them, and replay them against a kernel.

Five formats (docs/trace-format.md): ``"binary"`` (reclaim's own: a header, then 8-byte
records of a page number and a store bit, optionally with a timestamp), ``"csv"``
(``addr,write`` or ``page,write``), ``"oracle"`` (libCacheSim's oracleGeneral: 24-byte
records, every request a read; ``"oracleGeneral"``, libCacheSim's name, is accepted too), and
two that are only read: ``"damon"`` (DAMON's records as ``damo record`` writes them, each
region's sampled accesses spread over its pages) and ``"perf"`` (``perf mem`` samples as
``perf script`` or ``perf mem report -D`` print them). ``format="auto"`` tells them apart by
their magic, the file name (``.csv``) and what the text holds. Any of them may be
zstd-compressed (``.zst``, as libCacheSim's public traces ship): the reader decompresses as it
goes.

::

    import reclaim
    reclaim.trace.write_zipf("t.bin", requests=1_000_000, pages=100_000, s=0.9, format="binary")
    r = reclaim.replay("t.bin", memory="25%")      # host memory: 25% of the trace's pages
    print(r.miss_ratio, r.major_faults, r.requests_per_second)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reclaim._reclaim import (
    Profile,
    ReplayResult,
    ReplayRun,
    trace_read,
    trace_write,
    trace_write_zipf,
)
from reclaim.exceptions import ArgumentError

#: The trace formats that are read.
FORMATS = ("binary", "csv", "oracle", "damon", "perf")
#: The trace formats that are written.
WRITE_FORMATS = ("binary", "csv", "oracle")

#: Requests replayed between two progress reports (and chances for Ctrl-C).
_SLICE = 1 << 18

_Path = str | os.PathLike[str]


@dataclass(frozen=True)
class Trace:
    """Requests of a trace as columns: ``keys`` (page numbers; the page of an address for a CSV
    ``addr`` column; object ids for oracleGeneral), ``writes`` and ``times`` (the format's
    timestamps, 0 where it has none)."""

    format: str
    keys: npt.NDArray[np.uint64]
    writes: npt.NDArray[np.bool_]
    times: npt.NDArray[np.uint64]

    def __len__(self) -> int:
        return len(self.keys)


def read(path: _Path, *, format: str = "auto", limit: int | None = None) -> Trace:
    """The first ``limit`` requests (default: all) of the trace at ``path``."""
    fmt, keys, writes, times = trace_read(path, format=format, limit=limit)
    return Trace(fmt, keys, writes, times)


def write(
    path: _Path,
    keys: npt.NDArray[np.uint64],
    writes: npt.NDArray[np.bool_] | None = None,
    times: npt.NDArray[np.uint64] | None = None,
    *,
    format: str = "binary",
) -> None:
    """Write requests (numpy columns of one length) to ``path``. ``keys`` are page numbers
    (object ids for oracle), ``times`` in the format's unit (binary: ns, non-decreasing;
    oracle: seconds). oracleGeneral has no stores: ``writes`` must be all false there."""
    trace_write(path, keys, writes, times, format=format)


def write_zipf(
    path: _Path,
    requests: int,
    pages: int,
    *,
    s: float = 1.0,
    seed: int = 0,
    write_fraction: float = 0.0,
    format: str = "oracle",
) -> None:
    """Write a trace of ``requests`` page numbers drawn from a Zipf distribution of exponent
    ``s`` over ``pages`` pages (page k has weight 1/(k+1)^s, page 0 the hottest), each a store
    with probability ``write_fraction`` (not in oracle format); seeded, generated in Rust."""
    trace_write_zipf(
        path, requests, pages, s=s, seed=seed, write_fraction=write_fraction, format=format
    )


#: A zone of :func:`replay`'s ``guest_zones``: (managed, held, min, low, high, lowmem_reserve).
ZoneSpec = tuple[int, int, int, int, int, int]
#: :func:`replay`'s ``guest_zones``: (DMA, DMA32, DMA's page types or None, kernel_alloc_every).
GuestZones = tuple[ZoneSpec, ZoneSpec, tuple[int, int, int, int] | None, int]
#: A guest clock: nanoseconds per (request, minor fault, major fault, page written to swap,
#: page scanned by reclaim), the guest's speed (``reclaim.crosscheck.replay.fit_guest_clock``).
GuestClock = tuple[float, float, float, float, float]


def replay(
    path: _Path,
    *,
    format: str = "auto",
    profile: str | Profile = "6.12",
    arch: str = "s390x",
    memory: float | int | str = 0.25,
    swap: int | str | None = None,
    kvm: bool = False,
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], object] | None = None,
    as_recorded: bool = False,
    shmem: bool = False,
    guest: tuple[int, int, int, int] | None = None,
    guest_tmpfs: tuple[int, int] | None = None,
    page_cluster: int | None = None,
    one_cpu: bool = False,
    swap_io: str = "synchronous",
    x86_tlb: str | None = None,
    memcg_stats: str = "live",
    guest_zones: GuestZones | None = None,
    guest_clock: GuestClock | None = None,
    sched_tick: bool = False,
    pgtable_pages: bool = False,
    swap_cache_nodes: bool = False,
    pcp_lists: bool = False,
    direct_reclaim_ns: float = 0.0,
    observe: tuple[int, Callable[[ReplayRun], object]] | None = None,
) -> ReplayResult:
    """Replay the trace at ``path`` against a kernel of ``profile``.

    A process maps one anonymous region big enough for the trace's distinct pages; every
    request is one access to its page (the first access to a page is a store: it creates the
    data, as a cache fill does). ``memory`` is the host memory: a fraction of the distinct
    pages (``0.25`` or ``"25%"``) or a size (``"64MiB"``); smaller than the trace, it makes
    reclaim run. ``swap`` defaults to room for every page. ``limit`` replays only the first
    requests. ``progress(done, total)`` is called between slices of requests.
    ``as_recorded=True`` offers every access as the trace has it (a first load maps the zero
    page, as the kernel does); ``shmem=True`` maps shmem instead of private anonymous memory;
    ``guest=(held, min, low, high)`` reserves ``held`` pages of ``memory`` for others and sets
    the zone watermarks, as a Linux guest reported them (reclaim.crosscheck.replay);
    ``guest_tmpfs=(pages, active)`` fills a tmpfs file of ``pages`` pages (the guest's
    initramfs) before the trace, unmapped shmem pages on the LRU, ``active`` of them on the
    active list, which reclaim may swap out (``vmstat["nr_shmem"]`` counts those left);
    ``page_cluster`` is ``vm.page-cluster`` (swap readahead of up to ``2**page_cluster``
    pages, 0 to 31; default the kernel's: 3, or 2 below 16 MiB of memory);
    ``one_cpu=True`` gives the kernel one CPU, as the oracle's ``-smp 1`` guests have: a woken
    kswapd runs only while the process waits for a swap read, and the process reclaims
    directly (below the min watermark) when it outruns kswapd. By default kswapd runs, as if on
    another CPU, as soon as the access that woke it returns. ``swap_io`` is how the swap
    device completes writes: ``"synchronous"`` (inside the submit, as zram's do: a written
    page is freed in the same reclaim pass) or ``"virtio-blk"`` (queued, completed in order
    when the CPU waits: a written page stays in the swap cache under writeback, is activated
    if reclaim meets it again (with MGLRU: as the profile's release does, 6.12.107 keeps it in
    its generation), and is rotated to the inactive tail, or MGLRU's oldest generation, when
    the write completes), as the oracle's guests' swap disk. ``x86_tlb`` (arch x86_64 only)
    puts a TLB of that geometry in front of the page tables: ``"qemu-tcg-7.2"`` is QEMU 7.2
    TCG's softmmu TLB, as the oracle's guests have it; an access through a cached translation
    does not set the accessed bit, which x86 clears without a flush. Default ``None``: every
    access sets it. ``memcg_stats`` is how reclaim reads the refault counts it compares
    (``prepare_scan_control``): ``"live"`` (the default) or ``"rstat-6.12"``, the root memory
    cgroup's statistics of a 6.12 kernel with memory cgroups built in (as the oracle's
    guests), flushed every 2 s of the model's clock, so a refault activation lets reclaim
    deactivate only after the next flush; ``"rstat-6.12-lru"`` keeps the LRU sizes that 6.12
    reads from the same statistics flushed too (``inactive_is_low``, the workingset size of
    ``workingset_test_recent``), where ``"rstat-6.12"`` reads them live.
    ``guest_zones=(dma, dma32, types, kernel_alloc_every)`` splits the memory into the x86_64
    guest's zones DMA and DMA32 (each ``(managed, held, min, low, high, lowmem_reserve)``)
    instead of ``guest``'s one zone, with the DMA zone's pageblocks by ``types`` = ``(unmovable
    blocks, reclaimable blocks, unmovable free pages, reclaimable free pages)`` of
    ``/proc/pagetypeinfo`` (None: its partial pageblock unmovable), and a non-movable allocation
    of the guest's kernel every ``kernel_alloc_every`` pages written to swap (0: none): the
    zonelist fallback, pageblock steals and watermark boosting of mm/page_alloc.c and the
    boosted kswapd of mm/vmscan.c (6.12.117); ``vmstat`` then has ``pgskip_dma32``,
    ``compact_daemon_wake`` and ``model_watermark_boosts``.
    ``guest_clock=(request, minor_fault, major_fault, swap_write, page_scanned)`` gives the
    model a guest's time, an input and not a model constant: nanoseconds per request and per
    event, the speed of the guest the trace is compared with (the oracle fits it to its kernel
    runs' durations); with ``memcg_stats="rstat-6.12"`` the flush then runs every 2 s of that
    time instead of the model's cost clock. ``sched_tick=True`` (with ``one_cpu`` and a
    ``guest_clock``) also gives a woken kswapd the CPU when 6.12's scheduler would switch to it
    (the tick after the process's slice, kernel/sched/fair.c), not only while the process
    sleeps on a swap read; the same for a watermark boost's wake. ``pgtable_pages=True`` takes
    each page table the faults make out of the memory, as the kernel's ``__pte_alloc`` →
    ``pte_alloc_one`` does (a page per 2 MiB of the mapping touched on x86_64, per 1 MiB on s390x,
    whose ``page_table_alloc`` takes a whole page for a 256-entry table in 6.12); by default
    the model keeps its page tables apart from the frames. ``swap_cache_nodes=True`` takes the
    swap cache's xarray nodes out of the memory, as the kernel's swap cache does: a node for
    every 64 slots of a swap address space that hold a page or a workingset shadow, and their
    parents, objects of the ``radix_tree_node`` slab (14 in a slab of two pages), whose pages
    come from the zone (``ReplayResult.swap_cache_nodes`` and ``swap_cache_slab_pages`` tell
    how many at the end); by default the swap cache is apart from the frames.
    ``pcp_lists=True`` gives each zone (the ``guest_zones``, else the one zone) the per-cpu
    page lists of the guest's one CPU (mm/page_alloc.c 6.12.117): order-0 pages leave a
    zone's free list and come back to it in batches, and the pages on the lists are not in
    ``NR_FREE_PAGES``, which the watermark checks read; ``ReplayResult.pcp_pages_mean`` is
    then the mean of the pages on them after each request. By default a freed page goes
    straight back to its zone. ``direct_reclaim_ns`` (with a ``guest_clock``) is the guest's
    time in each direct reclaim (``try_to_free_pages``) beyond its pages scanned, which one
    that scans nothing takes too (the oracle measures it in its guests); 0 by default.

    ``observe=(n, f)`` calls ``f(run)`` with the :class:`ReplayRun` before the first request,
    after every ``n`` requests and after the last (e.g. ``run.lru_gen()``, MGLRU's generations
    at those points); it changes nothing of the replay.

    The result counts hits (the page was resident), minor faults (first touch, refault from
    the swap cache) and major faults (read back from swap); ``miss_ratio`` is (minor + major)
    / requests. The run is deterministic: the same trace and seed give the same event log.
    """
    run = ReplayRun(
        path,
        format=format,
        profile=profile if isinstance(profile, str) else profile.name,
        arch=arch,
        memory=memory,
        swap=swap,
        kvm=kvm,
        limit=limit,
        seed=seed,
        as_recorded=as_recorded,
        shmem=shmem,
        guest=guest,
        guest_tmpfs=guest_tmpfs,
        page_cluster=page_cluster,
        one_cpu=one_cpu,
        swap_io=swap_io,
        x86_tlb=x86_tlb,
        memcg_stats=memcg_stats,
        guest_zones=guest_zones,
        guest_clock=guest_clock,
        sched_tick=sched_tick,
        pgtable_pages=pgtable_pages,
        swap_cache_nodes=swap_cache_nodes,
        pcp_lists=pcp_lists,
        direct_reclaim_ns=direct_reclaim_ns,
    )
    if observe is not None:
        every, f = observe
        if every < 1:
            raise ArgumentError(f"observe's interval must be at least 1 request, not {every}")
        f(run)
        while True:
            done = run.advance(every)
            f(run)
            if progress is not None:
                progress(*run.progress)
            if done:
                break
        return run.result()
    while not run.advance(_SLICE):
        if progress is not None:
            progress(*run.progress)
    return run.result()


__all__ = [
    "FORMATS",
    "WRITE_FORMATS",
    "ReplayResult",
    "ReplayRun",
    "Trace",
    "read",
    "replay",
    "write",
    "write_zipf",
]
