"""Shared fixtures."""

from __future__ import annotations

import pytest
import reclaim

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
