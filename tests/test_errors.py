"""Errors: typed, with kernel errnos, and never a Rust panic in Python."""

from __future__ import annotations

import errno

import pytest
import reclaim
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
