"""The postcopy migration study: the seed bug from mechanisms.

A KVM guest (vCPUs allocating, freeing, reading and writing pages, with ESSA hints) migrates
from a source host to a destination host whose memory is smaller than the guest plus other
load, so kswapd and direct reclaim run during postcopy. QEMU (3.0 or 5.2 logic) sends pages in
precopy, switches to postcopy (storage attributes, discard, userfaultfd registration), and serves
page requests. The outcome follows from the kernel profile's mechanisms.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable

from reclaim._reclaim import PostcopyResult, PostcopyRun, Profile
from reclaim.exceptions import ArgumentError
from reclaim.units import duration, rate, size

#: The longest max_time, in seconds of simulated time (the engine counts nanoseconds in 64 bits).
MAX_TIME = (2**64 - 1) // 10**9

#: Progress callback: (pages sent, pages to send at least, simulated seconds).
Progress = Callable[[int, int, float], None]


def _renamed(new: object, old: object, name: str, old_name: str) -> object:
    """The value of a parameter given by its name or by its older name, not both."""
    if old is None:
        return new
    if new is not None:
        raise ArgumentError(f"give {name} or its older name {old_name}, not both", 22, "EINVAL")
    return old


def prepare(
    profile: str | Profile = "4.18",
    *,
    source_profile: str | Profile | None = None,
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
    op_interval: int | str | None = None,
    source_memory: int | str | None = None,
    source_swap: int | str = "64MiB",
    host_memory: int | str | None = None,
    swap: int | str | None = None,
    other_load: int | str | None = None,
    load_interval: int | str | None = None,
    bandwidth: int | str = "1Gbit",
    latency: int | str | None = None,
    precopy_iterations: int = 1,
    seed: int = 0,
    max_time: float = 600.0,
    trace: str = "auto",
    dest_memory: int | str | None = None,
    dest_swap: int | str | None = None,
    op_interval_ns: int | None = None,
    load_interval_ns: int | None = None,
    latency_ns: int | None = None,
) -> PostcopyRun:
    """Build a postcopy study and start its migration (see :func:`postcopy`)."""
    if isinstance(max_time, bool) or not isinstance(max_time, int | float):
        raise TypeError(f"max_time must be a number of seconds, not {type(max_time).__name__}")
    if not 0 <= max_time <= MAX_TIME:  # NaN too
        raise ArgumentError(f"max_time must be from 0 to {MAX_TIME:.3g} seconds, got {max_time}")
    # a variant (Profile.derive) is registered under its name
    profile = profile if isinstance(profile, str) else profile.name
    if source_profile is not None and not isinstance(source_profile, str):
        source_profile = source_profile.name
    host_memory = _renamed(host_memory, dest_memory, "host_memory", "dest_memory")  # type: ignore[assignment]
    swap = _renamed(swap, dest_swap, "swap", "dest_swap")  # type: ignore[assignment]
    op = _renamed(op_interval, op_interval_ns, "op_interval", "op_interval_ns")
    load_every = _renamed(load_interval, load_interval_ns, "load_interval", "load_interval_ns")
    lat = _renamed(latency, latency_ns, "latency", "latency_ns")
    g = size(guest_memory, "guest_memory")
    src = (
        size(source_memory, "source_memory")
        if source_memory is not None
        else g + g // 4 + (64 << 20)
    )
    dst = size(host_memory, "host_memory") if host_memory is not None else (g // 8 * 7) & ~4095
    load = size(other_load, "other_load") if other_load is not None else (g // 8) & ~4095
    return PostcopyRun(
        profile=profile,
        source_profile=source_profile if source_profile is not None else profile,
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
        op_interval_ns=duration(op, "op_interval") if op is not None else 5_000,  # type: ignore[arg-type]
        source_memory=src,
        source_swap=size(source_swap, "source_swap"),
        dest_memory=dst,
        dest_swap=size(swap, "swap") if swap is not None else max(512 << 20, g // 2),
        other_load=load,
        load_interval_ns=(
            duration(load_every, "load_interval") if load_every is not None else 20_000  # type: ignore[arg-type]
        ),
        bandwidth=rate(bandwidth),
        latency_ns=duration(lat, "latency") if lat is not None else 100_000,  # type: ignore[arg-type]
        precopy_iterations=precopy_iterations,
        seed=seed,
        max_time_ns=min(int(max_time * 1e9), MAX_TIME * 10**9),
        trace=trace,
    )


#: The parameters of the postcopy study: those of :func:`prepare` (and of :func:`postcopy`),
#: the older names included.
PARAMETERS: tuple[str, ...] = tuple(inspect.signature(prepare).parameters)


def check_parameters(names: Iterable[str], where: str = "the postcopy study") -> None:
    """Refuse a name that is not a parameter of the study (ArgumentError naming it, the closest
    parameter and every valid one)."""
    unknown = [n for n in names if n not in PARAMETERS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], PARAMETERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        valid = ", ".join(PARAMETERS)
        raise ArgumentError(
            f"{where} has no parameter {unknown[0]!r}{hint}; its parameters: {valid}"
        )


def postcopy(
    profile: str | Profile = "4.18", *, progress: Progress | None = None, **params: object
) -> PostcopyResult:
    """Run the postcopy study and return its result.

    `profile` is the destination host's kernel, whose reclaim runs under userfaultfd during
    postcopy; `source_profile` the source host's (default: the same).

    Parameters (all keyword): source_profile, qemu ("3.0": the fault thread requests every
    faulting page and the source drops requests for pages it already sent; "5.2": requests for
    received pages are not even sent), guest_memory, vcpus, workload ("uniform", "zipf[:s]",
    "sequential", "phased[:fraction:len]" over the pages the guest uses), used_fraction,
    write_fraction, turnover (fraction of guest operations that allocate a page; as many free
    one), free_policy ("recent[:lifetime]": every allocation is freed `lifetime` guest
    operations later, still warm; "random": any used page, often cold or swapped out on the
    host, which exposes the CBRL path: see FINDINGS.md), cmma (False: the guest gives no ESSA
    hints), nodat (allocate with ESSA SET_STABLE_NODAT), diag10 (fraction of frees the guest
    also releases with DIAG 0x10), op_interval (between two operations of a vCPU; default
    5us), source_memory, source_swap, host_memory and swap (the destination host's memory and
    swap; older names dest_memory, dest_swap), other_load (bytes the destination's other
    process touches), load_interval (between two of its accesses; default 20us), bandwidth
    (bytes/s or "1Gbit", "10Gbit/s"), latency (of the link; default 100us), precopy_iterations,
    seed, max_time (simulated seconds), trace ("full"; "chain": no per-page events; "rare":
    only rare events such as drops, zaps and userfaults; "auto": full up to 1 GiB, chain up to
    16 GiB, rare above).

    Sizes are bytes or strings like "256MiB"; durations nanoseconds or strings like "100us",
    "5ms" (the older names op_interval_ns, load_interval_ns and latency_ns take nanoseconds).
    Unset host sizes scale with the guest: the source gets the guest plus 25% and 64 MiB; the
    destination 7/8 of the guest, and other load of 1/8 of it, so it must reclaim, with swap of
    half the guest (at least 512 MiB) to reclaim to. `progress` is called as the run advances.
    """
    check_parameters(params)
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


__all__ = [
    "PARAMETERS",
    "PostcopyResult",
    "PostcopyRun",
    "check_parameters",
    "postcopy",
    "prepare",
]
