"""``cgroup2 stat`` for people: the statistics with units, and the group's state.

Times in ``s``/``ms``/``us``, sizes 1024-based (``12.5M``), pressure in percent, and a limit
that is not set as ``max`` (never the raw ``U64_MAX`` the JSON keeps for containerd's
names). ``--json`` and ``--prometheus`` give the numbers as they are.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from rich.tree import Tree

from .._fs import Dir
from ..manager import Manager
from ..stats import Metrics
from ._text import printable
from ._units import format_bytes, format_limit, format_usec

__all__ = ["group_state", "human_value", "memory_usage_rows", "psi_text", "stat_view"]

U64_MAX = 2**64 - 1

#: Limits, by section: ``max`` when not set.
_LIMITS = {
    ("pids", "limit"),
    ("memory", "usage_limit"),
    ("memory", "swap_limit"),
    ("hugetlb", "max"),
    ("hugetlb", "rsvd_max"),
    ("misc", "max"),
}
#: memory.stat keys that count events or pages, not bytes.
_COUNT_PREFIXES = ("pg", "workingset_", "thp_", "zswpin", "zswpout", "zswpwb", "pswp",
                   "numa_", "nr_", "swpin", "swpout")
#: Byte counters of memory (Metrics' own names).
_MEMORY_BYTES = {"usage", "swap_usage", "max_usage", "swap_max_usage"}


def human_value(section: str, key: str, value: Any) -> str:
    """One statistic as text with its unit; ``section`` is the part of ``Metrics`` it
    belongs to (``cpu``, ``memory``, ``io``, ``hugetlb``, ``psi``...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return printable(str(value))
    if section == "psi":
        return format_usec(int(value)) if key == "total" else f"{value:.2f}%"
    if key.endswith("_usec"):
        return format_usec(int(value))
    if (section, key) in _LIMITS:
        if section in ("pids", "misc"):
            return "max" if value >= U64_MAX else str(value)
        return format_limit(int(value))
    if section == "memory":
        if key in _MEMORY_BYTES or not key.startswith(_COUNT_PREFIXES):
            return format_bytes(int(value))
        return str(value)
    if section in ("io", "hugetlb") and (key.endswith("bytes") or key in ("current",
                                                                          "rsvd_current")):
        return format_bytes(int(value))
    if isinstance(value, int) and value >= U64_MAX:
        return "max"
    return str(value)


def group_state(d: Dir) -> str:
    """``populated``/``empty`` and ``frozen``/``thawed`` from ``cgroup.events`` (the root
    group of a mount has no such file)."""
    from ..events import parse_cgroup_events

    data = d.try_read("cgroup.events")
    if data is None:
        return "the root group of the mount"
    ev = parse_cgroup_events(data)
    return ", ".join(
        ("populated" if ev.populated else "empty", "frozen" if ev.frozen else "not frozen")
    )


def _leaf(node: Tree, key: str, text: str) -> None:
    node.add(Text.assemble(printable(key), " ", (text, "cyan")))


def _label(section: str, item: dict[str, Any], index: int) -> str:
    if section == "io" and "major" in item:
        return f"{item['major']}:{item['minor']}"
    if section == "hugetlb" and "pagesize" in item:
        return str(item["pagesize"])
    if section == "misc" and "name" in item:
        return str(item["name"])
    if section == "rdma" and "device" in item:
        return str(item["device"])
    return str(index)


_LABEL_KEYS = {"major", "minor", "pagesize", "name", "device"}


def psi_text(kind: dict[str, Any]) -> str:
    """One line of a pressure file: ``avg10 0.12%  avg60 0.05%  avg300 0.01%  total 1.2s``."""
    return "  ".join(
        f"{k} {human_value('psi', k, kind[k])}"
        for k in ("avg10", "avg60", "avg300", "total")
        if k in kind
    )


def _add(node: Tree, section: str, key: str, value: Any) -> None:
    if key == "psi" and isinstance(value, dict):
        sub = node.add(Text("pressure", style="bold"))
        for kind, v in value.items():
            if isinstance(v, dict):
                _leaf(sub, str(kind), psi_text(v))
        return
    if isinstance(value, dict):
        sub = node.add(Text(printable(key), style="bold"))
        inner = "psi" if key in ("psi", "some", "full") or section == "psi" else section
        for k, v in value.items():
            _add(sub, inner, str(k), v)
    elif isinstance(value, list):
        sub = node.add(Text(printable(key), style="bold"))
        for i, v in enumerate(value):
            if isinstance(v, dict):
                entry = sub.add(Text(printable(_label(section, v, i)), style="bold"))
                for k, x in v.items():
                    if k not in _LABEL_KEYS:
                        _add(entry, section, str(k), x)
            else:
                _leaf(sub, str(i), human_value(section, key, v))
    else:
        # a time is shown with its unit (4.3ms): the label drops the file's "_usec"
        label = key.removesuffix("_usec") if key.endswith("_usec") else key
        _leaf(node, label, human_value(section, key, value))


def memory_usage_rows(metrics: Metrics) -> list[tuple[str, int, str]]:
    """Memory usage as each runtime counts it: (name, bytes, who uses it), for the values
    the group's files give (``memory.current``, ``inactive_file`` and ``anon`` of
    ``memory.stat``)."""
    mem = metrics.memory
    if mem is None:
        return []
    rows: list[tuple[str, int, str]] = []
    if mem.usage is not None:
        rows.append(("memory.current", mem.usage, "the kernel's limits"))
    ws = mem.working_set
    if ws is not None:
        rows.append(("working set", ws, "usage - inactive_file: kubelet, cAdvisor, docker stats"))
    if mem.anon is not None:
        rows.append(("anon", mem.anon, "podman stats"))
    return rows


def stat_view(m: Manager, metrics: Metrics) -> Tree:
    """The statistics of ``m`` as a tree: the state first, then each part of ``Metrics``
    with units (``io.usage`` by device, ``hugetlb`` by page size)."""
    with Dir.open(m.path, m.mountpoint) as d:
        state = group_state(d)
    root = Tree(Text(printable(m.group), style="bold"), guide_style="dim")
    _leaf(root, "state", state)
    for section, value in metrics.to_dict().items():
        if isinstance(value, list):  # hugetlb, misc: one entry per page size / resource
            sub = root.add(Text(section, style="bold"))
            for i, v in enumerate(value):
                entry = sub.add(Text(printable(_label(section, v, i)), style="bold"))
                for k, x in v.items():
                    if k not in _LABEL_KEYS:
                        _add(entry, section, str(k), x)
            continue
        sub = root.add(Text(section, style="bold"))
        if isinstance(value, dict):
            for k, v in value.items():
                _add(sub, section, str(k), v)
        else:
            _leaf(sub, section, human_value(section, section, value))
        if section == "memory":
            rows = memory_usage_rows(metrics)
            if rows:
                usage = sub.add(Text("usage, as each tool counts it", style="bold"))
                for name, v, who in rows:
                    usage.add(Text.assemble(name, " ", (format_bytes(v), "cyan"), f"  ({who})"))
    return root
