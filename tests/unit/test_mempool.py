"""cndp.mem.mempool: CNDP's cases, edge cases, and model-based property tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cndp.errors import CndpError, ConfigError, PoolExhausted
from cndp.mem import Mempool, Umem


def make_pool(cnt: int = 64, bufsz: int = 2048, **kw) -> Mempool:
    return Mempool(np.arange(cnt, dtype=np.uint64) * bufsz, bufsz=bufsz, **kw)


# CNDP mempool test cases: (objcnt, objsz, cache_sz). We have no per-lcore cache; the cache
# size is kept only to mirror the table.
@pytest.mark.parametrize(
    ("objcnt", "objsz", "cache_sz"),
    [(1024, 512, 0), (2048, 1024, 64), (2048, 1024, 64), (4096, 2048, 128)],
)
def test_cndp_cases(objcnt, objsz, cache_sz):
    with Umem(objcnt, objsz) as u:
        mp = Mempool.for_region(u, 0, name=f"mp{cache_sz}")
        assert mp.capacity == objcnt
        assert mp.full() and not mp.empty()
        assert mp.avail == objcnt and mp.in_use == 0
        got = mp.get_bulk(objcnt)
        assert mp.empty() and not mp.full()
        assert mp.avail == 0 and mp.in_use == objcnt
        assert np.array_equal(np.sort(got), u.frame_addrs())
        with pytest.raises(PoolExhausted):
            mp.get_bulk(1)
        mp.put_bulk(got)
        assert mp.full()
        assert mp.stats() == {
            "name": f"mp{cache_sz}",
            "capacity": objcnt,
            "avail": objcnt,
            "in_use": 0,
            "alloc_ok": objcnt,
            "alloc_fail": 1,
            "freed": objcnt,
        }


def test_fresh_pool_hands_out_lowest_addresses_first():
    mp = make_pool(8, 64)
    assert mp.get_bulk(3).tolist() == [0, 64, 128]
    assert mp.take(2).tolist() == [192, 256]


def test_lifo_order():
    mp = make_pool(8, 64)
    a = mp.get_bulk(4)
    mp.put_bulk(a)
    # The last buffer put back is the first handed out again (cache-hot reuse).
    assert mp.get_bulk(4).tolist() == a[::-1].tolist()


def test_over_get_leaves_pool_unchanged():
    mp = make_pool(16)
    mp.get_bulk(10)
    before = mp.free_addrs()
    with pytest.raises(PoolExhausted) as ei:
        mp.get_bulk(7)
    msg = str(ei.value)
    assert "7" in msg and "6" in msg and "put_bulk" in msg
    assert mp.avail == 6
    assert np.array_equal(mp.free_addrs(), before)
    assert mp.alloc_fail == 1 and mp.alloc_ok == 10


def test_get_bulk_returns_new_array():
    mp = make_pool(8)
    a = mp.get_bulk(4)
    assert a.dtype == np.uint64 and a.flags.owndata
    mp.put_bulk(np.array([a[0]], dtype=np.uint64))
    b = mp.get_bulk(1)
    assert b[0] == a[0] and a.tolist() == [0, 2048, 4096, 6144]  # a not clobbered


def test_get_burst_partial_and_out():
    mp = make_pool(10)
    out = np.zeros(8, dtype=np.uint64)
    r = mp.get_burst(8, out=out)
    assert len(r) == 8 and np.shares_memory(r, out)
    assert r.tolist() == [i * 2048 for i in range(8)]
    r2 = mp.get_burst(8)
    assert len(r2) == 2 and mp.empty()
    assert mp.alloc_fail == 1  # the short burst
    r3 = mp.get_burst(4, out=out)
    assert len(r3) == 0 and r3.dtype == np.uint64
    assert mp.get_burst(0).size == 0


def test_take_is_a_view_valid_until_put():
    mp = make_pool(8)
    v = mp.take(3)
    assert not v.flags.owndata
    kept = v.copy()
    assert kept.tolist() == [0, 2048, 4096] and mp.avail == 5
    mp.put_bulk(kept)  # reuses the stack slots v points at: v is now stale
    assert v.tolist() == [4096, 2048, 0]
    assert mp.full()
    assert len(mp.take(100)) == 8 and mp.empty()
    assert mp.alloc_fail == 1


def test_negative_counts():
    mp = make_pool(8)
    for fn in (mp.get_bulk, mp.get_burst, mp.take):
        with pytest.raises(ConfigError):
            fn(-1)
    assert mp.full()


def test_overflow_put_raises_without_debug():
    mp = make_pool(8)
    a = mp.get_bulk(2)
    mp.put_bulk(a)
    with pytest.raises(CndpError) as ei:
        mp.put_bulk(a[:1])
    assert "overflow" in str(ei.value) and "debug=True" in str(ei.value)
    assert mp.full() and mp.freed == 2


def test_debug_double_free():
    mp = make_pool(8, debug=True)
    a = mp.get_bulk(4)
    mp.put_bulk(a[:2])
    with pytest.raises(CndpError) as ei:
        mp.put_bulk(a[1:3])  # a[1] is already free
    assert "double free" in str(ei.value) and f"{int(a[1]):#x}" in str(ei.value)
    assert mp.avail == 6  # unchanged by the failed put
    with pytest.raises(CndpError) as ei:
        mp.put_bulk(np.array([a[2], a[2]], dtype=np.uint64))  # twice in one call
    assert "twice" in str(ei.value)
    mp.put_bulk(a[2:])
    assert mp.full()


@pytest.mark.parametrize("foreign", [8 * 2048, 100 * 2048, 8 * 2048 + 1, 2**40])
def test_debug_foreign_address(foreign):
    mp = make_pool(8, debug=True)
    mp.get_bulk(4)
    with pytest.raises(CndpError) as ei:
        mp.put_bulk(np.array([0, foreign], dtype=np.uint64))
    assert f"{foreign:#x}" in str(ei.value) and "not inside a frame of this pool" in str(ei.value)
    assert mp.avail == 4


def test_debug_accepts_handles_inside_frames():
    # RX/completion addresses point inside frames; they identify the frame.
    mp = make_pool(8, debug=True)
    got = mp.get_bulk(3)
    mp.put_bulk(got[:2] + np.uint64(256))
    assert mp.avail == 7
    with pytest.raises(CndpError, match="double free of frame 0x800"):
        mp.put_bulk(got[1:2] + np.uint64(1000))  # same frame, other handle
    assert mp.get_bulk(2).tolist() == [2048 + 256, 256]  # handles come back as put
    mp.put_bulk(np.array([2048 + 5, 17, 4096 + 2047], dtype=np.uint64))
    assert mp.full()


def test_debug_gap_in_frame_set():
    # A pool whose frames are not contiguous: an address in the gap is foreign.
    addrs = np.array([0, 2048, 8192, 10240], dtype=np.uint64)
    mp = Mempool(addrs, bufsz=2048, debug=True)
    mp.get_bulk(4)
    with pytest.raises(CndpError, match="0x1000"):
        mp.put_bulk(np.array([4096], dtype=np.uint64))


def test_debug_off_grid_addresses_rejected_at_creation():
    with pytest.raises(ConfigError):
        Mempool(np.array([0, 100], dtype=np.uint64), bufsz=2048, debug=True)


@pytest.mark.parametrize(
    "addrs",
    [
        np.array([], dtype=np.uint64),
        np.zeros((2, 2), dtype=np.uint64),
        np.array([1.0, 2.0]),
        np.array([0, 0, 2048], dtype=np.uint64),
        np.array([-2048, 0]),
    ],
)
def test_bad_construction(addrs):
    with pytest.raises(ConfigError):
        Mempool(addrs, bufsz=2048)


def test_bad_bufsz():
    with pytest.raises(ConfigError):
        Mempool(np.arange(4, dtype=np.uint64), bufsz=0)


def test_for_region_and_frame_of():
    with Umem(64, 2048, regions=[16, 48]) as u:
        mp = Mempool.for_region(u, 1)
        assert mp.name == "umem0.r1"
        assert mp.capacity == 48 and mp.base == 16 * 2048
        got = mp.get_bulk(5)
        assert int(got[0]) == u.region(1).offset
        inside = got + np.array([0, 1, 256, 2047, 1000], dtype=np.uint64)
        assert np.array_equal(mp.frame_of(inside), got)
        mp.put_bulk(mp.frame_of(inside))
        assert mp.full()


def test_frame_of_unaligned_base():
    addrs = np.arange(4, dtype=np.uint64) * 2048 + 100
    mp = Mempool(addrs, bufsz=2048)
    assert mp.frame_of(addrs + 7).tolist() == addrs.tolist()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300), st.lists(st.integers(0, 400), max_size=10))
def test_get_put_roundtrip(cnt, asks):
    mp = make_pool(cnt, 64)
    held = []
    for n in asks:
        held.append(mp.get_burst(n))
    allheld = np.concatenate(held) if held else np.empty(0, np.uint64)
    assert len(np.unique(allheld)) == len(allheld) == mp.in_use
    mp.put_bulk(allheld)
    assert mp.full()
    assert np.array_equal(np.sort(mp.free_addrs()), mp.all_addrs())


class MempoolMachine(RuleBasedStateMachine):
    """Model: the set of addresses the caller holds. The pool must agree with it."""

    debug = False

    @initialize(cnt=st.integers(1, 200), bufsz=st.sampled_from([64, 2048, 4096]))
    def setup(self, cnt, bufsz):
        self.addrs = set((np.arange(cnt, dtype=np.uint64) * bufsz + 4096).tolist())
        self.mp = Mempool(
            np.array(sorted(self.addrs), dtype=np.uint64), bufsz=bufsz, debug=self.debug
        )
        self.held: list[int] = []
        self.out = np.zeros(256, dtype=np.uint64)

    def _took(self, got: np.ndarray) -> None:
        got_l = got.tolist()
        # Never hand out an address that is still in use, nor one twice in a burst.
        assert len(set(got_l)) == len(got_l)
        assert not set(got_l) & set(self.held)
        assert set(got_l) <= self.addrs
        self.held.extend(got_l)

    @rule(n=st.integers(0, 250))
    def get_bulk(self, n):
        avail = self.mp.avail
        if n > avail:
            before = self.mp.free_addrs()
            with pytest.raises(PoolExhausted):
                self.mp.get_bulk(n)
            assert np.array_equal(self.mp.free_addrs(), before)
        else:
            got = self.mp.get_bulk(n)
            assert len(got) == n and got.dtype == np.uint64
            self._took(got)

    @rule(n=st.integers(0, 256), use_out=st.booleans())
    def get_burst(self, n, use_out):
        avail = self.mp.avail
        got = self.mp.get_burst(n, out=self.out if use_out else None)
        assert len(got) == min(n, avail)
        self._took(got.copy())

    @rule(n=st.integers(0, 256))
    def take(self, n):
        avail = self.mp.avail
        got = self.mp.take(n)
        assert len(got) == min(n, avail)
        self._took(got.copy())  # the view dies at the next put: copy now

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def put(self, data):
        k = data.draw(st.integers(1, len(self.held)))
        idx = data.draw(st.permutations(range(len(self.held))))[:k]
        give = [self.held[i] for i in idx]
        self.mp.put_bulk(np.array(give, dtype=np.uint64))
        keep = set(range(len(self.held))) - set(idx)
        self.held = [self.held[i] for i in sorted(keep)]

    @precondition(lambda self: self.debug and self.mp.avail > 0)
    @rule(data=st.data())
    def double_free_is_caught(self, data):
        free = self.mp.free_addrs().tolist()
        victim = data.draw(st.sampled_from(free))
        before = self.mp.free_addrs()
        with pytest.raises(CndpError, match="double free"):
            self.mp.put_bulk(np.array([victim], dtype=np.uint64))
        assert np.array_equal(self.mp.free_addrs(), before)

    @precondition(lambda self: self.debug and self.held)
    @rule(off=st.integers(1, 63), far=st.booleans())
    def foreign_is_caught(self, off, far):
        # Past the last frame, or before the first (frames start at 4096).
        bad = (max(self.addrs) + 64 * 1024 + off) if far else (4096 - off)
        before = self.mp.free_addrs()
        with pytest.raises(CndpError, match="not inside a frame of this pool"):
            self.mp.put_bulk(np.array([self.held[0], bad], dtype=np.uint64))
        assert np.array_equal(self.mp.free_addrs(), before)

    @invariant()
    def accounting(self):
        mp = self.mp
        assert mp.avail + mp.in_use == mp.capacity
        assert mp.in_use == len(self.held)
        free = mp.free_addrs().tolist()
        assert len(set(free)) == len(free)
        assert not set(free) & set(self.held)
        assert set(free) | set(self.held) == self.addrs
        assert mp.alloc_ok - mp.freed == mp.in_use


class DebugMempoolMachine(MempoolMachine):
    debug = True


TestMempoolModel = MempoolMachine.TestCase
TestMempoolModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestDebugMempoolModel = DebugMempoolMachine.TestCase
TestDebugMempoolModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
