//! A TLB in front of the x86_64 page tables, for the accessed bit (a named choice of the
//! model, off by default: [`crate::kernel::Kernel::set_x86_tlb`]).
//!
//! Why it matters: x86's `ptep_clear_flush_young` clears the accessed bit *without* a TLB
//! flush (arch/x86/mm/pgtable.c, v3.15+ and 6.12: "clearing the accessed bit without a TLB
//! flush doesn't cause data corruption"), and `ptep_test_and_clear_young` (MGLRU's
//! `walk_pte_range` and `lru_gen_look_around`, mm/vmscan.c 6.12) never flushes. The CPU sets
//! A only when it walks the page table to fill a TLB entry; an access through a translation
//! still cached leaves the PTE old, so a hot page can look unreferenced to reclaim until the
//! entry is flushed or evicted.
//!
//! The one TLB modelled is QEMU TCG's softmmu TLB of the user-mode MMU index, as the replay
//! oracle's guests have it (QEMU 7.2, `-accel tcg -cpu max -smp 1`; accel/tcg/cputlb.c and
//! target/i386/tcg/sysemu/excp_helper.c of 7.2):
//!
//! - a direct-mapped table indexed by `vpn & (size - 1)` (`tlb_index`), `1 << default_bits`
//!   entries at start (`tlb_mmu_init`, CPU_TLB_DYN_DEFAULT_BITS = 8), resized only at a full
//!   flush (`tlb_mmu_resize_locked`: the largest use seen in the window over the size above
//!   70% doubles it, up to 1 << CPU_TLB_DYN_MAX_BITS = 1 << 22 for x86_64; below 30% once the
//!   100 ms window expired it shrinks to the power of two above that use, doubled when that
//!   would be over 70% full, at least 1 << CPU_TLB_DYN_MIN_BITS = 64);
//! - an 8-entry victim TLB (CPU_VTLB_SIZE): a fill evicts a valid entry of another page into
//!   slot `vindex++ % 8` (`tlb_set_page_full`), a miss in the table that hits a victim entry
//!   of the access's kind swaps the two (`victim_tlb_hit`) without a page walk;
//! - a fill is x86's page walk (`mmu_translate`): it sets A, and D on a store; the entry is
//!   writable only when the PTE is dirty ("only set write access if already dirty... otherwise
//!   wait for dirty access"), so the first store through a clean translation walks again;
//! - `n_used_entries` as QEMU counts it: +1 per fill (also a refill of the page already in the
//!   slot), -1 per entry evicted to the victim TLB or flushed by `tlb_flush_page`
//!   (saturating here; QEMU's `size_t` could wrap); a full flush only of an MMU index filled
//!   since the last one (`tlb->c.dirty`).
//!
//! Simplifications: QEMU's 100 ms real-time window is measured on the model's simulated clock
//! (`Kernel::now`), which is not the TCG guest's; the kernel-mode MMU indexes (the guest
//! kernel's own accesses) are not modelled, nor large pages (THP off in the guests).

use serde::{Deserialize, Serialize};

/// The shape of a TLB: which one the model puts in front of the x86_64 page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlbGeometry {
    /// The name it is chosen by (`x86_tlb=`).
    pub name: &'static str,
    /// CPU_TLB_DYN_MIN_BITS.
    pub min_bits: u32,
    /// CPU_TLB_DYN_DEFAULT_BITS.
    pub default_bits: u32,
    /// CPU_TLB_DYN_MAX_BITS.
    pub max_bits: u32,
    /// CPU_VTLB_SIZE.
    pub victim: usize,
    /// The resize window (`window_len_ms` of `tlb_mmu_resize_locked`), in simulated ns.
    pub window_ns: u64,
}

/// QEMU 7.2's TCG softmmu TLB for an x86_64 guest (include/exec/cpu-defs.h: CPU_TLB_DYN_MIN_BITS
/// 6, CPU_TLB_DYN_DEFAULT_BITS 8, CPU_TLB_DYN_MAX_BITS `MIN(22, TARGET_VIRT_ADDR_SPACE_BITS -
/// TARGET_PAGE_BITS)` = 22, CPU_VTLB_SIZE 8; accel/tcg/cputlb.c `tlb_mmu_resize_locked`: a
/// 100 ms window).
pub const QEMU_TCG_7_2: TlbGeometry =
    TlbGeometry { name: "qemu-tcg-7.2", min_bits: 6, default_bits: 8, max_bits: 22, victim: 8, window_ns: 100_000_000 };

/// Every geometry by name.
pub const GEOMETRIES: [TlbGeometry; 1] = [QEMU_TCG_7_2];

impl TlbGeometry {
    /// The geometry called `name`.
    pub fn by_name(name: &str) -> Option<TlbGeometry> {
        GEOMETRIES.iter().copied().find(|g| g.name == name)
    }
}

const EMPTY: u64 = u64::MAX;

/// One cached translation: the page, its frame, and whether stores may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    vpn: u64,
    pfn: u32,
    write: bool,
}

impl Entry {
    const NONE: Entry = Entry { vpn: EMPTY, pfn: 0, write: false };
    #[inline]
    fn matches(&self, vpn: u64, pfn: u32, write: bool) -> bool {
        self.vpn == vpn && self.pfn == pfn && (!write || self.write)
    }
}

/// The TLB of the one CPU, with the CPU's view of which address space is loaded.
#[derive(Clone, Debug)]
pub struct Tlb {
    pub geometry: TlbGeometry,
    table: Vec<Entry>,
    victim: Vec<Entry>,
    vindex: usize,
    n_used: usize,
    window_begin: u64,
    window_max: usize,
    /// Filled since the last full flush (`tlb->c.dirty` of the MMU index).
    dirty: bool,
    /// The process whose page tables CR3 points to (None: `init_mm`, after a lazy CPU's flush
    /// switched to it).
    pub loaded: Option<u32>,
    /// A kernel thread runs (kswapd): lazy TLB mode, the last process's mm stays loaded.
    pub lazy: bool,
    /// The page each PTE slot was last cached for (the kernel flushes by address; the model's
    /// PTE primitives know the slot).
    slot_vpn: Vec<u64>,
    /// Full flushes, page flushes, fills, and accesses through a cached translation of an old
    /// PTE (the accesses reclaim cannot see) so far.
    pub full_flushes: u64,
    pub page_flushes: u64,
    pub fills: u64,
    pub stale_hits: u64,
}

impl Tlb {
    pub fn new(geometry: TlbGeometry) -> Tlb {
        Tlb {
            geometry,
            table: vec![Entry::NONE; 1 << geometry.default_bits],
            victim: vec![Entry::NONE; geometry.victim],
            vindex: 0,
            n_used: 0,
            window_begin: 0,
            window_max: 0,
            dirty: false,
            loaded: None,
            lazy: false,
            slot_vpn: Vec::new(),
            full_flushes: 0,
            page_flushes: 0,
            fills: 0,
            stale_hits: 0,
        }
    }

    /// Entries of the direct-mapped table now.
    pub fn size(&self) -> usize {
        self.table.len()
    }

    #[inline]
    fn index(&self, vpn: u64) -> usize {
        (vpn as usize) & (self.table.len() - 1)
    }

    /// Whether an access (a store with `write`) of page `vpn`, mapped to `pfn`, completes
    /// through a cached translation: the table's entry, else a victim entry swapped into the
    /// table (`victim_tlb_hit`). A miss is for [`Tlb::fill`] (the page walk).
    #[inline]
    pub fn lookup(&mut self, vpn: u64, pfn: u32, write: bool) -> bool {
        let i = self.index(vpn);
        if self.table[i].matches(vpn, pfn, write) {
            return true;
        }
        if let Some(v) = self.victim.iter().position(|e| e.matches(vpn, pfn, write)) {
            std::mem::swap(&mut self.table[i], &mut self.victim[v]);
            return true;
        }
        false
    }

    /// `tlb_set_page_full`: cache the translation the walk found for page `vpn` through PTE
    /// slot `slot` (`write`: the PTE is writable and dirty).
    pub fn fill(&mut self, vpn: u64, slot: usize, pfn: u32, write: bool) {
        if self.slot_vpn.len() <= slot {
            self.slot_vpn.resize(slot + 1, EMPTY);
        }
        self.slot_vpn[slot] = vpn;
        self.dirty = true;
        self.fills += 1;
        self.flush_victim_page(vpn);
        let i = self.index(vpn);
        let old = self.table[i];
        if old.vpn != EMPTY && old.vpn != vpn {
            let v = self.vindex % self.victim.len();
            self.vindex = self.vindex.wrapping_add(1);
            self.victim[v] = old;
            self.n_used = self.n_used.saturating_sub(1);
        }
        self.table[i] = Entry { vpn, pfn, write };
        self.n_used += 1;
    }

    fn flush_victim_page(&mut self, vpn: u64) {
        for e in self.victim.iter_mut().filter(|e| e.vpn == vpn) {
            *e = Entry::NONE;
            self.n_used = self.n_used.saturating_sub(1);
        }
    }

    /// `tlb_flush_page` (x86 INVLPG): drop the page from the table and the victim TLB.
    pub fn flush_page(&mut self, vpn: u64) {
        self.page_flushes += 1;
        let i = self.index(vpn);
        if self.table[i].vpn == vpn {
            self.table[i] = Entry::NONE;
            self.n_used = self.n_used.saturating_sub(1);
        }
        self.flush_victim_page(vpn);
    }

    /// [`Tlb::flush_page`] of the page last cached through PTE slot `slot`.
    pub fn flush_slot(&mut self, slot: usize) {
        if let Some(&vpn) = self.slot_vpn.get(slot).filter(|&&v| v != EMPTY) {
            self.flush_page(vpn);
        }
    }

    /// `tlb_flush` (a CR3 write): resize by the use seen (`tlb_mmu_resize_locked`), then empty
    /// everything (`tlb_mmu_flush_locked`); nothing for a TLB not filled since the last one.
    pub fn flush_all(&mut self, now: u64) {
        if !self.dirty {
            return;
        }
        self.full_flushes += 1;
        self.resize(now);
        self.table.fill(Entry::NONE);
        self.victim.fill(Entry::NONE);
        self.n_used = 0;
        self.vindex = 0;
        self.dirty = false;
    }

    fn resize(&mut self, now: u64) {
        let g = self.geometry;
        let old = self.table.len();
        let expired = now > self.window_begin.saturating_add(g.window_ns);
        self.window_max = self.window_max.max(self.n_used);
        let rate = self.window_max * 100 / old;
        let mut new = old;
        if rate > 70 {
            new = (old << 1).min(1 << g.max_bits);
        } else if rate < 30 && expired {
            let mut ceil = self.window_max.max(1).next_power_of_two();
            if self.window_max * 100 / ceil > 70 {
                ceil *= 2;
            }
            new = ceil.max(1 << g.min_bits);
        }
        if new == old {
            if expired {
                self.window_begin = now;
                self.window_max = self.n_used;
            }
            return;
        }
        self.window_begin = now;
        self.window_max = 0;
        self.table = vec![Entry::NONE; new];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// accel/tcg/cputlb.c (QEMU 7.2) `tlb_set_page_full` / `victim_tlb_hit`: a page evicted from
    /// its slot by a conflicting fill is still a hit through the victim TLB, until eight more
    /// evictions push it out.
    #[test]
    fn a_conflicting_fill_moves_the_old_entry_to_the_victim_tlb() {
        let mut t = Tlb::new(QEMU_TCG_7_2);
        let n = t.size() as u64;
        t.fill(5, 0, 1, false);
        t.fill(5 + n, 0, 2, false);
        assert!(t.lookup(5, 1, false), "swapped back from the victim TLB");
        assert!(t.lookup(5 + n, 2, false));
        for k in 1..=10 {
            t.fill(7 + k * n, 0, 3, false);
        }
        assert!(!t.lookup(7 + n, 3, false), "pushed out of the 8-entry victim TLB");
    }

    /// target/i386 `mmu_translate` (QEMU 7.2): a load's fill of a clean PTE leaves the entry
    /// read-only, so a store misses and walks (sets D).
    #[test]
    fn a_store_through_a_clean_translation_misses() {
        let mut t = Tlb::new(QEMU_TCG_7_2);
        t.fill(9, 0, 4, false);
        assert!(t.lookup(9, 4, false));
        assert!(!t.lookup(9, 4, true));
        t.fill(9, 0, 4, true);
        assert!(t.lookup(9, 4, true));
        assert!(!t.lookup(9, 5, false), "another frame is another translation");
    }

    /// `tlb_mmu_resize_locked`: a flush of a table over 70% used doubles it; one of a table
    /// under 30% used after the window shrinks it, never below 64 entries; a clean TLB is not
    /// flushed (nor resized).
    #[test]
    fn the_table_grows_when_full_and_shrinks_when_idle() {
        let mut t = Tlb::new(QEMU_TCG_7_2);
        for v in 0..200 {
            t.fill(v, 0, 1, false);
        }
        t.flush_all(1);
        assert_eq!(t.size(), 512);
        assert!(!t.lookup(3, 1, false));
        t.flush_all(2);
        assert_eq!((t.size(), t.full_flushes), (512, 1), "not filled since: no flush");
        t.fill(1, 0, 1, false);
        t.flush_all(2 + QEMU_TCG_7_2.window_ns / 2);
        assert_eq!(t.size(), 512, "window not expired");
        t.fill(1, 0, 1, false);
        t.flush_all(3 + QEMU_TCG_7_2.window_ns * 2);
        assert_eq!(t.size(), 64);
    }
}
