"""A client of CNDP telemetry sockets, and discovery of the sockets in a runtime directory.

What the sidecars (``cndp-exporter``, ``cndp-rest``) use to reach an application: they share
its runtime directory (``/var/run/cndp``, an ``emptyDir`` in a pod) and speak the telemetry
protocol of :mod:`.uds` (SOCK_SEQPACKET, one request datagram, one JSON reply datagram).

    c = AppClient("/var/run/cndp/app_socket.1234")
    c.ask("/metrics/port_stats")      # -> dict; raises AppUnreachable, never hangs
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import stat
import threading

from ..errors import CndpError
from .uds import DEFAULT_NAME, MAX_CMD_LEN

__all__ = ["AppClient", "AppUnreachable", "RequestTooLong", "discover", "pid_of_path"]


class AppUnreachable(CndpError):
    """The application's telemetry socket does not exist, refuses, or does not answer."""


class RequestTooLong(CndpError):
    """A request longer than the 56 bytes the telemetry server reads."""


def pid_of_path(path: str) -> int | None:
    """``.../app_socket.1234`` -> 1234 (None when the name carries no pid)."""
    tail = os.path.basename(path).rpartition(".")[2]
    return int(tail) if tail.isdigit() and tail.isascii() else None


def discover(directory: str, pattern: str = f"{DEFAULT_NAME}.*") -> list[str]:
    """Socket files matching ``pattern`` in ``directory``, sorted (files that are not
    sockets are ignored; whether anybody listens is for the caller to find out)."""
    out = []
    for p in sorted(glob.glob(os.path.join(glob.escape(directory), pattern))):
        try:
            if stat.S_ISSOCK(os.lstat(p).st_mode):
                out.append(p)
        except OSError:
            continue  # vanished meanwhile
    return out


class AppClient:
    """One connection to one telemetry socket, opened on first use and re-opened once after
    a failure (the app restarted, or closed us). Thread-safe: one request at a time."""

    def __init__(self, path: str, *, timeout: float = 2.0):
        self.path = path
        self.timeout = timeout
        self.info: dict = {}
        self._sock: socket.socket | None = None
        self._max = 65536
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        pid = self.info.get("pid")
        return pid if isinstance(pid, int) else pid_of_path(self.path)

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
            s.send(b"/info")
            info = json.loads(s.recv(1024))
        except (OSError, ValueError) as e:
            s.close()
            raise AppUnreachable(
                f"telemetry socket {self.path}: {_why(e)}",
                fix="is the application running, and is its runtime directory shared?",
            ) from None
        if not isinstance(info, dict):
            s.close()
            raise AppUnreachable(f"telemetry socket {self.path}: /info answered no JSON object")
        self.info = info
        mx = info.get("max_output_len")
        self._max = max(int(mx), 1024) + 1 if isinstance(mx, int) else 65536
        return s

    def _exchange(self, s: socket.socket, data: bytes) -> dict:
        s.send(data)
        raw = s.recv(self._max)
        if not raw:
            raise ConnectionResetError("the application closed the connection")
        reply = json.loads(raw)
        if not isinstance(reply, dict):
            raise ValueError("the reply is not a JSON object")
        return reply

    def ask(self, cmd: str) -> dict:
        """Send one request, return the reply object (``{"error": ...}`` replies included)."""
        data = cmd.encode()
        if len(data) > MAX_CMD_LEN or b"\0" in data:
            raise RequestTooLong(
                f"request {cmd[:80]!r} is {len(data)} bytes; the telemetry socket reads "
                f"{MAX_CMD_LEN}",
                fix="use shorter lport/thread names",
            )
        with self._lock:
            for attempt in (0, 1):
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                    return self._exchange(self._sock, data)
                except AppUnreachable:
                    raise
                except (OSError, ValueError) as e:
                    self._close()
                    if attempt:
                        raise AppUnreachable(
                            f"telemetry socket {self.path}: {cmd}: {_why(e)}"
                        ) from None
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        try:
            self.ask("/info")
        except AppUnreachable:
            return False
        return True

    def _close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _why(e: BaseException) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, ValueError):
        return f"bad reply ({e})"
    return str(e) or type(e).__name__
