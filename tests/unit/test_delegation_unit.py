"""Unit tier: --owner parsing, the delegated-root search on a fake tree, the user bus."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cgroup2.delegation import common_ancestor, parse_owner
from cgroup2.errors import CgroupError
from cgroup2.paths import find_delegated_root, owns_group
from cgroup2.systemd.dbus import user_bus_candidates


def test_parse_owner_names_and_numbers() -> None:
    assert parse_owner("root") == (0, None)
    assert parse_owner("root:") == (0, 0)  # chown(1): USER: is the user's group
    assert parse_owner("nobody:nogroup") == (65534, 65534)
    assert parse_owner("1234") == (1234, None)
    assert parse_owner("1234:99") == (1234, 99)
    assert parse_owner("0:nogroup") == (0, 65534)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "USER[:GROUP]"),
        (":0", "USER[:GROUP]"),
        ("no-such-user-xyz", "no user 'no-such-user-xyz'"),
        ("root:no-such-group-xyz", "no group 'no-such-group-xyz'"),
    ],
)
def test_parse_owner_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        parse_owner(text)


def test_parse_owner_refuses_out_of_range_ids() -> None:
    with pytest.raises(CgroupError, match="invalid uid"):
        parse_owner(str(2**32 - 1))  # (uid_t)-1: "unchanged" to chown(2)
    with pytest.raises(CgroupError, match="invalid gid"):
        parse_owner("0:" + str(2**32))


def test_find_delegated_root_is_the_nearest_owned_ancestor() -> None:
    owned = {"/user.slice/user@1000.service", "/user.slice/user@1000.service/app.slice",
             "/ci/job"}
    def f(g: str) -> str | None:
        return find_delegated_root(g, owned.__contains__)
    assert f("/user.slice/user@1000.service/app.slice/x.scope") == (
        "/user.slice/user@1000.service/app.slice"
    )
    assert f("/user.slice/user@1000.service/app.slice") == (
        "/user.slice/user@1000.service/app.slice"
    )
    assert f("/ci/job/init") == "/ci/job"
    assert f("/user.slice/session-1.scope") is None
    assert f("/") is None
    assert find_delegated_root("/a/b", {"/"}.__contains__) == "/"  # a namespace's root


def test_owns_group_needs_the_directory_and_cgroup_procs(tmp_path: Path) -> None:
    me = os.geteuid()
    g = tmp_path / "g"
    g.mkdir()
    assert not owns_group(str(g), me)  # no cgroup.procs
    (g / "cgroup.procs").write_text("")
    assert owns_group(str(g), me)
    assert not owns_group(str(g), me + 1)
    os.chmod(g / "cgroup.procs", 0o444)
    assert not owns_group(str(g), me)


def test_common_ancestor() -> None:
    m = "/sys/fs/cgroup"
    assert common_ancestor(f"{m}/a/b/init", f"{m}/a/b/job") == f"{m}/a/b"
    assert common_ancestor(f"{m}/a/b/init", f"{m}/a/c") == f"{m}/a"
    assert common_ancestor(f"{m}/a", f"{m}/a/c") == f"{m}/a"


def test_user_bus_order() -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/tmp/s%20b,guid=1", "XDG_RUNTIME_DIR": "/r"}
    assert user_bus_candidates(env, uid=1000) == [
        ("/tmp/s b", False),
        ("/r/bus", False),
        ("/r/systemd/private", True),
        ("/run/user/1000/systemd/private", True),
    ]
    assert user_bus_candidates({}, uid=7) == [
        ("/run/user/7/bus", False),
        ("/run/user/7/systemd/private", True),
    ]


def test_connect_names_every_place_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cgroup2.systemd import dbus
    from cgroup2.systemd.dbus import SystemdError

    not_a_bus = tmp_path / "bus"
    not_a_bus.write_text("")  # exists, but nothing listens: connecting fails
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={not_a_bus}")
    monkeypatch.setattr(dbus, "PRIVATE_SOCKET", str(tmp_path / "private"))
    with pytest.raises(SystemdError) as e:
        dbus.connect(timeout=0.5)
    msg = str(e.value)
    assert "cannot reach systemd (" in msg, msg
    assert f"{not_a_bus}: " in msg and f"{tmp_path / 'private'}: missing" in msg, msg
    assert e.value.name == "org.freedesktop.DBus.Error.NoServer"

    runtime = tmp_path / "run"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(SystemdError) as e:
        dbus.connect_user(timeout=0.5)
    msg = str(e.value)
    assert msg.count(": missing") >= 2, msg
    assert f"{runtime}/bus: missing" in msg and f"{runtime}/systemd/private: missing" in msg
    assert "the user's systemd manager" in msg and "loginctl enable-linger USER" in msg
