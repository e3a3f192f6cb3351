"""Soak: a postcopy study held in precopy for hours of simulated time (not part of pytest).

A small guest with page turnover runs on a source host barely larger than it while QEMU sends
its RAM pass after pass over a slow link to a destination with other load, for ``--hours`` of
simulated time: the guest allocates and frees (ESSA, CBRL), both hosts reclaim, swap and
fault, and the destination keeps loading pages. Every
``--check-every`` simulated seconds the model's invariants are checked (``PostcopyRun.check``:
both kernels and the run around them). At the end it reports steps per second, peak RSS and
RSS growth, and fails (exit 1) if an invariant broke or the process grew by more than the
model's own state did (``heap_bytes``, which counts the event logs) allows.

    python tests/soak.py                # 60 simulated hours: about two minutes
    python tests/soak.py --hours 600    # longer
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import reclaim
from reclaim.studies import prepare
from reclaim.units import size

MiB = 1 << 20
#: RSS may grow by this much more than twice the model's heap (allocator slack, Vec doubling).
SLACK = 32 * MiB


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=60.0, help="simulated hours (default 60)")
    ap.add_argument("--profile", default="4.18")
    ap.add_argument("--guest-memory", default="32MiB")
    ap.add_argument("--check-every", type=float, default=60.0, help="simulated seconds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    horizon = int(args.hours * 3600e9)
    guest = size(args.guest_memory, "guest_memory")
    # a pass over guest RAM every 5 simulated minutes, and never an end to precopy
    bandwidth = guest // 300
    run = prepare(
        args.profile,
        guest_memory=guest,
        turnover=0.2,
        free_policy="recent:2000",
        op_interval_ns=1_000_000,
        load_interval_ns=5_000_000,
        source_memory=guest + 8 * MiB,
        bandwidth=bandwidth,
        latency_ns=1_000_000,
        precopy_iterations=1 << 30,
        seed=args.seed,
        max_time=horizon / 1e9,
        trace="chain",
    )
    run.mute("kvm:essa")  # two per guest allocation and free: the log would dwarf the model
    slice_ns = int(args.check_every * 1e9)
    run.check()
    rss0, heap0 = rss_bytes(), run.heap_bytes()
    start = time.monotonic()
    checks, t, done = 1, 0, False
    try:
        while not done and t < horizon:
            t = min(t + slice_ns, horizon)
            done = run.advance(t)
            run.check()
            checks += 1
    except reclaim.InvariantError as e:
        print(f"soak: invariant broken at t={run.now / 1e9:.1f} s: {e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - start
    rss_growth, heap_growth = rss_bytes() - rss0, run.heap_bytes() - heap0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    m = run.result().metrics
    print(
        f"soak: {args.profile}, {args.guest_memory} guest, {run.now / 3600e9:.2f} simulated hours, "
        f"{run.steps:,} steps in {wall:.1f} s = {run.steps / wall:,.0f} steps/s, "
        f"{checks} invariant checks; {m['guest_ops']:,} guest operations, "
        f"{m['precopy_pages']:,} pages sent, "
        f"{run.vmstat(0)['pswpout'] + run.vmstat(1)['pswpout']:,} swapped out"
    )
    print(
        f"soak: peak RSS {peak / MiB:.1f} MiB, RSS growth {rss_growth / MiB:.1f} MiB, "
        f"model heap growth {heap_growth / MiB:.1f} MiB (heap now {run.heap_bytes() / MiB:.1f} MiB)"
    )
    if rss_growth > 2 * heap_growth + SLACK:
        print("soak: the process grew beyond the model's own state: a leak", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
