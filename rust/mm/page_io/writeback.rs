//! The swap writes' functions on the kernel (mm/page_io.c, mm/filemap.c, mm/swap.c); the
//! device's state and the completion model are in the parent module.

use super::{SwapIo, VIRTIO_BLK_QUEUE_DEPTH};
use crate::error::Result;
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vmstat::Vm;

impl Kernel {
    /// The swap device's completion model.
    pub fn swap_io(&self) -> SwapIo {
        self.swap_wb.io
    }

    /// Choose the swap device's completion model. Pending writes complete first. Either device
    /// works with the classic lists and with MGLRU (whose `sort_folio` / `evict_folios` treat
    /// pages under writeback as the profile's release does: `Profile::lru_gen_writeback_reactivates`).
    pub fn set_swap_io(&mut self, io: SwapIo) -> Result<()> {
        self.swap_io_complete();
        self.swap_wb.io = io;
        Ok(())
    }

    /// Pages under writeback now.
    pub fn nr_writeback(&self) -> usize {
        self.swap_wb.queue.len()
    }

    /// `swap_writepage` → `__swap_writepage` (mm/page_io.c v6.12; 4.17 the same through
    /// `__swap_writepage`'s bio): `folio_start_writeback`, count PSWPOUT / PGPGOUT as the bio is
    /// submitted (`count_swpout_vm_event`), and the data goes to slot `off`. On the
    /// synchronous device the bio completes before this returns (`swap_writepage_bdev_sync`:
    /// `submit_bio_wait`, `__end_swap_bio_write` → `folio_end_writeback`); on virtio-blk it is
    /// queued (`swap_writepage_bdev_async`), and a full queue makes the submitter wait.
    pub(crate) fn swap_writepage(&mut self, pfn: u32, off: u32) {
        let content = self.mem.content(pfn);
        self.swap.write(off, content);
        self.vmstat.inc(Vm::pswpout);
        self.note_swap_write_for_zones();
        self.vmstat.add(Vm::pgpgout, crate::mm::vmstat::PGPG_PER_PAGE);
        self.tick(self.cost.swap_write);
        match self.swap_wb.io {
            SwapIo::Synchronous => {
                // folio_start_writeback then, the bio done, folio_end_writeback: the folio is
                // locked and isolated, so folio_rotate_reclaimable does nothing; PG_reclaim
                // is cleared (here, or by pageout's "synchronous write" branch)
                self.mem.frames[pfn as usize].clear(pg::PG_RECLAIM);
            }
            SwapIo::VirtioBlk => {
                if self.swap_wb.queue.len() >= VIRTIO_BLK_QUEUE_DEPTH {
                    // blk_mq_get_tag: no free tag, io_schedule until requests complete
                    self.swap_io_complete();
                }
                self.mem.frames[pfn as usize].set(pg::PG_WRITEBACK);
                self.swap_wb.queue.push_back(pfn);
            }
        }
    }

    /// The device completes every queued write, in order (`end_swap_bio_write` →
    /// `folio_end_writeback` for each): what happens while the CPU waits (module doc).
    #[inline]
    pub(crate) fn swap_io_complete(&mut self) {
        // every access of a lone kernel ends here (Kernel::settle): the empty queue of a
        // synchronous device inline, the completions out of line
        if !self.swap_wb.queue.is_empty() {
            self.swap_io_complete_queued();
        }
    }

    #[inline(never)]
    fn swap_io_complete_queued(&mut self) {
        while let Some(pfn) = self.swap_wb.queue.pop_front() {
            self.folio_end_writeback(pfn);
        }
    }

    /// `folio_wait_writeback` (mm/page-writeback.c v6.12) on `pfn`: the task sleeps until the
    /// page's write completed; the device completes its queue up to it (and, FIFO, the
    /// model completes the rest with it).
    pub(crate) fn folio_wait_writeback(&mut self, pfn: u32) {
        if self.mem.frames[pfn as usize].test(pg::PG_WRITEBACK) {
            self.swap_io_complete();
        }
    }

    /// `folio_end_writeback` (mm/filemap.c v6.12; 4.x `end_page_writeback`): "if
    /// (folio_test_reclaim(folio)) { folio_clear_reclaim(folio); folio_rotate_reclaimable(folio);
    /// }", then PG_writeback is cleared.
    pub(crate) fn folio_end_writeback(&mut self, pfn: u32) {
        if self.mem.frames[pfn as usize].test(pg::PG_RECLAIM) {
            self.mem.frames[pfn as usize].clear(pg::PG_RECLAIM);
            self.folio_rotate_reclaimable(pfn);
        }
        self.mem.frames[pfn as usize].clear(pg::PG_WRITEBACK);
    }

    /// `folio_rotate_reclaimable` → `lru_move_tail` (mm/swap.c v6.12; 4.x
    /// `rotate_reclaimable_page` → `pagevec_move_tail_fn`): a page that is not locked, dirty or
    /// unevictable and is on an LRU list goes to the tail of its inactive list, PG_active
    /// cleared, counted PGROTATED. With MGLRU (`lruvec_del_folio` → `lru_gen_del_folio`, then
    /// `lruvec_add_folio_tail` → `lru_gen_add_folio(.., reclaiming=true)`: PG_reclaim is already
    /// cleared, so neither "active" nor "pending writeback") it goes to the tail of the oldest
    /// generation of its type, where eviction takes it next (6.12.107 and 6.12.117 alike:
    /// mm/swap.c and mm/filemap.c's `folio_end_writeback` do not differ).
    fn folio_rotate_reclaimable(&mut self, pfn: u32) {
        let f = self.mem.frames[pfn as usize];
        if f.test(pg::PG_LOCKED) || f.test(pg::PG_DIRTY) || f.test(pg::PG_UNEVICTABLE) || !f.test(pg::PG_LRU) {
            return;
        }
        self.lru.del(&mut self.mem.frames, pfn);
        self.mem.frames[pfn as usize].clear(pg::PG_ACTIVE);
        self.lru.add_tail(&mut self.mem.frames, pfn);
        self.vmstat.inc(Vm::pgrotated);
    }

    /// The writes in flight are consistent: the queue holds exactly the PG_writeback pages,
    /// each once, each a swap-cache page that is not free; the synchronous device holds none.
    pub(crate) fn check_writeback(&self) -> std::result::Result<(), String> {
        if self.swap_wb.io == SwapIo::Synchronous && !self.swap_wb.queue.is_empty() {
            return Err(format!("the synchronous swap device has {} writes queued", self.swap_wb.queue.len()));
        }
        let mut queued = std::collections::BTreeSet::new();
        for &pfn in &self.swap_wb.queue {
            let Some(f) = self.mem.frames.get(pfn as usize) else {
                return Err(format!("pfn {pfn} queued for writeback does not exist"));
            };
            if !queued.insert(pfn) {
                return Err(format!("pfn {pfn} is queued for writeback twice"));
            }
            if !f.test(pg::PG_WRITEBACK) || !f.test(pg::PG_SWAPCACHE) || !f.referenced() || f.test(pg::PG_BUDDY) {
                return Err(format!(
                    "pfn {pfn} queued for writeback has flags {:?}, refcount {}",
                    f.flag_names(),
                    self.mem.refcount(pfn)
                ));
            }
        }
        let marked = self.mem.frames.iter().filter(|f| f.test(pg::PG_WRITEBACK)).count();
        if marked != queued.len() {
            return Err(format!("{marked} pages are PG_writeback, {} queued", queued.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SwapIo, VIRTIO_BLK_QUEUE_DEPTH};
    use crate::fault::Access;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::named::Named;
    use crate::testutil::{kernel, proc_with_pages};
    use crate::vmscan::lru::LruList;
    use crate::vmscan::shrink::ScanControl;

    /// A 6.12 kernel with the virtio-blk swap device and a process of `pages` anon pages made
    /// cold (MADV_COLD: old PTEs, inactive, unreferenced), and the pfn of the page at `a`.
    fn cold(io: SwapIo, pages: u64) -> (Kernel, u32, u64, u32) {
        let mut k = kernel("6.12");
        k.set_swap_io(io).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, pages);
        k.madvise(pid, a, pages * 4096, Advice::Cold).unwrap();
        let pfn = k.pte_at(pid, a).map(|p| k.arch().pte_pfn(p)).unwrap();
        (k, pid, a, pfn)
    }

    /// `shrink_folio_list` (mm/vmscan.c v6.12): pageout on virtio-blk leaves the folio under
    /// writeback with PG_reclaim ("if (folio_test_writeback(folio)) goto keep;"): not freed,
    /// back on the inactive list; met again, case 2 sets PG_reclaim and activates it
    /// (PGACTIVATE, `stat->nr_writeback`).
    #[test]
    fn a_page_under_writeback_is_kept_then_activated_by_shrink_folio_list() {
        let (mut k, _, _, pfn) = cold(SwapIo::VirtioBlk, 4);
        assert!(!k.reclaim_one(pfn), "the write is in flight: not freed");
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_WRITEBACK) && f.test(pg::PG_RECLAIM) && f.test(pg::PG_SWAPCACHE));
        assert!(f.test(pg::PG_LRU) && !f.test(pg::PG_ACTIVE), "kept on the inactive list");
        assert_eq!((k.vmstat.get(Vm::pswpout), k.nr_writeback()), (1, 1));
        k.check_invariants().unwrap();
        let act = k.vmstat.get(Vm::pgactivate);
        k.isolate_lru_page(pfn);
        let mut sc = ScanControl::new(1, false);
        let (reclaimed, keep, stat) = k.shrink_folio_list(vec![pfn], &mut sc, false);
        assert_eq!((reclaimed, stat.nr_writeback, stat.nr_immediate), (0, 1, 0));
        for p in keep {
            k.putback_lru_page(p);
        }
        assert_eq!(k.vmstat.get(Vm::pgactivate), act + 1);
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_ACTIVE) && f.test(pg::PG_RECLAIM) && f.test(pg::PG_WRITEBACK));
        assert_eq!(k.vmstat.get(Vm::pswpout), 1, "no second write");
        k.check_invariants().unwrap();
    }

    /// `folio_end_writeback` (mm/filemap.c v6.12) → `folio_rotate_reclaimable` →
    /// `lru_move_tail` (mm/swap.c v6.12): the activated PG_reclaim page goes to the inactive
    /// tail, PG_active and PG_reclaim cleared, PGROTATED counted; the next reclaim of it frees
    /// the clean swap-cache page without writing it again.
    #[test]
    fn completion_rotates_a_pg_reclaim_page_to_the_inactive_tail_and_reclaim_frees_it() {
        let (mut k, _, _, pfn) = cold(SwapIo::VirtioBlk, 4);
        assert!(!k.reclaim_one(pfn));
        assert!(!k.reclaim_one(pfn), "met again under writeback: activated");
        assert!(k.mem.frames[pfn as usize].test(pg::PG_ACTIVE));
        k.swap_io_complete();
        let f = k.mem.frames[pfn as usize];
        assert!(!f.test(pg::PG_WRITEBACK) && !f.test(pg::PG_RECLAIM) && !f.test(pg::PG_ACTIVE));
        assert_eq!(k.lru.tail(LruList::InactiveAnon), Some(pfn), "at the inactive tail");
        assert_eq!(k.vmstat.get(Vm::pgrotated), 1);
        k.check_invariants().unwrap();
        assert!(k.reclaim_one(pfn), "clean and unmapped: freed");
        assert_eq!(k.vmstat.get(Vm::pswpout), 1);
        k.check_invariants().unwrap();
    }

    /// `do_swap_page` (mm/memory.c v6.12): the folio under writeback is found by
    /// `swap_cache_get_folio` (a minor fault, no read); `should_try_to_free_swap` asks for the
    /// slot on a write fault but `folio_free_swap` refuses while the folio is under writeback
    /// (`folio_swapcache_freeable`), so it stays in the swap cache.
    #[test]
    fn a_fault_on_a_page_under_writeback_is_a_minor_fault_from_the_swap_cache() {
        let (mut k, pid, a, pfn) = cold(SwapIo::VirtioBlk, 4);
        // one CPU: the access that follows does not let the device complete
        k.set_kswapd_mode(crate::vmscan::kswapd::KswapdMode::OneCpu);
        assert!(!k.reclaim_one(pfn));
        assert!(k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()));
        let maj = k.vmstat.get(Vm::pgmajfault);
        assert_eq!(k.access(pid, 0, a, true, 77).unwrap(), Access::Done { value: 77 });
        assert_eq!(k.vmstat.get(Vm::pgmajfault), maj, "minor: from the swap cache");
        assert_eq!(k.vmstat.get(Vm::pswpin), 0);
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_SWAPCACHE) && f.test(pg::PG_WRITEBACK), "still cached, still in flight");
        assert_eq!(k.pte_at(pid, a).map(|p| k.arch().pte_pfn(p)), Some(pfn));
        k.check_invariants().unwrap();
        // completion: a mapped page is rotated too (not dirty as a folio: the PTE is)
        k.swap_io_complete();
        assert!(!k.mem.frames[pfn as usize].test(pg::PG_WRITEBACK));
        k.check_invariants().unwrap();
    }

    /// The default device completes inside the submit (`swap_writepage_bdev_sync`, v6.12):
    /// shrink_folio_list frees the page in the same pass ("A synchronous write - probably a
    /// ramdisk"), nothing is ever under writeback or rotated; 4.18 the same.
    #[test]
    fn the_synchronous_device_frees_a_written_page_in_the_same_pass() {
        let (mut k, pid, a, pfn) = cold(SwapIo::Synchronous, 4);
        assert!(k.reclaim_one(pfn), "written and freed at once");
        k.madvise(pid, a + 4096, 4096, Advice::Pageout).unwrap();
        assert_eq!(k.vmstat.get(Vm::pswpout), 2);
        assert!(k.arch().is_swap_pte(k.pte_at(pid, a + 4096).unwrap()));
        assert_eq!(k.swap.cache_page(1).or(k.swap.cache_page(2)), None, "both freed");
        let (k, ..) = crate::testutil::swapped_out("4.18");
        assert_eq!(k.swap_io(), SwapIo::Synchronous);
        assert!(k.vmstat.get(Vm::pswpout) > 0);
        assert_eq!((k.nr_writeback(), k.vmstat.get(Vm::pgrotated)), (0, 0));
        assert!(k.mem.frames.iter().all(|f| !f.test(pg::PG_WRITEBACK)));
        k.check_invariants().unwrap();
    }

    /// `shrink_folio_list` case 1 (mm/vmscan.c v6.12): kswapd on a PGDAT_WRITEBACK node
    /// meeting a PG_reclaim page under writeback counts `nr_immediate` and activates it;
    /// `shrink_node` then throttles kswapd (VMSCAN_THROTTLE_WRITEBACK), and the device
    /// completes its queue while kswapd sleeps.
    #[test]
    fn kswapd_on_a_writeback_node_counts_immediate_and_throttles_until_writes_complete() {
        let (mut k, _, _, pfn) = cold(SwapIo::VirtioBlk, 4);
        assert!(!k.reclaim_one(pfn));
        k.kswapd.pgdat_writeback = true;
        k.isolate_lru_page(pfn);
        let mut sc = ScanControl::new(1, true);
        let (_, keep, stat) = k.shrink_folio_list(vec![pfn], &mut sc, false);
        assert_eq!((stat.nr_immediate, stat.nr_writeback), (1, 0));
        for p in keep {
            k.putback_lru_page(p);
        }
        sc.nr.immediate = stat.nr_immediate;
        k.shrink_node_writeback(&sc);
        assert_eq!(k.nr_writeback(), 0, "completed while kswapd slept");
        assert_eq!(k.vmstat.get(Vm::pgrotated), 1);
        k.check_invariants().unwrap();
    }

    /// The virtio-blk queue holds VIRTIO_BLK_QUEUE_DEPTH requests: one more write waits for a
    /// tag (`blk_mq_get_tag` → `io_schedule`) and the queued ones complete first.
    #[test]
    fn a_full_virtio_queue_completes_before_another_write_is_queued() {
        let mut k =
            Kernel::new(crate::profile::Profile::get("6.12", crate::arch::Arch::S390x).unwrap(), 16 << 20, 16 << 20, 1)
                .unwrap();
        k.set_swap_io(SwapIo::VirtioBlk).unwrap();
        let n = VIRTIO_BLK_QUEUE_DEPTH as u64 + 1;
        let (pid, a) = proc_with_pages(&mut k, false, n);
        // one CPU: no operation boundary completes the writes
        k.set_kswapd_mode(crate::vmscan::kswapd::KswapdMode::OneCpu);
        let pfns: Vec<u32> = (0..n).map(|i| k.arch().pte_pfn(k.pte_at(pid, a + i * 4096).unwrap())).collect();
        k.madvise(pid, a, VIRTIO_BLK_QUEUE_DEPTH as u64 * 4096, Advice::Pageout).unwrap();
        assert_eq!(k.nr_writeback(), VIRTIO_BLK_QUEUE_DEPTH);
        k.madvise(pid, a + (n - 1) * 4096, 4096, Advice::Pageout).unwrap();
        assert_eq!(k.nr_writeback(), 1, "the full queue completed, the new write is queued");
        assert!(!k.mem.frames[pfns[0] as usize].test(pg::PG_WRITEBACK));
        assert!(k.mem.frames[pfns[VIRTIO_BLK_QUEUE_DEPTH] as usize].test(pg::PG_WRITEBACK));
        k.check_invariants().unwrap();
    }

    /// The device is a choice by name, with the classic lists and with MGLRU alike.
    #[test]
    fn the_swap_device_is_chosen_by_name_with_either_lru() {
        assert_eq!(SwapIo::from_name("virtio-blk").unwrap(), SwapIo::VirtioBlk);
        assert_eq!(SwapIo::from_name("synchronous").unwrap().name(), "synchronous");
        assert!(SwapIo::from_name("nvme").is_err());
        let mut k = kernel("6.12-debian");
        assert!(k.lru_gen_enabled());
        k.set_swap_io(SwapIo::VirtioBlk).unwrap();
        assert_eq!(k.swap_io(), SwapIo::VirtioBlk);
    }
}
