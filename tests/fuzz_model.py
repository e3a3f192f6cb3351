"""The API fuzzer's model and vocabulary (see :mod:`fuzz_api`): constants, the call counters
:data:`STATS`, argument strategies, the model of processes, regions, page cells, userfaultfds
and parked accesses, and the digests the determinism replay compares."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reclaim
from hypothesis import strategies as st

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
    "kib": 10,
    "m": 20,
    "mib": 20,
    "g": 30,
    "gib": 30,
    "t": 40,
    "tib": 40,
    "p": 50,
    "pib": 50,
}
# KB, MB, GB, TB, PB are decimal (rust/units.rs parse_size) and refused for sizes: not listed


def size_value(v: Any) -> int | None:
    """The bytes a size argument means to the engine (``size_arg``), or None if it refuses it."""
    if isinstance(v, int):
        return v if 0 <= v < U64 else None
    if not isinstance(v, str):
        return None
    t = v.strip()
    i = 0
    while i < len(t) and t[i] in "0123456789.":
        i += 1
    number, unit = t[:i], t[i:].strip().lower()
    num, _, frac = number.partition(".")
    if not num or "." in frac or (number.endswith(".") and not frac) or unit not in SIZE_UNITS:
        return None
    n = int(num)
    if n >= U64 or len(frac) > 30:
        return None
    shift = SIZE_UNITS[unit]
    # a decimal fraction of the unit counts when it is whole bytes (rust/units.rs parse_size)
    part, rest = divmod(int(frac or "0") << shift, 10 ** len(frac))
    if rest:
        return None
    b = (n << shift) + part
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
