"""Memory failure (MADV_HWPOISON) on x86_64: hwpoison entries from try_to_unmap_one, SIGBUS on
access, fork and teardown; EINVAL on s390, which has no CONFIG_MEMORY_FAILURE."""

from __future__ import annotations

import pytest
import reclaim

PAGE = 4096
X86_PROFILES = ("4.17", "4.18", "6.12")
# SWP_HWPOISON = MAX_SWAPFILES with DEVICE_PRIVATE, MIGRATION and (6.x) a PTE marker type
SWP_HWPOISON = {"4.17": 27, "4.18": 27, "6.12": 23}


def x86(profile: str = "6.12") -> reclaim.Kernel:
    return reclaim.Kernel(profile=profile, arch="x86_64", memory="16MiB", swap="16MiB", seed=1)


def written(k: reclaim.Kernel, n: int) -> tuple[reclaim.Process, int]:
    p = k.spawn("p")
    a = p.mmap(n * PAGE)
    for i in range(n):
        p.write(a + i * PAGE, 100 + i)
    return p, a


@pytest.mark.parametrize("profile", X86_PROFILES)
def test_poisoned_page_is_unmapped_and_its_access_is_sigbus(profile: str) -> None:
    k = x86(profile)
    p, a = written(k, 3)
    free = k.meminfo()["MemFree"]
    p.madvise(a + PAGE, PAGE, "hwpoison")
    k.check()
    pte = p.pte(a + PAGE)
    assert pte.swap() and not pte.present()
    assert pte.swp_type() == SWP_HWPOISON[profile]
    assert p.rss()["MM_ANONPAGES"] == 2 and p.rss()["MM_SWAPENTS"] == 0, "no swap entry counted"
    assert k.meminfo()["SwapFree"] == k.meminfo()["SwapTotal"], "no swap slot is held"
    assert k.meminfo()["MemFree"] == free, "the poisoned frame is not freed"
    assert p.page_state(a + PAGE) == "swapped", "pagemap reports PM_SWAP"
    ttu = [e for e in k.events("rmap:try_to_unmap_one") if e.addr == a + PAGE]
    assert len(ttu) == 1 and "hwpoison_entry" in ttu[0].text
    r = p.read(a + PAGE)
    assert r.kind == "sigbus" and r.signal == "SIGBUS"
    assert p.write(a + PAGE, 7).kind == "sigbus"
    assert p.read(a).value == 100 and p.read(a + 2 * PAGE).value == 102, "neighbours untouched"
    k.check()


def test_poisoned_page_is_never_allocated_again() -> None:
    k = x86()
    p, a = written(k, 1)
    pfn = p.pte(a).pfn()
    # the allocator is LIFO: a freed poisoned page would be the next one handed out
    p.madvise(a, PAGE, "hwpoison")
    q = k.spawn("q")
    b = q.mmap(2048 * PAGE)
    for i in range(2048):
        q.write(b + i * PAGE, i)
        pte = q.pte(b + i * PAGE)
        assert not (pte.present() and pte.pfn() == pfn), "the poisoned page was allocated"
    k.reclaim(4096)
    k.check()
    assert p.read(a).kind == "sigbus", "reclaim does not touch the hwpoison entry"


def test_poisoning_reaches_every_mapper_and_fork_copies_the_entry() -> None:
    k = x86()
    p, a = written(k, 2)
    c = p.fork()
    p.madvise(a, PAGE, "hwpoison")
    k.check()
    assert c.pte(a).swp_type() == SWP_HWPOISON["6.12"], "the rmap walk unmapped the child's PTE too"
    assert c.read(a).kind == "sigbus" and c.read(a + PAGE).value == 101
    g = c.fork()
    k.check()
    assert g.pte(a).swp_type() == SWP_HWPOISON["6.12"]
    assert g.read(a).kind == "sigbus"
    assert g.rss()["MM_SWAPENTS"] == 0


def test_munmap_dontneed_and_exit_clear_the_entry() -> None:
    k = x86()
    p, a = written(k, 4)
    p.madvise(a, 4 * PAGE, "hwpoison")
    k.check()
    assert all(p.page_state(a + i * PAGE) == "swapped" for i in range(4))
    p.madvise(a, PAGE, "dontneed")
    k.check()
    assert p.page_state(a) == "none"
    assert p.read(a).value == 0, "a fresh zero page after MADV_DONTNEED"
    p.munmap(a + PAGE, PAGE)
    k.check()
    assert p.read(a + PAGE).kind == "sigsegv"
    c = p.fork()
    p.exit()
    k.check()
    assert c.read(a + 2 * PAGE).kind == "sigbus"
    c.exit()
    k.check()


def test_madv_free_clears_the_entry_on_612_and_keeps_it_on_4x() -> None:
    for profile, kept in (("4.18", True), ("6.12", False)):
        k = x86(profile)
        p, a = written(k, 1)
        p.madvise(a, PAGE, "hwpoison")
        p.madvise(a, PAGE, "free")
        p.madvise(a, PAGE, "willneed")
        k.check()
        assert (p.page_state(a) == "swapped") is kept, profile
        assert p.read(a).kind == ("sigbus" if kept else "completed"), profile


def test_hwpoison_errors() -> None:
    k = x86()
    p, a = written(k, 1)
    b = p.mmap(PAGE)
    # madvise_inject_error's get_user_pages_fast faults the untouched page in (the zero page)
    with pytest.raises(reclaim.SyscallError) as e:
        p.madvise(b, PAGE, "hwpoison")
    assert e.value.errno_name == "EBUSY" and "zero page" in str(e.value)
    assert p.page_state(b) == "present", "GUP's read fault mapped the zero page"
    p.madvise(a, PAGE, "hwpoison")
    with pytest.raises(reclaim.SyscallError) as e:
        p.madvise(a, PAGE, "hwpoison")
    assert e.value.errno_name == "EFAULT" and "already poisoned" in str(e.value)
    with pytest.raises(reclaim.SyscallError) as e:
        p.madvise(b + 16 * PAGE, PAGE, "hwpoison")
    assert e.value.errno_name == "EFAULT"
    k.check()


@pytest.mark.parametrize("profile", ["4.17", "4.18", "6.12"])
def test_s390_has_no_memory_failure(profile: str) -> None:
    k = reclaim.Kernel(profile=profile, arch="s390x", memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 1)
    with pytest.raises(reclaim.SyscallError) as e:
        p.madvise(a, PAGE, "hwpoison")
    assert e.value.errno_name == "EINVAL" and "CONFIG_MEMORY_FAILURE" in str(e.value)
    assert p.pte(a).present() and p.read(a).value == 1
    k.check()
