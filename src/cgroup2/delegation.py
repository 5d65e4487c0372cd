"""Delegation: handing a group to a user, and the kernel's rules a refusal comes from.

The kernel lets an unprivileged user manage a subtree when the group's directory and
its ``cgroup.procs``, ``cgroup.threads`` and ``cgroup.subtree_control`` are the user's
(Documentation/admin-guide/cgroup-v2.rst, "Delegation"; systemd's ``Delegate=yes``).
The other files of the delegated group (its limits, ``cgroup.freeze``, ``cgroup.kill``)
stay with the delegating side: they distribute the parent's resources. The kernel's
own list of files that are safe to delegate, ``/sys/kernel/cgroup/delegate``, also names
``memory.oom.group`` and ``memory.reclaim`` on recent kernels (systemd chowns them too);
:func:`delegate` hands out only the three core files, as the kernel's documentation
describes the contract.

:func:`explain` turns a refusal (``EACCES``/``EPERM``) met by :mod:`cgroup2._fs` into a
:class:`~cgroup2.errors.DelegationError` whose message names the rule.
"""

from __future__ import annotations

import errno
import os

from ._fs import Dir, read_abs
from .errors import CgroupError, DelegationError, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .manager import Manager

__all__ = ["DELEGATED_FILES", "delegate", "explain", "parse_owner"]

#: The files chowned with the directory (the kernel's delegation contract).
DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")

_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown(2)


def _check_id(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_ID:
        raise CgroupError(f"cgroups: invalid {what} {value!r}: a number from 0 to {_MAX_ID}")
    return value


def _primary_gid(uid: int) -> int:
    """The user's group from the passwd database; the uid's number when it has no entry."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


def delegate(m: Manager, uid: int, gid: int | None = None) -> None:
    """Chown the group's directory and :data:`DELEGATED_FILES` to ``uid``:``gid``.

    ``gid`` defaults to the user's primary group (or the uid's number when the passwd
    database has no entry). Each chown is an ``fchown`` on a descriptor opened through
    :class:`cgroup2._fs.Dir`: never through a symlink, never across a mount point. The
    root group of the mount, or any mount point, is refused (:class:`MountPointError`).
    Needs ``CAP_CHOWN`` (root). ``delegate(0, 0)`` takes the group back.
    """
    uid = _check_id("uid", uid)
    gid = _primary_gid(uid) if gid is None else _check_id("gid", gid)
    m._refuse_root("delegate")
    with Dir.open(m.path, m.mountpoint) as d:
        d.refuse_mount_root("delegate")
        fds: list[tuple[str, int]] = []
        try:
            for name in DELEGATED_FILES:
                fds.append((name, d.open_fd(name)))
            for name, fd in (*fds, (".", d.fd)):
                try:
                    os.fchown(fd, uid, gid)
                except OSError as e:
                    path = d.path if name == "." else d.file_path(name)
                    if e.errno == errno.EPERM:
                        raise DelegationError(
                            e.errno,
                            path,
                            op="chown",
                            rule="chown-needs-root",
                            hint="delegating a group needs CAP_CHOWN (root)",
                        ) from None
                    raise KernelError(e.errno or 0, path, op="chown") from None
        finally:
            for _, fd in fds:
                os.close(fd)


def parse_owner(text: str) -> tuple[int, int | None]:
    """``USER[:GROUP]`` (names or numbers, as chown(1) takes them) -> (uid, gid or None).

    ``USER:`` is the user's primary group, ``USER`` alone leaves the gid to
    :func:`delegate`'s default (the same group). Unknown names raise :class:`ValueError`.
    """
    import grp
    import pwd

    user, colon, group = text.partition(":")
    if not user:
        raise ValueError(f"invalid owner {text!r}: USER[:GROUP], a name or a number")
    if user.isdigit():
        uid = _check_id("uid", int(user))
    else:
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            raise ValueError(f"invalid owner {text!r}: no user {user!r}") from None
    if not group:
        return uid, (_primary_gid(uid) if colon else None)
    if group.isdigit():
        return uid, _check_id("gid", int(group))
    try:
        return uid, grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"invalid owner {text!r}: no group {group!r}") from None


# --- what a refusal means -------------------------------------------------------------


def _owner(path: str) -> str:
    try:
        return f"owned by uid {os.stat(path, follow_symlinks=False).st_uid}"
    except OSError:
        return "owner unknown"


def _mount_of(path: str) -> tuple[str, str]:
    """(mount point, mount root) of the cgroup2 mount holding file system ``path``."""
    from .paths import mounts

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
    from .paths import parse_proc_cgroup

    if not pid.strip().isdigit():
        return None
    try:
        proc = parse_proc_cgroup(
            read_abs(f"/proc/{int(pid)}/cgroup").decode("utf-8", "surrogateescape")
        )
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


def _procs_rule(d: Dir, name: str, err: int, op: str, value: str | None) -> DelegationError:
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


def _controller_rule(d: Dir, name: str, err: int, op: str, value: str) -> DelegationError:
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


def explain(d: Dir, name: str, op: str, err: int, value: str | None) -> KernelError | None:
    """The :class:`DelegationError` for a refused write or mkdir in ``d``, or None.

    Called by :mod:`cgroup2._fs` on ``EACCES``/``EPERM`` (and ``ENOENT`` of
    ``cgroup.subtree_control``); reads a few files and ``/proc/<pid>/cgroup`` to name
    the groups the rule is about. Never raises.
    """
    try:
        return _explain(d, name, op, err, value)
    except Exception:  # the plain error is still right; the explanation is a bonus
        return None


def _explain(d: Dir, name: str, op: str, err: int, value: str | None) -> KernelError | None:
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
