"""The file layer's rarer decisions, each pinned on the real cgroup2 mount.

How an ``OSError`` becomes the error a caller catches (:meth:`Dir._fail`), how the walk
climbs back when ``..`` of a removed group cannot be opened (kernfs lets it open while
the descriptor lives, so a kernel that refuses is stood in for by refusing in
:meth:`Dir.parent`), what a dropped :class:`Dir` does with its descriptor, and the exact
errors of a root or a component that cannot be opened.
"""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from reltools import made_group  # noqa: F401 (a fixture)

from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    KernelError,
    Manager,
    MountPointError,
    NotCgroup2Error,
    _refuse,
    _resolve,
    delegation,
)
from cgroup2._fs import ENTER, Dir, walk
from cgroup2.errors import TreeLimitError


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


@pytest.fixture
def removed(group: Manager) -> Iterator[Dir]:
    """An open :class:`Dir` of a group removed after it was opened."""
    os.mkdir(group.path + "/r")
    d = Dir.open(group.path + "/r", group.mountpoint)
    os.rmdir(group.path + "/r")
    try:
        yield d
    finally:
        d.close()


# --- Dir._fail: the error a failed system call becomes ---------------------------------


def _err(code: int | None) -> OSError:
    return OSError(code, os.strerror(code)) if code is not None else OSError("no errno")


def test_a_removed_group_turns_enoent_and_enodev_into_deleted(removed: Dir) -> None:
    for code in (errno.ENOENT, errno.ENODEV):
        e = removed._fail(_err(code), "pids.max", "write", "5")
        assert type(e) is CgroupDeletedError
        assert str(e) == (
            f"cgroups: cgroup deleted: {removed.path} was removed (write pids.max)"
        )
        assert (e.errno, e.path, e.value) == (code, removed.path + "/pids.max", "5")


def test_a_removed_group_keeps_other_errors_as_they_are(
    removed: Dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_refuse, "explain", lambda *a: None)
    for code in (errno.EIO, errno.EACCES, errno.EBUSY):
        e = removed._fail(_err(code), "pids.max", "write", "5")
        assert type(e) is KernelError, code
        assert (e.errno, e.path, e.value, e.op) == (code, removed.path + "/pids.max", "5",
                                                     "write")


def test_a_live_group_keeps_enoent_and_enodev_as_kernel_errors(group: Manager) -> None:
    with Dir.open(group.path, group.mountpoint) as d:
        for code in (errno.ENOENT, errno.ENODEV):
            e = d._fail(_err(code), "nope", "open")
            assert type(e) is KernelError, code
            assert (e.errno, e.path, e.value, e.op) == (code, group.path + "/nope", None,
                                                         "open")
        e = d._fail(_err(None), "pids.max", "read")
        assert type(e) is KernelError and e.errno == 0


def test_permission_refusals_are_explained_by_the_delegation_rules(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, ...]] = []
    answer = KernelError(errno.EACCES, "explained", op="write")

    def explain(*args: object) -> KernelError | None:
        calls.append(args)
        return answer if args[1] != "unexplained" else None

    # the file layer asks the rules below it (cgroup2._refuse), which delegation re-exports
    assert delegation.explain is _refuse.explain
    monkeypatch.setattr(_refuse, "explain", explain)
    with Dir.open(group.path, group.mountpoint) as d:
        for code in (errno.EACCES, errno.EPERM, errno.ENOENT):
            assert d._fail(_err(code), "cgroup.procs", "write", "1") is answer
            assert calls[-1] == (d, "cgroup.procs", "write", code, "1")
        # explain() has nothing to say: the plain error
        e = d._fail(_err(errno.EPERM), "unexplained", "mkdir")
        assert type(e) is KernelError
        assert (e.errno, e.path, e.op, e.value) == (errno.EPERM, group.path + "/unexplained",
                                                     "mkdir", None)
        n = len(calls)
        # an open that is refused, or another errno: not a delegation question
        for code, op in ((errno.EACCES, "open"), (errno.EIO, "write"), (errno.EBUSY, "mkdir")):
            e = d._fail(_err(code), "cgroup.procs", op, "1")
            assert type(e) is KernelError and e.errno == code
        assert len(calls) == n


# --- walk: climbing back where ``..`` cannot be opened ---------------------------------


@pytest.fixture
def no_dotdot_of_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``..`` of a removed group fails, as on a kernel that refuses it."""
    real = Dir.parent

    def parent(self: Dir, path: str) -> Dir:
        if self.is_deleted():
            raise CgroupDeletedError("cgroups: cgroup deleted", errno=errno.ENOENT,
                                     path=self.path)
        return real(self, path)

    monkeypatch.setattr(Dir, "parent", parent)


def _tree(top: str) -> None:
    for name in ("a", "a/b", "a/b/c", "a/x", "z"):
        os.mkdir(f"{top}/{name}")


def _events(group: Manager, at_c: object) -> list[tuple[str, str, int]]:
    out = []
    with Dir.open(group.path, group.mountpoint) as top:
        for kind, d, name, depth in walk(top, leave=True):
            where = d.path[len(group.path):] or "/"
            out.append(("ENTER" if kind == ENTER else "LEAVE", f"{where}:{name}", depth))
            if kind == ENTER and name == "c":
                at_c()  # type: ignore[operator]
    return out


def test_a_walk_climbs_back_by_path_where_dotdot_fails(
    group: Manager, no_dotdot_of_removed: None
) -> None:
    _tree(group.path)
    events = _events(group, lambda: os.rmdir(group.path + "/a/b/c"))
    assert events == [
        ("ENTER", "/:", 0), ("ENTER", "/a:a", 1), ("ENTER", "/a/b:b", 2),
        ("ENTER", "/a/b/c:c", 3), ("LEAVE", "/a/b:c", 2), ("LEAVE", "/a:b", 1),
        ("ENTER", "/a/x:x", 2), ("LEAVE", "/a:x", 1), ("LEAVE", "/:a", 0),
        ("ENTER", "/z:z", 1), ("LEAVE", "/:z", 0),
    ]


def test_a_walk_goes_on_from_the_nearest_ancestor_still_there(
    group: Manager, no_dotdot_of_removed: None
) -> None:
    _tree(group.path)

    def remove_c_and_b() -> None:
        os.rmdir(group.path + "/a/b/c")
        os.rmdir(group.path + "/a/b")

    events = _events(group, remove_c_and_b)
    # no LEAVE of c or b: their parents are gone; a's other child is still walked
    assert events == [
        ("ENTER", "/:", 0), ("ENTER", "/a:a", 1), ("ENTER", "/a/b:b", 2),
        ("ENTER", "/a/b/c:c", 3),
        ("ENTER", "/a/x:x", 2), ("LEAVE", "/a:x", 1), ("LEAVE", "/:a", 0),
        ("ENTER", "/z:z", 1), ("LEAVE", "/:z", 0),
    ]


def test_an_ancestor_made_again_under_the_walk_is_not_the_one_walked(
    group: Manager, no_dotdot_of_removed: None
) -> None:
    _tree(group.path)

    def replace_a() -> None:
        for name in ("a/b/c", "a/b", "a/x", "a"):
            os.rmdir(f"{group.path}/{name}")
        os.mkdir(group.path + "/a")  # another group named a: its children are not walked

    events = _events(group, replace_a)
    assert events == [
        ("ENTER", "/:", 0), ("ENTER", "/a:a", 1), ("ENTER", "/a/b:b", 2),
        ("ENTER", "/a/b/c:c", 3), ("ENTER", "/z:z", 1), ("LEAVE", "/:z", 0),
    ]


def test_a_parent_made_again_under_the_walk_stops_it(
    group: Manager, no_dotdot_of_removed: None
) -> None:
    _tree(group.path)

    def replace_b() -> None:
        os.rmdir(group.path + "/a/b/c")
        os.rmdir(group.path + "/a/b")
        os.mkdir(group.path + "/a/b")

    with pytest.raises(MountPointError) as e:
        _events(group, replace_b)
    assert str(e.value) == (
        f"cgroups: {group.path}/a/b changed while its subtree was walked (another "
        f"directory is there now); stopping"
    )
    assert e.value.path == group.path + "/a/b"


def test_the_limit_named_is_the_one_passed(group: Manager) -> None:
    os.makedirs(group.path + "/d/d/d")
    with Dir.open(group.path, group.mountpoint) as top:
        # the third group is both at the depth limit and past the group limit
        with pytest.raises(TreeLimitError) as e:
            list(walk(top, max_depth=3, max_groups=2))
        assert "has more than 2 groups below it" in str(e.value)
        with pytest.raises(TreeLimitError) as e:
            list(walk(top, max_depth=2, max_groups=2))
        assert "has more than 2 levels below it" in str(e.value)


def test_the_limit_message_cuts_a_long_path_at_200_characters(group: Manager) -> None:
    long = "L" * 250
    os.makedirs(f"{group.path}/{long}/x")
    with Dir.open(group.path, group.mountpoint) as top, pytest.raises(TreeLimitError) as e:
        list(walk(top, max_depth=1))
    at = f"{group.path}/{long}/x"[:200]
    assert f"(at {at}...); this library" in str(e.value)


# --- a Dir dropped without close --------------------------------------------------------


def test_a_dropped_dir_closes_its_descriptor(group: Manager) -> None:
    d = Dir.open(group.path, group.mountpoint)
    fd = d.fd
    assert os.readlink(f"/proc/self/fd/{fd}") == group.path
    del d
    gc.collect()
    with pytest.raises(OSError) as e:
        os.fstat(fd)
    assert e.value.errno == errno.EBADF


def test_a_closed_or_unfinished_dir_finalizes_quietly(group: Manager) -> None:
    d = Dir.open(group.path, group.mountpoint)
    d.close()
    assert d.fd == -1
    d.close()  # twice: nothing
    # a descriptor opened since with the same number is not the dropped Dir's to close
    fd = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
    try:
        d.__del__()
        os.fstat(fd)
        bare = Dir.__new__(Dir)  # __init__ never ran (an interrupt in the middle)
        bare.__del__()
        assert bare.fd == -1
        os.fstat(fd)
    finally:
        os.close(fd)


# --- the root and the components: exact errors ------------------------------------------


def test_a_missing_root_is_deleted_error(tmp_path: Path) -> None:
    root = str(tmp_path / "missing")
    with pytest.raises(CgroupDeletedError) as e:
        Dir.open(root + "/g", root)
    assert str(e.value) == (
        f"cgroups: {root}/g does not exist (the group was deleted, or never made)"
    )
    assert (e.value.errno, e.value.path) == (errno.ENOENT, root + "/g")


@pytest.mark.parametrize("kind", ["file", "symlink", "too long"])
def test_a_root_that_cannot_be_opened_names_root_and_step(tmp_path: Path, kind: str) -> None:
    if kind == "file":
        (tmp_path / "f").write_text("")
        root, code, hint = str(tmp_path / "f"), errno.ENOTDIR, " (not a directory)"
    elif kind == "symlink":
        os.symlink(str(tmp_path), tmp_path / "s")
        root, code, hint = str(tmp_path / "s"), errno.ENOTDIR, " (not a directory)"
    else:
        root, code, hint = str(tmp_path / ("n" * 300)), errno.ENAMETOOLONG, ""
    with pytest.raises(KernelError) as e:
        Dir.open(root + "/g", root)
    assert (e.value.errno, e.value.path, e.value.op) == (code, root, "open directory")
    assert str(e.value) == (
        f"cgroups: open directory {root}: [Errno {code} {errno.errorcode[code]}] "
        f"{os.strerror(code)}{hint}"
    )


def test_a_root_ending_in_x_or_slashes_is_that_root(tmp_path: Path) -> None:
    root = tmp_path / "rootX"
    root.mkdir()
    for given in (str(root), str(root) + "/", str(root) + "//"):
        with pytest.raises(NotCgroup2Error) as e:
            Dir.open(str(root) + "/g", given)
        assert f" of {root} is not a cgroup2 mount" in str(e.value), given
        assert str(e.value).startswith(f"cgroups: {root}/g is not on a cgroup2 file system")


def test_the_file_system_root_as_root_is_looked_at_not_refused(group: Manager) -> None:
    with pytest.raises(NotCgroup2Error) as e:
        Dir.open(group.path, "/")
    assert str(e.value).startswith(f"cgroups: {group.path} is not on a cgroup2 file system")
    assert " of / is not a cgroup2 mount" in str(e.value)


def test_names_with_x_and_slashes_around_resolve_to_themselves(
    group: Manager, door: str
) -> None:
    os.makedirs(group.path + "/gX/X")
    for given in (group.path + "/gX", group.path + "/gX/X", group.path + "/gX/X/"):
        with Dir.open(given, group.mountpoint + "/") as d:
            want = os.stat(given.rstrip("/"))
            assert (d.dev, d.ino) == (want.st_dev, want.st_ino), given


def test_a_component_the_kernel_refuses_names_path_and_step(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal other than a missing name, a file or a symlink (here EACCES, as a user
    without search permission meets it): the errno, the path asked for, the step."""
    os.makedirs(group.path + "/a/g")

    def openat2(fd: int, rel: bytes) -> int:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(_resolve, "_OPENAT2", [openat2])
    path = group.path + "/a/g"
    with pytest.raises(KernelError) as e:
        Dir.open(path, group.mountpoint)
    code = errno.EACCES
    assert type(e.value) is KernelError
    assert (e.value.errno, e.value.path, e.value.op) == (code, path, "open directory")
    assert str(e.value) == (
        f"cgroups: open directory {path}: [Errno {code} EACCES] {os.strerror(code)}"
    )


def test_a_mount_point_that_appears_while_looked_at_is_named_whole(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openat2 refused the path for a mount point (EXDEV), and by the time each prefix
    is tried, none is one any more: the whole path is named."""
    os.makedirs(group.path + "/a/b")
    real = _resolve._load_openat2()
    assert real is not None
    tries: list[bytes] = []

    def openat2(fd: int, rel: bytes) -> int:
        tries.append(rel)
        if len(tries) == 1:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(fd, rel)

    monkeypatch.setattr(_resolve, "_OPENAT2", [openat2])
    rel = group.path[len(group.mountpoint) + 1:] + "/a/b"
    with pytest.raises(MountPointError) as e:
        Dir.open(group.path + "/a/b", group.mountpoint)
    assert e.value.path == group.path + "/a/b"
    assert str(e.value) == (
        f"cgroups: {group.path}/a/b is a mount point (another file system or group is "
        f"mounted there); refusing to go below it"
    )
    names = rel.split("/")
    assert tries == [rel.encode()] + [
        "/".join(names[:i]).encode() for i in range(1, len(names) + 1)
    ]


def test_an_error_other_than_exdev_while_looking_stops_the_search(
    group: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.makedirs(group.path + "/a/b")
    tries: list[bytes] = []

    def openat2(fd: int, rel: bytes) -> int:
        tries.append(rel)
        raise OSError(errno.EXDEV if len(tries) == 1 else errno.EACCES, "refused")

    monkeypatch.setattr(_resolve, "_OPENAT2", [openat2])
    with pytest.raises(KernelError) as e:
        Dir.open(group.path + "/a/b", group.mountpoint)
    assert e.value.errno == errno.EACCES
    assert len(tries) == 2


def test_check_name_refuses_what_leaves_the_directory_every_time() -> None:
    for bad in ("", ".", "..", "a/b", "a\0b", b"a", None):
        for _ in range(2):  # not remembered as good
            with pytest.raises(CgroupError) as e:
                _resolve.check_name(bad)  # type: ignore[arg-type]
            assert str(e.value) == (
                f"cgroups: invalid file name {bad!r}: a single path element is required "
                f"(no '/', NUL, '.' or '..')"
            )
