"""Device rules -> an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``.

The kernel runs the program on every device access of a task in the group, with a
``struct bpf_cgroup_dev_ctx`` (``include/uapi/linux/bpf.h``) in ``r1``::

    u32 access_type;   /* (access << 16) | type */
    u32 major;
    u32 minor;

where type is ``BPF_DEVCG_DEV_BLOCK`` (1) or ``BPF_DEVCG_DEV_CHAR`` (2) and access is a
set of ``BPF_DEVCG_ACC_MKNOD`` (1), ``_READ`` (2), ``_WRITE`` (4); it returns 1 to allow
and 0 to deny.

What a rule set means (the semantics of cgroup v1's device controller,
``security/device_cgroup.c``; see :mod:`cgroup2.devices.state`):

* The rules are applied in order to a state that starts as "deny every device": ``a *:*
  rwm`` sets the default (allow or deny) and clears the exceptions; a rule against the
  default ORs its access bits into the exception with the same type, major and minor
  (``dev_exception_add``); a rule with the default takes its bits from that exception
  (``dev_exception_rm``). A rule that would take bits away under a wildcard exception
  (``deny c 1:3 w`` after ``allow c 1:* rw``) is refused, as runc refuses it.
* With a deny default, a request (type, major, minor, access bits) is allowed when one
  exception that covers the device holds **every** requested bit (v1
  ``match_exception``: ``access & ~ex->access == 0``); with an allow default, it is denied
  when one exception holds **any** requested bit (v1 ``match_exception_partial``).

So bits add up within one device (``allow c 1:3 r; allow c 1:3 w`` allows an ``rw``
open of ``c 1:3``) but never across exceptions: with ``deny a``, ``allow c 1:* r``,
``allow c 1:3 w``, ``open("/dev/null", O_RDWR)`` (c 1:3, read and write) is denied, while
a read or a write alone is allowed. runc compiles its program from this same state; its
blocks of deny exceptions require every requested bit, so that an ``rw`` request passes
``deny ... w``; here, as in cgroup v1, it is refused.

Program shape (runc's): a prologue loads type, access, major and minor into
``r2``..``r5``; then one block per exception, which returns the opposite of the default
when the exception covers the request (a ``b`` and a ``c`` exception with the same
numbers and bits are one block without a type check); when no block decides, the program
returns the default. Corrections to the reference:

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
from .state import DeviceState

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


def _blocks(state: DeviceState) -> list[tuple[str, int | None, int | None, str]]:
    """One block per exception, in runc's order; a ``b`` and a ``c`` exception for the
    same numbers with the same bits are one block of type ``a`` (no type check)."""
    exc = state.exceptions
    out = []
    for (typ, major, minor), access in exc.items():
        other = "c" if typ == "b" else "b"
        if exc.get((other, major, minor)) == access:
            if typ == "b":
                out.append(("a", major, minor, access))
        else:
            out.append((typ, major, minor, access))
    return out


def device_filter(rules: Iterable[DeviceRule]) -> tuple[Program, str]:
    """Compile device rules into a ``CGROUP_DEVICE`` program; return it and its license.

    The rules are applied in order as cgroup v1 applies them (:class:`DeviceState`);
    the program holds one block per resulting exception. No rules: the program denies
    every device. Invalid rules, or a rule that would punch a hole in a wildcard
    exception, raise :class:`CgroupError` naming the rule, before anything else happens.
    """
    if isinstance(rules, (str, bytes)) or not hasattr(rules, "__iter__"):
        raise CgroupError(
            f"cgroups: invalid device rules {rules!r}: an iterable of DeviceRule is needed"
        )
    checked: Sequence[DeviceRule] = [_check(r) for r in rules]
    state = DeviceState.of(checked)
    allow = not state.default_allow  # what an exception's block returns
    asm = Assembler()
    asm.comment("load parameters into registers")
    asm.emit(*_LOAD_TYPE, *_LOAD_ACCESS, _LOAD_MAJOR, _LOAD_MINOR)
    blocks = _blocks(state)
    catch_all = ("a", None, None, "rwm")
    ended = catch_all in blocks
    if ended:
        # an exception for every device and access (``allow a *:* r`` then ``allow a *:*
        # wm``): its block checks nothing and decides; any other block or the default
        # after it could never be reached, which the verifier refuses
        blocks = [catch_all]
    for block, (typ, major, minor, access) in enumerate(blocks):
        nxt = f"block-{block + 1}"
        asm.label(f"block-{block}")
        asm.comment(
            f"exception {block}: {'allow' if allow else 'deny'} {typ} "
            f"{'*' if major is None else major}:{'*' if minor is None else minor} {access}"
        )
        acc = access_bits(access)
        partial = acc != ACC_ALL
        typed = typ != "a"
        out: list[Instruction | _Pending] = []
        if block:
            # Reload what this block compares, so that the registers hold nothing learnt
            # in earlier blocks: the verifier then sees one state per block instead of
            # one per path, and its work grows linearly with the number of rules.
            if typed:
                out.extend(_LOAD_TYPE)
            if major is not None:
                out.append(_LOAD_MAJOR)
            if minor is not None:
                out.append(_LOAD_MINOR)
        if typed:
            out.append((_JNE_IMM, Reg.R2, 0, _TYPE[typ]))
        if partial:
            out.append(_COPY_ACCESS)
            if allow:
                # a requested bit this exception does not allow: goto next
                out.append(_MASK_ACCESS[_ACCESS_MASK ^ acc])
                out.append((_JNE_IMM, Reg.R0, 0, 0))
            else:
                # no requested bit is one this exception denies: goto next
                out.append(_MASK_ACCESS[acc])
                out.append((_JEQ_IMM, Reg.R0, 0, 0))
        if major is not None:
            _eq_check(out, Reg.R4, major)
        if minor is not None:
            _eq_check(out, Reg.R5, minor)
        out.extend(_RETURN[allow])
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
    if not ended:
        asm.label(f"block-{len(blocks)}")
        if state.default_allow:
            asm.comment("no exception matched: return 1 (accept)")
        else:
            asm.comment("no exception matched: return 0 (reject)")
        asm.emit(*_RETURN[state.default_allow])
    return asm.assemble(), LICENSE
