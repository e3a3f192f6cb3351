"""Finding things: `python -m reclaim`, the modules the README uses after `import reclaim`,
feature masks as named flags, help on every option, machine-readable scenario lists."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import reclaim


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args], capture_output=True, text=True, timeout=300
    )


def test_python_dash_m_reclaim_and_the_modules_the_readme_uses() -> None:
    r = run_cli("--help")
    assert r.returncode == 0 and "usage: reclaim" in r.stdout
    assert reclaim.events.COLUMNS[0] == "t"
    assert reclaim.s390.Pte(0x400).none()
    assert reclaim.UffdFeature(0x108).name == "EVENT_REMOVE|THREAD_ID"
    assert reclaim.UffdFeature["THREAD_ID"] in reclaim.UffdFeature(0x108)


def test_every_cli_option_has_help_and_crosscheck_lists_as_json() -> None:
    import argparse

    from reclaim.cli import build_parser

    def missing(p: argparse.ArgumentParser, name: str) -> list[str]:
        out = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sub in a.choices.items():
                    out += missing(sub, f"{name} {n}")
            elif not a.help:
                out.append(f"{name} {a.option_strings or a.dest}")
        return out

    assert missing(build_parser(), "reclaim") == []
    r = run_cli("crosscheck", "--list", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed and all(set(x) == {"name", "doc"} and x["doc"] for x in listed)


def test_notebook_reprs_of_results_runs_and_kernels() -> None:
    from conftest import SMALL_STUDY
    from reclaim.studies.postcopy import prepare

    study: dict[str, Any] = dict(SMALL_STUDY)
    run = prepare("4.17", **study)
    assert repr(run).startswith("PostcopyRun(profile='4.17', qemu='3.0', seed=0, now=0.000s")
    while not run.advance(run.now + 1_000_000_000):
        pass
    assert "finished=True" in repr(run)
    html = run.result()._repr_html_()
    assert html.startswith("<table>") and "<b>PostcopyResult</b>" in html
    assert "hung" in html and "stall: vCPU" in html and "released by postcopy cleanup" in html
    k = reclaim.Kernel(profile="4.18", memory="16MiB", swap="16MiB")
    assert '<th style="text-align:left">profile</th><td>4.18</td>' in k._repr_html_()
    found = reclaim.explore("4.17", depth=4, walks=0)
    html = found._repr_html_()
    assert "<b>ExploreResult</b>" in html and "profile 4.17" in html
