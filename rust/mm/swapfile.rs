//! The swap device: slots with their `swap_map` counts and the data written to the slots
//! (mm/swapfile.c). The swap cache kept per slot is [`crate::mm::swap_state`].
//!
//! `swap_map[offset]` holds the kernel's byte: the number of swap PTEs (and shmem page-cache
//! entries) that reference the slot, plus `SWAP_HAS_CACHE` while a page of the swap cache
//! holds it. Counts above `SWAP_MAP_MAX` continue in continuation counts (`COUNT_CONTINUED`),
//! which the model never fails to allocate. Slot 0 is the swap header and never used.
//!
//! Simplifications: one swap device (type 0); slots are handed out next-fit from a cursor
//! instead of per-CPU clusters; writeback is synchronous (like zram or a ramdisk: "A
//! synchronous write - probably a ramdisk" in shrink_folio_list).

use crate::arch::Arch;
use crate::profile::Profile;
use serde::{Deserialize, Serialize};

pub const SWAP_HAS_CACHE: u8 = 0x40;
pub const COUNT_CONTINUED: u8 = 0x80;
pub const SWAP_MAP_MAX: u8 = 0x3e;
pub const SWAP_MAP_BAD: u8 = 0x3f;
/// The swap type of the one device.
pub const SWAP_TYPE: u32 = 0;

/// `MAX_SWAPFILES_SHIFT` (include/linux/swap.h): the generic swp_entry_t keeps 5 type bits.
pub const MAX_SWAPFILES_SHIFT: u32 = 5;

/// `MAX_SWAPFILES` (include/linux/swap.h): the swap types left for swap devices once the
/// special types are reserved, `(1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM -
/// SWP_MIGRATION_NUM - SWP_HWPOISON_NUM [- SWP_PTE_MARKER_NUM]` (the last term since v5.19).
/// The config of each arch: CONFIG_MIGRATION on both; CONFIG_DEVICE_PRIVATE and
/// CONFIG_MEMORY_FAILURE on x86_64 (a distribution config), neither on s390 (no
/// ARCH_HAS_PTE_DEVMAP for ZONE_DEVICE, no ARCH_SUPPORTS_MEMORY_FAILURE). SWP_MIGRATION_NUM is
/// 2 (READ, WRITE) before 6c287605fd56 added SWP_MIGRATION_READ_EXCLUSIVE (v5.19,
/// [`Profile::pg_anon_exclusive`]). So s390x: 30 on 4.13/4.17/4.18, 28 on 6.12; x86_64: 29 on
/// 4.13 (no SWP_DEVICE yet), 27 on 4.17/4.18, 23 on 6.12.
pub fn max_swapfiles(profile: &Profile) -> u32 {
    let x86 = profile.arch == Arch::X86_64;
    // a derived profile may ask for any count: at most every type is reserved
    let device = if x86 { u32::try_from(profile.swp_device_types).unwrap_or(u32::MAX) } else { 0 };
    let migration = if profile.pg_anon_exclusive { 3 } else { 2 };
    let hwpoison = u32::from(x86);
    let marker = u32::from(profile.pte_markers);
    (1u32 << MAX_SWAPFILES_SHIFT).saturating_sub(device + migration + hwpoison + marker)
}

/// Errors of the `swap_map` operations, with the kernel errnos they stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapErr {
    /// -ENOENT: the entry is not in use.
    NoEnt,
    /// -EEXIST: `swapcache_prepare` on an entry that already has a cache page.
    Exist,
}

/// One swap device.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwapDevice {
    /// Slots including the header slot 0.
    nr: u32,
    map: Vec<u8>,
    /// Counts above SWAP_MAP_MAX (continuation pages), by offset.
    cont: std::collections::BTreeMap<u32, u32>,
    /// The swap cache: pfn + 1 of the page caching each slot (0 = none).
    pub(super) cache: Vec<u32>,
    /// What was written to each slot.
    data: Vec<u64>,
    /// Workingset shadow of an evicted page: the eviction clock + 1 (0 = none).
    pub(super) shadow: Vec<u32>,
    cursor: u32,
    inuse: u32,
    /// The swap cache's xarrays, when kept (crate::mm::swap_state::xarray).
    #[serde(skip)]
    pub(super) xa: crate::mm::swap_state::xarray::XaShape,
}

crate::sim::clone_fields::clone_fields!(SwapDevice { nr, map, cont = crate::sim::clone_fields::clone_if_changed, cache, data, shadow, cursor, inuse, xa });

impl SwapDevice {
    /// A device of `pages` pages (0 = no swap). Page 0 holds the header.
    pub fn new(pages: u32) -> SwapDevice {
        let n = pages as usize;
        SwapDevice {
            nr: pages,
            map: vec![0; n],
            cont: Default::default(),
            cache: vec![0; n],
            data: vec![0; n],
            shadow: vec![0; n],
            cursor: 1,
            inuse: 0,
            xa: Default::default(),
        }
    }

    /// Start loading what a swap fault reads of slot `off` (its count, swap-cache entry,
    /// data and shadow) into the cache: a hint for a look ahead ([`crate::sim::prefetch`]),
    /// which changes nothing; an offset beyond the device is ignored.
    #[inline]
    pub fn prefetch_slot(&self, off: u32) {
        let i = off as usize;
        if let (Some(m), Some(c), Some(d), Some(s)) =
            (self.map.get(i), self.cache.get(i), self.data.get(i), self.shadow.get(i))
        {
            crate::sim::prefetch::line(m);
            crate::sim::prefetch::line(c);
            crate::sim::prefetch::line(d);
            crate::sim::prefetch::line(s);
        }
    }

    /// Usable slots (`si->pages`: all but the header).
    pub fn total(&self) -> u32 {
        self.nr.saturating_sub(1)
    }

    /// Slots in use (`si->inuse_pages`).
    pub fn inuse(&self) -> u32 {
        self.inuse
    }

    /// Whether more than half the swap is used: `vm_swap_full()` (include/linux/swap.h,
    /// 4.13..6.12: `nr_swap_pages * 2 < total_swap_pages`).
    pub fn full_half(&self) -> bool {
        self.inuse * 2 > self.total()
    }

    pub fn is_valid(&self, off: u32) -> bool {
        off >= 1 && off < self.nr
    }

    /// The raw `swap_map` byte.
    #[inline]
    pub fn map(&self, off: u32) -> u8 {
        self.map[off as usize]
    }

    /// `swap_count`: the references without SWAP_HAS_CACHE (continuations included).
    pub fn count(&self, off: u32) -> u32 {
        let m = self.map[off as usize];
        let base = (m & !(SWAP_HAS_CACHE | COUNT_CONTINUED)) as u32;
        if m & COUNT_CONTINUED != 0 { base + self.cont.get(&off).copied().unwrap_or(0) } else { base }
    }

    #[inline]
    pub fn has_cache(&self, off: u32) -> bool {
        self.map[off as usize] & SWAP_HAS_CACHE != 0
    }

    /// `get_swap_page` / `folio_alloc_swap`: a free slot with SWAP_HAS_CACHE set, or `None`
    /// when the device is full or absent.
    pub fn alloc(&mut self) -> Option<u32> {
        if self.inuse >= self.total() {
            return None;
        }
        let n = self.nr;
        let mut off = self.cursor;
        for _ in 0..n {
            if off == 0 || off >= n {
                off = 1;
            }
            if self.map[off as usize] == 0 {
                self.map[off as usize] = SWAP_HAS_CACHE;
                self.inuse += 1;
                self.cursor = off + 1;
                self.shadow[off as usize] = 0;
                self.xa_update(off);
                return Some(off);
            }
            off += 1;
        }
        None
    }

    fn set_count(&mut self, off: u32, count: u32) {
        let cache = self.map[off as usize] & SWAP_HAS_CACHE;
        if count > SWAP_MAP_MAX as u32 {
            self.map[off as usize] = cache | COUNT_CONTINUED | SWAP_MAP_MAX;
            self.cont.insert(off, count - SWAP_MAP_MAX as u32);
        } else {
            self.map[off as usize] = cache | count as u8;
            self.cont.remove(&off);
        }
        self.release_if_free(off);
        self.xa_update(off);
    }

    fn release_if_free(&mut self, off: u32) {
        if self.map[off as usize] == 0 {
            self.inuse -= 1;
            self.data[off as usize] = 0;
        }
    }

    /// `swap_duplicate` = `__swap_duplicate(entry, 1)` (mm/swapfile.c, 4.13..6.12): one more
    /// reference. -ENOENT if the slot is free or bad.
    pub fn duplicate(&mut self, off: u32) -> Result<(), SwapErr> {
        let m = self.map[off as usize];
        if m == 0 || m == SWAP_MAP_BAD {
            return Err(SwapErr::NoEnt);
        }
        if self.count(off) == 0 && m & SWAP_HAS_CACHE == 0 {
            return Err(SwapErr::NoEnt);
        }
        let c = self.count(off) + 1;
        self.set_count(off, c);
        Ok(())
    }

    /// `swapcache_prepare` = `__swap_duplicate(entry, SWAP_HAS_CACHE)` (mm/swapfile.c,
    /// 4.13..6.12): claim SWAP_HAS_CACHE for a swap-in. -EEXIST if a cache page
    /// already holds it, -ENOENT if the entry is free.
    pub fn cache_prepare(&mut self, off: u32) -> Result<(), SwapErr> {
        let m = self.map[off as usize];
        if m & SWAP_HAS_CACHE != 0 {
            return Err(SwapErr::Exist);
        }
        if self.count(off) == 0 {
            return Err(SwapErr::NoEnt);
        }
        self.map[off as usize] |= SWAP_HAS_CACHE;
        Ok(())
    }

    /// `swap_free`: drop one reference. Returns the remaining `swap_map` byte.
    pub fn free(&mut self, off: u32) -> u8 {
        let c = self.count(off);
        debug_assert!(c > 0, "swap_free of an unreferenced slot {off}");
        self.set_count(off, c.saturating_sub(1));
        self.map[off as usize]
    }

    /// `put_swap_folio` / `swapcache_free`: drop SWAP_HAS_CACHE (the cache page is gone).
    pub fn put_cache(&mut self, off: u32) {
        self.map[off as usize] &= !SWAP_HAS_CACHE;
        self.cache[off as usize] = 0;
        self.release_if_free(off);
        self.xa_update(off);
    }

    /// `swap_writepage`: store the page's content in the slot.
    pub fn write(&mut self, off: u32, content: u64) {
        self.data[off as usize] = content;
    }

    /// mm/page_io.c `swap_read_folio` (6.12; 4.17 `swap_readpage`): the content of the slot
    /// (synchronous I/O).
    pub fn read(&self, off: u32) -> u64 {
        self.data[off as usize]
    }

    /// Offsets in use, for invariants and inspection.
    pub fn used_slots(&self) -> impl Iterator<Item = u32> + '_ {
        (1..self.nr).filter(move |o| self.map[*o as usize] != 0)
    }

    /// Check the device's tables: one entry per slot in each, swap-cache pages below
    /// `nr_frames`, `inuse` equal to the used slots.
    pub fn check(&self, nr_frames: usize) -> Result<(), String> {
        let n = self.nr as usize;
        if [self.map.len(), self.cache.len(), self.data.len(), self.shadow.len()] != [n; 4] {
            return Err(format!("swap device of {n} slots has tables of other sizes"));
        }
        if let Some(off) = self.cache.iter().position(|&c| c as usize > nr_frames) {
            return Err(format!("swap slot {off} is cached by pfn {}, beyond memory", self.cache[off] - 1));
        }
        let used = self.used_slots().count();
        if used != self.inuse as usize || self.map.first().is_some_and(|&m| m != 0) {
            return Err(format!("swap inuse {} but {used} slots are used", self.inuse));
        }
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        self.map.capacity() + self.cache.capacity() * 4 + self.data.capacity() * 8 + self.shadow.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    /// `MAX_SWAPFILES` (include/linux/swap.h of 4.13, 4.17, 4.18 and 6.12) with each arch's
    /// config: the special types (device, migration, hwpoison, PTE marker) come off the 32.
    #[test]
    fn max_swapfiles_leaves_out_the_special_swap_types_of_the_release_and_config() {
        use crate::arch::Arch;
        use crate::profile::Profile;
        let m = |n: &str, a: Arch| super::max_swapfiles(&Profile::get(n, a).unwrap());
        for (n, s390, x86) in [("4.13", 30, 29), ("4.17", 30, 27), ("4.18", 30, 27), ("6.12", 28, 23)] {
            assert_eq!(m(n, Arch::S390x), s390, "{n} s390x");
            assert_eq!(m(n, Arch::X86_64), x86, "{n} x86_64");
        }
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_slot_is_never_used_and_full_device_fails() {
        let mut s = SwapDevice::new(4);
        assert_eq!(s.total(), 3);
        let got: Vec<u32> = (0..3).map(|_| s.alloc().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(s.alloc(), None);
        assert_eq!(SwapDevice::new(0).alloc(), None);
    }

    /// `vm_swap_full()` (include/linux/swap.h, 4.13..6.12):
    /// `atomic_long_read(&nr_swap_pages) * 2 < total_swap_pages` — true only once the free slots
    /// are fewer than half, i.e. strictly more than half in use (do_swap_page and reclaim then
    /// drop the swap-cache copy).
    #[test]
    fn vm_swap_full_is_true_only_past_half_of_the_slots() {
        let mut s = SwapDevice::new(5); // 4 usable slots
        s.alloc().unwrap();
        s.alloc().unwrap();
        assert!(!s.full_half(), "2 free of 4: 2 * 2 < 4 is false");
        s.alloc().unwrap();
        assert!(s.full_half(), "1 free of 4: 1 * 2 < 4");
        // and with no swap at all: 0 * 2 < 0 is false
        assert!(!SwapDevice::new(0).full_half());
    }

    /// `swapcache_prepare` = `__swap_duplicate(entry, SWAP_HAS_CACHE)` (mm/swapfile.c, 4.13..6.12):
    /// -EEXIST when a cache page holds the entry, -ENOENT when no reference is left; and
    /// `swap_duplicate` of an entry that only the swap cache holds still succeeds
    /// (`else if (count || has_cache)`).
    #[test]
    fn swapcache_prepare_and_swap_duplicate_errnos_as_swap_duplicate() {
        let mut s = SwapDevice::new(4);
        let o = s.alloc().unwrap(); // SWAP_HAS_CACHE, count 0
        assert_eq!(s.cache_prepare(o), Err(SwapErr::Exist));
        assert_eq!(s.duplicate(o), Ok(()), "count || has_cache");
        assert_eq!(s.map(o), SWAP_HAS_CACHE | 1);
        s.free(o);
        s.put_cache(o);
        assert_eq!(s.cache_prepare(o), Err(SwapErr::NoEnt), "no users remaining");
    }

    #[test]
    fn cache_and_references() {
        let mut s = SwapDevice::new(8);
        let o = s.alloc().unwrap();
        assert_eq!(s.map(o), SWAP_HAS_CACHE);
        s.duplicate(o).unwrap();
        assert_eq!(s.map(o), SWAP_HAS_CACHE | 1);
        s.put_cache(o);
        assert_eq!(s.map(o), 1);
        assert_eq!(s.cache_prepare(o), Ok(()));
        assert_eq!(s.cache_prepare(o), Err(SwapErr::Exist));
        s.free(o);
        assert_eq!(s.map(o), SWAP_HAS_CACHE);
        s.put_cache(o);
        assert_eq!(s.map(o), 0);
        assert_eq!(s.inuse(), 0);
        assert_eq!(s.duplicate(o), Err(SwapErr::NoEnt));
    }

    proptest! {
        #[test]
        fn counts_continue_past_swap_map_max(n in 1u32..300) {
            let mut s = SwapDevice::new(4);
            let o = s.alloc().unwrap();
            for _ in 0..n { s.duplicate(o).unwrap(); }
            prop_assert_eq!(s.count(o), n);
            if n > SWAP_MAP_MAX as u32 {
                prop_assert_ne!(s.map(o) & COUNT_CONTINUED, 0);
            }
            for _ in 0..n { s.free(o); }
            prop_assert_eq!(s.map(o), SWAP_HAS_CACHE);
            s.put_cache(o);
            prop_assert_eq!(s.inuse(), 0);
        }
    }
}
