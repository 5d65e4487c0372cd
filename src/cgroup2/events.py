"""Group events: ``memory.events`` and ``cgroup.events``, watched with one ``epoll``.

Kernfs (the file system under every cgroup2 mount) wakes a poller of an open
``cgroup.events`` or ``memory.events`` with ``EPOLLPRI | EPOLLERR`` each time the kernel
changes the file (``cgroup_file_notify()``), and keeps the fd ready until the file is read
again. So one ``select.epoll`` can watch any number of groups from one thread: each watched
file is opened once (through :mod:`cgroup2._fs`), registered for ``EPOLLPRI``, and read
again with ``pread(fd, n, 0)`` after each wake. The removal of a group does *not* wake its
kept fds (they only fail with ``ENODEV`` when read), and cgroupfs sends no
``IN_DELETE_SELF`` for a removed group; so the watcher also holds one inotify fd, in the
same epoll, with an ``IN_DELETE`` watch on each *parent* directory (one for all siblings):
a child's removal is a hint to read that child's fd again, and ``ENODEV`` confirms it.

Three ways in:

* :class:`EventWatcher`: one epoll, many groups, added and removed at any time; reports
  changes of ``memory.events`` and of ``cgroup.events`` (``populated``, ``frozen``) and the
  removal of a group, as :class:`Notice` values through :meth:`EventWatcher.poll`, a
  callback, ``async for``, or an :class:`asyncio.Queue` (:meth:`EventWatcher.attach`).
* :class:`EventStream`: one group's ``memory.events``, an iterator (and async iterator) of
  :class:`Event` that ends when the group empties; the reference's ``EventChan()``.
  :class:`CgroupEventStream` is the same for ``cgroup.events`` alone (it needs no
  controller, so it works where the memory controller is absent).
* :func:`memory_event_fd`: an inotify fd that becomes readable when ``memory.events``
  changes; the reference's ``MemoryEventFD()``.

Kernel facts the code relies on (Linux 6.1 and 6.18 checked):

* the kernel notifies a given file at most once per 10 ms
  (``CGROUP_FILE_NOTIFY_MIN_INTV``); a later change in that interval is notified when it
  ends. Two changes that undo each other within it (``populated`` 0 -> 1 -> 0) can
  therefore read as no change at all; the watcher only reports what the file says.
* a fresh fd is ready until its first read, and a read fd is ready again as soon as the
  kernel notifies the file; the watcher reads each file (its first state) and then
  registers it, so no change in between is lost.
* an OOM kill is counted in ``memory.events`` before the killed process exits, so reading
  ``memory.events`` after ``cgroup.events`` says ``populated 0`` sees the count of an OOM
  kill of the last process (the race fixed late in the reference, containerd/cgroups#374).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Self, TypeVar

if TYPE_CHECKING:
    import asyncio
    import threading

    from .pressure import PressureEvent, PressureTrigger

from ._fs import Dir
from .controllers.memory import parse_memory_events as _parse_memory_events_full
from .errors import (
    CgroupDeletedError,
    CgroupError,
    InvalidFormatError,
    KernelError,
    MemoryNotSupportedError,
)

__all__ = [
    "CgroupEventStream",
    "CgroupEvents",
    "Event",
    "EventStream",
    "EventWatcher",
    "Notice",
    "NoticeKind",
    "PressureEventStream",
    "memory_event_fd",
    "parse_cgroup_events",
    "parse_memory_events",
]

MEMORY_EVENTS = "memory.events"
CGROUP_EVENTS = "cgroup.events"

_READ_SIZE = 4096  # both files are well under 200 bytes
_GONE = (errno.ENODEV, errno.ENOENT)  # a read on a kept fd of a removed group: ENODEV


# --- the two files -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """The counts of ``memory.events``: how many times each memory event has happened in
    the group and below it since the group was created (the reference's ``Event``).

    ``low``/``high``/``max``: reclaim under ``memory.low``, throttling over
    ``memory.high``, allocation at ``memory.max``; ``oom``: the group hit its limit and
    the OOM killer was invoked; ``oom_kill``: processes killed by it; ``oom_group_kill``:
    whole-group kills (``memory.oom.group``; 0 before Linux 5.17).
    """

    low: int
    high: int
    max: int
    oom: int
    oom_kill: int
    oom_group_kill: int = 0


@dataclass(frozen=True, slots=True)
class CgroupEvents:
    """``cgroup.events``: ``populated`` (a process is in the group or below it) and
    ``frozen`` (the group is frozen; ``False`` before Linux 5.2, which lacks the key)."""

    populated: bool
    frozen: bool = False


def parse_memory_events(data: bytes) -> Event:
    """Parse the bytes of ``memory.events`` (or ``memory.events.local``).

    Unknown keys (``sock_throttled``, ...) are ignored; a missing one of the five keys
    every kernel with cgroup2 memory has, or a value that is not an unsigned decimal,
    raises :class:`InvalidFormatError` naming the file.
    """
    m = _parse_memory_events_full(data, MEMORY_EVENTS)
    if m.low is None or m.high is None or m.max is None or m.oom is None or m.oom_kill is None:
        raise InvalidFormatError(
            f"cgroups: parsing file with invalid format failed: {MEMORY_EVENTS}: "
            f"one of low, high, max, oom, oom_kill is missing in {data[:200]!r}",
            path=MEMORY_EVENTS,
        )
    return Event(m.low, m.high, m.max, m.oom, m.oom_kill, m.oom_group_kill or 0)


_CG_FAST = {
    b"populated 0\nfrozen 0\n": CgroupEvents(False, False),
    b"populated 1\nfrozen 0\n": CgroupEvents(True, False),
    b"populated 0\nfrozen 1\n": CgroupEvents(False, True),
    b"populated 1\nfrozen 1\n": CgroupEvents(True, True),
}
_BOOL = {b"0": False, b"1": True}


def parse_cgroup_events(data: bytes) -> CgroupEvents:
    """Parse the bytes of ``cgroup.events`` (``populated 0|1``, ``frozen 0|1``).

    Unknown keys are ignored; a missing ``populated`` or a value other than 0/1 for a
    known key raises :class:`InvalidFormatError` naming the file.
    """
    fast = _CG_FAST.get(data)
    if fast is not None:
        return fast
    seen: dict[bytes, bool] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in (b"populated", b"frozen"):
            continue
        v = _BOOL.get(parts[1]) if len(parts) == 2 else None
        if v is None:
            raise InvalidFormatError(
                f"cgroups: parsing file with invalid format failed: {CGROUP_EVENTS} "
                f"line {lineno}: {line[:200]!r}: expected '<key> 0|1'",
                path=CGROUP_EVENTS,
            )
        seen[parts[0]] = v
    if b"populated" not in seen:
        raise InvalidFormatError(
            f"cgroups: parsing file with invalid format failed: {CGROUP_EVENTS}: "
            f"no 'populated' line in {data[:200]!r}",
            path=CGROUP_EVENTS,
        )
    return CgroupEvents(seen[b"populated"], seen.get(b"frozen", False))


# --- the watcher -------------------------------------------------------------------------


class NoticeKind(StrEnum):
    """What a :class:`Notice` reports."""

    ADDED = "added"  # the first state of a group, returned by EventWatcher.add()
    MEMORY = "memory"  # memory.events changed
    CGROUP = "cgroup"  # cgroup.events changed (populated and/or frozen)
    DELETED = "deleted"  # the group was removed; the watcher has dropped it
    PRESSURE = "pressure"  # a pressure trigger fired (Notice.pressure says which)


@dataclass(frozen=True, slots=True)
class Notice:
    """One change of one watched group, as the watcher read it.

    ``cgroup`` and ``memory`` are the group's state after the change (``memory`` is
    ``None`` when ``memory.events`` is not watched; for ``DELETED`` both are the last
    state read). ``time_ns`` is ``time.monotonic_ns()`` when the file was read.

    ``pressure`` is set for the notices of a trigger added with
    :meth:`EventWatcher.add_pressure`: ``PRESSURE`` (it fired; the averages read then) and
    ``DELETED`` (the group was removed, which ends the trigger; the last event read). For
    those, ``cgroup`` and ``memory`` are the group's last state if it is also watched with
    :meth:`EventWatcher.add`, else ``CgroupEvents(False)`` and ``None`` (not read).
    """

    path: str
    kind: NoticeKind
    cgroup: CgroupEvents
    memory: Event | None
    time_ns: int
    pressure: PressureEvent | None = None


class _PWatch:
    """The watcher's record of one pressure trigger (not public): its fd, group, trigger
    and the last event read."""

    __slots__ = ("fd", "last", "path", "trigger")

    def __init__(self, fd: int, path: str, trigger: PressureTrigger, last: PressureEvent) -> None:
        self.fd = fd
        self.path = path
        self.trigger = trigger
        self.last = last


class _Watch:
    """The watcher's record of one group (not public)."""

    __slots__ = ("cfd", "craw", "cstate", "mem", "mfd", "mraw", "name", "path", "wd")

    def __init__(self, path: str) -> None:
        self.path = path
        self.cfd = -1
        self.mfd = -1
        self.wd = -1  # the inotify watch of the parent directory
        self.name = os.fsencode(os.path.basename(path))
        self.craw = b""
        self.mraw = b""
        self.cstate = CgroupEvents(False)
        self.mem: Event | None = None


def _deleted(path: str, name: str) -> CgroupDeletedError:
    return CgroupDeletedError(
        f"cgroups: cgroup deleted: {path} was removed (read {name})",
        errno=errno.ENODEV,
        path=f"{path}/{name}",
    )


def _pread(fd: int, path: str, name: str) -> bytes:
    """Read a kept fd again from offset 0; a removed group raises CgroupDeletedError."""
    try:
        return os.pread(fd, _READ_SIZE, 0)
    except OSError as e:
        if e.errno in _GONE:
            raise _deleted(path, name) from None
        raise KernelError(e.errno or 0, f"{path}/{name}", op="read") from None


class EventWatcher:
    """One ``epoll`` that watches ``cgroup.events`` (and ``memory.events``) of many groups.

    Groups are added and removed at any time (:meth:`add`, :meth:`remove`); each costs one
    open fd per watched file and nothing while it does not change. Changes come out as
    :class:`Notice` values, in the order read, by any of:

    * :meth:`poll` (blocking, with a timeout), which also calls ``callback`` per notice;
    * ``async for notice in watcher`` (``loop.add_reader`` on the epoll fd, no thread);
    * :meth:`attach`, which fills an :class:`asyncio.Queue` from the running loop.

    A group that is removed is reported once as ``DELETED`` and dropped (its fds closed).
    When ``cgroup.events`` says ``populated 0``, ``memory.events`` is read again before
    the ``CGROUP`` notice, so an OOM kill of the last process is reported first.
    The watcher is for one thread; :meth:`close` (or ``with``) closes every descriptor.
    """

    def __init__(
        self,
        *,
        callback: Callable[[Notice], object] | None = None,
        max_events: int = 1024,
        _wakes: bool = False,
    ) -> None:
        if max_events < 1:
            raise CgroupError(f"cgroups: max_events must be >= 1, not {max_events!r}")
        self._callback = callback
        self._max_events = max_events
        # _wakes (for the streams): also report a wake of cgroup.events whose content did
        # not change, as a CGROUP notice with the same state (a change that was undone
        # within the kernel's 10 ms notification interval, e.g. populated 0 -> 1 -> 0).
        self._wakes = _wakes
        self._ep: select.epoll | None = select.epoll()
        self._fds: dict[int, tuple[_Watch, bool]] = {}
        self._watches: dict[str, _Watch] = {}
        # pressure triggers: fd -> record, and (group, trigger) -> record
        self._pfds: dict[int, _PWatch] = {}
        self._ptrig: dict[tuple[str, PressureTrigger], _PWatch] = {}
        # The removal of groups: one inotify fd, IN_DELETE on each parent directory;
        # parent watch -> child name -> group.
        self._ino = _inotify_init()
        self._dirs: dict[int, dict[bytes, _Watch]] = {}
        try:
            self._ep.register(self._ino, select.EPOLLIN)
        except BaseException:
            os.close(self._ino)
            raise
        self._queue: asyncio.Queue[Notice] | None = None
        self._busy: threading.RLock | None = None  # held by a poll in a worker thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- groups --------------------------------------------------------------------------

    def add(
        self, path: str, *, memory: bool | None = None, mountpoint: str | None = None
    ) -> Notice:
        """Watch the group at the absolute file system ``path``; return its first state.

        ``path`` is opened from ``mountpoint`` (the cgroup2 mount it is below; default:
        the outermost one that holds it) without crossing a mount point
        (:meth:`cgroup2._fs.Dir.open`).

        ``memory``: ``None`` watches ``memory.events`` when the group has it (the memory
        controller is enabled in the parent's ``cgroup.subtree_control``), ``True``
        requires it (else :class:`MemoryNotSupportedError`), ``False`` does not watch it.
        The first state is returned (kind ``ADDED``), not passed to the callback.
        A missing group raises :class:`CgroupDeletedError`; a group already watched, a
        relative path or the root group (which has no ``cgroup.events``) raise
        :class:`CgroupError`.
        """
        ep = self._live()
        if not isinstance(path, str) or not os.path.isabs(path):
            raise CgroupError(f"cgroups: watch: {path!r} is not an absolute path")
        path = os.path.normpath(path)
        if path in self._watches:
            raise CgroupError(f"cgroups: watch: {path} is already watched")
        w = _Watch(path)
        try:
            with Dir.open(path, mountpoint) as d:
                # the parent through the group's own fd: the directory just checked
                parent = os.path.dirname(path)
                w.wd = _add_watch(self._ino, f"/proc/self/fd/{d.fd}/..", _IN_CHILD_GONE, parent)
                self._dirs.setdefault(w.wd, {})[w.name] = w
                try:
                    w.cfd = d.open_fd(CGROUP_EVENTS)
                except KernelError as e:
                    if e.errno == errno.ENOENT:
                        raise CgroupError(
                            f"cgroups: watch: {path} has no {CGROUP_EVENTS} "
                            f"(the root group has none; watch a group below it)",
                            errno=e.errno,
                            path=e.path,
                        ) from None
                    raise
                # memory=None: look first (cheaper than a failed open where it is absent)
                if memory or (memory is None and d.exists(MEMORY_EVENTS)):
                    try:
                        w.mfd = d.open_fd(MEMORY_EVENTS)
                    except KernelError as e:
                        if e.errno != errno.ENOENT:
                            raise
                        if memory:
                            raise MemoryNotSupportedError(
                                f"cgroups: memory cgroup (v2) not supported for {path}: "
                                f"it has no {MEMORY_EVENTS} (the memory controller is not "
                                f"enabled in the parent's cgroup.subtree_control, or this "
                                f"mount has no memory controller)",
                                errno=e.errno,
                                path=e.path,
                            ) from None
            # Read first, then register. Kernfs reports a file ready while the kernel's
            # change count differs from the one this fd saw at its last read, so a change
            # between the read and the register makes the fd ready at once; reading
            # first also keeps 10,000 fresh fds (ready until read) off epoll's ready list.
            w.craw = _pread(w.cfd, path, CGROUP_EVENTS)
            w.cstate = parse_cgroup_events(w.craw)
            if w.mfd >= 0:
                w.mraw = _pread(w.mfd, path, MEMORY_EVENTS)
                w.mem = parse_memory_events(w.mraw)
            for fd, name in ((w.cfd, CGROUP_EVENTS), (w.mfd, MEMORY_EVENTS)):
                if fd >= 0:
                    try:
                        ep.register(fd, select.EPOLLPRI)
                    except OSError as e:  # EPERM: not a file that can be polled
                        raise KernelError(
                            e.errno or 0, f"{path}/{name}", op="epoll_ctl(ADD)"
                        ) from None
        except BaseException:
            self._close_fds(w)
            raise
        self._watches[path] = w
        self._fds[w.cfd] = (w, False)
        if w.mfd >= 0:
            self._fds[w.mfd] = (w, True)
        return Notice(path, NoticeKind.ADDED, w.cstate, w.mem, time.monotonic_ns())

    def remove(self, path: str) -> bool:
        """Stop watching ``path`` and close its fds; ``False`` when it was not watched
        (never added, removed before, or dropped after a ``DELETED`` notice)."""
        w = self._watches.pop(os.path.normpath(path), None)
        if w is None:
            return False
        self._drop(w)
        return True

    def add_pressure(
        self, path: str, trigger: PressureTrigger, *, mountpoint: str | None = None
    ) -> PressureEvent:
        """Set a PSI ``trigger`` on the group at the absolute file system ``path`` and
        watch it on this epoll; return the averages read now (not passed to callback).

        Each trigger is its own fd (the kernel allows one trigger per open file), kept
        until :meth:`remove_pressure` or :meth:`close`, costing nothing while it does not
        fire; any number of triggers of any groups can share the watcher, and the group
        need not be watched with :meth:`add`. ``async for`` waits for them in a worker
        thread (:meth:`attach` and :meth:`wait_readable` are refused: a poll of the epoll
        fd from another poller takes a trigger's event). A firing comes out as a ``PRESSURE``
        :class:`Notice`; the removal of the group as one ``DELETED`` notice per trigger
        (``EPOLLERR`` on its fd), which drops it. The same trigger twice on one group, or
        a trigger the kernel refuses, raises :class:`~cgroup2.errors.PressureTriggerError`
        (see :func:`cgroup2.pressure.open_trigger` for the rules).
        """
        from .errors import PressureTriggerError
        from .pressure import open_trigger, read_event

        ep = self._live()
        if self._waiter is not None or self._queue is not None:
            raise CgroupError(
                "cgroups: watch: pressure triggers cannot be added while the watcher is "
                "attached to an event loop (the loop's poll would take their events)"
            )
        if not isinstance(path, str) or not os.path.isabs(path):
            raise CgroupError(f"cgroups: watch: {path!r} is not an absolute path")
        path = os.path.normpath(path)
        if (path, trigger) in self._ptrig:
            raise PressureTriggerError(
                f"cgroups: pressure trigger {trigger} is already set on {path} by this watcher"
            )
        fd = open_trigger(path, trigger, mountpoint=mountpoint)
        try:
            first = read_event(fd, path, trigger)
            try:
                ep.register(fd, select.EPOLLPRI)
            except OSError as e:
                raise KernelError(
                    e.errno or 0, f"{path}/{trigger.filename}", op="epoll_ctl(ADD)"
                ) from None
        except BaseException:
            os.close(fd)
            raise
        p = _PWatch(fd, path, trigger, first)
        self._pfds[fd] = p
        self._ptrig[(path, trigger)] = p
        return first

    def remove_pressure(self, path: str, trigger: PressureTrigger) -> bool:
        """Remove a trigger set by :meth:`add_pressure` (closing its fd); ``False`` when
        it is not set (never added, removed before, or dropped after its ``DELETED``)."""
        p = self._ptrig.pop((os.path.normpath(path), trigger), None)
        if p is None:
            return False
        self._drop_pressure(p)
        return True

    def pressure_triggers(self) -> list[tuple[str, PressureTrigger]]:
        """The triggers set: (group, trigger) pairs."""
        return list(self._ptrig)

    def _drop_pressure(self, p: _PWatch) -> None:
        self._pfds.pop(p.fd, None)
        if p.fd >= 0:
            if self._ep is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._ep.unregister(p.fd)
            os.close(p.fd)
        p.fd = -1

    def _read_pressure(self, p: _PWatch, mask: int, out: list[Notice]) -> None:
        """A trigger's fd woke: EPOLLPRI is a firing, EPOLLERR the group's removal."""
        from .pressure import read_event

        w = self._watches.get(p.path)
        cstate, mem = (w.cstate, w.mem) if w is not None else (CgroupEvents(False), None)
        gone = bool(mask & (select.EPOLLERR | select.EPOLLHUP))
        if not gone:
            try:
                p.last = read_event(p.fd, p.path, p.trigger)
            except CgroupDeletedError:
                gone = True
        if gone:
            if self._ptrig.get((p.path, p.trigger)) is p:
                del self._ptrig[(p.path, p.trigger)]
            self._drop_pressure(p)
            out.append(
                Notice(p.path, NoticeKind.DELETED, cstate, mem, time.monotonic_ns(), p.last)
            )
            return
        out.append(Notice(p.path, NoticeKind.PRESSURE, cstate, mem, time.monotonic_ns(), p.last))

    def state(self, path: str) -> Notice:
        """The last state read of a watched group (kind ``ADDED``; nothing is read now)."""
        w = self._watches.get(os.path.normpath(path))
        if w is None:
            raise CgroupError(f"cgroups: watch: {path} is not watched")
        return Notice(w.path, NoticeKind.ADDED, w.cstate, w.mem, time.monotonic_ns())

    def paths(self) -> list[str]:
        """The watched groups."""
        return list(self._watches)

    def __len__(self) -> int:
        return len(self._watches)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and os.path.normpath(path) in self._watches

    def fileno(self) -> int:
        """The epoll fd: readable when a watched file has changed (for other loops).

        Not for a watcher with pressure triggers: another poller's check of this fd takes
        a trigger's event before :meth:`poll` can read it (see :meth:`add_pressure`)."""
        return self._live().fileno()

    # -- reading -------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> list[Notice]:
        """Wait up to ``timeout`` seconds (``None``: until there is one) for changes and
        return their notices (``[]`` on timeout), calling ``callback`` for each.

        ``timeout=0`` reads what is ready without waiting.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout != timeout
        ):
            raise CgroupError(
                f"cgroups: watch: invalid poll timeout {timeout!r}: seconds as a number or None"
            )
        ep = self._live()
        if self._waiter is not None or self._queue is not None:
            raise CgroupError("cgroups: watch: poll() while the watcher is used by asyncio")
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            wait = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            out = self._read_ready(ep.poll(wait, self._max_events))
            if out or (deadline is not None and time.monotonic() >= deadline):
                break
        if self._callback is not None:
            for n in out:
                self._callback(n)
        return out

    def _read_ready(self, ready: list[tuple[int, int]]) -> list[Notice]:
        out: list[Notice] = []
        fds = self._fds
        removals = False
        for fd, mask in ready:
            entry = fds.get(fd)
            if entry is not None:
                self._read_one(fd, entry[0], entry[1], out, True)
            elif fd == self._ino:
                removals = True  # handled after the files' changes of this batch
            else:
                p = self._pfds.get(fd)
                if p is not None:
                    self._read_pressure(p, mask, out)
            # else: dropped earlier in this batch
        if removals:
            self._read_removals(out)
        return out

    def _read_one(self, fd: int, w: _Watch, is_memory: bool, out: list[Notice], woke: bool) -> None:
        """Read one kept fd again and append what changed (or DELETED) to ``out``."""
        try:
            if is_memory:
                self._read_memory(w, out)
                return
            data = os.pread(fd, _READ_SIZE, 0)
            if data == w.craw:
                if not (woke and self._wakes):
                    return
            else:
                w.craw = data
                w.cstate = parse_cgroup_events(data)
            if w.mfd >= 0 and not w.cstate.populated:
                # The last process is gone: an OOM kill of it is counted by now.
                self._read_memory(w, out)
            out.append(Notice(w.path, NoticeKind.CGROUP, w.cstate, w.mem, time.monotonic_ns()))
        except OSError as e:
            if e.errno not in _GONE:
                name = MEMORY_EVENTS if is_memory else CGROUP_EVENTS
                raise KernelError(e.errno or 0, f"{w.path}/{name}", op="read") from None
            self._deleted(w, out)

    def _read_memory(self, w: _Watch, out: list[Notice]) -> None:
        try:
            data = os.pread(w.mfd, _READ_SIZE, 0)
        except OSError as e:
            if e.errno not in _GONE:
                raise
            # The group is gone, or only its memory.events is (the memory controller was
            # disabled for it): cgroup.events tells which. In the second case memory is no
            # longer watched; the last counts stay in ``mem``.
            cdata = os.pread(w.cfd, _READ_SIZE, 0)  # raises ENODEV when the group is gone
            self._fds.pop(w.mfd, None)
            if self._ep is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._ep.unregister(w.mfd)
            os.close(w.mfd)
            w.mfd = -1
            if cdata != w.craw:  # that read consumed a wake: report its change here
                w.craw = cdata
                w.cstate = parse_cgroup_events(cdata)
                out.append(
                    Notice(w.path, NoticeKind.CGROUP, w.cstate, w.mem, time.monotonic_ns())
                )
            return
        if data != w.mraw:
            w.mraw = data
            w.mem = parse_memory_events(data)
            out.append(Notice(w.path, NoticeKind.MEMORY, w.cstate, w.mem, time.monotonic_ns()))

    def _deleted(self, w: _Watch, out: list[Notice]) -> None:
        if self._watches.get(w.path) is w:
            del self._watches[w.path]
            self._drop(w)
            out.append(Notice(w.path, NoticeKind.DELETED, w.cstate, w.mem, time.monotonic_ns()))

    def _read_removals(self, out: list[Notice]) -> None:
        """Drain the inotify fd: each removed group is reported DELETED and dropped."""
        overflow = False
        while True:
            try:
                buf = os.read(self._ino, 65536)
            except BlockingIOError:
                break
            off = 0
            while off + _EVENT_SIZE <= len(buf):
                wd, mask, _cookie, n = _EVENT.unpack_from(buf, off)
                off += _EVENT_SIZE + n
                if mask & _IN_Q_OVERFLOW:
                    overflow = True
                elif mask & _IN_DELETE:
                    # a child of a watched parent was removed: ours? (ENODEV says so)
                    name = buf[off - n : off].rstrip(b"\0")
                    w = self._dirs.get(wd, {}).get(name)
                    if w is not None:
                        self._read_one(w.cfd, w, False, out, False)
                elif mask & _IN_IGNORED:
                    # the parent itself is gone (so are its children) or was unwatched
                    for w in list(self._dirs.pop(wd, {}).values()):
                        w.wd = -1
                        self._read_one(w.cfd, w, False, out, False)
        if overflow:
            # Events were lost: find the removed groups by reading every kept fd again
            # (which also reports, and so consumes, any change still pending).
            for w in list(self._watches.values()):
                self._read_one(w.cfd, w, False, out, False)
                if w.mfd >= 0:
                    self._read_one(w.mfd, w, True, out, False)

    # -- asyncio -------------------------------------------------------------------------

    async def wait_readable(self) -> None:
        """Wait (in the running loop, no thread) until the epoll fd is readable.

        Refused while pressure triggers are set (the loop's poll of this epoll would take
        their events: see :meth:`add_pressure`); ``async for`` handles them.
        """
        ep = self._live()
        if self._pfds:
            raise CgroupError(
                "cgroups: watch: wait_readable()/attach() with pressure triggers would lose "
                "their events (a poll of the epoll fd takes them); use 'async for'"
            )
        if self._waiter is not None or self._queue is not None:
            raise CgroupError("cgroups: watch: the watcher is already waited on by asyncio")
        import asyncio  # here, not at module level: asyncio costs ~40 ms to import

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = ep.fileno()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        self._waiter, self._loop = fut, loop
        try:
            await fut
        finally:
            self._waiter, self._loop = None, None
            if self._ep is not None:  # close() removed the reader before closing the fd
                loop.remove_reader(fd)

    def __aiter__(self) -> AsyncIterator[Notice]:
        return self._notices()

    async def _notices(self) -> AsyncIterator[Notice]:
        while self._ep is not None:
            notices = self.poll(0)
            if not notices:
                if self._pfds:
                    notices = await self._poll_in_thread()
                else:
                    await self.wait_readable()
                    continue
            for n in notices:
                yield n

    async def _poll_in_thread(self, timeout: float = 0.25) -> list[Notice]:
        """:meth:`poll` in a worker thread, for a watcher with pressure triggers.

        A PSI trigger's ``EPOLLPRI`` is reported once: the kernel's poll of the trigger's
        file takes the event (``psi_trigger_poll()``). An epoll fd inside another poller
        (the loop's own epoll, through ``add_reader``) has its items polled when the outer
        one checks it, which takes the event before this watcher's ``epoll_wait`` sees it.
        So with pressure triggers the wait happens in a thread, on this epoll alone, while
        the loop waits for the result; :meth:`close` waits for that poll to return.
        """
        import asyncio
        import threading

        if self._busy is None:
            self._busy = threading.RLock()
        busy = self._busy

        def run() -> list[Notice]:
            with busy:
                return [] if self._ep is None else self.poll(timeout)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    def attach(self, queue: asyncio.Queue[Notice] | None = None) -> asyncio.Queue[Notice]:
        """Put every notice into ``queue`` (a new one by default) from the running loop.

        Uses ``loop.add_reader`` on the epoll fd (no thread); ``callback`` is still
        called. Must be called from within the loop; undone by :meth:`detach` or
        :meth:`close`. While attached, :meth:`poll` and ``async for`` are refused. A read
        error other than a removal detaches and goes to the loop's exception handler.
        """
        ep = self._live()
        if self._waiter is not None or self._queue is not None:
            raise CgroupError("cgroups: watch: the watcher is already used by asyncio")
        if self._pfds:
            raise CgroupError(
                "cgroups: watch: attach() with pressure triggers would lose their events "
                "(a poll of the epoll fd takes them); use 'async for'"
            )
        import asyncio

        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Notice] = asyncio.Queue() if queue is None else queue
        cb = self._callback

        def ready() -> None:
            if self._ep is None:
                return
            try:
                notices = self._read_ready(self._ep.poll(0, self._max_events))
            except BaseException:
                self.detach()  # a read error (not a removal): stop, do not spin on it
                raise  # to the loop's exception handler
            for n in notices:
                if cb is not None:
                    cb(n)
                q.put_nowait(n)

        loop.add_reader(ep.fileno(), ready)
        self._queue, self._loop = q, loop
        return q

    def detach(self) -> None:
        """Stop filling the queue given by :meth:`attach`."""
        if self._queue is not None and self._loop is not None and self._ep is not None:
            self._loop.remove_reader(self._ep.fileno())
        self._queue = None
        if self._waiter is None:
            self._loop = None

    # -- closing -------------------------------------------------------------------------

    def _live(self) -> select.epoll:
        if self._ep is None:
            raise CgroupError("cgroups: watch: the watcher is closed")
        return self._ep

    def _close_fds(self, w: _Watch) -> None:
        for fd in (w.cfd, w.mfd):
            if fd >= 0:
                if self._ep is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self._ep.unregister(fd)  # fails when never registered (failed add)
                os.close(fd)
        w.cfd = w.mfd = -1
        children = self._dirs.get(w.wd)
        if children is not None and children.get(w.name) is w:
            del children[w.name]
            if not children:  # the last watched child of this parent
                del self._dirs[w.wd]
                # the IN_IGNORED this causes is for a wd no longer known: ignored
                _c().inotify_rm_watch(self._ino, w.wd)
        w.wd = -1

    def _drop(self, w: _Watch) -> None:
        self._fds.pop(w.cfd, None)
        self._fds.pop(w.mfd, None)
        self._close_fds(w)

    def close(self) -> None:
        """Close every kept fd and the epoll; a waiting ``async for`` ends."""
        if self._ep is None:
            return
        if self._busy is not None:
            with self._busy:  # a poll in a worker thread (pressure triggers) returns first
                self._close()
            return
        self._close()

    def _close(self) -> None:
        if self._ep is None:
            return
        self.detach()
        if self._waiter is not None and self._loop is not None:
            self._loop.remove_reader(self._ep.fileno())
            if not self._waiter.done():
                self._waiter.set_result(None)
        for w in self._watches.values():
            self._drop(w)
        for p in list(self._pfds.values()):
            self._drop_pressure(p)
        self._ptrig.clear()
        self._watches.clear()
        self._fds.clear()
        self._dirs.clear()
        ep, self._ep = self._ep, None
        ep.close()
        os.close(self._ino)
        self._ino = -1

    def __enter__(self) -> EventWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A safety net for a watcher that was never closed: release the kept fds.
        if getattr(self, "_ep", None) is not None:
            fds = [*getattr(self, "_fds", ()), *getattr(self, "_pfds", ())]
            for fd in [*fds, getattr(self, "_ino", -1)]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self._pfds.clear()
            self._watches.clear()


# --- the streams -------------------------------------------------------------------------

T = TypeVar("T")


class _Stream(Generic[T]):
    """One group watched by a private :class:`EventWatcher`: items until the group empties.

    The end: ``cgroup.events`` says ``populated 0`` after the stream has seen the group
    populated (when it was created, or later). A wake of ``cgroup.events`` with
    ``populated 0`` unchanged also ends a stream that has not seen the group populated:
    the group was populated and emptied within the kernel's 10 ms notification interval
    (a freeze and thaw of an empty group within 10 ms reads the same way and also ends
    it). A group removed before that raises :class:`CgroupDeletedError`.
    """

    def __init__(self, path: str, *, memory: bool, mountpoint: str | None = None) -> None:
        self._watcher = EventWatcher(_wakes=True)
        try:
            first = self._watcher.add(path, memory=memory, mountpoint=mountpoint)
        except BaseException:
            self._watcher.close()
            raise
        self.path = first.path
        self._items: deque[T] = deque()
        self._state = first.cgroup
        self._seen_populated = first.cgroup.populated
        self._ended = False
        self._error: CgroupError | None = None

    @property
    def ended(self) -> bool:
        """True when the stream has ended (or failed) and every item was taken."""
        return (self._ended or self._error is not None) and not self._items

    @property
    def cgroup(self) -> CgroupEvents:
        """The last ``cgroup.events`` state read."""
        return self._state

    def _on(self, n: Notice) -> None:
        raise NotImplementedError

    def _on_cgroup(self, n: Notice) -> None:
        """Track populated; end at populated 0 after populated (or a 0 -> 1 -> 0 wake)."""
        bounced = n.cgroup == self._state
        self._state = n.cgroup
        if n.cgroup.populated:
            self._seen_populated = True
        elif self._seen_populated or bounced:
            self._finish()

    def _finish(self) -> None:
        self._ended = True
        self._watcher.close()

    def _feed(self, notices: list[Notice]) -> None:
        for n in notices:
            if self._ended or self._error is not None:
                return
            if n.kind is NoticeKind.DELETED:
                self._error = CgroupDeletedError(
                    f"cgroups: cgroup deleted: {self.path} was removed while its events "
                    f"were watched (before it was seen to empty)",
                    errno=errno.ENODEV,
                    path=self.path,
                )
                self._watcher.close()
                return
            self._on(n)

    def _take(self) -> T | None:
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            err, self._error = self._error, None
            self._ended = True
            raise err
        return None

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, waiting up to ``timeout`` seconds (``None``: no limit); ``None``
        on timeout or at the end (see :attr:`ended`). Raises as iteration does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = self._take()
            if item is not None or self._ended:
                return item
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._feed(self._watcher.poll(left))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self.get()
        if item is None:
            raise StopIteration
        return item

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            item = self._take()
            if item is not None:
                return item
            if self._ended:
                raise StopAsyncIteration
            notices = self._watcher.poll(0)
            if notices:
                self._feed(notices)
            else:
                await self._watcher.wait_readable()

    def close(self) -> None:
        """Close the stream's descriptors (the epoll and the kept file fds)."""
        self._watcher.close()
        self._ended = True
        self._items.clear()
        self._error = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()



class EventStream(_Stream[Event]):
    """The memory events of one group: an :class:`Event` each time ``memory.events``
    changes, until the group empties (the reference's ``EventChan()``).

    An iterator, an async iterator (``loop.add_reader``, no thread) and a (async) context
    manager that closes its descriptors; :meth:`get` takes one with a timeout. The counts
    are the file's totals, not differences. The stream ends after ``cgroup.events`` says
    ``populated 0`` once the group has been populated (so it can be made before the first
    process is started), having read ``memory.events`` once more so that an OOM kill of the
    last process is yielded first. A group removed before that raises
    :class:`CgroupDeletedError`.

    ``memory.events`` is required: a group without it (the memory controller not enabled
    for it, or a mount without one) raises :class:`MemoryNotSupportedError` here; use
    :class:`CgroupEventStream` or :class:`EventWatcher` to follow ``cgroup.events`` alone.
    ``initial=True`` yields the counts at the start first.
    """

    def __init__(
        self, path: str, *, initial: bool = False, mountpoint: str | None = None
    ) -> None:
        super().__init__(path, memory=True, mountpoint=mountpoint)
        self._last = self._watcher.state(self.path).memory
        if initial and self._last is not None:
            self._items.append(self._last)

    def _on(self, n: Notice) -> None:
        if n.memory is not None and n.memory != self._last:
            self._last = n.memory
            self._items.append(n.memory)
        if n.kind is NoticeKind.CGROUP:
            self._on_cgroup(n)


class CgroupEventStream(_Stream[CgroupEvents]):
    """The ``cgroup.events`` of one group: a :class:`CgroupEvents` each time
    ``populated`` or ``frozen`` changes, ending after the ``populated=False`` that follows
    the group having been populated. Needs no controller. Same protocols as
    :class:`EventStream`; ``initial=True`` yields the state at the start first.
    """

    def __init__(
        self, path: str, *, initial: bool = False, mountpoint: str | None = None
    ) -> None:
        super().__init__(path, memory=False, mountpoint=mountpoint)
        if initial:
            self._items.append(self._state)

    def _on(self, n: Notice) -> None:
        if n.kind is not NoticeKind.CGROUP:
            return
        if n.cgroup != self._state:
            self._items.append(n.cgroup)
        elif not n.cgroup.populated and not self._seen_populated:
            # populated 0 -> 1 -> 0 within one notification interval: show both states.
            self._items.append(CgroupEvents(True, n.cgroup.frozen))
            self._items.append(n.cgroup)
        self._on_cgroup(n)


class PressureEventStream(_Stream["PressureEvent"]):
    """PSI triggers of one group: a :class:`~cgroup2.pressure.PressureEvent` each time
    one of ``triggers`` fires (the averages read from its file then), until the group is
    removed (which ends the stream: ``EPOLLERR`` on the trigger fds) or :meth:`close`.

    An empty group does not end it (a group can be filled again; an empty one simply has
    no pressure). Same protocols as :class:`EventStream`: iterator, async iterator,
    (async) context manager, :meth:`get` with a timeout. Each trigger is one fd on the
    stream's private :class:`EventWatcher`; the triggers are checked, and refusals
    explained, as by :meth:`EventWatcher.add_pressure`. ``initial=True`` yields each
    trigger's averages at the start first.
    """

    def __init__(
        self,
        path: str,
        *triggers: PressureTrigger,
        initial: bool = False,
        mountpoint: str | None = None,
    ) -> None:
        if not triggers:
            raise CgroupError("cgroups: pressure stream: at least one trigger is needed")
        self._watcher = EventWatcher()
        first: list[PressureEvent] = []
        try:
            for t in triggers:
                first.append(self._watcher.add_pressure(path, t, mountpoint=mountpoint))
        except BaseException:
            self._watcher.close()
            raise
        self.path = os.path.normpath(path)
        self.triggers = tuple(triggers)
        self._items: deque[PressureEvent] = deque(first if initial else ())
        self._state = CgroupEvents(False)
        self._seen_populated = False
        self._ended = False
        self._error: CgroupError | None = None

    def _feed(self, notices: list[Notice]) -> None:
        for n in notices:
            if self._ended:
                return
            if n.kind is NoticeKind.PRESSURE and n.pressure is not None:
                self._items.append(n.pressure)
            elif n.kind is NoticeKind.DELETED and not self._watcher.pressure_triggers():
                self._finish()  # the group is gone: every trigger has ended

    def _on(self, n: Notice) -> None:  # not used: _feed handles every notice
        raise NotImplementedError

    async def __anext__(self) -> PressureEvent:
        # the wait runs in a worker thread: see EventWatcher._poll_in_thread
        while True:
            item = self._take()
            if item is not None:
                return item
            if self._ended:
                raise StopAsyncIteration
            self._feed(await self._watcher._poll_in_thread())


# --- inotify -------------------------------------------------------------------------------

IN_MODIFY = 0x00000002
IN_DONT_FOLLOW = 0x02000000
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK

_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
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


_IN_DELETE = 0x00000200
_IN_IGNORED = 0x00008000
_IN_Q_OVERFLOW = 0x00004000
_IN_ONLYDIR = 0x01000000
_IN_CHILD_GONE = _IN_DELETE | _IN_ONLYDIR | IN_DONT_FOLLOW
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then name)
_EVENT_SIZE = _EVENT.size


def _inotify_init() -> int:
    fd: int = _c().inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
    if fd < 0:
        raise KernelError(ctypes.get_errno(), "inotify", op="inotify_init1")
    return fd


def _add_watch(fd: int, target: str, mask: int, path: str) -> int:
    wd: int = _c().inotify_add_watch(fd, os.fsencode(target), mask)
    if wd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {path} does not exist", errno=err, path=path
            )
        raise KernelError(err, path, op="inotify_add_watch")
    return wd


def memory_event_fd(path: str, *, mountpoint: str | None = None) -> tuple[int, int]:
    """An inotify fd that becomes readable when ``memory.events`` of the group at the
    absolute file system ``path`` changes, and the watch descriptor (the reference's
    ``MemoryEventFD()``).

    The fd is ``IN_CLOEXEC | IN_NONBLOCK`` (the reference leaked it into children,
    containerd#5670) and watches ``IN_MODIFY`` (not following a symlink); the caller
    closes it. The kernel sends the inotify event from a work queue shortly after the
    change. A missing group raises :class:`CgroupDeletedError`, a group without
    ``memory.events`` :class:`MemoryNotSupportedError`; the fd is closed on any failure.
    """
    if not isinstance(path, str) or not os.path.isabs(path):
        raise CgroupError(f"cgroups: memory_event_fd: {path!r} is not an absolute path")
    path = os.path.normpath(path)
    file = f"{path}/{MEMORY_EVENTS}"
    lib = _c()
    with Dir.open(path, mountpoint) as d:  # the group, reached without crossing a mount
        fd = lib.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            raise KernelError(ctypes.get_errno(), file, op="inotify_init1 for")
        try:
            wd = lib.inotify_add_watch(
                fd, os.fsencode(f"/proc/self/fd/{d.fd}/{MEMORY_EVENTS}"),
                IN_MODIFY | IN_DONT_FOLLOW,
            )
        except BaseException:
            os.close(fd)
            raise
    try:
        if wd < 0:
            err = ctypes.get_errno()
            if err == errno.ENOENT:
                raise MemoryNotSupportedError(
                    f"cgroups: memory cgroup (v2) not supported for {path}: it has no "
                    f"{MEMORY_EVENTS} (the memory controller is not enabled in the "
                    f"parent's cgroup.subtree_control, or this mount has none)",
                    errno=err,
                    path=file,
                )
            raise KernelError(err, file, op="inotify_add_watch")
    except BaseException:
        os.close(fd)
        raise
    return fd, wd
