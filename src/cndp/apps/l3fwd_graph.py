"""l3fwd-graph: CNDP's graph L3 forwarder, in Python.

    l3fwd-graph -c fwd.jsonc [-C] [-b burst] [-L level] [--no-color] [--duration S]
                [--trace N:PATH] [--dot] [--no-node-stats] [telemetry flags]

One worker process per ``fwd:*`` thread of the configuration (``main`` is the main process;
CNDP's ``stats`` thread is the main process's stats screen). Each worker builds its own
graph ``worker_<n>`` after the fork::

    pktdev_rx-<lport> -> pkt_cls -> ip4_lookup -> ip4_rewrite -> pktdev_tx-<lport>
                            |            |  |           |
                        pkt_drop  pkt_drop-miss  pkt_drop-ttl
                                         pkt_drop-remote

Routes: CNDP's static table (198.18.N.0/24 -> lport N, destination MAC
02:00:00:00:00:0N, for the lports 0..7 a thread uses) unless ``options."l3fwd-fib-rules"``
gives ``"<a.b.c.d/len>,<dst-mac>,<lport-index>"`` rules (cndpfwd's l3fwd format). The rewrite
writes the rule's destination MAC and the egress lport's MAC, TTL - 1, checksum updated.

A worker transmits only on its own lports (an AF_XDP TX ring belongs to one socket, and a
socket to one process). Packets whose route leaves by another worker's lport are dropped by
that worker and counted by its ``pkt_drop-remote`` node: any prefix can arrive on any lport,
so refusing such routes would refuse every configuration with two or more fwd threads
(CNDP's own l3fwd-graph.jsonc among them). See docs/l3fwd-graph.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import nodes
from ..app import config as cfgmod
from ..app.idle import IdleManager
from ..app.runtime import PUBLISH_EVERY_S, Runtime, shared_array
from ..errors import CndpError
from ..graph import (
    Graph,
    GraphError,
    format_stats,
    graph_create,
    graph_destroy,
    node_clone,
    node_def,
    node_edge_get,
    node_edge_update,
)
from ..graph.stats import NodeStats
from ..lib.fib import Fib
from ..telemetry import service as telemetry
from ..telemetry.app import port_stats_cndp
from ..telemetry.uds import MAX_OUTPUT_LEN, Request
from .cndpfwd import App, StatsScreen, UsageError, add_app_args, check_app_args, run_app
from .fwd_steer import FibRule, parse_fib_rules

log = logging.getLogger("cndp.l3fwd_graph")

PROG = "l3fwd-graph"
MODE = "l3fwd-graph"
MAX_BURST = 256
RULES_KEY = 'options."l3fwd-fib-rules"'
DEFAULT_NET = (198 << 24) | (18 << 16)  # 198.18.0.0: CNDP's static routes, RFC 2544 range
DEFAULT_ROUTES = 8  # CNDP: 198.18.0.0/24 .. 198.18.7.0/24
MAX_ROUTES = (1 << 15) - 1  # FIB next hops (nh_sz 2: 15 bits); one hop per rule
DROP_MISS = "pkt_drop-miss"  # ip4_lookup: no route
DROP_TTL = "pkt_drop-ttl"  # ip4_rewrite: TTL <= 1
DROP_REMOTE = "pkt_drop-remote"  # ip4_lookup: the route leaves by another worker's lport
DESC_BYTES = 1 << 16  # a worker's graph description (JSON) in shared memory
MAX_TRACE = 1 << 20

__all__ = [
    "DROP_MISS",
    "DROP_REMOTE",
    "DROP_TTL",
    "L3fwdGraph",
    "build_graph",
    "default_routes",
    "graph_name",
    "main",
    "parse_args",
    "parse_trace",
    "route_text",
    "routes_from_config",
]


# ---------------------------------------------------------------------------------- routes
def default_routes(lpids: Sequence[int] | set[int]) -> list[FibRule]:
    """CNDP's static table: 198.18.N.0/24 -> lport N with destination MAC
    02:00:00:00:00:0N (locally administered), for N in 0..7 among ``lpids``."""
    have = set(lpids)
    return [
        FibRule(DEFAULT_NET | (n << 8), 24, bytes((2, 0, 0, 0, 0, n)), n)
        for n in range(DEFAULT_ROUTES)
        if n in have
    ]


def route_text(r: FibRule) -> str:
    return f"{ipaddress.IPv4Address(r.prefix)}/{r.depth}"


def routes_from_config(
    rules: Any, lpids: set[int], used: Mapping[int, str]
) -> tuple[list[FibRule], str]:
    """The routes of a run and where they come from. ``lpids``: every lport index of the
    configuration; ``used``: lport index -> name, for the lports a thread owns. Rules are
    checked here, in the main process, so a bad one stops the app before anything is
    attached."""
    if rules is None:
        return default_routes(set(used)), "CNDP's static routes"
    if not isinstance(rules, list) or not rules:
        raise UsageError(
            f"{RULES_KEY} must be a non-empty list of strings",
            fix='e.g. "l3fwd-fib-rules": ["198.18.1.0/24,02:00:00:00:00:01,1"], or leave it '
            "out for CNDP's static routes",
        )
    if len(rules) > MAX_ROUTES:
        raise UsageError(
            f"{RULES_KEY} has {len(rules)} rules; at most {MAX_ROUTES} are supported",
            fix="aggregate prefixes",
        )
    parsed = parse_fib_rules(rules, lpids)
    for i, r in enumerate(parsed):
        if r.lport not in used:
            raise UsageError(
                f"{RULES_KEY}[{i}] {rules[i]!r}: lport {r.lport} is not used by any fwd thread, "
                "so nothing can send there",
                fix=f"route to one of the lports the threads use: {sorted(used)}, or add lport "
                f"{r.lport} to a fwd thread",
            )
    return parsed, RULES_KEY


def parse_trace(text: str) -> tuple[int, str]:
    """``--trace N:PATH``: trace the next N packets of each worker's graph."""
    n, sep, path = str(text).partition(":")
    n = n.strip()
    if not sep or not path or not n.isdigit() or not 1 <= int(n) <= MAX_TRACE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N:PATH with N in 1..{MAX_TRACE} (e.g. 16:/tmp/l3fwd)"
        )
    return int(n), path


# ------------------------------------------------------------------------------ arguments
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="CNDP l3fwd-graph (Python): IPv4 forwarding on a packet graph per worker.",
        epilog="routes: options.\"l3fwd-fib-rules\" ['<a.b.c.d/len>,<dst-mac>,<lport-index>', "
        "...], else 198.18.N.0/24 -> lport N (N < 8), dst MAC 02:00:00:00:00:0N",
    )
    add_app_args(
        ap,
        burst_help=f"graph burst size, 1..{MAX_BURST} (default {MAX_BURST})",
        debug_help="more logging (CNDP's debug-stats/decode/verbose/parse flags)",
    )
    ap.add_argument(
        "--trace",
        type=parse_trace,
        metavar="N:PATH",
        help="record the next N packets of each worker's graph to PATH.worker_<n>.pcap and "
        "their node paths to PATH.worker_<n>.json (and .txt), then forward on",
    )
    ap.add_argument(
        "--dot",
        action="store_true",
        help="print each worker's graph in graphviz dot on stdout and stop "
        "(the lports are opened: the graph's nodes need them)",
    )
    ap.add_argument(
        "--no-node-stats",
        dest="node_stats",
        action="store_false",
        help="no per-node counters (the graph walk reads no clock); /app/graph shows zeros",
    )
    # what cndpfwd's App reads: the one mode, the pktdev API the graph nodes use
    ap.set_defaults(mode=MODE, api="pktdev", dst_mac=None)
    args = ap.parse_args(argv)
    check_app_args(ap, args)
    return args


# ---------------------------------------------------------------------------------- graph
def graph_name(index: int) -> str:
    """The graph of the index-th worker (CNDP: worker_<thread id>)."""
    return f"worker_{index}"


def _clone(parent: str, suffix: str) -> str:
    name = f"{parent}-{suffix}"
    try:
        node_def(name)
    except GraphError:
        node_clone(parent, suffix)
    return name


def _edge(node: str, target: str) -> int:
    """Index of ``node``'s edge to ``target``, appending it when missing."""
    edges = node_edge_get(node)
    if target not in edges:
        node_edge_update(node, None, [target])
        edges = node_edge_get(node)
    return edges.index(target)


def build_graph(
    name: str,
    ports: Mapping[int, Any],
    routes: Sequence[FibRule],
    *,
    burst: int = MAX_BURST,
    stats: bool = True,
) -> Graph:
    """This worker's l3fwd graph over its ``ports`` (config lport index -> open pktdev Port).

    Nodes are named by config lport index (``pktdev_rx-<lpid>``, CNDP's names), whatever id
    the port got in this process. ip4_lookup's miss edge goes to ``pkt_drop-miss``, its
    routes to other workers' lports to ``pkt_drop-remote``, and ip4_rewrite's TTL drops to
    ``pkt_drop-ttl``, so each reason has its own counter. The FIB is a DIR-24-8 with 2-byte
    entries (next hop = rule number; a 32 MiB table the kernel maps only where routes are)
    followed by one gather into the CNDP-encoded ``(edge << 16) | next_hop`` results.

    Changes the standard nodes' edges and tables of the calling process: call it once per
    process (a worker, after the fork), or inside ``cndp.graph.isolated_registry()``.
    """
    nodes.register()
    nodes.reset()
    miss = _clone(nodes.PKT_DROP, "miss")
    ttl = _clone(nodes.PKT_DROP, "ttl")
    node_edge_update(nodes.IP4_LOOKUP, nodes.IP4_LOOKUP_NEXT_PKT_DROP, [miss])
    node_edge_update(nodes.IP4_REWRITE, 0, [ttl])
    patterns: list[str] = []
    tx_names: list[str] = []
    for lpid, port in ports.items():
        rx = _clone(nodes.PKTDEV_RX, str(lpid))
        tx = _clone(nodes.PKTDEV_TX, str(lpid))
        node_def(rx).data["lport"] = port.lport
        node_def(tx).data["lport"] = port.lport
        nodes.ip4_rewrite_set_port(port.lport, _edge(nodes.IP4_REWRITE, tx))
        patterns.append(rx)
        tx_names.append(tx)
    sinks = [nodes.PKT_DROP, miss, ttl]
    remote_edge = None
    if any(r.lport not in ports for r in routes):
        remote_edge = _edge(nodes.IP4_LOOKUP, _clone(nodes.PKT_DROP, "remote"))
        sinks.append(DROP_REMOTE)
    fib = Fib(name, nh_sz=2, default_nh=0, num_tbl8=min(max(16, len(routes) + 1), 1 << 15))
    results = np.zeros(len(routes) + 1, np.uint32)
    results[0] = nodes.IP4_LOOKUP_NEXT_PKT_DROP << 16  # hop 0: no route (the miss edge)
    # a loop over the routes: table building, slow path
    for hop, r in enumerate(routes, start=1):
        fib.add(r.prefix, r.depth, hop)  # a later rule for the same prefix wins (cne_fib_add)
        port = ports.get(r.lport)
        if port is None:
            results[hop] = (remote_edge << 16) | hop
            continue
        nodes.ip4_rewrite_add(hop, r.mac + bytes(port.mac), port.lport)
        results[hop] = (nodes.IP4_LOOKUP_NEXT_REWRITE << 16) | hop
    lookup = fib.lookup_bulk
    nodes.ip4_lookup_set(lambda dst: results.take(lookup(dst)))
    patterns += [nodes.PKT_CLS, nodes.IP4_LOOKUP, nodes.IP4_REWRITE, *tx_names, *sinks]
    return graph_create(name, patterns, burst=burst, stats=stats)


def describe_graph(g: Graph, *, thread: str, lport_names: Mapping[int, str]) -> dict[str, Any]:
    """The graph as /app/graph shows it (stats are added from the shared counters):
    ``lport_names`` maps an rx/tx node's config lport index to the lport's name."""
    out_nodes = []
    for gn in g.nodes:
        d: dict[str, Any] = {
            "name": gn.name,
            "id": gn.id,
            "kind": "source" if gn.source else ("sink" if not gn.edges else "node"),
        }
        base, _, tail = gn.name.partition("-")
        if base in (nodes.PKTDEV_RX, nodes.PKTDEV_TX) and tail.isdigit():
            d["lport"] = lport_names.get(int(tail), "")
        out_nodes.append(d)
    edges = [
        {"from": gn.name, "to": t.name, "edge": i} for gn in g.nodes for i, t in enumerate(gn.edges)
    ]
    return {
        "name": g.name,
        "thread": thread,
        "burst": g.burst,
        "nodes": out_nodes,
        "edges": edges,
        "dot": g.dot(),
    }


class GraphBoard:
    """What the workers' graphs show the main process, in shared memory made before the
    fork: per worker, the graph's description (JSON, written once when the graph exists)
    and its node counters (``Graph.stats_into``, rewritten at every publish)."""

    def __init__(self, nworkers: int, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.stats = shared_array((nworkers, max_nodes, 4), np.int64)
        self.meta = shared_array((nworkers, 2), np.int64)  # [description bytes, walks]
        self.desc = shared_array((nworkers, DESC_BYTES), np.uint8)
        self._parsed: dict[int, dict[str, Any]] = {}

    # worker side
    def describe(self, i: int, desc: dict[str, Any]) -> None:
        raw = json.dumps(desc, separators=(",", ":")).encode()
        if len(raw) > DESC_BYTES or len(desc["nodes"]) > self.max_nodes:
            raise CndpError(
                f"graph {desc['name']!r}: {len(desc['nodes'])} nodes, {len(raw)} bytes of "
                f"description; the board holds {self.max_nodes} nodes, {DESC_BYTES} bytes",
                fix="give the thread fewer lports",
            )
        self.desc[i, : len(raw)] = np.frombuffer(raw, np.uint8)
        self.meta[i, 0] = len(raw)  # last: the description is complete once this is set

    def publish(self, i: int, g: Graph) -> None:
        g.stats_into(self.stats[i, : len(g.nodes)])
        self.meta[i, 1] = g.walks

    # main side
    def description(self, i: int) -> dict[str, Any] | None:
        d = self._parsed.get(i)
        if d is None:
            n = int(self.meta[i, 0])
            if not n:
                return None
            d = self._parsed[i] = json.loads(bytes(self.desc[i, :n]))
        return d

    def node_stats(self, i: int) -> list[NodeStats]:
        d = self.description(i)
        if d is None:
            return []
        arr = self.stats[i, : len(d["nodes"])].copy()
        return [
            NodeStats(n["name"], n["id"], int(r[0]), int(r[1]), int(r[2]), int(r[3]))
            for n, r in zip(d["nodes"], arr.tolist(), strict=True)
        ]

    def walks(self, i: int) -> int:
        return int(self.meta[i, 1])


# ------------------------------------------------------------------------------------ app
class L3fwdGraph(App):
    """cndpfwd's App (config checks, XDP programs, UMEMs, device-plugin sockets, runtime,
    telemetry, signals, teardown) with a graph per worker instead of a mode loop."""

    PROG = PROG
    MODES = {MODE: MODE}
    THREAD_TYPES = ("fwd",)
    SKIP_THREADS = ("main", "stats")  # CNDP's stats thread: our main process's screen

    def __init__(self, cfg: cfgmod.Config, args: argparse.Namespace):
        super().__init__(cfg, args)
        self.node_stats = bool(getattr(args, "node_stats", True))
        self.trace: tuple[int, str] | None = getattr(args, "trace", None)
        self.dot = bool(getattr(args, "dot", False))
        self._check_umems()
        used = {cfg.lport(n).lpid: n for n in self.owner}
        lpids = {lp.lpid for lp in cfg.lports.values()}
        self.routes, self.route_source = routes_from_config(
            cfg.option("l3fwd-fib-rules"), lpids, used
        )
        self.lport_owner = {cfg.lport(n).lpid: th for n, th in self.owner.items()}
        self.lport_names = {lp.lpid: lp.name for lp in cfg.lports.values()}
        if self.trace is not None:
            parent = Path(self.trace[1]).parent
            if not parent.is_dir():
                raise UsageError(
                    f"--trace {self.trace[0]}:{self.trace[1]}: directory {str(parent)!r} "
                    "does not exist",
                    fix="create it or trace to another path",
                )
        self.board: GraphBoard | None = None
        self._pools: dict[tuple[str, int], Any] = {}
        self._warn_remote()

    def _check_umems(self) -> None:
        """A graph's nodes read one UMEM: a worker's lports must share it."""
        for t in self.fwd_threads:
            umems: dict[str, str] = {}
            for name in t.lports:
                umems.setdefault(self.cfg.lport(name).umem, name)
            if len(umems) > 1:
                (u0, n0), (u1, n1) = list(umems.items())[:2]
                raise UsageError(
                    f"thread {t.name!r}: lport {n0!r} uses umem {u0!r} and lport {n1!r} umem "
                    f"{u1!r}; a worker's graph forwards frames within one UMEM",
                    fix="put the lports of one thread on regions of one umem",
                )

    def _warn_remote(self) -> None:
        """Say once which routes each worker drops (their egress is another worker's)."""
        for t in self.fwd_threads:
            mine = {self.cfg.lport(n).lpid for n in t.lports}
            far = [r for r in self.routes if r.lport not in mine]
            if not far:
                continue
            shown = ", ".join(
                f"{route_text(r)} -> lport {r.lport} ({self.lport_owner[r.lport]})" for r in far[:3]
            )
            more = f" and {len(far) - 3} more" if len(far) > 3 else ""
            log.warning(
                "%s drops packets routed to another worker's lport (counted by %s): %s%s",
                t.name,
                DROP_REMOTE,
                shown,
                more,
            )

    # ------------------------------------------------------------ main-process setup
    def setup(self) -> None:
        super().setup()
        cfg = self.cfg
        # region-routed pools: a frame received on one lport and sent by another goes back to
        # its own region's pool on completion (all within the worker: no remote rings)
        self.route = {
            "ret": {},
            "region_owner": {
                (cfg.lport(n).umem, cfg.lport(n).region): th for n, th in self.owner.items()
            },
        }
        most = max(len(t.lports) for t in self.fwd_threads)
        self.board = GraphBoard(len(self.fwd_threads), 2 * most + 16)

    def routed_pools(self) -> bool:
        return True

    def _pool_for(self, worker: str, lp) -> Any:
        key = (lp.umem, lp.region)  # lports of one region share its pool (never two pools)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = super()._pool_for(worker, lp)
        return pool

    def _mode_cell(self, nworkers: int) -> None:
        return None  # one mode: /app/mode reports it, cannot switch

    # ------------------------------------------------------------ worker side
    def worker(self, ctx) -> None:
        spec = ctx.spec
        ports = {self.cfg.lport(n).lpid: ctx.ports[n] for n in spec.lports}
        name = graph_name(ctx.index)
        g = build_graph(name, ports, self.routes, burst=self.burst, stats=self.node_stats)
        board = self.board
        assert board is not None
        try:
            board.describe(
                ctx.index, describe_graph(g, thread=spec.name, lport_names=self.lport_names)
            )
            log.info("worker %s: graph %s with %d nodes", spec.name, name, len(g.nodes))
            self._walk(ctx, g, board, ports)
        finally:
            with contextlib.suppress(Exception):
                nodes.pktdev_flush(g, 0.5)
            board.publish(ctx.index, g)
            graph_destroy(g)

    def _walk(self, ctx, g: Graph, board: GraphBoard, ports: Mapping[int, Any]) -> None:
        spec = ctx.spec
        trace = None
        if self.trace is not None:
            n, path = self.trace
            trace = g.trace(n, f"{path}.{g.name}.pcap", log_path=f"{path}.{g.name}.json")
        fds = [p.fileno() for p in ports.values()]
        idle = IdleManager(
            [fd for fd in fds if fd is not None],
            spec.idle_timeout,
            spec.intr_timeout,
            name=spec.name,
        )
        stop = ctx.stop_flag
        loops = 0
        next_pub = 0.0
        try:
            while not stop[0]:
                got = g.walk()
                if not got:
                    g.idle()  # TX nodes reap completions and kick their sockets
                idle.process(got)
                loops += 1
                if loops & 63:
                    continue
                now = time.monotonic()
                if now < next_pub:
                    continue
                next_pub = now + PUBLISH_EVERY_S
                board.publish(ctx.index, g)
                ctx.publish({"loops": loops, **idle.stats()})  # admin, clear, pause, log level
                if trace is not None and trace.done:
                    self._trace_done(trace, spec.name, ports)
                    trace = None
        finally:
            if trace is not None:
                trace.stop()  # write what was captured
                self._trace_done(trace, spec.name, ports)
            ctx.publish({"loops": loops, **idle.stats()})
            idle.close()

    def _trace_done(self, trace, thread: str, ports: Mapping[int, Any]) -> None:
        """Add the worker and each packet's lport (name, config index) to the trace's JSON:
        its ``port`` field is the port id in this worker process."""
        by_id = {p.lport: lpid for lpid, p in ports.items()}
        try:
            doc = json.loads(trace.log_path.read_text())
            doc["thread"] = thread
            for p in doc["packets"]:
                lpid = by_id.get(p["port"])
                p["lpid"] = lpid
                p["lport"] = self.lport_names.get(lpid) if lpid is not None else None
            trace.log_path.write_text(json.dumps(doc, indent=1) + "\n")
        except (OSError, ValueError, KeyError) as e:
            log.warning("trace %s: cannot annotate: %s", trace.log_path, e)
        log.info("%s: trace of %d packet(s) in %s", thread, len(trace.packets), trace.pcap_path)

    # ------------------------------------------------------------ hooks of run()
    def describe(self) -> str:
        return f"{len(self.routes)} route(s) from {self.route_source}, burst {self.burst}"

    def telemetry_started(self, tel: telemetry.AppTelemetry) -> None:
        table = tel.table

        def host(req: Request) -> dict:
            return {"hostname": socket.gethostname()}

        def app(req: Request) -> dict:
            return {"name": PROG}

        def stats(req: Request) -> dict:
            out: dict[str, int] = {}
            for name, st in tel.control.port_stats().items():
                out.update(port_stats_cndp(name, st))
            return out

        def graph(req: Request) -> dict:
            view = self.graph_view(req.param)
            if "error" in view:
                return view
            reply = {"graph": view}
            if len(json.dumps(reply)) > MAX_OUTPUT_LEN - 64:
                return {
                    "error": "the graphs do not fit one reply: ask /app/graph,<thread or graph>"
                }
            return reply

        table.register("/metrics/host", host, "the host name (CNDP l3fwd-graph)")
        table.register("/metrics/app", app, "the application name (CNDP l3fwd-graph)")
        table.register("/metrics/stats", stats, "lport statistics, CNDP keys (l3fwd-graph)")
        table.unregister("/app/graph")
        table.register(
            "/app/graph", graph, "each worker's graph: nodes, edges, node counters; ,<thread>"
        )
        tel.control.graph_fn = self.graph_view

    def graph_view(self, which: str | None = None) -> dict[str, Any]:
        """Every worker's graph (or the one of thread/graph ``which``) with its counters, and
        a flat nodes/edges view (names ``<graph>/<node>``) for generic consumers."""
        board = self.board
        graphs: list[dict[str, Any]] = []
        for i, t in enumerate(self.fwd_threads):
            gname = graph_name(i)
            if which not in (None, t.name, gname):
                continue
            d = board.description(i) if board is not None else None
            if d is None:
                graphs.append({"name": gname, "thread": t.name, "state": "starting"})
                continue
            st = {s.name: s for s in board.node_stats(i)}
            graphs.append(
                {
                    "name": gname,
                    "thread": t.name,
                    "burst": d["burst"],
                    "walks": board.walks(i),
                    "stats": self.node_stats,
                    "nodes": [
                        {
                            **n,
                            "calls": st[n["name"]].calls,
                            "objs": st[n["name"]].objs,
                            "ns": st[n["name"]].ns,
                            "realloc": st[n["name"]].realloc_count,
                        }
                        for n in d["nodes"]
                    ],
                    "edges": d["edges"],
                }
            )
        if which is not None and not graphs:
            names = [t.name for t in self.fwd_threads]
            return {"error": f"no thread or graph {which!r}; threads: {', '.join(names)}"}
        flat_nodes = [
            {"name": f"{g['name']}/{n['name']}", "kind": n["kind"], "graph": g["name"]}
            for g in graphs
            for n in g.get("nodes", [])
        ]
        flat_edges = [
            {"from": f"{g['name']}/{e['from']}", "to": f"{g['name']}/{e['to']}"}
            for g in graphs
            for e in g.get("edges", [])
        ]
        return {
            "name": PROG,
            "mode": MODE,
            "graphs": graphs,
            "nodes": flat_nodes,
            "edges": flat_edges,
        }

    def main_loop(self, rt: Runtime, tel: telemetry.AppTelemetry, lports: list[str]) -> int:
        if self.dot:
            return self._print_dot(rt)
        screen = GraphScreen(
            rt.stats,
            lports,
            board=self.board,
            graphs=[graph_name(i) for i in range(len(self.fwd_threads))],
            color=self.color,
            burst=self.burst,
        )
        return self.run_screen(rt, tel, screen)

    def _print_dot(self, rt: Runtime, timeout: float = 20.0) -> int:
        """--dot: wait for every worker's graph, print them, stop."""
        board = self.board
        assert board is not None
        n = len(self.fwd_threads)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not rt.stop_flag[0]:
            if all(board.description(i) is not None for i in range(n)):
                break
            if any(not p.is_alive() for p in rt.procs):
                break
            time.sleep(0.02)
        missing = [self.fwd_threads[i].name for i in range(n) if board.description(i) is None]
        for i in range(n):
            d = board.description(i)
            if d is not None:
                sys.stdout.write(f"// {d['name']}: thread {d['thread']}\n{d['dot']}\n")
        sys.stdout.flush()
        status = rt.stop()
        if missing:
            print(f"{PROG}: no graph from {', '.join(missing)}", file=sys.stderr)
            return 1
        return status


class GraphScreen(StatsScreen):
    """cndpfwd's port screen plus the node table of CNDP l3fwd-graph's stats thread (nodes
    added up over the workers' graphs); the final report adds each graph's counters."""

    def __init__(
        self,
        stats,
        lports: list[str],
        *,
        board: GraphBoard | None,
        graphs: list[str],
        color: bool,
        burst: int,
    ):
        super().__init__(stats, lports, color=color, mode=MODE, api="pktdev", dst_mac=None)
        self.header = f"{PROG} (Python)  {len(graphs)} graph(s)  burst {burst}"
        self.board = board
        self.graphs = graphs
        self.prev_nodes: dict[int, NodeStats] = {}
        self._ids: dict[str, int] = {}
        self.t_nodes = time.monotonic()

    def cluster(self) -> list[NodeStats]:
        """Each node added up over the graphs, by name (node ids are per worker process, so
        two workers' clones may share one); a row's id is the order its name was first seen."""
        acc: dict[str, list[int]] = {}
        for i in range(len(self.graphs)):
            for s in self.board.node_stats(i) if self.board is not None else []:
                a = acc.setdefault(s.name, [0, 0, 0, 0])
                a[0] += s.calls
                a[1] += s.objs
                a[2] += s.ns
                a[3] += s.realloc_count
        ids = self._ids
        return [NodeStats(n, ids.setdefault(n, len(ids)), *v) for n, v in acc.items()]

    def tick(self) -> None:
        super().tick()
        now = time.monotonic()
        rows = self.cluster()
        print(format_stats(rows, self.prev_nodes, max(now - self.t_nodes, 1e-6)), flush=True)
        self.prev_nodes = {r.id: r for r in rows}
        self.t_nodes = now

    def final(self) -> None:
        super().final()
        for i, gname in enumerate(self.graphs):
            for s in self.board.node_stats(i) if self.board is not None else []:
                print(
                    f"{gname} {s.name}: calls {s.calls} objs {s.objs} ns {s.ns}",
                    flush=True,
                )


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    return run_app(parse_args(argv), L3fwdGraph)


if __name__ == "__main__":
    sys.exit(main())
