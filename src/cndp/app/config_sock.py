"""Configuration over a Unix socket, like CNDP's ``-C`` (``JCFG_PARSE_SOCKET``).

Server (the application): bind an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket at
``<runtime_dir>/config.<pid>`` (directory created 0755, socket chmod 0666, backlog 1), accept
**one** client, read until it closes its end, and hand back the bytes. CNDP's default runtime
directory is ``/var/run/cndp``; an unprivileged process defaults to ``$XDG_RUNTIME_DIR/cndp``
(``/run/user/<uid>/cndp``), the other place CNDP's ``tools/cndp-config.py`` looks.

Client (CNDP's ``tools/cndp-config.py``): connect and send the file in 1024-byte records (the C
server reads 1024 bytes per ``read()``, and a longer SEQPACKET record would be truncated there),
then close. ``python -m cndp.app.config_sock FILE [--socket PATH]`` does that from a shell.
The server here reads records of up to 64 KiB and refuses a truncated one rather than parse a
damaged configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import errno as _errno
import glob
import os
import select
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_RUNTIME_DIR",
    "ConfigSocketServer",
    "default_runtime_dir",
    "find_config_sockets",
    "receive_config",
    "send_config",
    "send_file",
]

DEFAULT_RUNTIME_DIR = "/var/run/cndp"
CHUNK_SIZE = 1024  # what CNDP's sender writes per record and its server reads per read()
RECV_SIZE = 64 * 1024
MAX_CONFIG_BYTES = 16 << 20
_SUN_PATH_MAX = 107


def default_runtime_dir() -> str:
    """/var/run/cndp for root; otherwise $XDG_RUNTIME_DIR/cndp (or /run/user/<uid>/cndp)."""
    if os.geteuid() == 0:
        return DEFAULT_RUNTIME_DIR
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(base, "cndp")


def _os_error(what: str, e: OSError, path: str) -> ConfigError:
    fix = None
    if e.errno in (_errno.EACCES, _errno.EPERM, _errno.EROFS):
        fix = "choose a writable runtime directory (cndp-jsonc --runtime-dir DIR)"
    return ConfigError(f"config socket: {what} {path}: {e.strerror or e}", errno=e.errno, fix=fix)


class ConfigSocketServer:
    """A listening config socket. Use as a context manager; the socket file is removed on
    close."""

    def __init__(
        self, runtime_dir: str | os.PathLike[str] | None = None, *, path: str | None = None
    ):
        if path is None:
            rdir = str(runtime_dir) if runtime_dir else default_runtime_dir()
            path = os.path.join(rdir, f"config.{os.getpid()}")
        self.path = str(path)
        if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
            raise ConfigError(
                f"config socket path {self.path!r} is longer than {_SUN_PATH_MAX} bytes",
                fix="use a shorter runtime directory",
            )
        parent = os.path.dirname(self.path) or "."
        try:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        except OSError as e:
            raise _os_error("cannot create the directory for", e, parent) from None
        if not os.path.isdir(parent):
            raise ConfigError(f"config socket: {parent} is not a directory")
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if not stat.S_ISSOCK(st.st_mode):
                raise ConfigError(f"config socket: {self.path} exists and is not a socket")
            os.unlink(self.path)  # a stale socket of a dead process with our pid
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind(self.path)
            os.chmod(self.path, 0o666)
            self.sock.listen(1)
        except OSError as e:
            self.sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise _os_error("cannot listen on", e, self.path) from None
        self._bound = True

    def receive(self, timeout: float | None = None) -> bytes:
        """Accept one client and return everything it sent (until it closes). ``timeout`` is
        for the whole exchange, in seconds; None waits forever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._wait(self.sock, deadline):
            raise ConfigError(
                f"no configuration arrived on {self.path} within {timeout:g} s",
                errno=_errno.ETIMEDOUT,
                fix=f"send one with: python -m cndp.app.config_sock FILE --socket {self.path}",
            )
        try:
            conn, _ = self.sock.accept()
        except OSError as e:
            raise _os_error("accept failed on", e, self.path) from None
        with conn:
            return self._read(conn, deadline)

    def _read(self, conn: socket.socket, deadline: float | None) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            if not self._wait(conn, deadline):
                raise ConfigError(
                    f"the client on {self.path} did not finish sending in time "
                    f"({total} bytes received)",
                    errno=_errno.ETIMEDOUT,
                )
            try:
                data, _anc, flags, _addr = conn.recvmsg(RECV_SIZE)
            except OSError as e:
                raise _os_error("reading from the client of", e, self.path) from None
            if flags & socket.MSG_TRUNC:
                raise ConfigError(
                    f"config socket {self.path}: a record longer than {RECV_SIZE} bytes was "
                    "truncated",
                    fix=f"send the file in records of at most {CHUNK_SIZE} bytes, as "
                    "cndp-config.py does",
                )
            if not data:
                return b"".join(parts)
            total += len(data)
            if total > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"config socket {self.path}: more than {MAX_CONFIG_BYTES >> 20} MiB sent; "
                    "that is not a configuration"
                )
            parts.append(data)

    @staticmethod
    def _wait(s: socket.socket, deadline: float | None) -> bool:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                r, _, _ = select.select([s], [], [], left)
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue
            return bool(r)

    def close(self) -> None:
        self.sock.close()
        if self._bound:
            self._bound = False
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self) -> ConfigSocketServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def receive_config(
    runtime_dir: str | os.PathLike[str] | None = None,
    *,
    path: str | None = None,
    timeout: float | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> bytes:
    """Listen on the config socket, accept one client, return what it sent.
    ``on_ready(path)`` runs once the socket is listening (e.g. to print where it is)."""
    with ConfigSocketServer(runtime_dir, path=path) as srv:
        if on_ready is not None:
            on_ready(srv.path)
        return srv.receive(timeout)


def send_config(socket_path: str, data: bytes | str, *, timeout: float = 10.0) -> int:
    """Send a configuration (bytes or text) to a config socket in 1024-byte records, then
    close. Returns the number of bytes sent."""
    if isinstance(data, str):
        data = data.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as s:
        s.settimeout(timeout)
        try:
            s.connect(socket_path)
            for i in range(0, len(data), CHUNK_SIZE):
                s.sendall(data[i : i + CHUNK_SIZE])
        except OSError as e:
            raise ConfigError(
                f"sending the configuration to {socket_path}: {e.strerror or e}", errno=e.errno
            ) from None
    return len(data)


def send_file(socket_path: str, file: str | os.PathLike[str], *, timeout: float = 10.0) -> int:
    """Send a file to a config socket (what CNDP's tools/cndp-config.py does)."""
    try:
        data = Path(file).read_bytes()
    except OSError as e:
        raise ConfigError(f"{file}: cannot read: {e.strerror or e}", errno=e.errno) from None
    return send_config(socket_path, data, timeout=timeout)


def find_config_sockets() -> list[str]:
    """Config sockets of running applications, where cndp-config.py looks for them."""
    found = glob.glob(os.path.join(DEFAULT_RUNTIME_DIR, "config.*"))
    found += glob.glob(f"/run/user/{os.getuid()}/cndp/config.*")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        found += glob.glob(os.path.join(xdg, "cndp", "config.*"))
    return sorted(set(found))


def main(argv: list[str] | None = None) -> int:
    """``python -m cndp.app.config_sock FILE [--socket PATH]``: send FILE to one socket, or
    to every config socket found (like tools/cndp-config.py)."""
    ap = argparse.ArgumentParser(
        prog="python -m cndp.app.config_sock",
        description="Send a jsonc configuration to an application waiting on its config socket.",
    )
    ap.add_argument("file", help="the configuration file ('-' for stdin)")
    ap.add_argument("--socket", "-s", help="the socket (default: every config.* socket found)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    args = ap.parse_args(argv)
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                data = Path(args.file).read_bytes()
            except OSError as e:
                raise ConfigError(f"{args.file}: cannot read: {e.strerror or e}") from None
        targets = [args.socket] if args.socket else find_config_sockets()
        if not targets:
            raise ConfigError(
                "no config socket found (in /var/run/cndp or /run/user/<uid>/cndp)",
                fix="start the application with -C, or give --socket PATH",
            )
        for t in targets:
            n = send_config(t, data, timeout=args.timeout)
            print(f"sent {n} bytes to {t}", file=sys.stderr)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
