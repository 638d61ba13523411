"""cndp.net.pcap: round trips, tshark-compatible output, and clear errors on bad files."""

from __future__ import annotations

import contextlib
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.net import pcap
from cndp.net.frames import udp4_frame


def test_round_trip_and_flat_load(tmp_path):
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    p = tmp_path / "a.pcap"
    with pcap.PcapWriter(p) as w:
        w.write_many(frames, ts_ns=[10**18 + i for i in range(5)])
    recs = pcap.read_pcap(p)
    assert [r.data for r in recs] == frames
    assert [r.ts_ns for r in recs] == [10**18 + i for i in range(5)]
    flat = pcap.load_frames(p)
    assert len(flat) == 5 and flat.linktype == pcap.LINKTYPE_ETHERNET
    assert [flat.frame(i) for i in range(5)] == frames


def test_reads_microsecond_big_endian(tmp_path):
    p = tmp_path / "be.pcap"
    body = b"\xaa" * 64
    p.write_bytes(
        struct.pack(">IHHiIII", pcap.MAGIC_USEC, 2, 4, 0, 0, 65535, 1)
        + struct.pack(">IIII", 7, 5, len(body), len(body))
        + body
    )
    (r,) = pcap.read_pcap(p)
    assert r.ts_ns == 7 * 10**9 + 5000 and r.data == body


def test_snaplen_truncates_but_keeps_orig_len(tmp_path):
    p = tmp_path / "s.pcap"
    with pcap.PcapWriter(p, snaplen=64) as w:
        w.write(b"\x01" * 100, ts_ns=1)
    (r,) = pcap.read_pcap(p)
    assert len(r.data) == 64 and r.orig_len == 100


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "only 0 bytes"),
        (b"\x0a\x0d\x0d\x0a" + b"\0" * 30, "pcapng"),
        (b"\x00" * 24, "not a classic pcap"),
    ],
)
def test_bad_header(tmp_path, content, words):
    p = tmp_path / "bad.pcap"
    p.write_bytes(content)
    with pytest.raises(pcap.PcapError, match=words):
        pcap.read_pcap(p)


def test_truncated_record_and_missing_file(tmp_path):
    p = tmp_path / "t.pcap"
    with pcap.PcapWriter(p) as w:
        w.write(b"\x02" * 80, ts_ns=1)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(pcap.PcapError, match="truncated"):
        pcap.read_pcap(p)
    with pytest.raises(pcap.PcapError, match="cannot read"):
        pcap.read_pcap(tmp_path / "nope.pcap")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_reader_never_crashes(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fz") / "f.pcap"
    p.write_bytes(blob)
    with contextlib.suppress(pcap.PcapError):
        pcap.read_pcap(p)


def test_tshark_reads_our_file(tmp_path):
    p = tmp_path / "u.pcap"
    frame = udp4_frame(
        "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.0.1", "198.18.0.2", 1000, 2000, 64
    )
    with pcap.PcapWriter(p) as w:
        w.write(frame)
    out = subprocess.run(
        ["tshark", "-r", str(p), "-T", "fields", "-e", "udp.dstport"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["2000"]
