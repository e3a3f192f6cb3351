"""The postcopy migration study: the seed bug from mechanisms.

A KVM guest (vCPUs allocating, freeing, reading and writing pages, with ESSA hints) migrates
from a source host to a destination host whose memory is smaller than the guest plus other
load, so kswapd and direct reclaim run during postcopy. QEMU (3.0 or 5.2 logic) sends pages in
precopy, switches to postcopy (storage attributes, discard, userfaultfd registration), and serves
page requests. The outcome follows from the kernel profile's mechanisms.
"""

from __future__ import annotations

from collections.abc import Callable

from reclaim._reclaim import PostcopyResult, PostcopyRun
from reclaim.units import rate, size

#: Progress callback: (pages sent, pages to send at least, simulated seconds).
Progress = Callable[[int, int, float], None]


def prepare(
    profile: str = "4.18",
    *,
    qemu: str = "3.0",
    guest_memory: int | str = "256MiB",
    vcpus: int = 2,
    workload: str = "zipf:0.9",
    used_fraction: float = 0.6,
    write_fraction: float = 0.3,
    turnover: float = 0.05,
    free_policy: str = "recent",
    cmma: bool = True,
    nodat: bool = False,
    diag10: float = 0.0,
    op_interval_ns: int = 5000,
    source_memory: int | str | None = None,
    source_swap: int | str = "64MiB",
    dest_memory: int | str | None = None,
    dest_swap: int | str | None = None,
    other_load: int | str | None = None,
    load_interval_ns: int = 20000,
    bandwidth: int | str = "1Gbit",
    latency_ns: int = 100_000,
    precopy_iterations: int = 1,
    seed: int = 0,
    max_time: float = 600.0,
    trace: str = "auto",
) -> PostcopyRun:
    """Build a postcopy study and start its migration (see :func:`postcopy`)."""
    g = size(guest_memory, "guest_memory")
    src = (
        size(source_memory, "source_memory")
        if source_memory is not None
        else g + g // 4 + (64 << 20)
    )
    dst = size(dest_memory, "dest_memory") if dest_memory is not None else (g // 8 * 7) & ~4095
    load = size(other_load, "other_load") if other_load is not None else (g // 8) & ~4095
    return PostcopyRun(
        profile=profile,
        qemu=qemu,
        guest_memory=g,
        vcpus=vcpus,
        workload=workload,
        used_fraction=used_fraction,
        write_fraction=write_fraction,
        turnover=turnover,
        free_policy=free_policy,
        cmma=cmma,
        nodat=nodat,
        diag10=diag10,
        op_interval_ns=op_interval_ns,
        source_memory=src,
        source_swap=size(source_swap, "source_swap"),
        dest_memory=dst,
        dest_swap=size(dest_swap, "dest_swap") if dest_swap is not None else max(512 << 20, g // 2),
        other_load=load,
        load_interval_ns=load_interval_ns,
        bandwidth=rate(bandwidth),
        latency_ns=latency_ns,
        precopy_iterations=precopy_iterations,
        seed=seed,
        max_time_ns=int(max_time * 1e9),
        trace=trace,
    )


def postcopy(
    profile: str = "4.18", *, progress: Progress | None = None, **params: object
) -> PostcopyResult:
    """Run the postcopy study and return its result.

    Parameters (all keyword): qemu ("3.0": the fault thread requests every faulting page and the
    source drops requests for pages it already sent; "5.2": requests for received pages are not
    even sent), guest_memory, vcpus, workload ("uniform", "zipf[:s]", "sequential",
    "phased[:fraction:len]" over the pages the guest uses), used_fraction, write_fraction,
    turnover (fraction of guest operations that allocate a page; as many free one),
    free_policy ("recent[:lifetime]": every allocation is freed `lifetime` guest operations
    later, still warm; "random": any used page, often cold or swapped out on the host, which
    exposes the CBRL path: see FINDINGS.md), cmma (False: the guest gives no ESSA hints), nodat,
    diag10 (fraction of frees the guest also releases with DIAG 0x10), op_interval_ns,
    source_memory, source_swap, dest_memory, dest_swap, other_load, load_interval_ns,
    bandwidth (bytes/s or "1Gbit", "10Gbit/s"), latency_ns, precopy_iterations, seed,
    max_time (simulated seconds), trace ("full"; "chain": no per-page events; "rare": only
    rare events such as drops, zaps and userfaults; "auto": full up to 1 GiB, chain up to
    16 GiB, rare above).

    Sizes are bytes or strings like "256MiB". Unset host sizes scale with the guest: the source
    gets the guest plus 25% and 64 MiB; the destination 7/8 of the guest, and other load of 1/8
    of it, so it must reclaim, with swap of half the guest (at least 512 MiB) to reclaim to.
    `progress` is called as the run advances.
    """
    run = prepare(profile, **params)  # type: ignore[arg-type]
    step = 50_000_000  # 50 ms of simulated time per slice
    t = 0
    while True:
        t += step
        done = run.advance(t)
        if progress is not None:
            sent, total = run.progress
            progress(sent, total, run.now / 1e9)
        if done:
            break
    return run.result()


__all__ = ["PostcopyResult", "PostcopyRun", "postcopy", "prepare"]
