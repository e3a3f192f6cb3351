//! A node's zones as the x86_64 guest of the replay oracle has them: ZONE_DMA (the first
//! 16 MiB) below ZONE_DMA32 (include/linux/mmzone.h, mm/page_alloc.c and mm/vmscan.c 6.12).
//! An opt-in layer (`Kernel::set_guest_zones`, crate::mm::guest_zones, which also holds the
//! kernel's entry points): without it the model has one zone, as before.
//!
//! With it the model's memory is split in two zones: the DMA zone is the first pfns after the
//! zero page, with its own free lists by migratetype and pageblock ([`DmaZone`]); the rest
//! is ZONE_DMA32, the allocator's main free list ([`crate::mm::page::Memory`], whose
//! watermarks become DMA32's). What the zones change:
//!
//! - **zonelist fallback** (`get_page_from_freelist`): a user page comes from DMA32 while it is
//!   above its watermark, else from DMA above DMA's watermark plus `lowmem_reserve`;
//! - **migratetypes and pageblocks** in the DMA zone (`__rmqueue`): a page comes from a
//!   pageblock of its own migratetype; when none has a free page it falls back
//!   (`__rmqueue_claim`, `try_to_steal_block`, `__rmqueue_steal`), and a claim attempt raises
//!   the zone's `watermark_boost` (`boost_watermark`) and sets ZONE_BOOSTED_WATERMARK, on
//!   which `rmqueue` wakes kswapd for that zone only;
//! - **kswapd's `highest_zoneidx`** (`wakeup_kswapd`, `balance_pgdat`, `pgdat_balanced`): a
//!   boosted run reclaims with `reclaim_idx` = ZONE_DMA, and `isolate_lru_folios` passes over
//!   every DMA32 folio (PGSCAN_SKIP) back to the head of its list; on one CPU the boosted run
//!   gives the CPU back after each productive pass with the boost in place (`BoostedRun`).
//!
//! Simplified, and so documented: DMA32 has no migratetypes (its steals and boosts are not
//! modelled); no buddy merging: "a free buddy of order >= `pageblock_order / 2`" (what
//! `can_steal_fallback` asks of a movable allocation's fallback) is an aligned run of 16
//! free pages in the pageblock; the guest kernel's own non-movable allocations, which the
//! model does not run, are a stream the caller gives (`Kernel::guest_kernel_alloc`).
//!
//! - **per-cpu page lists**, when chosen (`Kernel::set_pcp_lists`): each zone's
//!   `struct per_cpu_pages` of the guest's one CPU ([`PerCpuPages`]), which order-0 pages pass
//!   through on their way out of and back into the zone's free lists (crate::mm::page_alloc),
//!   and which `NR_FREE_PAGES`, what the watermark checks read, does not count. They are the
//!   kernel's ([`Pcp`], `Kernel::pcp`), not these zones': without the zones the one zone has
//!   its own.

use crate::mm::page::Watermarks;

/// `pageblock_nr_pages` of x86_64 (`pageblock_order` 9, 2 MiB).
pub const PAGEBLOCK_NR_PAGES: u64 = 512;
/// `pageblock_order` of x86_64.
pub const PAGEBLOCK_ORDER: u32 = 9;
/// `pageblock_order / 2`: the order from which `can_steal_fallback` lets a movable
/// allocation claim a block.
const CLAIM_ORDER: u32 = 4;

/// Zone indices (`enum zone_type`): the model's two zones.
pub const ZONE_DMA: u8 = 0;
pub const ZONE_DMA32: u8 = 1;
/// The highest zone a user page may come from (`gfp_zone(GFP_HIGHUSER_MOVABLE)`): every zone.
pub const ZONE_TOP: u8 = ZONE_DMA32;

/// `enum migratetype` (the per-cpu ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateType {
    Unmovable = 0,
    Movable = 1,
    Reclaimable = 2,
}

impl MigrateType {
    /// `fallbacks[]` (mm/page_alloc.c 6.12): where an allocation of this type looks when its
    /// own free lists are empty.
    fn fallbacks(self) -> [MigrateType; 2] {
        match self {
            MigrateType::Unmovable => [MigrateType::Reclaimable, MigrateType::Movable],
            MigrateType::Movable => [MigrateType::Reclaimable, MigrateType::Unmovable],
            MigrateType::Reclaimable => [MigrateType::Unmovable, MigrateType::Movable],
        }
    }
}

/// A zone as the guest's `/proc/zoneinfo` (and `/proc/pagetypeinfo` for DMA) reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ZoneSpec {
    pub managed: u64,
    /// Pages others held at the start (`managed - free`).
    pub held: u64,
    pub min: u64,
    pub low: u64,
    pub high: u64,
    /// `lowmem_reserve[]` against the highest zone (zoneinfo's last `protection`).
    pub lowmem_reserve: u64,
}

/// The DMA zone's pageblocks by migratetype, as `/proc/pagetypeinfo` counts them: blocks of
/// each type and the free pages in each type's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PageTypes {
    pub unmovable_blocks: u64,
    pub reclaimable_blocks: u64,
    pub unmovable_free: u64,
    pub reclaimable_free: u64,
}

/// What a page of the DMA zone is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Free,
    /// A user page (`PageLRU`: what `prep_move_freepages_block` counts movable).
    Movable,
    /// The kernel's: held at the start, or a `Kernel::guest_kernel_alloc` page.
    Kernel,
    /// Free, on the per-cpu lists (not `PageBuddy`: neither a free buddy nor movable to
    /// `prep_move_freepages_block`).
    Pcp,
}

/// One pageblock of the DMA zone: pfns `[start, start + len)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) start: u32,
    pub(crate) len: u32,
    pub(crate) mt: MigrateType,
}

/// ZONE_DMA: its free lists per migratetype (LIFO, order 0), its pageblocks, watermarks and
/// boost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaZone {
    /// pfns `[start, end)`.
    pub start: u32,
    pub end: u32,
    pub(crate) free: [Vec<u32>; 3],
    pub(crate) blocks: Vec<Block>,
    pub(crate) uses: Vec<Use>,
    pub wmark: Watermarks,
    pub lowmem_reserve: u64,
    /// `zone->watermark_boost`.
    pub watermark_boost: u64,
    /// ZONE_BOOSTED_WATERMARK.
    pub boosted_flag: bool,
}

/// CONFIG_PCP_BATCH_SCALE_MAX (mm/Kconfig 6.12.117, default 5): how far `alloc_factor` and
/// `free_count` scale the batch.
pub const PCP_BATCH_SCALE_MAX: u32 = 5;
/// MIN_PERCPU_PAGELIST_HIGH_FRACTION (mm/page_alloc.c 6.12.117): `high_max` is this fraction
/// of the zone's managed pages.
const MIN_PERCPU_PAGELIST_HIGH_FRACTION: u64 = 8;

/// `zone_batchsize` (mm/page_alloc.c 6.12.117) of a zone of `managed` pages, as
/// `zone_set_pageset_high_and_batch` takes it (at least 1): ~0.1% of the zone or 1 MiB,
/// whichever is smaller, divided by 4 and clamped to a 2^n - 1 value.
pub fn zone_batchsize(managed: u64) -> u64 {
    let batch = ((managed >> 10).min(256) / 4).max(1);
    let x = batch + batch / 2;
    let pow2 = 1u64 << (63 - x.leading_zeros());
    (pow2 - 1).max(1)
}

/// `zone_highsize` (mm/page_alloc.c 6.12.117) on a node of `cpus` CPUs (`nr_split_cpus`, as
/// `zone_pcp_update(zone, 0)` after `setup_per_zone_wmarks` counts them): `total_pages` (the
/// zone's low watermark for `high_min`, `managed / 8` for `high_max` with
/// `percpu_pagelist_high_fraction` 0) split over the CPUs, at least `batch << 2`.
pub fn zone_highsize(total_pages: u64, batch: u64, cpus: u64) -> u64 {
    (total_pages / cpus.max(1)).max(batch << 2)
}

/// `struct per_cpu_pages` (include/linux/mmzone.h 6.12.117) of one zone on one CPU: the
/// order-0 lists by migratetype (`lists[order_to_pindex(mt, 0)]`, the head first), the pages
/// on them (`count`), the auto-tuned `high` between `high_min` and `high_max`, `batch`,
/// `free_count` and `alloc_factor`. The higher orders' lists and the PCPF_* flags are not
/// modelled: the model's pages are all order 0, whose frees only clear
/// PCPF_PREV_FREE_HIGH_ORDER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerCpuPages {
    pub count: u64,
    pub high: u64,
    pub high_min: u64,
    pub high_max: u64,
    pub batch: u64,
    pub free_count: u64,
    pub alloc_factor: u32,
    pub(crate) lists: [std::collections::VecDeque<u32>; 3],
}

impl PerCpuPages {
    /// The pageset `zone_set_pageset_high_and_batch(zone, 0)` gives a zone of `managed` pages
    /// and low watermark `low` on a node of `cpus` CPUs, its lists empty and `high` at
    /// `high_min` (`nr_pcp_alloc` and `nr_pcp_high` clamp it there before any use).
    pub fn new(managed: u64, low: u64, cpus: u64) -> PerCpuPages {
        let batch = zone_batchsize(managed);
        let high_min = zone_highsize(low, batch, cpus);
        let high_max = zone_highsize(managed / MIN_PERCPU_PAGELIST_HIGH_FRACTION, batch, cpus);
        PerCpuPages {
            count: 0,
            high: high_min,
            high_min,
            high_max,
            batch,
            free_count: 0,
            alloc_factor: 0,
            lists: Default::default(),
        }
    }

    fn clamp_high(&mut self) -> u64 {
        self.high = self.high.clamp(self.high_min, self.high_max.max(self.high_min));
        self.high
    }

    /// `nr_pcp_alloc` (mm/page_alloc.c 6.12.117) for an order-0 refill: the pages
    /// `rmqueue_bulk` is asked for. `batch << alloc_factor`, growing `high` by it while the
    /// zone is not below its high watermark (`below_high`: ZONE_BELOW_HIGH), at most
    /// `high - count - batch` (at least `batch`); `alloc_factor` doubles the next refill
    /// while the refills come without frees in between.
    pub fn nr_pcp_alloc(&mut self, below_high: bool) -> u64 {
        let base = self.batch as i64;
        let mut high = self.clamp_high() as i64;
        if high < base {
            return 1;
        }
        let mut batch = base << self.alloc_factor;
        if self.high_min != self.high_max && !below_high {
            high = (high + batch).min(self.high_max as i64);
            self.high = high as u64;
        }
        let max_nr_alloc = (high - self.count as i64 - base).max(base);
        if batch <= max_nr_alloc && self.alloc_factor < PCP_BATCH_SCALE_MAX {
            self.alloc_factor += 1;
        }
        batch = batch.min(max_nr_alloc);
        if batch > 1 { batch.max(2) as u64 } else { batch as u64 }
    }

    /// `nr_pcp_high` (mm/page_alloc.c 6.12.117) of an order-0 free: the count at which the free
    /// drains the lists. With `reclaim_active` (ZONE_RECLAIM_ACTIVE: kswapd is reclaiming the
    /// zone) `high` drops by the pages freed in a row and the lists keep at most
    /// `batch << 2`; below the high watermark (`below_high`) `high` drops the same way and
    /// the lists keep what they hold, at least `high_min`; otherwise a full list raises
    /// `high` to hold the pages freed in a row.
    pub fn nr_pcp_high(&mut self, reclaim_active: bool, below_high: bool) -> u64 {
        let high = self.clamp_high() as i64;
        if high == 0 {
            return 0;
        }
        let (batch, high_min) = (self.batch as i64, self.high_min as i64);
        if reclaim_active {
            let free_count = (self.free_count as i64).max(batch);
            self.high = (high - free_count).max(high_min) as u64;
            return (batch << 2).min(self.high as i64) as u64;
        }
        if self.high_min == self.high_max {
            return high as u64;
        }
        if below_high {
            let free_count = (self.free_count as i64).max(batch);
            self.high = (high - free_count).max(high_min) as u64;
            return self.count.max(self.high_min);
        }
        if self.count as i64 >= high {
            let need_high = self.free_count + self.batch;
            if self.high < need_high {
                self.high = need_high.clamp(self.high_min, self.high_max);
            }
        }
        high as u64
    }

    /// `nr_pcp_free` (mm/page_alloc.c 6.12.117) of an order-0 free that reached `high`: the
    /// pages freed in a row (`free_count`), at least `batch`, leaving at least `batch`.
    pub fn nr_pcp_free(&self, high: u64) -> u64 {
        let (batch, high) = (self.batch as i64, high as i64);
        if high < batch {
            return 1;
        }
        let (lo, hi, v) = (batch, high - batch, self.free_count as i64);
        // clamp_t: "val >= hi ? hi : (val <= lo ? lo : val)"
        (if v >= hi {
            hi
        } else if v <= lo {
            lo
        } else {
            v
        }) as u64
    }

    /// The pcp state's own consistency: `count` is the pages on the lists.
    pub fn check(&self) -> std::result::Result<(), String> {
        let n: usize = self.lists.iter().map(|l| l.len()).sum();
        if n as u64 != self.count {
            return Err(format!("pcp count {} but {n} pages on the lists", self.count));
        }
        Ok(())
    }
}

/// The per-cpu lists of the zones on the guest's one CPU, with the zone flags they read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcp {
    /// `zone->per_cpu_pageset` of the one CPU, by zone index (ZONE_DMA, ZONE_DMA32): both with
    /// the guest zones; without them only the one zone's, at ZONE_TOP (the index
    /// `page_zonenum` gives its pages).
    pub pageset: [Option<PerCpuPages>; 2],
    /// ZONE_RECLAIM_ACTIVE ("kswapd may be scanning the zone", set and cleared by
    /// `balance_pgdat`'s `set_reclaim_active`/`clear_reclaim_active`), by zone index.
    pub reclaim_active: [bool; 2],
    /// ZONE_BELOW_HIGH (set by `get_page_from_freelist` when the zone fails its high
    /// watermark, cleared by a free that drains the lists above it), by zone index.
    pub below_high: [bool; 2],
    /// The guest time (ns) of the next `vmstat_update` (every `sysctl_stat_interval` = HZ),
    /// whose `refresh_cpu_vm_stats` decays `high` (`decay_pcp_high`).
    pub next_vmstat_update: u64,
}

impl Pcp {
    /// The pageset of `zone`, which has one (`zone_pcp_init`: every populated zone).
    pub fn zone(&self, zone: u8) -> &PerCpuPages {
        self.pageset[zone as usize].as_ref().expect("a zone with a pageset")
    }

    pub(crate) fn zone_mut(&mut self, zone: u8) -> &mut PerCpuPages {
        self.pageset[zone as usize].as_mut().expect("a zone with a pageset")
    }

    /// The zones with a pageset, lowest first (the order `drain_all_pages` visits them).
    pub fn zones(&self) -> impl Iterator<Item = u8> + use<> {
        let has = [self.pageset[0].is_some(), self.pageset[1].is_some()];
        (0..2u8).filter(move |&z| has[z as usize])
    }

    /// The lists' consistency: each count is its pages, each page once, a DMA page (of the
    /// guest zones, `dma`) on them `Use::Pcp` and a DMA32 one outside DMA.
    pub fn check(&self, dma: Option<&DmaZone>) -> std::result::Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (zone, p) in self.pageset.iter().enumerate() {
            let Some(p) = p else { continue };
            p.check()?;
            for &pfn in p.lists.iter().flatten() {
                if !seen.insert(pfn) {
                    return Err(format!("pfn {pfn} is twice on the per-cpu lists"));
                }
                let Some(dma) = dma else { continue };
                let in_dma = dma.contains(pfn);
                if in_dma != (zone == ZONE_DMA as usize) || (in_dma && dma.uses[(pfn - dma.start) as usize] != Use::Pcp)
                {
                    return Err(format!("pfn {pfn} is on zone {zone}'s per-cpu list, not its own or not free"));
                }
            }
        }
        Ok(())
    }
}

/// HZ of `sysctl_stat_interval` (mm/vmstat.c 6.12.117): one second, in ns.
pub const STAT_INTERVAL_NS: u64 = 1_000_000_000;

/// The zone layer of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zones {
    pub dma: DmaZone,
    /// `pgdat->kswapd_highest_zoneidx` (None: MAX_NR_ZONES, no request pending).
    pub kswapd_highest_zoneidx: Option<u8>,
    /// `sc->reclaim_idx` of the running reclaim.
    pub reclaim_idx: u8,
    /// PGSCAN_SKIP of DMA32 folios, boosts (`boost_watermark` calls that raised the boost),
    /// steals (single pages), claims (pageblocks), kcompactd wakes (`wakeup_kcompactd` after
    /// a boosted `balance_pgdat`).
    pub pgskip_dma32: u64,
    pub nr_boosts: u64,
    pub nr_steals: u64,
    pub nr_claims: u64,
    pub compact_daemon_wake: u64,
    /// kcompactd's pending request and timer (crate::mm::compaction).
    pub kcompactd: Kcompactd,
    /// The guest kernel's non-movable allocations: one every `kernel_alloc_every` pages
    /// written to swap (0: none), the count towards it and the page it holds.
    pub kernel_alloc_every: u64,
    pub kernel_alloc_count: u64,
    pub(crate) kernel_page: Option<u32>,
    /// `rmqueue` woke kswapd for a boosted zone: on one CPU it runs when the current access
    /// returns (`Kernel::settle`).
    pub boost_wake_pending: bool,
    /// A boosted `balance_pgdat` that gave the CPU back to the process on one CPU, to be
    /// resumed when kswapd next runs (`Kernel::balance_pgdat`; the boost stays in place
    /// meanwhile).
    pub(crate) boosted_run: Option<BoostedRun>,
}

/// The state of a boosted `balance_pgdat` (mm/vmscan.c 6.12.117) between two of kswapd's turns
/// on one CPU: what its `scan_control` carries from pass to pass (priority, pages reclaimed),
/// `highest_zoneidx`, `nr_boost_reclaim` and the DMA zone's boost it took at the start
/// (`zone_boosts[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BoostedRun {
    pub(crate) priority: i32,
    pub(crate) nr_reclaimed: u64,
    pub(crate) highest: u8,
    pub(crate) nr_boost_reclaim: u64,
    pub(crate) dma_boost: u64,
}

impl DmaZone {
    /// Pages on the zone's free lists (`zone_page_state(zone, NR_FREE_PAGES)`).
    pub fn nr_free(&self) -> u64 {
        self.free.iter().map(|l| l.len() as u64).sum()
    }

    fn block_of(&self, pfn: u32) -> usize {
        self.blocks.iter().position(|b| pfn >= b.start && pfn < b.start + b.len).expect("a DMA pfn")
    }

    /// `get_pfnblock_migratetype` of a DMA page.
    pub(crate) fn pfnblock_migratetype(&self, pfn: u32) -> MigrateType {
        self.blocks[self.block_of(pfn)].mt
    }

    pub fn contains(&self, pfn: u32) -> bool {
        pfn >= self.start && pfn < self.end
    }

    /// `boost_watermark` (mm/page_alloc.c 6.12.117): no boost in a zone smaller than four
    /// pageblocks or with a zero high watermark; else raise it by a pageblock up to
    /// `max(pageblock_nr_pages, high * watermark_boost_factor / 10000)` (factor 15000).
    fn boost_watermark(&mut self) -> bool {
        let managed = (self.end - self.start) as u64;
        if PAGEBLOCK_NR_PAGES * 4 > managed {
            return false;
        }
        let max_boost = self.wmark.high * 15000 / 10000;
        if max_boost == 0 {
            return false;
        }
        let max_boost = max_boost.max(PAGEBLOCK_NR_PAGES);
        self.watermark_boost = (self.watermark_boost + PAGEBLOCK_NR_PAGES).min(max_boost);
        true
    }

    /// The order of the largest free buddy in block `b`: the largest aligned run of 2^order
    /// free pages (no buddy merging is modelled; the buddy allocator would have merged them).
    pub(crate) fn largest_free_order(&self, b: usize) -> u32 {
        let blk = &self.blocks[b];
        let mut best = None;
        for order in 0..=9u32 {
            let n = 1u32 << order;
            let mut found = false;
            let mut s = blk.start - (blk.start - self.start) % n.min(PAGEBLOCK_NR_PAGES as u32);
            while s + n <= blk.start + blk.len {
                if s >= blk.start && (s..s + n).all(|p| self.uses[(p - self.start) as usize] == Use::Free) {
                    found = true;
                    break;
                }
                s += n;
            }
            if !found {
                break;
            }
            best = Some(order);
        }
        best.unwrap_or(0)
    }

    fn count(&self, b: usize, u: Use) -> u64 {
        let blk = &self.blocks[b];
        (blk.start..blk.start + blk.len).filter(|p| self.uses[(p - self.start) as usize] == u).count() as u64
    }

    /// `__move_freepages_block`: the block becomes `mt`, its free pages move to `mt`'s list.
    fn move_freepages_block(&mut self, b: usize, mt: MigrateType) {
        let (start, len, old) = (self.blocks[b].start, self.blocks[b].len, self.blocks[b].mt);
        let moved: Vec<u32> =
            self.free[old as usize].iter().copied().filter(|p| *p >= start && *p < start + len).collect();
        self.free[old as usize].retain(|p| !(*p >= start && *p < start + len));
        self.free[mt as usize].extend(moved);
        self.blocks[b].mt = mt;
    }

    /// `try_to_steal_block` (mm/page_alloc.c 6.12.117) for block `b` and an allocation of
    /// type `start`: boost the zone's watermarks (`boost_watermark`, ZONE_BOOSTED_WATERMARK
    /// with ALLOC_KSWAPD), then claim the whole block when half of it is free or alike
    /// (movable pages for a movable allocation; for a non-movable one falling into a movable
    /// block, the pages neither free nor movable). Returns whether the block was claimed.
    fn try_to_steal_block(&mut self, b: usize, start: MigrateType, zones_boosts: &mut u64) -> bool {
        if self.boost_watermark() {
            self.boosted_flag = true;
            *zones_boosts += 1;
        }
        let free = self.count(b, Use::Free);
        let movable = self.count(b, Use::Movable);
        let alike = if start == MigrateType::Movable {
            movable
        } else if self.blocks[b].mt == MigrateType::Movable {
            PAGEBLOCK_NR_PAGES - (free + movable).min(PAGEBLOCK_NR_PAGES)
        } else {
            0
        };
        if free + alike >= PAGEBLOCK_NR_PAGES / 2 {
            self.move_freepages_block(b, start);
            return true;
        }
        false
    }

    /// `__rmqueue` (mm/page_alloc.c 6.12.117) of one page of type `mt`: its own lists
    /// (`__rmqueue_smallest`), else `__rmqueue_claim` (from the fallback blocks with the
    /// largest free buddies down; a movable allocation only from a buddy of order >=
    /// `pageblock_order / 2`, `can_steal_fallback`), else `__rmqueue_steal` of one page from
    /// the smallest free buddy of a fallback type ([`DmaZone::smallest_fallback_buddy`]).
    /// Returns the pfn and counts boosts, claims and steals into `z`.
    pub(crate) fn rmqueue(&mut self, mt: MigrateType, stats: &mut (u64, u64, u64)) -> Option<u32> {
        if let Some(p) = self.free[mt as usize].pop() {
            return Some(p);
        }
        // __rmqueue_claim: candidates by their largest free buddy, highest order first
        let mut cands: Vec<(u32, usize)> = (0..self.blocks.len())
            .filter(|&b| mt.fallbacks().contains(&self.blocks[b].mt) && self.count(b, Use::Free) > 0)
            .map(|b| (self.largest_free_order(b), b))
            .collect();
        cands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (order, b) in cands {
            if mt == MigrateType::Movable && order < CLAIM_ORDER {
                break; // "if (!can_steal) break;"
            }
            if self.try_to_steal_block(b, mt, &mut stats.0) {
                stats.1 += 1;
                return self.free[mt as usize].pop();
            }
        }
        let (f, at) = self.smallest_fallback_buddy(mt)?;
        let p = self.free[f as usize].remove(at);
        stats.2 += 1;
        Some(p)
    }

    /// `__rmqueue_steal` (mm/page_alloc.c 6.12.117) of an order-0 page: "for (current_order =
    /// order; current_order < NR_PAGE_ORDERS; current_order++)", the fallback types in
    /// `fallbacks[]` order at each order, so the smallest free buddy of a fallback type, split
    /// by `expand`, which hands out its first page (`page_del_and_expand`): the larger
    /// buddies, which `__rmqueue_claim` tries to claim (and boosts the zone for), stay whole.
    /// Among the buddies of one order and type the one freed last (the model's lists are LIFO).
    /// Returns the type and the position of that first page in its free list.
    fn smallest_fallback_buddy(&self, mt: MigrateType) -> Option<(MigrateType, usize)> {
        let mut best: Option<(u32, MigrateType, u32, usize)> = None;
        for f in mt.fallbacks() {
            for (i, &p) in self.free[f as usize].iter().enumerate().rev() {
                let cap = best.map_or(PAGEBLOCK_ORDER, |b| b.0);
                let order = self.buddy_order(p, cap);
                if order < cap || best.is_none() {
                    let first = p - (p - self.start) % (1 << order);
                    best = Some((order, f, first, i));
                }
                if best.is_some_and(|b| b.0 == 0) {
                    break;
                }
            }
            if best.is_some_and(|b| b.0 == 0) {
                break;
            }
        }
        // the buddy's first page is on the list (`check` holds every free page there); were it
        // not, the page that found the buddy is taken
        let (_, f, first, found) = best?;
        let at = self.free[f as usize].iter().position(|&q| q == first).unwrap_or(found);
        Some((f, at))
    }

    /// The order of the free buddy holding free page `pfn` (at most `cap`): the largest
    /// aligned run of 2^order free pages around it within its pageblock, which the buddy
    /// allocator would have merged (`__free_one_page`); aligned as
    /// [`DmaZone::largest_free_order`] aligns.
    fn buddy_order(&self, pfn: u32, cap: u32) -> u32 {
        let blk = &self.blocks[self.block_of(pfn)];
        let mut order = 0;
        while order < cap {
            let n = 1u32 << (order + 1);
            let s = pfn - (pfn - self.start) % n;
            if s < blk.start
                || s + n > blk.start + blk.len
                || !(s..s + n).all(|p| self.uses[(p - self.start) as usize] == Use::Free)
            {
                break;
            }
            order += 1;
        }
        order
    }

    pub(crate) fn free_page(&mut self, pfn: u32) {
        let b = self.block_of(pfn);
        self.uses[(pfn - self.start) as usize] = Use::Free;
        self.free[self.blocks[b].mt as usize].push(pfn);
    }

    /// Check the zone's lists: every free page once, on its block's list, marked free.
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut seen = vec![false; (self.end - self.start) as usize];
        for (mt, list) in self.free.iter().enumerate() {
            for &p in list {
                if !self.contains(p) {
                    return Err(format!("DMA free list {mt} holds pfn {p} outside the zone"));
                }
                let i = (p - self.start) as usize;
                if seen[i] || self.uses[i] != Use::Free || self.blocks[self.block_of(p)].mt as usize != mt {
                    return Err(format!("DMA pfn {p} is twice on the free lists, busy, or on another type's list"));
                }
                seen[i] = true;
            }
        }
        if seen.iter().zip(&self.uses).any(|(s, u)| (*u == Use::Free) != *s) {
            return Err("a free DMA page is on no free list".into());
        }
        Ok(())
    }
}

impl Zones {
    /// `wmark_pages(zone, i) + lowmem_reserve`: the DMA zone's free pages must be above this
    /// (`__zone_watermark_ok`, order 0) for an allocation whose highest zone is `highest`.
    pub fn dma_mark(&self, mark: u64, highest: u8) -> u64 {
        let reserve = if highest > ZONE_DMA { self.dma.lowmem_reserve } else { 0 };
        mark + self.dma.watermark_boost + reserve
    }
}

/// HPAGE_FRAG_CHECK_INTERVAL_MSEC (mm/compaction.c 6.12.117): kcompactd's timeout, in ns.
pub const KCOMPACTD_TIMEOUT_NS: u64 = 500_000_000;

/// kcompactd's state in `pg_data_t` (include/linux/mmzone.h 6.12.117), as crate::mm::compaction
/// counts its wakes: a request not yet served and when its next timeout falls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kcompactd {
    /// `pgdat->kcompactd_highest_zoneidx` of a pending request (None: no request,
    /// `kcompactd_max_order` 0).
    pub(crate) requested: Option<u8>,
    /// The guest time (ns) of kcompactd's last wake: its timeouts fall every
    /// [`KCOMPACTD_TIMEOUT_NS`] after it.
    pub(crate) last_wake: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DMA zone of four pageblocks from pfn 1 (the smallest that `boost_watermark` boosts):
    /// an unmovable one whose free pages are an aligned buddy of order 4 (16 pages from its
    /// 32nd) and one lone page (its 100th), freed before the buddy's pages, and three movable
    /// ones full of user pages.
    fn zone_with_a_free_buddy_and_a_lone_page() -> DmaZone {
        let start = 1u32;
        let len = PAGEBLOCK_NR_PAGES as u32;
        let n = 4 * len;
        let mt = |b: u32| if b == 0 { MigrateType::Unmovable } else { MigrateType::Movable };
        let mut z = DmaZone {
            start,
            end: start + n,
            free: [Vec::new(), Vec::new(), Vec::new()],
            blocks: (0..4).map(|b| Block { start: start + b * len, len, mt: mt(b) }).collect(),
            uses: vec![Use::Kernel; n as usize],
            wmark: Watermarks { min: 64, low: 80, high: 96, min_free_kbytes: 0 },
            lowmem_reserve: 28,
            watermark_boost: 0,
            boosted_flag: false,
        };
        for u in &mut z.uses[PAGEBLOCK_NR_PAGES as usize..] {
            *u = Use::Movable;
        }
        for pfn in std::iter::once(start + 100).chain(start + 32..start + 48) {
            z.free_page(pfn);
        }
        z.check().unwrap();
        z
    }

    /// `__rmqueue_steal` (mm/page_alloc.c 6.12.117) walks the orders upwards ("for
    /// (current_order = order; current_order < NR_PAGE_ORDERS; current_order++)"): a movable
    /// page that falls back into the unmovable block comes from its smallest free buddy, the
    /// lone page, though the buddy's pages were freed after it. The order-4 buddy stays whole,
    /// so the next movable fallback finds it (`can_steal_fallback`), tries to claim the block
    /// (`try_to_steal_block`) and boosts the zone again; only when no smaller buddy is left
    /// does a steal split it (`expand` hands out its first page), and then the largest buddy
    /// left is of order 3: the next fallback steals without a boost.
    #[test]
    fn a_movable_fallback_steals_the_smallest_free_buddy_and_keeps_the_claimable_one_whole() {
        let mut z = zone_with_a_free_buddy_and_a_lone_page();
        let mut stats = (0, 0, 0);
        assert_eq!(z.rmqueue(MigrateType::Movable, &mut stats), Some(101), "the lone page, not the last freed");
        assert_eq!(stats, (1, 0, 1), "a claim attempt (boost), no claim, one page stolen");
        assert_eq!((z.watermark_boost, z.boosted_flag), (PAGEBLOCK_NR_PAGES, true));
        z.uses[100] = Use::Movable;
        assert_eq!(z.largest_free_order(0), 4, "the buddy of order 4 is whole");
        (z.watermark_boost, z.boosted_flag) = (0, false);
        let mut stats = (0, 0, 0);
        assert_eq!(z.rmqueue(MigrateType::Movable, &mut stats), Some(33), "the buddy's first page");
        assert_eq!(stats, (1, 0, 1), "the whole buddy let the fallback boost again");
        z.uses[32] = Use::Movable;
        assert_eq!(z.largest_free_order(0), 3);
        (z.watermark_boost, z.boosted_flag) = (0, false);
        let mut stats = (0, 0, 0);
        assert_eq!(z.rmqueue(MigrateType::Movable, &mut stats), Some(34), "the order-0 buddy left by the split");
        assert_eq!(stats, (0, 0, 1), "no buddy of order 4 left: a steal without a boost");
        z.uses[33] = Use::Movable;
        z.check().unwrap();
    }
}
