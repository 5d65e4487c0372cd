"""systemd tier: a program in a transient scope finds the limits systemd gave it.

``systemd-run --scope -p CPUQuota=50% -p MemoryMax=100M`` runs a small program that asks
``cgroup2.current()``, ``cgroup2.limits()``, ``cgroup2.cpu_count()`` and
``cgroup2.memory_available()`` about itself, and then ``cgroup2 self --json``: both must
name the scope as the group, the scope as the source of the quota (0.5 CPU: one CPU to
size pools with) and of ``memory.max`` (100M), and leave less than 100M available.

Run with ``scripts/systemd-test tests/systemd/test_systemd_self.py -q`` (systemd as PID 1
in a container in the VM); skipped anywhere else, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from sdtools import systemctl, unique

MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    os.environ.get("CGROUP2_TIER") != "systemd" or os.geteuid() != 0,
    reason="needs systemd as PID 1 and root: run scripts/systemd-test",
)

#: What the program in the scope prints: what the library finds, then the command's view.
CHILD = r"""
import json, os, subprocess, sys
import cgroup2
lim = cgroup2.limits()
print(json.dumps({
    "group": cgroup2.current().group,
    "proc": open("/proc/self/cgroup").read().strip(),
    "limits": lim.as_dict(),
    "cpu_count": cgroup2.cpu_count(),
    "os_cpu_count": os.cpu_count(),
    "memory_available": cgroup2.memory_available(),
}))
sys.stdout.flush()
subprocess.run([sys.executable, "-m", "cgroup2", "self", "--json"], check=True)
"""


def _top_is_not_the_root() -> bool:
    """Whether the top group this container sees is not the hierarchy's true root: only a
    non-root group has ``cgroup.type`` (systemd-nspawn gives its container a cgroup
    namespace, so the VM's groups above it are hidden)."""
    return os.path.exists("/sys/fs/cgroup/cgroup.type")


def _scope(unit: str, *props: str) -> tuple[dict[str, Any], dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run(
        ["systemd-run", "--quiet", "--scope", "--unit", unit, "--collect",
         *(x for prop in props for x in ("-p", prop)), "--",
         sys.executable, "-c", CHILD],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    api = json.loads(lines[0])
    cli = json.loads("\n".join(lines[1:]))
    return api, cli


def test_scope_with_cpu_quota_and_memory_max_seen_from_inside() -> None:
    unit = unique("cgroup2-self")
    try:
        api, cli = _scope(unit, "CPUQuota=50%", "MemoryMax=100M")
    finally:
        systemctl("stop", f"{unit}.scope")
        systemctl("reset-failed", f"{unit}.scope")
    scope = f"/system.slice/{unit}.scope"
    print(f"\nscope CPUQuota=50%: cpu_count={api['cpu_count']} os.cpu_count={api['os_cpu_count']}"
          f" memory_available={api['memory_available']}")
    assert api["proc"] == f"0::{scope}"
    assert api["group"] == scope
    lim = api["limits"]
    assert lim["group"] == scope
    # the systemd tier's systemd runs in a container (systemd-nspawn) with its own cgroup
    # namespace: its root group is "/" to it, and the VM's groups above it are hidden
    assert _top_is_not_the_root() == os.path.exists("/run/systemd/container")
    assert lim["top"] == "/"
    assert lim["ancestors_hidden"] is (_top_is_not_the_root())
    assert lim["cpu_quota"]["value"] == 0.5 and lim["cpu_quota"]["group"] == scope
    assert lim["memory_max"]["value"] == 100 * MiB and lim["memory_max"]["group"] == scope
    assert api["cpu_count"] == 1 < (api["os_cpu_count"] or 0) + 1
    assert 0 < api["memory_available"] < 100 * MiB
    # the command prints the same, from its own process in the same scope
    assert cli["group"] == scope, cli
    assert cli["cpu_count"] == 1
    assert cli["cpu_quota"] == lim["cpu_quota"]
    assert cli["memory_max"]["value"] == 100 * MiB and cli["memory_max"]["group"] == scope
