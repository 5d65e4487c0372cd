"""unit: group path rules, /proc/<pid>/cgroup and mountinfo parsing (no privileges)."""

from __future__ import annotations

import pytest

from cgroup2 import InvalidFormatError, InvalidGroupPathError, InvalidPidError, Mode, _mount, paths
from cgroup2.errors import CgroupDeletedError, KernelError, ignore_not_exist

VALID = [
    "/",
    "/foo",
    "/foo/bar",
    "/user.slice/user-1001.slice/session-1.scope",
    "/a b",
    "/foo.bar",
    "/...",
    "/..foo",
    "/foo..",
    "/a/b/c/d/e/f",
    "/sys",
    "/sys/fs",
    "/sysfs/cgroup",
    "/-",
    "/caf\u00e9",
]

INVALID = [
    "",
    "foo",
    "foo/bar",
    "./foo",
    "../foo",
    "/foo/",
    "//foo",
    "/foo//bar",
    "/a/../b",
    "/.",
    "/..",
    "/./foo",
    "/foo/.",
    "/foo/..",
    "/sys/fs/cgroup",
    "/sys/fs/cgroup/x",
    "/sys/fs/cgroup/unified/x",
    "/sys/fs/cgroupfoo",
    "//",
    "/foo/bar/",
    " /foo",
    "/foo\0bar",
    "/foo\nbar",
]


@pytest.mark.parametrize("g", VALID)
def test_valid_group_paths(g: str) -> None:
    paths.verify_group_path(g)


@pytest.mark.parametrize("g", INVALID)
def test_invalid_group_paths(g: str) -> None:
    with pytest.raises(InvalidGroupPathError) as e:
        paths.verify_group_path(g)
    assert repr(g) in str(e.value)


def test_path_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 30


@pytest.mark.parametrize("bad", [None, 1, b"/foo"])
def test_group_path_of_wrong_type(bad: object) -> None:
    with pytest.raises(InvalidGroupPathError):
        paths.verify_group_path(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", "."),
        ("/", "/"),
        ("//", "/"),
        ("/foo/", "/foo"),
        ("//foo", "/foo"),
        ("/a/../b", "/b"),
        ("/..", "/"),
        ("/../..", "/"),
        ("/.", "/"),
        ("a/b/../..", "."),
        ("a/../..", ".."),
        ("../a", "../a"),
        ("a//b/./c/", "a/b/c"),
    ],
)
def test_clean_path_is_go_filepath_clean(raw: str, clean: str) -> None:
    assert paths.clean_path(raw) == clean


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("0::/\n", "/"),
        ("0::/user.slice/session-1.scope\n", "/user.slice/session-1.scope"),
        ("12:pids:/a\n1:name=systemd:/b\n0::/c\n", "/c"),
        ("9:name=systemd:/\n4:memory:/x/y\n0::/\n", "/"),
        ("0::/with:colon\n", "/with:colon"),
        ("0::/ (deleted)\n", "/ (deleted)"),
    ],
)
def test_parse_proc_cgroup(text: str, path: str) -> None:
    assert paths.parse_proc_cgroup(text) == path


@pytest.mark.parametrize("text", ["", "1:cpu:/a\n", "garbage\n", "0:/x\n"])
def test_parse_proc_cgroup_refuses(text: str) -> None:
    with pytest.raises(InvalidFormatError):
        paths.parse_proc_cgroup(text)


@pytest.mark.parametrize("pid", [0, -1, -100, True])
def test_pid_group_path_refuses_bad_pid(pid: int) -> None:
    with pytest.raises(InvalidPidError):
        paths.pid_group_path(pid)


def test_pid_group_path_of_self_matches_proc() -> None:
    with open("/proc/self/cgroup") as f:
        text = f.read()
    if "0::" not in text:
        pytest.skip("this host has no cgroup2 line in /proc/self/cgroup")
    import os

    assert paths.pid_group_path(os.getpid()) == paths.parse_proc_cgroup(text)
    assert paths.nested_group_path("x/y") == paths.clean_path(
        paths.parse_proc_cgroup(text) + "/x/y"
    )


def test_pid_group_path_of_missing_process() -> None:
    with pytest.raises(KernelError) as e:
        paths.pid_group_path(2**22 + 12345)
    assert e.value.errno == 2
    assert ignore_not_exist(e.value) is None


def test_ignore_not_exist() -> None:
    assert ignore_not_exist(None) is None
    assert ignore_not_exist(FileNotFoundError(2, "x")) is None
    assert ignore_not_exist(CgroupDeletedError()) is None
    other = PermissionError(13, "x")
    assert ignore_not_exist(other) is other


UNIFIED = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
"""

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

LEGACY = """\
31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
"""

NONE = """\
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
"""

CONTAINER = """\
600 500 0:30 /kubepods/pod1/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
"""

ODD = """\
41 31 0:38 / /mnt/my\\040cgroups rw,relatime shared:3 opt:1 - cgroup2 none rw
"""


@pytest.mark.parametrize(
    ("text", "mode", "mountpoint"),
    [
        (UNIFIED, Mode.UNIFIED, "/sys/fs/cgroup"),
        (HYBRID, Mode.HYBRID, "/sys/fs/cgroup/unified"),
        (LEGACY, Mode.LEGACY, None),
        (NONE, Mode.UNAVAILABLE, None),
        (CONTAINER, Mode.UNIFIED, "/sys/fs/cgroup"),
        (ODD, Mode.HYBRID, "/mnt/my cgroups"),
    ],
)
def test_mountinfo_samples(text: str, mode: Mode, mountpoint: str | None) -> None:
    mounts = paths.parse_mountinfo(text)
    assert _mount._mode_of(mounts) is mode
    assert _mount._mountpoint_of(mounts) == mountpoint


def test_mountinfo_fields() -> None:
    (m,) = paths.parse_mountinfo(CONTAINER)
    assert (m.mountpoint, m.root, m.fstype) == ("/sys/fs/cgroup", "/kubepods/pod1/abc", "cgroup2")
    v1 = paths.parse_mountinfo(LEGACY)
    assert [x.options for x in v1] == ["rw,xattr,name=systemd", "rw,cpu,cpuacct"]


def test_mountinfo_malformed_cgroup_line() -> None:
    with pytest.raises(InvalidFormatError):
        paths.parse_mountinfo("41 31 0:38 / - cgroup2\n")


def test_default_mountpoint_raises_without_cgroup2(monkeypatch: pytest.MonkeyPatch) -> None:
    from cgroup2 import MountPointNotExistError

    monkeypatch.setattr(_mount, "_mounts", lambda: tuple(paths.parse_mountinfo(LEGACY)))
    assert paths.mode() is Mode.LEGACY
    with pytest.raises(MountPointNotExistError):
        paths.default_mountpoint()


def test_this_host_mode_is_consistent() -> None:
    paths.refresh()
    m = paths.mode()
    if m in (Mode.UNIFIED, Mode.HYBRID):
        assert paths.default_mountpoint().startswith("/")


# --- caller_group: the caller's own group on a given mount (freeze/kill refuse it) --------


@pytest.mark.parametrize(
    ("proc", "rows", "want"),
    [
        ("/a/b", [("/sys/fs/cgroup", "/")], "/a/b"),
        ("/a/b", [("/sys/fs/cgroup", "/a")], "/b"),  # a bind mount of /a
        ("/a", [("/sys/fs/cgroup", "/a")], "/"),
        ("/ab", [("/sys/fs/cgroup", "/a")], None),  # not below the mount's root
        ("/../x", [("/sys/fs/cgroup", "/")], None),  # outside its namespace's root
        ("/a/b", [("/sys/fs/cgroup", "/"), ("/sys/fs/cgroup", "/a")], "/b"),  # stacked: last
        ("/a/b", [("/elsewhere", "/a")], "/a/b"),  # no row for it: the hierarchy's root
    ],
)
def test_caller_group(
    monkeypatch: pytest.MonkeyPatch, proc: str, rows: list[tuple[str, str]], want: str | None
) -> None:
    table = tuple(_mount._Row(mp, root, "cgroup2", "rw", 0) for mp, root in rows)
    monkeypatch.setattr(_mount, "_MOUNTS", [table])
    monkeypatch.setattr(paths, "_read_proc_cgroup", lambda source: proc)
    assert paths.caller_group("/sys/fs/cgroup") == want


def test_caller_group_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(source: str) -> str:
        raise KernelError(2, source, op="read")

    monkeypatch.setattr(paths, "_read_proc_cgroup", fail)
    assert paths.caller_group("/sys/fs/cgroup") is None


STACKED = """\
23 1 0:21 / /sys rw - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
99 41 0:38 /x/y /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
100 99 0:38 / /sys/fs/cgroup/unified/z rw - cgroup2 cgroup2 rw
"""


def test_a_mount_stacked_on_another_hides_it() -> None:
    """The table keeps the visible mount of a mount point: the one mounted last on it
    (its parent is the covered mount), and what was mounted on top of it."""
    rows = _mount._visible_rows(STACKED)
    assert [(r.mountpoint, r.root) for r in rows] == [
        ("/sys/fs/cgroup/memory", "/"),
        ("/sys/fs/cgroup/unified", "/x/y"),
        ("/sys/fs/cgroup/unified/z", "/"),
    ]
    assert len(paths.parse_mountinfo(STACKED)) == 4  # the parser still gives every line


def test_a_mount_over_a_parent_hides_what_is_below() -> None:
    text = STACKED + "120 31 0:50 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    assert _mount._visible_rows(text) == []
    # the order of the lines does not matter: covering is read from the ids
    lines = STACKED.splitlines()
    assert [r.root for r in _mount._visible_rows("\n".join(lines[::-1]))] == ["/", "/x/y", "/"]
