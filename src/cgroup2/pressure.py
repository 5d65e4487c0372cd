"""Pressure stall (PSI) triggers: the names of :mod:`cgroup2.events.pressure`, where the
code lives beside the watcher that waits for them, kept importable from here."""

from .events.pressure import CAP_SYS_RESOURCE as CAP_SYS_RESOURCE
from .events.pressure import KINDS as KINDS
from .events.pressure import RESOURCES as RESOURCES
from .events.pressure import UNPRIVILEGED_PERIOD_US as UNPRIVILEGED_PERIOD_US
from .events.pressure import WINDOW_MAX_US as WINDOW_MAX_US
from .events.pressure import WINDOW_MIN_US as WINDOW_MIN_US
from .events.pressure import PressureEvent as PressureEvent
from .events.pressure import PressureTrigger as PressureTrigger
from .events.pressure import has_cap_sys_resource as has_cap_sys_resource
from .events.pressure import kernel_version as kernel_version
from .events.pressure import open_trigger as open_trigger
from .events.pressure import read_event as read_event
from .events.pressure import unprivileged_rule as unprivileged_rule

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
