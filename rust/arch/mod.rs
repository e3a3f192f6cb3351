//! Architectures. `s390x` is the modelled one; every PTE value in the model is in the format of
//! the profile's arch.

pub mod pgtable;
pub mod s390;

use crate::error::{Error, Result};

/// The architecture of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    S390x,
}

impl Arch {
    pub const ALL: [Arch; 1] = [Arch::S390x];

    pub fn name(self) -> &'static str {
        match self {
            Arch::S390x => "s390x",
        }
    }

    pub fn parse(s: &str) -> Result<Arch> {
        Arch::ALL.iter().copied().find(|a| a.name() == s).ok_or_else(|| {
            let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
            Error::invalid(format!("unknown arch {s:?}; known arches: {}", known.join(", ")))
        })
    }
}

use crate::arch::pgtable::GeometryRef;
use crate::arch::s390::pte::{self as s390pte, Pte};

/// The arch-neutral view of PTE values the mm layer works with. Each method names the kernel
/// helper it models; the value format is the arch's.
impl Arch {
    #[inline]
    pub fn geometry(self) -> &'static GeometryRef {
        match self {
            Arch::S390x => &s390::dat::GEOMETRY,
        }
    }
    /// The empty PTE value.
    #[inline]
    pub fn pte_none_val(self) -> u64 {
        match self {
            Arch::S390x => s390pte::_PAGE_INVALID,
        }
    }
    #[inline]
    pub fn pte_none(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).none(),
        }
    }
    #[inline]
    pub fn pte_present(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).present(),
        }
    }
    /// A swap (or other non-present, non-none) entry: `!pte_none && !pte_present`.
    #[inline]
    pub fn is_swap_pte(self, v: u64) -> bool {
        !self.pte_none(v) && !self.pte_present(v)
    }
    #[inline]
    pub fn pte_young(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).young(),
        }
    }
    #[inline]
    pub fn pte_dirty(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).dirty(),
        }
    }
    #[inline]
    pub fn pte_write(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).write(),
        }
    }
    #[inline]
    pub fn pte_special(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).special(),
        }
    }
    /// `pte_unused`: only s390 has it (`__HAVE_ARCH_PTE_UNUSED`); the generic one returns 0.
    #[inline]
    pub fn pte_unused(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).unused(),
        }
    }
    #[inline]
    pub fn pte_soft_dirty(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).soft_dirty(),
        }
    }
    #[inline]
    pub fn pte_pfn(self, v: u64) -> u32 {
        match self {
            Arch::S390x => Pte(v).pfn() as u32,
        }
    }
    /// `mk_pte(page, prot)`.
    #[inline]
    pub fn mk_pte(self, pfn: u32, prot: u64) -> u64 {
        match self {
            Arch::S390x => Pte::mk(pfn as u64, prot).val(),
        }
    }
    #[inline]
    pub fn pte_mkold(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkold().val(),
        }
    }
    #[inline]
    pub fn pte_mkyoung(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkyoung().val(),
        }
    }
    #[inline]
    pub fn pte_mkdirty(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkdirty().val(),
        }
    }
    #[inline]
    pub fn pte_mkclean(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkclean().val(),
        }
    }
    #[inline]
    pub fn pte_wrprotect(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).wrprotect().val(),
        }
    }
    #[inline]
    pub fn pte_mkwrite(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkwrite().val(),
        }
    }
    #[inline]
    pub fn pte_mkspecial(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).mkspecial().val(),
        }
    }
    /// `swp_entry_to_pte(swp_entry(type, offset))`.
    #[inline]
    pub fn mk_swap_pte(self, swp_type: u32, offset: u64) -> u64 {
        match self {
            Arch::S390x => Pte::mk_swap(swp_type, offset).val(),
        }
    }
    #[inline]
    pub fn swp_offset(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).swp_offset(),
        }
    }
    #[inline]
    pub fn swp_type(self, v: u64) -> u32 {
        match self {
            Arch::S390x => Pte(v).swp_type(),
        }
    }
    #[inline]
    pub fn pte_swp_mkexclusive(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).swp_mkexclusive().val(),
        }
    }
    #[inline]
    pub fn pte_swp_exclusive(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).swp_exclusive(),
        }
    }
    #[inline]
    pub fn pte_swp_clear_exclusive(self, v: u64) -> u64 {
        match self {
            Arch::S390x => v & !s390pte::_PAGE_SWP_EXCLUSIVE,
        }
    }
    #[inline]
    pub fn pte_swp_soft_dirty(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).swp_soft_dirty(),
        }
    }
    #[inline]
    pub fn pte_swp_mksoft_dirty(self, v: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).swp_mksoft_dirty().val(),
        }
    }
    #[inline]
    pub fn pte_mksoft_dirty(self, v: u64) -> u64 {
        match self {
            Arch::S390x => v | s390pte::_PAGE_SOFT_DIRTY,
        }
    }
    /// Whether the CPU completes an access through this PTE without a fault (s390: not
    /// hardware-invalid, and for a store not protected).
    #[inline]
    pub fn hw_access_ok(self, v: u64, write: bool) -> bool {
        match self {
            Arch::S390x => {
                let p = Pte(v);
                let faults = p.hw_invalid() || (write && p.hw_protect());
                !faults
            }
        }
    }
    /// `vm_get_page_prot(vm_flags)`: the arch's `protection_map` for VM_READ|VM_WRITE|VM_EXEC|
    /// VM_SHARED (private writable mappings get a read-only protection: copy on write).
    pub fn vm_get_page_prot(self, vm_flags: u64) -> u64 {
        use s390pte::*;
        let idx = vm_flags & 0xf;
        match self {
            Arch::S390x => {
                const P: [u64; 8] = [PAGE_NONE, PAGE_RO, PAGE_RO, PAGE_RO, PAGE_RX, PAGE_RX, PAGE_RX, PAGE_RX];
                const S: [u64; 8] = [PAGE_NONE, PAGE_RO, PAGE_RW, PAGE_RW, PAGE_RX, PAGE_RX, PAGE_RWX, PAGE_RWX];
                if idx & 0x8 != 0 { S[(idx & 7) as usize] } else { P[(idx & 7) as usize] }
            }
        }
    }
    /// A human-readable decoding of a PTE value.
    pub fn decode_pte(self, v: u64) -> String {
        match self {
            Arch::S390x => Pte(v).decode(),
        }
    }
}
