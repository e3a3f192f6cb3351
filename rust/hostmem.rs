//! What the model costs the host, and the check that the host can pay it before the model
//! allocates: a size the API accepts (memory and swap up to 8 TiB) must never abort the process
//! with "memory allocation failed".
//!
//! A kernel allocates its per-page state up front: one [`Frame`] per page of memory
//! ([`BYTES_PER_PAGE`]) and, per page of swap, the swap map byte, the swap cache's pfn, the
//! slot's data and the workingset shadow ([`BYTES_PER_SWAP_PAGE`]). Page tables, the LRU lists
//! and the event log grow with use, each within the model's own limits. [`reserve`] asks the
//! allocator for the whole amount fallibly first (`try_reserve`): if the host (or the process's
//! `RLIMIT_AS`) cannot provide it, the request is refused with an error that names the host
//! memory it needs, and nothing is allocated.

use crate::error::{Error, Result};
use crate::mm::page::Frame;

/// Host bytes per page of modelled memory: its `struct page`.
pub const BYTES_PER_PAGE: u64 = std::mem::size_of::<Frame>() as u64;

/// Host bytes per page of modelled swap: `swap_map` (u8), the swap cache (u32), the slot's
/// data (u64) and its shadow (u32).
pub const BYTES_PER_SWAP_PAGE: u64 = 1 + 4 + 8 + 4;

/// Host bytes a kernel of `pages` pages of memory and `swap_pages` pages of swap allocates up
/// front.
pub fn kernel_cost(pages: u64, swap_pages: u64) -> u64 {
    pages.saturating_mul(BYTES_PER_PAGE).saturating_add(swap_pages.saturating_mul(BYTES_PER_SWAP_PAGE))
}

/// A size in bytes as a person reads it ("12 GiB").
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut i = 0;
    while i + 1 < units.len() && bytes >= 1u64 << (10 * (i + 1)) {
        i += 1;
    }
    if i == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{:.1} {}", bytes as f64 / (1u64 << (10 * i)) as f64, units[i])
    }
}

/// Check that the host can allocate `bytes` for `what` (e.g. "a kernel with 1 TiB of memory"):
/// [`Error::InvalidArgument`] naming the host memory needed if it cannot.
pub fn reserve(what: &str, bytes: u64) -> Result<()> {
    let fail = || {
        Error::invalid(format!(
            "{what} needs {} of host memory up front ({BYTES_PER_PAGE} bytes per page of memory, \
             {BYTES_PER_SWAP_PAGE} per page of swap), more than this process can allocate: ask for less",
            human(bytes)
        ))
    };
    let n = usize::try_from(bytes).map_err(|_| fail())?;
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(n).map_err(|_| fail())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_request_is_an_error_naming_the_memory_it_needs() {
        let e = reserve("a kernel with 8 TiB of memory", kernel_cost(1 << 31, 0) << 20).unwrap_err().to_string();
        assert!(e.contains("needs") && e.contains("of host memory"), "{e}");
        reserve("a small kernel", kernel_cost(64, 64)).unwrap();
        assert_eq!(human(12 << 30), "12.0 GiB");
        assert_eq!(human(100), "100 bytes");
    }
}
