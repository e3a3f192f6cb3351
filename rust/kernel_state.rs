//! Read access to a [`Kernel`]'s state for callers outside the core modules (the Python
//! binding, the CLI, the studies): what they need, as functions, so that the fields stay the
//! core's own. The `/proc` views are in [`crate::fs::proc`].

use crate::error::{Error, Result};
use crate::kernel::{Cost, Kernel};
use crate::mm::page::Watermarks;
use crate::mm::vmstat::Vm;
use crate::profile::Profile;
use crate::sim::log::{Ev, Event};
use crate::uffd::types::Waiter;
use crate::vmscan::types::KswapdMode;

impl Kernel {
    /// Simulated time now, ns.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The kernel's profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The memory, bytes (every frame, the reserved ones included).
    pub fn memory_bytes(&self) -> u64 {
        self.mem.nr_pages() * 4096
    }

    /// The swap size, pages (the swap device's slots; slot 0 is its header).
    pub fn swap_pages(&self) -> u64 {
        self.swap.total() as u64 + 1
    }

    /// Swap slots in use (`si->inuse_pages`).
    pub fn swap_inuse(&self) -> u64 {
        self.swap.inuse() as u64
    }

    /// The zone watermarks (`__setup_per_zone_wmarks`).
    pub fn watermarks(&self) -> Watermarks {
        self.mem.wmark
    }

    /// The event counter `v` (/proc/vmstat's value of it).
    pub fn vm_event(&self, v: Vm) -> u64 {
        self.vmstat.get(v)
    }

    /// The event log, oldest first.
    pub fn events(&self) -> &[Event] {
        self.log.events()
    }

    /// Events in the log.
    pub fn events_len(&self) -> usize {
        self.log.len()
    }

    /// The platform-independent hash of the event log (same seed, same hash).
    pub fn log_hash(&self) -> u64 {
        self.log.hash()
    }

    /// Stop (or resume) recording events of `kind`.
    pub fn mute(&mut self, kind: Ev, muted: bool) {
        self.log.mute(kind, muted);
    }

    /// Enable (or disable) the tracepoint of `kind`, as writing 1 (0) to tracefs
    /// `events/<system>/<name>/enable` does: `mm_lru_insertion` is off until enabled
    /// ([`crate::sim::log::EventLog::OFF_BY_DEFAULT`]). The setting is part of the state (a
    /// snapshot keeps it). Refused for a kind that mirrors no tracepoint of the profile's release.
    pub fn trace_enable(&mut self, kind: Ev, enabled: bool) -> crate::error::Result<()> {
        if kind.tracepoint(&self.profile).is_none() {
            return Err(crate::error::Error::invalid(format!(
                "{} is the model's own event, not a kernel tracepoint (Kernel.mute turns it off)",
                kind.name()
            )));
        }
        self.log.mute(kind, !enabled);
        Ok(())
    }

    /// Whether the events of `kind` are recorded (`events/<system>/<name>/enable`).
    pub fn trace_enabled(&self, kind: Ev) -> bool {
        self.log.enabled(kind)
    }

    /// Stop recording the events of every page (see [`crate::sim::log::EventLog::mute_per_page`]).
    pub fn mute_per_page(&mut self) {
        self.log.mute_per_page();
    }

    /// Record only the rare events (see [`crate::sim::log::EventLog::mute_all_but_rare`]).
    pub fn mute_all_but_rare(&mut self) {
        self.log.mute_all_but_rare();
    }

    /// Forget the events recorded so far (a run that starts its log at a point of its own).
    pub fn clear_events(&mut self) {
        self.log.clear();
    }

    /// What operations cost in simulated time.
    pub fn cost(&self) -> &Cost {
        &self.cost
    }

    /// Set what operations cost in simulated time (a study's own figures).
    pub fn set_cost(&mut self, cost: Cost) {
        self.cost = cost;
    }

    /// How a woken kswapd gets to run: when the call that woke it returns, or when a run's
    /// scheduler steps it.
    pub fn set_kswapd_mode(&mut self, mode: KswapdMode) {
        self.kswapd.mode = mode;
    }

    /// KVM's migration mode on this host (`kvm->arch.migration_mode`: every ESSA intercepted).
    pub fn kvm_migration_mode(&self) -> bool {
        self.kvm_migration_mode
    }

    /// Turn KVM's migration mode on or off (`kvm_s390_vm_start_migration` / `_stop_migration`).
    pub fn set_kvm_migration_mode(&mut self, on: bool) {
        self.kvm_migration_mode = on;
    }

    /// Entries on the CBRL of vCPU thread (pid, tid): pages ESSA said may go, not yet zapped.
    pub fn cbrl_len(&self, pid: u32, tid: u32) -> usize {
        self.cbrl.get(&(pid, tid)).map_or(0, |c| c.len())
    }

    /// The process's name (its task's `comm`).
    pub fn comm(&self, pid: u32) -> Result<&str> {
        Ok(&self.mm(pid)?.name)
    }

    /// Whether the process is a KVM host process (`mm_has_pgste`).
    pub fn mm_has_pgste(&self, pid: u32) -> Result<bool> {
        Ok(self.mm(pid)?.has_pgste)
    }

    /// Whether the process has enabled storage keys (`mm_uses_skeys`).
    pub fn mm_uses_skeys(&self, pid: u32) -> Result<bool> {
        Ok(self.mm(pid)?.uses_skeys)
    }

    /// Whether thread `tid` of `pid` is parked on a userfault.
    pub fn thread_blocked(&self, pid: u32, tid: u32) -> Result<bool> {
        Ok(self.mm(pid)?.threads.get(&tid).is_some_and(|t| t.blocked.is_some()))
    }

    /// The PGSTE of the page at `addr` of a KVM process (0 where no page table covers it).
    pub fn pgste_at(&self, pid: u32, addr: u64) -> Result<u64> {
        let m = self.mm(pid)?;
        if !m.has_pgste {
            return Err(Error::invalid(format!("process {pid} has no PGSTEs (spawn it with kvm=True)")));
        }
        Ok(m.pt.pte_index(addr & !0xfff).map_or(0, |i| m.pt.pgste(i)))
    }

    /// The features agreed in UFFDIO_API on userfaultfd `id`.
    pub fn uffd_features(&self, id: u32) -> Result<u64> {
        self.uffds
            .get(id as usize)
            .map(|c| c.features)
            .ok_or_else(|| Error::invalid(format!("userfaultfd {id} does not exist")))
    }

    /// The userfaults waiting on userfaultfd `id` (queued, or read by its reader and not yet
    /// resolved): the `fault_pending_wqh` and `fault_wqh` queues of the
    /// `userfaultfd_ctx`.
    pub fn uffd_waiters(&self, id: u32) -> Result<&[Waiter]> {
        self.uffds
            .get(id as usize)
            .map(|c| c.waiters.as_slice())
            .ok_or_else(|| Error::invalid(format!("userfaultfd {id} does not exist")))
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{kernel, proc_with_pages};

    #[test]
    fn accessors_report_the_process_and_its_pgstes() {
        let mut k = kernel("4.18");
        let (pid, a) = proc_with_pages(&mut k, true, 1);
        assert_eq!(k.comm(pid).unwrap(), "test");
        assert!(k.mm_has_pgste(pid).unwrap());
        assert!(!k.thread_blocked(pid, 0).unwrap());
        assert!(k.pgste_at(pid, a).is_ok());
        let plain = k.spawn("plain", false).unwrap();
        assert!(k.pgste_at(plain, a).is_err(), "no PGSTEs without kvm");
        assert!(k.comm(pid + 100).is_err());
        assert!(k.uffd_features(99).is_err());
        assert_eq!(k.memory_bytes(), 8 << 20);
    }

    #[test]
    fn accessors_report_swap_in_use_storage_keys_and_waiting_userfaults() {
        let mut k = kernel("4.18");
        let (pid, a) = proc_with_pages(&mut k, true, 16);
        assert_eq!(k.swap_inuse(), 0);
        k.reclaim(16);
        assert!(k.swap_inuse() > 0, "reclaim swapped written anon pages out");
        assert!(!k.mm_uses_skeys(pid).unwrap());
        k.enable_skey(pid).unwrap();
        assert!(k.mm_uses_skeys(pid).unwrap());
        assert_eq!(k.cbrl_len(pid, 0), 0);
        // ESSA SET_UNUSED of a swapped-out page puts it on the vCPU's CBRL
        let mut last = 0;
        for i in 0..16 {
            last = k.essa(pid, 0, a + i * 4096, crate::arch::s390::essa::ESSA_SET_UNUSED).unwrap().cbrl_len;
        }
        assert!(last > 0);
        assert_eq!(k.cbrl_len(pid, 0), last);
        k.process_cbrl(pid, 0);
        assert_eq!(k.cbrl_len(pid, 0), 0);
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, crate::uffd::ioctl::UFFD_API, 0).unwrap();
        let b = k.mmap(pid, 4096, crate::mm::mmap::MapKind::Anon, false, None).unwrap();
        k.uffdio_register(u, b, 4096, crate::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING).unwrap();
        assert!(k.uffd_waiters(u).unwrap().is_empty());
        k.access(pid, 1, b, false, 0).unwrap();
        let w = k.uffd_waiters(u).unwrap();
        assert_eq!((w.len(), w[0].tid, w[0].msg.address, w[0].read), (1, 1, b, false));
        assert!(k.uffd_waiters(u + 1).is_err());
    }
}
