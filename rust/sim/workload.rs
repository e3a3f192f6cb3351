//! Access-pattern generators: uniform, Zipf, sequential scan and phased working sets. They
//! pick an index in `0..n` from the seeded [`Rng`], so the same seed gives the same accesses.

use super::rng::Rng;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// An access pattern over `n` items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pattern {
    /// Every item equally likely.
    Uniform,
    /// Zipf with exponent `s` (> 0, != 1 handled too): item k (0-based) has weight 1/(k+1)^s.
    Zipf { s: f64 },
    /// Items in order, wrapping around.
    Sequential,
    /// A working set of `fraction` of the items, uniform inside, that moves to another part of
    /// the items every `phase_len` draws.
    Phased { fraction: f64, phase_len: u64 },
}

impl Pattern {
    /// Parse `"uniform"`, `"zipf"` / `"zipf:1.2"`, `"sequential"`, `"phased"` /
    /// `"phased:0.1:100000"`.
    pub fn parse(s: &str) -> Result<Pattern> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let num = |i: usize, d: f64| -> Result<f64> {
            parts.get(i).map_or(Ok(d), |x| {
                x.parse::<f64>().map_err(|_| Error::invalid(format!("bad number {x:?} in pattern {s:?}")))
            })
        };
        let p = match parts[0] {
            "uniform" => Pattern::Uniform,
            "zipf" => Pattern::Zipf { s: num(1, 1.0)? },
            "sequential" | "seq" => Pattern::Sequential,
            "phased" => Pattern::Phased { fraction: num(1, 0.2)?, phase_len: num(2, 100_000.0)? as u64 },
            other => {
                return Err(Error::invalid(format!(
                    "unknown access pattern {other:?}; known: uniform, zipf[:s], sequential, phased[:fraction:phase_len]"
                )));
            }
        };
        p.validate()?;
        Ok(p)
    }

    /// Refuse parameters the samplers cannot draw from.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Pattern::Zipf { s } if !(s > 0.0 && s.is_finite()) => {
                Err(Error::invalid(format!("zipf exponent must be > 0, got {s}")))
            }
            Pattern::Phased { fraction, phase_len } if !(fraction > 0.0 && fraction <= 1.0) || phase_len == 0 => {
                Err(Error::invalid(format!(
                    "phased needs 0 < fraction <= 1 and phase_len > 0, got {fraction}, {phase_len}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A sampler of a [`Pattern`] over `n` items.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "SamplerFields")]
pub struct Sampler {
    pattern: Pattern,
    n: u64,
    draws: u64,
    /// Derived from `pattern` and `n`: a snapshot does not store it.
    #[serde(skip)]
    zipf: Option<Zipf>,
}

/// What a snapshot holds of a [`Sampler`]: the Zipf constants are derived again on restore,
/// not taken from the file (derived from other values, they cannot be checked, and a sampler
/// of wrong constants might never accept a draw).
#[derive(Deserialize)]
struct SamplerFields {
    pattern: Pattern,
    n: u64,
    draws: u64,
}

impl From<SamplerFields> for Sampler {
    fn from(f: SamplerFields) -> Sampler {
        Sampler { draws: f.draws, ..Sampler::new(f.pattern, f.n) }
    }
}

impl Sampler {
    pub fn new(pattern: Pattern, n: u64) -> Sampler {
        let zipf = match pattern {
            Pattern::Zipf { s } if n > 0 => Some(Zipf::new(n, s)),
            _ => None,
        };
        Sampler { pattern, n, draws: 0, zipf }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Change the number of items (the guest's used pages grow and shrink).
    pub fn resize(&mut self, n: u64) {
        if n != self.n {
            self.n = n;
            if let (Pattern::Zipf { s }, true) = (&self.pattern, n > 0) {
                self.zipf = Some(Zipf::new(n, *s));
            }
        }
    }

    /// The next index in `0..n` (n must be > 0).
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        let n = self.n.max(1);
        let d = self.draws;
        self.draws += 1;
        match &self.pattern {
            Pattern::Uniform => rng.below(n),
            Pattern::Zipf { .. } => self.zipf.as_ref().map_or(0, |z| z.sample(rng)).min(n - 1),
            Pattern::Sequential => d % n,
            Pattern::Phased { fraction, phase_len } => {
                let ws = ((n as f64 * fraction).ceil() as u64).clamp(1, n);
                let phase = d / phase_len;
                let start = (phase.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) % n;
                (start + rng.below(ws)) % n
            }
        }
    }
}

/// A thread's accesses over `pages` pages from `start`: the page from a [`Sampler`] of the
/// pattern (item k is the k-th page: for Zipf the first pages are the hottest), then a store
/// with probability `write_fraction`. Every access draws the same random numbers whatever the
/// write fraction, so that two runs of one seed touch the same pages. A store writes the
/// page's address (a content tag that names the page). Endless: take what you need.
#[derive(Clone, Debug)]
pub struct AccessStream {
    sampler: Sampler,
    rng: Rng,
    start: u64,
    write_fraction: f64,
}

impl AccessStream {
    pub fn new(pattern: Pattern, start: u64, pages: u64, write_fraction: f64, seed: u64) -> Result<AccessStream> {
        if pages == 0 {
            return Err(Error::invalid("an access stream needs at least one page"));
        }
        if start & 0xfff != 0 || start.checked_add(pages << 12).is_none() || pages >> 52 != 0 {
            return Err(Error::invalid(format!(
                "start {start:#x} must be page-aligned and {pages} pages from it must fit the address space"
            )));
        }
        if !(0.0..=1.0).contains(&write_fraction) {
            return Err(Error::invalid(format!("write_fraction must be in [0, 1], got {write_fraction}")));
        }
        Ok(AccessStream { sampler: Sampler::new(pattern, pages), rng: Rng::new(seed), start, write_fraction })
    }
}

impl Iterator for AccessStream {
    /// (address, store?, value stored)
    type Item = (u64, bool, u64);

    #[inline]
    fn next(&mut self) -> Option<(u64, bool, u64)> {
        let addr = self.start + (self.sampler.next(&mut self.rng) << 12);
        let write = self.rng.unit() < self.write_fraction;
        Some((addr, write, addr))
    }
}

/// Zipf sampling by rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", 1996): O(1) per draw, no table.
/// Its exp and log come from the pure-Rust `libm`, not the platform's C library (whose last bit
/// differs between implementations and would move a draw across an integer boundary): the
/// same seed samples the same pages on every machine.
#[derive(Clone, Debug)]
struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let nf = n as f64;
        let mut z = Zipf { n: nf, s, h_x1: 0.0, h_n: 0.0, cut: 0.0 };
        z.h_x1 = z.h(1.5) - 1.0;
        z.h_n = z.h(nf + 0.5);
        z.cut = 2.0 - z.h_inv(z.h(2.5) - z.hf(2.0));
        z
    }

    /// Density 1/x^s.
    fn hf(&self, x: f64) -> f64 {
        libm::exp(-self.s * libm::log(x))
    }

    /// The integral H(x) of hf.
    fn h(&self, x: f64) -> f64 {
        let lx = libm::log(x);
        helper_exp(lx * (1.0 - self.s)) * lx
    }

    fn h_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        libm::exp(helper_log(t) * x)
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.h_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h(k + 0.5) - self.hf(k) {
                return k as u64 - 1;
            }
        }
    }
}

/// (exp(x) - 1) / x, stable near 0.
fn helper_exp(x: f64) -> f64 {
    if x.abs() > 1e-8 { libm::expm1(x) / x } else { 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x)) }
}

/// ln(1 + x) / x, stable near 0.
fn helper_log(x: f64) -> f64 {
    if x.abs() > 1e-8 { libm::log1p(x) / x } else { 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let mut r = Rng::new(1);
        let mut s = Sampler::new(Pattern::parse("zipf:1.0").unwrap(), 1000);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            let k = s.next(&mut r) as usize;
            counts[k] += 1;
        }
        // item 0 about twice item 1 and ten times item 9 for s = 1
        let ratio01 = counts[0] as f64 / counts[1] as f64;
        let ratio09 = counts[0] as f64 / counts[9] as f64;
        assert!((1.7..2.3).contains(&ratio01), "{ratio01}");
        assert!((8.0..12.5).contains(&ratio09), "{ratio09}");
    }

    #[test]
    fn zipf_draws_for_every_valid_exponent() {
        for s in [1e-9, 0.5, 1.0, 50.0, 1e6, 1e300] {
            for n in [1u64, 2, 1000, 1 << 30] {
                let mut r = Rng::new(1);
                let mut smp = Sampler::new(Pattern::Zipf { s }, n);
                assert!((0..200).all(|_| smp.next(&mut r) < n), "s={s} n={n}");
            }
        }
        assert!(Pattern::Zipf { s: f64::NAN }.validate().is_err());
        assert!(Pattern::Zipf { s: f64::INFINITY }.validate().is_err());
    }

    #[test]
    fn sequential_wraps_and_phased_stays_in_its_window() {
        let mut r = Rng::new(2);
        let mut s = Sampler::new(Pattern::Sequential, 3);
        let v: Vec<u64> = (0..5).map(|_| s.next(&mut r)).collect();
        assert_eq!(v, vec![0, 1, 2, 0, 1]);
        let mut p = Sampler::new(Pattern::parse("phased:0.1:1000").unwrap(), 100);
        let first: std::collections::BTreeSet<u64> = (0..1000).map(|_| p.next(&mut r)).collect();
        assert!(first.len() <= 10);
    }

    #[test]
    fn an_access_stream_is_seeded_and_stays_in_its_pages() {
        let take = |wf: f64, seed: u64| -> Vec<(u64, bool, u64)> {
            AccessStream::new(Pattern::Uniform, 0x10000, 64, wf, seed).unwrap().take(2000).collect()
        };
        let a = take(0.25, 1);
        assert_eq!(a, take(0.25, 1));
        assert_ne!(a, take(0.25, 2));
        assert!(a.iter().all(|&(x, _, v)| (0x10000..0x10000 + (64 << 12)).contains(&x) && x & 0xfff == 0 && v == x));
        let writes = a.iter().filter(|x| x.1).count();
        assert!((400..600).contains(&writes), "{writes}");
        // the write fraction does not change which pages are touched
        let pages = |v: &[(u64, bool, u64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(pages(&a), pages(&take(0.9, 1)));
        assert!(take(0.0, 1).iter().all(|x| !x.1) && take(1.0, 1).iter().all(|x| x.1));
        assert!(AccessStream::new(Pattern::Uniform, 0x10000, 0, 0.1, 0).is_err());
        assert!(AccessStream::new(Pattern::Uniform, 0x10001, 4, 0.1, 0).is_err());
        assert!(AccessStream::new(Pattern::Uniform, 0x10000, 4, 1.5, 0).is_err());
    }

    #[test]
    fn bad_patterns_are_clear_errors() {
        assert!(Pattern::parse("gaussian").unwrap_err().to_string().contains("uniform"));
        assert!(Pattern::parse("zipf:-1").is_err());
        assert!(Pattern::parse("phased:2:10").is_err());
    }
}
