"""Sizes and rates as users write them."""

from __future__ import annotations

import re

from reclaim._reclaim import parse_size
from reclaim.exceptions import ArgumentError


def size(v: int | str, what: str = "size") -> int:
    """Bytes from an int or a string with a binary unit ("512MiB", "4GiB"): the engine's own
    parser, so Python and Rust read sizes the same way."""
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise TypeError(
            f"{what} must be an int (bytes) or a string like '512MiB', not {type(v).__name__}"
        )
    return parse_size(v, what)


_RATE_UNITS = {
    "bit": 1 / 8,
    "kbit": 1e3 / 8,
    "mbit": 1e6 / 8,
    "gbit": 1e9 / 8,
    "tbit": 1e12 / 8,
    "b": 1,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "kib": 1024,
    "mib": 1 << 20,
    "gib": 1 << 30,
}


def rate(v: int | str, what: str = "bandwidth") -> int:
    """Bytes per second from an int or a string like "1Gbit", "10Gbit/s", "125MB/s"."""
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise TypeError(
            f"{what} must be an int (bytes/s) or a string like '1Gbit', not {type(v).__name__}"
        )
    if isinstance(v, int):
        if v <= 0:
            raise ArgumentError(f"{what} must be positive, got {v}", 22, "EINVAL")
        return v
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)(?:/s)?\s*", v)
    if not m or m.group(2).lower() not in _RATE_UNITS:
        raise ArgumentError(
            f"cannot parse {what} {v!r}: expected e.g. '1Gbit' or '125MB/s'", 22, "EINVAL"
        )
    r = int(float(m.group(1)) * _RATE_UNITS[m.group(2).lower()])
    if r <= 0:
        raise ArgumentError(f"{what} {v!r} is not positive", 22, "EINVAL")
    return r


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def duration(v: int | str, what: str = "duration") -> int:
    """Nanoseconds from an int (nanoseconds) or a string with a unit: "20000ns", "100us",
    "5ms", "1.5s". Never negative (whether 0 makes sense is the caller's to say)."""
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise TypeError(
            f"{what} must be an int (nanoseconds) or a string like '100us', not {type(v).__name__}"
        )
    if isinstance(v, int):
        ns = v
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)\s*", v)
        if not m:
            raise ArgumentError(
                f"cannot parse {what} {v!r}: expected a number and a unit of ns, us, ms or s, "
                "e.g. '100us'",
                22,
                "EINVAL",
            )
        ns = round(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
    if ns < 0:
        raise ArgumentError(f"{what} must not be negative, got {v!r}", 22, "EINVAL")
    return ns
