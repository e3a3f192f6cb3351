//! The one error type of the core.
//!
//! Expected kernel outcomes (a fault that blocks on a userfault, a `try_to_unmap` that fails) are
//! values, not errors. An [`Error`] means the caller misused the API, or the modelled kernel
//! returned `-errno` from a system call (then [`Error::Errno`] carries the kernel's errno).

use std::fmt;

/// Kernel errno values (include/uapi/asm-generic/errno-base.h, errno.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EINVAL = 22,
    ENOSPC = 28,
    ENOSYS = 38,
}

impl Errno {
    /// The errno number, as the kernel returns it negated.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The symbolic name, e.g. `"EEXIST"`.
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ESRCH => "ESRCH",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::ENOSYS => "ENOSYS",
        }
    }

    /// The C library's strerror text.
    pub fn strerror(self) -> &'static str {
        match self {
            Errno::EPERM => "Operation not permitted",
            Errno::ENOENT => "No such file or directory",
            Errno::ESRCH => "No such process",
            Errno::EINTR => "Interrupted system call",
            Errno::EIO => "Input/output error",
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::ENOMEM => "Cannot allocate memory",
            Errno::EACCES => "Permission denied",
            Errno::EFAULT => "Bad address",
            Errno::EBUSY => "Device or resource busy",
            Errno::EEXIST => "File exists",
            Errno::EINVAL => "Invalid argument",
            Errno::ENOSPC => "No space left on device",
            Errno::ENOSYS => "Function not implemented",
        }
    }
}

/// What went wrong. Every variant carries a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The API was called with an argument it cannot accept (an unknown profile, a size that
    /// is not page-aligned, an ESSA orc outside 0..7). Nothing in the model changed.
    InvalidArgument(String),
    /// The modelled kernel returned `-errno` from the system call `call`.
    Errno { errno: Errno, call: &'static str, detail: String },
    /// The thread is parked on a userfault and cannot issue another access until it is woken.
    ThreadBlocked(String),
    /// An input file (trace, scenario, snapshot) is malformed at the given place.
    Format { what: &'static str, at: String, detail: String },
    /// An operating-system I/O error while reading or writing a file.
    Io(String),
    /// A profile cannot be derived as asked: an unknown base, switch or value (the message
    /// lists the choices), or a name that is malformed or taken.
    Profile(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub fn errno(errno: Errno, call: &'static str, detail: impl Into<String>) -> Self {
        Error::Errno { errno, call, detail: detail.into() }
    }

    /// The kernel errno, where the kernel would return one.
    pub fn errno_value(&self) -> Option<Errno> {
        match self {
            Error::Errno { errno, .. } => Some(*errno),
            Error::InvalidArgument(_) | Error::Profile(_) => Some(Errno::EINVAL),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "{m}"),
            Error::Errno { errno, call, detail } => {
                write!(f, "{call}: {} ({}): {detail}", errno.name(), errno.strerror())
            }
            Error::ThreadBlocked(m) => write!(f, "{m}"),
            Error::Format { what, at, detail } => write!(f, "malformed {what} at {at}: {detail}"),
            Error::Io(m) => write!(f, "{m}"),
            Error::Profile(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_numbers_are_the_kernels() {
        assert_eq!(Errno::EEXIST.code(), 17);
        assert_eq!(Errno::EINVAL.code(), 22);
        assert_eq!(Errno::ENOENT.code(), 2);
        assert_eq!(Errno::ESRCH.code(), 3);
        assert_eq!(Errno::EAGAIN.code(), 11);
        assert_eq!(Errno::ENOMEM.code(), 12);
        assert_eq!(Errno::EBUSY.code(), 16);
    }

    #[test]
    fn errno_error_names_call_and_errno() {
        let e = Error::errno(Errno::EEXIST, "UFFDIO_COPY", "pte at 0x1000 is not none");
        assert_eq!(e.to_string(), "UFFDIO_COPY: EEXIST (File exists): pte at 0x1000 is not none");
        assert_eq!(e.errno_value(), Some(Errno::EEXIST));
    }
}
