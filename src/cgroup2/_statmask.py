"""StatMask, defined apart from :mod:`cgroup2.stats` so that :class:`~cgroup2.Manager`
(whose ``stat()`` takes it, with ``StatMask.ALL`` as the default) does not import the
statistics types and their parsers until statistics are read. It is
``cgroup2.stats.StatMask`` (and ``cgroup2.StatMask``): its module is named so.
"""

from __future__ import annotations

import enum

__all__ = ["StatMask"]


class StatMask(enum.Flag):
    """Which parts of :class:`Metrics` to read; each names the files it reads.

    ``PIDS``: pids.current, pids.max. ``CPU``: cpu.stat. ``MEMORY_STAT``: memory.stat.
    ``MEMORY_USAGE``: memory.current, memory.max, memory.peak, memory.swap.current,
    memory.swap.max, memory.swap.peak. ``MEMORY_EVENTS``: memory.events. ``IO``: io.stat.
    ``RDMA``: rdma.current, rdma.max. ``HUGETLB``: hugetlb.<size>.current, .max, .events,
    .rsvd.current, .rsvd.max for every page size. ``MISC``: misc.current, misc.max,
    misc.events. ``CPUSET``: cpuset.cpus.effective, cpuset.mems.effective.
    ``CPU_PRESSURE``/``MEMORY_PRESSURE``/``IO_PRESSURE``: cpu/memory/io.pressure (they
    land in ``Metrics.cpu.psi``, ``.memory.psi``, ``.io.psi``). ``MEMORY`` and ``PSI`` are
    unions; ``ALL`` is everything.
    """

    __module__ = "cgroup2.stats"

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
    ALL = PIDS | CPU | MEMORY | MEMORY_EVENTS | IO | RDMA | HUGETLB | MISC | CPUSET | PSI
