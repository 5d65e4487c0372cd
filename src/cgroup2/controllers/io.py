"""The io controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ._values import U32_MAX, Value, int_in, invalid, limit_text


class IOType(enum.StrEnum):
    """The limit kinds of ``io.max``."""

    READ_BPS = "rbps"
    WRITE_BPS = "wbps"
    READ_IOPS = "riops"
    WRITE_IOPS = "wiops"


@dataclass(frozen=True, slots=True)
class BFQ:
    """``io.bfq.weight``: the BFQ scheduler's proportional weight, 1..1000."""

    weight: int

    def __post_init__(self) -> None:
        int_in("io.bfq.weight", self.weight, 1, 1000)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``io.max`` line: ``"<major>:<minor> <type>=<rate>"``; rate ``-1``/``"max"``: none."""

    type: IOType
    major: int
    minor: int
    rate: int | str

    def __post_init__(self) -> None:
        if not isinstance(self.type, IOType):
            try:
                object.__setattr__(self, "type", IOType(self.type))
            except ValueError:
                raise invalid(
                    "io.max type", self.type, "must be one of rbps, wbps, riops, wiops"
                ) from None
        int_in("io.max major", self.major, 0, U32_MAX)
        int_in("io.max minor", self.minor, 0, U32_MAX)
        limit_text("io.max rate", self.rate)

    def __str__(self) -> str:
        rate = limit_text("io.max rate", self.rate)
        return f"{self.major}:{self.minor} {self.type.value}={rate}"


@dataclass(frozen=True, slots=True)
class IO:
    """The io settings of a group.

    ``bfq`` -> ``io.bfq.weight``, ``max`` -> one ``io.max`` write per :class:`Entry`,
    ``weight`` -> ``io.weight`` (the default weight of the group, 1..10000).
    """

    bfq: BFQ | None = None
    max: Sequence[Entry] = field(default=())
    weight: int | None = None

    def __post_init__(self) -> None:
        if self.bfq is not None and not isinstance(self.bfq, BFQ):
            raise invalid("io.bfq", self.bfq, "must be a BFQ")
        if isinstance(self.max, (str, bytes)) or not isinstance(self.max, Sequence):
            raise invalid("io.max", self.max, "must be a sequence of Entry")
        entries = tuple(self.max)
        for e in entries:
            if not isinstance(e, Entry):
                raise invalid("io.max", e, "must be an Entry")
        object.__setattr__(self, "max", entries)
        if self.weight is not None:
            int_in("io.weight", self.weight, 1, 10000)

    def _items(self) -> Iterator[Value]:
        if self.bfq is not None:
            yield Value("io.bfq.weight", str(self.bfq.weight))
        for e in self.max:
            yield Value("io.max", str(e))
        if self.weight is not None:
            yield Value("io.weight", str(self.weight))

    def values(self) -> list[Value]:
        """The files and texts to write: io.bfq.weight, io.max lines, io.weight."""
        return list(self._items())


# --- what is read ---------------------------------------------------------------------
