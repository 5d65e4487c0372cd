"""``cgroup2 tree``: groups and their processes with command lines (like systemd-cgls).

Names and command lines are shown through :func:`~cgroup2.cli._text.printable` and as
plain text (never read as rich markup).
"""

from __future__ import annotations

import errno

from rich.text import Text
from rich.tree import Tree

from .._fs import Dir, read_abs, walk
from ..errors import CgroupDeletedError, CgroupError
from ._text import printable

__all__ = ["build_tree", "cmdline"]


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


def _add_procs(node: Tree, d: Dir, *, kernel: bool) -> None:
    for pid in sorted(int(x) for x in d.read("cgroup.procs").split()):
        cmd = cmdline(pid)
        if cmd is None or (not kernel and cmd.startswith("[")):
            continue
        node.add(Text.assemble((str(pid), "cyan"), " ", printable(cmd)))


def build_tree(path: str, label: str, *, procs: bool = True, kernel: bool = False) -> Tree:
    """The tree of the group at file system ``path`` (shown as ``label``).

    One iterative walk (:func:`cgroup2._fs.walk`): any depth, no mount point crossed (a
    mount point inside is an error that names it).
    """
    root = Tree(Text(printable(label), style="bold"), guide_style="dim")
    nodes = [root]  # the node of the group entered last at each depth
    with Dir.open(path) as top:
        for _, d, name, depth in walk(top):
            if depth:
                del nodes[depth:]
                nodes.append(nodes[-1].add(Text(printable(name), style="bold")))
            if procs:
                try:
                    _add_procs(nodes[-1], d, kernel=kernel)
                except CgroupError as e:
                    if isinstance(e, CgroupDeletedError) or e.errno in (
                        errno.ENOENT, errno.ENODEV
                    ):
                        continue  # removed meanwhile
                    raise
    return root
