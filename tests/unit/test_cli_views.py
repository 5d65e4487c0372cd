"""unit: what issue 15's commands print, from given values and fake group trees under /tmp
(the unit tier lets the file layer take /tmp's file system as cgroup2)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest
from rich.console import Console

from cgroup2 import Manager
from cgroup2.cli._cmds import frozen_ancestors, signal_group
from cgroup2.cli._groups import format_values, is_limit_file
from cgroup2.cli._human import human_value, memory_usage_rows, psi_text
from cgroup2.cli._status import is_default
from cgroup2.cli._top import Row, frame_json
from cgroup2.cli._tree import build_tree, tree_json
from cgroup2.errors import MountPointError


def test_human_values_have_units_and_no_raw_max() -> None:
    assert human_value("cpu", "usage_usec", 1_234_567) == "1.235s"
    assert human_value("cpu", "nr_periods", 12) == "12"
    assert human_value("memory", "usage", 3 << 20) == "3.0M"
    assert human_value("memory", "anon", 4096) == "4.0K"
    assert human_value("memory", "pgfault", 4096) == "4096"
    assert human_value("memory", "workingset_refault_anon", 7) == "7"
    assert human_value("memory", "usage_limit", 2**64 - 1) == "max"
    assert human_value("memory", "swap_limit", 64 << 20) == "64.0M"
    assert human_value("pids", "limit", 2**64 - 1) == "max"
    assert human_value("pids", "limit", 64) == "64"
    assert human_value("hugetlb", "max", 2**63 - 4096) == "max"
    assert human_value("hugetlb", "current", 2 << 20) == "2.0M"
    assert human_value("io", "rbytes", 1536) == "1.5K"
    assert human_value("io", "rios", 1536) == "1536"
    assert human_value("psi", "avg10", 1.5) == "1.50%"
    assert human_value("psi", "total", 2500) == "2.5ms"
    assert human_value("cpuset", "cpus", "0-1\x1b") == "0-1\\x1b"
    assert psi_text({"avg10": 0.5, "avg60": 0, "avg300": 0, "total": 0}) == (
        "avg10 0.50%  avg60 0.00%  avg300 0.00%  total 0"
    )


def test_format_values_as_cgget() -> None:
    vals = [("memory.max", "max"), ("io.max", "8:0 rbps=1\n8:16 wbps=2"), ("x", "")]
    assert format_values(vals) == "memory.max: max\nio.max: 8:0 rbps=1\n\t8:16 wbps=2\nx:\n"
    assert format_values(vals, only_values=True) == "max\n8:0 rbps=1\n8:16 wbps=2\n\n"
    assert format_values([("a\x1b", "v\x07")]) == "a\\x1b: v\\x07\n"


@pytest.mark.parametrize(
    ("name", "mode", "want"),
    [
        ("memory.max", 0o644, True),
        ("cgroup.max.depth", 0o644, True),
        ("cgroup.pressure", 0o644, True),
        ("memory.current", 0o444, False),
        ("memory.reclaim", 0o200, False),
        ("cgroup.kill", 0o200, False),
        ("cgroup.procs", 0o644, False),
        ("cgroup.freeze", 0o644, False),
        ("cgroup.type", 0o644, False),
        ("cpu.pressure", 0o644, False),
        ("memory.peak", 0o644, False),
        ("memory.swap.peak", 0o644, False),
    ],
)
def test_is_limit_file(name: str, mode: int, want: bool) -> None:
    assert is_limit_file(name, stat.S_IFREG | mode) is want


@pytest.mark.parametrize(
    ("name", "line", "want"),
    [
        ("memory.max", "max", True),
        ("memory.max", "536870912", False),
        ("cpu.weight", "100", True),
        ("cpu.weight", "50", False),
        ("cpu.max", "max 100000", True),
        ("cpu.max", "50000 100000", False),
        ("io.max", "8:0 rbps=max wbps=max riops=max wiops=max", True),
        ("io.max", "8:0 rbps=1048576 wbps=max riops=max wiops=max", False),
        ("misc.max", "res_a max", True),
        ("hugetlb.1GB.max", str(2**63 - 4096), True),
        ("hugetlb.2MB.max", "4194304", False),
        ("cgroup.pressure", "1", True),
        ("cgroup.pressure", "0", False),
        ("cpuset.cpus", "", True),
        ("cpuset.cpus", "0-1", False),
        ("io.prio.class", "no-change", True),
        ("io.prio.class", "restrict-to-be", False),
    ],
)
def test_is_default(name: str, line: str, want: bool) -> None:
    assert is_default(name, line) is want


def test_top_frame_json() -> None:
    rs = [Row("/a\x1b", 2, 12.3456, 4096, 10.04, None), Row("/b", 0, None, None, None, None)]
    line = frame_json(3, "/", 0.5, "cpu", rs)
    assert "\n" not in line and "\x1b" not in line
    d = json.loads(line)
    assert (d["frame"], d["group"], d["interval"], d["sort"]) == (3, "/", 0.5, "cpu")
    assert d["groups"] == [
        {"group": "/a\x1b", "tasks": 2, "cpu_percent": 12.35, "memory": 4096,
         "read_bytes_per_sec": 10.0, "write_bytes_per_sec": None},
        {"group": "/b", "tasks": 0, "cpu_percent": None, "memory": None,
         "read_bytes_per_sec": None, "write_bytes_per_sec": None},
    ]


def _fake_tree(tmp_path: Path) -> Path:
    """A tree of group-like directories: /a (this process), /a/b, /c."""
    root = tmp_path / "mnt"
    for d in ("", "a", "a/b", "c"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "cgroup.procs").write_text("")
    (root / "a" / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return root


def _chain(top: Path, depth: int) -> None:
    """``depth`` directories ``d`` below ``top``, made through directory fds (the path
    would be too long for one system call)."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
    finally:
        for fd in fds:
            os.close(fd)


def _unchain(top: Path, depth: int) -> None:
    """Remove what :func:`_chain` made, deepest first, without recursion."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(depth - 1):
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        while fds:
            os.rmdir("d", dir_fd=fds[-1])
            os.close(fds.pop())
    finally:
        for fd in fds:
            os.close(fd)


def test_tree_json_nests_groups_and_processes(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path)
    t = json.loads("".join(tree_json(str(root), "/")))
    assert [c["group"] for c in t["children"]] == ["/a", "/c"]
    a = t["children"][0]
    assert [p["pid"] for p in a["processes"]] == [os.getpid()]
    assert a["children"] == [{"group": "/a/b", "processes": [], "children": []}]
    t = json.loads("".join(tree_json(str(root / "a"), "/a", procs=False)))
    assert t == {"group": "/a", "children": [{"group": "/a/b", "children": []}]}


def test_tree_json_of_any_depth(tmp_path: Path) -> None:
    """Written as the walk goes: 3,000 levels (beyond Python's recursion limit) are fine;
    the nesting is counted without parsing (json.loads would recurse)."""
    root = _fake_tree(tmp_path)
    _chain(root / "c", 3000)
    try:
        text = "".join(tree_json(str(root / "c"), "/c", procs=False))
    finally:
        _unchain(root / "c", 3000)
    assert text.count('"children": [') == 3001
    assert text.endswith("]}" * 3001)


def test_tree_cuts_command_lines_only_when_asked(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path)

    def render(shorten: bool) -> str:
        buf = io.StringIO()
        Console(file=buf, width=40, color_system=None).print(
            build_tree(str(root), "/", shorten=shorten))
        return buf.getvalue()

    me = [ln for ln in render(True).splitlines() if str(os.getpid()) in ln]
    assert len(me) == 1 and me[0].rstrip().endswith("…") and len(me[0]) <= 40
    full = render(False)
    assert "…" not in full


def test_signal_group_refuses_the_root_before_anything(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path)
    with pytest.raises(MountPointError, match="root group"):
        signal_group(Manager(str(root), "/"), 15)


def test_frozen_ancestors(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path)
    (root / "a" / "cgroup.freeze").write_text("1\n")
    (root / "a" / "b" / "cgroup.freeze").write_text("0\n")
    (root / "a" / "b" / "x").mkdir()
    assert frozen_ancestors(Manager(str(root), "/a/b/x")) == ["/a"]
    assert frozen_ancestors(Manager(str(root), "/a")) == []
    assert frozen_ancestors(Manager(str(root), "/c")) == []


def test_memory_usage_as_each_tool_counts_it() -> None:
    from cgroup2 import Metrics
    from cgroup2.stats import MemoryStat

    m = Metrics(memory=MemoryStat(usage=100 << 20, inactive_file=30 << 20, anon=50 << 20))
    assert memory_usage_rows(m) == [
        ("memory.current", 100 << 20, "the kernel's limits"),
        ("working set", 70 << 20, "usage - inactive_file: kubelet, cAdvisor, docker stats"),
        ("anon", 50 << 20, "podman stats"),
    ]
    # without memory.stat only the kernel's own figure is known
    assert memory_usage_rows(Metrics(memory=MemoryStat(usage=5))) == [
        ("memory.current", 5, "the kernel's limits")
    ]
    assert memory_usage_rows(Metrics()) == []
