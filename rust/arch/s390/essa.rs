//! ESSA (EXTRACT AND SET STORAGE ATTRIBUTES): the guest's collaborative memory management
//! (CMMA) hints, as `pgste_perform_essa` in arch/s390/mm/pgtable.c applies them and the orc
//! constants of arch/s390/include/asm/page-states.h.
//!
//! A Linux guest frees a page with `ESSA_SET_UNUSED` (`arch_free_page`) and allocates one with
//! `ESSA_SET_STABLE` or `ESSA_SET_STABLE_NODAT` (`arch_alloc_page`). The hardware interprets
//! ESSA (updating the PGSTE directly) and adds a page to the CBRL (the collaborative
//! block-removal list) when the host PTE is invalid and the page may be discarded; KVM
//! intercepts when the CBRL is full or in migration mode and then zaps the listed pages
//! (`__gmap_zap` → `ptep_zap_unused`). Both paths apply the same state table, modelled here.

use super::pgste::*;
use super::pte::Pte;
use crate::error::{Error, Result};

pub const ESSA_GET_STATE: u32 = 0;
pub const ESSA_SET_STABLE: u32 = 1;
pub const ESSA_SET_UNUSED: u32 = 2;
pub const ESSA_SET_VOLATILE: u32 = 3;
pub const ESSA_SET_POT_VOLATILE: u32 = 4;
pub const ESSA_SET_STABLE_RESIDENT: u32 = 5;
pub const ESSA_SET_STABLE_IF_RESIDENT: u32 = 6;
pub const ESSA_SET_STABLE_NODAT: u32 = 7;
/// `ESSA_MAX`.
pub const ESSA_MAX: u32 = ESSA_SET_STABLE_NODAT;

/// The orc names, lower case, as the Python API accepts them.
pub const ORC_NAMES: [&str; 8] = [
    "get_state",
    "set_stable",
    "set_unused",
    "set_volatile",
    "set_pot_volatile",
    "set_stable_resident",
    "set_stable_if_resident",
    "set_stable_nodat",
];

/// Parse an orc by number or by name (`"set_unused"`, `"ESSA_SET_UNUSED"`, ...).
pub fn parse_orc(s: &str) -> Result<u32> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_prefix("essa_").unwrap_or(&t);
    if let Some(i) = ORC_NAMES.iter().position(|n| *n == t) {
        return Ok(i as u32);
    }
    if let Ok(n) = t.parse::<u32>() {
        return check_orc(n);
    }
    Err(Error::invalid(format!("unknown ESSA orc {s:?}; expected 0..7 or one of {}", ORC_NAMES.join(", "))))
}

/// An orc outside 0..=ESSA_MAX is an error (`pgste_perform_essa` returns -EINVAL).
pub fn check_orc(orc: u32) -> Result<u32> {
    if orc > ESSA_MAX {
        Err(Error::invalid(format!("ESSA orc {orc} is outside 0..{ESSA_MAX} (pgste_perform_essa returns -EINVAL)")))
    } else {
        Ok(orc)
    }
}

/// The outcome of `pgste_perform_essa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Essa {
    /// The PGSTE before.
    pub old_pgste: Pgste,
    /// The PGSTE after.
    pub new_pgste: Pgste,
    /// 1: the page goes on the CBRL (it may be discarded: the host PTE is invalid).
    pub res: u32,
}

/// `pgste_perform_essa` (arch/s390/mm/pgtable.c, the same switch in 4.13..6.12): apply `orc` to
/// the PGSTE of a page whose host PTE is `pte`.
/// "If we are discarding a page, set it to logical zero": a result of 1 also sets ZERO.
pub fn pgste_perform_essa(pte: Pte, pgste: Pgste, orc: u32) -> Result<Essa> {
    check_orc(orc)?;
    let invalid = pte.hw_invalid();
    let mut v = pgste.val();
    let mut res = 0;
    match orc {
        ESSA_GET_STATE => {}
        ESSA_SET_STABLE => {
            v &= !(_PGSTE_GPS_USAGE_MASK | _PGSTE_GPS_NODAT);
            v |= _PGSTE_GPS_USAGE_STABLE;
        }
        ESSA_SET_UNUSED => {
            v &= !_PGSTE_GPS_USAGE_MASK;
            v |= _PGSTE_GPS_USAGE_UNUSED;
            if invalid {
                res = 1;
            }
        }
        ESSA_SET_VOLATILE => {
            v &= !_PGSTE_GPS_USAGE_MASK;
            v |= _PGSTE_GPS_USAGE_VOLATILE;
            if invalid {
                res = 1;
            }
        }
        ESSA_SET_POT_VOLATILE => {
            v &= !_PGSTE_GPS_USAGE_MASK;
            if !invalid {
                v |= _PGSTE_GPS_USAGE_POT_VOLATILE;
            } else if v & _PGSTE_GPS_ZERO != 0 {
                v |= _PGSTE_GPS_USAGE_VOLATILE;
            } else if v & PGSTE_GC_BIT == 0 {
                v |= _PGSTE_GPS_USAGE_VOLATILE;
                res = 1;
            }
        }
        ESSA_SET_STABLE_RESIDENT => {
            // "we will not make this page resident"
            v &= !_PGSTE_GPS_USAGE_MASK;
            v |= _PGSTE_GPS_USAGE_STABLE;
        }
        ESSA_SET_STABLE_IF_RESIDENT => {
            if !invalid {
                v &= !_PGSTE_GPS_USAGE_MASK;
                v |= _PGSTE_GPS_USAGE_STABLE;
            }
        }
        _ => {
            // ESSA_SET_STABLE_NODAT
            v &= !_PGSTE_GPS_USAGE_MASK;
            v |= _PGSTE_GPS_USAGE_STABLE | _PGSTE_GPS_NODAT;
        }
    }
    if res != 0 {
        v |= _PGSTE_GPS_ZERO;
    }
    Ok(Essa { old_pgste: pgste, new_pgste: Pgste(v), res })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::s390::pte::{PAGE_RW, Pte};

    fn valid() -> Pte {
        Pte::mk(1, PAGE_RW).mkdirty().mkwrite()
    }
    fn invalid() -> Pte {
        Pte::mk_swap(0, 7)
    }

    #[test]
    fn orc_constants_are_the_kernels() {
        assert_eq!(
            [
                ESSA_GET_STATE,
                ESSA_SET_STABLE,
                ESSA_SET_UNUSED,
                ESSA_SET_VOLATILE,
                ESSA_SET_POT_VOLATILE,
                ESSA_SET_STABLE_RESIDENT,
                ESSA_SET_STABLE_IF_RESIDENT,
                ESSA_SET_STABLE_NODAT
            ],
            [0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(ESSA_MAX, 7);
    }

    #[test]
    fn every_orc_on_valid_and_invalid_ptes() {
        use Usage::*;
        let start = Pgste(_PGSTE_GPS_USAGE_POT_VOLATILE | _PGSTE_GPS_NODAT);
        // (orc, usage after on valid pte, res valid, usage after on invalid pte, res invalid)
        let table = [
            (0, PotVolatile, 0, PotVolatile, 0),
            (1, Stable, 0, Stable, 0),
            (2, Unused, 0, Unused, 1),
            (3, Volatile, 0, Volatile, 1),
            (4, PotVolatile, 0, Volatile, 1),
            (5, Stable, 0, Stable, 0),
            (6, Stable, 0, PotVolatile, 0),
            (7, Stable, 0, Stable, 0),
        ];
        for (orc, uv, rv, ui, ri) in table {
            let a = pgste_perform_essa(valid(), start, orc).unwrap();
            assert_eq!((a.new_pgste.usage(), a.res), (uv, rv), "orc {orc} on a valid pte");
            assert_eq!(a.new_pgste.zero(), rv == 1);
            let b = pgste_perform_essa(invalid(), start, orc).unwrap();
            assert_eq!((b.new_pgste.usage(), b.res), (ui, ri), "orc {orc} on an invalid pte");
            assert_eq!(b.new_pgste.zero(), ri == 1, "orc {orc}: a discard sets logical zero");
        }
        // NODAT: SET_STABLE clears it, SET_STABLE_NODAT sets it, others keep it
        assert!(!pgste_perform_essa(valid(), start, 1).unwrap().new_pgste.nodat());
        assert!(pgste_perform_essa(valid(), Pgste(0), 7).unwrap().new_pgste.nodat());
        assert!(pgste_perform_essa(valid(), start, 2).unwrap().new_pgste.nodat());
    }

    #[test]
    fn pot_volatile_on_invalid_depends_on_zero_and_gc() {
        let zero = pgste_perform_essa(invalid(), Pgste(_PGSTE_GPS_ZERO), 4).unwrap();
        assert_eq!((zero.new_pgste.usage(), zero.res), (Usage::Volatile, 0));
        let gc = pgste_perform_essa(invalid(), Pgste(PGSTE_GC_BIT), 4).unwrap();
        assert_eq!((gc.new_pgste.usage(), gc.res), (Usage::Stable, 0));
    }

    #[test]
    fn orc_outside_range_is_an_error() {
        assert!(pgste_perform_essa(valid(), Pgste(0), 8).is_err());
        assert!(parse_orc("9").is_err());
        assert_eq!(parse_orc("set_unused").unwrap(), 2);
        assert_eq!(parse_orc("ESSA_SET_STABLE_NODAT").unwrap(), 7);
        assert!(parse_orc("set_bogus").unwrap_err().to_string().contains("set_unused"));
    }
}
