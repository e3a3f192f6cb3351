//! The userfaultfd state types (include/uapi/linux/userfaultfd.h, fs/userfaultfd.c): messages,
//! contexts and a parked thread. A leaf module: threads ([`crate::mm::Thread`]), the fault path
//! and the [`crate::Kernel`] hold these without importing the userfaultfd code.

use super::msg::{UffdMsg, UffdPagefault};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A thread parked in handle_userfault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blocked {
    pub uffd: u32,
    pub msg: UffdPagefault,
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
    pub msg: UffdPagefault,
    /// Already returned by read (moved from fault_pending_wqh to fault_wqh).
    pub read: bool,
    /// Queue order among the context's messages.
    pub seq: u64,
}

/// A `struct userfaultfd_ctx`.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

crate::sim::clone_fields::clone_fields!(UffdCtx { mm, features, api_done, released, waiters, events, seq });
