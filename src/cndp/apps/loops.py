"""Poll loops over one xskdev: rx-drop and MAC-swap loopback.

Each loop is a fixed number of numpy calls per burst. Counters live in a shared numpy array
(``counters``: [rx, tx, dropped, polls, sleeps]) so a parent process can print live rates
without stopping the data path.
"""

from __future__ import annotations

import numpy as np

from ..mem.pktvec import PktVec, mac_swap

RX, TX, DROPPED, EMPTY_POLLS, SLEEPS = range(5)
NCOUNTERS = 5


def _idle(dev, empty: int, idle_polls: int, sleep_ms: int, c: np.ndarray) -> int:
    """After ``idle_polls`` empty polls, sleep in poll() until frames arrive."""
    if idle_polls and empty >= idle_polls:
        c[SLEEPS] += 1
        dev.poll(sleep_ms)
        return 0
    return empty


def rx_drop(
    dev, stop, counters: np.ndarray, *, burst: int = 64, idle_polls: int = 0, sleep_ms: int = 10
) -> None:
    """Receive and free every frame (cndpfwd ``drop``)."""
    pv = PktVec(burst)
    pool = dev.pool
    empty = 0
    c = counters
    while not stop():
        k = dev.rx_burst(pv, burst)
        if k:
            pool.put_bulk(pv.addr[:k])
            c[RX] += k
            empty = 0
        else:
            empty += 1
            c[EMPTY_POLLS] += 1
            empty = _idle(dev, empty, idle_polls, sleep_ms, c)


def mac_swap_loop(
    dev, stop, counters: np.ndarray, *, burst: int = 64, idle_polls: int = 0, sleep_ms: int = 10
) -> None:
    """Swap source and destination MAC and send each frame back out (cndpfwd ``lb``)."""
    pv = PktVec(burst)
    pool = dev.pool
    data = dev.umem.data
    empty = 0
    c = counters
    while not stop():
        k = dev.rx_burst(pv, burst)
        if k:
            c[RX] += k
            empty = 0
            mac_swap(data, pv.addr[:k])
            sent = dev.tx_burst(pv, k)
            c[TX] += sent
            if sent < k:
                pool.put_bulk(pv.addr[sent:k])
                c[DROPPED] += k - sent
        else:
            empty += 1
            c[EMPTY_POLLS] += 1
            if dev.in_flight():
                dev.tx_burst(pv, 0)  # keep kicking and reaping while frames are queued
            empty = _idle(dev, empty, idle_polls, sleep_ms, c)
