"""The memory controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
from collections.abc import Iterator
from dataclasses import dataclass

from ._values import Value, invalid, limit_text


@dataclass(frozen=True, slots=True)
class Memory:
    """The memory settings of a group, in bytes; ``-1`` or ``"max"`` is no limit.

    ``swap`` -> ``memory.swap.max``, ``max`` -> ``memory.max``, ``low`` -> ``memory.low``,
    ``high`` -> ``memory.high``, ``min`` -> ``memory.min``, ``oom_group`` ->
    ``memory.oom.group`` (kill the whole group on an OOM kill).
    """

    swap: int | str | None = None
    max: int | str | None = None
    low: int | str | None = None
    high: int | str | None = None
    min: int | str | None = None
    oom_group: bool | None = None

    def __post_init__(self) -> None:
        self.values()

    def _items(self) -> Iterator[Value]:
        for field, name in (
            ("swap", "memory.swap.max"),
            ("max", "memory.max"),
            ("low", "memory.low"),
            ("high", "memory.high"),
            ("min", "memory.min"),
        ):
            v = getattr(self, field)
            if v is not None:
                yield Value(name, limit_text(name, v))
        if self.oom_group is not None:
            if not isinstance(self.oom_group, bool) and self.oom_group not in (0, 1):
                raise invalid("memory.oom.group", self.oom_group, "must be a bool")
            yield Value("memory.oom.group", "1" if self.oom_group else "0")

    def values(self) -> list[Value]:
        """The files and texts to write: memory.swap.max, memory.max, memory.low,
        memory.high, memory.min, memory.oom.group (in this order, each only when set)."""
        return list(self._items())


# --- what is read ---------------------------------------------------------------------
