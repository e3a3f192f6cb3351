"""The s390 architecture layer: PTE and PGSTE values, swap entries, ESSA."""

from __future__ import annotations

import pytest
import reclaim
from hypothesis import given
from hypothesis import strategies as st
from reclaim import s390
from reclaim.s390 import Pgste, Pte, essa, mk_swap_pte

PROTS = [s390.PAGE_NONE, s390.PAGE_RO, s390.PAGE_RX, s390.PAGE_RW, s390.PAGE_RWX]


def test_pte_bits_have_the_kernel_values() -> None:
    assert s390._PAGE_NOEXEC == 0x100
    assert s390._PAGE_PROTECT == 0x200
    assert s390._PAGE_INVALID == 0x400
    assert s390._PAGE_LARGE == 0x800
    assert s390._PAGE_PRESENT == 0x001
    assert s390._PAGE_SOFT_DIRTY == 0x002
    assert s390._PAGE_YOUNG == 0x004
    assert s390._PAGE_DIRTY == 0x008
    assert s390._PAGE_READ == 0x010
    assert s390._PAGE_WRITE == 0x020
    assert s390._PAGE_SPECIAL == 0x040
    assert s390._PAGE_UNUSED == 0x080
    assert s390._PAGE_SWP_EXCLUSIVE == 0x800
    assert s390.PAGE_RW == 0x001 | 0x010 | 0x020 | 0x100 | 0x400 | 0x200


def test_pte_none_is_exactly_invalid() -> None:
    assert Pte(0x400).none()
    assert not Pte(0x401).none()
    assert Pte.empty() == Pte(0x400)
    assert "none" in repr(Pte(0x400))


def test_swap_pte_layout_matches_mk_swap_pte() -> None:
    p = mk_swap_pte(3, 0x1234)
    assert p.value == 0x600 | (0x1234 << 12) | (3 << 2)
    assert p.swap() and not p.present() and not p.none()
    assert (p.swp_type(), p.swp_offset()) == (3, 0x1234)
    assert "swap type=3 offset=0x1234" in repr(p)


def test_swap_entry_out_of_range_is_an_argument_error() -> None:
    with pytest.raises(reclaim.ArgumentError, match="5 bits"):
        mk_swap_pte(32, 1)
    with pytest.raises(ValueError, match="52 bits"):
        mk_swap_pte(0, 1 << 52)


@given(st.integers(0, 31), st.integers(0, (1 << 52) - 1))
def test_swap_entry_round_trips_over_the_full_range(t: int, off: int) -> None:
    p = mk_swap_pte(t, off)
    assert p.swap()
    assert (p.swp_type(), p.swp_offset()) == (t, off)
    x = p.swp_mkexclusive()
    assert x.swp_exclusive() and x.swap() and (x.swp_type(), x.swp_offset()) == (t, off)


@given(st.integers(0, (1 << 40) - 1), st.sampled_from(PROTS))
def test_debug_vm_pgtable_laws(pfn: int, prot: int) -> None:
    pte = Pte.mk(pfn, prot)
    assert pte.mkyoung().young() and not pte.mkold().young()
    assert pte.mkdirty().dirty() and not pte.mkclean().dirty()
    assert pte.mkwrite().write() and not pte.wrprotect().write()
    assert pte.wrprotect().mkwrite().write()
    assert pte.mkclean().mkdirty().dirty()
    # young and dirty are emulated with the hardware invalid and protect bits
    assert pte.mkold().hw_invalid()
    assert pte.mkclean().hw_protect() and pte.wrprotect().hw_protect()
    assert not pte.mkdirty().mkwrite().hw_protect()
    if prot & s390._PAGE_READ:
        assert not pte.mkyoung().hw_invalid()
    assert pte.mkold().pfn() == pfn


def test_pgste_bits_per_profile_layout() -> None:
    old = Pgste(0x0000800000000000, profile="6.12")
    assert old.uc()
    new = Pgste(0x8000, profile="new")
    assert new.uc() and not Pgste(0x8000, profile="6.12").uc()
    u = Pgste(0x01000000)
    assert u.usage == "UNUSED"
    assert "usage=UNUSED" in repr(u)


ESSA_TABLE = [
    # orc, usage after on a valid pte, res, usage after on an invalid pte, res
    ("get_state", "POT_VOLATILE", 0, "POT_VOLATILE", 0),
    ("set_stable", "STABLE", 0, "STABLE", 0),
    ("set_unused", "UNUSED", 0, "UNUSED", 1),
    ("set_volatile", "VOLATILE", 0, "VOLATILE", 1),
    ("set_pot_volatile", "POT_VOLATILE", 0, "VOLATILE", 1),
    ("set_stable_resident", "STABLE", 0, "STABLE", 0),
    ("set_stable_if_resident", "STABLE", 0, "POT_VOLATILE", 0),
    ("set_stable_nodat", "STABLE", 0, "STABLE", 0),
]


@pytest.mark.parametrize("orc,uv,rv,ui,ri", ESSA_TABLE)
def test_essa_orc_on_valid_and_invalid_ptes(orc: str, uv: str, rv: int, ui: str, ri: int) -> None:
    start = Pgste(0x02000000)  # POT_VOLATILE
    valid = Pte.mk(1, s390.PAGE_RW).mkdirty().mkwrite()
    invalid = mk_swap_pte(0, 7)
    a = essa(valid, start, orc)
    assert (a.new_pgste.usage, a.res) == (uv, rv)
    b = essa(invalid, start, orc)
    assert (b.new_pgste.usage, b.res) == (ui, ri)
    assert b.new_pgste.zero() == (ri == 1), "a discard marks the page logically zero"


def test_essa_orc_by_number_and_out_of_range() -> None:
    assert essa(Pte(0x400), Pgste(0), 2).new_pgste.usage == "UNUSED"
    with pytest.raises(reclaim.ArgumentError, match=r"outside 0\.\.7"):
        essa(Pte(0x400), Pgste(0), 8)
    with pytest.raises(reclaim.ArgumentError, match="set_unused"):
        essa(Pte(0x400), Pgste(0), "set_bogus")


def test_profiles_are_data_and_unknown_ones_list_the_known() -> None:
    assert set(reclaim.PROFILES) == {"4.13", "4.17", "4.18", "6.12"}
    assert reclaim.PROFILES["4.17"].switches()["unused_guard"] == "None"
    assert reclaim.PROFILES["4.18"].switches()["unused_guard"] == "UffdArmed"
    assert reclaim.PROFILES["6.12"].switches()["ttu_young_check"] is False
    assert reclaim.PROFILES["6.12"].switches()["vma_has_recency"] is True
    assert reclaim.PROFILES["4.18"].switches()["vma_has_recency"] is False
    assert reclaim.PROFILES["6.12"].switches()["pgste_layout"] == "Old"
    # the switches derived from the release are listed too, each a named kernel change
    for name, old, new in [
        ("migration_entry_ad", False, True),
        ("vmscan_write_folio_tracepoint", False, True),
        ("x86_swp_offset_inverted", False, True),
        ("uffd_close_resets_wp", False, True),
        ("uffd_wp_writenotify", False, True),
    ]:
        assert reclaim.PROFILES["4.18"].switches()[name] is old, name
        assert reclaim.PROFILES["6.12"].switches()[name] is new, name
    with pytest.raises(reclaim.ArgumentError, match=r"4\.17.*4\.18.*6\.12"):
        reclaim.Profile("5.4")
    with pytest.raises(reclaim.ArgumentError, match="s390x"):
        reclaim.Profile("4.18", arch="sparc")


def test_every_orc_name_is_the_orc_of_its_index() -> None:
    """s390.ORC_NAMES is the engine's table: ESSA by name performs the orc of that number."""
    assert len(s390.ORC_NAMES) == 8 and s390.ORC_NAMES[2] == "set_unused"
    pte = Pte.mk(5, s390.PAGE_RW)
    for i, name in enumerate(s390.ORC_NAMES):
        assert essa(pte, Pgste(0), name).orc == i
