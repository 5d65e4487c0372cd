"""Statistics of a group: :class:`Metrics`, read by :func:`collect` under a :class:`StatMask`.

(Work in progress: the interface -- ``collect(d, mask) -> Metrics``, ``StatMask``,
``Metrics`` -- is final; the fields are being filled in.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._fs import Dir

__all__ = ["Metrics", "StatMask", "collect"]


class StatMask(enum.Flag):
    """Which parts of :class:`Metrics` to read (each part names the files it reads)."""

    PIDS = enum.auto()
    CPU = enum.auto()
    MEMORY_STAT = enum.auto()
    MEMORY_USAGE = enum.auto()
    MEMORY_EVENTS = enum.auto()
    IO = enum.auto()
    RDMA = enum.auto()
    HUGETLB = enum.auto()
    MISC = enum.auto()
    CPUSET = enum.auto()
    CPU_PRESSURE = enum.auto()
    MEMORY_PRESSURE = enum.auto()
    IO_PRESSURE = enum.auto()
    MEMORY = MEMORY_STAT | MEMORY_USAGE
    PSI = CPU_PRESSURE | MEMORY_PRESSURE | IO_PRESSURE
    ALL = (
        PIDS | CPU | MEMORY | MEMORY_EVENTS | IO | RDMA | HUGETLB | MISC | CPUSET | PSI
    )


@dataclass(frozen=True, slots=True)
class Metrics:
    """The statistics of one group (placeholder while the fields are filled in)."""


def collect(d: Dir, mask: StatMask = StatMask.ALL) -> Metrics:
    """Read the statistics ``mask`` asks for from the open group directory ``d``."""
    return Metrics()
