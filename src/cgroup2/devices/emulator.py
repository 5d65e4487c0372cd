"""An interpreter of ``CGROUP_DEVICE`` eBPF programs: check a rule set without a kernel.

It runs the program's encoded instructions (the very bytes the kernel would load) on a
``struct bpf_cgroup_dev_ctx`` built from ``(type, major, minor, access)``, with the
kernel's semantics: 64-bit registers, 32-bit ALU operations zero-extending their result,
immediates sign-extended for 64-bit operations and jumps, ``JMP32`` comparing the low
halves, unsigned division with ``x / 0 == 0`` and ``x % 0 == x``. It never looks at the
rules a program came from.

What the kernel's verifier would refuse, the emulator refuses too where it can tell: a
read of a register never written, a load outside the 12-byte context or unaligned, a
store to the context, pointer arithmetic, running off the end, ``exit`` with ``r0`` unset.
Helper calls, the stack and atomic operations are not supported (a device filter has no
use for them) and raise :class:`CgroupError`.
"""

from __future__ import annotations

import struct
import sys
from typing import Literal

from ..errors import CgroupError
from .asm import (
    ALU,
    ALU64,
    JMP,
    JMP32,
    LD,
    LDX,
    MODE_IMM,
    MODE_MEM,
    AluOp,
    Instruction,
    JumpOp,
    Program,
    Size,
    X,
)
from .filter import DEV_BLOCK, DEV_CHAR, access_bits

__all__ = ["CTX_SIZE", "EmulatorError", "ProgramEmulator", "emulate"]

ByteOrder = Literal["little", "big"]

CTX_SIZE = 12  # sizeof(struct bpf_cgroup_dev_ctx)
_M64 = 2**64 - 1
_M32 = 2**32 - 1
_MAX_STEPS = 1_000_000  # the verifier's limit on processed instructions
_CTX = object()  # the value of a register that points at the context


class EmulatorError(CgroupError):
    """The program does something the kernel would refuse (or the emulator lacks)."""


def _s64(v: int) -> int:
    return v - 2**64 if v >> 63 else v


def _s32(v: int) -> int:
    v &= _M32
    return v - 2**32 if v >> 31 else v


def _alu(op: int, a: int, b: int, bits: int) -> int:
    """``a op b`` on unsigned ``bits``-wide operands; the result masked to ``bits``."""
    mask = _M64 if bits == 64 else _M32
    if op == AluOp.ADD:
        r = a + b
    elif op == AluOp.SUB:
        r = a - b
    elif op == AluOp.MUL:
        r = a * b
    elif op == AluOp.DIV:
        r = a // b if b else 0
    elif op == AluOp.MOD:
        r = a % b if b else a
    elif op == AluOp.OR:
        r = a | b
    elif op == AluOp.AND:
        r = a & b
    elif op == AluOp.XOR:
        r = a ^ b
    elif op == AluOp.LSH:
        r = a << (b & (bits - 1))
    elif op == AluOp.RSH:
        r = a >> (b & (bits - 1))
    elif op == AluOp.ARSH:
        signed = (_s64(a) if bits == 64 else _s32(a)) >> (b & (bits - 1))
        r = signed
    elif op == AluOp.NEG:
        r = -a
    elif op == AluOp.MOV:
        r = b
    else:
        raise EmulatorError(f"cgroups: eBPF ALU operation 0x{op:02x} is not supported")
    return r & mask


def _cond(op: int, a: int, b: int, bits: int) -> bool:
    """The jump condition on unsigned ``bits``-wide operands."""
    sa, sb = (_s64(a), _s64(b)) if bits == 64 else (_s32(a), _s32(b))
    if op == JumpOp.JEQ:
        return a == b
    if op == JumpOp.JNE:
        return a != b
    if op == JumpOp.JGT:
        return a > b
    if op == JumpOp.JGE:
        return a >= b
    if op == JumpOp.JLT:
        return a < b
    if op == JumpOp.JLE:
        return a <= b
    if op == JumpOp.JSET:
        return bool(a & b)
    if op == JumpOp.JSGT:
        return sa > sb
    if op == JumpOp.JSGE:
        return sa >= sb
    if op == JumpOp.JSLT:
        return sa < sb
    if op == JumpOp.JSLE:
        return sa <= sb
    raise EmulatorError(f"cgroups: eBPF jump operation 0x{op:02x} is not supported")


class ProgramEmulator:
    """Runs one program (decoded once) on as many device accesses as wanted."""

    __slots__ = ("_byteorder", "_insns")

    def __init__(self, program: Program | bytes, *, byteorder: ByteOrder = sys.byteorder) -> None:
        """``program``: a :class:`Program` or its encoded bytes in ``byteorder``.

        ``byteorder`` is that of the emulated machine: it lays out the instructions and
        the context, so a program can be checked for a big-endian host on a little one.
        """
        data = program.encode(byteorder) if isinstance(program, Program) else bytes(program)
        if not data or len(data) % 8:
            raise EmulatorError(
                f"cgroups: an eBPF program is a non-empty multiple of 8 bytes, not {len(data)}"
            )
        self._byteorder: ByteOrder = byteorder
        self._insns = [
            Instruction.decode(data[i : i + 8], byteorder) for i in range(0, len(data), 8)
        ]

    def context(self, type: str, major: int, minor: int, access: str) -> bytes:
        """The ``struct bpf_cgroup_dev_ctx`` the kernel passes for this access."""
        try:
            dev = {"b": DEV_BLOCK, "c": DEV_CHAR}[type]
        except KeyError:
            raise CgroupError(
                f"cgroups: a device access has type 'b' or 'c', not {type!r}"
            ) from None
        acc = access_bits(access)
        if not acc:
            raise CgroupError("cgroups: a device access requests at least one of r, w, m")
        for name, v in (("major", major), ("minor", minor)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _M32:
                raise CgroupError(f"cgroups: device {name} {v!r} is not in 0..{_M32}")
        fmt = "<III" if self._byteorder == "little" else ">III"
        return struct.pack(fmt, (acc << 16) | dev, major, minor)

    def allows(self, type: str, major: int, minor: int, access: str) -> bool:
        """Whether the program allows ``access`` (e.g. ``"rw"``) to device ``type major:minor``."""
        return self.run(self.context(type, major, minor, access)) == 1

    def run(self, ctx: bytes) -> int:
        """Run the program with ``r1`` pointing at ``ctx``; return ``r0`` (low 32 bits)."""
        insns = self._insns
        n = len(insns)
        regs: list[int | object | None] = [None] * 11
        regs[1] = _CTX
        order = self._byteorder
        pc = 0
        steps = 0
        while True:
            if pc >= n or pc < 0:
                raise EmulatorError(f"cgroups: eBPF program jumps or falls off its end at {pc}")
            steps += 1
            if steps > _MAX_STEPS:
                raise EmulatorError("cgroups: eBPF program runs too long")
            ins = insns[pc]
            code = ins.code
            cls = code & 0x07
            pc += 1
            if cls in (ALU, ALU64):
                bits = 64 if cls == ALU64 else 32
                op = code & 0xF0
                if op == AluOp.END:
                    raise EmulatorError("cgroups: eBPF byte swap is not supported")
                if code & X:
                    b = regs[ins.src]
                    if b is None:
                        raise EmulatorError(f"cgroups: eBPF reads r{ins.src} unset at {pc - 1}")
                    if b is _CTX:
                        if op == AluOp.MOV and bits == 64:
                            regs[ins.dst] = _CTX
                            continue
                        raise EmulatorError(f"cgroups: eBPF pointer arithmetic at {pc - 1}")
                    assert isinstance(b, int)
                    bv = b if bits == 64 else b & _M32
                else:
                    bv = ins.imm & (_M64 if bits == 64 else _M32)
                if op == AluOp.MOV:
                    regs[ins.dst] = bv
                    continue
                a = regs[ins.dst]
                if a is None:
                    raise EmulatorError(f"cgroups: eBPF reads r{ins.dst} unset at {pc - 1}")
                if a is _CTX:
                    raise EmulatorError(f"cgroups: eBPF pointer arithmetic at {pc - 1}")
                assert isinstance(a, int)
                regs[ins.dst] = _alu(op, a if bits == 64 else a & _M32, bv, bits)
            elif cls in (JMP, JMP32):
                op = code & 0xF0
                if op == JumpOp.EXIT:
                    r0 = regs[0]
                    if not isinstance(r0, int):
                        raise EmulatorError(f"cgroups: eBPF exits with r0 unset at {pc - 1}")
                    return r0 & _M32
                if op == JumpOp.CALL:
                    raise EmulatorError("cgroups: eBPF helper calls are not supported")
                if op == JumpOp.JA:
                    pc += ins.off
                    continue
                bits = 64 if cls == JMP else 32
                mask = _M64 if bits == 64 else _M32
                a = regs[ins.dst]
                b = regs[ins.src] if code & X else ins.imm & mask
                for r, v in ((ins.dst, a), (ins.src, b)):
                    if v is None:
                        raise EmulatorError(f"cgroups: eBPF reads r{r} unset at {pc - 1}")
                    if v is _CTX:
                        raise EmulatorError(f"cgroups: eBPF compares a pointer at {pc - 1}")
                assert isinstance(a, int) and isinstance(b, int)
                if _cond(op, a & mask, b & mask, bits):
                    pc += ins.off
            elif cls == LDX:
                if code & 0xE0 != MODE_MEM:
                    raise EmulatorError(f"cgroups: eBPF load mode of {ins} is not supported")
                if regs[ins.src] is not _CTX:
                    raise EmulatorError(
                        f"cgroups: eBPF loads through r{ins.src}, which is not the context, "
                        f"at {pc - 1}"
                    )
                size = Size(code & 0x18).nbytes
                off = ins.off
                if off < 0 or off + size > len(ctx) or off % size:
                    raise EmulatorError(
                        f"cgroups: eBPF loads {size} bytes at context offset {off} at {pc - 1}"
                    )
                regs[ins.dst] = int.from_bytes(ctx[off : off + size], order)
            elif cls == LD and code == (LD | MODE_IMM | Size.DW):
                if pc >= n:
                    raise EmulatorError("cgroups: eBPF 64-bit immediate load lacks its second half")
                hi = insns[pc].imm & _M32
                regs[ins.dst] = (ins.imm & _M32) | (hi << 32)
                pc += 1
            else:
                raise EmulatorError(
                    f"cgroups: eBPF instruction {ins} at {pc - 1} is not supported "
                    f"(stores, the stack and legacy packet loads are not)"
                )


def emulate(program: Program | bytes, type: str, major: int, minor: int, access: str) -> bool:
    """Whether ``program`` allows ``access`` (letters of ``rwm``) to device ``type major:minor``.

    ``type`` is ``"b"`` or ``"c"``. Runs the instructions; see :class:`ProgramEmulator`.
    """
    return ProgramEmulator(program).allows(type, major, minor, access)
