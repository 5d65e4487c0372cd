"""The io controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ._values import U32_MAX, Value, int_in, invalid, limit_text

__all__ = [
    "BFQ",
    "IO",
    "Entry",
    "IOStat",
    "IOStatEntry",
    "IOType",
    "WeightDevice",
    "parse_io_stat",
    "read_io",
]


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
class WeightDevice:
    """One device's proportional weight: the line ``"<major>:<minor> <weight>"`` of
    ``io.weight`` (1..10000, blk-iocost) or, in ``IO.bfq_device``, of ``io.bfq.weight``
    (1..1000, the BFQ scheduler). The kernel takes such a line only for a device whose
    queue runs that policy (iocost enabled in the root's ``io.cost.qos``; BFQ as the
    device's scheduler); else the write fails with EOPNOTSUPP or ENODEV-like errors.
    Not in the reference (it has no per-device weights); the OCI spec's
    ``blockIO.weightDevice``.
    """

    major: int
    minor: int
    weight: int

    def __post_init__(self) -> None:
        int_in("io weight device major", self.major, 0, U32_MAX)
        int_in("io weight device minor", self.minor, 0, U32_MAX)
        int_in("io weight device weight", self.weight, 1, 10000)

    def __str__(self) -> str:
        return f"{self.major}:{self.minor} {self.weight}"


def _weight_devices(name: str, devices: object, top: int) -> tuple[WeightDevice, ...]:
    if isinstance(devices, (str, bytes)) or not isinstance(devices, Sequence):
        raise invalid(name, devices, "must be a sequence of WeightDevice")
    out = tuple(devices)
    for d in out:
        if not isinstance(d, WeightDevice):
            raise invalid(name, d, "must be a WeightDevice")
        int_in(f"{name} weight", d.weight, 1, top)
    return out


@dataclass(frozen=True, slots=True)
class IO:
    """The io settings of a group.

    ``bfq`` -> ``io.bfq.weight``, ``max`` -> one ``io.max`` write per :class:`Entry`,
    ``weight`` -> ``io.weight`` (the default weight of the group, 1..10000);
    ``weight_device`` / ``bfq_device``: per-device weights, one ``io.weight`` /
    ``io.bfq.weight`` write per :class:`WeightDevice` (after the default weight).
    """

    bfq: BFQ | None = None
    max: Sequence[Entry] = field(default=())
    weight: int | None = None
    weight_device: Sequence[WeightDevice] = field(default=())
    bfq_device: Sequence[WeightDevice] = field(default=())

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
        object.__setattr__(
            self, "weight_device", _weight_devices("io.weight", self.weight_device, 10000)
        )
        object.__setattr__(
            self, "bfq_device", _weight_devices("io.bfq.weight", self.bfq_device, 1000)
        )

    def _items(self) -> Iterator[Value]:
        if self.bfq is not None:
            yield Value("io.bfq.weight", str(self.bfq.weight))
        for d in self.bfq_device:
            yield Value("io.bfq.weight", str(d))
        for e in self.max:
            yield Value("io.max", str(e))
        if self.weight is not None:
            yield Value("io.weight", str(self.weight))
        for d in self.weight_device:
            yield Value("io.weight", str(d))

    def values(self) -> list[Value]:
        """The files and texts to write: io.bfq.weight (default, then per device), io.max
        lines, io.weight (default, then per device)."""
        return list(self._items())


# --- what is read ---------------------------------------------------------------------
from collections.abc import Mapping  # noqa: E402
from dataclasses import field as _field  # noqa: E402

from ._parse import Files, decode_key, invalid_format, parse_value  # noqa: E402
from .psi import PSIStats, read_pressure  # noqa: E402


@dataclass(slots=True)
class IOStatEntry:
    """One device line of ``io.stat``: bytes and operations read, written and discarded.

    ``dbytes``/``dios`` are ``None`` on kernels that do not print them (before 4.19).
    Other keys (``cost.usage``, ``cost.vrate``, ``rlat`` and others of the io cost and
    latency controllers) are in ``other``, as ints, or floats where the kernel prints a
    fraction.
    """

    major: int
    minor: int
    rbytes: int | None = None
    wbytes: int | None = None
    rios: int | None = None
    wios: int | None = None
    dbytes: int | None = None
    dios: int | None = None
    other: Mapping[str, int | float] = _field(default_factory=dict)


@dataclass(slots=True)
class IOStat:
    """``io.stat`` (one :class:`IOStatEntry` per device, as ``usage``) and ``io.pressure``
    (``psi``, a core file: there even when the io controller is not)."""

    usage: tuple[IOStatEntry, ...] | None = None
    psi: PSIStats | None = None


_IO_KEYS = {k.encode(): k for k in ("rbytes", "wbytes", "rios", "wios", "dbytes", "dios")}


def _number(v: bytes) -> int | float | None:
    if v.isdigit():
        return parse_value(v)
    whole, dot, frac = v.partition(b".")
    if dot and whole.isdigit() and frac.isdigit():
        return float(v)
    return None


def parse_io_stat(data: bytes, filename: str = "io.stat") -> tuple[IOStatEntry, ...]:
    """Parse ``io.stat``: ``<major>:<minor> rbytes=<n> wbytes=<n> ...`` per device."""
    out = []
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        major_b, colon, minor_b = parts[0].partition(b":")
        major, minor = parse_value(major_b), parse_value(minor_b)
        if not colon or major is None or minor is None:
            raise invalid_format(filename, lineno, line, "expected '<major>:<minor> key=value...'")
        named: dict[str, int] = {}
        other: dict[str, int | float] = {}
        for p in parts[1:]:
            key, _, value = p.partition(b"=")
            name = _IO_KEYS.get(key)
            if name is None:
                n = _number(value)
                if n is not None:
                    other[decode_key(key)] = n
                continue
            v = parse_value(value)
            if v is None:
                raise invalid_format(filename, lineno, line, f"{name}: not an unsigned integer")
            named[name] = v
        out.append(IOStatEntry(major, minor, **named, other=other))
    return tuple(out)


def read_io(d: Files, *, stat: bool = True, pressure: bool = True) -> IOStat | None:
    """Read ``io.stat`` (``stat``) and ``io.pressure`` (``pressure``); ``None`` when
    neither is there."""
    data = d.try_read("io.stat") if stat else None
    usage = None if data is None else parse_io_stat(data)
    psi = read_pressure(d, "io") if pressure else None
    if usage is None and psi is None:
        return None
    return IOStat(usage, psi)
