"""Determinism: the same seed gives the same event log, bit for bit, in another
process and on another machine.

The log hash (FNV-1a over every field of every event, little-endian: rust/sim/log.rs) does not
depend on the platform, and neither does the simulation: integers, IEEE arithmetic, and the
Zipf sampler's exp/log from the pure-Rust `libm` (not the platform's C library, whose last bit
differs between implementations).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from reclaim.studies import postcopy

#: Log hashes of the three `reclaim demo` runs (postcopy(profile, seed=0, **extra), defaults).
#: A change of these hashes means the model's behaviour changed: the commit that changes them
#: must say why (which mechanism now acts differently) in its message, and update them here.
DEMO_RUNS: dict[str, tuple[str, dict[str, str], int]] = {
    "4.17": ("4.17", {}, 0x76F189D20594CA68),
    "4.18": ("4.18", {}, 0xBB430C890D5FA1B3),
    "4.18-guest-frees-cold-pages": ("4.18", {"free_policy": "random"}, 0x14BF157E38AF776F),
}

SMALL = {"guest_memory": "16MiB", "turnover": 0.2, "free_policy": "random"}

SCRIPT = """
from reclaim.studies import postcopy
r = postcopy("4.17", seed=11, guest_memory="16MiB", turnover=0.2, free_policy="random")
print(r.log_hash, r.n_events, r.outcome)
"""


def test_the_same_seed_gives_the_same_log_in_separate_processes() -> None:
    outs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert outs[0] == outs[1]
    here = postcopy("4.17", seed=11, **SMALL)  # type: ignore[arg-type]
    assert outs[0] == [str(here.log_hash), str(here.n_events), here.outcome]
    other = postcopy("4.17", seed=12, **SMALL)  # type: ignore[arg-type]
    assert other.log_hash != here.log_hash, "the seed decides the run"


@pytest.mark.parametrize("run", sorted(DEMO_RUNS))
def test_the_demo_runs_keep_their_log_hash(run: str) -> None:
    profile, extra, pinned = DEMO_RUNS[run]
    r = postcopy(profile, seed=0, **extra)  # type: ignore[arg-type]
    assert r.trace == "full"
    assert r.log_hash == pinned, (
        f"the {run} demo run's log hash is now {r.log_hash:#x}: the model's behaviour changed "
        "(explain why in the commit message and update DEMO_RUNS)"
    )
