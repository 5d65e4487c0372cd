"""One group's events: :class:`EventStream` (``memory.events``),
:class:`CgroupEventStream` (``cgroup.events``) and :class:`PressureEventStream` (PSI
triggers), each on a private :class:`~cgroup2.events.EventWatcher`; and
:func:`memory_event_fd`, an inotify fd for ``memory.events`` that the caller polls.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Self, TypeVar

if TYPE_CHECKING:
    from .pressure import PressureEvent, PressureTrigger

from .._fs import Dir
from ..errors import CgroupDeletedError, CgroupError, KernelError, MemoryNotSupportedError
from ._inotify import IN_CLOEXEC, IN_DONT_FOLLOW, IN_MODIFY, IN_NONBLOCK, libc
from .files import MEMORY_EVENTS, CgroupEvents, Event
from .watcher import EventWatcher, Notice, NoticeKind

__all__ = ["CgroupEventStream", "EventStream", "PressureEventStream", "memory_event_fd"]

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


# --- an inotify fd ------------------------------------------------------------------------


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
    lib = libc()
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
