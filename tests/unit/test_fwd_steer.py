"""Steering functions of cndpfwd's l3fwd/acl/hyperscan modes, on packet vectors in memory."""

from __future__ import annotations

import contextlib
import re
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


# ---------------------------------------------------------------------------------- l3fwd
def ip_frame(src: str, dst: str, ttl: int = 64, dmac: str = "02:00:00:00:00:02") -> bytes:
    """A UDP/IPv4 frame with any addresses (unit tests never send it anywhere)."""
    import ipaddress
    import struct

    from cndp.net.frames import checksum16

    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        28,
        0,
        0,
        ttl,
        17,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    ip = ip[:10] + struct.pack("!H", checksum16(ip)) + ip[12:]
    eth = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ip + struct.pack("!HHHH", 1, 2, 8, 0) + bytes(18)


RULES = ["198.18.1.0/24,02:00:00:00:01:01,1", "198.18.0.0/15,02:00:00:00:00:aa,0"]
MACS = {0: b"\x02\x00\x00\x00\x00\x10", 1: b"\x02\x00\x00\x00\x00\x11"}


def test_l3fwd_hits_misses_ttl_and_non_ip():
    from cndp.net import hdr
    from cndp.net.frames import checksum16

    steer = fwd_steer.L3fwdSteer(RULES, MACS)
    frames = [
        ip_frame("198.18.0.9", "198.18.1.7"),  # /24: lport 1
        ip_frame("198.18.0.9", "198.19.3.3"),  # /15: lport 0
        ip_frame("198.18.0.9", "203.0.113.1"),  # miss: echo
        ip_frame("198.18.0.9", "198.18.1.7", ttl=1),  # TTL expiring: dropped
        b"\x02" * 12 + b"\x08\x06" + bytes(46),  # ARP: dropped
    ]
    io, pv = burst(frames)
    dst = steer(io, pv, pv.n)
    assert dst.tolist() == [1, 0, ECHO, DROP, DROP]
    assert steer.snapshot(0) == {
        "l3fwd_hit": 2,
        "l3fwd_miss": 1,
        "l3fwd_ttl_drop": 1,
        "l3fwd_not_ipv4": 1,
    }
    p = hdr.parse(io.data, pv.addr[:5], pv.data_len[:5])
    assert p.ttl.tolist()[:4] == [63, 63, 63, 1]
    for i in range(3):
        o = int(pv.addr[i])
        assert checksum16(bytes(io.data[o + 14 : o + 34])) in (0, 0xFFFF)
    o0, o1, o2 = (int(pv.addr[i]) for i in range(3))
    assert bytes(io.data[o0 : o0 + 12]).hex() == "020000000101" + "020000000011"
    assert bytes(io.data[o1 : o1 + 12]).hex() == "0200000000aa" + "020000000010"
    assert bytes(io.data[o2 : o2 + 12]).hex() == "020000000001" + "020000000002"  # swapped


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ([], "non-empty list"),
        (["198.18.1.0/24,02:00:00:00:01:01"], "has 2 fields"),
        (["198.18.1.0,02:00:00:00:01:01,1"], "needs a length"),
        (["198.18.1.0/33,02:00:00:00:01:01,1"], 'l3fwd-fib-rules"[0]'),
        (["198.18.1.0/24,zz:00:00:00:01:01,1"], 'l3fwd-fib-rules"[0]'),
        (["198.18.1.0/24,02:00:00:00:01:01,7"], "lport index '7'"),
    ],
)
def test_l3fwd_bad_rules(rules, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        fwd_steer.L3fwdSteer(rules, MACS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=3))
def test_fib_rule_parser_only_raises_config_errors(rules):
    with contextlib.suppress(ConfigError):
        fwd_steer.parse_fib_rules(rules, {0, 1})


# ------------------------------------------------------------------------------------ acl
TABLE = np.array([0, 1] + [-1] * 254, np.int16)


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        ("acl-strict", [DROP, DROP, 1, DROP, DROP]),
        ("acl-permissive", [DROP, DROP, 1, 0, DROP]),
    ],
)
def test_acl_builtin_rules(policy, want):
    steer = fwd_steer.AclSteer(policy, TABLE)
    frames = [
        ip_frame("198.18.0.1", "100.7.0.9"),  # deny dst 100.7.0.0/24
        ip_frame("12.1.2.3", "198.18.0.2"),  # deny src 12.0.0.0/8
        ip_frame("210.0.3.4", "110.0.3.4", dmac="02:00:00:00:00:01"),  # permit -> lport 1
        ip_frame("198.18.0.1", "198.18.0.2", dmac="02:00:00:00:00:00"),  # no rule
        b"\x02" * 12 + b"\x86\xdd" + bytes(46),  # not IPv4: prefilter
    ]
    io, pv = burst(frames)
    assert steer(io, pv, pv.n).tolist() == want
    snap = steer.snapshot(0)
    assert snap["acl_prefilter_drop"] == 1
    assert snap["acl_permit"] + snap["acl_deny"] == 4


def test_acl_rules_option_replaces_the_builtin_ones_and_rebuilds():
    rules = fwd_steer.parse_acl_rules(
        ["0.0.0.0/0:198.18.9.0/24:deny", "198.18.0.0/15:0.0.0.0/0:allow"]
    )
    steer = fwd_steer.AclSteer("acl-strict", TABLE, rules)
    io, pv = burst([ip_frame("198.18.0.1", "198.18.9.1"), ip_frame("198.18.0.1", "198.18.8.1")])
    assert steer(io, pv, pv.n).tolist() == [DROP, ECHO]  # last MAC octet 2: no lport 2
    steer.rebuild([])
    io, pv = burst([ip_frame("198.18.0.1", "198.18.8.1")])
    assert steer(io, pv, pv.n).tolist() == [DROP]  # strict with no rules: nothing permitted
    with pytest.raises(ConfigError, match=r'acl-rules"\[0\]'):
        fwd_steer.parse_acl_rules(["1.2.3.4/8:any:allow"])
