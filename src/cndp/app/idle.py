"""Idle management for poll loops (CNDP's idlemgr).

A worker polls while traffic flows. After ``idle_timeout`` ms without a packet it waits in
epoll on its ports' file descriptors for up to ``intr_timeout`` ms, so an idle forwarder does
not burn a core; the first packet (the socket turns readable) wakes it at once.

The per-iteration cost while busy is one integer compare; the clock is read only every
``CHECK_EVERY`` empty polls.
"""

from __future__ import annotations

import os
import select
import time

from ..errors import ConfigError

MAX_TIMEOUT_MS = 600_000  # CNDP: each timeout must be < 600000 ms
MAX_FDS = 512  # CNDP IDLE_MGR_MAX_FDS
CHECK_EVERY = 64


class IdleManager:
    def __init__(
        self, fds: list[int], idle_timeout_ms: int, intr_timeout_ms: int, name: str = "idle"
    ):
        for what, v in (("idle_timeout", idle_timeout_ms), ("intr_timeout", intr_timeout_ms)):
            if not 0 <= v < MAX_TIMEOUT_MS:
                raise ConfigError(f"{name}: {what} = {v} ms is outside 0..{MAX_TIMEOUT_MS - 1}")
        fds = [fd for fd in fds if fd is not None and fd >= 0]
        if len(fds) > MAX_FDS:
            raise ConfigError(f"{name}: {len(fds)} file descriptors, at most {MAX_FDS}")
        if len(set(fds)) != len(fds):
            raise ConfigError(f"{name}: a file descriptor was given twice")
        self.name = name
        self.idle_s = idle_timeout_ms / 1000.0
        self.intr_s = intr_timeout_ms / 1000.0
        self.enabled = idle_timeout_ms > 0 and bool(fds)
        self._ep = select.epoll() if self.enabled else None
        for fd in fds if self.enabled else ():
            self._ep.register(fd, select.EPOLLIN)
        self._empty = 0
        self._since = 0.0
        self.called_epoll = 0
        self.intr_timedout = 0
        self.intr_woken = 0

    def process(self, got: int) -> None:
        """Call once per loop iteration with the number of packets the iteration received."""
        if got:
            self._empty = 0
            return
        if not self.enabled:
            return
        e = self._empty
        self._empty = e + 1
        # Nothing to do: let a runnable task on this CPU go first (e.g. the NAPI thread that
        # fills our rings, when threaded NAPI shares the core). Returns at once otherwise.
        os.sched_yield()
        if e == 0:
            self._since = time.monotonic()
        elif e % CHECK_EVERY == 0 and time.monotonic() - self._since >= self.idle_s:
            self.called_epoll += 1
            if self._ep.poll(self.intr_s):
                self.intr_woken += 1
            else:
                self.intr_timedout += 1
            self._empty = 0

    def stats(self) -> dict[str, int]:
        return {
            "called_epoll": self.called_epoll,
            "intr_timedout": self.intr_timedout,
            "intr_woken": self.intr_woken,
        }

    def close(self) -> None:
        if self._ep is not None:
            self._ep.close()
            self._ep = None
