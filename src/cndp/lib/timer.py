"""Timers for worker loops, after DPDK ``rte_timer`` / CNDP ``cne_timer``.

Each worker owns a ``TimerList`` (CNDP keeps one list per thread; our workers are processes, so
a list never crosses a process and needs no locks). ``Timer.reset(ticks, SINGLE|PERIODICAL,
callback, arg)`` arms a timer ``ticks`` from now; the worker loop calls ``TimerList.manage()``,
which runs every timer expired at that moment, earliest expiry first (ties in arming order).

* A periodic timer is re-armed at ``previous expiry + period``, not ``now + period``, so it does
  not drift however late ``manage()`` runs. Like rte_timer, a periodic timer that is more than
  one period behind fires once per ``manage()`` call until it has caught up (``manage`` never
  loops on one timer).
* A callback may reset or stop any timer, itself included; a periodic timer reset or stopped
  by its own callback is not re-armed.
* The tick source is ``time.monotonic_ns`` (1 tick = 1 ns) unless another is given, e.g. a fake
  clock in tests. ``ms_to_ticks`` converts.

Timer lists use a binary heap; a timer that is reset or stopped leaves a stale heap entry that
is skipped when reached (lazy deletion), so reset and stop cost O(log n).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CndpError

SINGLE = 0
PERIODICAL = 1


class TimerError(CndpError):
    """A timer was used in a way its list cannot serve."""


@dataclass
class TimerStats:
    """Counters as in ``cne_timer_dump_stats``."""

    reset: int = 0  # reset() calls
    stop: int = 0  # stop() calls that stopped a pending timer
    manage: int = 0  # manage() calls
    expired: int = 0  # callbacks run
    pending: int = 0  # timers armed now


Callback = Callable[["Timer", Any], None]

# Heap entries carry a generation unique across all lists (a timer moved to another list
# must not match its stale entry in the old one); it also orders equal expiries by arming.
_generation = itertools.count(1)


class TimerList:
    """The timers of one worker; ``manage()`` runs the expired ones."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns, hz: int = 1_000_000_000):
        self.clock = clock
        self.hz = int(hz)  # ticks per second of ``clock``
        self._heap: list[tuple[int, int, Timer]] = []
        self.stats = TimerStats()

    def ms_to_ticks(self, ms: float) -> int:
        return int(ms * self.hz // 1000)

    def _push(self, tim: Timer) -> None:
        tim._gen = next(_generation)
        heapq.heappush(self._heap, (tim.expire, tim._gen, tim))

    def next_expiry(self) -> int | None:
        """Expiry (in ticks) of the earliest armed timer, or None: how long a loop may sleep."""
        h = self._heap
        while h and h[0][2]._gen != h[0][1]:
            heapq.heappop(h)  # stale entry of a reset or stopped timer
        return h[0][0] if h else None

    def manage(self) -> int:
        """Run every timer expired now, earliest first; returns how many callbacks ran.

        If a callback raises, the exception propagates; timers that had expired but not yet
        run stay armed and run at the next ``manage()``."""
        self.stats.manage += 1
        now = self.clock()
        h = self._heap
        due: list[tuple[int, int, Timer]] = []
        while h and h[0][0] <= now:
            e = heapq.heappop(h)
            if e[2]._gen == e[1]:
                due.append(e)
        ran = 0
        try:
            for i, (_exp, gen, tim) in enumerate(due):
                if tim._gen != gen:  # reset or stopped by an earlier callback of this round
                    continue
                try:
                    ran += 1
                    self.stats.expired += 1
                    tim._callback(tim, tim._arg)
                finally:
                    if tim._gen == gen:  # the callback did not reset or stop it
                        if tim.type == PERIODICAL:
                            tim.expire += tim.period
                            self._push(tim)
                        else:
                            tim._gen = 0
                            self.stats.pending -= 1
                    due[i] = (0, 0, tim)
        finally:
            for exp, gen, tim in due:  # not run because a callback raised: keep them armed
                if gen and tim._gen == gen:
                    heapq.heappush(h, (exp, gen, tim))
        return ran

    def __len__(self) -> int:
        return self.stats.pending

    def dump_stats(self) -> str:
        s = self.stats
        return (
            f"timer stats: reset={s.reset} stop={s.stop} manage={s.manage} "
            f"expired={s.expired} pending={s.pending}"
        )


@dataclass(eq=False)
class Timer:
    """One timer (``struct cne_timer``), armed on a ``TimerList``."""

    tlist: TimerList | None = None
    expire: int = 0
    period: int = 0
    type: int = SINGLE
    _callback: Callback | None = field(default=None, repr=False)
    _arg: Any = field(default=None, repr=False)
    _gen: int = field(default=0, repr=False)  # heap generation; 0 = not armed

    @property
    def pending(self) -> bool:
        """Armed and not yet expired (a SINGLE timer stops being pending when it runs)."""
        return self._gen != 0

    def reset(
        self,
        ticks: int,
        type: int,  # rte_timer's name for it
        callback: Callback,
        arg: Any = None,
        tlist: TimerList | None = None,
    ) -> None:
        """(Re)arm: run ``callback(timer, arg)`` ``ticks`` from now, then every ``ticks`` if
        ``type`` is PERIODICAL. Moves the timer to ``tlist`` when given."""
        if type not in (SINGLE, PERIODICAL):
            raise TimerError(f"timer type {type!r} unknown", fix="use SINGLE or PERIODICAL")
        if ticks < 0 or (type == PERIODICAL and ticks == 0):
            raise TimerError(
                f"timer ticks {ticks} invalid for this type",
                fix="ticks >= 0 (> 0 for a periodic timer)",
            )
        if not callable(callback):
            raise TimerError("timer callback is not callable", fix="pass a function(timer, arg)")
        target = tlist if tlist is not None else self.tlist
        if target is None:
            raise TimerError("timer has no timer list", fix="Timer(tlist) or reset(..., tlist=)")
        self._disarm()
        self.tlist = target
        self.type = type
        self.period = int(ticks)
        self._callback = callback
        self._arg = arg
        self.expire = target.clock() + int(ticks)
        target._push(self)
        target.stats.reset += 1
        target.stats.pending += 1

    def _disarm(self) -> bool:
        if self._gen and self.tlist is not None:
            self._gen = 0  # the heap entry goes stale
            self.tlist.stats.pending -= 1
            return True
        return False

    def stop(self) -> None:
        """Disarm (a no-op if not armed); safe inside the timer's own callback."""
        if self._disarm():
            self.tlist.stats.stop += 1
