"""Group events: ``memory.events``, ``cgroup.events`` and PSI triggers, watched with one
``epoll`` (:class:`EventWatcher`), one group at a time (the streams), or through an
inotify fd (:func:`memory_event_fd`).

How the watcher works, and the kernel facts it relies on: the events guide
(``docs/guides/events.md``, "How the watcher works").
"""

from .._lazy import lazy_names

# Each name is imported from its module on first use (PEP 562), as in cgroup2/__init__.py:
# importing this package (or one of its modules, such as .files) loads nothing else.
_NAMES = {
    "files": (
        "CGROUP_EVENTS",
        "MEMORY_EVENTS",
        "CgroupEvents",
        "Event",
        "parse_cgroup_events",
        "parse_memory_events",
    ),
    "watcher": ("EventWatcher", "Notice", "NoticeKind"),
    "streams": ("CgroupEventStream", "EventStream", "PressureEventStream", "memory_event_fd"),
    "_inotify": ("IN_CLOEXEC", "IN_DONT_FOLLOW", "IN_MODIFY", "IN_NONBLOCK"),
}

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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import _inotify
    from ._inotify import IN_CLOEXEC as IN_CLOEXEC
    from ._inotify import IN_DONT_FOLLOW as IN_DONT_FOLLOW
    from ._inotify import IN_MODIFY as IN_MODIFY
    from ._inotify import IN_NONBLOCK as IN_NONBLOCK
    from .files import CGROUP_EVENTS as CGROUP_EVENTS
    from .files import MEMORY_EVENTS as MEMORY_EVENTS
    from .files import CgroupEvents as CgroupEvents
    from .files import Event as Event
    from .files import parse_cgroup_events as parse_cgroup_events
    from .files import parse_memory_events as parse_memory_events
    from .streams import CgroupEventStream as CgroupEventStream
    from .streams import EventStream as EventStream
    from .streams import PressureEventStream as PressureEventStream
    from .streams import memory_event_fd as memory_event_fd
    from .watcher import EventWatcher as EventWatcher
    from .watcher import Notice as Notice
    from .watcher import NoticeKind as NoticeKind

    # the old names of the inotify binding, which cgroup2.sampler still imports from here
    _c = _inotify.libc
    _inotify_init = _inotify.inotify_init
    _add_watch = _inotify.add_watch
else:
    _names_getattr, __dir__, _ = lazy_names(__name__, _NAMES, globals())
    _OLD_INOTIFY = {"_c": "libc", "_inotify_init": "inotify_init", "_add_watch": "add_watch"}

    def __getattr__(name: str) -> object:
        old = _OLD_INOTIFY.get(name)
        if old is None:
            return _names_getattr(name)
        from . import _inotify

        return getattr(_inotify, old)

    del lazy_names
