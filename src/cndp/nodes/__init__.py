"""The standard graph nodes (CNDP ``lib/usr/clib/nodes``).

| node | edges | what it does |
|---|---|---|
| ``pktdev_rx-<lport>`` (source) | 0 pkt_cls, 1 ip4_lookup | rx_burst from the lport |
| ``pktdev_tx-<lport>`` | 0 pkt_drop | tx_burst to the lport; leftovers to pkt_drop |
| ``pkt_cls`` | 0 pkt_drop, 1 ip4_lookup, + added | packet type by headers, route by type |
| ``ip4_lookup`` | 0 ip4_rewrite, 1 pkt_drop | LPM on the IPv4 destination (pluggable) |
| ``ip4_rewrite`` | 0 pkt_drop, then pktdev_tx-* | TTL-1, checksum, new L2 header, out |
| ``pkt_drop`` | none | frees frames to their pool |
| ``null`` | none | does nothing (frames are not freed) |

Importing this package registers them (``register()``; idempotent, so call it again inside
``cndp.graph.isolated_registry()``). Per-port clones come from :func:`pktdev_config`.
l3fwd-graph in a few lines::

    from cndp import nodes
    from cndp.graph import graph_create

    nodes.pktdev_config([0, 1])                       # pktdev_rx-0/1, pktdev_tx-0/1
    nodes.ip4_route_add("198.18.1.0", 24, next_hop=1)
    nodes.ip4_rewrite_add(1, dst_mac + src_mac + b"\\x08\\x00", dst_port=1)
    g = graph_create("worker0", ["pktdev_rx-*", "pkt_cls", "ip4_*", "pktdev_tx-*", "pkt_drop"])
    while running:
        if not g.walk():
            g.idle()
"""

from __future__ import annotations

from ..graph import GraphError, node_def, node_register
from .basic import NULL, PKT_DROP, DropCtx, drop_init, drop_process, null_process
from .ip4 import (
    IP4_LOOKUP,
    IP4_LOOKUP_NEXT_PKT_DROP,
    IP4_LOOKUP_NEXT_REWRITE,
    IP4_REWRITE,
    Ip4Routes,
    ip4_lookup_get,
    ip4_lookup_init,
    ip4_lookup_process,
    ip4_lookup_set,
    ip4_reset,
    ip4_rewrite_add,
    ip4_rewrite_init,
    ip4_rewrite_port_edge,
    ip4_rewrite_process,
    ip4_rewrite_set_port,
    ip4_route_add,
    ip4_route_delete,
    ip4_routes,
)
from .pkt_cls import (
    DEFAULT_EDGES as PKT_CLS_EDGES,
)
from .pkt_cls import (
    PKT_CLS,
    PKT_CLS_NEXT_IP4_LOOKUP,
    PKT_CLS_NEXT_PKT_DROP,
    classify,
    pkt_cls_init,
    pkt_cls_next,
    pkt_cls_process,
    pkt_cls_reset,
    pkt_cls_set_next,
)
from .pktdev import (
    PKTDEV_RX,
    PKTDEV_TX,
    RX_EDGES,
    TX_EDGES,
    pktdev_config,
    pktdev_flush,
    rx_init,
    rx_process,
    tx_idle,
    tx_init,
    tx_process,
)

__all__ = [
    "IP4_LOOKUP",
    "IP4_LOOKUP_NEXT_PKT_DROP",
    "IP4_LOOKUP_NEXT_REWRITE",
    "IP4_REWRITE",
    "NULL",
    "PKTDEV_RX",
    "PKTDEV_TX",
    "PKT_CLS",
    "PKT_CLS_NEXT_IP4_LOOKUP",
    "PKT_CLS_NEXT_PKT_DROP",
    "PKT_DROP",
    "DropCtx",
    "Ip4Routes",
    "classify",
    "ip4_lookup_get",
    "ip4_lookup_set",
    "ip4_reset",
    "ip4_rewrite_add",
    "ip4_rewrite_port_edge",
    "ip4_rewrite_set_port",
    "ip4_route_add",
    "ip4_route_delete",
    "ip4_routes",
    "pkt_cls_next",
    "pkt_cls_reset",
    "pkt_cls_set_next",
    "pktdev_config",
    "pktdev_flush",
    "register",
    "reset",
]


def _have(name: str) -> bool:
    try:
        node_def(name)
    except GraphError:
        return False
    return True


def register() -> None:
    """Register the standard nodes that are not registered yet (in CNDP's order)."""
    table = [
        (NULL, null_process, [], {}),
        (PKT_DROP, drop_process, [], {"init": drop_init}),
        (PKT_CLS, pkt_cls_process, PKT_CLS_EDGES, {"init": pkt_cls_init}),
        (IP4_LOOKUP, ip4_lookup_process, ["ip4_rewrite", "pkt_drop"], {"init": ip4_lookup_init}),
        (IP4_REWRITE, ip4_rewrite_process, ["pkt_drop"], {"init": ip4_rewrite_init}),
        (PKTDEV_RX, rx_process, RX_EDGES, {"init": rx_init, "source": True}),
        (PKTDEV_TX, tx_process, TX_EDGES, {"init": tx_init, "idle": tx_idle}),
    ]
    for name, fn, edges, kw in table:
        if not _have(name):
            node_register(name, fn, edges, **kw)


def reset() -> None:
    """Clear the per-process tables of the standard nodes (routes, rewrites, port edges,
    the pkt_cls table). Registered nodes and their clones stay."""
    ip4_reset()
    pkt_cls_reset()


register()
