"""Benchmark of stat(): Python CPU time against the kernel time it causes, and file reads.

    sudo .venv/bin/python benchmarks/stat.py [--groups N,N..] [--rounds R] [--many M] [--strace]

For each group count N (default 1, 100 and 10,000) makes its own parent group
``cgroup2-bench-<pid>`` directly under the cgroup2 mount (with every controller the mount
offers it enabled for its children), N child groups in it (up to 200 of them with one
sleeping process, so there is something to count), and removes it all at the end, also on
failure. Then:

1. timing: R rounds of ``collect()`` over the N groups (directories opened once, as a
   Manager holds them; R makes 10,000 stats in all unless given); user CPU time (the
   Python side: parsing, objects, the syscall wrappers) against system CPU time (the
   kernel: openat, generating the files, close), from ``resource.getrusage``. The target
   (DESIGN.md) is user <= sys. The floor: the same files of the same groups read with
   plain os.open/os.read/os.close in a loop, and what the stat adds to it. The groups are
   idle, so their files read the same each time and the parsers' memo of texts seen
   before (``cgroup2.controllers._parse.MEMO_LIMIT``) answers; the same timing is then
   printed with the memo off, as for groups whose counters move between two stats.
2. file reads: M groups (default 10,000) stat'ed once each, every ``open`` counted with
   an audit hook (``sys.addaudithook`` sees each ``os.open``): each file is opened exactly
   once per group, and only the files the mask needs.
3. with ``--strace`` (when strace is installed): the system calls of one stat, counted by
   ``strace -c`` on a child process (stats of one group, minus an empty run).

Runs on the host tier and in the VM (``tests/vm/test_stats.py`` runs it there).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from cgroup2 import StatMask, default_mountpoint
from cgroup2._fs import Dir
from cgroup2.controllers import _parse
from cgroup2.stats import collect


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@contextlib.contextmanager
def bench_parent(groups: int, *, sleepers: bool = True) -> Iterator[tuple[str, list[str]]]:
    """The benchmark's parent group with ``groups`` children; all removed at the end."""
    mnt = default_mountpoint()
    parent = f"{mnt}/cgroup2-bench-{os.getpid()}"
    os.mkdir(parent)
    pids: list[int] = []
    names = [f"g{i}" for i in range(groups)]
    try:
        with open(parent + "/cgroup.controllers") as f:
            for c in f.read().split():
                with contextlib.suppress(OSError):
                    _write(parent + "/cgroup.subtree_control", "+" + c)
        for n in names:
            os.mkdir(f"{parent}/{n}")
        if sleepers:
            for n in names[: min(groups, 200)]:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - child
                    try:
                        _write(f"{parent}/{n}/cgroup.procs", "0")
                        signal.pause()
                    finally:
                        os._exit(0)
                pids.append(pid)
        yield parent, names
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for n in names:
            for _ in range(100):
                try:
                    os.rmdir(f"{parent}/{n}")
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        os.rmdir(parent)


_SINKS: list[list[str]] = []  # where the audit hook puts the paths opened (innermost last)


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _SINKS and event == "open" and isinstance(args[0], str):
        _SINKS[-1].append(args[0])


@contextlib.contextmanager
def recorded_opens() -> Iterator[list[str]]:
    """The paths ``open`` is called with (``os.open`` included) inside the block, seen by
    an audit hook (installed once: hooks cannot be removed)."""
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    got: list[str] = []
    _SINKS.append(got)
    try:
        yield got
    finally:
        _SINKS.pop()


def files_of(d: Dir, mask: StatMask) -> list[str]:
    """The files one stat with ``mask`` opens in the group ``d``."""
    with recorded_opens() as opened:
        collect(d, mask)
    return opened


def floor(dirs: list[Dir], files: list[str], rounds: int) -> tuple[float, float]:
    """User and system CPU time of reading ``files`` of every group with plain
    os.open/os.read/os.close, ``rounds`` times: the cost of the reads alone."""
    flags = os.O_RDONLY | os.O_CLOEXEC
    u0, s0 = _cpu()
    for _ in range(rounds):
        for d in dirs:
            for f in files:
                fd = os.open(f, flags, dir_fd=d.fd)
                os.read(fd, 1 << 16)
                os.close(fd)
    u1, s1 = _cpu()
    return u1 - u0, s1 - s0


def timing(parent: str, names: list[str], rounds: int, mask: StatMask) -> float:
    dirs = [Dir.open(f"{parent}/{n}") for n in names]
    try:
        for d in dirs:  # warm up (page sizes, first-time allocations)
            collect(d, mask)
        # the files the stat opened (an open that failed, of a file this kernel lacks, is
        # left out of the floor)
        files = [f for f in files_of(dirs[0], mask) if os.path.exists(f"{dirs[0].path}/{f}")]
        u0, s0 = _cpu()
        t0 = time.perf_counter()
        for _ in range(rounds):
            for d in dirs:
                collect(d, mask)
        wall = time.perf_counter() - t0
        u1, s1 = _cpu()
        fu, fs = floor(dirs, files, rounds)
    finally:
        for d in dirs:
            d.close()
    n = rounds * len(dirs)
    user, sys_ = u1 - u0, s1 - s0
    ratio = user / sys_ if sys_ else float("inf")
    print(
        f"timing  {len(dirs)} group(s), mask={mask.name or mask!r}: {n} stats in {wall:.2f} s "
        f"({wall / n * 1e6:.1f} us/stat); user {user / n * 1e6:.1f} us/stat, "
        f"sys {sys_ / n * 1e6:.1f} us/stat; user/sys = {ratio:.2f} "
        f"({'OK' if ratio <= 1 else 'ABOVE TARGET'}: target <= 1)"
    )
    print(
        f"        floor, the same {len(files)} files with os.open/os.read/os.close: "
        f"user {fu / n * 1e6:.1f} us, sys {fs / n * 1e6:.1f} us per group; stat adds "
        f"{(user - fu) / n * 1e6:.1f} us of user time (parsing, objects)"
    )
    return ratio


def reads(parent: str, names: list[str], mask: StatMask) -> bool:
    """Whether a stat of each group opens each of its files once and no directory (the
    group's directory is opened by ``Dir.open``, from the mount's root, before)."""
    paths: list[str] = []
    for n in names:
        with Dir.open(f"{parent}/{n}") as d, recorded_opens() as got:
            collect(d, mask)
        paths += got
    opened = collections.Counter(paths)
    dirs = {k for k in opened if k.startswith("/")}  # files are opened by name, below d
    files = {k: v for k, v in opened.items() if k not in dirs}
    once = all(v == len(names) for v in files.values())
    print(
        f"reads   mask={mask.name or mask!r}: {len(names)} groups, {len(dirs)} "
        f"directories opened, {sum(files.values())} file opens = {len(files)} files x "
        f"{len(names)} groups; each file once per group: {'yes' if once else 'NO'}"
    )
    print(f"        files: {' '.join(sorted(files))}")
    if not once:
        print(f"        counts: {dict(files)}")
    return once and not dirs


def strace_count(parent: str, name: str, rounds: int) -> None:
    strace = shutil.which("strace")
    if strace is None:
        print("strace  not installed: skipped")
        return
    per: dict[int, collections.Counter[str]] = {}
    for k in (0, rounds):
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
            subprocess.run(
                [
                    strace,
                    "-f",
                    "-c",
                    "-U",
                    "name,calls",
                    "-o",
                    out.name,
                    sys.executable,
                    __file__,
                    "--stat-only",
                    f"{parent}/{name}",
                    str(k),
                ],
                check=True,
            )
            c: collections.Counter[str] = collections.Counter()
            for line in out.read().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                    c[parts[0]] = int(parts[1])
            per[k] = c
    diff = {k: (per[rounds][k] - per[0][k]) / rounds for k in per[rounds]}
    calls = {k: v for k, v in sorted(diff.items()) if v >= 0.5}
    print(
        f"strace  system calls per stat of one group: {sum(calls.values()):.1f}: "
        + ", ".join(f"{k} {v:.1f}" for k, v in calls.items())
    )


def _stat_only(path: str, rounds: int) -> None:
    with Dir.open(path) as d:
        for _ in range(rounds):
            collect(d)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--groups", default="1,100,10000", help="group counts for the timing (comma-separated)"
    )
    ap.add_argument(
        "--rounds", type=int, help="stats of each group (default: 10,000 stats in all per count)"
    )
    ap.add_argument("--many", type=int, default=10_000, help="groups for the read count")
    ap.add_argument("--strace", action="store_true", help="count system calls with strace")
    ap.add_argument("--stat-only", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stat_only:
        _stat_only(a.stat_only[0], int(a.stat_only[1]))
        return 0
    ok = True
    worst = 0.0
    counts = [int(x) for x in a.groups.split(",")]
    for count in counts:
        rounds = a.rounds or max(1, 10_000 // count)
        with bench_parent(count) as (parent, names):
            if count == counts[0]:
                with open(f"{parent}/{names[0]}/cgroup.controllers") as f:
                    ctl = f.read().split()
                print(f"kernel {os.uname().release}; controllers in each group: {ctl}")
            worst = max(
                worst,
                timing(parent, names, rounds, StatMask.ALL),
                timing(parent, names, rounds, StatMask.CPU | StatMask.PSI),
            )
            # the groups here are idle: their files read the same each time, and the
            # parsers remember texts seen before. The same without that memo, as for
            # groups whose counters move between two stats:
            memo, _parse.MEMO_LIMIT = _parse.MEMO_LIMIT, 0
            try:
                print("        (every text parsed anew, as for busy groups:)")
                timing(parent, names, rounds, StatMask.ALL)
                timing(parent, names, rounds, StatMask.CPU | StatMask.PSI)
            finally:
                _parse.MEMO_LIMIT = memo
            if count == counts[-1]:
                ok = reads(parent, names[:1000], StatMask.ALL) and ok
                if a.strace:
                    strace_count(parent, names[0], 200)
    if a.many:
        with bench_parent(a.many, sleepers=False) as (parent, names):
            ok = reads(parent, names, StatMask.ALL) and ok
    print(f"result: worst user/sys {worst:.2f}; reads once: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
