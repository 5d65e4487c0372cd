"""Safety: no operation reaches outside its own groups (issue 13, items 1-5, 7, 14).

Every hazard here is met through each entry point that can reach it: the root group of a
mount, a mount point inside a group (the tests bind-mount their own groups, and a
directory of their own under /tmp, inside their own parent, and unmount them at the end),
a directory that is not cgroup2 given as the mount, a tree deeper than Python's recursion
limit, and signals at each step of ``create``.

Signals are never sent for real outside the tests' own processes: ``os.kill`` and
``signal.pidfd_send_signal`` are replaced by a recorder wherever the root group could be
reached, and a recorded call fails the test.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Parent
from reltools import no_leaks, read_procs, sleeper_in, stop, wait_for  # noqa: F401

import cgroup2
from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    HugeTlbEntry,
    InvalidGroupPathError,
    KernelError,
    Manager,
    MountPointError,
    NotCgroup2Error,
    Resources,
    _fs,
    _sig,
)
from cgroup2.cli import main as cli_main
from cgroup2.errors import TreeLimitError
from cgroup2.paths import mounts

# --- the recorder -------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """``os.kill`` and ``pidfd_send_signal`` record instead of signalling (the library
    calls it through cgroup2._sig, the C function without signal's enums)."""
    rec = Recorder()

    def kill(pid: int, sig: int) -> None:
        rec.calls.append(("kill", (pid, sig)))

    def pidfd_send_signal(fd: int, sig: int, *args: Any) -> None:
        rec.calls.append(("pidfd_send_signal", (fd, sig)))

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(signal, "pidfd_send_signal", pidfd_send_signal)
    monkeypatch.setattr(_sig, "pidfd_send_signal", pidfd_send_signal)
    return rec


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = cli_main(argv)
    return rc, capsys.readouterr().err


# --- item 1: the root group of a mount ---------------------------------------------------------


def _root_ops(m: Manager) -> dict[str, Any]:
    return {
        "kill": lambda: m.kill(timeout=1),
        "freeze": lambda: m.freeze(timeout=1),
        "thaw": lambda: m.thaw(timeout=1),
        "delete": lambda: m.delete(kill=True),
        "move_to": lambda: m.move_to(Manager(m.mountpoint, "/never-made-by-this-test")),
    }


def test_root_group_is_refused_by_every_operation(cg_parent: Parent, recorder: Recorder) -> None:
    m = Manager.load("/", mountpoint=cg_parent.mountpoint)
    for name, op in _root_ops(m).items():
        with pytest.raises(MountPointError, match="root") as e:
            op()
        assert m.path in str(e.value), name
    assert recorder.calls == []
    assert os.path.isdir(cg_parent.fs_path)


def test_cli_kill_freeze_thaw_rm_of_root_are_refused(
    cg_parent: Parent, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    mnt = cg_parent.mountpoint
    for cmd in (["kill", "/"], ["freeze", "/"], ["thaw", "/"], ["rm", "--kill", "/"]):
        rc, err = _cli(["--mountpoint", mnt, *cmd], capsys)
        assert rc == 1, (cmd, err)
        assert "root group" in err and err.count("\n") == 1, (cmd, err)
    assert recorder.calls == []


def test_root_reached_through_the_directory_above_the_mount_is_refused(
    cg_parent: Parent, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--mountpoint <dir above the mount> kill /<mount's name>`` names the mount's root
    without the group path "/"."""
    mnt = cg_parent.mountpoint
    above, name = os.path.dirname(mnt), "/" + os.path.basename(mnt)
    for cmd in ("kill", "freeze", "thaw", "rm"):
        rc, err = _cli(["--mountpoint", above, cmd, name], capsys)
        assert rc == 1 and "cgroup2" in err, (cmd, err)
    m = Manager(above, name)
    for name_, op in _root_ops(m).items():
        with pytest.raises(CgroupError) as e:
            op()
        assert isinstance(e.value, (NotCgroup2Error, MountPointError)), (name_, e.value)
    assert recorder.calls == []


def test_root_reached_as_a_sub_path_of_the_mount_is_refused(
    cg_parent: Parent, recorder: Recorder
) -> None:
    """The mount given as one of its own groups (``mountpoint=<mount>/<run parent>``):
    that group's "/" is not the mount's root, but a mount's root given as a group of a
    bind mount of its parent is (see the bind-mount tests); here the check is that the
    group "/" of any mount point given is refused before any write."""
    m = Manager(cg_parent.fs_path, "/")
    for op in _root_ops(m).values():
        with pytest.raises(MountPointError):
            op()
    assert recorder.calls == []


def test_v1_mount_is_refused(recorder: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    v1 = [m.mountpoint for m in mounts() if m.fstype == "cgroup"]
    if not v1:
        pytest.skip("no cgroup v1 hierarchy is mounted on this machine")
    for mp in v1[:3]:
        for cmd in ("kill", "freeze", "rm"):
            for group in ("/", "/x"):
                rc, err = _cli(["--mountpoint", mp, cmd, group], capsys)
                assert rc == 1 and ("cgroup2" in err or "root group" in err), (mp, cmd, err)
        with pytest.raises(NotCgroup2Error):
            Manager.load("/", mountpoint=mp)
        for op in _root_ops(Manager(mp, "/")).values():
            with pytest.raises(MountPointError):
                op()
    assert recorder.calls == []


def test_kill_fallback_never_signals_itself_or_pid_1_or_a_pid_that_left(
    cg_parent: Parent, cg_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal fallback (kernels without cgroup.kill) signals only pids still listed
    in the group's subtree on a second read, through a pidfd, and never this process or
    PID 1 even when the first read lists them."""
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    p = sleeper_in(m.path)
    sent: list[int] = []
    real = signal.pidfd_send_signal
    reads = iter([[1, os.getpid(), p.pid, 999_999], [p.pid]])

    def fake_pids(d: Any) -> list[int]:
        return next(reads, [])

    def record(fd: int, sig: int, *args: Any) -> None:
        if sig:  # signal 0: the permission check that comes before any signal
            sent.append(fd)
        real(fd, sig)

    try:
        assert wait_for(lambda: read_procs(m.path) == [p.pid])
        import cgroup2.manager as mgr

        monkeypatch.setattr(mgr, "_subtree_pids", fake_pids)
        monkeypatch.setattr(_sig, "pidfd_send_signal", record)
        with _fs.Dir.open(m.path) as d:
            assert mgr._signal_subtree(d, signal.SIGKILL) is True
        assert len(sent) == 1
        assert p.wait(timeout=5) == -signal.SIGKILL
    finally:
        stop(p)
        monkeypatch.undo()
        m.delete(kill=True)


# --- items 2: mount points inside a group ---------------------------------------------------


@contextlib.contextmanager
def bind(src: str, dst: str) -> Iterator[None]:
    """Bind-mount ``src`` onto ``dst`` (both the test's own), unmounted at the end."""
    r = subprocess.run(["mount", "--bind", src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        yield
    finally:
        r = subprocess.run(["umount", dst], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", dst], check=True)


@pytest.fixture
def outer_and_other(cg_parent: Parent, cg_path: str) -> Iterator[tuple[Manager, Manager]]:
    """``outer`` with a sub-group ``sub``, and ``other`` with children ``x`` and ``y``:
    two groups of this test, neither inside the other."""
    mnt = cg_parent.mountpoint
    outer = Manager.create(cg_path + "/outer", mountpoint=mnt)
    other = Manager.create(cg_path + "/other", mountpoint=mnt)
    for g in (outer.group + "/sub", other.group + "/x", other.group + "/y"):
        Manager.create(g, mountpoint=mnt)
    try:
        yield outer, other
    finally:
        for p in (outer.path + "/sub", outer.path):
            while os.path.ismount(p) or _mounted_on(p):
                subprocess.run(["umount", "-l", p], check=False)
        from cgtest import remove_tree

        remove_tree(cg_parent.mountpoint + cg_path)


def _mounted_on(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4] == path for line in f)


def test_delete_and_walks_never_go_into_a_group_mounted_inside(
    outer_and_other: tuple[Manager, Manager], recorder: Recorder
) -> None:
    outer, other = outer_and_other
    sub = outer.path + "/sub"
    with bind(other.path, sub):
        assert {"x", "y"} <= set(os.listdir(sub))
        for name, op in {
            "delete": lambda: outer.delete(kill=True),
            "procs": lambda: outer.procs(recursive=True),
            "move_to": lambda: outer.move_to(other),
        }.items():
            with pytest.raises(MountPointError, match="mount point") as e:
                op()
            assert sub in str(e.value), name
        with pytest.raises(MountPointError, match="mount point"):
            Manager.load(outer.group + "/sub", mountpoint=outer.mountpoint)
        sub_m = Manager(outer.mountpoint, outer.group + "/sub")  # not loaded: each op opens
        for op in {
            "kill": lambda: sub_m.kill(timeout=1),
            "freeze": lambda: sub_m.freeze(timeout=1),
            "thaw": lambda: sub_m.thaw(timeout=1),
            "delete": lambda: sub_m.delete(),
        }.values():
            with pytest.raises(MountPointError, match="mount point"):
                op()
        assert os.path.isdir(other.path + "/x") and os.path.isdir(other.path + "/y")
    assert os.path.isdir(other.path + "/x") and os.path.isdir(other.path + "/y")
    assert recorder.calls == []


def test_kill_of_a_group_mounted_inside_does_not_reach_the_mounted_group(
    outer_and_other: tuple[Manager, Manager],
) -> None:
    outer, other = outer_and_other
    p = sleeper_in(other.path + "/x")
    try:
        assert wait_for(lambda: read_procs(other.path + "/x") == [p.pid])
        with bind(other.path, outer.path + "/sub"):
            sub_m = Manager(outer.mountpoint, outer.group + "/sub")
            with pytest.raises(MountPointError):
                sub_m.kill(timeout=2)
            with pytest.raises(MountPointError):
                outer.delete(kill=True)
        assert p.poll() is None, "the process in the mounted group was killed"
    finally:
        stop(p)


def test_delete_never_removes_directories_of_another_file_system(
    outer_and_other: tuple[Manager, Manager], tmp_path: Path
) -> None:
    outer, _ = outer_and_other
    plain = tmp_path / "plain"
    (plain / "empty-1").mkdir(parents=True)
    (plain / "empty-2" / "deeper").mkdir(parents=True)
    with bind(str(plain), outer.path + "/sub"):
        with pytest.raises(MountPointError, match="mount point") as e:
            outer.delete()
        assert outer.path + "/sub" in str(e.value)
        with pytest.raises(MountPointError):
            outer.procs(recursive=True)
    assert sorted(p.name for p in plain.iterdir()) == ["empty-1", "empty-2"]
    assert (plain / "empty-2" / "deeper").is_dir()


def test_cli_rm_tree_top_refuse_a_mount_point_inside(
    outer_and_other: tuple[Manager, Manager], capsys: pytest.CaptureFixture[str]
) -> None:
    outer, other = outer_and_other
    mnt = outer.mountpoint
    with bind(other.path, outer.path + "/sub"):
        for cmd in (["rm", outer.group], ["tree", outer.group], ["top", "--once", outer.group]):
            rc, err = _cli(["--mountpoint", mnt, *cmd], capsys)
            assert rc == 1 and "mount point" in err, (cmd, err)
    assert os.path.isdir(other.path + "/x")


# --- item 3: a directory that is not cgroup2 -------------------------------------------------


@pytest.fixture
def plain_tree(tmp_path: Path) -> Path:
    """An ordinary directory that looks like a group: files named like interface files."""
    for d in ("x", "x/child", "y"):
        (tmp_path / d).mkdir()
    for f in ("cgroup.kill", "cgroup.freeze", "cgroup.procs", "cgroup.events", "pids.max"):
        (tmp_path / "x" / f).write_text("precious\n")
    return tmp_path


def _tree_state(root: Path) -> list[tuple[str, str]]:
    out = []
    for p in sorted(root.rglob("*")):
        out.append((str(p.relative_to(root)), p.read_text() if p.is_file() else "<dir>"))
    return out


def test_every_entry_point_refuses_a_directory_that_is_not_cgroup2(
    plain_tree: Path, recorder: Recorder
) -> None:
    mp = str(plain_tree)
    before = _tree_state(plain_tree)
    with pytest.raises(NotCgroup2Error, match="cgroup2"):
        Manager.load("/x", mountpoint=mp)
    with pytest.raises(NotCgroup2Error, match="cgroup2"):
        Manager.create("/new", mountpoint=mp)
    with pytest.raises(NotCgroup2Error, match="cgroup2"):
        Manager.create("/x/child/new", Resources(pids=None), mountpoint=mp)
    m = Manager(mp, "/x")  # the constructor alone does not look at the disk
    ops = {
        **_root_ops(m),
        "procs": lambda: m.procs(recursive=True),
        "stat": lambda: m.stat(),
        "update": lambda: m.update(Resources(hugetlb=[])),
        "add_proc": lambda: m.add_proc(os.getpid()),
        "controllers": lambda: m.controllers(),
        "state": lambda: m.state(),
        "events": lambda: m.events(),
        "new_child": lambda: m.new_child("c"),
        "delete-child": lambda: Manager(mp, "/y").delete(),
        "Popen": lambda: cgroup2.Popen(["true"], parent="/x", mountpoint=mp),
        "run": lambda: cgroup2.run(["true"], mountpoint=mp),
        "Sampler": lambda: cgroup2.Sampler(["/x"], mountpoint=mp),
        "Sampler root": lambda: cgroup2.Sampler(root="/", mountpoint=mp),
        "pressure": lambda: m.pressure(cgroup2.PressureTrigger("cpu", "some", 0.15, 2.0)),
    }
    for name, op in ops.items():
        with pytest.raises(NotCgroup2Error):
            op()
            pytest.fail(f"{name} did not refuse")
    assert _tree_state(plain_tree) == before
    assert recorder.calls == []


@pytest.mark.parametrize(
    "cmd",
    [
        ["kill", "/x"],
        ["freeze", "/x"],
        ["thaw", "/x"],
        ["rm", "/y"],
        ["rm", "--kill", "/x"],
        ["stat", "/x"],
        ["tree", "/x"],
        ["tree"],
        ["top", "--once", "/x"],
        ["events", "/x"],
        ["run", "--name", "new", "--", "true"],
        ["export", "--once"],
        ["export", "--once", "--root", "/x"],
        ["ls", "-r", "/x"],
        ["get", "/x", "cgroup.procs"],
        ["status", "/x"],
    ],
)
def test_every_command_refuses_a_mountpoint_that_is_not_cgroup2(
    plain_tree: Path, cmd: list[str], recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree_state(plain_tree)
    rc, err = _cli(["--mountpoint", str(plain_tree), *cmd], capsys)
    assert rc == 1 and "cgroup2" in err and err.count("\n") == 1, (cmd, err)
    assert _tree_state(plain_tree) == before
    assert recorder.calls == []


def test_a_missing_mountpoint_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _cli(["--mountpoint", "/nonexistent-mount", "kill", "/x"], capsys)
    assert rc == 1 and "/nonexistent-mount" in err and "Errno" not in err.split("(")[0], err


# --- item 4: depth --------------------------------------------------------------------------

DEPTH = 1100  # more than Python's default recursion limit


def _deep(base: str, depth: int) -> None:
    """Make ``depth`` nested groups ``d`` below ``base`` with raw system calls."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)


def test_a_tree_of_1100_levels_is_walked_listed_and_removed(
    cg_parent: Parent, cg_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path, mountpoint=mnt)
    try:
        _deep(m.path, DEPTH)
        assert m.procs(recursive=True) == []
        rc, err = _cli(["--mountpoint", mnt, "tree", "--no-procs", m.group], capsys)
        assert rc == 0, err
        rc, err = _cli(["--mountpoint", mnt, "top", "--once", m.group], capsys)
        assert rc == 0, err
        p = sleeper_in(m.path + "/d" * 3)
        try:
            assert m.procs(recursive=True) == [p.pid]
        finally:
            stop(p)
        m.delete()
        assert not os.path.exists(m.path)
    finally:
        from cgtest import remove_tree

        remove_tree(m.path)


def test_cli_rm_removes_a_tree_of_1100_levels(
    cg_parent: Parent, cg_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path, mountpoint=mnt)
    try:
        _deep(m.path, DEPTH)
        rc, err = _cli(["--mountpoint", mnt, "rm", m.group], capsys)
        assert rc == 0, err
        assert not os.path.exists(m.path)
    finally:
        from cgtest import remove_tree

        remove_tree(m.path)


def test_depth_and_count_bounds_are_errors_not_crashes(
    cg_parent: Parent, cg_path: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path, mountpoint=mnt)
    try:
        _deep(m.path, 60)
        monkeypatch.setattr(_fs, "MAX_DEPTH", 50)
        with pytest.raises(TreeLimitError, match="50 levels"):
            m.procs(recursive=True)
        with pytest.raises(TreeLimitError):
            m.delete()
        assert os.path.isdir(m.path + "/d" * 60), "a refused delete removed groups"
        rc, err = _cli(["--mountpoint", mnt, "rm", m.group], capsys)
        assert rc == 1 and "50 levels" in err, err
        monkeypatch.setattr(_fs, "MAX_DEPTH", 10_000)
        monkeypatch.setattr(_fs, "MAX_GROUPS", 30)
        with pytest.raises(TreeLimitError, match="30 groups"):
            m.procs(recursive=True)
    finally:
        monkeypatch.undo()
        from cgtest import remove_tree

        remove_tree(m.path)


# --- item 5: signals during create ------------------------------------------------------------

_SIGNAL_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from cgroup2 import Manager, Resources, HugeTlbEntry

    mnt, base, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    # Python leaves SIGINT ignored when it started so (a background job of a shell
    # without job control): the interrupts below need its KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    res = None
    if variant == "hugetlb":
        res = Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 22)])
    count = 0
    at = 0
    sent = None

    def tracer(frame, event, arg):
        # every call, line and return in the library's code is a step; SIGINT is sent at
        # step `at`
        global count, sent
        if "cgroup2" in frame.f_code.co_filename:
            count += 1
            if count == at:
                sent = (event, frame.f_code.co_name)
                os.kill(os.getpid(), signal.SIGINT)
        return tracer

    def group_of(n):
        return f"{base}/a{n}/b" if variant == "tree" else f"{base}/g{n}"

    def remove(n):
        Manager.load(group_of(n), mountpoint=mnt).delete()
        if variant == "tree":
            Manager.load(f"{base}/a{n}", mountpoint=mnt).delete()

    # a first, uninterrupted create counts the steps
    sys.settrace(tracer)
    Manager.create(group_of(0), res, mountpoint=mnt)
    sys.settrace(None)
    remove(0)
    steps = count
    out = {"steps": steps, "interrupted": 0, "after_return": 0, "completed": 0, "leaked": []}
    for n in range(1, steps + 1):
        count, at, sent = 0, n, None
        sys.settrace(tracer)
        try:
            Manager.create(group_of(n), res, mountpoint=mnt)
            sys.settrace(None)
        except KeyboardInterrupt:
            sys.settrace(None)
            top = group_of(n)[len(base) + 1 :].split("/")[0]
            if sent == ("return", "create"):
                # sent as create() returned: the exception is raised in this frame, after
                # the group was made and handed back (the caller's to remove)
                out["after_return"] += 1
                remove(n)
                continue
            out["interrupted"] += 1
            if os.path.exists(mnt + base + "/" + top):
                out["leaked"].append(top)
            continue
        out["completed"] += 1  # the signal came after create returned
        remove(n)
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("variant", ["leaf", "tree", "hugetlb"])
def test_a_signal_at_any_step_of_create_leaves_no_group(
    cg_parent: Parent, cg_path: str, variant: str
) -> None:
    mnt = cg_parent.mountpoint
    if variant == "hugetlb" and "2MB" not in cgroup2.controllers.hugetlb.page_sizes():
        pytest.skip("needs 2MB huge pages for the hugetlb variant")
    m = Manager.create(cg_path, mountpoint=mnt)
    try:
        r = subprocess.run(
            [sys.executable, "-c", _SIGNAL_CHILD, mnt, m.group, variant],
            capture_output=True, text=True, timeout=120,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        out = json.loads(r.stdout)
        print(variant, out)
        assert out["leaked"] == [], out
        # every step of create was interrupted once (later creates take fewer steps: the
        # first one fills the caches), and the last step is the return
        assert out["interrupted"] >= 50 and out["after_return"] == 1, out
        assert os.listdir(m.path) == [n for n in os.listdir(m.path) if "." in n]
    finally:
        from cgtest import remove_tree

        remove_tree(m.path)


# --- item 7: names of interface files ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["memory.max", "hugetlb.2MB.max", "cgroup.procs", "cpu.weight", "io.pressure",
             "pids.max", "cgroup.anything"]
)
def test_names_of_interface_files_are_refused(
    cg_parent: Parent, cg_path: str, name: str
) -> None:
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path, mountpoint=mnt)
    try:
        with pytest.raises(InvalidGroupPathError, match="interface files") as e:
            Manager.create(f"{cg_path}/{name}", mountpoint=mnt)
        assert name in str(e.value)
        with pytest.raises(InvalidGroupPathError):
            m.new_child(name)
        with pytest.raises(InvalidGroupPathError):
            Manager.create(f"{cg_path}/{name}/below", mountpoint=mnt)
        assert not os.path.isdir(m.path + "/" + name)
        # names that only look alike are fine
        for ok in ("memory", "memorymax", "_memory.max", "job.memory.max"):
            Manager.create(f"{cg_path}/{ok}", mountpoint=mnt).delete()
    finally:
        m.delete()


def test_a_clashing_child_made_by_hand_is_named_when_the_controller_is_enabled(
    cg_parent: Parent, cg_path: str
) -> None:
    mnt = cg_parent.mountpoint
    if "2MB" not in cgroup2.controllers.hugetlb.page_sizes():
        pytest.skip("needs 2MB huge pages")
    with open(mnt + "/cgroup.controllers") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip("needs the hugetlb controller")
    m = Manager.create(cg_path, mountpoint=mnt)
    inner = m.new_child("inner")  # m enables nothing yet: inner has no hugetlb files
    clash = inner.path + "/hugetlb.2MB.max"
    try:
        os.mkdir(clash)  # made by someone else, with a raw mkdir
        with pytest.raises(KernelError) as e:
            Manager.create(inner.group + "/job",
                           Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)]), mountpoint=mnt)
        assert e.value.errno == errno.EEXIST
        assert "child group's name" in str(e.value), e.value
        assert not os.path.exists(inner.path + "/job")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(clash)
        m.delete()


# --- item 14: errors that say what happened ----------------------------------------------------


def test_a_group_that_never_existed_is_not_called_deleted(cg_parent: Parent) -> None:
    with pytest.raises(CgroupDeletedError) as e:
        Manager.load(cg_parent.group + "/never-made", mountpoint=cg_parent.mountpoint)
    assert "does not exist" in str(e.value) and "deleted" not in str(e.value)


def test_freeze_of_root_names_the_root_not_the_kernel(cg_parent: Parent) -> None:
    with pytest.raises(MountPointError) as e:
        Manager.load("/", mountpoint=cg_parent.mountpoint).freeze()
    assert "root group" in str(e.value) and "kernel" not in str(e.value)


def test_enabling_controllers_in_a_group_with_processes_names_the_rule(
    cg_parent: Parent, cg_path: str
) -> None:
    mnt = cg_parent.mountpoint
    with open(mnt + "/cgroup.subtree_control") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip("needs hugetlb enabled in the mount's root (not changed by tests)")
    m = Manager.create(cg_path, mountpoint=mnt)
    p = sleeper_in(m.path)
    try:
        assert wait_for(lambda: read_procs(m.path) == [p.pid])
        child = Manager(mnt, cg_path + "/child")
        with pytest.raises(KernelError) as e:
            child.toggle_controllers(["hugetlb"], cgroup2.ControllerToggle.ENABLE)
        assert e.value.errno == errno.EBUSY and "no-internal-processes" in str(e.value)
    finally:
        stop(p)
        m.delete()


def test_move_to_into_its_own_sub_group_is_refused_before_moving(
    cg_parent: Parent, cg_path: str
) -> None:
    mnt = cg_parent.mountpoint
    m = Manager.create(cg_path, mountpoint=mnt)
    sub = m.new_child("sub")
    p = sleeper_in(m.path)
    try:
        assert wait_for(lambda: read_procs(m.path) == [p.pid])
        with pytest.raises(CgroupError, match="inside the group itself"):
            m.move_to(sub)
        assert read_procs(m.path) == [p.pid] and read_procs(sub.path) == []
    finally:
        stop(p)
        m.delete(kill=True)

