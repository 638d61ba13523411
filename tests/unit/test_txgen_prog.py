"""txgen's range-rewriting XDP program: layouts, validation, the numpy reference model, and
the real program run by BPF_PROG_RUN (without live frames: the kernel hands back the frame).

Tests marked ``bpf`` load programs and need root (CI runs as root); they fail, not skip,
without it, so a missing privilege cannot pass as green.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.bpf import asm
from cndp.bpf.txgen_prog import (
    MAX_RANGES,
    LiveRange,
    LiveRangeError,
    RangeProgram,
    TemplateError,
    parse_layout,
    render_frames,
    sequence,
    validate_ranges,
)
from cndp.errors import CndpError
from cndp.net.frames import checksum16, udp4_frame
from cndp.sys import bpf as sysbpf

MAC_A, MAC_B = "02:00:c6:12:00:01", "02:00:c6:12:00:02"


@pytest.fixture
def bpf_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("loading BPF programs needs root: run the suite as root (CI does)")


# --------------------------------------------------------------------------------------------
# templates


def _eth(etype: int, vlans: tuple[tuple[int, int], ...] = ()) -> bytes:
    h = bytes.fromhex("0200c6120002") + bytes.fromhex("0200c6120001")
    for tpid, vid in vlans:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", etype)


def _l4(proto: int, payload: bytes, sport: int = 1024, dport: int = 9) -> bytes:
    if proto == 17:
        return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if proto == 6:  # ACK|PSH, window 512
        return struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 0x50, 0x18, 512, 0, 0) + payload
    return struct.pack("!BBHHH", 8 if proto == 1 else 128, 0, 0, 1, 1) + payload  # echo request


_CSUM_AT = {17: 6, 6: 16, 1: 2, 58: 2}


def ipv4(
    proto: int = 17,
    payload: bytes = bytes(range(18)),
    vlans=(),
    options: bytes = b"",
    udp_csum: bool = True,
    pad: int = 0,
) -> bytes:
    src, dst = (
        ipaddress.IPv4Address("198.18.0.1").packed,
        ipaddress.IPv4Address("198.18.0.2").packed,
    )
    l4 = bytearray(_l4(proto, payload))
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4)) if proto != 1 else b""
    if udp_csum or proto != 17:
        c = checksum16(pseudo + bytes(l4))
        struct.pack_into("!H", l4, _CSUM_AT[proto], c or (0xFFFF if proto == 17 else 0))
    ihl = 5 + len(options) // 4
    ip = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 7, 0, 64, proto, 0, src, dst)
        + options
    )
    struct.pack_into("!H", ip, 10, checksum16(bytes(ip)))
    return _eth(0x0800, vlans) + bytes(ip) + bytes(l4) + b"\0" * pad


def ipv6(proto: int = 17, payload: bytes = bytes(range(20)), vlans=(), hbh: bool = False) -> bytes:
    src = ipaddress.IPv6Address("fd00:198:18::1").packed
    dst = ipaddress.IPv6Address("fd00:198:18::2").packed
    l4 = bytearray(_l4(proto, payload))
    pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
    struct.pack_into("!H", l4, _CSUM_AT[proto], checksum16(pseudo + bytes(l4)) or 0xFFFF)
    ext = struct.pack("!BB6s", proto, 0, b"\x01\x04\0\0\0\0") if hbh else b""  # PadN
    nh = 0 if hbh else proto
    ip = struct.pack("!IHBB16s16s", 0x60012345, len(ext) + len(l4), nh, 64, src, dst)
    return _eth(0x86DD, vlans) + ip + ext + bytes(l4)


def verify(frame: bytes) -> None:
    """Independent checksum check of one output frame (RFC 1071 over the real bytes)."""
    lay = parse_layout(frame)
    if lay.ip_version == 4:
        assert checksum16(frame[lay.l3 : lay.ip_hdr_end]) == 0, "IPv4 header checksum"
    if lay.l4_csum is None:
        return
    seg = frame[lay.l4 : lay.l4_end]
    if lay.pseudo is None:
        pseudo = b""
    elif lay.ip_version == 4:
        pseudo = frame[lay.pseudo[0] : lay.pseudo[1]] + struct.pack("!BBH", 0, lay.proto, len(seg))
    else:
        pseudo = frame[lay.pseudo[0] : lay.pseudo[1]] + struct.pack("!IxxxB", len(seg), lay.proto)
    assert checksum16(pseudo + seg) == 0, "L4 checksum"
    if lay.udp:
        assert struct.unpack_from("!H", frame, lay.l4_csum)[0] != 0


# --------------------------------------------------------------------------------------------
# layout


def test_layout_ipv4_udp():
    lay = parse_layout(udp4_frame(MAC_A, MAC_B))
    assert (lay.l3, lay.ip_version, lay.l4, lay.proto) == (14, 4, 34, 17)
    assert (lay.ip_csum, lay.l4_csum, lay.pseudo, lay.udp) == (24, 40, (26, 34), True)
    assert lay.l4_end == 60 and {12, 13, 14, 16, 17, 23, 24, 25, 38, 39, 40, 41} <= lay.structural


def test_layout_vlan_qinq_options_tcp_and_padding():
    f = ipv4(6, b"", vlans=((0x88A8, 5), (0x8100, 7)), options=b"\x01\x01\x01\x00", pad=6)
    lay = parse_layout(f)
    assert lay.l3 == 22 and lay.ip_hdr_end == 22 + 24 and lay.l4 == 46 and lay.l4_csum == 62
    assert lay.l4_end == len(f) - 6  # padding is outside every checksum
    assert not lay.in_l4_csum(len(f) - 1) and lay.in_l4_csum(lay.l4)


def test_layout_ipv6_extension_header_and_icmp():
    lay = parse_layout(ipv6(17, hbh=True))
    assert lay.ip_version == 6 and lay.l4 == 14 + 48 and lay.proto == 17 and lay.l4_csum == 68
    assert set(range(54, 62)) <= lay.structural and lay.pseudo == (22, 54)
    lay = parse_layout(ipv6(58))
    assert lay.l4_csum == 56 and lay.pseudo is not None
    lay = parse_layout(ipv4(1))
    assert lay.l4_csum == 36 and lay.pseudo is None


def test_layout_without_checksums_to_keep():
    assert parse_layout(_eth(0x0806) + bytes(28)).ip_version == 0  # ARP
    assert parse_layout(ipv4(17, udp_csum=False)).l4_csum is None  # UDP/IPv4 without checksum
    frag = bytearray(ipv4(17))
    struct.pack_into("!H", frag, 20, 0x2000)  # MF: first fragment
    assert parse_layout(bytes(frag)).l4 is None


@pytest.mark.parametrize(
    "frame, what",
    [
        (b"\0" * 10, "shorter than an Ethernet header"),
        (_eth(0x0800) + bytes(10), "IPv4 header is cut short"),
        (_eth(0x0800) + b"\x46" + bytes(19), "IHL"),
        (ipv4()[:-4], "total length"),
        (_eth(0x86DD) + b"\x40" + bytes(39), "IPv6 version"),
        (ipv6()[:-2], "payload length"),
    ],
)
def test_broken_templates_are_refused(frame, what):
    with pytest.raises(TemplateError, match=what) as e:
        parse_layout(frame)
    assert e.value.fix


# --------------------------------------------------------------------------------------------
# validation

F = udp4_frame(MAC_A, MAC_B)


@pytest.mark.parametrize(
    "r, what",
    [
        (LiveRange(34, 3, 1, 1, 2, 1), "width must be"),
        (LiveRange(58, 4, 1, 1, 2, 1), "outside the 60-byte frame"),
        (LiveRange(-1, 1, 1, 1, 2, 1), "outside"),
        (LiveRange(34, 2, 5, 9, 3, 1), "min=9, max=3"),
        (LiveRange(34, 1, 5, 0, 256, 1), "not a range of 1-byte"),
        (LiveRange(34, 2, 10, 0, 9, 1), "start=10 is outside"),
        (LiveRange(34, 2, 0, 0, 9, 10), "inc=10 steps past"),
        (LiveRange(34, 2, 5, 5, 5, -1), "steps past"),
        (LiveRange(40, 2, 0, 0, 9, 1), "checksum field"),
        (LiveRange(15, 4, 0, 0, 9, 1), "length, type"),  # covers IPv4 total length
        (LiveRange(12, 2, 0, 0, 9, 1), "length, type"),  # EtherType
        (LiveRange(34, 2.0, 0, 0, 9, 1), "not an integer"),  # type: ignore[arg-type]
        (LiveRange(34, 2, 0, 0, 9, True), "not an integer"),
    ],
)
def test_impossible_ranges_are_refused_with_a_fix(r, what):
    with pytest.raises(LiveRangeError, match=what) as e:
        validate_ranges(F, [r])
    assert isinstance(e.value, CndpError) and e.value.fix


def test_overlapping_and_too_many_ranges_are_refused():
    with pytest.raises(LiveRangeError, match="also rewritten by range 0"):
        validate_ranges(F, [LiveRange(34, 2, 0, 0, 9, 1), LiveRange(35, 1, 0, 0, 9, 1)])
    many = [LiveRange(42 + i, 1, 0, 0, 9, 1) for i in range(MAX_RANGES + 1)]
    with pytest.raises(LiveRangeError, match="at most"):
        validate_ranges(F, many)
    assert validate_ranges(F, many[:MAX_RANGES]) is not None
    assert validate_ranges(b"\0" * 4, []) is None  # no ranges: nothing to parse


# --------------------------------------------------------------------------------------------
# the reference model


def _naive(r: LiveRange, n: int) -> list[int]:
    out, v = [], r.start
    for _ in range(n):
        out.append(v)
        v += r.inc
        if v > r.max:
            v -= r.max - r.min + 1
        elif v < r.min:
            v += r.max - r.min + 1
    return out


@st.composite
def ranges_st(draw, width=None, offset=42):
    w = draw(st.sampled_from([1, 2, 4])) if width is None else width
    top = (1 << (8 * w)) - 1
    lo = draw(st.integers(0, top))
    hi = draw(st.integers(lo, min(top, lo + draw(st.sampled_from([0, 3, 50, top])))))
    start = draw(st.integers(lo, hi))
    span = hi - lo
    inc = draw(st.integers(-span, span)) if span else 0
    return LiveRange(offset, w, start, lo, hi, inc)


@given(ranges_st(), st.integers(0, 300), st.integers(1, 200))
def test_sequence_matches_a_stepwise_model(r, first, n):
    assert sequence(r, n, first).tolist() == _naive(r, first + n)[first:]


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_rendered_frames_carry_valid_checksums(data):
    frame = data.draw(st.sampled_from([F, ipv4(6), ipv4(1), ipv6(17), ipv6(6, hbh=True), ipv6(58)]))
    lay = parse_layout(frame)
    cand = [o for o in range(14, len(frame) - 4) if not {o, o + 1, o + 2, o + 3} & lay.structural]
    offs = sorted(data.draw(st.sets(st.sampled_from(cand), min_size=1, max_size=3)))
    rs = []
    for o in offs:
        if rs and o < rs[-1].offset + 4:
            continue
        rs.append(data.draw(ranges_st(width=data.draw(st.sampled_from([1, 2, 4])), offset=o)))
    out = render_frames(frame, rs, 8, data.draw(st.integers(0, 1000)))
    for row in out:
        verify(row.tobytes())


# --------------------------------------------------------------------------------------------
# the program (BPF_PROG_RUN without live frames: one run per call, output frame returned)


def run_prog(p: RangeProgram, n: int, frame: bytes | None = None) -> np.ndarray:
    rows = []
    for _ in range(n):
        res = sysbpf.prog_test_run(p.fd, frame or p.frame, data_out_size=len(p.frame) + 64)
        assert res.retval == asm.XDP_TX
        rows.append(np.frombuffer(res.data_out, dtype=np.uint8))
    return np.array(rows)


def _addr_ranges(frame: bytes) -> list[LiveRange]:
    """src/dst address (last 4 bytes), src/dst port: the four fields of the issue."""
    lay = parse_layout(frame)
    a_src = lay.pseudo[0] + (12 if lay.ip_version == 6 else 0)
    a_dst = lay.pseudo[1] - 4
    s0 = int.from_bytes(frame[a_src : a_src + 4], "big")
    d0 = int.from_bytes(frame[a_dst : a_dst + 4], "big")
    return [
        LiveRange(a_src, 4, s0, s0, s0 + 9, 1),
        LiveRange(a_dst, 4, d0 + 200, d0, d0 + 255, -7),
        LiveRange(lay.l4, 2, 1024, 1000, 1030, 3),
        LiveRange(lay.l4 + 2, 2, 65535, 65500, 65535, 1),
    ]


CASES = {
    "ipv4-udp": (F, None),
    "ipv4-tcp-vlan-options": (ipv4(6, b"abc", vlans=((0x8100, 100),), options=b"\x01" * 4), None),
    "ipv4-udp-qinq-pad": (ipv4(17, b"x", vlans=((0x88A8, 1), (0x8100, 2)), pad=9), None),
    "ipv6-udp-hbh": (ipv6(17, hbh=True), None),
    "ipv6-tcp-vlan": (ipv6(6, b"hello", vlans=((0x8100, 3),)), None),
    # odd offsets (low byte of a checksum word), a field straddling the IPv4 header end,
    # the TTL and the IPv4 ID
    "ipv4-tcp-odd": (
        ipv4(6, bytes(16)),
        [
            LiveRange(33, 4, 0x02000400, 0x02000400, 0x02000500, 0x11),  # dst addr[3] + sport
            LiveRange(22, 1, 64, 1, 255, -5),  # TTL: IP header only
            LiveRange(18, 2, 7, 0, 65535, 4099),  # IPv4 ID
            LiveRange(55, 2, 1, 0, 65535, 257),  # payload at an odd offset
            LiveRange(58, 1, 0, 0, 255, 1),
        ],
    ),
    "icmpv4": (ipv4(1, bytes(8)), [LiveRange(38, 2, 1, 1, 1000, 1), LiveRange(42, 1, 9, 0, 9, -1)]),
    "icmpv6": (ipv6(58, bytes(8)), [LiveRange(58, 2, 1, 1, 1000, 1), LiveRange(53, 1, 0, 0, 3, 1)]),
    "vlan-id-and-macs-only": (
        ipv4(17, vlans=((0x8100, 10),)),
        [LiveRange(14, 2, 10, 10, 20, 1), LiveRange(8, 4, 1, 1, 1 << 30, 1 << 28)],
    ),
    "arp": (_eth(0x0806) + bytes(28), [LiveRange(28, 4, 0, 0, 0xFFFFFFFF, 0x7FFFFFFF)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_program_output_matches_the_model(bpf_root, name):
    frame, ranges = CASES[name]
    ranges = ranges or _addr_ranges(frame)
    with RangeProgram(frame, ranges) as p:
        got = run_prog(p, 40)
        assert p.runs() == 40
        assert p.values() == [int(sequence(r, 1, 40)[0]) for r in ranges]
    want = render_frames(frame, ranges, 40)
    np.testing.assert_array_equal(got, want)
    for row in got:
        verify(row.tobytes())
    # the fields really moved (the model is not just the template)
    assert len({row.tobytes() for row in got}) > 1


def test_program_never_reads_the_frame(bpf_root):
    """Live-frame pages are recycled without being rewritten: whatever the previous run left
    in the page (here: garbage in every field and checksum we write) must not matter."""
    frame = ipv4(6, b"payload")
    ranges = _addr_ranges(frame)
    dirty = bytearray(frame)
    lay = parse_layout(frame)
    for r in ranges:
        dirty[r.offset : r.offset + r.width] = b"\xa5" * r.width
    for c in (lay.ip_csum, lay.l4_csum):
        dirty[c : c + 2] = b"\x12\x34"
    with RangeProgram(frame, ranges) as p:
        got = run_prog(p, 20, bytes(dirty))
    np.testing.assert_array_equal(got, render_frames(frame, ranges, 20))


def test_repeat_runs_advance_the_state_and_reset_restarts(bpf_root):
    r = LiveRange(36, 2, 9, 1, 9, -2)
    with RangeProgram(F, [r]) as p:
        res = sysbpf.prog_test_run(p.fd, F, repeat=17, data_out_size=128)
        np.testing.assert_array_equal(
            np.frombuffer(res.data_out, np.uint8), render_frames(F, [r], 1, first=16)[0]
        )
        assert p.runs() == 17 and p.values() == [int(sequence(r, 1, 17)[0])]
        p.reset()
        assert p.runs() == 0 and p.values() == [9]
        np.testing.assert_array_equal(run_prog(p, 3), render_frames(F, [r], 3))


def test_udp_checksum_zero_is_sent_as_ffff(bpf_root):
    """A UDP checksum that computes to 0 must go out as 0xffff (0 means "none")."""
    base = bytearray(F)
    base[42:44] = b"\0\0"
    lay = parse_layout(bytes(base))
    seg = bytes(base[34:60])
    seg = seg[:6] + b"\0\0" + seg[8:]
    s = sum(struct.unpack("!13H", seg)) + sum(struct.unpack("!4H", base[26:34])) + 17 + 26
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    v = 0xFFFF - s  # makes the folded sum 0xffff, i.e. checksum 0
    r = LiveRange(42, 2, v, v, v, 0)
    with RangeProgram(F, [r]) as p:
        out = run_prog(p, 1)[0].tobytes()
    assert struct.unpack_from("!H", out, lay.l4_csum)[0] == 0xFFFF
    assert render_frames(F, [r], 1)[0].tobytes() == out
    verify(out)


def test_udp_without_checksum_keeps_zero(bpf_root):
    frame = ipv4(17, udp_csum=False)
    ranges = _addr_ranges(frame)
    with RangeProgram(frame, ranges) as p:
        got = run_prog(p, 5)
    assert (got[:, 40:42] == 0).all()  # UDP checksum stays "none"
    for row in got:
        assert checksum16(row[14:34].tobytes()) == 0  # the IPv4 header one is kept
    np.testing.assert_array_equal(got, render_frames(frame, ranges, 5))


def test_large_increments_and_full_width_ranges(bpf_root):
    ranges = [
        LiveRange(42, 4, 5, 0, 0xFFFFFFFF, 3_000_000_000),
        LiveRange(46, 4, 0xFFFFFFF0, 0, 0xFFFFFFFF, -3_000_000_001),
    ]
    with RangeProgram(F, ranges) as p:
        got = run_prog(p, 12)
    np.testing.assert_array_equal(got, render_frames(F, ranges, 12))


def test_sixteen_ranges_pass_the_verifier(bpf_root):
    ranges = [LiveRange(42 + i, 1, i, 0, 200, i + 1) for i in range(MAX_RANGES)]
    with RangeProgram(F, ranges) as p:
        got = run_prog(p, 30)
    np.testing.assert_array_equal(got, render_frames(F, ranges, 30))


@given(st.data())
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_program_against_the_model_random_ranges(bpf_root, data):
    frame = data.draw(st.sampled_from([F, ipv4(6, b"1234567"), ipv6(17), ipv6(6, b"z", hbh=True)]))
    lay = parse_layout(frame)
    free = [o for o in range(0, len(frame)) if o not in lay.structural]
    rs: list[LiveRange] = []
    used: set[int] = set()
    for _ in range(data.draw(st.integers(1, 5))):
        w = data.draw(st.sampled_from([1, 2, 4]))
        o = data.draw(st.sampled_from(free))
        cells = set(range(o, o + w))
        if o + w > len(frame) or cells & (used | lay.structural):
            continue
        used |= cells
        rs.append(data.draw(ranges_st(width=w, offset=o)))
    if not rs:
        return
    first = data.draw(st.integers(0, 50))
    with RangeProgram(frame, rs) as p:
        if first:
            sysbpf.prog_test_run(p.fd, frame, repeat=first, data_out_size=len(frame) + 64)
        got = run_prog(p, 6)
    np.testing.assert_array_equal(got, render_frames(frame, rs, 6, first))
    for row in got:
        verify(row.tobytes())


def test_closing_unloads_program_and_map(bpf_root):
    p = RangeProgram(F, _addr_ranges(F))
    pid = sysbpf.prog_info(p.fd).id
    mid = sysbpf.map_info(p.map_fd).id
    assert sysbpf.prog_info(p.fd).name == "cndp_txgen"
    p.close()
    p.close()  # twice is fine
    with pytest.raises(CndpError):
        sysbpf.prog_fd_by_id(pid)
    # the program drops its map reference after an RCU grace period: wait for it
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            sysbpf.close(sysbpf.map_fd_by_id(mid))
        except CndpError:
            break
        time.sleep(0.01)
    with pytest.raises(CndpError):
        sysbpf.map_fd_by_id(mid)
