"""Per-node statistics and cluster stats across graphs (CNDP ``cne_graph_cluster_stats_*``).

A graph counts, per node, the process calls, the objects (packets) it processed and the
nanoseconds spent in ``process`` plus routing its output; CNDP counts TSC cycles, we count
``time.perf_counter_ns`` nanoseconds. Counting happens only while stats are enabled on the
graph (see ``Graph.stats_enable``).

A *cluster* is the set of graphs whose names match some fnmatch patterns; its stats add up
the same node (by node id) over those graphs. Graphs are per process, so a cluster covers
the graphs of the calling process; a runtime that wants one table over all its workers
publishes each worker's ``Graph.stats_into(array)`` into shared memory and builds
:class:`NodeStats` rows from those arrays with :func:`stats_from_array`.
"""

from __future__ import annotations

import errno as _errno
import fnmatch
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .graph import Graph, graph_list
from .node import GraphError

__all__ = ["ClusterStats", "NodeStats", "format_stats", "stats_from_array"]


@dataclass(frozen=True)
class NodeStats:
    """One node's counters (CNDP ``cne_graph_cluster_node_stats``; ``ns`` stands for cycles)."""

    name: str
    id: int
    calls: int
    objs: int
    ns: int
    realloc_count: int = 0

    @property
    def objs_per_call(self) -> float:
        return self.objs / self.calls if self.calls else 0.0

    @property
    def ns_per_call(self) -> float:
        return self.ns / self.calls if self.calls else 0.0

    @property
    def ns_per_obj(self) -> float:
        return self.ns / self.objs if self.objs else 0.0


def stats_from_array(names: Sequence[str], ids: Sequence[int], arr: np.ndarray) -> list[NodeStats]:
    """Rows from an array written by ``Graph.stats_into`` (same node order)."""
    if arr.shape != (len(names), 4) or len(ids) != len(names):
        raise GraphError(
            f"stats array shape {arr.shape} does not match {len(names)} node names/ids",
            errno=_errno.EINVAL,
        )
    return [
        NodeStats(n, int(i), int(r[0]), int(r[1]), int(r[2]), int(r[3]))
        for n, i, r in zip(names, ids, arr.tolist(), strict=True)
    ]


def format_stats(
    rows: Iterable[NodeStats],
    prev: dict[int, NodeStats] | None = None,
    seconds: float | None = None,
) -> str:
    """A table like CNDP's cluster stats printout: Node, Calls, Objects, Realloc, Objs/c
    (objects per call), KObjs/s and ns/c, per node. With ``prev`` and ``seconds`` the rates
    cover the interval since ``prev``; otherwise the whole run."""
    border = "+" + "+".join("-" * w for w in (22, 15, 15, 9, 8, 10, 10)) + "+"
    head = (
        f"|{'Node':<22}|{'Calls':>15}|{'Objects':>15}|{'Realloc':>9}|"
        f"{'Objs/c':>8}|{'KObjs/s':>10}|{'ns/c':>10}|"
    )
    out = [border, head, border]
    for r in rows:
        p = (prev or {}).get(r.id)
        calls = r.calls - (p.calls if p else 0)
        objs = r.objs - (p.objs if p else 0)
        ns = r.ns - (p.ns if p else 0)
        per_call = objs / calls if calls else 0.0
        ns_call = ns / calls if calls else 0.0
        if seconds:
            kobjs = objs / seconds / 1000
        else:
            kobjs = objs / (r.ns / 1e9) / 1000 if r.ns else 0.0
        out.append(
            f"|{r.name[:22]:<22}|{r.calls:>15,}|{r.objs:>15,}|{r.realloc_count:>9,}|"
            f"{per_call:>8.1f}|{kobjs:>10.1f}|{ns_call:>10.1f}|"
        )
    out.append(border)
    return "\n".join(out)


class ClusterStats:
    """Stats of the same nodes over every local graph matching ``graph_patterns``
    (cne_graph_cluster_stats_create / _get / _reset).

    ``get()`` returns the aggregated rows (one per node id, in first-seen order) and, when a
    callback was given, calls ``fn(is_first, is_last, row)`` for each row as CNDP does (the
    default prints nothing; use :meth:`text` for the table). Deltas against the previous
    ``get()`` are available as ``text(interval=True)``.
    """

    def __init__(
        self,
        graph_patterns: Sequence[str],
        fn: Callable[[bool, bool, NodeStats], object] | None = None,
    ) -> None:
        if isinstance(graph_patterns, str) or not graph_patterns:
            raise GraphError(
                "cluster stats need a non-empty list of graph name patterns",
                errno=_errno.EINVAL,
                fix='e.g. ClusterStats(["worker*"])',
            )
        graphs: list[Graph] = []
        all_graphs = graph_list()
        for pat in graph_patterns:
            hit = [g for g in all_graphs if fnmatch.fnmatchcase(g.name, pat)]
            if not hit:
                raise GraphError(
                    f"cluster stats: pattern {pat!r} matches no graph",
                    errno=_errno.EFAULT,
                    fix=f"graphs: {', '.join(g.name for g in all_graphs) or 'none'}",
                )
            graphs += [g for g in hit if g not in graphs]
        if not any(g.stats_enabled for g in graphs):
            raise GraphError(
                "cluster stats: stats are disabled on every matching graph",
                errno=_errno.EINVAL,
                fix="create the graphs with stats=True or call graph.stats_enable()",
            )
        self.graphs = graphs
        self.fn = fn
        self._prev: dict[int, NodeStats] = {}
        self._prev_t = 0.0
        self._last: dict[int, NodeStats] = {}
        self._last_t = 0.0

    def node_count(self) -> int:
        return len({gn.id for g in self.graphs for gn in g.nodes})

    def get(self, skip_cb: bool = False) -> list[NodeStats]:
        acc: dict[int, list[int]] = {}
        names: dict[int, str] = {}
        for g in self.graphs:
            for gn in g.nodes:
                a = acc.setdefault(gn.id, [0, 0, 0, 0])
                names.setdefault(gn.id, gn.name)
                a[0] += gn.calls
                a[1] += gn.objs
                a[2] += gn.ns
                a[3] += gn.realloc_count
        rows = [NodeStats(names[i], i, *a) for i, a in acc.items()]
        self._prev, self._prev_t = self._last, self._last_t
        self._last = {r.id: r for r in rows}
        self._last_t = time.monotonic()
        if self.fn is not None and not skip_cb:
            for k, r in enumerate(rows):
                if self.fn(k == 0, k == len(rows) - 1, r):
                    break
        return rows

    def text(self, interval: bool = False) -> str:
        rows = self.get(skip_cb=True)
        if interval and self._prev:
            return format_stats(rows, self._prev, self._last_t - self._prev_t)
        return format_stats(rows)

    def reset(self) -> None:
        """Forget the previous sample (the graphs' own counters are untouched; use
        ``Graph.stats_reset`` for those)."""
        self._prev = {}
        self._last = {}
