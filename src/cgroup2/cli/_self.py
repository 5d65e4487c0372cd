"""``cgroup2 self``: the calling process's group, the limits that bind it (with the group
setting each), the CPUs and memory it may use, and its current pressure."""

from __future__ import annotations

import os

from .._fs import Dir
from ._text import printable
from ._units import format_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:  # cgroup2.self and json: imported where used (the parser is built from
    # this module's add_parser on the command's start)
    import argparse
    from typing import Any

    from ..self import Limit, Limits
    from ._lite import Subparsers

__all__ = ["add_parser", "cmd_self", "gather"]


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``self`` with its arguments."""
    p = sub.add_parser(
        name,
        help=help,
        description=(
            "The group of the cgroup2 command itself (run it as the program whose limits "
            "you want, e.g. inside a container): the tightest memory, CPU, cpuset, pids, "
            "hugetlb and io limits along its visible ancestors with the group setting "
            "each, cpu_count (min of affinity, cpuset and the quota rounded up), the "
            "memory it may still take, and its pressure. Controllers that are not on the "
            "cgroup2 mount are named as not seen; they are not read from cgroup v1."
        ),
    )
    p.add_argument("--json", action="store_true", help="one JSON object")


def _pressure(path: str, mountpoint: str) -> dict[str, Any]:
    from ..controllers.psi import read_pressure

    out: dict[str, Any] = {}
    with Dir.open(path, mountpoint) as d:
        for resource in ("cpu", "memory", "io"):
            p = read_pressure(d, resource)
            if p is None:
                continue
            out[resource] = {
                kind: None if line is None else {
                    "avg10": line.avg10, "avg60": line.avg60, "avg300": line.avg300,
                    "total": line.total,
                }
                for kind, line in (("some", p.some), ("full", p.full))
            }
    return out


def gather(mountpoint: str | None = None) -> tuple[Limits, dict[str, Any]]:
    """The limits of the calling process, and what ``cgroup2 self --json`` prints."""
    from ..self import own_limits, with_v1

    m, lim = own_limits(mountpoint)
    lim = with_v1(lim)
    return lim, {
        "pid": os.getpid(),
        "group": lim.group,
        "path": "" if m is None else m.path,
        "os_cpu_count": os.cpu_count(),
        **lim.as_dict(),
        "pressure": {} if m is None else _pressure(m.path, m.mountpoint),
    }


def _where(lim: Limit) -> str:
    """`` (cgroup v1 <mount>)`` for a limit read from a cgroup v1 hierarchy."""
    return f" (cgroup v1 {printable(lim.hierarchy)})" if lim.version == 1 else ""


def _bytes(lim: Limit) -> str:
    used = "" if lim.current is None else f" (used {format_bytes(lim.current)} there)"
    return f"{format_bytes(int(lim.value))}  set by {printable(lim.group)}{_where(lim)}{used}"


def _lines(lim: Limits, d: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str]] = [
        ("group", printable(d["group"])),
        ("path", printable(d["path"])),
    ]
    if not d["group"]:  # cgroup2 is not mounted, or does not show this process's group
        why = next(iter(lim.unseen.values()), "")
        rows = [("group", f"none on cgroup2: {printable(why)}")]
    elif lim.ancestors_hidden:
        rows.append(("visible top", f"{printable(lim.top)} (a cgroup namespace or a bind "
                     "mount hides the groups above: their limits cannot be read)"))
    names: tuple[tuple[str, Limit | None], ...] = (
        ("memory.max", lim.memory_max), ("memory.high", lim.memory_high),
        ("memory.swap.max", lim.memory_swap_max))
    if _v1_read(lim, "memory"):
        names = (("memory.limit_in_bytes", lim.memory_max),
                 ("memory.memsw.limit_in_bytes", lim.memory_memsw_max),
                 ("memory.soft_limit_in_bytes", lim.memory_soft_limit))
    if "memory" not in lim.unseen:
        for name, value in names:
            rows.append((name, "max" if value is None else _bytes(value)))
        avail = lim.memory_available
        rows.append(("memory available", "no limit" if avail is None else format_bytes(avail)))
        if lim.memory_usage is not None:
            ws = lim.memory_working_set
            rows.append(("memory usage", format_bytes(lim.memory_usage) + (
                "" if ws is None else f"  (working set {format_bytes(ws)})")))
    if "cpu" not in lim.unseen:
        q = lim.cpu_quota
        name = "cpu.cfs_quota_us" if _v1_read(lim, "cpu") else "cpu.max"
        rows.append((name, "max" if q is None
                     else f"{q.value:g} CPUs  set by {printable(q.group)}{_where(q)}"))
    if lim.cpuset is not None:
        rows.append(("cpuset.cpus.effective",
                     f"{len(lim.cpuset)} CPUs  set by {printable(lim.cpuset_group or '/')}"
                     + (" (cgroup v1)" if _v1_read(lim, "cpuset") else "")))
    rows.append(("affinity", f"{len(lim.affinity)} CPUs"))
    rows.append(("cpu_count", f"{lim.cpu_count}  (os.cpu_count() {d['os_cpu_count']})"))
    if "pids" not in lim.unseen:
        p = lim.pids_max
        rows.append(("pids.max", "max" if p is None else
                     f"{int(p.value)}  set by {printable(p.group)}{_where(p)} "
                     f"({p.current} there now)"))
    for size, h in sorted(lim.hugetlb.items()):
        rows.append((f"hugetlb.{printable(size)}.max", _bytes(h)))
    for key, io in sorted(lim.io.items()):
        rows.append((f"io.max {printable(key)}", f"{int(io.value)}  set by {printable(io.group)}"))
    for c, why in lim.unseen.items():
        rows.append((f"{c} (not seen)", printable(why) if d["group"] else "no cgroup2 group"))
    for resource, p in d["pressure"].items():
        some = p.get("some")
        if some is not None:
            rows.append((f"{resource} pressure", f"some avg10 {some['avg10']:.2f}%  "
                         f"avg60 {some['avg60']:.2f}%  avg300 {some['avg300']:.2f}%"))
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]


def _v1_read(lim: Limits, controller: str) -> bool:
    """Whether ``controller``'s limits were read from a cgroup v1 hierarchy."""
    return controller in lim.hierarchies and lim.hierarchies[controller][0] == 1


def cmd_self(args: argparse.Namespace, mountpoint: str | None) -> int:
    lim, d = gather(mountpoint)
    if args.json:
        import json

        print(json.dumps(d, indent=2))
    else:
        print("\n".join(_lines(lim, d)))
    return 0
