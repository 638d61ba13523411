"""txgen streams: per-port settings, value ranges and the frames they produce.

A port sends one stream (pktgen's single-packet mode, optionally with ranges, or a pcap
replay). :class:`PortSettings` holds what the user configures; :class:`FrameSource` turns it
into frames for any run of sequence numbers with the vectorised builder
(:mod:`cndp.net.build`), so the transmit engines never build a packet in Python.

Ranges (pktgen's range mode): a field takes the values ``start, start+inc, ...`` and wraps
within ``[min, max]``: value ``i`` is ``min + (start - min + i*inc) mod (max - min + 1)``
(``inc`` may be negative or 0). Every field's sequence is periodic; the stream repeats after
the least common multiple of the periods, and a source whose period is small enough keeps
the whole period as one table of frames.

The txgen stamp: when the frame has room, its last :data:`STAMP_LEN` (18) bytes carry a
sequence number, a 48-bit transmit timestamp, a balance word, the stream id and a magic word
(little-endian), so a receiver finds it at ``len - 18`` without parsing headers and can count
loss, reordering and latency per stream. A 64-byte IPv4/UDP packet has exactly 18 payload
bytes. The balance word makes the 16-bit ones'-complement sum of the 12 bytes written per
frame (sequence, timestamp, balance) always 0xFFFF, the same as the all-zero stamp with
balance 0xFFFF that the frame's L4 checksum was computed over: the checksum stays valid
whatever the stamp says, so a sender writes 12 bytes per frame and never touches the
checksum (see :class:`Stamper`).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from ...errors import CndpError, ConfigError
from ...net import build as nb
from ...net.frames import mac_bytes, mac_str

FCS_LEN = 4
MIN_SIZE = 64
MAX_SIZE = nb.MAX_LEN + FCS_LEN
STAMP_LEN = 18
STAMP_MAGIC = int.from_bytes(b"TXG1", "little")
STAMP_DTYPE = np.dtype(
    [
        ("seq", "<u4"),
        ("ts_lo", "<u4"),  # the transmit time (CLOCK_MONOTONIC ns) modulo 2**48
        ("ts_hi", "<u2"),
        ("w", "<u2"),  # balance: keeps the L4 checksum valid
        ("stream", "<u2"),
        ("magic", "<u4"),
    ]
)
STAMP_VAR = np.dtype([("seq", "<u4"), ("ts_lo", "<u4"), ("ts_hi", "<u2"), ("w", "<u2")])
TS_MASK = (1 << 48) - 1
TABLE_BYTES = 16 << 20  # a periodic stream keeps at most this much as one frame table
CHUNK = 4096  # frames built at a time for streams with a longer period
BENCH_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("fd00:198:18::/48"))

PATTERNS = ("abc", "none", "zero", "user")
ENGINES = ("port", "live")
RANGE_FIELDS = {  # CLI name -> frame field (cndp.net.build.FIELDS)
    "dst ip": "dst_ip",
    "src ip": "src_ip",
    "dst mac": "dst_mac",
    "src mac": "src_mac",
    "dst port": "dport",
    "src port": "sport",
    "ttl": "ttl",
    "tos": "tos",
    "vlan": "vlan",
    "size": "length",
}
FIELD_NAMES = {v: k for k, v in RANGE_FIELDS.items()}


class TxgenError(CndpError):
    """A txgen setting or command that cannot be applied (the message says why)."""


# --------------------------------------------------------------------------------------------
# ranges


@dataclass
class Range:
    """One field's value sequence: ``start``, then ``+inc`` per frame, wrapping in [min, max]."""

    start: int
    min: int
    max: int
    inc: int = 0

    def check(self, what: str, lo: int, hi: int, fmt=str) -> None:
        for k in ("start", "min", "max", "inc"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TxgenError(f"range {what} {k}: expected an integer, got {v!r}")
        if not lo <= self.min <= self.max <= hi:
            raise TxgenError(
                f"range {what}: min {fmt(self.min)} is above max {fmt(self.max)}"
                if self.min > self.max
                else f"range {what}: min/max must lie in {fmt(lo)}..{fmt(hi)}",
                fix=f"set range {what} min and max so that min <= max",
            )
        if not self.min <= self.start <= self.max:
            raise TxgenError(
                f"range {what}: start {fmt(self.start)} is outside min..max "
                f"({fmt(self.min)}..{fmt(self.max)})",
                fix=f"set range {what} start between min and max, or give all four at once: "
                f"range <port> {what} <start> <min> <max> <inc>",
            )
        if abs(self.inc) > self.max - self.min:
            raise TxgenError(
                f"range {what}: increment {self.inc} is larger than max - min "
                f"({self.max - self.min})",
                fix="use a smaller increment (0 keeps the value fixed)",
            )

    @property
    def span(self) -> int:
        return self.max - self.min + 1

    @property
    def period(self) -> int:
        step = self.inc % self.span
        return 1 if step == 0 else self.span // math.gcd(step, self.span)

    def values(self, i0: int, n: int) -> np.ndarray:
        """Values for frames ``i0 .. i0+n-1`` (uint64; exact for spans up to 2**48 and
        n <= 2**16 per call)."""
        span = self.span
        step = self.inc % span
        base = (self.start - self.min + i0 * step) % span  # exact Python integers
        if step == 0:
            return np.full(n, self.min + base, dtype=np.uint64)
        j = np.arange(n, dtype=np.uint64)
        off = (j * np.uint64(step)) % np.uint64(span)  # < 2**16 * 2**48: fits
        return (off + np.uint64(base)) % np.uint64(span) + np.uint64(self.min)


# --------------------------------------------------------------------------------------------
# settings


def parse_ip(text: str, version: int | None = None) -> tuple[str, int | None]:
    """``"a.b.c.d[/len]"`` -> (address, prefix length or None)."""
    addr, _, plen = str(text).strip().partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise TxgenError(
            f"{text!r} is not an IP address", fix="write e.g. 198.18.0.1 or fd00:198:18::1"
        ) from None
    if version is not None and ip.version != version:
        raise TxgenError(f"{text!r} is not an IPv{version} address")
    n = None
    if plen:
        maxlen = 32 if ip.version == 4 else 128
        if not plen.isdigit() or not 0 <= int(plen) <= maxlen:
            raise TxgenError(f"{text!r}: prefix length must be 0..{maxlen}")
        n = int(plen)
    return str(ip), n


def parse_mac(text: str) -> str:
    """``00:11:22:33:44:55``, ``00-11-...`` or pktgen's ``0011:2233:4455``."""
    t = str(text).strip()
    parts = t.split(":")
    if len(parts) == 3 and all(len(p) == 4 for p in parts):
        t = ":".join(p[i : i + 2] for p in parts for i in (0, 2))
    try:
        return mac_str(mac_bytes(t))
    except (ValueError, TypeError):
        raise TxgenError(
            f"{text!r} is not a MAC address", fix="write 02:00:c6:12:00:01 or 0200:c612:0001"
        ) from None


def check_bench_ip(addr: str, what: str) -> None:
    ip = ipaddress.ip_address(addr)
    if not any(ip in n for n in BENCH_NETS if n.version == ip.version):
        raise TxgenError(
            f"{what} {addr} is outside the benchmarking ranges 198.18.0.0/15 and fd00:198:18::/48",
            fix="use an address in those ranges, or start txgen with --any-address",
        )


@dataclass
class PortSettings:
    """Everything a user configures for one port (pktgen's per-port state)."""

    count: int = 0  # packets to send; 0 = until stopped
    size: int = 64  # packet size including the 4-byte FCS
    rate: float = 100.0  # percent of the link speed
    pps: float = 0.0  # packets per second; > 0 overrides rate
    burst: int = 64
    type: str = "ipv4"
    proto: str = "udp"
    src_mac: str = "02:00:00:00:00:01"
    dst_mac: str = "ff:ff:ff:ff:ff:ff"
    src_ip: str = "198.18.0.1"
    src_prefix: int = 24
    dst_ip: str = "198.18.1.1"
    sport: int = 1234
    dport: int = 5678
    ttl: int = 64
    tos: int = 0
    vlan: int | None = None
    vlan_prio: int = 0
    pattern: str = "abc"
    user_pattern: str = ""
    latency: bool = True  # put the txgen stamp in frames that have room
    range_mode: bool = False
    ranges: dict[str, Range] = field(default_factory=dict)  # frame field -> Range
    pcap_file: str = ""
    pcap_mode: bool = False
    engine: str = "port"  # port (the lport's own AF_XDP/AF_PACKET socket) | live

    # -- derived ---------------------------------------------------------------------------
    @property
    def ip_version(self) -> int:
        return 6 if self.type == "ipv6" else 4

    def payload(self) -> bytes:
        if self.pattern == "abc":
            return nb.PATTERN_ABC
        if self.pattern == "user":
            return self.user_pattern.encode() or b"\0"
        return b""  # zero and none

    def template(self, size: int | None = None) -> nb.PacketTemplate:
        try:
            return nb.PacketTemplate(
                src_mac=self.src_mac,
                dst_mac=self.dst_mac,
                ip_version=self.ip_version,
                src_ip=self.src_ip,
                dst_ip=self.dst_ip,
                proto=self.proto,
                sport=self.sport,
                dport=self.dport,
                ttl=self.ttl,
                tos=self.tos,
                vlan=self.vlan,
                vlan_prio=self.vlan_prio,
                payload=self.payload(),
                length=(size or self.size) - FCS_LEN,
            )
        except ConfigError as e:
            raise TxgenError(str(e)) from None

    def min_size(self) -> int:
        lay = nb.layout_of(self.template(MAX_SIZE))
        return lay.min_length + FCS_LEN

    def pps_for(self, link_bps: float) -> float:
        """Packets per second asked for: ``pps`` if set, else ``rate`` % of the link
        (each packet takes size + 20 bytes of preamble and gap on the wire)."""
        if self.pps > 0:
            return float(self.pps)
        size = self.size
        if self.range_mode and "length" in self.ranges:
            r = self.ranges["length"]
            size = (r.min + r.max) / 2 + FCS_LEN
        return self.rate / 100.0 * link_bps / ((size + 20) * 8)

    def effective_ranges(self) -> dict[str, Range]:
        """The ranges that apply (range mode on), sizes translated to frame lengths."""
        if not self.range_mode:
            return {}
        return dict(self.ranges)

    def range_or_default(self, fld: str) -> Range:
        """The range of a field, or one that keeps the single-packet value."""
        r = self.ranges.get(fld)
        if r is not None:
            return replace(r)
        v = self.field_value(fld)
        return Range(v, v, v, 0)

    def field_value(self, fld: str) -> int:
        """A frame field's single-packet value as an integer."""
        if fld in ("src_mac", "dst_mac"):
            return nb.mac_int(getattr(self, fld))
        if fld in ("src_ip", "dst_ip"):
            v = nb.ip_int(getattr(self, fld))
            return v & 0xFFFFFFFF if self.ip_version == 6 else v
        if fld == "length":
            return self.size - FCS_LEN
        if fld == "vlan":
            return self.vlan or 0
        return int(getattr(self, fld))

    # -- validation ------------------------------------------------------------------------
    def validate(self, *, any_address: bool = False, mtu: int | None = None) -> None:
        """Raise TxgenError naming the first setting that cannot work."""
        _int_in("count", self.count, 0, 2**63 - 1)
        _int_in("burst", self.burst, 1, 1024)
        _int_in("size", self.size, MIN_SIZE, MAX_SIZE)
        _num_in("rate", self.rate, 0.0, 100.0)
        _num_in("pps", self.pps, 0.0, 1e9)
        if self.type not in ("ipv4", "ipv6"):
            raise TxgenError(f"type {self.type!r}: expected ipv4 or ipv6")
        if self.pattern not in PATTERNS:
            raise TxgenError(f"pattern {self.pattern!r}: expected one of {', '.join(PATTERNS)}")
        if len(self.user_pattern.encode()) > 16:
            raise TxgenError("user pattern: at most 16 characters (pktgen's limit)")
        if self.engine not in ENGINES:
            raise TxgenError(f"engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        for name in ("src_ip", "dst_ip"):
            parse_ip(getattr(self, name), self.ip_version)
            if not any_address:
                check_bench_ip(getattr(self, name), name.replace("_", " "))
        t = self.template(MAX_SIZE)
        lay = nb.layout_of(t)
        if self.size - FCS_LEN < lay.min_length:
            raise TxgenError(
                f"size {self.size} is too small for {self.type}/{self.proto}"
                + ("/vlan" if self.vlan is not None else "")
                + f": at least {lay.min_length + FCS_LEN}",
                fix=f"set size {lay.min_length + FCS_LEN} or more",
            )
        if mtu is not None:
            hdr = 18 if self.vlan is not None else 14
            biggest = self.size
            if self.range_mode and "length" in self.ranges:
                biggest = max(biggest, self.ranges["length"].max + FCS_LEN)
            if biggest - FCS_LEN - hdr > mtu:
                raise TxgenError(
                    f"size {biggest} exceeds the port MTU {mtu} "
                    f"(frames up to {mtu + hdr + FCS_LEN} bytes with FCS)",
                    fix="use a smaller size, or raise the MTU of the netdev",
                )
        for fld, r in self.ranges.items():
            self._check_range(fld, r, lay, any_address, full=self.range_mode)
        if self.pcap_mode and not self.pcap_file:
            raise TxgenError(
                "pcap mode is on but no pcap file is set", fix="set <port> pcap <file>"
            )

    def _check_range(
        self, fld: str, r: Range, lay: nb.Layout, any_address: bool, *, full: bool
    ) -> None:
        """Every value inside the field's domain; with ``full`` (range mode on) also
        min <= start <= max and a usable increment."""
        name = FIELD_NAMES.get(fld, fld)
        if fld not in nb.FIELD_BITS:
            raise TxgenError(f"unknown range field {fld!r}")
        lo, hi = 0, (1 << nb.FIELD_BITS[fld]) - 1
        if fld == "length":  # shown and checked as packet sizes (with FCS)
            r = Range(r.start + FCS_LEN, r.min + FCS_LEN, r.max + FCS_LEN, r.inc)
            lo, hi = lay.min_length + FCS_LEN, MAX_SIZE
        if fld == "vlan" and self.vlan is None and full:
            raise TxgenError("range vlan needs a VLAN tag", fix="set <port> vlan <id> first")
        for k in ("start", "min", "max"):
            v = getattr(r, k)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise TxgenError(f"range {name} {k} {v!r} is outside {lo}..{hi}")
        if isinstance(r.inc, bool) or not isinstance(r.inc, int) or abs(r.inc) > hi - lo:
            raise TxgenError(f"range {name} inc {r.inc!r} is outside -{hi - lo}..{hi - lo}")
        if full:
            r.check(name, lo, hi, lambda v: self.format_value(fld, v, fcs=False))
        if fld in ("src_ip", "dst_ip") and not any_address:
            for v in (r.start, r.min, r.max):
                check_bench_ip(self._ip_from_low(fld, v), f"range {name}")

    def _ip_from_low(self, fld: str, v: int) -> str:
        if self.ip_version == 4:
            return str(ipaddress.IPv4Address(v))
        hi = nb.ip_int(getattr(self, fld)) & ~0xFFFFFFFF
        return str(ipaddress.IPv6Address(hi | v))

    def format_value(self, fld: str, v: int, *, fcs: bool = True) -> str:
        """A field value as the CLI writes it (addresses, MACs; sizes with FCS)."""
        if fld in ("src_ip", "dst_ip"):
            return self._ip_from_low(fld, v)
        if fld in ("src_mac", "dst_mac"):
            return mac_str(int(v).to_bytes(6, "big"))
        if fld == "length" and fcs:
            return str(v + FCS_LEN)
        return str(v)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ranges"] = {k: asdict(v) for k, v in self.ranges.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PortSettings:
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise TxgenError(f"unknown setting(s) {sorted(bad)}")
        kw = dict(d)
        if "ranges" in kw:
            kw["ranges"] = {k: Range(**v) for k, v in kw["ranges"].items()}
        return cls(**kw)

    def copy(self) -> PortSettings:
        return PortSettings.from_dict(self.to_dict())


def _int_in(name: str, v: object, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise TxgenError(f"{name} {v!r} is out of range: expected an integer {lo}..{hi}")


def _num_in(name: str, v: object, lo: float, hi: float) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise TxgenError(f"{name} {v!r} is out of range: expected a number {lo:g}..{hi:g}")


# --------------------------------------------------------------------------------------------
# frame sources


@dataclass
class Rows:
    """Frames for a run of sequence numbers, ready for an engine."""

    data: np.ndarray  # (k, W) uint8, zero past each length
    lengths: np.ndarray  # (k,) int64


class FrameSource:
    """The frames of one stream: ``rows(q0, k)`` gives frames ``q0 .. q0+k-1``.

    ``stream_id`` goes into the stamp (txgen uses the sending lport id). ``period`` is the
    number of distinct frames before the stream repeats, when that is small enough to keep
    them all in one table (then ``table`` holds them), else None.
    """

    def __init__(self, s: PortSettings, stream_id: int = 0) -> None:
        self.settings = s
        self.stream_id = stream_id
        self.template = s.template()
        self.layout = nb.layout_of(self.template)
        self.ranges = s.effective_ranges()
        lens = self.ranges.get("length")
        self.max_len = lens.max if lens else self.template.length
        self.min_len = lens.min if lens else self.template.length
        self.width = self.max_len
        room = self.min_len - self.layout.payload
        self.stamped = bool(s.latency) and room >= STAMP_LEN
        period = 1
        for r in self.ranges.values():
            period = math.lcm(period, r.period)
            if period * self.width > TABLE_BYTES:
                break
        self.period: int | None = period if period * self.width <= TABLE_BYTES else None
        self._chunk_id = -1
        self._chunk: Rows | None = None
        self.table: Rows | None = self._make(0, self.period) if self.period else None

    # frames ---------------------------------------------------------------------------
    def _make(self, i0: int, n: int) -> Rows:
        flds = {f: r.values(i0, n) for f, r in self.ranges.items()}
        length = flds.pop("length", None)
        fr = nb.build(
            self.template,
            n,
            fields=flds,
            length=length.astype(np.int64) if length is not None else None,
            width=self.width,
            checksums=False,
        )
        if self.stamped:
            self._write_stamp(fr.data, fr.lengths)
        nb.fill_checksums(fr.data, fr.lengths, self.layout)
        return Rows(fr.data, fr.lengths)

    def _write_stamp(self, data: np.ndarray, lens: np.ndarray) -> None:
        st = np.zeros(len(lens), dtype=STAMP_DTYPE)
        st["w"] = 0xFFFF  # sequence 0, time 0: the 12 per-frame bytes sum to 0xFFFF
        st["stream"] = self.stream_id
        st["magic"] = STAMP_MAGIC
        b = st.view(np.uint8).reshape(len(lens), STAMP_LEN)
        if self.min_len == self.max_len:
            o = self.max_len - STAMP_LEN
            data[:, o : o + STAMP_LEN] = b
        else:
            rows = np.arange(len(lens))
            start = lens - STAMP_LEN
            for j in range(STAMP_LEN):  # a loop over the 18 stamp bytes, not over frames
                data[rows, start + j] = b[:, j]

    def rows(self, q0: int, k: int) -> Rows:
        """Frames for sequence numbers q0..q0+k-1 (copies)."""
        if self.table is not None:
            idx = (np.arange(q0, q0 + k, dtype=np.int64)) % self.period
            return Rows(self.table.data[idx], self.table.lengths[idx])
        out = []
        q, left = q0, k
        while left:
            cid, off = divmod(q, CHUNK)
            if cid != self._chunk_id:
                self._chunk = self._make(cid * CHUNK, CHUNK)
                self._chunk_id = cid
            c = self._chunk
            assert c is not None
            m = min(left, CHUNK - off)
            out.append(Rows(c.data[off : off + m], c.lengths[off : off + m]))
            q += m
            left -= m
        if len(out) == 1:
            return Rows(out[0].data.copy(), out[0].lengths.copy())
        return Rows(np.concatenate([r.data for r in out]), np.concatenate([r.lengths for r in out]))

    def live_ranges(self) -> list[tuple[int, int, int, int, int, int]]:
        return live_ranges(self.settings)

    def first_frame(self) -> bytes:
        r = self.rows(0, 1)
        return r.data[0, : int(r.lengths[0])].tobytes()


def live_ranges(s: PortSettings) -> list[tuple[int, int, int, int, int, int]]:
    """A stream's ranges as (offset, width, start, min, max, inc) for the live-frames engine,
    which rewrites 1-, 2- or 4-byte fields. Raises TxgenError for ranges it cannot do."""
    out = []
    t = s.template()
    lay = nb.layout_of(t)
    for fld, r in s.effective_ranges().items():
        if r.period == 1:
            continue
        if fld == "length":
            raise TxgenError(
                "the live engine sends one frame length: range size is not supported",
                fix="disable the size range, or use engine port",
            )
        off, w = lay.field_slot(fld)
        start, lo, hi, inc = r.start, r.min, r.max, r.inc
        if fld == "vlan":
            prio = t.vlan_prio << 13
            start, lo, hi = start | prio, lo | prio, hi | prio
        elif fld == "tos" and lay.ip_version == 6:
            # the traffic class straddles two bytes next to the version: not a plain field
            raise TxgenError(
                "the live engine cannot range the IPv6 traffic class",
                fix="use engine port for a tos range on IPv6",
            )
        if w == 6:  # a MAC: the live program rewrites its low 4 bytes
            if (lo >> 32) != (hi >> 32):
                raise TxgenError(
                    f"range {FIELD_NAMES[fld]}: the live engine varies only the low 32 bits "
                    "of a MAC",
                    fix="keep min and max within one block of 2**32 MACs (same first 2 bytes)",
                )
            off, w = off + 2, 4
            start, lo, hi = start & 0xFFFFFFFF, lo & 0xFFFFFFFF, hi & 0xFFFFFFFF
        out.append((off, w, start, lo, hi, inc))
    return out


# --------------------------------------------------------------------------------------------
# stamping


def _balance_table(n: int) -> np.ndarray:
    """``W[v] = ~fold(v)`` for v < 2**16 + n: the balance word of a folded-sum start ``v``."""
    v = np.arange(0x10000 + n, dtype=np.int64)
    f = np.where(v > 0xFFFF, v - 0xFFFF, v)
    return (0xFFFF - f).astype(np.uint16)


def _fold(v: int) -> int:
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return v


class Stamper:
    """Builds the 12 per-frame stamp bytes (sequence, timestamp, balance) of a burst.

    The balance word of frame j is ``~fold(seq_lo + seq_hi + ts words)``. Within a burst the
    sequence numbers are ``s0 + j``; unless the low 16 bits carry inside the burst (once per
    65536 frames), ``seq_lo + seq_hi = C + j`` for a constant C, so the balance words are one
    slice of a precomputed table: a burst costs four assignments, whatever its size.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rec = np.zeros(capacity, dtype=STAMP_VAR)
        self.items = self.rec.view("V12")
        self.ar = np.arange(capacity, dtype=np.uint32)
        self.table = _balance_table(capacity)

    def fill(self, k: int, seq0: int, ts_ns: int) -> np.ndarray:
        """Records for sequence numbers ``seq0 .. seq0+k-1`` sent at ``ts_ns``: ``V12`` items
        (a view, valid until the next call)."""
        rec = self.rec[:k]
        s0 = seq0 & 0xFFFFFFFF
        ts = ts_ns & TS_MASK
        np.add(self.ar[:k], np.uint32(s0), out=rec["seq"])  # wraps at 2**32
        rec["ts_lo"] = ts & 0xFFFFFFFF
        rec["ts_hi"] = ts >> 32
        t = (ts & 0xFFFF) + ((ts >> 16) & 0xFFFF) + (ts >> 32)
        if (s0 & 0xFFFF) + k <= 0x10000 and s0 + k <= 0x100000000:
            d = _fold((s0 & 0xFFFF) + (s0 >> 16) + t)
            rec["w"] = self.table[d : d + k]
        else:  # the low half carries inside this burst: the general way
            seq = rec["seq"].astype(np.int64)
            x = (seq & 0xFFFF) + (seq >> 16) + t
            x = (x & 0xFFFF) + (x >> 16)
            x = (x & 0xFFFF) + (x >> 16)
            rec["w"] = 0xFFFF - x
        return self.items[:k]


def decode_stamps(raw: np.ndarray) -> np.ndarray:
    """V18 items (the last 18 bytes of frames) as STAMP_DTYPE records."""
    return raw.view(STAMP_DTYPE)
