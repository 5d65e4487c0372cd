"""The one module that opens cgroup files, and the safety rules every caller gets.

Safety: a group directory is opened from the root of its cgroup2 mount (its ``st_dev``
that of a cgroup2 mount of this process's mount table, checked before anything below
it is looked at), one component at a time: no component is a mount point (of another
file system, or a bind mount of another group) or a symlink (:func:`open_below`:
``openat2`` where the kernel has it, else a portable walk). A mount point on the way is
a :class:`MountPointError`, never descended into. :meth:`Dir.refuse_mount_root` stops
the operations that act on a whole subtree (kill, freeze, remove, move out) at the root
of any mount. :func:`walk` is iterative, holds two descriptors whatever the depth, and
ends with :class:`TreeLimitError` past :data:`MAX_DEPTH` levels or :data:`MAX_GROUPS`.

Every file is opened relative to its group's directory fd, with ``O_CLOEXEC`` and
``O_NOFOLLOW``; a name with ``/``, a NUL, or that is ``.`` or ``..`` is refused before any
system call. Reads are binary and whole; writes carry no trailing newline. Failures are
:class:`~cgroup2.errors.KernelError` (operation, file, value, errno) or
:class:`~cgroup2.errors.CgroupDeletedError` when the group itself is gone.
"""

from __future__ import annotations

import errno
import os
import time

from . import _sig
from ._resolve import (
    _CHECKED,
    _O_DIR,
    _mount_id,
    _not_below_mount,
    _open_error,
    _outermost_mount,
    check_name,
    open_below,
)
from .errors import (
    CgroupDeletedError,
    CgroupError,
    KernelError,
    MountPointError,
    NotCgroup2Error,
    TreeLimitError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = [
    "MAX_DEPTH",
    "MAX_GROUPS",
    "Dir",
    "check_name",
    "read_abs",
    "signals_held",
    "walk",
]

_O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_O_WRITE = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_O_TRIGGER = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
_CHUNK = 1 << 16


def _read_fd(fd: int) -> bytes:
    data = os.read(fd, _CHUNK)
    if len(data) < _CHUNK:
        # kernfs returns a whole seq_file in one read when the buffer is large enough;
        # a short read is the end of the file.
        return data
    parts = [data]
    while chunk := os.read(fd, _CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def read_abs(path: str) -> bytes:
    """Read a whole file by absolute path (for ``/proc`` files, not group files)."""
    try:
        fd = os.open(path, _O_READ)
    except OSError as e:
        raise KernelError(e.errno or 0, path, op="open") from None
    try:
        return _read_fd(fd)
    except OSError as e:
        raise KernelError(e.errno or 0, path, op="read") from None
    finally:
        os.close(fd)


#: The deepest a walk goes below its top group (the kernel's default cgroup.max.depth is
#: unlimited; a tree deeper than this is refused with TreeLimitError, not a crash).
MAX_DEPTH = 10_000
#: The most groups one walk visits.
MAX_GROUPS = 1_000_000

#: st_dev of the cgroup2 file systems found so far (from /proc/self/mountinfo).
_cgroup2_devs: set[int] = set()


def _is_cgroup2_dev(dev: int) -> bool:
    if dev in _cgroup2_devs:
        return True
    from . import _mount

    for attempt in (0, 1):
        if attempt:
            _mount.refresh()  # mounted since the table was read?
        for m in _mount._mounts():  # rows: no CgroupMount made (start-up time)
            if m.fstype == "cgroup2":
                _cgroup2_devs.add(m.device)
        if dev in _cgroup2_devs:
            return True
    return False


_HELD = frozenset(
    (_sig.SIGINT, _sig.SIGTERM, _sig.SIGHUP, _sig.SIGQUIT, _sig.SIGALRM, _sig.SIGUSR1,
     _sig.SIGUSR2)
)
# the C function itself (cgroup2._sig): signal.pthread_sigmask turns each mask into a set
# of enums (8 us more a pair of calls)
_sigmask = _sig.pthread_sigmask
_BLOCK = _sig.SIG_BLOCK
_SETMASK = _sig.SIG_SETMASK


def _hold() -> set[int]:
    """Block :data:`_HELD`; the mask before, for ``_sigmask(_SETMASK, old)``.

    CPython runs a pending handler inside ``pthread_sigmask``, after the mask changed: the
    mask is read first (a handler's exception there changes nothing), so that one raised
    by the second call can be undone (else the signals stayed blocked for good).
    """
    old = _sigmask(_BLOCK, ())
    try:
        _sigmask(_BLOCK, _HELD)
    except BaseException:
        _sigmask(_SETMASK, old)
        raise
    return old


class signals_held:  # a context manager used as a function: named as one
    """Hold (block) the signals a program turns into exceptions, for a short window:
    ``with signals_held(): ...``.

    For the steps that must not be split: a ``mkdir`` and the note that it must be undone.
    A signal that arrives meanwhile is delivered when the window ends, where the caller's
    clean-up sees it. (A class rather than a ``contextlib.contextmanager`` generator:
    contextlib is not imported on the command's start.)
    """

    __slots__ = ("_old",)

    def __enter__(self) -> None:
        self._old = _hold()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _sigmask(_SETMASK, self._old)


class Dir:
    """An open group directory: the fd every file operation of the group goes through."""

    __slots__ = ("absent", "dev", "fd", "ino", "path")

    def __init__(self, fd: int, path: str, dev: int = 0, ino: int = 0) -> None:
        self.fd = fd
        self.path = path
        self.dev = dev
        self.ino = ino
        self.absent = 0  # files try_read found missing: a hint for removal checks

    @classmethod
    def open(cls, path: str, root: str | None = None) -> Dir:
        """Open the group directory at the absolute file system ``path``.

        ``path`` is resolved from ``root`` (the cgroup2 mount point it is below, e.g. a
        :class:`~cgroup2.Manager`'s ``mountpoint``; by default the outermost cgroup2 mount
        of the mount table that holds it) one component at a time: no component is a
        mount point or a symlink (:func:`open_below`). A missing directory raises
        :class:`CgroupDeletedError`, a path not on a cgroup2 file system
        :class:`NotCgroup2Error`, a mount point on the way :class:`MountPointError`.

        Signals are held from the ``open`` until the fd belongs to the returned object,
        whose finalizer closes it: an interrupt there cannot leak the descriptor.
        """
        old = _hold()
        try:
            return cls.open_held(path, root)
        finally:
            _sigmask(_SETMASK, old)

    @classmethod
    def open_held(cls, path: str, root: str | None = None) -> Dir:
        """:meth:`open`, for a caller that holds the signals itself (:class:`signals_held`
        around several steps: one pair of ``sigprocmask`` calls instead of one per step)."""
        if root is None:
            root = _outermost_mount(path)
            if root is None:  # through a symlink? The real path, from its mount point
                real = os.path.realpath(path)
                root = _outermost_mount(real)
                if root is None:
                    raise _not_below_mount(path)
                path = real
        else:
            root = root.rstrip("/") or "/"
            if path != root and not path.startswith(root if root == "/" else root + "/"):
                raise CgroupError(f"cgroups: {path} is not below {root}")
        rel = path[len(root):].strip("/")
        try:
            rfd = os.open(root, _O_DIR)
        except FileNotFoundError:
            raise CgroupDeletedError(
                f"cgroups: {path} does not exist (the group was deleted, or never made)",
                errno=errno.ENOENT,
                path=path,
            ) from None
        except OSError as e:
            hint = "not a directory" if e.errno in (errno.ENOTDIR, errno.ELOOP) else None
            raise KernelError(e.errno or 0, root, op="open directory", hint=hint) from None
        fd = rfd
        try:
            st = os.fstat(rfd)
            if not _is_cgroup2_dev(st.st_dev):  # before anything below it is looked at
                raise NotCgroup2Error(
                    f"cgroups: {path if rel else root} is not on a cgroup2 file system "
                    f"(device {os.major(st.st_dev)}:{os.minor(st.st_dev)} of {root} is not a "
                    f"cgroup2 mount in /proc/self/mountinfo); nothing below it was touched",
                    path=path,
                )
            if rel:
                try:
                    fd = open_below(rfd, rel, root)
                except OSError as e:
                    raise _open_error(e, path) from None
                st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        finally:
            if fd != rfd:
                os.close(rfd)
        return cls(fd, path, st.st_dev, st.st_ino)

    def close(self) -> None:
        # forget the fd before closing it: an exception between the two steps (a signal)
        # must not leave a number that a later close would take from another file
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Dir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        fd, self.fd = getattr(self, "fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def file_path(self, name: str) -> str:
        return f"{self.path}/{name}"

    def is_deleted(self) -> bool:
        """True when the directory this fd refers to is no longer at its path."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
            mine = os.fstat(self.fd)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino)

    def gone(self, delays: tuple[float, ...] = (0.0, 0.001, 0.004)) -> bool:
        """True when the group is removed or being removed.

        rmdir of a group removes its files (each controller's, then the core ones) before
        the directory itself: a file that vanished under a directory that is still there
        is looked at again for a few milliseconds before it is called absent. For the
        error paths only (a missing file that is normal, such as a controller's file where
        the controller is off, should use :meth:`is_deleted`).
        """
        for delay in delays:
            if delay:
                time.sleep(delay)
            if self.is_deleted():
                return True
        return False

    def _fail(self, e: OSError, name: str, op: str, value: str | None = None) -> CgroupError:
        err = e.errno or 0
        if (err == errno.ENOENT and self.is_deleted()) or (err == errno.ENODEV and self.gone()):
            return CgroupDeletedError(
                f"cgroups: cgroup deleted: {self.path} was removed ({op} {name})",
                errno=err,
                path=self.file_path(name),
                value=value,
            )
        if err in (errno.EACCES, errno.EPERM, errno.ENOENT) and op != "open":
            # a permission refusal: name the kernel's delegation rule (cgroup2._refuse)
            from ._refuse import explain

            explained = explain(self, name, op, err, value)
            if explained is not None:
                return explained
        return KernelError(err, self.file_path(name), op=op, value=value)

    def _open(self, name: str, flags: int, op: str, value: str | None = None) -> int:
        check_name(name)
        try:
            return os.open(name, flags, dir_fd=self.fd)
        except OSError as e:
            raise self._fail(e, name, op, value) from None

    def read(self, name: str) -> bytes:
        """The whole content of file ``name``."""
        fd = self._open(name, _O_READ, "open")
        try:
            return _read_fd(fd)
        except OSError as e:
            raise self._fail(e, name, "read") from None
        finally:
            os.close(fd)

    def try_read(self, name: str) -> bytes | None:
        """The content of ``name``, or ``None`` when the kernel has no such file here."""
        if type(name) is not str or name not in _CHECKED:  # check_name, without the call
            check_name(name)
        try:
            fd = os.open(name, _O_READ, dir_fd=self.fd)
        except FileNotFoundError as e:
            if self.is_deleted():
                raise self._fail(e, name, "open") from None
            self.absent += 1
            return None
        except OSError as e:
            raise self._fail(e, name, "open") from None
        try:
            data = os.read(fd, _CHUNK)
            # (a short read is the end: kernfs gives a whole seq_file in one read when the
            # buffer is large enough)
            return data if len(data) < _CHUNK else data + _read_fd(fd)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                return None  # e.g. a PSI file on a kernel booted with psi=0
            raise self._fail(e, name, "read") from None
        finally:
            os.close(fd)

    def write(self, name: str, value: str) -> None:
        """Write ``value`` (no newline added) to file ``name`` in one ``write(2)``."""
        data = value.encode()
        fd = self._open(name, _O_WRITE, "open for writing", value)
        try:
            n = os.write(fd, data)
        except OSError as e:
            raise self._fail(e, name, "write", value) from None
        finally:
            os.close(fd)
        if n != len(data):  # (raised inside the try, _fail would call it a plain write)
            raise KernelError(errno.EIO, self.file_path(name), op="short write", value=value)

    def exists(self, name: str) -> bool:
        check_name(name)
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def subdir_entries(self) -> list[tuple[str, int]]:
        """The child groups of this group: (name, inode as ``readdir`` gives it).

        The inode is that of the directory in this file system, also where something is
        mounted onto it: :meth:`child` compares it with what it opened.
        """
        try:
            with os.scandir(self.fd) as it:
                return [(e.name, e.inode()) for e in it if e.is_dir(follow_symlinks=False)]
        except OSError as e:
            raise self._fail(e, ".", "list") from None

    def mkdir(self, name: str, mode: int = 0o755) -> None:
        check_name(name)
        try:
            os.mkdir(name, mode, dir_fd=self.fd)
        except OSError as e:
            raise self._fail(e, name, "mkdir") from None

    def child(self, name: str) -> Dir:
        """Open the child group ``name``: never through a symlink, never across a mount
        (a file system or another group mounted there is a :class:`MountPointError`;
        :func:`open_below`). Signals are held until the fd belongs to the returned
        object, as in :meth:`open`.
        """
        old = _hold()
        try:
            return self._child(name)
        finally:
            _sigmask(_SETMASK, old)

    def _child(self, name: str) -> Dir:
        check_name(name)  # one component: open_below would take "a/b" as a path
        try:
            fd = open_below(self.fd, name, self.path)
        except OSError as e:
            raise self._fail(e, name, "open directory") from None
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        return Dir(fd, self.file_path(name), st.st_dev, st.st_ino)

    def parent(self, path: str) -> Dir:
        """The directory above this one (``..``), known as ``path``.

        Only for a directory reached from its parent by :meth:`child`, which checked
        that no mount lies between them.
        """
        try:
            fd = os.open("..", _O_DIR, dir_fd=self.fd)
        except OSError as e:
            raise self._fail(e, "..", "open directory") from None
        st = os.fstat(fd)
        return Dir(fd, path, st.st_dev, st.st_ino)

    def mount_root(self) -> str | None:
        """Why this directory is the root of a mount (or a mount point), or ``None``.

        Compares the mount of this directory with that of its parent (``..`` climbs out
        of a mount to the directory it is mounted on), and catches the root of the file
        system tree, whose ``..`` is itself.
        """
        try:
            up = os.open("..", _O_DIR, dir_fd=self.fd)
        except OSError as e:
            raise self._fail(e, "..", "open directory") from None
        try:
            st = os.fstat(up)
            if st.st_dev != self.dev:
                return "the root of a cgroup2 mount"
            if st.st_ino == self.ino:
                return "the root of the cgroup2 hierarchy"
            if _mount_id(up) != _mount_id(self.fd):
                return "a mount point (a group is mounted there)"
        finally:
            os.close(up)
        return None

    def refuse_mount_root(self, op: str) -> None:
        """Raise :class:`MountPointError` when this directory is the root of a mount.

        ``op`` names the operation refused (kill, freeze, thaw, delete, move out of).
        """
        why = self.mount_root()
        if why is not None:
            raise MountPointError(
                f"cgroups: refusing to {op} {self.path}: it is {why}, not a group of its "
                f"own (that would reach every process or group below the mount)",
                path=self.path,
            )

    def open_fd(self, name: str) -> int:
        """Open file ``name`` read-only and return its raw fd, which the caller keeps.

        For files that are watched rather than read once (``cgroup.events``,
        ``memory.events``: kernfs wakes ``EPOLLPRI`` on the kept fd when they change);
        the caller reads them again with ``os.pread(fd, n, 0)`` and closes the fd itself.
        Same flags and errors as :meth:`read`.
        """
        return self._open(name, _O_READ, "open")

    def open_trigger_fd(self, name: str) -> int:
        """Open ``name`` (a ``<resource>.pressure`` file) read-write and non-blocking for
        a PSI trigger, and return its raw fd, which the caller keeps and closes.

        The trigger is written to this fd, ``EPOLLPRI`` on it reports the trigger, and
        ``pread`` on it reads the averages (Documentation/accounting/psi.rst).
        """
        return self._open(name, _O_TRIGGER, "open for a trigger")


ENTER = 0  # walk(): a group is entered (before its children)
LEAVE = 1  # walk(): the subtree of a child has been walked (its parent is open)


def _vanished(e: CgroupError) -> bool:
    return isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV)


def _entries(d: Dir) -> list[tuple[str, int]]:
    """The children of ``d`` in reverse name order (``pop()`` gives the first)."""
    try:
        out = d.subdir_entries()
    except CgroupError as e:
        if _vanished(e):
            return []  # removed while walked: it has no children any more
        raise
    out.sort(reverse=True)
    return out


def walk(
    top: Dir,
    *,
    leave: bool = False,
    max_depth: int | None = None,
    max_groups: int | None = None,
) -> Iterator[tuple[int, Dir, str, int]]:
    """Every group of the subtree of ``top``, depth first in name order, without recursion.

    Yields ``(ENTER, d, name, depth)`` for ``top`` (name ``""``, depth 0) and then for each
    group below it before its children; with ``leave``, also ``(LEAVE, parent, name,
    depth)`` once the subtree of the child ``name`` of ``parent`` is done (the parent is
    open there, for ``rmdir``). A yielded :class:`Dir` is valid until the next step; the
    caller does not close it. At most two descriptors are open besides ``top``: the walk
    climbs back with ``..`` and checks it reached the directory it came from.

    A group removed while it is walked is skipped; a mount point inside the subtree raises
    :class:`MountPointError`; more than ``max_depth`` levels or ``max_groups`` groups raise
    :class:`TreeLimitError` (default bounds: :data:`MAX_DEPTH`, :data:`MAX_GROUPS`).
    """
    if max_depth is None:
        max_depth = MAX_DEPTH
    if max_groups is None:
        max_groups = MAX_GROUPS
    yield ENTER, top, "", 0
    stack: list[tuple[int, str, list[tuple[str, int]]]] = [(top.ino, top.path, _entries(top))]
    names: list[str] = []
    cur = top
    count = 0
    try:
        while True:
            pending = stack[-1][2]
            if pending:
                name, _ = pending.pop()
                try:
                    child = cur.child(name)
                except (MountPointError, NotCgroup2Error):
                    raise
                except CgroupError as e:
                    if _vanished(e):
                        continue
                    raise
                depth = len(stack)
                count += 1
                if depth > max_depth or count > max_groups:
                    child.close()
                    what = f"{max_depth} levels" if depth > max_depth else f"{max_groups} groups"
                    raise TreeLimitError(
                        f"cgroups: {top.path} has more than {what} below it (at "
                        f"{child.path[:200]}...); this library walks at most {max_depth} "
                        f"levels and {max_groups} groups",
                        path=top.path,
                    )
                if cur is not top:
                    cur.close()
                cur = child
                names.append(name)
                yield ENTER, cur, name, depth
                stack.append((cur.ino, cur.path, _entries(cur)))
                continue
            stack.pop()
            if not stack:
                return
            name = names.pop()
            up_ino, up_path, _ = stack[-1]
            gone = False
            if len(stack) == 1:
                up = top
            else:
                try:
                    up = _climb(cur, up_path, up_ino)
                except CgroupError as e:
                    if not _vanished(e):
                        raise
                    # the parent was removed while its subtree was walked, and with it its
                    # children not walked yet: go on from the nearest ancestor still there
                    up, gone = _climb_to_survivor(top, stack, names), True
            if cur is not top:
                cur.close()
            cur = up
            if leave and not gone:
                yield LEAVE, cur, name, len(stack) - 1
    finally:
        if cur is not top:
            cur.close()


def _climb_to_survivor(
    top: Dir, stack: list[tuple[int, str, list[tuple[str, int]]]], names: list[str]
) -> Dir:
    """Drop the levels of ``stack`` whose directory is gone; the directory of the new last
    level, opened by its path and checked to be the one walked (``top`` at the bottom)."""
    while True:
        stack.pop()
        names.pop()
        if len(stack) == 1:
            return top
        ino, path, _ = stack[-1]
        try:
            up = Dir.open(path)
        except CgroupError as e:
            if _vanished(e):
                continue
            raise
        if up.ino == ino and up.dev == top.dev:
            return up
        up.close()  # another group of that name now: the one walked is gone too


def _climb(d: Dir, path: str, ino: int) -> Dir:
    """The parent of ``d`` (``..``, or ``path`` where ``..`` fails), checked to be the
    directory ``ino`` the walk came down from."""
    try:
        up = d.parent(path)
    except CgroupError:
        up = Dir.open(path)
    if up.ino != ino or up.dev != d.dev:
        up.close()
        raise MountPointError(
            f"cgroups: {path} changed while its subtree was walked (another directory is "
            f"there now); stopping",
            path=path,
        )
    return up
