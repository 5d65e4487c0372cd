"""unit: the file layer on an ordinary directory (format and safety rules only)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cgroup2 import CgroupDeletedError, CgroupError, KernelError
from cgroup2._fs import Dir, check_name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc/passwd", "../x", "x\0"])
def test_bad_names_are_refused_before_any_syscall(name: str) -> None:
    with pytest.raises(CgroupError, match="invalid file name"):
        check_name(name)


def test_read_write_roundtrip_without_newline(tmp_path: Path) -> None:
    (tmp_path / "pids.max").write_text("")
    with Dir.open(str(tmp_path)) as d:
        d.write("pids.max", "max")
        assert (tmp_path / "pids.max").read_bytes() == b"max"
        assert d.read("pids.max") == b"max"
        assert d.try_read("missing") is None
        assert d.exists("pids.max") and not d.exists("missing")
    assert d.fd == -1


def test_large_file_is_read_whole(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "big").write_bytes(data)
    with Dir.open(str(tmp_path)) as d:
        assert d.read("big") == data


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "sub").mkdir()
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    with Dir.open(str(tmp_path)) as d:
        with pytest.raises(KernelError) as e:
            d.read("link")
        assert e.value.errno == errno.ELOOP
        with pytest.raises(KernelError) as e:
            d.write("link", "1")
        assert e.value.errno == errno.ELOOP
        assert (tmp_path / "target").read_text() == "secret"
        with pytest.raises(KernelError):
            d.child("dirlink")
        assert [n for n, _ in d.subdir_entries()] == ["sub"]
    with pytest.raises(KernelError):
        Dir.open(str(tmp_path / "dirlink"))


def test_error_names_file_value_and_errno(tmp_path: Path) -> None:
    (tmp_path / "ro").write_text("")
    os.chmod(tmp_path / "ro", 0o444)
    with Dir.open(str(tmp_path)) as d:
        if os.geteuid() == 0:
            with pytest.raises(KernelError) as e:
                d.write("missing", "42")
        else:
            with pytest.raises(KernelError) as e:
                d.write("ro", "42")
    msg = str(e.value)
    assert str(tmp_path) in msg and "'42'" in msg and "Errno" in msg
    assert e.value.value == "42" and e.value.errno in (errno.ENOENT, errno.EACCES)
    assert isinstance(e.value, OSError)


def test_missing_group_is_deleted_error(tmp_path: Path) -> None:
    with pytest.raises(CgroupDeletedError):
        Dir.open(str(tmp_path / "nope"))


def test_removed_directory_is_deleted_error(tmp_path: Path) -> None:
    sub = tmp_path / "g"
    sub.mkdir()
    d = Dir.open(str(sub))
    try:
        sub.rmdir()
        with pytest.raises(CgroupDeletedError):
            d.read("memory.stat")
        with pytest.raises(CgroupDeletedError):
            d.try_read("memory.stat")
    finally:
        d.close()


def test_mkdir_child(tmp_path: Path) -> None:
    with Dir.open(str(tmp_path)) as d:
        d.mkdir("c")
        with d.child("c") as c:
            assert c.path == f"{tmp_path}/c"
        with pytest.raises(KernelError) as e:
            d.mkdir("c")
        assert e.value.errno == errno.EEXIST and e.value.op == "mkdir"


@pytest.mark.real_fs_check
def test_a_directory_that_is_not_cgroup2_is_refused(tmp_path: Path) -> None:
    from cgroup2 import NotCgroup2Error

    with pytest.raises(NotCgroup2Error, match="not on a cgroup2 file system"):
        Dir.open(str(tmp_path))


def test_walk_is_iterative_ordered_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cgroup2 import _fs

    deep = tmp_path / "top"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):  # deeper than the recursion limit, longer than PATH_MAX
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    (deep / "b").mkdir()
    (deep / "a").mkdir()
    try:
        _walk_checks(deep, monkeypatch)
    finally:
        monkeypatch.undo()
        with Dir.open(str(deep)) as top:  # the clean-up, iterative too
            for kind, at, name, _ in _fs.walk(top, leave=True):
                if kind == _fs.LEAVE:
                    os.rmdir(name, dir_fd=at.fd)
    assert os.listdir(deep) == []


def _walk_checks(deep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cgroup2 import _fs
    from cgroup2.errors import TreeLimitError

    with Dir.open(str(deep)) as top:
        seen = [(kind, name, depth) for kind, _, name, depth in _fs.walk(top, leave=True)]
        assert seen[0] == (_fs.ENTER, "", 0)
        assert [n for k, n, _ in seen if k == _fs.ENTER][1:4] == ["a", "b", "d"]
        assert max(d for _, _, d in seen) == 1500
        assert sum(1 for k, _, _ in seen if k == _fs.LEAVE) == 1502
        fds = len(os.listdir("/proc/self/fd"))
        for _kind, _, _, depth in _fs.walk(top):
            if depth == 1400:  # two descriptors besides top, whatever the depth
                assert len(os.listdir("/proc/self/fd")) <= fds + 2
        monkeypatch.setattr(_fs, "MAX_DEPTH", 100)
        with pytest.raises(TreeLimitError, match="100 levels"):
            for _ in _fs.walk(top):
                pass
        monkeypatch.setattr(_fs, "MAX_DEPTH", 10_000)
        monkeypatch.setattr(_fs, "MAX_GROUPS", 10)
        with pytest.raises(TreeLimitError, match="10 groups"):
            for _ in _fs.walk(top):
                pass


def test_walk_goes_on_when_the_groups_above_it_are_removed(tmp_path: Path) -> None:
    """A parent removed (with its child) while the walk is inside the child: the walk goes
    on with the parent's siblings, from the nearest directory still there."""
    from cgroup2 import _fs

    for d in ("top/a/x", "top/b/y", "top/c"):
        (tmp_path / d).mkdir(parents=True)
    entered = []
    with Dir.open(str(tmp_path / "top")) as top:
        for kind, _, name, depth in _fs.walk(top, leave=True):
            if kind == _fs.ENTER:
                entered.append((name, depth))
                if name == "y":  # inside top/b/y: remove y and b under the walk
                    os.rmdir(tmp_path / "top/b/y")
                    os.rmdir(tmp_path / "top/b")
    assert entered == [("", 0), ("a", 1), ("x", 2), ("b", 1), ("y", 2), ("c", 1)]


class _Sneaky(str):
    """A str that claims to equal any name (and hashes as one the cache holds)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("cpu.stat")


@pytest.mark.parametrize("size", [0, 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 300_000])
def test_try_read_gives_the_whole_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    with Dir.open(str(tmp_path)) as d:
        assert d.try_read("f") == data
        assert d.read("f") == data


def test_try_read_checks_names_the_cache_seems_to_hold(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 1\n")
    with Dir.open(str(tmp_path)) as d:
        assert d.try_read("cpu.stat") == b"usage_usec 1\n"  # now a checked name
        for bad in ("../cpu.stat", _Sneaky("../cpu.stat")):
            with pytest.raises(CgroupError, match="invalid file name"):
                d.try_read(bad)
