"""Graphs of nodes passing packet vectors (CNDP ``cne_graph_*``, DPDK rte_graph semantics).

``graph_create(name, patterns)`` expands fnmatch patterns over the registered node names,
adds every node reachable through edges, checks the result (a source node, no edge into a
source, no self loop, no isolated node) and gives each node a per-graph instance
(:class:`GraphNode`) with its own pending packet vector.

Walk (``graph.walk()``), as rte_graph: every source node runs first (it fills its empty
vector, e.g. from a port); then pending nodes run in FIFO order until none is left. A node's
``process(node, pv)`` returns where its packets go:

- an ``int`` edge: the whole vector moves. When the next node has nothing pending the two
  vectors are swapped (no copy at all: CNDP's "home run" ``cne_node_next_stream_move``),
  otherwise the packets are appended (one slice copy per field);
- an integer array, one edge index per packet: the graph splits the vector with numpy
  (``bincount`` finds the edges used; a single edge is a move as above; two edges cost one
  ``flatnonzero`` plus one gather per field each; more edges one stable ``argsort``, one
  gather per field and a slice copy per field and edge). No Python loop over packets;
- ``None``: the node consumed the packets (sent or freed them, or moved them itself with
  ``node.enqueue``).

Stats (calls, objects, nanoseconds per node) cost nothing when disabled: ``graph.walk`` is
bound to one of three walk functions (plain, with stats, with a packet trace), chosen when
stats or tracing are switched, so the plain walk never reads a clock. Call ``graph.walk()``
each time rather than caching the bound method across such switches.

One graph per worker: graphs are plain per-process objects. Create each worker's graph in
that worker, after the fork (node registrations made before the fork are inherited).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fnmatch
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..mem.pktvec import FIELDS, PktVec
from .node import GraphError, NodeDef, node_def, node_list

if TYPE_CHECKING:
    from pathlib import Path

    from ..mem.umem import Umem
    from .stats import NodeStats
    from .trace import Trace

__all__ = [
    "DEFAULT_BURST",
    "Graph",
    "GraphNode",
    "graph_create",
    "graph_destroy",
    "graph_dump",
    "graph_export",
    "graph_from_name",
    "graph_get",
    "graph_id_to_name",
    "graph_list",
    "graph_list_dump",
    "graph_lookup",
    "graph_max_count",
    "graph_node_get",
    "graph_node_get_by_name",
]

DEFAULT_BURST = 256  # CNE_GRAPH_BURST_SIZE
GRAPH_NAMESIZE = 64
_FIELDS = tuple(FIELDS)


class GraphNode:
    """A node's instance in one graph (CNDP ``struct cne_node``).

    What a process function may use: ``name``, ``id``, ``graph``, ``burst`` (source burst
    size), ``edges`` (next GraphNodes by edge index) and ``edge_names``, ``data`` (static,
    from registration), ``ctx`` (free for the node's own per-graph state, set by ``init``),
    and :meth:`enqueue`. The vector passed to ``process`` is only valid during the call: the
    graph may hand it to another node afterwards, so never keep a reference to it.
    """

    __slots__ = (
        "burst",
        "calls",
        "ctx",
        "data",
        "edge_names",
        "edges",
        "enq_objs",
        "fini",
        "graph",
        "id",
        "idle",
        "init",
        "name",
        "ne",
        "ns",
        "objs",
        "parent_id",
        "process",
        "pv",
        "queued",
        "realloc_count",
        "source",
    )

    def __init__(self, nd: NodeDef, graph: Graph) -> None:
        self.name = nd.name
        self.id = nd.id
        self.parent_id = nd.parent_id
        self.graph = graph
        self.process = nd.process
        self.init = nd.init
        self.fini = nd.fini
        self.idle = nd.idle
        self.source = nd.source
        self.data = dict(nd.data)
        self.edge_names: tuple[str, ...] = tuple(nd.next_nodes)
        self.edges: tuple[GraphNode, ...] = ()
        self.ne = len(self.edge_names)
        self.burst = graph.burst
        self.ctx: Any = None
        self.pv = PktVec(graph.burst)
        self.queued = False
        self.calls = 0
        self.objs = 0
        self.ns = 0
        self.realloc_count = 0
        self.enq_objs = 0

    def __repr__(self) -> str:
        kind = "source" if self.source else "node"
        where = self.graph.name
        return f"<GraphNode {self.name!r} id {self.id} ({kind}, {self.ne} edges) in {where!r}>"

    @property
    def nb_edges(self) -> int:
        return self.ne

    def edge_index(self, name: str) -> int:
        """Index of the edge to the next node ``name`` (for init-time setup)."""
        try:
            return self.edge_names.index(name)
        except ValueError:
            raise GraphError(
                f"node {self.name!r} has no edge to {name!r} (edges: {list(self.edge_names)})",
                errno=_errno.ENOENT,
                fix="add it with node_edge_update before creating the graph",
            ) from None

    def enqueue(self, edge: int, pv: PktVec, which: Any = None) -> int:
        """Copy packets of ``pv`` to the next node on ``edge`` (cne_node_enqueue); returns
        how many. ``which``: None (all ``pv.n``), a ``slice``, a boolean mask of length
        ``pv.n`` or an array of indices below ``pv.n``. The caller still owns ``pv``."""
        if isinstance(edge, bool) or not isinstance(edge, (int, np.integer)):
            raise GraphError(f"node {self.name!r}: edge {edge!r} is not an edge index")
        if not 0 <= edge < self.ne:
            raise GraphError(
                f"node {self.name!r}: edge {int(edge)} does not exist (it has {self.ne})",
                errno=_errno.EINVAL,
            )
        t = self.edges[int(edge)]
        n = pv.n
        if which is None:
            k = n
            if k:
                _append_range(t, pv, 0, n)
        elif isinstance(which, slice):
            lo, hi, step = which.indices(n)
            if step != 1:
                which = np.arange(lo, hi, step)
                return self.enqueue(edge, pv, which)
            k = max(hi - lo, 0)
            if k:
                _append_range(t, pv, lo, hi)
        else:
            sel = np.asarray(which)
            if sel.dtype == np.bool_:
                if sel.shape != (n,):
                    raise GraphError(
                        f"node {self.name!r}: enqueue mask has shape {sel.shape}, the "
                        f"vector has {n} packets"
                    )
                sel = np.flatnonzero(sel)
            elif sel.dtype.kind not in "iu" or sel.ndim != 1:
                raise GraphError(
                    f"node {self.name!r}: enqueue needs a slice, a boolean mask or 1-D "
                    f"integer indices, got {sel.dtype} with shape {sel.shape}"
                )
            elif len(sel) and (int(sel.min()) < 0 or int(sel.max()) >= n):
                raise GraphError(f"node {self.name!r}: enqueue index out of range for {n} packets")
            k = len(sel)
            if k:
                _append_idx(t, pv, sel)
        if k:
            self.enq_objs += k
            if not t.queued:
                t.queued = True
                self.graph._q.append(t)
        return k


# -- moving packets between vectors (a fixed number of numpy calls per move) -----------------


def _grow(t: GraphNode, need: int) -> PktVec:
    """Give node ``t`` a larger pending vector (CNDP realloc of node->objs)."""
    old = t.pv
    new = PktVec(max(need, 2 * old.capacity))
    m = old.n
    for name in _FIELDS:
        getattr(new, name)[:m] = getattr(old, name)[:m]
    new.n = m
    t.pv = new
    t.realloc_count += 1
    return new


def _append_range(t: GraphNode, src: PktVec, lo: int, hi: int) -> None:
    dst = t.pv
    m = dst.n
    k = hi - lo
    if m + k > dst.capacity:
        dst = _grow(t, m + k)
    end = m + k
    for name in _FIELDS:
        getattr(dst, name)[m:end] = getattr(src, name)[lo:hi]
    dst.n = end


def _append_idx(t: GraphNode, src: PktVec, idx: np.ndarray) -> None:
    dst = t.pv
    m = dst.n
    k = len(idx)
    if m + k > dst.capacity:
        dst = _grow(t, m + k)
    end = m + k
    n = src.n
    for name in _FIELDS:
        getattr(dst, name)[m:end] = getattr(src, name)[:n][idx]
    dst.n = end


def _append_cols(t: GraphNode, cols: list[np.ndarray], lo: int, hi: int) -> None:
    dst = t.pv
    m = dst.n
    k = hi - lo
    if m + k > dst.capacity:
        dst = _grow(t, m + k)
    end = m + k
    for name, col in zip(_FIELDS, cols, strict=True):
        getattr(dst, name)[m:end] = col[lo:hi]
    dst.n = end


class Graph:
    """One graph (CNDP ``struct cne_graph``). Build it with :func:`graph_create`."""

    def __init__(
        self, name: str, gid: int, patterns: list[str], burst: int, umem: Umem | None
    ) -> None:
        self.name = name
        self.id = gid
        self.patterns = patterns
        self.burst = burst
        self.umem = umem
        self.nodes: list[GraphNode] = []
        self._by_name: dict[str, GraphNode] = {}
        self._by_id: dict[int, GraphNode] = {}
        self._sources: tuple[GraphNode, ...] = ()
        self._idlers: tuple[GraphNode, ...] = ()
        self._q: deque[GraphNode] = deque()
        self._stats = False
        self._trace: Trace | None = None
        self.walks = 0  # counted only by the stats and trace walks
        self.destroyed = False
        self.walk: Callable[[], int] = self._walk_plain

    def _populate(self, order: list[NodeDef]) -> None:
        nodes = [GraphNode(nd, self) for nd in order]
        by_name = {gn.name: gn for gn in nodes}
        for gn in nodes:
            gn.edges = tuple(by_name[x] for x in gn.edge_names)
        self.nodes = nodes
        self._by_name = by_name
        self._by_id = {gn.id: gn for gn in nodes}
        self._sources = tuple(gn for gn in nodes if gn.source)
        self._idlers = tuple(gn for gn in nodes if gn.idle is not None)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r} id {self.id}: {len(self.nodes)} nodes>"

    # -- lookups -----------------------------------------------------------------------------
    @property
    def sources(self) -> tuple[GraphNode, ...]:
        return self._sources

    def node_get(self, node_id: int) -> GraphNode:
        """This graph's instance of node ``node_id`` (cne_graph_node_get)."""
        gn = self._by_id.get(node_id)  # type: ignore[arg-type]
        if gn is None:
            raise GraphError(
                f"graph {self.name!r} has no node with id {node_id!r}", errno=_errno.ENOENT
            )
        return gn

    def node_get_by_name(self, name: str) -> GraphNode:
        """This graph's instance of the node named ``name`` (cne_graph_get_node_by_name)."""
        gn = self._by_name.get(name)
        if gn is None:
            raise GraphError(
                f"graph {self.name!r} has no node {name!r}",
                errno=_errno.ENOENT,
                fix=f"its nodes: {', '.join(self._by_name)}",
            )
        return gn

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def pending(self) -> int:
        """Packets waiting in node vectors (0 between walks unless a node raised)."""
        return sum(gn.pv.n for gn in self.nodes)

    def require_umem(self, who: str) -> Umem:
        """The graph's UMEM, for nodes that read packet bytes (raises a clear error)."""
        if self.umem is None:
            raise GraphError(
                f"graph {self.name!r}: node {who!r} reads packet bytes but the graph has no UMEM",
                errno=_errno.EINVAL,
                fix="pass umem= to graph_create, or include a pktdev_rx node (it sets the "
                "UMEM of its port)",
            )
        return self.umem

    # -- walking -----------------------------------------------------------------------------
    def _walk_plain(self) -> int:
        """Run the sources, then every pending node; returns packets the sources produced."""
        q = self._q
        got = 0
        for node in self._sources:
            pv = node.pv
            e0 = node.enq_objs
            r = node.process(node, pv)
            k = pv.n
            got += k + node.enq_objs - e0
            if k:
                if r.__class__ is int and 0 <= r < node.ne:
                    t = node.edges[r]
                    tpv = t.pv
                    if tpv.n:
                        _append_range(t, pv, 0, k)
                        pv.n = 0
                    else:
                        t.pv = pv
                        node.pv = tpv
                    if not t.queued:
                        t.queued = True
                        q.append(t)
                else:
                    self._route(node, pv, r)
        while q:
            node = q.popleft()
            node.queued = False
            pv = node.pv
            r = node.process(node, pv)
            k = pv.n
            if k:
                if r.__class__ is int and 0 <= r < node.ne:
                    t = node.edges[r]
                    tpv = t.pv
                    if tpv.n:
                        _append_range(t, pv, 0, k)
                        pv.n = 0
                    else:
                        t.pv = pv
                        node.pv = tpv
                    if not t.queued:
                        t.queued = True
                        q.append(t)
                else:
                    self._route(node, pv, r)
        return got

    def _walk_stats(self) -> int:
        """The plain walk plus calls/objects/nanoseconds per node (routing included)."""
        clock = time.perf_counter_ns
        q = self._q
        got = 0
        self.walks += 1
        for node in self._sources:
            pv = node.pv
            e0 = node.enq_objs
            t0 = clock()
            r = node.process(node, pv)
            k = pv.n
            if k:
                if r.__class__ is int and 0 <= r < node.ne:
                    t = node.edges[r]
                    tpv = t.pv
                    if tpv.n:
                        _append_range(t, pv, 0, k)
                        pv.n = 0
                    else:
                        t.pv = pv
                        node.pv = tpv
                    if not t.queued:
                        t.queued = True
                        q.append(t)
                else:
                    self._route(node, pv, r)
            node.ns += clock() - t0
            k += node.enq_objs - e0
            node.calls += 1
            node.objs += k
            got += k
        while q:
            node = q.popleft()
            node.queued = False
            pv = node.pv
            k = pv.n
            t0 = clock()
            r = node.process(node, pv)
            m = pv.n
            if m:
                if r.__class__ is int and 0 <= r < node.ne:
                    t = node.edges[r]
                    tpv = t.pv
                    if tpv.n:
                        _append_range(t, pv, 0, m)
                        pv.n = 0
                    else:
                        t.pv = pv
                        node.pv = tpv
                    if not t.queued:
                        t.queued = True
                        q.append(t)
                else:
                    self._route(node, pv, r)
            node.ns += clock() - t0
            node.calls += 1
            node.objs += k
        return got

    def _walk_trace(self) -> int:
        """The walk with the packet trace hooks (and stats when enabled): slow path."""
        tr = self._trace
        assert tr is not None
        clock = time.perf_counter_ns
        stats = self._stats
        q = self._q
        got = 0
        self.walks += 1
        tr.begin_walk(self.walks)
        for node in self._sources:
            pv = node.pv
            e0 = node.enq_objs
            t0 = clock()
            r = node.process(node, pv)
            k = pv.n
            if k:
                tr.on_source(node, pv)
                self._route(node, pv, r)
            if stats:
                node.ns += clock() - t0
                node.calls += 1
                node.objs += k + node.enq_objs - e0
            got += k + node.enq_objs - e0
        while q:
            node = q.popleft()
            node.queued = False
            pv = node.pv
            k = pv.n
            tr.on_node(node, pv)
            t0 = clock()
            r = node.process(node, pv)
            if pv.n:
                self._route(node, pv, r)
            if stats:
                node.ns += clock() - t0
                node.calls += 1
                node.objs += k
        tr.end_walk()
        if tr.done:
            self._trace = None
            self._bind_walk()
        return got

    def _bind_walk(self) -> None:
        if self._trace is not None:
            self.walk = self._walk_trace
        elif self._stats:
            self.walk = self._walk_stats
        else:
            self.walk = self._walk_plain

    # -- routing (everything but the int fast path) ------------------------------------------
    def _fail(self, node: GraphNode, pv: PktVec, msg: str, fix: str | None = None) -> GraphError:
        # Clear the vector so the graph stays usable after the error (its frames are lost).
        pv.n = 0
        return GraphError(f"graph {self.name!r}: node {node.name!r} {msg}", fix=fix)

    def _route(self, node: GraphNode, pv: PktVec, r: Any) -> None:
        if r is None:
            pv.n = 0
            return
        if isinstance(r, np.ndarray):
            if r.ndim == 1:
                self._split(node, pv, r)
                return
            if r.ndim == 0 and r.dtype.kind in "iu":
                r = r.item()
        if isinstance(r, (int, np.integer)) and not isinstance(r, (bool, np.bool_)):
            e = int(r)
            if 0 <= e < node.ne:
                self._move(node, pv, node.edges[e])
                return
            raise self._fail(
                node,
                pv,
                f"returned edge {e} but has {node.ne} edge(s) {list(node.edge_names)}",
                fix="return an index into the node's next_nodes",
            )
        raise self._fail(
            node,
            pv,
            f"returned {type(r).__name__} {r!r:.60}; process must return an edge index, "
            "an array of edge indices (one per packet) or None",
        )

    def _move(self, node: GraphNode, pv: PktVec, t: GraphNode) -> None:
        tpv = t.pv
        if tpv.n:
            _append_range(t, pv, 0, pv.n)
            pv.n = 0
        else:
            t.pv = pv
            node.pv = tpv
        if not t.queued:
            t.queued = True
            self._q.append(t)

    def _split(self, node: GraphNode, pv: PktVec, e: np.ndarray) -> None:
        n = pv.n
        if len(e) != n:
            raise self._fail(node, pv, f"returned {len(e)} edge indices for {n} packets")
        kind = e.dtype.kind
        if kind not in "iu":
            raise self._fail(
                node, pv, f"returned edge indices of dtype {e.dtype}; they must be integers"
            )
        if kind == "u" and e.dtype.itemsize == 8:
            e = e.view(np.int64)  # bincount takes signed input; huge values turn negative
        try:
            counts = np.bincount(e, minlength=node.ne)
        except ValueError:
            raise self._fail(
                node, pv, f"returned a negative edge index (min {int(e.min())})"
            ) from None
        if len(counts) > node.ne:
            raise self._fail(
                node,
                pv,
                f"returned edge {int(e.max())} but has {node.ne} edge(s) {list(node.edge_names)}",
            )
        used = np.flatnonzero(counts).tolist()
        if len(used) == 1:  # the common case: one edge for the whole vector (no copy)
            self._move(node, pv, node.edges[used[0]])
            return
        edges = node.edges
        q = self._q
        if len(used) == 2:
            for i in used:  # a loop over edges, not packets
                t = edges[i]
                _append_idx(t, pv, np.flatnonzero(e == i))
                if not t.queued:
                    t.queued = True
                    q.append(t)
        else:
            # more edges: one stable sort, one gather per field, then a slice per edge
            order = np.argsort(e, kind="stable")
            cols = [getattr(pv, name)[:n][order] for name in _FIELDS]
            ends = np.cumsum(counts).tolist()
            for i in used:
                t = edges[i]
                _append_cols(t, cols, ends[i] - int(counts[i]), ends[i])
                if not t.queued:
                    t.queued = True
                    q.append(t)
        pv.n = 0

    # -- stats -------------------------------------------------------------------------------
    @property
    def stats_enabled(self) -> bool:
        return self._stats

    def stats_enable(self, on: bool = True) -> None:
        """Switch per-node stats on or off (the walk is rebound; counters are kept)."""
        self._stats = bool(on)
        self._bind_walk()

    def stats(self) -> list[NodeStats]:
        """Per-node counters in node order (zeros for a graph that never had stats on)."""
        from .stats import NodeStats

        return [
            NodeStats(gn.name, gn.id, gn.calls, gn.objs, gn.ns, gn.realloc_count)
            for gn in self.nodes
        ]

    def stats_reset(self) -> None:
        for gn in self.nodes:
            gn.calls = gn.objs = gn.ns = gn.realloc_count = 0
        self.walks = 0

    def stats_into(self, out: np.ndarray) -> None:
        """Write [calls, objs, ns, realloc_count] per node (node order) into an int64 array
        of shape (len(nodes), 4), e.g. one in shared memory that another process reads."""
        if out.shape != (len(self.nodes), 4):
            raise GraphError(
                f"graph {self.name!r}: stats array must have shape ({len(self.nodes)}, 4), "
                f"got {out.shape}"
            )
        out[:] = [[gn.calls, gn.objs, gn.ns, gn.realloc_count] for gn in self.nodes]

    # -- trace -------------------------------------------------------------------------------
    def trace(
        self,
        n_packets: int,
        pcap_path: str | Path,
        *,
        log_path: str | Path | None = None,
    ) -> Trace:
        """Record the next ``n_packets`` packets the sources produce: their bytes as received
        go to ``pcap_path``, the node path of each to ``log_path`` (default: the pcap path
        with ``.json``) and to a text file next to it (``.txt``). Returns the Trace; it is
        finished (files written) after the walk in which the last traced packet entered,
        or by ``trace.stop()``. Costs nothing once finished."""
        from .trace import Trace

        if self._trace is not None:
            raise GraphError(
                f"graph {self.name!r}: a trace is already running",
                errno=_errno.EBUSY,
                fix="wait for it to finish or call its stop()",
            )
        self._trace = Trace(self, n_packets, pcap_path, log_path)
        self._bind_walk()
        return self._trace

    def _trace_stopped(self, tr: Trace) -> None:
        if self._trace is tr:
            self._trace = None
            self._bind_walk()

    # -- idle, export, dump ------------------------------------------------------------------
    def idle(self) -> None:
        """Run the nodes' idle hooks (call when a walk brought nothing: e.g. TX nodes reap
        completions and kick their sockets)."""
        for gn in self._idlers:
            gn.idle(gn)  # type: ignore[misc]

    def dot(self) -> str:
        """The graph in graphviz dot (cne_graph_export)."""
        from .dot import graph_to_dot

        return graph_to_dot(self)

    def dump(self) -> str:
        """Text like cne_graph_dump: the graph and each node's edges."""
        lines = [
            f"graph {self.name!r} id {self.id}: {len(self.nodes)} nodes, "
            f"{len(self._sources)} source(s), burst {self.burst}, "
            f"stats {'on' if self._stats else 'off'}"
        ]
        for gn in self.nodes:
            kind = "source" if gn.source else "node"
            lines.append(f"  {gn.name} (id {gn.id}, {kind}, {gn.ne} edges, pending {gn.pv.n})")
            lines += [f"    edge {i} -> {t.name}" for i, t in enumerate(gn.edges)]
        return "\n".join(lines)

    def destroy(self) -> None:
        graph_destroy(self)


# -- the graph registry (per process) --------------------------------------------------------

_glock = threading.RLock()
_graphs: dict[str, Graph] = {}


def _save_graphs() -> dict[str, Graph]:
    global _graphs
    with _glock:
        saved = _graphs
        _graphs = {}
        return saved


def _restore_graphs(saved: dict[str, Graph]) -> None:
    global _graphs
    with _glock:
        for g in list(_graphs.values()):
            # a fini that fails must not keep the old registry out
            with contextlib.suppress(Exception):
                graph_destroy(g)
        _graphs = saved


def _expand(name: str, patterns: Sequence[str]) -> list[NodeDef]:
    defs = node_list()
    chosen: dict[str, NodeDef] = {}
    for pat in patterns:
        if not isinstance(pat, str) or not pat:
            raise GraphError(
                f"graph {name!r}: pattern {pat!r} is not a non-empty string",
                errno=_errno.EINVAL,
            )
        hit = False
        for nd in defs:
            if fnmatch.fnmatchcase(nd.name, pat):
                chosen.setdefault(nd.name, nd)
                hit = True
        if not hit:
            names = sorted(d.name for d in defs)
            shown = ", ".join(names[:24]) + (" ..." if len(names) > 24 else "")
            raise GraphError(
                f"graph {name!r}: pattern {pat!r} matches no registered node",
                errno=_errno.EFAULT,
                fix=f"register the node first (cndp.nodes.register() adds the standard "
                f"ones; pktdev nodes need cndp.nodes.pktdev_config()) or fix the pattern; "
                f"registered: {shown or 'none'}",
            )
    # every node reachable through edges joins the graph (graph_node_edges_add)
    order = list(chosen.values())
    i = 0
    while i < len(order):
        nd = order[i]
        for k, nxt in enumerate(nd.next_nodes):
            if nxt in chosen:
                continue
            try:
                adj = node_def(nxt)
            except GraphError:
                raise GraphError(
                    f"graph {name!r}: node {nd.name!r} edge {k} points to {nxt!r}, which is "
                    "not registered",
                    errno=_errno.EINVAL,
                    fix=f"register {nxt!r} or change the edges of {nd.name!r}",
                ) from None
            chosen[nxt] = adj
            order.append(adj)
        i += 1
    return order


def _check_topology(name: str, order: list[NodeDef]) -> None:
    sources = [nd for nd in order if nd.source]
    if not sources:
        raise GraphError(
            f"graph {name!r} has no source node (nodes: {', '.join(nd.name for nd in order)})",
            errno=_errno.EINVAL,
            fix="include a source node, e.g. pktdev_rx-0, in the patterns",
        )
    src_names = {nd.name for nd in sources}
    for nd in order:
        for k, nxt in enumerate(nd.next_nodes):
            if nxt in src_names:
                raise GraphError(
                    f"graph {name!r}: node {nd.name!r} edge {k} points to source node {nxt!r}",
                    errno=_errno.EINVAL,
                    fix="source nodes only produce packets; point the edge elsewhere",
                )
            if nxt == nd.name:
                raise GraphError(
                    f"graph {name!r}: node {nd.name!r} edge {k} points to itself",
                    errno=_errno.EINVAL,
                    fix="a node may not loop to itself",
                )
    # BFS from the sources: every node must be reachable (graph_has_isolated_node)
    seen = set(src_names)
    todo = [nd.name for nd in sources]
    by_name = {nd.name: nd for nd in order}
    while todo:
        cur = by_name[todo.pop()]
        for nxt in cur.next_nodes:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for nd in order:
        if nd.name not in seen:
            raise GraphError(
                f"graph {name!r}: node {nd.name!r} is isolated: no source node reaches it",
                errno=_errno.ENODEV,
                fix=f"add an edge to {nd.name!r} from a node on a source's path, or leave it "
                "out of the patterns",
            )


def graph_create(
    name: str,
    patterns: Iterable[str],
    *,
    burst: int = DEFAULT_BURST,
    stats: bool = True,
    umem: Umem | None = None,
) -> Graph:
    """Create graph ``name`` from node-name fnmatch ``patterns`` (cne_graph_create).

    Every node matching a pattern and every node reachable from those through edges is in
    the graph. Fails (GraphError naming the node or pattern) on an unmatched pattern, an
    edge to an unregistered node, no source node, an edge into a source, a self loop or an
    isolated node. ``burst`` is the most packets a source produces per walk; ``umem`` is the
    packet memory nodes read bytes from (set by pktdev_rx nodes when not given). Nodes'
    ``init`` run sources first, then in graph order; if one raises, the graph is not
    created (and the ``fini`` of nodes already initialised runs).
    """
    if not isinstance(name, str) or not name or len(name) >= GRAPH_NAMESIZE:
        raise GraphError(
            f"graph name must be a non-empty string shorter than {GRAPH_NAMESIZE} "
            f"characters, got {name!r}",
            errno=_errno.EINVAL,
        )
    if isinstance(patterns, str):
        raise GraphError(
            f"graph {name!r}: patterns must be a list of strings, got the string {patterns!r}",
            errno=_errno.EINVAL,
            fix=f'write ["{patterns}"]',
        )
    pats = list(patterns)
    if not pats:
        raise GraphError(f"graph {name!r}: no node patterns given", errno=_errno.EINVAL)
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 65535:
        raise GraphError(
            f"graph {name!r}: burst must be an integer in 1..65535, got {burst!r}",
            errno=_errno.EINVAL,
            fix=f"use e.g. {DEFAULT_BURST}",
        )
    with _glock:
        if name in _graphs:
            raise GraphError(
                f"a graph named {name!r} already exists (id {_graphs[name].id})",
                errno=_errno.EEXIST,
                fix="destroy it first or use another name (one graph per worker, e.g. worker0)",
            )
        order = _expand(name, pats)
        _check_topology(name, order)
        used = {g.id for g in _graphs.values()}
        gid = next(i for i in range(len(used) + 1) if i not in used)
        g = Graph(name, gid, pats, burst, umem)
        g._populate(order)
        done: list[GraphNode] = []
        try:
            for gn in sorted(g.nodes, key=lambda x: not x.source):  # stable: sources first
                if gn.init is not None:
                    gn.init(gn)
                done.append(gn)
        except BaseException:
            for gn in reversed(done):
                if gn.fini is not None:
                    with contextlib.suppress(Exception):
                        gn.fini(gn)
            raise
        _graphs[name] = g
    g.stats_enable(stats)
    return g


def _resolve(ref: Graph | str | int) -> Graph:
    if isinstance(ref, Graph):
        return ref
    with _glock:
        if isinstance(ref, str):
            g = _graphs.get(ref)
        else:
            g = next((x for x in _graphs.values() if x.id == ref), None)
    if g is None:
        raise GraphError(
            f"no graph {ref!r}",
            errno=_errno.ENOENT,
            fix=f"existing graphs: {', '.join(_graphs) or 'none'}",
        )
    return g


def graph_destroy(ref: Graph | str | int) -> None:
    """Run every node's ``fini`` and forget the graph (cne_graph_destroy). Idempotent for a
    Graph object."""
    if isinstance(ref, Graph) and ref.destroyed:
        return
    g = _resolve(ref)
    with _glock:
        if _graphs.get(g.name) is g:
            del _graphs[g.name]
    if g.destroyed:
        return
    g.destroyed = True
    if g._trace is not None:
        g._trace.stop()
    first: BaseException | None = None
    for gn in g.nodes:
        if gn.fini is not None:
            try:
                gn.fini(gn)
            except Exception as e:
                first = first or e
    g.walk = _destroyed_walk(g.name)
    if first is not None:
        raise first


def _destroyed_walk(name: str) -> Callable[[], int]:
    def walk() -> int:
        raise GraphError(f"graph {name!r} was destroyed", errno=_errno.ENOENT)

    return walk


def graph_lookup(name: str) -> Graph | None:
    """The graph named ``name``, or None (cne_graph_lookup)."""
    with _glock:
        return _graphs.get(name)


def graph_get(gid: int) -> Graph:
    return _resolve(gid)


def graph_from_name(name: str) -> int:
    return _resolve(name).id


def graph_id_to_name(gid: int) -> str:
    return _resolve(gid).name


def graph_list() -> list[Graph]:
    with _glock:
        return sorted(_graphs.values(), key=lambda g: g.id)


def graph_max_count() -> int:
    with _glock:
        return len(_graphs)


def graph_node_get(gid: int | str, node_id: int) -> GraphNode:
    return _resolve(gid).node_get(node_id)


def graph_node_get_by_name(graph_name: str, node_name: str) -> GraphNode:
    return _resolve(graph_name).node_get_by_name(node_name)


def graph_export(ref: Graph | str | int, file: IO[str] | None = None) -> str:
    """Graphviz dot text of a graph; also written to ``file`` when given."""
    text = _resolve(ref).dot()
    if file is not None:
        file.write(text)
    return text


def graph_dump(ref: Graph | str | int) -> str:
    return _resolve(ref).dump()


def graph_list_dump() -> str:
    return "\n".join(g.dump() for g in graph_list())
