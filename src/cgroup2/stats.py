"""Statistics of a group: :class:`Metrics`, read by :func:`collect` under a :class:`StatMask`.

Each controller module parses its own files (``controllers/<name>.py``, "what is read");
this module asks each for its part and puts the parts together. The conventions:

* ``None`` means *absent*: the part was not asked for in the mask, the controller is not
  enabled in the group, or the kernel has no such file or key (an older kernel, PSI off).
  Absence is never an error.
* A limit of ``max`` is :data:`U64_MAX` (``2**64 - 1``), what containerd reports
  (``math.MaxUint64``); in the Prometheus text it is ``+Inf``.
* Sizes are bytes, times are microseconds (as the kernel prints them), PSI averages are
  percentages.

Performance: every file is read at most once per :func:`collect`, whole, in binary, and
split once; only the files the mask needs are opened. When the mask asks for a
controller's files, ``cgroup.controllers`` is read first (one file) and the files of the
controllers that are off are not tried at all; within a controller, the first absent file
stands for the rest of its kind (the root has ``memory.stat`` but no ``memory.current``).
``cpu.stat`` and the pressure files are core files, read whether or not the cpu, memory
or io controller is enabled. A group removed while it is read raises
:class:`~cgroup2.errors.CgroupDeletedError`; a malformed number in a known field raises
:class:`~cgroup2.errors.InvalidFormatError` naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._statmask import StatMask
from .controllers._parse import U64_MAX, Files
from .controllers.cpu import CPUStat, read_cpu
from .controllers.cpuset import CpusetStat, read_cpuset
from .controllers.hugetlb import HugeTlbStat, read_hugetlb
from .controllers.io import IOStat, IOStatEntry, read_io
from .controllers.memory import MemoryEvents, MemoryStat, read_memory, read_memory_events
from .controllers.misc import MiscStat, read_misc
from .controllers.pids import PidsStat, read_pids
from .controllers.psi import PSIData, PSIStats
from .controllers.rdma import RdmaStat, RdmaStatEntry, read_rdma
from .errors import CgroupDeletedError, InvalidFormatError

__all__ = [
    "U64_MAX",
    "CPUStat",
    "CpusetStat",
    "HugeTlbStat",
    "IOStat",
    "IOStatEntry",
    "MemoryEvents",
    "MemoryStat",
    "Metrics",
    "MiscStat",
    "PSIData",
    "PSIStats",
    "PidsStat",
    "RdmaStat",
    "RdmaStatEntry",
    "StatMask",
    "collect",
    "prometheus_text",
]




def _plain(obj: object) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if v is None:
                continue
            if f.name == "other":  # unknown kernel keys sit beside the named ones
                for k, x in v.items():
                    out.setdefault(k, x)
            else:
                out[f.name] = _plain(v)
        return out
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    return obj


@dataclass(slots=True)
class Metrics:
    """The statistics of one group (what ``Manager.stat()`` returns).

    Field names follow containerd's ``io.containerd.cgroups.v2`` metrics: ``pids``,
    ``cpu`` (with ``cpu.psi``), ``memory`` (with ``memory.psi``), ``memory_events``,
    ``rdma``, ``io`` (with ``io.psi``), ``hugetlb`` (one entry per page size); and beyond
    them ``misc`` (one entry per misc resource) and ``cpuset``. A part is ``None`` when
    it was not asked for or is absent (see the module's conventions).
    """

    pids: PidsStat | None = None
    cpu: CPUStat | None = None
    memory: MemoryStat | None = None
    memory_events: MemoryEvents | None = None
    rdma: RdmaStat | None = None
    io: IOStat | None = None
    hugetlb: tuple[HugeTlbStat, ...] | None = None
    misc: tuple[MiscStat, ...] | None = None
    cpuset: CpusetStat | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, with containerd's snake_case field names.

        Absent (``None``) fields are left out; the ``other`` keys of a part (kernel keys
        without a named field) appear beside its named fields; ``max`` is ``U64_MAX``.
        """
        out: dict[str, Any] = _plain(self)
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)


_M_PIDS = StatMask.PIDS.value
_M_CPU = StatMask.CPU.value
_M_MEM_STAT = StatMask.MEMORY_STAT.value
_M_MEM_USAGE = StatMask.MEMORY_USAGE.value
_M_MEM_EVENTS = StatMask.MEMORY_EVENTS.value
_M_IO = StatMask.IO.value
_M_RDMA = StatMask.RDMA.value
_M_HUGETLB = StatMask.HUGETLB.value
_M_MISC = StatMask.MISC.value
_M_CPUSET = StatMask.CPUSET.value
_M_CPU_P = StatMask.CPU_PRESSURE.value
_M_MEM_P = StatMask.MEMORY_PRESSURE.value
_M_IO_P = StatMask.IO_PRESSURE.value
_M_CPU_ANY = _M_CPU | _M_CPU_P
_M_MEM_ANY = _M_MEM_STAT | _M_MEM_USAGE | _M_MEM_P
_M_IO_ANY = _M_IO | _M_IO_P
_M_CONTROLLER_FILES = (
    _M_PIDS | _M_MEM_STAT | _M_MEM_USAGE | _M_MEM_EVENTS | _M_IO | _M_RDMA | _M_HUGETLB
    | _M_MISC | _M_CPUSET
)


class GroupFiles(Files, Protocol):
    """What :func:`collect` reads a group through: an open group directory
    (:class:`cgroup2._fs.Dir`: open, read, close each file: ``stat()``) or a sampler's
    group (:mod:`cgroup2.sampler`: one ``pread`` on a descriptor kept open)."""

    path: str
    absent: int  # files found missing so far: a hint that the group is being removed

    def read(self, name: str) -> bytes: ...
    def exists(self, name: str) -> bool: ...
    def file_path(self, name: str) -> str: ...
    def gone(self, delays: tuple[float, ...] = ...) -> bool: ...


def collect(d: GroupFiles, mask: StatMask = StatMask.ALL) -> Metrics:
    """Read the statistics ``mask`` asks for from the open group directory ``d``.

    Raises :class:`~cgroup2.errors.CgroupDeletedError` when the group is removed while it
    is read, :class:`~cgroup2.errors.InvalidFormatError` (naming the file and line) when a
    known field holds a malformed number, :class:`~cgroup2.errors.KernelError` for any
    other failed read. Absent controllers and files are ``None``, never errors.
    """
    m = mask.value
    try:
        # which controllers the group has: one read instead of a failed open for each
        # controller that is off (cpu.stat and the pressure files are core files)
        on = d.read("cgroup.controllers").split() if m & _M_CONTROLLER_FILES else ()
        absent = d.absent
        metrics = Metrics(
            pids=read_pids(d) if m & _M_PIDS and b"pids" in on else None,
            cpu=read_cpu(d, stat=bool(m & _M_CPU), pressure=bool(m & _M_CPU_P))
            if m & _M_CPU_ANY
            else None,
            memory=read_memory(
                d,
                stat=bool(m & _M_MEM_STAT) and b"memory" in on,
                usage=bool(m & _M_MEM_USAGE) and b"memory" in on,
                pressure=bool(m & _M_MEM_P),
            )
            if m & _M_MEM_ANY
            else None,
            memory_events=read_memory_events(d)
            if m & _M_MEM_EVENTS and b"memory" in on
            else None,
            rdma=read_rdma(d) if m & _M_RDMA and b"rdma" in on else None,
            io=read_io(d, stat=bool(m & _M_IO) and b"io" in on, pressure=bool(m & _M_IO_P))
            if m & _M_IO_ANY
            else None,
            hugetlb=read_hugetlb(d) if m & _M_HUGETLB and b"hugetlb" in on else None,
            misc=read_misc(d) if m & _M_MISC and b"misc" in on else None,
            cpuset=read_cpuset(d) if m & _M_CPUSET and b"cpuset" in on else None,
        )
    except InvalidFormatError as e:
        # the parsers know the file's name; name the group's file in full
        name = e.path or ""
        path = d.file_path(name) if name else d.path
        raise InvalidFormatError(
            str(e).replace(f" {name} line ", f" {path} line ", 1), path=path
        ) from None
    if d.absent != absent and _being_removed(d, on):
        raise CgroupDeletedError(
            f"cgroups: cgroup deleted: {d.path} was removed (stat)", path=d.path
        )
    return metrics


# a file each controller has in every non-root group, whatever the kernel's config
_CONTROLLER_PROBE = {
    b"pids": "pids.max",
    b"memory": "memory.max",
    b"io": "io.stat",
    b"rdma": "rdma.max",
    b"misc": "misc.max",
    b"cpuset": "cpuset.cpus",
}


def _being_removed(d: GroupFiles, on: Iterable[bytes]) -> bool:
    """Whether a file found missing during a stat means the group is being removed.

    rmdir of a group removes each controller's files, then the core files, then the
    directory: a stat that races it finds files missing in a directory that is still
    there. A missing file is otherwise normal (an older kernel, a controller that is
    off), so this runs only after one was missing, and looks at files that any live
    non-root group has (the root group, a mount point, has no ``cgroup.type``).
    """
    if d.exists("cgroup.type"):
        if all(d.exists(_CONTROLLER_PROBE[c]) for c in on if c in _CONTROLLER_PROBE):
            return False
    elif os.path.ismount(d.path):
        return False
    # the rmdir is under way: the directory goes within the same system call
    return d.gone((0.0, 0.001, 0.004, 0.015, 0.03, 0.05))


# --- Prometheus text exposition ---------------------------------------------------------

# memory.stat keys that are sizes in bytes (Documentation/admin-guide/cgroup-v2.rst);
# the others are event counts (prefixes below) or, if unknown, exported untyped.
_MEMORY_BYTES = frozenset(
    (
        "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
        "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
        "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
        "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
        "slab_unreclaimable", "slab", "hugetlb",
    )
)
_MEMORY_EVENT_PREFIXES = ("pg", "workingset_", "thp_", "zswp", "pswp", "numa_", "swpin", "swpout")

# name -> (type, help); the order here is the order of the output
_FAMILIES: dict[str, tuple[str, str]] = {
    "cgroup_pids_current": ("gauge", "Tasks in the group and below (pids.current)."),
    "cgroup_pids_limit": ("gauge", "Task limit (pids.max); +Inf for max."),
    "cgroup_cpu_usage_seconds_total": ("counter", "CPU time used (cpu.stat usage_usec)."),
    "cgroup_cpu_user_seconds_total": ("counter", "CPU time in user mode (cpu.stat user_usec)."),
    "cgroup_cpu_system_seconds_total": (
        "counter",
        "CPU time in kernel mode (cpu.stat system_usec).",
    ),
    "cgroup_cpu_periods_total": ("counter", "Enforcement periods elapsed (cpu.stat nr_periods)."),
    "cgroup_cpu_throttled_periods_total": (
        "counter",
        "Periods in which the group was throttled (cpu.stat nr_throttled).",
    ),
    "cgroup_cpu_throttled_seconds_total": (
        "counter",
        "Time throttled (cpu.stat throttled_usec).",
    ),
    "cgroup_cpu_bursts_total": ("counter", "Periods with a burst (cpu.stat nr_bursts)."),
    "cgroup_cpu_burst_seconds_total": ("counter", "Time spent bursting (cpu.stat burst_usec)."),
    "cgroup_memory_usage_bytes": ("gauge", "Memory in use (memory.current)."),
    "cgroup_memory_limit_bytes": ("gauge", "Memory limit (memory.max); +Inf for max."),
    "cgroup_memory_peak_bytes": ("gauge", "Peak memory in use (memory.peak)."),
    "cgroup_memory_swap_usage_bytes": ("gauge", "Swap in use (memory.swap.current)."),
    "cgroup_memory_swap_limit_bytes": ("gauge", "Swap limit (memory.swap.max); +Inf for max."),
    "cgroup_memory_swap_peak_bytes": ("gauge", "Peak swap in use (memory.swap.peak)."),
    "cgroup_memory_stat_bytes": ("gauge", "A size from memory.stat, by key."),
    "cgroup_memory_stat_events_total": ("counter", "An event count from memory.stat, by key."),
    "cgroup_memory_stat": ("untyped", "Another memory.stat key this library does not classify."),
    "cgroup_memory_events_total": ("counter", "Memory events (memory.events), by event."),
    "cgroup_io_bytes_total": ("counter", "Bytes transferred (io.stat rbytes/wbytes/dbytes)."),
    "cgroup_io_ops_total": ("counter", "Operations (io.stat rios/wios/dios)."),
    "cgroup_rdma_current": ("gauge", "RDMA resources in use (rdma.current)."),
    "cgroup_rdma_limit": ("gauge", "RDMA resource limit (rdma.max); +Inf for max."),
    "cgroup_hugetlb_usage_bytes": ("gauge", "Huge pages in use (hugetlb.<size>.current)."),
    "cgroup_hugetlb_limit_bytes": ("gauge", "Huge page limit (hugetlb.<size>.max); +Inf for max."),
    "cgroup_hugetlb_failcnt_total": (
        "counter",
        "Allocations refused by the limit (hugetlb.<size>.events max).",
    ),
    "cgroup_hugetlb_reserved_bytes": ("gauge", "Huge pages reserved (hugetlb.<size>.rsvd.current)"),
    "cgroup_hugetlb_reserved_limit_bytes": (
        "gauge",
        "Huge page reservation limit (hugetlb.<size>.rsvd.max); +Inf for max.",
    ),
    "cgroup_misc_current": ("gauge", "Misc resource in use (misc.current)."),
    "cgroup_misc_limit": ("gauge", "Misc resource limit (misc.max); +Inf for max."),
    "cgroup_misc_failcnt_total": ("counter", "Charges refused by the limit (misc.events)."),
    "cgroup_cpuset_cpus_effective": ("gauge", "CPUs the group may use (cpuset.cpus.effective)."),
    "cgroup_cpuset_mems_effective": (
        "gauge",
        "Memory nodes the group may use (cpuset.mems.effective).",
    ),
    "cgroup_pressure_stalled_seconds_total": (
        "counter",
        "Time with tasks stalled on a resource (<resource>.pressure total).",
    ),
    "cgroup_pressure_ratio": (
        "gauge",
        "Share of time stalled, averaged over a window (<resource>.pressure avg10/60/300).",
    ),
}


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(v: float) -> str:
    if isinstance(v, float):
        return "+Inf" if v == math.inf else repr(v)
    return str(v)


class _Out:
    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {name: [] for name in _FAMILIES}

    def add(self, name: str, labels: str, value: float | None, *, limit: bool = False) -> None:
        if value is None:
            return
        if limit and value == U64_MAX:
            value = math.inf
        self.lines[name].append(f"{name}{{{labels}}} {_num(value)}")

    def seconds(self, name: str, labels: str, usec: int | None) -> None:
        if usec is not None:
            self.add(name, labels, usec / 1e6)


def _psi(out: _Out, g: str, resource: str, psi: PSIStats | None) -> None:
    if psi is None:
        return
    for kind, data in (("some", psi.some), ("full", psi.full)):
        if data is None:
            continue
        labels = f'{g},resource="{resource}",kind="{kind}"'
        out.seconds("cgroup_pressure_stalled_seconds_total", labels, data.total)
        for window, avg in (("10s", data.avg10), ("60s", data.avg60), ("300s", data.avg300)):
            out.add("cgroup_pressure_ratio", f'{labels},window="{window}"', round(avg / 100, 6))


def _group(out: _Out, group: str, m: Metrics) -> None:
    g = f'group="{_escape(group)}"'
    if (p := m.pids) is not None:
        out.add("cgroup_pids_current", g, p.current)
        out.add("cgroup_pids_limit", g, p.limit, limit=True)
    if (c := m.cpu) is not None:
        out.seconds("cgroup_cpu_usage_seconds_total", g, c.usage_usec)
        out.seconds("cgroup_cpu_user_seconds_total", g, c.user_usec)
        out.seconds("cgroup_cpu_system_seconds_total", g, c.system_usec)
        out.add("cgroup_cpu_periods_total", g, c.nr_periods)
        out.add("cgroup_cpu_throttled_periods_total", g, c.nr_throttled)
        out.seconds("cgroup_cpu_throttled_seconds_total", g, c.throttled_usec)
        out.add("cgroup_cpu_bursts_total", g, c.nr_bursts)
        out.seconds("cgroup_cpu_burst_seconds_total", g, c.burst_usec)
        _psi(out, g, "cpu", c.psi)
    if (mem := m.memory) is not None:
        out.add("cgroup_memory_usage_bytes", g, mem.usage)
        out.add("cgroup_memory_limit_bytes", g, mem.usage_limit, limit=True)
        out.add("cgroup_memory_peak_bytes", g, mem.max_usage)
        out.add("cgroup_memory_swap_usage_bytes", g, mem.swap_usage)
        out.add("cgroup_memory_swap_limit_bytes", g, mem.swap_limit, limit=True)
        out.add("cgroup_memory_swap_peak_bytes", g, mem.swap_max_usage)
        keys: list[tuple[str, int | None]] = [
            (f.name, getattr(mem, f.name)) for f in dataclasses.fields(MemoryStat)[:31]
        ]
        keys += list(mem.other.items())
        for key, v in keys:
            if key in _MEMORY_BYTES:
                name = "cgroup_memory_stat_bytes"
            elif key.startswith(_MEMORY_EVENT_PREFIXES):
                name = "cgroup_memory_stat_events_total"
            else:
                name = "cgroup_memory_stat"
            out.add(name, f'{g},key="{_escape(key)}"', v)
        _psi(out, g, "memory", mem.psi)
    if (ev := m.memory_events) is not None:
        events = [(f.name, getattr(ev, f.name)) for f in dataclasses.fields(MemoryEvents)[:6]]
        for key, v in events + list(ev.other.items()):
            out.add("cgroup_memory_events_total", f'{g},event="{_escape(key)}"', v)
    if (io := m.io) is not None:
        for e in io.usage or ():
            dev = f'{g},device="{e.major}:{e.minor}"'
            out.add("cgroup_io_bytes_total", f'{dev},op="read"', e.rbytes)
            out.add("cgroup_io_bytes_total", f'{dev},op="write"', e.wbytes)
            out.add("cgroup_io_bytes_total", f'{dev},op="discard"', e.dbytes)
            out.add("cgroup_io_ops_total", f'{dev},op="read"', e.rios)
            out.add("cgroup_io_ops_total", f'{dev},op="write"', e.wios)
            out.add("cgroup_io_ops_total", f'{dev},op="discard"', e.dios)
        _psi(out, g, "io", io.psi)
    if (r := m.rdma) is not None:
        for name, entries in (("cgroup_rdma_current", r.current), ("cgroup_rdma_limit", r.limit)):
            for re in entries or ():
                dev = f'{g},device="{_escape(re.device)}"'
                out.add(name, f'{dev},resource="hca_handle"', re.hca_handles, limit=True)
                out.add(name, f'{dev},resource="hca_object"', re.hca_objects, limit=True)
    for h in m.hugetlb or ():
        ps = f'{g},pagesize="{_escape(h.pagesize)}"'
        out.add("cgroup_hugetlb_usage_bytes", ps, h.current)
        out.add("cgroup_hugetlb_limit_bytes", ps, h.max, limit=True)
        out.add("cgroup_hugetlb_failcnt_total", ps, h.failcnt)
        out.add("cgroup_hugetlb_reserved_bytes", ps, h.rsvd_current)
        out.add("cgroup_hugetlb_reserved_limit_bytes", ps, h.rsvd_max, limit=True)
    for x in m.misc or ():
        res = f'{g},resource="{_escape(x.name)}"'
        out.add("cgroup_misc_current", res, x.current)
        out.add("cgroup_misc_limit", res, x.max, limit=True)
        out.add("cgroup_misc_failcnt_total", res, x.failcnt)
    if (cs := m.cpuset) is not None:
        out.add("cgroup_cpuset_cpus_effective", g, len(cs.cpus_effective))
        out.add("cgroup_cpuset_mems_effective", g, len(cs.mems_effective))


def prometheus_text(
    metrics: Metrics | Mapping[str, Metrics] | Iterable[tuple[str, Metrics]],
    *,
    group: str = "",
) -> str:
    """The Prometheus text exposition (format 0.0.4) of one or many groups.

    ``metrics`` is one :class:`Metrics` (labelled ``group=<group>``) or a mapping or
    iterable of ``(group, Metrics)``. Every metric is named ``cgroup_...``, carries a
    ``group`` label, has HELP and TYPE lines once; counters end in ``_total``; times are
    seconds, sizes bytes, PSI averages ratios (0..1); a ``max`` limit is ``+Inf``.
    Absent values are left out, and a family without samples is not printed.
    """
    # one writer for this and `cgroup2 export` (also its working-set gauge): cgroup2.exporter
    from .exporter import exposition

    if isinstance(metrics, Metrics):
        return exposition([(group, metrics)])
    return exposition(metrics)
