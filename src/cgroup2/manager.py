"""Manager: one group of the cgroup2 hierarchy: its lifecycle, processes and settings.

Every method is a short list of kernel operations on the group's files; each file is
opened through :mod:`cgroup2._fs` relative to the group's directory fd. A Manager holds
no descriptor between calls.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from . import _mount, _sig
from ._fs import LEAVE, Dir, signals_held, walk
from ._resolve import _outermost_mount
from .errors import (
    CgroupDeletedError,
    CgroupError,
    CPUNotSupportedError,
    DelegationError,
    FreezerNotSupportedError,
    InvalidGroupPathError,
    InvalidPidError,
    KernelError,
    MemoryNotSupportedError,
    MountPointError,
    NotCgroup2Error,
    PidsNotSupportedError,
)
from .paths import caller_group, clean_path, default_mountpoint, verify_group_path

# resources and stats (the controllers' types, the parsers) are imported where a method
# needs them: loading a group, moving processes, freezing or removing it need neither.
# Nor do they need enum (State, ControllerToggle, StatMask: cgroup2._enums), signal
# (cgroup2._sig), contextlib, select or collections (start-up of `cgroup2 run`).
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from ._enums import ControllerToggle, State
    from ._statmask import StatMask
    from .events import EventStream, PressureEventStream
    from .pressure import PressureTrigger
    from .resources import Resources
    from .self import Limits
    from .stats import Metrics

__all__ = ["ControllerToggle", "Manager", "State"]

SUBTREE_CONTROL = "cgroup.subtree_control"
CONTROLLERS_FILE = "cgroup.controllers"
PROCS = "cgroup.procs"
THREADS = "cgroup.threads"
#: The sub-group of a systemd unit's group that holds the unit's processes when a
#: setting systemd has no property for was written there (cgroup2.systemd.unit).
UNIT_SUBGROUP = "leaf"
EVENTS = "cgroup.events"
FREEZE = "cgroup.freeze"
KILL = "cgroup.kill"
TYPE = "cgroup.type"

_NOT_SUPPORTED: dict[str, type[CgroupError]] = {
    "cpu": CPUNotSupportedError,
    "memory": MemoryNotSupportedError,
    "pids": PidsNotSupportedError,
}


def __getattr__(name: str) -> object:
    """``State`` and ``ControllerToggle``, made on first use (PEP 562; see
    :mod:`cgroup2._enums`)."""
    if name in ("State", "ControllerToggle"):
        from . import _enums

        value = getattr(_enums, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "State", "ControllerToggle"})


def _keyed(data: bytes) -> dict[bytes, bytes]:
    """The ``key value`` lines of a flat keyed file such as ``cgroup.events``."""
    out = {}
    for line in data.split(b"\n"):
        k, _, v = line.partition(b" ")
        if k:
            out[k] = v
    return out


def _write_id(d: Dir, filename: str, pid: int) -> None:
    """Write a pid or tid to ``cgroup.procs``/``cgroup.threads``, retrying EINVAL (a task
    still being set up by fork) for up to about 100 ms."""
    delay = 0.001
    for attempt in range(8):
        try:
            d.write(filename, str(pid))
            return
        except KernelError as e:
            if e.errno != errno.EINVAL or attempt == 7:
                raise
        time.sleep(delay)
        delay *= 2


def _pids(data: bytes, filename: str = "cgroup.procs") -> list[int]:
    """The numbers of ``cgroup.procs`` / ``cgroup.threads``, one a line; a word that is not
    an unsigned decimal of at most 10 digits is an InvalidFormatError naming its line."""
    words = data.split()
    if not words or (b"".join(words).isdigit() and max(map(len, words)) <= 10):
        return list(map(int, words))
    from .controllers._parse import invalid_format

    for lineno, line in enumerate(data.splitlines(), 1):
        if any(not w.isdigit() or len(w) > 10 for w in line.split()):
            raise invalid_format(filename, lineno, line, "expected a process id")
    raise invalid_format(filename, 1, data, "expected a process id")


def _check_controller_names(controllers: Iterable[str]) -> list[str]:
    if isinstance(controllers, (str, bytes)):
        raise CgroupError(
            f"cgroups: invalid controllers {controllers!r}: a sequence of names such as "
            f"['cpu', 'memory'], not one string"
        )
    out = []
    for c in controllers:
        if not isinstance(c, str) or not c or not all(ch.isalnum() or ch == "_" for ch in c):
            raise CgroupError(
                f"cgroups: invalid controller name {c!r}: a name such as 'cpu' or 'memory'"
            )
        out.append(c)
    return out


def _restore_text(filename: str, written: str, old: bytes) -> str | None:
    """What to write back to ``filename`` to undo writing ``written`` over ``old``."""
    text = old.decode("utf-8", "surrogateescape").rstrip("\n")
    lines = text.split("\n")
    if filename in ("io.max", "rdma.max"):
        key = written.split(" ", 1)[0] + " "
        for line in lines:
            if line.startswith(key):
                return line
        if filename == "io.max":
            return key + "rbps=max wbps=max riops=max wiops=max"
        return key + "hca_handle=max hca_object=max"
    if filename in ("io.weight", "io.bfq.weight"):
        key = written.split(" ", 1)[0]
        if ":" in key:  # a device's line: back to its old weight, or to the default
            for line in lines:
                if line.startswith(key + " "):
                    return line
            return key + " default"
        for line in lines:
            if line.startswith("default "):
                return line
        return None
    return text if len(lines) == 1 else None


_CHECKED_MOUNTS: set[str] = set()  # mount points given by a caller and found to be cgroup2
_CLEAN_MOUNTS: set[str] = set()  # mount point strings found to be absolute and clean

#: The prefixes of the kernel's interface files in a group directory: ``cgroup.*`` and
#: ``<controller>.*`` for every controller of cgroup v2 (and of v1, whose names systemd
#: also escapes). A child group with such a name clashes with the file once the
#: controller is enabled in the parent (``cgroup.subtree_control`` then fails with EEXIST).
_INTERFACE_PREFIXES = frozenset(
    {
        "cgroup", "cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "devices",
        "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma",
        "misc", "dmem", "irq", "debug",
    }
)


def _check_new_name(name: str) -> None:
    """Refuse a new group's name that is (or may become) one of the kernel's files."""
    prefix, dot, _ = name.partition(".")
    if dot and prefix in _INTERFACE_PREFIXES:
        raise InvalidGroupPathError(
            f"cgroups: invalid group name {name!r}: '{prefix}.*' names the kernel's "
            f"interface files of a group (a child with that name clashes with the file "
            f"when the {prefix} controller is enabled in its parent); choose another name, "
            f"e.g. '_{name}' as systemd escapes it"
        )


def _check_mountpoint(mountpoint: str) -> None:
    """Refuse a mount point given by the caller that is not a cgroup2 directory."""
    if mountpoint in _CHECKED_MOUNTS:
        return
    try:
        Dir.open(mountpoint, mountpoint).close()
    except CgroupError as e:
        from ._v1 import describe_path  # what it is instead: a v1 mount, a symlink, EACCES...

        raise NotCgroup2Error(
            f"cgroups: invalid mountpoint {mountpoint}: {describe_path(mountpoint, e.errno)} (see "
            f"/proc/self/mountinfo)",
            path=mountpoint,
            errno=e.errno,
        ) from None
    _CHECKED_MOUNTS.add(mountpoint)


def _mkdir_noted(parent: Dir, name: str, created: list[str]) -> bool:
    """mkdir ``name`` in ``parent`` and note it in ``created`` in one step no signal can
    split; False when it exists already."""
    with signals_held():
        return _mkdir_note(parent, name, created)


def _mkdir_note(parent: Dir, name: str, created: list[str]) -> bool:
    """:func:`_mkdir_noted` for a caller that holds the signals."""
    try:
        parent.mkdir(name)
    except KernelError as e:
        if e.errno == errno.EEXIST:
            return False
        raise
    created.append(parent.file_path(name))
    return True


# StatMask and stats.collect, imported on the first stat(): a relative import in the
# method itself costs a name lookup through the import system on every call
_STAT: tuple[type[StatMask], Callable[[Dir, StatMask], Metrics]] | None = None


def _stat_imports() -> tuple[type[StatMask], Callable[[Dir, StatMask], Metrics]]:
    global _STAT
    from ._statmask import StatMask
    from .stats import collect

    _STAT = (StatMask, collect)
    return _STAT


class _StatMethod:
    """``Manager.stat`` at run time: the method is made on its first look-up (and put on
    the class in place of this object), with its default argument ``StatMask.ALL``.
    StatMask is an :class:`enum.Flag`: a default made when the class is made would import
    :mod:`enum` on every use of a Manager, most of which read no statistics (start-up of
    ``cgroup2 run``). The signature, the docstring and the behaviour are those of the
    ``stat`` declared in the class."""

    def __get__(self, obj: Manager | None, owner: type[Manager] | None = None) -> Any:
        from ._statmask import StatMask

        def stat(self: Manager, mask: StatMask = StatMask.ALL) -> Metrics:
            return self._stat(mask)

        stat.__doc__ = """The group's statistics (see :mod:`cgroup2.stats`)."""
        stat.__qualname__ = "Manager.stat"
        del stat.__annotations__["self"]  # as declared: self unannotated
        stat.__module__ = __name__
        Manager.stat = stat  # type: ignore[method-assign]
        return stat if obj is None else stat.__get__(obj, owner)


class Manager:
    """A group of the cgroup2 hierarchy.

    ``mountpoint`` is the cgroup2 mount, ``group`` the group path below it (as in
    ``/proc/<pid>/cgroup``), ``path`` the directory on the file system; ``unit`` is the
    systemd unit that owns the group, ``None`` for a group this process manages itself.
    """

    mountpoint: str
    group: str
    path: str
    unit: str | None

    def __init__(self, mountpoint: str, group: str, *, unit: str | None = None) -> None:
        verify_group_path(group)
        if mountpoint not in _CLEAN_MOUNTS and (
            not isinstance(mountpoint, str)
            or not mountpoint.startswith("/")
            or clean_path(mountpoint) != (mountpoint.rstrip("/") or "/")
            or "\0" in mountpoint
        ):
            raise CgroupError(
                f"cgroups: invalid mountpoint {mountpoint!r}: must be absolute and clean "
                f"(no '.', '..' or '//')"
            )
        if len(_CLEAN_MOUNTS) < 64:
            _CLEAN_MOUNTS.add(mountpoint)
        self.mountpoint = mountpoint.rstrip("/") or "/"
        self.group = group
        self.path = self.mountpoint if group == "/" else self.mountpoint.rstrip("/") + group
        self.unit = unit

    def __repr__(self) -> str:
        unit = f", unit={self.unit!r}" if self.unit is not None else ""
        return f"Manager({self.mountpoint!r}, {self.group!r}{unit})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manager):
            return NotImplemented
        return (self.path, self.unit) == (other.path, other.unit)

    def __hash__(self) -> int:
        return hash((self.path, self.unit))

    # --- lifecycle --------------------------------------------------------------------

    @classmethod
    def load(cls, group: str, *, mountpoint: str | None = None) -> Manager:
        """The existing group ``group``; :class:`CgroupDeletedError` when it is missing,
        :class:`NotCgroup2Error` when ``mountpoint`` or the group's directory is not on a
        cgroup2 file system."""
        m = cls(mountpoint if mountpoint is not None else default_mountpoint(), group)
        if mountpoint is not None:
            _check_mountpoint(m.mountpoint)
        try:
            Dir.open(m.path, m.mountpoint).close()
        except CgroupDeletedError:
            raise CgroupDeletedError(
                f"cgroups: group {group} does not exist (no directory {m.path})",
                errno=errno.ENOENT,
                path=m.path,
            ) from None
        except KernelError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise CgroupDeletedError(
                    f"cgroups: group {group} does not exist ({m.path} is not a group "
                    f"directory)",
                    errno=e.errno,
                    path=m.path,
                ) from None
            raise
        return m

    @classmethod
    def create(
        cls,
        group: str,
        resources: Resources | None = None,
        *,
        mountpoint: str | None = None,
        exist_ok: bool = True,
        parents: bool = True,
    ) -> Manager:
        """Create the group ``group`` (and its missing ancestors) with ``resources``.

        The controllers the resources need are enabled top-down in every ancestor's
        ``cgroup.subtree_control`` where they are not yet; then the values are written.
        On any failure, the directories this call made are removed (deepest first) and
        the error is raised. An existing group is loaded and updated; with
        ``exist_ok=False`` it is left untouched and :class:`KernelError` (errno
        ``EEXIST``) is raised: the group's one ``mkdir`` decides, so of two callers that
        race for a name exactly one makes it. ``parents=False`` refuses a missing parent
        (:class:`CgroupDeletedError`) instead of making it.
        """
        m = cls(mountpoint if mountpoint is not None else default_mountpoint(), group)
        if mountpoint is not None:
            _check_mountpoint(m.mountpoint)
        for name in group.split("/"):
            _check_new_name(name)
        if resources is not None:
            # imported here: a group made without limits needs no resource types (the
            # dataclasses module among them: start-up of `cgroup2 run`)
            from .resources import Resources

            if not isinstance(resources, Resources):
                raise CgroupError(f"cgroups: invalid resources {resources!r}: must be Resources")
            _check_devices_supported(resources)
            if resources.hugetlb:
                _check_page_sizes(resources, m.path)  # before any ancestor is changed
        needed = resources.enabled_controllers() if resources is not None else []
        created: list[str] = []  # what this call made: removed again on any failure
        how = (exist_ok, parents)
        try:
            if group == "/" or not m._create_fast(needed, resources, created, how):
                m._create_tree(needed, resources, created, how)
            return m
        except BaseException:
            # also a signal's exception (KeyboardInterrupt...) at any step after a mkdir
            _remove_created(created, m.mountpoint)
            raise

    def _create_fast(self, needed: list[str], resources: Resources | None,
                     created: list[str], how: tuple[bool, bool] = (True, True)) -> bool:
        """The common case: the parent exists and already enables ``needed``: one mkdir,
        then the values. False (nothing done) sends the caller to the general path."""
        parent_path, _, name = self.path.rpartition("/")
        with signals_held():  # one window for the open, the mkdir and its note
            try:
                parent = Dir.open_held(parent_path or "/", self.mountpoint)
            except CgroupDeletedError:
                if not how[1]:
                    raise self._no_parent() from None
                return False  # a missing ancestor
            try:
                if needed:
                    have = parent.read(SUBTREE_CONTROL).decode().split()
                    if any(c not in have for c in needed):
                        parent.close()
                        return False
                made = _mkdir_note(parent, name, created)
            except BaseException:
                parent.close()
                raise
        with parent:
            if not made:
                self._update_existing(parent, name, resources, how[0])
                return True
            if resources is not None:
                with parent.child(name) as d:
                    self._write_values(d, resources, rollback=False)
        return True

    def _update_existing(
        self, parent: Dir, name: str, resources: Resources | None, exist_ok: bool = True
    ) -> None:
        """create() of a name that exists in ``parent``: update it if it is a group
        directory (EEXIST is also what mkdir says for an interface file such as
        ``cgroup.procs``); refused, untouched, for ``exist_ok=False``."""
        if not exist_ok:
            raise self._exists()
        try:
            st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except OSError as e:
            raise KernelError(e.errno or 0, self.path, op="stat") from None
        if not stat.S_ISDIR(st.st_mode):
            raise CgroupError(
                f"cgroups: cannot create group {self.group!r}: {self.path} exists and is not "
                f"a group directory (a file of the parent group)"
            )
        self.update(resources)

    def _create_tree(self, needed: list[str], resources: Resources | None,
                     created: list[str], how: tuple[bool, bool] = (True, True)) -> None:
        """mkdir -p of the group, enabling ``needed`` in each ancestor, then the values
        (the directories made are noted in ``created``; the caller removes them on error)."""
        names = [] if self.group == "/" else self.group[1:].split("/")
        d = Dir.open(self.mountpoint, self.mountpoint)
        try:
            if needed:
                self._check_available(d, needed)
            existed = True
            for i, name in enumerate(names):
                if needed:
                    _enable(d, needed)
                last = i == len(names) - 1
                if not last and not how[1] and not d.exists(name):
                    raise self._no_parent()
                made = _mkdir_noted(d, name, created)
                existed = not made and last
                nxt = d.child(name)
                d.close()
                d = nxt
            if existed:
                d.close()
                if not how[0]:
                    raise self._exists()
                self.update(resources)
            elif resources is not None:
                self._write_values(d, resources, rollback=False)
        finally:
            d.close()

    def _exists(self) -> KernelError:
        return KernelError(
            errno.EEXIST, self.path, op="mkdir",
            hint=f"group {self.group} exists already; it was left as it is",
        )

    def _no_parent(self) -> CgroupDeletedError:
        parent = self.group.rpartition("/")[0] or "/"
        return CgroupDeletedError(
            f"cgroups: cannot create group {self.group}: its parent group {parent} does "
            f"not exist; create it first",
            errno=errno.ENOENT, path=self.path,
        )

    def _check_available(self, root: Dir, needed: list[str]) -> None:
        """Refuse controllers the kernel does not offer, before anything is changed."""
        have = root.read(CONTROLLERS_FILE).decode().split()
        missing = [c for c in needed if c not in have]
        if missing:  # all named at once, each with where it is (a v1 hierarchy...)
            from ._v1 import unavailable_message

            err = _NOT_SUPPORTED.get(missing[0], CgroupError)
            raise err("cgroups: " + unavailable_message(missing, self.mountpoint, have))

    def new_child(self, name: str, resources: Resources | None = None) -> Manager:
        """Create the child group ``name`` (one path element) below this group."""
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise CgroupError(
                f"cgroups: invalid child name {name!r}: one path element, no '/', '.' or '..'"
            )
        child = name if self.group == "/" else f"{self.group}/{name}"
        verify_group_path("/" + child.lstrip("/"))
        group = "/" + child.lstrip("/")
        return type(self).create(group, resources, mountpoint=self.mountpoint)

    def delegate(self, uid: int, gid: int | None = None) -> None:
        """Hand the group to user ``uid`` (root only): its directory and ``cgroup.procs``,
        ``cgroup.threads``, ``cgroup.subtree_control`` are chowned, nothing else (the
        kernel's delegation contract; see :func:`cgroup2.delegation.delegate`)."""
        from .delegation import delegate

        delegate(self, uid, gid)

    # --- settings ---------------------------------------------------------------------

    def update(self, resources: Resources | None) -> None:
        """Write ``resources`` to the existing group.

        The files are checked to exist first; if the kernel refuses one value, the ones
        written before it are put back as they were and the error is raised.
        """
        if self.unit is not None:
            # A group owned by a systemd unit: SetUnitProperties (cgroup2.systemd.unit).
            from .systemd import unit as _systemd

            _systemd.update(self, resources)
            return
        from .resources import Resources

        if resources is None:
            return
        if not isinstance(resources, Resources):
            raise CgroupError(f"cgroups: invalid resources {resources!r}: must be Resources")
        _check_devices_supported(resources)
        with Dir.open(self.path, self.mountpoint) as d:
            needed = resources.enabled_controllers()
            have = (d.try_read(CONTROLLERS_FILE) or b"").decode().split() if needed else []
            if any(c not in have for c in needed):  # not on the mount? as create() says it
                with Dir.open(self.mountpoint, self.mountpoint) as root:
                    if root.try_read(CONTROLLERS_FILE) is not None:
                        self._check_available(root, needed)
            self._write_values(d, resources, rollback=True)

    def _write_values(self, d: Dir, resources: Resources, *, rollback: bool) -> None:
        values = resources.values()
        _check_files(d, resources, [v.filename for v in values])
        done: list[tuple[str, str, bytes]] = []
        try:
            for v in values:
                old = _read_old(d, v.filename) if rollback else None
                d.write(v.filename, v.value)
                if old is not None:
                    done.append((v.filename, v.value, old))
            if resources.devices is not None:
                _apply_devices(d, resources.devices)
        except BaseException:
            for filename, written, old in reversed(done):
                text = _restore_text(filename, written, old)
                if text is not None:
                    # not contextlib.suppress: contextlib is not imported (start-up)
                    try:  # noqa: SIM105
                        d.write(filename, text)
                    except CgroupError:
                        pass  # best effort: the original error is what matters
            raise

    # --- controllers ------------------------------------------------------------------

    def controllers(self) -> list[str]:
        """The controllers available to this group (``cgroup.controllers``)."""
        with Dir.open(self.path, self.mountpoint) as d:
            return d.read(CONTROLLERS_FILE).decode().split()

    def root_controllers(self) -> list[str]:
        """The controllers of the mount's root group (``cgroup.controllers`` there)."""
        with Dir.open(self.mountpoint, self.mountpoint) as d:
            return d.read(CONTROLLERS_FILE).decode().split()

    def subtree_controllers(self) -> list[str]:
        """The controllers this group enables for its children (``cgroup.subtree_control``)."""
        with Dir.open(self.path, self.mountpoint) as d:
            return d.read(SUBTREE_CONTROL).decode().split()

    def toggle_controllers(self, controllers: Sequence[str], toggle: ControllerToggle) -> None:
        """Enable or disable ``controllers`` in every ancestor's ``cgroup.subtree_control``.

        As in the reference, the group's own subtree_control is not written: enabling
        makes the controllers available to this group (top-down, only where missing);
        disabling removes them from the ancestors (bottom-up, only where enabled).
        """
        from ._enums import ControllerToggle

        names = _check_controller_names(controllers)
        if not isinstance(toggle, ControllerToggle):
            raise CgroupError(f"cgroups: invalid toggle {toggle!r}: a ControllerToggle")
        if not names or self.group == "/":
            return
        parts = self.group[1:].split("/")[:-1]
        dirs = [Dir.open(self.mountpoint, self.mountpoint)]
        try:
            if toggle is ControllerToggle.ENABLE:
                self._check_available(dirs[0], names)
            for name in parts:
                dirs.append(dirs[-1].child(name))
            if toggle is ControllerToggle.ENABLE:
                for d in dirs:
                    _enable(d, names)
            else:
                for d in reversed(dirs):
                    have = d.read(SUBTREE_CONTROL).decode().split()
                    off = [c for c in names if c in have]
                    if off:
                        _write_subtree_control(d, " ".join("-" + c for c in off))
        finally:
            for d in dirs:
                d.close()

    def cgroup_type(self) -> str:
        """The group's type (``cgroup.type``): ``domain``, ``threaded``, ``domain threaded``
        or ``domain invalid``."""
        with Dir.open(self.path, self.mountpoint) as d:
            return d.read(TYPE).decode().strip()

    def set_cgroup_type(self, t: str) -> None:
        """Make the group threaded: the kernel accepts only ``threaded`` in ``cgroup.type``."""
        if t != "threaded":
            raise CgroupError(
                f"cgroups: invalid cgroup type {t!r}: the kernel can only switch a group "
                f"to 'threaded'"
            )
        with Dir.open(self.path, self.mountpoint) as d:
            d.write(TYPE, t)

    # --- processes --------------------------------------------------------------------

    def add_proc(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group (``cgroup.procs``).

        EINVAL, which the kernel returns for a task that is still being set up by fork,
        is retried for up to about 100 ms. For a systemd unit whose processes live in its
        sub-group ``leaf`` (see :meth:`create_systemd`), the process goes there: the
        unit's own group has children with controllers, so it cannot take processes.
        """
        self._add(PROCS, "pid", pid)

    def add_thread(self, tid: int) -> None:
        """Move thread ``tid`` into the (threaded) group (``cgroup.threads``)."""
        self._add(THREADS, "tid", tid)

    def _add(self, filename: str, what: str, pid: int) -> None:
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise InvalidPidError(f"cgroups: {what} must be greater than 0, got {pid!r}")
        with Dir.open(self.path, self.mountpoint) as top:
            if self.unit is not None and filename == PROCS and top.exists(UNIT_SUBGROUP):
                with top.child(UNIT_SUBGROUP) as leaf:
                    _write_id(leaf, filename, pid)
            else:
                _write_id(top, filename, pid)

    def procs(self, recursive: bool = False) -> list[int]:
        """The processes of the group (``cgroup.procs``); with ``recursive``, also those
        of every group below it (depth-first). For a systemd unit whose processes live
        in its sub-group ``leaf``, those are the group's own too."""
        with Dir.open(self.path, self.mountpoint) as d:
            if not recursive:
                own = _pids(d.read(PROCS))
                if self.unit is not None and d.exists(UNIT_SUBGROUP):
                    with d.child(UNIT_SUBGROUP) as leaf:  # the unit's processes
                        own += _pids(leaf.read(PROCS))
                return own
            return _subtree_pids(d)

    def threads(self) -> list[int]:
        """The threads of the group (``cgroup.threads``)."""
        with Dir.open(self.path, self.mountpoint) as d:
            return _pids(d.read(THREADS))

    def move_to(self, dest: Manager) -> None:
        """Move every process of this group and its subgroups into ``dest``.

        A process that exits meanwhile (ESRCH) is skipped; processes forked during the
        move are moved in further rounds.
        """
        if not isinstance(dest, Manager):
            raise CgroupError(f"cgroups: invalid destination {dest!r}: must be a Manager")
        self._refuse_root("move the processes out of")
        if dest.path == self.path or dest.path.startswith(self.path.rstrip("/") + "/"):
            raise CgroupError(
                f"cgroups: cannot move the processes of {self.path} into {dest.path}: the "
                f"destination is inside the group itself; nothing was moved"
            )
        with Dir.open(self.path, self.mountpoint) as src:
            src.refuse_mount_root("move the processes out of")
        with Dir.open(dest.path, dest.mountpoint) as d:
            for _ in range(100):
                pids = self.procs(recursive=True)
                if not pids:
                    return
                for pid in pids:
                    try:
                        d.write(PROCS, str(pid))
                    except KernelError as e:
                        if e.errno != errno.ESRCH:
                            raise
        raise CgroupError(f"cgroups: processes of {self.path} kept appearing while moving them")

    # --- freezer and kill -------------------------------------------------------------

    def state(self) -> State:
        """FROZEN or THAWED from ``cgroup.events``; DELETED when the group is gone;
        UNKNOWN where the kernel has no freezer."""
        from ._enums import State

        try:
            with Dir.open(self.path, self.mountpoint) as d:
                data = d.try_read(EVENTS)
        except CgroupDeletedError:
            return State.DELETED
        if data is None:
            return State.UNKNOWN
        frozen = _keyed(data).get(b"frozen")
        if frozen is None:
            return State.UNKNOWN
        return State.FROZEN if frozen == b"1" else State.THAWED

    def _set_frozen(self, what: str, want: bytes, timeout: float) -> bool:
        """Write ``cgroup.freeze`` and wait for ``cgroup.events`` to follow; on a timeout
        of a freeze, thaw again. False on timeout."""
        _check_timeout(what, timeout)
        self._refuse_root(what)
        with Dir.open(self.path, self.mountpoint) as d:
            d.refuse_mount_root(what)
            if not d.exists(FREEZE):
                if d.gone():
                    raise _deleted(d, FREEZE)
                raise FreezerNotSupportedError(
                    f"cgroups: {self.path} has no {FREEZE} (kernel without the v2 freezer)"
                )
            d.write(FREEZE, want.decode())
            if _wait_event(d, b"frozen", want, timeout):
                return True
            if want == b"1":
                d.write(FREEZE, "0")
        return False

    def freeze(self, timeout: float = 5.0, *, allow_self: bool = False) -> None:
        """Freeze the group; return when ``cgroup.events`` says ``frozen 1``.

        On timeout the group is thawed again and a :class:`CgroupError` is raised. The
        group of the calling process, or an ancestor of it, is refused (the caller would
        freeze itself, and wait for ever) unless ``allow_self=True``.
        """
        _check_timeout("freeze", timeout)
        self._refuse_root("freeze")
        self._refuse_self("freeze", allow_self)
        if self._set_frozen("freeze", b"1", timeout):
            return
        raise CgroupError(
            f"cgroups: freezing {self.path} did not complete within {timeout} s "
            f"(cgroup.events never said 'frozen 1'); the group was thawed again"
        )

    def thaw(self, timeout: float = 5.0) -> None:
        """Thaw the group; return when ``cgroup.events`` says ``frozen 0``."""
        if self._set_frozen("thaw", b"0", timeout):
            return
        raise CgroupError(
            f"cgroups: thawing {self.path} did not complete within {timeout} s "
            f"(an ancestor may be frozen)"
        )

    def kill(self, timeout: float = 10.0, *, allow_self: bool = False) -> None:
        """SIGKILL every process of the group and below; return when it is empty.

        Uses ``cgroup.kill``; where the kernel lacks it: freeze, SIGKILL each process,
        thaw. Waits (poll on ``cgroup.events``) until ``populated 0``. The group of the
        calling process, or an ancestor of it, is refused unless ``allow_self=True``.
        """
        _check_timeout("kill", timeout)
        self._refuse_root("kill")
        self._refuse_self("kill", allow_self)
        with Dir.open(self.path, self.mountpoint) as d:
            d.refuse_mount_root("kill")
            if d.exists(KILL):
                d.write(KILL, "1")
            else:
                self._kill_by_signal(d, timeout)
            if not _wait_event(d, b"populated", b"0", timeout):
                raise CgroupError(
                    f"cgroups: {self.path} still has processes {timeout} s after SIGKILL"
                )

    def _kill_by_signal(self, d: Dir, timeout: float) -> None:
        """SIGKILL each process of the subtree; frozen first where possible, so that none
        can fork.

        Only pids read from the group's own subtree are signalled, never this process or
        PID 1; each is opened as a pidfd and signalled through it only if a second read of
        the subtree still lists it, so a pid reused meanwhile by another process is not hit.
        A caller inside the subtree (``kill(allow_self=True)``) is not frozen, which it
        could never undo, and is killed last, as ``cgroup.kill`` would kill it.
        """
        # (no mutants: one that inverted these lines would SIGKILL the process testing it)
        inside = self._caller_inside() is not None  # pragma: no mutate
        frozen = False
        if not inside:
            try:
                self.freeze(timeout, allow_self=True)  # kill() has checked
                frozen = True
            except FreezerNotSupportedError:
                pass
        try:
            for _ in range(1 if frozen else 100):
                if not _signal_subtree(d, _sig.SIGKILL):
                    break
        finally:
            if frozen:
                self.thaw(timeout)
        if inside:  # pragma: no mutate
            os.kill(os.getpid(), _sig.SIGKILL)  # pragma: no mutate

    def _caller_inside(self) -> str | None:
        """The caller's group, as a group of this mount point, when it is this group or
        below it; else None. The mount point given may be a group directory below a
        cgroup2 mount: the caller's group is then looked up from that mount and compared
        as a directory."""
        top = self.mountpoint
        if not any(m.fstype == "cgroup2" and m.mountpoint == top for m in _mount._mounts()):
            top = _outermost_mount(top) or top
        mine = caller_group(top)
        if mine is None:
            return None
        fs = top if mine == "/" else top.rstrip("/") + mine
        if fs != self.path and not fs.startswith(self.path.rstrip("/") + "/"):
            return None
        return fs[len(self.mountpoint.rstrip("/")):] or "/"

    def _refuse_self(self, op: str, allow_self: bool) -> None:
        """Refuse ``op`` on the caller's own group or an ancestor of it (``allow_self``
        lets it through), before anything is written."""
        if allow_self:
            return
        mine = self._caller_inside()
        if mine is None:
            return
        where = "in it" if mine == self.group else f"in {mine}, below it"
        raise CgroupError(
            f"cgroups: refusing to {op} {self.group}: this process ({os.getpid()}) runs "
            f"{where}, so it would {op} itself (allow_self=True to do it anyway)",
            path=self.path,
        )

    def _refuse_root(self, op: str) -> None:
        """Refuse ``op`` on the root group of the mount, before anything is opened."""
        if self.group == "/":
            raise MountPointError(
                f"cgroups: refusing to {op} the root group {self.path} (it holds every "
                f"process and group of the mount)",
                path=self.path,
            )

    def delete(self, *, kill: bool = False) -> None:
        """Remove the group and every group below it (depth-first).

        A group that still has processes is refused (:class:`CgroupError`) unless
        ``kill`` is true, which kills them first. EBUSY from the kernel is retried with
        a bounded backoff; a group that is already gone is success.
        """
        # --- systemd: a group owned by a systemd unit is removed by delete_systemd().
        self._refuse_root("delete")
        parent_path, _, name = self.path.rpartition("/")
        try:
            parent = Dir.open(parent_path or "/", self.mountpoint)
        except CgroupDeletedError:
            return
        with parent:
            try:
                os.rmdir(name, dir_fd=parent.fd)  # the common case: an empty leaf
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise KernelError(e.errno or 0, self.path, op="rmdir") from None
            try:
                d = parent.child(name)
            except CgroupError as e:
                if isinstance(e, CgroupDeletedError) or e.errno == errno.ENOENT:
                    return
                raise
            with d:
                d.refuse_mount_root("delete")
                # check the whole subtree (mount points, size) before anything is removed
                for _ in walk(d):
                    pass
                if _keyed(d.read(EVENTS)).get(b"populated") == b"1":
                    if not kill:
                        raise CgroupError(
                            f"cgroups: {self.path} still has processes "
                            f"({len(_subtree_pids(d))}); kill them first or "
                            f"delete(kill=True)"
                        )
                    self.kill()
                for kind, at, child, _ in walk(d, leave=True):
                    if kind == LEAVE:
                        _rmdir_retry(at, child)
            _rmdir_retry(parent, name)

    # --- statistics and events (other modules) ----------------------------------------

    if TYPE_CHECKING:  # at run time, _StatMethod makes this method on first use

        def stat(self, mask: StatMask = StatMask.ALL) -> Metrics:
            """The group's statistics (see :mod:`cgroup2.stats`)."""
            return self._stat(mask)

    else:
        stat = _StatMethod()

    def _stat(self, mask: StatMask) -> Metrics:
        StatMask, collect = _STAT or _stat_imports()
        if not isinstance(mask, StatMask):
            raise CgroupError(f"cgroups: invalid stat mask {mask!r}: a StatMask, e.g. StatMask.ALL")
        with Dir.open(self.path, self.mountpoint) as d:
            return collect(d, mask)

    def effective_limits(self) -> Limits:
        """The limits that bind this group: the tightest of each along its visible
        ancestors, with the group that sets it (:func:`cgroup2.limits` for the caller's).
        """
        from .self import effective_limits

        return effective_limits(self)

    def events(self) -> EventStream:
        """An :class:`~cgroup2.events.EventStream` of the group's memory events
        (``memory.events``); close it, or use it as a context manager."""
        from .events import EventStream

        return EventStream(self.path, mountpoint=self.mountpoint)

    def memory_event_fd(self) -> tuple[int, int]:
        """An inotify fd watching ``memory.events``, and its watch descriptor."""
        from .events import memory_event_fd

        return memory_event_fd(self.path, mountpoint=self.mountpoint)

    def pressure(self, *triggers: PressureTrigger) -> PressureEventStream:
        """A :class:`~cgroup2.events.PressureEventStream` of PSI triggers on the group's
        ``<resource>.pressure`` files: a :class:`~cgroup2.pressure.PressureEvent` each time
        one fires, until the group is removed; close it, or use it as a context manager."""
        from .events import PressureEventStream

        return PressureEventStream(self.path, *triggers, mountpoint=self.mountpoint)

    # --- systemd (create_systemd, load_systemd, delete_systemd: the systemd module) ---

    #: What systemd could not do as asked in the last create_systemd/update of this
    #: group (a property it is too old for or refused, a rounded quota...).
    systemd_warnings: tuple[str, ...] = ()
    #: The group belongs to a unit of the calling user's systemd manager (``user=True``).
    systemd_user: bool = False

    @classmethod
    def create_systemd(
        cls,
        slice: str,
        group: str,
        pid: int = -1,
        resources: Resources | None = None,
        *,
        timeout: float = 30.0,
        description: str | None = None,
        user: bool = False,
    ) -> Manager:
        """Start the transient systemd unit ``group`` (a ``.scope`` holding process
        ``pid``, or a ``.slice`` with ``pid=-1``) in ``slice`` (``""``: system.slice),
        delegated, with ``resources`` as unit properties; what systemd has no property
        for goes to the sub-group ``leaf`` of the unit's group. ``timeout``: seconds to
        wait for the start job. ``user``: the calling user's systemd manager
        (``systemd --user``, default slice ``app.slice``) instead of the system's.
        See :func:`cgroup2.systemd.unit.create`."""
        from .systemd import unit as _systemd

        return _systemd.create(
            slice,
            group,
            pid,
            resources,
            timeout=timeout,
            description=description,
            user=user,
        )

    @classmethod
    def load_systemd(cls, slice: str, group: str, *, user: bool = False) -> Manager:
        """The group of the existing systemd unit ``group`` in ``slice`` (``user``: a
        unit of the calling user's systemd manager)."""
        from .systemd import unit as _systemd

        return _systemd.load(slice, group, user=user)

    def delete_systemd(self, *, timeout: float = 30.0, user: bool | None = None) -> None:
        """Stop the group's systemd unit (``StopUnit``) and wait for the job. ``user``:
        ask the calling user's manager (default: the manager the group came from)."""
        from .systemd import unit as _systemd

        if user is not None:
            self.systemd_user = user
        _systemd.delete(self, timeout=timeout)


# --- helpers --------------------------------------------------------------------------


def _read_old(d: Dir, name: str) -> bytes | None:
    """The content of ``name`` before a write, None for a write-only file (memory.reclaim)."""
    try:
        return d.read(name)
    except KernelError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise


def _enable(d: Dir, needed: list[str]) -> None:
    """Write ``+c`` to ``d``'s subtree_control for each needed controller not yet on."""
    have = d.read(SUBTREE_CONTROL).decode().split()
    missing = [c for c in needed if c not in have]
    if missing:
        _write_subtree_control(d, " ".join("+" + c for c in missing))


def _write_subtree_control(d: Dir, value: str) -> None:
    """Write ``cgroup.subtree_control``, with what the kernel's refusals mean."""
    try:
        d.write(SUBTREE_CONTROL, value)
    except KernelError as e:
        hint = {
            errno.EBUSY: (
                "the group has processes of its own: a group that enables controllers for "
                "its children may hold no processes (the kernel's no-internal-processes "
                "rule); move them to a child group first"
                if value.startswith("+") or " +" in value
                else "a child group still has the controller enabled for its own children"
            ),
            errno.EEXIST: (
                "a child group's name is that of a file of the controller (e.g. a child "
                "named 'memory.max'); rename or remove that child"
            ),
            errno.ENOENT: "the controller is not available to this group",
        }.get(e.errno or 0)
        if hint is None or isinstance(e, DelegationError):  # DelegationError names its rule
            raise
        raise KernelError(e.errno or 0, e.path or d.file_path(SUBTREE_CONTROL),
                          op="write", value=value, hint=hint) from None


def _check_files(d: Dir, resources: Resources, filenames: list[str]) -> None:
    """Refuse, before any write, files this group does not have (checked by name)."""
    for e in resources.hugetlb or ():
        if not d.exists(e.filename):
            if d.gone():
                raise _deleted(d, e.filename)
            offered = sorted(
                n.split(".")[1]
                for n in _list_files(d)
                if n.startswith("hugetlb.") and n.endswith(".max") and n.count(".") == 2
            )
            raise CgroupError(
                f"cgroups: invalid hugetlb page size {e.huge_page_size!r}: the kernel "
                f"does not offer it in {d.path} (offers: {', '.join(offered) or 'none'})"
            )
    for name in dict.fromkeys(filenames):
        if not d.exists(name):
            if d.gone():
                raise _deleted(d, name)
            raise CgroupError(
                f"cgroups: {d.path} has no file {name!r} (controller not enabled, or not "
                f"offered by this kernel); nothing was written"
            )


def _deleted(d: Dir, name: str) -> CgroupDeletedError:
    """The error for a group that was removed while its file ``name`` was looked for."""
    return CgroupDeletedError(
        f"cgroups: cgroup deleted: {d.path} was removed (looking for {name})",
        errno=errno.ENOENT,
        path=d.file_path(name),
    )


def _list_files(d: Dir) -> list[str]:
    with os.scandir(d.fd) as it:
        return [e.name for e in it]


def _check_devices_supported(resources: Resources) -> None:
    if resources.devices is None:
        return
    from . import devices

    if getattr(devices, "apply_device_rules", None) is None:
        raise CgroupError("cgroups: device rules are not implemented yet")
    # rules cgroup v1 would refuse (a hole in a wildcard exception) are refused before
    # any directory is made or any value written
    from .devices.state import DeviceState

    DeviceState.of(resources.devices)


def _apply_devices(d: Dir, rules: Sequence[Any]) -> None:
    from . import devices

    apply: Callable[[Dir, Sequence[Any]], object] = devices.apply_device_rules  # type: ignore[attr-defined,unused-ignore]
    apply(d, rules)


_GONE = (errno.ENOENT, errno.ENODEV)


def _check_page_sizes(resources: Resources, path: str) -> None:
    """Refuse huge page sizes the kernel does not have (``/sys/kernel/mm/hugepages``)."""
    from .controllers.hugetlb import page_sizes

    offered = page_sizes()
    if not offered:
        return  # no list to check against: the group's files are checked later
    for e in resources.hugetlb or ():
        if e.huge_page_size not in offered:
            raise CgroupError(
                f"cgroups: invalid hugetlb page size {e.huge_page_size!r}: the kernel does "
                f"not offer it for {path} (offers: {', '.join(offered)}); nothing was written"
            )


def _check_timeout(op: str, timeout: object) -> None:
    """Refuse a timeout that is not a finite number of seconds >= 0, before any write."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 <= timeout < float("inf")
    ):
        raise CgroupError(
            f"cgroups: invalid {op} timeout {timeout!r}: a number of seconds >= 0"
        )


def _subtree_pids(d: Dir) -> list[int]:
    """The pids of ``cgroup.procs`` of ``d`` and of every group below it (iterative; a
    mount point inside refuses, see :func:`cgroup2._fs.walk`).

    A threaded group below ``d`` is skipped: the kernel refuses to read its
    ``cgroup.procs`` (EOPNOTSUPP), and its processes are listed by its threaded domain,
    which is ``d`` or a group between them. ``d`` itself threaded is the kernel's error.
    """
    out: list[int] = []
    for _, g, _, depth in walk(d):
        try:
            out += _pids(g.read(PROCS))
        except CgroupError as e:
            if depth and e.errno == errno.EOPNOTSUPP:
                continue
            # removed after it was opened (an empty group: no pid is lost); while the
            # kernel removes it, its files fail with ENODEV before its path is gone
            if not isinstance(e, CgroupDeletedError) and e.errno not in _GONE:
                raise
    return out


def _signal_subtree(d: Dir, sig: int) -> bool:
    """Send ``sig`` to the processes of ``d``'s subtree; False when there were none."""
    found, _ = signal_subtree(d, sig)
    return found > 0


def signal_subtree(d: Dir, sig: int) -> tuple[int, int]:
    """Send ``sig`` to the processes of ``d``'s subtree: (pids found, pids signalled).

    Never this process or PID 1. Each pid is held as a pidfd, then the subtree is read
    again: only a pid still listed there is signalled (through its pidfd), so a pid that
    was reused by an unrelated process between the reads is not hit. The permission to
    signal each one is checked first (signal 0): if the caller may not signal one of
    them, none is signalled and :class:`KernelError` (``EPERM``) names them; one refused
    later (its credentials changed meanwhile) is named with what was signalled.
    """
    me = os.getpid()
    pids = [p for p in _subtree_pids(d) if p not in (me, 1)]
    if not pids:
        return 0, 0
    held: dict[int, int] = {}
    sent = 0
    try:
        for pid in pids:
            try:
                held[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
        denied, _ = _not_permitted(held, 0)
        if denied:
            raise _signal_refused(d, sig, denied, len(pids), "none was signalled")
        still = set(_subtree_pids(d))
        listed = {p: fd for p, fd in held.items() if p in still}
        denied, ended = _not_permitted(listed, sig)
        sent = len(listed) - len(denied) - ended
        if denied:
            raise _signal_refused(d, sig, denied, len(pids), f"{sent} were signalled")
    finally:
        for fd in held.values():
            os.close(fd)
    return len(pids), sent


def _not_permitted(held: dict[int, int], sig: int) -> tuple[list[int], int]:
    """Send ``sig`` (0: only the permission check) through each pidfd: (the pids this
    process may not signal, how many had ended)."""
    denied: list[int] = []
    ended = 0
    for pid, fd in held.items():
        try:
            _sig.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            ended += 1
        except PermissionError:
            denied.append(pid)
    return denied, ended


def _signal_refused(d: Dir, sig: int, pids: list[int], found: int, done: str) -> KernelError:
    import signal  # here: an error path (it makes enum types)

    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    shown = ", ".join(map(str, pids[:8])) + (", ..." if len(pids) > 8 else "")
    return KernelError(
        errno.EPERM, d.path, op=f"send {name} to the processes of",
        hint=f"this user may not signal {len(pids)} of the {found} processes "
        f"(pid{'s' if len(pids) > 1 else ''} {shown}); {done}",
    )


def _wait_event(d: Dir, key: bytes, want: bytes, timeout: float) -> bool:
    """Wait until ``cgroup.events`` says ``key want``; False on timeout.

    kernfs wakes ``POLLPRI`` on a change of the file; the file is read again from
    offset 0 after each wake-up (no busy loop).
    """
    import select  # here: only a freeze waits

    fd = d.open_fd(EVENTS)
    try:
        p = select.poll()
        p.register(fd, select.POLLPRI | select.POLLERR)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = os.pread(fd, 4096, 0)
            except OSError as e:  # ENODEV: the group was removed while we waited
                raise d._fail(e, EVENTS, "read") from None
            if _keyed(data).get(key) == want:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            p.poll(max(1, int(left * 1000)))
    finally:
        os.close(fd)


def _rmdir_retry(d: Dir, name: str, timeout: float = 5.0) -> None:
    """rmdir ``name`` in ``d``, retrying EBUSY (a group whose tasks are still exiting)
    with backoff; a name that is gone is success."""
    delay = 0.001
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(name, dir_fd=d.fd)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() + delay > deadline:
                raise KernelError(e.errno or 0, d.file_path(name), op="rmdir") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _remove_created(created: list[str], mountpoint: str) -> None:
    """Undo a failed create: remove the directories it made, deepest first."""
    for path in reversed(created):
        parent_path, _, name = path.rpartition("/")
        # the caller's error is raised; a directory that cannot go stays visible
        try:
            with Dir.open(parent_path or "/", mountpoint) as parent:
                _rmdir_retry(parent, name, timeout=1.0)
        except CgroupError:
            pass
