//! MGLRU's page-table walk as v6.12 has it (mm/vmscan.c, 6.12.117, `CONFIG_LRU_GEN_WALKS_MMU`,
//! which needs `ARCH_HAS_HW_PTE_YOUNG`: x86_64 has it, s390 does not): the mm list
//! (`lru_gen_mm_list`, `lru_gen_add_mm` / `lru_gen_del_mm`, `iterate_mm_list`), the walk state
//! of the lruvec (`struct lru_gen_mm_state`: where the last iteration ended, the two Bloom
//! filters, the mm stats) and `walk_mm` → `walk_pmd_range` → `walk_pte_range`.
//!
//! What decides which PTEs an aging walk looks at:
//! - Every mm on the list in the order it was added (fork, exec), each once per aging.
//! - An mm added since the last iteration (`mm_state->tail`), and every mm after it in that
//!   iteration, is walked with `force_scan`: all of its PTE tables.
//! - Otherwise a PTE table (a PMD entry) is walked only if the Bloom filter of this aging's
//!   `seq` has it (`test_bloom_filter`); a filter that was never allocated has everything.
//!   A walked table goes into the filter of `seq + 1` when at least one PTE in 8 of those it
//!   looked at was young (`suitable_to_scan`); `lru_gen_look_around` feeds the filter of
//!   `max_seq` the same way. The filter of `seq + 1` is cleared when the iteration starts
//!   (`reset_bloom_filter`): the two filters alternate per `max_seq`.
//! - With `LRU_GEN_NONLEAF_YOUNG` a table whose PMD entry is not young is skipped.
//!
//! Simplifications, each where it is made:
//! - Every live mm counts as used since the last walk (`mm->lru_gen.bitmap`, set by
//!   `lru_gen_use_mm` in `context_switch`): the model has no scheduler.
//! - The PMD entry's accessed bit is not stored: a PMD entry counts as young when a PTE of its
//!   table is. A table with no young PTE that the kernel walks finds nothing either, so the
//!   only difference is a table whose PTEs stayed young while its PMD bit was cleared (the
//!   kernel skips it until the next access through it).
//! - The Bloom filters hash a synthetic address of the PMD entry ([`pmd_entry_item`]): the
//!   filter's false positives fall on other tables than in a kernel.
//! - The walk runs to its end in one step: `walk->batched` / `MAX_LRU_BATCH` and
//!   `reset_batch_size` only split it (the generation sizes move at once), and
//!   `mm_state->seq` / `walk->seq` cannot go stale without concurrency.

use crate::arch::pgtable::Walk;
use crate::kernel::Kernel;
use crate::mm::vm;
use crate::vmscan::lru::lru_gen_folio::{
    LRU_GEN_ANON, LruGenMmState, MM_LEAF_TOTAL, MM_LEAF_YOUNG, MM_NONLEAF_ADDED, MM_NONLEAF_FOUND, MmTail,
    NR_BLOOM_FILTERS, caps, folio_type, lru_gen_from_seq,
};

/// `BLOOM_FILTER_SHIFT` (mm/vmscan.c, 6.12.117): 2^15 bits a filter.
const BLOOM_FILTER_SHIFT: u32 = 15;
const FILTER_WORDS: usize = (1 << BLOOM_FILTER_SHIFT) / 64;
/// `GOLDEN_RATIO_64` (include/linux/hash.h).
const GOLDEN_RATIO_64: u64 = 0x61C8_8646_80B5_83EB;

/// A PTE table a walk visits: the address it maps from, the flat index of its first slot, and
/// the address ranges of the walked VMAs in it.
type TableParts = (u64, usize, Vec<(u64, u64)>);

/// `filter_gen_from_seq`.
fn filter_gen_from_seq(seq: u64) -> usize {
    (seq % NR_BLOOM_FILTERS as u64) as usize
}

/// `get_item_key` (mm/vmscan.c, 6.12.117): `hash_ptr(item, BLOOM_FILTER_SHIFT * 2)` (on 64-bit
/// `hash_64`: the product with GOLDEN_RATIO_64, top 30 bits) split in two 15-bit keys.
fn get_item_key(item: u64) -> [usize; 2] {
    let hash = (item.wrapping_mul(GOLDEN_RATIO_64) >> (64 - BLOOM_FILTER_SHIFT * 2)) as usize;
    [hash & ((1 << BLOOM_FILTER_SHIFT) - 1), hash >> BLOOM_FILTER_SHIFT]
}

/// The address the kernel hashes for a PMD entry (`pmd + i`), synthesized: the direct-map
/// address of a PMD table page per mm and 1 GiB (`PAGE_OFFSET` 0xffff888000000000 of x86_64),
/// plus 8 bytes an entry.
pub fn pmd_entry_item(pid: u32, va: u64) -> u64 {
    const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
    let table = ((pid as u64) << 20) | ((va >> 30) & 0xf_ffff);
    PAGE_OFFSET + (table << 12) + ((va >> 21) & 511) * 8
}

/// `suitable_to_scan` (mm/vmscan.c, 6.12.117): at least one young PTE per cache line on average,
/// `n = clamp(cache_line_size() / sizeof(pte_t), 2, 8)`: 8 on x86_64 (64-byte lines).
pub fn suitable_to_scan(total: u64, young: u64) -> bool {
    young * 8 >= total
}

impl LruGenMmState {
    /// `test_bloom_filter` (mm/vmscan.c, 6.12.117): true when the filter of `seq` is not
    /// allocated or has both keys of `item`.
    pub fn test_bloom_filter(&self, seq: u64, item: u64) -> bool {
        let f = &self.filters[filter_gen_from_seq(seq)];
        if f.is_empty() {
            return true;
        }
        get_item_key(item).iter().all(|&k| f[k / 64] & (1 << (k % 64)) != 0)
    }

    /// `update_bloom_filter` (mm/vmscan.c, 6.12.117): set both keys of `item` in the filter of
    /// `seq`, if it is allocated.
    pub fn update_bloom_filter(&mut self, seq: u64, item: u64) {
        let f = &mut self.filters[filter_gen_from_seq(seq)];
        if f.is_empty() {
            return;
        }
        for k in get_item_key(item) {
            f[k / 64] |= 1 << (k % 64);
        }
    }

    /// `reset_bloom_filter` (mm/vmscan.c, 6.12.117): clear the filter of `seq`, allocating it
    /// (zeroed) the first time.
    pub fn reset_bloom_filter(&mut self, seq: u64) {
        let f = &mut self.filters[filter_gen_from_seq(seq)];
        f.clear();
        f.resize(FILTER_WORDS, 0);
    }
}

impl Kernel {
    /// Whether the lruvec has an `mm_state` (`CONFIG_LRU_GEN_WALKS_MMU`, on with
    /// `ARCH_HAS_HW_PTE_YOUNG`: x86_64, not s390), whatever the caps.
    pub(crate) fn lru_gen_walks_mmu(&self) -> bool {
        self.lru.lrugen.enabled && self.arch() == crate::arch::Arch::X86_64
    }

    /// `lru_gen_add_mm` (mm/vmscan.c, 6.12.117; from `copy_process` and `exec_mmap`): the new mm
    /// goes to the tail of the list; if it is the first since the last iteration, the walk
    /// state's `tail` points at it.
    pub(crate) fn lru_gen_add_mm(&mut self, pid: u32) {
        if self.lru_gen_walks_mmu() && self.lru.lrugen.mm_state.tail == MmTail::Fifo {
            self.lru.lrugen.mm_state.tail = MmTail::Mm(pid);
        }
    }

    /// `lru_gen_del_mm` (mm/vmscan.c, 6.12.117; from `__mmput`): if the last iteration's `tail`
    /// is this mm, it moves to the next one (or the list head).
    pub(crate) fn lru_gen_del_mm(&mut self, pid: u32) {
        if !self.lru_gen_walks_mmu() || self.lru.lrugen.mm_state.tail != MmTail::Mm(pid) {
            return;
        }
        let next = self.pids().into_iter().find(|&p| p > pid);
        self.lru.lrugen.mm_state.tail = next.map_or(MmTail::Fifo, MmTail::Mm);
    }

    /// `iterate_mm_list_nowalk` (mm/vmscan.c, 6.12.117): aging without a walk (the MM_WALK cap
    /// off) forgets where the last iteration ended.
    pub(crate) fn iterate_mm_list_nowalk(&mut self) {
        if self.lru_gen_walks_mmu() {
            self.lru.lrugen.mm_state.tail = MmTail::Null;
        }
    }

    /// The walk of `try_to_inc_max_seq` (mm/vmscan.c, 6.12.117) for `seq`: `iterate_mm_list`
    /// over the live mms in list order, `reset_bloom_filter(seq + 1)` when the first one is
    /// found, `force_scan` from the first mm added since the last iteration on, `walk_mm` each,
    /// the mm stats added to `mm_state` (`reset_mm_stats`); the list head is the new tail.
    pub(crate) fn lru_gen_walk_mm_list(&mut self, seq: u64, can_swap: bool, force_scan: bool) {
        let pids = self.pids();
        if pids.is_empty() {
            return;
        }
        self.lru.lrugen.mm_state.reset_bloom_filter(seq + 1);
        let mut force = force_scan;
        for pid in pids {
            let tail = self.lru.lrugen.mm_state.tail;
            if tail == MmTail::Null || tail == MmTail::Mm(pid) {
                // "force scan for those added after the last iteration"
                force = true;
            }
            self.walk_mm(pid, seq, can_swap, force);
        }
        self.lru.lrugen.mm_state.tail = MmTail::Fifo;
    }

    /// `should_skip_vma` (mm/vmscan.c, 6.12.117): inaccessible, without recency, VM_LOCKED or
    /// VM_SPECIAL VMAs, and anon or shmem ones (every model file is shmem) when anon cannot be
    /// swapped.
    fn should_skip_vma(&self, vma: u32, can_swap: bool) -> bool {
        let v = self.vma(vma);
        let accessible = v.flags & (vm::VM_READ | vm::VM_WRITE | vm::VM_EXEC) != 0;
        !accessible || !self.vma_has_recency(vma) || v.flags & (vm::VM_LOCKED | vm::VM_SPECIAL) != 0 || !can_swap
    }

    /// `walk_mm` → `walk_pud_range` → `walk_pmd_range` → `walk_pte_range` (mm/vmscan.c,
    /// 6.12.117) over the VMAs `should_skip_vma` leaves, in address order, one PMD entry at a
    /// time (`get_next_vma`: a PTE table shared by several VMAs is walked once, over the parts
    /// of all of them, and judged as one by `suitable_to_scan`). An absent PMD entry counts as
    /// a leaf. Unless `force_scan`: a table whose PMD entry is not young is skipped
    /// (`should_clear_pmd_young`, the NONLEAF_YOUNG cap), and so is one the Bloom filter of
    /// `seq` does not have. In a walked table each young PTE of a page of a generation is made
    /// old (`ptep_clear_young_notify`), a dirty one marks its page dirty, and the page goes to
    /// the youngest generation (`folio_update_gen`); anon pages are left when anon cannot be
    /// swapped (`get_pfn_folio`). A table with a young PTE in 8 goes into the filter of `seq + 1`.
    fn walk_mm(&mut self, pid: u32, seq: u64, can_swap: bool, force_scan: bool) {
        let ids: Vec<u32> = self.mmx(pid).vmas.values().copied().collect();
        let ranges: Vec<(u64, u64)> = ids
            .into_iter()
            .filter(|&id| !self.should_skip_vma(id, can_swap))
            .map(|id| (self.vma(id).start, self.vma(id).end))
            .collect();
        let geom = &self.arch().geometry().0;
        let (pt_span, pt_entries) = (geom.pt_span(), geom.pt_entries);
        let last = geom.upper_shifts.len() - 1;
        // the PTE tables and, per table, the address ranges of the VMAs in it
        let mut tables: Vec<TableParts> = Vec::new();
        let mut absent_pmds = 0u64;
        let mut last_absent = u64::MAX;
        for (start, end) in ranges {
            let mut va = start;
            while va < end {
                let base = va & !(pt_span - 1);
                let chunk_end = (base + pt_span).min(end);
                match self.mmx(pid).pt.walk(va) {
                    Walk::Pt(pt) => {
                        match tables.last_mut() {
                            Some((b, _, r)) if *b == base => r.push((va, chunk_end)),
                            _ => tables.push((base, pt as usize * pt_entries, vec![(va, chunk_end)])),
                        }
                        va = chunk_end;
                    }
                    Walk::EmptyAt(level) if level == last => {
                        // walk_pmd_range: !pmd_present counts MM_LEAF_TOTAL, once an entry
                        if base != last_absent {
                            absent_pmds += 1;
                            last_absent = base;
                        }
                        va = chunk_end;
                    }
                    Walk::EmptyAt(level) => {
                        let span = geom.level_span(level);
                        let Some(next) = (va & !(span - 1)).checked_add(span) else { break };
                        va = next;
                    }
                    Walk::BeyondTop => break,
                }
            }
        }
        let clear_pmd_young = !force_scan && self.lru.lrugen.caps & caps::LRU_GEN_NONLEAF_YOUNG != 0;
        let new_gen = lru_gen_from_seq(self.lru.lrugen.max_seq);
        let arch = self.arch();
        let mut stats = [absent_pmds, 0, 0, 0];
        let mut cand: Vec<usize> = Vec::with_capacity(pt_entries);
        for (base, first, parts) in tables {
            let item = pmd_entry_item(pid, base);
            // (the kernel tests the PMD entry's young bit first: the order changes nothing)
            if !force_scan && !self.lru.lrugen.mm_state.test_bloom_filter(seq, item) {
                continue;
            }
            if clear_pmd_young {
                let pt = &self.mmx(pid).pt;
                let pmd_young = (first..first + pt_entries).any(|i| {
                    let pte = pt.pte(i);
                    arch.pte_present(pte) && arch.pte_young(pte)
                });
                if !pmd_young {
                    continue;
                }
            }
            stats[MM_NONLEAF_FOUND] += 1;
            let (mut total, mut young) = (0u64, 0u64);
            for (lo, hi) in parts {
                let off = ((lo - base) >> 12) as usize;
                let n = ((hi - lo) >> 12) as usize;
                total += n as u64;
                // a first pass keeps the present young PTEs
                cand.clear();
                let pt = &self.mmx(pid).pt;
                cand.extend((first + off..first + off + n).filter(|&i| {
                    let pte = pt.pte(i);
                    arch.pte_present(pte) && arch.pte_young(pte)
                }));
                for &idx in &cand {
                    let pte = self.mmx(pid).pt.pte(idx);
                    let Some(pfn) = self.lru_gen_pte_pfn(pte) else { continue };
                    // get_pfn_folio: "file VMAs can contain anon pages from COW"
                    if !can_swap && folio_type(&self.mem.frames[pfn as usize]) == LRU_GEN_ANON {
                        continue;
                    }
                    if !self.ptep_test_and_clear_young(pid, idx) {
                        continue;
                    }
                    young += 1;
                    if arch.pte_dirty(pte) {
                        self.lru_gen_mark_dirty(pfn);
                    }
                    self.folio_update_gen(pfn, new_gen);
                }
            }
            stats[MM_LEAF_TOTAL] += total;
            stats[MM_LEAF_YOUNG] += young;
            if suitable_to_scan(total, young) {
                stats[MM_NONLEAF_ADDED] += 1;
                // carry over to the next generation
                self.lru.lrugen.mm_state.update_bloom_filter(seq + 1, item);
            }
        }
        for (s, v) in self.lru.lrugen.mm_state.stats.iter_mut().zip(stats) {
            *s += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::profile::Profile;
    use crate::testutil::proc_with_pages;
    use crate::vmscan::lru::lru_gen_folio::folio_lru_gen;

    const PMD_SIZE: u64 = 2 << 20;

    /// A "6.12-debian" x86_64 kernel (caps 0x0007: the walk) with 16 MiB of memory.
    fn walking_kernel() -> Kernel {
        Kernel::new(Profile::get("6.12-debian", Arch::X86_64).unwrap(), 16 << 20, 8 << 20, 1).unwrap()
    }

    fn age(k: &mut Kernel) -> u64 {
        let seq = k.lru.lrugen.max_seq;
        assert!(k.try_to_inc_max_seq(seq, true, false));
        seq
    }

    fn gen_at(k: &Kernel, pid: u32, addr: u64) -> Option<usize> {
        let pfn = k.arch().pte_pfn(k.pte_at(pid, addr).unwrap());
        folio_lru_gen(&k.mem.frames[pfn as usize])
    }

    fn young_at(k: &Kernel, pid: u32, addr: u64) -> bool {
        k.arch().pte_young(k.pte_at(pid, addr).unwrap())
    }

    fn touch(k: &mut Kernel, pid: u32, from: u64, pages: u64) {
        for i in 0..pages {
            k.access(pid, 0, from + i * 4096, false, 0).unwrap();
        }
    }

    /// A process with 1024 pages and the first whole PTE table inside them: (pid, its start).
    fn proc_with_a_whole_table(k: &mut Kernel) -> (u32, u64) {
        let (pid, a) = proc_with_pages(k, false, 1024);
        (pid, (a + PMD_SIZE - 1) & !(PMD_SIZE - 1))
    }

    /// 6.12.117 `walk_pmd_range` / `walk_pte_range` / `suitable_to_scan` / `update_bloom_filter`
    /// / `test_bloom_filter`: the first walk has no filter and walks every table; a table stays
    /// in the next walk's filter only while at least one PTE in 8 it looked at was young (64 of
    /// 512 on x86_64); one that fell out is not walked, so its young PTEs stay young and their
    /// pages stay in their generation.
    #[test]
    fn a_pte_table_with_fewer_than_one_young_pte_in_8_drops_out_of_the_next_walk() {
        let mut k = walking_kernel();
        let (pid, t) = proc_with_a_whole_table(&mut k);
        let item = pmd_entry_item(pid, t);
        let s0 = age(&mut k);
        assert!(!young_at(&k, pid, t + 300 * 4096), "the first walk (no filter yet) walked the table");
        assert!(k.lru.lrugen.mm_state.test_bloom_filter(s0 + 1, item), "all young: carried over");
        touch(&mut k, pid, t, 64);
        let s1 = age(&mut k);
        assert_eq!(gen_at(&k, pid, t + 63 * 4096), Some(lru_gen_from_seq(s1)));
        assert!(k.lru.lrugen.mm_state.test_bloom_filter(s1 + 1, item), "64 young of 512: suitable");
        touch(&mut k, pid, t, 63);
        let s2 = age(&mut k);
        assert_eq!(gen_at(&k, pid, t + 62 * 4096), Some(lru_gen_from_seq(s2)), "walked: in the filter");
        assert!(!k.lru.lrugen.mm_state.test_bloom_filter(s2 + 1, item), "63 young of 512: dropped");
        touch(&mut k, pid, t + 100 * 4096, 1);
        let s3 = age(&mut k);
        assert!(young_at(&k, pid, t + 100 * 4096), "not walked: the PTE is still young");
        assert_ne!(gen_at(&k, pid, t + 100 * 4096), Some(lru_gen_from_seq(s3)), "and its page not promoted");
        let stats = k.lru.lrugen.mm_state.stats;
        assert!(stats[MM_NONLEAF_FOUND] > stats[MM_NONLEAF_ADDED] && stats[MM_LEAF_TOTAL] > stats[MM_LEAF_YOUNG]);
        k.check_invariants().unwrap();
    }

    /// 6.12.117 `lru_gen_add_mm` / `iterate_mm_list` ("force scan for those added after the last
    /// iteration") / `lru_gen_del_mm`: an mm added since the last walk is walked in full although
    /// the filter has none of its tables; its exit moves the list's tail to the next new mm.
    #[test]
    fn an_mm_added_since_the_last_walk_is_walked_in_full() {
        let mut k = walking_kernel();
        let (pid, t) = proc_with_a_whole_table(&mut k);
        age(&mut k);
        age(&mut k); // nothing young: no table carried over
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Fifo);
        let (q, qa) = proc_with_pages(&mut k, false, 8);
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Mm(q));
        let r = k.spawn("r", false).unwrap();
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Mm(q), "the first one added since");
        touch(&mut k, pid, t, 1);
        let s = age(&mut k);
        assert!(young_at(&k, pid, t), "the old mm's table is not in the filter");
        assert!(!young_at(&k, q, qa + 7 * 4096), "the new mm was force-scanned");
        assert_eq!(gen_at(&k, q, qa), Some(lru_gen_from_seq(s)));
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Fifo);
        let q2 = k.spawn("q2", false).unwrap();
        let r2 = k.spawn("r2", false).unwrap();
        k.exit_mm(q2).unwrap();
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Mm(r2), "lru_gen_del_mm moves the tail on");
        k.exit_mm(r).unwrap();
        k.exit_mm(r2).unwrap();
        assert_eq!(k.lru.lrugen.mm_state.tail, MmTail::Fifo);
        k.check_invariants().unwrap();
    }

    /// 6.12.117 `lru_gen_look_around` ("feedback from rmap walkers to page table walkers"): when
    /// at least one PTE in 8 around the page reclaim looked at was young, its PTE table goes
    /// into the filter of `max_seq`, so the next walk looks at the table again.
    #[test]
    fn look_around_puts_a_young_table_back_into_the_walks_filter() {
        let mut k = walking_kernel();
        let (pid, t) = proc_with_a_whole_table(&mut k);
        let item = pmd_entry_item(pid, t);
        age(&mut k);
        age(&mut k);
        let max_seq = k.lru.lrugen.max_seq;
        assert!(!k.lru.lrugen.mm_state.test_bloom_filter(max_seq, item));
        touch(&mut k, pid, t, 8);
        let target = k.arch().pte_pfn(k.pte_at(pid, t + 32 * 4096).unwrap());
        touch(&mut k, pid, t + 32 * 4096, 1);
        assert!(k.isolate_lru_page(target));
        assert_eq!(k.folio_referenced(target).referenced, 1);
        k.putback_lru_page(target);
        assert!(k.lru.lrugen.mm_state.test_bloom_filter(max_seq, item), "9 young of 64: fed back");
        touch(&mut k, pid, t + 200 * 4096, 1);
        let s = age(&mut k);
        assert_eq!(gen_at(&k, pid, t + 200 * 4096), Some(lru_gen_from_seq(s)), "the next walk looked");
        k.check_invariants().unwrap();
    }

    /// CONFIG_LRU_GEN_WALKS_MMU needs ARCH_HAS_HW_PTE_YOUNG: s390 has no `mm_state`, so its
    /// aging leaves the list's tail and the filters alone.
    #[test]
    fn s390_ages_without_mm_state() {
        let mut k = Kernel::new(Profile::get("6.12-debian", Arch::S390x).unwrap(), 16 << 20, 8 << 20, 1).unwrap();
        proc_with_pages(&mut k, false, 16);
        age(&mut k);
        assert_eq!(k.lru.lrugen.mm_state, LruGenMmState::default());
    }
}
