"""Snapshots: a kernel or a postcopy run restored from a snapshot continues with an
event log identical, bit for bit, to the run that was never interrupted; damaged files are
refused with a FormatError that says where and what."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import reclaim
from reclaim.studies import PostcopyResult, PostcopyRun, prepare

PAGE = 4096


def busy_kernel(profile: str) -> tuple[reclaim.Kernel, reclaim.Process, int]:
    """A kernel under pressure: a KVM process, pages swapped and dropped, a parked vCPU."""
    k = reclaim.Kernel(profile=profile, memory="2MiB", swap="4MiB", seed=5)
    qemu = k.spawn("qemu-system-s390x", kvm=True)
    ram = qemu.mmap(256 * PAGE)
    for i in range(256):
        qemu.write(ram + i * PAGE, 0x1000 + i)
    hole = qemu.mmap(16 * PAGE)
    uffd = qemu.userfaultfd()
    uffd.register(hole, 16 * PAGE, missing=True)
    assert qemu.read(hole, tid=1).kind == "blocked"
    qemu.essa(ram, "set_unused")
    k.reclaim(64)
    return k, qemu, ram


def drive(qemu: reclaim.Process, ram: int, rounds: int) -> None:
    for r in range(rounds):
        for i in range(0, 256, 3):
            page = ram + ((i * 7 + r * 13) % 256) * PAGE
            if (i + r) % 4 == 0:
                qemu.write(page, r * 1000 + i)
            else:
                qemu.read(page)


@pytest.mark.parametrize("profile", ["4.17", "4.18", "6.12"])
def test_a_restored_kernel_continues_bit_for_bit(profile: str, tmp_path: Path) -> None:
    k, qemu, ram = busy_kernel(profile)
    drive(qemu, ram, 5)
    snap = tmp_path / "k.snap"
    k.snapshot(snap)
    drive(qemu, ram, 10)

    r = reclaim.Kernel.restore(snap)
    rq = next(p for p in r.processes() if p.pid == qemu.pid)
    drive(rq, ram, 10)

    assert r.log_hash() == k.log_hash()
    assert [e.text for e in r.events()] == [e.text for e in k.events()]
    assert r.vmstat() == k.vmstat()
    assert r.vmstat()["pswpout"] > 0
    assert r.now == k.now
    assert r.blocked() == k.blocked()
    r.check()
    # the whole state: both snapshot to the same bytes
    k.snapshot(tmp_path / "a.snap")
    r.snapshot(tmp_path / "b.snap")
    assert (tmp_path / "a.snap").read_bytes() == (tmp_path / "b.snap").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.snap", "b.snap", "k.snap"], "no temporary file left"


def test_a_restored_kernels_parked_thread_is_woken_through_its_userfaultfd(
    tmp_path: Path,
) -> None:
    k, qemu, _ = busy_kernel("4.18")
    assert [u.id for u in qemu.userfaultfds()] == [0]
    snap = tmp_path / "k.snap"
    k.snapshot(snap)

    r = reclaim.Kernel.restore(snap)
    rq = next(p for p in r.processes() if p.pid == qemu.pid)
    assert rq.is_blocked(tid=1)
    (uffd,) = rq.userfaultfds()
    assert uffd.offered == qemu.userfaultfds()[0].offered
    (msg,) = uffd.read_events()
    assert isinstance(msg, reclaim.UffdPagefault)
    uffd.copy(msg.address, 0xC0FFEE)  # UFFDIO_COPY wakes the parked vCPU, whose read completes
    assert not rq.is_blocked(tid=1)
    woken = rq.last_access(tid=1)
    assert woken is not None and woken.completed and woken.value == 0xC0FFEE
    r.check()
    uffd.close()
    assert rq.userfaultfds() == [], "a closed userfaultfd is no longer listed"
    other = r.spawn("other")
    assert other.userfaultfds() == []


def small_run(profile: str, seed: int) -> PostcopyRun:
    return prepare(profile, guest_memory="16MiB", seed=seed, bandwidth="200Mbit")


def finish(run: PostcopyRun) -> PostcopyResult:
    t = run.now
    while not run.advance(t):
        t += 50_000_000
    return run.result()


@pytest.mark.parametrize("profile", ["4.17", "4.18"])
def test_a_restored_postcopy_run_continues_bit_for_bit(profile: str, tmp_path: Path) -> None:
    whole = finish(small_run(profile, 2))

    run = small_run(profile, 2)
    run.advance(whole.metrics["total_time_ns"] // 2)
    t1 = run.now
    assert 0 < t1 < whole.metrics["total_time_ns"]
    snap = tmp_path / "run.snap"
    run.snapshot(snap)
    a = finish(run)
    restored = PostcopyRun.restore(str(snap))
    assert restored.now == t1
    b = finish(restored)

    for r in (a, b):
        assert r.log_hash == whole.log_hash
        assert r.metrics == whole.metrics
        assert r.outcome == whole.outcome
    assert b.profile == profile and b.seed == 2
    assert (restored.vmstat(1), restored.vmstat(0)) == (run.vmstat(1), run.vmstat(0))
    assert (restored.page_states(1) == run.page_states(1)).all()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("snap") / "good.snap"
    busy_kernel("4.18")[0].snapshot(path)
    return path.read_bytes()


def refused(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "bad.snap"
    path.write_bytes(data)
    with pytest.raises(reclaim.FormatError) as e:
        reclaim.Kernel.restore(path)
    return str(e.value)


def test_damaged_files_are_refused_saying_where(good: bytes, tmp_path: Path) -> None:
    assert "offset 5: truncated" in refused(tmp_path, good[:5])
    assert "offset 0: not a reclaim snapshot" in refused(tmp_path, b"PK\x03\x04" + good[4:])
    (version,) = struct.unpack("<I", good[8:12])
    other = good[:8] + struct.pack("<I", version + 1) + good[12:]
    want = f"offset 8: format version {version + 1}; this reclaim reads version {version}"
    assert want in refused(tmp_path, other)
    assert "offset 16: truncated" in refused(tmp_path, good[:-100])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    assert "offset 24: checksum mismatch" in refused(tmp_path, bytes(flipped))


def test_the_wrong_kind_and_missing_files(good: bytes, tmp_path: Path) -> None:
    path = tmp_path / "kernel.snap"
    path.write_bytes(good)
    with pytest.raises(reclaim.FormatError, match="holds a kernel, expected a postcopy run"):
        PostcopyRun.restore(path)
    with pytest.raises(reclaim.FileError, match=r"nothing\.snap"):
        reclaim.Kernel.restore(tmp_path / "nothing.snap")
    k = reclaim.Kernel(memory="1MiB")
    with pytest.raises(reclaim.FileError):
        k.snapshot(tmp_path / "no" / "such" / "dir.snap")
    # a refused restore leaves the file as it was, a kernel snapshot that still restores
    assert reclaim.Kernel.restore(path).log_hash() == reclaim.Kernel.restore(path).log_hash()
