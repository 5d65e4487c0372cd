"""The file layer's safety rules, and the leak checker's own eyes.

* cgroupfs refuses symlinks, hard links, device nodes and regular files: nothing can be
  planted in a group for the library to follow (shown on the real mount).
* ``_fs`` never follows a symlink and never leaves its directory: shown on an ordinary
  directory (``tmp_path``), where symlinks can be made.
* The leak check sees what it is meant to see: an fd, a child, an attached program.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from conftest import Parent
from reltools import attached_device_programs, child_pids, no_leaks, open_fds  # noqa: F401

from cgroup2 import CgroupDeletedError, CgroupError, KernelError, Manager, _fs
from cgroup2._fs import Dir

# --- cgroupfs refuses what could be followed ----------------------------------------------


def test_cgroupfs_refuses_symlinks_links_nodes_and_files(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        attempts = {
            "symlink": lambda: os.symlink("/etc/passwd", fs + "/evil"),
            "symlink-dir": lambda: os.symlink("/", fs + "/evil-dir"),
            "hardlink": lambda: os.link(fs + "/cgroup.procs", fs + "/evil-link"),
            "mknod": lambda: os.mknod(fs + "/evil-node", 0o600 | 0o020000, os.makedev(1, 3)),
            "file": lambda: os.close(os.open(fs + "/evil-file", os.O_CREAT | os.O_WRONLY, 0o600)),
        }
        for what, attempt in attempts.items():
            with pytest.raises(OSError) as e:
                attempt()
            assert e.value.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EACCES, errno.ENOTSUP), (
                what,
                e.value,
            )
        assert not [n for n in os.listdir(fs) if n.startswith("evil")]
    finally:
        os.rmdir(fs)


# --- _fs on an ordinary directory --------------------------------------------------------------


@pytest.fixture
def planted(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A directory with a file, a subdirectory, and symlinks to a secret file, to a
    directory outside, and to the file inside. The file layer takes its file system as
    cgroup2 for the test (it refuses any other, see test_rel_mounts.py)."""
    root = os.fspath(tmp_path)
    monkeypatch.setattr(_fs, "_cgroup2_devs", _fs._cgroup2_devs | {os.stat(root).st_dev})
    real = _fs._outermost_mount  # its paths resolve from it, as a group's from its mount
    monkeypatch.setattr(
        _fs, "_outermost_mount", lambda p: root if p.startswith(root + "/") else real(p)
    )
    outside = os.path.join(root, "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write("secret")
    group = os.path.join(root, "group")
    os.mkdir(group)
    os.mkdir(os.path.join(group, "child"))
    with open(os.path.join(group, "pids.max"), "w") as f:
        f.write("max\n")
    os.symlink(os.path.join(outside, "secret"), os.path.join(group, "memory.max"))
    os.symlink(outside, os.path.join(group, "linkdir"))
    os.symlink("pids.max", os.path.join(group, "relative-link"))
    return group


def test_fs_reads_and_writes_no_symlink(planted: str) -> None:
    secret = os.path.join(os.path.dirname(planted), "outside", "secret")
    with Dir.open(planted) as d:
        assert d.read("pids.max") == b"max\n"
        for name in ("memory.max", "relative-link"):
            with pytest.raises(KernelError) as e:
                d.read(name)
            assert e.value.errno == errno.ELOOP and name in str(e.value)
    with open(secret) as f:
        assert f.read() == "secret"


def test_fs_try_read_and_write_refuse_symlinks(planted: str) -> None:
    secret = os.path.join(os.path.dirname(planted), "outside", "secret")
    with Dir.open(planted) as d:
        with pytest.raises(KernelError) as e:
            d.try_read("memory.max")
        assert e.value.errno == errno.ELOOP
        with pytest.raises(KernelError) as e:
            d.write("memory.max", "overwritten")
        assert e.value.errno == errno.ELOOP and "'overwritten'" in str(e.value)
    with open(secret) as f:
        assert f.read() == "secret"


def test_fs_child_and_open_refuse_a_symlinked_directory(planted: str) -> None:
    with pytest.raises(KernelError) as e:
        Dir.open(os.path.join(planted, "linkdir"))
    assert e.value.errno in (errno.ELOOP, errno.ENOTDIR)
    with Dir.open(planted) as d:
        with pytest.raises(KernelError) as e:
            d.child("linkdir")
        assert e.value.errno in (errno.ELOOP, errno.ENOTDIR)
        # a symlink to a directory is not a group
        assert [n for n, _ in d.subdir_entries()] == ["child"]
        with d.child("child") as c:
            assert c.path.endswith("/group/child")


BAD_NAMES = ["..", ".", "", "../outside/secret", "a/b", "/etc/passwd", "x\0y", 5]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_fs_names_that_leave_the_directory_are_refused(planted: str, name: object) -> None:
    outside = os.path.join(os.path.dirname(planted), "outside")
    before = sorted(os.listdir(outside)), sorted(os.listdir(planted))
    with Dir.open(planted) as d:
        for call in (
            lambda: d.read(name),  # type: ignore[arg-type]
            lambda: d.try_read(name),  # type: ignore[arg-type]
            lambda: d.write(name, "1"),  # type: ignore[arg-type]
            lambda: d.exists(name),  # type: ignore[arg-type]
            lambda: d.mkdir(name),  # type: ignore[arg-type]
            lambda: d.child(name),  # type: ignore[arg-type]
        ):
            with pytest.raises(CgroupError) as e:
                call()
            assert "invalid file name" in str(e.value)
    assert (sorted(os.listdir(outside)), sorted(os.listdir(planted))) == before


def test_load_refuses_a_symlink_as_a_group(planted: str) -> None:
    root = os.path.dirname(planted)
    with pytest.raises(CgroupDeletedError, match="not a group directory"):
        Manager.load("/group/linkdir", mountpoint=root)


def test_create_refuses_a_mountpoint_that_is_not_cgroup2(planted: str) -> None:
    root = os.path.dirname(planted)
    try:
        with pytest.raises(CgroupError):
            Manager.create("/group/linkdir/made", mountpoint=root)
    finally:
        made = os.path.join(root, "outside", "made")
        if os.path.isdir(made):
            os.rmdir(made)


# --- the leak check sees leaks --------------------------------------------------------------


def test_leak_check_sees_an_fd_and_a_child() -> None:
    fds = open_fds()
    r, w = os.pipe()
    try:
        grown = set(open_fds()) - set(fds)
        assert {r, w} <= grown
    finally:
        os.close(r)
        os.close(w)
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert p.pid in child_pids()
    finally:
        p.kill()
        p.wait()
    assert p.pid not in child_pids()


def test_leak_check_sees_an_attached_program(cg_parent: Parent, cg_path: str) -> None:
    devices = pytest.importorskip("cgroup2.devices")
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        if attached_device_programs(fs) < 0:
            pytest.skip("bpf(2) is not available")
        prog, lic = devices.device_filter([devices.DeviceRule(True)])
        fd = os.open(fs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            detach = devices.load_attach_device_filter(prog, lic, fd)
            try:
                assert attached_device_programs(fs) == 1
            finally:
                detach()
            assert attached_device_programs(fs) == 0
        finally:
            os.close(fd)
    finally:
        os.rmdir(fs)
