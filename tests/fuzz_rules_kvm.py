"""The API fuzzer's rules on KVM guests and the s390 value types (see :mod:`fuzz_api`)."""

from __future__ import annotations

from typing import Any

import reclaim.s390 as s390
from fuzz_machine import ApiMachineBase
from fuzz_model import (
    PAGE,
    PGSTE_METHODS,
    PTE_METHODS,
    U64,
    Arg,
    Violation,
    _value_or_call,
    mostly,
    size_value,
    weighted,
)
from hypothesis import strategies as st
from hypothesis.stateful import rule


class KvmRules(ApiMachineBase):
    """Rules on KVM processes (PGSTEs, ESSA, storage keys) and the value types of
    :mod:`reclaim.s390`."""

    # ---------------------------------------------------------------- KVM

    def draw_orc(self, data: st.DataObject) -> Arg:
        """An ESSA orc: 0..7, a name, or an invalid int / name / type."""
        kind = data.draw(
            weighted((8, "int"), (8, "name"), (2, "bad"), (1, "big"), (1, "type")), label="orc kind"
        )
        if kind == "int":
            return data.draw(st.integers(0, 7), label="orc"), "ok"
        if kind == "name":
            n = data.draw(st.sampled_from(s390.ORC_NAMES), label="orc")
            return data.draw(st.sampled_from([n, n.upper(), f"ESSA_{n.upper()}", f" {n} "])), "ok"
        if kind == "bad":
            return data.draw(
                st.sampled_from([8, -1, 1 << 40, "8", "-1", "", "set_everything"])
            ), "ok"
        if kind == "big":
            return data.draw(st.sampled_from([1 << 63, 1 << 70, -(1 << 70)])), "ok"
        return data.draw(st.sampled_from([1.0, None, [1]])), "type"

    @rule(data=st.data())
    def essa(self, data: st.DataObject) -> None:
        """Process.essa with every orc and bogus ones, on KVM and other processes."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        orc = self.draw_orc(data)
        vcpu = data.draw(
            weighted((8, (0, "ok")), (4, (1, "ok")), (1, ((1 << 32) - 1, "ok")), (1, (-1, "range")))
        )
        ok, r = self.call(
            "Process.essa",
            pm.proc.essa,
            addr[0],
            orc[0],
            vcpu=vcpu[0],
            cats=[addr[1], orc[1], vcpu[1]],
        )
        if ok:
            if not pm.kvm or not pm.alive:
                raise Violation(f"{self.trace[-1]} succeeded on a process without PGSTEs")
            if not 0 <= r.orc <= 7:
                raise Violation(f"{self.trace[-1]}: orc {r.orc}")
            _ = (r.old_pgste, r.new_pgste, r.res, r.intercepted, r.zapped, r.cbrl_len, repr(r))
            pm.cmma.add(addr[0] & ~(PAGE - 1))
        self.sync()

    @rule(
        data=st.data(),
        orc=st.sampled_from(["set_unused", "set_volatile", "set_pot_volatile", "set_stable"]),
        pages=st.integers(1, 32),
        reclaim=st.integers(0, 300),
    )
    def guest_frees(self, data: st.DataObject, orc: str, pages: int, reclaim: int) -> None:
        """A KVM guest changes the CMMA state of a run of pages (ESSA), then the host
        reclaims: the path of the seed bug (dropped UNUSED pages)."""
        kvm = [p for p in self.live() if p.kvm and p.regions]
        if not kvm:
            return
        pm = data.draw(st.sampled_from(kvm), label="process")
        r = data.draw(st.sampled_from(pm.regions), label="region")
        first = self.draw_page_index(data, r)
        for i in range(first, min(r.pages(), first + pages)):
            out = self.call("Process.essa", pm.proc.essa, r.start + i * PAGE, orc)
            self.must_succeed(out, "ESSA on a mapped page of a KVM process")
            pm.cmma.add(r.start + i * PAGE)
            self.sync()
        if reclaim:
            self.call("Kernel.reclaim", self.kernel.reclaim, reclaim)
            self.sync()

    @rule(
        data=st.data(),
        vcpu=weighted((8, (0, "ok")), (4, (1, "ok")), (1, (7, "ok")), (1, (-1, "range"))),
    )
    def process_cbrl(self, data: st.DataObject, vcpu: Arg) -> None:
        """Process.process_cbrl of any vCPU."""
        pm = self.draw_proc(data)
        self.call("Process.process_cbrl", pm.proc.process_cbrl, vcpu[0], cats=[vcpu[1]])
        self.sync()

    @rule(data=st.data())
    def diag10(self, data: st.DataObject) -> None:
        """Process.diag10 over any range: zaps like MADV_DONTNEED."""
        pm = self.draw_proc(data)
        start = self.draw_addr(data, pm)
        r = pm.region_at(start[0]) if isinstance(start[0], int) else None
        if data.draw(st.booleans(), label="end from length") and isinstance(start[0], int):
            length = self.draw_len(data, r, start[0])
            n = size_value(length[0])
            end: Arg = (start[0] + n, "ok") if n is not None else self.draw_addr(data, pm)
            if isinstance(end[0], int) and end[0] >= U64:
                end = (end[0], "range")
        else:
            end = self.draw_addr(data, pm)
        ok, n = self.call(
            "Process.diag10", pm.proc.diag10, start[0], end[0], cats=[start[1], end[1]]
        )
        if ok:
            if not pm.kvm:
                raise Violation("diag10 of a process without PGSTEs succeeded")
            self.drop_private(pm, start[0], end[0])
        self.sync()

    @rule(
        data=st.data(),
        bits=mostly(st.integers(0, 255), st.sampled_from([256, -1])),
    )
    def cmma_bits(self, data: st.DataObject, bits: int) -> None:
        """Process.set_cmma_bits / get_cmma_bits at any address."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        cat = "ok" if 0 <= bits < 256 else "range"
        ok, _ = self.call(
            "Process.set_cmma_bits", pm.proc.set_cmma_bits, addr[0], bits, cats=[addr[1], cat]
        )
        if ok:
            if not pm.kvm:
                raise Violation("set_cmma_bits of a process without PGSTEs succeeded")
            pm.cmma.add(addr[0] & ~(PAGE - 1))
        self.sync()
        ok, got = self.call("Process.get_cmma_bits", pm.proc.get_cmma_bits, addr[0], cats=[addr[1]])
        if ok and not 0 <= got < 256:
            raise Violation(f"get_cmma_bits returned {got!r}")

    @rule(data=st.data())
    def enable_skey(self, data: st.DataObject) -> None:
        """Process.enable_skey (zero-page mappings go; contents stay)."""
        pm = self.draw_proc(data)
        ok, _n = self.call("Process.enable_skey", pm.proc.enable_skey)
        if ok and not pm.kvm:
            raise Violation("enable_skey of a process without PGSTEs succeeded")
        self.sync()

    @rule(data=st.data())
    def migrate_page(self, data: st.DataObject) -> None:
        """Process.migrate_page at any address (content moves with the page)."""
        pm = self.draw_proc(data)
        addr = self.draw_addr(data, pm)
        ok, pfn = self.call("Process.migrate_page", pm.proc.migrate_page, addr[0], cats=[addr[1]])
        if ok and pfn is not None and not 0 < pfn < self.kernel.memory // PAGE:
            raise Violation(f"migrate_page returned pfn {pfn}")
        self.sync()

    # ---------------------------------------------------------------- value types

    @rule(
        value=mostly(st.integers(0, U64 - 1), st.sampled_from([-1, U64, 1 << 130])),
        other=st.integers(0, U64 - 1),
        orc=st.one_of(st.integers(-1, 8), st.sampled_from(s390.ORC_NAMES)),
        arch=weighted((4, "s390x"), (2, "x86_64"), (1, "sparc")),
        profile=weighted((2, "4.17"), (2, "4.18"), (2, "6.12"), (1, "2.6")),
        pte_methods=st.lists(st.sampled_from(PTE_METHODS), min_size=1, max_size=4, unique=True),
        pgste_methods=st.lists(st.sampled_from(PGSTE_METHODS), max_size=2, unique=True),
    )
    def values(
        self,
        value: int,
        other: int,
        orc: Any,
        arch: str,
        profile: str,
        pte_methods: list[str],
        pgste_methods: list[str],
    ) -> None:
        """reclaim.s390: Pte (any method), Pgste, mk_swap_pte, Pte.mk, essa on values."""
        cats = ["range"] if not 0 <= value < U64 else ["ok"]
        ok, pte = self.call("Pte", s390.Pte, value, arch, cats=cats, check=False)
        if ok:
            for m in pte_methods:
                if m == "modify":
                    self.call("Pte.modify", pte.modify, other, check=False)
                else:
                    self.call(f"Pte.{m}", lambda m=m: _value_or_call(getattr(pte, m)), check=False)
        self.call("Pte.mk", s390.Pte.mk, other >> 12, other & 0xFFF, check=False)
        self.call("mk_swap_pte", s390.mk_swap_pte, other & 0x1F, other >> 5, check=False)
        okg, g = self.call("Pgste", s390.Pgste, other, profile, check=False)
        if okg:
            for m in pgste_methods:
                self.call(f"Pgste.{m}", lambda m=m: _value_or_call(getattr(g, m)), check=False)
        if ok and okg:
            self.call("essa", s390.essa, pte, g, orc, check=False)
