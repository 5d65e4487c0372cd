"""cgroup2.Popen and cgroup2.run under faults: a timeout, a KeyboardInterrupt while
waiting or while placing, a process that dies before it is placed, a group killed from
outside, programs that cannot be started. Every outcome is the process's status or a
clear exception, and the autouse leak check finds no fd, thread, child process or group
left behind.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Parent
from reltools import no_leaks, open_fds  # noqa: F401

import cgroup2
from cgroup2 import Manager
from cgroup2.errors import KernelError


@pytest.fixture
def where(cg_parent: Parent) -> dict[str, Any]:
    return {"parent": cg_parent.group, "mountpoint": cg_parent.mountpoint}


@pytest.fixture
def alarm() -> Iterator[None]:
    """SIGALRM raises KeyboardInterrupt (as ^C would, without pytest's own handling)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _popen_groups(parent: Parent) -> list[str]:
    return [n for n in os.listdir(parent.fs_path) if n.startswith("cgroup2-popen-")]


def test_timeout_with_pipes_leaves_nothing(cg_parent: Parent, where: dict[str, Any]) -> None:
    script = "trap '' TERM; sleep 60 & sleep 60 & echo started; wait"
    with pytest.raises(subprocess.TimeoutExpired) as e:
        cgroup2.run(["sh", "-c", script], capture_output=True, timeout=0.5, **where)
    assert e.value.output == b"started\n"  # what it wrote before the timeout is kept
    assert not _popen_groups(cg_parent)


def test_keyboard_interrupt_while_waiting_leaves_nothing(
    cg_parent: Parent, where: dict[str, Any], alarm: None
) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cgroup2.run(["sh", "-c", "sleep 60 & wait"], stdout=subprocess.PIPE, **where)
    assert time.monotonic() - t < 10
    assert not _popen_groups(cg_parent)


@pytest.mark.parametrize("fault", [KeyboardInterrupt, "died", "refused"])
def test_a_fault_while_placing_leaves_nothing(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fault: Any
) -> None:
    """A ^C during the placement or a write the kernel refuses: the trampoline (stopped,
    it has not run the program) is killed and reaped, its pipes closed, the group removed,
    the error raised. A process killed before it is placed (the kernel takes a dying
    task's pid without error) is a process that was killed: its status says so."""
    real = Manager.add_proc

    def add_proc(self: Manager, pid: int) -> None:
        if fault is KeyboardInterrupt:
            raise KeyboardInterrupt
        if fault == "died":
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            real(self, pid)
            return
        raise KernelError(errno.EBUSY, self.path + "/cgroup.procs", op="write", value=str(pid))

    monkeypatch.setattr(Manager, "add_proc", add_proc)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if fault == "died":
        with cgroup2.Popen(["sh", "-c", "echo ran"], **pipes, **where) as p:
            out, _ = p.communicate(timeout=10)
        assert (p.returncode, out) == (-signal.SIGKILL, b"")
    else:
        want: Any = KeyboardInterrupt if fault is KeyboardInterrupt else cgroup2.CgroupError
        with pytest.raises(want):
            cgroup2.Popen(["sh", "-c", "echo ran"], **pipes, **where)
    assert not _popen_groups(cg_parent)


def test_the_group_killed_from_outside(cg_parent: Parent, where: dict[str, Any]) -> None:
    with cgroup2.Popen(["sh", "-c", "sleep 60 & wait"], stdout=subprocess.PIPE, **where) as p:
        Manager.load(p.manager.group, mountpoint=p.manager.mountpoint).kill()
        out, _ = p.communicate(timeout=10)
    assert p.returncode == -signal.SIGKILL
    assert out == b""
    assert p.usage().user_sec is not None
    assert not _popen_groups(cg_parent)


def test_programs_that_cannot_start_leave_nothing(
    cg_parent: Parent, where: dict[str, Any], tmp_path: Path
) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("true\n")
    plain.chmod(0o644)
    for _ in range(50):
        with pytest.raises(FileNotFoundError):
            cgroup2.Popen(["no-such-program-xyz"], stdout=subprocess.PIPE, **where)
        with pytest.raises(PermissionError):
            cgroup2.run([str(plain)], capture_output=True, **where)
    assert not _popen_groups(cg_parent)


def test_many_starts_and_reaps_leave_no_fd(cg_parent: Parent, where: dict[str, Any]) -> None:
    for i in range(100):
        r = cgroup2.run(["sh", "-c", "cat >/dev/null; echo $0", str(i)], input=b"x" * 70000,
                        capture_output=True, **where)
        assert r.stdout == f"{i}\n".encode()
    p = cgroup2.Popen(["true"], **where)
    while p.poll() is None:
        time.sleep(0.005)
    assert p.poll() == 0  # a second reaping reads nothing again
    assert not _popen_groups(cg_parent)


def test_keyboard_interrupt_at_any_point_of_a_start_leaves_nothing(
    cg_parent: Parent, where: dict[str, Any], alarm: None
) -> None:
    """^C at a random moment of many short runs (making the group, starting the
    trampoline, placing it, waiting, reading the usage, removing the group): each run
    ends in its status or KeyboardInterrupt, and nothing is left after any of them."""
    import random

    rng = random.Random(22)
    outcomes = {"done": 0, "interrupted": 0, "in subprocess's error-pipe window": 0}
    cgroup2.run(["true"], **where)  # every module imported (a ^C in an import breaks it)
    # the interrupts spread over a run's length (a few ms on an idle machine, more under
    # load): the span they are drawn from follows how long the runs take now, longer after
    # a run that finished first, shorter after one that was interrupted, so that both
    # outcomes come whatever the load (a fixed span from a few timed runs missed the runs
    # on a loaded machine: 191 of 200 interrupted)
    times = []
    for _ in range(7):
        t0 = time.monotonic()
        cgroup2.run(["true"], **where)
        times.append(time.monotonic() - t0)
    span = sorted(times)[3] * 2  # twice the median, to start with
    runs = 0
    while runs < 200 or (min(outcomes["done"], outcomes["interrupted"]) <= 10 and runs < 2000):
        runs += 1
        before = open_fds()
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.0, span))
                cgroup2.run(["true"], **where)
                outcomes["done"] += 1
                span *= 0.9
            finally:
                # (the one interrupt may come in here too, as the timer ends: caught below)
                signal.setitimer(signal.ITIMER_REAL, 0)
        except KeyboardInterrupt as e:
            outcomes["interrupted"] += 1
            span *= 1.1
            now = open_fds()
            leaked = {fd: what for fd, what in now.items() if before.get(fd) != what}
            if leaked and set(leaked) == _subprocess_error_pipe(e, leaked):
                # CPython's own window (subprocess.Popen._execute_child makes its error
                # pipe with os.pipe() a few bytecodes before the try that closes it): not
                # this library's leak; closed here so that the check below sees ours
                outcomes["in subprocess's error-pipe window"] += 1
                for fd in leaked:
                    os.close(fd)
        assert not _popen_groups(cg_parent), outcomes
    print(outcomes)
    assert outcomes["interrupted"] > 10 and outcomes["done"] > 10, outcomes


def _subprocess_error_pipe(e: BaseException, fds: dict[int, str]) -> set[int] | None:
    """The two ends of subprocess's error pipe, of those in ``fds`` (fd: what it points
    to), when ``e`` went through ``Popen._execute_child`` (subprocess.py) while that pipe
    was open and not yet in its try/finally: raised at the ``os.pipe()`` line itself (the
    call returned, its result not yet stored) or with both ends stored; else None. (The
    frames inner to it are those of the signal handler.)"""
    import linecache

    tb = e.__traceback__
    last = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_execute_child" and code.co_filename.endswith("subprocess.py"):
            last = tb
        tb = tb.tb_next
    if last is None:
        return None
    names = last.tb_frame.f_locals
    if "errpipe_read" in names and "errpipe_write" in names:
        ends = {names["errpipe_read"], names["errpipe_write"]}
    elif "= os.pipe()" in linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno):
        ends = {fd for fd, what in fds.items() if what.startswith("pipe:")}
    else:
        return None
    if len(ends) != 2 or not ends <= fds.keys() or len({fds[fd] for fd in ends}) != 1:
        return None  # not one pipe's two ends
    return ends


def test_asyncio_cancelled_while_starting_leaves_nothing(
    cg_parent: Parent, where: dict[str, Any]
) -> None:
    """create_subprocess_exec cancelled at moments spread over its start (a timeout of
    asyncio.wait_for): each start ends placed or cancelled, and nothing is left."""
    import asyncio

    import cgroup2.asyncio as ca

    async def main() -> dict[str, int]:
        outcomes = {"started": 0, "cancelled": 0}
        for i in range(60):
            try:
                p = await asyncio.wait_for(
                    ca.create_subprocess_exec("true", **where), timeout=i * 0.0002)
            except TimeoutError:
                outcomes["cancelled"] += 1
            else:
                outcomes["started"] += 1
                await p.wait()
            assert not _popen_groups(cg_parent), outcomes
        return outcomes

    outcomes = asyncio.run(main())
    assert outcomes["cancelled"] > 0 and outcomes["started"] > 0, outcomes


def test_the_error_pipe_window_is_told_apart() -> None:
    """What the ^C test above forgives, and only that: an interrupt raised in
    subprocess's _execute_child once its error pipe is made (here by a trace function, at
    the first line after os.pipe()) leaves that pipe open, and _subprocess_error_pipe
    names exactly its two ends."""
    import sys

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_name != "_execute_child":
            return None

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line" and "errpipe_write" in frame.f_locals:
                raise KeyboardInterrupt
            return local

        return local

    before = open_fds()
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            subprocess.Popen(["true"])
    finally:
        sys.settrace(None)
    now = open_fds()
    leaked = {fd for fd, what in now.items() if before.get(fd) != what}
    try:
        assert len(leaked) == 2 and len({now[fd] for fd in leaked}) == 1  # one pipe
        assert _subprocess_error_pipe(e.value, {fd: now[fd] for fd in leaked}) == leaked
        assert _subprocess_error_pipe(KeyboardInterrupt(), now) is None
    finally:
        for fd in leaked:
            os.close(fd)


# --- groups left behind: a missing parent, a failed start with keep=True, a dropped Popen ----


def test_a_missing_parent_is_refused_and_nothing_is_made(
    cg_parent: Parent, where: dict[str, Any]
) -> None:
    """``parent=`` must exist: a missing one (and its missing ancestors) is an error,
    never made (it used to be made and left, one more group each time)."""
    missing = f"{cg_parent.group}/missing/x"
    for call in (cgroup2.run, cgroup2.Popen):
        with pytest.raises(cgroup2.CgroupDeletedError, match=f"parent group {missing} does not"):
            call(["true"], parent=missing, mountpoint=cg_parent.mountpoint)
    assert not os.path.exists(cg_parent.fs_path + "/missing")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cwd": "/nonexistent-dir"}, FileNotFoundError),
        ({"pass_fds": [987]}, OSError),
        ({"env": {"A": "x\0y"}}, ValueError),
    ],
    ids=["cwd", "pass_fds", "env"],
)
def test_a_failed_start_with_keep_removes_its_group(
    cg_parent: Parent, where: dict[str, Any], kwargs: dict[str, Any], error: type
) -> None:
    """``keep=True`` keeps the group of a process that ran; a start that fails removes the
    group it made (it used to leave one empty group per attempt)."""
    for _ in range(5):
        with pytest.raises(error):
            cgroup2.Popen(["true"], keep=True, **kwargs, **where)
        with pytest.raises(error):
            cgroup2.run(["true"], keep=True, **kwargs, **where)
    assert _popen_groups(cg_parent) == []


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait_zombies(pids: list[int]) -> None:
    deadline = time.monotonic() + 30  # an upper bound for `true` and a short loop to end
    while not all(_zombie(pid) for pid in pids):
        assert time.monotonic() < deadline, "the processes did not end"
        time.sleep(0.01)


def test_dropped_popens_lose_their_groups_however_subprocess_reaps_them(
    cg_parent: Parent, where: dict[str, Any], tmp_path: Path
) -> None:
    """A Popen dropped without a wait is reaped by ``subprocess`` itself: by its
    ``__del__`` when the process has ended, else by ``subprocess._cleanup`` at the next
    start of any subprocess. Both remove the group (they bypassed it: 10 dropped, 10
    groups left for the life of the program)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "subprocess N is still running"
        # ended before they are dropped: __del__ reaps them
        ps = [cgroup2.Popen(["true"], **where) for _ in range(10)]
        _wait_zombies([p.pid for p in ps])
        assert len(_popen_groups(cg_parent)) == 10
        del ps
        gc.collect()
        assert _popen_groups(cg_parent) == []
        # still running when dropped: subprocess keeps them in its list of the unreaped,
        # and its _cleanup at the next start of a subprocess reaps them
        stop = tmp_path / "stop"
        script = f"while [ ! -e {stop} ]; do sleep 0.01; done"
        ps = [cgroup2.Popen(["sh", "-c", script], **where) for _ in range(10)]
        pids = [p.pid for p in ps]
        del ps
        gc.collect()
        assert len(_popen_groups(cg_parent)) == 10
        stop.touch()
        _wait_zombies(pids)
        subprocess.run(["true"], check=True)  # an unrelated start runs subprocess._cleanup
        assert _popen_groups(cg_parent) == []
        assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)  # reaped
