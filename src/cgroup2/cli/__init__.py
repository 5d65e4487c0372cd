"""The ``cgroup2`` command (also ``python -m cgroup2``).

Subcommands: ``run`` (a command in a new group under limits, with ``--summary``),
``create``, ``set``, ``get``, ``attach``, ``exec``, ``ls``, ``status``, ``stat``, ``top``,
``tree``, ``events``, ``freeze``, ``thaw``, ``kill``, ``rm``, ``self``, ``devices check``.

Conventions:

* GROUP is a group path below the cgroup2 mount (``/a/b``; ``a/b`` and the file system
  path ``<mount>/a/b`` are accepted too). ``--mountpoint`` overrides the mount found in
  ``/proc/self/mountinfo``.
* Sizes are bytes with an optional ``K``/``M``/``G``/``T`` suffix, 1024-based as systemd
  reads them (``512M`` = 536870912), or ``max``. CPU limits are a percentage of one CPU
  (``50%``: quota 50000 of period 100000; ``150%`` needs two CPUs), ``QUOTA/PERIOD`` in
  microseconds, or ``max``.
* ``-p/--property FILE=VALUE`` writes the exact text VALUE to the limit file FILE of the
  group, in every command that sets limits (``run``, ``create``, ``set``).
* Everything printed that comes from the system (group and file names, values, command
  lines) has its control characters shown escaped: ``\\xNN`` below U+0080 and for a
  byte that is not UTF-8, ``\\uNNNN`` or ``\\UNNNNNNNN`` above; a backslash that would
  read as such an escape is shown as ``\\\\``.
* Errors are one line on stderr, ``cgroup2: error: ...``. Exit status: 2 for a usage error,
  1 for a failure; ``run`` and ``exec`` exit with the command's status (128+N when signal
  N killed it), 127 when the command is not found, 126 when it cannot be executed.
"""

from __future__ import annotations

import errno
import os
import sys

from .._version import __version__
from ..errors import CgroupError, InvalidGroupPathError
from ._console import LazyConsole, make_console
from ._lite import REMAINDER, Fallback, LiteParser
from ._units import (
    MIN_INTERVAL,
    Failure,
    UsageError,
    parse_count,
    parse_int,
    parse_interval,
    parse_signal,
    parse_timeout,
)

# Start-up matters (scripts call get/set in loops; runners start many short commands):
# the modules a subcommand needs, rich among them, are imported where it runs, typing is
# not imported at all, and argparse only where the small parser of _lite hands a command
# line over (benchmarks/startup.py, tests/unit/test_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from rich.console import Console

__all__ = ["main"]

PROG = "cgroup2"
#: The help of the ``completion`` subcommand (cli/_completion), listed by every parser.
COMPLETION_HELP = "print a shell completion script (bash, zsh, fish)"


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (which imports
    bz2, lzma, zlib and fnmatch: more than a ``cgroup2 get`` costs otherwise)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


_PARSER_CLASS: list[type[argparse.ArgumentParser]] = []


def _parser_class() -> type[argparse.ArgumentParser]:
    """argparse's parser, with usage errors as one line (``cgroup2: error: <what>``) and
    help of the terminal's width; argparse is imported here, when a command line needs
    it (help, an error, a form :mod:`cgroup2.cli._lite` leaves to argparse)."""
    if _PARSER_CLASS:
        return _PARSER_CLASS[0]
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse's help formatter, of the width it takes by default (the terminal's,
        less 2), found by :func:`_columns`: argparse makes one for every argument added."""

        def __init__(
            self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
            width: int | None = None,
        ) -> None:
            super().__init__(
                prog, indent_increment, max_help_position,
                _columns() - 2 if width is None else width,
            )

    class _Parser(argparse.ArgumentParser):
        """argparse, with usage errors as one line: ``cgroup2: error: <what>``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> NoReturn:
            where = self.prog.removeprefix(PROG).strip()
            message += _hint(message)
            raise UsageError(f"{where}: {message}" if where else message)

    class _Man(argparse.Action):
        """``--man``: the manual page, then exit."""

        def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
            from ._reference import show_man

            parser.exit(show_man())

    _PARSER_CLASS.append(_Parser)
    _MAN_ACTION.append(_Man)
    return _Parser


_MAN_ACTION: list[type[argparse.Action]] = []


def _hint(message: str) -> str:
    """What to add to argparse's error ``message``: the command meant by a misspelt one
    ("did you mean 'status'?"), ``-p FILE=VALUE`` for a bare ``FILE=VALUE`` (the habit of
    ``cgset -r``)."""
    import re

    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if m:
        import difflib

        choices = re.findall(r"'([^']*)'", m.group(2))
        close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else ""
    m = re.search(r"unrecognized arguments: .*?\b([a-z][a-z0-9_]*\.[a-z0-9_.]+=\S*)", message)
    if m:
        return f" (to write a file of the group: -p {m.group(1)})"
    return ""


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"invalid PID {text!r}: a process id (a number above 0)")
    return int(text)


class _Unused:
    """Stands for the parser of a subcommand that is not the one run: its arguments are
    not added (adding them is most of the time of building the parser)."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return lambda *args, **kwargs: self


def _trigger(text: str) -> Any:
    """``events --pressure``: a PSI trigger (cgroup2.pressure, imported when used)."""
    from ._pressure import parse_trigger

    return parse_trigger(text)


def _on_pressure(text: str) -> Any:
    """``run --on-pressure``: a trigger and its action."""
    from ._pressure import parse_on_pressure

    return parse_on_pressure(text)


def build_parser(only: str | None = None, *, lite: bool = False) -> argparse.ArgumentParser:
    """The command's parser. With ``only``, every subcommand is there (its name and help)
    but only the subcommand ``only`` has its arguments: what parsing a command line that
    runs ``only`` needs, at a part of the cost. With ``lite``, the same arguments in a
    :class:`~cgroup2.cli._lite.LiteParser`, which parses without argparse or raises
    :class:`~cgroup2.cli._lite.Fallback` (help, errors, rarer forms)."""
    parser_class: Any = LiteParser if lite else _parser_class()

    def add(
        action: argparse._SubParsersAction[argparse.ArgumentParser], name: str, *,
        of: str | None = None,
        **kwargs: Any,
    ) -> argparse.ArgumentParser:
        """``action.add_parser(name, **kwargs)``; for a subcommand other than ``only``
        (``of``: the subcommand it belongs to) a bare parser, listed with its help."""
        if only is None or only == (of or name):
            return action.add_parser(name, **kwargs)
        action.add_parser(name, add_help=False, **kwargs)
        return _Unused()  # type: ignore[return-value]

    def add_limit_flags(parser: argparse.ArgumentParser) -> None:
        if not isinstance(parser, _Unused):
            from ._limits import add_limit_flags

            add_limit_flags(parser)

    p: argparse.ArgumentParser = parser_class(
        prog=PROG, description="Manage Linux cgroup v2 groups."
    )
    p.add_argument(
        "--mountpoint", metavar="DIR", help="the cgroup2 mount (default: from mountinfo)"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if not lite:  # (the small parser leaves --man to argparse)
        import argparse

        p.add_argument(
            "--man", nargs=0, action=_MAN_ACTION[0], default=argparse.SUPPRESS,
            help="show the manual page cgroup2(1) (where 'man cgroup2' does not find it: "
            "a venv whose bin is not on PATH)",
        )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    sub.required = True

    r = add(
        sub,
        "run",
        help="run a command in a new group under limits",
        description=(
            "Create the group PARENT/NAME (default /cgroup2-run-<pid> directly below the "
            "cgroup2 mount), apply the limits, run CMD in it, and remove the group when CMD "
            "ends (killing what is left in it) unless --keep. With --group, CMD runs in "
            "that existing group instead, which is left as it is. Exits with CMD's status "
            "(128+N when killed by signal N), 127 when CMD is not found, 126 when it cannot "
            "be executed, 1 when the group cannot be made. SIGINT, SIGTERM, SIGHUP and "
            "SIGQUIT are passed on to CMD (those the terminal sends to the whole process "
            "group are not sent twice). With --systemd, CMD runs in the transient scope "
            "NAME.scope in SLICE instead. A limit whose controller the mount lacks is an "
            "error that names the controller."
        ),
    )
    add_limit_flags(r)
    r.add_argument("--name", metavar="NAME", help="the group's name (default cgroup2-run-<pid>)")
    r.add_argument("--parent", metavar="GROUP", help="create the group below GROUP (default /)")
    r.add_argument(
        "--group", metavar="GROUP", help="run in this existing group (not made, not removed)"
    )
    r.add_argument("--keep", action="store_true", help="leave the group when CMD ends")
    r.add_argument("--summary", action="store_true", help="print what CMD used, on stderr")
    r.add_argument(
        "--live",
        type=lambda t: parse_interval(t, "--live"),
        metavar="SEC",
        help="while CMD runs, print its CPU use, memory and tasks every SEC seconds (stderr)",
    )
    r.add_argument(
        "--systemd", action="store_true", help="a systemd transient scope instead of a group"
    )
    r.add_argument("--slice", metavar="SLICE", help="with --systemd: the slice (system.slice)")
    r.add_argument(
        "--user",
        action="store_true",
        help=(
            "a transient scope of the calling user's systemd manager (like systemd-run "
            "--user --scope), delegated; the default without root when no delegated "
            "group is found"
        ),
    )
    r.add_argument(
        "--on-pressure", action="append", type=_on_pressure, metavar="TRIGGER=ACTION",
        help="when the PSI trigger RESOURCE:KIND:STALL:WINDOW fires for CMD's group "
        "(e.g. memory:full:100ms:1s), ACTION it: kill, freeze or signal:SIG (repeatable; "
        "reported in --summary)",
    )
    r.add_argument(
        "--pressure-cooldown", type=lambda t: parse_interval(t, "--pressure-cooldown"),
        default=10.0, metavar="SEC",
        help="after an --on-pressure action, ignore that trigger for SEC seconds (default 10)",
    )
    r.add_argument("cmd", nargs=REMAINDER, metavar="-- CMD ...")

    c = add(
        sub,
        "create",
        help="make a group and apply limits (like cgcreate)",
        description=(
            "Make the group GROUP and apply the limits; the controllers they need are "
            "enabled in the parents. Like mkdir: the parent must exist and GROUP must not, "
            "unless --parents, which makes missing parents and applies the limits to a "
            "GROUP that exists. Prints nothing on success."
        ),
    )
    c.add_argument("group", metavar="GROUP")
    c.add_argument(
        "--parents", action="store_true", help="make missing parents; an existing GROUP is fine"
    )
    c.add_argument(
        "--owner",
        metavar="USER[:GROUP]",
        help=(
            "delegate GROUP to USER (root only): chown its directory, cgroup.procs, "
            "cgroup.threads and cgroup.subtree_control; names or numbers"
        ),
    )
    add_limit_flags(c)

    st = add(
        sub,
        "set",
        help="change limits of a group (like cgset)",
        description=(
            "Write the limits to the existing group GROUP. The files are checked to exist "
            "first; if the kernel refuses a value, the values written before it are put "
            "back and nothing is changed."
        ),
    )
    st.add_argument("group", metavar="GROUP")
    add_limit_flags(st)

    g = add(
        sub,
        "get",
        help="values of a group's files (like cgget)",
        description=(
            "Print 'FILE: VALUE' for each FILE (any file of the group: memory.max, "
            "memory.stat...), or for every limit file of the group when none is named "
            "(the files that can be written, other than cgroup.procs, cgroup.freeze and "
            "the like). A value of several lines continues on lines that start with a tab."
        ),
    )
    g.add_argument("group", metavar="GROUP")
    g.add_argument("files", metavar="FILE", nargs="*")
    gfmt = g.add_mutually_exclusive_group()
    gfmt.add_argument("--json", action="store_true", help="one object: file name -> text")
    gfmt.add_argument("-v", "--values", action="store_true", help="only the values")

    a = add(
        sub,
        "attach",
        help="move processes into a group (like cgclassify)",
        description=(
            "Move each PID (the whole process, all its threads) into GROUP, in order; with "
            "--threads each PID is a thread id moved alone (threaded groups)."
        ),
    )
    a.add_argument("group", metavar="GROUP")
    a.add_argument("pids", metavar="PID", nargs="+", type=_pid)
    a.add_argument("--threads", action="store_true", help="move threads (cgroup.threads)")

    x = add(
        sub,
        "exec",
        help="run a command in an existing group (like cgexec)",
        description=(
            "Move this process into GROUP, then execute CMD in its place: CMD's exit "
            "status is the exit status. 127 when CMD is not found, 126 when it cannot be "
            "executed."
        ),
    )
    x.add_argument("group", metavar="GROUP")
    x.add_argument("cmd", nargs=REMAINDER, metavar="-- CMD ...")

    ls = add(
        sub, "ls", help="list groups (like lscgroup)",
        description="Print the groups directly below GROUP (with -r every group below it), "
        "one group path a line, as lscgroup does; --json gives a list of objects instead.",
    )
    ls.add_argument("group", metavar="GROUP", nargs="?", default="/", help="(default /)")
    ls.add_argument("-r", "--recursive", action="store_true", help="every group below")
    ls.add_argument("--json", action="store_true", help="a list of objects")

    stt = add(
        sub,
        "status",
        help="a group at a glance (like systemctl status)",
        description=(
            "Path, state, tasks, CPU time, memory, IO, pressure, the limits that are set, "
            "the device rules of the group's eBPF program, and the processes of the group "
            "and below with their command lines (the first 20, each cut to the terminal's "
            "width, unless --full or -n)."
        ),
    )
    stt.add_argument("group", metavar="GROUP")
    stt.add_argument(
        "-l", "--full", action="store_true",
        help="command lines in full (on a terminal they are cut to its width) and every "
        "process",
    )
    stt.add_argument(
        "-n", "--lines", type=lambda v: parse_count(v, "--lines"), metavar="N",
        help="list at most N processes (default 20; with --full, all)",
    )
    stt.add_argument("--no-procs", action="store_true", help="leave out the processes")

    s = add(
        sub, "stat", help="a group's statistics",
        description="Read the group's statistics once (cpu.stat, memory.current and "
        "memory.stat, io.stat, pids, hugetlb, rdma, misc, the pressure files: those of its "
        "controllers) and print them: as a tree of names and values with units, as JSON "
        "(containerd's v2 metrics names) or in the Prometheus text format.",
    )
    s.add_argument("group", metavar="GROUP")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="Metrics.to_dict() as JSON")
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text format")
    s.add_argument("--pretty", action="store_true", help="indent the JSON")

    t = add(
        sub,
        "top",
        help="groups by CPU, memory, IO and tasks, refreshed",
        description=(
            "On a terminal, a live table; with -b/--batch (and whenever the output is not "
            "a terminal) every frame is printed as plain text, one after another with a "
            "blank line between them; --json prints one JSON object a frame, a line each. "
            "In the live table, q quits (as ^C does)."
        ),
    )
    t.add_argument("group", metavar="GROUP", nargs="?", default="/", help="subtree (default /)")
    t.add_argument(
        "--sort", choices=("cpu", "memory", "io", "tasks", "name"), default="cpu",
        help="the column the groups are sorted by (memory and io need that controller on "
        "the mount)",
    )
    t.add_argument(
        "--interval", type=parse_interval, default=1.0, metavar="SEC",
        help=f"seconds between frames (default 1, at least {MIN_INTERVAL:g})",
    )
    t.add_argument(
        "--depth", type=lambda v: parse_int(v, "--depth", low=0), metavar="N",
        help="levels below GROUP to show (and hold open; tasks below are still counted)",
    )
    t.add_argument("--once", action="store_true", help="print one frame plainly and exit")
    t.add_argument(
        "-n", "--iterations", type=lambda v: parse_count(v, "--iterations"), metavar="N",
        help="exit after N frames",
    )
    tfmt = t.add_mutually_exclusive_group()
    tfmt.add_argument("-b", "--batch", action="store_true", help="every frame as plain text")
    tfmt.add_argument("--json", action="store_true", help="one JSON object a frame")

    tr = add(
        sub, "tree", help="groups and their processes",
        description="Draw the groups below GROUP (default the whole mount) as a tree, each "
        "with its processes (pid and command line); kernel threads only with --kernel.",
    )
    tr.add_argument("group", metavar="GROUP", nargs="?", default="/")
    tr.add_argument("--no-procs", action="store_true", help="groups only")
    tr.add_argument("--kernel", "-k", action="store_true", help="show kernel threads too")
    tr.add_argument(
        "-l", "--full", action="store_true",
        help="command lines in full (on a terminal they are cut to its width)",
    )
    tr.add_argument("--json", action="store_true", help="the tree as one JSON object")

    e = add(
        sub, "events", help="stream a group's memory events (or cgroup.events)",
        description="Print a line each time a counter of the group's memory.events changes "
        "(low, high, max, oom, oom_kill...; cgroup.events where the group has no memory "
        "controller), until the group is removed or --count events were printed. With "
        "--pressure, a line each time one of the PSI triggers fires instead.",
    )
    e.add_argument("group", metavar="GROUP")
    e.add_argument("--json", action="store_true", help="one JSON object a line")
    e.add_argument("--initial", action="store_true", help="print the counts at the start")
    e.add_argument(
        "--count", type=lambda v: parse_count(v, "--count"), metavar="N",
        help="exit after N events",
    )
    e.add_argument(
        "--cgroup", action="store_true",
        help="populated/frozen changes (cgroup.events; needs no controller)",
    )
    e.add_argument(
        "--pressure", action="append", type=_trigger, metavar="TRIGGER",
        help="PSI trigger firings instead: RESOURCE:KIND:STALL:WINDOW, e.g. "
        "memory:some:300ms:2s (repeatable; until the group is removed)",
    )

    for name, what, about in (
        ("freeze", "freeze a group (cgroup.freeze), wait until frozen",
         "Write 1 to the group's cgroup.freeze and wait until cgroup.events says frozen 1; "
         "the groups below are frozen with it. If it is not frozen within --timeout "
         "seconds, it is thawed again and the command fails. The root of the mount is "
         "never frozen."),
        ("thaw", "thaw a frozen group",
         "Write 0 to the group's cgroup.freeze and wait until it is no longer frozen. A "
         "group that stays frozen because a group above it is frozen is an error that "
         "names that group."),
        ("kill", "SIGKILL every process of a group (cgroup.kill), or send --signal",
         "Write 1 to the group's cgroup.kill (SIGKILL to every process of the group and of "
         "the groups below) and wait until it is empty, for --timeout seconds at most. "
         "With --signal, send that signal to each process instead, without waiting. The "
         "root of the mount is never killed."),
        ("rm", "remove a group and the groups below it",
         "Remove the group and every group below it, deepest first. A group that still "
         "has processes is refused unless --kill, which kills them first. The root of the "
         "mount is never removed."),
    ):
        cm = add(sub, name, help=what, description=about)
        cm.add_argument("group", metavar="GROUP")
        if name == "rm":
            cm.add_argument("--kill", action="store_true", help="kill its processes first")
            cm.add_argument(
                "-r", "--recursive", action="store_true",
                help="the groups below it too (what rm always does; for scripts that say so)",
            )
        else:
            cm.add_argument(
                "--timeout", type=parse_timeout, default=10.0, metavar="SEC",
                help="how long to wait (default 10); a number of seconds",
            )
        if name in ("freeze", "kill"):
            cm.add_argument(
                "--force", action="store_true",
                help=f"{name} GROUP even if this command runs in it or below it (refused "
                f"otherwise: it would {name} itself)",
            )
        if name == "kill":
            cm.add_argument(
                "-s", "--signal", type=parse_signal, metavar="SIG",
                help="send SIG (TERM, HUP, 15...) to every process of the group and below "
                "instead of SIGKILL; does not wait",
            )

    d = add(
        sub, "devices", help="device rules",
        description="Device rules without a group: 'devices check' says whether a rule "
        "list (as --device takes them) allows an access, through the eBPF program the "
        "rules make, run in an emulator.",
    )
    dsub = d.add_subparsers(dest="devices_command", metavar="COMMAND", parser_class=parser_class)
    dsub.required = True
    dc = add(
        dsub,
        "check",
        of="devices",
        help="does a rule list allow a device access? (runs the compiled eBPF program)",
        description=(
            "Compile RULES into the eBPF device program and run it on DEVICE in the "
            "emulator. RULES: 'allow|deny [a|b|c] [MAJ:MIN] [rwm]' separated by ';', "
            "applied in order as cgroup v1 applies them (from 'deny all'; rules for one "
            "device add up; one rule must grant every bit asked for); '*' is any number. "
            "DEVICE: 'b|c MAJ:MIN [rwm]'. Prints allow or deny; exit status 0 or 1 (2 for "
            "rules cgroup v1 would not apply)."
        ),
    )
    dc.add_argument("rules", metavar="RULES")
    dc.add_argument("device", metavar="DEVICE")
    me = add(
        sub,
        "self",
        help="this process's group, the limits that bind it, usable CPUs and memory",
        description=(
            "The group of the cgroup2 command itself (run it as the program whose limits "
            "you want, e.g. inside a container): the tightest memory, CPU, cpuset, pids, "
            "hugetlb and io limits along its visible ancestors with the group setting "
            "each, cpu_count (min of affinity, cpuset and the quota rounded up), the "
            "memory it may still take, and its pressure. Controllers that are not on the "
            "cgroup2 mount are named as not seen; they are not read from cgroup v1."
        ),
    )
    me.add_argument("--json", action="store_true", help="one JSON object")
    ex = add(
        sub,
        "export",
        help="a Prometheus exporter: every group under a root on /metrics",
        description=(
            "Serve GET /metrics over HTTP: one sample of every group under --root (groups "
            "that appear and disappear are followed) a scrape, read through descriptors "
            "held open (one pread per file), in the Prometheus text format, or OpenMetrics "
            "when the scraper asks for it. Metrics are named cgroup_..., with a group "
            "label; cgroup2_exporter_... are the exporter's own cost. Runs until SIGINT or "
            "SIGTERM. See the monitoring guide."
        ),
    )
    if not isinstance(ex, _Unused):
        from ._export import parse_listen, parse_mask

        ex.add_argument(
            "--listen", type=parse_listen, default=("127.0.0.1", 9753), metavar="HOST:PORT",
            help="address to serve on (default 127.0.0.1:9753; port 0: any free port)",
        )
        ex.add_argument(
            "--root", metavar="GROUP", default="/", help="groups under GROUP (default /)"
        )
        ex.add_argument(
            "--mask", type=parse_mask, default=None, metavar="PARTS",
            help="what to read, comma-separated: pids, cpu, memory, memory_stat, "
            "memory_usage, memory_events, io, rdma, hugetlb, misc, cpuset, psi, "
            "cpu_pressure, memory_pressure, io_pressure, all (default all)",
        )
        ex.add_argument(
            "--depth", type=lambda v: parse_int(v, "--depth", low=0), metavar="N",
            help="levels below --root (default: all)",
        )
        ex.add_argument(
            "--no-procs", action="store_true", help="no process counts (cgroup.procs)"
        )
        ex.add_argument(
            "--label", action="append", default=[], metavar="NAME=REGEX",
            help="another label of each group: the first group of REGEX (or its whole "
            "match) searched in the group's path; repeatable",
        )
        ex.add_argument(
            "--no-path-labels", action="store_true",
            help="no built-in labels from the path (unit, container_id, pod_uid, qos, "
            "slurm_uid, slurm_job, slurm_step)",
        )
        ex.add_argument(
            "--max-depth", type=lambda v: parse_int(v, "--max-depth", low=0), default=32,
            metavar="N",
            help="groups more than N levels below --root are left out and counted in "
            "cgroup2_exporter_groups_left_out (default 32: the body stays linear in size)",
        )
        ex.add_argument(
            "--max-groups", type=lambda v: parse_int(v, "--max-groups", low=1),
            default=1_000_000, metavar="N",
            help="at most N groups; the rest are left out and counted (default 1000000)",
        )
        ex.add_argument(
            "--max-connections", type=lambda v: parse_int(v, "--max-connections", low=1),
            default=512, metavar="N",
            help="clients served at once (default 512; past it the longest-idle one is "
            "closed); descriptors for them are kept back from the sampler",
        )
        ex.add_argument("--once", action="store_true", help="print one scrape and exit")
        ex.add_argument(
            "--openmetrics", action="store_true", help="with --once: OpenMetrics text"
        )
        ex.add_argument(
            "-v", "--verbose", action="store_true", help="log each request on stderr"
        )
    if only in (None, "completion"):
        from . import _completion

        _completion.add_parser(sub)
    else:  # listed with its help only: cli/_completion is not imported (start-up)
        sub.add_parser("completion", help=COMPLETION_HELP, add_help=False)
    return p


def _group_path(text: str, mountpoint: str) -> str:
    g = text
    if g == mountpoint or g.startswith(mountpoint.rstrip("/") + "/"):
        g = g[len(mountpoint.rstrip("/")) :] or "/"
    if not g.startswith("/"):
        g = "/" + g
    if len(g) > 1:
        g = g.rstrip("/")
    from ..paths import verify_group_path

    try:
        verify_group_path(g)
    except CgroupError as e:
        raise UsageError(str(e).removeprefix("cgroups: ")) from None
    return g


def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    cmd = args.command
    if cmd == "completion":
        from ._completion import run as completion

        return completion(args)
    if cmd == "devices":
        from ._cmds import cmd_devices_check

        return cmd_devices_check(args, out)
    if cmd == "self":
        from ._self import cmd_self

        return cmd_self(args, args.mountpoint)
    from ..paths import default_mountpoint

    mountpoint = args.mountpoint or default_mountpoint()
    if cmd == "export":
        from ._export import cmd_export

        return cmd_export(args, _group_path(args.root, mountpoint), mountpoint)
    if cmd == "run":
        from ._run import run_command

        argv = _after_dashes(args.cmd)
        if args.group is not None:
            for opt, v in (("--name", args.name), ("--parent", args.parent),
                           ("--keep", args.keep or None), ("--systemd", args.systemd or None)):
                if v is not None:
                    raise UsageError(f"run: --group and {opt}: --group runs in an existing group")
            args.group = _group_path(args.group, mountpoint)
        if args.parent is not None:
            if args.systemd:
                raise UsageError("run: --parent and --systemd: choose one (--slice with --systemd)")
            args.parent = _group_path(args.parent, mountpoint)
        if args.user and (args.group is not None or args.parent is not None):
            raise UsageError("run: --user makes a scope of the user's systemd manager: "
                             "not with --group or --parent")
        if args.slice is not None and not args.systemd and not args.user:
            raise UsageError("run: --slice needs --systemd")
        return run_command(args, argv, err, mountpoint=mountpoint)
    group = _group_path(args.group, mountpoint)
    if cmd == "exec":
        from ._groups import cmd_exec

        return cmd_exec(group, _after_dashes(args.cmd), mountpoint)
    if cmd == "top":
        from ._top import cmd_top

        return cmd_top(args, group, mountpoint, make_console())
    if cmd == "tree":
        from ._tree import cmd_tree

        return cmd_tree(args, group, mountpoint, make_console())
    if cmd in ("create", "set", "get", "attach", "ls"):
        from . import _groups

        return _groups.run(cmd, args, group, mountpoint, out)
    from ..manager import Manager

    m = Manager.load(group, mountpoint=mountpoint)
    if cmd == "status":
        from ._status import cmd_status

        return cmd_status(m, args, make_console())
    from . import _cmds

    if cmd == "stat":
        return _cmds.cmd_stat(m, args, out)
    if cmd == "events":
        return _cmds.cmd_events(m, args, out)
    return _cmds.cmd_simple(m, args, out)


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (after ``--mountpoint DIR``); ``""`` for
    ``--help``/``--version`` (no subcommand needed); ``None`` where the whole parser is
    needed (any other option first, e.g. an abbreviation of ``--mountpoint``)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--mountpoint":
            i += 2
        elif word.startswith("--mountpoint="):
            i += 1
        elif word in ("-h", "--help", "--version"):
            return ""  # answered by the top-level parser: no subcommand's arguments needed
        elif word.startswith("-"):
            return None
        else:
            return word
    return None


def _after_dashes(cmd: Sequence[str]) -> list[str]:
    """The command after ``--`` (argparse's REMAINDER keeps the ``--``)."""
    argv = list(cmd)
    return argv[1:] if argv and argv[0] == "--" else argv


def _message(e: BaseException) -> str:
    """The error as one line, control characters shown escaped (a group name or a value
    in it may hold any byte)."""
    from ._text import printable

    text = str(e).removeprefix("cgroups: ")
    return printable(" ".join(text.split("\n")))


def _os_message(e: OSError) -> str:
    """A system error as one line."""
    if e.strerror is None:
        return _message(e)
    name = "" if e.filename is None else f": {e.filename}"
    return _message(OSError(f"{e.strerror}{name}"))


def _limit_hint(e: BaseException) -> str:
    """For EMFILE, the limit that was met (a low ``ulimit -n``), else nothing."""
    if getattr(e, "errno", None) != errno.EMFILE:
        return ""
    import resource  # only here: an error path

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return f" (this process may have {soft} open files: raise ulimit -n)"


#: The packages the command imports that are not in the standard library: module -> name
#: to install.
_DEPENDENCIES = {"rich": "rich", "jeepney": "jeepney"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    # On a pipe or file, lines are never wrapped or cut (a terminal gets its own width);
    # the Consoles are made when a command prints through rich (plain lines go to .file).
    out = LazyConsole()
    err = LazyConsole(stderr=True)
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        only = _command_word(words)
        try:
            args = build_parser(only=only, lite=True).parse_args(words)
        except Fallback:  # help, an error, or a form the small parser leaves to argparse
            args = build_parser(only=only).parse_args(words)
        return _dispatch(args, out, err)
    except (UsageError, InvalidGroupPathError) as e:
        # a group path or name that cannot be one is an error of the command line
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return e.status
    except CgroupError as e:
        print(f"{PROG}: error: {_message(e)}{_limit_hint(e)}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        # a source tree run without its dependencies (rich, jeepney): say which, in a line
        top = (e.name or "").partition(".")[0]
        if top not in _DEPENDENCIES:
            raise
        print(
            f"{PROG}: error: this command needs the Python package {_DEPENDENCIES[top]!r}, "
            f"which is not installed (pip install {_DEPENDENCIES[top]}, or install cgroup2 "
            f"with pip, which brings it)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `cgroup2 tree | head`): quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:  # e.g. EMFILE under a low `ulimit -n`: one line, no traceback
        print(f"{PROG}: error: {_os_message(e)}{_limit_hint(e)}", file=sys.stderr)
        return 1


def script() -> NoReturn:
    """The installed command (``bin/cgroup2``) and ``python -m cgroup2``: :func:`main`,
    then the exit, without tearing the interpreter down.

    Freeing every module at exit takes more instructions than a short command's own work
    (``cgroup2 run -- true``: about an eighth of them). What the normal exit does that
    matters is done here: the ``atexit`` functions run, standard output and error are
    flushed (a failed flush gives status 120, as Python's own exit does). While a thread
    that is not a daemon still runs, the normal exit (which waits for it) is taken.
    """
    try:
        status = main()
    except SystemExit as e:  # argparse's help and version, and its errors
        code = e.code
        if code is None:
            status = 0
        elif isinstance(code, int):
            status = code
        else:
            print(code, file=sys.stderr)
            status = 1
    threading = sys.modules.get("threading")
    if threading is not None and any(
        t.is_alive() and not t.daemon and t is not threading.main_thread()
        for t in threading.enumerate()
    ):
        sys.exit(status)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120
    os._exit(status & 0xFF)
