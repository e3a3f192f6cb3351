"""Recompute the model side of saved replay-oracle checks with this build (no guest runs).

    python tools/remodel_saved.py A.json B.json ...            # one line per saved row
    python tools/remodel_saved.py --markdown --counters A.json  # FINDINGS-style table rows
    python tools/remodel_saved.py --x86-tlb none A.json         # a model choice other than
                                                                # model_counters' default
    python tools/remodel_saved.py --writeback A.json            # + pgrotated, pgactivate, pgrefill

Each file is what `reclaim crosscheck --replay --json` (or `ReplayCheck.to_dict()`) saved: one
check or a list of them. A row seen in several files (same trace, arch, memory, page-cluster,
requests, lru_gen and kernel runs) is replayed once. The trace is regenerated as the check made
it (`ReplayCheck.regenerate`, seed 0), the model is
`reclaim.crosscheck.replay.remodel`: `model_counters` with its defaults (the guest's swap
device and TLB) on each kernel run's memory, with the MGLRU variant of the guest's kernel
release (`model_profile`), as the check does. Printed: the row, the kernel's median major
faults (min-max), the model's median (min-max) over the runs' memories, the difference of the
two medians in percent of the kernel's, whether that meets the issue's target
(`replay.meets_target`: 5% with the classic lists, 10% with MGLRU, or inside the kernel's
spread), and the model's median the file saved when the check ran (``saved``; the first run's
alone in a check saved before the model ran on every run). The saved kernel runs kept in the
repository (tests/data/kernel-runs/) have their own tool, tools/kernel_runs.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reclaim.crosscheck.replay import ReplayCheck, meets_target, remodel, zones_like

#: The counters ``--writeback`` prints: rotations at write completion, activations (look-around,
#: shrink_folio_list; 6.12.117 reactivates a page still under writeback) and PGREFILL (MGLRU:
#: pages sort_folio kept; 6.12.107 keeps a page still under writeback).
WRITEBACK_COUNTERS = ("pgrotated", "pgactivate", "pgrefill")


def _checks(files: list[Path]) -> list[ReplayCheck]:
    out: list[ReplayCheck] = []
    seen: set[tuple[Any, ...]] = set()
    for f in files:
        saved = json.loads(f.read_text())
        for d in saved if isinstance(saved, list) else [saved]:
            c = ReplayCheck.from_dict(d)
            key = (
                c.trace,
                c.arch,
                c.guest_memory_mib,
                c.page_cluster,
                c.requests,
                c.lru_gen,
                tuple(k.counters["majflt"] for k in c.kernel),
            )
            if key not in seen:
                seen.add(key)
                out.append(c)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--x86-tlb", help="model_counters' x86_tlb ('none': no TLB)")
    ap.add_argument("--swap-io", help="model_counters' swap_io (default: its choice)")
    ap.add_argument("--memcg-stats", help="model_counters' memcg_stats ('live', 'rstat-6.12')")
    ap.add_argument(
        "--zones",
        action=argparse.BooleanOptionalAction,
        help="model_counters' zones (x86_64: DMA/DMA32 with watermark boosting; default its "
        "choice, reclaim.vm.guest.ZONES with the classic lists)",
    )
    ap.add_argument(
        "--tmpfs-on-lru",
        action=argparse.BooleanOptionalAction,
        help="model_counters' tmpfs_on_lru (the initramfs's tmpfs pages on the model's LRU, or "
        "free; default its choice, reclaim.vm.guest.TMPFS_ON_LRU with the zones)",
    )
    ap.add_argument(
        "--kernel-alloc-every",
        type=int,
        default=0,
        help="with --zones: a guest-kernel non-movable allocation every N pages swapped out",
    )
    ap.add_argument(
        "--zones-from",
        type=Path,
        help="with --zones: a saved check whose first run's zones (and pagetypeinfo) stand in for"
        " a row saved without them (the same guest size: its zones differ only in free pages)",
    )
    ap.add_argument(
        "--no-guest-clock",
        action="store_true",
        help="model_counters' guest_clock=False (the memcg flush on the model's cost clock)",
    )
    ap.add_argument(
        "--sched-tick",
        action="store_true",
        help="model_counters' sched_tick=True (kswapd also gets the CPU at the scheduler tick)",
    )
    ap.add_argument(
        "--no-pgtable-pages",
        action="store_true",
        help="model_counters' pgtable_pages=False (the page tables apart from the memory)",
    )
    ap.add_argument("--markdown", action="store_true", help="print markdown table rows")
    ap.add_argument(
        "--counters", action="store_true", help="also kernel run 0 / model scanned, ws, minflt"
    )
    ap.add_argument(
        "--writeback",
        action="store_true",
        help="also kernel run 0 / model pgrotated, pgactivate, pgrefill (pages under writeback)",
    )
    a = ap.parse_args()
    kw: dict[str, Any] = {}
    if a.x86_tlb is not None:
        kw["x86_tlb"] = None if a.x86_tlb == "none" else a.x86_tlb
    if a.swap_io is not None:
        kw["swap_io"] = a.swap_io
    if a.memcg_stats is not None:
        kw["memcg_stats"] = a.memcg_stats
    if a.no_guest_clock:
        kw["guest_clock"] = False
    if a.sched_tick:
        kw["sched_tick"] = True
    if a.tmpfs_on_lru is not None:
        kw["tmpfs_on_lru"] = a.tmpfs_on_lru
    if a.no_pgtable_pages:
        kw["pgtable_pages"] = False
    if a.zones is not None:
        kw["zones"] = a.zones
        kw["kernel_alloc_every"] = a.kernel_alloc_every
    donor = _checks([a.zones_from])[0].kernel[0] if a.zones_from else None
    for c in _checks(a.files):
        saved = c.model_majflt()
        if donor is not None and not c.kernel[0].zones and donor.managed != c.kernel[0].managed:
            print(f"# {c.trace}: the donor's zones manage {donor.managed} pages, not", end=" ")
            print(c.kernel[0].managed)
            continue
        # a saved check keeps the first run's zones only: the later runs' are the first's (or
        # the donor's) with their own free pages
        first = c.kernel[0] if c.kernel[0].zones else donor
        for k in c.kernel:
            if first is not None and not k.zones:
                k.zones = zones_like(first, k)
                k.pagetypeinfo = first.pagetypeinfo
        c.model_runs = remodel(c, **kw)
        c.model = c.model_runs[0]
        m = c.model
        med, lo, hi = c.kernel_majflt()
        mmed, mlo, mhi = c.model_majflt()
        diff = 100.0 * (mmed - med) / med if med else float("nan")
        k0 = c.kernel[0].counters
        row = [
            c.trace,
            c.arch,
            str(c.guest_memory_mib),
            str(c.page_cluster),
            f"{c.requests // 1000}K",
            c.lru_gen,
            f"{med:g} ({lo}-{hi})",
            f"{mmed:g} ({mlo}-{mhi})",
            f"{diff:+.1f}%",
            "in target" if meets_target(c) else "out",
            f"saved {saved[0]:g}",
        ]
        if "model_watermark_boosts" in m:
            boosts, skips = m.get("model_watermark_boosts", 0), m.get("pgskip_dma32", 0)
            row.append(f"boosts {boosts} pgskip_dma32 {skips}")
        if a.counters:
            ks = k0.get("pgscan_kswapd", 0) + k0.get("pgscan_direct", 0)
            ms = m["pgscan_kswapd"] + m["pgscan_direct"]
            row += [
                f"{ks:,} / {ms:,}",
                f"{k0.get('workingset_activate_anon', 0):,} / {m['workingset_activate_anon']:,}",
                f"{k0.get('minflt', 0):,} / {m['minflt']:,}",
            ]
        if a.writeback:
            row += [f"{k0.get(n, 0):,} / {m.get(n, 0):,}" for n in WRITEBACK_COUNTERS]
        print("| " + " | ".join(row) + " |" if a.markdown else "  ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
