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
    Cmma { pages: Box<Vec<(u32, u8)>> },
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
            Msg::Cmma { pages: p } => p.iter().all(|(gfn, _)| (*gfn as u64) < pages),
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
        assert_eq!(b, 2_000_000 + 50, "the second waits for the wire");
        assert!(QemuVersion::parse("4.0").is_err());
        assert_eq!(QemuVersion::parse("2.12").unwrap(), QemuVersion::V3_0);
    }
}
