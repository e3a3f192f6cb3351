//! Replay of a trace against one kernel: every request is one access of a process that maps
//! the trace's pages, under host memory smaller than the trace so that reclaim runs.
//!
//! Before the replay, two streaming passes read the trace: the first finds the requests and
//! the range of keys (and checks the whole file, so that a malformed trace fails before the
//! kernel is built), the second counts the distinct pages. The replay pass then reads it a
//! third time; no pass holds more than one record.
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

use super::{Format, Reader};
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
    /// Wall-clock seconds of the replay pass so far, and of the two passes before it.
    pub seconds: f64,
    pub scan_seconds: f64,
    base: u64,
    as_recorded: bool,
    reader: Reader<super::Input>,
    path: PathBuf,
}

/// The first pass: requests (up to `limit`) and the smallest and largest key.
fn scan_keys<R: std::io::BufRead>(r: &mut Reader<R>, limit: u64) -> Result<(u64, u64, u64)> {
    let (mut n, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
    while n < limit {
        let Some(q) = r.next_request()? else { break };
        n += 1;
        lo = lo.min(q.key);
        hi = hi.max(q.key);
    }
    Ok((n, lo, hi))
}

/// The second pass: distinct pages of the first `n` requests under `map`, of `pages`.
fn scan_distinct<R: std::io::BufRead>(r: &mut Reader<R>, n: u64, map: PageMap, pages: u64) -> Result<u64> {
    let mut seen = Bitmap::new(pages);
    for _ in 0..n {
        let Some(q) = r.next_request()? else { break };
        seen.set(map.page(q.key));
    }
    Ok(seen.count())
}

impl Replay {
    /// Read the trace twice (requests, keys, distinct pages), then build the kernel and the
    /// process, ready to [`advance`](Replay::advance).
    pub fn open(path: &Path, cfg: &ReplayConfig) -> Result<Replay> {
        let t0 = Instant::now();
        if cfg.limit == Some(0) {
            return Err(Error::invalid("limit must be at least 1: a replay of 0 requests replays nothing"));
        }
        let limit = cfg.limit.unwrap_or(u64::MAX);
        let (format, mut r) = super::open(path, cfg.format)?;
        let (total, lo, hi) = scan_keys(&mut r, limit)?;
        if total == 0 {
            return Err(Error::invalid(format!("{} holds no request to replay", path.display())));
        }
        let (map, pages) = match hi - lo {
            d if d < MAX_PAGES => (PageMap::Offset { first: lo }, d + 1),
            _ => (PageMap::Hashed, MAX_PAGES),
        };
        let distinct_pages = scan_distinct(&mut super::open(path, Some(format))?.1, total, map, pages)?;
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
        // per-page events would make a log of gigabytes: keep those of reclaim as a whole
        kernel.mute_per_page();
        if let Some(z) = cfg.guest {
            kernel.set_guest_zone(z)?;
        }
        if let Some(t) = cfg.guest_tmpfs {
            kernel.add_guest_tmpfs(t)?;
        }
        if let Some(c) = cfg.page_cluster {
            kernel.set_page_cluster(c)?;
        }
        if cfg.one_cpu {
            kernel.set_kswapd_mode(KswapdMode::OneCpu);
        }
        let pid = kernel.spawn("replay", cfg.kvm)?;
        let kind = if cfg.shmem { MapKind::Shmem } else { MapKind::Anon };
        let base = kernel.mmap(pid, pages << 12, kind, cfg.shmem, None)?;
        let (_, reader) = super::open(path, Some(format))?;
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
            path: path.to_path_buf(),
        })
    }

    /// Replay up to `n` more requests. Returns whether the replay is done.
    pub fn advance(&mut self, n: u64) -> Result<bool> {
        let t0 = Instant::now();
        let end = self.total.min(self.done.saturating_add(n));
        let arch = self.kernel.arch();
        while self.done < end {
            let Some(q) = self.reader.next_request()? else {
                return Err(Error::Io(format!(
                    "{} ended after {} requests, where it had {} before: did it change?",
                    self.path.display(),
                    self.done,
                    self.total
                )));
            };
            let addr = self.base + (self.map.page(q.key) << 12);
            let before = self.kernel.pte_before(self.pid, addr);
            let write = q.write || (!self.as_recorded && arch.pte_none(before));
            let (o, _) = self.kernel.access_accounted_pte(self.pid, 0, addr, write, addr, before)?;
            self.counts.add(o);
            self.done += 1;
        }
        self.seconds += t0.elapsed().as_secs_f64();
        Ok(self.done == self.total)
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
}
