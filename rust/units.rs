//! Sizes as users write them: integers (bytes) or strings with binary units.

use crate::arch::s390::pte::PAGE_SIZE;
use crate::error::{Error, Result};

/// Parse `"512MiB"`, `"4GiB"`, `"4096"`, `"1 TiB"`, `"64KiB"` (also `K`, `M`, `G`, `T`, `P`, binary
/// as on the kernel command line), or a decimal fraction of a unit that is a whole number of
/// bytes (`"1.5MiB"`, `"0.25GiB"`). Returns bytes.
///
/// One rule for units in all of reclaim: `KB`, `MB`, `GB`, `TB` are decimal (10^3, 10^6...
/// bytes), as in rates like `"125MB/s"`; a size, which the model counts in 4 KiB pages, is
/// refused in them with a hint to write the binary unit (`MiB`) instead of being read as 2^20.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let (num, frac) = num.split_once('.').unwrap_or((num, ""));
    if num.is_empty() || frac.contains('.') || (frac.is_empty() && t[num.len()..].starts_with('.')) {
        return Err(Error::invalid(format!(
            "cannot parse size {s:?}: expected a number with an optional unit like \"512MiB\""
        )));
    }
    let n: u64 = num.parse().map_err(|_| Error::invalid(format!("size {s:?} is too large")))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "p" | "pib" => 50,
        dec @ ("kb" | "mb" | "gb" | "tb" | "pb") => {
            let binary = format!("{}iB", dec[..1].to_ascii_uppercase());
            return Err(Error::invalid(format!(
                "size {s:?}: {} means 10^{} bytes (as in rates like \"125MB/s\"), which is not a whole \
                 number of pages; write {num}{binary} for {num} x 2^{}",
                unit.trim(),
                3 * (1 + "kmgtp".find(&dec[..1]).unwrap_or(0)),
                10 * (1 + "kmgtp".find(&dec[..1]).unwrap_or(0)),
            )));
        }
        other => {
            return Err(Error::invalid(format!(
                "cannot parse size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB)"
            )));
        }
    };
    let whole = n.checked_mul(1u64 << shift).ok_or_else(|| Error::invalid(format!("size {s:?} is too large")))?;
    if frac.is_empty() {
        return Ok(whole);
    }
    // the fraction's bytes: frac / 10^len of 2^shift, exact or refused
    let digits = frac.len().min(30) as u32;
    let f: u128 = frac[..digits as usize].parse().map_err(|_| Error::invalid(format!("size {s:?} is too large")))?;
    let scaled = f << shift;
    let ten = 10u128.pow(digits);
    if frac.len() > 30 || scaled % ten != 0 {
        return Err(Error::invalid(format!(
            "size {s:?} is not a whole number of bytes: give it in a smaller unit (KiB, or bytes)"
        )));
    }
    whole.checked_add((scaled / ten) as u64).ok_or_else(|| Error::invalid(format!("size {s:?} is too large")))
}

/// Check a size in bytes for `what`: positive and a multiple of the page size.
pub fn check_pages(what: &str, bytes: u64) -> Result<u64> {
    if bytes == 0 {
        return Err(Error::invalid(format!("{what} must be positive, got 0")));
    }
    if bytes % PAGE_SIZE != 0 {
        return Err(Error::invalid(format!(
            "{what} of {bytes} bytes is not a multiple of the page size ({PAGE_SIZE})"
        )));
    }
    Ok(bytes / PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1 TiB").unwrap(), 1 << 40);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        // decimal fractions of a unit, when they are whole bytes
        assert_eq!(parse_size("1.5MiB").unwrap(), 3 << 19);
        assert_eq!(parse_size("0.25 GiB").unwrap(), 1 << 28);
        assert_eq!(parse_size("2.0KiB").unwrap(), 2048);
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        assert!(parse_size("lots").unwrap_err().to_string().contains("cannot parse"));
        assert!(parse_size("5 parsecs").unwrap_err().to_string().contains("unknown unit"));
        assert!(parse_size("-4096").is_err());
        assert!(parse_size("1.1B").unwrap_err().to_string().contains("not a whole number of bytes"));
        assert!(parse_size("1.2.3MiB").unwrap_err().to_string().contains("cannot parse"));
        assert!(parse_size(".5MiB").unwrap_err().to_string().contains("cannot parse"));
        let e = parse_size("125MB").unwrap_err().to_string();
        assert!(e.contains("MB means 10^6 bytes") && e.contains("write 125MiB"), "{e}");
        assert!(parse_size("99999999999PiB").unwrap_err().to_string().contains("too large"));
        assert!(check_pages("memory", 0).is_err());
        assert!(check_pages("memory", 4097).unwrap_err().to_string().contains("page size"));
        assert_eq!(check_pages("memory", 8192).unwrap(), 2);
    }
}
