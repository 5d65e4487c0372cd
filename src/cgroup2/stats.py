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


# --- Prometheus text exposition (the writer is cgroup2._exposition's) ------------------


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
    # one writer for this and `cgroup2 export` (also its working-set gauge), below both
    from ._exposition import exposition

    if isinstance(metrics, Metrics):
        return exposition([(group, metrics)])
    return exposition(metrics)
