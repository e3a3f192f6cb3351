//! The s390 KVM guest: a guest kernel's page allocator with the CMMA hints of
//! arch/s390/mm/page-states.c (`arch_alloc_page` → ESSA SET_STABLE or SET_STABLE_NODAT,
//! `arch_free_page` → ESSA SET_UNUSED), and a deterministic workload of vCPUs that allocate,
//! free, read and write guest pages.
//!
//! The guest remembers the last value it wrote to every page it uses, so a read that returns
//! something else is data loss the guest would see. A page it freed holds nothing it needs;
//! reallocating it, the guest initializes it (as `clear_page` or the new owner would).
//!
//! Simplification: guest pages are picked from the free pool at random (the buddy allocator's
//! order is not modelled).

use crate::error::{Error, Result};
use crate::sim::rng::Rng;
use crate::sim::workload::{Pattern, Sampler};
use serde::{Deserialize, Serialize};

/// Which pages the guest frees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FreePolicy {
    /// Short-lived allocations: every page the workload allocates is freed again
    /// `lifetime` guest operations later (a buffer, an anon page of a short process), so it is
    /// recently used when freed. Pages in use at boot stay in use.
    Recent { lifetime: u64 },
    /// Any used page, chosen at random (page cache the guest drops, long-lived memory freed),
    /// often one the host has aged or swapped out.
    Random,
}

impl FreePolicy {
    pub fn parse(s: &str) -> Result<FreePolicy> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        match parts[0] {
            "random" => Ok(FreePolicy::Random),
            "recent" => {
                let lifetime = match parts.get(1) {
                    Some(x) => x
                        .parse::<u64>()
                        .map_err(|_| Error::invalid(format!("bad lifetime {x:?} in free policy {s:?}")))?,
                    None => 500,
                };
                if lifetime == 0 {
                    return Err(Error::invalid("the lifetime of recent frees must be positive"));
                }
                Ok(FreePolicy::Recent { lifetime })
            }
            other => {
                Err(Error::invalid(format!("unknown free policy {other:?}; known: \"recent[:lifetime]\", \"random\"")))
            }
        }
    }
}

/// The guest's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// Guest memory in pages.
    pub pages: u64,
    pub vcpus: u32,
    /// Fraction of guest pages in use when the migration starts (the rest are free, UNUSED).
    pub used_fraction: f64,
    /// Access pattern over the used pages.
    pub pattern: Pattern,
    /// Fraction of accesses that are writes.
    pub write_fraction: f64,
    /// Fraction of operations that allocate a page (as many free one): page turnover.
    pub turnover: f64,
    /// Which pages the guest frees.
    pub free_policy: FreePolicy,
    /// CMMA: the guest issues ESSA hints (`cmma=on`, the default); off, it never does.
    pub cmma: bool,
    /// Allocate with ESSA_SET_STABLE_NODAT (facility 147) instead of SET_STABLE.
    pub nodat: bool,
    /// Fraction of frees that the guest also releases with DIAG 0x10 (the cmm driver does).
    pub diag10: f64,
    /// Simulated time between two operations of one vCPU, nanoseconds.
    pub op_interval_ns: u64,
}

impl Default for GuestConfig {
    fn default() -> Self {
        GuestConfig {
            pages: 65536,
            vcpus: 2,
            used_fraction: 0.6,
            pattern: Pattern::Zipf { s: 0.9 },
            write_fraction: 0.3,
            turnover: 0.05,
            free_policy: FreePolicy::Recent { lifetime: 500 },
            cmma: true,
            nodat: false,
            diag10: 0.0,
            op_interval_ns: 5_000,
        }
    }
}

impl GuestConfig {
    pub fn validate(&self) -> Result<()> {
        if self.pages < 16 {
            return Err(Error::invalid(format!("guest memory of {} pages is too small (at least 16)", self.pages)));
        }
        self.pattern.validate()?;
        if self.pages > u32::MAX as u64 {
            return Err(Error::invalid("guest memory is too large for the model (at most 16 TiB)"));
        }
        if self.vcpus == 0 || self.vcpus > 64 {
            return Err(Error::invalid(format!("vcpus must be 1..64, got {}", self.vcpus)));
        }
        for (n, v) in [
            ("used_fraction", self.used_fraction),
            ("write_fraction", self.write_fraction),
            ("turnover", self.turnover),
            ("diag10", self.diag10),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(format!("{n} must be in [0, 1], got {v}")));
            }
        }
        if self.turnover > 0.5 {
            return Err(Error::invalid(format!(
                "turnover must be at most 0.5 (frees + allocations), got {}",
                self.turnover
            )));
        }
        if self.op_interval_ns == 0 {
            return Err(Error::invalid("op_interval_ns must be positive"));
        }
        Ok(())
    }
}

/// One operation of the guest on one of its pages (guest frame number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GuestOp {
    /// `arch_alloc_page` (ESSA SET_STABLE or SET_STABLE_NODAT) then the first write of `value`.
    Alloc {
        gfn: u32,
        value: u64,
    },
    /// `arch_free_page` (ESSA SET_UNUSED), and DIAG 0x10 of the page if `diag10`.
    Free {
        gfn: u32,
        diag10: bool,
    },
    Read {
        gfn: u32,
    },
    Write {
        gfn: u32,
        value: u64,
    },
}

/// The guest's memory and workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Guest {
    pub cfg: GuestConfig,
    free: Vec<u32>,
    used: Vec<u32>,
    /// Index of a used gfn in `used` (u32::MAX when free).
    pos: Vec<u32>,
    /// The value the guest last wrote to each used page, stored as its low 32 bits (see
    /// [`GuestValue`]): 4 bytes per guest page instead of 8. Snapshots store the full values.
    #[serde(with = "expected_values")]
    expected: Vec<u32>,
    sampler: Sampler,
    rng: Rng,
    writes: u64,
    /// Operations so far, per vCPU.
    ops: Vec<u64>,
    /// Short-lived allocations waiting for their free, per vCPU: (due operation, gfn). A vCPU
    /// frees what it allocated, counting its own operations (a blocked vCPU frees nothing).
    due: Vec<std::collections::VecDeque<(u64, u32)>>,
}

impl Guest {
    /// A guest whose first `used_fraction` of pages (spread at random) are in use with a value
    /// written, the rest free.
    pub fn new(cfg: GuestConfig, rng: Rng) -> Result<Guest> {
        cfg.validate()?;
        let n = cfg.pages;
        let mut rng = rng;
        let mut g = Guest {
            sampler: Sampler::new(cfg.pattern.clone(), 0),
            free: Vec::new(),
            used: Vec::new(),
            pos: vec![u32::MAX; n as usize],
            expected: vec![0; n as usize],
            rng: rng.fork(0x6775),
            writes: 0,
            ops: vec![0; cfg.vcpus as usize],
            due: vec![Default::default(); cfg.vcpus as usize],
            cfg,
        };
        for gfn in 0..n as u32 {
            if rng.chance(g.cfg.used_fraction) {
                g.pos[gfn as usize] = g.used.len() as u32;
                g.used.push(gfn);
                let v = g.next_value(gfn);
                g.set_expected(gfn, v);
            } else {
                g.free.push(gfn);
            }
        }
        g.sampler.resize(g.used.len() as u64);
        Ok(g)
    }

    fn next_value(&mut self, gfn: u32) -> u64 {
        self.writes += 1;
        ((gfn as u64) << 32) | (self.writes & 0xffff_ffff) | 1
    }

    fn set_expected(&mut self, gfn: u32, value: u64) {
        self.expected[gfn as usize] = GuestValue::of(gfn, value).map_or(0, |v| v.0);
    }

    pub fn used_pages(&self) -> &[u32] {
        &self.used
    }

    pub fn free_pages(&self) -> &[u32] {
        &self.free
    }

    pub fn is_used(&self, gfn: u32) -> bool {
        self.pos[gfn as usize] != u32::MAX
    }

    /// The value the guest expects in a used page.
    pub fn expected(&self, gfn: u32) -> u64 {
        GuestValue(self.expected[gfn as usize]).value(gfn)
    }

    fn take_used(&mut self, gfn: u32) {
        let i = self.pos[gfn as usize] as usize;
        let last = *self.used.last().expect("used");
        self.used.swap_remove(i);
        if last != gfn {
            self.pos[last as usize] = i as u32;
        }
        self.pos[gfn as usize] = u32::MAX;
        self.free.push(gfn);
        self.sampler.resize(self.used.len() as u64);
    }

    fn give_used(&mut self, free_idx: usize) -> u32 {
        let gfn = self.free.swap_remove(free_idx);
        self.pos[gfn as usize] = self.used.len() as u32;
        self.used.push(gfn);
        self.sampler.resize(self.used.len() as u64);
        gfn
    }

    /// The next operation of vCPU `vcpu` (the guest's choice, from its RNG).
    pub fn next_op(&mut self, vcpu: u32) -> GuestOp {
        let v = vcpu as usize % self.ops.len();
        self.ops[v] += 1;
        if let Some(&(due, gfn)) = self.due[v].front() {
            if due <= self.ops[v] {
                self.due[v].pop_front();
                self.take_used(gfn);
                return self.free_op(gfn);
            }
        }
        let r = self.rng.unit();
        let t = self.cfg.turnover;
        if self.cfg.free_policy == FreePolicy::Random {
            let min_used = (self.cfg.pages as f64 * self.cfg.used_fraction * 0.5) as usize;
            if r < t && self.used.len() > min_used.max(1) {
                let gfn = self.used[self.rng.below(self.used.len() as u64) as usize];
                self.take_used(gfn);
                return self.free_op(gfn);
            }
        }
        if (r >= 1.0 - t || self.used.is_empty()) && !self.free.is_empty() {
            return self.alloc_op(v);
        }
        if self.used.is_empty() {
            return GuestOp::Read { gfn: 0 };
        }
        let gfn = self.used[self.sampler.next(&mut self.rng) as usize];
        if self.rng.chance(self.cfg.write_fraction) {
            let value = self.next_value(gfn);
            self.set_expected(gfn, value);
            GuestOp::Write { gfn, value }
        } else {
            GuestOp::Read { gfn }
        }
    }

    fn alloc_op(&mut self, v: usize) -> GuestOp {
        let i = self.rng.below(self.free.len() as u64) as usize;
        let gfn = self.give_used(i);
        let value = self.next_value(gfn);
        self.set_expected(gfn, value);
        if let FreePolicy::Recent { lifetime } = self.cfg.free_policy {
            self.due[v].push_back((self.ops[v] + lifetime, gfn));
        }
        GuestOp::Alloc { gfn, value }
    }

    fn free_op(&mut self, gfn: u32) -> GuestOp {
        let diag10 = self.cfg.diag10 > 0.0 && self.rng.chance(self.cfg.diag10);
        GuestOp::Free { gfn, diag10 }
    }

    /// The ESSA orc of `arch_alloc_page`.
    pub fn alloc_orc(&self) -> u32 {
        if self.cfg.nodat {
            crate::arch::s390::essa::ESSA_SET_STABLE_NODAT
        } else {
            crate::arch::s390::essa::ESSA_SET_STABLE
        }
    }

    /// Check a completed read: Some(expected) when the guest sees wrong data.
    pub fn check_read(&self, gfn: u32, got: u64) -> Option<u64> {
        let want = self.expected(gfn);
        if self.is_used(gfn) && got != want { Some(want) } else { None }
    }

    /// Check the guest's pools: its configuration is valid, every page is used (at its index in
    /// `used`) or free, each vCPU has its counters, frees due are of used pages.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.cfg.validate().map_err(|e| e.to_string())?;
        let n = self.cfg.pages as usize;
        let vcpus = self.cfg.vcpus as usize;
        if self.pos.len() != n || self.expected.len() != n || self.ops.len() != vcpus || self.due.len() != vcpus {
            return Err(format!("guest tables do not fit {n} pages and {vcpus} vCPUs"));
        }
        for (i, &gfn) in self.used.iter().enumerate() {
            if self.pos.get(gfn as usize) != Some(&(i as u32)) {
                return Err(format!("used guest page {gfn} is not at its place {i}"));
            }
        }
        let mut free = vec![false; n];
        for &gfn in &self.free {
            match free.get_mut(gfn as usize) {
                Some(f) if !*f && self.pos[gfn as usize] == u32::MAX => *f = true,
                _ => return Err(format!("free guest page {gfn} is beyond the guest, used or free twice")),
            }
        }
        if self.sampler.pattern() != &self.cfg.pattern {
            return Err("the guest's sampler draws another pattern than its configuration's".into());
        }
        if self.used.len() + self.free.len() != n || self.sampler.len() != self.used.len() as u64 {
            return Err(format!("{} used and {} free guest pages of {n}", self.used.len(), self.free.len()));
        }
        if let Some((_, gfn)) =
            self.due.iter().flatten().find(|(_, g)| self.pos.get(*g as usize).is_none_or(|p| *p == u32::MAX))
        {
            return Err(format!("a free is due for guest page {gfn}, which is not used"));
        }
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        (self.free.capacity() + self.used.capacity() + self.pos.capacity() + self.expected.capacity()) * 4
    }
}

/// A value the guest wrote: `(gfn << 32) | (write counter's low 32 bits) | 1`, so its high
/// half is the page's own number and only the low half needs storing; 0 is a page never
/// written (its low half is never 0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GuestValue(u32);

impl GuestValue {
    /// The stored form of `value` in page `gfn`, or None if it is not a value the guest could
    /// have written there (nor 0).
    fn of(gfn: u32, value: u64) -> Option<GuestValue> {
        let low = value as u32;
        match value {
            0 => Some(GuestValue(0)),
            v if v >> 32 == gfn as u64 && low & 1 == 1 => Some(GuestValue(low)),
            _ => None,
        }
    }

    fn value(self, gfn: u32) -> u64 {
        if self.0 == 0 { 0 } else { ((gfn as u64) << 32) | self.0 as u64 }
    }
}

/// Snapshots store the guest's expected values in full (as `Vec<u64>`, the layout of format 8);
/// reading refuses a value the guest could not have written to its page.
mod expected_values {
    use super::GuestValue;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().enumerate().map(|(gfn, &x)| GuestValue(x).value(gfn as u32)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let full = Vec::<u64>::deserialize(d)?;
        full.iter()
            .enumerate()
            .map(|(gfn, &v)| {
                u32::try_from(gfn).ok().and_then(|g| GuestValue::of(g, v)).map(|x| x.0).ok_or_else(|| {
                    D::Error::custom(format!("guest page {gfn} expects {v:#x}, not a value of that page"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops_and_pools_stay_consistent() {
        let cfg = GuestConfig { pages: 1000, turnover: 0.2, free_policy: FreePolicy::Random, ..Default::default() };
        let mut a = Guest::new(cfg.clone(), Rng::new(5)).unwrap();
        let mut b = Guest::new(cfg, Rng::new(5)).unwrap();
        for _ in 0..10_000 {
            let (x, y) = (a.next_op(0), b.next_op(0));
            assert_eq!(x, y);
            match x {
                GuestOp::Alloc { gfn, .. } | GuestOp::Read { gfn } | GuestOp::Write { gfn, .. } => {
                    assert!(a.is_used(gfn))
                }
                GuestOp::Free { gfn, .. } => assert!(!a.is_used(gfn)),
            }
        }
        assert_eq!(a.used_pages().len() + a.free_pages().len(), 1000);
    }

    #[test]
    fn recent_frees_come_lifetime_ops_after_their_alloc() {
        let cfg = GuestConfig {
            pages: 1000,
            turnover: 0.1,
            free_policy: FreePolicy::Recent { lifetime: 50 },
            ..Default::default()
        };
        let mut g = Guest::new(cfg, Rng::new(9)).unwrap();
        let mut born = std::collections::BTreeMap::new();
        for op in 1..=20_000u64 {
            match g.next_op(0) {
                GuestOp::Alloc { gfn, .. } => {
                    born.insert(gfn, op);
                }
                GuestOp::Free { gfn, .. } => assert_eq!(op - born[&gfn], 50),
                _ => {}
            }
        }
        assert!(FreePolicy::parse("recent:0").is_err());
        assert_eq!(FreePolicy::parse("recent").unwrap(), FreePolicy::Recent { lifetime: 500 });
    }

    #[test]
    fn bad_config_is_rejected() {
        let bad = GuestConfig { vcpus: 0, ..Default::default() };
        assert!(Guest::new(bad, Rng::new(1)).is_err());
        let bad = GuestConfig { turnover: 0.9, ..Default::default() };
        assert!(Guest::new(bad, Rng::new(1)).unwrap_err().to_string().contains("turnover"));
    }

    /// The guest keeps 4 bytes per page of the value it expects (the high half is the page's
    /// number), yet a read of a page returns the full value it wrote, and a snapshot stores the
    /// full values: the layout of the 8-byte table, so snapshot files do not change.
    #[test]
    fn expected_values_keep_their_full_value_in_reads_and_snapshots() {
        let cfg = GuestConfig { pages: 2000, turnover: 0.2, ..Default::default() };
        let mut g = Guest::new(cfg, Rng::new(3)).unwrap();
        let mut written = std::collections::BTreeMap::new();
        for _ in 0..5_000 {
            if let GuestOp::Write { gfn, value } | GuestOp::Alloc { gfn, value } = g.next_op(1) {
                written.insert(gfn, value);
            }
        }
        for (&gfn, &v) in &written {
            if g.is_used(gfn) {
                assert_eq!(g.expected(gfn), v);
                assert_eq!(g.check_read(gfn, v), None);
                assert_eq!(g.check_read(gfn, v ^ (1 << 40)), Some(v), "a wrong high half is lost data");
            }
        }
        let full: Vec<u64> = (0..2000).map(|gfn| g.expected(gfn)).collect();
        let bytes = postcard::to_stdvec(&g).unwrap();
        let old_layout = postcard::to_stdvec(&full).unwrap();
        assert!(bytes.windows(old_layout.len()).any(|w| w == old_layout), "stored as Vec<u64>");
        let back: Guest = postcard::from_bytes(&bytes).unwrap();
        assert!((0..2000).all(|gfn| back.expected(gfn) == g.expected(gfn)));
        assert_eq!(g.heap_bytes() - (g.free.capacity() + g.used.capacity() + g.pos.capacity()) * 4, 2000 * 4);
    }

    /// A snapshot whose guest expects a value in a page that no write of the guest could have
    /// put there (another page's number in the high half, or an even low half) is refused.
    #[test]
    fn a_snapshot_value_the_guest_could_not_have_written_is_refused() {
        let good = postcard::to_stdvec(&vec![0u64, (1 << 32) | 7]).unwrap();
        let mut de = postcard::Deserializer::from_bytes(&good);
        assert_eq!(expected_values::deserialize(&mut de).unwrap(), vec![0, 7]);
        for bad in [vec![0u64, (2 << 32) | 7], vec![0u64, (1 << 32) | 6], vec![(3u64 << 32) | 1]] {
            let bytes = postcard::to_stdvec(&bad).unwrap();
            let mut de = postcard::Deserializer::from_bytes(&bytes);
            assert!(expected_values::deserialize(&mut de).is_err(), "{bad:x?}");
        }
    }
}
