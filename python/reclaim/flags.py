"""Bit masks as named flags (:class:`enum.IntFlag`), built from the engine's own tables.

>>> from reclaim.flags import UffdFeature
>>> UffdFeature(0x108)
<UffdFeature.EVENT_REMOVE|THREAD_ID: 264>
>>> UffdFeature.THREAD_ID in UffdFeature(0x108)
True

``Userfaultfd.features`` and ``Userfaultfd.offered`` are plain ints (the kernel's
``uffdio_api.features``); ``UffdFeature(u.features)`` names their bits.
"""

from __future__ import annotations

import enum

from reclaim._reclaim import UFFD_FEATURES

#: The UFFD_FEATURE_* bits of ``struct uffdio_api`` by name (without the prefix), as
#: include/uapi/linux/userfaultfd.h defines them.
UffdFeature: type[enum.IntFlag] = enum.IntFlag(  # type: ignore[misc]
    "UffdFeature", list(UFFD_FEATURES.items()), module=__name__
)

UffdFeature.__doc__ = """The UFFD_FEATURE_* bits of ``struct uffdio_api`` as named flags:
``UffdFeature(u.features)`` shows which a userfaultfd agreed to."""

__all__ = ["UffdFeature"]
