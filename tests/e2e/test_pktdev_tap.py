"""net_tap specifics: the device's life cycle as `ip link` sees it, the Linux stack as a peer
through the TAP, truncated frames, and the cost of the per-packet read/write loop."""

from __future__ import annotations

import socket
import subprocess
import time

import numpy as np
import pytest

from cndp import pktdev
from cndp.errors import NetdevError
from cndp.mem import Mempool, PktVec, Umem
from cndp.net.frames import udp4_frame
from cndp.pktdev import PortConfig, port_setup
from cndp.sys import netdev

from .xsk_helpers import RawPeer, drain_port, is_udp_to


@pytest.fixture(autouse=True)
def _close_ports():
    yield
    pktdev.close_all()


@pytest.fixture
def umem():
    with Umem(4096, 2048) as u:
        yield u


def ip_link(host, *args: str) -> subprocess.CompletedProcess:
    return host.run(["ip", "-d", "link", "show", *args])


def rx_all(port, pv: PktVec, umem: Umem, want: int, match, timeout: float = 5.0) -> list[bytes]:
    return drain_port(port, umem, pv, want, match=match, timeout=timeout)


def test_tap_is_visible_in_ip_link_while_open_and_removed_on_close(veth_pair, umem):
    b = veth_pair.b
    name = f"{veth_pair.prefix}t1"
    with b.enter():
        port = port_setup(PortConfig("tap:0", "net_tap", ifname=name, umem=umem))
    shown = ip_link(b, name)
    assert shown.returncode == 0, shown.stderr
    assert "tun type tap" in shown.stdout and "UP" in shown.stdout
    assert port.mac.hex(":") in shown.stdout
    # created in the namespace we were in, not in ours
    with pytest.raises(NetdevError):
        netdev.ifindex(name)
    port.close()
    gone = ip_link(b, name)
    assert gone.returncode != 0 and "does not exist" in gone.stderr


def test_existing_persistent_tap_is_attached_and_kept(veth_pair, umem):
    b = veth_pair.b
    name = f"{veth_pair.prefix}t2"
    r = b.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"])
    assert r.returncode == 0, r.stderr
    try:
        with b.enter():
            port = port_setup(PortConfig("tap:0", "net_tap", ifname=name, umem=umem))
            assert port.ifname == name and netdev.is_up(name)
        port.close()
        assert ip_link(b, name).returncode == 0  # not ours to remove
    finally:
        b.run(["ip", "link", "del", name])


def test_linux_stack_talks_to_the_port_through_the_tap(veth_pair, umem):
    """A kernel UDP socket sends through the TAP to us; a frame we write reaches the socket."""
    b = veth_pair.b
    name = f"{veth_pair.prefix}t3"
    with b.enter():
        port = port_setup(PortConfig("tap:0", "net_tap", ifname=name, umem=umem))
    our_mac = "02:00:c6:12:05:02"
    for cmd in (
        ["ip", "addr", "add", "198.18.5.1/24", "dev", name],
        ["ip", "neigh", "replace", "198.18.5.2", "lladdr", our_mac, "dev", name],
    ):
        r = b.run(cmd)
        assert r.returncode == 0, r.stderr
    with b.enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("198.18.5.1", 4000))
        sock.settimeout(2)
        sock.sendto(b"hello from linux", ("198.18.5.2", 9))
        pv = PktVec(32)
        got = rx_all(port, pv, umem, 1, is_udp_to(9))
        assert len(got) == 1
        f = got[0]
        assert f[:6] == bytes.fromhex(our_mac.replace(":", "")) and f[6:12] == port.mac
        assert f[42:] == b"hello from linux"
        # and back: a frame we write is received by the kernel's UDP socket
        reply = udp4_frame(our_mac, port.mac, "198.18.5.2", "198.18.5.1", 9, 4000, 60)
        pv.n = 0
        assert port.buf_alloc(pv, 1) == 1
        off = int(pv.addr[0])
        umem.data[off : off + len(reply)] = np.frombuffer(reply, np.uint8)
        pv.data_len[0] = len(reply)
        assert port.tx_burst(pv) == 1
        data, src = sock.recvfrom(2048)
        assert src == ("198.18.5.2", 9) and data == reply[42:]
    finally:
        sock.close()


def test_truncated_frames_are_dropped_as_errors(veth_pair, umem):
    b = veth_pair.b
    name = f"{veth_pair.prefix}t4"
    pool = Mempool.for_region(umem, 0)
    with b.enter():
        port = port_setup(PortConfig("tap:0", "net_tap", ifname=name, umem=umem, pool=pool))
        netdev.set_mtu(name, 3000)  # behind the port's back: frames now exceed UMEM frames
        peer = RawPeer(name)
    try:
        mac = port.mac
        big = udp4_frame("02:00:c6:12:00:01", mac, size=2500)
        small = udp4_frame("02:00:c6:12:00:01", mac, size=100)
        peer.send([big, small])
        pv = PktVec(16)
        got = rx_all(port, pv, umem, 1, is_udp_to(9))
    finally:
        peer.close()
    assert got == [small]
    assert port.stats()["ierrors"] == 1
    port.close()
    assert pool.avail == pool.capacity  # the dropped frame's buffer went back too


def test_per_packet_loop_cost(veth_pair, umem):
    """The TAP loop is the one per-packet Python loop of pktdev: measure it.

    Prints microseconds per packet for RX (read) and TX (write), syscall included. The bound
    asserted is loose (a regression to a slow path, not a benchmark).
    """
    b = veth_pair.b
    name = f"{veth_pair.prefix}t5"
    pool = Mempool.for_region(umem, 0)
    with b.enter():
        port = port_setup(PortConfig("tap:0", "net_tap", ifname=name, umem=umem, pool=pool))
        peer = RawPeer(name)
    n = 4000
    try:
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 24)
        # not addressed to the TAP: the kernel drops what we write early, so the figure is
        # the loop and the syscall, not the IP stack
        dst = "02:00:c6:12:00:09"
        frames = [udp4_frame("02:00:c6:12:00:01", dst, sport=1000 + i % 1000) for i in range(n)]
        pv = PktVec(64)
        got = 0
        rx_time = 0.0
        for lo in range(0, n, 500):  # stays below the TAP's queue (txqueuelen 1000)
            peer.send(frames[lo : lo + 500])
            while True:
                t0 = time.perf_counter()
                k = port.rx_burst(pv)
                rx_time += time.perf_counter() - t0
                if not k:
                    break
                got += k
                port.buf_free(pv.addr[:k])
        # TX: the same 64 frames over and over (tx_burst frees them: take them back)
        pv.n = 0
        assert port.buf_alloc(pv, 64) == 64
        addrs = pv.addr[:64].copy()
        tmpl = np.frombuffer(frames[0], np.uint8)
        for a in addrs.tolist():
            umem.data[a : a + len(tmpl)] = tmpl
        tx_time = 0.0
        sent = 0
        for _ in range(n // 64):
            pv.n = 64
            pv.addr[:64] = addrs
            pv.data_len[:64] = len(tmpl)
            t0 = time.perf_counter()
            sent += port.tx_burst(pv)
            tx_time += time.perf_counter() - t0
            assert pool.get_burst(64).size == 64  # re-own the frames tx_burst freed
        pool.put_bulk(addrs)
    finally:
        peer.close()
    assert got >= n and sent == (n // 64) * 64
    rx_us = rx_time / got * 1e6
    tx_us = tx_time / sent * 1e6
    print(f"\nnet_tap per-packet cost: rx {rx_us:.2f} us, tx {tx_us:.2f} us")
    assert rx_us < 50 and tx_us < 50
