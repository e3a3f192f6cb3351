"""Replay counters of the benchmark traces, to show that a speed change changed no decision.

    python tools/replay_counters.py save before.json     # on the old build
    python tools/replay_counters.py check before.json    # on the new build: exit 1 on a change

Replays the traces of the `reclaim bench` replay suite (zipf(1.0) and zipf(1.2), 10M requests
over 1M keys, oracleGeneral, memory 25%) and a few smaller variants (stores, a KVM process,
x86_64, MGLRU, a 4.x profile, one CPU), and records every counter a replay reports: hits,
minor and major faults, distinct pages, every vmstat counter, the event log's length and hash.
``--quick`` replays 1M requests of each trace instead of 10M. Traces are written once to
``--dir`` (default: the system's temporary directory) and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import reclaim
from reclaim.trace import replay, write, write_zipf


def _traces(d: Path, n: int) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for s in (1.0, 1.2):
        p = d / f"zipf{s}-{n}.oracleGeneral.bin"
        if not p.exists():
            write_zipf(p, n, 1 << 20, s=s, seed=1, format="oracle")
        out[f"zipf{s}"] = p
    p = d / "stores2-400k.bin"
    if not p.exists():
        rng = np.random.default_rng(7)
        hot = rng.zipf(1.2, 400_000) % 30_000
        keys = np.where(rng.random(400_000) < 0.5, rng.integers(0, 30_000, 400_000), hot)
        keys = keys.astype(np.uint64)
        write(p, keys, rng.random(400_000) < 0.3, format="binary")
    out["stores"] = p
    return out


def _runs(traces: dict[str, Path]) -> dict[str, dict[str, Any]]:
    stores = traces["stores"]
    return {
        "zipf1.0": dict(path=traces["zipf1.0"]),
        "zipf1.2": dict(path=traces["zipf1.2"]),
        "zipf1.0-x86-mglru": dict(
            path=traces["zipf1.0"], profile="6.12-debian", arch="x86_64", limit=1_000_000
        ),
        "stores-4.18-kvm": dict(path=stores, profile="4.18", kvm=True),
        "stores-4.13-one-cpu": dict(path=stores, profile="4.13", one_cpu=True),
        "stores-6.12-x86": dict(path=stores, arch="x86_64", memory=0.1),
        "stores-6.12-shmem": dict(path=stores, shmem=True, as_recorded=True),
    }


def counters(d: Path, n: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name, kw in _runs(_traces(d, n)).items():
        args = dict(kw)
        path = args.pop("path")
        r = replay(path, memory=args.pop("memory", 0.25), **args)
        out[name] = {
            "requests": r.requests,
            "distinct_pages": r.distinct_pages,
            "hits": r.hits,
            "minor_faults": r.minor_faults,
            "major_faults": r.major_faults,
            "pages_reclaimed": r.pages_reclaimed,
            "pages_swapped_out": r.pages_swapped_out,
            "resident_pages": r.resident_pages,
            "memory": r.memory,
            "log_hash": r.log_hash,
            "n_events": r.n_events,
            "vmstat": dict(r.vmstat),
        }
        print(f"{name}: {r.requests:,} requests, {r.seconds:.2f} s", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("save", "check"))
    ap.add_argument("file", type=Path)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "reclaim-counters")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    now = counters(a.dir, 1_000_000 if a.quick else 10_000_000)
    if a.mode == "save":
        a.file.write_text(json.dumps({"reclaim": reclaim.__version__, "runs": now}, indent=1))
        return 0
    before = json.loads(a.file.read_text())["runs"]
    bad = [
        f"{run}.{k}: {v!r} -> {now[run].get(k)!r}"
        for run, c in before.items()
        for k, v in c.items()
        if now[run].get(k) != v
    ]
    print("\n".join(bad) or f"same counters in all {len(before)} replays")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
