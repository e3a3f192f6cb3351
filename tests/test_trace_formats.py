"""Trace formats people have: zstd-compressed traces read directly, libCacheSim's format name,
CSV timestamps checked as the binary format's are, DAMON's records as damo writes them and
perf mem samples (docs/trace-format.md)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import reclaim
from reclaim.trace import read, write, write_zipf

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_frame(data: bytes) -> bytes:
    """`data` as one zstd frame of raw (stored) blocks (RFC 8878 §3.1.1): what any zstd reader
    must decompress, made without a zstd library. Single segment, a 4-byte content size."""
    out = bytearray(ZSTD_MAGIC)
    out.append(0xA0)  # Frame_Header_Descriptor: FCS_Field_Size 4 bytes, Single_Segment
    out += struct.pack("<I", len(data))
    chunks = [data[i : i + (128 << 10)] for i in range(0, len(data), 128 << 10)] or [b""]
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        header = int(last) | (0 << 1) | (len(chunk) << 3)  # Raw_Block
        out += header.to_bytes(3, "little") + chunk
    return bytes(out)


@pytest.mark.parametrize("fmt", ["binary", "csv", "oracle"])
def test_a_zstd_compressed_trace_reads_as_the_plain_one(tmp_path: Path, fmt: str) -> None:
    plain = tmp_path / f"t.{fmt}"
    write_zipf(plain, requests=3000, pages=300, s=0.9, seed=2, format=fmt)
    packed = tmp_path / f"t.{fmt}.zst"
    packed.write_bytes(zstd_frame(plain.read_bytes()))
    a, b = read(plain), read(packed)  # auto: the zstd magic, then the decompressed bytes
    assert b.format == fmt
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.writes, b.writes)
    assert read(packed, format="oracleGeneral" if fmt == "oracle" else fmt).format == fmt


def test_a_damaged_zstd_stream_is_a_format_error(tmp_path: Path) -> None:
    t = tmp_path / "t.csv"
    write(t, np.arange(5000, dtype=np.uint64), format="csv")
    cut = tmp_path / "cut.csv.zst"
    cut.write_bytes(zstd_frame(t.read_bytes())[:-100])
    with pytest.raises(reclaim.FormatError, match="zstd"):
        read(cut)


def test_csv_times_must_not_decrease(tmp_path: Path) -> None:
    t = tmp_path / "t.csv"
    t.write_text("page,write,time\n1,0,5\n2,1,5\n3,0,4\n")
    with pytest.raises(reclaim.FormatError, match=r"at line 4: time 4 is before .* 5"):
        read(t)
    t.write_text("page,write,time\n1,0,5\n2,1,5\n3,0,6\n")
    assert read(t).times.tolist() == [5, 5, 6]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_replays_a_compressed_oracle_general_trace(tmp_path: Path) -> None:
    plain = tmp_path / "w.oracleGeneral"
    write_zipf(plain, requests=20_000, pages=2000, s=0.9, seed=5, format="oracle")
    packed = tmp_path / "w.oracleGeneral.zst"
    packed.write_bytes(zstd_frame(plain.read_bytes()))
    runs = []
    for path, fmt in ((plain, "oracle"), (packed, "oracleGeneral"), (packed, "auto")):
        r = run_cli("replay", str(path), "--format", fmt, "--memory", "25%", "--json")
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout))
    assert runs[0]["misses"] == runs[1]["misses"] == runs[2]["misses"] > 0
    bad = tmp_path / "t.csv"
    bad.write_text("page,write,time\n1,0,5\n2,0,3\n")
    r = run_cli("replay", str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "line 3: time 3 is before" in r.stderr


# ------------------------------------------------------------------- DAMON records, perf mem

# One target, two snapshots (end times 0.1 s and 0.2 s): a 16-page region sampled accessed 4
# times, a cold region (0), then one page accessed 3 times.
DAMON_REGIONS = [
    (100_000_000, [(0x7F0000000000, 0x7F0000010000, 4), (0x7F0000010000, 0x7F0000400000, 0)]),
    (200_000_000, [(0x7F0000400000, 0x7F0000401000, 3)]),
]
# 4 samples over pages 0..15 of the first region: the middles of 4 slices of 4 pages
DAMON_PAGES = [0x7F0000000 + p for p in (2, 6, 10, 14)] + [0x7F0000400] * 3


def damon_json() -> str:
    """damo's json record layout (numbers as damo's raw strings)."""
    snapshots = [
        {
            "start_time": str(t - 100_000_000),
            "end_time": str(t),
            "regions": [
                {
                    "start": str(s),
                    "end": str(e),
                    "nr_accesses": {"samples": n, "percent": None},
                    "age": {"usec": None, "aggr_intervals": 1},
                }
                for s, e, n in regions
            ],
        }
        for t, regions in DAMON_REGIONS
    ]
    rec = {"kdamond_idx": 0, "context_idx": 0, "intervals": None, "target_id": 0}
    return json.dumps([{**rec, "snapshots": snapshots}], indent=4)


def damon_record() -> bytes:
    """damo's binary record, version 2."""
    b = b"damon_recfmt_ver" + struct.pack("<i", 2)
    for t, regions in DAMON_REGIONS:
        b += struct.pack("<qqIQI", t // 10**9, t % 10**9, 1, 0, len(regions))
        b += b"".join(struct.pack("<QQI", s, e, n) for s, e, n in regions)
    return b


def damon_perf_script() -> str:
    return "".join(
        f"kdamond.0  4452 [000] {t / 1e9:.6f}: damon:damon_aggregated: target_id=0 "
        f"nr_regions={len(regions)} {s}-{e}: {n} 1\n"
        for t, regions in DAMON_REGIONS
        for s, e, n in regions
    )


def test_every_damo_container_reads_as_the_same_page_accesses(tmp_path: Path) -> None:
    files = {
        "damon.data": zlib.compress(damon_json().encode()),  # damo's default, json_compressed
        "rec.json": damon_json().encode(),
        "rec.bin": damon_record(),
        "rec.txt": damon_perf_script().encode(),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        t = read(path)  # format="auto"
        assert t.format == "damon", name
        assert t.keys.tolist() == DAMON_PAGES, name
        assert t.times.tolist() == [100_000_000] * 4 + [200_000_000] * 3, name
        assert not t.writes.any(), name  # DAMON cannot tell a store from a load
        assert read(path, format="damon").keys.tolist() == DAMON_PAGES
    # replayed: the hot page's region misses once per page touched
    r = reclaim.replay(tmp_path / "damon.data", memory="100%")
    assert r.format == "damon" and r.requests == 7 and r.distinct_pages == 5


PERF_SCRIPT = """\
# perf script -F comm,pid,tid,cpu,time,event,addr,data_src
 memtest 4242/4242 [002] 5678.123456: cpu/mem-loads/P: 7ffd8b2c4e98 6a100142 |OP LOAD|LVL L1 hit
 memtest 4242/4243 [003] 5678.123457: cpu/mem-stores/P: 7ffd8b2c5000 5080144 |OP STORE|LVL L1 hit
 memtest 4242/4243 [003] 5678.123458: cpu/mem-stores/P: 55d0c0de1000
 memtest 4242/4243 [003] 5678.123459: cpu/mem-loads/P: 0 6a100142 |OP LOAD|LVL N/A
"""

PERF_DUMP = """\
# PID, TID, IP, ADDR, LOCAL WEIGHT, DSRC, SYMBOL
 4242  4242 0x000000004005d0 0x7ffd8b2c4e98    30 0x6a100142 /usr/bin/memtest:main
 4242  4243 0x000000004005e4 0x7ffd8b2c5000     0 0x5080144 /usr/bin/memtest:fill
"""


def test_perf_mem_samples_are_loads_and_stores_of_their_pages(tmp_path: Path) -> None:
    script = tmp_path / "app.perf"
    script.write_text(PERF_SCRIPT)
    t = read(script)
    assert t.format == "perf"
    # the sample without an address (0) is skipped; data_src's op, else the event, decides
    assert t.keys.tolist() == [0x7FFD8B2C4, 0x7FFD8B2C5, 0x55D0C0DE1]
    assert t.writes.tolist() == [False, True, True]
    assert t.times.tolist() == [5_678_123_456_000, 5_678_123_457_000, 5_678_123_458_000]
    dump = tmp_path / "dump.txt"
    dump.write_text(PERF_DUMP)
    d = read(dump)
    assert d.format == "perf" and d.keys.tolist() == [0x7FFD8B2C4, 0x7FFD8B2C5]
    assert d.writes.tolist() == [False, True] and not d.times.any()
    with pytest.raises(reclaim.ArgumentError, match="reads perf traces but does not write them"):
        write(tmp_path / "x", np.array([1], np.uint64), format="perf")


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        (
            "damon",
            "k 1 [000] 0.1: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 1\n"
            "k 1 [000] 0.2: damon:damon_aggregated: target_id=0 nr_regions=1 8192-4096: 1\n",
            "malformed DAMON record at line 2: region 0x2000-0x1000 is empty or reversed",
        ),
        (
            "perf",
            "a 1/1 [000] 2.0: cpu/mem-loads/P: 1000\nb 1/1 [000] 1.0: cpu/mem-loads/P: 2000\n",
            "malformed perf mem trace at line 2: time 1000000000 ns is before the previous",
        ),
        (
            "perf",
            "a 1/1 [000] 2.0: cycles: 1000\n",
            "malformed perf mem trace at line 1: cannot tell a load from a store",
        ),
    ],
)
def test_cli_refuses_a_bad_damon_or_perf_line_in_one_line(
    tmp_path: Path, fmt: str, text: str, message: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    r = run_cli("replay", str(bad), "--format", fmt)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_cli_replays_damon_and_perf_traces(tmp_path: Path) -> None:
    data = tmp_path / "damon.data"
    data.write_bytes(zlib.compress(damon_json().encode()))
    perf = tmp_path / "app.perf"
    perf.write_text(PERF_SCRIPT)
    for path, fmt in ((data, "damon"), (perf, "perf")):
        r = run_cli("replay", str(path), "--memory", "100%", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["format"] == fmt and doc["requests"] == (7 if fmt == "damon" else 3)
