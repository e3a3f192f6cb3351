"""The library of cross-check scenarios, each named after what it shows.

Each scenario's ``expect`` values are what Linux (6.x, x86_64) gives; the kernel run is checked
against them, the model run is compared with the kernel run.
"""

from __future__ import annotations

from reclaim.crosscheck.scenario import (
    Close,
    Continue,
    Copy,
    Fork,
    Madvise,
    Mmap,
    Munmap,
    PageState,
    Read,
    ReadEvents,
    Register,
    Scenario,
    Step,
    SwapEntry,
    SwapUsage,
    Touch,
    Uffd,
    Unregister,
    Wait,
    Wake,
    Write,
    WriteProtect,
    Zeropage,
)


def _armed(*features: str, kind: str = "anon", pages: int = 4) -> tuple[Step, ...]:
    """Map ``m`` (``pages`` pages), create ``u`` with ``features``, register all of ``m`` for
    MISSING faults."""
    shared = kind == "shmem"
    return (
        Mmap("m", pages, kind=kind, shared=shared),
        Uffd(features=features, expect="ok"),
        Register("m", expect="ok"),
    )


def _s(
    name: str,
    doc: str,
    *steps: Step,
    needs: tuple[str, ...] = (),
    arches: tuple[str, ...] = (),
) -> Scenario:
    return Scenario(
        name=name, doc=doc, steps=tuple(steps), needs=frozenset(needs), arches=frozenset(arches)
    )


LIBRARY: list[Scenario] = [
    # -- MISSING faults on anonymous memory ----------------------------------------------------
    _s(
        "missing_read_fault_blocks_with_read_flags",
        "A first read in a MISSING range parks the thread; the PAGEFAULT has no WRITE flag.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        ReadEvents(expect="[PAGEFAULT u m[0] read]"),
    ),
    _s(
        "missing_write_fault_has_write_flag",
        "A first write in a MISSING range parks the thread with UFFD_PAGEFAULT_FLAG_WRITE.",
        *_armed(),
        Write("m", 1, 0x31, expect="blocked: PAGEFAULT u m[1] write"),
        ReadEvents(expect="[PAGEFAULT u m[1] write]"),
    ),
    _s(
        "copy_then_access_has_no_userfault",
        "UFFDIO_COPY maps the page: reads and writes then complete without a userfault.",
        *_armed(),
        Copy("m", 0, 0x77, expect="ok"),
        Read("m", 0, expect="value 0x77"),
        Write("m", 0, 0x78, expect="written"),
        Read("m", 0, expect="value 0x78"),
        ReadEvents(expect="[]"),
    ),
    _s(
        "copy_wakes_blocked_reader_with_the_content",
        "COPY resolves a parked read: the woken thread reads the copied content.",
        *_armed(),
        Read("m", 2, expect="blocked: PAGEFAULT u m[2] read"),
        Copy("m", 2, 0x42, expect="ok"),
        Wait(expect="value 0x42"),
    ),
    _s(
        "copy_twice_is_eexist_and_keeps_the_first_copy",
        "A second COPY over a mapped page fails with EEXIST; the first content stays.",
        *_armed(),
        Copy("m", 0, 0x77, expect="ok"),
        Copy("m", 0, 0x88, expect="EEXIST"),
        Read("m", 0, expect="value 0x77"),
    ),
    _s(
        "copy_dontwake_leaves_the_thread_parked_until_wake",
        "COPY with DONTWAKE maps the page but does not wake; UFFDIO_WAKE then does.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Copy("m", 0, 0x55, dontwake=True, expect="ok"),
        Wait(expect="blocked m[0]"),
        Wake("m", 0, expect="ok"),
        Wait(expect="value 0x55"),
    ),
    _s(
        "zeropage_then_read_gives_zero",
        "UFFDIO_ZEROPAGE maps zeroes: a read completes with 0, a write then sticks.",
        *_armed(),
        Zeropage("m", 0, expect="ok"),
        PageState("m", 0, expect="present"),
        Read("m", 0, expect="value 0x0"),
        Write("m", 0, 4, expect="written"),
        Read("m", 0, expect="value 0x4"),
    ),
    _s(
        "zeropage_twice_is_eexist",
        "A second ZEROPAGE over a mapped page fails with EEXIST.",
        *_armed(),
        Zeropage("m", 1, expect="ok"),
        Zeropage("m", 1, expect="EEXIST"),
    ),
    _s(
        "zeropage_wakes_blocked_writer",
        "ZEROPAGE resolves a parked write, which then lands in the page.",
        *_armed(),
        Write("m", 3, 0x99, expect="blocked: PAGEFAULT u m[3] write"),
        Zeropage("m", 3, expect="ok"),
        Wait(expect="written"),
        Read("m", 3, expect="value 0x99"),
    ),
    _s(
        "wake_without_a_page_faults_again",
        "UFFDIO_WAKE with no page mapped: the thread retries and faults again (a new message).",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        ReadEvents(expect="[PAGEFAULT u m[0] read]"),
        Wake("m", 0, expect="ok"),
        Wait(expect="blocked m[0]"),
        ReadEvents(expect="[PAGEFAULT u m[0] read]"),
        Copy("m", 0, 0x11, expect="ok"),
        Wait(expect="value 0x11"),
    ),
    # -- madvise and the non-cooperative events --------------------------------------------
    _s(
        "dontneed_on_copied_page_then_missing_fault",
        "MADV_DONTNEED drops a copied page: the next read is a MISSING userfault again.",
        *_armed(),
        Copy("m", 0, 5, expect="ok"),
        Read("m", 0, expect="value 0x5"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        PageState("m", 0, expect="none"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    _s(
        "dontneed_gives_remove_event_with_event_remove",
        "With UFFD_FEATURE_EVENT_REMOVE, MADV_DONTNEED of a registered range is a REMOVE event.",
        *_armed("EVENT_REMOVE"),
        Copy("m", 0, 5, expect="ok"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        ReadEvents(expect="[REMOVE u m[0:1]]"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    _s(
        "dontneed_gives_no_event_without_event_remove",
        "Without EVENT_REMOVE, MADV_DONTNEED tells the manager nothing.",
        *_armed(),
        Copy("m", 0, 5, expect="ok"),
        Madvise("m", 0, 2, "dontneed", expect="ok"),
        ReadEvents(expect="[]"),
    ),
    _s(
        "copy_after_dontneed_returned_succeeds",
        "The kernel blocks MADV_DONTNEED until the REMOVE event is read, so once madvise has "
        "returned, mmap_changing is over and COPY succeeds even before the manager's "
        "read_events step.",
        *_armed("EVENT_REMOVE"),
        Copy("m", 0, 5, expect="ok"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Copy("m", 0, 6, expect="ok"),
        ReadEvents(expect="[REMOVE u m[0:1]]"),
        Read("m", 0, expect="value 0x6"),
    ),
    _s(
        "remove_event_comes_before_a_later_fault",
        "A REMOVE event is read before the PAGEFAULT of an access made after the madvise "
        "(the madvise returned only once the event was read).",
        *_armed("EVENT_REMOVE"),
        Copy("m", 0, 5, expect="ok"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Read("m", 1, expect="blocked: PAGEFAULT u m[1] read"),
        ReadEvents(expect="[REMOVE u m[0:1], PAGEFAULT u m[1] read]"),
    ),
    _s(
        "munmap_gives_unmap_event",
        "With UFFD_FEATURE_EVENT_UNMAP, munmap of part of a registered range is an UNMAP event.",
        *_armed("EVENT_UNMAP"),
        Munmap("m", 0, 2, expect="ok"),
        ReadEvents(expect="[UNMAP u m[0:2]]"),
    ),
    _s(
        "remove_event_covers_only_the_registered_part",
        "MADV_DONTNEED over a range that is only partly registered: madvise works VMA by VMA, "
        "so the REMOVE event covers only the registered VMA's part of the range.",
        Mmap("m", 4),
        Uffd(features=("EVENT_REMOVE",), expect="ok"),
        Register("m", 1, 2, expect="ok"),
        Madvise("m", 0, 4, "dontneed", expect="ok"),
        ReadEvents(expect="[REMOVE u m[1:3]]"),
    ),
    _s(
        "unmap_event_covers_the_whole_munmap_range",
        "munmap over a range that is only partly registered: the UNMAP event carries the whole "
        "munmap range, once per userfaultfd.",
        Mmap("m", 4),
        Uffd(features=("EVENT_UNMAP",), expect="ok"),
        Register("m", 1, 2, expect="ok"),
        Munmap("m", 0, 4, expect="ok"),
        ReadEvents(expect="[UNMAP u m[0:4]]"),
    ),
    _s(
        "madv_free_gives_remove_event",
        "MADV_FREE goes through the same userfaultfd_remove as MADV_DONTNEED: a REMOVE event.",
        *_armed("EVENT_REMOVE"),
        Copy("m", 2, 5, expect="ok"),
        Madvise("m", 2, 1, "free", expect="ok"),
        ReadEvents(expect="[REMOVE u m[2:3]]"),
        Read("m", 2, expect="value 0x5"),
    ),
    _s(
        "lazyfree_then_read_keeps_the_content",
        "MADV_FREE marks the page lazily freeable; with no reclaim in between, a read still "
        "sees the content and no userfault happens.",
        Mmap("m", 4),
        Write("m", 0, 0x61, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 1, "free", expect="ok"),
        Read("m", 0, expect="value 0x61"),
        ReadEvents(expect="[]"),
    ),
    _s(
        "lazyfree_then_pageout_discards_then_missing_fault",
        "MADV_FREE then MADV_PAGEOUT: the clean lazyfree page is discarded (not swapped), so "
        "the next read in the MISSING range is a userfault.",
        Mmap("m", 4),
        Write("m", 0, 0x62, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 1, "free", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    _s(
        "madv_remove_on_private_anon_is_einval",
        "MADV_REMOVE needs a shared mapping: on private anonymous memory it is EINVAL.",
        Mmap("m", 2),
        Madvise("m", 0, 1, "remove", expect="EINVAL"),
    ),
    _s(
        "pageout_to_swap_then_read_back_without_userfault",
        "MADV_PAGEOUT writes a dirty anon page to swap: pagemap says swapped, and a read in the "
        "MISSING range swaps it in intact without a userfault.",
        Mmap("m", 4),
        Write("m", 0, 0xAB, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        PageState("m", 0, expect="swapped"),
        Read("m", 0, expect="value 0xab"),
        PageState("m", 0, expect="present"),
        ReadEvents(expect="[]"),
        needs=("swap",),
    ),
    _s(
        "shmem_pageout_to_swap_then_read_back_without_userfault",
        "MADV_PAGEOUT of a written shmem page (a shared memfd) unmaps it and shmem_writeout "
        "moves it to swap: smaps counts it as swap, pagemap says none (shmem keeps the swap "
        "entry in the page cache, not in the PTE). The read back swaps the content in with no "
        "MISSING userfault; the page not paged out is untouched.",
        Mmap("m", 4, kind="shmem", shared=True),
        Write("m", 0, 0xC1, expect="written"),
        Write("m", 1, 0xC2, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        SwapUsage("m", expect="swap 1"),
        PageState("m", 1, expect="present"),
        Read("m", 0, expect="value 0xc1"),
        PageState("m", 0, expect="present"),
        Read("m", 1, expect="value 0xc2"),
        ReadEvents(expect="[]"),
        needs=("swap",),
    ),
    _s(
        "shmem_pageout_without_swap_keeps_the_page_cache",
        "Without swap MADV_PAGEOUT of a written shmem page still unmaps it (try_to_unmap runs "
        "before pageout), but shmem_writeout has nowhere to write it and redirties it: nothing "
        "goes to swap, the page stays in the page cache and the read back maps it again with "
        "no MISSING userfault.",
        Mmap("m", 4, kind="shmem", shared=True),
        Write("m", 0, 0xC3, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        SwapUsage("m", expect="swap 0"),
        Read("m", 0, expect="value 0xc3"),
        ReadEvents(expect="[]"),
        needs=("no_swap",),
    ),
    _s(
        "lazyfree_redirtied_survives_pageout_others_discarded",
        "MADV_FREE of three written pages, a write to the second, MADV_PAGEOUT of all three: "
        "the clean lazyfree pages are discarded (a read in the MISSING range is a userfault); "
        "try_to_unmap_one restores the redirtied one's PTE and makes it swap-backed again, so "
        "it keeps its new content and this pageout does not swap it, swap or not.",
        Mmap("m", 4),
        Write("m", 0, 0xD0, expect="written"),
        Write("m", 1, 0xD1, expect="written"),
        Write("m", 2, 0xD2, expect="written"),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Madvise("m", 0, 3, "free", expect="ok"),
        Write("m", 1, 0xE1, expect="written"),
        Madvise("m", 0, 3, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        PageState("m", 1, expect="present"),
        PageState("m", 2, expect="none"),
        SwapUsage("m", expect="swap 0"),
        Read("m", 1, expect="value 0xe1"),
        Read("m", 2, expect="blocked: PAGEFAULT u m[2] read"),
        ReadEvents(expect="[PAGEFAULT u m[2] read]"),
    ),
    _s(
        "lazyfree_redirtied_then_second_pageout_swaps_it",
        "The redirtied lazyfree page is swap-backed again after the first MADV_PAGEOUT, so a "
        "second one writes it to swap like any anon page: pagemap says swapped and the read "
        "swaps the new content in; the discarded page reads back as zero (not registered).",
        Mmap("m", 4),
        Write("m", 0, 0xD3, expect="written"),
        Write("m", 1, 0xD4, expect="written"),
        Madvise("m", 0, 2, "free", expect="ok"),
        Write("m", 1, 0xE4, expect="written"),
        Madvise("m", 0, 2, "pageout", expect="ok"),
        PageState("m", 1, expect="present"),
        Madvise("m", 0, 2, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        PageState("m", 1, expect="swapped"),
        SwapUsage("m", expect="swap 1"),
        Read("m", 1, expect="value 0xe4"),
        Read("m", 0, expect="value 0x0"),
        needs=("swap",),
    ),
    _s(
        "lazyfree_redirtied_without_swap_stays_resident",
        "Without swap the redirtied lazyfree page, swap-backed again, survives a second "
        "MADV_PAGEOUT too (add_to_swap fails): present with its new content, nothing on swap; "
        "the clean one is discarded all the same and reads back as zero.",
        Mmap("m", 4),
        Write("m", 0, 0xD5, expect="written"),
        Write("m", 1, 0xD6, expect="written"),
        Madvise("m", 0, 2, "free", expect="ok"),
        Write("m", 1, 0xE6, expect="written"),
        Madvise("m", 0, 2, "pageout", expect="ok"),
        Madvise("m", 0, 2, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        PageState("m", 1, expect="present"),
        SwapUsage("m", expect="swap 0"),
        Read("m", 1, expect="value 0xe6"),
        Read("m", 0, expect="value 0x0"),
        needs=("no_swap",),
    ),
    # -- fork ------------------------------------------------------------------------------
    _s(
        "fork_event_child_faults_on_the_child_userfaultfd",
        "With UFFD_FEATURE_EVENT_FORK the child's VMAs stay registered with a new userfaultfd "
        "(the FORK event hands it out); the child's first touch faults on it.",
        *_armed("EVENT_FORK"),
        Fork(expect="ok"),
        ReadEvents(expect="[FORK u -> u/fork]"),
        Read("m", 0, proc="child", expect="blocked: PAGEFAULT u/fork m[0] read"),
        ReadEvents(expect="[]"),
    ),
    _s(
        "fork_event_child_sees_copied_pages",
        "Pages copied before the fork are shared copy-on-write: the child reads them without "
        "a userfault.",
        *_armed("EVENT_FORK"),
        Copy("m", 0, 0x21, expect="ok"),
        Fork(expect="ok"),
        ReadEvents(expect="[FORK u -> u/fork]"),
        Read("m", 0, proc="child", expect="value 0x21"),
    ),
    _s(
        "fork_event_needs_a_registered_vma",
        "EVENT_FORK with nothing registered: dup_userfaultfd never runs, so there is no FORK "
        "event.",
        Mmap("m", 2),
        Uffd(features=("EVENT_FORK",), expect="ok"),
        Fork(expect="ok"),
        ReadEvents(expect="[]"),
        Read("m", 0, proc="child", expect="value 0x0"),
    ),
    _s(
        "fork_without_event_fork_unregisters_the_child",
        "Without EVENT_FORK the child's copy of the range is not registered: it reads zeroes.",
        *_armed(),
        Fork(expect="ok"),
        Read("m", 0, proc="child", expect="value 0x0"),
        ReadEvents(expect="[]"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    # -- waking by unregister and close ----------------------------------------------------
    _s(
        "unregister_wakes_blocked_fault_which_reads_zero",
        "UFFDIO_UNREGISTER wakes a parked fault; it retries in the unregistered VMA and reads 0.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Unregister("m", expect="ok"),
        Wait(expect="value 0x0"),
        Read("m", 1, expect="value 0x0"),
    ),
    _s(
        "unregister_wakes_blocked_write_which_lands",
        "A parked write woken by UNREGISTER completes into a fresh page.",
        *_armed(),
        Write("m", 0, 0x31, expect="blocked: PAGEFAULT u m[0] write"),
        Unregister("m", expect="ok"),
        Wait(expect="written"),
        Read("m", 0, expect="value 0x31"),
    ),
    _s(
        "close_wakes_blocked_fault_and_disarms",
        "Closing the userfaultfd wakes a parked fault and disarms the range.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Close(expect="ok"),
        Wait(expect="value 0x0"),
        Read("m", 1, expect="value 0x0"),
    ),
    # -- errors ----------------------------------------------------------------------------
    _s(
        "wake_of_another_page_leaves_the_thread_parked",
        "UFFDIO_WAKE wakes only the threads whose fault address is in the range.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Wake("m", 1, 3, expect="ok"),
        Wait(expect="blocked m[0]"),
        ReadEvents(expect="[PAGEFAULT u m[0] read]"),
    ),
    _s(
        "copy_over_a_partly_mapped_range_is_eagain",
        "COPY of two pages whose second is mapped copies the first and returns EAGAIN (a short "
        "copy); the second page keeps its content.",
        *_armed(),
        Copy("m", 1, 0x2, expect="ok"),
        Copy("m", 0, 0x1, npages=2, expect="EAGAIN"),
        Read("m", 0, expect="value 0x1"),
        Read("m", 1, expect="value 0x2"),
    ),
    _s(
        "copy_over_a_mapped_first_page_is_eexist",
        "COPY of two pages whose first is mapped copies nothing: EEXIST.",
        *_armed(),
        Copy("m", 0, 0x2, expect="ok"),
        Copy("m", 0, 0x3, npages=2, expect="EEXIST"),
        Read("m", 1, expect="blocked: PAGEFAULT u m[1] read"),
    ),
    _s(
        "unregister_of_another_page_leaves_the_fault_parked",
        "UFFDIO_UNREGISTER wakes only faults in the range it unregisters.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Unregister("m", 1, 3, expect="ok"),
        Wait(expect="blocked m[0]"),
        Copy("m", 0, 0x17, expect="ok"),
        Wait(expect="value 0x17"),
    ),
    _s(
        "munmap_under_a_parked_fault_then_wake_segfaults",
        "munmap does not wake a thread parked on a userfault in the range (no EVENT_UNMAP); "
        "UFFDIO_WAKE does, and the retried access finds no VMA: SIGSEGV.",
        *_armed(),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Munmap("m", expect="ok"),
        Wait(expect="blocked m[0]"),
        Wake("m", 0, expect="ok"),
        Wait(expect="SIGSEGV"),
    ),
    _s(
        "register_unaligned_start_is_einval",
        "UFFDIO_REGISTER with a start that is not page-aligned is EINVAL.",
        Mmap("m", 2),
        Uffd(expect="ok"),
        Register("m", 0, 1, byte_offset=1, expect="EINVAL"),
    ),
    _s(
        "register_zero_length_is_einval",
        "UFFDIO_REGISTER of zero bytes is EINVAL.",
        Mmap("m", 2),
        Uffd(expect="ok"),
        Register("m", 0, 0, expect="EINVAL"),
    ),
    _s(
        "register_range_without_vma_fails",
        "UFFDIO_REGISTER of a range with no VMA (unmapped): EINVAL since v6.x's vma_find "
        "(ENOMEM on old kernels when nothing is mapped above).",
        Mmap("m", 2),
        Munmap("m", expect="ok"),
        Uffd(expect="ok"),
        Register("m", expect="EINVAL | ENOMEM"),
    ),
    _s(
        "register_with_another_userfaultfd_is_ebusy",
        "A range registered with one userfaultfd cannot be registered with another: EBUSY.",
        *_armed(),
        Uffd(uffd="u2", expect="ok"),
        Register("m", 0, 1, uffd="u2", expect="EBUSY"),
    ),
    _s(
        "copy_outside_registered_range_is_enoent",
        "UFFDIO_COPY into a VMA that is not registered is ENOENT.",
        Mmap("m", 2),
        Uffd(expect="ok"),
        Register("m", 0, 1, expect="ok"),
        Copy("m", 1, 1, expect="ENOENT"),
    ),
    _s(
        "copy_across_the_vma_end_is_enoent",
        "UFFDIO_COPY whose range runs past the end of the registered VMA is ENOENT.",
        Mmap("m", 2),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Copy("m", 1, 1, npages=2, expect="ENOENT"),
        Read("m", 1, expect="blocked: PAGEFAULT u m[1] read"),
    ),
    _s(
        "madv_remove_on_private_shmem_is_eacces",
        "MADV_REMOVE on a MAP_PRIVATE shmem mapping is EACCES (not a shared writable mapping).",
        Mmap("m", 2, kind="shmem", shared=False),
        Madvise("m", 0, 1, "remove", expect="EACCES"),
    ),
    _s(
        "api_with_unknown_feature_is_einval",
        "UFFDIO_API with a feature bit the kernel does not know is EINVAL.",
        Mmap("m", 1),
        Uffd(features=("BIT63",), expect="EINVAL"),
    ),
    _s(
        "writeprotect_on_missing_only_range_is_enoent",
        "UFFDIO_WRITEPROTECT needs a range registered for WP: on a MISSING-only range, ENOENT.",
        *_armed(),
        WriteProtect("m", 0, expect="ENOENT"),
    ),
    # -- shmem -----------------------------------------------------------------------------
    _s(
        "shmem_missing_fault_blocks",
        "A first touch of a shmem page that is not in the page cache is a MISSING userfault.",
        *_armed(kind="shmem"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        ReadEvents(expect="[PAGEFAULT u m[0] read]"),
    ),
    _s(
        "shmem_copy_resolves_fault_and_fills_page_cache",
        "COPY into shmem adds the page to the page cache and wakes the fault.",
        *_armed(kind="shmem"),
        Read("m", 1, expect="blocked: PAGEFAULT u m[1] read"),
        Copy("m", 1, 9, expect="ok"),
        Wait(expect="value 0x9"),
        Copy("m", 1, 10, expect="EEXIST"),
        Read("m", 1, expect="value 0x9"),
    ),
    _s(
        "shmem_dontneed_keeps_page_cache_so_no_missing_fault",
        "MADV_DONTNEED of a shared shmem mapping zaps the PTE but the page stays in the page "
        "cache: the next read maps it again with no MISSING userfault.",
        *_armed(kind="shmem"),
        Copy("m", 0, 0x12, expect="ok"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        PageState("m", 0, expect="none"),
        Read("m", 0, expect="value 0x12"),
        ReadEvents(expect="[]"),
    ),
    _s(
        "shmem_madv_remove_punches_hole_then_missing_fault",
        "MADV_REMOVE on shmem frees the page cache page (a REMOVE event with EVENT_REMOVE); the "
        "next read is a MISSING userfault.",
        *_armed("EVENT_REMOVE", kind="shmem"),
        Copy("m", 0, 0x13, expect="ok"),
        Madvise("m", 0, 1, "remove", expect="ok"),
        ReadEvents(expect="[REMOVE u m[0:1]]"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    _s(
        "shmem_zeropage_fills_page_cache_with_zeroes",
        "ZEROPAGE on shmem puts a zeroed page in the page cache: a read gives 0, and after "
        "MADV_DONTNEED the page is still cached (no new userfault).",
        *_armed(kind="shmem"),
        Zeropage("m", 0, expect="ok"),
        Read("m", 0, expect="value 0x0"),
        Write("m", 0, 0x14, expect="written"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Read("m", 0, expect="value 0x14"),
    ),
    _s(
        "anon_shared_mapping_is_shmem",
        "MAP_SHARED|MAP_ANONYMOUS memory is shmem: a copied page survives MADV_DONTNEED in the "
        "page cache, so the next read needs no userfault.",
        Mmap("m", 2, kind="anon", shared=True),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
        Copy("m", 0, 0x15, expect="ok"),
        Wait(expect="value 0x15"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Read("m", 0, expect="value 0x15"),
    ),
    _s(
        "shmem_private_mapping_copy_makes_a_private_anon_page",
        "COPY into a MAP_PRIVATE shmem mapping installs a private anonymous page, not a page "
        "cache page (mfill_atomic_pte: !VM_SHARED -> mfill_atomic_pte_copy): after "
        "MADV_DONTNEED the page cache still lacks it and the read faults again.",
        Mmap("m", 2, kind="shmem", shared=False),
        Uffd(expect="ok"),
        Register("m", expect="ok"),
        Copy("m", 0, 0x16, expect="ok"),
        Read("m", 0, expect="value 0x16"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] read"),
    ),
    _s(
        "shmem_minor_fault_resolved_by_continue",
        "MINOR mode on shmem: the page is in the page cache but the PTE is none (after "
        "MADV_DONTNEED), so a read is a MINOR userfault; UFFDIO_CONTINUE maps the cached page.",
        Mmap("m", 2, kind="shmem", shared=True),
        Write("m", 0, 0x71, expect="written"),
        Uffd(features=("MINOR_SHMEM",), expect="ok"),
        Register("m", missing=False, minor=True, expect="ok"),
        Madvise("m", 0, 1, "dontneed", expect="ok"),
        Read("m", 0, expect="blocked: PAGEFAULT u m[0] minor"),
        Continue("m", 0, expect="ok"),
        Wait(expect="value 0x71"),
        Continue("m", 0, expect="EEXIST"),
        needs=("uffd_minor",),
    ),
    # -- write-protect ---------------------------------------------------------------------
    _s(
        "anon_wp_fault_resolved_by_clearing_writeprotect",
        "WP mode on anon memory: after UFFDIO_WRITEPROTECT a write is a WP userfault (WRITE|WP "
        "flags); clearing the protection wakes it and the write lands.",
        Mmap("m", 2),
        Write("m", 0, 1, expect="written"),
        Uffd(expect="ok"),
        Register("m", missing=False, wp=True, expect="ok"),
        WriteProtect("m", 0, wp=True, expect="ok"),
        Read("m", 0, expect="value 0x1"),
        Write("m", 0, 2, expect="blocked: PAGEFAULT u m[0] write wp"),
        WriteProtect("m", 0, wp=False, expect="ok"),
        Wait(expect="written"),
        Read("m", 0, expect="value 0x2"),
        needs=("uffd_wp",),
    ),
    # -- features --------------------------------------------------------------------------
    _s(
        "sigbus_feature_turns_userfault_into_sigbus",
        "With UFFD_FEATURE_SIGBUS a fault in a MISSING range raises SIGBUS instead of a "
        "message; the process dies of it.",
        *_armed("SIGBUS"),
        Copy("m", 1, 3, expect="ok"),
        Read("m", 1, expect="value 0x3"),
        Read("m", 0, expect="SIGBUS"),
        Read("m", 1, expect="dead"),
        needs=("uffd_sigbus",),
    ),
    _s(
        "thread_id_feature_reports_the_thread",
        "With UFFD_FEATURE_THREAD_ID the PAGEFAULT carries the faulting thread's id.",
        *_armed("THREAD_ID"),
        Read("m", 0, thread=1, expect="blocked: PAGEFAULT u m[0] read ptid"),
        needs=("uffd_thread_id",),
    ),
    _s(
        "thread_id_feature_reports_the_main_thread",
        "THREAD_ID for the process's first thread: its id (the pid) is not 0 either.",
        *_armed("THREAD_ID"),
        Read("m", 0, thread=0, expect="blocked: PAGEFAULT u m[0] read ptid"),
        needs=("uffd_thread_id",),
    ),
    _s(
        "exact_address_feature_keeps_the_offset",
        "With UFFD_FEATURE_EXACT_ADDRESS the PAGEFAULT address is not rounded to the page "
        "(x86 reports the faulting byte, CR2).",
        *_armed("EXACT_ADDRESS"),
        Read("m", 0, byte_offset=0x18, expect="blocked: PAGEFAULT u m[0]+0x18 read"),
        arches=("x86_64",),
    ),
    _s(
        "s390x_exact_address_is_the_page_s",
        "s390 reports only the page of a fault (arch/s390/mm/fault.c get_fault_address: "
        "teid.addr * PAGE_SIZE), so even with UFFD_FEATURE_EXACT_ADDRESS the PAGEFAULT "
        "address is the page's.",
        *_armed("EXACT_ADDRESS"),
        Read("m", 0, byte_offset=0x18, expect="blocked: PAGEFAULT u m[0] read"),
        arches=("s390x",),
    ),
    _s(
        "fault_address_is_page_aligned_without_exact_address",
        "Without EXACT_ADDRESS the PAGEFAULT address is the page's.",
        *_armed(),
        Read("m", 2, byte_offset=0x18, expect="blocked: PAGEFAULT u m[2] read"),
    ),
]

# -- s390x: what a real s390 kernel shows from user space (run in an s390x guest: reclaim
# crosscheck --vm s390x). ESSA/CMMA cannot be shown this way: a TCG guest has no KVM inside.
S390X = ("s390x",)

LIBRARY += [
    _s(
        "s390x_register_wp_is_einval",
        "s390 has no HAVE_ARCH_USERFAULTFD_WP: UFFDIO_REGISTER with MODE_WP is EINVAL "
        "(userfaultfd_register: vma_can_userfault / the #ifndef in the mode check).",
        Mmap("m", 2),
        Uffd(expect="ok"),
        Register("m", missing=False, wp=True, expect="EINVAL"),
        Register("m", missing=True, wp=True, expect="EINVAL"),
        arches=S390X,
    ),
    _s(
        "s390x_register_minor_is_einval",
        "s390 has no HAVE_ARCH_USERFAULTFD_MINOR: UFFDIO_REGISTER with MODE_MINOR on shmem is "
        "EINVAL.",
        Mmap("m", 2, kind="shmem", shared=True),
        Uffd(expect="ok"),
        Register("m", missing=False, minor=True, expect="EINVAL"),
        arches=S390X,
    ),
    _s(
        "s390x_api_wp_and_minor_features_are_einval",
        "UFFDIO_API refuses the features s390 lacks: PAGEFAULT_FLAG_WP and MINOR_SHMEM are "
        "EINVAL (userfaultfd_api masks them out of what it offers, then rejects a request "
        "beyond the offer).",
        Mmap("m", 1),
        Uffd(uffd="w", features=("PAGEFAULT_FLAG_WP",), expect="EINVAL"),
        Uffd(uffd="n", features=("MINOR_SHMEM",), expect="EINVAL"),
        Uffd(uffd="u", features=("EVENT_REMOVE",), expect="ok"),
        arches=S390X,
    ),
    _s(
        "s390x_young_emulation_cold_page_faults_on_next_read",
        "s390 has no hardware referenced bit: MADV_COLD clears young by invalidating the PTE "
        "(pte_mkold sets _PAGE_INVALID), so the next read takes a minor fault that makes the "
        "PTE young again; the read after that takes none.",
        Mmap("m", 2),
        Touch("m", 0, write=True, value=0x5A, expect="written minflt 1 majflt 0"),
        Touch("m", 0, expect="value 0x5a minflt 0 majflt 0"),
        Madvise("m", 0, 1, "cold", expect="ok"),
        PageState("m", 0, expect="present"),
        Touch("m", 0, expect="value 0x5a minflt 1 majflt 0"),
        Touch("m", 0, expect="value 0x5a minflt 0 majflt 0"),
        arches=S390X,
    ),
    _s(
        "s390x_young_emulation_cold_page_faults_on_next_write",
        "A write after MADV_COLD takes the young-emulation fault too (the invalid PTE traps "
        "any access); the data stays.",
        Mmap("m", 2),
        Touch("m", 1, write=True, value=0x5B, expect="written minflt 1 majflt 0"),
        Madvise("m", 1, 1, "cold", expect="ok"),
        Touch("m", 1, write=True, value=0x5C, expect="written minflt 1 majflt 0"),
        Touch("m", 1, expect="value 0x5c minflt 0 majflt 0"),
        arches=S390X,
    ),
    _s(
        "s390x_swap_entries_in_pagemap_have_type_and_offset",
        "MADV_PAGEOUT of pages one by one: pagemap shows each swap entry (type 0, the one swap "
        "device; offsets from slot 1 on, slot 0 being the swap header) while the mapped page "
        "stays present. The touch right after is a minor fault: on a swap device whose writes "
        "complete asynchronously (the guest's virtio-blk) shrink_folio_list keeps the folio "
        "in the swap cache while it is under writeback, so the fault finds it there.",
        Mmap("m", 4),
        Write("m", 0, 0xA0, expect="written"),
        Write("m", 1, 0xA1, expect="written"),
        Write("m", 2, 0xA2, expect="written"),
        Madvise("m", 1, 1, "pageout", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        SwapEntry("m", 1, expect="swap type 0 offset 1"),
        SwapEntry("m", 0, expect="swap type 0 offset 2"),
        SwapEntry("m", 2, expect="present"),
        SwapUsage("m", expect="swap 2"),
        Touch("m", 1, expect="value 0xa1 minflt 1 majflt 0"),
        Read("m", 0, expect="value 0xa0"),
        needs=("swap",),
        arches=S390X,
    ),
    _s(
        "s390x_clean_swapcache_page_is_discarded_to_the_same_slot",
        "A page swapped in keeps its swap slot in the swap cache (do_swap_page frees it only "
        "when swap is half full); a second MADV_PAGEOUT of the still clean page needs no new "
        "write and puts the same swap entry back in the PTE. The first touch finds the folio "
        "still in the swap cache (its writeback was asynchronous: minor); the clean one is "
        "freed at once by the second pageout, so the touch after it reads the slot (major).",
        Mmap("m", 2),
        Write("m", 0, 0xB0, expect="written"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        SwapEntry("m", 0, expect="swap type 0 offset 1"),
        Touch("m", 0, expect="value 0xb0 minflt 1 majflt 0"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        SwapEntry("m", 0, expect="swap type 0 offset 1"),
        Touch("m", 0, expect="value 0xb0 minflt 0 majflt 1"),
        needs=("swap",),
        arches=S390X,
    ),
    _s(
        "s390x_uffd_zeropage_maps_the_zero_page_and_a_write_copies_it",
        "UFFDIO_ZEROPAGE installs the shared zero page (read-only, special): a read needs no "
        "fault, a write takes a minor COW fault into a fresh page; MADV_PAGEOUT leaves a "
        "zero-page PTE alone (the zero page is on no LRU).",
        *_armed(),
        Zeropage("m", 0, expect="ok"),
        Zeropage("m", 1, expect="ok"),
        Touch("m", 0, expect="value 0x0 minflt 0 majflt 0"),
        Touch("m", 0, write=True, value=0x7, expect="written minflt 1 majflt 0"),
        Madvise("m", 1, 1, "pageout", expect="ok"),
        PageState("m", 1, expect="present"),
        Touch("m", 1, expect="value 0x0 minflt 0 majflt 0"),
        ReadEvents(expect="[]"),
        arches=S390X,
    ),
    _s(
        "s390x_read_fault_maps_the_zero_page_then_write_copies",
        "A first read of anonymous memory maps the zero page (do_anonymous_page, one minor "
        "fault); the first write then takes a second one (the COW out of the zero page).",
        Mmap("m", 2),
        Touch("m", 0, expect="value 0x0 minflt 1 majflt 0"),
        Touch("m", 0, write=True, value=0x9, expect="written minflt 1 majflt 0"),
        Touch("m", 0, expect="value 0x9 minflt 0 majflt 0"),
        arches=S390X,
    ),
    _s(
        "s390x_lazyfree_pageout_discards_and_next_read_is_a_fresh_zero_page",
        "MADV_FREE then MADV_PAGEOUT discards the clean lazyfree page without swap I/O: "
        "nothing on swap, and the next read faults in the zero page (a minor fault, no major).",
        Mmap("m", 2),
        Write("m", 0, 0xC0, expect="written"),
        Madvise("m", 0, 1, "free", expect="ok"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        PageState("m", 0, expect="none"),
        SwapUsage("m", expect="swap 0"),
        Touch("m", 0, expect="value 0x0 minflt 1 majflt 0"),
        needs=("swap",),
        arches=S390X,
    ),
    _s(
        "s390x_fork_shares_a_swapped_page_until_the_child_writes",
        "fork copies the swap PTE (the slot's count goes to 2); the child's read maps the "
        "page from the swap cache (minor: the folio is still there after its asynchronous "
        "writeback) shared, its write then COWs it (a minor fault); "
        "the parent's PTE still holds the swap entry, and its read finds the page in the swap "
        "cache (minor) with the old content.",
        Mmap("m", 2),
        Write("m", 0, 0xD0, expect="written"),
        Madvise("m", 0, 1, "pageout", expect="ok"),
        Fork(expect="ok"),
        PageState("m", 0, proc="child", expect="swapped"),
        Touch("m", 0, proc="child", expect="value 0xd0 minflt 1 majflt 0"),
        SwapEntry("m", 0, expect="swap type 0 offset 1"),
        Touch("m", 0, proc="child", write=True, value=0xD1, expect="written minflt 1 majflt 0"),
        Touch("m", 0, expect="value 0xd0 minflt 1 majflt 0"),
        Read("m", 0, proc="child", expect="value 0xd1"),
        needs=("swap",),
        arches=S390X,
    ),
    _s(
        "x86_64_cold_page_has_no_fault_on_next_read",
        "The x86_64 twin of the s390x young-emulation scenario: the hardware sets the accessed "
        "bit, so a read after MADV_COLD takes no fault.",
        Mmap("m", 2),
        Touch("m", 0, write=True, value=0x5A, expect="written minflt 1 majflt 0"),
        Madvise("m", 0, 1, "cold", expect="ok"),
        Touch("m", 0, expect="value 0x5a minflt 0 majflt 0"),
        arches=("x86_64",),
    ),
]

#: The scenarios by name.
BY_NAME: dict[str, Scenario] = {s.name: s for s in LIBRARY}
if len(BY_NAME) != len(LIBRARY):
    raise RuntimeError("two scenarios of the library share a name")

__all__ = ["BY_NAME", "LIBRARY", "S390X"]
