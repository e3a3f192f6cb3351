"""The documentation site builds (strict: a warning fails it) and holds what a new user looks
for: the tutorial, the API of the stubs and docstrings, every command's options, the formats."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return out


def page(site: Path, name: str) -> str:
    return re.sub(r"<[^>]+>", " ", (site / name / "index.html").read_text())


def test_the_site_has_the_tutorial_api_cli_formats_findings_and_benchmarks(site: Path) -> None:
    assert "Reproduce the seed bug in Python" in (site / "index.html").read_text()
    api = (site / "api" / "index.html").read_text()
    for name in (
        "reclaim.Kernel",
        "reclaim.studies.postcopy.PostcopyResult.stalls",
        "reclaim.trace.read",
    ):
        assert f'id="{name}"' in api, name
    cli = page(site, "cli")
    for cmd in ("demo", "study postcopy", "explore", "replay", "export", "sweep", "bench"):
        assert f"reclaim {cmd}" in cli, cmd
    assert "oracleGeneral" in page(site, "trace-format")
    grid = (site / "grid-format" / "index.html").read_text()
    assert "[grid]" in grid and "language-toml" in grid
    ctests = page(site, "c-tests")
    assert "ksft_set_plan" in ctests and "reclaim explore" in ctests and "--recipe" in ctests
    assert (site / "FINDINGS" / "index.html").exists()
    assert (site / "BENCHMARKS" / "index.html").exists()
