"""host: the Manager on this machine's real cgroup2 mount (hybrid: only hugetlb here).

Every test leaves no group (the ``cg_path`` fixture checks), no process and no fd behind
(the ``procs`` fixture kills what was started and compares the open fds).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    ControllerToggle,
    HugeTlbEntry,
    InvalidGroupPathError,
    InvalidPidError,
    KernelError,
    Manager,
    MemoryNotSupportedError,
    Resources,
    State,
)
from cgroup2._fs import Dir
from cgroup2.stats import Metrics

MiB = 1 << 20


class Spawner:
    """Starts processes for a test; kills and reaps every one of them afterwards."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, script: str, *, stdin: bool = False) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.started.append(p)
        return p

    def python(self, code: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        self.started.append(p)
        return p

    def cleanup(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            for f in (p.stdin, p.stdout):
                if f is not None:
                    f.close()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def procs() -> Iterator[Spawner]:
    before = _fds()
    s = Spawner()
    try:
        yield s
    finally:
        s.cleanup()
    leaked = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in _fds() - before if
              os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, f"file descriptors left open: {leaked}"


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, from /proc/PID/stat (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def exists(parent: Parent, group: str) -> bool:
    return os.path.isdir(parent.mountpoint + group)


# --- lifecycle ---------------------------------------------------------------------------


def test_create_load_new_child_delete(cg_parent: Parent, cg_path: str, procs: Spawner) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    assert (m.mountpoint, m.group, m.path) == (
        cg_parent.mountpoint,
        cg_path,
        cg_parent.mountpoint + cg_path,
    )
    assert m.unit is None and exists(cg_parent, cg_path)
    assert Manager.load(cg_path, mountpoint=cg_parent.mountpoint) == m
    assert Manager.load(cg_path).path == m.path  # the default mount point is this one
    child = m.new_child("c1")
    assert child.group == cg_path + "/c1" and exists(cg_parent, child.group)
    grandchild = child.new_child("g")
    assert exists(cg_parent, grandchild.group)
    for bad in ("a/b", "..", ".", "", "/x"):
        with pytest.raises(CgroupError):
            m.new_child(bad)
    m.delete()  # children depth-first
    assert not exists(cg_parent, cg_path)
    m.delete()  # a missing group is success
    with pytest.raises(CgroupDeletedError):
        Manager.load(cg_path, mountpoint=cg_parent.mountpoint)
    assert m.state() is State.DELETED


def test_create_makes_missing_ancestors(cg_parent: Parent, cg_path: str, procs: Spawner) -> None:
    deep = cg_path + "/a/b/c"
    m = Manager.create(deep, mountpoint=cg_parent.mountpoint)
    assert exists(cg_parent, deep)
    Manager.load(cg_path).delete()
    assert not exists(cg_parent, cg_path) and not exists(cg_parent, m.group)


def test_create_exclusive_and_without_parents(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    """``exist_ok=False``: an existing group is an EEXIST error and stays as it is (its
    process and its limit untouched), on the one-mkdir path and on the path that enables
    controllers in the ancestors; ``parents=False``: a missing parent is refused and
    nothing is made."""
    mnt = cg_parent.mountpoint
    r = Resources(hugetlb=[HugeTlbEntry("2MB", 4 * MiB)])
    m = Manager.create(cg_path + "/sub", r, mountpoint=mnt)
    try:
        p = procs("exec sleep 60")  # one process: dash forks a last command
        m.add_proc(p.pid)
        for res in (None, Resources(hugetlb=[HugeTlbEntry("2MB", -1)])):
            with pytest.raises(KernelError, match="exists already") as e:
                Manager.create(m.group, res, mountpoint=mnt, exist_ok=False)
            assert e.value.errno == errno.EEXIST
            assert m.procs() == [p.pid]
            with open(m.path + "/hugetlb.2MB.max") as f:
                assert f.read() == f"{4 * MiB}\n"
        # the path that enables a controller in the ancestors first (not yet in /plain)
        plain = Manager.create(cg_path + "/plain/g", mountpoint=mnt)
        with pytest.raises(KernelError, match="exists already"):
            Manager.create(plain.group, r, mountpoint=mnt, exist_ok=False, parents=False)
        with open(plain.path + "/hugetlb.2MB.max") as f:
            assert f.read() != f"{4 * MiB}\n"  # not updated
        for res in (None, r):
            with pytest.raises(CgroupDeletedError, match=r"parent group \S+ does not exist"):
                Manager.create(cg_path + "/no/x", res, mountpoint=mnt, parents=False)
            assert not exists(cg_parent, cg_path + "/no")
        made = Manager.create(cg_path + "/new", r, mountpoint=mnt, exist_ok=False, parents=False)
        assert exists(cg_parent, made.group)
    finally:
        Manager.load(cg_path, mountpoint=mnt).delete(kill=True)


def test_invalid_group_paths_are_refused(cg_parent: Parent, procs: Spawner) -> None:
    for bad in ("relative", "/a/../b", "/a//b", "/a/", "/sys/fs/cgroup/x"):
        with pytest.raises(InvalidGroupPathError):
            Manager.create(bad, mountpoint=cg_parent.mountpoint)


def test_hugetlb_limit_written_and_read_back(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    r = Resources(hugetlb=[HugeTlbEntry("2MB", 4 * MiB), HugeTlbEntry("1GB", -1)])
    m = Manager.create(cg_path, r, mountpoint=cg_parent.mountpoint)
    try:
        assert "hugetlb" in m.controllers()
        with open(m.path + "/hugetlb.2MB.max") as f:
            assert f.read() == f"{4 * MiB}\n"
        with open(m.path + "/hugetlb.1GB.max") as f:
            assert f.read() == "max\n"
        # creating an existing group loads and updates it
        again = Manager.create(
            cg_path, Resources(hugetlb=[HugeTlbEntry("2MB", -1)]), mountpoint=cg_parent.mountpoint
        )
        assert again == m
        with open(m.path + "/hugetlb.2MB.max") as f:
            assert f.read() == "max\n"
        m.update(Resources(hugetlb=[HugeTlbEntry("2MB", 2 * MiB)]))
        with open(m.path + "/hugetlb.2MB.max") as f:
            assert f.read() == f"{2 * MiB}\n"
        assert isinstance(m.stat(), Metrics)
    finally:
        m.delete()


def test_failed_create_leaves_nothing_behind(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    mnt = cg_parent.mountpoint
    # a page size the kernel does not offer (found after mkdir, before any write)
    with pytest.raises(CgroupError, match="does not offer it"):
        Manager.create(cg_path + "/a/b", Resources(hugetlb=[HugeTlbEntry("4MB", 1)]),
                       mountpoint=mnt)
    assert not exists(cg_parent, cg_path)
    # a controller this mount does not have: refused before anything is made
    from cgroup2 import Memory

    with pytest.raises(MemoryNotSupportedError):
        Manager.create(cg_path + "/a", Resources(memory=Memory(max=MiB)), mountpoint=mnt)
    assert not exists(cg_parent, cg_path)
    # a value the kernel refuses, after other values were written
    bad = Resources(
        hugetlb=[HugeTlbEntry("2MB", 2 * MiB)], unified={"cgroup.max.depth": "bogus"}
    )
    with pytest.raises(KernelError) as e:
        Manager.create(cg_path + "/x/y", bad, mountpoint=mnt)
    assert e.value.errno == errno.EINVAL and "cgroup.max.depth" in str(e.value)
    assert not exists(cg_parent, cg_path)
    # a file the group does not have
    with pytest.raises(CgroupError, match=r"has no file 'nosuch\.file'"):
        Manager.create(cg_path, Resources(unified={"nosuch.file": "1"}), mountpoint=mnt)
    assert not exists(cg_parent, cg_path)


def test_failed_update_puts_back_what_it_wrote(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(
        cg_path, Resources(hugetlb=[HugeTlbEntry("2MB", 2 * MiB)]),
        mountpoint=cg_parent.mountpoint,
    )
    try:
        bad = Resources(
            hugetlb=[HugeTlbEntry("2MB", 8 * MiB)], unified={"cgroup.max.depth": "bogus"}
        )
        with pytest.raises(KernelError):
            m.update(bad)
        with open(m.path + "/hugetlb.2MB.max") as f:
            assert f.read() == f"{2 * MiB}\n"
    finally:
        m.delete()


def test_unified_files_written_last(cg_parent: Parent, cg_path: str, procs: Spawner) -> None:
    r = Resources(unified={"cgroup.max.depth": "2", "cgroup.max.descendants": "5"})
    m = Manager.create(cg_path, r, mountpoint=cg_parent.mountpoint)
    try:
        with open(m.path + "/cgroup.max.depth") as f:
            assert f.read() == "2\n"
        with open(m.path + "/cgroup.max.descendants") as f:
            assert f.read() == "5\n"
    finally:
        m.delete()


def test_device_rules_are_applied(cg_parent: Parent, cg_path: str, procs: Spawner) -> None:
    from cgroup2.devices.rules import DeviceRule

    def run(m: Manager, script: str) -> int:
        p = procs(script)
        m.add_proc(p.pid)  # the filter applies to opens after the move
        return p.wait(timeout=10)

    null = DeviceRule(allow=False, type="c", major=1, minor=3)  # /dev/null
    rules = [DeviceRule(allow=True), null]
    m = Manager.create(cg_path, Resources(devices=rules), mountpoint=cg_parent.mountpoint)
    try:
        probe = "sleep 0.2; exec 3>{}"
        assert run(m, probe.format("/dev/null")) != 0  # denied by the group's filter
        assert run(m, probe.format("/dev/zero")) == 0
        m.update(Resources(devices=[DeviceRule(allow=True)]))  # replaces the filter
        assert run(m, probe.format("/dev/null")) == 0
    finally:
        m.delete()


def test_toggle_controllers_and_root_controllers(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    Manager.create(cg_path + "/a/b", mountpoint=cg_parent.mountpoint)
    try:
        # seen from the run's parent as the mount, so that only our own groups are written
        b = Manager(cg_parent.fs_path, cg_path[len(cg_parent.group):] + "/a/b")
        b.toggle_controllers(["hugetlb"], ControllerToggle.ENABLE)
        assert "hugetlb" in b.controllers()
        assert "hugetlb" in b.root_controllers()
        b.toggle_controllers(["hugetlb"], ControllerToggle.DISABLE)
        assert "hugetlb" not in b.controllers()
        a = Manager.load(cg_path + "/a")
        assert "hugetlb" not in a.subtree_controllers()
        with pytest.raises(CgroupError, match="invalid controller name"):
            b.toggle_controllers(["+cpu"], ControllerToggle.ENABLE)
    finally:
        Manager.load(cg_path).delete()


# --- processes ---------------------------------------------------------------------------


def test_add_proc_procs_recursive_move_to(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    src = Manager.create(cg_path + "/src", mountpoint=cg_parent.mountpoint)
    sub = src.new_child("sub")
    dst = Manager.create(cg_path + "/dst", mountpoint=cg_parent.mountpoint)
    try:
        p1, p2, p3 = (procs("exec sleep 1000") for _ in range(3))
        src.add_proc(p1.pid)
        src.add_proc(p2.pid)
        sub.add_proc(p3.pid)
        assert sorted(src.procs()) == sorted([p1.pid, p2.pid])
        assert sorted(src.procs(recursive=True)) == sorted([p1.pid, p2.pid, p3.pid])
        assert sub.procs() == [p3.pid]
        with open(f"/proc/{p3.pid}/cgroup") as f:
            assert f.read().endswith(f"::{sub.group}\n")
        p2.kill()  # exits (a zombie until reaped): the move skips it
        p2.wait()
        src.move_to(dst)
        assert src.procs(recursive=True) == []
        assert sorted(dst.procs()) == sorted([p1.pid, p3.pid])
        for bad in (-1, True):  # (0, "the writer", is tried in a child: test_rel_manager_ops)
            with pytest.raises(InvalidPidError):
                src.add_proc(bad)
        with pytest.raises(KernelError) as e:
            src.add_proc(p2.pid)
        assert e.value.errno == errno.ESRCH
    finally:
        Manager.load(cg_path).delete(kill=True)


def test_threads_and_cgroup_type(cg_parent: Parent, cg_path: str, procs: Spawner) -> None:
    root = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    t = root.new_child("t")
    try:
        assert root.cgroup_type() == "domain"
        with pytest.raises(CgroupError, match="only switch"):
            t.set_cgroup_type("domain")
        t.set_cgroup_type("threaded")
        assert t.cgroup_type() == "threaded"
        assert root.cgroup_type() == "domain threaded"
        p = procs.python(
            "import threading, time\n"
            "t = threading.Thread(target=time.sleep, args=(1000,), daemon=True)\n"
            "t.start(); print(t.native_id, flush=True); time.sleep(1000)\n"
        )
        assert p.stdout is not None
        tid = int(p.stdout.readline())
        root.add_proc(p.pid)
        t.add_thread(tid)
        assert t.threads() == [tid]
        assert p.pid in root.threads() and tid not in root.threads()
        assert root.procs() == [p.pid]
        with pytest.raises(InvalidPidError):
            t.add_thread(-1)
    finally:
        root.delete(kill=True)


def test_freeze_stops_a_busy_process_and_thaw_resumes_it(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        p = procs("while :; do :; done")
        m.add_proc(p.pid)
        assert m.state() is State.THAWED
        t0 = cpu_ticks(p.pid)
        deadline = time.monotonic() + 30  # a busy machine delays it; it runs
        while cpu_ticks(p.pid) == t0:
            assert time.monotonic() < deadline, "the busy loop is not running"
            time.sleep(0.02)
        m.freeze()
        assert m.state() is State.FROZEN
        t1 = cpu_ticks(p.pid)
        time.sleep(0.5)
        assert cpu_ticks(p.pid) == t1, "a frozen process used CPU time"
        m.thaw()
        assert m.state() is State.THAWED
        deadline = time.monotonic() + 30
        while cpu_ticks(p.pid) == t1:
            assert time.monotonic() < deadline, "the thawed process did not run again"
            time.sleep(0.02)
    finally:
        m.delete(kill=True)


def test_freeze_and_thaw_of_an_empty_group(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        m.freeze(timeout=1.0)
        assert m.state() is State.FROZEN
        child = m.new_child("c")
        assert child.state() is State.FROZEN  # frozen by its parent
        with pytest.raises(CgroupError, match="did not complete"):
            child.thaw(timeout=0.2)  # an ancestor keeps it frozen: no spin, a timeout
        m.thaw(timeout=1.0)
        assert child.state() is State.THAWED
    finally:
        m.delete()


def _fill_group(m: Manager, procs: Spawner, n: int) -> subprocess.Popen[bytes]:
    """n - 1 sleeping processes and one that forks in a loop, all in ``m``."""
    for _ in range(n - 1):
        m.add_proc(procs("exec sleep 1000").pid)
    forker = procs("read x; while :; do (:) & wait; done", stdin=True)
    m.add_proc(forker.pid)
    assert forker.stdin is not None
    forker.stdin.write(b"go\n")
    forker.stdin.flush()
    time.sleep(0.2)
    assert len(m.procs()) >= n
    return forker


def test_kill_empties_a_group_of_50_with_a_fork_loop(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        _fill_group(m, procs, 50)
        m.kill()
        assert m.procs(recursive=True) == []
        with open(m.path + "/cgroup.events") as f:
            assert "populated 0" in f.read()
        for p in procs.started:
            assert p.wait(timeout=5) == -9
    finally:
        m.delete(kill=True)


def test_kill_fallback_freeze_signal_thaw(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        _fill_group(m, procs, 10)
        with Dir.open(m.path) as d:
            m._kill_by_signal(d, 5.0)  # the path for kernels without cgroup.kill
        for p in procs.started:
            assert p.wait(timeout=5) == -9
        deadline = time.monotonic() + 5
        while m.procs(recursive=True) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert m.procs(recursive=True) == []
        assert m.state() is State.THAWED
    finally:
        m.delete(kill=True)


def test_delete_of_a_populated_group_is_refused_unless_kill(
    cg_parent: Parent, cg_path: str, procs: Spawner
) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    child = m.new_child("busy")
    p = procs("exec sleep 1000")
    child.add_proc(p.pid)
    with pytest.raises(CgroupError, match="still has processes"):
        m.delete()
    assert exists(cg_parent, child.group) and p.poll() is None  # nothing was removed
    m.delete(kill=True)
    assert not exists(cg_parent, cg_path)
    assert p.wait(timeout=5) == -9
