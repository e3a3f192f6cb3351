"""MGLRU's generations and free pages in the guests and in the model, at the agent's samples.

    python tools/lru_gen_turnover.py tests/data/kernel-runs/lru-gen-debugfs/*.json
    python tools/lru_gen_turnover.py --zones FILE ...     # the model with the guest's zones
    python tools/lru_gen_turnover.py --zone-trace FILE ...  # the guest's DMA32 boost cycles

For each kernel run of a saved check recorded by an agent that reads debugfs (the
``lru_gen_*`` fields of ``KernelRun``) and for the model on that run's memory
(``reclaim.crosscheck.replay.model_lru_gen``, the oracle's defaults, or ``--zones``): the
agings over the run (``max_seq`` after less before, ``inc_max_seq``), and over the agent's
samples 6 to 15 (the steady state: the trace's pages outgrew the memory by the fifth) the mean
free pages (the zones' free and per-cpu pages) and the mean pages on the generations
(``/sys/kernel/debug/lru_gen``'s sizes), with the samples at which the guest's DMA32 zone had a
``watermark_boost`` and the major faults of each side (FINDINGS section 8, "The guests'
generations and free pages"). ``--zone-trace``: from runs whose agent traced the zones every
256th request, the guest's DMA32 boosts and what its free pages did around them."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from reclaim.crosscheck.replay import KernelRun, ReplayCheck, lru_gen_generations, remodel
from reclaim.trace import ReplayRun

#: The samples of the steady state: the agent's 6th to 15th (of 15, every sixteenth of the
#: requests), 0-based.
STEADY = range(5, 15)


@dataclass
class Turnover:
    """One kernel run against the model on its memory, each a (guest, model) pair: ``agings``
    over the run, mean ``free`` pages (free and per-cpu) and mean ``lru`` pages (on the
    generations) over :data:`STEADY`; ``majflt`` and ``pageoutrun``; ``dma32_boosted``: how
    many of those samples found the guest's DMA32 boosted ("-" from an agent that did not
    sample the boost); ``run``: the kernel run's index."""

    run: int
    agings: tuple[int, int]
    free: tuple[float, float]
    lru: tuple[float, float]
    majflt: tuple[int, int]
    pageoutrun: tuple[int, int]
    dma32_boosted: str


def _max_seq(text: str) -> int:
    gens = lru_gen_generations(text)
    return gens[-1].seq if gens else 0


def _lru_pages(text: str) -> int:
    return sum(g.anon + g.file for g in lru_gen_generations(text) if not g.anon_evicted)


def _free(zones: list[list[int]]) -> int:
    return sum(free + pcp for free, pcp in zones)


def turnover(check: ReplayCheck, zones: bool) -> list[Turnover]:
    """Each kernel run of ``check`` against the model on its memory (the oracle's defaults, or
    the guest's zones), the model looked at where the agent looked at the guest."""
    every = max(1, check.requests // 16)
    seen: list[tuple[int, str, int]] = []

    def look(run: ReplayRun) -> None:
        seen.append((run.progress[0], run.lru_gen(), _free(run.zone_free())))

    counters = remodel(check, zones=zones, observe=(every, look))
    starts = [i for i, (done, _, _) in enumerate(seen) if done == 0] + [len(seen)]
    out = []
    for n, (k, m) in enumerate(zip(check.kernel, counters, strict=True)):
        model = seen[starts[n] : starts[n + 1]]
        steady = [j for j in STEADY if j < min(len(k.samples), len(k.lru_gen_samples))]
        boosted = [j for j in steady if j < len(k.sample_boosts) and k.sample_boosts[j][1] > 0]
        out.append(
            Turnover(
                run=k.run,
                agings=(
                    _max_seq(k.lru_gen_after) - _max_seq(k.lru_gen_before),
                    _max_seq(model[-1][1]) - _max_seq(model[0][1]),
                ),
                free=(
                    statistics.mean(_free(k.samples[j]) for j in steady),
                    statistics.mean(model[j + 1][2] for j in steady),
                ),
                lru=(
                    statistics.mean(_lru_pages(k.lru_gen_samples[j]) for j in steady),
                    statistics.mean(_lru_pages(model[j + 1][1]) for j in steady),
                ),
                majflt=(k.counters["majflt"], m["majflt"]),
                pageoutrun=(k.counters.get("pageoutrun", 0), m["pageoutrun"]),
                dma32_boosted=f"{len(boosted)}/{len(steady)}" if k.sample_boosts else "-",
            )
        )
    return out


@dataclass
class BoostCycles:
    """The guest's DMA32 boost over a check's ``zone_trace`` (each zone's free pages and
    ``watermark_boost`` every 256th request) in the steady state (from the fifth sixteenth of
    the requests): ``points``; ``boosted``, the share of them with DMA32 boosted, per run;
    ``episodes``, the runs of boosted points; the mean free pages (DMA and DMA32) at boosted
    points (``free_boosted``), at the others (``free_unboosted``) and at the first point after
    an episode ends (``free_after``); ``rises``, the points where the free pages rose by more
    than 300 since the point before, and ``rises_boosted``, those with DMA32 boosted at the
    point before."""

    points: int
    boosted: list[float]
    episodes: int
    free_boosted: float
    free_unboosted: float
    free_after: float
    rises: int
    rises_boosted: int


def boost_cycles(check: ReplayCheck) -> BoostCycles:
    """:class:`BoostCycles` of ``check``'s runs (the zones DMA and DMA32 first in
    ``zone_trace``, as ``/proc/zoneinfo`` lists them on x86_64)."""
    points = 0
    shares: list[float] = []
    boosted, unboosted, after = [], [], []
    episodes = rises = rises_boosted = 0
    for k in check.kernel:
        trace = [(p[0] + p[2], p[3] > 0) for p in k.zone_trace if len(p) >= 4]
        start = len(trace) * 5 // 16
        steady = trace[start:]
        if not steady:
            continue
        points += len(steady)
        shares.append(sum(b for _, b in steady) / len(steady))
        for j in range(max(start, 1), len(trace)):
            (free, b), (prev_free, prev_b) = trace[j], trace[j - 1]
            (boosted if b else unboosted).append(free)
            episodes += b and not prev_b
            if prev_b and not b:
                after.append(free)
            if free - prev_free > 300:
                rises += 1
                rises_boosted += prev_b
    return BoostCycles(
        points=points,
        boosted=shares,
        episodes=episodes,
        free_boosted=statistics.mean(boosted) if boosted else 0.0,
        free_unboosted=statistics.mean(unboosted) if unboosted else 0.0,
        free_after=statistics.mean(after) if after else 0.0,
        rises=rises,
        rises_boosted=rises_boosted,
    )


def has_lru_gen(k: KernelRun) -> bool:
    """Whether the run was recorded by an agent that reads the guest's lru_gen."""
    return bool(k.lru_gen_before and k.lru_gen_after and k.lru_gen_samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="saved checks with the lru_gen fields")
    ap.add_argument("--zones", action="store_true", help="the model with the guest's zones")
    ap.add_argument(
        "--zone-trace",
        action="store_true",
        help="the guest's DMA32 boost cycles instead (runs with a zone_trace)",
    )
    a = ap.parse_args()
    if a.zone_trace:
        print(
            "| file | points | DMA32 boosted (share per run) | boost episodes | free pages: "
            "boosted / not / first after an episode | rises > 300 (DMA32 boosted before) |"
        )
        print("|---|---|---|---|---|---|")
        for f in a.files:
            b = boost_cycles(ReplayCheck.from_dict(json.loads(f.read_text())[0]))
            if not b.points:
                continue
            shares = ", ".join(f"{x:.2f}" for x in b.boosted)
            print(
                f"| {f.stem} | {b.points} | {shares} | {b.episodes} | {b.free_boosted:.0f} / "
                f"{b.free_unboosted:.0f} / {b.free_after:.0f} | {b.rises} ({b.rises_boosted}) |"
            )
        return 0
    print(
        "| file | run | agings guest / model | free pages guest / model | generation pages "
        "guest / model | DMA32 boosted | majflt guest / model | pageoutrun guest / model |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for f in a.files:
        check = ReplayCheck.from_dict(json.loads(f.read_text())[0])
        if not all(has_lru_gen(k) for k in check.kernel):
            raise SystemExit(f"{f}: recorded without the guest's lru_gen (an older agent)")
        for t in turnover(check, a.zones):
            print(
                f"| {f.stem} | {t.run} | {t.agings[0]} / {t.agings[1]} | {t.free[0]:.0f} / "
                f"{t.free[1]:.0f} | {t.lru[0]:.0f} / {t.lru[1]:.0f} | {t.dma32_boosted} | "
                f"{t.majflt[0]} / {t.majflt[1]} | {t.pageoutrun[0]} / {t.pageoutrun[1]} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
