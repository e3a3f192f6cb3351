//! Model invariants, checked by tests after every step and by the explorer: a brute-force
//! recount of everything the kernel keeps incrementally (what the kernel's CONFIG_DEBUG_VM
//! checks, `VM_BUG_ON_PAGE` and friends, assert piecemeal).
//!
//! - rss counters equal a recount of each mm's page tables;
//! - every page's mapcount equals the PTEs that map it, and its refcount equals
//!   mapcount + page-cache / swap-cache references + isolation;
//! - every frame is free, reserved, or accounted for (mapped, in the swap cache or in a shmem
//!   page cache), and every accounted frame is on exactly one LRU list; a poisoned frame
//!   (x86_64 MADV_HWPOISON) holds only memory_failure's reference and is on none, and every
//!   hwpoison entry names a poisoned frame;
//! - LRU list sizes match their members;
//! - each swap slot's count equals the swap PTEs and shmem entries that reference it, and
//!   SWAP_HAS_CACHE is set exactly when a swap-cache page holds the slot;
//! - the rmap walk of every mapped page finds exactly the PTEs the brute-force scan finds.
//!
//! Before those, [`Kernel::check_structure`] checks the tables are well formed: every index
//! one table holds into another is in range and names a live entry, page tables are one tree,
//! LRU lists are linked both ways, the anon_vma and i_mmap lists hold exactly the VMAs linked
//! to them, a VMA's `vm_page_prot` is what its flags give. A kernel built by the model's
//! operations always is; a snapshot's payload is checked this way before anything walks it.

use crate::kernel::Kernel;
use crate::mm::page::{NO_PFN, ZERO_PFN, pg};
use crate::mm::{CacheEntry, MM_SWAPENTS};
use crate::vmscan::lru::LruList;
use std::collections::BTreeMap;

impl Kernel {
    /// Check every invariant; the error names the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_structure()?;
        if let Some(p) = self.pcp.as_deref() {
            p.check(self.zones.as_deref().map(|z| &z.dma))?;
        }
        let arch = self.arch();
        let swp = self.swp_format();
        let nframes = self.mem.frames.len();
        let mut mapcount = vec![0u32; nframes];
        let mut swaprefs: BTreeMap<u32, u32> = BTreeMap::new();
        // (pfn, pid, addr) of every present PTE: sorted below, so that each pfn's mappings are
        // one run (a flat vector: no allocation per mapped page)
        let mut mappings: Vec<(u32, u32, u64)> = Vec::new();
        for m in self.mms.iter().flatten().filter(|m| m.alive) {
            let mut rss = [0i64; 4];
            let n = arch.geometry().0.pt_entries;
            for &(va, base) in m.pt.page_tables().iter() {
                for (i, &pte) in m.pt.ptes(base, n).iter().enumerate() {
                    if arch.pte_none(pte) {
                        continue;
                    }
                    let addr = va + ((i as u64) << 12);
                    if self.vma_lookup(m.pid, addr).is_none() {
                        return Err(format!("pid {} has a PTE {pte:#x} at {addr:#x} outside any VMA", m.pid));
                    }
                    if arch.pte_present(pte) {
                        if arch.pte_unused(pte) {
                            return Err(format!("pid {} stores _PAGE_UNUSED in a present PTE at {addr:#x}", m.pid));
                        }
                        let pfn = arch.pte_pfn(pte);
                        if pfn == ZERO_PFN {
                            continue;
                        }
                        if pfn as usize >= nframes || self.mem.is_free(pfn) {
                            return Err(format!("pid {} maps a free or bogus pfn {pfn} at {addr:#x}", m.pid));
                        }
                        mapcount[pfn as usize] += 1;
                        rss[self.mm_counter(pfn)] += 1;
                        mappings.push((pfn, m.pid, addr));
                    } else if self.is_pte_marker(pte) {
                        // a PTE marker maps nothing and holds no slot; only uffd-wp exists
                        if !self.pte_marker_uffd_wp(pte) {
                            return Err(format!("pid {} has an unknown PTE marker {pte:#x} at {addr:#x}", m.pid));
                        }
                    } else if self.is_hwpoison_entry(pte) {
                        let pfn = swp.swp_offset(pte);
                        if pfn as usize >= nframes || !self.mem.frames[pfn as usize].test(pg::PG_HWPOISON) {
                            return Err(format!(
                                "pid {} has a hwpoison entry at {addr:#x} naming pfn {pfn}, which is not poisoned",
                                m.pid
                            ));
                        }
                    } else {
                        let off = swp.swp_offset(pte) as u32;
                        if !self.swap.is_valid(off) {
                            return Err(format!("pid {} has a swap PTE with a bad offset {off} at {addr:#x}", m.pid));
                        }
                        *swaprefs.entry(off).or_default() += 1;
                        rss[MM_SWAPENTS] += 1;
                    }
                }
            }
            if rss != m.rss {
                return Err(format!("pid {} rss {:?} but the page tables count {:?}", m.pid, m.rss, rss));
            }
        }
        let mut cache_of: BTreeMap<u32, u32> = BTreeMap::new();
        for f in self.files.iter().flatten() {
            for e in f.pages.values() {
                match e {
                    CacheEntry::Page(p) => *cache_of.entry(*p).or_default() += 1,
                    CacheEntry::Swap(off) => *swaprefs.entry(*off).or_default() += 1,
                }
            }
        }
        let mut on_lru = [0u64; 5];
        let mut nr_pages =
            [[[0u64; crate::vmscan::lru::lru_gen_folio::NR_ZONES]; 2]; crate::vmscan::lru::lru_gen_folio::MAX_NR_GENS];
        for (pfn, f) in self.mem.frames.iter().enumerate() {
            let pfn32 = pfn as u32;
            if f.test(pg::PG_RESERVED) || f.test(pg::PG_BUDDY) {
                continue;
            }
            if self.pinned.contains(&pfn32) {
                continue;
            }
            let (f_mapcount, f_refcount) = (self.mem.mapcount(pfn32), self.mem.refcount(pfn32));
            if f_mapcount != mapcount[pfn] {
                return Err(format!("pfn {pfn}: mapcount {f_mapcount} but {} PTEs map it", mapcount[pfn]));
            }
            let in_swapcache = f.swap_offset().is_some();
            if in_swapcache != f.test(pg::PG_SWAPCACHE) {
                return Err(format!("pfn {pfn}: PG_swapcache {} but private {}", f.test(pg::PG_SWAPCACHE), f.private));
            }
            if let Some(off) = f.swap_offset() {
                if self.swap.cache_page(off) != Some(pfn32) {
                    return Err(format!("pfn {pfn} says it caches slot {off}, the swap cache disagrees"));
                }
            }
            let pagecache = cache_of.get(&pfn32).copied().unwrap_or(0);
            let isolated = f.test(pg::PG_ISOLATED) as u32;
            // memory_failure's reference, never dropped
            let poisoned = f.test(pg::PG_HWPOISON) as u32;
            let expect = f_mapcount + in_swapcache as u32 + pagecache + isolated + poisoned;
            if f_refcount != expect {
                return Err(format!(
                    "pfn {pfn}: refcount {} but mapcount {} + swapcache {} + pagecache {} + isolated {} + hwpoison {} = {expect} (flags {:?})",
                    f_refcount,
                    f_mapcount,
                    in_swapcache as u32,
                    pagecache,
                    isolated,
                    poisoned,
                    f.flag_names()
                ));
            }
            if expect == 0 {
                return Err(format!("pfn {pfn} is neither free nor accounted for (flags {:?})", f.flag_names()));
            }
            if f.test(pg::PG_LRU) && f.lru_list() as usize >= crate::vmscan::lru::NR_LRU_LISTS {
                // a generation's list (MGLRU): its type agrees with the page's flags, which name
                // a generation: the list's, or a younger one the page was promoted to in place
                // (`folio_update_gen`), where `nr_pages` counts it
                let li = f.lru_list() as usize - crate::vmscan::lru::NR_LRU_LISTS;
                let (gn, ty) = (li / 2, li % 2);
                let flags_gen = crate::vmscan::lru_gen::folio_lru_gen(f);
                let file = !f.test(pg::PG_SWAPBACKED) as usize;
                if !self.lru_gen_enabled() {
                    return Err(format!("pfn {pfn} is in generation {gn} but MGLRU is off"));
                }
                let Some(fg) =
                    flags_gen.filter(|_| file == ty && !f.test(pg::PG_UNEVICTABLE) && !f.test(pg::PG_ACTIVE))
                else {
                    return Err(format!(
                        "pfn {pfn} is on lrugen.folios[{gn}][{ty}] but its flags say gen {flags_gen:?}, type {file} ({:?})",
                        f.flag_names()
                    ));
                };
                nr_pages[fg][ty][self.lru.zonenum(pfn32) as usize] += 1;
                // the flag generation lies in min_seq ..= max_seq of its type; anon's only may
                // lie outside: `inc_min_seq` (mm/vmscan.c, 6.12.117 and 6.12.107) advances
                // min_seq[LRU_GEN_ANON] without moving the oldest list when anon cannot swap,
                // which then becomes the youngest generation, younger than the one a page on it
                // was promoted to in place; `try_to_inc_min_seq` later passes that generation
                // when its lists are empty. `sort_folio` moves such a page to its generation's
                // list and leaves it there until max_seq reaches it; file's min_seq never passes
                // a list with pages on it.
                let g = &self.lru.lrugen;
                let seq_ok = (g.min_seq[ty]..=g.max_seq).any(|s| crate::vmscan::lru_gen::lru_gen_from_seq(s) == fg);
                if !seq_ok && ty != crate::vmscan::lru_gen::LRU_GEN_ANON {
                    return Err(format!(
                        "pfn {pfn} is in generation {fg}, outside min_seq {} .. max_seq {}",
                        g.min_seq[ty], g.max_seq
                    ));
                }
            } else if f.test(pg::PG_LRU) {
                if crate::vmscan::lru_gen::folio_lru_gen(f).is_some() {
                    return Err(format!("pfn {pfn} is on a classic list with a generation"));
                }
                if LruList::of(f) as u8 != f.lru_list() {
                    return Err(format!(
                        "pfn {pfn} is on list {} but its flags select {:?}",
                        f.lru_list(),
                        LruList::of(f)
                    ));
                }
                on_lru[f.lru_list() as usize] += 1;
            } else if f.test(pg::PG_HWPOISON) {
                if f.mapped() || in_swapcache || pagecache != 0 {
                    return Err(format!("pfn {pfn} is poisoned but still in use (flags {:?})", f.flag_names()));
                }
            } else if !f.test(pg::PG_ISOLATED) {
                return Err(format!("pfn {pfn} is in use but on no LRU list (flags {:?})", f.flag_names()));
            }
        }
        if nr_pages != self.lru.lrugen.nr_pages {
            return Err(format!(
                "lrugen.nr_pages[gen][type][zone] is {:?} but the pages' flags count {nr_pages:?}",
                self.lru.lrugen.nr_pages
            ));
        }
        for l in LruList::ALL {
            if self.lru_gen_enabled() && l != LruList::Unevictable {
                continue;
            }
            if self.lru.size(l) != on_lru[l as usize] {
                return Err(format!("{} is {} but {} pages are on it", l.name(), self.lru.size(l), on_lru[l as usize]));
            }
        }
        for off in self.swap.used_slots() {
            let refs = swaprefs.get(&off).copied().unwrap_or(0);
            if self.swap.count(off) != refs {
                return Err(format!("swap slot {off}: count {} but {refs} references", self.swap.count(off)));
            }
            if self.swap.has_cache(off) != self.swap.cache_page(off).is_some() {
                return Err(format!(
                    "swap slot {off}: SWAP_HAS_CACHE {} but cache page {:?}",
                    self.swap.has_cache(off),
                    self.swap.cache_page(off)
                ));
            }
        }
        for (off, refs) in &swaprefs {
            if self.swap.map(*off) == 0 {
                return Err(format!("swap slot {off} is free but {refs} entries reference it"));
            }
        }
        let used = self.swap.used_slots().count() as u32;
        if used != self.swap.inuse() {
            return Err(format!("swap inuse {} but {used} slots are used", self.swap.inuse()));
        }
        mappings.sort_unstable();
        let mut found: Vec<(u32, u64)> = Vec::new();
        let mut want: Vec<(u32, u64)> = Vec::new();
        let mut vmas = Vec::new();
        for run in mappings.chunk_by(|a, b| a.0 == b.0) {
            let pfn = run[0].0;
            // rmap_mappings(pfn), into reused buffers
            self.rmap_vmas(pfn, &mut vmas);
            found.clear();
            found.extend(vmas.iter().filter_map(|&(v, a)| self.page_vma_mapped(pfn, v, a)).map(|m| (m.pid, m.addr)));
            found.sort_unstable();
            want.clear();
            want.extend(run.iter().map(|&(_, pid, addr)| (pid, addr)));
            if found != want {
                return Err(format!("rmap of pfn {pfn} finds {found:x?} but the page tables map it at {want:x?}"));
            }
        }
        Ok(())
    }

    /// Whether `pid` names a process slot of this kernel (alive or exited).
    fn pid_exists(&self, pid: u32) -> bool {
        matches!(self.mms.get(pid.wrapping_sub(crate::kernel::FIRST_PID) as usize), Some(Some(_)))
    }

    /// Check the tables are well formed (see the module doc), so that the invariants and every
    /// operation can follow the indices they hold without going out of range.
    /// MGLRU's state agrees with the profile, and `seq_is_valid` (mm/vmscan.c, v6.12): each
    /// type has MIN_NR_GENS ..= MAX_NR_GENS generations; no page is in a generation with MGLRU
    /// off.
    fn check_lrugen(&self) -> Result<(), String> {
        use crate::vmscan::lru_gen::{MAX_NR_GENS, MIN_NR_GENS};
        let g = &self.lru.lrugen;
        if g.enabled != self.profile.lru_gen || g.caps != self.profile.lru_gen_caps() {
            return Err(format!(
                "lrugen enabled {} caps {:#06x}, but the profile says lru_gen {} (caps {:#06x})",
                g.enabled,
                g.caps,
                self.profile.lru_gen,
                self.profile.lru_gen_caps()
            ));
        }
        if g.activate_resets_refs != self.profile.lru_gen_activate_resets_refs {
            return Err(format!(
                "lrugen activate_resets_refs {}, but the profile's lru_gen_activate_resets_refs is {}",
                g.activate_resets_refs, self.profile.lru_gen_activate_resets_refs
            ));
        }
        for ty in 0..2 {
            let n = g.max_seq.checked_sub(g.min_seq[ty]).map(|d| d + 1);
            if !matches!(n, Some(n) if (MIN_NR_GENS as u64..=MAX_NR_GENS as u64).contains(&n)) {
                return Err(format!(
                    "lrugen: min_seq[{ty}] {} and max_seq {} are not 2..=4 generations",
                    g.min_seq[ty], g.max_seq
                ));
            }
        }
        Ok(())
    }

    pub fn check_structure(&self) -> Result<(), String> {
        let nframes = self.mem.frames.len();
        self.mem.check()?;
        self.vmstat.check()?;
        self.swap.check(nframes)?;
        self.check_writeback()?;
        self.check_lrugen()?;
        self.lru.check(&self.mem.frames)?;
        let live_vma = |id: u32| matches!(self.vmas.get(id as usize), Some(Some(_)));
        for (i, m) in self.mms.iter().enumerate() {
            let Some(m) = m else { return Err(format!("process slot {i} is empty")) };
            if m.pid != crate::kernel::FIRST_PID + i as u32 || m.has_pgste != m.pt.has_pgste() {
                return Err(format!("process slot {i} holds pid {} (PGSTEs {})", m.pid, m.has_pgste));
            }
            m.pt.check(self.arch().geometry()).map_err(|e| format!("pid {}: {e}", m.pid))?;
            let mut end = 0;
            for (&start, &id) in &m.vmas {
                match self.vmas.get(id as usize) {
                    Some(Some(v)) if v.mm == m.pid && v.start == start && start >= end && start < v.end => end = v.end,
                    _ => return Err(format!("pid {} lists VMA {id} at {start:#x}, which is not its VMA there", m.pid)),
                }
                if start & 0xfff != 0 || end & 0xfff != 0 || !m.alive {
                    return Err(format!("VMA {id} of pid {} ({start:#x}-{end:#x}, alive {})", m.pid, m.alive));
                }
            }
            for (tid, t) in &m.threads {
                if t.blocked.is_some_and(|b| b.uffd as usize >= self.uffds.len()) {
                    return Err(format!("thread {tid} of pid {} waits on a userfaultfd that does not exist", m.pid));
                }
            }
        }
        for (id, v) in self.vmas.iter().enumerate() {
            let Some(v) = v else { continue };
            let listed = self.pid_exists(v.mm) && self.mmx(v.mm).vmas.get(&v.start) == Some(&(id as u32));
            let anon_ok = v.anon_vma.iter().chain(&v.anon_vma_chain).all(|a| (*a as usize) < self.anon_vmas.len());
            let file_ok = v.file.is_none_or(|f| matches!(self.files.get(f as usize), Some(Some(_))));
            if !listed || !anon_ok || !file_ok || v.uffd.is_some_and(|u| u as usize >= self.uffds.len()) {
                return Err(format!("VMA {id} names a process, anon_vma, file or userfaultfd that does not hold it"));
            }
            // mmap_region, mprotect_fixup and userfaultfd_set_vm_flags set vm_page_prot by vma_set_page_prot (mm/mmap.c,
            // mm/mprotect.c); every PTE a fault installs takes it, so another value would build PTEs
            // the rss counters and the rmap do not expect
            let prot = self.vma_page_prot(v.flags);
            if v.page_prot != prot {
                return Err(format!(
                    "VMA {id} has vm_page_prot {:#x} but its flags {:#x} give {prot:#x}",
                    v.page_prot, v.flags
                ));
            }
        }
        let mut free_vma = vec![false; self.vmas.len()];
        for &id in &self.vma_free {
            match free_vma.get_mut(id as usize) {
                Some(s) if !*s && !live_vma(id) => *s = true,
                _ => return Err(format!("free VMA slot {id} is missing, in use or free twice")),
            }
        }
        let nav = self.anon_vmas.len() as u32;
        if let Some(i) = self.anon_vmas.iter().position(|a| a.root >= nav || a.parent >= nav) {
            return Err(format!("anon_vma {i} has a root or parent that does not exist"));
        }
        // The rmap's lists and the VMAs' links agree both ways (mm/rmap.c anon_vma_chain_link
        // puts a VMA on anon_vma->rb_root for each anon_vma_chain entry, vma_link on the file's
        // i_mmap): a VMA missing from a list maps pages reclaim and migration cannot find.
        // (list, anon_vma or file id, VMA id), the list 0 for anon_vmas, 1 for i_mmap.
        let mut linked: Vec<(u8, u32, u32)> = Vec::new();
        for (id, v) in self.vmas.iter().enumerate() {
            let Some(v) = v else { continue };
            if v.anon_vma.is_some_and(|a| !v.anon_vma_chain.contains(&a)) {
                return Err(format!("VMA {id} has an anon_vma that is not on its anon_vma_chain"));
            }
            linked.extend(v.anon_vma_chain.iter().map(|&a| (0, a, id as u32)));
            linked.extend(v.file.map(|f| (1, f, id as u32)));
        }
        let mut listed: Vec<(u8, u32, u32)> = Vec::new();
        for (a, av) in self.anon_vmas.iter().enumerate() {
            listed.extend(av.vmas.iter().map(|&id| (0, a as u32, id)));
        }
        for (f, file) in self.files.iter().enumerate() {
            listed.extend(file.iter().flat_map(|file| file.i_mmap.iter().map(move |&id| (1, f as u32, id))));
        }
        linked.sort_unstable();
        listed.sort_unstable();
        if linked != listed {
            let differ = linked.iter().zip(&listed).find(|(a, b)| a != b).map(|(a, b)| (*a, *b));
            return Err(format!(
                "the anon_vma and i_mmap lists ({} entries) disagree with the VMAs' links ({}): first difference {differ:?}",
                listed.len(),
                linked.len()
            ));
        }
        for f in self.files.iter().flatten() {
            for (idx, e) in &f.pages {
                let ok = match *e {
                    CacheEntry::Page(p) => (p as usize) < nframes,
                    CacheEntry::Swap(off) => self.swap.is_valid(off),
                };
                if !ok {
                    return Err(format!("shmem {:?} index {idx} holds {e:?}, beyond memory or swap", f.name));
                }
                if *idx >= f.size_pages {
                    return Err(format!("shmem {:?} caches index {idx}, beyond its {} pages", f.name, f.size_pages));
                }
            }
        }
        for (pfn, f) in self.mem.frames.iter().enumerate() {
            let mapping_ok = match (self.mem.mapping(pfn as u32), f.anon()) {
                (0, _) => true,
                (m, true) => m <= nav,
                (m, false) => matches!(self.files.get(m as usize - 1), Some(Some(_))),
            };
            // a free frame's lru_next threads the free list (Memory::check walks it)
            let links_ok =
                f.test(pg::PG_LRU) || (f.lru_prev == NO_PFN && (f.lru_next == NO_PFN || f.test(pg::PG_BUDDY)));
            if !mapping_ok || !links_ok || f.swap_offset().is_some_and(|o| !self.swap.is_valid(o)) {
                return Err(format!("pfn {pfn} names a mapping, LRU neighbour or swap slot that does not exist"));
            }
        }
        if let Some(p) = self.pinned.iter().find(|p| **p as usize >= nframes) {
            return Err(format!("pinned pfn {p} is beyond memory"));
        }
        let pids = self.uffds.iter().flat_map(|c| std::iter::once(c.mm).chain(c.waiters.iter().map(|w| w.pid)));
        let pids = pids.chain(self.cbrl.keys().map(|k| k.0)).chain(self.cmma_dirty.iter().map(|k| k.0));
        if let Some(pid) = pids.into_iter().find(|p| !self.pid_exists(*p)) {
            return Err(format!("a userfaultfd, CBRL or CMMA entry names pid {pid}, which does not exist"));
        }
        Ok(())
    }
}
