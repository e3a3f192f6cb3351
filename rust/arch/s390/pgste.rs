//! Page status table entries (PGSTE), as in arch/s390/include/asm/pgtable.h.
//!
//! A KVM host process (an mm with `mm_has_pgste`) has a PGSTE beside each PTE: the second 2 KiB
//! half of the 4 KiB page-table page. It holds the guest's view of the page: the CMMA usage
//! state the guest sets with ESSA, guest storage-key bits and KVM's software bits.
//!
//! Profiles: Claudio Imbrenda's "Move the softbits in the PGSTEs to the other usable area"
//! (January 2025, v6.14) moved UC/IN/VSIE from bits 0x0000_8000_0000_0000.. down to
//! 0x8000..; every modelled profile ("4.17", "4.18", "6.12") uses the old layout
//! ([`PgsteLayout::Old`]); releases from 6.14 to 6.19 use [`PgsteLayout::New`].

use serde::{Deserialize, Serialize};
use std::fmt;

pub const PGSTE_ACC_BITS: u64 = 0xf000_0000_0000_0000;
pub const PGSTE_FP_BIT: u64 = 0x0800_0000_0000_0000;
/// PGSTE lock bit (`pgste_get_lock` spins on it).
pub const PGSTE_PCL_BIT: u64 = 0x0080_0000_0000_0000;
/// Host referenced.
pub const PGSTE_HR_BIT: u64 = 0x0040_0000_0000_0000;
/// Host changed.
pub const PGSTE_HC_BIT: u64 = 0x0020_0000_0000_0000;
/// Guest referenced.
pub const PGSTE_GR_BIT: u64 = 0x0004_0000_0000_0000;
/// Guest changed.
pub const PGSTE_GC_BIT: u64 = 0x0002_0000_0000_0000;
/// `PGSTE_ST2_MASK` (new layout only).
pub const PGSTE_ST2_MASK: u64 = 0x0000_ffff_0000_0000;

/// Logical zero: the page content may be discarded and read back as zeroes.
pub const _PGSTE_GPS_ZERO: u64 = 0x0000_0000_8000_0000;
/// The guest does not use this page for DAT tables (ESSA SET_STABLE_NODAT).
pub const _PGSTE_GPS_NODAT: u64 = 0x0000_0000_4000_0000;
pub const _PGSTE_GPS_USAGE_MASK: u64 = 0x0000_0000_0300_0000;
pub const _PGSTE_GPS_USAGE_STABLE: u64 = 0x0000_0000_0000_0000;
pub const _PGSTE_GPS_USAGE_UNUSED: u64 = 0x0000_0000_0100_0000;
pub const _PGSTE_GPS_USAGE_POT_VOLATILE: u64 = 0x0000_0000_0200_0000;
pub const _PGSTE_GPS_USAGE_VOLATILE: u64 = _PGSTE_GPS_USAGE_MASK;

/// Where the software bits UC (user dirty, for migration), IN (IPTE notify) and VSIE live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgsteLayout {
    /// Up to v6.13: UC 0x0000800000000000, IN 0x0000400000000000, VSIE 0x0000200000000000.
    Old,
    /// v6.14 to v6.19: UC 0x8000, IN 0x4000, VSIE 0x2000 (and `PGSTE_ST2_MASK`).
    New,
}

impl PgsteLayout {
    /// `PGSTE_UC_BIT`.
    pub fn uc(self) -> u64 {
        match self {
            PgsteLayout::Old => 0x0000_8000_0000_0000,
            PgsteLayout::New => 0x0000_0000_0000_8000,
        }
    }

    /// `PGSTE_IN_BIT`.
    pub fn in_bit(self) -> u64 {
        match self {
            PgsteLayout::Old => 0x0000_4000_0000_0000,
            PgsteLayout::New => 0x0000_0000_0000_4000,
        }
    }

    /// `PGSTE_VSIE_BIT`.
    pub fn vsie(self) -> u64 {
        match self {
            PgsteLayout::Old => 0x0000_2000_0000_0000,
            PgsteLayout::New => 0x0000_0000_0000_2000,
        }
    }
}

/// The CMMA usage state the guest sets with ESSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Usage {
    Stable,
    Unused,
    PotVolatile,
    Volatile,
}

impl Usage {
    pub fn bits(self) -> u64 {
        match self {
            Usage::Stable => _PGSTE_GPS_USAGE_STABLE,
            Usage::Unused => _PGSTE_GPS_USAGE_UNUSED,
            Usage::PotVolatile => _PGSTE_GPS_USAGE_POT_VOLATILE,
            Usage::Volatile => _PGSTE_GPS_USAGE_VOLATILE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Usage::Stable => "STABLE",
            Usage::Unused => "UNUSED",
            Usage::PotVolatile => "POT_VOLATILE",
            Usage::Volatile => "VOLATILE",
        }
    }
}

/// A PGSTE value (`pgste_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pgste(pub u64);

impl Pgste {
    pub fn val(self) -> u64 {
        self.0
    }

    /// The usage state (`pgste & _PGSTE_GPS_USAGE_MASK`).
    pub fn usage(self) -> Usage {
        match self.0 & _PGSTE_GPS_USAGE_MASK {
            _PGSTE_GPS_USAGE_STABLE => Usage::Stable,
            _PGSTE_GPS_USAGE_UNUSED => Usage::Unused,
            _PGSTE_GPS_USAGE_POT_VOLATILE => Usage::PotVolatile,
            _ => Usage::Volatile,
        }
    }

    pub fn with_usage(self, u: Usage) -> Pgste {
        Pgste((self.0 & !_PGSTE_GPS_USAGE_MASK) | u.bits())
    }

    pub fn zero(self) -> bool {
        self.0 & _PGSTE_GPS_ZERO != 0
    }

    pub fn nodat(self) -> bool {
        self.0 & _PGSTE_GPS_NODAT != 0
    }

    pub fn uc(self, layout: PgsteLayout) -> bool {
        self.0 & layout.uc() != 0
    }

    pub fn in_bit(self, layout: PgsteLayout) -> bool {
        self.0 & layout.in_bit() != 0
    }

    pub fn vsie(self, layout: PgsteLayout) -> bool {
        self.0 & layout.vsie() != 0
    }

    pub fn gr(self) -> bool {
        self.0 & PGSTE_GR_BIT != 0
    }

    pub fn gc(self) -> bool {
        self.0 & PGSTE_GC_BIT != 0
    }

    pub fn hr(self) -> bool {
        self.0 & PGSTE_HR_BIT != 0
    }

    pub fn hc(self) -> bool {
        self.0 & PGSTE_HC_BIT != 0
    }

    /// The bits set, by name, for `repr` and traces.
    pub fn decode(self, layout: PgsteLayout) -> String {
        let mut parts = vec![format!("usage={}", self.usage().name())];
        let names = [
            (_PGSTE_GPS_ZERO, "ZERO"),
            (_PGSTE_GPS_NODAT, "NODAT"),
            (layout.uc(), "UC"),
            (layout.in_bit(), "IN"),
            (layout.vsie(), "VSIE"),
            (PGSTE_GR_BIT, "GR"),
            (PGSTE_GC_BIT, "GC"),
            (PGSTE_HR_BIT, "HR"),
            (PGSTE_HC_BIT, "HC"),
            (PGSTE_PCL_BIT, "PCL"),
            (PGSTE_FP_BIT, "FP"),
        ];
        for (bit, name) in names {
            if self.0 & bit != 0 {
                parts.push(name.to_string());
            }
        }
        let acc = (self.0 & PGSTE_ACC_BITS) >> 60;
        if acc != 0 {
            parts.push(format!("ACC={acc}"));
        }
        parts.join("|")
    }
}

impl fmt::Debug for Pgste {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pgste({:#x} {})", self.0, self.decode(PgsteLayout::Old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_kernels() {
        assert_eq!(PGSTE_ACC_BITS, 0xf000000000000000);
        assert_eq!(PGSTE_FP_BIT, 0x0800000000000000);
        assert_eq!(PGSTE_PCL_BIT, 0x0080000000000000);
        assert_eq!(PGSTE_HR_BIT, 0x0040000000000000);
        assert_eq!(PGSTE_HC_BIT, 0x0020000000000000);
        assert_eq!(PGSTE_GR_BIT, 0x0004000000000000);
        assert_eq!(PGSTE_GC_BIT, 0x0002000000000000);
        assert_eq!(_PGSTE_GPS_ZERO, 0x80000000);
        assert_eq!(_PGSTE_GPS_NODAT, 0x40000000);
        assert_eq!(_PGSTE_GPS_USAGE_MASK, 0x03000000);
        assert_eq!(_PGSTE_GPS_USAGE_UNUSED, 0x01000000);
        assert_eq!(_PGSTE_GPS_USAGE_POT_VOLATILE, 0x02000000);
        assert_eq!(_PGSTE_GPS_USAGE_VOLATILE, 0x03000000);
    }

    #[test]
    fn layouts_place_uc_in_vsie_per_release() {
        assert_eq!(PgsteLayout::Old.uc(), 0x0000800000000000);
        assert_eq!(PgsteLayout::Old.in_bit(), 0x0000400000000000);
        assert_eq!(PgsteLayout::Old.vsie(), 0x0000200000000000);
        assert_eq!(PgsteLayout::New.uc(), 0x8000);
        assert_eq!(PgsteLayout::New.in_bit(), 0x4000);
        assert_eq!(PgsteLayout::New.vsie(), 0x2000);
    }

    #[test]
    fn usage_round_trips() {
        for u in [Usage::Stable, Usage::Unused, Usage::PotVolatile, Usage::Volatile] {
            let p = Pgste(_PGSTE_GPS_ZERO | PGSTE_GC_BIT).with_usage(u);
            assert_eq!(p.usage(), u);
            assert!(p.zero() && p.gc());
        }
    }
}
