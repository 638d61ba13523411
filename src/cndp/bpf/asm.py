"""A small eBPF assembler: enough to write our XDP programs in Python, no compiler needed.

Each helper returns encoded ``struct bpf_insn`` bytes (8 bytes, 16 for ld_imm64). Jumps take
offsets in instructions; ``Program`` resolves symbolic labels so programs stay readable.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# instruction classes
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
# sizes
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
# modes
IMM, MEM = 0x00, 0x60
# sources
K, X = 0x00, 0x08
# ALU ops and JMP ops: the operation sits in the high nibble (0x00, 0x10, ... 0xc0)
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH = range(0x00, 0xD0, 0x10)
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, CALL, EXIT, JLT, JLE = range(0x00, 0xC0, 0x10)

PSEUDO_MAP_FD = 1

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

# helper function ids (include/uapi/linux/bpf.h)
FN_MAP_LOOKUP_ELEM = 1
FN_REDIRECT = 23
FN_REDIRECT_MAP = 51

# XDP actions
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)

# offsets in struct xdp_md
XDP_MD_DATA = 0
XDP_MD_DATA_END = 4
XDP_MD_INGRESS_IFINDEX = 12
XDP_MD_RX_QUEUE_INDEX = 16

_SIZES = {1: B, 2: H, 4: W, 8: DW}


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | (dst & 0xF), off, imm)


def mov64_imm(dst: int, imm: int) -> bytes:
    return insn(ALU64 | MOV | K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> bytes:
    return insn(ALU64 | MOV | X, dst, src)


def alu64_imm(op: int, dst: int, imm: int) -> bytes:
    return insn(ALU64 | op | K, dst, 0, 0, imm)


def alu64_reg(op: int, dst: int, src: int) -> bytes:
    return insn(ALU64 | op | X, dst, src)


def ldx(size: int, dst: int, src: int, off: int) -> bytes:
    return insn(LDX | MEM | _SIZES[size], dst, src, off)


def stx(size: int, dst: int, src: int, off: int) -> bytes:
    return insn(STX | MEM | _SIZES[size], dst, src, off)


def st_imm(size: int, dst: int, off: int, imm: int) -> bytes:
    return insn(ST | MEM | _SIZES[size], dst, 0, off, imm)


def ld_map_fd(dst: int, fd: int) -> bytes:
    """Load a map's address by fd (the verifier rewrites the fd to the map pointer)."""
    return insn(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, fd) + insn(0, 0, 0, 0, 0)


def call(helper: int) -> bytes:
    return insn(JMP | CALL, 0, 0, 0, helper)


def exit_() -> bytes:
    return insn(JMP | EXIT)


def jmp_imm(op: int, dst: int, imm: int, off: int) -> bytes:
    return insn(JMP | op | K, dst, 0, off, imm)


def jmp_reg(op: int, dst: int, src: int, off: int) -> bytes:
    return insn(JMP | op | X, dst, src, off)


def ja(off: int) -> bytes:
    return insn(JMP | JA, 0, 0, off)


@dataclass
class Program:
    """Builds a program with symbolic jump labels.

    ``emit`` appends encoded instructions; ``jump(op, dst, imm_or_None, label, src=)`` emits a
    conditional (or, with op=JA, an unconditional) jump to a label placed later by ``label``.
    """

    _code: list[bytes] = field(default_factory=list)
    _labels: dict[str, int] = field(default_factory=dict)
    _fixups: list[tuple[int, str]] = field(default_factory=list)

    def _slots(self) -> int:
        return sum(len(c) // 8 for c in self._code)

    def emit(self, *chunks: bytes) -> Program:
        self._code.extend(chunks)
        return self

    def label(self, name: str) -> Program:
        if name in self._labels:
            raise ValueError(f"label {name!r} defined twice")
        self._labels[name] = self._slots()
        return self

    def jump(
        self, op: int, dst: int, imm: int | None, target: str, *, src: int | None = None
    ) -> Program:
        self._fixups.append((len(self._code), target))
        if op == JA:
            self._code.append(ja(0))
        elif src is not None:
            self._code.append(jmp_reg(op, dst, src, 0))
        else:
            self._code.append(jmp_imm(op, dst, imm or 0, 0))
        return self

    def assemble(self) -> bytes:
        code = list(self._code)
        starts = []
        pos = 0
        for c in code:
            starts.append(pos)
            pos += len(c) // 8
        for idx, target in self._fixups:
            if target not in self._labels:
                raise ValueError(f"jump to undefined label {target!r}")
            rel = self._labels[target] - (starts[idx] + 1)
            c = code[idx]
            code[idx] = c[:2] + struct.pack("<h", rel) + c[4:]
        return b"".join(code)
