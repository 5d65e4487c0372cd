"""The file layer at its edges, on the real cgroup2 mount: a system call that fails after
its file was opened (injected: the kernel rarely does it), the walk's exact bounds, a
walk whose groups vanish under it, and the descriptors handed out for events.

What each failure becomes (its type, errno, operation, file and value) is what callers
and users read; the bounds are the documented ones to the group.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reltools import made_group  # noqa: F401 (a fixture)

from cgroup2 import CgroupError, KernelError, Manager, _resolve
from cgroup2._fs import ENTER, LEAVE, Dir, read_abs, walk
from cgroup2.errors import TreeLimitError


@pytest.fixture
def group(made_group: Manager) -> Manager:  # noqa: F811 (the fixture imported above)
    return made_group


def _failing(err: int) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(err, os.strerror(err))

    return fail


def _kernel_error(call: Callable[[], object], err: int, path: str, op: str,
                  value: str | None = None) -> None:
    with pytest.raises(KernelError) as e:
        call()
    assert (e.value.errno, e.value.path, e.value.op, e.value.value) == (err, path, op, value)


# --- a system call failing after the open ------------------------------------------------


def test_a_failed_read_write_or_listing_names_its_step(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Dir.open(group.path, group.mountpoint) as d:
        procs = d.file_path("cgroup.procs")
        with monkeypatch.context() as m:
            m.setattr(os, "read", _failing(errno.EIO))
            _kernel_error(lambda: d.read("cgroup.procs"), errno.EIO, procs, "read")
            _kernel_error(lambda: d.try_read("cgroup.procs"), errno.EIO, procs, "read")
        with monkeypatch.context() as m:  # a PSI file on a kernel booted with psi=0
            m.setattr(os, "read", _failing(errno.EOPNOTSUPP))
            assert d.try_read("cpu.pressure") is None
        with monkeypatch.context() as m:
            m.setattr(os, "write", _failing(errno.EINVAL))
            _kernel_error(lambda: d.write("cgroup.freeze", "0"), errno.EINVAL,
                          d.file_path("cgroup.freeze"), "write", "0")
        with monkeypatch.context() as m:
            m.setattr(os, "write", lambda fd, data: len(data) - 1)
            _kernel_error(lambda: d.write("cgroup.freeze", "0"), errno.EIO,
                          d.file_path("cgroup.freeze"), "short write", "0")
        with monkeypatch.context() as m:
            m.setattr(os, "open", _failing(errno.EMFILE))
            _kernel_error(lambda: d.try_read("cgroup.procs"), errno.EMFILE, procs, "open")
            _kernel_error(lambda: d.read("cgroup.procs"), errno.EMFILE, procs, "open")
            _kernel_error(lambda: d.parent(group.mountpoint), errno.EMFILE,
                          d.file_path(".."), "open directory")
            _kernel_error(lambda: d.mount_root(), errno.EMFILE, d.file_path(".."),
                          "open directory")
        with monkeypatch.context() as m:
            m.setattr(os, "scandir", _failing(errno.EIO))
            _kernel_error(lambda: d.subdir_entries(), errno.EIO, d.file_path("."), "list")
        # what did not fail is as it was
        assert d.write("cgroup.freeze", "0") is None
        assert d.read("cgroup.freeze") == b"0\n"


def test_missing_files_are_counted_and_the_fd_stays_usable(group: Manager) -> None:
    with Dir.open(group.path, group.mountpoint) as d:
        assert d.try_read("memory.max") is None and d.absent == 1  # no memory on v2 here
        assert d.try_read("io.max") is None and d.absent == 2
        assert d.try_read("cgroup.procs") == b""
        assert not d.exists("memory.max") and d.exists("cgroup.procs")
        (Path(group.path) / "sub").mkdir()
        assert [(n, i) for n, i in d.subdir_entries()] == [
            ("sub", os.stat(group.path + "/sub").st_ino)
        ]


def test_the_mount_id_is_the_kernels(group: Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    fd = os.open(group.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            want = next(int(line.split()[1]) for line in f if line.startswith("mnt_id:"))
        assert _resolve._mount_id(fd) == want
        with monkeypatch.context() as m:
            m.setattr(os, "open", _failing(errno.EMFILE))
            _kernel_error(lambda: _resolve._mount_id(fd), errno.EMFILE,
                          f"/proc/self/fdinfo/{fd}", "open")
        with monkeypatch.context() as m:
            m.setattr(os, "read", lambda fd, n: b"pos:\t0\nflags:\t0100000\n")
            with pytest.raises(CgroupError) as e:
                _resolve._mount_id(fd)
            assert str(e.value) == f"cgroups: /proc/self/fdinfo/{fd} has no mnt_id line"
    finally:
        os.close(fd)


def test_a_path_below_no_mount_that_cannot_be_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "stat", _failing(errno.EACCES))
    e = _resolve._not_below_mount(str(tmp_path))
    assert isinstance(e, KernelError)
    assert (e.errno, e.path, e.op) == (errno.EACCES, str(tmp_path), "stat")


def test_read_abs_reads_whole_files_and_names_failures(tmp_path: Path) -> None:
    big = tmp_path / "big"
    data = os.urandom(300_000)  # more than one read's chunk
    big.write_bytes(data)
    assert read_abs(str(big)) == data
    small = tmp_path / "small"
    small.write_bytes(b"x\n")
    assert read_abs(str(small)) == b"x\n"
    with open("/proc/self/status", "rb") as f:
        assert read_abs("/proc/self/status").split(b"\n")[0] == f.read().split(b"\n")[0]
    _kernel_error(lambda: read_abs(str(tmp_path / "none")), errno.ENOENT,
                  str(tmp_path / "none"), "open")
    _kernel_error(lambda: read_abs(str(tmp_path)), errno.EISDIR, str(tmp_path), "read")
    fds = set(os.listdir("/proc/self/fd"))
    for p in (big, tmp_path / "none", tmp_path):
        with contextlib.suppress(KernelError):
            read_abs(str(p))
    assert set(os.listdir("/proc/self/fd")) == fds, "read_abs left a descriptor open"


# --- the descriptors handed out for events --------------------------------------------------


def test_event_and_trigger_descriptors(group: Manager) -> None:
    with Dir.open(group.path, group.mountpoint) as d:
        fd = d.open_fd("cgroup.events")
        try:
            assert os.pread(fd, 4096, 0).startswith(b"populated 0\n")
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            assert flags & os.O_ACCMODE == os.O_RDONLY
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        finally:
            os.close(fd)
        t = d.open_trigger_fd("cpu.pressure")
        try:
            flags = fcntl.fcntl(t, fcntl.F_GETFL)
            assert flags & os.O_ACCMODE == os.O_RDWR and flags & os.O_NONBLOCK
            assert fcntl.fcntl(t, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.pread(t, 4096, 0).startswith(b"some avg10=")
        finally:
            os.close(t)
        _kernel_error(lambda: d.open_fd("memory.events"), errno.ENOENT,
                      d.file_path("memory.events"), "open")
        _kernel_error(lambda: d.open_trigger_fd("memory.nope"), errno.ENOENT,
                      d.file_path("memory.nope"), "open for a trigger")


# --- the walk ------------------------------------------------------------------------------


def _chain(top: str, depth: int) -> None:
    p = top
    for _ in range(depth):
        p += "/d"
        os.mkdir(p)


def test_walk_bounds_are_exact(group: Manager) -> None:
    _chain(group.path, 5)
    with Dir.open(group.path, group.mountpoint) as top:
        assert [depth for _, _, _, depth in walk(top, max_depth=5)] == [0, 1, 2, 3, 4, 5]
        with pytest.raises(TreeLimitError) as e:
            list(walk(top, max_depth=4))
        assert str(e.value).startswith(
            f"cgroups: {group.path} has more than 4 levels below it (at {group.path}/d/d/d/d/d"
        )
        assert str(e.value).endswith("this library walks at most 4 levels and 1000000 groups")
        assert e.value.path == group.path
        assert len(list(walk(top, max_groups=5))) == 6  # the top is not counted
        with pytest.raises(TreeLimitError) as e:
            list(walk(top, max_groups=4))
        assert "has more than 4 groups below it" in str(e.value)
        assert "at most 10000 levels and 4 groups" in str(e.value)
        # by default: no LEAVE, the module's bounds
        assert {kind for kind, _, _, _ in walk(top)} == {ENTER}
        leaves = [(name, depth) for kind, _, name, depth in walk(top, leave=True)
                  if kind == LEAVE]
        assert leaves == [("d", 4), ("d", 3), ("d", 2), ("d", 1), ("d", 0)]


def test_walk_goes_on_past_groups_removed_under_it(group: Manager) -> None:
    for name in ("a", "a/x", "b", "c"):
        os.mkdir(f"{group.path}/{name}")
    seen = []
    with Dir.open(group.path, group.mountpoint) as top:
        for kind, d, name, _ in walk(top, leave=True):
            if kind != ENTER:
                continue
            seen.append(d.path[len(group.path):] or "/")
            if name == "x":
                # the group walked and its parent go, and a sibling not reached yet
                os.rmdir(f"{group.path}/a/x")
                os.rmdir(f"{group.path}/a")
                os.rmdir(f"{group.path}/b")
    assert seen == ["/", "/a", "/a/x", "/c"]
