#!/usr/bin/env python3
"""Demo of the library: create a group, limit it with the controllers this host offers,
run a process in it, print its statistics live a few times, and remove the group.

Run as root: ``python3 scripts/demo.py``, with any Python 3.11 or newer: the library in
this checkout's ``src`` comes first on ``sys.path`` (the parts used here need only the
standard library), so nothing has to be installed, and an installed ``cgroup2`` of another
version is not what is shown. (The ``cgroup2 run ... --summary`` command does the same
from the shell.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

if sys.version_info < (3, 11):  # noqa: UP036 (the script may be run by any python3)
    sys.exit(f"scripts/demo.py: cgroup2 needs Python 3.11 or newer, not {sys.version.split()[0]}")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from cgroup2 import (  # noqa: E402 (after sys.path is set)
    CPU,
    CPUMax,
    HugeTlbEntry,
    Manager,
    Memory,
    Pids,
    Resources,
    default_mountpoint,
)

WORK = r"""
import sys, time
sys.stdin.readline()                      # wait until we are in the group
blocks, t = [], time.monotonic()
while time.monotonic() - t < 2.5:         # burn CPU and grow by 4 MiB every 0.1 s
    u = time.monotonic()
    while time.monotonic() - u < 0.1:
        pass
    blocks.append(b"x" * (4 << 20))
"""


def huge_page_sizes() -> list[str]:
    """The kernel's huge page sizes as hugetlb names them ("2MB", "1GB")."""
    out = []
    for d in sorted(os.listdir("/sys/kernel/mm/hugepages")):
        kb = int(d.removeprefix("hugepages-").removesuffix("kB"))
        out.append(f"{kb // 1024 // 1024}GB" if kb >= 1 << 20 else f"{kb // 1024}MB")
    return out


def main() -> int:
    mnt = default_mountpoint()
    have = Manager.load("/", mountpoint=mnt).controllers()
    print(f"cgroup2 mount {mnt}; controllers offered: {' '.join(have) or 'none'}")
    res = Resources(
        memory=Memory(max=256 << 20) if "memory" in have else None,
        pids=Pids(max=64) if "pids" in have else None,
        cpu=CPU(max=CPUMax.new(50_000, 100_000)) if "cpu" in have else None,
        hugetlb=[HugeTlbEntry(s, 0) for s in huge_page_sizes()] if "hugetlb" in have else None,
    )
    group = f"/cgroup2-demo-{os.getpid()}"
    m = Manager.create(group, res, mountpoint=mnt)
    print(f"created {m.path} with:", ", ".join(f"{v.filename}={v.value}" for v in res.values()))
    proc = subprocess.Popen([sys.executable, "-c", WORK], stdin=subprocess.PIPE)
    try:
        m.add_proc(proc.pid)
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        print(f"process {proc.pid} runs in {m.procs() and group}")
        last = 0
        t0 = time.monotonic()
        while proc.poll() is None:
            time.sleep(0.5)
            s = m.stat()
            usage = s.cpu.usage_usec if s.cpu and s.cpu.usage_usec is not None else 0
            mem = s.memory.usage if s.memory and s.memory.usage is not None else None
            pids = s.pids.current if s.pids else None
            huge = sum(h.current or 0 for h in s.hugetlb or ())
            print(
                f"  t={time.monotonic() - t0:4.1f}s  cpu={(usage - last) / 5000:5.1f}%  "
                f"memory={'-' if mem is None else f'{mem >> 20}M':>5}  "
                f"pids={'-' if pids is None else pids}  hugetlb={huge}"
            )
            last = usage
        print(f"process exited with status {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        m.delete(kill=True)
    print(f"removed {m.path}: {'still there!' if os.path.exists(m.path) else 'gone'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
