"""unit (hypothesis): the emulated program decides exactly what the rules say.

The oracle below evaluates the rules directly, without any eBPF or the library's state
model, as cgroup v1 does (``security/device_cgroup.c``): from "deny all", ``a *:* rwm``
sets the default and clears the exceptions; a rule against the default ORs its bits into
the exception for the same type/major/minor (an ``a`` rule: for ``b`` and ``c``); a rule
with the default takes its bits from that exception, and is refused when a wildcard
exception covering it holds one of them. A request is then allowed, with a deny default,
when one covering exception holds every requested bit; with an allow default, unless one
holds any requested bit.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import ProgramEmulator, device_filter
from cgroup2.devices.asm import Instruction

# Few distinct numbers, so that rules and devices often meet; with the edges of 32 bits.
NUMBERS = [0, 1, 3, 8, 2**31 - 1, 2**31, 2**32 - 1]
ACCESS = ["r", "w", "m", "rw", "rm", "wm", "rwm"]

rules_st = st.lists(
    st.builds(
        DeviceRule,
        allow=st.booleans(),
        type=st.sampled_from("abc"),
        major=st.none() | st.sampled_from(NUMBERS),
        minor=st.none() | st.sampled_from(NUMBERS),
        access=st.sampled_from(ACCESS),
    ),
    max_size=12,
)
device_st = st.tuples(
    st.sampled_from("bc"),
    st.sampled_from(NUMBERS) | st.integers(0, 2**32 - 1),
    st.sampled_from(NUMBERS) | st.integers(0, 2**32 - 1),
    st.sampled_from(ACCESS),
)


Key = tuple[str, int | None, int | None]


def v1_state(rules: list[DeviceRule]) -> tuple[bool, dict[Key, set[str]]] | None:
    """(default allows, exceptions) after the rules; None when a rule is refused."""
    default, exc = False, {}
    for r in rules:
        if r.type == "a" and r.major is None and r.minor is None and set(r.access) == set("rwm"):
            default, exc = r.allow, {}
            continue
        keys = [(t, r.major, r.minor) for t in (("b", "c") if r.type == "a" else (r.type,))]
        if r.allow != default:
            for k in keys:
                exc[k] = exc.get(k, set()) | set(r.access)
            continue
        for t, ma, mi in keys:
            for w in ((t, None, mi), (t, ma, None), (t, None, None)):
                if w != (t, ma, mi) and exc.get(w, set()) & set(r.access):
                    return None
        for k in keys:
            exc[k] = exc.get(k, set()) - set(r.access)
            if not exc[k]:
                del exc[k]
    return default, exc


def oracle(
    state: tuple[bool, dict[Key, set[str]]], type: str, major: int, minor: int, access: str
) -> bool:
    default, exc = state
    covering = [
        bits
        for (t, ma, mi), bits in exc.items()
        if t == type and ma in (None, major) and mi in (None, minor)
    ]
    if default:
        return not any(set(access) & bits for bits in covering)
    return any(set(access) <= bits for bits in covering)


@given(rules_st, st.lists(device_st, min_size=1, max_size=8))
def test_emulated_program_agrees_with_the_rules(
    rules: list[DeviceRule], devices: list[tuple[str, int, int, str]]
) -> None:
    state = v1_state(rules)
    if state is None:
        with pytest.raises(CgroupError, match="punch a hole in the wildcard exception"):
            device_filter(rules)
        return
    program, _ = device_filter(rules)
    little = ProgramEmulator(program, byteorder="little")
    big = ProgramEmulator(program, byteorder="big")
    for dev in devices:
        expected = oracle(state, *dev)
        assert little.allows(*dev) is expected, (rules, dev, program.dump())
        assert big.allows(*dev) is expected, (rules, dev)


@given(rules_st)
@example(  # b and c *:* rwm from two partial a rules: one block that decides, nothing after
    [
        DeviceRule(True, "c", 1, 3, "r"),
        DeviceRule(True, "a", None, None, "r"),
        DeviceRule(True, "a", None, None, "wm"),
    ]
)
def test_program_size_is_linear_and_jumps_go_forward(rules: list[DeviceRule]) -> None:
    if v1_state(rules) is None:
        return  # refused: no program
    program, _ = device_filter(rules)
    # a rule makes at most two exceptions (an "a" rule: b and c), a block at most 14
    # instructions
    assert len(program) <= 6 + 2 * 14 * len(rules) + 2
    for insn in program:
        if insn.target is not None:
            assert insn.off >= 0  # no loops: the verifier has no bounds to prove
    # every instruction can be reached (the verifier refuses "unreachable insn")
    reached, todo = set(), [0]
    while todo:
        pc = todo.pop()
        if pc in reached or pc >= len(program):
            continue
        reached.add(pc)
        insn = program[pc]
        if insn.code == 0x95:  # exit
            continue
        if insn.target is not None:
            todo.append(pc + 1 + insn.off)
        todo.append(pc + 1)
    assert reached == set(range(len(program))), program.dump()


@given(
    st.integers(0, 255),
    st.integers(0, 10),
    st.integers(0, 10),
    st.integers(-(2**15), 2**15 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from(["little", "big"]),
)
def test_encode_decode_round_trip(
    code: int, dst: int, src: int, off: int, imm: int, order: str
) -> None:
    insn = Instruction(code, dst, src, off, imm)
    data = insn.encode(order)  # type: ignore[arg-type]
    assert len(data) == 8 and data[0] == code
    assert Instruction.decode(data, order) == insn  # type: ignore[arg-type]
