"""Pressure stall (PSI) triggers on a group's ``<resource>.pressure`` files.

The kernel's PSI monitor (Documentation/accounting/psi.rst, kernel/sched/psi.c): a
process opens ``cpu.pressure``, ``memory.pressure``, ``io.pressure`` or ``irq.pressure``
of a group read-write, writes ``"<some|full> <stall us> <window us>"`` to it, and polls the
same fd for ``EPOLLPRI``: it comes when the group's tasks were stalled on that resource
for at least ``stall`` in a ``window`` (at most once per window). One trigger per open
file; closing the fd removes the trigger. The removal of the group wakes the fd with
``EPOLLERR`` (a read then fails with ``ENODEV``).

The kernel's rules, by version (``psi_trigger_create()`` and the pressure files' open):

* all: ``some`` or ``full``; ``0 < stall <= window <= 10 s``. ``irq.pressure`` (Linux
  6.1, ``CONFIG_IRQ_TIME_ACCOUNTING``) takes ``full`` only; ``full`` of ``cpu.pressure``
  exists since Linux 5.13 (before, ``EINVAL``).
* Linux 5.2 to 6.4: window at least 500 ms. The group's pressure files had no capability
  check (the file's permissions alone decide: the owner of a delegated group may write
  them); ``/proc/pressure/*`` needs CAP_SYS_RESOURCE to be opened for writing.
* Linux 6.5 and later (commit d82caa273565, "Allow unprivileged polling of N*2s
  period"; also in the 6.1 stable series since 6.1.42, taken with the fix "use kernfs
  polling functions for PSI trigger polling", without the 500 ms change below): the
  privilege is CAP_SYS_RESOURCE in the credentials of the process that *opened* the
  file. Privileged: any window up to 10 s, served by a real-time ``psimon``
  thread. Unprivileged: the window must be a multiple of 2 s (2, 4, 6, 8, 10 s), served
  by the 2 s averaging work, else ``EINVAL``. Linux 6.5 and 6.6 also refused to open a
  group's pressure file for writing without CAP_SYS_RESOURCE (``EPERM``), a regression
  fixed in 6.7 and the 6.5/6.6 stable kernels (commit 8b39d20eceed).

:class:`PressureTrigger` checks the rules that hold on every kernel when it is made, and
:meth:`PressureTrigger.check` those of the running kernel and caller (the capability is
read from ``CapEff`` in ``/proc/self/status``); an error the kernel still returns is
explained by a :class:`~cgroup2.errors.PressureTriggerError` naming the rule.
"""

from __future__ import annotations

import errno
import math
import os
import re
import time
from dataclasses import dataclass

from .._fs import Dir
from ..controllers.psi import parse_pressure
from ..errors import CgroupDeletedError, CgroupError, KernelError, PressureTriggerError

__all__ = [
    "RESOURCES",
    "PressureEvent",
    "PressureTrigger",
    "has_cap_sys_resource",
    "kernel_version",
    "open_trigger",
    "read_event",
    "unprivileged_rule",
]

RESOURCES = ("cpu", "memory", "io", "irq")
KINDS = ("some", "full")
WINDOW_MIN_US = 500_000  # the kernel's minimum before 6.5 (kept on every kernel)
WINDOW_MAX_US = 10_000_000
UNPRIVILEGED_PERIOD_US = 2_000_000  # Linux 6.5+: unprivileged windows are multiples of it
CAP_SYS_RESOURCE = 24

_RULE_UNPRIVILEGED = (
    "without CAP_SYS_RESOURCE, Linux 6.5 and later (and 6.1 from 6.1.42) accept only a "
    "window that is a "
    "multiple of 2 s (2, 4, 6, 8 or 10 s): such triggers are served by the kernel's 2 s "
    "averaging work instead of a real-time poller (kernel/sched/psi.c)"
)


def kernel_version() -> tuple[int, int, int]:
    """(major, minor, patch) of the running kernel, from ``uname -r``; where that says
    ``X.Y.0`` and ``uname -v`` names a later ``X.Y.Z`` (Debian: ``6.1.0-57-amd64`` is
    ``Debian 6.1.192-3``), the stable release of ``uname -v``."""
    u = os.uname()
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", u.release)
    if m is None:
        return (0, 0, 0)
    major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    for v in re.finditer(r"\b(\d+)\.(\d+)\.(\d+)\b", u.version):
        if (int(v.group(1)), int(v.group(2))) == (major, minor):
            patch = max(patch, int(v.group(3)))
    return (major, minor, patch)


def unprivileged_rule(kernel: tuple[int, ...]) -> bool | None:
    """Whether ``kernel`` holds a caller without CAP_SYS_RESOURCE to windows that are a
    multiple of 2 s: ``True`` from Linux 6.5 and in the 6.1 stable series from 6.1.42
    (which took the change with a fix of trigger polling), ``False`` before 6.1.42 and
    on 5.x and 6.0 (before the change; a stable line may have taken it since: then the
    kernel's ``EINVAL`` is explained), ``None`` for 6.2 to 6.4 (not known here)."""
    k = tuple(kernel) + (0,) * (3 - len(kernel))
    if k >= (6, 5, 0):
        return True
    if k[:2] == (6, 1):
        return k >= (6, 1, 42)
    if k >= (6, 2, 0):
        return None
    return False


def has_cap_sys_resource(status: bytes | None = None) -> bool:
    """Whether this process has CAP_SYS_RESOURCE in its effective set (``CapEff`` of
    ``/proc/self/status``; ``status`` is that file's bytes, for tests)."""
    if status is None:
        try:
            with open("/proc/self/status", "rb") as f:
                status = f.read()
        except OSError:
            return os.geteuid() == 0
    for line in status.splitlines():
        if line.startswith(b"CapEff:"):
            try:
                return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
            except (IndexError, ValueError):
                break
    return os.geteuid() == 0


_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s)?")


def _duration_us(text: str, what: str, spec: str) -> int:
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise PressureTriggerError(
            f"cgroups: pressure trigger {spec!r}: {what} {text!r} is not a duration "
            f"(a number with us, ms or s; seconds without a unit)"
        )
    us = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not math.isfinite(us):  # a number of 400 digits: round() would overflow
        raise PressureTriggerError(
            f"cgroups: pressure trigger {_short(repr(spec))}: {what} {_short(repr(text))} "
            f"is above {WINDOW_MAX_US // 1_000_000} s (the kernel's largest window)"
        )
    return round(us)


def _short(text: str) -> str:
    """``text``, its middle elided past 40 characters (an error message stays a line)."""
    return text if len(text) <= 40 else f"{text[:24]}...{text[-12:]}"


def _fmt_us(us: int) -> str:
    if us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1_000 == 0:
        return f"{us // 1_000}ms"
    return f"{us}us"


@dataclass(frozen=True, slots=True)
class PressureTrigger:
    """A PSI trigger: tell me when the group's tasks were stalled on ``resource`` for at
    least ``stall`` seconds within a ``window`` of seconds.

    ``resource``: ``cpu``, ``memory``, ``io`` or ``irq`` (the file ``<resource>.pressure``);
    ``kind``: ``some`` (at least one task stalled) or ``full`` (all non-idle tasks stalled
    at once; ``irq`` has ``full`` only). The kernel fires a trigger at most once per
    window. Checked here, for every kernel: ``0 < stall <= window``, ``0.5 s <= window <=
    10 s``, both in whole microseconds after rounding; :meth:`check` adds the rules of the
    running kernel and of a caller without CAP_SYS_RESOURCE. Raises
    :class:`~cgroup2.errors.PressureTriggerError`.
    """

    resource: str
    kind: str = "some"
    stall: float = 0.15
    window: float = 1.0

    def __post_init__(self) -> None:
        where = f"cgroups: pressure trigger {self.resource}:{self.kind}"
        if self.resource not in RESOURCES:
            raise PressureTriggerError(
                f"cgroups: pressure trigger: resource {self.resource!r} is not one of "
                f"{', '.join(RESOURCES)} (the files <resource>.pressure)"
            )
        if self.kind not in KINDS:
            raise PressureTriggerError(f"{where}: kind must be 'some' or 'full'")
        if self.resource == "irq" and self.kind != "full":
            raise PressureTriggerError(
                f"{where}: irq.pressure has only a 'full' line; the kernel refuses 'some'"
            )
        for name in ("stall", "window"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or (isinstance(v, float) and not math.isfinite(v))
            ):
                raise PressureTriggerError(f"{where}: {name} {v!r} is not a number of seconds")
            if not -1e9 <= v <= 1e9:  # beyond every bound: float() or round() would overflow
                r = _short(repr(v))
                raise PressureTriggerError(
                    f"{where}: window {r} s is outside 0.5 s .. 10 s (the kernel's bounds)"
                    if name == "window"
                    else f"{where}: stall {r} s must be above 0 and at most the window "
                    f"(at most 10 s)"
                )
            object.__setattr__(self, name, float(v))
        w, s = self.window_us, self.stall_us
        if not WINDOW_MIN_US <= w <= WINDOW_MAX_US:
            raise PressureTriggerError(
                f"{where}: window {self.window:g} s is outside 0.5 s .. 10 s (the kernel's "
                f"bounds; Linux before 6.5 refuses windows under 500 ms)"
            )
        if not 0 < s <= w:
            raise PressureTriggerError(
                f"{where}: stall {self.stall:g} s must be above 0 and at most the window "
                f"({self.window:g} s)"
            )

    @property
    def stall_us(self) -> int:
        """The stall threshold in microseconds, as written."""
        return round(self.stall * 1_000_000)

    @property
    def window_us(self) -> int:
        """The window in microseconds, as written."""
        return round(self.window * 1_000_000)

    @property
    def filename(self) -> str:
        """``<resource>.pressure``."""
        return f"{self.resource}.pressure"

    def line(self) -> bytes:
        """What is written to the file: ``b"some 150000 1000000"``."""
        return f"{self.kind} {self.stall_us} {self.window_us}".encode()

    def __str__(self) -> str:
        return f"{self.resource}:{self.kind}:{_fmt_us(self.stall_us)}:{_fmt_us(self.window_us)}"

    @classmethod
    def parse(cls, spec: str) -> PressureTrigger:
        """``RESOURCE:KIND:STALL:WINDOW``, e.g. ``memory:some:150ms:1s`` (durations in
        us, ms or s; a bare number is seconds). ``RESOURCE:STALL:WINDOW`` means ``some``
        (``full`` for irq)."""
        parts = spec.split(":")
        if len(parts) == 3:
            parts.insert(1, "full" if parts[0] == "irq" else "some")
        if len(parts) != 4:
            raise PressureTriggerError(
                f"cgroups: pressure trigger {spec!r}: expected RESOURCE:KIND:STALL:WINDOW, "
                f"e.g. memory:some:150ms:1s"
            )
        res, kind, stall, window = parts
        return cls(
            res,
            kind,
            _duration_us(stall, "stall", spec) / 1_000_000,
            _duration_us(window, "window", spec) / 1_000_000,
        )

    def check(
        self, *, privileged: bool | None = None, kernel: tuple[int, ...] | None = None
    ) -> None:
        """Raise :class:`~cgroup2.errors.PressureTriggerError` if the running kernel (or
        ``kernel``) would refuse this trigger from this process (or, with ``privileged``,
        from a caller with/without CAP_SYS_RESOURCE)."""
        k = kernel_version() if kernel is None else tuple(kernel)
        where = f"cgroups: pressure trigger {self}"
        if self.resource == "cpu" and self.kind == "full" and k < (5, 13):
            raise PressureTriggerError(
                f"{where}: 'full' cpu pressure exists since Linux 5.13; this is {k[0]}.{k[1]}"
            )
        if self.resource == "irq" and k < (6, 1):
            raise PressureTriggerError(
                f"{where}: irq.pressure exists since Linux 6.1; this is {k[0]}.{k[1]}"
            )
        if privileged is None:
            privileged = has_cap_sys_resource()
        if not privileged and unprivileged_rule(k) and self.window_us % UNPRIVILEGED_PERIOD_US:
            raise PressureTriggerError(
                f"{where}: window {self.window:g} s refused: {_RULE_UNPRIVILEGED}; "
                f"this process lacks CAP_SYS_RESOURCE (CapEff in /proc/self/status)"
            )


@dataclass(frozen=True, slots=True)
class PressureEvent:
    """A trigger fired (or, from :meth:`EventWatcher.add_pressure`, the state when it
    was set): the ``kind`` line of ``<resource>.pressure`` read from the trigger's fd.

    ``time``: ``time.time()`` when it was read; ``avg10``/``avg60``: percent of wall time
    stalled over 10 s / 60 s; ``total``: stall time in microseconds since the group was
    made; ``path``: the group; ``trigger``: the trigger that fired.
    """

    resource: str
    kind: str
    time: float
    avg10: float
    avg60: float
    total: int
    path: str = ""
    trigger: PressureTrigger | None = None


def read_event(fd: int, path: str, trigger: PressureTrigger) -> PressureEvent:
    """Read the trigger's file again (``pread`` at 0 on its fd) into a
    :class:`PressureEvent`; a removed group raises :class:`CgroupDeletedError`."""
    name = trigger.filename
    try:
        data = os.pread(fd, 512, 0)
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENOENT):
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {path} was removed (read {name})",
                errno=e.errno,
                path=f"{path}/{name}",
            ) from None
        raise KernelError(e.errno or 0, f"{path}/{name}", op="read") from None
    stats = parse_pressure(data, name)
    line = stats.full if trigger.kind == "full" else stats.some
    if line is None:
        return PressureEvent(
            trigger.resource, trigger.kind, time.time(), 0.0, 0.0, 0, path, trigger
        )
    return PressureEvent(
        trigger.resource,
        trigger.kind,
        time.time(),
        line.avg10,
        line.avg60,
        line.total,
        path,
        trigger,
    )


def open_trigger(path: str, trigger: PressureTrigger, *, mountpoint: str | None = None) -> int:
    """Set ``trigger`` on the group at the absolute file system ``path``: open its
    ``<resource>.pressure`` read-write and non-blocking, write the trigger, and return
    the fd (the caller polls it for ``EPOLLPRI`` and closes it to remove the trigger).

    Checks :meth:`PressureTrigger.check` first; the kernel's refusals are explained:
    ``EINVAL`` (a rule), ``EPERM``/``EACCES`` (the capability or the file's permissions),
    ``EOPNOTSUPP`` (PSI disabled), a missing file. A removed group raises
    :class:`CgroupDeletedError`. No fd is left open on failure.
    """
    if not isinstance(trigger, PressureTrigger):
        raise CgroupError(f"cgroups: pressure trigger: {trigger!r} is not a PressureTrigger")
    privileged = has_cap_sys_resource()
    trigger.check(privileged=privileged)
    name = trigger.filename
    where = f"cgroups: pressure trigger {trigger} on {path}"
    with Dir.open(path, mountpoint) as d:
        try:
            fd = d.open_trigger_fd(name)
        except KernelError as e:
            if e.errno == errno.ENOENT:
                raise PressureTriggerError(
                    f"{where}: the group has no {name} (a kernel without PSI, booted with "
                    f"psi=0, PSI switched off for the group in cgroup.pressure, or irq "
                    f"without CONFIG_IRQ_TIME_ACCOUNTING)",
                    errno=e.errno,
                    path=e.path,
                ) from None
            if e.errno in (errno.EPERM, errno.EACCES):
                why = (
                    "Linux 6.5 and 6.6 before the fix (commit 8b39d20eceed) refuse to open "
                    "a group's pressure file for writing without CAP_SYS_RESOURCE"
                    if e.errno == errno.EPERM and not privileged
                    else "the file is not writable by this user (delegate the group's "
                    "pressure files to it, or run with the rights to write them)"
                )
                raise PressureTriggerError(
                    f"{where}: opening {name} for writing was refused "
                    f"({errno.errorcode[e.errno]}): {why}",
                    errno=e.errno,
                    path=e.path,
                ) from None
            raise
    try:
        os.write(fd, trigger.line())
    except OSError as e:
        os.close(fd)
        err = e.errno or 0
        if err in (errno.ENODEV, errno.ENOENT):
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {path} was removed (write {name})",
                errno=err,
                path=f"{path}/{name}",
            ) from None
        if err == errno.EINVAL:
            why = _RULE_UNPRIVILEGED if not privileged else "see Documentation/accounting/psi.rst"
            raise PressureTriggerError(
                f"{where}: the kernel refused {trigger.line().decode()!r} (EINVAL): {why}",
                errno=err,
                path=f"{path}/{name}",
                value=trigger.line().decode(),
            ) from None
        if err == errno.EOPNOTSUPP:
            raise PressureTriggerError(
                f"{where}: PSI is disabled on this kernel (booted with psi=0)",
                errno=err,
                path=f"{path}/{name}",
            ) from None
        raise KernelError(
            err, f"{path}/{name}", op="write", value=trigger.line().decode()
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd
