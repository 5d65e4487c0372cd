"""unit (hypothesis): the emulated program decides exactly what the rules say.

The oracle below evaluates the rules directly, without any eBPF, as
``cgroup2.devices.filter`` defines them: a rule matches a request when its type, major and
minor match and, for an allow, its access holds every requested bit, for a deny, any
requested bit; the last rule that matches decides; no match denies.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cgroup2 import DeviceRule, ProgramEmulator, device_filter
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


def oracle(rules: list[DeviceRule], type: str, major: int, minor: int, access: str) -> bool:
    for r in reversed(rules):
        if r.type not in ("a", type) or r.major not in (None, major):
            continue
        if r.minor not in (None, minor):
            continue
        if r.allow and set(access) <= set(r.access):
            return True
        if not r.allow and set(access) & set(r.access):
            return False
    return False


@given(rules_st, st.lists(device_st, min_size=1, max_size=8))
def test_emulated_program_agrees_with_the_rules(
    rules: list[DeviceRule], devices: list[tuple[str, int, int, str]]
) -> None:
    program, _ = device_filter(rules)
    little = ProgramEmulator(program, byteorder="little")
    big = ProgramEmulator(program, byteorder="big")
    for dev in devices:
        expected = oracle(rules, *dev)
        assert little.allows(*dev) is expected, (rules, dev, program.dump())
        assert big.allows(*dev) is expected, (rules, dev)


@given(rules_st)
def test_program_size_is_linear_and_jumps_go_forward(rules: list[DeviceRule]) -> None:
    program, _ = device_filter(rules)
    assert len(program) <= 6 + 15 * len(rules) + 2
    for insn in program:
        if insn.target is not None:
            assert insn.off >= 0  # no loops: the verifier has no bounds to prove


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
