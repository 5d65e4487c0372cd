"""Where a process's group is below a mount, from ``/proc/<pid>/cgroup`` and the mount's
root in mountinfo, for cgroup2 and cgroup v1 hierarchies alike.

Both paths are relative to the reader's cgroup namespace. Usually the group path starts
with the mount's root; a mount made outside the namespace (``unshare --cgroup`` without
mounting again) has a root of ``/..`` components, and the names between it and the
namespace's root are written nowhere: the group is then found by the process it holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from ._fs import Dir, read_abs
from ._mount import mount_root, parse_proc_cgroup
from .errors import CgroupError

__all__ = ["MAX_SEARCH", "locate", "own_group", "split_up"]


def split_up(path: str) -> tuple[int, list[str]]:
    """A path relative to the cgroup namespace's root: (levels above that root, names)."""
    parts = [p for p in path.split("/") if p]
    up = 0
    while up < len(parts) and parts[up] == "..":
        up += 1
    return up, parts[up:]


#: The most directories :func:`locate` looks at to find a group by its process.
MAX_SEARCH = 100_000


class _GroupDir(Protocol):
    """What :func:`locate` needs of an open group directory (:class:`cgroup2._fs.Dir`, or
    a cgroup v1 directory of :mod:`cgroup2._v1`)."""

    path: str

    def child(self, name: str) -> Any: ...
    def subdir_entries(self) -> list[tuple[str, int]]: ...
    def try_read(self, name: str) -> bytes | None: ...
    def close(self) -> None: ...


def locate(proc_path: str, root: str, open_top: Callable[[], _GroupDir], pid: int,
           *, what: str) -> str:
    """The path below a mount of the group ``proc_path`` (a path of ``/proc/self/cgroup``),
    where ``root`` is the mount's root (mountinfo's 4th field) and ``open_top`` opens the
    mount point; ``what`` names the mount in errors.

    Both paths are relative to the cgroup namespace's root. Where the mount was made
    outside the namespace (``unshare --cgroup`` without a remount: its root reads
    ``/../..``), the names between the mount's root and the namespace's root are not
    written anywhere: the group is found as the one directory at that depth below which
    ``proc_path`` lists ``pid`` in ``cgroup.procs`` (at most :data:`MAX_SEARCH`
    directories looked at, each opened below the one before).
    """
    up_g, names_g = split_up(proc_path)
    up_r, names_r = split_up(root)
    if up_r == up_g and names_g[: len(names_r)] == names_r:
        return "/" + "/".join(names_g[len(names_r):])
    if up_r > up_g and not names_r:
        found = _search(open_top, up_r - up_g, names_g, pid)
        if len(found) == 1:
            return found[0]
        raise CgroupError(
            f"cgroups: this process's group is {proc_path} in its cgroup namespace, and "
            f"{what} shows the hierarchy from {up_r - up_g} level(s) above that namespace's "
            f"root (mount root {root}): the groups at that depth "
            + ("do not list this process" if not found else f"list it {len(found)} times")
            + "; mount cgroup2 again inside the namespace to read it by path"
        )
    raise CgroupError(
        f"cgroups: this process's group {proc_path} (in its cgroup namespace) is not below "
        f"the root {root} of {what}: it cannot be read through this mount"
    )


def own_group(mp: str) -> str:
    """This process's group below the cgroup2 mount ``mp``."""
    proc = parse_proc_cgroup(read_abs("/proc/self/cgroup").decode("utf-8", "surrogateescape"))
    return locate(proc, mount_root(mp), lambda: Dir.open(mp, mp), os.getpid(),
                  what=f"the cgroup2 mount {mp}")


def _search(open_top: Callable[[], _GroupDir], depth: int, names: list[str],
            pid: int) -> list[str]:
    """The groups ``<d>/<names>`` listing ``pid``, for each directory ``d`` ``depth``
    levels below the top (an iterative walk holding one descriptor per level)."""
    found: list[str] = []
    want = str(pid).encode()
    seen = 0
    top = open_top()
    stack: list[tuple[_GroupDir, list[tuple[str, int]], list[str]]] = [
        (top, top.subdir_entries(), [])
    ]
    try:
        while stack:
            d, pending, at = stack[-1]
            if not pending:
                stack.pop()
                if stack:
                    d.close()
                continue
            name, _ = pending.pop()
            seen += 1
            if seen > MAX_SEARCH:
                raise CgroupError(
                    f"cgroups: more than {MAX_SEARCH} groups to look through to find this "
                    f"process's group below {top.path}"
                )
            try:
                c = d.child(name)
            except CgroupError:
                continue  # removed meanwhile, or a mount point: not the group looked for
            if len(at) + 1 < depth:
                stack.append((c, c.subdir_entries(), [*at, name]))
                continue
            try:
                for n in names:
                    nxt = c.child(n)
                    c.close()
                    c = nxt
                procs = c.try_read("cgroup.procs") or b""
            except CgroupError:
                procs = b""
            finally:
                c.close()
            if want in procs.split():
                found.append("/" + "/".join([*at, name, *names]))
    finally:
        for d, _, _ in stack[1:]:
            d.close()
        top.close()
    return found
