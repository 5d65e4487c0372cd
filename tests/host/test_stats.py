"""host: stat() on this machine's cgroup2 mount (kernel 6.18, hybrid: only hugetlb and the
core files are there, so cpu.stat usage keys and PSI are what the kernel gives)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import CgroupDeletedError, Manager, StatMask
from cgroup2._fs import Dir
from cgroup2.controllers.hugetlb import page_sizes
from cgroup2.stats import U64_MAX, collect, prometheus_text


def _spin() -> None:  # pragma: no cover - child
    while True:
        pass


@contextlib.contextmanager
def busy_group(fs: str) -> Iterator[int]:
    """A group at ``fs`` with one process burning CPU in it; removed afterwards."""
    os.mkdir(fs)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            with open(fs + "/cgroup.procs", "w") as f:
                f.write("0")
            os.write(w, b"1")
            _spin()
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
        os.close(r)
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(fs)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def test_cpu_usage_grows_and_psi_is_read(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    with busy_group(fs), Dir.open(fs) as d:
        first = collect(d)
        time.sleep(0.5)
        second = collect(d)
        assert first.cpu is not None and second.cpu is not None
        a, b = first.cpu.usage_usec, second.cpu.usage_usec
        assert a is not None and b is not None
        assert b - a > 100_000, (a, b)  # at least 0.1 s of CPU in 0.5 s
        assert second.cpu.user_usec is not None and second.cpu.user_usec > 0
        # PSI: core files, read without any controller (psi=1 on this kernel)
        for part in (second.cpu, second.memory, second.io):
            assert part is not None and part.psi is not None
            assert part.psi.some is not None and part.psi.full is not None
            assert part.psi.some.total >= 0
        assert second.memory is not None and second.memory.usage is None  # no memory ctl
        # through the Manager too
        m = Manager.load(cg_path, mountpoint=cg_parent.mountpoint).stat(StatMask.CPU)
        assert m.cpu is not None and m.cpu.usage_usec is not None and m.cpu.usage_usec >= b
        assert m.memory is None and m.pids is None


def test_each_file_read_once_on_the_real_kernel(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    asked: list[str] = []

    class Counting(Dir):
        def try_read(self, name: str) -> bytes | None:
            asked.append(name)
            return super().try_read(name)

        def read(self, name: str) -> bytes:
            asked.append(name)
            return super().read(name)

    with busy_group(fs):
        d = Dir.open(fs)
        c = Counting(d.fd, d.path)
        d.fd = -1
        with c:
            collect(c)
    counts = Counter(asked)
    assert counts and max(counts.values()) == 1, counts
    assert {"cpu.stat", "cpu.pressure", "memory.pressure", "io.pressure"} <= set(counts)


def test_hugetlb_read(cg_parent: Parent, cg_path: str) -> None:
    with open(cg_parent.fs_path + "/cgroup.controllers") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip(
                "hugetlb is not enabled for this run's parent: the mount root's "
                "cgroup.subtree_control lacks +hugetlb, and the host's root is not ours to change"
            )
    with open(cg_parent.fs_path + "/cgroup.subtree_control", "w") as f:
        f.write("+hugetlb")
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        size = page_sizes()[0]
        with open(f"{fs}/hugetlb.{size}.max", "w") as f:
            f.write(str(16 << 20))
        with Dir.open(fs) as d:
            m = collect(d, StatMask.HUGETLB)
        assert m.hugetlb is not None
        assert [h.pagesize for h in m.hugetlb] == list(page_sizes())
        h = m.hugetlb[0]
        assert h.max == 16 << 20 and h.current == 0 and h.failcnt == 0
        assert h.rsvd_current == 0 and h.rsvd_max is not None
        # no limit: 6.18 prints "max" only when the page counter's maximum is a whole
        # number of huge pages; else the number itself (2**63 - 4096), which is reported
        # as the kernel prints it (as containerd does)
        unlimited = (U64_MAX, 2**63 - 4096)
        assert h.rsvd_max in unlimited
        assert all(x.max in unlimited and x.rsvd_max in unlimited for x in m.hugetlb[1:])
    finally:
        os.rmdir(fs)


def test_absent_controllers_are_none(cg_parent: Parent, cg_path: str) -> None:
    """A group whose parent enables no controller: those parts are None, no error."""
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        os.mkdir(fs + "/inner")
        with open(fs + "/inner/cgroup.controllers") as f:
            assert f.read().split() == []
        with Dir.open(fs + "/inner") as d:
            m = collect(d)
        assert m.hugetlb is None and m.pids is None and m.memory_events is None
        assert m.rdma is None and m.misc is None and m.cpuset is None
        assert m.cpu is not None and m.cpu.usage_usec == 0 and m.cpu.nr_periods is None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(fs + "/inner")
        os.rmdir(fs)


def test_removed_during_stat_raises_deleted(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    with Dir.open(fs) as d:
        collect(d)
        os.rmdir(fs)
        with pytest.raises(CgroupDeletedError):
            collect(d)


def test_prometheus_of_real_groups(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    names = ["a", "b", "c"]
    try:
        metrics = {}
        with Dir.open(fs) as top:
            for n in names:
                top.mkdir(n)
                with top.child(n) as d:
                    metrics[f"{cg_path}/{n}"] = collect(d)
        text = prometheus_text(metrics)
        for n in names:
            assert f'cgroup_cpu_usage_seconds_total{{group="{cg_path}/{n}"}} ' in text
        assert text.count("# TYPE cgroup_cpu_usage_seconds_total counter") == 1
    finally:
        for n in names:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(f"{fs}/{n}")
        os.rmdir(fs)
