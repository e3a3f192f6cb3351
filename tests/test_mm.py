"""Address spaces, page frames and the reverse map: sizes, mappings, faults, rmap and the
frame accounting the kernel keeps."""

from __future__ import annotations

import pytest
import reclaim
from conftest import small_kernel

PAGE = 4096


def test_sizes_accept_bytes_and_binary_units() -> None:
    assert reclaim.Kernel(memory="512MiB", swap=0).memory == 512 << 20
    assert reclaim.Kernel(memory=64 << 20, swap="1GiB").meminfo()["SwapTotal"] == (1 << 20) - 4


@pytest.mark.parametrize(
    "bad,match",
    [
        ("0", "positive"),
        (4097, "page size"),
        (-4096, "negative"),
        ("lots", "cannot parse"),
        ("5 parsecs", "unknown unit"),
    ],
)
def test_bad_memory_sizes_are_clear_errors(bad: object, match: str) -> None:
    with pytest.raises(reclaim.ArgumentError, match=match):
        reclaim.Kernel(memory=bad)  # type: ignore[arg-type]


def test_never_touched_anon_memory_reads_zero() -> None:
    k = small_kernel()
    p = k.spawn("a")
    a = p.mmap(3 * PAGE)
    assert p.read(a + PAGE).value == 0
    assert p.page_state(a) == "none"
    k.check()


def test_fork_and_cow_isolate_parent_and_child() -> None:
    k = small_kernel()
    parent = k.spawn("parent")
    a = parent.mmap(PAGE)
    parent.write(a, 0xA)
    child = parent.fork()
    assert child.read(a).value == 0xA
    pfn = parent.pte(a).pfn()
    assert child.pte(a).pfn() == pfn, "shared copy-on-write after fork"
    assert k.page(pfn)["mapcount"] == 2
    child.write(a, 0xC)
    assert parent.read(a).value == 0xA
    assert child.read(a).value == 0xC
    assert child.pte(a).pfn() != pfn
    assert parent.rss()["MM_ANONPAGES"] == 1 and child.rss()["MM_ANONPAGES"] == 1
    k.check()


def test_shmem_is_shared_between_two_processes() -> None:
    k = small_kernel()
    a_proc = k.spawn("a")
    m = a_proc.mmap(2 * PAGE, kind="shmem", shared=True)
    b_proc = a_proc.fork()
    a_proc.write(m, 0x55)
    assert b_proc.read(m).value == 0x55
    b_proc.write(m + PAGE, 0x66)
    assert a_proc.read(m + PAGE).value == 0x66
    assert a_proc.rss()["MM_SHMEMPAGES"] == 2
    k.check()


@pytest.mark.parametrize("profile", ["4.17", "6.12"])
def test_read_fault_on_cached_shmem_maps_its_64k_window_in_one_fault(profile: str) -> None:
    # mm/memory.c do_read_fault -> do_fault_around -> mm/filemap.c filemap_map_pages (4.17 and
    # 6.12): the cached pages of the 16-page aligned window are mapped by one minor fault
    k = small_kernel(profile)
    p = k.spawn("p")
    m = p.mmap(48 * PAGE, kind="shmem", shared=True)
    for i in range(48):
        p.write(m + i * PAGE, i)
    p.madvise(m, 48 * PAGE, "dontneed")
    assert p.rss()["MM_SHMEMPAGES"] == 0
    window = (m + 0xFFFF) & ~0xFFFF
    faults = k.vmstat()["pgfault"]
    assert p.read(window + 3 * PAGE).value == (window - m) // PAGE + 3
    assert p.rss()["MM_SHMEMPAGES"] == 16
    for i in range(16):
        assert p.read(window + i * PAGE).value == (window - m) // PAGE + i
    assert k.vmstat()["pgfault"] == faults + 1, "the neighbours take no fault of their own"
    k.check()


def test_shared_anonymous_mapping_is_shmem() -> None:
    k = small_kernel()
    p = k.spawn("p")
    m = p.mmap(PAGE, kind="anon", shared=True)
    c = p.fork()
    c.write(m, 7)
    assert p.read(m).value == 7
    assert p.rss()["MM_SHMEMPAGES"] == 1


def test_dontneed_then_read_gives_zeroes() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    p.write(a, 1)
    p.write(a + PAGE, 2)
    p.madvise(a, PAGE, "dontneed")
    assert p.page_state(a) == "none"
    assert p.read(a).value == 0
    assert p.read(a + PAGE).value == 2
    k.check()


@pytest.mark.parametrize("profile", ["4.17", "6.12"])
def test_madvise_remove_punches_a_hole_every_mapper_sees(profile: str) -> None:
    """MADV_REMOVE on shared shmem is fallocate(PUNCH_HOLE): the pages leave the page cache
    and every process's mapping (unmap_mapping_range), not only the caller's."""
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap="16MiB")
    p = k.spawn("p")
    a = p.mmap("64KiB", kind="shmem", shared=True)
    for i in range(16):
        p.write(a + i * 4096, 100 + i)
    c = p.fork()
    assert c.read(a + 4096).value == 101
    c.madvise(a + 4096, 2 * 4096, "remove")
    assert p.rss()["MM_SHMEMPAGES"] == 14
    assert [p.page_state(a + i * 4096) for i in range(4)] == ["present", "none", "none", "present"]
    assert [p.read(a + i * 4096).value for i in range(4)] == [100, 0, 0, 103]
    assert [c.read(a + i * 4096).value for i in range(4)] == [100, 0, 0, 103]
    k.check()


def test_partial_madvise_splits_the_vma_and_the_reverse_merges_it() -> None:
    k = reclaim.Kernel(profile="6.12", memory="16MiB", swap="16MiB")
    p = k.spawn("p")
    a = p.mmap("64KiB")
    p.madvise(a + 8 * 4096, 4096, "random")
    vmas = p.vmas()
    assert [(s - a, e - a) for s, e, _ in vmas] == [
        (0, 8 * 4096),
        (8 * 4096, 9 * 4096),
        (9 * 4096, 16 * 4096),
    ]
    assert ["VM_RAND_READ" in f for _, _, f in vmas] == [False, True, False]
    p.madvise(a + 8 * 4096, 4096, "normal")
    assert [(s - a, e - a) for s, e, _ in p.vmas()] == [(0, 16 * 4096)]
    k.check()


def test_partial_munmap_splits_a_vma() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(4 * PAGE)
    assert [(s, e) for s, e, _ in p.vmas()] == [(a, a + 4 * PAGE)]
    p.munmap(a + PAGE, PAGE)
    assert [(s, e) for s, e, _ in p.vmas()] == [(a, a + PAGE), (a + 2 * PAGE, a + 4 * PAGE)]
    assert p.read(a + PAGE).signal == "SIGSEGV"
    k.check()


def test_adjacent_anonymous_mappings_merge_like_the_kernel() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    b = p.mmap(PAGE)
    assert b == a - PAGE, "top-down placement"
    assert len(p.vmas()) == 1


def test_mlock_splits_and_munlock_merges() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(4 * PAGE)
    p.mlock(a + PAGE, PAGE)
    flags = [f for _, _, f in p.vmas()]
    assert len(flags) == 3 and "VM_LOCKED" in flags[1]
    assert k.vmstat()["nr_unevictable"] == 1
    p.munlock(a + PAGE, PAGE)
    assert len(p.vmas()) == 1
    assert k.vmstat()["nr_unevictable"] == 0
    k.check()


def test_madvise_errors_carry_kernel_errnos() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    with pytest.raises(reclaim.SyscallError) as e:
        p.madvise(a + 1, PAGE, "dontneed")
    assert e.value.errno_name == "EINVAL" and e.value.errno == 22
    assert isinstance(e.value, ValueError)
    with pytest.raises(reclaim.SyscallError, match="unknown advice"):
        p.madvise(a, PAGE, "sideways")
    with pytest.raises(reclaim.SyscallError) as e2:
        p.madvise(a, 4 * PAGE, "dontneed")
    assert e2.value.errno_name == "ENOMEM", "a hole in the range"
    with pytest.raises(reclaim.SyscallError, match="MADV_FREE"):
        p.madvise(p.mmap(PAGE, kind="shmem", shared=True), PAGE, "free")


def test_process_ids_and_exit() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 3)
    free_before = k.vmstat()["nr_free_pages"]
    p.exit()
    assert not p.alive
    assert k.vmstat()["nr_free_pages"] == free_before + 1
    with pytest.raises(reclaim.SyscallError) as e:
        p.read(a)
    assert e.value.errno_name == "ESRCH"
    k.check()


def _hw_write_protected(k: reclaim.Kernel, p: reclaim.Process, addr: int) -> bool:
    """Whether the CPU faults a store through the PTE: s390 _PAGE_PROTECT, x86 !_PAGE_RW."""
    pte = p.pte(addr)
    return pte.hw_protect() if k.profile.arch == "s390x" else not pte.write()


@pytest.mark.parametrize("arch", ["s390x", "x86_64"])
def test_write_to_read_only_page_is_sigsegv_and_mprotect_splits(arch: str) -> None:
    k = reclaim.Kernel(profile="4.18", arch=arch, memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(4 * PAGE)
    p.write(a + PAGE, 7)
    assert not _hw_write_protected(k, p, a + PAGE)
    p.mprotect(a + PAGE, PAGE, "r")
    vmas = p.vmas()
    assert [(s, e) for s, e, _ in vmas] == [
        (a, a + PAGE),
        (a + PAGE, a + 2 * PAGE),
        (a + 2 * PAGE, a + 4 * PAGE),
    ]
    assert "VM_WRITE" not in vmas[1][2] and "VM_READ" in vmas[1][2]
    assert _hw_write_protected(k, p, a + PAGE), "change_protection rewrote the PTE"
    assert p.write(a + PAGE, 8).signal == "SIGSEGV"
    assert p.read(a + PAGE).value == 7, "reads still work, the page is untouched"
    assert p.write(a, 1).completed and p.write(a + 2 * PAGE, 2).completed
    p.mprotect(a, 4 * PAGE, "rw")
    assert len(p.vmas()) == 1, "equal flags merge back"
    assert p.write(a + PAGE, 9).completed and p.read(a + PAGE).value == 9
    k.check()


@pytest.mark.parametrize("arch", ["s390x", "x86_64"])
def test_prot_none_makes_every_access_sigsegv_and_keeps_the_page(arch: str) -> None:
    k = reclaim.Kernel(profile="6.12", arch=arch, memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    n = p.mmap(PAGE, prot="none")
    assert p.read(n).signal == "SIGSEGV" and p.write(n, 1).signal == "SIGSEGV"
    a = p.mmap(PAGE, kind="shmem", shared=True)
    p.write(a, 5)
    p.mprotect(a, PAGE, "none")
    pte = p.pte(a)
    assert pte.present(), "PROT_NONE keeps the mapping"
    assert pte.hw_invalid() if arch == "s390x" else pte.value & 1 == 0, "but the CPU cannot use it"
    assert p.read(a).signal == "SIGSEGV" and p.write(a, 6).signal == "SIGSEGV"
    assert k.vmstat()["pgfault"] == 1, "refused before any fault handling"
    p.mprotect(a, PAGE, 3)  # PROT_READ | PROT_WRITE
    assert p.read(a).value == 5 and p.write(a, 6).completed
    k.check()


@pytest.mark.parametrize("profile", ["4.18", "6.12"])
def test_mprotect_back_to_writable_upgrades_exclusive_anon_ptes_from_60(profile: str) -> None:
    k = small_kernel(profile)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 1)
    p.mprotect(a, PAGE, "r")
    p.mprotect(a, PAGE, "rw")
    assert p.pte(a).write() == (profile == "6.12"), "MM_CP_TRY_CHANGE_WRITABLE is v6.0+"
    assert p.write(a, 2).completed
    k.check()


def test_mprotect_and_mmap_prot_errors_carry_kernel_errnos() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(3 * PAGE, prot=1)
    assert "VM_WRITE" not in p.vmas()[0][2] and p.write(a, 1).signal == "SIGSEGV"
    with pytest.raises(reclaim.SyscallError) as e:
        p.mprotect(a + 1, PAGE, "rw")
    assert e.value.errno_name == "EINVAL"
    with pytest.raises(reclaim.SyscallError) as e:
        p.mprotect(a, PAGE, 8)
    assert e.value.errno_name == "EINVAL"
    with pytest.raises(reclaim.ArgumentError, match="letters r, w, x"):
        p.mprotect(a, PAGE, "rq")
    p.munmap(a + PAGE, PAGE)
    with pytest.raises(reclaim.SyscallError) as e:
        p.mprotect(a, 3 * PAGE, "rw")
    assert e.value.errno_name == "ENOMEM" and e.value.errno == 12
    assert p.write(a, 1).completed, "as in the kernel, the VMA before the hole was changed"
    assert p.write(a + 2 * PAGE, 1).signal == "SIGSEGV", "the one after it was not"
    with pytest.raises(reclaim.SyscallError) as e:
        p.mprotect(a - 16 * PAGE, PAGE, "r")
    assert e.value.errno_name == "ENOMEM"
    k.check()


def test_mremap_moves_pages_and_swap_entries_and_the_rmap_follows() -> None:
    k = small_kernel("6.12")
    p = k.spawn("p")
    p.mmap(PAGE, kind="shmem", shared=True)  # blocks growth in place above `a`
    a = p.mmap(2 * PAGE)
    p.write(a, 0x11)
    p.write(a + PAGE, 0x22)
    p.madvise(a + PAGE, PAGE, "pageout")
    assert p.page_state(a + PAGE) == "swapped"
    b = p.mremap(a, 2 * PAGE, 4 * PAGE)
    assert b != a
    assert p.read(a).signal == "SIGSEGV", "the old range is unmapped"
    assert p.page_state(b) == "present" and p.page_state(b + PAGE) == "swapped"
    assert p.rss()["MM_ANONPAGES"] == 1 and p.rss()["MM_SWAPENTS"] == 1
    k.check()
    p.madvise(b, PAGE, "pageout")
    assert p.page_state(b) == "swapped", "the rmap finds the moved page at its new address"
    assert p.read(b).value == 0x11 and p.read(b + PAGE).value == 0x22
    assert p.read(b + 3 * PAGE).value == 0, "the grown part is new memory"
    k.check()


def test_mremap_grows_in_place_shrinks_and_without_maymove_is_enomem() -> None:
    k = small_kernel()
    p = k.spawn("p")
    p.mmap(PAGE, kind="shmem", shared=True)
    a = p.mmap(PAGE)
    p.write(a, 3)
    with pytest.raises(reclaim.SyscallError) as e:
        p.mremap(a, PAGE, 2 * PAGE, maymove=False)
    assert e.value.errno_name == "ENOMEM"
    b = p.mremap(a, PAGE, 2 * PAGE)
    assert b == a - 2 * PAGE, "top-down: the highest free gap"
    assert p.mremap(b, 2 * PAGE, 3 * PAGE, maymove=False) == b, "the old place is free now"
    assert next((s, e) for s, e, _ in p.vmas()) == (b, b + 3 * PAGE)
    assert p.mremap(b, 3 * PAGE, PAGE) == b
    assert p.read(b).value == 3 and p.read(b + PAGE).signal == "SIGSEGV"
    with pytest.raises(reclaim.SyscallError) as e:
        p.mremap(b + PAGE, PAGE, 2 * PAGE)
    assert e.value.errno_name == "EFAULT"
    with pytest.raises(reclaim.SyscallError) as e:
        p.mremap(b, PAGE, 0)
    assert e.value.errno_name == "EINVAL"
    k.check()
