//! A hint to the CPU's caches: start loading the cache lines of a value that the model will
//! read soon, without waiting for them. It changes no state and no result; only when the
//! lines arrive. The replay knows its requests ahead (the trace) and reclaim knows the pages it
//! isolated, so the PTE and the frame of a page can be on their way while the model works on
//! an earlier one (the kernel does the same with `prefetchw` on LRU lists, include/linux/
//! prefetch.h, and `prefetch_buddy` in mm/page_alloc.c).
//!
//! On x86_64 this is the SSE `prefetcht0` instruction (part of the x86_64 baseline, so always
//! there); elsewhere it does nothing. A prefetch never faults, whatever the address, and reads
//! nothing into the program: this is the one place the crate allows `unsafe` (the intrinsic
//! is declared `unsafe` only because it is a `target_feature` function).
#![allow(unsafe_code)]

/// Start loading the cache line that holds `p`.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` needs SSE, which every x86_64 CPU has (the target's baseline); it
    // never dereferences `p` for the program and never faults, whatever `p` points at.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Start loading every cache line of `*r` (its first and last byte: a value of up to 64
/// bytes that straddles two lines brings both).
#[inline(always)]
pub fn value<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    line(p);
    let n = std::mem::size_of::<T>();
    if n > 1 {
        line(p.wrapping_add(n - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetch_changes_nothing_it_points_at() {
        let v: Vec<u64> = (0..1024).collect();
        for x in &v {
            value(x);
        }
        // any address, even one past the end or null, is only a hint
        line(v.as_ptr().wrapping_add(1 << 20));
        line(std::ptr::null::<u8>());
        assert_eq!(v, (0..1024).collect::<Vec<u64>>());
    }
}
