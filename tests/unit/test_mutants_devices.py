"""unit: device rules, the rule compiler and the assembler: exact messages, the
boundaries of numbers, the dump of comments and labels (survivors of scripts/mutation).

What a program does is checked by running it (the emulator); the instruction listings
here pin the shape the kernel's verifier was measured with (see cgroup2.devices.filter).
"""

from __future__ import annotations

from typing import Any

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import device_filter, emulate
from cgroup2.devices.filter import (
    ACC_MKNOD,
    ACC_READ,
    ACC_WRITE,
    DEV_BLOCK,
    DEV_CHAR,
    LICENSE,
    access_bits,
)

# --- rules ----------------------------------------------------------------------------

_NUM = "must be None (any) or an int in 0..4294967295"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow": 1}, "allow a *:* rwm: allow must be a bool"),
        ({"type": "x"}, "allow x *:* rwm: type must be 'a', 'b' or 'c'"),
        ({"type": 1}, "allow 1 *:* rwm: type must be 'a', 'b' or 'c'"),
        ({"type": "ab"}, "allow ab *:* rwm: type must be 'a', 'b' or 'c'"),
        ({"major": -1}, f"allow a -1:* rwm: major {_NUM}"),
        ({"major": 2**32}, f"allow a 4294967296:* rwm: major {_NUM}"),
        ({"minor": 2**32}, f"allow a *:4294967296 rwm: minor {_NUM}"),
        ({"minor": -1}, f"allow a *:-1 rwm: minor {_NUM}"),
        ({"major": True}, f"allow a True:* rwm: major {_NUM}"),
        ({"minor": False}, f"allow a *:False rwm: minor {_NUM}"),
        ({"minor": 1.0}, f"allow a *:1.0 rwm: minor {_NUM}"),
        ({"access": ""}, "allow a *:* : access must be a non-empty subset of 'rwm'"),
        ({"access": "rx"}, "allow a *:* rx: access must be a non-empty subset of 'rwm'"),
        ({"access": None}, "allow a *:* None: access must be a non-empty subset of 'rwm'"),
    ],
)
def test_rule_refusals_word_for_word(kwargs: dict[str, Any], message: str) -> None:
    args = {"allow": True, **kwargs}
    with pytest.raises(CgroupError) as e:
        DeviceRule(**args)
    assert str(e.value) == f"cgroups: invalid device rule {message}"


def test_rule_bounds_and_text() -> None:
    r = DeviceRule(False, "b", 2**32 - 1, 0, "m")
    assert str(r) == "deny b 4294967295:0 m"
    assert str(DeviceRule(True, "c", None, 5, "rw")) == "allow c *:5 rw"
    assert str(DeviceRule(True)) == "allow a *:* rwm"
    assert DeviceRule(True) == DeviceRule(True, "a", None, None, "rwm")
    for access in ("r", "w", "m", "rw", "mr", "wmr", "rr"):
        assert DeviceRule(True, access=access).access == access


# --- the compiler ---------------------------------------------------------------------


def test_kernel_constants() -> None:
    # include/uapi/linux/bpf.h: BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4;
    # BPF_DEVCG_DEV_BLOCK 1, _CHAR 2
    assert (ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR) == (1, 2, 4, 1, 2)
    assert LICENSE == "Apache"
    assert access_bits("") == 0
    assert access_bits("rwm") == 7 and access_bits("mw") == 5 and access_bits("rr") == 2


def test_compiler_refusals_word_for_word() -> None:
    cases: list[tuple[Any, str]] = [
        ("abc", "cgroups: invalid device rules 'abc': an iterable of DeviceRule is needed"),
        (b"x", "cgroups: invalid device rules b'x': an iterable of DeviceRule is needed"),
        (5, "cgroups: invalid device rules 5: an iterable of DeviceRule is needed"),
        ([5], "cgroups: invalid device rule 5: a DeviceRule is required"),
    ]
    for rules, message in cases:
        with pytest.raises(CgroupError) as e:
            device_filter(rules)
        assert str(e.value) == message
    with pytest.raises(CgroupError) as e:
        access_bits("rx")
    assert str(e.value) == "cgroups: invalid device access 'rx': letters must be r, w, m"


def test_rules_from_any_iterable() -> None:
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r")]
    want = device_filter(rules)[0]
    assert device_filter(iter(rules))[0] == want
    assert device_filter(tuple(rules))[0] == want
    assert device_filter(r for r in rules)[0] == want


def listing(rules: list[DeviceRule]) -> list[str]:
    return device_filter(rules)[0].dump().splitlines()


def test_numbers_at_the_sign_bit() -> None:
    """2**31 - 1 still fits a JNEImm; 2**31 is moved into r0 (zero-extended) first."""
    lines = listing([DeviceRule(False), DeviceRule(True, "b", 2**31 - 1, 2**31, "rwm")])
    assert lines[7:15] == [
        "block-0:",
        "// exception 0: allow b 2147483647:2147483648 rwm",
        "     6: JNEImm dst: r2 off: 5 imm: 1 <block-1>",
        "     7: JNEImm dst: r4 off: 4 imm: 2147483647 <block-1>",
        "     8: Mov32Imm dst: r0 imm: -2147483648",
        "     9: JNEReg dst: r5 off: 2 src: r0 <block-1>",
        "    10: Mov32Imm dst: r0 imm: 1",
        "    11: Exit",
    ]
    p = device_filter([DeviceRule(False), DeviceRule(True, "b", 2**31 - 1, 2**31, "rwm")])[0]
    assert emulate(p, "b", 2**31 - 1, 2**31, "r")
    assert not emulate(p, "b", 2**31 - 1, 2**31 - 1, "r")
    assert not emulate(p, "b", 2**31, 2**31, "r")


def test_dump_comments_and_labels() -> None:
    lines = listing([DeviceRule(True, "c", 1, 3, "r")])
    assert lines[0] == "// load parameters into registers"
    assert "// exception 0: allow c 1:3 r" in lines
    assert lines[-4:] == [
        "block-1:",
        "// no exception matched: return 0 (reject)",
        "    14: Mov32Imm dst: r0 imm: 0",
        "    15: Exit",
    ]
    lines = listing([DeviceRule(True), DeviceRule(False, "c", 1, 3, "r")])
    assert "// exception 0: deny c 1:3 r" in lines
    assert lines[-4:] == [
        "block-1:",
        "// no exception matched: return 1 (accept)",
        "    14: Mov32Imm dst: r0 imm: 1",
        "    15: Exit",
    ]


@pytest.mark.parametrize("access", ["r", "w", "m", "rw", "rm", "wm"])
def test_partial_access_masks(access: str) -> None:
    bits = access_bits(access)
    allow = listing([DeviceRule(True, "a", None, None, access)])
    assert f"     7: And32Imm dst: r0 imm: {0xFFFF ^ bits}" in allow
    assert "     8: JNEImm dst: r0 off: 2 imm: 0 <block-1>" in allow
    deny = listing([DeviceRule(True), DeviceRule(False, "a", None, None, access)])
    assert f"     7: And32Imm dst: r0 imm: {bits}" in deny
    assert "     8: JEqImm dst: r0 off: 2 imm: 0 <block-1>" in deny


def test_reload_only_what_a_later_block_compares() -> None:
    rules = [
        DeviceRule(True, "b", None, 2, "rwm"),
        DeviceRule(True, "a", 3, None, "rwm"),
        DeviceRule(True, "c", None, None, "r"),
        DeviceRule(True, "a", None, None, "w"),
    ]
    # the state: b *:* w, c *:* rw (r and w merged), b *:2 rwm, b and c 3:* rwm (one block)
    body = [line.split(": ", 1)[1] for line in listing(rules) if line.startswith("  ")]
    assert body[6:] == [
        # block-0: b *:* w (first block: nothing reloaded)
        "JNEImm dst: r2 off: 5 imm: 1 <block-1>",
        "Mov32Reg dst: r0 src: r3",
        "And32Imm dst: r0 imm: 65531",
        "JNEImm dst: r0 off: 2 imm: 0 <block-1>",
        "Mov32Imm dst: r0 imm: 1",
        "Exit",
        # block-1: c *:* rw reloads the type only
        "LdXMemW dst: r2 src: r1 off: 0 imm: 0",
        "And32Imm dst: r2 imm: 65535",
        "JNEImm dst: r2 off: 5 imm: 2 <block-2>",
        "Mov32Reg dst: r0 src: r3",
        "And32Imm dst: r0 imm: 65529",
        "JNEImm dst: r0 off: 2 imm: 0 <block-2>",
        "Mov32Imm dst: r0 imm: 1",
        "Exit",
        # block-2: b *:2 reloads the type and the minor
        "LdXMemW dst: r2 src: r1 off: 0 imm: 0",
        "And32Imm dst: r2 imm: 65535",
        "LdXMemW dst: r5 src: r1 off: 8 imm: 0",
        "JNEImm dst: r2 off: 3 imm: 1 <block-3>",
        "JNEImm dst: r5 off: 2 imm: 2 <block-3>",
        "Mov32Imm dst: r0 imm: 1",
        "Exit",
        # block-3: a 3:* (b and c alike: no type check) reloads the major only
        "LdXMemW dst: r4 src: r1 off: 4 imm: 0",
        "JNEImm dst: r4 off: 2 imm: 3 <block-4>",
        "Mov32Imm dst: r0 imm: 1",
        "Exit",
        "Mov32Imm dst: r0 imm: 0",
        "Exit",
    ]


@pytest.mark.parametrize(
    "rule",
    [
        DeviceRule(True, "c"),
        DeviceRule(True, "a", 1),
        DeviceRule(True, "a", None, 1),
        DeviceRule(True, "a", None, None, "rw"),
    ],
)
def test_each_exception_has_its_block(rule: DeviceRule) -> None:
    p = device_filter([DeviceRule(True, "b", 7, 7, "r"), rule])[0]
    assert [name for _, name in p.labels] == ["block-0", "block-1", "block-2"]
    assert emulate(p, "b", 7, 7, "r")


def test_a_catch_all_deny_clears_the_exceptions_before_it() -> None:
    p = device_filter([DeviceRule(True, "b", 7, 7, "r"), DeviceRule(False)])[0]
    assert [name for _, name in p.labels] == ["block-0"]
    assert len(p) == 8 and not emulate(p, "b", 7, 7, "r")


# --- the assembler --------------------------------------------------------------------


class _Int(int):
    """An int subclass (as an IntEnum is): taken as its int value."""


def _refusal(make: Any) -> str:
    with pytest.raises(CgroupError) as e:
        make()
    return str(e.value)


def test_immediates_of_int_subclasses_and_bounds() -> None:
    from cgroup2.devices.asm import Instruction

    for v, want in [
        (5, 5),
        (_Int(5), 5),
        (_Int(100), 100),
        (_Int(2**31 - 1), 2**31 - 1),
        (_Int(2**31), -(2**31)),
        (_Int(-(2**31)), -(2**31)),
        (2**31, -(2**31)),
        (2**32 - 1, -1),
        (-(2**31), -(2**31)),
    ]:
        imm = Instruction(0xB4, imm=v).imm
        assert imm == want, (v, imm)
    assert _refusal(lambda: Instruction(0xB4, imm=True)) == (
        "cgroups: eBPF immediate True is not an int"
    )
    assert _refusal(lambda: Instruction(0xB4, imm=1.0)) == (
        "cgroups: eBPF immediate 1.0 is not an int"
    )
    assert _refusal(lambda: Instruction(0xB4, imm=2**32)) == (
        "cgroups: eBPF immediate 4294967296 does not fit in 32 bits"
    )
    assert _refusal(lambda: Instruction(0xB4, imm=-(2**31) - 1)) == (
        "cgroups: eBPF immediate -2147483649 does not fit in 32 bits"
    )


def test_instruction_field_bounds() -> None:
    from cgroup2.devices.asm import Instruction

    for ok in ({"code": 255}, {"src": 10, "dst": 10}, {"off": -32768}, {"off": 32767}):
        Instruction(**{"code": 0, **ok})
    for bad, shown in [
        ({"code": 256}, "code=256 dst=r0 src=r0 off=0"),
        ({"code": -1}, "code=-1 dst=r0 src=r0 off=0"),
        ({"code": True}, "code=True dst=r0 src=r0 off=0"),
        ({"src": 11}, "code=0 dst=r0 src=r11 off=0"),
        ({"dst": 11}, "code=0 dst=r11 src=r0 off=0"),
        ({"dst": -1}, "code=0 dst=r-1 src=r0 off=0"),
        ({"off": -32769}, "code=0 dst=r0 src=r0 off=-32769"),
        ({"off": 32768}, "code=0 dst=r0 src=r0 off=32768"),
    ]:
        args = {"code": 0, **bad}
        assert _refusal(lambda a=args: Instruction(**a)) == (  # type: ignore[misc]
            f"cgroups: invalid eBPF instruction {shown}: opcode 0..255, registers r0..r10, "
            "offset 16-bit signed"
        )


def test_dump_of_instructions_the_filter_does_not_emit() -> None:
    from cgroup2.devices.asm import Instruction

    cases = {
        0x84: "Neg32Imm dst: r3",
        0x87: "NegImm dst: r3",
        0x18: "LdImmDW dst: r3 imm: 7",
        0x20: "LdAbsW imm: 7",
        0x48: "LdIndH dst: r3 src: r4 imm: 7",
        0x62: "StMemW dst: r3 src: r4 off: 2 imm: 7",
        0x63: "StXMemW dst: r3 src: r4 off: 2 imm: 7",
        0x85: "Call imm: 7",
        0x95: "Exit",
        0x1D: "JEqReg dst: r3 off: 2 src: r4",
        0x16: "JEq32Imm dst: r3 off: 2 imm: 7",
    }
    for code, text in cases.items():
        assert str(Instruction(code, 3, 4, 2, 7)) == text, hex(code)
    assert Instruction(0x05, 3, 4, 2, 7).operands() == "off: 2"  # JA: the offset only


def test_constructors_refuse_both_or_neither_operand() -> None:
    from cgroup2.devices.asm import AluOp, JumpOp, alu32, alu64, jump, jump32

    alu = "cgroups: an ALU instruction takes either imm or src"
    assert _refusal(lambda: alu32(AluOp.MOV, 0)) == alu
    assert _refusal(lambda: alu64(AluOp.ADD, 0, imm=1, src=2)) == alu
    assert str(alu64(AluOp.NEG, 2)) == "NegImm dst: r2"
    cond = "cgroups: a conditional jump takes either imm or src"
    assert _refusal(lambda: jump(JumpOp.JEQ, 0, "x")) == cond
    assert _refusal(lambda: jump32(JumpOp.JEQ, 0, "x", imm=1, src=2)) == cond
    j = jump(JumpOp.JNE, 2, "x", src=3)
    assert (j.code, j.dst, j.src, j.off, j.imm, j.target) == (0x5D, 2, 3, 0, 0, "x")
    j = jump32(JumpOp.JGT, 2, "y", imm=9)
    assert (j.code, j.dst, j.src, j.off, j.imm, j.target) == (0x26, 2, 0, 0, 9, "y")
    a = alu32(AluOp.ADD, 2, src=3)
    assert (a.code, a.dst, a.src, a.off, a.imm) == (0x0C, 2, 3, 0, 0)


def _jump_program(before: int, after: int) -> Any:
    """A jump to label ``x`` with ``before`` instructions before the label and ``after``
    from the label on (the jump first when ``before`` > 0, else last)."""
    from cgroup2.devices.asm import AluOp, Assembler, JumpOp, alu32, exit_insn, jump

    nop = alu32(AluOp.MOV, 0, imm=0)
    a = Assembler()
    if before:
        a.emit(jump(JumpOp.JEQ, 0, "x", imm=0), *[nop] * (before - 1))
        a.label("x")
        a.emit(*[nop] * (after - 1), exit_insn())
    else:
        a.label("x")
        a.emit(*[nop] * after, jump(JumpOp.JEQ, 0, "x", imm=0), exit_insn())
    return a.assemble()


def test_jump_distance_bounds() -> None:
    assert _jump_program(32768, 1)[0].off == 32767
    assert _refusal(lambda: _jump_program(32769, 1)) == (
        "cgroups: eBPF jump to 'x' is too far (32768 instructions)"
    )
    assert _jump_program(0, 32767)[32767].off == -32768
    assert _refusal(lambda: _jump_program(0, 32768)) == (
        "cgroups: eBPF jump to 'x' is too far (-32769 instructions)"
    )


def test_assembled_jumps_keep_their_label() -> None:
    from cgroup2.devices.asm import AluOp, Assembler, JumpOp, alu32, exit_insn, jump

    a = Assembler()
    a.emit(jump(JumpOp.JEQ, 0, "end", imm=0), alu32(AluOp.MOV, 0, imm=1))
    a.label("end")
    a.emit(exit_insn())
    p = a.assemble()
    assert p[0].target == "end" and p[0].off == 1
    assert str(p[0]) == "JEqImm dst: r0 off: 1 imm: 0 <end>"


def test_a_label_past_the_last_instruction() -> None:
    from cgroup2.devices.asm import Assembler, JumpOp, exit_insn, jump

    a = Assembler()
    a.emit(jump(JumpOp.JEQ, 0, "end", imm=0), exit_insn())
    a.label("end")
    assert _refusal(a.assemble) == "cgroups: eBPF label 'end' is past the last instruction"


def test_labels_in_instruction_order_then_definition_order() -> None:
    from cgroup2.devices.asm import Assembler, exit_insn

    a = Assembler()
    a.label("z")
    a.label("b")
    a.emit(exit_insn())
    a.label("a")
    a.emit(exit_insn())
    a.comment("last")
    a.emit(exit_insn())
    p = a.assemble()
    assert p.labels == ((0, "z"), (0, "b"), (1, "a"))
    assert p.comments == ((2, "last"),)
    assert p.dump() == "z:\nb:\n    0: Exit\na:\n    1: Exit\n// last\n    2: Exit\n"
    assert p.dump(comments=False) == "z:\nb:\n    0: Exit\na:\n    1: Exit\n    2: Exit\n"


def test_rule_access_letters_only_r_w_m() -> None:
    for access in ("X", "rX", "wm "):
        with pytest.raises(CgroupError, match="access must be a non-empty subset"):
            DeviceRule(True, access=access)


def test_reserved_fields_are_zero() -> None:
    """The verifier refuses an instruction with a reserved field set (kernel/bpf/verifier.c:
    "BPF_JMP/JMP32 uses reserved fields", "BPF_ALU uses reserved fields", "BPF_LDX uses
    reserved fields"): a K-source jump or ALU op has src r0, an X-source one imm 0, ALU
    ops off 0, loads imm 0. The emulator and the dump do not look at these fields."""
    from cgroup2.devices.asm import ALU, ALU64, JMP, JMP32, LDX, X

    allow_list = [
        DeviceRule(False),
        DeviceRule(True, "c", 1, 3, "rw"),
        DeviceRule(True, "b", 2**31, 2**32 - 1, "w"),
        DeviceRule(True, "c", None, 5, "m"),
        DeviceRule(True, "b", 8, None, "rwm"),
    ]
    deny_list = [  # deny exceptions: the partial-access test is And + JEq
        DeviceRule(True),
        DeviceRule(False, "b", 2**31, 2**32 - 1, "w"),
        DeviceRule(False, "c", 1, 3, "rw"),
    ]
    insns = [*device_filter(allow_list)[0], *device_filter(deny_list)[0]]
    for insn in insns:
        cls = insn.cls
        if cls in (JMP, JMP32, ALU, ALU64):
            if insn.code & X:
                assert insn.imm == 0, str(insn)
            else:
                assert insn.src == 0, str(insn)
            if cls in (ALU, ALU64):
                assert insn.off == 0, str(insn)
        elif cls == LDX:
            assert insn.imm == 0, str(insn)


def test_register_names_and_is_jump() -> None:
    from cgroup2.devices.asm import Instruction, Reg

    assert [str(r) for r in Reg] == [f"r{i}" for i in range(11)]
    jumps = {
        0x05: True,
        0x55: True,
        0x5E: True,
        0x16: True,
        0x95: False,
        0x85: False,
        0x96: False,
        0x86: False,
        0xB4: False,
        0x61: False,
        0x04: False,
    }
    for code, want in jumps.items():
        assert Instruction(code).is_jump() is want, hex(code)
