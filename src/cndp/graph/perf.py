"""Graph walk overhead, measured (CNDP's graph_perf, reduced): ``python -m cndp.graph.perf``.

- *chain*: a source that produces ``burst`` packets (without touching memory) -> L pass-through
  nodes -> a sink. Overhead per node per burst = (walk time with L nodes - walk time with
  none) / L: the cost of calling a node and moving its vector on (a swap, no copy).
- *split*: a node that sends its burst to k edges by an index array, against one that sends
  it to a single edge: the cost of the numpy split.
- *l3fwd*: pkt_cls -> ip4_lookup -> ip4_rewrite on real frames in a UMEM (no ports: the
  source rewinds the same frames each walk), per-node ns per packet from the graph's stats.

Each figure is the best of ``--repeat`` runs (least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from .graph import Graph, graph_create
from .node import isolated_registry, node_register


def _best(fn: Callable[[], None], walks: int, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(walks):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / walks)
    return best


def _src(node, pv) -> int:
    pv.n = node.burst
    return 0


def _pass(node, pv) -> int:
    return 0


def _sink(node, pv) -> None:
    return None


def chain(length: int, burst: int, stats: bool, walks: int, repeat: int) -> float:
    """ns per walk of source -> ``length`` pass nodes -> sink."""
    with isolated_registry():
        names = [f"p{i}" for i in range(length)] + ["sink"]
        node_register("src", _src, [names[0]], source=True)
        for i in range(length):
            node_register(names[i], _pass, [names[i + 1]])
        node_register("sink", _sink)
        g = graph_create("perf", ["src"], burst=burst, stats=stats)
        return _best(g.walk, walks, repeat)


def split(k: int, burst: int, walks: int, repeat: int) -> float:
    """ns per walk of source -> splitter (k edges, round robin) -> k sinks."""
    with isolated_registry():
        sinks = [f"s{i}" for i in range(k)]
        edges = (np.arange(burst) % k).astype(np.uint16)
        node_register("src", _src, ["split"], source=True)
        node_register("split", lambda node, pv: edges, sinks)
        for s in sinks:
            node_register(s, _sink)
        g = graph_create("perf", ["src"], burst=burst, stats=False)
        return _best(g.walk, walks, repeat)


def l3fwd(burst: int, walks: int) -> dict[str, float]:
    """ns per packet of each l3fwd node (graph stats) on 60-byte UDP frames."""
    from .. import nodes
    from ..mem import Umem, scatter
    from ..net.frames import udp4_frame

    with isolated_registry(), Umem(max(burst, 64) * 2, 2048) as umem:
        nodes.register()
        nodes.reset()
        frame = np.frombuffer(
            udp4_frame("02:00:00:00:00:01", "02:00:00:00:00:02", dst_ip="198.18.1.9"), np.uint8
        )
        addrs = np.arange(burst, dtype=np.uint64) * np.uint64(2048) + np.uint64(256)
        rows = np.tile(frame, (burst, 1))

        def src(node, pv):
            scatter(umem.data, addrs, rows)  # rewind TTL and headers (not counted below)
            pv.addr[:burst] = addrs
            pv.data_len[:burst] = len(frame)
            pv.port[:burst] = 0
            pv.n = burst
            return 0

        node_register("src", src, ["pkt_cls"], source=True)
        node_register("out", _sink)
        from ..graph import node_edge_update

        node_edge_update("ip4_rewrite", None, ["out"])
        nodes.ip4_rewrite_set_port(0, 1)
        nodes.ip4_route_add("198.18.1.0", 24, 1)
        nodes.ip4_rewrite_add(1, bytes(12) + b"\x08\x00", dst_port=0)
        g: Graph = graph_create("perf", ["src"], burst=burst, stats=True, umem=umem)
        for _ in range(walks):
            g.walk()
        out = {
            s.name: s.ns_per_obj
            for s in g.stats()
            if s.name in ("pkt_cls", "ip4_lookup", "ip4_rewrite")
        }
        nodes.reset()
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m cndp.graph.perf", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--length", type=int, default=16, help="pass nodes in the chain")
    ap.add_argument("--walks", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bursts", default="32,64,256")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    bursts = [int(x) for x in a.bursts.split(",")]
    res: dict[str, object] = {"length": a.length, "chain": {}, "split": {}, "l3fwd": {}}
    for b in bursts:
        for stats in (False, True):
            base = chain(0, b, stats, a.walks, a.repeat)
            full = chain(a.length, b, stats, a.walks, a.repeat)
            res["chain"][f"burst{b}_stats{int(stats)}"] = round((full - base) / a.length, 1)  # type: ignore[index]
        one = split(1, b, a.walks // 4, a.repeat)
        for k in (2, 4):
            res["split"][f"burst{b}_edges{k}"] = round(split(k, b, a.walks // 4, a.repeat) - one, 1)  # type: ignore[index]
        res["l3fwd"][f"burst{b}"] = {  # type: ignore[index]
            k: round(v, 1) for k, v in l3fwd(b, max(a.walks // 20, 200)).items()
        }
    if a.json:
        print(json.dumps(res))
        return 0
    print(f"graph walk overhead per node per burst (ns), chain of {a.length} pass nodes:")
    for k, v in res["chain"].items():  # type: ignore[union-attr]
        print(f"  {k:<20} {v:>8}")
    print("split cost over a single-edge move (ns per burst):")
    for k, v in res["split"].items():  # type: ignore[union-attr]
        print(f"  {k:<20} {v:>8}")
    print("l3fwd nodes, ns per packet (graph stats):")
    for k, v in res["l3fwd"].items():  # type: ignore[union-attr]
        print(f"  {k:<20} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
