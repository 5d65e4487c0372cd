"""host: current(), limits() and `cgroup2 self` where the mount table is not the plain one,
and what a ``--mountpoint`` that is no cgroup2 mount is said to be.

- A second mount stacked on the cgroup2 mount point (a bind of a test group over it, in
  a private mount namespace of the child only): the visible mount is the one used.
- A cgroup namespace made without mounting cgroup2 again (``unshare --cgroup``): the
  mount's root reads ``/../..`` and ``/proc/self/cgroup`` is relative to the namespace;
  the group is found below the mount all the same, also when the process has moved out
  of the namespace's root since.
- ``--mountpoint`` given as a symbolic link, a directory the user may not open, a cgroup
  v1 mount: each named for what it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
from conftest import Parent
from delegation_tools import NOBODY, PY, run_as, why_not_usable

import cgroup2
from cgroup2._fs import _is_cgroup2_dev
from cgroup2.paths import default_mountpoint

CHILD = r"""
import json, subprocess, sys
sys.stdin.readline()  # placed in its group by now
import cgroup2
m = cgroup2.current()
lim = cgroup2.limits()
cli = subprocess.run([sys.executable, "-m", "cgroup2", "self", "--json"],
                     capture_output=True, text=True)
print(json.dumps({
    "group": m.group, "path": m.path, "top": lim.top, "hidden": lim.ancestors_hidden,
    "limits_group": lim.group, "cpu_count": cgroup2.cpu_count(),
    "proc": open("/proc/self/cgroup").read(),
    "cli_rc": cli.returncode, "cli_err": cli.stderr,
    "cli": json.loads(cli.stdout) if cli.returncode == 0 else None,
}))
"""

needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                   reason="needs root and unshare (util-linux)")


@pytest.fixture
def groups(cg_parent: Parent, cg_path: str) -> Iterator[tuple[str, str]]:
    """(the test's group, its fs path), with the children ``leaf`` and ``other``."""
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        os.mkdir(fs + "/leaf")
        os.mkdir(fs + "/other")
        yield cg_path, fs
    finally:
        for d in (fs + "/leaf", fs + "/other", fs):
            if os.path.isdir(d):
                os.rmdir(d)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


@needs_unshare
def test_stacked_mount_point_uses_the_visible_mount(
    cg_parent: Parent, groups: tuple[str, str]
) -> None:
    """A test group bind-mounted over the cgroup2 mount point (in the child's own mount
    namespace): the child in ``<group>/leaf`` is ``/leaf`` below the visible mount."""
    _, fs = groups
    mp = cg_parent.mountpoint
    script = 'mount --bind "$1" "$2" || exit 9; shift 2; exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", fs, mp,
            sys.executable, "-c", CHILD]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env())
    try:
        with open(fs + "/leaf/cgroup.procs", "w") as f:
            f.write(str(p.pid))
        out, err = p.communicate("go\n", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (out, err)
    got = json.loads(out)
    print(f"\nstacked: {got['group']} at {got['path']}, top {got['top']}")
    assert got["group"] == "/leaf" and got["path"] == mp + "/leaf"
    assert got["limits_group"] == "/leaf" and got["hidden"] is True  # the bind shows a sub-tree
    assert got["cli_rc"] == 0, got["cli_err"]
    cli = got["cli"]
    assert isinstance(cli, dict) and cli["group"] == "/leaf" and cli["path"] == mp + "/leaf"
    # the host's view is untouched: the bind lived in the child's namespace only
    assert not os.path.ismount(fs)


@needs_unshare
@pytest.mark.parametrize("moved", [False, True], ids=["in-root", "moved-out-of-root"])
def test_cgroup_namespace_without_a_remount(groups: tuple[str, str], moved: bool) -> None:
    """``unshare --cgroup`` in ``<group>/leaf``: /proc/self/cgroup says ``/`` (or
    ``/../other`` once moved to the sibling), the mount's root ``/../../..``; the library
    names the group by its path below the mount, and `cgroup2 self` works."""
    group, fs = groups
    target = "other" if moved else "leaf"
    # placed in leaf, it unshares, says so, and (moved) is moved to other before it runs
    script = ("read x; exec unshare --cgroup sh -c 'echo ready; read y; exec \"$@\"' "
              'sh "$@"')
    argv = ["sh", "-c", script, "sh", sys.executable, "-c", CHILD]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env())
    try:
        with open(fs + "/leaf/cgroup.procs", "w") as f:
            f.write(str(p.pid))
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline() == "ready\n"  # in its own cgroup namespace now
        if moved:
            with open(fs + "/other/cgroup.procs", "w") as f:
                f.write(str(p.pid))
        out, err = p.communicate("go\ngo\n", timeout=120)  # sh's read, then CHILD's
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (out, err)
    got = json.loads(out)
    line = next(x for x in str(got["proc"]).splitlines() if x.startswith("0::"))
    assert line == ("0::/../other" if moved else "0::/")
    print(f"\n{line}: {got['group']} at {got['path']}")
    assert got["group"] == f"{group}/{target}"
    assert got["limits_group"] == f"{group}/{target}" and got["top"] == "/"
    assert got["cli_rc"] == 0, got["cli_err"]
    cli = got["cli"]
    assert isinstance(cli, dict) and cli["group"] == f"{group}/{target}"
    assert cli["cpu_count"] == got["cpu_count"] >= 1


#: What current()'s manager may do: read. Everything else public on a Manager must be
#: refused (a method added to Manager later fails the test below until it is put here
#: or is refused).
READS = {
    "mountpoint", "group", "path", "unit", "systemd_user", "systemd_warnings",
    "cgroup_type", "controllers", "effective_limits", "events", "memory_event_fd",
    "pressure", "procs", "root_controllers", "stat", "state", "subtree_controllers",
    "threads",
}


def test_current_refuses_every_method_that_writes() -> None:
    """Every public attribute of a Manager not in READS is refused on current()'s."""
    m = cgroup2.current()
    plain = cgroup2.Manager(m.mountpoint, m.group)  # (its attributes too: group, path...)
    public = {n for n in dir(plain) if not n.startswith("_")}
    assert public >= READS, READS - public
    writes = sorted(public - READS)
    assert {"delegate", "update", "kill", "freeze", "delete", "add_proc"} <= set(writes)
    not_refused = []
    for name in writes:
        # one argument that no method accepts as valid: were one not refused, it would
        # stop at its own check, never at a change of this process's group
        try:
            getattr(m, name)(object())
        except cgroup2.CgroupError as e:
            if "read-only" not in str(e):
                not_refused.append(name)
        except Exception:  # its own argument check: not refused
            not_refused.append(name)
        else:
            not_refused.append(name)
    assert not_refused == [], "not refused on current()'s manager"
    for name in ("group", "path", "mountpoint"):
        assert getattr(m, name) == getattr(plain, name)
    assert os.getpid() in m.procs()
    assert m.effective_limits().group == m.group
    print(f"\nrefused on current(): {', '.join(writes)}")


def test_mountpoint_is_named_for_what_it_is() -> None:
    mp = default_mountpoint()
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "link")
        os.symlink(mp, link)
        for argv, want in (
            (["--mountpoint", link, "ls", "/"], f"a symbolic link (to {mp})"),
            (["--mountpoint", link, "self"], f"a symbolic link (to {mp})"),
            (["--mountpoint", os.path.join(tmp, "none"), "ls", "/"], "no such directory"),
            (["--mountpoint", tmp, "self"], "not on a cgroup2 file system"),
        ):
            r = subprocess.run([sys.executable, "-m", "cgroup2", *argv],
                               capture_output=True, text=True, timeout=60, env=_env())
            assert r.returncode != 0 and want in r.stderr, (argv, r.stderr)
            assert "Traceback" not in r.stderr
        for name in ("memory", "cpu"):
            v1 = f"/sys/fs/cgroup/{name}"
            if os.path.ismount(v1) and not _is_cgroup2_dev(os.stat(v1).st_dev):
                r = subprocess.run([sys.executable, "-m", "cgroup2", "--mountpoint", v1, "ls"],
                                   capture_output=True, text=True, timeout=60, env=_env())
                assert f"the cgroup v1 mount of {name}" in r.stderr, r.stderr


@pytest.mark.skipif(why_not_usable() is not None, reason=str(why_not_usable()))
def test_mountpoint_the_user_may_not_open_is_named_so() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        locked = os.path.join(tmp, "locked")
        os.mkdir(locked, 0o000)
        code = ("import sys; from cgroup2.cli import main; "
                "sys.exit(main(['--mountpoint', sys.argv[1], 'ls', '/']))")
        r = run_as(NOBODY, code, locked, procs=None)
        print(f"\n{PY} as {NOBODY}: {r.err.strip()}")
        assert r.rc == 1 and "may not open (Permission denied)" in r.err, r.err
        assert "no such directory" not in r.err


@needs_unshare
def test_a_group_the_visible_mount_does_not_show(
    cg_parent: Parent, groups: tuple[str, str]
) -> None:
    """The child in ``<group>/leaf`` with ``<group>/other`` bound over the mount point:
    its group is not visible. current() says so in one error; limits() and `cgroup2 self`
    read what they can (the v1 hierarchies of a hybrid host) and say what is not seen."""
    _, fs = groups
    code = r"""
import json, subprocess, sys
import cgroup2
try:
    cgroup2.current()
    err = None
except cgroup2.CgroupError as e:
    err = str(e)
lim = cgroup2.limits()
cli = subprocess.run([sys.executable, "-m", "cgroup2", "self"], capture_output=True, text=True)
print(json.dumps({"err": err, "group": lim.group, "unseen": dict(lim.unseen),
                  "hierarchies": {c: v for c, (v, _) in lim.hierarchies.items()},
                  "cli": [cli.returncode, cli.stdout, cli.stderr]}))
"""
    script = 'read x; mount --bind "$1" "$2" || exit 9; shift 2; exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            fs + "/other", cg_parent.mountpoint, sys.executable, "-c", code]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env())
    try:
        with open(fs + "/leaf/cgroup.procs", "w") as f:
            f.write(str(p.pid))
        out, err = p.communicate("go\n", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (out, err)
    got = json.loads(out)
    print("\n" + got["cli"][1])
    assert got["err"] is not None and "is not below the root" in got["err"]
    assert got["group"] == "" and got["unseen"]
    rc, text, cli_err = got["cli"]
    assert rc == 0 and "Traceback" not in cli_err
    assert text.startswith("group") and "none on cgroup2: " in text.splitlines()[0]
    for c, version in got["hierarchies"].items():  # what v1 gives is still read
        assert version == 1 and c not in got["unseen"]
