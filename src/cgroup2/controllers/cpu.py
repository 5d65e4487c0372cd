"""The cpu controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
from collections.abc import Iterator
from dataclasses import dataclass

from ._values import Value, int_in, invalid, is_int
from .cpuset import cpu_list_text

_DEFAULT_PERIOD = 100_000  # the kernel's default cpu.max period, microseconds
_MIN_PERIOD = 1_000  # the kernel refuses a period or quota below 1 ms ...
_MAX_PERIOD = 1_000_000  # ... and a period above 1 s
_MAX_QUOTA = 2**44 - 1  # ... and a quota or burst above this many microseconds


class CPUMax(str):
    """The text of ``cpu.max``: ``"<quota> <period>"`` (microseconds), quota ``max`` for none.

    ``CPUMax("max 100000")``, ``CPUMax("50000 100000")`` or :meth:`new`. ``"max"`` or a
    quota alone leave the kernel's period as it is.
    """

    __slots__ = ()

    def __new__(cls, value: str = "max") -> CPUMax:
        if not isinstance(value, str):
            raise invalid("cpu.max", value, "must be a str such as '50000 100000'")
        parts = value.split(" ")
        if len(parts) not in (1, 2):
            raise invalid("cpu.max", value, "expected '<quota|max> [<period>]'")
        if parts[0] != "max":
            if not (parts[0].isascii() and parts[0].isdigit()):
                raise invalid("cpu.max", value, "quota must be 'max' or microseconds")
            if not _MIN_PERIOD <= int(parts[0]) <= _MAX_QUOTA:
                raise invalid("cpu.max", value, f"quota out of range {_MIN_PERIOD}..{_MAX_QUOTA}")
        if len(parts) == 2:
            if not (parts[1].isascii() and parts[1].isdigit()):
                raise invalid("cpu.max", value, "period must be microseconds")
            if not _MIN_PERIOD <= int(parts[1]) <= _MAX_PERIOD:
                raise invalid(
                    "cpu.max", value, f"period out of range {_MIN_PERIOD}..{_MAX_PERIOD}"
                )
        return super().__new__(cls, value)

    @classmethod
    def new(cls, quota: int | None = None, period: int | None = None) -> CPUMax:
        """``"<quota> <period>"``; a quota of ``None`` or ``-1`` is ``max``.

        A period of ``None`` is the kernel's default, 100000 (the reference requires one).
        """
        if quota is None or (is_int(quota) and quota == -1):
            q = "max"
        else:
            q = str(int_in("cpu.max quota", quota, _MIN_PERIOD, _MAX_QUOTA))
        p = _DEFAULT_PERIOD if period is None else period
        p = int_in("cpu.max period", p, _MIN_PERIOD, _MAX_PERIOD)
        return cls(f"{q} {p}")

    @property
    def quota(self) -> int | None:
        """The quota in microseconds, ``None`` for ``max``."""
        q = self.split(" ")[0]
        return None if q == "max" else int(q)

    @property
    def period(self) -> int | None:
        """The period in microseconds, ``None`` when the text leaves it unchanged."""
        parts = self.split(" ")
        return int(parts[1]) if len(parts) == 2 else None


@dataclass(frozen=True, slots=True)
class CPU:
    """The cpu (and cpuset) settings of a group.

    ``weight`` -> ``cpu.weight`` (1..10000), ``max`` -> ``cpu.max`` (a :class:`CPUMax` or
    its text), ``cpus``/``mems`` -> ``cpuset.cpus``/``cpuset.mems`` (lists such as
    ``"0-3,5"``; ``""`` is not written, as in the reference), ``idle`` -> ``cpu.idle``,
    ``burst`` -> ``cpu.max.burst`` (microseconds).
    """

    weight: int | None = None
    max: CPUMax | str | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: bool | None = None
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.max == "":
            object.__setattr__(self, "max", None)  # the reference's "not set"
        elif self.max is not None and not isinstance(self.max, CPUMax):
            object.__setattr__(self, "max", CPUMax(self.max))
        self.values()

    def _items(self) -> Iterator[Value]:
        if self.weight is not None:
            yield Value("cpu.weight", str(int_in("cpu.weight", self.weight, 1, 10000)))
        if self.max is not None:
            yield Value("cpu.max", str(CPUMax(self.max)))
        if self.cpus is not None and self.cpus != "":
            yield Value("cpuset.cpus", cpu_list_text("cpuset.cpus", self.cpus))
        if self.mems is not None and self.mems != "":
            yield Value("cpuset.mems", cpu_list_text("cpuset.mems", self.mems))
        if self.idle is not None:
            if not isinstance(self.idle, bool) and self.idle not in (0, 1):
                raise invalid("cpu.idle", self.idle, "must be a bool")
            yield Value("cpu.idle", "1" if self.idle else "0")
        if self.burst is not None:
            yield Value("cpu.max.burst", str(int_in("cpu.max.burst", self.burst, 0, _MAX_QUOTA)))

    def values(self) -> list[Value]:
        """The files and texts to write: cpu.weight, cpu.max, cpuset.cpus, cpuset.mems,
        cpu.idle, cpu.max.burst (in this order, each only when set)."""
        return list(self._items())

    def controllers(self) -> list[str]:
        """The controllers these settings need: ``cpu`` and/or ``cpuset``."""
        out = []
        if any(v is not None for v in (self.weight, self.max, self.idle, self.burst)):
            out.append("cpu")
        if self.cpus or self.mems:
            out.append("cpuset")
        return out


# --- what is read ---------------------------------------------------------------------
# (Statistics: cpu.stat is a core file, present in every group whether or not the cpu
# controller is enabled; without it the kernel prints only the usage keys.)
from collections.abc import Mapping  # noqa: E402
from dataclasses import field  # noqa: E402

from ._parse import Files, parse_flat_fields  # noqa: E402
from .psi import PSIStats, read_pressure  # noqa: E402


@dataclass(slots=True)
class CPUStat:
    """``cpu.stat`` (microseconds and counts) and ``cpu.pressure`` (``psi``).

    ``usage_usec``/``user_usec``/``system_usec`` are there in every group;
    ``nr_periods``/``nr_throttled``/``throttled_usec`` (cpu controller enabled) and
    ``nr_bursts``/``burst_usec`` (Linux 5.14+) are ``None`` when the kernel does not print
    them. Other keys of ``cpu.stat`` (``nice_usec``, ``core_sched.force_idle_usec``, ...)
    are in ``other``.
    """

    usage_usec: int | None = None
    user_usec: int | None = None
    system_usec: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_usec: int | None = None
    nr_bursts: int | None = None
    burst_usec: int | None = None
    psi: PSIStats | None = None
    other: Mapping[str, int] = field(default_factory=dict)


#: The keys of ``cpu.stat`` with a field of their own, in the fields' order.
CPU_STAT_FIELDS = (
    "usage_usec",
    "user_usec",
    "system_usec",
    "nr_periods",
    "nr_throttled",
    "throttled_usec",
    "nr_bursts",
    "burst_usec",
)
_CPU_STAT_KEYS = frozenset(CPU_STAT_FIELDS)


def parse_cpu_stat(data: bytes, filename: str = "cpu.stat") -> CPUStat:
    """Parse ``cpu.stat`` (flat keyed: ``<key> <uint>`` lines)."""
    values, other = parse_flat_fields(data, filename, CPU_STAT_FIELDS, _CPU_STAT_KEYS)
    return CPUStat(*values, None, other)  # type: ignore[call-arg, arg-type]


def read_cpu(d: Files, *, stat: bool = True, pressure: bool = True) -> CPUStat | None:
    """Read ``cpu.stat`` (when ``stat``) and ``cpu.pressure`` (when ``pressure``).

    ``None`` when neither file was asked for or both are absent.
    """
    data = d.try_read("cpu.stat") if stat else None
    psi = read_pressure(d, "cpu") if pressure else None
    if data is None:
        return None if psi is None else CPUStat(psi=psi)
    values, other = parse_flat_fields(data, "cpu.stat", CPU_STAT_FIELDS, _CPU_STAT_KEYS)
    return CPUStat(*values, psi, other)  # type: ignore[call-arg, arg-type]
