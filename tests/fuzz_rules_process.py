"""The API fuzzer's rules on processes (see :mod:`fuzz_api`)."""

from __future__ import annotations

import errno
import os
from typing import Any

import numpy as np
import reclaim
from fuzz_machine import ApiMachineBase
from fuzz_model import (
    ADVICE_ALL,
    MAX_LIVE,
    PAGE,
    PAGE_STATES_CAP,
    U64,
    WALK_CAP,
    Arg,
    BatchAccess,
    Cell,
    Parked,
    Proc,
    Region,
    ShmObj,
    Violation,
    damage_file,
    lock_span,
    mostly,
    page_align,
    size_value,
    weighted,
)
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule


class ProcessRules(ApiMachineBase):
    """Rules on :class:`reclaim.Process`: mappings, accesses, madvise, mlock, fork, exit,
    queries."""

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
