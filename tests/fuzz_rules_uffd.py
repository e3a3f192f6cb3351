"""The API fuzzer's rules on userfaultfds, and its directed sequences (see :mod:`fuzz_api`)."""

from __future__ import annotations

import errno
from typing import Any

import reclaim
from fuzz_machine import ApiMachineBase
from fuzz_model import (
    FEATURE_BITS,
    FEATURES,
    PAGE,
    U64,
    UFFD_EVENTS,
    WALK_CAP,
    Arg,
    Proc,
    Region,
    Uffd,
    Violation,
    page_align,
    size_value,
    weighted,
)
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule


class UffdRules(ApiMachineBase):
    """Rules on :class:`reclaim.Userfaultfd` and the directed sequences that make reclaim and
    userfaults happen."""

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
                self.note_private_shmem_fill(pm, a, a + done)
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
            self.note_private_shmem_fill(pm, a, a + done)
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
