"""cndp.mem.pktvec: descriptor round trips, allocation, selection and byte helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.errors import CndpError, ConfigError
from cndp.mem import FIELDS, Mempool, PktVec, Umem, gather, mac_swap, scatter
from cndp.mem.umem import MBUF_HDR_SIZE, PKTMBUF_HEADROOM, XDP_PKT_HEADROOM

BUFSZ = 2048


def test_fields_and_dtypes():
    v = PktVec(32)
    assert v.capacity == 32 and len(v) == 0
    for name, dt in FIELDS.items():
        arr = getattr(v, name)
        assert arr.dtype == dt and arr.shape == (32,)


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_bad_capacity(cap):
    with pytest.raises(ConfigError):
        PktVec(cap)


def test_set_from_rx_standard_headroom():
    # AF_XDP puts packet data XDP_PKT_HEADROOM bytes into each frame.
    frames = np.array([5, 0, 9], dtype=np.uint64) * BUFSZ
    descs = frames + XDP_PKT_HEADROOM
    v = PktVec(8)
    v.set_from_rx(descs, np.array([60, 1514, 64]), port=3)
    assert len(v) == 3
    assert v.addr[:3].tolist() == descs.tolist()
    assert v.frames(BUFSZ).tolist() == frames.tolist()
    assert v.data_off(BUFSZ).tolist() == [PKTMBUF_HEADROOM] * 3
    assert v.data_len[:3].tolist() == [60, 1514, 64]
    assert v.port[:3].tolist() == [3, 3, 3]
    assert np.array_equal(v.data_offsets(), descs)
    d, ln = v.tx_desc()
    assert d.dtype == np.uint64 and np.array_equal(d, descs)
    assert ln.tolist() == [60, 1514, 64]


def test_set_from_rx_resets_metadata():
    v = PktVec(4)
    v.set_from_rx(np.array([256], dtype=np.uint64), np.array([60]))
    v.ptype[0], v.next[0], v.hash[0] = 7, 2, 99
    v.set_from_rx(np.array([2048 + 256], dtype=np.uint64), np.array([60]))
    assert (v.ptype[0], v.next[0], v.hash[0]) == (0, 0, 0)


def test_set_from_rx_too_many():
    v = PktVec(2)
    with pytest.raises(ConfigError, match="capacity 2"):
        v.set_from_rx(np.zeros(3, dtype=np.uint64) + 256, np.zeros(3))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1023),  # frame number
            st.integers(MBUF_HDR_SIZE, BUFSZ - 1),  # where the packet starts in the frame
            st.integers(0, 2047),  # length
        ),
        min_size=0,
        max_size=64,
    ),
    st.sampled_from([2048, 4096, 2176]),
)
def test_rx_tx_round_trip(pkts, bufsz):
    frame = np.array([p[0] for p in pkts], dtype=np.uint64)
    start = np.array([min(p[1], bufsz - 1) for p in pkts], dtype=np.uint64)
    lens = np.array([p[2] for p in pkts], dtype=np.uint16)
    descs = frame * np.uint64(bufsz) + start
    v = PktVec(64)
    v.set_from_rx(descs, lens, port=1)
    assert len(v) == len(pkts)
    assert np.array_equal(v.frames(bufsz), frame * np.uint64(bufsz))
    assert np.array_equal(v.data_off(bufsz), start - MBUF_HDR_SIZE)
    d, ln = v.tx_desc()
    assert np.array_equal(d, descs)
    assert np.array_equal(ln, lens)


def test_prepend_and_adj_move_the_first_byte():
    v = PktVec(4)
    v.set_from_rx(np.array([256, 2048 + 256], dtype=np.uint64), np.array([60, 70]))
    v.adj(14)
    assert v.addr[:2].tolist() == [270, 2048 + 270] and v.data_len[:2].tolist() == [46, 56]
    assert v.data_off(BUFSZ).tolist() == [PKTMBUF_HEADROOM + 14] * 2
    v.prepend(14)
    assert v.addr[:2].tolist() == [256, 2048 + 256] and v.data_len[:2].tolist() == [60, 70]
    with pytest.raises(CndpError, match="shorter than 100"):
        v.adj(100)


def test_alloc_from():
    mp = Mempool(np.arange(100, dtype=np.uint64) * BUFSZ, bufsz=BUFSZ)
    v = PktVec(64)
    assert v.alloc_from(mp, 10) == 10
    assert v.frames(BUFSZ).tolist() == [i * BUFSZ for i in range(10)]
    assert (v.data_off(BUFSZ) == PKTMBUF_HEADROOM).all()
    assert (v.data_len[:10] == 0).all()
    # First byte of a built packet sits at the same place AF_XDP would put RX data.
    assert np.array_equal(v.data_offsets(), v.frames(BUFSZ) + XDP_PKT_HEADROOM)
    # Appends, limited by the vector's room.
    assert v.alloc_from(mp, 80) == 54
    assert len(v) == 64 and mp.avail == 36
    assert v.alloc_from(mp, 5) == 0
    mp.put_bulk(v.addr[: v.n])
    assert mp.full()


def test_alloc_from_rounds_handles_to_frames():
    # A pool refilled with RX addresses (inside frames) still yields frame starts.
    mp = Mempool(np.arange(4, dtype=np.uint64) * BUFSZ, bufsz=BUFSZ)
    got = mp.get_bulk(4)
    mp.put_bulk(got + np.uint64(XDP_PKT_HEADROOM))
    v = PktVec(8)
    assert v.alloc_from(mp, 4) == 4
    assert sorted(v.frames(BUFSZ).tolist()) == [i * BUFSZ for i in range(4)]
    # Unaligned pool base takes the frame_of() path.
    base = 100
    mp2 = Mempool(np.arange(4, dtype=np.uint64) * BUFSZ + base, bufsz=BUFSZ)
    mp2.put_bulk(mp2.get_bulk(4) + np.uint64(7))
    v.clear()
    assert v.alloc_from(mp2, 4) == 4
    assert sorted(v.addr[:4].tolist()) == [i * BUFSZ + base + XDP_PKT_HEADROOM for i in range(4)]


def test_alloc_from_short_pool():
    mp = Mempool(np.arange(3, dtype=np.uint64) * BUFSZ, bufsz=BUFSZ)
    v = PktVec(16)
    assert v.alloc_from(mp, 8) == 3 and len(v) == 3
    assert v.alloc_from(mp, 8) == 0 and len(v) == 3


def _filled(n: int = 10) -> PktVec:
    v = PktVec(16)
    descs = np.arange(n, dtype=np.uint64) * BUFSZ + 256
    v.set_from_rx(descs, np.arange(n) + 60, port=2)
    v.next[:n] = np.arange(n) % 3
    v.hash[:n] = np.arange(n) * 11
    v.ptype[:n] = 5
    return v


def test_select_mask_and_index():
    v = _filled()
    for k in range(3):
        s = v.select(v.next[: v.n] == k)
        exp = [i for i in range(10) if i % 3 == k]
        assert len(s) == len(exp)
        assert s.addr[: s.n].tolist() == [i * BUFSZ + 256 for i in exp]
        assert s.data_len[: s.n].tolist() == [60 + i for i in exp]
        assert s.hash[: s.n].tolist() == [11 * i for i in exp]
        assert (s.next[: s.n] == k).all() and (s.port[: s.n] == 2).all()
    s = v.select(np.array([9, 0, 4]))
    assert s.addr[:3].tolist() == [9 * BUFSZ + 256, 256, 4 * BUFSZ + 256]
    out = PktVec(4)
    assert v.select(np.array([1, 2]), out=out) is out and len(out) == 2
    empty = v.select(np.zeros(10, dtype=bool))
    assert len(empty) == 0


def test_select_errors():
    v = _filled()
    with pytest.raises(ConfigError, match="mask"):
        v.select(np.ones(16, dtype=bool))
    with pytest.raises(ConfigError, match="bad index"):
        v.select(np.array([10]))
    with pytest.raises(ConfigError):
        v.select(np.arange(10), out=PktVec(4))


def test_append_and_clear():
    a, b = _filled(4), _filled(6)
    a.append(b)
    assert len(a) == 10
    assert a.addr[4:10].tolist() == b.addr[:6].tolist()
    with pytest.raises(ConfigError):
        a.append(_filled(7))
    a.clear()
    assert len(a) == 0 and a.data_offsets().size == 0


def _umem_bytes(seed: int, size: int = 4096) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 64),
    st.lists(st.integers(0, 4096), max_size=40),
)
def test_gather_matches_slicing(seed, length, raw_offs):
    data = _umem_bytes(seed)
    offs = np.array([min(o, data.size - length) for o in raw_offs], dtype=np.uint64)
    got = gather(data, offs, length)
    assert got.shape == (len(offs), length) and got.dtype == np.uint8
    ref = bytes(data)
    for row, o in zip(got, offs.tolist(), strict=True):
        assert row.tobytes() == ref[o : o + length]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.data())
def test_scatter_gather_round_trip(seed, length, data):
    mem = _umem_bytes(seed)
    nslots = mem.size // length
    slots = data.draw(st.lists(st.integers(0, nslots - 1), unique=True, max_size=30))
    shift = data.draw(st.integers(0, mem.size - nslots * length))
    offs = np.array(slots, dtype=np.uint64) * np.uint64(length) + np.uint64(shift)
    vals = np.random.default_rng(seed + 1).integers(0, 256, (len(offs), length), dtype=np.uint8)
    ref = bytearray(mem.tobytes())
    for row, o in zip(vals, offs.tolist(), strict=True):
        ref[o : o + length] = row.tobytes()
    scatter(mem, offs, vals)
    assert mem.tobytes() == bytes(ref)
    assert np.array_equal(gather(mem, offs, length), vals)


def _ref_mac_swap(buf: bytes, offs: list[int]) -> bytes:
    b = bytearray(buf)
    for o in offs:
        b[o : o + 6], b[o + 6 : o + 12] = b[o + 6 : o + 12], b[o : o + 6]
    return bytes(b)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 40), max_size=40),  # gaps between 12-byte headers
    st.integers(0, 50),  # first header offset
    st.booleans(),  # force all-even offsets (uint16 path) or leave parity free
    st.randoms(use_true_random=False),
)
def test_mac_swap_matches_reference(seed, gaps, start, even, rnd):
    offs_l = []
    pos = start
    for g in gaps:
        if even:
            pos += pos & 1
        offs_l.append(pos)
        pos += 12 + g
    size = 4096
    offs_l = [o for o in offs_l if o + 12 <= size]
    rnd.shuffle(offs_l)  # order must not matter (headers do not overlap)
    mem = _umem_bytes(seed, size)
    ref = _ref_mac_swap(mem.tobytes(), offs_l)
    mac_swap(mem, np.array(offs_l, dtype=np.uint64))
    assert mem.tobytes() == ref


def test_mac_swap_on_umem_vector():
    with Umem(16, BUFSZ) as u:
        v = PktVec(16)
        descs = np.arange(16, dtype=np.uint64) * BUFSZ + 256
        descs[3] += 1  # one odd offset forces the bytewise path
        v.set_from_rx(descs, np.full(16, 60))
        offs = v.data_offsets()
        hdr = np.tile(np.arange(12, dtype=np.uint8), (16, 1))
        scatter(u.data, offs, hdr)
        mac_swap(u.data, offs)
        exp = np.tile(np.r_[np.arange(6, 12), np.arange(6)].astype(np.uint8), (16, 1))
        assert np.array_equal(gather(u.data, offs, 12), exp)
        mac_swap(u.data, offs[offs % 2 == 0])  # uint16 path on the even ones
        assert np.array_equal(gather(u.data, offs[offs % 2 == 0], 12), hdr[:15])


def test_byte_helpers_out_of_range():
    mem = np.zeros(100, dtype=np.uint8)
    with pytest.raises(CndpError, match="out of bounds"):
        gather(mem, np.array([95], dtype=np.uint64), 14)
    with pytest.raises(CndpError, match="out of bounds"):
        scatter(mem, np.array([95], dtype=np.uint64), np.zeros((1, 14), dtype=np.uint8))
    with pytest.raises(CndpError, match="out of bounds"):
        mac_swap(mem, np.array([90], dtype=np.uint64))
    with pytest.raises(CndpError, match="out of bounds"):
        mac_swap(mem, np.array([91], dtype=np.uint64))
    with pytest.raises(ConfigError):
        scatter(mem, np.array([0, 1], dtype=np.uint64), np.zeros((1, 4), dtype=np.uint8))
    mac_swap(mem, np.array([], dtype=np.uint64))  # empty burst: a no-op
    assert gather(mem, np.array([], dtype=np.uint64), 6).shape == (0, 6)
