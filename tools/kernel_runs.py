"""The kernel-run dataset (tests/data/kernel-runs/): import, record, expectations, table.

Saved replay-oracle checks go in (imported or recorded), the model's committed expectations
are refreshed from them, and the fidelity table is printed from them:

    python tools/kernel_runs.py --import A.json B.json ...   # copy saved checks in, one file a row
    python tools/kernel_runs.py --record [ROW ...] --runs 5  # record rows again in guests (all:
                                                             # no ROW), one boot a row
    python tools/kernel_runs.py --update                     # recompute the model on every row and
                                                             # rewrite expected/*.json
    python tools/kernel_runs.py --markdown --lru-gen off     # FINDINGS' table (classic rows)
    python tools/kernel_runs.py --markdown --sched-tick on   # the same with an oracle choice
                                                             # overridden (not with --update;
                                                             # also --memcg-stats rstat-6.12-lru)
    python tools/kernel_runs.py                              # one line a row, against expected/
    python tools/kernel_runs.py --plot P.png --trace zipf0.9 --arch x86_64 --page-cluster 0
                                                             # the README's plot, this model

Each dataset file is one check as `reclaim crosscheck --replay --json` saves it (a list of one
`ReplayCheck.to_dict()`), named by `reclaim.crosscheck.replay.row_name`. `--import` takes
files of that form (a check or a list of checks) and replaces the dataset's file of a row;
paths of the recording machine are cut to file names (`replay.portable`); the file gets a
`recorded` date (the input's modification time, UTC) and, when it has no libCacheSim reference
and libcachesim is installed here, the reference computed now on the same trace and capacity
(`reference_misses`, as `run_trace` does; `reference_libcachesim` names the version).
A row of several inputs (guest boots) joins their kernel runs (`ReplayCheck.boots`).
`--record` runs `run_trace(tracegen.generate(T, N, PAGES), T, arch=, guest_memory_mib=,
page_cluster=, lru_gen=, runs=)` for each row (its settings are in its name) and writes the
check the same way.

`--update` writes expected/model-counters.json (the model's counters per row with this build:
`replay.remodel`, `model_counters`' defaults) and expected/known-gaps.json (the rows whose major
faults miss issue 18's target, `replay.meets_target`, with the numbers), and prints what moved.
tests/test_kernel_runs.py fails when the model moves any row from those files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reclaim import tracegen
from reclaim.crosscheck.replay import (
    POLICIES,
    TARGET,
    ReplayCheck,
    meets_target,
    plot,
    portable,
    reference_misses,
    remodel,
    row_name,
)

DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "kernel-runs"
EXPECTED = DATASET / "expected" / "model-counters.json"
GAPS = DATASET / "expected" / "known-gaps.json"
UPDATE = "python tools/kernel_runs.py --update"
#: The model's counters the expectations keep, per row.
COMPARED = (
    "majflt",
    "minflt",
    "pswpin",
    "pswpout",
    "pgscan_kswapd",
    "pgscan_direct",
    "workingset_refault_anon",
    "workingset_activate_anon",
    "workingset_restore_anon",
)


def load(files: list[Path]) -> dict[str, tuple[ReplayCheck, dict[str, Any]]]:
    """The dataset's checks by row name, each with its saved JSON."""
    out = {}
    for f in sorted(files):
        saved = json.loads(f.read_text())
        d = saved[0] if isinstance(saved, list) else saved
        out[f.stem] = (ReplayCheck.from_dict(d), d)
    return out


def dataset() -> dict[str, tuple[ReplayCheck, dict[str, Any]]]:
    return load(list(DATASET.glob("*.json")))


def _order(item: tuple[str, tuple[ReplayCheck, Any]]) -> tuple[Any, ...]:
    c = item[1][0]
    pat = tracegen.PATTERNS.index(c.trace) if c.trace in tracegen.PATTERNS else 99
    return (c.lru_gen, c.arch != "x86_64", c.requests, pat, c.guest_memory_mib, c.page_cluster)


def import_files(files: list[Path]) -> int:
    """Copy saved checks into the dataset, one file a row. Several files of one row (each a
    guest boot) are joined: the check with the most runs first, the other boots' kernel runs
    after it, ``boots`` their counts, so that the row's spread is the kernel's across boots too
    (the x86_64 zipf(1.2) rows moved by a third between boots of one day)."""
    by_row: dict[str, list[tuple[int, float, dict[str, Any], Path]]] = {}
    for f in files:
        saved = json.loads(f.read_text())
        for d in saved if isinstance(saved, list) else [saved]:
            c = ReplayCheck.from_dict(d)
            by_row.setdefault(row_name(c), []).append((len(c.kernel), f.stat().st_mtime, d, f))
    for row, found in sorted(by_row.items()):
        found.sort(key=lambda x: (x[0], x[1]), reverse=True)
        d = dict(found[0][2])
        d["kernel"] = [k for _, _, other, _ in found for k in other["kernel"]]
        if len(found) > 1:
            d["boots"] = [n for n, _, _, _ in found]
        write(d, max(m for _, m, _, _ in found))
        print(f"{row}: {len(d['kernel'])} kernel runs from " + ", ".join(f.name for *_, f in found))
    return 0


def write(d: dict[str, Any], mtime: float) -> Path:
    """Check ``d`` into the dataset as its row's file: host paths cut, ``recorded`` (``mtime``),
    the libCacheSim reference when it has none and libcachesim is installed."""
    out = portable(d)
    assert isinstance(out, dict)
    out["recorded"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(mtime))
    if not out.get("reference"):
        out.update(_reference(ReplayCheck.from_dict(out)))
    DATASET.mkdir(parents=True, exist_ok=True)
    path = DATASET / f"{row_name(ReplayCheck.from_dict(out))}.json"
    path.write_text(_dump(out))
    return path


def parse_row(row: str) -> dict[str, Any]:
    """:func:`run_trace`'s settings of a row name (``row_name``'s form)."""
    parts = row.split("-")
    if len(parts) < 6 or parts[1] not in ("classic", "lrugen") or not parts[5].endswith("K"):
        raise SystemExit(f"{row!r} is not a row name (ARCH-classic|lrugen-TRACE-MiB-pcC-NK)")
    extra = parts[6:]
    boost = [int(e[5:]) for e in extra if e.startswith("boost")]
    return {
        "arch": parts[0],
        "lru_gen": "on" if parts[1] == "lrugen" else "off",
        "trace": parts[2],
        "guest_memory_mib": int(parts[3]),
        "page_cluster": int(parts[4].removeprefix("pc")),
        "requests": int(parts[5][:-1]) * 1000,
        "shmem": "shmem" in extra,
        "watermark_boost_factor": boost[0] if boost else None,
    }


def record(rows: list[str], runs: int, pages: int) -> int:
    """Record ``rows`` again in guests, one boot a row, ``runs`` kernel runs each, into the
    dataset (what ``reclaim crosscheck --replay`` runs for a row)."""
    from reclaim.crosscheck.replay import run_trace

    for row in rows:
        r = parse_row(row)
        t0 = time.monotonic()
        name, requests = r.pop("trace"), r.pop("requests")
        t = tracegen.generate(name, requests, pages)
        c = run_trace(t, name, runs=runs, trace_pages=pages, **r)
        path = write(c.to_dict(), time.time())
        med, lo, hi = c.kernel_majflt()
        print(f"{path.stem}: {time.monotonic() - t0:.0f} s, kernel {med:g} ({lo}-{hi})", flush=True)
    return 0


def _dump(d: dict[str, Any]) -> str:
    """A list of the one check ``d``: a line per key, a line per kernel run, compact inside."""

    def one(v: Any) -> str:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

    lines = []
    for k, v in d.items():
        if k == "kernel" and isinstance(v, list):
            runs = ",\n".join(f"  {one(r)}" for r in v)
            lines.append(f" {one(k)}: [\n{runs}\n ]")
        else:
            lines.append(f" {one(k)}: {one(v)}")
    return "[{\n" + ",\n".join(lines) + "\n}]\n"


def _reference(c: ReplayCheck) -> dict[str, Any]:
    """libCacheSim's reference for ``c`` computed here, when libcachesim is installed."""
    try:
        from importlib.metadata import version

        lcs = version("libcachesim")
    except Exception:
        return {}
    t = c.regenerate()
    with tempfile.TemporaryDirectory(prefix="reclaim-reference-") as td:
        ref = reference_misses(t, c.capacity, Path(td))
    return {"reference": ref, "reference_libcachesim": lcs} if ref else {}


def _pct(a: float, b: float) -> str:
    return f"{100.0 * (a - b) / b:+.1f}%" if b else ("0" if a == b else "n/a")


def _target(c: ReplayCheck) -> str:
    """Whether ``c`` (with its ``model_runs``) meets the target, and how."""
    med, m = c.kernel_majflt()[0], c.model_majflt()[0]
    if abs(m - med) <= TARGET[c.lru_gen] * med:
        return "met"
    return "met (spread)" if meets_target(c) else "**not met**"


#: ``model_counters`` options that override the oracle's choices in the table and the plot
#: (``--sched-tick``, ``--memcg-stats``); ``--update`` always writes the oracle's own.
MODEL_OPTIONS: dict[str, Any] = {}


def _remodelled(c: ReplayCheck) -> ReplayCheck:
    """``c`` with the model of this build on each kernel run's memory."""
    ms = remodel(c, **MODEL_OPTIONS)
    return dataclasses.replace(c, model=ms[0], model_runs=ms)


def update(rows: dict[str, tuple[ReplayCheck, dict[str, Any]]]) -> int:
    old = json.loads(EXPECTED.read_text())["rows"] if EXPECTED.exists() else {}
    old_gaps = json.loads(GAPS.read_text())["rows"] if GAPS.exists() else {}
    counters, gaps = {}, {}
    for row, (saved, _) in sorted(rows.items(), key=_order):
        c = _remodelled(saved)
        counters[row] = [{k: m[k] for k in COMPARED} for m in c.model_runs]
        med, lo, hi = c.kernel_majflt()
        mmed, mlo, mhi = c.model_majflt()
        if not meets_target(c):
            gaps[row] = {
                "kernel_majflt_median": med,
                "kernel_majflt_min": lo,
                "kernel_majflt_max": hi,
                "kernel_runs": len(c.kernel),
                "model_majflt_median": mmed,
                "model_majflt_min": mlo,
                "model_majflt_max": mhi,
                "model_vs_kernel": _pct(mmed, med),
                "target": f"{TARGET[c.lru_gen]:.0%} or the kernel's min-max",
            }
        was = old.get(row)
        if was != counters[row]:
            print(f"{row}: " + ("new row" if was is None else f"moved, model {mmed:g}"))
        if (row in gaps) != (row in old_gaps) and row in old:
            print(f"{row}: {'left' if row in gaps else 'now meets'} the target", end=" ")
            print(f"(model {mmed:g} ({mlo}-{mhi}), kernel {med:g} ({lo}-{hi}))")
    for row in sorted(set(old) - set(counters)):
        print(f"{row}: no longer in the dataset")
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "command": UPDATE,
        "model": "reclaim.crosscheck.replay.remodel (model_counters' defaults), one entry a run",
    }
    EXPECTED.write_text(json.dumps({**head, "rows": counters}, indent=1) + "\n")
    head_gaps = {"command": UPDATE, "target": TARGET}
    GAPS.write_text(json.dumps({**head_gaps, "rows": gaps}, indent=1) + "\n")
    print(f"{len(counters)} rows, {len(gaps)} miss the target: {EXPECTED.name}, {GAPS.name}")
    return 0


def table(
    rows: dict[str, tuple[ReplayCheck, dict[str, Any]]], markdown: bool, each_run: bool
) -> int:
    expected = json.loads(EXPECTED.read_text())["rows"] if EXPECTED.exists() else {}
    if markdown:
        print(
            "| trace | arch | MiB | page-cluster | requests | kernel runs | capacity/pages "
            "| kernel majflt median (min-max) | kernel spread | model median (min-max) "
            f"| model vs kernel | target | {' | '.join(POLICIES)} |"
            + (" model on each run's memory |" if each_run else "")
        )
        print("|" + "---|" * (12 + len(POLICIES) + each_run))
    for row, (saved, _) in sorted(rows.items(), key=_order):
        c = _remodelled(saved)
        med, lo, hi = c.kernel_majflt()
        mmed, mlo, mhi = c.model_majflt()
        spread = f"±{50.0 * (hi - lo) / med:.1f}%" if med else "-"
        refs = [_pct(c.reference[p], med) if p in c.reference else "-" for p in POLICIES]
        cells = [
            c.trace,
            c.arch,
            str(c.guest_memory_mib),
            str(c.page_cluster),
            f"{c.requests // 1000}K",
            str(len(c.kernel)),
            f"{c.capacity} ({c.capacity / c.pages:.0%})",
            f"{med:g} ({lo}-{hi})",
            spread,
            f"{mmed:g} ({mlo}-{mhi})",
            _pct(mmed, med),
            _target(c),
            *refs,
        ]
        if each_run:
            cells.append(", ".join(str(m["majflt"]) for m in c.model_runs))
        if markdown:
            print("| " + " | ".join(cells) + " |", flush=True)
        else:
            got = [{k: m[k] for k in COMPARED} for m in c.model_runs]
            same = got == expected.get(row)
            print(f"{row}  " + "  ".join(cells[5:12]) + ("" if same else "  MOVED"), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--import", dest="files", nargs="+", type=Path, help="saved checks to copy in")
    ap.add_argument(
        "--record",
        nargs="*",
        metavar="ROW",
        help="record these rows (row names; none: every row of the dataset) again in guests",
    )
    ap.add_argument("--runs", type=int, default=5, help="kernel runs a row with --record")
    ap.add_argument("--pages", type=int, default=20_000, help="trace pages with --record")
    ap.add_argument("--update", action="store_true", help="rewrite the expectations")
    ap.add_argument("--markdown", action="store_true", help="print the markdown table")
    ap.add_argument(
        "--each-run", action="store_true", help="also list the model on each kernel run's memory"
    )
    ap.add_argument("--lru-gen", choices=("on", "off"), help="only the rows with lru_gen so")
    ap.add_argument("--trace", help="only the rows of this trace")
    ap.add_argument("--arch", help="only the rows of this arch")
    ap.add_argument("--page-cluster", type=int, help="only the rows of this page-cluster")
    ap.add_argument("--requests", type=int, help="only the rows of this many requests")
    ap.add_argument(
        "--plot", type=Path, help="draw the selected rows with this build's model (replay.plot)"
    )
    ap.add_argument(
        "--sched-tick",
        choices=("on", "off"),
        help="the table and plot with model_counters' sched_tick so, not the oracle's "
        "reclaim.vm.guest.SCHED_TICK",
    )
    ap.add_argument(
        "--memcg-stats",
        choices=("live", "rstat-6.12", "rstat-6.12-lru"),
        help="the table and plot with model_counters' memcg_stats so, not the oracle's "
        "reclaim.vm.guest.MEMCG_STATS",
    )
    a = ap.parse_args()
    if a.sched_tick is not None:
        if a.update:
            ap.error("--update writes the oracle's own choices: drop --sched-tick")
        MODEL_OPTIONS["sched_tick"] = a.sched_tick == "on"
    if a.memcg_stats is not None:
        if a.update:
            ap.error("--update writes the oracle's own choices: drop --memcg-stats")
        MODEL_OPTIONS["memcg_stats"] = a.memcg_stats
    if a.files:
        import_files(a.files)
    if a.record is not None:
        record(a.record or sorted(dataset()), a.runs, a.pages)
    rows = dataset()
    if a.update:
        return update(rows)
    keep = {
        "lru_gen": a.lru_gen,
        "trace": a.trace,
        "arch": a.arch,
        "page_cluster": a.page_cluster,
        "requests": a.requests,
    }
    for attr, want in keep.items():
        if want is not None:
            rows = {r: v for r, v in rows.items() if getattr(v[0], attr) == want}
    if a.plot:
        plot([_remodelled(c) for c, _ in rows.values()], a.plot)
        print(f"{a.plot}: {len(rows)} rows")
        return 0
    if a.files or a.record is not None:
        return 0
    return table(rows, a.markdown, a.each_run)


if __name__ == "__main__":
    sys.exit(main())
