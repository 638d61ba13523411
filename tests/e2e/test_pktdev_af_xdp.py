"""net_af_xdp specifics: a MAC-swap loop through pktdev (both XDP modes), and two lports on two
queues of one netdev sharing a UMEM (one region each, native mode)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cndp import pktdev
from cndp.bpf import xdp
from cndp.mem import Mempool, PktVec, Umem, mac_swap
from cndp.pktdev import PortConfig, port_setup

from .xsk_helpers import RawPeer, frame, is_udp_to, seq_of

MODES = [pytest.param(False, id="drv"), pytest.param(True, id="skb")]


@pytest.fixture(autouse=True)
def _close_ports():
    yield
    pktdev.close_all()


@pytest.mark.parametrize("skb_mode", MODES)
def test_mac_swap_loop_through_pktdev(veth_pair, skb_mode):
    a, b = veth_pair.a, veth_pair.b
    sent = [frame(veth_pair, i, size=60 + i * 7) for i in range(200)]
    with Umem(4096) as umem:
        with b.enter():
            port = port_setup(
                PortConfig(f"{b.ifname}:0", "net_af_xdp", umem=umem, skb_mode=skb_mode)
            )
            assert xdp.query(b.ifname).mode == ("skb" if skb_mode else "drv")
        with a.enter():
            peer = RawPeer(a.ifname)
        try:
            peer.send(sent)
            pv = PktVec(64)
            looped = 0
            deadline = time.monotonic() + 5
            while looped < len(sent) and time.monotonic() < deadline:
                k = port.rx_burst(pv)
                if not k:
                    port.dev.poll(20)  # type: ignore[attr-defined]
                    continue
                mac_swap(umem.data, pv.addr[:k])
                rest = pv
                while (t := port.tx_burst(rest)) < rest.n:  # the caller keeps what is left
                    rest = rest.select(np.arange(t, rest.n))
                looped += k
            assert port.flush(2.0)
            back = peer.recv_until(len(sent), match=is_udp_to(9))
        finally:
            peer.close()
        st = port.stats()
        port.close()
    assert sorted(back, key=seq_of) == [f[6:12] + f[:6] + f[12:] for f in sent]
    assert st["opackets"] >= len(sent) and st["cq_buf_freed"] == st["opackets"]


def test_two_lports_share_a_umem_on_two_queues_drv(make_pair):
    """Native XDP only: it gives each veth RX queue its own NAPI, so the peer's TX queue (a
    hash of the flow) picks our RX queue. In generic (skb) mode without NAPI every frame is
    seen on queue 0."""
    pair = make_pair(rxqueues=2, txqueues=2)
    a, b = pair.a, pair.b
    with Umem(8192, regions=[4096, 4096]) as umem:
        pools = [Mempool.for_region(umem, r) for r in (0, 1)]
        with b.enter():
            ports = [
                port_setup(
                    PortConfig(
                        f"{b.ifname}:{q}",
                        "net_af_xdp",
                        qid=q,
                        umem=umem,
                        region=q,
                        pool=pools[q],
                        skb_mode=False,
                    )
                )
                for q in (0, 1)
            ]
        assert [p.lport for p in ports] == [0, 1]
        assert pktdev.get_port_by_name(f"{b.ifname}:1") == 1
        # different flows hash to different TX queues of the peer, i.e. RX queues here
        sent = [frame(pair, i, size=80) for i in range(400)]
        with a.enter():
            peer = RawPeer(a.ifname)
        got: list[list[bytes]] = [[], []]
        try:
            peer.send(sent)
            pv = PktVec(64)
            deadline = time.monotonic() + 5
            while sum(len(g) for g in got) < len(sent) and time.monotonic() < deadline:
                for q, p in enumerate(ports):
                    k = p.rx_burst(pv)
                    for x, n in zip(pv.addr[:k].tolist(), pv.data_len[:k].tolist(), strict=True):
                        data = bytes(umem.data[x : x + n])
                        if is_udp_to(9)(data):
                            got[q].append(data)
                    if k:
                        # frames of queue q come from region q
                        lo = umem.region(q).offset
                        assert ((pv.addr[:k] >= lo) & (pv.addr[:k] < lo + 4096 * 2048)).all()
                        p.buf_free(pv.addr[:k])
        finally:
            peer.close()
        assert sorted(got[0] + got[1], key=seq_of) == sent
        assert got[0] and got[1], "both queues should have received part of the flows"
        for p in ports:
            p.close()
        assert all(pl.avail == pl.capacity for pl in pools)
