"""The rdma controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._values import Value, invalid, limit_text

_RDMA_MAX = 2**31 - 1  # the kernel parses rdma.max numbers as non-negative ints


@dataclass(frozen=True, slots=True)
class RDMAEntry:
    """One ``rdma.max`` line: ``"<device> hca_handle=<n> hca_object=<n>"``.

    A count of ``-1`` or ``"max"`` is no limit.
    """

    device: str
    hca_handles: int | str
    hca_objects: int | str

    def __post_init__(self) -> None:
        if (
            not isinstance(self.device, str)
            or not self.device
            or any(c.isspace() or c == "\0" for c in self.device)
        ):
            raise invalid("rdma.max device", self.device, "must be a non-empty name without spaces")
        str(self)

    def __str__(self) -> str:
        h = limit_text("rdma.max hca_handle", self.hca_handles, hi=_RDMA_MAX)
        o = limit_text("rdma.max hca_object", self.hca_objects, hi=_RDMA_MAX)
        return f"{self.device} hca_handle={h} hca_object={o}"


@dataclass(frozen=True, slots=True)
class RDMA:
    """The rdma settings of a group: one ``rdma.max`` write per :class:`RDMAEntry`."""

    limit: Sequence[RDMAEntry] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.limit, (str, bytes)) or not isinstance(self.limit, Sequence):
            raise invalid("rdma.max", self.limit, "must be a sequence of RDMAEntry")
        entries = tuple(self.limit)
        for e in entries:
            if not isinstance(e, RDMAEntry):
                raise invalid("rdma.max", e, "must be an RDMAEntry")
        object.__setattr__(self, "limit", entries)

    def values(self) -> list[Value]:
        """The file and texts to write: one rdma.max line per entry."""
        return [Value("rdma.max", str(e)) for e in self.limit]


# --- what is read ---------------------------------------------------------------------
from ._parse import Files, invalid_format, parse_value  # noqa: E402


@dataclass(slots=True)
class RdmaStatEntry:
    """One device line of ``rdma.current`` or ``rdma.max``: HCA handles and objects
    (``U64_MAX`` for ``max``; ``None`` when the line lacks the key)."""

    device: str
    hca_handles: int | None = None
    hca_objects: int | None = None


@dataclass(slots=True)
class RdmaStat:
    """``rdma.current`` (``current``) and ``rdma.max`` (``limit``, ``None`` at the root)."""

    current: tuple[RdmaStatEntry, ...] = ()
    limit: tuple[RdmaStatEntry, ...] | None = None


_RDMA_KEYS = {b"hca_handle": "hca_handles", b"hca_object": "hca_objects"}


def parse_rdma(data: bytes, filename: str, *, limit: bool = False) -> tuple[RdmaStatEntry, ...]:
    """Parse ``rdma.current`` / ``rdma.max`` (``limit=True`` allows ``max``):
    ``<device> hca_handle=<n> hca_object=<n>`` lines."""
    out = []
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        named: dict[str, int] = {}
        for p in parts[1:]:
            key, _, value = p.partition(b"=")
            name = _RDMA_KEYS.get(key)
            if name is None:
                continue
            v = parse_value(value, limit=limit)
            if v is None:
                raise invalid_format(filename, lineno, line, f"{key.decode()}: not a count")
            named[name] = v
        out.append(RdmaStatEntry(parts[0].decode("utf-8", "backslashreplace"), **named))
    return tuple(out)


def read_rdma(d: Files) -> RdmaStat | None:
    """Read ``rdma.current`` and ``rdma.max``; ``None`` when the rdma controller is off."""
    data = d.try_read("rdma.current")
    if data is None:
        return None
    current = parse_rdma(data, "rdma.current")
    data = d.try_read("rdma.max")
    return RdmaStat(current, None if data is None else parse_rdma(data, "rdma.max", limit=True))
