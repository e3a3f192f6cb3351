#!/usr/bin/env python3
"""Import cycles among the core's modules (rust/, without the binding rust/py/).

Every `crate::a::b::...` path in a module's source (use lines and inline paths) is an edge
from that module to the longest module file it names. Edges into `crate::kernel` are left
out: every subsystem implements its part of the `Kernel` context, so those cycles are the
design (docs/design.md). Prints each remaining strongly connected component; exits 1 if any.
Usage: python3 tools/import_cycles.py [--with-kernel]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "rust"


def modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for p in ROOT.rglob("*.rs"):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[0] == "py" or parts == ["lib"]:
            continue
        if parts[-1] == "mod":
            parts = parts[:-1]
        mods["::".join(parts)] = p
    return mods


def strip_tests(src: str) -> str:
    i = src.find("#[cfg(test)]\nmod tests")
    return src if i < 0 else src[:i]


def edges(mods: dict[str, Path], with_kernel: bool) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        src = strip_tests(p.read_text())
        src = re.sub(r"//.*", "", src)
        paths = re.findall(r"crate::([A-Za-z0-9_:]+)", src)
        for grp in re.findall(r"crate::([A-Za-z0-9_:]*)\{([^}]*)\}", src):
            paths += [grp[0] + x.strip() for x in grp[1].split(",") if x.strip()]
        for path in paths:
            parts = [x for x in path.split("::") if x]
            for n in range(len(parts), 0, -1):
                t = "::".join(parts[:n])
                if t in mods:
                    if t != m and (with_kernel or t != "kernel"):
                        out[m].add(t)
                    break
    return out


def sccs(g: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    res: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                res.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return res


def main() -> int:
    mods = modules()
    g = edges(mods, "--with-kernel" in sys.argv)
    comps = sccs(g)
    for c in comps:
        print(f"cycle of {len(c)} modules: {', '.join(c)}")
        for m in c:
            print(f"  {m} -> {', '.join(sorted(t for t in g[m] if t in c))}")
    if not comps:
        left_out = "" if "--with-kernel" in sys.argv else " (edges into crate::kernel left out)"
        print(f"no import cycle among the {len(mods)} core modules{left_out}")
    return 1 if comps else 0


if __name__ == "__main__":
    sys.exit(main())
