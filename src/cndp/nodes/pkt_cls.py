"""``pkt_cls``: classify packets by Ethernet type and L3/L4 protocol and route them by class.

CNDP's pkt_cls routes on ``mbuf->packet_type``, which a NIC or the rx path fills in. AF_XDP
gives no packet type, so this node computes it from the headers, for the whole burst at once:
one gather of each packet's first 28 bytes (Ethernet, one VLAN/QinQ tag, and the IPv4/IPv6
fields needed), then column arithmetic. The result is written to ``pv.ptype`` using CNDP's
(DPDK's) ``CNE_PTYPE_*`` values, so later nodes can use it too:

- L2: ETHER, ETHER_ARP, ETHER_LLDP, ETHER_TIMESYNC, ETHER_VLAN (802.1Q), ETHER_QINQ (802.1ad);
- L3: IPV4 (IHL 5), IPV4_EXT (options), IPV6, IPV6_EXT (first next header is an extension);
  only headers that fit in ``data_len`` count;
- L4: TCP, UDP, SCTP, ICMP (ICMPv6 for IPv6), IGMP, FRAG (IPv4 MF or offset, IPv6
  fragment header), NONFRAG (any other protocol).

Routing, as CNDP: a 256-entry table maps ``ptype & (L2_MASK | L3_MASK)`` to an edge. Edges are
``pkt_drop`` (0, the default for every class) and ``ip4_lookup`` (1, for untagged IPv4 with
or without options). ``pkt_cls_set_next(ptype, "node")`` sends a class elsewhere (adding
the edge when needed); do it before creating graphs.
"""

from __future__ import annotations

import errno as _errno

import numpy as np

from ..graph import GraphError, GraphNode, node_def, node_edge_update
from ..mem.pktvec import PktVec, gather

__all__ = [
    "PKT_CLS",
    "PKT_CLS_NEXT_IP4_LOOKUP",
    "PKT_CLS_NEXT_PKT_DROP",
    "PTYPE_L2_ETHER",
    "PTYPE_L2_ETHER_ARP",
    "PTYPE_L2_ETHER_LLDP",
    "PTYPE_L2_ETHER_QINQ",
    "PTYPE_L2_ETHER_TIMESYNC",
    "PTYPE_L2_ETHER_VLAN",
    "PTYPE_L2_MASK",
    "PTYPE_L3_IPV4",
    "PTYPE_L3_IPV4_EXT",
    "PTYPE_L3_IPV6",
    "PTYPE_L3_IPV6_EXT",
    "PTYPE_L3_MASK",
    "PTYPE_L4_FRAG",
    "PTYPE_L4_ICMP",
    "PTYPE_L4_IGMP",
    "PTYPE_L4_MASK",
    "PTYPE_L4_NONFRAG",
    "PTYPE_L4_SCTP",
    "PTYPE_L4_TCP",
    "PTYPE_L4_UDP",
    "PTYPE_UNKNOWN",
    "classify",
    "pkt_cls_next",
    "pkt_cls_reset",
    "pkt_cls_set_next",
]

PKT_CLS = "pkt_cls"
PKT_CLS_NEXT_PKT_DROP = 0
PKT_CLS_NEXT_IP4_LOOKUP = 1
DEFAULT_EDGES = ["pkt_drop", "ip4_lookup"]

# CNE_PTYPE_* (pktmbuf_ptype.h; the same values as DPDK's RTE_PTYPE_*)
PTYPE_UNKNOWN = 0x0
PTYPE_L2_ETHER = 0x1
PTYPE_L2_ETHER_TIMESYNC = 0x2
PTYPE_L2_ETHER_ARP = 0x3
PTYPE_L2_ETHER_LLDP = 0x4
PTYPE_L2_ETHER_VLAN = 0x6
PTYPE_L2_ETHER_QINQ = 0x7
PTYPE_L2_MASK = 0xF
PTYPE_L3_IPV4 = 0x10
PTYPE_L3_IPV4_EXT = 0x30
PTYPE_L3_IPV6 = 0x40
PTYPE_L3_IPV4_EXT_UNKNOWN = 0x90
PTYPE_L3_IPV6_EXT = 0xC0
PTYPE_L3_IPV6_EXT_UNKNOWN = 0xE0
PTYPE_L3_MASK = 0xF0
PTYPE_L4_TCP = 0x100
PTYPE_L4_UDP = 0x200
PTYPE_L4_FRAG = 0x300
PTYPE_L4_SCTP = 0x400
PTYPE_L4_ICMP = 0x500
PTYPE_L4_NONFRAG = 0x600
PTYPE_L4_IGMP = 0x700
PTYPE_L4_MASK = 0xF00

HEAD = 28  # Ethernet header, then up to the IPv4 protocol / IPv6 next header
_TAG = 4  # an 802.1Q / 802.1ad tag

# Everything below is table lookups on header bytes so that a burst costs ~30 numpy calls.
# ethertype -> class: 0 other, 1 IPv4, 2 IPv6, 3 ARP, 4 LLDP, 5 timesync, 6 VLAN, 7 QinQ
_ET_CLS = np.zeros(1 << 16, np.uint8)
for _et, _c in ((0x0800, 1), (0x86DD, 2), (0x0806, 3), (0x88CC, 4), (0x88F7, 5)):
    _ET_CLS[_et] = _c
_ET_CLS[0x8100] = 6
_ET_CLS[0x88A8] = 7
_L2_BY_CLS = np.array(
    [
        PTYPE_L2_ETHER,
        PTYPE_L2_ETHER,
        PTYPE_L2_ETHER,
        PTYPE_L2_ETHER_ARP,
        PTYPE_L2_ETHER_LLDP,
        PTYPE_L2_ETHER_TIMESYNC,
        PTYPE_L2_ETHER_VLAN,
        PTYPE_L2_ETHER_QINQ,
    ],
    np.uint32,
)
# first IP byte (version, IHL) -> IPv4 L3 type / IPv4 header length / "is version 6"
_V4_L3 = np.zeros(256, np.uint32)
_V4_HLEN = np.full(256, 1 << 20, np.int32)  # never fits: not a valid IPv4 first byte
for _ihl in range(5, 16):
    _V4_L3[0x40 | _ihl] = PTYPE_L3_IPV4 if _ihl == 5 else PTYPE_L3_IPV4_EXT
    _V4_HLEN[0x40 | _ihl] = _ihl * 4
_V6_OK = (np.arange(256) >> 4) == 6
_IP6_EXT = (0, 43, 44, 50, 51, 60, 135)  # hop-by-hop, routing, fragment, ESP, AH, dst, mobility
_V6_L3 = np.full(256, PTYPE_L3_IPV6, np.uint32)
_V6_L3[list(_IP6_EXT)] = PTYPE_L3_IPV6_EXT


def _l4_table(icmp: int) -> np.ndarray:
    t = np.full(256, PTYPE_L4_NONFRAG, np.uint32)
    t[6] = PTYPE_L4_TCP
    t[17] = PTYPE_L4_UDP
    t[132] = PTYPE_L4_SCTP
    t[icmp] = PTYPE_L4_ICMP
    return t


_L4_V4 = _l4_table(1)
_L4_V4[2] = PTYPE_L4_IGMP
_L4_V6 = _l4_table(58)
_L4_V6[list(_IP6_EXT)] = 0  # the L4 header is behind extension headers: not known
_L4_V6[44] = PTYPE_L4_FRAG


def classify(umem_data: np.ndarray, pv: PktVec) -> np.ndarray:
    """The CNE_PTYPE value of every packet of ``pv`` (uint32 array of length ``pv.n``)."""
    n = pv.n
    h = gather(umem_data, pv.addr[:n], HEAD + _TAG)
    lens = pv.data_len[:n].astype(np.int32)
    et_cls = _ET_CLS[h.view(">u2")[:, 6]]
    l2_cls = et_cls
    tagged = et_cls >= 6
    if tagged.any():
        # strip the tag from the head copy: the rest of the parse then sees untagged frames
        h[tagged, 12:HEAD] = h[tagged, 12 + _TAG : HEAD + _TAG]
        lens[tagged] -= _TAG
        et_cls = _ET_CLS[h.view(">u2")[:, 6]]
    l2 = _L2_BY_CLS[l2_cls]
    l2[lens < 14] = PTYPE_UNKNOWN
    b0 = h[:, 14]
    nh6 = h[:, 20]
    room = lens - 14
    v4 = (et_cls == 1) & (room >= _V4_HLEN[b0])
    v6 = (et_cls == 2) & _V6_OK[b0] & (room >= 40)
    frag4 = (h.view(">u2")[:, 10] & 0x3FFF) != 0  # MF flag or a fragment offset
    l3 = np.where(v4, _V4_L3[b0], np.where(v6, _V6_L3[nh6], 0))
    l4 = np.where(
        v4, np.where(frag4, PTYPE_L4_FRAG, _L4_V4[h[:, 23]]), np.where(v6, _L4_V6[nh6], 0)
    )
    return (l2 | l3 | l4).astype(np.uint32, copy=False)


# -- routing table (per process, shared by every graph, as CNDP's static p_nxt[]) ------------

_p_nxt = np.zeros(256, np.uint16)


def pkt_cls_reset() -> None:
    """Back to the default table: untagged IPv4 to ip4_lookup, everything else dropped."""
    _p_nxt[:] = PKT_CLS_NEXT_PKT_DROP
    for l3 in (PTYPE_L3_IPV4, PTYPE_L3_IPV4_EXT, PTYPE_L3_IPV4_EXT_UNKNOWN):
        _p_nxt[l3] = PKT_CLS_NEXT_IP4_LOOKUP
        _p_nxt[l3 | PTYPE_L2_ETHER] = PKT_CLS_NEXT_IP4_LOOKUP


pkt_cls_reset()


def pkt_cls_next(ptype: int) -> int:
    """The edge index packets of this (L2|L3) class take."""
    return int(_p_nxt[int(ptype) & (PTYPE_L2_MASK | PTYPE_L3_MASK)])


def pkt_cls_set_next(ptype: int, next_node: str) -> int:
    """Send the (L2|L3) class ``ptype`` (e.g. ``PTYPE_L2_ETHER | PTYPE_L3_IPV6``) to
    ``next_node``; adds the edge to the registered pkt_cls when it has none to that node.
    Returns the edge index. Graphs created before keep their edges (create them after)."""
    if isinstance(ptype, bool) or not isinstance(ptype, int) or ptype < 0:
        raise GraphError(f"pkt_cls: {ptype!r} is not a packet type", errno=_errno.EINVAL)
    if ptype & ~(PTYPE_L2_MASK | PTYPE_L3_MASK):
        raise GraphError(
            f"pkt_cls: packet type {ptype:#x} has bits beyond L2|L3 (0xff)",
            errno=_errno.EINVAL,
            fix="pkt_cls routes on the L2 and L3 bits only; drop the L4 bits",
        )
    nd = node_def(PKT_CLS)
    if next_node in nd.next_nodes:
        edge = nd.next_nodes.index(next_node)
    else:
        node_edge_update(PKT_CLS, None, [next_node])
        edge = nd.nb_edges - 1
    _p_nxt[ptype] = edge
    return edge


# -- the node -------------------------------------------------------------------------------


def pkt_cls_init(node: GraphNode) -> None:
    node.ctx = node.graph.require_umem(node.name).data
    top = int(_p_nxt.max())
    if top >= node.ne:
        raise GraphError(
            f"graph {node.graph.name!r}: the pkt_cls table routes to edge {top} but this "
            f"pkt_cls has {node.ne} edges",
            fix="use pkt_cls_set_next (it adds the edge) before creating the graph",
        )


def pkt_cls_process(node: GraphNode, pv: PktVec) -> np.ndarray:
    ptype = classify(node.ctx, pv)
    pv.ptype[: pv.n] = ptype
    return _p_nxt[ptype & 0xFF]
