//! A run with several actors: two hosts (source and destination kernels), a KVM guest whose
//! vCPUs run on one of them, QEMU on each, the link, kswapd of each host and other load on the
//! destination. Every step of an actor is an [`Action`]; the default scheduler runs the pending
//! actions in simulated-time order (ties in the order they were scheduled), so the same seed
//! gives the same run. The explorer picks among the pending actions instead.

use crate::error::Result;
use crate::fault::Access;
use crate::kernel::Kernel;
use crate::kvm::guest::{Guest, GuestOp};
use crate::mm::mmap::MapKind;
use crate::qemu::dest::{Delivered, DstPhase, QemuDest};
use crate::qemu::source::{QemuSource, SrcStep};
use crate::qemu::{Link, Msg};
use crate::sim::log::Ev;
use crate::sim::rng::Rng;
use crate::vmscan::kswapd::KswapdMode;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Index of the source host.
pub const SRC: usize = 0;
/// Index of the destination host.
pub const DST: usize = 1;

/// A step of one actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// One guest operation on vCPU `i`.
    Vcpu(u32),
    /// The source's migration thread sends its next message.
    SourceSend,
    /// The next message of the migration stream reaches the destination.
    DeliverMain,
    /// The next return-path message reaches the source.
    DeliverRp,
    /// The destination's fault thread reads the userfaultfd.
    DestFault,
    /// kswapd of a host runs (`balance_pgdat`).
    Kswapd(u8),
    /// The other load on the destination touches one of its pages.
    Load,
}

/// State of one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct VcpuState {
    /// The operation parked on a userfault, and since when.
    pub blocked: Option<(GuestOp, u64)>,
    pub ops: u64,
    /// A `Vcpu` action for it is pending.
    pub scheduled: bool,
}

/// The other load on the destination host: a process touching its pages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Load {
    pub pid: u32,
    pub base: u64,
    pub pages: u64,
    pub interval_ns: u64,
    rng: Rng,
}

/// A data error the guest saw: a read of a page it uses returned something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataError {
    pub t: u64,
    pub gfn: u32,
    pub expected: u64,
    pub got: u64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct World {
    pub hosts: Vec<Kernel>,
    pub guest: Guest,
    pub src: QemuSource,
    pub dst: QemuDest,
    pub link: Link,
    pub now: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Action)>>,
    seq: u64,
    pub vcpus: Vec<VcpuState>,
    /// The host the guest runs on (None while it is stopped for the switchover).
    pub guest_host: Option<usize>,
    pub load: Option<Load>,
    /// Latency from a vCPU parking on a userfault to the fault thread reading it.
    pub fault_thread_latency_ns: u64,
    pub stopped_at: Option<u64>,
    pub running_on_dest_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub failed: Option<(u64, String)>,
    pub data_errors: Vec<DataError>,
    /// Guest pages with a write parked on a userfault: a read racing with it may see either
    /// value, so it is not checked.
    inflight_writes: std::collections::BTreeMap<u32, u32>,
    pending_source: bool,
    pending_fault: bool,
    pending_kswapd: [bool; 2],
    /// Actions applied so far.
    pub steps: u64,
}

impl World {
    /// Assemble a run: both kernels must have the QEMU processes and RAM mapped already.
    pub fn new(mut hosts: Vec<Kernel>, guest: Guest, src: QemuSource, dst: QemuDest, link: Link) -> World {
        for (i, k) in hosts.iter_mut().enumerate() {
            k.host = i as u8;
            k.kswapd.mode = KswapdMode::Actor;
        }
        let n = guest.cfg.vcpus as usize;
        World {
            hosts,
            guest,
            src,
            dst,
            link,
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            vcpus: vec![VcpuState::default(); n],
            guest_host: Some(SRC),
            load: None,
            fault_thread_latency_ns: 5_000,
            stopped_at: None,
            running_on_dest_at: None,
            completed_at: None,
            failed: None,
            data_errors: Vec::new(),
            inflight_writes: Default::default(),
            pending_source: false,
            pending_fault: false,
            pending_kswapd: [false; 2],
            steps: 0,
        }
    }

    /// Check the run is well formed and both hosts pass [`Kernel::check_invariants`]: the
    /// pending actions name existing vCPUs and hosts; QEMU's processes are alive on their hosts;
    /// its bitmaps, queues and messages stay inside the guest's pages; the guest's pools are
    /// consistent. A run built by [`World::new`] and stepped always is; a snapshot's is checked.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        if self.hosts.len() != 2 {
            return Err(format!("a run has a source and a destination host, not {}", self.hosts.len()));
        }
        for (h, k) in self.hosts.iter().enumerate() {
            k.check_invariants().map_err(|e| format!("host {h}: {e}"))?;
        }
        self.guest.check()?;
        let pages = self.guest.cfg.pages;
        let nv = self.vcpus.len();
        if nv != self.guest.cfg.vcpus as usize || self.guest_host.is_some_and(|h| h > DST) {
            return Err(format!(
                "{nv} vCPU states for {} vCPUs, guest on host {:?}",
                self.guest.cfg.vcpus, self.guest_host
            ));
        }
        for Reverse((_, _, a)) in &self.queue {
            if matches!(*a, Action::Vcpu(i) if i as usize >= nv) || matches!(*a, Action::Kswapd(h) if h as usize > DST)
            {
                return Err(format!("a pending action {a:?} names a vCPU or host that does not exist"));
            }
        }
        let alive = |h: usize, pid: u32| self.hosts[h].mm(pid).is_ok();
        if !alive(SRC, self.src.pid)
            || !alive(DST, self.dst.pid)
            || self.load.as_ref().is_some_and(|l| !alive(DST, l.pid))
        {
            return Err("QEMU or the other load is not a live process of its host".into());
        }
        if self.src.pages != pages || self.dst.pages != pages {
            return Err(format!("QEMU migrates {} / {} pages of a {pages}-page guest", self.src.pages, self.dst.pages));
        }
        for b in [&self.src.dirty, &self.dst.received, &self.dst.requested] {
            b.check()?;
            if b.len() != pages {
                return Err(format!("a QEMU bitmap of {} bits for {pages} guest pages", b.len()));
            }
        }
        let gfns = self
            .src
            .requests
            .iter()
            .copied()
            .chain(self.dst.cmma_incoming.iter().map(|c| c.0))
            .chain(self.inflight_writes.keys().copied());
        let msgs = self.link.main.queue.iter().chain(&self.link.rp.queue).map(|(_, m)| m);
        if gfns.into_iter().any(|g| g as u64 >= pages) || !msgs.into_iter().all(|m| m.fits(pages)) {
            return Err(format!("a QEMU queue or message names a guest page beyond {pages}"));
        }
        if self.dst.uffd.is_some_and(|u| u as usize >= self.hosts[DST].uffds.len()) {
            return Err("QEMU's userfaultfd on the destination does not exist".into());
        }
        Ok(())
    }

    /// Bytes of heap the run's state takes: both hosts ([`Kernel::heap_bytes`]) and the guest.
    pub fn heap_bytes(&self) -> usize {
        self.hosts.iter().map(Kernel::heap_bytes).sum::<usize>() + self.guest.heap_bytes()
    }

    /// Other load on the destination: `pages` touched once now, then one page every
    /// `interval_ns`.
    pub fn add_load(&mut self, pages: u64, interval_ns: u64, rng: Rng) -> Result<()> {
        if pages == 0 {
            return Ok(());
        }
        let k = &mut self.hosts[DST];
        let pid = k.spawn("other-load", false)?;
        let base = k.mmap(pid, pages << 12, MapKind::Anon, false, None)?;
        for i in 0..pages {
            k.access(pid, 0, base + (i << 12), true, i + 1)?;
        }
        self.load = Some(Load { pid, base, pages, interval_ns, rng });
        Ok(())
    }

    /// Whether any action is pending.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn schedule(&mut self, at: u64, a: Action) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, a)));
    }

    /// The actions waiting to run, in the order the time scheduler would run them.
    pub fn pending(&self) -> Vec<(u64, Action)> {
        let mut v: Vec<(u64, u64, Action)> = self.queue.iter().map(|Reverse(x)| *x).collect();
        v.sort_unstable();
        v.into_iter().map(|(t, _, a)| (t, a)).collect()
    }

    /// Start the migration: the source's setup and first sends, the guest's vCPUs, the load.
    pub fn start(&mut self) {
        let setup = self.src.setup(&mut self.hosts[SRC]);
        for m in setup {
            self.send_main(m);
        }
        self.kick_source(self.now);
        for i in 0..self.vcpus.len() as u32 {
            self.schedule_vcpu(i, self.now + i as u64 * 997);
        }
        if let Some(l) = &self.load {
            let t = self.now + l.interval_ns;
            self.schedule(t, Action::Load);
        }
    }

    fn schedule_vcpu(&mut self, i: u32, at: u64) {
        if !self.vcpus[i as usize].scheduled {
            self.vcpus[i as usize].scheduled = true;
            self.schedule(at, Action::Vcpu(i));
        }
    }

    fn kick_source(&mut self, at: u64) {
        if !self.pending_source {
            self.pending_source = true;
            let t = at.max(self.link.main.free_at);
            self.schedule(t, Action::SourceSend);
        }
    }

    fn send_main(&mut self, m: Msg) {
        let at = self.link.main.send(&self.link.cfg, self.now, m);
        self.schedule(at, Action::DeliverMain);
    }

    fn send_rp(&mut self, m: Msg) {
        let cfg = self.link.cfg.clone();
        let at = self.link.rp.send(&cfg, self.now, m);
        self.schedule(at, Action::DeliverRp);
    }

    /// Whether the run is over (completed or failed).
    pub fn finished(&self) -> bool {
        self.completed_at.is_some() || self.failed.is_some()
    }

    /// Run the next action in time order. Returns false when nothing is pending.
    pub fn step(&mut self) -> bool {
        let Some(Reverse((t, _, a))) = self.queue.pop() else { return false };
        self.now = self.now.max(t);
        self.apply(a);
        true
    }

    /// Run until the migration is over, nothing is pending, or `until` (simulated ns).
    pub fn run(&mut self, until: u64) {
        while !self.finished() {
            match self.queue.peek() {
                Some(Reverse((t, _, _))) if *t <= until => {}
                _ => break,
            }
            self.step();
        }
    }

    /// Take the action `a` out of the queue (the first pending one equal to it) and run it now:
    /// how the explorer picks an interleaving. Returns false if `a` was not pending.
    pub fn take_and_apply(&mut self, a: Action) -> bool {
        let mut items: Vec<Reverse<(u64, u64, Action)>> = std::mem::take(&mut self.queue).into_vec();
        let Some(pos) = items.iter().position(|Reverse((_, _, x))| *x == a) else {
            self.queue = items.into();
            return false;
        };
        let Reverse((t, _, _)) = items.swap_remove(pos);
        self.queue = items.into();
        self.now = self.now.max(t);
        self.apply(a);
        true
    }

    /// Apply one action at the current time.
    pub fn apply(&mut self, a: Action) {
        self.steps += 1;
        match a {
            Action::Vcpu(i) => self.vcpu_step(i),
            Action::SourceSend => {
                self.pending_source = false;
                self.source_send();
            }
            Action::DeliverMain => self.deliver_main(),
            Action::DeliverRp => {
                if let Some((_, Msg::ReqPage { gfn })) = self.link.rp.pop() {
                    self.src.queue_request(gfn);
                    self.kick_source(self.now);
                }
            }
            Action::DestFault => {
                self.pending_fault = false;
                self.hosts[DST].now = self.now;
                let reqs = self.dst.fault_thread(&mut self.hosts[DST], self.now);
                for m in reqs {
                    self.send_rp(m);
                }
            }
            Action::Kswapd(h) => {
                self.pending_kswapd[h as usize] = false;
                let k = &mut self.hosts[h as usize];
                k.now = self.now;
                k.kswapd_step();
            }
            Action::Load => self.load_step(),
        }
        self.after_action();
    }

    /// After every action: wake kswapd actors, resume vCPUs whose userfault was resolved.
    fn after_action(&mut self) {
        for h in 0..2 {
            if self.hosts[h].kswapd.woken && !self.pending_kswapd[h] {
                self.pending_kswapd[h] = true;
                self.schedule(self.now + 1_000, Action::Kswapd(h as u8));
            }
        }
        let Some(gh) = self.guest_host else { return };
        let pid = if gh == SRC { self.src.pid } else { self.dst.pid };
        let mut resumed = Vec::new();
        for i in 0..self.vcpus.len() {
            let Some((op, since)) = self.vcpus[i].blocked else { continue };
            let still = self.hosts[gh].mmx(pid).threads.get(&(i as u32)).is_some_and(|t| t.blocked.is_some());
            if !still {
                resumed.push((i, op, since));
            }
        }
        // reads first: a write woken by the same event may have completed after them
        for &(i, op, _) in &resumed {
            if let (GuestOp::Read { gfn }, Some(Access::Done { value })) =
                (op, self.hosts[gh].last_access(pid, i as u32))
            {
                self.check_read(gfn, value);
            }
        }
        for (i, op, _) in resumed {
            self.vcpus[i].blocked = None;
            if let GuestOp::Write { gfn, .. } | GuestOp::Alloc { gfn, .. } = op {
                if let Some(n) = self.inflight_writes.get_mut(&gfn) {
                    *n -= 1;
                    if *n == 0 {
                        self.inflight_writes.remove(&gfn);
                    }
                }
            }
            let t = self.now + self.guest.cfg.op_interval_ns;
            self.schedule_vcpu(i as u32, t);
        }
    }

    fn check_read(&mut self, gfn: u32, got: u64) {
        if self.inflight_writes.contains_key(&gfn) {
            return;
        }
        if let Some(expected) = self.guest.check_read(gfn, got) {
            self.data_errors.push(DataError { t: self.now, gfn, expected, got });
        }
    }

    fn vcpu_step(&mut self, i: u32) {
        let vi = i as usize;
        self.vcpus[vi].scheduled = false;
        let Some(h) = self.guest_host else { return };
        if self.vcpus[vi].blocked.is_some() {
            return;
        }
        let op = self.guest.next_op(i);
        self.vcpus[vi].ops += 1;
        let (pid, base) = if h == SRC { (self.src.pid, self.src.ram_base) } else { (self.dst.pid, self.dst.ram_base) };
        let cmma = self.guest.cfg.cmma;
        let alloc_orc = self.guest.alloc_orc();
        let k = &mut self.hosts[h];
        k.now = self.now;
        let hva = |gfn: u32| base + ((gfn as u64) << 12);
        let r = match op {
            GuestOp::Alloc { gfn, value } => {
                if cmma {
                    let _ = k.essa(pid, i, hva(gfn), alloc_orc);
                }
                k.access(pid, i, hva(gfn), true, value)
            }
            GuestOp::Free { gfn, diag10 } => {
                if cmma {
                    let _ = k.essa(pid, i, hva(gfn), crate::arch::s390::essa::ESSA_SET_UNUSED);
                }
                if diag10 {
                    // the cmm driver's diag10_range(pfn, 1): start and last are the page itself.
                    // Simplification: every vCPU's prefix is 0, so the lowcore is guest pages 0
                    // and 1, which KVM refuses to release (PGM_SPECIFICATION; the guest goes on)
                    let a = (gfn as u64) << 12;
                    let _ = k.diag_release_pages(pid, i, base, 0, a, a);
                }
                Ok(Access::Done { value: 0 })
            }
            GuestOp::Read { gfn } => k.access(pid, i, hva(gfn), false, 0),
            GuestOp::Write { gfn, value } => k.access(pid, i, hva(gfn), true, value),
        };
        let cost = k.now.saturating_sub(self.now);
        match r {
            Ok(Access::Blocked { .. }) => {
                self.vcpus[vi].blocked = Some((op, self.now));
                if let GuestOp::Write { gfn, .. } | GuestOp::Alloc { gfn, .. } = op {
                    *self.inflight_writes.entry(gfn).or_default() += 1;
                }
                let gfn = match op {
                    GuestOp::Alloc { gfn, .. }
                    | GuestOp::Read { gfn }
                    | GuestOp::Write { gfn, .. }
                    | GuestOp::Free { gfn, .. } => gfn,
                };
                self.hosts[h].log(Ev::VcpuBlocked, pid, i, hva(gfn), (gfn as u64) << 12, 0, 0);
                if !self.pending_fault {
                    self.pending_fault = true;
                    self.schedule(self.now + self.fault_thread_latency_ns, Action::DestFault);
                }
            }
            other => {
                if let (GuestOp::Read { gfn }, Ok(Access::Done { value })) = (op, other) {
                    self.check_read(gfn, value);
                }
                let t = self.now + self.guest.cfg.op_interval_ns + cost;
                self.schedule_vcpu(i, t);
            }
        }
    }

    fn source_send(&mut self) {
        self.hosts[SRC].now = self.now;
        match self.src.step(&mut self.hosts[SRC]) {
            SrcStep::Send(msgs) => {
                for m in msgs {
                    self.send_main(m);
                }
                if self.src.phase != crate::qemu::source::SrcPhase::Done {
                    self.kick_source(self.now);
                }
            }
            SrcStep::Switchover => {
                // the guest stops on the source for the switchover
                self.guest_host = None;
                self.stopped_at = Some(self.now);
                let (link, queue, seq, now) = (&mut self.link, &mut self.queue, &mut self.seq, self.now);
                self.src.switchover(&mut self.hosts[SRC], &mut |m, left| {
                    // what send_main does, with room for every message of the switchover made once
                    // and some to spare: the next push into a full queue of tens of millions of
                    // entries would double it
                    if link.main.queue.capacity() - link.main.queue.len() < left + 1 {
                        link.main.queue.reserve_exact(left + 1 + 4096);
                        queue.reserve_exact(left + 1 + 4096);
                    }
                    let at = link.main.send(&link.cfg, now, m);
                    *seq += 1;
                    queue.push(Reverse((at, *seq, Action::DeliverMain)));
                });
                self.kick_source(self.now);
            }
            SrcStep::Idle => {}
        }
    }

    fn deliver_main(&mut self) {
        let Some((_, m)) = self.link.main.pop() else { return };
        self.hosts[DST].now = self.now;
        match self.dst.deliver(&mut self.hosts[DST], m) {
            Delivered::Nothing => {}
            Delivered::Run => {
                self.guest_host = Some(DST);
                self.running_on_dest_at = Some(self.now);
                for i in 0..self.vcpus.len() as u32 {
                    self.schedule_vcpu(i, self.now + 1 + i as u64);
                }
            }
            Delivered::Completed => self.completed_at = Some(self.now),
            Delivered::Failed(why) => self.failed = Some((self.now, why)),
        }
    }

    fn load_step(&mut self) {
        let Some(l) = &mut self.load else { return };
        let page = l.rng.below(l.pages);
        let (pid, addr, interval) = (l.pid, l.base + (page << 12), l.interval_ns);
        let k = &mut self.hosts[DST];
        k.now = self.now;
        let _ = k.access(pid, 0, addr, true, page + 1);
        if !self.finished() && self.dst.phase != DstPhase::Done {
            self.schedule(self.now + interval, Action::Load);
        }
    }
}
