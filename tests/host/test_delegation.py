"""Host tier: a group root delegated with Manager.delegate, used by an unprivileged user.

The user (uid 65534) runs in a child forked by root that first puts itself in the leaf
``D/init`` (owned by root) of the delegated group ``D``, then drops to the user and
execs Debian's python3 (tests/delegation_tools.py). Inside D the user creates groups,
sets the host's limits (hugetlb), reads statistics, freezes, thaws, watches, kills and
runs a command with ``cgroup2 run``; outside it each refusal must be the
DelegationError that names the kernel's rule.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cgtest import remove_tree
from delegation_tools import NOBODY, SRC, run_as, unprivileged_env, why_not_usable

from cgroup2 import Manager, Resources
from cgroup2.controllers.hugetlb import HugeTlb, HugeTlbEntry
from cgroup2.delegation import DELEGATED_FILES
from cgroup2.errors import CgroupError, MountPointError

_why = why_not_usable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

HUGE = "2MB"
PAGE = 2 << 20


@pytest.fixture
def tree(cg_path: str, cg_parent: object) -> Iterator[tuple[str, str]]:
    """(mountpoint, T): T/D delegated to 65534 with hugetlb enabled for D's children's
    use (in T), the leaf T/D/init for the user's processes (root's), and T/N/E: E
    delegated below N, which does not enable hugetlb."""
    mp = cg_parent.mountpoint  # type: ignore[attr-defined]
    t = cg_path
    limit = Resources(hugetlb=HugeTlb([HugeTlbEntry(HUGE, 64 * PAGE)]))
    d = Manager.create(f"{t}/D", limit, mountpoint=mp)  # enables hugetlb in T
    d.delegate(NOBODY)
    Manager.create(f"{t}/D/init", mountpoint=mp)
    Manager.create(f"{t}/N/E", mountpoint=mp).delegate(NOBODY)
    try:
        yield mp, t
    finally:
        remove_tree(mp + t)


def test_delegate_chowns_the_three_files_and_nothing_else(tree: tuple[str, str]) -> None:
    mp, t = tree
    d = mp + t + "/D"
    assert os.stat(d).st_uid == NOBODY
    owned = sorted(
        n for n in os.listdir(d)
        if os.stat(os.path.join(d, n), follow_symlinks=False).st_uid == NOBODY
    )
    subdirs = [n for n in owned if stat.S_ISDIR(os.stat(os.path.join(d, n)).st_mode)]
    assert sorted(set(owned) - set(subdirs)) == sorted(DELEGATED_FILES)
    assert os.stat(d + "/hugetlb.2MB.max").st_uid == 0
    assert os.stat(d + "/cgroup.freeze").st_uid == 0


def test_delegate_refuses_the_root_group_and_bad_ids(cg_parent: object) -> None:
    mp = cg_parent.mountpoint  # type: ignore[attr-defined]
    with pytest.raises(MountPointError):
        Manager.load("/", mountpoint=mp).delegate(NOBODY)
    m = Manager.load(cg_parent.group, mountpoint=mp)  # type: ignore[attr-defined]
    for bad in (-1, 2**32 - 1, True, "65534"):
        with pytest.raises(CgroupError, match="invalid uid"):
            m.delegate(bad)  # type: ignore[arg-type]
    assert os.stat(m.path).st_uid == 0


def test_cli_create_owner(cg_path: str, cg_parent: object) -> None:
    mp = cg_parent.mountpoint  # type: ignore[attr-defined]
    cmd = [sys.executable, "-m", "cgroup2", "--mountpoint", mp, "create", "--parents"]
    r = subprocess.run([*cmd, "--owner", "nobody:nogroup", cg_path], capture_output=True,
                       text=True)
    try:
        assert r.returncode == 0, r.stderr
        st = os.stat(mp + cg_path + "/cgroup.subtree_control")
        assert (st.st_uid, st.st_gid) == (NOBODY, 65534)
        r = subprocess.run([*cmd, "--owner", "no-such-user-x", cg_path + "/x"],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "no user 'no-such-user-x'" in r.stderr
        assert not os.path.exists(mp + cg_path + "/x")
    finally:
        remove_tree(mp + cg_path)


INSIDE = r"""
import json, os, select, signal, subprocess, sys, time
from cgroup2 import Manager, Resources
from cgroup2.controllers.hugetlb import HugeTlb, HugeTlbEntry
from cgroup2.events import CgroupEventStream
from cgroup2.paths import delegated_root
mp, D = sys.argv[1], sys.argv[2]
out = {"uid": os.getuid(), "delegated_root": delegated_root(mountpoint=mp)}
lim = Resources(hugetlb=HugeTlb([HugeTlbEntry("2MB", 3 * (2 << 20))]))
a = Manager.create(D + "/a", lim, mountpoint=mp)   # enables hugetlb in D (the user's)
out["a_owner"] = os.stat(a.path).st_uid
out["limit"] = open(a.path + "/hugetlb.2MB.max").read().strip()
# a process that prints a line every 20 ms, moved into a (common ancestor D: the user's)
p = subprocess.Popen([sys.executable, "-u", "-c",
    "import time\nwhile True: print(1); time.sleep(0.02)"], stdout=subprocess.PIPE)
a.add_proc(p.pid)
out["procs"] = a.procs() == [p.pid]
def lines(sec):
    n, end = 0, time.monotonic() + sec
    while (left := end - time.monotonic()) > 0:
        if select.select([p.stdout], [], [], left)[0]:
            n += len(os.read(p.stdout.fileno(), 4096).split(b"\n")) - 1
    return n
with CgroupEventStream(a.path) as ev:
    lines(0.3)
    a.freeze()
    e = ev.get(5)
    out["ev_freeze"] = [e.populated, e.frozen] if e else None
    lines(0.1)  # what was printed before the freeze
    out["frozen_lines"] = lines(0.5)
    a.thaw()
    e = ev.get(5)
    out["ev_thaw"] = [e.populated, e.frozen] if e else None
    out["thawed_lines"] = lines(0.5)
    st = a.stat()
    out["cpu_usage"] = st.cpu.usage_usec if st.cpu else None
    out["hugetlb_max"] = [h.max for h in st.hugetlb or () if h.pagesize == "2MB"]
    a.kill()
    p.wait(10)
    out["events"] = [[e.populated, e.frozen] for e in ev]  # the rest, to the end
    out["ev_state"] = [ev.cgroup.populated, ev.cgroup.frozen]
out["killed"] = p.returncode
out["populated_after"] = open(a.path + "/cgroup.events").read().split()[1]
a.delete()
out["a_gone"] = not os.path.exists(a.path)
print(json.dumps(out))
"""


def test_user_works_inside_the_delegation(tree: tuple[str, str]) -> None:
    mp, t = tree
    d = f"{t}/D"
    out = run_as(NOBODY, INSIDE, mp, d, procs=f"{mp}{d}/init/cgroup.procs").json()
    assert isinstance(out, dict)
    assert out["uid"] == NOBODY
    assert out["delegated_root"] == d  # nearest owned ancestor of D/init
    assert out["a_owner"] == NOBODY
    assert out["limit"] == str(3 * PAGE)
    assert out["procs"] is True
    assert out["frozen_lines"] == 0, out  # the kernel stopped it
    assert out["thawed_lines"] > 5, out
    assert out["cpu_usage"] and out["cpu_usage"] > 0
    assert out["hugetlb_max"] == [3 * PAGE]
    assert out["killed"] == -9
    assert (out["ev_freeze"], out["ev_thaw"]) == ([True, True], [True, False]), out
    assert out["events"] == [[False, False]], out["events"]
    assert out["populated_after"] == "0"
    assert out["a_gone"] is True
    # D's own limit (set by root) is untouched by the user's work below it
    with open(f"{mp}{d}/hugetlb.2MB.max") as f:
        assert f.read().strip() == str(64 * PAGE)


RUN = r"""
import json, subprocess, sys
mp, parent = sys.argv[1], sys.argv[2]
base = [sys.executable, "-m", "cgroup2", "--mountpoint", mp, "run"]
out = {}
for name, extra in (("explicit", ["--parent", parent]), ("found", [])):
    r = subprocess.run([*base, *extra, "--name", "job-" + name,
                        "-p", "hugetlb.2MB.max=4194304", "--",
                        "sh", "-c", "g=$(grep ^0:: /proc/self/cgroup | cut -d: -f3); echo $g; "
                        "cat " + mp + "$g/hugetlb.2MB.max"],
                       capture_output=True, text=True)
    out[name] = [r.returncode, r.stdout.split(), r.stderr]
print(json.dumps(out))
"""


def test_user_cgroup2_run_in_the_delegation(tree: tuple[str, str]) -> None:
    mp, t = tree
    d = f"{t}/D"
    out = run_as(NOBODY, RUN, mp, d, procs=f"{mp}{d}/init/cgroup.procs").json()
    assert isinstance(out, dict)
    for name in ("explicit", "found"):
        rc, words, err = out[name]
        assert rc == 0, (name, err)
        assert words == [f"{d}/job-{name}", "4194304"], (name, words, err)
    assert not os.path.exists(f"{mp}{d}/job-found")  # removed after


REFUSALS = r"""
import json, os, sys
from cgroup2 import Manager, Resources
from cgroup2.controllers.hugetlb import HugeTlb, HugeTlbEntry
from cgroup2.devices import DeviceRule
from cgroup2.errors import CgroupError
mp, T = sys.argv[1], sys.argv[2]
D, E = T + "/D", T + "/N/E"
lim = Resources(hugetlb=HugeTlb([HugeTlbEntry("2MB", 2 << 20)]))
cases = {
    "limit of the delegated group": lambda: Manager.load(D, mountpoint=mp).update(lim),
    # the caller runs below D (refused as its own ancestor): allow_self lets the kernel say
    "freeze the delegated group":
        lambda: Manager.load(D, mountpoint=mp).freeze(allow_self=True),
    "freeze its own ancestor": lambda: Manager.load(D, mountpoint=mp).freeze(),
    "move out of the delegation":
        lambda: Manager.load(T + "/N", mountpoint=mp).add_proc(os.getpid()),
    "group outside the delegation": lambda: Manager.create(T + "/N/x", mountpoint=mp),
    "controller not enabled above (create)":
        lambda: Manager.create(E + "/x", lim, mountpoint=mp),
    "device filter": lambda: Manager.create(
        D + "/dev", Resources(devices=[DeviceRule(allow=False, access="rwm")]), mountpoint=mp),
    "delegate": lambda: Manager.load(D + "/init", mountpoint=mp).delegate(os.getuid()),
}
out = {}
for name, fn in cases.items():
    try:
        fn()
        out[name] = ["no error"]
    except CgroupError as e:
        out[name] = [type(e).__name__, getattr(e, "rule", None), e.errno, str(e)]
    except OSError as e:
        out[name] = ["OSError", None, e.errno, str(e)]
with __import__("contextlib").suppress(CgroupError):
    Manager.load(D + "/dev", mountpoint=mp).delete()
print(json.dumps(out))
"""

# case -> (error type, rule, words the message must hold; {T} is the test's group)
TABLE = {
    "limit of the delegated group": (
        "DelegationError", "file-not-delegated",
        ["{T}/D/hugetlb.2MB.max", "owned by uid 0", "a delegation covers only",
         "cgroup.procs, cgroup.threads, cgroup.subtree_control"],
    ),
    "freeze the delegated group": (
        "DelegationError", "file-not-delegated", ["{T}/D/cgroup.freeze", "child group"],
    ),
    "freeze its own ancestor": (
        "CgroupError", None,
        ["refusing to freeze {G}/D: this process", "runs in {G}/D/init, below it"],
    ),
    "move out of the delegation": (
        "DelegationError", "procs-common-ancestor",
        ["needs write access", "cgroup.procs of the common ancestor of source and "
         "destination groups ({T}, owned by uid 0)", "from {T}/D/init to {T}/N"],
    ),
    "group outside the delegation": (
        "DelegationError", "directory-not-owned", ["creating a group in {T}/N", "owned by uid 0"],
    ),
    "controller not enabled above (create)": (
        "DelegationError", "controller-not-delegated",
        ["enabling hugetlb for the children of {T}/N", "not enabled above the delegation point"],
    ),
    "device filter": (
        "BPFError", None,
        ["BPF_PROG_LOAD", "CAP_SYS_ADMIN", "CAP_BPF", "DeviceAllow="],
    ),
    "delegate": ("DelegationError", "chown-needs-root", ["CAP_CHOWN"]),
}


@pytest.fixture
def refusals(tree: tuple[str, str]) -> dict[str, list[object]]:
    mp, t = tree
    out = run_as(NOBODY, REFUSALS, mp, t, procs=f"{mp}{t}/D/init/cgroup.procs").json()
    assert isinstance(out, dict)
    return {k: [*v, t, mp + t] for k, v in out.items()}


@pytest.mark.parametrize("case", sorted(TABLE))
def test_refusal_names_the_rule(refusals: dict[str, list[object]], case: str) -> None:
    kind, rule, words = TABLE[case]
    got = refusals[case]
    t = str(got[-1])
    assert got[0] == kind, got
    if rule is not None:
        assert got[1] == rule, got
    for w in words:  # {T}: the test's group as a file system path, {G}: as a group path
        want = w.format(T=t, G=str(got[-2]))
        assert want in str(got[3]), (want, got[3])


ENABLE_BELOW = r"""
import json, sys
from cgroup2._fs import Dir
from cgroup2.errors import CgroupError
mp, E = sys.argv[1], sys.argv[2]
try:
    with Dir.open(mp + E) as d:
        d.write("cgroup.subtree_control", "+hugetlb")
    print(json.dumps(["no error"]))
except CgroupError as e:
    print(json.dumps([type(e).__name__, getattr(e, "rule", None), str(e)]))
"""


def test_enabling_a_controller_the_parent_lacks_names_parent_and_controller(
    tree: tuple[str, str],
) -> None:
    mp, t = tree
    got = run_as(NOBODY, ENABLE_BELOW, mp, f"{t}/N/E",
                 procs=f"{mp}{t}/D/init/cgroup.procs").json()
    assert isinstance(got, list)
    assert got[:2] == ["DelegationError", "controller-not-delegated"], got
    assert f"hugetlb is not enabled in the parent's cgroup.subtree_control ({mp}{t}/N)" in got[2]


def test_run_without_delegation_names_the_way_in(cg_parent: object) -> None:
    """A user with no delegated group and no systemd user manager: run says so."""
    mp = cg_parent.mountpoint  # type: ignore[attr-defined]
    r = subprocess.run(
        ["/usr/bin/python3", "-m", "cgroup2", "--mountpoint", mp, "run", "--", "true"],
        preexec_fn=lambda: (os.setgroups([]), os.setgid(NOBODY), os.setuid(NOBODY)),
        env=unprivileged_env({"XDG_RUNTIME_DIR": "/nonexistent"}), capture_output=True,
        text=True, cwd="/", timeout=60,
    )
    assert r.returncode == 1, r
    assert "no delegated group" in r.stderr, r.stderr
    assert str(SRC)  # the child imported the checkout's cgroup2
