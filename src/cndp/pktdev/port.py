"""pktdev core: the port configuration, the common port interface and the lport registry.

A *port* (CNDP: lport) is one queue of one device behind a uniform burst interface. The driver
is chosen by the lport's ``pmd`` string (``"net_af_xdp"``, ``"net_ring"``, ``"net_null"``,
``"net_tap"``, ``"net_af_packet"``; options may follow a colon, ``"net_ring:size=2048"``).
``port_setup(cfg)`` builds the driver, gives it the lowest free lport id (0..31, CNDP's
``CNE_MAX_ETHPORTS``) and starts it (admin state up).

Data path: ``port.rx_burst(pv, n)`` / ``port.tx_burst(pv, n)`` on packet vectors. Both are
plain instance attributes bound straight to the driver's burst functions, so the admin-state
check costs nothing per burst: taking a port down rebinds them to a function that returns
``PKTDEV_ADMIN_STATE_DOWN`` (0xFFFF) without touching the vector, like CNDP.

Frame ownership: frames placed in ``pv`` by ``rx_burst`` belong to the caller. ``tx_burst``
consumes the first ``k`` packets it returns; their frames go back to the port's pool when the
driver no longer needs them (at once for drivers that copy, on completion for AF_XDP, and for
``net_ring`` they travel to whoever receives them). The caller still owns packets ``k..n``.
A freed frame goes to the pool of the port that frees it: ports that pass frames between each
other in one process should share one ``Mempool`` (``PortConfig.pool``).

Control calls (MAC, MTU, link, promiscuous mode) act on the netdev in the network namespace the
port was created in, whichever namespace the calling thread is in at the time.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ..errors import CndpError, ConfigError, NetdevError
from ..mem.mempool import Mempool
from ..mem.umem import XDP_PKT_HEADROOM, Umem
from ..sys import netdev
from ..xskdev.xskdev import STAT_KEYS

log = logging.getLogger("cndp.pktdev")

__all__ = [
    "MAX_ETHPORTS",
    "PKTDEV_ADMIN_STATE_DOWN",
    "STAT_KEYS",
    "Offloads",
    "Port",
    "PortConfig",
    "PortError",
    "PortInfo",
    "close_all",
    "get_port",
    "get_port_by_name",
    "info",
    "is_valid_port",
    "known_pmds",
    "parse_pmd",
    "port_count",
    "port_name",
    "port_setup",
    "ports",
    "register_driver",
]

MAX_ETHPORTS = 32  # CNE_MAX_ETHPORTS
PKTDEV_ADMIN_STATE_DOWN = 0xFFFF
NAME_MAX_LEN = 64  # PKTDEV_NAME_MAX_LEN
ETHER_HDR_LEN = 14
VLAN_HLEN = 4
MIN_MTU = 68


class PortError(CndpError):
    """A pktdev call on an lport that cannot answer it. ``errno`` says why, as CNDP's
    negative return codes do: ENODEV (id beyond the maximum, or no such name), ENOTSUP (no
    port with this id, or the driver cannot do it), ENOSPC (all lport ids in use)."""


# --------------------------------------------------------------------------------------------
# configuration


@dataclass
class PortConfig:
    """One lport, as the runtime builds it from a jsonc ``lports`` entry (CNDP lport_cfg_t).

    ``ifname`` defaults to the part of ``name`` before ``:`` (jsonc: the key ``eth0:0`` names
    netdev ``eth0``). For ``net_ring`` it is the ring name, for ``net_tap`` the TAP device to
    create. ``pool`` defaults to a pool over ``umem.region(region)``, shared by every port set
    up on the same region without an explicit pool.
    """

    name: str
    pmd: str
    ifname: str = ""
    qid: int = 0
    umem: Umem | None = None
    region: int = 0
    pool: Mempool | None = None
    # AF_XDP keys (ignored by the other drivers)
    skb_mode: bool = False
    busy_poll: bool = False
    busy_timeout: int = 0
    busy_budget: int = 0
    force_wakeup: bool = False
    xsk_pin_path: str | None = None
    xsk_map_fd: int | None = None
    uds_path: str | None = None  # device-plugin socket (unprivileged: the XSKMAP comes over it)
    rx_nb_desc: int = 0  # 0 = the driver's default
    tx_nb_desc: int = 0
    # net_af_xdp only: transmit through a second socket on this queue of the same netdev
    # (XskConfig.tx_qid; keeps TX off the RX path's buffer pool). None = the lport's queue.
    tx_qid: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                f"lport name must be a non-empty string, got {self.name!r}",
                fix='use the jsonc lport key, e.g. "eth0:0"',
            )
        if len(self.name) >= NAME_MAX_LEN:
            raise ConfigError(
                f"lport name {self.name!r} is longer than {NAME_MAX_LEN - 1} characters",
                fix="use a shorter lport name",
            )
        if not isinstance(self.pmd, str) or not self.pmd:
            raise ConfigError(
                f"lport {self.name!r}: pmd must be a non-empty string, got {self.pmd!r}",
                fix=f"use one of {', '.join(known_pmds())}",
            )
        if not self.ifname:
            self.ifname = self.name.split(":", 1)[0]
        for key in ("qid", "region", "rx_nb_desc", "tx_nb_desc", "busy_timeout", "busy_budget"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ConfigError(
                    f"lport {self.name!r}: {key} must be an integer >= 0, got {v!r}",
                    fix=f"set {key} to 0 or a positive integer",
                )
        if self.tx_qid is not None:
            v = self.tx_qid
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ConfigError(
                    f"lport {self.name!r}: tx_qid must be None or an integer >= 0, got {v!r}",
                    fix="set tx_qid to another queue of the netdev, or to None",
                )
            if v == self.qid:
                raise ConfigError(
                    f"lport {self.name!r}: tx_qid {v} is the lport's own qid",
                    fix="set tx_qid to another queue of the netdev, or to None",
                )
            if self.pmd_name != "net_af_xdp":
                raise ConfigError(
                    f"lport {self.name!r}: tx_qid is an AF_XDP option, but pmd is {self.pmd!r}",
                    fix='use pmd "net_af_xdp", or set tx_qid to None',
                )
            self.tx_qid = int(v)
        if self.umem is not None and not isinstance(self.umem, Umem):
            raise ConfigError(
                f"lport {self.name!r}: umem must be a cndp.mem.Umem, got {type(self.umem)}"
            )
        if self.pool is not None and not isinstance(self.pool, Mempool):
            raise ConfigError(
                f"lport {self.name!r}: pool must be a cndp.mem.Mempool, got {type(self.pool)}"
            )

    @property
    def pmd_name(self) -> str:
        return parse_pmd(self.pmd)[0]

    @property
    def pmd_opts(self) -> dict[str, str]:
        return parse_pmd(self.pmd)[1]

    def dump(self) -> str:
        """Text like CNDP's ``lport_cfg_dump``."""
        lines = [f"lport_cfg {self.name}:"]
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Umem):
                v = f"{v.name} (bufcnt {v.bufcnt}, bufsz {v.bufsz})"
            elif isinstance(v, Mempool):
                v = f"{v.name} ({v.avail}/{v.capacity} free)"
            lines.append(f"  {f.name:<13}: {v}")
        return "\n".join(lines)


def parse_pmd(pmd: str) -> tuple[str, dict[str, str]]:
    """``"name:k=v,k2=v2"`` -> (name, {k: v}). A bare option ``"x"`` maps to ``""``."""
    name, _, rest = pmd.partition(":")
    opts: dict[str, str] = {}
    if rest:
        for item in rest.split(","):
            item = item.strip()
            if not item:
                continue
            k, _, v = item.partition("=")
            opts[k.strip()] = v.strip()
    return name.strip(), opts


@dataclass(frozen=True)
class Offloads:
    """CNDP ``struct offloads``: checksum offloads enabled on the port."""

    rx_checksum_offload: bool = False
    tx_checksum_offload: bool = False


@dataclass(frozen=True)
class PortInfo:
    """CNDP ``struct pktdev_info`` plus what identifies the port."""

    lport: int
    name: str
    driver_name: str
    ifname: str
    if_index: int
    qid: int
    admin_state: bool
    mac: bytes
    mtu: int
    min_mtu: int
    max_mtu: int
    max_rx_pktlen: int
    rx_desc: int
    tx_desc: int
    rx_fd: int
    tx_fd: int
    socket_id: int


# --------------------------------------------------------------------------------------------
# helpers shared by the drivers


class ByteLog:
    """Byte counter for a data path: a burst's lengths are copied into a log (one slice
    assignment) and summed only when the log is full or the counter is read."""

    __slots__ = ("buf", "pos", "size", "sum")

    def __init__(self, size: int = 1 << 16) -> None:
        self.buf = np.zeros(size, np.uint32)
        self.size = size
        self.pos = 0
        self.sum = 0

    def add(self, lens: np.ndarray) -> None:
        k = len(lens)
        pos = self.pos
        if pos + k > self.size:
            self.flush()
            pos = 0
            if k > self.size:
                self.sum += int(lens.sum(dtype=np.uint64))
                return
        self.buf[pos : pos + k] = lens
        self.pos = pos + k

    def flush(self) -> None:
        if self.pos:
            self.sum += int(self.buf[: self.pos].sum(dtype=np.uint64))
            self.pos = 0

    def total(self) -> int:
        self.flush()
        return self.sum

    def reset(self) -> None:
        self.pos = 0
        self.sum = 0


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, os.CLONE_NEWNET)
        return
    from pyroute2 import netns as _pnetns  # setns(2) on an fd; creates nothing

    _pnetns.setns(fd, flags=0)


class NetnsRef:
    """The network namespace a port was created in (an fd of it), to run control calls
    there from any thread."""

    _SELF = "/proc/thread-self/ns/net"

    def __init__(self) -> None:
        self.fd = os.open(self._SELF, os.O_RDONLY | os.O_CLOEXEC)
        self.ino = os.fstat(self.fd).st_ino

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        if self.fd < 0 or os.stat(self._SELF).st_ino == self.ino:
            yield
            return
        saved = os.open(self._SELF, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(self.fd)
            except OSError as e:
                raise NetdevError(
                    f"cannot enter the port's network namespace: {os.strerror(e.errno or 1)}",
                    errno=e.errno,
                    fix="needs CAP_SYS_ADMIN, or call from the port's namespace",
                ) from None
            yield
        finally:
            try:
                _setns(saved)
            finally:
                os.close(saved)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def stable_mac(name: str) -> bytes:
    """A locally administered unicast MAC derived from a name (for ports with no netdev)."""
    h = zlib.crc32(name.encode())
    return bytes((0x02, 0x00)) + h.to_bytes(4, "big")


def numa_node(ifname: str) -> int:
    """NUMA node of a netdev's device (0 when unknown, e.g. virtual devices)."""
    try:
        with open(f"/sys/class/net/{ifname}/device/numa_node") as f:
            v = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    return max(v, 0)


# Default pools: one per (UMEM, region), shared by every port set up on that region without an
# explicit pool, so two such ports never hand out the same frame.
_default_pools: dict[tuple[int, int], list[Any]] = {}


def _acquire_default_pool(umem: Umem, region: int, name: str) -> Mempool:
    key = (id(umem), region)
    ent = _default_pools.get(key)
    if ent is not None and ent[0] is umem:
        ent[2] += 1
        return ent[1]
    pool = Mempool.for_region(umem, region, name=name)
    _default_pools[key] = [umem, pool, 1]
    return pool


def _release_default_pool(umem: Umem, region: int, pool: Mempool) -> bool:
    """Drop one user; True when it was the last (the pool is then reset: every frame free)."""
    key = (id(umem), region)
    ent = _default_pools.get(key)
    if ent is None or ent[1] is not pool:
        return False
    ent[2] -= 1
    if ent[2] > 0:
        return False
    del _default_pools[key]
    pool.reset()
    return True


# --------------------------------------------------------------------------------------------
# the port interface


def _admin_down(pv: Any = None, n: int | None = None) -> int:
    return PKTDEV_ADMIN_STATE_DOWN


class Port:
    """One lport. Drivers subclass it and implement ``_rx``/``_tx`` and the hooks below."""

    pmd_name: ClassVar[str] = ""
    needs_netdev: ClassVar[bool] = False  # control calls go to a kernel netdev
    needs_umem: ClassVar[bool] = True
    allowed_opts: ClassVar[frozenset[str]] = frozenset()
    default_mtu: ClassVar[int] = 1500
    # counters this driver keeps (besides ibytes/obytes, which use ByteLogs)
    counters: ClassVar[tuple[str, ...]] = ("ipackets", "opackets")

    rx_burst: Callable[..., int]
    tx_burst: Callable[..., int]

    def __init__(self, lport: int, cfg: PortConfig) -> None:
        self.lport = lport
        self.cfg = cfg
        self.name = cfg.name
        self.ifname = cfg.ifname
        self.qid = int(cfg.qid)
        self.umem = cfg.umem
        self.opts = cfg.pmd_opts
        self.closed = False
        self._admin_up = False
        self._default_pool = False
        self._promisc_saved: bool | None = None
        self._mtu = self.default_mtu
        self._ns: NetnsRef | None = None
        self.ibytes = ByteLog()
        self.obytes = ByteLog()
        self._zero_counters()
        bad = set(self.opts) - self.allowed_opts
        if bad:
            allowed = ", ".join(sorted(self.allowed_opts)) or "none"
            raise ConfigError(
                f"lport {self.name!r}: {self.pmd_name} does not know option(s) "
                f"{', '.join(sorted(bad))} (known: {allowed})",
                fix=f'write the pmd as "{self.pmd_name}" or "{self.pmd_name}:key=value"',
            )
        if self.needs_umem and self.umem is None:
            raise ConfigError(
                f"lport {self.name!r}: {self.pmd_name} needs a umem",
                fix='give the lport a umem (jsonc lport key "umem")',
            )
        self.rx_burst = _admin_down
        self.tx_burst = _admin_down
        if self.umem is not None:
            self.umem.region(cfg.region)  # validates the index
        if self.needs_netdev:
            self._ns = NetnsRef()
        # last: from here on close() must run to give the default pool back
        self.pool: Mempool | None = cfg.pool
        if self.pool is None and self.umem is not None:
            self.pool = _acquire_default_pool(
                self.umem, cfg.region, f"{self.umem.name}.r{cfg.region}"
            )
            self._default_pool = True

    # -- lifecycle (driver hooks) ------------------------------------------------------------
    def _open(self) -> None:
        """Create the device side of the port (sockets, rings, TAP...)."""

    def _close(self) -> None:
        """Release what ``_open`` created and give frames back to the pool."""

    def _rx(self, pv: Any, n: int | None = None) -> int:
        raise NotImplementedError

    def _tx(self, pv: Any, n: int | None = None) -> int:
        raise NotImplementedError

    def _bind_burst(self) -> None:
        """Point rx_burst/tx_burst at the driver's functions (admin up)."""
        self.rx_burst = self._rx
        self.tx_burst = self._tx

    # -- admin state -------------------------------------------------------------------------
    @property
    def admin_state(self) -> bool:
        return self._admin_up

    def set_admin_state(self, up: bool) -> None:
        """Admin up/down (software only, like CNDP: the netdev is not touched). While down
        rx_burst and tx_burst return PKTDEV_ADMIN_STATE_DOWN."""
        self._check_open()
        self._admin_up = bool(up)
        if self._admin_up:
            self._bind_burst()
        else:
            self.rx_burst = _admin_down
            self.tx_burst = _admin_down

    def start(self) -> None:
        self.set_admin_state(True)

    def stop(self) -> None:
        self.set_admin_state(False)

    # -- frames ------------------------------------------------------------------------------
    def buf_alloc(self, pv: Any, n: int) -> int:
        """Append up to ``n`` fresh frames from the port's pool to ``pv`` (pktdev_buf_alloc)."""
        if self.pool is None:
            return 0
        return pv.alloc_from(self.pool, n)

    def buf_free(self, addrs: np.ndarray) -> None:
        """Give frames (any offset inside each) back to the port's pool."""
        if self.pool is None:
            raise PortError(f"lport {self.name!r} has no pool", errno=_errno.ENOTSUP)
        if len(addrs):
            self.pool.put_bulk(addrs)

    # -- netdev control ----------------------------------------------------------------------
    @contextlib.contextmanager
    def in_netns(self) -> Iterator[None]:
        """Run the body in the port's network namespace (no-op when already there)."""
        if self._ns is None:
            yield
        else:
            with self._ns.enter():
                yield

    def _unsupported(self, what: str) -> PortError:
        return PortError(
            f"lport {self.name!r} ({self.pmd_name}) does not support {what}: it has no netdev",
            errno=_errno.ENOTSUP,
        )

    @property
    def mac(self) -> bytes:
        if self.needs_netdev:
            with self.in_netns():
                return netdev.get_mac(self.ifname)
        return stable_mac(self.ifname)

    @property
    def mtu(self) -> int:
        if self.needs_netdev:
            with self.in_netns():
                return netdev.get_mtu(self.ifname)
        return self._mtu

    def max_frame(self) -> int:
        """Largest frame (Ethernet header included) the port can receive into a UMEM frame."""
        if self.umem is None:
            return 0xFFFF
        return self.umem.bufsz - XDP_PKT_HEADROOM

    def set_mtu(self, mtu: int) -> None:
        if isinstance(mtu, bool) or not isinstance(mtu, (int, np.integer)) or mtu < MIN_MTU:
            raise ConfigError(f"lport {self.name!r}: MTU must be an integer >= {MIN_MTU}")
        cap = self.max_frame() - ETHER_HDR_LEN - VLAN_HLEN
        if self._mtu_limited() and mtu > cap:
            raise ConfigError(
                f"lport {self.name!r}: MTU {mtu} does not fit the UMEM frames "
                f"(bufsz {self.umem.bufsz if self.umem else 0} - {XDP_PKT_HEADROOM} headroom "
                f"leaves room for MTU {cap})",
                fix="use a larger bufsz (4096) or a smaller MTU",
            )
        if self.needs_netdev:
            with self.in_netns():
                netdev.set_mtu(self.ifname, int(mtu))
        else:
            self._mtu = int(mtu)

    def _mtu_limited(self) -> bool:
        """Whether received frames are copied into UMEM frames (so the MTU is bounded)."""
        return False

    def link_up(self) -> bool:
        """Link (carrier) state; ports with no netdev are up while open."""
        if self.needs_netdev:
            with self.in_netns():
                return netdev.has_carrier(self.ifname)
        return not self.closed

    def promiscuous(self, on: bool = True) -> None:
        """Promiscuous mode on the netdev (restored to its old state by close()). Ports with
        no netdev raise PortError(ENOTSUP), as CNDP's pktdev test expects."""
        if not self.needs_netdev:
            raise self._unsupported("promiscuous mode")
        self._check_open()
        with self.in_netns():
            if self._promisc_saved is None:
                self._promisc_saved = netdev.is_promisc(self.ifname)
            netdev.set_promisc(self.ifname, bool(on))

    def is_promiscuous(self) -> bool:
        if not self.needs_netdev:
            return False
        with self.in_netns():
            return netdev.is_promisc(self.ifname)

    def offloads(self) -> Offloads:
        return Offloads()

    @property
    def if_index(self) -> int:
        if not self.needs_netdev:
            return 0
        with self.in_netns():
            try:
                return netdev.ifindex(self.ifname)
            except NetdevError:
                return 0

    @property
    def socket_id(self) -> int:
        return numa_node(self.ifname) if self.needs_netdev else 0

    # -- stats -------------------------------------------------------------------------------
    def _zero_counters(self) -> None:
        for k in self.counters:
            setattr(self, "st_" + k, 0)
        self.ibytes.reset()
        self.obytes.reset()

    def stats(self) -> dict[str, int]:
        """CNDP lport_stats keys (all of them; what a driver does not count stays 0)."""
        out = dict.fromkeys(STAT_KEYS, 0)
        for k in self.counters:
            out[k] = getattr(self, "st_" + k)
        out["ibytes"] = self.ibytes.total()
        out["obytes"] = self.obytes.total()
        self._more_stats(out)
        return out

    def _more_stats(self, out: dict[str, int]) -> None:
        """Driver hook: add kernel counters etc."""

    def reset_stats(self) -> None:
        self._zero_counters()

    # -- misc --------------------------------------------------------------------------------
    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until everything ``tx_burst`` accepted has left the port (True), or until
        ``timeout`` seconds passed (False). Drivers that send synchronously return at once."""
        return True

    def fileno(self) -> int | None:
        """An fd that polls readable when packets wait (for epoll idle waiting), or None."""
        return None

    def rx_desc(self) -> int:
        return self.cfg.rx_nb_desc

    def tx_desc(self) -> int:
        return self.cfg.tx_nb_desc

    def info(self) -> PortInfo:
        self._check_open()
        fd = self.fileno()
        mtu = self.mtu
        return PortInfo(
            lport=self.lport,
            name=self.name,
            driver_name=self.pmd_name,
            ifname=self.ifname,
            if_index=self.if_index,
            qid=self.qid,
            admin_state=self._admin_up,
            mac=self.mac,
            mtu=mtu,
            min_mtu=MIN_MTU,
            max_mtu=self._max_mtu(),
            max_rx_pktlen=self.max_frame(),
            rx_desc=self.rx_desc(),
            tx_desc=self.tx_desc(),
            rx_fd=-1 if fd is None else fd,
            tx_fd=-1 if fd is None else fd,
            socket_id=self.socket_id,
        )

    def _max_mtu(self) -> int:
        if self._mtu_limited():
            return self.max_frame() - ETHER_HDR_LEN - VLAN_HLEN
        return 0xFFFF

    def _check_open(self) -> None:
        if self.closed:
            raise PortError(f"lport {self.name!r} is closed", errno=_errno.ENODEV)

    def close(self) -> None:
        """Stop the port, release the device and return frames to the pool. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._admin_up = False
        self.rx_burst = _admin_down
        self.tx_burst = _admin_down
        try:
            self._close()
        finally:
            if self._promisc_saved is not None:
                with contextlib.suppress(CndpError, OSError), self.in_netns():
                    netdev.set_promisc(self.ifname, self._promisc_saved)
            if self._default_pool and self.umem is not None and self.pool is not None:
                _release_default_pool(self.umem, self.cfg.region, self.pool)
            if self._ns is not None:
                self._ns.close()
            _unregister(self)

    def __enter__(self) -> Port:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("up" if self._admin_up else "down")
        return f"<{type(self).__name__} lport {self.lport} {self.name!r} {self.ifname!r} {state}>"


# --------------------------------------------------------------------------------------------
# registry

_drivers: dict[str, type[Port]] = {}
_ports: list[Port | None] = [None] * MAX_ETHPORTS
_lock = threading.RLock()


def register_driver(cls: type[Port]) -> type[Port]:
    """Class decorator: make a driver selectable by its ``pmd_name``."""
    _drivers[cls.pmd_name] = cls
    return cls


def _load_drivers() -> None:
    # The drivers register themselves on import; importing here keeps `port` importable alone.
    from . import af_packet, af_xdp, null, ring, tap  # noqa: F401


def known_pmds() -> list[str]:
    _load_drivers()
    return sorted(_drivers)


def port_setup(cfg: PortConfig) -> Port:
    """Create the lport described by ``cfg``, give it an lport id and start it.

    Raises ConfigError for an unknown PMD (listing the known ones) or a bad configuration,
    PortError(ENOSPC) when all MAX_ETHPORTS ids are in use, and the driver's errors
    (NetdevError for a missing netdev, XskError, PrivilegeError...) otherwise.
    """
    if not isinstance(cfg, PortConfig):
        raise ConfigError(f"port_setup needs a PortConfig, got {type(cfg).__name__}")
    _load_drivers()
    pmd = cfg.pmd_name
    cls = _drivers.get(pmd)
    if cls is None:
        raise ConfigError(
            f"lport {cfg.name!r}: unknown PMD {pmd!r}",
            fix=f"use one of {', '.join(sorted(_drivers))}",
        )
    with _lock:
        for p in _ports:
            if p is not None and p.name == cfg.name:
                raise ConfigError(
                    f"an lport named {cfg.name!r} already exists (lport {p.lport})",
                    fix="give every lport a unique name, or close the old one first",
                )
        try:
            lport = _ports.index(None)
        except ValueError:
            raise PortError(
                f"cannot set up lport {cfg.name!r}: all {MAX_ETHPORTS} lport ids are in use",
                errno=_errno.ENOSPC,
                fix="close ports you no longer need",
            ) from None
        port = cls(lport, cfg)
        try:
            port._open()
        except BaseException:
            port.close()
            raise
        _ports[lport] = port
    port.start()
    log.info("lport %d %r: %s on %r up", lport, cfg.name, pmd, cfg.ifname)
    return port


def _unregister(port: Port) -> None:
    with _lock:
        if 0 <= port.lport < MAX_ETHPORTS and _ports[port.lport] is port:
            _ports[port.lport] = None


def _check_id(lport: int) -> None:
    if isinstance(lport, bool) or not isinstance(lport, (int, np.integer)) or lport < 0:
        raise PortError(f"{lport!r} is not an lport id", errno=_errno.EINVAL)
    if lport >= MAX_ETHPORTS:
        raise PortError(
            f"lport {lport} is beyond the maximum ({MAX_ETHPORTS - 1})", errno=_errno.ENODEV
        )


def get_port(lport: int) -> Port:
    """The open port with id ``lport``: PortError ENODEV beyond the maximum, ENOTSUP for an
    unused id (pktdev_info_get's codes)."""
    _check_id(lport)
    p = _ports[int(lport)]
    if p is None:
        raise PortError(f"no lport with id {lport}", errno=_errno.ENOTSUP)
    return p


def info(lport: int) -> PortInfo:
    """pktdev_info_get: PortInfo, or PortError ENOTSUP (unused id) / ENODEV (beyond max)."""
    return get_port(lport).info()


def is_valid_port(lport: int) -> bool:
    try:
        get_port(lport)
    except PortError:
        return False
    return True


def port_count() -> int:
    return sum(p is not None for p in _ports)


def ports() -> list[Port]:
    """Open ports in lport id order."""
    return [p for p in _ports if p is not None]


def port_name(lport: int) -> str | None:
    """Name of lport ``lport``, or None (pktdev_port_name)."""
    try:
        return get_port(lport).name
    except PortError:
        return None


def get_port_by_name(name: str) -> int:
    """lport id of the port named ``name``; PortError ENODEV when there is none."""
    for p in _ports:
        if p is not None and p.name == name:
            return p.lport
    raise PortError(f"no lport named {name!r}", errno=_errno.ENODEV)


def close_all() -> None:
    """Close every open port (pktdev_close_all); the first error is raised after all tried."""
    first: BaseException | None = None
    for p in ports():
        try:
            p.close()
        except Exception as e:
            first = first or e
    if first is not None:
        raise first
