"""Benchmark: one EventWatcher (one epoll, one thread) watching 10,000 groups.

Measures, on this machine's cgroup2 mount (as root):

* the cost of adding the groups to the watcher (and of making them, for scale);
* the watcher's CPU use while nothing changes (goal: ~0);
* the time from a kernel change to the watcher's callback: a separate trigger process
  freezes one (empty, so at once) group at a time with ``cgroup.freeze``, noting
  ``CLOCK_MONOTONIC`` before and after its ``write(2)``; the watcher notes the same clock
  in its callback. Median and p99 of callback minus write start (an upper bound) and of
  callback minus write return;
* a burst: the trigger freezes every group as fast as it can; the time until the last
  callback and the watcher's CPU per notice;
* removal: the trigger removes every group; the time from each ``rmdir`` to its
  ``DELETED`` callback.

DESIGN target: an OOM kill reported well under 100 ms (the kernel itself batches
notifications of one file to one per 10 ms; each change here is on a different group).
Everything lives below its own parent ``cgroup2-bench-<pid>`` under the mount, which is
removed at the end, also on Ctrl-C or SIGTERM.

    python benchmarks/events.py [--groups 10000] [--changes 1000] [--idle 5]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from types import FrameType

from cgroup2 import EventWatcher, default_mountpoint
from cgroup2._fs import Dir
from cgroup2.events import Notice


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def trigger(parent: str, names: list[str], gap: float, out: str, op: str) -> int:
    """The trigger process: freeze (or remove) each group in turn, noting the clock around
    the system call."""
    lines = []
    p = Dir.open(parent)
    dirs = [p.child(n) for n in names]
    for name, d in zip(names, dirs, strict=True):
        t0 = time.monotonic_ns()
        if op == "rmdir":
            p.rmdir(name)
        else:
            d.write("cgroup.freeze", "1")
        t1 = time.monotonic_ns()
        lines.append(f"{name} {t0} {t1}\n")
        if gap:
            time.sleep(gap * (0.5 + random.random()))
    for d in dirs:
        d.close()
    p.close()
    with open(out, "w") as f:
        f.writelines(lines)
    return 0


def _run_trigger(
    parent: str, names: list[str], gap: float, op: str = "freeze"
) -> tuple[subprocess.Popen[bytes], str]:
    fd, out = tempfile.mkstemp(prefix="cgroup2-bench-events-")
    os.close(fd)
    listing = out + ".names"
    with open(listing, "w") as f:
        f.write("\n".join(names))
    cmd = [sys.executable, __file__, "--trigger", parent, listing, str(gap), out, op]
    proc = subprocess.Popen(cmd, start_new_session=True)  # Ctrl-C reaches only us
    _triggers.append((proc, out))
    return proc, out


_triggers: list[tuple[subprocess.Popen[bytes], str]] = []


def _read_trigger(out: str) -> dict[str, tuple[int, int]]:
    res = {}
    with open(out) as f:
        for line in f:
            name, t0, t1 = line.split()
            res[name] = (int(t0), int(t1))
    os.unlink(out)
    os.unlink(out + ".names")
    return res


def _thaw(parent: Dir, names: list[str]) -> None:
    for n in names:
        with parent.child(n) as d:
            d.write("cgroup.freeze", "0")


def bench(parent_path: str, n: int, changes: int, idle: float, gap: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 200
    if soft < need:
        if hard < need:
            sys.exit(f"needs {need} open files; the hard limit is {hard}: use --groups")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    names = [f"g{i}" for i in range(n)]
    parent = Dir.open(parent_path)
    try:
        t = time.perf_counter()
        for x in names:
            parent.mkdir(x)
        t_mkdir = time.perf_counter() - t

        seen: dict[str, int] = {}

        def on_notice(notice: Notice) -> None:
            seen[notice.path.rsplit("/", 1)[1]] = time.monotonic_ns()

        with EventWatcher(callback=on_notice) as w:
            t, c = time.perf_counter(), _cpu()
            for x in names:
                w.add(f"{parent_path}/{x}")
            t_add, c_add = time.perf_counter() - t, _cpu() - c
            print(f"groups watched: {len(w)} (kept fds: {n} + 1 epoll + 1 inotify), one thread")
            print(f"  make groups (mkdir):      {t_mkdir * 1e6 / n:8.1f} us/group")
            print(
                f"  add to the watcher:       {t_add * 1e6 / n:8.1f} us/group "
                f"(CPU {c_add * 1e6 / n:.1f} us/group; total {t_add:.2f} s)"
            )

            # idle: nothing changes
            t, c = time.perf_counter(), _cpu()
            end = t + idle
            while (left := end - time.perf_counter()) > 0:
                assert not w.poll(left)
            wall, cpu = time.perf_counter() - t, _cpu() - c
            print(
                f"  idle CPU:                 {cpu * 1e3:.2f} ms over {wall:.1f} s "
                f"({100 * cpu / wall:.3f} % of a core)"
            )

            # latency: one change at a time, each on a different group
            picked = random.sample(names, min(changes, n))
            proc, out = _run_trigger(parent_path, picked, gap)
            deadline = time.monotonic() + 60 + changes * gap * 2
            while len(seen) < len(picked) and time.monotonic() < deadline:
                w.poll(1.0)
            proc.wait(30)
            marks = _read_trigger(out)
            lat0 = [(seen[x] - marks[x][0]) / 1e6 for x in picked if x in seen]
            lat1 = [(seen[x] - marks[x][1]) / 1e6 for x in picked if x in seen]
            wr = [(marks[x][1] - marks[x][0]) / 1e6 for x in picked]
            print(f"change -> callback ({len(lat0)}/{len(picked)} changes seen, one per group):")
            print(
                f"  from write start:  median {statistics.median(lat0):.3f} ms, "
                f"p99 {_pct(lat0, 0.99):.3f} ms, max {max(lat0):.3f} ms"
            )
            print(
                f"  from write return: median {statistics.median(lat1):.3f} ms, "
                f"p99 {_pct(lat1, 0.99):.3f} ms"
            )
            print(f"  (the write itself:  median {statistics.median(wr):.3f} ms)")
            _thaw(parent, picked)
            while w.poll(0.2):
                pass

            # burst: every group at once
            seen.clear()
            c = _cpu()
            proc, out = _run_trigger(parent_path, names, 0.0)
            deadline = time.monotonic() + 120
            while len(seen) < n and time.monotonic() < deadline:
                w.poll(1.0)
            c_burst = _cpu() - c
            proc.wait(60)
            marks = _read_trigger(out)
            first = min(t0 for t0, _ in marks.values())
            last_write = max(t1 for _, t1 in marks.values())
            last_cb = max(seen.values())
            print(f"burst: {len(seen)}/{n} groups frozen by the trigger as fast as it writes")
            print(
                f"  writes took {(last_write - first) / 1e6:.0f} ms; last callback "
                f"{(last_cb - last_write) / 1e6:.2f} ms after the last write; watcher CPU "
                f"{c_burst * 1e6 / max(len(seen), 1):.1f} us/notice"
            )
            _thaw(parent, names)
            while w.poll(0.2):
                pass

            # removal: every group at once, each reported DELETED (inotify IN_DELETE)
            seen.clear()
            proc, out = _run_trigger(parent_path, names, 0.0, "rmdir")
            deadline = time.monotonic() + 120
            while len(seen) < n and time.monotonic() < deadline:
                w.poll(1.0)
            proc.wait(60)
            marks = _read_trigger(out)
            lat = [(seen[x] - marks[x][1]) / 1e6 for x in names if x in seen]
            print(f"removal: {len(seen)}/{n} groups removed by the trigger, reported DELETED")
            print(
                f"  rmdir return -> callback: median {statistics.median(lat):.3f} ms, "
                f"p99 {_pct(lat, 0.99):.3f} ms; still watched: {len(w)}"
            )
    finally:
        for proc, out in _triggers:  # stop a trigger still running (interrupted), by pid
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for f in (out, out + ".names"):
                if os.path.exists(f):
                    os.unlink(f)
        cleanup(parent, names)


def cleanup(parent: Dir, names: list[str]) -> None:
    for x in names:
        try:
            with parent.child(x) as d:
                d.write("cgroup.freeze", "0")
            parent.rmdir(x)
        except Exception:  # missing already, or half-made
            pass
    parent.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--trigger":
        _, _, parent, listing, gap, out, op = sys.argv
        with open(listing) as f:
            names = f.read().split()
        return trigger(parent, names, float(gap), out, op)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--changes", type=int, default=1000, help="timed changes, one per group")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    ap.add_argument("--gap", type=float, default=0.003, help="mean seconds between changes")
    args = ap.parse_args()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (&)
    parent_path = f"{default_mountpoint()}/cgroup2-bench-{os.getpid()}"
    os.mkdir(parent_path)
    try:
        bench(parent_path, args.groups, args.changes, args.idle, args.gap)
    except KeyboardInterrupt:
        print("interrupted; removing the groups", file=sys.stderr)
        return 130
    finally:
        os.rmdir(parent_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
