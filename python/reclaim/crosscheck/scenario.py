"""The scenario format of the cross-check: steps, observations, and address normalization.

A :class:`Scenario` is a sequence of :class:`Step` values run on one process (``"parent"``)
and, after a :class:`Fork` step, on its child (``"child"``). Both runners — the model
(:mod:`reclaim.crosscheck.model`) and the real kernel of the machine
(:mod:`reclaim.crosscheck.host`) — execute the same steps and produce one
:class:`Observation` per step; the two lists are then compared.

Addresses never appear in observations: every address is normalized to a *mapping name and a
page index* (``m[2]``, ``m[2]+0x18`` with an offset, ``m[0:2]`` for a range), so a model run
and a kernel run, which place their mappings at different addresses, compare equal when they
behave the same. Userfaultfds are named too: the scenario names each one it creates
(``Uffd(uffd="u")``), and the userfaultfd that ``UFFD_EVENT_FORK`` hands out for the child is
named after its parent's with ``"/fork"`` appended (``"u/fork"``). A scenario forks at most
once.

What each step observes (the canonical text of :meth:`Observation.render`):

- ``Mmap``, ``Munmap``, ``Madvise``, ``Fork``, ``Uffd`` (userfaultfd + UFFDIO_API) and every
  ioctl step (``Register``, ``Unregister``, ``Copy``, ``Zeropage``, ``Wake``, ``Continue``,
  ``WriteProtect``) and ``Close``: ``"ok"`` or the errno name (``"EEXIST"``) — this is the
  *expect_errno* of those steps.
- ``Read``: ``"value 0x.."`` (the u64 content tag in the first 8 bytes of the page);
  ``Write``: ``"written"``; either may instead be ``"blocked: PAGEFAULT u m[0] read"`` (the
  access is parked on a userfault; the message is the PAGEFAULT read from the userfaultfd),
  ``"SIGBUS"`` (the process died of the signal — later steps on it observe ``"dead"``) or
  ``"thread-blocked"`` (the thread is still parked from an earlier access).
- ``Wait``: the outcome of the thread's parked access once it ran again (``"value .."``,
  ``"written"``), or ``"blocked m[0]"`` if it is (again) parked.
- ``ReadEvents``: the messages read from the userfaultfd, in order, as a list
  (``"[REMOVE u m[0:1]]"``).
- ``PageState``: ``"present"``, ``"swapped"`` or ``"none"`` (``/proc/pid/pagemap`` bits 63 and
  62).
- ``SwapUsage``: ``"swap <n>"``, the pages of the mapping out on swap (see :class:`SwapUsage`).

Every step can carry ``expect``: the observation the real kernel is expected to give (several
alternatives separated by ``" | "``). It documents the scenario and is checked against the
kernel run by :func:`check_expectations`; the model/kernel comparison does not use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reclaim._reclaim import UFFD_FEATURES, uffd_feature_bits

#: The page size both sides use.
PAGE = 4096

#: The names of the processes a step can target.
PROCS = ("parent", "child")

#: ``UFFD_FEATURE_*`` by name (include/uapi/linux/userfaultfd.h): the engine's table. A
#: scenario may also name a raw bit as ``"BIT<n>"``.
FEATURES: dict[str, int] = dict(UFFD_FEATURES)

#: ``UFFD_EVENT_*`` codes by name.
EVENTS: dict[int, str] = {
    0x12: "PAGEFAULT",
    0x13: "FORK",
    0x14: "REMAP",
    0x15: "REMOVE",
    0x16: "UNMAP",
}

#: ``UFFD_PAGEFAULT_FLAG_*``.
PAGEFAULT_FLAG_WRITE = 1 << 0
PAGEFAULT_FLAG_WP = 1 << 1
PAGEFAULT_FLAG_MINOR = 1 << 2

#: The advice a :class:`Madvise` step may give.
ADVICE = ("dontneed", "free", "pageout", "remove", "cold", "willneed")

#: What a scenario may need beyond userfaultfd itself; a runner that lacks it skips.
#: ``"swap"``: an active swap device; ``"no_swap"``: none (what reclaim does when it cannot
#: swap: the host skips while swap is on, the model runs with no swap).
#: ``"uffd_sigbus"`` / ``"uffd_thread_id"``: UFFD_FEATURE_SIGBUS / THREAD_ID, which v4.14 added
#: (a 4.13 kernel refuses them at UFFDIO_API with EINVAL).
NEEDS = ("uffd_wp", "uffd_minor", "uffd_sigbus", "uffd_thread_id", "swap", "no_swap")

#: The needs that are a userfaultfd feature the kernel (or the model's profile) must offer at
#: UFFDIO_API, with that feature's name (:func:`feature_bits`).
FEATURE_NEEDS = {
    "uffd_wp": "PAGEFAULT_FLAG_WP",
    "uffd_minor": "MINOR_SHMEM",
    "uffd_sigbus": "SIGBUS",
    "uffd_thread_id": "THREAD_ID",
}


def feature_bits(names: Sequence[str]) -> int:
    """The ``UFFD_FEATURE_*`` mask of feature names (``"EVENT_FORK"``, ``"BIT63"``): the
    engine's parser. An unknown name raises ArgumentError (a ValueError); a raw bit no kernel
    offers is accepted here and refused by UFFDIO_API with EINVAL, as the kernel does."""
    return uffd_feature_bits(list(names))


# --------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class Step:
    """One step of a scenario. ``proc`` is the process it runs on (``"parent"`` or, after a
    :class:`Fork`, ``"child"``); ``expect`` the observation the real kernel should give.

    Fields the steps share: ``name`` is the mapping a step works on (named by its
    :class:`Mmap`), ``page`` / ``first`` and ``npages`` pages of it counted from 0; ``uffd``
    the userfaultfd it uses (named by its :class:`Uffd`, ``"u"`` by default); ``dontwake``
    sets the ioctl's ``*_MODE_DONTWAKE`` (the threads parked on the range are not woken)."""

    proc: str = field(default="parent", kw_only=True)
    expect: str | None = field(default=None, kw_only=True)

    def describe(self) -> str:
        """A short human description (``"read m[0] t1"``)."""
        return type(self).__name__.lower()

    def label(self) -> str:
        """:meth:`describe` with the process named when it is not the parent."""
        d = self.describe()
        return d if self.proc == "parent" else f"{self.proc}: {d}"


def _pages(name: str, first: int, npages: int | None) -> str:
    return f"{name}[{first}:]" if npages is None else f"{name}[{first}:{first + npages}]"


@dataclass(frozen=True)
class Mmap(Step):
    """``mmap`` of ``pages`` pages named ``name``: ``kind="anon"`` (MAP_ANONYMOUS) or
    ``"shmem"`` (a memfd), ``shared`` for MAP_SHARED (else MAP_PRIVATE); PROT_READ|WRITE."""

    name: str
    pages: int
    kind: str = "anon"
    shared: bool = False

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        how = f"{self.kind}{' shared' if self.shared else ''}"
        return f"mmap {self.name} {self.pages}p {how}"


@dataclass(frozen=True)
class Munmap(Step):
    """``munmap`` of pages ``[first, first+npages)`` of a mapping (all of it for None)."""

    name: str
    first: int = 0
    npages: int | None = None

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"munmap {_pages(self.name, self.first, self.npages)}"


@dataclass(frozen=True)
class Madvise(Step):
    """``madvise(advice)`` of pages ``[first, first+npages)`` (see :data:`ADVICE`)."""

    name: str
    first: int
    npages: int
    advice: str

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"madvise {_pages(self.name, self.first, self.npages)} {self.advice}"


@dataclass(frozen=True)
class Fork(Step):
    """``fork()`` of the parent; later steps with ``proc="child"`` run in the child."""

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return "fork"


@dataclass(frozen=True)
class Uffd(Step):
    """``userfaultfd(2)`` in ``proc`` then UFFDIO_API with ``features``; named ``uffd``."""

    uffd: str = "u"
    features: tuple[str, ...] = ()

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"uffd {self.uffd} [{','.join(self.features)}]"


@dataclass(frozen=True)
class Register(Step):
    """UFFDIO_REGISTER of pages ``[first, first+npages)`` (to the end for None) with the
    modes ``missing``, ``wp`` and ``minor`` (UFFDIO_REGISTER_MODE_MISSING, _WP, _MINOR);
    ``byte_offset`` is added to the start (an unaligned start for error cases)."""

    name: str
    first: int = 0
    npages: int | None = None
    missing: bool = True
    wp: bool = False
    minor: bool = False
    uffd: str = "u"
    byte_offset: int = 0

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        modes = [m for m, on in (("missing", self.missing), ("wp", self.wp)) if on]
        if self.minor:
            modes.append("minor")
        off = f"+{self.byte_offset:#x}" if self.byte_offset else ""
        where = _pages(self.name, self.first, self.npages)
        return f"register {self.uffd} {where}{off} {'|'.join(modes)}"


@dataclass(frozen=True)
class Unregister(Step):
    """UFFDIO_UNREGISTER of pages ``[first, first+npages)`` (to the end for None)."""

    name: str
    first: int = 0
    npages: int | None = None
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"unregister {self.uffd} {_pages(self.name, self.first, self.npages)}"


@dataclass(frozen=True)
class Read(Step):
    """A load of 8 bytes at page ``page`` (+ ``byte_offset``) by thread ``thread``."""

    name: str
    page: int
    thread: int = 0
    byte_offset: int = 0

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        off = f"+{self.byte_offset:#x}" if self.byte_offset else ""
        return f"read {self.name}[{self.page}]{off} t{self.thread}"


@dataclass(frozen=True)
class Write(Step):
    """A store of the u64 ``value`` to the first 8 bytes of page ``page`` by ``thread``."""

    name: str
    page: int
    value: int
    thread: int = 0

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"write {self.name}[{self.page}]={self.value:#x} t{self.thread}"


@dataclass(frozen=True)
class Wait(Step):
    """The outcome of thread ``thread``'s last access, once it ran again after a wake."""

    thread: int = 0

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"wait t{self.thread}"


@dataclass(frozen=True)
class Copy(Step):
    """UFFDIO_COPY of ``npages`` pages whose content tag is ``value`` at page ``page``."""

    name: str
    page: int
    value: int
    npages: int = 1
    dontwake: bool = False
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        dw = " dontwake" if self.dontwake else ""
        where = _pages(self.name, self.page, self.npages)
        return f"copy {self.uffd} {where}={self.value:#x}{dw}"


@dataclass(frozen=True)
class Zeropage(Step):
    """UFFDIO_ZEROPAGE of ``npages`` pages at page ``page``."""

    name: str
    page: int
    npages: int = 1
    dontwake: bool = False
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        dw = " dontwake" if self.dontwake else ""
        return f"zeropage {self.uffd} {_pages(self.name, self.page, self.npages)}{dw}"


@dataclass(frozen=True)
class Wake(Step):
    """UFFDIO_WAKE of ``npages`` pages at page ``page``."""

    name: str
    page: int
    npages: int = 1
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"wake {self.uffd} {_pages(self.name, self.page, self.npages)}"


@dataclass(frozen=True)
class Continue(Step):
    """UFFDIO_CONTINUE of ``npages`` pages at page ``page`` (MINOR ranges)."""

    name: str
    page: int
    npages: int = 1
    dontwake: bool = False
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"continue {self.uffd} {_pages(self.name, self.page, self.npages)}"


@dataclass(frozen=True)
class WriteProtect(Step):
    """UFFDIO_WRITEPROTECT of ``npages`` pages at ``page``: set (``wp``) or clear it."""

    name: str
    page: int
    npages: int = 1
    wp: bool = True
    dontwake: bool = False
    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        where = _pages(self.name, self.page, self.npages)
        return f"writeprotect {self.uffd} {where} wp={int(self.wp)}"


@dataclass(frozen=True)
class ReadEvents(Step):
    """read(2) of every pending message of the userfaultfd ``uffd``."""

    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"read_events {self.uffd}"


@dataclass(frozen=True)
class PageState(Step):
    """The pagemap state of page ``page``: present, swapped or none."""

    name: str
    page: int

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"page_state {self.name}[{self.page}]"


@dataclass(frozen=True)
class SwapUsage(Step):
    """How many pages of mapping ``name`` are out on swap: ``"swap <n>"``. This is what
    tells a shmem page written to swap from one merely unmapped, since pagemap says ``none``
    for both (shmem keeps its swap entry in the page cache, not in the PTE). The kernel side
    reads the ``Swap:`` line of the mapping in ``/proc/pid/smaps`` (swap PTEs, and
    ``shmem_swap_usage`` for a shared shmem mapping); the model side counts the swap slots in
    use — its only process is the scenario's, so the two agree as long as a scenario observes
    one mapping and before anything is swapped back in (the model may keep the slot of a
    swapped-in page in the swap cache; smaps no longer counts it)."""

    name: str

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"swap_usage {self.name}"


@dataclass(frozen=True)
class Touch(Step):
    """An access (a read, or with ``write`` a store of ``value``) of page ``page`` that also
    observes the faults it took: ``"value 0x5 minflt 1 majflt 0"`` / ``"written minflt 1
    majflt 0"``. The kernel side counts them with getrusage(RUSAGE_THREAD) around the one
    load or store (``mm_account_fault``: a major fault is one that did I/O, a swap-in); the
    model side with its ``pgfault``/``pgmajfault`` counters. On s390x, which has no
    hardware referenced bit, an old PTE is an invalid one (the young emulation), so a touch
    after MADV_COLD or reclaim's aging takes a minor fault that x86_64 does not."""

    name: str
    page: int
    write: bool = False
    value: int = 0

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        what = f"={self.value:#x}" if self.write else ""
        return f"touch {self.name}[{self.page}]{what}"


@dataclass(frozen=True)
class SwapEntry(Step):
    """The swap entry of page ``page`` as pagemap shows it (bits 0-4 type, 5-54 offset):
    ``"swap type 0 offset 1"``, or ``"present"`` / ``"none"``. The kernel allocates slots
    from a fresh swap device (swapon before every scenario), the model from a fresh
    swap area, so the offsets compare."""

    name: str
    page: int

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"swap_entry {self.name}[{self.page}]"


@dataclass(frozen=True)
class Close(Step):
    """close(2) of the userfaultfd ``uffd`` (wakes every thread parked on it)."""

    uffd: str = "u"

    def describe(self) -> str:
        """See :meth:`Step.describe`."""
        return f"close {self.uffd}"


#: Steps that wake threads parked on the userfaultfd they name.
WAKING = (Copy, Zeropage, Wake, Continue, WriteProtect, Unregister, Close)


@dataclass(frozen=True)
class Scenario:
    """A sequence of steps under a ``name``; ``needs`` lists what it needs beyond userfaultfd
    (:data:`NEEDS`), ``doc`` says what it shows, ``arches`` the arches it is for (empty:
    all)."""

    name: str
    doc: str
    steps: tuple[Step, ...]
    needs: frozenset[str] = frozenset()
    #: The arches whose kernels show what the scenario checks (empty: every arch); a runner
    #: of another arch skips it (see :meth:`arch_skip`).
    arches: frozenset[str] = frozenset()

    def arch_skip(self, arch: str) -> str | None:
        """Why the scenario does not run on ``arch`` (None if it does)."""
        if self.arches and arch not in self.arches:
            return f"{'/'.join(sorted(self.arches))} only (this run is {arch})"
        return None

    def __post_init__(self) -> None:
        for n in self.needs:
            if n not in NEEDS:
                raise ValueError(f"{self.name}: unknown need {n!r}; known: {', '.join(NEEDS)}")
        if {"swap", "no_swap"} <= self.needs:
            raise ValueError(f"{self.name}: needs both swap and no_swap")
        forks = 0
        for s in self.steps:
            if s.proc not in PROCS:
                raise ValueError(f"{self.name}: unknown process {s.proc!r}")
            if isinstance(s, Fork):
                forks += 1
                if s.proc != "parent":
                    raise ValueError(f"{self.name}: only the parent forks")
            elif s.proc == "child" and forks == 0:
                raise ValueError(f"{self.name}: a child step before the fork")
            if isinstance(s, Madvise) and s.advice not in ADVICE:
                raise ValueError(f"{self.name}: unknown advice {s.advice!r}")
            if isinstance(s, Uffd):
                feature_bits(s.features)
        if forks > 1:
            raise ValueError(f"{self.name}: a scenario forks at most once")


# --------------------------------------------------------------------------------------------
# Normalization and observations

#: Mappings of a run: name -> (start address, pages). Mappings stay in the table after munmap,
#: so UNMAP ranges still normalize.
Mappings = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class PageRef:
    """An address as a mapping name, page index and byte offset; ``name`` is ``"?"`` for an
    address outside every mapping (then ``page`` is the absolute page number)."""

    name: str
    page: int
    offset: int = 0

    def render(self) -> str:
        """``m[2]`` or ``m[2]+0x18``."""
        off = f"+{self.offset:#x}" if self.offset else ""
        return f"{self.name}[{self.page}]{off}"


def locate(addr: int, mappings: Mappings) -> PageRef:
    """Normalize ``addr`` to the mapping that contains it (the most recent one on overlap)."""
    for name, (start, pages) in reversed(list(mappings.items())):
        if start <= addr < start + pages * PAGE:
            return PageRef(name, (addr - start) // PAGE, (addr - start) % PAGE)
    return PageRef("?", addr // PAGE, addr % PAGE)


def locate_range(start: int, end: int, mappings: Mappings) -> str:
    """Normalize ``[start, end)`` to ``m[a:b]`` relative to the mapping holding ``start``."""
    ref = locate(start, mappings)
    if ref.name == "?":
        return f"?[{start:#x}:{end:#x}]"
    base = mappings[ref.name][0]
    last = (end - base + PAGE - 1) // PAGE
    off = f"+{ref.offset:#x}" if ref.offset else ""
    return f"{ref.name}[{ref.page}:{last}]{off}"


@dataclass(frozen=True)
class Msg:
    """A ``struct uffd_msg`` normalized: the ``event``, the userfaultfd it came from (``uffd``,
    by name) and, by event, ``where``: the page (PAGEFAULT) or the range (REMOVE, UNMAP) as
    ``m[0]`` / ``m[0:2]``, or ``child``: the child's userfaultfd (FORK). ``write``, ``wp`` and
    ``minor`` are a PAGEFAULT's UFFD_PAGEFAULT_FLAG_WRITE, _WP and _MINOR. ``ptid`` is only
    whether a thread id was reported (ids differ between model and kernel)."""

    event: str
    uffd: str
    where: str = ""
    write: bool = False
    wp: bool = False
    minor: bool = False
    ptid: bool = False
    child: str = ""

    def render(self) -> str:
        """``PAGEFAULT u m[0] write`` / ``REMOVE u m[0:1]`` / ``FORK u -> u/fork``."""
        if self.event == "PAGEFAULT":
            flags = [n for n, on in (("write", self.write), ("wp", self.wp)) if on]
            if self.minor:
                flags.append("minor")
            if not flags:
                flags.append("read")
            if self.ptid:
                flags.append("ptid")
            return " ".join([self.event, self.uffd, self.where, *flags])
        if self.event == "FORK":
            return f"FORK {self.uffd} -> {self.child}"
        return f"{self.event} {self.uffd} {self.where}".rstrip()


def make_msg(
    *,
    event: int,
    uffd: str,
    mappings: Mappings,
    flags: int = 0,
    address: int = 0,
    ptid: int = 0,
    end: int = 0,
    child: str = "",
) -> Msg:
    """Normalize a raw uffd message (the fields of ``struct uffd_msg``) of either side."""
    name = EVENTS.get(event, f"UNKNOWN({event:#x})")
    if name == "PAGEFAULT":
        return Msg(
            event=name,
            uffd=uffd,
            where=locate(address, mappings).render(),
            write=bool(flags & PAGEFAULT_FLAG_WRITE),
            wp=bool(flags & PAGEFAULT_FLAG_WP),
            minor=bool(flags & PAGEFAULT_FLAG_MINOR),
            ptid=ptid != 0,
        )
    if name == "FORK":
        return Msg(event=name, uffd=uffd, child=child)
    if name in ("REMOVE", "UNMAP", "REMAP"):
        return Msg(event=name, uffd=uffd, where=locate_range(address, end, mappings))
    return Msg(event=name, uffd=uffd)


@dataclass(frozen=True)
class Observation:
    """What one step observed. ``kind`` is one of ``ok``, ``errno`` (``detail`` is the errno
    name), ``value`` (``value``), ``written``, ``blocked`` (``msgs`` holds the PAGEFAULT of an
    access, ``detail`` the page of a :class:`Wait`), ``signal`` (``detail``), ``state``
    (``detail``), ``events`` (``msgs``), ``thread-blocked``, ``stuck``, ``dead`` or ``error``
    (a runner problem, ``detail`` says which)."""

    kind: str
    detail: str = ""
    value: int | None = None
    msgs: tuple[Msg, ...] = ()

    def render(self) -> str:
        """The canonical text (see the module documentation); equal texts mean agreement."""
        k = self.kind
        if k == "value":
            return f"value {self.value or 0:#x}"
        if k in ("errno", "signal", "state"):
            return self.detail
        if k == "blocked":
            if self.msgs:
                return "blocked: " + "; ".join(m.render() for m in self.msgs)
            return f"blocked {self.detail}".rstrip()
        if k == "events":
            return "[" + ", ".join(m.render() for m in self.msgs) + "]"
        if k in ("error", "stuck") and self.detail:
            return f"{k}: {self.detail}"
        return k


OK = Observation("ok")


def errno_obs(name: str) -> Observation:
    """The observation of a failed system call or ioctl."""
    return Observation("errno", detail=name)


@dataclass
class RunResult:
    """The observations of one run of a scenario on one side (``"model"`` or ``"kernel"``);
    ``skipped`` says why it did not run, ``notes`` what the runner had to adapt."""

    side: str
    observations: list[Observation] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self, scenario: Scenario | None = None, width: int = 0) -> str:
        """The observations on one line (only the observing steps when the scenario is
        given), cut to ``width`` characters if positive."""
        if self.skipped is not None:
            text = f"skipped: {self.skipped}"
        else:
            parts = []
            for i, o in enumerate(self.observations):
                step = scenario.steps[i] if scenario and i < len(scenario.steps) else None
                if step is not None and o.kind == "ok" and not isinstance(step, Read | Write):
                    continue
                parts.append(o.render())
            text = "; ".join(parts)
        if width > 0 and len(text) > width:
            return text[: width - 1] + "…"
        return text


def expectation_matches(expect: str, observed: str) -> bool:
    """Whether ``observed`` is one of the ``" | "``-separated alternatives of ``expect``."""
    return observed in [a.strip() for a in expect.split(" | ")]


def check_expectations(scenario: Scenario, result: RunResult) -> list[str]:
    """The steps whose observation differs from their ``expect`` (empty if skipped)."""
    if result.skipped is not None:
        return []
    out = []
    for i, step in enumerate(scenario.steps):
        if step.expect is None:
            continue
        if i >= len(result.observations):
            out.append(f"step {i} ({step.label()}): no observation, expected {step.expect!r}")
            continue
        got = result.observations[i].render()
        if not expectation_matches(step.expect, got):
            out.append(
                f"step {i} ({step.label()}): {result.side} observed {got!r}, "
                f"expected {step.expect!r}"
            )
    return out


__all__ = [
    "ADVICE",
    "EVENTS",
    "FEATURES",
    "FEATURE_NEEDS",
    "NEEDS",
    "OK",
    "PAGE",
    "PROCS",
    "WAKING",
    "Close",
    "Continue",
    "Copy",
    "Fork",
    "Madvise",
    "Mappings",
    "Mmap",
    "Msg",
    "Munmap",
    "Observation",
    "PageRef",
    "PageState",
    "Read",
    "ReadEvents",
    "Register",
    "RunResult",
    "Scenario",
    "Step",
    "SwapEntry",
    "SwapUsage",
    "Touch",
    "Uffd",
    "Unregister",
    "Wait",
    "Wake",
    "Write",
    "WriteProtect",
    "Zeropage",
    "check_expectations",
    "errno_obs",
    "expectation_matches",
    "feature_bits",
    "locate",
    "locate_range",
    "make_msg",
]
