"""Fit the guest clock of the replay oracle's model to saved kernel runs (no guest runs).

    python tools/fit_guest_clock.py A.json B.json ...

Each file is what `reclaim crosscheck --replay --json` (or `ReplayCheck.to_dict()`) saved. Per
arch, every kernel run with its `ms` (the guest's replay loop, CLOCK_MONOTONIC) is one equation
`ms - direct reclaims' time = sum(cost * count)` over `reclaim.crosscheck.replay.CLOCK_EVENTS`
(requests, minor and major faults, pages written to swap, pages scanned); the costs are their
non-negative least squares, and the guest time of one direct reclaim (DIRECT_RECLAIM_NS) is
measured on the runs whose agent timed them, the two taken in turn to their fixed point
(`fit_guest_clock`): a timed run's direct reclaims take what the agent measured, an untimed
run's its ALLOCSTALL times DIRECT_RECLAIM_NS at its speed. Printed: the costs in ns, the
direct reclaim's time and the rounds, then per run its measured ms, the direct reclaims' share
and the clock's prediction (all six terms) with the residual, and the residuals' root mean
square.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from reclaim.crosscheck.replay import CLOCK_EVENTS, KernelRun, ReplayCheck, fit_guest_clock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--lru-gen", choices=("on", "off", "any"), default="any")
    a = ap.parse_args()
    by_arch: dict[str, list[tuple[str, int, KernelRun]]] = {}
    for f in a.files:
        saved = json.loads(f.read_text())
        for d in saved if isinstance(saved, list) else [saved]:
            c = ReplayCheck.from_dict(d)
            if a.lru_gen != "any" and c.lru_gen != a.lru_gen:
                continue
            for k in c.kernel:
                label = (
                    f"{c.trace} {c.guest_memory_mib}MiB pc{c.page_cluster}"
                    f" {c.requests // 1000}K lru_gen {c.lru_gen} run {k.run} ({f.name})"
                )
                by_arch.setdefault(c.arch, []).append((label, c.requests, k))
    for arch, runs in sorted(by_arch.items()):
        if len([r for r in runs if r[2].ms > 0]) < len(CLOCK_EVENTS):
            print(f"## {arch}: {len(runs)} runs, too few for {len(CLOCK_EVENTS)} costs")
            continue
        fit = fit_guest_clock(runs)
        costs = ", ".join(f"{e} {c:.1f}" for e, c in zip(CLOCK_EVENTS, fit.cost, strict=True))
        print(f"## {arch}: {len(fit.ms)} runs; ns per {costs}")
        print(f"GUEST_CLOCK[{arch!r}] = {tuple(round(c, 1) for c in fit.cost)}")
        print(
            f"DIRECT_RECLAIM_NS[{arch!r}] = {round(fit.direct_reclaim_ns, 0)}"
            f"  # fixed point after {fit.rounds} rounds"
        )
        rows = zip(fit.labels, fit.ms, fit.direct_reclaim_ms, fit.predicted_ms, strict=True)
        for lab, m, d, p in rows:
            print(
                f"  {lab}: {m} ms ({100 * d / m:.1f}% direct reclaim), fit {p:.0f} ms"
                f" ({p - m:+.0f}, {100 * (p - m) / m:+.0f}%)"
            )
        r = fit.residuals()
        rel = [x / m for x, m in zip(r, fit.ms, strict=True)]
        print(
            f"  rms residual {math.sqrt(sum(x * x for x in r) / len(r)):.0f} ms,"
            f" relative {100 * math.sqrt(sum(x * x for x in rel) / len(rel)):.0f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
