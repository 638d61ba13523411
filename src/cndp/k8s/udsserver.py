"""The device plugin's side of the AF_XDP handshake: one SOCK_SEQPACKET server per pod.

Pieces, from the inside out:

- :class:`Session` — the protocol state machine for one connection, with no I/O: feed it a
  request datagram (and the fds that came with it), get the responses. It answers exactly
  as the AF_XDP device plugin does (see :mod:`cndp.k8s.handshake` for the table) and fixes
  its quirks on purpose: one response per request (the Go DP may send two to a busy-poll
  request without an fd), a malformed busy-poll request gets ``/nak`` instead of a silently
  dropped connection, received fds are always closed (the Go DP leaks them), and the
  busy-poll fd must be an AF_XDP socket.
- Pod validators: :class:`AllowPods` (permissive, for tests and laptops) and
  :class:`PodResourcesValidator` (the device plugin's check through the kubelet's
  PodResources API — supplied as a lookup function — plus the peer's credentials: its uid,
  and the hostname of its UTS namespace, which must be the pod name it claims).
- :class:`UdsServer` — the socket: binds ``path`` (mode 0600, owned by the pod's uid when
  given), serves one connection at a time in a background thread (a second concurrent
  connection is closed at once), times out idle connections, and on ``close()`` removes the
  socket file and the directories it created. Unlike the Go DP it keeps listening after a
  session ends, so a restarted container can connect again, and by default it does not
  give up when the pod is slow to connect (afxdp-plugins issue #66).
- :class:`HostDevice` — our XDP redirect program and its XSKMAP on one netdev, optionally
  pinned for ``xsk_pin_path`` pods; :class:`PodEndpoint` — the devices plus the server of
  one allocation; its ``close()`` is the cleanup when the pod goes away (server stopped,
  socket removed, programs detached, pins removed).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..bpf import progs
from ..bpf.xdp import XdpMode, XskMap, attach, detach, resolve_ifindex
from ..errors import BpfError, CndpError, ConfigError, NetdevError, XdpAttachError
from ..sys import bpf as sysbpf
from ..sys import scm
from ..sys import xsk as sx
from . import handshake as hs
from .handshake import Kind

log = logging.getLogger("cndp.k8s.udsserver")

PeerCred = scm.PeerCred
DEFAULT_IDLE_TIMEOUT = 30.0  # the DP's udsTimeout default (30..300 s)
AF_XDP = 44

# (pod name, peer, devices this socket serves) -> accept?  An exception means the lookup
# failed: the session answers /error then /host_nak, as the DP does.
PodValidator = Callable[[str, PeerCred, frozenset], bool]


# ---------------------------------------------------------------------------------------------
# busy poll on the pod's socket


def apply_busy_poll(fd: int, timeout: int, budget: int) -> None:
    """Set SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on the AF_XDP socket
    ``fd`` (needs CAP_NET_ADMIN: the reason the pod asks us)."""
    if scm.socket_domain(fd) != AF_XDP:
        raise ConfigError("the fd sent with /config_busy_poll is not an AF_XDP socket")
    s = socket.socket(AF_XDP, socket.SOCK_RAW, 0, fileno=os.dup(fd))
    try:
        sx.set_busy_poll(s, timeout, budget)
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# the protocol, without I/O


@dataclass(frozen=True)
class Response:
    text: str
    fd: int | None = None  # sent as SCM_RIGHTS (the XSKMAP for /fd_ack)


class Session:
    """One connection's state: ``new`` -> ``connected`` -> ``closed``.

    ``handle(data, fds)`` returns the responses to send; the fds passed in are closed before
    it returns (the busy-poll fd is used first). After a refused ``/connect``, a garbage first
    request or ``/fin``, ``closed`` is True and the caller drops the connection.
    """

    def __init__(
        self,
        devices: Mapping[str, int],
        validate: PodValidator,
        peer: PeerCred,
        *,
        busy_poll: Callable[[int, int, int], None] = apply_busy_poll,
    ):
        self.devices = dict(devices)
        self.validate = validate
        self.peer = peer
        self.busy_poll = busy_poll
        self.state = "new"
        self.pod: str | None = None

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def handle(
        self,
        data: bytes,
        fds: Iterable[int] = (),
        *,
        truncated: bool = False,
        fd_overflow: bool = False,
    ) -> list[Response]:
        fds = list(fds)
        try:
            return self._handle(hs.parse_request(data, truncated=truncated), fds, fd_overflow)
        finally:
            scm.close_fds(fds)

    def _handle(self, req: hs.Request, fds: list[int], fd_overflow: bool) -> list[Response]:
        if self.state == "closed":
            return []
        if self.state == "new":
            # The first request must be /connect; whatever else comes ends the session.
            if req.kind is Kind.CONNECT and req.ok:
                try:
                    ok = bool(self.validate(req.arg, self.peer, frozenset(self.devices)))
                except Exception as e:
                    log.error("validating pod %s (peer %s) failed: %s", req.arg, self.peer, e)
                    self.state = "closed"
                    return [Response(hs.RESP_ERROR), Response(hs.RESP_HOST_NAK)]
                if ok:
                    self.state = "connected"
                    self.pod = req.arg
                    return [Response(hs.RESP_HOST_OK)]
                self.state = "closed"
                return [Response(hs.RESP_HOST_NAK)]
            self.state = "closed"
            return [Response(hs.RESP_HOST_NAK if req.mentions_connect else hs.RESP_NAK)]
        if req.kind is Kind.FIN:
            self.state = "closed"
            return [Response(hs.RESP_FIN_ACK)]
        if req.kind is Kind.VERSION:
            return [Response(hs.HANDSHAKE_VERSION)]
        if req.kind is Kind.XSK_MAP_FD:
            fd = self.devices.get(req.arg) if req.ok else None
            return [Response(hs.RESP_FD_ACK, fd)] if fd is not None else [Response(hs.RESP_FD_NAK)]
        if req.kind is Kind.BUSY_POLL:
            if not req.ok or len(fds) != 1 or fd_overflow:
                return [Response(hs.RESP_BUSY_POLL_NAK)]
            try:
                self.busy_poll(fds[0], req.timeout, req.budget)
            except (OSError, CndpError) as e:
                log.warning("pod %s: busy-poll configuration failed: %s", self.pod, e)
                return [Response(hs.RESP_BUSY_POLL_NAK)]
            return [Response(hs.RESP_BUSY_POLL_ACK)]
        return [Response(hs.RESP_NAK)]  # BAD, or a second /connect


# ---------------------------------------------------------------------------------------------
# pod validation


class AllowPods:
    """Permissive validator: accepts the named pods (any pod when none are named), whatever
    the devices and the peer. For tests and for running without Kubernetes."""

    def __init__(self, *pods: str):
        self.pods = frozenset(pods)

    def __call__(self, pod: str, peer: PeerCred, devices: frozenset) -> bool:
        return not self.pods or pod in self.pods


@dataclass(frozen=True)
class ContainerDevices:
    """One container of a pod, as the kubelet's PodResources API lists it."""

    name: str
    devices: Mapping[str, tuple[str, ...]]  # resource name -> device ids (netdev names)


@dataclass(frozen=True)
class PodResources:
    name: str
    namespace: str
    containers: tuple[ContainerDevices, ...] = ()


@dataclass
class PodResourcesValidator:
    """The device plugin's check, plus the peer's credentials.

    Accept ``pod`` when (1) the PodResources ``lookup`` lists a pod of that name (in any
    namespace, as the DP) with a container holding, for ``resource``, exactly the devices
    this socket serves; (2) when ``uids`` is given, the peer's uid is one of them; (3) with
    ``check_hostname``, the hostname of the peer's UTS namespace is the pod name (a pod's
    hostname is its name unless its spec sets ``hostname``; the DP must see the peer's pid,
    i.e. share the host's pid namespace). ``reason`` says why the last call refused.
    """

    lookup: Callable[[], Iterable[PodResources]]
    resource: str
    uids: frozenset[int] | None = None
    check_hostname: bool = True
    reason: str = field(default="", init=False)

    def __call__(self, pod: str, peer: PeerCred, devices: frozenset) -> bool:
        if self.uids is not None and peer.uid not in self.uids:
            return self._refuse(f"peer uid {peer.uid} is not one of {sorted(self.uids)}")
        pods = [p for p in self.lookup() if p.name == pod]  # may raise: /error
        if not pods:
            return self._refuse(f"pod {pod!r} is not on this node")
        if not any(_holds_exactly(c, self.resource, devices) for p in pods for c in p.containers):
            return self._refuse(
                f"no container of pod {pod!r} holds exactly {sorted(devices)} of {self.resource}"
            )
        if self.check_hostname:
            if peer.pid <= 0:
                return self._refuse("the peer's pid is not visible (run with the host's pids)")
            try:
                name = scm.uts_hostname(peer.pid)
            except OSError as e:
                return self._refuse(f"cannot read the peer's hostname: {e.strerror}")
            if name != pod:
                return self._refuse(f"the peer's hostname is {name!r}, not {pod!r}")
        self.reason = ""
        return True

    def _refuse(self, why: str) -> bool:
        self.reason = why
        log.warning("refusing pod: %s", why)
        return False


def _holds_exactly(c: ContainerDevices, resource: str, devices: frozenset) -> bool:
    ids = c.devices.get(resource, ())
    return len(ids) == len(devices) and set(ids) == devices


# ---------------------------------------------------------------------------------------------
# the socket


@dataclass
class ServerStats:
    connections: int = 0
    refused: int = 0  # concurrent connections closed at once
    timeouts: int = 0  # idle connections closed
    sessions_ok: int = 0  # /connect accepted
    fins: int = 0


class UdsServer:
    """Serves the handshake on ``path`` for the devices ``{netdev: XSKMAP fd}``.

    The fds stay owned by the caller. ``idle_timeout``: seconds a connection may stay
    silent (None: no limit, the DP's ``udsTimeout: -1``); ``accept_timeout``: give up (and
    remove the socket) when nobody connected by then (None: wait for ever); ``once``: stop
    after the first session, as the Go DP.
    ``uid``/``gid``: owner of the socket file, so that a pod running as that uid may
    connect. ``transcript`` keeps the last requests and responses.
    """

    def __init__(
        self,
        path: str,
        devices: Mapping[str, int],
        validate: PodValidator,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        accept_timeout: float | None = None,
        once: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        busy_poll: Callable[[int, int, int], None] = apply_busy_poll,
    ):
        if idle_timeout is not None and idle_timeout <= 0:
            raise ConfigError(f"idle_timeout must be > 0, got {idle_timeout}")
        for name in devices:
            if not hs.valid_netdev_name(name):
                raise ConfigError(f"device {name!r} is not a netdev name")
        self.path = os.path.abspath(path)
        self.devices = dict(devices)
        self.validate = validate
        self.idle_timeout = idle_timeout
        self.accept_timeout = accept_timeout
        self.once = once
        self.uid = uid
        self.gid = gid
        self.busy_poll = busy_poll
        self.stats = ServerStats()
        self.transcript: collections.deque[tuple[str, tuple[str, ...]]] = collections.deque(
            maxlen=1000
        )
        self.sessions: list[Session] = []
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._session: Session | None = None
        self._deadline = 0.0
        self._made_dirs: list[str] = []
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stop = False
        self.done = threading.Event()

    # -- lifecycle

    def start(self) -> UdsServer:
        """Bind and listen (errors raise here), then serve in a background thread."""
        self._bind()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._serve, name=f"uds:{self.path}", daemon=True)
        self._thread.start()
        return self

    def _bind(self) -> None:
        parent = os.path.dirname(self.path)
        missing = []
        d = parent
        while d and not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            os.mkdir(d, 0o755)
            self._made_dirs.append(d)
        if os.path.lexists(self.path):
            self._remove_stale()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            old = os.umask(0o177)  # the socket is born 0600: nobody else connects in between
            try:
                s.bind(self.path)
            finally:
                os.umask(old)
            if self.uid is not None or self.gid is not None:
                os.chown(
                    self.path,
                    -1 if self.uid is None else self.uid,
                    -1 if self.gid is None else self.gid,
                )
            s.listen(1)
        except OSError as e:
            s.close()
            self._remove_dirs()
            raise CndpError(
                f"cannot serve the handshake on {self.path}: {os.strerror(e.errno or 0)}",
                errno=e.errno,
            ) from None
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._listener = s

    def _remove_stale(self) -> None:
        st = os.lstat(self.path)
        if not stat.S_ISSOCK(st.st_mode):
            raise CndpError(
                f"{self.path} exists and is not a socket", fix="remove it or choose another path"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # nobody listens: a leftover of a crashed server
            return
        finally:
            probe.close()
        raise CndpError(f"another server already listens on {self.path}", fix="close it first")

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close the connection, remove the socket file and the directories
        this server created. Idempotent."""
        self._stop = True
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        self._close_conn()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._inode is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._inode:  # never remove someone else's socket
                    os.unlink(self.path)
            self._inode = None
        self._remove_dirs()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        self.done.set()

    def _remove_dirs(self) -> None:
        while self._made_dirs:
            d = self._made_dirs.pop()
            with contextlib.suppress(OSError):
                os.rmdir(d)  # only when empty

    def __enter__(self) -> UdsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- serving

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        started = time.monotonic()
        try:
            assert self._listener is not None
            sel.register(self._listener, selectors.EVENT_READ, "listen")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stop:
                now = time.monotonic()
                if self._conn is not None:
                    wait = None if self.idle_timeout is None else self._deadline - now
                elif self.accept_timeout is not None and not self.stats.connections:
                    wait = started + self.accept_timeout - now
                else:
                    wait = None
                if wait is not None and wait <= 0:
                    if self._conn is not None:
                        log.warning(
                            "pod %s: connection idle for %gs: closing",
                            self._pod(),
                            self.idle_timeout,
                        )
                        self.stats.timeouts += 1
                        sel.unregister(self._conn)
                        self._close_conn()
                        if self.once:
                            break
                        continue
                    log.error("%s: nobody connected within %gs", self.path, self.accept_timeout)
                    break
                for key, _ in sel.select(wait):
                    if key.data == "wake":
                        return
                    if key.data == "listen":
                        self._accept(sel)
                    elif key.data == "conn" and not self._on_readable():
                        sel.unregister(key.fileobj)
                        self._close_conn()
                        if self.once:
                            return
        except Exception:  # a bug must not leave the socket behind
            log.exception("%s: handshake server failed", self.path)
        finally:
            sel.close()
            if not self._stop:  # ended by itself (once, accept timeout): clean up now
                self._cleanup()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        if self._conn is not None:
            # One session per pod at a time; the DP would leave this one hanging.
            self.stats.refused += 1
            conn.close()
            return
        self.stats.connections += 1
        try:
            peer = scm.peer_cred(conn)
        except OSError:
            conn.close()
            return
        conn.setblocking(False)
        self._conn = conn
        self._session = Session(self.devices, self.validate, peer, busy_poll=self.busy_poll)
        self.sessions.append(self._session)
        self._deadline = time.monotonic() + (self.idle_timeout or 0.0)
        sel.register(conn, selectors.EVENT_READ, "conn")
        log.info("%s: connection from pid %d uid %d", self.path, peer.pid, peer.uid)

    def _on_readable(self) -> bool:
        """Handle one datagram; False when the connection is over."""
        conn, session = self._conn, self._session
        assert conn is not None and session is not None
        try:
            got = scm.recv_fds(conn, hs.MAX_REQUEST, maxfds=1)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if got.eof:
            scm.close_fds(got.fds)
            return False
        self._deadline = time.monotonic() + (self.idle_timeout or 0.0)
        was_new = session.state == "new"
        responses = session.handle(
            got.data, got.fds, truncated=got.truncated, fd_overflow=got.ctrunc
        )
        self.transcript.append(
            (got.data.decode("latin-1", "replace"), tuple(r.text for r in responses))
        )
        if was_new and session.state == "connected":
            self.stats.sessions_ok += 1
        for r in responses:
            try:
                scm.send_fds(conn, r.text.encode(), [r.fd] if r.fd is not None else [])
            except OSError:
                return False
        if session.closed:
            if responses and responses[-1].text == hs.RESP_FIN_ACK:
                self.stats.fins += 1
            return False
        return True

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None
        self._session = None

    def _pod(self) -> str:
        return (self._session.pod if self._session else None) or "(not connected)"


# ---------------------------------------------------------------------------------------------
# the device plugin's XDP side


class HostDevice:
    """Our XDP redirect program and its XSKMAP on one netdev, loaded for a pod.

    Loaded in the calling thread's network namespace; ``close()`` must run in the same one
    (it detaches only the program it attached: the id is checked). ``pin_path``: also pin
    the XSKMAP there (a bpffs path) for pods that use ``xsk_pin_path``; ``uid`` owns the pin
    so that such a pod can open it without privileges.
    """

    def __init__(
        self,
        ifname: str,
        *,
        mode: XdpMode = XdpMode.DRV,
        queues: int = 64,
        pin_path: str | None = None,
        uid: int | None = None,
        force: bool = False,
    ):
        self.ifname = ifname
        self.mode = mode
        self.ifindex = resolve_ifindex(ifname)
        self.pin_path: str | None = None
        self.xskmap = XskMap.create(queues, name="cndp_xsks")
        self.prog_fd = -1
        self.prog_id = 0
        try:
            self.prog_fd = progs.load("xsk_redir", progs.xsk_redirect(self.xskmap.fd))
            attach(self.ifindex, self.prog_fd, mode, force=force)
            self.prog_id = sysbpf.prog_info(self.prog_fd).id
            if pin_path:
                self.xskmap.pin(pin_path)
                self.pin_path = pin_path
                os.chmod(pin_path, 0o600)
                if uid is not None:
                    os.chown(pin_path, uid, -1)
        except BaseException:
            self.close()
            raise

    @property
    def map_fd(self) -> int:
        return self.xskmap.fd

    def close(self) -> None:
        """Unpin, detach (if still our program), close. Idempotent; a netdev already gone
        (namespace deleted) is not an error."""
        if self.pin_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pin_path)
            self.pin_path = None
        if self.prog_id:
            try:
                detach(self.ifindex, self.mode, expected_id=self.prog_id)
            except (NetdevError, XdpAttachError) as e:
                log.debug("detach %s: %s", self.ifname, e)
            self.prog_id = 0
        if self.prog_fd >= 0:
            sysbpf.close(self.prog_fd)
            self.prog_fd = -1
        self.xskmap.close()

    def __enter__(self) -> HostDevice:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PodEndpoint:
    """One allocation: the devices and the server that hands out their XSKMAPs.

    ``close()`` is the cleanup when the pod goes away: the server stops and its socket
    file goes, then every device's program is detached and its pin removed.
    """

    def __init__(
        self,
        path: str,
        devices: Iterable[HostDevice],
        validate: PodValidator,
        **server_kw,
    ):
        self.devices = {d.ifname: d for d in devices}
        self.server = UdsServer(
            path, {n: d.map_fd for n, d in self.devices.items()}, validate, **server_kw
        )

    def start(self) -> PodEndpoint:
        self.server.start()
        return self

    def close(self) -> None:
        errors: list[str] = []
        try:
            self.server.close()
        except CndpError as e:
            errors.append(str(e))
        for d in self.devices.values():
            try:
                d.close()
            except (CndpError, BpfError, OSError) as e:
                errors.append(f"{d.ifname}: {e}")
        if errors:
            raise CndpError("cleaning up the pod's devices failed: " + "; ".join(errors))

    def __enter__(self) -> PodEndpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
