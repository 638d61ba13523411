"""txgen's range-rewriting XDP program for the live-frames engine.

BPF_PROG_RUN in live-frames mode (``BPF_F_TEST_XDP_LIVE_FRAMES``) runs an XDP program once per
frame on pages of a page pool that were filled with the template *once*: a recycled page keeps
whatever the previous run wrote (Documentation/bpf/bpf_prog_run.rst: "if a program rewrites the
packet contents, it has to be prepared to see either the original content or the modified
version"). So this program never reads the frame: every run it writes the *absolute* value of
each range field and of every checksum the fields touch, computed from its state alone.

State: one entry of a BPF array map (not per-CPU: a process may migrate between calls and the
sequence must continue): a u64 count of runs, then the next value of each field (u32). Each
run stores the current values into the frame and advances them modulo the range
(``v += inc``; above ``max`` subtract ``max - min + 1``, below ``min`` add it): frame ``i``
carries ``min + (start - min + i * inc) mod (max - min + 1)``, as txgen's other engines.

Checksums (RFC 1624, eqn. 3): ``C' = ~(~C + ~m + m')``. ``C`` and every ``m`` (the template's
own field contents) are constants, so ``~C + sum(~m)`` is folded in Python into one constant
``K``; a run adds the new fields' contributions to ``K``, folds and complements. A field byte at
an even offset from the IP header is the high byte of its 16-bit word, at an odd offset the low
byte (the L4 header starts an even distance after the IP header, so one parity serves both).
The IPv4 header checksum, TCP, UDP (0 stays 0 over IPv4: no checksum; a result of 0 is sent
as 0xffff), ICMP and ICMPv6 are kept; IPv4 addresses, IPv6 addresses feed the pseudo-header.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..sys import bpf as sysbpf
from . import asm, progs
from .asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10

MAX_RANGES = 16
MAX_FRAME = 4096  # one page-pool page holds the frame (the kernel refuses larger ones anyway)
STATE_HDR = 8  # the u64 run counter before the u32 field values

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options: followed to the L4 header
IPV6_FRAG = 44

# opcodes our assembler does not name
_JSLT, _JSLE = 0xC0, 0xD0
_END_TO_BE = asm.ALU | 0xD0 | 0x08


class LiveRangeError(ConfigError):
    """A range field that cannot be generated (bad width, offset, bounds or increment)."""


class TemplateError(ConfigError):
    """A template frame whose headers cannot be followed to keep its checksums."""


@dataclass
class LiveRange:
    """One field rewritten per frame: ``start, start+inc, ...`` wrapping within [min, max].

    Wrapping is modular: frame ``i`` carries ``min + (start - min + i*inc) mod (max-min+1)``
    (``inc`` may be negative or 0, ``|inc| <= max - min``). ``width`` bytes at ``offset``, in
    network byte order.
    """

    offset: int
    width: int
    start: int
    min: int
    max: int
    inc: int = 1


# --------------------------------------------------------------------------------------------
# template layout (slow path: once per engine)


@dataclass(frozen=True)
class FrameLayout:
    """Where the headers and checksums of a template are (offsets into the frame)."""

    length: int
    l3: int | None = None  # IP header
    ip_version: int = 0  # 0: not IP
    ip_hdr_end: int | None = None
    ip_csum: int | None = None  # IPv4 header checksum
    l4: int | None = None
    l4_end: int | None = None  # end of the IP packet; bytes after it are padding
    proto: int | None = None
    l4_csum: int | None = None  # None: no L4 checksum to keep
    udp: bool = False
    pseudo: tuple[int, int] | None = None  # the addresses' bytes in the pseudo-header
    structural: frozenset[int] = frozenset()  # bytes a range may not rewrite

    def in_ip_csum(self, b: int) -> bool:
        return self.ip_csum is not None and self.l3 <= b < self.ip_hdr_end  # type: ignore[operator]

    def in_l4_csum(self, b: int) -> bool:
        if self.l4_csum is None:
            return False
        if self.l4 <= b < self.l4_end:  # type: ignore[operator]
            return True
        return self.pseudo is not None and self.pseudo[0] <= b < self.pseudo[1]

    def parity(self, b: int) -> int:
        """0: the byte is the high byte of its checksum word, 1: the low byte."""
        return (b - (self.l3 or 0)) & 1


def _u16(frame: bytes, off: int) -> int:
    return struct.unpack_from("!H", frame, off)[0]


def _bad(what: str) -> TemplateError:
    return TemplateError(
        f"template frame: {what}",
        fix="build the template with complete, consistent headers (lengths, IHL, next header)",
    )


def parse_layout(frame: bytes) -> FrameLayout:
    """Follow Ethernet, up to two VLAN tags, IPv4 (with options) or IPv6 (with hop-by-hop,
    routing and destination-options headers) to TCP/UDP/ICMP/ICMPv6. Non-IP frames and other
    protocols are fine: they just have no checksum to keep."""
    n = len(frame)
    if n < 14:
        raise _bad(f"{n} bytes is shorter than an Ethernet header (14)")
    structural = {12, 13}
    off = 12
    etype = _u16(frame, off)
    for _ in range(2):
        if etype not in VLAN_TPIDS:
            break
        off += 4
        if off + 2 > n:
            raise _bad("a VLAN tag is cut short")
        etype = _u16(frame, off)
        structural |= {off, off + 1}
    l3 = off + 2
    if etype == ETH_P_IP:
        if l3 + 20 > n:
            raise _bad("the IPv4 header is cut short")
        vihl = frame[l3]
        ihl = (vihl & 0xF) * 4
        if vihl >> 4 != 4 or ihl < 20 or l3 + ihl > n:
            raise _bad(f"bad IPv4 version/IHL byte 0x{vihl:02x}")
        tot = _u16(frame, l3 + 2)
        if tot < ihl or l3 + tot > n:
            raise _bad(f"IPv4 total length {tot} does not fit the {n - l3} bytes after L2")
        structural |= {l3, l3 + 2, l3 + 3, l3 + 9, l3 + 10, l3 + 11}
        fragoff = _u16(frame, l3 + 6)
        proto = frame[l3 + 9]
        # a fragment's L4 checksum covers the whole datagram, not this frame: leave it alone
        l4 = l3 + ihl if fragoff & 0x3FFF == 0 else None
        return _with_l4(
            frame,
            FrameLayout(
                length=n,
                l3=l3,
                ip_version=4,
                ip_hdr_end=l3 + ihl,
                ip_csum=l3 + 10,
                l4_end=l3 + tot,
                proto=proto,
                pseudo=(l3 + 12, l3 + 20),
                structural=frozenset(structural),
            ),
            l4,
        )
    if etype == ETH_P_IPV6:
        if l3 + 40 > n:
            raise _bad("the IPv6 header is cut short")
        if frame[l3] >> 4 != 6:
            raise _bad(f"bad IPv6 version byte 0x{frame[l3]:02x}")
        end = l3 + 40 + _u16(frame, l3 + 4)
        if end > n:
            raise _bad(f"IPv6 payload length {end - l3 - 40} does not fit the frame")
        structural |= {l3, l3 + 4, l3 + 5, l3 + 6}
        nh, p = frame[l3 + 6], l3 + 40
        while nh in IPV6_EXT:
            if p + 8 > end:
                raise _bad("an IPv6 extension header is cut short")
            hl = (frame[p + 1] + 1) * 8
            structural |= set(range(p, min(p + hl, end)))
            nh, p = frame[p], p + hl
        if p > end:
            raise _bad("IPv6 extension headers run past the payload")
        l4 = None if nh == IPV6_FRAG else p
        return _with_l4(
            frame,
            FrameLayout(
                length=n,
                l3=l3,
                ip_version=6,
                ip_hdr_end=l3 + 40,
                l4_end=end,
                proto=nh,
                pseudo=(l3 + 8, l3 + 40),
                structural=frozenset(structural),
            ),
            l4,
        )
    return FrameLayout(length=n, structural=frozenset(structural))


def _with_l4(frame: bytes, lay: FrameLayout, l4: int | None) -> FrameLayout:
    kw = dict(lay.__dict__)
    structural = set(lay.structural)
    kw["l4"] = l4
    kw["l4_csum"] = None
    end = lay.l4_end
    proto, v6 = lay.proto, lay.ip_version == 6
    need = {IPPROTO_UDP: 8, IPPROTO_TCP: 20, IPPROTO_ICMP: 4, IPPROTO_ICMPV6: 4}.get(proto)  # type: ignore[arg-type]
    if l4 is None or need is None or (proto == IPPROTO_ICMP and v6):
        return FrameLayout(**kw)
    if proto == IPPROTO_ICMPV6 and not v6:
        return FrameLayout(**kw)
    if l4 + need > end:  # type: ignore[operator]
        raise _bad(f"the L4 header (protocol {proto}) is cut short")
    if proto == IPPROTO_UDP:
        csum = l4 + 6
        structural |= {l4 + 4, l4 + 5}
        kw["udp"] = True
    elif proto == IPPROTO_TCP:
        csum = l4 + 16
        structural |= {l4 + 12}
    else:
        csum = l4 + 2
    structural |= {csum, csum + 1}
    # UDP over IPv4 may carry no checksum (0): it stays 0
    if not (proto == IPPROTO_UDP and not v6 and _u16(frame, csum) == 0):
        kw["l4_csum"] = csum
    if proto == IPPROTO_ICMP:
        kw["pseudo"] = None  # ICMPv4 has no pseudo-header
    kw["structural"] = frozenset(structural)
    return FrameLayout(**kw)


# --------------------------------------------------------------------------------------------
# validation


def _range_error(i: int, r: LiveRange, what: str, fix: str) -> LiveRangeError:
    return LiveRangeError(f"range {i} (offset {r.offset}, width {r.width}): {what}", fix=fix)


def validate_ranges(frame: bytes, ranges: Sequence[LiveRange]) -> FrameLayout | None:
    """Check every range against the frame; returns the layout (None without ranges)."""
    if not ranges:
        return None
    if len(frame) > MAX_FRAME:
        raise TemplateError(
            f"template frame of {len(frame)} bytes is larger than {MAX_FRAME}",
            fix="live frames live in one page: use a smaller frame",
        )
    if len(ranges) > MAX_RANGES:
        raise LiveRangeError(
            f"{len(ranges)} range fields, at most {MAX_RANGES} are supported",
            fix="merge adjacent fields or use fewer ranges",
        )
    lay = parse_layout(frame)
    taken: dict[int, int] = {}
    for i, r in enumerate(ranges):
        for name in ("offset", "width", "start", "min", "max", "inc"):
            v = getattr(r, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise _range_error(i, r, f"{name}={v!r} is not an integer", "give whole numbers")
        if r.width not in (1, 2, 4):
            raise _range_error(i, r, "width must be 1, 2 or 4 bytes", "split wider fields")
        if r.offset < 0 or r.offset + r.width > len(frame):
            raise _range_error(
                i,
                r,
                f"bytes {r.offset}..{r.offset + r.width - 1} lie outside the "
                f"{len(frame)}-byte frame",
                f"use an offset between 0 and {len(frame) - r.width}",
            )
        top = (1 << (8 * r.width)) - 1
        if not 0 <= r.min <= r.max <= top:
            raise _range_error(
                i,
                r,
                f"min={r.min}, max={r.max} is not a range of {r.width}-byte values",
                f"need 0 <= min <= max <= {top}",
            )
        if not r.min <= r.start <= r.max:
            raise _range_error(
                i, r, f"start={r.start} is outside [{r.min}, {r.max}]", "pick start in [min, max]"
            )
        if r.inc != 0 and abs(r.inc) > r.max - r.min:
            raise _range_error(
                i,
                r,
                f"inc={r.inc} steps past the whole range [{r.min}, {r.max}]",
                f"use |inc| <= {r.max - r.min}, or inc=0 for a constant field",
            )
        for b in range(r.offset, r.offset + r.width):
            if b in lay.structural:
                raise _range_error(
                    i,
                    r,
                    f"byte {b} is a length, type, version or checksum field of the template",
                    "ranges may rewrite addresses, ports, IDs, TTL, VLAN IDs, sequence numbers "
                    "and payload; checksums are kept by the program",
                )
            if b in taken:
                raise _range_error(
                    i, r, f"byte {b} is also rewritten by range {taken[b]}", "make ranges disjoint"
                )
            taken[b] = i
    return lay


# --------------------------------------------------------------------------------------------
# checksum contributions


def _contrib(lay: FrameLayout, r: LiveRange, value: int, idx: Sequence[int]) -> int:
    """The field's bytes ``idx`` (0 = most significant) as summands of 16-bit words."""
    s = 0
    for j in idx:
        byte = (value >> (8 * (r.width - 1 - j))) & 0xFF
        s += byte << 8 if lay.parity(r.offset + j) == 0 else byte
    return s


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _covered(lay: FrameLayout, r: LiveRange) -> tuple[list[int], list[int]]:
    ip = [j for j in range(r.width) if lay.in_ip_csum(r.offset + j)]
    l4 = [j for j in range(r.width) if lay.in_l4_csum(r.offset + j)]
    return ip, l4


def _base(
    frame: bytes, lay: FrameLayout, ranges: Sequence[LiveRange], csum: int, which: int
) -> int:
    """K = ~C + sum(~m) over the template's field contents, folded (never 0)."""
    k = ~_u16(frame, csum) & 0xFFFF
    for r in ranges:
        idx = _covered(lay, r)[which]
        if idx:
            orig = int.from_bytes(frame[r.offset : r.offset + r.width], "big")
            k += ~_fold(_contrib(lay, r, orig, idx)) & 0xFFFF
    return _fold(k) or 0xFFFF


# --------------------------------------------------------------------------------------------
# code generation


def _mov32(dst: int, value: int) -> bytes:
    """dst = value (0 <= value < 2**32): a 32-bit move zero-extends."""
    return asm.insn(
        asm.ALU | asm.MOV | asm.K, dst, 0, 0, value - (1 << 32) if value >> 31 else value
    )


def _ld_imm64(dst: int, value: int) -> bytes:
    value &= (1 << 64) - 1
    lo, hi = value & 0xFFFFFFFF, value >> 32
    s = lambda x: x - (1 << 32) if x >> 31 else x  # noqa: E731
    return asm.insn(asm.LD | asm.DW | asm.IMM, dst, 0, 0, s(lo)) + asm.insn(0, 0, 0, 0, s(hi))


def _emit_add(p: asm.Program, dst: int, value: int) -> None:
    """dst += value (64-bit; R5 carries constants beyond an imm32)."""
    if -(1 << 31) <= value < (1 << 31):
        p.emit(asm.alu64_imm(asm.ADD, dst, value))
    else:
        p.emit(_ld_imm64(R5, value), asm.alu64_reg(asm.ADD, dst, R5))


def _be(dst: int, bits: int) -> bytes:
    """Host (little endian) to network order, zero-extending (BPF_END | BPF_TO_BE)."""
    return asm.insn(_END_TO_BE, dst, 0, 0, bits)


def _emit_contrib(p: asm.Program, lay: FrameLayout, r: LiveRange, idx: list[int], acc: int) -> None:
    """acc += contribution of the field value in R1 (bytes ``idx``); clobbers R2, R5."""
    if len(idx) == r.width:
        odd = lay.parity(r.offset)
        if r.width == 1:
            if odd:
                p.emit(asm.alu64_reg(asm.ADD, acc, R1))
            else:
                p.emit(asm.mov64_reg(R2, R1), asm.alu64_imm(asm.LSH, R2, 8))
                p.emit(asm.alu64_reg(asm.ADD, acc, R2))
            return
        if r.width == 2:
            if odd:
                p.emit(asm.mov64_reg(R2, R1), _be(R2, 16), asm.alu64_reg(asm.ADD, acc, R2))
            else:
                p.emit(asm.alu64_reg(asm.ADD, acc, R1))
            return
        p.emit(asm.mov64_reg(R2, R1))
        if odd:  # bytes swap places within each 16-bit half
            p.emit(_be(R2, 32))
        p.emit(
            asm.mov64_reg(R5, R2),
            asm.alu64_imm(asm.RSH, R5, 16),
            asm.alu64_reg(asm.ADD, acc, R5),
            asm.alu64_imm(asm.AND, R2, 0xFFFF),
            asm.alu64_reg(asm.ADD, acc, R2),
        )
        return
    for j in idx:  # a field straddling a checksum's coverage: byte by byte
        p.emit(asm.mov64_reg(R2, R1))
        shift = 8 * (r.width - 1 - j)
        if shift:
            p.emit(asm.alu64_imm(asm.RSH, R2, shift))
        p.emit(asm.alu64_imm(asm.AND, R2, 0xFF))
        if lay.parity(r.offset + j) == 0:
            p.emit(asm.alu64_imm(asm.LSH, R2, 8))
        p.emit(asm.alu64_reg(asm.ADD, acc, R2))


def _emit_finish(p: asm.Program, acc: int, off: int, udp: bool, label: str) -> None:
    for _ in range(2):  # acc < 2**32: two folds bring it under 2**16
        p.emit(
            asm.mov64_reg(R2, acc),
            asm.alu64_imm(asm.RSH, R2, 16),
            asm.alu64_imm(asm.AND, acc, 0xFFFF),
            asm.alu64_reg(asm.ADD, acc, R2),
        )
    p.emit(asm.alu64_imm(asm.XOR, acc, 0xFFFF))
    if udp:  # 0 means "no checksum" in UDP: send its other form
        p.jump(asm.JNE, acc, 0, label)
        p.emit(asm.mov64_imm(acc, 0xFFFF))
        p.label(label)
    p.emit(_be(acc, 16), asm.stx(2, R7, acc, off))


def build(
    frame: bytes, ranges: Sequence[LiveRange], state_fd: int, action: int = asm.XDP_TX
) -> bytes:
    """Assemble the program for ``frame`` and ``ranges`` (validated here) over ``state_fd``."""
    lay = validate_ranges(frame, ranges) or FrameLayout(length=len(frame))
    cov = [_covered(lay, r) for r in ranges]
    do_ip = lay.ip_csum is not None and any(c[0] for c in cov)
    do_l4 = lay.l4_csum is not None and any(c[1] for c in cov)
    need = max([r.offset + r.width for r in ranges] + [14])
    if do_ip:
        need = max(need, lay.ip_csum + 2)  # type: ignore[operator]
    if do_l4:
        need = max(need, lay.l4_csum + 2)  # type: ignore[operator]

    p = asm.Program()
    p.emit(
        asm.mov64_reg(R6, R1),
        asm.st_imm(4, R10, -4, 0),
        asm.mov64_reg(R2, R10),
        asm.alu64_imm(asm.ADD, R2, -4),
        asm.ld_map_fd(R1, state_fd),
        asm.call(asm.FN_MAP_LOOKUP_ELEM),
    )
    p.jump(asm.JEQ, R0, 0, "drop")
    p.emit(
        asm.mov64_reg(R8, R0),
        asm.ldx(4, R7, R6, asm.XDP_MD_DATA),
        asm.ldx(4, R9, R6, asm.XDP_MD_DATA_END),
        asm.mov64_reg(R1, R7),
        asm.alu64_imm(asm.ADD, R1, need),
    )
    p.jump(asm.JGT, R1, None, "drop", src=R9)
    # count the run first: after an interrupted call (EINTR) this says how many frames went
    p.emit(asm.ldx(8, R1, R8, 0), asm.alu64_imm(asm.ADD, R1, 1), asm.stx(8, R8, R1, 0))
    if do_ip:
        p.emit(_mov32(R3, _base(frame, lay, ranges, lay.ip_csum, 0)))  # type: ignore[arg-type]
    if do_l4:
        p.emit(_mov32(R4, _base(frame, lay, ranges, lay.l4_csum, 1)))  # type: ignore[arg-type]
    for i, r in enumerate(ranges):
        slot = STATE_HDR + 4 * i
        p.emit(asm.ldx(4, R1, R8, slot))
        if r.width == 1:
            p.emit(asm.stx(1, R7, R1, r.offset))
        else:
            p.emit(asm.mov64_reg(R2, R1), _be(R2, 8 * r.width), asm.stx(r.width, R7, R2, r.offset))
        if do_ip and cov[i][0]:
            _emit_contrib(p, lay, r, cov[i][0], R3)
        if do_l4 and cov[i][1]:
            _emit_contrib(p, lay, r, cov[i][1], R4)
        if r.inc == 0:
            continue
        # next value, in signed 64-bit arithmetic (u32 value + inc cannot overflow it);
        # |inc| < span, so one correction brings it back into [min, max]
        _emit_add(p, R1, r.inc)
        span = r.max - r.min + 1
        if r.inc > 0:
            p.emit(_mov32(R5, r.max))
            p.jump(_JSLE, R1, None, f"keep{i}", src=R5)
            _emit_add(p, R1, -span)
        else:
            p.emit(_mov32(R5, r.min))
            p.jump(asm.JSGE, R1, None, f"keep{i}", src=R5)
            _emit_add(p, R1, span)
        p.label(f"keep{i}")
        p.emit(asm.stx(4, R8, R1, slot))
    if do_ip:
        _emit_finish(p, R3, lay.ip_csum, False, "ipok")  # type: ignore[arg-type]
    if do_l4:
        _emit_finish(p, R4, lay.l4_csum, lay.udp, "l4ok")  # type: ignore[arg-type]
    p.emit(asm.mov64_imm(R0, action), asm.exit_())
    p.label("drop")
    p.emit(asm.mov64_imm(R0, asm.XDP_DROP), asm.exit_())
    return p.assemble()


def state_size(nranges: int) -> int:
    return (STATE_HDR + 4 * nranges + 7) // 8 * 8


class RangeProgram:
    """The loaded program and its state map (closing both unloads everything)."""

    def __init__(
        self,
        frame: bytes,
        ranges: Sequence[LiveRange] = (),
        *,
        action: int = asm.XDP_TX,
        name: str = "txgen",
    ):
        self.frame = bytes(frame)
        self.ranges = [LiveRange(**vars(r)) for r in ranges]  # a copy: later edits change nothing
        self.layout = validate_ranges(self.frame, self.ranges)
        self.vsize = state_size(len(self.ranges))
        self.map_fd = sysbpf.map_create(
            sysbpf.MAP_TYPE_ARRAY, 4, self.vsize, 1, name=progs.PROG_PREFIX + name + "_st"
        )
        self.fd = -1
        try:
            self.reset()
            self.code = build(self.frame, self.ranges, self.map_fd, action)
            self.fd = progs.load(name, self.code)
        except BaseException:
            self.close()
            raise

    def reset(self, runs: int = 0) -> None:
        """Restart every sequence at its ``start`` (and set the run counter)."""
        vals = [r.start for r in self.ranges]
        raw = struct.pack(f"Q{len(vals)}I", runs, *vals).ljust(self.vsize, b"\0")
        sysbpf.map_update(self.map_fd, b"\0\0\0\0", raw)

    def _state(self) -> bytes:
        return sysbpf.map_lookup(self.map_fd, b"\0\0\0\0", self.vsize) or b"\0" * self.vsize

    def runs(self) -> int:
        """How many times the program ran (frames it handed to the kernel) since reset."""
        return struct.unpack_from("Q", self._state())[0]

    def values(self) -> list[int]:
        """The value each range field gets in the next frame."""
        return list(struct.unpack_from(f"{len(self.ranges)}I", self._state(), STATE_HDR))

    def close(self) -> None:
        if self.fd >= 0:
            sysbpf.close(self.fd)
            self.fd = -1
        if self.map_fd >= 0:
            sysbpf.close(self.map_fd)
            self.map_fd = -1

    def __enter__(self) -> RangeProgram:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# the reference model (numpy; used by tests and usable by other engines to pre-render frames)


def sequence(r: LiveRange, n: int, first: int = 0) -> np.ndarray:
    """Values of field ``r`` in frames ``first .. first+n-1`` (int64), without iterating."""
    span = r.max - r.min + 1
    base = (r.start - r.min + first * r.inc) % span  # Python ints: exact for any ``first``
    step = r.inc % span
    off = np.arange(n, dtype=np.int64) * step % span  # n * step < 2**63 for n < 2**31
    return (off + base) % span + r.min


def _csum_rows(rows: np.ndarray, extra: np.ndarray | int = 0) -> np.ndarray:
    """Internet checksum of each row (uint8, even or odd length) plus ``extra`` summands."""
    if rows.shape[1] % 2:
        rows = np.pad(rows, ((0, 0), (0, 1)))
    w = (rows[:, 0::2].astype(np.uint64) << 8) | rows[:, 1::2]
    s = w.sum(axis=1) + np.asarray(extra, dtype=np.uint64)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


def _put16(out: np.ndarray, off: int, v: np.ndarray) -> None:
    out[:, off] = v >> 8
    out[:, off + 1] = v & 0xFF


def render_frames(frame: bytes, ranges: Sequence[LiveRange], n: int, first: int = 0) -> np.ndarray:
    """Frames ``first .. first+n-1`` as the program writes them, shape (n, len(frame)).

    Checksums are recomputed in full (not incrementally), so for a template with valid
    checksums this is an independent oracle of the program's output.
    """
    lay = validate_ranges(frame, ranges)
    out = np.tile(np.frombuffer(frame, dtype=np.uint8), (n, 1))
    if lay is None:
        return out
    for r in ranges:
        v = sequence(r, n, first)
        for j in range(r.width):
            out[:, r.offset + j] = (v >> (8 * (r.width - 1 - j))) & 0xFF
    cov = [_covered(lay, r) for r in ranges]
    if lay.ip_csum is not None and any(c[0] for c in cov):
        out[:, lay.ip_csum : lay.ip_csum + 2] = 0
        _put16(out, lay.ip_csum, _csum_rows(out[:, lay.l3 : lay.ip_hdr_end]))
    if lay.l4_csum is not None and any(c[1] for c in cov):
        out[:, lay.l4_csum : lay.l4_csum + 2] = 0
        extra = np.uint64(lay.proto) + np.uint64(lay.l4_end - lay.l4)  # type: ignore[operator]
        if lay.pseudo is not None:
            a, b = lay.pseudo
            pw = (out[:, a:b:2].astype(np.uint64) << 8) | out[:, a + 1 : b : 2]
            extra = extra + pw.sum(axis=1)
        else:
            extra = np.uint64(0)  # ICMPv4: no pseudo-header at all
        c = _csum_rows(out[:, lay.l4 : lay.l4_end], extra)
        if lay.udp:
            c[c == 0] = 0xFFFF
        _put16(out, lay.l4_csum, c)
    return out
