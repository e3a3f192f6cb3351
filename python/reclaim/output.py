"""Writing output files: every file reclaim writes from Python (exports, plots, sweep tables)
goes through the engine's one atomic writer (``rust/files.rs``), as snapshots and traces do.

The bytes go to a temporary file of their own beside the target, which is synced and renamed
over it: a failed write (a full file system) leaves an existing file as it was and raises
:class:`reclaim.FileError` naming the path; a target that exists and is not a regular file (a
symbolic link, a device such as ``/dev/null``, a FIFO, a directory) is refused, not replaced.
New files get the mode ``0666`` less the umask, like any other file the process creates.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from reclaim._reclaim import write_file


def write_bytes(path: str | os.PathLike[str], data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (creating its directory); the path written."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_file(dest, data, what)
    return dest


def write_text(path: str | os.PathLike[str], text: str, what: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; the path written."""
    return write_bytes(path, text.encode(), what)


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save the matplotlib figure ``fig`` to ``path`` atomically, in the format its suffix
    names (PNG without one); the path written."""
    dest = Path(path)
    buf = io.BytesIO()
    fmt = dest.suffix[1:].lower() or "png"
    fig.savefig(buf, format=fmt, **kwargs)
    return write_bytes(dest, buf.getvalue(), "figure")


__all__ = ["save_figure", "write_bytes", "write_text"]
