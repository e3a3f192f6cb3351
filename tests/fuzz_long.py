"""Long API fuzzing run (``make fuzz``): the state machine of ``tests/fuzz_api.py`` until a
number of API calls have been made (100,000 by default).

Not a pytest module (no ``test_`` prefix). Usage::

    python tests/fuzz_long.py [--calls 100000] [--workers 2] [--examples 200] [--steps 50]

The work runs in worker processes (one per CPU by default), each running rounds of
``--examples`` hypothesis examples with fresh randomness. The parent prints the API calls
made and the calls per second after every round, and every distinct failure once with
hypothesis' minimal example. A worker that stops making calls for ``--hang`` seconds is a
hang, a worker that dies is a crash (a Rust abort, a segfault): both are reported with the
last calls it made (each worker writes its calls to a trace file before making them) and the
worker is replaced. Exit status: 0 without failures, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PREFIX = "@@fuzz "


# -------------------------------------------------------------------------------- worker


def worker(examples: int, steps: int, rounds: int) -> int:
    """Run ``rounds`` rounds (0: forever) of ``examples`` examples; report on stdout."""
    sys.path.insert(0, str(HERE))
    import fuzz_api
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    opts = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    n = 0
    while rounds == 0 or n < rounds:
        n += 1
        before = fuzz_api.STATS.calls
        fuzz_api.STATS.vmstat.clear()
        fuzz_api.STATS.outcomes.clear()
        t0 = time.perf_counter()
        failure = None
        try:
            run_state_machine_as_test(fuzz_api.ApiMachine, settings=opts)
            # the postcopy run and the explorer's scenario, a tenth of the examples
            few = settings(opts, max_examples=max(1, opts.max_examples // 10))
            run_state_machine_as_test(fuzz_api.MigrationMachine, settings=few)
        except Exception as e:
            failure = "".join(traceback.format_exception(e))
        report = {
            "calls": fuzz_api.STATS.calls - before,
            "seconds": time.perf_counter() - t0,
            "failure": failure,
            "slowest": sorted(fuzz_api.STATS.slowest.items(), key=lambda kv: -kv[1])[:5],
            "vmstat": dict(fuzz_api.STATS.vmstat),
            "outcomes": dict(fuzz_api.STATS.outcomes),
        }
        print(PREFIX + json.dumps(report), flush=True)
    return 0


# -------------------------------------------------------------------------------- parent


@dataclass
class Worker:
    """A worker process and its trace file."""

    proc: subprocess.Popen[bytes]
    trace: Path
    stderr: Path
    started: float = field(default_factory=time.time)


def failure_key(text: str) -> str:
    """A key that identifies a failure independently of addresses, values and pids."""
    lines = [ln for ln in text.splitlines() if "Violation" in ln or "Error" in ln]
    last = lines[-1] if lines else text.strip().splitlines()[-1]
    last = re.sub(r"0x[0-9a-f]+", "X", last)
    return re.sub(r"\d+", "N", last)


def read_available(proc: subprocess.Popen[bytes]) -> str:
    """What the worker wrote to its stdout since the last call (without blocking)."""
    assert proc.stdout is not None
    out = b""
    while True:
        try:
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def tail(path: Path, n: int = 25) -> str:
    """The last ``n`` lines of a file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no trace)"


def main(argv: list[str] | None = None) -> int:
    """Fuzz until ``--calls`` API calls have been made; print progress and failures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000, help="API calls to make in all")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--examples", type=int, default=200, help="hypothesis examples per round")
    ap.add_argument("--steps", type=int, default=50, help="stateful steps per example")
    ap.add_argument("--hang", type=float, default=120.0, help="seconds without a call = hang")
    ap.add_argument("--stop-on-failure", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.examples, args.steps, args.rounds)

    tmp = Path(tempfile.mkdtemp(prefix="reclaim-fuzz-"))
    workers: list[Worker] = []
    serial = 0

    def spawn() -> Worker:
        nonlocal serial
        serial += 1
        trace = tmp / f"trace-{serial}.txt"
        stderr = tmp / f"stderr-{serial}.txt"
        env = dict(os.environ, FUZZ_TRACE=str(trace), RUST_BACKTRACE="0")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        cmd += ["--examples", str(args.examples), "--steps", str(args.steps)]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=open(stderr, "w"),  # noqa: SIM115
            env=env,
        )
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        return Worker(proc, trace, stderr)

    for _ in range(max(1, args.workers)):
        workers.append(spawn())
    t0 = time.monotonic()
    calls = 0
    failures: dict[str, int] = {}
    slowest: dict[str, float] = {}
    vmstat: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    buffers: dict[int, str] = {}

    def record_failure(key: str, text: str) -> None:
        failures[key] = failures.get(key, 0) + 1
        if failures[key] == 1:
            print(f"\n==== FAILURE {len(failures)}: {key}\n{text}\n====", flush=True)
        else:
            print(f"(failure {key!r} again, {failures[key]} times)", flush=True)

    try:
        while calls < args.calls and not (failures and args.stop_on_failure):
            time.sleep(0.2)
            for w in list(workers):
                pid = w.proc.pid
                chunk = read_available(w.proc)
                if chunk:
                    buffers[pid] = buffers.get(pid, "") + chunk
                    *lines, buffers[pid] = buffers[pid].split("\n")
                    for line in lines:
                        if not line.startswith(PREFIX):
                            continue
                        rep = json.loads(line[len(PREFIX) :])
                        calls += rep["calls"]
                        vmstat.update(rep["vmstat"])
                        outcomes.update(rep["outcomes"])
                        for api, s in rep["slowest"]:
                            slowest[api] = max(slowest.get(api, 0.0), s)
                        rate = calls / (time.monotonic() - t0)
                        print(
                            f"[{time.monotonic() - t0:7.1f}s] {calls:8d} calls "
                            f"({rate:6.0f} calls/s; round: {rep['calls']} calls in "
                            f"{rep['seconds']:.1f}s)",
                            flush=True,
                        )
                        if rep["failure"]:
                            record_failure(failure_key(rep["failure"]), rep["failure"])
                code = w.proc.poll()
                idle = time.time() - max(
                    w.started, w.trace.stat().st_mtime if w.trace.exists() else 0.0
                )
                if code is not None or (w.trace.exists() and idle > args.hang):
                    kind = f"crash (exit status {code})" if code is not None else "hang"
                    if code is None:
                        w.proc.kill()
                        w.proc.wait()
                    err = tail(w.stderr, 15)
                    record_failure(
                        kind,
                        f"last calls of the worker:\n{tail(w.trace)}\n--- stderr:\n{err}",
                    )
                    workers.remove(w)
                    workers.append(spawn())
    finally:
        for w in workers:
            w.proc.kill()
            w.proc.wait()
    dt = time.monotonic() - t0
    print(f"\n{calls} API calls in {dt:.0f}s: {calls / dt:.0f} calls/s")
    print("slowest calls: " + ", ".join(f"{a} {s:.3f}s" for a, s in sorted(
        slowest.items(), key=lambda kv: -kv[1])[:6]))  # fmt: skip
    print("what the kernels did (vmstat, summed): " + ", ".join(
        f"{k} {v}" for k, v in vmstat.most_common()))  # fmt: skip
    print("call outcomes: " + ", ".join(
        f"{k} {v}" for k, v in sorted(outcomes.items()) if not k.endswith(": ok")))  # fmt: skip
    ok = sorted((k.removesuffix(": ok"), v) for k, v in outcomes.items() if k.endswith(": ok"))
    print("successful calls: " + ", ".join(f"{k} {v}" for k, v in ok))
    if failures:
        print(f"{len(failures)} distinct failures (worker traces in {tmp}):")
        for k, n in failures.items():
            print(f"  {n:4d}x {k}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
