"""Device rules read back from a group's eBPF device program, through the emulator.

A program made by :func:`cgroup2.devices.device_filter` compares the device type, major
and minor with constants (``==``/``!=``) and tests access bits; so its answer is the same
for every major (minor) that is none of the constants in its jumps and moves. The program is run in
:class:`~cgroup2.devices.ProgramEmulator` on every combination of type (``b``, ``c``),
those constants plus one number that is none of them, and access (the 7 subsets of
``rwm``); the answers are written as an ordered rule list (general rules first, then the
exceptions), which is checked to give the same answer on every one of those accesses. A
number between two constants must answer as the one no rule names, or the program compares
by range (not a program of ``device_filter``) and is not read back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from ..devices.rules import DeviceRule

__all__ = ["ACCESSES", "allows", "rules_of_program"]

_M32 = 2**32 - 1
#: Every access a request can ask for: the non-empty subsets of ``rwm``.
ACCESSES = ("r", "w", "m", "rw", "rm", "wm", "rwm")

Point = tuple[int | None, int | None]  # (major, minor); None: a number no rule names
Answer = frozenset[str]  # the accesses allowed


def allows(rules: Iterable[DeviceRule], typ: str, major: int, minor: int, access: str) -> bool:
    """The rule semantics of :class:`DeviceRule` (the last matching rule decides, no match
    denies; an allow matches a request it names every bit of, a deny one it names any
    bit of)."""
    verdict = False
    for r in rules:
        if r.type not in ("a", typ) or r.major not in (None, major):
            continue
        if r.minor not in (None, minor):
            continue
        if r.allow and set(access) <= set(r.access):
            verdict = True
        elif not r.allow and set(access) & set(r.access):
            verdict = False
    return verdict


def _constants(program: bytes) -> list[int]:
    """The immediates of the jumps and of the moves (a number of 2**31 or more is moved
    into a register and compared with it)."""
    from ..devices.asm import ALU, ALU64, JMP, JMP32, AluOp, Instruction, X

    out = set()
    for i in range(0, len(program) - 7, 8):
        insn = Instruction.decode(program[i : i + 8])
        if insn.code & X:
            continue
        if insn.cls in (JMP, JMP32) or (
            insn.cls in (ALU, ALU64) and insn.code & 0xF0 == AluOp.MOV
        ):
            out.add(insn.imm & _M32)
    return sorted(out)


def _fresh(used: set[int]) -> int:
    return next(v for v in itertools.count(_M32, -1) if v not in used)


def _between(consts: list[int], fresh: int) -> list[int]:
    """A number in each gap between the constants (and below the first), none of them
    a constant or ``fresh``."""
    out = []
    bounds = [-1, *consts, fresh]
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo > 1:
            out.append((lo + hi) // 2)
    return out


def _maximal(allowed: Answer) -> list[str]:
    sets = [frozenset(a) for a in allowed]
    top = [s for s in sets if not any(s < t for t in sets)]
    return sorted("".join(c for c in "rwm" if c in s) for s in top)


def _point_rules(
    typ: str, major: int | None, minor: int | None, want: Answer, got: Answer
) -> list[DeviceRule]:
    """Rules that make exactly ``want`` allowed at this point where the rules before
    them allow ``got`` (both are closed under subsets, as the rule semantics make them)."""
    if want == frozenset(ACCESSES):
        return [DeviceRule(True, typ, major, minor, "rwm")]
    out = [] if got <= want else [DeviceRule(False, typ, major, minor, "rwm")]
    base = got if got <= want else frozenset()
    return out + [DeviceRule(True, typ, major, minor, a) for a in _maximal(want) if a not in base]


def rules_of_program(program: bytes) -> list[DeviceRule] | None:
    """The rules a device program enforces, or ``None`` when they cannot be read back
    exactly (a program that compares in ways :func:`device_filter` does not)."""
    from ..devices.emulator import ProgramEmulator

    emu = ProgramEmulator(program)
    consts = _constants(program)
    fresh = _fresh(set(consts))
    values: list[int | None] = [None, *consts]

    def num(v: int | None) -> int:
        return fresh if v is None else v

    answers: dict[tuple[str, int | None, int | None], Answer] = {}
    for typ in ("b", "c"):
        for major in values:
            for minor in values:
                answers[typ, major, minor] = frozenset(
                    a for a in ACCESSES if emu.allows(typ, num(major), num(minor), a)
                )
    # a number between two constants must answer as a number no rule names: else the
    # program compares by range, which no rule list says
    for e in _between(consts, fresh):
        for typ in ("b", "c"):
            for a in ACCESSES:
                base = (typ, None, None)
                ok = a in answers[base]
                if emu.allows(typ, e, fresh, a) != ok or emu.allows(typ, fresh, e, a) != ok:
                    return None
    same = all(answers["b", p, q] == answers["c", p, q] for p in values for q in values)
    levels: list[list[Point]] = [  # general first: *:*, then *:m, then M:*, then M:m
        [(None, None)],
        [(None, q) for q in consts],
        [(p, None) for p in consts],
        [(p, q) for p in consts for q in consts],
    ]
    rules: list[DeviceRule] = []
    # the default said once, for all devices (a leading "deny a" changes nothing: no
    # match denies; it is there to be read)
    default = answers["b", None, None]
    if default != answers["c", None, None]:
        default = frozenset()
    rules += _point_rules("a", None, None, default, frozenset(ACCESSES))
    for typ in ["a"] if same else ["b", "c"]:
        probe = "b" if typ == "a" else typ
        for level in levels:
            for major, minor in level:
                want = answers[probe, major, minor]
                got = frozenset(
                    a for a in ACCESSES if allows(rules, probe, num(major), num(minor), a)
                )
                if got != want:
                    rules += _point_rules(typ, major, minor, want, got)
    # the check: the rules give the program's answer on every access probed
    for (typ, major, minor), want in answers.items():
        got = frozenset(a for a in ACCESSES if allows(rules, typ, num(major), num(minor), a))
        if got != want:
            return None
    return rules
