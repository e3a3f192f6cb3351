//! Page frames (`struct page` / order-0 folios) in a table by pfn, the free-page allocator and
//! the zone watermarks.
//!
//! Simplifications, written down where they are made:
//! - One node, one zone: the frames of the whole `memory` form a single zone (s390 also has
//!   ZONE_DMA below 2 GiB; no allocation in the model needs it).
//! - Order-0 pages only (no THP, no hugetlb, no compound pages).
//! - pfn 0 is the shared zero page (`empty_zero_page`), reserved like the kernel's: never free,
//!   never on an LRU, content zero.
//! - The allocator is a LIFO free list (the kernel's per-cpu lists also hand out the hottest
//!   page first); it is deterministic.

use crate::arch::s390::pgtable::StorageKeys;
use serde::{Deserialize, Serialize};

/// Page flags, named as `enum pageflags` names them (values are the model's bit positions).
pub mod pg {
    pub const PG_LOCKED: u32 = 1 << 0;
    pub const PG_REFERENCED: u32 = 1 << 1;
    pub const PG_UPTODATE: u32 = 1 << 2;
    pub const PG_DIRTY: u32 = 1 << 3;
    pub const PG_LRU: u32 = 1 << 4;
    pub const PG_ACTIVE: u32 = 1 << 5;
    pub const PG_WORKINGSET: u32 = 1 << 6;
    pub const PG_SWAPBACKED: u32 = 1 << 7;
    pub const PG_SWAPCACHE: u32 = 1 << 8;
    pub const PG_MLOCKED: u32 = 1 << 9;
    pub const PG_UNEVICTABLE: u32 = 1 << 10;
    pub const PG_RECLAIM: u32 = 1 << 11;
    /// `PG_readahead` shares PG_reclaim's bit (include/linux/page-flags.h: "PG_readahead is
    /// only used for reads; PG_reclaim is only for writes").
    pub const PG_READAHEAD: u32 = PG_RECLAIM;
    pub const PG_HWPOISON: u32 = 1 << 12;
    pub const PG_RESERVED: u32 = 1 << 13;
    /// The page is in the buddy allocator (free).
    pub const PG_BUDDY: u32 = 1 << 14;
    /// `PAGE_MAPPING_ANON`: `mapping` points to an anon_vma, not an address_space.
    pub const PAGE_MAPPING_ANON: u32 = 1 << 15;
    /// `PageAnonExclusive` (v5.19+): the anon page is exclusive to one mm.
    pub const PG_ANON_EXCLUSIVE: u32 = 1 << 16;
    /// Isolated from the LRU by reclaim or migration (holds a reference).
    pub const PG_ISOLATED: u32 = 1 << 17;
    /// `PG_writeback`: a write of the page to swap is in flight (set by `__swap_writepage`'s
    /// `folio_start_writeback`, cleared by `folio_end_writeback`; [`crate::mm::page_io`]).
    pub const PG_WRITEBACK: u32 = 1 << 18;

    pub const NAMES: [(u32, &str); 19] = [
        (PG_LOCKED, "locked"),
        (PG_REFERENCED, "referenced"),
        (PG_UPTODATE, "uptodate"),
        (PG_DIRTY, "dirty"),
        (PG_LRU, "lru"),
        (PG_ACTIVE, "active"),
        (PG_WORKINGSET, "workingset"),
        (PG_SWAPBACKED, "swapbacked"),
        (PG_SWAPCACHE, "swapcache"),
        (PG_MLOCKED, "mlocked"),
        (PG_UNEVICTABLE, "unevictable"),
        (PG_RECLAIM, "reclaim"),
        (PG_HWPOISON, "hwpoison"),
        (PG_RESERVED, "reserved"),
        (PG_BUDDY, "buddy"),
        (PAGE_MAPPING_ANON, "anon"),
        (PG_ANON_EXCLUSIVE, "anon_exclusive"),
        (PG_ISOLATED, "isolated"),
        (PG_WRITEBACK, "writeback"),
    ];
}

use pg::*;

/// "No page" in the u32 links and indices.
pub const NO_PFN: u32 = u32::MAX;
/// The shared zero page.
pub const ZERO_PFN: u32 = 0;

/// `index` bits of [`Frame`]'s packed index word: a page's index is a user address or a
/// file offset shifted by `PAGE_SHIFT`, so below 2^52 on a 64-bit machine (the kernel's
/// `MAX_LFS_FILESIZE` keeps a file's below 2^51).
const INDEX_BITS: u32 = 52;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// The LRU list number (`lru_list`, 0..16) sits above the index.
const LRU_LIST_SHIFT: u32 = INDEX_BITS;
const LRU_LIST_MASK: u64 = 0xf << LRU_LIST_SHIFT;
/// The storage key (one byte) in the top byte.
const SKEY_SHIFT: u32 = 56;

/// One page frame: 44 bytes, 4-byte aligned (the two 64-bit words are packed between 32-bit
/// fields; `frame_is_44_bytes` pins the size).
///
/// What each field costs: `flags`, `refcount`, `mapcount`, `mapping`, `private` and the two LRU
/// links 4 bytes each (u32: pfns and swap offsets are below 2^31, see [`Memory::check`] and
/// the swap device's limit); the content tag 8 (the value a store wrote, as the API returns
/// it); and one 8-byte word that packs `page->index` (52 bits), the LRU list the page is on
/// (4 bits) and the s390 storage key (8 bits). The LRU generation and access count of the
/// multi-gen LRU live in `flags` (`LRU_GEN_MASK`, `LRU_REFS_MASK`), as in the kernel.
///
/// The snapshot format stores the unpacked fields (`FrameRepr`), so the packing did not
/// change it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FrameRepr", into = "FrameRepr")]
#[repr(C, packed(4))]
pub struct Frame {
    pub flags: u32,
    /// `page_ref_count`.
    pub refcount: u32,
    /// `page_mapcount` (the kernel's `_mapcount + 1`).
    pub mapcount: u32,
    /// anon_vma id + 1 when `PAGE_MAPPING_ANON`, else address_space id + 1; 0 = none.
    pub mapping: u32,
    /// `page->index` (bits 0..52), the LRU list (52..56) and the storage key (56..64): use
    /// [`Frame::index`], [`Frame::lru_list`], [`Frame::skey`] and their setters.
    index_key: u64,
    /// The data of the page, as one tag: a write stores its value here, so lost or corrupted
    /// data is observable.
    pub content: u64,
    /// `page_private`: the swap offset (+1; 0 = none) while in the swap cache.
    pub private: u32,
    /// LRU list links (pfns).
    pub lru_prev: u32,
    pub lru_next: u32,
}

/// A frame's fields unpacked: the snapshot's encoding of a [`Frame`] (the layout of format
/// version 6, before the frame was packed).
#[derive(Clone, Copy, Serialize, Deserialize)]
struct FrameRepr {
    flags: u32,
    refcount: u32,
    mapcount: u32,
    mapping: u32,
    index: u64,
    content: u64,
    private: u32,
    lru_prev: u32,
    lru_next: u32,
    skey: u8,
    lru_list: u8,
}

impl From<Frame> for FrameRepr {
    fn from(f: Frame) -> FrameRepr {
        FrameRepr {
            flags: f.flags,
            refcount: f.refcount,
            mapcount: f.mapcount,
            mapping: f.mapping,
            index: f.index(),
            content: f.content,
            private: f.private,
            lru_prev: f.lru_prev,
            lru_next: f.lru_next,
            skey: f.skey(),
            lru_list: f.lru_list(),
        }
    }
}

impl TryFrom<FrameRepr> for Frame {
    type Error = String;
    /// A snapshot's frame: an index or LRU list too wide for the packed word is an error
    /// (a snapshot the model cannot have written), not a silent truncation.
    fn try_from(r: FrameRepr) -> Result<Frame, String> {
        if r.index > INDEX_MASK || r.lru_list > 0xf {
            return Err(format!(
                "a frame with page index {:#x} and LRU list {} (at most 2^52 - 1 and 15)",
                r.index, r.lru_list
            ));
        }
        let mut f = Frame {
            flags: r.flags,
            refcount: r.refcount,
            mapcount: r.mapcount,
            mapping: r.mapping,
            index_key: 0,
            content: r.content,
            private: r.private,
            lru_prev: r.lru_prev,
            lru_next: r.lru_next,
        };
        f.set_index(r.index);
        f.set_lru_list(r.lru_list);
        f.set_skey(r.skey);
        Ok(f)
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, fm: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (flags, refcount, mapcount, mapping, content, private, lru_prev, lru_next) = (
            self.flags,
            self.refcount,
            self.mapcount,
            self.mapping,
            self.content,
            self.private,
            self.lru_prev,
            self.lru_next,
        );
        fm.debug_struct("Frame")
            .field("flags", &flags)
            .field("refcount", &refcount)
            .field("mapcount", &mapcount)
            .field("mapping", &mapping)
            .field("index", &self.index())
            .field("content", &content)
            .field("private", &private)
            .field("lru_prev", &lru_prev)
            .field("lru_next", &lru_next)
            .field("skey", &self.skey())
            .field("lru_list", &self.lru_list())
            .finish()
    }
}

impl Frame {
    /// A free frame on no list (a never-allocated pfn).
    pub(crate) const FREE: Frame = Frame {
        flags: PG_BUDDY,
        refcount: 0,
        mapcount: 0,
        mapping: 0,
        index_key: 0,
        content: 0,
        private: 0,
        lru_prev: NO_PFN,
        lru_next: NO_PFN,
    };

    /// `page->index`: the page offset in its anon_vma's or file's space.
    #[inline]
    pub fn index(&self) -> u64 {
        self.index_key & INDEX_MASK
    }
    /// Set `page->index`; every index is below 2^52 (an address or a file offset over
    /// `PAGE_SIZE`).
    #[inline]
    pub fn set_index(&mut self, index: u64) {
        debug_assert!(index <= INDEX_MASK, "page index {index:#x} beyond 2^52");
        self.index_key = (self.index_key & !INDEX_MASK) | (index & INDEX_MASK);
    }
    /// Which LRU list the page is on while PG_lru is set.
    #[inline]
    pub fn lru_list(&self) -> u8 {
        ((self.index_key & LRU_LIST_MASK) >> LRU_LIST_SHIFT) as u8
    }
    #[inline]
    pub fn set_lru_list(&mut self, li: u8) {
        debug_assert!(li < 16, "LRU list {li} beyond 4 bits");
        self.index_key = (self.index_key & !LRU_LIST_MASK) | ((li as u64 & 0xf) << LRU_LIST_SHIFT);
    }
    /// The s390 storage key (ACC, FP, R, C).
    #[inline]
    pub fn skey(&self) -> u8 {
        (self.index_key >> SKEY_SHIFT) as u8
    }
    /// Set bits of the storage key (the hardware's reference and change bits on an access).
    #[inline]
    pub fn or_skey(&mut self, bits: u8) {
        self.index_key |= (bits as u64) << SKEY_SHIFT;
    }
    #[inline]
    pub fn set_skey(&mut self, key: u8) {
        self.index_key = (self.index_key & !(0xff << SKEY_SHIFT)) | ((key as u64) << SKEY_SHIFT);
    }

    #[inline]
    pub fn test(&self, f: u32) -> bool {
        self.flags & f != 0
    }
    #[inline]
    pub fn set(&mut self, f: u32) {
        self.flags |= f;
    }
    #[inline]
    pub fn clear(&mut self, f: u32) {
        self.flags &= !f;
    }
    /// `PageAnon`.
    #[inline]
    pub fn anon(&self) -> bool {
        self.test(PAGE_MAPPING_ANON)
    }
    /// `page_mapped`.
    #[inline]
    pub fn mapped(&self) -> bool {
        self.mapcount > 0
    }
    /// The swap offset while in the swap cache.
    #[inline]
    pub fn swap_offset(&self) -> Option<u32> {
        if self.private == 0 { None } else { Some(self.private - 1) }
    }
    pub fn flag_names(&self) -> Vec<&'static str> {
        NAMES.iter().filter(|(b, _)| self.flags & b != 0).map(|(_, n)| *n).collect()
    }
}

/// Zone watermarks in pages (`zone->_watermark[WMARK_MIN/LOW/HIGH]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Watermarks {
    pub min: u64,
    pub low: u64,
    pub high: u64,
    /// `min_free_kbytes` they were computed from.
    pub min_free_kbytes: u64,
}

/// `int_sqrt`.
fn int_sqrt(x: u64) -> u64 {
    let mut r = (x as f64).sqrt() as u64;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

impl Watermarks {
    /// `init_per_zone_wmark_min` + `__setup_per_zone_wmarks` for one zone of `managed` pages:
    /// `min_free_kbytes = int_sqrt(lowmem_kbytes * 16)` clamped to [128, max] (max 65536 up
    /// to v5.7, 262144 after); `min = min_free_kbytes >> (PAGE_SHIFT - 10)`;
    /// `tmp = max(min / 4, managed * watermark_scale_factor / 10000)` with the default
    /// watermark_scale_factor 10; `low = min + tmp`; `high = min + 2 * tmp`.
    pub fn compute(managed: u64, min_free_kbytes_max: u64) -> Watermarks {
        let lowmem_kbytes = managed * 4;
        let min_free_kbytes = int_sqrt(lowmem_kbytes * 16).clamp(128, min_free_kbytes_max);
        let min = min_free_kbytes >> 2;
        let tmp = (min / 4).max(managed * 10 / 10000);
        Watermarks { min, low: min + tmp, high: min + 2 * tmp, min_free_kbytes }
    }
}

/// A never-allocated frame, for the pfns [`Frames`] has not stored yet.
static FREE_FRAME: Frame = Frame::FREE;

/// The frames of one host by pfn (`mem.frames[pfn]`), stored up to the highest pfn ever
/// allocated: a pfn above it reads as a free frame (`Frame::FREE`) and costs nothing until it is written
/// (a 512 GiB guest's source host has a quarter of its frames never used). A read is a
/// vector index, as before; a write beyond what is stored first stores the frames up to it
/// (growing by an eighth, so the slack stays at 12.5%).
#[derive(Debug)]
pub struct Frames {
    stored: Vec<Frame>,
    len: usize,
}

crate::sim::clone_fields::clone_fields!(Frames { stored, len });

impl Frames {
    fn new(len: usize) -> Frames {
        Frames { stored: Vec::new(), len }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&Frame> {
        if i < self.len { Some(&self[i]) } else { None }
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Frame> {
        if i < self.len { Some(&mut self[i]) } else { None }
    }

    /// Every frame in pfn order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Frame> + '_ {
        self.stored.iter().chain(std::iter::repeat_n(&FREE_FRAME, self.len - self.stored.len()))
    }

    /// The frames stored (pfn 0 up to the highest ever written).
    fn stored(&self) -> &[Frame] {
        &self.stored
    }

    /// Store the frames up to pfn `i`.
    #[cold]
    #[inline(never)]
    fn store_to(&mut self, i: usize) {
        assert!(i < self.len, "pfn {i} is beyond the {} frames of memory", self.len);
        let want = i + 1;
        if self.stored.capacity() < want {
            let grow = (self.stored.len() / 8).max(64).max(want - self.stored.len());
            self.stored.reserve_exact(grow.min(self.len - self.stored.len()));
        }
        self.stored.resize(want, Frame::FREE);
    }

    /// A frame not stored: never allocated.
    #[cold]
    #[inline(never)]
    fn not_stored(&self, i: usize) -> &Frame {
        assert!(i < self.len, "pfn {i} is beyond the {} frames of memory", self.len);
        &FREE_FRAME
    }

    fn heap_bytes(&self) -> usize {
        self.stored.capacity() * std::mem::size_of::<Frame>()
    }
}

/// The frames stored: every frame ever allocated (pfn 0 up to the frontier, and any frame
/// written beyond it), as a slice for the LRU lists, whose pages are all allocated. `len`,
/// `iter`, `get` and indexing are [`Frames`]' own and cover every pfn.
impl std::ops::Deref for Frames {
    type Target = [Frame];
    #[inline]
    fn deref(&self) -> &[Frame] {
        &self.stored
    }
}

impl std::ops::DerefMut for Frames {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Frame] {
        &mut self.stored
    }
}

impl std::ops::Index<usize> for Frames {
    type Output = Frame;
    #[inline]
    fn index(&self, i: usize) -> &Frame {
        match self.stored.get(i) {
            Some(f) => f,
            None => self.not_stored(i),
        }
    }
}

impl std::ops::IndexMut<usize> for Frames {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Frame {
        if i < self.stored.len() {
            return &mut self.stored[i];
        }
        self.store_to(i);
        &mut self.stored[i]
    }
}

/// Equal when every frame is: a stored free frame (`Frame::FREE`) equals one not stored.
impl PartialEq for Frames {
    fn eq(&self, o: &Frames) -> bool {
        let common = self.stored.len().min(o.stored.len());
        let (long, _) = if self.stored.len() > o.stored.len() { (self, o) } else { (o, self) };
        self.len == o.len
            && self.stored[..common] == o.stored[..common]
            && long.stored[common..].iter().all(|f| *f == Frame::FREE)
    }
}

impl Eq for Frames {}

/// All page frames of one host, the free list and the watermarks.
///
/// The free list is the kernel's LIFO order kept in two parts: the pages freed since boot,
/// threaded through their `lru_next` (the last one's is 0), then the pfns never allocated,
/// from `frontier` up, in ascending order. That is the list `Memory::new` would thread
/// through every frame at boot (pfn 1, 2, 3, ...), with the part nobody has taken yet kept as
/// a number: `take` hands out the same pfns in the same order, and a never-allocated frame is
/// a free frame (`Frame::FREE`), which [`Frames`] need not store.
/// Snapshots store the list threaded through every free frame, as before
/// ([`Memory::frame_as_threaded`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Memory {
    pub frames: Frames,
    /// The first pfn of the pages freed since boot (0 = none: pfn 0 is the reserved zero page).
    free_head: u32,
    /// The lowest pfn never allocated: every pfn from here to the end is free, after the pages
    /// of `free_head`'s list.
    frontier: u32,
    nr_free: u64,
    pub wmark: Watermarks,
}

crate::sim::clone_fields::clone_fields!(Memory { frames, free_head, frontier, nr_free, wmark });

/// The state hash of the allocator (the explorer's [`crate::explore::State::key`]): the frames
/// below the frontier (those above it are all free frames, `Frame::FREE`).
impl std::hash::Hash for Memory {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.frames.len.hash(h);
        self.frames.stored()[..self.frontier as usize].hash(h);
        self.free_head.hash(h);
        self.frontier.hash(h);
        self.nr_free.hash(h);
        self.wmark.hash(h);
    }
}

/// A snapshot's allocator: every frame, the free list threaded through the free frames (the
/// encoding of format 7 and before).
#[derive(Serialize)]
struct MemoryRepr<'a> {
    frames: Threaded<'a>,
    free_head: u32,
    nr_free: u64,
    wmark: Watermarks,
}

/// The frames of a [`Memory`] as [`Memory::frame_as_threaded`] gives them.
struct Threaded<'a>(&'a Memory);

impl Serialize for Threaded<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        s.collect_seq((0..m.frames.len() as u32).map(|pfn| m.frame_as_threaded(pfn)))
    }
}

#[derive(Deserialize)]
struct MemoryOwned {
    frames: Vec<Frame>,
    free_head: u32,
    nr_free: u64,
    wmark: Watermarks,
}

impl Serialize for Memory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MemoryRepr {
            frames: Threaded(self),
            free_head: self.threaded_free_head(),
            nr_free: self.nr_free,
            wmark: self.wmark,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Memory {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Memory, D::Error> {
        let m = MemoryOwned::deserialize(d)?;
        Ok(Memory::from_threaded(m.frames, m.free_head, m.nr_free, m.wmark))
    }
}

impl Memory {
    /// `nr_pages` frames; pfn 0 is reserved as the zero page.
    pub fn new(nr_pages: u64, min_free_kbytes_max: u64) -> Memory {
        let n = nr_pages as usize;
        let mut frames = Frames::new(n);
        if n > 0 {
            frames[0] = Memory::new_zero_page();
        }
        let managed = n.saturating_sub(1) as u64;
        Memory {
            frames,
            // LIFO: lowest pfns first out (the list Memory::new threads is 1, 2, 3, ...)
            free_head: 0,
            frontier: n.min(1) as u32,
            nr_free: managed,
            wmark: Watermarks::compute(managed, min_free_kbytes_max),
        }
    }

    /// A snapshot's allocator (the free list threaded through every free frame): the pfns at
    /// the end of the list that run up to the last pfn in order, never allocated, become the
    /// frontier again. A list that is not well formed is kept as it is (`check` reports it).
    fn from_threaded(mut frames: Vec<Frame>, free_head: u32, nr_free: u64, wmark: Watermarks) -> Memory {
        let n = frames.len();
        let mut order = Vec::new();
        let mut p = free_head;
        while p != 0 && (p as usize) < n && order.len() <= n {
            order.push(p);
            p = frames[p as usize].lru_next;
        }
        let (mut head, mut frontier) = (free_head, n as u32);
        if p == 0 && order.len() <= n {
            let untouched =
                |pfn: u32| Frame { lru_next: if pfn as usize + 1 < n { pfn + 1 } else { 0 }, ..Frame::FREE };
            let mut t = order.len();
            while t > 0
                && order[t - 1] as usize == n - (order.len() - t) - 1
                && frames[order[t - 1] as usize] == untouched(order[t - 1])
            {
                t -= 1;
            }
            if t < order.len() {
                frontier = order[t];
                for f in &mut frames[frontier as usize..] {
                    *f = Frame::FREE;
                }
                if t == 0 {
                    head = 0;
                } else {
                    frames[order[t - 1] as usize].lru_next = 0;
                }
            }
        }
        frames.truncate(frontier as usize);
        frames.shrink_to_fit();
        Memory { frames: Frames { stored: frames, len: n }, free_head: head, frontier, nr_free, wmark }
    }

    /// Frame `pfn` with the free list threaded through every free frame, as `Memory::new`
    /// built it at boot: a never-allocated frame links to the next pfn, and the last page
    /// freed since boot to the first never-allocated one (the snapshot's encoding, and what
    /// `/proc/kpageflags` and the API show of a free page).
    pub fn frame_as_threaded(&self, pfn: u32) -> Frame {
        let mut f = self.frames[pfn as usize];
        let n = self.frames.len();
        if f.test(PG_BUDDY) {
            if pfn >= self.frontier {
                f.lru_next = if pfn as usize + 1 < n { pfn + 1 } else { 0 };
            } else if f.lru_next == 0 && (self.frontier as usize) < n {
                f.lru_next = self.frontier;
            }
        }
        f
    }

    /// The head of the free list threaded through every free frame.
    fn threaded_free_head(&self) -> u32 {
        if self.free_head != 0 {
            self.free_head
        } else if (self.frontier as usize) < self.frames.len() {
            self.frontier
        } else {
            0
        }
    }

    /// The shared zero page as it is made at boot: reserved, up to date, one reference.
    fn new_zero_page() -> Frame {
        Frame { flags: PG_RESERVED | PG_UPTODATE, refcount: 1, ..Frame::FREE }
    }

    pub fn nr_pages(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Pages the allocator manages (all but the reserved zero page).
    pub fn managed(&self) -> u64 {
        self.frames.len() as u64 - 1
    }

    /// `NR_FREE_PAGES`.
    #[inline]
    pub fn nr_free(&self) -> u64 {
        self.nr_free
    }

    /// Take a free page (refcount 1, no flags, content zero: `__GFP_ZERO` / `clear_page`), no
    /// watermark check. `None` when the free list is empty.
    pub fn take(&mut self) -> Option<u32> {
        let pfn = if self.free_head != 0 {
            let pfn = self.free_head;
            self.free_head = self.frames[pfn as usize].lru_next;
            pfn
        } else if (self.frontier as usize) < self.frames.len() {
            self.frontier += 1;
            self.frontier - 1
        } else {
            return None;
        };
        self.nr_free -= 1;
        self.frames[pfn as usize] = Frame { flags: 0, refcount: 1, ..Frame::FREE };
        Some(pfn)
    }

    /// mm/page_alloc.c `free_unref_page` (4.17, 6.12): return an order-0 page whose last reference
    /// is gone (LIFO, as the per-CPU list hands back the hottest page; no buddy merging).
    pub fn free_page(&mut self, pfn: u32) {
        let f = &mut self.frames[pfn as usize];
        debug_assert!(f.refcount == 0 && f.mapcount == 0 && !f.test(PG_LRU), "freeing a busy page {pfn}: {f:?}");
        self.nr_free += 1;
        if self.free_head == 0 && pfn + 1 == self.frontier {
            // the list is then pfn, frontier, frontier + 1, ...: pfn becomes the frontier (one
            // representation per list, so that equal lists compare and hash equal)
            *f = Frame::FREE;
            self.frontier = pfn;
            return;
        }
        *f = Frame { lru_next: self.free_head, ..Frame::FREE };
        self.free_head = pfn;
    }

    /// Whether `pfn` is on the free list (`PageBuddy`).
    pub fn is_free(&self, pfn: u32) -> bool {
        self.frames[pfn as usize].test(PG_BUDDY)
    }

    /// Check the allocator: the zero page reserved, the list of freed pages holding PG_buddy
    /// frames below the frontier once each, the frames from the frontier up never allocated,
    /// and no other frame PG_buddy.
    pub fn check(&self) -> Result<(), String> {
        let n = self.frames.len();
        if !(64..=u32::MAX as usize / 2).contains(&n) || !self.frames[ZERO_PFN as usize].test(PG_RESERVED) {
            return Err(format!("{n} frames (64 to 2^31), pfn 0 the reserved zero page"));
        }
        let z = self.frames[ZERO_PFN as usize];
        let mut zero = Frame { refcount: z.refcount, content: z.content, ..Memory::new_zero_page() };
        zero.set_skey(z.skey());
        if z != zero {
            return Err(format!("the zero page (pfn 0) is mapped, linked or flagged: {z:?}"));
        }
        let frontier = self.frontier as usize;
        if !(1..=n).contains(&frontier) {
            return Err(format!("the first never-allocated pfn is {frontier}, outside 1..={n}"));
        }
        // walk the list: each step must reach a PG_buddy frame below the frontier not seen
        // before, so a cycle or a busy frame on the list ends the walk within n steps
        let mut seen = vec![false; frontier];
        let mut len = 0u64;
        let mut pfn = self.free_head;
        while pfn != 0 {
            match seen.get_mut(pfn as usize) {
                Some(s) if !*s && self.frames[pfn as usize].test(PG_BUDDY) => *s = true,
                _ => return Err(format!("the free list holds pfn {pfn}, which is not a free frame or is there twice")),
            }
            len += 1;
            let f = self.frames[pfn as usize];
            // free_page leaves nothing but the list link: a free frame that names a mapping,
            // a swap slot or a reference would outlive what it names
            if f != (Frame { lru_next: f.lru_next, ..Frame::FREE }) {
                return Err(format!("free pfn {pfn} carries state a free page has not: {f:?}"));
            }
            if f.lru_next == 0 && pfn as usize + 1 == frontier {
                return Err(format!("the last freed page {pfn} is just below the frontier and not part of it"));
            }
            pfn = f.lru_next;
        }
        if self.frames.stored().len() < frontier {
            return Err(format!("pfn {} was allocated but is not stored", self.frames.stored().len()));
        }
        if let Some(p) = self.frames.stored()[frontier..].iter().position(|f| *f != Frame::FREE) {
            return Err(format!("pfn {} was never allocated but is not a free frame", frontier + p));
        }
        let buddy = self.frames.stored()[..frontier].iter().filter(|f| f.test(PG_BUDDY)).count() as u64;
        let untouched = (n - frontier) as u64;
        if buddy != len || len + untouched != self.nr_free {
            return Err(format!(
                "{} frames are PG_buddy, the free list holds {}, NR_FREE_PAGES says {}",
                buddy + untouched,
                len + untouched,
                self.nr_free
            ));
        }
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        self.frames.heap_bytes()
    }
}

impl StorageKeys for Memory {
    fn get_key(&self, pfn: u64) -> u8 {
        self.frames.get(pfn as usize).map_or(0, |f| f.skey())
    }
    fn set_key(&mut self, pfn: u64, key: u8) {
        if let Some(f) = self.frames.get_mut(pfn as usize) {
            f.set_skey(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_44_bytes() {
        // BENCHMARKS.md's bytes per page rest on this: a field that grows the frame shows here
        assert_eq!(std::mem::size_of::<Frame>(), 44);
        assert_eq!(std::mem::align_of::<Frame>(), 4);
    }

    #[test]
    fn packed_fields_keep_their_values_apart() {
        let mut f = Frame::FREE;
        f.set_index(INDEX_MASK);
        f.set_lru_list(12);
        f.set_skey(0xfe);
        assert_eq!((f.index(), f.lru_list(), f.skey()), (INDEX_MASK, 12, 0xfe));
        f.set_index(5);
        f.set_skey(0);
        assert_eq!((f.index(), f.lru_list(), f.skey()), (5, 12, 0));
        f.set_lru_list(0);
        assert_eq!((f.index(), f.lru_list(), f.skey()), (5, 0, 0));
    }

    #[test]
    fn the_snapshot_encoding_of_a_frame_is_the_unpacked_layout() {
        let mut f = Frame { flags: 3, refcount: 2, mapcount: 1, mapping: 7, content: 1 << 40, ..Frame::FREE };
        f.set_index(0x0007_f000_0000);
        f.set_lru_list(3);
        f.set_skey(0x16);
        let r = FrameRepr::from(f);
        assert_eq!(postcard::to_allocvec(&f).unwrap(), postcard::to_allocvec(&r).unwrap());
        assert_eq!((r.index, r.lru_list, r.skey), (0x0007_f000_0000, 3, 0x16));
        let back: Frame = postcard::from_bytes(&postcard::to_allocvec(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    /// mm/page_alloc.c's order-0 free list is LIFO: the allocator hands out the pfns of the
    /// list `Memory::new` threads through every frame (1, 2, 3, ...) with each freed page
    /// pushed on top, though it keeps the never-allocated part as a frontier; a snapshot
    /// stores that threaded list and restores the same allocator.
    #[test]
    fn the_frontier_hands_out_the_threaded_lifo_order() {
        let mut m = Memory::new(64, 65536);
        let mut list: Vec<u32> = (1..64).rev().collect();
        let (mut rng, mut held) = (12345u64, Vec::new());
        for step in 0..2000 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if held.is_empty() || (!list.is_empty() && (rng >> 33) % 2 == 0) {
                let want = list.pop();
                assert_eq!(m.take(), want, "step {step}");
                held.extend(want);
            } else {
                let p = held.swap_remove(((rng >> 40) as usize) % held.len());
                m.frames[p as usize].refcount = 0;
                m.free_page(p);
                list.push(p);
            }
            let (mut p, mut threaded) = (m.threaded_free_head(), Vec::new());
            while p != 0 {
                threaded.push(p);
                p = m.frame_as_threaded(p).lru_next;
            }
            assert_eq!(threaded, list.iter().rev().copied().collect::<Vec<_>>(), "step {step}");
            assert_eq!(m.check(), Ok(()), "step {step}");
            let back: Memory = postcard::from_bytes(&postcard::to_allocvec(&m).unwrap()).unwrap();
            assert_eq!(back, m, "step {step}");
        }
    }

    /// A frame never allocated is not stored: a 1 GiB memory that handed out 16 pages holds a
    /// few frames, not 262,144.
    #[test]
    fn never_allocated_frames_cost_nothing() {
        let mut m = Memory::new(1 << 18, 65536);
        for _ in 0..16 {
            m.take();
        }
        assert!(m.heap_bytes() < 4096, "{} bytes", m.heap_bytes());
        assert_eq!((m.frames.len(), m.frames.iter().count()), (1 << 18, 1 << 18));
        assert!(m.is_free(1 << 17) && m.frames.get(1 << 18).is_none());
    }

    #[test]
    fn watermarks_follow_the_kernel_formula() {
        // 2 GiB: 524287 managed pages -> lowmem 2097148 KiB -> sqrt(33554368) = 5792 KiB
        let w = Watermarks::compute(524287, 65536);
        assert_eq!(w.min_free_kbytes, 5792);
        assert_eq!(w.min, 1448);
        // tmp = max(min / 4 = 362, managed * 10 / 10000 = 524)
        let tmp = 524;
        assert_eq!(w.low, 1448 + tmp);
        assert_eq!(w.high, 1448 + 2 * tmp);
        // tiny zone: clamp to 128 KiB
        assert_eq!(Watermarks::compute(64, 65536).min_free_kbytes, 128);
        // huge zone: clamp to the profile's max
        assert_eq!(Watermarks::compute(1 << 30, 65536).min_free_kbytes, 65536);
        assert_eq!(Watermarks::compute(1 << 30, 262144).min_free_kbytes, 262144);
    }

    #[test]
    fn allocator_hands_out_and_takes_back() {
        let mut m = Memory::new(16, 65536);
        assert_eq!(m.nr_free(), 15);
        let a = m.take().unwrap();
        assert_eq!(a, 1);
        assert_eq!(m.frames[a as usize].refcount, 1);
        assert!(!m.is_free(a));
        m.frames[a as usize].refcount = 0;
        m.free_page(a);
        assert!(m.is_free(a));
        for _ in 0..15 {
            m.take().unwrap();
        }
        assert_eq!(m.take(), None);
        assert!(m.frames[ZERO_PFN as usize].test(PG_RESERVED));
    }
}
