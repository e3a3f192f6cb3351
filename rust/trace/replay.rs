//! Replay of a trace against one kernel: every request is one access of a process that maps
//! the trace's pages, under host memory smaller than the trace so that reclaim runs.
//!
//! Before the replay, one streaming pass reads the trace: it finds the requests, the range of
//! keys and the distinct pages (and checks the whole file, so that a malformed trace fails
//! before the kernel is built). The replay pass then reads it a second time; no pass holds
//! more than a batch of records.
//!
//! Keys become pages of one anonymous mapping ([`PageMap`]). By default the first access to a
//! page is a store, whatever the trace says: it creates the page's data, as a cache fill does
//! (a load of an untouched anonymous page maps the shared zero page, which reclaim never
//! evicts, so a read-only trace would otherwise never miss again). Later loads stay loads.
//! [`ReplayConfig::as_recorded`] offers every access as the trace has it instead (a first load
//! maps the zero page, as `do_anonymous_page` does): what a program replaying the trace on a
//! real kernel does, and what the comparison with a Linux guest uses (issue 18).
//! [`ReplayConfig::guest`] sizes the zone as a guest reported it ([`GuestZone`]).
//!
//! A "miss" is an access to a page that was not resident (its PTE not present: what
//! /proc/pid/pagemap says): a minor fault (first touch, or a refault from the swap cache) or a
//! major fault (read back from swap). The miss ratio is misses / requests; first touches count,
//! as compulsory misses do in a cache simulator.

use super::{Format, Reader, Request};
use crate::error::{Error, Result};
use crate::fault::batch::{Outcome, OutcomeCounts};
use crate::kernel::Kernel;
use crate::mm::MM_ANONPAGES;
use crate::mm::guest_zone::{GuestTmpfs, GuestZone};
use crate::mm::mmap::MapKind;
use crate::mm::vmstat::Vm;
use crate::profile::Profile;
use crate::sim::bitmap::Bitmap;
use crate::vmscan::types::KswapdMode;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// log2 of the largest mapping the model makes (1 TiB of 4 KiB pages).
pub const MAP_SHIFT: u32 = 28;
pub const MAX_PAGES: u64 = 1 << MAP_SHIFT;

/// How trace keys become pages of the replay's mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageMap {
    /// Page `key - first`: the keys span at most [`MAX_PAGES`]; every key its own page.
    Offset { first: u64 },
    /// Keys spread wider (sparse object ids, addresses of a whole address space): Fibonacci
    /// hashing onto [`MAX_PAGES`] pages, `(key * 0x9e3779b97f4a7c15) >> (64 - 28)`. Distinct
    /// keys may share a page (for n keys, about n^2 / 2^29 pairs do).
    Hashed,
}

impl PageMap {
    #[inline]
    pub fn page(self, key: u64) -> u64 {
        match self {
            PageMap::Offset { first } => key - first,
            PageMap::Hashed => key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - MAP_SHIFT),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PageMap::Offset { .. } => "offset",
            PageMap::Hashed => "hashed",
        }
    }
}

/// How much host memory a replay gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemorySize {
    Bytes(u64),
    /// A fraction of the trace's distinct pages (at least the model's 64 pages).
    Fraction(f64),
}

/// What to replay and against what.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    pub profile: Profile,
    /// None: detect it.
    pub format: Option<Format>,
    pub memory: MemorySize,
    /// Bytes of swap; None: enough for every distinct page.
    pub swap: Option<u64>,
    /// A KVM host process (`mm_has_pgste`).
    pub kvm: bool,
    /// Replay only the first `limit` requests.
    pub limit: Option<u64>,
    pub seed: u64,
    /// Offer each access as recorded (a first load maps the zero page) instead of making the
    /// first access to a page a store.
    pub as_recorded: bool,
    /// The mapping: private anonymous memory, or shmem (`MAP_SHARED|MAP_ANONYMOUS`).
    pub shmem: bool,
    /// The zone as a guest reported it: pages held by others and its watermarks.
    pub guest: Option<GuestZone>,
    /// The guest's tmpfs pages (its initramfs), as shmem pages on the LRU before the trace
    /// starts (the oldest), which reclaim may swap out ([`Kernel::add_guest_tmpfs`]).
    pub guest_tmpfs: Option<GuestTmpfs>,
    /// `vm.page-cluster` (swap readahead of up to `1 << page_cluster` pages); None: the
    /// kernel's default for the memory (`swap_setup`).
    pub page_cluster: Option<u32>,
    /// The kernel has one CPU ([`KswapdMode::OneCpu`]: kswapd runs while the process waits for
    /// a swap read, and the process reclaims directly when it outruns kswapd), as the replay
    /// oracle's guests (`-smp 1`); otherwise a woken kswapd runs when the access that woke it
    /// returns.
    pub one_cpu: bool,
    /// How the swap device completes writes ([`SwapIo`](crate::mm::page_io::SwapIo)): at once
    /// (the default, a `SWP_SYNCHRONOUS_IO` device) or queued, as the oracle guests' virtio-blk
    /// disk does.
    pub swap_io: crate::mm::page_io::SwapIo,
    /// A TLB in front of the x86_64 page tables, by geometry name
    /// ([`Kernel::set_x86_tlb`]; `"qemu-tcg-7.2"` for the oracle's guests); None: every access
    /// sets the accessed bit.
    pub x86_tlb: Option<String>,
    /// How reclaim reads the memcg statistics it compares
    /// ([`MemcgStats`](crate::mm::memcontrol::MemcgStats)): live (the default) or as the
    /// oracle's 6.12 guests, flushed every 2 s of the model's cost clock.
    pub memcg_stats: crate::mm::memcontrol::MemcgStats,
    /// The guest's zones DMA and DMA32 with watermark boosting (crate::mm::mmzone) instead of
    /// `guest`'s one summed zone.
    pub guest_zones: Option<GuestZones>,
    /// The guest's clock ([`crate::sched::GuestCost`], an input: the guest's speed, fitted by
    /// the oracle to its kernel runs' durations); with it the memcg flush runs every 2 s of
    /// guest time. None: no guest clock.
    pub guest_clock: Option<crate::sched::GuestCost>,
    /// With `one_cpu` and `guest_clock`: a woken kswapd also gets the CPU when 6.12's scheduler
    /// switches to it at a tick (crate::sched), not only while the process sleeps on a read.
    pub sched_tick: bool,
    /// The page tables take their pages out of the zone's memory, as the guest's
    /// `pte_alloc_one` does ([`Kernel::set_pgtable_pages`]); false: apart from the frames.
    pub pgtable_pages: bool,
    /// The swap cache's xarray nodes take `radix_tree_node` slab pages out of the zone's
    /// memory, as the guest's swap cache does ([`Kernel::set_swap_cache_nodes`]); false: apart
    /// from the frames.
    pub swap_cache_nodes: bool,
    /// The per-cpu page lists of the guest's zones, or of the one zone without `guest_zones`
    /// ([`Kernel::set_pcp_lists`]); false: a freed page goes straight back to its zone.
    pub pcp_lists: bool,
}

/// The zones of an x86_64 guest as it reported them ([`Kernel::set_guest_zones`]) and the
/// rate of its kernel's own non-movable allocations ([`Kernel::set_guest_kernel_alloc_every`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestZones {
    pub dma: crate::mm::mmzone::ZoneSpec,
    pub dma32: crate::mm::mmzone::ZoneSpec,
    pub types: Option<crate::mm::mmzone::PageTypes>,
    pub kernel_alloc_every: u64,
}

/// The replay of one trace, in progress or done.
pub struct Replay {
    pub kernel: Kernel,
    pub pid: u32,
    pub format: Format,
    pub map: PageMap,
    /// Requests to replay.
    pub total: u64,
    /// Requests replayed.
    pub done: u64,
    pub distinct_pages: u64,
    /// Bytes of host memory and of swap the kernel has.
    pub memory: u64,
    pub swap: u64,
    pub counts: OutcomeCounts,
    /// Wall-clock seconds of the replay pass so far, and of the pass before it with the
    /// kernel's set-up.
    pub seconds: f64,
    pub scan_seconds: f64,
    base: u64,
    as_recorded: bool,
    reader: Reader<super::Input>,
    /// Requests read ahead of the replay (`pending[next..]`), and all requests read so far.
    pending: Vec<Request>,
    next: usize,
    read: u64,
    /// The PTE slots the look ahead found (request number, slot, the tables' generation), by
    /// request number modulo [`PTE_AHEAD`]: the frame's look ahead [`PAGE_AHEAD`] requests
    /// before the access, and the read of the PTE the access starts from, use the slot
    /// instead of walking again (the latter only while the tables' generation is the same).
    ahead: [(u64, usize, u64); PTE_AHEAD],
    /// Where the look ahead finds a PTE slot without a walk.
    pts: PtCache,
    path: PathBuf,
    /// The pages on the per-cpu lists after each request, summed (with `pcp_lists`).
    pcp_sum: u64,
}

/// The page table of each page-table-sized span of the replay's mapping, as the look ahead
/// last found it, with the tables' generation then
/// ([`PageTables::tree_gen`](crate::arch::pgtable::PageTables::tree_gen)): while the
/// generation is the same, no table was allocated, freed or linked, so the span's slots are
/// where they were, and a later request's slot is one index computation away instead of a
/// walk of the upper tables ([`PageTables::peek_index`](crate::arch::pgtable::PageTables::peek_index),
/// which fills an entry on a miss). A cache for the look ahead only: what it answers is what
/// `peek_index` answers (debug builds check), and the access's own reads start from it only
/// while the generation holds.
struct PtCache {
    /// The first span's number (`base >> span_shift`).
    first: u64,
    /// log2 of the bytes a page table maps.
    span_shift: u32,
    /// Entries of a page table.
    pt_entries: usize,
    /// Per span: (tables' generation, page table + 1; 0: not known).
    spans: Vec<(u64, u32)>,
}

impl PtCache {
    fn new(kernel: &Kernel, base: u64, bytes: u64) -> Self {
        let pt_entries = kernel.arch().geometry().0.pt_entries;
        let span_shift = 12 + pt_entries.trailing_zeros();
        let first = base >> span_shift;
        let last = (base + bytes.max(1) - 1) >> span_shift;
        PtCache { first, span_shift, pt_entries, spans: vec![(0, 0); (last - first + 1) as usize] }
    }

    /// The PTE slot of `addr` (an address of the mapping) and the tables' generation, or None
    /// where no page table maps it yet.
    #[inline]
    fn slot(&mut self, pt: &crate::arch::pgtable::PageTables, addr: u64) -> Option<(usize, u64)> {
        let generation = pt.tree_gen();
        let offset = ((addr >> 12) as usize) & (self.pt_entries - 1);
        let span = ((addr >> self.span_shift) - self.first) as usize;
        let Some(e) = self.spans.get_mut(span) else {
            return pt.peek_index(addr).map(|i| (i, generation));
        };
        if e.0 == generation && e.1 != 0 {
            let i = (e.1 - 1) as usize * self.pt_entries + offset;
            debug_assert_eq!(Some(i), pt.peek_index(addr), "cached slot of {addr:#x}");
            return Some((i, generation));
        }
        let i = pt.peek_index(addr)?;
        *e = (generation, (i / self.pt_entries) as u32 + 1);
        Some((i, generation))
    }
}

/// Requests the replay reads from the trace at a time ([`Reader::read_batch`]).
const BATCH: usize = 256;

/// How many requests ahead the replay starts loading a request's PTE, and its frame
/// ([`PtCache::slot`], [`Kernel::prefetch_page`]): far enough for a DRAM miss to
/// complete under the requests in between, near enough that reclaim rarely moves the page
/// first (a stale look ahead costs a wasted load, never a different result).
const PTE_AHEAD: usize = 8;
const PAGE_AHEAD: usize = 4;

/// The distinct keys of a trace as one pass reads them, before it knows which [`PageMap`] the
/// keys' range calls for: while the keys span less than [`MAX_PAGES`], a bitmap of keys around
/// the first one (every key then lies within `MAX_PAGES` of it; [`PageMap::Offset`] gives each
/// its own page, so distinct keys are distinct pages); once they span more, a bitmap of
/// [`PageMap::Hashed`] pages, into which the keys seen so far are hashed. The bitmaps are
/// allocated zeroed, so only the parts keys touch take memory.
enum Distinct {
    Offset { first: u64, seen: Bitmap },
    Hashed(Bitmap),
}

impl Distinct {
    /// The bit of `key` in the bitmap around `first`: `key - first + MAX_PAGES`.
    #[inline]
    fn offset_bit(first: u64, key: u64) -> u64 {
        key.wrapping_sub(first).wrapping_add(MAX_PAGES)
    }

    /// Note `key`; `lo` and `hi` are the smallest and largest key so far, `key` included.
    #[inline]
    fn add(&mut self, key: u64, lo: u64, hi: u64) {
        match self {
            Distinct::Offset { first, seen } if hi - lo < MAX_PAGES => {
                seen.set(Self::offset_bit(*first, key));
            }
            Distinct::Offset { first, seen } => {
                let mut hashed = Bitmap::new(MAX_PAGES);
                let mut i = 0;
                while let Some(b) = seen.next_set(i) {
                    hashed.set(PageMap::Hashed.page(b.wrapping_sub(MAX_PAGES).wrapping_add(*first)));
                    i = b + 1;
                }
                hashed.set(PageMap::Hashed.page(key));
                *self = Distinct::Hashed(hashed);
            }
            Distinct::Hashed(seen) => {
                seen.set(PageMap::Hashed.page(key));
            }
        }
    }

    fn count(&self) -> u64 {
        match self {
            Distinct::Offset { seen, .. } | Distinct::Hashed(seen) => seen.count(),
        }
    }
}

/// The pass before the replay: the requests (up to `limit`), the smallest and largest key and
/// the distinct pages under the [`PageMap`] they call for (one pass; it reads, and so checks,
/// every record the replay will).
fn scan<R: std::io::BufRead>(r: &mut Reader<R>, limit: u64) -> Result<(u64, u64, u64, u64)> {
    let (mut n, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
    let mut distinct: Option<Distinct> = None;
    let mut batch = Vec::with_capacity(BATCH);
    while n < limit {
        batch.clear();
        r.read_batch(&mut batch, (limit - n).min(BATCH as u64) as usize)?;
        if batch.is_empty() {
            break;
        }
        n += batch.len() as u64;
        let d =
            distinct.get_or_insert_with(|| Distinct::Offset { first: batch[0].key, seen: Bitmap::new(2 * MAX_PAGES) });
        for q in &batch {
            lo = lo.min(q.key);
            hi = hi.max(q.key);
            d.add(q.key, lo, hi);
        }
    }
    Ok((n, lo, hi, distinct.map_or(0, |d| d.count())))
}

impl Replay {
    /// Read the trace once (requests, keys, distinct pages), then build the kernel and the
    /// process, ready to [`advance`](Replay::advance).
    pub fn open(path: &Path, cfg: &ReplayConfig) -> Result<Replay> {
        let t0 = Instant::now();
        if cfg.limit == Some(0) {
            return Err(Error::invalid("limit must be at least 1: a replay of 0 requests replays nothing"));
        }
        let limit = cfg.limit.unwrap_or(u64::MAX);
        let (format, mut r) = super::open(path, cfg.format)?;
        let (total, lo, hi, distinct_pages) = scan(&mut r, limit)?;
        if total == 0 {
            return Err(Error::invalid(format!("{} holds no request to replay", path.display())));
        }
        let (map, pages) = match hi - lo {
            d if d < MAX_PAGES => (PageMap::Offset { first: lo }, d + 1),
            _ => (PageMap::Hashed, MAX_PAGES),
        };
        let memory = match cfg.memory {
            MemorySize::Bytes(b) => b,
            MemorySize::Fraction(f) if f > 0.0 && f.is_finite() => {
                ((distinct_pages as f64 * f).ceil() as u64).max(64).saturating_mul(4096)
            }
            MemorySize::Fraction(f) => {
                return Err(Error::invalid(format!("memory as a fraction of the trace's pages must be > 0, got {f}")));
            }
        };
        let swap = cfg.swap.unwrap_or((distinct_pages + distinct_pages / 8 + 64) << 12);
        let mut kernel = Kernel::new(cfg.profile.clone(), memory, swap, cfg.seed)?;
        kernel.set_pgtable_pages(cfg.pgtable_pages)?;
        kernel.set_swap_cache_nodes(cfg.swap_cache_nodes)?;
        // per-page events would make a log of gigabytes: keep those of reclaim as a whole
        kernel.mute_per_page();
        if let Some(z) = cfg.guest_zones {
            kernel.set_guest_zones(z.dma, z.dma32, z.types)?;
            kernel.set_guest_kernel_alloc_every(z.kernel_alloc_every)?;
        } else if let Some(z) = cfg.guest {
            kernel.set_guest_zone(z)?;
        }
        // sized from the zones' managed pages and watermarks, which the guest's set
        kernel.set_pcp_lists(cfg.pcp_lists)?;
        if let Some(t) = cfg.guest_tmpfs {
            kernel.add_guest_tmpfs(t)?;
        }
        if let Some(c) = cfg.page_cluster {
            kernel.set_page_cluster(c)?;
        }
        if cfg.one_cpu {
            kernel.set_kswapd_mode(KswapdMode::OneCpu);
        }
        kernel.set_swap_io(cfg.swap_io)?;
        kernel.set_x86_tlb(cfg.x86_tlb.as_deref())?;
        kernel.set_memcg_stats(cfg.memcg_stats)?;
        kernel.set_guest_clock(cfg.guest_clock, cfg.sched_tick)?;
        let pid = kernel.spawn("replay", cfg.kvm)?;
        let kind = if cfg.shmem { MapKind::Shmem } else { MapKind::Anon };
        let base = kernel.mmap(pid, pages << 12, kind, cfg.shmem, None)?;
        let (_, reader) = super::open(path, Some(format))?;
        let pts = PtCache::new(&kernel, base, pages << 12);
        Ok(Replay {
            kernel,
            pid,
            format,
            map,
            total,
            done: 0,
            distinct_pages,
            memory,
            swap,
            counts: OutcomeCounts::default(),
            seconds: 0.0,
            scan_seconds: t0.elapsed().as_secs_f64(),
            base,
            as_recorded: cfg.as_recorded,
            reader,
            pending: Vec::with_capacity(BATCH),
            next: 0,
            read: 0,
            ahead: [(u64::MAX, 0, 0); PTE_AHEAD],
            pts,
            path: path.to_path_buf(),
            pcp_sum: 0,
        })
    }

    /// Replay up to `n` more requests. Returns whether the replay is done.
    pub fn advance(&mut self, n: u64) -> Result<bool> {
        let t0 = Instant::now();
        let end = self.total.min(self.done.saturating_add(n));
        let arch = self.kernel.arch();
        while self.done < end {
            if self.next == self.pending.len() {
                // never read past the requests the scan checked
                self.pending.clear();
                self.next = 0;
                let want = (self.total - self.read).min(BATCH as u64) as usize;
                self.reader.read_batch(&mut self.pending, want)?;
                self.read += self.pending.len() as u64;
                if self.pending.is_empty() {
                    return Err(Error::Io(format!(
                        "{} ended after {} requests, where it had {} before: did it change?",
                        self.path.display(),
                        self.done,
                        self.total
                    )));
                }
            }
            let q = self.pending[self.next];
            // (request numbers: `pending[0]` is request `read - pending.len()`)
            let first = self.read - self.pending.len() as u64;
            let cur = first + self.next as u64;
            // this request's slot, before the look ahead below reuses its place
            let found = self.ahead[cur as usize % PTE_AHEAD];
            // the trace is known ahead: start loading the PTE of a later request and the frame
            // of a nearer one (whose PTE an earlier look ahead brought in), so that their cache
            // misses overlap the work of this one
            if let Some(p) = self.pending.get(self.next + PTE_AHEAD) {
                let n = first + (self.next + PTE_AHEAD) as u64;
                let pt = &self.kernel.mmx(self.pid).pt;
                if let Some((i, generation)) = self.pts.slot(pt, self.base + (self.map.page(p.key) << 12)) {
                    pt.prefetch_slot(i);
                    self.ahead[n as usize % PTE_AHEAD] = (n, i, generation);
                }
            }
            if let Some(p) = self.pending.get(self.next + PAGE_AHEAD) {
                let n = first + (self.next + PAGE_AHEAD) as u64;
                match self.ahead[n as usize % PTE_AHEAD] {
                    (m, i, _) if m == n => self.kernel.prefetch_page_at(self.pid, i),
                    _ => self.kernel.prefetch_page(self.pid, self.base + (self.map.page(p.key) << 12)),
                }
            }
            self.next += 1;
            let addr = self.base + (self.map.page(q.key) << 12);
            // the slot, while the tables keep their shape, is also where the access's first
            // walk would arrive: it starts there
            let (before, slot) = match found {
                (m, i, generation) if m == cur => match self.kernel.pte_in_slot(self.pid, i, generation) {
                    Some(pte) => (pte, Some(i)),
                    None => (self.kernel.pte_before(self.pid, addr), None),
                },
                _ => (self.kernel.pte_before(self.pid, addr), None),
            };
            debug_assert_eq!(before, self.kernel.pte_before(self.pid, addr), "look ahead's slot of {addr:#x}");
            let write = q.write || (!self.as_recorded && arch.pte_none(before));
            let (o, _) = self.kernel.access_accounted_pte(self.pid, 0, addr, write, addr, before, slot)?;
            self.counts.add(o);
            self.kernel.guest_request_done();
            if let Some((dma, dma32)) = self.kernel.pcp_count() {
                self.pcp_sum += dma + dma32;
            }
            self.done += 1;
        }
        self.seconds += t0.elapsed().as_secs_f64();
        Ok(self.done == self.total)
    }

    /// The mean of the pages on the per-cpu lists after each request so far (with
    /// `pcp_lists`), else None.
    pub fn pcp_pages_mean(&self) -> Option<f64> {
        self.kernel.pcp_count()?;
        Some(if self.done == 0 { 0.0 } else { self.pcp_sum as f64 / self.done as f64 })
    }

    /// Pages reclaim took from the process's memory (`pgsteal_kswapd + pgsteal_direct`).
    pub fn pages_reclaimed(&self) -> u64 {
        self.kernel.vm_event(Vm::pgsteal_kswapd) + self.kernel.vm_event(Vm::pgsteal_direct)
    }

    /// Pages written to swap (`pswpout`).
    pub fn pages_swapped_out(&self) -> u64 {
        self.kernel.vm_event(Vm::pswpout)
    }

    /// Pages of the trace resident now (the process's `MM_ANONPAGES`).
    pub fn resident_pages(&self) -> u64 {
        self.kernel.mmx(self.pid).rss[MM_ANONPAGES].max(0) as u64
    }

    /// Requests a second of the replay pass.
    pub fn requests_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.done as f64 / self.seconds } else { 0.0 }
    }

    /// Accesses that completed as `o`.
    pub fn count(&self, o: Outcome) -> u64 {
        self.counts.get(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::trace::{Columns, write, write_zipf};

    fn cfg(memory: MemorySize) -> ReplayConfig {
        ReplayConfig {
            profile: Profile::get("6.12", Arch::S390x).unwrap(),
            format: None,
            memory,
            swap: None,
            kvm: false,
            limit: None,
            seed: 0,
            as_recorded: false,
            shmem: false,
            guest: None,
            guest_tmpfs: None,
            page_cluster: None,
            one_cpu: false,
            swap_io: Default::default(),
            x86_tlb: None,
            memcg_stats: Default::default(),
            guest_zones: None,
            guest_clock: None,
            sched_tick: false,
            pgtable_pages: false,
            swap_cache_nodes: false,
            pcp_lists: false,
        }
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("reclaim-replay-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_zipf_trace_under_pressure_misses_and_swaps_and_is_deterministic() {
        let p = tmp("zipf.bin");
        write_zipf(&p, Format::Binary, 40_000, 2000, 0.9, 0.0, 1).unwrap();
        let run = |c: &ReplayConfig| {
            let mut r = Replay::open(&p, c).unwrap();
            while !r.advance(7000).unwrap() {}
            r
        };
        let r = run(&cfg(MemorySize::Fraction(0.25)));
        assert_eq!((r.format, r.map, r.done), (Format::Binary, PageMap::Offset { first: 0 }, 40_000));
        assert!(r.distinct_pages > 1500 && r.distinct_pages <= 2000, "{}", r.distinct_pages);
        assert_eq!(r.counts.total(), 40_000);
        // every distinct page is first touched once: a minor fault
        assert!(r.count(Outcome::Minor) >= r.distinct_pages);
        assert!(r.count(Outcome::Major) > 1000 && r.pages_swapped_out() > 1000);
        let miss = r.counts.miss_ratio();
        assert!((0.2..0.7).contains(&miss), "{miss}");
        assert!(r.resident_pages() <= r.kernel.memory_bytes() / 4096);
        r.kernel.check_invariants().unwrap();
        // the same trace, the same run; more memory, fewer misses
        let again = run(&cfg(MemorySize::Fraction(0.25)));
        assert_eq!((again.counts, again.kernel.log_hash()), (r.counts, r.kernel.log_hash()));
        let roomy = run(&cfg(MemorySize::Fraction(2.0)));
        assert_eq!(roomy.counts.misses(), roomy.distinct_pages);
        assert_eq!(roomy.count(Outcome::Major), 0);
        let limited = run(&ReplayConfig { limit: Some(100), ..cfg(MemorySize::Bytes(1 << 20)) });
        assert_eq!((limited.total, limited.counts.total()), (100, 100));
        let zero = Replay::open(&p, &ReplayConfig { limit: Some(0), ..cfg(MemorySize::Bytes(1 << 20)) });
        let e = zero.err().unwrap().to_string();
        assert!(e.contains("limit must be at least 1"), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn sparse_keys_are_hashed_and_bad_input_fails_before_the_kernel_runs() {
        let p = tmp("sparse.oracle");
        let keys: Vec<u64> = (0..500u64).map(|i| (i % 50).wrapping_mul(0x0123_4567_89ab_cdef)).collect();
        write(&p, Format::Oracle, Columns { keys: &keys, writes: None, times: None }).unwrap();
        let mut r = Replay::open(&p, &cfg(MemorySize::Fraction(0.5))).unwrap();
        assert_eq!((r.format, r.map, r.distinct_pages), (Format::Oracle, PageMap::Hashed, 50));
        assert!(r.advance(u64::MAX).unwrap());
        // first touches, and pages swap readahead brought into the swap cache (SWAP_RA_HIT)
        let ra_hits = r.kernel.vmstat.get(crate::mm::vmstat::Vm::swap_ra_hit);
        assert_eq!(r.count(Outcome::Minor), 50 + ra_hits);
        // a truncated file: the error names the offset, before anything ran
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        let e = Replay::open(&p, &cfg(MemorySize::Fraction(0.5))).err().unwrap().to_string();
        assert!(e.contains("at offset 11976: record 499 is cut short"), "{e}");
        std::fs::write(&p, b"").unwrap();
        let e = Replay::open(&p, &cfg(MemorySize::Fraction(0.5))).err().unwrap().to_string();
        assert!(e.contains("holds no request"), "{e}");
        let e = Replay::open(&tmp("missing"), &cfg(MemorySize::Fraction(0.5))).err().unwrap();
        assert!(matches!(e, Error::Io(_)), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn one_pass_counts_the_distinct_pages_of_the_map_the_keys_call_for() {
        // dense keys, then (in the same pass) a key far away: the bitmap by key turns into
        // hashed pages; the count is that of the pages PageMap::Hashed gives every key
        let dense: Vec<u64> = (0..3000u64).map(|i| (1 << 40) + (i * 7919) % 1000).collect();
        for far in [None, Some((1 << 40) + MAX_PAGES), Some((1 << 40) - MAX_PAGES), Some(u64::MAX)] {
            let mut keys = dense.clone();
            keys.extend(far);
            keys.extend(dense.iter().map(|k| k + 5000));
            let p = tmp("distinct.oracle");
            write(&p, Format::Oracle, Columns { keys: &keys, writes: None, times: None }).unwrap();
            let (_, mut r) = super::super::open(&p, Some(Format::Oracle)).unwrap();
            let (n, lo, hi, distinct) = scan(&mut r, u64::MAX).unwrap();
            assert_eq!((n, lo, hi), (keys.len() as u64, *keys.iter().min().unwrap(), *keys.iter().max().unwrap()));
            let map = if hi - lo < MAX_PAGES { PageMap::Offset { first: lo } } else { PageMap::Hashed };
            let pages: std::collections::HashSet<u64> = keys.iter().map(|&k| map.page(k)).collect();
            assert_eq!(distinct, pages.len() as u64, "far key {far:?}");
            assert_eq!(map == PageMap::Hashed, far.is_some_and(|f| f.abs_diff(1 << 40) >= MAX_PAGES));
            // a limit: only the first requests
            let (_, mut r) = super::super::open(&p, Some(Format::Oracle)).unwrap();
            assert_eq!(scan(&mut r, 10).unwrap().0, 10);
            std::fs::remove_file(&p).unwrap();
        }
    }

    #[test]
    fn as_recorded_a_first_load_maps_the_zero_page_and_never_swaps() {
        // a read-only trace over more pages than memory: as recorded, every load of an
        // untouched anonymous page maps the zero page (do_anonymous_page), which takes no
        // memory, so nothing is reclaimed; offered as stores, the same trace swaps
        let p = tmp("reads.bin");
        write_zipf(&p, Format::Binary, 20_000, 2000, 0.9, 0.0, 3).unwrap();
        let run = |as_recorded: bool| {
            let mut r = Replay::open(&p, &ReplayConfig { as_recorded, ..cfg(MemorySize::Fraction(0.25)) }).unwrap();
            while !r.advance(5000).unwrap() {}
            r
        };
        let recorded = run(true);
        assert_eq!(recorded.count(Outcome::Minor), recorded.distinct_pages);
        assert_eq!(
            (recorded.count(Outcome::Major), recorded.pages_swapped_out(), recorded.resident_pages()),
            (0, 0, 0)
        );
        let stores = run(false);
        assert!(stores.count(Outcome::Major) > 0 && stores.pages_swapped_out() > 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_guest_zone_with_held_pages_makes_the_same_trace_miss_more() {
        let p = tmp("guest.bin");
        write_zipf(&p, Format::Binary, 30_000, 3000, 0.9, 1.0, 5).unwrap();
        let run = |guest: Option<GuestZone>| {
            let c = ReplayConfig { guest, ..cfg(MemorySize::Bytes(2048 * 4096)) };
            let mut r = Replay::open(&p, &c).unwrap();
            while !r.advance(u64::MAX).unwrap() {}
            r.kernel.check_invariants().unwrap();
            r
        };
        let whole = run(None);
        let held = run(Some(GuestZone { held: 800, min: 16, low: 20, high: 24 }));
        assert_eq!(held.kernel.watermarks().high, 24);
        assert!(held.count(Outcome::Major) > whole.count(Outcome::Major));
        assert!(held.resident_pages() <= 2048 - 800);
        std::fs::remove_file(&p).unwrap();
    }

    /// `__pte_alloc` → `pte_alloc_one` (mm/memory.c) on s390x: `page_table_alloc`
    /// (arch/s390/mm/pgalloc.c, 6.12.107) takes a whole page for each 256-entry PTE table, so
    /// with `pgtable_pages` the same trace has fewer pages for itself and misses more; the
    /// tables' pages stay reserved, never reclaimed.
    #[test]
    fn s390x_page_tables_take_a_page_of_the_zone_per_256_entry_table() {
        let p = tmp("tables.bin");
        // 6,000 pages over 24 tables of 256 entries, in 3,000 pages of memory
        write_zipf(&p, Format::Binary, 60_000, 6000, 0.9, 1.0, 7).unwrap();
        let run = |pgtable_pages: bool| {
            let guest = Some(GuestZone { held: 0, min: 16, low: 20, high: 24 });
            let c = ReplayConfig { guest, pgtable_pages, ..cfg(MemorySize::Bytes(3000 * 4096)) };
            let mut r = Replay::open(&p, &c).unwrap();
            let tables = r.kernel.mmx(r.pid).pt.nr_page_tables();
            while !r.advance(u64::MAX).unwrap() {}
            r.kernel.check_invariants().unwrap();
            let grown = r.kernel.mmx(r.pid).pt.nr_page_tables() - tables;
            let held = r.kernel.pgtable_pages().map_or(0, |t| t.nr_pages());
            (r, grown, held)
        };
        let (free, grown, held) = run(false);
        let (charged, grown_too, held_charged) = run(true);
        assert_eq!(grown, grown_too);
        assert!(grown >= 24, "{grown} PTE tables");
        assert_eq!(held, 0, "apart from the frames by default");
        assert!(held_charged >= grown as u64, "a page per new PTE table: {held_charged} for {grown}");
        assert!(charged.count(Outcome::Major) > free.count(Outcome::Major));
        assert!(charged.resident_pages() < free.resident_pages());
        std::fs::remove_file(&p).unwrap();
    }
}
