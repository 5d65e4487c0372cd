"""Where cgroup2 is mounted, and the rules for group paths.

A *group path* is the third field of a ``0::`` line of ``/proc/<pid>/cgroup``: an absolute,
clean path relative to the cgroup2 mount, for example ``/user.slice/session-1.scope``.
The mount table itself is read by :mod:`cgroup2._mount` (below the file layer); its
public functions are this module's.
"""

from __future__ import annotations

import os

# the mount table's names, public here
from ._mount import HYBRID_MOUNTPOINT as HYBRID_MOUNTPOINT
from ._mount import MOUNTINFO as MOUNTINFO
from ._mount import (
    UNIFIED_MOUNTPOINT,
    _mounts,
    _read_proc_cgroup,
    default_mountpoint,
    mode,
    parse_mountinfo,
    parse_proc_cgroup,
)
from ._mount import mounts as mounts
from ._mount import refresh as refresh
from .errors import CgroupError, InvalidGroupPathError, InvalidPidError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._cgroupmount import CgroupMount
    from ._enums import Mode


def __getattr__(name: str) -> object:
    """``CgroupMount`` and ``Mode``, imported on first use (PEP 562; see
    :mod:`cgroup2._cgroupmount` and :mod:`cgroup2._enums`)."""
    if name == "CgroupMount":
        from ._cgroupmount import CgroupMount

        globals()[name] = CgroupMount
        return CgroupMount
    if name == "Mode":
        from ._enums import Mode

        globals()[name] = Mode
        return Mode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "CgroupMount", "Mode"})


__all__ = [
    "CgroupMount",
    "Mode",
    "clean_path",
    "default_mountpoint",
    "delegated_root",
    "find_delegated_root",
    "mode",
    "nested_group_path",
    "owns_group",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "pid_group_path",
    "verify_group_path",
]


def clean_path(p: str) -> str:
    """Lexically clean ``p`` as Go's ``filepath.Clean`` does.

    Repeated slashes become one, ``.`` elements go, ``..`` removes the element before it
    (and at the root stays at the root), a trailing slash goes; ``""`` becomes ``"."``.
    """
    if p == "":
        return "."
    rooted = p.startswith("/")
    out: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def verify_group_path(g: str) -> None:
    """Check the form of a group path; raise :class:`InvalidGroupPathError` if it is wrong.

    The reference's rules: ``g`` starts with ``/``, equals its cleaned form (no ``//``,
    ``.``, ``..`` or trailing ``/``) and does not start with ``/sys/fs/cgroup`` (a group
    path is relative to the mount, not a file system path). Also refused here: a NUL or a
    newline, which no path of the kernel's can hold. Whether the group exists is not
    checked.
    """
    if not isinstance(g, str):
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: not a str")
    if not g.startswith("/"):
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: must start with '/'")
    if clean_path(g) != g:
        raise InvalidGroupPathError(
            f"cgroups: invalid group path {g!r}: not clean (it would be {clean_path(g)!r})"
        )
    if g.startswith(UNIFIED_MOUNTPOINT):
        raise InvalidGroupPathError(
            f"cgroups: invalid group path {g!r}: give the path below the cgroup2 mount, "
            f"not the file system path"
        )
    if "\0" in g or "\n" in g:
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: NUL or newline")


def caller_group(mountpoint: str) -> str | None:
    """The calling process's group as a group path of the cgroup2 mount at ``mountpoint``
    (from ``/proc/self/cgroup`` and the mount's root in mountinfo: the last row for the
    mount point, the one that is visible); ``None`` when the process is not below that
    mount's root or either file cannot be read."""
    try:
        proc = _read_proc_cgroup("/proc/self/cgroup")
    except CgroupError:
        return None
    root = "/"
    for m in _mounts():
        if m.fstype == "cgroup2" and m.mountpoint == mountpoint:
            root = m.root
    if proc.startswith("/.."):  # outside its cgroup namespace's root
        return None
    if root == "/" or proc == root:
        return proc if root == "/" else "/"
    return proc[len(root):] if proc.startswith(root + "/") else None


def pid_group_path(pid: int) -> str:
    """The group path of process ``pid``, from ``/proc/<pid>/cgroup``.

    Raises :class:`InvalidPidError` for a pid <= 0, and a :class:`KernelError` with
    ``ENOENT`` when there is no such process.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise InvalidPidError(f"cgroups: pid must be greater than 0, got {pid!r}")
    return _read_proc_cgroup(f"/proc/{pid}/cgroup")


def nested_group_path(suffix: str) -> str:
    """``suffix`` joined below the calling process's own group (Go's ``filepath.Join``)."""
    return clean_path(_read_proc_cgroup("/proc/self/cgroup") + "/" + suffix)


# --- the caller's delegation (Documentation/admin-guide/cgroup-v2.rst, "Delegation") ---


def owns_group(path: str, uid: int) -> bool:
    """Whether ``uid`` owns the group directory ``path`` the way a delegation hands it
    out: the directory and its ``cgroup.procs`` are ``uid``'s and writable by their owner.
    """
    try:
        st = os.stat(path, follow_symlinks=False)
        sp = os.stat(path + "/cgroup.procs", follow_symlinks=False)
    except OSError:
        return False
    return (
        st.st_uid == uid
        and sp.st_uid == uid
        and bool(st.st_mode & 0o200)
        and bool(sp.st_mode & 0o200)
    )


def find_delegated_root(group: str, owned: Callable[[str], bool]) -> str | None:
    """The nearest of ``group`` and its ancestors (group paths, up to ``/``) for which
    ``owned`` is true, or None: the pure logic of :func:`delegated_root`."""
    g = clean_path(group) if group != "/" else "/"
    while True:
        if owned(g):
            return g
        if g == "/":
            return None
        g = g.rpartition("/")[0] or "/"


def delegated_root(*, mountpoint: str | None = None, uid: int | None = None) -> str | None:
    """The caller's delegated group: the nearest ancestor of its own group (the ``0::``
    line of ``/proc/self/cgroup``, the group itself included) whose directory and
    ``cgroup.procs`` the caller owns (:func:`owns_group`, ``uid`` default the effective
    uid); its group path below the mount, or None when there is none.

    The kernel lets the caller create groups there and move its own processes between
    them (the common ancestor's ``cgroup.procs`` is its own). Read-only: nothing is
    written.
    """
    from ._locate import own_group

    mp = mountpoint if mountpoint is not None else default_mountpoint()
    me = os.geteuid() if uid is None else uid
    try:
        group = own_group(mp)
    except CgroupError:  # a group this mount does not show
        return None
    base = mp.rstrip("/")
    return find_delegated_root(group, lambda g: owns_group(base + g if g != "/" else mp, me))
