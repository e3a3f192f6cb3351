"""Shared fixtures."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pytest
import reclaim

if TYPE_CHECKING:
    import pandas as pd
    from reclaim.studies import PostcopyResult

PROFILES = ["4.17", "4.18", "6.12"]


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def small_kernel(
    profile: str = "4.18", memory: str = "16MiB", swap: str = "16MiB"
) -> reclaim.Kernel:
    return reclaim.Kernel(profile=profile, memory=memory, swap=swap, seed=1)


#: A 16 MiB guest migrating to a destination with less free memory than the guest (as the Rust
#: study tests): it hangs on 4.17 through a pte_unused drop and completes on 4.18, in about
#: 60 ms a run. The postcopy parameters; add a seed or swap where a test needs them.
SMALL_STUDY: dict[str, str] = {
    "guest_memory": "16MiB",
    "source_memory": "24MiB",
    "host_memory": "14MiB",
    "other_load": "2MiB",
    "bandwidth": "25MB/s",
}


#: The small study with a seed, as the tests of the event log, the exports and the heatmap run it.
SMALL: dict[str, Any] = {**SMALL_STUDY, "seed": 1}
#: Their sampling period: 50 ms.
EVERY = 50_000_000


@pytest.fixture(scope="module")
def run417() -> tuple[pd.DataFrame, PostcopyResult]:
    """The destination's vmstat every 50 ms of a 4.17 run, and its result."""
    from reclaim.events import vmstat_series
    from reclaim.studies import prepare

    return vmstat_series(functools.partial(prepare, "4.17", **SMALL), host=1, every_ns=EVERY)


@pytest.fixture(scope="module")
def r417(run417: tuple[pd.DataFrame, PostcopyResult]) -> PostcopyResult:
    return run417[1]


@pytest.fixture(scope="module")
def df417(r417: PostcopyResult) -> pd.DataFrame:
    from reclaim.events import to_frame

    return to_frame(r417)


def oom_kernel() -> reclaim.Kernel:
    """A kernel without swap filled until a fault fails: kswapd gives up, direct reclaim runs."""
    k = reclaim.Kernel(profile="4.18", memory="16MiB", swap=0, seed=1)
    p = k.spawn("stress-ng-vm")
    ram = p.mmap("24MiB")
    for i in range(6144):
        if p.write(ram + i * 4096, i).kind != "completed":
            break
    return k


def swap_kernel() -> reclaim.Kernel:
    """Two processes, one writing more than memory: kswapd swaps."""
    k = reclaim.Kernel(profile="4.18", memory="16MiB", swap="16MiB", seed=1)
    a, b = k.spawn("writer"), k.spawn("reader")
    ra, rb = a.mmap("20MiB"), b.mmap("64KiB")
    for i in range(16):
        b.write(rb + i * 4096, i)
    for i in range(5120):
        a.write(ra + i * 4096, i)
    return k
