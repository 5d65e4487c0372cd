"""vm tier: limits the kernel enforces, measured (not read back): hugetlb, io wbps/riops/
wiops, memory.swap.max, memory.min/low, cpu.max.burst, cpu.idle.

Runs in the VM of scripts/vm-test with its disk (``--disk``, /dev/sda): the io tests write
and read it raw, the swap and memory-protection tests make an ext4 file system on it.
Every test prints what it measured. The VM is ours: kernel settings (nr_hugepages,
swap) are changed and put back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import CPU, IO, CPUMax, Entry, HugeTlbEntry, IOType, Manager, Memory, Resources

MiB = 1 << 20
HUGE = 2 * MiB

if os.environ.get("CGROUP2_TIER") != "vm":
    pytest.skip("vm tier: run with scripts/vm-test tests/vm", allow_module_level=True)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _put(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _keyed(path: str) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v)
    return out


def _usage(m: Manager) -> int:
    return _keyed(f"{m.path}/cpu.stat")["usage_usec"]


class Procs:
    """Processes started directly in a group (joined between fork and exec); killed at
    the end of the test."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(
        self, m: Manager, argv: list[str], *, cpus: set[int] | None = None, **kw: object
    ) -> subprocess.Popen[bytes]:
        def join() -> None:
            m.add_proc(os.getpid())
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        kw.setdefault("stdin", subprocess.DEVNULL)
        p: subprocess.Popen[bytes] = subprocess.Popen(argv, preexec_fn=join, **kw)  # type: ignore[call-overload]
        self.started.append(p)
        return p

    def python(self, m: Manager, code: str, **kw: object) -> subprocess.Popen[bytes]:
        kw.setdefault("stdout", subprocess.PIPE)
        return self(m, [sys.executable, "-S", "-c", code], **kw)

    def cleanup(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=60)
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    f.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    yield cg_path
    with contextlib.suppress(Exception):
        Manager.load(cg_path, mountpoint=cg_parent.mountpoint).delete(kill=True)


@pytest.fixture
def disk() -> tuple[str, int, int]:
    """The VM's disk (scripts/vm-test --disk): name, major, minor."""
    names = sorted(d for d in os.listdir("/sys/block") if d.startswith(("sd", "vd")))
    have = sorted(os.listdir("/sys/block"))
    assert names, f"the vm tier runs with a disk (--disk): /sys/block has {have}"
    major, minor = (int(x) for x in _read(f"/sys/block/{names[0]}/dev").split(":"))
    return names[0], major, minor


@pytest.fixture
def ext4(disk: tuple[str, int, int]) -> Iterator[str]:
    """A fresh ext4 file system on the VM's disk, mounted; unmounted afterwards."""
    dev = f"/dev/{disk[0]}"
    r = subprocess.run(["mkfs.ext4", "-q", "-F", dev], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    where = tempfile.mkdtemp(prefix="cgroup2-ext4-")
    r = subprocess.run(["mount", dev, where], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], capture_output=True, timeout=60)
        os.rmdir(where)


# --- hugetlb --------------------------------------------------------------------------------

_HUGE_TOUCH = r"""
import mmap, sys
MAP_HUGETLB = 0x40000
m = mmap.mmap(-1, 4 * 2097152, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
for i in range(4):
    m[i * 2097152] = 1
    print(i + 1, flush=True)
"""


def test_hugetlb_max_sigbus_past_the_limit(group: str, procs: Procs) -> None:
    """hugetlb.2MB.max of 2 pages, 4 pages reserved in the VM: the third page faulted
    gets SIGBUS, and hugetlb.2MB.events counts it under max."""
    before = _read("/proc/sys/vm/nr_hugepages").strip()
    _put("/proc/sys/vm/nr_hugepages", "4")
    try:
        assert int(_read("/proc/sys/vm/nr_hugepages")) == 4, "the VM could not reserve 4 pages"
        m = Manager.create(group, Resources(hugetlb=[HugeTlbEntry("2MB", 2 * HUGE)]))
        assert _read(f"{m.path}/hugetlb.2MB.max").strip() == str(2 * HUGE)
        p = procs.python(m, _HUGE_TOUCH)
        out, _ = p.communicate(timeout=60)
        touched = out.split()
        events = _keyed(f"{m.path}/hugetlb.2MB.events")
        print(f"\nhugetlb.2MB.max 2 pages: touched {len(touched)} of 4, exit {p.returncode}, "
              f"hugetlb.2MB.events {events}, failcnt via stat")
        assert p.returncode == -signal.SIGBUS, p.returncode
        assert touched == [b"1", b"2"]
        assert events["max"] >= 1
        stat = m.stat()
        assert stat.hugetlb is not None
        (h,) = [h for h in stat.hugetlb if h.pagesize == "2MB"]
        assert h.failcnt == events["max"] and h.current == 0
        # the same process without the limit gets all four
        m.update(Resources(hugetlb=[HugeTlbEntry("2MB", "max")]))
        p = procs.python(m, _HUGE_TOUCH)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0 and out.split() == [b"1", b"2", b"3", b"4"]
        m.delete()
    finally:
        _put("/proc/sys/vm/nr_hugepages", before)


# --- io -------------------------------------------------------------------------------------


def _io(m: Manager, major: int, minor: int) -> dict[str, int]:
    for line in _read(f"{m.path}/io.stat").splitlines():
        dev, *kv = line.split()
        if dev == f"{major}:{minor}":
            return {k: int(v) for k, v in (x.split("=") for x in kv)}
    return {}


def _rate(m: Manager, major: int, minor: int, key: str, seconds: float) -> float:
    a, t0 = _io(m, major, minor).get(key, 0), time.monotonic()
    time.sleep(seconds)
    b, t1 = _io(m, major, minor).get(key, 0), time.monotonic()
    return (b - a) / (t1 - t0)


@pytest.mark.parametrize(
    ("kind", "limit", "key", "dd"),
    [
        ("wbps", MiB, "wbytes", ["if=/dev/zero", "of={dev}", "bs=64k", "oflag=direct"]),
        ("riops", 100, "rios", ["if={dev}", "of=/dev/null", "bs=4k", "iflag=direct"]),
        ("wiops", 100, "wios", ["if=/dev/zero", "of={dev}", "bs=4k", "oflag=direct"]),
    ],
)
def test_io_max_limits(
    group: str, procs: Procs, disk: tuple[str, int, int], kind: str, limit: int, key: str,
    dd: list[str],
) -> None:
    """io.max wbps, riops and wiops, measured as rbps is (test_limits): direct I/O on the
    disk from the group, the rate from io.stat over 4 s after the first second (the first
    slice goes through at once), within 25 % of the limit; without it, far faster."""
    name, major, minor = disk
    m = Manager.create(group, Resources(io=IO(max=[Entry(IOType(kind), major, minor, limit)])))
    want = {k: "max" for k in ("rbps", "wbps", "riops", "wiops")} | {kind: str(limit)}
    line = f"{major}:{minor} " + " ".join(f"{k}={v}" for k, v in want.items())
    assert _read(f"{m.path}/io.max").strip() == line
    argv = ["dd", *(a.format(dev=f"/dev/{name}") for a in dd)]
    p = procs(m, argv, stderr=subprocess.DEVNULL)
    time.sleep(1)
    got = _rate(m, major, minor, key, 4)
    unit, shown = ("MiB/s", got / MiB) if kind == "wbps" else ("IO/s", got)
    print(f"\nio.max {kind}={limit} on {name}: {shown:.2f} {unit} over 4 s")
    assert p.poll() is None, "dd ended early"
    assert 0.75 * limit <= got <= 1.25 * limit, f"{shown:.2f} {unit}, limit {limit}"
    m.update(Resources(io=IO(max=[Entry(IOType(kind), major, minor, "max")])))
    free = _rate(m, major, minor, key, 1)
    print(f"io.max {kind} removed: {free:.1f} per s")
    assert free > 2 * limit, "without the limit the same I/O should be much faster"
    m.delete(kill=True)


# --- memory.swap.max ------------------------------------------------------------------------

_HOG = r"""
import sys
n = int(sys.argv[1])
hog = []
for i in range(n):
    b = bytearray(1 << 20)
    b[::4096] = b"x" * 256
    hog.append(b)
print("done", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def _swapfile(fs: str, size: int) -> Iterator[str]:
    path = f"{fs}/swapfile"
    r = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={size // MiB}"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    os.chmod(path, 0o600)
    for cmd in (["mkswap", path], ["swapon", path]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{cmd}: {r.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["swapoff", path], capture_output=True, timeout=300)


def test_memory_swap_max_caps_swap_out(group: str, procs: Procs, ext4: str) -> None:
    """memory.max 32M with a swap file on the VM's disk: a process touching 96 MiB
    swaps out what does not fit. With memory.swap.max 16M, swap use stays at most 16M
    and the process is OOM-killed (memory.swap.events counts max when a swap allocation
    was refused at the limit first); with swap.max "max" the same process lives, with
    more than 32M swapped out."""
    with _swapfile(ext4, 256 * MiB):
        parent = Manager.create(group)
        capped = parent.new_child("capped", Resources(memory=Memory(max=32 * MiB, swap=16 * MiB)))
        free = parent.new_child("free", Resources(memory=Memory(max=32 * MiB, swap="max")))
        assert _read(f"{capped.path}/memory.swap.max").strip() == str(16 * MiB)
        peak = 0
        p = procs(capped, [sys.executable, "-S", "-c", _HOG, "96"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            peak = max(peak, int(_read(f"{capped.path}/memory.swap.current")))
            time.sleep(0.05)
        assert p.stdout is not None
        said = p.stdout.read()
        ev = _keyed(f"{capped.path}/memory.swap.events")
        mev = _keyed(f"{capped.path}/memory.events")
        print(f"\nmemory.swap.max 16M: swap.current peak {peak / MiB:.1f} MiB, exit "
              f"{p.returncode}, memory.swap.events {ev}, oom_kill {mev['oom_kill']}")
        assert p.returncode == -signal.SIGKILL and said == b"", (p.returncode, said)
        assert peak <= 16 * MiB
        assert mev["oom_kill"] == 1
        # memory.swap.events "max" counts swap allocations refused at the limit; the OOM
        # killer may come first, when reclaim stops making progress just below it (seen
        # in CI: peak 15.2 MiB, max 0). The cap is shown by the contrast: the same process
        # with swap.max "max" (below) lives, with more than 32 MiB swapped out.
        assert ev["max"] >= 1 or peak >= 8 * MiB, (ev, peak)
        q = procs(free, [sys.executable, "-S", "-c", _HOG, "96"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
        assert q.stdout is not None
        assert q.stdout.readline() == b"done\n", "without swap.max the process should live"
        swapped = int(_read(f"{free.path}/memory.swap.current"))
        print(f"memory.swap.max max: {swapped / MiB:.1f} MiB swapped out, process alive")
        assert swapped > 32 * MiB
        q.kill()
        q.wait(60)
        parent.delete(kill=True)


# --- memory.min / memory.low ----------------------------------------------------------------

_CACHE = 40 * MiB


def _cached(m: Manager) -> int:
    return _keyed(f"{m.path}/memory.stat")["file"]


@pytest.mark.parametrize("protection", ["none", "min", "low"])
def test_memory_protection_keeps_a_groups_page_cache(
    group: str, procs: Procs, ext4: str, protection: str
) -> None:
    """Parent memory.max 64M; child ``kept`` reads a 40 MiB file (its page cache), then a
    sibling streams 160 MiB of another file through the cache, so the parent reclaims.
    With memory.min or memory.low 48M on ``kept`` its cache stays (>= 90 %); without,
    the reclaim takes most of it (the control run: it must drop below 50 %)."""
    small, big = f"{ext4}/small", f"{ext4}/big"
    for path, mib in ((small, _CACHE // MiB), (big, 160)):
        r = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                            "oflag=direct"], capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
    os.sync()
    _put("/proc/sys/vm/drop_caches", "3")
    parent = Manager.create(group, Resources(memory=Memory(max=64 * MiB)))
    mem = {"none": Memory(), "min": Memory(min=48 * MiB), "low": Memory(low=48 * MiB)}
    kept = parent.new_child("kept", Resources(memory=mem[protection]))
    other = parent.new_child("other")
    r0 = procs(kept, ["cat", small], stdout=subprocess.DEVNULL)
    assert r0.wait(120) == 0
    before = _cached(kept)
    assert before >= 0.9 * _CACHE, f"the read left {before / MiB:.1f} MiB of cache"
    r1 = procs(other, ["sh", "-c", f"cat {big} >/dev/null; cat {big} >/dev/null"])
    assert r1.wait(300) == 0
    after = _cached(kept)
    events = _keyed(f"{kept.path}/memory.events")
    print(f"\nmemory protection {protection}: kept's page cache {before / MiB:.1f} -> "
          f"{after / MiB:.1f} MiB after the sibling read 320 MiB under memory.max 64M; "
          f"other's cache {_cached(other) / MiB:.1f} MiB; kept's memory.events {events}")
    if protection == "none":
        assert after < 0.5 * before, "the control run: an unprotected group's cache is reclaimed"
    else:
        assert after >= 0.9 * before, f"memory.{protection} did not keep the cache"
    parent.delete(kill=True)


# --- cpu.max.burst --------------------------------------------------------------------------

_BURSTY = r"""
import sys, time
group = open("/proc/self/cgroup").read().strip().split("::", 1)[1]
stat = f"/sys/fs/cgroup{group}/cpu.stat"


def throttled():
    with open(stat) as f:
        return int(dict(line.split() for line in f)["nr_throttled"])


print("ready", flush=True)
sys.stdin.readline()
runs = []
for _ in range(8):
    time.sleep(0.6)
    n0, c0 = throttled(), time.process_time()
    while time.process_time() - c0 < 0.035:
        pass
    runs.append(throttled() - n0)
print(" ".join(map(str, runs)), flush=True)
"""


@pytest.mark.parametrize("burst", [0, 20_000])
def test_cpu_max_burst_lets_a_bursty_group_exceed_its_quota(
    group: str, procs: Procs, burst: int
) -> None:
    """cpu.max 20 ms / 100 ms. A process that sleeps 0.6 s, then needs 35 ms of CPU, eight
    times (6 % on average, under the quota). Without a burst each 35 ms run is throttled
    after 20 ms unless it happens to start in a period's last 20 ms; with cpu.max.burst
    20 ms (the kernel's most: the quota) the quota saved while sleeping covers it: the
    run takes its 35 ms at once, and cpu.stat counts the periods that used the burst.

    Judged by the kernel's own counts (the burst used, ``nr_bursts``/``burst_usec``; the
    throttled periods during each run, read by the process before and after it), not by
    wall time, which a loaded host stretches."""
    m = Manager.create(group, Resources(cpu=CPU(max=CPUMax.new(20_000, 100_000), burst=burst)))
    assert _read(f"{m.path}/cpu.max.burst").strip() == str(burst)
    p = procs.python(m, _BURSTY, cpus={0}, stdin=subprocess.PIPE)
    assert p.stdout is not None
    assert p.stdout.readline() == b"ready\n"  # past the interpreter's start (throttled)
    st0 = _keyed(f"{m.path}/cpu.stat")
    out, _ = p.communicate(b"go\n", timeout=300)
    runs = [int(n) for n in out.split()]
    st = {k: v - st0.get(k, 0) for k, v in _keyed(f"{m.path}/cpu.stat").items()}
    print(f"\ncpu.max 20000/100000 burst {burst}: throttled periods during each 35 ms of "
          f"CPU {runs}; nr_throttled {st['nr_throttled']}, nr_bursts {st['nr_bursts']}, "
          f"burst_usec {st['burst_usec']}")
    assert p.returncode == 0 and len(runs) == 8
    # without a burst each run gets 20 ms, is throttled, waits out the period and gets
    # 15 ms; with it, 35 ms at once
    throttled = sum(n > 0 for n in runs)
    if burst:
        # each run needs 15 ms beyond the quota: the kernel counts what came from the
        # burst (on an idle machine also seen: no run throttled; on a loaded one the
        # first runs still were once each, [1, 1, 1, 1, 0, 0, 0, 0] with 142 ms of burst)
        assert st["nr_bursts"] >= 6, "the burst was not used by most runs"
        assert st["burst_usec"] >= 8 * 15_000 // 2, "less than half the excess was burst"
        assert throttled < 8, f"with the burst some runs take their 35 ms at once: {runs}"
    else:
        assert st["nr_bursts"] == 0 and st["burst_usec"] == 0
        # (counted over the whole run: a run that a loaded host spreads over several
        # periods may get its 35 ms without a throttle)
        assert st["nr_throttled"] >= 6, "without a burst the 35 ms runs are throttled"
        assert throttled >= 3, f"without a burst the runs are throttled: {runs}"
    m.delete()


# --- cpu.idle -------------------------------------------------------------------------------


def _cpu_window(a: Manager, b: Manager, total_usec: int) -> tuple[int, int]:
    """The CPU time (usec) ``a`` and ``b`` got while together they used ``total_usec``:
    a window measured in the CPU the two spinners were given, which a loaded host only
    spreads over more wall time (the wall-clock bound is a safety net only)."""
    a0, b0 = _usage(a), _usage(b)
    deadline = time.monotonic() + 600
    while True:
        da, db = _usage(a) - a0, _usage(b) - b0
        if da + db >= total_usec:
            return da, db
        assert time.monotonic() < deadline, f"two spinners got only {da + db} usec of CPU"
        time.sleep(0.1)


def test_cpu_idle_loses_to_a_normal_sibling(group: str, procs: Procs) -> None:
    """Two groups of equal cpu.weight spinning on one CPU; with cpu.idle 1 on one of
    them it gets SCHED_IDLE's share (weight 3 against 1024 in the kernel): the normal
    sibling gets at least 10 times its CPU time. Control: with cpu.idle 0 it is not starved.
    Shares are measured over a window of CPU time the two were given, not of wall time."""
    parent = Manager.create(group)
    idle = parent.new_child("idle", Resources(cpu=CPU(idle=True)))
    normal = parent.new_child("normal", Resources(cpu=CPU(idle=False)))
    assert _read(f"{idle.path}/cpu.idle").strip() == "1"
    spin = ["sh", "-c", "while :; do :; done"]
    procs(idle, spin, cpus={0})
    procs(normal, spin, cpus={0})
    _cpu_window(idle, normal, 300_000)  # both running
    da, db = _cpu_window(idle, normal, 2_000_000)
    print(f"\ncpu.idle 1 vs a normal sibling on one CPU: {da / 1000:.0f} ms against "
          f"{db / 1000:.0f} ms of 2 s of CPU (ratio {db / max(da, 1):.1f})")
    assert db >= 10 * max(da, 1), "the idle group should get almost nothing"
    idle.update(Resources(cpu=CPU(idle=False)))
    # the group, no longer idle, catches up its vruntime first (seen: about 1:2 in the
    # first seconds after the switch); then the two share the CPU
    _cpu_window(idle, normal, 2_000_000)
    da, db = _cpu_window(idle, normal, 2_000_000)
    print(f"cpu.idle 0 again: {da / 1000:.0f} ms against {db / 1000:.0f} ms of 2 s of CPU")
    assert db < 5 * max(da, 1), "a group with cpu.idle 0 should not be starved"
    parent.delete(kill=True)
