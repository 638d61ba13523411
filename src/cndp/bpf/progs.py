"""Built-in XDP programs, assembled in Python (no compiler at run time).

All of our programs carry the name prefix ``cndp_`` so that we can tell them from programs
someone else attached (we refuse to replace those unless forced).
"""

from __future__ import annotations

import struct

from ..sys import bpf as sysbpf
from . import asm
from .asm import R0, R1, R2, R3, R10

PROG_PREFIX = "cndp_"


def xsk_redirect(xskmap_fd: int) -> bytes:
    """Redirect to the XSKMAP entry of the frame's rx_queue_index; XDP_PASS when there is none.

    bpf_redirect_map() takes the fall-back action in the low bits of its flags (kernel >= 5.3),
    so no lookup is needed first.
    """
    return b"".join(
        [
            asm.ldx(4, R2, R1, asm.XDP_MD_RX_QUEUE_INDEX),
            asm.ld_map_fd(R1, xskmap_fd),
            asm.mov64_imm(R3, asm.XDP_PASS),
            asm.call(asm.FN_REDIRECT_MAP),
            asm.exit_(),
        ]
    )


def verdict(action: int) -> bytes:
    """Return a fixed action (pass, drop, tx)."""
    return asm.mov64_imm(R0, action) + asm.exit_()


def counting(action: int, counter_fd: int) -> bytes:
    """Count frames and bytes in a per-CPU array (key 0: frames, key 1: bytes), then ``action``.

    Used as the kernel's own XDP_DROP ceiling in benchmarks and as a sink in tests.
    """
    p = asm.Program()
    p.emit(
        asm.mov64_reg(asm.R6, R1),
        # bytes = data_end - data
        asm.ldx(4, asm.R7, R1, asm.XDP_MD_DATA_END),
        asm.ldx(4, asm.R8, R1, asm.XDP_MD_DATA),
        asm.alu64_reg(asm.SUB, asm.R7, asm.R8),
        asm.st_imm(4, R10, -4, 0),
        asm.mov64_reg(R2, R10),
        asm.alu64_imm(asm.ADD, R2, -4),
        asm.ld_map_fd(R1, counter_fd),
        asm.call(asm.FN_MAP_LOOKUP_ELEM),
    )
    p.jump(asm.JEQ, R0, 0, "bytes")
    p.emit(asm.ldx(8, R1, R0, 0), asm.alu64_imm(asm.ADD, R1, 1), asm.stx(8, R0, R1, 0))
    p.label("bytes")
    p.emit(
        asm.st_imm(4, R10, -4, 1),
        asm.mov64_reg(R2, R10),
        asm.alu64_imm(asm.ADD, R2, -4),
        asm.ld_map_fd(R1, counter_fd),
        asm.call(asm.FN_MAP_LOOKUP_ELEM),
    )
    p.jump(asm.JEQ, R0, 0, "out")
    p.emit(asm.ldx(8, R1, R0, 0), asm.alu64_reg(asm.ADD, R1, asm.R7), asm.stx(8, R0, R1, 0))
    p.label("out")
    p.emit(asm.mov64_imm(R0, action), asm.exit_())
    return p.assemble()


def load(name: str, code: bytes) -> int:
    """Load an XDP program under our name prefix; returns the fd."""
    full = name if name.startswith(PROG_PREFIX) else PROG_PREFIX + name
    return sysbpf.prog_load(
        sysbpf.PROG_TYPE_XDP, code, name=full, expected_attach_type=sysbpf.ATTACH_XDP
    )


def is_ours(prog_name: str) -> bool:
    return prog_name.startswith(PROG_PREFIX)


class Counter:
    """A per-CPU array of two u64 (frames, bytes) read back summed over CPUs."""

    def __init__(self, name: str = "cndp_cnt"):
        self.ncpu = _possible_cpus()
        self.fd = sysbpf.map_create(sysbpf.MAP_TYPE_PERCPU_ARRAY, 4, 8, 2, name=name)

    def read(self) -> tuple[int, int]:
        vals = []
        for k in (0, 1):
            raw = sysbpf.map_lookup(self.fd, struct.pack("I", k), 8 * self.ncpu) or b""
            vals.append(sum(struct.unpack(f"{self.ncpu}Q", raw)) if raw else 0)
        return vals[0], vals[1]

    def close(self) -> None:
        sysbpf.close(self.fd)
        self.fd = -1


def _possible_cpus() -> int:
    """Per-CPU map values are sized by the *possible* CPUs, not the online ones."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count
