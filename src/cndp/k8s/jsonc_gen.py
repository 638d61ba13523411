"""``cndp-jsonc-gen``: write the app's jsonc at pod start from the device plugin's environment.

The Python counterpart of CNDP's ``tools/jsonc_gen.sh``. The AF_XDP device plugin tells a pod
its netdevs in ``AFXDP_DEVICES`` (newer plugins) or ``AFXDP_DEVICES_<POOL>`` (older ones),
space-separated; this writes a cndpfwd configuration with one lport ``<dev>:0`` per netdev
(one UMEM region each, one ``fwd:<i>`` thread each, on a CPU of the netdev's NUMA node) whose
XSKMAP comes from the device plugin: ``uds_path`` (the handshake socket the plugin mounts at
``/tmp/afxdp_dp/<dev>/afxdp.sock``) or, with ``-p``, ``xsk_pin_path`` (the pinned map at
``/tmp/afxdp_dp/<dev>/xsks_map``).

What differs from the shell script, on purpose:

- the output is always valid JSON-C (every value goes through ``json.dumps``; the script's
  no-device fallback wrote an unquoted key) and is loaded with ``cndp.app.config`` before it
  is written: a file that would not load is never written;
- a variable holding several netdevs gives several lports (the script made one lport of the
  whole string); ``AFXDP_DEVICES`` itself is read too, not only ``AFXDP_DEVICES_*``;
- CPUs come from the process's affinity (the pod's cpuset), not from ``lscpu`` (the whole
  host), and the indices wrap, so a small pod never gets an empty lcore group;
- ``CNDP_COPY_MODE`` is accepted as well as ``AFXDP_COPY_MODE`` (the k8s README used it).

Like the script, with no netdev in the environment it falls back to ``net1`` (the name CNI
gives the first extra interface), with a warning.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import CndpError
from .handshake import POD_PIN_PATH, POD_UDS_PATH, valid_netdev_name

DEFAULT_QID = 4  # CNDP: the queue the pod's ethtool filter steers to
KIND_QID = 0  # veth in kind has one queue
FALLBACK_DEVICE = "net1"
REGION_BUFCNT = 16  # K buffers per lport (CNDP: 16)
DEVICES_VAR = "AFXDP_DEVICES"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class GenError(CndpError):
    """The environment or the options cannot give a configuration."""


def devices_from_env(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Netdevs from ``AFXDP_DEVICES`` and ``AFXDP_DEVICES_*`` (in variable-name order; values
    split on spaces and commas; duplicates dropped). Returns (devices, variables read)."""
    names = sorted(k for k in env if k == DEVICES_VAR or k.startswith(DEVICES_VAR + "_"))
    devs: list[str] = []
    for var in names:
        for dev in re.split(r"[\s,]+", env[var].strip()):
            if not dev:
                continue
            if not valid_netdev_name(dev):
                raise GenError(
                    f"{var}={env[var]!r}: {dev!r} is not a netdev name",
                    fix="netdev names are 1-15 characters without '/', ':' or spaces",
                )
            if dev not in devs:
                devs.append(dev)
    return devs, names


def copy_mode_from_env(env: Mapping[str, str]) -> bool:
    for var in ("AFXDP_COPY_MODE", "CNDP_COPY_MODE"):
        if var in env:
            v = env[var].strip().lower()
            if v in _TRUE:
                return True
            if v in _FALSE:
                return False
            raise GenError(f"{var}={env[var]!r} is not a boolean", fix=f"set {var}=true or false")
    return False


# ---------------------------------------------------------------------------------------------
# CPUs


def cpu_layout() -> list[list[int]]:
    """The CPUs this process may run on, grouped by NUMA node (node order)."""
    allowed = set(os.sched_getaffinity(0))
    nodes: list[list[int]] = []
    for path in sorted(
        glob.glob("/sys/devices/system/node/node[0-9]*/cpulist"),
        key=lambda p: int(re.findall(r"node(\d+)", p)[-1]),
    ):
        try:
            with open(path) as f:
                cpus = _parse_cpulist(f.read())
        except (OSError, ValueError):
            continue
        mine = sorted(allowed & cpus)
        if mine:
            nodes.append(mine)
    covered = {c for n in nodes for c in n}
    if allowed - covered:  # no NUMA information (or CPUs outside it): one more group
        nodes.append(sorted(allowed - covered))
    return nodes


def _parse_cpulist(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def nic_numa_node(dev: str) -> int:
    try:
        with open(f"/sys/class/net/{dev}/device/numa_node") as f:
            return max(int(f.read().strip()), 0)  # -1: no affinity
    except (OSError, ValueError):
        return 0


@dataclass(frozen=True)
class Cpus:
    initial: int
    fwd: tuple[int, ...]
    default: int


def assign_cpus(
    devices: Sequence[str], layout: Sequence[Sequence[int]], numa_of: Callable[[str], int]
) -> Cpus:
    """fwd thread i on CPU i (mod count) of its netdev's NUMA node, as CNDP; the main thread
    on the first CPU no fwd thread uses (else the last CPU), the default group on the next."""
    nodes = [list(n) for n in layout if n]
    if not nodes:
        raise GenError("no CPU is available to this process")
    flat = [c for n in nodes for c in n]
    fwd = []
    for i, dev in enumerate(devices):
        node = numa_of(dev)
        cpus = nodes[node] if 0 <= node < len(nodes) else nodes[0]
        fwd.append(cpus[i % len(cpus)])
    free = [c for c in flat if c not in fwd]
    initial = free[0] if free else flat[-1]
    rest = [c for c in free if c != initial]
    return Cpus(initial, tuple(fwd), rest[0] if rest else initial)


# ---------------------------------------------------------------------------------------------
# the document


@dataclass
class Options:
    kind: bool = False
    pinned: bool = False
    copy_mode: bool = False
    qid: int | None = None  # None: 4, or 0 with kind
    bufcnt: int = REGION_BUFCNT  # K buffers per lport
    uds_template: str = POD_UDS_PATH
    pin_template: str = POD_PIN_PATH
    mode: str = "drop"


def build(devices: Sequence[str], opts: Options, cpus: Cpus) -> dict:
    """The configuration as plain data (sections in CNDP's order)."""
    qid = opts.qid if opts.qid is not None else (KIND_QID if opts.kind else DEFAULT_QID)
    key = "xsk_pin_path" if opts.pinned else "uds_path"
    template = opts.pin_template if opts.pinned else opts.uds_template
    lports = {}
    threads: dict[str, dict] = {"main": {"group": "initial", "description": "CLI Thread"}}
    groups: dict[str, list[int]] = {"initial": [cpus.initial]}
    for i, dev in enumerate(devices):
        name = f"{dev}:0"
        lports[name] = {
            "pmd": "net_af_xdp",
            "qid": qid,
            "umem": "umem0",
            "region": i,
            "skb_mode": opts.copy_mode,
            key: template.format(dev=dev),
            "description": f"LAN {i} port",
        }
        groups[f"group{i}"] = [cpus.fwd[i]]
        threads[f"fwd:{i}"] = {
            "group": f"group{i}",
            "lports": [name],
            "description": f"Thread {i}",
        }
    groups["default"] = [cpus.default]
    return {
        "application": {
            "name": "cndpfwd",
            "description": "A simple packet forwarder for pktdev and xskdev",
        },
        "defaults": {
            "bufcnt": 16,
            "bufsz": 2,
            "rxdesc": 2,
            "txdesc": 2,
            "cache": 256,
            "mtype": "2MB",
        },
        "umems": {
            "umem0": {
                "bufcnt": opts.bufcnt * len(devices),
                "bufsz": 2,
                "mtype": "2MB",
                "regions": [opts.bufcnt] * len(devices),
                "rxdesc": 0,
                "txdesc": 0,
                "description": "UMEM Description 0",
            }
        },
        "lports": lports,
        "lcore-groups": groups,
        "options": {
            "pkt_api": "xskdev",
            "no-metrics": False,
            "no-restapi": False,
            "cli": False,
            "mode": opts.mode,
            "l3fwd-fib-rules": [
                "198.18.0.0/24,02:00:01:02:03:04,1",
                "198.18.1.0/24,06:00:01:02:03:04,0",
            ],
        },
        "threads": threads,
    }


_COMMENTS = {
    "application": "(R) Application information",
    "defaults": "(O) Default values (bufcnt, bufsz, rxdesc, txdesc in 1K units)",
    "umems": "UMEMs: one region of bufcnt K buffers per lport",
    "lports": "lports: one per netdev from the device plugin; the XSKMAP comes from it",
    "lcore-groups": "CPUs of each thread (from this pod's CPU affinity)",
    "options": "application options (the cndpfwd <mode> argument overrides mode)",
    "threads": "main plus one fwd thread per lport",
}


def _dumps(v: object, indent: str) -> str:
    """json.dumps with objects indented and arrays of scalars on one line."""
    if isinstance(v, dict):
        if not v:
            return "{}"
        inner = indent + "    "
        parts = [f"{inner}{json.dumps(k)}: {_dumps(x, inner)}" for k, x in v.items()]
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    if isinstance(v, list) and any(isinstance(x, dict | list) for x in v):
        inner = indent + "    "
        return "[\n" + ",\n".join(inner + _dumps(x, inner) for x in v) + "\n" + indent + "]"
    return json.dumps(v)


def render(doc: dict, header: Sequence[str] = ()) -> str:
    """JSON-C text: a comment before each section, values from json.dumps (always valid)."""
    lines = ["{"]
    lines += [f"    // {h}" for h in header]
    items = list(doc.items())
    for n, (name, value) in enumerate(items):
        if name in _COMMENTS:
            lines.append(f"    // {_COMMENTS[name]}")
        body = _dumps(value, "    ")
        lines.append(f"    {json.dumps(name)}: {body}{',' if n < len(items) - 1 else ''}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(
    env: Mapping[str, str],
    opts: Options,
    *,
    layout: Sequence[Sequence[int]] | None = None,
    numa_of: Callable[[str], int] | None = None,
) -> tuple[str, list[str]]:
    """(jsonc text, warnings) for an environment. The text is checked by loading it."""
    from ..app import config as cfgmod

    warnings: list[str] = []
    devices, read = devices_from_env(env)
    if not devices:
        warnings.append(
            f"no netdev in {DEVICES_VAR} or {DEVICES_VAR}_*: using {FALLBACK_DEVICE!r} "
            "(is the pod asking for an afxdp resource?)"
        )
        devices = [FALLBACK_DEVICE]
    if opts.bufcnt < 1:
        raise GenError(f"bufcnt {opts.bufcnt} must be at least 1 (K buffers per lport)")
    if opts.qid is not None and not 0 <= opts.qid <= 0xFFFF:
        raise GenError(f"qid {opts.qid} is out of range", fix="use a queue id 0..65535")
    for t in (opts.uds_template, opts.pin_template):
        try:
            t.format(dev="x")
        except (KeyError, IndexError, ValueError):
            raise GenError(
                f"path template {t!r}: only {{dev}} may appear in braces",
                fix="e.g. /tmp/afxdp_dp/{dev}/afxdp.sock",
            ) from None
    cpus = assign_cpus(
        devices,
        layout if layout is not None else cpu_layout(),
        (lambda _d: 0) if opts.kind else (numa_of or nic_numa_node),
    )
    header = [
        "Generated by cndp-jsonc-gen from "
        + (", ".join(f"{v}={env[v]!r}" for v in read) if read else "no AFXDP_DEVICES"),
        "(R) - Required entry, (O) - Optional entry",
    ]
    text = render(build(devices, opts, cpus), header)
    try:
        cfgmod.loads(text, "<cndp-jsonc-gen>", host_checks=False)
    except CndpError as e:  # pragma: no cover - a bug in build/render
        raise GenError(f"the generated configuration does not load: {e}") from None
    return text, warnings


def write_atomic(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cndp-jsonc-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cndp-jsonc-gen",
        description="Write a cndpfwd jsonc for the netdevs the AF_XDP device plugin gave this "
        "pod (AFXDP_DEVICES / AFXDP_DEVICES_*). Copy mode from AFXDP_COPY_MODE.",
    )
    p.add_argument("-k", "--kind", action="store_true", help="kind/veth: queue 0, no NUMA")
    p.add_argument(
        "-p", "--pinned", action="store_true", help="xsk_pin_path (pinned map) instead of uds_path"
    )
    p.add_argument("-o", "--output", default="config.jsonc", help="file to write; - for stdout")
    p.add_argument("--qid", type=int, default=None, help="queue id of every lport (default 4)")
    p.add_argument(
        "--bufcnt", type=int, default=REGION_BUFCNT, help="K buffers per lport (default 16)"
    )
    p.add_argument("--mode", default="drop", help="options.mode (default drop)")
    p.add_argument("--uds-path", default=POD_UDS_PATH, help=f"template (default {POD_UDS_PATH})")
    p.add_argument("--pin-path", default=POD_PIN_PATH, help=f"template (default {POD_PIN_PATH})")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the file")
    return p


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        opts = Options(
            kind=args.kind,
            pinned=args.pinned,
            copy_mode=copy_mode_from_env(env),
            qid=args.qid,
            bufcnt=args.bufcnt,
            uds_template=args.uds_path,
            pin_template=args.pin_path,
            mode=args.mode,
        )
        text, warnings = generate(env, opts)
        for w in warnings:
            print(f"cndp-jsonc-gen: warning: {w}", file=sys.stderr)
        if args.output == "-":
            sys.stdout.write(text)
            return 0
        write_atomic(args.output, text)
    except GenError as e:
        print(f"cndp-jsonc-gen: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cndp-jsonc-gen: error: writing {args.output}: {e.strerror}", file=sys.stderr)
        return 1
    if not args.quiet:
        sys.stdout.write(text)
    print(f"cndp-jsonc-gen: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
