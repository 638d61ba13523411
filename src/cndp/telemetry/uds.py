"""CNDP's telemetry socket: JSON commands over an AF_UNIX SOCK_SEQPACKET socket.

Protocol (CNDP ``lib/common/uds``; see docs/telemetry.md):

- the server says nothing until it gets a request; one request per datagram, ASCII,
  ``cmd[,param1[,param2...]]``; only the first :data:`MAX_CMD_LEN` (56) bytes are read and a
  NUL ends the request early;
- ``/group/cmd`` runs command ``/cmd`` of group ``group``; ``/cmd`` runs a command of the root
  group; group and command names match case-insensitively;
- every reply is exactly one datagram holding one JSON object, at most
  :data:`MAX_OUTPUT_LEN` (16384) bytes; an unknown command gets
  ``{"error":"invalid cmd (<cmd>)"}`` (``(<cmd>,<param>)`` with a parameter);
- built-ins: ``/`` (every command), ``/info`` (version, pid, max_output_len) and our
  ``/help`` (one line of help per command).

Where CNDP's C code misbehaves we do not copy it: a reply that would not fit is replaced by
an error object instead of being cut into invalid JSON; a failing command answers an error
object instead of leaving stale bytes for the next reply; names in error messages are JSON
escaped; tokens are stripped of surrounding white space (so ``"/info\\n"`` works).

The server is one thread with a ``selectors`` loop in the main process: requests are answered
one at a time, in the order they arrive, by the callbacks registered with :meth:`register`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import selectors
import socket
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import __version__
from ..errors import CndpError

log = logging.getLogger("cndp.telemetry.uds")

__all__ = [
    "DEFAULT_NAME",
    "MAX_CMD_LEN",
    "MAX_OUTPUT_LEN",
    "NO_OUTPUT",
    "VERSION",
    "CommandTable",
    "Request",
    "TelemetryError",
    "TelemetryServer",
    "default_path",
    "default_runtime_dir",
    "parse_request",
]

MAX_CMD_LEN = 56  # UDS_MAX_CMD_LEN: bytes read per request
MAX_OUTPUT_LEN = 16384  # UDS_MAX_BUF_LEN: reported as max_output_len
MAX_GROUP_LEN = 32  # UDS_MAX_GRP_NAME_LEN (names are shorter)
MAX_CLIENTS = 32
DEFAULT_NAME = "app_socket"
CNDP_VERSION = "25.08.0"  # the CNDP release whose protocol we speak
VERSION = f"CNDP {CNDP_VERSION}-pycndp-{__version__}"
_GROUP_RE = re.compile(r"[A-Za-z0-9_]+")


class _NoOutput:
    def __repr__(self) -> str:
        return "NO_OUTPUT"


NO_OUTPUT = _NoOutput()  # a callback returns this to send no reply (CNDP UDS_NO_OUTPUT)


class TelemetryError(CndpError):
    """Registering a command, or creating the telemetry socket, failed."""


@dataclass(frozen=True)
class Request:
    """One parsed request. ``cmd`` is the first token (None for an empty request);
    ``group``/``name`` are filled by the command table when routing."""

    text: str
    cmd: str | None
    params: tuple[str, ...] = ()
    group: str = ""
    name: str = ""

    @property
    def param(self) -> str | None:
        return self.params[0] if self.params else None


def parse_request(data: bytes) -> Request:
    """Bytes of one datagram -> :class:`Request`. Never raises."""
    raw = bytes(data[:MAX_CMD_LEN]).split(b"\0", 1)[0]
    text = raw.decode("utf-8", errors="replace")
    # strtok semantics: empty tokens ("a,,b") disappear
    tokens = [t.strip() for t in text.split(",")]
    tokens = [t for t in tokens if t]
    if not tokens:
        return Request(text, None)
    return Request(text, tokens[0], tuple(tokens[1:]))


def split_cmd(cmd: str) -> tuple[str, str]:
    """``"/group/cmd"`` -> ("group", "/cmd"); ``"/cmd"`` -> ("", "/cmd") (root group)."""
    second = cmd.find("/", 1)
    if not cmd.startswith("/") or second < 0:
        return "", cmd
    return cmd[1:second], cmd[second:]


Handler = Callable[[Request], object]


@dataclass
class _Command:
    group: str  # as registered ("" = root)
    name: str  # "/cmd" within the group
    fn: Handler
    help: str

    @property
    def path(self) -> str:
        return f"/{self.group}{self.name}" if self.group else self.name


class CommandTable:
    """Groups and their commands, and the routing of a request to a reply.

    Thread-safe: commands may be registered while the server answers requests.
    """

    def __init__(self, *, builtins: bool = True):
        self._lock = threading.Lock()
        self._cmds: dict[tuple[str, str], _Command] = {}  # (group lower, name lower)
        self._groups: dict[str, str] = {"": ""}  # lower -> as registered
        self.pid = os.getpid()
        if builtins:
            self.register("/", self._list, "list every command")
            self.register("/info", self._info, "version, pid and max_output_len")
            self.register("/help", self._help, "help of every command, or of /help,<cmd>")

    # ------------------------------------------------------------------ registration
    def register(self, cmd: str, fn: Handler, help: str = "") -> None:
        """Register ``cmd`` (``"/group/cmd"`` or ``"/cmd"``); ``fn(request)`` returns a dict
        (the reply object) or :data:`NO_OUTPUT`."""
        if not isinstance(cmd, str) or not cmd.startswith("/"):
            raise TelemetryError(f"command {cmd!r} must start with '/'", fix='e.g. "/app/ports"')
        if not callable(fn):
            raise TelemetryError(f"command {cmd!r}: handler {fn!r} is not callable")
        group, name = split_cmd(cmd)
        if group and (len(group) >= MAX_GROUP_LEN or not _GROUP_RE.fullmatch(group)):
            raise TelemetryError(
                f"command {cmd!r}: group name {group!r} must be 1..{MAX_GROUP_LEN - 1} "
                "characters of A-Z, a-z, 0-9 and _"
            )
        if len(name.encode()) >= MAX_CMD_LEN:
            raise TelemetryError(
                f"command {cmd!r}: {name!r} is {len(name.encode())} bytes; "
                f"at most {MAX_CMD_LEN - 1}"
            )
        key = (group.lower(), name.lower())
        with self._lock:
            if key in self._cmds:
                raise TelemetryError(f"command {cmd!r} is already registered")
            self._groups.setdefault(group.lower(), group)
            self._cmds[key] = _Command(self._groups[group.lower()], name, fn, help)

    def unregister(self, cmd: str) -> None:
        group, name = split_cmd(cmd)
        with self._lock:
            if self._cmds.pop((group.lower(), name.lower()), None) is None:
                raise TelemetryError(f"command {cmd!r} is not registered")

    def remove_group(self, group: str) -> None:
        g = group.lower()
        with self._lock:
            if g not in self._groups or not g:
                raise TelemetryError(f"no group {group!r}")
            for key in [k for k in self._cmds if k[0] == g]:
                del self._cmds[key]
            del self._groups[g]

    def commands(self) -> list[str]:
        with self._lock:
            return [c.path for c in self._cmds.values()]

    def help_of(self, cmd: str) -> str | None:
        c = self._lookup(cmd)
        return None if c is None else c.help

    def _lookup(self, cmd: str) -> _Command | None:
        if not cmd.startswith("/"):
            return None
        group, name = split_cmd(cmd)
        with self._lock:
            if group.lower() not in self._groups:
                return None
            return self._cmds.get((group.lower(), name.lower()))

    # ------------------------------------------------------------------ dispatch
    def call(self, text: str) -> dict:
        """Run one request given as text; the reply object (for CLI and tests)."""
        reply = self.dispatch(text.encode())
        return json.loads(reply) if reply is not None else {}

    def dispatch(self, data: bytes) -> bytes | None:
        """One request datagram -> one reply datagram (None: no reply). Never raises."""
        req = parse_request(data)
        cmd = req.cmd
        c = self._lookup(cmd) if cmd else None
        if c is None:
            shown = cmd or ""
            if req.param is not None:
                shown += "," + req.param
            return _encode({"error": f"invalid cmd ({shown})"})
        req = Request(req.text, req.cmd, req.params, c.group, c.name)
        try:
            out = c.fn(req)
        except CndpError as e:
            out = {"error": str(e)}
        except Exception as e:  # a bug in a command: answer, log, keep serving
            log.exception("telemetry command %s failed", c.path)
            out = {"error": f"{c.path} failed: {type(e).__name__}: {e}"}
        if out is NO_OUTPUT:
            return None
        if not isinstance(out, Mapping):
            log.error("telemetry command %s returned %s, not a dict", c.path, type(out).__name__)
            out = {"error": f"{c.path} returned no JSON object"}
        reply = _encode(out)
        if len(reply) > MAX_OUTPUT_LEN:
            reply = _encode(
                {
                    "error": f"the reply of {c.path} is {len(reply)} bytes, more than "
                    f"max_output_len ({MAX_OUTPUT_LEN})",
                }
            )
        return reply

    # ------------------------------------------------------------------ built-ins
    def _list(self, req: Request) -> dict:
        return {"/": self.commands()}

    def _info(self, req: Request) -> dict:
        return {"version": VERSION, "pid": self.pid, "max_output_len": MAX_OUTPUT_LEN}

    def _help(self, req: Request) -> dict:
        if req.param is None:
            with self._lock:
                return {"/help": {c.path: c.help for c in self._cmds.values()}}
        c = self._lookup(req.param)
        if c is None:
            return {"error": f"no command {req.param}"}
        return {c.path: c.help}


def _encode(obj: Mapping) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, default=str).encode()


# --------------------------------------------------------------------------------------------
# paths


def default_runtime_dir() -> str:
    """/var/run/cndp for root (CNDP's default); /run/user/<uid>/cndp otherwise (where
    CNDP's cndp-metrics.py looks for sockets of unprivileged apps)."""
    if os.geteuid() == 0:
        return "/var/run/cndp"
    user = f"/run/user/{os.getuid()}"
    if os.path.isdir(user):
        return f"{user}/cndp"
    return "/var/run/cndp"


def default_path(name: str = DEFAULT_NAME, runtime_dir: str | None = None) -> str:
    return os.path.join(runtime_dir or default_runtime_dir(), f"{name}.{os.getpid()}")


def bind_unix(path: str, kind: int, *, backlog: int = 16) -> tuple[socket.socket, bool]:
    """Bind and listen on a Unix socket at ``path``; creates the directory (0755) if missing
    and replaces a stale socket file nobody listens on. Returns (socket, dir_created)."""
    if len(os.fsencode(path)) >= 108:
        raise TelemetryError(
            f"socket path {path!r} is longer than 107 bytes", fix="use a shorter path"
        )
    d = os.path.dirname(path) or "."
    created = False
    if not os.path.isdir(d):
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
            os.chmod(d, 0o755)
            created = True
        except OSError as e:
            raise TelemetryError(
                f"cannot create the directory {d}: {e.strerror}",
                errno=e.errno,
                fix="run as root, or choose another socket path",
            ) from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise TelemetryError(f"{path} exists and is not a socket", fix="remove it")
        probe = socket.socket(socket.AF_UNIX, kind)
        try:
            probe.settimeout(0.5)
            probe.connect(path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)  # stale: left by a process that died
        else:
            raise TelemetryError(f"{path} is in use by another process", fix="choose another")
        finally:
            probe.close()
    s = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        s.bind(path)
        s.listen(backlog)
    except OSError as e:
        s.close()
        raise TelemetryError(
            f"cannot listen on {path}: {e.strerror}",
            errno=e.errno,
            fix="check the directory's permissions",
        ) from None
    return s, created


class _Listener:
    """What both servers share: a bound socket file that is removed when we close, by the
    process that created it only (forked children never remove it)."""

    def __init__(self, path: str, kind: int):
        self.path = path
        self.sock, _ = bind_unix(path, kind)
        st = os.stat(path)
        self._ident = (st.st_dev, st.st_ino)
        self._owner = os.getpid()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if os.getpid() != self._owner:
            return
        try:
            st = os.lstat(self.path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) == self._ident:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class TelemetryServer:
    """The telemetry socket: ``with TelemetryServer() as srv: srv.register(...)``.

    ``path`` defaults to ``<runtime_dir>/app_socket.<pid>``.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        runtime_dir: str | None = None,
        table: CommandTable | None = None,
    ):
        self.path = path or default_path(DEFAULT_NAME, runtime_dir)
        self.table = table or CommandTable()
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.clients = 0
        self.requests = 0

    def register(self, cmd: str, fn: Handler, help: str = "") -> None:
        self.table.register(cmd, fn, help)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> TelemetryServer:
        if self._thread is not None:
            return self
        self._listener = _Listener(self.path, socket.SOCK_SEQPACKET)
        self._listener.sock.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name="cndp-telemetry", daemon=True)
        self._thread.start()
        log.info("telemetry socket %s", self.path)
        return self

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        if self._listener is not None:
            self._listener.remove()
            self._listener = None
        for s in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> TelemetryServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the loop
    def _serve(self) -> None:
        assert self._listener is not None
        lsock = self._listener.sock
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        clients: set[socket.socket] = set()
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(1.0):
                    if key.data == "wake":
                        continue
                    if key.data == "listen":
                        self._accept(lsock, sel, clients)
                    else:
                        self._serve_one(key.fileobj, sel, clients)  # type: ignore[arg-type]
        except Exception:  # never expected: keep the app running, say why telemetry stopped
            log.exception("telemetry server stopped")
        finally:
            for c in clients:
                with contextlib.suppress(Exception):
                    sel.unregister(c)
                c.close()
            sel.close()

    def _accept(self, lsock: socket.socket, sel, clients: set) -> None:
        try:
            c, _ = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.warning("telemetry accept failed: %s", e)
            return
        if len(clients) >= MAX_CLIENTS:
            log.warning("telemetry: more than %d clients, refusing one", MAX_CLIENTS)
            c.close()
            return
        c.setblocking(False)
        clients.add(c)
        self.clients += 1
        sel.register(c, selectors.EVENT_READ, "client")

    def _drop(self, c: socket.socket, sel, clients: set) -> None:
        with contextlib.suppress(Exception):
            sel.unregister(c)
        clients.discard(c)
        c.close()

    def _serve_one(self, c: socket.socket, sel, clients: set) -> None:
        try:
            data = c.recv(MAX_CMD_LEN)  # SEQPACKET: the rest of a longer datagram is dropped
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(c, sel, clients)
            return
        if not data:
            self._drop(c, sel, clients)
            return
        self.requests += 1
        reply = self.table.dispatch(data)
        if reply is None:
            return
        try:
            c.send(reply)
        except BlockingIOError:
            # the client does not read its replies: it must not make us buffer without end
            log.warning("telemetry client does not read its replies: dropping it")
            self._drop(c, sel, clients)
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                log.warning("telemetry reply failed: %s", e)
            self._drop(c, sel, clients)
