"""Steering functions of cndpfwd's l3fwd/acl/hyperscan modes, on packet vectors in memory."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.apps import fwd_steer
from cndp.apps.fwd_modes import DROP, ECHO, IO
from cndp.errors import ConfigError
from cndp.mem import PktVec
from cndp.net.frames import udp4_frame

FRAME = 2048


class _Umem:
    def __init__(self, n: int) -> None:
        self.data = np.zeros(FRAME * n, np.uint8)


class _Port:
    rx_burst = tx_burst = None
    pool = None


def burst(frames: list[bytes], lpid: int = 0) -> tuple[IO, PktVec]:
    umem = _Umem(len(frames) + 1)
    io = IO("p0", lpid, _Port(), umem, b"\x02" * 6)
    pv = PktVec(max(len(frames), 1))
    for i, f in enumerate(frames):
        o = i * FRAME + 256
        umem.data[o : o + len(f)] = np.frombuffer(f, np.uint8)
        pv.addr[i] = o
        pv.data_len[i] = len(f)
    pv.n = len(frames)
    return io, pv


def frame(payload: bytes) -> bytes:
    return udp4_frame("02:00:00:00:00:01", "02:00:00:00:00:02", payload=payload, size=80)


def test_hyperscan_verdicts_and_counters():
    steer = fwd_steer.HyperscanSteer(
        ["0x00010001:/one/", "0x80000002:/drop/", "0x00090003:/nine/"], lpids={0, 1}
    )
    io, pv = burst([frame(b"one"), frame(b"drop"), frame(b"nine"), frame(b"zzz")])
    before = bytes(io.data[256:268])
    dst = steer(io, pv, pv.n)
    assert dst.tolist() == [1, DROP, ECHO, DROP]
    assert steer.snapshot(0) == {"hs_matched": 3, "hs_dropped": 2}
    assert bytes(io.data[256:268]) == before[6:12] + before[0:6]  # forwarded: MACs swapped
    o = FRAME + 256
    assert bytes(io.data[o : o + 6]) == b"\x02\x00\x00\x00\x00\x02"  # dropped: untouched


def test_hyperscan_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperscan", None)
    with pytest.raises(ConfigError, match="hyperscan package, which is not installed"):
        fwd_steer.HyperscanSteer(["0x1:/a/"], lpids={0})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=4))
def test_hs_pattern_parser_only_raises_config_errors(patterns):
    try:
        out = fwd_steer.parse_hs_patterns(patterns)
    except ConfigError:
        return
    assert len(out) == len(patterns)


def test_hs_pattern_regex_may_contain_slashes():
    assert fwd_steer.parse_hs_patterns(["7:/a/b/i"]) == [(7, b"a/b", "i")]
