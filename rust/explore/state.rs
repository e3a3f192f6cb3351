//! The explored state (the destination host, QEMU and the guest), the steps enabled in it, what
//! made a page missing, and what the predicates report.

use super::scenario::{GuestSteps, PageClass, Predicate, Scenario, Start, Step};
use crate::error::{Error, Result};
use crate::kernel::{Cost, Kernel};
use crate::mm::mmap::MapKind;
use crate::qemu::QemuVersion;
use crate::sim::fingerprint;
use crate::sim::log::{Ev, ttu_result};
use crate::vmscan::kswapd::KswapdMode;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// The hasher of [`State::key`]: [`fingerprint::mix`] per 8-byte word, several times faster
/// than SipHash on the kernel's tables, which the explorer hashes after every step. Integers
/// narrower than a word are packed into one word before it is mixed (a frame's fields, a flag),
/// and a run of zero words in a slice is mixed as its length. Both keep the encoding of a state
/// injective: the widths come from the state's types, so a packed word and the padding of a
/// word cut short decode one way. Words go to four lanes in turn, so that the multiplies of
/// consecutive words overlap; the lanes are mixed together at the end. Not keyed (see
/// [`fingerprint`]).
#[derive(Clone, Copy)]
pub(super) struct StateHasher {
    /// The lanes; the next word goes to `h[0]`, then the lanes rotate.
    h: [u64; 4],
    /// Narrow integers not mixed yet, and how many bits of `buf` they fill.
    buf: u64,
    bits: u32,
}

/// Tags the length of a run of zero words.
const ZERO_RUN: u64 = 0xb7e1_5162_8aed_2a6b;

impl Default for StateHasher {
    fn default() -> Self {
        let s = fingerprint::SEED;
        StateHasher { h: [s, s ^ 1, s ^ 2, s ^ 3], buf: 0, bits: 0 }
    }
}

impl StateHasher {
    #[inline(always)]
    fn mix(&mut self, w: u64) {
        let [a, b, c, d] = self.h;
        self.h = [b, c, d, fingerprint::mix(a, w)];
    }

    /// Mix the packed narrow integers, if any.
    #[inline(always)]
    fn flush(&mut self) {
        if self.bits > 0 {
            let w = self.buf;
            self.mix(w);
            self.buf = 0;
            self.bits = 0;
        }
    }

    /// Pack an integer of `bits` bits.
    #[inline(always)]
    fn narrow(&mut self, v: u64, bits: u32) {
        if self.bits + bits > 64 {
            self.flush();
        }
        self.buf |= v << self.bits;
        self.bits += bits;
    }

    /// A word of a byte slice ([`Hasher::write`]): a zero word counts in the run `zeros`; the
    /// run, if any, is mixed (as its length) before the next nonzero word.
    #[inline(always)]
    fn word_or_zero(&mut self, zeros: &mut u64, w: u64) {
        if w == 0 {
            *zeros += 1;
            return;
        }
        if *zeros > 0 {
            self.mix(ZERO_RUN ^ *zeros);
            *zeros = 0;
        }
        self.mix(w);
    }

    /// Mix a whole word (after the packed integers before it).
    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.flush();
        self.mix(w);
    }
}

impl Hasher for StateHasher {
    /// A run of zero words is mixed as its length (tagged): most of a state's bytes are the
    /// empty entries of its tables (free swap slots, unused page-table entries). Four zero
    /// words are skipped at once; the words mixed are the same as one word at a time.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        /// Words tested for zero at once.
        const BLOCK: usize = 4;
        self.flush();
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let mut zeros = 0u64;
        let mut blocks = bytes.chunks_exact(8 * BLOCK);
        for b in &mut blocks {
            let ws: [u64; BLOCK] = std::array::from_fn(|i| word(&b[8 * i..8 * i + 8]));
            if ws.iter().fold(0, |acc, &w| acc | w) == 0 {
                zeros += BLOCK as u64;
                continue;
            }
            for w in ws {
                self.word_or_zero(&mut zeros, w);
            }
        }
        let mut chunks = blocks.remainder().chunks_exact(8);
        for c in &mut chunks {
            self.word_or_zero(&mut zeros, word(c));
        }
        if zeros > 0 {
            self.mix(ZERO_RUN ^ zeros);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
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
        self.word(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    fn finish(&self) -> u64 {
        let mut f = *self;
        f.flush();
        let h = f.h.iter().fold(0x5851_f42d_4c95_7f2d, |h, &l| fingerprint::mix(h, l));
        fingerprint::mix(h, 0x5851_f42d_4c95_7f2d)
    }
}

/// A message of the explorer's migration stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Msg {
    CmmaDone,
    Discard(u32),
    Listen,
    Run,
    Page(u32),
    Eof,
}

/// The state of the destination, QEMU and the guest.
#[derive(Debug)]
pub struct State {
    pub(super) k: Kernel,
    pub(super) pid: u32,
    pub(super) base: u64,
    pub(super) uffd: Option<u32>,
    pub(super) stream: VecDeque<Msg>,
    /// Source: pages not yet sent.
    pub(super) unsent: Vec<bool>,
    /// Return path: requested pages.
    pub(super) requests: VecDeque<u32>,
    pub(super) received: Vec<bool>,
    /// QEMU 5.2: pages with a request in flight.
    pub(super) requested: Vec<bool>,
    pub(super) running: bool,
    pub(super) done: bool,
    /// Guest: page in use, and the value it expects.
    pub(super) used: Vec<bool>,
    pub(super) expected: Vec<u64>,
    /// The value a page had when the source sent it.
    pub(super) content: Vec<u64>,
    /// vCPU parked on a userfault with (step, gfn).
    pub(super) blocked: Vec<Option<(Step, u32)>>,
    pub(super) writes: u64,
    /// Pages with a guest write parked on a userfault.
    pub(super) inflight: Vec<u32>,
    pub(super) qemu: QemuVersion,
    pub(super) guest_steps: GuestSteps,
}

crate::sim::clone_fields::clone_fields!(State {
    k,
    pid,
    base,
    uffd,
    stream,
    unsent,
    requests,
    received,
    requested,
    running,
    done,
    used,
    expected,
    content,
    blocked,
    writes,
    inflight,
    qemu,
    guest_steps
});

/// A violated predicate with the step that violated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub predicate: Predicate,
    pub message: String,
    /// For a userfault on a received page: the kernel path that made the page missing.
    pub cause: Cause,
}

/// The kernel path that made a received page missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// `try_to_unmap_one` / `try_to_migrate_one` took the `pte_unused` branch.
    PteUnusedDrop,
    /// `__gmap_zap` → `ptep_zap_unused` cleared a swap PTE (the CBRL).
    CbrlZap,
    /// DIAG 0x10 → `gmap_discard`.
    Diag10,
    /// Enabling storage keys zapped a zero-page mapping.
    ZeroPageZap,
    /// Something else (or not applicable).
    Other,
}

impl Cause {
    pub const ALL: [Cause; 5] = [Cause::PteUnusedDrop, Cause::CbrlZap, Cause::Diag10, Cause::ZeroPageZap, Cause::Other];

    /// The table of causes: the identifier (`name`, the key Python uses) and the description.
    pub const TABLE: [(Cause, &'static str, &'static str); 5] = [
        (Cause::PteUnusedDrop, "pte_unused", "pte_unused drop in try_to_unmap_one"),
        (Cause::CbrlZap, "cbrl", "CBRL zap of a swapped UNUSED page (__gmap_zap → ptep_zap_unused)"),
        (Cause::Diag10, "diag10", "DIAG 0x10 (gmap_discard)"),
        (Cause::ZeroPageZap, "zero_page", "zero page zapped when storage keys are enabled"),
        (Cause::Other, "other", "other"),
    ];

    fn row(self) -> (Cause, &'static str, &'static str) {
        Cause::TABLE[self as usize]
    }

    /// The identifier: `"pte_unused"`, `"cbrl"`, `"diag10"`, `"zero_page"`, `"other"`.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The cause in words.
    pub fn description(self) -> &'static str {
        self.row().2
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.k.state_hash(h);
        self.uffd.hash(h);
        self.stream.hash(h);
        self.unsent.hash(h);
        self.requests.hash(h);
        self.received.hash(h);
        self.requested.hash(h);
        self.running.hash(h);
        self.done.hash(h);
        self.used.hash(h);
        self.expected.hash(h);
        self.blocked.hash(h);
        self.inflight.hash(h);
    }
}

impl State {
    /// The destination at the switchover of `sc`.
    pub fn new(sc: &Scenario) -> Result<State> {
        if sc.pages.is_empty() || sc.pages.len() > 16 {
            return Err(Error::invalid("the explorer's scenario needs 1 to 16 guest pages"));
        }
        if sc.vcpus == 0 || sc.vcpus > 4 {
            return Err(Error::invalid("the explorer's scenario needs 1 to 4 vCPUs"));
        }
        let mut k = Kernel::new(sc.profile.clone(), sc.host_pages * 4096, sc.swap_pages * 4096, 0)?;
        k.set_kswapd_mode(KswapdMode::Actor);
        k.set_cost(Cost { access: 0, minor_fault: 0, swap_read: 0, swap_write: 0, reclaim_scan: 0, uffd_copy: 0 });
        let n = sc.pages.len();
        let pid = k.spawn("qemu-system-s390x", true)?;
        let base = k.mmap(pid, (n as u64) << 12, MapKind::Anon, false, None)?;
        let mut st = State {
            k,
            pid,
            base,
            uffd: None,
            stream: VecDeque::new(),
            unsent: vec![false; n],
            requests: VecDeque::new(),
            received: vec![false; n],
            requested: vec![false; n],
            running: false,
            done: false,
            used: vec![false; n],
            expected: vec![0; n],
            content: vec![0; n],
            blocked: vec![None; sc.vcpus as usize],
            writes: 0,
            inflight: Vec::new(),
            qemu: sc.qemu,
            guest_steps: sc.guest_steps,
        };
        // precopy: every page arrived once (QEMU's load thread wrote it, or read a zero page)
        for (g, class) in sc.pages.iter().enumerate() {
            let value = match class {
                PageClass::FreeZero | PageClass::ZeroReceived => 0,
                _ => 0x1000 + g as u64,
            };
            st.content[g] = value;
            let a = st.hva(g as u32);
            if value == 0 {
                st.k.access(pid, 1001, a, false, 0)?;
            } else {
                st.k.access(pid, 1001, a, true, value)?;
            }
            st.received[g] = true;
            st.used[g] = matches!(class, PageClass::UsedReceived | PageClass::UsedDirty);
            st.expected[g] = value;
            if matches!(class, PageClass::UsedDirty) {
                // dirtied on the source after it was sent: the guest's current value
                st.writes += 1;
                st.content[g] = 0x2000 + g as u64;
                st.expected[g] = st.content[g];
            }
        }
        // the switchover: final storage attributes, discards, LISTEN, RUN, then postcopy
        st.stream.push_back(Msg::CmmaDone);
        for (g, class) in sc.pages.iter().enumerate() {
            if matches!(class, PageClass::UsedDirty | PageClass::FreeZero) {
                st.stream.push_back(Msg::Discard(g as u32));
                st.unsent[g] = true;
            }
        }
        st.stream.push_back(Msg::Listen);
        st.stream.push_back(Msg::Run);
        if sc.start == Start::Listen {
            while !matches!(st.stream.front(), Some(Msg::Run) | None) {
                st.apply(Step::Deliver, &[]);
            }
        }
        st.k.clear_events();
        Ok(st)
    }

    pub(super) fn hva(&self, g: u32) -> u64 {
        self.base + ((g as u64) << 12)
    }

    pub(super) fn gfn_of(&self, addr: u64) -> u32 {
        ((addr - self.base) >> 12) as u32
    }

    pub(super) fn n(&self) -> u32 {
        self.used.len() as u32
    }

    /// The steps enabled now.
    pub fn enabled(&self, out: &mut Vec<Step>) {
        out.clear();
        if self.done {
            return;
        }
        if !self.stream.is_empty() {
            out.push(Step::Deliver);
        }
        if self.uffd.is_some() && self.unsent.iter().any(|&u| u) {
            out.push(Step::SendNext);
        }
        if !self.requests.is_empty() {
            out.push(Step::ServeRequest);
        }
        if let Some(u) = self.uffd {
            if self.k.uffd_waiters(u).is_ok_and(|ws| ws.iter().any(|w| !w.read)) {
                out.push(Step::FaultThread);
            }
        }
        let mut any = false;
        for g in 0..self.n() {
            let arch = self.k.arch();
            if let Some(p) =
                self.k.pte_at(self.pid, self.hva(g)).filter(|&p| arch.pte_present(p) && !arch.pte_special(p))
            {
                if arch.pte_young(p) {
                    out.push(Step::Age(g));
                }
                out.push(Step::Reclaim(g));
                any = true;
            }
        }
        if any {
            out.push(Step::DirectReclaim);
        }
        if !self.running {
            return;
        }
        let gs = self.guest_steps;
        for v in 0..self.blocked.len() as u32 {
            if self.blocked[v as usize].is_some() {
                // a vCPU parked in handle_userfault runs no instruction, so no ESSA of its own
                // intercepts either
                continue;
            }
            if self.k.cbrl_len(self.pid, v) > 0 {
                out.push(Step::Intercept(v));
            }
            for g in 0..self.n() {
                let used = self.used[g as usize];
                if used {
                    if gs.free {
                        out.push(Step::Free(v, g));
                    }
                    if gs.read {
                        out.push(Step::Read(v, g));
                    }
                    if gs.write {
                        out.push(Step::Write(v, g));
                    }
                } else {
                    if gs.alloc {
                        out.push(Step::Alloc(v, g));
                    }
                    if gs.diag10 {
                        out.push(Step::Diag10(v, g));
                    }
                }
            }
        }
        if gs.enable_skey && !self.k.mm_uses_skeys(self.pid).unwrap_or(true) {
            out.push(Step::EnableSkey);
        }
    }

    /// The frame mapped at guest page `g`, if present.
    pub(super) fn pfn_of(&self, g: u32) -> Option<u32> {
        let arch = self.k.arch();
        self.k.pte_at(self.pid, self.hva(g)).filter(|&p| arch.pte_present(p)).map(|p| arch.pte_pfn(p))
    }

    /// What last made guest page `g` missing, from the log.
    pub(super) fn cause_of(&self, g: u32) -> Cause {
        let a = self.hva(g);
        for e in self.k.events().iter().rev() {
            match e.kind {
                Ev::TryToUnmapOne | Ev::TryToMigrateOne if e.addr == a && e.b == ttu_result::DROP_UNUSED => {
                    return Cause::PteUnusedDrop;
                }
                Ev::GmapZap if e.addr == a && e.b == 1 => return Cause::CbrlZap,
                Ev::Diag10 if a >= e.a && a < e.b && e.c > 0 => return Cause::Diag10,
                Ev::ZeroPageZap if e.addr == a && e.a == 0 => return Cause::ZeroPageZap,
                _ => {}
            }
        }
        Cause::Other
    }

    /// The state's hash.
    pub fn key(&self) -> u64 {
        let mut h = StateHasher::default();
        self.hash(&mut h);
        h.finish()
    }

    /// The destination kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    /// The QEMU process and the host address of guest page 0.
    pub fn ram(&self) -> (u32, u64) {
        (self.pid, self.base)
    }

    /// Guest pages in the scenario.
    pub fn pages(&self) -> u32 {
        self.n()
    }

    /// Whether the destination has received guest page `g` (QEMU's received bitmap).
    pub fn received(&self, g: u32) -> bool {
        self.received.get(g as usize).copied().unwrap_or(false)
    }

    /// Whether the guest uses page `g`.
    pub fn used(&self, g: u32) -> bool {
        self.used.get(g as usize).copied().unwrap_or(false)
    }

    /// The guest page each vCPU is parked on.
    pub fn blocked(&self) -> Vec<Option<u32>> {
        self.blocked.iter().map(|b| b.map(|x| x.1)).collect()
    }

    /// The host PTE of guest page `g`, if a page table covers it.
    pub fn pte(&self, g: u32) -> Option<u64> {
        (g < self.n()).then(|| self.k.pte_at(self.pid, self.hva(g))).flatten()
    }

    /// The PGSTE of guest page `g` (0 where no page table covers it).
    pub fn pgste(&self, g: u32) -> u64 {
        if g >= self.n() {
            return 0;
        }
        self.k.pgste_at(self.pid, self.hva(g)).unwrap_or(0)
    }

    /// Guest pages with a userfault waiting (queued or read by the fault thread, not resolved).
    pub fn userfaults(&self) -> Vec<u32> {
        let Some(u) = self.uffd else { return Vec::new() };
        self.k.uffd_waiters(u).unwrap_or_default().iter().map(|w| self.gfn_of(w.msg.address)).collect()
    }

    /// "switchover", "postcopy" or "done".
    pub fn phase(&self) -> &'static str {
        if self.done {
            "done"
        } else if self.running {
            "postcopy"
        } else {
            "switchover"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`StateHasher::write`] one word at a time, as it was before it skipped blocks of zeros.
    fn write_word_by_word(h: &mut StateHasher, bytes: &[u8]) {
        h.flush();
        let mut chunks = bytes.chunks_exact(8);
        let mut zeros = 0u64;
        for c in &mut chunks {
            h.word_or_zero(&mut zeros, u64::from_le_bytes(c.try_into().unwrap()));
        }
        if zeros > 0 {
            h.mix(ZERO_RUN ^ zeros);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            h.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    /// The state keys do not depend on how `write` finds the runs of zero words: every length
    /// and place of zero runs (across and inside the blocks it skips) hashes as word by word,
    /// and different runs hash differently.
    #[test]
    fn skipping_zero_blocks_keeps_every_state_key() {
        let mut keys = std::collections::HashSet::new();
        for len in 0..80usize {
            for nonzero in [None, Some(0), Some(3), Some(4), Some(7), Some(31), Some(32), Some(40), Some(79)] {
                let mut bytes = vec![0u8; len];
                if let Some(i) = nonzero.filter(|&i| i < len) {
                    bytes[i] = 0x5a;
                }
                let (mut a, mut b) = (StateHasher::default(), StateHasher::default());
                a.write_u8(1);
                b.write_u8(1);
                a.write(&bytes);
                write_word_by_word(&mut b, &bytes);
                assert_eq!(a.finish(), b.finish(), "{len} bytes, nonzero byte {nonzero:?}");
                keys.insert(bytes);
            }
        }
        let distinct: std::collections::HashSet<u64> = keys
            .iter()
            .map(|k| {
                let mut h = StateHasher::default();
                h.write(k);
                h.write_usize(k.len());
                h.finish()
            })
            .collect();
        assert_eq!(distinct.len(), keys.len());
    }
}
