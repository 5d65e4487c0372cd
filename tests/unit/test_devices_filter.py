"""unit: the eBPF assembler, the device rule compiler (golden dumps) and the emulator."""

from __future__ import annotations

import struct

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import Program, ProgramEmulator, device_filter, emulate
from cgroup2.devices.asm import (
    AluOp,
    Assembler,
    Instruction,
    JumpOp,
    Reg,
    Size,
    alu32,
    alu64,
    exit_insn,
    jump,
    jump32,
    load_mem,
)
from cgroup2.devices.emulator import EmulatorError


def normalized(dump: str) -> list[str]:
    """The reference test's comparison: drop blank and ``//`` lines, strip the rest."""
    out = []
    for line in dump.splitlines():
        t = line.strip()
        if t and not t.startswith("//"):
            out.append(t)
    return out


# The reference's prologue was
#     0: LdXMemH dst: r2 src: r1 off: 0 imm: 0
#     1: LdXMemW dst: r3 src: r1 off: 0 imm: 0
#     2: RSh32Imm dst: r3 imm: 16
#     3: LdXMemW dst: r4 src: r1 off: 4 imm: 0
#     4: LdXMemW dst: r5 src: r1 off: 8 imm: 0
# Correction (endian-safe type): the 16-bit load at offset 0 is the low half of
# access_type only on little-endian hosts; the 32-bit word is loaded and masked instead.
# That is one instruction more, so every later index is one higher than the reference's.
PROLOGUE = """
    0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
    1: And32Imm dst: r2 imm: 65535
    2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
    3: RSh32Imm dst: r3 imm: 16
    4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
    5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
"""


def check_golden(rules: list[DeviceRule], expected: str) -> Program:
    program, license = device_filter(rules)
    assert license == "Apache"
    assert normalized(program.dump()) == normalized(expected), program.dump()
    # Every jump lands on the first instruction of the block it names.
    labels = {name: idx for idx, name in program.labels}
    for idx, insn in enumerate(program):
        if insn.target is not None:
            assert idx + 1 + insn.off == labels[insn.target]
    return program


def test_golden_nil() -> None:
    # Reference: prologue, then block-0 at index 5: Mov32Imm r0 0, Exit.
    p = check_golden(
        [],
        PROLOGUE
        + """
        block-0:
            6: Mov32Imm dst: r0 imm: 0
            7: Exit
        """,
    )
    assert not emulate(p, "c", 1, 3, "r")
    assert not emulate(p, "b", 8, 0, "rwm")


def test_golden_privileged() -> None:
    # Reference: prologue, then block-0 at index 5: Mov32Imm r0 1, Exit.
    p = check_golden(
        [DeviceRule(True, "a", None, None, "rwm")],
        PROLOGUE
        + """
        block-0:
            6: Mov32Imm dst: r0 imm: 1
            7: Exit
        """,
    )
    assert emulate(p, "c", 1, 3, "rwm")
    assert emulate(p, "b", 2**32 - 1, 2**32 - 1, "m")


def test_golden_privileged_except_single_device() -> None:
    # Reference block-0:
    #     5: JNEImm dst: r2 off: -1 imm: 1 <block-1>
    #     6: JNEImm dst: r4 off: -1 imm: 8 <block-1>
    #     7: JNEImm dst: r5 off: -1 imm: 0 <block-1>
    # The reference printed its symbolic jumps before they were resolved (off: -1); here
    # the dump shows the resolved offsets (6+1+4 = 11 = block-1). Same instructions.
    p = check_golden(
        [DeviceRule(True, "a", None, None, "rwm"), DeviceRule(False, "b", 8, 0, "rwm")],
        PROLOGUE
        + """
        block-0:
             6: JNEImm dst: r2 off: 4 imm: 1 <block-1>
             7: JNEImm dst: r4 off: 3 imm: 8 <block-1>
             8: JNEImm dst: r5 off: 2 imm: 0 <block-1>
             9: Mov32Imm dst: r0 imm: 0
            10: Exit
        block-1:
            11: Mov32Imm dst: r0 imm: 1
            12: Exit
        """,
    )
    assert not emulate(p, "b", 8, 0, "r")
    assert emulate(p, "b", 8, 1, "rwm")
    assert emulate(p, "c", 8, 0, "rwm")


def test_golden_weird() -> None:
    # 8:1 is allowed (the wildcard rule after it wins), 8:2 is not. Differences from the
    # reference: the prologue and the resolved offsets, as above.
    p = check_golden(
        [
            DeviceRule(False, "b", 8, 1, "rwm"),
            DeviceRule(True, "a", None, None, "rwm"),
            DeviceRule(False, "b", 8, 2, "rwm"),
        ],
        PROLOGUE
        + """
        block-0:
             6: JNEImm dst: r2 off: 4 imm: 1 <block-1>
             7: JNEImm dst: r4 off: 3 imm: 8 <block-1>
             8: JNEImm dst: r5 off: 2 imm: 2 <block-1>
             9: Mov32Imm dst: r0 imm: 0
            10: Exit
        block-1:
            11: Mov32Imm dst: r0 imm: 1
            12: Exit
        """,
    )
    assert emulate(p, "b", 8, 1, "rwm")
    assert not emulate(p, "b", 8, 2, "r")


def test_golden_partial_access_and_reload() -> None:
    # Not in the reference's tests: the shape of the corrected partial-access blocks and
    # of the per-block reload (see cgroup2.devices.filter). An allow exception passes over
    # a request with a bit it does not name (JNE 0 after And 0xfffb, all but w; And
    # 0xfff9, all but r and w); the second block reloads what it compares.
    p = check_golden(
        [
            DeviceRule(False, "a"),
            DeviceRule(True, "c", 1, None, "w"),
            DeviceRule(True, "c", 1, 3, "rw"),
        ],
        PROLOGUE
        + """
        block-0:
             6: JNEImm dst: r2 off: 6 imm: 2 <block-1>
             7: Mov32Reg dst: r0 src: r3
             8: And32Imm dst: r0 imm: 65531
             9: JNEImm dst: r0 off: 3 imm: 0 <block-1>
            10: JNEImm dst: r4 off: 2 imm: 1 <block-1>
            11: Mov32Imm dst: r0 imm: 1
            12: Exit
        block-1:
            13: LdXMemW dst: r2 src: r1 off: 0 imm: 0
            14: And32Imm dst: r2 imm: 65535
            15: LdXMemW dst: r4 src: r1 off: 4 imm: 0
            16: LdXMemW dst: r5 src: r1 off: 8 imm: 0
            17: JNEImm dst: r2 off: 7 imm: 2 <block-2>
            18: Mov32Reg dst: r0 src: r3
            19: And32Imm dst: r0 imm: 65529
            20: JNEImm dst: r0 off: 4 imm: 0 <block-2>
            21: JNEImm dst: r4 off: 3 imm: 1 <block-2>
            22: JNEImm dst: r5 off: 2 imm: 3 <block-2>
            23: Mov32Imm dst: r0 imm: 1
            24: Exit
        block-2:
            25: Mov32Imm dst: r0 imm: 0
            26: Exit
        """,
    )
    assert emulate(p, "c", 1, 3, "rw") and not emulate(p, "c", 1, 3, "rm")
    assert emulate(p, "c", 1, 5, "w") and not emulate(p, "c", 1, 5, "r")


def test_golden_deny_exception() -> None:
    # With an allow default, a deny exception's block passes over a request with no bit
    # in common (JEq 0 after And 4) and returns 0; no block matched: return 1.
    p = check_golden(
        [DeviceRule(True, "a"), DeviceRule(False, "c", 1, None, "w")],
        PROLOGUE
        + """
        block-0:
             6: JNEImm dst: r2 off: 6 imm: 2 <block-1>
             7: Mov32Reg dst: r0 src: r3
             8: And32Imm dst: r0 imm: 4
             9: JEqImm dst: r0 off: 3 imm: 0 <block-1>
            10: JNEImm dst: r4 off: 2 imm: 1 <block-1>
            11: Mov32Imm dst: r0 imm: 0
            12: Exit
        block-1:
            13: Mov32Imm dst: r0 imm: 1
            14: Exit
        """,
    )
    assert emulate(p, "c", 1, 3, "r") and not emulate(p, "c", 1, 3, "rw")
    assert emulate(p, "b", 1, 3, "w")


# --- the encoding ------------------------------------------------------------------------


def test_encoding_matches_the_kernel_layout() -> None:
    # struct bpf_insn: code, dst_reg:4 | src_reg:4 (low nibble dst on little-endian),
    # s16 off, s32 imm. Opcodes from include/uapi/linux/bpf.h and bpf_common.h.
    cases = [
        (load_mem(Reg.R2, Reg.R1, 0, Size.W), "61 12 0000 00000000"),  # LDX|MEM|W
        (load_mem(Reg.R5, Reg.R1, 8, Size.W), "61 15 0800 00000000"),
        (load_mem(Reg.R2, Reg.R1, 0, Size.H), "69 12 0000 00000000"),  # LDX|MEM|H
        (alu32(AluOp.AND, Reg.R2, imm=0xFFFF), "54 02 0000 ffff0000"),  # ALU|AND|K
        (alu32(AluOp.RSH, Reg.R3, imm=16), "74 03 0000 10000000"),  # ALU|RSH|K
        (alu32(AluOp.MOV, Reg.R0, imm=1), "b4 00 0000 01000000"),  # ALU|MOV|K
        (alu32(AluOp.MOV, Reg.R0, src=Reg.R3), "bc 30 0000 00000000"),  # ALU|MOV|X
        (alu64(AluOp.MOV, Reg.R6, src=Reg.R1), "bf 16 0000 00000000"),  # ALU64|MOV|X
        (exit_insn(), "95 00 0000 00000000"),  # JMP|EXIT
    ]
    for insn, hexstr in cases:
        assert insn.encode("little").hex() == hexstr.replace(" ", ""), str(insn)
    a = Assembler()
    a.emit(jump(JumpOp.JNE, Reg.R2, "x", imm=1), jump32(JumpOp.JEQ, Reg.R4, "x", src=Reg.R5))
    a.label("x")
    a.emit(exit_insn())
    p = a.assemble()
    assert p.encode("little").hex() == "5502010001000000" "1e54000000000000" "9500000000000000"
    # big-endian: the register nibbles swap places, the numbers are big-endian
    assert p[0].encode("big").hex() == "5520000100000001"
    assert Instruction.decode(p[1].encode("big"), "big") == Instruction(
        p[1].code, p[1].dst, p[1].src, p[1].off, p[1].imm
    )


def test_immediates_are_kept_signed() -> None:
    i = alu32(AluOp.MOV, Reg.R0, imm=0xFFFFFFFF)
    assert i.imm == -1 and "imm: -1" in str(i)
    assert struct.unpack("<i", i.encode("little")[4:])[0] == -1
    with pytest.raises(CgroupError):
        alu32(AluOp.MOV, Reg.R0, imm=2**32)
    with pytest.raises(CgroupError):
        Instruction(0x61, 11, 0)
    with pytest.raises(CgroupError):
        Instruction(0x61, 0, 0, 2**15)


def test_assembler_refuses_bad_labels() -> None:
    a = Assembler()
    a.emit(jump(JumpOp.JA, 0, "nowhere", imm=0))
    with pytest.raises(CgroupError, match="undefined label 'nowhere'"):
        a.assemble()
    a = Assembler()
    a.label("x")
    with pytest.raises(CgroupError, match="defined twice"):
        a.label("x")
    a = Assembler()
    a.emit(jump(JumpOp.JEQ, 0, "far", imm=0))
    a.emit(*[alu32(AluOp.MOV, Reg.R0, imm=0)] * 40000)
    a.label("far")
    a.emit(exit_insn())
    with pytest.raises(CgroupError, match="too far"):
        a.assemble()


# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "x"}, "type"),
        ({"type": ""}, "type"),
        ({"access": "rwx"}, "access"),
        ({"access": ""}, "access"),
        ({"major": 2**32}, "major"),
        ({"minor": 2**32}, "minor"),
        ({"major": -1}, "major"),
        ({"minor": "3"}, "minor"),
    ],
)
def test_invalid_rules_are_refused_naming_the_rule(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(CgroupError, match=f"invalid device rule .*{field}"):
        DeviceRule(True, **kwargs)  # type: ignore[arg-type]


def test_device_filter_revalidates_rules() -> None:
    r = DeviceRule(True, "c", 1, 3, "rw")
    object.__setattr__(r, "access", "rwz")  # changed behind the frozen dataclass's back
    with pytest.raises(CgroupError, match="allow c 1:3 rwz"):
        device_filter([DeviceRule(False), r])
    object.__setattr__(r, "access", "rw")
    object.__setattr__(r, "major", 2**32)
    with pytest.raises(CgroupError, match="major"):
        device_filter([r])
    with pytest.raises(CgroupError, match="a DeviceRule is required"):
        device_filter([{"allow": True, "type": "a"}])  # type: ignore[list-item]


# --- the emulator: corrections seen in the instructions ----------------------------------


def reference_shaped_program(rules: list[DeviceRule]) -> Program:
    """The reference's program (half-word type load, ANY-bit access test), built here to
    show, in the emulator, what the corrections change."""
    a = Assembler()
    a.emit(
        load_mem(Reg.R2, Reg.R1, 0, Size.H),
        load_mem(Reg.R3, Reg.R1, 0, Size.W),
        alu32(AluOp.RSH, Reg.R3, imm=16),
        load_mem(Reg.R4, Reg.R1, 4, Size.W),
        load_mem(Reg.R5, Reg.R1, 8, Size.W),
    )
    acc = {"r": 2, "w": 4, "m": 1}
    for n, r in enumerate(reversed(rules)):
        nxt = f"b{n + 1}"
        a.label(f"b{n}")
        if r.type != "a":
            a.emit(jump(JumpOp.JNE, Reg.R2, nxt, imm={"b": 1, "c": 2}[r.type]))
        bits = sum(acc[c] for c in r.access)
        if bits != 7:
            a.emit(
                alu32(AluOp.MOV, Reg.R1, src=Reg.R3),
                alu32(AluOp.AND, Reg.R1, imm=bits),
                jump(JumpOp.JEQ, Reg.R1, nxt, imm=0),
            )
        if r.major is not None:
            a.emit(jump(JumpOp.JNE, Reg.R4, nxt, imm=r.major))
        if r.minor is not None:
            a.emit(jump(JumpOp.JNE, Reg.R5, nxt, imm=r.minor))
        a.emit(alu32(AluOp.MOV, Reg.R0, imm=int(r.allow)), exit_insn())
    a.label(f"b{len(rules)}")
    a.emit(alu32(AluOp.MOV, Reg.R0, imm=0), exit_insn())
    return a.assemble()


def test_all_requested_bits_must_be_allowed() -> None:
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r")]
    ours, _ = device_filter(rules)
    ref = reference_shaped_program(rules)
    assert emulate(ours, "c", 1, 3, "r") and emulate(ref, "c", 1, 3, "r")
    # an open(O_RDWR) asks for r and w at once: the reference allowed it (runc #2796)
    assert emulate(ref, "c", 1, 3, "rw")
    assert not emulate(ours, "c", 1, 3, "rw")
    assert not emulate(ours, "c", 1, 3, "w")
    # a later deny of one bit refuses every request that asks for that bit
    ours, _ = device_filter([DeviceRule(True), DeviceRule(False, "c", 1, 3, "w")])
    assert emulate(ours, "c", 1, 3, "r") and not emulate(ours, "c", 1, 3, "rw")


def test_bits_add_up_within_a_device_not_across_devices() -> None:
    """One exception must grant every requested bit (cgroup v1's match_exception, runc's
    program): "r" from ``c 1:*`` and "w" from ``c 1:3`` do not allow "rw"; but rules for
    the same device make one exception (v1's dev_exception_add ORs the bits)."""
    rules = [
        DeviceRule(False),
        DeviceRule(True, "c", 1, None, "r"),
        DeviceRule(True, "c", 1, 3, "w"),
    ]
    p, _ = device_filter(rules)
    assert not emulate(p, "c", 1, 3, "rw")
    assert emulate(p, "c", 1, 3, "r") and emulate(p, "c", 1, 3, "w")
    assert emulate(p, "c", 1, 5, "r") and not emulate(p, "c", 1, 5, "w")
    # the same device twice: one exception c 1:3 rw
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r"), DeviceRule(True, "c", 1, 3, "w")]
    p, _ = device_filter(rules)
    assert emulate(p, "c", 1, 3, "rw") and emulate(p, "c", 1, 3, "w")
    assert not emulate(p, "c", 1, 3, "rm")
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw"), DeviceRule(True, "c", 1, 3, "r")]
    p, _ = device_filter(rules)
    assert emulate(p, "c", 1, 3, "rw") and not emulate(p, "c", 1, 3, "m")
    # a deny with a deny default takes its bits from the same device's exception
    rules = [DeviceRule(True, "c", 1, 3, "rw"), DeviceRule(False, "c", 1, 3, "w")]
    p, _ = device_filter(rules)
    assert emulate(p, "c", 1, 3, "r")
    assert not emulate(p, "c", 1, 3, "rw") and not emulate(p, "c", 1, 3, "w")
    # with an allow default, deny exceptions refuse a request asking for any bit they
    # hold (v1's match_exception_partial), and pass over one that asks for none
    rules = [
        DeviceRule(True),
        DeviceRule(False, "c", 1, 3, "m"),
        DeviceRule(False, "c", 1, 3, "w"),
    ]
    p, _ = device_filter(rules)
    assert emulate(p, "c", 1, 3, "r") and not emulate(p, "c", 1, 3, "rm")
    # ... and an allow takes bits back from the deny exception
    p, _ = device_filter([*rules, DeviceRule(True, "c", 1, 3, "m")])
    assert emulate(p, "c", 1, 3, "rm") and not emulate(p, "c", 1, 3, "w")


def test_an_exception_for_every_device_ends_the_program() -> None:
    """``allow a *:* r`` then ``allow a *:* wm`` make b and c ``*:* rwm``: one block that
    decides; a block or default after it would be unreachable, which the verifier
    refuses ("unreachable insn")."""
    for default in (False, True):
        rules = [
            DeviceRule(default),
            DeviceRule(not default, "c", 1, 3, "r"),
            DeviceRule(not default, "a", None, None, "r"),
            DeviceRule(not default, "a", None, None, "wm"),
        ]
        p, _ = device_filter(rules)
        assert [name for _, name in p.labels] == ["block-0"]
        assert len(p) == 6 + 2
        assert emulate(p, "b", 8, 0, "rwm") is not default


def test_a_hole_in_a_wildcard_exception_is_refused() -> None:
    """v1 takes bits only from the exception for the same device: ``deny c 1:3 w`` after
    ``allow c 1:* rw`` would leave /dev/null writable; it is refused, as runc does."""
    for rules in (
        [
            DeviceRule(False),
            DeviceRule(True, "c", 1, None, "rw"),
            DeviceRule(False, "c", 1, 3, "w"),
        ],
        [
            DeviceRule(True),
            DeviceRule(False, "c", None, None, "m"),
            DeviceRule(True, "c", 1, 3, "rm"),
        ],
        [DeviceRule(False), DeviceRule(True, "b", None, 0, "r"), DeviceRule(False, "a", 8, 0, "r")],
    ):
        with pytest.raises(CgroupError) as e:
            device_filter(rules)
        assert str(e.value) == (
            f"cgroups: device rule {rules[2]} cannot be applied: it would punch a hole in "
            f"the wildcard exception {rules[1]} "
            f"(cgroup v1 only takes bits from an exception for the same device)"
        )
    # bits the wildcard does not hold may go
    p, _ = device_filter(
        [
            DeviceRule(False),
            DeviceRule(True, "c", 1, None, "r"),
            DeviceRule(True, "c", 1, 3, "rw"),
            DeviceRule(False, "c", 1, 3, "w"),
        ]
    )
    assert emulate(p, "c", 1, 3, "r") and not emulate(p, "c", 1, 3, "w")


def test_type_load_is_endian_safe() -> None:
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rwm"), DeviceRule(True, "b", 8, 0)]
    ours, _ = device_filter(rules)
    ref = reference_shaped_program(rules)
    for order in ("little", "big"):
        emu = ProgramEmulator(ours, byteorder=order)
        assert emu.allows("c", 1, 3, "w") and not emu.allows("b", 1, 3, "w")
        assert emu.allows("b", 8, 0, "m") and not emu.allows("c", 8, 0, "m")
    little, big = ProgramEmulator(ref, byteorder="little"), ProgramEmulator(ref, byteorder="big")
    assert little.allows("c", 1, 3, "w") and not little.allows("c", 8, 0, "m")
    # On big-endian the reference's half-word load at offset 0 reads the access bits as
    # the type: a write (4) is no known type, a mknod (1) looks like a block device.
    assert not big.allows("c", 1, 3, "w")
    assert big.allows("c", 8, 0, "m")


def test_numbers_above_2_31_match() -> None:
    big = 2**32 - 1
    rules = [DeviceRule(False), DeviceRule(True, "c", big, 2**31, "rwm")]
    ours, _ = device_filter(rules)
    assert emulate(ours, "c", big, 2**31, "m")
    assert not emulate(ours, "c", big, 2**31 - 1, "m")
    # a 64-bit JNEImm sign-extends: the reference shape never matches such a device
    assert not emulate(reference_shaped_program(rules), "c", big, 2**31, "m")


def test_rules_after_a_catch_all_are_compiled_first_and_earlier_ones_dropped() -> None:
    rules = [DeviceRule(True, "c", 1, 3)] * 5 + [DeviceRule(False), DeviceRule(True, "c", 1, 5)]
    p, _ = device_filter(rules)
    assert [name for _, name in p.labels] == ["block-0", "block-1"]
    assert not emulate(p, "c", 1, 3, "r") and emulate(p, "c", 1, 5, "r")


# --- the emulator: refusals ---------------------------------------------------------------


def run_raw(*insns: Instruction) -> int:
    a = Assembler()
    a.emit(*insns)
    return ProgramEmulator(a.assemble()).run(bytes(12))


def test_emulator_refuses_what_the_verifier_would() -> None:
    with pytest.raises(EmulatorError, match="r0 unset"):
        run_raw(exit_insn())
    with pytest.raises(EmulatorError, match="r6 unset"):
        run_raw(alu32(AluOp.MOV, Reg.R0, src=Reg.R6), exit_insn())
    with pytest.raises(EmulatorError, match="context offset 12"):
        run_raw(load_mem(Reg.R0, Reg.R1, 12, Size.W), exit_insn())
    with pytest.raises(EmulatorError, match="context offset 2"):
        run_raw(load_mem(Reg.R0, Reg.R1, 2, Size.W), exit_insn())
    with pytest.raises(EmulatorError, match="not the context"):
        run_raw(alu32(AluOp.MOV, Reg.R2, imm=0), load_mem(Reg.R0, Reg.R2, 0, Size.W), exit_insn())
    with pytest.raises(EmulatorError, match="pointer arithmetic"):
        run_raw(alu64(AluOp.ADD, Reg.R1, imm=4), exit_insn())
    with pytest.raises(EmulatorError, match="falls off"):
        run_raw(alu32(AluOp.MOV, Reg.R0, imm=0))
    with pytest.raises(EmulatorError, match="helper calls"):
        run_raw(Instruction(0x85, imm=1), exit_insn())
    with pytest.raises(EmulatorError, match="multiple of 8"):
        ProgramEmulator(b"\x95" * 7)
    with pytest.raises(CgroupError, match="type 'b' or 'c'"):
        emulate(device_filter([])[0], "a", 1, 3, "r")
    with pytest.raises(CgroupError, match="at least one"):
        emulate(device_filter([])[0], "c", 1, 3, "")


def test_emulator_alu_and_jump_semantics() -> None:
    # 32-bit ops zero-extend, 64-bit ops sign-extend their immediate; JMP32 compares the
    # low halves; division by zero gives 0, modulo by zero keeps the dividend.
    def r0_after(*body: Instruction) -> int:
        return run_raw(*body, exit_insn())

    assert r0_after(alu64(AluOp.MOV, Reg.R0, imm=-1), alu64(AluOp.RSH, Reg.R0, imm=32)) == 2**32 - 1
    assert r0_after(alu32(AluOp.MOV, Reg.R0, imm=-1), alu64(AluOp.RSH, Reg.R0, imm=32)) == 0
    assert r0_after(alu32(AluOp.MOV, Reg.R0, imm=7), alu32(AluOp.DIV, Reg.R0, imm=0)) == 0
    assert r0_after(alu32(AluOp.MOV, Reg.R0, imm=7), alu32(AluOp.MOD, Reg.R0, imm=0)) == 7
    assert r0_after(alu32(AluOp.MOV, Reg.R0, imm=-8), alu32(AluOp.ARSH, Reg.R0, imm=1)) == 2**32 - 4
    a = Assembler()
    a.emit(
        alu64(AluOp.MOV, Reg.R2, imm=-1),  # 0xffff_ffff_ffff_ffff
        alu32(AluOp.MOV, Reg.R0, imm=1),
        jump32(JumpOp.JEQ, Reg.R2, "low-equal", imm=-1),
        alu32(AluOp.MOV, Reg.R0, imm=0),
    )
    a.label("low-equal")
    a.emit(exit_insn())
    assert ProgramEmulator(a.assemble()).run(bytes(12)) == 1


# --- an empty rule list in Resources ---------------------------------------------------------


def test_empty_device_list_is_devices_not_controlled() -> None:
    """issue 13 item 11: ``devices=[]`` says nothing about devices, as in containerd's v2
    (and as an empty OCI ``devices`` list already did): the same as ``None`` for every
    driver; the compiler itself still turns no rules into a deny-all program."""
    from cgroup2 import Resources
    from cgroup2.oci import to_resources
    from cgroup2.systemd.properties import resource_settings

    for empty in ([], ()):
        r = Resources(devices=empty)
        assert r.devices is None and r == Resources()
        assert resource_settings(r) == ([], [])  # no DevicePolicy/DeviceAllow for systemd
    assert to_resources({"devices": []}).devices is None
    assert not emulate(device_filter([])[0], "c", 1, 3, "r")
