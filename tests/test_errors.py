"""Errors: typed, with kernel errnos, and never a Rust panic in Python."""

from __future__ import annotations

import ast
import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import reclaim
import reclaim.studies
from conftest import small_kernel


def test_exception_tree() -> None:
    assert issubclass(reclaim.ArgumentError, reclaim.ReclaimError)
    assert issubclass(reclaim.ArgumentError, ValueError)
    assert issubclass(reclaim.SyscallError, OSError)
    assert issubclass(reclaim.SyscallArgumentError, reclaim.SyscallError)
    assert issubclass(reclaim.SyscallArgumentError, ValueError)
    assert issubclass(reclaim.InvariantError, reclaim.ReclaimError)


def test_syscall_errors_carry_errno_number_name_and_call() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(4096)
    u = p.userfaultfd()
    u.register(a, 4096)
    u.copy(a, 1)
    with pytest.raises(reclaim.SyscallError) as e:
        u.copy(a, 2)
    assert e.value.errno == errno.EEXIST
    assert e.value.errno_name == "EEXIST"
    assert e.value.call == "UFFDIO_COPY"
    assert "File exists" in str(e.value)


def test_wrong_python_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        reclaim.Kernel(memory=1.5)  # type: ignore[arg-type]
    k = small_kernel()
    p = k.spawn("p")
    with pytest.raises(TypeError):
        p.read("here")  # type: ignore[arg-type]


def test_rejected_calls_leave_the_model_intact() -> None:
    k = small_kernel()
    p = k.spawn("p")
    a = p.mmap(8192)
    p.write(a, 1)
    for bad in (
        lambda: p.munmap(a + 1, 4096),
        lambda: p.madvise(a, 4096, "x"),
        lambda: p.mlock(a, 1 << 30),
        lambda: p.essa(a, 1),
    ):
        with pytest.raises(reclaim.ReclaimError):
            bad()
        k.check()
    assert p.read(a).value == 1


def test_unknown_event_name_lists_the_known() -> None:
    k = small_kernel()
    with pytest.raises(reclaim.ArgumentError, match="rmap:try_to_unmap_one"):
        k.events("nope")


# Found by the API fuzzer (tests/fuzz_api.py); each was a crash, a panic or a wrong error.


def test_huge_lengths_are_refused_before_anything_is_allocated() -> None:
    k = reclaim.Kernel(profile="6.12", memory="1MiB", swap="1MiB")
    p = k.spawn("p")
    a = p.mmap(4096)
    with pytest.raises(reclaim.ArgumentError, match="in parts"):
        p.page_states(a, 1 << 50)
    with pytest.raises(reclaim.ArgumentError, match="wraps"):
        p.page_states(2**64 - 4096, 8192)
    u = p.userfaultfd()
    with pytest.raises(reclaim.SyscallError) as e:
        u.copy(1 << 20, 1, length=1 << 50)  # nothing registered there: ENOENT, no 2 TiB vector
    assert e.value.errno_name in ("ENOENT", "EINVAL")
    k.check()


def test_page_tables_are_bounded_by_the_kernels_memory() -> None:
    """UFFDIO_ZEROPAGE of 1 TiB on a 1 MiB kernel: the page tables it needs stop at the model's
    page-table limit with ENOMEM (reported as EAGAIN with the bytes done, as mfill ioctls
    report partial progress) instead of exhausting the host; the kernel stays consistent."""
    k = reclaim.Kernel(profile="6.12", memory="1MiB", swap="1MiB")
    p = k.spawn("p", kvm=True)
    a = p.mmap(1 << 40)
    u = p.userfaultfd()
    u.register(a, 1 << 40, missing=True)
    with pytest.raises(reclaim.SyscallError, match=r"ENOMEM.*page table") as e:
        u.zeropage(a, 1 << 40)
    assert e.value.call == "UFFDIO_ZEROPAGE"
    assert 256 << 20 <= k.heap_bytes() < 300 << 20
    k.check()
    assert p.read(a).value == 0  # a zero page it did map
    assert p.read(a + (1 << 40) - 4096).kind == "oom"  # no table left for this one
    u.close()
    p.munmap(a, 1 << 40)
    b = p.mmap("64KiB")
    p.write(b, 7)
    assert p.read(b).value == 7
    k.check()


def test_int_arguments_out_of_range_are_argument_errors() -> None:
    k = small_kernel()
    q = k.spawn("q", kvm=True)
    a = q.mmap(4096)
    for orc in (-1, 8, 2**70):
        with pytest.raises(reclaim.ArgumentError, match=f"ESSA orc {orc} is outside"):
            q.essa(a, orc)
    with pytest.raises(reclaim.ArgumentError, match="64-bit mask"):
        q.userfaultfd(2**70)
    with pytest.raises(reclaim.ArgumentError, match="thread id"):
        q.read(a, tid=2**32 - 1)
    for size in (2**130, -(2**130)):
        with pytest.raises(reclaim.ArgumentError, match="length"):
            q.mmap(size)


def _int_parameters() -> list[tuple[str, str, str]]:
    """(class or "", function, parameter) for every parameter the stub of reclaim._reclaim
    types `int` or `int | None`."""
    tree = ast.parse((Path(reclaim.__file__).parent / "_reclaim.pyi").read_text())
    found = []
    for node in tree.body:
        owner, defs = ("", [node]) if isinstance(node, ast.FunctionDef) else ("", [])
        if isinstance(node, ast.ClassDef):
            owner = node.name
            defs = [d for d in node.body if isinstance(d, ast.FunctionDef)]
        for d in defs:
            for a in d.args.args + d.args.kwonlyargs:
                if a.annotation is not None and ast.unparse(a.annotation) in ("int", "int | None"):
                    found.append((owner, d.name, a.arg))
    return found


def _dummy(annotation: str, tmp: Path) -> object:
    """A value of the stub's type `annotation` that the binding extracts without complaint."""
    if annotation.startswith(("int", "_Size")):
        return 0
    if "PathLike" in annotation:
        return str(tmp / "x")
    if annotation.startswith("str") or annotation == "_Prot":
        return "x"
    if "NDArray" in annotation:
        return np.zeros(1, np.uint64)
    if annotation.endswith("None"):
        return None
    return {
        "bool": False,
        "float": 0.5,
        "Scenario": reclaim.Scenario(),
        "Pte": reclaim._reclaim.Pte(0),
    }[annotation]


def test_every_integer_parameter_refuses_negative_and_too_large_values(tmp_path: Path) -> None:
    """Each integer parameter of the binding (every one the stub types int): -1 and 2**64 are
    an ArgumentError naming the parameter and its range, never an OverflowError; a str a
    TypeError naming it."""
    trace = tmp_path / "t.oracleGeneral"
    reclaim._reclaim.trace_write_zipf(trace, 10, 4)
    k = small_kernel()
    p = k.spawn("p", kvm=True)
    sc = reclaim.Scenario()
    objects: dict[str, object] = {
        "": reclaim._reclaim,
        "Kernel": k,
        "Process": p,
        "Userfaultfd": p.userfaultfd(),
        "Pte": reclaim._reclaim.Pte(0),
        "Pgste": reclaim._reclaim.Pgste(0),
        "PostcopyRun": reclaim.studies.prepare(guest_memory="16MiB"),
        "ReplayRun": reclaim._reclaim.ReplayRun(trace),
        "Scenario": sc,
        "ExploreState": sc.replay([]).state,
    }
    stub = {
        (c.name if isinstance(c, ast.ClassDef) else "", d.name): d
        for c in ast.parse((Path(reclaim.__file__).parent / "_reclaim.pyi").read_text()).body
        for d in (c.body if isinstance(c, ast.ClassDef) else [c])
        if isinstance(d, ast.FunctionDef)
    }
    params = _int_parameters()
    assert len(params) > 60
    for owner, fn, name in params:
        target = (
            getattr(objects[owner], fn) if fn != "__new__" else getattr(reclaim._reclaim, owner)
        )
        d = stub[owner, fn]
        others = {
            a.arg: _dummy(ast.unparse(a.annotation), tmp_path)
            for a in d.args.args + d.args.kwonlyargs
            if a.arg not in ("self", "cls", name) and a.annotation is not None
        }
        for bad in (-1, 2**64):
            with pytest.raises(
                reclaim.ArgumentError, match=rf"^{name} must be an integer from 0 to"
            ):
                target(**others, **{name: bad})
        with pytest.raises(TypeError, match=rf"^{name} must be an int, not str"):
            target(**others, **{name: "1"})
    k.check()


def test_mlock_of_nothing_and_of_too_much() -> None:
    k = reclaim.Kernel(profile="4.17", memory="1MiB", swap="0")
    p = k.spawn("p")
    a = p.mmap(1 << 20)
    p.mlock(a, 0)  # Linux: mlock(addr, 0) == 0
    p.munlock(a, 0)
    big = p.mmap(64 << 20)
    with pytest.raises(reclaim.SyscallError) as e:
        p.mlock(big, 64 << 20)  # more than the machine: populate stops, EAGAIN
    assert e.value.errno_name == "EAGAIN"
    assert p.pte(big + (32 << 20)).none(), "populate stops at the first failure"
    k.check()


@pytest.mark.parametrize("op", ["register", "unregister", "mlock", "munlock", "madvise"])
def test_operations_over_vmas_that_merge_midway(op: str) -> None:
    k = reclaim.Kernel(profile="4.18", memory="1MiB", swap="0")
    p = k.spawn("p")
    base = p.mmap(3 * 4096)
    u = p.userfaultfd()
    if op == "register":
        u.register(base + 4096, 4096)
        u.register(base, 2 * 4096)
    elif op == "unregister":
        u.register(base, 4096)
        u.unregister(base, 2 * 4096)
    elif op == "mlock":
        base = p.mmap(2 * 4096, "anon", shared=True)
        p.mlock(base + 4096, 4096)
        p.mlock(base, 2 * 4096)
    elif op == "munlock":
        p.mlock(base, 4096)
        p.munlock(base, 2 * 4096)
    else:
        p.madvise(base + 4096, 4096, "random")
        p.madvise(base, 2 * 4096, "random")
    k.check()
    # the first two pages end up with the same flags: one VMA, as the kernel merges them
    covering = [(s, e) for s, e, _ in p.vmas() if s <= base < e]
    assert len(covering) == 1 and covering[0][1] >= base + 2 * 4096, p.vmas()


def test_sizes_and_integers_take_numpy_integers() -> None:
    """numpy integers (objects with __index__, typed int by no stub) pass as ints do."""
    k = small_kernel()
    p = k.spawn("p")
    n: Any = np.int64
    a = p.mmap(n(8192))
    assert p.write(n(a), n(5), tid=n(1)).kind == "completed"
    assert p.read(a, tid=n(1)).value == 5
    with pytest.raises(reclaim.ArgumentError, match=r"^length must be an integer from 0 to"):
        p.mmap(n(-4096))
