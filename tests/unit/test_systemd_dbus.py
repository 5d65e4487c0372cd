"""The D-Bus client and the unit operations against a fake systemd on a socket.

The fake speaks real D-Bus (EXTERNAL auth, jeepney's wire format) on a Unix socket in a
temporary folder, so the client's bytes, its waiting for ``JobRemoved``, and the retries
(``UnitExists`` -> ``ResetFailedUnit``; a refused property) are exercised without systemd.
The real thing is in tests/systemd.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    HeaderFields,
    Message,
    MessageType,
    Parser,
    new_error,
    new_method_return,
    new_signal,
)

from cgroup2 import CgroupError, InvalidPidError, Manager, Memory, Pids, Resources
from cgroup2.systemd import dbus, unit
from cgroup2.systemd.dbus import Connection, SystemdError

MANAGER = DBusAddress(
    "/org/freedesktop/systemd1",
    bus_name="org.freedesktop.systemd1",
    interface="org.freedesktop.systemd1.Manager",
)


@dataclass
class Fake:
    """What the fake systemd does and what it saw."""

    version: str = "252.39-1~deb12u1"
    exists: set[str] = field(default_factory=set)  # units that exist (UnitExists)
    stuck: set[str] = field(default_factory=set)  # exist even after ResetFailedUnit
    refuse: set[str] = field(default_factory=set)  # properties it cannot set
    job_result: str = "done"
    signal_first: bool = False  # send JobRemoved before the method's reply
    no_job_signal: bool = False
    control_group: str = "/system.slice/a.scope"
    bus: bool = False  # behave as the bus daemon too (Hello, AddMatch)
    no_owner: bool = False  # as a bus: systemd has not joined it yet
    stall_first: bool = False  # answer a connection's first call only when more comes
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    serial: int = 1000
    jobs: int = 0

    def handle(self, conn: socket.socket, msg: Message) -> None:
        member = msg.header.fields.get(HeaderFields.member)
        self.calls.append((member, msg.body))
        out: list[Message] = []
        if member == "Hello":
            out.append(new_method_return(msg, "s", (":1.42",)))
        elif member == "GetNameOwner":
            if self.no_owner:
                out.append(new_error(msg, "org.freedesktop.DBus.Error.NameHasNoOwner", "s",
                                     ("Could not get owner of name 'org.freedesktop.systemd1'",)))
            else:
                out.append(new_method_return(msg, "s", (":1.1",)))
        elif member == "AddMatch" or member == "Subscribe":
            out.append(new_method_return(msg))
        elif member == "Get":
            _iface, name = msg.body
            if name == "Version":
                out.append(new_method_return(msg, "v", (("s", self.version),)))
            elif name == "ControlGroup":
                out.append(new_method_return(msg, "v", (("s", self.control_group),)))
            else:
                out.append(new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "s",
                                     (f"no {name}",)))
        elif member == "GetUnit":
            (name,) = msg.body
            esc = "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in name)
            path = "/org/freedesktop/systemd1/unit/" + esc
            out.append(new_method_return(msg, "o", (path,)))
        elif member == "ResetFailedUnit":
            (name,) = msg.body
            if name not in self.stuck:
                self.exists.discard(name)
            out.append(new_method_return(msg))
        elif member == "StartTransientUnit":
            name, _mode, props, _aux = msg.body
            bad = [p for p, _ in props if p in self.refuse]
            if name in self.exists:
                out.append(new_error(msg, "org.freedesktop.systemd1.UnitExists", "s",
                                     (f"Unit {name} was already loaded or has a fragment file.",)))
            elif bad:
                out.append(new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "s",
                                     (f"Cannot set property {bad[0]}, or unknown property.",)))
            else:
                self.exists.add(name)
                out += self._job(msg, name)
        elif member == "StopUnit":
            name, _mode = msg.body
            if name not in self.exists:
                out.append(new_error(msg, "org.freedesktop.systemd1.NoSuchUnit", "s",
                                     (f"Unit {name} not loaded.",)))
            else:
                self.exists.discard(name)
                out += self._job(msg, name)
        elif member == "SetUnitProperties":
            name, _runtime, props = msg.body
            bad = [p for p, _ in props if p in self.refuse]
            if bad:
                out.append(new_error(msg, "org.freedesktop.DBus.Error.PropertyReadOnly", "s",
                                     (f"Property {bad[0]} is read-only.",)))
            else:
                out.append(new_method_return(msg))
        else:
            out.append(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                 (f"no {member}",)))
        for m in out:
            self.serial += 1
            conn.sendall(m.serialise(serial=self.serial))

    def _job(self, msg: Message, name: str) -> list[Message]:
        self.jobs += 1
        job = f"/org/freedesktop/systemd1/job/{self.jobs}"
        reply = new_method_return(msg, "o", (job,))
        # another job's signal first: the client must wait for its own
        other = new_signal(MANAGER, "JobRemoved", "uoss",
                           (99, "/org/freedesktop/systemd1/job/99", "x.scope", "failed"))
        sig = new_signal(MANAGER, "JobRemoved", "uoss", (self.jobs, job, name, self.job_result))
        if self.no_job_signal:
            return [reply]
        return [other, sig, reply] if self.signal_first else [reply, other, sig]


def serve(fake: Fake, listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve_one, args=(fake, conn), daemon=True).start()


def serve_one(fake: Fake, conn: socket.socket) -> None:
    with conn:
        buf = b""
        assert conn.recv(1) == b"\0"
        while b"BEGIN\r\n" not in buf:
            data = conn.recv(1024)
            if not data:
                return
            buf += data
            if b"AUTH EXTERNAL" in buf and b"\r\n" in buf and b"OK" not in buf:
                conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                buf += b"OK"
        parser = Parser()
        rest = buf.split(b"BEGIN\r\n", 1)[1]
        if rest:
            parser.add_data(rest)
        held: list[Message] = []
        first = True
        while True:
            while (msg := parser.get_next_message()) is not None:
                if msg.header.message_type is not MessageType.method_call:
                    continue
                if first and fake.stall_first:
                    first = False
                    held.append(msg)
                    continue
                for m in [*held, msg]:
                    fake.handle(conn, m)
                held = []
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            parser.add_data(data)


def listen(f: Fake, path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)
    threading.Thread(target=serve, args=(f, listener), daemon=True).start()
    return listener


def stop(listener: socket.socket) -> None:
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@pytest.fixture
def fake(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    f = Fake()
    path = os.path.join(tmp_path, "private")
    listener = listen(f, path)

    def connect(*, timeout: float = 2.0) -> Connection:
        return Connection(path, direct=not f.bus, timeout=timeout)

    monkeypatch.setattr(unit, "connect", connect)
    monkeypatch.setattr(unit, "default_mountpoint", lambda: "/sys/fs/cgroup")
    try:
        yield f
    finally:
        stop(listener)


def sent_props(f: Fake, method: str = "StartTransientUnit") -> list[dict[str, Any]]:
    out = []
    for member, body in f.calls:
        if member == method:
            props = body[2]
            out.append({name: value for name, (_sig, value) in props})
    return out


def members(f: Fake) -> list[str]:
    return [m for m, _ in f.calls]


def test_create_scope(fake: Fake) -> None:
    r = Resources(memory=Memory(max=64 << 20), pids=Pids(max=7))
    m = Manager.create_systemd("", "a.scope", 1234, r)
    assert (m.mountpoint, m.group, m.unit) == ("/sys/fs/cgroup", "/system.slice/a.scope", "a.scope")
    (props,) = sent_props(fake)
    assert props["PIDs"] == [1234]
    assert props["Delegate"] is True and props["Slice"] == "system.slice"
    assert props["MemoryMax"] == 64 << 20 and props["TasksMax"] == 7
    assert m.systemd_warnings == ()
    # subscribed before the job was started
    assert members(fake).index("Subscribe") < members(fake).index("StartTransientUnit")


def test_job_signal_before_the_reply(fake: Fake) -> None:
    fake.signal_first = True
    m = Manager.create_systemd("", "a.scope", 1234)
    assert m.unit == "a.scope"


def test_via_the_bus_daemon(fake: Fake) -> None:
    fake.bus = True
    Manager.create_systemd("", "a.scope", 1234)
    ms = members(fake)
    assert ms[:2] == ["Hello", "GetNameOwner"] and "AddMatch" in ms
    add = next(body for m, body in fake.calls if m == "AddMatch")
    assert "member='JobRemoved'" in add[0]


def test_unit_exists_resets_and_retries_once(fake: Fake) -> None:
    fake.exists.add("a.scope")
    Manager.create_systemd("", "a.scope", 1234)
    assert members(fake).count("StartTransientUnit") == 2
    assert "ResetFailedUnit" in members(fake)


def test_unit_exists_twice_is_an_error(fake: Fake) -> None:
    fake.exists.add("a.scope")
    fake.stuck.add("a.scope")
    with pytest.raises(CgroupError, match="already exists"):
        Manager.create_systemd("", "a.scope", 1234)
    assert members(fake).count("StartTransientUnit") == 2


def test_existing_slice_is_updated(fake: Fake) -> None:
    fake.exists.add("my-group.slice")
    fake.stuck.add("my-group.slice")
    fake.control_group = "/my.slice/my-group.slice"
    m = Manager.create_systemd("", "my-group.slice", -1, Resources(memory=Memory(max=1 << 30)))
    assert m.group == "/my.slice/my-group.slice"
    (props,) = sent_props(fake, "SetUnitProperties")
    assert props == {"MemoryMax": 1 << 30}


def test_refused_property_is_dropped_and_reported(fake: Fake) -> None:
    fake.refuse.add("TasksAccounting")
    m = Manager.create_systemd("", "a.scope", 1234)
    first, second = sent_props(fake)
    assert "TasksAccounting" in first and "TasksAccounting" not in second
    assert any("TasksAccounting" in w for w in m.systemd_warnings)


def test_old_systemd_gets_no_new_properties(fake: Fake) -> None:
    fake.version = "228"
    m = Manager.create_systemd("", "a.scope", 1234)
    (props,) = sent_props(fake)
    assert "IOAccounting" not in props and "TasksAccounting" in props
    assert any("IOAccounting" in w for w in m.systemd_warnings)


def test_failed_job_raises_and_resets(fake: Fake) -> None:
    fake.job_result = "failed"
    with pytest.raises(SystemdError, match="'failed'"):
        Manager.create_systemd("", "a.scope", 1234)
    assert members(fake)[-1] == "ResetFailedUnit"


def test_job_timeout(fake: Fake) -> None:
    fake.no_job_signal = True
    with pytest.raises(SystemdError, match="did not finish"):
        Manager.create_systemd("", "a.scope", 1234, timeout=0.2)


def test_control_group_wins_over_the_computed_path(fake: Fake) -> None:
    fake.control_group = "/elsewhere.slice/a.scope"
    m = Manager.create_systemd("", "a.scope", 1234)
    assert m.group == "/elsewhere.slice/a.scope"
    assert any("elsewhere" in w for w in m.systemd_warnings)


def test_delete_and_update(fake: Fake) -> None:
    m = Manager.create_systemd("", "a.scope", 1234)
    m.update(Resources(pids=Pids(max=3)))
    (name, runtime, props) = next(b for mm, b in fake.calls if mm == "SetUnitProperties")
    assert (name, runtime, props) == ("a.scope", True, [("TasksMax", ("t", 3))])
    m.delete_systemd()
    assert "StopUnit" in members(fake)
    m.delete_systemd()  # gone already: NoSuchUnit is success


def test_update_refused_property_goes_to_the_subgroup_of_a_slice_is_refused(fake: Fake) -> None:
    fake.exists.add("s.slice")
    fake.stuck.add("s.slice")
    m = Manager("/sys/fs/cgroup", "/s.slice", unit="s.slice")
    fake.refuse.add("TasksMax")
    with pytest.raises(CgroupError, match="does not delegate"):
        Manager.create_systemd("", "s.slice", -1, Resources(memory=Memory(oom_group=True)))
    assert "StartTransientUnit" not in members(fake)
    assert m.unit == "s.slice"


@pytest.mark.parametrize(
    ("name", "pid", "err"),
    [
        ("a.scope", -1, InvalidPidError),
        ("a.scope", 0, InvalidPidError),
        ("a.slice", 5, InvalidPidError),
        ("a.service", 5, CgroupError),
        ("a b.scope", 5, CgroupError),
    ],
)
def test_refused_before_anything_is_sent(fake: Fake, name: str, pid: int, err: type) -> None:
    with pytest.raises(err):
        Manager.create_systemd("", name, pid)
    assert fake.calls == []


def test_bad_slice_refused(fake: Fake) -> None:
    with pytest.raises(CgroupError, match="slice"):
        Manager.create_systemd("a.scope", "b.scope", 5)
    assert fake.calls == []


def test_connect_reports_what_it_tried(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(dbus, "SYSTEM_BUS_SOCKET", os.path.join(tmp_path, "nobus"))
    monkeypatch.setattr(dbus, "PRIVATE_SOCKET", os.path.join(tmp_path, "noprivate"))
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    with pytest.raises(SystemdError, match=r"nobus: missing.*noprivate: missing"):
        dbus.connect()


def test_address_parsing() -> None:
    assert dbus._address_path("unix:path=/run/dbus/system_bus_socket") == (
        "/run/dbus/system_bus_socket"
    )
    assert dbus._address_path("tcp:host=x;unix:path=/a%20b,guid=1") == "/a b"
    assert dbus._address_path("unix:abstract=foo") is None


def _use(monkeypatch: pytest.MonkeyPatch, bus: str, private: str) -> None:
    monkeypatch.setattr(dbus, "SYSTEM_BUS_SOCKET", bus)
    monkeypatch.setattr(dbus, "PRIVATE_SOCKET", private)
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)


def test_connect_prefers_the_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    bus, private = Fake(bus=True), Fake()
    lb, lp = listen(bus, f"{tmp_path}/bus"), listen(private, f"{tmp_path}/private")
    try:
        _use(monkeypatch, f"{tmp_path}/bus", f"{tmp_path}/private")
        with dbus.connect() as conn:
            assert not conn.direct
            assert conn.manager_call("GetUnit", "s", ("a.scope",))
    finally:
        stop(lb)
        stop(lp)
    assert "GetUnit" in members(bus) and private.calls == []


def test_connect_falls_back_when_systemd_is_not_on_the_bus_yet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bus, private = Fake(bus=True, no_owner=True), Fake()
    lb, lp = listen(bus, f"{tmp_path}/bus"), listen(private, f"{tmp_path}/private")
    try:
        _use(monkeypatch, f"{tmp_path}/bus", f"{tmp_path}/private")
        with dbus.connect() as conn:
            assert conn.direct and conn.path == f"{tmp_path}/private"
            conn.subscribe()
    finally:
        stop(lb)
        stop(lp)
    assert members(bus) == ["Hello", "GetNameOwner"]
    assert members(private) == ["Subscribe"]


def test_connect_falls_back_when_the_bus_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # a socket that accepts but never authenticates (a bus daemon still starting)
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(f"{tmp_path}/bus")
    mute.listen(1)
    private = Fake()
    lp = listen(private, f"{tmp_path}/private")
    try:
        _use(monkeypatch, f"{tmp_path}/bus", f"{tmp_path}/private")
        with dbus.connect(timeout=0.3) as conn:
            assert conn.direct
    finally:
        mute.close()
        stop(lp)


def test_a_stalled_first_call_is_nudged(fake: Fake) -> None:
    fake.stall_first = True
    m = Manager.create_systemd("", "a.scope", 1234)
    assert m.unit == "a.scope"
    assert "Ping" in members(fake)
