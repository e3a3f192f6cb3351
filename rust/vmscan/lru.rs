//! The LRU lists of the (single) node: inactive/active × anon/file and unevictable, as
//! `struct lruvec` has them. Doubly linked through the frames' `lru_prev` / `lru_next`;
//! `list_add` puts a page at the head, reclaim takes from the tail (`lru_to_page`).
//!
//! Simplification: the per-CPU LRU batches (pagevecs / folio_batch) are not modelled; pages are
//! added to and moved between lists at once (as after `lru_add_drain`).
//!
//! With MGLRU enabled ([`crate::vmscan::lru_gen`]) the evictable pages are on the lists of the
//! generations instead (`lrugen->folios[gen][type]`), held here too (list indices
//! [`NR_LRU_LISTS`] and up), so that a page leaves whatever list it is on through [`Lru::del`].
//! MGLRU's lists are per zone too (`lrugen->folios[gen][type][zone]`, include/linux/mmzone.h
//! 6.12): with the guest's zones (crate::mm::mmzone) the pages of ZONE_DMA are on lists of their
//! own ([`DmaGenLists`]), found by pfn (`folio_zonenum`), while a page's list index names its
//! `[gen][type]` as without zones. The classic lists are per node in 6.12 and stay one.
//! A generation's size is not its lists' length: `lrugen->nr_pages` counts a page in the
//! generation its flags name, and a page promoted in place (`folio_update_gen`) stays on an
//! older generation's list until `sort_folio` or `inc_min_seq` moves it
//! ([`Lru::gen_size`] against `Lru::size_at`).

use crate::mm::page::{Frame, NO_PFN, pg};
use crate::sim::hint::Hint;
use lru_gen_folio::LruGenFolio;
use serde::{Deserialize, Serialize};

/// `NR_LRU_LISTS`: the classic lists, indices 0..5 of [`Lru`].
pub const NR_LRU_LISTS: usize = 5;
/// Every list an [`Lru`] holds: the classic ones, then MGLRU's `[gen][type]` lists.
pub const NR_LISTS: usize = NR_LRU_LISTS + lru_gen_folio::MAX_NR_GENS * 2;

/// `enum lru_list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LruList {
    InactiveAnon = 0,
    ActiveAnon = 1,
    InactiveFile = 2,
    ActiveFile = 3,
    Unevictable = 4,
}

impl LruList {
    pub const ALL: [LruList; 5] =
        [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile, LruList::Unevictable];

    pub fn name(self) -> &'static str {
        match self {
            LruList::InactiveAnon => "nr_inactive_anon",
            LruList::ActiveAnon => "nr_active_anon",
            LruList::InactiveFile => "nr_inactive_file",
            LruList::ActiveFile => "nr_active_file",
            LruList::Unevictable => "nr_unevictable",
        }
    }

    /// `page_lru`: unevictable if PG_unevictable; file unless PG_swapbacked; active if PG_active.
    #[inline]
    pub fn of(f: &Frame) -> LruList {
        if f.test(pg::PG_UNEVICTABLE) {
            return LruList::Unevictable;
        }
        let file = !f.test(pg::PG_SWAPBACKED);
        let active = f.test(pg::PG_ACTIVE);
        match (file, active) {
            (false, false) => LruList::InactiveAnon,
            (false, true) => LruList::ActiveAnon,
            (true, false) => LruList::InactiveFile,
            (true, true) => LruList::ActiveFile,
        }
    }

    pub fn is_file(self) -> bool {
        matches!(self, LruList::InactiveFile | LruList::ActiveFile)
    }

    pub fn is_active(self) -> bool {
        matches!(self, LruList::ActiveAnon | LruList::ActiveFile)
    }
}

/// MGLRU's lists of ZONE_DMA (`lrugen->folios[gen][type][ZONE_DMA]`) when the kernel has
/// the guest's zones (`Lru::set_zone_dma`): the pages of pfns `[start, end)` on a
/// generation's list are on these, indexed as [`lru_gen_folio::list_index`] less
/// [`NR_LRU_LISTS`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DmaGenLists {
    start: u32,
    end: u32,
    head: [u32; NR_GEN_LISTS],
    tail: [u32; NR_GEN_LISTS],
    size: [u64; NR_GEN_LISTS],
}

/// MGLRU's `[gen][type]` lists of one zone.
const NR_GEN_LISTS: usize = NR_LISTS - NR_LRU_LISTS;

/// The lists of one lruvec (`struct lruvec`), with its `lrugen` (MGLRU's generations).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lru {
    head: [u32; NR_LISTS],
    tail: [u32; NR_LISTS],
    size: [u64; NR_LISTS],
    /// `lruvec->lrugen`.
    pub lrugen: LruGenFolio,
    /// ZONE_DMA's generation lists, with the guest's zones (None: one zone, every generation's
    /// page on the lists above). Not in a snapshot: a kernel with zones is not saved
    /// (`Kernel::check_zones_storable`).
    #[serde(skip)]
    dma: Option<Box<DmaGenLists>>,
    /// The look ahead along a list from its tail ([`Lru::start_ahead`]): the page whose frame
    /// a prefetch was started for last. A cache hint, not state.
    #[serde(skip)]
    ahead: Hint<u32>,
}

impl Default for Lru {
    fn default() -> Self {
        Lru::new()
    }
}

impl Lru {
    pub fn new() -> Lru {
        Lru {
            head: [NO_PFN; NR_LISTS],
            tail: [NO_PFN; NR_LISTS],
            size: [0; NR_LISTS],
            lrugen: LruGenFolio::new(false),
            dma: None,
            ahead: Hint::default(),
        }
    }

    /// Give MGLRU's lists a ZONE_DMA of pfns `[start, end)` (the guest's zones,
    /// `Kernel::set_guest_zones`): from now on a page of those pfns joins a generation on the
    /// DMA zone's list (`lru_gen_add_folio` → `&lrugen->folios[gen][type][zone]` with `zone =
    /// folio_zonenum(folio)`, include/linux/mm_inline.h 6.12.117). No page of the range may be
    /// on a list yet.
    pub(crate) fn set_zone_dma(&mut self, frames: &[Frame], start: u32, end: u32) {
        debug_assert!((start..end).all(|p| !frames[p as usize].test(pg::PG_LRU)));
        self.dma = Some(Box::new(DmaGenLists {
            start,
            end,
            head: [NO_PFN; NR_GEN_LISTS],
            tail: [NO_PFN; NR_GEN_LISTS],
            size: [0; NR_GEN_LISTS],
        }));
    }

    /// `folio_zonenum` for MGLRU's lists: ZONE_DMA for a pfn of [`Lru::set_zone_dma`]'s range,
    /// else the zone above (ZONE_DMA32, the model's one zone without zones).
    #[inline]
    pub(crate) fn zonenum(&self, pfn: u32) -> u8 {
        match &self.dma {
            Some(d) if pfn >= d.start && pfn < d.end => crate::mm::mmzone::ZONE_DMA,
            _ => crate::mm::mmzone::ZONE_DMA32,
        }
    }

    /// Head, tail and size of list index `li` in the zone of `pfn`: a generation's list of
    /// ZONE_DMA for a DMA page, else the node's list `li`.
    #[inline]
    fn ends(&mut self, li: usize, pfn: u32) -> (&mut u32, &mut u32, &mut u64) {
        if let Some(d) = self.dma.as_deref_mut() {
            if li >= NR_LRU_LISTS && pfn >= d.start && pfn < d.end {
                let j = li - NR_LRU_LISTS;
                return (&mut d.head[j], &mut d.tail[j], &mut d.size[j]);
            }
        }
        (&mut self.head[li], &mut self.tail[li], &mut self.size[li])
    }

    /// The tail page of generation list index `li` (`lrugen->folios[gen][type][zone]`) of
    /// `zone` (ZONE_DMA: its own list when there is one, else none; any other zone: the
    /// node's list).
    #[inline]
    pub(crate) fn tail_zone(&self, li: usize, zone: u8) -> Option<u32> {
        let t = if zone == crate::mm::mmzone::ZONE_DMA {
            match &self.dma {
                Some(d) => d.tail[li - NR_LRU_LISTS],
                None => NO_PFN,
            }
        } else {
            self.tail[li]
        };
        if t == NO_PFN { None } else { Some(t) }
    }

    /// Pages on generation list index `li` of `zone` (the list's length, which is its
    /// generation's `nr_pages` only while no page on it was promoted in place).
    #[cfg(test)]
    pub(crate) fn size_zone(&self, li: usize, zone: u8) -> u64 {
        if zone == crate::mm::mmzone::ZONE_DMA {
            self.dma.as_ref().map_or(0, |d| d.size[li - NR_LRU_LISTS])
        } else {
            self.size[li]
        }
    }

    /// The lists of a lruvec whose `lrugen.enabled` is `lru_gen` (`lru_gen_init_lruvec`).
    pub fn with_lru_gen(lru_gen: bool) -> Lru {
        Lru { lrugen: LruGenFolio::new(lru_gen), ..Lru::new() }
    }

    /// `lruvec_lru_size`: with MGLRU, as `lru_gen_update_size` keeps the classic sizes for
    /// compatibility: the generation sizes (`nr_pages`, by the generation a page's flags name,
    /// not the list it is on), the two youngest generations counting as active
    /// (`lru_gen_is_active`).
    #[inline]
    pub fn size(&self, l: LruList) -> u64 {
        if !self.lrugen.enabled || l == LruList::Unevictable {
            return self.size[l as usize];
        }
        let ty = l.is_file() as usize;
        (0..lru_gen_folio::MAX_NR_GENS)
            .filter(|&g| self.lrugen.is_active(g) == l.is_active())
            .map(|g| self.gen_size(g, ty))
            .sum()
    }

    /// Pages in generation `gen` of `ty`: `lrugen->nr_pages[gen][type][zone]` summed over the
    /// zones (as `lru_gen_seq_show` and `should_run_aging` sum them). A page promoted in place
    /// (`folio_update_gen`) counts in its new generation while it is still on its old list.
    #[inline]
    pub fn gen_size(&self, gn: usize, ty: usize) -> u64 {
        self.lrugen.nr_pages[gn][ty].iter().sum()
    }

    /// `lru_gen_update_size` (include/linux/mm_inline.h, 6.12.117 and 6.12.107) for the page
    /// `pfn`: out of generation `old` (None: an addition) and into `new` (None: a deletion),
    /// in `nr_pages[gen][type][folio_zonenum(folio)]`. The classic sizes it also keeps are
    /// derived from these ([`Lru::size`]).
    pub(crate) fn lru_gen_update_size(&mut self, frames: &[Frame], pfn: u32, old: Option<usize>, new: Option<usize>) {
        let ty = lru_gen_folio::folio_type(&frames[pfn as usize]);
        let zone = self.zonenum(pfn) as usize;
        if let Some(g) = old {
            self.lrugen.nr_pages[g][ty][zone] -= 1;
        }
        if let Some(g) = new {
            self.lrugen.nr_pages[g][ty][zone] += 1;
        }
    }

    /// The pages on list index `li` (a classic list or a generation's `[gen][type]` list, of
    /// every zone).
    #[inline]
    pub(crate) fn size_at(&self, li: usize) -> u64 {
        match &self.dma {
            Some(d) if li >= NR_LRU_LISTS => self.size[li] + d.size[li - NR_LRU_LISTS],
            _ => self.size[li],
        }
    }

    /// `lruvec_add_folio` (include/linux/mm_inline.h 6.12) / `add_page_to_lru_list` (4.13..4.18):
    /// at the head of `folio_lru_list` / `page_lru`, or with MGLRU on the generation
    /// `lru_gen_add_folio` picks; sets PG_lru (the callers' `SetPageLRU`). 6.12 keeps no list
    /// of unevictable folios (`if (lru != LRU_UNEVICTABLE) list_add(…)`, only the size); the
    /// model links them, which nothing observes but the order of its own walks.
    pub fn add(&mut self, frames: &mut [Frame], pfn: u32) {
        if self.lrugen.enabled && self.lru_gen_add_folio(frames, pfn, false) {
            return;
        }
        let l = LruList::of(&frames[pfn as usize]);
        self.link_head(frames, pfn, l as usize);
    }

    /// Add at the tail (`lruvec_add_folio_tail`, include/linux/mm_inline.h 6.12;
    /// `add_page_to_lru_list_tail` 4.13..4.18: rotation of a page under writeback).
    pub fn add_tail(&mut self, frames: &mut [Frame], pfn: u32) {
        if self.lrugen.enabled && self.lru_gen_add_folio(frames, pfn, true) {
            return;
        }
        let l = LruList::of(&frames[pfn as usize]);
        self.link_tail(frames, pfn, l as usize);
    }

    /// Link at the tail of list index `li`; sets PG_lru.
    pub(crate) fn link_tail(&mut self, frames: &mut [Frame], pfn: u32, li: usize) {
        let f = &mut frames[pfn as usize];
        debug_assert!(!f.test(pg::PG_LRU));
        f.set(pg::PG_LRU);
        f.set_lru_list(li as u8);
        let (head, tail, size) = self.ends(li, pfn);
        let f = &mut frames[pfn as usize];
        f.lru_next = NO_PFN;
        f.lru_prev = *tail;
        if *tail != NO_PFN {
            frames[*tail as usize].lru_next = pfn;
        } else {
            *head = pfn;
        }
        *tail = pfn;
        *size += 1;
    }

    /// Link at the head of list index `li`; sets PG_lru.
    pub(crate) fn link_head(&mut self, frames: &mut [Frame], pfn: u32, li: usize) {
        let f = &mut frames[pfn as usize];
        debug_assert!(!f.test(pg::PG_LRU), "page {pfn} already on an LRU");
        f.set(pg::PG_LRU);
        f.set_lru_list(li as u8);
        let (head, tail, size) = self.ends(li, pfn);
        let f = &mut frames[pfn as usize];
        f.lru_prev = NO_PFN;
        f.lru_next = *head;
        if *head != NO_PFN {
            frames[*head as usize].lru_prev = pfn;
        } else {
            *tail = pfn;
        }
        *head = pfn;
        *size += 1;
    }

    /// `lruvec_del_folio` (include/linux/mm_inline.h 6.12) / `del_page_from_lru_list`
    /// (4.13..4.18): unlink from the list it is on; clears
    /// PG_lru. A page of a generation leaves it as `lru_gen_del_folio(.., reclaiming=false)`
    /// does (PG_active set if the generation was active, "for folio_migrate_flags()").
    pub fn del(&mut self, frames: &mut [Frame], pfn: u32) {
        self.del_reclaiming(frames, pfn, false);
    }

    /// [`Lru::del`]; `reclaiming` as `lru_gen_del_folio` takes it (isolation for eviction
    /// leaves PG_active clear).
    /// The generation the page's flags name leaves `nr_pages` (`lru_gen_update_size(lruvec,
    /// folio, gen, -1)`); the page leaves the list it is on, which for a page promoted in place
    /// is an older generation's.
    pub(crate) fn del_reclaiming(&mut self, frames: &mut [Frame], pfn: u32, reclaiming: bool) {
        if let Some(gn) = lru_gen_folio::folio_lru_gen(&frames[pfn as usize]) {
            self.lru_gen_update_size(frames, pfn, Some(gn), None);
            let active = !reclaiming && self.lrugen.is_active(gn);
            let f = &mut frames[pfn as usize];
            lru_gen_folio::clear_gen(f);
            if active {
                f.set(pg::PG_ACTIVE);
            }
        }
        self.unlink(frames, pfn);
    }

    /// Unlink `pfn` from the list it is on; clears PG_lru.
    pub(crate) fn unlink(&mut self, frames: &mut [Frame], pfn: u32) {
        let f = frames[pfn as usize];
        debug_assert!(f.test(pg::PG_LRU), "page {pfn} not on an LRU");
        let li = f.lru_list() as usize;
        let (head, tail, size) = self.ends(li, pfn);
        if f.lru_prev != NO_PFN {
            frames[f.lru_prev as usize].lru_next = f.lru_next;
        } else {
            *head = f.lru_next;
        }
        if f.lru_next != NO_PFN {
            frames[f.lru_next as usize].lru_prev = f.lru_prev;
        } else {
            *tail = f.lru_prev;
        }
        *size -= 1;
        let f = &mut frames[pfn as usize];
        f.clear(pg::PG_LRU);
        f.lru_prev = NO_PFN;
        f.lru_next = NO_PFN;
    }

    /// Move a page that is on an LRU to the head of the list its flags now select (after
    /// activation, deactivation, or when it became unevictable or evictable).
    pub fn relink(&mut self, frames: &mut [Frame], pfn: u32) {
        self.del(frames, pfn);
        self.add(frames, pfn);
    }

    /// The tail page of `l` (the next reclaim candidate).
    #[inline]
    pub fn tail(&self, l: LruList) -> Option<u32> {
        self.tail_at(l as usize)
    }

    /// Start a look ahead from the tail of `l`: the pages the next isolation from `l` takes,
    /// which [`Lru::prefetch_ahead`] brings into the cache one after the other while reclaim
    /// works on the batch isolated before them. Following the links from the tail is a chain
    /// of dependent loads (each frame holds the pfn of the next); spread over the work on the
    /// batch, its cache misses overlap that work instead of stalling the next isolation. The
    /// kernel has the same chain (`lru_to_folio(src)` in `isolate_lru_folios`); a look ahead
    /// that meets a page moved meanwhile only loads a line that is not used.
    #[inline]
    pub(crate) fn start_ahead(&self, l: LruList) {
        self.ahead.set(self.tail[l as usize]);
    }

    /// One step of the look ahead: the frame reached last (loaded by now) names the one
    /// before it on its list, which starts loading ([`crate::sim::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_ahead(&self, frames: &[Frame]) {
        if let Some(f) = frames.get(self.ahead.get() as usize) {
            let prev = f.lru_prev;
            self.ahead.set(prev);
            if let Some(p) = frames.get(prev as usize) {
                crate::sim::prefetch::value(p);
            }
        }
    }

    /// The tail page of list index `li`.
    #[inline]
    pub(crate) fn tail_at(&self, li: usize) -> Option<u32> {
        let t = self.tail[li];
        if t == NO_PFN { None } else { Some(t) }
    }

    /// Check the links of every list: from the head, each page is a frame of `frames` on this
    /// list (and, on a generation's list, of this list's zone), points back to the one before,
    /// and the walk ends at the tail after `size` pages; no other frame is PG_lru.
    pub fn check(&self, frames: &[Frame]) -> Result<(), String> {
        let mut lists: Vec<(usize, bool, u32, u32, u64)> =
            (0..NR_LISTS).map(|li| (li, false, self.head[li], self.tail[li], self.size[li])).collect();
        if let Some(d) = &self.dma {
            lists.extend((0..NR_GEN_LISTS).map(|j| (NR_LRU_LISTS + j, true, d.head[j], d.tail[j], d.size[j])));
        }
        let mut total = 0;
        for (li, dma, head, tail, size) in lists {
            // the name only for an error: building it for every list was a fifth of the
            // explorer's invariant check
            let name = || if dma { format!("{} of ZONE_DMA", list_name(li)) } else { list_name(li) };
            let (mut prev, mut p, mut n) = (NO_PFN, head, 0u64);
            while p != NO_PFN {
                let Some(f) = frames.get(p as usize) else {
                    return Err(format!("{} links to pfn {p}, beyond memory", name()));
                };
                let wrong_zone =
                    li >= NR_LRU_LISTS && self.dma.is_some() && (self.zonenum(p) == crate::mm::mmzone::ZONE_DMA) != dma;
                if n == size || !f.test(pg::PG_LRU) || f.test(pg::PG_BUDDY) || f.lru_list() as usize != li || wrong_zone
                {
                    return Err(format!("{} of size {size} links to pfn {p} (flags {:?})", name(), f.flag_names()));
                }
                if f.lru_prev != prev {
                    return Err(format!("{}: pfn {p} links back to {} instead of {prev}", name(), f.lru_prev));
                }
                (prev, p, n) = (p, f.lru_next, n + 1);
            }
            if prev != tail || n != size {
                return Err(format!("{} has {n} pages ending at pfn {prev}, but size {size} and tail {tail}", name()));
            }
            total += size;
        }
        let on_lru = frames.iter().filter(|f| f.test(pg::PG_LRU)).count() as u64;
        if on_lru != total {
            return Err(format!("{on_lru} frames are PG_lru but the lists hold {total}"));
        }
        Ok(())
    }

    /// Pages of `l` from head to tail (for inspection and invariants).
    pub fn pages(&self, frames: &[Frame], l: LruList) -> Vec<u32> {
        self.pages_at(frames, l as usize)
    }

    /// Pages of list index `li` from head to tail.
    pub(crate) fn pages_at(&self, frames: &[Frame], li: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.size[li] as usize);
        let mut p = self.head[li];
        while p != NO_PFN {
            out.push(p);
            p = frames[p as usize].lru_next;
        }
        out
    }
}

/// The name of list index `li` (a classic list's gauge, or `lrugen[gen][type]`).
pub fn list_name(li: usize) -> String {
    match LruList::ALL.get(li) {
        Some(l) => l.name().to_string(),
        None => {
            let (gn, ty) = ((li - NR_LRU_LISTS) / 2, (li - NR_LRU_LISTS) % 2);
            format!("lrugen.folios[{gn}][{}]", ["anon", "file"][ty])
        }
    }
}

/// `struct lru_gen_folio` (include/linux/mmzone.h, v6.12: the generations of a lruvec) and the
/// generation and access bits of a folio (include/linux/mm_inline.h): the state MGLRU keeps
/// in the lruvec, here so that [`Lru`] holds it without depending on the algorithm
/// ([`crate::vmscan::lru_gen`]).
pub mod lru_gen_folio {
    use super::NR_LRU_LISTS;
    use crate::mm::page::{Frame, pg};
    use serde::{Deserialize, Serialize};

    /// `MIN_NR_GENS` (include/linux/mmzone.h).
    pub const MIN_NR_GENS: usize = 2;
    /// `MAX_NR_GENS`.
    pub const MAX_NR_GENS: usize = 4;
    /// `MAX_NR_TIERS`.
    pub const MAX_NR_TIERS: usize = 4;
    /// `LRU_REFS_WIDTH` (`MAX_NR_TIERS - 2`).
    pub const LRU_REFS_WIDTH: u32 = 2;
    /// `MIN_LRU_BATCH` (`BITS_PER_LONG`).
    pub const MIN_LRU_BATCH: u64 = 64;
    /// `MAX_LRU_BATCH` (`MIN_LRU_BATCH * 64`).
    pub const MAX_LRU_BATCH: u64 = MIN_LRU_BATCH * 64;
    /// `MAX_SWAPPINESS`.
    pub const MAX_SWAPPINESS: u64 = 200;
    /// The zones of the model's node (ZONE_DMA and ZONE_DMA32; without the guest's zones
    /// every page is ZONE_DMA32's), the last index of `nr_pages`.
    pub const NR_ZONES: usize = crate::mm::mmzone::ZONE_DMA32 as usize + 1;
    /// `LRU_GEN_ANON` / `LRU_GEN_FILE`.
    pub const LRU_GEN_ANON: usize = 0;
    pub const LRU_GEN_FILE: usize = 1;

    /// The bits of `/sys/kernel/mm/lru_gen/enabled` (`enum { LRU_GEN_CORE, LRU_GEN_MM_WALK,
    /// LRU_GEN_NONLEAF_YOUNG }` as bits).
    pub mod caps {
        pub const LRU_GEN_CORE: u64 = 0x0001;
        pub const LRU_GEN_MM_WALK: u64 = 0x0002;
        pub const LRU_GEN_NONLEAF_YOUNG: u64 = 0x0004;
    }

    /// Where the generation (+1, 0 = none) and the access count live in [`Frame::flags`]
    /// (`LRU_GEN_PGOFF` / `LRU_REFS_PGOFF`; the model's bit positions, above every PG_ flag).
    pub(crate) const LRU_GEN_PGOFF: u32 = 24;
    pub(crate) const LRU_GEN_MASK: u32 = 0b111 << LRU_GEN_PGOFF;
    pub(crate) const LRU_REFS_PGOFF: u32 = 27;
    pub(crate) const LRU_REFS_MASK: u32 = ((1 << LRU_REFS_WIDTH) - 1) << LRU_REFS_PGOFF;
    /// `LRU_REFS_FLAGS` (v6.12: PG_referenced and PG_workingset).
    pub(crate) const LRU_REFS_FLAGS: u32 = pg::PG_REFERENCED | pg::PG_WORKINGSET;

    /// `folio_lru_gen`: the page's generation, None when it is on no generation's list.
    #[inline]
    pub fn folio_lru_gen(f: &Frame) -> Option<usize> {
        let g = (f.flags & LRU_GEN_MASK) >> LRU_GEN_PGOFF;
        if g == 0 { None } else { Some(g as usize - 1) }
    }

    /// Clear the page's generation (`set_mask_bits(&folio->flags, LRU_GEN_MASK, ..)`).
    #[inline]
    pub(crate) fn clear_gen(f: &mut Frame) {
        f.flags &= !LRU_GEN_MASK;
    }

    #[inline]
    pub(crate) fn set_gen(f: &mut Frame, gn: usize) {
        f.flags = (f.flags & !LRU_GEN_MASK) | (((gn as u32) + 1) << LRU_GEN_PGOFF);
    }

    /// `folio_lru_refs` (v6.12): the accesses beyond PG_referenced, `LRU_REFS_MASK` plus
    /// PG_workingset ("N-1 if the total number of accesses is N>1").
    #[inline]
    pub fn folio_lru_refs(f: &Frame) -> usize {
        (((f.flags & LRU_REFS_MASK) >> LRU_REFS_PGOFF) + f.test(pg::PG_WORKINGSET) as u32) as usize
    }

    /// `lru_tier_from_refs` (v6.12): `order_base_2(refs + 1)`.
    #[inline]
    pub fn lru_tier_from_refs(refs: usize) -> usize {
        let n = refs + 1;
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }

    /// `lru_gen_from_seq`.
    #[inline]
    pub fn lru_gen_from_seq(seq: u64) -> usize {
        (seq % MAX_NR_GENS as u64) as usize
    }

    /// The [`super::Lru`] list index of `lrugen->folios[gen][type]`.
    #[inline]
    pub fn list_index(gn: usize, ty: usize) -> usize {
        NR_LRU_LISTS + gn * 2 + ty
    }

    /// `folio_is_file_lru` as an index (anon 0, file 1).
    #[inline]
    pub(crate) fn folio_type(f: &Frame) -> usize {
        (!f.test(pg::PG_SWAPBACKED)) as usize
    }

    /// `NR_BLOOM_FILTERS` (include/linux/mmzone.h, 6.12.117).
    pub const NR_BLOOM_FILTERS: usize = 2;

    /// The mm stats (`MM_LEAF_TOTAL`, `MM_LEAF_YOUNG`, `MM_NONLEAF_FOUND`, `MM_NONLEAF_ADDED`).
    pub const MM_LEAF_TOTAL: usize = 0;
    pub const MM_LEAF_YOUNG: usize = 1;
    pub const MM_NONLEAF_FOUND: usize = 2;
    pub const MM_NONLEAF_ADDED: usize = 3;
    pub const NR_MM_STATS: usize = 4;

    /// `mm_state->tail`: where the last iteration of the mm list ended.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum MmTail {
        /// NULL: no iteration yet, or `iterate_mm_list_nowalk` reset it; the next walk force-scans
        /// every mm.
        #[default]
        Null,
        /// The list head: no mm was added since the last iteration.
        Fifo,
        /// The first mm (by pid) added since the last iteration: it and the mms after it are
        /// force-scanned.
        Mm(u32),
    }

    /// `struct lru_gen_mm_state` (include/linux/mmzone.h, 6.12.117) of the one lruvec; unused
    /// where the arch has no walk (s390).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct LruGenMmState {
        pub tail: MmTail,
        /// `filters[NR_BLOOM_FILTERS]`, 2^15 bits each; empty = not allocated (NULL).
        pub filters: [Vec<u64>; NR_BLOOM_FILTERS],
        /// `stats[hist][NR_MM_STATS]` (NR_HIST_GENS 1: they add up over every walk).
        pub stats: [u64; NR_MM_STATS],
    }

    /// `struct lru_gen_folio`: the generations of the lruvec and the PID controller's counters
    /// (NR_HIST_GENS = 1, so `hist` is always 0 and dropped here).
    #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct LruGenFolio {
        /// `lrugen->enabled`: new pages go to the generations (fixed when the kernel is made).
        pub enabled: bool,
        /// The caps the model runs with (`/sys/kernel/mm/lru_gen/enabled`; 0 when off).
        pub caps: u64,
        pub max_seq: u64,
        pub min_seq: [u64; 2],
        /// `nr_pages[gen][type][zone]` (zone: ZONE_DMA, ZONE_DMA32 or the one zone): the pages
        /// whose flags name generation `gen`, kept by `lru_gen_update_size` and the walk's
        /// `update_batch_size` / `reset_batch_size` apart from the lists a page is on.
        pub nr_pages: [[[u64; NR_ZONES]; 2]; MAX_NR_GENS],
        /// Birth time (model ns) of each generation (`timestamps[gen]`, jiffies in the kernel).
        pub timestamps: [u64; MAX_NR_GENS],
        pub avg_refaulted: [[u64; MAX_NR_TIERS]; 2],
        pub avg_total: [[u64; MAX_NR_TIERS]; 2],
        /// `protected[hist][type][tier - 1]`: pages of tier >= 1 that `sort_folio` kept.
        pub protected: [[u64; MAX_NR_TIERS - 1]; 2],
        pub evicted: [[u64; MAX_NR_TIERS]; 2],
        pub refaulted: [[u64; MAX_NR_TIERS]; 2],
        /// `lru_gen_min_ttl` (`/sys/kernel/mm/lru_gen/min_ttl_ms`), in model ns; 0 = off.
        pub min_ttl: u64,
        /// `lruvec->mm_state`: the page-table walk's place in the mm list, its Bloom filters
        /// and stats (`vmscan/lru_gen_walk.rs`; x86_64 only, `CONFIG_LRU_GEN_WALKS_MMU`).
        pub mm_state: LruGenMmState,
        /// `current->reclaim_state->mm_walk != NULL` while a reclaim runs
        /// (`set_mm_walk` .. `clear_mm_walk`): `lru_gen_look_around` promotes with
        /// `folio_update_gen` instead of `folio_activate`. False between reclaims.
        #[serde(skip)]
        pub(crate) mm_walk: bool,
        /// `Profile::lru_gen_activate_resets_refs`, fixed when the kernel is made (as `caps`).
        pub activate_resets_refs: bool,
    }

    impl LruGenFolio {
        /// `lru_gen_init_lruvec`: `max_seq = MIN_NR_GENS + 1`, every `min_seq` 0.
        pub fn new(enabled: bool) -> LruGenFolio {
            LruGenFolio {
                enabled,
                caps: 0,
                max_seq: MIN_NR_GENS as u64 + 1,
                min_seq: [0; 2],
                nr_pages: [[[0; NR_ZONES]; 2]; MAX_NR_GENS],
                timestamps: [0; MAX_NR_GENS],
                avg_refaulted: [[0; MAX_NR_TIERS]; 2],
                avg_total: [[0; MAX_NR_TIERS]; 2],
                protected: [[0; MAX_NR_TIERS - 1]; 2],
                evicted: [[0; MAX_NR_TIERS]; 2],
                refaulted: [[0; MAX_NR_TIERS]; 2],
                min_ttl: 0,
                mm_state: LruGenMmState::default(),
                mm_walk: false,
                activate_resets_refs: true,
            }
        }

        /// `lru_gen_is_active`: the two youngest generations count as active ("see the comment on
        /// MIN_NR_GENS").
        #[inline]
        pub fn is_active(&self, gn: usize) -> bool {
            gn == lru_gen_from_seq(self.max_seq) || gn == lru_gen_from_seq(self.max_seq - 1)
        }

        /// `get_nr_gens`.
        #[inline]
        pub fn nr_gens(&self, ty: usize) -> u64 {
            self.max_seq - self.min_seq[ty] + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::page::Memory;

    #[test]
    fn add_del_and_order() {
        let mut m = Memory::new(64, 65536);
        let mut lru = Lru::new();
        let a = m.take().unwrap();
        let b = m.take().unwrap();
        let c = m.take().unwrap();
        for p in [a, b, c] {
            m.frames[p as usize].set(pg::PG_SWAPBACKED);
            lru.add(&mut m.frames, p);
        }
        assert_eq!(lru.pages(&m.frames, LruList::InactiveAnon), vec![c, b, a]);
        assert_eq!(lru.tail(LruList::InactiveAnon), Some(a));
        m.frames[a as usize].set(pg::PG_ACTIVE);
        lru.relink(&mut m.frames, a);
        assert_eq!(lru.pages(&m.frames, LruList::ActiveAnon), vec![a]);
        assert_eq!(lru.size(LruList::InactiveAnon), 2);
        lru.del(&mut m.frames, b);
        assert_eq!(lru.pages(&m.frames, LruList::InactiveAnon), vec![c]);
        assert!(!m.frames[b as usize].test(pg::PG_LRU));
    }

    #[test]
    fn the_look_ahead_follows_the_list_from_its_tail_and_changes_nothing() {
        let mut m = Memory::new(64, 65536);
        let mut lru = Lru::new();
        let pages: Vec<u32> = (0..5).map(|_| m.take().unwrap()).collect();
        for &p in &pages {
            m.frames[p as usize].set(pg::PG_SWAPBACKED);
            lru.add(&mut m.frames, p);
        }
        let before = (lru.clone(), lru.pages(&m.frames, LruList::InactiveAnon));
        // the pages an isolation takes from the tail, one step each, then off the list's head
        lru.start_ahead(LruList::InactiveAnon);
        let mut seen = vec![lru.ahead.get()];
        for _ in 0..6 {
            lru.prefetch_ahead(&m.frames);
            seen.push(lru.ahead.get());
        }
        assert_eq!(seen[..5], pages[..]);
        assert!(seen[5..].iter().all(|&p| p == NO_PFN));
        // a look ahead left on a page that moved, or beyond memory, is only a wasted load
        lru.start_ahead(LruList::InactiveAnon);
        lru.del(&mut m.frames, pages[0]);
        lru.prefetch_ahead(&m.frames);
        lru.ahead.set(u32::MAX - 1);
        lru.prefetch_ahead(&m.frames);
        lru.add(&mut m.frames, pages[0]);
        assert_eq!(lru.pages(&m.frames, LruList::InactiveAnon), [&pages[..1], &before.1[..4]].concat());
        lru.del(&mut m.frames, pages[0]);
        lru.link_tail(&mut m.frames, pages[0], LruList::InactiveAnon as usize);
        assert_eq!((lru.clone(), lru.pages(&m.frames, LruList::InactiveAnon)), before);
        lru.check(&m.frames).unwrap();
    }
}
