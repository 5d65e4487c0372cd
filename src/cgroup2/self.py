"""What the calling process may use: its own group, the limits that bind it, usable CPUs.

:func:`current` finds the caller's group from ``/proc/self/cgroup`` and the cgroup2 mount
(under a cgroup namespace both are relative to the namespace's root, so the group is
found there too). :func:`effective_limits` walks from a group up to the top of the tree
this process can see, reading at each level ``memory.max``, ``memory.high``,
``memory.swap.max``, ``cpu.max``, ``cpuset.cpus.effective``, ``pids.max``,
``hugetlb.<size>.max`` and ``io.max``, and keeps the tightest value of each with the group
that sets it. Where the namespace (or a bind mount of a sub-tree) hides the ancestors,
:attr:`Limits.ancestors_hidden` says so: a limit set above the visible top cannot be
read. A controller that is not on the cgroup2 hierarchy (on a hybrid host: bound to a
cgroup v1 hierarchy) is named in ``Limits.unseen``; its limits are not guessed from v1.

:func:`cpu_count` is ``min(affinity, cpuset, ceil(quota))``, at least 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._fs import Dir, read_abs
from .controllers._values import NO_LIMIT_MIN
from .errors import CgroupError
from .manager import Manager
from .paths import _mounts, default_mountpoint, parse_proc_cgroup

__all__ = [
    "Limit",
    "Limits",
    "cpu_count",
    "current",
    "effective_limits",
    "limits",
    "memory_available",
]

#: The controllers whose limits :func:`effective_limits` reads.
CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "hugetlb", "io")

_FILES = (
    "cgroup.controllers",
    "cgroup.type",
    "memory.max",
    "memory.high",
    "memory.swap.max",
    "memory.current",
    "memory.swap.current",
    "cpu.max",
    "cpuset.cpus.effective",
    "pids.max",
    "pids.current",
    "io.max",
)


@dataclass(frozen=True, slots=True)
class Limit:
    """The tightest value of one limit along the path, and the group that sets it.

    ``value`` is bytes, a count, or (for ``cpu.max``) CPUs as a float; ``current`` is the
    usage of ``group`` that counts against it (``memory.current``, ``pids.current``,
    ``hugetlb.<size>.current``), ``None`` where there is no such file.
    """

    value: float
    group: str
    current: int | None = None

    @property
    def headroom(self) -> int | None:
        """``value - current`` (at least 0), or ``None`` without a ``current``."""
        if self.current is None:
            return None
        return max(0, int(self.value) - self.current)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that bind a group: the tightest along its visible ancestors.

    A field is ``None`` where no visible level sets a limit (every file reads ``max``, or
    the controller is not on the cgroup2 hierarchy: see ``unseen``).
    """

    #: The group the limits are of, and the highest group the walk could read.
    group: str
    top: str
    #: True when the top of the walk is not the hierarchy's root: a cgroup namespace or a
    #: bind mount of a sub-tree hides the groups above, and any limit they set.
    ancestors_hidden: bool
    memory_max: Limit | None = None
    memory_high: Limit | None = None
    memory_swap_max: Limit | None = None
    #: The smallest ``cpu.max`` quota/period along the path, in CPUs.
    cpu_quota: Limit | None = None
    #: ``cpuset.cpus.effective`` of the group (``None`` without the cpuset controller),
    #: and the group where the set last narrowed.
    cpuset: frozenset[int] | None = None
    cpuset_group: str | None = None
    #: The CPUs this process may run on (``sched_getaffinity``).
    affinity: frozenset[int] = frozenset()
    pids_max: Limit | None = None
    #: ``hugetlb.<size>.max`` by size (``"2MB"``), tightest of each.
    hugetlb: Mapping[str, Limit] = field(default_factory=dict)
    #: ``io.max`` by ``"<major>:<minor> <key>"`` (``rbps``, ``wbps``, ``riops``, ``wiops``).
    io: Mapping[str, Limit] = field(default_factory=dict)
    #: Controllers whose limits this walk could not read, with the reason.
    unseen: Mapping[str, str] = field(default_factory=dict)
    #: Bytes the group may still take before the tightest ``memory.max`` or
    #: ``memory.high`` of the path: the least of ``limit - current`` over the levels that
    #: set one (each level's own ``memory.current``); ``None`` without a limit.
    memory_available: int | None = None

    @property
    def cpu_count(self) -> int:
        """``min(len(affinity), len(cpuset), ceil(quota))``, at least 1."""
        n = len(self.affinity) or (os.cpu_count() or 1)
        if self.cpuset:
            n = min(n, len(self.cpuset))
        if self.cpu_quota is not None:
            n = min(n, math.ceil(self.cpu_quota.value))
        return max(1, n)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (sets as sorted lists)."""

        def lim(x: Limit | None) -> dict[str, Any] | None:
            if x is None:
                return None
            return {"value": x.value, "group": x.group, "current": x.current}

        return {
            "group": self.group,
            "top": self.top,
            "ancestors_hidden": self.ancestors_hidden,
            "memory_max": lim(self.memory_max),
            "memory_high": lim(self.memory_high),
            "memory_swap_max": lim(self.memory_swap_max),
            "memory_available": self.memory_available,
            "cpu_quota": lim(self.cpu_quota),
            "cpuset": sorted(self.cpuset) if self.cpuset is not None else None,
            "cpuset_group": self.cpuset_group,
            "affinity": sorted(self.affinity),
            "cpu_count": self.cpu_count,
            "pids_max": lim(self.pids_max),
            "hugetlb": {k: lim(v) for k, v in sorted(self.hugetlb.items())},
            "io": {k: lim(v) for k, v in sorted(self.io.items())},
            "unseen": dict(self.unseen),
        }


# --- parsing one level's files -------------------------------------------------------


def _int(data: bytes | None) -> int | None:
    if data is None:
        return None
    s = data.strip()
    if s == b"max" or not s.isdigit():
        return None
    return int(s)


def _cpu_max(data: bytes | None) -> float | None:
    """``cpu.max`` (``"<quota|max> <period>"``) as CPUs, ``None`` for ``max``."""
    if data is None:
        return None
    parts = data.split()
    if not parts or parts[0] == b"max" or not parts[0].isdigit():
        return None
    period = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 100_000
    if period <= 0:
        return None
    return int(parts[0]) / period


def parse_cpu_list(text: str) -> frozenset[int]:
    """A kernel CPU list (``"0-3,8,10-11"``) as a set."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(lo))
    return frozenset(cpus)


def _io_max(data: bytes | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (data or b"").decode("ascii", "replace").splitlines():
        dev, *pairs = line.split()
        for pair in pairs:
            key, _, val = pair.partition("=")
            if val.isdigit():
                out[f"{dev} {key}"] = int(val)
    return out


def _tighter(
    old: Limit | None, value: float | None, group: str, current: int | None
) -> Limit | None:
    # at equal values the upper group is kept: it is the one that imposes the limit
    if value is None or (old is not None and old.value <= value):
        return old
    return Limit(value, group, current)


Level = tuple[str, Mapping[str, bytes]]


def collect(
    levels: Sequence[Level],
    *,
    affinity: frozenset[int],
    ancestors_hidden: bool,
    v1: Mapping[str, str] | None = None,
) -> Limits:
    """The :class:`Limits` of the last of ``levels``, from the files of each.

    ``levels`` runs from the top visible group down to the group itself: (group path,
    {file name: content}); a file missing from a level's mapping is absent there. The
    walk's rules in one place, so that they can be checked on made-up trees.
    """
    if not levels:
        raise CgroupError("cgroups: no group to read limits of")
    mem_max: Limit | None = None
    mem_high: Limit | None = None
    swap_max: Limit | None = None
    quota: Limit | None = None
    pids: Limit | None = None
    hugetlb: dict[str, Limit] = {}
    io: dict[str, Limit] = {}
    available: int | None = None
    cpuset: frozenset[int] | None = None
    cpuset_group: str | None = None
    for group, files in levels:
        cur = _int(files.get("memory.current"))
        old: Limit | None
        for name, old in (("memory.max", mem_max), ("memory.high", mem_high)):
            value = _int(files.get(name))
            if value is not None and cur is not None:
                room = max(0, value - cur)
                available = room if available is None else min(available, room)
            new = _tighter(old, value, group, cur)
            if name == "memory.max":
                mem_max = new
            else:
                mem_high = new
        swap_max = _tighter(
            swap_max, _int(files.get("memory.swap.max")), group,
            _int(files.get("memory.swap.current")),
        )
        quota = _tighter(quota, _cpu_max(files.get("cpu.max")), group, None)
        pids = _tighter(pids, _int(files.get("pids.max")), group, _int(files.get("pids.current")))
        eff = files.get("cpuset.cpus.effective")
        if eff is not None:
            cpus = parse_cpu_list(eff.decode("ascii", "replace"))
            if cpuset is None or cpus != cpuset:
                cpuset, cpuset_group = cpus, group
        for name, data in files.items():
            if name.startswith("hugetlb.") and name.endswith(".max"):
                size = name[len("hugetlb.") : -len(".max")]
                if "." in size:  # hugetlb.<size>.rsvd.max: reservations, not a limit
                    continue
                cur_h = _int(files.get(f"hugetlb.{size}.current"))
                value_h = _int(data)
                if value_h is not None and value_h >= NO_LIMIT_MIN:
                    value_h = None  # LONG_MAX rounded to the page size: no limit
                new_h = _tighter(hugetlb.get(size), value_h, group, cur_h)
                if new_h is not None:
                    hugetlb[size] = new_h
        for key, value in _io_max(files.get("io.max")).items():
            new_io = _tighter(io.get(key), value, group, None)
            if new_io is not None:
                io[key] = new_io
    top_controllers = set(
        levels[0][1].get("cgroup.controllers", b"").decode("ascii", "replace").split()
    )
    unseen: dict[str, str] = {}
    for c in CONTROLLERS:
        if c in top_controllers:
            continue
        if v1 and c in v1:
            unseen[c] = f"on a cgroup v1 hierarchy ({v1[c]}), not read"
        elif ancestors_hidden:
            unseen[c] = "not enabled for the visible top group"
        else:
            unseen[c] = "not on the cgroup2 hierarchy"
    return Limits(
        group=levels[-1][0],
        top=levels[0][0],
        ancestors_hidden=ancestors_hidden,
        memory_max=mem_max,
        memory_high=mem_high,
        memory_swap_max=swap_max,
        cpu_quota=quota,
        cpuset=cpuset,
        cpuset_group=cpuset_group,
        affinity=affinity,
        pids_max=pids,
        hugetlb=hugetlb,
        io=io,
        unseen=unseen,
        memory_available=available,
    )


# --- the caller's group, and the walk on the file system ----------------------------


class _ReadOnly(Manager):
    """A :class:`Manager` whose methods that write refuse to (see :func:`current`)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise CgroupError(
            f"cgroups: {self.group} was opened read-only by cgroup2.current(); "
            f"use cgroup2.Manager.load() to change it"
        )

    update = new_child = toggle_controllers = set_cgroup_type = _refuse
    add_proc = add_thread = move_to = freeze = thaw = kill = delete = _refuse
    delete_systemd = _refuse


def _mount_root(mountpoint: str) -> str:
    for m in _mounts():
        if m.fstype == "cgroup2" and m.mountpoint == mountpoint:
            return m.root
    return "/"


def _group_below(proc_path: str, root: str) -> str:
    """The group path below a mount whose root is ``root`` (mountinfo's 4th field)."""
    if root == "/":
        return proc_path
    if proc_path == root:
        return "/"
    if proc_path.startswith(root + "/"):
        return proc_path[len(root) :]
    raise CgroupError(
        f"cgroups: this process's group {proc_path} is not below the root {root} of the "
        f"cgroup2 mount: it cannot be read through this mount"
    )


def current(*, mountpoint: str | None = None) -> Manager:
    """The group of the calling process, read-only.

    From the ``0::`` line of ``/proc/self/cgroup`` and the root of the cgroup2 mount (both
    relative to the cgroup namespace, so inside a container with its own namespace the
    group is usually ``/``). The methods that write (update, add_proc, freeze, kill,
    delete, ...) raise :class:`CgroupError`; load the group with :meth:`Manager.load` to
    change it.
    """
    mp = mountpoint if mountpoint is not None else default_mountpoint()
    proc = parse_proc_cgroup(read_abs("/proc/self/cgroup").decode("utf-8", "surrogateescape"))
    if proc.startswith("/.."):
        raise CgroupError(
            f"cgroups: this process's group ({proc}) is outside its cgroup namespace's root"
        )
    group = _group_below(proc, _mount_root(mp))
    m = _ReadOnly(mp, group)
    Dir.open(m.path, m.mountpoint).close()
    return m


def _v1_controllers() -> dict[str, str]:
    """Controllers bound to a cgroup v1 hierarchy, from ``/proc/self/cgroup``."""
    out: dict[str, str] = {}
    try:
        text = read_abs("/proc/self/cgroup").decode("utf-8", "surrogateescape")
    except CgroupError:
        return out
    for line in text.splitlines():
        num, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if num == "0":
            continue
        for name in names.split(","):
            if name and not name.startswith("name="):
                out["io" if name == "blkio" else name] = f"{name}:{path}"
    return out


def _level_files(d: Dir, names: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in names:
        data = d.try_read(name)
        if data is not None:
            files[name] = data
    return files


def _hugetlb_names(d: Dir) -> list[str]:
    with os.scandir(d.fd) as it:
        return [
            e.name for e in it
            if e.name.startswith("hugetlb.") and e.name.endswith((".max", ".current"))
        ]


def effective_limits(
    manager: Manager,
    *,
    affinity: frozenset[int] | None = None,
) -> Limits:
    """The limits that bind ``manager``'s group: see :class:`Limits`.

    Walks from the top of the tree this process sees (the root of the cgroup2 mount) down
    to the group, one directory per level, each opened through :mod:`cgroup2._fs` below
    the one before (so on cgroup2 only, never across a mount point); one descriptor is
    open at a time beyond the step, and the depth is that of the group path.
    ``affinity`` defaults to this process's ``sched_getaffinity``.
    """
    parts = [p for p in manager.group.split("/") if p]
    levels: list[Level] = []
    hidden = _mount_root(manager.mountpoint) != "/"
    # down from the mount's root, one child at a time: never across a mount point
    d = Dir.open(manager.mountpoint, manager.mountpoint)
    try:
        for i in range(len(parts) + 1):
            if i:
                d_next = d.child(parts[i - 1])
                d.close()
                d = d_next
            files = _level_files(d, [*_FILES, *_hugetlb_names(d)])
            if i == 0 and "cgroup.type" in files:
                hidden = True  # the top has cgroup.type: it is not the hierarchy's root
            levels.append(("/" + "/".join(parts[:i]), files))
    finally:
        d.close()
    aff = affinity if affinity is not None else frozenset(os.sched_getaffinity(0))
    return collect(levels, affinity=aff, ancestors_hidden=hidden, v1=_v1_controllers())


def limits() -> Limits:
    """The limits that bind the calling process (:func:`current`'s group)."""
    return effective_limits(current())


def cpu_count() -> int:
    """The CPUs this process can use in practice: ``min(affinity, cpuset, ceil(quota))``,
    at least 1 — the number to size thread and process pools with.

    ``os.cpu_count()`` counts the CPUs of the system; ``os.process_cpu_count()`` (Python
    3.13) the affinity; neither reads ``cpu.max``. Where cgroup2 is not mounted or the
    group cannot be read, the affinity is used.
    """
    try:
        return limits().cpu_count
    except CgroupError:
        return max(1, len(os.sched_getaffinity(0)))


def memory_available() -> int | None:
    """Bytes the calling process's group may still take before the tightest
    ``memory.max`` or ``memory.high`` along its path; ``None`` where none is set (or the
    memory controller is not on cgroup2: see ``Limits.unseen``)."""
    return limits().memory_available
