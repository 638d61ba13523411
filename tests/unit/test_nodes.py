"""cndp.nodes: pkt_cls against a scalar oracle, the IPv4 route table against brute force,
ip4_rewrite's checksum against a full recompute, pkt_drop's pools, and the l3fwd graph
(pktdev_rx -> pkt_cls -> ip4_lookup -> ip4_rewrite -> pktdev_tx) over net_ring ports."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp import nodes, pktdev
from cndp.graph import (
    GraphError,
    graph_create,
    isolated_registry,
    node_def,
    node_edge_shrink,
    node_edge_update,
    node_register,
)
from cndp.mem import Mempool, PktVec, Umem
from cndp.net.frames import checksum16, udp4_frame
from cndp.nodes import pkt_cls as C
from cndp.pktdev import PortConfig, port_setup

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


@pytest.fixture(autouse=True)
def _clean():
    assert pktdev.port_count() == 0, "a previous test leaked ports"
    with isolated_registry():
        nodes.register()
        nodes.reset()
        yield
        nodes.reset()
    pktdev.close_all()


@pytest.fixture
def umem():
    with Umem(1024, 2048) as u:
        yield u


@pytest.fixture
def pool(umem):
    return Mempool.for_region(umem, 0)


def put_frames(umem: Umem, pool: Mempool, frames: list[bytes]) -> PktVec:
    """A vector of fresh frames from ``pool`` holding ``frames`` (test setup)."""
    pv = PktVec(max(len(frames), 1))
    assert pv.alloc_from(pool, len(frames)) == len(frames)
    for i, f in enumerate(frames):
        a = int(pv.addr[i])
        umem.data[a : a + len(f)] = np.frombuffer(f, np.uint8)
        pv.data_len[i] = len(f)
    return pv


def read_frames(umem: Umem, pv: PktVec) -> list[bytes]:
    return [
        bytes(umem.data[a : a + n])
        for a, n in zip(pv.addr[: pv.n].tolist(), pv.data_len[: pv.n].tolist(), strict=True)
    ]


def vec_source(umem, pool, batches):
    """A source producing the given frame batches (one per walk), from port 0."""
    it = iter(batches)

    def src(node, pv):
        frames = next(it, [])
        if not frames:
            return None
        v = put_frames(umem, pool, frames)
        pv.append(v)
        pv.port[: pv.n] = 0
        return 0

    return src


class Collect:
    """A sink that keeps copies of the bytes and metadata it received, then frees them."""

    def __init__(self, umem, pool):
        self.umem, self.pool = umem, pool
        self.frames: list[bytes] = []
        self.next: list[int] = []
        self.ptype: list[int] = []

    def __call__(self, node, pv):
        self.frames += read_frames(self.umem, pv)
        self.next += pv.next[: pv.n].tolist()
        self.ptype += pv.ptype[: pv.n].tolist()
        self.pool.put_bulk(pv.addr[: pv.n])
        return None


# --------------------------------------------------------------------------------------------
# pkt_cls


def oracle_ptype(b: bytes) -> int:
    """Scalar packet-type oracle, written from the CNE_PTYPE definitions."""
    if len(b) < 14:
        return 0
    et = struct.unpack_from("!H", b, 12)[0]
    off, l2 = 14, C.PTYPE_L2_ETHER
    if et in (0x8100, 0x88A8):
        if len(b) < 18:
            return 0
        l2 = C.PTYPE_L2_ETHER_QINQ if et == 0x88A8 else C.PTYPE_L2_ETHER_VLAN
        et = struct.unpack_from("!H", b, 16)[0]
        off = 18
    else:
        l2 = {0x0806: 3, 0x88CC: 4, 0x88F7: 2}.get(et, l2)
    room = len(b) - off
    if et == 0x0800 and room >= 20 and b[off] >> 4 == 4 and (b[off] & 15) >= 5:
        ihl = (b[off] & 15) * 4
        if room >= ihl:
            l3 = C.PTYPE_L3_IPV4 if ihl == 20 else C.PTYPE_L3_IPV4_EXT
            proto = b[off + 9]
            frag = (b[off + 6] & 0x3F) or b[off + 7]
            l4s = {6: 0x100, 17: 0x200, 132: 0x400, 1: 0x500, 2: 0x700}
            l4 = 0x300 if frag else l4s.get(proto, 0x600)
            return l2 | l3 | l4
    if et == 0x86DD and room >= 40 and b[off] >> 4 == 6:
        nh = b[off + 6]
        if nh in (0, 43, 44, 50, 51, 60, 135):
            return l2 | C.PTYPE_L3_IPV6_EXT | (0x300 if nh == 44 else 0)
        l4s = {6: 0x100, 17: 0x200, 132: 0x400, 58: 0x500}
        return l2 | C.PTYPE_L3_IPV6 | l4s.get(nh, 0x600)
    return l2


@st.composite
def frames(draw):
    tag = draw(st.sampled_from([None, 0x8100, 0x88A8]))
    et = draw(st.sampled_from([0x0800, 0x0800, 0x86DD, 0x0806, 0x88CC, 0x88F7, 0x1234, 0x8100]))
    head = MAC_A + MAC_B
    if tag:
        head += struct.pack("!HH", tag, draw(st.integers(0, 0xFFFF)))
    head += struct.pack("!H", et)
    if et == 0x0800:
        vihl = draw(st.sampled_from([0x45, 0x46, 0x4F, 0x44, 0x55, 0x60]))
        l3 = bytes([vihl, 0]) + draw(st.binary(min_size=4, max_size=4))
        l3 += bytes([draw(st.sampled_from([0, 0x20, 0x40, 0x01])), draw(st.sampled_from([0, 8]))])
        l3 += bytes([64, draw(st.sampled_from([1, 2, 6, 17, 132, 47, 255]))])
    elif et == 0x86DD:
        l3 = bytes([draw(st.sampled_from([0x60, 0x6F, 0x40]))]) + bytes(5)
        l3 += bytes([draw(st.sampled_from([6, 17, 58, 132, 0, 43, 44, 60, 59]))])
    else:
        l3 = b""
    body = head + l3 + draw(st.binary(max_size=70))
    cut = draw(st.integers(0, len(body)))
    return body[: max(cut, draw(st.integers(0, len(body))))]


@settings(max_examples=300, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=40), st.binary(min_size=64, max_size=64))
def test_classify_matches_oracle(fs, junk):
    with Umem(64, 2048) as u:
        pv = PktVec(len(fs))
        pv.addr[: len(fs)] = np.arange(len(fs), dtype=np.uint64) * np.uint64(2048) + np.uint64(256)
        pv.n = len(fs)
        for i, f in enumerate(fs):
            a = int(pv.addr[i])
            # bytes beyond data_len are junk: the classifier must not depend on them
            u.data[a : a + 64] = np.frombuffer(junk, np.uint8)
            u.data[a : a + len(f)] = np.frombuffer(f, np.uint8)
            pv.data_len[i] = len(f)
        got = C.classify(u.data, pv).tolist()
    assert got == [oracle_ptype(f) for f in fs]


def test_pkt_cls_routes_by_class_and_set_next(umem, pool):
    ip4 = udp4_frame(MAC_A, MAC_B, dst_ip="198.18.1.1")
    ip6 = MAC_B + MAC_A + b"\x86\xdd" + bytes([0x60]) + bytes(5) + b"\x11\x40" + bytes(32)
    arp = MAC_B + MAC_A + b"\x08\x06" + bytes(28)
    vlan4 = ip4[:12] + b"\x81\x00\x00\x05" + ip4[12:]
    sinks = {n: Collect(umem, pool) for n in ("v4", "v6", "drop")}
    assert nodes.pkt_cls_set_next(C.PTYPE_L2_ETHER | C.PTYPE_L3_IPV6, "v6") == 2
    assert nodes.pkt_cls_set_next(C.PTYPE_L2_ETHER | C.PTYPE_L3_IPV6, "v6") == 2  # no new edge
    assert nodes.pkt_cls_next(C.PTYPE_L2_ETHER_VLAN | C.PTYPE_L3_IPV4) == 0
    node_edge_update("pkt_cls", 0, ["drop", "v4"])
    for n, c in sinks.items():
        node_register(n, c)
    batch = [ip4, ip6, arp, vlan4, ip4[:30], ip6]
    node_register("src", vec_source(umem, pool, [batch]), ["pkt_cls"], source=True)
    g = graph_create("g", ["src"], umem=umem)
    g.walk()
    assert sinks["v4"].frames == [ip4]
    assert sinks["v6"].frames == [ip6, ip6]
    assert sinks["drop"].frames == [arp, vlan4, ip4[:30]]
    assert sinks["v4"].ptype == [C.PTYPE_L2_ETHER | C.PTYPE_L3_IPV4 | C.PTYPE_L4_UDP]
    assert sinks["drop"].ptype == [
        C.PTYPE_L2_ETHER_ARP,
        C.PTYPE_L2_ETHER_VLAN | C.PTYPE_L3_IPV4 | C.PTYPE_L4_UDP,
        C.PTYPE_L2_ETHER,
    ]
    assert pool.avail == pool.capacity
    with pytest.raises(GraphError, match="beyond L2"):
        nodes.pkt_cls_set_next(0x111, "v6")
    with pytest.raises(GraphError):
        nodes.pkt_cls_set_next(-1, "v6")


def test_pkt_cls_table_must_fit_the_edges(umem):
    nodes.pkt_cls_set_next(C.PTYPE_L2_ETHER_ARP, "null")
    node_edge_shrink("pkt_cls", 2)  # the edge the table needs is gone
    node_register("src", lambda node, pv: None, ["pkt_cls"], source=True)
    with pytest.raises(GraphError, match="routes to edge 2 but this pkt_cls has 2 edges"):
        graph_create("g", ["src"], umem=umem)


def test_nodes_reading_bytes_need_a_umem():
    node_register("src", lambda node, pv: None, ["pkt_cls"], source=True)
    with pytest.raises(GraphError, match="reads packet bytes but the graph has no UMEM"):
        graph_create("g", ["src"])


# --------------------------------------------------------------------------------------------
# IPv4 routes


def brute_lpm(routes: dict[tuple[int, int], int], ip: int, default: int) -> int:
    best, val = -1, default
    for (net, depth), v in routes.items():
        mask = (0xFFFFFFFF << (32 - depth)) & 0xFFFFFFFF
        if ip & mask == net and depth > best:
            best, val = depth, v
    return val


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 32), st.integers(0, 0xFFFFFF)),
        max_size=30,
    ),
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=50),
)
def test_ip4_routes_match_brute_force(routes, ips):
    t = nodes.Ip4Routes(default=7)
    ref: dict[tuple[int, int], int] = {}
    for ip, depth, v in routes:
        mask = (0xFFFFFFFF << (32 - depth)) & 0xFFFFFFFF
        t.add(ip, depth, v)
        ref[(ip & mask, depth)] = v
    # probe the route addresses themselves and their neighbours too
    probes = ips + [r[0] for r in routes] + [(r[0] ^ 1) for r in routes]
    got = t.lookup(np.array(probes, np.uint32)).tolist()
    assert got == [brute_lpm(ref, p, 7) for p in probes]
    assert len(t) == len(ref)
    if routes:
        ip, depth, _ = routes[0]
        assert t.delete(ip, depth)
        mask = (0xFFFFFFFF << (32 - depth)) & 0xFFFFFFFF
        del ref[(ip & mask, depth)]
        assert t.lookup(np.array(probes, np.uint32)).tolist() == [
            brute_lpm(ref, p, 7) for p in probes
        ]
        assert not t.delete(ip, depth)


def test_route_argument_errors():
    t = nodes.Ip4Routes()
    for args in (("1.2.3.4", 33, 1), ("1.2.3.999", 8, 1), (-1, 8, 1), ("1.2.3.4", 8, -1)):
        with pytest.raises(GraphError):
            t.add(*args)
    with pytest.raises(GraphError, match="next hop"):
        nodes.ip4_route_add("198.18.0.0", 16, 70000)
    with pytest.raises(GraphError, match="next node"):
        nodes.ip4_route_add("198.18.0.0", 16, 1, next_node=300)
    with pytest.raises(GraphError, match="callable"):
        nodes.ip4_lookup_set(42)
    nodes.ip4_route_add(ipaddress.IPv4Address("198.18.0.0"), 15, 3)
    assert nodes.ip4_routes().get("198.18.200.1", 15) == 3
    assert nodes.ip4_route_delete("198.19.0.0", 15) and len(nodes.ip4_routes()) == 0


# --------------------------------------------------------------------------------------------
# ip4_lookup and ip4_rewrite (no ports: sources and sinks are test nodes)


def _ip4_graph(umem, pool, batch, out_edges=("tx0", "tx1")):
    """src -> ip4_lookup -> ip4_rewrite -> tx0/tx1 (collecting sinks), drops collected too."""
    cols = {n: Collect(umem, pool) for n in (*out_edges, "dropped")}
    node_edge_update("ip4_lookup", 1, ["dropped"])
    node_edge_update("ip4_rewrite", 0, ["dropped"])
    for n, c in cols.items():
        node_register(n, c)
    for lport, n in enumerate(out_edges):
        node_edge_update("ip4_rewrite", None, [n])
        nodes.ip4_rewrite_set_port(lport, lport + 1)
    node_register("src", vec_source(umem, pool, [batch]), ["ip4_lookup"], source=True)
    return cols


def test_ip4_lookup_sets_next_hop_and_routes(umem, pool):
    nodes.ip4_route_add("198.18.1.0", 24, 11)
    nodes.ip4_route_add("198.18.1.128", 25, 12)
    nodes.ip4_route_add("198.18.0.0", 15, 13, next_node=nodes.IP4_LOOKUP_NEXT_PKT_DROP)
    dsts = ["198.18.1.1", "198.18.1.200", "198.18.7.7", "198.18.1.127"]
    batch = [udp4_frame(MAC_B, MAC_A, dst_ip=d, payload=bytes([i]) * 8) for i, d in enumerate(dsts)]
    cols = _ip4_graph(umem, pool, batch)
    nodes.ip4_rewrite_add(11, MAC_A + MAC_B + b"\x08\x00", dst_port=0)
    nodes.ip4_rewrite_add(12, MAC_B + MAC_A + b"\x08\x00", dst_port=1)
    g = graph_create("g", ["src"], umem=umem)
    g.walk()
    assert [f[42] for f in cols["tx0"].frames] == [0, 3]
    assert [f[42] for f in cols["tx1"].frames] == [1]
    assert [f[42] for f in cols["dropped"].frames] == [2]
    assert cols["tx0"].next == [11, 11] and cols["tx1"].next == [12]
    assert cols["dropped"].next == [13]
    assert all(f[:12] == MAC_A + MAC_B for f in cols["tx0"].frames)
    assert cols["tx1"].frames[0][:12] == MAC_B + MAC_A
    assert pool.avail == pool.capacity


def test_ip4_lookup_is_pluggable(umem, pool):
    seen = []

    def fib(dst):
        seen.append(dst.copy())
        # everything to next hop 5 via the rewrite edge, except 198.18.3.x (dropped)
        return np.where((dst >> 8) == int(ipaddress.IPv4Address("198.18.3.0")) >> 8, 1 << 16, 5)

    nodes.ip4_lookup_set(fib)
    assert nodes.ip4_lookup_get() is fib
    batch = [udp4_frame(MAC_B, MAC_A, dst_ip=d) for d in ("198.18.2.1", "198.18.3.1")]
    cols = _ip4_graph(umem, pool, batch)
    nodes.ip4_rewrite_add(5, MAC_A + MAC_B, dst_port=0)  # a 12-byte rewrite: MACs only
    graph_create("g", ["src"], umem=umem).walk()
    assert [int(x) for x in seen[0]] == [
        int(ipaddress.IPv4Address("198.18.2.1")),
        int(ipaddress.IPv4Address("198.18.3.1")),
    ]
    assert len(cols["tx0"].frames) == 1 and len(cols["dropped"].frames) == 1
    assert cols["tx0"].frames[0][12:14] == b"\x08\x00"  # ethertype kept
    nodes.ip4_lookup_set(None)
    assert nodes.ip4_lookup_get() == nodes.ip4_routes().lookup


def _ip4_header(ttl, proto, ident, tos, flags, total, src, dst, csum_override=None):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, flags, ttl, proto, 0, src, dst)
    c = checksum16(h) if csum_override is None else csum_override
    return h[:10] + struct.pack("!H", c) + h[12:]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 255),  # ttl
            st.integers(0, 255),  # proto
            st.integers(0, 0xFFFF),  # id
            st.integers(0, 255),  # tos
            st.integers(0, 0xFFFF),  # flags/frag
            st.integers(20, 0xFFFF),  # total length
            st.binary(min_size=4, max_size=4),
            st.binary(min_size=4, max_size=4),
        ),
        min_size=1,
        max_size=32,
    )
)
def test_ip4_rewrite_ttl_and_checksum_match_full_recompute(hdrs):
    with isolated_registry(), Umem(128, 2048) as u:
        nodes.register()
        nodes.reset()
        p = Mempool.for_region(u, 0)
        frames = [MAC_B + MAC_A + b"\x08\x00" + _ip4_header(*h) + bytes(8) for h in hdrs]
        nodes.ip4_route_add(0, 0, 9)  # default route
        cols = _ip4_graph(u, p, frames, out_edges=("tx0",))
        nodes.ip4_rewrite_add(9, MAC_A + MAC_B + b"\x08\x00", dst_port=0)
        graph_create("g", ["src"], umem=u).walk()
        fwd = iter(cols["tx0"].frames)
        dropped = iter(cols["dropped"].frames)
        for h, f in zip(hdrs, frames, strict=True):
            if h[0] <= 1:  # TTL expired: dropped untouched
                assert next(dropped) == f
                continue
            out = next(fwd)
            ip = out[14:34]
            assert out[:14] == MAC_A + MAC_B + b"\x08\x00"
            assert ip[8] == h[0] - 1
            assert checksum16(ip) == 0  # the header still verifies
            want = _ip4_header(h[0] - 1, *h[1:])
            assert ip == want  # and is exactly what a full recompute gives
        assert next(fwd, None) is None and next(dropped, None) is None
        nodes.reset()


def test_ip4_rewrite_mixed_lengths_and_unknown_hops(umem, pool):
    nodes.ip4_route_add("198.18.1.0", 24, 1)
    nodes.ip4_route_add("198.18.2.0", 24, 2)
    nodes.ip4_route_add("198.18.3.0", 24, 3)  # no rewrite entry: dropped by ip4_rewrite
    dsts = ["198.18.1.1", "198.18.2.1", "198.18.3.1", "198.18.2.2"]
    batch = [udp4_frame(MAC_B, MAC_A, dst_ip=d) for d in dsts]
    cols = _ip4_graph(umem, pool, batch, out_edges=("tx0",))
    nodes.ip4_rewrite_add(1, MAC_A + MAC_B + b"\x08\x00", dst_port=0)
    nodes.ip4_rewrite_add(2, b"\xee" * 6, dst_port=0)
    graph_create("g", ["src"], umem=umem).walk()
    out = cols["tx0"].frames
    assert [f[30:34] for f in out] == [
        ipaddress.IPv4Address(d).packed for d in dsts if "3." not in d
    ]
    assert out[0][:12] == MAC_A + MAC_B
    assert out[1][:12] == b"\xee" * 6 + MAC_B and out[2][:6] == b"\xee" * 6
    assert [f[30:34] for f in cols["dropped"].frames] == [ipaddress.IPv4Address(dsts[2]).packed]
    assert cols["dropped"].frames[0] == batch[2]  # untouched


def test_ip4_rewrite_add_errors():
    with pytest.raises(GraphError, match="pktdev_config"):
        nodes.ip4_rewrite_add(1, MAC_A + MAC_B, dst_port=4)
    nodes.ip4_rewrite_set_port(4, 1)
    for bad in (b"", bytes(57)):
        with pytest.raises(GraphError, match="rewrite data"):
            nodes.ip4_rewrite_add(1, bad, dst_port=4)
    with pytest.raises(GraphError, match="next hop"):
        nodes.ip4_rewrite_add(1 << 16, MAC_A, dst_port=4)


# --------------------------------------------------------------------------------------------
# pkt_drop and null


def test_pkt_drop_frees_to_each_input_ports_pool(umem):
    pools = [Mempool.for_region(u, 0) for u in (umem,)]
    with Umem(64, 2048) as u2:
        p2 = Mempool.for_region(u2, 0)
        a = port_setup(PortConfig("a", "net_null", umem=umem, pool=pools[0]))
        b = port_setup(PortConfig("b", "net_null", umem=u2, pool=p2))
        va, vb = PktVec(8), PktVec(8)
        va.alloc_from(pools[0], 5)
        vb.alloc_from(p2, 3)

        def src(node, pv):
            pv.append(va)
            pv.port[:5] = a.lport
            pv.append(vb)
            pv.port[5:8] = b.lport
            pv.port[7] = 30  # no such port: counted as lost
            return 0

        node_register("src", src, ["pkt_drop"], source=True)
        g = graph_create("g", ["src"])
        g.walk()
        ctx = g.node_get_by_name("pkt_drop").ctx
        assert (ctx.dropped, ctx.lost) == (8, 1)
        assert pools[0].avail == pools[0].capacity and p2.avail == p2.capacity - 1
        # same-port vector: one put_bulk; a closed port's frames are lost, not crashed on
        b.close()

        def src2(node, pv):
            v = PktVec(2)
            v.alloc_from(p2, 2)
            pv.append(v)
            pv.port[:2] = b.lport
            return 0

        g.node_get_by_name("src").process = src2
        g.walk()
        assert ctx.lost == 3


def test_pkt_drop_with_an_explicit_pool_and_null_node(umem, pool):
    node_def("pkt_drop").data["pool"] = pool
    v = PktVec(4)
    v.alloc_from(pool, 4)
    node_register("src", lambda node, pv: (pv.append(v), 0)[1], ["pkt_drop"], source=True)
    g = graph_create("g", ["src"])
    g.walk()
    assert pool.avail == pool.capacity
    node_register("src2", lambda node, pv: (pv.append(v), 0)[1], ["null"], source=True)
    g2 = graph_create("g2", ["src2"])
    g2.walk()  # null does nothing, not even free
    assert g2.pending() == 0


# --------------------------------------------------------------------------------------------
# pktdev nodes over net_ring ports: l3fwd-graph


@pytest.fixture
def rings(umem, pool):
    """inj -> ringA -> rx (graph source); graph tx ports out0/out1 -> ringB/ringC -> sinks."""

    def mk(name, ring, size=1024):
        return port_setup(
            PortConfig(name, f"net_ring:size={size}", ifname=ring, umem=umem, pool=pool)
        )

    ports = {
        "inj": mk("inj", "ringA"),
        "rx": mk("rx", "ringA"),
        "out0": mk("out0", "ringB"),
        "sink0": mk("sink0", "ringB"),
        "out1": mk("out1", "ringC", size=8),
        "sink1": mk("sink1", "ringC", size=8),
    }
    return ports


def inject(ports, umem, pool, frames):
    pv = put_frames(umem, pool, frames)
    assert ports["inj"].tx_burst(pv, pv.n) == pv.n


def drain(port, umem, pool):
    pv = PktVec(1024)
    k = port.rx_burst(pv)
    out = read_frames(umem, pv)
    pool.put_bulk(pv.addr[:k])
    return out


def test_l3fwd_graph_over_ring_ports(rings, umem, pool):
    p = rings
    names = nodes.pktdev_config([p["rx"], p["out0"], p["out1"].lport])
    assert names[0] == (f"pktdev_rx-{p['rx'].lport}", f"pktdev_tx-{p['rx'].lport}")
    assert nodes.pktdev_config([p["rx"]]) == names[:1]  # idempotent
    rw = node_def("ip4_rewrite").next_nodes
    assert rw == ["pkt_drop"] + [f"pktdev_tx-{p[n].lport}" for n in ("rx", "out0", "out1")]
    nodes.ip4_route_add("198.18.10.0", 24, 100)
    nodes.ip4_route_add("198.18.11.0", 24, 101)
    nodes.ip4_rewrite_add(100, MAC_A + MAC_B + b"\x08\x00", dst_port=p["out0"].lport)
    nodes.ip4_rewrite_add(101, MAC_B + MAC_A + b"\x08\x00", dst_port=p["out1"].lport)
    rx = f"pktdev_rx-{p['rx'].lport}"
    g = graph_create("worker0", [rx, "pkt_cls", "ip4_*", "pktdev_tx-*", "pkt_drop"], burst=32)
    assert g.umem is umem and [s.name for s in g.sources] == [rx]
    to10 = [udp4_frame(MAC_B, MAC_A, dst_ip="198.18.10.5", sport=i, ttl=9) for i in range(40)]
    to11 = [udp4_frame(MAC_B, MAC_A, dst_ip="198.18.11.5", sport=i) for i in range(3)]
    other = [
        udp4_frame(MAC_B, MAC_A, dst_ip="198.18.99.1"),  # no route
        MAC_B + MAC_A + b"\x08\x06" + bytes(46),  # ARP
        udp4_frame(MAC_B, MAC_A, dst_ip="198.18.10.6", ttl=1),  # TTL expired
    ]
    inject(p, umem, pool, to10[:20] + other + to11 + to10[20:])
    walks = [g.walk() for _ in range(3)]
    assert walks == [32, 14, 0]
    got0 = drain(p["sink0"], umem, pool)
    got1 = drain(p["sink1"], umem, pool)
    assert len(got0) == 40 and len(got1) == 3
    for sent, out in zip(to10, got0, strict=True):
        assert out[:14] == MAC_A + MAC_B + b"\x08\x00" and out[22] == 8
        assert out[14 + 12 :] == sent[14 + 12 :] and checksum16(out[14:34]) == 0
    assert [f[34:36] for f in got1] == [f[34:36] for f in to11]
    st_ = {s.name: s.objs for s in g.stats()}
    assert st_["pkt_drop"] == 3 and st_["ip4_rewrite"] == 44 and st_["pkt_cls"] == 46
    assert g.node_get_by_name("pkt_drop").ctx.dropped == 3
    assert pool.avail == pool.capacity  # every frame is back: nothing leaked
    assert nodes.pktdev_flush(g)


def test_pktdev_tx_leftovers_go_to_pkt_drop(rings, umem, pool):
    p = rings
    nodes.pktdev_config([p["rx"], p["out1"]])
    nodes.ip4_route_add("198.18.11.0", 24, 1)
    nodes.ip4_rewrite_add(1, MAC_A + MAC_B + b"\x08\x00", dst_port=p["out1"].lport)
    g = graph_create("w", [f"pktdev_rx-{p['rx'].lport}"])
    inject(p, umem, pool, [udp4_frame(MAC_B, MAC_A, dst_ip="198.18.11.1")] * 20)
    assert g.walk() == 20
    assert len(drain(p["sink1"], umem, pool)) == 8  # the ring holds 8
    st_ = {s.name: s.objs for s in g.stats()}
    assert st_[f"pktdev_tx-{p['out1'].lport}"] == 20 and st_["pkt_drop"] == 12
    assert pool.avail == pool.capacity


def test_pktdev_admin_down(rings, umem, pool):
    p = rings
    nodes.pktdev_config([p["rx"], p["out0"]])
    nodes.ip4_route_add("198.18.10.0", 24, 1)
    nodes.ip4_rewrite_add(1, MAC_A + MAC_B + b"\x08\x00", dst_port=p["out0"].lport)
    g = graph_create("w", [f"pktdev_rx-{p['rx'].lport}"])
    inject(p, umem, pool, [udp4_frame(MAC_B, MAC_A, dst_ip="198.18.10.1")] * 4)
    p["rx"].stop()
    assert g.walk() == 0  # admin down: nothing received, nothing touched
    p["rx"].start()
    p["out0"].stop()
    assert g.walk() == 4
    assert g.node_get_by_name("pkt_drop").ctx.dropped == 4  # tx down: all to pkt_drop
    assert drain(p["sink0"], umem, pool) == [] and pool.avail == pool.capacity


def test_pktdev_idle_hook_reaps_through_tx_burst(rings):
    p = rings
    nodes.pktdev_config([p["rx"]])
    g = graph_create("w", [f"pktdev_rx-{p['rx'].lport}"])
    tx = g.node_get_by_name(f"pktdev_tx-{p['rx'].lport}")
    calls = []
    tx.ctx = type("P", (), {"tx_burst": lambda self, pv, n: calls.append((pv.n, n)) or 0})()
    g.idle()
    assert calls == [(0, 0)]


def test_pktdev_config_and_create_errors(umem, pool):
    with pytest.raises(GraphError, match="not an lport"):
        nodes.pktdev_config(["x"])  # type: ignore[list-item]
    nodes.pktdev_config([5])  # no port 5 yet: found out when the graph is created
    with pytest.raises(GraphError, match="lport 5 is not open"):
        graph_create("w", ["pktdev_rx-5"])
    with pytest.raises(GraphError, match="template, not a per-port clone"):
        graph_create("w", ["pktdev_rx"])
    with Umem(64, 2048) as u2:
        a = port_setup(PortConfig("a", "net_null", umem=umem, pool=pool))
        b = port_setup(PortConfig("b", "net_null", umem=u2))
        nodes.pktdev_config([a, b])
        with pytest.raises(GraphError, match="one UMEM per graph"):
            graph_create("w", [f"pktdev_rx-{a.lport}", f"pktdev_rx-{b.lport}"])
        # ip4_rewrite edges that the graph does not have: refused at creation
        nodes.ip4_rewrite_add(1, MAC_A, dst_port=b.lport)
        node_edge_shrink("ip4_rewrite", 1)
        with pytest.raises(GraphError, match="run pktdev_config before"):
            graph_create("w", [f"pktdev_rx-{a.lport}"])
        b.close()


def test_null_port_source_through_pkt_cls_to_drop(umem, pool):
    """net_null hands out 64-byte frames of whatever the frame held: zeros here, so pkt_cls
    classes them as plain Ethernet and drops them; every frame returns to the pool."""
    umem.data[:] = 0
    port = port_setup(PortConfig("n0", "net_null", umem=umem, pool=pool))
    nodes.pktdev_config([port])
    g = graph_create("w", [f"pktdev_rx-{port.lport}"], burst=16)
    for _ in range(10):
        assert g.walk() == 16
    assert g.node_get_by_name("pkt_drop").ctx.dropped == 160
    assert pool.avail == pool.capacity
