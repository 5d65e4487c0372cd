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
from collections.abc import Mapping  # noqa: E402
from dataclasses import field as _field  # noqa: E402

from ._parse import Files, parse_flat_fields, parse_limit, parse_uint  # noqa: E402
from .psi import PSIStats, read_pressure  # noqa: E402


@dataclass(slots=True)
class MemoryStat:
    """The memory statistics of a group, in bytes (sizes) and counts (events).

    The 31 named ``memory.stat`` keys of the reference are fields; every other key the
    kernel prints (``kernel``, ``percpu``, ``workingset_refault_anon``, ``pgscan_kswapd``,
    ...) is in ``other``. A key this kernel does not print is ``None`` (for example
    ``workingset_refault``, split into ``_anon``/``_file`` since Linux 5.9).

    From the single-value files (names as in containerd's metrics): ``usage``
    (``memory.current``), ``usage_limit`` (``memory.max``), ``swap_usage``
    (``memory.swap.current``), ``swap_limit`` (``memory.swap.max``), ``max_usage``
    (``memory.peak``, Linux 5.19+), ``swap_max_usage`` (``memory.swap.peak``, Linux 6.5+).
    A limit of ``max`` is ``U64_MAX``. ``psi`` is ``memory.pressure``, a core file that is
    there even when the memory controller is not (then every other field is ``None``).
    """

    anon: int | None = None
    file: int | None = None
    kernel_stack: int | None = None
    slab: int | None = None
    sock: int | None = None
    shmem: int | None = None
    file_mapped: int | None = None
    file_dirty: int | None = None
    file_writeback: int | None = None
    anon_thp: int | None = None
    inactive_anon: int | None = None
    active_anon: int | None = None
    inactive_file: int | None = None
    active_file: int | None = None
    unevictable: int | None = None
    slab_reclaimable: int | None = None
    slab_unreclaimable: int | None = None
    pgfault: int | None = None
    pgmajfault: int | None = None
    workingset_refault: int | None = None
    workingset_activate: int | None = None
    workingset_nodereclaim: int | None = None
    pgrefill: int | None = None
    pgscan: int | None = None
    pgsteal: int | None = None
    pgactivate: int | None = None
    pgdeactivate: int | None = None
    pglazyfree: int | None = None
    pglazyfreed: int | None = None
    thp_fault_alloc: int | None = None
    thp_collapse_alloc: int | None = None
    usage: int | None = None
    usage_limit: int | None = None
    swap_usage: int | None = None
    swap_limit: int | None = None
    max_usage: int | None = None
    swap_max_usage: int | None = None
    psi: PSIStats | None = None
    other: Mapping[str, int] = _field(default_factory=dict)

    @property
    def working_set(self) -> int | None:
        """``usage - inactive_file`` (at least 0): the working set as kubelet evicts on
        and cAdvisor exports it (``container_memory_working_set_bytes``); ``None`` without
        ``memory.current`` or ``inactive_file``."""
        if self.usage is None or self.inactive_file is None:
            return None
        return max(0, self.usage - self.inactive_file)


#: The reference's 31 ``memory.stat`` keys, in the kernel's order.
MEMORY_STAT_KEYS = (
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
)
_MEMORY_STAT = frozenset(MEMORY_STAT_KEYS)
_NO_STAT: tuple[int | None, ...] = (None,) * len(MEMORY_STAT_KEYS)


_NO_USAGE = (None,) * 6  # usage .. swap_max_usage


def parse_memory_stat(data: bytes, filename: str = "memory.stat") -> MemoryStat:
    """Parse ``memory.stat`` (flat keyed) alone."""
    values, other = parse_flat_fields(data, filename, MEMORY_STAT_KEYS, _MEMORY_STAT)
    return MemoryStat(*values, *_NO_USAGE, None, other)  # type: ignore[call-arg, arg-type]


def read_memory(
    d: Files, *, stat: bool = True, usage: bool = True, pressure: bool = True
) -> MemoryStat | None:
    """Read ``memory.stat`` (``stat``); ``memory.current``, ``memory.max``,
    ``memory.swap.current``, ``memory.swap.max``, ``memory.peak``, ``memory.swap.peak``
    (``usage``); ``memory.pressure`` (``pressure``).

    The first file of a kind that is absent stands for the rest: without ``memory.stat``
    (controller off) no other memory file is tried, without ``memory.current`` (the root)
    no limit, without ``memory.swap.current`` (no swap accounting) no swap file.
    """
    values: tuple[int | None, ...] = _NO_STAT
    other: dict[str, int] = {}
    present = True
    if stat:
        data = d.try_read("memory.stat")
        if data is None:
            present = False
        else:
            values, other = parse_flat_fields(data, "memory.stat", MEMORY_STAT_KEYS, _MEMORY_STAT)
    use = limit = peak = swap = swap_limit = swap_peak = None
    if usage and present:
        data = d.try_read("memory.current")
        if data is None:
            present = stat
        else:
            use = parse_uint(data, "memory.current")
            if (data := d.try_read("memory.max")) is not None:
                limit = parse_limit(data, "memory.max")
            if (data := d.try_read("memory.peak")) is not None:
                peak = parse_uint(data, "memory.peak")
            if (data := d.try_read("memory.swap.current")) is not None:
                swap = parse_uint(data, "memory.swap.current")
                if (data := d.try_read("memory.swap.max")) is not None:
                    swap_limit = parse_limit(data, "memory.swap.max")
                if (data := d.try_read("memory.swap.peak")) is not None:
                    swap_peak = parse_uint(data, "memory.swap.peak")
    psi = read_pressure(d, "memory") if pressure else None
    if not (present and (stat or usage)) and psi is None:
        return None
    # by position (the fields' order): a third of the cost of 37 keywords
    return MemoryStat(*values, use, limit, swap, swap_limit, peak, swap_peak, psi, other)  # type: ignore[call-arg, arg-type]


@dataclass(slots=True)
class MemoryEvents:
    """``memory.events``: how many times each memory event happened in the group (and
    below it). ``oom_group_kill`` is ``None`` before Linux 5.17; other keys
    (``sock_throttled``, ...) are in ``other``."""

    low: int | None = None
    high: int | None = None
    max: int | None = None
    oom: int | None = None
    oom_kill: int | None = None
    oom_group_kill: int | None = None
    other: Mapping[str, int] = _field(default_factory=dict)


MEMORY_EVENTS_FIELDS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
_MEMORY_EVENTS = frozenset(MEMORY_EVENTS_FIELDS)


def parse_memory_events(data: bytes, filename: str = "memory.events") -> MemoryEvents:
    """Parse ``memory.events`` (or ``memory.events.local``; flat keyed)."""
    values, other = parse_flat_fields(data, filename, MEMORY_EVENTS_FIELDS, _MEMORY_EVENTS)
    return MemoryEvents(*values, other)  # type: ignore[call-arg, arg-type]


def read_memory_events(d: Files) -> MemoryEvents | None:
    """Read ``memory.events``; ``None`` when the memory controller is not enabled."""
    data = d.try_read("memory.events")
    return None if data is None else parse_memory_events(data)
