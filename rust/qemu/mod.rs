//! QEMU live migration with postcopy (migration/ram.c, migration/postcopy-ram.c,
//! hw/s390x/s390-stattrib.c): the source ([`source`]), the destination ([`dest`]) and the link
//! between them.
//!
//! The version switch is the one that matters for the seed bug: QEMU 2.12/3.0 (2018) requests
//! every faulting page from the source, which drops a request for a page it already sent
//! (`get_queued_page`: "Skips pages that are already sent (!dirty)"); QEMU 5.2+ ("Maintain
//! postcopy faulted addresses") does not even send a request for a page its received bitmap
//! has. Either way a userfault on a received page is never resolved.

use serde::{Deserialize, Serialize};
pub mod dest;
pub mod source;

use crate::error::{Error, Result};
use std::collections::VecDeque;

/// Which QEMU's postcopy logic runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QemuVersion {
    /// 2.12 / 3.0: the fault thread requests unconditionally; the source skips clean pages.
    V3_0,
    /// 5.2 and later: `migrate_send_rp_req_pages` returns early for a received page.
    V5_2,
}

impl QemuVersion {
    pub fn parse(s: &str) -> Result<QemuVersion> {
        match s.trim() {
            "2.12" | "3.0" | "3.1" | "2018" => Ok(QemuVersion::V3_0),
            "5.2" | "6.2" | "7.2" | "8.2" | "9.2" | "new" => Ok(QemuVersion::V5_2),
            other => Err(Error::invalid(format!(
                "unknown QEMU version {other:?}; known: \"3.0\" (also 2.12, 3.1) and \"5.2\" (also 6.2 .. 9.2)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QemuVersion::V3_0 => "3.0",
            QemuVersion::V5_2 => "5.2",
        }
    }
}

/// A message on the migration stream (source → destination).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// RAM_SAVE_FLAG_PAGE / RAM_SAVE_FLAG_ZERO for one guest page.
    Page { gfn: u32, value: u64, zero: bool },
    /// s390 storage attributes (CMMA bits as KVM_S390_GET_CMMA_BITS returns them), by page
    /// (STATTR_FLAG_MORE). The destination buffers them (`incoming_buffer`). Boxed, so that a
    /// message is 16 bytes (a large guest's switchover queues tens of millions of discards).
    Cmma { pages: Box<CmmaPages> },
    /// STATTR_FLAG_DONE: the last storage attributes were sent; the destination applies its
    /// buffer with KVM_S390_SET_CMMA_BITS (`kvm_s390_stattrib_synchronize`).
    CmmaDone,
    /// MIG_CMD_POSTCOPY_RAM_DISCARD of guest pages `[start, start + len)`.
    Discard { start: u32, len: u32 },
    /// MIG_CMD_POSTCOPY_LISTEN.
    Listen,
    /// MIG_CMD_POSTCOPY_RUN (after the device state).
    Run,
    /// QEMU_VM_EOF: everything was sent.
    Eof,
    /// Return path: MIG_RP_MSG_REQ_PAGES for one guest page.
    ReqPage { gfn: u32 },
}

impl Msg {
    /// Whether every guest page the message names is below `pages`.
    pub fn fits(&self, pages: u64) -> bool {
        match self {
            Msg::Page { gfn, .. } | Msg::ReqPage { gfn } => (*gfn as u64) < pages,
            Msg::Cmma { pages: p } => p.iter().all(|(gfn, _)| (gfn as u64) < pages),
            Msg::Discard { start, len } => *start as u64 + *len as u64 <= pages,
            Msg::CmmaDone | Msg::Listen | Msg::Run | Msg::Eof => true,
        }
    }

    /// Bytes on the wire (headers included, roughly as QEMU frames them).
    pub fn bytes(&self) -> u64 {
        match self {
            Msg::Page { zero: false, .. } => 4096 + 16,
            Msg::Page { zero: true, .. } => 17,
            Msg::Cmma { pages } => 16 + pages.len() as u64,
            Msg::Discard { .. } => 24,
            Msg::ReqPage { .. } => 32,
            _ => 8,
        }
    }
}

/// Storage attributes (CMMA bits) by guest page, in the order they were sent, repeats
/// included: what a [`Msg::Cmma`] carries and what the destination buffers until it applies them
/// (`sas->incoming_buffer`, one byte per guest page in QEMU). The pages come in runs of
/// consecutive numbers (the first message has every page in order), so they are stored as runs
/// and one byte of bits per entry, not 8 bytes per entry (1 GiB less at 512 GiB). Serialized as
/// the (gfn, bits) pairs, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CmmaPages {
    /// Runs of consecutive guest page numbers: (first, count).
    runs: Vec<(u32, u32)>,
    /// The bits of each entry, in order.
    bits: Vec<u8>,
}

impl CmmaPages {
    pub fn push(&mut self, gfn: u32, bits: u8) {
        match self.runs.last_mut() {
            Some((first, n)) if *first as u64 + *n as u64 == gfn as u64 => *n += 1,
            _ => self.runs.push((gfn, 1)),
        }
        self.bits.push(bits);
    }

    pub fn len(&self) -> usize {
        self.bits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// The (gfn, bits) entries in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.runs.iter().flat_map(|&(first, n)| (0..n).map(move |i| first + i)).zip(self.bits.iter().copied())
    }

    /// Append `other`'s entries after these.
    pub fn append(&mut self, other: CmmaPages) {
        if self.is_empty() {
            *self = other;
        } else {
            for (gfn, bits) in other.iter() {
                self.push(gfn, bits);
            }
        }
    }
}

impl FromIterator<(u32, u8)> for CmmaPages {
    fn from_iter<I: IntoIterator<Item = (u32, u8)>>(it: I) -> CmmaPages {
        let mut c = CmmaPages::default();
        for (gfn, bits) in it {
            c.push(gfn, bits);
        }
        c
    }
}

impl Serialize for CmmaPages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for e in self.iter() {
            seq.serialize_element(&e)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for CmmaPages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<CmmaPages, D::Error> {
        Ok(Vec::<(u32, u8)>::deserialize(d)?.into_iter().collect())
    }
}

/// The network between the hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkConfig {
    /// Bytes per second of the migration stream.
    pub bandwidth: u64,
    /// One-way latency, nanoseconds.
    pub latency_ns: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        // 1 Gbit/s, 100 µs
        LinkConfig { bandwidth: 125_000_000, latency_ns: 100_000 }
    }
}

/// One direction of the link: messages in flight, in order, with their arrival times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Channel {
    pub queue: VecDeque<(u64, Msg)>,
    /// When the sender may put the next byte on the wire.
    pub free_at: u64,
    pub bytes: u64,
}

impl Channel {
    /// Put `msg` on the wire at `now`; returns its arrival time.
    pub fn send(&mut self, cfg: &LinkConfig, now: u64, msg: Msg) -> u64 {
        let start = now.max(self.free_at);
        let b = msg.bytes();
        let wire = b.saturating_mul(1_000_000_000) / cfg.bandwidth.max(1);
        self.free_at = start + wire;
        self.bytes += b;
        let arrival = self.free_at + cfg.latency_ns;
        self.queue.push_back((arrival, msg));
        arrival
    }

    /// The next message, if it has arrived by `now` (any time when `now` is None).
    pub fn pop(&mut self) -> Option<(u64, Msg)> {
        self.queue.pop_front()
    }
}

/// The link: the migration stream and the return path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Link {
    pub cfg: LinkConfig,
    pub main: Channel,
    pub rp: Channel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_takes_its_wire_time_plus_latency() {
        let cfg = LinkConfig { bandwidth: 4112 * 1000, latency_ns: 50 };
        let mut c = Channel::default();
        let a = c.send(&cfg, 0, Msg::Page { gfn: 0, value: 1, zero: false });
        assert_eq!(a, 1_000_000 + 50);
        let b = c.send(&cfg, 0, Msg::Page { gfn: 1, value: 1, zero: false });
        assert_eq!(std::mem::size_of::<Msg>(), 16, "a queued discard costs 16 bytes");
        assert_eq!(b, 2_000_000 + 50, "the second waits for the wire");
        assert!(QemuVersion::parse("4.0").is_err());
        assert_eq!(QemuVersion::parse("2.12").unwrap(), QemuVersion::V3_0);
    }

    /// The storage attributes keep every entry in the order sent, repeats included (the
    /// destination applies them in that order), and serialize as the (gfn, bits) pairs.
    #[test]
    fn cmma_pages_keep_their_order_and_repeats_and_serialize_as_pairs() {
        let pairs = vec![(0, 1), (1, 0), (2, 0x40), (7, 3), (8, 1), (2, 3), (2, 1), (u32::MAX, 2)];
        let c: CmmaPages = pairs.iter().copied().collect();
        assert_eq!(c.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(c.runs.len(), 5, "consecutive pages share a run");
        assert_eq!(postcard::to_stdvec(&c).unwrap(), postcard::to_stdvec(&pairs).unwrap());
        let back: CmmaPages = postcard::from_bytes(&postcard::to_stdvec(&pairs).unwrap()).unwrap();
        assert_eq!(back, c);
        let mut d: CmmaPages = pairs[..3].iter().copied().collect();
        d.append(pairs[3..].iter().copied().collect());
        assert_eq!(d, c);
    }
}
