//! s390 page-table entries, as in arch/s390/include/asm/pgtable.h of 4.13, 4.17, 4.18 and 6.12
//! (the 4.x helpers write `pte_val(pte) |= …`, 6.12's `set_pte_bit` / `clear_pte_bit`: the same
//! bits; audited in docs/fidelity.md, phase C).
//!
//! The hardware knows only the invalid (I, 0x400) and protect (P, 0x200) bits of a PTE; the
//! low byte holds the kernel's software bits. s390 has no hardware-set referenced or changed bit
//! in the PTE, so the kernel *emulates* young and dirty: an old PTE is made hardware-invalid
//! and a clean (or read-only) one hardware-protected, and the fault that follows the next access
//! sets the software bit again (`pte_mkyoung` / `pte_mkdirty` clear I / P).
//!
//! Bit layout (T-cur comment table, bits `.IR.uswrdy.p`):
//! empty `.10.00000000`, swap `.11..ttttt.0`, every old state has I=1, every clean or read-only
//! state has P=1.
//!
//! Profiles: `_PAGE_NOEXEC` exists from about v4.11 (all modelled profiles have it);
//! `_PAGE_SWP_EXCLUSIVE` from v6.0 ("6.12" only); `_PAGE_SOFT_DIRTY` needs
//! CONFIG_MEM_SOFT_DIRTY, which every modelled profile is configured with.

use std::fmt;

/// `PAGE_SHIFT`: 4 KiB pages.
pub const PAGE_SHIFT: u32 = 12;
/// `PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// `PAGE_MASK`.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

/// HW no-execute (v4.11+).
pub const _PAGE_NOEXEC: u64 = 0x100;
/// HW read-only.
pub const _PAGE_PROTECT: u64 = 0x200;
/// HW invalid.
pub const _PAGE_INVALID: u64 = 0x400;
/// Marks a large PTE.
pub const _PAGE_LARGE: u64 = 0x800;
/// SW present.
pub const _PAGE_PRESENT: u64 = 0x001;
/// SW soft-dirty (CONFIG_MEM_SOFT_DIRTY).
pub const _PAGE_SOFT_DIRTY: u64 = 0x002;
/// SW young.
pub const _PAGE_YOUNG: u64 = 0x004;
/// SW dirty.
pub const _PAGE_DIRTY: u64 = 0x008;
/// SW read.
pub const _PAGE_READ: u64 = 0x010;
/// SW write.
pub const _PAGE_WRITE: u64 = 0x020;
/// SW special (no struct page behind it: the zero page).
pub const _PAGE_SPECIAL: u64 = 0x040;
/// "SW bit for pgste usage state": set only on the old value returned by `ptep_xchg_commit`.
pub const _PAGE_UNUSED: u64 = 0x080;
/// All eight software bits (T-cur's `_PAGE_SW_BITS`).
pub const _PAGE_SW_BITS: u64 = 0xff;
/// Exclusive marker of a swap PTE (v6.0+), aliasing `_PAGE_LARGE`.
pub const _PAGE_SWP_EXCLUSIVE: u64 = _PAGE_LARGE;
/// `_PAGE_CHG_MASK`: what `pte_modify` keeps.
pub const _PAGE_CHG_MASK: u64 = PAGE_MASK | _PAGE_SPECIAL | _PAGE_DIRTY | _PAGE_YOUNG | _PAGE_SOFT_DIRTY;

/// Protections (`PAGE_NONE`, `PAGE_RO`, ... in pgtable.h). Every one carries I|P: a PTE built
/// from them is old and clean until `pte_mkyoung` / `pte_mkdirty`.
pub const PAGE_NONE: u64 = _PAGE_PRESENT | _PAGE_INVALID | _PAGE_PROTECT;
pub const PAGE_RO: u64 = _PAGE_PRESENT | _PAGE_READ | _PAGE_NOEXEC | _PAGE_INVALID | _PAGE_PROTECT;
pub const PAGE_RX: u64 = _PAGE_PRESENT | _PAGE_READ | _PAGE_INVALID | _PAGE_PROTECT;
pub const PAGE_RW: u64 = _PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_NOEXEC | _PAGE_INVALID | _PAGE_PROTECT;
pub const PAGE_RWX: u64 = _PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_INVALID | _PAGE_PROTECT;

/// `__SWP_OFFSET_MASK`: 52 bits of swap offset.
pub const __SWP_OFFSET_MASK: u64 = (1 << 52) - 1;
/// `__SWP_OFFSET_SHIFT`.
pub const __SWP_OFFSET_SHIFT: u32 = 12;
/// `__SWP_TYPE_MASK`: 5 bits of swap type.
pub const __SWP_TYPE_MASK: u64 = (1 << 5) - 1;
/// `__SWP_TYPE_SHIFT`.
pub const __SWP_TYPE_SHIFT: u32 = 2;

/// An s390 page-table entry value (`pte_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// The empty entry: `pte_clear` stores `_PAGE_INVALID`.
    pub const NONE: Pte = Pte(_PAGE_INVALID);

    pub fn val(self) -> u64 {
        self.0
    }

    /// `pte_none`: exactly `_PAGE_INVALID`.
    pub fn none(self) -> bool {
        self.0 == _PAGE_INVALID
    }

    /// `pte_present`.
    pub fn present(self) -> bool {
        self.0 & _PAGE_PRESENT != 0
    }

    /// `pte_swap`: `(pte & (_PAGE_PROTECT|_PAGE_PRESENT)) == _PAGE_PROTECT`.
    pub fn swap(self) -> bool {
        self.0 & (_PAGE_PROTECT | _PAGE_PRESENT) == _PAGE_PROTECT
    }

    /// `pte_young`.
    pub fn young(self) -> bool {
        self.0 & _PAGE_YOUNG != 0
    }

    /// `pte_dirty`.
    pub fn dirty(self) -> bool {
        self.0 & _PAGE_DIRTY != 0
    }

    /// `pte_write`.
    pub fn write(self) -> bool {
        self.0 & _PAGE_WRITE != 0
    }

    /// `pte_read` (s390 has a software read bit).
    pub fn read(self) -> bool {
        self.0 & _PAGE_READ != 0
    }

    /// `pte_special`.
    pub fn special(self) -> bool {
        self.0 & _PAGE_SPECIAL != 0
    }

    /// `pte_soft_dirty`.
    pub fn soft_dirty(self) -> bool {
        self.0 & _PAGE_SOFT_DIRTY != 0
    }

    /// `pte_unused` (`__HAVE_ARCH_PTE_UNUSED`).
    pub fn unused(self) -> bool {
        self.0 & _PAGE_UNUSED != 0
    }

    /// `pte_protnone` (NUMA hinting, "is the PTE a PAGE_NONE entry?"): present and not
    /// readable, as arch/s390/include/asm/pgtable.h tests it (`_PAGE_READ` alone).
    pub fn protnone(self) -> bool {
        self.present() && self.0 & _PAGE_READ == 0
    }

    /// The hardware invalid bit.
    pub fn hw_invalid(self) -> bool {
        self.0 & _PAGE_INVALID != 0
    }

    /// The hardware protect bit.
    pub fn hw_protect(self) -> bool {
        self.0 & _PAGE_PROTECT != 0
    }

    /// `pte_pfn`.
    pub fn pfn(self) -> u64 {
        (self.0 & PAGE_MASK) >> PAGE_SHIFT
    }

    /// `pfn_pte` / `mk_pte_phys` (arch/s390/include/asm/pgtable.h, 4.13..6.12): the frame address
    /// ORed with the protection, then `pte_mkyoung` (s390's mk_pte_phys returns a young PTE).
    /// Not `mk_pte(page, prot)`, which also dirties a writable PTE of a PG_dirty page
    /// (`if (pte_write(__pte) && PageDirty(page)) __pte = pte_mkdirty(__pte);`): the callers have
    /// no page here (a known deviation, docs/fidelity.md).
    pub fn mk(pfn: u64, prot: u64) -> Pte {
        Pte((pfn << PAGE_SHIFT) | prot).mkyoung()
    }

    /// `pte_mkold`: clear YOUNG, set INVALID (the next access faults to make it young).
    pub fn mkold(self) -> Pte {
        Pte((self.0 & !_PAGE_YOUNG) | _PAGE_INVALID)
    }

    /// `pte_mkyoung`: set YOUNG; if readable, clear INVALID.
    pub fn mkyoung(self) -> Pte {
        let mut v = self.0 | _PAGE_YOUNG;
        if v & _PAGE_READ != 0 {
            v &= !_PAGE_INVALID;
        }
        Pte(v)
    }

    /// `pte_wrprotect`: clear WRITE, set PROTECT.
    pub fn wrprotect(self) -> Pte {
        Pte((self.0 & !_PAGE_WRITE) | _PAGE_PROTECT)
    }

    /// `pte_mkwrite`: set WRITE; if dirty, clear PROTECT.
    pub fn mkwrite(self) -> Pte {
        let mut v = self.0 | _PAGE_WRITE;
        if v & _PAGE_DIRTY != 0 {
            v &= !_PAGE_PROTECT;
        }
        Pte(v)
    }

    /// `pte_mkclean`: clear DIRTY, set PROTECT.
    pub fn mkclean(self) -> Pte {
        Pte((self.0 & !_PAGE_DIRTY) | _PAGE_PROTECT)
    }

    /// `pte_mkdirty`: set DIRTY and SOFT_DIRTY; if writable, clear PROTECT.
    pub fn mkdirty(self) -> Pte {
        let mut v = self.0 | _PAGE_DIRTY | _PAGE_SOFT_DIRTY;
        if v & _PAGE_WRITE != 0 {
            v &= !_PAGE_PROTECT;
        }
        Pte(v)
    }

    /// `pte_mkspecial`.
    pub fn mkspecial(self) -> Pte {
        Pte(self.0 | _PAGE_SPECIAL)
    }

    /// `pte_clear_soft_dirty`.
    pub fn clear_soft_dirty(self) -> Pte {
        Pte(self.0 & !_PAGE_SOFT_DIRTY)
    }

    /// `pte_modify`: keep `_PAGE_CHG_MASK`, OR in the new protection (which carries I|P), then
    /// clear INVALID if young and readable, and PROTECT if dirty and writable.
    pub fn modify(self, prot: u64) -> Pte {
        let mut v = (self.0 & _PAGE_CHG_MASK) | prot;
        if v & _PAGE_YOUNG != 0 && v & _PAGE_READ != 0 {
            v &= !_PAGE_INVALID;
        }
        if v & _PAGE_DIRTY != 0 && v & _PAGE_WRITE != 0 {
            v &= !_PAGE_PROTECT;
        }
        Pte(v)
    }

    /// `mk_swap_pte(type, offset)`:
    /// `_PAGE_INVALID | _PAGE_PROTECT | (offset & mask) << 12 | (type & 0x1f) << 2`.
    pub fn mk_swap(swp_type: u32, offset: u64) -> Pte {
        Pte(_PAGE_INVALID
            | _PAGE_PROTECT
            | ((offset & __SWP_OFFSET_MASK) << __SWP_OFFSET_SHIFT)
            | ((swp_type as u64 & __SWP_TYPE_MASK) << __SWP_TYPE_SHIFT))
    }

    /// `__swp_type`.
    pub fn swp_type(self) -> u32 {
        ((self.0 >> __SWP_TYPE_SHIFT) & __SWP_TYPE_MASK) as u32
    }

    /// `__swp_offset`.
    pub fn swp_offset(self) -> u64 {
        (self.0 >> __SWP_OFFSET_SHIFT) & __SWP_OFFSET_MASK
    }

    /// `pte_swp_exclusive` (v6.0+).
    pub fn swp_exclusive(self) -> bool {
        self.0 & _PAGE_SWP_EXCLUSIVE != 0
    }

    /// `pte_swp_mkexclusive` (v6.0+).
    pub fn swp_mkexclusive(self) -> Pte {
        Pte(self.0 | _PAGE_SWP_EXCLUSIVE)
    }

    /// `pte_swp_soft_dirty`.
    pub fn swp_soft_dirty(self) -> bool {
        self.0 & _PAGE_SOFT_DIRTY != 0
    }

    /// `pte_swp_mksoft_dirty`.
    pub fn swp_mksoft_dirty(self) -> Pte {
        Pte(self.0 | _PAGE_SOFT_DIRTY)
    }

    /// The names of the bits that are set, for `repr` and traces.
    pub fn decode(self) -> String {
        if self.none() {
            return "none".to_string();
        }
        if self.swap() {
            let mut s = format!("swap type={} offset={:#x}", self.swp_type(), self.swp_offset());
            if self.swp_exclusive() {
                s.push_str(" EXCLUSIVE");
            }
            if self.swp_soft_dirty() {
                s.push_str(" SOFT_DIRTY");
            }
            return s;
        }
        let names = [
            (_PAGE_PRESENT, "PRESENT"),
            (_PAGE_INVALID, "INVALID"),
            (_PAGE_PROTECT, "PROTECT"),
            (_PAGE_NOEXEC, "NOEXEC"),
            (_PAGE_LARGE, "LARGE"),
            (_PAGE_READ, "READ"),
            (_PAGE_WRITE, "WRITE"),
            (_PAGE_YOUNG, "YOUNG"),
            (_PAGE_DIRTY, "DIRTY"),
            (_PAGE_SOFT_DIRTY, "SOFT_DIRTY"),
            (_PAGE_SPECIAL, "SPECIAL"),
            (_PAGE_UNUSED, "UNUSED"),
        ];
        let mut parts: Vec<String> = Vec::new();
        if self.present() {
            parts.push(format!("pfn={:#x}", self.pfn()));
        }
        for (bit, name) in names {
            if self.0 & bit != 0 {
                parts.push(name.to_string());
            }
        }
        parts.join("|")
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({:#x} {})", self.0, self.decode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constants_are_the_kernels() {
        assert_eq!(_PAGE_NOEXEC, 0x100);
        assert_eq!(_PAGE_PROTECT, 0x200);
        assert_eq!(_PAGE_INVALID, 0x400);
        assert_eq!(_PAGE_LARGE, 0x800);
        assert_eq!(_PAGE_PRESENT, 0x001);
        assert_eq!(_PAGE_SOFT_DIRTY, 0x002);
        assert_eq!(_PAGE_YOUNG, 0x004);
        assert_eq!(_PAGE_DIRTY, 0x008);
        assert_eq!(_PAGE_READ, 0x010);
        assert_eq!(_PAGE_WRITE, 0x020);
        assert_eq!(_PAGE_SPECIAL, 0x040);
        assert_eq!(_PAGE_UNUSED, 0x080);
        assert_eq!(_PAGE_SWP_EXCLUSIVE, 0x800);
        assert_eq!(__SWP_OFFSET_MASK, (1u64 << 52) - 1);
        assert_eq!(__SWP_TYPE_MASK, 0x1f);
    }

    #[test]
    fn none_is_exactly_invalid() {
        assert!(Pte(0x400).none());
        assert!(!Pte(0x401).none());
        assert!(!Pte(0x600).none());
        assert!(Pte::NONE.hw_invalid());
        assert!(!Pte::NONE.present());
        assert!(!Pte::NONE.swap());
    }

    #[test]
    fn swap_pte_layout() {
        let p = Pte::mk_swap(3, 0x1234);
        assert_eq!(p.0, 0x600 | (0x1234 << 12) | (3 << 2));
        assert!(p.swap());
        assert!(!p.present());
        assert!(!p.none());
        assert_eq!(p.swp_type(), 3);
        assert_eq!(p.swp_offset(), 0x1234);
    }

    #[test]
    fn fresh_anon_pte_is_young_dirty_writable_and_hw_valid() {
        // do_anonymous_page: mk_pte(page, PAGE_RO) then pte_mkwrite(pte_mkdirty(..)).
        let p = Pte::mk(5, PAGE_RO).mkdirty().mkwrite();
        assert!(p.present() && p.young() && p.dirty() && p.write());
        assert!(!p.hw_invalid() && !p.hw_protect());
        assert_eq!(p.pfn(), 5);
    }

    #[test]
    fn mkold_makes_invalid_and_mkyoung_revalidates_readable() {
        let p = Pte::mk(1, PAGE_RW);
        assert!(!p.hw_invalid());
        let old = p.mkold();
        assert!(old.hw_invalid() && !old.young() && old.present());
        assert!(!old.mkyoung().hw_invalid());
        // a PROT_NONE pte stays invalid when made young: it has no READ bit.
        assert!(Pte::mk(1, PAGE_NONE).hw_invalid());
    }

    #[test]
    fn protnone_is_present_without_read_as_the_kernel_tests_it() {
        assert!(Pte::mk(1, PAGE_NONE).protnone());
        assert!(!Pte::mk(1, PAGE_RO).protnone() && !Pte::mk(1, PAGE_RW).protnone());
        // pte_protnone looks at _PAGE_READ only: a hand-made writable, unreadable PTE is one
        assert!(Pte(_PAGE_PRESENT | _PAGE_WRITE).protnone());
        assert!(!Pte(_PAGE_INVALID).protnone()); // pte_none
    }

    /// The exact hardware-bit effects of the helpers in arch/s390/include/asm/pgtable.h, the same
    /// in 4.13..4.18 (`pte_val(pte) &= …` form) and 6.12 (`set_pte_bit`/`clear_pte_bit` form):
    /// `pte_wrprotect` and `pte_mkclean` set PROTECT, `pte_mkwrite` clears it only for a dirty
    /// PTE, `pte_mkdirty` sets soft-dirty too and clears PROTECT only for a writable one, and
    /// `pte_modify` keeps `_PAGE_CHG_MASK`, ORs the new protection (which carries I|P) and then
    /// clears INVALID for a young readable PTE and PROTECT for a dirty writable one.
    #[test]
    fn the_mk_helpers_and_pte_modify_set_the_hardware_bits_as_pgtable_h_does() {
        let base = Pte::mk(7, PAGE_RO); // young, readable, clean: valid and protected
        assert!(!base.hw_invalid() && base.hw_protect());
        // pte_mkwrite on a clean PTE: writable in software, still hardware-protected
        let w = base.mkwrite();
        assert!(w.write() && w.hw_protect());
        // pte_mkdirty on a writable PTE: dirty, soft-dirty, protection gone
        let wd = w.mkdirty();
        assert!(wd.dirty() && wd.soft_dirty() && !wd.hw_protect());
        // pte_mkdirty on a read-only PTE keeps PROTECT
        assert!(base.mkdirty().hw_protect() && base.mkdirty().dirty());
        // pte_wrprotect / pte_mkclean: PROTECT back, the other bit untouched
        assert_eq!(wd.wrprotect().val(), (wd.val() & !_PAGE_WRITE) | _PAGE_PROTECT);
        assert_eq!(wd.mkclean().val(), (wd.val() & !_PAGE_DIRTY) | _PAGE_PROTECT);
        // pte_modify to PAGE_RW: pfn, young, dirty, soft-dirty kept; dirty+write clears PROTECT
        let m = base.mkdirty().modify(PAGE_RW);
        assert_eq!(m.val() & !_PAGE_CHG_MASK, PAGE_RW & !(_PAGE_INVALID | _PAGE_PROTECT));
        assert!(m.young() && m.dirty() && m.write() && !m.hw_invalid() && !m.hw_protect());
        // … an old, clean PTE stays invalid and protected under any protection
        let o = Pte::mk(7, PAGE_RW).mkold().modify(PAGE_RW);
        assert!(o.hw_invalid() && o.hw_protect());
        // … and PAGE_NONE has no READ: a young PTE stays invalid (PROT_NONE)
        assert!(base.modify(PAGE_NONE).hw_invalid() && base.modify(PAGE_NONE).protnone());
        // _PAGE_SPECIAL survives pte_modify (it is in _PAGE_CHG_MASK); WRITE does not
        assert!(base.mkspecial().modify(PAGE_RO).special());
        assert!(!wd.modify(PAGE_RO).write());
    }

    proptest! {
        // mm/debug_vm_pgtable.c pte_basic_tests laws, on any present pte value.
        #[test]
        fn debug_vm_pgtable_laws(pfn in 0u64..(1 << 40), prot in prop::sample::select(vec![PAGE_NONE, PAGE_RO, PAGE_RX, PAGE_RW, PAGE_RWX])) {
            let pte = Pte::mk(pfn, prot);
            prop_assert!(pte.mkyoung().young());
            prop_assert!(pte.mkdirty().dirty());
            prop_assert!(pte.mkwrite().write());
            prop_assert!(!pte.mkold().young());
            prop_assert!(!pte.mkclean().dirty());
            prop_assert!(!pte.wrprotect().write());
            prop_assert_eq!(pte.mkold().mkyoung().young(), pte.mkyoung().young());
            prop_assert!(pte.mkclean().mkdirty().dirty());
            prop_assert!(pte.wrprotect().mkwrite().write());
            prop_assert_eq!(pte.mkold().pfn(), pfn);
            prop_assert_eq!(pte.mkdirty().mkwrite().pfn(), pfn);
            // what the bits do to the hardware: old => invalid; clean or read-only => protected
            prop_assert!(pte.mkold().hw_invalid());
            prop_assert!(pte.mkclean().hw_protect());
            prop_assert!(pte.wrprotect().hw_protect());
            if prot & _PAGE_READ != 0 {
                prop_assert!(!pte.mkyoung().hw_invalid());
            }
            prop_assert!(!pte.mkdirty().mkwrite().hw_protect());
            prop_assert!(!pte.mkwrite().mkdirty().hw_protect());
            // pte_modify keeps pfn, young and dirty
            let m = pte.mkdirty().modify(PAGE_RO);
            prop_assert_eq!(m.pfn(), pfn);
            prop_assert!(m.dirty() && m.young() && !m.write());
        }

        #[test]
        fn swap_entry_round_trip(t in 0u32..32, off in 0u64..(1u64 << 52)) {
            let p = Pte::mk_swap(t, off);
            prop_assert!(p.swap() && !p.present() && !p.none());
            prop_assert_eq!(p.swp_type(), t);
            prop_assert_eq!(p.swp_offset(), off);
            let x = p.swp_mkexclusive().swp_mksoft_dirty();
            prop_assert!(x.swap());
            prop_assert_eq!(x.swp_type(), t);
            prop_assert_eq!(x.swp_offset(), off);
            prop_assert!(x.swp_exclusive() && x.swp_soft_dirty());
        }
    }
}
