"""Page faults and userfaultfd: missing, write-protect and minor faults, the events of a
non-cooperative manager, and the UFFDIO_* calls, each golden test named after what it shows."""

from __future__ import annotations

import enum

import pytest
import reclaim
from conftest import PROFILES, small_kernel

PAGE = 4096


def armed(  # type: ignore[no-untyped-def]
    profile: str = "4.18",
    features: list[str] | None = None,
    kind: str = "anon",
    arch: str = "s390x",
):
    k = reclaim.Kernel(profile=profile, arch=arch, memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(4 * PAGE, kind=kind, shared=kind == "shmem")
    u = p.userfaultfd(features or [])
    u.register(a, 4 * PAGE, missing=True)
    return k, p, u, a


def test_first_touch_in_missing_range_raises_userfault() -> None:
    k, p, u, a = armed()
    r = p.read(a + 8)
    assert r.blocked and r.event is not None
    assert r.event.event == "PAGEFAULT" and not r.event.write
    assert r.event.address == a, "page-aligned without EXACT_ADDRESS"
    w = p.write(a + PAGE, 1, tid=1)
    assert w.blocked and w.event is not None and w.event.write
    evs = u.read_events()
    assert [(type(e), e.address) for e in evs if isinstance(e, reclaim.UffdPagefault)] == [
        (reclaim.UffdPagefault, a),
        (reclaim.UffdPagefault, a + PAGE),
    ]
    assert len(evs) == 2
    assert len(k.blocked()) == 2


def test_copy_then_access_no_userfault_and_copy_twice_is_eexist() -> None:
    k, p, u, a = armed()
    assert u.copy(a, 0x77) == PAGE
    assert p.read(a).value == 0x77
    with pytest.raises(reclaim.SyscallError) as e:
        u.copy(a, 0x88)
    assert e.value.errno_name == "EEXIST" and e.value.errno == 17
    assert p.read(a).value == 0x77, "the first copy's content stays"
    k.check()


def test_copy_wakes_the_blocked_thread_and_the_access_completes() -> None:
    _k, p, u, a = armed()
    assert p.read(a).blocked
    assert p.is_blocked()
    u.copy(a, 0x42)
    assert not p.is_blocked()
    last = p.last_access()
    assert last is not None and last.value == 0x42


def test_blocked_thread_cannot_access_until_woken() -> None:
    _k, p, _u, a = armed()
    p.read(a)
    with pytest.raises(reclaim.ThreadBlockedError, match="blocked on a userfault"):
        p.read(a + PAGE)
    assert p.read(a + PAGE, tid=2).blocked


def test_dontneed_on_copied_page_gives_remove_event_and_missing_fault() -> None:
    _k, p, u, a = armed(features=["EVENT_REMOVE"])
    u.copy(a, 5)
    p.madvise(a, PAGE, "dontneed")
    (ev,) = u.read_events()
    assert isinstance(ev, reclaim.UffdRemove) and (ev.event, ev.start, ev.end) == (
        "REMOVE",
        a,
        a + PAGE,
    )
    assert p.read(a).blocked


def test_copy_after_the_madvise_returned_succeeds_and_events_keep_their_order() -> None:
    """The kernel blocks MADV_DONTNEED until the manager read the REMOVE event, so once the
    call returned a COPY succeeds and the event is read before any later fault."""
    _k, p, u, a = armed(features=["EVENT_REMOVE"])
    u.copy(a, 5)
    p.madvise(a, PAGE, "dontneed")
    assert u.copy(a, 6) == PAGE
    p.madvise(a, PAGE, "dontneed")
    assert p.read(a).blocked
    assert [e.event for e in u.read_events()] == ["REMOVE", "REMOVE", "PAGEFAULT"]


@pytest.mark.parametrize("profile", PROFILES)
def test_swapped_page_in_missing_range_swaps_in_without_userfault(profile: str) -> None:
    k, p, u, a = armed(profile)
    u.copy(a, 0xAB)
    k.reclaim(64)
    assert p.page_state(a) == "swapped"
    r = p.read(a)
    assert r.completed and r.value == 0xAB
    assert p.page_state(a) == "present"
    assert k.vmstat()["pgmajfault"] == 1
    assert not u.read_events()


def test_unregistered_range_dontneed_then_read_gives_zeroes() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 3)
    p.madvise(a, PAGE, "dontneed")
    assert p.read(a).value == 0


def test_shmem_first_touch_in_missing_range_raises_userfault() -> None:
    k, p, u, a = armed(kind="shmem")
    assert p.read(a).blocked
    u.copy(a, 9)
    assert p.last_access() is not None and p.read(a).value == 9
    k.check()


def test_unregister_wakes_blocked_thread_and_access_completes() -> None:
    k, p, u, a = armed()
    assert p.write(a, 0x31).blocked
    u.unregister(a, 4 * PAGE)
    assert not p.is_blocked()
    last = p.last_access()
    assert last is not None and last.completed
    assert p.read(a).value == 0x31
    k.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_s390_refuses_wp_registration(profile: str) -> None:
    k = small_kernel(profile)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    u = p.userfaultfd()
    with pytest.raises(reclaim.SyscallError) as e:
        u.register(a, PAGE, missing=False, wp=True)
    assert e.value.errno_name == "EINVAL"


@pytest.mark.parametrize("profile", PROFILES)
def test_s390_offers_no_minor_or_wp_features(profile: str) -> None:
    k = small_kernel(profile)
    p = k.spawn("p")
    for f in ["MINOR_SHMEM", "WP_ASYNC"]:
        with pytest.raises(reclaim.SyscallError, match="not offered"):
            p.userfaultfd([f])


def test_register_takes_exactly_the_modes_named_and_missing_only_when_none_is() -> None:
    """userfaultfd_register (fs/userfaultfd.c, v6.12) has no default mode: it takes
    uffdio_register.mode as given and refuses 0 with EINVAL. A WP-only or MINOR-only range
    raises no MISSING fault on a read of a page never touched; a range registered with no mode
    named is MISSING."""
    k = reclaim.Kernel(profile="6.12", arch="x86_64", memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    u = p.userfaultfd()
    u.register(a, PAGE, wp=True)
    r = p.read(a)
    assert not r.blocked and r.value == 0, "WP only: no MISSING fault"
    u.register(a + PAGE, PAGE)
    r = p.read(a + PAGE)
    assert r.blocked and r.event is not None and r.event.event == "PAGEFAULT"
    assert not r.event.wp and not r.event.minor, "no mode named: MISSING"
    s = p.mmap(PAGE, kind="shmem", shared=True)
    p.userfaultfd(["MINOR_SHMEM"]).register(s, PAGE, minor=True)
    r = p.read(s, tid=1)
    assert not r.blocked and r.value == 0, "MINOR only: a page not in the cache is no fault"
    with pytest.raises(reclaim.SyscallArgumentError, match="mode is 0"):
        p.userfaultfd().register(p.mmap(PAGE), PAGE, missing=False)
    k.check()


def test_minor_alone_on_417_is_refused_for_minor_only() -> None:
    """minor=True asks for MINOR (0x4) alone, which 4.17 does not know: the EINVAL names that
    mode, not MISSING|MINOR (0x5)."""
    k = small_kernel("4.17")
    p = k.spawn("p")
    a = p.mmap(PAGE, kind="shmem", shared=True)
    with pytest.raises(reclaim.SyscallArgumentError, match="mode 0x4 has bits"):
        p.userfaultfd().register(a, PAGE, minor=True)


def test_register_errors_carry_kernel_errnos() -> None:
    k = small_kernel("4.18")
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    u = p.userfaultfd()
    with pytest.raises(reclaim.SyscallError, match="page-aligned"):
        u.register(a + 1, PAGE)
    with pytest.raises(reclaim.SyscallError, match="len is 0"):
        u.register(a, 0)
    with pytest.raises(reclaim.SyscallError) as e:
        u.register(a + (1 << 30), PAGE)
    assert e.value.errno_name == "ENOMEM", "4.18: no VMA at or above the start"
    u2 = p.userfaultfd()
    u.register(a, PAGE)
    with pytest.raises(reclaim.SyscallError) as e2:
        u2.register(a, PAGE)
    assert e2.value.errno_name == "EBUSY"


def test_copy_outside_registered_range_is_enoent() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    u = p.userfaultfd()
    u.register(a, PAGE)
    with pytest.raises(reclaim.SyscallError) as e:
        u.copy(a + PAGE, 1)
    assert e.value.errno_name == "ENOENT"


def test_zeropage_maps_the_zero_page_or_a_zeroed_folio() -> None:
    # Before v6.10 UFFDIO_ZEROPAGE maps the zero page even where mm_forbids_zeropage(); since
    # v6.10 it places a zeroed folio there, and since v6.11 a KVM guest forbids the zero page
    # only once it uses storage keys (or is protected).
    for profile, skeys, zero_page in [
        ("4.18", True, True),
        ("6.12", False, True),
        ("6.12", True, False),
    ]:
        k = small_kernel(profile)
        q = k.spawn("qemu", kvm=True)
        if skeys:
            q.enable_skey()
        a = q.mmap(PAGE)
        u = q.userfaultfd()
        u.register(a, PAGE)
        u.zeropage(a)
        assert (q.pte(a).pfn() == 0) == zero_page, profile
        assert q.read(a).value == 0
        q.write(a, 4)
        assert q.read(a).value == 4
        k.check()


def test_sigbus_feature_turns_userfaults_into_sigbus() -> None:
    _k, p, _u, a = armed(features=["SIGBUS"])
    assert p.read(a).signal == "SIGBUS"


def test_thread_id_and_exact_address_features() -> None:
    """EXACT_ADDRESS gives the faulting byte where the hardware reports it (x86_64, CR2) and
    the page on s390x (6.12 get_fault_address: teid.addr * PAGE_SIZE)."""
    for arch, offset in (("x86_64", 24), ("s390x", 0)):
        _k, p, _u, a = armed("6.12", features=["THREAD_ID", "EXACT_ADDRESS"], arch=arch)
        r = p.read(a + 24, tid=7)
        assert r.event is not None and r.event.ptid == p.pid + 7, arch
        assert r.event.address == a + offset, arch


def test_fork_event_gives_the_child_its_own_userfaultfd() -> None:
    _k, p, u, a = armed(features=["EVENT_FORK"])
    c = p.fork()
    (ev,) = u.read_events()
    assert isinstance(ev, reclaim.UffdFork) and ev.event == "FORK"
    assert ev.ufd != u.id and ev.uffd == u.id, "arg.fork.ufd names the child's new userfaultfd"
    assert c.read(a).blocked


def test_fork_without_event_fork_unregisters_the_child() -> None:
    _k, p, _u, a = armed()
    c = p.fork()
    assert c.read(a).value == 0


def test_close_wakes_and_disarms() -> None:
    _k, p, u, a = armed()
    assert p.read(a).blocked
    u.close()
    assert not p.is_blocked()
    assert p.read(a + PAGE).completed


def test_unmap_event() -> None:
    _k, p, u, a = armed(features=["EVENT_UNMAP"])
    p.munmap(a, 2 * PAGE)
    (ev,) = u.read_events()
    assert isinstance(ev, reclaim.UffdUnmap) and (ev.event, ev.start, ev.end) == (
        "UNMAP",
        a,
        a + 2 * PAGE,
    )


def test_write_to_readonly_zero_page_copies() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    assert p.read(a).value == 0
    assert p.pte(a).pfn() == 0, "a read of a plain process maps the zero page"
    p.write(a, 5)
    assert p.pte(a).pfn() != 0
    k.check()


def test_kvm_process_never_gets_the_zero_page_from_a_fault() -> None:
    k = small_kernel("4.18")
    q = k.spawn("qemu", kvm=True)
    a = q.mmap(PAGE)
    q.read(a)
    assert q.pte(a).pfn() != 0, "mm_forbids_zeropage(mm_has_pgste)"


def test_minor_on_swapped_shmem_page_faults_before_swapping_in() -> None:
    """shmem_get_folio_gfp (v6.12): `if (folio && vma && userfaultfd_minor(vma))` sees the swap
    value from filemap_get_entry and raises MINOR before shmem_swapin_folio; UFFDIO_CONTINUE's
    shmem_get_folio then reads the page back in."""
    k = reclaim.Kernel(profile="6.12", arch="x86_64", memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(PAGE, kind="shmem", shared=True)
    p.write(a, 9)
    u = p.userfaultfd(["MINOR_SHMEM"])
    u.register(a, PAGE, missing=False, minor=True)
    k.reclaim(64)
    assert k.vmstat()["pswpout"] == 1 and p.page_state(a) == "none"
    r = p.read(a)
    assert r.blocked and r.event is not None and r.event.minor
    assert k.vmstat()["pswpin"] == 0, "the MINOR fault leaves the page in swap"
    u.continue_(a)
    assert k.vmstat()["pswpin"] == 1 and k.vmstat()["pgmajfault"] == 0
    last = p.last_access()
    assert last is not None and last.value == 9
    assert p.page_state(a) == "present"
    k.check()


def armed_under_a_mapping(features: list[str], profile: str = "4.18"):  # type: ignore[no-untyped-def]
    """As armed(), below another mapping, so that mremap cannot grow it in place."""
    k = small_kernel(profile)
    p = k.spawn("p")
    p.mmap(PAGE, kind="shmem", shared=True)
    a = p.mmap(4 * PAGE)
    u = p.userfaultfd(features)
    u.register(a, 4 * PAGE, missing=True)
    return k, p, u, a


def test_mremap_with_event_remap_keeps_registration_and_reports_the_move() -> None:
    k, p, u, a = armed_under_a_mapping(["EVENT_REMAP", "EVENT_UNMAP"])
    u.copy(a, 0x5A)
    b = p.mremap(a, 4 * PAGE, 8 * PAGE)
    assert b != a
    ev, unmap = u.read_events()
    assert isinstance(ev, reclaim.UffdRemap) and (ev.from_, ev.to, ev.len) == (a, b, 4 * PAGE)
    assert isinstance(unmap, reclaim.UffdUnmap)
    assert (unmap.start, unmap.end) == (a, a + 4 * PAGE), "old range last"
    assert "VM_UFFD_MISSING" in next(f for s, _, f in p.vmas() if s == b)
    assert p.read(b).value == 0x5A, "the copied page moved with its PTE"
    r = p.read(b + PAGE)
    assert r.blocked and r.event is not None and r.event.address == b + PAGE
    k.check()


def test_mremap_before_50_without_event_remap_keeps_the_registration_silently() -> None:
    """v4.18 mremap_userfaultfd_prep only handled EVENT_REMAP; the flag clearing is v5.0."""
    k, p, u, a = armed_under_a_mapping(["EVENT_UNMAP"], profile="4.18")
    u.copy(a, 1)
    b = p.mremap(a, 4 * PAGE, 8 * PAGE)
    assert [e.event for e in u.read_events()] == ["UNMAP"], "no REMAP event"
    assert "VM_UFFD_MISSING" in next(f for s, _, f in p.vmas() if s == b)
    assert p.read(b + PAGE).blocked, "still armed at an address the manager never heard of"
    k.check()


def test_mremap_without_event_remap_drops_the_registration() -> None:
    k, p, u, a = armed_under_a_mapping(["EVENT_UNMAP"], profile="6.12")
    u.copy(a, 1)  # an anon_vma: copy_vma keeps vm_pgoff and cannot merge with the old VMA
    b = p.mremap(a, 4 * PAGE, 8 * PAGE)
    assert b != a
    (ev,) = u.read_events()
    assert isinstance(ev, reclaim.UffdUnmap) and (ev.start, ev.end) == (a, a + 4 * PAGE)
    assert not any("VM_UFFD_MISSING" in f for _, _, f in p.vmas())
    r = p.read(b + PAGE)
    assert r.completed and r.value == 0, "no longer armed: a plain zero-page fault"
    assert p.read(b).value == 1
    k.check()


def test_mremap_in_place_raises_no_remap_event_and_the_vma_stays_armed() -> None:
    k, p, u, a = armed(features=["EVENT_REMAP"])
    assert p.mremap(a, 4 * PAGE, 5 * PAGE) == a
    assert not u.read_events()
    assert p.read(a + 4 * PAGE).blocked, "vma_expand grows the registered VMA"
    k.check()


def test_features_by_name_or_raw_bit_and_unknown_bits_refused_by_uffdio_api() -> None:
    """userfaultfd_api (fs/userfaultfd.c, v4.18 and v6.12): features outside UFFD_API_FEATURES
    are EINVAL; a raw BIT<n> expresses such a request, an unknown name is refused before."""
    p = small_kernel("6.12").spawn("p")
    assert p.userfaultfd(["BIT1", "uffd_feature_thread_id"]).features == (1 << 1) | (1 << 8)
    with pytest.raises(reclaim.SyscallArgumentError) as e:
        p.userfaultfd(["BIT63"])
    assert e.value.errno_name == "EINVAL" and e.value.call == "UFFDIO_API"
    with pytest.raises(reclaim.ArgumentError, match="BIT0 to BIT63"):
        p.userfaultfd(["BIT64"])
    with pytest.raises(reclaim.ArgumentError, match="unknown userfaultfd feature"):
        p.userfaultfd(["EVENT_NOPE"])


def test_every_mask_the_api_returns_is_a_named_flag() -> None:
    """The masks of include/uapi/linux/userfaultfd.h as enum.IntFlag: uffdio_api.features
    (userfaultfd_api), uffdio_register.ioctls (userfaultfd_register: UFFD_API_RANGE_IOCTLS,
    less _UFFDIO_WRITEPROTECT/_UFFDIO_CONTINUE without WP/MINOR mode, v6.12) and
    uffd_msg.arg.pagefault.flags (userfaultfd_msg / handle_userfault). x86_64: it has uffd-wp
    (HAVE_ARCH_USERFAULTFD_WP), s390 has not."""
    k = reclaim.Kernel(profile="6.12", arch="x86_64", memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    u = p.userfaultfd(["THREAD_ID"])
    assert isinstance(u.features, enum.IntFlag) and u.features == reclaim.UffdFeature["THREAD_ID"]
    assert (
        isinstance(u.offered, reclaim.UffdFeature)
        and reclaim.UffdFeature["EXACT_ADDRESS"] in u.offered
    )
    a = p.mmap(4 * PAGE)
    ioctls = u.register(a, PAGE)
    assert isinstance(ioctls, reclaim.UffdIoctl)
    io = reclaim.UffdIoctl
    assert io["WAKE"] | io["COPY"] | io["ZEROPAGE"] in ioctls and io["WRITEPROTECT"] not in ioctls
    assert int(ioctls) & (1 << 3), "still an int: _UFFDIO_COPY is bit 3"
    assert io["WRITEPROTECT"] in u.register(a + PAGE, PAGE, wp=True)
    w = p.write(a, 7)
    msg = w.event
    assert msg is not None and isinstance(msg, reclaim.UffdPagefault)
    assert isinstance(msg.flags, reclaim.UffdPagefaultFlag)
    assert msg.flags == reclaim.UffdPagefaultFlag["WRITE"] and msg.write
