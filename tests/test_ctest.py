"""Cross-check scenarios exported as kselftest-style C programs (issue 20): they compile with
the system's C compiler and pass on this machine's kernel, one TAP test point per scenario,
each step checked against the model's observation (reclaim.crosscheck.ctest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from reclaim.crosscheck import ctest
from reclaim.crosscheck.library import LIBRARY
from reclaim.crosscheck.model import run_model
from reclaim.exceptions import ArgumentError

needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None,
    reason="no C compiler (cc): apt-get install gcc libc6-dev (or make vm, which installs it)",
)

#: Fast scenarios of the library that need no swap: MISSING faults, COPY, events.
FAST = [
    "missing_read_fault_blocks_with_read_flags",
    "missing_write_fault_has_write_flag",
    "copy_then_access_has_no_userfault",
]


def _uffd_skip(run: ctest.TapRun) -> None:
    if run.returncode == 4 and run.plan == 0:
        pytest.skip(f"this machine offers no userfaultfd: {run.output.strip()}")


@pytest.fixture(scope="module")
def library_run(tmp_path_factory: pytest.TempPathFactory) -> ctest.TapRun:
    """The whole library, exported, compiled with cc and run on this kernel (once)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): apt-get install gcc libc6-dev (or make vm)")
    prog = ctest.export_c(tmp_path_factory.mktemp("ctest"))
    return ctest.run_c(ctest.compile_c(prog))


@needs_cc
def test_the_exported_library_passes_on_this_kernel(library_run: ctest.TapRun) -> None:
    _uffd_skip(library_run)
    assert library_run.returncode == 0, library_run.output
    assert library_run.plan == len(LIBRARY)
    verdicts = {p.name: p.verdict for p in library_run.points}
    assert set(verdicts) == {sc.name for sc in LIBRARY}
    assert "fail" not in verdicts.values(), library_run.output
    assert sum(v == "pass" for v in verdicts.values()) >= len(LIBRARY) // 3


@needs_cc
def test_a_skipped_point_says_why(library_run: ctest.TapRun) -> None:
    _uffd_skip(library_run)
    for p in library_run.points:
        if p.verdict == "skip":
            assert p.reason, p
    if not any(a in library_run.output for a in ("/proc/swaps", "swapoff")):
        pytest.skip("this machine has what every swap scenario needs")


@needs_cc
def test_the_tap_output_follows_the_kselftest_conventions(library_run: ctest.TapRun) -> None:
    lines = library_run.output.splitlines()
    assert lines[0] == "TAP version 13"
    _uffd_skip(library_run)
    assert lines[1] == f"1..{len(LIBRARY)}"
    assert [p.number for p in library_run.points] == list(range(1, len(LIBRARY) + 1))
    assert any(ln.startswith("# Totals: pass:") for ln in lines)


@needs_cc
def test_a_kernel_that_differs_from_the_model_fails_its_point(tmp_path: Path) -> None:
    prog = ctest.export_c(tmp_path, FAST[:1], program="differs")
    sc = FAST[0]
    # what the model observes at the read (step 3): the PAGEFAULT; expect another page instead
    src = prog.source.read_text()
    good = '"blocked: PAGEFAULT u m[0] read"'
    assert good in src
    prog.source.write_text(src.replace(good, '"blocked: PAGEFAULT u m[1] read"'))
    run = ctest.run_c(ctest.compile_c(prog))
    _uffd_skip(run)
    assert run.returncode == 1
    (point,) = run.points
    assert (point.name, point.verdict) == (sc, "fail")
    assert any(
        'kernel "blocked: PAGEFAULT u m[0] read", model "blocked: PAGEFAULT u m[1] read"' in d
        for d in point.diagnostics
    ), point


def test_the_expectations_are_the_models_observations(tmp_path: Path) -> None:
    prog = ctest.export_c(tmp_path, FAST, arches=["x86_64"])
    src = prog.source.read_text()
    for name in FAST:
        sc = next(s for s in LIBRARY if s.name == name)
        for obs in run_model(sc, profile="6.12", arch="x86_64").observations:
            assert f'"{obs.render()}"' in src
    assert {p.name for p in prog.support} == {"reclaim_agent.c", "kselftest.h", "Makefile"}


def test_an_unknown_scenario_or_program_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="unknown scenario 'nope'"):
        ctest.export_c(tmp_path, ["nope"])
    with pytest.raises(ArgumentError, match="not a C identifier"):
        ctest.export_c(tmp_path, FAST, program="a-b")


def test_a_missing_compiler_is_an_error_naming_the_package() -> None:
    with pytest.raises(ctest.CompileError, match="apt-get install gcc libc6-dev"):
        ctest.find_compiler("no-such-cc-xyz")


@pytest.mark.skipif(
    shutil.which("s390x-linux-gnu-gcc") is None,
    reason="no s390x cross compiler (make vm installs gcc-s390x-linux-gnu)",
)
def test_the_program_compiles_static_for_s390x(tmp_path: Path) -> None:
    prog = ctest.export_c(tmp_path, FAST)
    binary = ctest.compile_c(prog, cc="s390x-linux-gnu-gcc", static=True, out=tmp_path / "t390")
    head = binary.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[18:20] == b"\x00\x16"  # EM_S390, big-endian


@needs_cc
def test_the_makefile_builds_the_program(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    prog = ctest.export_c(tmp_path, FAST, program="viamake")
    r = subprocess.run(["make", "-C", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.access(tmp_path / prog.name, os.X_OK)


@needs_cc
def test_cli_export_c_runs_the_program_on_this_kernel(tmp_path: Path) -> None:
    args = ["crosscheck", "--export-c", str(tmp_path), "--scenario", FAST[0], "--run"]
    r = subprocess.run([sys.executable, "-m", "reclaim.cli", *args], capture_output=True, text=True)
    if r.returncode == 4:
        pytest.skip(f"no userfaultfd here: {r.stdout.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok 1 {FAST[0]}" in r.stdout
    assert (tmp_path / "reclaim_crosscheck.c").exists()


#: Per guest arch: the fast scenarios, one that swaps (the guest's swap disk is
#: $RECLAIM_SWAPDEV) and one of the arch's own.
GUEST = {
    "x86_64": [
        *FAST[:2],
        "pageout_to_swap_then_read_back_without_userfault",
        "x86_64_cold_page_has_no_fault_on_next_read",
    ],
    "s390x": [
        *FAST[:2],
        "pageout_to_swap_then_read_back_without_userfault",
        "s390x_young_emulation_cold_page_faults_on_next_read",
    ],
}


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(GUEST))
def test_the_exported_program_passes_in_the_guest(arch: str, tmp_path: Path) -> None:
    """Compiled static for the guest's arch and run in a Linux 6.12 guest under QEMU (one
    short boot: a few scenarios, TCG is slow), every point passes, the swap one too."""
    from reclaim.vm import assets

    try:
        assets.fetch([arch])
    except assets.VmAssetError as e:
        pytest.skip(f"the VM assets cannot be had here: {e}")
    prog = ctest.export_c(tmp_path, GUEST[arch])
    run = ctest.run_c_vm(prog, arch)
    assert run.returncode == 0, run.output
    assert [(p.name, p.verdict) for p in run.points] == [(n, "pass") for n in GUEST[arch]]


def test_cli_export_c_takes_a_variant_for_the_expectations(tmp_path: Path) -> None:
    args = ["crosscheck", "--export-c", str(tmp_path), "--scenario", FAST[0]]
    args += ["--profile", "4.18", "--set", "unused_guard=None"]
    r = subprocess.run([sys.executable, "-m", "reclaim.cli", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    src = (tmp_path / "reclaim_crosscheck.c").read_text()
    assert "the model's (profile 4.18+unused_guard=None)" in src
    bad = [*args[:-1], "unused_guard=Pte"]
    r = subprocess.run([sys.executable, "-m", "reclaim.cli", *bad], capture_output=True, text=True)
    assert r.returncode == 2 and "its values are: None, UffdArmed" in r.stderr


@needs_cc
def test_without_userfaultfd_the_program_skips_with_the_reason(tmp_path: Path) -> None:
    """Run as nobody where unprivileged userfaultfd is off: ``1..0 # SKIP`` naming the uid,
    the errors and the sysctl, exit KSFT_SKIP (4)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the program as another user")
    if Path("/proc/sys/vm/unprivileged_userfaultfd").read_text().strip() != "0":
        pytest.skip("vm.unprivileged_userfaultfd=1: every user has userfaultfd here")
    prog = ctest.export_c(tmp_path / "src", FAST[:1])
    shared = Path(tempfile.mkdtemp(prefix="reclaim-ctest-"))
    try:
        shared.chmod(0o755)
        binary = ctest.compile_c(prog, out=shared / "t")
        binary.chmod(0o755)
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(binary)],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(shared)
    assert r.returncode == 4, r.stdout + r.stderr
    assert r.stdout.splitlines()[1].startswith("1..0 # SKIP no userfaultfd for uid 65534:")
    assert "vm.unprivileged_userfaultfd=0" in r.stdout
