"""txgen streams: ranges, frame sources, stamps, engines over in-memory rings and net_ring."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.apps.txgen import stream as S
from cndp.apps.txgen.board import NB_HIST, SK, Board, hist_bucket, hist_labels
from cndp.apps.txgen.engine import Capture, CopyEngine, PcapSource, RxPort, TxPort, XskBlockEngine
from cndp.apps.txgen.stream import FrameSource, PortSettings, Range, TxgenError
from cndp.mem import Umem
from cndp.net import build as nb
from cndp.net.pcap import PcapWriter, read_pcap
from cndp.xskdev.xskdev import XskConfig, XskDev

IP = int(ipaddress.IPv4Address("198.18.1.1"))


def settings_(**kw) -> PortSettings:
    base = dict(src_mac="02:00:c6:12:00:01", dst_mac="02:00:c6:12:00:02")
    base.update(kw)
    return PortSettings(**base)


# ------------------------------------------------------------------------------------- ranges


@given(
    lo=st.integers(0, 1000),
    span=st.integers(1, 300),
    off=st.integers(0, 299),
    inc=st.integers(-300, 300),
    i0=st.integers(0, 10**12),
    n=st.integers(1, 50),
)
def test_range_values_wrap_within_min_max(lo, span, off, inc, i0, n):
    hi = lo + span - 1
    start = lo + off % span
    r = Range(start, lo, hi, inc)
    got = r.values(i0, n).tolist()
    want = [lo + (start - lo + (i0 + j) * inc) % span for j in range(n)]
    assert got == want
    # the period really is the period
    p = r.period
    assert r.values(i0 + p, n).tolist() == got


def test_range_check_messages():
    with pytest.raises(TxgenError, match=r"start 5 is outside min\.\.max"):
        Range(5, 6, 9, 1).check("ttl", 0, 255)
    with pytest.raises(TxgenError, match="min 9 is above max 6"):
        Range(7, 9, 6, 1).check("ttl", 0, 255)
    with pytest.raises(TxgenError, match="increment 10 is larger"):
        Range(6, 6, 9, 10).check("ttl", 0, 255)


# ------------------------------------------------------------------------------------- source


def _ranged(**ranges) -> PortSettings:
    return settings_(range_mode=True, ranges=ranges)


def test_source_applies_ranges_frame_by_frame():
    s = _ranged(dst_ip=Range(IP, IP, IP + 9, 1), sport=Range(100, 100, 102, 1))
    src = FrameSource(s, stream_id=3)
    assert src.period == 30  # lcm(10, 3)
    r = src.rows(7, 40)
    lay = src.layout
    for j in range(40):
        fr = r.data[j, : r.lengths[j]].tobytes()
        i = 7 + j
        assert fr[lay.l3 + 16 : lay.l3 + 20] == ipaddress.IPv4Address(IP + i % 10).packed
        assert struct.unpack("!H", fr[lay.l4 : lay.l4 + 2])[0] == 100 + i % 3
    assert nb.check_frames(r.data, r.lengths, lay).all()


def test_table_and_chunked_sources_agree(monkeypatch):
    s = _ranged(dst_ip=Range(IP, IP, IP + 99, 7), length=Range(60, 60, 200, 13))
    a = FrameSource(s, 1)
    assert a.table is not None
    monkeypatch.setattr(S, "TABLE_BYTES", 1000)  # forces chunked generation
    monkeypatch.setattr(S, "CHUNK", 64)
    b = FrameSource(s, 1)
    assert b.table is None
    for q0, k in ((0, 10), (60, 10), (123, 200), (10**9 + 5, 77)):
        ra, rb = a.rows(q0, k), b.rows(q0, k)
        assert (ra.lengths == rb.lengths).all()
        assert (ra.data == rb.data).all()


def _apply_stamp(src, rows, seq0, ts):
    recs = S.Stamper(len(rows.lengths)).fill(len(rows.lengths), seq0, ts)
    d = rows.data.copy()
    for i in range(len(d)):  # test oracle: per frame
        ln = int(rows.lengths[i])
        d[i, ln - 18 : ln - 6] = np.frombuffer(recs[i].tobytes(), np.uint8)
    return d


@settings(max_examples=40, deadline=None)
@given(
    v=st.sampled_from([4, 6]),
    proto=st.sampled_from(nb.PROTOS),
    extra=st.integers(18, 300),
    spread=st.integers(0, 40),
    seq0=st.integers(1, 2**32 - 1),
    ts=st.integers(1, 2**63 - 1),
)
def test_stamps_keep_checksums_valid(v, proto, extra, spread, seq0, ts):
    ips = ("198.18.0.1", "198.18.1.1") if v == 4 else ("fd00:198:18::1", "fd00:198:18:1::1")
    s = settings_(type=f"ipv{v}", proto=proto, src_ip=ips[0], dst_ip=ips[1])
    base = s.min_size() - 4 + extra
    s.size = base + 4
    if spread:
        s.range_mode = True
        s.ranges = {"length": Range(base, base, base + spread, 1)}
    s.validate()
    src = FrameSource(s, stream_id=5)
    assert src.stamped
    rows = src.rows(0, spread + 3)
    d = _apply_stamp(src, rows, seq0, ts)
    # the L4 checksum was computed once, over the zero stamp: still valid (balance word)
    assert nb.check_frames(d, rows.lengths, src.layout).all()
    for i in range(len(d)):
        ln = int(rows.lengths[i])
        st_ = np.frombuffer(d[i, ln - 18 : ln].tobytes(), S.STAMP_DTYPE)[0]
        assert int(st_["magic"]) == S.STAMP_MAGIC and int(st_["stream"]) == 5
        assert int(st_["seq"]) == (seq0 + i) & 0xFFFFFFFF
        assert int(st_["ts_lo"]) | int(st_["ts_hi"]) << 32 == ts & S.TS_MASK


@given(
    seq0=st.integers(0, 2**32 - 1),
    ts=st.integers(0, 2**63 - 1),
    k=st.integers(1, 256),
)
def test_stamper_balance_word_matches_the_general_rule(seq0, ts, k):
    """Fast path (a table slice) and carry path agree with the rule written out per frame:
    the 12 bytes sum to 0xFFFF in 16-bit ones' complement."""
    recs = S.Stamper(256).fill(k, seq0, ts)
    raw = np.frombuffer(recs.tobytes(), np.uint8).reshape(k, 12)
    for i in range(k):
        words = [int(raw[i, j]) << 8 | int(raw[i, j + 1]) for j in range(0, 12, 2)]
        t = sum(int(w) for w in words)
        while t >> 16:
            t = (t & 0xFFFF) + (t >> 16)
        assert t == 0xFFFF, (seq0, ts, k, i)


def test_small_frames_are_not_stamped():
    s = settings_(proto="tcp", size=64)  # 6 payload bytes: no room for 18
    assert not FrameSource(s).stamped
    assert FrameSource(settings_(size=64)).stamped  # IPv4/UDP 64 bytes: exactly 18


def test_live_ranges_rewrite_the_right_bytes():
    mac = 0x0200C6120002
    s = _ranged(
        dst_ip=Range(IP, IP, IP + 5, 1),
        dport=Range(10, 10, 20, 2),
        dst_mac=Range(mac, mac, mac + 3, 1),
        ttl=Range(64, 1, 64, -1),
        vlan=Range(5, 5, 9, 1),
    )
    s.vlan, s.vlan_prio = 5, 3
    src = FrameSource(s)
    frame = bytearray(src.first_frame())
    want = src.rows(1, 1)
    for off, w, _start, lo, hi, inc in S.live_ranges(s):
        # the second frame's value is start+inc wrapped; write it where the program would
        span = hi - lo + 1
        v = lo + (_start - lo + inc) % span
        frame[off : off + w] = v.to_bytes(w, "big")
    got = bytes(frame)
    ref = want.data[0, : want.lengths[0]].tobytes()
    # identical except the checksums (the live program fixes those incrementally)
    lay = src.layout
    mask = [
        i
        for i in range(len(ref))
        if not (lay.l3 + 10 <= i < lay.l3 + 12) and not (lay.l4_csum <= i < lay.l4_csum + 2)
    ]
    assert bytes(got[i] for i in mask) == bytes(ref[i] for i in mask)


def test_live_refuses_what_it_cannot_do():
    with pytest.raises(TxgenError, match="range size is not supported"):
        S.live_ranges(_ranged(length=Range(60, 60, 100, 1)))
    with pytest.raises(TxgenError, match="low 32 bits of a MAC"):
        S.live_ranges(_ranged(dst_mac=Range(0, 0, 2**40, 1)))


def test_settings_validation_messages():
    with pytest.raises(TxgenError, match="outside the benchmarking ranges"):
        settings_(dst_ip="10.0.0.1").validate()
    settings_(dst_ip="10.0.0.1").validate(any_address=True)
    with pytest.raises(TxgenError, match="too small for ipv6/tcp"):
        settings_(
            type="ipv6", proto="tcp", src_ip="fd00:198:18::1", dst_ip="fd00:198:18::2", size=64
        ).validate()
    with pytest.raises(TxgenError, match="exceeds the port MTU 1500"):
        settings_(size=1600).validate(mtu=1500)
    with pytest.raises(TxgenError, match="burst 0 is out of range"):
        settings_(burst=0).validate()
    d = settings_(ranges={"ttl": Range(1, 1, 9, 1)}).to_dict()
    assert PortSettings.from_dict(d) == settings_(ranges={"ttl": Range(1, 1, 9, 1)})


def test_hist_buckets():
    lat = np.array([0, 999, 1000, 1999, 2000, 3_999, 4000, 10**15])
    assert hist_bucket(lat).tolist() == [0, 0, 1, 1, 2, 2, 3, NB_HIST - 1]
    assert hist_labels()[:3] == ["<1us", "1us-2us", "2us-4us"]
    assert len(hist_labels()) == NB_HIST


# ------------------------------------------------------------------------------------- engines


def test_block_engine_static_and_stamped_over_memory_rings():
    """The AF_XDP block engine over in-memory rings: the descriptors it queues point at
    frames that are the stream's frames, stamped, with valid checksums; completed slots
    are reused without returning to the pool."""
    umem = Umem(4096)
    dev, peer = XskDev.over_memory_rings(XskConfig("sim0", tx_size=256), umem)
    try:

        class P:
            name = "sim0:0"

        p = P()
        p.dev, p.pool, p.umem = dev, dev.pool, umem
        s = _ranged(dport=Range(1, 1, 4, 1))
        src = FrameSource(s, stream_id=2)
        eng = XskBlockEngine(p, src, block=512)
        assert eng.static and eng.m % 4 == 0
        free_before = dev.pool.avail
        tx = TxPort(0, eng, pps=0, count=1000, burst=64)
        tx.start(0)
        seen = 0
        while tx.running:
            tx.step(123456789)
            a, ln = peer.transmitted()
            for i in range(len(a)):  # oracle: check each frame in the UMEM
                fr = umem.data[int(a[i]) : int(a[i]) + int(ln[i])]
                q = seen + i
                assert struct.unpack("!H", fr[36:38].tobytes())[0] == 1 + q % 4
                stp = np.frombuffer(fr[-18:].tobytes(), S.STAMP_DTYPE)[0]
                assert int(stp["seq"]) == q + 1 and int(stp["ts_lo"]) == 123456789
            m = np.stack([umem.data[int(x) : int(x) + 60] for x in a]) if len(a) else None
            if m is not None:
                assert nb.check_frames(m, ln.astype(np.int64), src.layout).all()
            seen += len(a)
        assert seen == 1000 and tx.pkts == 1000 and tx.bytes == 60000
        dev.reap()
        assert dev.pool.avail == free_before  # completions did not leak into the pool
        eng.close()
        assert dev.pool.avail == free_before + eng.m
    finally:
        dev.close()
        umem.close()


@pytest.fixture
def ring_ports():
    from cndp.pktdev import PortConfig, port_setup

    umem = Umem(2048)
    a = port_setup(PortConfig("txa", "net_ring", ifname="txgen-unit", umem=umem))
    b = port_setup(PortConfig("txb", "net_ring", ifname="txgen-unit", umem=umem, pool=a.pool))
    try:
        yield a, b, umem
    finally:
        b.close()
        a.close()
        umem.close()


def test_copy_engine_to_receiver_counts_latency_and_order(ring_ports, tmp_path):
    a, b, _umem = ring_ports
    board = Board(2, 1)
    s = settings_(count=500)
    src = FrameSource(s, stream_id=0)
    tx = TxPort(0, CopyEngine(a, src), pps=0, count=500, burst=32)
    rx = RxPort(1, b, board)
    rx.capture = Capture(str(tmp_path / "cap.pcap"), limit=100)
    tx.start(0)
    got = 0
    import time

    while tx.running or got < 500:
        tx.step(time.monotonic_ns())
        got += rx.step()
    assert got == 500
    row = rx.st[0]
    assert row[SK["pkts"]] == 500 and row[SK["bytes"]] == 500 * 60
    assert row[SK["lat_n"]] == 500 and 0 <= row[SK["lat_min"]] <= row[SK["lat_max"]]
    assert row[SK["reorder"]] == 0 and row[SK["seq_max"]] == 500
    assert rx.hist[0].sum() == 500
    rx.close()
    recs = read_pcap(tmp_path / "cap.pcap")
    assert len(recs) == 100  # the limit
    assert all(len(r.data) == 60 for r in recs)
    ref = src.rows(0, 1).data[0].tobytes()
    assert recs[0].data[:40] == ref[:40]  # headers up to the UDP checksum (stamp changes it)
    cap = np.stack([np.frombuffer(r.data, np.uint8) for r in recs])
    assert nb.check_frames(cap, np.full(100, 60), src.layout).all()
    seqs = [int(np.frombuffer(r.data[-18:], S.STAMP_DTYPE)[0]["seq"]) for r in recs]
    assert seqs == list(range(1, 101))


def test_receiver_counts_reordering_and_foreign_frames(ring_ports):
    a, b, umem = ring_ports
    board = Board(4, 1)
    src = FrameSource(settings_(), stream_id=3)
    rows = src.rows(0, 6)
    stv = S.Stamper(6).fill(6, 1, 5)
    frames = []
    for i in (0, 1, 3, 2, 4, 5):  # seq 3 arrives before seq 2
        ln = int(rows.lengths[i])
        f = rows.data[i, :ln].copy()
        f[ln - 18 : ln - 6] = np.frombuffer(stv[i].tobytes(), np.uint8)
        frames.append(f)
    frames.append(np.zeros(60, np.uint8))  # not ours
    from cndp.mem import PktVec

    pv = PktVec(16)
    pv.alloc_from(a.pool, len(frames))
    for i, f in enumerate(frames):
        o = int(pv.addr[i])
        umem.data[o : o + len(f)] = f
        pv.data_len[i] = len(f)
    assert a.tx_burst(pv, len(frames)) == len(frames)
    rx = RxPort(1, b, board)
    assert rx.step() == 7
    assert rx.stamped == 6 and rx.pkts == 7
    assert rx.st[3][SK["reorder"]] == 1 and rx.st[3][SK["pkts"]] == 6


def test_pcap_source_replays_in_order_and_loops(tmp_path):
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    with PcapWriter(tmp_path / "in.pcap") as w:
        w.write_many(frames)
    src = PcapSource(tmp_path / "in.pcap", 1500)
    r = src.rows(3, 7)
    got = [r.data[j, : r.lengths[j]].tobytes() for j in range(7)]
    assert got == [frames[(3 + j) % 5] for j in range(7)]
    with pytest.raises(TxgenError, match="is not a pcap file"):
        (tmp_path / "bad.pcap").write_bytes(b"xx")
        PcapSource(tmp_path / "bad.pcap", 1500)
    with pytest.raises(TxgenError, match="has a frame of 64 bytes"):
        PcapSource(tmp_path / "in.pcap", 63)
