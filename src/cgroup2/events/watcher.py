"""The watcher: one ``epoll`` over the ``cgroup.events`` and ``memory.events`` of many
groups, and PSI triggers, with one inotify fd for the groups' removal.

How it works, and the kernel facts it relies on: the events guide (``docs/guides/events.md``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio
    import threading

    from .pressure import PressureEvent, PressureTrigger

from .._fs import Dir
from ..errors import (
    CgroupDeletedError,
    CgroupError,
    KernelError,
    MemoryNotSupportedError,
    PressureTriggerError,
)
from ._inotify import (
    EVENT,
    IN_CHILD_GONE,
    IN_DELETE,
    IN_IGNORED,
    IN_Q_OVERFLOW,
    add_watch,
    inotify_init,
    libc,
)
from .files import (
    CGROUP_EVENTS,
    MEMORY_EVENTS,
    CgroupEvents,
    Event,
    parse_cgroup_events,
    parse_memory_events,
)

__all__ = ["EventWatcher", "Notice", "NoticeKind"]

_READ_SIZE = 4096  # both files are well under 200 bytes
_GONE = (errno.ENODEV, errno.ENOENT)  # a read on a kept fd of a removed group: ENODEV
_EVENT_SIZE = EVENT.size

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
        self._ino = inotify_init()
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
                self._open_files(d, w, memory)
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

    def _open_files(self, d: Dir, w: _Watch, memory: bool | None) -> None:
        """Watch the parent of ``w`` for its removal and open its ``cgroup.events`` (and
        ``memory.events``, as ``memory`` asks) from its directory ``d``."""
        path = w.path
        # the parent through the group's own fd: the directory just checked
        parent = os.path.dirname(path)
        w.wd = add_watch(self._ino, f"/proc/self/fd/{d.fd}/..", IN_CHILD_GONE, parent)
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
                wd, mask, _cookie, n = EVENT.unpack_from(buf, off)
                off += _EVENT_SIZE + n
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif mask & IN_DELETE:
                    # a child of a watched parent was removed: ours? (ENODEV says so)
                    name = buf[off - n : off].rstrip(b"\0")
                    w = self._dirs.get(wd, {}).get(name)
                    if w is not None:
                        self._read_one(w.cfd, w, False, out, False)
                elif mask & IN_IGNORED:
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
                libc().inotify_rm_watch(self._ino, w.wd)
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
