//! `do_swap_page` (mm/memory.c): a fault on a swap PTE. It is resolved by reading the page
//! back (or finding it in the swap cache); it never raises a userfault.

use super::{Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::swap_state::Shadow;
use crate::mm::vmstat::Vm;
use crate::mm::{MM_ANONPAGES, MM_SWAPENTS, vm};
use crate::sim::log::{Ev, fault_path};

impl Kernel {
    /// Bring swap slot `off` into the swap cache: the cached page, or a new page read from the
    /// device (mm/swap_state.c `read_swap_cache_async` / `__read_swap_cache_async`, 4.17 and
    /// 6.12: `swapcache_prepare`, add to the swap cache, `workingset_refault` of its shadow, the
    /// LRU, then `swap_read_folio`: PSWPIN, and PGPGIN in KiB as /proc/vmstat shows it).
    /// Returns (pfn with a reference for the caller, major).
    pub(crate) fn swapin_page(&mut self, off: u32) -> Result<(u32, bool), Fault> {
        if let Some(pfn) = self.swap.cache_page(off) {
            self.get_page(pfn);
            return Ok((pfn, false));
        }
        let Some(pfn) = self.alloc_user_page() else {
            return Err(Fault::Oom);
        };
        if let Some(p) = self.swap.cache_page(off) {
            // another path brought it in while we allocated
            self.put_page(pfn);
            self.get_page(p);
            return Ok((p, false));
        }
        if self.swap.cache_prepare(off).is_err() {
            // the entry was freed meanwhile: the PTE changed, retry the fault
            self.put_page(pfn);
            return Err(Fault::Retry);
        }
        let content = self.swap.read(off);
        self.swap.set_cache_page(off, Some(pfn));
        self.mem.set_content(pfn, content);
        let f = &mut self.mem.frames[pfn as usize];
        f.private = off + 1;
        f.set(pg::PG_SWAPCACHE | pg::PG_SWAPBACKED | pg::PG_UPTODATE);
        self.mem.inc_refcount(pfn); // the swap cache's reference
        self.workingset_refault(pfn, off);
        self.lru_cache_add(pfn);
        self.vmstat.inc(Vm::pswpin);
        self.vmstat.add(Vm::pgpgin, crate::mm::vmstat::PGPG_PER_PAGE);
        self.tick(self.cost.swap_read);
        self.log(Ev::SwapIn, 0, 0, 0, pfn as u64, off as u64, 1);
        Ok((pfn, true))
    }

    /// `workingset_refault` (mm/workingset.c v6.12) for an anon page (v5.9+): every refault
    /// of a page that left a shadow counts WORKINGSET_REFAULT; one whose refault distance fits
    /// the workingset (`workingset_test_recent`) is activated ("folio_set_active(folio);
    /// workingset_age_nonresident(lruvec, nr);", WORKINGSET_ACTIVATE), and if it was
    /// PG_workingset when evicted ("Folio was active prior to eviction") it is PG_workingset
    /// again and counts WORKINGSET_RESTORE.
    fn workingset_refault(&mut self, pfn: u32, off: u32) {
        let Some(shadow) = self.swap.take_shadow(off) else {
            return;
        };
        if self.lru_gen_enabled() {
            // workingset_refault → lru_gen_refault (6.12.117), `lru_gen_in_fault()` read there
            self.lru_gen_refault(pfn, shadow, self.in_lru_fault);
            return;
        }
        if !self.profile.workingset_anon {
            return;
        }
        self.vmstat.inc(Vm::workingset_refault_anon);
        if !self.workingset_test_recent(shadow) {
            return;
        }
        self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
        self.workingset_age();
        self.vmstat.inc(Vm::workingset_activate_anon);
        if shadow.workingset {
            self.mem.frames[pfn as usize].set(pg::PG_WORKINGSET);
            if self.profile.scan_balance_by_cost {
                self.lru_note_cost(false, 1, 0); // lru_note_cost_refault
            }
            self.vmstat.inc(Vm::workingset_restore_anon);
        }
    }

    /// `workingset_test_recent` (mm/workingset.c v6.12) for an anon shadow: the refault
    /// distance (`(refault - eviction) & EVICTION_MASK`) against the workingset: the file
    /// lists, and the active anon list while free swap remains
    /// (`mem_cgroup_get_nr_swap_pages(eviction_memcg) > 0`): "We don't activate pages that
    /// couldn't stay resident even if all the memory was available to the workingset."
    fn workingset_test_recent(&self, shadow: Shadow) -> bool {
        use crate::vmscan::lru::LruList;
        let distance = self.nonresident_age.wrapping_sub(shadow.eviction) & Shadow::EVICTION_MASK;
        // `lruvec_page_state(eviction_lruvec, …)`: as last flushed with "rstat-6.12-lru"
        let mut ws =
            self.lruvec_page_state_lru(LruList::ActiveFile) + self.lruvec_page_state_lru(LruList::InactiveFile);
        if self.swap.inuse() < self.swap.total() {
            ws += self.lruvec_page_state_lru(LruList::ActiveAnon);
        }
        distance as u64 <= ws
    }

    /// `do_swap_page` (mm/memory.c, v4.13..v6.12): the page from the swap cache
    /// (`swap_cache_get_folio`) or read with readahead (`swapin_readahead`, a major fault;
    /// [`crate::mm::swap_state`]). The device is never SWP_SYNCHRONOUS_IO (no swap-cache
    /// bypass): a rotational disk. A hwpoison entry (x86_64, [`crate::mm::memory_failure`]) is
    /// `is_hwpoison_entry` → VM_FAULT_HWPOISON, which the arch fault handler turns into SIGBUS;
    /// a PTE marker (v5.19+) is `is_pte_marker_entry` → `handle_pte_marker`
    /// ([`crate::mm::pte_marker`]).
    pub(crate) fn do_swap_page(&mut self, vmf: Vmf, orig: u64) -> Fault {
        let arch = self.arch();
        let swp = self.swp_format();
        if self.is_hwpoison_entry(orig) {
            return Fault::Sigbus;
        }
        if self.is_pte_marker(orig) {
            return self.handle_pte_marker(vmf);
        }
        let off = swp.swp_offset(orig) as u32;
        if !self.swap.is_valid(off) {
            return Fault::Sigbus;
        }
        // swap_cache_get_folio; on a miss swapin_readahead, and "Had to read the page from swap
        // area: Major fault" even when readahead read it
        let (pfn, major) = match self.swap_cache_get_folio(off) {
            Some(pfn) => {
                self.get_page(pfn);
                (pfn, false)
            }
            None => {
                self.swap_cluster_readahead(off);
                match self.swapin_page(off) {
                    Ok((pfn, _)) => (pfn, true),
                    Err(f) => return f,
                }
            }
        };
        if major {
            self.count_majfault();
            // folio_lock_or_retry: the process sleeps until the read completes
            self.io_schedule();
        }
        // the PTE may have changed while we read (pte_same check)
        let cur = self.mmx(vmf.pid).pt.pte(vmf.idx);
        let f = self.mem.frames[pfn as usize];
        if cur != orig || f.swap_offset() != Some(off) {
            self.put_page(pfn);
            return Fault::Retry;
        }
        if self.profile.swapin_exclusive_writable {
            return self.do_swap_page_exclusive(vmf, orig, pfn, off, major);
        }
        let prot = self.vma(vmf.vma).page_prot;
        let mut pte = self.mk_pte(pfn, prot);
        // 4.x reuse_swap_page / 6.x exclusive: a write fault on a page only this PTE uses takes
        // it over: out of the swap cache, mapped writable and dirty
        let exclusive = !f.mapped() && self.swap.count(off) == 1;
        if vmf.write && exclusive {
            // 4.17 reuse_swap_page: "if (!PageWriteback(page)) { delete_from_swap_cache(page);
            // SetPageDirty(page); }" (else, without SWP_STABLE_WRITES, reused in the cache)
            if !f.test(pg::PG_WRITEBACK) {
                self.delete_from_swap_cache(pfn);
                self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
            }
            pte = arch.pte_mkwrite(arch.pte_mkdirty(pte));
        }
        if arch.pte_swp_soft_dirty(orig) {
            pte = arch.pte_mksoft_dirty(pte);
        }
        pte = self.pte_carry_uffd_wp(orig, pte);
        // v5.19+ (`Profile::swapin_exclusive_writable`), mm/memory.c v6.12 do_swap_page: "if
        // (!folio_test_ksm(folio) && (exclusive || folio_ref_count(folio) == 1)) { if
        // ((vma->vm_flags & VM_WRITE) && !userfaultfd_pte_wp(vma, pte) &&
        // !pte_needs_soft_dirty_wp(vma, pte)) { pte = pte_mkwrite(pte, vma);" with `exclusive =
        // pte_swp_exclusive(vmf->orig_pte)`: a read fault maps the page writable (clean, still
        // in the swap cache: should_try_to_free_swap needs FAULT_FLAG_WRITE), so the first write
        // takes no do_wp_page fault. Soft-dirty write protection is not modelled.
        let swp_excl = self.profile.swp_exclusive && arch.pte_swp_exclusive(orig);
        if !vmf.write
            && self.profile.swapin_exclusive_writable
            && swp_excl
            && self.vma(vmf.vma).flags & vm::VM_WRITE != 0
            && !arch.pte_uffd_wp(pte)
        {
            pte = arch.pte_mkwrite(pte);
        }
        self.add_rss(vmf.pid, MM_ANONPAGES, 1);
        self.add_rss(vmf.pid, MM_SWAPENTS, -1);
        self.set_pte_at(vmf.pid, vmf.idx, pte);
        // do_page_add_anon_rmap: the first mapping files the page under the VMA's anon_vma
        // (exclusive) or its root (shared)
        if self.file_swapped_in_anon_page(&vmf, pfn, exclusive) && (exclusive || swp_excl) {
            let x = self.anon_exclusive_flag();
            self.mem.frames[pfn as usize].set(x);
        }
        self.page_add_rmap(pfn);
        if self.profile.swapin_activates {
            self.activate_page(pfn);
        }
        // swap_free(entry): with the swap cache gone above, this frees the slot
        self.swap.free(off);
        let flags = self.vma(vmf.vma).flags;
        let fm = self.mem.frames[pfn as usize];
        if fm.test(pg::PG_SWAPCACHE) && (self.swap.full_half() || flags & vm::VM_LOCKED != 0 || fm.test(pg::PG_MLOCKED))
        {
            self.try_to_free_swap(pfn);
        }
        let path = if major { fault_path::SWAP_MAJOR } else { fault_path::SWAP_CACHE };
        self.tick(self.cost.minor_fault);
        self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, path, vmf.write as u64);
        Fault::Retry
    }

    /// The anon rmap of a page swapped in at `vmf` (`do_page_add_anon_rmap` 4.x,
    /// `folio_add_anon_rmap_ptes` 6.12): its first mapping files it under the VMA's anon_vma
    /// when `exclusive` (RMAP_EXCLUSIVE) or under that anon_vma's root, at the address's page
    /// offset, as a swap-backed anon page. Returns whether this was the first mapping.
    fn file_swapped_in_anon_page(&mut self, vmf: &Vmf, pfn: u32, exclusive: bool) -> bool {
        if self.mem.mapcount(pfn) != 0 {
            return false;
        }
        let av = self.anon_vma_prepare(vmf.vma);
        let root = if exclusive { av } else { self.anon_vmas[av as usize].root };
        let index = self.vma(vmf.vma).pgoff_of(vmf.addr);
        self.mem.set_index(pfn, index);
        self.mem.set_mapping(pfn, root + 1);
        let fm = &mut self.mem.frames[pfn as usize];
        fm.set(pg::PAGE_MAPPING_ANON | pg::PG_SWAPBACKED);
        true
    }

    /// The v5.19+ tail of `do_swap_page` (mm/memory.c v6.12.117; c145e0b47c77 "mm: streamline
    /// COW logic in do_swap_page()", [`Profile::swapin_exclusive_writable`](crate::profile::Profile)),
    /// once the page is in the swap cache and the PTE unchanged: `swap_free_nr`, then
    /// `should_try_to_free_swap` (swap more than half full, VM_LOCKED, mlocked, or a write fault
    /// with no reference but ours and the swap cache's) → `folio_free_swap`; the page is exclusive
    /// when the swap PTE said so (`pte_swp_exclusive`) or ours is now its only reference
    /// (`folio_ref_count(folio) == 1`), and only an exclusive page is mapped writable (dirty for a
    /// write fault) and filed RMAP_EXCLUSIVE. A write fault on a page that is not exclusive is
    /// left to `do_wp_page` (the retried access).
    fn do_swap_page_exclusive(&mut self, vmf: Vmf, orig: u64, pfn: u32, off: u32, major: bool) -> Fault {
        let arch = self.arch();
        let flags = self.vma(vmf.vma).flags;
        let mapped_elsewhere = self.mem.mapcount(pfn) > 0;
        // swap_free_nr(entry, nr_pages)
        self.swap.free(off);
        let fm = self.mem.frames[pfn as usize];
        if fm.test(pg::PG_SWAPCACHE)
            && (self.swap.full_half()
                || flags & vm::VM_LOCKED != 0
                || fm.test(pg::PG_MLOCKED)
                || (vmf.write && !mapped_elsewhere))
        {
            // folio_free_swap: only when no swap PTE references the slot any more
            self.try_to_free_swap(pfn);
        }
        let sole = !self.mem.frames[pfn as usize].test(pg::PG_SWAPCACHE) && !mapped_elsewhere;
        let swp_excl = self.profile.swp_exclusive && arch.pte_swp_exclusive(orig);
        let exclusive = swp_excl || sole;
        let mut pte = arch.mk_pte(pfn, self.vma(vmf.vma).page_prot);
        if arch.pte_swp_soft_dirty(orig) {
            pte = arch.pte_mksoft_dirty(pte);
        }
        pte = self.pte_carry_uffd_wp(orig, pte);
        // "if ((vma->vm_flags & VM_WRITE) && !userfaultfd_pte_wp(vma, pte) &&
        // !pte_needs_soft_dirty_wp(vma, pte)) { pte = pte_mkwrite(pte, vma); if (vmf->flags &
        // FAULT_FLAG_WRITE) { pte = pte_mkdirty(pte);" (soft-dirty write protection is not
        // modelled)
        if exclusive && flags & vm::VM_WRITE != 0 && !arch.pte_uffd_wp(pte) {
            pte = arch.pte_mkwrite(pte);
            if vmf.write {
                pte = arch.pte_mkdirty(pte);
            }
        }
        self.add_rss(vmf.pid, MM_ANONPAGES, 1);
        self.add_rss(vmf.pid, MM_SWAPENTS, -1);
        self.set_pte_at(vmf.pid, vmf.idx, pte);
        // folio_add_anon_rmap_ptes(…, rmap_flags): the first mapping files the page under the
        // VMA's anon_vma (RMAP_EXCLUSIVE) or its root
        self.file_swapped_in_anon_page(&vmf, pfn, exclusive);
        if exclusive {
            let x = self.anon_exclusive_flag();
            self.mem.frames[pfn as usize].set(x);
        }
        self.page_add_rmap(pfn);
        if self.profile.swapin_activates {
            self.activate_page(pfn);
        }
        let path = if major { fault_path::SWAP_MAJOR } else { fault_path::SWAP_CACHE };
        self.tick(self.cost.minor_fault);
        self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, path, vmf.write as u64);
        Fault::Retry
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::Access;
    use crate::mm::vmstat::Vm;
    use crate::testutil::swapped_out;

    #[test]
    fn a_read_swap_in_of_an_exclusive_page_maps_it_writable_on_612_only() {
        // mm/memory.c v6.12 do_swap_page: "exclusive = pte_swp_exclusive(vmf->orig_pte); ... if
        // ((vma->vm_flags & VM_WRITE) && !userfaultfd_pte_wp(vma, pte) &&
        // !pte_needs_soft_dirty_wp(vma, pte)) { pte = pte_mkwrite(pte, vma);" on any fault;
        // v4.13/v4.17/v4.18 do_swap_page: "if ((vmf->flags & FAULT_FLAG_WRITE) &&
        // reuse_swap_page(page, NULL)) { pte = maybe_mkwrite(pte_mkdirty(pte), vma);" only
        for (profile, writable) in [("6.12", true), ("4.18", false), ("4.17", false), ("4.13", false)] {
            let (mut k, pid, a) = swapped_out(profile);
            assert_eq!(k.arch().pte_swp_exclusive(k.pte_at(pid, a).unwrap()), writable, "{profile}");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
            let pte = k.pte_at(pid, a).unwrap();
            assert_eq!(k.arch().pte_write(pte), writable, "{profile}: {pte:#x}");
            assert!(!k.arch().pte_dirty(pte), "{profile}: a read fault leaves the PTE clean");
            let reuse = k.vmstat.get(Vm::pgreuse);
            assert_eq!(k.access(pid, 0, a, true, 9).unwrap(), Access::Done { value: 9 });
            let extra = k.vmstat.get(Vm::pgreuse) - reuse;
            assert_eq!(extra, u64::from(!writable), "{profile}: do_wp_page reuse faults after the read");
            k.check_invariants().unwrap();
        }
    }

    #[test]
    fn with_flushed_lru_sizes_a_refault_distance_is_measured_against_the_last_flushed_active_list() {
        // workingset_test_recent (mm/workingset.c v6.12.117): "workingset_size =
        // lruvec_page_state(eviction_lruvec, NR_ACTIVE_FILE); ... if
        // (mem_cgroup_get_nr_swap_pages(eviction_memcg) > 0) { workingset_size +=
        // lruvec_page_state(eviction_lruvec, NR_ACTIVE_ANON);" and "return refault_distance <=
        // workingset_size;", the sizes as of the last memcg flush (mm/memcontrol.c)
        use crate::mm::memcontrol::{FLUSH_TIME_NS, MemcgStats};
        use crate::mm::swap_state::Shadow;
        use crate::testutil::{kernel, proc_with_pages};
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 200);
        let pfns: Vec<u32> = (0..200).map(|i| k.arch().pte_pfn(k.pte_at(pid, a + i * 4096).unwrap())).collect();
        for &pfn in &pfns[..100] {
            k.activate_page(pfn);
        }
        k.set_memcg_stats(MemcgStats::Rstat612LruSizes).unwrap();
        for &pfn in &pfns[100..] {
            k.activate_page(pfn);
        }
        let shadow = Shadow { eviction: k.nonresident_age.wrapping_sub(150), workingset: false };
        assert!(!k.workingset_test_recent(shadow), "distance 150 against the 100 active pages flushed");
        k.tick(FLUSH_TIME_NS);
        let shadow = Shadow { eviction: k.nonresident_age.wrapping_sub(150), workingset: false };
        assert!(k.workingset_test_recent(shadow), "against the 200 of the next flush");
        k.set_memcg_stats(MemcgStats::Rstat612).unwrap();
        for &pfn in &pfns[..100] {
            k.deactivate_page(pfn);
        }
        assert!(!k.workingset_test_recent(shadow), "rstat-6.12 reads the 100 active pages live");
    }

    #[test]
    fn a_swap_in_counts_pgpgin_in_kib_as_proc_vmstat_does() {
        // mm/vmstat.c vmstat_start (4.17, 6.12.117): "v[PGPGIN] /= 2; /* sectors -> kbytes */"
        // of submit_bio's bio_sectors count: a 4 KiB page read is 8 sectors, 4 in /proc/vmstat
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, a) = swapped_out(profile);
            let out = k.vmstat.get(Vm::pgpgout);
            assert_eq!(out, 4 * k.vmstat.get(Vm::pswpout), "{profile}: pgpgout in KiB");
            let (pin, kin) = (k.vmstat.get(Vm::pswpin), k.vmstat.get(Vm::pgpgin));
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
            let pages = k.vmstat.get(Vm::pswpin) - pin;
            assert!(pages >= 1, "{profile}");
            assert_eq!(k.vmstat.get(Vm::pgpgin) - kin, 4 * pages, "{profile}");
        }
    }
}
