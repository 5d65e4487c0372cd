"""eBPF instructions: the kernel's 8-byte encoding, a readable dump, jumps by label.

An instruction is ``struct bpf_insn`` of ``include/uapi/linux/bpf.h``::

    u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm;

in the byte order of the host. :class:`Assembler` collects instructions, labels and
comments; jumps name a label and :meth:`Assembler.assemble` turns the label into the
relative offset the kernel wants (``target - (index + 1)``), giving an immutable
:class:`Program`. ``str(program)`` is a dump in the style of the reference's
(``5: JNEImm dst: r2 off: 3 imm: 1 <block-1>``), with block labels and comments.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, overload

from ..errors import CgroupError

__all__ = [
    "ALU",
    "ALU64",
    "JMP",
    "JMP32",
    "LD",
    "LDX",
    "ST",
    "STX",
    "AluOp",
    "Assembler",
    "Instruction",
    "JumpOp",
    "Program",
    "Reg",
    "Size",
    "alu32",
    "alu64",
    "exit_insn",
    "jump",
    "jump32",
    "load_mem",
    "opcode_name",
]

ByteOrder = Literal["little", "big"]

# Instruction classes (code & 0x07).
LD = 0x00
LDX = 0x01
ST = 0x02
STX = 0x03
ALU = 0x04
JMP = 0x05
JMP32 = 0x06
ALU64 = 0x07

# Source of the second operand (code & 0x08), for ALU and jump classes.
K = 0x00  # the immediate
X = 0x08  # the src register

# Addressing modes (code & 0xe0), for load/store classes.
MODE_IMM = 0x00
MODE_ABS = 0x20
MODE_IND = 0x40
MODE_MEM = 0x60
MODE_ATOMIC = 0xC0

INT32_MIN = -(2**31)
UINT32_MAX = 2**32 - 1


class Reg(IntEnum):
    """The eleven registers: r0 return value, r1..r5 arguments, r10 frame pointer."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10

    def __str__(self) -> str:
        return f"r{int(self)}"


class Size(IntEnum):
    """Width of a memory access (code & 0x18)."""

    W = 0x00  # 32 bits
    H = 0x08  # 16 bits
    B = 0x10  # 8 bits
    DW = 0x18  # 64 bits

    @property
    def nbytes(self) -> int:
        return {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}[self]


class AluOp(IntEnum):
    """ALU operations (code & 0xf0) of classes ALU (32-bit) and ALU64."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JumpOp(IntEnum):
    """Jump operations (code & 0xf0) of classes JMP (64-bit compare) and JMP32."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0


_ALU_NAMES = {
    AluOp.ADD: "Add",
    AluOp.SUB: "Sub",
    AluOp.MUL: "Mul",
    AluOp.DIV: "Div",
    AluOp.OR: "Or",
    AluOp.AND: "And",
    AluOp.LSH: "LSh",
    AluOp.RSH: "RSh",
    AluOp.NEG: "Neg",
    AluOp.MOD: "Mod",
    AluOp.XOR: "Xor",
    AluOp.MOV: "Mov",
    AluOp.ARSH: "ArSh",
    AluOp.END: "Swap",
}
_JUMP_NAMES = {
    JumpOp.JA: "Ja",
    JumpOp.JEQ: "JEq",
    JumpOp.JGT: "JGT",
    JumpOp.JGE: "JGE",
    JumpOp.JSET: "JSet",
    JumpOp.JNE: "JNE",
    JumpOp.JSGT: "JSGT",
    JumpOp.JSGE: "JSGE",
    JumpOp.CALL: "Call",
    JumpOp.EXIT: "Exit",
    JumpOp.JLT: "JLT",
    JumpOp.JLE: "JLE",
    JumpOp.JSLT: "JSLT",
    JumpOp.JSLE: "JSLE",
}
_CLASS_NAMES = {LD: "Ld", LDX: "LdX", ST: "St", STX: "StX"}
_MODE_NAMES = {MODE_IMM: "Imm", MODE_ABS: "Abs", MODE_IND: "Ind", MODE_MEM: "Mem",
               MODE_ATOMIC: "Atomic"}
_SIZE_NAMES = {Size.W: "W", Size.H: "H", Size.B: "B", Size.DW: "DW"}


def opcode_name(code: int) -> str:
    """The reference's name of an opcode, e.g. ``LdXMemW``, ``RSh32Imm``, ``JNEImm``."""
    cls = code & 0x07
    if cls in (ALU, ALU64):
        try:
            op = _ALU_NAMES[AluOp(code & 0xF0)]
        except ValueError:
            return f"Unknown(0x{code:02x})"
        width = "32" if cls == ALU else ""
        return f"{op}{width}{'Reg' if code & X else 'Imm'}"
    if cls in (JMP, JMP32):
        try:
            jop = JumpOp(code & 0xF0)
        except ValueError:
            return f"Unknown(0x{code:02x})"
        if jop in (JumpOp.EXIT, JumpOp.CALL):
            return _JUMP_NAMES[jop]
        width = "32" if cls == JMP32 else ""
        return f"{_JUMP_NAMES[jop]}{width}{'Reg' if code & X else 'Imm'}"
    mode = code & 0xE0
    if mode not in _MODE_NAMES:
        return f"Unknown(0x{code:02x})"
    return f"{_CLASS_NAMES[cls]}{_MODE_NAMES[mode]}{_SIZE_NAMES[Size(code & 0x18)]}"


def _imm32(value: int) -> int:
    """``value`` as the signed 32-bit immediate; unsigned 32-bit values are accepted."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"cgroups: eBPF immediate {value!r} is not an int")
    if not INT32_MIN <= value <= UINT32_MAX:
        raise CgroupError(f"cgroups: eBPF immediate {value} does not fit in 32 bits")
    return value - 2**32 if value > 2**31 - 1 else value


@dataclass(frozen=True, slots=True)
class Instruction:
    """One ``struct bpf_insn``. ``target`` is the label a jump goes to (resolved later).

    ``imm`` is kept as the signed 32-bit value the kernel sees.
    """

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None

    def __post_init__(self) -> None:
        code, dst, src, off, imm = self.code, self.dst, self.src, self.off, self.imm
        if (
            type(code) is not int
            or not 0 <= code <= 0xFF
            or not 0 <= dst <= 10
            or not 0 <= src <= 10
            or not -32768 <= off <= 32767
        ):
            raise CgroupError(
                f"cgroups: invalid eBPF instruction code={code!r} dst=r{dst!r} src=r{src!r} "
                f"off={off}: opcode 0..255, registers r0..r10, offset 16-bit signed"
            )
        if type(imm) is not int or not INT32_MIN <= imm <= 2**31 - 1:
            object.__setattr__(self, "imm", _imm32(imm))

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def name(self) -> str:
        return opcode_name(self.code)

    def is_jump(self) -> bool:
        """A jump with an offset (not exit/call)."""
        return self.cls in (JMP, JMP32) and (self.code & 0xF0) not in (
            JumpOp.EXIT,
            JumpOp.CALL,
        )

    def encode(self, byteorder: ByteOrder = sys.byteorder) -> bytes:
        """The 8 bytes of ``struct bpf_insn`` (registers in a host-order bitfield)."""
        if byteorder == "little":
            return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)
        return struct.pack(">BBhi", self.code, (self.dst << 4) | self.src, self.off, self.imm)

    @classmethod
    def decode(cls, data: bytes, byteorder: ByteOrder = sys.byteorder) -> Instruction:
        """The inverse of :meth:`encode` for one 8-byte slot."""
        if byteorder == "little":
            code, regs, off, imm = struct.unpack("<BBhi", data)
            return cls(code, regs & 0x0F, regs >> 4, off, imm)
        code, regs, off, imm = struct.unpack(">BBhi", data)
        return cls(code, regs >> 4, regs & 0x0F, off, imm)

    def operands(self) -> str:
        """The operand text of the dump, e.g. ``dst: r3 src: r1 off: 0 imm: 0``."""
        cls = self.cls
        dst, src = f"r{int(self.dst)}", f"r{int(self.src)}"
        if cls in (ALU, ALU64):
            if (self.code & 0xF0) == AluOp.NEG:
                return f"dst: {dst}"
            return f"dst: {dst} src: {src}" if self.code & X else f"dst: {dst} imm: {self.imm}"
        if cls in (JMP, JMP32):
            op = self.code & 0xF0
            if op == JumpOp.EXIT:
                return ""
            if op == JumpOp.CALL:
                return f"imm: {self.imm}"
            if op == JumpOp.JA:
                return f"off: {self.off}"
            tail = f"src: {src}" if self.code & X else f"imm: {self.imm}"
            return f"dst: {dst} off: {self.off} {tail}"
        mode = self.code & 0xE0
        if mode == MODE_IMM:
            return f"dst: {dst} imm: {self.imm}"
        if mode == MODE_ABS:
            return f"imm: {self.imm}"
        if mode == MODE_IND:
            return f"dst: {dst} src: {src} imm: {self.imm}"
        return f"dst: {dst} src: {src} off: {self.off} imm: {self.imm}"

    def __str__(self) -> str:
        ops = self.operands()
        text = f"{self.name} {ops}" if ops else self.name
        return f"{text} <{self.target}>" if self.target else text


# --- constructors ----------------------------------------------------------------------


def load_mem(dst: int, src: int, off: int, size: Size) -> Instruction:
    """``dst = *(size *)(src + off)`` (LdXMem{B,H,W,DW})."""
    return Instruction(LDX | MODE_MEM | size, dst, src, off, 0)


def _alu(cls: int, op: AluOp, dst: int, imm: int | None, src: int | None) -> Instruction:
    if (imm is None) == (src is None) and op != AluOp.NEG:
        raise CgroupError("cgroups: an ALU instruction takes either imm or src")
    if src is not None:
        return Instruction(cls | X | op, dst, src, 0, 0)
    return Instruction(cls | K | op, dst, 0, 0, imm or 0)


def alu32(op: AluOp, dst: int, *, imm: int | None = None, src: int | None = None) -> Instruction:
    """A 32-bit ALU operation (the result is zero-extended to 64 bits)."""
    return _alu(ALU, op, dst, imm, src)


def alu64(op: AluOp, dst: int, *, imm: int | None = None, src: int | None = None) -> Instruction:
    """A 64-bit ALU operation (an immediate is sign-extended to 64 bits)."""
    return _alu(ALU64, op, dst, imm, src)


def _jump(
    cls: int, op: JumpOp, dst: int, imm: int | None, src: int | None, target: str
) -> Instruction:
    if (imm is None) == (src is None):
        raise CgroupError("cgroups: a conditional jump takes either imm or src")
    if src is not None:
        return Instruction(cls | X | op, dst, src, 0, 0, target)
    return Instruction(cls | K | op, dst, 0, 0, imm or 0, target)


def jump(
    op: JumpOp, dst: int, target: str, *, imm: int | None = None, src: int | None = None
) -> Instruction:
    """``if (dst op imm|src) goto target``, comparing 64 bits (imm sign-extended)."""
    return _jump(JMP, op, dst, imm, src, target)


def jump32(
    op: JumpOp, dst: int, target: str, *, imm: int | None = None, src: int | None = None
) -> Instruction:
    """``if (dst op imm|src) goto target``, comparing the low 32 bits."""
    return _jump(JMP32, op, dst, imm, src, target)


def exit_insn() -> Instruction:
    """Return ``r0``."""
    return Instruction(JMP | JumpOp.EXIT)


# --- programs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Program:
    """Assembled instructions (jump offsets resolved) with their labels and comments.

    ``labels`` and ``comments`` are ``(instruction index, text)`` pairs, in order.
    """

    instructions: tuple[Instruction, ...]
    labels: tuple[tuple[int, str], ...] = ()
    comments: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.instructions)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    @overload
    def __getitem__(self, i: int) -> Instruction: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Instruction, ...]: ...
    def __getitem__(self, i: int | slice) -> Instruction | tuple[Instruction, ...]:
        return self.instructions[i]

    def encode(self, byteorder: ByteOrder = sys.byteorder) -> bytes:
        """The program as the kernel loads it: ``len(self)`` 8-byte instructions."""
        return b"".join(i.encode(byteorder) for i in self.instructions)

    def dump(self, *, comments: bool = True) -> str:
        """A listing: ``label:`` lines, ``// comment`` lines, ``index: instruction``."""
        labels: dict[int, list[str]] = {}
        for idx, name in self.labels:
            labels.setdefault(idx, []).append(name)
        notes: dict[int, list[str]] = {}
        if comments:
            for idx, text in self.comments:
                notes.setdefault(idx, []).append(text)
        width = len(str(max(len(self.instructions) - 1, 0)))
        lines: list[str] = []
        for idx, insn in enumerate(self.instructions):
            lines.extend(f"{name}:" for name in labels.get(idx, ()))
            lines.extend(f"// {text}" for text in notes.get(idx, ()))
            lines.append(f"    {idx:>{width}}: {insn}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.dump()


class Assembler:
    """Collects instructions, labels and comments; :meth:`assemble` resolves jumps."""

    __slots__ = ("_comments", "_insns", "_labels")

    def __init__(self) -> None:
        self._insns: list[Instruction] = []
        self._labels: dict[str, int] = {}
        self._comments: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._insns)

    def label(self, name: str) -> None:
        """Put label ``name`` on the next instruction emitted."""
        if name in self._labels:
            raise CgroupError(f"cgroups: eBPF label {name!r} defined twice")
        self._labels[name] = len(self._insns)

    def comment(self, text: str) -> None:
        """A comment shown in the dump before the next instruction."""
        self._comments.append((len(self._insns), text))

    def emit(self, *insns: Instruction) -> None:
        self._insns.extend(insns)

    def assemble(self) -> Program:
        """Resolve every jump's label to its offset; refuse unknown or too far labels."""
        out: list[Instruction] = []
        n = len(self._insns)
        for idx, insn in enumerate(self._insns):
            if insn.target is not None:
                where = self._labels.get(insn.target)
                if where is None:
                    raise CgroupError(f"cgroups: eBPF jump to undefined label {insn.target!r}")
                if where >= n:
                    raise CgroupError(
                        f"cgroups: eBPF label {insn.target!r} is past the last instruction"
                    )
                off = where - (idx + 1)
                if not -(2**15) <= off < 2**15:
                    raise CgroupError(
                        f"cgroups: eBPF jump to {insn.target!r} is too far ({off} instructions)"
                    )
                if insn.off != off:
                    insn = Instruction(insn.code, insn.dst, insn.src, off, insn.imm, insn.target)
            out.append(insn)
        labels = tuple(sorted(((i, name) for name, i in self._labels.items()), key=lambda p: p[0]))
        return Program(tuple(out), labels, tuple(self._comments))
