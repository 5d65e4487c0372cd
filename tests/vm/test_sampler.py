"""vm: cgroup2.Sampler with every controller (the host has only hugetlb and the core
files): the same Metrics as stat() for idle groups with limits on every controller, no
open or close on later samples (audit hook and os.close counted), and the two benchmarks
run once with their figures printed (benchmarks/stat.py: user/sys of a full stat and of
CPU+PSI; benchmarks/sample.py: sys per group per sample against open/read/close)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import Manager, Resources, Sampler
from cgroup2.controllers.memory import Memory
from cgroup2.controllers.pids import Pids

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")


def _vm_only() -> None:
    if os.environ.get("CGROUP2_TIER") != "vm":
        pytest.skip("vm tier only (the host tier runs the benchmarks by hand)")


def _enable_all(path: str) -> None:
    with open(path + "/cgroup.controllers") as f:
        ctl = f.read().split()
    for c in ctl:
        with contextlib.suppress(OSError), open(path + "/cgroup.subtree_control", "w") as f:
            f.write("+" + c)


@contextlib.contextmanager
def groups(parent: Parent, base: str, n: int) -> Iterator[list[Manager]]:
    _enable_all(parent.mountpoint)
    _enable_all(parent.fs_path)
    top = Manager.create(base, Resources(), mountpoint=parent.mountpoint)
    made = [top]
    try:
        _enable_all(top.path)
        for i in range(n):
            r = Resources(memory=Memory(max=(64 + i) << 20), pids=Pids(max=10 + i))
            made.append(Manager.create(f"{base}/g{i}", r, mountpoint=parent.mountpoint))
        yield made
    finally:
        for m in reversed(made):
            m.delete()


def test_sampler_equals_stat_with_every_controller(cg_parent: Parent, cg_path: str) -> None:
    _vm_only()
    with (
        groups(cg_parent, cg_path, 5) as made,
        Sampler(root=cg_path, mountpoint=cg_parent.mountpoint) as s,
    ):
        for _ in range(2):
            got = s.sample()
            assert list(got) == [m.group for m in made]
            for m in made[1:]:  # idle: every field equal, counters included
                want = m.stat()
                assert got[m.group] == want, m.group
        one = got[made[1].group]
        assert one.memory is not None and one.memory.usage_limit == 64 << 20
        assert one.pids is not None and one.pids.limit == 10
        assert one.memory.anon is not None and one.memory_events is not None
        assert one.io is not None and one.cpuset is not None and one.cpuset.cpus_effective
        opened: list[str] = []
        closed: list[int] = []
        on = [False]

        def hook(event: str, args: tuple[object, ...]) -> None:
            if on[0] and event == "open":
                opened.append(str(args[0]))

        sys.addaudithook(hook)  # cannot be removed: switched by ``on``
        real = os.close

        def close(fd: int) -> None:
            closed.append(fd)
            real(fd)

        on[0] = True
        os.close = close
        try:
            for _ in range(3):
                s.sample()
        finally:
            os.close = real
            on[0] = False
        assert opened == [] and closed == []
        assert s.fd_count > 10 * len(made)  # every controller's files are held


def _run(args: list[str]) -> str:
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=1800, check=False
    )
    print(out.stdout)
    assert "Traceback" not in out.stderr, out.stderr
    return out.stdout


def test_benchmarks_in_vm() -> None:
    _vm_only()
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        for c in f.read().split():
            with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as w:
                w.write("+" + c)
    stat = _run([os.path.join(BENCH, "stat.py"), "--groups", "20", "--rounds", "50", "--many", "0"])
    assert "'memory'" in stat and "user/sys" in stat
    sample = _run([os.path.join(BENCH, "sample.py"), "--groups", "100", "--rounds", "20"])
    assert "held / open+read+close" in sample and "result:" in sample
