"""The node registry (CNDP ``cne_node_*``, DPDK rte_node semantics).

A *registered node* is a template: a name, a process function, the names of its next nodes
(its *edges*, by index) and optional ``init``/``fini`` callbacks plus static ``data``. Graphs
are built from registered nodes by name pattern; every graph gets its own instance of each
node it contains (see ``cndp.graph.graph.GraphNode``), so a node's per-graph state lives in
that instance, not here.

The registry is plain per-process state. Register nodes before forking workers (they inherit
it) or in each worker; either way each worker then builds its own graph after the fork.

Node ids are dense integers in registration order, as in CNDP. Edges are referred to by next
node *name* here; a graph resolves them when it is created, so editing edges after a graph
exists does not change that graph.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CndpError

__all__ = [
    "EDGE_ID_INVALID",
    "NODE_NAMESIZE",
    "GraphError",
    "NodeDef",
    "isolated_registry",
    "node",
    "node_clone",
    "node_def",
    "node_dump",
    "node_edge_count",
    "node_edge_get",
    "node_edge_shrink",
    "node_edge_update",
    "node_from_name",
    "node_id_to_name",
    "node_list",
    "node_list_dump",
    "node_max_count",
    "node_register",
]

NODE_NAMESIZE = 64  # CNE_NODE_NAMESIZE (names are at most 63 characters)
EDGE_ID_INVALID = None  # node_edge_update(from_index=None): append, like CNE_EDGE_ID_INVALID

# process(node, pv) -> edge index | edge index per packet | None (the node consumed them)
ProcessFn = Callable[[Any, Any], Any]
InitFn = Callable[[Any], None]


class GraphError(CndpError):
    """A node or graph call that cannot be done; ``errno`` says why as CNDP's codes do
    (EEXIST duplicate name, ENOENT no such node/graph, EINVAL bad argument, E2BIG too long
    or too many, ENODEV isolated node)."""


@dataclass
class NodeDef:
    """One registered node (CNDP ``struct node``)."""

    name: str
    process: ProcessFn
    next_nodes: list[str]
    source: bool = False
    init: InitFn | None = None
    fini: InitFn | None = None
    idle: InitFn | None = None  # called by Graph.idle() (e.g. a TX node reaping completions)
    data: dict[str, Any] = field(default_factory=dict)
    id: int = -1
    parent_id: int | None = None

    @property
    def nb_edges(self) -> int:
        return len(self.next_nodes)

    def dump(self) -> str:
        kind = "source" if self.source else "node"
        parent = "" if self.parent_id is None else f" (clone of {_by_id[self.parent_id].name})"
        lines = [f"node {self.id} {self.name!r}: {kind}{parent}, {self.nb_edges} edge(s)"]
        lines += [f"  edge {i}: {n}" for i, n in enumerate(self.next_nodes)]
        return "\n".join(lines)


_lock = threading.RLock()
_by_id: list[NodeDef] = []
_by_name: dict[str, NodeDef] = {}


def _check_name(name: object, what: str = "node name") -> str:
    if not isinstance(name, str) or not name:
        raise GraphError(
            f"{what} must be a non-empty string, got {name!r}",
            errno=_errno.EINVAL,
            fix='use a name such as "ip4_lookup"',
        )
    if len(name) >= NODE_NAMESIZE:
        raise GraphError(
            f"{what} {name!r} is longer than {NODE_NAMESIZE - 1} characters",
            errno=_errno.E2BIG,
            fix="use a shorter name",
        )
    bad = [c for c in name if c.isspace() or c in '"\\' or not c.isprintable()]
    if bad:
        # names end up in dot files, CLI output and pattern lists: keep them plain
        raise GraphError(
            f"{what} {name!r} contains {bad[0]!r}",
            errno=_errno.EINVAL,
            fix="use letters, digits and punctuation without spaces, quotes or backslashes",
        )
    return name


def _check_edges(next_nodes: Sequence[str] | None, owner: str) -> list[str]:
    if next_nodes is None:
        return []
    if isinstance(next_nodes, str):
        raise GraphError(
            f"node {owner!r}: next_nodes must be a list of names, got the string {next_nodes!r}",
            errno=_errno.EINVAL,
            fix=f'write next_nodes=["{next_nodes}"]',
        )
    return [_check_name(n, f"node {owner!r}: next node name") for n in next_nodes]


def node_register(
    name: str,
    process: ProcessFn,
    next_nodes: Sequence[str] | None = None,
    *,
    source: bool = False,
    init: InitFn | None = None,
    fini: InitFn | None = None,
    idle: InitFn | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Register a node (CNE_NODE_REGISTER); returns its id.

    ``process(node, pv)`` gets the graph's instance of the node and its input vector, and
    returns where the packets go: an ``int`` edge index for all of them, an integer array
    with one edge index per packet (the graph splits the vector with numpy), or ``None``
    when the node consumed them itself (sent, freed, or passed on with ``node.enqueue``).
    A *source* node gets an empty vector and fills it (e.g. from a port). ``init(node)``
    runs when a graph containing the node is created, ``fini(node)`` when it is destroyed.
    ``data`` is static configuration copied to clones and visible as ``node.data``.
    """
    _check_name(name)
    if not callable(process):
        raise GraphError(
            f"node {name!r}: process must be callable, got {type(process).__name__}",
            errno=_errno.EINVAL,
            fix="pass a function process(node, pv)",
        )
    for cb_name, cb in (("init", init), ("fini", fini), ("idle", idle)):
        if cb is not None and not callable(cb):
            raise GraphError(
                f"node {name!r}: {cb_name} must be callable or None", errno=_errno.EINVAL
            )
    edges = _check_edges(next_nodes, name)
    nd = NodeDef(
        name=name,
        process=process,
        next_nodes=edges,
        source=bool(source),
        init=init,
        fini=fini,
        idle=idle,
        data=dict(data or {}),
    )
    return _add(nd)


def _add(nd: NodeDef) -> int:
    with _lock:
        if nd.name in _by_name:
            raise GraphError(
                f"a node named {nd.name!r} is already registered (id {_by_name[nd.name].id})",
                errno=_errno.EEXIST,
                fix="give every node a unique name (clones are named <parent>-<suffix>)",
            )
        nd.id = len(_by_id)
        _by_id.append(nd)
        _by_name[nd.name] = nd
        return nd.id


def node(
    name: str,
    next_nodes: Sequence[str] | None = None,
    **kw: Any,
) -> Callable[[ProcessFn], ProcessFn]:
    """Decorator form of :func:`node_register`::

    @node("mac_swap", next_nodes=["pktdev_tx-0"])
    def mac_swap(node, pv): ...
    """

    def deco(fn: ProcessFn) -> ProcessFn:
        node_register(name, fn, next_nodes, **kw)
        return fn

    return deco


def node_def(ref: int | str) -> NodeDef:
    """The registered node with this id or name (GraphError ENOENT when there is none)."""
    with _lock:
        if isinstance(ref, str):
            nd = _by_name.get(ref)
            if nd is None:
                raise GraphError(
                    f"no node named {ref!r} is registered",
                    errno=_errno.ENOENT,
                    fix=_known_hint(),
                )
            return nd
        if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(_by_id):
            raise GraphError(
                f"no node with id {ref!r} (ids are 0..{len(_by_id) - 1})",
                errno=_errno.ENOENT,
            )
        return _by_id[ref]


def _known_hint() -> str:
    names = sorted(_by_name)
    if not names:
        return "no node is registered yet (cndp.nodes.register() adds the standard ones)"
    shown = ", ".join(names[:24]) + (" ..." if len(names) > 24 else "")
    return f"registered nodes: {shown}"


def node_clone(ref: int | str, suffix: str) -> int:
    """Clone a node as ``<parent>-<suffix>`` with the same process, callbacks, edges and a
    copy of its data (cne_node_clone); returns the new id. A clone cannot be cloned."""
    with _lock:
        parent = node_def(ref)
        if parent.parent_id is not None:
            raise GraphError(
                f"node {parent.name!r} is itself a clone; clone its parent "
                f"{_by_id[parent.parent_id].name!r} instead",
                errno=_errno.EEXIST,
            )
        _check_name(suffix, "clone suffix")
        nd = NodeDef(
            name=_check_name(f"{parent.name}-{suffix}"),
            process=parent.process,
            next_nodes=list(parent.next_nodes),
            source=parent.source,
            init=parent.init,
            fini=parent.fini,
            idle=parent.idle,
            data=dict(parent.data),
            parent_id=parent.id,
        )
        return _add(nd)


def node_from_name(name: str) -> int:
    return node_def(_check_name(name)).id


def node_id_to_name(node_id: int) -> str:
    return node_def(node_id).name


def node_edge_count(ref: int | str) -> int:
    return node_def(ref).nb_edges


def node_edge_get(ref: int | str) -> list[str]:
    """Names of the node's next nodes, by edge index."""
    return list(node_def(ref).next_nodes)


def node_edge_update(ref: int | str, from_index: int | None, next_nodes: Sequence[str]) -> int:
    """Set edges ``from_index..`` to ``next_nodes`` (``None``: append after the last edge),
    growing the edge list as needed; returns how many edges were written
    (cne_node_edge_update). Graphs created earlier keep their edges."""
    with _lock:
        nd = node_def(ref)
        names = _check_edges(next_nodes, nd.name)
        start = nd.nb_edges if from_index is None else from_index
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise GraphError(
                f"node {nd.name!r}: edge index {from_index!r} is not an index",
                errno=_errno.EINVAL,
            )
        if start > nd.nb_edges:
            raise GraphError(
                f"node {nd.name!r}: cannot write edges from index {start}: it has "
                f"{nd.nb_edges}, and the edge list may not have holes",
                errno=_errno.ENOMEM,
                fix=f"start at most at {nd.nb_edges} (or pass None to append)",
            )
        edges = nd.next_nodes[:start] + names + nd.next_nodes[start + len(names) :]
        nd.next_nodes = edges
        return len(names)


def node_edge_shrink(ref: int | str, size: int) -> int:
    """Keep the first ``size`` edges (cne_node_edge_shrink); returns ``size``."""
    with _lock:
        nd = node_def(ref)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise GraphError(
                f"node {nd.name!r}: edge count {size!r} is invalid", errno=_errno.EINVAL
            )
        if size > nd.nb_edges:
            raise GraphError(
                f"node {nd.name!r}: cannot shrink to {size} edges, it has {nd.nb_edges}",
                errno=_errno.E2BIG,
                fix="use node_edge_update to add edges",
            )
        nd.next_nodes = nd.next_nodes[:size]
        return size


def node_max_count() -> int:
    """Number of registered nodes (ids are 0..count-1)."""
    return len(_by_id)


def node_list() -> list[NodeDef]:
    with _lock:
        return list(_by_id)


def node_dump(ref: int | str) -> str:
    return node_def(ref).dump()


def node_list_dump() -> str:
    return "\n".join(nd.dump() for nd in node_list())


@contextlib.contextmanager
def isolated_registry() -> Iterator[None]:
    """Run the body with an empty node registry and no graphs; restore both afterwards.

    For tests: node names are global per process, so tests that register nodes of their own
    use this to stay independent of each other and of the standard nodes.
    """
    from . import graph as _graph

    global _by_id, _by_name
    with _lock:
        saved = (_by_id, _by_name)
        saved_graphs = _graph._save_graphs()
        _by_id, _by_name = [], {}
    try:
        yield
    finally:
        with _lock:
            _graph._restore_graphs(saved_graphs)
            _by_id, _by_name = saved
