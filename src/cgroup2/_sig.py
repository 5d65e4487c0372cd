"""The signal functions and numbers the group operations use, from the C module ``_signal``.

:mod:`signal` is ``_signal`` with enums around it: importing it makes the ``Signals``,
``Handlers`` and ``Sigmasks`` enum types, and imports :mod:`enum` (with ``functools``,
``collections`` and ``types``), about a fifth of the instructions of a whole ``cgroup2 run
-- true`` (benchmarks/startup.py). The functions here are the same C functions (POSIX
``pthread_sigmask(3)``, ``sigpending(2)``, ``sigwaitinfo(2)``, ``sigtimedwait(2)``,
``sigaction(2)`` through ``signal()``, ``pidfd_send_signal(2)``); they take and give plain
``int`` signal numbers and handlers, where :mod:`signal` gives enum members (which are
equal to those ints). Where ``_signal`` is missing (another interpreter), :mod:`signal`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from signal import struct_siginfo
    from types import FrameType

    _Handler = Callable[[int, FrameType | None], object] | int | None

    SIG_BLOCK: int
    SIG_SETMASK: int
    SIG_DFL: int
    SIG_IGN: int
    SIGALRM: int
    SIGCHLD: int
    SIGHUP: int
    SIGINT: int
    SIGKILL: int
    SIGPIPE: int
    SIGQUIT: int
    SIGTERM: int
    SIGUSR1: int
    SIGUSR2: int
    SIGXFSZ: int

    def pthread_sigmask(how: int, mask: Iterable[int], /) -> set[int]: ...
    def sigpending() -> set[int]: ...
    def sigwaitinfo(sigset: Iterable[int], /) -> struct_siginfo: ...
    def sigtimedwait(sigset: Iterable[int], timeout: float, /) -> struct_siginfo | None: ...
    def signal(signalnum: int, handler: _Handler, /) -> _Handler: ...
    def pidfd_send_signal(
        pidfd: int, sig: int, siginfo: None = None, flags: int = 0, /
    ) -> None: ...

__all__ = [
    "SIGALRM",
    "SIGCHLD",
    "SIGHUP",
    "SIGINT",
    "SIGKILL",
    "SIGPIPE",
    "SIGQUIT",
    "SIGTERM",
    "SIGUSR1",
    "SIGUSR2",
    "SIGXFSZ",
    "SIG_BLOCK",
    "SIG_DFL",
    "SIG_IGN",
    "SIG_SETMASK",
    "pidfd_send_signal",
    "pthread_sigmask",
    "signal",
    "sigpending",
    "sigtimedwait",
    "sigwaitinfo",
]

if not TYPE_CHECKING:  # the names above, from _signal (or signal where it is missing)
    try:
        import _signal as _impl
    except ImportError:  # pragma: no cover - an interpreter without the C module
        import signal as _impl
    globals().update({name: getattr(_impl, name) for name in __all__})
    del _impl
