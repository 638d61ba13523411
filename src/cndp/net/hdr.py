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

from ..mem.pktvec import _as_intp, gather

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


def _u16(m: np.ndarray, rows: np.ndarray, col: np.ndarray) -> np.ndarray:
    c = np.minimum(col, WINDOW - 2)
    return (m[rows, c].astype(np.uint16) << 8) | m[rows, c + 1]


def _u32(m: np.ndarray, rows: np.ndarray, col: np.ndarray) -> np.ndarray:
    c = np.minimum(col, WINDOW - 4)
    b = m[rows[:, None], c[:, None] + np.arange(4)].astype(np.uint32)
    return (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]


def parse(data: np.ndarray, addr: np.ndarray, lengths: np.ndarray) -> Parsed:
    """Parse the packets starting at UMEM offsets ``addr`` with lengths ``lengths``.

    Frames are assumed to have at least WINDOW bytes of buffer after their first byte (true
    for UMEM frames, which are >= 2 KiB); bytes past a packet's length are never trusted.
    """
    n = len(addr)
    m = gather(data, addr, WINDOW)
    ln = np.asarray(lengths[:n]).astype(np.intp)
    rows = np.arange(n)
    et = (m[:, 12].astype(np.uint16) << 8) | m[:, 13]
    tagged = ((et == ETH_P_8021Q) | (et == ETH_P_8021AD)) & (ln >= 18)
    vlan = np.where(tagged, ((m[:, 14].astype(np.uint16) << 8) | m[:, 15]) & 0x0FFF, 0)
    et = np.where(tagged, (m[:, 16].astype(np.uint16) << 8) | m[:, 17], et).astype(np.uint16)
    l3 = np.where(tagged, 18, 14).astype(np.intp)
    l3c = np.minimum(l3, WINDOW - 40)

    vihl = m[rows, l3c]
    ihl = (vihl & 0x0F).astype(np.intp) * 4
    tot4 = _u16(m, rows, l3c + 2).astype(np.intp)
    is4 = (
        (et == ETH_P_IP)
        & (vihl >> 4 == 4)
        & (ihl >= 20)
        & (ln >= l3 + ihl)
        & (tot4 >= ihl)
        & (l3 + tot4 <= ln)
    )
    is6 = (et == ETH_P_IPV6) & (m[rows, l3c] >> 4 == 6) & (ln >= l3 + 40)
    proto = np.where(is4, m[rows, l3c + 9], np.where(is6, m[rows, l3c + 6], 0)).astype(np.uint8)
    ttl = np.where(is4, m[rows, l3c + 8], np.where(is6, m[rows, l3c + 7], 0)).astype(np.uint8)
    src4 = np.where(is4, _u32(m, rows, l3c + 12), 0).astype(np.uint32)
    dst4 = np.where(is4, _u32(m, rows, l3c + 16), 0).astype(np.uint32)

    frag = _u16(m, rows, l3c + 6) & 0x1FFF  # fragment offset: ports only in the first
    l4 = np.where(is4, l3 + ihl, l3 + 40)
    has_ports = (
        ((is4 & (frag == 0)) | is6)
        & ((proto == IPPROTO_UDP) | (proto == IPPROTO_TCP))
        & (l4 + 4 <= np.minimum(ln, WINDOW))
    )
    sport = np.where(has_ports, _u16(m, rows, l4), 0).astype(np.uint16)
    dport = np.where(has_ports, _u16(m, rows, l4 + 2), 0).astype(np.uint16)
    return Parsed(
        et, vlan.astype(np.uint16), l3, is4, is6, proto, ttl, src4, dst4, has_ports, sport, dport, m
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
