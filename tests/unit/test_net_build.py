"""cndp.net.csum and cndp.net.build: vectorised checksums and frames, against RFC 1071 in
plain Python, struct-built frames, and tshark's decoders."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cndp.errors import ConfigError
from cndp.net import build as nb
from cndp.net import csum
from cndp.net.frames import checksum16, udp4_frame
from cndp.net.pcap import PcapWriter
from cndp.testing import tshark

MAC_A, MAC_B = "02:00:c6:12:00:01", "02:00:c6:12:00:02"


# ------------------------------------------------------------------------------------- csum


@given(
    rows=st.lists(st.binary(min_size=0, max_size=90), min_size=1, max_size=8),
    start=st.integers(0, 5),
)
def test_checksum_matches_rfc1071_per_row(rows, start):
    width = max(len(r) for r in rows)
    m = np.zeros((len(rows), width), np.uint8)
    for i, r in enumerate(rows):
        m[i, : len(r)] = np.frombuffer(r, np.uint8)
    if start > width:
        start = width
    got = csum.checksum(m, start)
    for i in range(len(rows)):
        seg = bytes(m[i, start:])  # zero padded to the common width: same sum
        assert int(got[i]) == checksum16(seg)


@given(st.lists(st.integers(0, 2**63), min_size=1, max_size=20))
def test_fold_is_ones_complement_reduction(vals):
    got = csum.fold(np.array(vals, dtype=np.uint64))
    for v, g in zip(vals, got.tolist(), strict=True):
        s = v
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        assert g == s


@given(data=st.binary(min_size=20, max_size=64), off=st.integers(0, 9), new=st.integers(0, 0xFFFF))
def test_incremental_update_matches_recompute(data, off, new):
    """RFC 1624: patching one 16-bit word and the checksum gives what a full sum gives."""
    m = np.frombuffer(data[: len(data) // 2 * 2], np.uint8).copy().reshape(1, -1)
    m[0, 0:2] = 0
    # all-zero data is the one case where eqn. 3 yields the other zero (0x0000 for 0xFFFF);
    # real headers always carry a non-zero word
    assume(m[0, 2:].any() and new)
    c0 = csum.checksum(m)
    csum.put_be16(m, 0, c0)
    o = 2 + 2 * off
    if o + 2 > m.shape[1]:
        return
    old = csum.get_be16(m, o).astype(np.uint64)
    csum.put_be16(m, o, new)
    c1 = csum.update(c0, old, np.array([new], np.uint64))
    csum.put_be16(m, 0, c1)
    assert bool(csum.verify(m)[0])


def test_swap16_and_words_sum():
    assert int(csum.swap16(np.uint64(0x1234))) == 0x3412
    assert int(csum.words_sum(np.array([0xC6120001]), 4)[0]) == 0xC612 + 0x0001


# ------------------------------------------------------------------------------------- build


def test_udp4_matches_struct_oracle():
    t = nb.PacketTemplate(src_mac=MAC_A, dst_mac=MAC_B, src_ip="198.18.0.1", dst_ip="198.18.0.2")
    f = nb.build(t, 3, fields={"dport": np.array([9, 10, 11])})
    for i, dport in enumerate((9, 10, 11)):
        ref = udp4_frame(
            MAC_A, MAC_B, "198.18.0.1", "198.18.0.2", 1234, dport, 60, payload=t.payload
        )
        assert f.frame(i) == ref


def test_fields_land_where_the_wire_format_says():
    t = nb.PacketTemplate(vlan=7, vlan_prio=5, proto="tcp", length=100)
    ips = np.array([int(ipaddress.IPv4Address("198.18.3.4")) + i for i in range(4)])
    f = nb.build(
        t,
        4,
        fields={
            "dst_ip": ips,
            "sport": np.arange(4) + 4000,
            "vlan": np.array([1, 2, 3, 4]),
            "ttl": np.array([9, 8, 7, 6]),
            "dst_mac": np.array([0x020000000001 + i for i in range(4)]),
        },
        length=np.array([80, 90, 100, 1514]),
    )
    for i in range(4):
        fr = f.frame(i)
        assert len(fr) == int(f.lengths[i])
        assert fr[:6] == bytes.fromhex(f"02000000000{1 + i}")
        tpid, tci = struct.unpack("!HH", fr[12:16])
        assert (tpid, tci >> 13, tci & 0xFFF) == (0x8100, 5, i + 1)
        ip = fr[18:38]
        assert struct.unpack("!H", ip[2:4])[0] == len(fr) - 18
        assert ip[8] == 9 - i
        assert ip[16:20] == ipaddress.IPv4Address(int(ips[i])).packed
        assert struct.unpack("!H", fr[38:40])[0] == 4000 + i
        assert checksum16(ip) == 0


def test_ipv6_field_slots_are_the_last_32_bits():
    t = nb.PacketTemplate(ip_version=6, src_ip="fd00:198:18::1", dst_ip="fd00:198:18:1::1")
    f = nb.build(t, 2, fields={"dst_ip": np.array([5, 6]), "tos": np.array([0x28, 0xB8])})
    for i in range(2):
        fr = f.frame(i)
        assert fr[14 + 24 : 14 + 40] == ipaddress.IPv6Address(f"fd00:198:18:1::{5 + i}").packed
        vtf = struct.unpack("!I", fr[14:18])[0]
        assert vtf >> 28 == 6 and (vtf >> 20) & 0xFF == (0x28, 0xB8)[i]


@settings(max_examples=60, deadline=None)
@given(
    v=st.sampled_from([4, 6]),
    proto=st.sampled_from(nb.PROTOS),
    vlan=st.one_of(st.none(), st.integers(0, 4095)),
    lens=st.lists(st.integers(0, 400), min_size=1, max_size=6),
    sport=st.integers(0, 0xFFFF),
)
def test_checksums_verify_for_every_layout(v, proto, vlan, lens, sport):
    src, dst = ("198.18.0.1", "198.18.1.1") if v == 4 else ("fd00:198:18::1", "fd00:198:18:1::2")
    t = nb.PacketTemplate(ip_version=v, src_ip=src, dst_ip=dst, proto=proto, vlan=vlan)
    lay = t.layout
    ln = np.array([lay.min_length + x for x in lens])
    f = nb.build(t, len(lens), fields={"sport": np.full(len(lens), sport)}, length=ln)
    assert nb.check_frames(f.data, f.lengths, lay).all()
    # and corrupting a payload or header byte is detected
    bad = f.data.copy()
    bad[:, lay.l4 + 1] ^= 0x40
    assert not nb.check_frames(bad, f.lengths, lay).any()


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="IPv6 address but the packet type is IPv4"):
        nb.PacketTemplate(dst_ip="fd00:198:18::1")
    with pytest.raises(ConfigError, match="length must be an integer in 60"):
        nb.PacketTemplate(length=59)
    with pytest.raises(ConfigError, match="at least 74 bytes"):
        nb.build(
            nb.PacketTemplate(
                ip_version=6,
                src_ip="fd00:198:18::1",
                dst_ip="fd00:198:18::2",
                proto="tcp",
                length=80,
            ),
            1,
            length=70,
        )
    with pytest.raises(ConfigError, match="fit in 16 bits"):
        nb.build(nb.PacketTemplate(), 2, fields={"sport": np.array([1, 70000])})
    with pytest.raises(ConfigError, match="unknown frame field"):
        nb.build(nb.PacketTemplate(), 1, fields={"flow": np.array([1])})
    with pytest.raises(ConfigError, match="VLAN"):
        nb.build(nb.PacketTemplate(), 1, fields={"vlan": np.array([1])})
    with pytest.raises(ConfigError, match="unknown protocol"):
        nb.PacketTemplate(proto="sctp")


def test_tshark_decodes_every_kind_with_good_checksums(tmp_path):
    """Every protocol, both IP versions, with and without VLAN, several lengths: tshark finds
    no malformed frame, every checksum good, and the fields we set."""
    frames, expect = [], []
    for v in (4, 6):
        for proto in nb.PROTOS:
            for vlan in (None, 42):
                src = "198.18.0.1" if v == 4 else "fd00:198:18::1"
                dst = "198.18.1.1" if v == 4 else "fd00:198:18:1::1"
                t = nb.PacketTemplate(
                    ip_version=v,
                    src_ip=src,
                    dst_ip=dst,
                    proto=proto,
                    vlan=vlan,
                    ttl=33,
                    tos=0x20,
                    length=100,
                )
                lens = np.array([t.layout.min_length, 100, 333, 1514])
                f = nb.build(t, 4, fields={"sport": np.arange(4) + 2000}, length=lens)
                frames += f.to_list()
                expect += [(v, proto, vlan, 2000 + i, int(lens[i])) for i in range(4)]
    path = tmp_path / "all.pcap"
    with PcapWriter(path) as w:
        w.write_many(frames)
    fields = [
        "frame.len",
        "_ws.malformed",
        "ip.checksum.status",
        "udp.checksum.status",
        "tcp.checksum.status",
        "icmp.checksum.status",
        "icmpv6.checksum.status",
        "vlan.id",
        "udp.srcport",
        "tcp.srcport",
        "icmp.ident",
        "icmpv6.echo.identifier",
        "ip.ttl",
        "ipv6.hlim",
    ]
    rows = tshark.fields(path, fields)
    assert len(rows) == len(expect)
    for c, (v, proto, vlan, sport, ln) in zip(rows, expect, strict=True):
        assert int(c["frame.len"]) == ln
        assert c["_ws.malformed"] == ""
        if v == 4:
            assert c["ip.checksum.status"] == "1" and c["ip.ttl"] == "33"
        else:
            assert c["ipv6.hlim"] == "33"
        key = {"udp": "udp.checksum.status", "tcp": "tcp.checksum.status"}.get(
            proto, "icmp.checksum.status" if v == 4 else "icmpv6.checksum.status"
        )
        assert c[key] == "1", (v, proto, vlan, ln, c)
        port_key = {"udp": "udp.srcport", "tcp": "tcp.srcport"}.get(
            proto, "icmp.ident" if v == 4 else "icmpv6.echo.identifier"
        )
        assert int(c[port_key], 0) == sport
        assert c["vlan.id"] == ("" if vlan is None else str(vlan))
