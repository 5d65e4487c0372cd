"""``Popen`` and ``run``: a subprocess in a group of its own, placed before it starts,
with what it used read from the group.

How the child gets into the group before the program's first instruction, without
``preexec_fn`` (Python code between ``fork`` and ``exec``, which can deadlock a program
with threads): the child ``exec``\\ s a two-word shell trampoline,
``/bin/sh -c 'kill -STOP $$ && exec "$@"' cgroup2-popen-<...> PROGRAM ARGS...`` (``$0``
names the new group; it also finds the child when an exception comes between the fork and
``subprocess`` storing its pid). The shell stops itself;
the parent waits for the stop (``waitid(WSTOPPED | WNOWAIT)``, which leaves every status
for ``Popen`` to collect), writes the pid to the group's ``cgroup.procs`` and sends
``SIGCONT``; the shell then ``exec``\\ s the program, which starts in the group. Nothing
runs in the child but ``subprocess``'s own C code (``vfork``/``exec``) and the shell; no
file descriptor is passed, so the placement works with every ``close_fds``/``pass_fds``
and with ``user=`` (the parent, not the child, writes ``cgroup.procs``).
``benchmarks/popen.py`` measures the cost against ``subprocess.Popen`` and the other
mechanisms considered.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._fs import Dir, signals_held
from .controllers.pids import read_pids_max_hits
from .errors import CgroupDeletedError, CgroupError
from .manager import Manager
from .paths import default_mountpoint
from .resources import Resources
from .stats import StatMask

__all__ = ["CompletedRun", "Popen", "Usage", "read_usage", "run"]

#: The shell the trampoline runs in, and its script: stop until placed, then exec.
SHELL = "/bin/sh"
TRAMPOLINE = 'kill -STOP $$ && exec "$@"'

_counter = itertools.count()
_USAGE_MASK = StatMask.CPU | StatMask.MEMORY_USAGE | StatMask.MEMORY_EVENTS | StatMask.PSI


@dataclass(frozen=True, slots=True)
class Usage:
    """What a process and everything it started used, read from its group.

    Times are seconds. ``None`` where the kernel has no such file (no memory controller:
    no ``memory_peak``/``oom_kills``; no pids controller: no ``pids_max_hits``; no cpu
    controller: no throttling). CPU times come from ``cpu.stat``, so descendants count
    whether or not they were waited for. The ``*_pressure_sec`` fields are the PSI
    ``some`` totals (time during which at least one task of the group stalled on that
    resource) of ``cpu.pressure``, ``memory.pressure`` and ``io.pressure``: over the
    process's life for a group made for it.
    """

    group: str
    wall_sec: float
    user_sec: float | None = None
    system_sec: float | None = None
    nr_throttled: int | None = None
    throttled_sec: float | None = None
    memory_peak: int | None = None
    oom_kills: int | None = None
    pids_max_hits: int | None = None
    cpu_pressure_sec: float | None = None
    memory_pressure_sec: float | None = None
    io_pressure_sec: float | None = None


def _sec(usec: int | None) -> float | None:
    return None if usec is None else usec / 1e6


def read_usage(m: Manager, wall_sec: float) -> Usage:
    """The :class:`Usage` of group ``m`` now (``wall_sec`` is the caller's clock)."""
    st = m.stat(_USAGE_MASK)
    with Dir.open(m.path, m.mountpoint) as d:
        hits = read_pids_max_hits(d)
    cpu, mem, ev = st.cpu, st.memory, st.memory_events

    def some(owner: object) -> float | None:
        psi = getattr(owner, "psi", None)
        return None if psi is None or psi.some is None else psi.some.total / 1e6

    return Usage(
        group=m.group,
        wall_sec=wall_sec,
        user_sec=_sec(cpu.user_usec) if cpu else None,
        system_sec=_sec(cpu.system_usec) if cpu else None,
        nr_throttled=cpu.nr_throttled if cpu else None,
        throttled_sec=_sec(cpu.throttled_usec) if cpu else None,
        memory_peak=mem.max_usage if mem else None,
        oom_kills=ev.oom_kill if ev else None,
        pids_max_hits=hits,
        cpu_pressure_sec=some(cpu),
        memory_pressure_sec=some(mem),
        io_pressure_sec=some(st.io),
    )


def _program(argv: Sequence[Any], env: Mapping[Any, Any] | None, cwd: Any) -> None:
    """Raise what ``subprocess.Popen`` raises for a program that cannot be executed, before
    anything is started (the trampoline's ``exec`` would only exit 126/127)."""
    name = os.fsdecode(argv[0])
    if "/" in name:
        path = name if cwd is None or os.path.isabs(name) else os.path.join(os.fsdecode(cwd), name)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return
    search = os.pathsep.join(os.fsdecode(p) for p in os.get_exec_path(env))
    if shutil.which(name, path=search) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


def _argv(args: Any, shell: bool, executable: Any) -> list[Any]:
    """The argument vector ``subprocess.Popen`` would execute (``executable`` replaces
    ``argv[0]``: a POSIX shell's ``exec`` cannot set a different one)."""
    if isinstance(args, (str, bytes, os.PathLike)):
        argv: list[Any] = [args]
    else:
        argv = list(args)
    if shell:
        argv = [executable or "/bin/sh", "-c", *argv]
    elif executable is not None:
        argv[0] = executable
    if not argv:
        raise IndexError("list index out of range")  # what subprocess.Popen raises
    return argv


def _orphan(token: str) -> int | None:
    """The pid of this thread's child whose trampoline was given ``token`` as its ``$0``
    (``subprocess`` forked it, then an exception came before it stored the pid)."""
    want = token.encode()
    try:
        with open("/proc/thread-self/children", "rb") as f:
            pids = f.read().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: every process is looked at
        pids = [p.encode() for p in os.listdir("/proc") if p.isdigit()]
    for _ in range(100):  # a child that has yet to exec shows the parent's command line
        for pid in pids:
            try:
                with open(b"/proc/" + pid + b"/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd[:4] == [SHELL.encode(), b"-c", TRAMPOLINE.encode(), want]:
                return int(pid)
        time.sleep(0.001)
    return None


class Popen(subprocess.Popen[Any]):
    """A :class:`subprocess.Popen` whose process runs in a group from its first
    instruction, without ``preexec_fn`` (see the module's documentation for how).

    Without ``group``, a new group ``PARENT/cgroup2-popen-<pid>-<n>-<random>`` is made with
    ``resources`` by one ``mkdir`` (``parent``: an existing group, as a path or
    :class:`Manager`, by default the mount's root group; a missing parent is refused with
    :class:`CgroupDeletedError`, never made); it is removed when the process is reaped (by
    :meth:`wait`, :meth:`poll`, :meth:`communicate`, the ``with`` block, or
    ``subprocess``'s own reaping of an object dropped without a wait), after its
    :meth:`usage` is read, and whatever the process left running in it is killed first;
    ``keep=True`` leaves it once the process has started (a failed start removes it).
    ``group`` (a path or :class:`Manager`) runs the process in an existing group, which is
    neither changed nor removed. ``mountpoint`` is the cgroup2 mount (default: this
    host's). Every other argument is ``subprocess.Popen``'s, except that its ``group``
    (the gid to run as) is spelled ``gid`` here. Placement failures raise
    :class:`CgroupError` with nothing left running and no group left behind.
    """

    def __init__(
        self,
        args: Any,
        resources: Resources | None = None,
        *,
        group: str | Manager | None = None,
        parent: str | Manager | None = None,
        keep: bool = False,
        mountpoint: str | None = None,
        gid: Any = None,
        **kwargs: Any,
    ) -> None:
        self._cg_lock = threading.Lock()
        self._cg_usage: Usage | None = None
        self._cg_removed = False
        self._cg_start = time.monotonic()
        self._cg_wall: float | None = None
        self._cg_spawning = False
        # run()'s list: the object is put there once it is placed, so that run() can
        # undo a start an interrupt takes before the object reaches run()'s variable
        started: list[Popen] | None = kwargs.pop("_cg_started", None)
        argv = _argv(args, bool(kwargs.pop("shell", False)), kwargs.pop("executable", None))
        _program(argv, kwargs.get("env"), kwargs.get("cwd"))
        if gid is not None:
            kwargs["group"] = gid
        # the trampoline's $0: names the group in the shell's messages, and finds the
        # child if an exception (KeyboardInterrupt) comes before subprocess has its pid
        name = f"cgroup2-popen-{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"
        self._cg_token = name
        if group is not None:
            if resources is not None or parent is not None:
                raise CgroupError(
                    "cgroups: group= runs the process in an existing group as it is; "
                    "resources= and parent= are for a new group"
                )
            self._cg_owned = False
            self._cg = group if isinstance(group, Manager) else Manager.load(
                group, mountpoint=mountpoint
            )
        else:
            self._cg_owned = True
            if isinstance(parent, Manager):
                mountpoint, parent = parent.mountpoint, parent.group
            base = (parent or "/").rstrip("/")
            self._cg = Manager(
                mountpoint if mountpoint is not None else default_mountpoint(), f"{base}/{name}"
            )
        self._cg_keep = keep or not self._cg_owned
        self._cg_made = False  # this object made its group: only then is it removed
        try:
            if self._cg_owned:
                # one mkdir that must make the group (never an existing one adopted), under
                # a parent that exists; made and noted with the signals held, so that an
                # interrupt right after is undone
                with signals_held():
                    Manager.create(
                        self._cg.group, resources, mountpoint=self._cg.mountpoint,
                        exist_ok=False, parents=False,
                    )
                    self._cg_made = True
            self._cg_spawning = True
            super().__init__([SHELL, "-c", TRAMPOLINE, name, *argv], **kwargs)
            self.args = args
            self._cg_place()
            if started is not None:
                started.append(self)
        except BaseException:
            self._cg_keep = not self._cg_owned  # a failed start removes the group it made
            self._cg_abandon()
            raise

    def _cg_abandon(self) -> None:
        """Undo a start or a run that failed part-way (``KeyboardInterrupt`` included):
        kill what runs in the group (only the process in a ``group=`` not its own), reap
        the process, close the pipes, remove the group (signals held meanwhile)."""
        with signals_held():
            self._cg_undo()

    def _cg_undo(self) -> None:
        if getattr(self, "pid", None) is None and self._cg_spawning:
            self.pid = _orphan(self._cg_token) or 0  # started, but its pid never stored
        if getattr(self, "pid", None) and getattr(self, "returncode", None) is None:
            if self._cg_made:
                with contextlib.suppress(CgroupError):
                    self._cg.kill()
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                subprocess.Popen.wait(self)
        for f in (getattr(self, n, None) for n in ("stdin", "stdout", "stderr")):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        if not self._cg_keep and not self._cg_removed:
            self._cg_remove_quietly()
            self._cg_removed = True

    def _cg_place(self) -> None:
        """Wait until the trampoline has stopped itself, place it, let it go on (signals
        held: the shell stops within milliseconds, and a ^C then comes after the step,
        where the caller's clean-up sees it, not inside a file operation)."""
        with signals_held():
            self._cg_place_held()

    def _cg_place_held(self) -> None:
        flags = os.WSTOPPED | os.WEXITED | os.WNOWAIT
        info = os.waitid(os.P_PID, self.pid, flags)
        if info is None or info.si_code != os.CLD_STOPPED:
            raise CgroupError(
                f"cgroups: the process {self.pid} ended before it could be placed in "
                f"{self._cg.group}"
            )
        self._cg.add_proc(self.pid)
        os.kill(self.pid, signal.SIGCONT)

    def _cg_remove_quietly(self) -> None:
        if self._cg_made:
            with contextlib.suppress(CgroupError):
                self._cg.delete(kill=True)

    @property
    def manager(self) -> Manager:
        """The process's group."""
        return self._cg

    def usage(self) -> Usage:
        """What the group has used so far; once the process is reaped, the figures read
        then (``wall_sec``: from the start to the reaping). :class:`CgroupDeletedError`
        when the group was removed by someone else before the reaping."""
        if self._cg_usage is not None:
            return self._cg_usage
        return read_usage(self._cg, time.monotonic() - self._cg_start)

    def _cg_reaped(self) -> None:
        """Read the usage once, then remove the group (unless kept). A group that someone
        else removed once it was empty leaves no usage to read: the reaping still returns
        the status, and :meth:`usage` raises :class:`CgroupDeletedError`."""
        # The signals a program turns into exceptions are held meanwhile (a ^C comes
        # when the group is gone): an exception half-way would leave an fd or the group.
        with self._cg_lock, signals_held():
            if self._cg_wall is None:
                self._cg_wall = time.monotonic() - self._cg_start
            if self._cg_usage is None:
                with contextlib.suppress(CgroupDeletedError):
                    self._cg_usage = read_usage(self._cg, self._cg_wall)
            if not self._cg_keep and not self._cg_removed:
                self._cg.delete(kill=True)
                self._cg_removed = True

    def _internal_poll(self, _deadstate: Any = None, **kwargs: Any) -> int | None:
        """``subprocess``'s own reaping of a ``Popen`` nobody holds: ``__del__`` and
        ``subprocess._cleanup`` (which reaps dropped objects whose process still ran when
        they were dropped, at the next start of any subprocess) call this with
        ``_deadstate``, never :meth:`wait` or :meth:`poll`. The group goes then too
        (quietly: this runs inside ``__del__`` or inside another object's start)."""
        rc: int | None = super()._internal_poll(  # type: ignore[misc]
            _deadstate=_deadstate, **kwargs
        )
        if rc is not None and _deadstate is not None and not self._cg_removed:
            try:  # noqa: SIM105 - no module's context manager: this may run at the exit
                self._cg_drop()
            except Exception:  # nobody to tell: the object was dropped
                pass
        return rc

    def _cg_drop(self) -> None:
        with self._cg_lock, signals_held():
            if not self._cg_keep and not self._cg_removed:
                self._cg_removed = True
                self._cg.delete(kill=True)

    def poll(self) -> int | None:
        rc = super().poll()
        if rc is not None:
            self._cg_reaped()
        return rc

    def wait(self, timeout: float | None = None) -> int:
        rc = super().wait(timeout)
        self._cg_reaped()
        return rc

    def __exit__(self, exc_type: Any, value: Any, traceback: Any) -> None:
        try:
            super().__exit__(exc_type, value, traceback)
        finally:
            # on KeyboardInterrupt subprocess waits only briefly, and not through wait()
            if self.returncode is not None:
                self._cg_reaped()

    def kill_group(self) -> None:
        """SIGKILL the process and everything in its group (``cgroup.kill``); for a
        ``group=`` that is not this process's own, only the process is killed."""
        if self._cg_owned and not self._cg_removed:
            self._cg.kill()
        elif self.returncode is None:
            self.kill()


class CompletedRun(subprocess.CompletedProcess[Any]):
    """A :class:`subprocess.CompletedProcess` with the :class:`Usage` of the run."""

    usage: Usage

    def __init__(
        self, args: Any, returncode: int, stdout: Any, stderr: Any, usage: Usage
    ) -> None:
        super().__init__(args, returncode, stdout, stderr)
        self.usage = usage

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", usage={self.usage!r})"


def run(
    args: Any,
    resources: Resources | None = None,
    *,
    input: Any = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    **kwargs: Any,
) -> CompletedRun:
    """Like :func:`subprocess.run`, in a group (see :class:`Popen` for ``group``,
    ``parent``, ``keep``, ``mountpoint``): the result carries the run's :class:`Usage`.

    On ``timeout`` or any exception while waiting (``KeyboardInterrupt``), the whole
    group is killed (``cgroup.kill``: descendants that ignore SIGTERM or left the
    process's session too), the process reaped and the group removed before the
    exception propagates (``subprocess.TimeoutExpired`` as from ``subprocess.run``).
    """
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kwargs["stdout"] = subprocess.PIPE
        kwargs["stderr"] = subprocess.PIPE
    # the Popen as soon as it is placed: an interrupt between the end of its __init__ and
    # the assignment to p would otherwise leave its process and group behind
    started: list[Popen] = []
    try:
        p = Popen(args, resources, _cg_started=started, **kwargs)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            p.kill_group()
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(
                p.args, e.timeout, output=out if out is not None else e.output,
                stderr=err if err is not None else e.stderr,
            ) from None
        rc = p.wait()
        usage = p.usage()
    except BaseException:  # KeyboardInterrupt too: nothing may outlive the run
        for q in started:
            q._cg_abandon()
        raise
    finally:
        for q in started:
            for f in (q.stdin, q.stdout, q.stderr):
                if f is not None:
                    f.close()
    if check and rc:
        raise subprocess.CalledProcessError(rc, p.args, output=out, stderr=err)
    return CompletedRun(p.args, rc, out, err, usage)
