//! The outcome of an access, as a thread records it ([`crate::mm::Thread`]). A leaf module.

use crate::uffd::msg::UffdPagefault;
use serde::{Deserialize, Serialize};

/// The outcome of an access: expected kernel outcomes are values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// The load or store completed; `value` is what was read (or written).
    Done { value: u64 },
    /// The thread is parked on a userfault with this message.
    Blocked { uffd: u32, msg: UffdPagefault },
    /// SIGSEGV: no VMA (`SEGV_MAPERR`) or the VMA forbids the access (`SEGV_ACCERR`).
    Segv { accerr: bool },
    /// SIGBUS (a userfault with UFFD_FEATURE_SIGBUS, or a fault beyond a file's end).
    Bus,
    /// VM_FAULT_OOM: no memory could be found for the page (the model kills nothing).
    Oom,
}
