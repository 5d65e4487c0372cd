"""systemd: groups owned by transient systemd units, through systemd's D-Bus API.

* :mod:`.dbus` -- the client (jeepney's message layer; system bus, or systemd's private
  socket when no bus runs);
* :mod:`.names` -- unit names and the group path systemd gives a unit;
* :mod:`.properties` -- :class:`~cgroup2.resources.Resources` -> unit properties;
* :mod:`.unit` -- create / load / update / stop (used by ``Manager.create_systemd``,
  ``Manager.load_systemd``, ``Manager.update`` and ``Manager.delete_systemd``).
"""

from .dbus import SystemdError
from .names import DEFAULT_SLICE, slice_path, unit_path
from .properties import INFINITY, Plan, Property, Setting, cpu_bitmask, plan, resource_settings

__all__ = [
    "DEFAULT_SLICE",
    "INFINITY",
    "Plan",
    "Property",
    "Setting",
    "SystemdError",
    "cpu_bitmask",
    "plan",
    "resource_settings",
    "slice_path",
    "unit_path",
]
