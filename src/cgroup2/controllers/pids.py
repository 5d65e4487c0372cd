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
