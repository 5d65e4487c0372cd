"""``cgroup2 status``: one group at a glance, as ``systemctl status`` shows a unit.

Path, state (populated, frozen, type), tasks, CPU time, memory, IO, pressure, the limit
files that differ from the kernel's defaults, the device rules read back from the group's
eBPF program, and the processes of the group and below with their command lines (cut to
the terminal's width; ``-l`` for full ones).
"""

from __future__ import annotations

import errno
import os

from .._fs import Dir, walk
from ..errors import CgroupDeletedError, CgroupError
from ._groups import limit_files
from ._text import printable
from ._units import format_bytes, format_limit, format_usec, limit_line, parse_count

TYPE_CHECKING = False
if TYPE_CHECKING:  # rich and the statistics: imported where used (the parser is built
    # from this module's add_parser on the command's start)
    import argparse
    from typing import Any

    from rich.console import Console, RenderableType

    from ..manager import Manager
    from ..stats import Metrics, StatMask
    from ._lite import Subparsers

__all__ = ["add_parser", "cmd_status", "device_lines", "is_default", "set_limits"]


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``status`` with its arguments."""
    p = sub.add_parser(
        name,
        help=help,
        description=(
            "Path, state, tasks, CPU time, memory, IO, pressure, the limits that are set, "
            "the device rules of the group's eBPF program, and the processes of the group "
            "and below with their command lines (the first 20, each cut to the terminal's "
            "width, unless --full or -n)."
        ),
    )
    p.add_argument("group", metavar="GROUP")
    p.add_argument(
        "-l", "--full", action="store_true",
        help="command lines in full (on a terminal they are cut to its width) and every "
        "process",
    )
    p.add_argument(
        "-n", "--lines", type=lambda v: parse_count(v, "--lines"), metavar="N",
        help="list at most N processes (default 20; with --full, all)",
    )
    p.add_argument("--no-procs", action="store_true", help="leave out the processes")


def _mask() -> StatMask:
    """What ``status`` reads of the statistics."""
    from ..stats import StatMask

    return (
        StatMask.PIDS
        | StatMask.CPU
        | StatMask.MEMORY_USAGE
        | StatMask.MEMORY_EVENTS
        | StatMask.IO
        | StatMask.PSI
    )

#: The kernel's default text of limit files whose default is not ``max`` or empty.
DEFAULTS = {
    "cgroup.pressure": "1",
    "cpu.weight": "100",
    "cpu.weight.nice": "0",
    "cpu.max": "max 100000",
    "cpu.max.burst": "0",
    "cpu.idle": "0",
    "cpu.uclamp.min": "0.00",
    "cpu.uclamp.max": "max",
    "cpuset.cpus.partition": "member",
    "memory.low": "0",
    "memory.min": "0",
    "memory.oom.group": "0",
    "memory.zswap.writeback": "1",
    "io.weight": "default 100",
    "io.bfq.weight": "default 100",
    "io.prio.class": "no-change",
}


def is_default(name: str, line: str) -> bool:
    """Whether one line of limit file ``name`` is what the kernel has when nothing is set:
    its default text, ``max`` or empty; a keyed line whose values are all ``max``
    (``io.max``, ``misc.max``, ``rdma.max``); a huge page limit just below 2**63."""
    if name in DEFAULTS:
        return line == DEFAULTS[name]
    if line in ("", "max"):
        return True
    words = line.split()
    if len(words) > 1 and all(w == "max" or w.endswith("=max") for w in words[1:]):
        return True
    return name.startswith("hugetlb.") and line.isdigit() and int(line) >= 2**62


def set_limits(d: Dir) -> list[tuple[str, str]]:
    """(file, line) of every limit file line of the group that is not the default."""
    out = []
    for name in limit_files(d):
        data = d.try_read(name)
        if data is None:
            continue
        for line in data.decode("utf-8", "surrogateescape").splitlines():
            if not is_default(name, line.strip()):
                out.append((name, line.strip()))
    return out


def device_lines(d: Dir) -> list[str]:
    """The device rules of the group's own eBPF programs, read back through the emulator;
    a program not made by cgroup2 is named, not read."""
    try:
        from ..devices.bpf import (
            PROG_NAME,
            attached_programs,
            prog_fd_by_id,
            program_instructions,
        )
        from ._devrules import rules_of_program

        progs = attached_programs(d.fd)
    except CgroupError as e:
        return [f"- (cannot query the device programs: {printable(str(e))})"]
    if not progs:
        return ["not controlled here (no device program on this group)"]
    lines = []
    for p in progs:
        if p.name != PROG_NAME:
            lines.append(
                f"a program not from cgroup2 is attached: {printable(p.name) or '(no name)'} "
                f"(id {p.id}); its rules are not read"
            )
            continue
        fd = prog_fd_by_id(p.id)
        if fd is None:
            continue  # detached meanwhile
        try:
            code = program_instructions(fd)
        except CgroupError as e:
            lines.append(f"program {p.id}: cannot read its instructions ({printable(str(e))})")
            continue
        finally:
            os.close(fd)
        rules = rules_of_program(code) if code else None
        if rules is None:
            lines.append(f"program {PROG_NAME} (id {p.id}): its rules cannot be read back")
        else:
            lines.append("; ".join(str(r) for r in rules) + f"  (eBPF program id {p.id})")
    return lines


def _counts(d: Dir) -> tuple[int, int]:
    """(processes, threads) of the group and below."""
    procs = threads = 0
    for _, g, _, _ in walk(d):
        try:
            procs += len(g.read("cgroup.procs").split())
            threads += len(g.read("cgroup.threads").split())
        except CgroupError as e:
            if isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV):
                continue
            if e.errno == errno.EOPNOTSUPP:  # cgroup.procs of a threaded group
                continue
            raise
    return procs, threads


def _rows(m: Manager, d: Dir, metrics: Metrics) -> list[tuple[str, str]]:
    from ._human import group_state, psi_text

    rows: list[tuple[str, str]] = [("Path", printable(m.path))]
    kind = d.try_read("cgroup.type")
    state = group_state(d)
    if kind is not None:
        state += f" (type {printable(kind.decode().strip())})"
    rows.append(("State", state))
    procs, threads = _counts(d)
    pids = metrics.pids
    tasks = f"{procs} process{'es' if procs != 1 else ''}, {threads} thread"
    tasks += "s" if threads != 1 else ""
    if pids is not None and pids.current is not None:
        lim = pids.limit
        tasks += f"; pids.current {pids.current}, pids.max "
        tasks += "max" if lim is None or lim >= 2**63 else str(lim)
    rows.append(("Tasks", tasks))
    cpu = metrics.cpu
    if cpu is not None and cpu.usage_usec is not None:
        text = (
            f"{format_usec(cpu.usage_usec)} (user {format_usec(cpu.user_usec)}, "
            f"system {format_usec(cpu.system_usec)})"
        )
        if cpu.nr_periods is not None:
            text += (
                f"; throttled {cpu.nr_throttled} of {cpu.nr_periods} periods, "
                f"{format_usec(cpu.throttled_usec)}"
            )
        rows.append(("CPU", text))
    mem = metrics.memory
    if mem is not None and mem.usage is not None:
        text = f"{format_bytes(mem.usage)}"
        extra = []
        if mem.max_usage is not None:
            extra.append(f"peak {format_bytes(mem.max_usage)}")
        extra.append(f"max {format_limit(mem.usage_limit)}")
        text += f" ({', '.join(extra)})"
        if mem.swap_usage is not None:
            text += f"; swap {format_bytes(mem.swap_usage)} (max {format_limit(mem.swap_limit)})"
        ev = metrics.memory_events
        if ev is not None and (ev.oom_kill or ev.max or ev.high):
            text += f"; events: max {ev.max}, high {ev.high}, oom_kill {ev.oom_kill}"
        rows.append(("Memory", text))
    else:
        rows.append(("Memory", "- (no memory controller)"))
    rows.extend(_v1_rows(m, d, "memory" if mem is None or mem.usage is None else ""))
    io = metrics.io
    if io is not None and io.usage is not None:
        rb = sum(e.rbytes or 0 for e in io.usage)
        wb = sum(e.wbytes or 0 for e in io.usage)
        ops = sum((e.rios or 0) + (e.wios or 0) for e in io.usage)
        rows.append(("IO", f"read {format_bytes(rb)}, write {format_bytes(wb)} ({ops} ops)"))
    for name, psi in (
        ("cpu", cpu.psi if cpu else None),
        ("memory", mem.psi if mem else None),
        ("io", io.psi if io else None),
    ):
        if psi is not None and psi.some is not None:
            some: dict[str, Any] = {
                "avg10": psi.some.avg10, "avg60": psi.some.avg60,
                "avg300": psi.some.avg300, "total": psi.some.total,
            }
            rows.append(("Pressure" if name == "cpu" else "", f"{name} some {psi_text(some)}"))
    limits = set_limits(d)
    if limits:
        for i, (name, line) in enumerate(limits):
            shown = printable(limit_line(name, line))
            rows.append(("Limits" if i == 0 else "", f"{printable(name)} {shown}"))
    else:
        rows.append(("Limits", "none set (every limit file has the kernel's default)"))
    if m.group != "/":
        for i, line in enumerate(device_lines(d)):
            rows.append(("Devices" if i == 0 else "", line))
    return rows


def _v1_rows(m: Manager, d: Dir, memory: str) -> list[tuple[str, str]]:
    """Usage and limits of the controllers bound to cgroup v1 (a hybrid host), read-only,
    from the v1 groups of the group's first process (v1 groups are not the v2 group's:
    its processes say where they are in each hierarchy)."""
    from .._v1 import hierarchies, of_process

    offered = (d.try_read("cgroup.controllers") or b"").decode().split()
    wanted = tuple(c for c in ("memory", "cpu", "cpuset", "pids")
                   if c not in offered and (c != "memory" or memory))
    hs = hierarchies()
    wanted = tuple(c for c in wanted if c in hs)
    if not wanted:
        return []
    pids = [p for p in (d.try_read("cgroup.procs") or b"").split() if p.isdigit()]
    if not pids:
        return [("cgroup v1", f"{', '.join(wanted)}: bound to cgroup v1; the group has no "
                 f"process to tell its v1 groups")]
    found = of_process(int(pids[0]), wanted)
    rows: list[tuple[str, str]] = []
    for c in wanted:
        if c not in found:
            continue
        path, f = found[c]

        def val(name: str, f: dict[str, bytes] = f) -> str:
            v = f.get(name, b"-").split()
            return v[0].decode() if v else "-"

        if c == "memory":
            use, lim = val("memory.current"), val("memory.max")
            text = (f"{format_bytes(int(use)) if use.isdigit() else use} (limit "
                    f"{format_bytes(int(lim)) if lim.isdigit() else lim})")
        elif c == "cpu":
            q = f.get("cpu.max", b"max").split()
            text = "cfs quota max" if not q or q[0] == b"max" else (
                f"cfs quota {int(q[0]) / int(q[1]):g} CPUs")
        elif c == "cpuset":
            text = f"cpus {val('cpuset.cpus.effective')}"
        else:
            text = f"pids.current {val('pids.current')}, pids.max {val('pids.max')}"
        rows.append((f"{c} (v1)", f"{text} — {printable(path)}, read-only"))
    return rows


#: Processes ``status`` lists unless told (``-n N``, ``--full``).
MAX_PROCS = 20


def status_view(
    m: Manager, *, procs: bool = True, shorten: bool = True, max_procs: int | None = MAX_PROCS
) -> RenderableType:
    """The status of ``m``: a title, aligned ``Label: text`` lines, then the processes."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    with Dir.open(m.path, m.mountpoint) as d:
        metrics = m.stat(_mask())
        rows = _rows(m, d, metrics)
    parts: list[RenderableType] = [Text("● " + printable(m.group), style="bold")]
    width = max(len(label) for label, _ in rows) + 1
    for label, text in rows:
        # one grid a line: the text wraps under itself, and no line is padded to the
        # width of the longest
        t = Table.grid(padding=(0, 1))
        t.add_column(justify="right", style="bold", no_wrap=True, width=width)
        t.add_column(overflow="fold")
        t.add_row(f"{label}:" if label else "", Text(text))
        parts.append(t)
    if procs:
        from ._tree import build_tree

        parts.append(Text("Processes:", style="bold"))
        parts.append(
            build_tree(m.path, m.group, shorten=shorten, mount=m.mountpoint, max_procs=max_procs)
        )
    return Group(*parts)


def cmd_status(m: Manager, args: argparse.Namespace, out: Console) -> int:
    limit = args.lines if args.lines is not None else None if args.full else MAX_PROCS
    out.print(
        status_view(
            m, procs=not args.no_procs, shorten=out.is_terminal and not args.full,
            max_procs=limit,
        )
    )
    return 0
