"""How a group path is opened: from the root of its cgroup2 mount, one component at a
time, never across a mount point or through a symlink (:func:`open_below`).

The kernel's ``openat2`` does it in one call where it can be used; else a portable walk
opens each component with ``O_NOFOLLOW`` and compares its mount id with the root's. Used
by :class:`cgroup2._fs.Dir` only; the errors a caller sees are made here and in ``_fs``.
"""

from __future__ import annotations

import errno
import os
import sys

from .errors import CgroupDeletedError, CgroupError, KernelError, MountPointError, NotCgroup2Error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW

_CHECKED: set[str] = set()  # names already found good (the library's own, mostly)


def check_name(name: str) -> None:
    """Refuse a file or directory name that could leave its directory."""
    if type(name) is str and name in _CHECKED:
        return
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\0" in name
    ):
        raise CgroupError(
            f"cgroups: invalid file name {name!r}: a single path element is required "
            f"(no '/', NUL, '.' or '..')"
        )
    if len(_CHECKED) < 4096:
        _CHECKED.add(name)


def _mount_id(fd: int) -> int:
    """The mount id of the file open at ``fd`` (``mnt_id`` of ``/proc/self/fdinfo``)."""
    path = f"/proc/self/fdinfo/{fd}"
    try:
        info = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno or 0, path, op="open") from None
    try:
        data = os.read(info, 4096)
    finally:
        os.close(info)
    for line in data.split(b"\n"):
        if line.startswith(b"mnt_id:"):
            return int(line[7:])
    raise CgroupError(f"cgroups: /proc/self/fdinfo/{fd} has no mnt_id line")


# openat2(2) (Linux 5.6) resolves a relative path below a directory fd in one call and
# refuses, in the kernel, to cross a mount point or to follow a symlink on the way
_SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_RESOLVE = 0x01 | 0x02 | 0x04 | 0x08  # NO_XDEV | NO_MAGICLINKS | NO_SYMLINKS | BENEATH
# [] not tried yet; [None] not usable here (no ctypes, ENOSYS, a seccomp filter): the
# portable walk; [function] the kernel's
_OPENAT2: list[Callable[[int, bytes], int] | None] = []
# Loading openat2 imports ctypes (about 2 ms, more than a command such as `cgroup2 get`
# spends in its walks): it is loaded once ctypes is in the process anyway, or after this
# many walks (a program that opens groups again and again); until then, the portable walk
_WALKS_BEFORE_OPENAT2 = 32
_walks = [0]


def _load_openat2() -> Callable[[int, bytes], int] | None:
    """openat2 through ctypes, or None where it cannot be used (then :func:`open_below`
    walks the components itself)."""
    if os.environ.get("CGROUP2_NO_OPENAT2"):
        return None
    try:
        import ctypes
    except ImportError:  # an interpreter built without ctypes
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    fn.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                   ctypes.c_size_t)
    how = (ctypes.c_uint64 * 3)(_O_DIR, 0, _RESOLVE)  # struct open_how: flags, mode, resolve
    where, size = ctypes.addressof(how), ctypes.sizeof(how)
    get_errno = ctypes.get_errno

    def openat2(dirfd: int, rel: bytes) -> int:
        fd: int = fn(_SYS_OPENAT2, dirfd, rel, where, size)
        if fd < 0:
            err = get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    openat2.how = how  # type: ignore[attr-defined]  # kept alive with the function
    # the kernel answers ENOSYS before 5.6, and a seccomp filter ENOSYS or EPERM
    top = os.open("/", _O_DIR)
    try:
        os.close(openat2(top, b"."))
    except OSError:
        return None
    finally:
        os.close(top)
    return openat2


def _openat2() -> Callable[[int, bytes], int] | None:
    if not _OPENAT2:
        if "ctypes" not in sys.modules and _walks[0] < _WALKS_BEFORE_OPENAT2:
            _walks[0] += 1
            return None
        _OPENAT2.append(_load_openat2())
    return _OPENAT2[0]


def open_below(fd: int, rel: str, where: str) -> int:
    """The fd of the directory ``rel`` (a relative path of names, no ``.`` or ``..``)
    below the directory open at ``fd`` (known as ``where``), for the caller to close.

    Every component is entered without crossing a mount point (of another file system,
    or a bind mount of another group of this one) or following a symlink: in one
    ``openat2`` with ``RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`` where
    the kernel has it, else one ``openat(O_NOFOLLOW)`` per component, each checked to be
    on the mount of ``fd`` (its ``mnt_id``: another file system, or a bind mount of
    another group of this one, is another mount). A mount point is a
    :class:`MountPointError` naming it; other failures are :class:`OSError`.
    """
    names = rel.split("/")
    for name in names:
        check_name(name)
    openat2 = _OPENAT2[0] if _OPENAT2 else _openat2()
    if openat2 is not None:
        try:
            return openat2(fd, rel.encode("utf-8", "surrogateescape"))
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        # which component is the mount point (an error path: one call per prefix)
        for i in range(1, len(names) + 1):
            try:
                os.close(openat2(fd, "/".join(names[:i]).encode("utf-8", "surrogateescape")))
            except OSError as e:
                if e.errno == errno.EXDEV:
                    raise _mount_point(where, names[:i]) from None
                raise
        raise _mount_point(where, names)  # (mounted while looked at)
    return _walk_below(fd, names, where)


def _walk_below(fd: int, names: list[str], where: str) -> int:
    """:func:`open_below` without openat2: a component at a time."""
    mnt = _mount_id(fd)
    cur = fd
    try:
        for i, name in enumerate(names):
            nxt = os.open(name, _O_DIR, dir_fd=cur)
            if cur != fd:
                os.close(cur)
            cur = nxt
            if _mount_id(cur) != mnt:
                raise _mount_point(where, names[: i + 1])
    except BaseException:
        if cur != fd:
            os.close(cur)
        raise
    return cur


def _mount_point(where: str, names: list[str]) -> MountPointError:
    path = f"{where.rstrip('/')}/{'/'.join(names)}"
    return MountPointError(
        f"cgroups: {path} is a mount point (another file system or group is mounted "
        f"there); refusing to go below it",
        path=path,
    )


def _open_error(e: OSError, path: str) -> CgroupError:
    """The error of :meth:`Dir.open` when the group directory ``path`` could not be opened."""
    if e.errno == errno.ENOENT:
        return CgroupDeletedError(
            f"cgroups: {path} does not exist (the group was deleted, or never made)",
            errno=errno.ENOENT,
            path=path,
        )
    if e.errno in (errno.ENOTDIR, errno.ELOOP):
        return KernelError(e.errno, path, op="open directory",
                           hint="not a group directory (a file or a symlink on the way)")
    return KernelError(e.errno or 0, path, op="open directory")


def _outermost_mount(path: str) -> str | None:
    """The outermost cgroup2 mount point of the mount table that holds ``path`` (a
    group bind-mounted below it is then a mount point on the way, never a root)."""
    from . import _mount

    for attempt in (0, 1):
        if attempt:
            _mount.refresh()  # mounted since the table was read?
        best: str | None = None
        for m in _mount._mounts():
            mp = m.mountpoint
            if m.fstype == "cgroup2" and (
                path == mp or mp == "/" or path.startswith(mp + "/")
            ) and (best is None or len(mp) < len(best)):
                best = mp
        if best is not None:
            return best
    return None


def _not_below_mount(path: str) -> CgroupError:
    """Why ``path``, below no cgroup2 mount point, cannot be opened (stat, not open)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return CgroupDeletedError(
            f"cgroups: {path} does not exist (the group was deleted, or never made)",
            errno=errno.ENOENT,
            path=path,
        )
    except OSError as e:
        return KernelError(e.errno or 0, path, op="stat")
    return NotCgroup2Error(
        f"cgroups: {path} is not on a cgroup2 file system (device "
        f"{os.major(st.st_dev)}:{os.minor(st.st_dev)} is not below a cgroup2 mount point "
        f"of /proc/self/mountinfo); nothing below it was touched",
        path=path,
    )
