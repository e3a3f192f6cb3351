"""Explorer findings that need KVM and QEMU as written reproduction recipes (issue 20):
``Finding.recipe()`` and ``reclaim explore --recipe FILE`` name the kernel, QEMU, the guest and
host actions in order and the expected chain, and carry code that replays the finding."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import reclaim
from reclaim.explorer import Finding

UF = "userfault_on_received"


@functools.cache
def _finding(profile: str | reclaim.Profile, cause: str) -> Finding:
    sc = reclaim.Scenario(profile, start="listen")
    r = reclaim.explore(sc, depth=6, walks=0, predicates=[UF], progress=False)
    f = r.found(UF, cause)
    assert f is not None, r.text()
    return f


def test_a_recipe_names_kernel_qemu_actions_and_the_chain() -> None:
    f = _finding("4.18", "cbrl")
    text = f.recipe()
    assert text.startswith(f"# Reproduction recipe: {f.title} (4.18)")
    assert "Linux v4.18 (profile 4.18)" in text
    assert "QEMU 3.0 to 5.1 postcopy" in text
    assert "after LISTEN" in text
    # every step in order, with who takes it; guest and host actions listed apart
    for i, (step, explained) in enumerate(zip(f.steps, f.explained, strict=True), 1):
        assert f"| {i} |" in text and f"`{step}`" in text and explained in text
    guest = text.split("### Guest actions")[1].split("###")[0]
    host = text.split("### Host actions (kernel, KVM)")[1].split("###")[0]
    assert "ESSA SET_UNUSED" in guest and "__gmap_zap" in host
    assert f.message in text.split("## Expected chain")[1]


def test_the_recipes_replay_code_reproduces_the_finding(capsys: object) -> None:
    f = _finding("4.18", "cbrl")
    code = f.recipe().split("```python\n")[1].split("```")[0]
    ns: dict[str, object] = {}
    exec(compile(code, "recipe", "exec"), ns)
    replay = ns["replay"]
    assert replay.violation is not None  # type: ignore[attr-defined]
    assert replay.violation.cause == "cbrl"  # type: ignore[attr-defined]


def test_a_variants_recipe_names_the_switches_it_changes() -> None:
    variant = reclaim.Profile.derive("4.18", "t-recipe-diag", diag10_guard="UffdArmed")
    f = _finding(variant, "cbrl")
    assert "profile 4.18 with diag10_guard=UffdArmed" in f.recipe()


def test_cli_explore_writes_the_recipes(tmp_path: Path) -> None:
    out = tmp_path / "recipes.md"
    args = ["explore", "--profile", "4.17", "--start", "listen", "--bound", "5", "--walks", "0"]
    r = subprocess.run(
        [sys.executable, "-m", "reclaim.cli", *args, "--recipe", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "# Reproduction recipe: userfault_on_received via pte_unused" in text
    assert "Linux v4.17 (profile 4.17)" in text
