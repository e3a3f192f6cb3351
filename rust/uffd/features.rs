//! `UFFD_FEATURE_*` names (include/uapi/linux/userfaultfd.h) to the mask UFFDIO_API takes: the
//! one parser behind `Process.userfaultfd(features=...)` and the crosscheck scenarios.

use crate::error::{Error, Result};
use crate::profile::uffd_features::NAMES;

/// The mask of `names`: each a feature name (case-insensitive, with or without
/// `UFFD_FEATURE_`), or `BIT<n>` (n in 0..64) for a raw bit. A raw bit may name a feature no
/// kernel has: the mask is what a program passes to UFFDIO_API, and it is `userfaultfd_api`
/// (fs/userfaultfd.c) that refuses bits outside `UFFD_API_FEATURES` with EINVAL, as the model's
/// [`Kernel::uffdio_api`](crate::Kernel::uffdio_api) does. An unknown name is an error here.
pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<u64> {
    let mut bits = 0;
    for n in names {
        let n = n.as_ref();
        let t = n.trim().to_ascii_uppercase();
        let t = t.strip_prefix("UFFD_FEATURE_").unwrap_or(&t);
        if let Some(k) = t.strip_prefix("BIT").filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())) {
            match k.parse::<u32>() {
                Ok(b) if b < 64 => bits |= 1u64 << b,
                _ => {
                    return Err(Error::invalid(format!(
                        "userfaultfd feature {n:?} names bit {k}, but the features are a 64-bit mask (BIT0 to BIT63)"
                    )));
                }
            }
        } else if let Some((_, b)) = NAMES.iter().find(|(k, _)| *k == t) {
            bits |= b;
        } else {
            let known: Vec<&str> = NAMES.iter().map(|(k, _)| *k).collect();
            return Err(Error::invalid(format!(
                "unknown userfaultfd feature {n:?}; known: {} (or BIT<n> for a raw bit)",
                known.join(", ")
            )));
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::profile::uffd_features as f;
    use crate::testutil::kernel;
    use crate::uffd::ioctl::UFFD_API;

    #[test]
    fn names_with_or_without_prefix_and_raw_bits_make_the_mask() {
        assert_eq!(parse(&["EVENT_FORK", "uffd_feature_sigbus"]).unwrap(), f::EVENT_FORK | f::SIGBUS);
        assert_eq!(parse(&["BIT1"]).unwrap(), f::EVENT_FORK);
        assert_eq!(parse(&["BIT63"]).unwrap(), 1 << 63);
        assert_eq!(parse::<&str>(&[]).unwrap(), 0);
    }

    #[test]
    fn unknown_names_and_bits_past_63_are_refused_with_what_is_known() {
        let e = parse(&["NOPE"]).unwrap_err().to_string();
        assert!(e.contains("unknown userfaultfd feature") && e.contains("EVENT_FORK"), "{e}");
        assert!(parse(&["BIT64"]).unwrap_err().to_string().contains("BIT0 to BIT63"));
    }

    /// `userfaultfd_api` (fs/userfaultfd.c, v4.18 and v6.12): `features & ~UFFD_API_FEATURES`
    /// is -EINVAL; bit 63 is in no release's UFFD_API_FEATURES.
    #[test]
    fn uffdio_api_refuses_a_raw_bit_no_kernel_offers() {
        for p in ["4.18", "6.12"] {
            let mut k = kernel(p);
            let pid = k.spawn("m", false).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            let e = k.uffdio_api(u, UFFD_API, parse(&["BIT63"]).unwrap()).unwrap_err();
            assert!(matches!(e, crate::Error::Errno { errno: crate::Errno::EINVAL, .. }), "{p}: {e:?}");
        }
    }
}
