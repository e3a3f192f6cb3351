"""Run the scenario library on a real Linux 6.12 kernel in a QEMU guest: the second kernel
backend of the cross-check, beside the host runner (:mod:`reclaim.crosscheck.host`).

:func:`agent_input` writes the scenarios as the agent's line format (``python/reclaim/vm/
agent.c`` reads it); one boot (:func:`reclaim.vm.guest.run_guest`) runs them all, each in a
fresh process pair (a monitor and the process under test), with the swap device switched off
and on again before each one (so the first slot a scenario swaps to is slot 1) and off for a
``no_swap`` scenario. :func:`results_of` turns the agent's JSON lines into
:class:`~reclaim.crosscheck.scenario.RunResult` values with the same normalization as the
host runner (addresses as mapping name and page), so :func:`reclaim.crosscheck.compare` and
the table are shared. :func:`crosscheck_vm` runs the model with the guest's arch and profile
6.12 beside it.

The guest runs with ``lru_gen`` disabled (the classic active/inactive LRU the model models),
THP off where the guest has it, 512 MiB of memory, one CPU and 64 MiB of swap on a virtio-blk
disk.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reclaim.crosscheck import Row, make_row
from reclaim.crosscheck.library import BY_NAME, LIBRARY
from reclaim.crosscheck.model import run_model
from reclaim.crosscheck.scenario import (
    OK,
    Close,
    Continue,
    Copy,
    Fork,
    Madvise,
    Mappings,
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
from reclaim.vm.guest import SWAP_IO as GUEST_SWAP_IO
from reclaim.vm.guest import GuestRun, run_guest

#: The arches a guest can be booted for.
VM_ARCHES = ("s390x", "x86_64")

#: pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_SWAP_TYPE_MASK = 0x1F
PM_SWAP_OFFSET_SHIFT = 5
PM_PFN_MASK = (1 << 55) - 1


def _n(npages: int | None) -> int:
    return -1 if npages is None else npages


def step_line(s: Step) -> str:
    """One step in the agent's line format."""
    p = s.proc
    match s:
        case Mmap():
            return f"mmap {p} {s.name} {s.pages} {s.kind} {int(s.shared)}"
        case Munmap():
            return f"munmap {p} {s.name} {s.first} {_n(s.npages)}"
        case Madvise():
            return f"madvise {p} {s.name} {s.first} {s.npages} {s.advice}"
        case Fork():
            return f"fork {p}"
        case Uffd():
            return f"uffd {p} {s.uffd} {feature_bits(s.features):x}"
        case Register():
            mode = (1 if s.missing else 0) | (2 if s.wp else 0) | (4 if s.minor else 0)
            return f"register {s.uffd} {s.name} {s.first} {_n(s.npages)} {mode:x} {s.byte_offset:x}"
        case Unregister():
            return f"unregister {s.uffd} {s.name} {s.first} {_n(s.npages)}"
        case Read():
            return f"read {p} {s.name} {s.page} {s.thread} {s.byte_offset:x}"
        case Write():
            return f"write {p} {s.name} {s.page} {s.thread} {s.value:x}"
        case Touch():
            op = "write" if s.write else "read"
            return f"{op} {p} {s.name} {s.page} 0 {s.value if s.write else 0:x}"
        case Wait():
            return f"wait {p} {s.thread}"
        case Copy():
            return f"copy {s.uffd} {s.name} {s.page} {s.npages} {s.value:x} {int(s.dontwake)}"
        case Zeropage():
            return f"zeropage {s.uffd} {s.name} {s.page} {s.npages} {int(s.dontwake)}"
        case Wake():
            return f"wake {s.uffd} {s.name} {s.page} {s.npages}"
        case Continue():
            return f"continue {s.uffd} {s.name} {s.page} {s.npages} {int(s.dontwake)}"
        case WriteProtect():
            wp, dw = int(s.wp), int(s.dontwake)
            return f"writeprotect {s.uffd} {s.name} {s.page} {s.npages} {wp} {dw}"
        case ReadEvents():
            return f"read_events {s.uffd}"
        case PageState() | SwapEntry():
            return f"page_state {p} {s.name} {s.page}"
        case SwapUsage():
            return f"swap_usage {p} {s.name}"
        case Close():
            return f"close {s.uffd}"
    raise ValueError(f"the VM agent has no step {type(s).__name__}")


def agent_input(scenarios: list[Scenario]) -> str:
    """The agent's input for ``scenarios``: a ``scenario NAME swap|noswap`` line, the steps,
    ``end``."""
    out = ["swapdev /dev/vda"]
    for sc in scenarios:
        out.append(f"scenario {sc.name} {'noswap' if 'no_swap' in sc.needs else 'swap'}")
        out.extend(step_line(s) for s in sc.steps)
        out.append("end")
    return "\n".join(out) + "\n"


def _int(obj: Mapping[str, object], key: str, default: int = 0) -> int:
    v = obj.get(key, default)
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _msg(raw: object, mappings: Mappings) -> Msg:
    d = raw if isinstance(raw, dict) else {}
    return make_msg(
        event=_int(d, "event"),
        uffd=str(d.get("uffd", "?")),
        mappings=mappings,
        flags=_int(d, "flags"),
        address=_int(d, "address"),
        ptid=_int(d, "ptid"),
        end=_int(d, "end"),
        child=str(d.get("child", "")),
    )


def observation(
    step: Step, obj: Mapping[str, object], mappings: dict[str, tuple[int, int]]
) -> Observation:
    """The :class:`Observation` of one agent result line for ``step`` (``mappings`` is
    updated by an mmap)."""
    kind = str(obj.get("kind", "error"))
    if kind == "ok":
        if isinstance(step, Mmap) and "addr" in obj:
            mappings[step.name] = (_int(obj, "addr"), step.pages)
        return OK
    if kind == "errno":
        n = _int(obj, "errno")
        return errno_obs(_errno.errorcode.get(n, f"errno {n}"))
    if kind in ("value", "written"):
        obs = (
            Observation("written")
            if kind == "written"
            else Observation("value", value=_int(obj, "value"))
        )
        if isinstance(step, Touch):
            detail = f"{obs.render()} minflt {_int(obj, 'minflt')} majflt {_int(obj, 'majflt')}"
            return Observation("state", detail=detail)
        return obs
    if kind == "blocked":
        msgs = obj.get("msgs")
        if isinstance(msgs, list) and msgs:
            return Observation("blocked", msgs=tuple(_msg(m, mappings) for m in msgs))
        ref = locate(_int(obj, "address"), mappings)
        return Observation("blocked", detail=f"{ref.name}[{ref.page}]")
    if kind == "events":
        msgs = obj.get("msgs")
        return Observation(
            "events",
            msgs=tuple(_msg(m, mappings) for m in (msgs if isinstance(msgs, list) else [])),
        )
    if kind == "state":
        detail = str(obj.get("detail", ""))
        if isinstance(step, SwapEntry):
            pm = _int(obj, "pagemap")
            if pm & PM_SWAP and not pm & PM_PRESENT:
                entry = pm & PM_PFN_MASK
                typ, off = entry & PM_SWAP_TYPE_MASK, entry >> PM_SWAP_OFFSET_SHIFT
                detail = f"swap type {typ} offset {off}"
        return Observation("state", detail=detail)
    if kind in ("signal", "stuck", "error"):
        return Observation(kind, detail=str(obj.get("detail", "")))
    return Observation(kind)


@dataclass
class VmResults:
    """A guest's run of some scenarios: the kernel side of each (``results`` by name), the
    guest's ``info`` and the :class:`~reclaim.vm.guest.GuestRun` itself (timings, manifest,
    console tail)."""

    results: dict[str, RunResult] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)
    run: GuestRun | None = None


def guest_skip_reason(sc: Scenario, arch: str, info: dict[str, object]) -> str | None:
    """Why ``sc`` is not run in the ``arch`` guest (None if it is)."""
    why = sc.arch_skip(arch)
    if why is not None:
        return why
    feats = _int(info, "uffd_features")
    if "uffd_wp" in sc.needs and not feats & feature_bits(["PAGEFAULT_FLAG_WP"]):
        return f"the {arch} kernel has no uffd-wp (no HAVE_ARCH_USERFAULTFD_WP)"
    if "uffd_minor" in sc.needs and not feats & feature_bits(["MINOR_SHMEM"]):
        return f"the {arch} kernel has no MINOR faults (no HAVE_ARCH_USERFAULTFD_MINOR)"
    return None


def results_of(scenarios: list[Scenario], run: GuestRun) -> dict[str, RunResult]:
    """The kernel :class:`RunResult` of each scenario from a guest's result lines."""
    by_name: dict[str, list[dict[str, object]]] = {}
    ended: set[str] = set()
    for obj in run.results:
        name = str(obj.get("scenario", ""))
        if obj.get("end"):
            ended.add(name)
        elif "i" in obj:
            by_name.setdefault(name, []).append(obj)
    out = {}
    for sc in scenarios:
        res = RunResult(side="kernel")
        if sc.name not in ended:
            res.skipped = "the guest did not finish this scenario" + (
                "" if run.finished else f" (QEMU exit {run.returncode}; see the console log)"
            )
            out[sc.name] = res
            continue
        mappings: dict[str, tuple[int, int]] = {}
        lines = {_int(o, "i"): o for o in by_name.get(sc.name, [])}
        for i, s in enumerate(sc.steps):
            o = lines.get(i)
            if o is None:
                res.observations.append(Observation("error", detail="no result from the agent"))
            else:
                res.observations.append(observation(s, o, mappings))
        out[sc.name] = res
    return out


def run_vm(
    scenarios: list[Scenario],
    arch: str,
    progress: Callable[[int, int], object] | None = None,
    accel: str = "tcg",
) -> VmResults:
    """Boot the ``arch`` guest once and run ``scenarios`` in it (those for another arch are
    not sent). ``progress`` is called with (scenarios done, scenarios sent)."""
    sent = [sc for sc in scenarios if sc.arch_skip(arch) is None]
    done = 0

    def on_result(obj: dict[str, object]) -> None:
        nonlocal done
        if obj.get("end"):
            done += 1
            if progress is not None:
                progress(done, len(sent))

    run = run_guest(arch, agent_input(sent), on_result=on_result, accel=accel)
    out = VmResults(info=dict(run.info), run=run)
    out.results = results_of(sent, run)
    return out


#: Disagreements found with the guests and not fixed yet, by (arch, scenario): why the kernel
#: and the model differ (docs/vm-oracle.md has the table). A row listed here does not fail
#: ``reclaim crosscheck --vm`` nor the test; one that agrees again must leave this table.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def known_difference(arch: str, row: Row) -> str | None:
    """The documented reason of ``row``'s disagreement on ``arch`` (None if it agrees, was
    skipped, or differs for no documented reason)."""
    if row.agree or row.skipped:
        return None
    return KNOWN_DIFFERENCES.get((arch, row.scenario))


def crosscheck_vm(
    arch: str,
    names: list[str] | None = None,
    profile: str = "6.12",
    progress: Callable[[int, int], object] | None = None,
    accel: str = "tcg",
) -> tuple[list[Row], VmResults]:
    """Run the scenarios ``names`` (the whole :data:`LIBRARY` for None) in an ``arch`` guest
    and on the model (``arch``, ``profile``), one :class:`Row` each, and the guest's run."""
    if arch not in VM_ARCHES:
        raise ValueError(f"unknown guest arch {arch!r}; known: {', '.join(VM_ARCHES)}")
    chosen = LIBRARY if names is None else [BY_NAME[n] for n in names]
    vm = run_vm(chosen, arch, progress=progress, accel=accel)
    rows = []
    for sc in chosen:
        why = guest_skip_reason(sc, arch, vm.info)
        if why is not None:
            rows.append(Row(sc.name, "", "", agree=False, skipped=why))
            continue
        m = run_model(sc, profile=profile, arch=arch, swap_io=GUEST_SWAP_IO)
        rows.append(make_row(sc, m, vm.results[sc.name]))
    return rows, vm


__all__ = [
    "KNOWN_DIFFERENCES",
    "VM_ARCHES",
    "VmResults",
    "agent_input",
    "crosscheck_vm",
    "guest_skip_reason",
    "known_difference",
    "observation",
    "results_of",
    "run_vm",
    "step_line",
]
