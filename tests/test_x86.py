"""The x86_64 arch of the model: its PTE and swap formats, uffd-wp and MINOR faults."""

from __future__ import annotations

import pytest
import reclaim
import reclaim.s390

PAGE = 4096


def kernel() -> reclaim.Kernel:
    return reclaim.Kernel(profile="6.12", arch="x86_64", memory="16MiB", swap="16MiB", seed=1)


def test_x86_ptes_use_the_hardware_bits() -> None:
    k = kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 1)
    pte = p.pte(a)
    assert pte.arch == "x86_64" and pte.present() and pte.young() and pte.dirty() and pte.write()
    assert pte.value & 0x1 and pte.value & 0x20 and pte.value & 0x40, "P, A and D bits"
    assert not pte.unused(), "pte_unused is s390's"
    k.reclaim(16)
    sw = p.pte(a)
    assert sw.swap() and sw.swp_type() == 0 and sw.swp_offset() > 0
    assert sw.value & 0x1 == 0, "not present"
    assert p.read(a).value == 1
    k.check()


@pytest.mark.parametrize("profile", ["4.13", "4.17", "4.18", "6.12"])
def test_x86_swap_ptes_have_the_releases_layout(profile: str) -> None:
    """arch/x86/include/asm/pgtable_64.h ``__swp_entry``: up to v4.18 the offset sits as it is
    from bit 14 above the type (bits 9..13); v4.19's L1TF change stores it inverted, the type
    in bits 59..63 (6.12). ``Process.pte`` decodes in the profile's layout, and so does a
    ``Pte`` made with ``profile=``."""
    k = reclaim.Kernel(profile=profile, arch="x86_64", memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 1)
    k.reclaim(16)
    sw = p.pte(a)
    assert sw.swap() and sw.swp_type() == 0 and sw.swp_offset() > 0
    plain = sw.value >> 14 == sw.swp_offset()
    assert plain == (profile != "6.12"), hex(sw.value)
    again = reclaim.s390.Pte(sw.value, "x86_64", profile=profile)
    assert again.swp_offset() == sw.swp_offset() and again.swp_type() == 0
    assert p.read(a).value == 1
    k.check()


def test_x86_has_no_kvm_processes() -> None:
    with pytest.raises(reclaim.ArgumentError, match="s390x"):
        kernel().spawn("qemu", kvm=True)


def test_write_protect_fault_and_resolution() -> None:
    k = kernel()
    p = k.spawn("p")
    a = p.mmap(2 * PAGE)
    p.write(a, 5)
    u = p.userfaultfd(["PAGEFAULT_FLAG_WP"])
    ioctls = u.register(a, 2 * PAGE, missing=False, wp=True)
    assert ioctls & (1 << 0x06), "UFFDIO_WRITEPROTECT is offered for a WP range"
    u.writeprotect(a, PAGE)
    assert p.pte(a).uffd_wp() and not p.pte(a).write()
    r = p.write(a, 6)
    assert r.blocked and r.event is not None and r.event.wp and r.event.write
    assert p.read(a, tid=1).value == 5, "reads go through"
    u.writeprotect(a, PAGE, wp=False)
    last = p.last_access()
    assert last is not None and last.value == 6
    assert p.read(a).value == 6
    k.check()


def test_uffd_wp_survives_swap_out_and_in() -> None:
    k = kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    p.write(a, 7)
    u = p.userfaultfd()
    u.register(a, PAGE, missing=False, wp=True)
    u.writeprotect(a, PAGE)
    k.reclaim(16)
    assert p.pte(a).swap() and p.pte(a).swp_uffd_wp()
    assert p.read(a).value == 7
    assert p.write(a, 8).blocked, "swapped back in still write-protected"


def test_uffd_wp_on_shmem_survives_reclaim_and_madv_dontneed_as_a_pte_marker() -> None:
    """6.12 try_to_unmap_one / zap_pte_range → pte_install_uffd_wp_if_needed: a write-protected
    shmem PTE becomes a PTE_MARKER_UFFD_WP marker (SWP_PTE_MARKER, type 31), and a write after
    reclaim or MADV_DONTNEED is a WP userfault (handle_pte_marker → do_fault with the uffd-wp
    bit → do_wp_page), not a silent write."""
    for zap in ("reclaim", "dontneed"):
        k = kernel()
        p = k.spawn("p")
        a = p.mmap(PAGE, kind="shmem", shared=True)
        p.write(a, 3)
        u = p.userfaultfd()
        u.register(a, PAGE, missing=False, wp=True)
        u.writeprotect(a, PAGE)
        if zap == "reclaim":
            k.reclaim(64)
        else:
            p.madvise(a, PAGE, "dontneed")
        marker = p.pte(a)
        assert marker.swap() and marker.swp_type() == 31 and marker.swp_offset() == 1, zap
        assert p.read(a).value == 3, zap
        r = p.write(a, 4)
        assert r.blocked and r.event is not None and r.event.wp, zap
        k.check()


def test_minor_fault_on_shmem_resolved_by_continue() -> None:
    k = kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE, kind="shmem", shared=True)
    p.write(a, 9)
    u = p.userfaultfd(["MINOR_SHMEM"])
    u.register(a, PAGE, missing=False, minor=True)
    p.madvise(a, PAGE, "dontneed")
    r = p.read(a)
    assert r.blocked and r.event is not None and r.event.minor
    u.continue_(a)
    last = p.last_access()
    assert last is not None and last.value == 9
    k.check()


def test_minor_on_anonymous_memory_is_einval() -> None:
    k = kernel()
    p = k.spawn("p")
    a = p.mmap(PAGE)
    u = p.userfaultfd()
    with pytest.raises(reclaim.SyscallError) as e:
        u.register(a, PAGE, missing=False, minor=True)
    assert e.value.errno_name == "EINVAL"
