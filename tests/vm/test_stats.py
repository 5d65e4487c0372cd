"""vm tier: stat() of a group with every controller enabled, under real load.

The VM's kernel (6.1) has every controller. ``loaded_group`` enables them all in the
mount root and the run's parent, makes a group with limits, reserves huge pages, adds a
null_blk (or loop) block device and a soft-RoCE rdma device where the kernel has them,
and runs a worker in the group that burns CPU under a quota, touches anonymous memory and
a huge page, and does direct I/O on the block device, from the child group ``work``
(a group with controllers enabled for its children may hold no process itself). A
second child, ``oom``, has had one OOM kill, so memory.events counts. The group's own
files sum up both children. Everything made here is undone at the end.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cgtest import remove_tree
from conftest import Parent

from cgroup2 import CgroupDeletedError, StatMask
from cgroup2._fs import Dir
from cgroup2.controllers.hugetlb import page_sizes
from cgroup2.stats import U64_MAX, collect

CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
MAP_HUGETLB = 0x40000
HUGE = 2 << 20
O_DIRECT = getattr(os, "O_DIRECT", 0o40000)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _run(*cmd: str) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Loaded:
    fs: str  # the group's file system path
    work_fs: str  # its child group where the worker runs
    oom_fs: str  # its child group that had an OOM kill
    block_dev: str | None  # "major:minor" of the device the worker did I/O on
    rdma_dev: str | None
    huge_pages: int
    notes: list[str] = field(default_factory=list)


def _block_device(stack: contextlib.ExitStack, notes: list[str]) -> str | None:
    """A block device path for direct I/O: null_blk, else a loop device over /tmp."""
    if _run("modprobe", "null_blk", "nr_devices=1") and os.path.exists("/dev/nullb0"):
        stack.callback(_run, "rmmod", "null_blk")
        return "/dev/nullb0"
    notes.append("no null_blk; trying a loop device")
    backing = "/tmp/cgroup2-stat-loop.img"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    stack.callback(os.unlink, backing)
    out = subprocess.run(
        ["losetup", "-f", "--show", backing], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        notes.append(f"losetup failed: {out.stderr.strip()}")
        return None
    dev = out.stdout.strip()
    stack.callback(_run, "losetup", "-d", dev)
    return dev


def _rdma_device(stack: contextlib.ExitStack, notes: list[str]) -> str | None:
    """A soft-RoCE device over a dummy network interface, when the kernel has rdma_rxe."""
    if not (_run("modprobe", "dummy") and _run("modprobe", "rdma_rxe")):
        notes.append("no dummy/rdma_rxe module")
        return None
    if not _run("ip", "link", "add", "cg2dummy0", "type", "dummy"):
        notes.append("ip link add dummy failed")
        return None
    stack.callback(_run, "ip", "link", "del", "cg2dummy0")
    _run("ip", "link", "set", "cg2dummy0", "up")
    if not _run("rdma", "link", "add", "cg2rxe0", "type", "rxe", "netdev", "cg2dummy0"):
        notes.append("rdma link add failed")
        return None
    stack.callback(_run, "rdma", "link", "delete", "cg2rxe0")
    return "cg2rxe0"


def _worker(fs: str, ready_w: int, block: str | None) -> None:  # pragma: no cover - child
    """In the group: anonymous memory, a huge page, direct I/O, then CPU under a quota."""
    try:
        _write(fs + "/cgroup.procs", "0")
        anon = bytearray(48 << 20)
        for i in range(0, len(anon), 4096):
            anon[i] = 1
        try:
            huge = mmap.mmap(-1, HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
            huge[0] = 1
        except OSError:
            huge = None
        if block is not None:
            fd = os.open(block, os.O_RDWR | O_DIRECT)
            buf = mmap.mmap(-1, 1 << 20)
            buf.write(b"x" * (1 << 20))
            for off in range(0, 8 << 20, 1 << 20):
                os.pwritev(fd, [buf], off)
                os.preadv(fd, [buf], off)
            os.fsync(fd)
            os.close(fd)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        os.write(ready_w, b"1")
        while True:  # anon and huge stay mapped while this frame lives
            signal.pause()
    except BaseException as e:
        os.write(ready_w, f"worker failed: {e!r}".encode())
    finally:
        os._exit(0)


def _oom_once(oom_fs: str) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            _write(oom_fs + "/cgroup.procs", "0")
            hog = []
            while True:
                hog.append(bytearray(4 << 20))
                hog[-1][::4096] = b"x" * len(hog[-1][::4096])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


@contextlib.contextmanager
def loaded_group(parent: Parent, group: str) -> Iterator[Loaded]:
    if os.environ.get("CGROUP2_TIER") != "vm":
        pytest.skip("changes the mount root's subtree_control and kernel settings: vm tier only")
    mnt = parent.mountpoint
    with open(mnt + "/cgroup.controllers") as f:
        have = set(f.read().split())
    missing = set(CONTROLLERS) - have
    if missing:
        pytest.skip(f"the kernel lacks controllers {sorted(missing)}")
    for base in (mnt, parent.fs_path):
        for c in CONTROLLERS:
            _write(base + "/cgroup.subtree_control", "+" + c)
    fs = mnt + group
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        with open("/proc/sys/vm/nr_hugepages") as f:
            old_huge = f.read().strip()
        _write("/proc/sys/vm/nr_hugepages", "4")
        stack.callback(_write, "/proc/sys/vm/nr_hugepages", old_huge)
        with open("/proc/sys/vm/nr_hugepages") as f:
            huge_pages = int(f.read())
        block = _block_device(stack, notes)
        rdma = _rdma_device(stack, notes)
        print(f"stat set-up: block device {block}, rdma device {rdma}; notes: {notes}")
        # the VM's kernel has null_blk/loop and rdma_rxe: a missing device is a broken
        # set-up, not a reason to drop the io and rdma assertions
        assert block is not None, f"no block device for the io assertions: {notes}"
        assert rdma is not None, f"no rdma device for the rdma assertions: {notes}"
        os.mkdir(fs)
        stack.callback(remove_tree, fs)
        _write(fs + "/cgroup.subtree_control", "+memory")
        _write(fs + "/pids.max", "64")
        _write(fs + "/memory.max", str(512 << 20))
        _write(fs + "/cpu.max", "20000 100000")
        _write(fs + "/hugetlb.2MB.max", str(4 * HUGE))
        if rdma is not None:
            _write(fs + "/rdma.max", f"{rdma} hca_handle=10 hca_object=max")
        oom_fs, work_fs = fs + "/oom", fs + "/work"
        os.mkdir(oom_fs)
        os.mkdir(work_fs)
        _write(oom_fs + "/memory.max", str(16 << 20))
        _oom_once(oom_fs)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(r)
            _worker(work_fs, w, block)
        os.close(w)

        def _stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

        stack.callback(_stop)
        ready = os.read(r, 4096)
        assert ready == b"1", ready or "the worker died before it was ready"
        os.close(r)
        dev = None
        if block is not None:
            st = os.stat(block)
            dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        yield Loaded(fs, work_fs, oom_fs, dev, rdma, huge_pages, notes)


def test_stat_every_controller_filled(cg_parent: Parent, cg_path: str) -> None:
    with loaded_group(cg_parent, cg_path) as g, Dir.open(g.fs) as d:
        m = collect(d)
        # pids
        assert m.pids is not None and m.pids.current == 1 and m.pids.limit == 64
        # cpu: the controller's keys, and throttling under the 20% quota
        c = m.cpu
        assert c is not None and c.usage_usec is not None and c.usage_usec > 200_000
        assert c.user_usec is not None and c.system_usec is not None
        assert c.nr_periods is not None and c.nr_periods > 0
        assert c.nr_throttled is not None and c.nr_throttled > 0
        assert c.throttled_usec is not None and c.throttled_usec > 0
        assert c.nr_bursts is not None and c.burst_usec is not None
        assert c.psi is not None and c.psi.some is not None and c.psi.full is not None
        # memory
        mem = m.memory
        assert mem is not None
        assert mem.anon is not None and mem.anon >= 40 << 20
        assert mem.usage is not None and mem.usage >= mem.anon
        assert mem.usage_limit == 512 << 20
        assert mem.max_usage is not None and mem.max_usage >= mem.usage
        assert mem.swap_limit == U64_MAX  # memory.swap.max "max"
        assert mem.pgfault is not None and mem.pgfault > 0
        assert mem.anon_thp is not None and mem.thp_fault_alloc is not None
        assert "kernel" in mem.other or "percpu" in mem.other  # keys beyond the 31
        assert mem.psi is not None
        # memory events: the child group's OOM kill counts here too (hierarchical)
        ev = m.memory_events
        assert ev is not None and ev.oom_kill is not None and ev.oom_kill >= 1
        assert ev.max is not None and ev.max >= 1 and ev.oom_group_kill == 0
        # io
        assert m.io is not None and m.io.usage is not None and m.io.psi is not None
        (e,) = [e for e in m.io.usage if f"{e.major}:{e.minor}" == g.block_dev]
        assert e.wbytes is not None and e.wbytes >= 8 << 20
        assert e.rbytes is not None and e.rbytes >= 8 << 20
        assert e.wios and e.rios and e.dbytes is not None and e.dios is not None
        # rdma
        assert m.rdma is not None and m.rdma.limit is not None
        (cur,) = [x for x in m.rdma.current if x.device == g.rdma_dev]
        (lim,) = [x for x in m.rdma.limit if x.device == g.rdma_dev]
        assert cur.hca_handles == 0 and cur.hca_objects == 0
        assert lim.hca_handles == 10 and lim.hca_objects == U64_MAX
        # hugetlb: every page size, the worker's huge page in 2MB
        assert m.hugetlb is not None
        assert [h.pagesize for h in m.hugetlb] == list(page_sizes())
        (h2,) = [h for h in m.hugetlb if h.pagesize == "2MB"]
        assert h2.max == 4 * HUGE and h2.failcnt == 0
        assert g.huge_pages == 4, "the VM could not reserve 4 huge pages"
        assert h2.current == HUGE
        assert h2.rsvd_current is not None and h2.rsvd_max == U64_MAX
        # misc: one entry per resource the kernel lists in the group's misc.current (none
        # in this VM: no SEV/TDX), each with its current and max
        assert m.misc is not None
        with open(g.fs + "/misc.current") as f:
            listed = [line.split()[0] for line in f.read().splitlines()]
        print(f"misc resources: {listed}")
        assert [x.name for x in m.misc] == listed
        assert all(x.current is not None and x.max is not None for x in m.misc)
        # cpuset
        online = tuple(sorted(os.sched_getaffinity(0)))  # every CPU of the VM (1 or 2)
        assert m.cpuset is not None and m.cpuset.cpus_effective == online
        assert m.cpuset.mems_effective == (0,)
        # the mask reads only what it names
        only = collect(d, StatMask.PIDS | StatMask.IO_PRESSURE)
        assert only.pids is not None and only.pids.limit == 64
        assert only.cpu is None and only.memory is None and only.hugetlb is None
        assert only.io is not None and only.io.usage is None and only.io.psi is not None
        # JSON carries it all
        doc = m.to_dict()
        assert doc["memory_events"]["oom_kill"] >= 1 and doc["pids"]["limit"] == 64
        assert {"pids", "cpu", "memory", "memory_events", "rdma", "io", "hugetlb"} <= set(doc)


def test_stat_of_a_child_without_controllers(cg_parent: Parent, cg_path: str) -> None:
    """The OOM child has only memory: the others are absent (None), cpu.stat still read."""
    with loaded_group(cg_parent, cg_path) as g, Dir.open(g.oom_fs) as d:
        m = collect(d)
        assert m.memory is not None and m.memory.usage_limit == 16 << 20
        assert m.memory_events is not None and m.memory_events.oom_kill == 1
        assert m.pids is None and m.rdma is None and m.hugetlb is None and m.misc is None
        assert m.cpuset is None
        assert m.cpu is not None and m.cpu.usage_usec is not None and m.cpu.nr_periods is None


def test_stat_of_the_root(cg_parent: Parent) -> None:
    if os.environ.get("CGROUP2_TIER") != "vm":
        pytest.skip("vm tier only")
    with Dir.open(cg_parent.mountpoint) as d:
        m = collect(d)
    assert m.cpu is not None and m.cpu.usage_usec is not None
    assert m.memory is not None and m.memory.anon is not None and m.memory.usage is None


def test_removed_group_raises_deleted(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    d = Dir.open(fs)
    try:
        os.rmdir(fs)
        with pytest.raises(CgroupDeletedError):
            collect(d)
    finally:
        d.close()


def test_benchmark_runs_in_vm() -> None:
    """benchmarks/stat.py in the VM: every controller on, each file read once."""
    if os.environ.get("CGROUP2_TIER") != "vm":
        pytest.skip("vm tier only (the host tier runs the benchmark by hand)")
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        for c in f.read().split():
            _write("/sys/fs/cgroup/cgroup.subtree_control", "+" + c)
    bench = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "stat.py")
    out = subprocess.run(
        [sys.executable, bench, "--groups", "20", "--rounds", "20", "--many", "2000", "--strace"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "each file once per group: yes" in out.stdout
    assert "'memory'" in out.stdout  # the groups had the memory controller
