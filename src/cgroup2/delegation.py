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
:class:`~cgroup2.errors.DelegationError` whose message names the rule; it is defined in
:mod:`cgroup2._refuse`, below the file layer that calls it.
"""

from __future__ import annotations

import errno
import os

from ._fs import Dir
from ._refuse import DELEGATED_FILES, common_ancestor, explain
from .errors import CgroupError, DelegationError, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class _Group(Protocol):
        """What :func:`delegate` uses of a :class:`cgroup2.Manager`."""

        path: str
        mountpoint: str

        def _refuse_root(self, op: str) -> None: ...

__all__ = ["DELEGATED_FILES", "common_ancestor", "delegate", "explain", "parse_owner"]

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


def delegate(m: _Group, uid: int, gid: int | None = None) -> None:
    """Chown the group directory of ``m`` (a :class:`~cgroup2.Manager`) and
    :data:`DELEGATED_FILES` to ``uid``:``gid``.

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
