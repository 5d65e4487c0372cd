"""The small commands: stat, events, freeze, thaw, kill, rm, devices check."""

from __future__ import annotations

import errno
import time

from .. import _sig
from .._fs import Dir
from ..errors import (
    CgroupError,
    KernelError,
    MemoryNotSupportedError,
    MountPointError,
)
from ._limits import Failure
from ._text import printable
from ._units import (
    UsageError,
    parse_count,
    parse_device,
    parse_rules,
    parse_signal,
    parse_timeout,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # rich, json, the manager: imported where used (the parser is built
    # from this module's add_parser on the command's start)
    import argparse
    from typing import Any

    from rich.console import Console
    from rich.tree import Tree

    from ..manager import Manager
    from ..pressure import PressureTrigger
    from ._lite import Subparsers

__all__ = [
    "add_parser",
    "cmd_devices_check",
    "cmd_events",
    "cmd_simple",
    "cmd_stat",
    "event_line",
    "frozen_ancestors",
    "signal_group",
    "stat_tree",
]

# --- the command line --------------------------------------------------------------------

_DESCRIPTIONS = {
    "stat": "Read the group's statistics once (cpu.stat, memory.current and "
    "memory.stat, io.stat, pids, hugetlb, rdma, misc, the pressure files: those of its "
    "controllers) and print them: as a tree of names and values with units, as JSON "
    "(containerd's v2 metrics names) or in the Prometheus text format.",
    "events": "Print a line each time a counter of the group's memory.events changes "
    "(low, high, max, oom, oom_kill...; cgroup.events where the group has no memory "
    "controller), until the group is removed or --count events were printed. With "
    "--pressure, a line each time one of the PSI triggers fires instead.",
    "freeze": "Write 1 to the group's cgroup.freeze and wait until cgroup.events says "
    "frozen 1; the groups below are frozen with it. If it is not frozen within --timeout "
    "seconds, it is thawed again and the command fails. The root of the mount is "
    "never frozen.",
    "thaw": "Write 0 to the group's cgroup.freeze and wait until it is no longer frozen. A "
    "group that stays frozen because a group above it is frozen is an error that "
    "names that group.",
    "kill": "Write 1 to the group's cgroup.kill (SIGKILL to every process of the group and "
    "of the groups below) and wait until it is empty, for --timeout seconds at most. "
    "With --signal, send that signal to each process instead, without waiting. The "
    "root of the mount is never killed.",
    "rm": "Remove the group and every group below it, deepest first. A group that still "
    "has processes is refused unless --kill, which kills them first. The root of the "
    "mount is never removed.",
    "devices": "Device rules without a group: 'devices check' says whether a rule "
    "list (as --device takes them) allows an access, through the eBPF program the "
    "rules make, run in an emulator.",
}


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``name`` (stat, events, freeze, thaw, kill, rm, devices) with
    its arguments; ``help`` is its line in the list of commands."""
    p = sub.add_parser(name, help=help, description=_DESCRIPTIONS[name])
    if name == "devices":
        _devices_arguments(p)
        return
    p.add_argument("group", metavar="GROUP")
    if name == "stat":
        fmt = p.add_mutually_exclusive_group()
        fmt.add_argument("--json", action="store_true", help="Metrics.to_dict() as JSON")
        fmt.add_argument("--prometheus", action="store_true", help="Prometheus text format")
        p.add_argument("--pretty", action="store_true", help="indent the JSON")
    elif name == "events":
        _events_arguments(p)
    elif name == "rm":
        p.add_argument("--kill", action="store_true", help="kill its processes first")
        p.add_argument(
            "-r", "--recursive", action="store_true",
            help="the groups below it too (what rm always does; for scripts that say so)",
        )
    else:
        _wait_arguments(p, name)


def _events_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--initial", action="store_true", help="print the counts at the start")
    p.add_argument(
        "--count", type=lambda v: parse_count(v, "--count"), metavar="N",
        help="exit after N events",
    )
    p.add_argument(
        "--cgroup", action="store_true",
        help="populated/frozen changes (cgroup.events; needs no controller)",
    )
    p.add_argument(
        "--pressure", action="append", type=_trigger, metavar="TRIGGER",
        help="PSI trigger firings instead: RESOURCE:KIND:STALL:WINDOW, e.g. "
        "memory:some:300ms:2s (repeatable; until the group is removed)",
    )


def _trigger(text: str) -> PressureTrigger:
    """``events --pressure``: a PSI trigger (cli/_pressure, imported when used)."""
    from ._pressure import parse_trigger

    return parse_trigger(text)


def _wait_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """freeze, thaw, kill: the commands that wait for the group."""
    p.add_argument(
        "--timeout", type=parse_timeout, default=10.0, metavar="SEC",
        help="how long to wait (default 10); a number of seconds",
    )
    if name in ("freeze", "kill"):
        p.add_argument(
            "--force", action="store_true",
            help=f"{name} GROUP even if this command runs in it or below it (refused "
            f"otherwise: it would {name} itself)",
        )
    if name == "kill":
        p.add_argument(
            "-s", "--signal", type=parse_signal, metavar="SIG",
            help="send SIG (TERM, HUP, 15...) to every process of the group and below "
            "instead of SIGKILL; does not wait",
        )


def _devices_arguments(p: argparse.ArgumentParser) -> None:
    """``devices`` has subcommands of its own: ``check``."""
    dsub = p.add_subparsers(dest="devices_command", metavar="COMMAND", parser_class=type(p))
    dsub.required = True
    dc = dsub.add_parser(
        "check",
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


# --- running them ------------------------------------------------------------------------


def _add(node: Tree, key: str, value: Any) -> None:
    from rich.text import Text

    if isinstance(value, dict):
        sub = node.add(Text(printable(key), style="bold"))
        for k, v in value.items():
            _add(sub, str(k), v)
    elif isinstance(value, list):
        sub = node.add(Text(printable(key), style="bold"))
        for i, v in enumerate(value):
            _add(sub, str(i), v)
    else:
        node.add(Text.assemble(printable(key), " ", (printable(str(value)), "cyan")))


def stat_tree(group: str, d: dict[str, Any]) -> Tree:
    """The statistics as a tree of ``key value`` lines (the keys of ``Metrics.to_dict()``);
    names and values shown through :func:`printable`, as plain text."""
    from rich.text import Text
    from rich.tree import Tree

    t = Tree(Text(printable(group), style="bold"), guide_style="dim")
    for k, v in d.items():
        _add(t, k, v)
    return t


def cmd_stat(m: Manager, args: argparse.Namespace, out: Console) -> int:
    metrics = m.stat()
    if args.json:
        out.file.write(metrics.to_json(indent=2 if args.pretty else None) + "\n")
    elif args.prometheus:
        from ..stats import prometheus_text

        out.file.write(prometheus_text(metrics, group=m.group))
    else:
        from ._human import stat_view

        out.print(stat_view(m, metrics))
    return 0


def event_line(stamp: str, group: str, fields: dict[str, Any]) -> str:
    """One line of ``cgroup2 events`` (text form): time, group (escaped), ``key=value``."""
    return f"{stamp} {printable(group)} " + " ".join(f"{k}={v}" for k, v in fields.items())


def cmd_events(m: Manager, args: argparse.Namespace, out: Console) -> int:
    """Memory events (``memory.events``), or with ``--cgroup`` the populated/frozen
    changes of ``cgroup.events``, until the group empties (or ``--count`` events)."""
    import json

    from ..events import CgroupEvents, CgroupEventStream, EventStream

    if args.pressure:
        return _pressure_events(m, args, out)
    n = 0
    try:
        stream: EventStream | CgroupEventStream = (
            CgroupEventStream(m.path, initial=args.initial, mountpoint=m.mountpoint)
            if args.cgroup
            else EventStream(m.path, initial=args.initial, mountpoint=m.mountpoint)
        )
    except MemoryNotSupportedError as e:
        from .._v1 import bound_sentence

        where = bound_sentence(["memory"])  # a hybrid host: memory is on cgroup v1
        raise MemoryNotSupportedError(
            (f"cgroups: {where}" if where else str(e))
            + " ('cgroup2 events --cgroup' follows populated/frozen without it)"
        ) from None
    with stream:
        for ev in stream:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            fields: dict[str, Any]
            if isinstance(ev, CgroupEvents):
                fields = {"populated": ev.populated, "frozen": ev.frozen}
            else:
                fields = {
                    "low": ev.low,
                    "high": ev.high,
                    "max": ev.max,
                    "oom": ev.oom,
                    "oom_kill": ev.oom_kill,
                    "oom_group_kill": ev.oom_group_kill,
                }
            if args.json:
                line = json.dumps({"time": stamp, "group": m.group, **fields})
            else:
                shown = {k: int(v) if isinstance(v, bool) else v for k, v in fields.items()}
                line = event_line(stamp, m.group, shown)
            out.file.write(line + "\n")
            out.file.flush()
            n += 1
            if args.count is not None and n >= args.count:
                break
    return 0


def _pressure_events(m: Manager, args: argparse.Namespace, out: Console) -> int:
    """``events --pressure``: a line per firing of a PSI trigger (the averages of the
    trigger's kind read when it fired), until the group is removed or ``--count``."""
    import json

    from ..events import PressureEventStream

    if args.cgroup:
        raise UsageError("events: --pressure and --cgroup are different streams; give one")
    n = 0
    with PressureEventStream(
        m.path, *args.pressure, initial=args.initial, mountpoint=m.mountpoint
    ) as stream:
        for ev in stream:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            fields: dict[str, Any] = {
                "trigger": str(ev.trigger),
                "avg10": ev.avg10,
                "avg60": ev.avg60,
                "total": ev.total,
            }
            if args.json:
                line = json.dumps({"time": stamp, "group": m.group, **fields})
            else:
                shown = {**fields, "avg10": f"{ev.avg10:.2f}", "avg60": f"{ev.avg60:.2f}"}
                line = event_line(stamp, m.group, shown)
            out.file.write(line + "\n")
            out.file.flush()
            n += 1
            if args.count is not None and n >= args.count:
                break
    return 0


def signal_group(m: Manager, sig: int) -> int:
    """Send ``sig`` to every process of the group and below; the number signalled.

    Refuses the root group and a mount point, as ``kill`` does. Never this process or
    PID 1. Each pid is held as a pidfd and signalled through it only if a second read of
    the subtree still lists it (a pid reused meanwhile by another process is not hit).
    """
    from ..manager import signal_subtree

    if m.group == "/":
        raise MountPointError(
            f"cgroups: refusing to signal the root group {m.path} (it holds every process "
            f"and group of the mount)",
            path=m.path,
        )
    with Dir.open(m.path, m.mountpoint) as d:
        d.refuse_mount_root("signal")
        return signal_subtree(d, sig)[1]


def frozen_ancestors(m: Manager) -> list[str]:
    """The groups above ``m`` (below the mount's root) whose own ``cgroup.freeze`` is 1."""
    parts = m.group.split("/")[1:-1]
    out = []
    for i in range(1, len(parts) + 1):
        group = "/" + "/".join(parts[:i])
        with Dir.open(m.mountpoint.rstrip("/") + group, m.mountpoint) as d:
            data = d.try_read("cgroup.freeze")
        if data is not None and data.strip() == b"1":
            out.append(group)
    return out


def _thaw(m: Manager, timeout: float) -> None:
    """Thaw; under a frozen parent, clear the group's own freeze and say why it stays
    frozen instead of waiting for a thaw that cannot come."""
    above = frozen_ancestors(m) if m.group != "/" else []
    if not above:
        m.thaw(timeout=timeout)
        return
    try:
        m.thaw(timeout=0)  # writes cgroup.freeze 0; the group stays frozen meanwhile
    except CgroupError as e:
        if type(e) is not CgroupError:
            raise  # not the "did not complete" of the wait
    names = ", ".join(printable(g) for g in above)
    raise Failure(
        f"{printable(m.group)} stays frozen: its parent group {names} is frozen "
        f"(cgroup.freeze 1); its own freeze was cleared, so it thaws with "
        f"'cgroup2 thaw {printable(above[0])}'"
    )


def cmd_simple(m: Manager, args: argparse.Namespace, out: Console) -> int:
    try:
        return _simple(m, args)
    except CgroupError as e:
        text = str(e)
        tail = " (allow_self=True to do it anyway)"
        if type(e) is CgroupError and text.endswith(tail):  # the caller's own group
            text = text.removesuffix(tail)
            if args.command in ("freeze", "kill"):
                text += " (--force to do it anyway)"
            raise Failure(text) from None
        raise


def _simple(m: Manager, args: argparse.Namespace) -> int:
    if args.command == "freeze":
        m.freeze(timeout=args.timeout, allow_self=args.force)
    elif args.command == "thaw":
        _thaw(m, args.timeout)
    elif args.command == "kill":
        if args.signal is None or args.signal == _sig.SIGKILL:
            m.kill(timeout=args.timeout, allow_self=args.force)
        else:
            signal_group(m, args.signal)
    elif args.command == "rm":
        if not args.kill and m.procs(recursive=True):
            raise CgroupError(
                f"{printable(m.group)} still has processes; use rm --kill to kill them"
            )
        try:
            m.delete(kill=args.kill)
        except KernelError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                raise
            raise Failure(_rm_refused(m, e)) from None
    return 0


def _rm_refused(m: Manager, e: KernelError) -> str:
    """What a refused ``rmdir`` of a group means, and what to do."""
    import os

    parent = os.path.dirname(m.path if e.path is None else e.path.rstrip("/"))
    try:
        owner = f", owned by uid {os.stat(parent).st_uid}"
    except OSError:
        owner = ""
    return (
        f"cannot remove {printable(m.group)}: permission denied. Removing a group needs write "
        f"access to the directory of the group above it ({printable(parent)}{owner}): run "
        f"as root, or as the owner of a group delegated to you"
    )


def cmd_devices_check(args: argparse.Namespace, out: Console) -> int:
    from ..devices import ProgramEmulator, device_filter

    rules = parse_rules(args.rules)
    typ, major, minor, access = parse_device(args.device)
    try:
        program, _ = device_filter(rules)
    except CgroupError as e:  # a rule v1 would not apply: the input is wrong
        raise UsageError(str(e).removeprefix("cgroups: ")) from None
    allowed = ProgramEmulator(program).allows(typ, major, minor, access)
    out.file.write(("allow" if allowed else "deny") + "\n")
    return 0 if allowed else 1
