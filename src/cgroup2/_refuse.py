"""Why the kernel refused a write or a ``mkdir`` in a group: the delegation rules.

:func:`explain` turns a refusal (``EACCES``/``EPERM``, and ``ENOENT`` of
``cgroup.subtree_control``) met by :mod:`cgroup2._fs` into a
:class:`~cgroup2.errors.DelegationError` whose message names the rule
(Documentation/admin-guide/cgroup-v2.rst, "Delegation"). It sits below the file layer:
it reads the group through the :class:`RefusedDir` the layer passes in, and imports
nothing of the library but the mount table and the errors. :mod:`cgroup2.delegation`
hands groups out and re-exports these names.
"""

from __future__ import annotations

import errno
import os
from typing import Protocol

from ._mount import _read_proc_cgroup, mounts
from .errors import CgroupError, DelegationError, KernelError

__all__ = ["DELEGATED_FILES", "RefusedDir", "common_ancestor", "explain"]

#: The files chowned with the directory (the kernel's delegation contract).
DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")


class RefusedDir(Protocol):
    """What :func:`explain` reads of the group that was refused (:class:`cgroup2._fs.Dir`)."""

    @property
    def path(self) -> str: ...

    def file_path(self, name: str) -> str: ...

    def read(self, name: str) -> bytes: ...


def _owner(path: str) -> str:
    try:
        return f"owned by uid {os.stat(path, follow_symlinks=False).st_uid}"
    except OSError:
        return "owner unknown"


def _mount_of(path: str) -> tuple[str, str]:
    """(mount point, mount root) of the cgroup2 mount holding file system ``path``."""
    best = ("", "/")
    for mt in mounts():
        mp = mt.mountpoint.rstrip("/") or "/"
        inside = path == mp or path.startswith(mp.rstrip("/") + "/")
        if mt.fstype == "cgroup2" and inside and len(mp) > len(best[0]):
            best = (mp, mt.root)
    return best


def common_ancestor(src: str, dst: str) -> str:
    """The nearest group that holds both file system paths (``os.path.commonpath``)."""
    return os.path.commonpath([src, dst])


def _source_path(pid: str, dest_path: str) -> str | None:
    """The file system path of the group of process (or thread) ``pid``, or None."""
    if not pid.strip().isdigit():
        return None
    try:
        proc = _read_proc_cgroup(f"/proc/{int(pid)}/cgroup")
    except CgroupError:
        return None
    mp, root = _mount_of(dest_path)
    if not mp or proc.startswith("/.."):
        return None
    if root != "/":
        if proc != root and not proc.startswith(root + "/"):
            return None
        proc = proc[len(root) :] or "/"
    return mp if proc == "/" else mp.rstrip("/") + proc


def _procs_rule(
    d: RefusedDir, name: str, err: int, op: str, value: str | None
) -> DelegationError:
    dest = d.path
    src = _source_path(value or "", dest)
    if src is None:
        where = "(the source group of process " + repr(value) + " could not be read)"
        common = None
    else:
        common = common_ancestor(src, dest)
        where = f"({common}, {_owner(common + '/cgroup.procs')})"
    hint = (
        f"moving a process needs write access to {name} of the destination and to "
        f"cgroup.procs of the common ancestor of source and destination groups {where}; "
        f"from {src or '?'} to {dest}"
    )
    if common is not None and not os.access(common + "/cgroup.procs", os.W_OK):
        hint += (
            "; a delegated user can move its processes only between groups of its own "
            "delegated subtree"
        )
    return DelegationError(
        err, d.file_path(name), op=op, value=value, rule="procs-common-ancestor", hint=hint
    )


def _controller_rule(
    d: RefusedDir, name: str, err: int, op: str, value: str
) -> DelegationError:
    wanted = [w[1:] for w in value.split() if w.startswith("+")]
    if err == errno.ENOENT:
        try:
            have = d.read("cgroup.controllers").decode().split()
        except CgroupError:
            have = []
        missing = [c for c in wanted if c not in have] or wanted
        parent = d.path.rpartition("/")[0] or "/"
        hint = (
            f"the controller {' '.join(missing)} is not enabled in the parent's "
            f"cgroup.subtree_control ({parent}), so {d.path} cannot enable it for its "
            f"children: a controller not enabled above the delegation point cannot be "
            f"enabled below it; ask the owner of {parent} (root: 'cgroup2 create --owner' "
            f"with a limit of that controller; systemd: Delegate=yes or DelegateControllers=)"
        )
    else:
        hint = (
            f"enabling {' '.join(wanted) or value} for the children of {d.path} needs write "
            f"access to its cgroup.subtree_control ({_owner(d.file_path(name))}): a "
            f"controller not enabled above the delegation point cannot be enabled below it; "
            f"ask the owner of {d.path} (root, or systemd's Delegate=)"
        )
    return DelegationError(
        err, d.file_path(name), op=op, value=value, rule="controller-not-delegated", hint=hint
    )


def explain(
    d: RefusedDir, name: str, op: str, err: int, value: str | None
) -> KernelError | None:
    """The :class:`DelegationError` for a refused write or mkdir in ``d``, or None.

    Called by :mod:`cgroup2._fs` on ``EACCES``/``EPERM`` (and ``ENOENT`` of
    ``cgroup.subtree_control``); reads a few files and ``/proc/<pid>/cgroup`` to name
    the groups the rule is about. Never raises.
    """
    try:
        return _explain(d, name, op, err, value)
    except Exception:  # the plain error is still right; the explanation is a bonus
        return None


def _explain(
    d: RefusedDir, name: str, op: str, err: int, value: str | None
) -> KernelError | None:
    writing = op in ("write", "open for writing")
    if (
        name in ("cgroup.procs", "cgroup.threads")
        and writing
        and err in (errno.EACCES, errno.EPERM, errno.ENOENT)
    ):
        return _procs_rule(d, name, err, op, value)
    if name == "cgroup.subtree_control" and writing and value is not None:
        if err in (errno.EACCES, errno.EPERM) or (err == errno.ENOENT and "+" in value):
            return _controller_rule(d, name, err, op, value)
        return None
    if err not in (errno.EACCES, errno.EPERM):
        return None
    if op == "mkdir":
        if os.access(d.path, os.W_OK, effective_ids=True):
            return None  # the directory is writable: not the delegation rule
        return DelegationError(
            err,
            d.file_path(name),
            op=op,
            rule="directory-not-owned",
            hint=(
                f"creating a group in {d.path} needs write access to its directory "
                f"({_owner(d.path)}); a delegated group's directory is chowned to its user "
                f"('cgroup2 create --owner', Manager.delegate, systemd's Delegate=yes)"
            ),
        )
    if writing:
        if os.access(d.file_path(name), os.W_OK, effective_ids=True):
            return None  # the file is writable: the kernel refused for another reason
        return DelegationError(
            err,
            d.file_path(name),
            op=op,
            value=value,
            rule="file-not-delegated",
            hint=(
                f"{d.file_path(name)} is {_owner(d.file_path(name))}: a delegation covers "
                f"only the directory and {', '.join(DELEGATED_FILES)}; the other files of "
                f"the delegated group (its limits, cgroup.freeze, cgroup.kill) stay with "
                f"the delegating side: set them in a child group you create"
            ),
        )
    return None
