"""unit: device rules read back from a compiled eBPF program through the emulator."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from cgroup2 import CgroupError
from cgroup2.cli._devrules import ACCESSES, allows, rules_of_program
from cgroup2.cli._units import parse_rules
from cgroup2.devices import DeviceRule, ProgramEmulator, device_filter

NUMBERS = [0, 1, 3, 5, 8, 136, 2**32 - 1]


def _compiled(rules: list[DeviceRule]) -> bytes:
    program, _ = device_filter(rules)
    return program.encode()


def _points(rules: list[DeviceRule]) -> list[tuple[str, int, int, str]]:
    nums = sorted({n for r in rules for n in (r.major, r.minor) if n is not None} | {4242})
    return [(t, a, b, acc) for t, a, b, acc in itertools.product("bc", nums, nums, ACCESSES)]


def test_read_back_as_written() -> None:
    cases = {
        "deny a; allow c 1:3 rw; allow c 1:5 r": "deny a *:* rwm; allow c 1:3 rw; allow c 1:5 r",
        "allow a": "allow a *:* rwm",
        "deny a": "deny a *:* rwm",
        "allow a; deny c 1:* w": "allow a *:* rwm; deny c 1:* w",
        "deny a; allow c *:* r; allow c 5:1 rw": "deny a *:* rwm; allow c *:* r; allow c 5:1 rw",
        # one exception per device, in runc's order (major, minor, type)
        "deny a; allow b 8:* r; allow c 1:3 r; allow c 1:3 w": (
            "deny a *:* rwm; allow c 1:3 rw; allow b 8:* r"
        ),
        "deny a; allow a 1:3 r; allow c 1:* w": "deny a *:* rwm; allow c 1:* w; allow a 1:3 r",
        "allow a; deny c 1:3 rw; allow c 1:3 r": "allow a *:* rwm; deny c 1:3 w",
    }
    for text, want in cases.items():
        got = rules_of_program(_compiled(parse_rules(text)))
        assert got is not None
        assert "; ".join(map(str, got)) == want, text


rule = st.builds(
    DeviceRule,
    allow=st.booleans(),
    type=st.sampled_from("abc"),
    major=st.none() | st.sampled_from(NUMBERS),
    minor=st.none() | st.sampled_from(NUMBERS),
    access=st.sampled_from(ACCESSES),
)


@settings(max_examples=30)
@given(st.lists(rule, min_size=1, max_size=5))
def test_read_back_rules_allow_what_the_program_allows(rules: list[DeviceRule]) -> None:
    try:
        program = _compiled(rules)
    except CgroupError as e:  # a hole in a wildcard exception: refused, nothing to read
        assert "punch a hole" in str(e)
        return
    back = rules_of_program(program)
    assert back is not None
    emu = ProgramEmulator(program)
    again = ProgramEmulator(_compiled(back))
    for t, a, b, acc in _points(rules):
        want = emu.allows(t, a, b, acc)
        assert allows(rules, t, a, b, acc) == want, (t, a, b, acc)  # the semantics agree
        assert allows(back, t, a, b, acc) == want, (t, a, b, acc, back)
        assert again.allows(t, a, b, acc) == want  # and compile to the same answers


def test_a_program_that_compares_otherwise_is_not_read_back() -> None:
    """A program allowing majors below 10 (a range, not ==): no exact rule list."""
    from cgroup2.devices.asm import (
        AluOp,
        Assembler,
        JumpOp,
        Reg,
        Size,
        alu64,
        exit_insn,
        jump,
        load_mem,
    )

    asm = Assembler()
    asm.emit(
        load_mem(Reg.R2, Reg.R1, 4, Size.W),  # the major of struct bpf_cgroup_dev_ctx
        alu64(AluOp.MOV, Reg.R0, imm=0),
        jump(JumpOp.JGE, Reg.R2, "out", imm=10),
        alu64(AluOp.MOV, Reg.R0, imm=1),
    )
    asm.label("out")
    asm.emit(exit_insn())
    program = asm.assemble().encode()
    assert ProgramEmulator(program).allows("c", 9, 0, "r")  # the program works
    assert not ProgramEmulator(program).allows("c", 11, 0, "r")
    assert rules_of_program(program) is None
