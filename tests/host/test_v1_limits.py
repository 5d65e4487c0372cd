"""host: a program's own limits on a hybrid host, read from the cgroup v1 hierarchies its
controllers are bound to, compared case by case with the JDK's.

This host binds memory, cpu, cpuset and pids to cgroup v1 (``/sys/fs/cgroup/<name>``).
Each case makes an outer and an inner group, below a parent named for the run, in each
of those hierarchies, sets limits there, and runs three children placed in the inner
groups of all four: a Python child calling ``cgroup2.limits()``, ``cpu_count()`` and
``memory_available()``, ``cgroup2 self --json``, and ``java -XshowSettings:system
-version`` (OpenJDK 17, which reads cgroup v1 itself). The values are printed side by
side and must agree, except where this library deliberately differs from the JDK (said
per case). Every group made is removed at the end, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cgtest import RUN_PREFIX
from conftest import Parent

V1 = "/sys/fs/cgroup"
CONTROLLERS = ("memory", "cpu", "cpuset", "pids")
M = 1 << 20

CHILD = r"""
import json, sys
sys.stdin.readline()  # placed in its groups by now
import cgroup2
lim = cgroup2.limits()
try:
    down = cgroup2.cpu_count(rounding="down")
except TypeError:  # (a version without the choice)
    down = None
print(json.dumps({
    "limits": lim.as_dict(),
    "cpu_count": cgroup2.cpu_count(),
    "cpu_count_down": down,
    "memory_available": cgroup2.memory_available(),
}))
"""


def _bound_to_v1() -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            text = f.read()
    except OSError:
        return False
    return all(f" {V1}/{c} " in text and f"- cgroup cgroup rw,{c}" in text
               for c in CONTROLLERS)


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroup v1 groups"),
    pytest.mark.skipif(not _bound_to_v1(),
                       reason="needs memory, cpu, cpuset, pids on cgroup v1 hierarchies"),
]


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _rmdir_tree(top: str) -> None:
    """Remove ``top`` and the directories below it, deepest first (v1 groups: rmdir)."""
    dirs = []
    for root, subdirs, _ in os.walk(top):
        dirs.extend(os.path.join(root, d) for d in subdirs)
    for d in [*sorted(dirs, key=lambda p: p.count("/"), reverse=True), top]:
        deadline = time.monotonic() + 10
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:  # a child of ours still exiting: bounded wait
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture(scope="module")
def v1_parent() -> Iterator[str]:
    """The run's parent group name, made in each v1 hierarchy; removed at the end."""
    name = f"{RUN_PREFIX}v1-{os.getpid()}-{secrets.token_hex(3)}"
    made: list[str] = []
    try:
        for c in CONTROLLERS:
            path = f"{V1}/{c}/{name}"
            os.mkdir(path)
            made.append(path)
            if c == "cpuset":  # a v1 cpuset takes no process until it has CPUs and nodes
                _write(f"{path}/cpuset.cpus", _read(f"{V1}/cpuset/cpuset.cpus"))
                _write(f"{path}/cpuset.mems", _read(f"{V1}/cpuset/cpuset.mems"))
        yield name
    finally:
        for path in made:
            _rmdir_tree(path)
        assert not any(os.path.exists(p) for p in made), made


@dataclass
class Case:
    name: str
    #: (controller, "outer" | "inner", file, value), written in order
    settings: list[tuple[str, str, str, str]]
    #: fields where we deliberately differ from the JDK, with the reason
    differ: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("memory limit and CFS quota (half a CPU)", [
        ("memory", "inner", "memory.limit_in_bytes", str(300 * M)),
        ("cpu", "inner", "cpu.cfs_quota_us", "50000"),
        ("cpu", "inner", "cpu.cfs_period_us", "100000"),
    ]),
    Case("quota of 1.5 CPUs (rounded up, as the JDK)", [
        ("cpu", "inner", "cpu.cfs_quota_us", "150000"),
        ("cpu", "inner", "cpu.cfs_period_us", "100000"),
    ]),
    Case("cpuset of one CPU", [
        ("cpuset", "inner", "cpuset.cpus", "CPU0"),
    ]),
    Case("pids.max, memory+swap and soft limits", [
        ("memory", "inner", "memory.limit_in_bytes", str(256 * M)),
        ("memory", "inner", "memory.memsw.limit_in_bytes", str(384 * M)),
        ("memory", "inner", "memory.soft_limit_in_bytes", str(128 * M)),
        ("pids", "inner", "pids.max", "64"),
    ]),
    Case("a parent tighter than its child", [
        ("memory", "outer", "memory.limit_in_bytes", str(200 * M)),
        ("memory", "inner", "memory.limit_in_bytes", str(400 * M)),
        # v1 refuses a child quota above its parent's (EINVAL): the child has none
        ("cpu", "outer", "cpu.cfs_quota_us", "100000"),
        ("pids", "outer", "pids.max", "32"),
        ("pids", "inner", "pids.max", "64"),
    ], differ={
        "memory": "OpenJDK 17 reads only its own group's memory.limit_in_bytes (400M, "
                  "JDK-8322420); the kernel enforces the parent's 200M, as memory.stat's "
                  "hierarchical_memory_limit says: we report the limit that binds",
        "cpu_count": "OpenJDK 17 reads only its own group's cpu.cfs_quota_us (-1); the "
                     "parent's quota of 1 CPU throttles the whole subtree: we count 1",
        "pids": "OpenJDK 17 reads only its own group's pids.max (64); the parent's 32 "
                "stops a fork first: we report 32",
    }),
]


def _placed(argv: list[str], procs: list[str], env: dict[str, str]) -> str:
    """Run ``argv`` placed in the groups whose ``cgroup.procs`` are ``procs`` from before
    its first instruction (it waits for a line on stdin); its stdout and stderr."""
    p = subprocess.Popen(["sh", "-c", 'read x; exec "$@"', "sh", *argv],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for path in procs:
            _write(path, str(p.pid))
        out, _ = p.communicate("go\n", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out
    return out


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _jdk(out: str) -> dict[str, Any]:
    """The fields of ``java -XshowSettings:system`` compared here."""
    got: dict[str, Any] = {}
    for line in out.splitlines():
        key, sep, value = line.strip().partition(": ")
        if not sep:
            continue
        value = value.strip()
        if key == "Provider":
            got["provider"] = value
        elif key == "Effective CPU Count":
            got["cpu_count"] = int(value)
        elif key in ("Memory Limit", "Memory Soft Limit", "Memory & Swap Limit",
                     "Maximum Processes Limit"):
            m = re.fullmatch(r"([0-9.]+)([KMGT]?)", value)
            got[key] = None if m is None else round(float(m[1]) * _UNITS[m[2]])
    return got


def _bytes(d: dict[str, Any] | None) -> int | None:
    return None if d is None else int(d["value"])


def _fmt(v: object) -> str:
    if isinstance(v, int) and v >= M:
        return f"{v / M:g}M"
    return str(v)


@pytest.mark.skipif(shutil.which("java") is None,
                    reason="java (Debian openjdk-17-jre-headless) is not installed")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_own_limits_on_v1_match_the_jdk(v1_parent: str, case: Case) -> None:
    base = {c: f"{V1}/{c}/{v1_parent}/case" for c in CONTROLLERS}
    made: list[str] = []
    cpu0 = str(min(os.sched_getaffinity(0)))
    try:
        for c in CONTROLLERS:
            for d in (base[c], base[c] + "/inner"):
                os.mkdir(d)
                made.append(d)
                if c == "cpuset":
                    _write(f"{d}/cpuset.mems", _read(f"{V1}/cpuset/cpuset.mems"))
                    _write(f"{d}/cpuset.cpus", _read(f"{V1}/cpuset/cpuset.cpus"))
        for c, level, name, value in case.settings:
            d = base[c] if level == "outer" else base[c] + "/inner"
            _write(f"{d}/{name}", cpu0 if value == "CPU0" else value)
        procs = [f"{base[c]}/inner/cgroup.procs" for c in CONTROLLERS]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        py = json.loads(_placed([sys.executable, "-c", CHILD], procs, env))
        cli = json.loads(_placed([sys.executable, "-m", "cgroup2", "self", "--json"],
                                 procs, env))
        jdk = _jdk(_placed(["java", "-XshowSettings:system", "-version"], procs, env))
        witness = {  # what the kernel itself says binds (v1's own hierarchical figures)
            "memory": int(re.search(r"^hierarchical_memory_limit (\d+)$",
                                    _read(f"{base['memory']}/inner/memory.stat"),
                                    re.M)[1]),  # type: ignore[index]
        }
    finally:
        for d in reversed(made):
            _rmdir_tree(d)
    lim = py["limits"]
    inner = f"/{v1_parent}/case/inner"
    for c in CONTROLLERS:  # each read from the v1 hierarchy it is bound to
        assert c not in lim["unseen"], lim["unseen"]
        assert lim["hierarchies"][c] == {"version": 1, "mountpoint": f"{V1}/{c}"}

    # the same numbers from the library, `cgroup2 self --json` and cpu_count()
    assert cli["cpu_count"] == lim["cpu_count"] and cli["cpuset"] == lim["cpuset"]
    for k in ("memory_max", "cpu_quota", "pids_max", "memory_memsw_max", "memory_soft_limit"):
        a, b = cli[k], lim[k]  # (usage differs between the two processes)
        assert (a is None) == (b is None), k
        if a is not None:
            assert (a["value"], a["group"], a["hierarchy"]) == (
                b["value"], b["group"], b["hierarchy"]), k
    assert py["cpu_count"] == lim["cpu_count"]
    ours = {
        "memory": _bytes(lim["memory_max"]),
        "cpu_count": py["cpu_count"],
        "memsw": _bytes(lim["memory_memsw_max"]),
        "soft": _bytes(lim["memory_soft_limit"]),
        "pids": _bytes(lim["pids_max"]),
    }
    theirs = {
        "memory": jdk["Memory Limit"],
        "cpu_count": jdk["cpu_count"],
        "memsw": jdk["Memory & Swap Limit"],
        "soft": jdk["Memory Soft Limit"],
        "pids": jdk["Maximum Processes Limit"],
    }
    print(f"\n{case.name}  (JDK provider: {jdk.get('provider')})")
    print(f"  {'':10} {'limits()':>10} {'self --json':>12} {'JDK':>10}")
    cli_of = {"memory": _bytes(cli["memory_max"]), "cpu_count": cli["cpu_count"],
              "memsw": _bytes(cli["memory_memsw_max"]),
              "soft": _bytes(cli["memory_soft_limit"]), "pids": _bytes(cli["pids_max"])}
    for k in ours:
        note = "   differs: " + case.differ[k] if k in case.differ else ""
        print(f"  {k:10} {_fmt(ours[k]):>10} {_fmt(cli_of[k]):>12} {_fmt(theirs[k]):>10}{note}")
    print(f"  {'available':10} {_fmt(py['memory_available']):>10} "
          f"{_fmt(cli['memory_available']):>12} {'-':>10}   (memory_available())")
    print(f"  cpu_count(rounding='down') {py['cpu_count_down']}")
    assert jdk.get("provider") == "cgroupv1"
    for k in ours:
        assert cli_of[k] == ours[k], k
        if k not in case.differ:
            assert ours[k] == theirs[k], (k, ours[k], theirs[k])
        else:
            assert ours[k] != theirs[k], f"{k}: the JDK now agrees: drop the difference"
    # the memory limit is the one the kernel applies, and says which hierarchy set it
    assert ours["memory"] == (witness["memory"] if ours["memory"] is not None else None) or (
        ours["memory"] is None and witness["memory"] >= 1 << 62)
    if lim["memory_max"] is not None:
        mm = lim["memory_max"]
        assert mm["version"] == 1 and mm["hierarchy"] == f"{V1}/memory"
        assert mm["group"] in (inner, inner.rpartition("/")[0])
        assert 0 < py["memory_available"] <= mm["value"]
    if lim["cpu_quota"] is not None:
        assert lim["cpu_quota"]["version"] == 1
        assert lim["cpu_quota"]["hierarchy"] == f"{V1}/cpu"
    if case.name.startswith("quota of 1.5"):
        assert lim["cpu_quota"]["value"] == 1.5
        assert py["cpu_count"] == 2 and py["cpu_count_down"] == 1
    if case.name.startswith("cpuset"):
        assert lim["cpuset"] == [int(cpu0)] and lim["cpuset_group"] == inner


def test_v1_groups_are_only_read(v1_parent: str) -> None:
    """limits() opens v1 groups read-only: nothing in them changes (every file's content
    and mtime of the run's groups stay as they were)."""
    paths = {c: f"{V1}/{c}/{v1_parent}" for c in CONTROLLERS}

    def snapshot() -> dict[str, tuple[float, str]]:
        out = {}
        for p in paths.values():
            for name in sorted(os.listdir(p)):
                f = f"{p}/{name}"
                # (cgroup.procs and tasks: the test places its child through them)
                if os.path.isfile(f) and not name.endswith((
                        "usage_in_bytes", "stat", "current", "failcnt", "procs", "tasks")):
                    with contextlib.suppress(OSError):
                        out[f] = (os.stat(f).st_mtime, _read(f))
        return out

    before = snapshot()
    procs = [f"{p}/cgroup.procs" for p in paths.values()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    got = json.loads(_placed([sys.executable, "-c", CHILD], procs, env))
    assert got["limits"]["pids_max"] is None  # the run's parent sets nothing
    assert before == snapshot()


def test_status_shows_the_v1_groups_of_a_group_s_process(
    v1_parent: str, cg_parent: Parent, cg_path: str
) -> None:
    """`cgroup2 status G` on a hybrid host: the usage and limits of the controllers bound
    to v1, read from the v1 groups of G's process (named by path), instead of "-"."""
    fs = cg_parent.mountpoint + cg_path
    base = {c: f"{V1}/{c}/{v1_parent}/status" for c in ("memory", "pids")}
    made = []
    p = None
    try:
        os.mkdir(fs)
        made.append(fs)
        for d in base.values():
            os.mkdir(d)
            made.append(d)
        _write(f"{base['memory']}/memory.limit_in_bytes", str(300 * M))
        _write(f"{base['pids']}/pids.max", "64")
        p = subprocess.Popen(["sleep", "60"])
        for path in (fs, *base.values()):
            _write(f"{path}/cgroup.procs", str(p.pid))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="300")
        r = subprocess.run([sys.executable, "-m", "cgroup2", "status", "--no-procs", cg_path],
                           capture_output=True, text=True, timeout=60, env=env)
    finally:
        if p is not None:
            p.kill()
            p.wait()
        for d in reversed(made):
            _rmdir_tree(d)
    print("\n" + r.stdout)
    assert r.returncode == 0, r.stderr
    lines = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip()
             for ln in r.stdout.splitlines() if ":" in ln}
    assert lines["memory (v1)"].endswith(f"(limit 300.0M) — {base['memory']}, read-only")
    assert lines["pids (v1)"] == f"pids.current 1, pids.max 64 — {base['pids']}, read-only"
