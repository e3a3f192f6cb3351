//! The x86_64 TLB model wired to the kernel: which accesses walk the page table (and so set
//! the accessed bit), and where 6.12 flushes (arch/x86/mm/tlb.c, mm/rmap.c), for one CPU as
//! the replay oracle's `-smp 1` guests have it. The TLB itself is
//! [`crate::arch::x86::tlb`]; the choice is off by default (every access sets A, as before).
//!
//! Flushes modelled (6.12):
//! - a PTE of a present page changed other than by clearing A (`ptep_clear_flush` in
//!   `try_to_unmap_one`, zap, mprotect, COW, uffd-wp...): `flush_tlb_mm_range` for the page.
//!   With one CPU `arch_tlbbatch_should_defer` is false (no other CPU in `mm_cpumask`), so
//!   `should_defer_flush` never batches and reclaim flushes per page. In the process's own
//!   context (direct reclaim, its syscalls) `flush_tlb_func` is a partial flush of one page
//!   (INVLPG: QEMU `tlb_flush_page`); in kswapd, a kernel thread in lazy TLB mode on the
//!   process's mm, `flush_tlb_func` switches to `init_mm` ("Since switching to init_mm is
//!   barely slower than a minimal flush, just switch to init_mm"): a CR3 write, and QEMU
//!   empties the TLB (`cpu_x86_update_cr3` → `tlb_flush`); the process's return loads its CR3
//!   again.
//! - `ptep_test_and_clear_young` / `ptep_clear_flush_young`: no flush on x86.
//! - a switch between processes: `switch_mm_irqs_off` loads CR3 (no PCID in QEMU's TLB: a
//!   full flush). A switch to kswapd and back to the same process loads nothing when no flush
//!   of the mm happened meanwhile (`enter_lazy_tlb`; the `prev == next` case with `was_lazy`
//!   and an unchanged `tlb_gen`).
//!
//! Simplification: an mmu_gather range of more than `tlb_single_page_flush_ceiling` (33)
//! pages is flushed whole by the kernel (`flush_tlb_mm_range`); the model flushes its pages one
//! by one (the replay has no munmap or mprotect during a run).

use crate::arch::Arch;
use crate::arch::x86::tlb::{GEOMETRIES, Tlb, TlbGeometry};
use crate::error::{Error, Result};
use crate::kernel::Kernel;

impl Kernel {
    /// Put a TLB of the named geometry in front of the x86_64 page tables (`None`: no TLB,
    /// every access sets the accessed bit: the default). Only on x86_64: s390 has no hardware
    /// accessed bit (reclaim's young test is the invalid-bit emulation, and IPTE flushes).
    pub fn set_x86_tlb(&mut self, geometry: Option<&str>) -> Result<()> {
        let Some(name) = geometry else {
            self.tlb = None;
            return Ok(());
        };
        if self.arch() != Arch::X86_64 {
            return Err(Error::invalid(format!(
                "x86_tlb={name:?} needs the x86_64 arch; this kernel is {} (s390 has no hardware accessed bit to go stale)",
                self.arch().name()
            )));
        }
        let g = TlbGeometry::by_name(name).ok_or_else(|| {
            let known: Vec<&str> = GEOMETRIES.iter().map(|g| g.name).collect();
            Error::invalid(format!("unknown x86_tlb {name:?}; known: {}", known.join(", ")))
        })?;
        self.tlb = Some(Box::new(Tlb::new(g)));
        Ok(())
    }

    /// The TLB geometry in use, if any.
    pub fn x86_tlb(&self) -> Option<&'static str> {
        self.tlb.as_ref().map(|t| t.geometry.name)
    }

    /// The TLB model itself (tests, counters).
    pub fn tlb(&self) -> Option<&Tlb> {
        self.tlb.as_deref()
    }

    /// An access of `pid` at `addr` (PTE slot `idx`) through the present PTE `pte` that the
    /// hardware allows:
    /// whether it walks the page table (and sets A, D on a store), i.e. misses the TLB. Without
    /// a TLB model every access walks.
    #[inline]
    pub(crate) fn tlb_access_walks(&mut self, pid: u32, addr: u64, idx: usize, pte: u64, write: bool) -> bool {
        let now = self.now;
        let Some(t) = self.tlb.as_deref_mut() else { return true };
        if t.loaded != Some(pid) {
            // switch_mm_irqs_off: CR3 of the next process
            t.flush_all(now);
            t.loaded = Some(pid);
        }
        let vpn = addr >> 12;
        let pfn = Arch::X86_64.pte_pfn(pte);
        // a store through a clean PTE misses (QEMU leaves the entry read-only until the PTE is
        // dirty), and so does any translation of another frame
        if (!write || Arch::X86_64.pte_dirty(pte)) && t.lookup(vpn, pfn, write) {
            if !Arch::X86_64.pte_young(pte) {
                t.stale_hits += 1;
            }
            return false;
        }
        let new = pte | crate::arch::x86::_PAGE_ACCESSED | if write { crate::arch::x86::_PAGE_DIRTY } else { 0 };
        let writable = Arch::X86_64.pte_write(new) && Arch::X86_64.pte_dirty(new);
        t.fill(vpn, idx, pfn, writable);
        true
    }

    /// The PTE of `pid` at slot `idx` went from `old` to `new`: the flush the kernel does for
    /// it on x86 (none for clearing the accessed bit, none where no translation can be cached).
    pub(crate) fn tlb_pte_changed(&mut self, pid: u32, idx: usize, old: u64, new: u64) {
        let Some(t) = self.tlb.as_deref_mut() else { return };
        let a = Arch::X86_64;
        if !a.pte_present(old) || new == old || new == a.pte_mkold(old) || t.loaded != Some(pid) {
            return;
        }
        if t.lazy {
            // flush_tlb_func on a lazy CPU: switch_mm_irqs_off(NULL, &init_mm, NULL)
            let now = self.now;
            t.flush_all(now);
            t.loaded = None;
        } else {
            t.flush_slot(idx);
        }
    }

    /// kswapd (a kernel thread) takes the CPU (`lazy`) or gives it back.
    pub(crate) fn tlb_kthread(&mut self, lazy: bool) {
        if let Some(t) = self.tlb.as_deref_mut() {
            t.lazy = lazy;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::Arch;
    use crate::kernel::Kernel;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;

    /// An x86_64 6.12 kernel of 8 MiB with the QEMU 7.2 TLB, and a process with `pages`
    /// written pages.
    fn x86(pages: u64, tlb: bool) -> (Kernel, u32, u64) {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
        if tlb {
            k.set_x86_tlb(Some("qemu-tcg-7.2")).unwrap();
        }
        let pid = k.spawn("t", false).unwrap();
        let a = k.mmap(pid, pages * 4096, MapKind::Anon, false, None).unwrap();
        for i in 0..pages {
            k.access(pid, 0, a + i * 4096, true, i).unwrap();
        }
        (k, pid, a)
    }

    fn clear_young(k: &mut Kernel, pid: u32, addr: u64) -> bool {
        let idx = k.mmx(pid).pt.pte_index(addr).unwrap();
        k.ptep_test_and_clear_young(pid, idx)
    }

    fn young(k: &Kernel, pid: u32, addr: u64) -> bool {
        Arch::X86_64.pte_young(k.pte_at(pid, addr).unwrap())
    }

    /// x86 `ptep_clear_flush_young` / `ptep_test_and_clear_young` (arch/x86/mm/pgtable.c, 6.12)
    /// clear A without a flush; QEMU 7.2 (accel/tcg/cputlb.c) completes an access through the
    /// cached translation without the page walk of target/i386 `mmu_translate`, the only place
    /// that sets A. So the page stays old however often it is touched. Without the TLB model
    /// (the default) the access sets A again.
    #[test]
    fn an_access_through_a_cached_translation_leaves_the_pte_old_after_clear_young() {
        for tlb in [true, false] {
            let (mut k, pid, a) = x86(16, tlb);
            k.access(pid, 0, a, false, 0).unwrap();
            assert!(clear_young(&mut k, pid, a));
            for _ in 0..3 {
                k.access(pid, 0, a, false, 0).unwrap();
                k.access(pid, 0, a, true, 7).unwrap();
            }
            assert_eq!(young(&k, pid, a), !tlb, "tlb={tlb}");
            assert!(!clear_young(&mut k, pid, a) || !tlb, "folio_referenced finds it unreferenced");
        }
    }

    /// QEMU 7.2 target/i386 `mmu_translate`: a translation filled by a load of a clean PTE is
    /// not writable ("only set write access if already dirty"), so the first store walks again
    /// and sets D and A.
    #[test]
    fn the_first_store_through_a_clean_cached_translation_walks_and_sets_young_and_dirty() {
        let (mut k, pid, a) = x86(4, true);
        let idx = k.mmx(pid).pt.pte_index(a).unwrap();
        let clean = Arch::X86_64.pte_mkclean(k.pte_at(pid, a).unwrap());
        k.ptep_xchg(pid, idx, clean); // as page_mkclean would (with its flush)
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(clear_young(&mut k, pid, a));
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(!young(&k, pid, a), "load through the cached translation");
        k.access(pid, 0, a, true, 1).unwrap();
        let pte = k.pte_at(pid, a).unwrap();
        assert!(Arch::X86_64.pte_young(pte) && Arch::X86_64.pte_dirty(pte));
    }

    /// arch/x86/mm/tlb.c 6.12 `flush_tlb_func`: on a CPU in lazy TLB mode (kswapd, a kernel
    /// thread on the process's mm) a flush switches to `init_mm` (a CR3 write: QEMU empties
    /// its TLB), so after kswapd unmapped any page the next access of a hot page walks and
    /// sets A. In the process's own context (direct reclaim) the flush of one page is an
    /// INVLPG (`flush_tlb_one_user`; QEMU `tlb_flush_page`): other translations stay cached.
    #[test]
    fn a_flush_in_kswapd_empties_the_tlb_and_the_next_access_sets_young() {
        for lazy in [false, true] {
            let (mut k, pid, a) = x86(16, true);
            k.access(pid, 0, a, false, 0).unwrap();
            assert!(clear_young(&mut k, pid, a));
            let other = k.mmx(pid).pt.pte_index(a + 5 * 4096).unwrap();
            let flushes = k.tlb().unwrap().full_flushes;
            k.tlb_kthread(lazy);
            k.ptep_clear_flush(pid, other);
            k.tlb_kthread(false);
            assert_eq!(k.tlb().unwrap().full_flushes, flushes + lazy as u64);
            k.access(pid, 0, a, false, 0).unwrap();
            assert_eq!(young(&k, pid, a), lazy, "lazy={lazy}");
        }
    }

    /// `switch_mm_irqs_off` (arch/x86/mm/tlb.c 6.12) loads the next process's CR3, and QEMU 7.2
    /// flushes its whole TLB on a CR3 write (`cpu_x86_update_cr3` → `tlb_flush`): a page made
    /// old is young again after another process ran.
    #[test]
    fn a_switch_to_another_process_flushes_and_the_next_access_sets_young() {
        let (mut k, pid, a) = x86(8, true);
        let other = k.spawn("other", false).unwrap();
        let b = k.mmap(other, 4096, MapKind::Anon, false, None).unwrap();
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(clear_young(&mut k, pid, a));
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(!young(&k, pid, a));
        k.access(other, 0, b, true, 1).unwrap();
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(young(&k, pid, a));
    }

    /// The TLB model is x86_64's and a named choice: s390 refuses it (no hardware accessed
    /// bit), an unknown geometry is refused, and a kernel with one refuses to be saved.
    #[test]
    fn the_tlb_model_is_a_named_x86_choice() {
        let mut s = Kernel::new(Profile::get("6.12", Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
        assert!(s.set_x86_tlb(Some("qemu-tcg-7.2")).unwrap_err().to_string().contains("x86_64"));
        let (mut k, _, _) = x86(1, false);
        assert_eq!(k.x86_tlb(), None);
        assert!(k.set_x86_tlb(Some("pentium")).unwrap_err().to_string().contains("qemu-tcg-7.2"));
        k.set_x86_tlb(Some("qemu-tcg-7.2")).unwrap();
        assert_eq!(k.x86_tlb(), Some("qemu-tcg-7.2"));
        assert!(k.snapshot_bytes().is_err());
        k.set_x86_tlb(None).unwrap();
        assert!(k.snapshot_bytes().is_ok());
    }

    /// Under direct reclaim with MGLRU (8 MiB, a process of 3,000 pages, 300 of them hot and
    /// spread out; kswapd never stepped, so every reclaim runs in the process's context, where
    /// 6.12 flushes one page per unmap and `lru_gen_look_around` clears the neighbours' A
    /// without a flush) the TLB model is deterministic (the same accesses give the same log
    /// and counters), hot pages are touched while old, and reclaim decides differently from
    /// the default.
    #[test]
    fn reclaim_with_the_tlb_model_is_deterministic_and_differs_from_the_default() {
        let run = |tlb: bool| {
            let mut k = Kernel::new(Profile::by_names("6.12-debian", "x86_64").unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            k.set_kswapd_mode(crate::vmscan::types::KswapdMode::Actor);
            if tlb {
                k.set_x86_tlb(Some("qemu-tcg-7.2")).unwrap();
            }
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 3000 * 4096, MapKind::Anon, false, None).unwrap();
            for p in 0..3000 {
                k.access(pid, 0, a + p * 4096, true, p).unwrap();
            }
            let mut rng = crate::sim::rng::Rng::new(5);
            for i in 0..20_000u64 {
                let p = if rng.chance(0.8) { rng.below(300) * 10 } else { rng.below(3000) };
                k.access(pid, 0, a + p * 4096, rng.chance(0.3), i).unwrap();
            }
            k.check_invariants().unwrap();
            assert_eq!(k.tlb().is_some_and(|t| t.stale_hits > 0), tlb, "hot pages touched while old");
            (k.log.hash(), k.vmstat.clone())
        };
        assert_eq!(run(true), run(true));
        assert_ne!(run(true).1, run(false).1);
    }
}
