"""Where cgroup2 is mounted, and the rules for group paths.

A *group path* is the third field of a ``0::`` line of ``/proc/<pid>/cgroup``: an absolute,
clean path relative to the cgroup2 mount, for example ``/user.slice/session-1.scope``.
"""

from __future__ import annotations

import os

from .errors import (
    CgroupError,
    InvalidFormatError,
    InvalidGroupPathError,
    InvalidPidError,
    KernelError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._enums import Mode
    from ._mount import CgroupMount



def __getattr__(name: str) -> object:
    """``CgroupMount`` and ``Mode``, imported on first use (PEP 562; see :class:`_Row`
    and :mod:`cgroup2._enums`)."""
    if name == "CgroupMount":
        from ._mount import CgroupMount

        globals()[name] = CgroupMount
        return CgroupMount
    if name == "Mode":
        from ._enums import Mode

        globals()[name] = Mode
        return Mode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "CgroupMount", "Mode"})

__all__ = [
    "CgroupMount",
    "Mode",
    "clean_path",
    "default_mountpoint",
    "delegated_root",
    "find_delegated_root",
    "is_cgroup2_dir",
    "mode",
    "nested_group_path",
    "owns_group",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "pid_group_path",
    "verify_group_path",
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
    from ._mount import CgroupMount

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


def is_cgroup2_dir(path: str) -> bool:
    """True when ``path`` is a directory on a cgroup2 mount of this process's mount table."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return False
    for attempt in (0, 1):
        if attempt:
            refresh()  # mounted since the table was read?
        if any(m.fstype == "cgroup2" and m.device == dev for m in _mounts()):
            return True
    return False


def clean_path(p: str) -> str:
    """Lexically clean ``p`` as Go's ``filepath.Clean`` does.

    Repeated slashes become one, ``.`` elements go, ``..`` removes the element before it
    (and at the root stays at the root), a trailing slash goes; ``""`` becomes ``"."``.
    """
    if p == "":
        return "."
    rooted = p.startswith("/")
    out: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def verify_group_path(g: str) -> None:
    """Check the form of a group path; raise :class:`InvalidGroupPathError` if it is wrong.

    The reference's rules: ``g`` starts with ``/``, equals its cleaned form (no ``//``,
    ``.``, ``..`` or trailing ``/``) and does not start with ``/sys/fs/cgroup`` (a group
    path is relative to the mount, not a file system path). Also refused here: a NUL or a
    newline, which no path of the kernel's can hold. Whether the group exists is not
    checked.
    """
    if not isinstance(g, str):
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: not a str")
    if not g.startswith("/"):
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: must start with '/'")
    if clean_path(g) != g:
        raise InvalidGroupPathError(
            f"cgroups: invalid group path {g!r}: not clean (it would be {clean_path(g)!r})"
        )
    if g.startswith(UNIFIED_MOUNTPOINT):
        raise InvalidGroupPathError(
            f"cgroups: invalid group path {g!r}: give the path below the cgroup2 mount, "
            f"not the file system path"
        )
    if "\0" in g or "\n" in g:
        raise InvalidGroupPathError(f"cgroups: invalid group path {g!r}: NUL or newline")


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


def caller_group(mountpoint: str) -> str | None:
    """The calling process's group as a group path of the cgroup2 mount at ``mountpoint``
    (from ``/proc/self/cgroup`` and the mount's root in mountinfo: the last row for the
    mount point, the one that is visible); ``None`` when the process is not below that
    mount's root or either file cannot be read."""
    try:
        proc = _read_proc_cgroup("/proc/self/cgroup")
    except CgroupError:
        return None
    root = "/"
    for m in _mounts():
        if m.fstype == "cgroup2" and m.mountpoint == mountpoint:
            root = m.root
    if proc.startswith("/.."):  # outside its cgroup namespace's root
        return None
    if root == "/" or proc == root:
        return proc if root == "/" else "/"
    return proc[len(root):] if proc.startswith(root + "/") else None


def pid_group_path(pid: int) -> str:
    """The group path of process ``pid``, from ``/proc/<pid>/cgroup``.

    Raises :class:`InvalidPidError` for a pid <= 0, and a :class:`KernelError` with
    ``ENOENT`` when there is no such process.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise InvalidPidError(f"cgroups: pid must be greater than 0, got {pid!r}")
    return _read_proc_cgroup(f"/proc/{pid}/cgroup")


def nested_group_path(suffix: str) -> str:
    """``suffix`` joined below the calling process's own group (Go's ``filepath.Join``)."""
    return clean_path(_read_proc_cgroup("/proc/self/cgroup") + "/" + suffix)


# --- the caller's delegation (Documentation/admin-guide/cgroup-v2.rst, "Delegation") ---


def owns_group(path: str, uid: int) -> bool:
    """Whether ``uid`` owns the group directory ``path`` the way a delegation hands it
    out: the directory and its ``cgroup.procs`` are ``uid``'s and writable by their owner.
    """
    try:
        st = os.stat(path, follow_symlinks=False)
        sp = os.stat(path + "/cgroup.procs", follow_symlinks=False)
    except OSError:
        return False
    return (
        st.st_uid == uid
        and sp.st_uid == uid
        and bool(st.st_mode & 0o200)
        and bool(sp.st_mode & 0o200)
    )


def find_delegated_root(group: str, owned: Callable[[str], bool]) -> str | None:
    """The nearest of ``group`` and its ancestors (group paths, up to ``/``) for which
    ``owned`` is true, or None: the pure logic of :func:`delegated_root`."""
    g = clean_path(group) if group != "/" else "/"
    while True:
        if owned(g):
            return g
        if g == "/":
            return None
        g = g.rpartition("/")[0] or "/"


def delegated_root(*, mountpoint: str | None = None, uid: int | None = None) -> str | None:
    """The caller's delegated group: the nearest ancestor of its own group (the ``0::``
    line of ``/proc/self/cgroup``, the group itself included) whose directory and
    ``cgroup.procs`` the caller owns (:func:`owns_group`, ``uid`` default the effective
    uid); its group path below the mount, or None when there is none.

    The kernel lets the caller create groups there and move its own processes between
    them (the common ancestor's ``cgroup.procs`` is its own). Read-only: nothing is
    written.
    """
    from .self import _own_group

    mp = mountpoint if mountpoint is not None else default_mountpoint()
    me = os.geteuid() if uid is None else uid
    try:
        group = _own_group(mp)
    except CgroupError:  # a group this mount does not show
        return None
    base = mp.rstrip("/")
    return find_delegated_root(group, lambda g: owns_group(base + g if g != "/" else mp, me))
