"""The idle manager: poll while busy, sleep in epoll when idle (CNDP idlemgr semantics)."""

from __future__ import annotations

import socket
import time

import pytest

from cndp.app.idle import MAX_FDS, IdleManager
from cndp.errors import ConfigError


def test_rejects_bad_timeouts_and_fds():
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(ConfigError, match="idle_timeout = 600000"):
            IdleManager([a.fileno()], 600_000, 10)
        with pytest.raises(ConfigError, match="intr_timeout = -1"):
            IdleManager([a.fileno()], 10, -1)
        with pytest.raises(ConfigError, match="given twice"):
            IdleManager([a.fileno(), a.fileno()], 10, 10)
        with pytest.raises(ConfigError, match=f"at most {MAX_FDS}"):
            IdleManager(list(range(3, 3 + MAX_FDS + 1)), 10, 10)


def test_idle_loop_sleeps_and_times_out():
    a, b = socket.socketpair()
    with a, b:
        im = IdleManager([a.fileno()], 5, 20)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.3:
            im.process(0)
        st = im.stats()
        assert st["called_epoll"] > 0 and st["intr_timedout"] > 0
        # sleeping: far fewer iterations happened than a spinning loop would do
        assert st["called_epoll"] <= 0.3 / 0.02 + 2
        im.close()


def test_a_readable_fd_wakes_it_at_once():
    a, b = socket.socketpair()
    with a, b:
        im = IdleManager([a.fileno()], 1, 5000)
        b.send(b"x")  # readable: the epoll wait returns immediately
        t0 = time.monotonic()
        while im.stats()["called_epoll"] == 0 and time.monotonic() - t0 < 2:
            im.process(0)
        assert im.stats()["intr_woken"] == 1
        assert time.monotonic() - t0 < 1.0
        im.close()


def test_traffic_keeps_it_polling():
    a, b = socket.socketpair()
    with a, b:
        im = IdleManager([a.fileno()], 1, 1000)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.1:
            im.process(1)
        assert im.stats()["called_epoll"] == 0


def test_disabled_without_idle_timeout():
    im = IdleManager([], 0, 0)
    for _ in range(1000):
        im.process(0)
    assert im.stats()["called_epoll"] == 0
