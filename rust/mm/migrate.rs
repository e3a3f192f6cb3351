//! Page migration (mm/migrate.c): `migrate_pages` of one page, `move_to_new_folio` and
//! `remove_migration_pte`. The unmapping half, `try_to_migrate_one` ("6.12") and
//! `try_to_unmap_one(TTU_MIGRATION)` (4.x), is mm/rmap.c: [`crate::rmap::unmap`].

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::page_alloc::Gfp;
use crate::mm::vmstat::Vm;
use crate::rmap::{Mapping, RmapWalkControl, walk_on};
use crate::sim::log::Ev;

impl Kernel {
    /// Migrate the page mapped at `addr` of `pid` to a new frame (`migrate_pages` of one page,
    /// as compaction or NUMA balancing would): unmap every mapping with `try_to_migrate_one`
    /// ("6.12") or `try_to_unmap_one(TTU_MIGRATION)` (4.x), copy, and map the new page where a
    /// migration entry was installed. A mapping dropped by the `pte_unused` branch is not
    /// restored. Returns the new pfn, or None if the page could not be migrated.
    pub fn migrate_page(&mut self, pid: u32, addr: u64) -> crate::Result<Option<u32>> {
        self.mm(pid)?;
        let arch = self.arch();
        let Some(pte) = self.pte_at(pid, addr & !0xfff) else {
            return Ok(None);
        };
        if !arch.pte_present(pte) || arch.pte_special(pte) {
            return Ok(None);
        }
        let old = arch.pte_pfn(pte);
        if !self.isolate_lru_page(old) {
            return Ok(None);
        }
        // migrate_folio_unmap (mm/migrate.c v6.12), MIGRATE_SYNC: "folio_wait_writeback(src);"
        self.folio_wait_writeback(old);
        let Some(new) = self.alloc_page(Gfp::User) else {
            self.putback_lru_page(old);
            self.vmstat.inc(Vm::pgmigrate_fail);
            return Ok(None);
        };
        self.migration_targets.clear();
        let kind = if self.profile.try_to_migrate_split { Ev::TryToMigrateOne } else { Ev::TryToUnmapOne };
        // try_to_migrate (6.12) / try_to_unmap(TTU_MIGRATION) (4.x): `done =
        // folio_not_mapped`, and `invalid_vma = invalid_migration_vma` for an anon page
        let anon = self.mem.frames[old as usize].anon();
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| walk_on(k.try_to_migrate_one(old, m, kind)),
            done: Some(Kernel::folio_not_mapped),
            invalid_vma: anon.then_some(Kernel::invalid_migration_vma),
        };
        self.rmap_walk(old, &mut rwc);
        // move_to_new_folio: the new page takes over identity, data and cache slot
        let of = self.mem.frames[old as usize];
        let index = self.mem.index(old);
        self.mem.set_index(new, index);
        self.mem.set_content(new, self.mem.content(old));
        {
            let nf = &mut self.mem.frames[new as usize];
            nf.private = of.private;
            nf.flags = of.flags & !(pg::PG_LRU | pg::PG_ISOLATED | pg::PG_BUDDY);
        }
        let mapping = self.mem.mapping(old);
        self.mem.set_mapping(new, mapping);
        if let Some(off) = of.swap_offset() {
            self.swap.set_cache_page(off, Some(new));
        } else if mapping != 0 && !of.anon() {
            self.filex_mut(mapping - 1).pages.insert(index, crate::mm::CacheEntry::Page(new));
        }
        let cached = of.swap_offset().is_some() || (mapping != 0 && !of.anon());
        if cached {
            self.get_page(new);
            self.mem.dec_refcount(old);
        }
        let targets = std::mem::take(&mut self.migration_targets);
        for &(tpid, vma, _addr, idx, pteval) in &targets {
            // remove_migration_pte (mm/migrate.c). 4.13/4.17/4.18: `pte =
            // pte_mkold(mk_pte(new, READ_ONCE(vma->vm_page_prot)));` — always old. 6.12: the
            // migration entry carries young and dirty (try_to_migrate_one:
            // `make_migration_entry_young/dirty` when `pte_young/pte_dirty(pteval)`), and `if
            // (!is_migration_entry_young(entry)) pte = pte_mkold(pte); if
            // (folio_test_dirty(folio) && is_migration_entry_dirty(entry)) pte =
            // pte_mkdirty(pte);` (s390's mk_pte makes the PTE young, and dirty when the
            // protection is writable and the page PG_dirty: `Kernel::mk_pte`). The model keeps pteval
            // in place of the entry, so the entry's bits are pteval's.
            let prot = self.vma(vma).page_prot;
            let mut e = self.mk_pte(new, prot);
            if arch.pte_soft_dirty(pteval) {
                e = arch.pte_mksoft_dirty(e);
            }
            let ad = self.profile.migration_entry_ad;
            if !(ad && arch.pte_young(pteval)) {
                e = arch.pte_mkold(e);
            }
            if ad && self.mem.frames[new as usize].test(pg::PG_DIRTY) && arch.pte_dirty(pteval) {
                e = arch.pte_mkdirty(e);
            }
            if arch.pte_write(pteval) {
                e = arch.pte_mkwrite(e);
            }
            self.set_pte_at(tpid, idx, e);
            self.page_add_rmap(new);
            self.get_page(new);
        }
        self.migration_targets = targets;
        // the old frame has only its isolation reference left: putback frees it
        let o = &mut self.mem.frames[old as usize];
        o.flags &= !(pg::PG_SWAPCACHE | pg::PAGE_MAPPING_ANON);
        o.private = 0;
        self.mem.set_mapping(old, 0);
        self.putback_lru_page(old);
        // the new page goes on the LRU and the allocation reference is dropped
        self.lru_cache_add(new);
        let survived = self.mem.refcount(new) > 1;
        self.put_page(new);
        self.vmstat.inc(Vm::pgmigrate_success);
        Ok(if survived { Some(new) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{kernel, proc_with_pages};

    /// `remove_migration_pte` (mm/migrate.c): 6.12 restores the young and dirty bits that
    /// `try_to_migrate_one` (mm/rmap.c) kept in the migration entry
    /// (`make_migration_entry_young/dirty`, 2e3468778dbe, v6.1), so a page written just before
    /// migration is mapped young (valid on s390) and dirty and `folio_referenced` sees the
    /// reference; 4.13/4.17/4.18 always make the new PTE old (`pte_mkold(mk_pte(..))`).
    #[test]
    fn migration_keeps_young_and_dirty_on_612_and_makes_the_pte_old_on_4x() {
        for (p, kept) in [("4.13", false), ("4.17", false), ("4.18", false), ("6.12", true)] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            let arch = k.arch();
            let before = k.pte_at(pid, a).unwrap();
            assert!(arch.pte_young(before) && arch.pte_dirty(before), "{p}: written page");
            let new = k.migrate_page(pid, a).unwrap().expect("migrated");
            let pte = k.pte_at(pid, a).unwrap();
            assert_eq!(arch.pte_pfn(pte), new, "{p}");
            assert_eq!(arch.pte_young(pte), kept, "{p}: young after migration");
            assert_eq!(arch.pte_dirty(pte), kept, "{p}: dirty after migration");
            let r = k.folio_referenced(new);
            assert_eq!(r.referenced > 0, kept, "{p}: folio_referenced sees the reference");
            k.check_invariants().unwrap();
        }
    }
}
