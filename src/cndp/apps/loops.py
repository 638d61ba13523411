"""Poll loops over one xskdev: rx-drop and MAC-swap loopback.

Each loop is a fixed number of numpy calls per burst. Counters live in a shared numpy array
(``counters``: [rx, tx, dropped, empty polls, sleeps]) so a parent process can print live
rates without stopping the data path; the loops count in Python ints and store them into the
shared array every ``PUBLISH_EVERY`` iterations (a numpy element update costs ~0.2 us).
"""

from __future__ import annotations

import numpy as np

from ..mem.pktvec import PktVec, mac_swap

RX, TX, DROPPED, EMPTY_POLLS, SLEEPS = range(5)
NCOUNTERS = 5
PUBLISH_EVERY = 64


def rx_drop(
    dev, stop, counters: np.ndarray, *, burst: int = 64, idle_polls: int = 0, sleep_ms: int = 10
) -> None:
    """Receive and free every frame (cndpfwd ``drop``)."""
    pv = PktVec(burst)
    put = dev.pool.put_bulk
    rx_burst = dev.rx_burst
    addr = pv.addr
    c = counters
    rx = int(c[RX])
    empty_total = int(c[EMPTY_POLLS])
    sleeps = int(c[SLEEPS])
    empty = 0
    it = 0
    while True:
        k = rx_burst(pv, burst)
        if k:
            put(addr[:k])
            rx += k
            empty = 0
        else:
            empty += 1
            empty_total += 1
            if idle_polls and empty >= idle_polls:
                sleeps += 1
                dev.poll(sleep_ms)
                empty = 0
        it += 1
        if it == PUBLISH_EVERY:
            it = 0
            c[RX] = rx
            c[EMPTY_POLLS] = empty_total
            c[SLEEPS] = sleeps
            if stop():
                return


def mac_swap_loop(
    dev, stop, counters: np.ndarray, *, burst: int = 64, idle_polls: int = 0, sleep_ms: int = 10
) -> None:
    """Swap source and destination MAC and send each frame back out (cndpfwd ``lb``)."""
    pv = PktVec(burst)
    put = dev.pool.put_bulk
    rx_burst, tx_burst = dev.rx_burst, dev.tx_burst
    addr = pv.addr
    data = dev.umem.data
    c = counters
    rx, tx, dropped = int(c[RX]), int(c[TX]), int(c[DROPPED])
    empty_total, sleeps = int(c[EMPTY_POLLS]), int(c[SLEEPS])
    empty = 0
    it = 0
    while True:
        k = rx_burst(pv, burst)
        if k:
            rx += k
            empty = 0
            mac_swap(data, addr[:k])
            sent = tx_burst(pv, k)
            tx += sent
            if sent < k:
                put(addr[sent:k])
                dropped += k - sent
        else:
            empty += 1
            empty_total += 1
            if dev.in_flight():
                tx_burst(pv, 0)  # keep kicking and reaping while frames are queued
            if idle_polls and empty >= idle_polls:
                sleeps += 1
                dev.poll(sleep_ms)
                empty = 0
        it += 1
        if it == PUBLISH_EVERY:
            it = 0
            c[RX], c[TX], c[DROPPED] = rx, tx, dropped
            c[EMPTY_POLLS], c[SLEEPS] = empty_total, sleeps
            if stop():
                c[RX], c[TX], c[DROPPED] = rx, tx, dropped
                return
