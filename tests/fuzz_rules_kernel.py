"""The API fuzzer's rules on the Kernel object (see :mod:`fuzz_api`)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
from collections.abc import Iterator
from typing import Any

import reclaim
from fuzz_machine import ApiMachineBase
from fuzz_model import (
    MAX_LIVE,
    PAGE,
    PROFILES,
    STATS,
    U64,
    Violation,
    _digest_exc,
    mostly,
)
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

#: How long a rule waits for its second thread before it calls the engine deadlocked.
THREAD_TIMEOUT = 60.0


@contextlib.contextmanager
def failing_writes(limit: int) -> Iterator[None]:
    """Writes of this process past ``limit`` bytes of a file fail with EFBIG while inside (the
    soft RLIMIT_FSIZE, with SIGXFSZ ignored): an injected write error, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


class KernelRules(ApiMachineBase):
    """Rules on :class:`reclaim.Kernel`: processes, reclaim, kswapd, snapshots, clock."""

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

    @rule(limit=st.sampled_from([0, 28, 4096]))
    def snapshot_with_failing_writes(self, limit: int) -> None:
        """Kernel.snapshot over an existing file while every write past ``limit`` bytes fails
        (EFBIG): a FileError naming the path, the old file as it was, no temporary file left,
        and the kernel unchanged (check(), log hash, clock). Not recorded for the replay: the
        same call succeeds where writes do not fail."""
        path = os.path.join(self.tmp, "failing.snap")
        old = b"the old file, which a failed snapshot must leave as it was\n"
        with open(path, "wb") as f:
            f.write(old)
        before = (self.kernel.log_hash(), self.kernel.now)
        STATS.calls += 1
        STATS.per_api["Kernel.snapshot (failing writes)"] += 1
        self._record("Kernel.snapshot (failing writes)", (path, limit), {})
        try:
            with failing_writes(limit):
                self.kernel.snapshot(path)
        except reclaim.FileError as e:
            STATS.outcomes["Kernel.snapshot (failing writes): FileError"] += 1
            if path not in str(e):
                raise Violation(f"{self.trace[-1]}: the error does not name the path: {e}") from e
        except BaseException as e:
            raise Violation(f"{self.trace[-1]} raised {type(e).__name__}: {e}") from e
        else:
            raise Violation(f"{self.trace[-1]} succeeded although every write past {limit} failed")
        with open(path, "rb") as f:
            if f.read() != old:
                raise Violation(f"{self.trace[-1]}: the failed snapshot changed the old file")
        left = sorted(n for n in os.listdir(self.tmp) if "failing" in n)
        if left != ["failing.snap"]:
            raise Violation(f"{self.trace[-1]}: the failed snapshot left {left}")
        if (self.kernel.log_hash(), self.kernel.now) != before:
            raise Violation(f"{self.trace[-1]}: a failed snapshot changed the kernel")
        self.check("Kernel.snapshot (failing writes)")

    @rule(n=st.integers(1, 64), rounds=st.integers(1, 4))
    def queries_from_a_second_thread(self, n: int, rounds: int) -> None:
        """A second thread queries the kernel (check, vmstat, meminfo, processes, events,
        snapshot and restore of its own file) while this one reclaims and runs kswapd: every
        call returns or raises a ReclaimError, the thread ends within THREAD_TIMEOUT (no
        deadlock between the engine's lock and the GIL), and the kernel passes check()."""
        k = self.kernel
        errors: list[str] = []
        path = os.path.join(self.tmp, "thread.snap")
        stop = threading.Event()

        def queries() -> None:
            calls = 0
            while calls < 200 and (calls < 4 or not stop.is_set()):
                calls += 1
                try:
                    k.check()
                    k.vmstat()
                    k.meminfo()
                    k.processes()
                    k.events(since=k.now)
                    if calls % 8 == 1:
                        k.snapshot(path)
                        reclaim.Kernel.restore(path).check()
                except reclaim.InvariantError as e:
                    errors.append(f"InvariantError: {e}")
                except reclaim.ReclaimError:
                    pass
                except BaseException as e:
                    errors.append(f"{type(e).__name__}: {e}")
            STATS.calls += calls

        t = threading.Thread(target=queries, name="fuzz-queries", daemon=True)
        t.start()
        try:
            for _ in range(rounds):
                self.call("Kernel.reclaim", k.reclaim, n)
                self.call("Kernel.kswapd", k.kswapd)
        finally:
            stop.set()
            t.join(THREAD_TIMEOUT)
        if t.is_alive():
            raise Violation(f"the querying thread is still running after {THREAD_TIMEOUT} s")
        if errors:
            raise Violation(f"a query from a second thread failed: {errors[0]}")
        self.sync()
