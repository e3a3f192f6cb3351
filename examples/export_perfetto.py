"""Export a hung migration for Perfetto and as ftrace text.

Open the JSON in https://ui.perfetto.dev: the destination's vCPUs show the interval they were
blocked on the userfault, kswapd its passes, and counters free memory and swap use.

    python examples/export_perfetto.py [trace.json] [trace.txt]
"""

from __future__ import annotations

import sys

from reclaim.events import run_slices
from reclaim.export import chrome_trace, ftrace_text
from reclaim.studies.postcopy import prepare

if __name__ == "__main__":
    trace = sys.argv[1] if len(sys.argv) > 1 else "seed-bug.json"
    text = sys.argv[2] if len(sys.argv) > 2 else "seed-bug.txt"
    run = prepare("4.17", guest_memory="64MiB", seed=0, trace="full")
    samples = [(t, host, run.vmstat(host)) for t in run_slices(run, 10_000_000) for host in (0, 1)]
    result = run.result()
    print(f"4.17: {result.outcome}, {result.n_events} events")
    print(f"perfetto: {chrome_trace(result, trace, samples=samples)}")
    ftrace_text(result, text, host=1)
    print(f"ftrace: {text}")
