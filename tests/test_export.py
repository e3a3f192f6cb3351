"""Exports of a run (reclaim.export): a Chrome Trace Event file Perfetto opens (per-phase keys,
metadata, the blocked vCPUs of the 4.17 hang) and ftrace text in the kernel's mm_vmscan
formats."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import reclaim
from conftest import EVERY, SMALL, oom_kernel, swap_kernel
from reclaim.events import (
    fields_frame,
    run_slices,
    to_frame,
)
from reclaim.export import chrome_trace, ftrace_text
from reclaim.studies import PostcopyResult, prepare

# -------------------------------------------------------------------------- Chrome trace

PHASES = {"X", "i", "C", "M", "s", "f"}
METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def check_trace_event_format(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys the Trace Event format requires per phase; returns the events."""
    assert set(doc) >= {"traceEvents", "displayTimeUnit"} and doc["displayTimeUnit"] == "ms"
    events: list[dict[str, Any]] = doc["traceEvents"]
    for e in events:
        assert {"name", "ph", "ts", "pid", "tid"} <= set(e), e
        assert isinstance(e["name"], str) and e["ph"] in PHASES, e
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] >= 0, e
        elif e["ph"] == "C":
            assert e["args"] and all(isinstance(v, int | float) for v in e["args"].values()), e
        elif e["ph"] == "i":
            assert e.get("s", "t") in {"g", "p", "t"}, e
        elif e["ph"] in {"s", "f"}:  # flow events: an id, and "f" binds to its enclosing slice
            assert isinstance(e["id"], int) and e["cat"], e
            assert e["ph"] == "s" or e["bp"] == "e", e
        else:
            assert e["name"] in METADATA and isinstance(e["args"], dict), e
    return events


def test_chrome_trace_of_the_417_hang(
    tmp_path: Path, run417: tuple[pd.DataFrame, PostcopyResult]
) -> None:
    series, r = run417
    path = chrome_trace(r, tmp_path / "417.json", samples=series)
    assert path == tmp_path / "417.json"
    doc = json.loads(path.read_text())
    events = check_trace_event_format(doc)
    assert doc["otherData"]["outcome"] == "hung"
    meta = [e for e in events if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    hosts = {p: n for p, n in procs.items() if not n.startswith("causal chain")}
    assert sorted(hosts.values()) == ["destination", "source"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert {"vCPU 0", "vCPU 1", "kswapd0"} <= set(threads.values())
    for e in events:
        if e["ph"] in {"X", "i"}:
            assert (e["pid"], e["tid"]) in threads, e
    dest = next(pid for pid, name in procs.items() if name == "destination")
    blocked = [e for e in events if e["name"] == "blocked on userfault"]
    n_blocked = sum(1 for e in r.events("kvm:vcpu_blocked"))
    assert len(blocked) == n_blocked > 0
    assert all(e["pid"] == dest and threads[dest, e["tid"]].startswith("vCPU") for e in blocked)
    woken = fields_frame(to_frame(r, kinds="sched:thread_woken"), "sched:thread_woken")
    assert sum(e["dur"] for e in blocked) == pytest.approx(woken["blocked_ns"].sum() / 1e3)
    hang = r.hang
    assert hang is not None
    assert any(
        e["ts"] == pytest.approx(int(hang["since"] or 0) / 1e3)
        and threads[dest, e["tid"]] == f"vCPU {hang['vcpu']}"
        for e in blocked
    )
    by_thread: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if e["ph"] == "X":
            by_thread.setdefault(e["tid"], []).append((e["ts"], e["dur"]))
    for spans in by_thread.values():  # slices of a thread do not overlap
        spans.sort()
        assert all(a + d <= b + 1e-6 for (a, d), (b, _) in itertools.pairwise(spans))
    names = Counter(e["name"] for e in events)
    assert names["userfault"] == r.metrics["userfaults"]
    assert names["drop_pte_unused"] == r.metrics["dest_pages_dropped"] > 0
    assert names["kswapd"] == len(r.events("mm_vmscan_kswapd_wake"))
    counters = [e for e in events if e["ph"] == "C"]
    assert Counter(e["name"] for e in counters) == {
        "free pages": len(series),
        "swap in use": len(series),
    }
    swap = [e["args"]["pages"] for e in counters if e["name"] == "swap in use"]
    assert swap[0] == 0 and max(swap) > 0


def test_perfetto_shows_the_causal_chain_as_arrows_on_a_track_of_its_own(
    tmp_path: Path, r417: PostcopyResult
) -> None:
    doc = json.loads(chrome_trace(r417, tmp_path / "chain.json").read_text())
    events = check_trace_event_format(doc)
    hang = r417.hang
    assert hang is not None
    procs = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    chain_pid = next(p for p, n in procs.items() if n.startswith("causal chain"))
    assert procs[chain_pid] == f"causal chain: guest page {hang['gfn']:#x}"
    threads = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    steps = [e for e in events if e["ph"] == "X" and e["pid"] == chain_pid]
    step_slices = [e for e in steps if threads[e["tid"]].startswith("steps")]
    # every step of the chain is on the track (steps at one instant share a slice)
    assert len(step_slices) == len({int(str(s["t"])) for s in r417.chain}) > 3
    assert any("pte_unused" in e["name"] for e in step_slices)
    # consecutive steps are joined by arrows: a start in one slice, a finish where the next begins
    flows = [e for e in events if e["ph"] in {"s", "f"}]
    assert len(flows) == 2 * (len(step_slices) - 1)
    starts = {e["ts"] for e in step_slices}
    assert all(e["ts"] in starts for e in flows if e["ph"] == "f")
    # the hang: a marked slice on its own thread, as long as the stall
    marked = [e for e in steps if threads[e["tid"]] == f"HANG vCPU {hang['vcpu']}"]
    assert len(marked) == 1 and marked[0]["name"].startswith(f"HANG: vCPU {hang['vcpu']} waits")
    stall = next(s for s in r417.stalls if s["vcpu"] == hang["vcpu"])
    assert marked[0]["dur"] == pytest.approx(int(str(stall["waited_ns"])) / 1e3)
    assert "only the end of the migration released it" in marked[0]["args"]["what"]
    blocked = [e for e in events if e["name"] == "blocked on userfault" and "HANG" in e["args"]]
    assert len(blocked) == len(r417.stalls)


def test_chrome_trace_of_418_and_of_sample_tuples(tmp_path: Path) -> None:
    run = prepare("4.18", **SMALL)
    samples = []
    for now in run_slices(run, EVERY):
        samples += [(now, host, run.vmstat(host)) for host in (0, 1)]
    r = run.result()
    doc = json.loads(chrome_trace(r, tmp_path / "418.json", samples=samples).read_text())
    events = check_trace_event_format(doc)
    names = Counter((e["pid"], e["name"]) for e in events)
    assert not any(name == "drop_pte_unused" for _, name in names)
    assert names[1, "free pages"] == names[2, "free pages"] == len(samples) // 2
    bad = pd.DataFrame({"nr_free_pages": [1]})
    with pytest.raises(reclaim.ArgumentError, match="attrs"):
        chrome_trace(r, tmp_path / "bad.json", samples=bad)


def test_chrome_trace_of_a_kernel_has_direct_reclaim(tmp_path: Path) -> None:
    k = oom_kernel()
    doc = json.loads(chrome_trace(k, tmp_path / "k.json").read_text())
    events = check_trace_event_format(doc)
    direct = [e for e in events if e["name"] == "direct reclaim" and e["ph"] == "X"]
    assert len(direct) == len(k.events("mm_vmscan_direct_reclaim_begin")) > 0
    assert all(e["args"] == {"nr_reclaimed": 0} for e in direct)
    assert doc["otherData"] == {"profile": "4.18"}


# --------------------------------------------------------------------------- ftrace text

LINE = re.compile(
    r"^(?P<task>.{16})-(?P<pid>\d+) +\[(?P<cpu>\d{3})\] \.{5} +(?P<secs>\d+)\.(?P<usecs>\d{6}): "
    r"(?P<tp>[\w:]+): (?P<fields>.*)$"
)
# TP_printk of include/trace/events/vmscan.h (mainline), with the fields the model fills.
TP_PRINTK = {
    "mm_vmscan_kswapd_wake": "nid=%d order=%d",
    "mm_vmscan_kswapd_sleep": "nid=%d",
    "mm_vmscan_direct_reclaim_begin": "order=%d gfp_flags=%s",
    "mm_vmscan_direct_reclaim_end": "nr_reclaimed=%lu",
    "mm_vmscan_lru_shrink_inactive": "nid=%d nr_scanned=%ld nr_reclaimed=%ld nr_dirty=%ld "
    "nr_writeback=%ld nr_congested=%ld nr_immediate=%ld nr_activate_anon=%d "
    "nr_activate_file=%d nr_ref_keep=%ld nr_unmap_fail=%ld priority=%d flags=%s",
    "mm_vmscan_lru_shrink_active": "nid=%d nr_taken=%ld nr_active=%ld nr_deactivated=%ld "
    "nr_referenced=%ld priority=%d flags=%s",
    "mm_vmscan_write_folio": "page=%p pfn=0x%lx flags=%s",
    "mm_vmscan_writepage": "page=%p pfn=0x%lx flags=%s",
    "mm_vmscan_lru_isolate": "classzone=%d order=%d nr_requested=%lu nr_scanned=%lu "
    "nr_skipped=%lu nr_taken=%lu lru=%s",
}


def printk_regex(fmt: str) -> re.Pattern[str]:
    conv = {"%d": r"-?\d+", "%ld": r"-?\d+", "%lu": r"\d+", "%lx": "[0-9a-f]+"}
    conv |= {"%p": "[0-9a-f]{16}", "%s": r"[A-Z_|]+"}
    parts = re.split(r"(%l?[dux]|%[ps])", fmt)
    return re.compile("".join(conv.get(p, re.escape(p)) for p in parts) + "$")


def check_ftrace(text: str, n: int) -> list[re.Match[str]]:
    lines = text.splitlines()
    assert lines[0] == "# tracer: nop"
    body = [line for line in lines if not line.startswith("#")]
    assert len(body) == n
    matches = []
    for line in body:
        m = LINE.match(line)
        assert m, line
        fmt = TP_PRINTK.get(m["tp"])
        if fmt is not None:
            assert printk_regex(fmt).match(m["fields"]), line
        matches.append(m)
    stamps = [int(m["secs"]) * 1_000_000 + int(m["usecs"]) for m in matches]
    assert stamps == sorted(stamps)
    return matches


def test_ftrace_text_of_a_study_in_the_kernel_formats(tmp_path: Path, r417: PostcopyResult) -> None:
    text = ftrace_text(r417, tmp_path / "trace")
    assert (tmp_path / "trace").read_text() == text
    matches = check_ftrace(text, r417.n_events)
    seen = Counter(m["tp"] for m in matches)
    for tp in (
        "mm_vmscan_kswapd_wake",
        "mm_vmscan_kswapd_sleep",
        "mm_vmscan_lru_shrink_inactive",
        "mm_vmscan_lru_shrink_active",
        "mm_vmscan_writepage",
    ):
        assert seen[tp] > 0, tp
    vmscan = [m for m in matches if m["tp"].startswith("mm_vmscan")]
    # kswapd's, and direct reclaim's in the faulting task, which the log does not name ("<...>",
    # ftrace's unknown comm): swap readahead's allocations can fall below the min watermark
    assert "kswapd0" in {m["task"].strip() for m in vmscan}
    assert {m["task"].strip() for m in vmscan} <= {"kswapd0", "<...>"}
    assert {m["cpu"] for m in vmscan} == {"001"}
    write = next(e for e in r417.events("mm_vmscan_writepage"))
    line = next(m for m in vmscan if m["tp"] == "mm_vmscan_writepage")
    assert f"pfn={write.fields()['pfn']:#x} " in line["fields"]
    assert line["fields"].endswith("flags=RECLAIM_WB_ANON|RECLAIM_WB_ASYNC")
    sleep = next(m for m in vmscan if m["tp"] == "mm_vmscan_kswapd_sleep")
    assert sleep["fields"] == "nid=0"
    fault = next(m for m in matches if m["tp"] == "reclaim:mm:handle_mm_fault")
    assert re.match(r"pid=\d+ tid=\d+ addr=0x[0-9a-f]+ pfn=0x[0-9a-f]+ path=\S+", fault["fields"])
    dest = ftrace_text(r417, host=1)
    check_ftrace(dest, int((to_frame(r417)["host"] == 1).sum()))


def test_ftrace_text_of_a_study_names_qemus_threads_and_says_what_the_model_lacks(
    r417: PostcopyResult,
) -> None:
    text = ftrace_text(r417)
    notes = [line for line in text.splitlines() if line.startswith("# reclaim:")]
    assert any(
        "no CPUs: the CPU column is the host (000 source, 001 destination)" in n for n in notes
    )
    assert any("<...>" in n for n in notes)
    tasks = {m["task"].strip(): m for m in check_ftrace(text, r417.n_events)}
    # QEMU's threads as the kernel would name them: vCPUs "CPU n/KVM", the migration threads
    assert {"CPU 0/KVM", "CPU 1/KVM", "live_migration", "postcopy/listen", "kswapd0"} <= set(tasks)
    assert tasks["live_migration"]["cpu"] == "000" and tasks["postcopy/listen"]["cpu"] == "001"
    blocked = [
        m for m in check_ftrace(text, r417.n_events) if m["tp"] == "reclaim:kvm:vcpu_blocked"
    ]
    assert blocked and all(m["task"].strip().endswith("/KVM") for m in blocked)
    phases = [
        m for m in check_ftrace(text, r417.n_events) if m["tp"] == "reclaim:qemu:migration_phase"
    ]
    assert {m["task"].strip() for m in phases} == {"live_migration", "postcopy/listen"}
    requests = [
        m for m in tasks.values() if m["tp"] == "reclaim:qemu:postcopy_ram_fault_thread_request"
    ]
    assert all(m["task"].strip() == "postcopy/fault" for m in requests)


def test_ftrace_text_of_a_kernel_names_tasks_and_direct_reclaim() -> None:
    k = oom_kernel()
    matches = check_ftrace(ftrace_text(k), len(k.events()))
    begin = next(m for m in matches if m["tp"] == "mm_vmscan_direct_reclaim_begin")
    assert begin["fields"] == "order=0 gfp_flags=GFP_HIGHUSER_MOVABLE"
    assert begin["task"].strip() == "<...>"
    end = next(m for m in matches if m["tp"] == "mm_vmscan_direct_reclaim_end")
    assert end["fields"] == "nr_reclaimed=0"
    faults = [m for m in matches if m["tp"] == "reclaim:mm:handle_mm_fault"]
    assert {m["task"].strip() for m in faults} == {"stress-ng-vm"}
    k2 = swap_kernel()
    shrink = [
        m
        for m in check_ftrace(ftrace_text(k2), len(k2.events()))
        if m["tp"] == "mm_vmscan_lru_shrink_inactive"
    ]
    assert shrink and all(m["task"].strip() == "kswapd0" for m in shrink)
    assert all(
        m["fields"].endswith("priority=12 flags=RECLAIM_WB_ANON|RECLAIM_WB_ASYNC") for m in shrink
    )


@pytest.mark.parametrize(
    ("profile", "writeback"), [("4.17", "mm_vmscan_writepage"), ("6.12", "mm_vmscan_write_folio")]
)
def test_ftrace_text_names_tracepoints_as_the_release_does_and_marks_the_models_own_events(
    profile: str, writeback: str
) -> None:
    """include/trace/events/vmscan.h: TRACE_EVENT(mm_vmscan_writepage) up to v5.17,
    mm_vmscan_write_folio from v5.18; the model's own events (try_to_unmap_one, faults) are
    no kernel tracepoints and carry the reclaim: prefix."""
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap="16MiB", seed=1)
    p = k.spawn("writer")
    ram = p.mmap("20MiB")
    for i in range(5120):
        p.write(ram + i * 4096, i)
    tps = Counter(m["tp"] for m in check_ftrace(ftrace_text(k), len(k.events())))
    assert tps[writeback] > 0
    assert {tp for tp in tps if tp.startswith("mm_vmscan_write")} == {writeback}
    assert tps["reclaim:rmap:try_to_unmap_one"] > 0 and tps["reclaim:mm:handle_mm_fault"] > 0
    assert all(tp.startswith(("mm_vmscan_", "reclaim:")) for tp in tps), tps
    assert {e.tracepoint for e in k.events("mm_vmscan_write_folio")} == {writeback}


def test_exports_never_create_a_directory_and_a_failed_write_keeps_the_old_file(
    tmp_path: Path, r417: PostcopyResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no" / "such" / "t.json"
    for write in (chrome_trace, ftrace_text):
        with pytest.raises(reclaim.FileError) as e:
            write(r417, missing)
        assert str(e.value) == f"cannot write the trace {missing}: no directory {missing.parent}"
    assert not (tmp_path / "no").exists()
    # a write that fails half-way (the disk fills up) leaves the existing file as it was
    old = tmp_path / "seed.json"
    old.write_text("the previous export")
    import reclaim.output as output

    def full_disk(path: Any, data: bytes, what: str) -> None:
        part = Path(path).with_name(Path(path).name + ".partial")
        part.write_bytes(data[: len(data) // 2])
        part.unlink()
        raise reclaim.FileError(f"cannot write {what} {path}: No space left on device")

    monkeypatch.setattr(output, "write_file", full_disk)
    for write in (chrome_trace, ftrace_text):
        with pytest.raises(reclaim.FileError, match="No space left on device"):
            write(r417, old)
        assert old.read_text() == "the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.json"]
