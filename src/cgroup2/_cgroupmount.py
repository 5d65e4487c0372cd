"""CgroupMount, the mount type of :mod:`cgroup2.paths` (``cgroup2.paths.CgroupMount``),
defined apart so that finding the cgroup2 mount does not create a dataclass type: it is
imported when a caller asks for mounts (:func:`cgroup2.paths.mounts`,
:func:`cgroup2.paths.parse_mountinfo`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CgroupMount"]


@dataclass(frozen=True, slots=True)
class CgroupMount:
    """One line of mountinfo that mounts a cgroup file system."""

    __module__ = "cgroup2.paths"

    mountpoint: str
    root: str  # the path within the hierarchy that is mounted ("/" for the whole)
    fstype: str  # "cgroup2" or "cgroup"
    options: str  # the super options (for v1: the controllers)
    device: int = 0  # st_dev of the files of this mount (mountinfo's major:minor)
