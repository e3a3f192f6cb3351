"""The scripts in examples/ run as a user would run them (mypy checks them too)."""

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


def test_postcopy_profiles_example_hangs_before_the_fix_only(tmp_path: Path) -> None:
    out = run("postcopy_profiles.py", "p.png", cwd=tmp_path)
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[1:5]}
    assert rows["4.17"][:2] == ["hung", "2"] and rows["4.18"][:2] == ["completed", "0"]
    assert "postcopy cleanup: UFFDIO_UNREGISTER" in out
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_example_writes_the_table_and_the_hang_rate_plot(tmp_path: Path) -> None:
    out = run("sweep_hang_rate.py", "o.parquet", "h.png", cwd=tmp_path)
    lines = [ln.split() for ln in out.splitlines()[1:13]]
    hung = {(r[1], r[2], r[3]): int(r[5]) for r in lines}
    assert all(hung[k] == 3 for k in hung if k[0] == "4.17")
    assert all(hung[k] == 0 for k in hung if k[0] == "6.12")
    assert (tmp_path / "o.parquet").exists() and (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
