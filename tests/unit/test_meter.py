"""Meters: hand-worked RFC examples and hypothesis against a sequential reference.

The reference below is written from the RFC text (RFC 2697 section 3, RFC 2698 section 3,
RFC 4115 section 3), one packet at a time, with exact rational token counts.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.errors import ConfigError
from cndp.lib import meter as M
from cndp.lib.meter import (
    GREEN,
    RED,
    YELLOW,
    Meter,
    Meters,
    SrTcmProfile,
    TrTcm4115Profile,
    TrTcmProfile,
)

G, Y, R = GREEN, YELLOW, RED


class RefMeter:
    """Sequential RFC meter, tokens as Fractions of a byte, time in ticks of 1/hz s."""

    def __init__(self, p, now: int, hz: int):
        self.p, self.hz, self.t = p, hz, now
        if isinstance(p, SrTcmProfile):
            self.a, self.b = Fraction(p.cbs), Fraction(p.ebs)  # Tc, Te
        elif isinstance(p, TrTcmProfile):
            self.a, self.b = Fraction(p.pbs), Fraction(p.cbs)  # Tp, Tc
        else:
            self.a, self.b = Fraction(p.cbs), Fraction(p.ebs)  # Tc, Te

    def update(self, now: int) -> None:
        if now <= self.t:
            return
        secs = Fraction(now - self.t, self.hz)
        self.t = now
        p = self.p
        if isinstance(p, SrTcmProfile):
            # "Tc is incremented by one CIR times per second up to CBS; when Tc reaches CBS,
            # Te is incremented by one CIR times per second up to EBS"
            tc = self.a + p.cir * secs
            if tc > p.cbs:
                self.b = min(Fraction(p.ebs), self.b + tc - p.cbs)
                tc = Fraction(p.cbs)
            self.a = tc
        elif isinstance(p, TrTcmProfile):
            self.a = min(Fraction(p.pbs), self.a + p.pir * secs)
            self.b = min(Fraction(p.cbs), self.b + p.cir * secs)
        else:
            self.a = min(Fraction(p.cbs), self.a + p.cir * secs)
            self.b = min(Fraction(p.ebs), self.b + p.eir * secs)

    def check(self, now: int, size: int, color: int | None) -> int:
        self.update(now)
        aware = color is not None
        if isinstance(self.p, TrTcmProfile):
            tp, tc = self.a, self.b
            if (aware and color == R) or tp - size < 0:
                return R
            if (aware and color == Y) or tc - size < 0:
                self.a = tp - size
                return Y
            self.a, self.b = tp - size, tc - size
            return G
        # RFC 2697 and RFC 4115 share the colour logic over (Tc, Te)
        tc, te = self.a, self.b
        if (not aware or color == G) and tc - size >= 0:
            self.a = tc - size
            return G
        if (not aware or color in (G, Y)) and te - size >= 0:
            self.b = te - size
            return Y
        return R


# --------------------------------------------------------------------------------------------
# hand-worked examples (hz = 1000: times in ms)


def test_srtcm_worked_example_blind():
    m = Meter(SrTcmProfile(cir=1000, cbs=1500, ebs=1000), hz=1000)
    # Tc=1500 Te=1000: 1000 G (Tc 500), 600 Y (Te 400), 400 G (Tc 100), 500 R, 600 R
    assert m.color_blind_check(0, [1000, 600, 400, 500, 600]).tolist() == [G, Y, G, R, R]
    # +500 ms at 1000 B/s: Tc 600, Te 400 -> 700 R, 600 G (Tc 0)
    assert m.color_blind_check(500, [700, 600]).tolist() == [R, G]
    # +2 s = 2000 B: Tc fills to 1500, 500 overflow into Te -> 900
    assert m.color_blind_check(2500, [1500, 900, 1]).tolist() == [G, Y, R]
    assert m.tokens() == {"tc": 0.0, "te": 0.0}


def test_srtcm_worked_example_aware():
    m = Meter(SrTcmProfile(cir=1000, cbs=1500, ebs=1000), hz=1000)
    got = m.color_aware_check(0, [100, 100, 100, 2000], [Y, G, R, G])
    # pre-yellow takes Te, pre-green Tc, pre-red stays red, 2000 fits neither bucket
    assert got.tolist() == [Y, G, R, R]
    assert m.tokens() == {"tc": 1400.0, "te": 900.0}


def test_trtcm_worked_example():
    p = TrTcmProfile(cir=1000, pir=2000, cbs=1000, pbs=2000)
    m = Meter(p, hz=1000)
    # Tp=2000 Tc=1000: 800 G (Tp 1200, Tc 200), 800 Y (Tp 400), 500 R, 100 G (Tp 300, Tc 100)
    assert m.color_blind_check(0, [800, 800, 500, 100]).tolist() == [G, Y, R, G]
    assert m.tokens() == {"tp": 300.0, "tc": 100.0}
    m2 = Meter(p, hz=1000)
    assert m2.color_aware_check(0, [800, 800, 500, 100], [Y, G, G, R]).tolist() == [Y, G, R, R]
    assert m2.tokens() == {"tp": 400.0, "tc": 200.0}
    # both buckets refill at their own rate: +250 ms = Tp +500, Tc +250
    assert m2.color_blind_check(250, [0]).tolist() == [G]
    assert m2.tokens() == {"tp": 900.0, "tc": 450.0}


def test_rfc4115_worked_example():
    m = Meter(TrTcm4115Profile(cir=1000, eir=500, cbs=1000, ebs=500), hz=1000)
    # Tc=1000 Te=500: 600 G (Tc 400), 600 R (fits neither), 400 G (Tc 0), 400 Y (Te 100)
    assert m.color_blind_check(0, [600, 600, 400, 400]).tolist() == [G, R, G, Y]
    # independent buckets (no overflow from C to E as in srTCM): +1 s -> Tc 1000, Te 500
    m.color_blind_check(1000, [])
    assert m.color_blind_check(1000, [0]).tolist() == [G]
    assert m.tokens() == {"tc": 1000.0, "te": 500.0}
    # colour-aware: a pre-yellow packet never takes committed tokens
    assert m.color_aware_check(1000, [100, 100], [Y, G]).tolist() == [Y, G]
    assert m.tokens() == {"tc": 900.0, "te": 400.0}


def test_fractional_tokens_are_not_lost():
    # 3 bytes/s with ms ticks: 333 ms gives 0.999 B, 334 ms 1.002 B; RFC meters accumulate
    m = Meter(SrTcmProfile(cir=3, cbs=1, ebs=0), hz=1000)
    assert m.color_blind_check(0, [1]).tolist() == [G]
    assert m.color_blind_check(333, [1]).tolist() == [R]
    assert m.color_blind_check(334, [1]).tolist() == [G]


def test_profile_validation():
    with pytest.raises(ConfigError, match="cir > 0"):
        SrTcmProfile(0, 100, 100)
    with pytest.raises(ConfigError, match="cbs or ebs"):
        SrTcmProfile(10, 0, 0)
    with pytest.raises(ConfigError, match="cir <= pir"):
        TrTcmProfile(cir=100, pir=50, cbs=1, pbs=1)
    with pytest.raises(ConfigError, match="cir <= pir"):
        TrTcmProfile(cir=100, pir=200, cbs=0, pbs=1)
    with pytest.raises(ConfigError, match="non-zero burst"):
        TrTcm4115Profile(cir=100, eir=0, cbs=0, ebs=10)
    TrTcm4115Profile(cir=0, eir=0, cbs=10, ebs=0)  # allowed (as in DPDK)
    with pytest.raises(ConfigError, match="non-negative integer"):
        SrTcmProfile(1.5, 10, 10)
    with pytest.raises(ConfigError, match="too large"):
        Meter(SrTcmProfile(1, 2**40, 0))
    m = Meters(SrTcmProfile(10, 10, 10), 4)
    with pytest.raises(ConfigError, match="out of range"):
        m.color_blind_check(0, [1, 2], [0, 4])
    with pytest.raises(ConfigError, match="cannot take"):
        m.configure([0], TrTcmProfile(1, 1, 1, 1))
    with pytest.raises(ConfigError, match="backwards"):
        m.color_blind_check([5, 4], [1, 1])
    with pytest.raises(ConfigError, match="colours"):
        m.color_aware_check(0, [1], [3])


# --------------------------------------------------------------------------------------------
# vectorised == sequential reference

profiles = st.one_of(
    st.builds(
        lambda cir, cbs, ebs: SrTcmProfile(cir, cbs, ebs + (cbs == 0)),
        st.integers(1, 5000),
        st.integers(0, 3000),
        st.integers(0, 3000),
    ),
    st.builds(
        lambda c, extra, cbs, pbs: TrTcmProfile(c, c + extra, cbs, pbs),
        st.integers(1, 3000),
        st.integers(0, 3000),
        st.integers(1, 3000),
        st.integers(1, 3000),
    ),
    st.builds(
        lambda c, e, cbs, ebs: TrTcm4115Profile(c, e, cbs + (c > 0), ebs + (e > 0)),
        st.integers(0, 3000),
        st.integers(0, 3000),
        st.integers(0, 3000),
        st.integers(0, 3000),
    ),
)


def _run_reference(profile, n_meters, hz, bursts, aware):
    refs = [RefMeter(profile, 0, hz) for _ in range(n_meters)]
    out = []
    for now, pkts in bursts:
        times = now if np.ndim(now) else [now] * len(pkts)
        out.append(
            [
                refs[m].check(t, size, col if aware else None)
                for t, (size, col, m) in zip(times, pkts, strict=True)
            ]
        )
    return out


def _run_ours(profile, n_meters, hz, bursts, aware):
    ms = Meters(profile, n_meters, hz=hz)
    out = []
    for now, pkts in bursts:
        sizes = [p[0] for p in pkts]
        cols = [p[1] for p in pkts]
        ids = [p[2] for p in pkts]
        if aware:
            got = ms.color_aware_check(now, sizes, cols, ids)
        else:
            got = ms.color_blind_check(now, sizes, ids)
        assert got.dtype == np.uint8
        out.append(got.tolist())
    return out


def _bursts(draw, n_meters: int, per_packet_times: bool):
    # few distinct sizes (like real traffic) and arbitrary ones both occur
    size = st.one_of(st.sampled_from([0, 64, 100, 576, 1500]), st.integers(0, 2000))
    pkt = st.tuples(size, st.integers(0, 2), st.integers(0, n_meters - 1))
    bursts = []
    now = 0
    for _ in range(draw(st.integers(1, 6))):
        pkts = draw(st.lists(pkt, max_size=40))
        if per_packet_times:
            gaps = draw(st.lists(st.integers(0, 400), min_size=len(pkts), max_size=len(pkts)))
            times = (now + np.cumsum(gaps, dtype=np.int64)).tolist()
            now = times[-1] if times else now
            bursts.append((times, pkts))
        else:
            now += draw(st.integers(0, 1500))
            bursts.append((now, pkts))
    return bursts


@settings(max_examples=250, deadline=None)
@given(
    profile=profiles,
    n_meters=st.integers(1, 4),
    aware=st.booleans(),
    per_packet=st.booleans(),
    data=st.data(),
)
def test_vector_checks_equal_sequential_reference(profile, n_meters, aware, per_packet, data):
    bursts = _bursts(data.draw, n_meters, per_packet)
    hz = 1000
    assert _run_ours(profile, n_meters, hz, bursts, aware) == _run_reference(
        profile, n_meters, hz, bursts, aware
    )


@settings(max_examples=40, deadline=None)
@given(profile=profiles, aware=st.booleans(), data=st.data())
def test_chunked_time_path_equals_reference(profile, aware, data):
    # per-packet times in long runs of equal time take the chunked vector path
    n = data.draw(st.integers(16, 120))
    times = np.repeat(np.arange(0, 3 * 700, 700), -(-n // 3))[:n].tolist()
    sizes = data.draw(st.lists(st.sampled_from([64, 300, 1500]), min_size=n, max_size=n))
    cols = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    ids = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    pkts = list(zip(sizes, cols, ids, strict=True))
    bursts = [(times, pkts)]
    assert _run_ours(profile, 3, 1000, bursts, aware) == _run_reference(
        profile, 3, 1000, bursts, aware
    )


def test_many_meters_in_one_call_equal_separate_meters():
    rng = np.random.default_rng(5)
    prof = TrTcmProfile(cir=125_000, pir=250_000, cbs=3000, pbs=6000)  # 1/2 Mbit/s
    n_flows, n = 50, 256
    ms = Meters(prof, n_flows)
    singles = [Meter(prof) for _ in range(n_flows)]
    now = 0
    for _ in range(20):
        now += int(rng.integers(0, 5_000_000))  # up to 5 ms
        ids = rng.integers(0, n_flows, n)
        sizes = rng.choice([64, 512, 1500], n)
        got = ms.color_blind_check(now, sizes, ids)
        for f in range(n_flows):
            sel = ids == f
            assert got[sel].tolist() == singles[f].color_blind_check(now, sizes[sel]).tolist()
    # all three colours occurred
    assert len({*got.tolist()}) == 3


def test_rounds_depend_on_distinct_sizes_not_burst_size(monkeypatch):
    rounds = 0
    real = np.cumsum

    def counting(*a, **k):
        nonlocal rounds
        rounds += 1
        return real(*a, **k)

    m = Meter(SrTcmProfile(cir=1, cbs=100_000, ebs=50_000))
    sizes = np.tile([1500, 64], 2048)  # 4096 packets, enough to exhaust both buckets
    monkeypatch.setattr(M.np, "cumsum", counting)
    col = m.color_blind_check(0, sizes)
    monkeypatch.undo()
    assert rounds <= 2 * 3  # two scans, each at most (distinct sizes + 1) rounds
    assert {*col.tolist()} == {G, Y, R}
    ref = RefMeter(SrTcmProfile(cir=1, cbs=100_000, ebs=50_000), 0, M.NS_PER_S)
    assert col.tolist() == [ref.check(0, int(s), None) for s in sizes]


def test_huge_lengths_stay_exact():
    # lengths whose int64 sum in 1/hz-byte units would overflow take the Python-int path
    p = SrTcmProfile(cir=1, cbs=2 * 10**9, ebs=2 * 10**9)
    m = Meter(p)
    sizes = [19 * 10**8, 10**9, 5 * 10**8, 19 * 10**8, 10**8]  # 5 x 1.9e18 units > 2^63
    ref = RefMeter(p, 0, M.NS_PER_S)
    assert m.color_blind_check(0, sizes).tolist() == [ref.check(0, s, None) for s in sizes]
    assert m.color_blind_check(0, sizes[:1]).tolist() == [R]
    assert m.tokens() == {"tc": 0.0, "te": 5e8}


def test_scalar_check_and_reconfigure():
    m = Meter(TrTcm4115Profile(cir=100, eir=100, cbs=100, ebs=100), hz=10)
    assert [m.check(0, 60) for _ in range(4)] == [G, Y, R, R]
    assert m.check(0, 40, YELLOW) == Y
    m.configure([0], TrTcm4115Profile(cir=100, eir=100, cbs=500, ebs=100), now=5)
    assert m.tokens() == {"tc": 500.0, "te": 100.0}
    assert m.last[0] == 5
