"""xskdev on real AF_XDP sockets in network namespaces, against the Linux peer."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cndp.bpf import asm, progs, xdp
from cndp.bpf.trafficgen import LiveFrameGen
from cndp.errors import ConfigError, NetdevError, PrivilegeError, XdpBusyError, XskError
from cndp.mem import Mempool, PktVec, Umem, gather, mac_swap, scatter
from cndp.net.frames import udp4_frame
from cndp.sys import bpf as sysbpf
from cndp.sys import xsk as sx
from cndp.xskdev.xskdev import XskConfig, XskDev

from .xsk_helpers import RawPeer, frame, is_udp_to, seq_of

MODES = [pytest.param(False, id="drv"), pytest.param(True, id="skb")]


def _rx_until(dev: XskDev, pv: PktVec, count: int, timeout: float = 5.0):
    """Receive ``count`` frames: returns (addrs, lens) copied out of the vector."""
    addrs, lens = [], []
    deadline = time.monotonic() + timeout
    got = 0
    while got < count and time.monotonic() < deadline:
        k = dev.rx_burst(pv)
        if k:
            addrs.append(pv.addr[:k].copy())
            lens.append(pv.data_len[:k].copy())
            got += k
        else:
            dev.poll(20)
    if not addrs:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint16)
    return np.concatenate(addrs), np.concatenate(lens)


@pytest.mark.parametrize("skb_mode", MODES)
def test_frames_from_linux_arrive_with_exact_bytes(veth_pair, skb_mode):
    a, b = veth_pair.a, veth_pair.b
    sent = [frame(veth_pair, i, size=60 + (i * 37) % 1400) for i in range(200)]
    with b.enter(), Umem(4096) as umem, XskDev(XskConfig(b.ifname, skb_mode=skb_mode), umem) as dev:
        assert xdp.query(b.ifname).mode == ("skb" if skb_mode else "drv")
        with a.enter():
            peer = RawPeer(a.ifname)
        try:
            peer.send(sent)
            addrs, lens = _rx_until(dev, PktVec(64), len(sent))
        finally:
            peer.close()
        got = [bytes(umem.data[int(x) : int(x) + int(n)]) for x, n in zip(addrs, lens, strict=True)]
        # The Linux side may add its own frames (IPv6 ND, ...); ours must all be there, exact.
        ours = sorted((g for g in got if is_udp_to(9)(g)), key=seq_of)
        assert ours == sent
        st = dev.stats()
        assert st["ipackets"] >= len(sent)
        assert st["ibytes"] >= sum(len(f) for f in sent)
        assert st["imissed"] == 0 and st["rx_invalid"] == 0
    with b.enter():
        assert xdp.query(b.ifname) is None  # close detached our program


@pytest.mark.parametrize("skb_mode", MODES)
def test_frames_we_send_arrive_at_linux_with_exact_bytes(veth_pair, skb_mode):
    a, b = veth_pair.a, veth_pair.b
    want = [frame(veth_pair, i, size=60 + i * 11, reverse=True) for i in range(100)]
    with a.enter():
        peer = RawPeer(a.ifname)
    try:
        with (
            b.enter(),
            Umem(4096) as umem,
            XskDev(XskConfig(b.ifname, skb_mode=skb_mode), umem) as dev,
        ):
            sent = 0
            for lo in range(0, len(want), 32):
                chunk = want[lo : lo + 32]
                pv = PktVec(32)
                assert pv.alloc_from(dev.pool, len(chunk)) == len(chunk)
                for i, f in enumerate(chunk):  # test setup only: build frames one by one
                    off = int(pv.addr[i])
                    umem.data[off : off + len(f)] = np.frombuffer(f, np.uint8)
                    pv.data_len[i] = len(f)
                assert dev.tx_burst(pv) == len(chunk)
                sent += len(chunk)
            assert dev.flush(2.0)
            got = peer.recv_until(len(want), match=is_udp_to(9))
            st = dev.stats()
            assert st["opackets"] == len(want)
            assert st["obytes"] == sum(len(f) for f in want)
            assert st["cq_buf_freed"] == len(want)
            # every completed frame went back; the rest wait in the fill ring for RX
            assert dev.pool.avail == dev.pool.capacity - dev.fill_target
    finally:
        peer.close()
    assert sorted(got, key=seq_of) == want


def test_sent_frames_decode_cleanly_in_tshark(veth_pair, tmp_path):
    a, b = veth_pair.a, veth_pair.b
    pcap = tmp_path / "cap.pcap"
    cap = a.popen(
        ["tshark", "-i", a.ifname, "-w", str(pcap), "-c", "16", "-f", "udp port 9"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.5)  # tshark needs a moment before it captures
        with b.enter(), Umem(4096) as umem, XskDev(XskConfig(b.ifname), umem) as dev:
            f = udp4_frame(b.mac, a.mac, b.ipv4, a.ipv4)
            pv = PktVec(16)
            pv.alloc_from(dev.pool, 16)
            scatter(umem.data, pv.addr[:16], np.tile(np.frombuffer(f, np.uint8), (16, 1)))
            pv.data_len[:16] = len(f)
            assert dev.tx_burst(pv) == 16
            assert dev.flush(2.0)
        cap.wait(10)
    finally:
        if cap.poll() is None:
            cap.terminate()
            cap.wait(5)
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-V",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("User Datagram Protocol, Src Port: 9, Dst Port: 9") == 16
    assert "Malformed" not in out and "[Checksum Status: Bad]" not in out
    assert out.count("[Checksum Status: Good]") >= 16


def _send_from_cpus(a, f: bytes, n: int, cpus) -> None:
    """n live frames from each CPU in turn: veth picks the peer's rx queue by the sending
    CPU, so on a 2-queue pair CPU c's frames arrive on queue c."""
    for cpu in cpus:

        def send(cpu=cpu):
            os.sched_setaffinity(0, {cpu})
            with a.enter(), LiveFrameGen(a.ifname, f) as g:
                g.send(n)

        th = threading.Thread(target=send)
        th.start()
        th.join()


@pytest.mark.parametrize("tx_qid", [None, 1], ids=["same-socket", "tx_qid"])
def test_mac_swap_loopback_returns_every_frame(make_pair, tx_qid):
    """Every frame comes back MAC-swapped, also when TX goes through the tx_qid socket
    (queue 1, sharing the UMEM), which must receive nothing itself."""
    pair = make_pair(rxqueues=2, txqueues=2)
    a, b = pair.a, pair.b
    # veth delivers on the peer's RX queue of the sender's TX queue: A sends on one queue
    # only, so every frame reaches B's queue 0, where our socket is
    r = a.run(["ethtool", "-L", a.ifname, "tx", "1"])
    assert r.returncode == 0, r.stderr
    n = 3000
    sent = [frame(pair, i) for i in range(n)]
    stop = threading.Event()
    errors: list[BaseException] = []
    ready = threading.Event()
    stats: dict[str, int] = {}

    def forwarder():
        try:
            cfg = XskConfig(b.ifname, 0, tx_qid=tx_qid)
            with b.enter(), Umem(8192) as umem, XskDev(cfg, umem) as dev:
                assert (dev._txsock is not None) == (tx_qid is not None)
                pv = PktVec(64)
                ready.set()
                while not stop.is_set():
                    k = dev.rx_burst(pv)
                    if not k:
                        dev.tx_burst(pv, 0)
                        dev.poll(5)
                        continue
                    mac_swap(umem.data, pv.addr[:k])
                    s = dev.tx_burst(pv, k)
                    if s < k:
                        dev.pool.put_bulk(pv.addr[s:k])
                dev.flush(1.0)
                stats.update(dev.stats())
        except BaseException as e:
            errors.append(e)
            ready.set()

    t = threading.Thread(target=forwarder)
    t.start()
    try:
        assert ready.wait(10)
        with a.enter():
            peer = RawPeer(a.ifname)
        try:
            # In chunks, so neither the RX ring nor the socket buffer can overflow.
            got: list[bytes] = []
            for lo in range(0, n, 250):
                peer.send(sent[lo : lo + 250])
                got += peer.recv_until(min(250, n - lo), match=is_udp_to(9))
        finally:
            peer.close()
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors
    assert len(got) == n
    seqs = sorted(seq_of(g) for g in got)
    assert seqs == list(range(n))  # none lost, none duplicated
    by_seq = {seq_of(g): g for g in got}
    for i in (0, 1, n // 2, n - 1):
        f = sent[i]
        assert by_seq[i] == f[6:12] + f[0:6] + f[12:]  # MACs swapped, all else unchanged
    # the Linux side may add frames of its own (IPv6 ND): at least ours went both ways
    assert stats["opackets"] >= n and stats["ipackets"] >= n
    assert stats["tx_invalid"] == 0 and stats["rx_invalid"] == 0
    assert _nothing_attached(b)


def test_ring_wraparound_over_millions_of_frames(veth_pair):
    """Every frame address stays unique over ~3M frames (hundreds of ring laps)."""
    a, b = veth_pair.a, veth_pair.b
    f = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
    template = np.frombuffer(f, np.uint8)
    target = 3_000_000
    stop = threading.Event()
    result: dict = {}

    def receiver():
        try:
            with b.enter(), Umem(4096) as umem:
                pool = Mempool.for_region(umem, 0, debug=True)  # catches any double free
                with XskDev(
                    XskConfig(b.ifname, rx_size=512, tx_size=512, fill_size=1024), umem, pool=pool
                ) as dev:
                    result["ready"] = True
                    pv = PktVec(256)
                    got = bad = 0
                    while not stop.is_set() or dev.rx_burst(pv, 0) or False:
                        k = dev.rx_burst(pv)
                        if not k:
                            if stop.is_set():
                                break
                            dev.poll(5)
                            continue
                        if got % 97 == 0 or got < 10_000:  # content check on a sample
                            # frames of our length must be ours, byte for byte (the Linux
                            # side may add a frame of its own, e.g. IPv6 ND: other lengths)
                            ours = pv.addr[:k][pv.data_len[:k] == len(f)]
                            bad += int(
                                (gather(umem.data, ours, len(f)) != template).any(axis=1).sum()
                            )
                        u = np.unique(pv.frames(umem.bufsz))
                        assert len(u) == k, "a frame appeared twice in one burst"
                        pool.put_bulk(pv.addr[:k])
                        got += k
                    result["got"] = got
                    result["bad"] = bad
                    result["stats"] = dev.stats()
                    # the fill ring plus the pool hold every frame exactly once
                    fq = dev.fq
                    cons = fq._cons[0]
                    pend = (fq.cached_prod - cons) & 0xFFFFFFFF
                    idx = (np.arange(pend) + cons) & fq.mask
                    held = np.concatenate([pool.free_addrs(), fq.addr[idx]])
                    frames = held - held % np.uint64(umem.bufsz)
                    result["unique"] = len(np.unique(frames))
                    result["held"] = len(held)
                    result["capacity"] = pool.capacity
        except BaseException as e:
            result["error"] = e

    t = threading.Thread(target=receiver)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while "ready" not in result and "error" not in result and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "error" not in result, result.get("error")
        with a.enter(), LiveFrameGen(a.ifname, f) as gen:
            sent = gen.send(target).frames
    finally:
        time.sleep(0.5)
        stop.set()
        t.join(30)
    assert "error" not in result, result.get("error")
    st = result["stats"]
    assert result["bad"] == 0
    assert result["got"] == st["ipackets"]
    # no phantom frames: received plus what the socket dropped is at most what was sent
    assert result["got"] + st["imissed"] <= sent
    assert result["got"] > 0.3 * sent
    assert st["ipackets"] // 512 > 1000  # the 512-entry RX ring wrapped over a thousand times
    assert result["unique"] == result["held"], "a frame address is held twice"
    # in flight inside the kernel at most the RX ring's worth (frames taken from fill)
    assert result["capacity"] - result["held"] <= 512 + 64


def test_mempool_exhaustion_shows_in_counters_and_recovers(veth_pair):
    a, b = veth_pair.a, veth_pair.b
    with a.enter():
        peer = RawPeer(a.ifname)
    try:
        with (
            b.enter(),
            Umem(4096, regions=[2048, 2048]) as umem,
            XskDev(XskConfig(b.ifname, rx_size=256, tx_size=256, fill_size=512), umem) as dev,
        ):
            pool = dev.pool
            hold = [pool.get_bulk(pool.avail)]  # the app holds every free frame
            pv = PktVec(256)
            total = 0
            # fill ring (512) drains, then the kernel finds no buffers
            for rnd in range(8):
                peer.send([frame(veth_pair, rnd * 200 + i) for i in range(200)])
                time.sleep(0.05)
                while k := dev.rx_burst(pv):
                    hold.append(pv.addr[:k].copy())
                    total += k
            st = dev.stats()
            assert total <= 512  # nothing beyond what the fill ring held
            assert st["rx_fill_ring_empty"] > 0 or st["imissed"] > 0
            assert st["fq_alloc_zero"] > 0  # we could not refill: pool empty
            # free everything: traffic flows again
            for h in hold:
                pool.put_bulk(h)
            dev.rx_burst(pv)  # refills the fill ring from the pool
            peer.send([frame(veth_pair, 10_000 + i) for i in range(100)])
            addrs, _ = _rx_until(dev, pv, 100)
            assert len(addrs) >= 100
            pool.put_bulk(addrs)
    finally:
        peer.close()


def test_busy_poll_options_use_cndp_defaults(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(4096) as umem, XskDev(XskConfig(b.ifname, busy_poll=True), umem) as dev:
        s = dev.sock
        assert s.getsockopt(socket.SOL_SOCKET, sx.SO_BUSY_POLL) == 20
        assert s.getsockopt(socket.SOL_SOCKET, sx.SO_PREFER_BUSY_POLL) == 1
    with (
        b.enter(),
        Umem(4096) as umem,
        XskDev(XskConfig(b.ifname, busy_poll=True, busy_timeout=50, busy_budget=16), umem) as dev,
    ):
        assert dev.sock.getsockopt(socket.SOL_SOCKET, sx.SO_BUSY_POLL) == 50


def test_shared_umem_two_queues(make_pair):
    pair = make_pair(rxqueues=2, txqueues=2)
    a, b = pair.a, pair.b
    f = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
    with b.enter(), Umem(8192, regions=[4096, 4096]) as umem:
        d0 = XskDev(XskConfig(b.ifname, 0), umem, region=0)
        try:
            d1 = XskDev(XskConfig(b.ifname, 1), umem, region=1)
            try:
                # one program, one XSKMAP for both queues
                assert d0._xskmap is d1._xskmap and d0._program is d1._program
                _send_from_cpus(a, f, 1000, (0, 1))
                pv = PktVec(256)
                r0, _ = _rx_until(d0, pv, 1000, timeout=2)
                r1, _ = _rx_until(d1, pv, 1000, timeout=2)
                # ours are UDP to port 9; the Linux side may add a frame of its own (IPv6 ND)
                n0 = sum(is_udp_to(9)(bytes(umem.data[int(x) : int(x) + 42])) for x in r0)
                n1 = sum(is_udp_to(9)(bytes(umem.data[int(x) : int(x) + 42])) for x in r1)
                assert n0 == 1000 and n1 == 1000
                reg1 = umem.region(1)
                assert (r0 < reg1.offset).all()  # each socket's frames from its own region
                assert (r1 >= reg1.offset).all()
            finally:
                d1.close()
        finally:
            d0.close()
        assert xdp.query(b.ifname) is None


def test_pinned_xskmap_mode_loads_no_program(veth_pair, tmp_path):
    """The unprivileged path: the XDP program and XSKMAP belong to someone else (the device
    plugin); we only take the map from its pin and put our socket in it."""
    a, b = veth_pair.a, veth_pair.b
    d = tmp_path / "bpffs"
    d.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(d)], check=True)
    try:
        with b.enter():
            m = xdp.XskMap.create(4, name="dp_xsks")
            fd = sysbpf.prog_load(
                sysbpf.PROG_TYPE_XDP, progs.xsk_redirect(m.fd), name="afxdp_dp"
            )  # not ours by name
            try:
                xdp.attach(b.ifname, fd, xdp.XdpMode.DRV, force=True)
                pin = str(d / "xsks_map")
                m.pin(pin)
                with Umem(4096) as umem, XskDev(XskConfig(b.ifname, xsk_pin_path=pin), umem) as dev:
                    assert dev._program is None
                    with a.enter():
                        peer = RawPeer(a.ifname)
                    try:
                        peer.send([frame(veth_pair, i) for i in range(50)])
                        addrs, _ = _rx_until(dev, PktVec(64), 50)
                    finally:
                        peer.close()
                    assert len(addrs) >= 50
                assert xdp.query(b.ifname).name == "afxdp_dp"  # their program untouched
                # our socket left the map: the program falls back to XDP_PASS, Linux answers
                assert a.run(["ping", "-c", "1", "-W", "2", b.ipv4]).returncode == 0
                # and through an fd handed over (the device plugin's UDS path)
                with Umem(4096) as umem, XskDev(XskConfig(b.ifname, xsk_map_fd=m.fd), umem) as dev:
                    # while our socket is in the map, Linux never sees the echo request
                    assert a.run(["ping", "-c", "1", "-W", "1", b.ipv4]).returncode != 0
                    addrs, _ = _rx_until(dev, PktVec(64), 1, timeout=2)
                    assert len(addrs) >= 1
                assert a.run(["ping", "-c", "1", "-W", "2", b.ipv4]).returncode == 0
            finally:
                xdp.detach(b.ifname)
                os.close(fd)
                m.close()
    finally:
        subprocess.run(["umount", str(d)], check=False)


# ------------------------------------------------------------------ bad input


def _nothing_attached(host):
    with host.enter():
        return xdp.query(host.ifname) is None


def test_missing_netdev(veth_pair):
    with veth_pair.b.enter(), Umem(4096) as umem:
        with pytest.raises(NetdevError, match="'nosuch0' does not exist"):
            XskDev(XskConfig("nosuch0"), umem)


def test_queue_beyond_channels(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(4096) as umem:
        with pytest.raises(ConfigError, match=r"queue 3 does not exist .* 1 rx queue"):
            XskDev(XskConfig(b.ifname, qid=3), umem)
    assert _nothing_attached(b)


@pytest.mark.parametrize(
    "field,value", [("rx_size", 1000), ("tx_size", 3), ("fill_size", 100), ("comp_size", 6)]
)
def test_ring_sizes_must_be_powers_of_two(veth_pair, field, value):
    b = veth_pair.b
    with b.enter(), Umem(4096) as umem:
        with pytest.raises(ConfigError, match=f"= {value} is not a power of two"):
            XskDev(XskConfig(b.ifname, **{field: value}), umem)
    assert _nothing_attached(b)


def test_umem_too_small_for_rings(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(1024) as umem:
        with pytest.raises(ConfigError, match=r"1024 frames but the rings .* need at least"):
            XskDev(XskConfig(b.ifname), umem)  # 2048 + 2048 descriptors
    assert _nothing_attached(b)


@pytest.mark.parametrize("bufsz", [1024, 6016, 8192, 2176])
def test_frame_sizes_the_kernel_refuses(veth_pair, bufsz):
    b = veth_pair.b
    with b.enter(), Umem(4096, bufsz=bufsz) as umem:
        with pytest.raises(ConfigError, match=f"frame size {bufsz} is refused by AF_XDP"):
            XskDev(XskConfig(b.ifname), umem)
    assert _nothing_attached(b)


def test_tx_qid_queue_receives_nothing_frames_there_go_to_linux(make_pair):
    """The tx_qid socket is not in the XSKMAP: frames arriving on its queue take the XDP
    program's fallback (XDP_PASS) to the kernel stack; the main socket still gets queue 0."""
    pair = make_pair(rxqueues=2, txqueues=2)
    a, b = pair.a, pair.b
    f = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
    with b.enter(), Umem(8192) as umem, XskDev(XskConfig(b.ifname, 0, tx_qid=1), umem) as dev:
        linux = RawPeer(b.ifname)  # what B's kernel stack receives
        try:
            _send_from_cpus(a, f, 500, (1, 0))
            pv = PktVec(256)
            r0, _ = _rx_until(dev, pv, 500, timeout=2)
            ours = sum(is_udp_to(9)(bytes(umem.data[int(x) : int(x) + 42])) for x in r0)
            passed = linux.recv_until(500, timeout=2, match=is_udp_to(9))
        finally:
            linux.close()
        assert ours == 500  # queue 0: the main socket
        assert len(passed) == 500  # queue 1: XDP_PASS to Linux, not the TX socket
        assert dev.stats()["rx_invalid"] == 0
    assert _nothing_attached(b)


def test_tx_qid_must_be_another_existing_queue(make_pair):
    pair = make_pair(rxqueues=2, txqueues=2)
    b = pair.b
    with b.enter(), Umem(8192) as umem:
        with pytest.raises(ConfigError, match=r"tx_qid 0 is the socket's own queue"):
            XskDev(XskConfig(b.ifname, 0, tx_qid=0), umem)
        with pytest.raises(ConfigError, match=r"tx_qid 2 does not exist .* 2 tx queue"):
            XskDev(XskConfig(b.ifname, 0, tx_qid=2), umem)
    assert _nothing_attached(b)


def test_tx_qid_on_a_bound_queue(make_pair):
    """A tx_qid takes its queue: one that another socket holds is refused, naming tx_qid,
    and the failed socket leaves the other one (and its program) as they were."""
    pair = make_pair(rxqueues=2, txqueues=2)
    b = pair.b
    with b.enter(), Umem(8192) as u1, Umem(8192) as u2:
        with XskDev(XskConfig(b.ifname, 1), u1) as other:
            with pytest.raises(XskError, match=r"tx_qid: queue .*:1 is already bound"):
                XskDev(XskConfig(b.ifname, 0, tx_qid=1), u2)
            assert other.in_xskmap
            assert xdp.query(b.ifname) is not None
    assert _nothing_attached(b)


def test_program_attached_by_someone_else(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(4096) as umem:
        fd = sysbpf.prog_load(sysbpf.PROG_TYPE_XDP, progs.verdict(asm.XDP_PASS), name="other")
        try:
            xdp.attach(b.ifname, fd, xdp.XdpMode.DRV, force=True)
            with pytest.raises(XdpBusyError, match="'other'"):
                XskDev(XskConfig(b.ifname), umem)
            assert xdp.query(b.ifname).name == "other"
            assert umem.closed is False
        finally:
            xdp.detach(b.ifname)
            os.close(fd)


def test_zero_copy_required_on_veth_fails_clearly(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(4096) as umem:
        with pytest.raises(XskError, match="does not support AF_XDP zero-copy"):
            XskDev(XskConfig(b.ifname, zero_copy=True), umem)
    assert _nothing_attached(b)


def test_queue_already_bound(veth_pair):
    b = veth_pair.b
    with b.enter(), Umem(4096) as u1, Umem(4096) as u2, XskDev(XskConfig(b.ifname), u1):
        with pytest.raises(XskError, match="already bound by another AF_XDP socket"):
            XskDev(XskConfig(b.ifname), u2)
        assert xdp.query(b.ifname) is not None  # the first socket keeps its program


UNPRIV = r"""
import sys
from cndp.testing.netns import in_netns
from cndp.mem import Umem
from cndp.xskdev.xskdev import XskDev, XskConfig
from cndp.errors import CndpError
with in_netns(sys.argv[1]), Umem(4096) as u:
    try:
        XskDev(XskConfig(sys.argv[2]), u)
    except CndpError as e:
        print(type(e).__name__, e)
        sys.exit(3)
"""


def test_without_privilege_the_error_names_the_capability(veth_pair):
    b = veth_pair.b
    # enter the namespace first (needs CAP_SYS_ADMIN), then drop every capability
    r = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            b.ns,
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            sys.executable,
            "-c",
            UNPRIV.replace("with in_netns(sys.argv[1]), ", "with "),
            b.ns,
            b.ifname,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("PrivilegeError"), r.stdout
    assert "CAP_NET_RAW" in r.stdout or "CAP_" in r.stdout
    assert "Traceback" not in r.stderr
    assert _nothing_attached(b)
    assert PrivilegeError  # the class the message names
    _ = struct  # keep the import used


def test_umem_on_2mb_hugepages(veth_pair, hugepages_2m):
    a, b = veth_pair.a, veth_pair.b
    with b.enter(), Umem(4096, page_type="2MB") as umem:
        assert umem.mem.page_type.size == 2 << 20  # really on hugepages, no fallback
        with XskDev(XskConfig(b.ifname), umem) as dev:
            with a.enter():
                peer = RawPeer(a.ifname)
            try:
                sent = [frame(veth_pair, i) for i in range(64)]
                peer.send(sent)
                got: list[bytes] = []
                deadline = time.monotonic() + 5
                while len(got) < 64 and time.monotonic() < deadline:
                    addrs, lens = _rx_until(dev, PktVec(64), 1, timeout=0.5)
                    frames = [
                        bytes(umem.data[int(x) : int(x) + int(n)])
                        for x, n in zip(addrs, lens, strict=True)
                    ]
                    got += [f for f in frames if is_udp_to(9)(f)]  # Linux adds its own
            finally:
                peer.close()
            assert sorted(got, key=seq_of) == sent
