"""Benchmark: start-up cost of a short command run in a group, by mechanism.

Each row is the median wall time of N runs of ``/bin/true`` from start to reaping,
and its ratio to ``subprocess.run``:

- ``subprocess.run``: no group (the floor: ``vfork`` + ``exec``);
- ``preexec_fn``: ``subprocess.run(preexec_fn=m.add_proc(getpid()))`` into an existing
  group, the old README's way (forces ``fork``, and runs Python in the child: unsafe
  with threads);
- ``fd trampoline``: the child execs ``bash -c 'echo 0 >&N && exec "$@"'`` with the
  group's ``cgroup.procs`` passed as fd N (the alternative not chosen: needs bash, as
  dash takes only one-digit fds, and a passed fd);
- ``Popen, group=``: ``cgroup2.Popen`` into an existing group (the stop-gated ``sh``
  trampoline alone);
- ``cgroup2.run``: a new group per run, made, used, its usage read and removed;
- ``cgroup2 run``: the command (a new interpreter each time).

Then ``cgroup2.run``'s usage and ``/usr/bin/time -v`` for the same CPU-bound command.
Runs as root on a writable cgroup2 mount, below its own parent group
``cgroup2-bench-<pid>``, which it removes at the end.

    python benchmarks/popen.py [--n 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import cgroup2
from cgroup2 import Manager, default_mountpoint


def _median_ms(f: Callable[[], object], n: int) -> float:
    f()  # warm
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="runs of each kind (median taken)")
    args = ap.parse_args()
    n = args.n
    mnt = default_mountpoint()
    parent = f"/cgroup2-bench-{os.getpid()}"
    top = Manager.create(parent, mountpoint=mnt)
    cmd = ["/bin/true"]
    rows: list[tuple[str, float]] = []
    try:
        shared = Manager.create(parent + "/shared", mountpoint=mnt)
        rows.append(("subprocess.run", _median_ms(lambda: subprocess.run(cmd), n)))
        rows.append((
            "preexec_fn (unsafe)",
            _median_ms(
                lambda: subprocess.run(cmd, preexec_fn=lambda: shared.add_proc(os.getpid())), n
            ),
        ))
        if shutil.which("bash"):
            fd = os.open(shared.path + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            try:
                script = f'echo 0 >&{fd} && exec "$@" {fd}>&-'
                tramp = ["bash", "-c", script, "sh", *cmd]
                rows.append((
                    "fd trampoline (bash)",
                    _median_ms(lambda: subprocess.run(tramp, pass_fds=[fd]), n),
                ))
            finally:
                os.close(fd)
        rows.append((
            "cgroup2.Popen, group=",
            _median_ms(lambda: cgroup2.Popen(cmd, group=shared).wait(), n),
        ))
        rows.append((
            "cgroup2.run, new group",
            _median_ms(lambda: cgroup2.run(cmd, parent=top), n),
        ))
        cli = shutil.which("cgroup2") or os.path.join(os.path.dirname(sys.executable), "cgroup2")
        if os.path.exists(cli):
            rows.append((
                "cgroup2 run (command)",
                _median_ms(lambda: subprocess.run(
                    [cli, "run", "--parent", parent, "--", *cmd], check=True
                ), max(10, n // 5)),
            ))
        base = rows[0][1]
        print(f"start-up of {' '.join(cmd)}, median of {n} runs:")
        for name, ms in rows:
            print(f"  {name:24} {ms:7.2f} ms   {ms / base:5.2f}x subprocess.run")

        work = [sys.executable, "-c", "sum(range(3 * 10**7))"]
        r = cgroup2.run(work, parent=top)
        u = r.usage
        print("\nthe same CPU-bound command (python sum(range(3e7))):")
        print(f"  cgroup2.run usage: user {u.user_sec:.3f}s system {u.system_sec:.3f}s "
              f"wall {u.wall_sec:.3f}s peak memory {u.memory_peak} oom kills {u.oom_kills} "
              f"pids.max hits {u.pids_max_hits}")
        if os.path.exists("/usr/bin/time"):
            t = subprocess.run(["/usr/bin/time", "-v", *work], capture_output=True, text=True)
            keep = ("User time", "System time", "Elapsed", "Maximum resident")
            for line in t.stderr.splitlines():
                if line.strip().startswith(keep):
                    print(f"  /usr/bin/time -v: {line.strip()}")
        shared.delete(kill=True)
    finally:
        top.delete(kill=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
