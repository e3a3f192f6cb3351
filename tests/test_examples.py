"""The scripts in examples/ run as a user would run them (the quick ones; mypy checks all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str, cwd: Path) -> str:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, cwd=cwd
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_seed_bug_example_shows_the_drop_and_the_swap(tmp_path: Path) -> None:
    out = run("seed_bug.py", cwd=tmp_path)
    assert "4.17: page none, the guest's read blocked" in out
    assert "result=drop_pte_unused" in out
    assert "4.18: page present, the guest's read completed" in out


def test_explore_predicate_example_finds_the_lost_page_in_six_steps(tmp_path: Path) -> None:
    out = run("explore_predicate.py", "4.17", cwd=tmp_path)
    assert "your predicate received_page_lost: 6 steps" in out
    assert "def test_custom_via_other_on_4_17" in out


def test_export_example_writes_a_perfetto_trace(tmp_path: Path) -> None:
    out = run("export_perfetto.py", "t.json", "t.txt", cwd=tmp_path)
    assert "4.17: hung" in out
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert "mm_vmscan_" in (tmp_path / "t.txt").read_text()
