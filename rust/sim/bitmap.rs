//! A fixed-size bitmap (QEMU's dirty, sent and received bitmaps), one bit per guest page.

use serde::{Deserialize, Serialize};

/// A bitmap of `len` bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Bitmap {
    words: Vec<u64>,
    len: u64,
    ones: u64,
}

impl Bitmap {
    pub fn new(len: u64) -> Bitmap {
        Bitmap { words: vec![0; len.div_ceil(64) as usize], len, ones: 0 }
    }

    /// Whether the words hold `len` bits (none set beyond) and `ones` counts the set ones.
    pub fn check(&self) -> Result<(), String> {
        let ones: u64 = self.words.iter().map(|w| w.count_ones() as u64).sum();
        let beyond = self.words.last().map_or(0, |w| w.checked_shr((self.len % 64) as u32).unwrap_or(0));
        if self.words.len() as u64 != self.len.div_ceil(64) || ones != self.ones || (self.len % 64 != 0 && beyond != 0)
        {
            return Err(format!(
                "a bitmap of {} bits has {} words with {ones} bits set, counted {}",
                self.len,
                self.words.len(),
                self.ones
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bits set.
    pub fn count(&self) -> u64 {
        self.ones
    }

    #[inline]
    pub fn test(&self, i: u64) -> bool {
        self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Set bit `i`; returns its old value.
    ///
    /// Written with a branch on purpose: the branch-free `ones += !old as u64` form is
    /// miscompiled by rustc 1.95 at opt-level 3 (the count update is lost when the call sits
    /// inside `assert!(!b.set(i))`); the unit test below catches it in `cargo test --release`.
    #[inline]
    pub fn set(&mut self, i: u64) -> bool {
        let mask = 1u64 << (i % 64);
        let w = &mut self.words[(i / 64) as usize];
        let old = *w & mask != 0;
        if !old {
            *w |= mask;
            self.ones += 1;
        }
        old
    }

    /// Clear bit `i`; returns its old value.
    #[inline]
    pub fn clear(&mut self, i: u64) -> bool {
        let mask = 1u64 << (i % 64);
        let w = &mut self.words[(i / 64) as usize];
        let old = *w & mask != 0;
        if old {
            *w &= !mask;
            self.ones -= 1;
        }
        old
    }

    pub fn set_all(&mut self) {
        for w in &mut self.words {
            *w = !0;
        }
        let extra = self.words.len() as u64 * 64 - self.len;
        if extra > 0 {
            if let Some(last) = self.words.last_mut() {
                *last >>= extra;
            }
        }
        self.ones = self.len;
    }

    /// The first set bit at or after `from` (wrapping is the caller's business).
    pub fn next_set(&self, from: u64) -> Option<u64> {
        if from >= self.len {
            return None;
        }
        let mut wi = (from / 64) as usize;
        let mut w = self.words[wi] & (!0u64 << (from % 64));
        loop {
            if w != 0 {
                let i = wi as u64 * 64 + w.trailing_zeros() as u64;
                return if i < self.len { Some(i) } else { None };
            }
            wi += 1;
            if wi >= self.words.len() {
                return None;
            }
            w = self.words[wi];
        }
    }

    /// Runs of set bits as (start, len), in order.
    pub fn runs(&self) -> Vec<(u64, u64)> {
        self.runs_iter().collect()
    }

    /// Runs of set bits as (start, len), in order, without collecting them (a dirty bitmap
    /// of a large guest has tens of millions).
    pub fn runs_iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let s = self.next_set(i)?;
            let mut e = s;
            while e < self.len && self.test(e) {
                e += 1;
            }
            i = e;
            Some((s, e - s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_count_and_scan() {
        let mut b = Bitmap::new(130);
        assert!(!b.set(3));
        assert!(b.set(3));
        b.set(64);
        b.set(129);
        assert_eq!(b.count(), 3);
        assert_eq!(b.next_set(4), Some(64));
        assert_eq!(b.next_set(65), Some(129));
        assert!(b.clear(64));
        assert_eq!(b.count(), 2);
        b.set_all();
        assert_eq!(b.count(), 130);
        assert_eq!(b.runs(), vec![(0, 130)]);
        assert_eq!(b.next_set(130), None);
    }
}
