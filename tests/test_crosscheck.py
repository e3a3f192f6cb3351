"""Cross-check of the model against the real kernel of this machine: every userfaultfd
scenario of the library runs on the model and on the host kernel, and they must agree.

Where the host lacks what a scenario needs (userfaultfd, root, swap, uffd-wp...), or the model
lacks the arch, the test is skipped with the reason. :mod:`reclaim.crosscheck` describes the
scenarios and the two runners (the model's, and :mod:`reclaim.crosscheck.host`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import reclaim
import reclaim.cli
from reclaim import crosscheck as cc
from reclaim.crosscheck import host, scenario
from reclaim.crosscheck.library import BY_NAME, LIBRARY
from reclaim.crosscheck.scenario import (
    Fork,
    Madvise,
    Mmap,
    Msg,
    Observation,
    Read,
    ReadEvents,
    RunResult,
    Scenario,
    Write,
)
from reclaim.crosscheck.vm import KNOWN_DIFFERENCES
from reclaim.vm.guest import SWAP_IO as GUEST_SWAP_IO

MODEL_ARCH = cc.host_arch()


@functools.cache
def _cached_kernel_run(name: str) -> RunResult:
    return cc.run_host(BY_NAME[name])


def kernel_run(name: str, request: pytest.FixtureRequest) -> RunResult:
    """The kernel run of a library scenario: once per session, except that scenarios needing
    swap run afresh with the test's swap file (RECLAIM_TEST_SWAPFILE=1)."""
    if "swap" in BY_NAME[name].needs:
        request.getfixturevalue("swapfile")
        return cc.run_host(BY_NAME[name])
    return _cached_kernel_run(name)


@pytest.fixture
def swapfile() -> Iterator[None]:
    """A 64 MiB swap file in /tmp, active for one test, when RECLAIM_TEST_SWAPFILE=1 and no
    swap is active."""
    if os.environ.get("RECLAIM_TEST_SWAPFILE") != "1" or host.swap_devices():
        yield
        return
    if os.geteuid() != 0 or not (shutil.which("mkswap") and shutil.which("swapon")):
        yield
        return
    fd, path = tempfile.mkstemp(prefix="reclaim-crosscheck-", suffix=".swap", dir="/tmp")
    try:
        os.fchmod(fd, 0o600)
        chunk = bytes(1 << 20)
        for _ in range(64):
            os.write(fd, chunk)
        os.fsync(fd)
        os.close(fd)
        subprocess.run(["mkswap", path], check=True, capture_output=True)
        on = subprocess.run(["swapon", path], capture_output=True)
        yield
        if on.returncode == 0:
            subprocess.run(["swapoff", path], check=False, capture_output=True)
    finally:
        Path(path).unlink(missing_ok=True)


@pytest.mark.host
@pytest.mark.parametrize("name", [s.name for s in LIBRARY])
def test_model_agrees_with_the_kernel(name: str, request: pytest.FixtureRequest) -> None:
    sc = BY_NAME[name]
    m = cc.run_model(sc, arch=MODEL_ARCH)
    if m.skipped:
        pytest.skip(m.skipped)
    h = kernel_run(name, request)
    if h.skipped:
        pytest.skip(h.skipped)
    diffs = cc.compare(sc, m, h)
    assert not diffs, "\n".join(diffs)


@pytest.mark.parametrize("name", [s.name for s in LIBRARY])
def test_model_gives_what_the_library_expects(name: str) -> None:
    """The ``expect`` values are what the real kernel gives (see the host test below), so the
    model must give them too: this checks the model on machines that cannot run the kernel
    side (no root, no swap, not x86_64), the swap and no-swap families included."""
    sc = BY_NAME[name]
    arch = MODEL_ARCH if not sc.arches or MODEL_ARCH in sc.arches else min(sc.arches)
    known = KNOWN_DIFFERENCES.get((arch, name))
    if known is not None:  # the expectations are the guest kernel's (tests/test_vm.py)
        pytest.xfail(f"known difference on {arch}: {known}")
    # the guests' swap disk: a touch right after MADV_PAGEOUT finds the folio in the swap cache
    m = cc.run_model(sc, arch=arch, swap_io=GUEST_SWAP_IO)
    if m.skipped:
        pytest.skip(m.skipped)
    problems = scenario.check_expectations(sc, m)
    assert not problems, "\n".join(problems + m.notes)


@pytest.mark.host
@pytest.mark.parametrize("name", [s.name for s in LIBRARY])
def test_kernel_gives_what_the_library_expects(name: str, request: pytest.FixtureRequest) -> None:
    """The host runner and the scenarios' ``expect`` values agree with the real kernel."""
    sc = BY_NAME[name]
    h = kernel_run(name, request)
    if h.skipped:
        pytest.skip(h.skipped)
    assert len(h.observations) == len(sc.steps)
    problems = scenario.check_expectations(sc, h)
    assert not problems, "\n".join(problems + h.notes)


def test_library_is_large_and_named_after_what_it_shows() -> None:
    assert len(LIBRARY) >= 25
    assert len({s.name for s in LIBRARY}) == len(LIBRARY)
    for s in LIBRARY:
        assert s.doc and s.steps
        assert all(st.expect is not None for st in s.steps if not isinstance(st, Mmap)), s.name


# -- normalization ---------------------------------------------------------------------------

MAPS = {"m": (0x10000, 4), "n": (0x20000, 2)}


def test_locate_normalizes_addresses_to_mapping_and_page() -> None:
    assert scenario.locate(0x10000, MAPS) == scenario.PageRef("m", 0)
    assert scenario.locate(0x12018, MAPS) == scenario.PageRef("m", 2, 0x18)
    assert scenario.locate(0x21FFF, MAPS).render() == "n[1]+0xfff"
    out = scenario.locate(0x14000, MAPS)
    assert out.name == "?" and out.page == 0x14
    assert scenario.locate_range(0x11000, 0x13000, MAPS) == "m[1:3]"
    assert scenario.locate_range(0x30000, 0x31000, MAPS) == "?[0x30000:0x31000]"


def test_messages_of_both_sides_normalize_alike() -> None:
    model_maps = {"m": (0x3FEFFFFC000, 4)}
    host_maps = {"m": (0x7F0000000000, 4)}
    for maps in (model_maps, host_maps):
        base = maps["m"][0]
        pf = scenario.make_msg(event=0x12, uffd="u", mappings=maps, flags=3, address=base + 4096)
        assert pf.render() == "PAGEFAULT u m[1] write wp"
        rd = scenario.make_msg(event=0x12, uffd="u", mappings=maps, address=base, ptid=77)
        assert rd.render() == "PAGEFAULT u m[0] read ptid"
        rm = scenario.make_msg(
            event=0x15, uffd="u", mappings=maps, address=base, end=base + 2 * 4096
        )
        assert rm.render() == "REMOVE u m[0:2]"
    fk = scenario.make_msg(event=0x13, uffd="u", mappings=model_maps, child="u/fork")
    assert fk.render() == "FORK u -> u/fork"
    minor = scenario.make_msg(event=0x12, uffd="u", mappings=model_maps, flags=4, address=0)
    assert minor.minor and not minor.write


def test_feature_names_and_raw_bits() -> None:
    assert scenario.feature_bits(["EVENT_FORK", "UFFD_FEATURE_SIGBUS"]) == (1 << 1) | (1 << 7)
    assert scenario.feature_bits(["BIT63"]) == 1 << 63
    with pytest.raises(ValueError, match="unknown userfaultfd feature"):
        scenario.feature_bits(["NOPE"])


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="before the fork"):
        Scenario("x", "", (Mmap("m", 1), Read("m", 0, proc="child")))
    with pytest.raises(ValueError, match="at most once"):
        Scenario("x", "", (Fork(), Fork()))
    with pytest.raises(ValueError, match="unknown need"):
        Scenario("x", "", (), needs=frozenset({"gpu"}))
    with pytest.raises(ValueError, match="both swap and no_swap"):
        Scenario("x", "", (), needs=frozenset({"swap", "no_swap"}))


def test_library_has_the_swap_and_lazyfree_reclaim_families() -> None:
    """Shmem pageout and redirtied lazyfree pages under reclaim, each with and without swap
    (what FINDINGS.md section 5 reports on)."""
    shmem_pageout = [
        s
        for s in LIBRARY
        if any(isinstance(x, Mmap) and x.kind == "shmem" for x in s.steps)
        and any(isinstance(x, Madvise) and x.advice == "pageout" for x in s.steps)
    ]
    redirtied = [
        s
        for s in LIBRARY
        if any(
            isinstance(x, Write)
            and any(isinstance(y, Madvise) and y.advice == "free" for y in s.steps[:i])
            for i, x in enumerate(s.steps)
        )
    ]
    for family in (shmem_pageout, redirtied):
        assert {"swap", "no_swap"} <= {n for s in family for n in s.needs}, family


def test_host_skips_swap_scenarios_by_what_the_machine_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host, "host_info", lambda: host.HostInfo(None, ~0))
    needs_swap = BY_NAME["shmem_pageout_to_swap_then_read_back_without_userfault"]
    needs_none = BY_NAME["shmem_pageout_without_swap_keeps_the_page_cache"]
    monkeypatch.setattr(host, "swap_devices", list)
    assert "no swap device" in (host.host_skip_reason(needs_swap) or "")
    assert host.host_skip_reason(needs_none) is None
    monkeypatch.setattr(host, "swap_devices", lambda: ["/var/tmp/x.swap"])
    assert host.host_skip_reason(needs_swap) is None
    why = host.host_skip_reason(needs_none) or ""
    assert "/var/tmp/x.swap" in why and "swapoff" in why


def test_model_runs_no_swap_scenarios_without_swap() -> None:
    """The same redirtied lazyfree page goes to swap on the second pageout only when the
    model has swap: the no-swap scenario's model must have none."""
    sc = BY_NAME["lazyfree_redirtied_without_swap_stays_resident"]
    res = cc.run_model(sc, arch="s390x")
    obs = {st.describe(): o.render() for st, o in zip(sc.steps, res.observations, strict=True)}
    assert obs["page_state m[1]"] == "present" and obs["swap_usage m"] == "swap 0"
    with_swap = Scenario(sc.name, sc.doc, sc.steps)
    res = cc.run_model(with_swap, arch="s390x")
    obs = {st.describe(): o.render() for st, o in zip(sc.steps, res.observations, strict=True)}
    assert obs["page_state m[1]"] == "swapped" and obs["swap_usage m"] == "swap 1"


@pytest.mark.parametrize(
    "name",
    [
        "sigbus_feature_turns_userfault_into_sigbus",
        "thread_id_feature_reports_the_thread",
        "thread_id_feature_reports_the_main_thread",
    ],
)
def test_a_413_model_skips_the_sigbus_and_thread_id_scenarios_with_the_reason(name: str) -> None:
    """fs/userfaultfd.c ``userfaultfd_api`` of 4.13 refuses UFFD_FEATURE_SIGBUS and THREAD_ID
    (both v4.14) with EINVAL: a 4.13 crosscheck skips the scenarios that ask for them and
    says why; 4.17 runs them."""
    sc = BY_NAME[name]
    res = cc.run_model(sc, profile="4.13", arch="s390x")
    assert res.skipped is not None and "profile 4.13 does not offer UFFD_FEATURE_" in res.skipped
    assert "EINVAL" in res.skipped and not res.observations
    assert cc.run_model(sc, profile="4.17", arch="s390x").skipped is None


# -- compare ----------------------------------------------------------------------------------


def _run(side: str, *obs: Observation) -> RunResult:
    return RunResult(side=side, observations=list(obs))


def test_compare_detects_a_difference() -> None:
    sc = Scenario("x", "", (Mmap("m", 1), Read("m", 0), ReadEvents()))
    msg = Msg(event="PAGEFAULT", uffd="u", where="m[0]")
    blocked = Observation("blocked", msgs=(msg,))
    m = _run("model", scenario.OK, blocked, Observation("events", msgs=(msg,)))
    h = _run("kernel", scenario.OK, Observation("value", value=0), Observation("events"))
    diffs = cc.compare(sc, m, h)
    assert len(diffs) == 2
    assert diffs[0].startswith("step 1 (read m[0] t0): model 'blocked: PAGEFAULT u m[0] read'")
    assert "kernel 'value 0x0'" in diffs[0]
    assert "kernel '[]'" in diffs[1]
    assert cc.compare(sc, m, m) == []
    short = _run("kernel", scenario.OK)
    assert any("(no observation)" in d for d in cc.compare(sc, m, short))
    skipped = RunResult(side="kernel", skipped="no swap")
    assert cc.compare(sc, m, skipped) == []


def test_ptid_compares_by_presence_only() -> None:
    a = scenario.make_msg(event=0x12, uffd="u", mappings=MAPS, address=0x10000, ptid=7)
    b = scenario.make_msg(event=0x12, uffd="u", mappings=MAPS, address=0x10000, ptid=4242)
    assert a == b


def test_expectations_accept_alternatives() -> None:
    assert scenario.expectation_matches("EINVAL | ENOMEM", "ENOMEM")
    assert not scenario.expectation_matches("EINVAL", "ok")
    sc = BY_NAME["register_range_without_vma_fails"]
    res = _run("kernel", scenario.OK, scenario.OK, scenario.OK, scenario.errno_obs("ENOMEM"))
    assert scenario.check_expectations(sc, res) == []


def test_format_table_shows_verdicts() -> None:
    rows = [
        cc.Row("a", "ok", "ok", True, None),
        cc.Row("b", "EAGAIN", "ok", False, None, ["step 3 (copy): model 'EAGAIN' != kernel 'ok'"]),
        cc.Row("c", "skipped: x", "ok", False, "x"),
    ]
    text = cc.format_table(rows)
    assert "agree" in text and "DIFFER" in text and "skipped: x" in text
    assert text.endswith("3 scenarios: 1 agree, 1 differ, 1 skipped")


# -- runners ----------------------------------------------------------------------------------


def test_ioctl_numbers_match_the_uapi_header() -> None:
    assert host.UFFDIO_API == 0xC018AA3F
    assert host.UFFDIO_REGISTER == 0xC020AA00
    assert host.UFFDIO_UNREGISTER == 0x8010AA01
    assert host.UFFDIO_WAKE == 0x8010AA02
    assert host.UFFDIO_COPY == 0xC028AA03
    assert host.UFFDIO_ZEROPAGE == 0xC020AA04
    assert host.UFFDIO_WRITEPROTECT == 0xC018AA06
    assert host.UFFDIO_CONTINUE == 0xC020AA07
    assert host.USERFAULTFD_IOC_NEW == 0xAA00


def test_uffd_msg_is_parsed_from_32_bytes() -> None:
    raw = bytes([0x12]) + bytes(7) + (1).to_bytes(8, "little")
    raw += (0x7F0000001000).to_bytes(8, "little") + (4242).to_bytes(8, "little")
    assert host.parse_msg(raw) == (0x12, 1, 0x7F0000001000, 4242)
    with pytest.raises(ValueError):
        host.parse_msg(raw[:16])


def test_model_falls_back_to_s390x_and_skips_wp_and_minor() -> None:
    wp = BY_NAME["anon_wp_fault_resolved_by_clearing_writeprotect"]
    try:
        reclaim.Kernel(profile="6.12", arch="x86_64")
        has_x86 = True
    except reclaim.ArgumentError:
        has_x86 = False
    res = cc.run_model(wp, arch="x86_64")
    if has_x86:
        assert res.skipped is None
    else:
        assert res.skipped is not None and "x86_64 not available yet" in res.skipped
        plain = cc.run_model(BY_NAME["zeropage_twice_is_eexist"], arch="x86_64")
        assert plain.skipped is None and any("ran on s390x" in n for n in plain.notes)
    s390 = cc.run_model(wp, arch="s390x")
    assert s390.skipped is not None and "s390x has no uffd-wp" in s390.skipped


@pytest.mark.host
def test_crosscheck_rows_for_two_scenarios() -> None:
    names = ["zeropage_twice_is_eexist", "copy_after_dontneed_returned_succeeds"]
    rows = cc.crosscheck(names)
    assert [r.scenario for r in rows] == names
    if rows[0].skipped:
        pytest.skip(rows[0].skipped)
    assert rows[0].agree and rows[0].model == rows[0].kernel == "EEXIST"
    assert rows[1].agree and not rows[1].differences


def test_crosscheck_reports_progress_after_each_scenario() -> None:
    seen: list[tuple[int, int]] = []
    names = ["zeropage_twice_is_eexist", "register_zero_length_is_einval"]
    rows = cc.crosscheck(names, progress=lambda done, total: seen.append((done, total)))
    assert len(rows) == 2 and seen == [(1, 2), (2, 2)]


def _fake_crosscheck(
    names: list[str] | None = None,
    arch: str | None = None,
    profile: object = "6.12",
    progress: Callable[[int, int], object] | None = None,
) -> list[cc.Row]:
    rows = [cc.Row("a", "ok", "ok", True, None), cc.Row("b", "ok", "ok", True, None)]
    for i in range(len(rows)):
        if progress is not None:
            progress(i + 1, len(rows))
    return rows


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_crosscheck_status_line_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """`reclaim crosscheck` draws the status line on stderr when it is a terminal and the
    output is not --json; stdout (the table, or the JSON rows) is the same either way."""
    monkeypatch.setattr(cc, "crosscheck", _fake_crosscheck)
    clock = iter(range(0, 10_000, 2))  # two seconds a look: past the status line's delay
    monkeypatch.setattr("reclaim.progress.time", SimpleNamespace(monotonic=lambda: next(clock)))
    argv = ["crosscheck", *(["--json"] if as_json else [])]
    outs = {}
    for tty in (True, False):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        assert reclaim.cli.main(argv) == 0
        outs[tty], err = capsys.readouterr()
        if tty and not as_json:
            assert "crosscheck [" in err and "100% scenarios" in err and err.endswith("\n")
        else:
            assert err == ""
    assert outs[True] == outs[False]
    if as_json:
        assert [r["scenario"] for r in json.loads(outs[True])] == ["a", "b"]
    else:
        assert outs[True].rstrip().endswith("2 scenarios: 2 agree, 0 differ, 0 skipped")
