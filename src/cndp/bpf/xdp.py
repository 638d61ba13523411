"""Attach, detach and query XDP programs over rtnetlink (pyroute2), plus the XSKMAP.

Policy: we never silently replace a program someone else attached. A program is "ours" when
its name starts with ``cndp_``; anything else needs ``force=True``.
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import socket
import struct
import threading
from dataclasses import dataclass
from enum import Enum

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import BpfError, NetdevError, PrivilegeError, XdpAttachError, XdpBusyError
from ..sys import bpf as sysbpf
from . import progs

log = logging.getLogger("cndp.bpf")

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4


class XdpMode(Enum):
    SKB = "skb"  # generic: works on every netdev, runs after the skb is built
    DRV = "drv"  # native: in the driver, before any skb

    @property
    def flag(self) -> int:
        return XDP_FLAGS_SKB_MODE if self is XdpMode.SKB else XDP_FLAGS_DRV_MODE


_ATTACHED_MODES = {1: "drv", 2: "skb", 3: "hw", 4: "multi"}


@dataclass(frozen=True)
class Attached:
    """What is attached to a netdev: mode (drv/skb/hw/multi), program id and name."""

    mode: str
    prog_id: int
    name: str

    @property
    def ours(self) -> bool:
        return progs.is_ours(self.name)


def resolve_ifindex(ifname: str | int) -> int:
    if isinstance(ifname, int):
        return ifname
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise NetdevError(
            f"netdev {ifname!r} does not exist in this network namespace",
            errno=_errno.ENODEV,
            fix="check the name with `ip link`",
        ) from None


def _prog_name(prog_id: int) -> str:
    try:
        fd = sysbpf.prog_fd_by_id(prog_id)
    except BpfError:
        return "?"
    try:
        return sysbpf.prog_info(fd).name
    finally:
        sysbpf.close(fd)


def query(ifname: str | int) -> Attached | None:
    """The XDP program attached to a netdev, or None."""
    idx = resolve_ifindex(ifname)
    with IPRoute() as ipr:
        try:
            (msg,) = ipr.link("get", index=idx)
        except NetlinkError as e:
            raise NetdevError(f"cannot read netdev index {idx}: {e}", errno=e.code) from None
    xdp = msg.get_attr("IFLA_XDP")
    if xdp is None:
        return None
    mode_raw = xdp.get_attr("IFLA_XDP_ATTACHED")
    if not mode_raw:
        return None
    # pyroute2 maps the mode to names (xdp, xdpgeneric, ...): normalise to ours
    mode = {"xdp": "drv", "xdpgeneric": "skb", "xdpoffload": "hw", "xdpmulti": "multi"}.get(
        mode_raw, _ATTACHED_MODES.get(mode_raw, str(mode_raw))
    )
    prog_id = (
        xdp.get_attr("IFLA_XDP_PROG_ID")
        or xdp.get_attr("IFLA_XDP_DRV_PROG_ID")
        or xdp.get_attr("IFLA_XDP_SKB_PROG_ID")
        or 0
    )
    return Attached(mode, prog_id, _prog_name(prog_id) if prog_id else "")


def _set_xdp(idx: int, fd: int, flags: int, what: str) -> None:
    with IPRoute() as ipr:
        try:
            ipr.link(
                "set", index=idx, xdp={"attrs": [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]}
            )
        except NetlinkError as e:
            if e.code in (_errno.EPERM, _errno.EACCES):
                raise PrivilegeError(
                    f"{what}: permission denied",
                    errno=e.code,
                    fix="needs CAP_NET_ADMIN (or let the device plugin "
                    "load the program and pass the XSKMAP)",
                ) from None
            if e.code == _errno.EOPNOTSUPP:
                raise XdpAttachError(
                    f"{what}: the driver does not support this XDP mode",
                    errno=e.code,
                    fix="use skb (generic) mode",
                ) from None
            if e.code in (_errno.EBUSY, _errno.EEXIST):
                raise XdpBusyError(
                    f"{what}: another XDP program is attached in a different "
                    "mode or was attached concurrently",
                    errno=e.code,
                    fix="detach it first (`ip link set dev DEV xdp off`)",
                ) from None
            raise XdpAttachError(f"{what}: {os.strerror(e.code)}", errno=e.code) from None


def attach(
    ifname: str | int, prog_fd: int, mode: XdpMode = XdpMode.DRV, *, force: bool = False
) -> None:
    """Attach ``prog_fd``; refuse to replace a program that is not ours unless ``force``."""
    idx = resolve_ifindex(ifname)
    cur = query(idx)
    flags = mode.flag
    if cur is not None:
        if not cur.ours and not force:
            raise XdpBusyError(
                f"netdev index {idx} already runs XDP program {cur.name!r} (id {cur.prog_id}, "
                f"{cur.mode} mode) that pycndp did not load",
                fix="detach it (`ip link set dev DEV xdp off`) or pass force=True to replace it",
            )
        if cur.mode not in (mode.value, "multi"):
            # The kernel cannot hold drv and skb programs at once: take ours out first.
            detach(idx, XdpMode.DRV if cur.mode == "drv" else XdpMode.SKB)
    else:
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST
    _set_xdp(idx, prog_fd, flags, f"attaching XDP program to netdev index {idx} ({mode.value})")


def detach(
    ifname: str | int, mode: XdpMode | None = None, *, expected_id: int | None = None
) -> bool:
    """Detach the program in ``mode`` (default: whatever is attached). False if none was.

    With ``expected_id`` we detach only when that very program is still attached, so closing
    a socket never removes a program somebody attached after us.
    """
    idx = resolve_ifindex(ifname)
    cur = query(idx)
    if cur is None:
        return False
    if expected_id is not None and cur.prog_id != expected_id:
        return False
    if mode is None:
        mode = XdpMode.DRV if cur.mode == "drv" else XdpMode.SKB
    _set_xdp(idx, -1, mode.flag, f"detaching XDP program from netdev index {idx}")
    return True


class XskMap:
    """An XSKMAP: queue id -> AF_XDP socket. ``owned`` maps are closed by us."""

    def __init__(self, fd: int, max_entries: int, *, owned: bool = True):
        self.fd = fd
        self.max_entries = max_entries
        self.owned = owned

    @classmethod
    def create(cls, max_entries: int, name: str = "cndp_xsks") -> XskMap:
        fd = sysbpf.map_create(sysbpf.MAP_TYPE_XSKMAP, 4, 4, max_entries, name=name)
        return cls(fd, max_entries)

    @classmethod
    def from_fd(cls, fd: int) -> XskMap:
        info = sysbpf.map_info(fd)
        if info.type != sysbpf.MAP_TYPE_XSKMAP:
            raise BpfError(
                f"BPF map fd {fd} (id {info.id}, {info.name!r}) is not an XSKMAP "
                f"(type {info.type})",
                fix="pass the xsks_map of the XDP program",
            )
        return cls(fd, info.max_entries, owned=False)

    @classmethod
    def from_pin(cls, path: str) -> XskMap:
        fd = sysbpf.obj_get(path)
        m = cls.from_fd(fd)
        m.owned = True  # we opened this fd, so we close it
        return m

    def set(self, qid: int, xsk_fd: int) -> None:
        if not 0 <= qid < self.max_entries:
            raise BpfError(
                f"queue {qid} is outside the XSKMAP (max_entries {self.max_entries})",
                fix="use a queue id below the number of queues of the netdev",
            )
        sysbpf.map_update(self.fd, struct.pack("I", qid), struct.pack("I", xsk_fd))

    def delete(self, qid: int) -> bool:
        return sysbpf.map_delete(self.fd, struct.pack("I", qid))

    def pin(self, path: str) -> None:
        sysbpf.obj_pin(self.fd, path)

    def close(self) -> None:
        if self.fd >= 0:
            sysbpf.close(self.fd)
            self.fd = -1


def netns_id() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


class XskProgram:
    """Our redirect program plus its XSKMAP on one netdev, shared by this process's sockets.

    Sockets on several queues of one netdev need one program and one map; ``acquire`` hands out
    the same object (reference counted) and the last ``release`` detaches and closes it.
    """

    _lock = threading.Lock()
    _registry: dict[tuple[int, int], XskProgram] = {}

    def __init__(self, ifindex: int, mode: XdpMode, xskmap: XskMap, prog_fd: int, prog_id: int):
        self.ifindex = ifindex
        self.mode = mode
        self.xskmap = xskmap
        self.prog_fd = prog_fd
        self.prog_id = prog_id
        self.refs = 0

    @classmethod
    def acquire(
        cls, ifname: str | int, mode: XdpMode, *, max_queues: int = 64, force: bool = False
    ) -> XskProgram:
        idx = resolve_ifindex(ifname)
        key = (netns_id(), idx)
        with cls._lock:
            prog = cls._registry.get(key)
            if prog is not None:
                if prog.mode is not mode:
                    raise XdpAttachError(
                        f"netdev index {idx} already has our XDP program in {prog.mode.value} "
                        f"mode; cannot add a socket in {mode.value} mode",
                        fix="use the same skb_mode for every lport on one netdev",
                    )
                prog.refs += 1
                return prog
            xskmap = XskMap.create(max_queues)
            prog_fd = -1
            try:
                prog_fd = progs.load("xsk_redir", progs.xsk_redirect(xskmap.fd))
                attach(idx, prog_fd, mode, force=force)
                prog_id = sysbpf.prog_info(prog_fd).id
            except BaseException:
                if prog_fd >= 0:
                    sysbpf.close(prog_fd)
                xskmap.close()
                raise
            prog = cls(idx, mode, xskmap, prog_fd, prog_id)
            prog.refs = 1
            cls._registry[key] = prog
            log.info(
                "attached XDP program id %d to netdev index %d (%s mode)", prog_id, idx, mode.value
            )
            return prog

    def release(self) -> None:
        with self._lock:
            self.refs -= 1
            if self.refs > 0:
                return
            for k, v in list(self._registry.items()):
                if v is self:
                    del self._registry[k]
            try:
                detach(self.ifindex, self.mode, expected_id=self.prog_id)
            except (NetdevError, XdpAttachError) as e:
                # The netdev may be gone already (namespace deleted): nothing left to detach.
                log.debug("detach on release: %s", e)
            finally:
                sysbpf.close(self.prog_fd)
                self.xskmap.close()
