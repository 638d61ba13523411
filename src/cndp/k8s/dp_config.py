"""The device plugin's ``config.json``, in the format of the AF_XDP plugins for Kubernetes.

The same keys as intel/afxdp-plugins-for-kubernetes (its ``configFile`` structs), matched
case-insensitively as Go's encoding/json does, with the same limits::

    {
      "logLevel": "info",                 # debug | info | warning | error
      "logFile": "afxdp-dp.log",          # a file name under /var/log/afxdp-k8s-plugins/
      "kindCluster": false,               # true: virtual netdevs (veth) may join pools
      "pools": [
        {
          "name": "myPool",               # 1..20 letters/digits; resource afxdp/<name>
          "mode": "primary",              # primary | cdq (cdq: ice subfunctions, refused here)
          "drivers": [{"name": "veth", "primary": 2, "excludeDevices": [{"name": "x"}],
                       "excludeAddressed": true}],
          "devices": [{"name": "ens1"}, {"mac": "02:00:00:00:00:01"}, {"pci": "0000:3b:00.0"}],
          "nodes": [{"hostname": "node-1", "drivers": [...], "devices": [...]}],
          "udsTimeout": 30,               # -1 (none), 0 (default 30) or 30..300 seconds
          "udsServerDisable": false,      # no handshake socket (pinned map only, or nothing)
          "bpfMapPinningEnable": false,   # pin the XSKMAP and mount it (xsk_pin_path pods)
          "requiresUnprivilegedBpf": false,
          "uid": 0                        # 0, or the pod's uid 1000..256000
        }
      ]
    }

Differences, all deliberate: an unknown key is an error naming it (Go ignores it silently,
so a typo such as ``"udsTimout"`` used to be lost), as is a key given twice; a number where
a string belongs (or a float where an integer belongs) names the key; node hostnames may
contain dots (Kubernetes node names often do). Two extension keys per pool: ``xdpMode``
(``native``, the default, or ``skb``) and ``podHostnameCheck`` (default true: the handshake
peer's UTS hostname must be the pod name it claims). Ignored with a note: ``udsFuzz`` (a
development switch of the Go plugin) and ``ethtoolCmds`` (older plugins; the CNI applies
filters now). ``clusterType: "kind"`` (older plugins) means ``kindCluster: true``.

Every error is a :class:`~cndp.errors.ConfigError` whose message starts with the file and
the key path (``config.json: pools[0].udsTimeout: ...``) and carries a ``fix=`` hint.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

RESOURCE_PREFIX = "afxdp"  # resource names are afxdp/<pool>
ENV_PREFIX = "AFXDP_DEVICES_"  # the pod's env var: AFXDP_DEVICES_<POOL upper>
LOG_DIR = "/var/log/afxdp-k8s-plugins"
LOG_LEVELS = ("debug", "info", "warning", "error")
MODES = ("primary", "cdq")
XDP_MODES = ("native", "skb")
UDS_TIMEOUT_DEFAULT = 30
UDS_TIMEOUT_RANGE = (30, 300)
UID_RANGE = (1000, 256000)
PRIMARY_RANGE = (1, 10)
SECONDARY_RANGE = (1, 64)
MAX_CONFIG_BYTES = 1 << 20

_POOL_RE = re.compile(r"[A-Za-z0-9]{1,20}\Z")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,50}\Z")  # device and driver names, as the Go plugin
_PCI_RE = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]\Z")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}\Z")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")
_LOGFILE_RE = re.compile(r"[A-Za-z0-9_-]+\.(?:log|txt)\Z")


# ---------------------------------------------------------------------------------------------
# the parsed configuration


@dataclass(frozen=True)
class DeviceSel:
    """A netdev named by exactly one of name, MAC or PCI address."""

    name: str = ""
    mac: str = ""  # lower case, colon separated
    pci: str = ""  # lower case
    secondary: int = 0  # cdq only

    def __str__(self) -> str:
        if self.name:
            return self.name
        return f"mac {self.mac}" if self.mac else f"pci {self.pci}"


@dataclass(frozen=True)
class DriverSel:
    """Every netdev of a driver, at most ``primary`` of them (0: all)."""

    name: str
    primary: int = 0
    secondary: int = 0
    exclude_devices: tuple[DeviceSel, ...] = ()
    exclude_addressed: bool = False


@dataclass(frozen=True)
class NodeSel:
    """Drivers and devices that replace the pool's own on the node ``hostname``."""

    hostname: str
    drivers: tuple[DriverSel, ...] = ()
    devices: tuple[DeviceSel, ...] = ()


@dataclass(frozen=True)
class PoolConfig:
    name: str
    mode: str = "primary"
    drivers: tuple[DriverSel, ...] = ()
    devices: tuple[DeviceSel, ...] = ()
    nodes: tuple[NodeSel, ...] = ()
    uds_server_disable: bool = False
    bpf_map_pinning_enable: bool = False
    uds_timeout: int = 0  # as written: -1, 0 or 30..300
    requires_unprivileged_bpf: bool = False
    uid: int = 0
    xdp_mode: str = "native"
    pod_hostname_check: bool = True

    @property
    def resource(self) -> str:
        return f"{RESOURCE_PREFIX}/{self.name}"

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def idle_timeout(self) -> float | None:
        """Seconds a handshake connection may stay silent; None: no limit."""
        if self.uds_timeout == -1:
            return None
        return float(self.uds_timeout or UDS_TIMEOUT_DEFAULT)

    def for_node(self, hostname: str) -> tuple[tuple[DriverSel, ...], tuple[DeviceSel, ...]]:
        """The drivers and devices that apply on ``hostname`` (a node section replaces the
        pool's own lists, as in the Go plugin)."""
        for n in self.nodes:
            if n.hostname == hostname:
                return n.drivers, n.devices
        return self.drivers, self.devices


@dataclass(frozen=True)
class DpConfig:
    pools: tuple[PoolConfig, ...] = ()
    log_level: str = "info"
    log_file: str = ""
    kind_cluster: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)  # ignored keys, for the log

    def pool(self, name: str) -> PoolConfig:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# parsing


class _Pairs(list):
    """A JSON object as its key/value pairs, so that repeated keys can be reported."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number with a fraction"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, _Pairs):  # before list: _Pairs is one
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _show(v: Any) -> str:
    if isinstance(v, _Pairs):
        return "{...}"
    if isinstance(v, list):
        return "[...]"
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.notes: list[str] = []

    def fail(self, path: str, msg: str, fix: str) -> ConfigError:
        where = f"{self.source}: {path}: " if path else f"{self.source}: "
        return ConfigError(where + msg, fix=fix)

    # -- objects

    def obj(self, v: Any, path: str, keys: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
        """{canonical key: (path of the key, value)} for the keys present; unknown or
        repeated keys are errors. Matching ignores case, as Go's encoding/json."""
        if not isinstance(v, _Pairs):
            raise self.fail(
                path, f"must be an object, not {_type_name(v)}", 'write it as {"key": value}'
            )
        canon = {k.lower(): k for k in keys}
        out: dict[str, tuple[str, Any]] = {}
        for k, val in v:
            kp = f"{path}.{k}" if path else k
            c = canon.get(k.lower())
            if c is None:
                near = difflib.get_close_matches(k.lower(), list(canon), n=1, cutoff=0.75)
                fix = (
                    f"did you mean {canon[near[0]]!r}?"
                    if near
                    else "known keys: " + ", ".join(keys)
                )
                raise self.fail(kp, "unknown key", fix)
            if c in out:
                raise self.fail(kp, f"key {c!r} is given twice", "keep one of them")
            out[c] = (kp, val)
        return out

    def get(
        self,
        o: dict[str, tuple[str, Any]],
        key: str,
        check: Callable[[str, Any], Any],
        default: Any,
    ) -> Any:
        if key not in o or o[key][1] is None:  # Go: null leaves the zero value
            return default
        return check(*o[key])

    # -- scalars

    def string(self, path: str, v: Any) -> str:
        if not isinstance(v, str):
            raise self.fail(path, f"must be a string, not {_type_name(v)} ({_show(v)})", "quote it")
        return v

    def boolean(self, path: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(
                path,
                f"must be true or false, not {_type_name(v)} ({_show(v)})",
                "write true or false",
            )
        return v

    def integer(self, path: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(
                path,
                f"must be an integer, not {_type_name(v)} ({_show(v)})",
                "write a whole number",
            )
        return v

    def ranged(self, path: str, v: Any, lo: int, hi: int, *, zero: bool = True) -> int:
        n = self.integer(path, v)
        if (zero and n == 0) or lo <= n <= hi:
            return n
        allowed = f"0 (unset) or {lo}..{hi}" if zero else f"{lo}..{hi}"
        raise self.fail(path, f"{n} is out of range", f"use {allowed}")

    def matching(self, path: str, v: Any, rx: re.Pattern, what: str) -> str:
        s = self.string(path, v)
        if not rx.match(s):
            raise self.fail(path, f"{_show(s)} is not {what}", f"write {what}")
        return s

    def choice(self, path: str, v: Any, choices: tuple[str, ...]) -> str:
        s = self.string(path, v)
        if s not in choices:
            raise self.fail(path, f"{_show(s)} is not allowed", "use one of: " + ", ".join(choices))
        return s

    def items(self, path: str, v: Any) -> list[tuple[str, Any]]:
        if isinstance(v, _Pairs) or not isinstance(v, list):
            raise self.fail(path, f"must be a list, not {_type_name(v)}", "write it as [...]")
        out = []
        for i, item in enumerate(v):
            p = f"{path}[{i}]"
            if item is None:
                raise self.fail(p, "cannot be null", "remove it or give an object")
            out.append((p, item))
        return out

    # -- structures

    def device(self, path: str, v: Any) -> DeviceSel:
        o = self.obj(v, path, ("name", "pci", "mac", "secondary"))
        name = self.get(o, "name", lambda p, x: self.matching(p, x, _NAME_RE, _NAME_WHAT), "")
        pci = self.get(o, "pci", lambda p, x: self.matching(p, x, _PCI_RE, _PCI_WHAT), "")
        mac = self.get(o, "mac", lambda p, x: self.matching(p, x, _MAC_RE, _MAC_WHAT), "")
        ids = [k for k, val in (("name", name), ("pci", pci), ("mac", mac)) if val]
        if not ids:
            raise self.fail(path, "a device needs a name, pci or mac", "identify the netdev")
        if len(ids) > 1:
            raise self.fail(
                path,
                f"a device is named by one of name, pci or mac, not by {' and '.join(ids)}",
                "keep one of them",
            )
        secondary = self.get(o, "secondary", lambda p, x: self.ranged(p, x, *SECONDARY_RANGE), 0)
        return DeviceSel(
            name=name, mac=mac.lower().replace("-", ":"), pci=pci.lower(), secondary=secondary
        )

    def devices(self, path: str, v: Any) -> tuple[DeviceSel, ...]:
        return tuple(self.device(p, item) for p, item in self.items(path, v))

    def driver(self, path: str, v: Any) -> DriverSel:
        o = self.obj(
            v, path, ("name", "primary", "secondary", "excludeDevices", "excludeAddressed")
        )
        name = self.get(o, "name", lambda p, x: self.matching(p, x, _NAME_RE, _NAME_WHAT), "")
        if not name:
            raise self.fail(path, "a driver needs a name", 'add "name", e.g. "ice" or "veth"')
        return DriverSel(
            name=name,
            primary=self.get(o, "primary", lambda p, x: self.ranged(p, x, *PRIMARY_RANGE), 0),
            secondary=self.get(o, "secondary", lambda p, x: self.ranged(p, x, *SECONDARY_RANGE), 0),
            exclude_devices=self.get(o, "excludeDevices", self.devices, ()),
            exclude_addressed=self.get(o, "excludeAddressed", self.boolean, False),
        )

    def drivers(self, path: str, v: Any) -> tuple[DriverSel, ...]:
        return tuple(self.driver(p, item) for p, item in self.items(path, v))

    def node(self, path: str, v: Any) -> NodeSel:
        o = self.obj(v, path, ("hostname", "drivers", "devices"))
        host = self.get(o, "hostname", lambda p, x: self.matching(p, x, _HOST_RE, _HOST_WHAT), "")
        if not host:
            raise self.fail(path, "a node section needs a hostname", 'add "hostname"')
        drivers = self.get(o, "drivers", self.drivers, ())
        devices = self.get(o, "devices", self.devices, ())
        if not drivers and not devices:
            raise self.fail(path, "a node section needs drivers or devices", "add one of them")
        return NodeSel(host, drivers, devices)

    def pool(self, path: str, v: Any) -> PoolConfig:
        o = self.obj(v, path, _POOL_KEYS)
        name = self.get(o, "name", lambda p, x: self.matching(p, x, _POOL_RE, _POOL_WHAT), "")
        if not name:
            raise self.fail(path, "a pool needs a name", 'add "name", e.g. "myPool"')
        mode = self.get(o, "mode", lambda p, x: self.choice(p, x, MODES), "")
        if not mode:
            raise self.fail(path, f"pool {name!r} needs a mode", 'add "mode": "primary"')
        drivers = self.get(o, "drivers", self.drivers, ())
        devices = self.get(o, "devices", self.devices, ())
        nodes = self.get(
            o, "nodes", lambda p, x: tuple(self.node(*i) for i in self.items(p, x)), ()
        )
        if not (drivers or devices or nodes):
            raise self.fail(
                path,
                f"pool {name!r} has no drivers, devices or nodes",
                "say which netdevs it holds",
            )
        hosts = [n.hostname for n in nodes]
        for h in hosts:
            if hosts.count(h) > 1:
                raise self.fail(f"{path}.nodes", f"node {h!r} appears twice", "merge the sections")
        for key in ("udsFuzz", "ethtoolCmds"):
            if key in o:
                self.notes.append(f"{o[key][0]}: {_IGNORED[key]}; ignored")
        return PoolConfig(
            name=name,
            mode=mode,
            drivers=drivers,
            devices=devices,
            nodes=nodes,
            uds_server_disable=self.get(o, "udsServerDisable", self.boolean, False),
            bpf_map_pinning_enable=self.get(o, "bpfMapPinningEnable", self.boolean, False),
            uds_timeout=self.get(o, "udsTimeout", self.uds_timeout, 0),
            requires_unprivileged_bpf=self.get(o, "requiresUnprivilegedBpf", self.boolean, False),
            uid=self.get(o, "uid", lambda p, x: self.ranged(p, x, *UID_RANGE), 0),
            xdp_mode=self.get(o, "xdpMode", lambda p, x: self.choice(p, x, XDP_MODES), "native"),
            pod_hostname_check=self.get(o, "podHostnameCheck", self.boolean, True),
        )

    def uds_timeout(self, path: str, v: Any) -> int:
        n = self.integer(path, v)
        lo, hi = UDS_TIMEOUT_RANGE
        if n in (-1, 0) or lo <= n <= hi:
            return n
        raise self.fail(
            path, f"{n} is out of range", f"use -1 (no timeout), 0 (default {lo} s) or {lo}..{hi}"
        )

    def top(self, v: Any) -> DpConfig:
        o = self.obj(v, "", ("pools", "logFile", "logLevel", "kindCluster", "clusterType"))
        pools = self.get(
            o, "pools", lambda p, x: tuple(self.pool(*i) for i in self.items(p, x)), ()
        )
        names = [p.name for p in pools]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise self.fail(
                    f"pools[{i}].name", f"pool {n!r} appears twice", "give each pool its own name"
                )
        kind = self.get(o, "kindCluster", self.boolean, False)
        ctype = self.get(o, "clusterType", self.string, "")
        if ctype:
            self.notes.append(f'clusterType: {ctype!r} is the older form of "kindCluster"')
            kind = kind or ctype.lower() == "kind"
        return DpConfig(
            pools=pools,
            log_level=self.get(o, "logLevel", lambda p, x: self.choice(p, x, LOG_LEVELS), "")
            or "info",
            log_file=self.get(
                o, "logFile", lambda p, x: self.matching(p, x, _LOGFILE_RE, _LOGFILE_WHAT), ""
            ),
            kind_cluster=kind,
            notes=tuple(self.notes),
        )


_POOL_KEYS = (
    "name",
    "mode",
    "drivers",
    "devices",
    "nodes",
    "udsServerDisable",
    "bpfMapPinningEnable",
    "udsTimeout",
    "udsFuzz",
    "requiresUnprivilegedBpf",
    "uid",
    "ethtoolCmds",
    "xdpMode",
    "podHostnameCheck",
)
_IGNORED = {
    "udsFuzz": "a development switch of the Go plugin",
    "ethtoolCmds": "ethtool filters are the CNI's job (ethtoolCmds in the network attachment)",
}
_NAME_WHAT = "1..50 letters, digits, '-' or '_'"
_PCI_WHAT = "a PCI address such as 0000:3b:00.0"
_MAC_WHAT = "a MAC address such as 02:00:00:00:00:01"
_HOST_WHAT = "a node hostname (letters, digits, '-', '.')"
_POOL_WHAT = "a pool name of 1..20 letters or digits"
_LOGFILE_WHAT = "a file name ending in .log or .txt (no directory)"


def parse_config(text: str | bytes, source: str = "config.json") -> DpConfig:
    """Parse and validate the text of a config.json; raise ConfigError naming the key."""
    p = _Parser(source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise p.fail("", f"not UTF-8 text (byte {e.start})", "save the file as UTF-8") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise p.fail("", f"larger than {MAX_CONFIG_BYTES} bytes", "this is not a config file")
    if not text.strip():
        raise p.fail("", "empty", 'write at least {"pools": [...]}')
    try:
        data = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise p.fail(
            "",
            f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
            "fix the JSON syntax",
        ) from None
    except ValueError as e:  # NaN / Infinity, or a number too long for int()
        raise p.fail("", f"not valid JSON: {e}", "fix the JSON syntax") from None
    except RecursionError:
        raise p.fail("", "nested too deeply", "this is not a config file") from None
    return p.top(data)


def load_config(path: str) -> DpConfig:
    """Read and parse ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(
            f"cannot read the device-plugin config {path}: {e.strerror}",
            errno=e.errno,
            fix="give --config the path of config.json",
        ) from None
    return parse_config(data, path)
