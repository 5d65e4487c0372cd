"""Sampler: the statistics of many groups, read again and again through held descriptors.

A ``stat()`` opens, reads and closes every file it needs. cgroupfs regenerates a file on
each read at offset 0, so a file kept open can be read again with one ``pread(fd, n, 0)``
and nothing else: measured on the host, 9 core files cost 47 us of kernel time with
open+read+close and 10 us by ``pread`` on held descriptors. :class:`Sampler` keeps, for a
set of groups, the directory and every file the :class:`~cgroup2.stats.StatMask` needs
open (``O_RDONLY | O_CLOEXEC | O_NOFOLLOW``, relative to the group's directory fd), and
:meth:`Sampler.sample` parses them with the same code as ``Manager.stat()``
(:func:`cgroup2.stats.collect`), so the :class:`~cgroup2.stats.Metrics` are the same.

* Files are opened on the first sample that needs them; a file the kernel lacks there
  (a controller that is off, an older kernel) is remembered as absent and not tried again
  until the group's ``cgroup.controllers`` changes (then the group's files are opened
  afresh: the kernel removed and made them).
* A group removed is noticed by ``ENODEV``/``ENOENT`` on the read (or, following a root,
  by the ``IN_DELETE`` of its parent's inotify watch): it is left out of that sample and
  later ones, and its descriptors are closed.
* Following a root (``root=``, ``follow=True``): one inotify fd (non-blocking, read once
  per sample) watches each directory held for ``IN_CREATE``/``IN_DELETE``/``IN_MOVED_*``
  of subdirectories; a new group below the root (to ``depth``) is in the next sample.
  A new group is opened as a walk opens it, by :meth:`~cgroup2._fs.Dir.child`, so a
  group or file system mounted there after the sampler started is a mount point, never
  descended into (nor made an error of the sample): that subtree is skipped and
  named in :attr:`Sampler.skipped` (nothing on the mounted tree is held, and it can be
  unmounted).
  The watch is added through ``/proc/self/fd/<fd>`` of the held directory, so it is the
  directory opened and checked, whatever the path has become. A lost event queue
  (``IN_Q_OVERFLOW``) makes the next sample look at every held directory again.
* Every directory is opened as :mod:`cgroup2._fs` opens them: on cgroup2, children by
  :meth:`~cgroup2._fs.Dir.child` (never across a mount point, never through a symlink).
* ``RLIMIT_NOFILE``: the soft limit is raised (up to the hard limit) when the held
  descriptors need it; when even the hard limit is too low, a :class:`CgroupError` names
  the count needed and the limit, or (``overflow="reopen"``) what does not fit is read by
  open/read/close on each sample: every group is in every sample.
"""

from __future__ import annotations

import errno
import os
import resource
import struct
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from ._fs import _O_READ, Dir, check_name
from ._statmask import StatMask
from .errors import CgroupDeletedError, CgroupError, KernelError, MountPointError

if TYPE_CHECKING:
    from .manager import Manager
    from .stats import Metrics

__all__ = ["Sampler"]

_CHUNK = 1 << 16
_SPARE = 64  # descriptors left free for the rest of the program under the soft limit
_UNHELD = -2  # in _Group.fds: a file read by open/read/close (overflow="reopen")

# inotify (inotify(7)); the binding is cgroup2.events'
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_IN_ISDIR = 0x40000000
_WATCH = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_ONLYDIR
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then name)


class _Group:
    """One group of a sampler: its directory and its files, held open.

    It is what :func:`cgroup2.stats.collect` reads from (the ``Files`` protocol of the
    controllers, and what ``collect`` asks of a directory): ``try_read`` is one ``pread``
    at offset 0 on the held descriptor of the file.
    """

    __slots__ = (
        "absent",
        "children",
        "controllers",
        "d",
        "depth",
        "fds",
        "group",
        "held",
        "owner",
        "path",
        "up",
        "wd",
    )

    def __init__(
        self, owner: Sampler, d: Dir, group: str, depth: int, up: _Group | None = None
    ) -> None:
        self.owner = owner
        self.d = d  # held open, or (past the descriptor budget) fd -1: its dev and inode
        self.held = d.fd >= 0
        self.up = up  # the parent group (to open this one again from)
        self.path = d.path
        self.group = group
        self.depth = depth
        self.fds: dict[str, int] = {}  # file name -> held fd, or -1: absent here
        self.absent = 0  # files found missing (not those known absent): for collect
        self.controllers: bytes | None = None  # cgroup.controllers as last read
        self.children: set[str] = set()  # names of the child groups held
        self.wd = -1  # inotify watch descriptor of the directory

    # -- what collect() reads ------------------------------------------------------------

    def _open(self, name: str) -> int:
        owner = self.owner
        if not owner._reserve(1, file=True):
            check_name(name)  # what try_read then opens without Dir's checks
            self.fds[name] = _UNHELD
            return _UNHELD
        try:
            fd = self.d.open_fd(name)
        except CgroupDeletedError:
            raise
        except KernelError as e:
            if e.errno == errno.ENOENT:
                self.absent += 1
                self.fds[name] = -1
                return -1
            if e.errno in (errno.EMFILE, errno.ENFILE):
                raise owner._limit_error() from None
            raise
        self.fds[name] = fd
        owner._count += 1
        return fd

    def _gone_file(self, name: str, fd: int, e: OSError) -> None:
        """``fd`` of ``name`` failed with ENODEV/ENOENT: the group or the file was removed."""
        del self.fds[name]
        os.close(fd)
        self.owner._count -= 1
        if self.d.gone():
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {self.path} was removed (read {name})",
                errno=e.errno or 0,
                path=self.d.file_path(name),
            )
        self.absent += 1

    def try_read(self, name: str) -> bytes | None:
        """The content of file ``name`` by ``pread`` at offset 0 on its held descriptor
        (opened on first use); ``None`` when the kernel has no such file here."""
        fd = self.fds.get(name)
        if fd is None:
            fd = self._open(name)
        if fd < 0:
            if fd == _UNHELD:  # past the descriptor budget: open, read, close
                try:
                    fd = os.open(name, _O_READ, dir_fd=self.d.fd)
                    try:
                        data = os.read(fd, _CHUNK)
                    finally:
                        os.close(fd)
                except OSError:
                    data = None
                if data is not None and len(data) < _CHUNK:
                    return data
                # an error (reported as Dir reports it), or a file longer than a read
                return self.d.try_read(name)
            return None
        try:
            data = os.pread(fd, _CHUNK, 0)
            if len(data) == _CHUNK:
                parts = [data]
                while chunk := os.pread(fd, _CHUNK, _CHUNK * len(parts)):
                    parts.append(chunk)
                data = b"".join(parts)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                self._gone_file(name, fd, e)
                return None
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                return None  # e.g. a PSI file on a kernel booted with psi=0
            raise KernelError(e.errno or 0, self.d.file_path(name), op="read") from None
        if name == "cgroup.controllers" and data != self.controllers:
            if self.controllers is not None:
                self._reopen_all(keep=name)
            self.controllers = data
        return data

    def read(self, name: str) -> bytes:
        """As :meth:`try_read`, but a missing file is an error (as :meth:`Dir.read`)."""
        data = self.try_read(name)
        if data is None:
            return self.d.read(name)  # raises the error Dir.read raises for it
        return data

    def _reopen_all(self, keep: str) -> None:
        """The controllers changed: the kernel removed or made their files. Close every
        held file but ``keep``; each is opened again on its next read."""
        for name, fd in list(self.fds.items()):
            if name != keep:
                del self.fds[name]
                if fd >= 0:
                    os.close(fd)
                    self.owner._count -= 1

    def exists(self, name: str) -> bool:
        return self.d.exists(name)

    def file_path(self, name: str) -> str:
        return self.d.file_path(name)

    def gone(self, delays: tuple[float, ...] = (0.0, 0.001, 0.004)) -> bool:
        return self.d.gone(delays)

    # -- life ------------------------------------------------------------------------------

    def close(self) -> int:
        """Close every descriptor of the group; how many were closed."""
        n = 0
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            if fd >= 0:
                os.close(fd)
                n += 1
        if self.d.fd >= 0:
            self.d.close()
            n += 1
        return n


def _group_key(group: str) -> tuple[str, ...]:
    return tuple(group.split("/"))


class Sampler:
    """Statistics of many groups, sampled through descriptors kept open.

    ``groups``: group paths (relative to the cgroup2 mount, as ``Manager.group`` gives
    them, e.g. ``"/a/b"``) or :class:`~cgroup2.Manager` objects; ``root``: every group
    under that group (the root included), down to ``depth`` levels below it (``None``:
    all), followed as groups appear and disappear when ``follow`` is true (an inotify
    watch on each directory held; without ``follow`` the set is the groups found when the
    sampler was made, less those removed). Both may be given. ``mask`` says which files
    are read (:class:`~cgroup2.stats.StatMask`); ``mountpoint`` is the cgroup2 mount of
    group paths given as text (default: :func:`cgroup2.default_mountpoint`; a Manager
    brings its own, and every group must be on the same mount).

    :meth:`sample` returns ``{group path: Metrics}``, the same
    :class:`~cgroup2.stats.Metrics` ``Manager.stat(mask)`` gives, reading each file with
    one ``pread`` at offset 0 (the first sample opens them). A group removed is left out
    and its descriptors closed. Directories are opened when the sampler is made (a
    missing explicit group raises :class:`~cgroup2.errors.CgroupDeletedError`).

    Close it (:meth:`close`, or use it as a context manager): it holds one descriptor per
    group directory and one per file read, plus the inotify fd when following.
    ``RLIMIT_NOFILE`` is raised toward the hard limit as needed; a hard limit too low for
    the groups and mask is a :class:`~cgroup2.errors.CgroupError` naming both numbers
    (``overflow="error"``, the default). With ``overflow="reopen"`` nothing is left out:
    the files that do not fit are read as ``stat()`` reads them (open, read, close, each
    sample), and so are the groups whose directory does not fit (opened again from their
    nearest held ancestor, child by child, on each sample; counted by
    :attr:`reopened_count`), also those that appear later. ``spare`` descriptors
    under the limit are never taken (default 64): the rest of the program's (a server's
    connections).

    Bounds (each group left out is named in :attr:`skipped` with the reason, nothing is
    opened below it): ``max_depth`` levels below the root, ``max_groups`` groups held.
    ``depth`` is a view's limit instead: what is below it is not looked at nor counted.
    """

    def __init__(
        self,
        groups: Iterable[str | Manager] = (),
        *,
        root: str | Manager | None = None,
        mask: StatMask = StatMask.ALL,
        depth: int | None = None,
        follow: bool = True,
        mountpoint: str | None = None,
        overflow: Literal["error", "reopen"] = "error",
        spare: int = _SPARE,
        max_depth: int | None = None,
        max_groups: int | None = None,
    ) -> None:
        if isinstance(groups, str):
            raise CgroupError(
                f"cgroups: Sampler({groups!r}): groups is a list of group paths or managers "
                f"(Sampler([{groups!r}]), or root={groups!r} for its whole subtree)"
            )
        if overflow not in ("error", "reopen"):
            raise CgroupError(f"cgroups: invalid overflow {overflow!r}: 'error' or 'reopen'")
        self._overflow_reopen = overflow == "reopen"
        if not isinstance(spare, int) or spare < 0:
            raise CgroupError(f"cgroups: invalid spare {spare!r}: a count of descriptors >= 0")
        self._spare = spare
        if not isinstance(mask, StatMask):
            raise CgroupError(f"cgroups: invalid stat mask {mask!r}: a StatMask, e.g. StatMask.ALL")
        if depth is not None and (not isinstance(depth, int) or depth < 0):
            raise CgroupError(f"cgroups: invalid depth {depth!r}: a count of levels >= 0")
        for what, v in (("max_depth", max_depth), ("max_groups", max_groups)):
            if v is not None and (not isinstance(v, int) or v < (0 if what == "max_depth" else 1)):
                raise CgroupError(f"cgroups: invalid {what} {v!r}: a count >= 0")
        self._max_depth = max_depth
        self._max_groups = max_groups
        self._mask = mask
        self._depth = depth
        self._groups: dict[str, _Group] = {}
        self._order_dirty = False
        self._count = 0  # descriptors held (files and directories; not the inotify fd)
        self._per_group = 1  # the most descriptors one group has needed so far
        self._ino = -1
        self._wds: dict[int, _Group] = {}
        self._lost = False
        self._mount = mountpoint
        self._closed = False
        self._root: str | None = None
        self._started = False  # made: a mount point met from now on is skipped, not raised
        self._skipped: dict[str, str] = {}  # group path -> why it is not sampled
        try:
            if root is not None:
                top = self._resolve(root)
                self._root = top
                if follow:
                    from .events import _inotify_init

                    self._ino = _inotify_init()
                self._add_tree(None, top, 0)
            for g in groups:
                self._add_explicit(g)
            self._started = True
        except BaseException:
            self.close()
            raise

    # -- groups ----------------------------------------------------------------------------

    def _resolve(self, g: str | Manager) -> str:
        """The group path of ``g``; sets (or checks) the sampler's mount."""
        from .manager import Manager
        from .paths import default_mountpoint, verify_group_path

        if isinstance(g, Manager):
            mnt, group = g.mountpoint, g.group
        elif isinstance(g, str):
            verify_group_path(g)
            mnt, group = self._mount or default_mountpoint(), g
        else:
            raise CgroupError(f"cgroups: Sampler: {g!r} is neither a group path nor a Manager")
        if self._mount is None:
            self._mount = mnt
        elif mnt != self._mount:
            raise CgroupError(
                f"cgroups: Sampler: {group} is on {mnt}, the sampler's groups on "
                f"{self._mount}: one mount per sampler"
            )
        return group

    def _fs_path(self, group: str) -> str:
        mnt = self._mount or "/"
        return mnt if group == "/" else mnt.rstrip("/") + group

    def _add_explicit(self, g: str | Manager) -> None:
        group = self._resolve(g)
        if group in self._groups:
            return
        self._reserve(1)
        # (the mount is known from here on: _resolve set it)
        d = Dir.open(self._fs_path(group), self._mount)
        self._count += 1
        self._skipped.pop(group, None)  # below the root past a bound, but asked for
        self._insert(_Group(self, d, group, 0))

    def _insert(self, grp: _Group) -> None:
        if self._groups and _group_key(grp.group) < _group_key(next(reversed(self._groups))):
            self._order_dirty = True
        self._groups[grp.group] = grp

    def _watch(self, grp: _Group, d: Dir) -> None:
        from .events import _add_watch

        # (the watch stays when the descriptor is closed: an unheld group is watched too)
        grp.wd = _add_watch(self._ino, f"/proc/self/fd/{d.fd}", _WATCH, grp.path)
        self._wds[grp.wd] = grp

    def _dir_of(self, grp: _Group) -> tuple[Dir, bool]:
        """The open directory of ``grp`` and whether the caller must close it: the held
        one, or (a group past the descriptor budget) opened again from its nearest held
        ancestor child by child, each through :meth:`Dir.child` (never across a mount
        point)."""
        if grp.held:
            return grp.d, False
        chain: list[_Group] = []
        g: _Group | None = grp
        while g is not None and not g.held:
            chain.append(g)
            g = g.up
        if g is None:  # an unheld root: by its path, checked to be the directory added
            top = chain.pop()
            d = Dir.open(self._fs_path(top.group), self._mount)
            if (d.dev, d.ino) != (top.d.dev, top.d.ino):
                d.close()
                raise CgroupDeletedError(
                    f"cgroups: cgroup deleted: {top.path} was removed",
                    errno=errno.ENOENT,
                    path=top.path,
                )
            owned = True
        else:
            d, owned = g.d, False
        for c in reversed(chain):
            try:
                nd = d.child(c.group.rpartition("/")[2])
            finally:
                if owned:
                    d.close()
            d, owned = nd, True
        return d, owned

    def _is_deleted(self, grp: _Group) -> bool:
        """Whether the directory of ``grp`` is no longer at its path."""
        if grp.held:
            return grp.d.is_deleted()
        try:
            st = os.stat(grp.path, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != (grp.d.dev, grp.d.ino)

    def _add_tree(self, parent: _Group | None, group: str, depth: int) -> None:
        """Open ``group`` (a child of ``parent``, or by path
        when ``parent`` is ``None``) and every group below it to the sampler's depth;
        watch each directory before listing it, so that a group made meanwhile is either
        listed or reported.

        Below the root, a mount point (:class:`MountPointError`) when the sampler is made
        is raised, as a walk raises it; one met later (following) is skipped with its
        subtree and named in :attr:`skipped`."""
        limit = self._depth
        todo: list[tuple[_Group | None, str, int]] = [(parent, group, depth)]
        while todo:
            up, g, dep = todo.pop()
            if g in self._groups:
                continue
            if up is not None:  # the bounds: the group (and its subtree) left out, named
                if self._max_depth is not None and dep > self._max_depth:
                    self._skipped[g] = "max_depth"
                    continue
                if self._max_groups is not None and len(self._groups) >= self._max_groups:
                    self._skipped[g] = "max_groups"
                    continue
            # past the budget with overflow="reopen": opened for now, then read by
            # open/read/close on each sample
            held = self._reserve(1, file=True)
            try:
                if up is None:
                    d = Dir.open(self._fs_path(g), self._mount)
                else:
                    pd, owned = self._dir_of(up)
                    try:
                        d = pd.child(g.rpartition("/")[2])
                    finally:
                        if owned:
                            pd.close()
            except MountPointError:
                if up is None or not self._started:
                    raise
                self._skipped[g] = "mount_point"
                continue
            except CgroupError as e:
                if up is not None and (
                    isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV)
                ):
                    continue  # removed since it was listed
                raise
            try:
                self._skipped.pop(g, None)
                grp = _Group(self, d if held else Dir(-1, d.path, d.dev, d.ino), g, dep, up)
                if held:
                    self._count += 1
                self._insert(grp)
                if up is not None:
                    up.children.add(g.rpartition("/")[2])
                if limit is not None and dep >= limit:
                    continue
                if self._ino >= 0:
                    try:
                        self._watch(grp, d)
                    except CgroupDeletedError:
                        self._drop(grp)
                        continue
                try:
                    entries = [name for name, _ in d.subdir_entries()]
                except CgroupError as e:
                    if isinstance(e, CgroupDeletedError) or e.errno in (
                        errno.ENOENT,
                        errno.ENODEV,
                    ):
                        self._drop(grp)
                        continue
                    raise
            finally:
                if not held:
                    d.close()
            base = "" if g == "/" else g
            for name in sorted(entries, reverse=True):
                todo.append((grp, f"{base}/{name}", dep + 1))

    def _drop(self, grp: _Group) -> None:
        """Forget ``grp`` and the groups held below it; close their descriptors."""
        stack = [grp]
        while stack:
            g = stack.pop()
            if self._groups.get(g.group) is not g:
                continue
            del self._groups[g.group]
            base = "" if g.group == "/" else g.group
            for name in g.children:
                child = self._groups.get(f"{base}/{name}")
                if child is not None:
                    stack.append(child)
            if g.wd >= 0:
                self._wds.pop(g.wd, None)
                if self._ino >= 0:
                    from .events import _c

                    _c().inotify_rm_watch(self._ino, g.wd)  # fails harmlessly if gone
                g.wd = -1
            self._count -= g.close()
            parent = g.group.rpartition("/")[0] or "/"
            up = self._groups.get(parent)
            if up is not None:
                up.children.discard(g.group.rpartition("/")[2])

    def _follow(self) -> None:
        """Read the inotify fd (non-blocking): add the groups made, drop those removed."""
        while True:
            try:
                buf = os.read(self._ino, 65536)
            except BlockingIOError:
                break
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, n = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + n].rstrip(b"\0")
                off += _EVENT.size + n
                if mask & _IN_Q_OVERFLOW:
                    self._lost = True
                    continue
                grp = self._wds.get(wd)
                if grp is None:
                    continue
                if mask & _IN_IGNORED:
                    self._wds.pop(wd, None)
                    grp.wd = -1
                    if self._is_deleted(grp):
                        self._drop(grp)
                    continue
                if not mask & _IN_ISDIR:
                    continue
                child = os.fsdecode(name)
                path = f"{'' if grp.group == '/' else grp.group}/{child}"
                if mask & (_IN_DELETE | _IN_MOVED_FROM):
                    self._skipped.pop(path, None)
                    old = self._groups.get(path)
                    if old is not None:
                        self._drop(old)
                elif mask & (_IN_CREATE | _IN_MOVED_TO) and path not in self._groups:
                    self._add_tree(grp, path, grp.depth + 1)
        if self._lost:
            self._lost = False
            self._rescan()

    def _rescan(self) -> None:
        """Events were lost: drop the held groups that are gone, add those not held, and
        forget the skipped groups removed meanwhile (their ``IN_DELETE`` was lost too)."""
        for grp in list(self._groups.values()):
            if self._groups.get(grp.group) is grp and self._is_deleted(grp):
                self._drop(grp)
        listed: dict[str, list[str]] = {}
        for grp in list(self._groups.values()):
            if grp.wd < 0 or self._groups.get(grp.group) is not grp:
                continue
            try:
                d, owned = self._dir_of(grp)
                try:
                    entries = [name for name, _ in d.subdir_entries()]
                finally:
                    if owned:
                        d.close()
            except CgroupError:
                continue
            listed[grp.group] = entries
            base = "" if grp.group == "/" else grp.group
            for name in entries:
                if name not in grp.children:
                    self._add_tree(grp, f"{base}/{name}", grp.depth + 1)
        for path in list(self._skipped):
            parent, _, name = path.rpartition("/")
            parent = parent or "/"
            # (a skipped group's parent was held when it was skipped: dropped since, the
            # subtree is gone or left out above it)
            if parent not in self._groups or name not in listed.get(parent, (name,)):
                del self._skipped[path]

    # -- descriptors -----------------------------------------------------------------------

    def _limit_error(self) -> CgroupError:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = [g for g in self._groups.values() if g.fds]
        # files a group: the most any group opened so far (the one being opened may not
        # have all of its files yet)
        per = max((sum(fd >= 0 for fd in g.fds.values()) for g in opened), default=0)
        per = max(per, self._per_group - 1)
        need = self._count + (len(self._groups) - len(opened)) * per + self._spare
        return CgroupError(
            f"cgroups: Sampler: {len(self._groups)} groups with mask {self._mask!r} need "
            f"about {need} open descriptors ({per + 1} a group: its directory and its "
            f"files), and RLIMIT_NOFILE allows {hard} (hard limit; soft {soft}): raise the "
            f"hard limit (ulimit -Hn, LimitNOFILE=), sample fewer groups or a smaller mask, "
            f"or pass overflow='reopen'"
        )

    def _reserve(self, n: int, *, file: bool = False) -> bool:
        """Make room under RLIMIT_NOFILE for ``n`` more held descriptors: raise the soft
        limit toward the hard limit (doubling). At the hard limit: ``False`` for a
        ``file`` with ``overflow="reopen"`` (it is then read by open/read/close), else
        the limit error."""
        need = self._count + n + self._spare
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY or need <= soft:
            return True
        want = max(need, 2 * soft)
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if want < need:
            if file and self._overflow_reopen:
                return False
            raise self._limit_error()
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return True

    # -- the public API ----------------------------------------------------------------------

    def sample(self) -> dict[str, Metrics]:
        """``{group path: Metrics}`` of every group held, in path order.

        One ``pread`` at offset 0 per file the mask needs (``open`` only the first time a
        file is read, or after the group's controllers changed); a group found removed is
        left out and its descriptors closed; following a root, groups made since the last
        sample are in this one. Errors other than a removal are raised as ``stat()``
        raises them (:class:`~cgroup2.errors.InvalidFormatError`,
        :class:`~cgroup2.errors.KernelError`).
        """
        from .stats import collect

        if self._closed:
            raise CgroupError("cgroups: Sampler.sample() after close()")
        if self._ino >= 0:
            self._follow()
        if self._order_dirty:
            self._groups = dict(sorted(self._groups.items(), key=lambda kv: _group_key(kv[0])))
            self._order_dirty = False
        out: dict[str, Metrics] = {}
        mask = self._mask
        per = self._per_group
        for grp in list(self._groups.values()):
            if self._groups.get(grp.group) is not grp:
                continue  # dropped meanwhile (below a group found removed)
            if not grp.held:
                self._sample_unheld(grp, out)
                continue
            try:
                out[grp.group] = collect(grp, mask)
            except CgroupDeletedError:
                self._drop(grp)
                continue
            n = len(grp.fds) + 1
            if n > per:
                per = n
        self._per_group = per
        return out

    def _sample_unheld(self, grp: _Group, out: dict[str, Metrics]) -> None:
        """Read a group past the descriptor budget as ``stat()`` does (open, read, close)."""
        from .stats import collect

        try:
            d, owned = self._dir_of(grp)
        except MountPointError:
            self._skipped[grp.group] = "mount_point"
            self._drop(grp)
            return
        except CgroupError as e:
            if isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV):
                self._drop(grp)
                return
            raise
        try:
            out[grp.group] = collect(d, self._mask)
        except CgroupDeletedError:
            self._drop(grp)
        finally:
            if owned:
                d.close()

    def read(self, group: str, name: str) -> bytes | None:
        """Another file of a held group (``cgroup.procs``, ``pids.events`` ...), by
        ``pread`` on a descriptor held from its first read on; ``None`` when the kernel
        has no such file there. :class:`KeyError` for a group not held;
        :class:`~cgroup2.errors.CgroupDeletedError` (and the group dropped) when it was
        removed."""
        grp = self._groups[group]
        try:
            if grp.held:
                return grp.try_read(name)
            d, owned = self._dir_of(grp)
            try:
                return d.try_read(name)
            finally:
                if owned:
                    d.close()
        except CgroupDeletedError:
            self._drop(grp)
            raise

    @property
    def groups(self) -> list[str]:
        """The group paths held now, in path order (following a root: as of the last
        :meth:`sample`)."""
        return sorted(self._groups, key=_group_key)

    @property
    def skipped(self) -> dict[str, str]:
        """Groups below the root not sampled, with why: ``"mount_point"`` (something was
        mounted there after the sampler was made: the subtree is never opened),
        ``"max_depth"`` (more than ``max_depth`` levels below the root), ``"max_groups"``
        (found when ``max_groups`` groups were held). Each names the top of a subtree left
        out; the groups below it are not listed. A group leaves this when it is removed, or
        when it is opened after all."""
        return dict(self._skipped)

    @property
    def depth(self) -> int | None:
        """The levels below the root held (``None``: all)."""
        return self._depth

    @property
    def held_count(self) -> int:
        """Groups whose directory is held open (read by ``pread`` on held files)."""
        return sum(1 for g in self._groups.values() if g.held)

    @property
    def reopened_count(self) -> int:
        """Groups past the descriptor budget (``overflow="reopen"``): their directory and
        files are opened, read and closed on each sample."""
        return sum(1 for g in self._groups.values() if not g.held)

    @property
    def fd_count(self) -> int:
        """The descriptors the sampler holds now: group directories, files, inotify."""
        return self._count + (1 if self._ino >= 0 else 0)

    @property
    def mask(self) -> StatMask:
        """The parts of :class:`~cgroup2.stats.Metrics` sampled."""
        return self._mask

    def close(self) -> None:
        """Close every descriptor held (files, directories, the inotify fd). Idempotent."""
        self._closed = True
        groups, self._groups = self._groups, {}
        for grp in groups.values():
            self._count -= grp.close()
        self._wds.clear()
        ino, self._ino = self._ino, -1
        if ino >= 0:
            os.close(ino)

    def __enter__(self) -> Sampler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def __len__(self) -> int:
        return len(self._groups)

    def __repr__(self) -> str:
        return (
            f"<Sampler {len(self._groups)} groups, mask={self._mask!r}, "
            f"{self.fd_count} descriptors>"
        )
