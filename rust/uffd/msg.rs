//! `struct uffd_msg` (include/uapi/linux/userfaultfd.h): what read(2) on a userfaultfd returns,
//! an event code and the `arg` union member of that event.
//!
//! Snapshots store a message in its older flat form ([`Flat`]: one set of fields for every
//! event), so that the format is unchanged; decoding checks the event code.

use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// `UFFD_EVENT_*`.
pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
pub const UFFD_EVENT_FORK: u8 = 0x13;
pub const UFFD_EVENT_REMAP: u8 = 0x14;
pub const UFFD_EVENT_REMOVE: u8 = 0x15;
pub const UFFD_EVENT_UNMAP: u8 = 0x16;

/// `UFFD_PAGEFAULT_FLAG_*`.
pub const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1 << 0;
pub const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;
pub const UFFD_PAGEFAULT_FLAG_MINOR: u64 = 1 << 2;
/// The `UFFD_PAGEFAULT_FLAG_*` bits by name (without the prefix), include/uapi/linux/userfaultfd.h.
pub const UFFD_PAGEFAULT_FLAG_NAMES: [(&str, u64); 3] =
    [("WRITE", UFFD_PAGEFAULT_FLAG_WRITE), ("WP", UFFD_PAGEFAULT_FLAG_WP), ("MINOR", UFFD_PAGEFAULT_FLAG_MINOR)];

/// `uffd_msg.arg.pagefault`: what `userfault_msg` fills in for UFFD_EVENT_PAGEFAULT, and what a
/// thread parked in `handle_userfault` waits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Flat", try_from = "Flat")]
pub struct UffdPagefault {
    /// UFFD_PAGEFAULT_FLAG_WRITE / _WP / _MINOR.
    pub flags: u64,
    /// The faulting address (page-aligned unless UFFD_FEATURE_EXACT_ADDRESS).
    pub address: u64,
    /// `feat.ptid`: the faulting thread's id with UFFD_FEATURE_THREAD_ID, else 0.
    pub ptid: u32,
}

/// A `struct uffd_msg`: one variant per `UFFD_EVENT_*`, with the fields of its `arg` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Flat", try_from = "Flat")]
pub enum UffdMsg {
    /// UFFD_EVENT_PAGEFAULT (`arg.pagefault`).
    Pagefault(UffdPagefault),
    /// UFFD_EVENT_FORK (`arg.fork.ufd`: the child's userfaultfd; here its id in the kernel).
    Fork { ufd: u32 },
    /// UFFD_EVENT_REMAP (`arg.remap`): mremap moved `len` bytes from `from` to `to`.
    Remap { from: u64, to: u64, len: u64 },
    /// UFFD_EVENT_REMOVE (`arg.remove`): MADV_DONTNEED/FREE/REMOVE of [start, end).
    Remove { start: u64, end: u64 },
    /// UFFD_EVENT_UNMAP (`arg.remove`, which the kernel reuses): munmap of [start, end).
    Unmap { start: u64, end: u64 },
}

impl UffdMsg {
    /// The `UFFD_EVENT_*` code.
    pub fn event(&self) -> u8 {
        match self {
            UffdMsg::Pagefault(_) => UFFD_EVENT_PAGEFAULT,
            UffdMsg::Fork { .. } => UFFD_EVENT_FORK,
            UffdMsg::Remap { .. } => UFFD_EVENT_REMAP,
            UffdMsg::Remove { .. } => UFFD_EVENT_REMOVE,
            UffdMsg::Unmap { .. } => UFFD_EVENT_UNMAP,
        }
    }

    /// The event's name without `UFFD_EVENT_`: "PAGEFAULT", "FORK", "REMAP", "REMOVE", "UNMAP".
    pub fn event_name(&self) -> &'static str {
        match self {
            UffdMsg::Pagefault(_) => "PAGEFAULT",
            UffdMsg::Fork { .. } => "FORK",
            UffdMsg::Remap { .. } => "REMAP",
            UffdMsg::Remove { .. } => "REMOVE",
            UffdMsg::Unmap { .. } => "UNMAP",
        }
    }

    /// The page fault, if this is one.
    pub fn pagefault(&self) -> Option<&UffdPagefault> {
        match self {
            UffdMsg::Pagefault(p) => Some(p),
            _ => None,
        }
    }

    /// The address and the second value the `uffd:event` trace line records: the range of
    /// REMOVE/UNMAP, from/to of REMAP, the address of a page fault, nothing for FORK.
    pub(crate) fn trace_range(&self) -> (u64, u64) {
        let f = Flat::from(*self);
        (f.address, f.end)
    }
}

/// The message as snapshots store it (the flat form of earlier releases of the model): PAGEFAULT
/// uses flags/address/ptid, REMOVE/UNMAP address (start) and end, REMAP address (from), end
/// (to) and flags (len), FORK ufd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flat {
    event: u8,
    flags: u64,
    address: u64,
    ptid: u32,
    end: u64,
    ufd: u32,
}

impl From<UffdMsg> for Flat {
    fn from(m: UffdMsg) -> Flat {
        let event = m.event();
        match m {
            UffdMsg::Pagefault(p) => {
                Flat { event, flags: p.flags, address: p.address, ptid: p.ptid, ..Flat::default() }
            }
            UffdMsg::Fork { ufd } => Flat { event, ufd, ..Flat::default() },
            UffdMsg::Remap { from, to, len } => Flat { event, address: from, end: to, flags: len, ..Flat::default() },
            UffdMsg::Remove { start, end } | UffdMsg::Unmap { start, end } => {
                Flat { event, address: start, end, ..Flat::default() }
            }
        }
    }
}

impl TryFrom<Flat> for UffdMsg {
    type Error = String;
    fn try_from(f: Flat) -> Result<UffdMsg, String> {
        Ok(match f.event {
            UFFD_EVENT_PAGEFAULT => {
                UffdMsg::Pagefault(UffdPagefault { flags: f.flags, address: f.address, ptid: f.ptid })
            }
            UFFD_EVENT_FORK => UffdMsg::Fork { ufd: f.ufd },
            UFFD_EVENT_REMAP => UffdMsg::Remap { from: f.address, to: f.end, len: f.flags },
            UFFD_EVENT_REMOVE => UffdMsg::Remove { start: f.address, end: f.end },
            UFFD_EVENT_UNMAP => UffdMsg::Unmap { start: f.address, end: f.end },
            e => return Err(format!("userfaultfd message with unknown event code {e:#x}")),
        })
    }
}

impl From<UffdPagefault> for Flat {
    fn from(p: UffdPagefault) -> Flat {
        Flat::from(UffdMsg::Pagefault(p))
    }
}

impl TryFrom<Flat> for UffdPagefault {
    type Error = String;
    fn try_from(f: Flat) -> Result<UffdPagefault, String> {
        match UffdMsg::try_from(f)? {
            UffdMsg::Pagefault(p) => Ok(p),
            m => Err(format!("a thread parked on a {} message (only a PAGEFAULT parks one)", m.event_name())),
        }
    }
}

// Hashed as the flat form, as before the enum: the explorer's state fingerprints stay the same.
impl Hash for UffdMsg {
    fn hash<H: Hasher>(&self, h: &mut H) {
        Flat::from(*self).hash(h)
    }
}

impl Hash for UffdPagefault {
    fn hash<H: Hasher>(&self, h: &mut H) {
        Flat::from(*self).hash(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_through_the_stored_form() {
        let msgs = [
            UffdMsg::Pagefault(UffdPagefault { flags: 3, address: 0x5000, ptid: 7 }),
            UffdMsg::Fork { ufd: 2 },
            UffdMsg::Remap { from: 0x1000, to: 0x9000, len: 0x3000 },
            UffdMsg::Remove { start: 0x1000, end: 0x2000 },
            UffdMsg::Unmap { start: 0x3000, end: 0x4000 },
        ];
        for m in msgs {
            let bytes = postcard::to_stdvec(&m).unwrap();
            assert_eq!(postcard::from_bytes::<UffdMsg>(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn remap_is_stored_as_the_flat_message_of_earlier_snapshots() {
        let m = UffdMsg::Remap { from: 0x1000, to: 0x9000, len: 0x3000 };
        let flat = Flat { event: UFFD_EVENT_REMAP, address: 0x1000, end: 0x9000, flags: 0x3000, ..Flat::default() };
        assert_eq!(postcard::to_stdvec(&m).unwrap(), postcard::to_stdvec(&flat).unwrap());
    }

    #[test]
    fn unknown_event_codes_and_non_faults_where_a_fault_belongs_are_refused() {
        let bad = postcard::to_stdvec(&Flat { event: 0x42, ..Flat::default() }).unwrap();
        assert!(postcard::from_bytes::<UffdMsg>(&bad).is_err());
        let fork = postcard::to_stdvec(&UffdMsg::Fork { ufd: 1 }).unwrap();
        assert!(postcard::from_bytes::<UffdPagefault>(&fork).is_err());
    }
}
