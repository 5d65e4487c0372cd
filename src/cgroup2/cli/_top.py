"""``cgroup2 top``: groups by CPU, memory, IO and tasks, refreshed (like systemd-cgtop).

On a terminal a live table (the last frame stays on the screen after ``-n N`` frames);
with ``-b/--batch``, and whenever the output is not a terminal, every frame printed as
plain text with a blank line between frames (``systemd-cgtop -b``); ``--json`` one JSON
object a frame, a line each.

One :class:`cgroup2.Sampler` holds the tree from the group down (following groups made
and removed meanwhile) and, per refresh and group, re-reads ``cgroup.procs``, ``cpu.stat``
(a core file, always there), ``memory.current`` (memory controller) and ``io.stat`` (io
controller) with one ``pread`` each on descriptors kept open. Rates (CPU %, IO bytes/s)
are the difference of two samples divided by the time between them.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass

from ..errors import CgroupDeletedError, CgroupError
from ._text import printable
from ._units import (
    MIN_INTERVAL,
    UsageError,
    format_bytes,
    parse_count,
    parse_int,
    parse_interval,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # rich, json, the sampler: imported where used (the parser is built
    # from this module's add_parser on the command's start)
    import argparse
    from collections.abc import Callable, Iterator

    from rich.console import Console, RenderableType

    from ..sampler import Sampler
    from ._lite import Subparsers

__all__ = [
    "SORT_KEYS",
    "GroupSample",
    "Row",
    "add_parser",
    "cmd_top",
    "frame_json",
    "rows",
    "sample",
    "sampler",
    "table",
]

SORT_KEYS = ("cpu", "memory", "io", "tasks", "name")
#: The widest the Group column gets; longer names fold onto further lines.
GROUP_WIDTH = 120


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``top`` with its arguments."""
    t = sub.add_parser(
        name,
        help=help,
        description=(
            "On a terminal, a live table; with -b/--batch (and whenever the output is not "
            "a terminal) every frame is printed as plain text, one after another with a "
            "blank line between them; --json prints one JSON object a frame, a line each. "
            "In the live table, q quits (as ^C does)."
        ),
    )
    t.add_argument("group", metavar="GROUP", nargs="?", default="/", help="subtree (default /)")
    t.add_argument(
        "--sort", choices=SORT_KEYS, default="cpu",
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
    fmt = t.add_mutually_exclusive_group()
    fmt.add_argument("-b", "--batch", action="store_true", help="every frame as plain text")
    fmt.add_argument("--json", action="store_true", help="one JSON object a frame")


@dataclass(frozen=True, slots=True)
class GroupSample:
    """One group at one moment. ``tasks`` counts processes here and below."""

    group: str
    tasks: int
    cpu_usec: int | None
    memory: int | None
    read_bytes: int | None
    write_bytes: int | None


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: rates between two samples."""

    group: str
    tasks: int
    cpu_percent: float | None
    memory: int | None
    read_rate: float | None
    write_rate: float | None

    @property
    def io_rate(self) -> float | None:
        if self.read_rate is None and self.write_rate is None:
            return None
        return (self.read_rate or 0.0) + (self.write_rate or 0.0)


def _vanished(e: CgroupError) -> bool:
    return isinstance(e, CgroupDeletedError) or e.errno in (errno.ENOENT, errno.ENODEV)


def sampler(mountpoint: str, root: str, depth: int | None = None) -> Sampler:
    """The sampler of ``top``: every group from ``root`` down to ``depth`` levels below
    it (``None``: all), followed, with top's mask.

    Nothing below ``depth`` is held: the task count of a group at that depth (which
    includes the groups below it) adds the lines of ``cgroup.procs`` below it, read on
    each sample by a walk that holds nothing. A
    tree whose descriptors do not fit under RLIMIT_NOFILE is still shown: what does not
    fit is read by open/read/close (``overflow="reopen"``).
    """
    from ..sampler import Sampler
    from ..stats import StatMask

    mask = StatMask.CPU | StatMask.MEMORY_USAGE | StatMask.IO
    return Sampler(root=root, mask=mask, mountpoint=mountpoint, overflow="reopen", depth=depth)


def _tasks_below(mountpoint: str, group: str) -> int:
    """Processes in the groups below ``group`` (not held: past the sampler's depth), by a
    walk that opens, reads and closes (two descriptors at a time)."""
    from .._fs import Dir, walk

    n = 0
    try:
        with Dir.open(mountpoint.rstrip("/") + ("" if group == "/" else group)) as d:
            for _, g, _, depth in walk(d):
                if depth == 0:
                    continue
                try:
                    procs = g.try_read("cgroup.procs")
                except CgroupError as e:
                    if _vanished(e) or e.errno == errno.EOPNOTSUPP:
                        continue
                    raise
                n += len(procs.split()) if procs else 0
    except CgroupError as e:
        if not _vanished(e):
            raise
    return n


def sample(
    mountpoint: str, root: str, max_depth: int | None = None, *, using: Sampler | None = None
) -> dict[str, GroupSample]:
    """Every group from ``root`` down (to ``max_depth`` levels below it), by group path.

    Read through ``using`` (a :func:`sampler`, kept between refreshes: one ``pread`` a
    file), or a sampler made and closed for this one call. A group's ``tasks`` counts its
    processes and those of every group below it, also below ``max_depth``.
    """
    own = using if using is not None else sampler(mountpoint, root)
    try:
        metrics = own.sample()
        procs: dict[str, int] = {}
        for group in metrics:
            try:
                data = own.read(group, "cgroup.procs")
            except CgroupError as e:
                if _vanished(e):
                    continue  # removed meanwhile (an empty group: no task is lost)
                raise
            procs[group] = len(data.split()) if data is not None else 0
    finally:
        if using is None:
            own.close()
    base = 0 if root == "/" else root.count("/")
    totals = dict(procs)
    held_depth = own.depth
    if held_depth is not None:  # the groups at the held depth: what is below them
        for group in procs:
            if (0 if group == root else group.count("/") - base) == held_depth:
                totals[group] += _tasks_below(mountpoint, group)
    # children after parents in path order: add up bottom-first
    for group in sorted(procs, key=lambda g: g.count("/"), reverse=True):
        if group != root:
            parent = group.rpartition("/")[0] or "/"
            if parent in totals:
                totals[parent] += totals[group]
    out: dict[str, GroupSample] = {}
    for group, tasks in totals.items():
        depth = 0 if group == root else group.count("/") - base
        if max_depth is not None and depth > max_depth:
            continue
        m = metrics[group]
        rb = wb = None
        if m.io is not None and m.io.usage is not None:
            rb = sum(e.rbytes or 0 for e in m.io.usage)
            wb = sum(e.wbytes or 0 for e in m.io.usage)
        out[group] = GroupSample(
            group=group,
            tasks=tasks,
            cpu_usec=m.cpu.usage_usec if m.cpu is not None else None,
            memory=m.memory.usage if m.memory is not None else None,
            read_bytes=rb,
            write_bytes=wb,
        )
    return out


def _rate(a: int | None, b: int | None, dt: float) -> float | None:
    if a is None or b is None or dt <= 0:
        return None
    return max(0, b - a) / dt


def rows(
    before: dict[str, GroupSample], after: dict[str, GroupSample], dt: float, sort: str
) -> list[Row]:
    """The table's rows, from two samples ``dt`` seconds apart, sorted by ``sort``."""
    out = []
    for g, s in after.items():
        p = before.get(g)
        cpu = _rate(p.cpu_usec if p else None, s.cpu_usec, dt)
        out.append(
            Row(
                group=g,
                tasks=s.tasks,
                cpu_percent=None if cpu is None else cpu / 10_000,  # usec/s -> %
                memory=s.memory,
                read_rate=_rate(p.read_bytes if p else None, s.read_bytes, dt),
                write_rate=_rate(p.write_bytes if p else None, s.write_bytes, dt),
            )
        )
    keys: dict[str, Callable[[Row], tuple[float, str]]] = {
        "cpu": lambda r: (-(r.cpu_percent or 0.0), r.group),
        "memory": lambda r: (-(r.memory or 0), r.group),
        "io": lambda r: (-(r.io_rate or 0.0), r.group),
        "tasks": lambda r: (-r.tasks, r.group),
        "name": lambda r: (0.0, r.group),
    }
    return sorted(out, key=keys[sort])


def _rate_text(v: float | None) -> str:
    return "-" if v is None else format_bytes(int(v)) + "/s"


def table(
    rs: list[Row],
    *,
    title: str,
    plain: bool = False,
    limit: int | None = None,
) -> RenderableType:
    """The table (``plain``: no box, for ``--once`` and pipes). Group names and the title
    are shown through :func:`printable`, as plain text (never read as rich markup)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None if plain else box.SIMPLE_HEAD, pad_edge=False, expand=False)
    # a long name folds onto further lines instead of making every row as wide as it
    # (on a pipe there is no terminal width to cut to)
    t.add_column("Group", overflow="fold", max_width=GROUP_WIDTH)
    for name, width in (("Tasks", 5), ("%CPU", 6), ("Memory", 7), ("Read/s", 9), ("Write/s", 9)):
        t.add_column(name, justify="right", no_wrap=True, min_width=width)
    for r in rs[:limit] if limit is not None else rs:
        t.add_row(
            Text(printable(r.group)),
            str(r.tasks),
            "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}",
            format_bytes(r.memory),
            _rate_text(r.read_rate),
            _rate_text(r.write_rate),
        )
    return Group(Text(printable(title), style="bold"), t)


def frames(
    mountpoint: str,
    root: str,
    *,
    interval: float,
    sort: str,
    depth: int | None,
    iterations: int | None,
    wait: Callable[[float], bool] | None = None,
) -> Iterator[tuple[int, str, list[Row]]]:
    """(frame number, title, rows) every ``interval`` seconds; ``iterations`` frames.
    ``wait(seconds)`` waits between frames (default ``time.sleep``); it returns False to
    end the frames (``q`` in the live view).

    One :func:`sampler` serves every frame; it is closed when the generator ends or is
    closed."""
    with sampler(mountpoint, root, depth) as held:
        prev = sample(mountpoint, root, depth, using=held)
        t0 = time.monotonic()
        n = 0
        while iterations is None or n < iterations:
            if wait is None:
                time.sleep(interval)
            elif not wait(interval):
                return
            cur = sample(mountpoint, root, depth, using=held)
            t1 = time.monotonic()
            n += 1
            title = (
                f"cgroup2 top: {mountpoint}{'' if root == '/' else root}  groups {len(cur)}  "
                f"sort {sort}  every {interval:g}s  frame {n}  {time.strftime('%H:%M:%S')}"
            )
            yield n, title, rows(prev, cur, t1 - t0, sort)
            prev, t0 = cur, t1


def frame_json(n: int, root: str, interval: float, sort: str, rs: list[Row]) -> str:
    """One frame of ``top --json``: one line, the groups in the table's order (rates in
    bytes per second, CPU in percent of one CPU; ``null`` where the group has no such
    counter or no earlier sample)."""

    import json

    def r(v: float | None, nd: int) -> float | None:
        return None if v is None else round(v, nd)

    return json.dumps(
        {
            "frame": n,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "group": root,
            "interval": interval,
            "sort": sort,
            "groups": [
                {
                    "group": x.group,
                    "tasks": x.tasks,
                    "cpu_percent": r(x.cpu_percent, 2),
                    "memory": x.memory,
                    "read_bytes_per_sec": r(x.read_rate, 1),
                    "write_bytes_per_sec": r(x.write_rate, 1),
                }
                for x in rs
            ],
        }
    )


def cmd_top(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """``cgroup2 top``: live on a terminal, else (or with ``-b``) every frame as text."""
    from ..manager import Manager

    Manager.load(group, mountpoint=mountpoint)  # a missing group is an error, not a blank
    if args.sort in ("memory", "io"):
        with open(mountpoint.rstrip("/") + "/cgroup.controllers", "rb") as f:
            if args.sort.encode() not in f.read().split():
                from .._v1 import bound_sentence  # a hybrid host: where the controller is

                where = bound_sentence([args.sort])
                raise UsageError(
                    f"top: --sort {args.sort}: this cgroup2 mount has no {args.sort} "
                    f"controller (no group here has that column)"
                    + (f" — {where}" if where else "") + "; sort by cpu, tasks or name"
                )
    iterations = 1 if args.once else args.iterations

    def gen_of(wait: Callable[[float], bool] | None) -> Iterator[tuple[int, str, list[Row]]]:
        return frames(
            mountpoint,
            group,
            interval=args.interval,
            sort=args.sort,
            depth=args.depth,
            iterations=iterations,
            wait=wait,
        )

    try:
        if args.json:
            for n, _, rs in gen_of(None):
                out.file.write(frame_json(n, group, args.interval, args.sort, rs) + "\n")
                out.file.flush()
        elif args.batch or args.once or not out.is_terminal:
            for n, title, rs in gen_of(None):
                if n > 1:
                    out.file.write("\n")
                out.print(table(rs, title=title, plain=True), soft_wrap=True)
                out.file.flush()
        else:
            _live(out, gen_of)
    except KeyboardInterrupt:
        pass  # ^C is how a refreshing view is left
    return 0


def _live(
    out: Console,
    gen_of: Callable[[Callable[[float], bool] | None], Iterator[tuple[int, str, list[Row]]]],
) -> None:
    """The live view on the terminal's alternate screen; after the last frame of ``-n``
    (or ``q``) the frame is printed on the normal screen, so that it stays. With standard
    input a terminal, it is read key by key (cbreak mode, restored at the end): ``q``
    quits."""
    import sys

    from rich.live import Live

    keys = _Keys(sys.stdin.fileno()) if sys.stdin.isatty() else None
    last: tuple[str, list[Row]] | None = None
    try:
        with Live(console=out, auto_refresh=False, screen=True) as live:
            for _, title, rs in gen_of(keys.wait if keys else None):
                limit = max(1, out.size.height - 4)
                if keys is not None:
                    title += "  (q quits)"
                live.update(table(rs, title=title, limit=limit), refresh=True)
                last = title, rs
    finally:
        if keys is not None:
            keys.restore()
    if last is not None:
        out.print(table(last[1], title=last[0]))


class _Keys:
    """Keys typed at the terminal ``fd`` while the live view waits (cbreak mode: a key
    at a time, no echo; ^C still interrupts)."""

    def __init__(self, fd: int) -> None:
        import termios
        import tty

        self.fd = fd
        self.saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as ``q`` is typed (other keys are ignored)."""
        import os
        import select

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                typed = os.read(self.fd, 64)
                if not typed or b"q" in typed or b"Q" in typed:
                    return False
        return True

    def restore(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
