"""cndp.net.hdr: the vectorised parser agrees with a plain per-packet parser on random frames,
and the TTL / MAC rewrites give valid headers."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.net import hdr
from cndp.net.frames import checksum16, udp4_frame

FRAME = 2048


def _load(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.zeros(FRAME * (len(frames) + 1), np.uint8)
    addr = np.arange(len(frames), dtype=np.uint64) * FRAME + 256
    for i, f in enumerate(frames):
        data[int(addr[i]) : int(addr[i]) + len(f)] = np.frombuffer(f, np.uint8)
    return data, addr, np.array([len(f) for f in frames], np.uint32)


def _oracle(f: bytes) -> dict:
    """What a careful per-packet parser reads from one frame."""
    out = dict(vlan=0, is4=False, is6=False, proto=0, ttl=0, src4=0, dst4=0, ports=None)
    if len(f) < 14:
        return out
    et = struct.unpack_from("!H", f, 12)[0]
    l3 = 14
    if et in (0x8100, 0x88A8) and len(f) >= 18:
        out["vlan"] = struct.unpack_from("!H", f, 14)[0] & 0xFFF
        et = struct.unpack_from("!H", f, 16)[0]
        l3 = 18
    if et == 0x0800 and len(f) >= l3 + 20:
        ihl = (f[l3] & 15) * 4
        tot = struct.unpack_from("!H", f, l3 + 2)[0]
        if f[l3] >> 4 == 4 and ihl >= 20 and len(f) >= l3 + ihl and ihl <= tot <= len(f) - l3:
            out.update(is4=True, proto=f[l3 + 9], ttl=f[l3 + 8])
            out["src4"], out["dst4"] = struct.unpack_from("!II", f, l3 + 12)
            frag = struct.unpack_from("!H", f, l3 + 6)[0] & 0x1FFF
            l4 = l3 + ihl
            if frag == 0 and out["proto"] in (6, 17) and l4 + 4 <= min(len(f), hdr.WINDOW):
                out["ports"] = struct.unpack_from("!HH", f, l4)
    elif et == 0x86DD and len(f) >= l3 + 40 and f[l3] >> 4 == 6:
        out.update(is6=True, proto=f[l3 + 6], ttl=f[l3 + 7])
        l4 = l3 + 40
        if out["proto"] in (6, 17) and l4 + 4 <= min(len(f), hdr.WINDOW):
            out["ports"] = struct.unpack_from("!HH", f, l4)
    return out


def _frame_strategy():
    def build(vlan, version, ihl_words, proto, frag, payload, truncate, tot_delta):
        eth = b"\x02" * 6 + b"\x04" * 6
        eth += struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
        if version == 4:
            opts = b"\x01" * ((ihl_words - 5) * 4)
            tot = 20 + len(opts) + len(payload) + tot_delta
            ip = (
                struct.pack(
                    "!BBHHHBBH4s4s",
                    0x40 | ihl_words,
                    0,
                    max(tot, 0) & 0xFFFF,
                    1,
                    frag,
                    7,
                    proto,
                    0,
                    bytes([198, 18, 0, 1]),
                    bytes([198, 18, 9, 2]),
                )
                + opts
            )
            f = eth + struct.pack("!H", 0x0800) + ip + payload
        elif version == 6:
            ip = struct.pack(
                "!IHBB16s16s",
                0x60000000,
                len(payload),
                proto,
                9,
                b"\xfd" + b"\x01" * 15,
                b"\xfd" + b"\x02" * 15,
            )
            f = eth + struct.pack("!H", 0x86DD) + ip + payload
        else:
            f = eth + struct.pack("!H", 0x0806) + payload
        return f[: max(len(f) - truncate, 0)]

    return st.builds(
        build,
        st.one_of(st.none(), st.integers(0, 0xFFFF)),
        st.sampled_from([4, 6, 0]),
        st.integers(5, 15),
        st.sampled_from([6, 17, 1, 58, 132]),
        st.sampled_from([0, 0x4000, 0x2000, 5]),
        st.binary(min_size=0, max_size=40),
        st.integers(0, 30),
        st.integers(-30, 10),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame_strategy(), min_size=1, max_size=16))
def test_parse_matches_per_packet_oracle(frames):
    data, addr, lens = _load(frames)
    p = hdr.parse(data, addr, lens)
    for i, f in enumerate(frames):
        o = _oracle(f)
        assert bool(p.is_ip4[i]) == o["is4"], (i, f.hex())
        assert bool(p.is_ip6[i]) == o["is6"], (i, f.hex())
        if len(f) >= 14:
            assert int(p.vlan[i]) == o["vlan"]
        assert int(p.proto[i]) == o["proto"] and int(p.ttl[i]) == o["ttl"]
        assert int(p.src4[i]) == o["src4"] and int(p.dst4[i]) == o["dst4"]
        assert bool(p.has_ports[i]) == (o["ports"] is not None)
        if o["ports"]:
            assert (int(p.sport[i]), int(p.dport[i])) == o["ports"]


def test_ipv6_addresses_and_dec_ttl_keeps_checksum_valid():
    f4 = udp4_frame(
        "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.1.7", "198.18.2.9", 1234, 80, 64, ttl=2
    )
    data, addr, lens = _load([f4, f4])
    p = hdr.parse(data, addr, lens)
    assert (p.dst4 == 0xC6120209).all() and (p.dport == 80).all()
    assert hdr.ip4_header_ok(p.head, p.l3).all()
    hdr.ip4_dec_ttl(data, addr, p.l3)
    hdr.ip4_dec_ttl(data, addr[:1], p.l3[:1])
    q = hdr.parse(data, addr, lens)
    assert q.ttl.tolist() == [0, 1]
    assert hdr.ip4_header_ok(q.head, q.l3).all()
    for i in range(2):
        o = int(addr[i]) + 14
        assert checksum16(bytes(data[o : o + 20])) == 0
    hdr.set_macs(data, addr, np.frombuffer(b"\xaa" * 6, np.uint8), np.full((2, 6), 0xBB, np.uint8))
    assert bytes(data[256:268]) == b"\xaa" * 6 + b"\xbb" * 6


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(2, 255))
def test_dec_ttl_is_rfc1624_exact(ip, ttl):
    hdr_bytes = bytearray(bytes([0x45]) + ip[1:])
    hdr_bytes[8] = ttl
    hdr_bytes[10:12] = b"\0\0"
    hdr_bytes[10:12] = struct.pack("!H", checksum16(bytes(hdr_bytes)))
    f = b"\x02" * 12 + b"\x08\x00" + bytes(hdr_bytes)
    data, addr, _ = _load([f])
    hdr.ip4_dec_ttl(data, addr, np.array([14]))
    out = bytes(data[256 + 14 : 256 + 34])
    assert out[8] == ttl - 1
    assert checksum16(out) in (0, 0xFFFF)  # both are ones-complement zero


def test_ipv6_dst_columns():
    v6 = (
        b"\x02" * 12
        + b"\x86\xdd"
        + struct.pack("!IHBB", 0x60000000, 8, 17, 5)
        + bytes(range(16))
        + bytes(range(16, 32))
        + struct.pack("!HHHH", 1, 2, 8, 0)
    )
    data, addr, lens = _load([v6])
    p = hdr.parse(data, addr, lens)
    assert p.is_ip6[0] and p.dst6()[0].tobytes() == bytes(range(16, 32))
    assert p.src6()[0].tobytes() == bytes(range(16)) and (p.sport[0], p.dport[0]) == (1, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(_frame_strategy(), min_size=1, max_size=16))
def test_ip4_head_agrees_with_the_full_parser(frames):
    data, addr, lens = _load(frames)
    p = hdr.parse(data, addr, lens)
    h, ok = hdr.ip4_head(data, addr, lens)
    untagged = p.l3 == 14
    # the fast path accepts what the full parser accepts, untagged (it does not insist that
    # the total length fits in the frame: RFC 1812's link-layer check is only the minimum)
    assert not (p.is_ip4 & untagged & ~ok).any()
    assert not (ok & (p.ethertype != hdr.ETH_P_IP)).any()
    twin = data.copy()
    sel = np.flatnonzero(ok)
    if len(sel):
        sub = h[sel]
        hdr.ip4_head_dec_ttl(sub)
        hdr.ip4_head_store(data, addr[sel], sub)
        hdr.ip4_dec_ttl(twin, addr[sel], np.full(len(sel), 14))
        assert (data == twin).all()
