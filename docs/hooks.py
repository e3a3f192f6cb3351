"""MkDocs hooks of the documentation site (mkdocs.yml): pages made from what lives elsewhere,
so that nothing is written twice.

- ``index.md``: the README (the tutorial), its links into ``docs/`` made site-relative;
- ``FINDINGS.md``, ``BENCHMARKS.md``: the files at the top of the repository;
- ``cli.md``: the ``--help`` of every ``reclaim`` command, from the argument parsers;
- ``grid-format.md``: the grid file format, from the docstring of ``reclaim.sweeper``.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


def _readme() -> str:
    text = (ROOT / "README.md").read_text()
    text = text.replace("](docs/", "](")
    # files of the repository that are no pages of the site: name them as code
    return re.sub(r"\[([^\]]+)\]\(((?:examples|python|rust|tests)/[^)]+)\)", r"`\2`", text)


def _help(main: Any, args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(args)
    return out.getvalue()


def _cli() -> str:
    import argparse

    from reclaim.cli import bench, build_parser, sweep

    parser = build_parser()
    parts = [
        "# Command line\n",
        "Every command prints errors as one line on stderr. Exit codes: 0 done, 1 a run or the "
        "engine failed, 2 bad input, 3 a hang or a violation when asked to fail on it, "
        "130 Ctrl-C. `python -m reclaim` is the same command.\n",
        "## reclaim\n",
        f"```text\n{parser.format_help()}```\n",
    ]
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            if name in ("sweep", "bench"):  # their own parsers, below
                continue
            parts.append(f"## reclaim {name}\n")
            parts.append(f"```text\n{sub.format_help()}```\n")
            nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            for n in nested:
                for name2, sub2 in n.choices.items():
                    parts.append(f"### reclaim {name} {name2}\n")
                    parts.append(f"```text\n{sub2.format_help()}```\n")
    parts.append("## reclaim sweep\n")
    parts.append(f"```text\n{_help(sweep.main, ['--help'])}```\n")
    parts.append("## reclaim bench\n")
    parts.append(f"```text\n{_help(bench.main, ['--help'])}```\n")
    return "\n".join(parts)


def _rst_to_markdown(text: str, lang: str) -> str:
    """The reST of a docstring as Markdown: ``code`` to `code`, a ``::`` block to a fence."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            head = line.rstrip()[:-1].rstrip() + ":" if line.strip() != "::" else ""
            out.append(re.sub(r"``([^`]+)``", r"`\1`", head))
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["", f"```{lang}", *block, "```", ""]
            continue
        out.append(re.sub(r"``([^`]+)``", r"`\1`", line))
        i += 1
    return "\n".join(out)


def _grid_format() -> str:
    from reclaim import sweeper

    doc = sweeper.__doc__ or ""
    start = doc.index("A grid file is TOML")
    return (
        "# Grid files\n\n"
        "`reclaim sweep grid.toml` runs a study over a grid of parameters read from a TOML "
        "file; `reclaim.sweep(study, grid)` takes the same grid as a dict. The parameters are "
        "those of the study (`reclaim.studies.postcopy`, see the API reference).\n\n"
        + _rst_to_markdown(doc[start:], "toml")
        + "\n\n## Sweeps from Python\n\n"
        + _rst_to_markdown(doc[: doc.index("A grid file is TOML")], "python")
    )


def on_files(files: Files, config: Any) -> Files:
    pages = {
        "index.md": _readme(),
        "FINDINGS.md": (ROOT / "FINDINGS.md").read_text(),
        "BENCHMARKS.md": (ROOT / "BENCHMARKS.md").read_text(),
        "cli.md": _cli(),
        "grid-format.md": _grid_format(),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files
