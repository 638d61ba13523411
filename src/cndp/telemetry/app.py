"""What a running application shows to its control side, and CNDP's command groups on it.

:class:`AppControl` describes the application (name, threads, lports), holds its metrics
registry and the per-worker pause flags, and is what the telemetry socket, the CLI, the
Prometheus exporter and the REST API all read. :func:`register_app_commands` adds CNDP
cndpfwd's ``app`` group and the ``metrics`` group to a :class:`~.uds.CommandTable`.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CndpError
from ..xskdev.xskdev import STAT_KEYS
from . import logs
from .registry import PORT_BLOCK, WORKER_BLOCK, Registry
from .uds import CommandTable, Request

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
        ctl = cls(
            name=name,
            threads=threads,
            ports=ports,
            registry=runtime.registry,
            workers=[w.name for w in runtime.workers],
            pause=runtime.pause,
            info=dict(info),
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
