"""The inotify binding (``ctypes``) and its constants, for the watcher and the sampler
(whose walker watches directories for ``IN_CREATE``/``IN_DELETE``/``IN_MOVED_*``).

The C library is opened on the first call of :func:`libc`, not at import.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ..errors import CgroupDeletedError, KernelError

__all__ = [
    "EVENT",
    "IN_CHILD_GONE",
    "IN_CLOEXEC",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DONT_FOLLOW",
    "IN_IGNORED",
    "IN_ISDIR",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_NONBLOCK",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "add_watch",
    "inotify_init",
    "libc",
]

IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK
#: The watch of a parent directory that tells of a child's removal.
IN_CHILD_GONE = IN_DELETE | IN_ONLYDIR | IN_DONT_FOLLOW
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then name)

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    """The C library with the three inotify calls typed (opened once)."""
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.inotify_rm_watch.restype = ctypes.c_int
        _libc = lib
    return _libc


def inotify_init() -> int:
    """A new inotify fd, close-on-exec and non-blocking."""
    fd: int = libc().inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
    if fd < 0:
        raise KernelError(ctypes.get_errno(), "inotify", op="inotify_init1")
    return fd


def add_watch(fd: int, target: str, mask: int, path: str) -> int:
    """Watch ``target`` (often a ``/proc/self/fd`` path) for ``mask``; errors name the
    group ``path``, a missing one as :class:`CgroupDeletedError`."""
    wd: int = libc().inotify_add_watch(fd, os.fsencode(target), mask)
    if wd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {path} does not exist", errno=err, path=path
            )
        raise KernelError(err, path, op="inotify_add_watch")
    return wd
