"""libc through ctypes: the few functions the host runner and ``reclaim bench`` call
(``mmap``, ``munmap``, ``madvise``, ``memcpy``, ``ioctl`` and the ``userfaultfd`` system call),
typed, errors raised as OSError with the errno."""

from __future__ import annotations

import ctypes
import errno as _errno
import os

from reclaim.crosscheck.uapi import (
    MAP_FAILED,
    NR_USERFAULTFD_X86_64,
    USERFAULTFD_IOC_NEW,
)


class _Libc:
    """The few libc functions the runner calls, typed. Foreign calls release the GIL."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libc.so.6", use_errno=True)
        self._syscall = lib.syscall
        self._syscall.restype = ctypes.c_long
        self._ioctl = lib.ioctl
        self._ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
        self._ioctl.restype = ctypes.c_int
        self._mmap = lib.mmap
        self._mmap.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        )
        self._mmap.restype = ctypes.c_void_p
        self._munmap = lib.munmap
        self._munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        self._munmap.restype = ctypes.c_int
        self._madvise = lib.madvise
        self._madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        self._madvise.restype = ctypes.c_int
        self._memcpy = lib.memcpy
        self._memcpy.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        self._memcpy.restype = ctypes.c_void_p

    @staticmethod
    def _check(ret: int) -> int:
        if ret == -1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return ret

    def userfaultfd(self, flags: int) -> int:
        """The userfaultfd system call (x86_64)."""
        r: int = self._syscall(ctypes.c_long(NR_USERFAULTFD_X86_64), ctypes.c_long(flags))
        return self._check(int(r))

    def ioctl(self, fd: int, request: int, arg: ctypes.Structure | None) -> int:
        """ioctl(2) with a pointer to ``arg`` (or an integer 0)."""
        p = ctypes.addressof(arg) if arg is not None else None
        r: int = self._ioctl(fd, request, p)
        return self._check(int(r))

    def ioctl_int(self, fd: int, request: int, value: int) -> int:
        """ioctl(2) with an integer argument."""
        r: int = self._ioctl(fd, request, ctypes.c_void_p(value))
        return self._check(int(r))

    def mmap(self, length: int, prot: int, flags: int, fd: int = -1) -> int:
        """mmap(2) at an address of the kernel's choice."""
        r: int | None = self._mmap(None, length, prot, flags, fd, 0)
        if r is None or r == MAP_FAILED:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return int(r)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2)."""
        r: int = self._munmap(addr, length)
        self._check(int(r))

    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2)."""
        r: int = self._madvise(addr, length, advice)
        self._check(int(r))

    def memcpy(self, dst: int, src: int, n: int) -> None:
        """memcpy(3): the access itself (a fault in it blocks only this thread)."""
        self._memcpy(dst, src, n)


_libc: _Libc | None = None


def libc() -> _Libc:
    """The process's :class:`_Libc` (loaded on first use)."""
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def errno_name(e: OSError) -> str:
    """``EEXIST`` for an OSError with errno 17."""
    return _errno.errorcode.get(e.errno or 0, f"errno {e.errno}")


def new_userfaultfd() -> int:
    """A userfaultfd (O_CLOEXEC | O_NONBLOCK) of the calling process: the system call, or
    ``/dev/userfaultfd`` + USERFAULTFD_IOC_NEW where the system call is refused."""
    flags = os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return libc().userfaultfd(flags)
    except OSError as e:
        if e.errno not in (_errno.EPERM, _errno.ENOSYS, _errno.EACCES):
            raise
        first = e
    try:
        dev = os.open("/dev/userfaultfd", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        raise first from None
    try:
        return libc().ioctl_int(dev, USERFAULTFD_IOC_NEW, flags)
    finally:
        os.close(dev)


__all__ = ["errno_name", "libc", "new_userfaultfd"]
