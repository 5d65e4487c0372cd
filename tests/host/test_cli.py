"""host: the ``cgroup2`` command run as a subprocess on this machine's cgroup2 mount.

Every group goes below the run's parent (``--parent``). Limits need controllers this host
may lack; those tests skip here and run in the vm tier (tests/vm/test_cli.py).
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
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Parent

from cgroup2 import Manager

CLI = [sys.executable, "-m", "cgroup2"]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def controllers(mnt: str) -> list[str]:
    with open(os.path.join(mnt, "cgroup.controllers")) as f:
        return f.read().split()


def wait_for(cond: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def sleeper(cg_parent: Parent, cg_path: str) -> Iterator[tuple[str, int]]:
    """The group ``cg_path`` with a child group ``sub``, a ``sleep`` in each; removed after."""
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    sub = m.new_child("sub")
    procs = [subprocess.Popen(["sleep", "300"]) for _ in range(2)]
    try:
        m.add_proc(procs[0].pid)
        sub.add_proc(procs[1].pid)
        yield cg_path, procs[1].pid
    finally:
        m.delete(kill=True)
        for p in procs:
            p.wait()


# --- run -------------------------------------------------------------------------------


def test_run_in_group_exit_status_and_removal(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--", "sh", "-c",
            "cat /proc/self/cgroup; exit 7")
    assert p.returncode == 7, p.stderr
    assert f"0::{cg_path}\n" in p.stdout  # the command ran inside the new group
    assert p.stderr == ""
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_run_summary_on_host(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--summary", "--",
            sys.executable, "-c", "sum(range(3_000_000))")
    assert p.returncode == 0, p.stderr
    assert f"cgroup2 run: group {cg_path}" in p.stderr
    assert "exit status    0" in p.stderr
    # cpu.stat is a core file: user time is there even without the cpu controller
    user = next(ln for ln in p.stderr.splitlines() if ln.startswith("CPU user"))
    assert user.split()[-1] not in ("-", "0"), p.stderr
    wall = next(ln for ln in p.stderr.splitlines() if ln.startswith("wall time"))
    assert float(wall.split()[-1].rstrip("s")) > 0
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


SPIN = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < {}: pass"


def test_run_live_prints_statistics_while_it_runs(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    # 1.5 s of CPU time (not of wall time): on a busy machine the run takes longer, the
    # CPU it used stays the same
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass"
    t0 = time.monotonic()
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--live", "0.25", "--",
            sys.executable, "-c", spin + "\nprint('spun')")
    wall = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert p.stdout == "spun\n"  # the lines go to stderr only
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("cgroup2 run: t=")]
    # 1.5 s of CPU take at least 1.5 s of wall time, six intervals: at least two lines
    # however busy the machine is (the first is on time: see the test below)
    assert len(lines) >= 2, p.stderr
    times = [float(re.search(r"t=\s*([\d.]+)s", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert times == sorted(times) and times[0] >= 0.2, lines
    shares = [float(re.search(r"cpu=\s*([\d.]+)%", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    # one thread spinning (the core file cpu.stat has usage_usec without the cpu
    # controller): never more than one CPU, and the busiest line at least 70 % of the
    # average over the whole run (1.5 s of CPU in the wall time the command took, start-up
    # included: about 100 % on an idle machine, less on a busy one, never 0)
    average = 100 * 1.5 / wall
    assert max(shares) <= 110, lines
    assert max(shares) >= 0.7 * average, (f"average {average:.0f}%", lines)
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_run_live_imports_what_it_needs_before_the_command_starts(
    cg_parent: Parent, cg_path: str
) -> None:
    # The order of events on one stream (the parent's -X importtime lines and the
    # command's marker both go to the same stderr pipe), not a time: nothing is imported
    # between the command's start and the first line (importing the sampler and rich at
    # the first tick once made it 3.5 s late on a busy machine).
    name = os.path.basename(cg_path)
    p = subprocess.run(
        [sys.executable, "-X", "importtime", *CLI[1:], "run", "--parent", cg_parent.group,
         "--name", name, "--live", "0.1", "--", "sh", "-c",
         "echo command-started >&2; sleep 1"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    err = p.stderr.splitlines()
    started = err.index("command-started")
    first = next(i for i, ln in enumerate(err) if ln.startswith("cgroup2 run: t="))
    assert started < first, err
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in err[:started]
                if ln.startswith("import time:")]
    assert {"cgroup2.sampler", "cgroup2.stats", "rich.console"} <= set(imported)
    late = [ln for ln in err[started:first] if ln.startswith("import time:")]
    assert late == [], late


@pytest.mark.parametrize("bad", ["0", "-1", "inf", "nan", "x"])
def test_run_live_refuses_a_bad_interval(bad: str) -> None:
    p = cli("run", "--live", bad, "--", "true")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "invalid interval" in p.stderr, p.stderr


def test_run_killed_by_signal_is_128_plus(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--summary", "--",
            "sh", "-c", "kill -KILL $$")
    assert p.returncode == 128 + signal.SIGKILL
    assert "137 (killed by SIGKILL)" in p.stderr


def test_run_forwards_sigterm_and_kills_leftovers(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    fs = cg_parent.mountpoint + cg_path
    # the shell leaves a background sleep behind: removing the group must kill it
    proc = subprocess.Popen(
        [*CLI, "run", "--parent", cg_parent.group, "--name", name, "--", "sh", "-c",
         "trap 'exit 9' TERM; sleep 300 & echo started; while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        with open(os.path.join(fs, "cgroup.procs")) as f:
            pids = [int(x) for x in f.read().split()]
        assert len(pids) >= 2
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 9  # the shell's trap ran: the signal reached it
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.exists(fs)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie_or_gone(pid)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_run_keep_then_rm(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    fs = cg_parent.mountpoint + cg_path
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--keep", "--", "sh", "-c",
            "sleep 300 >/dev/null 2>&1 &")
    assert p.returncode == 0, p.stderr
    assert f"kept group {cg_path}" in p.stderr
    assert os.path.isdir(fs)
    refused = cli("rm", cg_path)
    assert refused.returncode == 1 and "rm --kill" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert os.path.isdir(fs)
    p = cli("rm", "--kill", cg_path)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(fs)


def test_run_refuses_existing_group(cg_parent: Parent, cg_path: str) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        p = cli("run", "--parent", cg_parent.group, "--name", os.path.basename(cg_path),
                "--", "true")
        assert p.returncode == 1
        assert p.stderr == (
            f"cgroup2: error: group {cg_path} exists already; choose another --name\n"
        )
    finally:
        m.delete()


def test_run_command_not_found_is_127(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--", "/nonexistent/cmd")
    assert p.returncode == 127
    assert p.stderr == "cgroup2: error: cannot run '/nonexistent/cmd': No such file or directory\n"
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--", "/etc/hostname")
    assert p.returncode == 126
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


@pytest.mark.parametrize(
    ("option", "value", "controller"),
    [
        ("--memory-max", "64M", "memory"),
        ("--pids-max", "10", "pids"),
        ("--cpu-max", "50%", "cpu"),
        ("--cpus", "0", "cpuset"),
        ("--io-max", "8:0:rbps=1M", "io"),
    ],
)
def test_run_missing_controller_is_one_line(
    cg_parent: Parent, cg_path: str, option: str, value: str, controller: str
) -> None:
    if controller in controllers(cg_parent.mountpoint):
        pytest.skip(f"this mount has the {controller} controller (vm tier covers the limit)")
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, option, value, "--", "true")
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1
    assert p.stderr.startswith(f"cgroup2: error: {option} needs {controller}: {controller} ")
    # where it is instead: a cgroup v1 hierarchy (named, with how to move it), or nowhere
    assert ("is bound to the cgroup v1 hierarchy at" in p.stderr
            and "systemd.unified_cgroup_hierarchy=1" in p.stderr) or (
        "not offered by the cgroup2 mount" in p.stderr)
    assert "Traceback" not in p.stderr
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_run_device_rules_enforced(cg_parent: Parent, cg_path: str) -> None:
    """The eBPF device program is attached to the group before the command starts."""
    name = os.path.basename(cg_path)
    script = (
        "head -c1 /dev/null && echo null-ok; "
        "head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied"
    )
    p = cli("run", "--parent", cg_parent.group, "--name", name,
            "--device", "deny a", "--device", "allow c 1:3 rwm", "--", "sh", "-c", script)
    # no skip: the host and vm tiers can load and attach device programs (root with
    # CAP_BPF/CAP_SYS_ADMIN); a failure to do so is the failure this test is for
    assert p.returncode == 0, p.stderr
    assert p.stdout == "null-ok\nzero-denied\n", p.stderr
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


# an O_RDWR open of /dev/null (c 1:3) and an O_RDONLY one, from the shell
_RW_R = (
    "if true 3<>/dev/null; then echo rw-ok; else echo rw-denied; fi; "
    "if true 3</dev/null; then echo r-ok; else echo r-denied; fi"
)


@pytest.mark.parametrize(
    ("rules", "want"),
    [
        # one exception must grant every bit: r from c 1:*, w from c 1:3 do not add up
        (["deny a", "allow c 1:* r", "allow c 1:3 w"], "rw-denied\nr-ok\n"),
        # rules for one device merge (cgroup v1): c 1:3 r + c 1:3 w = c 1:3 rw
        (["deny a", "allow c 1:3 r", "allow c 1:3 w"], "rw-ok\nr-ok\n"),
    ],
)
def test_run_device_rules_merge_per_device(
    cg_parent: Parent, cg_path: str, rules: list[str], want: str
) -> None:
    name = os.path.basename(cg_path)
    opts = [x for r in rules for x in ("--device", r)]
    p = cli("run", "--parent", cg_parent.group, "--name", name, *opts, "--", "sh", "-c", _RW_R)
    assert p.returncode == 0, p.stderr
    assert p.stdout == want, p.stderr
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_run_refuses_a_hole_in_a_wildcard_exception(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "--device", "deny a",
            "--device", "allow c 1:* rw", "--device", "deny c 1:3 w", "--", "true")
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "punch a hole in the wildcard exception allow c 1:* rw" in p.stderr, p.stderr
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


# --- stat ------------------------------------------------------------------------------


def _shape(v: Any) -> Any:
    """The keys of a JSON value, recursively (values are left out)."""
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(x) for x in v]
    return type(v).__name__ if not isinstance(v, (int, float)) else "number"


def test_stat_json_matches_metrics(cg_parent: Parent, sleeper: tuple[str, int]) -> None:
    group, _ = sleeper
    p = cli("stat", "--json", group)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    want = Manager.load(group, mountpoint=cg_parent.mountpoint).stat().to_dict()
    assert _shape(got) == _shape(want)
    assert set(got) == set(want) and "cpu" in got
    assert got["cpu"]["usage_usec"] <= want["cpu"]["usage_usec"]


def test_stat_prometheus_and_text(cg_parent: Parent, sleeper: tuple[str, int]) -> None:
    group, _ = sleeper
    p = cli("stat", "--prometheus", group)
    assert p.returncode == 0, p.stderr
    assert f'cgroup_cpu_usage_seconds_total{{group="{group}"}}' in p.stdout
    assert "# TYPE cgroup_cpu_usage_seconds_total counter" in p.stdout
    p = cli("stat", group)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == group
    # a time is shown with its unit, under a label without the file's "_usec"
    assert re.search(r"usage (\d+(\.\d+)?(s|ms|us)|0)$", p.stdout, re.M), p.stdout
    assert "usage_usec" not in p.stdout


def test_stat_missing_group_is_one_line(cg_parent: Parent, cg_path: str) -> None:
    p = cli("stat", cg_path)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "does not exist" in p.stderr


# --- tree, top -------------------------------------------------------------------------


def test_tree_shows_groups_and_processes(cg_parent: Parent, sleeper: tuple[str, int]) -> None:
    group, sub_pid = sleeper
    p = cli("tree", group)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == group
    assert any(ln.endswith(" sleep 300") for ln in lines)
    i = next(i for i, ln in enumerate(lines) if ln.rstrip().endswith("sub"))
    assert f"{sub_pid} sleep 300" in lines[i + 1]  # the sub-group's process, indented below it
    p = cli("tree", "--no-procs", cg_parent.group)
    assert p.returncode == 0
    assert "sleep" not in p.stdout and os.path.basename(group) in p.stdout


def test_top_once_lists_the_groups(cg_parent: Parent, sleeper: tuple[str, int]) -> None:
    group, _ = sleeper
    p = cli("top", "--once", "--interval", "0.2", "--sort", "name", group)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("cgroup2 top:")
    assert lines[1].split() == ["Group", "Tasks", "%CPU", "Memory", "Read/s", "Write/s"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[2:]}
    assert set(rows) == {group, group + "/sub"}
    assert rows[group][0] == "2"  # tasks count the sub-group's process too
    assert rows[group + "/sub"][0] == "1"


def test_top_sorts_by_cpu(cg_parent: Parent, cg_path: str) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    busy, idle = m.new_child("busy"), m.new_child("idle")
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    nap = subprocess.Popen(["sleep", "300"])
    try:
        busy.add_proc(spin.pid)
        idle.add_proc(nap.pid)
        p = cli("top", "--once", "--interval", "0.5", "--sort", "cpu", cg_path)
        assert p.returncode == 0, p.stderr
        names = [ln.split()[0] for ln in p.stdout.splitlines()[2:]]
        assert names.index(cg_path + "/busy") < names.index(cg_path + "/idle")
        cpu = {ln.split()[0]: ln.split()[2] for ln in p.stdout.splitlines()[2:]}
        assert float(cpu[cg_path + "/busy"]) > 10.0  # a spinning process (on a busy machine)
    finally:
        m.delete(kill=True)
        spin.wait()
        nap.wait()


def test_top_live_in_tmux(
    cg_parent: Parent, sleeper: tuple[str, int], tmp_path: pathlib.Path
) -> None:
    """Drive the live view in a real terminal for three refreshes; read the screen."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    group, _ = sleeper
    session = f"cgroup2-top-{os.getpid()}"
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]  # a server of our own
    cmd = " ".join([*CLI, "top", "--interval", "0.3", group])
    # pytest exports COLUMNS/LINES (80x24), which rich would prefer to the terminal's size
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd],
                   check=True, timeout=20, env=env)
    try:
        screen = ""

        def third_frame() -> bool:
            nonlocal screen
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True, timeout=10).stdout
            return "frame 3" in screen

        wait_for(third_frame, 20, "frame 3 on the tmux screen")
        rows = [ln.split() for ln in screen.splitlines()]
        assert any(r[:1] == [group] for r in rows), screen
        assert any(r[:1] == [group + "/sub"] for r in rows), screen
        assert any(r[:2] == ["Group", "Tasks"] for r in rows), screen
    finally:
        subprocess.run([*tmux, "kill-session", "-t", session], timeout=10)


def test_top_live_quits_on_q(
    cg_parent: Parent, sleeper: tuple[str, int], tmp_path: pathlib.Path
) -> None:
    """In a real terminal the header says how to quit, and q does."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    group, _ = sleeper
    session = f"cgroup2-topq-{os.getpid()}"
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    done = tmp_path / "status"
    cmd = " ".join([*CLI, "top", "--interval", "0.3", group, f"; echo $? > {done}"])
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd],
                   check=True, timeout=20, env=env)
    try:
        screen = ""

        def second_frame() -> bool:
            nonlocal screen
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True, timeout=10).stdout
            return "frame 2" in screen

        wait_for(second_frame, 30, "frame 2 on the tmux screen")
        assert "(q quits)" in screen, screen
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True, timeout=10)
        wait_for(done.exists, 30, "top to exit after q")
        wait_for(lambda: done.read_text().strip() != "", 10, "its status")
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-session", "-t", session], timeout=10, capture_output=True)


def test_top_sort_by_a_missing_controller_is_an_error(cg_parent: Parent) -> None:
    missing = [c for c in ("memory", "io") if c not in controllers(cg_parent.mountpoint)]
    if not missing:
        pytest.skip("this mount has the memory and io controllers (vm tier covers the sort)")
    p = cli("top", "--once", "--sort", missing[0], cg_parent.group)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1
    assert f"--sort {missing[0]}: this cgroup2 mount has no {missing[0]} controller" in p.stderr


def test_top_batch_folds_a_long_group_name(cg_parent: Parent, cg_path: str) -> None:
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        long = m.new_child("n" * 250)
        p = cli("top", "-b", "--once", "--interval", "0.1", cg_path)
        assert p.returncode == 0, p.stderr
        widths = [len(ln) for ln in p.stdout.splitlines()[1:]]
        assert max(widths) <= 120 + 60, p.stdout  # the Group column and the five numbers
        assert "".join(ln.split()[0] for ln in p.stdout.splitlines()[2:] if ln.strip()
                       ).count("n" * 250) == 1  # the name is all there, folded
        long.delete()
    finally:
        m.delete(kill=True)


# --- freeze, thaw, kill, events ---------------------------------------------------------


def test_freeze_thaw_kill(cg_parent: Parent, sleeper: tuple[str, int]) -> None:
    group, _ = sleeper
    events = cg_parent.mountpoint + group + "/cgroup.events"
    assert cli("freeze", group).returncode == 0
    with open(events) as f:
        assert "frozen 1" in f.read()
    assert cli("thaw", group).returncode == 0
    with open(events) as f:
        assert "frozen 0" in f.read()
    assert cli("kill", group).returncode == 0
    with open(events) as f:
        assert "populated 0" in f.read()


def test_events_without_memory_controller(cg_parent: Parent, cg_path: str) -> None:
    if "memory" in controllers(cg_parent.mountpoint):
        pytest.skip("this mount has the memory controller (vm tier covers events)")
    m = Manager.create(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        p = cli("events", cg_path)
        assert p.returncode == 1
        assert p.stderr.count("\n") == 1 and "memory" in p.stderr
    finally:
        m.delete()


# --- signals: forwarded once, from kill(2) and from the terminal ------------------------

COUNTER = r"""
import os, signal, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
signal.signal(signal.SIGINT, lambda sig, frame: None)
signal.set_wakeup_fd(w)  # the C-level handler writes one byte for each delivery
print("ready", flush=True)
os.read(r, 1)
time.sleep(0.5)
os.set_blocking(r, False)
n = 1
try:
    n += len(os.read(r, 100))
except BlockingIOError:
    pass
sys.exit(10 + n)  # 11: the command got SIGINT exactly once
"""


def test_run_forwards_sigint_once(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    proc = subprocess.Popen(
        [*CLI, "run", "--parent", cg_parent.group, "--name", name, "--",
         sys.executable, "-c", COUNTER],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)  # to the cgroup2 process only: it passes it on
        assert proc.wait(timeout=20) == 11
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


# Like a shell with job control: the command runs as the terminal's foreground process
# group (so ^C reaches it and its child, not this wrapper), and its status goes to a file.
JOB = r"""
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:], process_group=0)
os.tcsetpgrp(0, p.pid)
rc = p.wait()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(rc))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"""


def test_run_ctrl_c_in_a_terminal_is_not_doubled(
    cg_parent: Parent, cg_path: str, tmp_path: pathlib.Path
) -> None:
    """^C reaches the whole foreground process group: the command gets it from the
    terminal, and cgroup2 must not send it a second one."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    name = os.path.basename(cg_path)
    session = f"cgroup2-ctrlc-{os.getpid()}"
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    status = tmp_path / "status"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    argv = [sys.executable, "-c", JOB, str(status), *CLI, "run", "--parent", cg_parent.group,
            "--name", name, "--", sys.executable, "-c", COUNTER]
    # several arguments: tmux runs the command itself, no shell in between
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "20", *argv],
                   check=True, timeout=20, env=env)
    try:
        def ready() -> bool:
            out = subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                 capture_output=True, text=True, timeout=10).stdout
            return "ready" in out

        wait_for(ready, 20, "the command to start in tmux")
        subprocess.run([*tmux, "send-keys", "-t", session, "C-c"], check=True, timeout=10)
        wait_for(status.exists, 20, "the command's exit status")
        assert status.read_text() == "11"
    finally:
        subprocess.run([*tmux, "kill-session", "-t", session], capture_output=True, timeout=10)
    assert not os.path.exists(cg_parent.mountpoint + cg_path)
