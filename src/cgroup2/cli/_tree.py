"""``cgroup2 tree``: groups and their processes with command lines (like systemd-cgls).

On a terminal, command lines are cut to its width (``-l`` for full ones, folded); on a
pipe they are never cut. ``--json`` gives the tree as one object.

Names and command lines are shown through :func:`~cgroup2.cli._text.printable` and as
plain text (never read as rich markup).
"""

from __future__ import annotations

import errno

from .._fs import Dir, read_abs, walk
from ..errors import CgroupDeletedError, CgroupError
from ._text import printable

TYPE_CHECKING = False
if TYPE_CHECKING:  # rich and json: imported where used (the parser is built from this
    # module's add_parser on the command's start)
    import argparse
    from collections.abc import Iterator
    from typing import Any

    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    from ._lite import Subparsers

__all__ = ["add_parser", "build_tree", "cmd_tree", "cmdline", "groups", "proc_text", "tree_json"]


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``tree`` with its arguments."""
    p = sub.add_parser(
        name, help=help,
        description="Draw the groups below GROUP (default the whole mount) as a tree, each "
        "with its processes (pid and command line); kernel threads only with --kernel.",
    )
    p.add_argument("group", metavar="GROUP", nargs="?", default="/")
    p.add_argument("--no-procs", action="store_true", help="groups only")
    p.add_argument("--kernel", "-k", action="store_true", help="show kernel threads too")
    p.add_argument(
        "-l", "--full", action="store_true",
        help="command lines in full (on a terminal they are cut to its width)",
    )
    p.add_argument("--json", action="store_true", help="the tree as one JSON object")


def cmdline(pid: int) -> str | None:
    """The command line of ``pid`` from ``/proc/<pid>/cmdline`` (``[comm]`` for a kernel
    thread), ``None`` when the process is gone. Bytes that are not UTF-8 are kept as
    ``surrogateescape`` characters (:func:`printable` shows them as ``\\xNN``)."""
    try:
        raw = read_abs(f"/proc/{pid}/cmdline")
        if raw:
            return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "surrogateescape")
        comm = read_abs(f"/proc/{pid}/comm").strip().decode("utf-8", "surrogateescape")
    except CgroupError:
        return None
    return f"[{comm}]"


def _procs(d: Dir, *, kernel: bool) -> list[tuple[int, str]]:
    """(pid, command line) of the group's processes, kernel threads only with ``kernel``."""
    out = []
    for pid in sorted(int(x) for x in d.read("cgroup.procs").split()):
        cmd = cmdline(pid)
        if cmd is None or (not kernel and cmd.startswith("[")):
            continue
        out.append((pid, cmd))
    return out


def groups(
    path: str, *, procs: bool = True, kernel: bool = False, mount: str | None = None
) -> Iterator[tuple[int, str, list[tuple[int, str]]]]:
    """(depth, name, processes) of the group at ``path`` (depth 0, name ``""``) and of every
    group below it, depth first in name order.

    One iterative walk (:func:`cgroup2._fs.walk`): any depth, no mount point crossed (a
    mount point inside is an error that names it). A group removed meanwhile is left out.
    """
    with Dir.open(path, mount) as top:
        for _, d, name, depth in walk(top):
            found: list[tuple[int, str]] = []
            if procs:
                try:
                    found = _procs(d, kernel=kernel)
                except CgroupError as e:
                    if isinstance(e, CgroupDeletedError) or e.errno in (
                        errno.ENOENT, errno.ENODEV
                    ):
                        continue  # removed meanwhile
                    raise
            yield depth, name, found


def proc_text(pid: int, cmd: str, *, shorten: bool) -> Text:
    """A process line: pid and command line (escaped); ``shorten``: cut with an ellipsis
    at the width it is given (one line), else folded onto further lines."""
    from rich.text import Text

    return Text.assemble(
        (str(pid), "cyan"),
        " ",
        printable(cmd),
        no_wrap=shorten,
        overflow="ellipsis" if shorten else "fold",
    )


def build_tree(
    path: str,
    label: str,
    *,
    procs: bool = True,
    kernel: bool = False,
    shorten: bool = False,
    mount: str | None = None,
    max_procs: int | None = None,
) -> Tree:
    """The tree of the group at file system ``path`` (shown as ``label``); with
    ``shorten`` a command line is cut to the width of the output (``systemd-cgls``). With
    ``max_procs``, the tree stops after that many processes, and a last line says how many
    processes (in how many more groups) were left out."""
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(Text(printable(label), style="bold"), guide_style="dim")
    nodes = [root]  # the node of the group entered last at each depth
    shown = left = left_groups = 0
    for depth, name, found in groups(path, procs=procs, kernel=kernel, mount=mount):
        if max_procs is not None and shown >= max_procs:
            left += len(found)
            left_groups += 1 if depth else 0
            continue
        if depth:
            del nodes[depth:]
            nodes.append(nodes[-1].add(Text(printable(name), style="bold")))
        for pid, cmd in found:
            if max_procs is not None and shown >= max_procs:
                left += 1
                continue
            nodes[-1].add(proc_text(pid, cmd, shorten=shorten))
            shown += 1
    if left or left_groups:
        more = f"{left} more process{'es' if left != 1 else ''}"
        if left_groups:
            more += f" in {left_groups} more group{'s' if left_groups != 1 else ''}"
        root.add(Text(f"\u2026 {more} (-n N to show N, --full for all)", style="dim"))
    return root


def tree_json(
    path: str, label: str, *, procs: bool = True, kernel: bool = False, mount: str | None = None
) -> Iterator[str]:
    """The tree as one JSON object, in pieces: ``group`` (its path), ``processes``
    (``pid``, ``cmdline``; left out with ``procs=False``) and ``children``, nested.

    Written as the walk goes, without recursion (a tree of any depth; ``json.dumps`` of
    nested objects would recurse once per level)."""
    import json

    open_groups: list[str] = []  # the path of each node still open, by depth
    has_child: list[bool] = []  # whether that node has a child written already
    for depth, name, found in groups(path, procs=procs, kernel=kernel, mount=mount):
        group = label
        if depth:
            while len(open_groups) > depth:
                open_groups.pop()
                has_child.pop()
                yield "]}"
            parent = open_groups[-1]
            group = ("" if parent == "/" else parent) + "/" + name
            if has_child[-1]:
                yield ", "
            has_child[-1] = True
        head: dict[str, Any] = {"group": group}
        if procs:
            head["processes"] = [{"pid": pid, "cmdline": cmd} for pid, cmd in found]
        yield json.dumps(head)[:-1] + ', "children": ['
        open_groups.append(group)
        has_child.append(False)
    for _ in open_groups:
        yield "]}"


def cmd_tree(args: argparse.Namespace, group: str, mountpoint: str, out: Console) -> int:
    """``cgroup2 tree``: the tree, or with ``--json`` one JSON object (the escapes of JSON
    keep control characters out of it)."""
    path = mountpoint if group == "/" else mountpoint.rstrip("/") + group
    if args.json:
        out.file.write(
            "".join(tree_json(path, group, procs=not args.no_procs, kernel=args.kernel,
                              mount=mountpoint)) + "\n"
        )
        return 0
    shorten = out.is_terminal and not args.full
    out.print(
        build_tree(path, group, procs=not args.no_procs, kernel=args.kernel, shorten=shorten,
                   mount=mountpoint)
    )
    return 0
