"""API fuzzing: random sequences over the whole Python surface of reclaim, checked after every
call.

:class:`ApiMachine` is a hypothesis state machine. Its rules call every method of
:class:`reclaim.Kernel`, :class:`reclaim.Process` and :class:`reclaim.Userfaultfd` (and the
value types of :mod:`reclaim.s390`) with valid arguments, with arguments the modelled kernel
must refuse (unaligned, overlapping, outside every mapping, huge, zero, negative, unknown
names) and with wrong Python types, in any order (after ``exit``, after ``close``, on blocked
threads, on processes that are not KVM processes). After every call:

- the call returned, or raised a :class:`reclaim.ReclaimError` subclass, or (only where the
  rule passed a wrong Python type or an int that does not fit the native argument) a
  ``TypeError`` / ``OverflowError`` from the PyO3 conversion. Never ``PanicException``, never
  :class:`reclaim.InternalError` (a caught Rust panic), never :class:`reclaim.InvariantError`;
- ``Kernel.check()`` passes (rss, mapcount, refcount, frame accounting, LRU, swap_map, rmap);
- a model of page contents kept here agrees with what processes read. Each page has a set of
  values it may hold: one value normally; the old value or 0 after MADV_FREE (until the next
  write) or while a KVM guest's PGSTE says the page is not stable (the host may drop it); a
  read of 0 pins the page at 0 (a dropped page does not come back). Private pages are copied
  at fork (COW isolation), shared pages (shmem, shared anonymous) are one cell per page of the
  shmem object. Swapped pages keep their content;
- threads parked on a userfault are exactly those the model parked (no spontaneous wake-up
  or block), a parked access completes later with a value consistent with what was placed
  (``copy``/``zeropage``) or written meanwhile, and every PAGEFAULT message read from a
  userfaultfd is the message of a parked access (address, WRITE flag, THREAD_ID ptid);
- blocking and SIGBUS only happen in VMAs registered with a userfaultfd, SIGSEGV exactly
  outside every mapping; a frame a present PTE maps is mapped and holds an allowed value;
- the VMAs of every process cover exactly the ranges the model mapped, carry VM_LOCKED after
  mlock (not after munlock) and no VM_UFFD_* flag after unregister; munmap leaves no PTE;
- determinism: at the end of each run every call made on the kernel and its objects is
  replayed on a new kernel of the same arguments, and must give the same outcomes, the same
  event log hash, clock and vmstat.

Some rules are directed sequences (a run of writes, madvise, reclaim, reads; a KVM guest
freeing pages with ESSA before reclaim; x86_64 uffd-wp and MINOR cycles) so that reclaim,
swap, OOM, dropped UNUSED pages, lazyfree and userfaults happen in most runs.

The module is used by ``tests/test_fuzz_api.py`` (a short run in CI) and by
``tests/fuzz_long.py`` (``make fuzz``). :data:`STATS` counts the API calls made.

The machine is assembled from mixins, one file per area, over one base: ``fuzz_model.py``
(constants, :data:`STATS`, argument strategies, the model of pages, regions, userfaultfds and
parked accesses), ``fuzz_machine.py`` (the base: calling the engine, synchronising, drawing
arguments, setup, the invariant), ``fuzz_rules_kernel.py``, ``fuzz_rules_process.py``,
``fuzz_rules_uffd.py`` (with the directed sequences), ``fuzz_rules_kvm.py`` (with the s390
value types) and ``fuzz_migration.py`` (:class:`MigrationMachine`).
"""

from __future__ import annotations

from fuzz_migration import MigrationMachine
from fuzz_model import STATS, Stats, Violation, page_align, size_value
from fuzz_rules_kernel import KernelRules
from fuzz_rules_kvm import KvmRules
from fuzz_rules_process import ProcessRules
from fuzz_rules_uffd import UffdRules


class ApiMachine(KernelRules, ProcessRules, UffdRules, KvmRules):
    """Random API call sequences on one Kernel, with the checks of the module docstring."""


__all__ = [
    "STATS",
    "ApiMachine",
    "MigrationMachine",
    "Stats",
    "Violation",
    "page_align",
    "size_value",
]
