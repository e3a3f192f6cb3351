"""The postcopy study on every profile: which kernels hang, and why.

A 128 MiB guest migrates to a host with less free memory than the guest; the same seed gives
the same run on each profile. Prints a table and the causal chain of each hang, and writes a
timeline plot.

    python examples/postcopy_profiles.py [plot.png]
"""

from __future__ import annotations

import sys

import reclaim
from reclaim.plot import timeline
from reclaim.studies.postcopy import postcopy


def main(plot: str) -> None:
    results = [postcopy(p, guest_memory="128MiB", seed=1) for p in reclaim.PROFILES]
    print(f"{'profile':<8} {'outcome':<10} {'uf@received':>12} {'dropped':>8} {'swapped':>8}")
    for r in results:
        m = r.metrics
        print(
            f"{r.profile:<8} {r.outcome:<10} {m['userfaults_on_received']:>12} "
            f"{m['dest_pages_dropped']:>8} {m['dest_pages_swapped']:>8}"
        )
    for r in results:
        if r.hang:
            print(f"\n{r.profile}: vCPU {r.hang['vcpu']} hangs on guest page {r.hang['gfn']:#x}:")
            for step in r.chain:
                t = int(str(step["t"])) / 1e9
                print(f"  t={t:9.6f}s  {step['host']!s:<11}  {step['what']}")
    print(f"\ntimeline: {timeline(results, plot)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postcopy-profiles.png")
