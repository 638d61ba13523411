"""cnectl: talk to a running CNDP (or pycndp) application.

    cnectl -s /path/cli.sock                 interactive CLI (raw terminal relay)
    cnectl -s /path/cli.sock stats           batch: sends "silent\\nstats\\nquit\\n"
    cnectl -s host:port ...                  the CLI over TCP (CNDP csock's "host:port")
    cnectl -s /var/run/cndp/app_socket.123 /info /metrics/port_stats
    cnectl /metrics/port_stats               the only telemetry socket found
    cnectl                                   interactive telemetry prompt (cndp-metrics.py)

A Unix socket path may be either kind: a SOCK_STREAM socket is a CLI server (CNDP csock),
a SOCK_SEQPACKET one a telemetry socket (CNDP uds). Without ``-s`` the telemetry sockets in
``/var/run/cndp`` and ``/run/user/<uid>/cndp`` are searched. In telemetry mode each argument
is one request and each reply is printed as one JSON line; the exit status is 1 if a reply
holds an ``error``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import json
import os
import select
import shlex
import socket
import sys
import termios
import time

from ..errors import CndpError

FIRST_RECV = 1024  # cndp-metrics.py reads the /info reply with a 1 KiB buffer
SEARCH = ("/var/run/cndp/app_socket*", "/run/user/{uid}/cndp/app_socket*")


class CnectlError(CndpError):
    pass


# --------------------------------------------------------------------------------------------
# telemetry (SOCK_SEQPACKET)


class TelemetryClient:
    """A client that behaves like CNDP's tools/cndp-metrics.py: ``/info`` first (reply read
    with a 1 KiB buffer), then every reply read with ``max_output_len``."""

    def __init__(self, path: str, timeout: float = 5.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise CnectlError(f"cannot connect to {path}: {e.strerror}", errno=e.errno) from None
        self.info = self._ask("/info", FIRST_RECV)
        self.max_output_len = int(self.info.get("max_output_len", 16384))
        self._commands: list[str] | None = None

    def _ask(self, cmd: str, bufsize: int) -> dict:
        try:
            self.sock.send(cmd.encode())
            data = self.sock.recv(bufsize)
        except TimeoutError:
            raise CnectlError(f"{self.path}: no reply to {cmd!r}") from None
        except OSError as e:
            raise CnectlError(f"{self.path}: {cmd!r} failed: {e.strerror}") from None
        if not data:
            raise CnectlError(f"{self.path}: the application closed the connection")
        try:
            reply = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply = None
        if not isinstance(reply, dict):
            raise CnectlError(f"{self.path}: a reply that is not a JSON object: {data[:80]!r}")
        return reply

    def raw(self, cmd: str) -> bytes:
        """The reply datagram as it arrived."""
        self.sock.send(cmd.encode())
        return self.sock.recv(self.max_output_len)

    def query(self, cmd: str) -> dict:
        return self._ask(cmd, self.max_output_len)

    @property
    def commands(self) -> list[str]:
        if self._commands is None:
            self._commands = list(self.query("/").get("/", []))
        return self._commands

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find_telemetry_sockets() -> list[str]:
    out: list[str] = []
    for pat in SEARCH:
        out += sorted(glob.glob(pat.format(uid=os.getuid())))
    return out


def telemetry_batch(path: str, cmds: list[str], pretty: bool) -> int:
    status = 0
    with TelemetryClient(path) as c:
        for cmd in cmds:
            reply = c.query(cmd)
            if "error" in reply:
                status = 1
            print(json.dumps(reply, indent=2 if pretty else None), flush=True)
    return status


def telemetry_interactive(path: str) -> int:
    import readline

    print(f"Connecting to {path}")
    with TelemetryClient(path) as c:
        print(json.dumps(c.info))
        words = ["quit", *c.commands]

        def complete(text: str, state: int) -> str | None:
            matches = [w for w in words if w.startswith(text)]
            return matches[state] if state < len(matches) else None

        readline.parse_and_bind("tab: complete")
        readline.set_completer(complete)
        readline.set_completer_delims(readline.get_completer_delims().replace("/", ""))
        while True:
            try:
                text = input("--> ").strip()
            except EOFError:
                print()
                return 0
            if text == "quit":
                return 0
            if text.startswith("/"):
                print(json.dumps(c.query(text)))


# --------------------------------------------------------------------------------------------
# CLI (SOCK_STREAM)


def connect_stream(addr: str, timeout: float = 5.0) -> socket.socket:
    """CNDP csock addresses: "/path" (Unix) or "host:port" / "host:0xport" (TCP)."""
    if "/" in addr or ":" not in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = addr
    else:
        host, _, port = addr.rpartition(":")
        try:
            p = int(port, 16) if port.lower().startswith("0x") else int(port)
        except ValueError:
            raise CnectlError(f"bad port in {addr!r}", fix="use host:port") from None
        try:
            s = socket.create_connection((host or "127.0.0.1", p), timeout)
        except (OSError, OverflowError) as e:
            raise CnectlError(f"cannot connect to {addr}: {e}") from None
        s.settimeout(None)
        return s
    s.settimeout(timeout)
    try:
        s.connect(target)
    except OSError as e:
        s.close()
        if e.errno == errno.EPROTOTYPE:
            raise  # a SEQPACKET socket: the caller switches to telemetry mode
        raise CnectlError(f"cannot connect to {addr}: {e.strerror}", errno=e.errno) from None
    s.settimeout(None)
    return s


def cli_batch(s: socket.socket, words: list[str], timeout: float) -> int:
    s.sendall(f"silent\n{shlex.join(words)}\nquit\n".encode())
    deadline = time.monotonic() + timeout
    out = sys.stdout.buffer
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"cnectl: no end of output within {timeout:g} s", file=sys.stderr)
            return 1
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        data = s.recv(65536)
        if not data:
            out.flush()
            return 0
        out.write(data)
        out.flush()


def cli_interactive(s: socket.socket) -> int:
    """Relay raw keystrokes to the server and its output to the terminal."""
    fd = sys.stdin.fileno()
    saved = None
    if os.isatty(fd):
        saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSAFLUSH, mode)
    try:
        stdin_open = True
        while True:
            rlist = [s, fd] if stdin_open else [s]
            r, _, _ = select.select(rlist, [], [])
            if s in r:
                data = s.recv(65536)
                if not data:
                    return 0
                os.write(sys.stdout.fileno(), data)
            if fd in r:
                data = os.read(fd, 4096)
                if data:
                    s.sendall(data)
                else:  # end of piped input: let the server finish, then it closes
                    stdin_open = False
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_WR)
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="cnectl",
        description="Connect to a CNDP application's CLI or telemetry socket, "
        "interactively or to run commands.",
    )
    ap.add_argument(
        "-s",
        "--socket",
        help="CLI socket (/path or host:port) or telemetry socket (/path); "
        "default: the telemetry socket found in /var/run/cndp",
    )
    ap.add_argument("--pretty", action="store_true", help="indent JSON replies")
    ap.add_argument(
        "--timeout", type=float, default=30.0, help="batch mode: seconds to wait (default 30)"
    )
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run (batch mode)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        addr = args.socket
        if addr is None:
            found = find_telemetry_sockets()
            if not found:
                raise CnectlError(
                    "no telemetry socket in /var/run/cndp or /run/user/<uid>/cndp",
                    fix="start the application, or give -s PATH",
                )
            if len(found) > 1:
                raise CnectlError(
                    "several telemetry sockets: " + ", ".join(found),
                    fix="choose one with -s PATH",
                )
            addr = found[0]
        try:
            s = connect_stream(addr)
        except OSError as e:  # EPROTOTYPE: a SOCK_SEQPACKET (telemetry) socket
            if e.errno != errno.EPROTOTYPE:
                raise CnectlError(f"cannot connect to {addr}: {e}") from None
            if args.cmd:
                return telemetry_batch(addr, args.cmd, args.pretty)
            return telemetry_interactive(addr)
        with s:
            if args.cmd:
                return cli_batch(s, args.cmd, args.timeout)
            return cli_interactive(s)
    except CndpError as e:
        print(f"cnectl: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
