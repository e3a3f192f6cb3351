//! A fast, fixed, non-cryptographic 64-bit mixing of words: the hash the explorer identifies
//! states by ([`crate::explore::State::key`]) and the fingerprints tables keep of their
//! contents so that hashing a state does not walk them ([`crate::arch::pgtable`]).
//!
//! One step is a folded 64×64→128-bit multiply (the mixing of foldhash and aHash's fallback).
//! Not keyed: the states come from the model, not from an adversary, and a fixed hash keeps a
//! search deterministic.
//!
//! Identity by a 64-bit hash: among `n` distinct states the chance that any two share a key is
//! at most `n² / 2^65` (about 10⁻⁶ at 6 million states); a table's fingerprint stands for its
//! contents in the state hash, which adds one more 64-bit comparison to that bound per table.

/// The multiplier (2^64 / φ).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// The initial value of a hash.
pub const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Mix the word `w` into the hash `h`.
#[inline(always)]
pub fn mix(h: u64, w: u64) -> u64 {
    let m = ((h ^ w) as u128).wrapping_mul(MUL as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

/// The hash of `words`, where runs of words equal to `none` are mixed as their length (a
/// page table of a few mapped pages is mostly `pte_none`, an upper table mostly 0); a block of
/// 8 `none` words is skipped at once.
pub fn words<T: Copy + Into<u64> + PartialEq>(mut h: u64, words: &[T], none: T) -> u64 {
    /// Tags the length of a run of `none` words.
    const RUN: u64 = 0xb7e1_5162_8aed_2a6b;
    const BLOCK: usize = 8;
    let mut run = 0u64;
    for block in words.chunks(BLOCK) {
        if block.len() == BLOCK && block.iter().fold(true, |all, &w| all & (w == none)) {
            run += BLOCK as u64;
            continue;
        }
        for &w in block {
            if w == none {
                run += 1;
                continue;
            }
            if run > 0 {
                h = mix(h, RUN ^ run);
                run = 0;
            }
            h = mix(h, w.into());
        }
    }
    if run > 0 {
        h = mix(h, RUN ^ run);
    }
    mix(h, words.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn runs_of_none_words_count_by_length() {
        let a = [7u64, 0x400, 0x400, 9];
        let b = [7u64, 0x400, 9, 0x400];
        let c = [7u64, 0x400, 0x400, 0x400, 9];
        let d = [7u64, 0x400, 0x400, 9, 0x400];
        let hs: HashSet<u64> = [&a[..], &b[..], &c[..], &d[..]].iter().map(|w| words(SEED, w, 0x400)).collect();
        assert_eq!(hs.len(), 4, "a run's length and place, and the trailing run, count");
        // runs across the blocks skipped at once
        let mut long = vec![0x400u64; 40];
        let base = words(SEED, &long, 0x400);
        long[17] = 1;
        let one = words(SEED, &long, 0x400);
        long[17] = 0x400;
        long[18] = 1;
        assert!(base != one && one != words(SEED, &long, 0x400));
    }
}
