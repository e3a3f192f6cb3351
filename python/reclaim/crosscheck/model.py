"""Run a scenario on the model (the ``reclaim`` engine).

Every step maps to one call of the Python API: ``Process.mmap/munmap/madvise/fork``,
``Process.userfaultfd(features)`` (userfaultfd + UFFDIO_API), the ``Userfaultfd`` ioctls,
``Process.read/write`` (an access is parked on a userfault when ``AccessResult.blocked``) and
``Process.is_blocked/last_access`` for :class:`~reclaim.crosscheck.scenario.Wait`. A
``SyscallError`` is observed as its errno name.

Non-cooperative events (REMOVE, UNMAP, FORK) are queued by the model and returned by the next
``read_events`` — the model does not block the process that caused them as the kernel does.
"""

from __future__ import annotations

from reclaim._reclaim import (
    AccessResult,
    Kernel,
    Process,
    Profile,
    UffdEvent,
    UffdFork,
    UffdPagefault,
    UffdRemap,
    UffdRemove,
    UffdUnmap,
    Userfaultfd,
)
from reclaim.crosscheck.scenario import (
    FEATURE_NEEDS,
    OK,
    PAGE,
    Close,
    Continue,
    Copy,
    Fork,
    Madvise,
    Mmap,
    Msg,
    Munmap,
    Observation,
    PageState,
    Read,
    ReadEvents,
    Register,
    RunResult,
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
    errno_obs,
    feature_bits,
    locate,
    make_msg,
)
from reclaim.exceptions import ArgumentError, ReclaimError, SyscallError, ThreadBlockedError

#: Scenario needs that the model's arch must provide, with the arch feature they stand for.
ARCH_NEEDS = {"uffd_wp": "uffd-wp (HAVE_ARCH_USERFAULTFD_WP)", "uffd_minor": "MINOR faults"}

#: Arches that have uffd-wp and MINOR faults (HAVE_ARCH_USERFAULTFD_WP / _MINOR).
ARCHES_WITH_WP_MINOR = ("x86_64", "arm64", "aarch64")


def make_kernel(profile: str, arch: str, swap: str = "64MiB") -> tuple[Kernel, str, list[str]]:
    """A model kernel for ``profile`` on ``arch`` with ``swap`` of swap space ("0" for
    none); falls back to s390x when the model does not know ``arch`` yet. Returns the
    kernel, the arch used and notes."""
    notes: list[str] = []
    try:
        k = Kernel(profile=profile, arch=arch, memory="64MiB", swap=swap, seed=1)
        return k, arch, notes
    except ArgumentError as e:
        if arch == "s390x":
            raise
        notes.append(f"model arch {arch} not available yet ({e}); ran on s390x")
    k = Kernel(profile=profile, arch="s390x", memory="64MiB", swap=swap, seed=1)
    return k, "s390x", notes


def arch_skip_reason(scenario: Scenario, wanted: str, used: str) -> str | None:
    """Why the scenario cannot run on the model arch ``used`` (``wanted`` was asked for)."""
    missing = [ARCH_NEEDS[n] for n in sorted(scenario.needs) if n in ARCH_NEEDS]
    if not missing or used in ARCHES_WITH_WP_MINOR:
        return None
    if wanted != used:
        return f"model arch {wanted} not available yet (needs {', '.join(missing)})"
    return f"model arch {used} has no {', '.join(missing)}; the host kernel has"


def release_skip_reason(scenario: Scenario, profile: str, arch: str) -> str | None:
    """Why the model's ``profile`` cannot run ``scenario``: a userfaultfd feature it needs
    that the release does not offer at UFFDIO_API (``userfaultfd_api``, fs/userfaultfd.c:
    4.13 has no SIGBUS or THREAD_ID, v4.14 added them), so UFFDIO_API would be EINVAL. The
    arch's uffd-wp / MINOR are :func:`arch_skip_reason`'s."""
    value = Profile(profile, arch).switches()["uffd_features_offered"]
    offered = value if isinstance(value, int) else 0
    release_needs = [
        FEATURE_NEEDS[n]
        for n in sorted(scenario.needs)
        if n in FEATURE_NEEDS and n not in ARCH_NEEDS
    ]
    missing = [f for f in release_needs if not offered & feature_bits([f])]
    if not missing:
        return None
    names = ", ".join(f"UFFD_FEATURE_{m}" for m in missing)
    return f"profile {profile} does not offer {names} (UFFDIO_API would be EINVAL)"


class _ModelRun:
    """The state of one model run: processes, userfaultfds, mappings, names of ids."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.procs: dict[str, Process] = {"parent": k.spawn("crosscheck")}
        self.dead: set[str] = set()
        self.uffds: dict[str, Userfaultfd] = {}
        self.uffd_names: dict[int, str] = {}
        self.fork_parent: dict[str, str] = {}
        self.mappings: dict[str, tuple[int, int]] = {}
        self.forked = False
        self.last_write: dict[tuple[str, int], bool] = {}
        #: free swap slots before the scenario: what it took since is its swap usage
        self.swap_free = k.vmstat()["nr_swap_pages"]

    # -- naming ------------------------------------------------------------------------------

    def uffd_name(self, ident: int, proc: str = "parent") -> str:
        """The scenario name of the model's userfaultfd ``ident``; an unknown one is the
        child's userfaultfd from UFFD_EVENT_FORK (named after the parent's with EVENT_FORK)."""
        if ident in self.uffd_names:
            return self.uffd_names[ident]
        forking = [n for n, u in self.uffds.items() if u.features & feature_bits(["EVENT_FORK"])]
        if self.forked and len(forking) == 1:
            name = f"{forking[0]}/fork"
            self.uffd_names[ident] = name
            return name
        return f"?uffd{ident}"

    def msg(self, e: UffdEvent, proc: str = "parent") -> Msg:
        """Normalize a model message (the fields of its ``struct uffd_msg`` member)."""
        uffd = self.uffd_name(e.uffd, proc)
        maps = self.mappings
        if isinstance(e, UffdPagefault):
            return make_msg(
                event=e.code,
                uffd=uffd,
                mappings=maps,
                flags=e.flags,
                address=e.address,
                ptid=e.ptid,
            )
        if isinstance(e, UffdFork):
            return make_msg(event=e.code, uffd=uffd, mappings=maps, child=self.uffd_name(e.ufd))
        if isinstance(e, UffdRemap):
            return make_msg(event=e.code, uffd=uffd, mappings=maps, address=e.from_, end=e.to)
        if isinstance(e, UffdRemove | UffdUnmap):
            return make_msg(event=e.code, uffd=uffd, mappings=maps, address=e.start, end=e.end)
        return make_msg(event=e.code, uffd=uffd, mappings=maps)

    def addr(self, name: str, page: int, offset: int = 0) -> int:
        """The address of page ``page`` of mapping ``name``."""
        return self.mappings[name][0] + page * PAGE + offset

    def span(self, name: str, first: int, npages: int | None) -> tuple[int, int]:
        """(start, length) of pages ``[first, first+npages)`` (to the end for None)."""
        start, pages = self.mappings[name]
        n = pages - first if npages is None else npages
        return start + first * PAGE, n * PAGE

    # -- steps -------------------------------------------------------------------------------

    def access(self, p: Process, proc: str, r: AccessResult, write: bool) -> Observation:
        """Observe the outcome of an access."""
        if r.blocked and r.event is not None:
            return Observation("blocked", msgs=(self.msg(r.event, proc),))
        sig = r.signal
        if sig is not None:
            self.dead.add(proc)
            return Observation("signal", detail=sig)
        if r.kind != "completed":
            return Observation("error", detail=f"access {r.kind}")
        return Observation("written") if write else Observation("value", value=r.value or 0)

    def step(self, s: Step) -> Observation:
        """Run one step and observe it."""
        if isinstance(s, Mmap) and s.name in self.mappings:
            return Observation("error", detail=f"mapping {s.name} exists")
        if s.proc not in self.procs:
            return Observation("error", detail=f"no process {s.proc}")
        if s.proc in self.dead:
            return Observation("dead")
        p = self.procs[s.proc]
        try:
            return self._step(s, p)
        except ThreadBlockedError:
            return Observation("thread-blocked")
        except SyscallError as e:
            return errno_obs(e.errno_name or f"errno {e.errno}")
        except KeyError as e:
            return Observation("error", detail=f"unknown name {e}")
        except ReclaimError as e:
            return Observation("error", detail=f"{type(e).__name__}: {e}")

    def _uffd(self, name: str) -> Userfaultfd:
        if name not in self.uffds:
            raise KeyError(name)
        return self.uffds[name]

    def _step(self, s: Step, p: Process) -> Observation:
        match s:
            case Mmap():
                a = p.mmap(s.pages * PAGE, kind=s.kind, shared=s.shared)
                self.mappings[s.name] = (a, s.pages)
                return OK
            case Munmap():
                p.munmap(*self.span(s.name, s.first, s.npages))
                return OK
            case Madvise():
                start, length = self.span(s.name, s.first, s.npages)
                p.madvise(start, length, s.advice)
                return OK
            case Fork():
                self.procs["child"] = p.fork()
                self.forked = True
                return OK
            case Uffd():
                u = p.userfaultfd(feature_bits(s.features))
                self.uffds[s.uffd] = u
                self.uffd_names[u.id] = s.uffd
                return OK
            case Register():
                start, length = self.span(s.name, s.first, s.npages)
                self._uffd(s.uffd).register(
                    start + s.byte_offset, length, missing=s.missing, wp=s.wp, minor=s.minor
                )
                return OK
            case Unregister():
                self._uffd(s.uffd).unregister(*self.span(s.name, s.first, s.npages))
                return OK
            case Read():
                r = p.read(self.addr(s.name, s.page, s.byte_offset), tid=s.thread)
                self.last_write[(s.proc, s.thread)] = False
                return self.access(p, s.proc, r, write=False)
            case Write():
                r = p.write(self.addr(s.name, s.page), s.value, tid=s.thread)
                self.last_write[(s.proc, s.thread)] = True
                return self.access(p, s.proc, r, write=True)
            case Wait():
                return self.wait(p, s.proc, s.thread)
            case Copy():
                u = self._uffd(s.uffd)
                u.copy(self.addr(s.name, s.page), s.value, s.npages * PAGE, dontwake=s.dontwake)
                return OK
            case Zeropage():
                u = self._uffd(s.uffd)
                u.zeropage(self.addr(s.name, s.page), s.npages * PAGE, dontwake=s.dontwake)
                return OK
            case Wake():
                self._uffd(s.uffd).wake(self.addr(s.name, s.page), s.npages * PAGE)
                return OK
            case Continue():
                u = self._uffd(s.uffd)
                u.continue_(self.addr(s.name, s.page), s.npages * PAGE, dontwake=s.dontwake)
                return OK
            case WriteProtect():
                u = self._uffd(s.uffd)
                u.writeprotect(
                    self.addr(s.name, s.page), s.npages * PAGE, wp=s.wp, dontwake=s.dontwake
                )
                return OK
            case ReadEvents():
                evs = self._uffd(s.uffd).read_events()
                return Observation("events", msgs=tuple(self.msg(e, s.proc) for e in evs))
            case PageState():
                return Observation("state", detail=p.page_state(self.addr(s.name, s.page)))
            case SwapUsage():
                free = self.k.vmstat()["nr_swap_pages"]
                return Observation("state", detail=f"swap {self.swap_free - free}")
            case Close():
                self._uffd(s.uffd).close()
                return OK
            case Touch():
                return self.touch(p, s)
            case SwapEntry():
                pte = p.pte(self.addr(s.name, s.page))
                if pte.swap():
                    return Observation(
                        "state", detail=f"swap type {pte.swp_type()} offset {pte.swp_offset()}"
                    )
                return Observation("state", detail=p.page_state(self.addr(s.name, s.page)))
        return Observation("error", detail=f"unknown step {type(s).__name__}")

    def touch(self, p: Process, s: Touch) -> Observation:
        """An access with the faults it took (the model's pgfault/pgmajfault deltas)."""
        before = self.k.vmstat()
        addr = self.addr(s.name, s.page)
        r = p.write(addr, s.value) if s.write else p.read(addr)
        self.last_write[(s.proc, 0)] = s.write
        obs = self.access(p, s.proc, r, write=s.write)
        if obs.kind not in ("value", "written"):
            return obs
        after = self.k.vmstat()
        maj = after["pgmajfault"] - before["pgmajfault"]
        minor = after["pgfault"] - before["pgfault"] - maj
        return Observation("state", detail=f"{obs.render()} minflt {minor} majflt {maj}")

    def wait(self, p: Process, proc: str, tid: int) -> Observation:
        """The outcome of a thread's last access: parked again, or its result."""
        if p.is_blocked(tid):
            where = ""
            for pid, t, addr, _since in self.k.blocked():
                if pid == p.pid and t == tid:
                    where = locate(addr, self.mappings).render()
            page = where.split("+")[0]
            return Observation("blocked", detail=page)
        last = p.last_access(tid)
        if last is None:
            return Observation("error", detail=f"thread {tid} made no access")
        return self.access(p, proc, last, write=self.last_write.get((proc, tid), False))


def run_model(
    scenario: Scenario, profile: str = "6.12", arch: str = "s390x", swap_io: str = "synchronous"
) -> RunResult:
    """Run ``scenario`` on the model with ``profile`` on ``arch`` (falling back to s390x
    while the model lacks ``arch``; WP/MINOR scenarios are then skipped). A scenario that
    needs ``no_swap`` runs on a model without swap, every other one with 64 MiB of it, on the
    swap device ``swap_io`` (``Kernel.swap_io``: ``"virtio-blk"`` for a guest's disk, with
    the classic lists or MGLRU)."""
    arch_why = scenario.arch_skip(arch)
    if arch_why is not None:
        return RunResult(side="model", skipped=arch_why)
    swap = "0" if "no_swap" in scenario.needs else "64MiB"
    k, used, notes = make_kernel(profile, arch, swap)
    k.swap_io = swap_io
    res = RunResult(side="model", notes=notes)
    why = arch_skip_reason(scenario, arch, used) or release_skip_reason(scenario, profile, used)
    if why is not None:
        res.skipped = why
        return res
    run = _ModelRun(k)
    for s in scenario.steps:
        res.observations.append(run.step(s))
    return res


__all__ = [
    "ARCHES_WITH_WP_MINOR",
    "ARCH_NEEDS",
    "arch_skip_reason",
    "make_kernel",
    "release_skip_reason",
    "run_model",
]
