"""Manager: one group of the cgroup2 hierarchy: its lifecycle, processes and settings."""

from __future__ import annotations

import enum

__all__ = ["ControllerToggle", "State"]


class State(enum.StrEnum):
    """The freezer state of a group (``cgroup.freeze`` / ``cgroup.events``)."""

    UNKNOWN = ""
    THAWED = "thawed"
    FROZEN = "frozen"
    DELETED = "deleted"


class ControllerToggle(enum.Enum):
    """Enable or disable controllers in ``cgroup.subtree_control`` (the value is the prefix)."""

    ENABLE = "+"
    DISABLE = "-"
