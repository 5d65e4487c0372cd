"""The two files the watcher reads: ``memory.events`` and ``cgroup.events``, their values
and their parsers.

``memory.events`` is parsed by the memory controller's parser
(:func:`cgroup2.controllers.memory.parse_memory_events`); here its counts become an
:class:`Event`, which needs the five keys every kernel has. ``parse_cgroup_events`` is the
one parser of ``cgroup.events`` (``populated``, ``frozen``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..controllers.memory import parse_memory_events as _parse_memory_events_full
from ..errors import InvalidFormatError

__all__ = [
    "CGROUP_EVENTS",
    "MEMORY_EVENTS",
    "CgroupEvents",
    "Event",
    "parse_cgroup_events",
    "parse_memory_events",
]

MEMORY_EVENTS = "memory.events"
CGROUP_EVENTS = "cgroup.events"

@dataclass(frozen=True, slots=True)
class Event:
    """The counts of ``memory.events``: how many times each memory event has happened in
    the group and below it since the group was created (the reference's ``Event``).

    ``low``/``high``/``max``: reclaim under ``memory.low``, throttling over
    ``memory.high``, allocation at ``memory.max``; ``oom``: the group hit its limit and
    the OOM killer was invoked; ``oom_kill``: processes killed by it; ``oom_group_kill``:
    whole-group kills (``memory.oom.group``; 0 before Linux 5.17).
    """

    low: int
    high: int
    max: int
    oom: int
    oom_kill: int
    oom_group_kill: int = 0


@dataclass(frozen=True, slots=True)
class CgroupEvents:
    """``cgroup.events``: ``populated`` (a process is in the group or below it) and
    ``frozen`` (the group is frozen; ``False`` before Linux 5.2, which lacks the key)."""

    populated: bool
    frozen: bool = False


def parse_memory_events(data: bytes) -> Event:
    """Parse the bytes of ``memory.events`` (or ``memory.events.local``).

    Unknown keys (``sock_throttled``, ...) are ignored; a missing one of the five keys
    every kernel with cgroup2 memory has, or a value that is not an unsigned decimal,
    raises :class:`InvalidFormatError` naming the file.
    """
    m = _parse_memory_events_full(data, MEMORY_EVENTS)
    if m.low is None or m.high is None or m.max is None or m.oom is None or m.oom_kill is None:
        raise InvalidFormatError(
            f"cgroups: parsing file with invalid format failed: {MEMORY_EVENTS}: "
            f"one of low, high, max, oom, oom_kill is missing in {data[:200]!r}",
            path=MEMORY_EVENTS,
        )
    return Event(m.low, m.high, m.max, m.oom, m.oom_kill, m.oom_group_kill or 0)


_CG_FAST = {
    b"populated 0\nfrozen 0\n": CgroupEvents(False, False),
    b"populated 1\nfrozen 0\n": CgroupEvents(True, False),
    b"populated 0\nfrozen 1\n": CgroupEvents(False, True),
    b"populated 1\nfrozen 1\n": CgroupEvents(True, True),
}
_BOOL = {b"0": False, b"1": True}


def parse_cgroup_events(data: bytes) -> CgroupEvents:
    """Parse the bytes of ``cgroup.events`` (``populated 0|1``, ``frozen 0|1``).

    Unknown keys are ignored; a missing ``populated`` or a value other than 0/1 for a
    known key raises :class:`InvalidFormatError` naming the file.
    """
    fast = _CG_FAST.get(data)
    if fast is not None:
        return fast
    seen: dict[bytes, bool] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in (b"populated", b"frozen"):
            continue
        v = _BOOL.get(parts[1]) if len(parts) == 2 else None
        if v is None:
            raise InvalidFormatError(
                f"cgroups: parsing file with invalid format failed: {CGROUP_EVENTS} "
                f"line {lineno}: {line[:200]!r}: expected '<key> 0|1'",
                path=CGROUP_EVENTS,
            )
        seen[parts[0]] = v
    if b"populated" not in seen:
        raise InvalidFormatError(
            f"cgroups: parsing file with invalid format failed: {CGROUP_EVENTS}: "
            f"no 'populated' line in {data[:200]!r}",
            path=CGROUP_EVENTS,
        )
    return CgroupEvents(seen[b"populated"], seen.get(b"frozen", False))
