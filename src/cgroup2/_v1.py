"""cgroup v1 hierarchies, read-only: where a controller is bound on a hybrid or v1 host,
the limits a process's v1 groups set, and what a path given as a cgroup2 mount is.

The library manages the unified (v2) hierarchy only. On a host that binds some
controllers to cgroup v1 (``/sys/fs/cgroup/memory``...), a program's own limits are set
there: :func:`hierarchies` finds, per controller, the v1 hierarchy it is bound to from
``/proc/self/cgroup`` (the process's group in each hierarchy) and the mount table (not
from ``/proc/cgroups``, which may be absent or stale), and :func:`read_levels` reads the
limit files of each level from the mount's top down to the group, one directory opened
below the one before, each checked to be on that mount (never across a mount point).
Nothing here writes.

The v1 files are given to :func:`cgroup2.self.collect` under the names of their v2
counterparts, so that one set of rules (the tightest limit along the path) serves both:
``memory.limit_in_bytes`` as ``memory.max``, ``memory.usage_in_bytes`` as
``memory.current``, ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` as ``cpu.max``,
``cpuset.effective_cpus`` (or ``cpuset.cpus``) as ``cpuset.cpus.effective``; v1's own
``memory.memsw.limit_in_bytes`` (memory plus swap) and ``memory.soft_limit_in_bytes``
keep names of their own. ``cpu.shares`` is a weight, never a count of CPUs: not read.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from functools import partial

from ._fs import Dir, read_abs
from ._locate import locate
from ._mount import _mounts
from .errors import CgroupError, KernelError

__all__ = [
    "BOUND",
    "Hierarchy",
    "bound_sentence",
    "describe_path",
    "hierarchies",
    "of_process",
    "open_top",
    "read_levels",
    "unavailable_message",
]

#: The v1 controllers whose limits a program's own limits are read from.
BOUND = ("memory", "cpu", "cpuset", "pids")

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW

#: v1's "no limit" for memory: PAGE_COUNTER_MAX pages, i.e. LONG_MAX rounded down to a page.
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_UNLIMITED = sys.maxsize - sys.maxsize % _PAGE


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """The cgroup v1 hierarchy a controller is bound to, as this process sees it."""

    #: The controllers mounted together there (``"cpu,cpuacct"``).
    controllers: str
    #: This process's group in it (``/proc/self/cgroup``, relative to the namespace).
    proc_path: str
    #: The mount point, ``None`` where the hierarchy is not mounted in this namespace.
    mountpoint: str | None = None
    root: str = "/"  # the mount's root (mountinfo's 4th field)
    device: int = 0


def _proc_lines(text: str) -> list[tuple[list[str], str]]:
    out = []
    for line in text.splitlines():
        num, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if num == "0" or not names:
            continue
        out.append(([n for n in names.split(",") if n and not n.startswith("name=")], path))
    return out


def hierarchies(proc_cgroup: str | None = None) -> dict[str, Hierarchy]:
    """The v1 hierarchy each controller of this process is bound to, by controller name
    (``blkio`` also as ``io``), from ``/proc/self/cgroup`` and the mount table."""
    if proc_cgroup is None:
        try:
            proc_cgroup = read_abs("/proc/self/cgroup").decode("utf-8", "surrogateescape")
        except CgroupError:
            return {}
    rows = [r for r in _mounts() if r.fstype == "cgroup"]
    out: dict[str, Hierarchy] = {}
    for names, path in _proc_lines(proc_cgroup):
        if not names:
            continue
        h = Hierarchy(",".join(names), path)
        for r in rows:
            opts = set(r.options.split(","))
            if all(n in opts for n in names):
                h = Hierarchy(h.controllers, path, r.mountpoint, r.root, r.device)
                break
        for n in names:
            out[n] = h
            if n == "blkio":
                out["io"] = h
    return out


def bound_sentence(controllers: list[str], hs: dict[str, Hierarchy] | None = None) -> str:
    """Where those of ``controllers`` (in order) bound to a cgroup v1 hierarchy are, and
    how to move them to cgroup2; ``""`` when none is."""
    hs = hierarchies() if hs is None else hs
    bound = [c for c in dict.fromkeys(controllers) if c in hs]
    if not bound:
        return ""
    places = "; ".join(
        f"{c} is bound to " + (f"the cgroup v1 hierarchy at {hs[c].mountpoint}"
                               if hs[c].mountpoint else
                               f"a cgroup v1 hierarchy ({hs[c].controllers}, not mounted here)")
        for c in bound
    )
    names = ",".join(dict.fromkeys("blkio" if c == "io" else c for c in bound))
    return (
        f"{places} on this host; cgroup2 manages only the unified hierarchy — boot with "
        f"systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1={names}) to move "
        + ("it" if len(bound) == 1 else "them")
    )


def unavailable_message(missing: list[str], mountpoint: str, offered: list[str],
                        hs: dict[str, Hierarchy] | None = None) -> str:
    """Why each of the ``missing`` controllers (in the order given) cannot be used on the
    cgroup2 mount ``mountpoint``, which offers ``offered``: each bound to a cgroup v1
    hierarchy is named with its mount, with how to move it; the others are simply not
    offered (a kernel without them, or ``cgroup_disable=``)."""
    hs = hierarchies() if hs is None else hs
    other = [c for c in missing if c not in hs]
    parts = []
    bound = bound_sentence(missing, hs)
    if bound:
        parts.append(bound)
    if other:
        parts.append(
            f"{', '.join(other)}: not offered by the cgroup2 mount {mountpoint} (it offers: "
            f"{' '.join(offered) or 'none'})"
        )
    return "; ".join(parts)


def describe_path(path: str, err: int | None = None) -> str:
    """What ``path``, given as a cgroup2 mount point, is instead: a cgroup v1 mount (with
    its controllers), a symbolic link (and to where), a directory this process may not
    open (``err``, the errno its opening gave), not a directory, missing, or a directory
    of another file system. Looked at with ``lstat`` only."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "no such directory"
    except OSError as e:
        return f"cannot be looked at ({os.strerror(e.errno or 0)})"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return (f"a symbolic link (to {target}); give the directory itself (a mount point "
                f"is never followed through a link)")
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    for r in _mounts():
        if r.fstype == "cgroup" and r.device == st.st_dev:
            names = ",".join(o for o in r.options.split(",") if o not in ("rw", "ro"))
            what = (f"the cgroup v1 mount of {names}" if path.rstrip("/") == r.mountpoint
                    else f"a directory of the cgroup v1 mount of {names} at {r.mountpoint}")
            return f"{what}, not cgroup2: cgroup2 manages only the unified hierarchy"
    if err in (errno.EACCES, errno.EPERM):
        return f"a directory this process may not open ({os.strerror(err)})"
    if err not in (None, 0):
        return f"a directory that cannot be opened ({os.strerror(err)})"
    return "a directory that is not on a cgroup2 file system"


def open_top(h: Hierarchy) -> Dir:
    """The top directory of hierarchy ``h``'s mount, checked to be that mount (its
    ``st_dev`` is the one mountinfo gives); read-only use only."""
    if h.mountpoint is None:
        raise CgroupError(f"cgroups: the cgroup v1 hierarchy {h.controllers} is not mounted here")
    try:
        fd = os.open(h.mountpoint, _O_DIR)
    except OSError as e:
        raise KernelError(e.errno or 0, h.mountpoint, op="open directory") from None
    try:
        st = os.fstat(fd)
        if st.st_dev != h.device:
            raise CgroupError(
                f"cgroups: {h.mountpoint} is no longer the cgroup v1 mount of {h.controllers}"
            )
    except BaseException:
        os.close(fd)
        raise
    return Dir(fd, h.mountpoint, st.st_dev, st.st_ino)


def _limit(data: bytes | None) -> bytes | None:
    """A v1 byte limit as v2 writes it: ``max`` for v1's "no limit"."""
    if data is None:
        return None
    s = data.strip()
    if s.isdigit() and int(s) >= _UNLIMITED:
        return b"max"
    return s


def _cfs(quota: bytes | None, period: bytes | None) -> bytes | None:
    """``cpu.cfs_quota_us``/``cpu.cfs_period_us`` as v2's ``cpu.max``."""
    if quota is None:
        return None
    q = quota.strip()
    p = (period or b"100000").strip()
    return (b"max" if q.startswith(b"-") else q) + b" " + p


def level_files(d: Dir, controller: str, *, last: bool) -> dict[str, bytes]:
    """The limit files of ``controller`` in the v1 group ``d``, under v2's names."""
    files: dict[str, bytes] = {}

    def put(name: str, data: bytes | None) -> None:
        if data is not None:
            files[name] = data

    if controller == "memory":
        put("memory.max", _limit(d.try_read("memory.limit_in_bytes")))
        put("memory.current", d.try_read("memory.usage_in_bytes"))
        put("memory.memsw.max", _limit(d.try_read("memory.memsw.limit_in_bytes")))
        put("memory.memsw.current", d.try_read("memory.memsw.usage_in_bytes"))
        put("memory.soft_limit", _limit(d.try_read("memory.soft_limit_in_bytes")))
        if last:
            put("memory.stat", d.try_read("memory.stat"))
    elif controller == "cpu":
        put("cpu.max", _cfs(d.try_read("cpu.cfs_quota_us"), d.try_read("cpu.cfs_period_us")))
    elif controller == "cpuset":
        cpus = d.try_read("cpuset.effective_cpus")
        put("cpuset.cpus.effective", cpus if cpus is not None else d.try_read("cpuset.cpus"))
    elif controller == "pids":
        put("pids.max", d.try_read("pids.max"))
        put("pids.current", d.try_read("pids.current"))
    return files


def read_levels(
    h: Hierarchy, group: str, controller: str
) -> tuple[list[tuple[str, dict[str, bytes]]], bool]:
    """The levels of ``group`` (a path below ``h``'s mount) from the mount's top down,
    with ``controller``'s files of each; and whether the top is not the hierarchy's root
    (a mount of a sub-tree, as in a container: limits above it cannot be read)."""
    parts = [p for p in group.split("/") if p]
    levels: list[tuple[str, dict[str, bytes]]] = []
    d = open_top(h)
    try:
        hidden = d.try_read("cgroup.sane_behavior") is None  # only the root has it
        for i in range(len(parts) + 1):
            if i:
                nxt = d.child(parts[i - 1])
                d.close()
                d = nxt
            levels.append(("/" + "/".join(parts[:i]),
                           level_files(d, controller, last=i == len(parts))))
    finally:
        d.close()
    return levels, hidden


def of_process(
    pid: int, controllers: tuple[str, ...] = BOUND
) -> dict[str, tuple[str, dict[str, bytes]]]:
    """The cgroup v1 group of process ``pid`` for each of ``controllers`` bound to v1 and
    mounted here, with its limit and usage files (under v2's names, as
    :func:`level_files` gives them): {controller: (directory, files)}, read-only. A
    hierarchy that cannot be read is left out."""
    try:
        text = read_abs(f"/proc/{pid}/cgroup").decode("utf-8", "surrogateescape")
    except CgroupError:
        return {}
    out: dict[str, tuple[str, dict[str, bytes]]] = {}
    hs = hierarchies(text)
    for c in controllers:
        h = hs.get(c)
        if h is None or h.mountpoint is None:
            continue
        try:
            group = locate(h.proc_path, h.root, partial(open_top, h), pid,
                           what=f"the cgroup v1 mount {h.mountpoint}")
            levels, _ = read_levels(h, group, c)
        except CgroupError:
            continue
        path = h.mountpoint if group == "/" else h.mountpoint + group
        out[c] = (path, levels[-1][1])
    return out
