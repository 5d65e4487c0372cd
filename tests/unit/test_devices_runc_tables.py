"""unit: runc's device emulator tables, through our state model and our compiled program.

runc (opencontainers/cgroups ``devices/devices_emulator_test.go``) checks its emulator of
cgroup v1's device state with four tables: loading ``devices.list``, applying one rule to
a state in each default mode (whitelist: deny by default; blacklist: allow by default), and
the transition between two states from each mode. Every case is ported here (58 in all)
and checked twice:

* on :class:`DeviceState` (the same outcome, or a refusal where runc errs, with the state
  left unchanged);
* on the program :func:`device_filter` compiles from rules that make the case's start
  state plus the case's rule(s), run in the eBPF emulator: its verdict on every device
  and access the case names must be what cgroup v1 decides for the expected state. The
  oracle for that is written here from the kernel's two checks (``match_exception``,
  ``match_exception_partial``), not taken from the code under test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import ProgramEmulator, device_filter
from cgroup2.devices.state import DeviceState, Key

W = None  # runc's devices.Wildcard
ACCESSES = ("r", "w", "m", "rw", "rm", "wm", "rwm")
FRESH = 4242  # a number no case names
Exc = dict[Key, str]


# --- the oracle: cgroup v1's check of one request against a state ----------------------


def v1_allows(default_allow: bool, exc: Exc, typ: str, major: int, minor: int, acc: str) -> bool:
    covering = [
        set(bits)
        for (t, ma, mi), bits in exc.items()
        if t == typ and ma in (None, major) and mi in (None, minor)
    ]
    if default_allow:  # denied when an exception shares any bit (match_exception_partial)
        return not any(set(acc) & bits for bits in covering)
    return any(set(acc) <= bits for bits in covering)  # one holds all (match_exception)


def probes(*excs: Exc, rules: tuple[DeviceRule, ...] = ()) -> list[tuple[str, int, int, str]]:
    """Every type, every number the case names (and one it does not), every access."""
    nums = {FRESH}
    for exc in excs:
        for _, ma, mi in exc:
            nums |= {n for n in (ma, mi) if n is not None}
    for r in rules:
        nums |= {n for n in (r.major, r.minor) if n is not None}
    return list(itertools.product("bc", sorted(nums), sorted(nums), ACCESSES))


def check_program(rules: list[DeviceRule], default_allow: bool, exc: Exc) -> None:
    program, _ = device_filter(rules)
    emu = ProgramEmulator(program)
    points = probes(exc, rules=tuple(rules))
    wrong = [p for p in points if emu.allows(*p) != v1_allows(default_allow, exc, *p)]
    assert not wrong, (rules, wrong[:5], program.dump())


# --- TestDeviceEmulatorLoad ---------------------------------------------------------------

LOAD: list[tuple[str, str, tuple[bool, Exc] | None]] = [
    ("BlacklistMode", "a *:* rwm", (True, {})),
    ("WhitelistBasic", "c 4:2 rw", (False, {("c", 4, 2): "rw"})),
    ("WhitelistWildcard", "b 0:* m", (False, {("b", 0, W): "m"})),
    (
        "WhitelistDuplicate",
        "c *:* rwm\nc 1:1 r",
        # to match the kernel, a redundant exception is kept
        (False, {("c", W, W): "rwm", ("c", 1, 1): "r"}),
    ),
    (
        "WhitelistComplicated",
        "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\n"
        "c 5:0 rwm\nc 5:2 rwm\nc 136:* rwm\nc 10:200 rwm",
        (
            False,
            {
                ("c", W, W): "m",
                ("b", W, W): "m",
                ("c", 1, 3): "rwm",
                ("c", 1, 5): "rwm",
                ("c", 1, 7): "rwm",
                ("c", 1, 8): "rwm",
                ("c", 1, 9): "rwm",
                ("c", 5, 0): "rwm",
                ("c", 5, 2): "rwm",
                ("c", 136, W): "rwm",
                ("c", 10, 200): "rwm",
            },
        ),
    ),
    ("InvalidFieldNumber", "b 1:0", None),
    ("InvalidDeviceType", "p *:* rwm", None),
    ("InvalidMajorNumber1", "p -1:3 rwm", None),
    ("InvalidMajorNumber2", "c foo:27 rwm", None),
    ("InvalidMinorNumber1", "b 1:-4 rwm", None),
    ("InvalidMinorNumber2", "b 1:foo rwm", None),
    ("InvalidPermissions", "b 1:7 rwk", None),
]


@pytest.mark.parametrize(("name", "text", "expected"), LOAD, ids=[c[0] for c in LOAD])
def test_load(name: str, text: str, expected: tuple[bool, Exc] | None) -> None:
    if expected is None:
        with pytest.raises(CgroupError, match=r"invalid devices\.list line 1"):
            DeviceState.from_list(text)
        return
    state = DeviceState.from_list(text)
    assert state == DeviceState(*expected)
    # the program made from the loaded state decides as v1 does with it
    check_program(state.rules(), *expected)


# --- testDeviceEmulatorApply (TestDeviceEmulatorWhitelistApply / BlacklistApply) ----------


@dataclass(frozen=True)
class Apply:
    name: str
    against: bool  # the rule's polarity is the opposite of the base's default (adds)
    rule: tuple[str, int | None, int | None, str]
    base: Exc
    expected: Exc | None  # None: refused
    switch: bool = False  # the rule is "a *:* rwm": the default becomes !base or base


_TWO = {("c", W, W): "rwm", ("c", 1, 1): "r"}
APPLY = [
    Apply("SwitchToOtherMode", True, ("a", W, W, "rwm"), _TWO, {}, switch=True),
    Apply("SwitchToSameModeNoop", False, ("a", W, W, "rwm"), {}, {}, switch=True),
    Apply("SwitchToSameMode", False, ("a", W, W, "rwm"), _TWO, {}, switch=True),
    Apply(
        "RuleAdditionBasic",
        True,
        ("c", 42, 1337, "rm"),
        {("c", 2, 1): "rwm", ("b", 1, 5): "r"},
        {("c", 2, 1): "rwm", ("b", 1, 5): "r", ("c", 42, 1337): "rm"},
    ),
    Apply(
        "RuleAdditionBasicDuplicate",
        True,
        ("c", 42, 1337, "rm"),
        {("c", 42, W): "rwm"},
        # to match the kernel, a redundant exception is kept
        {("c", 42, W): "rwm", ("c", 42, 1337): "rm"},
    ),
    Apply(
        "RuleAdditionBasicDuplicateNoop",
        True,
        ("c", 42, 1337, "rm"),
        {("c", 42, 1337): "rm"},
        {("c", 42, 1337): "rm"},
    ),
    Apply(
        "RuleAdditionMerge",
        True,
        ("b", 5, 12, "rm"),
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, 12): "rwm"},
    ),
    Apply(
        "RuleAdditionMergeWildcard",
        True,
        ("b", 5, W, "rm"),
        {("c", 2, 1): "rwm", ("b", 5, W): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, W): "rwm"},
    ),
    Apply(
        "RuleAdditionMergeNoop",
        True,
        ("b", 5, 12, "r"),
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
    ),
    Apply(
        "RuleRemovalBasic",
        False,
        ("c", 42, 1337, "rm"),
        {("c", 42, 1337): "rm", ("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    Apply(
        "RuleRemovalNonexistent",
        False,
        ("c", 4, 1, "rw"),
        {("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    Apply(
        "RuleRemovalFull",
        False,
        ("c", 42, 1337, "rw"),
        {("c", 42, 1337): "w", ("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    Apply(
        "RuleRemovalPartial",
        False,
        ("c", 42, 1337, "r"),
        {("c", 42, 1337): "rm", ("b", 1, 5): "r"},
        {("c", 42, 1337): "m", ("b", 1, 5): "r"},
    ),
    # runc's (and our) refusal to "punch out" a hole in a wildcard exception
    Apply(
        "RuleRemovalWildcardPunchoutImpossible",
        False,
        ("c", 42, 1337, "r"),
        {("c", 42, W): "rm", ("c", 42, 1337): "r"},
        None,
    ),
    Apply(
        "RuleRemovalWildcardPunchoutPossible",
        False,
        ("c", 42, 1337, "r"),
        {("c", 42, W): "wm", ("c", 42, 1337): "r"},
        {("c", 42, W): "wm"},
    ),
]
APPLY_CASES = [
    pytest.param(case, base_allow, id=f"{'Blacklist' if base_allow else 'Whitelist'}-{case.name}")
    for base_allow in (False, True)
    for case in APPLY
]


def _apply_rule(case: Apply, base_allow: bool) -> DeviceRule:
    allow = (not base_allow) if case.against else base_allow
    return DeviceRule(allow, *case.rule)


def _expected_default(case: Apply, base_allow: bool) -> bool:
    return (not base_allow if case.against else base_allow) if case.switch else base_allow


@pytest.mark.parametrize(("case", "base_allow"), APPLY_CASES)
def test_apply_state(case: Apply, base_allow: bool) -> None:
    base = DeviceState(base_allow, case.base)
    rule = _apply_rule(case, base_allow)
    if case.expected is None:
        with pytest.raises(CgroupError, match="punch a hole in the wildcard exception"):
            base.apply(rule)
        assert base == DeviceState(base_allow, case.base)  # nothing half-done
        return
    base.apply(rule)
    assert base == DeviceState(_expected_default(case, base_allow), case.expected)


@pytest.mark.parametrize(("case", "base_allow"), APPLY_CASES)
def test_apply_program(case: Apply, base_allow: bool) -> None:
    rules = [*DeviceState(base_allow, case.base).rules(), _apply_rule(case, base_allow)]
    if case.expected is None:
        with pytest.raises(CgroupError, match="punch a hole in the wildcard exception"):
            device_filter(rules)
        return
    check_program(rules, _expected_default(case, base_allow), case.expected)


# --- testDeviceEmulatorTransition (TestDeviceEmulatorTransitionFromWhitelist/Blacklist) ---


@dataclass(frozen=True)
class Transition:
    name: str
    source: Exc
    target: Exc
    # the rules from a whitelist source: (rule polarity is the opposite of the target's
    # default, type, major, minor, access); a reset when the defaults differ first
    expected: list[tuple[bool, str, int | None, int | None, str]]
    switch: bool = False  # the target's default is the opposite of the source's


TRANSITIONS = [
    Transition("Noop", {("c", 42, W): "wm"}, {("c", 42, W): "wm"}, []),
    Transition(
        "SwitchToOtherMode",
        {("c", 1, 2): "rwm"},
        {("b", 42, W): "wm"},
        [(True, "b", 42, W, "wm")],
        switch=True,
    ),
    Transition(
        "RuleAddition",
        {("c", 1, 2): "rwm"},
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        [(True, "b", 42, 1337, "rwm")],
    ),
    Transition(
        "RuleRemoval",
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        {("c", 1, 2): "rwm"},
        [(False, "b", 42, 1337, "rwm")],
    ),
    Transition(
        "RuleMultipleAdditionRemoval",
        {("c", 1, 2): "rwm", ("b", 3, 9): "rw"},
        {("c", 1, 2): "rwm"},
        [(False, "b", 3, 9, "rw")],
    ),
    Transition(
        "RulePartialAddition",
        {("c", 1, 2): "r"},
        {("c", 1, 2): "rwm"},
        [(True, "c", 1, 2, "wm")],
    ),
    Transition(
        "RulePartialRemoval",
        {("c", 1, 2): "rw"},
        {("c", 1, 2): "w"},
        [(False, "c", 1, 2, "r")],
    ),
    Transition(
        "RulePartialBoth",
        {("c", 1, 2): "rw"},
        {("c", 1, 2): "rm"},
        [(False, "c", 1, 2, "w"), (True, "c", 1, 2, "m")],
    ),
]
TRANSITION_CASES = [
    pytest.param(case, src_allow, id=f"From{'Blacklist' if src_allow else 'Whitelist'}-{case.name}")
    for src_allow in (False, True)
    for case in TRANSITIONS
]


def _states(case: Transition, src_allow: bool) -> tuple[DeviceState, DeviceState]:
    tgt_allow = not src_allow if case.switch else src_allow
    return DeviceState(src_allow, case.source), DeviceState(tgt_allow, case.target)


def _expected_rules(case: Transition, src_allow: bool) -> list[DeviceRule]:
    _, target = _states(case, src_allow)
    if src_allow and not case.switch:
        # from a blacklist (whose deny exceptions devices.list does not show) runc resets
        # and writes every exception of the target, in its order (major, minor, type)
        ordered = sorted(
            target.exceptions.items(),
            key=lambda kv: (
                -1 if kv[0][1] is None else kv[0][1],
                -1 if kv[0][2] is None else kv[0][2],
                kv[0][0],
            ),
        )
        return [DeviceRule(target.default_allow)] + [
            DeviceRule(not target.default_allow, t, ma, mi, acc) for (t, ma, mi), acc in ordered
        ]
    out = [DeviceRule(target.default_allow)] if case.switch else []
    for against, t, ma, mi, acc in case.expected:
        out.append(DeviceRule(against != target.default_allow, t, ma, mi, acc))
    return out


@pytest.mark.parametrize(("case", "src_allow"), TRANSITION_CASES)
def test_transition_state(case: Transition, src_allow: bool) -> None:
    source, target = _states(case, src_allow)
    rules = source.transition(target)
    assert rules == _expected_rules(case, src_allow)
    for rule in rules:  # applied, the rules make the target
        source.apply(rule)
    assert source == target


@pytest.mark.parametrize(("case", "src_allow"), TRANSITION_CASES)
def test_transition_program(case: Transition, src_allow: bool) -> None:
    source, target = _states(case, src_allow)
    rules = [*source.rules(), *_expected_rules(case, src_allow)]
    check_program(rules, target.default_allow, case.target)


def test_every_runc_case_is_here() -> None:
    """12 load cases, 15 apply cases in 2 modes, 8 transitions from 2 modes: 58."""
    assert (len(LOAD), len(APPLY_CASES), len(TRANSITION_CASES)) == (12, 30, 16)
