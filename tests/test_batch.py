"""Many accesses in one call: Process.access_batch (numpy arrays in, outcome arrays out, run in
Rust with the GIL released) and Process.run_workload (accesses generated in Rust)."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
import reclaim
from conftest import small_kernel

HIT, MINOR, MAJOR, USERFAULT, SIGSEGV = range(5)


def test_outcome_names_are_the_codes() -> None:
    assert reclaim.OUTCOMES == ("hit", "minor", "major", "userfault", "sigsegv", "sigbus", "oom")


def accesses(base: int, n: int, pages: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n accesses over `pages` pages from base (70% stores), one in 400 outside any VMA."""
    rng = np.random.default_rng(seed)
    addrs = base + rng.integers(0, pages, n, dtype=np.uint64) * 4096 + rng.integers(0, 4096, n)
    addrs = addrs.astype(np.uint64)
    addrs[::400] = 0x1000
    return addrs, rng.random(n) < 0.7, rng.integers(1, 1 << 40, n, dtype=np.uint64)


@pytest.mark.parametrize("kvm", [False, True])
def test_a_batch_is_the_same_accesses_one_by_one(profile: str, kvm: bool) -> None:
    """Same outcomes, values, event log and vmstat as Process.read/write, access by access;
    hit/minor/major as pagemap and pgmajfault tell them apart."""
    ka, kb = small_kernel(profile), small_kernel(profile)
    pa, pb = ka.spawn("a", kvm=kvm), kb.spawn("b", kvm=kvm)
    base = pa.mmap("32MiB")  # 8192 pages in 16 MiB of memory: reclaim and swap-ins
    assert pb.mmap("32MiB") == base
    addrs, writes, values = accesses(base, 12_000, 8192, seed=1)
    r = pa.access_batch(addrs, writes, values=values)
    assert r.outcomes is not None and r.values is not None
    expected = []
    for addr, w, v in zip(addrs.tolist(), writes.tolist(), values.tolist(), strict=True):
        resident = pb.page_state(addr) == "present"
        majflt = kb.vmstat()["pgmajfault"]
        a = pb.write(addr, v) if w else pb.read(addr)
        if a.kind == "sigsegv":
            expected.append((SIGSEGV, 0))
            continue
        assert a.completed and a.value is not None
        if kb.vmstat()["pgmajfault"] > majflt:
            expected.append((MAJOR, a.value))
        else:
            expected.append((HIT if resident else MINOR, a.value))
    assert list(zip(r.outcomes.tolist(), r.values.tolist(), strict=True)) == expected
    assert ka.log_hash() == kb.log_hash() and ka.vmstat() == kb.vmstat()
    counts = np.bincount(r.outcomes, minlength=len(reclaim.OUTCOMES))
    assert r.counts == dict(zip(reclaim.OUTCOMES, counts.tolist(), strict=True))
    assert r.requests == len(r) == len(addrs) and r.stopped_at is None and r.event is None
    assert counts[HIT] and counts[MINOR] and counts[MAJOR] and counts[SIGSEGV] == 30
    assert r.miss_ratio == pytest.approx((counts[MINOR] + counts[MAJOR]) / len(addrs))
    assert r.pgfault == kb.vmstat()["pgfault"] >= counts[MINOR] + counts[MAJOR]
    ka.check()


def test_a_read_of_a_written_page_returns_the_page_tag_after_swap() -> None:
    k = small_kernel("6.12", memory="1MiB", swap="16MiB")
    k.page_cluster = 0  # no swap readahead: every read of a swapped page is a major fault
    p = k.spawn("tags")
    base = p.mmap("4MiB")
    addrs = base + np.arange(1024, dtype=np.uint64) * 4096 + 8
    stored = p.access_batch(addrs, np.ones(1024, bool))  # values: the page's address
    read = p.access_batch(addrs)
    assert stored.values is not None and read.values is not None and read.outcomes is not None
    assert (stored.values == addrs - 8).all() and (read.values == addrs - 8).all()
    assert read.counts["major"] > 500 and (read.outcomes != MINOR).all()


def test_a_userfault_stops_the_batch_and_parks_the_thread() -> None:
    k = small_kernel()
    p = k.spawn("qemu")
    base = p.mmap("64KiB")
    p.userfaultfd().register(base + 8 * 4096, "32KiB", missing=True)
    addrs = base + np.arange(16, dtype=np.uint64) * 4096
    r = p.access_batch(addrs, np.ones(16, bool), tid=3)
    assert r.stopped_at == 8 and r.requests == 9 and r.outcomes is not None
    assert r.outcomes.tolist() == [MINOR] * 8 + [USERFAULT]
    assert r.event is not None and r.event.event == "PAGEFAULT" and r.event.address == addrs[8]
    assert p.is_blocked(3) and not p.is_blocked(0)
    before = k.log_hash()
    with pytest.raises(reclaim.ThreadBlockedError):
        p.access_batch(addrs, tid=3)
    assert k.log_hash() == before
    assert p.access_batch(addrs[:8], tid=0).counts["hit"] == 8  # other threads go on


def test_bad_arrays_are_argument_errors_that_change_nothing() -> None:
    k = small_kernel()
    p = k.spawn("p")
    base = p.mmap("64KiB")
    addrs = base + np.arange(8, dtype=np.uint64) * 4096
    state = (k.log_hash(), k.vmstat())
    bad: list[tuple[tuple[object, ...], dict[str, object], str]] = [
        ((addrs.tolist(),), {}, "not a list: convert it with np.asarray(addrs, dtype=np.uint64)"),
        ((addrs.astype(np.int64),), {}, "not a 1-D array of int64"),
        ((addrs.reshape(2, 4),), {}, "not a 2-D array of uint64"),
        ((np.repeat(addrs, 2)[::2],), {}, "addrs must be contiguous in memory"),
        ((addrs, np.ones(7, bool)), {}, "writes has 7 elements but addrs has 8"),
        ((addrs, np.ones(8, np.uint8)), {}, "writes must be a 1-D numpy array of bool_"),
        ((addrs,), {"values": np.ones(9, np.uint64)}, "values has 9 elements but addrs has 8"),
    ]
    bad.append(((addrs,), {"tid": 70_000}, "thread id 70000 is beyond the model's 0..=65535"))
    for args, kw, msg in bad:
        with pytest.raises(reclaim.ArgumentError, match=re.escape(msg)):
            p.access_batch(*args, **kw)  # type: ignore[arg-type]
    assert (k.log_hash(), k.vmstat()) == state
    assert p.access_batch(np.empty(0, np.uint64)).requests == 0


def test_a_long_batch_lets_other_python_threads_run() -> None:
    """The batch runs with the GIL released: a Python thread keeps running meanwhile."""
    k = reclaim.Kernel(profile="6.12", memory="32MiB", swap="128MiB")
    p = k.spawn("big")
    base = p.mmap("64MiB")
    n = 1_000_000
    addrs = (base + (np.arange(n, dtype=np.uint64) * np.uint64(7919) % 16384) * 4096).astype(
        np.uint64
    )
    span: dict[str, float] = {}

    def batch() -> None:
        span["start"] = time.perf_counter()
        span["requests"] = p.access_batch(addrs, np.ones(n, bool)).requests
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=batch)
    samples = []
    worker.start()
    while worker.is_alive():
        samples.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    assert span["requests"] == n
    length = span["end"] - span["start"]
    assert length > 0.2, f"the batch is too short to tell ({length:.3f}s)"
    middle = [t for t in samples if span["start"] + length / 4 < t < span["end"] - length / 4]
    # a thread holding the GIL for the whole batch would leave no sample in its middle half
    assert len(middle) > 20, (len(middle), length)


def test_run_workload_is_seeded_counted_and_skewed() -> None:
    def run(seed: int, arrays: bool = False) -> tuple[reclaim.Kernel, reclaim.BatchResult]:
        k = small_kernel("6.12", memory="8MiB", swap="32MiB")
        p = k.spawn("w")
        base = p.mmap("16MiB")
        p.run_workload("sequential", start=base, length="16MiB", count=4096, write_fraction=1.0)
        r = p.run_workload(
            "zipf:0.9", start=base, length="16MiB", count=50_000, seed=seed, arrays=arrays
        )
        return k, r

    (ka, a), (kb, b), (kc, _) = run(5), run(5, arrays=True), run(6)
    assert a.requests == sum(a.counts.values()) == 50_000
    assert a.counts == b.counts and ka.log_hash() == kb.log_hash() != kc.log_hash()
    assert a.outcomes is None and a.addrs is None and a.writes is None
    assert b.addrs is not None and b.writes is not None and b.outcomes is not None
    assert len(b.addrs) == len(b.writes) == len(b.outcomes) == 50_000
    pages = (b.addrs - b.addrs.min()) // 4096
    hot = np.bincount(pages.astype(np.int64))
    assert hot[0] > 10 * hot[1000:].mean()  # page 0 is the hottest
    assert 0.27 < b.writes.mean() < 0.33  # write_fraction 0.3
    assert a.counts["major"] > 0 and a.counts["hit"] > a.counts["major"]


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"pattern": "gaussian"}, "unknown access pattern"),
        ({"length": 5000}, "not a multiple of the page size"),
        ({"write_fraction": 1.5}, "write_fraction must be in"),
        ({"start": 0x1001}, "must be page-aligned"),
    ],
)
def test_run_workload_refuses_bad_arguments(kw: dict[str, object], msg: str) -> None:
    k = small_kernel()
    p = k.spawn("w")
    base = p.mmap("64KiB")
    args: dict[str, object] = {"start": base, "length": "64KiB", "count": 10, **kw}
    with pytest.raises(reclaim.ArgumentError, match=msg):
        p.run_workload(**args)  # type: ignore[arg-type]
    assert k.vmstat()["pgfault"] == 0
