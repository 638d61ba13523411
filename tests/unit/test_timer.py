"""Timers: ordering, periodic re-arm without drift, callbacks that reset/stop, stats, model."""

from __future__ import annotations

import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cndp.lib.timer import PERIODICAL, SINGLE, Timer, TimerError, TimerList


class FakeClock:
    def __init__(self, t: int = 0):
        self.t = t

    def __call__(self) -> int:
        return self.t


def _list(t: int = 0) -> tuple[TimerList, FakeClock]:
    clk = FakeClock(t)
    return TimerList(clock=clk), clk


def test_single_fires_once_at_expiry():
    tl, clk = _list(100)
    fired = []
    t = Timer(tl)
    t.reset(50, SINGLE, lambda tim, arg: fired.append((clk.t, arg)), "x")
    assert t.pending and t.expire == 150 and len(tl) == 1
    clk.t = 149
    assert tl.manage() == 0 and fired == []
    clk.t = 170
    assert tl.manage() == 1 and fired == [(170, "x")]
    assert not t.pending and len(tl) == 0
    clk.t = 1000
    assert tl.manage() == 0 and len(fired) == 1


def test_periodic_rearms_from_expiry_without_drift():
    tl, clk = _list()
    seen = []
    t = Timer(tl)
    t.reset(10, PERIODICAL, lambda tim, _: seen.append(tim.expire))
    for now in (13, 27, 31, 55, 56, 57, 99):
        clk.t = now
        tl.manage()
    # expiries stay on the 10-tick grid however late manage() runs; one catch-up per call
    assert seen == [10, 20, 30, 40, 50, 60]
    assert t.pending and t.expire == 70


def test_expired_timers_run_in_expiry_order_ties_in_arming_order():
    tl, clk = _list()
    order = []
    timers = {name: Timer(tl) for name in "abcde"}
    for name, ticks in zip("abcde", (30, 10, 20, 10, 5), strict=True):
        timers[name].reset(ticks, SINGLE, lambda tim, n: order.append(n), name)
    clk.t = 25
    assert tl.manage() == 4
    assert order == ["e", "b", "d", "c"]
    assert timers["a"].pending and tl.next_expiry() == 30


def test_callbacks_that_stop_and_reset_timers():
    tl, clk = _list()
    log = []
    a, b, c = Timer(tl), Timer(tl), Timer(tl)

    def a_cb(tim, _):
        log.append("a")
        b.stop()  # b expired in the same round but must not run
        c.reset(100, SINGLE, lambda t, x: log.append("c"))  # c moves out of this round
        tim.stop()  # a periodic timer stopping itself is not re-armed

    a.reset(5, PERIODICAL, a_cb)
    b.reset(6, SINGLE, lambda t, x: log.append("b"))
    c.reset(7, SINGLE, lambda t, x: log.append("c-early"))
    clk.t = 10
    assert tl.manage() == 1
    assert log == ["a"] and not a.pending and not b.pending and c.expire == 110
    clk.t = 200
    tl.manage()
    assert log == ["a", "c"]
    assert len(tl) == 0


def test_callback_resets_itself_with_new_period():
    tl, clk = _list()
    seen = []

    def cb(tim, _):
        seen.append(clk.t)
        if len(seen) == 2:
            tim.reset(100, PERIODICAL, cb)

    Timer(tl).reset(10, PERIODICAL, cb)
    for now in range(0, 400, 10):
        clk.t = now
        tl.manage()
    assert seen == [10, 20, 120, 220, 320]


def test_exception_in_callback_keeps_other_timers_armed():
    tl, clk = _list()
    log = []

    def boom(tim, _):
        raise RuntimeError("boom")

    bad, good = Timer(tl), Timer(tl)
    bad.reset(1, PERIODICAL, boom)
    good.reset(2, SINGLE, lambda t, x: log.append("good"))
    clk.t = 5
    with pytest.raises(RuntimeError):
        tl.manage()
    assert good.pending and bad.pending and bad.expire == 2
    bad.stop()
    assert tl.manage() == 1 and log == ["good"]


def test_stats_and_errors():
    tl, clk = _list()
    t = Timer(tl)
    t.reset(5, SINGLE, lambda *a: None)
    t.reset(6, SINGLE, lambda *a: None)  # re-arm: still one pending
    assert len(tl) == 1
    t.stop()
    t.stop()  # not armed: not counted
    clk.t = 100
    tl.manage()
    s = tl.stats
    assert (s.reset, s.stop, s.manage, s.expired, s.pending) == (2, 1, 1, 0, 0)
    assert "reset=2" in tl.dump_stats()
    with pytest.raises(TimerError, match="no timer list"):
        Timer().reset(1, SINGLE, lambda *a: None)
    with pytest.raises(TimerError, match="ticks"):
        t.reset(0, PERIODICAL, lambda *a: None)
    with pytest.raises(TimerError, match="type"):
        t.reset(1, 7, lambda *a: None)
    with pytest.raises(TimerError, match="callable"):
        t.reset(1, SINGLE, None)
    assert tl.ms_to_ticks(1.5) == 1_500_000


def test_move_between_lists():
    tl1, c1 = _list()
    tl2, c2 = _list()
    log = []
    t = Timer(tl1)
    t.reset(10, SINGLE, lambda tim, x: log.append(x), 1)
    t.reset(10, SINGLE, lambda tim, x: log.append(x), 2, tlist=tl2)
    c1.t = c2.t = 50
    assert tl1.manage() == 0 and tl2.manage() == 1 and log == [2]
    assert len(tl1) == 0 and len(tl2) == 0


def test_real_monotonic_clock():
    tl = TimerList()
    hits = []
    t = Timer(tl)
    t.reset(tl.ms_to_ticks(2), PERIODICAL, lambda tim, _: hits.append(time.monotonic_ns()))
    start = time.monotonic_ns()
    deadline = start + 2_000_000_000
    while len(hits) < 3 and time.monotonic_ns() < deadline:
        tl.manage()
        time.sleep(0.0005)
    t.stop()
    assert len(hits) == 3
    assert hits[0] - start >= 2_000_000  # not before its time


class TimersVsModel(RuleBasedStateMachine):
    """Random reset/stop/advance/manage against a model of expiry order."""

    def __init__(self):
        super().__init__()
        self.clk = FakeClock()
        self.tl = TimerList(clock=self.clk)
        self.timers = [Timer(self.tl) for _ in range(4)]
        self.log: list[tuple[int, int]] = []
        # model: index -> [expire, period, type, seq]
        self.model: dict[int, list[int]] = {}
        self.seq = 0
        self.mlog: list[tuple[int, int]] = []

    def _cb(self, tim, idx):
        self.log.append((idx, tim.expire))

    @rule(i=st.integers(0, 3), ticks=st.integers(1, 30), periodic=st.booleans())
    def reset(self, i, ticks, periodic):
        kind = PERIODICAL if periodic else SINGLE
        self.timers[i].reset(ticks, kind, self._cb, i)
        self.seq += 1
        self.model[i] = [self.clk.t + ticks, ticks, kind, self.seq]

    @rule(i=st.integers(0, 3))
    def stop(self, i):
        self.timers[i].stop()
        self.model.pop(i, None)

    @rule(dt=st.integers(0, 40))
    def manage(self, dt):
        self.clk.t += dt
        self.tl.manage()
        due = sorted(
            (e[0], e[3], i) for i, e in self.model.items() if e[0] <= self.clk.t
        )  # expiry, then arming order
        for exp, _, i in due:
            self.mlog.append((i, exp))
            e = self.model[i]
            if e[2] == PERIODICAL:
                self.seq += 1
                e[0] += e[1]
                e[3] = self.seq
            else:
                del self.model[i]

    @invariant()
    def agree(self):
        assert self.log == self.mlog
        assert len(self.tl) == len(self.model)
        for i, t in enumerate(self.timers):
            assert t.pending == (i in self.model)
            if i in self.model:
                assert t.expire == self.model[i][0]


TestTimersVsModel = TimersVsModel.TestCase
TestTimersVsModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
