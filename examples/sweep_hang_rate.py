"""A sweep: the hang rate by profile and destination memory, over seeds, on all cores.

Each point of the grid is a postcopy study; the table (one row per run) is written to a
parquet file that a rerun resumes; the plot shows the fraction of hung runs.
Needs the data extra: pip install '.[data]'.

    python examples/sweep_hang_rate.py [out.parquet] [plot.png]
"""

from __future__ import annotations

import sys

import reclaim
from reclaim.sweeper import summary, summary_plot

GRID = {
    "profile": ["4.17", "4.18", "6.12"],
    "guest_memory": "32MiB",
    "host_memory": ["24MiB", "28MiB"],
    "free_policy": ["recent", "random"],
    "seed": [0, 1, 2],
}

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "hang-rate.parquet"
    plot = sys.argv[2] if len(sys.argv) > 2 else "hang-rate.png"
    df = reclaim.sweep("postcopy", GRID, out=out)
    print(summary(df).to_string())
    print(f"\ntable: {out}\nplot: {summary_plot(df, plot, by=('profile', 'free_policy'))}")
