"""Where a sweep's runs execute: in this process, in local worker processes, or on dask."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import socket
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from reclaim.exceptions import ArgumentError
from reclaim.sweeper.grid import Value
from reclaim.sweeper.runs import Study, _failed, _Result, _run_point, _settle

_Pending = list[tuple[int, dict[str, Value]]]

#: Seconds a dask scheduler has to accept a connection before the sweep gives up on it.
CONNECT_TIMEOUT = 5.0


def _local(study: Study, pending: _Pending, workers: int) -> Iterator[tuple[int, _Result]]:
    """Runs in `workers` processes, at most four runs a worker queued. A process that dies
    (killed, out of memory) breaks the pool and loses the runs in it: each of those runs again
    alone, so that only the run that kills its process records the error."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    queue = deque(pending)
    while queue:
        lost: _Pending = []
        pool = ProcessPoolExecutor(min(workers, len(queue)), mp_context=ctx)
        try:
            running: dict[Future[_Result], tuple[int, dict[str, Value]]] = {}
            while (queue or running) and not lost:
                while queue and len(running) < 4 * workers:
                    i, p = queue.popleft()
                    running[pool.submit(_run_point, study, p)] = (i, p)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i, p = running.pop(fut)
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        lost.append((i, p))
                        continue
                    except Exception as e:  # the result or the arguments do not pickle
                        r = _failed(e, 0.0)
                    yield i, r
            lost += running.values()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for i, p in sorted(lost):
            with ProcessPoolExecutor(1, mp_context=ctx) as alone:
                yield i, _settle(alone.submit(_run_point, study, p).result)


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ArgumentError(
            "dask executors need dask.distributed: pip install 'reclaim[dask]'"
        ) from None
    return distributed


def _dask(executor: object, study: Study, pending: _Pending) -> Iterator[tuple[int, _Result]]:
    distributed = _distributed()
    own = not isinstance(executor, distributed.Client)
    try:
        client: Any = distributed.Client(executor, timeout=CONNECT_TIMEOUT) if own else executor
    except Exception as e:  # a timeout, or a server that does not speak dask's protocol
        raise ArgumentError(
            f"cannot reach the dask scheduler of {executor!r}: {type(e).__name__}: {e}"
        ) from None
    futures: dict[Any, int] = {}
    try:
        for i, p in pending:
            futures[client.submit(_run_point, study, p, pure=False)] = i
        for fut in distributed.as_completed(list(futures)):
            yield futures.pop(fut), _settle(fut.result)
    finally:
        if futures:
            client.cancel(list(futures))
        if own:
            client.close()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _reach(address: str) -> None:
    """Refuse a tcp:// or tls:// scheduler address that accepts no connection within
    CONNECT_TIMEOUT seconds (at once if the connection is refused), before anything runs."""
    try:
        url = urlsplit(address)
        host, port = url.hostname, url.port
    except ValueError as e:
        raise ArgumentError(f"{address!r} is not a scheduler address: {e}") from None
    if url.scheme not in ("tcp", "tls"):
        return  # another dask transport: the client connects (and times out) itself
    if host is None or port is None:
        raise ArgumentError(f"{address!r} is not a scheduler address like 'tcp://host:8786'")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        why = f"no answer in {CONNECT_TIMEOUT:g} s" if isinstance(e, TimeoutError) else e.strerror
        raise ArgumentError(
            f"no dask scheduler at {address} ({why or e}): start one with `dask scheduler`, "
            "or use the local executor"
        ) from None


def _check_executor(executor: object, study: Study, workers: int | None) -> None:
    """Refuse an executor, a worker count or a study the sweep cannot run with."""
    local = executor in ("local", "processes")
    if workers is not None and (not local or isinstance(workers, bool) or workers < 1):
        raise ArgumentError("workers must be a positive int, for the local executor only")
    if isinstance(executor, str) and "://" not in executor:
        if not local and executor != "serial":
            raise ArgumentError(
                f"unknown executor {executor!r}: 'local', 'serial', a dask Client or cluster, "
                "or a scheduler address like 'tcp://host:8786'"
            )
    else:
        distributed = _distributed()
        if not isinstance(executor, str | distributed.Client | distributed.deploy.Cluster):
            raise ArgumentError(f"executor {executor!r} is not a dask Client or cluster")
        if isinstance(executor, str):
            _reach(executor)
    if executor != "serial":
        try:
            pickle.dumps(study)
        except Exception:
            raise ArgumentError(
                f"study {study!r} cannot be sent to workers (not picklable): define it at the "
                "top level of a module, or use executor='serial'"
            ) from None


def _results(
    executor: object, study: Study, pending: _Pending, workers: int | None
) -> Generator[tuple[int, _Result], None, None]:
    """The results of the pending points as they finish, from a checked executor."""
    if not pending:
        return
    if executor == "serial":
        for i, p in pending:
            yield i, _run_point(study, p)
    elif executor in ("local", "processes"):
        yield from _local(study, pending, workers or _cores())
    else:
        yield from _dask(executor, study, pending)
