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
