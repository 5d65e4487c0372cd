"""unit: the eBPF emulator's semantics, op by op, and its refusals word for word.

The kernel's semantics (Documentation/bpf/standardization/instruction-set.rst): 64-bit
registers; ALU (32-bit) operations use the low halves and zero-extend the result; an
immediate is sign-extended to 64 bits for ALU64 and JMP; shifts take the count modulo
the width; unsigned division by 0 gives 0 and modulo by 0 keeps the dividend; JMP32
compares the low halves; JSGT/JSGE/JSLT/JSLE compare signed, the others unsigned.
"""

from __future__ import annotations

import struct

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import device_filter
from cgroup2.devices.asm import (
    JMP,
    JMP32,
    LD,
    LDX,
    MODE_ABS,
    MODE_IMM,
    MODE_MEM,
    ST,
    AluOp,
    Assembler,
    Instruction,
    JumpOp,
    Reg,
    Size,
    X,
    alu32,
    alu64,
    exit_insn,
    load_mem,
)
from cgroup2.devices.emulator import CTX_SIZE, EmulatorError, ProgramEmulator, emulate

M64 = 2**64 - 1
M32 = 2**32 - 1
CTX = struct.pack("=III", (6 << 16) | 2, 1, 3)  # c 1:3 rw


def run(*insns: Instruction, ctx: bytes = CTX) -> int:
    a = Assembler()
    a.emit(*insns)
    return ProgramEmulator(a.assemble()).run(ctx)


def r64(*body: Instruction) -> int:
    """The 64-bit value of r0 after ``body`` (two runs: the low and the high half)."""
    low = run(*body, exit_insn())
    high = run(*body, alu64(AluOp.RSH, Reg.R0, imm=32), exit_insn())
    return (high << 32) | low


def set64(reg: int, value: int) -> Instruction:
    """``reg = value`` (ALU64 MOV of a sign-extended 32-bit immediate)."""
    return alu64(AluOp.MOV, reg, imm=value)


A64 = -16  # 0xffff_ffff_ffff_fff0
A32 = 0xFFFF_FFF0


@pytest.mark.parametrize(
    ("op", "b", "want64", "want32"),
    [
        (AluOp.ADD, 3, (A64 + 3) & M64, A32 + 3),
        (AluOp.ADD, 32, 16, 16),
        (AluOp.SUB, 3, (A64 - 3) & M64, A32 - 3),
        (AluOp.SUB, -1, (A64 + 1) & M64, A32 + 1),
        (AluOp.MUL, 3, (A64 * 3) & M64, (A32 * 3) & M32),
        (AluOp.DIV, 3, (A64 & M64) // 3, A32 // 3),
        (AluOp.DIV, 0, 0, 0),
        (AluOp.MOD, 7, (A64 & M64) % 7, A32 % 7),
        (AluOp.MOD, 0, A64 & M64, A32),
        (AluOp.OR, 0x0F, M64, M32),
        (AluOp.AND, 0x31, 0x30, 0x30),
        (AluOp.XOR, 0xFF, (A64 ^ 0xFF) & M64, A32 ^ 0xFF),
        (AluOp.LSH, 4, (A64 << 4) & M64, (A32 << 4) & M32),
        (AluOp.LSH, 65, (A64 << 1) & M64, (A32 << 1) & M32),  # count mod width
        (AluOp.LSH, 33, (A64 << 33) & M64, (A32 << 1) & M32),
        (AluOp.RSH, 4, (A64 & M64) >> 4, A32 >> 4),
        (AluOp.RSH, 33, (A64 & M64) >> 33, A32 >> 1),
        (AluOp.ARSH, 4, (A64 >> 4) & M64, (-16 >> 4) & M32),
        (AluOp.ARSH, 33, (A64 >> 33) & M64, (-16 >> 1) & M32),
        (AluOp.MOV, 5, 5, 5),
        (AluOp.MOV, -5, -5 & M64, -5 & M32),
    ],
)
def test_alu_ops_64_and_32_bits_imm_and_reg(op: AluOp, b: int, want64: int, want32: int) -> None:
    assert r64(set64(Reg.R0, A64), alu64(op, Reg.R0, imm=b)) == want64
    assert r64(set64(Reg.R0, A64), set64(Reg.R6, b), alu64(op, Reg.R0, src=Reg.R6)) == want64
    # 32-bit: low halves in, zero-extended out (the high half of both operands is junk)
    assert r64(set64(Reg.R0, A64), alu32(op, Reg.R0, imm=b)) == want32
    junk = [set64(Reg.R6, -1), alu64(AluOp.LSH, Reg.R6, imm=32)]
    if b & M32:
        junk.append(alu64(AluOp.OR, Reg.R6, imm=b) if b >= 0 else set64(Reg.R6, b))
    assert r64(set64(Reg.R0, A64), *junk, alu32(op, Reg.R0, src=Reg.R6)) == want32


def test_positive_64_bit_operand() -> None:
    # a 64-bit value whose top bit is clear stays positive for ARSH, and a 32-bit ARSH
    # looks only at bit 31
    assert r64(set64(Reg.R0, 0x4000_0000), alu64(AluOp.ARSH, Reg.R0, imm=4)) == 0x0400_0000
    assert r64(set64(Reg.R0, 0x4000_0000), alu32(AluOp.ARSH, Reg.R0, imm=4)) == 0x0400_0000
    assert (
        r64(set64(Reg.R0, -1), alu64(AluOp.LSH, Reg.R0, imm=31), alu32(AluOp.ARSH, Reg.R0, imm=31))
        == M32
    )  # low half 0x8000_0000 >> 31, signed


def test_arsh_64_of_a_value_with_bit_31_set() -> None:
    # 0x8000_0000 is positive as a 64-bit value: a 64-bit ARSH brings in zeros
    v = [set64(Reg.R0, 1), alu64(AluOp.LSH, Reg.R0, imm=31)]
    assert r64(*v, alu64(AluOp.ARSH, Reg.R0, imm=4)) == 0x0800_0000
    assert r64(*v, set64(Reg.R6, 4), alu64(AluOp.ARSH, Reg.R0, src=Reg.R6)) == 0x0800_0000
    assert r64(*v, alu32(AluOp.ARSH, Reg.R0, imm=4)) == 0xF800_0000


def test_neg() -> None:
    neg64 = Instruction(0x87, Reg.R0)  # ALU64 NEG
    neg32 = Instruction(0x84, Reg.R0)
    assert r64(set64(Reg.R0, 16), neg64) == (-16) & M64
    assert r64(set64(Reg.R0, 16), neg32) == (-16) & M32
    assert r64(set64(Reg.R0, -1), neg64) == 1


# (a, b) as 64-bit register values; the expected result of each jump op, 64 and 32 bits
_PAIRS = [(1, -1), (-1, 1), (5, 5), (2, 7), (0x1_0000_0001, 1)]
_JUMPS = {
    # op: (64-bit results per pair, 32-bit results per pair)
    JumpOp.JEQ: ((0, 0, 1, 0, 0), (0, 0, 1, 0, 1)),
    JumpOp.JNE: ((1, 1, 0, 1, 1), (1, 1, 0, 1, 0)),
    JumpOp.JGT: ((0, 1, 0, 0, 1), (0, 1, 0, 0, 0)),
    JumpOp.JGE: ((0, 1, 1, 0, 1), (0, 1, 1, 0, 1)),
    JumpOp.JLT: ((1, 0, 0, 1, 0), (1, 0, 0, 1, 0)),
    JumpOp.JLE: ((1, 0, 1, 1, 0), (1, 0, 1, 1, 1)),
    JumpOp.JSET: ((1, 1, 1, 1, 1), (1, 1, 1, 1, 1)),
    JumpOp.JSGT: ((1, 0, 0, 0, 1), (1, 0, 0, 0, 0)),
    JumpOp.JSGE: ((1, 0, 1, 0, 1), (1, 0, 1, 0, 1)),
    JumpOp.JSLT: ((0, 1, 0, 1, 0), (0, 1, 0, 1, 0)),
    JumpOp.JSLE: ((0, 1, 1, 1, 0), (0, 1, 1, 1, 1)),
}


def jumped(cls: int, op: JumpOp, a: int, b: int, *, reg: bool) -> int:
    """1 when ``if (r2 op b) goto +1`` jumps."""
    load_a = (
        [set64(Reg.R2, a)]
        if a < 2**31
        else [
            set64(Reg.R2, a >> 32),
            alu64(AluOp.LSH, Reg.R2, imm=32),
            alu64(AluOp.OR, Reg.R2, imm=a & 0xFFFF),
        ]
    )
    if reg:
        body = [set64(Reg.R3, b), Instruction(cls | X | op, Reg.R2, Reg.R3, 1)]
    else:
        body = [Instruction(cls | op, Reg.R2, 0, 1, b)]
    return run(
        *load_a,
        alu32(AluOp.MOV, Reg.R0, imm=0),
        *body,
        exit_insn(),
        alu32(AluOp.MOV, Reg.R0, imm=1),
        exit_insn(),
    )


@pytest.mark.parametrize("op", list(_JUMPS))
def test_jump_conditions(op: JumpOp) -> None:
    want64, want32 = _JUMPS[op]
    for (a, b), w64, w32 in zip(_PAIRS, want64, want32, strict=True):
        for reg in (False, True):
            assert jumped(JMP, op, a, b, reg=reg) == w64, (op, a, b, reg, "64")
            assert jumped(JMP32, op, a, b, reg=reg) == w32, (op, a, b, reg, "32")


def test_jset_without_common_bits() -> None:
    assert jumped(JMP, JumpOp.JSET, 2, 5, reg=False) == 0
    assert jumped(JMP32, JumpOp.JSET, 0x1_0000_0000 + 2, 1, reg=True) == 0


def test_ja_and_backward_jumps() -> None:
    ja = Instruction(JMP | JumpOp.JA, off=1)
    assert (
        run(alu32(AluOp.MOV, Reg.R0, imm=7), ja, alu32(AluOp.MOV, Reg.R0, imm=9), exit_insn()) == 7
    )
    # a loop: r0 counts down from 3, jumping back while it is not 0
    assert (
        run(
            alu32(AluOp.MOV, Reg.R0, imm=3),
            alu32(AluOp.MOV, Reg.R6, imm=0),
            alu32(AluOp.ADD, Reg.R6, imm=5),
            alu32(AluOp.SUB, Reg.R0, imm=1),
            Instruction(JMP | JumpOp.JNE, Reg.R0, 0, -3, 0),
            alu32(AluOp.MOV, Reg.R0, src=Reg.R6),
            exit_insn(),
        )
        == 15
    )


def test_loads_of_each_size_and_byte_order() -> None:
    ctx = bytes(range(1, 13))
    for size, off in ((Size.B, 11), (Size.H, 10), (Size.W, 8), (Size.DW, 0), (Size.DW, 4)):
        n = size.nbytes
        if off % n:
            continue
        want = int.from_bytes(ctx[off : off + n], "little")
        a = Assembler()
        a.emit(load_mem(Reg.R0, Reg.R1, off, size), exit_insn())
        assert ProgramEmulator(a.assemble(), byteorder="little").run(ctx) == want & M32
        big = int.from_bytes(ctx[off : off + n], "big")
        assert ProgramEmulator(a.assemble(), byteorder="big").run(ctx) == big & M32
    a = Assembler()
    a.emit(load_mem(Reg.R0, Reg.R1, 0, Size.DW), alu64(AluOp.RSH, Reg.R0, imm=32), exit_insn())
    assert ProgramEmulator(a.assemble(), byteorder="little").run(ctx) == 0x0807_0605


def test_context_copied_to_another_register_is_still_the_context() -> None:
    assert (
        run(alu64(AluOp.MOV, Reg.R6, src=Reg.R1), load_mem(Reg.R0, Reg.R6, 4, Size.W), exit_insn())
        == 1
    )


def test_imm64_load() -> None:
    lo = Instruction(LD | MODE_IMM | Size.DW, Reg.R0, 0, 0, -2)  # 0xffff_fffe
    hi = Instruction(0, 0, 0, 0, 0x1234_5678)
    assert r64(lo, hi) == 0x1234_5678_FFFF_FFFE
    assert r64(Instruction(LD | MODE_IMM | Size.DW, Reg.R0, 0, 0, 7), Instruction(0, imm=-1)) == (
        0xFFFF_FFFF_0000_0007
    )


def test_context_layout_and_byte_order() -> None:
    little = ProgramEmulator(device_filter([])[0])
    assert little.context("c", 1, 3, "rw") == struct.pack("<III", (6 << 16) | 2, 1, 3)
    assert little.context("b", M32, 0, "m") == struct.pack("<III", (1 << 16) | 1, M32, 0)
    big = ProgramEmulator(device_filter([])[0].encode("big"), byteorder="big")
    assert big.context("c", 1, 3, "w") == struct.pack(">III", (4 << 16) | 2, 1, 3)
    assert CTX_SIZE == 12


def test_big_endian_machine_runs_the_same_rules() -> None:
    prog = device_filter([DeviceRule(True, "c", 1, 3, "rw"), DeviceRule(False, "c", 1, 3, "w")])[0]
    for order in ("little", "big"):
        e = ProgramEmulator(prog.encode(order), byteorder=order)  # type: ignore[arg-type]
        assert e.allows("c", 1, 3, "r") and not e.allows("c", 1, 3, "w")
        assert not e.allows("b", 1, 3, "r") and not e.allows("c", 1, 4, "r")
        e2 = ProgramEmulator(prog, byteorder=order)  # type: ignore[arg-type]
        assert e2.allows("c", 1, 3, "r") and not e2.allows("c", 1, 3, "rw")


def test_allows_only_when_r0_is_1() -> None:
    a = Assembler()
    a.emit(alu32(AluOp.MOV, Reg.R0, imm=2), exit_insn())
    e = ProgramEmulator(a.assemble())
    assert e.run(CTX) == 2 and not e.allows("c", 1, 3, "r")
    assert emulate(device_filter([DeviceRule(True)])[0], "b", 8, 0, "rwm") is True
    assert emulate(device_filter([DeviceRule(False)])[0], "b", 8, 0, "rwm") is False


def err(*insns: Instruction, ctx: bytes = CTX) -> str:
    with pytest.raises(EmulatorError) as e:
        run(*insns, ctx=ctx)
    return str(e.value)


def test_refusals_word_for_word() -> None:
    mov0 = alu32(AluOp.MOV, Reg.R0, imm=0)
    assert err(exit_insn()) == "cgroups: eBPF exits with r0 unset at 0"
    assert err(alu64(AluOp.MOV, Reg.R0, src=Reg.R1), exit_insn()) == (
        "cgroups: eBPF exits with r0 unset at 1"
    )
    assert err(mov0, alu32(AluOp.MOV, Reg.R0, src=Reg.R6)) == ("cgroups: eBPF reads r6 unset at 1")
    assert err(mov0, alu32(AluOp.ADD, Reg.R7, imm=1)) == "cgroups: eBPF reads r7 unset at 1"
    assert err(mov0, alu32(AluOp.MOV, Reg.R0, src=Reg.R1)) == (
        "cgroups: eBPF pointer arithmetic at 1"
    )
    assert err(mov0, alu64(AluOp.ADD, Reg.R0, src=Reg.R1)) == (
        "cgroups: eBPF pointer arithmetic at 1"
    )
    assert err(mov0, alu64(AluOp.ADD, Reg.R1, imm=4)) == "cgroups: eBPF pointer arithmetic at 1"
    assert err(mov0, Instruction(0xD4, Reg.R0, imm=16)) == (
        "cgroups: eBPF byte swap is not supported"
    )
    assert err(mov0, Instruction(0xE4, Reg.R0, imm=1)) == (
        "cgroups: eBPF ALU operation 0xe0 is not supported"
    )
    assert err(mov0, Instruction(0xE5, Reg.R0, 0, 0, 1), exit_insn()) == (
        "cgroups: eBPF jump operation 0xe0 is not supported"
    )
    assert err(mov0, Instruction(0x85, imm=1)) == "cgroups: eBPF helper calls are not supported"
    assert err(mov0, Instruction(0x5D, Reg.R0, Reg.R6, 0)) == "cgroups: eBPF reads r6 unset at 1"
    assert err(Instruction(0x55, Reg.R8, 0, 0, 1)) == "cgroups: eBPF reads r8 unset at 0"
    assert err(mov0, Instruction(0x5D, Reg.R0, Reg.R1, 0)) == (
        "cgroups: eBPF compares a pointer at 1"
    )
    assert err(mov0, Instruction(0x55, Reg.R1, 0, 0, 1)) == (
        "cgroups: eBPF compares a pointer at 1"
    )
    assert err(mov0, load_mem(Reg.R0, Reg.R1, 12, Size.W)) == (
        "cgroups: eBPF loads 4 bytes at context offset 12 at 1"
    )
    assert err(mov0, load_mem(Reg.R0, Reg.R1, 2, Size.W)) == (
        "cgroups: eBPF loads 4 bytes at context offset 2 at 1"
    )
    assert err(load_mem(Reg.R0, Reg.R1, -1, Size.B)) == (
        "cgroups: eBPF loads 1 bytes at context offset -1 at 0"
    )
    assert err(load_mem(Reg.R0, Reg.R1, 8, Size.DW)) == (
        "cgroups: eBPF loads 8 bytes at context offset 8 at 0"
    )
    assert err(mov0, load_mem(Reg.R0, Reg.R0, 0, Size.W)) == (
        "cgroups: eBPF loads through r0, which is not the context, at 1"
    )
    abs_ld = Instruction(LDX | MODE_ABS | Size.W, Reg.R0, Reg.R1)
    assert err(abs_ld) == f"cgroups: eBPF load mode of {abs_ld} is not supported"
    st = Instruction(ST | MODE_MEM | Size.W, Reg.R1, 0, 0, 1)
    assert err(mov0, st) == (
        f"cgroups: eBPF instruction {st} at 1 is not supported "
        "(stores, the stack and legacy packet loads are not)"
    )
    ld_abs = Instruction(LD | MODE_ABS | Size.W, Reg.R0, imm=1)
    assert err(mov0, ld_abs) == (
        f"cgroups: eBPF instruction {ld_abs} at 1 is not supported "
        "(stores, the stack and legacy packet loads are not)"
    )
    assert err(mov0, Instruction(LD | MODE_IMM | Size.DW, Reg.R0, imm=1)) == (
        "cgroups: eBPF 64-bit immediate load lacks its second half"
    )
    assert err(mov0) == "cgroups: eBPF program jumps or falls off its end at 1"
    assert err(Instruction(JMP | JumpOp.JA, off=-2)) == (
        "cgroups: eBPF program jumps or falls off its end at -1"
    )


def test_a_program_that_never_ends() -> None:
    assert err(Instruction(JMP | JumpOp.JA, off=-1)) == "cgroups: eBPF program runs too long"


def test_a_long_straight_program_is_not_too_long() -> None:
    # 4,096 instructions run once each: far from the limit
    body = [alu32(AluOp.ADD, Reg.R0, imm=1)] * 4094
    assert run(alu32(AluOp.MOV, Reg.R0, imm=0), *body, exit_insn()) == 4094


@pytest.mark.parametrize("data", [b"", b"\x95" * 7, b"\x95" * 9])
def test_program_bytes_must_be_whole_instructions(data: bytes) -> None:
    with pytest.raises(EmulatorError) as e:
        ProgramEmulator(data)
    assert str(e.value) == (
        f"cgroups: an eBPF program is a non-empty multiple of 8 bytes, not {len(data)}"
    )


def test_context_refusals_word_for_word() -> None:
    e = ProgramEmulator(device_filter([])[0])
    cases = [
        (("a", 1, 3, "r"), "cgroups: a device access has type 'b' or 'c', not 'a'"),
        (("c", 1, 3, ""), "cgroups: a device access requests at least one of r, w, m"),
        (("c", -1, 3, "r"), "cgroups: device major -1 is not in 0..4294967295"),
        (("c", 1, 2**32, "r"), "cgroups: device minor 4294967296 is not in 0..4294967295"),
        (("c", True, 3, "r"), "cgroups: device major True is not in 0..4294967295"),
        (("c", 1, "3", "r"), "cgroups: device minor '3' is not in 0..4294967295"),
        (("c", 1, 3, "x"), "cgroups: invalid device access 'x': letters must be r, w, m"),
    ]
    for args, message in cases:
        with pytest.raises(CgroupError) as exc:
            e.context(*args)  # type: ignore[arg-type]
        assert str(exc.value) == message
    assert e.context("c", 0, M32, "r")[4:] == struct.pack("=II", 0, M32)
