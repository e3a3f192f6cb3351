"""The s390 architecture layer: PTE and PGSTE values, swap entries, ESSA.

>>> from reclaim.s390 import Pte
>>> Pte(0x400).none()
True
>>> Pte.mk(5, PAGE_RW).mkold().hw_invalid()
True
"""

from __future__ import annotations

from reclaim._reclaim import ESSA_ORC_NAMES as _ESSA_ORC_NAMES
from reclaim._reclaim import EssaResult, Pgste, Pte, essa, mk_swap_pte
from reclaim._reclaim import s390_consts as _c

_PAGE_NOEXEC: int = _c._PAGE_NOEXEC
_PAGE_PROTECT: int = _c._PAGE_PROTECT
_PAGE_INVALID: int = _c._PAGE_INVALID
_PAGE_LARGE: int = _c._PAGE_LARGE
_PAGE_PRESENT: int = _c._PAGE_PRESENT
_PAGE_SOFT_DIRTY: int = _c._PAGE_SOFT_DIRTY
_PAGE_YOUNG: int = _c._PAGE_YOUNG
_PAGE_DIRTY: int = _c._PAGE_DIRTY
_PAGE_READ: int = _c._PAGE_READ
_PAGE_WRITE: int = _c._PAGE_WRITE
_PAGE_SPECIAL: int = _c._PAGE_SPECIAL
_PAGE_UNUSED: int = _c._PAGE_UNUSED
_PAGE_SWP_EXCLUSIVE: int = _c._PAGE_SWP_EXCLUSIVE
PAGE_NONE: int = _c.PAGE_NONE
PAGE_RO: int = _c.PAGE_RO
PAGE_RX: int = _c.PAGE_RX
PAGE_RW: int = _c.PAGE_RW
PAGE_RWX: int = _c.PAGE_RWX
PAGE_SIZE: int = _c.PAGE_SIZE
PAGE_SHIFT: int = _c.PAGE_SHIFT

#: The ESSA operation request codes by number (``ESSA_GET_STATE`` .. ``ESSA_SET_STABLE_NODAT``,
#: arch/s390/include/asm/page-states.h), lower case without ``ESSA_``: the engine's table.
ORC_NAMES: tuple[str, ...] = tuple(_ESSA_ORC_NAMES)

__all__ = [
    "ORC_NAMES",
    "PAGE_NONE",
    "PAGE_RO",
    "PAGE_RW",
    "PAGE_RWX",
    "PAGE_RX",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "_PAGE_DIRTY",
    "_PAGE_INVALID",
    "_PAGE_LARGE",
    "_PAGE_NOEXEC",
    "_PAGE_PRESENT",
    "_PAGE_PROTECT",
    "_PAGE_READ",
    "_PAGE_SOFT_DIRTY",
    "_PAGE_SPECIAL",
    "_PAGE_SWP_EXCLUSIVE",
    "_PAGE_UNUSED",
    "_PAGE_WRITE",
    "_PAGE_YOUNG",
    "EssaResult",
    "Pgste",
    "Pte",
    "essa",
    "mk_swap_pte",
]
