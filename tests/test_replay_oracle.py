"""The replay oracle (issue 18): trace generators, the agent's trace format and result lines,
the model's side with a guest's memory, the agent's replay on this machine's kernel, and one
small replay in a Linux 6.12 guest (marked ``vm``; skipped with the reason without assets)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import reclaim
import reclaim.vm.guest
from reclaim import tracegen
from reclaim.cli import main
from reclaim.crosscheck import replay as rp
from reclaim.trace import Trace
from reclaim.vm import assets, initramfs

# -- the trace generators ------------------------------------------------------------------


@pytest.mark.parametrize("name", tracegen.PATTERNS)
def test_every_pattern_is_seeded_in_range_and_first_touches_are_stores(name: str) -> None:
    t = tracegen.generate(name, 30_000, 3000, seed=4)
    assert len(t) == 30_000 and int(t.keys.max()) < 3000
    _, first = np.unique(t.keys, return_index=True)
    assert t.writes[first].all()
    later = np.ones(len(t), dtype=bool)
    later[first] = False
    assert 0.1 < t.writes[later].mean() < 0.4, "later accesses: a quarter stores"
    again = tracegen.generate(name, 30_000, 3000, seed=4)
    assert np.array_equal(t.keys, again.keys) and np.array_equal(t.writes, again.writes)
    other = tracegen.generate(name, 30_000, 3000, seed=5)
    assert name == "loop" or not np.array_equal(t.keys, other.keys)


def test_zipf_with_a_larger_exponent_concentrates_on_fewer_pages() -> None:
    def top_share(s: float) -> float:
        k = tracegen.zipf(50_000, 5000, s=s, seed=1).keys
        counts = np.sort(np.bincount(k.astype(np.int64)))[::-1]
        return float(counts[:50].sum() / len(k))

    assert top_share(1.2) > top_share(0.9) + 0.1


def test_loop_is_sequential_and_hot_scan_scans_cold_pages_in_order() -> None:
    k = tracegen.loop(2500, 1000).keys.astype(np.int64)
    assert np.array_equal(k[:1000], np.arange(1000)) and k[1000] == 0
    h = tracegen.hot_scan(30_000, 1000, hot=0.2, period=5000, scan=0.25).keys.astype(np.int64)
    assert (h[:5000] < 200).all(), "the hot set first"
    assert np.array_equal(h[5000:5250], np.arange(200, 450)), "then a scan of cold pages"


def test_phase_moves_the_working_set_to_other_pages() -> None:
    k = tracegen.phase(30_000, 3000, hot=0.3, phases=3).keys.astype(np.int64)
    sets = [set(k[i * 10_000 : (i + 1) * 10_000].tolist()) for i in range(3)]
    assert not sets[0] & sets[1] and not sets[1] & sets[2]


def test_an_unknown_pattern_or_empty_trace_is_an_argument_error() -> None:
    with pytest.raises(reclaim.ArgumentError, match="unknown trace pattern"):
        tracegen.generate("zipfy", 10, 10)
    with pytest.raises(reclaim.ArgumentError, match="requests >= 1"):
        tracegen.loop(0, 10)


# -- the agent's trace and its result lines ------------------------------------------------


def _trace(keys: list[int], writes: list[bool]) -> Trace:
    n = len(keys)
    return Trace("binary", np.array(keys, np.uint64), np.array(writes), np.zeros(n, np.uint64))


def test_the_agent_trace_is_little_endian_page_and_store_bit() -> None:
    data = rp.agent_trace(_trace([5, 0, 5, 70000], [True, False, False, True]))
    assert data[:4] == b"RPL1"
    pages, n = struct.unpack("<II", data[4:12])
    assert (pages, n) == (70001, 4)
    assert struct.unpack("<4I", data[12:]) == (11, 0, 10, 140001)
    with pytest.raises(reclaim.ArgumentError, match="below 2\\^31"):
        rp.agent_trace(_trace([1 << 31], [True]))


def test_the_agent_input_sets_page_cluster_then_replays_each_run() -> None:
    text = rp.replay_input("z", 2, page_cluster=3, shmem=True)
    assert text.splitlines() == [
        "swapdev /dev/vda",
        "sysctl vm/page-cluster 3",
        "replay z /z.rpl shmem 0",
        "replay z /z.rpl shmem 1",
    ]


def test_the_agent_traces_the_zones_during_a_run_only_when_asked() -> None:
    """Each point of the zones' trace reads /proc/zoneinfo in the replay loop, which takes the
    guest's time: the agent's input asks for it only with ``zone_trace``."""
    assert "zone_trace" not in rp.replay_input("z", 1, page_cluster=0, shmem=False)
    traced = rp.replay_input("z", 1, page_cluster=0, shmem=False, zone_trace=256)
    assert traced.splitlines()[:3] == [
        "swapdev /dev/vda",
        "sysctl vm/page-cluster 0",
        "zone_trace 256",
    ]


def test_the_agent_input_sets_watermark_boost_factor_only_when_asked() -> None:
    """0 turns off what the model lacks: boost_watermark (mm/page_alloc.c, 6.12) waking
    kswapd for one zone; by default the guest keeps the kernel's 15000."""
    assert "watermark_boost_factor" not in rp.replay_input("z", 1, page_cluster=0, shmem=False)
    text = rp.replay_input("z", 1, page_cluster=0, shmem=False, watermark_boost_factor=0)
    lines = text.splitlines()
    assert lines[1:3] == ["sysctl vm/page-cluster 0", "sysctl vm/watermark_boost_factor 0"]
    with pytest.raises(reclaim.ArgumentError, match="watermark_boost_factor is 0 or more"):
        rp.run_trace(_trace([0], [True]), "t", arch="x86_64", guest_memory_mib=96,
                     watermark_boost_factor=-1)  # fmt: skip


def _line(**over: object) -> dict[str, object]:
    line: dict[str, object] = {
        "kind": "replay",
        "run": 1,
        "ms": 900,
        "requests": 1000,
        "zoneinfo": [
            {"zone": "DMA", "free": 3000, "min": 10, "low": 12, "high": 14, "managed": 3800},
            {"zone": "DMA32", "free": 20000, "min": 200, "low": 250, "high": 300, "managed": 28000},
            {"zone": "Normal", "free": 0, "managed": 0},
        ],
        "meminfo": {
            "SwapTotal": 65532,
            "MemFree": 92000,
            "Inactive(anon)": 2000,
            "Active(file)": 400,
            "Unevictable": 800,
        },
        "vmstat_before": {"pswpin": 5, "pswpout": 7, "pgmajfault": 9, "workingset_restore_anon": 1},
        "vmstat_after": {
            "pswpin": 105,
            "pswpout": 307,
            "pgmajfault": 110,
            "workingset_restore_anon": 4,
        },
        "rusage": {"minflt": 2000, "majflt": 100},
        "status": {"RssAnon": 40000, "RssShmem": 1000},
    }
    line.update(over)
    return line


def test_a_boosted_zone_gives_the_model_its_own_watermarks_without_the_boost() -> None:
    """zoneinfo prints wmark_pages(), _watermark[] plus watermark_boost (include/linux/mmzone.h,
    mm/vmstat.c zoneinfo_show_print, 6.12): a run that starts after a pageblock steal reads
    min/low/high a pageblock higher; the model gets the zone's watermarks and the boost apart."""
    zones = [
        {"zone": "DMA", "free": 3000, "boost": 512, "min": 522, "low": 524, "high": 526,
         "managed": 3800},
        {"zone": "DMA32", "free": 20000, "boost": 512, "min": 712, "low": 762, "high": 812,
         "managed": 28000},
    ]  # fmt: skip
    k = rp.parse_run(_line(zoneinfo=zones))
    assert (k.min, k.low, k.high, k.boost) == (210, 262, 314, 1024)
    gz = rp.guest_zones(k, k.held)
    assert gz is not None and gz[0][2:5] == (10, 12, 14) and gz[1][2:5] == (200, 250, 300)


def _saved_without(check: rp.ReplayCheck, *fields: str) -> rp.ReplayCheck:
    """``check`` as a build that did not yet write ``fields`` into its kernel runs saved it,
    loaded again."""
    d = check.to_dict()
    runs = d["kernel"]
    assert isinstance(runs, list)
    for run in runs:
        for f in fields:
            run.pop(f)
    return rp.ReplayCheck.from_dict(json.loads(json.dumps(d)))


def test_the_boost_of_a_run_saved_without_it_is_inferred_from_the_other_runs_of_its_boot() -> None:
    """Runs saved before the agent kept the boost: the runs of one check share a boot and its
    _watermark[], so a run whose marks are all higher by the same amount read them boosted."""
    plain, boosted = rp.parse_run(_line()), rp.parse_run(_line(run=2))
    boosted.min, boosted.low, boosted.high = 210 + 1024, 262 + 1024, 314 + 1024
    c = rp.ReplayCheck(trace="zipf0.9", arch="x86_64", guest_memory_mib=96, page_cluster=0,
                       lru_gen="off", shmem=False, pages=20_000, requests=200_000,
                       capacity=5_000, kernel=[boosted, plain], model={"majflt": 1},
                       reference={})  # fmt: skip
    again = _saved_without(c, "boost", "boost_inferred")
    first, second = again.kernel
    assert (first.min, first.low, first.high, first.boost) == (210, 262, 314, 1024)
    assert first.boost_inferred and not second.boost_inferred and second.boost == 0
    kept = rp.ReplayCheck.from_dict(json.loads(json.dumps(again.to_dict())))
    assert kept.kernel[0].min == 210 and kept.kernel[0].boost == 1024, "saved once, not twice"


def test_a_run_keeps_the_direct_reclaims_the_agent_timed_and_a_run_saved_before_has_none() -> None:
    """The agent times the process's direct reclaims by the kernel's tracepoints
    (``mm_vmscan_direct_reclaim_begin``/``_end``, ``mm_vmscan_throttled``; mm/vmscan.c
    6.12.117); a line without them (an older agent) parses, with none, and a check saved
    before the field existed loads."""
    timed = {"n": 3, "ns": 9_000_000, "n_none": 1, "ns_none": 1_000_000, "max_ns": 5_000_000,
             "reclaimed": 64, "throttled_noprogress": 0, "throttled_writeback": 0,
             "throttled_other": 0, "lost": 0}  # fmt: skip
    k = rp.parse_run(_line(direct_reclaim=timed))
    assert k.direct_reclaim == timed
    assert rp.parse_run(_line()).direct_reclaim == {}
    c = rp.ReplayCheck(trace="loop", arch="x86_64", guest_memory_mib=96, page_cluster=0,
                       lru_gen="off", shmem=False, pages=20_000, requests=1000, capacity=5_000,
                       kernel=[k], model={}, reference={})  # fmt: skip
    assert _saved_without(c, "direct_reclaim").kernel[0].direct_reclaim == {}
    # the guest time of one, at the fit's speed: the run's ns over its clock scale
    scale = rp.guest_clock_scale("x86_64", 1000, k)
    assert scale is not None
    n, ns = rp.measure_direct_reclaim([c])["x86_64"]
    assert n == 3 and ns == pytest.approx(3_000_000 / scale)
    assert rp.measure_direct_reclaim([_saved_without(c, "direct_reclaim")]) == {}


def test_a_replay_line_sums_the_populated_zones_and_takes_differences() -> None:
    k = rp.parse_run(_line())
    assert (k.managed, k.free, k.held) == (31800, 23000, 8800)
    assert (k.min, k.low, k.high, k.swap_kib) == (210, 262, 314, 65532)
    assert k.counters["pswpin"] == 100 and k.counters["pswpout"] == 300
    assert k.counters["workingset_restore_anon"] == 3
    assert (k.counters["majflt"], k.counters["minflt"]) == (100, 2000)
    assert k.resident == 10000, "RssAnon in pages"
    assert k.evictable == 600, "the LRU lists' pages, not the unevictable (locked) ones"
    # shmem: the resident mapping is RssShmem less the locked trace file (12 + 4 * 1000 bytes)
    assert rp.parse_run(_line(), shmem=True).resident == (1000 - 4) // 4
    with pytest.raises(rp.ReplayOracleError, match="no populated zone"):
        rp.parse_run(_line(zoneinfo=[]))


def test_a_replay_line_says_whether_the_agent_locked_its_own_pages() -> None:
    """The agent locks its process's pages but the trace's (mlockall(MCL_CURRENT)) so that its
    major faults are the trace's; a run saved before it did reads as not locked."""
    assert rp.parse_run(_line(self_locked=1)).self_locked
    assert not rp.parse_run(_line()).self_locked
    old = rp.ReplayCheck(trace="phase", arch="s390x", guest_memory_mib=72, page_cluster=0,
                         lru_gen="off", shmem=False, pages=18_000, requests=200_000,
                         capacity=8_000, kernel=[rp.parse_run(_line())], model={"majflt": 0},
                         reference={})  # fmt: skip
    assert not _saved_without(old, "self_locked").kernel[0].self_locked


def test_a_replay_line_keeps_what_the_guest_kernel_took_during_the_run() -> None:
    """The agent reads meminfo, zoneinfo and slabinfo again after the run and samples the zones:
    the run keeps PageTables' growth (``__pte_alloc``), each slab cache's growth in pages (the
    swap cache's ``radix_tree_node``) and per sample each zone's [free, pcp]; a line from an
    older agent leaves them empty."""
    k = rp.parse_run(
        _line(
            meminfo_after={"PageTables": 308, "SReclaimable": 876, "SwapCached": 1188, "Foo": 1},
            zoneinfo_after=[{"zone": "DMA", "free": 110, "pcp": 11, "managed": 3800}],
            slab_before={"radix_tree_node": 40, "bio-192": 2, "gone": 4},
            slab_after={"radix_tree_node": 106, "bio-192": 2, "kmalloc-2k": 4},
            samples=[[[76, 32], [419, 8]], [[399, 13], [112, 41]]],
        )
    )
    assert k.meminfo_after == {"PageTables": 308, "SReclaimable": 876, "SwapCached": 1188}
    assert k.zones_after[0]["free"] == 110
    assert k.slab_growth == {"radix_tree_node": 66, "kmalloc-2k": 4, "gone": -4}
    assert k.samples == [[[76, 32], [419, 8]], [[399, 13], [112, 41]]]
    old = rp.parse_run(_line())
    assert (old.meminfo_after, old.zones_after, old.slab_growth, old.samples) == ({}, [], {}, [])
    assert rp.parse_run(_line(samples=[[[1, 2, 3, 4]]])).samples == [], "malformed: dropped"
    assert rp.parse_run(_line(samples=[[[1, 2, 3], [4, 5]]])).samples == [], "mixed: dropped"


def test_a_replay_line_keeps_the_zones_boost_and_mglrus_generations_at_each_sample() -> None:
    """An agent that samples ``watermark_boost`` with the free pages (``[free, pcp, boost]``),
    traces both every 256th request (``zone_trace``) and, with MGLRU, reads debugfs'
    ``lru_gen_full`` before and after the run and ``lru_gen`` at each sample: the run keeps
    them, the generations readable by :func:`reclaim.crosscheck.replay.lru_gen_generations`
    (``lru_gen_seq_show``, mm/vmscan.c 6.12); a line from an older agent leaves them empty."""
    full = (
        "memcg     1 /\n node     0\n"
        "          4        852          0x          0x\n"
        "                     0          0x          0x          0x"
        "          0x          0x          0x\n"
        "                                0x          0x          0x          0x\n"
        "          5        824       3877           0 \n"
        "                     0          0r       3960e          0p"
        "          0r          0e          0p\n"
        "          7        428       3730           0 \n"
        "                            32247T      13490Y         68F         39A\n"
    )
    short = "memcg     1 /\n node     0\n          5        776       4762           0 \n"
    k = rp.parse_run(
        _line(
            samples=[[[76, 32, 0], [419, 8, 512]], [[399, 13, 0], [112, 41, 0]]],
            lru_gen_before=short,
            lru_gen_after=full,
            lru_gen_samples=[short, short],
            zone_trace=[[76, 0, 419, 512], [399, 0, 112, 0]],
        )
    )
    assert k.zone_trace == [[76, 0, 419, 512], [399, 0, 112, 0]]
    assert k.samples == [[[76, 32], [419, 8]], [[399, 13], [112, 41]]]
    assert k.sample_boosts == [[0, 512], [0, 0]]
    gens = rp.lru_gen_generations(k.lru_gen_after)
    assert [(g.seq, g.anon, g.anon_evicted) for g in gens] == [
        (4, 0, True),
        (5, 3877, False),
        (7, 3730, False),
    ]
    assert rp.lru_gen_generations(k.lru_gen_samples[0]) == [rp.LruGen(5, 776, 4762, 0)]
    old = rp.parse_run(_line(samples=[[[76, 32]]]))
    assert (old.sample_boosts, old.lru_gen_before, old.lru_gen_after, old.lru_gen_samples) == (
        [],
        "",
        "",
        [],
    )
    assert old.zone_trace == []
    assert rp.lru_gen_generations("") == []


def test_the_oracle_takes_the_page_tables_out_of_an_x86_64_guests_memory(tmp_path: Path) -> None:
    """The guest's ``__pte_alloc`` → ``pte_alloc_one`` (include/asm-generic/pgalloc.h, 6.12)
    takes a page of the zone for each 2 MiB of the mapping it touches: with
    ``pgtable_pages`` (the oracle's default) the model has that much less free memory."""
    path = tmp_path / "t.bin"
    keys = np.arange(0, 4096, 8, dtype=np.uint64)
    reclaim.trace.write(path, keys, np.ones(len(keys), dtype=np.bool_), format="binary")

    def free(on: bool) -> int:
        r = reclaim.trace.replay(path, profile="6.12", arch="x86_64", memory="64MiB",
                                 as_recorded=True, pgtable_pages=on)  # fmt: skip
        return int(r.vmstat["nr_free_pages"])

    # 4096 pages span 8 PTE tables (and their upper tables)
    assert free(False) - free(True) >= 8
    assert reclaim.vm.guest.PGTABLE_PAGES, "the oracle takes them"


def test_a_replay_line_counts_the_tmpfs_pages_on_the_lru() -> None:
    """The guest's initramfs is a tmpfs: its pages are NR_SHMEM (meminfo's Shmem) on the anon
    LRU lists; the locked trace file (also shmem) is on the unevictable list."""
    mem = {"Shmem": 2400 + 800, "Unevictable": 800, "Active(anon)": 1800, "Inactive(anon)": 600}
    k = rp.parse_run(_line(meminfo=mem))
    assert (k.evictable, k.tmpfs, k.tmpfs_active) == (600, 600, 450)
    assert rp.parse_run(_line()).tmpfs == 0, "a line without Shmem: no tmpfs pages"


def test_a_run_saved_before_tmpfs_was_kept_reads_as_before(tmp_path: Path) -> None:
    """Saved checks (``--json``) from before ``tmpfs``: they read back, the tmpfs pages
    taken from their meminfo; without ``Shmem`` there none, and the model counts the guest's
    LRU pages free, as it did then."""
    mem = {"Shmem": 2400 + 800, "Unevictable": 800, "Active(anon)": 1800, "Inactive(anon)": 600}
    runs = [rp.parse_run(_line()), rp.parse_run(_line(meminfo=mem))]
    c = rp.ReplayCheck(trace="zipf0.9", arch="x86_64", guest_memory_mib=128, page_cluster=0,
                       lru_gen="off", shmem=False, pages=50_000, requests=200_000,
                       capacity=10_000, kernel=runs, model={"majflt": 1}, reference={})  # fmt: skip
    d = c.to_dict()
    for run in d["kernel"]:  # type: ignore[attr-defined]
        del run["tmpfs"], run["tmpfs_active"]
    again = rp.ReplayCheck.from_dict(json.loads(json.dumps(d)))
    assert (again.kernel[0].tmpfs, again.kernel[0].evictable) == (0, 600)
    assert (again.kernel[1].tmpfs, again.kernel[1].tmpfs_active) == (600, 450)
    t = tracegen.zipf(5000, 1000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    old = dataclasses.replace(_kernel_run(1500, 900), evictable=300)
    as_free = reclaim.trace.replay(p, arch="x86_64", memory=1501 * 4096, swap=32768 * 1024,
                                   as_recorded=True, guest=(600, 20, 25, 30), page_cluster=0,
                                   one_cpu=True)  # fmt: skip
    assert rp.model_counters(p, "x86_64", old)["majflt"] == as_free.major_faults


def test_pages_on_the_per_cpu_lists_count_as_free() -> None:
    """A freed order-0 page waits on its zone's per-cpu list (free_unref_page_commit,
    mm/page_alloc.c 6.12) outside "pages free" (NR_FREE_PAGES), and the next allocation takes
    it first (rmqueue_pcplist): the model's memory counts it free, not held by the guest."""
    zones = [
        {"zone": "DMA", "free": 3000, "pcp": 0, "min": 10, "low": 12, "high": 14, "managed": 3800},
        {"zone": "DMA32", "free": 20000, "pcp": 300, "min": 200, "low": 250, "high": 300,
         "managed": 28000},
    ]  # fmt: skip
    k = rp.parse_run(_line(zoneinfo=zones))
    assert (k.free, k.held) == (23300, 8500)
    assert rp.parse_run(_line()).held == 8800, "an agent without pcp: the free lists only"


def test_the_model_takes_the_guest_zones_their_reserve_and_the_dma_pageblocks() -> None:
    """zones=True gives the model the x86_64 guest's DMA and DMA32 (mm/page_alloc.c 6.12.117:
    the zonelist, lowmem_reserve, DMA's pageblocks by migratetype): each zone's held pages,
    DMA's reserve from zoneinfo's protection and its blocks from /proc/pagetypeinfo; a saved
    check keeps the first run's zones."""
    zones = [
        {"zone": "DMA", "free": 3808, "pcp": 0, "min": 64, "low": 80, "high": 96,
         "managed": 3840, "protection": [0, 28, 28, 28, 28]},
        {"zone": "DMA32", "free": 4506, "pcp": 300, "min": 168, "low": 210, "high": 252,
         "managed": 10077, "protection": [0, 0, 0, 0, 0]},
    ]  # fmt: skip
    pti = {
        "free": [{"zone": "DMA", "type": "Unmovable", "pages": 224},
                 {"zone": "DMA", "type": "Movable", "pages": 3584},
                 {"zone": "DMA32", "type": "Unmovable", "pages": 225}],
        "blocks": [{"zone": "DMA", "type": "Unmovable", "blocks": 1},
                   {"zone": "DMA", "type": "Movable", "blocks": 7},
                   {"zone": "DMA32", "type": "Unmovable", "blocks": 9}],
    }  # fmt: skip
    k = rp.parse_run(_line(zoneinfo=zones, pagetypeinfo=pti))
    held = k.held - 40  # the guest's LRU pages count free
    dma, dma32, types, every = rp.guest_zones(k, held) or ((), (), None, -1)
    assert dma == (3840, 32, 64, 80, 96, 28)
    assert dma32 == (10077, held - 32, 168, 210, 252, 0)
    assert (types, every) == ((1, 0, 224, 0), 0)
    no_prot = rp.parse_run(_line(zoneinfo=[{k: v for k, v in z.items() if k != "protection"}
                                           for z in zones]))  # fmt: skip
    assert (rp.guest_zones(no_prot, no_prot.held) or ((0,) * 6,))[0][5] == 10077 // 256
    assert rp.guest_zones(rp.parse_run(_line()), 0) is not None
    one = [{"zone": "DMA", "free": 3000, "min": 1, "low": 2, "high": 3, "managed": 30000}]
    assert rp.guest_zones(rp.parse_run(_line(zoneinfo=one)), 0) is None, "s390x: one zone"
    c = rp.ReplayCheck("t", "x86_64", 96, 0, "off", False, 1, 1, 1, [k], {}, {})
    back = rp.ReplayCheck.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back.kernel[0].zones == k.zones and back.kernel[0].pagetypeinfo == pti


def _loop_with_and_without_the_guest_zones(
    tmp_path: Path, profile: str
) -> tuple[reclaim.trace.ReplayResult, reclaim.trace.ReplayResult]:
    """A loop over 4,000 pages in 3,305 pages of an x86_64 one-CPU guest, replayed with the
    guest's zones (DMA 2,304 pages with a held unmovable pageblock, DMA32 1,000) and with one."""
    t = tracegen.generate("loop", 40_000, 4_000)
    path = tmp_path / "loop.bin"
    reclaim.trace.write(path, t.keys, t.writes, format="binary")
    dma = (2304, 32, 16, 20, 24, 4)
    dma32 = (1000, 0, 10, 12, 14, 0)
    kw: dict[str, object] = dict(profile=profile, arch="x86_64", memory=3305 * 4096,
                                 as_recorded=True, one_cpu=True)  # fmt: skip
    zoned = reclaim.trace.replay(path, guest_zones=(dma, dma32, None, 0), **kw)  # type: ignore[arg-type]
    return zoned, reclaim.trace.replay(path, **kw)  # type: ignore[arg-type]


def test_a_replay_with_the_guest_zones_boosts_dma_and_skips_dma32_folios(tmp_path: Path) -> None:
    """replay(guest_zones=...): a loop over more pages than memory drains DMA's movable
    pageblocks again and again; each fallback into the guest's unmovable block boosts the
    zone (try_to_steal_block, boost_watermark, mm/page_alloc.c 6.12.117) and kswapd's run for
    ZONE_DMA passes over the DMA32 folios (isolate_lru_folios, PGSCAN_SKIP). The same replay
    with one zone has neither."""
    zoned, one = _loop_with_and_without_the_guest_zones(tmp_path, "6.12")
    assert zoned.vmstat["model_watermark_boosts"] >= 2
    assert zoned.vmstat["pgskip_dma32"] > 0 and zoned.vmstat["compact_daemon_wake"] > 0
    assert "pgskip_dma32" not in one.vmstat
    assert zoned.major_faults != one.major_faults, "DMA's pages reclaimed out of LRU order"


def test_the_zones_per_cpu_lists_hold_pages_the_watermarks_do_not_count(
    tmp_path: Path,
) -> None:
    """replay(pcp_lists=True) gives the guest's zones the per-cpu lists of its one CPU
    (rmqueue_pcplist, free_unref_page_commit, mm/page_alloc.c 6.12.117): the loop's pages pass
    through them, a few dozen at a time on average, and the run differs from the one without;
    without the zones the one zone has its own lists (every populated zone has a pageset,
    zone_pcp_init), which change the run as well."""
    t = tracegen.generate("loop", 40_000, 4_000)
    path = tmp_path / "loop.bin"
    reclaim.trace.write(path, t.keys, t.writes, format="binary")
    zones = ((2304, 32, 16, 20, 24, 4), (1000, 0, 10, 12, 14, 0), None, 0)
    kw: dict[str, object] = dict(arch="x86_64", memory=3305 * 4096, as_recorded=True,
                                 one_cpu=True, guest_zones=zones)  # fmt: skip
    on = reclaim.trace.replay(path, pcp_lists=True, **kw)  # type: ignore[arg-type]
    off = reclaim.trace.replay(path, **kw)  # type: ignore[arg-type]
    assert on.pcp_pages_mean is not None and 1 < on.pcp_pages_mean < 100
    assert off.pcp_pages_mean is None
    assert on.log_hash != off.log_hash
    del kw["guest_zones"]
    one_on = reclaim.trace.replay(path, pcp_lists=True, **kw)  # type: ignore[arg-type]
    one_off = reclaim.trace.replay(path, **kw)  # type: ignore[arg-type]
    assert one_on.pcp_pages_mean is not None and 1 < one_on.pcp_pages_mean < 100
    assert one_off.pcp_pages_mean is None
    assert one_on.log_hash != one_off.log_hash


def test_mglru_with_the_guest_zones_moves_dma32_pages_on_instead_of_skipping_them(
    tmp_path: Path,
) -> None:
    """The same loop with MGLRU ("6.12-debian"): the generations keep a list per zone, and
    kswapd's run for the boosted ZONE_DMA walks DMA's list first and moves each DMA32 page it
    meets to the next generation ("ineligible" in sort_folio, a PGREFILL; scan_folios,
    mm/vmscan.c 6.12.117) instead of passing over it (no PGSCAN_SKIP: MGLRU counts only
    isolation failures there). With one zone MGLRU sorts nothing in this loop."""
    zoned, one = _loop_with_and_without_the_guest_zones(tmp_path, "6.12-debian")
    assert zoned.vmstat["model_watermark_boosts"] >= 2 and zoned.vmstat["compact_daemon_wake"] > 0
    assert zoned.vmstat["pgskip_dma32"] == 0
    assert zoned.vmstat["pgrefill"] > one.vmstat.get("pgrefill", 0)
    assert zoned.major_faults != one.major_faults


def test_a_replay_line_keeps_the_counters_of_reclaim_for_one_zone() -> None:
    """kswapd woken for the DMA zone only (a boosted zone: rmqueue's wakeup_kswapd with
    zone_idx, mm/page_alloc.c 6.12) passes over the DMA32 folios and counts them both as
    scanned and as skipped (isolate_lru_folios, mm/vmscan.c 6.12): the oracle keeps both."""
    before = {"pgscan_kswapd": 10, "pgskip_dma32": 4, "compact_daemon_wake": 1}
    after = {"pgscan_kswapd": 110, "pgskip_dma32": 64, "compact_daemon_wake": 3}
    k = rp.parse_run(_line(vmstat_before=before, vmstat_after=after))
    assert (k.counters["pgscan_kswapd"], k.counters["pgskip_dma32"]) == (100, 60)
    assert k.counters["compact_daemon_wake"] == 2 and k.counters["pgskip_dma"] == 0


def test_a_check_survives_its_json_and_tables_and_plots(tmp_path: Path) -> None:
    k = rp.parse_run(_line())
    c = rp.ReplayCheck(trace="zipf0.9", arch="x86_64", guest_memory_mib=128, page_cluster=0,
                       lru_gen="off", shmem=False, pages=50_000, requests=200_000,
                       capacity=10_000, kernel=[k, k], model={**k.counters, "majflt": 110},
                       reference={"LRU": 90})  # fmt: skip
    again = rp.ReplayCheck.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again.kernel_majflt() == (100, 100, 100) and again.model["majflt"] == 110
    table = rp.format_table([again])
    assert "| 100 (100-100) | 110 (110-110) | +10.0% | 90 (-10.0%) | - | - | - |" in table
    unboosted = dataclasses.replace(c, watermark_boost_factor=0)
    back = rp.ReplayCheck.from_dict(json.loads(json.dumps(unboosted.to_dict())))
    assert back.watermark_boost_factor == 0 and again.watermark_boost_factor is None
    assert "| zipf0.9 (boost 0) | x86_64 |" in rp.format_table([back])
    pytest.importorskip("matplotlib")
    assert rp.plot([again], tmp_path / "p.png").stat().st_size > 1000
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps([c.to_dict()]))
    png = tmp_path / "cli.png"
    assert main(["crosscheck", "--results", str(saved), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_the_model_is_compared_by_its_median_over_the_runs_memories_with_the_kernels_spread() -> (
    None
):
    """Each kernel run starts from other free memory; the model runs on each run's and the two
    medians are compared, within the tolerance or the kernel's own spread."""
    runs = []
    for majflt in (90, 100, 130):
        k = rp.parse_run(_line())
        k.counters["majflt"] = majflt
        runs.append(k)
    c = rp.ReplayCheck(trace="zipf0.9", arch="x86_64", guest_memory_mib=128, page_cluster=0,
                       lru_gen="off", shmem=False, pages=50_000, requests=200_000,
                       capacity=10_000, kernel=runs, model={"majflt": 150},
                       model_runs=[{"majflt": 150}, {"majflt": 120}, {"majflt": 104}],
                       reference={})  # fmt: skip
    assert c.kernel_majflt() == (100, 90, 130) and c.model_majflt() == (120, 104, 150)
    assert c.agrees(0.05), "120 is inside the kernel's 90-130 although 20% off its median"
    assert not dataclasses.replace(c, model_runs=[{"majflt": 140}] * 3).agrees(0.05)
    assert dataclasses.replace(c, model_runs=[{"majflt": 96}] * 3).agrees(0.05)
    assert dataclasses.replace(c, model_runs=[]).model_majflt() == (150, 150, 150)
    again = rp.ReplayCheck.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again.model_runs == c.model_runs
    assert "| 120 (104-150) | +20.0% |" in rp.format_table([again])


# -- the model's side ---------------------------------------------------------------------


def _kernel_run(managed: int, held: int) -> rp.KernelRun:
    return rp.KernelRun(run=0, ms=0, managed=managed, free=managed - held, held=held, min=20,
                        low=25, high=30, swap_kib=32768, resident=0, counters={})  # fmt: skip


def test_the_model_with_more_pages_held_by_the_guest_faults_more(tmp_path: Path) -> None:
    t = tracegen.zipf(20_000, 2000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    roomy = rp.model_counters(p, "x86_64", _kernel_run(2000, 600))
    tight = rp.model_counters(p, "x86_64", _kernel_run(2000, 1200))
    assert tight["majflt"] > roomy["majflt"] > 0
    assert tight["pswpout"] > 0 and tight["pswpin"] > 0
    assert tight["resident"] < 2000 - 1200


def test_the_model_of_a_one_cpu_guest_reclaims_directly_as_the_guest_does(tmp_path: Path) -> None:
    """The guests run -smp 1 (reclaim.vm.guest.CPUS): kswapd gets the CPU only while the
    process sleeps on a swap read, so the process reclaims directly (try_to_free_pages from
    __alloc_pages_slowpath, mm/page_alloc.c v6.12) when it outruns kswapd, as the guests'
    pgscan_direct shows; the default replay runs kswapd after every access and never does."""
    from reclaim.vm.guest import CPUS, SWAP_IO, qemu_command

    assert CPUS == 1
    cmd = qemu_command("x86_64", Path("k"), Path("i"), Path("d"), 96, "tcg")
    assert cmd[cmd.index("-smp") + 1] == str(CPUS)
    t = tracegen.zipf(20_000, 2000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    m = rp.model_counters(p, "x86_64", _kernel_run(2000, 1000))
    assert m["pgscan_direct"] > 0 and m["pgscan_kswapd"] > 0
    assert m["pgsteal_direct"] + m["pgsteal_kswapd"] >= m["pswpout"] > 0

    def replay(one_cpu: bool) -> reclaim.trace.ReplayResult:
        return reclaim.trace.replay(
            p,
            memory=2001 * 4096,
            swap=32768 * 1024,  # the run's SwapTotal, as the oracle gives it
            arch="x86_64",
            as_recorded=True,
            guest=(1000, 20, 25, 30),
            page_cluster=0,
            one_cpu=one_cpu,
            x86_tlb=reclaim.vm.guest.TLB,
            swap_io=SWAP_IO,
            memcg_stats=reclaim.vm.guest.MEMCG_STATS,
            pgtable_pages=reclaim.vm.guest.PGTABLE_PAGES,
            swap_cache_nodes=reclaim.vm.guest.SWAP_CACHE_NODES,
            # the oracle's one-zone lists with one CPU; the default replay has none
            pcp_lists=one_cpu and reclaim.vm.guest.PCP_LISTS_ONE_ZONE,
        )

    other_cpu = replay(False)
    assert other_cpu.vmstat["pgscan_direct"] == other_cpu.vmstat["allocstall_normal"] == 0
    one_cpu = replay(True)
    assert one_cpu.vmstat["allocstall_normal"] > 0
    assert one_cpu.vmstat["pgscan_direct"] == m["pgscan_direct"]


def test_the_model_runs_the_mglru_of_the_guests_stable_release() -> None:
    # Debian's 6.12.107 (the s390x guests) predates the stable update 6.12.114, which brought
    # "mm/mglru: reset page lru tier bits when activating" (lru_gen_add_folio, mm_inline.h)
    assert rp.model_profile("on", "6.12.107+deb13-s390x") == "6.12.107-debian"
    assert rp.model_profile("on", "6.12.117+deb13-cloud-amd64") == "6.12-debian"
    assert rp.model_profile("on", None) == "6.12-debian"
    assert rp.model_profile("off", "6.12.107+deb13-s390x") == "6.12"
    old = reclaim.Profile("6.12.107-debian", "s390x")
    # and the other two MGLRU backports of 6.12.114 (sort_folio / evict_folios / isolate_folio,
    # mm/vmscan.c): the audit of 6.12.107's source found no other difference the model uses
    backports = (
        "lru_gen_activate_resets_refs",
        "lru_gen_writeback_reactivates",
        "lru_gen_sort_lets_unevictable_through",
    )
    assert reclaim.VARIANTS["6.12.107-debian"]["switches"] == {
        "lru_gen": True,
        **dict.fromkeys(backports, False),
    }
    new = reclaim.Profile("6.12-debian", "s390x")
    assert old.diff(new) == dict.fromkeys(backports, (False, True))


def test_the_model_runs_mglru_when_the_guest_had_lru_gen_on(tmp_path: Path) -> None:
    from reclaim.vm.guest import SWAP_IO

    # the guest's /init writes lru_gen/enabled 7 (on) or 0: the model's profile must follow,
    # "6.12-debian" (MGLRU) or "6.12" (the classic lists)
    t = tracegen.zipf(20_000, 2000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    k = _kernel_run(2000, 1200)
    on = rp.model_counters(p, "x86_64", k, lru_gen="on")
    off = rp.model_counters(p, "x86_64", k)
    guest = (max(0, k.held - k.evictable), k.min, k.low, k.high)
    # the guest's virtio-blk swap disk, with MGLRU as with the classic lists
    for counters, profile, io in ((on, "6.12-debian", SWAP_IO), (off, "6.12", SWAP_IO)):
        r = reclaim.trace.replay(
            p,
            profile=profile,
            arch="x86_64",
            memory=2001 * 4096,
            swap=32768 * 1024,
            as_recorded=True,
            guest=guest,
            page_cluster=0,
            one_cpu=True,
            x86_tlb=reclaim.vm.guest.TLB,
            swap_io=io,
            memcg_stats=reclaim.vm.guest.MEMCG_STATS,
            pgtable_pages=reclaim.vm.guest.PGTABLE_PAGES,
            swap_cache_nodes=reclaim.vm.guest.SWAP_CACHE_NODES,
            pcp_lists=reclaim.vm.guest.PCP_LISTS_ONE_ZONE,
        )
        assert counters["majflt"] == r.vmstat["pgmajfault"] > 0, profile
        assert counters["pgscan_kswapd"] == r.vmstat["pgscan_kswapd"], profile
    assert on != off


def test_the_model_holds_the_guests_tmpfs_pages_as_shmem_and_swaps_them_out(
    tmp_path: Path,
) -> None:
    """The guest's initramfs tmpfs pages are unmapped shmem pages on its anon LRU, older than
    the process's: under pressure shrink_folio_list writes them to swap (shmem_writepage,
    mm/shmem.c 6.12) before the process's pages, and NR_SHMEM falls, as the guests' runs show
    (nr_shmem 941 -> 215). The model of the guest holds them the same way."""
    t = tracegen.zipf(20_000, 2000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    base = dict(arch="x86_64", memory=3001 * 4096, swap=32768 * 1024, as_recorded=True,
                guest=(800, 20, 25, 30), page_cluster=0, one_cpu=True)  # fmt: skip
    idle = reclaim.trace.replay(p, limit=1, guest_tmpfs=(700, 500), **base)  # type: ignore[arg-type]
    assert idle.vmstat["nr_shmem"] == 700
    assert idle.vmstat["nr_active_anon"] >= 500 and idle.vmstat["nr_inactive_anon"] >= 200
    assert idle.vmstat["pgactivate"] == 0, "placed on the active list, not activated"
    # inactive, they are the oldest pages on the inactive anon list: reclaim takes them first
    held = reclaim.trace.replay(p, guest_tmpfs=(700, 0), **base)  # type: ignore[arg-type]
    assert held.vmstat["nr_shmem"] < 700 // 2, "reclaim swapped most tmpfs pages out"
    assert held.pages_swapped_out >= 700 - held.vmstat["nr_shmem"]
    # the swapped tmpfs pages leave the process more memory than the same pages reserved
    reserved = reclaim.trace.replay(p, **{**base, "guest": (1500, 20, 25, 30)})  # type: ignore[arg-type]
    assert held.resident_pages > reserved.resident_pages
    assert held.major_faults < reserved.major_faults
    k = dataclasses.replace(_kernel_run(3000, 1500), evictable=700, tmpfs=700, tmpfs_active=0)
    # the replays above use the synchronous device, no TLB, no per-cpu lists: like with like
    m = rp.model_counters(
        p, "x86_64", k, tmpfs_on_lru=True, swap_io="synchronous", x86_tlb=None, pcp_lists=False
    )
    assert m["majflt"] == held.major_faults and m["pswpout"] == held.vmstat["pswpout"]
    with pytest.raises(reclaim.ReclaimError, match="tmpfs"):
        reclaim.trace.replay(p, guest_tmpfs=(700, 701), **base)  # type: ignore[arg-type]


def test_the_zoned_model_keeps_the_guests_active_tmpfs_pages_as_the_guest_did(
    tmp_path: Path,
) -> None:
    """A saved x86_64 zipf(1.2) run (Debian's 6.12.117, classic lists, 96 MiB) that never
    scanned its active anon list (`pgrefill` 0: `shrink_list` runs `shrink_active_list` only
    with `may_deactivate`, mm/vmscan.c 6.12.117) kept the initramfs's ~720 active tmpfs pages, and
    its process had that much less memory. The oracle's zoned model holds them on its LRU by
    default (reclaim.vm.guest.TMPFS_ON_LRU), keeps the active ones too, and comes closer to
    the run's major faults than with them counted free; with one zone they count free."""
    from reclaim.vm.guest import TMPFS_ON_LRU

    data = Path(__file__).parent / "data" / "kernel-runs"
    saved = json.loads((data / "x86_64-classic-zipf1.2-96-pc0-200K.json").read_text())[0]
    c = rp.ReplayCheck.from_dict(saved)
    k = c.kernel[0]
    assert k.counters["pgrefill"] == 0 and k.tmpfs_active > 700, "the run kept them active"
    t = c.regenerate()
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    kw: dict[str, Any] = dict(page_cluster=0, requests=c.requests)
    default = rp.model_counters(p, "x86_64", k, **kw)
    free = rp.model_counters(p, "x86_64", k, tmpfs_on_lru=False, **kw)
    assert TMPFS_ON_LRU and default == rp.model_counters(p, "x86_64", k, tmpfs_on_lru=True, **kw)
    assert default["pgrefill"] == 0 and default["nr_shmem"] >= k.tmpfs_active
    assert default["resident"] < free["resident"], "the process has the tmpfs pages' memory less"
    kernel = k.counters["majflt"]
    assert abs(default["majflt"] - kernel) < abs(free["majflt"] - kernel)
    assert abs(default["majflt"] - kernel) <= 0.1 * kernel
    one = rp.model_counters(p, "x86_64", k, zones=False, **kw)
    assert "nr_shmem" not in one, "one zone: the tmpfs pages count free"


def test_the_model_offers_a_first_read_as_a_read_so_it_maps_the_zero_page(tmp_path: Path) -> None:
    p = tmp_path / "reads.bin"
    n = 5000
    reclaim.trace.write(p, np.arange(n, dtype=np.uint64) % 2500, np.zeros(n, bool), format="binary")
    m = rp.model_counters(p, "s390x", _kernel_run(1000, 200))
    assert (m["majflt"], m["pswpout"], m["resident"]) == (0, 0, 0)
    stored = reclaim.trace.replay(p, memory=1001 * 4096, arch="s390x")
    assert stored.major_faults > 0, "the default replay makes first touches stores"


def test_the_reference_counts_misses_beyond_the_compulsory_ones(tmp_path: Path) -> None:
    pytest.importorskip("libcachesim")
    t = tracegen.loop(10_000, 1000)
    small = rp.reference_misses(t, 500, tmp_path)
    assert set(small) == set(rp.POLICIES)
    assert small["LRU"] == 9000, "LRU misses every access of a loop larger than the cache"
    assert all(v == 0 for v in rp.reference_misses(t, 1000, tmp_path).values())


def test_a_guest_too_small_to_boot_is_refused_and_the_matrix_never_asks_for_one() -> None:
    t = tracegen.loop(100, 10)
    with pytest.raises(reclaim.ArgumentError, match="at least 80 MiB"):
        rp.run_trace(t, "t", arch="x86_64", guest_memory_mib=72)
    assert rp.guest_memory_for("x86_64", 8000, 0.25) == rp.MIN_MIB["x86_64"]
    assert rp.guest_memory_for("s390x", 20_000, 0.5) == rp.BASE_MIB["s390x"] + 40


def test_crosscheck_trace_needs_a_vm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, np.arange(10, dtype=np.uint64), format="binary")
    assert main(["crosscheck", "--trace", str(p)]) != 0
    assert "--trace needs --vm" in capsys.readouterr().err
    bad = ["crosscheck", "--trace", str(p), "--vm", "x86_64", "--guest-memory", "96MiB"]
    assert main([*bad, "--watermark-boost-factor", "-1"]) == 2
    assert "vm.watermark_boost_factor is 0 or more" in capsys.readouterr().err


# -- the agent on this machine's kernel ----------------------------------------------------


@pytest.mark.host
def test_the_agent_replays_a_trace_on_this_kernel(tmp_path: Path) -> None:
    """The C agent's replay (no swap, no QEMU): each access as recorded, the zones and the
    counters reported. A read-only half of the pages maps the zero page: no memory for them."""
    if os.uname().machine != "x86_64" or shutil.which("gcc") is None:
        pytest.skip("the host agent is built with gcc for x86_64")
    try:
        agent = assets.build_agent("x86_64")[0]
    except assets.VmAssetError as e:
        pytest.skip(f"the agent cannot be built here: {e}")
    pages = 400
    keys = np.concatenate([np.arange(pages), np.arange(pages)]).astype(np.uint64)
    writes = np.concatenate([np.arange(pages) < pages // 2, np.zeros(pages, bool)])
    (tmp_path / "t.rpl").write_bytes(rp.agent_trace(Trace("binary", keys, writes, keys * 0)))
    text = f"swapdev none\nreplay t {tmp_path / 't.rpl'} anon 0\n"
    r = subprocess.run([str(agent), "run", "/dev/stdin"], input=text, capture_output=True,
                       text=True, timeout=120, check=True)  # fmt: skip
    lines = [json.loads(s[len(initramfs.RESULT) :]) for s in r.stdout.splitlines()
             if s.startswith(initramfs.RESULT)]  # fmt: skip
    (obj,) = [o for o in lines if o.get("kind") == "replay"]
    end = [o for o in lines if o.get("kind") == "replay_end"]
    assert end and end[0]["status"] == 0
    k = rp.parse_run(obj)
    assert k.managed > k.free > 0 and k.min <= k.low <= k.high
    assert all(isinstance(z.get("pcp"), int) for z in obj["zoneinfo"]), "per-cpu list pages"
    assert all(isinstance(z.get("protection"), list) for z in obj["zoneinfo"]), "lowmem_reserve"
    if os.access("/proc/pagetypeinfo", os.R_OK):
        # /proc/pagetypeinfo: per zone and migratetype, the free pages and the pageblocks
        blocks = k.pagetypeinfo["blocks"]
        assert isinstance(blocks, list) and {b["type"] for b in blocks} >= {"Unmovable", "Movable"}
        free = k.pagetypeinfo["free"]
        assert isinstance(free, list) and {f["zone"] for f in free} >= {b["zone"] for b in blocks}
    assert k.counters["minflt"] >= pages, "every page faults once"
    assert pages // 2 <= k.resident <= pages // 2 + 64, "the read-only half takes no memory"


# -- in a guest -----------------------------------------------------------------------------


@pytest.mark.vm
def test_a_small_trace_replays_in_the_x86_64_guest_under_pressure() -> None:
    """Boot once (about a minute with TCG): a zipf trace larger than the guest's free memory
    swaps in the kernel and in the model; the reference has every policy."""
    try:
        assets.fetch(["x86_64"])
    except assets.VmAssetError as e:
        pytest.skip(f"the VM assets cannot be had here: {e}")
    t = tracegen.zipf(40_000, 12_000, s=0.9, seed=0)
    c = rp.run_trace(t, "zipf", arch="x86_64", guest_memory_mib=80, runs=1)
    assert str(c.guest.get("release", "")).startswith("6.12."), c.guest
    (k,) = c.kernel
    assert k.counters["majflt"] > 0 and k.counters["pswpout"] > 0
    assert 0 < c.capacity < c.pages
    assert c.model["majflt"] > 0
    sysctl = c.guest["sysctl"]
    assert isinstance(sysctl, list) and all(s.get("ok") for s in sysctl), "page-cluster set"
    if rp.reference_misses(t, 10, Path("/tmp")):
        assert set(c.reference) == set(rp.POLICIES)


def test_the_x86_model_of_a_guest_goes_through_the_tcg_tlb_and_the_default_replay_does_not(
    tmp_path: Path,
) -> None:
    # x86 clears accessed bits without a TLB flush (arch/x86/mm/pgtable.c
    # ptep_clear_flush_young, 6.12) and QEMU's TCG TLB sets A only on a page walk
    # (accel/tcg/cputlb.c, 7.2): the model of an x86_64 guest replays through that TLB; a plain
    # replay keeps every access setting A unless asked
    t = tracegen.generate("hot_scan", 30_000, 3000)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    k = _kernel_run(3000, 1500)
    m = rp.model_counters(p, "x86_64", k, lru_gen="on")
    common = dict(
        profile="6.12-debian",
        arch="x86_64",
        memory=3001 * 4096,
        swap=32768 * 1024,
        as_recorded=True,
        guest=(max(0, k.held - k.evictable), k.min, k.low, k.high),
        page_cluster=0,
        one_cpu=True,
        swap_io=reclaim.vm.guest.SWAP_IO,
        pgtable_pages=reclaim.vm.guest.PGTABLE_PAGES,
        swap_cache_nodes=reclaim.vm.guest.SWAP_CACHE_NODES,
        pcp_lists=reclaim.vm.guest.PCP_LISTS_ONE_ZONE,
    )
    with_tlb = reclaim.trace.replay(p, x86_tlb="qemu-tcg-7.2", **common)  # type: ignore[arg-type]
    plain = reclaim.trace.replay(p, **common)  # type: ignore[arg-type]
    assert m["pgscan_kswapd"] == with_tlb.vmstat["pgscan_kswapd"]
    assert m["majflt"] == with_tlb.vmstat["pgmajfault"]
    assert plain.vmstat == reclaim.trace.replay(p, x86_tlb=None, **common).vmstat  # type: ignore[arg-type]
    off = rp.model_counters(p, "x86_64", k, lru_gen="on", x86_tlb=None)
    assert off["majflt"] == plain.vmstat["pgmajfault"]


def test_the_tlb_model_is_refused_on_s390_and_by_an_unknown_name(tmp_path: Path) -> None:
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, np.arange(100, dtype=np.uint64), np.ones(100, bool), format="binary")
    with pytest.raises(reclaim.ReclaimError, match="x86_64"):
        reclaim.trace.replay(p, arch="s390x", x86_tlb="qemu-tcg-7.2")
    with pytest.raises(reclaim.ReclaimError, match=r"qemu-tcg-7\.2"):
        reclaim.trace.replay(p, arch="x86_64", x86_tlb="pentium")


# -- the guest clock ---------------------------------------------------------------------


def _timed_run(ms: int, minflt: int, majflt: int, pswpout: int, scanned: int) -> rp.KernelRun:
    k = _kernel_run(2000, 1000)
    k.ms = ms
    k.counters.update(minflt=minflt, majflt=majflt, pswpout=pswpout)
    k.counters.update(pgscan_kswapd=scanned, pgscan_direct=0)
    return k


def test_the_guest_clock_fit_recovers_the_costs_of_runs_it_explains() -> None:
    cost = (500.0, 3000.0, 200_000.0, 40_000.0, 1000.0)
    counts = [
        (20_000, 100, 50, 3000),
        (25_000, 9000, 8000, 40_000),
        (21_000, 50_000, 48_000, 300_000),
        (30_000, 2000, 2500, 12_000),
        (22_000, 15_000, 16_000, 90_000),
        (40_000, 700, 900, 5000),
    ]
    runs = []
    for i, (minflt, majflt, pswpout, scanned) in enumerate(counts):
        ns = 200_000 * cost[0] + minflt * cost[1] + majflt * cost[2]
        ns += pswpout * cost[3] + scanned * cost[4]
        runs.append(
            (f"run {i}", 200_000, _timed_run(round(ns / 1e6), minflt, majflt, pswpout, scanned))
        )
    fit = rp.fit_guest_clock(runs)
    assert fit.cost == pytest.approx(cost, rel=0.02)
    assert max(abs(r) for r in fit.residuals()) <= 1
    with pytest.raises(reclaim.ReclaimError, match="at least 5 kernel runs"):
        rp.fit_guest_clock(runs[:4])


def test_the_guest_clock_fit_does_not_count_the_direct_reclaims_twice() -> None:
    """The fitted costs are those of each run's ``ms`` less its direct reclaims' time (a timed
    run's measured ``direct_reclaim`` ns, an untimed run's ALLOCSTALL times the measured time
    of one at its speed), fitted and measured in turn to their fixed point: on runs made of
    known costs and a known time per direct reclaim, the fit gets both back and predicts each
    run's ``ms`` with all six terms."""
    cost = (500.0, 3000.0, 200_000.0, 40_000.0, 1000.0)
    dr_ns = 2_000_000.0
    counts = [
        (20_000, 100, 50, 3000, 40),
        (25_000, 9000, 8000, 40_000, 300),
        (21_000, 50_000, 48_000, 300_000, 2500),
        (30_000, 2000, 2500, 12_000, 0),
        (22_000, 15_000, 16_000, 90_000, 900),
        (40_000, 700, 900, 5000, 10),
        (26_000, 4000, 3000, 20_000, 600),
    ]
    runs = []
    for i, (minflt, majflt, pswpout, scanned, stalls) in enumerate(counts):
        ns = 200_000 * cost[0] + minflt * cost[1] + majflt * cost[2]
        ns += pswpout * cost[3] + scanned * cost[4] + stalls * dr_ns
        k = _timed_run(round(ns / 1e6), minflt, majflt, pswpout, scanned)
        k.counters.update(allocstall_movable=stalls)
        if i in (1, 2):  # the agent timed these two runs' direct reclaims
            k.direct_reclaim = {"n": stalls, "ns": round(stalls * dr_ns)}
        runs.append((f"run {i}", 200_000, k))
    fit = rp.fit_guest_clock(runs)
    assert fit.cost == pytest.approx(cost, rel=0.02)
    assert fit.direct_reclaim_ns == pytest.approx(dr_ns, rel=0.01)
    assert 2 < fit.rounds < rp.CLOCK_FIT_ROUNDS, "fit and measure turned to their fixed point"
    assert max(abs(r) for r in fit.residuals()) <= 1
    made = [c[4] * dr_ns / 1e6 for c in counts]
    assert fit.direct_reclaim_ms == pytest.approx(made, rel=0.01), "each run's share taken out"
    # fitted on the whole ms, the costs would hold the direct reclaims' time and the clock,
    # with the direct reclaims on top, would run ahead of the guests
    whole, _ = rp._fit_costs(runs, None, 0.0)
    ahead = [
        rp._clock_ns(whole, fit.direct_reclaim_ns, n, k.counters) / 1e6 - k.ms for _, n, k in runs
    ]
    assert min(ahead) > 0
    broken = dataclasses.replace(runs[1][2], direct_reclaim={"n": 1, "ns": 10**15})
    with pytest.raises(reclaim.ReclaimError, match=r"whole \d+ ms in direct reclaim"):
        rp.fit_guest_clock([*runs, ("broken", 200_000, broken)])


def test_the_oracle_scales_the_arch_clock_to_each_runs_own_duration() -> None:
    """The six terms of a run's guest clock (the arch's fitted costs and its direct reclaim's
    time, scaled to the run's speed) give back the run's own ``ms`` on its own counts."""
    fit = reclaim.vm.guest.GUEST_CLOCK["x86_64"]
    dr = reclaim.vm.guest.DIRECT_RECLAIM_NS["x86_64"]
    slow = _timed_run(20_000, 100, 5000, 6000, 70_000)
    slow.counters.update(allocstall_movable=300, allocstall_normal=20)
    fast = dataclasses.replace(slow, ms=10_000)
    c_slow = rp.guest_clock_for("x86_64", 200_000, slow)
    c_fast = rp.guest_clock_for("x86_64", 200_000, fast)
    assert c_slow is not None and c_fast is not None
    counts = (*rp.clock_counts(200_000, slow.counters), rp.allocstall(slow.counters))
    assert counts[5] == 320
    assert sum(c * n for c, n in zip(c_slow, counts, strict=True)) == pytest.approx(20e9)
    scale = rp.guest_clock_scale("x86_64", 200_000, slow)
    assert scale is not None and c_slow[5] * counts[5] == pytest.approx(320 * dr * scale)
    assert c_slow == pytest.approx(tuple(2 * c for c in c_fast))
    assert c_slow[2] / c_slow[5] == pytest.approx(fit[2] / dr)
    assert rp.guest_clock_for("riscv64", 200_000, slow) is None


def test_the_scheduler_tick_needs_one_cpu_and_a_guest_clock(tmp_path: Path) -> None:
    """kswapd by the tick (kernel/sched/fair.c v6.12, update_deadline at the tick after the
    process's slice) is a rule of one CPU on the guest's time: refused without either, with a
    sentence that names what is missing."""
    t = tracegen.zipf(2000, 500, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    clock = (1000.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(reclaim.ReclaimError, match="needs a guest clock"):
        reclaim.trace.replay(p, one_cpu=True, sched_tick=True)
    with pytest.raises(reclaim.ReclaimError, match="one_cpu"):
        reclaim.trace.replay(p, guest_clock=clock, sched_tick=True)
    with pytest.raises(reclaim.ReclaimError, match="not negative"):
        reclaim.trace.replay(p, guest_clock=(-1.0, 0.0, 0.0, 0.0, 0.0))
    # a direct reclaim's time is guest time too
    with pytest.raises(reclaim.ReclaimError, match="give the guest clock too"):
        reclaim.trace.replay(p, direct_reclaim_ns=1000.0)
    with pytest.raises(reclaim.ReclaimError, match="not negative"):
        reclaim.trace.replay(p, guest_clock=clock, direct_reclaim_ns=-1.0)


def test_on_one_cpu_the_tick_lets_kswapd_reclaim_where_the_process_never_sleeps(
    tmp_path: Path,
) -> None:
    """The first pass over more pages than memory reads nothing back from swap, so without
    the tick a one-CPU model's kswapd never runs and the process reclaims directly; with
    the tick (check_preempt_wakeup_fair / update_deadline in kernel/sched/fair.c v6.12, HZ=250)
    kswapd gets the CPU and reclaims, and the process stalls less."""
    t = tracegen.loop(6000, 3000, seed=0)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")

    def replay(sched_tick: bool) -> reclaim.trace.ReplayResult:
        return reclaim.trace.replay(
            p,
            memory=2001 * 4096,
            arch="x86_64",
            one_cpu=True,
            guest_clock=(2000.0, 20_000.0, 200_000.0, 40_000.0, 1000.0),
            sched_tick=sched_tick,
            limit=3000,
        )

    sleeping, ticking = replay(False), replay(True)
    assert sleeping.vmstat["pgmajfault"] == ticking.vmstat["pgmajfault"] == 0
    assert sleeping.vmstat["pageoutrun"] == 0 and sleeping.vmstat["allocstall_normal"] > 0
    assert ticking.vmstat["pageoutrun"] > 0 and ticking.vmstat["pgscan_kswapd"] > 0
    assert ticking.vmstat["allocstall_normal"] < sleeping.vmstat["allocstall_normal"]
