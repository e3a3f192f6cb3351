"""The exception tree of reclaim.

Every error the engine raises is a :class:`ReclaimError`. Where the modelled kernel would
return ``-errno``, the exception carries it: ``e.errno`` (the number, as in :mod:`errno`) and
``e.errno_name`` (``"EEXIST"``). Expected kernel outcomes (a fault that blocks on a
userfault, a failed ``try_to_unmap``) are values, never exceptions.
"""

from __future__ import annotations


class ReclaimError(Exception):
    """Base of every error raised by reclaim."""

    errno: int | None
    errno_name: str | None
    call: str | None

    def __init__(
        self,
        message: str,
        errno: int | None = None,
        errno_name: str | None = None,
        call: str | None = None,
    ) -> None:
        super().__init__(message)
        self.errno = errno
        self.errno_name = errno_name
        self.call = call

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ArgumentError(ReclaimError, ValueError):
    """An API call got an argument it cannot accept; nothing in the model changed."""


class SyscallError(ReclaimError, OSError):
    """The modelled kernel returned ``-errno`` from a system call or ioctl (``e.call``)."""

    def __init__(
        self,
        message: str,
        errno: int | None = None,
        errno_name: str | None = None,
        call: str | None = None,
    ) -> None:
        ReclaimError.__init__(self, message, errno, errno_name, call)
        self.strerror = message


class SyscallArgumentError(SyscallError, ArgumentError):
    """The modelled kernel returned ``-EINVAL``."""


class ThreadBlockedError(ReclaimError):
    """The thread is parked on a userfault and cannot issue another access until woken."""


class ProfileError(ArgumentError):
    """A profile cannot be derived as asked: an unknown base, switch or value (the message lists
    the choices), or a variant name that is built-in, malformed or taken."""


class FormatError(ReclaimError, ValueError):
    """An input file (trace, scenario, snapshot) is malformed; the message names where."""


class FileError(ReclaimError, OSError):
    """Reading or writing a file failed."""


class InternalError(ReclaimError):
    """A bug in the engine. The model that raised it must not be used any further."""


class InvariantError(ReclaimError):
    """A model invariant does not hold (``Kernel.check()``); the message names it."""


__all__ = [
    "ArgumentError",
    "FileError",
    "FormatError",
    "InternalError",
    "InvariantError",
    "ProfileError",
    "ReclaimError",
    "SyscallArgumentError",
    "SyscallError",
    "ThreadBlockedError",
]
