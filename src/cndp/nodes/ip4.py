"""``ip4_lookup`` and ``ip4_rewrite``: the IPv4 forwarding nodes of l3fwd-graph.

ip4_lookup (edges: 0 ``ip4_rewrite``, 1 ``pkt_drop``, as CNDP): reads every packet's IPv4
destination (one 4-byte gather per burst; the packet must be untagged Ethernet + IPv4, which
pkt_cls guarantees) and asks a *lookup* for a 24-bit result per packet, CNDP's FIB encoding:
``(next_node_edge << 16) | next_hop``. The next hop id (16 bits) goes to ``pv.next`` for
ip4_rewrite (CNDP keeps it in the mbuf's private area); the edge routes the packet. A miss
must return ``IP4_LOOKUP_NEXT_PKT_DROP << 16``.

The lookup is pluggable: ``ip4_lookup_set(fn)`` with ``fn(dst: np.ndarray[uint32], host
byte order) -> integer array`` (e.g. a DIR-24-8 FIB's bulk lookup filled with
``ip4_route_add``-style values). The built-in :class:`Ip4Routes` (a small longest-prefix
match over sorted per-length arrays: one ``searchsorted`` per prefix length in use) is the
default and what ``ip4_route_add`` fills.

ip4_rewrite (edges: 0 ``pkt_drop``, then one ``pktdev_tx-<lport>`` per port added by
``pktdev_config``): for each packet's next hop, drops it when the hop is unknown or its TTL
is 1 or less, otherwise decrements the TTL, updates the header checksum incrementally
(RFC 1624, eqn. 3), writes the hop's rewrite bytes (normally a 14-byte Ethernet header) over
the start of the frame and routes it to the hop's TX node. All of it is a fixed number of
numpy calls per burst (one more per distinct rewrite length).

Tables are per process and shared by every graph in it, as in CNDP: fill them before or
after creating graphs (lookups read them on every burst), in each worker after the fork.
"""

from __future__ import annotations

import errno as _errno
import ipaddress

import numpy as np

from ..graph import GraphError, GraphNode
from ..mem.pktvec import PktVec, _as_intp, scatter, window

__all__ = [
    "IP4_LOOKUP",
    "IP4_LOOKUP_NEXT_PKT_DROP",
    "IP4_LOOKUP_NEXT_REWRITE",
    "IP4_REWRITE",
    "IP4_REWRITE_MAX_LEN",
    "IP4_REWRITE_MAX_NH",
    "Ip4Routes",
    "ip4_lookup_get",
    "ip4_lookup_set",
    "ip4_reset",
    "ip4_rewrite_add",
    "ip4_rewrite_port_edge",
    "ip4_rewrite_set_port",
    "ip4_route_add",
    "ip4_route_delete",
    "ip4_routes",
]

IP4_LOOKUP = "ip4_lookup"
IP4_REWRITE = "ip4_rewrite"
IP4_LOOKUP_NEXT_REWRITE = 0
IP4_LOOKUP_NEXT_PKT_DROP = 1
IP4_REWRITE_MAX_NH = 1 << 16  # next hop ids are 16 bits (pv.next)
IP4_REWRITE_MAX_LEN = 56  # CNE_GRAPH_IP4_REWRITE_MAX_LEN
_DROP_VALUE = IP4_LOOKUP_NEXT_PKT_DROP << 16

# IPv4 fields as offsets from the packet's first byte (untagged Ethernet)
_TTL = 14 + 8
_CSUM = 14 + 10
_DST = 14 + 16


def _ip4(ip: int | str | ipaddress.IPv4Address) -> int:
    if isinstance(ip, bool):
        raise GraphError(f"{ip!r} is not an IPv4 address", errno=_errno.EINVAL)
    if isinstance(ip, (int, np.integer)):
        if not 0 <= int(ip) <= 0xFFFFFFFF:
            raise GraphError(f"{ip!r} is not an IPv4 address", errno=_errno.EINVAL)
        return int(ip)
    try:
        return int(ipaddress.IPv4Address(ip))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise GraphError(
            f"{ip!r} is not an IPv4 address",
            errno=_errno.EINVAL,
            fix='write it as "198.18.1.0" or as an integer in host byte order',
        ) from None


def _depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 0 <= depth <= 32:
        raise GraphError(f"prefix length {depth!r} is not in 0..32", errno=_errno.EINVAL)
    return int(depth)


def _mask(depth: int) -> int:
    return (0xFFFFFFFF << (32 - depth)) & 0xFFFFFFFF


class Ip4Routes:
    """A small vectorised longest-prefix-match table: prefix -> integer value.

    Lookup is one ``searchsorted`` and a few array operations per prefix length in use
    (longest first), for the whole burst. Adding or deleting a route recompiles on the
    next lookup (slow path). Misses get ``default``.
    """

    def __init__(self, default: int = _DROP_VALUE) -> None:
        self.default = int(default)
        self._routes: dict[int, dict[int, int]] = {}
        self._compiled: list[tuple[np.uint32, np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return sum(len(d) for d in self._routes.values())

    def add(self, ip: int | str, depth: int, value: int) -> None:
        d = _depth(depth)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise GraphError(f"route value {value!r} is not an integer >= 0", errno=_errno.EINVAL)
        self._routes.setdefault(d, {})[_ip4(ip) & _mask(d)] = int(value)
        self._compiled = None

    def delete(self, ip: int | str, depth: int) -> bool:
        d = _depth(depth)
        gone = self._routes.get(d, {}).pop(_ip4(ip) & _mask(d), None) is not None
        if gone:
            if not self._routes[d]:
                del self._routes[d]
            self._compiled = None
        return gone

    def get(self, ip: int | str, depth: int) -> int | None:
        d = _depth(depth)
        return self._routes.get(d, {}).get(_ip4(ip) & _mask(d))

    def _compile(self) -> list[tuple[np.uint32, np.ndarray, np.ndarray]]:
        out = []
        for d in sorted(self._routes, reverse=True):
            items = sorted(self._routes[d].items())
            keys = np.array([k for k, _ in items], np.uint32)
            vals = np.array([v for _, v in items], np.uint64)
            out.append((np.uint32(_mask(d)), keys, vals))
        self._compiled = out
        return out

    def lookup(self, ips: np.ndarray) -> np.ndarray:
        """Values (uint64) for IPv4 addresses in host byte order; ``default`` for misses."""
        ips = np.asarray(ips, np.uint32)
        comp = self._compiled if self._compiled is not None else self._compile()
        out = np.full(len(ips), self.default, np.uint64)
        todo: np.ndarray | None = None
        for mask, keys, vals in comp:  # a loop over prefix lengths, not packets
            m = ips & mask
            pos = np.searchsorted(keys, m)
            pos[pos == len(keys)] = 0
            hit = keys[pos] == m
            if todo is not None:
                hit &= todo
            out[hit] = vals[pos[hit]]
            todo = ~hit if todo is None else todo & ~hit
            if not todo.any():
                break
        return out


class _Ip4State:
    def __init__(self) -> None:
        self.routes = Ip4Routes()
        self.lookup = self.routes.lookup
        self.rw_data = np.zeros((IP4_REWRITE_MAX_NH, IP4_REWRITE_MAX_LEN), np.uint8)
        self.rw_len = np.zeros(IP4_REWRITE_MAX_NH, np.intp)
        self.tx_edge = np.zeros(IP4_REWRITE_MAX_NH, np.uint16)  # 0: pkt_drop (no such hop)
        self.port_edge: dict[int, int] = {}


_st = _Ip4State()


def ip4_reset() -> None:
    """Forget every route, rewrite entry and port edge, and the plugged lookup."""
    global _st
    _st = _Ip4State()


def ip4_routes() -> Ip4Routes:
    """The built-in route table (what ip4_route_add fills)."""
    return _st.routes


def ip4_route_add(
    ip: int | str,
    depth: int,
    next_hop: int,
    next_node: int = IP4_LOOKUP_NEXT_REWRITE,
) -> None:
    """Route ``ip/depth`` to ``next_hop`` via ip4_lookup edge ``next_node``
    (cne_node_ip4_route_add)."""
    if isinstance(next_hop, bool) or not isinstance(next_hop, int) or not 0 <= next_hop <= 0xFFFF:
        raise GraphError(f"next hop {next_hop!r} is not in 0..65535", errno=_errno.EINVAL)
    if isinstance(next_node, bool) or not isinstance(next_node, int) or not 0 <= next_node <= 0xFF:
        raise GraphError(f"next node edge {next_node!r} is not in 0..255", errno=_errno.EINVAL)
    _st.routes.add(ip, depth, ((next_node << 16) | next_hop) & 0xFFFFFF)


def ip4_route_delete(ip: int | str, depth: int) -> bool:
    return _st.routes.delete(ip, depth)


def ip4_lookup_set(fn: object | None) -> None:
    """Plug the lookup ip4_lookup uses: ``fn(dst_uint32_host_order) -> values`` with values
    ``(edge << 16) | next_hop`` and ``IP4_LOOKUP_NEXT_PKT_DROP << 16`` for a miss. ``None``
    goes back to the built-in table."""
    if fn is not None and not callable(fn):
        raise GraphError(
            f"ip4_lookup_set needs a callable, got {type(fn).__name__}",
            errno=_errno.EINVAL,
            fix="pass e.g. fib.lookup (a bulk lookup over a uint32 array)",
        )
    _st.lookup = _st.routes.lookup if fn is None else fn  # type: ignore[assignment]


def ip4_lookup_get() -> object:
    return _st.lookup


def ip4_rewrite_set_port(lport: int, edge: int) -> None:
    """ip4_rewrite edge that sends to ``lport`` (pktdev_config sets it)."""
    _st.port_edge[int(lport)] = int(edge)


def ip4_rewrite_port_edge(lport: int) -> int:
    e = _st.port_edge.get(int(lport))
    if e is None:
        raise GraphError(
            f"ip4_rewrite has no edge to lport {lport}",
            errno=_errno.EINVAL,
            fix="run cndp.nodes.pktdev_config([...]) with that lport first",
        )
    return e


def ip4_rewrite_add(next_hop: int, rewrite_data: bytes, dst_port: int) -> None:
    """Next hop ``next_hop`` rewrites the first ``len(rewrite_data)`` bytes of the frame
    (normally dst MAC, src MAC, ethertype) and leaves by lport ``dst_port``
    (cne_node_ip4_rewrite_add)."""
    if isinstance(next_hop, bool) or not isinstance(next_hop, int) or not 0 <= next_hop <= 0xFFFF:
        raise GraphError(f"next hop {next_hop!r} is not in 0..65535", errno=_errno.EINVAL)
    data = bytes(rewrite_data)
    if not 1 <= len(data) <= IP4_REWRITE_MAX_LEN:
        raise GraphError(
            f"rewrite data of {len(data)} bytes; it must have 1..{IP4_REWRITE_MAX_LEN}",
            errno=_errno.EINVAL,
            fix="pass the Ethernet header: dst MAC + src MAC + ethertype (14 bytes)",
        )
    edge = ip4_rewrite_port_edge(dst_port)
    _st.rw_data[next_hop, : len(data)] = np.frombuffer(data, np.uint8)
    _st.rw_len[next_hop] = len(data)
    _st.tx_edge[next_hop] = edge


# -- the nodes ------------------------------------------------------------------------------


def ip4_lookup_init(node: GraphNode) -> None:
    node.ctx = node.graph.require_umem(node.name).data


def ip4_lookup_process(node: GraphNode, pv: PktVec) -> np.ndarray:
    n = pv.n
    a = _as_intp(pv.addr[:n])
    dst = window(node.ctx, 4)[a + _DST].view(">u4").astype(np.uint32)
    res = np.asarray(_st.lookup(dst))
    pv.next[:n] = res & 0xFFFF
    return res >> 16


def ip4_rewrite_init(node: GraphNode) -> None:
    node.ctx = node.graph.require_umem(node.name).data
    top = int(_st.tx_edge.max())
    if top >= node.ne:
        raise GraphError(
            f"graph {node.graph.name!r}: ip4_rewrite sends a next hop to edge {top} but this "
            f"ip4_rewrite has {node.ne} edges",
            fix="run pktdev_config before creating the graph",
        )


def ip4_rewrite_process(node: GraphNode, pv: PktVec) -> np.ndarray:
    st = _st
    data = node.ctx
    n = pv.n
    a = _as_intp(pv.addr[:n]) + _TTL
    nh = pv.next[:n].astype(np.intp)
    # TTL, protocol and checksum as one big-endian 32-bit word per packet: one gather
    w4 = window(data, 4)
    x = w4[a].view(">u4").astype(np.uint32)
    edge = st.tx_edge[nh]
    ok = (x >= 0x02000000) & (edge != 0)  # TTL > 1 and a known next hop
    if not ok.all():
        edge = np.where(ok, edge, 0)
        sel = np.flatnonzero(ok)
        if not len(sel):
            return edge
        a = a[sel]
        nh = nh[sel]
        x = x[sel]
    # TTL - 1; checksum HC' = ~(~HC + ~m + m') over the 16-bit word m = (TTL, protocol)
    old = x >> 16
    new = old - 0x100
    s = (~x & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    w4[a] = ((new << 16) | (~s & 0xFFFF)).astype(">u4").view("V4")
    a -= _TTL
    # the new Ethernet header (or whatever each hop's rewrite bytes are)
    lens = st.rw_len[nh]
    first = int(lens[0])
    if (lens == first).all():
        scatter(data, a, st.rw_data[nh, :first])
    else:
        for ln in np.unique(lens).tolist():  # a loop over rewrite lengths, not packets
            m = lens == ln
            scatter(data, a[m], st.rw_data[nh[m], :ln])
    return edge
