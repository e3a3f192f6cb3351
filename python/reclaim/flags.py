"""Bit masks as named flags (:class:`enum.IntFlag`), built from the engine's own tables.

>>> from reclaim.flags import UffdFeature
>>> UffdFeature(0x108)
<UffdFeature.EVENT_REMOVE|THREAD_ID: 264>
>>> UffdFeature.THREAD_ID in UffdFeature(0x108)
True

Every mask the API hands out is one of these: ``Userfaultfd.features`` and
``Userfaultfd.offered`` are :data:`UffdFeature` (the kernel's ``uffdio_api.features``),
``Userfaultfd.register`` returns :data:`UffdIoctl` (``uffdio_register.ioctls``), and
``UffdPagefault.flags`` is :data:`UffdPagefaultFlag`. They are ints as well: ``int(f)``,
``f & 0x8`` and comparisons with ints work as before.
"""

from __future__ import annotations

import enum

from reclaim._reclaim import UFFD_FEATURES, UFFD_IOCTLS, UFFD_PAGEFAULT_FLAGS


def _flags(name: str, bits: dict[str, int], doc: str) -> type[enum.IntFlag]:
    cls: type[enum.IntFlag] = enum.IntFlag(  # type: ignore[misc]
        name, list(bits.items()), module=__name__
    )
    cls.__doc__ = doc
    return cls


#: The UFFD_FEATURE_* bits of ``struct uffdio_api`` by name (without the prefix), as
#: include/uapi/linux/userfaultfd.h defines them.
UffdFeature = _flags(
    "UffdFeature",
    UFFD_FEATURES,
    """The UFFD_FEATURE_* bits of ``struct uffdio_api`` as named flags: what
``Userfaultfd.features`` (agreed) and ``Userfaultfd.offered`` return.""",
)

#: The ioctls of ``uffdio_api.ioctls`` / ``uffdio_register.ioctls``: bit ``1 << _UFFDIO_X``,
#: named X (include/uapi/linux/userfaultfd.h).
UffdIoctl = _flags(
    "UffdIoctl",
    UFFD_IOCTLS,
    """The ioctls a userfaultfd range supports (``uffdio_register.ioctls``, bit
``1 << _UFFDIO_X``) as named flags: what ``Userfaultfd.register`` returns.""",
)

#: The UFFD_PAGEFAULT_FLAG_* bits of ``uffd_msg.arg.pagefault.flags``.
UffdPagefaultFlag = _flags(
    "UffdPagefaultFlag",
    UFFD_PAGEFAULT_FLAGS,
    """The UFFD_PAGEFAULT_FLAG_* bits of a pagefault message as named flags: what
``UffdPagefault.flags`` returns.""",
)

__all__ = ["UffdFeature", "UffdIoctl", "UffdPagefaultFlag"]
