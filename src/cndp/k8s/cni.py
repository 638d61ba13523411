"""``afxdp``: a CNI plugin that hands a whole netdev to a pod for AF_XDP.

Speaks CNI spec 1.0.0 and 0.4.0 (and 0.3.0/0.3.1, whose results 0.4.0 shares). The runtime
(containerd, Multus, ``cnitool``) finds the executable by the config's ``type`` in
``CNI_PATH``, so the deployed file or symlink is named ``afxdp``; ``python -m cndp.k8s.cni``
and the ``afxdp`` console script run :func:`main`.

What each command does (the netdev is the config's ``deviceID``; Multus fills it in from the
device plugin's allocation):

- **ADD**: runs the IPAM plugin (if ``ipam`` is set); applies ``ethtoolCmds`` on the host with
  ``-device-`` / ``-ip-`` replaced by the netdev and the first IPAM address; moves the netdev
  into ``CNI_NETNS`` keeping its name (not ``CNI_IFNAME``: the pod's app finds it by the name
  the device plugin put in ``AFXDP_DEVICES``); brings it up; adds the IPAM addresses and
  routes. Any failure undoes the steps already done, in reverse order.
- **DEL**: moves the netdev back to the host namespace (if the pod's namespace still holds
  it), undoes the ethtool changes, detaches the XDP program unless ``skipUnloadBpf``, and
  releases the IPAM lease. Idempotent; works with an empty ``CNI_NETNS`` and after the
  namespace is gone.
- **CHECK**: the netdev is in ``CNI_NETNS``, up, with the addresses ``prevResult`` lists for
  it; the IPAM plugin's CHECK passes.
- **VERSION**: the versions above.

Output is the spec's result JSON on stdout; every failure is the spec's error JSON
(``{"cniVersion", "code", "msg", "details"}``) with exit status 1, never a traceback. What ADD
changed on the host (ethtool rule ids, RSS, channel counts, whether ntuple was on, the link's
up state) is kept in a small state file so DEL can undo exactly that
(``/var/lib/cni/afxdp``, or ``$CNDP_CNI_STATE_DIR``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CndpError
from .handshake import valid_netdev_name

log = logging.getLogger("cndp.k8s.cni")

PLUGIN_TYPE = "afxdp"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
CHECK_MIN_VERSION = "0.4.0"
DEFAULT_VERSION = "1.0.0"

# CNI spec error codes (SPEC.md "Error"); 100+ are ours.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN = 11
ERR_NETDEV = 100  # the netdev is missing, or already where it should not be
ERR_NETLINK = 101  # moving the netdev, bringing it up, adding addresses or routes failed
ERR_IPAM = 102  # the IPAM plugin could not be run or returned something unusable
ERR_ETHTOOL = 103  # an ethtool command failed (the message carries its output)
ERR_XDP = 104  # the XDP program could not be detached
ERR_CHECK = 105  # CHECK found the attachment not as ADD left it
ERR_INTERNAL = 999  # a bug: the log file has the traceback

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION")
MODES = ("primary", "cdq")
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
DEFAULT_LOG_DIR = "/var/log/afxdp-k8s-plugins"
DEFAULT_STATE_DIR = "/var/lib/cni/afxdp"
ENV_LOG_DIR = "CNDP_CNI_LOG_DIR"
ENV_STATE_DIR = "CNDP_CNI_STATE_DIR"
ENV_ETHTOOL = "CNDP_CNI_ETHTOOL"
MAX_STDIN = 1 << 20  # a network config is a few KiB; refuse to buffer megabytes
EXEC_TIMEOUT = 60.0  # seconds for IPAM and ethtool (kubelet's own CNI timeout is longer)

# CNI_ARGS keys every Kubernetes runtime sends; anything else needs IgnoreUnknown=1, as in the
# reference plugins.
KNOWN_ARGS = frozenset(
    {
        "IgnoreUnknown",
        "K8S_POD_NAMESPACE",
        "K8S_POD_NAME",
        "K8S_POD_INFRA_CONTAINER_ID",
        "K8S_POD_UID",
    }
)
_CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_LOG_FILE_RE = re.compile(r"[A-Za-z0-9_.\-]+\.(log|txt)")
_QUEUES_RE = re.compile(r"\d{1,5}(-\d{1,5})?")
_PLUGIN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_ETHTOOL_TOKEN_RE = re.compile(r"[A-Za-z0-9_:./\-]+")

# ethtool options a network config may use, and only on the pod's netdev. Firmware flashing,
# EEPROM writes, resets and feature toggles are not filters and stay out of reach of whoever
# can write a NetworkAttachmentDefinition (ethtool runs as root on the host).
ETHTOOL_NTUPLE = frozenset({"-N", "--config-ntuple", "-U", "--config-nfc"})
ETHTOOL_RSS = frozenset({"-X", "--set-rxfh-indir", "--rxfh"})
ETHTOOL_CHANNELS = frozenset({"-L", "--set-channels"})
ETHTOOL_ALLOWED = ETHTOOL_NTUPLE | ETHTOOL_RSS | ETHTOOL_CHANNELS
DEVICE_PLACEHOLDER = "-device-"
IP_PLACEHOLDER = "-ip-"
_ADDED_RULE_RE = re.compile(r"Added rule with ID (\d+)")


# ---------------------------------------------------------------------------------------------
# errors


class CniError(CndpError):
    """A failure reported to the runtime as CNI error JSON with ``code``."""

    def __init__(self, code: int, msg: str, *, details: str = "", fix: str | None = None):
        self.code = code
        self.msg = msg
        self.details = details
        super().__init__(msg, fix=fix)

    def to_json(self, cni_version: str) -> dict[str, Any]:
        details = self.details
        if self.fix:
            details = f"{details} (fix: {self.fix})" if details else f"fix: {self.fix}"
        return {"cniVersion": cni_version, "code": self.code, "msg": self.msg, "details": details}


def _config_error(msg: str, fix: str | None = None) -> CniError:
    return CniError(ERR_INVALID_CONFIG, msg, fix=fix)


# ---------------------------------------------------------------------------------------------
# environment


@dataclass(frozen=True)
class CniEnv:
    """The CNI_* variables of one invocation, validated for its command."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    path: tuple[str, ...] = ()


def parse_cni_args(text: str) -> dict[str, str]:
    """``CNI_ARGS`` (``K=V;K=V``) as a dict. A pair that is not ``K=V`` with a non-empty key
    is an error (code 4), as is an unknown key unless ``IgnoreUnknown`` is true."""
    if text == "":
        return {}
    out: dict[str, str] = {}
    for pair in text.split(";"):
        key, sep, value = pair.partition("=")
        if not sep or not key or "=" in value:
            raise CniError(
                ERR_INVALID_ENV,
                f"CNI_ARGS: {pair!r} is not KEY=VALUE",
                fix="separate pairs with ';', e.g. IgnoreUnknown=1;K8S_POD_NAME=p",
            )
        out[key] = value
    ignore = out.get("IgnoreUnknown", "false")
    if ignore.lower() not in ("1", "true", "0", "false"):
        raise CniError(
            ERR_INVALID_ENV,
            f"CNI_ARGS: IgnoreUnknown={ignore!r} is not a boolean",
            fix="use IgnoreUnknown=1 or IgnoreUnknown=true",
        )
    unknown = sorted(set(out) - KNOWN_ARGS)
    if unknown and ignore.lower() not in ("1", "true"):
        raise CniError(
            ERR_INVALID_ENV,
            f"CNI_ARGS: unknown keys {unknown}",
            fix="add IgnoreUnknown=1 (every Kubernetes runtime sends it)",
        )
    return out


def parse_env(environ: Mapping[str, str]) -> CniEnv:
    """Read and check the CNI_* variables the spec requires for the command (code 4 names the
    variable that is missing or invalid)."""
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        what = "missing" if not command else f"{command!r} is not one of {list(COMMANDS)}"
        raise CniError(
            ERR_INVALID_ENV,
            f"CNI_COMMAND {what}",
            fix="this program is a CNI plugin: a CNI runtime (containerd, Multus, cnitool) "
            "runs it with CNI_COMMAND=ADD|DEL|CHECK|VERSION",
        )
    if command == "VERSION":
        return CniEnv(command)
    missing = [
        name
        for name in ("CNI_CONTAINERID", "CNI_IFNAME") + (() if command == "DEL" else ("CNI_NETNS",))
        if not environ.get(name)
    ]
    if missing:
        raise CniError(ERR_INVALID_ENV, f"required environment variables missing: {missing}")
    cid = environ["CNI_CONTAINERID"]
    if len(cid) > 1024 or not _CONTAINER_ID_RE.fullmatch(cid):
        raise CniError(
            ERR_INVALID_ENV,
            f"CNI_CONTAINERID {cid[:80]!r} is invalid",
            fix="an alphanumeric first character, then alphanumerics, '_', '.' or '-'",
        )
    ifname = environ["CNI_IFNAME"]
    if not valid_netdev_name(ifname):
        raise CniError(ERR_INVALID_ENV, f"CNI_IFNAME {ifname[:80]!r} is not a valid netdev name")
    netns = environ.get("CNI_NETNS", "")
    if netns and (not netns.startswith("/") or "\0" in netns):
        raise CniError(ERR_INVALID_ENV, f"CNI_NETNS {netns[:200]!r} is not an absolute path")
    args = parse_cni_args(environ.get("CNI_ARGS", ""))
    path = tuple(p for p in environ.get("CNI_PATH", "").split(os.pathsep) if p)
    return CniEnv(command, cid, netns, ifname, args, path)


# ---------------------------------------------------------------------------------------------
# network configuration


@dataclass(frozen=True)
class EthtoolCmd:
    """One ``ethtoolCmds`` entry: ethtool's arguments, placeholders not yet replaced."""

    tokens: tuple[str, ...]

    @property
    def option(self) -> str:
        return self.tokens[0]

    @property
    def uses_ip(self) -> bool:
        return any(IP_PLACEHOLDER in t for t in self.tokens)

    def render(self, device: str, ip: str | None) -> list[str]:
        out = []
        for t in self.tokens:
            t = t.replace(DEVICE_PLACEHOLDER, device)
            if ip is not None:
                t = t.replace(IP_PLACEHOLDER, ip)
            out.append(t)
        return out


@dataclass(frozen=True)
class NetConf:
    """The plugin's network configuration (stdin), validated."""

    cni_version: str
    name: str
    type: str
    mode: str
    device: str
    log_file: str | None = None
    log_level: str | None = None
    queues: str | None = None
    ethtool_cmds: tuple[EthtoolCmd, ...] = ()
    dp_syncer: bool = False
    skip_unload_bpf: bool = False
    ipam: Mapping[str, Any] | None = None
    prev_result: Mapping[str, Any] | None = None
    dns: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ipam_type(self) -> str | None:
        return None if self.ipam is None else self.ipam["type"]


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def decode_config(data: bytes) -> dict[str, Any]:
    """stdin bytes -> a JSON object (code 6 for anything else)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CniError(ERR_DECODE, f"network config is not UTF-8: {e}") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise CniError(ERR_DECODE, f"network config is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise CniError(ERR_DECODE, f"network config is a JSON {type(obj).__name__}, not an object")
    return obj


def config_version(obj: Mapping[str, Any]) -> str:
    v = obj.get("cniVersion")
    if v is None:
        raise _config_error("cniVersion is missing", fix=f"set one of {list(SUPPORTED_VERSIONS)}")
    if not isinstance(v, str):
        raise _config_error(f"cniVersion must be a string, not {type(v).__name__}")
    if v not in SUPPORTED_VERSIONS:
        raise CniError(
            ERR_INCOMPATIBLE_VERSION,
            f"cniVersion {v[:40]!r} is not supported",
            details=f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return v


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _config_error(f"{key} must be a string, not {type(v).__name__}")
    return v


def _opt_bool(obj: Mapping[str, Any], key: str) -> bool:
    v = obj.get(key, False)
    if not isinstance(v, bool):
        raise _config_error(f"{key} must be true or false, not {json.dumps(v)[:40]}")
    return v


def _opt_obj(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _config_error(f"{key} must be an object, not {type(v).__name__}")
    return v


def _device_id(obj: Mapping[str, Any]) -> str:
    dev = obj.get("deviceID")
    if dev is None:
        rc = obj.get("runtimeConfig")
        if isinstance(rc, dict):
            dev = rc.get("deviceID")
    if dev is None or dev == "":
        raise _config_error(
            "deviceID is missing: which netdev should the pod get?",
            fix="Multus fills deviceID in from the device plugin's allocation when the "
            "NetworkAttachmentDefinition has the k8s.v1.cni.cncf.io/resourceName annotation; "
            'when running the plugin by hand, add "deviceID": "<netdev>"',
        )
    if not isinstance(dev, str) or not valid_netdev_name(dev):
        raise _config_error(f"deviceID {json.dumps(dev)[:40]} is not a valid netdev name")
    return dev


def _log_file(obj: Mapping[str, Any], log_dir: str) -> str | None:
    v = _opt_str(obj, "logFile")
    if v is None or v == "":
        return None
    log_dir = os.path.normpath(log_dir)
    # A plain file name lands in the log directory; an absolute path must point into it. The
    # plugin runs as root on the host, and a NetworkAttachmentDefinition must not be able to
    # make it append to an arbitrary file.
    name = v
    if v.startswith("/"):
        norm = os.path.normpath(v)
        if os.path.dirname(norm) != log_dir:
            raise _config_error(
                f"logFile {v[:80]!r} is outside {log_dir}", fix="give a file name such as cni.log"
            )
        name = os.path.basename(norm)
    if not _LOG_FILE_RE.fullmatch(name) or name.startswith("."):
        raise _config_error(
            f"logFile {v[:80]!r} is not a plain *.log or *.txt file name",
            fix="letters, digits, '_', '-', '.', ending in .log or .txt",
        )
    return os.path.join(log_dir, name)


def _ethtool_cmds(obj: Mapping[str, Any], device: str) -> tuple[EthtoolCmd, ...]:
    v = obj.get("ethtoolCmds")
    if v is None:
        return ()
    if not isinstance(v, list):
        raise _config_error(f"ethtoolCmds must be a list of strings, not {type(v).__name__}")
    cmds = []
    for i, entry in enumerate(v):
        if not isinstance(entry, str):
            raise _config_error(f"ethtoolCmds[{i}] must be a string, not {type(entry).__name__}")
        tokens = tuple(entry.split())
        if tokens and tokens[0] == "ethtool":
            tokens = tokens[1:]  # tolerated: the upstream examples leave the program name out
        if len(tokens) < 2:
            raise _config_error(
                f"ethtoolCmds[{i}] {entry[:80]!r} is too short",
                fix='e.g. "-N -device- flow-type udp4 dst-ip -ip- action 3"',
            )
        bad = next((t for t in tokens if not _ETHTOOL_TOKEN_RE.fullmatch(t)), None)
        if bad is not None:
            raise _config_error(
                f"ethtoolCmds[{i}] has a disallowed word {bad[:40]!r}",
                fix="letters, digits and _ : . / - only",
            )
        if tokens[0] not in ETHTOOL_ALLOWED:
            raise _config_error(
                f"ethtoolCmds[{i}]: ethtool option {tokens[0]!r} is not allowed",
                fix=f"use one of {sorted(ETHTOOL_ALLOWED)} (flow rules, RSS, channels)",
            )
        if tokens[1] not in (DEVICE_PLACEHOLDER, device):
            raise _config_error(
                f"ethtoolCmds[{i}] acts on {tokens[1]!r}, not on the pod's netdev",
                fix=f"write {DEVICE_PLACEHOLDER} as the second word",
            )
        cmds.append(EthtoolCmd(tokens))
    return tuple(cmds)


def _ipam(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    ipam = _opt_obj(obj, "ipam")
    if not ipam:  # absent or {}: no IPAM, as upstream treats an empty type
        return None
    t = ipam.get("type")
    if t is None or t == "":
        return None
    if not isinstance(t, str) or not _PLUGIN_NAME_RE.fullmatch(t):
        raise _config_error(f"ipam.type {json.dumps(t)[:40]} is not a plugin name")
    return ipam


def parse_config(
    data: bytes | Mapping[str, Any], command: str = "ADD", *, log_dir: str | None = None
) -> NetConf:
    """Validate the stdin network config for ``command``. Unknown keys are ignored (runtimes
    and Multus add their own), known keys with wrong types or values are code 7, an
    unsupported ``mode`` is code 2, an unsupported ``cniVersion`` code 1."""
    obj = decode_config(data) if isinstance(data, (bytes, bytearray)) else dict(data)
    version = config_version(obj)
    name = _opt_str(obj, "name") or ""
    typ = obj.get("type")
    if not isinstance(typ, str) or not typ:
        raise _config_error("type is missing or not a string", fix=f'set "type": "{PLUGIN_TYPE}"')
    mode = obj.get("mode")
    if mode is None:
        raise _config_error("mode is missing", fix='set "mode": "primary"')
    if not isinstance(mode, str) or mode not in MODES:
        raise _config_error(f"mode {json.dumps(mode)[:40]} is not one of {list(MODES)}")
    if mode == "cdq":
        raise CniError(
            ERR_UNSUPPORTED_FIELD,
            "unsupported field: mode=cdq",
            details="CDQ subfunctions (Intel ice only) are not implemented by this plugin",
            fix='use "mode": "primary" with whole netdevs',
        )
    device = _device_id(obj)
    log_level = _opt_str(obj, "logLevel")
    if log_level is not None and log_level not in LOG_LEVELS:
        raise _config_error(f"logLevel {log_level[:40]!r} is not one of {list(LOG_LEVELS)}")
    queues = obj.get("queues")
    if queues is not None:
        if isinstance(queues, bool) or not isinstance(queues, (str, int)):
            raise _config_error('queues must be a string such as "4" or "0-3"')
        queues = str(queues)
        if not _QUEUES_RE.fullmatch(queues):
            raise _config_error(f"queues {queues[:40]!r} is not a number or a range a-b")
    ipam = _ipam(obj)
    cmds = _ethtool_cmds(obj, device)
    if ipam is None and any(c.uses_ip for c in cmds):
        raise _config_error(
            f"ethtoolCmds use {IP_PLACEHOLDER} but there is no ipam to give an address",
            fix='add "ipam": {"type": "host-local", ...}',
        )
    prev = _opt_obj(obj, "prevResult")
    if prev is not None:
        _check_result_shape(prev, "prevResult")
    return NetConf(
        cni_version=version,
        name=name,
        type=typ,
        mode=mode,
        device=device,
        log_file=_log_file(obj, log_dir or os.environ.get(ENV_LOG_DIR) or DEFAULT_LOG_DIR),
        log_level=log_level,
        queues=queues,
        ethtool_cmds=cmds,
        dp_syncer=_opt_bool(obj, "dpSyncer"),
        skip_unload_bpf=_opt_bool(obj, "skipUnloadBpf"),
        ipam=ipam,
        prev_result=prev,
        dns=_opt_obj(obj, "dns"),
        raw=obj,
    )


# ---------------------------------------------------------------------------------------------
# results


def _check_result_shape(res: Mapping[str, Any], what: str) -> None:
    """The parts of a result we read: lists of objects with string addresses."""
    for key in ("interfaces", "ips", "routes"):
        v = res.get(key)
        if v is None:
            continue
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise _config_error(f"{what}.{key} must be a list of objects")
    for i, ip in enumerate(res.get("ips") or ()):
        addr = ip.get("address")
        try:
            ipaddress.ip_interface(addr) if isinstance(addr, str) else None
        except ValueError:
            addr = None
        if not isinstance(addr, str):
            raise _config_error(f"{what}.ips[{i}].address is not an address in CIDR notation")
        idx = ip.get("interface")
        if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
            raise _config_error(f"{what}.ips[{i}].interface is not an index")
    for i, itf in enumerate(res.get("interfaces") or ()):
        if not isinstance(itf.get("name", ""), str) or not isinstance(itf.get("sandbox", ""), str):
            raise _config_error(f"{what}.interfaces[{i}] name/sandbox must be strings")
    for i, r in enumerate(res.get("routes") or ()):
        try:
            ipaddress.ip_network(r.get("dst"), strict=False)
            if r.get("gw") is not None:
                ipaddress.ip_address(r["gw"])
        except (TypeError, ValueError):
            raise _config_error(f"{what}.routes[{i}] has a bad dst or gw") from None


def normalise_ips(ips: Sequence[Mapping[str, Any]], version: str) -> list[dict[str, Any]]:
    """``ips`` entries for ``version``: 0.3.x/0.4.0 carry ``"version": "4"|"6"``, 1.0.0 not."""
    out = []
    for ip in ips:
        e = dict(ip)
        if version_tuple(version) < (1, 0, 0):
            e["version"] = str(ipaddress.ip_interface(e["address"]).version)
        else:
            e.pop("version", None)
        out.append(e)
    return out


def build_result(
    version: str,
    interfaces: Sequence[Mapping[str, Any]],
    ips: Sequence[Mapping[str, Any]] = (),
    routes: Sequence[Mapping[str, Any]] = (),
    dns: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {"cniVersion": version, "interfaces": [dict(i) for i in interfaces]}
    if ips:
        res["ips"] = normalise_ips(ips, version)
    if routes:
        res["routes"] = [dict(r) for r in routes]
    if dns:
        res["dns"] = dict(dns)
    return res


@dataclass
class IpamResult:
    ips: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    dns: dict[str, Any]

    @property
    def first_ip(self) -> str | None:
        """The first address without its prefix length: what ``-ip-`` becomes."""
        if not self.ips:
            return None
        return str(ipaddress.ip_interface(self.ips[0]["address"]).ip)


def parse_ipam_result(out: bytes, ipam_type: str) -> IpamResult:
    try:
        res = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CniError(ERR_IPAM, f"IPAM plugin {ipam_type} printed no JSON result: {e}") from None
    if not isinstance(res, dict):
        raise CniError(ERR_IPAM, f"IPAM plugin {ipam_type} printed a non-object result")
    try:
        _check_result_shape(res, "IPAM result")
    except CniError as e:
        raise CniError(ERR_IPAM, f"IPAM plugin {ipam_type}: {e.msg}") from None
    ips = [
        {k: v for k, v in ip.items() if k in ("address", "gateway")} for ip in res.get("ips") or ()
    ]
    if not ips:
        raise CniError(ERR_IPAM, f"IPAM plugin {ipam_type} returned no IP address")
    dns = res.get("dns") if isinstance(res.get("dns"), dict) else {}
    return IpamResult(ips, [dict(r) for r in res.get("routes") or ()], dns)


# ---------------------------------------------------------------------------------------------
# the system: netlink, processes, XDP


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    mac: str
    up: bool


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> str:
        return (self.stdout + self.stderr).decode("utf-8", "replace").strip()


class System(Protocol):
    """What the plugin needs from the machine. ``netns`` None is the plugin's own namespace
    (the host's); otherwise a path such as ``CNI_NETNS``."""

    def netns_exists(self, netns: str) -> bool: ...
    def find_link(self, netns: str | None, name: str) -> LinkInfo | None: ...
    def move_link(self, name: str, src: str | None, dst: str | None) -> None: ...
    def set_link_up(self, netns: str | None, name: str, up: bool) -> None: ...
    def add_address(self, netns: str | None, name: str, cidr: str) -> None: ...
    def addresses(self, netns: str | None, name: str) -> list[str]: ...
    def add_route(self, netns: str | None, name: str, dst: str, gw: str | None) -> None: ...
    def run(
        self, argv: Sequence[str], stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Completed: ...
    def xdp_attached(self, name: str) -> int | None: ...
    def xdp_detach(self, name: str) -> None: ...


class LinuxSystem:
    """:class:`System` on the real kernel: pyroute2 for netlink, subprocess for ethtool and
    IPAM plugins, :mod:`cndp.bpf.xdp` for XDP."""

    def __init__(self) -> None:
        # The plugin's own namespace, to move netdevs back into from inside the pod's.
        self._host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._host_fd >= 0:
            os.close(self._host_fd)
            self._host_fd = -1

    @staticmethod
    def _ipr(netns: str | None):
        from pyroute2 import IPRoute

        # flags=0: never create a namespace that is not there
        return IPRoute() if netns is None else IPRoute(netns=netns, flags=0)

    def netns_exists(self, netns: str) -> bool:
        return is_netns(netns)

    def find_link(self, netns: str | None, name: str) -> LinkInfo | None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with self._ipr(netns) as ipr:
                idx = ipr.link_lookup(ifname=name)
                if not idx:
                    return None
                (msg,) = ipr.link("get", index=idx[0])
        except NetlinkError as e:
            raise _netlink_error(f"reading netdev {name}", e) from None
        return LinkInfo(
            index=msg["index"],
            name=msg.get("IFLA_IFNAME") or name,
            mac=msg.get("IFLA_ADDRESS") or "",
            up=bool(msg["flags"] & 1),
        )

    def _index(self, ipr, netns: str | None, name: str) -> int:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            where = "the host namespace" if netns is None else netns
            raise CniError(ERR_NETDEV, f"netdev {name} is not in {where}")
        return idx[0]

    def move_link(self, name: str, src: str | None, dst: str | None) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        fd = self._host_fd if dst is None else os.open(dst, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with self._ipr(src) as ipr:
                idx = self._index(ipr, src, name)
                ipr.link("set", index=idx, net_ns_fd=fd)
        except NetlinkError as e:
            target = "the host namespace" if dst is None else dst
            raise _netlink_error(f"moving netdev {name} into {target}", e) from None
        finally:
            if dst is not None:
                os.close(fd)

    def set_link_up(self, netns: str | None, name: str, up: bool) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with self._ipr(netns) as ipr:
                ipr.link("set", index=self._index(ipr, netns, name), state="up" if up else "down")
        except NetlinkError as e:
            raise _netlink_error(f"setting netdev {name} {'up' if up else 'down'}", e) from None

    def add_address(self, netns: str | None, name: str, cidr: str) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        itf = ipaddress.ip_interface(cidr)
        try:
            with self._ipr(netns) as ipr:
                ipr.addr(
                    "add",
                    index=self._index(ipr, netns, name),
                    address=str(itf.ip),
                    prefixlen=itf.network.prefixlen,
                )
        except NetlinkError as e:
            raise _netlink_error(f"adding {cidr} to netdev {name}", e) from None

    def addresses(self, netns: str | None, name: str) -> list[str]:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with self._ipr(netns) as ipr:
                idx = self._index(ipr, netns, name)
                return [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx)]
        except NetlinkError as e:
            raise _netlink_error(f"listing addresses of netdev {name}", e) from None

    def add_route(self, netns: str | None, name: str, dst: str, gw: str | None) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        net = ipaddress.ip_network(dst, strict=False)
        spec: dict[str, Any] = {
            "dst": str(net.network_address),
            "dst_len": net.prefixlen,
            "family": 2 if net.version == 4 else 10,
        }
        if gw:
            spec["gateway"] = gw
        try:
            with self._ipr(netns) as ipr:
                ipr.route("add", oif=self._index(ipr, netns, name), **spec)
        except NetlinkError as e:
            raise _netlink_error(f"adding route {dst} via {gw or 'link'} on {name}", e) from None

    def run(
        self, argv: Sequence[str], stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Completed:
        try:
            p = subprocess.run(
                list(argv),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                env=dict(env) if env is not None else None,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            return Completed(127, b"", f"{argv[0]}: not found".encode())
        except PermissionError:
            return Completed(126, b"", f"{argv[0]}: not executable".encode())
        except subprocess.TimeoutExpired:
            return Completed(124, b"", f"{argv[0]}: no answer in {EXEC_TIMEOUT:.0f} s".encode())
        return Completed(p.returncode, p.stdout, p.stderr)

    def xdp_attached(self, name: str) -> int | None:
        from ..bpf import xdp

        cur = xdp.query(name)
        return None if cur is None else cur.prog_id

    def xdp_detach(self, name: str) -> None:
        from ..bpf import xdp

        # A netdev can hold a native and a generic program at once; take them all out.
        for _ in range(3):
            if not xdp.detach(name):
                return
        if xdp.query(name) is not None:
            raise CniError(ERR_XDP, f"an XDP program stays attached to {name} after detaching")


NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs fd: which kind of namespace (linux/nsfs.h)
CLONE_NEWNET = 0x40000000


def is_netns(path: str) -> bool:
    """True when ``path`` opens a network namespace (/proc/<pid>/ns/net, or a bind mount of
    one such as /var/run/netns/<name>), not a plain file, a directory or another namespace."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:  # ENOTTY: not an nsfs file
        return False
    finally:
        os.close(fd)


def _netlink_error(what: str, e: Exception) -> CniError:
    code = getattr(e, "code", 0) or 0
    text = os.strerror(code) if code else str(e)
    if code == 17:  # EEXIST
        return CniError(
            ERR_NETDEV,
            f"{what}: a netdev of that name already exists there",
            fix="the pod already has an interface with the netdev's name",
        )
    return CniError(ERR_NETLINK, f"{what}: {text}")


# ---------------------------------------------------------------------------------------------
# state kept between ADD and DEL


@dataclass
class AttachState:
    """What ADD changed on the host for one attachment, so DEL undoes exactly that."""

    device: str
    host_up: bool = True
    ntuple_enabled: bool = False  # we switched ntuple on (it was off)
    rule_ids: list[int] = field(default_factory=list)
    rss_changed: bool = False
    channels: dict[str, int] | None = None  # channel counts before our -L

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "host_up": self.host_up,
            "ntuple_enabled": self.ntuple_enabled,
            "rule_ids": self.rule_ids,
            "rss_changed": self.rss_changed,
            "channels": self.channels,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AttachState:
        ch = obj.get("channels")
        return cls(
            device=str(obj["device"]),
            host_up=bool(obj.get("host_up", True)),
            ntuple_enabled=bool(obj.get("ntuple_enabled", False)),
            rule_ids=[int(x) for x in obj.get("rule_ids") or ()],
            rss_changed=bool(obj.get("rss_changed", False)),
            channels={str(k): int(v) for k, v in ch.items()} if isinstance(ch, dict) else None,
        )


class StateStore:
    """One JSON file per attachment under ``directory`` (written atomically)."""

    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, container_id: str, ifname: str) -> str:
        return os.path.join(self.directory, f"{container_id}-{ifname}.json")

    def load(self, container_id: str, ifname: str) -> AttachState | None:
        try:
            with open(self._path(container_id, ifname)) as f:
                return AttachState.from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("ignoring unreadable state file for %s: %s", container_id, e)
            return None

    def save(self, container_id: str, ifname: str, state: AttachState) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                json.dump(state.to_json(), f)
            os.replace(tmp, self._path(container_id, ifname))
        except OSError as e:
            raise CniError(
                ERR_IO,
                f"cannot write the plugin state under {self.directory}: {e.strerror}",
                fix=f"the directory must be writable by root (or set {ENV_STATE_DIR})",
            ) from None

    def remove(self, container_id: str, ifname: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(container_id, ifname))


# ---------------------------------------------------------------------------------------------
# ethtool


def find_ethtool(environ: Mapping[str, str] | None = None) -> str | None:
    """``$CNDP_CNI_ETHTOOL``, else ethtool on PATH or in the sbin directories."""
    override = (os.environ if environ is None else environ).get(ENV_ETHTOOL)
    if override:
        return override
    found = shutil.which("ethtool")
    if found:
        return found
    for p in ("/usr/sbin/ethtool", "/sbin/ethtool"):  # runtimes may pass a PATH without sbin
        if os.access(p, os.X_OK):
            return p
    return None


def parse_ntuple(features: str) -> tuple[bool, bool] | None:
    """``ethtool -k`` output -> (ntuple on, fixed), or None when the line is absent."""
    m = re.search(r"^ntuple-filters:\s+(on|off)(\s+\[fixed\])?", features, re.M)
    return None if m is None else (m.group(1) == "on", m.group(2) is not None)


def parse_channels(text: str) -> dict[str, int]:
    """The "Current hardware settings" of ``ethtool -l``: {rx, tx, other, combined} with a
    number (n/a fields are left out)."""
    _, sep, cur = text.partition("Current hardware settings:")
    out: dict[str, int] = {}
    if not sep:
        return out
    for line in cur.splitlines():
        m = re.match(r"\s*(RX|TX|Other|Combined):\s+(\d+)\s*$", line)
        if m:
            out[m.group(1).lower()] = int(m.group(2))
    return out


class Ethtool:
    """Runs ethtool on the host for one netdev and records what it changed in ``state``."""

    def __init__(self, system: System, device: str, state: AttachState, binary: str | None):
        self.system = system
        self.device = device
        self.state = state
        self.binary = binary

    def _run(self, args: Sequence[str]) -> Completed:
        if self.binary is None:
            raise CniError(
                ERR_ETHTOOL,
                "ethtoolCmds are set but ethtool is not installed on the host",
                fix="install ethtool (Debian package ethtool) on every node",
            )
        return self.system.run([self.binary, *args])

    def apply(self, cmds: Sequence[EthtoolCmd], ip: str | None) -> None:
        dev = self.device
        hint = None
        if any(c.option in ETHTOOL_NTUPLE for c in cmds):
            r = self._run(["-k", dev])
            nt = parse_ntuple(r.stdout.decode("utf-8", "replace")) if r.returncode == 0 else None
            if nt is not None and not nt[0] and nt[1]:
                # The driver has no flow rules. Run the commands anyway: ethtool's own error
                # is what the user needs to see, with this hint beside it.
                hint = (
                    f"{dev} reports ntuple-filters: off [fixed], it has no flow rules; "
                    "drop -N/-U commands for this netdev or use a NIC that has them"
                )
            elif nt is not None and not nt[0]:
                r = self._run(["-K", dev, "ntuple", "on"])
                if r.returncode != 0:
                    raise CniError(
                        ERR_ETHTOOL, f"ethtool -K {dev} ntuple on failed: {r.text()[:300]}"
                    )
                self.state.ntuple_enabled = True
        if any(c.option in ETHTOOL_CHANNELS for c in cmds):
            r = self._run(["-l", dev])
            if r.returncode == 0:
                self.state.channels = parse_channels(r.stdout.decode("utf-8", "replace"))
        for cmd in cmds:
            argv = cmd.render(dev, ip)
            r = self._run(argv)
            if r.returncode != 0:
                raise CniError(
                    ERR_ETHTOOL,
                    f"ethtool {' '.join(argv)} failed (exit {r.returncode}): {r.text()[:300]}",
                    fix=hint if cmd.option in ETHTOOL_NTUPLE else None,
                )
            log.info("ethtool %s: ok", " ".join(argv))
            if cmd.option in ETHTOOL_RSS:
                self.state.rss_changed = True
            m = _ADDED_RULE_RE.search(r.stdout.decode("utf-8", "replace"))
            if m:
                self.state.rule_ids.append(int(m.group(1)))

    def undo(self) -> list[str]:
        """Undo what ``state`` records. Returns problems (DEL logs them; it does not fail for
        a filter it cannot remove, as upstream)."""
        st, dev, problems = self.state, self.device, []

        def step(args: list[str]) -> None:
            try:
                r = self._run(args)
            except CniError as e:
                problems.append(e.msg)
                return
            if r.returncode != 0:
                problems.append(f"ethtool {' '.join(args)}: {r.text()[:200]}")

        for rid in reversed(st.rule_ids):
            step(["-N", dev, "delete", str(rid)])
        if st.rss_changed:
            step(["-X", dev, "default"])
        if st.ntuple_enabled:
            step(["-K", dev, "ntuple", "off"])
        if st.channels:
            args = ["-L", dev]
            for k in ("rx", "tx", "other", "combined"):
                if k in st.channels:
                    args += [k, str(st.channels[k])]
            step(args)
        return problems


# ---------------------------------------------------------------------------------------------
# the plugin


def _find_plugin(path: Sequence[str], name: str) -> str:
    for d in path:
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise CniError(
        ERR_IPAM,
        f"IPAM plugin {name!r} not found in CNI_PATH {list(path)}",
        fix=f"install {name} next to the other CNI plugins (Debian: containernetworking-plugins)",
    )


class Plugin:
    """One invocation: ``env`` + ``conf`` on ``system``."""

    def __init__(
        self,
        env: CniEnv,
        conf: NetConf,
        stdin: bytes,
        system: System,
        environ: Mapping[str, str],
        state_dir: str | None = None,
    ):
        self.env = env
        self.conf = conf
        self.stdin = stdin
        self.system = system
        self.environ = environ
        self.store = StateStore(state_dir or environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)

    # -- IPAM -------------------------------------------------------------------------------

    def _ipam_exec(self, command: str) -> Completed:
        ipam_type = self.conf.ipam_type
        assert ipam_type is not None
        if not self.env.path:
            raise CniError(
                ERR_INVALID_ENV,
                f"CNI_PATH is empty: cannot find the IPAM plugin {ipam_type!r}",
                fix="the runtime must set CNI_PATH to the CNI plugin directories",
            )
        exe = _find_plugin(self.env.path, ipam_type)
        env = dict(self.environ)
        env["CNI_COMMAND"] = command
        log.debug("ipam %s %s", ipam_type, command)
        r = self.system.run([exe], stdin=self.stdin, env=env)
        if r.stderr:
            # the spec: a delegated plugin's stderr goes to the calling plugin's stderr
            sys.stderr.write(r.stderr.decode("utf-8", "replace"))
            sys.stderr.flush()
        return r

    def _ipam_error(self, r: Completed, command: str) -> CniError:
        ipam_type = self.conf.ipam_type
        try:
            err = json.loads(r.stdout.decode("utf-8"))
            code, msg = int(err["code"]), str(err.get("msg", ""))
            details = str(err.get("details", "") or "")
            if code <= 0:
                raise ValueError("not an error code")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            return CniError(ERR_IPAM, f"IPAM {ipam_type} {command} failed: {r.text()[:300]}")
        # the IPAM plugin's own code tells the runtime most (e.g. 7 for a bad range)
        return CniError(code, f"IPAM {ipam_type} {command}: {msg}", details=details)

    def ipam_add(self) -> IpamResult:
        r = self._ipam_exec("ADD")
        if r.returncode != 0:
            err = self._ipam_error(r, "ADD")
            self.ipam_del(quiet=True)  # the spec: a failed delegated ADD is followed by DEL
            raise err
        try:
            return parse_ipam_result(r.stdout, self.conf.ipam_type or "")
        except CniError:
            self.ipam_del(quiet=True)
            raise

    def ipam_del(self, quiet: bool = False) -> None:
        r = self._ipam_exec("DEL")
        if r.returncode != 0:
            err = self._ipam_error(r, "DEL")
            if not quiet:
                raise err
            log.warning("%s", err.msg)

    # -- ADD --------------------------------------------------------------------------------

    def add(self) -> dict[str, Any]:
        conf, env, sysm = self.conf, self.env, self.system
        dev = conf.device
        if not sysm.netns_exists(env.netns):
            raise CniError(ERR_UNKNOWN_CONTAINER, f"CNI_NETNS {env.netns} is not a netns")
        link = sysm.find_link(None, dev)
        if link is None:
            there = sysm.find_link(env.netns, dev)
            raise CniError(
                ERR_NETDEV,
                f"netdev {dev} is not in the host namespace"
                + (" (the pod's namespace already has it)" if there else ""),
                fix="check the device plugin's pool and that no other pod holds the netdev",
            )
        if sysm.find_link(env.netns, dev) is not None:
            raise CniError(ERR_NETDEV, f"the pod's namespace already has a netdev named {dev}")
        if conf.dp_syncer:
            log.warning("dpSyncer is accepted but this plugin has no device-plugin syncer")

        undo: list[Callable[[], None]] = []
        state = AttachState(device=dev, host_up=link.up)
        try:
            ipam: IpamResult | None = None
            if conf.ipam_type:
                ipam = self.ipam_add()
                undo.append(lambda: self.ipam_del(quiet=True))
            if conf.ethtool_cmds:
                eth = Ethtool(sysm, dev, state, find_ethtool(self.environ))
                undo.append(lambda: _log_problems(eth.undo()))
                # filters go on while the netdev is still on the host (ethtool runs here)
                eth.apply(conf.ethtool_cmds, ipam.first_ip if ipam else None)
            self.store.save(env.container_id, env.ifname, state)
            undo.append(lambda: self.store.remove(env.container_id, env.ifname))
            sysm.move_link(dev, None, env.netns)
            undo.append(lambda: self._return_to_host(dev, state.host_up))
            sysm.set_link_up(env.netns, dev, True)
            if ipam is not None:
                for ip in ipam.ips:
                    sysm.add_address(env.netns, dev, ip["address"])
                for route in ipam.routes:
                    sysm.add_route(env.netns, dev, route["dst"], _route_gw(route, ipam.ips))
            moved = sysm.find_link(env.netns, dev)
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except Exception as e:  # keep undoing; the first error is what we report
                    log.warning("rollback step failed: %s", e)
            raise
        mac = moved.mac if moved else link.mac
        return self._result(mac, ipam)

    def _result(self, mac: str, ipam: IpamResult | None) -> dict[str, Any]:
        conf, version = self.conf, self.conf.cni_version
        ours = {"name": conf.device, "mac": mac, "sandbox": self.env.netns}
        prev = conf.prev_result or {}
        interfaces = [dict(i) for i in prev.get("interfaces") or ()]
        ips = [dict(i) for i in prev.get("ips") or ()]
        routes = [dict(r) for r in prev.get("routes") or ()]
        dns = dict(prev.get("dns") or {}) or dict(conf.dns or {})
        index = len(interfaces)
        interfaces.append(ours)
        if ipam is not None:
            ips += [dict(ip, interface=index) for ip in ipam.ips]
            routes += ipam.routes
            if not dns:
                dns = ipam.dns
        return build_result(version, interfaces, ips, routes, dns)

    def _return_to_host(self, dev: str, up: bool) -> None:
        self.system.move_link(dev, self.env.netns, None)
        if up:
            self.system.set_link_up(None, dev, True)

    # -- DEL --------------------------------------------------------------------------------

    def delete(self) -> None:
        conf, env, sysm = self.conf, self.env, self.system
        dev = conf.device
        state = self.store.load(env.container_id, env.ifname)
        problems: list[str] = []
        if env.netns and sysm.netns_exists(env.netns) and sysm.find_link(env.netns, dev):
            sysm.move_link(dev, env.netns, None)
            log.info("moved %s from %s back to the host", dev, env.netns)
        on_host = sysm.find_link(None, dev)
        if on_host is None:
            # A virtual netdev dies with its namespace; a physical one returns to the root
            # namespace (where kubelet's runtime, and so this plugin, runs) and is found above.
            log.info("netdev %s is gone; nothing to return to the host", dev)
        else:
            if conf.ethtool_cmds:
                if state is None:
                    # no record of what ADD did: undo what the commands could have done
                    state = AttachState(
                        device=dev,
                        ntuple_enabled=any(c.option in ETHTOOL_NTUPLE for c in conf.ethtool_cmds),
                        rss_changed=any(c.option in ETHTOOL_RSS for c in conf.ethtool_cmds),
                    )
                problems += Ethtool(sysm, dev, state, find_ethtool(self.environ)).undo()
            if not conf.skip_unload_bpf and sysm.xdp_attached(dev) is not None:
                try:
                    sysm.xdp_detach(dev)
                except CniError:
                    raise
                except CndpError as e:
                    raise CniError(ERR_XDP, f"detaching the XDP program from {dev}: {e}") from None
                log.info("detached the XDP program from %s", dev)
            want_up = state.host_up if state is not None else True
            if want_up and not on_host.up:
                sysm.set_link_up(None, dev, True)
        _log_problems(problems)
        if conf.dp_syncer:
            log.warning("dpSyncer is accepted but this plugin has no device-plugin syncer")
        if conf.ipam_type:
            self.ipam_del()
        self.store.remove(env.container_id, env.ifname)

    # -- CHECK ------------------------------------------------------------------------------

    def check(self) -> None:
        conf, env, sysm = self.conf, self.env, self.system
        if version_tuple(conf.cni_version) < version_tuple(CHECK_MIN_VERSION):
            raise CniError(
                ERR_INCOMPATIBLE_VERSION,
                f"CHECK needs cniVersion {CHECK_MIN_VERSION} or later, not {conf.cni_version}",
            )
        prev = conf.prev_result
        if prev is None:
            raise _config_error("CHECK needs prevResult (the result of ADD)")
        if not sysm.netns_exists(env.netns):
            raise CniError(ERR_UNKNOWN_CONTAINER, f"CNI_NETNS {env.netns} is not a netns")
        dev = conf.device
        interfaces = prev.get("interfaces") or []
        index = next(
            (i for i, itf in enumerate(interfaces) if itf.get("name") == dev),
            None,
        )
        if index is None:
            raise CniError(ERR_CHECK, f"prevResult lists no interface {dev}")
        sandbox = interfaces[index].get("sandbox") or ""
        if sandbox and not _same_file(sandbox, env.netns):
            raise CniError(ERR_CHECK, f"prevResult puts {dev} in {sandbox}, not in {env.netns}")
        link = sysm.find_link(env.netns, dev)
        if link is None:
            raise CniError(ERR_CHECK, f"netdev {dev} is not in the pod's namespace {env.netns}")
        if not link.up:
            raise CniError(ERR_CHECK, f"netdev {dev} is down in the pod's namespace")
        want = {
            str(ipaddress.ip_interface(ip["address"]))
            for ip in prev.get("ips") or ()
            if ip.get("interface") == index
        }
        have = {str(ipaddress.ip_interface(a)) for a in sysm.addresses(env.netns, dev)}
        missing = sorted(want - have)
        if missing:
            raise CniError(ERR_CHECK, f"netdev {dev} lacks addresses {missing}")
        if conf.ipam_type:
            r = self._ipam_exec("CHECK")
            if r.returncode != 0:
                raise self._ipam_error(r, "CHECK")


def _route_gw(route: Mapping[str, Any], ips: Sequence[Mapping[str, Any]]) -> str | None:
    """A route's next hop: its ``gw``, else the gateway of an address of its family (as the
    reference plugins configure it), else on-link."""
    if route.get("gw"):
        return str(route["gw"])
    fam = ipaddress.ip_network(route["dst"], strict=False).version
    for ip in ips:
        if ip.get("gateway") and ipaddress.ip_interface(ip["address"]).version == fam:
            return str(ip["gateway"])
    return None


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _log_problems(problems: Sequence[str]) -> None:
    for p in problems:
        log.warning("cleanup: %s", p)


# ---------------------------------------------------------------------------------------------
# entry points


def _setup_logging(conf: NetConf | None) -> None:
    root = logging.getLogger("cndp")
    for h in list(root.handlers):
        if getattr(h, "_cndp_cni", False):
            root.removeHandler(h)
            h.close()
    level = LOG_LEVELS.get((conf.log_level if conf else None) or "")
    handler: logging.Handler
    if conf is not None and conf.log_file:
        try:
            os.makedirs(os.path.dirname(conf.log_file), mode=0o744, exist_ok=True)
            handler = logging.FileHandler(conf.log_file)
        except OSError as e:
            raise CniError(ERR_IO, f"cannot open logFile {conf.log_file}: {e.strerror}") from None
        level = level if level is not None else logging.INFO
    else:
        # stderr is the spec's place for unstructured output; stdout is the result only
        handler = logging.StreamHandler(sys.stderr)
        level = level if level is not None else logging.WARNING
    handler._cndp_cni = True  # type: ignore[attr-defined]
    pid = os.getpid()
    handler.setFormatter(logging.Formatter(f"%(asctime)s afxdp[{pid}] %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def version_result(stdin: bytes) -> dict[str, Any]:
    """VERSION: the input's cniVersion echoed back (when there is a usable one)."""
    v = DEFAULT_VERSION
    try:
        obj = json.loads(stdin.decode("utf-8")) if stdin.strip() else {}
        if isinstance(obj, dict) and isinstance(obj.get("cniVersion"), str):
            v = obj["cniVersion"]
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        pass
    return {"cniVersion": v, "supportedVersions": list(SUPPORTED_VERSIONS)}


def _error_version(stdin: bytes) -> str:
    try:
        obj = json.loads(stdin.decode("utf-8"))
        v = obj.get("cniVersion") if isinstance(obj, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        v = None
    return v if v in SUPPORTED_VERSIONS else DEFAULT_VERSION


def run(
    environ: Mapping[str, str],
    stdin: bytes,
    system_factory: Callable[[], System] | None = None,
    *,
    state_dir: str | None = None,
    configure_logging: bool = False,
) -> tuple[int, dict[str, Any] | None]:
    """One plugin invocation without touching stdin/stdout: (exit status, JSON to print).
    DEL and CHECK print nothing on success (None). ``configure_logging`` (the executable)
    sends the ``cndp`` loggers to the config's logFile or stderr; in-process callers keep
    their own logging set-up."""
    conf: NetConf | None = None
    system: System | None = None
    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            return 0, version_result(stdin)
        conf = parse_config(stdin, env.command, log_dir=environ.get(ENV_LOG_DIR))
        if configure_logging:
            _setup_logging(conf)
        log.info(
            "%s container=%s netns=%s ifname=%s device=%s",
            env.command,
            env.container_id,
            env.netns or "-",
            env.ifname,
            conf.device,
        )
        system = (system_factory or LinuxSystem)()
        plugin = Plugin(env, conf, stdin, system, environ, state_dir=state_dir)
        if env.command == "ADD":
            return 0, plugin.add()
        if env.command == "DEL":
            plugin.delete()
            return 0, None
        plugin.check()
        return 0, None
    except CniError as e:
        log.error("%s: code %d: %s", environ.get("CNI_COMMAND", "?"), e.code, e.msg)
        version = conf.cni_version if conf else _error_version(stdin)
        return 1, e.to_json(version)
    except CndpError as e:
        # A pycndp layer below (bpf, netdev) refused: name it, with its own fix hint.
        log.error("%s", e)
        version = conf.cni_version if conf else _error_version(stdin)
        return 1, CniError(ERR_NETLINK, str(e)).to_json(version)
    except Exception as e:  # a bug: still the spec's JSON, the traceback goes to the log
        log.exception("internal error")
        version = conf.cni_version if conf else _error_version(stdin)
        return 1, CniError(ERR_INTERNAL, f"internal error: {type(e).__name__}: {e}").to_json(
            version
        )
    finally:
        close = getattr(system, "close", None)
        if close is not None:
            close()


def _read_stdin(command: str) -> bytes:
    if command not in COMMANDS or sys.stdin is None:
        return b""
    with contextlib.suppress(OSError, ValueError):
        if sys.stdin.isatty():  # a person ran us by hand: do not wait for input
            return b""
    data = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise CniError(ERR_IO, f"network config on stdin is larger than {MAX_STDIN} bytes")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    environ = os.environ
    command = environ.get("CNI_COMMAND", "")
    try:
        stdin = _read_stdin(command)
    except CniError as e:
        print(json.dumps(e.to_json(DEFAULT_VERSION)))
        return 1
    except OSError as e:
        print(json.dumps(CniError(ERR_IO, f"reading stdin: {e}").to_json(DEFAULT_VERSION)))
        return 1
    status, out = run(environ, stdin, configure_logging=True)
    if out is not None:
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    if status != 0 and not command:
        print(
            "afxdp is a CNI plugin; see docs/cni.md for running it with cnitool",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
