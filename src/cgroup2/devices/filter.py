"""Device rules -> an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``.

The kernel runs the program on every device access of a task in the group, with a
``struct bpf_cgroup_dev_ctx`` (``include/uapi/linux/bpf.h``) in ``r1``::

    u32 access_type;   /* (access << 16) | type */
    u32 major;
    u32 minor;

where type is ``BPF_DEVCG_DEV_BLOCK`` (1) or ``BPF_DEVCG_DEV_CHAR`` (2) and access is a
set of ``BPF_DEVCG_ACC_MKNOD`` (1), ``_READ`` (2), ``_WRITE`` (4); it returns 1 to allow
and 0 to deny.

Program shape (the reference's): a prologue loads type, access, major and minor into
``r2``..``r5``; then one block per rule, the last rule first, so that the last rule that
matches decides; a rule that checks nothing (``a *:* rwm``) ends the list, since no rule
before it can be reached; when no block decides, the program denies. Corrections:

* Type is loaded endian-safely: the reference reads the 16-bit half at offset 0
  (``LdXMemH``), which is the low half of ``access_type`` only on a little-endian host. Here
  the whole 32-bit word is loaded (its *value* is defined, whatever the byte order) and
  masked with ``0xffff`` (``LdXMemW`` + ``And32Imm``).
* Every requested access bit must be allowed (the reference allowed an ``rw`` request as
  soon as a rule allowed ``r``). Each access bit is decided by the last rule that matches
  the device and names the bit. An allow block with a partial access clears the bits it
  allows from ``r3`` and allows only when none is left; otherwise the bits still undecided
  go on to the earlier rules. A deny block with a partial access denies when any
  undecided requested bit is one it names (this part is the reference's test, unchanged).
* Majors and minors of 2**31 and above: a 64-bit ``JNEImm`` sign-extends its immediate,
  so it can never equal the zero-extended 32-bit field; such numbers are moved into ``r1``
  with ``Mov32Imm`` (zero-extending) and compared with ``JNEReg``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import CgroupError
from .asm import (
    AluOp,
    Assembler,
    JumpOp,
    Program,
    Reg,
    Size,
    alu32,
    exit_insn,
    jump,
    load_mem,
)
from .rules import DeviceRule

__all__ = [
    "ACC_MKNOD",
    "ACC_READ",
    "ACC_WRITE",
    "DEV_BLOCK",
    "DEV_CHAR",
    "LICENSE",
    "access_bits",
    "device_filter",
]

LICENSE = "Apache"
"""The license string given to the kernel (the format of the kernel's MODULE_LICENSE)."""

DEV_BLOCK = 1  # BPF_DEVCG_DEV_BLOCK
DEV_CHAR = 2  # BPF_DEVCG_DEV_CHAR
ACC_MKNOD = 1  # BPF_DEVCG_ACC_MKNOD
ACC_READ = 2  # BPF_DEVCG_ACC_READ
ACC_WRITE = 4  # BPF_DEVCG_ACC_WRITE
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE

_ACC = {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}
_TYPE = {"b": DEV_BLOCK, "c": DEV_CHAR}


def access_bits(access: str) -> int:
    """``"rwm"`` letters -> the kernel's ``BPF_DEVCG_ACC_*`` bits."""
    bits = 0
    for c in access:
        try:
            bits |= _ACC[c]
        except KeyError:
            raise CgroupError(
                f"cgroups: invalid device access {access!r}: letters must be r, w, m"
            ) from None
    return bits


def _check(rule: object) -> DeviceRule:
    if not isinstance(rule, DeviceRule):
        raise CgroupError(f"cgroups: invalid device rule {rule!r}: a DeviceRule is required")
    # DeviceRule validates when it is made; check again, so that a rule changed behind the
    # frozen dataclass's back never reaches the kernel.
    rule.validate()
    return rule


def _eq_check(asm: Assembler, reg: Reg, value: int, nxt: str) -> None:
    """``if (reg != value) goto nxt`` for an unsigned 32-bit ``value``."""
    if value < 2**31:
        asm.emit(jump(JumpOp.JNE, reg, nxt, imm=value))
    else:
        # JNEImm would sign-extend the immediate to 64 bits; compare with a register
        # holding the zero-extended value instead.
        asm.emit(alu32(AluOp.MOV, Reg.R1, imm=value), jump(JumpOp.JNE, reg, nxt, src=Reg.R1))


def _describe(rule: DeviceRule) -> str:
    conds = []
    if rule.type != "a":
        conds.append(f"type == {rule.type}")
    if rule.major is not None:
        conds.append(f"major == {rule.major}")
    if rule.minor is not None:
        conds.append(f"minor == {rule.minor}")
    what = "accept" if rule.allow else "reject"
    rc = 1 if rule.allow else 0
    acc = "" if access_bits(rule.access) == ACC_ALL else f" access {rule.access}"
    where = f" if {' && '.join(conds)}" if conds else ""
    return f"{rule}: return {rc} ({what}){acc}{where}"


def device_filter(rules: Iterable[DeviceRule]) -> tuple[Program, str]:
    """Compile device rules into a ``CGROUP_DEVICE`` program; return it and its license.

    No rules: the program denies every device. Invalid rules raise :class:`CgroupError`
    naming the rule, before anything else happens.
    """
    checked: Sequence[DeviceRule] = [_check(r) for r in rules]
    asm = Assembler()
    asm.comment("load parameters into registers")
    asm.emit(
        load_mem(Reg.R2, Reg.R1, 0, Size.W),  # r2 <- access_type
        alu32(AluOp.AND, Reg.R2, imm=0xFFFF),  # r2 <- type (low 16 bits)
        load_mem(Reg.R3, Reg.R1, 0, Size.W),  # r3 <- access_type
        alu32(AluOp.RSH, Reg.R3, imm=16),  # r3 <- access (high 16 bits)
        load_mem(Reg.R4, Reg.R1, 4, Size.W),  # r4 <- major
        load_mem(Reg.R5, Reg.R1, 8, Size.W),  # r5 <- minor
    )
    block = 0
    ended = False
    for rule in reversed(checked):
        this, nxt = f"block-{block}", f"block-{block + 1}"
        asm.label(this)
        asm.comment(_describe(rule))
        acc = access_bits(rule.access)
        partial = acc != ACC_ALL
        if rule.type != "a":
            asm.emit(jump(JumpOp.JNE, Reg.R2, nxt, imm=_TYPE[rule.type]))
        if partial and not rule.allow:
            # if no undecided requested bit is one this rule denies, goto next (r1: temp)
            asm.emit(
                alu32(AluOp.MOV, Reg.R1, src=Reg.R3),
                alu32(AluOp.AND, Reg.R1, imm=acc),
                jump(JumpOp.JEQ, Reg.R1, nxt, imm=0),
            )
        if rule.major is not None:
            _eq_check(asm, Reg.R4, rule.major, nxt)
        if rule.minor is not None:
            _eq_check(asm, Reg.R5, rule.minor, nxt)
        if partial and rule.allow:
            # the bits this rule allows are decided; the others go on to earlier rules
            asm.emit(
                alu32(AluOp.AND, Reg.R3, imm=~acc & 0xFFFFFFFF),
                jump(JumpOp.JNE, Reg.R3, nxt, imm=0),
            )
        asm.emit(alu32(AluOp.MOV, Reg.R0, imm=1 if rule.allow else 0), exit_insn())
        block += 1
        if rule.type == "a" and rule.major is None and rule.minor is None and not partial:
            ended = True  # the rules before this one can never be reached
            break
    if not ended:
        asm.label(f"block-{block}")
        asm.comment("return 0 (reject)")
        asm.emit(alu32(AluOp.MOV, Reg.R0, imm=0), exit_insn())
    return asm.assemble(), LICENSE
