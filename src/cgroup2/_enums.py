"""The enum types of :mod:`cgroup2.paths` (``Mode``) and :mod:`cgroup2.manager`
(``State``, ``ControllerToggle``), defined apart so that those modules do not import
:mod:`enum` (with ``functools``, ``collections`` and ``types``): that costs more than the
rest of a ``cgroup2 get`` (benchmarks/startup.py). They are made on first use, through
the modules' ``__getattr__`` (PEP 562), and their modules are named as before:
``cgroup2.paths.Mode``, ``cgroup2.manager.State``, ``cgroup2.manager.ControllerToggle``
(also ``cgroup2.Mode`` and so on).
"""

from __future__ import annotations

import enum

__all__ = ["ControllerToggle", "Mode", "State"]


class Mode(enum.Enum):
    """How the host mounts cgroups."""

    __module__ = "cgroup2.paths"

    UNAVAILABLE = "unavailable"  # no cgroup file system at all
    LEGACY = "legacy"  # cgroup v1 hierarchies only
    HYBRID = "hybrid"  # v1 hierarchies, and cgroup2 beside them (…/unified)
    UNIFIED = "unified"  # cgroup2 alone, at /sys/fs/cgroup


class State(enum.StrEnum):
    """The freezer state of a group (``cgroup.freeze`` / ``cgroup.events``)."""

    __module__ = "cgroup2.manager"

    UNKNOWN = ""
    THAWED = "thawed"
    FROZEN = "frozen"
    DELETED = "deleted"


class ControllerToggle(enum.Enum):
    """Enable or disable controllers in ``cgroup.subtree_control`` (the value is the prefix)."""

    __module__ = "cgroup2.manager"

    ENABLE = "+"
    DISABLE = "-"
