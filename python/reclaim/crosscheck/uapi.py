"""The kernel ABI the host runner speaks: the userfaultfd uapi
(``include/uapi/linux/userfaultfd.h``), the ioctl numbers (``asm-generic/ioctl.h``), the
``mmap``/``madvise`` constants (``include/uapi/asm-generic/mman*.h``) and the pagemap bits
(``Documentation/admin-guide/mm/pagemap.rst``), on x86_64; the ctypes structures of the ioctls
and the decoding of ``struct uffd_msg``."""

from __future__ import annotations

import ctypes
import struct

#: ``__NR_userfaultfd`` on x86_64.
NR_USERFAULTFD_X86_64 = 323
UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, nr: int, size: int, typ: int = 0xAA) -> int:
    """``_IOC(dir, type, nr, size)`` of asm-generic/ioctl.h."""
    return (direction << 30) | (size << 16) | (typ << 8) | nr


class UffdioApi(ctypes.Structure):
    """``struct uffdio_api``."""

    _fields_ = (
        ("api", ctypes.c_uint64),
        ("features", ctypes.c_uint64),
        ("ioctls", ctypes.c_uint64),
    )


class UffdioRange(ctypes.Structure):
    """``struct uffdio_range``."""

    _fields_ = (("start", ctypes.c_uint64), ("len", ctypes.c_uint64))


class UffdioRegister(ctypes.Structure):
    """``struct uffdio_register``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64))


class UffdioCopy(ctypes.Structure):
    """``struct uffdio_copy``."""

    _fields_ = (
        ("dst", ctypes.c_uint64),
        ("src", ctypes.c_uint64),
        ("len", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("copy", ctypes.c_int64),
    )


class UffdioZeropage(ctypes.Structure):
    """``struct uffdio_zeropage``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("zeropage", ctypes.c_int64))


class UffdioWriteprotect(ctypes.Structure):
    """``struct uffdio_writeprotect``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64))


class UffdioContinue(ctypes.Structure):
    """``struct uffdio_continue``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("mapped", ctypes.c_int64))


UFFDIO_REGISTER = _ioc(_IOC_READ | _IOC_WRITE, 0x00, ctypes.sizeof(UffdioRegister))
UFFDIO_UNREGISTER = _ioc(_IOC_READ, 0x01, ctypes.sizeof(UffdioRange))
UFFDIO_WAKE = _ioc(_IOC_READ, 0x02, ctypes.sizeof(UffdioRange))
UFFDIO_COPY = _ioc(_IOC_READ | _IOC_WRITE, 0x03, ctypes.sizeof(UffdioCopy))
UFFDIO_ZEROPAGE = _ioc(_IOC_READ | _IOC_WRITE, 0x04, ctypes.sizeof(UffdioZeropage))
UFFDIO_WRITEPROTECT = _ioc(_IOC_READ | _IOC_WRITE, 0x06, ctypes.sizeof(UffdioWriteprotect))
UFFDIO_CONTINUE = _ioc(_IOC_READ | _IOC_WRITE, 0x07, ctypes.sizeof(UffdioContinue))
UFFDIO_API = _ioc(_IOC_READ | _IOC_WRITE, 0x3F, ctypes.sizeof(UffdioApi))
USERFAULTFD_IOC_NEW = _ioc(_IOC_NONE, 0x00, 0)

UFFDIO_REGISTER_MODE_MISSING = 1 << 0
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_REGISTER_MODE_MINOR = 1 << 2
UFFDIO_COPY_MODE_DONTWAKE = 1 << 0
UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1 << 0
UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0
UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1 << 1
UFFDIO_CONTINUE_MODE_DONTWAKE = 1 << 0

#: ``sizeof(struct uffd_msg)``: u8 event, 7 reserved bytes, a 24-byte union.
UFFD_MSG_SIZE = 32
UFFD_EVENT_FORK = 0x13

PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_FAILED = ctypes.c_void_p(-1).value

#: ``MADV_*`` by advice name.
MADV = {"willneed": 3, "dontneed": 4, "free": 8, "remove": 9, "cold": 20, "pageout": 21}

PAGEMAP_PRESENT = 1 << 63
PAGEMAP_SWAPPED = 1 << 62


def parse_msg(raw: bytes) -> tuple[int, int, int, int]:
    """Unpack one ``struct uffd_msg``: (event, arg word 0, arg word 1, arg word 2). For
    PAGEFAULT the words are flags, address and ptid (low 32 bits); FORK: ufd; REMOVE/UNMAP:
    start, end."""
    if len(raw) != UFFD_MSG_SIZE:
        raise ValueError(f"a uffd_msg is {UFFD_MSG_SIZE} bytes, got {len(raw)}")
    event, a, b, c = struct.unpack("<B7xQQQ", raw)
    return int(event), int(a), int(b), int(c)


__all__ = [
    "MADV",
    "NR_USERFAULTFD_X86_64",
    "UFFDIO_API",
    "UFFDIO_CONTINUE",
    "UFFDIO_COPY",
    "UFFDIO_REGISTER",
    "UFFDIO_UNREGISTER",
    "UFFDIO_WAKE",
    "UFFDIO_WRITEPROTECT",
    "UFFDIO_ZEROPAGE",
    "UFFD_MSG_SIZE",
    "USERFAULTFD_IOC_NEW",
    "UffdioApi",
    "UffdioContinue",
    "UffdioCopy",
    "UffdioRange",
    "UffdioRegister",
    "UffdioWriteprotect",
    "UffdioZeropage",
    "parse_msg",
]
