"""One line of progress on stderr, rewritten in place (the bars of the CLI, the explorer and
sweeps)."""

from __future__ import annotations

import sys
import time


class StatusLine:
    """A status line that appears once the work has run for ``delay`` seconds (never when
    ``enabled`` is false), is redrawn at most every ``interval`` seconds (always when
    ``final``), and is ended with a newline by :meth:`close` if it was shown."""

    def __init__(self, *, enabled: bool = True, delay: float = 1.0, interval: float = 0.0) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.delay = delay
        self.interval = interval
        self.last = -float("inf")
        self.shown = False

    @property
    def elapsed(self) -> float:
        """Seconds since the line was created."""
        return time.monotonic() - self.start

    def show(self, text: str, *, final: bool = False) -> None:
        """Overwrite the line with ``text`` (on stderr), once ``delay`` has passed and at most
        every ``interval`` seconds; a ``final`` text is shown whatever the interval."""
        now = time.monotonic()
        if not self.enabled or now - self.start < self.delay:
            return
        if not final and now - self.last < self.interval:
            return
        self.last = now
        sys.stderr.write(f"\r{text}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        """End the line with a newline if it was shown (nothing otherwise)."""
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def bar(fraction: float, width: int = 30) -> str:
    """``[#####     ]`` for a fraction in 0..1."""
    n = int(min(1.0, max(0.0, fraction)) * width)
    return f"[{'#' * n:<{width}}]"


__all__ = ["StatusLine", "bar"]
