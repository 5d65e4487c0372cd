"""Safety: a mount point in the middle of a group path stops every entry point.

The test's own group ``other`` (children ``t1``, holding a sleeping process, and ``t2``)
is bind-mounted onto ``outer/m2``, another group of the test. ``outer/m2/t1`` then names
``other/t1`` through a mount point: every entry point that takes a group path — the
library's managers, ``Popen``/``run``, the ``Sampler``, the events, and each command —
must refuse it, name the mount point, and leave ``other`` as it was: the process alive,
``t2`` in place, nothing made below ``t1``, no signal sent (``os.kill`` and
``pidfd_send_signal`` are recorded, not sent).

Every test runs twice: with the kernel's ``openat2`` resolution and with the portable
walk (``openat`` of each component, its mount id compared with the root's), the two ways
:func:`cgroup2._fs.open_below` works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import read_procs, sleeper_in, wait_for

import cgroup2
from cgroup2 import (
    CgroupError,
    HugeTlbEntry,
    Manager,
    MountPointError,
    PressureTrigger,
    Resources,
    Sampler,
    _fs,
    _resolve,
    _sig,
)
from cgroup2.cli import main as cli_main

_KILL = os.kill  # the real one: the tests record os.kill while they run


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        _KILL(p.pid, signal.SIGKILL)
    p.wait(timeout=30)


@pytest.fixture(params=["openat2", "portable"])
def door(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The resolution the library uses in this test (and the commands it starts)."""
    if request.param == "openat2":
        fn = _resolve._load_openat2()
        assert fn is not None, "openat2 is not usable on this kernel"
        monkeypatch.setattr(_resolve, "_OPENAT2", [fn])
        monkeypatch.delenv("CGROUP2_NO_OPENAT2", raising=False)
    else:
        monkeypatch.setattr(_resolve, "_OPENAT2", [None])
        monkeypatch.setenv("CGROUP2_NO_OPENAT2", "1")
    return str(request.param)


@dataclass
class Scene:
    mnt: str
    outer: Manager
    other: Manager
    via: str  # outer/m2/t1: other/t1 named through the mount point
    proc: subprocess.Popen[bytes]

    def intact(self) -> None:
        """``other`` is as the test made it."""
        assert self.proc.poll() is None, "the process in the mounted group was signalled"
        assert read_procs(self.other.path + "/t1") == [self.proc.pid]
        assert sorted(
            e.name for e in os.scandir(self.other.path + "/t1") if e.is_dir()
        ) == [], "something was made below the mounted group"
        assert os.path.isdir(self.other.path + "/t2")


@pytest.fixture
def scene(cg_parent: Parent, cg_path: str, door: str) -> Iterator[Scene]:
    mnt = cg_parent.mountpoint
    outer = Manager.create(cg_path + "/outer", mountpoint=mnt)
    other = Manager.create(cg_path + "/other", mountpoint=mnt)
    for g in (outer.group + "/m2", other.group + "/t1", other.group + "/t2"):
        Manager.create(g, mountpoint=mnt)
    proc = sleeper_in(other.path + "/t1")
    mounted = False
    try:
        assert wait_for(lambda: read_procs(other.path + "/t1") == [proc.pid])
        r = subprocess.run(["mount", "--bind", other.path, outer.path + "/m2"],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"cannot bind-mount the test's own group: {r.stderr}"
        mounted = True
        assert os.path.isdir(outer.path + "/m2/t1")  # the hazard is there
        yield Scene(mnt, outer, other, outer.group + "/m2/t1", proc)
    finally:
        if mounted:
            r = subprocess.run(["umount", outer.path + "/m2"], capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", outer.path + "/m2"], check=True)
        _stop(proc)
        remove_tree(mnt + cg_path)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def record(target: int, sig: int, *args: Any) -> None:
        calls.append((target, sig))

    monkeypatch.setattr(os, "kill", record)
    monkeypatch.setattr(signal, "pidfd_send_signal", record)
    monkeypatch.setattr(_sig, "pidfd_send_signal", record)
    return calls


def _refused(op: Callable[[], object], where: str) -> None:
    with pytest.raises(MountPointError, match="mount point") as e:
        op()
    assert where in str(e.value), str(e.value)


# --- the library ---------------------------------------------------------------------------


def test_manager_operations_refuse_a_path_through_a_mount_point(
    scene: Scene, recorded: list[tuple[int, int]]
) -> None:
    m2 = scene.outer.path + "/m2"
    through = Manager(scene.mnt, scene.via)  # made directly: every operation opens again
    here = Manager.create(scene.outer.group + "/here", mountpoint=scene.mnt)
    ops: dict[str, Callable[[], object]] = {
        "load": lambda: Manager.load(scene.via, mountpoint=scene.mnt),
        "create below": lambda: Manager.create(scene.via + "/new", mountpoint=scene.mnt),
        "create with limits": lambda: Manager.create(
            scene.via + "/new", Resources(pids=cgroup2.Pids(max=5)), mountpoint=scene.mnt
        ),
        "new_child": lambda: through.new_child("new"),
        "kill": lambda: through.kill(timeout=1),
        "freeze": lambda: through.freeze(timeout=1),
        "thaw": lambda: through.thaw(timeout=1),
        "delete": lambda: through.delete(kill=True),
        "update": lambda: through.update(Resources(hugetlb=[HugeTlbEntry("2MB", 0)])),
        "stat": lambda: through.stat(),
        "procs": lambda: through.procs(recursive=True),
        "controllers": lambda: through.controllers(),
        "add_proc": lambda: through.add_proc(scene.proc.pid),
        "move_to (from)": lambda: through.move_to(here),
        "move_to (into)": lambda: here.move_to(through),
        "events": lambda: through.events(),
        "pressure trigger": lambda: through.pressure(
            PressureTrigger("cpu", "some", stall=0.15, window=2.0)
        ),
        "delegate": lambda: through.delegate(65534),
        "toggle_controllers": lambda: Manager(scene.mnt, scene.via + "/new").toggle_controllers(
            ["hugetlb"], cgroup2.ControllerToggle.ENABLE
        ),
        "set_cgroup_type": lambda: through.set_cgroup_type("threaded"),
        "cgroup_type": lambda: through.cgroup_type(),
        "add_thread": lambda: through.add_thread(scene.proc.pid),
        "state": lambda: through.state(),
        "subtree_controllers": lambda: through.subtree_controllers(),
        "threads": lambda: through.threads(),
        "memory_event_fd": lambda: through.memory_event_fd(),
        "effective_limits": lambda: through.effective_limits(),
    }
    for name, op in ops.items():
        try:
            _refused(op, m2)
        except BaseException as e:  # name the cell that failed
            raise AssertionError(f"{name}: {e!r}") from e
    scene.intact()
    assert recorded == []
    here.delete()


def test_popen_and_run_refuse_a_parent_through_a_mount_point(
    scene: Scene, recorded: list[tuple[int, int]]
) -> None:
    m2 = scene.outer.path + "/m2"
    _refused(lambda: cgroup2.Popen(["true"], parent=scene.via, mountpoint=scene.mnt), m2)
    _refused(lambda: cgroup2.run(["true"], parent=scene.via, mountpoint=scene.mnt), m2)
    scene.intact()
    assert recorded == []


def test_sampler_refuses_a_group_or_root_through_a_mount_point(scene: Scene) -> None:
    m2 = scene.outer.path + "/m2"
    _refused(lambda: Sampler([scene.via], mountpoint=scene.mnt), m2)
    _refused(lambda: Sampler(root=scene.via, mountpoint=scene.mnt), m2)
    # a root above the mount point: the walk stops at it, and nothing of other is held
    with pytest.raises(MountPointError):
        Sampler(root=scene.outer.group, mountpoint=scene.mnt, follow=False)
    scene.intact()


def test_the_path_through_the_mount_point_is_found_only_by_resolving(scene: Scene) -> None:
    """The hazard is real: the kernel's own path of the process's group is other/t1, and
    an ordinary open of outer/m2/t1 reaches the same directory."""
    st_via = os.stat(scene.mnt + scene.via)
    st_other = os.stat(scene.other.path + "/t1")
    assert (st_via.st_dev, st_via.st_ino) == (st_other.st_dev, st_other.st_ino)
    with pytest.raises(MountPointError):
        _fs.Dir.open(scene.mnt + scene.via)
    with pytest.raises(MountPointError):
        _fs.Dir.open(scene.mnt + scene.via, scene.mnt)
    # below the mount point, as its own root, the same group is allowed: that is a
    # mount of its own, asked for by name
    with _fs.Dir.open(scene.outer.path + "/m2/t1", scene.outer.path + "/m2") as d:
        assert d.read("cgroup.procs").split() == [str(scene.proc.pid).encode()]


# --- the commands --------------------------------------------------------------------------


def _commands(s: Scene) -> dict[str, list[str]]:
    g = s.via
    return {
        "kill": ["kill", g],
        "kill --signal TERM": ["kill", "--signal", "TERM", g],
        "rm": ["rm", g],
        "rm -r --kill": ["rm", "-r", "--kill", g],
        "freeze": ["freeze", "--timeout", "1", g],
        "thaw": ["thaw", g],
        "set": ["set", "-p", "pids.max=5", g],
        "get": ["get", g, "cgroup.procs"],
        "stat": ["stat", g],
        "ls": ["ls", "-r", g],
        "tree": ["tree", g],
        "top --once": ["top", "--once", g],
        "status": ["status", g],
        "attach": ["attach", g, str(os.getpid())],
        "exec": ["exec", g, "--", "true"],
        "run --parent": ["run", "--parent", g, "--", "true"],
        "create": ["create", g + "/new"],
        "create --parents": ["create", "--parents", g + "/new/deeper"],
        "events": ["events", g],
        "events --cgroup": ["events", "--cgroup", g],
        "export --once": ["export", "--once", "--root", g],
    }


def test_every_command_refuses_a_group_path_through_a_mount_point(
    scene: Scene, recorded: list[tuple[int, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    m2 = scene.outer.path + "/m2"
    for name, argv in _commands(scene).items():
        rc = cli_main(["--mountpoint", scene.mnt, *argv])
        out, err = capsys.readouterr()
        assert rc != 0, (name, out, err)
        assert "mount point" in err and m2 in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (name, err)
    scene.intact()
    assert recorded == []


def test_commands_in_a_fresh_process_refuse_it_too(scene: Scene, door: str) -> None:
    """The command line as a user runs it (a process of its own, which starts with the
    portable walk unless told otherwise): kill and rm, the two that did harm."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for argv in (["kill", scene.via], ["rm", "-r", "--kill", scene.via]):
        r = subprocess.run([sys.executable, "-m", "cgroup2", "--mountpoint", scene.mnt, *argv],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1 and "mount point" in r.stderr, (argv, r.stderr)
    scene.intact()


def test_a_failure_in_the_middle_of_the_door_closes_every_descriptor(
    scene: Scene, door: str
) -> None:
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(MountPointError):
            _fs.Dir.open(scene.mnt + scene.via, scene.mnt)
        with pytest.raises(CgroupError):
            _fs.Dir.open(scene.mnt + scene.outer.group + "/no-such/x", scene.mnt)
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_bind_mount_as_its_own_root_is_a_mount_point_to_refuse_whole(scene: Scene) -> None:
    """Opened as a root of its own (the mountpoint a user gave), the bind mount is
    readable, but the operations on a whole subtree see that it is a mount."""
    m2 = scene.outer.path + "/m2"
    with _fs.Dir.open(m2, m2) as d:
        assert d.mount_root() == "a mount point (a group is mounted there)"
        with pytest.raises(MountPointError, match="refusing to kill"):
            d.refuse_mount_root("kill")
    with _fs.Dir.open(scene.outer.path, scene.mnt) as d:
        assert d.mount_root() is None
    with _fs.Dir.open(scene.mnt, scene.mnt) as d:
        assert d.mount_root() == "the root of a cgroup2 mount"


def test_the_root_of_a_chroot_into_a_group_is_refused_whole(
    cg_parent: Parent, cg_path: str
) -> None:
    """A process whose root directory is a group (chroot): ``..`` of its ``/`` is ``/``
    itself, on the same file system — the root of what it can see, refused whole."""
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path + "/jail", mountpoint=mnt)
    try:
        with _fs.Dir.open(m.path, mnt):  # the mount's device is known before the chroot
            pass
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if every check holds
            code = 1
            try:
                os.chroot(m.path)
                os.chdir("/")
                with _fs.Dir.open("/", "/") as d:
                    ok = d.mount_root() == "the root of the cgroup2 hierarchy"
                    try:
                        d.refuse_mount_root("delete")
                    except MountPointError as e:
                        ok = ok and "the root of the cgroup2 hierarchy" in str(e)
                    else:
                        ok = False
                code = 0 if ok else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        remove_tree(mnt + cg_path)
