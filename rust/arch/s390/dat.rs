//! s390 dynamic address translation (DAT): region and segment tables ("CRSTs", 2048 entries),
//! page tables (256 entries, with 256 PGSTEs beside them in a PGSTE mm), the ASCE whose type
//! selects the top level, and a hardware-style translation that returns the real address or
//! the program exception the CPU would raise.
//!
//! Geometry from arch/s390/include/asm/pgtable.h: `_CRST_ENTRIES 2048`, `_PAGE_ENTRIES 256`,
//! `_SEGMENT_SHIFT 20`, `_REGION3_SHIFT 31`, `_REGION2_SHIFT 42`, `_REGION1_SHIFT 53`. A new
//! address space starts with a region-third table (asce_limit 4 TiB, three levels, as since
//! v4.13) and is upgraded on demand (`crst_table_upgrade`).
//!
//! Simplification: table "real addresses" live in a model range of their own above the
//! frames ([`TABLE_ORIGIN`]); tables are always full length (TL = 3), so the table-length
//! checks of the hardware never fire.

use super::pte::{PAGE_MASK, Pte};
use crate::arch::pgtable::{Geometry, GeometryRef, PageTables, Walk};

pub const _CRST_ENTRIES: usize = 2048;
pub const _PAGE_ENTRIES: usize = 256;
pub const PTRS_PER_PTE: usize = _PAGE_ENTRIES;
pub const _SEGMENT_SHIFT: u32 = 20;
pub const _REGION3_SHIFT: u32 = 31;
pub const _REGION2_SHIFT: u32 = 42;
pub const _REGION1_SHIFT: u32 = 53;

pub const _ASCE_TYPE_REGION1: u64 = 0x0c;
pub const _ASCE_TYPE_REGION2: u64 = 0x08;
pub const _ASCE_TYPE_REGION3: u64 = 0x04;
pub const _ASCE_TYPE_SEGMENT: u64 = 0x00;
pub const _ASCE_TABLE_LENGTH: u64 = 0x03;
pub const _ASCE_ORIGIN: u64 = !0xfff;

pub const _REGION_ENTRY_ORIGIN: u64 = !0xfff;
pub const _REGION_ENTRY_PROTECT: u64 = 0x200;
pub const _REGION_ENTRY_INVALID: u64 = 0x20;
pub const _REGION_ENTRY_TYPE_MASK: u64 = 0x0c;
pub const _REGION_ENTRY_TYPE_R1: u64 = 0x0c;
pub const _REGION_ENTRY_TYPE_R2: u64 = 0x08;
pub const _REGION_ENTRY_TYPE_R3: u64 = 0x04;
pub const _REGION_ENTRY_LENGTH: u64 = 0x03;
pub const _SEGMENT_ENTRY_ORIGIN: u64 = !0x7ff;
pub const _SEGMENT_ENTRY_PROTECT: u64 = 0x200;
pub const _SEGMENT_ENTRY_NOEXEC: u64 = 0x100;
pub const _SEGMENT_ENTRY_INVALID: u64 = 0x20;
pub const _SEGMENT_ENTRY_LARGE: u64 = 0x400;
pub const _SEGMENT_ENTRY_EMPTY: u64 = _SEGMENT_ENTRY_INVALID;

/// Program-interruption codes of the translation exceptions (arch/s390/include/uapi/asm/kvm.h
/// and the Principles of Operation).
pub const PGM_PROTECTION: u16 = 0x04;
pub const PGM_SEGMENT_TRANSLATION: u16 = 0x10;
pub const PGM_PAGE_TRANSLATION: u16 = 0x11;
pub const PGM_ASCE_TYPE: u16 = 0x38;
pub const PGM_REGION_FIRST_TRANS: u16 = 0x39;
pub const PGM_REGION_SECOND_TRANS: u16 = 0x3a;
pub const PGM_REGION_THIRD_TRANS: u16 = 0x3b;

/// Model real address of CRST table `i` (16 KiB each) and page table `j` (4 KiB each in a PGSTE
/// mm, 2 KiB otherwise): far above any frame.
pub const TABLE_ORIGIN: u64 = 1 << 50;
const PT_ORIGIN: u64 = 1 << 51;

/// The s390 geometry: region-first, region-second, region-third, segment; 256-entry PTs.
pub static GEOMETRY: GeometryRef = GeometryRef(Geometry::new(
    &[_REGION1_SHIFT, _REGION2_SHIFT, _REGION3_SHIFT, _SEGMENT_SHIFT],
    _CRST_ENTRIES,
    _PAGE_ENTRIES,
    2,
    super::pte::_PAGE_INVALID,
));

/// A program exception raised by translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatException {
    AsceType,
    RegionFirstTranslation,
    RegionSecondTranslation,
    RegionThirdTranslation,
    SegmentTranslation,
    PageTranslation,
    Protection,
}

impl DatException {
    /// The program-interruption code.
    pub fn code(self) -> u16 {
        match self {
            DatException::AsceType => PGM_ASCE_TYPE,
            DatException::RegionFirstTranslation => PGM_REGION_FIRST_TRANS,
            DatException::RegionSecondTranslation => PGM_REGION_SECOND_TRANS,
            DatException::RegionThirdTranslation => PGM_REGION_THIRD_TRANS,
            DatException::SegmentTranslation => PGM_SEGMENT_TRANSLATION,
            DatException::PageTranslation => PGM_PAGE_TRANSLATION,
            DatException::Protection => PGM_PROTECTION,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DatException::AsceType => "ASCE-type exception",
            DatException::RegionFirstTranslation => "region-first-translation exception",
            DatException::RegionSecondTranslation => "region-second-translation exception",
            DatException::RegionThirdTranslation => "region-third-translation exception",
            DatException::SegmentTranslation => "segment-translation exception",
            DatException::PageTranslation => "page-translation exception",
            DatException::Protection => "protection exception",
        }
    }

    fn for_level(level: usize) -> DatException {
        match level {
            0 => DatException::RegionFirstTranslation,
            1 => DatException::RegionSecondTranslation,
            2 => DatException::RegionThirdTranslation,
            _ => DatException::SegmentTranslation,
        }
    }
}

/// The ASCE type for a top level (index into the geometry's levels).
pub fn asce_type(top_level: usize) -> u64 {
    match top_level {
        0 => _ASCE_TYPE_REGION1,
        1 => _ASCE_TYPE_REGION2,
        2 => _ASCE_TYPE_REGION3,
        _ => _ASCE_TYPE_SEGMENT,
    }
}

fn crst_origin(i: u32) -> u64 {
    TABLE_ORIGIN + (i as u64) * 16384
}

fn pt_origin(j: u32, has_pgste: bool) -> u64 {
    PT_ORIGIN + (j as u64) * if has_pgste { 4096 } else { 2048 }
}

/// The address-space-control element of these tables: top table origin, type, full length.
pub fn asce(t: &PageTables) -> u64 {
    crst_origin(t.top_table()) | asce_type(t.top_level()) | _ASCE_TABLE_LENGTH
}

/// The region or segment entry values a walk for `va` meets, top-down, as the kernel stores
/// them (`pgd_val` .. `pmd_val`): origin | type | length, or the empty entry with the invalid
/// bit. Stops after the first invalid entry.
pub fn entries(t: &PageTables, va: u64) -> Vec<(&'static str, u64)> {
    const NAMES: [&str; 4] = ["region-first", "region-second", "region-third", "segment"];
    const TYPES: [u64; 3] = [_REGION_ENTRY_TYPE_R1, _REGION_ENTRY_TYPE_R2, _REGION_ENTRY_TYPE_R3];
    let mut out = Vec::new();
    for level in t.top_level()..4 {
        let Some(e) = t.upper_entry(va, level) else {
            break;
        };
        let v = if level == 3 {
            if e == 0 { _SEGMENT_ENTRY_EMPTY } else { pt_origin(e - 1, t.has_pgste()) }
        } else if e == 0 {
            TYPES[level] | _REGION_ENTRY_INVALID | _REGION_ENTRY_LENGTH
        } else {
            crst_origin(e - 1) | TYPES[level] | _REGION_ENTRY_LENGTH
        };
        out.push((NAMES[level], v));
        if e == 0 {
            break;
        }
    }
    out
}

/// Translate `va` as the CPU does (DAT on, the primary ASCE): walk the region and segment
/// tables, then check the PTE's invalid bit, then, for a store, its protect bit. Returns the
/// real address.
pub fn translate(t: &PageTables, va: u64, store: bool) -> Result<u64, DatException> {
    match t.walk(va) {
        Walk::BeyondTop => Err(DatException::AsceType),
        Walk::EmptyAt(level) => Err(DatException::for_level(level)),
        Walk::Pt(_) => {
            let idx = t.pte_index(va).expect("walk found the page table");
            let pte = Pte(t.pte(idx));
            if pte.hw_invalid() {
                Err(DatException::PageTranslation)
            } else if store && pte.hw_protect() {
                Err(DatException::Protection)
            } else {
                Ok((pte.val() & PAGE_MASK) | (va & !PAGE_MASK))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::s390::pte::{PAGE_RO, PAGE_RW};

    #[test]
    fn geometry_is_the_kernels() {
        let g = &GEOMETRY.0;
        assert_eq!(g.upper_entries, 2048);
        assert_eq!(g.pt_entries, 256);
        assert_eq!(g.pt_span(), 1 << 20);
        assert_eq!(g.reach(2), 1 << 42); // region-third: 4 TiB
        assert_eq!(g.reach(1), 1 << 53); // region-second: 8 PiB
        assert_eq!(g.reach(0), u64::MAX); // region-first: everything
        assert_eq!(_ASCE_TYPE_REGION3, 0x04);
        assert_eq!(_SEGMENT_ENTRY_INVALID, 0x20);
    }

    #[test]
    fn mapped_address_translates() {
        let mut t = PageTables::new(&GEOMETRY, false);
        let va = 0x3ff_8000_1234u64;
        let idx = t.pte_alloc(va).unwrap();
        t.set_pte(idx, Pte::mk(0x42, PAGE_RW).mkdirty().mkwrite().val());
        assert_eq!(translate(&t, va, false), Ok((0x42 << 12) | 0x234));
        assert_eq!(translate(&t, va, true), Ok((0x42 << 12) | 0x234));
    }

    #[test]
    fn invalid_pte_gives_page_translation_exception() {
        let mut t = PageTables::new(&GEOMETRY, false);
        let va = 0x1000_0000u64;
        let idx = t.pte_alloc(va).unwrap();
        assert_eq!(translate(&t, va, false), Err(DatException::PageTranslation));
        t.set_pte(idx, Pte::mk(7, PAGE_RW).mkold().val());
        assert_eq!(translate(&t, va, false), Err(DatException::PageTranslation));
        assert_eq!(DatException::PageTranslation.code(), 0x11);
    }

    #[test]
    fn store_through_protected_pte_gives_protection_exception() {
        let mut t = PageTables::new(&GEOMETRY, false);
        let va = 0x2000_0000u64;
        let idx = t.pte_alloc(va).unwrap();
        t.set_pte(idx, Pte::mk(9, PAGE_RO).val());
        assert_eq!(translate(&t, va, false), Ok(9 << 12));
        assert_eq!(translate(&t, va, true), Err(DatException::Protection));
    }

    #[test]
    fn empty_entries_give_region_and_segment_exceptions() {
        let mut t = PageTables::new(&GEOMETRY, false);
        assert_eq!(translate(&t, 0x1000, false), Err(DatException::RegionThirdTranslation));
        t.pte_alloc(0x1000).unwrap();
        // same region-third entry (2 GiB), other segment (1 MiB)
        assert_eq!(translate(&t, 0x4000_0000, false), Err(DatException::SegmentTranslation));
        // beyond 4 TiB with a region-third ASCE
        assert_eq!(translate(&t, 1 << 43, false), Err(DatException::AsceType));
    }

    #[test]
    fn upgrade_adds_a_region_second_table_above() {
        let mut t = PageTables::new(&GEOMETRY, false);
        let low = t.pte_alloc(0x5000).unwrap();
        t.set_pte(low, Pte::mk(3, PAGE_RW).val());
        assert_eq!(asce(&t) & 0x0c, _ASCE_TYPE_REGION3);
        let high = 1u64 << 45;
        t.pte_alloc(high).unwrap();
        assert_eq!(asce(&t) & 0x0c, _ASCE_TYPE_REGION2);
        // the old mapping is still reachable through the new top
        assert_eq!(translate(&t, 0x5000, false), Ok(3 << 12));
        assert_eq!(translate(&t, high, false), Err(DatException::PageTranslation));
    }

    #[test]
    fn sparse_terabyte_allocates_tables_only_where_touched() {
        let mut t = PageTables::new(&GEOMETRY, true);
        let base = 0x100_0000_0000u64; // 1 TiB
        for i in 0..8u64 {
            t.pte_alloc(base + i * (1 << 37)).unwrap(); // 8 touches 128 GiB apart
        }
        assert_eq!(t.nr_page_tables(), 8);
        // one region-third table, one segment table per touched 2 GiB region entry
        assert_eq!(t.nr_upper_tables(), 1 + 8);
        assert!(t.heap_bytes() < 8 * 16384 + 9 * 8192 + 4096);
    }

    #[test]
    fn entries_render_kernel_values() {
        let mut t = PageTables::new(&GEOMETRY, true);
        t.pte_alloc(0x1234_5000).unwrap();
        let e = entries(&t, 0x1234_5000);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, "region-third");
        assert_eq!(e[0].1 & _REGION_ENTRY_TYPE_MASK, _REGION_ENTRY_TYPE_R3);
        assert_eq!(e[0].1 & _REGION_ENTRY_INVALID, 0);
        assert_eq!(e[1].0, "segment");
        assert_eq!(e[1].1 & _SEGMENT_ENTRY_INVALID, 0);
        assert_eq!(e[1].1 & 0xfff, 0);
        let empty = entries(&t, 0x8000_0000);
        assert_eq!(empty.last().unwrap().1 & _REGION_ENTRY_INVALID, _REGION_ENTRY_INVALID);
    }
}
