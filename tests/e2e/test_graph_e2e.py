"""The packet graph on real AF_XDP lports, against Linux peers.

1. One veth pair (native and generic XDP): pktdev_rx -> pkt_cls -> ip4_lookup -> ip4_rewrite
   -> pktdev_tx back out of the same lport, pkt_drop for the rest. The raw peer must get
   exactly the routed frames, rewritten (MACs, TTL - 1, checksum); unrouted, TTL-expired
   and non-IP frames must not come back. A trace of the first packets is checked too
   (pcap bytes as received, node paths, tshark reads it).
2. l3fwd between two lports (a star: DUT namespace with two veths to two peers): peer 0
   sends UDP to peer 1's address through the DUT; the graph routes it out of the other lport
   and peer 1's kernel delivers it to a UDP socket (so its IPv4 and UDP checksums are good).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from cndp import nodes, pktdev
from cndp.graph import graph_create, isolated_registry
from cndp.mem import Mempool, Umem
from cndp.net.frames import checksum16, udp4_frame
from cndp.net.pcap import read_pcap
from cndp.pktdev import PortConfig, port_setup
from cndp.testing import netns

from .xsk_helpers import RawPeer

MODES = [pytest.param(False, id="drv"), pytest.param(True, id="skb")]
DPORT = 9


@pytest.fixture(autouse=True)
def _isolated():
    with isolated_registry():
        nodes.register()
        nodes.reset()
        try:
            yield
        finally:
            nodes.reset()
            pktdev.close_all()


def routed(frame: bytes, dst_mac: bytes, src_mac: bytes) -> bytes:
    """What ip4_rewrite must make of ``frame``: new MACs, TTL - 1, recomputed checksum."""
    b = bytearray(frame)
    b[0:6] = dst_mac
    b[6:12] = src_mac
    b[22] -= 1
    b[24:26] = b"\0\0"
    b[24:26] = checksum16(bytes(b[14:34])).to_bytes(2, "big")
    return bytes(b)


def run_graph(g, until, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        if not g.walk():
            g.idle()
            time.sleep(0.0005)


@pytest.mark.parametrize("skb_mode", MODES)
def test_l3fwd_graph_hairpin_on_af_xdp(veth_pair, skb_mode, tmp_path):
    a, b = veth_pair.a, veth_pair.b
    with Umem(4096) as umem:
        with b.enter():
            port = port_setup(
                PortConfig(f"{b.ifname}:0", "net_af_xdp", umem=umem, skb_mode=skb_mode)
            )
        with a.enter():
            peer = RawPeer(a.ifname)
        try:
            rx, tx = nodes.pktdev_config([port])[0]
            nodes.ip4_route_add("198.18.100.0", 24, 1)
            nodes.ip4_rewrite_add(1, a.mac_bytes + b.mac_bytes + b"\x08\x00", port.lport)
            g = graph_create(
                "worker0", [rx, "pkt_cls", "ip4_*", tx, "pkt_drop"], burst=64, stats=True
            )

            def udp(i: int, dst: str, ttl: int = 64) -> bytes:
                payload = i.to_bytes(4, "big") + bytes(range(16))
                return udp4_frame(
                    a.mac,
                    b.mac,
                    a.ipv4,
                    dst,
                    sport=1000 + i,
                    dport=DPORT,
                    size=60 + i % 40,
                    ttl=ttl,
                    payload=payload,
                )

            good = [udp(i, f"198.18.100.{1 + i % 200}") for i in range(300)]
            unrouted = [udp(1000 + i, "198.18.200.1") for i in range(10)]
            expired = [udp(2000 + i, "198.18.100.7", ttl=1) for i in range(5)]
            non_ip = [b.mac_bytes + a.mac_bytes + b"\x88\xb5" + bytes(46)] * 5
            bad = unrouted + expired + non_ip
            tr = g.trace(5, tmp_path / "trace.pcap")
            # the first frames are routed ones (for the trace); the rest interleaved
            sent = good[:5] + [x for pair in zip(good[5:25], bad, strict=True) for x in pair]
            sent += good[25:]
            peer.send(sent)
            rw = g.node_get_by_name("ip4_rewrite")
            drop = g.node_get_by_name("pkt_drop")
            run_graph(g, lambda: rw.objs >= len(good) + len(expired) and drop.ctx.dropped >= 20)
            assert nodes.pktdev_flush(g, 2.0)
            back = peer.recv_until(len(good), match=_from(b.mac_bytes))
            time.sleep(0.2)
            back += peer.recv_until(1, timeout=0.3, match=_from(b.mac_bytes))
        finally:
            peer.close()
        st_ = {s.name: s.objs for s in g.stats()}
        port.close()

    key = lambda f: int.from_bytes(f[42:46], "big")  # noqa: E731 - the seq in the payload
    assert sorted(back, key=key) == [routed(f, a.mac_bytes, b.mac_bytes) for f in good]
    assert st_["ip4_rewrite"] == len(good) + len(expired)
    assert st_[tx] == len(good)
    # dropped: the bad ones, plus whatever Linux itself sent (IPv6 ND and the like)
    assert st_["pkt_drop"] >= len(bad) and drop.ctx.dropped == st_["pkt_drop"]
    assert drop.ctx.lost == 0
    # trace: the bytes as received (before the rewrite) and the path through the graph
    assert tr.done
    recs = read_pcap(tmp_path / "trace.pcap")
    doc = json.loads((tmp_path / "trace.json").read_text())
    assert len(recs) == 5 == len(doc["packets"])
    ours = [(r, p) for r, p in zip(recs, doc["packets"], strict=True) if r.data in good[:5]]
    assert len(ours) >= 3, "Linux's own frames took most of the trace"
    for r, p in ours:
        assert p["path"] == [rx, "pkt_cls", "ip4_lookup", "ip4_rewrite", tx]
        assert p["len"] == len(r.data) and p["port"] == port.lport
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(tmp_path / "trace.pcap"),
            "-T",
            "fields",
            "-e",
            "ip.dst",
            "-e",
            "udp.dstport",
            "-e",
            "_ws.malformed",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) == 5
    assert sum(1 for r in rows if r[0].startswith("198.18.100.") and r[1] == str(DPORT)) == len(
        ours
    )
    assert all(not r[2] for r in rows)


def _from(mac: bytes):
    def m(data: bytes) -> bool:
        return data[6:12] == mac and data[12:14] == b"\x08\x00" and data[23] == 17

    return m


@pytest.fixture
def star():
    s = netns.make_star(2)
    try:
        yield s
    finally:
        s.close()


def test_l3fwd_graph_between_two_lports_drv(star):
    p0, p1 = star.peers
    d0, d1 = star.dut
    # peer 1 answers nothing, but its reverse-path filter wants a route back to peer 0
    r = p1.run(["ip", "route", "add", "198.18.0.0/24", "via", d1.ipv4])
    assert r.returncode == 0, r.stderr
    with Umem(4096) as umem:
        pool = Mempool.for_region(umem, 0)  # one pool: frames move between the two lports
        with d0.enter():
            ports = [
                port_setup(PortConfig(f"{h.ifname}:0", "net_af_xdp", umem=umem, pool=pool))
                for h in (d0, d1)
            ]
        with p1.enter():
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind((p1.ipv4, 9999))
            sink.setblocking(False)
        with p0.enter():
            peer = RawPeer(p0.ifname)
        try:
            names = nodes.pktdev_config(ports)
            for i, (host, dut) in enumerate(((p0, d0), (p1, d1))):
                nodes.ip4_route_add(f"198.18.{i}.0", 24, 10 + i)
                nodes.ip4_rewrite_add(
                    10 + i, host.mac_bytes + dut.mac_bytes + b"\x08\x00", ports[i].lport
                )
            g = graph_create("worker0", [rx for rx, _ in names], burst=32)
            frames = [
                udp4_frame(
                    p0.mac,
                    d0.mac,
                    p0.ipv4,
                    p1.ipv4,
                    sport=2000 + i,
                    dport=9999,
                    size=80,
                    payload=b"graph" + i.to_bytes(4, "big"),
                )
                for i in range(200)
            ]
            peer.send(frames)
            got: list[bytes] = []
            deadline = time.monotonic() + 5
            while len(got) < len(frames) and time.monotonic() < deadline:
                run_graph(g, lambda: False, timeout=0.01)  # walk for 10 ms
                try:
                    while True:
                        data, src = sink.recvfrom(2048)
                        assert src[0] == p0.ipv4
                        got.append(data)
                except (TimeoutError, BlockingIOError):
                    pass
            nodes.pktdev_flush(g, 1.0)
        finally:
            peer.close()
            sink.close()
        st_ = {s.name: s.objs for s in g.stats()}
        for p in ports:
            p.close()
    assert sorted(got) == sorted(
        b"graph" + i.to_bytes(4, "big") + bytes(80 - 42 - 9) for i in range(200)
    )
    assert st_[names[1][1]] == 200 and st_[names[0][1]] == 0
