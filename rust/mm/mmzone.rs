//! A node's zones as the x86_64 guest of the replay oracle has them: ZONE_DMA (the first
//! 16 MiB) below ZONE_DMA32 (include/linux/mmzone.h, mm/page_alloc.c and mm/vmscan.c 6.12).
//! An opt-in layer ([`Kernel::set_guest_zones`]): without it the model has one zone, as
//! before.
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
//!   every DMA32 folio (PGSCAN_SKIP) back to the head of its list.
//!
//! Simplified, and so documented: DMA32 has no migratetypes (its steals and boosts are not
//! modelled); no buddy merging: "a free buddy of order >= `pageblock_order / 2`" (what
//! `can_steal_fallback` asks of a movable allocation's fallback) is an aligned run of 16
//! free pages in the pageblock; no per-cpu lists; the guest kernel's own non-movable
//! allocations, which the model does not run, are a stream the caller gives
//! ([`Kernel::guest_kernel_alloc`]).

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::{Frame, NO_PFN, Watermarks, pg};

/// `pageblock_nr_pages` of x86_64 (`pageblock_order` 9, 2 MiB).
pub const PAGEBLOCK_NR_PAGES: u64 = 512;
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
enum Use {
    Free,
    /// A user page (`PageLRU`: what `prep_move_freepages_block` counts movable).
    Movable,
    /// The kernel's: held at the start, or a [`Kernel::guest_kernel_alloc`] page.
    Kernel,
}

/// One pageblock of the DMA zone: pfns `[start, start + len)`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Block {
    start: u32,
    len: u32,
    mt: MigrateType,
}

/// ZONE_DMA: its free lists per migratetype (LIFO, order 0), its pageblocks, watermarks and
/// boost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaZone {
    /// pfns `[start, end)`.
    pub start: u32,
    pub end: u32,
    free: [Vec<u32>; 3],
    blocks: Vec<Block>,
    uses: Vec<Use>,
    pub wmark: Watermarks,
    pub lowmem_reserve: u64,
    /// `zone->watermark_boost`.
    pub watermark_boost: u64,
    /// ZONE_BOOSTED_WATERMARK.
    pub boosted_flag: bool,
}

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
    /// The guest kernel's non-movable allocations: one every `kernel_alloc_every` pages
    /// written to swap (0: none), the count towards it and the page it holds.
    pub kernel_alloc_every: u64,
    pub kernel_alloc_count: u64,
    kernel_page: Option<u32>,
    /// `rmqueue` woke kswapd for a boosted zone: on one CPU it runs when the current access
    /// returns ([`Kernel::settle`]).
    pub boost_wake_pending: bool,
}

impl DmaZone {
    /// Pages on the zone's free lists (`zone_page_state(zone, NR_FREE_PAGES)`).
    pub fn nr_free(&self) -> u64 {
        self.free.iter().map(|l| l.len() as u64).sum()
    }

    fn block_of(&self, pfn: u32) -> usize {
        self.blocks.iter().position(|b| pfn >= b.start && pfn < b.start + b.len).expect("a DMA pfn")
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
    fn largest_free_order(&self, b: usize) -> u32 {
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
    /// `pageblock_order / 2`, `can_steal_fallback`), else `__rmqueue_steal` of one page.
    /// Returns the pfn and counts boosts, claims and steals into `z`.
    fn rmqueue(&mut self, mt: MigrateType, stats: &mut (u64, u64, u64)) -> Option<u32> {
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
        // __rmqueue_steal: one page of the first fallback type with a free page
        for f in mt.fallbacks() {
            if let Some(p) = self.free[f as usize].pop() {
                stats.2 += 1;
                return Some(p);
            }
        }
        None
    }

    fn free_page(&mut self, pfn: u32) {
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

/// A free DMA frame: outside the main allocator's list, PG_reserved for it (the zone's own
/// lists hold it, [`DmaZone::check`]).
fn dma_free_frame() -> Frame {
    let mut f = Frame::FREE;
    f.flags = pg::PG_RESERVED;
    f.lru_next = NO_PFN;
    f
}

/// A page as the allocator hands it out (`Memory::take`): refcount 1, no flags.
fn new_page(refcount: u32) -> Frame {
    let mut f = Frame::FREE;
    f.flags = 0;
    f.refcount = refcount;
    f
}

impl Kernel {
    /// Split the model's memory into the zones DMA and DMA32 as a guest reported them
    /// (`/proc/zoneinfo`, `/proc/pagetypeinfo`), instead of [`Kernel::set_guest_zone`]'s one
    /// summed zone: the first `dma.managed` pfns after the zero page are ZONE_DMA, with
    /// `dma.held` of them held by others (kernel pages in its first non-movable block) and
    /// its pageblocks of the types `types` gives (None: the partial block, where the kernel's
    /// reserved low memory sits, unmovable with the held pages in it, the whole ones
    /// movable, as the 96 MiB x86_64 guest's pagetypeinfo has them); the rest is DMA32 with
    /// `dma32.held` pages held. Call it on a fresh kernel. Fails (EINVAL) when the numbers do
    /// not fit the model's memory or the watermarks do not rise.
    pub fn set_guest_zones(&mut self, dma: ZoneSpec, dma32: ZoneSpec, types: Option<PageTypes>) -> Result<()> {
        let free = self.mem.nr_free();
        for (name, z) in [("DMA", dma), ("DMA32", dma32)] {
            if !(z.min <= z.low && z.low <= z.high && z.held < z.managed && z.high < z.managed - z.held) {
                return Err(Error::invalid(format!(
                    "zone {name}: watermarks min {} low {} high {} must rise and stay below its {} free pages",
                    z.min,
                    z.low,
                    z.high,
                    z.managed.saturating_sub(z.held)
                )));
            }
        }
        if dma.managed + dma32.held >= free || dma.managed < PAGEBLOCK_NR_PAGES {
            return Err(Error::invalid(format!(
                "a DMA zone of {} pages and {} held DMA32 pages do not fit the model's {free} free pages",
                dma.managed, dma32.held
            )));
        }
        let mut pfns = Vec::with_capacity(dma.managed as usize);
        for _ in 0..dma.managed {
            let Some(p) = self.mem.take() else { return Err(Error::invalid("the free list ran out")) };
            pfns.push(p);
        }
        let start = pfns[0];
        if pfns.iter().enumerate().any(|(i, p)| *p != start + i as u32) {
            return Err(Error::invalid("set_guest_zones needs a fresh kernel (the DMA pfns must be contiguous)"));
        }
        let end = start + dma.managed as u32;
        // the pageblocks: non-movable ones first (the kernel's early allocations), then movable
        let t = types.unwrap_or(PageTypes {
            unmovable_blocks: 1,
            reclaimable_blocks: 0,
            unmovable_free: (dma.managed % PAGEBLOCK_NR_PAGES).saturating_sub(dma.held),
            reclaimable_free: 0,
        });
        let mut blocks = Vec::new();
        let mut at = start;
        let add = |pages: u64, n: u64, mt: MigrateType, blocks: &mut Vec<Block>, at: &mut u32| {
            let mut left = pages;
            for i in 0..n {
                let len = if i + 1 == n { left } else { left.min(PAGEBLOCK_NR_PAGES) };
                let len = len.min(PAGEBLOCK_NR_PAGES) as u32;
                if len > 0 {
                    blocks.push(Block { start: *at, len, mt });
                    *at += len;
                }
                left -= len as u64;
            }
        };
        let held_in_nonmovable = if t.unmovable_blocks + t.reclaimable_blocks > 0 { dma.held } else { 0 };
        add(t.unmovable_free + held_in_nonmovable, t.unmovable_blocks, MigrateType::Unmovable, &mut blocks, &mut at);
        add(t.reclaimable_free, t.reclaimable_blocks, MigrateType::Reclaimable, &mut blocks, &mut at);
        if at > end {
            return Err(Error::invalid("the guest's non-movable DMA pages exceed the zone"));
        }
        while at < end {
            let len = (end - at).min(PAGEBLOCK_NR_PAGES as u32);
            blocks.push(Block { start: at, len, mt: MigrateType::Movable });
            at += len;
        }
        let mut zone = DmaZone {
            start,
            end,
            free: [Vec::new(), Vec::new(), Vec::new()],
            blocks,
            uses: vec![Use::Free; dma.managed as usize],
            wmark: Watermarks { min: dma.min, low: dma.low, high: dma.high, min_free_kbytes: 0 },
            lowmem_reserve: dma.lowmem_reserve,
            watermark_boost: 0,
            boosted_flag: false,
        };
        // held pages: the first ones (in the non-movable blocks when there are some)
        for p in start..start + dma.held as u32 {
            zone.uses[(p - start) as usize] = Use::Kernel;
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
        }
        // free lists LIFO: the lowest pfns on top, as Memory::new hands them out
        for b in (0..zone.blocks.len()).rev() {
            let blk = zone.blocks[b].clone();
            for p in (blk.start..blk.start + blk.len).rev() {
                if zone.uses[(p - start) as usize] == Use::Free {
                    zone.free[blk.mt as usize].push(p);
                    self.mem.frames[p as usize] = dma_free_frame();
                }
            }
        }
        for _ in 0..dma32.held {
            let Some(p) = self.mem.take() else { return Err(Error::invalid("the free list ran out")) };
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
        }
        let kbytes = self.mem.wmark.min_free_kbytes;
        self.mem.wmark = Watermarks { min: dma32.min, low: dma32.low, high: dma32.high, min_free_kbytes: kbytes };
        self.zones = Some(Box::new(Zones {
            dma: zone,
            kswapd_highest_zoneidx: None,
            reclaim_idx: ZONE_TOP,
            pgskip_dma32: 0,
            nr_boosts: 0,
            nr_steals: 0,
            nr_claims: 0,
            compact_daemon_wake: 0,
            kernel_alloc_every: 0,
            kernel_alloc_count: 0,
            kernel_page: None,
            boost_wake_pending: false,
        }));
        Ok(())
    }

    /// The zone layer, when [`Kernel::set_guest_zones`] set one.
    pub fn zones(&self) -> Option<&Zones> {
        self.zones.as_deref()
    }

    /// Free pages of every zone (`global_zone_page_state(NR_FREE_PAGES)`).
    pub fn nr_free_pages(&self) -> u64 {
        self.mem.nr_free() + self.zones.as_ref().map_or(0, |z| z.dma.nr_free())
    }

    /// Whether `pfn` is in ZONE_DMA (`folio_zonenum(folio) == ZONE_DMA`).
    #[inline]
    pub(crate) fn page_zonenum(&self, pfn: u32) -> u8 {
        match &self.zones {
            Some(z) if z.dma.contains(pfn) => ZONE_DMA,
            _ => ZONE_DMA32,
        }
    }

    /// `free_unref_page` into the zone the page belongs to: a DMA page back on the list of its
    /// pageblock's migratetype (`free_one_page` → `get_pfnblock_migratetype`).
    pub(crate) fn free_frame(&mut self, pfn: u32) {
        if let Some(z) = self.zones.as_deref_mut() {
            if z.dma.contains(pfn) {
                debug_assert!(self.mem.frames[pfn as usize].refcount == 0, "freeing a busy DMA page {pfn}");
                self.mem.frames[pfn as usize] = dma_free_frame();
                z.dma.free_page(pfn);
                return;
            }
        }
        self.mem.free_page(pfn);
    }

    /// `rmqueue` from the DMA zone of a page of type `mt` (a user page: MIGRATE_MOVABLE), then
    /// "if ((alloc_flags & ALLOC_KSWAPD) && test_bit(ZONE_BOOSTED_WATERMARK, &zone->flags))
    /// { clear_bit(...); wakeup_kswapd(zone, 0, 0, zone_idx(zone)); }" (mm/page_alloc.c
    /// 6.12.117).
    pub(crate) fn rmqueue_dma(&mut self, mt: MigrateType) -> Option<u32> {
        let z = self.zones.as_deref_mut()?;
        let mut stats = (0, 0, 0);
        let pfn = z.dma.rmqueue(mt, &mut stats)?;
        z.nr_boosts += stats.0;
        z.nr_claims += stats.1;
        z.nr_steals += stats.2;
        z.dma.uses[(pfn - z.dma.start) as usize] = if mt == MigrateType::Movable { Use::Movable } else { Use::Kernel };
        let wake = std::mem::take(&mut z.dma.boosted_flag);
        self.mem.frames[pfn as usize] = new_page(1);
        if wake {
            self.wakeup_kswapd_zone(ZONE_DMA);
            self.zones.as_deref_mut().expect("zones").boost_wake_pending = true;
        }
        Some(pfn)
    }

    /// One non-movable allocation of the guest's kernel (a slab page, a page table, an
    /// xarray node's page: GFP_KERNEL, MIGRATE_UNMOVABLE), which the model does not run
    /// itself: the page before it is freed (the model holds one such page at a time), then
    /// a page is taken from the zonelist as `get_page_from_freelist` would at the low
    /// watermark (DMA32, else DMA, whose fallback may claim a movable pageblock and boost
    /// the zone). Nothing without a zone layer or when both zones are below it.
    pub fn guest_kernel_alloc(&mut self) {
        let Some(z) = self.zones.as_deref_mut() else { return };
        if let Some(p) = z.kernel_page.take() {
            self.mem.frames[p as usize] = new_page(0);
            self.free_frame(p);
        }
        let z = self.zones.as_deref().expect("zones");
        let pfn = if self.mem.nr_free() > self.mem.wmark.low {
            self.mem.take()
        } else if z.dma.nr_free() > z.dma_mark(z.dma.wmark.low, ZONE_TOP) {
            self.rmqueue_dma(MigrateType::Unmovable)
        } else {
            None
        };
        if let Some(p) = pfn {
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
            self.zones.as_deref_mut().expect("zones").kernel_page = Some(p);
        }
    }

    /// Count a page written to swap towards the guest kernel's allocation stream
    /// ([`Zones::kernel_alloc_every`]).
    pub(crate) fn note_swap_write_for_zones(&mut self) {
        let Some(z) = self.zones.as_deref_mut() else { return };
        if z.kernel_alloc_every == 0 {
            return;
        }
        z.kernel_alloc_count += 1;
        if z.kernel_alloc_count >= z.kernel_alloc_every {
            z.kernel_alloc_count = 0;
            self.guest_kernel_alloc();
        }
    }

    /// Set the guest kernel's allocation stream: one non-movable page allocation every `n`
    /// pages written to swap (0: none). Fails (EINVAL) without a zone layer.
    pub fn set_guest_kernel_alloc_every(&mut self, n: u64) -> Result<()> {
        match self.zones.as_deref_mut() {
            Some(z) => {
                z.kernel_alloc_every = n;
                Ok(())
            }
            None if n == 0 => Ok(()),
            None => Err(Error::invalid("the guest kernel's allocations need the zones (set_guest_zones)")),
        }
    }

    /// A snapshot does not hold the zone layer: a kernel with one refuses to be saved.
    pub(crate) fn check_zones_storable(&self) -> Result<()> {
        if self.zones.is_some() {
            return Err(Error::invalid(
                "a snapshot does not hold the guest zones (set_guest_zones); save a kernel without them",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmap::MapKind;
    use crate::mm::vmstat::Vm;
    use crate::profile::Profile;

    const DMA: ZoneSpec = ZoneSpec { managed: 2304, held: 0, min: 16, low: 20, high: 24, lowmem_reserve: 20 };
    const DMA32: ZoneSpec = ZoneSpec { managed: 5887, held: 100, min: 40, low: 50, high: 60, lowmem_reserve: 0 };

    fn kernel(types: Option<PageTypes>) -> Kernel {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(DMA, DMA32, types).unwrap();
        k
    }

    fn stat(k: &Kernel, name: &str) -> u64 {
        k.vmstat().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| v)
    }

    /// The zones split the memory as the guest reported it: DMA's pages are the first pfns
    /// with its partial pageblock unmovable (the default layout), DMA32 the rest with its held
    /// pages reserved and its watermarks the allocator's.
    #[test]
    fn guest_zones_split_the_memory_and_keep_the_dma_zone_on_its_own_lists() {
        let k = kernel(None);
        let z = k.zones().unwrap();
        assert_eq!((z.dma.start, z.dma.end), (1, 2305));
        assert_eq!(z.dma.nr_free(), 2304);
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Unmovable);
        assert_eq!(z.dma.blocks[0].len, 256, "3840 % 512 = 256 in the guest: the partial block");
        assert!(z.dma.blocks[1..].iter().all(|b| b.mt == MigrateType::Movable));
        assert_eq!(k.mem.nr_free(), 5887 - 100);
        assert_eq!(k.nr_free_pages(), 2304 + 5787);
        assert_eq!(k.mem.wmark.high, 60);
        z.dma.check().unwrap();
        k.check_invariants().unwrap();
        let err = k.snapshot_bytes().unwrap_err();
        assert!(err.to_string().contains("guest zones"), "{err}");
    }

    /// `get_page_from_freelist` (mm/page_alloc.c 6.12.117) walks the zonelist DMA32, DMA: a
    /// user page comes from DMA32 while it is above its low watermark, then from DMA, which
    /// keeps its low watermark plus `lowmem_reserve` from a movable allocation; only when both
    /// are below does the slow path wake kswapd.
    #[test]
    fn user_pages_come_from_dma32_first_and_dma_keeps_its_lowmem_reserve() {
        let mut k = kernel(None);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0;
        while k.mem.nr_free() > k.mem.wmark.low {
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2304, "DMA untouched while DMA32 is above low");
        k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
        i += 1;
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2303, "DMA32 at low: the next page is DMA's");
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 0, "no kswapd yet: DMA was above its mark");
        // DMA serves until low + lowmem_reserve = 40 free pages, then kswapd wakes
        while k.vmstat.get(Vm::pageoutrun) == 0 {
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// The x86_64 guest's DMA boost (mm/page_alloc.c 6.12.117 `__rmqueue_claim` →
    /// `try_to_steal_block` → `boost_watermark`; mm/vmscan.c `balance_pgdat`,
    /// `isolate_lru_folios`): once DMA's movable pageblocks have no free page, a movable
    /// allocation falls back to the unmovable block (a free buddy of order >= 4:
    /// `can_steal_fallback`), claims it and raises the zone's boost by a pageblock (512
    /// pages, above 1.5 x high); `rmqueue` wakes kswapd for ZONE_DMA, whose boosted run,
    /// unbalanced, restarts without the boost and reclaims with reclaim_idx = ZONE_DMA (scan
    /// targets from the DMA pages of each list, `lruvec_lru_size`): it passes over the DMA32
    /// folios (PGSCAN_SKIP, counted scanned) and frees DMA pages only, then clears the boost
    /// and wakes kcompactd.
    #[test]
    fn a_fallback_claim_boosts_the_dma_zone_and_kswapd_then_skips_dma32_folios() {
        let mut k = kernel(None);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0;
        while k.zones().unwrap().nr_boosts == 0 {
            assert!(i < 8000, "no boost");
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        let z = k.zones().unwrap();
        assert_eq!((z.nr_claims, z.nr_steals), (1, 0), "the 256 free pages of the block: claimed");
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Movable);
        // settle ran kswapd after the access: the boosted run reclaimed DMA only
        assert_eq!(z.dma.watermark_boost, 0, "cleared at the end of balance_pgdat");
        assert_eq!(z.compact_daemon_wake, 1);
        assert!(z.pgskip_dma32 > 0, "DMA32 folios passed over");
        // every page was touched once, just now: the two-strike rule keeps them all this time
        // (folio_check_references), and whatever was reclaimed was DMA's: DMA32 got nothing
        assert!(k.mem.nr_free() <= k.mem.wmark.low + 1, "DMA32 got nothing: {}", k.mem.nr_free());
        assert!(stat(&k, "pgscan_kswapd") >= stat(&k, "pgskip_dma32"), "skips count as scanned");
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// A non-movable allocation (`can_steal_fallback`: always for UNMOVABLE) that finds no
    /// unmovable page in DMA claims a free movable pageblock (`try_to_steal_block`: free +
    /// alike >= half a block) and boosts the zone; one into blocks full of user pages steals
    /// a single page (`__rmqueue_steal`) after the claim attempt boosted the zone anyway, and
    /// `rmqueue` wakes kswapd for ZONE_DMA each time (mm/page_alloc.c 6.12.117).
    /// The guest's own layout (pagetypeinfo: one unmovable block, 224 of its 256 pages free,
    /// 32 the kernel's): a movable fallback into it cannot claim it (free + movable < half a
    /// pageblock), so `try_to_steal_block` boosts and `__rmqueue_steal` takes one page; the
    /// block stays unmovable, and every time DMA's movable lists run dry again the next
    /// movable page boosts the zone again (mm/page_alloc.c 6.12.117).
    #[test]
    fn an_unclaimable_unmovable_block_boosts_the_dma_zone_again_and_again() {
        let dma = ZoneSpec { held: 32, ..DMA };
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(dma, DMA32, None).unwrap();
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2304 - 32);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0u64;
        while k.zones().unwrap().compact_daemon_wake < 2 {
            assert!(i < 200_000, "fewer than two boosted kswapd runs");
            let page = (i * 7919) % 8000; // the pages over and over, out of order
            k.access(pid, 0, a + page * 4096, true, i + 1).unwrap();
            i += 1;
        }
        let z = k.zones().unwrap();
        assert_eq!(z.nr_claims, 0);
        assert!(z.nr_steals >= 2 && z.nr_boosts >= 2, "steals {} boosts {}", z.nr_steals, z.nr_boosts);
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Unmovable);
        assert!(z.pgskip_dma32 > 0);
        k.check_invariants().unwrap();
        z.dma.check().unwrap();
    }

    #[test]
    fn a_kernel_allocation_in_dma_claims_or_steals_and_boosts_either_way() {
        let all_movable =
            PageTypes { unmovable_blocks: 0, reclaimable_blocks: 0, unmovable_free: 0, reclaimable_free: 0 };
        let mut k = kernel(Some(all_movable));
        while k.mem.nr_free() > k.mem.wmark.low {
            k.mem.take();
        }
        k.guest_kernel_alloc();
        let z = k.zones().unwrap();
        assert_eq!((z.nr_boosts, z.nr_claims, z.nr_steals), (1, 1, 0));
        assert_eq!(z.dma.watermark_boost, 512);
        assert_eq!(z.kswapd_highest_zoneidx, Some(ZONE_DMA));
        assert!(k.kswapd.woken);
        // a fresh zone whose blocks are nearly all user pages: the kernel page is a steal
        let mut k = kernel(Some(all_movable));
        while k.mem.nr_free() > k.mem.wmark.low {
            k.mem.take();
        }
        let pages: Vec<u32> = (0..2304).map(|_| k.rmqueue_dma(MigrateType::Movable).unwrap()).collect();
        assert_eq!(pages[..3], [1, 2, 3], "lowest pfns first, as the main list hands them out");
        // 100 pages of the second block come back: it is 412 user pages and 100 free
        for &p in &pages[512..612] {
            k.mem.frames[p as usize].refcount = 0;
            k.free_frame(p);
        }
        assert_eq!(k.zones().unwrap().nr_boosts, 0, "movable pages from movable blocks: no fallback");
        k.guest_kernel_alloc();
        let z = k.zones().unwrap();
        assert_eq!((z.nr_boosts, z.nr_claims, z.nr_steals), (1, 0, 1));
        assert!(k.kswapd.woken);
        z.dma.check().unwrap();
    }
}
