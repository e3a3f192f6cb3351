//! The s390 PTE exchange primitives with their PGSTE logic, as in arch/s390/mm/pgtable.c of
//! 4.13..6.12 (the bodies are the same in every profile apart from the PGSTE lock; audited in
//! docs/fidelity.md, phase C).
//!
//! Every change of a PTE in a PGSTE mm goes through `ptep_xchg_start` (take the PGSTE lock,
//! fire the IPTE notifier if PGSTE_IN is set), the flush (IPTE) and `ptep_xchg_commit`. The
//! commit is the **only producer of `_PAGE_UNUSED`**: when the new PTE is hardware-invalid and
//! the guest's usage state is UNUSED, the *returned* old value gets `_PAGE_UNUSED`; the table
//! never stores it. That returned value is what `try_to_unmap_one` tests with `pte_unused`.
//!
//! The functions here work on one slot (a PTE and, in a PGSTE mm, its PGSTE) and on the storage
//! keys of the frames ([`StorageKeys`]). What the mm layer must do afterwards (free a swap
//! entry, fix counters) is returned, never done here.
//!
//! Simplifications: the PGSTE lock (PCL) is implicit (a step of the model is atomic under the
//! page-table lock); TLB flushes are not modelled beyond counting them in the caller;
//! the machine has ESOP and NX (z14 or later), so `pgste_set_pte` never forces dirty and
//! `set_pte_at` keeps `_PAGE_NOEXEC`.

use super::pgste::*;
use super::pte::*;

/// Storage-key byte bits (arch/s390/include/asm/page.h).
pub const _PAGE_CHANGED: u8 = 0x02;
pub const _PAGE_REFERENCED: u8 = 0x04;
pub const _PAGE_FP_BIT: u8 = 0x08;
pub const _PAGE_ACC_BITS: u8 = 0xf0;

/// The storage keys of the frames (one byte per 4 KiB frame on real hardware).
pub trait StorageKeys {
    /// `page_get_storage_key`.
    fn get_key(&self, pfn: u64) -> u8;
    /// `page_set_storage_key`.
    fn set_key(&mut self, pfn: u64, key: u8);
}

/// What of the mm the primitives need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct S390Mm {
    /// `mm_has_pgste`: a KVM host process.
    pub has_pgste: bool,
    /// `mm_uses_skeys`: the guest has enabled storage keys (`s390_enable_skey`).
    pub uses_skeys: bool,
    pub layout: PgsteLayout,
}

/// `pgste_pte_notify`: clear IN and VSIE; the gmap / shadow invalidation they request is a
/// no-op in the model (guest memory is one linear gmap segment without shadows).
fn pgste_pte_notify(mm: &S390Mm, pgste: u64) -> u64 {
    pgste & !(mm.layout.in_bit() | mm.layout.vsie())
}

/// `pgste_update_all`: copy the storage key's referenced / changed bits to GR / GC and its
/// access key and fetch protection to the PGSTE (only when the guest uses storage keys and the
/// old PTE was valid).
pub fn pgste_update_all<K: StorageKeys>(mm: &S390Mm, keys: &K, pte: Pte, pgste: u64) -> u64 {
    if !mm.uses_skeys || pte.hw_invalid() {
        return pgste;
    }
    let skey = keys.get_key(pte.pfn()) as u64;
    let bits = skey & (_PAGE_CHANGED | _PAGE_REFERENCED) as u64;
    let mut v = pgste | (bits << 48);
    v &= !(PGSTE_ACC_BITS | PGSTE_FP_BIT);
    v |= (skey & (_PAGE_ACC_BITS | _PAGE_FP_BIT) as u64) << 56;
    v
}

/// `pgste_set_key`: set the storage key of the page a valid new PTE maps from the PGSTE's
/// access key, fetch protection, GR and GC bits.
pub fn pgste_set_key<K: StorageKeys>(mm: &S390Mm, keys: &mut K, pgste: u64, entry: Pte) {
    if !mm.uses_skeys || entry.hw_invalid() {
        return;
    }
    let mut nkey = ((pgste & (PGSTE_ACC_BITS | PGSTE_FP_BIT)) >> 56) as u8;
    nkey |= ((pgste & (PGSTE_GR_BIT | PGSTE_GC_BIT)) >> 48) as u8;
    keys.set_key(entry.pfn(), nkey);
}

/// `pgste_set_pte`: store the PTE; a writable, valid, non-protected PTE sets PGSTE_UC (the
/// page may be written: dirty for migration).
pub fn pgste_set_pte(mm: &S390Mm, pte: &mut u64, pgste: u64, entry: Pte) -> u64 {
    let mut pg = pgste;
    if entry.present() && entry.write() && !entry.hw_invalid() && !entry.hw_protect() {
        pg |= mm.layout.uc();
    }
    *pte = entry.val();
    pg
}

/// `ptep_xchg_direct` / `ptep_xchg_lazy`: exchange the PTE and return the old value, with
/// `_PAGE_UNUSED` added when the mm has PGSTEs, the new PTE is hardware-invalid and the usage
/// state is UNUSED (`ptep_xchg_commit`). Direct and lazy differ only in how the TLB is
/// flushed, which the model does not distinguish.
pub fn ptep_xchg<K: StorageKeys>(mm: &S390Mm, keys: &mut K, pte: &mut u64, pgste: Option<&mut u64>, new: Pte) -> Pte {
    let mut old = Pte(*pte);
    match pgste {
        Some(pg) if mm.has_pgste => {
            // ptep_xchg_start
            let mut v = pgste_pte_notify(mm, *pg);
            // ptep_flush_direct/lazy: IPTE (not modelled), then ptep_xchg_commit:
            if old.hw_invalid() {
                pgste_set_key(mm, keys, v, new);
            }
            if new.hw_invalid() {
                v = pgste_update_all(mm, keys, old, v);
                if v & _PGSTE_GPS_USAGE_MASK == _PGSTE_GPS_USAGE_UNUSED {
                    old = Pte(old.val() | _PAGE_UNUSED);
                }
            }
            *pg = pgste_set_pte(mm, pte, v, new);
        }
        _ => *pte = new.val(),
    }
    old
}

/// `ptep_clear_flush`: `ptep_xchg_direct(.., __pte(_PAGE_INVALID))`.
pub fn ptep_clear_flush<K: StorageKeys>(mm: &S390Mm, keys: &mut K, pte: &mut u64, pgste: Option<&mut u64>) -> Pte {
    ptep_xchg(mm, keys, pte, pgste, Pte::NONE)
}

/// `ptep_get_and_clear`: `ptep_xchg_lazy(.., __pte(_PAGE_INVALID))`.
pub fn ptep_get_and_clear<K: StorageKeys>(mm: &S390Mm, keys: &mut K, pte: &mut u64, pgste: Option<&mut u64>) -> Pte {
    ptep_xchg(mm, keys, pte, pgste, Pte::NONE)
}

/// `ptep_test_and_clear_young` (and `ptep_clear_flush_young`): exchange with `pte_mkold`, which
/// is hardware-invalid, so it passes through the PGSTE commit too. Returns whether it was young.
pub fn ptep_test_and_clear_young<K: StorageKeys>(
    mm: &S390Mm,
    keys: &mut K,
    pte: &mut u64,
    pgste: Option<&mut u64>,
) -> bool {
    let cur = Pte(*pte);
    ptep_xchg(mm, keys, pte, pgste, cur.mkold()).young()
}

/// `ptep_set_access_flags`: install `entry` if it differs (through `ptep_xchg_direct`).
/// Returns whether anything changed.
pub fn ptep_set_access_flags<K: StorageKeys>(
    mm: &S390Mm,
    keys: &mut K,
    pte: &mut u64,
    pgste: Option<&mut u64>,
    entry: Pte,
) -> bool {
    if *pte == entry.val() {
        return false;
    }
    ptep_xchg(mm, keys, pte, pgste, entry);
    true
}

/// `set_pte_at`: a present entry never carries `_PAGE_UNUSED` into the table; in a PGSTE mm
/// the store goes through `ptep_set_pte_at`, which clears `_PGSTE_GPS_ZERO`, sets the storage
/// key and keeps the usage state.
pub fn set_pte_at<K: StorageKeys>(mm: &S390Mm, keys: &mut K, pte: &mut u64, pgste: Option<&mut u64>, entry: Pte) {
    let mut e = entry;
    if e.present() {
        e = Pte(e.val() & !_PAGE_UNUSED);
    }
    match pgste {
        Some(pg) if mm.has_pgste => {
            // ptep_set_pte_at
            let v = *pg & !_PGSTE_GPS_ZERO;
            pgste_set_key(mm, keys, v, e);
            *pg = pgste_set_pte(mm, pte, v, e);
        }
        _ => *pte = e.val(),
    }
}

/// `pte_clear`: store `_PAGE_INVALID` (no PGSTE logic).
pub fn pte_clear(pte: &mut u64) {
    *pte = _PAGE_INVALID;
}

/// What `ptep_zap_unused` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZapUnused {
    /// Nothing (the PTE is not a swap PTE, or the page is in use, or `reset`).
    Kept,
    /// The swap PTE was cleared: the caller must do `ptep_zap_swap_entry` with this entry
    /// (`dec_mm_counter(MM_SWAPENTS)`, `free_swap_and_cache`).
    ZappedSwap { swp_type: u32, offset: u64 },
}

/// How `ptep_zap_unused(mm, addr, ptep, reset)` is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZapMode {
    /// `reset == 0`: the discard of the CBRL path (`__gmap_zap`).
    Discard,
    /// `reset != 0` (the CMMA reset, `s390_reset_cmma` → `__s390_reset_cmma`): the usage state
    /// is cleared, and NODAT with it where `clear_nodat` (`Profile::zap_unused_reset_clears_nodat`).
    Reset { clear_nodat: bool },
}

/// `ptep_zap_unused(mm, addr, ptep, reset)` (arch/s390/mm/pgtable.c). Without `reset`, a *swap*
/// PTE of a page whose usage is UNUSED or that is logically ZERO is cleared to none and its swap
/// entry freed: the guest said it does not need the content. Present PTEs are left alone here
/// (reclaim drops those through `pte_unused`). With `reset`, v4.13..v6.6 clear only the usage
/// bits ("if (reset) pgste_val(pgste) &= ~_PGSTE_GPS_USAGE_MASK;"); "KVM: s390/mm: Properly
/// reset no-dat" (v6.7, Cc stable) made it "&= ~(_PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT)".
pub fn ptep_zap_unused(pte: &mut u64, pgste: &mut u64, mode: ZapMode) -> ZapUnused {
    let p = Pte(*pte);
    let v = *pgste;
    let mut out = ZapUnused::Kept;
    match mode {
        ZapMode::Discard => {
            if p.swap() && (v & _PGSTE_GPS_USAGE_MASK == _PGSTE_GPS_USAGE_UNUSED || v & _PGSTE_GPS_ZERO != 0) {
                out = ZapUnused::ZappedSwap { swp_type: p.swp_type(), offset: p.swp_offset() };
                pte_clear(pte);
            }
        }
        ZapMode::Reset { clear_nodat } => {
            let mask = if clear_nodat { _PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT } else { _PGSTE_GPS_USAGE_MASK };
            *pgste = v & !mask;
        }
    }
    out
}

/// `set_pgste_bits(mm, hva, bits, value)`: `pgste = (pgste & ~bits) | (value & bits)`; used by
/// KVM_S390_SET_CMMA_BITS with `bits = _PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT`.
pub fn set_pgste_bits(pgste: &mut u64, bits: u64, value: u64) {
    *pgste = (*pgste & !bits) | (value & bits);
}

/// `test_and_clear_guest_dirty` (arch/s390/mm/pgtable.c 4.13..4.18; `ptep_test_and_clear_uc`
/// from v4.19, 6.12): harvest PGSTE_UC for the KVM dirty log. If it was set and the
/// PTE is present, the PTE is write-protected again (with ESOP: the protect bit) so that the
/// next guest store faults and sets UC anew.
pub fn test_and_clear_guest_dirty(mm: &S390Mm, pte: &mut u64, pgste: &mut u64) -> bool {
    let uc = mm.layout.uc();
    let dirty = *pgste & uc != 0;
    let mut v = *pgste & !uc;
    let p = Pte(*pte);
    if dirty && p.present() {
        v = pgste_pte_notify(mm, v);
        *pte = p.val() | _PAGE_PROTECT;
    }
    *pgste = v;
    dirty
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of a few frames.
    #[derive(Default)]
    struct Keys(std::collections::BTreeMap<u64, u8>);
    impl StorageKeys for Keys {
        fn get_key(&self, pfn: u64) -> u8 {
            *self.0.get(&pfn).unwrap_or(&0)
        }
        fn set_key(&mut self, pfn: u64, key: u8) {
            self.0.insert(pfn, key);
        }
    }

    const KVM: S390Mm = S390Mm { has_pgste: true, uses_skeys: false, layout: PgsteLayout::Old };
    const PLAIN: S390Mm = S390Mm { has_pgste: false, uses_skeys: false, layout: PgsteLayout::Old };

    fn present() -> Pte {
        Pte::mk(0x10, PAGE_RO).mkdirty().mkwrite()
    }

    #[test]
    fn unused_appears_on_the_old_value_of_an_invalidating_exchange_in_a_pgste_mm() {
        let mut k = Keys::default();
        let (mut pte, mut pg) = (present().val(), _PGSTE_GPS_USAGE_UNUSED);
        let old = ptep_clear_flush(&KVM, &mut k, &mut pte, Some(&mut pg));
        assert!(old.unused());
        assert!(old.present() && old.dirty());
        assert_eq!(pte, _PAGE_INVALID, "the table never stores _PAGE_UNUSED");
        assert_eq!(pg & _PGSTE_GPS_USAGE_MASK, _PGSTE_GPS_USAGE_UNUSED);
    }

    #[test]
    fn unused_needs_every_condition() {
        let mut k = Keys::default();
        for usage in [Usage::Stable, Usage::PotVolatile, Usage::Volatile] {
            let (mut pte, mut pg) = (present().val(), Pgste(0).with_usage(usage).val());
            assert!(!ptep_clear_flush(&KVM, &mut k, &mut pte, Some(&mut pg)).unused(), "{usage:?}");
        }
        // no PGSTE mm
        let (mut pte, mut pg) = (present().val(), _PGSTE_GPS_USAGE_UNUSED);
        assert!(!ptep_clear_flush(&PLAIN, &mut k, &mut pte, Some(&mut pg)).unused());
        // new pte valid (ptep_set_access_flags making it young again)
        let (mut pte, mut pg) = (present().mkold().val(), _PGSTE_GPS_USAGE_UNUSED);
        let new = present();
        assert!(!ptep_xchg(&KVM, &mut k, &mut pte, Some(&mut pg), new).unused());
        assert_eq!(pte, new.val());
    }

    #[test]
    fn mkold_is_invalid_so_test_and_clear_young_also_passes_the_commit() {
        let mut k = Keys::default();
        let (mut pte, mut pg) = (present().val(), _PGSTE_GPS_USAGE_UNUSED);
        assert!(ptep_test_and_clear_young(&KVM, &mut k, &mut pte, Some(&mut pg)));
        assert!(Pte(pte).hw_invalid() && !Pte(pte).young());
        assert!(!Pte(pte).unused());
        assert!(!ptep_test_and_clear_young(&KVM, &mut k, &mut pte, Some(&mut pg)));
    }

    #[test]
    fn set_pte_at_strips_unused_clears_zero_and_sets_uc() {
        let mut k = Keys::default();
        let mut pte = _PAGE_INVALID;
        let mut pg = _PGSTE_GPS_USAGE_UNUSED | _PGSTE_GPS_ZERO;
        set_pte_at(&KVM, &mut k, &mut pte, Some(&mut pg), Pte(present().val() | _PAGE_UNUSED));
        assert!(!Pte(pte).unused());
        assert_eq!(pg & _PGSTE_GPS_ZERO, 0);
        assert_eq!(pg & _PGSTE_GPS_USAGE_MASK, _PGSTE_GPS_USAGE_UNUSED, "usage kept");
        assert!(Pgste(pg).uc(PgsteLayout::Old));
        // a read-only pte does not set UC
        let mut pg2 = 0;
        set_pte_at(&KVM, &mut k, &mut pte, Some(&mut pg2), Pte::mk(1, PAGE_RO));
        assert!(!Pgste(pg2).uc(PgsteLayout::Old));
        // swap PTEs keep their bits (not present)
        let swp = Pte(Pte::mk_swap(0, 5).val() | _PAGE_UNUSED);
        set_pte_at(&KVM, &mut k, &mut pte, Some(&mut pg2), swp);
        assert_eq!(pte, swp.val());
    }

    #[test]
    fn zap_unused_clears_swap_ptes_of_unused_or_zero_pages_only() {
        let swp = Pte::mk_swap(0, 0x99).val();
        let (mut pte, mut pg) = (swp, _PGSTE_GPS_USAGE_UNUSED);
        assert_eq!(
            ptep_zap_unused(&mut pte, &mut pg, ZapMode::Discard),
            ZapUnused::ZappedSwap { swp_type: 0, offset: 0x99 }
        );
        assert_eq!(pte, _PAGE_INVALID);
        let (mut pte, mut pg) = (swp, _PGSTE_GPS_ZERO);
        assert!(matches!(ptep_zap_unused(&mut pte, &mut pg, ZapMode::Discard), ZapUnused::ZappedSwap { .. }));
        let (mut pte, mut pg) = (swp, _PGSTE_GPS_USAGE_STABLE);
        assert_eq!(ptep_zap_unused(&mut pte, &mut pg, ZapMode::Discard), ZapUnused::Kept);
        assert_eq!(pte, swp);
        // a present pte of an unused page is not zapped here
        let (mut pte, mut pg) = (present().val(), _PGSTE_GPS_USAGE_UNUSED);
        assert_eq!(ptep_zap_unused(&mut pte, &mut pg, ZapMode::Discard), ZapUnused::Kept);
    }

    /// `set_pgste_bits(mm, hva, bits, value)` (arch/s390/mm/pgtable.c, 4.13..6.12):
    /// `pgste_val(new) &= ~bits; pgste_val(new) |= value & bits;` — KVM_S390_SET_CMMA_BITS
    /// passes `_PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT`, so ZERO, GR/GC and UC are kept.
    #[test]
    fn set_pgste_bits_writes_only_the_masked_bits() {
        let mask = _PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT;
        let mut pg = _PGSTE_GPS_ZERO | _PGSTE_GPS_USAGE_UNUSED | PGSTE_GC_BIT;
        // a value with bits outside the mask: only the masked ones land
        set_pgste_bits(&mut pg, mask, _PGSTE_GPS_NODAT | PGSTE_GR_BIT);
        assert_eq!(pg, _PGSTE_GPS_ZERO | PGSTE_GC_BIT | _PGSTE_GPS_NODAT);
    }

    #[test]
    fn a_cmma_reset_keeps_nodat_before_v6_7() {
        // arch/s390/mm/pgtable.c ptep_zap_unused: v4.13/v4.17/v4.18 "if (reset)
        // pgste_val(pgste) &= ~_PGSTE_GPS_USAGE_MASK;"; v6.7+ ("KVM: s390/mm: Properly reset
        // no-dat") also clears _PGSTE_GPS_NODAT
        use crate::profile::{PROFILE_NAMES, Profile};
        for name in PROFILE_NAMES {
            let p = Profile::get(name, crate::arch::Arch::S390x).unwrap();
            let swp = Pte::mk_swap(0, 0x99).val();
            let (mut pte, mut pg) = (swp, _PGSTE_GPS_USAGE_UNUSED | _PGSTE_GPS_NODAT);
            let mode = ZapMode::Reset { clear_nodat: p.zap_unused_reset_clears_nodat };
            assert_eq!(ptep_zap_unused(&mut pte, &mut pg, mode), ZapUnused::Kept);
            assert_eq!(pte, swp, "{name}: a reset never zaps");
            let nodat_left = if name == "6.12" { 0 } else { _PGSTE_GPS_NODAT };
            assert_eq!(pg, nodat_left, "{name}");
        }
    }

    #[test]
    fn storage_keys_flow_to_gr_gc_when_the_guest_uses_them() {
        let mm = S390Mm { uses_skeys: true, ..KVM };
        let mut k = Keys::default();
        let p = present();
        k.set_key(p.pfn(), 0x30 | _PAGE_CHANGED | _PAGE_REFERENCED);
        let (mut pte, mut pg) = (p.val(), 0);
        ptep_clear_flush(&mm, &mut k, &mut pte, Some(&mut pg));
        assert!(Pgste(pg).gr() && Pgste(pg).gc());
        assert_eq!(pg >> 60, 3);
        // and back into the key when a valid pte is installed over an invalid one
        k.set_key(p.pfn(), 0);
        ptep_xchg(&mm, &mut k, &mut pte, Some(&mut pg), p);
        assert_eq!(k.get_key(p.pfn()), 0x30 | _PAGE_CHANGED | _PAGE_REFERENCED);
    }

    #[test]
    fn guest_dirty_harvest_write_protects() {
        let mut pte = present().val();
        let mut pg = PgsteLayout::Old.uc();
        assert!(test_and_clear_guest_dirty(&KVM, &mut pte, &mut pg));
        assert!(Pte(pte).hw_protect());
        assert!(!test_and_clear_guest_dirty(&KVM, &mut pte, &mut pg));
    }
}
