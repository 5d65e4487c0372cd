"""The ``cgroup2`` command (also ``python -m cgroup2``).

Subcommands: ``run`` (a command in a new group under limits, with ``--summary``), ``stat``,
``top``, ``tree``, ``events``, ``freeze``, ``thaw``, ``kill``, ``rm``, ``devices check``.

Conventions:

* GROUP is a group path below the cgroup2 mount (``/a/b``; ``a/b`` and the file system
  path ``<mount>/a/b`` are accepted too). ``--mountpoint`` overrides the mount found in
  ``/proc/self/mountinfo``.
* Sizes are bytes with an optional ``K``/``M``/``G``/``T`` suffix, 1024-based as systemd
  reads them (``512M`` = 536870912), or ``max``. CPU limits are a percentage of one CPU
  (``50%``: quota 50000 of period 100000; ``150%`` needs two CPUs), ``QUOTA/PERIOD`` in
  microseconds, or ``max``.
* Errors are one line on stderr, ``cgroup2: error: ...``. Exit status: 2 for a usage error,
  1 for a failure; ``run`` exits with the command's status (128+N when signal N killed
  it), 127 when the command is not found, 126 when it cannot be executed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.console import Console

from .._version import __version__
from ..errors import CgroupError
from ..manager import Manager
from ..paths import default_mountpoint, verify_group_path
from ._units import UsageError, parse_io_max, parse_rule

__all__ = ["main"]

PROG = "cgroup2"
_WIDE = 4096


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line: ``cgroup2: error: <what>``."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix(PROG).strip()
        raise UsageError(f"{where}: {message}" if where else message)


def _pids_max(text: str) -> int | str:
    if text == "max":
        return "max"
    if text.isdigit():
        return int(text)
    raise UsageError(f"invalid --pids-max {text!r}: a number of tasks or 'max'")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"invalid number {text!r}") from None


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 < v < 1e6:
        raise UsageError(f"invalid interval {text!r}: seconds, more than 0 and less than 1e6")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Manage Linux cgroup v2 groups.")
    p.add_argument(
        "--mountpoint", metavar="DIR", help="the cgroup2 mount (default: from mountinfo)"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser(
        "run",
        help="run a command in a new group under limits",
        description=(
            "Create the group PARENT/NAME (default /cgroup2-run-<pid> directly below the "
            "cgroup2 mount), apply the limits, run CMD in it, and remove the group when CMD "
            "ends (killing what is left in it) unless --keep. Exits with CMD's status "
            "(128+N when killed by signal N), 127 when CMD is not found, 126 when it cannot "
            "be executed, 1 when the group cannot be made. SIGINT, SIGTERM, SIGHUP and "
            "SIGQUIT are passed on to CMD (those the terminal sends to the whole process "
            "group are not sent twice). With --systemd, CMD runs in the transient scope "
            "NAME.scope in SLICE instead. A limit whose controller the mount lacks is an "
            "error that names the controller."
        ),
    )
    r.add_argument("--memory-max", metavar="SIZE", help="memory.max, e.g. 512M (1024-based)")
    r.add_argument("--memory-high", metavar="SIZE", help="memory.high (throttle above it)")
    r.add_argument("--memory-swap-max", metavar="SIZE", help="memory.swap.max (0: no swap)")
    r.add_argument("--cpu-max", metavar="CPU", help="cpu.max: 50%%, 150%%, QUOTA/PERIOD, max")
    r.add_argument("--cpu-weight", metavar="N", type=_int, help="cpu.weight, 1..10000")
    r.add_argument("--pids-max", metavar="N", type=_pids_max, help="pids.max: tasks, or max")
    r.add_argument("--cpus", metavar="LIST", help="cpuset.cpus, e.g. 0-1")
    r.add_argument(
        "--io-max",
        metavar="DEV:KEY=V[,..]",
        type=parse_io_max,
        action="append",
        help="io.max, DEV is MAJ:MIN or /dev/X; keys rbps wbps riops wiops (repeatable)",
    )
    r.add_argument(
        "--device",
        metavar="RULE",
        type=parse_rule,
        action="append",
        help="device rule 'allow|deny [a|b|c] [MAJ:MIN] [rwm]'; the last match decides, "
        "no match denies (repeatable, in order)",
    )
    r.add_argument("--name", metavar="NAME", help="the group's name (default cgroup2-run-<pid>)")
    r.add_argument("--parent", metavar="GROUP", help="create the group below GROUP (default /)")
    r.add_argument("--keep", action="store_true", help="leave the group when CMD ends")
    r.add_argument("--summary", action="store_true", help="print what CMD used, on stderr")
    r.add_argument(
        "--live",
        type=_positive,
        metavar="SEC",
        help="while CMD runs, print its CPU use, memory and tasks every SEC seconds (stderr)",
    )
    r.add_argument(
        "--systemd", action="store_true", help="a systemd transient scope instead of a group"
    )
    r.add_argument("--slice", metavar="SLICE", help="with --systemd: the slice (system.slice)")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")

    s = sub.add_parser("stat", help="a group's statistics")
    s.add_argument("group", metavar="GROUP")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="Metrics.to_dict() as JSON")
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text format")
    s.add_argument("--pretty", action="store_true", help="indent the JSON")

    t = sub.add_parser("top", help="groups by CPU, memory, IO and tasks, refreshed")
    t.add_argument("group", metavar="GROUP", nargs="?", default="/", help="subtree (default /)")
    t.add_argument("--sort", choices=("cpu", "memory", "io", "tasks", "name"), default="cpu")
    t.add_argument("--interval", type=_positive, default=1.0, metavar="SEC")
    t.add_argument("--depth", type=_int, metavar="N", help="levels below GROUP to show")
    t.add_argument("--once", action="store_true", help="print one frame plainly and exit")
    t.add_argument("--iterations", "-n", type=_int, metavar="N", help="exit after N frames")

    tr = sub.add_parser("tree", help="groups and their processes")
    tr.add_argument("group", metavar="GROUP", nargs="?", default="/")
    tr.add_argument("--no-procs", action="store_true", help="groups only")
    tr.add_argument("--kernel", "-k", action="store_true", help="show kernel threads too")

    e = sub.add_parser("events", help="stream a group's memory events")
    e.add_argument("group", metavar="GROUP")
    e.add_argument("--json", action="store_true", help="one JSON object a line")
    e.add_argument("--initial", action="store_true", help="print the counts at the start")
    e.add_argument("--count", type=_int, metavar="N", help="exit after N events")

    for name, what in (
        ("freeze", "freeze a group (cgroup.freeze), wait until frozen"),
        ("thaw", "thaw a frozen group"),
        ("kill", "SIGKILL every process of a group (cgroup.kill)"),
        ("rm", "remove a group and its subgroups"),
    ):
        c = sub.add_parser(name, help=what)
        c.add_argument("group", metavar="GROUP")
        if name == "rm":
            c.add_argument("--kill", action="store_true", help="kill its processes first")
        else:
            c.add_argument("--timeout", type=_positive, default=10.0, metavar="SEC")

    d = sub.add_parser("devices", help="device rules")
    dsub = d.add_subparsers(dest="devices_command", metavar="COMMAND", parser_class=_Parser)
    dsub.required = True
    dc = dsub.add_parser(
        "check",
        help="does a rule list allow a device access? (runs the compiled eBPF program)",
        description=(
            "Compile RULES into the eBPF device program and run it on DEVICE in the "
            "emulator. RULES: 'allow|deny [a|b|c] [MAJ:MIN] [rwm]' separated by ';', the "
            "last matching rule decides, no match denies; '*' is any number. DEVICE: "
            "'b|c MAJ:MIN [rwm]'. Prints allow or deny; exit status 0 or 1."
        ),
    )
    dc.add_argument("rules", metavar="RULES")
    dc.add_argument("device", metavar="DEVICE")
    from . import _completion

    _completion.add_parser(sub)
    return p


def _group_path(text: str, mountpoint: str) -> str:
    g = text
    if g == mountpoint or g.startswith(mountpoint.rstrip("/") + "/"):
        g = g[len(mountpoint.rstrip("/")) :] or "/"
    if not g.startswith("/"):
        g = "/" + g
    if len(g) > 1:
        g = g.rstrip("/")
    try:
        verify_group_path(g)
    except CgroupError as e:
        raise UsageError(str(e).removeprefix("cgroups: ")) from None
    return g


def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    from . import _cmds

    cmd = args.command
    if cmd == "completion":
        from ._completion import run as completion

        return completion(args)
    if cmd == "devices":
        return _cmds.cmd_devices_check(args, out)
    mountpoint = args.mountpoint or default_mountpoint()
    if cmd == "run":
        from ._run import run_command

        argv = list(args.cmd)
        if argv and argv[0] == "--":
            argv = argv[1:]
        if args.parent is not None:
            if args.systemd:
                raise UsageError("run: --parent and --systemd: choose one (--slice with --systemd)")
            args.parent = _group_path(args.parent, mountpoint)
        if args.slice is not None and not args.systemd:
            raise UsageError("run: --slice needs --systemd")
        return run_command(args, argv, err, mountpoint=mountpoint)
    group = _group_path(args.group, mountpoint)
    if cmd == "top":
        return _cmd_top(args, group, mountpoint, out)
    if cmd == "tree":
        from ._tree import build_tree

        path = mountpoint if group == "/" else mountpoint.rstrip("/") + group
        out.print(build_tree(path, group, procs=not args.no_procs, kernel=args.kernel))
        return 0
    m = Manager.load(group, mountpoint=mountpoint)
    if cmd == "stat":
        return _cmds.cmd_stat(m, args, out)
    if cmd == "events":
        return _cmds.cmd_events(m, args, out)
    return _cmds.cmd_simple(m, args, out)


# (not named _top: importing the submodule cgroup2.cli._top rebinds that package name)
def _cmd_top(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    from ._top import frames, table

    Manager.load(group, mountpoint=mountpoint)  # a missing group is an error, not a blank
    if args.once:
        for _, title, rows in frames(
            mountpoint, group, interval=args.interval, sort=args.sort, depth=args.depth,
            iterations=1,
        ):
            out.print(table(rows, title=title, plain=True), soft_wrap=True)
        return 0
    from rich.live import Live

    try:
        with Live(console=out, auto_refresh=False, screen=out.is_terminal) as live:
            for _, title, rows in frames(
                mountpoint, group, interval=args.interval, sort=args.sort, depth=args.depth,
                iterations=args.iterations,
            ):
                limit = max(1, out.size.height - 4) if out.is_terminal else None
                live.update(table(rows, title=title, limit=limit), refresh=True)
    except KeyboardInterrupt:
        pass  # ^C is how a live view is left
    return 0


def _message(e: BaseException) -> str:
    """The error as one line, control characters shown escaped (a group name or a value
    in it may hold any byte)."""
    from ._text import printable

    text = str(e).removeprefix("cgroups: ")
    return printable(" ".join(text.split("\n")))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from ._run import Failure

    # On a pipe or file, lines are never wrapped or cut (a terminal gets its own width).
    out = Console(highlight=False, width=None if sys.stdout.isatty() else _WIDE)
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else _WIDE)
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        return _dispatch(args, out, err)
    except UsageError as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return e.status
    except CgroupError as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `cgroup2 tree | head`): quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
