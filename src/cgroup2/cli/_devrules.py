"""Device rules read back from a group's eBPF device program, through the emulator.

A program made by :func:`cgroup2.devices.device_filter` compares the device type, major
and minor with constants (``==``/``!=``) and tests access bits; so its answer is the same
for every major (minor) that is none of the constants in its jumps and moves. The program is run in
:class:`~cgroup2.devices.ProgramEmulator` on every combination of type (``b``, ``c``),
those constants plus one number that is none of them, and access (the 7 subsets of
``rwm``). From the answers a cgroup v1 state is found (:class:`~cgroup2.devices.state.
DeviceState`: a default and exceptions, general ones first) and written as the rules that
make it, which are checked to give the same answer on every one of those accesses. A
number between two constants must answer as the one no rule names, or the program compares
by range (not a program of ``device_filter``) and is not read back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from ..devices.rules import DeviceRule
from ..devices.state import DeviceState

__all__ = ["ACCESSES", "allows", "rules_of_program"]

_M32 = 2**32 - 1
#: Every access a request can ask for: the non-empty subsets of ``rwm``.
ACCESSES = ("r", "w", "m", "rw", "rm", "wm", "rwm")

Point = tuple[int | None, int | None]  # (major, minor); None: a number no rule names
Answer = frozenset[str]  # the accesses allowed


def allows(rules: Iterable[DeviceRule], typ: str, major: int, minor: int, access: str) -> bool:
    """The rule semantics of :class:`DeviceRule`: the rules applied in order as cgroup v1
    applies them, then the request decided by the resulting state."""
    return DeviceState.of(rules).allows(typ, major, minor, access)


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


def _fit(
    answers: dict[tuple[str, int | None, int | None], Answer],
    default_allow: bool,
    levels: list[list[Point]],
    num: Callable[[int | None], int],
) -> DeviceState | None:
    """The exceptions that give ``answers`` with this default, found from the general
    devices to the specific ones; ``None`` when no set of exceptions does."""
    state = DeviceState(default_allow)
    for typ in ("b", "c"):
        for level in levels:
            for major, minor in level:
                want = answers[typ, major, minor]
                got = frozenset(a for a in ACCESSES if state.allows(typ, num(major), num(minor), a))
                if got == want:
                    continue
                if default_allow:
                    # deny exceptions only take away: what is left is every subset of one set
                    top = "".join(c for c in "rwm" if any(c in a for a in want))
                    if not want <= got or want != frozenset(
                        a for a in ACCESSES if set(a) <= set(top)
                    ):
                        return None
                    bits = "".join(c for c in "rwm" if c not in top)
                else:
                    # an allow exception adds every subset of its bits
                    if not got <= want:
                        return None
                    bits = "".join(c for c in "rwm" if any(c in a for a in want - got))
                    if bits not in want:
                        return None
                # a new exception (no rule before named this device)
                state.apply(DeviceRule(not default_allow, typ, major, minor, bits))
    return state


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
    levels: list[list[Point]] = [  # general first: *:*, then *:m, then M:*, then M:m
        [(None, None)],
        [(None, q) for q in consts],
        [(p, None) for p in consts],
        [(p, q) for p in consts for q in consts],
    ]
    full = frozenset(ACCESSES)
    first = answers["b", None, None] == full and answers["c", None, None] == full
    for default_allow in (first, not first):
        state = _fit(answers, default_allow, levels, num)
        if state is None:
            continue
        rules = state.rules()
        again = DeviceState.of(rules)
        # the check: the rules give the program's answer on every access probed
        if all(
            frozenset(a for a in ACCESSES if again.allows(typ, num(major), num(minor), a)) == want
            for (typ, major, minor), want in answers.items()
        ):
            return rules
    return None
