"""Studies: whole scenarios from configuration to result."""

from __future__ import annotations

from reclaim.studies.postcopy import PostcopyResult, PostcopyRun, postcopy, prepare

__all__ = ["PostcopyResult", "PostcopyRun", "postcopy", "prepare"]
