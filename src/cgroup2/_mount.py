"""Where cgroup2 is mounted, and where a process sits in it: the two ``/proc`` files every
look-up starts from.

The mount table is ``/proc/self/mountinfo``'s cgroup mounts, read once per process
(:func:`refresh` forgets it); a process's group is the ``0::`` line of
``/proc/<pid>/cgroup``. Public through :mod:`cgroup2.paths`; imported by the file layer
(:mod:`cgroup2._fs`), so it imports nothing of the library but its errors.
"""

from __future__ import annotations

import os

from .errors import InvalidFormatError, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._cgroupmount import CgroupMount
    from ._enums import Mode

__all__ = [
    "HYBRID_MOUNTPOINT",
    "MOUNTINFO",
    "UNIFIED_MOUNTPOINT",
    "default_mountpoint",
    "mode",
    "mount_root",
    "mounts",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "refresh",
]

UNIFIED_MOUNTPOINT = "/sys/fs/cgroup"
HYBRID_MOUNTPOINT = "/sys/fs/cgroup/unified"
MOUNTINFO = "/proc/self/mountinfo"


class _Row:
    """One cgroup mount of mountinfo, as the look-ups of this module use it (the fields of
    :class:`CgroupMount`, which is made from it for callers: making that dataclass type
    imports :mod:`dataclasses`, which costs more than the command ``cgroup2 get``)."""

    __slots__ = ("device", "fstype", "mount_id", "mountpoint", "options", "root")

    def __init__(self, mountpoint: str, root: str, fstype: str, options: str, device: int,
                 mount_id: str = "") -> None:
        self.mount_id = mount_id  # mountinfo's first field, as written
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.options = options
        self.device = device


def _is_octal(s: str) -> bool:
    # not str.isdigit(): it is true of "8", "9" and of other scripts' digits ("²", "٣")
    return all(c in "01234567" for c in s)


def _unescape(field: str) -> str:
    r"""Undo mountinfo's octal escapes (``\040`` for a space, ``\134`` for a backslash)."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and _is_octal(field[i + 1 : i + 4]):
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts of a ``/proc/<pid>/mountinfo`` text, in order.

    Lines that do not mount a cgroup file system are skipped; a cgroup line without the
    ``-`` separator or with too few fields raises :class:`InvalidFormatError`.
    """
    return _public(_parse_rows(text))


def _public(rows: Iterable[_Row]) -> list[CgroupMount]:
    from ._cgroupmount import CgroupMount

    return [CgroupMount(r.mountpoint, r.root, r.fstype, r.options, r.device) for r in rows]


def _parse_rows(text: str) -> list[_Row]:
    """:func:`parse_mountinfo`'s mounts, as rows."""
    mounts = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if " - cgroup" not in line:
            continue
        head, sep, tail = line.partition(" - ")
        fields = head.split(" ")
        rest = tail.split(" ")
        if not sep or len(fields) < 6 or len(rest) < 3:
            raise InvalidFormatError(f"cgroups: {MOUNTINFO} line {lineno}: malformed: {line!r}")
        fstype = rest[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        major, _, minor = fields[2].partition(":")
        device = 0
        if major.isascii() and major.isdigit() and minor.isascii() and minor.isdigit():
            # the kernel's dev_t: a 12-bit major and a 20-bit minor (MINORBITS)
            if len(major) > 7 or len(minor) > 7 or int(major) >> 12 or int(minor) >> 20:
                raise InvalidFormatError(
                    f"cgroups: {MOUNTINFO} line {lineno}: device number out of range: "
                    f"{line[:200]!r}"
                )
            device = os.makedev(int(major), int(minor))
        mounts.append(
            _Row(
                mountpoint=_unescape(fields[4]),
                root=_unescape(fields[3]),
                fstype=fstype,
                options=rest[2],
                device=device,
                mount_id=fields[0],
            )
        )
    return mounts


def _visible_rows(text: str) -> list[_Row]:
    """The cgroup mounts of a mountinfo text that this process can reach by their mount
    point: a mount covered by another mounted on the same point (``mount --bind X
    /sys/fs/cgroup/unified`` over the unified mount), or lying below a covered mount
    (a tmpfs mounted again at ``/sys/fs/cgroup``), is left out. Covering is read from the
    mount and parent ids (fields 1 and 2): a mount made on a point where one is already
    mounted has that mount as its parent, whatever the order of the lines."""
    rows = _parse_rows(text)
    if not rows:
        return rows
    parent_of: dict[str, tuple[str, str]] = {}  # id: (parent id, mount point), every mount
    for line in text.splitlines():
        fields = line.split(" ", 5)
        if len(fields) >= 5:
            parent_of[fields[0]] = (fields[1], fields[4])
    covered = {parent for mid, (parent, mp) in parent_of.items()
               if parent != mid and parent_of.get(parent, ("", ""))[1] == mp}
    reach: dict[str, bool] = {}  # whether the path to a mount's point leads to it

    def reachable(mid: str) -> bool:
        chain: list[str] = []
        while mid not in reach:
            parent, mp = parent_of[mid]
            if parent not in parent_of or parent == mid or mid in chain:  # (or a loop)
                reach[mid] = True  # the root of this namespace's tree
                break
            chain.append(mid)
            mid = parent
        ok = reach[mid]
        for m in reversed(chain):  # from the top down
            parent, mp = parent_of[m]
            if parent_of[parent][1] != mp:  # not the mount covering its parent
                ok = ok and parent not in covered
            reach[m] = ok
        return reach[chain[0]] if chain else reach[mid]

    if not covered:
        return rows  # nothing stacked: every mount is reached by its point
    return [r for r in rows
            if r.mount_id not in covered and (r.mount_id not in parent_of
                                              or reachable(r.mount_id))]


def _mode_of(mounts: Iterable[_Row]) -> Mode:
    from ._enums import Mode

    v1 = v2 = False
    for m in mounts:
        if m.fstype == "cgroup2":
            if m.mountpoint == UNIFIED_MOUNTPOINT:
                return Mode.UNIFIED
            v2 = True
        else:
            v1 = True
    if v2:
        return Mode.HYBRID
    return Mode.LEGACY if v1 else Mode.UNAVAILABLE


def _mountpoint_of(mounts: Iterable[_Row]) -> str | None:
    """The cgroup2 mount to use: /sys/fs/cgroup, then …/unified, then the first other."""
    found = [m.mountpoint for m in mounts if m.fstype == "cgroup2"]
    for preferred in (UNIFIED_MOUNTPOINT, HYBRID_MOUNTPOINT):
        if preferred in found:
            return preferred
    return found[0] if found else None


_MOUNTS: list[tuple[_Row, ...]] = []  # the table read, once (functools.cache, without
# importing functools: start-up of the command)


def _mounts() -> tuple[_Row, ...]:
    if _MOUNTS:
        return _MOUNTS[0]
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            rows = tuple(_visible_rows(f.read()))
    except FileNotFoundError:
        rows = ()
    _MOUNTS[:] = [rows]
    return rows


def mounts() -> tuple[CgroupMount, ...]:
    """The cgroup and cgroup2 mounts of this process that it can reach by their mount
    point, one per mount point (a mount covered by another on the same point is left
    out); read once, see :func:`refresh`."""
    return tuple(_public(_mounts()))


def refresh() -> None:
    """Forget the mount table read before (it is read once per process)."""
    _MOUNTS.clear()


def mode() -> Mode:
    """How this host mounts cgroups, from ``/proc/self/mountinfo``."""
    return _mode_of(_mounts())


def default_mountpoint() -> str:
    """The cgroup2 mount point of this host.

    ``/sys/fs/cgroup`` on a unified host, ``/sys/fs/cgroup/unified`` on a hybrid one;
    raises :class:`MountPointNotExistError` where cgroup2 is not mounted.
    """
    mp = _mountpoint_of(_mounts())
    if mp is None:
        from .errors import MountPointNotExistError

        raise MountPointNotExistError(
            f"cgroups: no cgroup2 file system in {MOUNTINFO} (mode: {mode().value})"
        )
    return mp


def mount_root(mountpoint: str) -> str:
    """The root (mountinfo's 4th field) of the cgroup2 mount at ``mountpoint``; ``/``
    when the table has none there."""
    for m in _mounts():
        if m.fstype == "cgroup2" and m.mountpoint == mountpoint:
            return m.root
    return "/"


def parse_proc_cgroup(text: str, *, source: str = "/proc/self/cgroup") -> str:
    """The cgroup2 path of a ``/proc/<pid>/cgroup`` text: the third field of its ``0::`` line.

    A line without two colons raises :class:`InvalidFormatError`, as does a text without
    a ``0::`` line.
    """
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split(":", 2)
        if len(parts) < 3:
            raise InvalidFormatError(f"cgroups: {source} line {lineno}: invalid entry {line!r}")
        if parts[0] == "0" and parts[1] == "":
            return parts[2]
    raise InvalidFormatError(f"cgroups: {source}: no cgroup2 (0::) entry")


def _read_proc_cgroup(source: str) -> str:
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KernelError(e.errno or 0, source, op="read") from None
    return parse_proc_cgroup(data.decode("utf-8", "surrogateescape"), source=source)
