"""The file layer's answers on the real cgroup2 mount: each way a path can fail to open,
each error's type, message and attributes, and when the kernel's ``openat2`` is used.

What a caller catches (``CgroupDeletedError``, ``NotCgroup2Error``, ``MountPointError``,
``KernelError``) and what its message names are the library's interface: these tests
pin them for every branch of :meth:`cgroup2._fs.Dir.open` and of the error translation.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import made_group  # noqa: F401 (a fixture)

from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    KernelError,
    Manager,
    MountPointError,
    NotCgroup2Error,
    _fs,
    _resolve,
)
from cgroup2._fs import Dir


@pytest.fixture(params=["openat2", "portable"])
def door(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openat2":
        fn = _resolve._load_openat2()
        assert fn is not None
        monkeypatch.setattr(_resolve, "_OPENAT2", [fn])
    else:
        monkeypatch.setattr(_resolve, "_OPENAT2", [None])
    return str(request.param)


@pytest.fixture
def group(made_group: Manager) -> Manager:  # noqa: F811 (the fixture imported above)
    return made_group


def test_a_missing_group_is_deleted_error_naming_the_path(group: Manager, door: str) -> None:
    for path in (group.path + "/nope", group.path + "/nope/deeper"):
        with pytest.raises(CgroupDeletedError) as e:
            Dir.open(path, group.mountpoint)
        assert str(e.value) == (
            f"cgroups: {path} does not exist (the group was deleted, or never made)"
        )
        assert (e.value.errno, e.value.path) == (errno.ENOENT, path)


def test_a_file_on_the_way_is_not_a_group_directory(group: Manager, door: str) -> None:
    path = group.path + "/cgroup.procs/x"
    with pytest.raises(KernelError) as e:
        Dir.open(path, group.mountpoint)
    assert e.value.errno == errno.ENOTDIR
    assert e.value.path == path
    assert "open directory" in str(e.value)
    assert "not a group directory (a file or a symlink on the way)" in str(e.value)


def test_a_path_outside_its_root_is_refused(group: Manager) -> None:
    with pytest.raises(CgroupError) as e:
        Dir.open("/tmp/x", group.mountpoint)
    assert str(e.value) == f"cgroups: /tmp/x is not below {group.mountpoint}"
    # a sibling whose name starts like the root is not below it either
    with pytest.raises(CgroupError, match="is not below"):
        Dir.open(group.path + "x", group.path)


def test_the_mount_point_is_named_exactly(cg_parent: Parent, cg_path: str, door: str) -> None:
    mnt = cg_parent.mountpoint
    outer = Manager.create(cg_path + "/outer", mountpoint=mnt)
    other = Manager.create(cg_path + "/other", mountpoint=mnt)
    Manager.create(other.group + "/t/u", mountpoint=mnt)
    Manager.create(outer.group + "/m2", mountpoint=mnt)
    m2 = outer.path + "/m2"
    subprocess.run(["mount", "--bind", other.path, m2], check=True)
    try:
        for root in (mnt, mnt + "/"):  # the root as given, with its trailing slash
            for rest in ("", "/t", "/t/u"):
                with pytest.raises(MountPointError) as e:
                    Dir.open(m2 + rest, root)
                assert e.value.path == m2, (root, rest)
                assert str(e.value) == (
                    f"cgroups: {m2} is a mount point (another file system or group is "
                    f"mounted there); refusing to go below it"
                )
        # without a root: the outermost cgroup2 mount, not the bind mount (which the
        # mount table also lists as a cgroup2 mount)
        assert _fs._outermost_mount(m2 + "/t") == mnt
        with pytest.raises(MountPointError) as e:
            Dir.open(m2 + "/t")
        assert e.value.path == m2
        with Dir.open(outer.path, mnt) as d, pytest.raises(MountPointError) as e:
            d.child("m2")
        assert e.value.path == m2
    finally:
        subprocess.run(["umount", m2], check=True)
        remove_tree(mnt + cg_path)


def test_a_path_below_no_cgroup2_mount(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    st = os.stat(d)
    with pytest.raises(NotCgroup2Error) as e:
        Dir.open(str(d))
    assert str(e.value) == (
        f"cgroups: {d} is not on a cgroup2 file system (device {os.major(st.st_dev)}:"
        f"{os.minor(st.st_dev)} is not below a cgroup2 mount point of /proc/self/mountinfo); "
        f"nothing below it was touched"
    )
    assert e.value.path == str(d)
    missing = str(tmp_path / "none" / "x")
    with pytest.raises(CgroupDeletedError) as e2:
        Dir.open(missing)
    assert (e2.value.errno, e2.value.path) == (errno.ENOENT, missing)
    assert "does not exist" in str(e2.value)
    # a path through a symlink to the cgroup2 mount: resolved to its real path first
    link = tmp_path / "link"
    mnt = _fs._outermost_mount("/sys/fs/cgroup/unified/x") or "/sys/fs/cgroup"
    link.symlink_to(mnt)
    with Dir.open(str(link)) as opened:
        assert opened.path == mnt
        assert opened.read("cgroup.controllers") is not None


def test_a_root_that_is_not_cgroup2_is_refused_before_anything_below(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    st = os.stat(tmp_path)
    with pytest.raises(NotCgroup2Error) as e:
        Dir.open(str(tmp_path / "a"), str(tmp_path))
    assert str(e.value) == (
        f"cgroups: {tmp_path / 'a'} is not on a cgroup2 file system (device "
        f"{os.major(st.st_dev)}:{os.minor(st.st_dev)} of {tmp_path} is not a cgroup2 mount "
        f"in /proc/self/mountinfo); nothing below it was touched"
    )
    assert e.value.path == str(tmp_path / "a")
    with pytest.raises(NotCgroup2Error, match=f"cgroups: {tmp_path} is not on"):
        Dir.open(str(tmp_path), str(tmp_path))
    with pytest.raises(CgroupDeletedError) as e2:
        Dir.open(str(tmp_path / "none" / "a"), str(tmp_path / "none"))
    assert e2.value.path == str(tmp_path / "none" / "a")
    (tmp_path / "ln").symlink_to(tmp_path / "a")
    with pytest.raises(KernelError) as e3:
        Dir.open(str(tmp_path / "ln"), str(tmp_path / "ln"))
    # O_NOFOLLOW with O_DIRECTORY: the kernel says ENOTDIR for a symlink
    assert e3.value.errno in (errno.ELOOP, errno.ENOTDIR) and "not a directory" in str(e3.value)
    assert e3.value.path == str(tmp_path / "ln")


def test_a_removed_group_answers_deleted_for_every_file_operation(group: Manager) -> None:
    d = Dir.open(group.path, group.mountpoint)
    try:
        assert not d.is_deleted() and not d.gone()
        assert d.exists("cgroup.procs") and not d.exists("no.such.file")
        assert d.try_read("no.such.file") is None and d.absent == 1
        os.rmdir(group.path)
        assert d.is_deleted() and d.gone()
        for op, call in (
            ("open cgroup.procs", lambda: d.read("cgroup.procs")),
            ("open cgroup.procs", lambda: d.try_read("cgroup.procs")),
            ("open for writing cgroup.freeze", lambda: d.write("cgroup.freeze", "1")),
        ):
            with pytest.raises(CgroupDeletedError) as e:
                call()
            assert str(e.value) == f"cgroups: cgroup deleted: {group.path} was removed ({op})"
            assert e.value.path == group.path + "/" + op.rsplit(" ", 1)[1]
        assert not d.exists("cgroup.procs")
    finally:
        d.close()


def test_a_refused_write_names_file_value_and_errno(group: Manager) -> None:
    with Dir.open(group.path, group.mountpoint) as d:
        with pytest.raises(KernelError) as e:
            d.write("cgroup.freeze", "banana")
        assert e.value.errno == errno.EINVAL
        assert e.value.path == group.path + "/cgroup.freeze"
        assert e.value.value == "banana"
        assert "write" in str(e.value)
        with pytest.raises(KernelError) as e:
            d.read("cgroup.no-such-file")
        assert (e.value.errno, e.value.path) == (errno.ENOENT, group.path + "/cgroup.no-such-file")


def test_openat2_is_loaded_after_32_walks_unless_ctypes_is_there(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short-lived command walks without ctypes (its import costs more than its walks);
    a program that opens groups again and again, or has ctypes anyway, gets openat2."""
    monkeypatch.setattr(_resolve, "_OPENAT2", [])
    monkeypatch.setattr(_resolve, "_walks", [0])
    monkeypatch.delitem(sys.modules, "ctypes")
    for i in range(_resolve._WALKS_BEFORE_OPENAT2):
        Dir.open(group.path, group.mountpoint).close()
        assert _resolve._OPENAT2 == [] and _resolve._walks == [i + 1], i
    Dir.open(group.path, group.mountpoint).close()
    assert len(_resolve._OPENAT2) == 1 and callable(_resolve._OPENAT2[0])
    assert _resolve._walks == [_resolve._WALKS_BEFORE_OPENAT2]
    # with ctypes loaded, at the first walk
    monkeypatch.setattr(_resolve, "_OPENAT2", [])
    monkeypatch.setattr(_resolve, "_walks", [0])
    import ctypes  # noqa: F401  (the test's own import: ctypes is there)

    Dir.open(group.path, group.mountpoint).close()
    assert len(_resolve._OPENAT2) == 1 and callable(_resolve._OPENAT2[0]) and _resolve._walks == [0]


def test_openat2_refused_by_the_environment_or_failing_says_why(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CGROUP2_NO_OPENAT2", "1")
    assert _resolve._load_openat2() is None
    monkeypatch.delenv("CGROUP2_NO_OPENAT2")
    fn = _resolve._load_openat2()
    assert fn is not None
    top = os.open(group.mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            fn(top, b"no-such-group")
        assert (e.value.errno, e.value.strerror) == (errno.ENOENT, os.strerror(errno.ENOENT))
        with pytest.raises(OSError) as e:
            fn(top, b"../x")  # RESOLVE_BENEATH
        assert e.value.errno == errno.EXDEV
        fd = fn(top, group.group.lstrip("/").encode())
        try:
            assert os.path.samestat(os.fstat(fd), os.stat(group.path))
        finally:
            os.close(fd)
    finally:
        os.close(top)


def test_openat2_is_not_used_where_it_cannot_be(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ctypes, no libc symbol, or a kernel (or seccomp filter) that answers the probe
    with ENOSYS/EPERM: the portable walk is used, without an error."""
    import ctypes

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ctypes", None)  # an interpreter without ctypes
        assert _resolve._load_openat2() is None
    with monkeypatch.context() as m:
        def no_libc(*args: object, **kwargs: object) -> object:
            raise OSError("no libc")

        m.setattr(ctypes, "CDLL", no_libc)
        assert _resolve._load_openat2() is None

    class Refusing:
        def __init__(self, err: int) -> None:
            self.err = err
            self.syscall = self  # libc.syscall, called as a function
            self.restype: object = None
            self.argtypes: object = None

        def __call__(self, *args: object) -> int:
            return -1

    for err in (errno.ENOSYS, errno.EPERM):
        with monkeypatch.context() as m:
            m.setattr(ctypes, "CDLL", lambda *a, err=err, **k: Refusing(err))
            m.setattr(ctypes, "get_errno", lambda err=err: err)
            fds = set(os.listdir("/proc/self/fd"))
            assert _resolve._load_openat2() is None
            assert set(os.listdir("/proc/self/fd")) == fds  # the probe's "/" closed
    # where it can be: the real one answers like openat (ENOENT for a missing name)
    fn = _resolve._load_openat2()
    assert fn is not None
    top = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileNotFoundError):
            fn(top, b"no-such-directory-here")
    finally:
        os.close(top)


def test_names_of_any_bytes_and_edge_letters_resolve(group: Manager, door: str) -> None:
    """A group name that is not UTF-8, or that starts or ends with the letters a careless
    strip would take, opens as itself."""
    for name in ("caf\udce9", "Xg", "gX", "XX"):  # b"caf\xe9" as Python sees it
        os.mkdir(os.fsencode(f"{group.path}/{name}"))
        with Dir.open(f"{group.path}/{name}", group.mountpoint) as d:
            assert os.path.samestat(os.fstat(d.fd), os.stat(os.fsencode(d.path)))
            assert d.path == f"{group.path}/{name}"
        with Dir.open(group.path, group.mountpoint) as parent, parent.child(name) as c:
            assert os.path.samestat(os.fstat(c.fd), os.stat(os.fsencode(c.path)))


def test_a_mount_point_as_the_first_component_is_named(
    cg_parent: Parent, cg_path: str, door: str
) -> None:
    mnt = cg_parent.mountpoint
    outer = Manager.create(cg_path + "/outer", mountpoint=mnt)
    other = Manager.create(cg_path + "/other", mountpoint=mnt)
    Manager.create(other.group + "/t", mountpoint=mnt)
    Manager.create(outer.group + "/m2", mountpoint=mnt)
    m2 = outer.path + "/m2"
    subprocess.run(["mount", "--bind", other.path, m2], check=True)
    try:
        for rest in ("", "/t"):
            with pytest.raises(MountPointError) as e:
                Dir.open(m2 + rest, outer.path)  # the mount point is the first component
            assert e.value.path == m2
    finally:
        subprocess.run(["umount", m2], check=True)
        remove_tree(mnt + cg_path)


def test_other_refusals_on_the_way_are_named(
    group: Manager, door: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = group.path + "/a/b"

    def emfile(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    with monkeypatch.context() as m:
        m.setattr(_resolve, "open_below", emfile)
        m.setattr(_fs, "open_below", emfile)
        with pytest.raises(KernelError) as e:
            Dir.open(path, group.mountpoint)
        assert (e.value.errno, e.value.path, e.value.op) == (errno.EMFILE, path, "open directory")
        assert "not a group directory" not in str(e.value)
    real_open = os.open

    def refuse_root(p: object, *args: object, **kwargs: object) -> int:
        if p == group.mountpoint:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(p, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(os, "open", refuse_root)
        with pytest.raises(KernelError) as e:
            Dir.open(path, group.mountpoint)
        assert (e.value.errno, e.value.path, e.value.op) == (
            errno.EACCES, group.mountpoint, "open directory"
        )
        assert "(not a directory)" not in str(e.value)
