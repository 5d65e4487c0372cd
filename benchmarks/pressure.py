"""Benchmark: PSI triggers on one EventWatcher (one epoll, one thread).

Measures, on this machine's cgroup2 mount (as root):

* 1,000 triggers (cpu, memory, io; some and full; several windows) on 50 groups, all on
  one watcher: the time to set them, the descriptors they hold, and the CPU the watcher
  uses while nothing stalls (its process, and the kernel's ``psimon`` threads, which a
  caller with CAP_SYS_RESOURCE gets one of per group with triggers);
* trigger latency: a group gets 4 spinning processes (more than the CPUs), and the time
  from the first one's placement (the stall's start) to the watcher's notice is taken,
  in seconds and in windows; rounds are a few windows apart so that each starts quiet.

A caller without CAP_SYS_RESOURCE (root on some hosts; Linux 6.5+) may only use windows
that are a multiple of 2 s, served by the kernel's 2 s averaging work: the latency is then
up to one 2 s period. Everything lives below ``cgroup2-bench-pressure-<pid>`` under the
mount, removed at the end, also on Ctrl-C or SIGTERM.

    python benchmarks/pressure.py [--triggers 1000] [--idle 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from types import FrameType

from cgroup2 import EventWatcher, PressureTrigger, default_mountpoint
from cgroup2.events import NoticeKind
from cgroup2.pressure import has_cap_sys_resource, kernel_version, unprivileged_rule


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _psimon_ticks() -> tuple[int, int]:
    """(number of psimon kernel threads, their CPU time in clock ticks), from /proc."""
    n = ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm == "psimon":
            fields = stat[stat.rindex(")") + 2 :].split()
            n += 1
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return n, ticks


def _spinners(path: str, n: int = 4) -> list[subprocess.Popen[bytes]]:
    procs = []
    for _ in range(n):
        p = subprocess.Popen([sys.executable, "-S", "-c", "while True: pass"])
        procs.append(p)
        with open(f"{path}/cgroup.procs", "w") as f:
            f.write(str(p.pid))
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triggers", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    ap.add_argument("--rounds", type=int, default=5, help="latency rounds")
    args = ap.parse_args()

    priv = has_cap_sys_resource()
    w0 = 1.0 if priv or unprivileged_rule(kernel_version()) is False else 2.0
    mnt = default_mountpoint()
    top = f"{mnt}/cgroup2-bench-pressure-{os.getpid()}"
    os.mkdir(top)
    groups: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    w = EventWatcher()
    try:
        windows = [w0 * k for k in (2, 3, 4, 5) if w0 * k <= 10]
        combos = [
            PressureTrigger(r, k, 0.1 + 0.01 * i, win)
            for r in ("cpu", "memory", "io")
            for k in ("some", "full")
            for win in windows
            for i in range(4)
        ]
        n_groups = -(-args.triggers // len(combos))
        for i in range(n_groups):
            groups.append(f"{top}/g{i}")
            os.mkdir(groups[-1])
        plan = [(g, t) for g in groups for t in combos][: args.triggers]
        fds0 = len(os.listdir("/proc/self/fd"))
        t0 = time.perf_counter()
        for g, t in plan:
            w.add_pressure(g, t)
        setup = time.perf_counter() - t0
        fds = len(os.listdir("/proc/self/fd")) - fds0
        print(
            f"kernel {'.'.join(map(str, kernel_version()))}, CAP_SYS_RESOURCE "
            f"{'yes' if priv else 'no'}: shortest window {w0:g} s"
        )
        print(
            f"set {len(plan)} triggers on {len(groups)} groups in {setup * 1000:.0f} ms "
            f"({setup / len(plan) * 1e6:.0f} us each), {fds} descriptors"
        )

        # idle
        n_psimon, ticks0 = _psimon_ticks()
        c0, t0 = _cpu(), time.monotonic()
        fired = 0
        while time.monotonic() - t0 < args.idle:
            fired += len(w.poll(max(0.0, args.idle - (time.monotonic() - t0))))
        wall = time.monotonic() - t0
        used = _cpu() - c0
        idle = used / wall
        _, ticks1 = _psimon_ticks()
        hz = os.sysconf("SC_CLK_TCK")
        print(
            f"idle {wall:.1f} s: watcher CPU {idle * 100:.3f}% of one CPU "
            f"({used * 1000:.2f} ms), {fired} notices; psimon threads {n_psimon}, "
            f"their CPU {(ticks1 - ticks0) / hz / wall * 100:.2f}% of one CPU"
        )

        # latency: the cpu some trigger with the shortest window of the first group
        w.close()
        w = EventWatcher()
        hot = groups[0]
        trig = PressureTrigger("cpu", "some", 0.15, w0)
        w.add_pressure(hot, trig)
        lat: list[float] = []
        for _ in range(args.rounds):
            time.sleep(w0 * 2)
            while w.poll(0):
                pass
            start = time.monotonic()
            procs = _spinners(hot)
            try:
                got = None
                while got is None and time.monotonic() - start < w0 * 5:
                    for n in w.poll(0.5):
                        if n.kind is NoticeKind.PRESSURE:
                            got = time.monotonic() - start
            finally:
                _stop(procs)
            if got is not None:
                lat.append(got)
        if lat:
            print(
                f"latency of {trig} from the stall's start ({len(lat)}/{args.rounds} rounds): "
                f"median {statistics.median(lat):.2f} s = {statistics.median(lat) / w0:.2f} "
                f"windows, min {min(lat):.2f} s, max {max(lat):.2f} s"
            )
        else:
            print(f"latency: {trig} never fired")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        w.close()
        for g in groups:
            os.rmdir(g)
        os.rmdir(top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
