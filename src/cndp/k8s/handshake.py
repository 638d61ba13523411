"""The AF_XDP device-plugin handshake: wire constants, request/reply parsing, and the client.

An unprivileged pod cannot load an XDP program or create an XSKMAP. The device plugin (DP)
does that on the host and serves one AF_UNIX **SOCK_SEQPACKET** socket per pod; the pod
asks for the XSKMAP fd over it, receives it as SCM_RIGHTS ancillary data, creates its
AF_XDP socket (CAP_NET_RAW) and inserts the socket into the map itself (no capability: the
map is reached through the fd). One ASCII message per datagram, arguments after commas::

    app -> DP  /connect,<pod>                      DP -> app  /host_ok | /host_nak
    app -> DP  /version                            DP -> app  0.1
    app -> DP  /xsk_map_fd,<netdev>                DP -> app  /fd_ack + fd | /fd_nak
    app -> DP  /config_busy_poll,<timeout>,<budget> + AF_XDP socket fd
                                                   DP -> app  /config_busy_poll_ack | _nak
    app -> DP  /fin                                DP -> app  /fin_ack
    app -> DP  anything else                       DP -> app  /nak

This is the protocol of intel/afxdp-plugins-for-kubernetes (``internal/udsserver``) and of
CNDP's client (``lib/common/uds_connect`` + xskdev). The busy-poll arguments are timeout
first, then budget, as both of them put it on the wire. The client here tolerates what the
C client trips over: a trailing NUL on replies, the ``{}`` of ``xskmap_load_send``,
``/fd_ack,<n>`` (the fd is taken only from SCM_RIGHTS), ``/error`` before ``/host_nak``; it
never answers a reply, and every wait is bounded in time (the C client spins or sleeps up
to 40000 times).

``acquire(path)`` returns the process's connection for a socket, connecting on first use:
the DP serves one connection per pod, and several lports (several ``uds_path`` mounts of the
same socket) share it. Processes forked after ``acquire`` (cndpfwd's workers) inherit the
connection and the XSKMAP fds; requests on it are serialised across processes, and only the
process that connected sends ``/fin``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import select
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from ..errors import BpfError, CndpError, ConfigError
from ..sys import bpf as sysbpf
from ..sys import scm

log = logging.getLogger("cndp.k8s.handshake")

# ---------------------------------------------------------------------------------------------
# wire constants

HANDSHAKE_VERSION = "0.1"
REQ_VERSION = "/version"
REQ_CONNECT = "/connect"
RESP_HOST_OK = "/host_ok"
RESP_HOST_NAK = "/host_nak"
REQ_XSK_MAP_FD = "/xsk_map_fd"
RESP_FD_ACK = "/fd_ack"
RESP_FD_NAK = "/fd_nak"
REQ_BUSY_POLL = "/config_busy_poll"
RESP_BUSY_POLL_ACK = "/config_busy_poll_ack"
RESP_BUSY_POLL_NAK = "/config_busy_poll_nak"
REQ_FIN = "/fin"
RESP_FIN_ACK = "/fin_ack"
RESP_NAK = "/nak"  # any request the DP does not understand
RESP_ERROR = "/error"  # the DP failed to look the pod up (followed by /host_nak)

DP_MSG_SIZE = 64  # the Go device plugin reads at most 64 bytes of a request
CNDP_MSG_SIZE = 56  # CNDP's client reads at most 56 bytes of a reply (UDS_MAX_CMD_LEN)
MAX_REQUEST = 128  # our server: "/connect," + a 63-character pod hostname fits; longer is cut
MAX_REPLY = 128  # our client: every reply of the protocol is far shorter
MAX_BUSY_VALUE = 0xFFFF  # busy_timeout and busy_budget are 16-bit in CNDP's config
DEFAULT_TIMEOUT = 10.0  # seconds to wait for each reply
POD_UDS_PATH = "/tmp/afxdp_dp/{dev}/afxdp.sock"  # where the DP mounts the socket in the pod
POD_PIN_PATH = "/tmp/afxdp_dp/{dev}/xsks_map"  # where the DP mounts a pinned XSKMAP
IFNAMSIZ = 16

# A pod name as Kubernetes allows it (DNS subdomain, <= 253), upper case tolerated: the
# device plugin's own tests use "podA". Nothing else reaches a validator or a log line.
_POD_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?\Z")
_NUM_RE = re.compile(r"[0-9]{1,6}\Z")


class HandshakeError(CndpError):
    """The device-plugin handshake failed: no socket, refused, timed out, or a peer that
    does not speak the protocol."""


def valid_pod_name(name: str) -> bool:
    return bool(_POD_RE.match(name))


def valid_netdev_name(name: str) -> bool:
    """Linux's dev_valid_name() (1..15 bytes, not "." or "..", no '/', ':' or whitespace),
    and no control characters: a name that reaches a log line or a config is printable."""
    if not 0 < len(name.encode("utf-8", "surrogateescape")) < IFNAMSIZ or name in (".", ".."):
        return False
    return all(c.isprintable() and not c.isspace() and c not in "/:" for c in name)


# ---------------------------------------------------------------------------------------------
# requests (server side)


class Kind(Enum):
    CONNECT = "connect"
    VERSION = "version"
    XSK_MAP_FD = "xsk_map_fd"
    BUSY_POLL = "config_busy_poll"
    FIN = "fin"
    BAD = "bad"


@dataclass(frozen=True)
class Request:
    """One parsed request. ``problem`` is set when the command is known but its arguments
    are not acceptable (the server then answers the command's own nak); ``BAD`` requests
    get ``/nak``."""

    kind: Kind
    arg: str = ""  # the pod name (CONNECT) or the netdev (XSK_MAP_FD)
    timeout: int = 0  # BUSY_POLL
    budget: int = 0  # BUSY_POLL
    problem: str | None = None
    mentions_connect: bool = False  # the text contains "/connect" anywhere

    @property
    def ok(self) -> bool:
        return self.problem is None


def _text(data: bytes) -> str:
    # C clients may send the terminating NUL; latin-1 keeps every byte, so nothing is lost
    return data.rstrip(b"\0").decode("latin-1")


def parse_request(data: bytes, *, truncated: bool = False) -> Request:
    """Classify one request datagram exactly as the device plugin does.

    The command is the text before the first comma and must match exactly; spaces inside
    arguments are removed (``"/connect, podA"`` is accepted). A datagram longer than
    :data:`MAX_REQUEST` (``truncated``) never names anything valid.
    """
    text = _text(data)
    mentions = REQ_CONNECT in text
    words = text.split(",")
    cmd, args = words[0], [w.replace(" ", "") for w in words[1:]]
    if truncated:
        kind = Kind.CONNECT if cmd == REQ_CONNECT else Kind.BAD
        return Request(kind, problem=f"longer than {MAX_REQUEST} bytes", mentions_connect=mentions)
    if cmd == REQ_CONNECT:
        if len(args) != 1:
            return Request(Kind.CONNECT, problem="expects one pod name", mentions_connect=True)
        if not valid_pod_name(args[0]):
            return Request(
                Kind.CONNECT, args[0], problem="not a valid pod name", mentions_connect=True
            )
        return Request(Kind.CONNECT, args[0], mentions_connect=True)
    if cmd == REQ_XSK_MAP_FD:
        if len(args) != 1:
            return Request(
                Kind.BAD, problem="/xsk_map_fd expects one netdev", mentions_connect=mentions
            )
        if not valid_netdev_name(args[0]):
            return Request(Kind.XSK_MAP_FD, args[0], problem="not a valid netdev name")
        return Request(Kind.XSK_MAP_FD, args[0])
    if cmd == REQ_BUSY_POLL:
        if len(args) != 2 or not all(_NUM_RE.match(a) for a in args):
            return Request(
                Kind.BAD,
                problem="/config_busy_poll expects <timeout>,<budget> in decimal",
                mentions_connect=mentions,
            )
        t, b = int(args[0]), int(args[1])
        if t > MAX_BUSY_VALUE or b > MAX_BUSY_VALUE:
            return Request(
                Kind.BUSY_POLL, timeout=t, budget=b, problem=f"values above {MAX_BUSY_VALUE}"
            )
        return Request(Kind.BUSY_POLL, timeout=t, budget=b)
    if text == REQ_VERSION:
        return Request(Kind.VERSION)
    if text == REQ_FIN:
        return Request(Kind.FIN)
    return Request(Kind.BAD, problem="unknown request", mentions_connect=mentions)


def format_connect(pod: str) -> str:
    return f"{REQ_CONNECT},{pod}"


def format_xsk_map_fd(netdev: str) -> str:
    return f"{REQ_XSK_MAP_FD},{netdev}"


def format_busy_poll(timeout: int, budget: int) -> str:
    return f"{REQ_BUSY_POLL},{timeout},{budget}"


# ---------------------------------------------------------------------------------------------
# replies (client side)


@dataclass(frozen=True)
class Reply:
    name: str  # "/fd_ack", "0.1", "{}" ...
    param: str | None = None  # text after the first comma ("/fd_ack,7" -> "7")

    @property
    def ignorable(self) -> bool:
        # xskmap_load_send answers with an empty JSON object after its raw /host_ok
        return self.name in ("", "{}")


def parse_reply(data: bytes) -> Reply:
    text = _text(data).strip()
    name, sep, param = text.partition(",")
    return Reply(name, param if sep else None)


# ---------------------------------------------------------------------------------------------
# client


@dataclass
class _Exchange:
    request: str
    replies: list[str] = field(default_factory=list)


class HandshakeClient:
    """One connection to a device plugin's socket.

    ``connect()`` sends ``/connect,<pod>`` (the pod name defaults to the hostname, as in
    Kubernetes and CNDP) and waits for ``/host_ok``. ``xsk_map_fd(netdev)`` returns the
    XSKMAP fd for a netdev; fds are cached per netdev and owned by the client (closed by
    ``close()``). ``config_busy_poll`` asks the DP to set the busy-poll socket options on
    our AF_XDP socket. ``close()`` sends ``/fin`` and waits briefly for ``/fin_ack``.
    ``transcript`` records every request and the replies it got.
    """

    def __init__(self, path: str, *, pod: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.pod = pod if pod is not None else socket.gethostname()
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.connected = False
        self.map_fds: dict[str, int] = {}
        self.transcript: list[_Exchange] = []
        self._lock = threading.Lock()
        # Workers forked after connect share this connection: one request at a time.
        try:
            self._plock = multiprocessing.get_context("fork").Lock()
        except OSError:  # pragma: no cover - no /dev/shm: fall back to the thread lock
            self._plock = None

    # -- connection

    def connect(self) -> None:
        if self.connected:
            return
        if not valid_pod_name(self.pod):
            raise HandshakeError(
                f"pod name {self.pod!r} cannot be sent in /connect",
                fix="the hostname must be a Kubernetes pod name (letters, digits, '.', '-')",
            )
        msg = format_connect(self.pod)
        if len(msg) > DP_MSG_SIZE:
            log.warning(
                "%r is %d bytes: the Go device plugin reads only %d and will refuse it",
                msg,
                len(msg),
                DP_MSG_SIZE,
            )
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise self._connect_error(e) from None
        self.sock = s
        try:
            reply, _ = self._exchange(msg, (RESP_HOST_OK, RESP_HOST_NAK))
        except BaseException:
            self._drop()
            raise
        if reply.name != RESP_HOST_OK:
            errors = [r for ex in self.transcript for r in ex.replies if r == RESP_ERROR]
            self._drop()
            why = (
                "the device plugin could not look the pod up (/error)"
                if errors
                else f"the device plugin refused pod {self.pod!r} (/host_nak)"
            )
            raise HandshakeError(
                f"{self.path}: {why}",
                fix="the pod must be the one the device plugin allocated this socket to, holding "
                "exactly its devices; the name sent is the hostname",
            )
        self.connected = True
        log.info("device plugin at %s accepted pod %s", self.path, self.pod)

    def _connect_error(self, e: OSError) -> HandshakeError:
        where = f"device-plugin socket {self.path}"
        if isinstance(e, FileNotFoundError):
            return HandshakeError(
                f"no {where}",
                errno=e.errno,
                fix="check uds_path: the device plugin mounts it at "
                + POD_UDS_PATH.format(dev="<netdev>"),
            )
        if isinstance(e, PermissionError):
            return HandshakeError(
                f"{where}: permission denied",
                errno=e.errno,
                fix="the device plugin must grant the socket to the pod's uid",
            )
        if isinstance(e, ConnectionRefusedError):
            return HandshakeError(
                f"{where}: nobody is listening (the device plugin is gone or the socket is stale)",
                errno=e.errno,
                fix="restart the pod so the device plugin allocates a new socket",
            )
        if e.errno == 91:  # EPROTOTYPE: a stream or datagram socket, not SOCK_SEQPACKET
            return HandshakeError(
                f"{where} is not a SOCK_SEQPACKET socket",
                errno=e.errno,
                fix="uds_path must name the device plugin's socket",
            )
        return HandshakeError(f"connecting to {where}: {os.strerror(e.errno or 0)}", errno=e.errno)

    @property
    def alive(self) -> bool:
        return self.connected and self.sock is not None

    def _drop(self) -> None:
        """Close the socket and the map fds without a /fin."""
        self.connected = False
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        scm.close_fds(list(self.map_fds.values()))
        self.map_fds.clear()

    def close(self) -> None:
        """Send /fin, wait up to 2 s for /fin_ack, close everything. Idempotent."""
        if self.sock is None:
            return
        if self.connected and self._peer_hung_up():
            # The DP drops connections idle for its udsTimeout (30 s by default): nothing
            # is lost, the map fds stay ours. No /fin to send then.
            log.debug("%s: the device plugin already closed the connection", self.path)
        elif self.connected:
            try:
                self._exchange(REQ_FIN, (RESP_FIN_ACK,), timeout=min(self.timeout, 2.0))
            except HandshakeError as e:
                log.warning("%s: no clean /fin: %s", self.path, e)
        self._drop()

    def _peer_hung_up(self) -> bool:
        assert self.sock is not None
        p = select.poll()
        p.register(self.sock.fileno(), select.POLLRDHUP)
        return any(ev & (select.POLLRDHUP | select.POLLHUP) for _, ev in p.poll(0))

    def detach(self) -> None:
        """Forget the connection in a forked process: close our copies, send nothing."""
        self._drop()

    # -- requests

    def version(self) -> str:
        self._need_connection()
        reply, _ = self._exchange(REQ_VERSION, None)
        return reply.name

    def xsk_map_fd(self, netdev: str) -> int:
        """The XSKMAP fd for ``netdev`` (asked once per netdev, then cached)."""
        self._need_connection()
        fd = self.map_fds.get(netdev)
        if fd is not None:
            return fd
        if not valid_netdev_name(netdev):
            raise ConfigError(f"{netdev!r} is not a netdev name", fix="use the lport's netdev")
        reply, fds = self._exchange(
            format_xsk_map_fd(netdev), (RESP_FD_ACK, RESP_FD_NAK), fd_reply=RESP_FD_ACK
        )
        if reply.name == RESP_FD_NAK:
            raise HandshakeError(
                f"{self.path}: the device plugin has no XSKMAP for netdev {netdev!r} (/fd_nak)",
                fix="uds_path must be the socket of the device plugin that gave this netdev to "
                "the pod",
            )
        fd = fds[0]
        try:
            info = sysbpf.map_info(fd)
        except BpfError:
            info = None
        if info is None or info.type != sysbpf.MAP_TYPE_XSKMAP:
            scm.close_fds(fds)
            raise HandshakeError(
                f"{self.path}: the fd sent for {netdev!r} is not an XSKMAP",
                fix="uds_path must name an AF_XDP device plugin's socket",
            )
        self.map_fds[netdev] = fd
        return fd

    def config_busy_poll(self, xsk_fd: int, timeout: int, budget: int) -> None:
        """Ask the DP to set SO_PREFER_BUSY_POLL, SO_BUSY_POLL=timeout and
        SO_BUSY_POLL_BUDGET=budget on our AF_XDP socket (which needs CAP_NET_ADMIN)."""
        self._need_connection()
        for name, v in (("busy_timeout", timeout), ("busy_budget", budget)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_BUSY_VALUE:
                raise ConfigError(
                    f"{name} {v!r} is outside 0..{MAX_BUSY_VALUE}", fix=f"set {name} in range"
                )
        reply, _ = self._exchange(
            format_busy_poll(timeout, budget),
            (RESP_BUSY_POLL_ACK, RESP_BUSY_POLL_NAK),
            fds=[xsk_fd],
        )
        if reply.name != RESP_BUSY_POLL_ACK:
            raise HandshakeError(
                f"{self.path}: the device plugin refused to configure busy polling "
                "(/config_busy_poll_nak)",
                fix="drop busy_poll from the lport, or check the device plugin's log",
            )

    def _need_connection(self) -> None:
        if not self.alive:
            raise HandshakeError(
                f"{self.path}: not connected", fix="call connect() (or use handshake.acquire)"
            )

    @contextlib.contextmanager
    def _shared_turn(self, msg: str, timeout: float | None) -> Iterator[None]:
        """Our turn on a connection forked processes share. Bounded: a worker killed in the
        middle of a request must not block the others for ever."""
        if self._plock is None:
            yield
            return
        if not self._plock.acquire(timeout=self.timeout if timeout is None else timeout):
            raise HandshakeError(
                f"{self.path}: another process kept the connection busy; {msg!r} not sent"
            )
        try:
            yield
        finally:
            self._plock.release()

    def _exchange(
        self,
        msg: str,
        expect: tuple[str, ...] | None,
        *,
        fds: list[int] | None = None,
        fd_reply: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Reply, list[int]]:
        """Send one request and wait for one of the ``expect`` replies (``None``: any reply
        that is not /nak). ``fd_reply`` is the reply that must carry exactly one fd. Replies
        that are neither are ignored, never answered; fds nobody asked for are closed."""
        assert self.sock is not None
        with self._lock, self._shared_turn(msg, timeout):
            ex = _Exchange(msg)
            self.transcript.append(ex)
            try:
                scm.send_fds(self.sock, msg.encode("ascii"), fds or [])
            except OSError as e:
                raise HandshakeError(
                    f"{self.path}: sending {msg!r} failed: {os.strerror(e.errno or 0)}",
                    errno=e.errno,
                ) from None
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HandshakeError(
                        f"{self.path}: no answer to {msg!r} within "
                        f"{self.timeout if timeout is None else timeout:g} s",
                        fix="check that the device plugin is running",
                    )
                self.sock.settimeout(left)
                try:
                    got = scm.recv_fds(self.sock, MAX_REPLY, maxfds=4)
                except TimeoutError:
                    continue
                except OSError as e:
                    raise HandshakeError(
                        f"{self.path}: reading the answer to {msg!r} failed: "
                        f"{os.strerror(e.errno or 0)}",
                        errno=e.errno,
                    ) from None
                if got.eof:
                    raise HandshakeError(
                        f"{self.path}: the device plugin closed the connection after {msg!r}",
                        fix="another process of the pod may hold the connection; see the "
                        "device plugin's log",
                    )
                if got.truncated:
                    scm.close_fds(got.fds)
                    raise HandshakeError(
                        f"{self.path}: a reply longer than {MAX_REPLY} bytes: the peer does not "
                        "speak the device-plugin protocol"
                    )
                reply = parse_reply(got.data)
                ex.replies.append(reply.name)
                if reply.ignorable:
                    scm.close_fds(got.fds)
                    continue
                if expect is None or reply.name in expect:
                    if reply.name == fd_reply:
                        if len(got.fds) != 1 or got.ctrunc:
                            scm.close_fds(got.fds)
                            raise HandshakeError(
                                f"{self.path}: {reply.name} came with {len(got.fds)}"
                                f"{'+' if got.ctrunc else ''} file descriptors, expected one"
                            )
                        return reply, got.fds
                    scm.close_fds(got.fds)  # fds nobody asked for
                    if expect is None and reply.name == RESP_NAK:
                        raise HandshakeError(f"{self.path}: the device plugin refused {msg!r}")
                    return reply, []
                scm.close_fds(got.fds)
                if reply.name == RESP_NAK:
                    raise HandshakeError(
                        f"{self.path}: the device plugin did not understand {msg!r} (/nak)"
                    )
                if reply.name != RESP_ERROR:  # /error is followed by /host_nak
                    log.debug("%s: ignoring unexpected reply %r to %r", self.path, reply, msg)

    def __enter__(self) -> HandshakeClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# one connection per socket per process


@dataclass
class _Shared:
    client: HandshakeClient
    refs: int
    pid: int


_registry_lock = threading.Lock()
_registry: dict[tuple[int, int], _Shared] = {}


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()  # a thread of the parent may have held it at fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def socket_key(path: str) -> tuple[int, int]:
    """(device, inode) of the socket file: per-device bind mounts of one socket share it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise HandshakeError(
            f"no device-plugin socket {path}",
            fix="check uds_path: the device plugin mounts it at "
            + POD_UDS_PATH.format(dev="<netdev>"),
        ) from None
    except OSError as e:
        raise HandshakeError(f"{path}: {os.strerror(e.errno or 0)}", errno=e.errno) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise HandshakeError(f"{path} is not a Unix socket", fix="uds_path must name a socket")
    return (st.st_dev, st.st_ino)


def acquire(
    path: str, *, pod: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> HandshakeClient:
    """This process's connection to the DP socket at ``path`` (connected on first use).
    Every ``acquire`` needs a ``release``."""
    key = socket_key(path)
    with _registry_lock:
        sh = _registry.get(key)
        if sh is not None and sh.client.alive:
            sh.refs += 1
            return sh.client
        client = HandshakeClient(path, pod=pod, timeout=timeout)
        client.connect()
        _registry[key] = _Shared(client, 1, os.getpid())
        return client


def release(client: HandshakeClient) -> None:
    """Drop one reference; the last one in the process that connected sends /fin."""
    with _registry_lock:
        for key, sh in list(_registry.items()):
            if sh.client is client:
                sh.refs -= 1
                if sh.refs > 0:
                    return
                del _registry[key]
                break
        else:
            return
    if sh.pid == os.getpid():
        client.close()
    else:
        client.detach()


def shared_clients() -> list[HandshakeClient]:
    """The connections this process holds (for diagnostics and tests)."""
    with _registry_lock:
        return [sh.client for sh in _registry.values()]
