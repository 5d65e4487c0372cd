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
from ._lite import Fallback, LiteParser
from ._units import Failure, UsageError

# Start-up matters (scripts call get/set in loops; runners start many short commands):
# the modules a subcommand needs, rich among them, are imported where it runs, typing is
# not imported at all, and argparse only where the small parser of _lite hands a command
# line over (benchmarks/startup.py, tests/unit/test_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, NoReturn

    from rich.console import Console

__all__ = ["main"]

PROG = "cgroup2"


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


#: The subcommands, in the order the help lists them: name, the line that lists it, and
#: the module of this package that runs it, whose ``add_parser(sub, name, help)`` adds it
#: with its arguments. Only the subcommand run is imported for that (start-up).
COMMANDS = (
    ("run", "run a command in a new group under limits", "_run"),
    ("create", "make a group and apply limits (like cgcreate)", "_groups"),
    ("set", "change limits of a group (like cgset)", "_groups"),
    ("get", "values of a group's files (like cgget)", "_groups"),
    ("attach", "move processes into a group (like cgclassify)", "_groups"),
    ("exec", "run a command in an existing group (like cgexec)", "_groups"),
    ("ls", "list groups (like lscgroup)", "_groups"),
    ("status", "a group at a glance (like systemctl status)", "_status"),
    ("stat", "a group's statistics", "_cmds"),
    ("top", "groups by CPU, memory, IO and tasks, refreshed", "_top"),
    ("tree", "groups and their processes", "_tree"),
    ("events", "stream a group's memory events (or cgroup.events)", "_cmds"),
    ("freeze", "freeze a group (cgroup.freeze), wait until frozen", "_cmds"),
    ("thaw", "thaw a frozen group", "_cmds"),
    ("kill", "SIGKILL every process of a group (cgroup.kill), or send --signal", "_cmds"),
    ("rm", "remove a group and the groups below it", "_cmds"),
    ("devices", "device rules", "_cmds"),
    ("self", "this process's group, the limits that bind it, usable CPUs and memory", "_self"),
    ("export", "a Prometheus exporter: every group under a root on /metrics", "_export"),
    ("completion", "print a shell completion script (bash, zsh, fish)", "_completion"),
)


def _module(name: str) -> Any:
    """The module ``cgroup2.cli.<name>``, imported (by ``__import__``: importlib itself is
    not imported on the command's start)."""
    return __import__(f"{__name__}.{name}", fromlist=["add_parser"])


def build_parser(only: str | None = None, *, lite: bool = False) -> argparse.ArgumentParser:
    """The command's parser. With ``only``, every subcommand is there (its name and help)
    but only the subcommand ``only`` has its arguments: what parsing a command line that
    runs ``only`` needs, at a part of the cost. With ``lite``, the same arguments in a
    :class:`~cgroup2.cli._lite.LiteParser`, which parses without argparse or raises
    :class:`~cgroup2.cli._lite.Fallback` (help, errors, rarer forms)."""
    parser_class: Any = LiteParser if lite else _parser_class()
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
    for name, help, module in COMMANDS:
        if only is None or only == name:
            _module(module).add_parser(sub, name, help)
        else:  # listed with its help; its module is not imported
            sub.add_parser(name, help=help, add_help=False)
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
        only = _command_word(words) if words else ""  # no words: no subcommand's arguments
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
