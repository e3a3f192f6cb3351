"""Trace files (binary, CSV, libCacheSim oracleGeneral) and their replay under memory pressure:
round trips, errors that name the offset or line, a miss ratio close to an exact LRU's, the
reclaim replay command."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import reclaim
from reclaim import tracegen
from reclaim.trace import read, write, write_zipf


@pytest.mark.parametrize("fmt", ["binary", "csv", "oracle"])
def test_every_format_round_trips(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1 << 40, 3000, dtype=np.uint64)
    writes = rng.random(3000) < 0.4 if fmt != "oracle" else None
    times = np.cumsum(rng.integers(0, 1000, 3000)).astype(np.uint64)
    path = tmp_path / f"t.{fmt}"
    write(path, keys, writes, times, format=fmt)
    t = read(path, format=fmt)
    assert (t.format, len(t)) == (fmt, 3000)
    assert (t.keys == keys).all() and (t.times == times).all()
    assert (t.writes == (writes if writes is not None else False)).all()
    assert len(read(path, limit=10)) == 10


def test_write_zipf_is_seeded_skewed_and_detected(tmp_path: Path) -> None:
    for fmt, name in [("binary", "z.trace"), ("csv", "z.data"), ("oracle", "z.oracleGeneral.bin")]:
        write_zipf(tmp_path / name, 20_000, 500, s=1.0, seed=4, format=fmt)
        assert read(tmp_path / name).format == fmt  # format="auto"
    a, b = read(tmp_path / "z.trace"), read(tmp_path / "z.oracleGeneral.bin")
    assert (a.keys == b.keys).all() and not a.writes.any()
    counts = np.bincount(a.keys.astype(np.int64), minlength=500)
    assert 1.7 < counts[0] / counts[1] < 2.3 and counts[0] > 50 * counts[-1]
    write_zipf(tmp_path / "w.bin", 20_000, 500, s=1.0, seed=4, write_fraction=0.5, format="binary")
    w = read(tmp_path / "w.bin")
    assert (w.keys == a.keys).all() and 0.45 < w.writes.mean() < 0.55
    with pytest.raises(reclaim.ArgumentError, match="oracleGeneral format has none"):
        write_zipf(tmp_path / "x", 10, 5, write_fraction=0.5, format="oracle")


def test_oracle_records_are_libcachesim_s(tmp_path: Path) -> None:
    """24 packed little-endian bytes: clock_time u32, obj_id u64, obj_size u32,
    next_access_vtime i64 (1-based position of the next request, -1 if none)."""
    path = tmp_path / "o.bin"
    write(path, np.array([7, 9, 7], np.uint64), format="oracle")
    recs = list(struct.iter_unpack("<IQIq", path.read_bytes()))
    assert recs == [(0, 7, 4096, 3), (0, 9, 4096, -1), (0, 7, 4096, -1)]
    # a record of size 0 is skipped, as libCacheSim's reader does by default
    path.write_bytes(struct.pack("<IQIq", 1, 5, 0, -1) + struct.pack("<IQIq", 2, 6, 512, -1))
    t = read(path, format="oracle")
    assert t.keys.tolist() == [6] and t.times.tolist() == [2]


def test_malformed_traces_name_the_offset_or_line(tmp_path: Path) -> None:
    keys = np.arange(10, dtype=np.uint64)
    b, c, o = tmp_path / "t.bin", tmp_path / "t.csv", tmp_path / "t.oracle"
    write(b, keys, format="binary")
    write(c, keys, format="csv")
    write(o, keys, format="oracle")
    data = b.read_bytes()
    b.write_bytes(data[:-3])
    with pytest.raises(
        reclaim.FormatError,
        match=r"at offset 16: the header announces 10 records of 8 bytes, the file has room for 9",
    ):
        read(b)
    bad = bytearray(data)
    bad[32 + 8 * 4 + 7] = 0x01  # a reserved bit of record 4
    b.write_bytes(bytes(bad))
    with pytest.raises(reclaim.FormatError, match=r"at offset 64: record 4: bits 52\.\.62"):
        read(b)
    c.write_text(c.read_text().replace("6,0", "6,x"))
    with pytest.raises(reclaim.FormatError, match='at line 8: write flag "x"'):
        read(c)
    o.write_bytes(o.read_bytes()[:-1])
    with pytest.raises(reclaim.FormatError, match="at offset 216: record 9 is cut short"):
        read(o)
    # a replay fails the same way, before the kernel runs
    with pytest.raises(reclaim.FormatError, match="at offset 216"):
        reclaim.replay(o)
    with pytest.raises(reclaim.FileError, match=r"nope\.bin"):
        reclaim.replay(tmp_path / "nope.bin")
    with pytest.raises(reclaim.ArgumentError, match="known: auto, binary, csv, oracle"):
        read(o, format="parquet")


def lru_miss_ratio(keys: list[int], capacity: int) -> float:
    """An exact LRU cache of `capacity` pages."""
    cache: OrderedDict[int, None] = OrderedDict()
    misses = 0
    for k in keys:
        if k in cache:
            cache.move_to_end(k)
            continue
        misses += 1
        cache[k] = None
        if len(cache) > capacity:
            cache.popitem(last=False)
    return misses / len(keys)


@pytest.mark.parametrize(("s", "profile"), [(0.9, "6.12"), (0.9, "4.18"), (0.7, "6.12")])
def test_a_zipf_replay_misses_about_as_an_exact_lru(tmp_path: Path, s: float, profile: str) -> None:
    """The kernel's reclaim is not LRU: two lists (active, inactive), pages promoted on a
    second reference and demoted in batches by kswapd, refaults activated by the workingset
    code on 6.12. On a Zipf trace it behaves like a second-chance (CLOCK-like) approximation of
    LRU of the same size, within a few points: between an LRU of half and of twice the size,
    and within 0.03 of an LRU of the pages it keeps resident (memory less the free pages
    kswapd keeps above the high watermark)."""
    path = tmp_path / "z.bin"
    write_zipf(path, 150_000, 12_000, s=s, seed=3, format="binary")
    r = reclaim.replay(path, memory=0.25, profile=profile)
    keys = read(path).keys.tolist()
    assert r.requests == 150_000 and r.distinct_pages == len(set(keys))
    # each page's first touch, and each page swap readahead brought into the swap cache first
    # (swap_cache_get_folio counts SWAP_RA_HIT; do_swap_page: not a major fault)
    assert r.minor_faults == r.distinct_pages + r.vmstat["swap_ra_hit"]
    assert r.misses == r.minor_faults + r.major_faults == round(r.miss_ratio * r.requests)
    assert r.hits + r.misses == r.requests and r.counts["major"] == r.major_faults
    assert r.major_faults == r.vmstat["pgmajfault"] and r.pages_swapped_out > 0
    cap = r.resident_pages
    assert 0.9 * (r.memory // 4096) < cap <= r.memory // 4096
    assert abs(r.miss_ratio - lru_miss_ratio(keys, cap)) < 0.03
    assert lru_miss_ratio(keys, 2 * cap) < r.miss_ratio < lru_miss_ratio(keys, cap // 2)


def test_swap_readahead_turns_a_loops_major_faults_into_swap_cache_hits(tmp_path: Path) -> None:
    """swap_cluster_readahead (mm/swap_state.c v6.12): a loop over more pages than memory
    swaps out and back in in slot order, so with vm.page-cluster 3 each read brings the next
    pages into the swap cache and their faults are minor (SWAP_RA_HIT); with 0 every refault
    is a major fault, one page read each."""
    path = tmp_path / "loop.bin"
    keys = np.tile(np.arange(2000, dtype=np.uint64), 5)
    write(path, keys, format="binary")
    pc0 = reclaim.replay(path, memory=0.5, profile="6.12", page_cluster=0)
    pc3 = reclaim.replay(path, memory=0.5, profile="6.12", page_cluster=3)
    assert pc0.vmstat["swap_ra"] == pc0.vmstat["swap_ra_hit"] == 0
    assert pc0.major_faults == pc0.vmstat["pswpin"] > 4000
    assert pc3.vmstat["swap_ra_hit"] > 0 and pc3.vmstat["swap_ra"] >= pc3.vmstat["swap_ra_hit"]
    assert pc3.major_faults < pc0.major_faults / 2
    assert pc3.minor_faults == pc3.distinct_pages + pc3.vmstat["swap_ra_hit"]
    k = reclaim.Kernel("6.12", memory="64MiB", swap="64MiB")
    assert k.page_cluster == 3  # swap_setup: 3 from 16 MiB of memory
    k.page_cluster = 0
    assert k.page_cluster == 0
    with pytest.raises(reclaim.ArgumentError, match=r"vm\.page-cluster is 0 to 31, not 32"):
        k.page_cluster = 32
    with pytest.raises(reclaim.ArgumentError, match=r"vm\.page-cluster is 0 to 31"):
        reclaim.replay(path, memory=0.5, page_cluster=40)


def test_replay_is_deterministic_and_memory_sets_the_pressure(tmp_path: Path) -> None:
    path = tmp_path / "z.oracleGeneral"
    write_zipf(path, 30_000, 2000, s=0.9, seed=1, format="oracle")
    a, b = reclaim.replay(path, memory="25%"), reclaim.replay(path, memory=0.25)
    clock = {"seconds": 0, "scan_seconds": 0, "requests_per_second": 0}  # wall-clock differs
    assert a.to_dict() | clock == b.to_dict() | clock
    assert a.n_events > 0 and a.format == "oracle" and a.mapping == "offset"
    roomy = reclaim.replay(path, memory=2.0)
    assert roomy.misses == roomy.distinct_pages and roomy.major_faults == 0
    tight = reclaim.replay(path, memory="1MiB")
    assert tight.memory == 1 << 20 and tight.miss_ratio > a.miss_ratio
    assert reclaim.replay(path, limit=10_000).requests == 10_000
    kvm = reclaim.replay(path, memory=0.25, profile="4.17", kvm=True, seed=2)
    assert kvm.profile == "4.17" and kvm.major_faults > 0
    with pytest.raises(reclaim.ArgumentError, match="not a percentage"):
        reclaim.replay(path, memory="lots%")


def test_observing_a_replay_shows_mglrus_generations_and_changes_nothing(tmp_path: Path) -> None:
    """``observe=(n, f)`` hands the run to ``f`` before the first request, after every ``n``
    and after the last, where ``run.lru_gen()`` is the kernel's ``/sys/kernel/debug/lru_gen``
    (``lru_gen_seq_show``, mm/vmscan.c 6.12; "" with the classic lists) and
    ``run.zone_free()`` its zone's free pages: the generations turn over under pressure, and
    the replay is the one it is unobserved."""
    from reclaim.crosscheck.replay import lru_gen_generations

    path = tmp_path / "z.bin"
    write_zipf(path, 20_000, 2000, s=0.9, seed=1, format="binary")
    seen: list[tuple[int, str, list[list[int]]]] = []

    def see(run: reclaim.trace.ReplayRun) -> None:
        seen.append((run.progress[0], run.lru_gen(), run.zone_free()))

    r = reclaim.trace.replay(
        path, profile="6.12-debian", arch="x86_64", memory=0.25, observe=(5_000, see)
    )
    assert [n for n, _, _ in seen] == [0, 5_000, 10_000, 15_000, 20_000]
    first, last = lru_gen_generations(seen[0][1]), lru_gen_generations(seen[-1][1])
    assert last[-1].seq > first[-1].seq, "aged under pressure"
    assert sum(g.anon for g in last) > 0 and all(len(z) == 1 and z[0][0] >= 0 for _, _, z in seen)
    unobserved = reclaim.trace.replay(path, profile="6.12-debian", arch="x86_64", memory=0.25)
    assert r.log_hash == unobserved.log_hash
    off: list[str] = []  # the classic lists: no generations to show
    reclaim.trace.replay(path, memory=0.25, observe=(10_000, lambda run: off.append(run.lru_gen())))
    assert off == ["", "", ""]
    with pytest.raises(reclaim.ArgumentError, match="at least 1 request"):
        reclaim.trace.replay(path, memory=0.25, observe=(0, print))


def test_counts_and_vmstat_are_copies(tmp_path: Path) -> None:
    """Changing the dict a ReplayResult hands out does not change the result."""
    path = tmp_path / "z.oracleGeneral"
    write_zipf(path, 5_000, 500, s=0.9, seed=1, format="oracle")
    r = reclaim.replay(path, memory=0.25)
    r.counts["hit"] = -1
    r.vmstat["pswpout"] = -1
    assert r.counts["hit"] == r.hits and r.vmstat["pswpout"] == r.pages_swapped_out


def test_csv_addresses_and_sparse_object_ids(tmp_path: Path) -> None:
    csv = tmp_path / "heap.csv"
    lines = [
        f"{0x7F3A00000000 + (i % 40) * 4096 + i:#x},{'w' if i % 3 else 'r'}" for i in range(400)
    ]
    csv.write_text("# a heap\naddr,write\n" + "\n".join(lines) + "\n")
    r = reclaim.replay(csv, memory="1MiB")
    assert (r.format, r.mapping, r.distinct_pages, r.minor_faults) == ("csv", "offset", 40, 40)
    sparse = tmp_path / "ids.oracle"
    ids = np.random.default_rng(2).integers(0, 1 << 63, 300, dtype=np.uint64)
    write(sparse, np.tile(ids, 5), format="oracle")
    s = reclaim.replay(sparse, memory=0.5)
    assert (s.mapping, s.distinct_pages, s.requests) == ("hashed", 300, 1500)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim.cli", "replay", *args], capture_output=True, text=True
    )


def test_cli_replay_json_text_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    write_zipf(path, 20_000, 1000, s=0.9, format="binary")
    r = run_cli(str(path), "--json", "--memory", "25%", "--profile", "4.18")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["requests"] == 20_000 and out["profile"] == "4.18" and out["format"] == "binary"
    assert out["misses"] == out["minor_faults"] + out["major_faults"]
    assert out["vmstat"]["pswpout"] == out["pages_swapped_out"] > 0
    assert out == out | {"miss_ratio": out["misses"] / 20_000}
    text = run_cli(str(path), "--limit", "5000")
    assert text.returncode == 0 and "miss ratio" in text.stdout and "5000" in text.stdout
    path.write_bytes(path.read_bytes()[:100])
    bad = run_cli(str(path))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "reclaim: error: malformed binary trace at offset 16: the header announces 20000 records "
        "of 8 bytes, the file has room for 8 (100 bytes)"
    ]
    missing = run_cli(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_the_swap_device_is_a_named_choice_and_virtio_blk_rotates_written_pages(
    tmp_path: Path,
) -> None:
    """rust/mm/page_io.rs: on the default synchronous device a written page is freed in the
    same pass (no PGROTATED); on virtio-blk it stays in the swap cache under writeback and
    folio_end_writeback → folio_rotate_reclaimable (mm/filemap.c, mm/swap.c v6.12) moves it
    to the inactive tail (MGLRU: the oldest generation's) when the write completes."""
    t = tracegen.zipf(20_000, 2000, s=0.9, seed=2)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    runs = {
        io: reclaim.trace.replay(p, profile="6.12", memory=0.25, one_cpu=True, swap_io=io)
        for io in ("synchronous", "virtio-blk")
    }
    assert runs["synchronous"].vmstat["pgrotated"] == 0
    vb = runs["virtio-blk"].vmstat
    assert 0 < vb["pgrotated"] <= vb["pswpout"]
    k = reclaim.Kernel(profile="6.12", memory="64MiB", swap="64MiB")
    assert k.swap_io == "synchronous"
    k.swap_io = "virtio-blk"
    assert k.swap_io == "virtio-blk"
    with pytest.raises(reclaim.ArgumentError, match="virtio-blk"):
        k.swap_io = "nvme"
    # MGLRU too: the written page waits in the second youngest generation and completion
    # rotates it to the tail of the oldest (lru_move_tail → lru_gen_add_folio(.., true),
    # mm/swap.c and include/linux/mm_inline.h, 6.12.107 and 6.12.117)
    for profile in ("6.12-debian", "6.12.107-debian"):
        mglru = reclaim.trace.replay(
            p, profile=profile, memory=0.25, one_cpu=True, swap_io="virtio-blk"
        ).vmstat
        assert 0 < mglru["pgrotated"] <= mglru["pswpout"], profile


def test_memcg_stats_rstat_612_lets_reclaim_see_refaults_only_at_each_flush(
    tmp_path: Path,
) -> None:
    """rust/mm/memcontrol.rs: prepare_scan_control (mm/vmscan.c v6.12) reads
    WORKINGSET_ACTIVATE through lruvec_page_state, with CONFIG_MEMCG=y the root memcg's rstat
    aggregate refreshed by flush_memcg_stats_dwork every FLUSH_TIME (mm/memcontrol.c v6.12):
    refaults between two flushes let reclaim deactivate the active list once, not after each
    reclaim, so fewer pages are deactivated than with the live counts."""
    t = tracegen.generate("hot_scan", 60_000, 6000, seed=0)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    runs = {
        s: reclaim.trace.replay(p, profile="6.12", memory=0.4, one_cpu=True, memcg_stats=s)
        for s in ("live", "rstat-6.12")
    }
    live, rstat = runs["live"].vmstat, runs["rstat-6.12"].vmstat
    assert live["workingset_activate_anon"] > 0
    assert rstat["pgdeactivate"] < live["pgdeactivate"]
    assert (
        runs["live"].major_faults
        == reclaim.trace.replay(p, profile="6.12", memory=0.4, one_cpu=True).major_faults
    )
    k = reclaim.Kernel(profile="6.12", memory="64MiB", swap="64MiB")
    assert k.memcg_stats == "live"
    k.memcg_stats = "rstat-6.12"
    assert k.memcg_stats == "rstat-6.12"
    with pytest.raises(reclaim.ArgumentError, match=r"rstat-6\.12"):
        k.snapshot(tmp_path / "k.snap")
    with pytest.raises(reclaim.ArgumentError, match="live"):
        k.memcg_stats = "rstat"
    k.memcg_stats = "live"
    k.snapshot(tmp_path / "k.snap")


def test_memcg_stats_rstat_612_lru_keeps_the_list_sizes_reclaim_balances_as_last_flushed(
    tmp_path: Path,
) -> None:
    """rust/mm/memcontrol.rs: inactive_is_low (mm/vmscan.c v6.12.117) and
    workingset_test_recent (mm/workingset.c) read the LRU sizes through lruvec_page_state, the
    root memcg's statistics as of the last flush: between two flushes reclaim balances the
    active and inactive lists by stale sizes, so it deactivates and activates other pages than
    with the sizes read live; a kernel with the choice names it and refuses a snapshot."""
    t = tracegen.generate("zipf0.9", 60_000, 6000, seed=0)
    p = tmp_path / "t.bin"
    reclaim.trace.write(p, t.keys, t.writes, format="binary")
    runs = {
        s: reclaim.trace.replay(p, profile="6.12", memory=0.4, one_cpu=True, memcg_stats=s)
        for s in ("rstat-6.12", "rstat-6.12-lru")
    }
    sizes, lru = runs["rstat-6.12"].vmstat, runs["rstat-6.12-lru"].vmstat
    assert sizes["pgdeactivate"] > 0
    assert (lru["pgdeactivate"], lru["workingset_activate_anon"]) != (
        sizes["pgdeactivate"],
        sizes["workingset_activate_anon"],
    )
    k = reclaim.Kernel(profile="6.12", memory="64MiB", swap="64MiB")
    k.memcg_stats = "rstat-6.12-lru"
    assert k.memcg_stats == "rstat-6.12-lru"
    with pytest.raises(reclaim.ArgumentError, match=r"rstat-6\.12-lru"):
        k.snapshot(tmp_path / "k.snap")
