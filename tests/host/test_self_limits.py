"""host: cgroup2.current(), limits(), cpu_count() of a process, on this machine's mount.

A child process is placed in a group of its own below the run's parent (a looser child
group below a tighter one) and reports, as JSON, what the library finds about its own
group. On a hybrid host the cgroup2 mount holds few controllers (here: hugetlb); memory,
cpu, cpuset and pids are read from the cgroup v1 hierarchy each is bound to (see
test_v1_limits.py), any other controller is reported unseen.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Parent

import cgroup2
from cgroup2._v1 import BOUND, hierarchies
from cgroup2.paths import pid_group_path
from cgroup2.self import CONTROLLERS

CHILD = r"""
import json, os, sys
sys.stdin.readline()  # placed in its group by now
import cgroup2
m = cgroup2.current()
lim = cgroup2.limits()
print(json.dumps({
    "group": m.group,
    "path": m.path,
    "limits": lim.as_dict(),
    "cpu_count": cgroup2.cpu_count(),
    "os_cpu_count": os.cpu_count(),
    "affinity": len(os.sched_getaffinity(0)),
    "memory_available": cgroup2.memory_available(),
}))
"""

HUGE_2M = 2 * 1024 * 1024


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


@pytest.fixture
def nested(cg_parent: Parent, cg_path: str) -> Iterator[tuple[str, str, str]]:
    """(mountpoint, outer group, inner group): the inner group is where the child runs."""
    outer_fs = cg_parent.mountpoint + cg_path
    inner = cg_path + "/leaf"
    # the run's parent passes on what it has (for the duration of this test only)
    offer = _read(f"{cg_parent.fs_path}/cgroup.controllers").split()
    had = _read(f"{cg_parent.fs_path}/cgroup.subtree_control").split()
    added = [c for c in offer if c not in had]
    if added:
        _write(f"{cg_parent.fs_path}/cgroup.subtree_control", " ".join("+" + c for c in added))
    try:
        os.mkdir(outer_fs)
    except BaseException:
        _write(f"{cg_parent.fs_path}/cgroup.subtree_control", " ".join("-" + c for c in added))
        raise
    try:
        controllers = _read(f"{outer_fs}/cgroup.controllers").split()
        if controllers:
            _write(f"{outer_fs}/cgroup.subtree_control", " ".join("+" + c for c in controllers))
        os.mkdir(cg_parent.mountpoint + inner)
        try:
            yield cg_parent.mountpoint, cg_path, inner
        finally:
            os.rmdir(cg_parent.mountpoint + inner)
    finally:
        os.rmdir(outer_fs)
        if added:
            _write(f"{cg_parent.fs_path}/cgroup.subtree_control",
                   " ".join("-" + c for c in added))


def _run_child(mountpoint: str, group: str, argv: list[str] | None = None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen(
        argv or [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env,
    )
    try:
        cgroup2.Manager(mountpoint, group).add_proc(p.pid)
        out, _ = p.communicate("go\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def test_child_sees_its_own_group_and_the_tighter_parent_limit(
    nested: tuple[str, str, str],
) -> None:
    mnt, outer, inner = nested
    outer_fs, inner_fs = mnt + outer, mnt + inner
    has = set(_read(f"{outer_fs}/cgroup.controllers").split())
    huge = "hugetlb" in has and os.path.exists(f"{inner_fs}/hugetlb.2MB.max")
    cpu = "cpu" in has
    memory = "memory" in has
    if huge:  # the tighter limit on the outer group, a looser one on the inner
        _write(f"{outer_fs}/hugetlb.2MB.max", str(4 * HUGE_2M))
        _write(f"{inner_fs}/hugetlb.2MB.max", str(8 * HUGE_2M))
    if cpu:
        _write(f"{outer_fs}/cpu.max", "150000 100000")
        _write(f"{inner_fs}/cpu.max", "400000 200000")
    if memory:
        _write(f"{outer_fs}/memory.max", str(256 << 20))
        _write(f"{inner_fs}/memory.max", str(512 << 20))

    got = _run_child(mnt, inner)
    lim = got["limits"]
    assert got["group"] == inner and got["path"] == inner_fs
    assert lim["group"] == inner and lim["top"] == "/" and lim["ancestors_hidden"] is False

    # what the mount does not hold is said to be unseen, and nothing of it is reported
    root = set(_read(f"{mnt}/cgroup.controllers").split())
    on_v1 = {c for c in BOUND if c in hierarchies() and c not in root}
    assert set(lim["unseen"]) == {c for c in CONTROLLERS if c not in root} - on_v1
    for c in on_v1:
        assert lim["hierarchies"][c]["version"] == 1
    v1 = {line.split(":")[1] for line in _read("/proc/self/cgroup").splitlines()
          if not line.startswith("0:")}
    for c, why in lim["unseen"].items():
        name = "blkio" if c == "io" else c
        if any(name in h.split(",") for h in v1):
            assert "cgroup v1" in why, (c, why)
    if "memory" in lim["unseen"]:
        assert lim["memory_max"] is None and got["memory_available"] is None
    if "cpu" in lim["unseen"]:
        assert lim["cpu_quota"] is None

    if huge:
        assert lim["hugetlb"]["2MB"] == {"value": 4 * HUGE_2M, "group": outer, "current": 0,
                                         "version": 2, "hierarchy": mnt}
    if memory:
        assert lim["memory_max"]["value"] == 256 << 20 and lim["memory_max"]["group"] == outer
        assert 0 < got["memory_available"] <= 256 << 20
    expect = got["affinity"]
    if lim["cpuset"] is not None:
        expect = min(expect, len(lim["cpuset"]))
    if cpu:
        assert lim["cpu_quota"] == {"value": 1.5, "group": outer, "current": None,
                                    "version": 2, "hierarchy": mnt}
        expect = min(expect, math.ceil(1.5))
    assert got["cpu_count"] == lim["cpu_count"] == max(1, expect)
    print(f"\nhugetlb={huge} cpu_count={got['cpu_count']} os.cpu_count={got['os_cpu_count']} "
          f"affinity={got['affinity']} unseen={sorted(lim['unseen'])}")


def test_current_is_this_process_group_and_read_only() -> None:
    m = cgroup2.current()
    assert m.group == pid_group_path(os.getpid())
    assert m.path == (m.mountpoint if m.group == "/" else m.mountpoint + m.group)
    assert m == cgroup2.Manager(m.mountpoint, m.group)
    # refused before any file is opened: nothing of this process's group is changed
    for call in (m.freeze, m.thaw, m.kill, m.delete, lambda: m.add_proc(os.getpid()),
                 lambda: m.update(None)):
        with pytest.raises(cgroup2.CgroupError, match="read-only"):
            call()
    lim = m.effective_limits()
    assert lim.group == m.group
    assert lim.affinity == frozenset(os.sched_getaffinity(0))
    assert 1 <= cgroup2.cpu_count() <= len(os.sched_getaffinity(0))


def test_cgroup2_self_json_in_its_group(nested: tuple[str, str, str]) -> None:
    mnt, outer, inner = nested
    has = set(_read(f"{mnt}{outer}/cgroup.controllers").split())
    huge = "hugetlb" in has and os.path.exists(f"{mnt}{inner}/hugetlb.2MB.max")
    if huge:
        _write(f"{mnt}{outer}/hugetlb.2MB.max", str(2 * HUGE_2M))
    # the command waits for one line, by which time it is in the inner group
    argv = ["sh", "-c", 'read x; exec "$0" -m cgroup2 self --json', sys.executable]
    got = _run_child(mnt, inner, argv)
    assert got["group"] == inner and got["top"] == "/" and got["pid"] > 0
    assert got["cpu_count"] >= 1 and got["os_cpu_count"] == os.cpu_count()
    assert set(got["pressure"]) <= {"cpu", "memory", "io"}
    if huge:
        assert got["hugetlb"]["2MB"] == {"value": 2 * HUGE_2M, "group": outer, "current": 0,
                                         "version": 2, "hierarchy": mnt}
    root = set(_read(f"{mnt}/cgroup.controllers").split())
    on_v1 = {c for c in BOUND if c in hierarchies() and c not in root}
    assert set(got["unseen"]) == {c for c in CONTROLLERS if c not in root} - on_v1


def test_affinity_narrower_than_the_system_counts_one() -> None:
    first = min(os.sched_getaffinity(0))
    code = "import cgroup2, json, os; print(json.dumps([cgroup2.cpu_count(), os.cpu_count()]))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
        check=True, preexec_fn=lambda: os.sched_setaffinity(0, {first}),
    )
    count, system = json.loads(p.stdout)
    assert count == 1 and system == os.cpu_count()
