"""vm tier: an unprivileged user sets pids, memory and cpu limits inside a group root
delegated to it, and the kernel enforces them on the user's own jobs.

The user is made with useradd for the test (the VM's /etc is a writable overlay) and
removed after; its processes start in the leaf ``D/init`` (root's) of the delegated
group ``D`` (tests/delegation_tools.py). The rootless OCI specs of crun and runc are
converted by to_resources and applied by that user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cgtest import remove_tree
from conftest import Parent
from delegation_tools import run_as, spare_user, why_not_usable

from cgroup2 import ControllerToggle, Manager, Resources
from cgroup2.controllers.memory import Memory
from cgroup2.controllers.pids import Pids

_why = why_not_usable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"
M = 1 << 20


@pytest.fixture(scope="module")
def user() -> Iterator[int]:
    with spare_user("cg2deleg") as uid:
        assert isinstance(uid, int)
        yield uid


@pytest.fixture
def tree(cg_parent: Parent, cg_path: str, user: int) -> Iterator[tuple[str, str]]:
    """(mountpoint, D): D made by root with memory.max 512M and pids.max 200 (which
    enables memory and pids in its parent; cpu too, with cpu.weight), delegated to the
    user; D/init is the leaf the user's processes start in."""
    mp = cg_parent.mountpoint
    d = f"{cg_path}/D"
    res = Resources(memory=Memory(max=512 * M), pids=Pids(max=200))
    Manager.create(d, res, mountpoint=mp)
    Manager.load(d, mountpoint=mp).toggle_controllers(["cpu"], ControllerToggle.ENABLE)
    Manager.load(d, mountpoint=mp).delegate(user)
    Manager.create(f"{d}/init", mountpoint=mp)
    try:
        yield mp, d
    finally:
        remove_tree(mp + cg_path)


ENFORCED = r"""
import json, os, signal, subprocess, sys, time
from cgroup2 import Manager, Resources
from cgroup2.controllers.cpu import CPU, CPUMax
from cgroup2.controllers.memory import Memory
from cgroup2.controllers.pids import Pids
mp, D = sys.argv[1], sys.argv[2]
out = {}
def job(name, res, argv, **kw):
    m = Manager.create(D + "/" + name, res, mountpoint=mp)
    r, w = os.pipe()
    p = subprocess.Popen(argv, stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, **kw)
    os.close(r)
    m.add_proc(p.pid)
    os.close(w)  # the job starts reading stdin's EOF only once it is in the group
    so, se = p.communicate(timeout=120)
    return m, p.returncode, so, se
wait = "import sys; sys.stdin.read(); "
FORKER = '''import os, time
ok = 0
for i in range(20):
    try:
        pid = os.fork()
    except OSError as e:
        print('EAGAIN', e.errno)
        break
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    ok += 1
print('forked', ok)'''
HOG = '''b = bytearray(200 * 2**20)
for i in range(0, len(b), 4096):
    b[i] = 1
print('survived')'''
SPIN = '''import time
t, c = time.monotonic(), time.process_time()
while time.monotonic() - t < 2:
    pass
print((time.process_time() - c) / (time.monotonic() - t))'''
# pids.max 5: the sixth task cannot be forked
m, rc, so, se = job("pids", Resources(pids=Pids(max=5)), [sys.executable, "-c", wait + FORKER])
out["pids"] = [rc, so.split(), open(m.path + "/pids.events").read().split()]
m.delete(kill=True)
# memory.max 48M, no swap: a process touching 200 MB is OOM-killed
mem = Resources(memory=Memory(max=48 * 2**20, swap=0))
m, rc, so, se = job("mem", mem, [sys.executable, "-c", wait + HOG])
out["memory"] = [rc, so.strip(), dict(l.split() for l in open(m.path + "/memory.events"))]
m.delete(kill=True)
# cpu.max 20%: a spinner gets about a fifth of a CPU
cpu = Resources(cpu=CPU(max=CPUMax.new(20000, 100000)))
m, rc, so, se = job("cpu", cpu, [sys.executable, "-c", wait + SPIN])
out["cpu"] = [rc, float(so.strip()), dict(l.split() for l in open(m.path + "/cpu.stat"))]
m.delete(kill=True)
# the same through cgroup2 run, which finds the delegation itself
r = subprocess.run([sys.executable, "-m", "cgroup2", "run", "--memory-max", "48M",
    "--memory-swap-max", "0", "--pids-max", "10", "--summary", "--", sys.executable, "-c",
    HOG],
    capture_output=True, text=True, timeout=120)
out["run"] = [r.returncode, r.stderr]
print(json.dumps(out))
"""


def test_user_limits_are_enforced_on_the_users_jobs(tree: tuple[str, str], user: int) -> None:
    mp, d = tree
    out = run_as(user, ENFORCED, mp, d, procs=f"{mp}{d}/init/cgroup.procs", timeout=600).json()
    assert isinstance(out, dict)
    rc, words, events = out["pids"]
    assert rc == 0 and words[:1] == ["EAGAIN"] and "forked" in words, out["pids"]
    assert words[words.index("forked") + 1] == "4", out["pids"]  # 5 tasks: itself and 4
    assert int(events[events.index("max") + 1]) >= 1
    rc, text, ev = out["memory"]
    assert rc == -9 and text == "", out["memory"]
    assert int(ev["oom_kill"]) >= 1
    rc, share, stat = out["cpu"]
    assert rc == 0
    assert 0.02 < share < 0.3, share  # 20 % of a CPU, not a whole one
    assert int(stat["nr_throttled"]) > 0
    rc, err = out["run"]
    assert rc == 137, err
    assert "OOM kills" in err and "cgroup2 run: group " + d + "/cgroup2-run-" in err, err


ROOTLESS_OCI = r"""
import json, sys, dataclasses
from cgroup2 import Manager, to_resources
from cgroup2.errors import CgroupError
mp, D, spec = sys.argv[1], sys.argv[2], sys.argv[3]
res = to_resources(json.load(open(spec)))
out = {"devices": res.devices is not None and len(res.devices) > 0}
try:
    m = Manager.create(D + "/oci", res, mountpoint=mp)
    out["as_is"] = "ok"
    m.delete()
except CgroupError as e:
    out["as_is"] = [type(e).__name__, str(e)]
# what runc and crun do without privileges: the device filter is skipped
m = Manager.create(D + "/oci", dataclasses.replace(res, devices=None), mountpoint=mp)
out["without_devices"] = "ok"
m.delete()
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", ["crun-spec-rootless.json", "runc-spec-rootless.json"])
def test_rootless_oci_spec_applied_by_the_user(
    tree: tuple[str, str], user: int, name: str
) -> None:
    mp, d = tree
    spec = str(DATA / name)
    out = run_as(user, ROOTLESS_OCI, mp, d, spec, procs=f"{mp}{d}/init/cgroup.procs").json()
    assert isinstance(out, dict)
    if out["devices"]:  # crun's rootless spec denies every device: a BPF program
        kind, text = out["as_is"]
        assert kind == "BPFError" and "CAP_SYS_ADMIN" in text and "DeviceAllow=" in text
    else:
        assert out["as_is"] == "ok"
    assert out["without_devices"] == "ok"
    assert json.dumps(out)
