"""``cgroup2 tree``: groups and their processes with command lines (like systemd-cgls).

Names and command lines are shown through :func:`~cgroup2.cli._text.printable` and as
plain text (never read as rich markup).
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from .._fs import Dir, read_abs
from ..errors import CgroupError
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


def _fill(node: Tree, d: Dir, *, procs: bool, kernel: bool) -> None:
    if procs:
        for pid in sorted(int(x) for x in d.read("cgroup.procs").split()):
            cmd = cmdline(pid)
            if cmd is None or (not kernel and cmd.startswith("[")):
                continue
            node.add(Text.assemble((str(pid), "cyan"), " ", printable(cmd)))
    for name in sorted(d.subdirs()):
        try:
            c = d.child(name)
        except CgroupError:
            continue  # removed meanwhile
        with c:
            sub = node.add(Text(printable(name), style="bold"))
            try:
                _fill(sub, c, procs=procs, kernel=kernel)
            except CgroupError:
                continue


def build_tree(path: str, label: str, *, procs: bool = True, kernel: bool = False) -> Tree:
    """The tree of the group at file system ``path`` (shown as ``label``)."""
    root = Tree(Text(printable(label), style="bold"), guide_style="dim")
    with Dir.open(path) as d:
        _fill(root, d, procs=procs, kernel=kernel)
    return root
