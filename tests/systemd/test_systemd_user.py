"""systemd tier: the calling user's systemd manager (``systemd --user``).

A user is made with useradd and lingering is enabled for it (``loginctl enable-linger``),
so that ``user@UID.service`` runs its manager (it needs systemd-logind, the system bus
and the PAM stack of ``systemd-user``: scripts/systemd-test binds the VM's ``/etc/pam.d``
and ``/etc/security`` into the volatile container). The test fails, with the unit's
journal, when that unit does not come up.

The user's processes start in the manager's own ``init.scope`` (moved there by root before
dropping privileges), as a process the manager forked would: the manager can then move
them into the scopes it makes (the common ancestor is its own group). Then, as the user:

* ``cgroup2 run --user --memory-max 64M -- <hog>`` is OOM-killed in a scope of that
  user's manager (the scope's ``memory.max`` set by the manager, ``MemoryMax=``);
* ``memory.oom.group``, which systemd has no property for, is written by the user in the
  delegated scope's sub-group ``leaf``: an OOM kill there takes the whole group (a
  sleeping process in it dies with the hog).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator

import pytest
from delegation_tools import run_as
from sdtools import read, systemctl

USER = "cg2user"


def _wait_active(unit: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if systemctl("is-active", unit).stdout.strip() == "active":
            return True
        time.sleep(0.5)
    return False


def _private_socket(uid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    path = f"/run/user/{uid}/systemd/private"
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def manager() -> Iterator[tuple[int, str]]:
    """(uid, the group path of the user's manager) with ``user@UID.service`` running."""
    subprocess.run(["userdel", "-r", USER], capture_output=True, check=False)
    made = subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/sh", USER], capture_output=True, text=True
    )
    assert made.returncode == 0, f"useradd {USER}: exit {made.returncode} {made.stderr!r}"
    uid = pwd.getpwnam(USER).pw_uid
    unit = f"user@{uid}.service"
    try:
        # the tier's tests run from the kernel command line's systemd.run=, ordered before
        # the sockets and services of a booted system: the system bus and systemd-logind,
        # which lingering needs, are started here
        for needed in ("dbus.socket", "dbus.service", "systemd-logind.service"):
            systemctl("start", needed)
        linger = subprocess.run(
            ["loginctl", "enable-linger", USER], capture_output=True, text=True, timeout=60
        )
        if linger.returncode != 0 or not _wait_active(unit, 60):
            journal = subprocess.run(
                ["journalctl", "-b", "--no-pager", "-n", "30", "-u", unit, "-u",
                 "systemd-logind"],
                capture_output=True, text=True,
            ).stdout
            pytest.fail(
                f"{unit} did not start: loginctl enable-linger: rc {linger.returncode} "
                f"{linger.stderr.strip()!r}; state "
                f"{systemctl('is-active', unit).stdout.strip()!r}; journal:\n{journal}"
            )
        assert _private_socket(uid, 60), f"no /run/user/{uid}/systemd/private ({unit})"
        group = systemctl("show", "-p", "ControlGroup", "--value", unit).stdout.strip()
        assert group == f"/user.slice/user-{uid}.slice/{unit}", group
        yield uid, group
    finally:
        subprocess.run(["loginctl", "disable-linger", USER], capture_output=True)
        systemctl("stop", unit)
        subprocess.run(["userdel", "-r", USER], capture_output=True, check=False)


def _procs(group: str) -> str:
    return f"/sys/fs/cgroup{group}/init.scope/cgroup.procs"


def _env(uid: int) -> dict[str, str]:
    return {"XDG_RUNTIME_DIR": f"/run/user/{uid}", "HOME": "/"}


HOG = (
    "b = bytearray(256 * 2**20)\nfor i in range(0, len(b), 4096):\n    b[i] = 1\n"
    "print('survived')"
)

RUN = r"""
import json, subprocess, sys
hog = sys.argv[1]
r = subprocess.run([sys.executable, "-m", "cgroup2", "run", "--user", "--summary",
                    "--memory-max", "64M", "--memory-swap-max", "0", "--",
                    sys.executable, "-c", hog], capture_output=True, text=True, timeout=300)
print(json.dumps([r.returncode, r.stdout, r.stderr]))
"""


def test_run_user_is_oom_killed_in_a_scope_of_the_users_manager(
    manager: tuple[int, str],
) -> None:
    uid, group = manager
    out = run_as(uid, RUN, HOG, procs=_procs(group), env=_env(uid), timeout=400).json()
    assert isinstance(out, list)
    rc, so, err = out
    assert rc == 137, err  # SIGKILL: the kernel's OOM killer
    assert "survived" not in so
    assert f"{group}/app.slice/cgroup2-run-" in err and ".scope" in err, err
    oom = [line for line in err.splitlines() if line.startswith("OOM kills")]
    assert oom and int(oom[0].split()[-1]) >= 1, err
    assert "memory.max 64.0M" in err or "memory.max 64M" in err, err


OOM_GROUP = r"""
import json, os, subprocess, sys
from cgroup2 import Manager, Resources
from cgroup2.controllers.memory import Memory
hog = sys.argv[1]
sleeper = subprocess.Popen(["sleep", "300"])
res = Resources(memory=Memory(max=64 * 2**20, swap=0, oom_group=True))
m = Manager.create_systemd("", "cg2-oomgroup-%d.scope" % os.getpid(), sleeper.pid, res,
                           user=True)
out = {"path": m.path, "leaf_owner": os.stat(m.path + "/leaf").st_uid,
       "oom_group": open(m.path + "/leaf/memory.oom.group").read().strip(),
       "memory_max": open(m.path + "/memory.max").read().strip(),
       "sleeper_in_leaf": str(sleeper.pid) in open(m.path + "/leaf/cgroup.procs").read().split()}
out["loaded"] = Manager.load_systemd("", m.unit, user=True).path == m.path
r, w = os.pipe()
p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()\n" + hog], stdin=r)
os.close(r)
m.add_proc(p.pid)
os.close(w)
p.wait(120)
try:
    sleeper.wait(15)
except subprocess.TimeoutExpired:
    sleeper.kill()
    sleeper.wait()
    out["sleeper_survived"] = True
out["hog"] = p.returncode
out["sleeper"] = sleeper.returncode
# (the scope is gone now: systemd stops a scope once it is empty)
try:
    m.delete_systemd()
except Exception as e:
    out["delete"] = str(e)
print(json.dumps(out))
"""


def test_memory_oom_group_written_by_the_user_in_the_delegated_scope(
    manager: tuple[int, str],
) -> None:
    uid, group = manager
    out = run_as(uid, OOM_GROUP, HOG, procs=_procs(group), env=_env(uid), timeout=400).json()
    assert isinstance(out, dict)
    assert out["path"].startswith(f"/sys/fs/cgroup{group}/app.slice/cg2-oomgroup-"), out
    assert out["leaf_owner"] == uid  # the user's sub-group of the delegated scope
    assert out["oom_group"] == "1"
    assert out["memory_max"] == str(64 * 2**20)  # MemoryMax=, set by the user's manager
    assert out["sleeper_in_leaf"] is True
    assert out["loaded"] is True  # load_systemd(user=True) asks the user's manager
    assert out["hog"] == -9
    assert out["sleeper"] == -9 and "sleeper_survived" not in out, out  # the whole group
    assert "delete" not in out, out
    assert not os.path.exists(out["path"])


def test_manager_group_is_the_users(manager: tuple[int, str]) -> None:
    uid, group = manager
    st = os.stat(f"/sys/fs/cgroup{group}")
    assert st.st_uid == uid
    assert read(f"/sys/fs/cgroup{group}/cgroup.controllers")  # controllers delegated
    assert json.dumps(group)
