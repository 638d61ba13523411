"""Vectorised frame builder: one template plus per-frame field arrays -> N frames.

A :class:`PacketTemplate` describes one Ethernet frame (optional 802.1Q tag, IPv4 or IPv6,
UDP, TCP or ICMP/ICMPv6, payload pattern, length). :func:`build` turns it into an ``(N, W)``
``uint8`` matrix of N frames (row i is frame i, zero past its own length) and their lengths,
with any header field varying per frame: pass ``fields={"dst_ip": array, "sport": array,
...}`` and each array is written into its column with one assignment. The IPv4 header
checksum and the UDP/TCP/ICMP checksums are then computed for all rows at once
(:mod:`cndp.net.csum`).

The template row itself is built once with ``struct`` (slow path, cached per template).

Per-frame fields (:data:`FIELDS`): ``dst_mac``/``src_mac`` (48-bit integers), ``vlan`` (VLAN
id; the template's priority is kept), ``src_ip``/``dst_ip`` (IPv4: the address as a 32-bit
integer; IPv6: the *last 32 bits* of the address, the other 96 come from the template),
``sport``/``dport`` (UDP/TCP ports; for ICMP the echo identifier and sequence number),
``ttl`` (IPv6: hop limit), ``tos`` (IPv6: traffic class), ``length`` (frame bytes, also
settable with ``length=``).
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from . import csum
from .frames import mac_bytes

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
ETH_MIN_LEN = 60  # shortest Ethernet frame without FCS
MAX_LEN = 9216  # jumbo frames (a veth or a NIC with a large MTU)

PROTOS = ("udp", "tcp", "icmp")
L4_HDR = {"udp": 8, "tcp": 20, "icmp": 8}
FIELDS = (
    "dst_mac",
    "src_mac",
    "vlan",
    "src_ip",
    "dst_ip",
    "sport",
    "dport",
    "ttl",
    "tos",
    "length",
)
# bits each field may use (values are checked against it)
FIELD_BITS = {
    "dst_mac": 48,
    "src_mac": 48,
    "vlan": 12,
    "src_ip": 32,
    "dst_ip": 32,
    "sport": 16,
    "dport": 16,
    "ttl": 8,
    "tos": 8,
    "length": 16,
}

PATTERN_ABC = b"abcdefghijklmnopqrstuvwxyz012345"  # pktgen's "abc" fill


@dataclass(frozen=True)
class PacketTemplate:
    """One frame, as a traffic generator configures it. ``length`` is the frame length
    without the 4-byte FCS (a "64-byte packet" is ``length=60``)."""

    src_mac: str = "02:00:00:00:00:01"
    dst_mac: str = "ff:ff:ff:ff:ff:ff"
    ip_version: int = 4
    src_ip: str = "198.18.0.1"
    dst_ip: str = "198.18.1.1"
    proto: str = "udp"
    sport: int = 1234
    dport: int = 5678
    ttl: int = 64
    tos: int = 0
    vlan: int | None = None
    vlan_prio: int = 0
    ip_id: int = 0
    tcp_flags: int = 0x10  # ACK
    tcp_seq: int = 0x12345678
    tcp_ack: int = 0x12345690
    tcp_window: int = 8192
    icmp_type: int | None = None  # None: echo request (8, or 128 for ICMPv6)
    icmp_code: int = 0
    payload: bytes = PATTERN_ABC  # repeated to fill the frame; b"" fills with zeros
    length: int = 0  # 0: the shortest frame the layout allows (60 bytes for IPv4/UDP)

    def __post_init__(self) -> None:
        if self.length == 0 and self.proto in PROTOS:
            l3 = 18 if self.vlan is not None else 14
            l4 = l3 + (40 if self.ip_version == 6 else 20)
            object.__setattr__(self, "length", max(l4 + L4_HDR[self.proto], ETH_MIN_LEN))
        _check_template(self)

    @property
    def layout(self) -> Layout:
        return layout_of(self)

    def with_(self, **kw) -> PacketTemplate:
        """A copy with some attributes changed (validated again)."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(kw)
        return PacketTemplate(**d)


@dataclass(frozen=True)
class Layout:
    """Byte offsets of a template's headers (the same in every frame built from it)."""

    l3: int  # IP header
    l4: int  # UDP/TCP/ICMP header
    payload: int  # first payload byte (= minimum frame length before Ethernet padding)
    ip_version: int
    proto: str
    vlan: bool

    @property
    def l4_csum(self) -> int:
        """Offset of the L4 checksum field."""
        return self.l4 + {"udp": 6, "tcp": 16, "icmp": 2}[self.proto]

    @property
    def min_length(self) -> int:
        """Shortest frame this layout allows (headers, at least 60 bytes)."""
        return max(self.payload, ETH_MIN_LEN)

    def field_slot(self, name: str) -> tuple[int, int]:
        """(offset, width in bytes) of a per-frame field in the frame."""
        l3, l4 = self.l3, self.l4
        v6 = self.ip_version == 6
        slots = {
            "dst_mac": (0, 6),
            "src_mac": (6, 6),
            "src_ip": (l3 + 20, 4) if v6 else (l3 + 12, 4),
            "dst_ip": (l3 + 36, 4) if v6 else (l3 + 16, 4),
            "ttl": (l3 + 7, 1) if v6 else (l3 + 8, 1),
            "tos": (l3, 2) if v6 else (l3 + 1, 1),
            "sport": (l4 + 4, 2) if self.proto == "icmp" else (l4, 2),
            "dport": (l4 + 6, 2) if self.proto == "icmp" else (l4 + 2, 2),
        }
        if name == "vlan":
            if not self.vlan:
                raise ConfigError("a VLAN field needs a template with a VLAN tag")
            return (14, 2)
        if name not in slots:
            raise ConfigError(f"unknown frame field {name!r}", fix=f"use one of {FIELDS}")
        return slots[name]


@dataclass
class Frames:
    """N built frames: ``data[i, :lengths[i]]`` is frame i (the rest of the row is zero)."""

    data: np.ndarray  # (N, W) uint8
    lengths: np.ndarray  # (N,) int64
    layout: Layout
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lengths)

    def frame(self, i: int) -> bytes:
        return self.data[i, : int(self.lengths[i])].tobytes()

    def to_list(self) -> list[bytes]:
        """Every frame as bytes (slow path: tests, pcap files)."""
        return [self.frame(i) for i in range(len(self))]


# --------------------------------------------------------------------------------------------
# validation and the template row (slow path)


def _bad(msg: str, fix: str | None = None) -> ConfigError:
    return ConfigError(msg, fix=fix)


def _check_int(name: str, v: object, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= int(v) <= hi:
        raise _bad(f"{name} must be an integer in {lo}..{hi}, got {v!r}")


def _check_template(t: PacketTemplate) -> None:
    if t.ip_version not in (4, 6):
        raise _bad(f"ip_version must be 4 or 6, got {t.ip_version!r}", "use type ipv4 or ipv6")
    if t.proto not in PROTOS:
        raise _bad(f"unknown protocol {t.proto!r}", f"use one of {', '.join(PROTOS)}")
    for name in ("src_mac", "dst_mac"):
        try:
            mac_bytes(getattr(t, name))
        except (ValueError, TypeError, AttributeError) as e:
            raise _bad(f"{name}: {e}", "write a MAC as aa:bb:cc:dd:ee:ff") from None
    for name in ("src_ip", "dst_ip"):
        v = getattr(t, name)
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            raise _bad(f"{name}: {v!r} is not an IP address") from None
        if ip.version != t.ip_version:
            raise _bad(
                f"{name} {v} is an IPv{ip.version} address but the packet type is "
                f"IPv{t.ip_version}",
                "set both addresses of the same family as the packet type",
            )
    _check_int("sport", t.sport, 0, 0xFFFF)
    _check_int("dport", t.dport, 0, 0xFFFF)
    _check_int("ttl", t.ttl, 0, 255)
    _check_int("tos", t.tos, 0, 255)
    _check_int("ip_id", t.ip_id, 0, 0xFFFF)
    _check_int("vlan_prio", t.vlan_prio, 0, 7)
    if t.vlan is not None:
        _check_int("vlan", t.vlan, 0, 4095)
    _check_int("tcp_flags", t.tcp_flags, 0, 0x1FF)
    _check_int("tcp_seq", t.tcp_seq, 0, 0xFFFFFFFF)
    _check_int("tcp_ack", t.tcp_ack, 0, 0xFFFFFFFF)
    _check_int("tcp_window", t.tcp_window, 0, 0xFFFF)
    if t.icmp_type is not None:
        _check_int("icmp_type", t.icmp_type, 0, 255)
    _check_int("icmp_code", t.icmp_code, 0, 255)
    if not isinstance(t.payload, bytes):
        raise _bad(f"payload must be bytes, got {type(t.payload).__name__}")
    lay = layout_of(t)
    _check_int("length", t.length, lay.min_length, MAX_LEN)


@functools.lru_cache(maxsize=256)
def layout_of(t: PacketTemplate) -> Layout:
    l3 = 18 if t.vlan is not None else 14
    l4 = l3 + (40 if t.ip_version == 6 else 20)
    return Layout(l3, l4, l4 + L4_HDR[t.proto], t.ip_version, t.proto, t.vlan is not None)


def _fill(pattern: bytes, n: int) -> bytes:
    if n <= 0:
        return b""
    if not pattern:
        return bytes(n)
    reps = -(-n // len(pattern))
    return (pattern * reps)[:n]


@functools.lru_cache(maxsize=64)
def template_row(t: PacketTemplate, width: int) -> np.ndarray:
    """The template as a ``width``-byte row (read-only): headers for ``t.length``, the
    payload pattern up to ``width``, checksum fields zero."""
    lay = layout_of(t)
    eth = mac_bytes(t.dst_mac) + mac_bytes(t.src_mac)
    if t.vlan is not None:
        eth += struct.pack("!HH", ETH_P_8021Q, (t.vlan_prio << 13) | t.vlan)
    eth += struct.pack("!H", ETH_P_IPV6 if t.ip_version == 6 else ETH_P_IP)
    if t.proto == "udp":
        proto = IPPROTO_UDP
        l4 = struct.pack("!HHHH", t.sport, t.dport, t.length - lay.l4, 0)
    elif t.proto == "tcp":
        proto = IPPROTO_TCP
        off_flags = (5 << 12) | t.tcp_flags
        l4 = struct.pack(
            "!HHIIHHHH", t.sport, t.dport, t.tcp_seq, t.tcp_ack, off_flags, t.tcp_window, 0, 0
        )
    else:
        proto = IPPROTO_ICMPV6 if t.ip_version == 6 else IPPROTO_ICMP
        typ = t.icmp_type if t.icmp_type is not None else (128 if t.ip_version == 6 else 8)
        l4 = struct.pack("!BBHHH", typ, t.icmp_code, 0, t.sport, t.dport)
    src = ipaddress.ip_address(t.src_ip).packed
    dst = ipaddress.ip_address(t.dst_ip).packed
    if t.ip_version == 4:
        l3 = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            t.tos,
            t.length - lay.l3,
            t.ip_id,
            0,
            t.ttl,
            proto,
            0,
            src,
            dst,
        )
    else:
        vtf = (6 << 28) | (t.tos << 20)
        l3 = struct.pack("!IHBB16s16s", vtf, t.length - lay.l4, proto, t.ttl, src, dst)
    hdr = eth + l3 + l4
    assert len(hdr) == lay.payload
    row = np.frombuffer(hdr + _fill(t.payload, width - len(hdr)), dtype=np.uint8).copy()
    row.flags.writeable = False
    return row


# --------------------------------------------------------------------------------------------
# building N frames


def _be_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """(N,) unsigned integers -> (N, width) big-endian bytes."""
    v = np.asarray(values).astype(">u8", copy=False)
    return v.view(np.uint8).reshape(len(v), 8)[:, 8 - width :]


def _as_field(name: str, v, n: int) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.shape != (n,):
        raise _bad(f"field {name!r}: expected {n} values, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise _bad(f"field {name!r}: values must be integers, got {a.dtype}")
    if a.size and (int(a.min()) < 0 or int(a.max()) >> FIELD_BITS[name]):
        raise _bad(
            f"field {name!r}: values must fit in {FIELD_BITS[name]} bits "
            f"(got {int(a.min())}..{int(a.max())})"
        )
    return a


def build(
    t: PacketTemplate,
    n: int = 1,
    *,
    fields: Mapping[str, object] | None = None,
    length: int | np.ndarray | None = None,
    width: int | None = None,
    checksums: bool = True,
) -> Frames:
    """Build ``n`` frames from ``t`` with per-frame ``fields`` (see the module docstring).

    ``length`` (one value or one per frame; default ``t.length``) must be at least the
    layout's minimum; ``width`` (default: the longest frame) is the matrix width.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise _bad(f"frame count must be an integer >= 0, got {n!r}")
    lay = layout_of(t)
    fields = dict(fields or {})
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise _bad(f"unknown frame field(s) {sorted(unknown)}", f"use {', '.join(FIELDS)}")
    if length is None:
        length = fields.pop("length", t.length)
    else:
        fields.pop("length", None)
    lens = _as_field("length", length, n).astype(np.int64)
    if n and (int(lens.min()) < lay.min_length or int(lens.max()) > MAX_LEN):
        raise _bad(
            f"frame lengths {int(lens.min())}..{int(lens.max())} outside "
            f"{lay.min_length}..{MAX_LEN} for IPv{lay.ip_version}/{lay.proto.upper()}"
            + ("/VLAN" if lay.vlan else ""),
            f"use lengths of at least {lay.min_length} bytes (a {lay.min_length + 4}-byte "
            "packet with FCS)",
        )
    maxlen = int(lens.max()) if n else lay.min_length
    if width is None:
        width = maxlen
    if width < maxlen:
        raise _bad(f"width {width} is shorter than the longest frame ({maxlen})")
    row = template_row(t, width)
    data = np.empty((n, width), dtype=np.uint8)
    data[:] = row
    uniform = not n or bool((lens == width).all())
    if not uniform:
        # zero each row past its own length: checksums over the common width then stay right
        data[np.arange(width) >= lens[:, None]] = 0
    for name, v in fields.items():
        a = _as_field(name, v, n)
        off, w = lay.field_slot(name)
        if name == "vlan":
            a = a | (t.vlan_prio << 13)
        elif name == "tos" and lay.ip_version == 6:
            a = (6 << 12) | (a.astype(np.int64) << 4)
        data[:, off : off + w] = _be_bytes(a, w)
    # length fields (per frame when lengths differ from the template's)
    if not bool((lens == t.length).all()):
        if lay.ip_version == 4:
            csum.put_be16(data, lay.l3 + 2, lens - lay.l3)
        else:
            csum.put_be16(data, lay.l3 + 4, lens - lay.l4)
        if lay.proto == "udp":
            csum.put_be16(data, lay.l4 + 4, lens - lay.l4)
    if checksums and n:
        fill_checksums(data, lens, lay)
    return Frames(data, lens, lay)


def l4_pseudo_sum(data: np.ndarray, lens: np.ndarray, lay: Layout) -> np.ndarray:
    """Unfolded pseudo-header sum of every row (0 for ICMPv4, which has none)."""
    l4len = np.asarray(lens, dtype=np.int64) - lay.l4
    if lay.ip_version == 4:
        if lay.proto == "icmp":
            return np.zeros(len(data), dtype=np.uint64)
        proto = IPPROTO_UDP if lay.proto == "udp" else IPPROTO_TCP
        return csum.ipv4_pseudo_sum(data, lay.l3, proto, l4len)
    nxt = {"udp": IPPROTO_UDP, "tcp": IPPROTO_TCP, "icmp": IPPROTO_ICMPV6}[lay.proto]
    return csum.ipv6_pseudo_sum(data, lay.l3, nxt, l4len)


def fill_checksums(data: np.ndarray, lens: np.ndarray, lay: Layout) -> None:
    """Compute the IPv4 header and L4 checksums of every row in place (fields zeroed first).
    Rows must be zero past their own length."""
    if lay.ip_version == 4:
        data[:, lay.l3 + 10 : lay.l3 + 12] = 0
        csum.put_be16(data, lay.l3 + 10, csum.checksum(data, lay.l3, lay.l3 + 20))
    co = lay.l4_csum
    data[:, co : co + 2] = 0
    c = csum.checksum(data, lay.l4, None, l4_pseudo_sum(data, lens, lay))
    if lay.proto == "udp":
        c[c == 0] = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    csum.put_be16(data, co, c)


def check_frames(data: np.ndarray, lens: np.ndarray, lay: Layout) -> np.ndarray:
    """True for every row whose IPv4 header checksum (if any) and L4 checksum verify."""
    ok = np.ones(len(data), dtype=bool)
    if lay.ip_version == 4:
        ok &= csum.verify(data, lay.l3, lay.l3 + 20)
    ok &= csum.verify(data, lay.l4, None, l4_pseudo_sum(data, lens, lay))
    return ok


def ip_int(addr: str) -> int:
    """An address as an integer (IPv6: the whole 128 bits)."""
    return int(ipaddress.ip_address(addr))


def mac_int(mac: str | bytes) -> int:
    return int.from_bytes(mac_bytes(mac), "big")
