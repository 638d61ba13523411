"""The two trivial standard nodes: ``null`` and ``pkt_drop``.

``pkt_drop`` is the sink every other standard node uses for packets it will not forward: it
gives their frames back to a pool. Which pool: the one in the node's data (``"pool"``, a
Mempool, set e.g. with ``node_def("pkt_drop").data["pool"] = pool`` before the graph is
created), otherwise the pool of each packet's input port (``pv.port``, looked up in the
pktdev registry). A vector from one port is one ``put_bulk``; a mixed vector is one
``put_bulk`` per input port (a loop over ports, not packets). Frames whose port is gone or
has no pool are counted in ``ctx.lost`` (and logged once) instead of raising in the data
path.

``null`` is CNDP's null node: a sink that does nothing, not even free the frames; tests and
benchmarks use it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .. import pktdev
from ..graph import GraphNode
from ..mem.pktvec import PktVec

log = logging.getLogger("cndp.nodes")

__all__ = ["NULL", "PKT_DROP", "DropCtx"]

NULL = "null"
PKT_DROP = "pkt_drop"


def null_process(node: GraphNode, pv: PktVec) -> None:
    return None


class DropCtx:
    """Per-graph state of a pkt_drop node."""

    __slots__ = ("_ports", "dropped", "lost", "put", "warned")

    def __init__(self, put: Any = None) -> None:
        self.put = put  # explicit pool's put_bulk, or None: free to each input port's pool
        self.dropped = 0  # packets received (always counted: one add per burst)
        self.lost = 0  # frames no pool could take back
        self.warned = False
        self._ports: dict[int, Any] = {}  # lport -> Port (re-resolved when closed)

    def free(self, lport: int, addrs: np.ndarray) -> None:
        port = self._ports.get(lport)
        if port is None or port.closed:
            try:
                port = pktdev.get_port(lport)
            except pktdev.PortError:
                port = None
            if port is None or port.pool is None:
                self.lost += len(addrs)
                if not self.warned:
                    self.warned = True
                    log.warning(
                        "pkt_drop: %d frame(s) of lport %d have no pool to go back to "
                        "(port closed, or no umem); counted as lost",
                        len(addrs),
                        lport,
                    )
                return
            self._ports[lport] = port
        port.pool.put_bulk(addrs)


def drop_init(node: GraphNode) -> None:
    pool = node.data.get("pool")
    node.ctx = DropCtx(pool.put_bulk if pool is not None else None)


def drop_process(node: GraphNode, pv: PktVec) -> None:
    n = pv.n
    c: DropCtx = node.ctx
    c.dropped += n
    addrs = pv.addr[:n]
    if c.put is not None:
        c.put(addrs)
        return None
    ports = pv.port[:n]
    p0 = int(ports[0])
    if n == 1 or (ports == p0).all():
        c.free(p0, addrs)
    else:
        for p in np.unique(ports).tolist():  # a loop over input ports, not packets
            c.free(p, addrs[ports == p])
    return None
