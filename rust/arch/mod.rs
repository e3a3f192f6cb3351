//! Architectures. `s390x` is the modelled one; every PTE value in the model is in the format of
//! the profile's arch.

pub mod pgtable;
pub mod s390;
pub mod types;
pub mod x86;

use crate::error::{Error, Result};

pub use types::Arch;

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::S390x, Arch::X86_64];

    pub fn name(self) -> &'static str {
        match self {
            Arch::S390x => "s390x",
            Arch::X86_64 => "x86_64",
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
use crate::arch::x86::Pte as X86Pte;

/// One method per PTE helper the mm layer uses: the same call on both arches' value types.
macro_rules! pte_pred {
    ($($(#[$m:meta])* $name:ident => $method:ident;)*) => {$(
        $(#[$m])*
        #[inline]
        pub fn $name(self, v: u64) -> bool {
            match self {
                Arch::S390x => Pte(v).$method(),
                Arch::X86_64 => X86Pte(v).$method(),
            }
        }
    )*};
}

macro_rules! pte_op {
    ($($(#[$m:meta])* $name:ident => $method:ident;)*) => {$(
        $(#[$m])*
        #[inline]
        pub fn $name(self, v: u64) -> u64 {
            match self {
                Arch::S390x => Pte(v).$method().val(),
                Arch::X86_64 => X86Pte(v).$method().0,
            }
        }
    )*};
}

/// The swap-entry format of a profile: the arch's `__swp_entry` / `__swp_type` /
/// `__swp_offset`, and on x86_64 which of the two layouts the release has
/// (`Profile::x86_swp_offset_inverted`, the v4.19 L1TF change; s390 has one layout in every
/// release, arch/s390/include/asm/pgtable.h). Every swap, migration, hwpoison and marker PTE
/// the model writes or reads goes through it ([`crate::profile::Profile::swp_format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SwpFormat {
    pub arch: Arch,
    /// x86_64 only: the offset is stored inverted above bit 9, the type in the top bits.
    pub x86_offset_inverted: bool,
}

impl SwpFormat {
    /// `swp_entry_to_pte(swp_entry(type, offset))`.
    #[inline]
    pub fn mk_swap_pte(self, swp_type: u32, offset: u64) -> u64 {
        match self.arch {
            Arch::S390x => Pte::mk_swap(swp_type, offset).val(),
            Arch::X86_64 => X86Pte::mk_swap(swp_type, offset, self.x86_offset_inverted).0,
        }
    }
    /// `swp_offset(pte_to_swp_entry(pte))`.
    #[inline]
    pub fn swp_offset(self, v: u64) -> u64 {
        match self.arch {
            Arch::S390x => Pte(v).swp_offset(),
            Arch::X86_64 => X86Pte(v).swp_offset(self.x86_offset_inverted),
        }
    }
    /// `swp_type(pte_to_swp_entry(pte))`.
    #[inline]
    pub fn swp_type(self, v: u64) -> u32 {
        match self.arch {
            Arch::S390x => Pte(v).swp_type(),
            Arch::X86_64 => X86Pte(v).swp_type(self.x86_offset_inverted),
        }
    }
    /// A human-readable decoding of a PTE value (a swap PTE in this format).
    pub fn decode_pte(self, v: u64) -> String {
        match self.arch {
            Arch::S390x => Pte(v).decode(),
            Arch::X86_64 => X86Pte(v).decode(self.x86_offset_inverted),
        }
    }
}

/// The arch-neutral view of PTE values the mm layer works with. Each method names the kernel
/// helper it models; the value format is the arch's.
impl Arch {
    /// The address a page fault reports (`vmf->real_address`): x86 has the faulting byte
    /// (CR2); s390 only the page, from the translation-exception identification
    /// (arch/s390/mm/fault.c `get_fault_address`: `teid.addr * PAGE_SIZE`, 6.12), so
    /// UFFD_FEATURE_EXACT_ADDRESS gives a page-aligned address there.
    #[inline]
    pub fn fault_address(self, addr: u64) -> u64 {
        match self {
            Arch::S390x => addr & !0xfff,
            Arch::X86_64 => addr,
        }
    }
    #[inline]
    pub fn geometry(self) -> &'static GeometryRef {
        match self {
            Arch::S390x => &s390::dat::GEOMETRY,
            Arch::X86_64 => &x86::GEOMETRY,
        }
    }
    /// The empty PTE value (`_PAGE_INVALID` on s390, 0 on x86).
    #[inline]
    pub fn pte_none_val(self) -> u64 {
        match self {
            Arch::S390x => s390pte::_PAGE_INVALID,
            Arch::X86_64 => 0,
        }
    }
    pte_pred! {
        /// `pte_none`.
        pte_none => none;
        /// `pte_present`.
        pte_present => present;
        /// `pte_young`.
        pte_young => young;
        /// `pte_dirty`.
        pte_dirty => dirty;
        /// `pte_write`.
        pte_write => write;
        /// `pte_special`.
        pte_special => special;
        /// `pte_soft_dirty`.
        pte_soft_dirty => soft_dirty;
    }
    pte_op! {
        pte_mkold => mkold;
        pte_mkyoung => mkyoung;
        pte_mkdirty => mkdirty;
        pte_mkclean => mkclean;
        pte_wrprotect => wrprotect;
        pte_mkwrite => mkwrite;
        pte_mkspecial => mkspecial;
    }
    /// A swap (or other non-present, non-none) entry: `!pte_none && !pte_present`.
    #[inline]
    pub fn is_swap_pte(self, v: u64) -> bool {
        !self.pte_none(v) && !self.pte_present(v)
    }
    /// `pte_unused`: only s390 has it (`__HAVE_ARCH_PTE_UNUSED`); the generic one returns 0.
    #[inline]
    pub fn pte_unused(self, v: u64) -> bool {
        match self {
            Arch::S390x => Pte(v).unused(),
            Arch::X86_64 => false,
        }
    }
    #[inline]
    pub fn pte_pfn(self, v: u64) -> u32 {
        match self {
            Arch::S390x => Pte(v).pfn() as u32,
            Arch::X86_64 => X86Pte(v).pfn() as u32,
        }
    }
    /// `mk_pte(page, prot)`.
    #[inline]
    pub fn mk_pte(self, pfn: u32, prot: u64) -> u64 {
        match self {
            Arch::S390x => Pte::mk(pfn as u64, prot).val(),
            Arch::X86_64 => X86Pte::mk(pfn as u64, prot).0,
        }
    }
    /// `pte_modify(pte, newprot)`: the same page with the protection of `prot` (what
    /// `change_protection` installs). s390 recomputes the hardware INVALID/PROTECT bits from
    /// young/dirty; x86 keeps `_PAGE_CHG_MASK`.
    #[inline]
    pub fn pte_modify(self, v: u64, prot: u64) -> u64 {
        match self {
            Arch::S390x => Pte(v).modify(prot).val(),
            Arch::X86_64 => X86Pte(v).modify(prot).0,
        }
    }
    /// The bit `pte_swp_mkexclusive` sets (v6.0+).
    fn swp_exclusive_bit(self) -> u64 {
        match self {
            Arch::S390x => s390pte::_PAGE_SWP_EXCLUSIVE,
            Arch::X86_64 => x86::_PAGE_SWP_EXCLUSIVE,
        }
    }
    fn swp_soft_dirty_bit(self) -> u64 {
        match self {
            Arch::S390x => s390pte::_PAGE_SOFT_DIRTY,
            Arch::X86_64 => x86::_PAGE_SWP_SOFT_DIRTY,
        }
    }
    #[inline]
    pub fn pte_swp_mkexclusive(self, v: u64) -> u64 {
        v | self.swp_exclusive_bit()
    }
    #[inline]
    pub fn pte_swp_exclusive(self, v: u64) -> bool {
        v & self.swp_exclusive_bit() != 0
    }
    #[inline]
    pub fn pte_swp_clear_exclusive(self, v: u64) -> u64 {
        v & !self.swp_exclusive_bit()
    }
    #[inline]
    pub fn pte_swp_soft_dirty(self, v: u64) -> bool {
        v & self.swp_soft_dirty_bit() != 0
    }
    #[inline]
    pub fn pte_swp_mksoft_dirty(self, v: u64) -> u64 {
        v | self.swp_soft_dirty_bit()
    }
    #[inline]
    pub fn pte_mksoft_dirty(self, v: u64) -> u64 {
        match self {
            Arch::S390x => v | s390pte::_PAGE_SOFT_DIRTY,
            Arch::X86_64 => v | x86::_PAGE_SOFT_DIRTY,
        }
    }
    /// `pte_uffd_wp` (always false on s390: no free software bit). The arch helpers below are
    /// arch/x86/include/asm/pgtable.h's (v5.7+, 6.12) on x86_64 and
    /// include/asm-generic/pgtable_uffd.h's no-ops (`return 0;` / `return pte;`) on s390, which
    /// does not select HAVE_ARCH_USERFAULTFD_WP.
    #[inline]
    pub fn pte_uffd_wp(self, v: u64) -> bool {
        match self {
            Arch::S390x => false,
            Arch::X86_64 => X86Pte(v).uffd_wp(),
        }
    }
    /// `pte_mkuffd_wp` (x86_64 only).
    #[inline]
    pub fn pte_mkuffd_wp(self, v: u64) -> u64 {
        match self {
            Arch::S390x => v,
            Arch::X86_64 => X86Pte(v).mkuffd_wp().0,
        }
    }
    /// `pte_clear_uffd_wp` (x86_64 only).
    #[inline]
    pub fn pte_clear_uffd_wp(self, v: u64) -> u64 {
        match self {
            Arch::S390x => v,
            Arch::X86_64 => X86Pte(v).clear_uffd_wp().0,
        }
    }
    /// `pte_swp_uffd_wp` (x86_64 only).
    #[inline]
    pub fn pte_swp_uffd_wp(self, v: u64) -> bool {
        match self {
            Arch::S390x => false,
            Arch::X86_64 => v & x86::_PAGE_SWP_UFFD_WP != 0,
        }
    }
    /// `pte_swp_mkuffd_wp` / `pte_swp_clear_uffd_wp` (x86_64 only).
    #[inline]
    pub fn pte_swp_set_uffd_wp(self, v: u64, on: bool) -> u64 {
        match self {
            Arch::S390x => v,
            Arch::X86_64 if on => v | x86::_PAGE_SWP_UFFD_WP,
            Arch::X86_64 => v & !x86::_PAGE_SWP_UFFD_WP,
        }
    }
    /// Whether the CPU completes an access through this PTE without a fault (s390: not
    /// hardware-invalid, and for a store not protected; x86: present and, for a store, RW).
    #[inline]
    pub fn hw_access_ok(self, v: u64, write: bool) -> bool {
        match self {
            Arch::S390x => {
                let p = Pte(v);
                let faults = p.hw_invalid() || (write && p.hw_protect());
                !faults
            }
            Arch::X86_64 => v & x86::_PAGE_PRESENT != 0 && (!write || v & x86::_PAGE_RW != 0),
        }
    }
    /// What the hardware writes into the PTE on an access: x86 sets the accessed bit (and dirty
    /// on a store); s390 sets nothing in the PTE (the storage key's R/C bits instead).
    #[inline]
    pub fn hw_access_update(self, v: u64, write: bool) -> Option<u64> {
        match self {
            Arch::S390x => None,
            Arch::X86_64 => {
                let n = v | x86::_PAGE_ACCESSED | if write { x86::_PAGE_DIRTY } else { 0 };
                (n != v).then_some(n)
            }
        }
    }
    /// `vm_get_page_prot(vm_flags)`: the arch's `protection_map` for VM_READ|VM_WRITE|VM_EXEC|
    /// VM_SHARED (private writable mappings get a read-only protection: copy on write). 4.x:
    /// `__P000`..`__S111` of arch/{s390,x86}/include/asm/pgtable*.h; v6.0 moved the same values
    /// into `protection_map[16]` (arch/s390/mm/mmap.c, arch/x86/mm/pgprot.c). Not modelled:
    /// x86 pkey bits and `__sme_set`.
    pub fn vm_get_page_prot(self, vm_flags: u64) -> u64 {
        let idx = (vm_flags & 0xf) as usize;
        match self {
            Arch::S390x => {
                use s390pte::*;
                const MAP: [u64; 16] = [
                    PAGE_NONE, PAGE_RO, PAGE_RO, PAGE_RO, PAGE_RX, PAGE_RX, PAGE_RX, PAGE_RX, PAGE_NONE, PAGE_RO,
                    PAGE_RW, PAGE_RW, PAGE_RX, PAGE_RX, PAGE_RWX, PAGE_RWX,
                ];
                MAP[idx]
            }
            Arch::X86_64 => {
                use x86::*;
                const MAP: [u64; 16] = [
                    PAGE_NONE,
                    PAGE_READONLY,
                    PAGE_COPY,
                    PAGE_COPY,
                    PAGE_READONLY_EXEC,
                    PAGE_READONLY_EXEC,
                    PAGE_COPY_EXEC,
                    PAGE_COPY_EXEC,
                    PAGE_NONE,
                    PAGE_READONLY,
                    PAGE_SHARED,
                    PAGE_SHARED,
                    PAGE_READONLY_EXEC,
                    PAGE_READONLY_EXEC,
                    PAGE_SHARED_EXEC,
                    PAGE_SHARED_EXEC,
                ];
                MAP[idx]
            }
        }
    }
    /// The user address-space size (`TASK_SIZE`).
    pub fn task_size(self) -> u64 {
        match self {
            Arch::S390x => u64::MAX - 4095,
            Arch::X86_64 => 0x7fff_ffff_f000,
        }
    }
    /// Where top-down mmap starts.
    pub fn mmap_base(self) -> u64 {
        match self {
            // below the 4 TiB of a three-level (region-third) address space
            Arch::S390x => 0x3ff_0000_0000,
            Arch::X86_64 => 0x7f00_0000_0000,
        }
    }
}
