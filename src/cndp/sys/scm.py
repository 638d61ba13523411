"""File descriptors over AF_UNIX sockets (SCM_RIGHTS), peer credentials, peer hostname.

The AF_XDP device-plugin handshake passes an XSKMAP fd one way and an AF_XDP socket fd the
other way. Python's ``socket.send_fds``/``recv_fds`` cover the basic case; these add what a
server facing an untrusted peer needs:

- received fds are close-on-exec (``MSG_CMSG_CLOEXEC``), so a later exec never leaks them;
- truncation of the data (``MSG_TRUNC``) and of the control buffer (``MSG_CTRUNC``: the peer
  sent more fds than we take; the kernel closes the extra ones) is reported, not hidden;
- ``SO_PEERCRED``: pid, uid and gid of the connecting process, as the kernel saw them at
  connect();
- the hostname of the peer's UTS namespace, read with setns(2) in a short-lived thread (a pod's
  hostname is its name, so a server can check the name the peer claims).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import os
import socket
import struct
import threading
from dataclasses import dataclass, field

from .libc import libc

CLONE_NEWUTS = 0x04000000
_INT = array.array("i").itemsize
_CRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}

libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.setns.restype = ctypes.c_int


@dataclass(frozen=True)
class PeerCred:
    """The connecting process: pid 0 means it is not visible in our pid namespace."""

    pid: int
    uid: int
    gid: int


@dataclass
class Received:
    """One datagram: its bytes, the fds that came with it, and what was cut off."""

    data: bytes
    fds: list[int] = field(default_factory=list)
    truncated: bool = False  # the datagram was longer than the buffer
    ctrunc: bool = False  # more ancillary data than we made room for (extra fds dropped)

    @property
    def eof(self) -> bool:
        # SOCK_SEQPACKET: a zero-length read without fds is the end of the connection
        return not self.data and not self.fds and not self.truncated


def peer_cred(sock: socket.socket) -> PeerCred:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
    return PeerCred(*_CRED.unpack(raw))


def recv_fds(sock: socket.socket, bufsize: int, maxfds: int = 1, flags: int = 0) -> Received:
    """recvmsg() one datagram with room for ``maxfds`` descriptors (close-on-exec)."""
    data, anc, mflags, _ = sock.recvmsg(
        bufsize, socket.CMSG_SPACE(max(maxfds, 1) * _INT), flags | socket.MSG_CMSG_CLOEXEC
    )
    fds: list[int] = []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(payload) // _INT
            fds.extend(struct.unpack(f"{n}i", payload[: n * _INT]))
    return Received(
        data,
        fds,
        truncated=bool(mflags & socket.MSG_TRUNC),
        ctrunc=bool(mflags & socket.MSG_CTRUNC),
    )


def send_fds(sock: socket.socket, data: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    """sendmsg() one datagram, with ``fds`` as one SCM_RIGHTS message when given."""
    anc = []
    if fds:
        anc.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes()))
    sock.sendmsg([data], anc)


def close_fds(fds: list[int] | tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def socket_domain(fd: int) -> int | None:
    """The address family of the socket behind ``fd`` (SO_DOMAIN), or None if not a socket."""
    # Family and type given explicitly: Python's own detection calls getsockname(), which
    # AF_XDP sockets do not support. getsockopt() works on whatever the fd really is.
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM, 0, fileno=os.dup(fd))
    except OSError:
        return None
    try:
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    except OSError:
        return None
    finally:
        s.close()


def uts_hostname(pid: int) -> str:
    """The hostname in the UTS namespace of process ``pid``.

    A thread joins that namespace with setns(2) (UTS namespaces are per thread, so the rest
    of the process is unaffected), reads uname(2) and ends. Needs CAP_SYS_ADMIN when the
    namespace is not ours. Raises OSError (ENOENT when the process is gone).
    """
    path = f"/proc/{pid}/ns/uts"
    if os.stat(path).st_ino == os.stat("/proc/thread-self/ns/uts").st_ino:
        return os.uname().nodename
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    out: dict[str, object] = {}

    def run() -> None:
        if libc.setns(fd, CLONE_NEWUTS) != 0:
            err = ctypes.get_errno()
            out["error"] = OSError(err, f"setns({path}): {os.strerror(err)}")
            return
        out["name"] = os.uname().nodename

    try:
        t = threading.Thread(target=run, name="uts-peek", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return str(out["name"])
