"""Graphviz export of a graph (CNDP ``cne_graph_export``; the cnet CLI's ``graph dot``).

Same shape as CNDP's output (``rankdir=LR``, edges out of source nodes in blue), with names
quoted so that graph and node names such as ``worker-0`` or ``pktdev_rx-0`` stay valid dot,
source nodes drawn as blue boxes and each edge labelled with its index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["graph_to_dot"]


def _q(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_to_dot(graph: Graph) -> str:
    lines = [f"digraph {_q(graph.name)} {{", "\trankdir=LR;"]
    for gn in graph.nodes:
        if gn.source:
            lines.append(f"\t{_q(gn.name)} [shape=box,color=blue];")
        elif not gn.edges:
            lines.append(f"\t{_q(gn.name)} [shape=doublecircle];")
    for gn in graph.nodes:
        color = ",color=blue" if gn.source else ""
        for i, t in enumerate(gn.edges):
            lines.append(f"\t{_q(gn.name)} -> {_q(t.name)} [label={i}{color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
