"""Engine calls from several Python threads: a call runs with the GIL released and the engine's
lock taken, and a failing call never holds the lock while it builds its exception."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest
import reclaim
from conftest import SMALL_STUDY

#: The reproducer of a deadlock: a thread whose snapshots keep failing, and the main thread
#: polling the run. Before the fix the failing snapshot built its FileError (which needs the GIL)
#: with the run's lock held, while the polling thread held the GIL and waited for the lock.
_POLL_WHILE_SNAPSHOTS_FAIL = """
import faulthandler, sys, threading
import reclaim
faulthandler.dump_traceback_later(40, exit=True)  # a hang prints both stacks and fails
run = reclaim.studies.prepare("4.18", **{study!r})
failures = []
started = threading.Event()
def ck():
    started.wait()  # start failing only once the main thread is in its polling loop
    for _ in range({rounds}):
        try:
            run.snapshot("/proc/no/dir/x.snap")
        except reclaim.FileError:
            failures.append(1)
t = threading.Thread(target=ck, daemon=True)
sys.setswitchinterval(1e-5)  # a failing snapshot takes microseconds: switch threads often
t.start()
polls = 0
while t.is_alive():
    run.progress; run.now; run.steps; run.vmstat(0)
    polls += 1
    started.set()
t.join()
print(len(failures), polls)
"""


def test_a_thread_polling_a_run_while_another_fails_to_snapshot_it_does_not_hang() -> None:
    rounds = 1000
    script = _POLL_WHILE_SNAPSHOTS_FAIL.format(study=dict(SMALL_STUDY), rounds=rounds)
    try:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as e:  # pragma: no cover - the failure this test is for
        pytest.fail(f"the polling and the snapshotting threads deadlocked: {e.stderr!r}")
    assert out.returncode == 0, out.stderr
    failed, polls = map(int, out.stdout.split())
    assert failed == rounds, "every snapshot to a missing directory raises FileError"
    assert polls > 0


def _runs_without_the_gil(call: Callable[[], object]) -> None:
    """`call` (taking a noticeable time) lets another Python thread run in its middle half.

    The interpreter's switch interval is lowered to 0.1 ms for the measurement, so that a call
    of a few milliseconds (an idle machine runs these calls fast) still gives the sampling
    thread many chances; a call holding the GIL throughout gives it none."""
    span: dict[str, float] = {}

    def work() -> None:
        span["start"] = time.perf_counter()
        call()
        span["end"] = time.perf_counter()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        worker = threading.Thread(target=work)
        samples = []
        worker.start()
        while worker.is_alive():
            samples.append(time.perf_counter())
            time.sleep(0.0002)
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    length = span["end"] - span["start"]
    assert length > 0.004, f"the call is too short to tell ({length:.4f}s)"
    middle = [t for t in samples if span["start"] + length / 4 < t < span["end"] - length / 4]
    # a call holding the GIL throughout would leave no sample in its middle half
    assert len(middle) >= 3, (len(middle), length)


def _big_kernel() -> tuple[reclaim.Kernel, reclaim.Process, int]:
    k = reclaim.Kernel(profile="6.12", memory="768MiB", swap="1GiB", seed=1)
    p = k.spawn("big")
    base = p.mmap("512MiB")
    p.run_workload("sequential", start=base, length="512MiB", count=131072, write_fraction=1.0)
    return k, p, base


def test_kernel_check_releases_the_gil() -> None:
    k, _, _ = _big_kernel()
    _runs_without_the_gil(k.check)


def test_madvise_pageout_releases_the_gil() -> None:
    k, p, base = _big_kernel()
    _runs_without_the_gil(lambda: p.madvise(base, "512MiB", "pageout"))
    assert k.vmstat()["pswpout"] > 0


def test_uffdio_copy_releases_the_gil() -> None:
    """(Every call goes through one helper; UFFDIO_ZEROPAGE and kswapd are too quick to time.)"""
    k = reclaim.Kernel(profile="6.12", memory="3GiB", swap="64MiB", seed=1)
    p = k.spawn("qemu")
    base = p.mmap("2GiB")
    u = p.userfaultfd()
    u.register(base, "2GiB")
    _runs_without_the_gil(lambda: u.copy(base, 7, "2GiB"))
    assert p.read(base).value == 7
