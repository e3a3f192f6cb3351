"""Reclaim: LRU, shrink_folio_list, try_to_unmap_one per profile, swap.

Golden scenarios, each on every profile with the expected difference."""

from __future__ import annotations

import pytest
import reclaim
from conftest import PROFILES, small_kernel
from reclaim.s390 import _PAGE_UNUSED, Pte

PAGE = 4096


def guest_ram(k: reclaim.Kernel, pages: int = 4, kvm: bool = True) -> tuple[reclaim.Process, int]:
    qemu = k.spawn("qemu", kvm=kvm)
    ram = qemu.mmap(pages * PAGE)
    for i in range(pages):
        assert qemu.write(ram + i * PAGE, 0x100 + i).completed
    return qemu, ram


def reclaim_everything(k: reclaim.Kernel, p: reclaim.Process) -> None:
    k.reclaim(64)
    k.check()
    assert p.rss()["MM_ANONPAGES"] == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_seed_unused_page_in_registered_ram(profile: str) -> None:
    """The seed at unit level: dropped (PTE none, no swap slot) on 4.17; swapped on 4.18+, and
    a later read swaps it in with its content intact."""
    k = small_kernel(profile)
    qemu, ram = guest_ram(k)
    uffd = qemu.userfaultfd()
    uffd.register(ram, 4 * PAGE)
    assert qemu.essa(ram, "set_unused").new_pgste.usage == "UNUSED"
    reclaim_everything(k, qemu)
    k.check()
    ttu = [e for e in k.events("rmap:try_to_unmap_one") if e.addr == ram]
    pteval = Pte(ttu[-1].fields()["pteval"])
    assert pteval.unused(), "ptep_clear_flush returned the old PTE with _PAGE_UNUSED"
    assert not qemu.pte(ram).unused(), "the table never stores _PAGE_UNUSED"
    if profile == "4.17":
        assert qemu.pte(ram).value == 0x400
        assert qemu.rss()["MM_SWAPENTS"] == 3
        assert k.meminfo()["SwapTotal"] - k.meminfo()["SwapFree"] == 3 * 4
        assert "drop_pte_unused" in ttu[-1].text
        qemu.essa(ram, "set_stable")
        r = qemu.read(ram)
        assert r.blocked and r.event is not None and r.event.address == ram
    else:
        assert qemu.page_state(ram) == "swapped"
        assert qemu.rss()["MM_SWAPENTS"] == 4
        qemu.essa(ram, "set_stable")
        assert qemu.read(ram).value == 0x100
        assert qemu.page_state(ram) == "present"
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_without_userfaultfd_unused_is_dropped_and_stable_swapped(profile: str) -> None:
    k = small_kernel(profile)
    qemu, ram = guest_ram(k, 2)
    qemu.essa(ram, "set_unused")
    reclaim_everything(k, qemu)
    assert qemu.page_state(ram) == "none"
    assert qemu.page_state(ram + PAGE) == "swapped"
    assert qemu.read(ram + PAGE).value == 0x101
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_plain_process_never_drops_it_has_no_pgste(profile: str) -> None:
    k = small_kernel(profile)
    p, a = guest_ram(k, 2, kvm=False)
    reclaim_everything(k, p)
    assert p.page_state(a) == "swapped"
    assert p.read(a).value == 0x100


@pytest.mark.parametrize("profile", PROFILES)
def test_mlocked_pages_are_not_unmapped(profile: str) -> None:
    k = small_kernel(profile)
    p, a = guest_ram(k, 2, kvm=False)
    p.mlock(a, PAGE)
    k.reclaim(64)
    assert p.page_state(a) == "present"
    assert p.page_state(a + PAGE) == "swapped"
    assert k.vmstat()["nr_unevictable"] == 1
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_lazyfree_clean_page_dropped_redirtied_page_kept(profile: str) -> None:
    k = small_kernel(profile)
    p, a = guest_ram(k, 2, kvm=False)
    p.madvise(a, 2 * PAGE, "free")
    assert k.vmstat()["pglazyfree"] == 2
    p.write(a + PAGE, 0x999)  # redirty the second page
    k.reclaim(64)
    assert p.page_state(a) == "none", "the clean lazyfree page is dropped without a write"
    assert p.read(a).value == 0
    assert p.read(a + PAGE).value == 0x999, "the redirtied page keeps its data"
    assert k.vmstat()["pglazyfreed"] == 1
    unmap_fail = sum(e.fields()["nr_unmap_fail"] for e in k.events("mm_vmscan_lru_shrink_inactive"))
    assert unmap_fail == 1, "try_to_unmap_one restored the redirtied page's PTE"
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_swap_full_fails_over_to_keeping_pages(profile: str) -> None:
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap=3 * PAGE, seed=1)
    p, a = guest_ram(k, 4, kvm=False)
    k.reclaim(64)
    states = [p.page_state(a + i * PAGE) for i in range(4)]
    assert states.count("swapped") == 2, states  # two usable slots besides the header
    assert states.count("present") == 2
    for i in range(4):
        assert p.read(a + i * PAGE).value == 0x100 + i
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_page_shared_by_fork_is_unmapped_from_both(profile: str) -> None:
    k = small_kernel(profile)
    p, a = guest_ram(k, 1, kvm=False)
    c = p.fork()
    k.reclaim(64)
    assert p.page_state(a) == "swapped" and c.page_state(a) == "swapped"
    assert p.pte(a).swp_offset() == c.pte(a).swp_offset()
    assert c.read(a).value == 0x100 and p.read(a).value == 0x100
    k.check()


def test_swap_ptes_are_exclusive_on_612_only() -> None:
    for profile, exclusive in [("4.18", False), ("6.12", True)]:
        k = small_kernel(profile)
        p, a = guest_ram(k, 1, kvm=False)
        k.reclaim(64)
        k.check()
        assert p.pte(a).swp_exclusive() == exclusive, profile


def test_kswapd_wakes_below_low_and_reclaims_to_high() -> None:
    k = reclaim.Kernel(profile="4.18", memory="4MiB", swap="8MiB", seed=1)
    w = k.watermarks()
    p = k.spawn("hog")
    a = p.mmap("4MiB")
    for i in range(1000):
        assert p.write(a + i * PAGE, i).completed
    vs = k.vmstat()
    assert vs["pgscan_kswapd"] > 0 and vs["pgsteal_kswapd"] > 0
    assert vs["nr_free_pages"] >= w["low"]
    assert [e for e in k.events("mm_vmscan_kswapd_wake")]
    assert all(p.read(a + i * PAGE).value == i for i in range(1000))
    k.check()


def test_direct_reclaim_below_min() -> None:
    """One UFFDIO_COPY of many pages allocates them all before kswapd, woken at the low
    watermark, gets to run: below min the allocating task reclaims directly."""
    k = reclaim.Kernel(profile="4.18", memory="4MiB", swap="8MiB", seed=1)
    w = k.watermarks()
    hog = k.spawn("hog")
    a = hog.mmap("4MiB")
    i = 0
    while k.vmstat()["nr_free_pages"] > w["low"] + 1:
        assert hog.write(a + i * PAGE, i).completed
        i += 1
    assert k.vmstat()["allocstall_normal"] == 0 and k.vmstat()["pgscan_direct"] == 0
    dst = k.spawn("dst")
    ram = dst.mmap("1MiB")
    uffd = dst.userfaultfd()
    uffd.register(ram, "1MiB")
    t0 = k.now
    uffd.copy(ram, 7, "1MiB")
    vs = k.vmstat()
    assert vs["allocstall_normal"] > 0
    assert vs["pgscan_direct"] > 0 and vs["pgsteal_direct"] > 0
    begin = k.events("mm_vmscan_direct_reclaim_begin", since=t0)
    end = k.events("mm_vmscan_direct_reclaim_end", since=t0)
    assert len(begin) == len(end) == vs["allocstall_normal"]
    assert sum(e.fields()["nr_reclaimed"] for e in end) == vs["pgsteal_direct"]
    assert all(dst.read(ram + j * PAGE).value == 7 for j in range(256))
    assert all(hog.read(a + j * PAGE).value == j for j in range(i))
    k.check()


def test_out_of_memory_is_an_access_result() -> None:
    k = reclaim.Kernel(profile="4.18", memory="1MiB", swap=0, seed=1)
    p = k.spawn("hog")
    a = p.mmap("2MiB")
    kinds = {p.write(a + i * PAGE, i).kind for i in range(512)}
    assert "oom" in kinds
    k.check()


def test_mm_vmscan_events_carry_tracepoint_fields() -> None:
    k = small_kernel("4.18")
    guest_ram(k, 4, kvm=False)
    k.reclaim(64)
    k.check()
    ev = k.events("mm_vmscan_lru_shrink_inactive")
    assert ev and {"nr_scanned", "nr_reclaimed", "nr_unmap_fail"} <= set(ev[0].fields())
    assert any(e.fields()["nr_reclaimed"] > 0 for e in ev)


def test_unused_bit_value() -> None:
    assert _PAGE_UNUSED == 0x80


@pytest.mark.parametrize("profile", PROFILES)
def test_migration_drops_unused_pages_unless_armed(profile: str) -> None:
    k = small_kernel(profile)
    qemu, ram = guest_ram(k, 2)
    qemu.essa(ram, "set_unused")
    assert qemu.migrate_page(ram) is None, "without userfaultfd the unused mapping is dropped"
    assert qemu.page_state(ram) == "none"
    assert qemu.migrate_page(ram + PAGE) is not None
    assert qemu.read(ram + PAGE).value == 0x101
    uffd = qemu.userfaultfd()
    uffd.register(ram, 2 * PAGE)
    qemu.essa(ram + PAGE, "set_unused")
    new = qemu.migrate_page(ram + PAGE)
    if profile == "4.17":
        assert new is None and qemu.page_state(ram + PAGE) == "none"
    else:
        assert new is not None and qemu.read(ram + PAGE).value == 0x101
    k.check()


def _flags(k: reclaim.Kernel, pfn: int) -> list[str]:
    flags = k.page(pfn)["flags"]
    assert isinstance(flags, list)
    return [str(f) for f in flags]


def hot_page_on_inactive_list(
    k: reclaim.Kernel,
) -> tuple[reclaim.Process, reclaim.Process, int, int]:
    """A hot anon page on the inactive list (4.x: alone there; 6.12: with the cold pages, whose
    first scan only marks them referenced), its PTEs young in a parent and a forked child, and
    256 cold pages (4.x: on the active list, enough that the aging of one reclaim call does not
    reach the hot page again once it is activated). mlock + munlock puts the page back on the
    inactive list (putback_lru_page) without touching its PTE, so no aging cleared its young
    bit."""
    p = k.spawn("p")
    hot = p.mmap(PAGE)
    cold = p.mmap(256 * PAGE)
    assert p.write(hot, 0x4F7).completed
    for i in range(256):
        assert p.write(cold + i * PAGE, i).completed
    p.mlock(hot, PAGE)
    p.munlock(hot, PAGE)
    c = p.fork()
    assert c.read(hot).value == 0x4F7  # the child's copied PTE is old until it is accessed
    assert p.pte(hot).young() and c.pte(hot).young()
    flags = _flags(k, p.pte(hot).pfn())
    assert "lru" in flags and "active" not in flags
    return p, c, hot, cold


@pytest.mark.parametrize("profile", PROFILES)
def test_young_inactive_page_is_activated_not_reclaimed(profile: str) -> None:
    """folio_check_references → ACTIVATE: 4.x activates a referenced swap-backed page at once;
    6.12 (two strikes) activates it because two PTEs reference it. It stays mapped, pgactivate
    counts it, and the cold pages are swapped in its place."""
    k = small_kernel(profile)
    p, c, hot, cold = hot_page_on_inactive_list(k)
    pfn = p.pte(hot).pfn()
    before = k.vmstat()
    k.reclaim(1)
    vs = k.vmstat()
    k.check()
    assert p.page_state(hot) == "present" and c.page_state(hot) == "present"
    assert p.pte(hot).pfn() == pfn
    assert "active" in _flags(k, pfn)
    assert vs["pgactivate"] - before["pgactivate"] == 1
    assert vs["pswpout"] - before["pswpout"] >= 32, "the cold pages were reclaimed instead"
    assert p.page_state(cold) == "swapped"
    assert c.read(hot).value == 0x4F7


@pytest.mark.parametrize("profile", PROFILES)
def test_shmem_page_is_activated_when_swap_is_full(profile: str) -> None:
    """shmem_writepage without a swap slot redirties the page and returns
    AOP_WRITEPAGE_ACTIVATE: pageout gives PAGE_ACTIVATE and the page is activated, still in
    the page cache with its data (two usable swap slots, four dirty shmem pages)."""
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap=3 * PAGE, seed=1)
    p = k.spawn("p")
    a = p.mmap(4 * PAGE, kind="shmem", shared=True)
    for i in range(4):
        assert p.write(a + i * PAGE, 0x200 + i).completed
    before = k.vmstat()
    k.reclaim(64)
    vs = k.vmstat()
    k.check()
    assert vs["pswpout"] - before["pswpout"] == 2
    # 4.x first activates all four young pages (referenced and swap-backed: ACTIVATE); aging
    # deactivates them again. Then two are written and the two that find no slot are activated
    # by pageout (PAGE_ACTIVATE), not kept on the inactive list (PAGE_KEEP).
    by_references = 0 if profile == "6.12" else 4
    assert vs["pgactivate"] - before["pgactivate"] == by_references + 2
    assert k.meminfo()["SwapFree"] == 0
    for i in range(4):
        assert p.read(a + i * PAGE).value == 0x200 + i
    k.check()


def test_pageout_of_shmem_without_swap_slot_activates_at_once() -> None:
    k = reclaim.Kernel(profile="6.12", memory="16MiB", swap=2 * PAGE, seed=1)
    p = k.spawn("p")
    a = p.mmap(2 * PAGE, kind="shmem", shared=True)
    for i in range(2):
        assert p.write(a + i * PAGE, 0x300 + i).completed
    pfns = [p.pte(a + i * PAGE).pfn() for i in range(2)]
    before = k.vmstat()["pgactivate"]
    p.madvise(a, 2 * PAGE, "pageout")
    k.check()
    assert k.vmstat()["pgactivate"] - before == 1
    assert [("active" in _flags(k, pfn)) for pfn in pfns] == [False, True]
    assert "dirty" in _flags(k, pfns[1]), "shmem_writepage redirtied it"
    assert p.read(a + PAGE).value == 0x301
    assert p.read(a).value == 0x300


def test_madv_cold_deactivates_and_makes_the_pte_old() -> None:
    k = small_kernel("6.12")
    p, c, hot, _ = hot_page_on_inactive_list(k)
    k.reclaim(1)
    pfn = p.pte(hot).pfn()
    assert "active" in _flags(k, pfn)
    c.exit()  # MADV_COLD leaves pages other mappings share alone
    assert p.read(hot).completed and p.pte(hot).young()
    before = k.vmstat()["pgdeactivate"]
    p.madvise(hot, PAGE, "cold")
    k.check()
    flags = _flags(k, pfn)
    assert "active" not in flags and "referenced" not in flags and "lru" in flags
    assert not p.pte(hot).young() and p.page_state(hot) == "present"
    assert k.vmstat()["pgdeactivate"] - before == 1
    assert k.vmstat()["nr_inactive_anon"] > 0


def test_madv_pageout_swaps_out_and_drops() -> None:
    k = small_kernel("6.12")
    p = k.spawn("p")
    a = p.mmap(4 * PAGE)
    for i in range(4):
        assert p.write(a + i * PAGE, 0x500 + i).completed
    p.madvise(a + 3 * PAGE, PAGE, "free")
    assert p.pte(a).young(), "pageout ignores references: young pages go as well"
    p.madvise(a, 4 * PAGE, "pageout")
    k.check()
    assert [p.page_state(a + i * PAGE) for i in range(4)] == ["swapped"] * 3 + ["none"]
    assert p.rss()["MM_ANONPAGES"] == 0 and p.rss()["MM_SWAPENTS"] == 3
    vs = k.vmstat()
    assert vs["pswpout"] == 3 and vs["pglazyfreed"] == 1
    assert [p.read(a + i * PAGE).value for i in range(4)] == [0x500, 0x501, 0x502, 0]
    k.check()


def test_madv_pageout_leaves_young_bit_of_a_page_it_cannot_reclaim() -> None:
    """v6.9+: `if (!pageout && pte_young(ptent))`; PAGEOUT ignores references instead of
    clearing young, so a page that stays (no swap) keeps its young PTE."""
    k = reclaim.Kernel(profile="6.12", memory="16MiB", swap=0, seed=1)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    assert p.write(a, 1).completed
    p.madvise(a, PAGE, "pageout")
    assert p.page_state(a) == "present" and p.pte(a).young()
    p.madvise(a, PAGE, "cold")
    assert not p.pte(a).young()
    k.check()


@pytest.mark.parametrize("profile", ["4.17", "4.18"])
def test_madv_cold_and_pageout_are_einval_before_54(profile: str) -> None:
    k = small_kernel(profile)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    for advice in ("cold", "pageout"):
        with pytest.raises(reclaim.ReclaimError) as e:
            p.madvise(a, PAGE, advice)
        assert e.value.errno_name == "EINVAL" and "v5.4" in str(e.value)
