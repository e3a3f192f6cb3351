"""reclaim: an executable model of Linux memory reclaim on s390.

Kernel and virtualization engineers use it to check changes to reclaim, userfaultfd and live
migration against invariants before they boot a machine; researchers use it for workload
studies. Start with :class:`Kernel`::

    import reclaim
    k = reclaim.Kernel(profile="4.17", memory="64MiB", swap="64MiB")
    qemu = k.spawn("qemu", kvm=True)
    ram = qemu.mmap("1MiB")
    qemu.write(ram, 0xfeed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# `reclaim.studies.postcopy(...)` after `import reclaim` alone: it imports only the engine,
# reclaim.units and reclaim.exceptions (well under a millisecond), and nothing of this module.
from reclaim import events, s390, studies
from reclaim._reclaim import OUTCOMES as _OUTCOMES
from reclaim._reclaim import PROFILE_NAMES as _PROFILE_NAMES
from reclaim._reclaim import SWITCHES as _SWITCHES
from reclaim._reclaim import VARIANTS as _VARIANTS
from reclaim._reclaim import (
    AccessResult,
    BatchResult,
    Event,
    ExploreState,
    Kernel,
    Process,
    Profile,
    ReplayResult,
    Scenario,
    UffdEvent,
    UffdFork,
    UffdPagefault,
    UffdRemap,
    UffdRemove,
    UffdUnmap,
    Userfaultfd,
    __version__,
)
from reclaim.exceptions import (
    ArgumentError,
    FileError,
    FormatError,
    InternalError,
    InvariantError,
    ProfileError,
    ReclaimError,
    SyscallArgumentError,
    SyscallError,
    ThreadBlockedError,
)
from reclaim.explorer import ExploreResult, Finding, explore
from reclaim.flags import UffdFeature, UffdIoctl, UffdPagefaultFlag
from reclaim.trace import replay

if TYPE_CHECKING:
    from reclaim.sweeper import sweep


def __getattr__(name: str) -> object:
    # reclaim.sweep is imported on first use: `python -m reclaim.sweeper` must find the module
    # not yet imported, and `import reclaim` stays light
    if name == "sweep":
        from reclaim.sweeper import sweep

        return sweep
    raise AttributeError(f"module 'reclaim' has no attribute {name!r}")


#: The outcome of each access of a batch, by code (``BatchResult.outcomes``): the page was
#: resident ("hit"), brought in by a minor or a major fault, or the access parked the thread
#: on a userfault, raised a signal or found no memory.
OUTCOMES: tuple[str, ...] = tuple(_OUTCOMES)

#: The built-in profiles by name, on s390x.
PROFILES: dict[str, Profile] = {name: Profile(name) for name in _PROFILE_NAMES}

#: Every profile switch: name, kind, values and the commit behind it (``reclaim profiles``;
#: ``Profile.derive`` changes them).
SWITCHES: tuple[dict[str, object], ...] = tuple(_SWITCHES)

#: The distribution-like variants by name (``"6.12-debian"``: 6.12 with MGLRU on, as Debian,
#: Fedora and Arch build it): base, switches and what each stands for. ``Profile(name)`` and
#: every API taking a profile name accept them.
VARIANTS: dict[str, dict[str, object]] = {str(v["name"]): v for v in _VARIANTS}

__all__ = [
    "OUTCOMES",
    "PROFILES",
    "SWITCHES",
    "VARIANTS",
    "AccessResult",
    "ArgumentError",
    "BatchResult",
    "Event",
    "ExploreResult",
    "ExploreState",
    "FileError",
    "Finding",
    "FormatError",
    "InternalError",
    "InvariantError",
    "Kernel",
    "Process",
    "Profile",
    "ProfileError",
    "ReclaimError",
    "ReplayResult",
    "Scenario",
    "SyscallArgumentError",
    "SyscallError",
    "ThreadBlockedError",
    "UffdEvent",
    "UffdFeature",
    "UffdFork",
    "UffdIoctl",
    "UffdPagefault",
    "UffdPagefaultFlag",
    "UffdRemap",
    "UffdRemove",
    "UffdUnmap",
    "Userfaultfd",
    "__version__",
    "events",
    "explore",
    "replay",
    "s390",
    "studies",
    "sweep",
]
