"""Transient units: create, load, update and stop a group that systemd owns.

A scope (a group for processes that already run) or a slice (a group of groups) is
started with ``StartTransientUnit``; the client waits for the job's ``JobRemoved`` signal
and checks that its result is ``done``. The unit gets ``Delegate=yes`` (scopes: systemd
refuses it on slices), so everything *below* the unit's group belongs to us, while the
unit's own files (``memory.max`` of the scope...) belong to systemd and are only changed
through unit properties (``SetUnitProperties`` for updates).

Settings systemd has no property for (see :mod:`cgroup2.systemd.properties`) are written
to a sub-group of the unit's group, ``<unit group>/leaf``: the unit's processes
are moved into it, the controllers it needs are enabled in the unit's
``cgroup.subtree_control`` (ours to write under delegation), then the values are written
there. Slices are not delegated, so they cannot have such settings (refused before
anything is sent).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import re
import time
from collections.abc import Sequence

from .._fs import Dir, read_abs
from ..errors import CgroupDeletedError, CgroupError, InvalidPidError, KernelError
from ..manager import UNIT_SUBGROUP, Manager, _restore_text
from ..paths import default_mountpoint
from ..resources import CONTROLLERS, Resources, Value
from .dbus import Connection, SystemdError, connect, connect_user
from .names import DEFAULT_SLICE, check_unit_name, unit_path
from .properties import Plan, Property, Setting, plan, resource_settings, unit_properties

__all__ = [
    "JOB_TIMEOUT",
    "SUBGROUP",
    "create",
    "delete",
    "load",
    "systemd_version",
    "update",
]

log = logging.getLogger("cgroup2.systemd")

#: Seconds to wait for a start or stop job to finish.
JOB_TIMEOUT = 30.0
#: The sub-group of a delegated unit that takes what systemd has no property for.
SUBGROUP = UNIT_SUBGROUP

UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
_REFUSALS = (
    "org.freedesktop.DBus.Error.PropertyReadOnly",
    "org.freedesktop.DBus.Error.UnknownProperty",
)
_MANAGER = "/org/freedesktop/systemd1"
_PROPERTY_IN_TEXT = re.compile(r"[Pp]roperty ([A-Za-z][A-Za-z0-9]*)")


def systemd_version(conn: Connection) -> int:
    """The major version of the systemd at the other end (the manager's ``Version``,
    e.g. ``"252.39-1~deb12u1"`` -> 252); 0 when it cannot be read as a number."""
    text = str(conn.get_property(_MANAGER, "org.freedesktop.systemd1.Manager", "Version"))
    m = re.search(r"\d+", text)
    return int(m.group()) if m else 0


def _refused(e: SystemdError, sent: Sequence[Property]) -> str | None:
    """The property systemd says it cannot set, if that is what ``e`` says."""
    if e.name not in _REFUSALS and not (
        e.name == "org.freedesktop.DBus.Error.InvalidArgs" and "Cannot set property" in e.message
    ):
        return None
    m = _PROPERTY_IN_TEXT.search(e.message)
    names = {p.name for p in sent}
    if m and m.group(1) in names:
        return m.group(1)
    return None


def _reset_failed(conn: Connection, unit: str) -> None:
    """``ResetFailedUnit``: forget a failed unit of this name (best effort)."""
    try:
        conn.manager_call("ResetFailedUnit", "s", (unit,))
    except SystemdError as e:
        log.debug("ResetFailedUnit(%s): %s", unit, e)


def _unit_interface(unit: str) -> str:
    return "org.freedesktop.systemd1." + unit.rpartition(".")[2].capitalize()


def control_group(conn: Connection, unit: str) -> str | None:
    """The unit's ``ControlGroup`` property: its group path as systemd sees it (None
    when the unit is not loaded or has no group)."""
    try:
        (path,) = conn.manager_call("GetUnit", "s", (unit,))
    except SystemdError as e:
        if e.name == NO_SUCH_UNIT:
            return None
        raise
    cg = conn.get_property(str(path), _unit_interface(unit), "ControlGroup")
    return str(cg) if cg else None


#: The slice of a transient unit of the user's manager when none is named.
USER_DEFAULT_SLICE = "app.slice"


def _open(timeout: float = 2.0, *, user: bool = False) -> tuple[Connection, int]:
    """A subscribed connection to systemd (``user``: the calling user's manager)."""
    conn = connect_user(timeout=timeout) if user else connect(timeout=timeout)
    try:
        conn.subscribe()
        return conn, systemd_version(conn)
    except BaseException:
        conn.close()
        raise


def _proc_devices(resources: Resources | None) -> str:
    if resources is None or not resources.devices:
        return ""
    if not any(r.major is not None and r.minor is None for r in resources.devices):
        return ""
    return read_abs("/proc/devices").decode("utf-8", "replace")


def _check_pid(unit: str, pid: int) -> None:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise InvalidPidError(f"cgroups: pid must be an int, got {pid!r}")
    if unit.endswith(".scope"):
        if pid <= 0:
            raise InvalidPidError(
                f"cgroups: a scope unit ({unit}) is a group of running processes: "
                f"give the pid of one (got {pid})"
            )
    elif unit.endswith(".slice"):
        if pid != -1:
            raise InvalidPidError(
                f"cgroups: a slice ({unit}) holds no processes itself: pid must be -1 "
                f"(got {pid}); put the process in a scope in that slice"
            )
    else:
        raise CgroupError(
            f"cgroups: invalid systemd unit {unit!r}: only a .scope (with a pid) or a "
            f".slice can be created as a transient unit without a command"
        )


# --- create ---------------------------------------------------------------------------


def create(
    slice_name: str,
    unit: str,
    pid: int = -1,
    resources: Resources | None = None,
    *,
    timeout: float = JOB_TIMEOUT,
    description: str | None = None,
    user: bool = False,
) -> Manager:
    """Start the transient unit ``unit`` in ``slice_name`` with ``resources``.

    ``user``: ask the calling user's systemd manager (``systemd --user``; default slice
    ``app.slice``) instead of the system's; the unit's group is then the user's, inside
    ``user@UID.service``, and delegated to it as well (``Delegate=yes``).

    On ``UnitExists`` the failed unit of that name is reset and the start retried once; a
    slice that is still there is then updated. A property systemd refuses is dropped and
    the start retried; its values go to the sub-group. On any failure after the unit
    started, it is stopped again.
    """
    check_unit_name(unit)
    slice_name = slice_name or (USER_DEFAULT_SLICE if user else DEFAULT_SLICE)
    check_unit_name(slice_name, what="slice")
    if not slice_name.endswith(".slice"):
        raise CgroupError(f"cgroups: invalid systemd slice {slice_name!r}: must end in '.slice'")
    _check_pid(unit, pid)
    settings, rest = resource_settings(resources, proc_devices=_proc_devices(resources))
    if rest and unit.endswith(".slice"):
        raise _not_delegated(unit, rest)
    group = unit_path(slice_name, unit)
    mountpoint = default_mountpoint()
    base = unit_properties(unit, slice_name, pid, description=description)
    conn, version = _open(user=user)
    with conn:
        p = _start(conn, unit, base, settings, rest, version, timeout)
        try:
            if user:  # inside user@UID.service: the names alone do not give the path
                group = control_group(conn, unit) or group
            group, p = _cross_check(conn, unit, group, p)
            m = Manager(mountpoint, group, unit=unit)
            m.systemd_user = user
            if p.subgroup:
                _write_subgroup(m, p.subgroup, rollback=False)
        except BaseException:
            with contextlib.suppress(CgroupError):
                _stop(conn, unit, timeout)
            raise
    _report(m, p.warnings)
    return m


def _start(
    conn: Connection,
    unit: str,
    base: list[Property],
    settings: list[Setting],
    rest: list[Value],
    version: int,
    timeout: float,
) -> Plan:
    refused: set[str] = set()
    reset = False
    while True:
        p = plan(base, settings, rest, version=version, refused=refused)
        try:
            (job,) = conn.manager_call(
                "StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", p.dbus(), [])
            )
        except SystemdError as e:
            if e.name == UNIT_EXISTS:
                if not reset:
                    reset = True
                    _reset_failed(conn, unit)
                    continue
                if unit.endswith(".slice"):
                    # An active slice of that name: take it over and update it.
                    return _set_properties(conn, unit, settings, rest, version, refused)
                raise CgroupError(
                    f"cgroups: systemd unit {unit} already exists and is active "
                    f"(stop it first, or use Manager.load_systemd): {e.message}"
                ) from e
            name = _refused(e, p.properties)
            if name is not None and name not in refused:
                refused.add(name)
                log.info("systemd refused %s; retrying without it", name)
                continue
            raise
        result = conn.wait_job(str(job), timeout)
        if result.result != "done":
            _reset_failed(conn, unit)
            raise SystemdError(
                "job " + result.result,
                f"starting {unit} ended with result {result.result!r} "
                f"(see 'journalctl -u {unit}')",
                method="StartTransientUnit",
            )
        return p


def _cross_check(conn: Connection, unit: str, computed: str, p: Plan) -> tuple[str, Plan]:
    """The unit's group: systemd's ``ControlGroup`` when it says, else ``computed``."""
    actual = control_group(conn, unit)
    if actual is None or actual == computed:
        return computed, p
    note = f"{unit}: systemd put the group at {actual} (computed {computed})"
    return actual, dataclasses.replace(p, warnings=(*p.warnings, note))


def _report(m: Manager, warnings: Sequence[str]) -> None:
    m.systemd_warnings = tuple(warnings)
    for w in warnings:
        log.warning("%s: %s", m.unit, w)


# --- the sub-group --------------------------------------------------------------------


def _not_delegated(unit: str, values: Sequence[Value]) -> CgroupError:
    files = ", ".join(f"{v.filename}={v.value!r}" for v in values)
    return CgroupError(
        f"cgroups: {unit} is a slice, which systemd does not delegate, and systemd has no "
        f"property for {files}; put them on a scope in the slice instead"
    )


def _controller(filename: str) -> str | None:
    prefix = filename.split(".", 1)[0]
    return prefix if prefix in CONTROLLERS else None


def _write_subgroup(m: Manager, values: Sequence[Value], *, rollback: bool) -> None:
    """Write ``values`` to ``<m.path>/leaf``, making it the home of the unit's processes.

    The processes of the unit's own group are moved into the sub-group, then the
    controllers the values need are enabled in the unit's ``cgroup.subtree_control``
    (both allowed by delegation, and in this order: a group with processes cannot enable
    controllers for its children). With ``rollback``, values written before a failure
    are put back.
    """
    needed = list(dict.fromkeys(c for v in values if (c := _controller(v.filename))))
    with Dir.open(m.path, m.mountpoint) as d:
        have = d.read("cgroup.controllers").decode().split()
        missing = [c for c in needed if c not in have]
        if missing:
            raise CgroupError(
                f"cgroups: {m.unit}: the {' '.join(missing)} controller(s) are not "
                f"available in {m.path} (systemd delegates: {' '.join(have) or 'none'}); "
                f"cannot write {', '.join(v.filename for v in values)}"
            )
        try:
            d.mkdir(SUBGROUP)
        except KernelError as e:
            if e.errno != errno.EEXIST:
                raise
        with d.child(SUBGROUP) as leaf:
            _move_procs(d, leaf)
            on = d.read("cgroup.subtree_control").decode().split()
            off = [c for c in needed if c not in on]
            if off:
                d.write("cgroup.subtree_control", " ".join("+" + c for c in off))
            for v in values:
                if not leaf.exists(v.filename):
                    raise CgroupError(
                        f"cgroups: {leaf.path} has no file {v.filename!r} (not offered by "
                        f"this kernel); nothing more was written"
                    )
            done: list[tuple[Value, bytes]] = []
            try:
                for v in values:
                    old = leaf.read(v.filename) if rollback else b""
                    leaf.write(v.filename, v.value)
                    done.append((v, old))
            except BaseException:
                if rollback:
                    for v, old in reversed(done):
                        text = _restore_text(v.filename, v.value, old)
                        if text is not None:
                            with contextlib.suppress(CgroupError):
                                leaf.write(v.filename, text)
                raise


def _move_procs(d: Dir, leaf: Dir) -> None:
    """Move every process of ``d``'s own ``cgroup.procs`` into ``leaf`` (new forks too)."""
    for _ in range(100):
        pids = d.read("cgroup.procs").split()
        if not pids:
            return
        for pid in pids:
            try:
                leaf.write("cgroup.procs", pid.decode())
            except KernelError as e:
                if e.errno != errno.ESRCH:
                    raise
    raise CgroupError(f"cgroups: processes of {d.path} kept appearing while moving them")


# --- load, update, delete -------------------------------------------------------------


def load(slice_name: str, unit: str, *, user: bool = False) -> Manager:
    """The group of the existing unit ``unit`` in ``slice_name``.

    The path is computed from the names (and taken from systemd's ``ControlGroup`` when
    systemd can be asked); :class:`CgroupDeletedError` when the group does not exist.
    """
    check_unit_name(unit)
    slice_name = slice_name or (USER_DEFAULT_SLICE if user else DEFAULT_SLICE)
    check_unit_name(slice_name, what="slice")
    group = unit_path(slice_name, unit)
    try:
        conn = connect_user(timeout=1.0) if user else connect(timeout=1.0)
    except SystemdError:
        conn = None
    if conn is not None:
        with conn, contextlib.suppress(SystemdError):
            group = control_group(conn, unit) or group
    m = Manager(default_mountpoint(), group, unit=unit)
    m.systemd_user = user
    if not os.path.isdir(m.path):
        raise CgroupDeletedError(
            f"cgroups: cgroup deleted: {m.path} (unit {unit}) does not exist",
            errno=errno.ENOENT,
            path=m.path,
        )
    return m


def _set_properties(
    conn: Connection,
    unit: str,
    settings: list[Setting],
    rest: list[Value],
    version: int,
    refused: set[str],
) -> Plan:
    while True:
        p = plan([], settings, rest, version=version, refused=refused)
        if not p.properties:
            return p
        try:
            conn.manager_call("SetUnitProperties", "sba(sv)", (unit, True, p.dbus()))
            return p
        except SystemdError as e:
            name = _refused(e, p.properties)
            if name is None or name in refused:
                raise
            refused.add(name)


def update(m: Manager, resources: Resources | None) -> None:
    """Change the unit's properties (``SetUnitProperties``, runtime); what systemd has
    no property for goes to the sub-group."""
    if resources is None:
        return
    if m.unit is None:
        raise CgroupError(f"cgroups: {m.path} is not owned by a systemd unit")
    settings, rest = resource_settings(resources, proc_devices=_proc_devices(resources))
    if rest and m.unit.endswith(".slice"):
        raise _not_delegated(m.unit, rest)
    conn, version = _open(user=m.systemd_user)
    with conn:
        p = _set_properties(conn, m.unit, settings, rest, version, set())
    if p.subgroup:
        _write_subgroup(m, p.subgroup, rollback=True)
    _report(m, p.warnings)


def _stop(conn: Connection, unit: str, timeout: float) -> None:
    try:
        (job,) = conn.manager_call("StopUnit", "ss", (unit, "replace"))
    except SystemdError as e:
        if e.name == NO_SUCH_UNIT:
            return
        raise
    result = conn.wait_job(str(job), timeout)
    _reset_failed(conn, unit)
    if result.result != "done":
        raise SystemdError(
            "job " + result.result,
            f"stopping {unit} ended with result {result.result!r}",
            method="StopUnit",
        )


def delete(m: Manager, *, timeout: float = JOB_TIMEOUT) -> None:
    """Stop the unit (systemd kills its processes and removes its groups, the
    sub-groups included) and wait for the stop job; a unit already gone is success."""
    if m.unit is None:
        raise CgroupError(f"cgroups: {m.path} is not owned by a systemd unit (use delete())")
    conn, _ = _open(user=m.systemd_user)
    with conn:
        _stop(conn, m.unit, timeout)
    # systemd removes the group when the unit is unloaded, right after the job; wait a
    # moment for it so that callers can rely on the directory being gone.
    deadline = time.monotonic() + 2.0
    while os.path.isdir(m.path) and time.monotonic() < deadline:
        time.sleep(0.01)
