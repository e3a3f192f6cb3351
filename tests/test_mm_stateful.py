"""Random operation sequences over the mm layer, checked after every step: the invariants of
Kernel.check() (rss, mapcount, refcount, frame accounting, LRU, swap_map, rmap against a
brute-force scan) and the content of every page a process can read."""

from __future__ import annotations

import reclaim
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

PAGE = 4096


class MmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.k = reclaim.Kernel(profile="6.12", memory="1MiB", swap="2MiB", seed=3)
        p = self.k.spawn("init")
        self.procs: list[reclaim.Process] = [p]
        # expected content of each mapped page: (pid, addr) -> value; shared pages are
        # tracked through a shared dict per mapping object
        self.private: dict[tuple[int, int], int] = {}
        self.shared: dict[tuple[int, int], dict[int, int]] = {}
        self.mappings: list[tuple[reclaim.Process, int, int, bool]] = []

    def _live(self) -> list[reclaim.Process]:
        return [p for p in self.procs if p.alive]

    @rule(pages=st.integers(1, 4), shared=st.booleans(), data=st.data())
    def mmap(self, pages: int, shared: bool, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(self._live()))
        a = p.mmap(pages * PAGE, kind="shmem" if shared else "anon", shared=shared)
        self.mappings.append((p, a, pages, shared))
        if shared:
            obj: dict[int, int] = {}
            for i in range(pages):
                self.shared[(p.pid, a + i * PAGE)] = obj
        for i in range(pages):
            if not shared:
                self.private[(p.pid, a + i * PAGE)] = 0

    def _expected(self, pid: int, addr: int) -> int | None:
        if (pid, addr) in self.private:
            return self.private[(pid, addr)]
        if (pid, addr) in self.shared:
            return self.shared[(pid, addr)].get(addr, 0)
        return None

    def _pages(self) -> list[tuple[reclaim.Process, int]]:
        live = {p.pid: p for p in self._live()}
        keys = [k for k in list(self.private) + list(self.shared) if k[0] in live]
        return [(live[pid], a) for pid, a in sorted(set(keys))]

    @precondition(lambda self: bool(self._pages()))
    @rule(data=st.data(), value=st.integers(1, 2**64 - 1))
    def write(self, data: st.DataObject, value: int) -> None:
        p, a = data.draw(st.sampled_from(self._pages()))
        r = p.write(a, value)
        if r.kind == "oom":
            return
        assert r.completed, r
        if (p.pid, a) in self.private:
            self.private[(p.pid, a)] = value
        else:
            self.shared[(p.pid, a)][a] = value

    @precondition(lambda self: bool(self._pages()))
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        p, a = data.draw(st.sampled_from(self._pages()))
        r = p.read(a)
        if r.kind == "oom":
            return
        assert r.value == self._expected(p.pid, a), (p, hex(a), r)

    @precondition(lambda self: len(self._live()) < 4)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(self._live()))
        c = p.fork()
        self.procs.append(c)
        for (pid, a), v in list(self.private.items()):
            if pid == p.pid:
                self.private[(c.pid, a)] = v
        for (pid, a), obj in list(self.shared.items()):
            if pid == p.pid:
                self.shared[(c.pid, a)] = obj

    @precondition(lambda self: bool(self._pages()))
    @rule(data=st.data())
    def dontneed(self, data: st.DataObject) -> None:
        p, a = data.draw(st.sampled_from(self._pages()))
        p.madvise(a, PAGE, "dontneed")
        if (p.pid, a) in self.private:
            self.private[(p.pid, a)] = 0

    @precondition(lambda self: bool(self._pages()))
    @rule(data=st.data())
    def munmap(self, data: st.DataObject) -> None:
        p, a = data.draw(st.sampled_from(self._pages()))
        p.munmap(a, PAGE)
        self.private.pop((p.pid, a), None)
        self.shared.pop((p.pid, a), None)

    @precondition(lambda self: bool(self._pages()))
    @rule(data=st.data())
    def pageout(self, data: st.DataObject) -> None:
        p, a = data.draw(st.sampled_from(self._pages()))
        p.madvise(a, PAGE, "pageout")

    @rule(n=st.integers(1, 64))
    def reclaim(self, n: int) -> None:
        self.k.reclaim(n)

    @precondition(lambda self: len(self._live()) > 1)
    @rule(data=st.data())
    def exit(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(self._live()[1:]))
        p.exit()

    @invariant()
    def model_invariants_hold(self) -> None:
        self.k.check()


TestMm = MmMachine.TestCase
TestMm.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
