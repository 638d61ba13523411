"""Ring verbs and the xskdev burst code over in-memory rings (no kernel), with hypothesis."""

from __future__ import annotations

import mmap
import struct
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cndp.errors import ConfigError
from cndp.mem import Mempool, PktVec, Umem
from cndp.sys.xsk import RingOffsets
from cndp.xskdev.ring import ConsRing, ProdRing
from cndp.xskdev.xskdev import XskConfig, XskDev

OFFS = RingOffsets(producer=0, consumer=64, desc=192, flags=128)


def ring_pair(size: int, start_index: int = 0, xdp_desc: bool = False):
    mm = mmap.mmap(-1, OFFS.desc + size * (16 if xdp_desc else 8))
    struct.pack_into("I", mm, OFFS.producer, start_index)
    struct.pack_into("I", mm, OFFS.consumer, start_index)
    return ProdRing(mm, OFFS, size, xdp_desc=xdp_desc), ConsRing(mm, OFFS, size, xdp_desc=xdp_desc)


@settings(max_examples=200, deadline=None)
@given(
    size=st.sampled_from([1, 2, 8, 64]),
    start=st.sampled_from([0, 5, 2**32 - 7, 2**32 - 1]),  # includes u32 index wrap
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 80)), max_size=60),
)
def test_fifo_through_wraparound(size, start, ops):
    prod, cons = ring_pair(size, start)
    model: deque[int] = deque()
    nxt = 1
    out = np.zeros(128, np.uint64)
    for is_produce, n in ops:
        if is_produce:
            s, k = prod.reserve(n)
            assert k == min(n, size - len(model))
            vals = np.arange(nxt, nxt + k, dtype=np.uint64)
            prod.write_addrs(s, vals)
            prod.submit(k)
            model.extend(vals.tolist())
            nxt += k
        else:
            s, k = cons.peek(n)
            assert k == min(n, len(model))
            cons.read_addrs(s, k, out)
            assert out[:k].tolist() == [model.popleft() for _ in range(k)]
            cons.release(k)
        assert prod.pending() == len(model)
        assert cons.avail(size + 1) == len(model)
        assert prod.free(size + 1) == size - len(model)


@settings(max_examples=100, deadline=None)
@given(start=st.sampled_from([0, 2**32 - 3]), sizes=st.lists(st.integers(1, 20), max_size=30))
def test_descriptor_rings_keep_addr_and_len_together(start, sizes):
    prod, cons = ring_pair(16, start, xdp_desc=True)
    a = np.zeros(32, np.uint64)
    ln = np.zeros(32, np.uint32)
    seq = 0
    for n in sizes:
        s, k = prod.reserve(n)
        vals = np.arange(seq, seq + k, dtype=np.uint64)
        prod.write_descs(s, vals * 2048 + 256, (vals % 1500 + 60).astype(np.uint32))
        prod.submit(k)
        s, j = cons.peek(k)
        assert j == k
        cons.read_descs(s, j, a, ln)
        cons.release(j)
        assert a[:j].tolist() == (vals * 2048 + 256).tolist()
        assert ln[:j].tolist() == (vals % 1500 + 60).tolist()
        seq += k


def test_need_wakeup_flag_is_read_from_the_flags_word():
    prod, _ = ring_pair(8)
    assert prod.need_wakeup() is False
    struct.pack_into("I", prod.mm, OFFS.flags, 1)
    assert prod.need_wakeup() is True


def _sim(bufcnt=2048, **kw):
    cfg = XskConfig("sim0", rx_size=256, tx_size=256, fill_size=512, comp_size=256, **kw)
    umem = Umem(bufcnt)
    pool = Mempool.for_region(umem, 0, debug=True)
    dev, peer = XskDev.over_memory_rings(cfg, umem, pool=pool)
    return umem, pool, dev, peer


class XskFrames(RuleBasedStateMachine):
    """Frames move between pool, fill ring, RX ring, the app, TX and completion rings; at
    every step each frame is in exactly one place and the counters add up."""

    def __init__(self):
        super().__init__()
        self.umem, self.pool, self.dev, self.peer = _sim()
        self.held: list[np.ndarray] = []  # frames the application holds
        self.pv = PktVec(64)
        self.received = 0
        self.sent = 0

    @rule(n=st.integers(0, 300))
    def kernel_receives(self, n):
        self.peer.deliver(n)

    @rule(n=st.integers(1, 64))
    def app_rx_burst(self, n):
        k = self.dev.rx_burst(self.pv, n)
        if k:
            self.held.append(self.pv.addr[:k].copy())
            self.received += k

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def app_frees(self, data):
        i = data.draw(st.integers(0, len(self.held) - 1))
        self.pool.put_bulk(self.held.pop(i))

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def app_transmits(self, data):
        i = data.draw(st.integers(0, len(self.held) - 1))
        burst = self.held.pop(i)
        pv = PktVec(len(burst))
        pv.set_from_rx(burst, np.full(len(burst), 60))
        s = self.dev.tx_burst(pv)
        self.sent += s
        if s < len(burst):
            self.held.append(burst[s:].copy())

    @rule(n=st.integers(1, 64))
    def app_builds_and_transmits(self, n):
        pv = PktVec(n)
        k = pv.alloc_from(self.pool, n)
        pv.data_len[:k] = 60
        s = self.dev.tx_burst(pv)
        self.sent += s
        if s < k:
            self.pool.put_bulk(pv.addr[s:k])

    @rule(n=st.integers(0, 300))
    def kernel_completes(self, n):
        self.peer.complete(n or None)

    @rule()
    def app_reaps(self):
        self.dev.reap()

    def _places(self) -> list[np.ndarray]:
        def pending(ring, addr_arr):
            cons = ring._cons[0]
            k = (ring._prod[0] - cons) & 0xFFFFFFFF
            return addr_arr[(np.arange(k) + cons) & ring.mask]

        d = self.dev
        return [
            self.pool.free_addrs(),
            pending(d.fq, d.fq.addr),
            pending(d.rx, d.rx.addr),
            pending(d.tx, d.tx.addr),
            pending(d.cq, d.cq.addr),
            *self.held,
        ]

    @invariant()
    def every_frame_in_exactly_one_place(self):
        allp = np.concatenate(self._places())
        frames = allp - allp % np.uint64(self.umem.bufsz)
        assert len(frames) == self.pool.capacity
        assert len(np.unique(frames)) == self.pool.capacity

    @invariant()
    def counters_add_up(self):
        st_ = self.dev.stats()
        assert st_["ipackets"] == self.received
        assert st_["opackets"] == self.sent
        assert st_["ibytes"] == 60 * self.received
        assert self.dev.in_flight() == self.sent - st_["cq_buf_freed"]

    def teardown(self):
        for h in self.held:
            self.pool.put_bulk(h)
        self.dev.close()
        # close hands back what the rings held: the (caller's) pool is whole again
        assert self.pool.full()
        self.umem.close()


XskFrames.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_xsk_frames_state_machine = XskFrames.TestCase


def test_close_returns_ring_frames_to_a_shared_pool():
    _umem, pool, dev, peer = _sim()
    peer.deliver(100)
    pv = PktVec(64)
    dev.rx_burst(pv, 10)
    pool.put_bulk(pv.addr[:10])
    dev.close()
    assert pool.full()


def test_fill_level_leaves_tx_frames_in_the_pool():
    _umem, pool, dev, peer = _sim(bufcnt=600)
    assert dev.fill_target == 600 - 256
    assert pool.avail == 256
    for _ in range(20):
        peer.deliver(64)
        pv = PktVec(64)
        k = dev.rx_burst(pv)
        pool.put_bulk(pv.addr[:k])
    assert pool.avail >= 256 - 64  # RX never starves TX of frames


def test_umem_too_small_for_rings_is_refused_before_any_socket():
    with pytest.raises(ConfigError, match="need at least rx\\+tx"):
        XskDev.over_memory_rings(XskConfig("sim0", rx_size=256, tx_size=256), Umem(300))
