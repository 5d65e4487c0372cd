"""systemd tier: ``cgroup2 run --systemd`` puts the command in a transient scope.

Run with ``scripts/systemd-test tests/systemd/test_systemd_cli.py -q`` (systemd as PID 1 in a
container in the VM); skipped anywhere else, with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

CLI = [sys.executable, "-m", "cgroup2"]


def _pid1() -> str:
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


pytestmark = pytest.mark.skipif(
    os.environ.get("CGROUP2_TIER") != "systemd" or _pid1() != "systemd" or os.geteuid() != 0,
    reason="needs systemd as PID 1 and root: run scripts/systemd-test",
)


def test_run_systemd_scope() -> None:
    unit = f"cgroup2-clitest-{os.getpid()}"
    script = 'g=$(cut -d: -f3 /proc/self/cgroup); echo "$g"; cat "/sys/fs/cgroup$g/pids.max"'
    p = subprocess.run(
        [*CLI, "run", "--systemd", "--name", unit, "--pids-max", "16", "--memory-max", "64M",
         "--summary", "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=120,
    )
    try:
        assert p.returncode == 0, p.stderr
        group, pids_max = p.stdout.split("\n")[:2]
        assert re.fullmatch(rf"/system\.slice/{unit}\.scope(/leaf)?", group), group
        # with --summary a holder process keeps the scope until the counters are read;
        # pids.max is raised by one for it, and the summary shows the limit asked for
        assert pids_max == "17"
        assert re.search(r"^pids\.max hits\s+0 \(fork failures, pids\.max 16\)$", p.stderr, re.M)
        assert re.search(r"^peak memory\s+\S+ \(memory\.max 64\.0M\)$", p.stderr, re.M), p.stderr
        scope = f"/sys/fs/cgroup/system.slice/{unit}.scope"
        deadline = time.monotonic() + 10
        while os.path.exists(scope):  # the unit was stopped: systemd removes its group
            assert time.monotonic() < deadline, f"{scope} still exists"
            time.sleep(0.05)
    finally:
        subprocess.run(["systemctl", "stop", f"{unit}.scope"], capture_output=True, timeout=30)
        subprocess.run(["systemctl", "reset-failed", f"{unit}.scope"], capture_output=True,
                       timeout=30)
