//! What a hung postcopy migration means for the guest: each vCPU that waited on a page that was
//! never coming, how long it waited, what released it, and which of the guest kernel's own
//! watchdogs a stall that long sets off.
//!
//! QEMU's destination never sends a page again once its received bit is set (3.0: the source
//! drops the request, `get_queued_page` finds the page not dirty; 5.2+: the fault thread does
//! not even ask). A vCPU faulting on such a page stays parked in `handle_userfault` until
//! `postcopy_ram_incoming_cleanup` unregisters guest RAM at the very end of the migration
//! (UFFDIO_UNREGISTER wakes every waiter; the retried access then faults in a fresh zero page),
//! or forever when the migration cannot end without that vCPU.
//!
//! While its host thread is parked the vCPU executes nothing; the guest's clock (the s390 TOD
//! clock, with the guest's epoch) keeps running. The guest's watchdogs, with their defaults:
//! - RCU: another CPU prints an RCU CPU stall warning once a grace period waits more than
//!   `CONFIG_RCU_CPU_STALL_TIMEOUT` seconds for the stalled CPU (default 21, range 3..300,
//!   `kernel/rcu/Kconfig.debug`; s390's `defconfig` sets 60, its `debug_defconfig` 300);
//! - soft lockup: when the vCPU runs again, its watchdog hrtimer finds the watchdog not touched
//!   for more than `get_softlockup_thresh()` = `watchdog_thresh * 2` = 20 s
//!   (`kernel/watchdog.c`, `watchdog_thresh` 10) and reports a soft lockup (the generic
//!   `kvm_check_and_clear_guest_paused()` that would excuse a paused guest returns false);
//! - hung task: a task left in state D behind the stalled vCPU (a lock it holds, an I/O it was
//!   to complete) is reported after `CONFIG_DEFAULT_HUNG_TASK_TIMEOUT` = 120 s
//!   (`lib/Kconfig.debug`, `kernel/hung_task.c`).
//!
//! Defaults as of Linux 6.12 (unchanged since 4.x for the soft lockup and hung task
//! thresholds; the RCU default has been 21 s since 4.x as well).

use crate::sim::log::{Ev, Event};

/// One of the guest kernel's watchdogs that a long vCPU stall sets off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestWatchdog {
    /// What the guest shows, e.g. "RCU CPU stall warning".
    pub name: &'static str,
    /// The knob that sets the threshold (Kconfig option or sysctl).
    pub knob: &'static str,
    /// The default threshold in seconds.
    pub threshold_s: u64,
    /// Where the default is defined in the kernel source.
    pub source: &'static str,
    /// The start of the guest's console message.
    pub message: &'static str,
}

/// The guest watchdogs, in order of their thresholds.
pub const GUEST_WATCHDOGS: [GuestWatchdog; 3] = [
    GuestWatchdog {
        name: "soft lockup",
        knob: "kernel.watchdog_thresh (10) * 2",
        threshold_s: 20,
        source: "kernel/watchdog.c get_softlockup_thresh()",
        message: "watchdog: BUG: soft lockup - CPU#N stuck for Ns!",
    },
    GuestWatchdog {
        name: "RCU CPU stall warning",
        knob: "CONFIG_RCU_CPU_STALL_TIMEOUT",
        threshold_s: 21,
        source: "kernel/rcu/Kconfig.debug (s390 defconfig: 60)",
        message: "rcu: INFO: rcu_sched detected stalls on CPUs/tasks",
    },
    GuestWatchdog {
        name: "hung task",
        knob: "CONFIG_DEFAULT_HUNG_TASK_TIMEOUT (kernel.hung_task_timeout_secs)",
        threshold_s: 120,
        source: "lib/Kconfig.debug, kernel/hung_task.c",
        message: "INFO: task NAME:PID blocked for more than 120 seconds.",
    },
];

/// The watchdogs a stall of `waited_ns` sets off (with their default thresholds).
pub fn guest_symptoms(waited_ns: u64) -> Vec<&'static GuestWatchdog> {
    GUEST_WATCHDOGS.iter().filter(|w| waited_ns > w.threshold_s * 1_000_000_000).collect()
}

/// What ended a vCPU's wait on a page that was never coming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Release {
    /// The postcopy cleanup at the end of the migration (UFFDIO_UNREGISTER of guest RAM).
    Cleanup,
    /// Something before the end of the migration woke it (a UFFDIO_WAKE or COPY of the range).
    Earlier,
    /// Nothing: the vCPU still waited when the run ended.
    Never,
}

impl Release {
    pub fn name(self) -> &'static str {
        match self {
            Release::Cleanup => "postcopy cleanup",
            Release::Earlier => "woken before the end",
            Release::Never => "never",
        }
    }
}

/// One vCPU's wait on a guest page the destination had already received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    pub vcpu: u32,
    pub gfn: u32,
    /// When the vCPU blocked on the userfault (ns).
    pub since: u64,
    /// How long it waited: until it was woken, or until the end of the run (ns).
    pub waited_ns: u64,
    /// When it was woken (None: never).
    pub released_at: Option<u64>,
    pub released_by: Release,
}

impl Stall {
    /// The guest watchdogs this stall sets off.
    pub fn guest_symptoms(&self) -> Vec<&'static GuestWatchdog> {
        guest_symptoms(self.waited_ns)
    }
}

/// The stalls of the destination's vCPUs: for each fault `(gfn, t)` on an already-received page
/// (QEMU's fault thread read it at `t`), the last `kvm:vcpu_blocked` event of `host` on that page
/// before `t` (which vCPU, since when) and the `sched:thread_woken` that ended the wait. `hva`
/// maps a gfn to the destination's host address, `cleanup_at` is when the postcopy cleanup ran
/// (None: not yet) and `end` the end of the run.
pub fn stalls(
    events: &[Event],
    host: u8,
    faults: &[(u32, u64)],
    hva: impl Fn(u32) -> u64,
    cleanup_at: Option<u64>,
    end: u64,
) -> Vec<Stall> {
    let mut out: Vec<Stall> = Vec::new();
    for &(gfn, t) in faults {
        let a = hva(gfn);
        let Some(blocked) =
            events.iter().rfind(|e| e.host == host && e.kind == Ev::VcpuBlocked && e.addr == a && e.t <= t)
        else {
            continue;
        };
        let (vcpu, since) = (blocked.tid as u32, blocked.t);
        if out.iter().any(|s| s.vcpu == vcpu && s.gfn == gfn && s.since == since) {
            continue; // the same wait, faulted on again
        }
        let released_at = events
            .iter()
            .find(|e| {
                e.host == host && e.kind == Ev::ThreadWoken && e.tid as u32 == vcpu && e.addr == a && e.t >= since
            })
            .map(|e| e.t);
        let released_by = match (released_at, cleanup_at) {
            (None, _) => Release::Never,
            (Some(r), Some(c)) if r >= c => Release::Cleanup,
            (Some(_), _) => Release::Earlier,
        };
        let waited_ns = released_at.unwrap_or(end).saturating_sub(since);
        out.push(Stall { vcpu, gfn, since, waited_ns, released_at, released_by });
    }
    out.sort_by_key(|s| (s.since, s.vcpu));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_thresholds_are_the_kernels_defaults() {
        // kernel/watchdog.c: watchdog_thresh = 10, get_softlockup_thresh() = watchdog_thresh * 2;
        // kernel/rcu/Kconfig.debug: RCU_CPU_STALL_TIMEOUT default 21;
        // lib/Kconfig.debug: DEFAULT_HUNG_TASK_TIMEOUT default 120
        let t: Vec<(&str, u64)> = GUEST_WATCHDOGS.iter().map(|w| (w.name, w.threshold_s)).collect();
        assert_eq!(t, [("soft lockup", 20), ("RCU CPU stall warning", 21), ("hung task", 120)]);
        assert!(guest_symptoms(19_999_999_999).is_empty());
        let s: Vec<&str> = guest_symptoms(20_500_000_000).iter().map(|w| w.name).collect();
        assert_eq!(s, ["soft lockup"]);
        assert_eq!(guest_symptoms(121_000_000_000).len(), 3);
    }

    fn ev(t: u64, kind: Ev, tid: u16, addr: u64) -> Event {
        Event { t, addr, a: 0, b: 0, c: 0, pid: 1, tid, kind, host: 1 }
    }

    #[test]
    fn a_stall_ends_at_the_cleanup_or_the_end_of_the_run() {
        let hva = |g: u32| 0x1000_0000 + ((g as u64) << 12);
        let events = [
            ev(100, Ev::VcpuBlocked, 1, hva(5)),
            ev(150, Ev::VcpuBlocked, 0, hva(9)),
            ev(900, Ev::ThreadWoken, 1, hva(5)),
        ];
        let faults = [(5, 110), (5, 120), (9, 160), (7, 170)]; // gfn 7: no vCPU blocked on it
        let s = stalls(&events, 1, &faults, hva, Some(900), 1000);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].vcpu, s[0].since, s[0].waited_ns, s[0].released_by), (1, 100, 800, Release::Cleanup));
        assert_eq!((s[1].vcpu, s[1].waited_ns, s[1].released_at, s[1].released_by), (0, 850, None, Release::Never));
        let early = stalls(&events, 1, &faults[..1], hva, None, 1000);
        assert_eq!(early[0].released_by, Release::Earlier);
    }
}
