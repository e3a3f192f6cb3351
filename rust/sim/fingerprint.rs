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

/// A [`std::hash::Hasher`] of [`mix`] that packs integers narrower than a word into one word
/// before mixing it (a struct of 32-bit fields costs a mix per two fields): the fingerprint of
/// a chunk of frames ([`crate::sim::chunks`]). Injective per type, as the field widths come
/// from the type.
#[derive(Clone, Copy)]
pub struct WordHasher {
    h: u64,
    buf: u64,
    bits: u32,
}

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher { h: SEED, buf: 0, bits: 0 }
    }
}

impl WordHasher {
    #[inline(always)]
    fn flush(&mut self) {
        if self.bits > 0 {
            self.h = mix(self.h, self.buf);
            self.buf = 0;
            self.bits = 0;
        }
    }

    #[inline(always)]
    fn narrow(&mut self, v: u64, bits: u32) {
        if self.bits + bits > 64 {
            self.flush();
        }
        self.buf |= v << self.bits;
        self.bits += bits;
    }
}

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.flush();
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.h = mix(self.h, u64::from_le_bytes(b) ^ ((c.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.narrow(i as u64, 8);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.narrow(i as u64, 16);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.narrow(i as u64, 32);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.flush();
        self.h = mix(self.h, i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        let mut f = *self;
        f.flush();
        mix(f.h, 0x5851_f42d_4c95_7f2d)
    }
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
