"""host: cgroup2.Popen and cgroup2.run on this machine's real cgroup2 mount.

The child is in its group from the program's first instruction; many threads start
processes at once while other threads hold locks, with no deadlock (where the same
program with ``preexec_fn`` hangs); exit codes, signals, capture and input are
subprocess's; ``timeout`` kills the whole group; the usage counts what the process and
its descendants used (``cpu.stat``: the only accounting controller this hybrid mount
has). Each test's groups are below the run's parent and must be gone at its end.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Parent

import cgroup2
from cgroup2 import Manager, State

PY = sys.executable


@pytest.fixture
def where(cg_parent: Parent) -> Iterator[dict[str, Any]]:
    """Popen's placement keywords for a new group below the run's parent; afterwards, no
    group of Popen's is left there."""
    yield {"parent": cg_parent.group, "mountpoint": cg_parent.mountpoint}
    left = [n for n in os.listdir(cg_parent.fs_path) if n.startswith("cgroup2-popen-")]
    for n in left:
        Manager(cg_parent.mountpoint, f"{cg_parent.group}/{n}").delete(kill=True)
    assert not left, f"groups left behind: {left}"


def _own_group(text: str) -> str:
    """The cgroup2 line of a /proc/PID/cgroup."""
    return next(line[3:] for line in text.splitlines() if line.startswith("0::"))


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # killed; its new parent has yet to reap it
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_the_program_reads_its_own_group_as_its_first_act(where: dict[str, Any]) -> None:
    # cat's first read is /proc/self/cgroup: it must already name the new group
    with cgroup2.Popen(["cat", "/proc/self/cgroup"], stdout=subprocess.PIPE, text=True,
                       **where) as p:
        out, _ = p.communicate()
        group = p.manager.group
    assert p.returncode == 0
    assert _own_group(out) == group
    assert group.startswith(where["parent"] + "/cgroup2-popen-")
    assert not os.path.exists(p.manager.path)  # removed when reaped


def _hold(lock: threading.Lock | threading.RLock, stop: threading.Event) -> None:
    while not stop.is_set():
        with lock:
            time.sleep(0.02)
        time.sleep(0.0005)


def test_200_processes_from_8_threads_while_locks_are_held(where: dict[str, Any]) -> None:
    """Other threads hold the logging module's lock, a handler's lock and an application
    lock nearly all the time; 8 threads start 25 processes each. Every start completes and
    each process reads a group of its own as its first act."""
    stop = threading.Event()
    app_lock = threading.Lock()
    handler = logging.StreamHandler()
    assert handler.lock is not None
    holders = [
        threading.Thread(target=_hold, args=(lk, stop), daemon=True)
        for lk in (logging._lock, handler.lock, app_lock)  # type: ignore[attr-defined]
    ]
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def starter() -> None:
        try:
            for _ in range(25):
                with cgroup2.Popen(["cat", "/proc/self/cgroup"], stdout=subprocess.PIPE,
                                   text=True, **where) as p:
                    out, _ = p.communicate(timeout=60)
                results.append((p.manager.group, _own_group(out)))
        except BaseException as e:  # reported below
            errors.append(e)

    for t in holders:
        t.start()
    starters = [threading.Thread(target=starter) for _ in range(8)]
    try:
        for t in starters:
            t.start()
        for t in starters:
            t.join(120)
        assert not [t for t in starters if t.is_alive()], "a start did not complete"
    finally:
        stop.set()
        for t in holders:
            t.join()
    assert not errors, errors
    assert len(results) == 200
    assert all(made == seen for made, seen in results)
    assert len({made for made, _ in results}) == 200  # each in its own group


CONTROL = """
import subprocess, threading, time
lock = threading.Lock()
def hold():
    while True:
        with lock:
            time.sleep(0.02)
        time.sleep(0.0005)
threading.Thread(target=hold, daemon=True).start()
def hook():   # stands for any preexec_fn code that takes a lock (logging, an allocator)
    with lock:
        pass
for i in range(200):
    subprocess.run(["true"], preexec_fn=hook)
print("done")
"""


def test_the_same_program_with_preexec_fn_deadlocks(where: dict[str, Any]) -> None:
    """The control: a lock held by another thread at fork time stays held in the child
    forever, so a preexec_fn that takes it hangs the start. (The run's timeout then kills
    the whole group: the hung forked child too.)"""
    with pytest.raises(subprocess.TimeoutExpired) as e:
        cgroup2.run([PY, "-c", CONTROL], capture_output=True, timeout=10, **where)
    assert b"done" not in (e.value.output or b"")


def test_exit_status_signals_capture_and_input(where: dict[str, Any]) -> None:
    assert cgroup2.run(["sh", "-c", "exit 7"], **where).returncode == 7
    r = cgroup2.run(["sh", "-c", "cat; echo err >&2"], input="in put", capture_output=True,
                    text=True, **where)
    assert (r.returncode, r.stdout, r.stderr) == (0, "in put", "err\n")
    assert isinstance(r, subprocess.CompletedProcess)
    assert r.usage.group.startswith(where["parent"])
    with pytest.raises(subprocess.CalledProcessError) as e:
        cgroup2.run("exit 3", shell=True, check=True, capture_output=True, **where)
    assert e.value.returncode == 3
    with cgroup2.Popen(["sleep", "30"], **where) as p:
        time.sleep(0.1)
        p.terminate()
    assert p.returncode == -signal.SIGTERM
    with cgroup2.Popen(["sh", "-c", "kill -KILL $$"], **where) as p:
        pass
    assert p.returncode == -signal.SIGKILL


def test_timeout_kills_a_grandchild_that_ignores_sigterm(
    where: dict[str, Any], tmp_path: os.PathLike[str]
) -> None:
    pidfile = os.path.join(tmp_path, "pid")
    script = f"trap '' TERM; sleep 60 & echo $! > {pidfile}; wait"
    t = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        cgroup2.run(["sh", "-c", script], timeout=1, **where)
    assert time.monotonic() - t < 10
    with open(pidfile) as f:
        grandchild = int(f.read())
    assert _gone(grandchild), "the grandchild outlived the run"


def test_usage_cpu_time_matches_the_child_s_own_getrusage(where: dict[str, Any]) -> None:
    code = (
        "import resource, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 1.0: pass\n"
        "r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(r.ru_utime + r.ru_stime)\n"
    )
    r = cgroup2.run([PY, "-c", code], capture_output=True, text=True, **where)
    own = float(r.stdout)
    u = r.usage
    assert u.user_sec is not None and u.system_sec is not None
    group_cpu = u.user_sec + u.system_sec
    assert abs(group_cpu - own) <= 0.10 * own, (group_cpu, own)
    assert u.wall_sec >= own * 0.5


GRANDCHILD = """
import os, time
r, w = os.pipe()
if os.fork() == 0:             # the middle process
    if os.fork() == 0:         # the grandchild: reparented once the middle exits
        os.close(r)
        time.sleep(0.2)
        t = time.process_time()
        while time.process_time() - t < 0.6: pass
        os._exit(0)            # its end closes w: the top process stops waiting
    os._exit(0)
os.close(w)
os.wait()                      # the middle only
os.read(r, 1)                  # EOF once the grandchild has ended
"""


def test_usage_counts_a_reparented_grandchild(where: dict[str, Any]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = cgroup2.run([PY, "-c", GRANDCHILD], **where)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0
    waited = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    u = r.usage
    assert u.user_sec is not None and u.system_sec is not None
    group_cpu = u.user_sec + u.system_sec
    assert group_cpu >= 0.6 * 0.9, group_cpu
    assert waited < 0.6 * 0.9, f"getrusage(RUSAGE_CHILDREN) saw the grandchild: {waited}"


def test_the_group_is_removed_at_reaping_unless_kept(where: dict[str, Any]) -> None:
    p = cgroup2.Popen(["true"], **where)
    path = p.manager.path
    assert os.path.isdir(path)
    while p.poll() is None:
        time.sleep(0.01)
    assert not os.path.exists(path)
    assert p.usage().group == p.manager.group  # read before the removal, kept

    p = cgroup2.Popen(["true"], keep=True, **where)
    try:
        assert p.wait() == 0
        assert os.path.isdir(p.manager.path)
        assert p.usage().user_sec is not None
    finally:
        p.manager.delete()


def test_an_existing_group_is_used_and_left(where: dict[str, Any], cg_path: str) -> None:
    m = Manager.create(cg_path, mountpoint=where["mountpoint"])
    try:
        r = cgroup2.run(["cat", "/proc/self/cgroup"], group=cg_path, capture_output=True,
                        text=True, mountpoint=where["mountpoint"])
        assert _own_group(r.stdout) == cg_path
        assert os.path.isdir(m.path)
        with cgroup2.Popen(["sleep", "30"], group=m) as p:
            assert m.procs() == [p.pid]
            p.kill_group()  # not its own group: only the process is killed
        assert p.returncode == -signal.SIGKILL
    finally:
        m.delete(kill=True)


def test_the_kernel_freezes_and_kills_the_group(where: dict[str, Any]) -> None:
    """cgroup.freeze and cgroup.kill of the process's group reach its descendants."""
    with cgroup2.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], **where) as p:
        m = p.manager
        deadline = time.monotonic() + 5
        while len(m.procs()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = m.procs()
        assert len(pids) == 3
        m.freeze()
        assert m.state() == State.FROZEN
        m.thaw()
        p.kill_group()
    assert p.returncode == -signal.SIGKILL
    assert all(_gone(pid) for pid in pids)


def test_placement_failure_leaves_nothing(where: dict[str, Any]) -> None:
    with pytest.raises(FileNotFoundError):
        cgroup2.Popen(["no-such-program-xyz"], **where)
    with pytest.raises(cgroup2.CgroupDeletedError):
        cgroup2.Popen(["true"], group=where["parent"] + "/no-such-group",
                      mountpoint=where["mountpoint"])


def test_asyncio_places_reports_and_removes(where: dict[str, Any]) -> None:
    import asyncio

    import cgroup2.asyncio as ca

    async def main() -> tuple[list[tuple[str, str]], list[str], ca.Process]:
        async def one() -> tuple[str, str]:
            p = await ca.create_subprocess_exec("cat", "/proc/self/cgroup",
                                                stdout=asyncio.subprocess.PIPE, **where)
            out, _ = await p.communicate()
            return p.manager.group, _own_group(out.decode())

        seen = await asyncio.gather(*(one() for _ in range(20)))
        busy = await ca.create_subprocess_exec(
            PY, "-c", "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.5: pass", **where)
        assert await busy.wait() == 0
        paths = [busy.manager.path]
        with pytest.raises(FileNotFoundError):
            await ca.create_subprocess_exec("no-such-program-xyz", **where)
        return seen, paths, busy

    seen, paths, busy = asyncio.run(main())
    assert all(made == own for made, own in seen)
    assert len({made for made, _ in seen}) == 20
    u = busy.usage()
    assert u.user_sec is not None and u.system_sec is not None
    assert u.user_sec + u.system_sec >= 0.45
    assert not any(os.path.exists(p) for p in paths)


def test_asyncio_gives_the_status_of_a_group_removed_once_empty(
    where: dict[str, Any]
) -> None:
    """The group's owner may remove it as soon as it is empty, before wait() sees the
    end: wait() returns the status (it raised CgroupDeletedError), usage() says there is
    none to read."""
    import asyncio

    import cgroup2.asyncio as ca

    async def main() -> tuple[int, ca.Process]:
        p = await ca.create_subprocess_exec("sh", "-c", "exit 5", **where)
        deadline = time.monotonic() + 60
        while "populated 0" not in Path(f"{p.manager.path}/cgroup.events").read_text():
            assert time.monotonic() < deadline, "the process did not end"
            await asyncio.sleep(0.01)
        os.rmdir(p.manager.path)
        return await p.wait(), p

    rc, p = asyncio.run(main())
    assert rc == 5 and p.returncode == 5
    with pytest.raises(cgroup2.CgroupDeletedError):
        p.usage()
    assert not os.path.exists(p.manager.path)


def test_user_drops_privileges_and_is_still_placed(where: dict[str, Any]) -> None:
    """The parent writes cgroup.procs, not the child: a child that runs as another user
    (which could not write the root-owned file) is placed all the same."""
    r = cgroup2.run(["sh", "-c", "id -u; cat /proc/self/cgroup"], user=65534, gid=65534,
                    capture_output=True, text=True, **where)
    assert r.returncode == 0, r.stderr
    uid, rest = r.stdout.split("\n", 1)
    assert uid == "65534"
    assert _own_group(rest) == r.usage.group
