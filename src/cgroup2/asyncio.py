"""``create_subprocess_exec`` for asyncio: the placement and usage of
:class:`cgroup2.Popen` on :func:`asyncio.create_subprocess_exec`.

The child execs the same stopping shell trampoline (see :mod:`cgroup2.popen`); the wait
for its stop (``waitid(WSTOPPED | WNOWAIT)``, which leaves the exit status to asyncio's
child watcher) runs in the loop's default executor, so the loop is not blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import time
from asyncio import streams
from asyncio.subprocess import Process as _Process
from asyncio.subprocess import SubprocessStreamProtocol
from typing import Any

from ._fs import signals_held
from .errors import CgroupDeletedError, CgroupError
from .manager import Manager
from .paths import default_mountpoint
from .popen import SHELL, TRAMPOLINE, Usage, _argv, _counter, _program, read_usage
from .resources import Resources

__all__ = ["Process", "create_subprocess_exec"]


class Process(_Process):
    """An :class:`asyncio.subprocess.Process` in a group: ``manager``, ``usage()`` and
    the removal of its own group once :meth:`wait` (or :meth:`communicate`) has seen it
    end, after the usage is read (unless ``keep``)."""

    _cg: Manager
    _cg_owned: bool
    _cg_keep: bool
    _cg_start: float
    _cg_usage: Usage | None = None
    _cg_removed: bool = False

    @property
    def manager(self) -> Manager:
        """The process's group."""
        return self._cg

    def usage(self) -> Usage:
        """What the group has used so far; once the process has ended, the figures read
        then. :class:`CgroupDeletedError` when the group was removed by someone else
        before :meth:`wait` saw the end."""
        if self._cg_usage is not None:
            return self._cg_usage
        return read_usage(self._cg, time.monotonic() - self._cg_start)

    async def wait(self) -> int:
        rc = await super().wait()
        if self._cg_usage is None or (not self._cg_keep and not self._cg_removed):
            with signals_held():
                if self._cg_usage is None:
                    # a group its owner removed once it was empty has no usage left to
                    # read: the status is still returned
                    with contextlib.suppress(CgroupDeletedError):
                        self._cg_usage = read_usage(self._cg,
                                                    time.monotonic() - self._cg_start)
                if not self._cg_keep and not self._cg_removed:
                    self._cg.delete(kill=True)
                    self._cg_removed = True
        return rc

    def kill_group(self) -> None:
        """SIGKILL everything in the process's own group (``cgroup.kill``); for a
        ``group=`` that is not its own, only the process."""
        if self._cg_owned and not self._cg_removed:
            self._cg.kill()
        elif self.returncode is None:
            self.kill()


async def create_subprocess_exec(
    program: Any,
    *args: Any,
    resources: Resources | None = None,
    group: str | Manager | None = None,
    parent: str | Manager | None = None,
    keep: bool = False,
    mountpoint: str | None = None,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = streams._DEFAULT_LIMIT,  # type: ignore[attr-defined]
    **kwds: Any,
) -> Process:
    """Like :func:`asyncio.create_subprocess_exec`, the process in a group from its first
    instruction (``resources``, ``group``, ``parent``, ``keep``, ``mountpoint`` as for
    :class:`cgroup2.Popen`). A failure to place it kills and reaps it and removes the
    group before the error is raised."""
    argv = _argv([program, *args], False, None)
    _program(argv, kwds.get("env"), kwds.get("cwd"))
    token = f"cgroup2-popen-{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"
    if group is not None:
        if resources is not None or parent is not None:
            raise CgroupError(
                "cgroups: group= runs the process in an existing group as it is; "
                "resources= and parent= are for a new group"
            )
        m = group if isinstance(group, Manager) else Manager.load(group, mountpoint=mountpoint)
        owned = False
    else:
        if isinstance(parent, Manager):
            mountpoint, parent = parent.mountpoint, parent.group
        base = (parent or "/").rstrip("/")
        m = Manager.create(f"{base}/{token}", resources,
                           mountpoint=mountpoint if mountpoint is not None
                           else default_mountpoint(), exist_ok=False, parents=False)
        owned = True
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    proc: Process | None = None
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: SubprocessStreamProtocol(limit=limit, loop=loop),
            SHELL, "-c", TRAMPOLINE, token, *argv,
            stdin=stdin, stdout=stdout, stderr=stderr, **kwds,
        )
        proc = Process(transport, protocol, loop)
        proc._cg, proc._cg_owned, proc._cg_keep = m, owned, keep or not owned
        proc._cg_start = start
        pid = proc.pid
        info = await loop.run_in_executor(None, functools.partial(
            os.waitid, os.P_PID, pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT
        ))
        if info is None or info.si_code != os.CLD_STOPPED:
            raise CgroupError(f"cgroups: the process {pid} ended before it could be placed "
                              f"in {m.group}")
        with signals_held():
            m.add_proc(pid)
            os.kill(pid, signal.SIGCONT)
        return proc
    except BaseException:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await _Process.wait(proc)
        if owned:
            with contextlib.suppress(CgroupError):
                m.delete(kill=True)
        raise
