"""MGLRU (lru_gen) in the 6.12 profile: the switch, the 6.12-debian variant, the debugfs view,
eviction through the classic shrink_folio_list, and the seed's guard under it.

The mechanism's unit tests (aging, eviction, tiers, the PID controller, look-around) are in
rust/vmscan/lru_gen.rs; these check what a user of the Python API relies on."""

from __future__ import annotations

import re

import pytest
import reclaim
from conftest import SMALL

UF = "userfault_on_received"


def _kernel_with_pages(profile: str, pages: int, arch: str = "s390x") -> tuple[reclaim.Kernel, int]:
    k = reclaim.Kernel(profile, arch=arch, memory="8MiB", swap="8MiB")
    p = k.spawn("t")
    a = p.mmap(pages * 4096)
    for i in range(pages):
        p.write(a + i * 4096, i + 1)
    return k, a


def test_6_12_debian_turns_mglru_on_with_the_caps_of_each_arch() -> None:
    # /sys/kernel/mm/lru_gen/enabled of a Debian 6.12 guest: 0x0001 on s390x (no hardware
    # young bit, no page-table walk), 0x0007 on x86_64; upstream's default is off
    assert reclaim.VARIANTS["6.12-debian"]["switches"] == {"lru_gen": True}
    for arch, caps in (("s390x", 0x0001), ("x86_64", 0x0007)):
        p = reclaim.Profile("6.12-debian", arch)
        assert p.switches()["lru_gen"] is True and p.switches()["lru_gen_caps"] == caps
        assert p.base == reclaim.Profile("6.12", arch)
        assert reclaim.Kernel("6.12-debian", arch=arch, memory="1MiB").lru_gen_enabled == caps
    assert reclaim.Kernel("6.12", memory="1MiB").lru_gen_enabled == 0
    assert reclaim.Profile("6.12").switches()["lru_gen"] is False


def test_lru_gen_on_a_4_x_profile_is_refused_saying_why() -> None:
    with pytest.raises(reclaim.ProfileError) as e:
        reclaim.Profile.derive("4.18", lru_gen=True)
    assert "v6.1" in str(e.value) and "v4.18" in str(e.value) and e.value.errno == 22
    on = reclaim.Profile.derive("6.12", lru_gen=True)
    assert on.diff(reclaim.Profile("6.12")) == {"lru_gen": (True, False)}


def test_the_debugfs_view_shows_the_generations_and_their_pages() -> None:
    k, _ = _kernel_with_pages("6.12-debian", 40)
    lines = k.lru_gen().splitlines()
    assert lines[:2] == ["memcg     0 /", " node     0"]
    gens = [[int(x) for x in line.split()] for line in lines[2:]]
    # lru_gen_init_lruvec: max_seq 3, min_seq 0: four generations; pages faulted in are in
    # max_seq (6.12.117 folio_add_lru: PG_active when lru_gen_in_fault(); lru_gen_add_folio)
    assert [g[0] for g in gens] == [0, 1, 2, 3]
    assert [g[2] for g in gens] == [0, 0, 0, 40]
    verbose = k.lru_gen(verbose=True).splitlines()
    assert len(verbose) == 2 + 4 * (1 + 4), "a line per tier under each generation"
    assert reclaim.Kernel("6.12", memory="1MiB").lru_gen() == ""


def test_the_debugfs_view_on_x86_64_shows_the_walks_mm_stats() -> None:
    # lru_gen_seq_show_full (6.12.117): with mm_state (CONFIG_LRU_GEN_WALKS_MMU, x86_64) a line
    # of mm stats under each generation, "TYFA" at max_seq, "x" where no count is kept
    k, _ = _kernel_with_pages("6.12-debian", 2600, arch="x86_64")  # reclaim: aging walks
    verbose = k.lru_gen(verbose=True).splitlines()
    assert len(verbose) == 2 + 4 * (1 + 4 + 1)
    stats = [line for line in verbose if re.fullmatch(r"\s+(\s+\d+[TYFAx]){4}", line)]
    assert len(stats) == 4
    m = re.findall(r"(\d+)([TYFA])", stats[-1])
    assert [c for _, c in m] == list("TYFA"), stats[-1]
    total, young, found, added = (int(n) for n, _ in m)
    assert total >= 2000 and young > 0 and found >= added > 0
    assert all(line.split()[-1] == "0x" for line in stats[:-1])
    assert all("x" in line for line in verbose[3:7]), "no count kept: x, as the kernel prints"
    s390, _ = _kernel_with_pages("6.12-debian", 40)
    assert len(s390.lru_gen(verbose=True).splitlines()) == 2 + 4 * (1 + 4), "no mm_state on s390"


def test_mm_lru_insertion_is_off_until_enabled_and_printed_as_pagemap_h_does() -> None:
    from reclaim.export import ftrace_text

    k = reclaim.Kernel("6.12-debian", arch="x86_64", memory="8MiB", swap="8MiB")
    p = k.spawn("t")
    a = p.mmap(4 * 4096)
    p.write(a, 1)
    assert not k.trace_enabled("mm_lru_insertion")
    assert not [e for e in k.events() if e.name == "mm_lru_insertion"], "tracefs enable is 0"
    k.trace_enable("mm_lru_insertion")
    assert k.trace_enabled("mm_lru_insertion")
    p.write(a + 4096, 2)
    p.write(a + 8192, 3)
    lines = [x for x in ftrace_text(k).splitlines() if ": mm_lru_insertion: " in x]
    assert len(lines) == 2
    # TP_printk of include/trace/events/pagemap.h (6.12); MGLRU's lru_gen_add_folio clears
    # PG_active: LRU_INACTIVE_ANON (0); an anon, swap-backed page
    pat = re.compile(r"folio=[0-9a-f]{16} pfn=0x[0-9a-f]+ lru=0 flags=[M ]a b  ")
    assert all(pat.fullmatch(x.split(": mm_lru_insertion: ")[1]) for x in lines), lines
    k.trace_enable("mm_lru_insertion", False)
    p.write(a + 12288, 4)
    assert len([e for e in k.events() if e.name == "mm_lru_insertion"]) == 2
    with pytest.raises(reclaim.ReclaimError):
        k.trace_enable("rmap:try_to_unmap_one")


def test_mglru_evicts_through_shrink_folio_list_and_try_to_unmap_one() -> None:
    k, _ = _kernel_with_pages("6.12-debian", 2600)
    names = {e.name for e in k.events()}
    assert "mm_vmscan_lru_isolate" in names, "scan_folios traces mm_vmscan_lru_isolate"
    assert {"mm_vmscan_lru_shrink_inactive", "rmap:try_to_unmap_one"} <= names
    v = k.vmstat()
    assert v["pswpout"] > 0 and v["pgscan_anon"] > 0
    classic, _ = _kernel_with_pages("6.12", 2600)
    assert "mm_vmscan_lru_isolate" not in {e.name for e in classic.events()}


def test_the_seed_guard_holds_under_mglru_from_listen_on() -> None:
    # eviction still ends in try_to_unmap_one: `pte_unused && !userfaultfd_armed` keeps reclaim
    # off armed pages on 6.12 with lru_gen as on the classic lists
    sc = reclaim.Scenario("6.12-debian", start="listen")
    r = reclaim.explore(sc, depth=6, predicates=[UF], walks=0, progress=False)
    assert r.exhaustive and r.states > 10_000
    assert r.found(UF, "pte_unused") is None, r.text()


def test_the_postcopy_study_completes_on_6_12_debian() -> None:
    r = reclaim.studies.postcopy("6.12-debian", **SMALL)
    assert r.outcome == "completed"
    m = r.metrics
    assert m["userfaults_on_received"] == 0
    assert m["dest_pages_dropped"] == 0 and m["data_errors"] == 0
    assert m["dest_pages_swapped"] > 0, "MGLRU reclaimed the destination's guest memory"


def test_the_ftrace_export_writes_mm_vmscan_lru_isolate_as_the_kernel_prints_it() -> None:
    from reclaim.export import ftrace_text

    k, _ = _kernel_with_pages("6.12-debian", 2600)
    lines = [line for line in ftrace_text(k).splitlines() if ": mm_vmscan_lru_isolate: " in line]
    assert lines
    pat = re.compile(
        r"classzone=0 order=0 nr_requested=4096 nr_scanned=(\d+) nr_skipped=0 nr_taken=(\d+) "
        r"lru=(inactive_anon|inactive_file)"
    )
    # TP_printk of include/trace/events/vmscan.h (6.12), for every line
    ms = [pat.fullmatch(line.split(": mm_vmscan_lru_isolate: ")[1]) for line in lines]
    assert all(ms), lines
    assert any(int(m[2]) > 0 and m[3] == "inactive_anon" for m in ms if m)


def test_mglru_runs_are_deterministic() -> None:
    a = reclaim.studies.postcopy("6.12-debian", **SMALL)
    b = reclaim.studies.postcopy("6.12-debian", **SMALL)
    assert a.log_hash == b.log_hash and a.metrics == b.metrics
    assert a.log_hash != reclaim.studies.postcopy("6.12", **SMALL).log_hash
