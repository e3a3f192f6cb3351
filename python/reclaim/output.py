"""Where a picture is written: the checked path of a PNG output (the timeline plot, the page
heatmap, the sweep plot), refused before any work is done for it."""

from __future__ import annotations

import os
from pathlib import Path

from reclaim.exceptions import ArgumentError, FileError


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
    parent = out.parent
    if not parent.exists():
        raise FileError(f"cannot write {what} {out}: no directory {parent}")
    if not parent.is_dir():
        raise FileError(f"cannot write {what} {out}: {parent} is not a directory")
    if out.is_dir():
        raise FileError(f"cannot write {what} {out}: it is a directory")
    return out


__all__ = ["png_path"]
