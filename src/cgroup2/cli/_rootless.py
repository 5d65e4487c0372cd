"""``cgroup2 run`` without root: where the job's group goes.

1. The caller's delegated group (:func:`cgroup2.paths.delegated_root`: the nearest
   ancestor of its own group that it owns): the job's group is made there. When that
   group holds processes itself (the caller's, typically) and the job needs a controller
   it does not enable yet, the kernel's no-internal-process rule forbids enabling it: its
   processes are first moved into its child ``leaf``, as systemd does for the processes of
   a delegated unit (``init.scope`` of ``user@.service``, ``DelegateSubgroup=``), so that
   the job's group is a sibling of the caller's under the delegation.
2. Else the calling user's systemd manager: a transient scope (``systemd-run --user
   --scope``), when its socket exists.
3. Else a :class:`Failure` that names the ways in.
"""

from __future__ import annotations

import errno
import os

from .._fs import Dir
from ..errors import KernelError
from ..manager import PROCS, SUBTREE_CONTROL, UNIT_SUBGROUP, Manager, _pids
from ..resources import Resources
from ._limits import Failure

__all__ = ["rootless_parent"]


def _user_manager_reachable() -> bool:
    from ..systemd.dbus import user_bus_candidates

    return any(os.path.exists(p) for p, _ in user_bus_candidates())


def _make_room(mountpoint: str, root: str, resources: Resources) -> None:
    """Move the processes of the delegated group ``root`` into its child ``leaf`` when
    the job needs a controller that ``root`` does not enable for its children yet."""
    needed = resources.enabled_controllers()
    path = mountpoint.rstrip("/") + root if root != "/" else mountpoint
    with Dir.open(path, mountpoint) as d:
        have = d.read(SUBTREE_CONTROL).decode().split()
        pids = _pids(d.read(PROCS))
    if not pids or all(c in have for c in needed):
        return
    leaf = Manager.create(
        (root.rstrip("/") or "") + "/" + UNIT_SUBGROUP, mountpoint=mountpoint
    )
    for pid in pids:
        try:
            leaf.add_proc(pid)
        except KernelError as e:
            if e.errno != errno.ESRCH:
                raise


def rootless_parent(mountpoint: str, resources: Resources) -> str | None:
    """The group to make the job's group in, or None: ask the user's systemd manager."""
    from ..paths import delegated_root

    root = delegated_root(mountpoint=mountpoint)
    if root is not None:
        _make_room(mountpoint, root, resources)
        return root
    if _user_manager_reachable():
        return None
    raise Failure(
        f"not root, and no delegated group: neither this process's group nor an ancestor "
        f"on {mountpoint} is owned by uid {os.geteuid()} (see /proc/self/cgroup), and the "
        f"user's systemd manager is not running; ways in: a group root delegated "
        f"('cgroup2 create --owner USER GROUP', then run from inside it or with "
        f"--parent GROUP), or the user's systemd manager ('loginctl enable-linger USER', "
        f"then 'cgroup2 run --user')"
    )
