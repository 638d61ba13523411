"""Packet graphs: nodes passing packet vectors, DPDK rte_graph / CNDP ``cne_graph`` semantics.

Register nodes (:func:`node_register` or the :func:`node` decorator), build one graph per
worker from node-name patterns (:func:`graph_create`), then call ``graph.walk()`` in the
worker's loop. A node's ``process(node, pv)`` returns an edge index, an array of edge
indices (one per packet: the graph splits the vector with numpy) or None. See
``docs/graph.md`` and ``cndp.nodes`` for the standard nodes.
"""

from __future__ import annotations

from .graph import (
    DEFAULT_BURST,
    Graph,
    GraphNode,
    graph_create,
    graph_destroy,
    graph_dump,
    graph_export,
    graph_from_name,
    graph_get,
    graph_id_to_name,
    graph_list,
    graph_list_dump,
    graph_lookup,
    graph_max_count,
    graph_node_get,
    graph_node_get_by_name,
)
from .node import (
    EDGE_ID_INVALID,
    NODE_NAMESIZE,
    GraphError,
    NodeDef,
    isolated_registry,
    node,
    node_clone,
    node_def,
    node_dump,
    node_edge_count,
    node_edge_get,
    node_edge_shrink,
    node_edge_update,
    node_from_name,
    node_id_to_name,
    node_list,
    node_list_dump,
    node_max_count,
    node_register,
)
from .stats import ClusterStats, NodeStats, format_stats, stats_from_array
from .trace import Trace

__all__ = [
    "DEFAULT_BURST",
    "EDGE_ID_INVALID",
    "NODE_NAMESIZE",
    "ClusterStats",
    "Graph",
    "GraphError",
    "GraphNode",
    "NodeDef",
    "NodeStats",
    "Trace",
    "format_stats",
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
    "stats_from_array",
]
