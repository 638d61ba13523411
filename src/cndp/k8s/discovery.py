"""Which netdevs the device plugin offers, and whether they are healthy.

- :func:`scan` lists the netdevs of a network namespace (rtnetlink for names, MACs, kinds,
  masters, parents and addresses; ETHTOOL_GDRVINFO for the driver and PCI address), as
  :class:`Netdev` records.
- :func:`select` is pure: given the config and the scan, it fills each pool the way the AF_XDP
  plugin does (explicit devices by name, MAC or PCI; then every netdev of each listed driver
  up to ``primary``, minus ``excludeDevices`` and, with ``excludeAddressed``, those with an
  address; a node section replaces the pool's lists on that node; a netdev joins the first
  pool that takes it). Never offered: names starting with eno, eth, lo, docker, flannel or
  cni; bridges and bonds and their ports; and, unless ``kindCluster``, anything virtual
  (no parent device: veth, dummy, ...).
- :func:`is_healthy` and :class:`LinkMonitor`: a device is healthy while it exists and is
  administratively up; the monitor listens for rtnetlink link events and calls back.
- :func:`netns` runs a block in another network namespace (the calling thread only), so the
  plugin can manage the netdevs of a kind node or a test namespace from outside it.

Per-device loops here are control-path code (a few devices, at start and on link events).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import ipaddress
import logging
import os
import select as _select
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import CndpError, ConfigError, NetdevError
from ..sys import netdev as nd
from .dp_config import DeviceSel, DpConfig, PoolConfig

log = logging.getLogger("cndp.k8s.discovery")

PROHIBITED_PREFIXES = ("eno", "eth", "lo", "docker", "flannel", "cni")
MASTER_KINDS = frozenset({"bridge", "bond", "team", "openvswitch"})
RTMGRP_LINK = 1


@dataclass(frozen=True)
class Netdev:
    name: str
    ifindex: int
    mac: str = ""  # lower case, colon separated
    driver: str = ""  # from ethtool; "" when the netdev has no driver info
    pci: str = ""  # ethtool bus_info when it is a PCI address
    kind: str = ""  # rtnetlink link kind ("veth", "bridge", ...); "" for a NIC
    master: int = 0  # ifindex of its bridge/bond, 0 when none
    physical: bool = False  # has a parent device (a NIC, not a software netdev)
    addressed: bool = False  # has an IPv4 or a non-link-local IPv6 address
    up: bool = False
    numa_node: int = -1


# ---------------------------------------------------------------------------------------------
# namespaces


def _ns_path(ns: str) -> str:
    return ns if "/" in ns else os.path.join("/var/run/netns", ns)


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, os.CLONE_NEWNET)
    else:
        from pyroute2 import netns as pnetns

        pnetns.setns(fd, flags=0)  # an int fd: a plain setns(fd, CLONE_NEWNET)


@contextlib.contextmanager
def netns(ns: str | None) -> Iterator[None]:
    """Run the body with the calling thread in network namespace ``ns`` (a name under
    /var/run/netns or a path); ``None``: stay where we are."""
    if ns is None:
        yield
        return
    try:
        target = os.open(_ns_path(ns), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetdevError(
            f"network namespace {ns!r}: {e.strerror}", errno=e.errno, fix="check `ip netns list`"
        ) from None
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as e:
            raise NetdevError(
                f"cannot enter network namespace {ns!r}: {e.strerror}",
                errno=e.errno,
                fix="needs CAP_SYS_ADMIN",
            ) from None
        yield
    finally:
        os.close(target)
        try:
            _setns(saved)
        finally:
            os.close(saved)


# ---------------------------------------------------------------------------------------------
# scanning


def _numa_node(pci: str) -> int:
    try:
        with open(f"/sys/bus/pci/devices/{pci}/numa_node") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return -1


def _addressed(ipr: IPRoute) -> set[int]:
    """ifindexes with an IPv4 address or an IPv6 address that is not link-local."""
    out: set[int] = set()
    for a in ipr.get_addr():
        addr = a.get("IFA_ADDRESS") or a.get("IFA_LOCAL")
        if not addr:
            continue
        with contextlib.suppress(ValueError):
            if not ipaddress.ip_address(addr).is_link_local:
                out.add(a["index"])
    return out


def scan() -> dict[str, Netdev]:
    """Every netdev of the calling thread's network namespace, by name."""
    out: dict[str, Netdev] = {}
    try:
        with IPRoute() as ipr:
            links = ipr.get_links()
            addressed = _addressed(ipr)
    except (OSError, NetlinkError) as e:
        raise NetdevError(f"listing netdevs over rtnetlink: {e}") from None
    for link in links:
        name = link.get("IFLA_IFNAME") or ""
        if not name:
            continue
        info = link.get("IFLA_LINKINFO")
        kind = (info.get("IFLA_INFO_KIND") if info is not None else None) or ""
        try:
            driver, bus = nd.driver_info(name)
        except CndpError:  # no ethtool driver info (some software netdevs) or gone meanwhile
            driver, bus = "", ""
        pci = bus.lower() if _looks_pci(bus) else ""
        physical = bool(link.get("IFLA_PARENT_DEV_NAME")) or bool(pci)
        out[name] = Netdev(
            name=name,
            ifindex=link["index"],
            mac=(link.get("IFLA_ADDRESS") or "").lower(),
            driver=driver,
            pci=pci,
            kind=kind,
            master=int(link.get("IFLA_MASTER") or 0),
            physical=physical and not kind,
            addressed=link["index"] in addressed,
            up=bool(link["flags"] & nd.IFF_UP),
            numa_node=_numa_node(pci) if pci else -1,
        )
    return out


def _looks_pci(bus: str) -> bool:
    parts = bus.split(":")
    return len(parts) == 3 and "." in parts[2]


# ---------------------------------------------------------------------------------------------
# selection


def ineligible(dev: Netdev, kind_cluster: bool) -> str:
    """Why ``dev`` can never join a pool ("" when it can)."""
    if dev.name.startswith(PROHIBITED_PREFIXES):
        return "its name starts with " + "/".join(PROHIBITED_PREFIXES) + " (never offered)"
    if dev.kind in MASTER_KINDS:
        return f"it is a {dev.kind}"
    if dev.master:
        return "it is a port of a bridge or bond"
    if not dev.physical and not kind_cluster:
        return 'it is virtual (set "kindCluster": true to offer virtual netdevs)'
    return ""


def resolve(sel: DeviceSel, netdevs: Mapping[str, Netdev]) -> Netdev | None:
    if sel.name:
        return netdevs.get(sel.name)
    for d in netdevs.values():
        if (sel.mac and d.mac == sel.mac) or (sel.pci and d.pci == sel.pci):
            return d
    return None


@dataclass(frozen=True)
class Selection:
    pools: dict[str, tuple[str, ...]]  # pool name -> netdev names, in selection order
    notes: tuple[str, ...]  # why configured devices were left out


def select(cfg: DpConfig, netdevs: Mapping[str, Netdev], hostname: str) -> Selection:
    taken: dict[str, str] = {}  # netdev -> pool
    pools: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    for pool in cfg.pools:
        chosen = _select_pool(pool, cfg.kind_cluster, netdevs, hostname, taken, notes)
        for n in chosen:
            taken[n] = pool.name
        pools[pool.name] = tuple(chosen)
    return Selection(pools, tuple(notes))


def _select_pool(
    pool: PoolConfig,
    kind_cluster: bool,
    netdevs: Mapping[str, Netdev],
    hostname: str,
    taken: Mapping[str, str],
    notes: list[str],
) -> list[str]:
    drivers, devices = pool.for_node(hostname)
    chosen: list[str] = []

    def usable(dev: Netdev, what: str) -> bool:
        why = ineligible(dev, kind_cluster)
        if not why and dev.name in taken:
            why = f"pool {taken[dev.name]!r} already holds it"
        if why:
            notes.append(f"pool {pool.name}: {what} {dev.name} left out: {why}")
        return not why

    for sel in devices:
        dev = resolve(sel, netdevs)
        if dev is None:
            notes.append(f"pool {pool.name}: device {sel} does not exist on this node")
        elif dev.name not in chosen and usable(dev, "device"):
            chosen.append(dev.name)
    for drv in drivers:
        excluded = {d.name for s in drv.exclude_devices if (d := resolve(s, netdevs))}
        count = 0
        for name in sorted(netdevs):
            dev = netdevs[name]
            if dev.driver != drv.name or name in chosen or name in excluded:
                continue
            if drv.exclude_addressed and dev.addressed:
                notes.append(f"pool {pool.name}: {name} left out: it has an address")
                continue
            if not usable(dev, f"{drv.name} netdev"):
                continue
            chosen.append(name)
            count += 1
            if drv.primary and count >= drv.primary:
                break
    return chosen


# ---------------------------------------------------------------------------------------------
# health


def is_healthy(name: str) -> bool:
    """The netdev exists (in the calling thread's namespace) and is administratively up."""
    try:
        return nd.is_up(name)
    except CndpError:
        return False


class LinkMonitor:
    """Calls ``on_change()`` (from its own thread, inside ``ns``) once at start, after every
    rtnetlink link event (a burst of events is one call), and every ``interval`` seconds as a
    safety net (netlink may drop events under load: ENOBUFS)."""

    def __init__(self, on_change: Callable[[], None], *, ns: str | None = None, interval=5.0):
        self.on_change = on_change
        self.ns = ns
        self.interval = interval
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="link-monitor", daemon=True)

    def start(self) -> LinkMonitor:
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            with netns(self.ns):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                try:
                    sock.bind((0, RTMGRP_LINK))
                    sock.setblocking(False)
                except OSError:
                    sock.close()
                    raise
                self._ready.set()
                try:
                    self._loop(sock)
                finally:
                    sock.close()
        except BaseException as e:  # reported by start(), or logged when it happens later
            if not self._ready.is_set():
                self._error = e
                self._ready.set()
            else:
                log.exception("link monitor failed")

    def _loop(self, sock: socket.socket) -> None:
        self._call()
        while not self._stop.is_set():
            r, _, _ = _select.select([sock, self._wake_r], [], [], self.interval)
            if self._stop.is_set():
                return
            if sock in r:
                while True:  # drain: one refresh per burst of events
                    try:
                        sock.recv(65536)
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno != _errno.ENOBUFS:  # overrun: we rescan anyway
                            raise
            self._call()

    def _call(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("refreshing device health failed")

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1


def check_pool_modes(cfg: DpConfig) -> None:
    """Refuse what we cannot do: CDQ subfunctions exist only on ice NICs with their
    devlink port API, which pycndp does not drive."""
    for i, p in enumerate(cfg.pools):
        if p.mode == "cdq":
            raise ConfigError(
                f"pools[{i}].mode: pool {p.name!r} asks for mode cdq (ice subfunctions), which "
                "pycndp's device plugin does not support",
                fix='use "mode": "primary"',
            )
