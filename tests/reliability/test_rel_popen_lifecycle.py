"""cgroup2.Popen's group from its making to its removal, on the real cgroup2 mount.

Which group is made and where (its exact path below the parent, the mount's root group
without one, the mount given or the host's), that it holds exactly the child, what it is
given (``resources``), and when it goes: at each way of reaping the process (``wait``,
``poll``, ``communicate``, the ``with`` block, ``subprocess``'s own reaping of a dropped
object by ``__del__`` or ``_cleanup``), with whatever the process left running killed
first, and never with ``keep=True``. Every start that fails, at each step (a name that
exists, a process that dies before it is placed, the group removed from outside, an
interrupt before the fork, between the fork and the pid's note, after the program
started), ends in the error it had with nothing left: no group, no process, no fd (the
autouse leak check, and the fds counted while the exception, which holds the object,
is alive). The search for a child whose pid was never noted (``_orphan``) is pinned on
real processes. Nothing here waits on timing but generous upper bounds.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import gc
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import no_leaks, open_fds, read_procs, sleeper_in, stop  # noqa: F401

import cgroup2
from cgroup2 import CgroupDeletedError, CgroupError, Manager, Resources, popen
from cgroup2.errors import KernelError
from cgroup2.paths import default_mountpoint
from cgroup2.popen import SHELL, TRAMPOLINE, Usage, _orphan

PY = sys.executable
PIPE = subprocess.PIPE
ALL_PIPES = {"stdin": PIPE, "stdout": PIPE, "stderr": PIPE}


def _name() -> str:
    """The pattern of a new group's name: the trampoline's token."""
    return rf"cgroup2-popen-{os.getpid()}-\d+-[0-9a-f]{{6}}"


@pytest.fixture
def where(cg_parent: Parent) -> dict[str, Any]:
    return {"parent": cg_parent.group, "mountpoint": cg_parent.mountpoint}


@pytest.fixture(autouse=True)
def _nothing_at_the_mount_s_root(cg_parent: Parent) -> Iterator[None]:
    """A group of this process's Popen made at the mount's root group (where a wrong
    parent or mount would put it) fails the test, and is removed."""
    prefix = f"cgroup2-popen-{os.getpid()}-"

    def ours() -> set[str]:
        return {n for n in os.listdir(cg_parent.mountpoint) if n.startswith(prefix)}

    before = ours()
    yield
    left = sorted(ours() - before)
    for n in left:
        remove_tree(os.path.join(cg_parent.mountpoint, n))
    assert not left, f"groups made at the mount's root: {left}"


def _popen_groups(parent: Parent) -> list[str]:
    return [n for n in os.listdir(parent.fs_path) if n.startswith("cgroup2-popen-")]


def _own_group(text: str) -> str:
    """The cgroup2 line of a /proc/PID/cgroup."""
    return next(line[3:] for line in text.splitlines() if line.startswith("0::"))


def _group_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return _own_group(f.read())


def _state(pid: int) -> str | None:
    """The state letter of ``pid`` (``Z``: ended, not reaped); None when there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _until(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout  # an upper bound, never a measure
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.005)


def _ended(pid: int) -> None:
    _until(lambda: _state(pid) == "Z", f"process {pid} ended")


def _gone(pid: int) -> bool:
    """Killed: no such process, or a zombie its new parent has yet to reap."""
    deadline = time.monotonic() + 10
    while _state(pid) not in (None, "Z"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _poll_until_reaped(p: cgroup2.Popen) -> int:
    rc: list[int | None] = [None]

    def reaped() -> bool:
        rc[0] = p.poll()
        return rc[0] is not None

    _until(reaped, f"poll() of {p.pid} reaped it")
    assert rc[0] is not None
    return rc[0]


def _cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except FileNotFoundError:
        return []


@pytest.fixture
def kills(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every os.kill of the test, recorded; only a signal to a pid above 1 is sent (a
    broken undo must not reach PID 1 or a process group)."""
    seen: list[tuple[Any, Any]] = []
    real = os.kill

    def kill(pid: Any, sig: Any) -> None:
        seen.append((pid, sig))
        if isinstance(pid, int) and pid > 1:
            real(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    return seen


# --- where the group is made, what it holds -------------------------------------------


def test_the_group_is_named_for_the_process_below_the_parent_and_holds_only_it(
    cg_parent: Parent, where: dict[str, Any]
) -> None:
    t0 = time.monotonic()
    p = cgroup2.Popen(["sleep", "60"], **where)
    try:
        m = p.manager
        assert re.fullmatch(re.escape(cg_parent.group) + "/" + _name(), m.group), m.group
        assert m.mountpoint == cg_parent.mountpoint
        assert m.path == cg_parent.mountpoint + m.group
        assert os.path.isdir(m.path)
        assert read_procs(m.path) == [p.pid]
        assert _group_of(p.pid) == m.group
        assert p.args == ["sleep", "60"]
        _until(lambda: _cmdline(p.pid) == [b"sleep", b"60"], "the program replaced the shell")
        # a poll of a running process reaps nothing and removes nothing
        assert p.poll() is None
        assert read_procs(m.path) == [p.pid]
        running = p.usage()
        assert isinstance(running, Usage)
        assert running.group == m.group
        assert isinstance(running.wall_sec, float) and running.wall_sec > 0
        assert running is not p.usage()  # read anew until the reaping
    finally:
        p.kill()
        rc = p.wait()
    t1 = time.monotonic()
    assert rc == -signal.SIGKILL
    assert not os.path.exists(m.path)
    u = p.usage()
    assert u is p.usage()  # read once, at the reaping
    assert u.group == m.group
    assert isinstance(u.wall_sec, float) and 0 < u.wall_sec <= t1 - t0
    # reaped: another wait, a poll and kill_group change nothing and raise nothing
    assert p.wait() == rc and p.poll() == rc
    p.kill_group()
    assert not os.path.exists(m.path)


def test_without_parent_the_group_is_made_in_the_mount_s_root_group(cg_parent: Parent) -> None:
    """A group of the run stands in for the mount (``mountpoint`` is any cgroup2
    directory): its root group is the run's parent, so nothing is made at the real root."""
    mnt = cg_parent.fs_path
    for parent in (None, "/"):
        with cgroup2.Popen(["cat", "/proc/self/cgroup"], stdout=PIPE, text=True,
                           mountpoint=mnt, parent=parent) as p:
            out, _ = p.communicate()
        m = p.manager
        assert re.fullmatch("/" + _name(), m.group), m.group
        assert (m.mountpoint, m.path) == (mnt, mnt + m.group)
        assert _own_group(out) == cg_parent.group + m.group
        assert not os.path.exists(m.path)


def test_the_parent_as_a_path_with_or_without_a_slash_or_as_a_manager(
    cg_parent: Parent, cg_path: str
) -> None:
    """The parent's name ends in a letter that a wrong strip would also take."""
    mnt = cg_parent.mountpoint
    parent = cg_path + "/gX"
    Manager.create(parent, mountpoint=mnt)
    try:
        assert default_mountpoint() == mnt  # the host's mount, when none is given
        cases: list[tuple[str | Manager, dict[str, Any]]] = [
            (parent, {"mountpoint": mnt}),
            (parent + "/", {"mountpoint": mnt}),
            (parent, {}),
            (Manager(mnt, parent), {}),
            # a Manager brings its own mount: mountpoint= does not move it
            (Manager(mnt, parent), {"mountpoint": cg_parent.fs_path}),
        ]
        for given, kw in cases:
            with cgroup2.Popen(["cat", "/proc/self/cgroup"], stdout=PIPE, text=True,
                               parent=given, **kw) as p:
                out, _ = p.communicate()
            m = p.manager
            assert re.fullmatch(re.escape(parent) + "/" + _name(), m.group), (given, kw)
            assert m.mountpoint == mnt
            assert _own_group(out) == m.group
            assert not os.path.exists(m.path)
        assert not [n for n in os.listdir(mnt + parent) if n.startswith("cgroup2-popen-")]
    finally:
        remove_tree(mnt + cg_path)


def test_group_as_a_path_is_loaded_from_the_mount_given(cg_parent: Parent, cg_path: str) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        rel = cg_path[len(cg_parent.group):]  # the same group, the run's parent as the mount
        with cgroup2.Popen(["cat", "/proc/self/cgroup"], stdout=PIPE, text=True, group=rel,
                           mountpoint=cg_parent.fs_path) as p:
            out, _ = p.communicate()
        assert _own_group(out) == cg_path
        assert (p.manager.mountpoint, p.manager.group) == (cg_parent.fs_path, rel)
        assert os.path.isdir(m.path)  # not its own: left
    finally:
        m.delete(kill=True)


def test_resources_are_in_the_group_before_the_program_runs(where: dict[str, Any]) -> None:
    script = 'g=$(grep "^0::" /proc/self/cgroup | cut -c4-); cat "$1$g/cgroup.max.descendants"'
    r = cgroup2.run(["sh", "-c", script, "sh", where["mountpoint"]],
                    Resources(unified={"cgroup.max.descendants": "3"}), capture_output=True,
                    text=True, **where)
    assert (r.returncode, r.stdout, r.stderr) == (0, "3\n", "")


def test_a_group_that_exists_with_the_new_name_is_refused_and_left_as_it_is(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one mkdir must make the group: an existing one (here, one with a process) is
    never adopted, changed or removed."""
    monkeypatch.setattr(popen, "_counter", itertools.count(7))
    monkeypatch.setattr(popen.secrets, "token_hex", lambda n: "5a" * n)
    existing = f"{cg_parent.fs_path}/cgroup2-popen-{os.getpid()}-7-5a5a5a"
    os.mkdir(existing)
    sleeper = sleeper_in(existing)
    try:
        with pytest.raises(KernelError) as e:
            cgroup2.Popen(["true"], **where)
        assert e.value.errno == errno.EEXIST
        assert "exists already" in str(e.value)
        assert read_procs(existing) == [sleeper.pid]
        assert sleeper.poll() is None
    finally:
        stop(sleeper)
        os.rmdir(existing)


def test_group_with_resources_or_parent_is_refused_with_the_reason(cg_path: str) -> None:
    msg = ("cgroups: group= runs the process in an existing group as it is; resources= and "
           "parent= are for a new group")
    for kw in ({"resources": Resources()}, {"parent": "/x"}):
        with pytest.raises(CgroupError) as e:
            cgroup2.Popen(["true"], group=cg_path, **kw)
        assert type(e.value) is CgroupError
        assert str(e.value) == msg


def test_shell_executable_env_cwd_user_and_gid_reach_the_program(
    where: dict[str, Any], tmp_path: Path
) -> None:
    with cgroup2.Popen("echo hi; exit 3", shell=True, stdout=PIPE, text=True, **where) as p:
        assert p.communicate()[0] == "hi\n"
    assert (p.returncode, p.args) == (3, "echo hi; exit 3")
    with cgroup2.Popen("print('py')", shell=True, executable=PY, stdout=PIPE, text=True,
                       **where) as p:
        assert p.communicate()[0] == "py\n"
    with cgroup2.Popen(["not-a-program-xyz", "-c", "print('x')"], executable=PY, stdout=PIPE,
                       text=True, **where) as p:
        assert p.communicate()[0] == "x\n"
    prog = tmp_path / "bin" / "myprog"
    prog.parent.mkdir()
    prog.write_text('#!/bin/sh\necho "$V $(pwd)"\n')
    prog.chmod(0o755)
    env = {"PATH": f"{prog.parent}:/usr/bin:/bin", "V": "v1"}
    with cgroup2.Popen(["myprog"], env=env, stdout=PIPE, text=True, **where) as p:
        assert p.communicate()[0] == f"v1 {Path.cwd()}\n"
    with cgroup2.Popen(["./myprog"], cwd=prog.parent, env=env, stdout=PIPE, text=True,
                       **where) as p:
        assert p.communicate()[0] == f"v1 {prog.parent}\n"
    r = cgroup2.run(["sh", "-c", "id -u; id -g"], user=65534, gid=65534, capture_output=True,
                    text=True, **where)
    assert (r.returncode, r.stdout) == (0, "65534\n65534\n"), r.stderr


# --- when the group goes ---------------------------------------------------------------


def _reap(p: cgroup2.Popen, how: str) -> None:
    if how == "wait":
        assert p.wait() == 0
    elif how == "poll":
        assert _poll_until_reaped(p) == 0
    elif how == "communicate":
        assert p.communicate() == (None, None)
    elif how == "with":
        with p:
            pass
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
@pytest.mark.parametrize("how", ["wait", "poll", "communicate", "with"])
def test_the_group_goes_at_the_reaping_unless_kept(
    where: dict[str, Any], how: str, keep: bool
) -> None:
    p = cgroup2.Popen(["true"], keep=keep, **where)
    path = p.manager.path
    try:
        _ended(p.pid)
        assert os.path.isdir(path)  # ended, not yet reaped: the group is there
        _reap(p, how)
        assert p.returncode == 0
        assert os.path.isdir(path) == keep
        u = p.usage()
        assert u.group == p.manager.group and u.user_sec is not None
        p.kill_group()  # reaped: kills nothing, raises nothing (a kept group is empty)
        assert os.path.isdir(path) == keep
    finally:
        remove_tree(path)


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
@pytest.mark.parametrize("when", ["ended", "running"])
def test_a_dropped_popen_loses_its_group_when_subprocess_reaps_it(
    cg_parent: Parent, where: dict[str, Any], tmp_path: Path, when: str, keep: bool
) -> None:
    """Dropped after its process ended: ``__del__`` reaps it. Dropped while it ran:
    ``subprocess._cleanup`` reaps it at the next start of any subprocess. The group is
    gone as soon as that reaping returns (kept with ``keep=True``)."""
    stop_file = tmp_path / "stop"
    script = f"while [ ! -e {stop_file} ]; do sleep 0.01; done"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "subprocess N is still running"
        p = cgroup2.Popen(["sh", "-c", script], keep=keep, **where)
        pid, path = p.pid, p.manager.path
        try:
            if when == "ended":
                stop_file.touch()
                _ended(pid)
            del p
            gc.collect()
            if when == "running":
                assert pid in read_procs(path)  # (with its sleep, at times)
                stop_file.touch()
                _ended(pid)
                assert os.path.isdir(path)  # nobody has reaped it yet
                subprocess.run(["true"], check=True)  # runs subprocess._cleanup first
            assert _state(pid) is None  # reaped
            assert os.path.isdir(path) == keep
        finally:
            stop_file.touch()
            remove_tree(path)


@pytest.mark.parametrize("how", ["wait", "poll", "with"])
@pytest.mark.parametrize("whose", ["own", "given"])
def test_a_group_removed_by_someone_else_once_empty_still_gives_the_status(
    cg_parent: Parent, cg_path: str, where: dict[str, Any], whose: str, how: str
) -> None:
    """The group's owner may remove it as soon as it is empty (``populated 0``), before
    this process reaps its child: the reaping returns the status (it raised
    CgroupDeletedError at every wait, the status lost); usage() says there is none."""
    if whose == "given":
        m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
        p = cgroup2.Popen(["sh", "-c", "exit 5"], group=m)
    else:
        p = cgroup2.Popen(["sh", "-c", "exit 5"], **where)
    _ended(p.pid)
    os.rmdir(p.manager.path)
    if how == "wait":
        assert p.wait() == 5
    elif how == "poll":
        assert _poll_until_reaped(p) == 5
    else:
        with p:
            pass
    assert p.returncode == 5
    assert p.wait() == 5 and p.poll() == 5
    with pytest.raises(CgroupDeletedError):
        p.usage()
    assert not os.path.exists(p.manager.path)


@pytest.mark.parametrize("how", ["wait", "poll", "dropped"])
def test_what_the_process_left_running_is_killed_when_its_group_goes(
    where: dict[str, Any], how: str
) -> None:
    p = cgroup2.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=PIPE, **where)
    assert p.stdout is not None
    grandchild = int(p.stdout.readline())
    p.stdout.close()
    path = p.manager.path
    _ended(p.pid)
    assert read_procs(path) == [grandchild]  # the shell has ended, its child holds the group
    if how == "dropped":
        pid = p.pid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del p
            gc.collect()
        assert _state(pid) is None  # reaped by __del__
    else:
        _reap(p, how)
    assert not os.path.exists(path)
    assert _gone(grandchild), "the grandchild outlived the group"


def test_run_removes_the_group_and_reports_the_status(where: dict[str, Any]) -> None:
    r = cgroup2.run(["sh", "-c", "echo out; exit 4"], capture_output=True, **where)
    assert (r.returncode, r.stdout, r.stderr) == (4, b"out\n", b"")
    assert re.fullmatch(re.escape(where["parent"]) + "/" + _name(), r.usage.group)
    assert not os.path.exists(where["mountpoint"] + r.usage.group)


# --- kill_group -------------------------------------------------------------------------


def test_kill_group_kills_the_process_and_every_descendant(where: dict[str, Any]) -> None:
    with cgroup2.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], **where) as p:
        path = p.manager.path
        _until(lambda: len(read_procs(path)) == 3, "the shell and its two children")
        pids = read_procs(path)
        p.kill_group()
        assert read_procs(path) == []  # cgroup.kill returns when the group is empty
    assert p.returncode == -signal.SIGKILL
    assert all(_gone(pid) for pid in pids)
    assert not os.path.exists(path)


def test_kill_group_in_a_group_not_its_own_kills_only_the_process(
    cg_parent: Parent, cg_path: str
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    other = sleeper_in(m.path)
    try:
        p = cgroup2.Popen(["sleep", "60"], group=m)
        assert sorted(read_procs(m.path)) == sorted([other.pid, p.pid])
        p.kill_group()
        assert p.wait(timeout=30) == -signal.SIGKILL  # (a bound: a kill_group that missed)
        assert other.poll() is None
        assert read_procs(m.path) == [other.pid]
        p.kill_group()  # reaped: nothing more
        assert other.poll() is None
    finally:
        stop(other)
        m.delete(kill=True)


# --- starts that fail: the error, and nothing left ---------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["", "keep"])
@pytest.mark.parametrize(
    ("argv", "kwargs", "error"),
    [
        (["true"], {"cwd": "/nonexistent-dir"}, FileNotFoundError),
        (["true"], {"pass_fds": [987]}, OSError),
        (["true"], {"env": {"A": "x\0y"}}, ValueError),
        (["no-such-program-xyz"], {}, FileNotFoundError),
        ([os.devnull], {}, PermissionError),  # not a program (a device, no x bit)
    ],
    ids=["cwd", "pass_fds", "env", "missing", "not-executable"],
)
def test_a_start_that_fails_leaves_no_group_process_or_fd(
    cg_parent: Parent, where: dict[str, Any], argv: list[str], kwargs: dict[str, Any],
    error: type[BaseException], keep: bool,
) -> None:
    """Counted while the exception, whose traceback holds the object, is alive: the
    pipes are closed by the failed start itself, not by the garbage collector."""
    before = open_fds()
    with pytest.raises(error) as e:
        cgroup2.Popen(argv, keep=keep, **ALL_PIPES, **kwargs, **where)
    assert type(e.value) is error
    assert open_fds() == before
    assert _popen_groups(cg_parent) == []


@contextlib.contextmanager
def _unstuck(pids: list[int], seconds: float = 30.0) -> Iterator[None]:
    """Reap ``pids`` if the block has not ended after ``seconds`` (an upper bound): a
    broken placement that waits for a stop that never comes then fails (ECHILD) instead
    of hanging the run."""
    done = threading.Event()

    def watch() -> None:
        if not done.wait(seconds):
            for pid in pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def test_a_process_that_dies_before_it_is_placed(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trampoline killed right after the fork, before it stops itself: the
    placement says so, and the dead process is reaped."""
    real = subprocess._fork_exec  # type: ignore[attr-defined]
    pids: list[int] = []

    def fork_exec(*a: Any) -> int:
        pid: int = real(*a)
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)
        return pid

    monkeypatch.setattr(subprocess, "_fork_exec", fork_exec)
    before = open_fds()
    with _unstuck(pids), pytest.raises(CgroupError) as e:
        cgroup2.Popen(["sh", "-c", "echo ran"], **ALL_PIPES, **where)
    assert type(e.value) is CgroupError
    want = (rf"cgroups: the process {pids[0]} ended before it could be placed in "
            + re.escape(cg_parent.group) + "/" + _name())
    assert re.fullmatch(want, str(e.value)), str(e.value)
    assert open_fds() == before  # the pipes are closed (the traceback holds the object)
    assert _state(pids[0]) is None  # reaped
    assert _popen_groups(cg_parent) == []


def test_the_group_removed_from_outside_before_the_placement(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill of the vanished group fails, quietly; the stopped trampoline is killed
    and reaped all the same, its three pipes closed, and the group's error raised."""
    real = Manager.add_proc
    pids: list[int] = []

    def add_proc(self: Manager, pid: int) -> None:
        pids.append(pid)
        os.rmdir(self.path)
        real(self, pid)

    monkeypatch.setattr(Manager, "add_proc", add_proc)
    before = open_fds()
    with pytest.raises(CgroupDeletedError) as e:
        cgroup2.Popen(["sh", "-c", "echo ran"], **ALL_PIPES, **where)
    assert e.value.path is not None and e.value.path.startswith(cg_parent.fs_path + "/")
    assert open_fds() == before
    assert _state(pids[0]) is None
    assert _popen_groups(cg_parent) == []


def test_a_removal_that_fails_while_undoing_a_start_does_not_hide_its_error(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def add_proc(self: Manager, pid: int) -> None:
        raise KernelError(errno.EBUSY, self.path + "/cgroup.procs", op="write", value=str(pid))

    def delete(self: Manager, *, kill: bool = False) -> None:
        raise CgroupError("cgroups: the removal failed (injected)")

    monkeypatch.setattr(Manager, "add_proc", add_proc)
    monkeypatch.setattr(Manager, "delete", delete)
    with pytest.raises(KernelError) as e:
        cgroup2.Popen(["true"], **where)
    assert e.value.errno == errno.EBUSY
    monkeypatch.undo()
    left = _popen_groups(cg_parent)
    assert len(left) == 1  # what the failed removal left: empty
    path = f"{cg_parent.fs_path}/{left[0]}"
    assert read_procs(path) == []
    os.rmdir(path)


def test_an_interrupt_between_the_fork_and_the_pid_s_note(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """subprocess has forked, but the pid never reached the object: the child is found
    by its trampoline's token, killed and reaped."""
    real = subprocess._fork_exec  # type: ignore[attr-defined]
    pids: list[int] = []

    def fork_exec(*a: Any) -> int:
        pids.append(real(*a))
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "_fork_exec", fork_exec)
    before = open_fds()
    with pytest.raises(KeyboardInterrupt):
        cgroup2.Popen(["sleep", "60"], **ALL_PIPES, **where)
    assert _state(pids[0]) is None  # killed and reaped
    assert open_fds() == before
    assert _popen_groups(cg_parent) == []


def test_an_interrupt_before_the_fork_signals_nothing(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    kills: list[tuple[Any, Any]],
) -> None:
    """No child was made: the search for it finds none, and no pid is signalled."""

    def fork_exec(*a: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "_fork_exec", fork_exec)
    with pytest.raises(KeyboardInterrupt):
        cgroup2.Popen(["true"], **where)
    assert kills == []
    assert _popen_groups(cg_parent) == []


def test_a_start_that_fails_before_the_fork_looks_for_no_child(
    cg_parent: Parent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing parent: refused before anything is started, so no search for a child
    (it takes 100 tries when there is none)."""
    calls: list[str] = []
    real = popen._orphan
    monkeypatch.setattr(popen, "_orphan", lambda token: calls.append(token) or real(token))
    missing = cg_parent.group + "/missing"
    with pytest.raises(CgroupDeletedError, match=f"parent group {missing} does not exist"):
        cgroup2.Popen(["true"], parent=missing, mountpoint=cg_parent.mountpoint)
    assert calls == []
    assert not os.path.exists(cg_parent.fs_path + "/missing")


class _FailOnceStarted(list[Any]):
    """run()'s list of started objects, failing as the object is put there, once its
    program runs and its child has started (as ^C could)."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker
        self.pids: list[int] = []

    def append(self, p: Any) -> None:
        self.pids.append(p.pid)
        _until(self.marker.exists, "the program started its child")
        raise KeyboardInterrupt


@pytest.mark.parametrize("first_kill", ["works", "fails"])
def test_a_failure_after_the_program_started_kills_it_and_its_children(
    cg_parent: Parent, where: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    first_kill: str,
) -> None:
    """The shell has been replaced by the program, which has a child: the program is
    killed and reaped (its pid, not a search for the trampoline), and the group goes with
    the child. Where the group's kill fails, the removal kills what is left."""
    marker = tmp_path / "child"
    script = f'sleep 60 & echo $! > {marker}.tmp; mv {marker}.tmp {marker}; wait'
    if first_kill == "fails":
        real = Manager.kill
        calls: list[int] = []

        def kill(self: Manager, *a: Any, **kw: Any) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise CgroupError("cgroups: the kill failed (injected)")
            real(self, *a, **kw)

        monkeypatch.setattr(Manager, "kill", kill)
    started = _FailOnceStarted(marker)
    with pytest.raises(KeyboardInterrupt):
        cgroup2.Popen(["sh", "-c", script], _cg_started=started, **where)
    grandchild = int(marker.read_text())
    assert _state(started.pids[0]) is None
    assert _gone(grandchild)
    assert _popen_groups(cg_parent) == []


def test_an_interrupt_after_the_reaping_signals_no_pid(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    kills: list[tuple[Any, Any]],
) -> None:
    """run() undoes its start on any exception; once the process is reaped its pid may
    be another process's: nothing is signalled."""

    def usage(self: cgroup2.Popen) -> Usage:
        raise KeyboardInterrupt

    monkeypatch.setattr(cgroup2.Popen, "usage", usage)
    with pytest.raises(KeyboardInterrupt):
        cgroup2.run(["true"], **where)
    assert [sig for _, sig in kills] == [signal.SIGCONT]  # the placement's, nothing after
    assert _popen_groups(cg_parent) == []


def test_an_interrupt_with_input_still_buffered_leaves_nothing(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The input's last bytes wait in the pipe's buffer when ^C comes: closing it after
    the kill fails (EPIPE), quietly; the interrupt is what the caller gets."""

    def communicate(self: cgroup2.Popen, input: Any = None, timeout: Any = None) -> Any:
        assert self.stdin is not None
        self.stdin.write(b"x")  # buffered, not written
        raise KeyboardInterrupt

    monkeypatch.setattr(cgroup2.Popen, "communicate", communicate)
    with pytest.raises(KeyboardInterrupt) as e:
        cgroup2.run(["sleep", "60"], input=b"data", **where)
    assert e.value.__context__ is None
    assert _popen_groups(cg_parent) == []


@pytest.mark.parametrize("how", ["timeout", "interrupt"])
def test_run_with_keep_leaves_the_emptied_group_when_stopped(
    cg_parent: Parent, where: dict[str, Any], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """keep=True keeps the group of a process that started, also when the run is cut
    short: the process is killed and reaped, the empty group stays."""
    if how == "interrupt":

        def communicate(self: cgroup2.Popen, input: Any = None, timeout: Any = None) -> Any:
            raise KeyboardInterrupt

        monkeypatch.setattr(cgroup2.Popen, "communicate", communicate)
        want: type[BaseException] = KeyboardInterrupt
    else:
        want = subprocess.TimeoutExpired
    with pytest.raises(want):
        cgroup2.run(["sleep", "60"], keep=True, timeout=0.2, **where)
    left = _popen_groups(cg_parent)
    assert len(left) == 1
    path = f"{cg_parent.fs_path}/{left[0]}"
    assert read_procs(path) == []
    os.rmdir(path)


# --- _orphan: the child whose pid was never noted ----------------------------------------


@pytest.fixture
def trampolines() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts trampolines (they stop themselves) with a token; kills and reaps them after."""
    made: list[subprocess.Popen[bytes]] = []

    def start(token: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([SHELL, "-c", TRAMPOLINE, token, "sleep", "60"])
        made.append(p)
        info = os.waitid(os.P_PID, p.pid, os.WSTOPPED | os.WNOWAIT)
        assert info is not None and info.si_code == os.CLD_STOPPED
        return p

    yield start
    for p in made:
        p.kill()
        p.wait()


def test_orphan_finds_this_thread_s_child_by_its_token(
    trampolines: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        a = trampolines("cgroup2-popen-test-a")
        b = trampolines("cgroup2-popen-test-b")
        assert _orphan("cgroup2-popen-test-b") == b.pid
        assert _orphan("cgroup2-popen-test-a") == a.pid
    finally:
        stop(other)


def test_orphan_gives_up_after_a_tenth_of_a_second(
    trampolines: Callable[[str], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    trampolines("cgroup2-popen-test-a")
    slept: list[float] = []
    monkeypatch.setattr(popen.time, "sleep", slept.append)
    assert _orphan("cgroup2-popen-test-none") is None
    assert len(slept) >= 10 and 0.05 <= sum(slept) <= 0.2, (len(slept), sum(slept))


def _fake_open(monkeypatch: pytest.MonkeyPatch, fake: Callable[..., Any]) -> None:
    """``open`` as _orphan sees it (a module global before the builtin)."""
    monkeypatch.setattr(popen, "open", fake, raising=False)


def test_orphan_skips_a_child_whose_command_line_cannot_be_read(
    trampolines: Callable[[str], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = trampolines("cgroup2-popen-test-a")

    def fake(path: Any, *args: Any, **kw: Any) -> Any:
        if path == "/proc/thread-self/children":  # a pid that has gone, listed first
            return io.BytesIO(f"999999999 {a.pid} ".encode())
        return builtins.open(path, *args, **kw)

    _fake_open(monkeypatch, fake)
    assert _orphan("cgroup2-popen-test-a") == a.pid


def test_orphan_waits_for_a_child_that_has_yet_to_exec(
    trampolines: Callable[[str], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = trampolines("cgroup2-popen-test-a")
    early: list[int] = []

    def fake(path: Any, *args: Any, **kw: Any) -> Any:
        if path == f"/proc/{a.pid}/cmdline".encode() and len(early) < 3:
            early.append(1)  # before its exec, a child shows its parent's command line
            return builtins.open("/proc/self/cmdline", *args, **kw)
        return builtins.open(path, *args, **kw)

    _fake_open(monkeypatch, fake)
    assert _orphan("cgroup2-popen-test-a") == a.pid
    assert len(early) == 3


def test_orphan_reads_only_this_thread_s_children(
    trampolines: Callable[[str], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = trampolines("cgroup2-popen-test-a")
    listed: list[Any] = []
    real = os.listdir

    def listdir(path: Any = ".") -> list[Any]:
        listed.append(path)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    assert _orphan("cgroup2-popen-test-a") == a.pid
    assert listed == []  # not every process of the machine


def test_orphan_without_a_children_file_looks_at_every_process(
    trampolines: Callable[[str], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel without CONFIG_PROC_CHILDREN has no /proc/thread-self/children."""
    a = trampolines("cgroup2-popen-test-a")

    def fake(path: Any, *args: Any, **kw: Any) -> Any:
        if path == "/proc/thread-self/children":
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return builtins.open(path, *args, **kw)

    _fake_open(monkeypatch, fake)
    assert _orphan("cgroup2-popen-test-a") == a.pid
    assert _orphan("cgroup2-popen-test-none") is None
