"""The postcopy study of a KVM guest under QEMU postcopy migration: the seed
hangs on 4.17 through the pte_unused drop and completes on 4.18 and 6.12, over 20 seeds and
two guest sizes; the residual CBRL and DIAG 0x10 paths are reported as what they are."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys

import pytest
import reclaim
from conftest import SMALL_STUDY
from reclaim.studies import postcopy, prepare

SEEDS = range(20)
SIZES = ["64MiB", "128MiB"]


def chain_text(r: reclaim.studies.PostcopyResult) -> str:
    return "\n".join(str(s["what"]) for s in r.chain)


@pytest.mark.parametrize("size", SIZES)
def test_seed_hangs_417_through_the_pte_unused_drop_every_run(size: str) -> None:
    for seed in SEEDS:
        r = postcopy("4.17", seed=seed, guest_memory=size)
        assert r.outcome == "hung", (seed, r.metrics)
        assert r.metrics["userfaults_on_received"] > 0
        text = chain_text(r)
        assert "drops the page: pte_unused" in text, (seed, text)
        assert "get_queued_page: already sent" in text, (seed, text)
        hang = r.hang
        assert hang is not None and hang["since"] is not None


@pytest.mark.parametrize("profile", ["4.18", "6.12"])
@pytest.mark.parametrize("size", SIZES)
def test_fixed_profiles_complete_without_userfaults_on_received_pages(
    profile: str, size: str
) -> None:
    for seed in SEEDS:
        r = postcopy(profile, seed=seed, guest_memory=size)
        assert r.outcome == "completed", (seed, r.metrics, r.chain[-3:])
        assert r.metrics["userfaults_on_received"] == 0
        assert r.metrics["dest_pages_swapped"] > 0, "the destination was under pressure"
        assert r.metrics["data_errors"] == 0


def test_without_cmma_hints_417_completes_too() -> None:
    for seed in range(5):
        r = postcopy("4.17", seed=seed, guest_memory="64MiB", cmma=False)
        assert r.outcome == "completed"
        assert r.metrics["dest_pages_dropped"] == 0


def test_new_qemu_suppresses_the_request_and_still_hangs_on_417() -> None:
    r = postcopy("4.17", seed=1, guest_memory="64MiB", qemu="5.2")
    assert r.outcome == "hung"
    assert r.metrics["requests_suppressed"] > 0
    assert "received bitmap says the page is there" in chain_text(r)


def test_cbrl_path_loses_received_pages_on_418_when_the_guest_frees_swapped_pages() -> None:
    """A finding (FINDINGS.md): ESSA SET_UNUSED on a page the host swapped out puts it on the
    CBRL; __gmap_zap → ptep_zap_unused clears the swap PTE with no userfaultfd check."""
    r = postcopy("4.18", seed=0, guest_memory="256MiB", free_policy="random")
    assert r.outcome == "hung"
    assert r.metrics["dest_cbrl_zapped"] > 0
    assert r.metrics["dest_pages_dropped"] == 0, "not the pte_unused path"
    assert "ptep_zap_unused clears the swap PTE" in chain_text(r)


@pytest.mark.parametrize("profile", ["4.18", "6.12"])
def test_diag10_path_loses_received_pages_on_every_profile(profile: str) -> None:
    """A finding (FINDINGS.md): DIAG 0x10 → gmap_discard zaps the range, no userfaultfd event."""
    r = postcopy(profile, seed=1, guest_memory="64MiB", diag10=0.2)
    assert r.outcome == "hung"
    assert r.metrics["dest_diag10_zapped"] > 0
    assert "DIAG 0x10" in chain_text(r)


def test_same_seed_same_log_different_seed_different_log() -> None:
    a = postcopy("4.18", seed=11, guest_memory="64MiB")
    b = postcopy("4.18", seed=11, guest_memory="64MiB")
    c = postcopy("4.18", seed=12, guest_memory="64MiB")
    assert a.log_hash == b.log_hash and a.metrics == b.metrics
    assert a.log_hash != c.log_hash


def test_completed_metrics_are_consistent() -> None:
    r = postcopy("4.18", seed=2, guest_memory="64MiB")
    m = r.metrics
    pages = 64 << 8
    assert m["precopy_pages"] == pages, "one full precopy pass"
    assert 0 < m["postcopy_pages"] <= pages
    assert m["downtime_ns"] > 0 and m["total_time_ns"] > m["downtime_ns"]
    assert m["page_requests"] >= m["requests_not_dirty"]
    assert r.trace == "full" and r.n_events > 0


def test_bad_study_arguments_are_clear_errors() -> None:
    with pytest.raises(reclaim.ArgumentError, match="access pattern"):
        postcopy("4.18", guest_memory="64MiB", workload="gaussian")
    with pytest.raises(reclaim.ArgumentError, match="QEMU"):
        postcopy("4.18", guest_memory="64MiB", qemu="1.0")
    with pytest.raises(reclaim.ArgumentError, match="source memory"):
        postcopy("4.18", guest_memory="64MiB", source_memory="32MiB")
    with pytest.raises(reclaim.ArgumentError, match="bandwidth"):
        postcopy("4.18", guest_memory="64MiB", bandwidth="fast")


def test_unknown_study_parameters_are_named_with_the_valid_ones() -> None:
    with pytest.raises(reclaim.ArgumentError) as e:
        postcopy("4.18", bogus=1)
    msg = str(e.value)
    assert msg.startswith("the postcopy study has no parameter 'bogus'; its parameters: profile,")
    assert "prepare" not in msg and "guest_memory" in msg and "max_time" in msg
    with pytest.raises(
        reclaim.ArgumentError, match=r"'gust_memory' \(did you mean 'guest_memory'\?\)"
    ):
        postcopy("4.18", gust_memory="16MiB")


@pytest.mark.parametrize("max_time", [-1.0, float("nan"), float("inf"), 1e300])
def test_max_time_out_of_range_is_an_argument_error(max_time: float) -> None:
    with pytest.raises(reclaim.ArgumentError, match=r"^max_time must be from 0 to 1.84e\+10 s"):
        prepare("4.18", guest_memory="16MiB", max_time=max_time)


def test_cli_study_json_and_exit_code() -> None:
    r = subprocess.run(
        [
            "reclaim",
            "study",
            "postcopy",
            "--profile",
            "4.17",
            "--guest-memory",
            "64MiB",
            "--seed",
            "1",
            "--json",
            "--fail-on-hang",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)
    assert out["outcome"] == "hung" and out["profile"] == "4.17"
    bad = subprocess.run(
        ["reclaim", "study", "postcopy", "--guest-memory", "lots"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0, "one readable line"


def test_a_run_mutes_checks_and_counts_its_steps() -> None:
    run = prepare("4.18", guest_memory="16MiB", seed=3)
    run.mute("kvm:essa")
    run.advance(10**12)
    run.check()
    r = run.result()
    assert r.outcome == "completed"
    assert r.events("kvm:essa") == [] and r.events("qemu:migration_phase")
    assert run.steps > r.metrics["guest_ops"] > 0
    source_frames = (16 + 4 + 64) << 20 >> 12  # guest + 25% + 64 MiB
    assert run.heap_bytes() > source_frames * 28  # 28 bytes of struct page per frame
    with pytest.raises(reclaim.ArgumentError):
        run.mute("kvm:nothing")


#: The small study, with a destination swap of its own and a seed.
SMALL: dict[str, object] = {**SMALL_STUDY, "swap": "32MiB", "seed": 1}


def test_import_reclaim_alone_gives_the_postcopy_study() -> None:
    code = (
        "import reclaim\n"
        "r = reclaim.studies.postcopy(profile='4.18', host_memory='14MiB', swap='32MiB',"
        " guest_memory='16MiB', source_memory='24MiB', other_load='2MiB', seed=1)\n"
        "print(r.outcome)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["completed"]


def test_host_memory_and_swap_are_the_destinations_and_the_older_names_still_work() -> None:
    a = postcopy("4.18", **SMALL)  # type: ignore[arg-type]
    old = {k: v for k, v in SMALL.items() if k not in ("host_memory", "swap")}
    b = postcopy("4.18", dest_memory="14MiB", dest_swap="32MiB", **old)  # type: ignore[arg-type]
    assert a.log_hash == b.log_hash and a.metrics == b.metrics
    more = postcopy("4.18", **{**SMALL, "host_memory": "20MiB"})  # type: ignore[arg-type]
    assert more.metrics["dest_pages_swapped"] < a.metrics["dest_pages_swapped"]
    with pytest.raises(reclaim.ArgumentError, match="host_memory or its older name dest_memory"):
        postcopy("4.18", dest_memory="14MiB", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(reclaim.ArgumentError, match='cannot parse size "lots"'):
        postcopy("4.18", **{**SMALL, "swap": "lots"})  # type: ignore[arg-type]


def test_durations_take_units_and_the_ns_names() -> None:
    a = postcopy("4.18", latency="50us", op_interval="4us", load_interval="0.03ms", **SMALL)  # type: ignore[arg-type]
    b = postcopy("4.18", latency_ns=50_000, op_interval_ns=4000, load_interval_ns=30_000, **SMALL)  # type: ignore[arg-type]
    assert a.log_hash == b.log_hash
    assert a.log_hash != postcopy("4.18", **SMALL).log_hash  # type: ignore[arg-type]
    with pytest.raises(reclaim.ArgumentError, match="cannot parse latency 'fast'"):
        postcopy("4.18", latency="fast", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(reclaim.ArgumentError, match="op_interval"):
        postcopy("4.18", op_interval=0, **SMALL)  # type: ignore[arg-type]


def study_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim.cli", "study", "postcopy", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_study_parameter_is_a_cli_option() -> None:
    options = set(re.findall(r"--([a-z0-9-]+)", study_cli("--help").stdout))
    older = {"dest_memory", "dest_swap", "op_interval_ns", "load_interval_ns", "latency_ns"}
    params = set(inspect.signature(prepare).parameters) - older
    missing = {p for p in params if p.replace("_", "-") not in options}
    assert missing == set(), f"no CLI option for {missing}"


def test_cli_options_reach_the_study() -> None:
    params: dict[str, object] = {
        **SMALL,
        "source_profile": "4.17",
        "nodat": True,
        "source_swap": "32MiB",
        "latency": "50us",
        "op_interval": "4us",
        "load_interval": "30us",
        "diag10": 0.1,
    }
    want = postcopy("4.18", **params)  # type: ignore[arg-type]
    args = []
    for k, v in params.items():
        args += [f"--{k.replace('_', '-')}", "on" if v is True else str(v)]
    r = study_cli("--profile", "4.18", "--json", *args)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["profile"], out["source_profile"]) == ("4.18", "4.17")
    assert out["log_hash"] == want.log_hash and out["metrics"] == want.metrics
    assert out["run"] == "4.17 -> 4.18 seed 1"
    bad = study_cli("--latency", "soon")
    assert bad.returncode == 2 and "cannot parse latency 'soon'" in bad.stderr
    bad = study_cli("--nodat", "maybe")
    assert bad.returncode == 2 and "expected on or off" in bad.stderr


def test_the_destinations_profile_decides_not_the_sources() -> None:
    """The bug is in the destination's reclaim (try_to_unmap_one dropping pte_unused pages of an
    armed VMA): a fixed source does not save a 4.17 destination, a 4.17 source does not hurt a
    fixed one."""
    for seed in range(3):
        bad = postcopy("4.17", source_profile="4.18", **{**SMALL, "seed": seed})  # type: ignore[arg-type]
        assert (bad.profile, bad.source_profile, bad.outcome) == ("4.17", "4.18", "hung"), seed
        assert "drops the page: pte_unused" in chain_text(bad)
        good = postcopy("4.18", source_profile="4.17", **{**SMALL, "seed": seed})  # type: ignore[arg-type]
        assert (good.source_profile, good.outcome) == ("4.17", "completed"), seed
        assert good.metrics["userfaults_on_received"] == 0
    r = study_cli(
        "--profile",
        "4.17",
        "--source-profile",
        "4.18",
        "--guest-memory",
        "16MiB",
        "--host-memory",
        "14MiB",
        "--seed",
        "1",
        "--json",
        "--fail-on-hang",
    )
    assert r.returncode == 3 and json.loads(r.stdout)["outcome"] == "hung"
    with pytest.raises(reclaim.ArgumentError, match="profile"):
        postcopy("4.18", source_profile="3.10", **SMALL)  # type: ignore[arg-type]
