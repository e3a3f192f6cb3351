"""One run of a sweep: the study protocol, a grid point run with its exception caught as the
run's error."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypedDict

from reclaim.exceptions import ArgumentError
from reclaim.sweeper.grid import _RESERVED, Value


class StudyResult(Protocol):
    """What a study returns (a :class:`~reclaim.studies.PostcopyResult` or alike)."""

    @property
    def outcome(self) -> str:
        """How the run ended: "completed", "hung" or "failed"."""

    @property
    def failure(self) -> str | None:
        """Why a run failed, or None."""

    @property
    def metrics(self) -> Mapping[str, int]:
        """The run's counters, one column each."""

    @property
    def log_hash(self) -> int:
        """The hash of the run's event log."""


#: A study: called with a grid point's parameters as keywords.
Study = Callable[..., StudyResult]


class _Result(TypedDict):
    outcome: str | None
    failure: str | None
    metrics: dict[str, int]
    log_hash: int | None
    error: str | None
    seconds: float


def _run_point(study: Study, params: dict[str, Value]) -> _Result:
    """Run one grid point; an exception becomes the run's error. Runs in the workers."""
    start = time.perf_counter()
    try:
        r = study(**params)
        metrics = dict(r.metrics)
        clash = sorted(set(metrics) & (set(params) | _RESERVED))
        if clash:
            raise ArgumentError(f"metrics {clash} have the names of parameters or columns")
        return {
            "outcome": r.outcome,
            "failure": r.failure,
            "metrics": metrics,
            "log_hash": r.log_hash,
            "error": None,
            "seconds": time.perf_counter() - start,
        }
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # the engine's PanicException is a BaseException
        return _failed(e, time.perf_counter() - start)


def _failed(e: BaseException, seconds: float) -> _Result:
    return {
        "outcome": None,
        "failure": None,
        "metrics": {},
        "log_hash": None,
        "error": f"{type(e).__name__}: {e}",
        "seconds": seconds,
    }


def _settle(get: Callable[[], _Result]) -> _Result:
    """The result of a future; a future that failed (its worker died) gives an error row."""
    try:
        return get()
    except Exception as e:
        return _failed(e, 0.0)


def _study(study: str | Study) -> Study:
    if study == "postcopy":
        from reclaim.studies.postcopy import postcopy

        return postcopy
    if isinstance(study, str) or not callable(study):
        raise ArgumentError(f"unknown study {study!r}: give 'postcopy' or a callable")
    return study


__all__ = ["Study", "StudyResult"]
