"""The eBPF assembler encodes instructions exactly as the kernel's uapi defines them."""

from __future__ import annotations

import struct

import pytest

from cndp.bpf import asm, progs


def test_encodings_match_uapi():
    # r0 = 2 ; exit  (the classic XDP_PASS program)
    assert asm.mov64_imm(asm.R0, 2) == bytes([0xB7, 0x00, 0, 0, 2, 0, 0, 0])
    assert asm.exit_() == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    # r2 = *(u32 *)(r1 + 16)
    assert asm.ldx(4, asm.R2, asm.R1, 16) == bytes([0x61, 0x12, 16, 0, 0, 0, 0, 0])
    # call bpf_redirect_map
    assert asm.call(51) == bytes([0x85, 0, 0, 0, 51, 0, 0, 0])
    # ld_imm64 with a map fd: two slots, src_reg = BPF_PSEUDO_MAP_FD
    ld = asm.ld_map_fd(asm.R1, 7)
    assert len(ld) == 16
    assert ld[0] == 0x18 and ld[1] == (1 << 4) | 1 and struct.unpack_from("<i", ld, 4)[0] == 7


def test_program_labels_resolve_forward_jumps():
    p = asm.Program()
    p.emit(asm.mov64_imm(asm.R0, 1))
    p.jump(asm.JEQ, asm.R0, 1, "out")
    p.emit(asm.ld_map_fd(asm.R1, 3))  # a two-slot instruction between jump and target
    p.emit(asm.mov64_imm(asm.R0, 2))
    p.label("out")
    p.emit(asm.exit_())
    code = p.assemble()
    off = struct.unpack_from("<h", code, 8 + 2)[0]
    assert off == 3  # skips ld_imm64 (2 slots) and one mov


def test_undefined_and_duplicate_labels_are_errors():
    p = asm.Program()
    p.jump(asm.JA, 0, None, "nowhere")
    with pytest.raises(ValueError, match="undefined label"):
        p.assemble()
    p = asm.Program().label("x")
    with pytest.raises(ValueError, match="twice"):
        p.label("x")


def test_redirect_program_shape():
    code = progs.xsk_redirect(5)
    assert len(code) == 6 * 8  # ldx, ld_imm64 (2), mov, call, exit
    assert code[-8:] == asm.exit_()
    # fallback action XDP_PASS is passed in r3 (flags of bpf_redirect_map)
    assert asm.mov64_imm(asm.R3, asm.XDP_PASS) in code
