"""The wheel users get, and the command line as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.slow
def test_wheel_from_a_clean_clone_installs_into_a_fresh_venv_and_runs_the_demo(
    tmp_path: Path,
) -> None:
    """What a user gets: `make wheel` in a clean clone of this repository gives one abi3
    wheel; a fresh venv (nothing from this interpreter) installs it with its dependencies
    from the package index and runs `reclaim demo` and the API from it."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no clean clone to build from")
    clone, dist = tmp_path / "clone", tmp_path / "dist"
    r = run("git", "clone", "--quiet", str(ROOT), str(clone))
    assert r.returncode == 0, r.stderr
    r = run("make", "-C", str(clone), "wheel", f"PYTHON={sys.executable}", f"DIST={dist}")
    assert r.returncode == 0, r.stderr
    wheels = list(dist.glob("reclaim-*.whl"))
    assert len(wheels) == 1 and "abi3" in wheels[0].name, wheels
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py, cli = env_dir / "bin" / "python", env_dir / "bin" / "reclaim"
    r = run(
        str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheels[0])
    )
    assert r.returncode == 0, r.stderr
    code = (
        "import reclaim; k = reclaim.Kernel(profile='4.17', memory='8MiB', swap='8MiB');"
        "p = k.spawn('q', kvm=True); a = p.mmap(4096); p.write(a, 7);"
        "print(p.read(a).value, reclaim.__version__, reclaim.__file__)"
    )
    r = run(str(py), "-c", code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    value, _, where = r.stdout.split()
    assert value == "7"
    assert where.startswith(str(env_dir)), where
    env = {**os.environ, "MPLBACKEND": "Agg"}
    r = run(str(cli), "demo", "--json", "--plot", str(tmp_path / "d.png"), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    outcomes = [(x["profile"], x["outcome"]) for x in json.loads(r.stdout)["runs"][:2]]
    assert outcomes == [("4.17", "hung"), ("4.18", "completed")]


def test_cli_demo_runs_and_reports_the_seed(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    r = run(
        "reclaim", "demo", "--json", "--plot", str(png), env={**os.environ, "MPLBACKEND": "Agg"}
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    runs = out["runs"]
    assert [(x["profile"], x["outcome"]) for x in runs[:2]] == [
        ("4.17", "hung"),
        ("4.18", "completed"),
    ]
    assert runs[0]["userfaults_on_received"] > 0 and runs[1]["userfaults_on_received"] == 0
    assert any("pte_unused" in step["what"] for step in runs[0]["chain"])
    plot = Path(out["plot"])
    assert plot.exists() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_command_prints_help_and_exits_2() -> None:
    r = run("reclaim")
    assert r.returncode == 2
    assert "demo" in r.stdout


def test_cli_bad_option_is_one_line_without_traceback() -> None:
    r = run("reclaim", "demo", "--bogus")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
