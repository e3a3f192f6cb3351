"""Writing output files: every file reclaim writes from Python (exports, plots, sweep tables)
goes through the engine's one atomic writer (``rust/files.rs``), as snapshots and traces do.

The bytes go to a temporary file of their own beside the target, which is synced and renamed
over it: a failed write (a full file system) leaves an existing file as it was and raises
:class:`reclaim.FileError` naming the path; a target that exists and is not a regular file (a
symbolic link, a device such as ``/dev/null``, a FIFO, a directory) is refused, not replaced.
No directory is created: a path whose directory does not exist is a one-line FileError.
New files get the mode ``0666`` less the umask, like any other file the process creates.
:func:`output_path` (any file) and :func:`png_path` (a picture) check where an output goes
before any work is done for it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from reclaim._reclaim import write_file
from reclaim.exceptions import ArgumentError, FileError


def output_path(path: str | os.PathLike[str], what: str = "the output") -> Path:
    """`path` as a Path, checked as a place to write `what` to: it names a file, its directory
    exists (none is created) and it is not itself a directory; else a FileError (ArgumentError
    for a path that names no file) naming `what` and the path."""
    out = Path(path)
    if not out.name:
        raise ArgumentError(f"{what}: {str(path)!r} names no file")
    parent = out.parent
    if not parent.exists():
        raise FileError(f"cannot write {what} {out}: no directory {parent}")
    if not parent.is_dir():
        raise FileError(f"cannot write {what} {out}: {parent} is not a directory")
    if out.is_dir():
        raise FileError(f"cannot write {what} {out}: it is a directory")
    return out


def write_bytes(path: str | os.PathLike[str], data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically; the path written. Its directory must exist
    (:func:`output_path`)."""
    dest = output_path(path, what)
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


def png_path(path: str | os.PathLike[str], what: str = "the plot") -> Path:
    """The path a PNG named `path` is written to: `path` itself if it ends in ``.png``, with
    ``.png`` added if it has no suffix. Another suffix is an ArgumentError; a directory that
    does not exist (none is created) or a path that is a directory a FileError, each naming
    `what` and the path."""
    out = Path(path)
    if not out.name:
        raise ArgumentError(f"{what}: {str(path)!r} names no file")
    if out.suffix == "":
        out = out.with_name(out.name + ".png")
    elif out.suffix.lower() != ".png":
        raise ArgumentError(f"{what} writes a PNG image: give a name ending in .png, not {out}")
    return output_path(out, what)


__all__ = ["output_path", "png_path", "save_figure", "write_bytes", "write_text"]
