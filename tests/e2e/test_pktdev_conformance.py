"""The pktdev conformance suite: every port driver passes the same tests.

Drivers with a kernel device run on real ones: AF_XDP (native and generic XDP) and AF_PACKET on
one end of a veth pair whose other end, in another namespace, is the Linux peer; the TAP driver
creates its TAP device inside a test namespace and the Linux peer is an AF_PACKET socket on that
TAP. net_ring (its peer is itself: loopback) and net_null (a sink) need nothing.

The checks follow CNDP's pktdev test (setup, bad PMD name, bad ifname, admin state, MAC,
offloads, promiscuous mode, port ids and counts, info error codes, name lookups, close) and add
traffic: exact bytes both ways, statistics, and that every frame is back in the pool after
close.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from cndp import pktdev
from cndp.errors import ConfigError, NetdevError
from cndp.mem import Mempool, PktVec, Umem
from cndp.pktdev import (
    MAX_ETHPORTS,
    PKTDEV_ADMIN_STATE_DOWN,
    STAT_KEYS,
    Offloads,
    Port,
    PortConfig,
    PortError,
    port_setup,
)
from cndp.sys import netdev
from cndp.testing import netns as testnet

from .xsk_helpers import RawPeer, frame, is_udp_to, seq_of

TRAFFIC_KEYS = STAT_KEYS[:10]  # ipackets .. tx_invalid: zero on a fresh port of any driver


@dataclass
class Env:
    """How to run one driver: where its port lives and who its peer is."""

    key: str
    pmd: str
    ifname: str
    kind: str  # "linux" (a Linux peer), "loopback" (net_ring) or "sink" (net_null)
    host: testnet.Host | None = None  # namespace of the port
    peer_host: testnet.Host | None = None
    peer_ifname: str = ""
    pair: testnet.VethPair | None = None
    extra: dict = field(default_factory=dict)
    bad_ifnames: tuple[str, ...] = ()
    expect_mac: bytes | None = None

    @property
    def has_netdev(self) -> bool:
        return self.kind == "linux"

    def enter(self) -> contextlib.AbstractContextManager[None]:
        return self.host.enter() if self.host is not None else contextlib.nullcontext()

    def cfg(self, umem: Umem | None, **kw) -> PortConfig:
        args = {"ifname": self.ifname, "umem": umem, **self.extra, **kw}
        name = args.pop("name", f"{self.ifname}:0")
        pmd = args.pop("pmd", self.pmd)
        return PortConfig(name, pmd, **args)

    def setup(self, umem: Umem | None, **kw) -> Port:
        with self.enter():
            return port_setup(self.cfg(umem, **kw))

    def peer(self) -> RawPeer:
        assert self.peer_host is not None
        with self.peer_host.enter():
            return RawPeer(self.peer_ifname)

    def frame_in(self, seq: int, size: int = 60) -> bytes:
        """A frame the peer sends to the port."""
        return frame(self.pair, seq, size=size)

    def frame_out(self, seq: int, size: int = 60) -> bytes:
        """A frame the port sends to the peer."""
        return frame(self.pair, seq, size=size, reverse=True)


DRIVERS = ["af_xdp_drv", "af_xdp_skb", "af_packet", "tap", "ring", "null"]


@pytest.fixture(scope="module", params=DRIVERS)
def env(request) -> Iterator[Env]:
    key = request.param
    if key in ("ring", "null"):
        name = "ring0" if key == "ring" else "null0"
        yield Env(key, f"net_{key}", name, "loopback" if key == "ring" else "sink")
        return
    pair = testnet.make_veth_pair()
    try:
        a, b = pair.a, pair.b
        if key == "tap":
            tap = f"{pair.prefix}t0"
            e = Env(key, "net_tap", tap, "linux", b, b, tap, pair)
            # "lo" exists but is not a TAP; the others are not interface names at all
            e.bad_ifnames = ("lo", "x" * 16, "a/b")
        else:
            pmd = "net_af_packet" if key == "af_packet" else "net_af_xdp"
            e = Env(key, pmd, b.ifname, "linux", b, a, a.ifname, pair)
            e.bad_ifnames = ("UNKNOWN",)
            e.expect_mac = b.mac_bytes
            if pmd == "net_af_xdp":
                e.extra = {"skb_mode": key.endswith("skb"), "rx_nb_desc": 512, "tx_nb_desc": 512}
        yield e
    finally:
        pair.close()


@pytest.fixture
def umem() -> Iterator[Umem]:
    with Umem(4096, 2048) as u:
        yield u


@pytest.fixture
def pool(umem) -> Mempool:
    return Mempool.for_region(umem, 0, name="test")


@pytest.fixture(autouse=True)
def _close_ports() -> Iterator[None]:
    assert pktdev.port_count() == 0
    yield
    pktdev.close_all()


# --------------------------------------------------------------------------------------------
# helpers (test setup: per-packet Python loops are fine here)


def write_frames(umem: Umem, pv: PktVec, frames: list[bytes]) -> None:
    for i, f in enumerate(frames):
        off = int(pv.addr[i])
        umem.data[off : off + len(f)] = np.frombuffer(f, np.uint8)
        pv.data_len[i] = len(f)


def read_frames(umem: Umem, pv: PktVec) -> list[bytes]:
    return [
        bytes(umem.data[int(a) : int(a) + int(n)])
        for a, n in zip(pv.addr[: pv.n], pv.data_len[: pv.n], strict=True)
    ]


def send_all(port: Port, umem: Umem, frames: list[bytes], burst: int = 32) -> None:
    """Transmit every frame (frames from the port's pool), retrying what tx_burst leaves."""
    for lo in range(0, len(frames), burst):
        chunk = frames[lo : lo + burst]
        pv = PktVec(burst)
        assert port.buf_alloc(pv, len(chunk)) == len(chunk)
        write_frames(umem, pv, chunk)
        deadline = time.monotonic() + 5
        while pv.n:
            k = port.tx_burst(pv)
            assert k != PKTDEV_ADMIN_STATE_DOWN
            if k:
                pv = pv.select(np.arange(k, pv.n))
            assert time.monotonic() < deadline, "tx_burst made no progress"
    assert port.flush(2.0)


@dataclass
class Rx:
    matching: list[bytes]
    count: int  # every packet received, matching or not
    nbytes: int


def receive(
    port: Port,
    umem: Umem,
    want: int,
    match: Callable[[bytes], bool],
    timeout: float = 5.0,
    burst: int = 64,
) -> Rx:
    """Receive until ``want`` matching frames came (their frames are freed at once)."""
    pv = PktVec(burst)
    out = Rx([], 0, 0)
    fd = port.fileno()
    poller = None
    if fd is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while len(out.matching) < want and time.monotonic() < deadline:
        k = port.rx_burst(pv)
        assert k != PKTDEV_ADMIN_STATE_DOWN
        if k:
            assert (pv.port[:k] == port.lport).all()
            for data in read_frames(umem, pv):
                out.count += 1
                out.nbytes += len(data)
                if match(data):
                    out.matching.append(data)
            port.buf_free(pv.addr[:k])
        elif poller is not None:
            poller.poll(20)
    return out


def is_ours(data: bytes) -> bool:
    return is_udp_to(9)(data)


# --------------------------------------------------------------------------------------------
# setup, names, ids


def test_setup_succeeds_and_registers(env, umem):
    before = pktdev.port_count()
    port = env.setup(umem)
    lport = port.lport
    assert 0 <= lport < MAX_ETHPORTS
    assert pktdev.port_count() == before + 1 > 0
    assert pktdev.get_port(lport) is port and pktdev.is_valid_port(lport)
    assert port.admin_state and pktdev.admin_state(lport)
    # name <-> port
    assert pktdev.get_port_by_name(port.name) == lport
    assert pktdev.port_name(lport) == port.name == f"{env.ifname}:0"
    # info, and CNDP's error codes around it
    inf = pktdev.info(lport)
    assert (inf.lport, inf.driver_name, inf.ifname, inf.admin_state) == (
        lport,
        env.pmd,
        port.ifname,
        True,
    )
    assert inf.socket_id >= 0 and port.socket_id >= 0
    assert inf.rx_desc > 0 or env.kind == "sink"
    with pytest.raises(PortError) as ei:
        pktdev.info(lport + 1)
    assert ei.value.errno == errno.ENOTSUP
    with pytest.raises(PortError) as ei:
        pktdev.info(MAX_ETHPORTS + 1)
    assert ei.value.errno == errno.ENODEV
    assert not pktdev.is_valid_port(lport + 1)
    assert port.name in port.cfg.dump()
    if env.has_netdev:
        with env.enter():
            assert inf.if_index == netdev.ifindex(port.ifname) > 0
    # a second port with the same name is refused
    with pytest.raises(ConfigError, match="already exists"):
        env.setup(umem)
    port.close()
    assert pktdev.port_count() == before
    with pytest.raises(PortError):
        pktdev.get_port_by_name(port.name)


def test_invalid_pmd_name_fails(env, umem, pool):
    # CNDP's pktdev test uses "net_af_xdp_" for the AF_XDP case
    with pytest.raises(ConfigError) as ei:
        env.setup(umem, pmd=env.pmd + "_", pool=pool)
    assert "unknown PMD" in str(ei.value) and env.pmd in str(ei.value)
    assert pktdev.port_count() == 0
    assert pool.avail == pool.capacity


def test_invalid_ifname_fails(env, umem, pool):
    if not env.bad_ifnames:
        # ring and null: the ifname is only a name (CNDP checks ifnames for af_xdp only)
        port = env.setup(umem, ifname="UNKNOWN", name="any:0", pool=pool)
        assert port.ifname == "UNKNOWN"
        port.close()
        return
    for bad in env.bad_ifnames:
        with pytest.raises(NetdevError) as ei:
            env.setup(umem, ifname=bad, name="bad:0", pool=pool)
        assert ei.value.errno in (errno.ENODEV, errno.EINVAL), (bad, ei.value)
        assert pktdev.port_count() == 0
        assert pool.avail == pool.capacity  # nothing kept from the failed setup
    if env.pmd == "net_tap":
        with env.enter():
            assert netdev.is_up("lo")  # the existing device was left alone


# --------------------------------------------------------------------------------------------
# admin state and control calls


def test_admin_state_down_and_up(env, umem):
    port = env.setup(umem)
    pv = PktVec(8)
    assert port.buf_alloc(pv, 4) == 4
    port.set_admin_state(False)
    assert not port.admin_state and not pktdev.admin_state(port.lport)
    assert port.rx_burst(pv) == PKTDEV_ADMIN_STATE_DOWN == 0xFFFF
    assert port.tx_burst(pv) == PKTDEV_ADMIN_STATE_DOWN
    assert pktdev.rx_burst(port.lport, pv) == PKTDEV_ADMIN_STATE_DOWN
    assert pv.n == 4  # untouched: the 4 frames are still ours
    assert all(port.stats()[k] == 0 for k in ("ipackets", "opackets"))
    port.set_admin_state(True)
    assert port.admin_state
    pv.data_len[:4] = 60
    assert port.tx_burst(pv) == 4
    got = port.rx_burst(PktVec(8))
    assert 0 <= got <= 8
    port.stop()
    assert port.rx_burst(pv) == PKTDEV_ADMIN_STATE_DOWN
    port.start()
    assert port.rx_burst(PktVec(8)) != PKTDEV_ADMIN_STATE_DOWN


def test_mac_and_mtu(env, umem):
    port = env.setup(umem)
    mac = port.mac
    assert isinstance(mac, bytes) and len(mac) == 6
    assert pktdev.macaddr_get(port.lport) == mac
    assert port.mtu == 1500
    if env.has_netdev:
        with env.enter():
            assert mac == netdev.get_mac(port.ifname)
        if env.expect_mac is not None:
            assert mac == env.expect_mac
        # control calls act in the port's namespace whatever the caller's: we are outside now
        assert testnet.current_netns_inode() != _ns_inode(env.host)
        assert port.mac == mac and port.link_up()
    port.set_mtu(1400)
    assert port.mtu == 1400
    if env.has_netdev:
        with env.enter():
            assert netdev.get_mtu(port.ifname) == 1400
    port.set_mtu(1500)
    assert port.info().mtu == 1500
    with pytest.raises(ConfigError):
        port.set_mtu(20)
    if env.has_netdev:
        # received frames land in 2048-byte UMEM frames: 1792 bytes after the headroom
        with pytest.raises(ConfigError, match="does not fit"):
            port.set_mtu(9000)
        assert port.mtu == 1500


def _ns_inode(host: testnet.Host | None) -> int:
    assert host is not None
    return os.stat(f"/var/run/netns/{host.ns}").st_ino


def test_promiscuous(env, umem):
    port = env.setup(umem)
    if not env.has_netdev:
        with pytest.raises(PortError) as ei:
            port.promiscuous(True)
        assert ei.value.errno == errno.ENOTSUP
        return
    with env.enter():
        assert not netdev.is_promisc(port.ifname)
    port.promiscuous(True)
    assert port.is_promiscuous()
    with env.enter():
        assert netdev.is_promisc(port.ifname)
    port.close()
    if env.pmd != "net_tap":  # (the TAP itself is gone)
        with env.enter():
            assert not netdev.is_promisc(env.ifname)  # close restored the old state


def test_link_offloads_and_fd(env, umem):
    port = env.setup(umem)
    assert port.link_up() is True
    off = port.offloads()
    assert isinstance(off, Offloads) and pktdev.offloads_get(port.lport) == off
    fd = port.fileno()
    if env.has_netdev:
        assert isinstance(fd, int) and fd >= 0
        assert port.info().rx_fd == fd
    else:
        assert fd is None and port.info().rx_fd == -1


# --------------------------------------------------------------------------------------------
# traffic


def test_frames_arrive_with_exact_bytes(env, umem):
    port = env.setup(umem)
    if env.kind == "sink":
        pv = PktVec(64)
        assert port.rx_burst(pv, 40) == 40
        assert (pv.data_len[:40] == 64).all() and (pv.port[:40] == port.lport).all()
        assert len(set(pv.addr[:40].tolist())) == 40  # 40 distinct frames
        return
    if env.kind == "loopback":
        sent = [frame_bytes(i, 60 + i * 29) for i in range(50)]
        send_all(port, umem, sent)
        got = receive(port, umem, 50, lambda d: True)
        assert got.matching == sent  # same bytes, same order
        return
    peer = env.peer()
    try:
        sent = [env.frame_in(i, size=60 + (i * 37) % 1400) for i in range(150)]
        peer.send(sent[:10])
        # rx_burst honours n
        pv = PktVec(64)
        deadline = time.monotonic() + 5
        k = 0
        while k == 0 and time.monotonic() < deadline:
            k = port.rx_burst(pv, 3)
        assert 1 <= k <= 3
        first = [d for d in read_frames(umem, pv) if is_ours(d)]
        port.buf_free(pv.addr[:k])
        peer.send(sent[10:])
        got = receive(port, umem, len(sent) - len(first), is_ours)
    finally:
        peer.close()
    # The Linux side may add its own frames (IPv6 ND, MLD); ours are all there, exact.
    assert sorted(first + got.matching, key=seq_of) == sent


def frame_bytes(seq: int, size: int) -> bytes:
    return bytes((seq * 31 + j) & 0xFF for j in range(size))


def test_frames_sent_arrive_with_exact_bytes(env, umem, pool):
    port = env.setup(umem, pool=pool)
    if env.kind == "sink":
        pv = PktVec(32)
        port.buf_alloc(pv, 32)
        assert pool.avail == pool.capacity - 32
        assert port.tx_burst(pv, 20) == 20  # only the first 20 are consumed
        assert pool.avail == pool.capacity - 12
        return
    if env.kind == "loopback":
        pv = PktVec(32)
        port.buf_alloc(pv, 32)
        write_frames(umem, pv, [frame_bytes(i, 100) for i in range(32)])
        assert port.tx_burst(pv, 20) == 20
        back = PktVec(64)
        assert port.rx_burst(back) == 20
        assert read_frames(umem, back) == [frame_bytes(i, 100) for i in range(20)]
        return
    want = [env.frame_out(i, size=60 + i * 11) for i in range(120)]
    peer = env.peer()
    try:
        send_all(port, umem, want)
        got = peer.recv_until(len(want), match=is_ours)
    finally:
        peer.close()
    assert sorted(got, key=seq_of) == want
    # every sent frame went back to the pool (AF_XDP keeps its fill ring stocked)
    held = port.dev.fill_target if env.pmd == "net_af_xdp" else 0  # type: ignore[attr-defined]
    if env.pmd == "net_tap":
        held = port.stats()["rx_buf_alloc"]  # the RX frame cache
    assert pool.avail == pool.capacity - held


def test_stats_start_at_zero_count_traffic_and_reset(env, umem):
    port = env.setup(umem)
    st = port.stats()
    assert set(st) >= set(STAT_KEYS) and list(st)[:10] == list(TRAFFIC_KEYS)
    assert all(st[k] == 0 for k in TRAFFIC_KEYS), st
    n_in, n_out = 25, 15
    out_frames = [
        env.frame_out(i, 70 + i) if env.pair else frame_bytes(i, 70 + i) for i in range(n_out)
    ]
    if env.kind == "linux":
        peer = env.peer()
        try:
            peer.send([env.frame_in(i, 80 + i) for i in range(n_in)])
            rx = receive(port, umem, n_in, is_ours)
            send_all(port, umem, out_frames)
            assert len(peer.recv_until(n_out, match=is_ours)) == n_out
        finally:
            peer.close()
        assert len(rx.matching) == n_in
        rx_count, rx_bytes = rx.count, rx.nbytes
    elif env.kind == "loopback":
        send_all(port, umem, out_frames)
        rx = receive(port, umem, n_out, lambda d: True)
        rx_count, rx_bytes = rx.count, rx.nbytes
    else:
        pv = PktVec(64)
        assert port.rx_burst(pv, n_in) == n_in
        port.buf_free(pv.addr[:n_in])
        send_all(port, umem, out_frames)
        rx_count, rx_bytes = n_in, 64 * n_in
    st = port.stats()
    assert st["ipackets"] == rx_count and st["ibytes"] == rx_bytes
    assert st["opackets"] == n_out and st["obytes"] == sum(len(f) for f in out_frames)
    assert st["ierrors"] == st["oerrors"] == st["rx_invalid"] == st["tx_invalid"] == 0
    assert pktdev.stats_get(port.lport)["opackets"] == n_out
    port.reset_stats()
    st = port.stats()
    assert all(v == 0 for v in st.values()), {k: v for k, v in st.items() if v}


def test_close_twice_and_every_frame_back_in_the_pool(env, umem, pool):
    port = env.setup(umem, pool=pool)
    frames = [env.frame_out(i, 64) if env.pair else frame_bytes(i, 64) for i in range(40)]
    if env.kind == "linux":
        peer = env.peer()
        try:
            peer.send([env.frame_in(i) for i in range(30)])
            receive(port, umem, 30, is_ours)
            send_all(port, umem, frames)
            # leave a few frames waiting on the RX side
            peer.send([env.frame_in(i) for i in range(5)])
            time.sleep(0.05)
        finally:
            peer.close()
    elif env.kind == "loopback":
        send_all(port, umem, frames)  # and leave them queued in the ring
        assert port.queued() == 40  # type: ignore[attr-defined]
    else:
        pv = PktVec(64)
        port.rx_burst(pv)
        port.tx_burst(pv)
    if env.kind == "loopback":
        assert pool.avail == pool.capacity - 40
    lport = port.lport
    port.close()
    port.close()  # idempotent
    assert pool.avail == pool.capacity
    assert not pktdev.is_valid_port(lport) and pktdev.port_count() == 0
    assert port.rx_burst(PktVec(4)) == PKTDEV_ADMIN_STATE_DOWN
    assert port.tx_burst(PktVec(4)) == PKTDEV_ADMIN_STATE_DOWN
    if env.pmd == "net_tap":
        with env.enter():
            with pytest.raises(NetdevError):
                netdev.ifindex(env.ifname)  # the TAP device went with the port
