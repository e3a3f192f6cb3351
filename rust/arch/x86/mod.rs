//! The x86_64 architecture layer: PTE bits and the swap entry format of
//! arch/x86/include/asm/pgtable_types.h and pgtable_64.h, and the four-level geometry.
//!
//! The model uses it to be compared with the real kernel of the machine it runs on (the
//! cross-check): unlike s390, x86_64 has a uffd-wp PTE bit (WP and MINOR userfaults exist), a
//! hardware-set accessed and dirty bit, and no PGSTEs (`pte_unused` is always 0).
//!
//! Simplification: no shadow stacks (X86_FEATURE_SHSTK off), so `pte_wrprotect` keeps
//! `_PAGE_DIRTY` instead of moving it to `_PAGE_SAVED_DIRTY`; no PAT/PCD/PWT use; no 5-level
//! paging.

pub mod tlb;

use crate::arch::pgtable::{Geometry, GeometryRef};
use std::fmt;

pub const _PAGE_PRESENT: u64 = 1 << 0;
pub const _PAGE_RW: u64 = 1 << 1;
pub const _PAGE_USER: u64 = 1 << 2;
pub const _PAGE_PWT: u64 = 1 << 3;
pub const _PAGE_PCD: u64 = 1 << 4;
pub const _PAGE_ACCESSED: u64 = 1 << 5;
pub const _PAGE_DIRTY: u64 = 1 << 6;
pub const _PAGE_PSE: u64 = 1 << 7;
pub const _PAGE_GLOBAL: u64 = 1 << 8;
/// `_PAGE_BIT_SOFTW1`: `_PAGE_SPECIAL`.
pub const _PAGE_SPECIAL: u64 = 1 << 9;
/// `_PAGE_BIT_SOFTW2`: `_PAGE_UFFD_WP` ("userfaultfd wrprotected").
pub const _PAGE_UFFD_WP: u64 = 1 << 10;
/// `_PAGE_BIT_SOFTW3`: `_PAGE_SOFT_DIRTY`.
pub const _PAGE_SOFT_DIRTY: u64 = 1 << 11;
pub const _PAGE_NX: u64 = 1 << 63;
/// `_PAGE_PROTNONE` aliases `_PAGE_GLOBAL` for non-present PTEs.
pub const _PAGE_PROTNONE: u64 = _PAGE_GLOBAL;
/// `PTE_PFN_MASK` (52-bit physical addresses).
pub const PTE_PFN_MASK: u64 = ((1u64 << 52) - 1) & !0xfff;

/// `_PAGE_CHG_MASK`: what `pte_modify` keeps (no DEVMAP/ENC in the model).
pub const _PAGE_CHG_MASK: u64 = PTE_PFN_MASK
    | _PAGE_PCD
    | _PAGE_PWT
    | _PAGE_SPECIAL
    | _PAGE_ACCESSED
    | _PAGE_DIRTY
    | _PAGE_SOFT_DIRTY
    | _PAGE_UFFD_WP;

/// Swap PTE bits: soft-dirty, uffd-wp and exclusive reuse W, U and PWT.
pub const _PAGE_SWP_SOFT_DIRTY: u64 = _PAGE_RW;
pub const _PAGE_SWP_UFFD_WP: u64 = _PAGE_USER;
pub const _PAGE_SWP_EXCLUSIVE: u64 = _PAGE_PWT;
pub const SWP_TYPE_BITS: u32 = 5;
const SWP_TYPE_MASK: u64 = (1 << SWP_TYPE_BITS) - 1;
/// `SWP_TYPE_FIRST_BIT` (`_PAGE_BIT_PROTNONE + 1`; v4.8..v4.18, where the type sits below the
/// offset; from v4.19 the inverted offset starts here).
pub const SWP_TYPE_FIRST_BIT: u32 = 9;
/// `SWP_OFFSET_SHIFT` (v4.19+; `SWP_OFFSET_FIRST_BIT` before, the same value):
/// `SWP_TYPE_FIRST_BIT + SWP_TYPE_BITS`.
pub const SWP_OFFSET_SHIFT: u32 = SWP_TYPE_FIRST_BIT + SWP_TYPE_BITS;

const A: u64 = _PAGE_ACCESSED;
/// Protections (`PAGE_NONE`, `PAGE_READONLY`, `PAGE_COPY`, `PAGE_SHARED`, ...): they carry the
/// accessed bit, so a new PTE is young.
pub const PAGE_NONE: u64 = A | _PAGE_GLOBAL;
pub const PAGE_READONLY: u64 = _PAGE_PRESENT | _PAGE_USER | A | _PAGE_NX;
pub const PAGE_READONLY_EXEC: u64 = _PAGE_PRESENT | _PAGE_USER | A;
pub const PAGE_COPY: u64 = PAGE_READONLY;
pub const PAGE_COPY_EXEC: u64 = PAGE_READONLY_EXEC;
pub const PAGE_SHARED: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | A | _PAGE_NX;
pub const PAGE_SHARED_EXEC: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | A;

/// Four levels: PGD 39, PUD 30, PMD 21; 512-entry tables.
pub static GEOMETRY: GeometryRef = GeometryRef(Geometry::new(&[39, 30, 21], 512, 512, 0, 0));

/// An x86_64 PTE value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    pub fn none(self) -> bool {
        self.0 == 0
    }
    /// `pte_present` (arch/x86/include/asm/pgtable.h, 4.13..6.12): `pte_flags(a) &
    /// (_PAGE_PRESENT | _PAGE_PROTNONE)`, present or PROT_NONE.
    pub fn present(self) -> bool {
        self.0 & (_PAGE_PRESENT | _PAGE_PROTNONE) != 0
    }
    pub fn young(self) -> bool {
        self.0 & _PAGE_ACCESSED != 0
    }
    pub fn dirty(self) -> bool {
        self.0 & _PAGE_DIRTY != 0
    }
    pub fn write(self) -> bool {
        self.0 & _PAGE_RW != 0
    }
    pub fn special(self) -> bool {
        self.0 & _PAGE_SPECIAL != 0
    }
    pub fn soft_dirty(self) -> bool {
        self.0 & _PAGE_SOFT_DIRTY != 0
    }
    pub fn uffd_wp(self) -> bool {
        self.0 & _PAGE_UFFD_WP != 0
    }
    pub fn pfn(self) -> u64 {
        (self.0 & PTE_PFN_MASK) >> 12
    }
    pub fn mk(pfn: u64, prot: u64) -> Pte {
        Pte(((pfn << 12) & PTE_PFN_MASK) | prot)
    }
    pub fn mkold(self) -> Pte {
        Pte(self.0 & !_PAGE_ACCESSED)
    }
    pub fn mkyoung(self) -> Pte {
        Pte(self.0 | _PAGE_ACCESSED)
    }
    pub fn mkdirty(self) -> Pte {
        Pte(self.0 | _PAGE_DIRTY | _PAGE_SOFT_DIRTY)
    }
    pub fn mkclean(self) -> Pte {
        Pte(self.0 & !_PAGE_DIRTY)
    }
    pub fn wrprotect(self) -> Pte {
        Pte(self.0 & !_PAGE_RW)
    }
    pub fn mkwrite(self) -> Pte {
        Pte(self.0 | _PAGE_RW)
    }
    pub fn mkspecial(self) -> Pte {
        Pte(self.0 | _PAGE_SPECIAL)
    }
    /// `pte_modify`: keep `_PAGE_CHG_MASK` (pfn, PCD/PWT, special, accessed, dirty, soft-dirty,
    /// uffd-wp), take the rest from `prot`. Simplification: no L1TF pfn inversion for PROT_NONE
    /// PTEs (`flip_protnone_guard`): the model never inverts, so `pte_pfn` needs no undo.
    pub fn modify(self, prot: u64) -> Pte {
        Pte((self.0 & _PAGE_CHG_MASK) | (prot & !_PAGE_CHG_MASK))
    }
    /// `pte_mkuffd_wp` (arch/x86/include/asm/pgtable.h, v5.7+; the `pte_wrprotect` is v6.2+,
    /// so 6.12): the uffd-wp bit, and write-protected.
    pub fn mkuffd_wp(self) -> Pte {
        Pte(self.0 | _PAGE_UFFD_WP).wrprotect()
    }
    pub fn clear_uffd_wp(self) -> Pte {
        Pte(self.0 & !_PAGE_UFFD_WP)
    }
    /// `__swp_entry(type, offset)` as a PTE (arch/x86/include/asm/pgtable_64.h). With
    /// `inverted` (v4.19+, 6.12: "x86/speculation/l1tf: Protect swap entries against L1TF"):
    /// the offset inverted from bit 9 (shifted up past the type, then down), the type in the
    /// top five bits. Without (v4.8..v4.18, so 4.13, 4.17 and 4.18): `((type) <<
    /// (SWP_TYPE_FIRST_BIT)) | ((offset) << SWP_OFFSET_FIRST_BIT)`, type in bits 9..13, the
    /// offset from bit 14 as it is.
    pub fn mk_swap(swp_type: u32, offset: u64, inverted: bool) -> Pte {
        if inverted {
            Pte(((!offset) << SWP_OFFSET_SHIFT >> SWP_TYPE_BITS) | ((swp_type as u64) << (64 - SWP_TYPE_BITS)))
        } else {
            Pte(((swp_type as u64 & SWP_TYPE_MASK) << SWP_TYPE_FIRST_BIT) | (offset << SWP_OFFSET_SHIFT))
        }
    }
    /// `__swp_type`: v4.19+ `(x).val >> (64 - SWP_TYPE_BITS)`; before, `((x).val >>
    /// (SWP_TYPE_FIRST_BIT)) & ((1U << SWP_TYPE_BITS) - 1)`.
    pub fn swp_type(self, inverted: bool) -> u32 {
        if inverted {
            (self.0 >> (64 - SWP_TYPE_BITS)) as u32
        } else {
            ((self.0 >> SWP_TYPE_FIRST_BIT) & SWP_TYPE_MASK) as u32
        }
    }
    /// `__swp_offset`: v4.19+ `~(x).val << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT`; before,
    /// `(x).val >> SWP_OFFSET_FIRST_BIT`.
    pub fn swp_offset(self, inverted: bool) -> u64 {
        if inverted { (!self.0) << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT } else { self.0 >> SWP_OFFSET_SHIFT }
    }
    /// A human-readable decoding; a swap PTE is read in the given layout (`inverted`: v4.19+).
    pub fn decode(self, inverted: bool) -> String {
        if self.none() {
            return "none".into();
        }
        if !self.present() {
            let mut s = format!("swap type={} offset={:#x}", self.swp_type(inverted), self.swp_offset(inverted));
            for (b, n) in [
                (_PAGE_SWP_EXCLUSIVE, "EXCLUSIVE"),
                (_PAGE_SWP_SOFT_DIRTY, "SOFT_DIRTY"),
                (_PAGE_SWP_UFFD_WP, "UFFD_WP"),
            ] {
                if self.0 & b != 0 {
                    s.push(' ');
                    s.push_str(n);
                }
            }
            return s;
        }
        let names = [
            (_PAGE_PRESENT, "PRESENT"),
            (_PAGE_RW, "RW"),
            (_PAGE_USER, "USER"),
            (_PAGE_ACCESSED, "ACCESSED"),
            (_PAGE_DIRTY, "DIRTY"),
            (_PAGE_GLOBAL, "GLOBAL"),
            (_PAGE_SPECIAL, "SPECIAL"),
            (_PAGE_UFFD_WP, "UFFD_WP"),
            (_PAGE_SOFT_DIRTY, "SOFT_DIRTY"),
            (_PAGE_NX, "NX"),
        ];
        let mut parts = vec![format!("pfn={:#x}", self.pfn())];
        parts.extend(names.iter().filter(|(b, _)| self.0 & b != 0).map(|(_, n)| n.to_string()));
        parts.join("|")
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({:#x} {})", self.0, self.decode(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_are_the_kernels() {
        assert_eq!(_PAGE_ACCESSED, 0x20);
        assert_eq!(_PAGE_DIRTY, 0x40);
        assert_eq!(_PAGE_SPECIAL, 0x200);
        assert_eq!(_PAGE_UFFD_WP, 0x400);
        assert_eq!(_PAGE_SOFT_DIRTY, 0x800);
        assert_eq!(SWP_OFFSET_SHIFT, 14);
        assert_eq!(GEOMETRY.0.reach(0), 1 << 48);
    }

    /// arch/x86/include/asm/pgtable_64.h `__swp_entry`: 4.13/4.17/4.18 (v4.8..v4.18) put the
    /// type in bits 9..13 and the offset, as it is, from bit 14; v4.19's L1TF change ("Protect
    /// swap entries against L1TF") stores the offset inverted from bit 9 and the type in bits
    /// 59..63, as 6.12 does.
    #[test]
    fn swap_pte_of_4x_has_the_type_below_a_plain_offset_and_612_inverts_the_offset() {
        assert_eq!(Pte::mk_swap(3, 5, false).0, (3 << 9) | (5 << 14));
        assert_eq!(Pte::mk_swap(3, 5, true).0, (3u64 << 59) | ((!5u64) << 14 >> 5));
        assert_eq!(Pte(0x14600).swp_type(false), 3);
        assert_eq!(Pte(0x14600).swp_offset(false), 5);
    }

    proptest! {
        #[test]
        fn swap_entries_round_trip_and_are_not_present(t in 0u32..32, off in 0u64..(1u64 << 45), inverted: bool) {
            let p = Pte::mk_swap(t, off, inverted);
            prop_assert!(!p.present() && !p.none());
            prop_assert_eq!(p.swp_type(inverted), t);
            prop_assert_eq!(p.swp_offset(inverted), off);
            let marked = Pte(p.0 | _PAGE_SWP_UFFD_WP | _PAGE_SWP_EXCLUSIVE | _PAGE_SWP_SOFT_DIRTY);
            prop_assert_eq!(marked.swp_offset(inverted), off);
            prop_assert_eq!(marked.swp_type(inverted), t);
        }

        #[test]
        fn pte_laws(pfn in 0u64..(1 << 40)) {
            let p = Pte::mk(pfn, PAGE_SHARED);
            prop_assert!(p.present() && p.young() && p.write());
            prop_assert!(!p.mkold().young() && p.mkdirty().dirty() && !p.mkclean().dirty());
            prop_assert!(p.mkuffd_wp().uffd_wp() && !p.mkuffd_wp().write());
            prop_assert!(!p.mkuffd_wp().clear_uffd_wp().uffd_wp());
            prop_assert_eq!(p.pfn(), pfn);
        }
    }
}
