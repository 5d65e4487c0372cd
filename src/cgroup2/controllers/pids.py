"""The pids controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
from dataclasses import dataclass

from ._values import Value, limit_text


@dataclass(frozen=True, slots=True)
class Pids:
    """The pids setting of a group: ``max`` -> ``pids.max`` (``-1`` or ``"max"``: no limit).

    ``0`` is written as ``0`` (no new task may start): unlike the reference, which could
    not tell 0 from "not set", here "not set" is ``Resources(pids=None)``.
    """

    max: int | str

    def __post_init__(self) -> None:
        self.values()

    def values(self) -> list[Value]:
        """The file and text to write: pids.max."""
        return [Value("pids.max", limit_text("pids.max", self.max, hi=2**31 - 1))]


# --- what is read ---------------------------------------------------------------------
from ._parse import Files, invalid_format, parse_limit, parse_uint, parse_value  # noqa: E402


@dataclass(slots=True)
class PidsStat:
    """``pids.current`` (tasks in the group and below) and ``pids.max`` as ``limit``
    (``U64_MAX`` for ``max``; ``None`` where the kernel has no such file, e.g. the root)."""

    current: int | None = None
    limit: int | None = None


def read_pids(d: Files) -> PidsStat | None:
    """Read ``pids.current`` and ``pids.max``; ``None`` when the pids controller is off."""
    data = d.try_read("pids.current")
    if data is None:
        return None
    current = parse_uint(data, "pids.current")
    data = d.try_read("pids.max")
    return PidsStat(current, None if data is None else parse_limit(data, "pids.max"))


def read_pids_max_hits(d: Files) -> int | None:
    """``max`` of ``pids.events``: how often a fork failed on pids.max (here and below);
    ``None`` when the pids controller is off."""
    data = d.try_read("pids.events")
    if data is None:
        return None
    for lineno, line in enumerate(data.split(b"\n"), 1):
        k, _, v = line.partition(b" ")
        if k == b"max":
            n = parse_value(v.strip())
            if n is None:
                raise invalid_format("pids.events", lineno, line, "expected 'max <count>'")
            return n
    return 0
