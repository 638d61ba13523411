"""Network device helpers: ifindex, MAC, MTU, flags, channels/queues, driver name.

Interface ioctls go through ``fcntl.ioctl`` with ``struct``-packed ``struct ifreq``; no ctypes.
SIOCETHTOOL needs a pointer to a command buffer in ``ifr_data``: we take the address of an
``array.array`` buffer (``buffer_info()``), which stays alive for the duration of the call.

Every call works on the network namespace of the *calling thread* (each call opens a fresh
socket, and a socket belongs to the namespace it was created in), so these helpers are correct
inside :func:`cndp.testing.netns.in_netns`. /sys is not: it shows the namespace it was mounted
in, which is why queue counts come from ethtool or rtnetlink rather than sysfs when the sysfs
view is not ours.
"""

from __future__ import annotations

import array
import errno as _errno
import fcntl
import os
import socket
import struct

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import ConfigError, NetdevError, PrivilegeError

__all__ = [
    "driver_info",
    "driver_name",
    "get_channels",
    "get_mac",
    "get_mtu",
    "has_carrier",
    "ifindex",
    "is_promisc",
    "is_running",
    "is_up",
    "link_down",
    "link_up",
    "rx_queue_count",
    "set_mtu",
    "set_promisc",
    "sysfs_view_is_ours",
    "tx_queue_count",
]

IFNAMSIZ = 16
IFREQ_SIZE = 40  # sizeof(struct ifreq) on 64-bit Linux

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCGIFHWADDR = 0x8927
SIOCETHTOOL = 0x8946

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100

ETHTOOL_GSET = 0x00000001
ETHTOOL_GDRVINFO = 0x00000003
ETHTOOL_GCHANNELS = 0x0000003C

# struct ethtool_channels: cmd, max_rx, max_tx, max_other, max_combined,
#                          rx_count, tx_count, other_count, combined_count
_CHANNELS = struct.Struct("=9I")
# struct ethtool_drvinfo: cmd, driver[32], version[32], fw_version[32], bus_info[32],
#                         erom_version[32], reserved2[12], 5 x u32
_DRVINFO = struct.Struct("=I32s32s32s32s32s12s5I")


def _encode(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise NetdevError(f"{name!r} is not a netdev name", fix="check `ip link`")
    try:
        raw = name.encode()
    except UnicodeEncodeError:
        raw = b"/"  # not representable: treat like any other invalid name
    if len(raw) >= IFNAMSIZ or b"\0" in raw or b"/" in raw:
        raise NetdevError(
            f"netdev {name!r} does not exist in this network namespace "
            "(not a valid interface name)",
            errno=_errno.ENODEV,
            fix="check `ip link`",
        )
    return raw


def _missing(name: str) -> NetdevError:
    return NetdevError(
        f"netdev {name!r} does not exist in this network namespace",
        errno=_errno.ENODEV,
        fix="check `ip link`",
    )


def _raise(name: str, what: str, e: OSError):
    code = e.errno
    if code in (_errno.ENODEV, _errno.ENXIO):
        raise _missing(name) from None
    if code in (_errno.EPERM, _errno.EACCES):
        raise PrivilegeError(
            f"{what} on netdev {name!r}: permission denied", errno=code, fix="needs CAP_NET_ADMIN"
        ) from None
    if code == _errno.EOPNOTSUPP:
        raise NetdevError(
            f"{what}: netdev {name!r} (driver) does not support it", errno=code
        ) from None
    raise NetdevError(f"{what} on netdev {name!r}: {os.strerror(code or 0)}", errno=code) from None


def _ioctl(name: str, req: int, payload: bytes = b"", what: str = "ioctl") -> bytes:
    ifr = _encode(name).ljust(IFNAMSIZ, b"\0") + payload
    ifr = ifr.ljust(IFREQ_SIZE, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            return fcntl.ioctl(s.fileno(), req, ifr)
        except OSError as e:
            _raise(name, what, e)
    raise AssertionError("unreachable")  # pragma: no cover


def _ethtool(name: str, cmd: bytes, what: str) -> bytes:
    """SIOCETHTOOL with ``cmd`` (a struct starting with the u32 command); returns the buffer
    as the kernel left it."""
    buf = array.array("B", cmd)
    addr, _ = buf.buffer_info()
    _ioctl(name, SIOCETHTOOL, struct.pack("=Q", addr), what)
    return buf.tobytes()


# --------------------------------------------------------------------------------------------


def ifindex(name: str) -> int:
    """Interface index of ``name`` in the calling thread's network namespace."""
    _encode(name)
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise _missing(name) from None


def get_mac(name: str) -> bytes:
    """Hardware address (6 bytes for Ethernet-like devices; zeros for lo)."""
    out = _ioctl(name, SIOCGIFHWADDR, what="reading the MAC address (SIOCGIFHWADDR)")
    # struct sockaddr: sa_family (u16) then sa_data
    return out[IFNAMSIZ + 2 : IFNAMSIZ + 8]


def get_mtu(name: str) -> int:
    out = _ioctl(name, SIOCGIFMTU, what="reading the MTU (SIOCGIFMTU)")
    return struct.unpack_from("=i", out, IFNAMSIZ)[0]


def _mtu_range(name: str) -> tuple[int | None, int | None]:
    try:
        with IPRoute() as ipr:
            (link,) = ipr.link("get", index=ifindex(name))
        return link.get("IFLA_MIN_MTU"), link.get("IFLA_MAX_MTU")
    except (NetlinkError, OSError, ValueError, NetdevError):
        return None, None


def set_mtu(name: str, mtu: int) -> None:
    try:
        _ioctl(name, SIOCSIFMTU, struct.pack("=i", int(mtu)), what=f"setting MTU {mtu}")
    except NetdevError as e:
        if e.errno == _errno.EINVAL:
            lo, hi = _mtu_range(name)
            rng = f" (accepted range {lo}..{hi})" if lo is not None and hi is not None else ""
            raise ConfigError(
                f"netdev {name!r} refuses MTU {mtu}{rng}",
                errno=e.errno,
                fix="pick an MTU in the device's range",
            ) from None
        raise


def _get_flags(name: str) -> int:
    out = _ioctl(name, SIOCGIFFLAGS, what="reading flags (SIOCGIFFLAGS)")
    return struct.unpack_from("=H", out, IFNAMSIZ)[0]


def _set_flag(name: str, flag: int, on: bool, what: str) -> None:
    flags = _get_flags(name)
    new = (flags | flag) if on else (flags & ~flag)
    if new != flags:
        _ioctl(name, SIOCSIFFLAGS, struct.pack("=H", new & 0xFFFF), what=what)


def is_up(name: str) -> bool:
    """Administratively up (IFF_UP)."""
    return bool(_get_flags(name) & IFF_UP)


def is_running(name: str) -> bool:
    """Operationally up (IFF_RUNNING). The kernel derives it from the operstate, which
    linkwatch updates asynchronously (up to ~1 s after a carrier change); use
    :func:`has_carrier` for the carrier itself."""
    return bool(_get_flags(name) & IFF_RUNNING)


def has_carrier(name: str) -> bool:
    """Carrier (IFLA_CARRIER over rtnetlink; the ioctl flags are 16 bits and cannot carry
    IFF_LOWER_UP). For a veth: both ends are up."""
    idx = ifindex(name)
    try:
        with IPRoute() as ipr:
            (link,) = ipr.link("get", index=idx)
    except NetlinkError as e:
        if e.code == _errno.ENODEV:
            raise _missing(name) from None
        raise NetdevError(f"reading netdev {name!r} over rtnetlink: {e}", errno=e.code) from None
    return bool(link.get("IFLA_CARRIER"))


def is_promisc(name: str) -> bool:
    return bool(_get_flags(name) & IFF_PROMISC)


def link_up(name: str) -> None:
    _set_flag(name, IFF_UP, True, "bringing the link up")


def link_down(name: str) -> None:
    _set_flag(name, IFF_UP, False, "bringing the link down")


def set_promisc(name: str, on: bool) -> None:
    _set_flag(name, IFF_PROMISC, on, f"turning promiscuous mode {'on' if on else 'off'}")


def link_speed_mbps(name: str) -> int | None:
    """The link speed in Mb/s (ETHTOOL_GSET), or None when the driver reports none (veth
    reports 10000; "unknown" is 0 or all ones)."""
    # struct ethtool_cmd (44 bytes): speed (u16) at byte 12, speed_hi (u16) at byte 28
    raw = _ethtool(name, struct.pack("=I", ETHTOOL_GSET).ljust(44, b"\0"), "reading the speed")
    speed = struct.unpack_from("=H", raw, 12)[0] | (struct.unpack_from("=H", raw, 28)[0] << 16)
    return None if speed in (0, 0xFFFF, 0xFFFFFFFF) else speed


def driver_name(name: str) -> str:
    """Driver name from ETHTOOL_GDRVINFO ("veth", "virtio_net", "mlx5_core", ...)."""
    return driver_info(name)[0]


def driver_info(name: str) -> tuple[str, str]:
    """(driver, bus_info) from ETHTOOL_GDRVINFO; bus_info is the PCI address of a PCI NIC
    ("0000:00:03.0", also for virtio_net), "" for virtual devices such as veth."""
    out = _ethtool(
        name,
        _DRVINFO.pack(ETHTOOL_GDRVINFO, *([b""] * 6), *([0] * 5)),
        "reading driver info (ETHTOOL_GDRVINFO)",
    )
    f = _DRVINFO.unpack(out)
    driver, bus = (f[i].split(b"\0", 1)[0].decode(errors="replace") for i in (1, 4))
    return driver, bus


# --------------------------------------------------------------------------------------------
# queues


def _netlink_queues(name: str) -> tuple[int, int]:
    idx = ifindex(name)
    try:
        with IPRoute() as ipr:
            (link,) = ipr.link("get", index=idx)
    except NetlinkError as e:
        if e.code == _errno.ENODEV:
            raise _missing(name) from None
        raise NetdevError(f"reading netdev {name!r} over rtnetlink: {e}", errno=e.code) from None
    return int(link.get("IFLA_NUM_RX_QUEUES") or 1), int(link.get("IFLA_NUM_TX_QUEUES") or 1)


def sysfs_view_is_ours() -> bool:
    """True when /sys/class/net lists exactly the calling thread's netdevs (same names and
    ifindexes). After setns() without remounting /sys it lists another namespace's."""
    try:
        ours = {n: i for i, n in socket.if_nameindex()}
        theirs = {}
        for n in os.listdir("/sys/class/net"):
            with open(f"/sys/class/net/{n}/ifindex") as f:
                theirs[n] = int(f.read())
    except (OSError, ValueError):
        return False
    return ours == theirs


def _sysfs_queues(name: str) -> tuple[int, int] | None:
    if not sysfs_view_is_ours():
        return None
    try:
        entries = os.listdir(f"/sys/class/net/{name}/queues")
    except OSError:
        return None
    rx = sum(1 for e in entries if e.startswith("rx-"))
    tx = sum(1 for e in entries if e.startswith("tx-"))
    return rx, tx


def get_channels(name: str) -> dict:
    """Channel counts as ``ethtool -l`` shows them.

    Keys: max_rx, max_tx, max_combined, rx_count, tx_count, combined_count, and ``source``
    ("ethtool", "sysfs" or "netlink"). Drivers without ETHTOOL_GCHANNELS (lo, ...) are
    answered from /sys/class/net/<if>/queues when sysfs shows our namespace, else from
    rtnetlink's IFLA_NUM_RX_QUEUES / IFLA_NUM_TX_QUEUES (always namespace-correct).
    """
    ch = _ethtool_channels(name)
    if ch is not None:
        return ch
    counts = _sysfs_queues(name)
    source = "sysfs"
    if counts is None:
        counts, source = _netlink_queues(name), "netlink"
    rx, tx = counts
    return {
        "max_rx": rx,
        "max_tx": tx,
        "max_combined": 0,
        "rx_count": rx,
        "tx_count": tx,
        "combined_count": 0,
        "source": source,
    }


def rx_queue_count(name: str, *, allocated: bool = False) -> int:
    """Number of RX queues of ``name``.

    By default the queues in use: ethtool's rx + combined channel count when the driver
    reports it (veth does; ``ethtool -L`` can lower it below what was allocated), else
    IFLA_NUM_RX_QUEUES over rtnetlink. ``allocated=True`` always returns IFLA_NUM_RX_QUEUES
    (the queues the device was created with).
    """
    if not allocated:
        ch = _ethtool_channels(name)
        if ch is not None and ch["rx_count"] + ch["combined_count"] > 0:
            return ch["rx_count"] + ch["combined_count"]
    return _netlink_queues(name)[0]


def tx_queue_count(name: str, *, allocated: bool = False) -> int:
    """Number of TX queues; see :func:`rx_queue_count`."""
    if not allocated:
        ch = _ethtool_channels(name)
        if ch is not None and ch["tx_count"] + ch["combined_count"] > 0:
            return ch["tx_count"] + ch["combined_count"]
    return _netlink_queues(name)[1]


def _ethtool_channels(name: str) -> dict | None:
    """ETHTOOL_GCHANNELS as a dict, or None when the driver does not implement it."""
    try:
        out = _ethtool(
            name,
            _CHANNELS.pack(ETHTOOL_GCHANNELS, *([0] * 8)),
            "reading channels (ETHTOOL_GCHANNELS)",
        )
    except NetdevError as e:
        if e.errno == _errno.EOPNOTSUPP:
            return None
        raise
    _, mrx, mtx, _mo, mc, rx, tx, _o, c = _CHANNELS.unpack(out)
    return {
        "max_rx": mrx,
        "max_tx": mtx,
        "max_combined": mc,
        "rx_count": rx,
        "tx_count": tx,
        "combined_count": c,
        "source": "ethtool",
    }
