//! The host side of s390 KVM guest memory management (arch/s390/kvm/priv.c, diag.c,
//! kvm-s390.c, arch/s390/mm/gmap.c): ESSA as the SIE hardware interprets it and as KVM
//! intercepts it, the CBRL and its processing by `__gmap_zap`, DIAG 0x10 (`gmap_discard`),
//! CMMA migration (`KVM_S390_GET/SET_CMMA_BITS`) and storage-key enablement.
//!
//! Simplifications: the gmap is linear (guest address = offset into QEMU's RAM block), so the
//! CBRL holds host virtual addresses here instead of guest absolute addresses; one CBRL per
//! vCPU thread.

pub mod guest;

use crate::arch::s390::essa::{self, Essa};
use crate::arch::s390::pgste::{_PGSTE_GPS_NODAT, _PGSTE_GPS_USAGE_MASK, _PGSTE_GPS_USAGE_UNUSED, Pgste};
use crate::arch::s390::pgtable::{self as s390pt, S390Mm, ZapUnused};
use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::MM_SWAPENTS;
use crate::mm::page::ZERO_PFN;
use crate::mm::vmstat::Vm;
use crate::profile::ZeroPageRemoval;
use crate::profile::fixes::{CbrlGuard, CmmaSetUnused, Diag10Guard};
use crate::sim::log::Ev;

/// Guest entries of a CBRL: one 4 KiB page holds 512 8-byte addresses, but the hardware fills
/// only 511 of them and intercepts the next ESSA; the 512th slot is reserved for the host
/// (`handle_essa`, arch/s390/kvm/priv.c, the same in v4.13, v4.17, v4.18 and v6.12:
/// "/* entries expected to be 1FF */"; `__do_essa`/`do_essa`: "It is possible that all the
/// normal 511 slots were full, in which case we will now write in the 512th slot, which is
/// reserved for host use").
pub const CBRL_ENTRIES: usize = 511;

/// The program-interruption code of a specification exception (KVM's `PGM_SPECIFICATION`).
pub const PGM_SPECIFICATION: u16 = 0x06;

/// What a DIAG 0x10 did, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagRelease {
    /// The pages were released; `zapped` host PTEs were not none before.
    Released { zapped: u32 },
    /// KVM injected this program interruption (PGM_SPECIFICATION) and released nothing.
    ProgramInterrupt(u16),
}

/// What one ESSA did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EssaOutcome {
    pub essa: Essa,
    /// The instruction was intercepted (CBRL full, or migration mode) and KVM processed the CBRL.
    pub intercepted: bool,
    /// Swap PTEs the CBRL processing zapped.
    pub zapped: u32,
    /// The CBRL entries pending after the instruction.
    pub cbrl_len: usize,
    /// KVM injected this program interruption instead of performing the ESSA
    /// (PGM_SPECIFICATION for an orc the VM's facilities do not offer); nothing changed.
    pub program_interrupt: Option<u16>,
}

impl Kernel {
    fn kvm_mm(&self, pid: u32, call: &'static str) -> Result<()> {
        if !self.mm(pid)?.has_pgste {
            return Err(Error::invalid(format!("{call}: process {pid} is not a KVM process (spawn it with kvm=True)")));
        }
        Ok(())
    }

    /// ESSA with `orc` by vCPU `tid` on the guest page at host address `addr`.
    ///
    /// The SIE hardware interprets it (`pgste_perform_essa` semantics; a page that may be
    /// discarded goes on the vCPU's CBRL). When the CBRL is full, or in migration mode, KVM
    /// intercepts (`handle_essa`): it processes the CBRL with `__gmap_zap` and (in migration
    /// mode, where `__do_essa` emulated the instruction) marks the page CMMA-dirty.
    ///
    /// `handle_essa` (arch/s390/kvm/priv.c, 4.13/4.17/4.18/6.12) first checks the orc: "ORCs
    /// 0-6 are always valid"; `if (orc > (test_kvm_facility(vcpu->kvm, 147) ?
    /// ESSA_SET_STABLE_NODAT : ESSA_SET_STABLE_IF_RESIDENT)) return
    /// kvm_s390_inject_program_int(vcpu, PGM_SPECIFICATION);`. So orc 7 in a VM without
    /// facility 147 ([`crate::mm::Mm::kvm_facility_147`]) is intercepted and gets a
    /// specification exception, and nothing changes.
    pub fn essa(&mut self, pid: u32, tid: u32, addr: u64, orc: u32) -> Result<EssaOutcome> {
        if tid > u16::MAX as u32 {
            return Err(Error::invalid(format!("vCPU {tid} is beyond the model's thread ids 0..=65535")));
        }
        self.kvm_mm(pid, "ESSA")?;
        essa::check_orc(orc)?;
        let hva = addr & !0xfff;
        if self.vma_lookup(pid, hva).is_none() {
            return Err(Error::errno(
                Errno::EFAULT,
                "ESSA",
                format!("no VMA at {hva:#x} (pgste_perform_essa returns -EFAULT)"),
            ));
        }
        let migration = self.kvm_migration_mode;
        let key = (pid, tid);
        let max_orc = if self.mmx(pid).kvm_facility_147 {
            essa::ESSA_SET_STABLE_NODAT
        } else {
            essa::ESSA_SET_STABLE_IF_RESIDENT
        };
        if orc > max_orc {
            let idx = self.mmx_mut(pid).pt.pte_alloc(hva).expect("a mapped address has page tables");
            let pgste = Pgste(self.mmx(pid).pt.pgste(idx));
            let cbrl_len = self.cbrl.get(&key).map_or(0, |c| c.len());
            let essa = Essa { old_pgste: pgste, new_pgste: pgste, res: 0 };
            return Ok(EssaOutcome {
                essa,
                intercepted: true,
                zapped: 0,
                cbrl_len,
                program_interrupt: Some(PGM_SPECIFICATION),
            });
        }
        let mut intercepted = false;
        let mut zapped = 0;
        if !migration && self.cbrl.get(&key).is_some_and(|c| c.len() >= CBRL_ENTRIES) {
            // intercept, process, retry the instruction
            intercepted = true;
            zapped += self.process_cbrl(pid, tid);
        }
        let idx = self.mmx_mut(pid).pt.pte_alloc(hva).expect("a mapped address has page tables");
        let pte = crate::arch::s390::pte::Pte(self.mmx(pid).pt.pte(idx));
        let pgste = Pgste(self.mmx(pid).pt.pgste(idx));
        let r = essa::pgste_perform_essa(pte, pgste, orc)?;
        self.mmx_mut(pid).pt.set_pgste(idx, r.new_pgste.val());
        if r.res == 1 {
            self.cbrl.entry(key).or_default().push(hva);
        }
        if migration {
            intercepted = true;
            if orc != essa::ESSA_GET_STATE {
                self.cmma_dirty.insert((pid, hva));
            }
            zapped += self.process_cbrl(pid, tid);
        }
        self.log(Ev::Essa, pid, tid, hva, orc as u64, r.res as u64, (r.new_pgste.val() & _PGSTE_GPS_USAGE_MASK) >> 24);
        let cbrl_len = self.cbrl.get(&key).map_or(0, |c| c.len());
        Ok(EssaOutcome { essa: r, intercepted, zapped, cbrl_len, program_interrupt: None })
    }

    /// Whether the KVM VM hosted by `pid` offers facility 147 (ESSA_SET_STABLE_NODAT) to its
    /// guest: QEMU's CPU model (`cmm-nt`), set before the guest runs.
    pub fn set_kvm_facility_147(&mut self, pid: u32, offered: bool) -> Result<()> {
        self.kvm_mm(pid, "facility 147")?;
        self.mmx_mut(pid).kvm_facility_147 = offered;
        Ok(())
    }

    /// KVM's processing of a vCPU's CBRL on an ESSA intercept: `__gmap_zap` of every entry.
    /// Returns how many swap PTEs were zapped.
    pub fn process_cbrl(&mut self, pid: u32, tid: u32) -> u32 {
        let list = self.cbrl.remove(&(pid, tid)).unwrap_or_default();
        list.into_iter().filter(|&a| self.gmap_zap(pid, a)).count() as u32
    }

    /// `__gmap_zap` (arch/s390/mm/gmap.c, 4.13..6.12; v5.15 adds the `vma_lookup` check) →
    /// `ptep_zap_unused(mm, vmaddr, ptep, 0)`: a swap PTE of an UNUSED (or
    /// logically zero) page is cleared to none and its swap slot freed (`ptep_zap_swap_entry`).
    /// No userfaultfd check in any modelled profile. Returns whether it zapped.
    pub fn gmap_zap(&mut self, pid: u32, addr: u64) -> bool {
        let hva = addr & !0xfff;
        // v5.15+ checks the VMA (a no-op difference here: CBRL entries come from mapped pages)
        let Some(vma) = self.vma_lookup(pid, hva) else {
            return false;
        };
        // candidate fix (profile/fixes.rs): no zap in a userfaultfd-armed VMA
        if self.profile.fixes.cbrl_guard == CbrlGuard::UffdArmed && self.userfaultfd_armed(vma) {
            self.log(Ev::GmapZap, pid, 0, hva, hva, 0, 0);
            return false;
        }
        let Ok(idx) = self.pte_alloc(pid, hva) else {
            return false;
        };
        let mm = self.mmx_mut(pid);
        let (pte, pgste) = mm.pt.slot_mut(idx);
        let Some(pgste) = pgste else { return false };
        let z = s390pt::ptep_zap_unused(pte, pgste, s390pt::ZapMode::Discard);
        let zapped = match z {
            ZapUnused::Kept => false,
            ZapUnused::ZappedSwap { offset, .. } => {
                self.add_rss(pid, MM_SWAPENTS, -1);
                self.free_swap_and_cache(offset as u32);
                self.vmstat.inc(Vm::model_cbrl_zapped);
                true
            }
        };
        self.log(Ev::GmapZap, pid, 0, hva, hva, zapped as u64, 0);
        zapped
    }

    /// DIAG 0x10 as KVM handles it (`diag_release_pages`, arch/s390/kvm/diag.c; the same in
    /// every modelled profile, 4.17 through 6.12): vCPU `tid` releases the guest real pages from
    /// `start` (register r1) through `last` (register r2: the address of the last page, so
    /// `end = last + PAGE_SIZE`).
    ///
    /// KVM injects PGM_SPECIFICATION, and releases nothing, when `start` or `end` is not
    /// page-aligned, `start >= end`, or `start < 2 * PAGE_SIZE` (the lowcore): the guest sees the
    /// program interruption, returned as [`DiagRelease::ProgramInterrupt`]. Otherwise the real
    /// range becomes absolute pieces around the vCPU's `prefix` (real `[prefix, prefix + 8K)` is
    /// absolute `[0, 8K)` and the other way round): the fast path when the range misses the
    /// prefix pages, else the part below the prefix, absolute page 0 if `start <= prefix`,
    /// absolute page 1 if `end > prefix + PAGE_SIZE`, and the part above `prefix + 8K`. Each
    /// piece goes to `gmap_discard`, which skips what is not guest memory.
    ///
    /// Simplification: the gmap is linear, guest absolute address `a` is QEMU's `ram_base + a`,
    /// and guest memory is the VMA at `ram_base`.
    pub fn diag_release_pages(
        &mut self,
        pid: u32,
        tid: u32,
        ram_base: u64,
        prefix: u64,
        start: u64,
        last: u64,
    ) -> Result<DiagRelease> {
        self.kvm_mm(pid, "DIAG 0x10")?;
        let Some(ram) = self.vma_lookup(pid, ram_base) else {
            return Err(Error::errno(Errno::EFAULT, "DIAG 0x10", format!("no guest memory mapped at {ram_base:#x}")));
        };
        const PAGE: u64 = 4096;
        if prefix & (PAGE - 1) != 0 {
            return Err(Error::invalid(format!("prefix {prefix:#x} is not page-aligned (SET PREFIX aligns it to 8K)")));
        }
        let end = last.wrapping_add(PAGE);
        if start & (PAGE - 1) != 0 || end & (PAGE - 1) != 0 || start >= end || start < 2 * PAGE {
            return Ok(DiagRelease::ProgramInterrupt(PGM_SPECIFICATION));
        }
        let pieces: Vec<(u64, u64)> = if end <= prefix || start >= prefix + 2 * PAGE {
            vec![(start, end)]
        } else {
            let mut v = vec![(start, prefix)];
            if start <= prefix {
                v.push((0, PAGE));
            }
            if end > prefix + PAGE {
                v.push((PAGE, 2 * PAGE));
            }
            v.push((prefix + 2 * PAGE, end));
            v
        };
        let ram_len = self.vma(ram).end - ram_base;
        let mut zapped = 0;
        for (from, to) in pieces {
            // gmap_discard: nothing for an empty piece or for what lies beyond guest memory
            let (from, to) = (from.min(ram_len), to.min(ram_len));
            if from >= to {
                continue;
            }
            let (s, e) = (ram_base + from, ram_base + to);
            let n = self.gmap_discard(pid, s, e);
            self.log(Ev::Diag10, pid, tid, s, s, e, n as u64);
            zapped += n;
        }
        self.settle();
        Ok(DiagRelease::Released { zapped })
    }

    /// DIAG 0x10's host half on a host range: `gmap_discard` of `[start, end)` (the guest's
    /// range after `diag_release_pages` checked and split it, see there), which zaps the
    /// host range like MADV_DONTNEED, without telling userfaultfd. A range that is not
    /// page-aligned and increasing is an argument error here (it never reaches
    /// `gmap_discard` in the kernel).
    pub fn diag10(&mut self, pid: u32, start: u64, end: u64) -> Result<u32> {
        self.kvm_mm(pid, "DIAG 0x10")?;
        if start & 0xfff != 0 || end & 0xfff != 0 || start >= end {
            return Err(Error::invalid(format!(
                "DIAG 0x10 range {start:#x}..{end:#x} is not page-aligned and increasing (the guest gets PGM_SPECIFICATION)"
            )));
        }
        let n = self.gmap_discard(pid, start, end);
        self.log(Ev::Diag10, pid, 0, start, start, end, n as u64);
        self.settle();
        Ok(n)
    }

    /// `gmap_discard` (arch/s390/mm/gmap.c, 4.13..6.12; v6.16+: `gmap_helper_discard`): zap the
    /// host PTEs of `[start, end)` in
    /// every VMA there (`zap_page_range`), counted in `model_diag10_zapped`. Returns how many
    /// PTEs were not none.
    fn gmap_discard(&mut self, pid: u32, start: u64, end: u64) -> u32 {
        let arch = self.arch();
        let mut n = 0;
        for id in self.vmas_in(pid, start, end) {
            // candidate fix (profile/fixes.rs): leave a userfaultfd-armed VMA alone
            if self.profile.fixes.diag10_guard == Diag10Guard::UffdArmed && self.userfaultfd_armed(id) {
                continue;
            }
            let v = self.vma(id);
            let (s, e) = (start.max(v.start), end.min(v.end));
            let mut cur = s;
            while let Some((a, idx)) = self.next_pte_slot(pid, cur, e) {
                cur = a + 4096;
                if !arch.pte_none(self.mmx(pid).pt.pte(idx)) {
                    n += 1;
                }
            }
            self.zap_page_range(id, s, e, false);
        }
        self.vmstat.add(Vm::model_diag10_zapped, n as u64);
        n
    }

    /// KVM's dirty log for the RAM of `pid` at `base` (`kvm_arch_sync_dirty_log` →
    /// `gmap_sync_dirty_log_pmd` → `test_and_clear_guest_dirty` per page): every page whose
    /// PGSTE_UC is set gets its bit in `dirty`, and its PTE is write-protected again so that the
    /// next guest store sets UC anew.
    pub fn sync_dirty_log(&mut self, pid: u32, base: u64, dirty: &mut crate::sim::bitmap::Bitmap) {
        let smm = S390Mm { has_pgste: true, uses_skeys: false, layout: self.profile.pgste_layout };
        let end = base + (dirty.len() << 12);
        let n = self.arch().geometry().0.pt_entries;
        let mut pts = Vec::new();
        self.mmx(pid).pt.for_each_pt(base, end, |va, b| pts.push((va, b)));
        let mm = self.mmx_mut(pid);
        for (va, b) in pts {
            for i in 0..n {
                let a = va + ((i as u64) << 12);
                if a < base || a >= end {
                    continue;
                }
                let (pte, pgste) = mm.pt.slot_mut(b + i);
                if let Some(pg) = pgste {
                    if s390pt::test_and_clear_guest_dirty(&smm, pte, pg) {
                        dirty.set((a - base) >> 12);
                    }
                }
            }
        }
    }

    /// `KVM_S390_SET_CMMA_BITS` for one page: `set_pgste_bits(mm, hva, USAGE|NODAT, bits<<24)`.
    /// This is how the source's usage states reach the destination's PGSTEs.
    pub fn set_cmma_bits(&mut self, pid: u32, addr: u64, bits: u8) -> Result<()> {
        self.kvm_mm(pid, "KVM_S390_SET_CMMA_BITS")?;
        let hva = addr & !0xfff;
        if self.vma_lookup(pid, hva).is_none() {
            return Err(Error::errno(Errno::EFAULT, "KVM_S390_SET_CMMA_BITS", format!("no VMA at {hva:#x}")));
        }
        let idx = self.mmx_mut(pid).pt.pte_alloc(hva).expect("mapped");
        let mut v = self.mmx(pid).pt.pgste(idx);
        // candidate fix (profile/fixes.rs): a resident page keeps STABLE
        let unused = (bits as u64) << 24 & _PGSTE_GPS_USAGE_MASK == _PGSTE_GPS_USAGE_UNUSED;
        if unused
            && self.profile.fixes.cmma_set_unused == CmmaSetUnused::NonResidentOnly
            && self.arch().pte_present(self.mmx(pid).pt.pte(idx))
        {
            let stable = ((bits as u64) << 24) & !_PGSTE_GPS_USAGE_MASK;
            s390pt::set_pgste_bits(&mut v, _PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT, stable);
            self.mmx_mut(pid).pt.set_pgste(idx, v);
            return Ok(());
        }
        s390pt::set_pgste_bits(&mut v, _PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT, (bits as u64) << 24);
        self.mmx_mut(pid).pt.set_pgste(idx, v);
        Ok(())
    }

    /// `KVM_S390_GET_CMMA_BITS` for one page: `(pgste >> 24) & 0x43` (usage and NODAT; the ZERO
    /// bit is not migrated).
    pub fn get_cmma_bits(&self, pid: u32, addr: u64) -> Result<u8> {
        self.kvm_mm(pid, "KVM_S390_GET_CMMA_BITS")?;
        let v = self.mmx(pid).pt.pte_index(addr & !0xfff).map_or(0, |i| self.mmx(pid).pt.pgste(i));
        Ok(((v >> 24) & 0x43) as u8)
    }

    /// `s390_enable_skey`: the guest starts using storage keys. Zero-page mappings are
    /// zapped ("4.13" style), left alone (4.14..6.10: they were zapped at `s390_enable_sie`), or
    /// unshared into fresh anon pages (v6.11+: `__s390_unshare_zeropages`).
    pub fn enable_skey(&mut self, pid: u32) -> Result<u32> {
        self.kvm_mm(pid, "s390_enable_skey")?;
        if self.mmx(pid).uses_skeys {
            return Ok(0);
        }
        self.mmx_mut(pid).uses_skeys = true;
        let mut n = 0;
        match self.profile.zero_page_removal {
            ZeroPageRemoval::ZapOnSkeyEnable => n = self.zap_zero_pages(pid, false),
            ZeroPageRemoval::ZapOnSieEnable => {}
            ZeroPageRemoval::UnshareOnCowDisable => {
                self.mmx_mut(pid).allow_cow_sharing = false;
                n = self.zap_zero_pages(pid, true);
            }
        }
        self.log(Ev::SkeyEnable, pid, 0, 0, n as u64, 0, 0);
        self.settle();
        Ok(n)
    }

    /// Remove zero-page mappings: zap them to none (`ptep_xchg_direct(.., _PAGE_INVALID)`) or,
    /// with `unshare`, replace each by a fresh anon page (a FAULT_FLAG_UNSHARE fault).
    fn zap_zero_pages(&mut self, pid: u32, unshare: bool) -> u32 {
        let arch = self.arch();
        let vmas: Vec<u32> = self.mmx(pid).vmas.values().copied().collect();
        let mut n = 0;
        for id in vmas {
            let (s, e) = (self.vma(id).start, self.vma(id).end);
            let mut cur = s;
            while let Some((a, idx)) = self.next_pte_slot(pid, cur, e) {
                cur = a + 4096;
                let p = self.mmx(pid).pt.pte(idx);
                if arch.pte_present(p) && arch.pte_pfn(p) == ZERO_PFN {
                    if unshare {
                        // a FAULT_FLAG_UNSHARE fault: wp_page_copy of the zero page, outside
                        // userfaultfd, the new PTE neither writable nor dirty
                        let _ = self.handle_mm_fault_unshare(pid, id, a);
                    } else {
                        self.ptep_clear_flush(pid, idx);
                    }
                    self.log(Ev::ZeroPageZap, pid, 0, a, unshare as u64, 0, 0);
                    n += 1;
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::s390::essa::{ESSA_GET_STATE, ESSA_SET_UNUSED};
    use crate::fault::Access;
    use crate::mm::mmap::MapKind;
    use crate::testutil::{kernel, proc_with_pages};

    /// `handle_essa` (arch/s390/kvm/priv.c, 4.13/4.17/4.18/6.12): orc 7 (ESSA_SET_STABLE_NODAT)
    /// in a VM whose CPU model lacks facility 147 gets PGM_SPECIFICATION and changes nothing;
    /// with the facility (QEMU's default host model) it is performed.
    #[test]
    fn essa_set_stable_nodat_without_facility_147_is_a_specification_exception() {
        use crate::arch::s390::essa::ESSA_SET_STABLE_NODAT;
        for p in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, true, 2);
            let before = k.mmx(pid).pt.clone();
            k.set_kvm_facility_147(pid, false).unwrap();
            let r = k.essa(pid, 0, a, ESSA_SET_STABLE_NODAT).unwrap();
            assert_eq!(r.program_interrupt, Some(PGM_SPECIFICATION), "{p}");
            assert_eq!(r.essa.old_pgste, r.essa.new_pgste, "{p}");
            assert_eq!(k.mmx(pid).pt, before, "{p}: no PGSTE changed");
            // orcs 0-6 are always valid
            assert_eq!(k.essa(pid, 0, a, ESSA_SET_UNUSED).unwrap().program_interrupt, None, "{p}");
            k.set_kvm_facility_147(pid, true).unwrap();
            let r = k.essa(pid, 0, a + 4096, ESSA_SET_STABLE_NODAT).unwrap();
            assert_eq!(r.program_interrupt, None, "{p}");
            assert_ne!(r.essa.new_pgste.val() & _PGSTE_GPS_NODAT, 0, "{p}: NODAT set");
        }
    }

    /// `pages` written pages of a KVM process, all swapped out (STABLE: 4.18 swaps them).
    fn swapped(pages: u64) -> (Kernel, u32, u64) {
        let mut k = kernel("4.18");
        let (pid, a) = proc_with_pages(&mut k, true, pages);
        k.reclaim(pages);
        for i in 0..pages {
            let pte = k.pte_at(pid, a + i * 4096).unwrap();
            assert!(k.arch().is_swap_pte(pte), "page {i} swapped, PTE {pte:#x}");
        }
        (k, pid, a)
    }

    #[test]
    fn the_512th_essa_intercepts_after_511_cbrl_entries_and_zaps_the_swapped_unused_pages() {
        // handle_essa (arch/s390/kvm/priv.c, v4.13..v6.12): "entries expected to be 1FF"; the
        // hardware intercepts once the 511 guest slots are full (the model used 512 before)
        let (mut k, pid, a) = swapped(8);
        for i in 0..8 {
            let o = k.essa(pid, 0, a + i * 4096, ESSA_SET_UNUSED).unwrap();
            assert_eq!((o.essa.res, o.intercepted, o.cbrl_len), (1, false, i as usize + 1), "swapped: onto the CBRL");
        }
        // never-touched pages: none PTEs are invalid too, so SET_UNUSED lists them
        let b = k.mmap(pid, 600 * 4096, MapKind::Anon, false, None).unwrap();
        for j in 0..(CBRL_ENTRIES as u64 - 8) {
            let o = k.essa(pid, 0, b + j * 4096, ESSA_SET_UNUSED).unwrap();
            assert!(!o.intercepted, "entry {} fits the CBRL", j + 9);
        }
        assert_eq!(k.cbrl[&(pid, 0)].len(), CBRL_ENTRIES);
        assert_eq!(k.mmx(pid).rss[MM_SWAPENTS], 8, "the hardware alone zaps nothing");
        let o = k.essa(pid, 0, b + 504 * 4096, ESSA_SET_UNUSED).unwrap();
        assert!(o.intercepted, "511 full slots make the 512th ESSA intercept");
        assert_eq!(o.zapped, 8, "__gmap_zap cleared the eight swap PTEs");
        assert_eq!(o.cbrl_len, 1, "the retried instruction starts a new CBRL");
        for i in 0..8 {
            assert!(k.arch().pte_none(k.pte_at(pid, a + i * 4096).unwrap()), "page {i}: swap PTE zapped to none");
        }
        assert_eq!(k.mmx(pid).rss[MM_SWAPENTS], 0);
        assert_eq!(k.swap.inuse(), 0, "the swap slots were freed");
        assert_eq!(k.vmstat.get(Vm::model_cbrl_zapped), 8);
        // another vCPU has its own CBRL
        assert_eq!(k.essa(pid, 1, b + 505 * 4096, ESSA_SET_UNUSED).unwrap().cbrl_len, 1);
        k.check_invariants().unwrap();
    }

    #[test]
    fn the_guest_fills_511_cbrl_slots_before_an_essa_is_intercepted() {
        // handle_essa, arch/s390/kvm/priv.c (v4.13, v4.17, v4.18, v6.12): "entries expected to
        // be 1FF": 511 guest entries, the 512th slot is the host's
        let (mut k, pid, _) = swapped(1);
        let b = k.mmap(pid, 600 * 4096, MapKind::Anon, false, None).unwrap();
        let mut n = 0u64;
        loop {
            let o = k.essa(pid, 0, b + n * 4096, ESSA_SET_UNUSED).unwrap();
            n += 1;
            if o.intercepted {
                break;
            }
            assert!(n < 600, "no intercept");
        }
        assert_eq!(n, 512, "the ESSA after 511 listed pages is intercepted");
    }

    #[test]
    fn unsharing_a_zero_page_at_skey_enable_maps_a_page_neither_writable_nor_dirty_on_612() {
        // arch/s390/mm/gmap.c v6.12 __s390_unshare_zeropages: handle_mm_fault(vma, addr,
        // FAULT_FLAG_UNSHARE | FAULT_FLAG_REMOTE, NULL); mm/memory.c v6.12 wp_page_copy: "if
        // (unlikely(unshare)) { ... } else { entry = maybe_mkwrite(pte_mkdirty(entry), vma); }"
        let mut k = kernel("6.12");
        let pid = k.spawn("kvm", true).unwrap();
        let a = k.mmap(pid, 4096, MapKind::Anon, false, None).unwrap();
        assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 0 });
        assert_eq!(k.arch().pte_pfn(k.pte_at(pid, a).unwrap()), ZERO_PFN, "6.12 maps the zero page first");
        assert_eq!(k.enable_skey(pid).unwrap(), 1);
        let pte = k.pte_at(pid, a).unwrap();
        assert_ne!(k.arch().pte_pfn(pte), ZERO_PFN, "unshared into a fresh anon page");
        assert!(!k.arch().pte_write(pte) && !k.arch().pte_dirty(pte), "{pte:#x}");
        // the first write reuses the exclusive page (do_wp_page), no copy
        let reuse = k.vmstat.get(Vm::pgreuse);
        assert_eq!(k.access(pid, 0, a, true, 3).unwrap(), Access::Done { value: 3 });
        assert_eq!(k.vmstat.get(Vm::pgreuse), reuse + 1);
        k.check_invariants().unwrap();
    }

    #[test]
    fn migration_mode_intercepts_every_essa_and_marks_cmma_dirty() {
        let (mut k, pid, a) = swapped(2);
        k.kvm_migration_mode = true; // QEMU's cmma_save_setup on the source
        let o = k.essa(pid, 0, a, ESSA_SET_UNUSED).unwrap();
        assert!(o.intercepted && o.essa.res == 1);
        assert_eq!((o.zapped, o.cbrl_len), (1, 0), "__do_essa's CBRL is processed at once");
        assert!(k.arch().pte_none(k.pte_at(pid, a).unwrap()));
        assert!(k.cmma_dirty.contains(&(pid, a)), "orc != 0: CMMA-dirty for the next GET_CMMA_BITS");
        let o = k.essa(pid, 0, a + 4096, ESSA_GET_STATE).unwrap();
        assert!(o.intercepted && o.zapped == 0);
        assert!(!k.cmma_dirty.contains(&(pid, a + 4096)), "GET_STATE changes nothing to migrate");
        assert!(k.arch().is_swap_pte(k.pte_at(pid, a + 4096).unwrap()));
        k.check_invariants().unwrap();
    }

    fn present(k: &Kernel, pid: u32, a: u64) -> bool {
        k.pte_at(pid, a).is_some_and(|p| k.arch().pte_present(p))
    }

    #[test]
    fn diag10_refuses_what_diag_release_pages_refuses() {
        let mut k = kernel("4.18");
        let (pid, ram) = proc_with_pages(&mut k, true, 16);
        let spec = Ok(DiagRelease::ProgramInterrupt(PGM_SPECIFICATION));
        for (start, last, why) in [
            (0x2001, 0x3000, "start not page-aligned"),
            (0x2000, 0x3010, "end not page-aligned"),
            (0x5000, 0x3000, "start >= end"),
            (0x0000, 0x3000, "start in the lowcore (< 2 pages)"),
            (0x1000, 0x1000, "start in the lowcore (< 2 pages)"),
            (0x2000, u64::MAX - 0xfff, "end wraps to 0"),
        ] {
            assert_eq!(k.diag_release_pages(pid, 0, ram, 0, start, last), spec, "{why}");
        }
        assert!((0..16).all(|i| present(&k, pid, ram + i * 4096)), "nothing released");
        assert_eq!(k.vmstat.get(Vm::model_diag10_zapped), 0);
        // r2 names the last page: 2..=4 is three pages
        assert_eq!(k.diag_release_pages(pid, 0, ram, 0, 0x2000, 0x4000), Ok(DiagRelease::Released { zapped: 3 }));
        let gone: Vec<u64> = (0..16).filter(|&i| !present(&k, pid, ram + i * 4096)).collect();
        assert_eq!(gone, [2, 3, 4]);
        // past the end of guest memory: gmap_discard skips it
        assert_eq!(k.diag_release_pages(pid, 0, ram, 0, 0xe000, 0x20_0000), Ok(DiagRelease::Released { zapped: 2 }));
        k.check_invariants().unwrap();
        assert!(k.diag_release_pages(1234, 0, ram, 0, 0x2000, 0x2000).is_err(), "no such process");
    }

    #[test]
    fn diag10_swaps_the_prefix_pages_with_absolute_0_and_1() {
        let mut k = kernel("6.12");
        let (pid, ram) = proc_with_pages(&mut k, true, 16);
        // prefix at page 8: real pages 8, 9 are absolute 0, 1 (and real 0, 1 absolute 8, 9)
        let r = k.diag_release_pages(pid, 1, ram, 0x8000, 0x6000, 0xa000).unwrap();
        assert_eq!(r, DiagRelease::Released { zapped: 5 });
        let gone: Vec<u64> = (0..16).filter(|&i| !present(&k, pid, ram + i * 4096)).collect();
        assert_eq!(gone, [0, 1, 6, 7, 10], "absolute 8 and 9 are real 0 and 1, outside the range");
        // a range ending inside the prefix area: only absolute page 0 of the two
        let (pid, ram) = proc_with_pages(&mut k, true, 16);
        assert_eq!(
            k.diag_release_pages(pid, 0, ram, 0x8000, 0x7000, 0x8000).unwrap(),
            DiagRelease::Released { zapped: 2 }
        );
        let gone: Vec<u64> = (0..16).filter(|&i| !present(&k, pid, ram + i * 4096)).collect();
        assert_eq!(gone, [0, 7]);
        assert!(k.diag_release_pages(pid, 0, ram, 0x8800, 0x2000, 0x2000).is_err(), "a prefix not page-aligned");
        k.check_invariants().unwrap();
        assert!(matches!(k.access(pid, 0, ram, false, 0).unwrap(), Access::Done { value: 0 }), "released: zero-fill");
    }
}
