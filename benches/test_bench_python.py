"""Python-side benchmarks (pytest-benchmark): what a user of the package pays per call, the
binding and numpy conversions included. Run by ``make bench`` (next to criterion's Rust
benches), not by the test run (``testpaths`` is ``tests/``; ``addopts`` disables benchmarks
and ``make bench`` enables them). Sizes are small: the whole file runs in about a minute.
``reclaim bench`` stays the side-by-side suite against libCacheSim and the host kernel.

BENCHMARKS.md says how to save a run as JSON and compare two runs (``--benchmark-compare``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import reclaim
from reclaim.studies.postcopy import postcopy
from reclaim.trace import replay, write_zipf

# ``benchmark`` is pytest-benchmark's fixture (BenchmarkFixture; the package ships no types)
Bench = Any

REPLAY_REQUESTS = 200_000
REPLAY_PAGES = 20_000


@pytest.fixture(scope="module")
def zipf_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zipf(1.0) oracleGeneral trace, 200k requests over 20k pages (the suite's trace shape,
    smaller)."""
    path = tmp_path_factory.mktemp("bench") / "zipf.oracleGeneral.bin"
    write_zipf(path, REPLAY_REQUESTS, REPLAY_PAGES, s=1.0, seed=1)
    return path


def test_replay_zipf_memory_25pct(benchmark: Bench, zipf_trace: Path) -> None:
    """`reclaim.replay` of the whole trace with memory 25% of its pages: reclaim on most misses."""
    r = benchmark.pedantic(replay, args=(zipf_trace,), rounds=5, iterations=1)
    assert r.requests == REPLAY_REQUESTS and 0.0 < r.miss_ratio < 1.0
    benchmark.extra_info["requests_per_round"] = REPLAY_REQUESTS


def _process(memory: str, region: str) -> tuple[reclaim.Kernel, reclaim.Process, int]:
    k = reclaim.Kernel("6.12", memory=memory, swap="256MiB")
    p = k.spawn("bench")
    return k, p, p.mmap(region)


def test_access_batch_zipf(benchmark: Bench) -> None:
    """`Process.access_batch` of 64Ki zipf(0.9) addresses over 16Ki pages in memory for half of
    them (hits, swap-outs and swap-ins; the criterion bench's shape, through numpy)."""
    _, p, base = _process("32MiB", "64MiB")
    rng = np.random.default_rng(1)
    ranks = np.minimum(rng.zipf(1.9, 1 << 16) - 1, (16 << 10) - 1).astype(np.uint64)
    addrs = (base + ranks * 4096).astype(np.uint64)
    writes = rng.random(1 << 16) < 0.3
    r = benchmark(p.access_batch, addrs, writes)
    assert r.requests == 1 << 16
    benchmark.extra_info["accesses_per_round"] = 1 << 16


def test_run_workload_zipf(benchmark: Bench) -> None:
    """`Process.run_workload`: the same number of accesses generated in Rust."""
    _, p, base = _process("32MiB", "64MiB")
    r = benchmark(p.run_workload, "zipf:0.9", start=base, length="64MiB", count=1 << 16)
    assert r.requests == 1 << 16


def test_postcopy_study_64mib(benchmark: Bench) -> None:
    """The postcopy study of a 64 MiB guest on 4.18, to completion."""
    r = benchmark.pedantic(
        postcopy, args=("4.18",), kwargs={"guest_memory": "64MiB", "seed": 1}, rounds=3
    )
    assert r.outcome == "completed"


def test_explore_4_17_depth_6(benchmark: Bench) -> None:
    """The explorer on the 4.17 switchover scenario to depth 6, every built-in predicate."""
    r = benchmark.pedantic(
        reclaim.explore, args=("4.17",), kwargs={"depth": 6, "progress": False}, rounds=3
    )
    assert r.states > 0


@pytest.fixture(scope="module")
def busy_kernel() -> reclaim.Kernel:
    """A kernel that reclaimed and swapped: 8Ki pages touched in 16 MiB of memory."""
    k, p, base = _process("16MiB", "32MiB")
    p.run_workload("zipf:0.9", start=base, length="32MiB", count=50_000)
    return k


def test_snapshot_save(benchmark: Bench, busy_kernel: reclaim.Kernel, tmp_path: Path) -> None:
    """`Kernel.snapshot`: the whole state to a file, atomically."""
    path = tmp_path / "k.snap"
    benchmark(busy_kernel.snapshot, path)
    benchmark.extra_info["bytes"] = path.stat().st_size


def test_snapshot_restore(benchmark: Bench, busy_kernel: reclaim.Kernel, tmp_path: Path) -> None:
    """`Kernel.restore`: decode, check and rebuild the state of a snapshot file."""
    path = tmp_path / "k.snap"
    busy_kernel.snapshot(path)
    k = benchmark(reclaim.Kernel.restore, path)
    assert k.log_hash() == busy_kernel.log_hash()
