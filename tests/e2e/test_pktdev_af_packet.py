"""net_af_packet specifics: the PACKET_MMAP rings wrap, overflow and refuse what does not fit."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from cndp import pktdev
from cndp.mem import Mempool, PktVec, Umem
from cndp.pktdev import PortConfig, port_setup

from .xsk_helpers import RawPeer, drain_port, frame, is_udp_to, seq_of


@pytest.fixture(autouse=True)
def _close_ports():
    yield
    pktdev.close_all()


@pytest.fixture
def umem():
    with Umem(4096, 2048) as u:
        yield u


def open_port(pair, umem, pool=None, **kw):
    with pair.b.enter():
        port = port_setup(
            PortConfig(f"{pair.b.ifname}:0", "net_af_packet", umem=umem, pool=pool, **kw)
        )
    with pair.a.enter():
        peer = RawPeer(pair.a.ifname)
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 24)
    return port, peer


def drain(port, umem, pv, want, timeout=5.0, match=None):
    return drain_port(port, umem, pv, want, match=match, timeout=timeout)


def test_rx_ring_wraps_many_times_in_order(veth_pair, umem):
    port, peer = open_port(veth_pair, umem, rx_nb_desc=64)
    assert port.rx_desc() == 64
    frames = [frame(veth_pair, i, size=60 + i % 300) for i in range(2000)]
    got: list[bytes] = []
    pv = PktVec(48)  # bursts do not divide the ring: every slot index is a burst start
    try:
        for lo in range(0, len(frames), 40):
            peer.send(frames[lo : lo + 40])
            got += drain(port, umem, pv, 40)
    finally:
        peer.close()
    assert got == frames  # exact bytes, in order, across ~30 wraps
    assert port.stats()["imissed"] == 0


def test_full_rx_ring_counts_missed_frames(veth_pair, umem):
    port, peer = open_port(veth_pair, umem, rx_nb_desc=64)
    try:
        peer.send([frame(veth_pair, i) for i in range(300)])
        time.sleep(0.1)
        got = drain(port, umem, PktVec(64), 300, timeout=0.5)
    finally:
        peer.close()
    st = port.stats()
    assert 0 < len(got) <= 64
    assert st["imissed"] >= 300 - 64  # the kernel counted what did not fit
    port.reset_stats()
    assert port.stats()["imissed"] == 0


def test_frames_too_big_for_a_umem_frame_are_dropped(veth_pair, umem):
    pool = Mempool.for_region(umem, 0)
    for h in veth_pair.hosts:
        r = h.run(["ip", "link", "set", h.ifname, "mtu", "3000"])
        assert r.returncode == 0, r.stderr
    port, peer = open_port(veth_pair, umem, pool=pool)
    big = frame(veth_pair, 1, size=2500)  # > 2048 - 256 bytes
    small = [frame(veth_pair, i, size=100) for i in (2, 3)]
    try:
        peer.send([small[0], big, small[1]])
        got = drain(port, umem, PktVec(8), 2)
    finally:
        peer.close()
    assert got == small
    st = port.stats()
    assert st["rx_invalid"] == 1 and st["ierrors"] == 1
    port.close()
    assert pool.avail == pool.capacity


def test_own_transmissions_are_not_received(veth_pair, umem):
    port, peer = open_port(veth_pair, umem)
    try:
        pv = PktVec(16)
        port.buf_alloc(pv, 16)
        for i in range(16):
            f = frame(veth_pair, 100 + i, reverse=True)
            off = int(pv.addr[i])
            umem.data[off : off + len(f)] = np.frombuffer(f, np.uint8)
            pv.data_len[i] = len(f)
        assert port.tx_burst(pv) == 16
        assert port.flush(2.0)
        assert len(peer.recv_until(16, match=is_udp_to(9))) == 16
        ours = drain(
            port,
            umem,
            PktVec(16),
            1,
            timeout=0.3,
            match=lambda d: is_udp_to(9)(d) and seq_of(d) >= 100,
        )
    finally:
        peer.close()
    assert ours == []
    assert port.stats()["tx_kicks"] >= 1


def test_tx_ring_smaller_than_a_burst(veth_pair, umem):
    """A burst larger than the TX ring is taken in part; the caller keeps the rest."""
    port, peer = open_port(veth_pair, umem, tx_nb_desc=8)
    want = [frame(veth_pair, i, size=80, reverse=True) for i in range(20)]
    try:
        pv = PktVec(20)
        port.buf_alloc(pv, 20)
        for i, f in enumerate(want):
            off = int(pv.addr[i])
            umem.data[off : off + len(f)] = np.frombuffer(f, np.uint8)
            pv.data_len[i] = len(f)
        sent = 0
        deadline = time.monotonic() + 5
        while pv.n and time.monotonic() < deadline:
            k = port.tx_burst(pv)
            assert k <= 8
            sent += k
            pv = pv.select(np.arange(k, pv.n))
        assert sent == 20
        got = peer.recv_until(20, match=is_udp_to(9))
    finally:
        peer.close()
    assert sorted(got, key=seq_of) == want
