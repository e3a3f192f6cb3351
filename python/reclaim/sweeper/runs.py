"""One run of a sweep: the study protocol, a grid point run with its exception caught as the
run's error."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypedDict

from reclaim.exceptions import ArgumentError
from reclaim.sweeper.grid import _RESERVED, Value, is_switch, switch_params


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
        study_params, _ = switch_params(params)  # set.<switch>: a variant of the profile
        r = study(**study_params)
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


def _check_parameters(study: Study, names: Sequence[str]) -> None:
    """Refuse, before any run, a grid parameter the study does not take (ArgumentError naming
    it and listing the study's parameters). The postcopy study checks its own list; a study
    that takes ``**kwargs`` is not checked."""
    from reclaim.studies.postcopy import check_parameters, postcopy

    names = [n for n in names if not is_switch(n)]
    if study is postcopy:
        check_parameters(names, "grid: the postcopy study")
        return
    try:
        params = inspect.signature(study).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin)
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [n for n in names if n not in takes]
    if unknown:
        name = getattr(study, "__name__", repr(study))
        raise ArgumentError(
            f"grid: the study {name} has no parameter {unknown[0]!r}; "
            f"its parameters: {', '.join(takes)}"
        )


__all__ = ["Study", "StudyResult"]
