//! The userfaultfd state types (include/uapi/linux/userfaultfd.h, fs/userfaultfd.c): messages,
//! contexts and a parked thread. A leaf module: threads ([`crate::mm::Thread`]), the fault path
//! and the [`crate::Kernel`] hold these without importing the userfaultfd code.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

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

/// A `struct uffd_msg`, flattened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UffdMsg {
    pub event: u8,
    /// PAGEFAULT: UFFD_PAGEFAULT_FLAG_*; REMAP: len (`arg.remap.len`; the flattened message
    /// reuses this field rather than grow, which would change the snapshot format).
    pub flags: u64,
    /// PAGEFAULT: the address; REMOVE/UNMAP: start; REMAP: from.
    pub address: u64,
    /// PAGEFAULT with UFFD_FEATURE_THREAD_ID: the thread id.
    pub ptid: u32,
    /// REMOVE/UNMAP: end; REMAP: to.
    pub end: u64,
    /// FORK: the child's userfaultfd (`arg.fork.ufd`).
    pub ufd: u32,
}

impl UffdMsg {
    pub fn event_name(&self) -> &'static str {
        match self.event {
            UFFD_EVENT_PAGEFAULT => "PAGEFAULT",
            UFFD_EVENT_FORK => "FORK",
            UFFD_EVENT_REMAP => "REMAP",
            UFFD_EVENT_REMOVE => "REMOVE",
            UFFD_EVENT_UNMAP => "UNMAP",
            _ => "UNKNOWN",
        }
    }
}

/// A thread parked in handle_userfault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blocked {
    pub uffd: u32,
    pub msg: UffdMsg,
    /// The access to retry when woken.
    pub addr: u64,
    pub write: bool,
    pub value: u64,
    /// Simulated time it was parked.
    pub since: u64,
}

/// A waiter on a context's fault queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Waiter {
    pub pid: u32,
    pub tid: u32,
    pub msg: UffdMsg,
    /// Already returned by read (moved from fault_pending_wqh to fault_wqh).
    pub read: bool,
    /// Queue order among the context's messages.
    pub seq: u64,
}

/// A `struct userfaultfd_ctx`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UffdCtx {
    pub mm: u32,
    /// Features agreed in UFFDIO_API.
    pub features: u64,
    /// UFFDIO_API done (`UFFD_STATE_RUNNING`).
    pub api_done: bool,
    /// The fd was closed.
    pub released: bool,
    pub waiters: Vec<Waiter>,
    /// Non-cooperative events not yet read, with their queue order.
    pub events: VecDeque<(u64, UffdMsg)>,
    /// The next queue order number.
    pub seq: u64,
}
