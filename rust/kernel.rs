//! One host: its memory, processes, swap, LRU lists, userfaultfd contexts, counters, clock and
//! event log, under one kernel profile.
//!
//! The subsystems add their operations in their own modules (`impl Kernel` blocks in `mm/`,
//! `rmap/`, `vmscan/`, `fault/`, `uffd/`, `kvm/`); this file holds the state and the helpers
//! they share: PTE primitives dispatched to the arch, page references, rss counters, logging.

use crate::arch::Arch;
use crate::arch::pgtable::PageTables;
use crate::arch::s390::pgtable::{self as s390pt, S390Mm};
use crate::arch::s390::pte::Pte;
use crate::error::{Error, Result};
use crate::mm::page::{Memory, ZERO_PFN, pg};
use crate::mm::swapfile::SwapDevice;
use crate::mm::vmstat::{Vm, Vmstat};
use crate::mm::{AddressSpace, AnonVma, Mm, Vma};
use crate::profile::Profile;
use crate::sim::log::{Ev, Event, EventLog};
use crate::sim::rng::Rng;
use crate::uffd::types::UffdCtx;
use crate::vmscan::lru::Lru;
use crate::vmscan::types::Kswapd;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What operations cost in simulated time (nanoseconds). Typical figures for a current s390 or
/// x86 server with an SSD swap device; studies may change them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cost {
    /// An access that completes without a fault.
    pub access: u64,
    /// A minor fault (first touch, COW, young/dirty emulation).
    pub minor_fault: u64,
    /// Reading a page from the swap device (a major fault).
    pub swap_read: u64,
    /// Writing a page to the swap device.
    pub swap_write: u64,
    /// Scanning one page in reclaim (isolate, references, unmap).
    pub reclaim_scan: u64,
    /// One UFFDIO_COPY / ZEROPAGE of a page.
    pub uffd_copy: u64,
}

impl Default for Cost {
    fn default() -> Self {
        Cost {
            access: 10,
            minor_fault: 1_000,
            swap_read: 80_000,
            swap_write: 20_000,
            reclaim_scan: 150,
            uffd_copy: 2_000,
        }
    }
}

/// First pid handed out (pid 1 is init on a real system; the model has no init).
pub(crate) const FIRST_PID: u32 = 100;

/// Why [`Kernel::pte_alloc`] found no PTE slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PteAlloc {
    /// The tables would not fit in the kernel's memory (-ENOMEM, VM_FAULT_OOM).
    NoMemory,
    /// The address is beyond what the arch can map.
    OutOfReach,
}

/// A host kernel. Its fields are the core's own (`pub(crate)`): other code reads and sets
/// what it needs through functions (`kernel_state.rs`, the `/proc` views of `fs::proc`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Kernel {
    pub(crate) profile: Profile,
    /// Index of this host in a multi-host run (0 for a lone kernel).
    pub(crate) host: u8,
    seed: u64,
    pub(crate) mem: Memory,
    /// Processes by `pid - FIRST_PID`.
    pub(crate) mms: Vec<Option<Mm>>,
    pub(crate) vmas: Vec<Option<Vma>>,
    pub(crate) vma_free: Vec<u32>,
    /// anon_vmas by id, never reused (a page may still name a dead one).
    pub(crate) anon_vmas: Vec<AnonVma>,
    /// shmem objects by id.
    pub(crate) files: Vec<Option<AddressSpace>>,
    pub(crate) swap: SwapDevice,
    /// The swap device's completion model and its writes in flight (mm/page_io.c).
    pub(crate) swap_wb: crate::mm::page_io::SwapWriteback,
    pub(crate) lru: Lru,
    pub(crate) uffds: Vec<UffdCtx>,
    pub(crate) vmstat: Vmstat,
    pub(crate) log: EventLog,
    /// Simulated time, nanoseconds.
    pub(crate) now: u64,
    pub(crate) rng: Rng,
    pub(crate) kswapd: Kswapd,
    pub(crate) cost: Cost,
    /// Extra simulated clients of memory (pages allocated outside any process: other load).
    pub(crate) pinned: Vec<u32>,
    /// Reused buffer of the rmap walk (no allocation per walked page).
    #[serde(skip)]
    pub(crate) rmap_scratch: Vec<(u32, u64)>,
    /// `reclaim_stat` of the lruvec (get_scan_count's balance).
    pub(crate) lru_recent: crate::vmscan::types::RecentStat,
    /// `lruvec->nonresident_age`: evictions and activations, the workingset clock.
    pub(crate) nonresident_age: u32,
    /// Swap readahead: `vm.page-cluster` and `swapin_nr_pages`'s state (mm/swap_state.c).
    pub(crate) swap_ra: crate::mm::swap_state::SwapRa,
    /// `current->in_lru_fault` (6.12 `lru_gen_enter_fault`: a fault in a VMA with recency,
    /// with MGLRU): `folio_add_lru` makes the page active (the youngest generation). Set only
    /// inside `handle_mm_fault`, so never in a snapshot.
    #[serde(skip)]
    pub(crate) in_lru_fault: bool,
    /// Mappings that got a migration entry in the current `migrate_page`:
    /// (pid, vma, addr, pte index, old pte value). Scratch of one call: not in a snapshot.
    #[serde(skip)]
    pub(crate) migration_targets: Vec<(u32, u32, u64, usize, u64)>,
    /// KVM migration mode (`kvm->arch.migration_mode`): every ESSA is intercepted.
    pub(crate) kvm_migration_mode: bool,
    /// The CBRL of each vCPU thread (pid, tid): host addresses of pages ESSA said may go.
    pub(crate) cbrl: BTreeMap<(u32, u32), Vec<u64>>,
    /// Pages whose CMMA state changed in migration mode (the second dirty bitmap).
    pub(crate) cmma_dirty: std::collections::BTreeSet<(u32, u64)>,
    /// The x86_64 TLB model, when chosen ([`Kernel::set_x86_tlb`]); None: every access sets the
    /// accessed bit. Not in a snapshot (a kernel with one refuses to be saved).
    #[serde(skip)]
    pub(crate) tlb: Option<Box<crate::arch::x86::tlb::Tlb>>,
    /// The memcg's flushed statistics, when chosen ([`Kernel::set_memcg_stats`]); None: reclaim
    /// reads the live counts. Not in a snapshot (a kernel with them refuses to be saved).
    #[serde(skip)]
    pub(crate) memcg: Option<Box<crate::mm::memcg_vmstats::MemcgRstat>>,
    /// The zones DMA and DMA32 with migratetypes and watermark boosting, when chosen
    /// ([`Kernel::set_guest_zones`], crate::mm::mmzone); None: one zone. Not in a snapshot (a
    /// kernel with them refuses to be saved).
    #[serde(skip)]
    pub(crate) zones: Option<Box<crate::mm::mmzone::Zones>>,
    /// The per-cpu page lists of the zones (the guest zones', else the one zone's) on the
    /// guest's one CPU, when chosen ([`Kernel::set_pcp_lists`], crate::mm::page_alloc); None: a
    /// freed page goes straight back to its zone. Not in a snapshot (a kernel with them
    /// refuses to be saved).
    #[serde(skip)]
    pub(crate) pcp: Option<Box<crate::mm::mmzone::Pcp>>,
    /// The guest's clock, an input of the replay oracle ([`Kernel::set_guest_clock`],
    /// crate::sched); None: none. Not in a snapshot (a kernel with one refuses to be saved).
    #[serde(skip)]
    pub(crate) guest_clock: Option<Box<crate::sched::clock::GuestClock>>,
    /// The frames the page tables hold, when the tables come out of the zone's memory
    /// ([`Kernel::set_pgtable_pages`], crate::mm::pgalloc); None: the tables are apart from the
    /// frames. Not in a snapshot (a kernel with them refuses to be saved).
    #[serde(skip)]
    pub(crate) pgtable_pages: Option<Box<crate::mm::pgalloc::frames::PgtablePages>>,
    /// The `radix_tree_node` slabs of the swap cache's xarray nodes, when they come out of the
    /// zone's memory ([`Kernel::set_swap_cache_nodes`], crate::mm::slub); None: the swap cache
    /// is apart from the frames. Not in a snapshot (a kernel with them refuses to be saved).
    #[serde(skip)]
    pub(crate) swap_cache_slab: Option<Box<crate::mm::slub::cache::KmemCache>>,
}

crate::sim::clone_fields::clone_fields!(Kernel {
    profile = crate::sim::clone_fields::clone_if_changed,
    host,
    seed,
    mem,
    mms,
    vmas,
    vma_free,
    anon_vmas,
    files,
    swap,
    swap_wb,
    lru,
    uffds,
    vmstat,
    log,
    now,
    rng,
    kswapd,
    cost,
    pinned,
    rmap_scratch,
    lru_recent,
    nonresident_age,
    swap_ra,
    in_lru_fault,
    migration_targets,
    kvm_migration_mode,
    cbrl = crate::sim::clone_fields::clone_if_changed,
    cmma_dirty = crate::sim::clone_fields::clone_if_changed,
    tlb,
    memcg,
    zones,
    pcp,
    guest_clock,
    pgtable_pages,
    swap_cache_slab
});

impl Kernel {
    /// A kernel of `profile` with `memory` and `swap` bytes.
    pub fn new(profile: Profile, memory: u64, swap: u64, seed: u64) -> Result<Kernel> {
        let nr_pages = crate::units::check_pages("memory", memory)?;
        if nr_pages < 64 {
            return Err(Error::invalid(format!(
                "memory of {memory} bytes is too small: the model needs at least 64 pages (256 KiB)"
            )));
        }
        if nr_pages > u32::MAX as u64 / 2 {
            return Err(Error::invalid(format!("memory of {memory} bytes is too large for the model (at most 8 TiB)")));
        }
        let swap_pages = if swap == 0 { 0 } else { crate::units::check_pages("swap", swap)? };
        if swap_pages > u32::MAX as u64 / 2 {
            return Err(Error::invalid(format!("swap of {swap} bytes is too large for the model (at most 8 TiB)")));
        }
        crate::hostmem::reserve(
            &format!(
                "a kernel with {} of memory and {} of swap",
                crate::hostmem::human(memory),
                crate::hostmem::human(swap)
            ),
            crate::hostmem::kernel_cost(nr_pages, swap_pages),
        )?;
        let mem = Memory::new(nr_pages, profile.min_free_kbytes_max);
        profile.check_switches()?;
        let mut lru = Lru::with_lru_gen(profile.lru_gen);
        lru.lrugen.caps = profile.lru_gen_caps();
        lru.lrugen.activate_resets_refs = profile.lru_gen_activate_resets_refs;
        Ok(Kernel {
            lru,
            swap: SwapDevice::new(swap_pages as u32),
            swap_wb: Default::default(),
            mem,
            profile,
            host: 0,
            seed,
            mms: Vec::new(),
            vmas: Vec::new(),
            vma_free: Vec::new(),
            anon_vmas: Vec::new(),
            files: Vec::new(),
            uffds: Vec::new(),
            vmstat: Vmstat::default(),
            log: EventLog::new(),
            now: 0,
            rng: Rng::new(seed),
            kswapd: Kswapd::default(),
            cost: Cost::default(),
            pinned: Vec::new(),
            rmap_scratch: Vec::new(),
            lru_recent: Default::default(),
            nonresident_age: 0,
            swap_ra: crate::mm::swap_state::SwapRa::new(nr_pages),
            in_lru_fault: false,
            migration_targets: Vec::new(),
            kvm_migration_mode: false,
            cbrl: BTreeMap::new(),
            cmma_dirty: Default::default(),
            tlb: None,
            memcg: None,
            zones: None,
            pcp: None,
            guest_clock: None,
            pgtable_pages: None,
            swap_cache_slab: None,
        })
    }

    #[inline]
    pub fn arch(&self) -> Arch {
        self.profile.arch
    }

    /// The swap-entry format of the profile (arch and release).
    #[inline]
    pub fn swp_format(&self) -> crate::arch::SwpFormat {
        self.profile.swp_format()
    }

    /// `mk_pte(page, pgprot)` for the page at `pfn`. On s390 (arch/s390/include/asm/pgtable.h
    /// `mk_pte`, the same in 4.13, 4.17, 4.18 and 6.12.117; removed only in 2025) a writable
    /// PTE of a PG_dirty page is made dirty at once: `if (pte_write(__pte) && PageDirty(page))
    /// __pte = pte_mkdirty(__pte);`, so it is not hardware-protected and the first write takes
    /// no protection fault. x86_64's `mk_pte` is `pfn_pte(page_to_pfn(page), pgprot)`.
    pub fn mk_pte(&self, pfn: u32, prot: u64) -> u64 {
        let arch = self.arch();
        let pte = arch.mk_pte(pfn, prot);
        let dirty_page = self.mem.frames.get(pfn as usize).is_some_and(|f| f.test(crate::mm::page::pg::PG_DIRTY));
        if arch == Arch::S390x && arch.pte_write(pte) && dirty_page { arch.pte_mkdirty(pte) } else { pte }
    }

    // ----------------------------------------------------------------- processes and VMAs

    /// Create a process (an empty mm). `kvm` makes it a KVM host process: arch/s390/mm
    /// `s390_enable_sie` (4.17 pgtable.c, 6.12 gmap.c) gives it PGSTEs (`mm_has_pgste`), here from
    /// the start (QEMU's `mm_alloc_pgste` holds from exec).
    pub fn spawn(&mut self, name: &str, kvm: bool) -> Result<u32> {
        if kvm && self.arch() != Arch::S390x {
            return Err(Error::invalid(format!(
                "kvm=True needs the s390x arch (PGSTEs); this kernel is {}",
                self.arch().name()
            )));
        }
        let pid = FIRST_PID + self.mms.len() as u32;
        let base = self.arch().mmap_base();
        self.mms.push(Some(Mm {
            pid,
            name: name.to_string(),
            alive: true,
            has_pgste: kvm,
            uses_skeys: false,
            kvm_facility_147: kvm,
            allow_cow_sharing: true,
            vmas: BTreeMap::new(),
            pt: PageTables::new(self.arch().geometry(), kvm),
            rss: [0; 4],
            threads: BTreeMap::new(),
            mmap_base: base,
            vma_hint: Default::default(),
            thread_hint: Default::default(),
        }));
        self.lru_gen_add_mm(pid);
        Ok(pid)
    }

    #[inline]
    fn slot(pid: u32) -> usize {
        pid.wrapping_sub(FIRST_PID) as usize
    }

    pub fn mm(&self, pid: u32) -> Result<&Mm> {
        match self.mms.get(Self::slot(pid)) {
            Some(Some(m)) if m.alive => Ok(m),
            Some(Some(_)) => Err(Error::errno(crate::Errno::ESRCH, "mm", format!("process {pid} has exited"))),
            _ => Err(Error::errno(crate::Errno::ESRCH, "mm", format!("no process with pid {pid}"))),
        }
    }

    pub fn mm_mut(&mut self, pid: u32) -> Result<&mut Mm> {
        match self.mms.get_mut(Self::slot(pid)) {
            Some(Some(m)) if m.alive => Ok(m),
            Some(Some(_)) => Err(Error::errno(crate::Errno::ESRCH, "mm", format!("process {pid} has exited"))),
            _ => Err(Error::errno(crate::Errno::ESRCH, "mm", format!("no process with pid {pid}"))),
        }
    }

    /// The mm of `pid`, which the caller knows to exist.
    #[inline]
    pub(crate) fn mmx(&self, pid: u32) -> &Mm {
        self.mms[Self::slot(pid)].as_ref().expect("live pid")
    }

    #[inline]
    pub(crate) fn mmx_mut(&mut self, pid: u32) -> &mut Mm {
        self.mms[Self::slot(pid)].as_mut().expect("live pid")
    }

    /// Pids of the live processes, in order.
    pub fn pids(&self) -> Vec<u32> {
        self.mms.iter().flatten().filter(|m| m.alive).map(|m| m.pid).collect()
    }

    #[inline]
    pub fn vma(&self, id: u32) -> &Vma {
        self.vmas[id as usize].as_ref().expect("live vma")
    }

    #[inline]
    pub fn vma_mut(&mut self, id: u32) -> &mut Vma {
        self.vmas[id as usize].as_mut().expect("live vma")
    }

    pub(crate) fn vma_insert(&mut self, v: Vma) -> u32 {
        let mm = v.mm;
        let start = v.start;
        let id = if let Some(id) = self.vma_free.pop() {
            self.vmas[id as usize] = Some(v);
            id
        } else {
            self.vmas.push(Some(v));
            (self.vmas.len() - 1) as u32
        };
        self.mmx_mut(mm).vmas.insert(start, id);
        id
    }

    /// Remove a VMA from its mm and the tables (its pages must be gone already).
    pub(crate) fn vma_remove(&mut self, id: u32) {
        let v = self.vmas[id as usize].take().expect("live vma");
        self.mmx_mut(v.mm).vmas.remove(&v.start);
        for av in &v.anon_vma_chain {
            self.anon_vmas[*av as usize].vmas.retain(|x| *x != id);
        }
        if let Some(f) = v.file {
            if let Some(Some(a)) = self.files.get_mut(f as usize) {
                a.i_mmap.retain(|x| *x != id);
            }
        }
        self.vma_free.push(id);
    }

    /// `find_vma` restricted to the VMA that contains `addr` (include/linux/mm.h `vma_lookup`,
    /// 6.12; 4.17 mm/mmap.c `find_vma` plus the `vm_start` check its callers make).
    #[inline]
    pub fn vma_lookup(&self, pid: u32, addr: u64) -> Option<u32> {
        let mm = self.mmx(pid);
        let hint = mm.vma_hint.get();
        if let Some(Some(v)) = hint.checked_sub(1).map(|id| self.vmas.get(id as usize).and_then(Option::as_ref)) {
            // a live VMA of this mm that covers addr is the answer (VMAs do not overlap)
            if v.mm == pid && v.start <= addr && addr < v.end {
                return Some(hint - 1);
            }
        }
        self.vma_lookup_tree(pid, addr)
    }

    /// [`Kernel::vma_lookup`] past its hint (kept out of line: the hint's test is what an
    /// access runs).
    #[inline(never)]
    fn vma_lookup_tree(&self, pid: u32, addr: u64) -> Option<u32> {
        let mm = self.mmx(pid);
        let (_, &id) = mm.vmas.range(..=addr).next_back()?;
        let v = self.vma(id);
        if addr >= v.end {
            return None;
        }
        mm.vma_hint.set(id + 1);
        Some(id)
    }

    /// The VMA ids of `pid` that intersect `[start, end)`, in address order.
    pub fn vmas_in(&self, pid: u32, start: u64, end: u64) -> Vec<u32> {
        let mm = self.mmx(pid);
        let mut out = Vec::new();
        if end <= start {
            return out;
        }
        if let Some((_, &id)) = mm.vmas.range(..=start).next_back() {
            if self.vma(id).end > start {
                out.push(id);
            }
        }
        for (_, &id) in mm.vmas.range(start.saturating_add(1)..end) {
            out.push(id);
        }
        out
    }

    // ----------------------------------------------------------------------- logging

    #[inline]
    pub fn log(&mut self, kind: Ev, pid: u32, tid: u32, addr: u64, a: u64, b: u64, c: u64) {
        if self.log.enabled(kind) {
            self.log.push(Event { t: self.now, addr, a, b, c, pid, tid: tid as u16, kind, host: self.host });
        }
    }

    // --------------------------------------------------------------- PTE primitives

    fn s390mm(&self, pid: u32) -> S390Mm {
        let m = self.mmx(pid);
        S390Mm { has_pgste: m.has_pgste, uses_skeys: m.uses_skeys, layout: self.profile.pgste_layout }
    }

    /// `ptep_xchg_direct`: install `new`, return the old value (on s390 with `_PAGE_UNUSED`
    /// added per the PGSTE commit logic).
    pub fn ptep_xchg(&mut self, pid: u32, idx: usize, new: u64) -> u64 {
        match self.arch() {
            Arch::S390x => {
                let smm = self.s390mm(pid);
                let mm = self.mms[Self::slot(pid)].as_mut().expect("live pid");
                let (pte, pgste) = mm.pt.slot_mut(idx);
                s390pt::ptep_xchg(&smm, &mut self.mem, pte, pgste, Pte(new)).val()
            }
            Arch::X86_64 => {
                let mm = self.mmx_mut(pid);
                let old = mm.pt.pte(idx);
                mm.pt.set_pte(idx, new);
                if self.tlb.is_some() {
                    self.tlb_pte_changed(pid, idx, old, new);
                }
                old
            }
        }
    }

    /// `pte_alloc` (mm/memory.c `__pte_alloc` and the upper levels' `p?d_alloc`, 4.17 and 6.12): the PTE slot of `va` in
    /// `pid`'s page tables, allocating the tables on the way. The kernel takes page tables from
    /// its memory; the model keeps them apart from the frames (so the frame accounting of every
    /// study is the kernel's for the pages themselves) and only bounds them: when the tables of
    /// every mm ([`PageTables::table_bytes`](crate::arch::pgtable::PageTables::table_bytes))
    /// would exceed [`Kernel::page_table_limit`], a new table is `PteAlloc::NoMemory` (the
    /// kernel's -ENOMEM / VM_FAULT_OOM), so a huge UFFDIO_ZEROPAGE or fault range on a small
    /// kernel cannot make the model outgrow the host. `fork` fails with -ENOMEM when a copy of
    /// the parent's tables would pass the limit. With [`Kernel::set_pgtable_pages`] each new
    /// table also takes a page of the zone (`pte_alloc_one`, crate::mm::pgalloc), and a table
    /// the allocator finds no page for is `PteAlloc::NoMemory`.
    pub(crate) fn pte_alloc(&mut self, pid: u32, va: u64) -> std::result::Result<usize, PteAlloc> {
        if let Some(idx) = self.mmx(pid).pt.pte_index(va) {
            return Ok(idx);
        }
        let used: u64 = self.mms.iter().flatten().map(|m| m.pt.table_bytes()).sum();
        if used >= self.page_table_limit() {
            return Err(PteAlloc::NoMemory);
        }
        let pt = &self.mmx(pid).pt;
        let before = pt.nr_page_tables() + pt.nr_upper_tables();
        let idx = self.mmx_mut(pid).pt.pte_alloc(va).ok_or(PteAlloc::OutOfReach)?;
        if !self.pgtable_alloc(pid, before) {
            return Err(PteAlloc::NoMemory);
        }
        Ok(idx)
    }

    /// The bytes of page tables the model allows in all: four times the memory, at least
    /// 256 MiB. The kernel would fail sooner (its tables come out of that memory); the margin
    /// is for the model's own sparse layouts, such as a trace replay's hashed keys spread over
    /// 1 TiB of address space, whose tables can outweigh the pages they map.
    pub fn page_table_limit(&self) -> u64 {
        (self.mem.nr_pages() * 4096).saturating_mul(4).max(256 << 20)
    }

    /// `ptep_clear_flush` / `ptep_get_and_clear`.
    #[inline]
    pub fn ptep_clear_flush(&mut self, pid: u32, idx: usize) -> u64 {
        let none = self.arch().pte_none_val();
        self.ptep_xchg(pid, idx, none)
    }

    /// `ptep_test_and_clear_young`: make the PTE old; return whether it was young.
    pub fn ptep_test_and_clear_young(&mut self, pid: u32, idx: usize) -> bool {
        let cur = self.mmx(pid).pt.pte(idx);
        let old = self.ptep_xchg(pid, idx, self.arch().pte_mkold(cur));
        self.arch().pte_young(old)
    }

    /// `set_pte_at` (s390: `ptep_set_pte_at` in a PGSTE mm; `_PAGE_UNUSED` never stored).
    pub fn set_pte_at(&mut self, pid: u32, idx: usize, entry: u64) {
        match self.arch() {
            Arch::S390x => {
                let smm = self.s390mm(pid);
                let mm = self.mms[Self::slot(pid)].as_mut().expect("live pid");
                let (pte, pgste) = mm.pt.slot_mut(idx);
                s390pt::set_pte_at(&smm, &mut self.mem, pte, pgste, Pte(entry));
            }
            Arch::X86_64 => self.mmx_mut(pid).pt.set_pte(idx, entry),
        }
    }

    /// `pte_clear`: store the empty PTE without any exchange logic.
    pub fn pte_clear(&mut self, pid: u32, idx: usize) {
        let none = self.arch().pte_none_val();
        self.mmx_mut(pid).pt.set_pte(idx, none);
    }

    /// `ptep_set_access_flags`: install `entry` if it differs. Returns whether it changed.
    pub fn ptep_set_access_flags(&mut self, pid: u32, idx: usize, entry: u64) -> bool {
        if self.mmx(pid).pt.pte(idx) == entry {
            return false;
        }
        self.ptep_xchg(pid, idx, entry);
        true
    }

    /// The first page at or after `addr` and below `end` that a page table of `pid` covers, with
    /// its PTE slot (loops over a range visit only these: an untouched TiB costs nothing).
    #[inline]
    pub(crate) fn next_pte_slot(&self, pid: u32, addr: u64, end: u64) -> Option<(u64, usize)> {
        self.mmx(pid).pt.next_slot(addr, end)
    }

    /// The PTE value at `addr` of `pid`, if a page table covers it.
    pub fn pte_at(&self, pid: u32, addr: u64) -> Option<u64> {
        let mm = self.mmx(pid);
        mm.pt.pte_index(addr).map(|i| mm.pt.pte(i))
    }

    // ---------------------------------------------------------- page references, rss

    /// `get_page` / `folio_get` (include/linux/mm.h, 4.17 and 6.12).
    #[inline]
    pub fn get_page(&mut self, pfn: u32) {
        self.mem.inc_refcount(pfn);
    }

    /// `put_page` (include/linux/mm.h → mm/swap.c `__put_page` 4.17, `__folio_put` 6.12): drop a
    /// reference; the last one takes the page off its LRU list and frees it.
    pub fn put_page(&mut self, pfn: u32) {
        if pfn == ZERO_PFN {
            return;
        }
        debug_assert!(self.mem.frames[pfn as usize].referenced(), "put_page on a free page {pfn}");
        if self.mem.dec_refcount(pfn) == 0 {
            if self.mem.frames[pfn as usize].test(pg::PG_LRU) {
                self.lru.del(&mut self.mem.frames, pfn);
            }
            self.free_frame(pfn);
            self.vmstat.inc(Vm::pgfree);
        }
    }

    #[inline]
    pub fn add_rss(&mut self, pid: u32, counter: usize, delta: i64) {
        self.mmx_mut(pid).rss[counter] += delta;
    }

    /// `mm_counter(page)`: MM_ANONPAGES for anon pages, else `mm_counter_file`: MM_SHMEMPAGES
    /// for swap-backed (shmem) pages, MM_FILEPAGES otherwise.
    pub fn mm_counter(&self, pfn: u32) -> usize {
        let f = &self.mem.frames[pfn as usize];
        if f.anon() {
            crate::mm::MM_ANONPAGES
        } else if f.test(pg::PG_SWAPBACKED) {
            crate::mm::MM_SHMEMPAGES
        } else {
            crate::mm::MM_FILEPAGES
        }
    }

    /// Advance the clock.
    #[inline]
    pub fn tick(&mut self, ns: u64) {
        self.now += ns;
        if self.memcg_flush_due() {
            self.flush_memcg_stats_dwork();
        }
    }

    /// Hash the model state that decides future behaviour (tables, swap, LRU, userfaultfd,
    /// KVM state), not the clock, counters or log: the explorer's notion of "the same state".
    /// It covers everything [`Kernel::check_invariants`] reads but the profile (one per
    /// search), so the explorer checks the invariants of a state once per key: the free VMA
    /// slots too (their order decides the id of the next VMA) and the pinned frames.
    pub fn state_hash<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        self.mem.hash(h);
        self.mms.hash(h);
        self.vmas.hash(h);
        self.vma_free.hash(h);
        self.pinned.hash(h);
        self.anon_vmas.hash(h);
        self.files.hash(h);
        self.swap.hash(h);
        self.swap_wb.hash(h);
        self.lru.hash(h);
        self.uffds.hash(h);
        self.kswapd.hash(h);
        self.cbrl.hash(h);
        self.cmma_dirty.hash(h);
        self.kvm_migration_mode.hash(h);
    }

    /// Bytes of heap the model's state takes (frames, page tables, swap, log).
    pub fn heap_bytes(&self) -> usize {
        let pts: usize = self.mms.iter().flatten().map(|m| m.pt.heap_bytes()).sum();
        self.mem.heap_bytes() + pts + self.swap.heap_bytes() + self.log.len() * std::mem::size_of::<Event>()
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::s390::pte::Pte;
    use crate::fault::Access;
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::profile::PROFILE_NAMES;
    use crate::testutil::kernel;

    /// s390 `mk_pte` (arch/s390/include/asm/pgtable.h, the same in 4.13, 4.17, 4.18 and
    /// 6.12.117: `if (pte_write(__pte) && PageDirty(page)) __pte = pte_mkdirty(__pte);`): a read
    /// fault on a PG_dirty shmem page through a writable MAP_SHARED mapping (do_read_fault →
    /// finish_fault → mk_pte with the VMA's shared writable protection) maps it dirty and
    /// writable, not hardware-protected, so the write that follows takes no protection fault.
    #[test]
    fn s390_read_fault_on_a_dirty_shared_shmem_page_maps_it_dirty_and_writable() {
        for p in PROFILE_NAMES {
            let mut k = kernel(p);
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
            assert_eq!(k.access(pid, 0, a, true, 7).unwrap(), Access::Done { value: 7 });
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap());
            // MADV_DONTNEED zaps the PTE; the page stays in the page cache, PG_dirty
            k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
            assert!(k.mem.frames[pfn as usize].test(pg::PG_DIRTY), "{p}");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 7 }, "{p}");
            let pte = Pte(k.pte_at(pid, a).unwrap());
            assert!(pte.write() && pte.dirty(), "{p}: {pte:?}");
            assert!(!pte.hw_protect() && !pte.hw_invalid(), "{p}: {pte:?}");
            let faults = k.vmstat.get(Vm::pgfault);
            assert_eq!(k.access(pid, 0, a, true, 8).unwrap(), Access::Done { value: 8 }, "{p}");
            assert_eq!(k.vmstat.get(Vm::pgfault), faults, "{p}: no protection fault");
            k.check_invariants().unwrap();
        }
    }
}
