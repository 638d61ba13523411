"""What a running application shows to its control side, and CNDP's command groups on it.

:class:`AppControl` describes the application (name, threads, lports), holds its metrics
registry and the per-worker pause flags, and is what the telemetry socket, the CLI, the
Prometheus exporter and the REST API all read. :func:`register_app_commands` adds CNDP
cndpfwd's ``app`` group and the ``metrics`` group to a :class:`~.uds.CommandTable`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CndpError
from ..xskdev.xskdev import STAT_KEYS
from . import logs
from .control import ControlError, ModeCell, PortControl
from .registry import PORT_BLOCK, WORKER_BLOCK, Registry
from .uds import MAX_OUTPUT_LEN, VERSION, CommandTable, Request

_LPORT_STAT_KEYS = frozenset(STAT_KEYS)

__all__ = [
    "CNDP_PORT_STATS",
    "EXTRA_PORT_STATS",
    "AppControl",
    "PortInfo",
    "ThreadInfo",
    "port_stats_cndp",
    "register_app_commands",
]

# lport_stats key -> the suffix CNDP's metrics_port_stats() gives it, in CNDP's order (28)
CNDP_PORT_STATS: tuple[tuple[str, str], ...] = (
    ("ibytes", "n_rx_bytes"),
    ("obytes", "n_tx_bytes"),
    ("ipackets", "n_rx_packets"),
    ("opackets", "n_tx_packets"),
    ("ierrors", "n_rx_errors"),
    ("oerrors", "n_tx_errors"),
    ("imissed", "n_rx_missed"),
    ("odropped", "n_tx_dropped"),
    ("rx_invalid", "n_rx_invalid_requests"),
    ("tx_invalid", "n_tx_invalid_requests"),
    ("rx_ring_empty", "n_rx_ring_empty"),
    ("rx_buf_alloc", "n_rx_buf_allocs"),
    ("rx_busypoll_wakeup", "n_rx_busypoll_wakeup"),
    ("rx_poll_wakeup", "n_rx_poll_wakeup"),
    ("rx_rcvd_count", "n_rx_count"),
    ("rx_burst_called", "n_rx_burst_called"),
    ("fq_add_called", "n_fq_add_called"),
    ("fq_add_count", "n_fq_add_count"),
    ("fq_full", "n_fq_full"),
    ("fq_alloc_zero", "n_fq_alloc_zero"),
    ("fq_reserve_failed", "n_fq_reserve_failed"),
    ("tx_kicks", "n_tx_kicks"),
    ("tx_kick_failed", "n_tx_failed_kicks"),
    ("tx_kick_again", "n_tx_kick_again"),
    ("tx_ring_full", "tx_ring_full"),
    ("tx_copied", "tx_copied"),
    ("cq_empty", "cq_empty"),
    ("cq_buf_freed", "cq_buf_freed"),
)


@dataclass(frozen=True)
class ThreadInfo:
    id: int
    name: str
    group: str
    type: str
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortInfo:
    id: int
    name: str
    netdev: str
    qid: int
    pmd_name: str
    thread: str | None = None


@dataclass
class AppControl:
    """The running application, as its control side sees it.

    ``pause`` is a shared-memory array (one cell per worker, in ``workers`` order) that the
    workers read when they publish their counters: writing 1 pauses a worker.
    """

    name: str
    threads: list[ThreadInfo]
    ports: list[PortInfo]
    registry: Registry
    workers: list[str] = field(default_factory=list)
    pause: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)  # mode, api, ... (free form)
    on_quit: Any = None  # callable: stop the application (local CLI "quit")
    port_ctl: PortControl | None = None  # lport admin state, clear requests, worker state
    runtime: Any = None  # the Runtime: worker processes and their start flags (readiness)
    mode: ModeCell | None = None  # set by an app whose mode can change at run time
    config: dict[str, Any] | None = None  # the resolved configuration (Config.to_dict())
    graph_fn: Callable[[], dict] | None = None  # the app's own graph; default: its data flow
    started: float = field(default_factory=time.time)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg, name: str, runtime, **info) -> AppControl:
        """From a jsonc :class:`cndp.app.Config` and a started :class:`Runtime`."""
        threads = [
            ThreadInfo(t.index, t.name, t.group, t.type, tuple(t.lports))
            for t in sorted(cfg.threads.values(), key=lambda t: t.index)
        ]
        owner = {lp: w.name for w in runtime.workers for lp in w.lports}
        ports = [
            PortInfo(lp.lpid, lp.name, lp.netdev, lp.qid, lp.pmd, owner.get(lp.name))
            for lp in sorted(cfg.lports.values(), key=lambda lp: lp.lpid)
        ]
        try:
            config = cfg.to_dict()
        except Exception:  # shown as unavailable by /app/config; never stops the app
            config = None
        ctl = cls(
            name=name,
            threads=threads,
            ports=ports,
            registry=runtime.registry,
            workers=[w.name for w in runtime.workers],
            pause=runtime.pause,
            info=dict(info),
            port_ctl=getattr(runtime, "port_ctl", None),
            runtime=runtime,
            config=config,
        )
        ctl.label_ports()
        return ctl

    def label_ports(self) -> None:
        """Give the lport rows of the registry their netdev/qid/thread labels."""
        if PORT_BLOCK not in self.registry:
            return
        block = self.registry.block(PORT_BLOCK)
        for p in self.ports:
            if p.name in block.row_index:
                block.labels[p.name] = {
                    "netdev": p.netdev,
                    "qid": str(p.qid),
                    "thread": p.thread or "",
                }

    # ------------------------------------------------------------------ threads
    def find_thread(self, name: str) -> ThreadInfo | None:
        for t in self.threads:
            if t.name == name:
                return t
        low = name.lower()
        for t in self.threads:
            if t.name.lower() == low:
                return t
        return None

    def thread_status(self, name: str) -> str:
        if self.pause is None or name not in self.workers:
            return "running"
        return "paused" if self.pause[self.workers.index(name)] else "running"

    def set_paused(self, target: str, paused: bool) -> list[dict[str, str]]:
        """Pause or resume one thread or ``all``; threads of type main are skipped (as in
        CNDP). Raises CndpError for an unknown thread."""
        if target.lower() == "all":
            chosen = [t for t in self.threads if t.type.lower() != "main"]
        else:
            t = self.find_thread(target)
            if t is None:
                raise CndpError(f"Thread '{target}' not found")
            chosen = [] if t.type.lower() == "main" else [t]
        out = []
        for t in chosen:
            if self.pause is not None and t.name in self.workers:
                self.pause[self.workers.index(t.name)] = 1 if paused else 0
            out.append({"name": t.name, "status": "paused" if paused else "running"})
        return out

    # ------------------------------------------------------------------ stats
    def port_stats(self) -> dict[str, dict[str, int]]:
        """lport name -> lport_stats, in lport order."""
        snap = self.registry.block(PORT_BLOCK).snapshot()
        return {p.name: snap.row(p.name) for p in self.ports if p.name in snap.rows}

    def worker_stats(self) -> dict[str, dict[str, int]]:
        if WORKER_BLOCK not in self.registry:
            return {}
        return self.registry.block(WORKER_BLOCK).snapshot().as_dict()

    def netdev_stats(self) -> dict[str, dict[str, int]]:
        """Per port (netdev): the lport (queue) rows summed."""
        return self.registry.block(PORT_BLOCK).snapshot().group_by("netdev")

    def quit(self) -> None:
        if callable(self.on_quit):
            self.on_quit()

    # ------------------------------------------------------------------ lport control
    def find_port(self, name: str) -> PortInfo | None:
        for p in self.ports:
            if p.name == name:
                return p
        return None

    def _targets(self, target: str) -> list[PortInfo]:
        """``all`` (the lports a worker owns) or one lport by name."""
        if target.lower() == "all":
            return [p for p in self.ports if p.thread is not None]
        p = self.find_port(target)
        if p is None:
            raise ControlError(
                f"no lport {target!r}", fix="one of " + ", ".join(q.name for q in self.ports)
            )
        return [p]

    def _need_port_ctl(self) -> PortControl:
        if self.port_ctl is None:
            raise ControlError(f"{self.name} has no lport control (no runtime)")
        return self.port_ctl

    def port_state(self, p: PortInfo) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": p.id,
            "name": p.name,
            "netdev": p.netdev,
            "qid": p.qid,
            "pmd_name": p.pmd_name,
            "thread": p.thread,
        }
        if self.port_ctl is not None:
            out.update(self.port_ctl.view(p.name))
        return out

    def set_admin(self, target: str, up: bool) -> list[dict[str, str]]:
        """Admin up/down of one lport or ``all``: the owning worker stops (or resumes)
        calling rx_burst/tx_burst within one publish period, like CNDP's
        pktdev_admin_state_set (software only: the netdev is not touched)."""
        pc = self._need_port_ctl()
        chosen = self._targets(target)
        for p in chosen:
            if p.thread is None:
                raise ControlError(f"lport {p.name!r} is not used by any thread")
            pc.set_admin(p.name, up)
        return [{"name": p.name, "admin": "up" if up else "down"} for p in chosen]

    def clear_stats(self, target: str = "all") -> list[str]:
        """Ask the owners to zero the counters of one lport or all (the worker's rx/tx sums
        follow, being sums of its lports); done within one publish period (see
        ``clear_pending`` in :meth:`port_state`)."""
        pc = self._need_port_ctl()
        chosen = [p for p in self._targets(target) if p.thread is not None]
        for p in chosen:
            pc.request_clear(p.name)
        return [p.name for p in chosen]

    # ------------------------------------------------------------------ readiness
    def readiness(self) -> dict[str, Any]:
        """Ready = every worker alive, started and not paused; every lport a worker owns
        open, bound, in the XSKMAP (AF_XDP lports) and admin up as the worker applied it;
        the application not stopping. Read from the workers' own reports."""
        reasons: list[str] = []
        rt = self.runtime
        if rt is not None and bool(rt.stop_flag[0]):
            reasons.append("the application is stopping")
        workers: dict[str, dict[str, bool]] = {}
        wsnap = self.worker_stats()
        for i, name in enumerate(self.workers):
            procs = getattr(rt, "procs", None) or []
            alive = i < len(procs) and procs[i].is_alive()
            started = rt is not None and int(rt.ready[i]) == 1
            paused = self.thread_status(name) == "paused" or bool(
                wsnap.get(name, {}).get("paused", 0)
            )
            running = alive and started and not paused
            workers[name] = {
                "alive": alive,
                "started": started,
                "paused": paused,
                "running": running,
            }
            if not alive:
                reasons.append(f"worker {name} is not alive")
            elif not started:
                reasons.append(f"worker {name} is starting (opening its lports)")
            elif paused:
                reasons.append(f"worker {name} is paused")
        ports: dict[str, dict[str, Any]] = {}
        for p in self.ports:
            if p.thread is None:
                continue  # configured, used by no thread
            v = self.port_state(p)
            ok = bool(
                v.get("open")
                and v.get("bound")
                and (v.get("xskmap") or not v.get("xsk"))
                and v.get("admin") == "up"
                and v.get("admin_up")
            )
            ports[p.name] = {k: v.get(k) for k in ("open", "bound", "xsk", "xskmap", "admin")}
            ports[p.name]["ready"] = ok
            if ok:
                continue
            if not v.get("open"):
                reasons.append(f"lport {p.name} is not open")
            elif not v.get("bound"):
                reasons.append(f"lport {p.name}: socket not bound")
            elif v.get("xsk") and not v.get("xskmap"):
                reasons.append(f"lport {p.name}: socket not in the XSKMAP")
            else:
                reasons.append(f"lport {p.name} is admin down")
        return {"ready": not reasons, "reasons": reasons, "workers": workers, "ports": ports}

    # ------------------------------------------------------------------ describe
    def app_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "version": VERSION,
            "started": round(self.started, 3),
            "uptime_s": round(time.time() - self.started, 3),
        }
        for k, v in self.info.items():
            out.setdefault(k, v)
        if self.mode is not None:
            out["mode"] = self.mode.requested
        return out

    def graph(self) -> dict[str, Any]:
        """The app's graph: its own (``graph_fn``), else the data flow of its threads: each
        worker's lports (rx) into the worker running the mode, out to lports (tx) or drop."""
        if self.graph_fn is not None:
            return self.graph_fn()
        mode = self.mode.requested if self.mode is not None else str(self.info.get("mode", ""))
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, str]] = []
        owned = [p for p in self.ports if p.thread is not None]
        for p in owned:
            nodes.append({"name": f"{p.name}-rx", "kind": "rx", "lport": p.name})
        for t in self.threads:
            if t.name in self.workers:
                nodes.append({"name": t.name, "kind": "worker", "mode": mode})
        for p in owned:
            nodes.append({"name": f"{p.name}-tx", "kind": "tx", "lport": p.name})
        nodes.append({"name": "drop", "kind": "drop"})
        for p in owned:
            rx, tx, w = f"{p.name}-rx", f"{p.name}-tx", p.thread or ""
            if mode != "tx-only":
                edges.append({"from": rx, "to": w})
            if mode in ("drop", "tx-only-rx", "hyperscan"):
                edges.append({"from": w, "to": "drop"})
            if mode in ("loopback", "tx-only", "tx-only-rx"):
                edges.append({"from": w, "to": tx})
            elif mode in ("fwd", "hyperscan"):
                edges.extend({"from": w, "to": f"{q.name}-tx"} for q in owned)
        seen: set[tuple[str, str]] = set()
        uniq = []
        for e in edges:
            if (e["from"], e["to"]) not in seen:
                seen.add((e["from"], e["to"]))
                uniq.append(e)
        return {"name": self.name, "mode": mode, "nodes": nodes, "edges": uniq}

    def lport_stats(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """lport -> labels, every counter of the lport block (our key names) and the age of
        the last publish: what the Prometheus exporter reads."""
        block = self.registry.block(PORT_BLOCK)
        snap = block.snapshot()
        chosen = self.ports if name is None else self._targets(name)
        out = {}
        for p in chosen:
            if p.name not in snap.rows:
                continue
            age = snap.age(p.name)
            out[p.name] = {
                "netdev": p.netdev,
                "qid": p.qid,
                "thread": p.thread,
                "age": None if age is None else round(age, 3),
                "stats": snap.row(p.name),
            }
        return out


def graph_of(graph: Any) -> dict[str, Any]:
    """A :class:`cndp.graph.Graph` as ``/app/graph`` shows it (for apps built on graphs:
    ``ctl.graph_fn = lambda: graph_of(g)``)."""
    nodes = [{"name": gn.name, "kind": "source" if gn.source else "node"} for gn in graph.nodes]
    edges = [{"from": gn.name, "to": t.name} for gn in graph.nodes for t in gn.edges]
    return {"name": graph.name, "nodes": nodes, "edges": edges}


CONFIG_CHUNK = 2048  # characters of JSON text per /app/config reply (escaped: <= 6x)


# counters an application adds to the lport block: CNDP's names for the ACL ones
EXTRA_PORT_STATS = {
    "acl_prefilter_drop": "n_acl_prefilter_drop_packets",
    "acl_permit": "n_acl_permit_packets",
    "acl_deny": "n_acl_deny_packets",
}


def port_stats_cndp(name: str, stats: Mapping[str, int]) -> dict[str, int]:
    """One lport's stats with CNDP's metrics key names (``<lport>_n_rx_bytes``, ...): the 28
    of ``lport_stats``, then any counter the application added to the lport block (ACL ones
    by CNDP's names, others as ``<lport>_<key>``)."""
    out = {f"{name}_{suffix}": int(stats.get(key, 0)) for key, suffix in CNDP_PORT_STATS}
    for key, v in stats.items():
        if key not in _LPORT_STAT_KEYS:
            out[f"{name}_{EXTRA_PORT_STATS.get(key, key)}"] = int(v)
    return out


def register_app_commands(table: CommandTable, ctl: AppControl) -> None:
    """CNDP cndpfwd's ``app`` group, the ``metrics`` group and our additions.

    CNDP: /app/hostname /app/appname /app/threads /app/ports /app/stop /app/start
    /metrics/port_stats. Ours: /metrics/port_stats,<lport>, /metrics/netdev_stats,
    /metrics/worker_stats, /app/loglevel[,level].
    """

    def hostname(req: Request) -> dict:
        return {"hostname": socket.gethostname()}

    def appname(req: Request) -> dict:
        return {"name": ctl.name}

    def threads(req: Request) -> dict:
        return {
            "threads": [
                {
                    "id": t.id,
                    "name": t.name,
                    "group": t.group,
                    "type": t.type,
                    "ports": list(t.ports),
                }
                for t in ctl.threads
            ]
        }

    def ports(req: Request) -> dict:
        return {
            "ports": [
                {
                    "id": p.id,
                    "name": p.name,
                    "netdev": p.netdev,
                    "qid": p.qid,
                    "pmd_name": p.pmd_name,
                }
                for p in ctl.ports
            ]
        }

    def thread_ctl(req: Request) -> dict:
        if req.param is None:
            return {"error": "Command requires thread name (or 'all') as a parameter"}
        paused = req.name.lower() == "/stop"
        try:
            return {"threads": ctl.set_paused(req.param, paused)}
        except CndpError as e:
            return {"error": str(e)}

    def loglevel(req: Request) -> dict:
        if req.param is not None:
            logs.set_level(req.param)  # LogLevelError becomes {"error": ...}
        return {"level": logs.get_level()}

    def port_stats(req: Request) -> dict:
        stats = ctl.port_stats()
        if req.param is not None:
            if req.param not in stats:
                return {"error": f"no lport {req.param}"}
            stats = {req.param: stats[req.param]}
        out: dict[str, int] = {}
        for name, st in stats.items():
            out.update(port_stats_cndp(name, st))
        return out

    def netdev_stats(req: Request) -> dict:
        return {"netdevs": ctl.netdev_stats()}

    def worker_stats(req: Request) -> dict:
        return {"workers": ctl.worker_stats()}

    def info(req: Request) -> dict:
        return ctl.app_info()

    def config(req: Request) -> dict:
        if ctl.config is None:
            return {"error": "the configuration is not available"}
        text = json.dumps(ctl.config, separators=(",", ":"), default=str)
        try:
            off = int(req.param or 0)
        except ValueError:
            return {"error": f"offset {req.param!r} is not a number"}
        if not 0 <= off <= len(text):
            return {"error": f"offset {off} is outside 0..{len(text)}"}
        return {"offset": off, "total": len(text), "data": text[off : off + CONFIG_CHUNK]}

    def port_state(req: Request) -> dict:
        chosen = ctl.ports if req.param is None else ctl._targets(req.param)
        return {"ports": [ctl.port_state(p) for p in chosen]}

    def port_admin(req: Request) -> dict:
        if len(req.params) != 2 or req.params[1].lower() not in ("up", "down"):
            return {"error": "usage: /app/port_admin,<lport|all>,<up|down>"}
        return {"ports": ctl.set_admin(req.params[0], req.params[1].lower() == "up")}

    def ready(req: Request) -> dict:
        return ctl.readiness()

    def mode(req: Request) -> dict:
        cell = ctl.mode
        if cell is None:
            if req.param is not None:
                return {"error": f"{ctl.name} cannot change its mode at run time"}
            return {"mode": ctl.info.get("mode"), "active": {}, "modes": []}
        if req.param is not None:
            cell.request(req.param)  # ControlError -> {"error": ...}
        active = dict(zip(ctl.workers, cell.active(), strict=False))
        return {"mode": cell.requested, "active": active, "modes": list(cell.switchable)}

    def graph(req: Request) -> dict:
        return {"graph": ctl.graph()}

    def clear(req: Request) -> dict:
        return {"cleared": ctl.clear_stats(req.param or "all")}

    def lport_stats(req: Request) -> dict:
        out = {"lports": ctl.lport_stats(req.param)}
        if req.param is None and len(json.dumps(out)) > MAX_OUTPUT_LEN - 64:
            return {"error": "too many lports for one reply: ask /metrics/lport_stats,<lport>"}
        return out

    reg = table.register
    reg("/app/hostname", hostname, "the host name")
    reg("/app/appname", appname, "the application name")
    reg("/app/threads", threads, "threads of the configuration")
    reg("/app/ports", ports, "lports of the configuration")
    reg("/app/stop", thread_ctl, "pause a thread: /app/stop,<thread|all>")
    reg("/app/start", thread_ctl, "resume a thread: /app/start,<thread|all>")
    reg("/app/loglevel", loglevel, "the log level; /app/loglevel,<level> sets it")
    reg("/metrics/port_stats", port_stats, "lport statistics (CNDP keys); ,<lport> for one")
    reg("/metrics/netdev_stats", netdev_stats, "lport statistics summed per netdev")
    reg("/metrics/worker_stats", worker_stats, "per-worker counters")
    reg("/app/info", info, "name, pid, hostname, version, mode, start time")
    reg("/app/config", config, "the configuration as JSON text: /app/config,<offset> pages it")
    reg("/app/port_state", port_state, "lports with admin, bound, XSKMAP state; ,<lport>")
    reg("/app/port_admin", port_admin, "admin state: /app/port_admin,<lport|all>,<up|down>")
    reg("/app/ready", ready, "readiness: workers running, lports bound, in the XSKMAP, up")
    reg("/app/mode", mode, "the forwarding mode; /app/mode,<mode> switches where supported")
    reg("/app/graph", graph, "the app's graph of nodes and edges")
    reg("/metrics/clear", clear, "zero lport counters: /metrics/clear[,<lport|all>]")
    reg("/metrics/lport_stats", lport_stats, "lport counters with labels; ,<lport> for one")
