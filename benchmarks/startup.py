"""Benchmark: start-up of the ``cgroup2`` command and of ``import cgroup2``, whole process.

Each command is started as a new process (``posix_spawn``, output to ``/dev/null``) and
waited for; the median of ``--rounds`` runs is taken of its wall time and of its CPU time
(user + system, from ``wait4``). The commands are run in turns, one of each per round, so
that a load that comes and goes weighs on all of them alike. Budgets (issue 21):

* ``cgroup2 run -- true``: <= 3x libcgroup's ``cgexec -g CONTROLLER:GROUP true``;
* ``cgroup2 get GROUP FILE`` and ``cgroup2 --version``: <= 2x ``python -c pass``;
* ``import cgroup2``: <= 15 ms over ``python -c pass``.

``cgroup2 stat --json GROUP``, ``set -p FILE=VALUE GROUP``, ``exec GROUP -- true``, ``ls
GROUP`` and ``status GROUP`` are shown too (no budget: each is what a shell loop of that
command costs), and the floor of any command
line tool started by a console script that parses with argparse: ``import re`` (the
script's own first line), ``argparse``, one parse. The commands on a group and
``cgexec`` need root and a writable cgroup2 mount: they run in (and below) the group
``/cgroup2-startup-<pid>``, made for the run and removed at the end; without root they
are left out, as ``cgexec`` is where cgroup-tools is not installed. The figures are
printed, never asserted (a loaded machine makes them noisy: the load average is printed
with them).

The processes run as an installed package does: with bytecode caches (``pip install``
compiles them), kept in a temporary ``PYTHONPYCACHEPREFIX`` directory made for the run
(an environment with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module
from source in every run).

    python benchmarks/startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cgroup2 import default_mountpoint


def _command() -> list[str]:
    """The ``cgroup2`` command of this interpreter: its console script, else ``-m``."""
    script = Path(sys.executable).parent / "cgroup2"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cgroup2"]


def _spawn(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``argv``; (wall seconds, CPU seconds, wait status)."""
    devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
    t = time.perf_counter()
    pid = os.posix_spawnp(argv[0], list(argv), env, file_actions=devnull)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    return wall, ru.ru_utime + ru.ru_stime, status


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _controller(mnt: str) -> str | None:
    """A controller of the mount for ``cgexec -g`` (hugetlb if offered)."""
    try:
        offered = Path(mnt, "cgroup.controllers").read_text().split()
    except OSError:
        return None
    if "hugetlb" in offered:
        return "hugetlb"
    return offered[0] if offered else None


def _remove(path: str) -> None:
    """Remove the group ``path`` and the (empty) groups below it, deepest first."""
    if not os.path.isdir(path):
        return
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            os.rmdir(os.path.join(root, d))
    os.rmdir(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="runs of each command (median)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    py = sys.executable
    cg = _command()
    cases: list[tuple[str, list[str]]] = [
        ("python -c pass", [py, "-c", "pass"]),
        ("import cgroup2", [py, "-c", "import cgroup2"]),
        ("import Manager, Resources",
         [py, "-c", "from cgroup2 import Manager, Resources"]),
        ("re + argparse (the floor)",
         [py, "-c", "import re, argparse; argparse.ArgumentParser(prog='x').parse_args([])"]),
        ("cgroup2 --version", [*cg, "--version"]),
    ]
    cache = tempfile.TemporaryDirectory(prefix="cgroup2-startup-pyc-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache.name
    skipped: list[str] = []
    group: str | None = None
    mnt = ""
    try:
        mnt = default_mountpoint()
    except Exception as e:  # no cgroup2 mount: only the commands that need none
        skipped.append(f"run, get, stat, set, exec, ls, status, cgexec: no cgroup2 mount ({e})")
    if mnt and os.geteuid() != 0:
        skipped.append("run, get, stat, set, exec, ls, status, cgexec: need root")
    elif mnt:
        group = f"/cgroup2-startup-{os.getpid()}"
        os.mkdir(mnt.rstrip("/") + group)
    try:
        if group is not None:
            cases += [
                ("cgroup2 get GROUP FILE", [*cg, "get", group, "cgroup.max.depth"]),
                ("cgroup2 stat --json GROUP", [*cg, "stat", "--json", group]),
                ("cgroup2 set -p FILE=VALUE GROUP",
                 [*cg, "set", "-p", "cgroup.max.descendants=max", group]),
                ("cgroup2 exec GROUP -- true", [*cg, "exec", group, "--", "true"]),
                ("cgroup2 ls GROUP", [*cg, "ls", group]),
                ("cgroup2 status GROUP", [*cg, "status", group]),
            ]
            controller = _controller(mnt)
            cgexec = shutil.which("cgexec")
            if cgexec is None:
                skipped.append("cgexec: not installed (Debian package cgroup-tools)")
            elif controller is None:
                skipped.append("cgexec: the mount offers no controller to name")
            else:
                cases.append(
                    (f"cgexec -g {controller}:GROUP true",
                     [cgexec, "-g", f"{controller}:{group}", "true"])
                )
            cases.append(("cgroup2 run -- true", [*cg, "run", "--parent", group, "--", "true"]))
        for _, argv in cases:  # warm the caches (.pyc, page cache); each must succeed
            _, _, status = _spawn(argv, env)
            if status != 0:
                r = subprocess.run(argv, capture_output=True, text=True, env=env)
                sys.stderr.write(f"startup: {' '.join(argv)} failed: {r.stderr}")
                return 1
        load_before = _load()
        wall: dict[str, list[float]] = {name: [] for name, _ in cases}
        cpu: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(args.rounds):
            for name, argv in cases:
                w, c, _ = _spawn(argv, env)
                wall[name].append(w * 1e3)
                cpu[name].append(c * 1e3)
        load_after = _load()
    finally:
        if group is not None:
            _remove(mnt.rstrip("/") + group)
        cache.cleanup()

    med = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    base = med["python -c pass"]
    cgexec_name = next((n for n in med if n.startswith("cgexec")), None)
    print(f"startup: whole-process runs, median of {args.rounds}; {os.cpu_count()} CPUs; "
          f"load average {load_before} before, {load_after} after")
    print(f"  {'command':<32} {'wall ms':>8} {'cpu ms':>8}  ratio")
    for name, _ in cases:
        w = med[name]
        note = f"{w / base:5.2f}x python"
        if name == "import cgroup2":
            over = w - base
            note += f"; {over:+.1f} ms over python (budget 15 ms: {_verdict(over <= 15)})"
        elif name in ("cgroup2 --version", "cgroup2 get GROUP FILE"):
            note += f" (budget 2x: {_verdict(w <= 2 * base)})"
        elif name == "cgroup2 run -- true" and cgexec_name is not None:
            ratio = w / med[cgexec_name]
            note += f"; {ratio:.2f}x cgexec (budget 3x: {_verdict(ratio <= 3)})"
        print(f"  {name:<32} {w:8.1f} {med_cpu[name]:8.1f}  {note}")
    for why in skipped:
        print(f"  left out: {why}")
    return 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    sys.exit(main())
