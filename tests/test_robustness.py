"""Robustness at the edges (issue 23): outputs written whole or not at all, special files
refused, sizes the host cannot hold refused instead of aborting the interpreter, inputs whose
headers announce more than they hold refused before their bodies are read.

Tests that could abort or block run in a subprocess under a timeout and an address-space
limit (``RLIMIT_AS``), so that a regression fails the test instead of killing or hanging the
test run."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import reclaim
import reclaim.units
from conftest import small_kernel
from reclaim.output import write_bytes

#: The address-space limit of the subprocesses that ask for too much: far below what the sizes
#: they ask for need, far above what the interpreter and the engine need to start.
LIMIT_AS = 2 << 30


def run_limited(
    code: str, *, timeout: float = 60, fsize: int | None = None, limit_as: int = LIMIT_AS
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with at most ``limit_as`` bytes of address space
    (and, if ``fsize`` is given, files of at most ``fsize`` bytes: a write past it fails with
    EFBIG, an injected write error)."""
    prelude = textwrap.dedent(
        f"""
        import resource, signal
        resource.setrlimit(resource.RLIMIT_AS, ({limit_as}, {limit_as}))
        if {fsize!r} is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize!r}, {fsize!r}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_limited(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_limited(
        f"""
        import sys
        from reclaim.cli import main
        sys.exit(main({list(args)!r}))
        """,
        timeout=timeout,
    )


# ---------------------------------------------------------------- item 2: racing snapshots


def test_two_threads_snapshotting_two_kernels_to_one_path_each_write_a_whole_file(
    tmp_path: Path,
) -> None:
    kernels = [small_kernel("4.18"), small_kernel("6.12")]
    for i, k in enumerate(kernels):
        p = k.spawn("t")
        a = p.mmap("1MiB")
        for j in range(64 * (i + 1)):
            p.write(a + j * 4096, j)
    for i, k in enumerate(kernels):
        k.snapshot(tmp_path / f"own{i}")
    own = [(tmp_path / f"own{i}").read_bytes() for i in range(2)]
    for i in range(2):
        (tmp_path / f"own{i}").unlink()
    path = tmp_path / "k.snap"
    errors: list[BaseException] = []

    def snap(k: reclaim.Kernel) -> None:
        try:
            for _ in range(20):
                k.snapshot(path)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=snap, args=(k,)) for k in kernels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_bytes() in own, "the file is one kernel's whole snapshot"
    reclaim.Kernel.restore(path).check()
    assert sorted(os.listdir(tmp_path)) == ["k.snap"], "no temporary file is left"


# ------------------------------------------------------ item 3: sizes the host cannot hold


@pytest.mark.parametrize(
    "call",
    [
        "reclaim.Kernel(memory='1TiB')",
        "reclaim.Kernel(memory='64MiB', swap='7TiB')",
        "reclaim.replay(path, memory=2**40)",
    ],
)
def test_a_size_the_host_cannot_hold_is_an_argument_error_not_an_abort(
    call: str, tmp_path: Path
) -> None:
    trace = tmp_path / "t.oracle"
    reclaim.trace.write_zipf(trace, 100, 10)
    r = run_limited(
        f"""
        import reclaim
        path = {str(trace)!r}
        try:
            {call}
        except reclaim.ArgumentError as e:
            print("refused:", e)
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused:" in r.stdout and "of host memory" in r.stdout, r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "TRACE", "--memory", "1TiB"],
        ["replay", "TRACE", "--memory", "5000000%"],
        ["replay", "TRACE", "--swap", "7TiB"],
        ["study", "postcopy", "--guest-memory", "1TiB"],
        ["study", "postcopy", "--guest-memory", "16MiB", "--host-memory", "1TiB"],
    ],
)
def test_the_cli_refuses_sizes_the_host_cannot_hold_with_exit_2(
    args: list[str], tmp_path: Path
) -> None:
    trace = tmp_path / "t.oracle"
    reclaim.trace.write_zipf(trace, 20_000, 10_000)  # thousands of pages: 5000000% is TiBs
    r = run_cli_limited(*[str(trace) if a == "TRACE" else a for a in args])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "of host memory" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


# ------------------------------------- item 4: headers are checked before bodies are read


def test_restore_checks_the_header_before_reading_a_huge_sparse_file(tmp_path: Path) -> None:
    big = tmp_path / "sparse.snap"
    with big.open("wb") as f:
        f.truncate(4 << 30)
    r = run_limited(
        f"""
        import reclaim
        try:
            reclaim.Kernel.restore({str(big)!r})
        except reclaim.FormatError as e:
            print("refused:", e)
        """,
        timeout=20,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "at offset 0: not a reclaim snapshot" in r.stdout, r.stdout


def test_restore_refuses_a_header_whose_length_disagrees_with_the_file(tmp_path: Path) -> None:
    small_kernel().snapshot(tmp_path / "good.snap")
    good = (tmp_path / "good.snap").read_bytes()
    bad = tmp_path / "long.snap"
    bad.write_bytes(good[:16] + struct.pack("<Q", 1 << 60) + good[24:])
    with pytest.raises(reclaim.FormatError, match="at offset 16: truncated"):
        reclaim.Kernel.restore(bad)


def test_a_binary_trace_announcing_more_records_than_it_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    reclaim.trace.write(path, np.arange(4, dtype=np.uint64), format="binary")
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack("<Q", 1 << 60)
    path.write_bytes(bytes(data))
    with pytest.raises(reclaim.FormatError, match=r"offset 16.*announces 1152921504606846976"):
        reclaim.trace.replay(path, limit=2)
    with pytest.raises(reclaim.FormatError, match="offset 16"):
        reclaim.trace.read(path, limit=2)


# -------------------------------------------- items 6, 7: outputs whole, special targets


def test_a_failed_trace_write_keeps_the_old_file_and_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "t.oracle"
    reclaim.trace.write_zipf(path, 100, 10)
    before = path.read_bytes()
    r = run_limited(
        f"""
        import reclaim
        try:
            reclaim.trace.write_zipf({str(path)!r}, 200_000, 1000)
        except reclaim.FileError as e:
            print("refused:", e)
        """,
        fsize=64 << 10,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"cannot write trace {path}" in r.stdout, r.stdout
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.oracle"], "the temporary file is removed"


def test_a_failed_export_keeps_the_old_file_and_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text("old")
    r = run_limited(
        f"""
        import reclaim
        from reclaim.output import write_text
        try:
            write_text({str(path)!r}, "x" * (1 << 20), "trace")
        except reclaim.FileError as e:
            print("refused:", e)
        """,
        fsize=64 << 10,
    )
    assert f"cannot write trace {path}" in r.stdout, (r.stdout, r.stderr[-2000:])
    assert path.read_text() == "old"


def test_snapshot_refuses_a_device_a_fifo_and_a_symlink_and_leaves_them(tmp_path: Path) -> None:
    k = small_kernel()
    with pytest.raises(reclaim.FileError, match="/dev/null: it is a character device"):
        k.snapshot("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(reclaim.FileError, match="it is a FIFO"):
        k.snapshot(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(reclaim.FileError, match="symbolic link"):
        k.snapshot(link)
    with pytest.raises(reclaim.FileError, match="symbolic link"):
        write_bytes(link, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


@pytest.mark.parametrize(
    "code",
    [
        "reclaim.Kernel.restore(FIFO)",
        "reclaim.trace.replay(FIFO)",
        "reclaim.studies.PostcopyRun.restore(FIFO)",
    ],
)
def test_reading_a_fifo_is_refused_without_blocking(code: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_limited(
        f"""
        import reclaim, reclaim.studies
        FIFO = {str(fifo)!r}
        try:
            {code}
        except reclaim.FileError as e:
            print("refused:", e)
        """,
        timeout=30,
    )
    assert "it is a FIFO, not a regular file" in r.stdout, (r.stdout, r.stderr[-2000:])


def test_the_cli_refuses_to_replay_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_cli_limited("replay", str(fifo), timeout=30)
    assert r.returncode != 0 and "FIFO" in r.stderr, r.stderr[-2000:]


def test_reading_dev_zero_is_refused() -> None:
    with pytest.raises(reclaim.FileError, match="character device"):
        reclaim.Kernel.restore("/dev/zero")


# ------------------------------------------------------------- item 9: modes honour umask


def test_outputs_get_the_mode_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "t.parquet", b"x")
        small_kernel().snapshot(tmp_path / "k.snap")
    finally:
        os.umask(old)
    for name in ["t.parquet", "k.snap"]:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


# ------------------------------------------------ item 4: small inputs that grow unbounded


def test_fork_fails_with_enomem_at_the_page_table_limit() -> None:
    k = reclaim.Kernel(profile="4.18", memory="64MiB", swap="0", seed=1)
    p = k.spawn("parent", kvm=True)
    a = p.mmap("32MiB")
    for i in range(0, 32 << 20, 1 << 20):
        p.write(a + i, 1)
    children = []
    with pytest.raises(reclaim.SyscallError, match="page-table limit") as e:
        for _ in range(10_000):
            children.append(p.fork())
    assert e.value.errno == 12  # ENOMEM
    assert 0 < len(children) < 10_000
    k.check()


def test_precopy_iterations_lower_the_automatic_trace_level() -> None:
    def level(iterations: int) -> str:
        run = reclaim.studies.prepare(
            "4.18", guest_memory="16MiB", host_memory="14MiB", precopy_iterations=iterations
        )
        return run.result().trace

    assert level(1) == "full"
    assert level(1000) != "full"


def test_other_load_the_destination_cannot_hold_is_refused_naming_it() -> None:
    r = run_limited(
        """
        import reclaim
        try:
            reclaim.studies.prepare("4.18", guest_memory="16MiB", other_load="1TiB")
        except reclaim.ArgumentError as e:
            print("refused:", e)
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused: other_load of 1.0 TiB is more than the destination's memory and swap" in (
        r.stdout
    ), r.stdout


def test_the_cli_refuses_other_load_the_destination_cannot_hold_with_exit_2() -> None:
    r = run_cli_limited("study", "postcopy", "--guest-memory", "16MiB", "--other-load", "1TiB")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "other_load of 1.0 TiB" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_a_snapshot_of_a_kernel_with_a_huge_swap_costs_less_memory_than_its_size(
    tmp_path: Path,
) -> None:
    """The snapshot is streamed: with the address space limited to what the kernel already
    takes plus 64 MiB, a kernel of 128 GiB of swap (a payload of hundreds of MiB) snapshots and
    restores; buffering the payload would need more than the limit."""
    path = tmp_path / "k.snap"
    r = run_limited(
        f"""
        import resource
        import reclaim
        k = reclaim.Kernel(profile="4.18", memory="16MiB", swap="128GiB", seed=1)
        with open("/proc/self/statm") as f:
            vsz = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vsz + (64 << 20), vsz + (64 << 20)))
        k.snapshot({str(path)!r})
        """,
        limit_as=8 << 30,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert path.stat().st_size > 128 << 20, "the payload is larger than the margin"


def test_a_grid_of_a_billion_points_is_refused_before_it_is_built() -> None:
    grid = {f"p{i}": list(range(30)) for i in range(7)}  # 30**7 = 2.2e10 points
    with pytest.raises(reclaim.ArgumentError, match="a sweep runs at most"):
        reclaim.sweep("postcopy", grid)


# ----------------------------------------------------------------- item 9: smaller bounds


def test_essa_vcpu_ids_stop_where_thread_ids_do() -> None:
    k = small_kernel()
    p = k.spawn("qemu", kvm=True)
    a = p.mmap("64KiB")
    p.write(a, 1)
    p.essa(a, "set_stable", vcpu=65535)
    with pytest.raises(reclaim.ArgumentError, match=r"0\.\.=65535"):
        p.essa(a, "set_stable", vcpu=2**32 - 1)


def test_decimal_units_are_refused_for_sizes_and_decimal_in_rates() -> None:
    with pytest.raises(reclaim.ArgumentError, match=r"MB means 10\^6 bytes.*write 125MiB"):
        reclaim.Kernel(memory="125MB")
    assert reclaim.units.rate("125MB/s") == 125_000_000
    assert reclaim.units.size("125MiB") == 125 << 20


def test_a_fraction_of_a_unit_is_a_size_when_it_is_whole_bytes() -> None:
    assert reclaim.units.size("1.5MiB") == 3 << 19
    assert reclaim.units.size("0.5GiB") == reclaim.units.size("512MiB")
    with pytest.raises(reclaim.ArgumentError, match="not a whole number of bytes"):
        reclaim.units.size("1.1B")
