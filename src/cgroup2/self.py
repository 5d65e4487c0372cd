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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._fs import Dir, read_abs
from ._locate import locate, own_group, split_up
from ._mount import mount_root
from .controllers._values import NO_LIMIT_MIN
from .errors import CgroupError
from .manager import Manager, _check_mountpoint
from .paths import default_mountpoint

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
    ``hugetlb.<size>.current``), ``None`` where there is no such file. ``version`` and
    ``hierarchy`` say where the limit was read: 2 and the cgroup2 mount, or 1 and the
    mount of the cgroup v1 hierarchy its controller is bound to (a hybrid or v1 host);
    ``group`` is a path below that mount.
    """

    value: float
    group: str
    current: int | None = None
    version: int = 2
    hierarchy: str = ""

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
    #: cgroup v1 only: the tightest ``memory.memsw.limit_in_bytes`` (memory plus swap)
    #: and ``memory.soft_limit_in_bytes`` (reclaimed down to under global pressure).
    memory_memsw_max: Limit | None = None
    memory_soft_limit: Limit | None = None
    #: The group's memory usage and working set (usage less the inactive file pages of
    #: ``memory.stat``, what kubelet and cAdvisor call the working set).
    memory_usage: int | None = None
    memory_working_set: int | None = None
    #: Where each controller's limits were read: (2, the cgroup2 mount) or (1, the mount
    #: of the cgroup v1 hierarchy it is bound to).
    hierarchies: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def cpu_count(self) -> int:
        """``min(len(affinity), len(cpuset), ceil(quota))``, at least 1."""
        return self.count_cpus()

    def count_cpus(self, rounding: str = "up") -> int:
        """``min(len(affinity), len(cpuset), quota)``, at least 1, with the quota (CPUs
        as a float) rounded ``"up"`` (as the JDK and Go's runtime do: 1.5 CPUs count 2)
        or ``"down"`` (as uber-go/automaxprocs does: 1.5 count 1)."""
        if rounding not in ("up", "down"):
            raise CgroupError(f"cgroups: invalid rounding {rounding!r}: 'up' or 'down'")
        n = len(self.affinity) or (os.cpu_count() or 1)
        if self.cpuset:
            n = min(n, len(self.cpuset))
        if self.cpu_quota is not None:
            q = self.cpu_quota.value
            n = min(n, math.ceil(q) if rounding == "up" else math.floor(q))
        return max(1, n)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (sets as sorted lists)."""

        def lim(x: Limit | None) -> dict[str, Any] | None:
            if x is None:
                return None
            return {"value": x.value, "group": x.group, "current": x.current,
                    "version": x.version, "hierarchy": x.hierarchy}

        return {
            "group": self.group,
            "top": self.top,
            "ancestors_hidden": self.ancestors_hidden,
            "memory_max": lim(self.memory_max),
            "memory_high": lim(self.memory_high),
            "memory_swap_max": lim(self.memory_swap_max),
            "memory_available": self.memory_available,
            "memory_memsw_max": lim(self.memory_memsw_max),
            "memory_soft_limit": lim(self.memory_soft_limit),
            "memory_usage": self.memory_usage,
            "memory_working_set": self.memory_working_set,
            "cpu_quota": lim(self.cpu_quota),
            "cpuset": sorted(self.cpuset) if self.cpuset is not None else None,
            "cpuset_group": self.cpuset_group,
            "affinity": sorted(self.affinity),
            "cpu_count": self.cpu_count,
            "pids_max": lim(self.pids_max),
            "hugetlb": {k: lim(v) for k, v in sorted(self.hugetlb.items())},
            "io": {k: lim(v) for k, v in sorted(self.io.items())},
            "unseen": dict(self.unseen),
            "hierarchies": {c: {"version": v, "mountpoint": mp}
                            for c, (v, mp) in sorted(self.hierarchies.items())},
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
    old: Limit | None, value: float | None, group: str, current: int | None,
    where: tuple[int, str] = (2, ""),
) -> Limit | None:
    # at equal values the upper group is kept: it is the one that imposes the limit
    if value is None or (old is not None and old.value <= value):
        return old
    return Limit(value, group, current, *where)


def _stat_value(data: bytes, key: bytes) -> int | None:
    """One counter of a ``memory.stat`` text."""
    for line in data.split(b"\n"):
        k, _, v = line.partition(b" ")
        if k == key and v.strip().isdigit():
            return int(v)
    return None


Level = tuple[str, Mapping[str, bytes]]


def collect(
    levels: Sequence[Level],
    *,
    affinity: frozenset[int],
    ancestors_hidden: bool,
    v1: Mapping[str, str] | None = None,
    version: int = 2,
    hierarchy: str = "",
) -> Limits:
    """The :class:`Limits` of the last of ``levels``, from the files of each.

    ``levels`` runs from the top visible group down to the group itself: (group path,
    {file name: content}); a file missing from a level's mapping is absent there. The
    walk's rules in one place, so that they can be checked on made-up trees. A cgroup v1
    hierarchy's files come under their v2 names (:mod:`cgroup2._v1`), with ``version``
    1 and its mount point as ``hierarchy``, which each :class:`Limit` carries.
    """
    where = (version, hierarchy)
    memsw: Limit | None = None
    soft: Limit | None = None
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
            new = _tighter(old, value, group, cur, where)
            if name == "memory.max":
                mem_max = new
            else:
                mem_high = new
        swap_max = _tighter(
            swap_max, _int(files.get("memory.swap.max")), group,
            _int(files.get("memory.swap.current")), where,
        )
        memsw = _tighter(memsw, _int(files.get("memory.memsw.max")), group,
                         _int(files.get("memory.memsw.current")), where)
        soft = _tighter(soft, _int(files.get("memory.soft_limit")), group, cur, where)
        quota = _tighter(quota, _cpu_max(files.get("cpu.max")), group, None, where)
        pids = _tighter(pids, _int(files.get("pids.max")), group,
                        _int(files.get("pids.current")), where)
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
                new_h = _tighter(hugetlb.get(size), value_h, group, cur_h, where)
                if new_h is not None:
                    hugetlb[size] = new_h
        for key, value in _io_max(files.get("io.max")).items():
            new_io = _tighter(io.get(key), value, group, None, where)
            if new_io is not None:
                io[key] = new_io
    usage = _int(levels[-1][1].get("memory.current"))
    working_set = None
    mstat = levels[-1][1].get("memory.stat")
    if usage is not None and mstat is not None:
        inactive = _stat_value(mstat, b"total_inactive_file" if version == 1 else b"inactive_file")
        working_set = max(0, usage - (inactive or 0))
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
        memory_memsw_max=memsw,
        memory_soft_limit=soft,
        memory_usage=usage,
        memory_working_set=working_set,
        hierarchies={c: where for c in CONTROLLERS if c in top_controllers},
    )


# --- the caller's group, and the walk on the file system ----------------------------


#: The public attributes of a :class:`Manager` that only read the group. Every other
#: public attribute of :func:`current`'s manager refuses to run: a method that writes,
#: chowns, signals, makes or removes a group, and any method added to Manager later until
#: it is named here.
READ_ONLY_ATTRIBUTES = frozenset({
    "mountpoint", "group", "path", "unit", "systemd_user", "systemd_warnings",
    "cgroup_type", "controllers", "effective_limits", "events", "memory_event_fd",
    "pressure", "procs", "root_controllers", "stat", "state", "subtree_controllers",
    "threads",
})


def _refusal(group: str, name: str) -> Callable[..., NoReturn]:
    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise CgroupError(
            f"cgroups: {group} was opened read-only by cgroup2.current(): {name}() is "
            f"refused; use cgroup2.Manager.load() to change it"
        )

    refused.__name__ = name
    return refused


class _ReadOnly(Manager):
    """A :class:`Manager` that only reads (see :func:`current`): a public attribute not in
    :data:`READ_ONLY_ATTRIBUTES` is a function that raises :class:`CgroupError`."""

    def __getattribute__(self, name: str) -> Any:
        if name[:1] != "_" and name not in READ_ONLY_ATTRIBUTES:
            return _refusal(object.__getattribute__(self, "group"), name)
        return object.__getattribute__(self, name)


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
    group is usually ``/``; see :func:`locate` for a namespace made without mounting
    cgroup2 again). Only the attributes in :data:`READ_ONLY_ATTRIBUTES` work; every
    other method (update, add_proc, freeze, kill, delete, delegate, ...) raises
    :class:`CgroupError`: load the group with :meth:`Manager.load` to change it.
    """
    if mountpoint is not None:
        _check_mountpoint(mountpoint)
    mp = mountpoint if mountpoint is not None else default_mountpoint()
    m = _ReadOnly(mp, own_group(mp))
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
    """The limits that bind ``manager``'s group on cgroup2: see :class:`Limits` (a
    controller bound to cgroup v1 is in ``unseen``; :func:`limits` reads the caller's own
    v1 groups too).

    Walks from the top of the tree this process sees (the root of the cgroup2 mount) down
    to the group, one directory per level, each opened through :mod:`cgroup2._fs` below
    the one before (so on cgroup2 only, never across a mount point); one descriptor is
    open at a time beyond the step, and the depth is that of the group path.
    ``affinity`` defaults to this process's ``sched_getaffinity``.
    """
    parts = [p for p in manager.group.split("/") if p]
    levels: list[Level] = []
    # a mount of a sub-tree hides what is above it ("/../.." is a mount made above a cgroup
    # namespace's root: it may show the whole hierarchy, which cgroup.type tells below)
    hidden = bool(split_up(mount_root(manager.mountpoint))[1])
    # down from the mount's root, one child at a time: never across a mount point
    d = Dir.open(manager.mountpoint, manager.mountpoint)
    try:
        for i in range(len(parts) + 1):
            if i:
                d_next = d.child(parts[i - 1])
                d.close()
                d = d_next
            extra = ["memory.stat"] if i == len(parts) else []
            files = _level_files(d, [*_FILES, *extra, *_hugetlb_names(d)])
            if i == 0 and "cgroup.type" in files:
                hidden = True  # the top has cgroup.type: it is not the hierarchy's root
            levels.append(("/" + "/".join(parts[:i]), files))
    finally:
        d.close()
    aff = affinity if affinity is not None else frozenset(os.sched_getaffinity(0))
    return collect(levels, affinity=aff, ancestors_hidden=hidden, v1=_v1_controllers(),
                   hierarchy=manager.mountpoint)


#: The fields of :class:`Limits` that each controller read from cgroup v1 gives.
_V1_FIELDS = {
    "memory": ("memory_max", "memory_high", "memory_swap_max", "memory_available",
               "memory_memsw_max", "memory_soft_limit", "memory_usage",
               "memory_working_set"),
    "cpu": ("cpu_quota",),
    "cpuset": ("cpuset", "cpuset_group"),
    "pids": ("pids_max",),
}


def with_v1(lim: Limits, hierarchies: Mapping[str, Any] | None = None) -> Limits:
    """``lim`` (this process's cgroup2 limits) with the limits of the controllers it does
    not see on cgroup2 read from the cgroup v1 hierarchy each is bound to, read-only
    (:mod:`cgroup2._v1`): memory, cpu (the CFS quota; never ``cpu.shares``), cpuset and
    pids. A v1 hierarchy that cannot be read stays in ``unseen``, with the reason."""
    from dataclasses import replace
    from functools import partial

    from . import _v1

    hs = _v1.hierarchies() if hierarchies is None else hierarchies
    unseen = dict(lim.unseen)
    hidden = lim.ancestors_hidden
    changes: dict[str, Any] = {}
    pid = os.getpid()
    for c in _v1.BOUND:
        h = hs.get(c)
        if h is None or c not in unseen:
            continue  # on cgroup2 (read there), or bound nowhere
        try:
            group = locate(h.proc_path, h.root, partial(_v1.open_top, h), pid,
                           what=f"the cgroup v1 mount {h.mountpoint}")
            levels, top_hidden = _v1.read_levels(h, group, c)
        except CgroupError as e:
            unseen[c] = f"bound to cgroup v1 ({h.controllers}), not readable: {e}"
            continue
        got = collect(levels, affinity=lim.affinity, ancestors_hidden=top_hidden, version=1,
                      hierarchy=h.mountpoint or "")
        hidden = hidden or top_hidden
        del unseen[c]
        changes.setdefault("hierarchies", dict(lim.hierarchies))[c] = (1, h.mountpoint or "")
        for name in _V1_FIELDS[c]:
            changes[name] = getattr(got, name)
    return replace(lim, unseen=unseen, ancestors_hidden=hidden, **changes)


def limits(*, mountpoint: str | None = None) -> Limits:
    """The limits that bind the calling process: those of :func:`current`'s group on
    cgroup2, and of its groups in the cgroup v1 hierarchies that hold the controllers
    cgroup2 does not (a hybrid or v1 host): see :func:`with_v1`. Where cgroup2 is not
    mounted, or does not show this process's group, ``group`` and ``top`` are ``""``
    and the reason is in ``unseen`` for each controller v1 does not give."""
    return with_v1(own_limits(mountpoint)[1])


def own_limits(mountpoint: str | None = None) -> tuple[Manager | None, Limits]:
    """:func:`current` (``None`` where it cannot be had: no cgroup2 mount, or one that
    does not show this process's group) and the cgroup2 limits of its group (without
    cgroup2, none: the reason in ``unseen``). A ``mountpoint`` given that is not a
    cgroup2 mount is an error."""
    try:
        m = current(mountpoint=mountpoint)
    except CgroupError as e:
        if mountpoint is not None:
            raise
        why = str(e).removeprefix("cgroups: ")
        return None, Limits(group="", top="", ancestors_hidden=True,
                            affinity=frozenset(os.sched_getaffinity(0)),
                            unseen={c: why for c in CONTROLLERS})
    return m, effective_limits(m)


def cpu_count(*, rounding: str = "up") -> int:
    """The CPUs this process can use in practice: ``min(affinity, cpuset, quota)``, at
    least 1 — the number to size thread and process pools with; on cgroup2 and, for the
    controllers bound there, on cgroup v1 (``cpu.cfs_quota_us``, ``cpuset.cpus``).

    A quota of 1.5 CPUs counts 2 (``rounding="up"``, the default): as the JDK's
    ``availableProcessors()`` and Go's runtime (``GOMAXPROCS``) count it, so that a
    Python program beside them sizes its pools alike, and the half CPU is used rather
    than left idle (the quota itself stops the group from taking more). ``rounding=
    "down"`` counts 1, as uber-go/automaxprocs does, for a program that must never be
    throttled. ``cpu.shares`` (v1) and ``cpu.weight`` are weights, never counts.

    ``os.cpu_count()`` counts the CPUs of the system; ``os.process_cpu_count()`` (Python
    3.13) the affinity; neither reads a quota. Where nothing can be read, the affinity is
    used.
    """
    try:
        return limits().count_cpus(rounding)
    except CgroupError as e:
        if "rounding" in str(e):
            raise
        return max(1, len(os.sched_getaffinity(0)))


def memory_available() -> int | None:
    """Bytes the calling process's group may still take before the tightest memory
    limit along its path (``memory.max``/``memory.high`` on cgroup2,
    ``memory.limit_in_bytes`` on a cgroup v1 memory hierarchy); ``None`` where none is
    set or the memory controller cannot be read (see ``Limits.unseen``)."""
    return limits().memory_available
