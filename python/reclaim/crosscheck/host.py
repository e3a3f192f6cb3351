"""Run a scenario on the real kernel of this machine (x86_64 Linux, as root).

The modules: :mod:`~reclaim.crosscheck.uapi` (the kernel ABI), :mod:`~reclaim.crosscheck.libc`
(libc through ctypes), :mod:`~reclaim.crosscheck.agent` (the process under test),
:mod:`~reclaim.crosscheck.monitor` (its connection and the uffd_msg reader),
:mod:`~reclaim.crosscheck.runner` (the steps); this one probes the host and runs a scenario.

The process under test is an *agent*: a separate Python process (``python -c`` running
:func:`_agent_main`) that maps memory, accesses it, calls madvise/munmap/fork and creates the
userfaultfds, all through ``ctypes`` (libc ``mmap``/``munmap``/``madvise``/``memcpy`` and the
``userfaultfd`` system call, x86_64 number 323, or ``/dev/userfaultfd`` +
``USERFAULTFD_IOC_NEW``). It passes every userfaultfd to this process, the *monitor*, over a
Unix socket (``SCM_RIGHTS``) and closes its own copy, so the monitor owns them as a
non-cooperative manager does: it issues the ioctls (UFFDIO_API, REGISTER, UNREGISTER, COPY,
ZEROPAGE, WAKE, CONTINUE, WRITEPROTECT) and reads the ``struct uffd_msg`` messages.

Why two processes: the kernel blocks a process that causes a non-cooperative event (REMOVE,
UNMAP, FORK) until the event is read, and a thread that faults in a registered range until the
fault is resolved. In one Python process the blocked ``fork()`` would hold the GIL the reader
needs; across two processes nothing can deadlock. A SIGBUS (UFFD_FEATURE_SIGBUS) kills the
agent and is observed from its exit status.

Every access runs in a fresh thread of the agent (``memcpy`` of 8 bytes through ctypes, which
releases the GIL). A reader thread of the monitor polls every userfaultfd and buffers each
message as it arrives (it must: the events block the agent until read). An access whose thread
has not finished when a PAGEFAULT for its page has been read is observed as blocked with that
message; a later COPY/ZEROPAGE/WAKE/CONTINUE/WRITEPROTECT/UNREGISTER/close lets it finish, and a
``Wait`` step observes the outcome: the completion, or that the thread sleeps in
``handle_userfault`` again (``/proc/<pid>/task/<tid>/wchan``; where that is unavailable, that it
has not finished within ~200 ms). Page states come from ``/proc/<pid>/pagemap`` (bit 63
present, bit 62 swapped).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from reclaim.crosscheck.libc import errno_name, libc, new_userfaultfd
from reclaim.crosscheck.runner import _HostRun
from reclaim.crosscheck.scenario import (
    FEATURE_NEEDS,
    RunResult,
    Scenario,
    SwapEntry,
    Touch,
    feature_bits,
)
from reclaim.crosscheck.uapi import (
    NR_USERFAULTFD_X86_64,
    UFFD_API,
    UFFD_MSG_SIZE,
    UFFDIO_API,
    UFFDIO_CONTINUE,
    UFFDIO_COPY,
    UFFDIO_REGISTER,
    UFFDIO_UNREGISTER,
    UFFDIO_WAKE,
    UFFDIO_WRITEPROTECT,
    UFFDIO_ZEROPAGE,
    USERFAULTFD_IOC_NEW,
    UffdioApi,
    UffdioContinue,
    UffdioCopy,
    UffdioRange,
    UffdioRegister,
    UffdioWriteprotect,
    UffdioZeropage,
    parse_msg,
)

# What the host can do


@dataclass(frozen=True)
class HostInfo:
    """What this machine offers: ``reason`` is why nothing can run here (None if it can);
    ``features`` the UFFD_FEATURE_* mask UFFDIO_API offers."""

    reason: str | None
    features: int = 0


_info: HostInfo | None = None


def host_info() -> HostInfo:
    """Probe the host once: arch, privilege, a userfaultfd and the features it offers."""
    global _info
    if _info is not None:
        return _info
    _info = _probe()
    return _info


def _probe() -> HostInfo:
    if sys.platform != "linux":
        return HostInfo(f"the host is {sys.platform}, not Linux")
    machine = platform.machine()
    if machine != "x86_64":
        return HostInfo(f"the host runner knows x86_64 only (this host is {machine})")
    try:
        fd = new_userfaultfd()
    except OSError as e:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()} (not root)"
        return HostInfo(f"no userfaultfd for {who}: {errno_name(e)} ({e.strerror})")
    try:
        api = UffdioApi(UFFD_API, 0, 0)
        libc().ioctl(fd, UFFDIO_API, api)
        return HostInfo(None, int(api.features))
    except OSError as e:
        return HostInfo(f"UFFDIO_API failed: {errno_name(e)}")
    finally:
        os.close(fd)


def swap_devices() -> list[str]:
    """The active swap devices (/proc/swaps)."""
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return []
    return [ln.split()[0] for ln in lines if ln.strip()]


def host_skip_reason(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot run on this host (None if it can)."""
    info = host_info()
    if info.reason is not None:
        return info.reason
    arch_why = scenario.arch_skip(platform.machine())
    if arch_why is not None:
        return arch_why
    if any(isinstance(s, Touch | SwapEntry) for s in scenario.steps):
        return "the host runner has no touch/swap_entry steps (reclaim crosscheck --vm has)"
    if "swap" in scenario.needs and not swap_devices():
        return "no swap device (swapon --show / /proc/swaps lists none)"
    if "no_swap" in scenario.needs and swap_devices():
        devs = ", ".join(swap_devices())
        return f"needs a machine without swap; swap is on ({devs}; swapoff to run it)"
    if "uffd_wp" in scenario.needs and not info.features & feature_bits(["PAGEFAULT_FLAG_WP"]):
        return "the host kernel does not offer uffd-wp (UFFD_FEATURE_PAGEFAULT_FLAG_WP)"
    if "uffd_minor" in scenario.needs and not info.features & feature_bits(["MINOR_SHMEM"]):
        return "the host kernel does not offer MINOR faults on shmem (UFFD_FEATURE_MINOR_SHMEM)"
    for need in ("uffd_sigbus", "uffd_thread_id"):
        feature = FEATURE_NEEDS[need]
        if need in scenario.needs and not info.features & feature_bits([feature]):
            return f"the host kernel does not offer UFFD_FEATURE_{feature} (v4.14+)"
    return None


def run_host(scenario: Scenario) -> RunResult:
    """Run ``scenario`` on the kernel of this machine (skipped with the reason where the host
    lacks what it needs)."""
    res = RunResult(side="kernel")
    why = host_skip_reason(scenario)
    if why is not None:
        res.skipped = why
        return res
    run = _HostRun()
    try:
        run.start()
        for s in scenario.steps:
            res.observations.append(run.step(s))
    finally:
        run.stop()
        res.notes.extend(run.notes)
    return res


__all__ = [
    "NR_USERFAULTFD_X86_64",
    "UFFDIO_API",
    "UFFDIO_CONTINUE",
    "UFFDIO_COPY",
    "UFFDIO_REGISTER",
    "UFFDIO_UNREGISTER",
    "UFFDIO_WAKE",
    "UFFDIO_WRITEPROTECT",
    "UFFDIO_ZEROPAGE",
    "UFFD_MSG_SIZE",
    "USERFAULTFD_IOC_NEW",
    "HostInfo",
    "UffdioApi",
    "UffdioContinue",
    "UffdioCopy",
    "UffdioRange",
    "UffdioRegister",
    "UffdioWriteprotect",
    "UffdioZeropage",
    "host_info",
    "host_skip_reason",
    "new_userfaultfd",
    "parse_msg",
    "run_host",
    "swap_devices",
]
