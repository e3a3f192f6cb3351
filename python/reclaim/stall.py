"""What a hung postcopy migration means for the guest, in words.

A vCPU that faults on a guest page QEMU had already sent waits for a page that is never coming:
only the postcopy cleanup at the very end of the migration (UFFDIO_UNREGISTER of guest RAM)
releases it, or nothing does. :attr:`PostcopyResult.stalls` measures each such wait;
:func:`describe` says it as a sentence, with what a real guest would print for a stall that
long: the guest kernel's watchdogs (:func:`reclaim._reclaim.guest_watchdogs`, their default
thresholds from the kernel source: soft lockup after 2 × ``watchdog_thresh`` = 20 s, RCU CPU
stall warning after ``CONFIG_RCU_CPU_STALL_TIMEOUT`` = 21 s, hung task after 120 s).
"""

from __future__ import annotations

from collections.abc import Mapping

from reclaim._reclaim import guest_watchdogs

__all__ = ["describe", "guest_watchdogs", "watchdog_note"]


def _seconds(ns: int) -> str:
    s = ns / 1e9
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def watchdog_note(waited_ns: int) -> str:
    """What a real guest shows for a vCPU stall of `waited_ns`, by the kernel's default
    watchdog thresholds."""
    dogs = guest_watchdogs()
    fired = [d for d in dogs if waited_ns > int(str(d["threshold_s"])) * 1_000_000_000]
    if not fired:
        first = dogs[0]
        return (
            f"a real guest prints nothing for a stall this short (its first watchdog, "
            f"{first['name']}, waits {first['threshold_s']} s)"
        )
    names = ", ".join(f"{d['name']} (> {d['threshold_s']} s)" for d in fired)
    return f"a real guest would print: {names}"


def describe(stall: Mapping[str, object]) -> str:
    """One sentence for one entry of :attr:`PostcopyResult.stalls`: which vCPU waited how long
    on which page, what released it, and what a real guest would show."""
    waited = int(str(stall["waited_ns"]))
    head = (
        f"vCPU {stall['vcpu']} waited {_seconds(waited)} on guest page "
        f"{int(str(stall['gfn'])):#x}, a page QEMU had already sent and would never send again"
    )
    by = stall["released_by"]
    if by == "postcopy cleanup":
        how = "only the end of the migration released it (postcopy cleanup: UFFDIO_UNREGISTER)"
    elif by == "never":
        how = "nothing released it: it still waited when the run ended"
    else:
        how = "it was woken before the migration ended"
    return f"{head}; {how}; {watchdog_note(waited)}."
