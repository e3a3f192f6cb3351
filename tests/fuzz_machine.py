"""The base of the API fuzzer's state machine (see :mod:`fuzz_api`): the kernel under test, the
model kept beside it, calling the engine (every call checked and recorded for the replay),
synchronising parked accesses, drawing arguments, the setup and the invariant."""

from __future__ import annotations

import errno
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import reclaim
from fuzz_model import (
    CATEGORY_EXCEPTIONS,
    FEATURE_BITS,
    MAX_TID,
    PAGE,
    PROFILES,
    SIZE_STRINGS,
    STATS,
    TRACE_PATH,
    U64,
    WAKING_APIS,
    WRONG_TYPES,
    Arg,
    Cell,
    Parked,
    Proc,
    Region,
    ShmObj,
    Uffd,
    Violation,
    _digest,
    _digest_exc,
    _short,
    _union,
    page_align,
    size_value,
    weighted,
)
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant


class ApiMachineBase(RuleBasedStateMachine):
    """What the rules of :class:`fuzz_api.ApiMachine` share: the kernel under test and the
    model beside it, the calls that check and record every call, the synchronisation of
    parked accesses, argument drawing, the setup and the invariant."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="reclaim-fuzz-")  # snapshots (the replay reuses it)
        self.k: reclaim.Kernel | None = None
        self.arch = "s390x"
        self.profile = "4.18"
        self.profile_switches: dict[str, object] = {}
        self.private_shmem_fill_leaked = False
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
        if self.fills_leak_into_the_file(pm, addr):
            c.vals = {value}
            return
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

    def fills_leak_into_the_file(self, pm: Proc, addr: int) -> bool:
        """A page of a MAP_PRIVATE shmem mapping after a UFFDIO_COPY/ZEROPAGE into such a
        mapping on a profile whose fills go to the page cache (`shmem_mcopy_atomic_pte` before
        v4.20, switch `uffd_private_shmem_anon` off): the filled page is the file's, mapped
        writable, so the process's writes land in the file and come back after a zap. The model
        does not track that file, so it accepts any value there."""
        if not self.private_shmem_fill_leaked:
            return False
        r = pm.region_at(addr & ~(PAGE - 1))
        return r is not None and r.kind == "shmem" and not r.shared

    def note_private_shmem_fill(self, pm: Proc, start: int, end: int) -> None:
        """A successful UFFDIO_COPY/ZEROPAGE over [start, end) (see `fills_leak_into_the_file`)."""
        if self.profile_switches.get("uffd_private_shmem_anon", True):
            return
        for r in pm.regions:
            if r.kind == "shmem" and not r.shared and r.start < end and start < r.end:
                self.private_shmem_fill_leaked = True

    def frame_matches(self, pm: Proc, addr: int, pfn: int) -> None:
        """The frame a present PTE maps is mapped, and holds a value the page may hold."""
        frame = self.query("Kernel.page", self.kernel.page, pfn)
        c = self.cell(pm, addr)
        if frame["mapcount"] < 1 or frame["refcount"] < frame["mapcount"]:
            raise Violation(f"pid {pm.pid} maps pfn {pfn} at {addr:#x}: {frame}")
        if self.fills_leak_into_the_file(pm, addr):
            if c is not None:
                c.vals = {frame["content"]}
            return
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
                # s390 reports only the page even with EXACT_ADDRESS (arch/s390/mm/fault.c
                # get_fault_address: teid.addr * PAGE_SIZE); x86_64 the byte (CR2)
                exact = uf.features & FEATURE_BITS["EXACT_ADDRESS"] and self.arch == "x86_64"
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

    # ---------------------------------------------------------------- shared by rules

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
        self.profile_switches = reclaim.Profile(profile, arch).switches()
        self.private_shmem_fill_leaked = False
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
            # What UFFDIO_API offers on the profile (userfaultfd_api: EXACT_ADDRESS from
            # v5.18, THREAD_ID from v4.14); asking for more is -EINVAL.
            offered = reclaim.Profile(profile, arch).switches()["uffd_features_offered"]
            assert isinstance(offered, int)
            uffd = [f for f in uffd if offered & FEATURE_BITS[f]]
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
