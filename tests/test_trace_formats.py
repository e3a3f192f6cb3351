"""Trace formats people have: zstd-compressed traces read directly, libCacheSim's format name,
and CSV timestamps checked as the binary format's are (docs/trace-format.md)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
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
