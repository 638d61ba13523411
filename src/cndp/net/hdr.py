"""Vectorised header parsing and rewriting for a whole burst.

One gather copies the first ``WINDOW`` bytes of every packet into an n x WINDOW matrix; every
field of every packet is then a column expression on that matrix. Rewrites (TTL, MACs) go
straight to UMEM with a handful of fancy-index writes. No per-packet Python anywhere.

Layout handled: Ethernet, one optional 802.1Q/802.1ad tag, IPv4 (with options) or IPv6 (no
extension headers), then the UDP/TCP ports. Anything else parses as "not IP" and the caller
decides (drop, pass to the slow path, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mem.pktvec import _as_intp, _range_error, gather, window

WINDOW = 96  # covers VLAN (18) + IPv4 with full options (60) + ports (4), and IPv6 (40) + ports
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


@dataclass
class Parsed:
    """Columns for the first n packets of a burst (all arrays of length n)."""

    ethertype: np.ndarray  # uint16, after any VLAN tag
    vlan: np.ndarray  # uint16 VLAN id, 0 when untagged
    l3: np.ndarray  # intp offset of the L3 header from the packet's first byte
    is_ip4: np.ndarray  # bool: a well-formed IPv4 header that fits in the packet
    is_ip6: np.ndarray  # bool: an IPv6 header that fits in the packet
    proto: np.ndarray  # uint8 IPv4 protocol / IPv6 next header (0 when not IP)
    ttl: np.ndarray  # uint8 TTL / hop limit
    src4: np.ndarray  # uint32 host order (0 when not IPv4)
    dst4: np.ndarray  # uint32 host order
    has_ports: np.ndarray  # bool: UDP/TCP, first fragment, ports inside the packet
    sport: np.ndarray  # uint16 (0 when not has_ports)
    dport: np.ndarray  # uint16
    head: np.ndarray  # the n x WINDOW byte matrix the columns came from

    def dst6(self) -> np.ndarray:
        """IPv6 destination addresses as an n x 16 uint8 matrix (zeros where not IPv6)."""
        return self._col_bytes(24, 16, self.is_ip6)

    def src6(self) -> np.ndarray:
        return self._col_bytes(8, 16, self.is_ip6)

    def _col_bytes(self, off: int, k: int, mask: np.ndarray) -> np.ndarray:
        n = len(self.l3)
        cols = self.l3[:, None] + np.arange(off, off + k)
        out = self.head[np.arange(n)[:, None], np.minimum(cols, WINDOW - 1)]
        out[~mask] = 0
        return out


class _Cols:
    """Column reader over the head matrix at a per-packet (or, fast path, common) offset."""

    __slots__ = ("m", "rows")

    def __init__(self, m: np.ndarray) -> None:
        self.m = m
        self.rows = np.arange(len(m))

    def u8(self, off: np.ndarray | int) -> np.ndarray:
        if isinstance(off, int):  # one offset for the whole burst: a plain column slice
            return self.m[:, min(off, WINDOW - 1)]
        return self.m[self.rows, np.minimum(off, WINDOW - 1)]

    def u16(self, off: np.ndarray | int) -> np.ndarray:
        if isinstance(off, int):
            c = min(off, WINDOW - 2)
            return self.m[:, c : c + 2].copy().view(">u2")[:, 0].astype(np.uint16)
        c = np.minimum(off, WINDOW - 2)
        return (self.m[self.rows, c].astype(np.uint16) << 8) | self.m[self.rows, c + 1]

    def u32(self, off: np.ndarray | int) -> np.ndarray:
        if isinstance(off, int):
            c = min(off, WINDOW - 4)
            return self.m[:, c : c + 4].copy().view(">u4")[:, 0].astype(np.uint32)
        c = np.minimum(off, WINDOW - 4)
        b = self.m[self.rows[:, None], c[:, None] + np.arange(4)].copy()
        return b.view(">u4")[:, 0].astype(np.uint32)


def parse(data: np.ndarray, addr: np.ndarray, lengths: np.ndarray) -> Parsed:
    """Parse the packets starting at UMEM offsets ``addr`` with lengths ``lengths``.

    Frames are assumed to have at least WINDOW bytes of buffer after their first byte (true
    for UMEM frames, which are >= 2 KiB); bytes past a packet's length are never trusted.
    A burst whose packets share one L3 (and L4) offset - the usual case - reads every field
    as a column slice; mixed bursts fall back to per-row fancy indexing.
    """
    n = len(addr)
    m = gather(data, addr, WINDOW)
    col = _Cols(m)
    ln = np.asarray(lengths[:n]).astype(np.intp)
    et = col.u16(12)
    tagged = ((et == ETH_P_8021Q) | (et == ETH_P_8021AD)) & (ln >= 18)
    l3: np.ndarray | int
    if tagged.any():
        vlan = np.where(tagged, col.u16(14) & 0x0FFF, 0).astype(np.uint16)
        et = np.where(tagged, col.u16(16), et).astype(np.uint16)
        l3 = 18 if tagged.all() else np.where(tagged, 18, 14).astype(np.intp)
    else:
        vlan = np.zeros(n, np.uint16)
        l3 = 14
    l3a = np.full(n, l3, np.intp) if isinstance(l3, int) else l3

    vihl = col.u8(l3)
    ihl_a = (vihl & 0x0F).astype(np.intp) * 4
    ihl: np.ndarray | int = ihl_a
    if isinstance(l3, int) and n and (ihl_a == ihl_a[0]).all():
        ihl = int(ihl_a[0])
    tot4 = col.u16(l3 + 2).astype(np.intp)
    is4 = (
        (et == ETH_P_IP)
        & (vihl >> 4 == 4)
        & (ihl_a >= 20)
        & (ln >= l3a + ihl_a)
        & (tot4 >= ihl_a)
        & (l3a + tot4 <= ln)
    )
    is6 = (et == ETH_P_IPV6) & (vihl >> 4 == 6) & (ln >= l3a + 40)
    any6 = bool(is6.any())
    if any6:
        proto = np.where(is4, col.u8(l3 + 9), np.where(is6, col.u8(l3 + 6), 0))
        ttl = np.where(is4, col.u8(l3 + 8), np.where(is6, col.u8(l3 + 7), 0))
    else:
        proto = np.where(is4, col.u8(l3 + 9), 0)
        ttl = np.where(is4, col.u8(l3 + 8), 0)
    proto = proto.astype(np.uint8)
    src4 = np.where(is4, col.u32(l3 + 12), 0).astype(np.uint32)
    dst4 = np.where(is4, col.u32(l3 + 16), 0).astype(np.uint32)

    frag = col.u16(l3 + 6) & 0x1FFF  # fragment offset: ports only in the first fragment
    same_l4 = not any6 and isinstance(ihl, int) and isinstance(l3, int)
    l4: np.ndarray | int = l3 + ihl if same_l4 else np.where(is4, l3a + ihl_a, l3a + 40)  # type: ignore[operator]
    has_ports = (
        ((is4 & (frag == 0)) | is6)
        & ((proto == IPPROTO_UDP) | (proto == IPPROTO_TCP))
        & (np.asarray(l4) + 4 <= np.minimum(ln, WINDOW))
    )
    sport = np.where(has_ports, col.u16(l4), 0).astype(np.uint16)
    dport = np.where(has_ports, col.u16(l4 + 2), 0).astype(np.uint16)
    return Parsed(
        et,
        vlan,
        l3a,
        is4,
        is6,
        proto,
        ttl.astype(np.uint8),
        src4,
        dst4,
        has_ports,
        sport,
        dport,
        m,
    )


def ip4_dec_ttl(data: np.ndarray, addr: np.ndarray, l3: np.ndarray) -> None:
    """TTL - 1 with the RFC 1624 incremental header checksum update, in UMEM.

    The TTL is the high byte of the 16-bit word at IPv4 offset 8, so the word drops by
    0x0100 and the checksum (the complement of the sum) rises by 0x0100 with end-around
    carry. Callers drop packets whose TTL is already <= 1 first.
    """
    p = _as_intp(addr) + l3
    data[p + 8] -= 1
    c = (data[p + 10].astype(np.uint32) << 8) | data[p + 11]
    c += 0x0100
    c = (c & 0xFFFF) + (c >> 16)
    data[p + 10] = (c >> 8).astype(np.uint8)
    data[p + 11] = (c & 0xFF).astype(np.uint8)


def set_macs(
    data: np.ndarray, addr: np.ndarray, dst: np.ndarray, src: np.ndarray | None = None
) -> None:
    """Write destination (and source) MACs: ``dst``/``src`` are n x 6 uint8 matrices or one
    6-byte row for all packets."""
    a = _as_intp(addr)
    cols = np.arange(6)
    data[a[:, None] + cols] = dst
    if src is not None:
        data[a[:, None] + 6 + cols] = src


def ip4_header_ok(head: np.ndarray, l3: np.ndarray) -> np.ndarray:
    """True where the IPv4 header checksum (over IHL words) verifies: ones-complement sum
    of the header is 0xFFFF. Slow-ish (one masked sum over 60 bytes); used by tests and by
    nodes that must validate."""
    n = len(l3)
    rows = np.arange(n)[:, None]
    cols = l3[:, None] + np.arange(0, 60, 2)
    ihl = (head[np.arange(n), np.minimum(l3, WINDOW - 1)] & 0x0F).astype(np.intp) * 4
    inside = np.arange(0, 60, 2)[None, :] < ihl[:, None]
    c = np.minimum(cols, WINDOW - 2)
    words = (head[rows, c].astype(np.uint32) << 8) | head[rows, c + 1]
    s = np.where(inside, words, 0).sum(axis=1)
    while np.any(s >> 16):
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


# -- the fast path for untagged IPv4 (cndpfwd's l3fwd and acl modes) ----------------------------
HEAD4 = 34  # Ethernet + the fixed IPv4 header: everything l3fwd and the ACL read or rewrite
# One packed record per packet: a gather gives every field as a (strided) column, and the
# edited records go back with one scatter. Multi-byte fields are big-endian, as on the wire.
HEAD4_DT = np.dtype(
    [
        ("dmac", "u1", (6,)),
        ("smac", "u1", (6,)),
        ("ethertype", ">u2"),
        ("vihl", "u1"),
        ("tos", "u1"),
        ("tot_len", ">u2"),
        ("id", ">u2"),
        ("frag", ">u2"),
        ("ttl", "u1"),
        ("proto", "u1"),
        ("csum", ">u2"),
        ("src", ">u4"),
        ("dst", ">u4"),
    ]
)
assert HEAD4_DT.itemsize == HEAD4


def ip4_head(
    data: np.ndarray, addr: np.ndarray, lengths: np.ndarray, *, rfc1812: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The first 34 bytes of each packet as :data:`HEAD4_DT` records (one gather), and which
    packets are untagged IPv4: version 4, IHL >= 5, and with ``rfc1812`` also RFC 1812
    5.2.2's length checks (the frame holds the header, total length >= header length).

    TTL, protocol, checksum and the addresses sit at fixed offsets whatever the IHL. Edit the
    records, then write them back with :func:`ip4_head_store`.
    """
    a = _as_intp(addr)
    try:
        h = window(data, HEAD4)[a].view(HEAD4_DT)
    except IndexError:
        raise _range_error(data, a, HEAD4) from None
    # version 4 and IHL 5..15 in one compare: vihl - 0x45 (uint8 arithmetic wraps) <= 10
    ok = (h["ethertype"] == ETH_P_IP) & ((h["vihl"] - np.uint8(0x45)) <= 10)
    if rfc1812:
        ihl4 = (h["vihl"] & 0x0F).astype(np.intp) << 2
        ok &= (h["tot_len"] >= ihl4) & (np.asarray(lengths).astype(np.intp) >= 14 + ihl4)
    return h, ok


def ip4_head_store(data: np.ndarray, addr: np.ndarray, h: np.ndarray) -> None:
    """Write :func:`ip4_head` records back at ``addr`` (one scatter)."""
    window(data, HEAD4)[_as_intp(addr)] = h.view(f"V{HEAD4}")


def ip4_head_dec_ttl(h: np.ndarray) -> None:
    """TTL - 1 and the RFC 1624 checksum update on :func:`ip4_head` records. The checksum,
    the complement of the sum, rises by 0x0100 with end-around carry: in wrapping uint16
    arithmetic, add 1 more when the sum wrapped (the result is then below 0x0100)."""
    h["ttl"] -= np.uint8(1)
    c = h["csum"].astype(np.uint16) + np.uint16(0x0100)
    c += c < 0x0100
    h["csum"] = c
