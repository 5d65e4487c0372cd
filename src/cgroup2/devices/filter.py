"""Device rules -> an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``.

The kernel runs the program on every device access of a task in the group, with a
``struct bpf_cgroup_dev_ctx`` (``include/uapi/linux/bpf.h``) in ``r1``::

    u32 access_type;   /* (access << 16) | type */
    u32 major;
    u32 minor;

where type is ``BPF_DEVCG_DEV_BLOCK`` (1) or ``BPF_DEVCG_DEV_CHAR`` (2) and access is a
set of ``BPF_DEVCG_ACC_MKNOD`` (1), ``_READ`` (2), ``_WRITE`` (4); it returns 1 to allow
and 0 to deny.

What a rule set means (the semantics of cgroup v1's device controller, whose checks are
``match_exception`` and ``match_exception_partial`` in ``security/device_cgroup.c``):

* A rule *matches* a request (type, major, minor, access bits) when its type (``a``: any),
  major and minor (``None``: any) match, and

  - an **allow** rule names **every** requested bit (v1 ``match_exception``: the access
    asked for may not exceed the exception's, ``access & ~ex->access == 0``);
  - a **deny** rule names **any** requested bit (v1 ``match_exception_partial``: a
    request that shares one bit with a deny exception is refused).

* The last rule that matches decides; when none matches, the request is denied.

So access bits never add up across rules: with ``deny a``, ``allow c 1:* r``, ``allow c
1:3 w``, ``open("/dev/null", O_RDWR)`` (c 1:3, read and write) is denied, while a read or
a write alone is allowed. This is what runc's and crun's programs do for allow rules
(``(access & rule) == access``). For deny rules they also require every requested bit,
so that an ``rw`` request passes a ``deny ... w`` rule; here, as in cgroup v1, it is
refused: a deny that names writing refuses every open for writing.

Program shape (the reference's): a prologue loads type, access, major and minor into
``r2``..``r5``; then one block per rule, the last rule first, so that the last rule that
matches decides; a rule that checks nothing (``a *:* rwm``) ends the list, since no rule
before it can be reached; when no block decides, the program denies. Corrections:

* Type is loaded endian-safely: the reference reads the 16-bit half at offset 0
  (``LdXMemH``), which is the low half of ``access_type`` only on a little-endian host. Here
  the whole 32-bit word is loaded (its *value* is defined, whatever the byte order) and
  masked with ``0xffff`` (``LdXMemW`` + ``And32Imm``).
* The access test of a block with a partial access (``r0`` is the temp register, as
  ``r1`` must keep pointing at the context; ``r3`` is never changed):
  allow: ``if (r3 & ~access) goto next`` (the reference's test only asked for one common
  bit, so an ``rw`` request passed a rule allowing ``r``); deny: ``if (!(r3 & access))
  goto next``.
* Blocks after the first reload the registers they compare from the context. Without
  this, every path that leaves a block half-way (type equal, major not) carries what the
  verifier learnt (``r2 == 1``) into the next blocks, the verifier cannot merge those
  paths, and its work grows with the square of the number of rules: the reference's
  shape is refused (``E2BIG``, a million instructions processed) at 1,000 rules.
* Majors and minors of 2**31 and above: a 64-bit ``JNEImm`` sign-extends its immediate,
  so it can never equal the zero-extended 32-bit field; such numbers are moved into ``r0``
  with ``Mov32Imm`` (zero-extending) and compared with ``JNEReg``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import CgroupError
from .asm import (
    JMP,
    AluOp,
    Assembler,
    Instruction,
    JumpOp,
    K,
    Program,
    Reg,
    Size,
    X,
    alu32,
    exit_insn,
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


# Instructions that never change, made once.
_LOAD_TYPE = (  # r2 <- type: the low 16 bits of the 32-bit access_type (endian-safe)
    load_mem(Reg.R2, Reg.R1, 0, Size.W),
    alu32(AluOp.AND, Reg.R2, imm=0xFFFF),
)
_LOAD_ACCESS = (  # r3 <- access: the high 16 bits of access_type
    load_mem(Reg.R3, Reg.R1, 0, Size.W),
    alu32(AluOp.RSH, Reg.R3, imm=16),
)
_LOAD_MAJOR = load_mem(Reg.R4, Reg.R1, 4, Size.W)  # r4 <- major
_LOAD_MINOR = load_mem(Reg.R5, Reg.R1, 8, Size.W)  # r5 <- minor
_RETURN = {
    True: (alu32(AluOp.MOV, Reg.R0, imm=1), exit_insn()),
    False: (alu32(AluOp.MOV, Reg.R0, imm=0), exit_insn()),
}
_COPY_ACCESS = alu32(AluOp.MOV, Reg.R0, src=Reg.R3)
# the access word is 16 bits: an allow passes over a request with any bit it does not name,
# also one this library does not know
_ACCESS_MASK = 0xFFFF
_MASK_ACCESS = {
    bits: alu32(AluOp.AND, Reg.R0, imm=bits)
    for bits in [*range(1, ACC_ALL), *(_ACCESS_MASK ^ b for b in range(1, ACC_ALL))]
}
_JNE_IMM = JMP | K | JumpOp.JNE
_JNE_REG = JMP | X | JumpOp.JNE
_JEQ_IMM = JMP | K | JumpOp.JEQ

# A jump to the next block whose offset is not known yet: (code, dst, src, imm).
_Pending = tuple[int, int, int, int]


def _eq_check(out: list[Instruction | _Pending], reg: Reg, value: int) -> None:
    """``if (reg != value) goto next`` for an unsigned 32-bit ``value``."""
    if value < 2**31:
        out.append((_JNE_IMM, reg, 0, value))
    else:
        # JNEImm would sign-extend the immediate to 64 bits and never be equal to the
        # zero-extended field: compare with r0 (temp) holding the zero-extended value.
        out.append(alu32(AluOp.MOV, Reg.R0, imm=value))
        out.append((_JNE_REG, reg, Reg.R0, 0))


def device_filter(rules: Iterable[DeviceRule]) -> tuple[Program, str]:
    """Compile device rules into a ``CGROUP_DEVICE`` program; return it and its license.

    No rules: the program denies every device. Invalid rules raise :class:`CgroupError`
    naming the rule, before anything else happens.
    """
    if isinstance(rules, (str, bytes)) or not hasattr(rules, "__iter__"):
        raise CgroupError(
            f"cgroups: invalid device rules {rules!r}: an iterable of DeviceRule is needed"
        )
    checked: Sequence[DeviceRule] = [_check(r) for r in rules]
    asm = Assembler()
    asm.comment("load parameters into registers")
    asm.emit(*_LOAD_TYPE, *_LOAD_ACCESS, _LOAD_MAJOR, _LOAD_MINOR)
    block = 0
    ended = False
    for index in range(len(checked) - 1, -1, -1):
        rule = checked[index]
        nxt = f"block-{block + 1}"
        asm.label(f"block-{block}")
        asm.comment(f"rule {index}: {rule}")
        acc = access_bits(rule.access)
        partial = acc != ACC_ALL
        typed = rule.type != "a"
        out: list[Instruction | _Pending] = []
        if block:
            # Reload what this block compares, so that the registers hold nothing learnt
            # in earlier blocks: the verifier then sees one state per block instead of
            # one per path, and its work grows linearly with the number of rules.
            if typed:
                out.extend(_LOAD_TYPE)
            if rule.major is not None:
                out.append(_LOAD_MAJOR)
            if rule.minor is not None:
                out.append(_LOAD_MINOR)
        if typed:
            out.append((_JNE_IMM, Reg.R2, 0, _TYPE[rule.type]))
        if partial:
            out.append(_COPY_ACCESS)
            if rule.allow:
                # a requested bit this rule does not allow: goto next
                out.append(_MASK_ACCESS[_ACCESS_MASK ^ acc])
                out.append((_JNE_IMM, Reg.R0, 0, 0))
            else:
                # no requested bit is one this rule denies: goto next
                out.append(_MASK_ACCESS[acc])
                out.append((_JEQ_IMM, Reg.R0, 0, 0))
        if rule.major is not None:
            _eq_check(out, Reg.R4, rule.major)
        if rule.minor is not None:
            _eq_check(out, Reg.R5, rule.minor)
        out.extend(_RETURN[rule.allow])
        end = len(asm) + len(out)
        base = len(asm) + 1
        asm.emit(
            *[
                i
                if isinstance(i, Instruction)
                else Instruction(i[0], i[1], i[2], end - (base + n), i[3], nxt)
                for n, i in enumerate(out)
            ]
        )
        block += 1
        if not typed and rule.major is None and rule.minor is None and not partial:
            ended = True  # the rules before this one can never be reached
            break
    if not ended:
        asm.label(f"block-{block}")
        asm.comment("no rule matched: return 0 (reject)")
        asm.emit(*_RETURN[False])
    return asm.assemble(), LICENSE
