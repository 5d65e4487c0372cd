"""vm tier: each limit written by the Manager is enforced by the kernel.

Runs in the VM (every controller at /sys/fs/cgroup, 2 CPUs, software-emulated: timings are
generous). Each test creates its groups with :class:`cgroup2.Manager` below ``cg_path``,
starts its processes directly inside them, and removes groups and processes at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import (
    BFQ,
    CPU,
    IO,
    RDMA,
    CPUMax,
    Entry,
    HugeTlbEntry,
    IOType,
    KernelError,
    Manager,
    Memory,
    Pids,
    RDMAEntry,
    Resources,
)
from cgroup2.controllers.io import WeightDevice

MiB = 1 << 20
BUSY = ["sh", "-c", "while :; do :; done"]

if os.environ.get("CGROUP2_TIER") != "vm":
    pytest.skip("vm tier: run with scripts/vm-test tests/vm", allow_module_level=True)


class Spawner:
    """Starts processes directly inside a group (joined between fork and exec)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(
        self, m: Manager, argv: list[str], *, cpus: set[int] | None = None, **kw: object
    ) -> subprocess.Popen[bytes]:
        def join() -> None:
            # Affinity after joining: attaching to a group with the cpuset controller
            # resets a task's affinity to the group's effective cpus.
            m.add_proc(os.getpid())
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        kw.setdefault("stdin", subprocess.DEVNULL)
        p: subprocess.Popen[bytes] = subprocess.Popen(argv, preexec_fn=join, **kw)  # type: ignore[call-overload]
        self.started.append(p)
        return p

    def python(self, m: Manager, code: str, **kw: object) -> subprocess.Popen[bytes]:
        return self(m, [sys.executable, "-S", "-c", code], stdout=subprocess.PIPE, **kw)

    def cleanup(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    f.close()


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    before = set(os.listdir("/proc/self/fd"))
    s = Spawner()
    try:
        yield s
    finally:
        s.cleanup()
    left = set(os.listdir("/proc/self/fd")) - before
    assert not {fd for fd in left if os.path.exists(f"/proc/self/fd/{fd}")}, "fds leaked"


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """``cg_path``, removed with everything in it after the test (also on failure)."""
    yield cg_path
    with contextlib.suppress(Exception):
        Manager.load(cg_path, mountpoint=cg_parent.mountpoint).delete(kill=True)


def read(m: Manager, name: str) -> str:
    with open(f"{m.path}/{name}") as f:
        return f.read()


def keyed(m: Manager, name: str) -> dict[str, int]:
    out = {}
    for line in read(m, name).splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v)
    return out


# --- pids ----------------------------------------------------------------------------------


def test_pids_max_makes_fork_fail(group: str, spawn: Spawner) -> None:
    m = Manager.create(group, Resources(pids=Pids(max=3)))
    assert read(m, "pids.max") == "3\n"
    p = spawn.python(
        m,
        "import os, time\n"
        "kids, err = [], 0\n"
        "for _ in range(5):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(len(kids), err, flush=True)\n"
        "for k in kids:\n"
        "    os.kill(k, 9)\n"
        "    os.waitpid(k, 0)\n",
    )
    out, _ = p.communicate(timeout=60)
    assert out.split() == [b"2", str(errno.EAGAIN).encode()]  # 1 + 2 tasks = pids.max
    assert keyed(m, "pids.events")["max"] >= 1
    m.update(Resources(pids=Pids(max=-1)))
    assert read(m, "pids.max") == "max\n"
    m.delete()


# --- memory --------------------------------------------------------------------------------


def _swap_off(m: Manager) -> Memory:
    """Memory(swap=0) where the kernel has swap accounting, so that nothing is swapped."""
    return Memory(swap=0) if os.path.exists(f"{m.path}/memory.swap.max") else Memory()


def test_memory_max_oom_kills_and_counts(group: str, spawn: Spawner) -> None:
    m = Manager.create(group, Resources(memory=Memory()))
    swap = _swap_off(m).swap
    m.update(Resources(memory=Memory(max=48 * MiB, swap=swap)))
    assert read(m, "memory.max") == f"{48 * MiB}\n"
    p = spawn.python(m, "x = b'\\1' * (200 << 20)\nprint('survived', flush=True)\n")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == -9 and b"survived" not in out
    ev = keyed(m, "memory.events")
    print(f"\nmemory.max: memory.events {ev}")
    assert ev["oom_kill"] >= 1 and ev["max"] >= 1, ev
    m.delete()


def test_memory_high_throttles_and_counts(group: str, spawn: Spawner) -> None:
    m = Manager.create(group, Resources(memory=Memory()))
    swap = _swap_off(m).swap
    m.update(Resources(memory=Memory(swap=swap)))
    p = spawn.python(
        m,
        "import sys\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "chunks = []\n"
        "for i in range(96):\n"
        "    chunks.append(b'\\1' * (1 << 20))\n"
        "    print(i, flush=True)\n",
        stdin=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdin is not None
    assert p.stdout.readline() == b"ready\n"
    base = int(read(m, "memory.current"))
    m.update(Resources(memory=Memory(high=base + 16 * MiB)))
    assert read(m, "memory.max") == "max\n"  # high throttles; it does not kill
    p.stdin.write(b"go\n")
    p.stdin.flush()
    time.sleep(4)
    assert p.poll() is None, "the allocating process should be throttled, not done or killed"
    p.kill()
    out, _ = p.communicate(timeout=30)
    done = len(out.split())
    ev = keyed(m, "memory.events")
    print(f"\nmemory.high: {done} MiB allocated in 4 s, memory.events {ev}")
    assert ev["high"] >= 1, ev
    assert ev["oom_kill"] == 0, ev
    # 96 MiB unthrottled takes well under a second even here; throttled, far less gets done
    assert done < 80, f"{done} MiB allocated in 4 s above memory.high"
    m.delete()


# --- cpu -----------------------------------------------------------------------------------


def _usage_usec(m: Manager) -> int:
    return keyed(m, "cpu.stat")["usage_usec"]


def test_cpu_max_throttles_to_the_quota(group: str, spawn: Spawner) -> None:
    m = Manager.create(group, Resources(cpu=CPU(max=CPUMax.new(50_000, 100_000))))
    assert read(m, "cpu.max") == "50000 100000\n"
    spawn(m, BUSY)
    time.sleep(0.5)
    u0, s0, t0 = _usage_usec(m), keyed(m, "cpu.stat"), time.monotonic()
    time.sleep(3)
    u1, s1, t1 = _usage_usec(m), keyed(m, "cpu.stat"), time.monotonic()
    share = (u1 - u0) / 1e6 / (t1 - t0)
    print(f"\ncpu.max 50000/100000: CPU use {share:.3f} of one CPU, "
          f"nr_throttled +{s1['nr_throttled'] - s0['nr_throttled']}")
    assert s1["nr_throttled"] > s0["nr_throttled"]
    assert 0.4 <= share <= 0.6, f"CPU use {share:.2f} of one CPU, quota 0.5 (within 20%)"
    m.delete(kill=True)


def test_cpu_weight_shares_one_cpu_in_proportion(group: str, spawn: Spawner) -> None:
    parent = Manager.create(group)
    a = parent.new_child("a", Resources(cpu=CPU(weight=100)))
    b = parent.new_child("b", Resources(cpu=CPU(weight=300)))
    assert read(a, "cpu.weight") == "100\n" and read(b, "cpu.weight") == "300\n"
    spawn(a, BUSY, cpus={0})
    spawn(b, BUSY, cpus={0})
    time.sleep(0.5)
    a0, b0 = _usage_usec(a), _usage_usec(b)
    time.sleep(3)
    da, db = _usage_usec(a) - a0, _usage_usec(b) - b0
    ratio = db / da
    print(f"\ncpu.weight 300/100 on one CPU: CPU time ratio {ratio:.3f}")
    assert 2.4 <= ratio <= 3.6, f"CPU time b/a = {ratio:.2f}, weights 300/100"
    parent.delete(kill=True)


#: cpuset tests that move a process between CPUs 0 and 1
TWO_CPUS = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2,
    reason="needs 2 CPUs: this VM has 1 (scripts/test-all --stress); the usual vm run has 2",
)


@TWO_CPUS
def test_cpuset_cpus_sets_the_affinity(group: str, spawn: Spawner) -> None:
    m = Manager.create(group, Resources(cpu=CPU(cpus="1", mems="0")))
    assert read(m, "cpuset.cpus") == "1\n" and read(m, "cpuset.mems") == "0\n"
    assert "cpuset" in m.controllers()
    p = spawn(m, ["sleep", "60"])
    assert os.sched_getaffinity(p.pid) == {1}
    m.update(Resources(cpu=CPU(cpus="0-1")))
    assert os.sched_getaffinity(p.pid) == {0, 1}
    m.update(Resources(cpu=CPU(cpus="0")))
    assert os.sched_getaffinity(p.pid) == {0}
    m.delete(kill=True)


@TWO_CPUS
def test_cpuset_lists_with_blanks_are_written_in_the_kernels_form(group: str) -> None:
    # blanks, empty items and strides, as the kernel reads them; written as it prints them
    m = Manager.create(group, Resources(cpu=CPU(cpus=" 0, 1,", mems=",0")))
    assert read(m, "cpuset.cpus") == "0-1\n" and read(m, "cpuset.mems") == "0\n"
    m.update(Resources(cpu=CPU(cpus="0-1:1/2")))
    assert read(m, "cpuset.cpus") == "0\n"
    m.update(Resources(cpu=CPU(cpus="1\t0")))
    assert read(m, "cpuset.cpus") == "0-1\n"
    m.delete(kill=True)


# --- io ------------------------------------------------------------------------------------


def _block_device() -> Iterator[str]:
    """A block device to throttle: a disk attached to the VM, else a null_blk device."""
    disks = sorted(d for d in os.listdir("/sys/block") if d.startswith(("sd", "vd")))
    if disks:
        yield disks[0]
        return
    loaded = False
    if not os.path.exists("/sys/block/nullb0"):
        r = subprocess.run(["modprobe", "null_blk"], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists("/sys/block/nullb0"):
            pytest.skip(f"no disk attached and no null_blk device: {r.stderr.strip()}")
        loaded = True
    try:
        yield "nullb0"
    finally:
        if loaded:
            subprocess.run(["modprobe", "-r", "null_blk"], capture_output=True)


@pytest.fixture
def block_device() -> Iterator[str]:
    yield from _block_device()


def _read_rate(m: Manager, major: int, minor: int, seconds: float) -> float:
    """Bytes per second the group read from the device over ``seconds`` (io.stat)."""
    r0, t0 = keyed_io(m, major, minor).get("rbytes", 0), time.monotonic()
    time.sleep(seconds)
    r1, t1 = keyed_io(m, major, minor).get("rbytes", 0), time.monotonic()
    return (r1 - r0) / (t1 - t0)


def test_io_max_limits_read_bandwidth(group: str, spawn: Spawner, block_device: str) -> None:
    major, minor = _dev_numbers(block_device)
    rate = MiB
    io = IO(max=[Entry(IOType.READ_BPS, major, minor, rate), Entry("wiops", major, minor, -1)])
    m = Manager.create(group, Resources(io=io))
    assert f"{major}:{minor} rbps={rate} wbps=max riops=max wiops=max" in read(m, "io.max")
    # direct reads that outlast the measurement (killed after it)
    dd = ["dd", f"if=/dev/{block_device}", "of=/dev/null", "bs=64k", "iflag=direct"]
    p = spawn(m, dd, stderr=subprocess.DEVNULL)
    time.sleep(1)  # past the first slice, which the kernel lets through at once
    got = _read_rate(m, major, minor, 4)
    print(f"\nio.max rbps={rate} on {block_device}: {got / MiB:.3f} MiB/s over 4 s")
    assert p.poll() is None, "dd ended early (device too small?)"
    assert 0.75 * rate <= got <= 1.25 * rate, f"{got / MiB:.3f} MiB/s read, limit 1 MiB/s"
    m.update(Resources(io=IO(max=[Entry(IOType.READ_BPS, major, minor, "max")])))
    assert f"{major}:{minor}" not in read(m, "io.max")  # all max: the line goes away
    free = _read_rate(m, major, minor, 1)
    print(f"io.max removed: {free / MiB:.1f} MiB/s")
    assert free > 3 * rate, "without the limit the same reads should be much faster"
    p.kill()
    p.wait()
    m.delete()


def _dev_numbers(block_device: str) -> tuple[int, int]:
    with open(f"/sys/block/{block_device}/dev") as f:
        major, minor = (int(x) for x in f.read().split(":"))
    return major, minor


def _put(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_io_weight_per_device(cg_parent: Parent, group: str, block_device: str) -> None:
    """A per-device io.weight line (OCI weightDevice) is refused by the kernel unless the
    device runs iocost; once it does, the group reads back the weight for that device."""
    major, minor = _dev_numbers(block_device)
    qos = f"{cg_parent.mountpoint}/io.cost.qos"
    if not os.path.exists(qos):
        pytest.skip("this kernel has no blk-iocost (no io.cost.qos)")
    io = IO(weight=50, weight_device=[WeightDevice(major, minor, 300)])
    with open(qos) as f:
        started = any(line.startswith(f"{major}:{minor} ") for line in f)
    if not started:  # iocost never set up on the device (it stays once it has been)
        with pytest.raises(KernelError) as e:
            Manager.create(group, Resources(io=io))
        print(f"\nper-device io.weight without iocost on {block_device}: {e.value}")
        assert e.value.errno == errno.EOPNOTSUPP
        assert "io.weight" in str(e.value) and f"{major}:{minor} 300" in str(e.value)
        assert not os.path.exists(cg_parent.mountpoint + group), "a failed create left its group"
    _put(qos, f"{major}:{minor} enable=1")  # the VM's root: ours to change
    try:
        m = Manager.create(group, Resources(io=io))
        lines = read(m, "io.weight").splitlines()
        print(f"io.weight with iocost on {block_device}: {lines}")
        assert "default 50" in lines and f"{major}:{minor} 300" in lines
        m.update(Resources(io=IO(weight_device=[WeightDevice(major, minor, 7)])))
        assert f"{major}:{minor} 7" in read(m, "io.weight").splitlines()
        m.delete()
    finally:
        _put(qos, f"{major}:{minor} enable=0")


def test_io_weight_per_device_shares_the_device(
    cg_parent: Parent, group: str, spawn: Spawner, block_device: str
) -> None:
    """Two groups reading the same device at once, per-device weights 100 and 300: with
    iocost on the device (a fixed cost model of 4 MiB/s and vrate pinned at 100%, so the
    device is saturated whatever the emulation's speed), the kernel shares it 1:3."""
    major, minor = _dev_numbers(block_device)
    root = cg_parent.mountpoint
    if not os.path.exists(f"{root}/io.cost.qos"):
        pytest.skip("this kernel has no blk-iocost (no io.cost.qos)")
    dev = f"{major}:{minor}"
    _put(f"{root}/io.cost.model", f"{dev} ctrl=user model=linear rbps=4194304 "
         "rseqiops=1024 rrandiops=1024 wbps=4194304 wseqiops=1024 wrandiops=1024")
    _put(f"{root}/io.cost.qos", f"{dev} enable=1 ctrl=user min=100.00 max=100.00")
    try:
        parent = Manager.create(group)
        a = parent.new_child("a", Resources(io=IO(weight_device=[WeightDevice(major, minor, 100)])))
        b = parent.new_child("b", Resources(io=IO(weight_device=[WeightDevice(major, minor, 300)])))
        dd = ["dd", f"if=/dev/{block_device}", "of=/dev/null", "bs=64k", "count=1000000",
              "iflag=direct"]
        spawn(a, dd, stderr=subprocess.DEVNULL)
        spawn(b, dd, stderr=subprocess.DEVNULL)
        time.sleep(1)
        a0, b0 = (keyed_io(g, major, minor).get("rbytes", 0) for g in (a, b))
        time.sleep(4)
        a1, b1 = (keyed_io(g, major, minor).get("rbytes", 0) for g in (a, b))
        da, db = a1 - a0, b1 - b0
        ratio = db / da if da else float("inf")
        print(f"\nio.weight {dev} 300/100 (iocost): {da / 4 / MiB:.2f} and {db / 4 / MiB:.2f} "
              f"MiB/s, ratio {ratio:.2f}")
        assert (da + db) / 4 < 8 * MiB, "the cost model's 4 MiB/s was not enforced"
        assert 2.0 <= ratio <= 4.5, f"read bytes b/a = {ratio:.2f}, weights 300/100"
        parent.delete(kill=True)
    finally:
        _put(f"{root}/io.cost.qos", f"{dev} enable=0")


def test_io_bfq_weight_per_device(group: str, block_device: str) -> None:
    """With BFQ as the device's scheduler, a per-device io.bfq.weight line reads back."""
    major, minor = _dev_numbers(block_device)
    sched = f"/sys/block/{block_device}/queue/scheduler"
    subprocess.run(["modprobe", "bfq"], capture_output=True)
    with open(sched) as f:
        offered = f.read()
    if "bfq" not in offered.replace("[", " ").replace("]", " ").split():
        pytest.skip(f"BFQ is not offered for {block_device}: {offered.strip()}")
    before = offered.split("[", 1)[1].split("]", 1)[0]
    _put(sched, "bfq")
    try:
        io = IO(bfq=BFQ(50), bfq_device=[WeightDevice(major, minor, 300)])
        m = Manager.create(group, Resources(io=io))
        lines = read(m, "io.bfq.weight").splitlines()
        print(f"\nio.bfq.weight with BFQ on {block_device}: {lines}")
        assert "default 50" in lines and f"{major}:{minor} 300" in lines
        m.delete()
    finally:
        _put(sched, before)


def keyed_io(m: Manager, major: int, minor: int) -> dict[str, int]:
    for line in read(m, "io.stat").splitlines():
        dev, *kv = line.split()
        if dev == f"{major}:{minor}":
            return {k: int(v) for k, v in (x.split("=") for x in kv)}
    return {}


# --- rdma ----------------------------------------------------------------------------------

_IBDEV = "cg2rxe0"
_NETDEV = "cg2dummy0"


@pytest.fixture
def rxe_device() -> Iterator[str]:
    """A soft-RoCE device on a dummy netdev, or a skip saying why there is none."""
    steps = [
        ["modprobe", "rdma_rxe"],
        ["ip", "link", "add", _NETDEV, "type", "dummy"],
        ["ip", "link", "set", _NETDEV, "up"],
        ["rdma", "link", "add", _IBDEV, "type", "rxe", "netdev", _NETDEV],
    ]
    try:
        for cmd in steps:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except FileNotFoundError:
                pytest.skip(f"no rdma device: {cmd[0]} is not installed")
            if r.returncode != 0:
                pytest.skip(f"no rdma device: {' '.join(cmd)}: {r.stderr.strip()}")
        for uverbs in os.listdir("/sys/class/infiniband_verbs"):
            path = f"/sys/class/infiniband_verbs/{uverbs}/ibdev"
            if not os.path.exists(path):
                continue
            with open(path) as f:
                if f.read().strip() != _IBDEV:
                    continue
            yield f"/dev/infiniband/{uverbs}"
            break
        else:
            pytest.skip(f"no uverbs character device for {_IBDEV}")
    finally:
        subprocess.run(["rdma", "link", "delete", _IBDEV], capture_output=True)
        subprocess.run(["ip", "link", "del", _NETDEV], capture_output=True)


# Opens a verbs context (one hca_handle) with the kernel's GET_CONTEXT command, written to
# the uverbs device as rdma-core does, twice; prints the errno of each (0: success).
_GET_CONTEXTS = """
import ctypes, os, struct, sys
resp = ctypes.create_string_buffer(64)
res = []
for _ in range(2):
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        os.write(fd, struct.pack("=IHHQ", 0, 4, 2, ctypes.addressof(resp)))
        res.append(0)
    except OSError as e:
        res.append(e.errno)
print(*res, flush=True)
sys.stdin.readline()
"""


def test_rdma_max_limits_hca_handles(group: str, spawn: Spawner, rxe_device: str) -> None:
    m = Manager.create(group, Resources(rdma=RDMA([RDMAEntry(_IBDEV, 1, -1)])))
    assert f"{_IBDEV} hca_handle=1 hca_object=max" in read(m, "rdma.max")
    p = spawn(
        m,
        [sys.executable, "-S", "-c", _GET_CONTEXTS, rxe_device],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdin is not None
    assert p.stdout.readline().split() == [b"0", str(errno.EAGAIN).encode()]
    assert f"{_IBDEV} hca_handle=1 " in read(m, "rdma.current")
    p.stdin.write(b"\n")
    p.stdin.flush()
    p.wait(timeout=30)
    m.delete()


# --- the rest of values(), and unified --------------------------------------------------


@TWO_CPUS
def test_every_typed_value_reads_back(group: str, spawn: Spawner) -> None:
    r = Resources(
        cpu=CPU(weight=42, max=CPUMax.new(20_000, 50_000), cpus="0-1", mems="0", idle=False,
                burst=1000),
        memory=Memory(max=64 * MiB, low=MiB, high=32 * MiB, min=MiB, oom_group=True),
        pids=Pids(max=50),
        io=IO(weight=200),
        hugetlb=[HugeTlbEntry("2MB", 4 * MiB)],
    )
    m = Manager.create(group, r)
    expect = {
        "cpu.weight": "42",
        "cpu.max": "20000 50000",
        "cpuset.cpus": "0-1",
        "cpuset.mems": "0",
        "cpu.idle": "0",
        "cpu.max.burst": "1000",
        "memory.max": str(64 * MiB),
        "memory.low": str(MiB),
        "memory.high": str(32 * MiB),
        "memory.min": str(MiB),
        "memory.oom.group": "1",
        "pids.max": "50",
        "io.weight": "default 200",
        "hugetlb.2MB.max": str(4 * MiB),
    }
    assert {k: read(m, k).strip() for k in expect} == expect
    for v in r.values():
        assert v.filename in expect
    m.delete()


def test_unified_map_writes(group: str, spawn: Spawner) -> None:
    r = Resources(
        pids=Pids(max=100),
        unified={"pids.max": "7", "memory.high": "max", "cpu.weight": "77"},
    )
    m = Manager.create(group, r)
    assert read(m, "pids.max") == "7\n"  # unified is written last: it wins
    assert read(m, "cpu.weight") == "77\n"
    assert read(m, "memory.high") == "max\n"
    assert {"pids", "memory", "cpu"} <= set(m.controllers())
    m.delete()
