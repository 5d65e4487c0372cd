"""The commands on one group's files and members: create, set, get, attach, exec, ls.

They do the jobs of libcgroup's ``cgcreate``, ``cgset``, ``cgget``, ``cgclassify``,
``cgexec`` and ``lscgroup`` on cgroup v2, through the library: every group is opened by
:class:`~cgroup2.manager.Manager` / :class:`cgroup2._fs.Dir` (cgroup2 checked, no mount
crossed), walks are :func:`cgroup2._fs.walk`, and what is printed goes through
:func:`~cgroup2.cli._text.printable`.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from .. import _sig
from .._fs import Dir, check_name, walk
from ..errors import CgroupDeletedError, CgroupError, KernelError
from ..manager import Manager
from ._lite import REMAINDER
from ._text import printable
from ._units import Failure, UsageError, shown_limit

TYPE_CHECKING = False
if TYPE_CHECKING:  # these commands print plain lines to out.file: rich is not imported
    import argparse
    from collections.abc import Callable, Sequence

    from rich.console import Console

    from ._lite import Subparsers

__all__ = ["add_parser", "cmd_exec", "format_values", "is_limit_file", "limit_files", "run"]

# --- the command line --------------------------------------------------------------------

_DESCRIPTIONS = {
    "create": (
        "Make the group GROUP and apply the limits; the controllers they need are "
        "enabled in the parents. Like mkdir: the parent must exist and GROUP must not, "
        "unless --parents, which makes missing parents and applies the limits to a "
        "GROUP that exists. Prints nothing on success."
    ),
    "set": (
        "Write the limits to the existing group GROUP. The files are checked to exist "
        "first; if the kernel refuses a value, the values written before it are put "
        "back and nothing is changed."
    ),
    "get": (
        "Print 'FILE: VALUE' for each FILE (any file of the group: memory.max, "
        "memory.stat...), or for every limit file of the group when none is named "
        "(the files that can be written, other than cgroup.procs, cgroup.freeze and "
        "the like). A value of several lines continues on lines that start with a tab."
    ),
    "attach": (
        "Move each PID (the whole process, all its threads) into GROUP, in order; with "
        "--threads each PID is a thread id moved alone (threaded groups)."
    ),
    "exec": (
        "Move this process into GROUP, then execute CMD in its place: CMD's exit "
        "status is the exit status. 127 when CMD is not found, 126 when it cannot be "
        "executed."
    ),
    "ls": "Print the groups directly below GROUP (with -r every group below it), "
    "one group path a line, as lscgroup does; --json gives a list of objects instead.",
}


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``name`` (create, set, get, attach, exec, ls) with its
    arguments; ``help`` is its line in the list of commands."""
    p = sub.add_parser(name, help=help, description=_DESCRIPTIONS[name])
    if name == "create":
        from ._limits import add_limit_flags

        p.add_argument("group", metavar="GROUP")
        p.add_argument(
            "--parents", action="store_true",
            help="make missing parents; an existing GROUP is fine",
        )
        p.add_argument(
            "--owner",
            metavar="USER[:GROUP]",
            help=(
                "delegate GROUP to USER (root only): chown its directory, cgroup.procs, "
                "cgroup.threads and cgroup.subtree_control; names or numbers"
            ),
        )
        add_limit_flags(p)
    elif name == "set":
        from ._limits import add_limit_flags

        p.add_argument("group", metavar="GROUP")
        add_limit_flags(p)
    elif name == "get":
        p.add_argument("group", metavar="GROUP")
        p.add_argument("files", metavar="FILE", nargs="*")
        fmt = p.add_mutually_exclusive_group()
        fmt.add_argument("--json", action="store_true", help="one object: file name -> text")
        fmt.add_argument("-v", "--values", action="store_true", help="only the values")
    elif name == "attach":
        p.add_argument("group", metavar="GROUP")
        p.add_argument("pids", metavar="PID", nargs="+", type=_pid)
        p.add_argument("--threads", action="store_true", help="move threads (cgroup.threads)")
    elif name == "exec":
        p.add_argument("group", metavar="GROUP")
        p.add_argument("cmd", nargs=REMAINDER, metavar="-- CMD ...")
    else:
        p.add_argument("group", metavar="GROUP", nargs="?", default="/", help="(default /)")
        p.add_argument("-r", "--recursive", action="store_true", help="every group below")
        p.add_argument("--json", action="store_true", help="a list of objects")


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"invalid PID {text!r}: a process id (a number above 0)")
    return int(text)


# --- running them ------------------------------------------------------------------------


def run(cmd: str, args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """Run the subcommand ``cmd`` (create, set, get, attach, ls)."""
    commands: dict[str, Callable[[argparse.Namespace, str, str, Console], int]] = {
        "create": cmd_create,
        "set": cmd_set,
        "get": cmd_get,
        "attach": cmd_attach,
        "ls": cmd_ls,
    }
    return commands[cmd](args, group, mountpoint, out)


def _exists(group: str, mountpoint: str) -> bool:
    try:
        Manager.load(group, mountpoint=mountpoint)
    except CgroupDeletedError:
        return False
    return True


# --- create, set -------------------------------------------------------------------------


def cmd_create(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """Make the group (like ``mkdir``; ``--parents`` like ``mkdir -p``) with the limits."""
    from ._limits import build_resources, check_controllers, check_writable

    if group == "/":
        raise UsageError("create: the root group always exists; name a group below it")
    resources, given = build_resources(args)
    check_controllers(mountpoint, given)
    owner = _owner(args.owner) if getattr(args, "owner", None) is not None else None
    if not args.parents:
        parent = group.rpartition("/")[0] or "/"
        if not _exists(parent, mountpoint):
            raise Failure(
                f"parent group {printable(parent)} does not exist (--parents makes it)"
            )
        if _exists(group, mountpoint):
            raise Failure(
                f"group {printable(group)} exists already (--parents applies the limits to "
                f"an existing group; 'cgroup2 set' changes them)"
            )
    parent = group.rpartition("/")[0] or "/"
    if resources.unified and _exists(parent, mountpoint):
        with Dir.open(Manager.load(parent, mountpoint=mountpoint).path) as d:
            check_writable(d, resources)  # the parent has the files of its controllers
    existed = owner is not None and _exists(group, mountpoint)
    try:  # without --parents, the one mkdir decides: a group made meanwhile is not adopted
        m = Manager.create(
            group, resources, mountpoint=mountpoint, exist_ok=args.parents, parents=args.parents
        )
    except CgroupError as e:
        if args.parents:
            raise
        if e.errno == errno.EEXIST:
            raise Failure(
                f"group {printable(group)} exists already (--parents applies the limits to "
                f"an existing group; 'cgroup2 set' changes them)"
            ) from None
        if isinstance(e, CgroupDeletedError) and not _exists(parent, mountpoint):
            raise Failure(
                f"parent group {printable(parent)} does not exist (--parents makes it)"
            ) from None
        raise
    if owner is not None:
        try:
            m.delegate(*owner)  # --owner: the kernel's delegation (cgroup2.delegation)
        except BaseException:
            if not existed:  # all or nothing: the group made here goes again
                try:  # noqa: SIM105 - contextlib is not imported (start-up)
                    m.delete()
                except CgroupError:
                    pass
            raise
    return 0


def _owner(text: str) -> tuple[int, int | None]:
    """``--owner USER[:GROUP]`` -> (uid, gid or None)."""
    from ..delegation import parse_owner

    try:
        return parse_owner(text)
    except (ValueError, CgroupError) as e:
        raise UsageError(f"--owner: {printable(str(e).removeprefix('cgroups: '))}") from None


def cmd_set(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """Write the limits to the existing group (``Manager.update``: all or nothing)."""
    from ._limits import build_resources, check_controllers, check_writable

    m = Manager.load(group, mountpoint=mountpoint)
    resources, given = build_resources(args)
    if not resources.values() and not resources.devices:
        raise UsageError("set: no limit given (e.g. --memory-max 512M or -p memory.max=512M)")
    check_controllers(mountpoint, given)
    if group != "/":
        have = m.controllers()
        for c in resources.enabled_controllers():
            if c not in have:
                fix = " && ".join(
                    f"echo +{c} > {printable(p)}/cgroup.subtree_control"
                    for p in _not_enabled(mountpoint, group, c)
                )
                raise Failure(
                    f"the {c} controller is not enabled for {printable(group)} (in its "
                    f"parent's cgroup.subtree_control); nothing was changed. Enable it, as "
                    f"root or as the owner of those groups: {fix}"
                )
    with Dir.open(m.path, m.mountpoint) as d:
        check_writable(d, resources)
    m.update(resources)
    return 0


def _not_enabled(mountpoint: str, group: str, controller: str) -> list[str]:
    """The directories above ``group``, from the mount's root down, whose
    ``cgroup.subtree_control`` lacks ``controller`` (each must enable it, in this order)."""
    root = mountpoint.rstrip("/")
    parts = group.strip("/").split("/")[:-1]
    out = []
    for i in range(len(parts) + 1):
        d = "/".join([root, *parts[:i]])
        try:
            with open(d + "/cgroup.subtree_control", "rb") as f:
                if controller.encode() in f.read().split():
                    continue
        except OSError:
            pass
        out.append(d)
    return out


# --- get ---------------------------------------------------------------------------------


def is_limit_file(name: str, mode: int) -> bool:
    """A file that holds a setting of the group: readable and writable by its owner, not
    one of the files that are not limits (``cgroup.procs``, ``cgroup.freeze``... see
    :data:`cgroup2.resources.NOT_LIMITS`), not a pressure file (writable for triggers),
    not a peak (``memory.peak`` is writable to reset it, Linux 6.12+)."""
    from ..resources import NOT_LIMITS

    if not stat.S_ISREG(mode) or mode & 0o600 != 0o600 or name in NOT_LIMITS:
        return False
    if name.endswith(".peak"):
        return False
    return not (name.endswith(".pressure") and name != "cgroup.pressure")


def limit_files(d: Dir) -> list[str]:
    """The limit files of the group ``d``, by name."""
    try:
        with os.scandir(d.fd) as it:
            found = [e.name for e in it if is_limit_file(e.name, e.stat().st_mode)]
    except OSError as e:
        raise KernelError(e.errno or 0, d.path, op="list") from None
    return sorted(found)


def _read(d: Dir, group: str, name: str) -> str:
    try:
        check_name(name)
    except CgroupError:
        raise UsageError(
            f"get: invalid file name {printable(repr(name))}: one file of the group"
        ) from None
    if not d.exists(name):
        if d.gone():
            raise CgroupDeletedError(f"cgroups: group {group} was removed", path=d.path)
        from .._v1 import bound_sentence  # a controller of a hybrid host's v1 hierarchy?

        where = bound_sentence([name.partition(".")[0]]) if "." in name else ""
        raise Failure(f"group {printable(group)} has no file {printable(name)}"
                      + (f": {printable(where)}" if where else ""))
    try:
        data = d.read(name)
    except KernelError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EINVAL):
            raise Failure(
                f"{printable(name)} of {printable(group)} cannot be read (a file that is only "
                f"written, such as cgroup.kill or memory.reclaim)"
            ) from None
        raise
    return shown_limit(name, data.decode("utf-8", "surrogateescape").rstrip("\n"))


def format_values(values: Sequence[tuple[str, str]], *, only_values: bool = False) -> str:
    """``FILE: VALUE`` lines as ``cgget`` prints them: the further lines of a value start
    with a tab. ``only_values``: the values alone. Names and values are escaped."""
    out: list[str] = []
    for name, text in values:
        lines = [printable(x) for x in text.split("\n")]
        if only_values:
            out += lines
            continue
        out.append(f"{printable(name)}: {lines[0]}".rstrip(" "))
        out += ["\t" + x for x in lines[1:]]
    return "".join(x + "\n" for x in out)


def cmd_get(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """``FILE: VALUE`` of the named files, or of every limit file of the group."""
    m = Manager.load(group, mountpoint=mountpoint)
    with Dir.open(m.path, m.mountpoint) as d:
        names = list(dict.fromkeys(args.files)) or limit_files(d)
        values = [(name, _read(d, group, name)) for name in names]
    if args.json:
        import json

        out.file.write(json.dumps(dict(values)) + "\n")
    else:
        out.file.write(format_values(values, only_values=args.values))
    return 0


# --- attach, exec ------------------------------------------------------------------------

def _attach_why(e: KernelError, threads: bool) -> str:
    """What a refusal of ``cgroup.procs``/``cgroup.threads`` means."""
    if e.errno == errno.ESRCH:
        return "no such " + ("thread" if threads else "process")
    if e.errno == errno.EBUSY:
        return (
            "the group enables controllers for its children, so it may hold no processes "
            "of its own (the kernel's no-internal-processes rule); attach to a group below it"
        )
    if threads and e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
        return (
            "a thread moves only within the threaded subtree of its process's group (the "
            "group must be threaded, below the group of the thread's process)"
        )
    if e.errno == errno.EOPNOTSUPP:
        return "the group is 'domain invalid': it takes no processes until its type is fixed"
    return str(e).removeprefix("cgroups: ")


def cmd_attach(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """Move each process (or thread, ``--threads``) into the group, in order."""
    m = Manager.load(group, mountpoint=mountpoint)
    what = "thread" if args.threads else "process"
    moved: list[int] = []
    for pid in args.pids:
        try:
            if args.threads:
                m.add_thread(pid)
            else:
                m.add_proc(pid)
        except KernelError as e:
            why = _attach_why(e, args.threads)
            done = f" (moved before it: {' '.join(map(str, moved))})" if moved else ""
            raise Failure(
                f"cannot move {what} {pid} into {printable(group)}: {why}{done}"
            ) from None
        moved.append(pid)
    return 0


def cmd_exec(group: str, cmd: Sequence[str], mountpoint: str) -> int:
    """Move this process into the group, then execute ``cmd`` in its place (``cgexec``).

    Returns only when ``cmd`` cannot be run (127 not found, 126 not executable)."""
    import shutil  # here: it imports bz2, lzma, zlib (start-up time of the other commands)

    if not cmd:
        raise UsageError("exec: no command given (cgroup2 exec GROUP -- CMD ...)")
    m = Manager.load(group, mountpoint=mountpoint)
    if "/" not in cmd[0] and shutil.which(cmd[0]) is None:
        raise Failure(f"cannot run {printable(repr(cmd[0]))}: command not found", 127)
    m.add_proc(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores these at start-up; ignored signals stay ignored across exec
    for s in (_sig.SIGPIPE, _sig.SIGXFSZ):
        _sig.signal(s, _sig.SIG_DFL)
    try:
        os.execvp(cmd[0], list(cmd))
    except OSError as e:
        for s in (_sig.SIGPIPE, _sig.SIGXFSZ):
            _sig.signal(s, _sig.SIG_IGN)
        raise Failure(
            f"cannot run {printable(repr(cmd[0]))}: {e.strerror}",
            127 if e.errno == errno.ENOENT else 126,
        ) from None
    return 126  # not reached: execvp returns only by raising


# --- ls ----------------------------------------------------------------------------------


def _child_path(parent: str, name: str) -> str:
    return ("" if parent == "/" else parent) + "/" + name


def _vanished(e: CgroupError) -> bool:
    return isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV)


def _info(d: Dir, group: str) -> dict[str, object] | None:
    """The controllers and state of a group for ``ls --json``; None when it was removed
    meanwhile."""
    try:
        return _read_info(d, group)
    except CgroupError as e:
        if _vanished(e):
            return None
        raise


def _read_info(d: Dir, group: str) -> dict[str, object]:
    from ..events import parse_cgroup_events

    controllers = d.read("cgroup.controllers").decode().split()
    events = d.try_read("cgroup.events")  # the root group has none
    item: dict[str, object] = {"group": group, "controllers": controllers}
    if events is not None:
        ev = parse_cgroup_events(events)
        item["populated"] = ev.populated
        item["frozen"] = ev.frozen
    return item


def cmd_ls(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """The groups below GROUP (its children; ``-r`` every group below it), one path a
    line; ``--json`` a list of objects with the controllers and the state of each."""
    m = Manager.load(group, mountpoint=mountpoint)
    items: list[dict[str, object]] = []
    paths: list[str] = []
    with Dir.open(m.path, m.mountpoint) as top:
        if args.recursive:
            names: list[str] = []
            for _, d, name, depth in walk(top):
                if not depth:
                    continue
                del names[depth - 1 :]
                names.append(name)
                path = _child_path(group, "/".join(names))
                paths.append(path)
                if args.json and (item := _info(d, path)) is not None:
                    items.append(item)
        else:
            for name, _ in sorted(top.subdir_entries()):
                path = _child_path(group, name)
                if args.json:
                    try:
                        with top.child(name) as d:
                            item = _info(d, path)
                    except CgroupError as e:
                        if _vanished(e):
                            continue  # removed meanwhile
                        raise
                    if item is None:
                        continue
                    items.append(item)
                paths.append(path)
    if args.json:
        import json

        out.file.write(json.dumps(items) + "\n")
    else:
        out.file.write("".join(printable(p) + "\n" for p in paths))
    return 0
