"""Cross-check scenarios as kselftest-style C programs (TAP output, tools/testing/selftests/mm
conventions), to run where Python and the model are not: a test machine, a distribution's
kernel, a kernel tree.

:func:`export_c` writes one program for the chosen scenarios (the whole :data:`LIBRARY` by
default) into a directory::

    PROGRAM.c         the scenarios as tables, one TAP test point each, and main()
    reclaim_agent.c   the step interpreter (the VM oracle's agent, python/reclaim/vm/agent.c),
                      #included with RECLAIM_AGENT_TAP: no JSON, each observation rendered as
                      the canonical text of Observation.render
    kselftest.h       the kselftest API subset the program uses (in a kernel tree, the
                      kernel's own tools/testing/selftests/kselftest.h serves instead)
    Makefile          make CC=... builds PROGRAM (add LDFLAGS=-static for a guest)

Each scenario is one test point. Its expected observation at every step is the model's, from
:func:`~reclaim.crosscheck.model.run_model` with the profile (6.12 by default) and the arch the
program is compiled for (``__s390x__`` / ``__x86_64__``; another arch skips every point):
exactly what ``reclaim crosscheck`` compares the kernel with. A point passes when the kernel
observed the same thing at every step, fails with a ``# step I (LABEL): kernel "..", model
".."`` line per difference, and is skipped with the reason where the machine lacks what the
scenario needs (a userfaultfd feature, swap, no swap, another arch). A documented difference
(:data:`~reclaim.crosscheck.vm.KNOWN_DIFFERENCES`) that shows is an XFAIL. The exit code is
KSFT_PASS (0), KSFT_FAIL (1) or KSFT_SKIP (4, no userfaultfd at all).

Swap: a scenario that swaps runs on the machine's active swap; one that reads swap slot
offsets (``SwapEntry``) needs a fresh device, which the program makes of ``$RECLAIM_SWAPDEV``
(swapoff, swapon; root) and skips without.

:func:`compile_c` builds the program with the system's C compiler (``cc``, or a cross
compiler with ``static=True`` for a guest's initramfs) and :func:`run_c` runs it and parses
its TAP into :class:`TapPoint` values.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from reclaim.crosscheck.library import BY_NAME, LIBRARY
from reclaim.crosscheck.model import run_model
from reclaim.crosscheck.scenario import Scenario, SwapEntry, Touch
from reclaim.crosscheck.vm import KNOWN_DIFFERENCES, VM_ARCHES, step_line
from reclaim.exceptions import ArgumentError, FileError, ReclaimError

#: The preprocessor macro that tells each arch the program has expectations for.
ARCH_MACROS = {"s390x": "__s390x__", "x86_64": "__x86_64__"}

#: How long a program may run before :func:`run_c` gives up (the scenarios take seconds).
RUN_TIMEOUT = 600.0


class CompileError(ReclaimError):
    """The exported program could not be compiled: no C compiler (the message names the
    package that brings it), or the compiler failed (its output is in the message)."""


@dataclass(frozen=True)
class CProgram:
    """An exported program: its ``source`` (PROGRAM.c), the directory's other files
    (``support``) and the ``scenarios`` it tests, in test-point order."""

    source: Path
    support: tuple[Path, ...]
    scenarios: tuple[str, ...]

    @property
    def directory(self) -> Path:
        """The directory the program was written to."""
        return self.source.parent

    @property
    def name(self) -> str:
        """The program's name (its source file's stem)."""
        return self.source.stem


def _c_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def _c_comment(text: str) -> str:
    return text.replace("*/", "* /")


def _hint(step: object) -> str:
    if isinstance(step, Touch):
        return "RH_TOUCH"
    if isinstance(step, SwapEntry):
        return "RH_SWAP_ENTRY"
    return "RH_PLAIN"


def _errno_table() -> str:
    lines = ["static const struct reclaim_errno reclaim_errnos[] = {"]
    for _, name in sorted(_errno.errorcode.items()):
        lines += [f"#ifdef {name}", f'\t{{ {name}, "{name}" }},', "#endif"]
    lines.append("};")
    return "\n".join(lines)


def _needs(sc: Scenario) -> str:
    flags = [
        flag
        for need, flag in (
            ("swap", "NEEDS_SWAP"),
            ("no_swap", "NEEDS_NO_SWAP"),
            ("uffd_wp", "NEEDS_UFFD_WP"),
            ("uffd_minor", "NEEDS_UFFD_MINOR"),
            ("uffd_sigbus", "NEEDS_UFFD_SIGBUS"),
            ("uffd_thread_id", "NEEDS_UFFD_THREAD_ID"),
        )
        if need in sc.needs
    ]
    if any(isinstance(s, SwapEntry) for s in sc.steps):
        flags.append("NEEDS_FRESH_SWAP")
    return " | ".join(flags) or "0"


def _arch_block(scenarios: Sequence[Scenario], arch: str, profile: str) -> list[str]:
    """The step tables and the scenario table of ``arch``: the model's run as expectations."""
    out: list[str] = []
    entries: list[str] = []
    for k, sc in enumerate(scenarios):
        skip = sc.arch_skip(arch)
        m = None
        if skip is None:
            m = run_model(sc, profile=profile, arch=arch)
            skip = None if m.skipped is None else f"the model skips it: {m.skipped}"
        known = KNOWN_DIFFERENCES.get((arch, sc.name))
        if m is None or skip is not None:
            entries.append(f"\t{{ {_c_str(sc.name)}, NULL, 0, 0, {_c_str(skip or '')}, NULL }},")
            continue
        out.append(f"/* {_c_comment(sc.name)}: {_c_comment(sc.doc)} */")
        out.append(f"static const struct reclaim_step steps_{arch}_{k}[] = {{")
        for step, obs in zip(sc.steps, m.observations, strict=True):
            out.append(
                f"\t{{ {_c_str(step_line(step))}, {_c_str(step.label())}, "
                f"{_c_str(obs.render())}, {_hint(step)} }},"
            )
        out.append("};")
        out.append("")
        entries.append(
            f"\t{{ {_c_str(sc.name)}, steps_{arch}_{k}, ARRAY_SIZE(steps_{arch}_{k}), "
            f"{_needs(sc)}, NULL, {_c_str(known) if known else 'NULL'} }},"
        )
    out.append("static const struct reclaim_scenario scenarios[] = {")
    out.extend(entries)
    out.append("};")
    return out


_MAIN = r"""
int main(void)
{
	unsigned long long features = 0;
	char why[512];

	ksft_print_header();
	if (reclaim_uffd_probe(&features, why, sizeof(why)) < 0)
		ksft_exit_skip("%s\n", why);
	ksft_set_plan(ARRAY_SIZE(scenarios));
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
		const struct reclaim_scenario *sc = &scenarios[i];
		if (!sc->steps) {
			ksft_test_result_skip("%s (%s)\n", sc->name, sc->skip);
			continue;
		}
		if ((sc->needs & NEEDS_UFFD_WP) && !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
			ksft_test_result_skip("%s (the kernel offers no uffd-wp: "
				"UFFD_FEATURE_PAGEFAULT_FLAG_WP)\n", sc->name);
			continue;
		}
		if ((sc->needs & NEEDS_UFFD_MINOR) && !(features & UFFD_FEATURE_MINOR_SHMEM)) {
			ksft_test_result_skip("%s (the kernel offers no MINOR faults on shmem: "
				"UFFD_FEATURE_MINOR_SHMEM)\n", sc->name);
			continue;
		}
		if ((sc->needs & NEEDS_UFFD_SIGBUS) && !(features & UFFD_FEATURE_SIGBUS)) {
			ksft_test_result_skip("%s (the kernel offers no UFFD_FEATURE_SIGBUS)\n", sc->name);
			continue;
		}
		if ((sc->needs & NEEDS_UFFD_THREAD_ID) && !(features & UFFD_FEATURE_THREAD_ID)) {
			ksft_test_result_skip("%s (the kernel offers no UFFD_FEATURE_THREAD_ID)\n", sc->name);
			continue;
		}
		if (reclaim_prepare_swap(!!(sc->needs & NEEDS_SWAP), !!(sc->needs & NEEDS_NO_SWAP),
				!!(sc->needs & NEEDS_FRESH_SWAP), why, sizeof(why)) < 0) {
			ksft_test_result_skip("%s (%s)\n", sc->name, why);
			continue;
		}
		int rc = reclaim_tap_scenario(sc->name, sc->steps, (int)sc->nsteps);
		if (rc == KSFT_PASS)
			ksft_test_result_pass("%s\n", sc->name);
		else if (sc->known)
			ksft_test_result_xfail("%s (a known difference: %s)\n", sc->name, sc->known);
		else
			ksft_test_result_fail("%s\n", sc->name);
	}
	ksft_finished();
}
"""


def program_source(
    scenarios: Sequence[Scenario],
    *,
    profile: str = "6.12",
    arches: Sequence[str] = VM_ARCHES,
    program: str = "reclaim_crosscheck",
) -> str:
    """The C source of a program testing ``scenarios`` against the model's runs of them with
    ``profile`` on each of ``arches`` (see the module documentation)."""
    for a in arches:
        if a not in ARCH_MACROS:
            raise ArgumentError(f"unknown arch {a!r}; known: {', '.join(ARCH_MACROS)}")
    names = ", ".join(sc.name for sc in scenarios)
    head = f"""// SPDX-License-Identifier: MIT
/*
 * {program}: reclaim's cross-check scenarios as a kselftest (TAP) program, one test point per
 * scenario, each step's expected observation the model's (profile {profile}). Written by
 * `reclaim crosscheck --export-c` (reclaim.crosscheck.ctest); build with `make` beside it, or
 * `cc -O2 -pthread -o {program} {program}.c`.
 *
 * Scenarios: {_c_comment(names)}
 */
#define _GNU_SOURCE
#include "kselftest.h"

struct reclaim_errno {{
	int e;
	const char *name;
}};

{_errno_table()}

#define RECLAIM_AGENT_TAP
#include "reclaim_agent.c"

/* what a scenario needs of the machine */
#define NEEDS_SWAP 1
#define NEEDS_NO_SWAP 2
#define NEEDS_UFFD_WP 4
#define NEEDS_UFFD_MINOR 8
#define NEEDS_FRESH_SWAP 16 /* it reads swap slot offsets */
#define NEEDS_UFFD_SIGBUS 32 /* v4.14+ */
#define NEEDS_UFFD_THREAD_ID 64 /* v4.14+ */

struct reclaim_scenario {{
	const char *name;
	const struct reclaim_step *steps; /* NULL: skipped, for skip */
	size_t nsteps;
	unsigned int needs;
	const char *skip;
	const char *known; /* a documented difference on this arch (docs/vm-oracle.md) */
}};
"""
    parts = [head]
    for i, a in enumerate(arches):
        parts.append(f"#{'if' if i == 0 else 'elif'} defined({ARCH_MACROS[a]})\n")
        parts.append("\n".join(_arch_block(scenarios, a, profile)) + "\n")
    if arches:
        parts.append("#else\n")
    entries = "\n".join(
        f'\t{{ {_c_str(sc.name)}, NULL, 0, 0, "no model expectations for this arch '
        f'(exported for {"/".join(arches)})", NULL }},'
        for sc in scenarios
    )
    parts.append(f"static const struct reclaim_scenario scenarios[] = {{\n{entries}\n}};\n")
    if arches:
        parts.append("#endif\n")
    parts.append(_MAIN)
    return "".join(parts)


_MAKEFILE = """\
# Build the exported cross-check programs: make [CC=s390x-linux-gnu-gcc LDFLAGS=-static]
CC ?= cc
CFLAGS ?= -O2 -Wall
PROGS := $(patsubst %.c,%,$(filter-out reclaim_agent.c,$(wildcard *.c)))

all: $(PROGS)

%: %.c reclaim_agent.c kselftest.h
\t$(CC) $(CFLAGS) -pthread -o $@ $< $(LDFLAGS)

clean:
\trm -f $(PROGS)
"""


def _select(names: Sequence[str] | None) -> list[Scenario]:
    if names is None:
        return list(LIBRARY)
    chosen = []
    for n in names:
        if n not in BY_NAME:
            raise ArgumentError(f"unknown scenario {n!r}; see reclaim crosscheck --list")
        chosen.append(BY_NAME[n])
    return chosen


def export_c(
    out_dir: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    *,
    program: str = "reclaim_crosscheck",
    profile: str = "6.12",
    arches: Sequence[str] = VM_ARCHES,
) -> CProgram:
    """Write the program ``program`` testing the scenarios ``names`` (the whole library for
    None) into ``out_dir`` (created if missing), with its support files. Raises
    ArgumentError for an unknown scenario or arch or a program name that is not a C
    identifier, FileError if the directory cannot be written."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", program) or program == "reclaim_agent":
        raise ArgumentError(f"the program name {program!r} is not a C identifier (or is taken)")
    chosen = _select(names)
    src = program_source(chosen, profile=profile, arches=arches, program=program)
    d = Path(out_dir)
    vm = resources.files("reclaim.vm")
    files = {
        f"{program}.c": src,
        "reclaim_agent.c": vm.joinpath("agent.c").read_text(),
        "kselftest.h": vm.joinpath("kselftest.h").read_text(),
        "Makefile": _MAKEFILE,
    }
    try:
        d.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (d / name).write_text(text)
    except OSError as e:
        raise FileError(f"cannot write the C test to {d}: {e.strerror or e}") from e
    return CProgram(
        source=d / f"{program}.c",
        support=tuple(d / n for n in files if n != f"{program}.c"),
        scenarios=tuple(sc.name for sc in chosen),
    )


def find_compiler(cc: str | None = None) -> str:
    """The C compiler to use: ``cc``, else ``$CC``, else ``cc``; CompileError naming the
    package that brings it when it is missing."""
    cc = cc or os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        pkg = "gcc-s390x-linux-gnu libc6-dev-s390x-cross" if "s390x" in cc else "gcc libc6-dev"
        raise CompileError(
            f"no C compiler {cc!r} on PATH: install it (Debian: apt-get install {pkg}; "
            "'reclaim vm fetch' installs both compilers as root)"
        )
    return cc


def compile_c(
    program: CProgram,
    *,
    cc: str | None = None,
    static: bool = False,
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Compile ``program`` (static with ``static``, for a guest's initramfs) into ``out``
    (beside its source by default); returns the binary. CompileError if there is no
    compiler or it fails."""
    compiler = find_compiler(cc)
    binary = Path(out) if out is not None else program.directory / program.name
    cmd = [compiler, "-O2", "-Wall", "-pthread", "-o", str(binary), str(program.source)]
    if static:
        cmd.insert(1, "-static")
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise CompileError(
            f"{compiler} failed on {program.source} (exit {r.returncode}):\n"
            f"{r.stderr.strip()[-3000:]}"
        )
    return binary


@dataclass(frozen=True)
class TapPoint:
    """One TAP test point: ``ok``, its ``number``, the scenario ``name``, the ``directive``
    (``"SKIP"``, ``"XFAIL"`` or ``""``), the ``reason`` after it and the ``diagnostics``
    (the ``#`` lines printed before it)."""

    ok: bool
    number: int
    name: str
    directive: str = ""
    reason: str = ""
    diagnostics: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """``pass``, ``fail``, ``skip`` or ``xfail``."""
        if self.directive:
            return self.directive.lower()
        return "pass" if self.ok else "fail"


@dataclass
class TapRun:
    """A run of a program: its ``returncode`` (KSFT_PASS 0, KSFT_FAIL 1, KSFT_SKIP 4), the
    ``plan`` (test points announced), the ``points`` and the whole ``output``."""

    returncode: int
    plan: int
    points: list[TapPoint] = field(default_factory=list)
    output: str = ""

    def by_name(self) -> Mapping[str, TapPoint]:
        """The points by scenario name."""
        return {p.name: p for p in self.points}


_POINT = re.compile(r"^(not ok|ok) (\d+) (?:# (SKIP|XFAIL) )?(\S+)(?: \((.*)\))?$")


def parse_tap(text: str) -> tuple[int, list[TapPoint]]:
    """The plan and the test points of a program's TAP output."""
    plan = 0
    points: list[TapPoint] = []
    diags: list[str] = []
    for line in text.splitlines():
        if m := re.match(r"^1\.\.(\d+)", line):
            plan = int(m.group(1))
        elif line.startswith("# "):
            diags.append(line[2:])
        elif m := _POINT.match(line):
            points.append(
                TapPoint(
                    ok=m.group(1) == "ok",
                    number=int(m.group(2)),
                    name=m.group(4),
                    directive=m.group(3) or "",
                    reason=m.group(5) or "",
                    diagnostics=tuple(diags),
                )
            )
            diags = []
    return plan, points


def run_c(
    binary: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> TapRun:
    """Run an exported program on this machine's kernel and parse its TAP."""
    full_env = dict(os.environ)
    full_env.pop("KSFT_TAP_LEVEL", None)
    full_env.update(env or {})
    try:
        r = subprocess.run(
            [str(binary)],
            capture_output=True,
            text=True,
            check=False,
            env=full_env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise ReclaimError(f"{binary} did not finish within {timeout:.0f} s") from e
    except OSError as e:
        raise FileError(f"cannot run {binary}: {e.strerror or e}") from e
    plan, points = parse_tap(r.stdout)
    return TapRun(returncode=r.returncode, plan=plan, points=points, output=r.stdout + r.stderr)


def run_c_vm(program: CProgram, arch: str, *, accel: str = "tcg") -> TapRun:
    """Compile ``program`` static for ``arch`` (the VM oracle's compilers,
    :data:`reclaim.vm.assets.COMPILER`) and run it in a Linux 6.12 guest of that arch under
    QEMU, after the guest's agent (one boot; ``$RECLAIM_SWAPDEV`` is the guest's swap disk, so
    the swap scenarios run too). Fetches the VM assets first if the cache lacks them
    (VmAssetError where they cannot be had)."""
    from reclaim.vm.assets import COMPILER
    from reclaim.vm.guest import run_guest
    from reclaim.vm.initramfs import TAP_EXIT

    if arch not in VM_ARCHES:
        raise ArgumentError(f"unknown guest arch {arch!r}; known: {', '.join(VM_ARCHES)}")
    out = program.directory / f"{program.name}.{arch}"
    binary = compile_c(program, cc=COMPILER[arch][0], static=True, out=out)
    run = run_guest(
        arch, "swapdev /dev/vda\n", accel=accel, programs={program.name: binary.read_bytes()}
    )
    lines = [ln for ln in run.tap if not ln.startswith(TAP_EXIT)]
    codes = [ln[len(TAP_EXIT) :] for ln in run.tap if ln.startswith(TAP_EXIT)]
    text = "\n".join(lines) + "\n"
    plan, points = parse_tap(text)
    if not codes or not codes[-1].strip().isdigit():
        tail = "\n".join(run.log[-20:])
        raise ReclaimError(
            f"the {arch} guest did not finish {program.name} (QEMU exit {run.returncode}):\n{tail}"
        )
    return TapRun(returncode=int(codes[-1]), plan=plan, points=points, output=text)


__all__ = [
    "ARCH_MACROS",
    "CProgram",
    "CompileError",
    "TapPoint",
    "TapRun",
    "compile_c",
    "export_c",
    "find_compiler",
    "parse_tap",
    "program_source",
    "run_c",
    "run_c_vm",
]
