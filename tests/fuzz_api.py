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

Operations the machine avoids or tolerates because of a known engine bug are marked
``FINDING <n>`` (numbers of /work/research/fuzz-findings.md); remove the guard with the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import reclaim
import reclaim.s390 as s390
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

PAGE = 4096
U64 = 1 << 64
PROFILES = ("4.17", "4.18", "6.12")
ADVICE = ("normal", "random", "sequential", "willneed", "dontneed", "free", "remove", "cold")
ADVICE_ALL = (*ADVICE, "pageout")
FEATURES = (
    "PAGEFAULT_FLAG_WP",
    "EVENT_FORK",
    "EVENT_REMAP",
    "EVENT_REMOVE",
    "MISSING_HUGETLBFS",
    "MISSING_SHMEM",
    "EVENT_UNMAP",
    "SIGBUS",
    "THREAD_ID",
    "MINOR_HUGETLBFS",
    "MINOR_SHMEM",
    "EXACT_ADDRESS",
    "WP_HUGETLBFS_SHMEM",
    "WP_UNPOPULATED",
    "POISON",
    "WP_ASYNC",
    "MOVE",
)
FEATURE_BITS = {name: 1 << i for i, name in enumerate(FEATURES)}
UFFD_EVENTS = {"PAGEFAULT", "FORK", "REMAP", "REMOVE", "UNMAP"}
#: Largest range (bytes) handed to calls that walk every page of it, UFFDIO_ZEROPAGE among
#: them (time: a 1 TiB range is 2^28 pages; its page tables stop at the model's limit).
WALK_CAP = 1 << 30
#: page_states lengths above this (up to the engine's 1 TiB limit) become this: an array of
#: 2^28 entries per call would only make the run slow.
PAGE_STATES_CAP = 1 << 30
#: Thread ids the model numbers (the event log's tid field is 16 bits); others are refused.
MAX_TID = 0xFFFF
PTE_METHODS = (
    "none", "present", "swap", "young", "dirty", "write", "read", "special", "soft_dirty",
    "unused", "uffd_wp", "protnone", "hw_invalid", "hw_protect", "pfn", "mkold", "mkyoung",
    "mkdirty", "mkclean", "wrprotect", "mkwrite", "mkspecial", "swp_type", "swp_offset",
    "swp_exclusive", "swp_mkexclusive", "swp_soft_dirty", "swp_uffd_wp", "modify", "value",
    "arch", "__int__", "__index__", "__repr__", "empty",
)  # fmt: skip
PGSTE_METHODS = (
    "usage", "zero", "nodat", "uc", "in_", "vsie", "gr", "gc", "hr", "hc", "value", "__int__",
    "__repr__", "__hash__",
)  # fmt: skip
#: Calls that may wake parked threads (which may then park again, with a new message).
WAKING_APIS = {
    "Userfaultfd.copy",
    "Userfaultfd.zeropage",
    "Userfaultfd.continue_",
    "Userfaultfd.wake",
    "Userfaultfd.unregister",
    "Userfaultfd.writeprotect",
    "Userfaultfd.close",
}
#: Processes a machine keeps alive at most.
MAX_LIVE = 6


@dataclass
class Stats:
    """Counters of one process's fuzzing, over every machine run in it."""

    calls: int = 0
    checks: int = 0
    queries: int = 0
    steps: int = 0
    machines: int = 0
    per_api: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Kernel event counters (vmstat) summed over the machines at teardown: what happened.
    vmstat: Counter[str] = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)

    def reset(self) -> None:
        """Zero every counter."""
        self.__init__()  # type: ignore[misc]


#: The counters of this process (API calls, ``Kernel.check`` calls, per-API counts).
STATS = Stats()

#: When set (``FUZZ_TRACE`` in the environment), every call is written to this file before it
#: runs, the file restarting with each machine: a watchdog reads it after a hang or a crash.
TRACE_PATH = os.environ.get("FUZZ_TRACE")


# --------------------------------------------------------------------------------------------
# argument strategies: a generated argument is (value, category)


#: Categories of generated arguments: what a rejected call may raise besides ReclaimError.
#: "ok": nothing else; "range": an int that does not fit the native type (OverflowError);
#: "type": a wrong Python type (TypeError); "bigint": a size beyond i128 (an ArgumentError like
#: any size out of range, since the fix of finding 3);
#: "unicode": a str with lone surrogates (UnicodeEncodeError).
CATEGORY_EXCEPTIONS: dict[str, tuple[type[BaseException], ...]] = {
    "ok": (),
    "range": (OverflowError,),
    "type": (TypeError,),
    "bigint": (),
    "unicode": (UnicodeEncodeError,),
}

Arg = tuple[Any, str]

SIZE_UNITS = {
    "": 0,
    "b": 0,
    "k": 10,
    "kb": 10,
    "kib": 10,
    "m": 20,
    "mb": 20,
    "mib": 20,
    "g": 30,
    "gb": 30,
    "gib": 30,
    "t": 40,
    "tb": 40,
    "tib": 40,
    "p": 50,
    "pb": 50,
    "pib": 50,
}


def size_value(v: Any) -> int | None:
    """The bytes a size argument means to the engine (``size_arg``), or None if it refuses it."""
    if isinstance(v, int):
        return v if 0 <= v < U64 else None
    if not isinstance(v, str):
        return None
    t = v.strip()
    i = 0
    while i < len(t) and t[i] in "0123456789":
        i += 1
    num, unit = t[:i], t[i:].strip().lower()
    if not num or unit not in SIZE_UNITS:
        return None
    n = int(num)
    if n >= U64:
        return None
    b = n << SIZE_UNITS[unit]
    return b if b < U64 else None


def page_align(n: int) -> int:
    """``n`` rounded up to pages."""
    return (n + PAGE - 1) & ~(PAGE - 1)


def lock_span(addr: int, n: int) -> tuple[int, int] | None:
    """The page range mlock(addr, n) works on, or None if it refuses the range. The length
    plus the offset in the page wraps around as in the kernel's ``do_mlock``."""
    off = addr % PAGE
    length = (n + off) % U64
    if length + PAGE - 1 >= U64 or addr - off + page_align(length) >= U64:
        return None
    return addr - off, addr - off + page_align(length)


SIZE_STRINGS = st.one_of(
    st.builds(
        lambda n, sp, unit: f"{n}{sp}{unit}",
        st.sampled_from([0, 1, 4, 8, 16, 4096, 12345, 99999999999, U64]),
        st.sampled_from(["", " "]),
        st.sampled_from(["", "B", "KiB", "k", "kb", "MiB", "M", "GiB", "TiB", "PiB", "parsecs"]),
    ),
    st.sampled_from(["", "lots", "-4096", "0x1000", " 4 KiB ", "4.5KiB", "1e3"]),
)


def weighted(*choices: tuple[int, Any]) -> st.SearchStrategy[Any]:
    """One of ``choices`` (weight, value), the first ones shrinking best."""
    return st.sampled_from([v for w, v in choices for _ in range(w)])


def mostly(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``valid`` about nine times in ten, else ``invalid``."""
    return st.integers(0, 9).flatmap(lambda i: invalid if i == 9 else valid)


WRONG_TYPES = st.sampled_from([4096.0, None, b"4096", [4096], (1, 2), {"a": 1}, 1j])


# --------------------------------------------------------------------------------------------
# the model


class Cell:
    """The values one page may hold."""

    __slots__ = ("vals",)

    def __init__(self, vals: Iterable[int] = (0,)) -> None:
        self.vals: set[int] = set(vals)

    def __repr__(self) -> str:
        return "{" + ", ".join(hex(v) for v in sorted(self.vals)) + "}"


@dataclass
class ShmObj:
    """A shmem object (memfd, or the object behind a shared anonymous mapping)."""

    name: str
    cells: dict[int, Cell] = field(default_factory=dict)


@dataclass(repr=False)
class Region:
    """One mapping as the model knows it: [start, end); shared ones name their object."""

    start: int
    end: int
    kind: str
    shared: bool
    obj: ShmObj | None = None
    pgoff: int = 0  # page index into obj of start

    def pages(self) -> int:
        """Its size in pages."""
        return (self.end - self.start) // PAGE

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        share = f"shared {self.obj.name if self.obj else ''}" if self.shared else "private"
        return f"Region({self.start:#x}..{self.end:#x} {self.kind} {share})"


@dataclass(repr=False)
class Proc:
    """A process of the model."""

    proc: reclaim.Process
    pid: int
    kvm: bool
    alive: bool = True
    regions: list[Region] = field(default_factory=list)
    cells: dict[int, Cell] = field(default_factory=dict)  # private pages by address
    cmma: set[int] = field(default_factory=set)  # pages whose PGSTE an API call changed

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"Proc(pid={self.pid}{' kvm' if self.kvm else ''}{'' if self.alive else ' dead'})"

    def region_at(self, addr: int) -> Region | None:
        """The region holding ``addr``."""
        for r in self.regions:
            if r.start <= addr < r.end:
                return r
        return None


@dataclass(repr=False)
class Uffd:
    """A userfaultfd of the model."""

    u: reclaim.Userfaultfd
    pid: int
    features: int
    closed: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)  # registered (roughly)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"Uffd(id={self.u.id}, pid={self.pid}{' closed' if self.closed else ''})"


@dataclass
class BatchAccess:
    """One access of a batch, shaped as the AccessResult of a single access."""

    kind: str
    value: int | None
    event: reclaim.UffdEvent | None
    signal: str | None
    completed: bool
    blocked: bool

    @staticmethod
    def of(outcome: str, value: int, event: reclaim.UffdEvent | None) -> BatchAccess:
        kind = {"hit": "completed", "minor": "completed", "major": "completed"}.get(
            outcome, outcome
        )
        kind = "blocked" if kind == "userfault" else kind
        signal = {"sigsegv": "SIGSEGV", "sigbus": "SIGBUS"}.get(kind)
        done = kind == "completed"
        ev = event if kind == "blocked" else None
        return BatchAccess(kind, value if done else None, ev, signal, done, kind == "blocked")


@dataclass
class Parked:
    """An access parked on a userfault."""

    addr: int
    write: bool
    value: int
    uffd: int = -1  # the userfaultfd the message went to
    reported: bool = False  # its message was read
    rewoken: bool = False  # a call that wakes ran since: it may have parked again (new message)


class Violation(AssertionError):
    """The engine broke a rule the fuzzer checks; the message says which call and how."""


# --------------------------------------------------------------------------------------------


class ApiMachine(RuleBasedStateMachine):
    """Random API call sequences on one Kernel, with the checks of the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="reclaim-fuzz-")  # snapshots (the replay reuses it)
        self.k: reclaim.Kernel | None = None
        self.arch = "s390x"
        self.profile = "4.18"
        self.procs: list[Proc] = []
        self.by_pid: dict[int, Proc] = {}
        self.uffds: list[Uffd] = []
        self.parked: dict[tuple[int, int], Parked] = {}
        self.trace: list[str] = []
        self.calls = 0
        # determinism: every call on the kernel and its objects, replayed at teardown on a
        # kernel made with the same arguments; (object, method, args, kwargs, outcome)
        self.kernel_args: dict[str, Any] = {}
        self.objs: list[Any] = []
        self.refs: dict[int, int] = {}
        self.replay_log: list[tuple[int, str, tuple[Any, ...], dict[str, Any], Any]] = []
        self._trace_file = open(TRACE_PATH, "w") if TRACE_PATH else None  # noqa: SIM115
        STATS.machines += 1

    def teardown(self) -> None:
        """Sum the kernel's event counters into STATS; replay the calls on a new kernel of
        the same arguments: the same outcomes and the same log hash (determinism)."""
        try:
            if self.k is not None:
                for name, v in self.k.vmstat().items():
                    if v and not name.startswith("nr_"):
                        STATS.vmstat[name] += v
                self.replay()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self._trace_file is not None:
                self._trace_file.close()

    def replay(self) -> None:
        """Replay every recorded call on a fresh kernel; any difference is a Violation."""
        k2 = reclaim.Kernel(**self.kernel_args)
        objs: list[Any] = [k2]
        for i, (ref, name, args, kw, outcome) in enumerate(self.replay_log):
            target = objs[ref]
            try:
                if name.startswith("="):
                    setattr(target, name[1:], *args)
                    result: Any = None
                else:
                    result = getattr(target, name)(*args, **kw)
                got = _digest(result)
            except Exception as e:
                result, got = None, _digest_exc(e)
            if got != outcome:
                raise Violation(
                    f"replaying call {i} ({type(target).__name__}.{name}{_short(args)}) on a "
                    f"kernel made like the first gave {got!r}, the first run {outcome!r}"
                )
            if isinstance(result, reclaim.Process | reclaim.Userfaultfd):
                objs.append(result)
        h1, h2 = self.kernel.log_hash(), k2.log_hash()
        if h1 != h2 or self.kernel.now != k2.now:
            raise Violation(
                f"the replay on a kernel of the same arguments ({self.kernel_args}) ends with "
                f"log hash {h2:#x} at t={k2.now}, the first run {h1:#x} at t={self.kernel.now}"
            )
        v1, v2 = self.kernel.vmstat(), k2.vmstat()
        if v1 != v2:
            diff = {n: (v1.get(n), v2.get(n)) for n in set(v1) | set(v2) if v1.get(n) != v2.get(n)}
            raise Violation(f"the replay ends with another vmstat: {diff}")

    # ---------------------------------------------------------------- calling the engine

    @property
    def kernel(self) -> reclaim.Kernel:
        """The kernel under test."""
        assert self.k is not None
        return self.k

    def _record(self, api: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kw.items()]
        line = f"{api}({', '.join(parts)})"
        self.trace.append(line)
        if len(self.trace) > 200:
            del self.trace[:100]
        if self._trace_file is not None:
            self._trace_file.write(line + "\n")
            self._trace_file.flush()

    def call(
        self,
        api: str,
        fn: Callable[..., Any],
        *args: Any,
        cats: Iterable[str] = (),
        check: bool = True,
        **kw: Any,
    ) -> tuple[bool, Any]:
        """Call ``fn(*args, **kw)`` (API ``api``): returns (True, result) or (False, exception)
        for an exception the call may raise; any other exception is a :class:`Violation`.
        ``Kernel.check()`` runs after it."""
        STATS.calls += 1
        STATS.per_api[api] += 1
        self.calls += 1
        self._record(api, args, kw)
        target = getattr(fn, "__self__", None)
        ref = self.refs.get(id(target)) if target is not None else None
        t0 = time.perf_counter()
        try:
            result: tuple[bool, Any] = (True, fn(*args, **kw))
            STATS.outcomes[f"{api}: ok"] += 1
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # PanicException derives from BaseException
            self._judge(api, e, set(cats))
            STATS.errors[f"{api}: {type(e).__name__}"] += 1
            result = (False, e)
        dt = time.perf_counter() - t0
        if api in WAKING_APIS:
            for pk in self.parked.values():
                pk.rewoken = True
        if ref is not None:
            ok_, value = result
            outcome = _digest(value) if ok_ else _digest_exc(value)
            self.replay_log.append((ref, fn.__name__, args, kw, outcome))
            if ok_ and isinstance(value, reclaim.Process | reclaim.Userfaultfd):
                self.refs[id(value)] = len(self.objs)
                self.objs.append(value)
        if dt > STATS.slowest.get(api, 0.0):
            STATS.slowest[api] = dt
        if check:
            self.check(api)
        return result

    def _judge(self, api: str, e: BaseException, cats: set[str]) -> None:
        where = f"{self.trace[-1]}"
        if isinstance(e, reclaim.InternalError):
            raise Violation(f"{where} raised InternalError (a Rust panic): {e}") from e
        if isinstance(e, reclaim.InvariantError):
            raise Violation(f"{where} raised InvariantError: {e}") from e
        if isinstance(e, reclaim.ReclaimError):
            self.judge_message(where, e)
            return
        if type(e).__name__ == "PanicException":
            raise Violation(f"{where} raised pyo3 PanicException: {e}") from e
        allowed: tuple[type[BaseException], ...] = ()
        for c in cats:
            allowed += CATEGORY_EXCEPTIONS[c]
        if allowed and isinstance(e, allowed):
            return
        raise Violation(
            f"{where} raised {type(e).__module__}.{type(e).__name__}: {e} "
            f"(argument categories: {sorted(cats) or ['ok']})"
        ) from e

    @staticmethod
    def judge_message(where: str, e: reclaim.ReclaimError) -> None:
        """A rejection a person can act on: a sentence, not a code; a syscall's error names its
        call and errno as the kernel's (``"mmap: EINVAL (Invalid argument): length is 0"``)."""
        msg = str(e)
        if len(msg.split()) < 3:
            raise Violation(f"{where} raised {type(e).__name__} with no useful message: {msg!r}")
        if isinstance(e, reclaim.SyscallError):
            name = e.errno_name
            if (
                not e.errno
                or name is None
                or errno.errorcode.get(e.errno) != name
                or not msg.startswith(f"{e.call}: {name} (")
            ):
                raise Violation(
                    f"{where} raised {type(e).__name__} errno={e.errno} name={name} "
                    f"call={e.call} with message {msg!r}: not '<call>: <ERRNO> (<strerror>): ...'"
                )

    def query(self, api: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A call the checks make (not a fuzzed one): it must not fail."""
        STATS.queries += 1
        try:
            return fn(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            raise Violation(f"after {self.trace[-1]}: {api} raised {type(e).__name__}: {e}") from e

    def check(self, api: str) -> None:
        """``Kernel.check()`` after ``api``."""
        STATS.checks += 1
        try:
            self.kernel.check()
        except reclaim.InvariantError as e:
            raise Violation(f"after {self.trace[-1]}: invariant violated: {e}") from e
        except Exception as e:
            raise Violation(
                f"after {self.trace[-1]}: check() raised {type(e).__name__}: {e}"
            ) from e

    def must_fail(self, out: tuple[bool, Any], why: str, *errnos: int) -> None:
        """The call just made must have been refused (with one of ``errnos`` if given)."""
        ok, v = out
        if ok:
            raise Violation(f"{self.trace[-1]} succeeded ({_short(v)}) but {why}")
        if errnos and isinstance(v, reclaim.ReclaimError) and v.errno not in errnos:
            raise Violation(f"{self.trace[-1]}: {why}: expected errno {errnos}, got {v!r}")

    def must_succeed(self, out: tuple[bool, Any], why: str) -> None:
        """The call just made must have succeeded."""
        ok, v = out
        if not ok:
            raise Violation(f"{self.trace[-1]} raised {type(v).__name__}: {v}; but {why}")

    # ---------------------------------------------------------------- the model's helpers

    def live(self) -> list[Proc]:
        """The live processes."""
        return [p for p in self.procs if p.alive]

    def cell(self, pm: Proc, addr: int) -> Cell | None:
        """The cell of the page at ``addr`` in ``pm`` (None if the model has it unmapped)."""
        page = addr & ~(PAGE - 1)
        r = pm.region_at(page)
        if r is None:
            return None
        if r.shared:
            assert r.obj is not None
            idx = r.pgoff + (page - r.start) // PAGE
            return r.obj.cells.setdefault(idx, Cell())
        return pm.cells.setdefault(page, Cell())

    def existing_cells(self, pm: Proc, start: int, end: int, shared: bool | None) -> Iterator[Cell]:
        """The cells the model holds for pages in [start, end): private ones, shared ones or
        (``shared`` None) both."""
        if shared is not True:
            for a, c in pm.cells.items():
                if start <= a < end:
                    yield c
        if shared is not False:
            for r in pm.regions:
                if not r.shared or r.end <= start or r.start >= end:
                    continue
                assert r.obj is not None
                lo = r.pgoff + (max(start, r.start) - r.start) // PAGE
                hi = r.pgoff + (page_align(min(end, r.end)) - r.start) // PAGE
                for i, c in r.obj.cells.items():
                    if lo <= i < hi:
                        yield c

    def drop_private(self, pm: Proc, start: int, end: int) -> None:
        """Private pages in [start, end) read 0 from now on (zapped)."""
        for a in [a for a in pm.cells if start <= a < end]:
            pm.cells[a].vals = {0}

    def maybe_zero(self, pm: Proc, start: int, end: int, shared: bool | None) -> None:
        """Pages in [start, end) may have been zapped."""
        for c in self.existing_cells(pm, start, end, shared):
            c.vals.add(0)

    def unmap(self, pm: Proc, start: int, end: int) -> None:
        """[start, end) is no longer mapped in ``pm``."""
        out: list[Region] = []
        for r in pm.regions:
            if r.end <= start or r.start >= end:
                out.append(r)
                continue
            if r.start < start:
                out.append(Region(r.start, start, r.kind, r.shared, r.obj, r.pgoff))
            if r.end > end:
                off = r.pgoff + (end - r.start) // PAGE
                out.append(Region(end, r.end, r.kind, r.shared, r.obj, off))
        pm.regions = sorted(out, key=lambda r: r.start)
        for a in [a for a in pm.cells if start <= a < end]:
            del pm.cells[a]

    def observe_read(self, pm: Proc, addr: int, value: int, also: Iterable[int] = ()) -> None:
        """A completed read of ``value`` at ``addr``: check it against the model and narrow
        the cell (a read of 0 pins it at 0)."""
        c = self.cell(pm, addr)
        if c is None:
            raise Violation(f"{self.trace[-1]}: read at {addr:#x} completed outside any mapping")
        allowed = c.vals | set(also)
        if value not in allowed:
            raise Violation(
                f"{self.trace[-1]}: pid {pm.pid} read {value:#x} at {addr:#x}; "
                f"the page may only hold {sorted(hex(v) for v in allowed)}"
            )
        c.vals = {0} if value == 0 else ({value, 0} if 0 in c.vals else {value})

    # ---------------------------------------------------------------- synchronising

    def sync(self) -> None:
        """After a call: the KVM pages that may be dropped, the parked accesses that
        completed, and the set of parked threads."""
        if self.k is None:
            return
        self.droppable()
        blocked = self.query("Kernel.blocked", self.kernel.blocked)
        engine = {(pid, tid) for pid, tid, _addr, _since in blocked}
        for pid, tid, addr, _since in blocked:
            pk = self.parked.get((pid, tid))
            if pk is not None and addr >> 12 != pk.addr >> 12:
                raise Violation(f"thread {(pid, tid)} parked at {addr:#x}, not {pk.addr:#x}")
        done: list[tuple[Proc, int, Parked, reclaim.AccessResult]] = []
        for key, parked in list(self.parked.items()):
            pm = self.by_pid[key[0]]
            if not pm.alive:
                del self.parked[key]
                continue
            if key in engine:
                continue
            del self.parked[key]
            last = self.query("Process.last_access", pm.proc.last_access, key[1])
            if last is None:
                raise Violation(f"woken thread {key} has no last access: {last!r}")
            done.append((pm, key[1], parked, last))
        # accesses completing in the same call may run in any order: a read may see a write
        written: dict[int, list[int]] = {}
        for pm, _tid, pk, last in done:
            if pk.write and last.kind == "completed":
                c = self.cell(pm, pk.addr)
                if c is not None:
                    written.setdefault(id(c), []).append(pk.value)
        for pm, tid, pk, last in done:
            self.check_access(pm, tid, pk.addr, pk.write, pk.value, last, woken=True)
            STATS.outcomes[f"woken access: {last.kind}"] += 1
            if last.kind == "completed" and not pk.write:
                c = self.cell(pm, pk.addr)
                self.observe_read(pm, pk.addr, last.value or 0, written.get(id(c), ()))
        for pm, _tid, pk, last in done:
            if pk.write and last.kind == "completed":
                c = self.cell(pm, pk.addr)
                assert c is not None
                c.vals = set(written[id(c)])
        if done:
            self.droppable()  # a page a woken write filled may have been dropped since
        if engine != set(self.parked):
            raise Violation(
                f"after {self.trace[-1]}: parked threads {sorted(engine)} but the model parked "
                f"{sorted(self.parked)}"
            )

    def frame_matches(self, pm: Proc, addr: int, pfn: int) -> None:
        """The frame a present PTE maps is mapped, and holds a value the page may hold."""
        frame = self.query("Kernel.page", self.kernel.page, pfn)
        c = self.cell(pm, addr)
        if frame["mapcount"] < 1 or frame["refcount"] < frame["mapcount"]:
            raise Violation(f"pid {pm.pid} maps pfn {pfn} at {addr:#x}: {frame}")
        if c is not None and frame["content"] not in c.vals:
            raise Violation(
                f"pid {pm.pid} maps pfn {pfn} at {addr:#x} holding {frame['content']:#x}; the "
                f"page may only hold {c}"
            )

    def droppable(self) -> None:
        """Pages of KVM processes whose PGSTE is not stable (or logically zero) may be dropped
        by the host at any time: they may read 0."""
        for pm in self.live():
            if not pm.kvm:
                continue
            for a in sorted(pm.cmma):
                if pm.region_at(a) is None:
                    continue
                g = self.query("Process.pgste", pm.proc.pgste, a)
                if g.usage != "STABLE" or g.zero():
                    c = self.cell(pm, a)
                    assert c is not None
                    c.vals.add(0)

    def uffd_vma(self, pm: Proc, addr: int) -> bool:
        """Whether the engine's VMA at ``addr`` is registered with a userfaultfd."""
        vmas = self.query("Process.vmas", pm.proc.vmas)
        for s, e, flags in vmas:
            if s <= addr < e:
                return any(f.startswith("VM_UFFD") for f in flags)
        return False

    def check_access(
        self,
        pm: Proc,
        tid: int,
        addr: int,
        write: bool,
        value: int,
        r: reclaim.AccessResult,
        woken: bool = False,
    ) -> None:
        """The outcome of an access is one the model allows."""
        what = f"{'write' if write else 'read'} of pid {pm.pid} tid {tid} at {addr:#x}"
        if woken:
            what = "woken " + what
        mapped = pm.region_at(addr & ~(PAGE - 1)) is not None
        if r.kind not in ("completed", "blocked", "sigsegv", "sigbus", "oom"):
            raise Violation(f"{self.trace[-1]}: {what}: unknown kind {r.kind!r}")
        if (r.value is not None) != (r.kind == "completed"):
            raise Violation(f"{self.trace[-1]}: {what}: kind {r.kind} with value {r.value!r}")
        if (r.event is not None) != (r.kind == "blocked"):
            raise Violation(f"{self.trace[-1]}: {what}: kind {r.kind} with event {r.event!r}")
        signal = {"sigsegv": "SIGSEGV", "sigbus": "SIGBUS"}.get(r.kind)
        flags = (r.signal, r.completed, r.blocked)
        if flags != (signal, r.kind == "completed", r.kind == "blocked"):
            raise Violation(f"{self.trace[-1]}: {what}: {r!r} has signal {r.signal!r}")
        if not mapped:
            if r.kind != "sigsegv":
                raise Violation(f"{self.trace[-1]}: {what} outside every mapping gave {r!r}")
            return
        if r.kind == "sigsegv":
            raise Violation(f"{self.trace[-1]}: {what} inside a RW mapping gave SIGSEGV")
        if r.kind in ("blocked", "sigbus") and not self.uffd_vma(pm, addr):
            raise Violation(f"{self.trace[-1]}: {what} gave {r.kind} in an unregistered VMA")
        if r.kind == "completed" and write and r.value != value:
            raise Violation(f"{self.trace[-1]}: {what}: completed write reports {r.value!r}")
        if r.kind == "blocked" and not woken:
            ev = r.event
            assert ev is not None
            if ev.event != "PAGEFAULT" or ev.write != write or ev.address >> 12 != addr >> 12:
                raise Violation(f"{self.trace[-1]}: {what}: wrong userfault message {ev!r}")
            uf = next((u for u in self.uffds if u.u.id == ev.uffd), None)
            if uf is not None:
                exact = uf.features & FEATURE_BITS["EXACT_ADDRESS"]
                ptid = pm.pid + tid if uf.features & FEATURE_BITS["THREAD_ID"] else 0
                if ev.address != (addr if exact else addr & ~(PAGE - 1)) or ev.ptid != ptid:
                    raise Violation(f"{self.trace[-1]}: {what}: message {ev!r} of {uf}")

    # ---------------------------------------------------------------- drawing arguments

    def draw_proc(self, data: st.DataObject, dead_ok: bool = True) -> Proc:
        """A process, mostly a live one."""
        live = self.live()
        if live and (not dead_ok or data.draw(st.integers(0, 9), label="pick dead") < 9):
            # processes with mappings three times as often
            live = [p for p in live for _ in range(3 if p.regions else 1)]
            return data.draw(st.sampled_from(live), label="process")
        return data.draw(st.sampled_from(self.procs), label="process")

    def draw_region(self, data: st.DataObject, pm: Proc) -> Region | None:
        """A region of ``pm`` (or of any process, or None)."""
        regions = pm.regions or [r for p in self.procs for r in p.regions]
        if not regions:
            return None
        return data.draw(st.sampled_from(regions), label="region")

    def draw_addr(self, data: st.DataObject, pm: Proc, unaligned: bool = True) -> Arg:
        """An address argument: mostly a page of a mapping, else edges, holes, extremes,
        negative and wrong types."""
        kind = data.draw(
            weighted(
                (30, "page"),
                (4 if unaligned else 0, "offset"),
                (2, "edge"),
                (1, "hole"),
                (1, "random"),
                (1, "extreme"),
                (1, "neg"),
                (1, "toolarge"),
                (1, "type"),
            ),
            label="address kind",
        )
        r = self.draw_region(data, pm) if kind in ("page", "offset", "edge") else None
        if r is None and kind in ("page", "offset", "edge"):
            kind = "hole"
        if kind == "page":
            assert r is not None
            return r.start + self.draw_page_index(data, r) * PAGE, "ok"
        if kind == "offset":
            assert r is not None
            a = r.start + self.draw_page_index(data, r) * PAGE
            return a + data.draw(st.integers(1, PAGE - 1), label="offset"), "ok"
        if kind == "edge":
            assert r is not None
            return data.draw(st.sampled_from([r.end, r.start - PAGE, r.end - 1])), "ok"
        if kind == "hole":
            return data.draw(st.integers(0, (1 << 44) // PAGE), label="page") * PAGE, "ok"
        if kind == "random":
            return data.draw(st.integers(0, U64 - 1), label="addr"), "ok"
        if kind == "extreme":
            v = [0, 1, 4095, PAGE, 1 << 16, 0x3FF_0000_0000, 1 << 63, U64 - PAGE, U64 - 1]
            return data.draw(st.sampled_from(v), label="addr"), "ok"
        if kind == "neg":
            return data.draw(st.sampled_from([-1, -PAGE, -(1 << 63)]), label="addr"), "range"
        if kind == "toolarge":
            return data.draw(st.sampled_from([U64, 1 << 70]), label="addr"), "range"
        return data.draw(st.sampled_from(["0x1000", 4096.0, None, [4096]]), label="addr"), "type"

    def draw_page_index(self, data: st.DataObject, r: Region) -> int:
        """A page index into ``r``: the first and last pages more often than the rest."""
        n = r.pages()
        return data.draw(
            st.one_of(st.integers(0, min(n, 4) - 1), st.integers(max(0, n - 2), n - 1))
            | st.integers(0, n - 1),
            label="page index",
        )

    def draw_len(self, data: st.DataObject, r: Region | None, addr: Any, cap: int = 0) -> Arg:
        """A length argument: pages, the rest of a region, 0, unaligned, huge, negative,
        strings with units and wrong types. ``cap`` bounds the lengths of calls that walk
        every page (0: no bound)."""
        kind = data.draw(
            weighted(
                (16, "pages"),
                (4, "rest"),
                (1, "zero"),
                (1, "unaligned"),
                (1, "huge"),
                (1, "bad"),
                (2, "string"),
                (1, "type"),
            ),
            label="length kind",
        )
        if kind == "pages":
            return data.draw(st.integers(1, 8), label="pages") * PAGE, "ok"
        if kind == "rest" and r is not None and isinstance(addr, int) and r.start <= addr < r.end:
            n = r.end - addr
            return (min(n, cap) if cap else n), "ok"
        if kind in ("rest", "zero"):
            return 0, "ok"
        if kind == "unaligned":
            return data.draw(st.sampled_from([1, 100, PAGE - 1, PAGE + 1, 3 * PAGE - 7])), "ok"
        if kind == "huge":
            v = data.draw(st.sampled_from([1 << 40, 1 << 50, U64 - PAGE, U64 - 1]), label="len")
            if cap and v > cap:
                return data.draw(st.sampled_from([U64 - PAGE, U64 - 1, cap])), "ok"
            return v, "ok"
        if kind == "bad":
            v = data.draw(st.sampled_from([-1, -PAGE, U64, 1 << 130, -(1 << 130)]), label="len")
            return v, ("bigint" if abs(v) >= 1 << 127 else "ok")
        if kind == "string":
            s = data.draw(SIZE_STRINGS, label="len")
            b = size_value(s)
            if cap and b is not None and b > cap:
                return "4KiB", "ok"
            return s, "ok"
        return data.draw(WRONG_TYPES, label="len"), "type"

    def draw_tid(self, data: st.DataObject, pm: Proc) -> Arg:
        """A thread id: a parked one, a small one, the largest, or an invalid int or type."""
        parked = [t for (p, t) in self.parked if p == pm.pid]
        kind = data.draw(
            weighted(
                (16, "small"),
                (4 if parked else 0, "parked"),
                (1, "max"),
                (1, "neg"),
                (1, "toolarge"),
                (1, "type"),
            ),
            label="tid kind",
        )
        if kind == "parked":
            return data.draw(st.sampled_from(parked), label="tid"), "ok"
        if kind == "small":
            return data.draw(st.integers(0, 3), label="tid"), "ok"
        if kind == "max":
            return data.draw(st.sampled_from([MAX_TID, MAX_TID + 1, (1 << 32) - 1])), "ok"
        if kind == "neg":
            return -1, "range"
        if kind == "toolarge":
            return 1 << 32, "range"
        return data.draw(st.sampled_from(["0", 0.0, None]), label="tid"), "type"

    def draw_uffd(self, data: st.DataObject) -> Uffd | None:
        """A userfaultfd of the model (open ones more often)."""
        if not self.uffds:
            return None
        open_ = [
            u
            for u in self.uffds
            if not u.closed and self.by_pid[u.pid].alive
            for _ in range(3 if self.by_pid[u.pid].regions else 1)
        ]
        if open_ and data.draw(st.integers(0, 5), label="pick closed") < 5:
            return data.draw(st.sampled_from(open_), label="uffd")
        return data.draw(st.sampled_from(self.uffds), label="uffd")

    # ---------------------------------------------------------------- setup

    @initialize(
        arch=st.sampled_from(["s390x"] * 3 + ["x86_64"]),
        profile=st.sampled_from(PROFILES),
        memory=st.sampled_from(["1MiB", "2MiB", "4MiB", 256 * PAGE, "3 MiB"]),
        swap=st.sampled_from(["0", 0, "1MiB", "4MiB", 64 * PAGE]),
        seed=st.integers(0, U64 - 1),
        kvm=weighted((3, True), (1, False)),
        maps=st.lists(
            st.tuples(
                st.integers(1, 16) | st.integers(64, 600),
                st.sampled_from(["anon", "shmem"]),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        ),
        uffd=st.one_of(
            st.none(),
            st.lists(
                st.sampled_from(
                    ["EVENT_REMOVE", "EVENT_UNMAP", "EVENT_FORK", "THREAD_ID", "EXACT_ADDRESS"]
                ),
                unique=True,
            ),
        ),
        mode=weighted((6, "missing"), (1, "wp"), (1, "missing+wp"), (1, "minor")),
    )
    def setup(
        self,
        arch: str,
        profile: str,
        memory: Any,
        swap: Any,
        seed: int,
        kvm: bool,
        maps: list[tuple[int, str, bool]],
        uffd: list[str] | None,
        mode: str,
    ) -> None:
        """A small kernel (reclaim and OOM happen), a first process and its first mappings."""
        self.arch, self.profile = arch, profile
        self.kernel_args = dict(profile=profile, arch=arch, memory=memory, swap=swap, seed=seed)
        self.k = reclaim.Kernel(**self.kernel_args)
        self.objs = [self.k]
        self.refs = {id(self.k): 0}
        self.check("Kernel")
        self.spawn_proc("init", kvm and arch == "s390x")
        pm = self.procs[0]
        for pages, kind, shared in maps:
            ok, a = self.call("Process.mmap", pm.proc.mmap, pages * PAGE, kind, shared=shared)
            self.must_succeed((ok, a), "a small mmap of a new process")
            obj = ShmObj(f"{kind}@{a:#x}") if shared else None
            pm.regions.append(Region(a, a + pages * PAGE, kind, shared, obj))
        pm.regions.sort(key=lambda r: r.start)
        if uffd is not None:
            if profile != "6.12":
                uffd = [f for f in uffd if f != "EXACT_ADDRESS"]
            ok, u = self.call("Process.userfaultfd", pm.proc.userfaultfd, uffd)
            self.must_succeed((ok, u), f"features {uffd} are offered")
            uf = Uffd(u, pm.pid, u.features)
            self.uffds.append(uf)
            r = pm.regions[0]
            out = self.call(
                "Userfaultfd.register",
                u.register,
                r.start,
                r.end - r.start,
                missing="missing" in mode,
                wp="wp" in mode,
                minor="minor" in mode,
            )
            if mode == "missing":
                self.must_succeed(out, "registering a whole mapping for MISSING faults")
            if out[0]:
                uf.ranges.append((r.start, r.end))

    def spawn_proc(self, name: Any, kvm: Any, cats: Iterable[str] = ()) -> None:
        """Kernel.spawn, into the model."""
        ok, p = self.call("Kernel.spawn", self.kernel.spawn, name, kvm=kvm, cats=cats)
        if kvm is True and self.arch != "s390x":
            self.must_fail((ok, p), "kvm=True needs s390x")
        if ok:
            if isinstance(kvm, bool) and p.kvm != (kvm and self.arch == "s390x"):
                raise Violation(f"spawn(kvm={kvm}) gave a process with kvm={p.kvm}")
            pm = Proc(p, p.pid, p.kvm)
            if p.pid in self.by_pid:
                raise Violation(f"spawn reused pid {p.pid}")
            self.procs.append(pm)
            self.by_pid[p.pid] = pm
        self.sync()

    # ---------------------------------------------------------------- Kernel

    @precondition(lambda self: len(self.live()) < MAX_LIVE)
    @rule(
        name=st.one_of(
            st.text(max_size=12),
            st.sampled_from(["qemu-system-s390x", "", "x" * 300, "a\x00b", "\ud800"]),
        ),
        kvm=mostly(st.booleans(), st.sampled_from([1, None, "yes"])),
    )
    def spawn(self, name: str, kvm: Any) -> None:
        """Kernel.spawn with any name, kvm a bool or a wrong type."""
        cats = ["type"] if not isinstance(kvm, bool) else []
        if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            cats.append("unicode")
        self.spawn_proc(name, kvm, cats)

    @rule(n=mostly(st.integers(0, 64), st.sampled_from([0, 1 << 20, U64 - 1, -1, U64, "4"])))
    def reclaim_pages(self, n: Any) -> None:
        """Kernel.reclaim of 0, some or very many pages (or a bad count)."""
        cat = "type" if isinstance(n, str) else ("range" if not 0 <= n < U64 else "ok")
        ok, got = self.call("Kernel.reclaim", self.kernel.reclaim, n, cats=[cat])
        if ok and not isinstance(got, int):
            raise Violation(f"reclaim returned {got!r}")
        self.sync()

    @rule()
    def kswapd(self) -> None:
        """Kernel.kswapd."""
        self.call("Kernel.kswapd", self.kernel.kswapd)
        self.sync()

    @rule()
    def stats(self) -> None:
        """vmstat, meminfo, watermarks, processes, profile, now, memory, heap_bytes, repr,
        log_hash, event_arrays: consistent with each other and with the model."""
        k = self.kernel
        ok, vm = self.call("Kernel.vmstat", k.vmstat)
        self.must_succeed((ok, vm), "vmstat never fails")
        ok, mi = self.call("Kernel.meminfo", k.meminfo)
        self.must_succeed((ok, mi), "meminfo never fails")
        if not 0 <= mi["MemFree"] <= mi["MemTotal"] or not 0 <= mi["SwapFree"] <= mi["SwapTotal"]:
            raise Violation(f"meminfo out of range: {mi}")
        if vm["nr_free_pages"] * 4 != mi["MemFree"]:
            raise Violation(f"vmstat nr_free_pages {vm['nr_free_pages']} != meminfo {mi}")
        ok, ps = self.call("Kernel.processes", k.processes)
        self.must_succeed((ok, ps), "processes never fails")
        if sorted(p.pid for p in ps) != sorted(p.pid for p in self.live()):
            raise Violation(f"processes() {ps} but the model has {[p.pid for p in self.live()]}")
        for api, fn in (
            ("Kernel.watermarks", k.watermarks),
            ("Kernel.profile", lambda: k.profile),
            ("Kernel.now", lambda: k.now),
            ("Kernel.memory", lambda: k.memory),
            ("Kernel.heap_bytes", k.heap_bytes),
            ("Kernel.__repr__", lambda: repr(k)),
            ("Kernel.log_hash", k.log_hash),
            ("Kernel.event_arrays", k.event_arrays),
            ("Kernel.kvm_migration_mode", lambda: k.kvm_migration_mode),
        ):
            self.must_succeed(self.call(api, fn), f"{api} never fails")

    @rule(
        data=st.data(),
        name=st.one_of(
            st.none(),
            st.sampled_from(list(reclaim._reclaim.EVENT_KINDS)),
            st.sampled_from(["nope", "", "rmap:", "mm:MMAP"]),
        ),
    )
    def events(self, data: st.DataObject, name: str | None) -> None:
        """Kernel.events filtered by a valid or bogus name, pid and time range; Kernel.mute."""
        pid = data.draw(st.one_of(st.none(), st.sampled_from([p.pid for p in self.procs] or [0])))
        since = data.draw(st.one_of(st.none(), st.integers(0, U64 - 1)), label="since")
        until = data.draw(st.one_of(st.none(), st.integers(0, U64 - 1), st.just(-1)))
        cats = ["range"] if until == -1 else []
        ok, evs = self.call(
            "Kernel.events", self.kernel.events, name, pid=pid, since=since, until=until, cats=cats
        )
        known = name is None or name in reclaim._reclaim.EVENT_KINDS
        if not known:
            self.must_fail((ok, evs), f"{name!r} is no event name")
        elif not cats:
            self.must_succeed((ok, evs), "a known name")
            for e in evs:
                if name is not None and e.name != name:
                    raise Violation(f"events({name!r}) returned {e!r}")
                e.fields()
                repr(e)
        if data.draw(st.booleans(), label="mute"):
            muted = data.draw(st.booleans(), label="muted")
            ok, _ = self.call("Kernel.mute", self.kernel.mute, name or "bogus", muted)
            if name is not None and known and not ok:
                raise Violation(f"mute({name!r}) failed")

    @rule(pfn=mostly(st.integers(0, 1100), st.sampled_from([-1, 1 << 32, (1 << 32) - 1])))
    def page(self, pfn: int) -> None:
        """Kernel.page of any frame number."""
        cat = "range" if not 0 <= pfn < 1 << 32 else "ok"
        ok, d = self.call("Kernel.page", self.kernel.page, pfn, cats=[cat])
        if cat == "ok" and pfn < self.kernel.memory // PAGE:
            self.must_succeed((ok, d), f"pfn {pfn} is a frame of the kernel")

    @rule(on=st.one_of(st.booleans(), st.sampled_from([1, None])))
    def migration_mode(self, on: Any) -> None:
        """Toggle Kernel.kvm_migration_mode (or set it to a wrong type)."""

        def setter() -> None:
            self.kernel.kvm_migration_mode = on

        cats = ["ok"] if isinstance(on, bool) else ["type"]
        before = self.kernel.kvm_migration_mode
        ok, e = self.call("Kernel.kvm_migration_mode=", setter, cats=cats)
        self.replay_log.append(
            (0, "=kvm_migration_mode", (on,), {}, None if ok else _digest_exc(e))
        )
        after = self.kernel.kvm_migration_mode
        if after != (on if ok else before):
            raise Violation(f"kvm_migration_mode is {after} after setting {on!r} (ok={ok})")
        self.sync()

    @rule(
        profile=st.one_of(st.sampled_from([*PROFILES, "5.4", "", None])),
        arch=st.sampled_from(["s390x", "x86_64", "arm64", ""]),
        memory=st.sampled_from([0, 4095, 63 * PAGE, "1MiB", -1, 1 << 70, 1 << 130, 4096.0, b"1"]),
        swap=st.sampled_from([None, 0, 1, "1MiB", -PAGE, U64, "lots"]),
        seed=st.sampled_from([0, U64 - 1, -1, U64]),
    )
    def new_kernel(self, profile: Any, arch: str, memory: Any, swap: Any, seed: int) -> None:
        """The Kernel constructor with valid and invalid arguments (a throw-away kernel)."""
        cats = ["ok"]
        if not isinstance(memory, int | str):
            cats.append("type")
        if isinstance(memory, int) and abs(memory) >= 1 << 127:
            cats.append("bigint")
        if not 0 <= seed < U64:
            cats.append("range")
        ok, k = self.call("Kernel", reclaim.Kernel, profile, arch, memory, swap, seed, cats=cats)
        if ok:
            STATS.checks += 1
            k.check()
        ok, prof = self.call("Profile", reclaim.Profile, profile, arch, cats=["type"], check=False)
        if ok:
            _ = (prof.name, prof.release, prof.arch, prof.switches(), repr(prof))
            self.call("Kernel", reclaim.Kernel, prof, "s390x", "1MiB", check=False)

    # ---------------------------------------------------------------- Process: mappings

    @rule(
        data=st.data(),
        kind=weighted((12, "anon"), (8, "shmem"), (1, "file"), (1, ""), (1, "ANON")),
        shared=mostly(st.booleans(), st.sampled_from([0, "no"])),
    )
    def mmap(self, data: st.DataObject, kind: str, shared: Any) -> None:
        """Process.mmap of anon or shmem memory, shared or not, of any length."""
        pm = self.draw_proc(data)
        size = data.draw(weighted((14, "small"), (4, "any"), (1, "big")), label="size")
        if size == "big":
            length: Arg = (
                data.draw(st.sampled_from([1 << 20, 1 << 30, 1 << 40, (1 << 40) + 1])),
                "ok",
            )
        elif size == "small":
            pages = data.draw(st.integers(1, 16) | st.integers(17, 600), label="pages")
            length = pages * PAGE, "ok"
        else:
            length = self.draw_len(data, None, None)
        cats = [length[1]] + ([] if isinstance(shared, bool) else ["type"])
        out = self.call("Process.mmap", pm.proc.mmap, length[0], kind, shared=shared, cats=cats)
        ok, a = out
        n = size_value(length[0])
        if ok:
            if not pm.alive or kind not in ("anon", "shmem") or not n or page_align(n) > 1 << 40:
                raise Violation(f"{self.trace[-1]} should have been refused, returned {a!r}")
            n = page_align(n)
            if a % PAGE or a < 1 << 16 or a + n > U64:
                raise Violation(f"{self.trace[-1]} returned a bad address {a:#x}")
            for r in pm.regions:
                if r.start < a + n and a < r.end:
                    raise Violation(f"mmap returned {a:#x}+{n:#x} overlapping {r}")
            shared_map = bool(shared)
            obj = ShmObj(f"{kind}@{a:#x}") if shared_map else None
            pm.regions.append(Region(a, a + n, kind, shared_map, obj))
            pm.regions.sort(key=lambda r: r.start)
        elif pm.alive and kind in ("anon", "shmem") and isinstance(shared, bool) and n == 0:
            self.must_fail(out, "length 0", errno.EINVAL)
        self.sync()

    @rule(data=st.data())
    def munmap(self, data: st.DataObject) -> None:
        """Process.munmap of any range: unaligned, overlapping mappings, holes, huge."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        r = pm.region_at(addr[0]) if isinstance(addr[0], int) else None
        length = self.draw_len(data, r, addr[0])
        out = self.call(
            "Process.munmap", pm.proc.munmap, addr[0], length[0], cats=[addr[1], length[1]]
        )
        ok, _ = out
        n = size_value(length[0])
        if ok:
            a = addr[0]
            if not pm.alive or n is None or n == 0 or a % PAGE or a + page_align(n) >= U64:
                raise Violation(f"{self.trace[-1]} should have been refused")
            self.unmap(pm, a, a + page_align(n))
            states = self.query(
                "Process.page_states", pm.proc.page_states, a, min(page_align(n), 1 << 20)
            )
            if states.any():
                raise Violation(f"after {self.trace[-1]}: PTEs left in the range: {states}")
        elif (
            pm.alive
            and addr[1] == "ok"
            and n
            and addr[0] % PAGE == 0
            and addr[0] + page_align(n) < U64
        ):
            self.must_succeed(out, "munmap of an aligned range that fits always succeeds")
        self.sync()

    @rule(data=st.data(), lock=st.booleans())
    def mlock(self, data: st.DataObject, lock: bool) -> None:
        """Process.mlock / munlock of any range."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        r = pm.region_at(addr[0]) if isinstance(addr[0], int) else None
        length = self.draw_len(data, r, addr[0], cap=0 if lock else WALK_CAP)
        fn = pm.proc.mlock if lock else pm.proc.munlock
        api = "Process.mlock" if lock else "Process.munlock"
        ok, _ = self.call(api, fn, addr[0], length[0], cats=[addr[1], length[1]])
        if ok:
            a, n = addr[0], size_value(length[0])
            assert isinstance(a, int) and n is not None
            span = lock_span(a, n)
            if span is None:
                raise Violation(f"{self.trace[-1]} succeeded on a range that overflows")
            self.vma_flags_are(pm, span[0], span[1], "VM_LOCKED", lock)
        self.sync()

    def vma_flags_are(self, pm: Proc, start: int, end: int, flag: str, on: bool) -> None:
        """Every engine VMA meeting [start, end) has ``flag`` (``on``) or has not."""
        if start >= end:
            return
        for s, e, flags in self.query("Process.vmas", pm.proc.vmas):
            if s < end and start < e and (flag in flags) != on:
                raise Violation(
                    f"after {self.trace[-1]}: the VMA {s:#x}..{e:#x} has flags {flags}, "
                    f"{'without' if on else 'with'} {flag}"
                )

    @rule(
        data=st.data(),
        advice=mostly(
            st.sampled_from(ADVICE_ALL),
            st.sampled_from(["MADV_DONTNEED", " Free ", "madv_pageout", "hugepage", "", "x"]),
        ),
    )
    def madvise(self, data: st.DataObject, advice: str) -> None:
        """Process.madvise with every advice name and bogus ones, over any range."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        r = pm.region_at(addr[0]) if isinstance(addr[0], int) else None
        cap = (
            WALK_CAP
            if advice.strip().lower().removeprefix("madv_")
            in (
                "willneed",
                "cold",
                "pageout",
            )
            else 0
        )
        length = self.draw_len(data, r, addr[0], cap=cap)
        ok, _ = self.call(
            "Process.madvise",
            pm.proc.madvise,
            addr[0],
            length[0],
            advice,
            cats=[addr[1], length[1]],
        )
        adv = advice.strip().lower().removeprefix("madv_")
        n = size_value(length[0])
        a = addr[0]
        if isinstance(a, int) and n is not None and 0 <= a < U64:
            end = min(a + page_align(n), U64)
            if adv == "dontneed":
                if ok:
                    self.drop_private(pm, a, end)
                else:
                    self.maybe_zero(pm, a, end, shared=False)
            elif adv == "free":
                self.maybe_zero(pm, a, end, shared=False)
            elif adv == "remove":
                if ok:
                    for c in self.existing_cells(pm, a, end, shared=True):
                        c.vals = {0}
                else:
                    self.maybe_zero(pm, a, end, shared=True)
        if ok and (
            adv not in ADVICE_ALL or (adv in ("cold", "pageout") and self.profile != "6.12")
        ):
            raise Violation(f"{self.trace[-1]} succeeded with advice {advice!r} on {self.profile}")
        self.sync()

    # ---------------------------------------------------------------- Process: lifecycle

    @precondition(lambda self: len(self.live()) < MAX_LIVE)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        """Process.fork: the child gets copies of private pages and shares the shared ones."""
        pm = self.draw_proc(data)
        ok, c = self.call("Process.fork", pm.proc.fork)
        if ok:
            if not pm.alive:
                raise Violation("fork of an exited process succeeded")
            cm = Proc(c, c.pid, c.kvm)
            if c.kvm:
                raise Violation("the child of fork has PGSTEs (init_new_context clears them)")
            cm.regions = [
                Region(r.start, r.end, r.kind, r.shared, r.obj, r.pgoff) for r in pm.regions
            ]
            cm.cells = {a: Cell(x.vals) for a, x in pm.cells.items()}
            self.procs.append(cm)
            self.by_pid[c.pid] = cm
        elif pm.alive:
            raise Violation(f"fork of a live process failed: {c!r}")
        self.sync()

    @precondition(lambda self: len(self.live()) > 1)
    @rule(data=st.data())
    def exit(self, data: st.DataObject) -> None:
        """Process.exit (of any process; twice is an error)."""
        pm = self.draw_proc(data)
        ok, e = self.call("Process.exit", pm.proc.exit)
        if ok != pm.alive:
            raise Violation(f"exit of a {'live' if pm.alive else 'dead'} process: {e!r}")
        if ok:
            pm.alive = False
            pm.regions.clear()
            pm.cells.clear()
            for key in [k for k in self.parked if k[0] == pm.pid]:
                del self.parked[key]
        self.sync()

    # ---------------------------------------------------------------- Process: accesses

    @rule(
        data=st.data(),
        write=st.booleans(),
        value=mostly(st.integers(1, U64 - 1), st.sampled_from([0, U64 - 1, -1, U64, "v", 1.0])),
    )
    def access(self, data: st.DataObject, write: bool, value: Any) -> None:
        """Process.read / write at any address by any thread (parked ones included)."""
        pm = self.draw_proc(data)
        self.do_access(pm, self.draw_addr(data, pm), self.draw_tid(data, pm), write, value)

    @rule(
        data=st.data(),
        write=st.booleans(),
        value=st.integers(1, U64 - 1),
        pages=st.integers(2, 16) | st.integers(16, 300),
        stride=weighted((4, 1), (1, 2), (1, 3)),
    )
    def touch(self, data: st.DataObject, write: bool, value: int, pages: int, stride: int) -> None:
        """Read or write a run of pages of one region (memory pressure: reclaim, swap, OOM),
        each page with its own value, by one thread."""
        pm = self.draw_proc(data, dead_ok=False)
        if not pm.regions:
            return
        r = data.draw(st.sampled_from(pm.regions), label="region")
        first = self.draw_page_index(data, r)
        tid = data.draw(st.integers(0, 3), label="tid")
        for i in range(first, min(r.pages(), first + pages * stride), stride):
            if not pm.alive or (pm.pid, tid) in self.parked:
                break
            v = (value + i) % U64 or 1
            self.do_access(pm, (r.start + i * PAGE, "ok"), (tid, "ok"), write, v)

    @rule(
        data=st.data(),
        write=st.booleans(),
        value=st.integers(1, U64 - 1),
    )
    def access_page(self, data: st.DataObject, write: bool, value: int) -> None:
        """Process.read / write of a page of a mapping by a thread that is not parked."""
        pm = self.draw_proc(data, dead_ok=False)
        if not pm.regions:
            return
        r = data.draw(st.sampled_from(pm.regions), label="region")
        a = r.start + self.draw_page_index(data, r) * PAGE + data.draw(weighted((9, 0), (1, 8)))
        tid = data.draw(st.integers(0, 3), label="tid")
        if (pm.pid, tid) not in self.parked:
            self.do_access(pm, (a, "ok"), (tid, "ok"), write, value)

    def do_access(self, pm: Proc, addr: Arg, tid: Arg, write: bool, value: Any) -> None:
        """One read or write; check its outcome and update the model."""
        cats = [addr[1], tid[1]]
        if write:
            cats.append("ok" if isinstance(value, int) and 0 <= value < U64 else "range")
            if not isinstance(value, int):
                cats.append("type")
            out = self.call("Process.write", pm.proc.write, addr[0], value, tid=tid[0], cats=cats)
        else:
            out = self.call("Process.read", pm.proc.read, addr[0], tid=tid[0], cats=cats)
        ok, r = out
        well_typed = set(cats) == {"ok"}
        if not well_typed:
            if ok:
                raise Violation(f"{self.trace[-1]} accepted an invalid argument: {r!r}")
            self.sync()
            return
        key = (pm.pid, tid[0])
        if not pm.alive:
            self.must_fail(out, "the process exited")
        elif tid[0] > MAX_TID:
            if ok or not isinstance(r, reclaim.ArgumentError):
                raise Violation(f"{self.trace[-1]}: thread id beyond {MAX_TID} gave {r!r}")
        elif key in self.parked:
            if ok or not isinstance(r, reclaim.ThreadBlockedError):
                raise Violation(f"{self.trace[-1]} on a parked thread gave {r!r}")
        else:
            if not ok:
                raise Violation(f"{self.trace[-1]} raised {type(r).__name__}: {r}")
            self.apply_access(pm, tid[0], addr[0], write, value, r)
        self.sync()

    def apply_access(self, pm: Proc, tid: int, a: int, write: bool, value: int, r: Any) -> None:
        """Check the outcome `r` (an AccessResult or alike) of one access and update the model."""
        self.check_access(pm, tid, a, write, value, r)
        STATS.outcomes[f"access: {r.kind}"] += 1
        if r.kind == "completed":
            if write:
                c = self.cell(pm, a)
                assert c is not None
                c.vals = {value}
            else:
                self.observe_read(pm, a, r.value)
        elif r.kind == "blocked":
            ev = r.event
            assert ev is not None
            self.parked[(pm.pid, tid)] = Parked(a, write, value if write else 0, ev.uffd)

    @rule(data=st.data(), n=st.integers(0, 24), defaults=st.booleans())
    def access_batch(self, data: st.DataObject, n: int, defaults: bool) -> None:
        """Process.access_batch of addresses in and around the mappings, reads and writes, by a
        thread that is not parked: each access is checked and applied as a single one would be;
        the batch stops at a userfault. Wrong arrays (dtype, shape, lengths) are refused."""
        pm = self.draw_proc(data, dead_ok=False)
        tid = data.draw(st.integers(0, 3), label="tid")
        if (pm.pid, tid) in self.parked:
            return
        addrs = [self.draw_addr(data, pm)[0] for _ in range(n)]
        addrs = [a if isinstance(a, int) and 0 <= a < U64 else 0 for a in addrs]
        writes = [data.draw(st.booleans()) for _ in range(n)]
        values = [data.draw(st.integers(1, U64 - 1)) for _ in range(n)]
        bad = data.draw(weighted((12, None), (1, "dtype"), (1, "length"), (1, "shape")))
        a_arr = np.array(addrs, dtype=np.uint64)
        w_arr = np.array(writes, dtype=bool)
        v_arr = None if defaults else np.array(values, dtype=np.uint64)
        if bad == "dtype":
            a_arr = a_arr.astype(np.int32)
        elif bad == "length":
            w_arr = np.ones(n + 1, dtype=bool)
        elif bad == "shape":
            a_arr = np.zeros((2, 2), dtype=np.uint64)
        out = self.call(
            "Process.access_batch",
            pm.proc.access_batch,
            a_arr,
            w_arr,
            tid=tid,
            values=v_arr,
            cats=["type" if bad else "ok"],
        )
        ok, res = out
        if bad is not None:
            if ok or not isinstance(res, reclaim.ArgumentError):
                raise Violation(f"{self.trace[-1]} with a bad {bad} gave {res!r}")
            self.sync()
            return
        if not ok:
            raise Violation(f"{self.trace[-1]} raised {type(res).__name__}: {res}")
        outcomes, got = res.outcomes, res.values
        ran = n if res.stopped_at is None else res.stopped_at + 1
        if len(outcomes) != ran or len(got) != ran:
            raise Violation(f"{self.trace[-1]}: {ran} accesses ran, arrays of {len(outcomes)}")
        for i in range(ran):
            kind = reclaim.OUTCOMES[outcomes[i]]
            value = values[i] if not defaults else addrs[i] & ~(PAGE - 1)
            one = BatchAccess.of(kind, int(got[i]), res.event if i == ran - 1 else None)
            if (one.kind == "blocked") != (i == res.stopped_at):
                raise Violation(f"{self.trace[-1]}: access {i} {kind}, stopped_at {res.stopped_at}")
            self.apply_access(pm, tid, addrs[i], writes[i], value, one)
        self.sync()

    @rule(damage=st.sampled_from([None, None, "truncate", "flip", "empty"]), cut=st.floats(0, 1))
    def snapshot_restore(self, damage: str | None, cut: float) -> None:
        """Kernel.snapshot then Kernel.restore: the restored kernel passes check() and has
        the same event log hash, clock and vmstat; a damaged file is a FormatError and leaves
        the running kernel as it was."""
        path = os.path.join(self.tmp, "k.snap")
        out = self.call("Kernel.snapshot", self.kernel.snapshot, path)
        if not out[0]:
            raise Violation(f"{self.trace[-1]} raised {out[1]!r}")
        if damage is not None:
            damage_file(path, damage, cut)
        ok, k2 = self.call("Kernel.restore", reclaim.Kernel.restore, path)
        if damage is not None:
            if ok or not isinstance(k2, reclaim.FormatError):
                raise Violation(f"{self.trace[-1]} of a {damage} snapshot gave {k2!r}")
            return
        if not ok:
            raise Violation(f"{self.trace[-1]} raised {type(k2).__name__}: {k2}")
        try:
            k2.check()
        except reclaim.InvariantError as e:
            raise Violation(f"the restored kernel fails check(): {e}") from e
        same = (k2.log_hash(), k2.now, k2.vmstat()) == (
            self.kernel.log_hash(),
            self.kernel.now,
            self.kernel.vmstat(),
        )
        if not same:
            raise Violation("the restored kernel differs in log hash, clock or vmstat")

    @rule(
        data=st.data(),
        pattern=st.sampled_from(["uniform", "zipf:0.9", "sequential", "phased", "nonsense", ""]),
        count=mostly(st.integers(0, 200), st.sampled_from([-1, U64])),
        write_fraction=mostly(st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([-0.5, 2.0])),
        seed=st.integers(0, 3),
    )
    def run_workload(
        self, data: st.DataObject, pattern: str, count: Any, write_fraction: float, seed: int
    ) -> None:
        """Process.run_workload over up to 256 pages of a region, valid arguments or not. Which
        pages it wrote is not known here: each may hold its old value or its address."""
        pm = self.draw_proc(data, dead_ok=False)
        tid = data.draw(st.integers(0, 3), label="tid")
        if not pm.regions or (pm.pid, tid) in self.parked:
            return
        r = data.draw(st.sampled_from(pm.regions), label="region")
        first = self.draw_page_index(data, r)
        pages = min(r.pages() - first, 256)
        start = r.start + first * PAGE
        valid = pattern in ("uniform", "zipf:0.9", "sequential", "phased")
        valid = valid and isinstance(count, int) and 0 <= count < U64 and 0 <= write_fraction <= 1
        cats = ["ok" if valid else "range"]
        out = self.call(
            "Process.run_workload",
            pm.proc.run_workload,
            pattern,
            start=start,
            length=pages * PAGE,
            count=count,
            write_fraction=write_fraction,
            seed=seed,
            tid=tid,
            cats=cats,
        )
        ok, res = out
        if not valid:
            if ok:
                raise Violation(f"{self.trace[-1]} accepted an invalid argument: {res!r}")
            self.sync()
            return
        if not ok:
            raise Violation(f"{self.trace[-1]} raised {type(res).__name__}: {res}")
        # a store writes the page's address: each page holds what it held, or that
        for page in range(start, start + pages * PAGE, PAGE):
            c = self.cell(pm, page)
            assert c is not None
            c.vals.add(page)
        if res.stopped_at is not None:
            ev = res.event
            assert ev is not None
            page = ev.address & ~(PAGE - 1)
            self.parked[(pm.pid, tid)] = Parked(page, ev.write, page if ev.write else 0, ev.uffd)
        self.sync()

    @rule(data=st.data())
    def thread_state(self, data: st.DataObject) -> None:
        """Process.is_blocked / last_access of any thread agree with the model."""
        pm = self.draw_proc(data)
        tid = self.draw_tid(data, pm)
        ok, b = self.call("Process.is_blocked", pm.proc.is_blocked, tid[0], cats=[tid[1]])
        if ok and tid[1] == "ok" and b != ((pm.pid, tid[0]) in self.parked):
            raise Violation(f"is_blocked({tid[0]}) of pid {pm.pid} is {b}")
        self.call("Process.last_access", pm.proc.last_access, tid[0], cats=[tid[1]])

    @rule(data=st.data())
    def inspect(self, data: st.DataObject) -> None:
        """page_state, page_states, pte, pgste, rss, vmas, name, kvm, alive, repr, hash."""
        pm = self.draw_proc(data)
        p = pm.proc
        addr = self.draw_addr(data, pm)
        ok, state = self.call("Process.page_state", p.page_state, addr[0], cats=[addr[1]])
        if ok and state not in ("present", "swapped", "none"):
            raise Violation(f"page_state returned {state!r}")
        ok2, pte = self.call("Process.pte", p.pte, addr[0], cats=[addr[1]])
        if ok and ok2 and (pte.present(), pte.swap()) != (state == "present", state == "swapped"):
            raise Violation(f"page_state {state!r} but pte {pte!r}")
        if ok2:
            for m in ("none", "young", "dirty", "write", "special", "unused", "pfn", "value"):
                v = getattr(pte, m)
                v() if callable(v) else v
            if ok and state == "present" and pte.pfn() != 0:
                self.frame_matches(pm, addr[0], pte.pfn())
        ok3, g = self.call("Process.pgste", p.pgste, addr[0], cats=[addr[1]])
        if ok3:
            if not pm.kvm:
                raise Violation("pgste of a process without PGSTEs succeeded")
            _ = (g.usage, g.zero(), g.nodat(), g.value, repr(g))
        length = self.draw_len(
            data, pm.region_at(addr[0]) if isinstance(addr[0], int) else None, addr[0]
        )
        n = size_value(length[0])
        if n is not None and PAGE_STATES_CAP < n <= 1 << 40:
            length = (PAGE_STATES_CAP, "ok")
            n = PAGE_STATES_CAP
        ok4, arr = self.call(
            "Process.page_states", p.page_states, addr[0], length[0], cats=[addr[1], length[1]]
        )
        if ok4:
            a = addr[0]
            if n is None or len(arr) != (n + PAGE - 1) // PAGE:
                raise Violation(f"page_states returned {len(arr)} entries for {n} bytes")
            if (a & ~(PAGE - 1)) + len(arr) * PAGE > U64 or n > 1 << 40:
                raise Violation(f"{self.trace[-1]} accepted a range beyond 1 TiB or wrapping")
            if len(arr) and ok and arr[0] != ("none", "present", "swapped").index(state):
                raise Violation(f"page_states[0] {arr[0]} but page_state {state!r} at {a:#x}")
        for api, fn in (
            ("Process.rss", p.rss),
            ("Process.vmas", p.vmas),
            ("Process.name", lambda: p.name),
            ("Process.kvm", lambda: p.kvm),
        ):
            ok5, _ = self.call(api, fn)
            if ok5 != pm.alive:
                raise Violation(f"{api} of a {'live' if pm.alive else 'dead'} process: ok={ok5}")
        ok6, alive = self.call("Process.alive", lambda: p.alive)
        if not ok6 or alive != pm.alive:
            raise Violation(f"alive is {alive!r}, the model says {pm.alive}")
        self.call("Process.__repr__", lambda: (repr(p), hash(p), p == p))

    # ---------------------------------------------------------------- userfaultfd

    @rule(
        data=st.data(),
        features=st.one_of(
            st.none(),
            st.lists(st.sampled_from(FEATURES), max_size=3),
            st.sampled_from(FEATURES),
            st.integers(0, (1 << 17) - 1),
            st.sampled_from(
                [
                    "uffd_feature_sigbus",
                    " thread_id ",
                    "NOPE",
                    ["EVENT_FORK", "bogus"],
                    [1],
                    1 << 63,
                    -1,
                    1 << 70,
                    3.5,
                    b"SIGBUS",
                ]
            ),
        ),
    )
    def userfaultfd(self, data: st.DataObject, features: Any) -> None:
        """Process.userfaultfd with valid names, unknown names, ints and wrong types."""
        pm = self.draw_proc(data)
        cats = ["ok"]
        if isinstance(features, float | bytes) or (
            isinstance(features, list) and any(not isinstance(f, str) for f in features)
        ):
            cats.append("type")
        ok, u = self.call("Process.userfaultfd", pm.proc.userfaultfd, features, cats=cats)
        if ok:
            if not pm.alive:
                raise Violation("userfaultfd of an exited process succeeded")
            self.uffds.append(Uffd(u, pm.pid, u.features))
            _ = (u.id, u.offered, repr(u))
        self.sync()

    def uffd_args(self, data: st.DataObject, uf: Uffd) -> tuple[Proc, Arg, Region | None]:
        """The process of ``uf``, an address for it and its region."""
        pm = self.by_pid[uf.pid]
        if uf.ranges and data.draw(st.integers(0, 9), label="registered range") < 7:
            s, e = data.draw(st.sampled_from(uf.ranges), label="range")
            addr: Arg = (s + data.draw(st.integers(0, (e - s) // PAGE - 1)) * PAGE, "ok")
        else:
            addr = self.draw_addr(data, pm, unaligned=data.draw(st.integers(0, 9)) == 0)
        r = pm.region_at(addr[0]) if isinstance(addr[0], int) and 0 <= addr[0] < U64 else None
        return pm, addr, r

    @precondition(lambda self: bool(self.uffds))
    @rule(
        data=st.data(),
        missing=weighted((6, True), (1, False)),
        wp=weighted((6, False), (1, True)),
        minor=weighted((6, False), (1, True)),
    )
    def register(self, data: st.DataObject, missing: bool, wp: bool, minor: bool) -> None:
        """Userfaultfd.register in any mode over any range."""
        uf = self.draw_uffd(data)
        assert uf is not None
        pm, addr, r = self.uffd_args(data, uf)
        length = self.draw_len(data, r, addr[0])
        out = self.call(
            "Userfaultfd.register",
            uf.u.register,
            addr[0],
            length[0],
            missing=missing,
            wp=wp,
            minor=minor,
            cats=[addr[1], length[1]],
        )
        if out[0]:
            n = size_value(length[0])
            assert n is not None
            uf.ranges.append((addr[0], addr[0] + page_align(n)))
            del uf.ranges[:-8]
            if missing:
                self.vma_flags_are(pm, addr[0], addr[0] + n, "VM_UFFD_MISSING", True)
        if self.arch == "s390x" and (wp or minor):
            self.must_fail(out, "s390 has neither uffd-wp nor MINOR", errno.EINVAL)
        if not (missing or wp or minor):
            self.must_fail(out, "mode 0", errno.EINVAL)
        if uf.closed or not pm.alive:
            self.must_fail(out, "the userfaultfd is closed or its process exited")
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data())
    def unregister(self, data: st.DataObject) -> None:
        """Userfaultfd.unregister of any range (wakes MISSING faulters)."""
        uf = self.draw_uffd(data)
        assert uf is not None
        pm, addr, r = self.uffd_args(data, uf)
        length = self.draw_len(data, r, addr[0])
        ok, _ = self.call(
            "Userfaultfd.unregister", uf.u.unregister, addr[0], length[0], cats=[addr[1], length[1]]
        )
        if ok:
            n = size_value(length[0])
            assert n is not None
            for f in ("VM_UFFD_MISSING", "VM_UFFD_WP", "VM_UFFD_MINOR"):
                self.vma_flags_are(pm, addr[0], addr[0] + n, f, False)
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(
        data=st.data(),
        dontwake=weighted((4, False), (1, True)),
        wp=weighted((6, False), (1, True)),
        as_list=st.booleans(),
    )
    def copy(self, data: st.DataObject, dontwake: bool, wp: bool, as_list: bool) -> None:
        """Userfaultfd.copy of one value over a length, or of a list of values."""
        uf = self.draw_uffd(data)
        assert uf is not None
        pm, addr, r = self.uffd_args(data, uf)
        cats = [addr[1]]
        if as_list:
            values: Any = data.draw(
                st.lists(st.integers(0, U64 - 1), max_size=6)
                | st.sampled_from([[-1], [U64], ["x"], [1.5]]),
                label="values",
            )
            if any(not isinstance(v, int) for v in values):
                cats.append("type")
            elif any(not 0 <= v < U64 for v in values):
                cats.append("range")
            length: Arg = (None, "ok")
            vals: list[int] = [v for v in values if isinstance(v, int)]
        else:
            value = data.draw(st.integers(0, U64 - 1), label="value")
            length = data.draw(
                st.sampled_from([(None, "ok")] * 2 + [("len", "ok")]), label="length?"
            )
            if length[0] == "len":
                length = self.draw_len(data, r, addr[0])
            values = value
            n = size_value(length[0]) if length[0] is not None else PAGE
            # a copy fills at most as many pages as memory and swap hold
            vals = [value] * min(n // PAGE if n else 0, self.kernel.memory // PAGE * 3)
        cats.append(length[1])
        ok, done = self.call(
            "Userfaultfd.copy",
            uf.u.copy,
            addr[0],
            values,
            length[0],
            dontwake=dontwake,
            wp=wp,
            cats=cats,
        )
        a = addr[0]
        if isinstance(a, int) and 0 <= a < U64 and "type" not in cats and "range" not in cats:
            if ok:
                want = len(vals) * PAGE if as_list else n
                if done != want:
                    raise Violation(f"{self.trace[-1]} returned {done}, not {want}")
                for i, v in enumerate(vals):
                    c = self.cell(pm, a + i * PAGE)
                    if c is None:
                        raise Violation(f"{self.trace[-1]} filled {a + i * PAGE:#x}, not mapped")
                    c.vals = {v}
            else:
                for i, v in enumerate(vals):
                    c = self.cell(pm, a + i * PAGE) if a + i * PAGE < U64 else None
                    if c is not None:
                        c.vals.add(v)
        if ok and (uf.closed or not pm.alive):
            raise Violation(f"{self.trace[-1]} succeeded on a closed userfaultfd / dead process")
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data(), dontwake=st.booleans(), which=st.sampled_from(["zeropage", "continue_"]))
    def zeropage(self, data: st.DataObject, dontwake: bool, which: str) -> None:
        """Userfaultfd.zeropage / continue_ over any range."""
        uf = self.draw_uffd(data)
        assert uf is not None
        pm, addr, r = self.uffd_args(data, uf)
        length: Arg = (None, "ok")
        if data.draw(st.booleans(), label="with length"):
            length = self.draw_len(data, r, addr[0], cap=WALK_CAP)
        fn = uf.u.zeropage if which == "zeropage" else uf.u.continue_
        out = self.call(
            f"Userfaultfd.{which}",
            fn,
            addr[0],
            length[0],
            dontwake=dontwake,
            cats=[addr[1], length[1]],
        )
        ok, done = out
        if which == "continue_" and self.arch == "s390x":
            self.must_fail(out, "s390 has no MINOR faults")
        a = addr[0]
        n = PAGE if length[0] is None else size_value(length[0])
        if which == "zeropage" and ok:
            if done != n:
                raise Violation(f"{self.trace[-1]} returned {done}, not {n}")
            for c in self.existing_cells(pm, a, a + done, None):
                c.vals = {0}
        elif which == "zeropage" and isinstance(a, int) and 0 <= a < U64 and n:
            self.maybe_zero(pm, a, min(a + page_align(n), U64), None)
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data(), wp=st.booleans(), dontwake=st.booleans())
    def writeprotect(self, data: st.DataObject, wp: bool, dontwake: bool) -> None:
        """Userfaultfd.writeprotect (s390: never, no uffd-wp)."""
        uf = self.draw_uffd(data)
        assert uf is not None
        _pm, addr, r = self.uffd_args(data, uf)
        length = self.draw_len(data, r, addr[0], cap=WALK_CAP)
        out = self.call(
            "Userfaultfd.writeprotect",
            uf.u.writeprotect,
            addr[0],
            length[0],
            wp=wp,
            dontwake=dontwake,
            cats=[addr[1], length[1]],
        )
        if self.arch == "s390x":
            self.must_fail(out, "s390 has no uffd-wp")
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data())
    def wake(self, data: st.DataObject) -> None:
        """Userfaultfd.wake of any range."""
        uf = self.draw_uffd(data)
        assert uf is not None
        _pm, addr, r = self.uffd_args(data, uf)
        length: Arg = (None, "ok")
        if data.draw(st.booleans(), label="with length"):
            length = self.draw_len(data, r, addr[0])
        self.call("Userfaultfd.wake", uf.u.wake, addr[0], length[0], cats=[addr[1], length[1]])
        self.sync()

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data())
    def read_events(self, data: st.DataObject) -> None:
        """Userfaultfd.read_events: known messages only; features of the fd."""
        uf = self.draw_uffd(data)
        assert uf is not None
        ok, evs = self.call("Userfaultfd.read_events", uf.u.read_events)
        if ok:
            if uf.closed:
                raise Violation("read of a closed userfaultfd succeeded")
            for e in evs:
                if e.event not in UFFD_EVENTS:
                    raise Violation(f"unknown userfaultfd message {e!r}")
                if e.event == "PAGEFAULT" and e.uffd != uf.u.id:
                    raise Violation(f"message {e!r} of userfaultfd {uf.u.id}")
                if (
                    e.event == "PAGEFAULT"
                    and uf.features & FEATURE_BITS["THREAD_ID"] == 0
                    and e.ptid
                ):
                    raise Violation(f"ptid in {e!r} without THREAD_ID")
                _ = repr(e)
                if e.event == "PAGEFAULT":
                    _ = (e.write, e.wp, e.minor)
                    self.match_message(uf, e)
        self.call("Userfaultfd.features", lambda: uf.u.features)

    def match_message(self, uf: Uffd, e: reclaim.UffdPagefault) -> None:
        """A PAGEFAULT message read from ``uf`` is the one of a parked access, read once."""
        for (pid, tid), pk in self.parked.items():
            if pid != uf.pid or pk.uffd != uf.u.id or (pk.reported and not pk.rewoken):
                continue
            if pk.addr >> 12 != e.address >> 12 or e.write != pk.write:
                continue
            if uf.features & FEATURE_BITS["THREAD_ID"] and e.ptid != pid + tid:
                continue
            pk.reported, pk.rewoken = True, False
            return
        raise Violation(
            f"{self.trace[-1]} returned {e!r}, which is the message of no parked access "
            f"(parked: {self.parked})"
        )

    @precondition(lambda self: bool(self.uffds))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        """Userfaultfd.close (twice is fine): disarms and wakes."""
        uf = self.draw_uffd(data)
        assert uf is not None
        ok, e = self.call("Userfaultfd.close", uf.u.close)
        if not ok:
            raise Violation(f"close failed: {e!r}")
        uf.closed = True
        self.sync()

    # ---------------------------------------------------------------- directed sequences

    def pick_run(self, data: st.DataObject, pm: Proc, r: Region, most: int) -> tuple[int, int]:
        """A run of pages of ``r``: (address, pages)."""
        first = self.draw_page_index(data, r)
        n = data.draw(st.integers(1, most), label="pages")
        return r.start + first * PAGE, min(n, r.pages() - first)

    @rule(
        data=st.data(),
        reclaim=st.integers(0, 300),
        advice=st.sampled_from(["free", "dontneed", "cold", "pageout"]),
    )
    def advise_run(self, data: st.DataObject, reclaim: int, advice: str) -> None:
        """Write a run of private pages, madvise them (FREE, DONTNEED, COLD, PAGEOUT),
        reclaim, then read or write them again."""
        procs = [p for p in self.live() if any(not r.shared for r in p.regions)]
        if not procs:
            return
        pm = data.draw(st.sampled_from(procs), label="process")
        r = data.draw(st.sampled_from([r for r in pm.regions if not r.shared]), label="region")
        a, n = self.pick_run(data, pm, r, 64)
        tid = data.draw(st.integers(0, 3), label="tid")
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                return
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), True, 0x1000 + i)
        ok, _ = self.call("Process.madvise", pm.proc.madvise, a, n * PAGE, advice)
        if advice == "free" or (advice == "dontneed" and not ok):
            self.maybe_zero(pm, a, a + n * PAGE, shared=False)
        elif advice == "dontneed":
            self.drop_private(pm, a, a + n * PAGE)
        self.sync()
        if reclaim:
            self.call("Kernel.reclaim", self.kernel.reclaim, reclaim)
            self.sync()
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                return
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), data.draw(st.booleans()), 7)

    @precondition(lambda self: self.arch == "x86_64")
    @rule(data=st.data(), resolve=st.booleans(), dontwake=st.booleans())
    def wp_cycle(self, data: st.DataObject, resolve: bool, dontwake: bool) -> None:
        """x86_64 uffd-wp: register for WP, write-protect written pages, write (a WP fault
        parks the thread), resolve (wakes it), or wake it while still protected."""
        procs = [p for p in self.live() if p.regions]
        if not procs:
            return
        pm = data.draw(st.sampled_from(procs), label="process")
        r = data.draw(st.sampled_from(pm.regions), label="region")
        ok, u = self.call("Process.userfaultfd", pm.proc.userfaultfd, ["PAGEFAULT_FLAG_WP"])
        if not ok:
            return
        uf = Uffd(u, pm.pid, u.features)
        self.uffds.append(uf)
        ok, _ = self.call("Userfaultfd.register", u.register, r.start, r.end - r.start, wp=True)
        self.sync()
        if not ok:
            return
        uf.ranges.append((r.start, r.end))
        a, n = self.pick_run(data, pm, r, 16)
        tid = data.draw(st.integers(0, 3), label="tid")
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                return
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), True, 0x2000 + i)
        self.call("Userfaultfd.writeprotect", u.writeprotect, a, n * PAGE, wp=True)
        self.sync()
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                break
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), True, 0x3000 + i)
        if resolve:
            self.call(
                "Userfaultfd.writeprotect", u.writeprotect, a, n * PAGE, wp=False, dontwake=dontwake
            )
        else:
            self.call("Userfaultfd.wake", u.wake, a, n * PAGE)
        self.sync()

    @precondition(lambda self: self.arch == "x86_64")
    @rule(data=st.data())
    def minor_cycle(self, data: st.DataObject) -> None:
        """x86_64 MINOR faults: register a shmem mapping for MINOR, drop the PTEs of written
        pages (the page cache keeps them), read (a MINOR fault parks), UFFDIO_CONTINUE."""
        procs = [p for p in self.live() if any(r.kind == "shmem" for r in p.regions)]
        if not procs:
            return
        pm = data.draw(st.sampled_from(procs), label="process")
        r = data.draw(st.sampled_from([r for r in pm.regions if r.kind == "shmem"]))
        a, n = self.pick_run(data, pm, r, 16)
        tid = data.draw(st.integers(0, 3), label="tid")
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                return
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), True, 0x4000 + i)
        ok, u = self.call("Process.userfaultfd", pm.proc.userfaultfd, ["MINOR_SHMEM"])
        if not ok:
            return
        uf = Uffd(u, pm.pid, u.features)
        self.uffds.append(uf)
        ok, _ = self.call(
            "Userfaultfd.register", u.register, r.start, r.end - r.start, missing=False, minor=True
        )
        self.sync()
        if not ok:
            return
        uf.ranges.append((r.start, r.end))
        ok, _ = self.call("Process.madvise", pm.proc.madvise, a, n * PAGE, "dontneed")
        if ok:
            self.drop_private(pm, a, a + n * PAGE)
        else:
            self.maybe_zero(pm, a, a + n * PAGE, shared=False)
        self.sync()
        for i in range(n):
            if (pm.pid, tid) in self.parked:
                break
            self.do_access(pm, (a + i * PAGE, "ok"), (tid, "ok"), False, 0)
        self.call("Userfaultfd.continue_", u.continue_, a, n * PAGE)
        self.sync()

    # ---------------------------------------------------------------- KVM

    def draw_orc(self, data: st.DataObject) -> Arg:
        """An ESSA orc: 0..7, a name, or an invalid int / name / type."""
        kind = data.draw(
            weighted((8, "int"), (8, "name"), (2, "bad"), (1, "big"), (1, "type")), label="orc kind"
        )
        if kind == "int":
            return data.draw(st.integers(0, 7), label="orc"), "ok"
        if kind == "name":
            n = data.draw(st.sampled_from(s390.ORC_NAMES), label="orc")
            return data.draw(st.sampled_from([n, n.upper(), f"ESSA_{n.upper()}", f" {n} "])), "ok"
        if kind == "bad":
            return data.draw(
                st.sampled_from([8, -1, 1 << 40, "8", "-1", "", "set_everything"])
            ), "ok"
        if kind == "big":
            return data.draw(st.sampled_from([1 << 63, 1 << 70, -(1 << 70)])), "ok"
        return data.draw(st.sampled_from([1.0, None, [1]])), "type"

    @rule(data=st.data())
    def essa(self, data: st.DataObject) -> None:
        """Process.essa with every orc and bogus ones, on KVM and other processes."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        orc = self.draw_orc(data)
        vcpu = data.draw(
            weighted((8, (0, "ok")), (4, (1, "ok")), (1, ((1 << 32) - 1, "ok")), (1, (-1, "range")))
        )
        ok, r = self.call(
            "Process.essa",
            pm.proc.essa,
            addr[0],
            orc[0],
            vcpu=vcpu[0],
            cats=[addr[1], orc[1], vcpu[1]],
        )
        if ok:
            if not pm.kvm or not pm.alive:
                raise Violation(f"{self.trace[-1]} succeeded on a process without PGSTEs")
            if not 0 <= r.orc <= 7:
                raise Violation(f"{self.trace[-1]}: orc {r.orc}")
            _ = (r.old_pgste, r.new_pgste, r.res, r.intercepted, r.zapped, r.cbrl_len, repr(r))
            pm.cmma.add(addr[0] & ~(PAGE - 1))
        self.sync()

    @rule(
        data=st.data(),
        orc=st.sampled_from(["set_unused", "set_volatile", "set_pot_volatile", "set_stable"]),
        pages=st.integers(1, 32),
        reclaim=st.integers(0, 300),
    )
    def guest_frees(self, data: st.DataObject, orc: str, pages: int, reclaim: int) -> None:
        """A KVM guest changes the CMMA state of a run of pages (ESSA), then the host
        reclaims: the path of the seed bug (dropped UNUSED pages)."""
        kvm = [p for p in self.live() if p.kvm and p.regions]
        if not kvm:
            return
        pm = data.draw(st.sampled_from(kvm), label="process")
        r = data.draw(st.sampled_from(pm.regions), label="region")
        first = self.draw_page_index(data, r)
        for i in range(first, min(r.pages(), first + pages)):
            out = self.call("Process.essa", pm.proc.essa, r.start + i * PAGE, orc)
            self.must_succeed(out, "ESSA on a mapped page of a KVM process")
            pm.cmma.add(r.start + i * PAGE)
            self.sync()
        if reclaim:
            self.call("Kernel.reclaim", self.kernel.reclaim, reclaim)
            self.sync()

    @rule(
        data=st.data(),
        vcpu=weighted((8, (0, "ok")), (4, (1, "ok")), (1, (7, "ok")), (1, (-1, "range"))),
    )
    def process_cbrl(self, data: st.DataObject, vcpu: Arg) -> None:
        """Process.process_cbrl of any vCPU."""
        pm = self.draw_proc(data)
        self.call("Process.process_cbrl", pm.proc.process_cbrl, vcpu[0], cats=[vcpu[1]])
        self.sync()

    @rule(data=st.data())
    def diag10(self, data: st.DataObject) -> None:
        """Process.diag10 over any range: zaps like MADV_DONTNEED."""
        pm = self.draw_proc(data)
        start = self.draw_addr(data, pm)
        r = pm.region_at(start[0]) if isinstance(start[0], int) else None
        if data.draw(st.booleans(), label="end from length") and isinstance(start[0], int):
            length = self.draw_len(data, r, start[0])
            n = size_value(length[0])
            end: Arg = (start[0] + n, "ok") if n is not None else self.draw_addr(data, pm)
            if isinstance(end[0], int) and end[0] >= U64:
                end = (end[0], "range")
        else:
            end = self.draw_addr(data, pm)
        ok, n = self.call(
            "Process.diag10", pm.proc.diag10, start[0], end[0], cats=[start[1], end[1]]
        )
        if ok:
            if not pm.kvm:
                raise Violation("diag10 of a process without PGSTEs succeeded")
            self.drop_private(pm, start[0], end[0])
        self.sync()

    @rule(
        data=st.data(),
        bits=mostly(st.integers(0, 255), st.sampled_from([256, -1])),
    )
    def cmma_bits(self, data: st.DataObject, bits: int) -> None:
        """Process.set_cmma_bits / get_cmma_bits at any address."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        cat = "ok" if 0 <= bits < 256 else "range"
        ok, _ = self.call(
            "Process.set_cmma_bits", pm.proc.set_cmma_bits, addr[0], bits, cats=[addr[1], cat]
        )
        if ok:
            if not pm.kvm:
                raise Violation("set_cmma_bits of a process without PGSTEs succeeded")
            pm.cmma.add(addr[0] & ~(PAGE - 1))
        self.sync()
        ok, got = self.call("Process.get_cmma_bits", pm.proc.get_cmma_bits, addr[0], cats=[addr[1]])
        if ok and not 0 <= got < 256:
            raise Violation(f"get_cmma_bits returned {got!r}")

    @rule(data=st.data())
    def enable_skey(self, data: st.DataObject) -> None:
        """Process.enable_skey (zero-page mappings go; contents stay)."""
        pm = self.draw_proc(data)
        ok, _n = self.call("Process.enable_skey", pm.proc.enable_skey)
        if ok and not pm.kvm:
            raise Violation("enable_skey of a process without PGSTEs succeeded")
        self.sync()

    @rule(data=st.data())
    def migrate_page(self, data: st.DataObject) -> None:
        """Process.migrate_page at any address (content moves with the page)."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        ok, pfn = self.call("Process.migrate_page", pm.proc.migrate_page, addr[0], cats=[addr[1]])
        if ok and pfn is not None and not 0 < pfn < self.kernel.memory // PAGE:
            raise Violation(f"migrate_page returned pfn {pfn}")
        self.sync()

    # ---------------------------------------------------------------- value types

    @rule(
        value=mostly(st.integers(0, U64 - 1), st.sampled_from([-1, U64, 1 << 130])),
        other=st.integers(0, U64 - 1),
        orc=st.one_of(st.integers(-1, 8), st.sampled_from(s390.ORC_NAMES)),
        arch=weighted((4, "s390x"), (2, "x86_64"), (1, "sparc")),
        profile=weighted((2, "4.17"), (2, "4.18"), (2, "6.12"), (1, "2.6")),
        pte_methods=st.lists(st.sampled_from(PTE_METHODS), min_size=1, max_size=4, unique=True),
        pgste_methods=st.lists(st.sampled_from(PGSTE_METHODS), max_size=2, unique=True),
    )
    def values(
        self,
        value: int,
        other: int,
        orc: Any,
        arch: str,
        profile: str,
        pte_methods: list[str],
        pgste_methods: list[str],
    ) -> None:
        """reclaim.s390: Pte (any method), Pgste, mk_swap_pte, Pte.mk, essa on values."""
        cats = ["range"] if not 0 <= value < U64 else ["ok"]
        ok, pte = self.call("Pte", s390.Pte, value, arch, cats=cats, check=False)
        if ok:
            for m in pte_methods:
                if m == "modify":
                    self.call("Pte.modify", pte.modify, other, check=False)
                else:
                    self.call(f"Pte.{m}", lambda m=m: _value_or_call(getattr(pte, m)), check=False)
        self.call("Pte.mk", s390.Pte.mk, other >> 12, other & 0xFFF, check=False)
        self.call("mk_swap_pte", s390.mk_swap_pte, other & 0x1F, other >> 5, check=False)
        okg, g = self.call("Pgste", s390.Pgste, other, profile, check=False)
        if okg:
            for m in pgste_methods:
                self.call(f"Pgste.{m}", lambda m=m: _value_or_call(getattr(g, m)), check=False)
        if ok and okg:
            self.call("essa", s390.essa, pte, g, orc, check=False)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def model_agrees(self) -> None:
        """Every live process's VMAs cover exactly what the model mapped."""
        if self.k is None:
            return
        self.sync()
        STATS.steps += 1
        for pm in self.live():
            vmas = self.query("Process.vmas", pm.proc.vmas)
            if _union([(s, e) for s, e, _ in vmas]) != _union(
                [(r.start, r.end) for r in pm.regions]
            ):
                raise Violation(
                    f"pid {pm.pid}: engine VMAs {[(hex(s), hex(e)) for s, e, _ in vmas]} but the "
                    f"model maps {[(hex(r.start), hex(r.end)) for r in pm.regions]}"
                )


def damage_file(path: str, damage: str, cut: float) -> None:
    """Damage the snapshot at ``path``: ``"truncate"`` it at fraction ``cut`` (at most 99%),
    ``"flip"`` a bit of the byte at fraction ``cut``, or make it ``"empty"``."""
    blob = bytearray(Path(path).read_bytes())
    if damage == "truncate":
        blob = blob[: int(len(blob) * cut * 0.99)]
    elif damage == "flip":
        blob[int((len(blob) - 1) * cut)] ^= 0x40
    else:
        blob = bytearray()
    Path(path).write_bytes(bytes(blob))


def _digest(v: Any) -> Any:
    """What of a call's result a replay must reproduce."""
    if isinstance(v, reclaim.AccessResult):
        ev = v.event
        return ("access", v.kind, v.value, None if ev is None else (ev.event, ev.address, ev.flags))
    if isinstance(v, reclaim.Process | reclaim.Userfaultfd):
        return type(v).__name__
    if isinstance(v, list):
        return tuple(_digest(x) for x in v)
    if isinstance(v, reclaim.UffdEvent):
        return (v.event, v.uffd, repr(v), getattr(v, "ptid", None))
    if isinstance(v, reclaim.Event):
        return (v.t, v.name, v.pid, v.tid, v.addr, v.a, v.b, v.c)
    if isinstance(v, dict):
        return tuple(sorted((k, _digest(x)) for k, x in v.items()))
    if isinstance(v, tuple):
        return tuple(_digest(x) for x in v)
    if v is None or isinstance(v, int | str):
        return v
    if hasattr(v, "tobytes"):
        return v.tobytes()
    return type(v).__name__


def _digest_exc(e: BaseException) -> Any:
    """What of an exception a replay must reproduce."""
    return ("raised", type(e).__name__, str(e))


def _value_or_call(v: Any) -> Any:
    """``v()`` for a method, ``v`` for a property value (and its repr)."""
    return v() if callable(v) else repr(v)


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _short(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 4096:
        return hex(v)
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class MigrationMachine(RuleBasedStateMachine):
    """The postcopy run and the explorer's scenario under random calls: PostcopyRun.advance
    with good and bad times, its queries, snapshot and restore (a restored run continues
    exactly as the run it was taken from; a damaged file is a FormatError), and
    Scenario.replay / explain of step lists mixing the scenario's steps with garbage. After
    every call the run passes check(), and every rejection is a useful ReclaimError (or a
    TypeError / OverflowError from the PyO3 conversion of a wrong Python value)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="reclaim-fuzz-")
        self.run: Any = None
        self.scenario: reclaim.Scenario | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(
        self, api: str, fn: Callable[..., Any], *args: Any, conversion: bool = False
    ) -> tuple[bool, Any]:
        """``fn(*args)``: (True, its result), or (False, None) for an allowed rejection."""
        STATS.calls += 1
        STATS.per_api[api] += 1
        try:
            return True, fn(*args)
        except reclaim.ReclaimError as e:
            if isinstance(e, reclaim.InternalError | reclaim.InvariantError):
                raise Violation(f"{api}{args!r} raised {type(e).__name__}: {e}") from e
            ApiMachine.judge_message(f"{api}{args!r}", e)
            STATS.errors[f"{api}: {type(e).__name__}"] += 1
            return False, None
        except (TypeError, OverflowError) as e:
            if not conversion:
                raise Violation(f"{api}{args!r} raised {type(e).__name__}: {e}") from e
            return False, None
        finally:
            if self.run is not None:
                self.run.check()

    @initialize(
        profile=st.sampled_from(PROFILES),
        guest=st.sampled_from(["4MiB", "8MiB"]),
        seed=st.integers(0, 3),
    )
    def setup(self, profile: str, guest: str, seed: int) -> None:
        from reclaim.studies.postcopy import prepare

        self.run = prepare(profile, guest_memory=guest, seed=seed, turnover=0.2)
        self.scenario = reclaim.Scenario(profile)

    @rule(delta=mostly(st.integers(0, 50_000_000), st.sampled_from([-1, U64, "1ms", 1.5, None])))
    def advance(self, delta: Any) -> None:
        until = self.run.now + delta if isinstance(delta, int) and delta >= 0 else delta
        conversion = not (isinstance(until, int) and 0 <= until < U64)
        before = self.run.now
        ok, _ = self.call("PostcopyRun.advance", self.run.advance, until, conversion=conversion)
        if not ok and self.run.now != before:
            raise Violation(f"a refused advance({until!r}) moved the clock")

    @rule(
        host=mostly(st.sampled_from([0, 1]), st.sampled_from([2, -1, "dest"])),
        what=st.sampled_from(["vmstat", "page_states", "progress", "steps", "heap", "result"]),
    )
    def query(self, host: Any, what: str) -> None:
        r = self.run
        bad = host not in (0, 1)
        if what == "vmstat":
            self.call("PostcopyRun.vmstat", r.vmstat, host, conversion=bad)
        elif what == "page_states":
            self.call("PostcopyRun.page_states", r.page_states, host, conversion=bad)
        elif what == "result":
            _, res = self.call("PostcopyRun.result", r.result)
            if res is None or res.outcome not in ("completed", "hung", "failed"):
                raise Violation(f"PostcopyRun.result() gave {res!r}")
        else:
            _value_or_call(
                {"progress": lambda: r.progress, "steps": lambda: r.steps}.get(what, r.heap_bytes)
            )

    @rule(
        name=st.sampled_from(["mm:handle_mm_fault", "userfaultfd:wake", "try_to_unmap", "nothing"]),
        on=st.booleans(),
    )
    def mute(self, name: str, on: bool) -> None:
        self.call("PostcopyRun.mute", self.run.mute, name, on)

    @rule(damage=st.sampled_from([None, None, "truncate", "flip"]), cut=st.floats(0, 1))
    def snapshot_restore(self, damage: str | None, cut: float) -> None:
        from reclaim._reclaim import PostcopyRun

        path = os.path.join(self.tmp, "run.snap")
        self.call("PostcopyRun.snapshot", self.run.snapshot, path)
        if damage is not None:
            damage_file(path, damage, cut)
            try:
                PostcopyRun.restore(path)
            except reclaim.FormatError as e:
                ApiMachine.judge_message("PostcopyRun.restore", e)
                return
            raise Violation(f"a {damage} snapshot was restored")
        _, twin = self.call("PostcopyRun.restore", PostcopyRun.restore, path)
        until = self.run.now + 20_000_000
        self.call("PostcopyRun.advance", self.run.advance, until)
        self.call("PostcopyRun.advance", twin.advance, until)
        twin.check()
        a, b = self.run.result(), twin.result()
        if (a.log_hash, a.outcome, self.run.now) != (b.log_hash, b.outcome, twin.now):
            raise Violation("a restored run does not continue as the run it was taken from")
        self.run = twin

    @rule(data=st.data(), n=st.integers(0, 8))
    def replay(self, data: st.DataObject, n: int) -> None:
        sc = self.scenario
        assert sc is not None
        known = sc.initial_steps()
        garbage = ["", "reclaim:99", "read:9:0", "alloc:0", "deliver:1", "\x00"]
        steps = [data.draw(st.sampled_from(known * 6 + garbage)) for _ in range(n)]
        which = data.draw(st.sampled_from(["replay", "explain"]))
        fn = sc.replay if which == "replay" else sc.explain
        self.call(f"Scenario.{which}", fn, steps)


__all__ = ["STATS", "ApiMachine", "MigrationMachine", "Stats", "Violation", "size_value"]
