"""Resources: the settings of every controller put together, and the values to write.

Validation happens when a setting is made (each dataclass checks itself), so a
:class:`Resources` that exists can be written; only what depends on the kernel (which
huge page sizes it offers, which files a group has) is checked when a group is created or
updated.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module

from .controllers._values import Value, invalid

# The controllers' modules are imported where a setting of theirs is checked: a
# Resources that leaves a controller alone does not load it (`cgroup2 run` without
# limits loads none; see benchmarks/startup.py). A setting given was made by its class,
# so its module is loaded already then.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from .controllers.cpu import CPU
    from .controllers.hugetlb import HugeTlb
    from .controllers.io import IO
    from .controllers.memory import Memory
    from .controllers.pids import Pids
    from .controllers.rdma import RDMA
    from .devices.rules import DeviceRule

__all__ = ["CONTROLLERS", "NOT_LIMITS", "Resources", "Value", "check_unified_key"]

#: The controllers of cgroup v2 that a group's settings can need.
CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
# files named like a controller's that every group has, whatever its controllers (the core
# statistics and the pressure files): a unified key naming one needs no controller
_CORE_FILES = frozenset(
    ("cpu.stat", "cpu.stat.local", "cpu.pressure", "memory.pressure", "io.pressure",
     "irq.pressure")
)

#: Files of a group that are not limits of the group: refused as keys of ``unified``.
NOT_LIMITS = frozenset(
    {
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
        "cgroup.kill",
        "cgroup.freeze",
        "cgroup.type",
    }
)


def check_unified_key(key: object) -> str:
    """Refuse a ``unified`` key that is not the name of one limit file of this group."""
    if not isinstance(key, str) or not key:
        raise invalid("unified key", key, "must be a non-empty file name")
    if "/" in key or "\0" in key:
        raise invalid("unified key", key, "must be a file of the group: no '/' or NUL")
    if ".." in key or key == ".":
        raise invalid("unified key", key, "must be a file of the group: no '..'")
    if key in NOT_LIMITS:
        raise invalid(
            "unified key",
            key,
            "is not a limit of the group (use the Manager's methods for processes, "
            "controllers, freezing, killing and the group type)",
        )
    return key


@dataclass(frozen=True, slots=True)
class Resources:
    """The settings of a group; a field that is ``None`` is left as it is.

    ``devices`` are device access rules (an eBPF program on the group). An empty list
    is the same as ``None``: devices are not controlled, as in containerd's v2 (nothing is
    attached by ``create``; ``update`` leaves the group's filter as it is). To deny every
    device, say so: ``[DeviceRule(allow=False)]``; to lift a filter, allow everything
    (``[DeviceRule(allow=True)]``). ``unified`` maps file names to the exact texts to
    write, after every other setting.
    """

    cpu: CPU | None = None
    memory: Memory | None = None
    pids: Pids | None = None
    io: IO | None = None
    rdma: RDMA | None = None
    hugetlb: HugeTlb | None = None
    devices: Sequence[DeviceRule] | None = None
    unified: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for name, module, class_name in (
            ("cpu", "cpu", "CPU"),
            ("memory", "memory", "Memory"),
            ("pids", "pids", "Pids"),
            ("io", "io", "IO"),
            ("rdma", "rdma", "RDMA"),
        ):
            v = getattr(self, name)
            if v is not None:
                cls = getattr(import_module(f"{__package__}.controllers.{module}"), class_name)
                if not isinstance(v, cls):
                    raise invalid(name, v, f"must be a {class_name}")
        if self.hugetlb is not None:
            from .controllers.hugetlb import HugeTlb

            if not isinstance(self.hugetlb, HugeTlb):
                if isinstance(self.hugetlb, (str, bytes)) or not isinstance(
                    self.hugetlb, Sequence
                ):
                    raise invalid("hugetlb", self.hugetlb, "must be a sequence of HugeTlbEntry")
                object.__setattr__(self, "hugetlb", HugeTlb(self.hugetlb))
        if self.devices is not None:
            from .devices.rules import DeviceRule

            if isinstance(self.devices, (str, bytes)) or not isinstance(self.devices, Sequence):
                raise invalid("devices", self.devices, "must be a sequence of DeviceRule")
            rules = tuple(self.devices)
            for r in rules:
                if not isinstance(r, DeviceRule):
                    raise invalid("devices", r, "must be a DeviceRule")
            # no rules: devices not controlled (containerd's len(Devices) == 0), not deny-all
            object.__setattr__(self, "devices", rules or None)
        if self.unified is not None:
            if not isinstance(self.unified, Mapping):
                raise invalid("unified", self.unified, "must be a mapping of file name to text")
            for k, v in self.unified.items():
                check_unified_key(k)
                if not isinstance(v, str) or "\0" in v:
                    raise invalid(f"unified[{k!r}]", v, "must be a str without NUL")
            object.__setattr__(self, "unified", types.MappingProxyType(dict(self.unified)))

    def values(self) -> list[Value]:
        """Every file and text to write, in order: cpu, memory, pids, io, rdma, hugetlb,
        then the ``unified`` files (device rules are not files: see ``devices``)."""
        out: list[Value] = []
        if self.cpu is not None:
            out += self.cpu.values()
        if self.memory is not None:
            out += self.memory.values()
        if self.pids is not None:
            out += self.pids.values()
        if self.io is not None:
            out += self.io.values()
        if self.rdma is not None:
            out += self.rdma.values()
        if self.hugetlb is not None:
            out += self.hugetlb.values()
        if self.unified is not None:
            out += [Value(k, v) for k, v in self.unified.items()]
        return out

    def enabled_controllers(self) -> list[str]:
        """The controllers these settings need enabled in the parent's subtree_control.

        ``cpu`` for weight/max/idle/burst, ``cpuset`` only when cpus or mems are set, and
        each other controller whose settings are given; a ``unified`` file named
        ``<controller>.<...>`` needs its controller too.
        """
        out: list[str] = []
        if self.cpu is not None:
            out += self.cpu.controllers()
        for name in ("memory", "pids", "io", "rdma", "hugetlb"):
            if getattr(self, name) is not None:
                out.append(name)
        if self.unified is not None:
            for key in self.unified:
                prefix = key.split(".", 1)[0]
                if key in _CORE_FILES:
                    continue  # in every group, whatever its controllers
                if prefix in CONTROLLERS and prefix not in out:
                    out.append(prefix)
        return out
