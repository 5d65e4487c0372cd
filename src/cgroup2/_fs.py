"""The one module that opens cgroup files.

Every file is opened relative to its group's directory fd, with ``O_CLOEXEC`` and
``O_NOFOLLOW``; a name with ``/``, a NUL, or that is ``.`` or ``..`` is refused before any
system call. Reads are binary and whole; writes carry no trailing newline. EINTR is
retried by Python itself (PEP 475) for every call used here. Every failure is raised as a
:class:`~cgroup2.errors.KernelError` naming the operation, the file, the value and the
errno, or as :class:`~cgroup2.errors.CgroupDeletedError` when the group itself is gone.
"""

from __future__ import annotations

import errno
import os
import time
from types import TracebackType

from .errors import CgroupDeletedError, CgroupError, KernelError

__all__ = ["Dir", "check_name", "read_abs"]

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_O_WRITE = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_CHUNK = 1 << 16


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


class Dir:
    """An open group directory: the fd every file operation of the group goes through."""

    __slots__ = ("absent", "fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.absent = 0  # files try_read found missing: a hint for removal checks

    @classmethod
    def open(cls, path: str) -> Dir:
        """Open the group directory at the absolute file system ``path``.

        The last element is not followed if it is a symlink; a missing directory raises
        :class:`CgroupDeletedError`.
        """
        try:
            fd = os.open(path, _O_DIR)
        except FileNotFoundError:
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {path} does not exist", errno=errno.ENOENT, path=path
            ) from None
        except OSError as e:
            raise KernelError(e.errno or 0, path, op="open directory") from None
        return cls(fd, path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

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
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)

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

    def read_text(self, name: str) -> str:
        return self.read(name).decode("utf-8", "surrogateescape")

    def try_read(self, name: str) -> bytes | None:
        """The content of ``name``, or ``None`` when the kernel has no such file here."""
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
            return _read_fd(fd)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                return None  # e.g. a PSI file on a kernel booted with psi=0
            raise self._fail(e, name, "read") from None
        finally:
            os.close(fd)

    def write(self, name: str, value: str) -> None:
        """Write ``value`` (no newline added) to file ``name`` in one ``write(2)``."""
        fd = self._open(name, _O_WRITE, "open for writing", value)
        try:
            data = value.encode()
            n = os.write(fd, data)
            if n != len(data):
                raise KernelError(errno.EIO, self.file_path(name), op="short write", value=value)
        except OSError as e:
            raise self._fail(e, name, "write", value) from None
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        check_name(name)
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def subdirs(self) -> list[str]:
        """The names of the child groups (directories) of this group."""
        try:
            with os.scandir(self.fd) as it:
                return [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except OSError as e:
            raise self._fail(e, ".", "list") from None

    def mkdir(self, name: str, mode: int = 0o755) -> None:
        check_name(name)
        try:
            os.mkdir(name, mode, dir_fd=self.fd)
        except OSError as e:
            raise self._fail(e, name, "mkdir") from None

    def rmdir(self, name: str) -> None:
        check_name(name)
        try:
            os.rmdir(name, dir_fd=self.fd)
        except OSError as e:
            raise KernelError(e.errno or 0, self.file_path(name), op="rmdir") from None

    def child(self, name: str) -> Dir:
        """Open the child group ``name`` (never through a symlink)."""
        fd = self._open(name, _O_DIR, "open directory")
        return Dir(fd, self.file_path(name))

    def open_fd(self, name: str) -> int:
        """Open file ``name`` read-only and return its raw fd, which the caller keeps.

        For files that are watched rather than read once (``cgroup.events``,
        ``memory.events``: kernfs wakes ``EPOLLPRI`` on the kept fd when they change);
        the caller reads them again with ``os.pread(fd, n, 0)`` and closes the fd itself.
        Same flags and errors as :meth:`read`.
        """
        return self._open(name, _O_READ, "open")
