"""``pktdev_rx-<lport>`` (source) and ``pktdev_tx-<lport>`` (sink) nodes over pktdev ports.

``pktdev_config(lports)`` is CNDP's ``cne_node_eth_config``: for every lport it clones
``pktdev_rx`` as ``pktdev_rx-<lport>`` and ``pktdev_tx`` as ``pktdev_tx-<lport>``, and adds
``pktdev_tx-<lport>`` as an edge of ``ip4_rewrite`` (remembering which edge sends to which
lport, for ``ip4_rewrite_add``). Call it after the ports are set up and before creating
graphs; calling it again for the same lports changes nothing.

pktdev_rx-N (edges: 0 ``pkt_cls``, 1 ``ip4_lookup``, as CNDP): receives up to the graph's
burst from lport N, clears the packets' metadata (ptype, next, hash: drivers leave the
vector's old values there) and sends them to edge 0. Point edge 0 elsewhere with
``node_edge_update("pktdev_rx-N", 0, ["my_node"])``. Its init sets the graph's UMEM to the
port's (nodes that read packet bytes use it); two ports with different UMEMs in one graph
are refused.

pktdev_tx-N (edge: 0 ``pkt_drop``): transmits the vector on lport N; what the port does not
take (ring full, admin down) goes to pkt_drop, so no frame is ever lost or spun on. Its idle
hook (``graph.idle()``) calls ``tx_burst(pv, 0)``, which reaps completions and kicks queued
frames on AF_XDP ports. Frames must live in the port's UMEM: a graph forwarding between
ports of different UMEMs needs a copy node (not provided).
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

from .. import pktdev
from ..graph import (
    GraphError,
    GraphNode,
    node_clone,
    node_def,
    node_edge_update,
)
from ..mem.pktvec import PktVec
from ..pktdev import PKTDEV_ADMIN_STATE_DOWN, Port
from .ip4 import IP4_REWRITE, ip4_rewrite_set_port

__all__ = ["PKTDEV_RX", "PKTDEV_TX", "pktdev_config", "pktdev_flush"]

PKTDEV_RX = "pktdev_rx"
PKTDEV_TX = "pktdev_tx"
RX_EDGES = ["pkt_cls", "ip4_lookup"]
TX_EDGES = ["pkt_drop"]
_DOWN = PKTDEV_ADMIN_STATE_DOWN


def _port_of(node: GraphNode) -> Port:
    lport = node.data.get("lport")
    if lport is None:
        raise GraphError(
            f"node {node.name!r} has no lport: it is the template, not a per-port clone",
            errno=_errno.EINVAL,
            fix="use pktdev_config([lport, ...]) and the pktdev_rx-<lport> clones",
        )
    try:
        return pktdev.get_port(lport)
    except pktdev.PortError as e:
        raise GraphError(
            f"graph {node.graph.name!r}: node {node.name!r}: lport {lport} is not open ({e})",
            errno=_errno.ENODEV,
            fix="set the port up in this process before creating the graph",
        ) from None


def rx_init(node: GraphNode) -> None:
    port = _port_of(node)
    node.ctx = port
    g = node.graph
    if port.umem is not None:
        if g.umem is None:
            g.umem = port.umem
        elif g.umem is not port.umem:
            raise GraphError(
                f"graph {g.name!r}: lport {port.name!r} uses UMEM {port.umem.name!r}, another "
                f"source uses {g.umem.name!r}; nodes read packet bytes from one UMEM per graph",
                errno=_errno.EINVAL,
                fix="put the graph's lports on one UMEM (regions of it are fine)",
            )


def rx_process(node: GraphNode, pv: PktVec) -> int | None:
    k = node.ctx.rx_burst(pv, node.burst)
    if not k or k == _DOWN:
        pv.n = 0
        return None
    pv.ptype[:k] = 0
    pv.next[:k] = 0
    pv.hash[:k] = 0
    return 0


def tx_init(node: GraphNode) -> None:
    node.ctx = _port_of(node)


def tx_process(node: GraphNode, pv: PktVec) -> None:
    n = pv.n
    s = node.ctx.tx_burst(pv, n)
    if s == _DOWN:
        s = 0
    if s < n:
        node.enqueue(0, pv, slice(s, n))
    return None


def tx_idle(node: GraphNode) -> None:
    # node.pv is empty between walks: a zero-packet burst only reaps and kicks
    node.ctx.tx_burst(node.pv, 0)


def _lport_id(p: int | Port) -> int:
    if isinstance(p, Port):
        return p.lport
    if isinstance(p, bool) or not isinstance(p, int) or p < 0:
        raise GraphError(f"{p!r} is not an lport id or Port", errno=_errno.EINVAL)
    return p


def pktdev_config(lports: Iterable[int | Port]) -> list[tuple[str, str]]:
    """Clone the rx/tx nodes per lport and wire ip4_rewrite to the tx nodes
    (cne_node_eth_config). Returns the (rx, tx) node names per lport."""
    out = []
    for p in lports:
        lport = _lport_id(p)
        names = []
        for base in (PKTDEV_RX, PKTDEV_TX):
            name = f"{base}-{lport}"
            try:
                nd = node_def(name)
            except GraphError:
                nd = node_def(node_clone(base, str(lport)))
            nd.data["lport"] = lport
            names.append(name)
        rw = node_def(IP4_REWRITE)
        tx = names[1]
        if tx not in rw.next_nodes:
            node_edge_update(IP4_REWRITE, None, [tx])
        ip4_rewrite_set_port(lport, rw.next_nodes.index(tx))
        out.append((names[0], names[1]))
    return out


def pktdev_flush(graph: object, timeout: float = 1.0) -> bool:
    """Wait until every pktdev_tx port of ``graph`` has sent what it accepted."""
    ok = True
    for gn in graph.nodes:  # type: ignore[attr-defined]
        if gn.process is tx_process and gn.ctx is not None:
            ok = gn.ctx.flush(timeout) and ok
    return ok
