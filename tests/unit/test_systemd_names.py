"""Unit names and the group path systemd gives a unit."""

from __future__ import annotations

import pytest

from cgroup2 import CgroupError
from cgroup2.systemd.names import cg_escape, check_unit_name, slice_path, unit_path


@pytest.mark.parametrize(
    ("slice_name", "unit", "path"),
    [
        ("", "a.scope", "/system.slice/a.scope"),
        ("system.slice", "my-group-dashes.scope", "/system.slice/my-group-dashes.scope"),
        ("user.slice", "myGroup.scope", "/user.slice/myGroup.scope"),
        ("test-waldo.slice", "my.scope", "/test.slice/test-waldo.slice/my.scope"),
        ("a-b-c.slice", "x.service", "/a.slice/a-b.slice/a-b-c.slice/x.service"),
        ("-.slice", "top.scope", "/top.scope"),
        # a slice is placed by its own name, whatever slice is asked for
        ("system.slice", "my-group.slice", "/my.slice/my-group.slice"),
        ("test-waldo.slice", "my-group.slice", "/my.slice/my-group.slice"),
        ("", "my-group-112233.slice", "/my.slice/my-group.slice/my-group-112233.slice"),
        ("", "plain.slice", "/plain.slice"),
        # systemd's escaping of names that look like controller files
        ("cpu.slice", "a.scope", "/_cpu.slice/a.scope"),
        ("", "memory.scope", "/system.slice/_memory.scope"),
        ("", "_x.scope", "/system.slice/__x.scope"),
    ],
)
def test_unit_path(slice_name: str, unit: str, path: str) -> None:
    assert unit_path(slice_name, unit) == path


def test_slice_path_root() -> None:
    assert slice_path("-.slice") == "/"


@pytest.mark.parametrize(
    "bad",
    ["", "noext", "a.weird", "-a.slice", "a-.slice", "a--b.slice", "a/b.scope", "a b.scope",
     "x" * 250 + ".scope", ".scope", "a@b@c.service", "a@.slice", 3],
)
def test_refused_names(bad: object) -> None:
    with pytest.raises(CgroupError, match="invalid systemd"):
        check_unit_name(bad)


def test_slice_must_be_a_slice() -> None:
    with pytest.raises(CgroupError, match=r"end in '\.slice'"):
        slice_path("a.scope")


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("a.scope", "a.scope"),
        ("cpu.slice", "_cpu.slice"),
        ("io.scope", "_io.scope"),
        ("cpux.slice", "cpux.slice"),
        ("cgroup.x", "_cgroup.x"),
        ("tasks", "_tasks"),
        (".hidden", "_.hidden"),
        ("a.cpu.slice", "a.cpu.slice"),
    ],
)
def test_cg_escape(name: str, escaped: str) -> None:
    assert cg_escape(name) == escaped
