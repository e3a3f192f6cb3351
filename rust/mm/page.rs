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
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

/// The layout of [`Frame`]'s packed word: `page->index` in bits 0..36, the reference count in
/// 36..44, the map count in 44..52, the LRU list the page is on in 52..56 and the s390 storage
/// key in 56..64.
const INDEX_BITS: u32 = 36;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// The inline index of a page whose index is at or above it: the index is in
/// [`Memory`]'s side table (an address at or above 2^48, or a file offset at or above 256 TiB).
const INDEX_ESC: u64 = INDEX_MASK;
const REF_SHIFT: u32 = 36;
const MAP_SHIFT: u32 = 44;
const COUNT_MASK: u64 = 0xff;
/// The inline count of a page whose reference or map count is 255 or more: the count is in
/// [`Memory`]'s side table.
const COUNT_ESC: u32 = 0xff;
const LRU_LIST_SHIFT: u32 = 52;
const LRU_LIST_MASK: u64 = 0xf << LRU_LIST_SHIFT;
const SKEY_SHIFT: u32 = 56;

/// The frame's 32-bit `mc` word: the content tag in bits 0..16, the mapping in 16..32.
const TAG_MASK: u32 = 0xffff;
const MAPPING_SHIFT: u32 = 16;
/// The inline mapping of a page whose mapping (an anon_vma or address_space id + 1) is 65535
/// or more: the mapping is in [`Memory`]'s side table.
const MAPPING_ESC: u32 = 0xffff;

/// The content tag's encodings (16 bits): below `CONTENT_REL` the value itself (values below
/// 2^15); from `CONTENT_REL` the value relative to the page's own address (`index <<
/// PAGE_SHIFT` plus at most 2^14 - 1: the address a store wrote, as `access_batch` and replay
/// store by default); from `CONTENT_OWN` the value relative to the start of its own 4 KiB
/// page, for a page whose index is 0 (one no rmap has placed yet: a page just read from swap,
/// whose content is the address it was written at), the inline index field then holding that
/// page number instead of the index; `CONTENT_ESC`, any other value, kept in [`Memory`]'s side
/// table. The encoding is a function of the index and the value alone, so equal frames have
/// equal bits (the explorer's state hash compares them).
const CONTENT_REL: u32 = 0x8000;
const CONTENT_OWN: u32 = 0xc000;
const CONTENT_ESC: u32 = 0xffff;

/// One page frame: 28 bytes, 4-byte aligned (`frame_is_28_bytes` pins the size).
///
/// What each field costs: `flags` (PG_* bits and the multi-gen LRU's generation and access
/// count, `LRU_GEN_MASK` / `LRU_REFS_MASK`, as in the kernel), `private` and the two LRU links
/// 4 bytes each (u32: pfns and swap offsets are below 2^31, see [`Memory::check`] and the swap
/// device's limit); one 4-byte word holding the content tag (16 bits) and `mapping` (16 bits);
/// and one 8-byte word that packs `page->index` (36 bits), the reference and map counts (8 bits
/// each), the LRU list (4 bits) and the storage key (8 bits). A value too wide for its narrow
/// field (an index at or above 2^36, i.e. an address at or above 2^48; a count of 255 or
/// more; a mapping id of 65535 or more; a content value neither below 2^15 nor within 2^14
/// above the page's address) is kept whole in a side table of the [`Memory`], keyed by pfn:
/// read and write these fields through [`Memory::index`], [`Memory::refcount`],
/// [`Memory::mapcount`], [`Memory::mapping`], [`Memory::content`] and their setters, which
/// return any value stored. No limit follows from the packing.
///
/// The snapshot format stores the unpacked fields ([`FrameView`], with the side tables' values),
/// so the packing did not change it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, packed(4))]
pub struct Frame {
    pub flags: u32,
    /// The content tag (bits 0..16: the data of the page, as one tag: a write stores its value
    /// here, so lost or corrupted data is observable, [`Memory::content`]) and the mapping
    /// (bits 16..32: anon_vma id + 1 when `PAGE_MAPPING_ANON`, else address_space id + 1; 0 =
    /// none, [`Memory::mapping`]).
    mc: u32,
    /// `page->index`, the counts, the LRU list and the storage key (see the constants above).
    word: u64,
    /// `page_private`: the swap offset (+1; 0 = none) while in the swap cache.
    pub private: u32,
    /// LRU list links (pfns).
    pub lru_prev: u32,
    pub lru_next: u32,
}

/// A frame's fields unpacked, the side tables' values included: what [`Memory::view`]
/// returns, and the snapshot's encoding of a frame (the layout of format version 6, before
/// the frame was packed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameView {
    pub flags: u32,
    /// `page_ref_count`.
    pub refcount: u32,
    /// `page_mapcount` (the kernel's `_mapcount + 1`).
    pub mapcount: u32,
    pub mapping: u32,
    /// `page->index`.
    pub index: u64,
    pub content: u64,
    pub private: u32,
    pub lru_prev: u32,
    pub lru_next: u32,
    pub skey: u8,
    pub lru_list: u8,
}

impl FrameView {
    /// The swap offset while in the swap cache.
    pub fn swap_offset(&self) -> Option<u32> {
        if self.private == 0 { None } else { Some(self.private - 1) }
    }
    pub fn flag_names(&self) -> Vec<&'static str> {
        NAMES.iter().filter(|(b, _)| self.flags & b != 0).map(|(_, n)| *n).collect()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, fm: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (flags, mc, word, private, lru_prev, lru_next) =
            (self.flags, self.mc, self.word, self.private, self.lru_prev, self.lru_next);
        fm.debug_struct("Frame")
            .field("flags", &format_args!("{flags:#x}"))
            .field("mc", &format_args!("{mc:#x}"))
            .field("word", &format_args!("{word:#x}"))
            .field("private", &private)
            .field("lru_prev", &lru_prev)
            .field("lru_next", &lru_next)
            .finish()
    }
}

impl Frame {
    /// A free frame on no list (a never-allocated pfn).
    pub(crate) const FREE: Frame =
        Frame { flags: PG_BUDDY, mc: 0, word: 0, private: 0, lru_prev: NO_PFN, lru_next: NO_PFN };

    /// The frame of a fresh allocation: `flags`, one reference, nothing else.
    pub(crate) const fn allocated(flags: u32) -> Frame {
        Frame { flags, word: 1 << REF_SHIFT, ..Frame::FREE }
    }

    #[inline]
    fn index_inline(&self) -> u64 {
        self.word & INDEX_MASK
    }
    #[inline]
    fn set_index_inline(&mut self, i: u64) {
        self.word = (self.word & !INDEX_MASK) | i;
    }
    /// The 8-bit count at bit `S` of the word ([`REF_SHIFT`], [`MAP_SHIFT`]).
    #[inline]
    fn count_inline<const S: u32>(&self) -> u32 {
        ((self.word >> S) & COUNT_MASK) as u32
    }
    #[inline]
    fn set_count_inline<const S: u32>(&mut self, v: u32) {
        self.word = (self.word & !(COUNT_MASK << S)) | ((v as u64) << S);
    }
    #[inline]
    fn ref_inline(&self) -> u32 {
        self.count_inline::<REF_SHIFT>()
    }
    #[inline]
    fn set_ref_inline(&mut self, v: u32) {
        self.set_count_inline::<REF_SHIFT>(v)
    }
    #[inline]
    fn map_inline(&self) -> u32 {
        self.count_inline::<MAP_SHIFT>()
    }
    #[inline]
    fn set_map_inline(&mut self, v: u32) {
        self.set_count_inline::<MAP_SHIFT>(v)
    }
    #[inline]
    fn tag(&self) -> u32 {
        self.mc & TAG_MASK
    }
    #[inline]
    fn set_tag(&mut self, t: u32) {
        self.mc = (self.mc & !TAG_MASK) | t;
    }
    /// Whether the inline index field holds the content's own page number (the index is 0).
    #[inline]
    fn content_own(&self) -> bool {
        let t = self.tag();
        t >= CONTENT_OWN && t != CONTENT_ESC
    }
    #[inline]
    fn mapping_inline(&self) -> u32 {
        self.mc >> MAPPING_SHIFT
    }
    #[inline]
    fn set_mapping_inline(&mut self, v: u32) {
        self.mc = (self.mc & TAG_MASK) | (v << MAPPING_SHIFT);
    }
    /// Whether the page has a mapping (an anon_vma or an address_space; its id:
    /// [`Memory::mapping`]).
    #[inline]
    pub fn has_mapping(&self) -> bool {
        self.mapping_inline() != 0
    }
    /// The tag of `value` for a frame whose index is `index` and whose inline index field holds
    /// `min(index, INDEX_ESC)`: the tag and, for `CONTENT_OWN`, the page number the inline index
    /// field must hold.
    #[inline]
    fn encode_content(index: u64, value: u64) -> (u32, Option<u64>) {
        if value < CONTENT_REL as u64 {
            return (value as u32, None);
        }
        let d = value.wrapping_sub(index.min(INDEX_ESC) << 12);
        if d < (CONTENT_OWN - CONTENT_REL) as u64 {
            (CONTENT_REL | d as u32, None)
        } else if index == 0 && value >> 12 < INDEX_ESC {
            (CONTENT_OWN | (value & 0xfff) as u32, Some(value >> 12))
        } else {
            (CONTENT_ESC, None)
        }
    }
    /// Store `value` as the content where the index is inline, the old content neither counts
    /// from its own page nor is in the side table and the new one is encoded in the tag (and,
    /// for a page whose index is 0, its own page number); false, nothing changed, otherwise
    /// ([`Memory::set_content`] then takes the general path).
    #[inline]
    fn set_content_inline(&mut self, value: u64) -> bool {
        let i = self.index_inline();
        if self.tag() < CONTENT_OWN && i != INDEX_ESC {
            let (t, own) = Frame::encode_content(i, value);
            if t != CONTENT_ESC {
                if let Some(page) = own {
                    self.set_index_inline(page);
                }
                self.set_tag(t);
                return true;
            }
        }
        false
    }
    /// Whether a field of this frame is kept in the side tables.
    #[inline]
    fn has_ext(&self) -> bool {
        self.index_inline() == INDEX_ESC
            || self.ref_inline() == COUNT_ESC
            || self.map_inline() == COUNT_ESC
            || self.tag() == CONTENT_ESC
            || self.mapping_inline() == MAPPING_ESC
    }

    /// Which LRU list the page is on while PG_lru is set.
    #[inline]
    pub fn lru_list(&self) -> u8 {
        ((self.word & LRU_LIST_MASK) >> LRU_LIST_SHIFT) as u8
    }
    #[inline]
    pub fn set_lru_list(&mut self, li: u8) {
        debug_assert!(li < 16, "LRU list {li} beyond 4 bits");
        self.word = (self.word & !LRU_LIST_MASK) | ((li as u64 & 0xf) << LRU_LIST_SHIFT);
    }
    /// The s390 storage key (ACC, FP, R, C).
    #[inline]
    pub fn skey(&self) -> u8 {
        (self.word >> SKEY_SHIFT) as u8
    }
    /// Set bits of the storage key (the hardware's reference and change bits on an access).
    #[inline]
    pub fn or_skey(&mut self, bits: u8) {
        self.word |= (bits as u64) << SKEY_SHIFT;
    }
    #[inline]
    pub fn set_skey(&mut self, key: u8) {
        self.word = (self.word & !(0xff << SKEY_SHIFT)) | ((key as u64) << SKEY_SHIFT);
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
    /// `page_mapped` (the map count is not 0; its value: [`Memory::mapcount`]).
    #[inline]
    pub fn mapped(&self) -> bool {
        self.map_inline() != 0
    }
    /// Whether the page holds a reference (`page_ref_count` is not 0; its value:
    /// [`Memory::refcount`]).
    #[inline]
    pub fn referenced(&self) -> bool {
        self.ref_inline() != 0
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

/// The hasher of the side tables' pfn keys: one multiply (2^64 / φ), fixed, so the tables are
/// the same from run to run. Nothing iterates them in an order that reaches the log or a
/// snapshot: the snapshot looks values up by pfn, the state hash sorts them.
#[derive(Default)]
struct PfnHasher(u64);

impl Hasher for PfnHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, pfn: u32) {
        self.0 = (pfn as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A side table: pfn → the full value (a hash map, which keeps its capacity when it empties;
/// the values that land here are rare: see [`Frame`] and `CONTENT_OWN`).
type SideMap<V> = HashMap<u32, V, BuildHasherDefault<PfnHasher>>;

/// The values of frames' narrow fields that do not fit inline ([`Frame`]), by pfn. An entry
/// exists exactly while the frame's inline field holds the escape value; `free_page` removes a
/// frame's entries; [`Memory::check`] checks both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FrameExt {
    index: SideMap<u64>,
    refcount: SideMap<u32>,
    mapcount: SideMap<u32>,
    mapping: SideMap<u32>,
    content: ContentTable,
}

/// Below this many entries the content side table stays a hash map whatever its density.
const CONTENT_DENSE_MIN: usize = 4096;

/// The content side table, pfn → the full value. Sparse (a [`SideMap`]) while few frames hold
/// a value too wide for their tag, as in a replay; dense (a value per pfn and a presence bit)
/// once a quarter of the frames stored would be in it: a KVM guest writes values that never
/// fit the tag (the postcopy study's guest writes its page number in the high half), so every
/// guest page with data escapes. A hash map entry costs 19 to 39 bytes (17 per bucket at a
/// load of 7/8 down to 7/16) and 58 while the map doubles (the old and the new table at once);
/// the dense table costs 8 bytes and a bit per frame stored, so the switch, made when the map
/// is full and a quarter of the frames are in it (32.5 bytes an entry at most), never costs
/// more than growing the map. The representation is not state: equality, the state hash and
/// a snapshot see only the (pfn, value) pairs.
#[derive(Clone, Debug)]
enum ContentTable {
    Sparse(SideMap<u64>),
    Dense {
        /// The value of each pfn below the length (0 where absent).
        values: Vec<u64>,
        /// A bit per pfn of `values`: the pfn is in the table.
        present: Vec<u64>,
        len: usize,
    },
}

impl Default for ContentTable {
    fn default() -> Self {
        ContentTable::Sparse(SideMap::default())
    }
}

impl PartialEq for ContentTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(pfn, v)| other.get(pfn) == Some(v))
    }
}

impl Eq for ContentTable {}

impl ContentTable {
    fn len(&self) -> usize {
        match self {
            ContentTable::Sparse(m) => m.len(),
            ContentTable::Dense { len, .. } => *len,
        }
    }

    fn get(&self, pfn: u32) -> Option<u64> {
        match self {
            ContentTable::Sparse(m) => m.get(&pfn).copied(),
            ContentTable::Dense { values, present, .. } => {
                let i = pfn as usize;
                (present.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)).then(|| values[i])
            }
        }
    }

    /// The entries: in pfn order when dense, in no fixed order when sparse.
    fn iter(&self) -> Box<dyn Iterator<Item = (u32, u64)> + '_> {
        match self {
            ContentTable::Sparse(m) => Box::new(m.iter().map(|(&k, &v)| (k, v))),
            ContentTable::Dense { values, present, .. } => Box::new(
                present
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w != 0)
                    .flat_map(|(wi, &w)| (0..64).filter(move |b| w >> b & 1 == 1).map(move |b| wi * 64 + b))
                    .map(|i| (i as u32, values[i])),
            ),
        }
    }

    /// Store `value` for `pfn`, with `stored` frames stored (`pfn` is below it).
    fn insert(&mut self, pfn: u32, value: u64, stored: usize) {
        let (values, present, len) = match self {
            ContentTable::Dense { values, present, len } => (values, present, len),
            ContentTable::Sparse(m) => {
                let full = m.len() >= CONTENT_DENSE_MIN && m.len() == m.capacity() && m.len() * 4 >= stored;
                if !full || m.contains_key(&pfn) {
                    m.insert(pfn, value);
                    return;
                }
                let old = std::mem::take(m);
                let n = old.keys().map(|&k| k as usize + 1).max().unwrap_or(0).max(stored);
                let mut dense = ContentTable::Dense { values: vec![0; n], present: vec![0; n.div_ceil(64)], len: 0 };
                for (k, v) in old {
                    dense.insert(k, v, stored);
                }
                dense.insert(pfn, value, stored);
                *self = dense;
                return;
            }
        };
        let i = pfn as usize;
        if i >= values.len() {
            let more = (values.len() / 8).max(CONTENT_DENSE_MIN).max(i + 1 - values.len());
            values.reserve_exact(more);
            values.resize(values.len() + more, 0);
            present.resize(values.len().div_ceil(64), 0);
        }
        values[i] = value;
        if present[i / 64] >> (i % 64) & 1 == 0 {
            present[i / 64] |= 1 << (i % 64);
            *len += 1;
        }
    }

    fn remove(&mut self, pfn: u32) {
        match self {
            ContentTable::Sparse(m) => {
                m.remove(&pfn);
            }
            ContentTable::Dense { values, present, len } => {
                let i = pfn as usize;
                if present.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1) {
                    present[i / 64] &= !(1 << (i % 64));
                    values[i] = 0;
                    *len -= 1;
                }
            }
        }
    }

    /// Bytes of heap: a hash map's entries counted as the other side tables' (twice the key and
    /// the value), the dense table's vectors as allocated.
    fn heap_bytes(&self) -> usize {
        match self {
            ContentTable::Sparse(m) => m.len() * 2 * (4 + 8),
            ContentTable::Dense { values, present, .. } => (values.capacity() + present.capacity()) * 8,
        }
    }
}

impl Hash for FrameExt {
    /// The entries in pfn order (a state's hash must not depend on the tables' history).
    fn hash<H: Hasher>(&self, h: &mut H) {
        fn sorted<V: Copy + Hash, H: Hasher>(m: impl Iterator<Item = (u32, V)>, h: &mut H) {
            let mut v: Vec<(u32, V)> = m.collect();
            v.sort_unstable_by_key(|e| e.0);
            v.hash(h);
        }
        sorted(self.index.iter().map(|(&k, &v)| (k, v)), h);
        sorted(self.refcount.iter().map(|(&k, &v)| (k, v)), h);
        sorted(self.mapcount.iter().map(|(&k, &v)| (k, v)), h);
        sorted(self.mapping.iter().map(|(&k, &v)| (k, v)), h);
        sorted(self.content.iter(), h);
    }
}

impl FrameExt {
    fn len(&self) -> usize {
        self.index.len() + self.refcount.len() + self.mapcount.len() + self.mapping.len() + self.content.len()
    }
    fn remove(&mut self, pfn: u32) {
        self.index.remove(&pfn);
        self.refcount.remove(&pfn);
        self.mapcount.remove(&pfn);
        self.mapping.remove(&pfn);
        self.content.remove(pfn);
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
    /// The values too wide for a frame's narrow fields.
    ext: FrameExt,
    /// The first pfn of the pages freed since boot (0 = none: pfn 0 is the reserved zero page).
    free_head: u32,
    /// The lowest pfn never allocated: every pfn from here to the end is free, after the pages
    /// of `free_head`'s list.
    frontier: u32,
    nr_free: u64,
    pub wmark: Watermarks,
}

crate::sim::clone_fields::clone_fields!(Memory { frames, ext, free_head, frontier, nr_free, wmark });

/// The state hash of the allocator (the explorer's [`crate::explore::State::key`]): the frames
/// below the frontier (those above it are all free frames, `Frame::FREE`).
impl std::hash::Hash for Memory {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.frames.len.hash(h);
        self.frames.stored()[..self.frontier as usize].hash(h);
        self.ext.hash(h);
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
    frames: Vec<FrameView>,
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
        Memory::from_views(m.frames, m.free_head, m.nr_free, m.wmark).map_err(serde::de::Error::custom)
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
            ext: FrameExt::default(),
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
    fn from_threaded(mut frames: Vec<Frame>, ext: FrameExt, free_head: u32, nr_free: u64, wmark: Watermarks) -> Memory {
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
        Memory { frames: Frames { stored: frames, len: n }, ext, free_head: head, frontier, nr_free, wmark }
    }

    /// Frame `pfn` with the free list threaded through every free frame, as `Memory::new`
    /// built it at boot: a never-allocated frame links to the next pfn, and the last page
    /// freed since boot to the first never-allocated one (the snapshot's encoding, and what
    /// `/proc/kpageflags` and the API show of a free page).
    pub fn frame_as_threaded(&self, pfn: u32) -> FrameView {
        let mut f = self.view_at(pfn);
        let n = self.frames.len();
        if f.flags & PG_BUDDY != 0 {
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
        Frame::allocated(PG_RESERVED | PG_UPTODATE)
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
        self.frames[pfn as usize] = Frame::allocated(0);
        Some(pfn)
    }

    /// mm/page_alloc.c `free_unref_page` (4.17, 6.12): return an order-0 page whose last reference
    /// is gone (LIFO, as the per-CPU list hands back the hottest page; no buddy merging).
    pub fn free_page(&mut self, pfn: u32) {
        let f = &mut self.frames[pfn as usize];
        debug_assert!(!f.referenced() && !f.mapped() && !f.test(PG_LRU), "freeing a busy page {pfn}: {f:?}");
        if f.has_ext() {
            self.ext.remove(pfn);
        }
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

    /// Store `f` as the frame of `pfn`, outside the free list (a zone layer's own lists,
    /// crate::mm::guest_zones), dropping the side-table values of the page it replaces.
    pub(crate) fn put_frame(&mut self, pfn: u32, f: Frame) {
        if self.frames[pfn as usize].has_ext() {
            self.ext.remove(pfn);
        }
        self.frames[pfn as usize] = f;
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
        let mut zero = Frame { mc: z.tag(), ..Memory::new_zero_page() };
        zero.set_index_inline(z.index_inline() * z.content_own() as u64);
        zero.set_ref_inline(z.ref_inline());
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
        self.check_ext()
    }

    /// Check the side tables: an entry for a frame exactly where the frame's inline field holds
    /// the escape value, and only for a value that does not fit inline.
    fn check_ext(&self) -> Result<(), String> {
        let frame = |what: &str, pfn: u32| {
            self.frames
                .get(pfn as usize)
                .copied()
                .ok_or_else(|| format!("the {what} side table names pfn {pfn}, beyond memory"))
        };
        let wrong = |what: &str, pfn: u32, v: u64| {
            Err(format!("the {what} side table holds {v:#x} for pfn {pfn}, which fits inline or is not escaped"))
        };
        for (&pfn, &v) in &self.ext.index {
            if frame("index", pfn)?.index_inline() != INDEX_ESC || v < INDEX_ESC {
                return wrong("index", pfn, v);
            }
        }
        for (&pfn, &v) in &self.ext.refcount {
            if frame("refcount", pfn)?.ref_inline() != COUNT_ESC || v < COUNT_ESC {
                return wrong("refcount", pfn, v as u64);
            }
        }
        for (&pfn, &v) in &self.ext.mapcount {
            if frame("mapcount", pfn)?.map_inline() != COUNT_ESC || v < COUNT_ESC {
                return wrong("mapcount", pfn, v as u64);
            }
        }
        for (&pfn, &v) in &self.ext.mapping {
            if frame("mapping", pfn)?.mapping_inline() != MAPPING_ESC || v < MAPPING_ESC {
                return wrong("mapping", pfn, v as u64);
            }
        }
        for (pfn, v) in self.ext.content.iter() {
            let f = frame("content", pfn)?;
            if f.tag() != CONTENT_ESC || Frame::encode_content(self.index(pfn), v).0 != CONTENT_ESC {
                return wrong("content", pfn, v);
            }
        }
        let escaped = |esc: fn(&Frame) -> bool| self.frames.stored().iter().filter(|f| esc(f)).count();
        for (what, n, m) in [
            ("index", escaped(|f| f.index_inline() == INDEX_ESC), self.ext.index.len()),
            ("refcount", escaped(|f| f.ref_inline() == COUNT_ESC), self.ext.refcount.len()),
            ("mapcount", escaped(|f| f.map_inline() == COUNT_ESC), self.ext.mapcount.len()),
            ("mapping", escaped(|f| f.mapping_inline() == MAPPING_ESC), self.ext.mapping.len()),
            ("content", escaped(|f| f.tag() == CONTENT_ESC), self.ext.content.len()),
        ] {
            if n != m {
                return Err(format!("{n} frames keep their {what} in the side table, which holds {m}"));
            }
        }
        Ok(())
    }

    /// Bytes of heap the frames take, the side tables' entries counted at twice their keys and
    /// values (a B-tree node's slack).
    pub fn heap_bytes(&self) -> usize {
        self.frames.heap_bytes()
            + (self.ext.len() - self.ext.content.len()) * 2 * (4 + 8)
            + self.ext.content.heap_bytes()
    }

    // ------------------------------------------------ the frames' narrow fields, in full

    /// `page->index` of `pfn`.
    #[inline]
    pub fn index(&self, pfn: u32) -> u64 {
        let f = &self.frames[pfn as usize];
        let i = f.index_inline();
        if f.content_own() {
            0
        } else if i != INDEX_ESC {
            i
        } else {
            self.ext_index(pfn)
        }
    }

    #[cold]
    #[inline(never)]
    fn ext_index(&self, pfn: u32) -> u64 {
        self.ext.index[&pfn]
    }

    #[cold]
    #[inline(never)]
    fn ext_content(&self, pfn: u32) -> u64 {
        self.ext.content.get(pfn).unwrap_or_else(|| panic!("frame {pfn} has no content in the side table"))
    }

    /// Set `page->index` of `pfn` (the content tag, which counts from the page's address,
    /// follows).
    #[inline]
    pub fn set_index(&mut self, pfn: u32, index: u64) {
        let f = &mut self.frames[pfn as usize];
        if f.tag() < CONTENT_REL && f.index_inline() != INDEX_ESC && index < INDEX_ESC {
            // the common case: a content that does not count from the index (a fresh page's 0)
            f.set_index_inline(index);
            return;
        }
        if f.content_own() && index < INDEX_ESC {
            // a page read from swap gets its index from the rmap: its content (the address it
            // was written at) counts from the index now, in the tag alone where it fits
            let content = (f.index_inline() << 12) + (f.tag() - CONTENT_OWN) as u64;
            let (t, own) = Frame::encode_content(index, content);
            if t != CONTENT_ESC {
                f.set_index_inline(own.unwrap_or(index));
                f.set_tag(t);
                return;
            }
        }
        self.set_index_slow(pfn, index);
    }

    #[inline(never)]
    fn set_index_slow(&mut self, pfn: u32, index: u64) {
        let content = self.content(pfn);
        let f = &mut self.frames[pfn as usize];
        if f.content_own() {
            // the inline field held the content's page: the index is 0
            f.set_index_inline(0);
            f.set_tag(0);
        } else if f.index_inline() == INDEX_ESC {
            self.ext.index.remove(&pfn);
        }
        if index < INDEX_ESC {
            f.set_index_inline(index);
        } else {
            f.set_index_inline(INDEX_ESC);
            self.ext.index.insert(pfn, index);
        }
        self.put_content(pfn, index, content);
    }

    /// The content of `pfn` (the value its last store wrote).
    #[inline]
    pub fn content(&self, pfn: u32) -> u64 {
        let f = &self.frames[pfn as usize];
        let t = f.tag();
        if t < CONTENT_REL {
            t as u64
        } else if t < CONTENT_OWN {
            (f.index_inline() << 12) + (t - CONTENT_REL) as u64
        } else if t != CONTENT_ESC {
            (f.index_inline() << 12) + (t - CONTENT_OWN) as u64
        } else {
            self.ext_content(pfn)
        }
    }

    /// Store `value` as the content of `pfn`.
    #[inline]
    pub fn set_content(&mut self, pfn: u32, value: u64) {
        if !self.frames[pfn as usize].set_content_inline(value) {
            self.set_content_slow(pfn, value);
        }
    }

    /// The hardware's access to `pfn` through a PTE: the storage key's reference bit (and
    /// change bit for a store), then the store of `value` ([`Memory::set_content`]) or the
    /// load ([`Memory::content`]); the value stored or loaded. One frame lookup on the
    /// common path.
    #[inline]
    pub fn access_content(&mut self, pfn: u32, write: bool, value: u64) -> u64 {
        let f = &mut self.frames[pfn as usize];
        f.or_skey(if write { 0x06 } else { 0x04 });
        if write {
            if !f.set_content_inline(value) {
                self.set_content_slow(pfn, value);
            }
            return value;
        }
        let t = f.tag();
        if t < CONTENT_REL {
            t as u64
        } else if t < CONTENT_OWN {
            (f.index_inline() << 12) + (t - CONTENT_REL) as u64
        } else {
            self.content(pfn)
        }
    }

    #[inline(never)]
    fn set_content_slow(&mut self, pfn: u32, value: u64) {
        let index = self.index(pfn);
        self.put_content(pfn, index, value);
    }

    /// Store `value` as the content of `pfn`, whose index is `index`.
    #[inline]
    fn put_content(&mut self, pfn: u32, index: u64, value: u64) {
        let f = &mut self.frames[pfn as usize];
        let was = f.tag();
        if f.content_own() {
            f.set_index_inline(0);
        }
        let (t, own) = Frame::encode_content(index, value);
        if let Some(page) = own {
            f.set_index_inline(page);
        }
        f.set_tag(t);
        if t == CONTENT_ESC {
            self.ext.content.insert(pfn, value, self.frames.stored().len());
        } else if was == CONTENT_ESC {
            self.ext.content.remove(pfn);
        }
    }

    /// `page->mapping` of `pfn`: its anon_vma id + 1 when `PAGE_MAPPING_ANON`, else its
    /// address_space id + 1; 0 = none.
    #[inline]
    pub fn mapping(&self, pfn: u32) -> u32 {
        let v = self.frames[pfn as usize].mapping_inline();
        if v != MAPPING_ESC { v } else { self.ext_mapping(pfn) }
    }

    #[cold]
    #[inline(never)]
    fn ext_mapping(&self, pfn: u32) -> u32 {
        self.ext.mapping[&pfn]
    }

    /// `page->mapping` and `page->index` of `pfn` ([`Memory::mapping`], [`Memory::index`]),
    /// the frame looked up once.
    #[inline]
    pub fn mapping_and_index(&self, pfn: u32) -> (u32, u64) {
        let f = &self.frames[pfn as usize];
        let (m, i) = (f.mapping_inline(), f.index_inline());
        if m != MAPPING_ESC && i != INDEX_ESC {
            return (m, if f.content_own() { 0 } else { i });
        }
        (self.mapping(pfn), self.index(pfn))
    }

    /// Set `page->mapping` of `pfn`.
    #[inline]
    pub fn set_mapping(&mut self, pfn: u32, v: u32) {
        let f = &mut self.frames[pfn as usize];
        if f.mapping_inline() != MAPPING_ESC && v < MAPPING_ESC {
            f.set_mapping_inline(v);
            return;
        }
        self.set_mapping_slow(pfn, v);
    }

    #[inline(never)]
    fn set_mapping_slow(&mut self, pfn: u32, v: u32) {
        let f = &mut self.frames[pfn as usize];
        if f.mapping_inline() == MAPPING_ESC {
            self.ext.mapping.remove(&pfn);
        }
        if v < MAPPING_ESC {
            f.set_mapping_inline(v);
        } else {
            f.set_mapping_inline(MAPPING_ESC);
            self.ext.mapping.insert(pfn, v);
        }
    }

    /// `page_ref_count` of `pfn`.
    #[inline]
    pub fn refcount(&self, pfn: u32) -> u32 {
        self.count::<REF_SHIFT>(pfn)
    }

    /// `set_page_count`.
    #[inline]
    pub fn set_refcount(&mut self, pfn: u32, v: u32) {
        self.set_count::<REF_SHIFT>(pfn, v)
    }

    /// `page_ref_inc`; the new count.
    #[inline]
    pub fn inc_refcount(&mut self, pfn: u32) -> u32 {
        self.inc_count::<REF_SHIFT>(pfn)
    }

    /// `page_ref_dec`; the new count.
    #[inline]
    pub fn dec_refcount(&mut self, pfn: u32) -> u32 {
        self.dec_count::<REF_SHIFT>(pfn)
    }

    /// The side table of the count at bit `S` of the frame's word ([`REF_SHIFT`] the
    /// refcount, [`MAP_SHIFT`] the map count), and the count's name.
    #[inline]
    fn count_side<const S: u32>(&mut self) -> &mut SideMap<u32> {
        if S == REF_SHIFT { &mut self.ext.refcount } else { &mut self.ext.mapcount }
    }

    const fn count_name<const S: u32>() -> &'static str {
        if S == REF_SHIFT { "refcount" } else { "mapcount" }
    }

    /// The count at bit `S` of `pfn`: inline, or from its side table past [`COUNT_ESC`].
    #[inline]
    fn count<const S: u32>(&self, pfn: u32) -> u32 {
        let v = self.frames[pfn as usize].count_inline::<S>();
        if v != COUNT_ESC { v } else { self.ext_count::<S>(pfn) }
    }

    #[cold]
    #[inline(never)]
    fn ext_count<const S: u32>(&self, pfn: u32) -> u32 {
        if S == REF_SHIFT { self.ext.refcount[&pfn] } else { self.ext.mapcount[&pfn] }
    }

    /// Set the count at bit `S` of `pfn`; the side table only when the old or new value needs it.
    #[inline]
    fn set_count<const S: u32>(&mut self, pfn: u32, v: u32) {
        let f = &mut self.frames[pfn as usize];
        if f.count_inline::<S>() != COUNT_ESC && v < COUNT_ESC {
            f.set_count_inline::<S>(v);
            return;
        }
        self.set_count_slow::<S>(pfn, v);
    }

    #[inline(never)]
    fn set_count_slow<const S: u32>(&mut self, pfn: u32, v: u32) {
        let escaped = self.frames[pfn as usize].count_inline::<S>() == COUNT_ESC;
        if escaped {
            self.count_side::<S>().remove(&pfn);
        }
        if v < COUNT_ESC {
            self.frames[pfn as usize].set_count_inline::<S>(v);
        } else {
            self.frames[pfn as usize].set_count_inline::<S>(COUNT_ESC);
            self.count_side::<S>().insert(pfn, v);
        }
    }

    /// Add one to the count at bit `S`; the new count.
    #[inline]
    fn inc_count<const S: u32>(&mut self, pfn: u32) -> u32 {
        let f = &mut self.frames[pfn as usize];
        let v = f.count_inline::<S>() + 1;
        if v < COUNT_ESC {
            // the count's bits alone change: no carry out of a count below 255
            f.word += 1 << S;
            return v;
        }
        self.add_count_slow::<S>(pfn, 1)
    }

    /// Take one from the count at bit `S`; the new count.
    #[inline]
    fn dec_count<const S: u32>(&mut self, pfn: u32) -> u32 {
        let f = &mut self.frames[pfn as usize];
        let v = f.count_inline::<S>();
        if v != 0 && v != COUNT_ESC {
            f.word -= 1 << S;
            return v - 1;
        }
        debug_assert!(v != 0, "{} of pfn {pfn} below 0", Self::count_name::<S>());
        self.add_count_slow::<S>(pfn, -1)
    }

    /// Add `d` to the count at bit `S` through the side table; the new count.
    #[cold]
    #[inline(never)]
    fn add_count_slow<const S: u32>(&mut self, pfn: u32, d: i32) -> u32 {
        let v = self.count::<S>(pfn).wrapping_add_signed(d);
        self.set_count::<S>(pfn, v);
        v
    }

    /// `page_mapcount` of `pfn` (the kernel's `_mapcount + 1`).
    #[inline]
    pub fn mapcount(&self, pfn: u32) -> u32 {
        self.count::<MAP_SHIFT>(pfn)
    }

    /// `page->index`, the map count and `page->mapping` of a page the rmap files
    /// (`page_add_new_anon_rmap`): [`Memory::set_index`], [`Memory::set_mapcount`] and
    /// [`Memory::set_mapping`] with the frame looked up once where all three fit inline.
    #[inline]
    pub fn set_rmap_fields(&mut self, pfn: u32, index: u64, mapcount: u32, mapping: u32) {
        let f = &mut self.frames[pfn as usize];
        if f.tag() < CONTENT_REL
            && f.index_inline() != INDEX_ESC
            && index < INDEX_ESC
            && f.map_inline() != COUNT_ESC
            && mapcount < COUNT_ESC
            && f.mapping_inline() != MAPPING_ESC
            && mapping < MAPPING_ESC
        {
            f.set_index_inline(index);
            f.set_map_inline(mapcount);
            f.set_mapping_inline(mapping);
            return;
        }
        self.set_index(pfn, index);
        self.set_mapcount(pfn, mapcount);
        self.set_mapping(pfn, mapping);
    }

    /// Set the map count of `pfn`.
    #[inline]
    pub fn set_mapcount(&mut self, pfn: u32, v: u32) {
        self.set_count::<MAP_SHIFT>(pfn, v)
    }

    /// `atomic_inc(&page->_mapcount)`; the new count.
    #[inline]
    pub fn inc_mapcount(&mut self, pfn: u32) -> u32 {
        self.inc_count::<MAP_SHIFT>(pfn)
    }

    /// `atomic_add_negative(-1, &page->_mapcount)`; the new count.
    #[inline]
    pub fn dec_mapcount(&mut self, pfn: u32) -> u32 {
        self.dec_count::<MAP_SHIFT>(pfn)
    }

    /// The frame `pfn` unpacked (None beyond memory), the free list threaded through every
    /// free frame ([`Memory::frame_as_threaded`]).
    pub fn view(&self, pfn: u32) -> Option<FrameView> {
        ((pfn as usize) < self.frames.len()).then(|| self.frame_as_threaded(pfn))
    }

    /// The frame `pfn` unpacked; `pfn` is below [`Memory::nr_pages`].
    fn view_at(&self, pfn: u32) -> FrameView {
        let f = &self.frames[pfn as usize];
        FrameView {
            flags: f.flags,
            refcount: self.refcount(pfn),
            mapcount: self.mapcount(pfn),
            mapping: self.mapping(pfn),
            index: self.index(pfn),
            content: self.content(pfn),
            private: f.private,
            lru_prev: f.lru_prev,
            lru_next: f.lru_next,
            skey: f.skey(),
            lru_list: f.lru_list(),
        }
    }

    /// Memory from a snapshot's frames (unpacked, the free list threaded through every free
    /// frame): an LRU list too wide for its 4 bits is an error (a snapshot the model cannot
    /// have written), not a silent truncation.
    fn from_views(views: Vec<FrameView>, free_head: u32, nr_free: u64, wmark: Watermarks) -> Result<Memory, String> {
        let n = views.len();
        let mut m = Memory {
            frames: Frames { stored: Vec::with_capacity(n), len: n },
            ext: FrameExt::default(),
            free_head,
            frontier: n as u32,
            nr_free,
            wmark,
        };
        for (pfn, v) in views.iter().enumerate() {
            if v.lru_list > 0xf {
                return Err(format!("frame {pfn} is on LRU list {} (at most 15)", v.lru_list));
            }
            let mut f = Frame {
                flags: v.flags,
                mc: 0,
                word: 0,
                private: v.private,
                lru_prev: v.lru_prev,
                lru_next: v.lru_next,
            };
            f.set_lru_list(v.lru_list);
            f.set_skey(v.skey);
            m.frames.stored.push(f);
            let pfn = pfn as u32;
            m.set_index(pfn, v.index);
            m.set_refcount(pfn, v.refcount);
            m.set_mapcount(pfn, v.mapcount);
            m.set_mapping(pfn, v.mapping);
            m.set_content(pfn, v.content);
        }
        let Memory { frames, ext, .. } = m;
        Ok(Memory::from_threaded(frames.stored, ext, free_head, nr_free, wmark))
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
    fn frame_is_28_bytes() {
        // BENCHMARKS.md's bytes per page rest on this: a field that grows the frame shows here
        assert_eq!(std::mem::size_of::<Frame>(), 28);
        assert_eq!(std::mem::align_of::<Frame>(), 4);
    }

    #[test]
    fn packed_fields_keep_their_values_apart() {
        let mut m = Memory::new(64, 65536);
        let p = m.take().unwrap();
        m.set_index(p, INDEX_ESC - 1);
        m.set_refcount(p, 254);
        m.set_mapcount(p, 253);
        m.frames[p as usize].set_lru_list(12);
        m.frames[p as usize].set_skey(0xfe);
        let f = m.frames[p as usize];
        assert_eq!(
            (m.index(p), m.refcount(p), m.mapcount(p), f.lru_list(), f.skey()),
            (INDEX_ESC - 1, 254, 253, 12, 0xfe)
        );
        m.set_index(p, 5);
        m.frames[p as usize].set_skey(0);
        m.set_refcount(p, 0);
        let f = m.frames[p as usize];
        assert_eq!((m.index(p), m.refcount(p), m.mapcount(p), f.lru_list(), f.skey()), (5, 0, 253, 12, 0));
        assert_eq!(m.ext.len(), 0);
    }

    /// The short paths of the setters (`set_content`, `set_index` of a swapped-in page,
    /// `set_rmap_fields`, the count steps) leave the same frame and side tables as the general
    /// path, for values inline and escaped, a fresh page and one read from swap.
    #[test]
    fn short_paths_of_the_setters_store_what_the_general_path_stores() {
        let addr = 0x7f00_0000_3000u64;
        let contents = [0, 7, addr, addr + 0x10, addr + 0x3ff8, 0x5555_0000_0000, u64::MAX];
        let indexes = [0, addr >> 12, 3, INDEX_ESC - 1, INDEX_ESC, u64::MAX >> 1];
        for &c0 in &contents {
            for &index in &indexes {
                for &(mapcount, mapping) in &[(1u32, 2u32), (300, 70_000), (1, MAPPING_ESC)] {
                    let (mut a, mut b) = (Memory::new(64, 65536), Memory::new(64, 65536));
                    let (pa, pb) = (a.take().unwrap(), b.take().unwrap());
                    // a page read from swap: its content before any index
                    a.set_content(pa, c0);
                    b.set_content_slow(pb, c0);
                    a.set_rmap_fields(pa, index, mapcount, mapping);
                    b.set_index_slow(pb, index);
                    b.set_count_slow::<MAP_SHIFT>(pb, mapcount);
                    b.set_mapping_slow(pb, mapping);
                    assert_eq!(a, b, "content {c0:#x}, then index {index:#x}, mapping {mapping}");
                    assert_eq!((a.content(pa), a.index(pa)), (c0, index));
                    for &c in &contents {
                        a.set_content(pa, c);
                        b.set_content_slow(pb, c);
                        assert_eq!(a, b, "content {c0:#x} then {c:#x}, index {index:#x}, mapping {mapping}");
                        assert_eq!((a.content(pa), a.index(pa), a.mapping(pa)), (c, index, mapping));
                    }
                    a.inc_mapcount(pa);
                    a.dec_refcount(pa);
                    a.inc_refcount(pa);
                    assert_eq!((a.mapcount(pa), a.refcount(pa)), (mapcount + 1, 1));
                    a.check().unwrap();
                }
            }
        }
    }

    /// No limit follows from the packing: any index, count or 64-bit content reads back as
    /// written, the wide ones through the side tables, which `free_page` empties and
    /// `Memory::check` holds to the frames.
    #[test]
    fn values_too_wide_for_the_frame_read_back_whole_and_leave_with_the_page() {
        let mut m = Memory::new(64, 65536);
        let p = m.take().unwrap();
        m.set_index(p, 0x7f00_0000_0000 >> 12);
        // the page's own address, a small value, zero: inline
        for v in [0x7f00_0000_0000, 0x7f00_0000_0ff8, 7, 0] {
            m.set_content(p, v);
            assert_eq!((m.content(p), m.ext.len()), (v, 0), "{v:#x}");
        }
        for v in [u64::MAX, 1 << 40, 0x7eff_ffff_f000] {
            m.set_content(p, v);
            assert_eq!(m.content(p), v);
            assert_eq!(m.ext.content.len(), 1);
            m.check().unwrap();
        }
        // moving the page's index re-encodes its content against the new address
        m.set_content(p, 0x7f00_0000_0000);
        m.set_index(p, u64::MAX >> 12);
        assert_eq!((m.index(p), m.content(p)), (u64::MAX >> 12, 0x7f00_0000_0000));
        m.check().unwrap();
        m.set_index(p, 0x3ff_0000_0000 >> 12);
        m.set_content(p, 0x3ff_0000_0000);
        assert_eq!((m.index(p), m.content(p), m.ext.len()), (0x3ff_0000_0000 >> 12, 0x3ff_0000_0000, 0));
        for _ in 0..300 {
            m.inc_refcount(p);
            m.inc_mapcount(p);
        }
        assert_eq!((m.refcount(p), m.mapcount(p)), (301, 300));
        // a mapping id too wide for its 16 bits (anon_vma ids are never reused)
        m.set_mapping(p, 70_000);
        assert_eq!((m.mapping(p), m.ext.mapping.len()), (70_000, 1));
        m.check().unwrap();
        m.check().unwrap();
        let bytes = postcard::to_allocvec(&m).unwrap();
        assert_eq!(postcard::from_bytes::<Memory>(&bytes).unwrap(), m);
        for _ in 0..300 {
            m.dec_mapcount(p);
        }
        while m.dec_refcount(p) > 0 {}
        m.set_content(p, u64::MAX);
        assert_eq!((m.refcount(p), m.mapcount(p), m.ext.len()), (0, 0, 2), "the content and the mapping");
        m.free_page(p);
        assert_eq!(m.ext.len(), 0);
        m.check().unwrap();
        // a side-table entry the frame does not escape to is caught
        m.ext.content.insert(3, 1 << 40, 4);
        assert!(m.check().unwrap_err().contains("content side table"));
    }

    /// Frames whose every value escapes the tag (a KVM guest's): the content side table turns
    /// dense once a quarter of the frames stored are in it, and a memory whose table is dense
    /// equals, hashes and serializes as one whose table is a hash map with the same values.
    #[test]
    fn a_dense_content_table_holds_the_same_values_as_a_sparse_one() {
        let n = 4 * CONTENT_DENSE_MIN as u64;
        let (mut dense, mut sparse) = (Memory::new(n + 16, 65536), Memory::new(n + 16, 65536));
        let wide = |pfn: u32| (u64::from(pfn) << 32) | 0x1234_5679;
        let pfns: Vec<u32> = (1..n).map(|_| dense.take().unwrap()).collect();
        for &pfn in &pfns {
            dense.set_index(pfn, 0x100_0000 + u64::from(pfn)); // an anon page's index: its address
            dense.set_content(pfn, wide(pfn));
        }
        assert!(matches!(dense.ext.content, ContentTable::Dense { .. }), "every frame escapes: dense");
        assert!(dense.ext.content.heap_bytes() < (n as usize) * 9, "{}", dense.ext.content.heap_bytes());
        for &pfn in pfns.iter().step_by(3) {
            dense.set_content(pfn, 7);
        }
        for (i, &pfn) in pfns.iter().enumerate() {
            assert_eq!(dense.content(pfn), if i % 3 == 0 { 7 } else { wide(pfn) }, "pfn {pfn}");
            assert_eq!(sparse.take(), Some(pfn));
            sparse.frames[pfn as usize] = dense.frames[pfn as usize];
        }
        for (pfn, v) in dense.ext.content.iter() {
            sparse.ext.content.insert(pfn, v, usize::MAX); // never a quarter of the frames
        }
        assert!(matches!(sparse.ext.content, ContentTable::Sparse(_)));
        dense.check().unwrap();
        sparse.check().unwrap();
        assert_eq!(dense, sparse);
        let key = |m: &Memory| {
            let mut h = std::hash::DefaultHasher::new();
            m.hash(&mut h);
            h.finish()
        };
        assert_eq!(key(&dense), key(&sparse));
        assert_eq!(postcard::to_allocvec(&dense).unwrap(), postcard::to_allocvec(&sparse).unwrap());
        dense.ext.content.remove(pfns[1]);
        assert_ne!(dense, sparse, "a value removed is a difference");
    }

    /// A page read from swap gets its content before the rmap gives it an index (mm/memory.c
    /// `do_swap_page`: `swap_read_folio`, then `folio_add_anon_rmap`): the address it was
    /// written at is kept inline against its own page while the index is 0, and against the
    /// index once set; no side table either way, and the index reads 0 until it is set.
    #[test]
    fn a_swapped_in_address_stays_inline_before_and_after_the_rmap() {
        let mut m = Memory::new(64, 65536);
        let p = m.take().unwrap();
        let addr = 0x7f12_3456_7ab8;
        m.set_content(p, addr);
        assert_eq!((m.content(p), m.index(p), m.ext.len()), (addr, 0, 0));
        assert_eq!(m.view(p).unwrap().index, 0);
        m.check().unwrap();
        m.set_index(p, addr >> 12);
        assert_eq!((m.content(p), m.index(p), m.ext.len()), (addr, addr >> 12, 0));
        // the encoding depends on the index and value alone: equal frames, equal bits
        let q = m.take().unwrap();
        m.set_index(q, addr >> 12);
        m.set_content(q, addr);
        assert_eq!(m.frames[p as usize], m.frames[q as usize]);
        // back to index 0 (memory_failure's page leaves its mapping): own page again
        m.set_index(p, 0);
        assert_eq!((m.content(p), m.index(p), m.ext.len()), (addr, 0, 0));
        let bytes = postcard::to_allocvec(&m).unwrap();
        assert_eq!(postcard::from_bytes::<Memory>(&bytes).unwrap(), m);
    }

    #[test]
    fn the_snapshot_encoding_of_memory_is_the_unpacked_layout() {
        let mut m = Memory::new(64, 65536);
        let p = m.take().unwrap();
        m.frames[p as usize].flags = 3;
        m.set_mapping(p, 7);
        m.set_refcount(p, 2);
        m.set_mapcount(p, 1);
        m.set_index(p, 0x0007_f000_0000);
        m.set_content(p, 1 << 40);
        m.frames[p as usize].set_lru_list(3);
        m.frames[p as usize].set_skey(0x16);
        #[derive(Serialize)]
        struct Unpacked {
            frames: Vec<FrameView>,
            free_head: u32,
            nr_free: u64,
            wmark: Watermarks,
        }
        let u = Unpacked {
            frames: (0..64).map(|pfn| m.view(pfn).unwrap()).collect(),
            free_head: m.threaded_free_head(),
            nr_free: m.nr_free,
            wmark: m.wmark,
        };
        let r = u.frames[p as usize];
        assert_eq!(
            (r.refcount, r.mapcount, r.index, r.content, r.lru_list, r.skey),
            (2, 1, 0x0007_f000_0000, 1 << 40, 3, 0x16)
        );
        assert_eq!(postcard::to_allocvec(&m).unwrap(), postcard::to_allocvec(&u).unwrap());
        let back: Memory = postcard::from_bytes(&postcard::to_allocvec(&m).unwrap()).unwrap();
        assert_eq!(back, m);
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
                m.set_refcount(p, 0);
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
        assert_eq!(m.refcount(a), 1);
        assert!(!m.is_free(a));
        m.set_refcount(a, 0);
        m.free_page(a);
        assert!(m.is_free(a));
        for _ in 0..15 {
            m.take().unwrap();
        }
        assert_eq!(m.take(), None);
        assert!(m.frames[ZERO_PFN as usize].test(PG_RESERVED));
    }
}
