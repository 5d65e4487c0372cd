"""Unit names and the group path systemd gives a unit.

systemd's rules (``unit_name_is_valid``, ``slice_name_is_valid``, ``cg_slice_to_path``,
``cg_escape``):

* a unit name is at most 255 characters of ``A-Z a-z 0-9 : - _ . \\`` (and one ``@`` for
  template instances), ending in a unit type such as ``.scope`` or ``.slice``;
* a dash in a *slice* name means nesting: ``my-group.slice`` is a child of ``my.slice``,
  which is a child of the root slice ``-.slice``; its group is
  ``/my.slice/my-group.slice``. A slice name may not start or end with a dash, nor hold
  two dashes in a row (before ``.slice``);
* other units (scopes, services) sit in the group of the slice they are put in, under
  their own name (dashes there mean nothing);
* each path element is escaped as the kernel needs: a name that starts with ``_`` or
  ``.``, begins with ``cgroup.``, is a legacy file name, or whose part before its last dot
  is a controller name (``cpu.slice``) gets a ``_`` prefix.

The reference joins the slice given and the group's dash expansion; for a *slice* group
that is wrong (systemd places a slice by its own name, whatever parent one asks for), so
here a slice group's path comes from its own name alone.
"""

from __future__ import annotations

from ..errors import CgroupError

__all__ = [
    "DEFAULT_SLICE",
    "cg_escape",
    "check_unit_name",
    "slice_path",
    "unit_path",
]

DEFAULT_SLICE = "system.slice"
ROOT_SLICE = "-.slice"

_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
_UNIT_TYPES = (
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
)
# systemd's controller names (cgroup_controller_to_string): a path element whose part
# before its last dot is one of these is escaped with a leading underscore.
_CONTROLLERS = frozenset(
    {
        "cpu",
        "cpuacct",
        "cpuset",
        "io",
        "blkio",
        "memory",
        "devices",
        "pids",
        "bpf-firewall",
        "bpf-devices",
        "bpf-foreign",
        "bpf-socket-bind",
        "bpf-restrict-network-interfaces",
    }
)


def _bad(what: str, name: object, why: str) -> CgroupError:
    return CgroupError(f"cgroups: invalid systemd {what} {name!r}: {why}")


def check_unit_name(name: object, *, what: str = "unit name") -> str:
    """Refuse a name systemd would refuse; return it."""
    if not isinstance(name, str) or not name:
        raise _bad(what, name, "must be a non-empty str such as 'my.scope'")
    if len(name) > 255:
        raise _bad(what, name, "longer than 255 characters")
    bad = sorted({c for c in name if c not in _UNIT_CHARS})
    if bad:
        raise _bad(
            what, name, f"characters {''.join(bad)!r} are not allowed (A-Z a-z 0-9 : - _ . \\ @)"
        )
    prefix, dot, suffix = name.rpartition(".")
    if not dot or not prefix or suffix not in _UNIT_TYPES:
        raise _bad(what, name, f"must end in a unit type ({', '.join(_UNIT_TYPES)})")
    if name.count("@") > 1 or prefix.startswith("@"):
        raise _bad(what, name, "at most one '@', not at the start")
    if suffix == "slice" and name != ROOT_SLICE:
        if prefix.startswith("-") or prefix.endswith("-") or "--" in prefix:
            raise _bad(
                what, name, "a slice name may not start or end with '-' or contain '--'"
            )
        if "@" in name:
            raise _bad(what, name, "a slice cannot be a template instance")
    return name


def cg_escape(name: str) -> str:
    """The group directory name systemd uses for the unit or slice ``name``."""
    if (
        name[:1] in ("", "_", ".")
        or name in ("notify_on_release", "release_agent", "tasks")
        or name.startswith("cgroup.")
    ):
        return "_" + name
    head, dot, _ = name.rpartition(".")
    if dot and head in _CONTROLLERS:
        return "_" + name
    return name


def slice_path(slice_name: str) -> str:
    """The group path of a slice: ``"a-b-c.slice"`` -> ``"/a.slice/a-b.slice/a-b-c.slice"``,
    ``"-.slice"`` -> ``"/"``."""
    check_unit_name(slice_name, what="slice")
    if not slice_name.endswith(".slice"):
        raise _bad("slice", slice_name, "must end in '.slice'")
    if slice_name == ROOT_SLICE:
        return "/"
    prefix = slice_name[: -len(".slice")]
    parts = prefix.split("-")
    elements = [cg_escape("-".join(parts[: i + 1]) + ".slice") for i in range(len(parts))]
    return "/" + "/".join(elements)


def unit_path(slice_name: str, unit: str) -> str:
    """The group path of ``unit`` placed in ``slice_name`` (``""``: ``system.slice``).

    A slice unit's path follows from its own name; any other unit sits directly in its
    slice's group.
    """
    check_unit_name(unit)
    if unit.endswith(".slice"):
        return slice_path(unit)
    parent = slice_path(slice_name or DEFAULT_SLICE)
    return parent.rstrip("/") + "/" + cg_escape(unit)
