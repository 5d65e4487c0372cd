"""The small commands: stat, events, freeze, thaw, kill, rm, devices check."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..devices import ProgramEmulator, device_filter
from ..errors import CgroupError
from ..events import EventStream
from ..manager import Manager
from ..stats import prometheus_text
from ._text import printable
from ._units import parse_device, parse_rules

__all__ = [
    "cmd_devices_check",
    "cmd_events",
    "cmd_simple",
    "cmd_stat",
    "event_line",
    "stat_tree",
]


def _add(node: Tree, key: str, value: Any) -> None:
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
    t = Tree(Text(printable(group), style="bold"), guide_style="dim")
    for k, v in d.items():
        _add(t, k, v)
    return t


def cmd_stat(m: Manager, args: argparse.Namespace, out: Console) -> int:
    metrics = m.stat()
    if args.json:
        out.file.write(metrics.to_json(indent=2 if args.pretty else None) + "\n")
    elif args.prometheus:
        out.file.write(prometheus_text(metrics, group=m.group))
    else:
        out.print(stat_tree(m.group, metrics.to_dict()))
    return 0


def event_line(stamp: str, group: str, fields: dict[str, Any]) -> str:
    """One line of ``cgroup2 events`` (text form): time, group (escaped), ``key=value``."""
    return f"{stamp} {printable(group)} " + " ".join(f"{k}={v}" for k, v in fields.items())


def cmd_events(m: Manager, args: argparse.Namespace, out: Console) -> int:
    n = 0
    with EventStream(m.path, initial=args.initial) as stream:
        for ev in stream:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
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
                line = event_line(stamp, m.group, fields)
            out.file.write(line + "\n")
            out.file.flush()
            n += 1
            if args.count is not None and n >= args.count:
                break
    return 0


def cmd_simple(m: Manager, args: argparse.Namespace, out: Console) -> int:
    if args.command == "freeze":
        m.freeze(timeout=args.timeout)
    elif args.command == "thaw":
        m.thaw(timeout=args.timeout)
    elif args.command == "kill":
        m.kill(timeout=args.timeout)
    elif args.command == "rm":
        if not args.kill and m.procs(recursive=True):
            raise CgroupError(
                f"{printable(m.group)} still has processes; use rm --kill to kill them"
            )
        m.delete(kill=args.kill)
    return 0


def cmd_devices_check(args: argparse.Namespace, out: Console) -> int:
    rules = parse_rules(args.rules)
    typ, major, minor, access = parse_device(args.device)
    program, _ = device_filter(rules)
    allowed = ProgramEmulator(program).allows(typ, major, minor, access)
    out.file.write(("allow" if allowed else "deny") + "\n")
    return 0 if allowed else 1
