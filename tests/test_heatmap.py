"""The page-state heatmap of a run (reclaim.heatmap): states binned per page range, and the
PNG."""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import reclaim
from conftest import EVERY, SMALL
from reclaim.heatmap import bin_states, page_heatmap
from reclaim.plot import timeline
from reclaim.studies import postcopy, prepare

PNG = b"\x89PNG\r\n\x1a\n"

# ------------------------------------------------------------------------------ heatmap


def test_bin_states_gives_fractions_per_bin() -> None:
    states = np.array([0, 1, 1, 2, 2, 2, 1, 0, 3, 1], dtype=np.uint8)
    frac = bin_states(states, 4)
    assert frac.shape == (4, 4)  # none, present, swapped, lost (received, then dropped)
    assert np.allclose(frac.sum(axis=1), 1.0)
    assert np.allclose(frac[0], [0.5, 0.5, 0.0, 0.0])  # pages 0-1
    assert np.allclose(frac[3], [1 / 3, 1 / 3, 0.0, 1 / 3])  # pages 7-9
    assert bin_states(states, 100).shape == (10, 4)  # at most one bin per page


def test_page_heatmap_png(tmp_path: Path) -> None:
    factory = functools.partial(prepare, "4.17", **SMALL)
    path = page_heatmap(factory, every_ns=EVERY, path=tmp_path / "heat.png")
    assert path == tmp_path / "heat.png"
    data = path.read_bytes()
    assert data[:8] == PNG and 10_000 < len(data) < 2_000_000
    image = matplotlib.image.imread(path)
    assert image.shape == (500, 1200, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    run = prepare("4.18", **SMALL)
    small = page_heatmap(run, host=0, every_ns=EVERY, path=tmp_path / "src.png", max_pages=64)
    assert matplotlib.image.imread(small).shape == (500, 1200, 4)
    with pytest.raises(reclaim.ArgumentError, match="max_pages"):
        page_heatmap(factory, every_ns=EVERY, path=tmp_path / "x.png", max_pages=0)


def test_pictures_named_without_suffix_are_png_and_no_directory_is_created(
    tmp_path: Path,
) -> None:
    """The heatmap and the timeline plot add .png to a name without a suffix and return the
    path written; a missing directory is a FileError before the run (none is created), another
    suffix an ArgumentError."""
    path = page_heatmap(prepare("4.17", **SMALL), every_ns=EVERY, path=tmp_path / "heat")
    assert path == tmp_path / "heat.png" and path.read_bytes()[:8] == PNG
    result = postcopy("4.18", **SMALL)
    assert timeline([result], tmp_path / "t") == tmp_path / "t.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png", "t.png"]
    missing = tmp_path / "no" / "dir" / "x.png"
    unused = prepare("4.17", **SMALL)
    with pytest.raises(reclaim.FileError, match=f"no directory {tmp_path / 'no' / 'dir'}$"):
        page_heatmap(unused, every_ns=EVERY, path=missing)
    assert unused.now == 0, "refused before the run"
    with pytest.raises(reclaim.FileError, match="no directory"):
        timeline([result], missing)
    assert not (tmp_path / "no").exists()
    with pytest.raises(reclaim.ArgumentError, match=r"give a name ending in \.png, not .*t\.svg"):
        timeline([result], tmp_path / "t.svg")
