"""Synthetic page-access traces for the replay oracle (issue 18): the access patterns that tell
reclaim policies apart.

Each generator returns a :class:`reclaim.trace.Trace` over ``pages`` pages (keys ``0 ..
pages-1``) of ``requests`` requests, seeded. The first access to every page is a store (it
creates the page's data, so that the page takes memory in a kernel, as an object does in a
cache simulator); a later access is a store with probability ``write_fraction``, else a load.

- ``zipf``: page ranks drawn from Zipf(``s``) (rank k has weight 1/(k+1)^s), the ranks
  scattered over the pages by a seeded permutation (hot pages are not neighbours, so swap
  readahead gains nothing from their order).
- ``loop``: 0, 1, ..., pages-1, over and over: plain LRU's worst case whenever memory is
  smaller than the loop (the matrix runs it at 1.2x the memory and below).
- ``hot_scan``: a hot set (``hot`` of the pages, uniform), interrupted every ``period``
  requests by a sequential scan of ``scan`` cold pages (the next ones of the cold rest, round
  robin): what the active list protects.
- ``phase``: the working set (``hot`` of the pages, Zipf(1.0) inside it) moves to disjoint
  pages at each of ``phases`` equal parts of the trace.

:func:`generate` takes a name of :data:`PATTERNS` ("zipf0.9", "zipf1.2", "loop", "hot_scan",
"phase").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reclaim.exceptions import ArgumentError
from reclaim.trace import Trace

#: The named traces of the replay matrix.
PATTERNS = ("zipf0.9", "zipf1.2", "loop", "hot_scan", "phase")


def _check(requests: int, pages: int) -> None:
    if requests < 1 or pages < 1:
        raise ArgumentError(f"a trace needs requests >= 1 and pages >= 1, got {requests}, {pages}")


def _finish(keys: npt.NDArray[np.int64], write_fraction: float, seed: int) -> Trace:
    """Stores: the first access to each page, and a ``write_fraction`` of the others."""
    rng = np.random.default_rng([seed, 1])
    writes = rng.random(len(keys)) < write_fraction
    _, first = np.unique(keys, return_index=True)
    writes[first] = True
    k = keys.astype(np.uint64)
    return Trace("binary", k, writes, np.zeros(len(k), dtype=np.uint64))


def _zipf_ranks(rng: np.random.Generator, n: int, pages: int, s: float) -> npt.NDArray[np.int64]:
    w = 1.0 / np.arange(1, pages + 1, dtype=np.float64) ** s
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    ranks: npt.NDArray[np.int64] = np.searchsorted(cdf, rng.random(n), side="right").astype(
        np.int64
    )
    return np.minimum(ranks, pages - 1)


def zipf(
    requests: int, pages: int, *, s: float = 0.9, seed: int = 0, write_fraction: float = 0.25
) -> Trace:
    """Zipf(``s``) over ``pages`` pages, ranks scattered by a seeded permutation."""
    _check(requests, pages)
    rng = np.random.default_rng([seed, 0])
    perm = rng.permutation(pages)
    return _finish(perm[_zipf_ranks(rng, requests, pages, s)], write_fraction, seed)


def loop(requests: int, pages: int, *, seed: int = 0, write_fraction: float = 0.25) -> Trace:
    """The pages in order, over and over."""
    _check(requests, pages)
    return _finish(np.arange(requests, dtype=np.int64) % pages, write_fraction, seed)


def hot_scan(
    requests: int,
    pages: int,
    *,
    hot: float = 0.2,
    period: int = 20_000,
    scan: float = 0.25,
    seed: int = 0,
    write_fraction: float = 0.25,
) -> Trace:
    """A uniform hot set of ``hot`` of the pages; every ``period`` requests, a sequential scan
    of ``scan`` of the pages through the cold rest."""
    _check(requests, pages)
    rng = np.random.default_rng([seed, 0])
    nhot = max(1, int(pages * hot))
    cold = pages - nhot
    nscan = min(max(1, int(pages * scan)), cold) if cold else 0
    parts: list[npt.NDArray[np.int64]] = []
    done, cursor = 0, 0
    while done < requests:
        h = min(period, requests - done)
        parts.append(rng.integers(0, nhot, h, dtype=np.int64))
        done += h
        s = min(nscan, requests - done)
        if s > 0:
            parts.append(nhot + (cursor + np.arange(s, dtype=np.int64)) % cold)
            cursor = (cursor + s) % cold
            done += s
    return _finish(np.concatenate(parts)[:requests], write_fraction, seed)


def phase(
    requests: int,
    pages: int,
    *,
    hot: float = 0.3,
    phases: int = 3,
    seed: int = 0,
    write_fraction: float = 0.25,
) -> Trace:
    """``phases`` parts; in each, Zipf(1.0) over a working set of ``hot`` of the pages, each
    part's set disjoint from the one before (they wrap around the pages)."""
    _check(requests, pages)
    rng = np.random.default_rng([seed, 0])
    nset = max(1, int(pages * hot))
    bounds = np.linspace(0, requests, phases + 1).astype(np.int64)
    parts = []
    for i in range(phases):
        n = int(bounds[i + 1] - bounds[i])
        ranks = _zipf_ranks(rng, n, nset, 1.0)
        parts.append((i * nset + rng.permutation(nset)[ranks]) % pages)
    return _finish(np.concatenate(parts), write_fraction, seed)


def generate(name: str, requests: int, pages: int, *, seed: int = 0) -> Trace:
    """The trace called ``name`` (one of :data:`PATTERNS`)."""
    if name.startswith("zipf"):
        try:
            s = float(name[4:])
        except ValueError:
            s = -1.0
        if s > 0:
            return zipf(requests, pages, s=s, seed=seed)
    elif name == "loop":
        return loop(requests, pages, seed=seed)
    elif name == "hot_scan":
        return hot_scan(requests, pages, period=max(1000, requests // 20), seed=seed)
    elif name == "phase":
        return phase(requests, pages, seed=seed)
    raise ArgumentError(f"unknown trace pattern {name!r}; one of {', '.join(PATTERNS)}")


__all__ = ["PATTERNS", "generate", "hot_scan", "loop", "phase", "zipf"]
