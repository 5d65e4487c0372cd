"""host: the commands of issue 15 on this machine's cgroup2 mount, as a subprocess.

create, set, get, attach, exec, ls, status; run's -p/--hugetlb/--group; top -b/--json;
tree --json and its cut command lines; the human stat view; events --cgroup; kill
--signal; the error messages that were fixed. The limits use what every mount has (the
core files: cgroup.max.depth, cgroup.max.descendants) and the hugetlb controller where
the mount offers it; cpu, memory, io and pids limits are in tests/vm/test_cli_commands.py.
Every group is made below the run's parent; processes are started here and stopped by pid.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import Parent

from cgroup2 import Manager

CLI = [sys.executable, "-m", "cgroup2"]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def one_error(p: subprocess.CompletedProcess[str], status: int, *parts: str) -> None:
    """Exit ``status``, nothing on stdout, one ``cgroup2: error:`` line holding ``parts``."""
    assert p.returncode == status, (p.returncode, p.stderr)
    assert p.stderr.startswith("cgroup2: error: ") and p.stderr.count("\n") == 1, p.stderr
    assert "Traceback" not in p.stderr
    for part in parts:
        assert part in p.stderr, (part, p.stderr)


def controllers(mnt: str) -> list[str]:
    with open(os.path.join(mnt, "cgroup.controllers")) as f:
        return f.read().split()


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def hugetlb(cg_parent: Parent) -> str:
    """The smallest huge page size the kernel names (``2MB``); skips without the
    hugetlb controller on this mount."""
    if "hugetlb" not in controllers(cg_parent.mountpoint):
        pytest.skip("the cgroup2 mount has no hugetlb controller")
    sizes = sorted(
        int(n[len("hugepages-"):-2]) for n in os.listdir("/sys/kernel/mm/hugepages")
    )
    kb = sizes[0]
    return f"{kb >> 10}MB" if kb < 1 << 20 else f"{kb >> 20}GB"


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[Manager]:
    """The group ``cg_path``, made by the library; removed (killing what is in it) after."""
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        yield m
    finally:
        m.delete(kill=True)


@pytest.fixture
def sleepers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes (stopped by pid at the end)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(list(argv or ("sleep", "300")), stdin=subprocess.DEVNULL)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


# --- create ------------------------------------------------------------------------------


def test_create_makes_a_group_with_limits_and_prints_nothing(
    cg_parent: Parent, cg_path: str, hugetlb: str
) -> None:
    fs = cg_parent.mountpoint + cg_path
    try:
        p = cli("create", cg_path, "--hugetlb", f"{hugetlb}=8M",
                "-p", "cgroup.max.descendants=5", "-p", "cgroup.max.depth=2")
        assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
        assert read(f"{fs}/hugetlb.{hugetlb}.max") == str(8 << 20)
        assert read(f"{fs}/cgroup.max.descendants") == "5"
        assert read(f"{fs}/cgroup.max.depth") == "2"
        # the parent enables hugetlb for it
        assert "hugetlb" in read(cg_parent.fs_path + "/cgroup.subtree_control").split()
    finally:
        cli("rm", cg_path)


def test_create_is_like_mkdir_and_parents_like_mkdir_p(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    try:
        one_error(cli("create", cg_path + "/a/b"), 1, "does not exist", "--parents")
        assert not os.path.exists(fs)
        assert cli("create", cg_path).returncode == 0
        one_error(cli("create", cg_path), 1, "exists already")
        p = cli("create", "--parents", cg_path + "/a/b", "-p", "cgroup.max.depth=3")
        assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
        assert read(f"{fs}/a/b/cgroup.max.depth") == "3"
        # --parents on an existing group applies the limits, as mkdir -p accepts it
        assert cli("create", "--parents", cg_path, "-p", "cgroup.max.depth=4").returncode == 0
        assert read(f"{fs}/cgroup.max.depth") == "4"
    finally:
        cli("rm", cg_path)
    one_error(cli("create", "/"), 2, "root group")


def test_create_refusals_leave_nothing(cg_parent: Parent, cg_path: str, hugetlb: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    # a refused value: the group that was made is removed again
    one_error(cli("create", cg_path, "-p", "cgroup.max.depth=lots"), 1, "cgroup.max.depth")
    one_error(cli("create", cg_path, "-p", f"hugetlb.{hugetlb}.current=1"), 1, "read-only")
    one_error(cli("create", cg_path, "-p", "cgroup.procs=1"), 2, "not a limit")
    one_error(cli("create", cg_path, "-p", "no-equals-sign"), 2, "FILE=VALUE")
    one_error(cli("create", cg_path, "-p", "../x=1"), 2, "property")
    one_error(cli("create", cg_path, "--hugetlb", "3MB=1M"), 1, "3MB", "offers")
    one_error(cli("create", cg_path, "--hugetlb", "2MB"), 2, "PAGESIZE=LIMIT")
    one_error(cli("create", cg_path, "-p", "nosuchfile.max=1"), 1, "nosuchfile.max")
    assert not os.path.exists(fs)


# --- set, get ----------------------------------------------------------------------------


def test_set_writes_and_get_reads_back(group: Manager, hugetlb: str) -> None:
    g = group.group
    p = cli("set", g, "--hugetlb", f"{hugetlb}=4M", "-p", "cgroup.max.descendants=7")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    p = cli("get", g, f"hugetlb.{hugetlb}.max", "cgroup.max.descendants")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"hugetlb.{hugetlb}.max: {4 << 20}\ncgroup.max.descendants: 7\n"
    p = cli("get", "-v", g, "cgroup.max.descendants")
    assert p.stdout == "7\n"
    p = cli("get", "--json", g, f"hugetlb.{hugetlb}.max", "cgroup.events")
    assert json.loads(p.stdout) == {
        f"hugetlb.{hugetlb}.max": str(4 << 20),
        "cgroup.events": "populated 0\nfrozen 0",
    }
    # a value of several lines continues after a tab, as cgget prints it
    p = cli("get", g, "cgroup.events")
    assert p.stdout == "cgroup.events: populated 0\n\tfrozen 0\n"


def test_set_refused_value_changes_nothing(group: Manager, hugetlb: str) -> None:
    g, fs = group.group, group.path
    def limit() -> str:  # no limit reads 'max' or, for some page sizes, 2**63 - 4096
        text = read(f"{fs}/hugetlb.{hugetlb}.max")
        return "max" if text == "max" or int(text) >= 2**62 else text

    before = limit()
    p = cli("set", g, "--hugetlb", f"{hugetlb}=4M", "-p", "cgroup.max.depth=bogus")
    one_error(p, 1, "cgroup.max.depth", "bogus")
    assert limit() == before  # written first, then put back
    one_error(cli("set", g, "-p", f"hugetlb.{hugetlb}.current=0"), 1, "read-only")
    one_error(cli("set", g), 2, "no limit given")
    one_error(cli("set", g + "/missing", "-p", "cgroup.max.depth=1"), 1, "does not exist")


def test_get_without_files_lists_every_limit_file(group: Manager) -> None:
    p = cli("get", group.group)
    assert p.returncode == 0, p.stderr
    shown = [ln.split(":")[0] for ln in p.stdout.splitlines() if not ln.startswith("\t")]
    assert shown == sorted(shown)
    want = []
    for name in os.listdir(group.path):
        mode = os.stat(os.path.join(group.path, name)).st_mode
        if mode & 0o600 != 0o600 or name in (
            "cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.freeze",
            "cgroup.type", "cgroup.kill",
        ) or (name.endswith(".pressure") and name != "cgroup.pressure") or (
            name.endswith(".peak")
        ):
            continue
        want.append(name)
    assert shown == sorted(want)
    assert "cgroup.max.depth" in shown and "cgroup.procs" not in shown
    values = dict(ln.split(": ", 1) for ln in p.stdout.splitlines() if ": " in ln)
    assert values["cgroup.max.depth"] == "max"


def test_get_errors(group: Manager) -> None:
    g = group.group
    one_error(cli("get", g, "no.such.file"), 1, "has no file no.such.file")
    one_error(cli("get", g, "cgroup.kill"), 1, "cannot be read")
    one_error(cli("get", g, "../cgroup.procs"), 2, "invalid file name")
    one_error(cli("get", g + "/missing"), 1, "does not exist")


# --- attach, exec ------------------------------------------------------------------------


def _cgroup_of(pid: int, tid: int | None = None) -> str:
    where = f"/proc/{pid}/task/{tid}/cgroup" if tid else f"/proc/{pid}/cgroup"
    with open(where) as f:
        return next(ln for ln in f.read().splitlines() if ln.startswith("0::"))[3:]


def test_attach_moves_processes_in_order(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    a, b = sleepers(), sleepers()
    p = cli("attach", group.group, str(a.pid), str(b.pid))
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert _cgroup_of(a.pid) == _cgroup_of(b.pid) == group.group
    c = sleepers()
    gone = subprocess.Popen(["true"])
    gone.wait()
    p = cli("attach", group.group, str(c.pid), str(gone.pid))
    one_error(p, 1, f"cannot move process {gone.pid}", "no such process",
              f"moved before it: {c.pid}")
    assert _cgroup_of(c.pid) == group.group
    one_error(cli("attach", group.group, "abc"), 2, "invalid PID")
    one_error(cli("attach", group.group, "0"), 2, "invalid PID")


def test_attach_busy_parent_says_why(
    group: Manager, hugetlb: str, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """A group that enables a controller for its children holds no processes."""
    child = Manager.create(group.group + "/c", mountpoint=group.mountpoint)
    with open(group.path + "/cgroup.subtree_control", "w") as f:
        f.write("+hugetlb")
    s = sleepers()
    one_error(cli("attach", group.group, str(s.pid)), 1, "no-internal-processes")
    assert cli("attach", child.group, str(s.pid)).returncode == 0


THREADS = r"""
import threading, time, sys
ev = threading.Event()
t = threading.Thread(target=ev.wait, daemon=True)
t.start()
print(t.native_id, flush=True)
sys.stdin.read()
"""


def test_attach_threads_into_a_threaded_group(group: Manager) -> None:
    t = Manager.create(group.group + "/t", mountpoint=group.mountpoint)
    t.set_cgroup_type("threaded")
    proc = subprocess.Popen([sys.executable, "-c", THREADS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        group.add_proc(proc.pid)
        assert proc.stdout is not None
        tid = int(proc.stdout.readline())
        p = cli("attach", "--threads", t.group, str(tid))
        assert p.returncode == 0, p.stderr
        assert _cgroup_of(proc.pid, tid) == t.group
        assert _cgroup_of(proc.pid) == group.group  # the other threads stay
    finally:
        proc.kill()
        proc.wait()
    # a thread of a process outside the group's threaded subtree cannot go there
    other = subprocess.Popen([sys.executable, "-c", THREADS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        tid = int(other.stdout.readline())
        p = cli("attach", "--threads", t.group, str(tid))
        one_error(p, 1, f"cannot move thread {tid}", "threaded subtree")
    finally:
        other.kill()
        other.wait()


def test_exec_runs_in_the_group_and_passes_the_status(group: Manager) -> None:
    p = cli("exec", group.group, "--", "sh", "-c", "cat /proc/self/cgroup; exit 5")
    assert p.returncode == 5, p.stderr
    assert f"0::{group.group}\n" in p.stdout
    # SIGPIPE is the default again in CMD (Python ignores it): yes ends quietly
    p = subprocess.run(f"{' '.join(CLI)} exec {group.group} -- yes | head -1", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert (p.stdout, p.stderr) == ("y\n", "")
    one_error(cli("exec", group.group, "--", "/nonexistent/cmd"), 127, "cannot run")
    one_error(cli("exec", group.group, "--", "no-such-command-here"), 127, "not found")
    one_error(cli("exec", group.group, "--", "/etc/hostname"), 126, "cannot run")
    one_error(cli("exec", group.group), 2, "no command")
    one_error(cli("exec", group.group + "/missing", "--", "true"), 1, "does not exist")


# --- ls ----------------------------------------------------------------------------------


def test_ls_lists_children_recursively_and_as_json(group: Manager, hugetlb: str) -> None:
    g = group.group
    for sub in ("b", "a", "a/x", "a/x/y"):
        Manager.create(f"{g}/{sub}", mountpoint=group.mountpoint)
    p = cli("ls", g)
    assert p.stdout == f"{g}/a\n{g}/b\n", p.stderr
    p = cli("ls", "-r", g)
    assert p.stdout.splitlines() == [f"{g}/a", f"{g}/a/x", f"{g}/a/x/y", f"{g}/b"]
    items = json.loads(cli("ls", "--json", "-r", g).stdout)
    assert [i["group"] for i in items] == [f"{g}/a", f"{g}/a/x", f"{g}/a/x/y", f"{g}/b"]
    assert all(i["populated"] is False and i["frozen"] is False for i in items)
    assert all(isinstance(i["controllers"], list) for i in items)
    one_error(cli("ls", g + "/missing"), 1, "does not exist")


# --- run -p, --hugetlb, --group ----------------------------------------------------------


def test_run_takes_properties_and_hugetlb(cg_parent: Parent, cg_path: str, hugetlb: str) -> None:
    name = os.path.basename(cg_path)
    fs = cg_parent.mountpoint + cg_path
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--hugetlb", f"{hugetlb}=2M",
            "-p", "cgroup.max.descendants=3", "--", "sh", "-c",
            f"cat {fs}/hugetlb.{hugetlb}.max {fs}/cgroup.max.descendants")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(2 << 20), "3"]
    assert not os.path.exists(fs)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "-p", "cgroup.max.depth=x",
            "--", "true")
    one_error(p, 1, "cgroup.max.depth")
    assert not os.path.exists(fs)


def test_run_in_an_existing_group(group: Manager) -> None:
    p = cli("run", "--group", group.group, "--summary", "--", "sh", "-c",
            "cat /proc/self/cgroup; sleep 300 >/dev/null 2>&1 & exit 4")
    assert p.returncode == 4, p.stderr
    assert f"0::{group.group}\n" in p.stdout
    assert f"cgroup2 run: group {group.group}" in p.stderr
    assert os.path.isdir(group.path)  # not removed,
    assert len(group.procs()) == 1  # and what CMD left there stays
    one_error(cli("run", "--group", group.group, "-p", "cgroup.max.depth=1", "--", "true"),
              2, "cgroup2 set")
    one_error(cli("run", "--group", group.group, "--keep", "--", "true"), 2, "--keep")
    one_error(cli("run", "--group", group.group + "/no", "--", "true"), 1, "does not exist")


# --- the error messages of issue 15 ------------------------------------------------------


def test_fixed_error_messages(cg_parent: Parent, cg_path: str) -> None:
    run = ["run", "--parent", cg_parent.group]
    one_error(cli(*run, "--cpu-weight", "abc", "--", "true"), 2, "--cpu-weight 'abc'")
    one_error(cli(*run, "--cpu-max", "50", "--", "true"), 2, "'50%'")
    p = cli(*run, "--device", "allow c 1:99999999999", "--", "true")
    one_error(p, 2, "99999999999", "4294967295")
    assert "None" not in p.stderr
    p = cli(*run, "--name", "cgroup.procs", "--", "true")
    one_error(p, 2, "cgroup.procs")
    assert "exists already" not in p.stderr
    one_error(cli(*run, "--name", "a\nb", "--", "true"), 2, "a\\nb")
    one_error(cli(*run, "--live", "1e-300", "--", "true"), 2, "0.05")
    one_error(cli("top", "--interval", "1e-9", cg_parent.group), 2, "0.05")
    assert os.listdir(cg_parent.fs_path) == os.listdir(cg_parent.fs_path)  # (nothing made)
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_thaw_under_a_frozen_parent_says_so_at_once(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    child = Manager.create(group.group + "/c", mountpoint=group.mountpoint)
    child.add_proc(sleepers().pid)
    assert cli("freeze", child.group).returncode == 0
    assert cli("freeze", group.group).returncode == 0
    t0 = time.monotonic()
    p = cli("thaw", "--timeout", "20", child.group)
    assert time.monotonic() - t0 < 10  # not the 20 s timeout
    one_error(p, 1, f"parent group {group.group} is frozen", f"cgroup2 thaw {group.group}")
    assert read(child.path + "/cgroup.freeze") == "0"  # its own freeze was cleared
    assert cli("thaw", group.group).returncode == 0
    wait_for(lambda: "frozen 0" in read(child.path + "/cgroup.events"), what="thawed")


# --- kill --signal, events --cgroup ------------------------------------------------------


def test_kill_signal_reaches_every_process_below(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    sub = Manager.create(group.group + "/sub", mountpoint=group.mountpoint)
    a, b = sleepers(), sleepers()
    group.add_proc(a.pid)
    sub.add_proc(b.pid)
    p = cli("kill", "--signal", "TERM", group.group)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert a.wait(timeout=10) == -signal.SIGTERM
    assert b.wait(timeout=10) == -signal.SIGTERM
    c = sleepers()
    group.add_proc(c.pid)
    assert cli("kill", "-s", "sigusr1", group.group).returncode == 0
    assert c.wait(timeout=10) == -signal.SIGUSR1
    d = sleepers()
    group.add_proc(d.pid)
    assert cli("kill", "-s", "9", group.group).returncode == 0  # cgroup.kill, waits
    assert d.wait(timeout=10) == -signal.SIGKILL
    one_error(cli("kill", "--signal", "NOPE", group.group), 2, "invalid signal")


def test_events_cgroup_streams_populated_and_frozen(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ev = subprocess.Popen([*CLI, "events", "--cgroup", "--json", "--initial", group.group],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert ev.stdout is not None
        first = json.loads(ev.stdout.readline())
        assert (first["populated"], first["frozen"]) == (False, False)
        s = sleepers()
        group.add_proc(s.pid)
        assert json.loads(ev.stdout.readline())["populated"] is True
        group.freeze()
        assert json.loads(ev.stdout.readline())["frozen"] is True
        group.thaw()
        assert json.loads(ev.stdout.readline())["frozen"] is False
        s.kill()
        s.wait()
        out, err = ev.communicate(timeout=30)  # ends when the group is empty again
        assert ev.returncode == 0, err
        last = json.loads(out.splitlines()[-1])
        assert last["populated"] is False and set(last) == {"time", "group", "populated",
                                                             "frozen"}
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.communicate()
    p = cli("events", "--cgroup", "--initial", "--count", "1", group.group)
    assert re.fullmatch(rf"\S+ {re.escape(group.group)} populated=0 frozen=0\n", p.stdout)


# --- top, tree, stat, status -------------------------------------------------------------


def test_top_batch_prints_every_frame_in_a_pipe(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    sub = Manager.create(group.group + "/sub", mountpoint=group.mountpoint)
    sub.add_proc(sleepers().pid)
    for argv in (["-b", "-n", "3"], ["-n", "3"]):  # a pipe is batch mode without -b
        p = cli("top", *argv, "--interval", "0.1", "--sort", "name", group.group)
        assert p.returncode == 0, p.stderr
        assert p.stdout.endswith("\n") and not p.stdout.endswith("\n\n")
        frames = p.stdout.split("\n\n")
        assert len(frames) == 3, p.stdout
        for i, frame in enumerate(frames, 1):
            lines = frame.splitlines()
            assert lines[0].startswith("cgroup2 top:") and f"frame {i} " in lines[0]
            assert lines[1].split() == ["Group", "Tasks", "%CPU", "Memory", "Read/s", "Write/s"]
            rows = {ln.split()[0]: ln.split()[1] for ln in lines[2:]}
            assert rows == {group.group: "1", sub.group: "1"}


def test_top_json_one_object_a_frame(group: Manager) -> None:
    p = cli("top", "--json", "-n", "2", "--interval", "0.1", group.group)
    assert p.returncode == 0, p.stderr
    frames = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [f["frame"] for f in frames] == [1, 2]
    g = frames[1]["groups"][0]
    assert g["group"] == group.group and g["tasks"] == 0
    assert set(g) == {"group", "tasks", "cpu_percent", "memory", "read_bytes_per_sec",
                      "write_bytes_per_sec"}
    one_error(cli("top", "--json", "-b", group.group), 2, "not allowed")


def test_tree_json(group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]) -> None:
    sub = Manager.create(group.group + "/sub", mountpoint=group.mountpoint)
    deeper = Manager.create(group.group + "/sub/deeper", mountpoint=group.mountpoint)
    Manager.create(group.group + "/z", mountpoint=group.mountpoint)
    s = sleepers("sleep", "301")
    deeper.add_proc(s.pid)
    p = cli("tree", "--json", group.group)
    assert p.returncode == 0, p.stderr
    t = json.loads(p.stdout)
    assert t["group"] == group.group and t["processes"] == []
    assert [c["group"] for c in t["children"]] == [sub.group, group.group + "/z"]
    d = t["children"][0]["children"][0]
    assert d == {"group": deeper.group, "processes": [{"pid": s.pid, "cmdline": "sleep 301"}],
                 "children": []}
    t = json.loads(cli("tree", "--json", "--no-procs", group.group).stdout)
    assert "processes" not in t


LONG = "x" * 300


def test_tree_cuts_command_lines_to_the_terminal(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]], tmp_path: pathlib.Path
) -> None:
    """Like systemd-cgls: a command line ends with an ellipsis at the terminal's edge;
    -l shows it whole; a pipe is never cut."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    s = sleepers("sh", "-c", f"sleep 300; : {LONG}")
    group.add_proc(s.pid)
    assert LONG in cli("tree", group.group).stdout  # a pipe: whole
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    screens = {}
    for flag in ("", "-l"):
        session = f"cgroup2-tree-{os.getpid()}{flag}"
        done = tmp_path / f"done{flag}"
        cmd = (f"{' '.join(CLI)} tree {flag} {group.group}; touch {done}; sleep 60")
        subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "40",
                        cmd], check=True, timeout=20, env=env)
        try:
            wait_for(done.exists, 30, "the tree in tmux")
            screens[flag] = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-t", session],
                capture_output=True, text=True, timeout=10).stdout
        finally:
            subprocess.run([*tmux, "kill-session", "-t", session], timeout=10)
    cut = next(ln for ln in screens[""].splitlines() if str(s.pid) in ln)
    assert cut.rstrip().endswith("…") and len(cut.rstrip()) <= 80, screens[""]
    assert LONG not in screens[""]
    assert LONG in "".join(screens["-l"].split()), screens["-l"]  # folded over lines


def test_a_limit_is_shown_one_way(group: Manager, hugetlb: str) -> None:
    """A huge page limit that is not set is ``max`` in get, stat and status (the file
    holds the largest multiple of the page size below 2**63); a set one is the file's
    bytes in get and the same size with its unit in stat and status."""
    from cgroup2 import ControllerToggle

    group.toggle_controllers(["hugetlb"], ControllerToggle.ENABLE)  # the group's own files
    name = f"hugetlb.{hugetlb}.max"
    assert int(read(f"{group.path}/{name}")) > 2**62  # the kernel's "no limit" here
    p = cli("get", group.group, name)
    assert p.returncode == 0 and p.stdout == f"{name}: max\n", p
    assert cli("get", "--json", group.group, name).stdout == json.dumps({name: "max"}) + "\n"
    assert "none set" in cli("status", group.group).stdout
    assert cli("set", "-p", f"{name}=33554432", group.group).returncode == 0
    assert cli("get", group.group, name).stdout == f"{name}: 33554432\n"
    assert re.search(rf"^\s*Limits: {re.escape(name)} 32\.0M$", cli("status", group.group).stdout,
                     re.M)
    assert re.search(rf"{hugetlb}\n.*max 32\.0M", cli("stat", group.group).stdout, re.S)
    assert cli("set", "-p", f"{name}=max", group.group).returncode == 0
    assert cli("get", group.group, name).stdout == f"{name}: max\n"


def test_export_banner_counts_in_the_singular(group: Manager) -> None:
    p = subprocess.Popen([*CLI, "export", "--listen", "127.0.0.1:0", "--root", group.group],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        line = p.stderr.readline()
    finally:
        p.terminate()
        p.wait(timeout=60)
    assert line.endswith(f"(1 group under {group.group})\n"), line


def test_stat_human_view(group: Manager, hugetlb: str,
                         sleepers: Callable[..., subprocess.Popen[bytes]]) -> None:
    # the group's own hugetlb files: the controller enabled in its ancestors (not left to
    # an earlier test of the file having done it)
    from cgroup2 import ControllerToggle

    group.toggle_controllers(["hugetlb"], ControllerToggle.ENABLE)
    group.add_proc(sleepers().pid)
    p = cli("stat", group.group)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == group.group
    assert "state populated, not frozen" in lines[1]
    assert re.search(r"usage (\d+(\.\d+)?(s|ms|us)|0)$", p.stdout, re.M), p.stdout
    assert re.search(r"some avg10 \d+\.\d\d%  avg60", p.stdout), p.stdout
    assert re.search(rf"{hugetlb}\n.*max max", p.stdout, re.S), p.stdout  # no limit: max
    assert not re.search(r"\d{12,}", p.stdout), p.stdout  # no raw U64_MAX or 2**63-4096
    # the machine-readable forms are unchanged
    assert json.loads(cli("stat", "--json", group.group).stdout)["pids"]["current"] >= 0 \
        if "pids" in controllers(group.mountpoint) else True
    assert "cgroup_cpu_usage_seconds_total" in cli("stat", "--prometheus", group.group).stdout


def test_status_at_a_glance(cg_parent: Parent, cg_path: str, hugetlb: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--keep",
            "--hugetlb", f"{hugetlb}=4M", "-p", "cgroup.max.depth=3",
            "--device", "deny a", "--device", "allow c 1:3 rw", "--device", "allow c 1:5 r",
            "--device", "allow c 1:5 w",
            "--", "sh", "-c", "sleep 300 >/dev/null 2>&1 & exit 0")
    devices = p.returncode == 0
    if not devices:  # no device programs here: the rest without them
        assert "device" in p.stderr, p.stderr
        p = cli("run", "--parent", cg_parent.group, "--name", name, "--keep",
                "--hugetlb", f"{hugetlb}=4M", "-p", "cgroup.max.depth=3",
                "--", "sh", "-c", "sleep 300 >/dev/null 2>&1 & exit 0")
        assert p.returncode == 0, p.stderr
    try:
        m = Manager.load(cg_path, mountpoint=cg_parent.mountpoint)
        pid = m.procs()[0]
        p = cli("status", cg_path)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        rows = {}
        for ln in out.splitlines()[1:]:
            k, sep, v = ln.partition(": ")
            if sep and k.strip() and " " not in k.strip():
                rows[k.strip()] = v
        assert out.splitlines()[0] == f"● {cg_path}"
        assert rows["Path"] == m.path
        assert rows["State"] == "populated, not frozen (type domain)"
        assert rows["Tasks"].startswith("1 process, 1 thread")
        assert re.match(r"(\d+(\.\d+)?(s|ms|us)|0) \(user ", rows["CPU"]), rows["CPU"]
        assert "some avg10" in rows["Pressure"]
        limits = out.split("Limits:")[1].split("Devices:")[0]
        assert f"hugetlb.{hugetlb}.max 4.0M" in limits  # as stat shows it
        assert "cgroup.max.depth 3" in limits and "cgroup.pressure" not in limits
        if devices:
            assert rows["Devices"].startswith(
                "deny a *:* rwm; allow c 1:3 rw; allow c 1:5 rw  (eBPF program id ")
        else:
            assert rows["Devices"].startswith("not controlled")
        procs = out.split("Processes:\n")[1]
        assert f"{pid} sleep 300" in procs
        p = cli("status", "--no-procs", cg_path)
        assert "Processes" not in p.stdout and "sleep" not in p.stdout
    finally:
        cli("rm", "--kill", cg_path)


SRC = str(pathlib.Path(__file__).resolve().parents[2] / "src")


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """``cgroup2 ARGS`` as uid/gid 65534 without capabilities (setpriv)."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux; scripts/test-all installs it)"
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", "--", *CLI, *args],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": SRC},
    )


def test_rm_without_the_right_says_what_is_needed(group: Manager) -> None:
    p = as_nobody("rm", group.group)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    parent = os.path.dirname(group.path)
    assert p.stderr == (
        f"cgroup2: error: cannot remove {group.group}: permission denied. Removing a group "
        f"needs write access to the directory of the group above it ({parent}, owned by "
        f"uid 0): run as root, or as the owner of a group delegated to you\n"
    )
    assert os.path.isdir(group.path)


def test_set_of_a_controller_not_enabled_says_how_to_enable_it(
    group: Manager, hugetlb: str
) -> None:
    child = group.new_child("c")  # hugetlb not in the group's cgroup.subtree_control
    p = cli("set", "-p", f"hugetlb.{hugetlb}.max=4194304", child.group)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    fix = p.stderr.rstrip().split("as root or as the owner of those groups: ")[1]
    assert fix.endswith(f"echo +hugetlb > {group.path}/cgroup.subtree_control"), fix
    # from the top down, only groups of this run (the mount's root has it enabled here)
    mnt = group.path[: -len(group.group)]
    assert f"{mnt}/cgroup.subtree_control" not in fix and fix.count(mnt + "/") >= 1
    subprocess.run(["sh", "-c", fix], check=True)  # the hint works
    assert cli("set", "-p", f"hugetlb.{hugetlb}.max=4194304", child.group).returncode == 0
    child.delete()


#: Runs the command with ``rich`` and ``jeepney`` not importable, as from a source tree
#: whose dependencies were not installed.
NO_DEPS = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("rich", "jeepney"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from cgroup2.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("argv", [["status"], ["tree"], ["stat"], ["top", "--once"],
                                  ["run", "--summary", "--", "true"]])
def test_a_missing_dependency_is_one_line(group: Manager, argv: list[str]) -> None:
    where = ["--group", group.group] if argv[0] == "run" else [group.group]
    words = [argv[0], *where, *argv[1:]] if argv[0] != "run" else [*argv[:2], *where, *argv[2:]]
    p = subprocess.run([sys.executable, "-c", NO_DEPS, *words], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr == (
        "cgroup2: error: this command needs the Python package 'rich', which is not installed "
        "(pip install rich, or install cgroup2 with pip, which brings it)\n"
    )


@pytest.mark.parametrize("cmd", ["kill", "rm"])
def test_kill_and_rm_need_no_rich(group: Manager, cmd: str) -> None:
    # they print nothing through rich: its module is imported where a command draws
    p = subprocess.run([sys.executable, "-c", NO_DEPS, cmd, group.group], capture_output=True,
                       text=True, timeout=60)
    assert (p.returncode, p.stderr) == (0, "")
    assert os.path.isdir(group.path) == (cmd == "kill")


def test_status_caps_its_process_list(
    group: Manager, sleepers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """Like systemctl status: the first 20 processes and a line for the rest; -n N for N,
    --full for all."""
    for _ in range(22):
        group.add_proc(sleepers().pid)
    group.new_child("sub").add_proc(sleepers().pid)

    def listed(*opts: str) -> tuple[int, str]:
        p = cli("status", *opts, group.group)
        assert p.returncode == 0, p.stderr
        procs = p.stdout.split("Processes:\n")[1]
        return len(re.findall(r"\d+ sleep 300$", procs, re.M)), procs

    n, procs = listed()
    assert n == 20 and "\u2026 3 more processes in 1 more group (-n N" in procs, procs
    n, procs = listed("-n", "5")
    assert n == 5 and "18 more processes in 1 more group" in procs, procs
    n, procs = listed("--full")
    assert n == 23 and "more process" not in procs, procs
    n, procs = listed("-n", "23")
    assert n == 23 and "more process" not in procs, procs
    assert cli("status", "-n", "0", group.group).returncode == 2


def test_status_names_a_program_not_from_cgroup2(group: Manager) -> None:
    """A device program of another loader (bpftool, systemd...) is named, not read."""
    from cgroup2._fs import Dir
    from cgroup2.devices import DeviceRule, device_filter
    from cgroup2.devices.bpf import attach, detach, load_program

    prog, lic = device_filter([DeviceRule(True)])
    try:
        fd = load_program(prog, lic, name="other_loader")
    except Exception as e:
        pytest.skip(f"cannot load a device program here: {e}")
    try:
        with Dir.open(group.path) as d:
            attach(d.fd, fd)
            try:
                p = cli("status", "--no-procs", group.group)
            finally:
                detach(d.fd, fd)
    finally:
        os.close(fd)
    assert p.returncode == 0, p.stderr
    assert "Devices: a program not from cgroup2 is attached: other_loader (id " in p.stdout


# --- control characters ------------------------------------------------------------------

EVIL_NAME = "evil\x1b[2J\x1b]0;pwn\x07\u009b31m\u202etxt.exe"
EVIL_ARGV0 = "\x1b]0;pwn\x07\x1b[2Jsleep\u009b31m\u202e"
RAW = (b"\x1b", b"\x07", b"\x9b", "\u202e".encode())


def _cli_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_no_raw_control_character_in_any_output(group: Manager) -> None:
    evil = Manager.create(f"{group.group}/{EVIL_NAME}", mountpoint=group.mountpoint)
    sleep = shutil.which("sleep") or "/bin/sleep"

    def join() -> None:
        with open(os.path.join(evil.path, "cgroup.procs"), "w") as f:
            f.write("0")

    proc = subprocess.Popen([EVIL_ARGV0, "30"], executable=sleep, preexec_fn=join,
                            stdin=subprocess.DEVNULL)
    try:
        g, e = group.group, evil.group
        runs = {
            "ls": _cli_bytes("ls", "-r", g),
            "ls --json": _cli_bytes("ls", "--json", g),
            "get": _cli_bytes("get", e),
            "status": _cli_bytes("status", e),
            "status parent": _cli_bytes("status", g),
            "stat": _cli_bytes("stat", e),
            "tree --json": _cli_bytes("tree", "--json", g),
            "top -b": _cli_bytes("top", "-b", "-n", "2", "--interval", "0.1", g),
            "top --json": _cli_bytes("top", "--json", "-n", "1", "--interval", "0.1", g),
            "events --cgroup": _cli_bytes("events", "--cgroup", "--initial", "--count", "1", e),
            "set (error)": _cli_bytes("set", e, "-p", "cgroup.max.depth=\x1b[2J"),
        }
        for what, p in runs.items():
            assert p.returncode == (1 if "error" in what else 0), (what, p.stderr)
            out = p.stdout + p.stderr
            raw = [c for c in RAW if c in out]
            assert not raw, f"{what} printed {raw} raw: {out!r}"
        assert b"evil\\x1b[2J\\x1b]0;pwn\\x07\\u009b31m\\u202etxt.exe" in runs["ls"].stdout
        assert b"\\x1b]0;pwn\\x07\\x1b[2Jsleep\\u009b31m\\u202e 30" in runs["status parent"].stdout
        assert json.loads(runs["tree --json"].stdout)["children"][0]["group"] == e
    finally:
        proc.kill()
        proc.wait()


# --- side by side with libcgroup's tools (Debian's cgroup-tools) -------------------------

LIBCGROUP_TOOLS = ("cgcreate", "cgset", "cgget", "cgdelete", "lscgroup")


def _tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def cgget_values(text: str) -> dict[str, str]:
    """``cgget -n`` output (``name: value``, further lines after a tab) as a dict; the
    same form ``cgroup2 get`` prints."""
    out: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if line.startswith("\t") and last is not None:
            out[last] += "\n" + line[1:]
        elif ": " in line or line.endswith(":"):
            last, _, value = line.partition(":")
            out[last] = value.removeprefix(" ")
    return out


def libcgroup_or_skip(parent_group: str) -> None:
    """Skip, printing why, when libcgroup's tools are missing or cannot read this mount."""
    missing = [t for t in LIBCGROUP_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs libcgroup's tools {missing} (Debian package cgroup-tools)")
    p = _tool("cgget", "-n", "-v", "-r", "cgroup.max.depth", parent_group)
    if p.returncode != 0 or p.stdout.strip() != "max":
        why = (p.stderr or p.stdout).strip().replace("\n", " ")
        pytest.skip(f"libcgroup cannot use this cgroup2 mount (cgget of the run's parent: "
                    f"status {p.returncode}: {why})")


def limits_for(mnt: str) -> tuple[str, list[str], dict[str, str]]:
    """A controller of this mount that libcgroup and cgroup2 both set, the cgroup2 flags
    for a limit of it, and the files and values those flags write."""
    have = controllers(mnt)
    if "pids" in have:
        return "pids", ["--pids-max", "77"], {"pids.max": "77"}
    if "memory" in have:
        return "memory", ["--memory-max", "64M"], {"memory.max": str(64 << 20)}
    if "hugetlb" in have:
        kb = min(int(n[len("hugepages-"):-2]) for n in os.listdir("/sys/kernel/mm/hugepages"))
        size = f"{kb >> 10}MB" if kb < 1 << 20 else f"{kb >> 20}GB"
        return "hugetlb", ["--hugetlb", f"{size}=4M"], {f"hugetlb.{size}.max": str(4 << 20)}
    pytest.skip(f"no controller libcgroup could set on this mount (it offers: {have})")


def _as_max(values: dict[str, str]) -> dict[str, str]:
    """cgget's values as ``cgroup2 get`` shows them: the kernel's "no limit" that is a
    number (an unset huge page limit reads 2**63 rounded down to the page size) is ``max``,
    as the kernel writes it for every other limit."""
    return {k: "max" if v.isdigit() and int(v) >= 2**62 else v for k, v in values.items()}


def side_by_side(parent: Parent, cg_path: str) -> None:
    """A group made by ``cgcreate``/``cgset`` is read by ``cgroup2 get``; a group made by
    ``cgroup2 create`` is read by ``cgget``; ``lscgroup`` and ``cgroup2 ls -r`` list the
    same groups; every value agrees."""
    libcgroup_or_skip(parent.group)
    ctrl, flags, files = limits_for(parent.mountpoint)
    made_by_libcgroup, made_by_us = cg_path + "/by-libcgroup", cg_path + "/by-cgroup2"
    assert cli("create", cg_path).returncode == 0
    try:
        # libcgroup makes and sets; cgroup2 reads
        p = _tool("cgcreate", "-g", f"{ctrl}:{made_by_libcgroup}")
        assert p.returncode == 0, p.stderr
        sets = {**files, "cgroup.max.depth": "3"}
        p = _tool("cgset", *[a for k, v in sets.items() for a in ("-r", f"{k}={v}")],
                  made_by_libcgroup)
        assert p.returncode == 0, p.stderr
        got = json.loads(cli("get", "--json", made_by_libcgroup, *sets).stdout)
        assert got == sets
        # every file cgget shows for the controller, cgroup2 get shows alike
        theirs = cgget_values(_tool("cgget", "-n", "-g", f"{ctrl}:{made_by_libcgroup}").stdout)
        assert theirs, "cgget printed no file"
        p = cli("get", made_by_libcgroup, *theirs)
        assert p.returncode == 0, p.stderr
        assert cgget_values(p.stdout) == _as_max(theirs)
        # cgroup2 makes and sets; libcgroup reads
        p = cli("create", made_by_us, *flags, "-p", "cgroup.max.descendants=4")
        assert p.returncode == 0, p.stderr
        for name, value in {**files, "cgroup.max.descendants": "4"}.items():
            p = _tool("cgget", "-n", "-v", "-r", name, made_by_us)
            assert (p.returncode, p.stdout.strip()) == (0, value), (name, p.stderr)
        theirs = cgget_values(_tool("cgget", "-n", "-g", f"{ctrl}:{made_by_us}").stdout)
        assert cgget_values(cli("get", made_by_us, *theirs).stdout) == _as_max(theirs)
        # the lists agree
        listed = {ln.split(":", 1)[1].rstrip("/")
                  for ln in _tool("lscgroup", f"{ctrl}:{cg_path}").stdout.splitlines()}
        assert listed - {cg_path} == set(cli("ls", "-r", cg_path).stdout.split())
        # cgdelete removes what cgroup2 made; cgroup2 rm what libcgroup made
        assert _tool("cgdelete", "-g", f"{ctrl}:{made_by_us}").returncode == 0
        one_error(cli("get", made_by_us), 1, "does not exist")
        assert cli("rm", made_by_libcgroup).returncode == 0
        assert _tool("cgget", "-n", "-r", "cgroup.max.depth", made_by_libcgroup).returncode != 0
    finally:
        cli("rm", "--kill", cg_path)


def test_side_by_side_with_libcgroup(cg_parent: Parent, cg_path: str) -> None:
    side_by_side(cg_parent, cg_path)
