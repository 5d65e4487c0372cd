"""vm tier: cgroup2.run under the limits the host's mount lacks, and the usage it reports.

Runs in the VM (every controller at /sys/fs/cgroup, software-emulated: timings are
generous). Each run makes its group below the run's parent and removes it when the
command is reaped; the test checks that it is gone.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest
from conftest import Parent

import cgroup2
from cgroup2 import CPU, CPUMax, Memory, Pids, Resources
from cgroup2.popen import Usage

MiB = 1 << 20
PY = sys.executable

if os.environ.get("CGROUP2_TIER") != "vm":
    pytest.skip("vm tier: run with scripts/vm-test tests/vm", allow_module_level=True)


@pytest.fixture
def where(cg_parent: Parent) -> Any:
    yield {"parent": cg_parent.group, "mountpoint": cg_parent.mountpoint}
    left = [n for n in os.listdir(cg_parent.fs_path) if n.startswith("cgroup2-popen-")]
    assert not left, f"groups left behind: {left}"


TOUCH = """
import mmap, resource, sys
n = int(sys.argv[1]) << 20
m = mmap.mmap(-1, n)
for i in range(0, n, 4096):
    m[i] = 1
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_memory_max_oom_kill_is_reported(where: Any) -> None:
    res = Resources(memory=Memory(max=64 * MiB, swap=0))
    r = cgroup2.run([PY, "-c", TOUCH, "256"], res, capture_output=True, **where)
    assert r.returncode == -signal.SIGKILL, r
    u = r.usage
    assert u.oom_kills is not None and u.oom_kills >= 1
    assert u.memory_peak is not None and u.memory_peak <= 64 * MiB


def test_peak_memory_is_what_the_child_touched(where: Any) -> None:
    r = cgroup2.run([PY, "-c", TOUCH, "200"], capture_output=True, text=True, **where)
    assert r.returncode == 0, r
    touched = int(r.stdout)  # the child's own peak resident set, the mapping included
    peak = r.usage.memory_peak
    assert peak is not None
    assert abs(peak - touched) <= 0.10 * touched, (peak, touched)
    assert r.usage.oom_kills == 0


FORKS = """
import os, time
kids = []
for i in range(10):
    try:
        pid = os.fork()
    except BlockingIOError:   # EAGAIN: pids.max
        continue
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
print(len(kids))
"""


def test_pids_max_hits_are_counted(where: Any) -> None:
    r = cgroup2.run([PY, "-c", FORKS], Resources(pids=Pids(max=4)), capture_output=True,
                    text=True, **where)
    assert r.returncode == 0, r
    started = int(r.stdout)
    assert started == 3  # the forker and three children fill pids.max
    assert r.usage.pids_max_hits == 10 - started, r.usage


def test_cpu_max_throttling_is_reported(where: Any) -> None:
    res = Resources(cpu=CPU(max=CPUMax.new(20_000, 100_000)))  # a fifth of a CPU
    code = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 2: pass\n"
    r = cgroup2.run([PY, "-c", code], res, **where)
    u = r.usage
    assert u.user_sec is not None and u.system_sec is not None
    assert u.nr_throttled is not None and u.nr_throttled > 5
    assert u.throttled_sec is not None and u.throttled_sec > 0.5
    cpu = u.user_sec + u.system_sec
    assert cpu < 0.35 * u.wall_sec, (cpu, u.wall_sec)
    assert u.cpu_pressure_sec is not None


def test_timeout_under_limits_kills_the_whole_group(where: Any) -> None:
    import subprocess

    res = Resources(pids=Pids(max=16), memory=Memory(max=128 * MiB))
    with pytest.raises(subprocess.TimeoutExpired):
        cgroup2.run(["sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"], res,
                    timeout=1, **where)


def test_asyncio_under_the_same_limits(where: Any) -> None:
    import asyncio

    import cgroup2.asyncio as ca

    async def main() -> tuple[int, int, Usage, Usage]:
        oom = await ca.create_subprocess_exec(
            PY, "-c", TOUCH, "256", resources=Resources(memory=Memory(max=64 * MiB, swap=0)),
            stdout=asyncio.subprocess.DEVNULL, **where)
        forks = await ca.create_subprocess_exec(
            PY, "-c", FORKS, resources=Resources(pids=Pids(max=4)),
            stdout=asyncio.subprocess.DEVNULL, **where)
        rc_oom, rc_forks = await asyncio.gather(oom.wait(), forks.wait())
        return rc_oom, rc_forks, oom.usage(), forks.usage()

    rc_oom, rc_forks, u_oom, u_forks = asyncio.run(main())
    assert rc_oom == -signal.SIGKILL
    assert u_oom.oom_kills is not None and u_oom.oom_kills >= 1
    assert rc_forks == 0
    assert u_forks.pids_max_hits == 7
