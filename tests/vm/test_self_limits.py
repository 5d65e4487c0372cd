"""vm tier: what a process finds about its own limits, in nested groups and in a container.

Runs in the VM (every controller at /sys/fs/cgroup, 2 CPUs). (1) Hand-made nested groups:
the tighter limits (``cpu.max`` 150000/100000, ``memory.max`` 256M) on the outer group and
looser ones on the inner group, where the process runs: the outer values are reported,
with the outer group as their source. (2) A container started by ``crun`` with its own
cgroup namespace and the same limits: the process sees its group as ``/``, the ancestors
as hidden, ``cpu_count() == 2`` (1.5 rounded up) and ``memory.max`` 256M. The container's
root file system is an empty directory with read-only binds of ``/usr``, the interpreter
and the project, so the program it runs is this checkout's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Parent

from cgroup2 import CPU, CPUMax, Manager, Memory, Resources

MiB = 1 << 20
REPO = Path(__file__).resolve().parents[2]

if os.environ.get("CGROUP2_TIER") != "vm":
    pytest.skip("vm tier: run with scripts/vm-test tests/vm", allow_module_level=True)

#: What the process inside prints: its group and limits, as JSON on one line.
CHILD = r"""
import json, os, sys
import cgroup2
m = cgroup2.current()
lim = cgroup2.limits()
print(json.dumps({
    "group": m.group,
    "limits": lim.as_dict(),
    "cpu_count": cgroup2.cpu_count(),
    "os_cpu_count": os.cpu_count(),
    "process_cpu_count": getattr(os, "process_cpu_count", lambda: None)(),
    "memory_available": cgroup2.memory_available(),
}))
"""


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """``cg_path``, removed with everything in it after the test (also on failure)."""
    yield cg_path
    with contextlib.suppress(Exception):
        Manager.load(cg_path, mountpoint=cg_parent.mountpoint).delete(kill=True)


def _run_in(m: Manager) -> dict[str, Any]:
    """Run CHILD in the group ``m`` (joined between fork and exec); its JSON."""

    def join() -> None:
        m.add_proc(os.getpid())

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run(
        [sys.executable, "-c", CHILD], preexec_fn=join, capture_output=True, text=True,
        env=env, timeout=120, check=False,
    )
    assert p.returncode == 0, p.stderr
    result: dict[str, Any] = json.loads(p.stdout)
    return result


def test_nested_groups_report_the_tighter_outer_limits(group: str) -> None:
    outer = Manager.create(
        group,
        Resources(cpu=CPU(max=CPUMax("150000 100000")), memory=Memory(max=256 * MiB)),
    )
    inner = outer.new_child(
        "inner",
        Resources(cpu=CPU(max=CPUMax("400000 200000")), memory=Memory(max=512 * MiB)),
    )
    got = _run_in(inner)
    lim = got["limits"]
    print(f"\nnested 1.5 CPUs: cpu_count={got['cpu_count']} "
          f"os.cpu_count={got['os_cpu_count']} process_cpu_count={got['process_cpu_count']}")
    assert got["group"] == inner.group == lim["group"]
    assert lim["ancestors_hidden"] is False and lim["top"] == "/"
    assert "cpu" not in lim["unseen"] and "memory" not in lim["unseen"]
    assert lim["cpu_quota"] == {"value": 1.5, "group": outer.group, "current": None,
                                "version": 2, "hierarchy": inner.mountpoint}
    assert lim["memory_max"]["value"] == 256 * MiB
    assert lim["memory_max"]["group"] == outer.group
    assert got["cpu_count"] == min(2, len(os.sched_getaffinity(0)))
    assert 0 < got["memory_available"] <= 256 * MiB
    # the same, asked of the Manager from outside
    assert inner.effective_limits().memory_max.group == outer.group  # type: ignore[union-attr]


def test_a_quota_under_one_cpu_counts_one(group: str) -> None:
    outer = Manager.create(group, Resources(cpu=CPU(max=CPUMax("50000 100000"))))
    inner = outer.new_child("inner")
    got = _run_in(inner)
    print(f"\nnested 0.5 CPU: cpu_count={got['cpu_count']} "
          f"os.cpu_count={got['os_cpu_count']} process_cpu_count={got['process_cpu_count']}")
    assert got["limits"]["cpu_quota"]["value"] == 0.5
    assert got["cpu_count"] == 1


# --- a container: crun, its own cgroup namespace -------------------------------------------


def _binds() -> list[str]:
    """The directories the program inside needs, read-only: /usr, the interpreter's
    prefixes, the project (each once: a path below another is left out)."""
    want = {"/usr", sys.base_prefix, sys.prefix, str(REPO)}
    for name in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.isdir(name) and not os.path.islink(name):  # not merged into /usr
            want.add(name)
    out: list[str] = []
    for path in sorted(want, key=len):
        if not any(path == b or path.startswith(b.rstrip("/") + "/") for b in out):
            out.append(path)
    return out


def _bundle(root: Path, cgroups_path: str, argv: list[str]) -> Path:
    bundle = root / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    for name in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():  # merged /usr: the same link in the container
            (rootfs / name).symlink_to(os.readlink(host))
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    for path in _binds():
        mounts.append({"destination": path, "type": "bind", "source": path,
                       "options": ["rbind", "ro"]})
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": argv,
            "env": [
                "PATH=/usr/bin:/bin",
                f"PYTHONPATH={REPO / 'src'}",
                "PYTHONDONTWRITEBYTECODE=1",
            ],
            "cwd": "/",
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "cgroup2-self",
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {
                "cpu": {"quota": 150000, "period": 100000},
                "memory": {"limit": 256 * MiB},
            },
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "cgroup"},
            ],
        },
    }
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


@pytest.fixture
def crun() -> str:
    path = shutil.which("crun")
    assert path is not None, "crun is installed by scripts/test-all (the VM uses the host's /usr)"
    return path


def test_crun_container_sees_its_own_limits(
    crun: str, cg_parent: Parent, group: str, tmp_path: Path
) -> None:
    name = f"cgroup2-self-{os.getpid()}"
    bundle = _bundle(tmp_path, group, [sys.executable, "-c", CHILD])
    try:
        p = subprocess.run(
            [crun, "--cgroup-manager=cgroupfs", "run", "--bundle", str(bundle), name],
            capture_output=True, text=True, timeout=300, check=False,
            stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run([crun, "delete", "--force", name], capture_output=True, timeout=60,
                       check=False)
    assert p.returncode == 0, f"crun: {p.returncode}\n{p.stdout}\n{p.stderr}"
    got = json.loads(p.stdout.strip().splitlines()[-1])
    lim = got["limits"]
    print(f"\ncrun 1.5 CPUs: cpu_count={got['cpu_count']} os.cpu_count={got['os_cpu_count']} "
          f"process_cpu_count={got['process_cpu_count']}")
    assert got["group"] == "/" and lim["group"] == "/" and lim["top"] == "/"
    # the container's group is not the hierarchy's root: the groups above are hidden
    assert lim["ancestors_hidden"] is True
    assert lim["cpu_quota"]["value"] == 1.5 and lim["cpu_quota"]["group"] == "/"
    # 1.5 rounded up, or the VM's CPUs if fewer (scripts/test-all --stress gives it one)
    assert got["cpu_count"] == min(2, len(os.sched_getaffinity(0)))
    assert lim["memory_max"]["value"] == 256 * MiB and lim["memory_max"]["group"] == "/"
    assert 0 < got["memory_available"] <= 256 * MiB
