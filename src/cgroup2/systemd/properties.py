"""Resources -> systemd unit properties (the D-Bus names and types of
``org.freedesktop.systemd1.Unit``'s resource-control settings).

Every kernel value of a :class:`~cgroup2.resources.Resources` (its ``values()``, the exact
texts that would be written to the group's files) is looked up in one table:

==================  ================================================  =================
kernel file         unit property (D-Bus type)                        systemd version
==================  ================================================  =================
memory.min          ``MemoryMin`` (t)                                 240
memory.low          ``MemoryLow`` (t)                                 231
memory.high         ``MemoryHigh`` (t)                                231
memory.max          ``MemoryMax`` (t)                                 231
memory.swap.max     ``MemorySwapMax`` (t)                             232
cpu.weight          ``CPUWeight`` (t)                                 231
cpu.max             ``CPUQuotaPerSecUSec`` (t) + ``CPUQuotaPeriodUSec``  213 / 242
cpuset.cpus         ``AllowedCPUs`` (ay, a CPU bitmask)               244
cpuset.mems         ``AllowedMemoryNodes`` (ay)                       244
pids.max            ``TasksMax`` (t; 1 or more)                       227
io.weight           ``IOWeight`` (t) / ``IODeviceWeight`` (a(st))     230
io.max              ``IO{Read,Write}{Bandwidth,IOPS}Max`` (a(st))     230
(devices)           ``DevicePolicy`` (s) + ``DeviceAllow`` (a(ss))    208
==================  ================================================  =================

``max`` (or ``-1``) is systemd's infinity, ``2**64 - 1``. Devices are named
``/dev/block/<major>:<minor>`` (systemd parses that form without looking at ``/dev``).
A ``cpu.max`` quota is sent per second (``quota * 1e6 / period``) and rounded up to whole
10 ms, as the reference does; the period is sent as ``CPUQuotaPeriodUSec``.

What systemd has no property for -- ``memory.oom.group``, ``cpu.idle``,
``cpu.max.burst``, ``io.bfq.weight``, ``hugetlb.*``, ``rdma.max``, ``pids.max 0``, a
``unified`` file not in the table above -- is not a unit property: it is written to a
sub-group of the (delegated) unit's group, never to the unit's own files, which belong to
systemd (see :mod:`cgroup2.systemd.unit`). The same happens to a value whose property this
systemd is too old for, or refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..controllers._values import U64_MAX, Value
from ..controllers.cpuset import cpu_list_mask
from ..devices.rules import DeviceRule
from ..errors import CgroupError
from ..resources import Resources

__all__ = [
    "INFINITY",
    "Plan",
    "Property",
    "Setting",
    "cpu_bitmask",
    "device_settings",
    "plan",
    "resource_settings",
    "unit_properties",
    "value_setting",
]

#: systemd's "no limit" for the t-typed limits (UINT64_MAX, USEC_INFINITY).
INFINITY = U64_MAX

#: A cpu.max without a period runs with the kernel's default period.
_DEFAULT_PERIOD = 100_000
_USEC_PER_SEC = 1_000_000
#: CPUQuotaPerSecUSec is rounded up to a multiple of this (whole per-cents of a CPU).
_QUOTA_STEP = 10_000


@dataclass(frozen=True, slots=True)
class Property:
    """One unit property: its D-Bus name, signature and value, and the first systemd
    version that can set it on a transient unit."""

    name: str
    signature: str
    value: Any
    since: int = 0

    def dbus(self) -> tuple[str, tuple[str, Any]]:
        """The ``(sv)`` pair sent in ``a(sv)``."""
        return (self.name, (self.signature, self.value))


@dataclass(frozen=True, slots=True)
class Setting:
    """Properties that stand together for kernel values (all are sent, or none).

    ``values`` are the kernel writes they stand for: where systemd cannot take the
    properties, these are written to the unit's sub-group instead (an empty tuple: the
    setting cannot be done there, e.g. device rules). ``note`` says what systemd will do
    differently from the exact values (e.g. a rounded quota).
    """

    properties: tuple[Property, ...]
    values: tuple[Value, ...] = ()
    note: str = ""

    @property
    def since(self) -> int:
        return max((p.since for p in self.properties), default=0)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send to systemd, what to write to the sub-group, and why."""

    properties: tuple[Property, ...]
    subgroup: tuple[Value, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def dbus(self) -> list[tuple[str, tuple[str, Any]]]:
        return [p.dbus() for p in self.properties]


# --- encodings ------------------------------------------------------------------------


def cpu_bitmask(text: str) -> bytes:
    """The ``ay`` of ``AllowedCPUs``/``AllowedMemoryNodes`` for a list such as ``"0-3,5"``.

    systemd's ``cpu_set_to_dbus``: bit ``n % 8`` of byte ``n // 8`` is CPU (or node)
    ``n``; as many bytes as the highest number needs; a list of no CPU (``""``, ``","``)
    is no bytes. The list is read as the kernel reads ``cpuset.cpus``
    (:func:`cgroup2.controllers.cpuset.cpu_list_mask`: blanks and empty items skipped,
    ``N-M:A/B`` strides, numbers below 8192).
    """
    try:
        mask = cpu_list_mask(text)
    except ValueError as e:
        shown = repr(text) if len(text) <= 80 else repr(text[:80]) + "..."
        raise CgroupError(f"cgroups: invalid cpu list {shown}: {e}") from None
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def _limit(text: str) -> int | None:
    """``"max"`` -> INFINITY, digits -> int, else None (not understood)."""
    text = text.strip()
    if text == "max":
        return INFINITY
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _block(dev: str) -> str | None:
    """``"8:0"`` -> ``"/dev/block/8:0"``; None when not ``<major>:<minor>``."""
    major, colon, minor = dev.partition(":")
    if colon and major.isascii() and major.isdigit() and minor.isascii() and minor.isdigit():
        return f"/dev/block/{int(major)}:{int(minor)}"
    return None


# --- kernel value -> setting ----------------------------------------------------------

_SIMPLE: Mapping[str, tuple[str, int]] = {
    "memory.min": ("MemoryMin", 240),
    "memory.low": ("MemoryLow", 231),
    "memory.high": ("MemoryHigh", 231),
    "memory.max": ("MemoryMax", 231),
    "memory.swap.max": ("MemorySwapMax", 232),
}

_IO_MAX: Mapping[str, str] = {
    "rbps": "IOReadBandwidthMax",
    "wbps": "IOWriteBandwidthMax",
    "riops": "IOReadIOPSMax",
    "wiops": "IOWriteIOPSMax",
}


def _cpu_max(v: Value) -> Setting | None:
    parts = v.value.split()
    if len(parts) not in (1, 2):
        return None
    period: int | None = None
    if len(parts) == 2:
        if not (parts[1].isascii() and parts[1].isdigit()) or int(parts[1]) == 0:
            return None
        period = int(parts[1])
    props: list[Property] = []
    note = ""
    if parts[0] == "max":
        props.append(Property("CPUQuotaPerSecUSec", "t", INFINITY, 213))
    elif parts[0].isascii() and parts[0].isdigit():
        quota = int(parts[0])
        p = period or _DEFAULT_PERIOD
        per_sec = quota * _USEC_PER_SEC // p
        if per_sec % _QUOTA_STEP:
            per_sec = (per_sec // _QUOTA_STEP + 1) * _QUOTA_STEP
        if per_sec * p != quota * _USEC_PER_SEC:
            note = (
                f"cpu.max {v.value!r}: systemd gets {per_sec} us per second "
                f"(rounded up to whole 10 ms), so the quota becomes {per_sec * p // _USEC_PER_SEC}"
            )
        props.append(Property("CPUQuotaPerSecUSec", "t", per_sec, 213))
    else:
        return None
    if period is not None:
        props.append(Property("CPUQuotaPeriodUSec", "t", period, 242))
    return Setting(tuple(props), (v,), note)


def _io_weight(v: Value) -> Setting | None:
    parts = v.value.split()
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "default"):
        w = _limit(parts[-1])
        if w is None or w == INFINITY:
            return None
        return Setting((Property("IOWeight", "t", w, 230),), (v,))
    if len(parts) == 2:
        dev = _block(parts[0])
        w = _limit(parts[1])
        if dev is None or w is None or w == INFINITY:
            return None
        return Setting((Property("IODeviceWeight", "a(st)", [(dev, w)], 230),), (v,))
    return None


def _io_max(v: Value) -> Setting | None:
    parts = v.value.split()
    if len(parts) < 2:
        return None
    dev = _block(parts[0])
    if dev is None:
        return None
    props = []
    for kv in parts[1:]:
        key, eq, rate = kv.partition("=")
        name = _IO_MAX.get(key)
        n = _limit(rate)
        if not eq or name is None or n is None:
            return None
        props.append(Property(name, "a(st)", [(dev, n)], 230))
    return Setting(tuple(props), (v,))


def value_setting(v: Value) -> Setting | None:
    """The unit properties for one kernel write, or None when systemd has none for it
    (the value then goes to the sub-group)."""
    name, text = v.filename, v.value
    if name in _SIMPLE:
        prop, since = _SIMPLE[name]
        n = _limit(text)
        return None if n is None else Setting((Property(prop, "t", n, since),), (v,))
    if name == "cpu.weight":
        n = _limit(text)
        if n is None or not 1 <= n <= 10000:
            return None
        return Setting((Property("CPUWeight", "t", n, 231),), (v,))
    if name == "cpu.max":
        return _cpu_max(v)
    if name in ("cpuset.cpus", "cpuset.mems"):
        prop = "AllowedCPUs" if name == "cpuset.cpus" else "AllowedMemoryNodes"
        try:
            mask = cpu_bitmask(text)
        except CgroupError:
            return None
        if not mask:
            return None
        return Setting((Property(prop, "ay", mask, 244),), (v,))
    if name == "pids.max":
        n = _limit(text)
        if n is None or n == 0:  # systemd refuses TasksMax=0
            return None
        return Setting((Property("TasksMax", "t", n, 227),), (v,))
    if name == "io.weight":
        return _io_weight(v)
    if name == "io.max":
        return _io_max(v)
    return None


# --- device rules -> DevicePolicy / DeviceAllow ---------------------------------------

def _device_names(proc_devices: str) -> dict[tuple[str, int], str]:
    """``/proc/devices``: (``"char"``/``"block"``, major) -> the driver's name."""
    out: dict[tuple[str, int], str] = {}
    kind = ""
    for line in proc_devices.splitlines():
        line = line.strip()
        if line.startswith("Character devices"):
            kind = "char"
        elif line.startswith("Block devices"):
            kind = "block"
        elif kind and line:
            num, _, name = line.partition(" ")
            if num.isdigit() and name:
                out.setdefault((kind, int(num)), name.strip())
    return out


def _allow_entries(r: DeviceRule, names: Mapping[tuple[str, int], str]) -> list[tuple[str, str]]:
    kinds = ("char", "block") if r.type == "a" else ("char" if r.type == "c" else "block",)
    access = "".join(c for c in "rwm" if c in r.access)
    out = []
    for kind in kinds:
        if r.major is None:
            if r.minor is not None:
                raise CgroupError(
                    f"cgroups: device rule {r} cannot be given to systemd: a minor number "
                    f"with any major ('*:{r.minor}') has no DeviceAllow= form"
                )
            out.append((f"{kind}-*", access))
        elif r.minor is None:
            name = names.get((kind, r.major))
            if name is None:
                raise CgroupError(
                    f"cgroups: device rule {r} cannot be given to systemd: major {r.major} "
                    f"has no {kind} driver name in /proc/devices (DeviceAllow= names "
                    f"'{kind}-<driver>' for all minors of a major)"
                )
            out.append((f"{kind}-{name}", access))
        else:
            out.append((f"/dev/{kind}/{r.major}:{r.minor}", access))
    return out


def device_settings(rules: Sequence[DeviceRule], proc_devices: str = "") -> Setting:
    """``DevicePolicy`` and ``DeviceAllow`` for device rules, applied as cgroup v1 applies
    them (:class:`~cgroup2.devices.state.DeviceState`, as for the eBPF program).

    systemd can say "allow everything" (``auto``, empty list) or "allow only this list"
    (``strict``); so the rules must leave either an allow default without exceptions, or
    a deny default with allow exceptions (one ``DeviceAllow=`` entry each). Anything else
    is refused, naming why. ``proc_devices`` is the text of ``/proc/devices`` (for
    ``<major>:*`` rules).
    """
    from ..devices.state import DeviceState

    for r in rules:
        if not isinstance(r, DeviceRule):
            raise CgroupError(f"cgroups: invalid device rule {r!r}: must be a DeviceRule")
    state = DeviceState.of(rules)
    deny_all = bool(rules) and not state.default_allow
    if state.default_allow and state.exceptions:
        denied = "; ".join(str(r) for r in state.rules()[1:])
        raise CgroupError(
            f"cgroups: device rules cannot be given to systemd: they deny part of an "
            f"allow-all policy ({denied}; DeviceAllow= can only list what is allowed; "
            f"start the rules with 'deny a *:* rwm')"
        )
    names = _device_names(proc_devices)
    entries: list[tuple[str, str]] = []
    for a in state.rules()[1:] if deny_all else []:
        for e in _allow_entries(a, names):
            if e not in entries:
                entries.append(e)
    policy = "strict" if deny_all else "auto"
    # An empty DeviceAllow resets the unit's list (a non-empty one adds to it): the
    # rules replace what the unit had, as a new device program replaces the old one.
    props = [Property("DevicePolicy", "s", policy), Property("DeviceAllow", "a(ss)", [])]
    if entries:
        props.append(Property("DeviceAllow", "a(ss)", entries))
    return Setting(tuple(props))


# --- all of it ------------------------------------------------------------------------


def resource_settings(
    resources: Resources | None, *, proc_devices: str = ""
) -> tuple[list[Setting], list[Value]]:
    """The settings for ``resources`` and the values systemd has no property for.

    Everything is checked here, before anything is sent or written.
    """
    if resources is None:
        return [], []
    if not isinstance(resources, Resources):
        raise CgroupError(f"cgroups: invalid resources {resources!r}: must be Resources")
    settings: list[Setting] = []
    rest: list[Value] = []
    for v in resources.values():
        s = value_setting(v)
        if s is None:
            rest.append(v)
        else:
            settings.append(s)
    if resources.devices is not None:
        settings.append(device_settings(resources.devices, proc_devices))
    return settings, rest


def unit_properties(
    unit: str, slice_name: str, pid: int, *, description: str | None = None
) -> list[Property]:
    """The properties of a new transient unit: what it is, where it sits, delegation and
    accounting (the resources come from :func:`resource_settings`)."""
    props = [
        Property("Description", "s", description or f"cgroup {unit}"),
        Property("DefaultDependencies", "b", False),
    ]
    if unit.endswith(".slice"):
        # A slice's place follows from its name; the slice given is pulled in with it.
        props.append(Property("Wants", "as", [slice_name]))
    else:
        props.append(Property("Slice", "s", slice_name))
        # Slices cannot be delegated (systemd refuses Delegate= there).
        props.append(Property("Delegate", "b", True, 218))
    if pid > 0:
        props.append(Property("PIDs", "au", [pid]))
    props += [
        Property("MemoryAccounting", "b", True),
        Property("CPUAccounting", "b", True),
        Property("IOAccounting", "b", True, 230),
        Property("TasksAccounting", "b", True, 227),
    ]
    return props


def plan(
    base: Iterable[Property],
    settings: Iterable[Setting],
    rest: Iterable[Value],
    *,
    version: int,
    refused: Iterable[str] = (),
) -> Plan:
    """Choose what is sent: properties this ``version`` of systemd knows and has not
    ``refused``; the values of a setting that cannot be sent go to the sub-group (with a
    warning), as do ``rest``. A setting with no values to fall back on raises."""
    no = set(refused)
    props: list[Property] = []
    sub: list[Value] = []
    warnings: list[str] = []
    for p in base:
        if p.since > version or p.name in no:
            why = "refused by systemd" if p.name in no else f"needs systemd {p.since}"
            warnings.append(f"{p.name} not sent: {why} (this is systemd {version})")
        else:
            props.append(p)
    for s in settings:
        bad = [p for p in s.properties if p.since > version or p.name in no]
        if not bad:
            props += s.properties
            if s.note:
                warnings.append(s.note)
            continue
        names = ", ".join(p.name for p in bad)
        if not s.values:
            raise CgroupError(
                f"cgroups: systemd {version} cannot set {names} and the setting has no "
                f"group-file equivalent"
            )
        files = ", ".join(f"{v.filename}={v.value!r}" for v in s.values)
        why = "refused by systemd" if any(p.name in no for p in bad) else "too old"
        warnings.append(
            f"{names} not sent ({why}, systemd {version}): {files} written to the sub-group"
        )
        sub += s.values
    for v in rest:
        sub.append(v)
    return Plan(tuple(props), tuple(sub), tuple(warnings))
