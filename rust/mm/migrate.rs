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
        {
            let nf = &mut self.mem.frames[new as usize];
            nf.content = of.content;
            nf.mapping = of.mapping;
            nf.index = of.index;
            nf.private = of.private;
            nf.flags = of.flags & !(pg::PG_LRU | pg::PG_ISOLATED | pg::PG_BUDDY);
        }
        if let Some(off) = of.swap_offset() {
            self.swap.set_cache_page(off, Some(new));
        } else if of.mapping != 0 && !of.anon() {
            self.filex_mut(of.mapping - 1).pages.insert(of.index, crate::mm::CacheEntry::Page(new));
        }
        let cached = of.swap_offset().is_some() || (of.mapping != 0 && !of.anon());
        if cached {
            self.get_page(new);
            self.mem.frames[old as usize].refcount -= 1;
        }
        let targets = std::mem::take(&mut self.migration_targets);
        for &(tpid, vma, _addr, idx, pteval) in &targets {
            // remove_migration_pte
            let prot = self.vma(vma).page_prot;
            let mut e = arch.pte_mkold(arch.mk_pte(new, prot));
            if arch.pte_soft_dirty(pteval) {
                e = arch.pte_mksoft_dirty(e);
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
        o.mapping = 0;
        self.putback_lru_page(old);
        // the new page goes on the LRU and the allocation reference is dropped
        self.lru_cache_add(new);
        let survived = self.mem.frames[new as usize].refcount > 1;
        self.put_page(new);
        self.vmstat.inc(Vm::pgmigrate_success);
        Ok(if survived { Some(new) } else { None })
    }
}
