"""Test hosts: network namespaces joined by veth pairs, built with pyroute2.

Every object a run creates carries a short per-process prefix (:func:`run_prefix`), so runs
never collide and :func:`cleanup_prefix` / :func:`leftovers` can find everything a run made.

Naming for a pair with prefix ``P``: namespaces ``P-a`` / ``P-b``, links ``Pa0`` / ``Pb0``.

Addresses are restricted to 198.18.0.0/15 and fd00:198:18::/48 (the project's network rule);
anything else is refused with :class:`~cndp.errors.ConfigError` before anything is created.

Namespace switching (:func:`in_netns`, :meth:`Host.enter`) is per *thread*: setns(2) with
CLONE_NEWNET moves only the calling thread. That is why the saved namespace is read from
``/proc/thread-self/ns/net`` and not ``/proc/self/ns/net`` (the latter is the main thread's
namespace, which is wrong when ``enter()`` is used from a worker thread).

sysfs caveat: after setns, ``/sys/class/net`` still shows the namespace sysfs was *mounted* in
(normally the root namespace). ``ip netns exec`` remounts /sys for the target namespace, so
sysfs reads/writes for a namespaced device go through :meth:`Host.run` (see
:meth:`Host.sysfs_read`, :func:`set_threaded_napi`).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import glob
import ipaddress
import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2 import netns as _pnetns
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import CndpError, ConfigError, NetdevError

__all__ = [
    "IPV4_ALLOWED",
    "IPV6_ALLOWED",
    "MAC_A",
    "MAC_B",
    "Host",
    "VethPair",
    "cleanup_prefix",
    "current_netns_inode",
    "in_netns",
    "leftovers",
    "make_veth_pair",
    "napi_thread_pids",
    "pin_pid",
    "run_prefix",
    "set_threaded_napi",
]

NETNS_DIR = "/var/run/netns"
PIN_DIRS = ("/sys/fs/bpf", "/run/cndp/bpf")
IFNAMSIZ = 16  # including the NUL: names are at most 15 characters

IPV4_ALLOWED = ipaddress.ip_network("198.18.0.0/15")
IPV6_ALLOWED = ipaddress.ip_network("fd00:198:18::/48")
ADDRESS_RULE = (
    "test hosts may only use IPv4 addresses from 198.18.0.0/15 and IPv6 addresses from "
    "fd00:198:18::/48"
)

# Locally administered (bit 1 of the first octet), unicast; c6:12 = 198.18. Deterministic so
# tests can assert on frame bytes.
MAC_A = "02:00:c6:12:00:01"
MAC_B = "02:00:c6:12:00:02"

IFA_F_NODAD = 0x02
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3

_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{3,}")

_lock = threading.Lock()
_run_prefix: str | None = None
_pair_counter = itertools.count()


# --------------------------------------------------------------------------------------------
# prefixes


def run_prefix() -> str:
    """The prefix of this process's run: ``"cn"`` + 4 hex digits, stable for the process.

    A fresh prefix is drawn until nothing on the machine already uses it.
    """
    global _run_prefix
    with _lock:
        if _run_prefix is None:
            for _ in range(64):
                cand = "cn" + secrets.token_hex(2)
                if not _prefix_in_use(cand):
                    _run_prefix = cand
                    break
            else:  # pragma: no cover - 64 collisions in a row means something is very wrong
                raise CndpError(
                    "could not find an unused test prefix",
                    fix="run cleanup_prefix('cn') after checking `ip netns list`",
                )
        return _run_prefix


def _prefix_in_use(prefix: str) -> bool:
    if any(n.startswith(prefix) for n in _pnetns.listnetns()):
        return True
    try:
        names = [n for _, n in socket.if_nameindex()]
    except OSError:
        names = []
    if any(n.startswith(prefix) for n in names):
        return True
    return any(glob.glob(os.path.join(d, glob.escape(prefix)) + "*") for d in PIN_DIRS)


def _next_pair_prefix() -> str:
    """A pair prefix under the run prefix: run prefix + 2 hex digits (fixed width, so one
    pair's prefix is never a prefix of another's)."""
    base = run_prefix()
    existing = set(_pnetns.listnetns())
    for _ in range(256):
        cand = f"{base}{next(_pair_counter) % 256:02x}"
        if f"{cand}-a" not in existing and f"{cand}-b" not in existing:
            return cand
    raise CndpError(
        f"all 256 pair prefixes under {base!r} are in use", fix="close VethPairs you no longer need"
    )


def _check_prefix(prefix: str) -> None:
    # A short or empty prefix would make cleanup_prefix() match unrelated things (eth0...).
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"test prefix {prefix!r} is not allowed",
            fix="use at least 4 characters of [A-Za-z0-9_.-], e.g. run_prefix()",
        )


# --------------------------------------------------------------------------------------------
# switching namespaces


def _ns_path(ns: str) -> str:
    return ns if "/" in ns else os.path.join(NETNS_DIR, ns)


def _setns_fd(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, os.CLONE_NEWNET)
        return
    # Python 3.11 has no os.setns. pyroute2.netns.setns with an int fd is a plain
    # setns(fd, CLONE_NEWNET); it never creates anything (only names with O_CREAT do).
    _pnetns.setns(fd, flags=0)


@contextlib.contextmanager
def in_netns(ns_name: str) -> Iterator[None]:
    """Run the body with the *calling thread* in network namespace ``ns_name``.

    ``ns_name`` is a name under /var/run/netns or a path (e.g. ``/proc/1/ns/net``). The
    original namespace is saved as an fd of /proc/thread-self/ns/net and restored on exit,
    also when the body raises. Other threads are not affected.
    """
    path = _ns_path(ns_name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetdevError(
            f"network namespace {ns_name!r} does not exist",
            errno=_errno.ENOENT,
            fix="check `ip netns list`",
        ) from None
    try:
        saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(target)
        raise
    try:
        try:
            _setns_fd(target)
        except OSError as e:
            code = e.errno or _errno.EPERM
            raise NetdevError(
                f"cannot enter network namespace {ns_name!r}: {os.strerror(code)}",
                errno=code,
                fix="needs CAP_SYS_ADMIN (run as root)",
            ) from None
        finally:
            os.close(target)
        yield
    finally:
        try:
            _setns_fd(saved)
        finally:
            os.close(saved)


def current_netns_inode() -> int:
    """Inode of the calling thread's network namespace (compare with os.stat of a ns path)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


# --------------------------------------------------------------------------------------------
# hosts


def _netns_exec(ns: str, cmd: list[str]) -> list[str]:
    # `ip netns exec` also gives the command a /sys mounted for the namespace, which setns()
    # alone cannot do from Python 3.11 (no os.unshare); pyroute2 0.9 has no process spawner.
    return ["ip", "netns", "exec", ns, *cmd]


@dataclass
class Host:
    """One end of a veth pair, living in its own network namespace."""

    ns: str
    ifname: str
    ifindex: int
    mac: str
    ipv4: str
    ipv6: str
    prefixlen4: int = 24
    prefixlen6: int = 64
    _procs: list[subprocess.Popen] = field(default_factory=list, repr=False, compare=False)

    @property
    def mac_bytes(self) -> bytes:
        return bytes.fromhex(self.mac.replace(":", ""))

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        """Run ``cmd`` inside the namespace (``ip netns exec``). Output is captured as text
        unless told otherwise; a non-zero exit raises only with ``check=True``."""
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(_netns_exec(self.ns, list(cmd)), **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        """Start ``cmd`` inside the namespace. The process is remembered and killed by
        :meth:`stop_processes` / :meth:`VethPair.close` if it is still running."""
        proc = subprocess.Popen(_netns_exec(self.ns, list(cmd)), **kw)
        self._procs.append(proc)
        return proc

    def stop_processes(self, timeout: float = 2.0) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        self._procs.clear()

    def enter(self) -> contextlib.AbstractContextManager[None]:
        """Context manager: the calling thread is inside this host's namespace in the body."""
        return in_netns(self.ns)

    def sysfs_read(self, rel: str) -> str:
        """``/sys/class/net/<ifname>/<rel>`` as seen from inside the namespace."""
        r = self.run(["cat", f"/sys/class/net/{self.ifname}/{rel}"])
        if r.returncode != 0:
            raise NetdevError(
                f"cannot read sysfs {rel!r} of {self.ifname} in {self.ns}: {r.stderr.strip()}"
            )
        return r.stdout.strip()

    def sysfs_write(self, rel: str, value: str | int) -> None:
        path = f"/sys/class/net/{self.ifname}/{rel}"
        r = self.run(["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", str(value), path])
        if r.returncode != 0:
            raise NetdevError(
                f"cannot write {value!r} to sysfs {rel!r} of {self.ifname} in "
                f"{self.ns}: {r.stderr.strip()}"
            )

    def sysfs_listdir(self, rel: str) -> list[str]:
        r = self.run(["ls", "-1", f"/sys/class/net/{self.ifname}/{rel}"])
        if r.returncode != 0:
            raise NetdevError(
                f"cannot list sysfs {rel!r} of {self.ifname} in {self.ns}: {r.stderr.strip()}"
            )
        return sorted(r.stdout.split())


@dataclass
class VethPair:
    """Two hosts joined by one veth. ``close()`` (or leaving the ``with``) removes both
    namespaces, the veth and pins under the pair prefix."""

    a: Host
    b: Host
    prefix: str
    closed: bool = field(default=False, repr=False)

    @property
    def hosts(self) -> tuple[Host, Host]:
        return (self.a, self.b)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        for h in (self.a, self.b):
            try:
                h.stop_processes()
            except Exception as e:  # keep tearing down; report at the end
                errors.append(f"stopping processes in {h.ns}: {e}")
        for ns in (self.a.ns, self.b.ns):
            errors += _destroy_ns(ns)
        errors += _remove_pins(self.prefix)
        if errors:
            raise CndpError(
                "tearing down veth pair " + self.prefix + " failed: " + "; ".join(errors)
            )

    def __enter__(self) -> VethPair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# building


def _validate_addresses(
    ipv4: tuple[str, str], ipv6: tuple[str, str], prefixlen4: int, prefixlen6: int
) -> None:
    for a in ipv4:
        try:
            ip = ipaddress.IPv4Address(a)
        except ValueError:
            raise ConfigError(f"{a!r} is not an IPv4 address", fix=ADDRESS_RULE) from None
        if ip not in IPV4_ALLOWED:
            raise ConfigError(f"IPv4 address {a} is outside 198.18.0.0/15", fix=ADDRESS_RULE)
    for a in ipv6:
        try:
            ip6 = ipaddress.IPv6Address(a)
        except ValueError:
            raise ConfigError(f"{a!r} is not an IPv6 address", fix=ADDRESS_RULE) from None
        if ip6 not in IPV6_ALLOWED:
            raise ConfigError(f"IPv6 address {a} is outside fd00:198:18::/48", fix=ADDRESS_RULE)
    if ipv4[0] == ipv4[1] or ipaddress.ip_address(ipv6[0]) == ipaddress.ip_address(ipv6[1]):
        raise ConfigError("the two hosts need different addresses")
    # The on-link prefix must not reach beyond the allowed ranges either.
    if not 15 <= prefixlen4 <= 32:
        raise ConfigError(
            f"IPv4 prefix length {prefixlen4} reaches outside 198.18.0.0/15",
            fix="use 15..32 (24 is the default)",
        )
    if not 48 <= prefixlen6 <= 128:
        raise ConfigError(
            f"IPv6 prefix length {prefixlen6} reaches outside fd00:198:18::/48",
            fix="use 48..128 (64 is the default)",
        )


def _nl_error(what: str, e: Exception) -> NetdevError:
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    text = os.strerror(code) if isinstance(code, int) else str(e)
    return NetdevError(f"{what}: {text}", errno=code if isinstance(code, int) else None)


def _create_ns(name: str) -> None:
    if os.path.exists(_ns_path(name)):
        raise NetdevError(
            f"network namespace {name!r} already exists",
            errno=_errno.EEXIST,
            fix=f"remove it (`ip netns delete {name}`) or use another prefix",
        )
    _pnetns.create(name)
    if not os.path.exists(_ns_path(name)):
        raise NetdevError(f"creating network namespace {name!r} failed")


def _set_gro(host: Host, on: bool) -> None:
    """GRO on a veth also gives it NAPI instances (needed for native XDP delivery and for
    threaded NAPI). pyroute2's Ethtool works from inside the namespace; the ethtool CLI is
    the fallback should its feature tables not know the device."""
    try:
        from pyroute2.ethtool import Ethtool

        with host.enter(), Ethtool() as et:
            feats = et.get_features(host.ifname)
            feats.features["rx-gro"].enable = on
            et.set_features(host.ifname, feats)
        return
    except Exception:  # any failure of the pyroute2 path: try the CLI
        pass
    r = host.run(["ethtool", "-K", host.ifname, "gro", "on" if on else "off"])
    if r.returncode != 0:
        raise NetdevError(f"cannot set GRO on {host.ifname}: {r.stderr.strip()}")


def make_veth_pair(
    prefix: str | None = None,
    *,
    rxqueues: int = 1,
    txqueues: int = 1,
    mtu: int = 1500,
    ipv4: tuple[str, str] = ("198.18.0.1", "198.18.0.2"),
    ipv6: tuple[str, str] = ("fd00:198:18::1", "fd00:198:18::2"),
    prefixlen4: int = 24,
    prefixlen6: int = 64,
    gro: bool = False,
    macs: tuple[str, str] = (MAC_A, MAC_B),
    ready_timeout: float = 5.0,
) -> VethPair:
    """Two namespaces ``<prefix>-a``/``<prefix>-b`` joined by veth ``<prefix>a0``/``<prefix>b0``.

    Both ends get ``rxqueues``/``txqueues`` queues, ``mtu``, fixed MACs, IPv4 and IPv6
    (nodad, usable at once) addresses, and are up together with ``lo``. ``gro`` enables GRO on
    b. On any failure everything created so far is removed before the error propagates.

    Returns only once both ends are ready for traffic (see :func:`_wait_ready`), so the very
    first IPv6 packet is not lost.
    """
    if prefix is None:
        prefix = _next_pair_prefix()
    _check_prefix(prefix)
    ipv4 = tuple(str(a) for a in ipv4)  # type: ignore[assignment]
    ipv6 = tuple(str(a) for a in ipv6)  # type: ignore[assignment]
    _validate_addresses(ipv4, ipv6, prefixlen4, prefixlen6)
    if rxqueues < 1 or txqueues < 1:
        raise ConfigError(f"queue counts must be >= 1 (got rx={rxqueues}, tx={txqueues})")
    names = (f"{prefix}a0", f"{prefix}b0")
    if len(names[0]) >= IFNAMSIZ:
        raise ConfigError(
            f"prefix {prefix!r} makes interface name {names[0]!r} longer than 15 characters",
            fix="use a prefix of at most 13 characters",
        )
    nss = (f"{prefix}-a", f"{prefix}-b")

    created: list[str] = []
    try:
        for ns in nss:
            _create_ns(ns)
            created.append(ns)

        # Create the veth with each end directly in its namespace: nothing ever appears in the
        # caller's namespace, and IFLA_NUM_{RX,TX}_QUEUES are set on both ends at birth.
        with IPRoute() as ipr:
            try:
                ipr.link(
                    "add",
                    ifname=names[0],
                    kind="veth",
                    address=macs[0],
                    num_rx_queues=rxqueues,
                    num_tx_queues=txqueues,
                    net_ns_fd=nss[0],
                    peer={
                        "ifname": names[1],
                        "address": macs[1],
                        "num_rx_queues": rxqueues,
                        "num_tx_queues": txqueues,
                        "net_ns_fd": nss[1],
                    },
                )
            except NetlinkError as e:
                raise _nl_error(f"creating veth {names[0]}/{names[1]}", e) from None

        hosts = []
        for ns, ifname, mac, a4, a6 in zip(nss, names, macs, ipv4, ipv6, strict=True):
            with IPRoute(netns=ns, flags=0) as ipr:
                idx = ipr.link_lookup(ifname=ifname)
                if not idx:
                    raise NetdevError(f"veth end {ifname} did not appear in {ns}")
                idx = idx[0]
                step = ""
                try:
                    step = f"setting MTU {mtu} on {ifname}"
                    ipr.link("set", index=idx, mtu=mtu)
                    step = f"bringing lo up in {ns}"
                    (lo,) = ipr.link_lookup(ifname="lo")
                    ipr.link("set", index=lo, state="up")
                    step = f"adding {a4}/{prefixlen4} to {ifname}"
                    ipr.addr("add", index=idx, address=a4, prefixlen=prefixlen4)
                    step = f"adding {a6}/{prefixlen6} to {ifname}"
                    ipr.addr("add", index=idx, address=a6, prefixlen=prefixlen6, flags=IFA_F_NODAD)
                    step = f"bringing {ifname} up"
                    ipr.link("set", index=idx, state="up")
                except NetlinkError as e:
                    raise _nl_error(step, e) from None
            hosts.append(
                Host(
                    ns=ns,
                    ifname=ifname,
                    ifindex=idx,
                    mac=mac,
                    ipv4=a4,
                    ipv6=a6,
                    prefixlen4=prefixlen4,
                    prefixlen6=prefixlen6,
                )
            )
        for host in hosts:
            _wait_ready(host, timeout=ready_timeout)
        pair = VethPair(a=hosts[0], b=hosts[1], prefix=prefix)
        if gro:
            _set_gro(pair.b, True)
        return pair
    except BaseException:
        for ns in created:
            _destroy_ns(ns)
        raise


IF_READY = 0x80000000  # IFLA_INET6_FLAGS: addrconf has configured the device
RTN_MULTICAST = 5
RT_TABLE_LOCAL = 255


def _wait_ready(host: Host, timeout: float) -> None:
    """Wait until ``host``'s veth is operationally up and IPv6 is configured on it.

    Carrier on a veth goes through linkwatch, which batches events for up to a second; until
    it fires, addrconf has not added the ``multicast ff00::/8`` route to the local table, so
    a neighbour solicitation arriving then is dropped (Ip6InNoRoutes) and the first ping6
    waits for the 1 s ND retransmit (measured: 8 of 10 first pings with ``-W 1`` failed).
    We poll rtnetlink for: IFLA_OPERSTATE UP, IF_READY in IFLA_INET6_FLAGS, and that
    multicast route. On 6.18 the RTM_GETLINK itself makes the kernel process the device's
    pending linkwatch event, so this usually returns at once instead of after ~1 s.
    """
    deadline = time.monotonic() + timeout
    with IPRoute(netns=host.ns, flags=0) as ipr:
        while True:
            (link,) = ipr.link("get", index=host.ifindex)
            oper = link.get("IFLA_OPERSTATE")
            inet6_flags = 0
            spec = link.get("IFLA_AF_SPEC")
            if spec is not None:
                inet6 = spec.get("AF_INET6")
                if inet6 is not None:
                    inet6_flags = inet6.get("IFLA_INET6_FLAGS") or 0
            mroute = any(
                r.get("RTA_OIF") == host.ifindex and r["type"] == RTN_MULTICAST
                for r in ipr.route("dump", family=socket.AF_INET6, table=RT_TABLE_LOCAL)
            )
            if oper == "UP" and inet6_flags & IF_READY and mroute:
                return
            if time.monotonic() > deadline:
                raise NetdevError(
                    f"{host.ifname} in {host.ns} not ready after {timeout} s (operstate "
                    f"{oper}, inet6 flags {inet6_flags:#x}, multicast route {mroute})"
                )
            time.sleep(0.01)


# --------------------------------------------------------------------------------------------
# teardown


def _destroy_ns(name: str) -> list[str]:
    """Delete the links in namespace ``name``, then the namespace. Returns problems (never
    raises for "already gone")."""
    problems: list[str] = []
    if not os.path.exists(_ns_path(name)):
        return problems
    # Delete links explicitly: if something (an fd, a process) still holds the namespace
    # alive after it is unmounted, its veth would otherwise linger unseen.
    try:
        with IPRoute(netns=name, flags=0) as ipr:
            for link in ipr.get_links():
                kind = _link_kind(link)
                if kind is None:  # lo and other non-virtual devices go with the namespace
                    continue
                try:
                    ipr.link("del", index=link["index"])
                except NetlinkError as e:
                    if e.code not in (_errno.ENODEV, _errno.ENOENT):
                        problems.append(f"deleting {link.get('IFLA_IFNAME')} in {name}: {e}")
    except FileNotFoundError:
        return problems
    except (OSError, NetlinkError) as e:
        problems.append(f"listing links in {name}: {e}")
    try:
        _pnetns.remove(name)
    except FileNotFoundError:
        pass
    except OSError as e:
        problems.append(f"removing namespace {name}: {e}")
    return problems


def _link_kind(link) -> str | None:
    info = link.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def _xdp_state(link) -> tuple[str, int] | None:
    xdp = link.get("IFLA_XDP")
    if xdp is None:
        return None
    mode = xdp.get("IFLA_XDP_ATTACHED")
    if not mode:
        return None
    prog_id = (
        xdp.get("IFLA_XDP_PROG_ID")
        or xdp.get("IFLA_XDP_DRV_PROG_ID")
        or xdp.get("IFLA_XDP_SKB_PROG_ID")
        or xdp.get("IFLA_XDP_HW_PROG_ID")
        or 0
    )
    return (str(mode), int(prog_id))


def _remove_pins(prefix: str) -> list[str]:
    problems: list[str] = []
    for path in _pins(prefix):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            problems.append(f"removing pin {path}: {e}")
    return problems


def _pins(prefix: str) -> list[str]:
    found: list[str] = []
    for d in PIN_DIRS:
        found += sorted(glob.glob(os.path.join(d, glob.escape(prefix)) + "*"))
    return found


def cleanup_prefix(prefix: str) -> list[str]:
    """Remove every namespace, link (in the caller's namespace), XDP program on such links and
    bpffs pin whose name starts with ``prefix``. Idempotent; returns the problems it could not
    fix (already-gone objects are not problems). Physical NICs are never deleted."""
    _check_prefix(prefix)
    problems: list[str] = []
    for name in sorted(_pnetns.listnetns()):
        if name.startswith(prefix):
            problems += _destroy_ns(name)
    try:
        with IPRoute() as ipr:
            for link in ipr.get_links():
                ifname = link.get("IFLA_IFNAME") or ""
                if not ifname.startswith(prefix):
                    continue
                idx = link["index"]
                if _xdp_state(link) is not None:
                    for flag in (XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE):
                        # -1 detaches whatever runs in that mode; modes not in use say EINVAL
                        # or EOPNOTSUPP. bpf_link attachments refuse (EBUSY) but die with the
                        # link below.
                        with contextlib.suppress(NetlinkError):
                            ipr.link(
                                "set",
                                index=idx,
                                xdp={"attrs": [("IFLA_XDP_FD", -1), ("IFLA_XDP_FLAGS", flag)]},
                            )
                if _link_kind(link) is None:
                    problems.append(f"{ifname} is not a virtual link; not deleting it")
                    continue
                try:
                    ipr.link("del", index=idx)
                except NetlinkError as e:
                    if e.code not in (_errno.ENODEV, _errno.ENOENT):
                        problems.append(f"deleting link {ifname}: {e}")
    except (OSError, NetlinkError) as e:
        problems.append(f"listing links: {e}")
    problems += _remove_pins(prefix)
    return problems


def leftovers(prefix: str) -> list[str]:
    """Everything still present with ``prefix``: namespaces, links in the caller's namespace,
    XDP programs on them, pins. Empty when clean."""
    _check_prefix(prefix)
    found = [f"netns {n}" for n in sorted(_pnetns.listnetns()) if n.startswith(prefix)]
    try:
        with IPRoute() as ipr:
            for link in ipr.get_links():
                ifname = link.get("IFLA_IFNAME") or ""
                if not ifname.startswith(prefix):
                    continue
                found.append(
                    f"link {ifname} (index {link['index']}, kind {_link_kind(link) or 'none'})"
                )
                xdp = _xdp_state(link)
                if xdp is not None:
                    found.append(f"xdp program id {xdp[1]} ({xdp[0]}) on {ifname}")
    except (OSError, NetlinkError) as e:
        found.append(f"could not list links: {e}")
    found += [f"pin {p}" for p in _pins(prefix)]
    return found


# --------------------------------------------------------------------------------------------
# benchmark helpers


def set_threaded_napi(host: Host, enabled: bool) -> None:
    """Write /sys/class/net/<if>/threaded from inside the namespace (via ``ip netns exec``,
    which remounts /sys for that namespace; after a bare setns /sys is the root's view).

    On a veth, NAPI instances (and so threads) exist only while GRO is on or an XDP program
    is attached; without them the kernel refuses the write (EIO/EOPNOTSUPP on 6.18).
    """
    want = "1" if enabled else "0"
    try:
        host.sysfs_write("threaded", want)
    except NetdevError as e:
        raise NetdevError(
            f"cannot set threaded NAPI on {host.ifname} in {host.ns} ({e})",
            fix="a veth has NAPI only with GRO on or an XDP program attached: make the pair "
            "with gro=True or attach XDP first",
        ) from None
    got = host.sysfs_read("threaded")
    if got != want:
        raise NetdevError(f"threaded NAPI on {host.ifname} reads {got!r} after writing {want}")


def napi_thread_pids(host: Host) -> list[int]:
    """PIDs of the kernel threads ``napi/<ifname>-<napi id>`` serving ``host``'s device.

    Kernel thread names are cut to 15 characters (TASK_COMM_LEN), so for long interface names
    part of the napi id (or the dash) is lost; names under one prefix stay unambiguous
    because our interface names all have the same length.
    """
    want = f"napi/{host.ifname}-"[:15]
    pids: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as f:
                comm = f.read().rstrip("\n")
        except OSError:
            continue
        if comm.startswith(want):
            pids.append(int(entry.name))
    return sorted(pids)


def pin_pid(pid: int, cpu: int | Iterable[int]) -> None:
    """Pin ``pid`` (a process or a kernel thread such as a NAPI thread) to CPU(s) ``cpu``."""
    cpus = {cpu} if isinstance(cpu, int) else set(cpu)
    try:
        os.sched_setaffinity(pid, cpus)
    except ProcessLookupError:
        raise ConfigError(f"no process {pid}") from None
    except OSError as e:
        raise ConfigError(
            f"cannot pin pid {pid} to CPUs {sorted(cpus)}: {e.strerror}",
            errno=e.errno,
            fix=f"online CPUs are {sorted(os.sched_getaffinity(0))}",
        ) from None


# --------------------------------------------------------------------------------------------
# a star: one device-under-test namespace with a veth to each of n peer namespaces


@dataclass
class Star:
    """``dut[i]`` (all in namespace ``dut_ns``) is joined by a veth to ``peers[i]`` (each in
    its own namespace). Link i uses 198.18.i.1 (peer) and 198.18.i.2 (dut)."""

    dut_ns: str
    dut: list[Host]
    peers: list[Host]
    prefix: str
    pairs: list[VethPair]
    closed: bool = field(default=False, repr=False)

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return self.dut[0].run(cmd, **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        return self.dut[0].popen(cmd, **kw)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        for h in self.dut:
            try:
                h.stop_processes()
            except Exception as e:  # keep tearing down; report at the end
                errors.append(f"stopping processes in {h.ns}: {e}")
        for p in self.pairs:
            try:
                p.close()
            except CndpError as e:
                errors.append(str(e))
        errors += _destroy_ns(self.dut_ns)
        if errors:
            raise CndpError("tearing down star " + self.prefix + " failed: " + "; ".join(errors))

    def __enter__(self) -> Star:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_star(
    n: int = 2, prefix: str | None = None, *, rxqueues: int = 1, txqueues: int = 1
) -> Star:
    """A device-under-test namespace with ``n`` veths, each to its own peer namespace."""
    if not 1 <= n <= 16:
        raise ConfigError(f"a star has 1..16 links, not {n}")
    if prefix is None:
        prefix = _next_pair_prefix()
    _check_prefix(prefix)
    dut_ns = f"{prefix}-d"
    pairs: list[VethPair] = []
    dut: list[Host] = []
    _create_ns(dut_ns)
    try:
        for i in range(n):
            pair = make_veth_pair(
                f"{prefix}x{i:x}",
                rxqueues=rxqueues,
                txqueues=txqueues,
                ipv4=(f"198.18.{i}.1", f"198.18.{i}.2"),
                ipv6=(f"fd00:198:18:{i}::1", f"fd00:198:18:{i}::2"),
                macs=(f"02:00:c6:12:{i:02x}:01", f"02:00:c6:12:{i:02x}:02"),
            )
            pairs.append(pair)
            b = pair.b
            with IPRoute(netns=b.ns, flags=0) as ipr:
                try:
                    ipr.link("set", index=b.ifindex, net_ns_fd=dut_ns)
                except NetlinkError as e:
                    raise _nl_error(f"moving {b.ifname} into {dut_ns}", e) from None
            with IPRoute(netns=dut_ns, flags=0) as ipr:
                (idx,) = ipr.link_lookup(ifname=b.ifname)
                try:
                    if i == 0:
                        (lo,) = ipr.link_lookup(ifname="lo")
                        ipr.link("set", index=lo, state="up")
                    ipr.addr("add", index=idx, address=b.ipv4, prefixlen=b.prefixlen4)
                    ipr.addr(
                        "add", index=idx, address=b.ipv6, prefixlen=b.prefixlen6, flags=IFA_F_NODAD
                    )
                    ipr.link("set", index=idx, state="up")
                except NetlinkError as e:
                    raise _nl_error(f"configuring {b.ifname} in {dut_ns}", e) from None
            host = Host(
                ns=dut_ns,
                ifname=b.ifname,
                ifindex=idx,
                mac=b.mac,
                ipv4=b.ipv4,
                ipv6=b.ipv6,
                prefixlen4=b.prefixlen4,
                prefixlen6=b.prefixlen6,
            )
            _destroy_ns(b.ns)
            pair.b = host
            dut.append(host)
        for h in dut + [p.a for p in pairs]:
            _wait_ready(h, timeout=5.0)
        return Star(dut_ns, dut, [p.a for p in pairs], prefix, pairs)
    except BaseException:
        for p in pairs:
            with contextlib.suppress(Exception):
                p.close()
        _destroy_ns(dut_ns)
        raise
