"""Errors raised by cgroup2.

Every error is a :class:`CgroupError`. The ten errors of the reference have their own
subclass; a failed system call on a cgroup file is a :class:`KernelError`, which is also
an :class:`OSError` and keeps the errno, the file's path and the value that was written.
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "CPUNotSupportedError",
    "CgroupDeletedError",
    "CgroupError",
    "DelegationError",
    "FreezerNotSupportedError",
    "InvalidFormatError",
    "InvalidGroupPathError",
    "InvalidPidError",
    "KernelError",
    "MemoryNotSupportedError",
    "MountPointError",
    "MountPointNotExistError",
    "NoCgroupMountDestinationError",
    "NotCgroup2Error",
    "PidsNotSupportedError",
    "PressureTriggerError",
    "TreeLimitError",
    "ignore_not_exist",
]


class CgroupError(Exception):
    """The base of every error of this package.

    ``errno``, ``path`` and ``value`` are set when the error comes from a file operation
    (``value`` is the text that was being written, ``None`` for a read).
    """

    default_message = "cgroups: error"

    def __init__(
        self,
        message: str | None = None,
        *,
        errno: int | None = None,
        path: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.errno = errno
        self.path = path
        self.value = value

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.default_message


class InvalidPidError(CgroupError):
    default_message = "cgroups: pid must be greater than 0"


class MountPointNotExistError(CgroupError):
    default_message = "cgroups: cgroup mountpoint does not exist"


class InvalidFormatError(CgroupError):
    default_message = "cgroups: parsing file with invalid format failed"


class FreezerNotSupportedError(CgroupError):
    default_message = "cgroups: freezer cgroup (v2) not supported on this system"


class MemoryNotSupportedError(CgroupError):
    default_message = "cgroups: memory cgroup (v2) not supported on this system"


class PidsNotSupportedError(CgroupError):
    default_message = "cgroups: pids cgroup (v2) not supported on this system"


class PressureTriggerError(CgroupError):
    """A PSI trigger (``<resource>.pressure``) that the kernel refuses or would refuse:
    the message names the kernel's rule (window, stall, kind, or the rule for a caller
    without CAP_SYS_RESOURCE)."""

    default_message = "cgroups: invalid pressure trigger"


class CPUNotSupportedError(CgroupError):
    default_message = "cgroups: cpu cgroup (v2) not supported on this system"


class CgroupDeletedError(CgroupError):
    default_message = "cgroups: cgroup deleted"


class NoCgroupMountDestinationError(CgroupError):
    default_message = "cgroups: cannot find cgroup mount destination"


class InvalidGroupPathError(CgroupError):
    default_message = "cgroups: invalid group path"


class NotCgroup2Error(MountPointNotExistError):
    """A directory the library was asked to use is not on a cgroup2 file system.

    Nothing was opened below it, written, signalled or removed.
    """

    default_message = "cgroups: not a directory of a cgroup2 file system"


class MountPointError(CgroupError):
    """The operation would cross a mount point or act on the root of a mount.

    A file system (or another group) mounted onto a group is never descended into, and
    the root group of a mount (or any mount point) is never frozen, killed, removed or
    emptied, whatever path reached it.
    """

    default_message = "cgroups: refusing to act on a mount point"


class TreeLimitError(CgroupError):
    """A walk of a subtree found more levels or groups than the library's bound."""

    default_message = "cgroups: the subtree is too deep or too large"


class KernelError(CgroupError, OSError):
    """A system call on a cgroup file or directory failed.

    The message names the operation, the file, the value (for a write) and the errno,
    for example ``write "abc" to /sys/fs/cgroup/g/pids.max: [Errno 22] Invalid argument``.
    """

    def __init__(
        self,
        err: int,
        path: str,
        *,
        op: str = "open",
        value: str | None = None,
        hint: str | None = None,
    ) -> None:
        what = f"{op} {value!r} to" if value is not None else op
        name = _errno.errorcode.get(err, str(err))
        message = f"cgroups: {what} {path}: [Errno {err} {name}] {os.strerror(err)}"
        if hint:
            message += f" ({hint})"
        super().__init__(message, errno=err, path=path, value=value)
        self.strerror = os.strerror(err)
        self.filename = path
        self.op = op


# --- delegation: a refusal that names the kernel's permission rule (cgroup2.delegation) ---


class DelegationError(KernelError):
    """The kernel refused an operation for want of permission (``EACCES``/``EPERM``, or
    ``ENOENT`` for a controller missing above), and the message names the rule.

    Raised inside a delegated subtree or outside one, where an unprivileged caller meets
    the kernel's delegation rules (Documentation/admin-guide/cgroup-v2.rst,
    "Delegation"). ``rule`` is a short key: ``"procs-common-ancestor"``,
    ``"controller-not-delegated"``, ``"file-not-delegated"``, ``"directory-not-owned"``,
    ``"chown-needs-root"``. Still a :class:`KernelError` (and an ``OSError``) with the
    errno, the file and the value.
    """

    def __init__(
        self,
        err: int,
        path: str,
        *,
        op: str,
        rule: str,
        hint: str,
        value: str | None = None,
    ) -> None:
        super().__init__(err, path, op=op, value=value, hint=hint)
        self.rule = rule


def ignore_not_exist(err: BaseException | None) -> BaseException | None:
    """Return ``None`` when ``err`` says a file or group does not exist, else ``err``."""
    if err is None or isinstance(err, (FileNotFoundError, CgroupDeletedError)):
        return None
    if getattr(err, "errno", None) == _errno.ENOENT:
        return None
    return err
