"""``cndp-exporter``: a Prometheus exporter for CNDP applications, run as a sidecar.

It talks to the applications only through their telemetry sockets: every scrape lists the
``app_socket.*`` files of a runtime directory (``/var/run/cndp``; in a pod an ``emptyDir``
both containers mount), asks each application for its counters and answers in the
Prometheus text format, with node_exporter-style names::

    cndp_port_receive_packets_total{app="cndpfwd",pid="1234",port="eth0:0",queue="0",netdev="eth0"}

Nothing is polled in the background: a scrape reads the applications' shared-memory counters
through their sockets at that moment (a few socket round trips of ~60 us per application).
Applications that appear are picked up at the next scrape; one that stops answering is
reported with ``cndp_up 0`` while its socket file exists, and forgotten when it is gone.

Besides pycndp applications it reads CNDP's own (C) applications: where ``/metrics/lport_stats``
is not known it falls back to CNDP's ``/metrics/port_stats`` key names.

    cndp-exporter [--dir /var/run/cndp] [--socket PATH]... [--listen 127.0.0.1:9470]
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .. import __version__
from ..errors import CndpError
from .app import CNDP_PORT_STATS
from .client import AppClient, AppUnreachable, discover
from .uds import CNDP_VERSION

log = logging.getLogger("cndp.exporter")

__all__ = [
    "APP_LABELS",
    "PORT_COUNTERS",
    "WORKER_COUNTERS",
    "CndpCollector",
    "main",
    "metric_names",
    "parse_listen",
]

DEFAULT_DIR = "/var/run/cndp"
DEFAULT_LISTEN = "127.0.0.1:9470"

APP_LABELS = ("app", "pid")
PORT_LABELS = (*APP_LABELS, "port", "queue", "netdev")
WORKER_LABELS = (*APP_LABELS, "worker")

# lport_stats key -> (metric name without _total, help). rx_rcvd_count is ipackets again.
PORT_COUNTERS: dict[str, tuple[str, str]] = {
    "ipackets": ("cndp_port_receive_packets", "Packets received on the lport (queue)."),
    "ibytes": ("cndp_port_receive_bytes", "Bytes received on the lport."),
    "opackets": ("cndp_port_transmit_packets", "Packets sent on the lport."),
    "obytes": ("cndp_port_transmit_bytes", "Bytes sent on the lport."),
    "ierrors": ("cndp_port_receive_errors", "Receive errors (invalid RX descriptors)."),
    "oerrors": ("cndp_port_transmit_errors", "Transmit errors (invalid TX descriptors)."),
    "imissed": (
        "cndp_port_receive_drop",
        "Packets the kernel dropped for the lport (RX ring full or no fill buffers).",
    ),
    "odropped": ("cndp_port_transmit_drop", "Packets dropped on transmit."),
    "rx_invalid": ("cndp_port_receive_invalid_descriptors", "Invalid RX descriptors (kernel)."),
    "tx_invalid": ("cndp_port_transmit_invalid_descriptors", "Invalid TX descriptors (kernel)."),
    "rx_ring_empty": ("cndp_port_receive_ring_empty", "RX polls that found the ring empty."),
    "rx_buf_alloc": ("cndp_port_receive_buffers_allocated", "Buffers handed to the kernel."),
    "rx_busypoll_wakeup": ("cndp_port_receive_busypoll_wakeups", "Busy-poll wakeups on RX."),
    "rx_poll_wakeup": ("cndp_port_receive_poll_wakeups", "poll() wakeups on RX."),
    "rx_burst_called": ("cndp_port_receive_bursts", "rx_burst calls."),
    "rx_ring_full": ("cndp_port_receive_ring_full", "Packets dropped: the RX ring was full."),
    "rx_fill_ring_empty": (
        "cndp_port_fill_ring_empty",
        "Times the kernel found the fill ring empty.",
    ),
    "tx_ring_empty": ("cndp_port_transmit_ring_empty", "Times the kernel found the TX ring empty."),
    "fq_add_called": ("cndp_port_fill_queue_add_calls", "Fill-queue refill calls."),
    "fq_add_count": ("cndp_port_fill_queue_added", "Buffers added to the fill queue."),
    "fq_full": ("cndp_port_fill_queue_full", "Refills that found the fill queue full."),
    "fq_alloc_zero": ("cndp_port_fill_queue_alloc_zero", "Refills that got no buffer."),
    "fq_reserve_failed": ("cndp_port_fill_queue_reserve_failed", "Fill-queue reserve failures."),
    "tx_kicks": ("cndp_port_transmit_kicks", "sendto() kicks of the TX ring."),
    "tx_kick_failed": ("cndp_port_transmit_kick_failures", "TX kicks that failed."),
    "tx_kick_again": ("cndp_port_transmit_kick_again", "TX kicks answered EAGAIN/EBUSY."),
    "tx_ring_full": ("cndp_port_transmit_ring_full", "Transmits that found the TX ring full."),
    "tx_copied": ("cndp_port_transmit_copied", "Packets copied into another UMEM to be sent."),
    "cq_empty": ("cndp_port_completion_queue_empty", "Reaps that found the completion ring empty."),
    "cq_buf_freed": ("cndp_port_completion_queue_freed", "Buffers freed from the completion ring."),
}
_SKIP_PORT_KEYS = frozenset({"rx_rcvd_count"})

# worker key -> (name, help, counter?)
WORKER_COUNTERS: dict[str, tuple[str, str, bool]] = {
    "loops": ("cndp_worker_loops", "Poll-loop iterations (counted in steps of 256).", True),
    "rx_packets": ("cndp_worker_receive_packets", "Packets received on the worker's lports.", True),
    "tx_packets": ("cndp_worker_transmit_packets", "Packets sent on the worker's lports.", True),
    "rx_bytes": ("cndp_worker_receive_bytes", "Bytes received on the worker's lports.", True),
    "tx_bytes": ("cndp_worker_transmit_bytes", "Bytes sent on the worker's lports.", True),
    "called_epoll": ("cndp_worker_idle_waits", "Idle waits in epoll (idle_timeout reached).", True),
    "intr_timedout": ("cndp_worker_idle_timeouts", "Idle waits that ended by timeout.", True),
    "intr_woken": ("cndp_worker_idle_wakeups", "Idle waits ended by arriving packets.", True),
    "paused": ("cndp_worker_paused", "1 while the worker is paused (/app/stop).", False),
    "pid": ("cndp_worker_process_id", "Process id of the worker.", False),
}

# CNDP's /metrics/port_stats suffix -> lport_stats key (C applications)
_CNDP_SUFFIX = {suffix: key for key, suffix in CNDP_PORT_STATS}
_SUFFIX_RE = re.compile(
    "_(" + "|".join(re.escape(s) for s in sorted(_CNDP_SUFFIX, key=len, reverse=True)) + ")$"
)
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(key: str) -> str:
    """A counter an application added to the lport block -> cndp_port_<key> (sanitised)."""
    return "cndp_port_" + _NAME_RE.sub("_", key).strip("_").lower()


def metric_names() -> set[str]:
    """Every metric name (as exposed, with ``_total``) the exporter can produce for the
    standard blocks: what dashboards may refer to."""
    names = {f"{n}_total" for n, _ in PORT_COUNTERS.values()}
    names |= {f"{n}_total" if c else n for n, _, c in WORKER_COUNTERS.values()}
    names |= {
        "cndp_up",
        "cndp_ready",
        "cndp_app_info",
        "cndp_app_start_time_seconds",
        "cndp_build_info",
        "cndp_exporter_apps",
        "cndp_scrape_duration_seconds",
        "cndp_port_admin_up",
        "cndp_port_bound",
        "cndp_port_xskmap",
        "cndp_port_publish_age_seconds",
    }
    return names


class _Families:
    """The metric families of one scrape, created on first use."""

    def __init__(self) -> None:
        self.fams: dict[str, Metric] = {}

    def counter(self, name: str, help: str, labels: tuple[str, ...]) -> CounterMetricFamily:
        f = self.fams.get(name)
        if f is None:
            f = self.fams[name] = CounterMetricFamily(name, help, labels=list(labels))
        return f  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
        f = self.fams.get(name)
        if f is None:
            f = self.fams[name] = GaugeMetricFamily(name, help, labels=list(labels))
        return f  # type: ignore[return-value]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    return None


class CndpCollector(Collector):
    """Scrape-time reads of every application found in ``directory`` (and ``sockets``)."""

    def __init__(
        self,
        directory: str | None = DEFAULT_DIR,
        sockets: Iterable[str] = (),
        *,
        timeout: float = 1.0,
    ):
        self.directory = directory
        self.sockets = list(sockets)
        self.timeout = timeout
        self._clients: dict[str, AppClient] = {}
        self._names: dict[str, str] = {}  # socket path -> app name last seen (for cndp_up 0)
        self._lock = threading.Lock()  # overlapping scrapes take turns

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are dynamic (extra lport counters): no collision checks

    def paths(self) -> list[str]:
        found = discover(self.directory) if self.directory else []
        return sorted(set(found) | set(self.sockets))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from self._collect()

    def _collect(self) -> list[Metric]:
        f = _Families()
        f.gauge(
            "cndp_build_info",
            "pycndp version of the exporter, the CNDP protocol version and Python.",
            ("version", "cndp", "python"),
        ).add_metric([__version__, CNDP_VERSION, platform.python_version()], 1)
        paths = self.paths()
        for gone in set(self._clients) - set(paths):
            self._clients.pop(gone).close()
            self._names.pop(gone, None)
        f.gauge("cndp_exporter_apps", "Telemetry sockets found.", ()).add_metric([], len(paths))
        up = f.gauge("cndp_up", "1 if the application's telemetry socket answered.", APP_LABELS)
        for path in paths:
            c = self._clients.get(path)
            if c is None:
                c = self._clients[path] = AppClient(path, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                name = self._scrape(c, f)
            except (AppUnreachable, CndpError) as e:
                log.info("%s", e)
                up.add_metric([self._names.get(path, ""), str(c.pid or "")], 0)
                continue
            self._names[path] = name
            pid = str(c.pid or "")
            up.add_metric([name, pid], 1)
            f.gauge(
                "cndp_scrape_duration_seconds",
                "Time the exporter took to read the application.",
                APP_LABELS,
            ).add_metric([name, pid], time.perf_counter() - t0)
        return list(f.fams.values())

    # ------------------------------------------------------------------ one application
    def _scrape(self, c: AppClient, f: _Families) -> str:
        info = c.ask("/app/info")
        if "error" in info:  # a CNDP (C) application: fewer commands
            info = {"name": c.ask("/app/appname").get("name") or "unknown"}
        name = str(info.get("name") or "unknown")
        pid = str(c.pid or "")
        app = [name, pid]
        f.gauge(
            "cndp_app_info",
            "The application: version, mode, packet API, host.",
            (*APP_LABELS, "version", "mode", "api", "hostname"),
        ).add_metric(
            [
                *app,
                str(c.info.get("version", "")),
                str(info.get("mode", "")),
                str(info.get("api", "")),
                str(info.get("hostname", "")),
            ],
            1,
        )
        if isinstance(info.get("started"), int | float):
            f.gauge(
                "cndp_app_start_time_seconds",
                "Start time of the application (Unix time).",
                APP_LABELS,
            ).add_metric(app, float(info["started"]))
        self._ports(c, f, app)
        self._workers(c, f, app)
        ready = c.ask("/app/ready")
        if isinstance(ready.get("ready"), bool):
            f.gauge(
                "cndp_ready",
                "1 when workers run and every lport is bound, in the XSKMAP and up.",
                APP_LABELS,
            ).add_metric(app, 1 if ready["ready"] else 0)
        return name

    def _lport_stats(self, c: AppClient) -> dict[str, dict[str, Any]] | None:
        r = c.ask("/metrics/lport_stats")
        if "lports" in r and isinstance(r["lports"], dict):
            return r["lports"]
        err = str(r.get("error", ""))
        if err.startswith("invalid cmd"):
            return None  # not a pycndp application
        ports = c.ask("/app/ports").get("ports") or []
        out: dict[str, dict[str, Any]] = {}
        for p in ports:  # too many lports for one reply: one request each
            nm = p.get("name") if isinstance(p, dict) else None
            if isinstance(nm, str):
                one = c.ask(f"/metrics/lport_stats,{nm}").get("lports")
                if isinstance(one, dict):
                    out.update(one)
        return out

    def _cndp_port_stats(self, c: AppClient) -> dict[str, dict[str, Any]]:
        """CNDP's flat ``<lport>_n_rx_packets`` keys -> lport -> {lport_stats key: v}."""
        flat = c.ask("/metrics/port_stats")
        ports = {}
        for p in c.ask("/app/ports").get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("name"), str):
                ports[p["name"]] = p
        out: dict[str, dict[str, Any]] = {}
        for k, v in flat.items():
            m = _SUFFIX_RE.search(k)
            if m is None or _num(v) is None:
                continue
            lport = k[: m.start()]
            p = ports.get(lport, {})
            entry = out.setdefault(
                lport,
                {
                    "netdev": p.get("netdev", lport.split(":")[0]),
                    "qid": p.get("qid", ""),
                    "stats": {},
                },
            )
            entry["stats"][_CNDP_SUFFIX[m.group(1)]] = v
        return out

    def _ports(self, c: AppClient, f: _Families, app: list[str]) -> None:
        lports = self._lport_stats(c)
        if lports is None:
            lports = self._cndp_port_stats(c)
        for lport, e in lports.items():
            if not isinstance(e, dict):
                continue
            labels = [*app, lport, str(e.get("qid", "")), str(e.get("netdev", ""))]
            stats = e.get("stats") if isinstance(e.get("stats"), dict) else {}
            for key, v in stats.items():
                x = _num(v)
                if x is None or key in _SKIP_PORT_KEYS:
                    continue
                name, help = PORT_COUNTERS.get(key, (None, None))
                if name is None:
                    name, help = _metric_name(key), f"lport counter {key} added by the app."
                f.counter(name, help, PORT_LABELS).add_metric(labels, x)
            age = _num(e.get("age"))
            if age is not None:
                f.gauge(
                    "cndp_port_publish_age_seconds",
                    "Seconds since the worker last published the lport's counters.",
                    PORT_LABELS,
                ).add_metric(labels, age)
        state = c.ask("/app/port_state").get("ports")
        for p in state if isinstance(state, list) else []:
            if not isinstance(p, dict) or "admin" not in p:
                continue
            labels = [*app, str(p.get("name")), str(p.get("qid", "")), str(p.get("netdev", ""))]
            f.gauge(
                "cndp_port_admin_up",
                "1 if the lport is admin up as its worker applied it.",
                PORT_LABELS,
            ).add_metric(labels, 1 if p.get("admin_up") else 0)
            f.gauge(
                "cndp_port_bound", "1 if the lport's socket is bound to its queue.", PORT_LABELS
            ).add_metric(labels, 1 if p.get("bound") else 0)
            if p.get("xsk"):
                f.gauge(
                    "cndp_port_xskmap",
                    "1 if the lport's AF_XDP socket is in the XSKMAP.",
                    PORT_LABELS,
                ).add_metric(labels, 1 if p.get("xskmap") else 0)

    def _workers(self, c: AppClient, f: _Families, app: list[str]) -> None:
        workers = c.ask("/metrics/worker_stats").get("workers")
        if not isinstance(workers, dict):
            return
        for w, row in workers.items():
            if not isinstance(row, dict):
                continue
            for key, v in row.items():
                spec = WORKER_COUNTERS.get(key)
                x = _num(v)
                if spec is None or x is None:
                    continue
                name, help, is_counter = spec
                fam = f.counter if is_counter else f.gauge
                fam(name, help, WORKER_LABELS).add_metric([*app, str(w)], x)


# ------------------------------------------------------------------------------------ CLI


class ListenError(CndpError):
    pass


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (loopback) -> (host, port)."""
    t = text.strip()
    host, sep, port = t.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii() or not 0 <= int(port) <= 65535:
        raise ListenError(
            f"listen address {text[:80]!r} is not HOST:PORT", fix="e.g. 127.0.0.1:9470"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


def build_registry(collector: CndpCollector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="cndp-exporter",
        description="Prometheus exporter for CNDP applications (reads their telemetry sockets).",
    )
    ap.add_argument(
        "--dir",
        default=DEFAULT_DIR,
        help=f"directory of the app_socket.* files (default {DEFAULT_DIR}); '' = none",
    )
    ap.add_argument(
        "--socket", action="append", default=[], metavar="PATH", help="a telemetry socket (again)"
    )
    ap.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT to serve /metrics on (default {DEFAULT_LISTEN}; port 0 = any)",
    )
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds per request to an app")
    ap.add_argument("--once", action="store_true", help="print the metrics once and exit")
    ap.add_argument("-L", dest="level", default="warning", help="log level")
    args = ap.parse_args(argv)
    from prometheus_client import generate_latest, start_http_server

    from . import logs

    try:
        logs.setup(args.level, app="cndp-exporter")
        collector = CndpCollector(args.dir or None, args.socket, timeout=args.timeout)
        registry = build_registry(collector)
        if args.once:
            sys.stdout.write(generate_latest(registry).decode())
            return 0
        host, port = parse_listen(args.listen)
        try:
            server, _ = start_http_server(port, host, registry)
        except OSError as e:
            raise ListenError(
                f"cannot listen on {args.listen}: {e.strerror}",
                errno=e.errno,
                fix="choose another --listen address or port",
            ) from None
    except CndpError as e:
        print(f"cndp-exporter: {e}", file=sys.stderr)
        return 1
    actual = server.server_address
    shown = f"[{actual[0]}]" if ":" in str(actual[0]) else str(actual[0])
    print(
        f"cndp-exporter: listening on http://{shown}:{actual[1]}/metrics "
        f"(apps in {args.dir or '-'}{', ' + ', '.join(args.socket) if args.socket else ''})",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
