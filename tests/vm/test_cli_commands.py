"""vm tier: issue 15's commands with every controller: cpu, memory, io and pids limits
given through the flags and through ``-p FILE=VALUE`` (create, set, run), what the kernel
then does with them, ``status`` of a group under load, and the side-by-side check with
libcgroup's tools on a mount that is cgroup2 only.

Each test runs the command as a subprocess and reads the kernel's files itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import Manager

CLI = [sys.executable, "-m", "cgroup2"]
MiB = 1 << 20


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def one_error(p: subprocess.CompletedProcess[str], status: int, *parts: str) -> None:
    assert p.returncode == status, (p.returncode, p.stderr)
    assert p.stderr.startswith("cgroup2: error: ") and p.stderr.count("\n") == 1, p.stderr
    for part in parts:
        assert part in p.stderr, (part, p.stderr)


def summary_value(stderr: str, key: str) -> str:
    m = re.search(rf"^{re.escape(key)}\s+(.*?)\s*$", stderr, re.M)
    assert m is not None, f"no {key!r} in the summary:\n{stderr}"
    return m.group(1)


@pytest.fixture(autouse=True)
def needs_controllers(cg_parent: Parent) -> None:
    have = read(os.path.join(cg_parent.mountpoint, "cgroup.controllers")).split()
    missing = {"cpu", "cpuset", "memory", "pids", "io"} - set(have)
    if missing:
        pytest.skip(f"needs the {', '.join(sorted(missing))} controllers (vm tier)")


@pytest.fixture
def made(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """``cg_path`` for a test that makes it through the command; removed after."""
    try:
        yield cg_path
    finally:
        fs = cg_parent.mountpoint + cg_path
        if os.path.isdir(fs):
            Manager.load(cg_path, mountpoint=cg_parent.mountpoint).delete(kill=True)


# --- create, set, get: the flags and -p --------------------------------------------------


def test_create_and_set_through_flags_and_properties(cg_parent: Parent, made: str) -> None:
    fs = cg_parent.mountpoint + made
    p = cli("create", made, "--memory-max", "64M", "--memory-high", "48M",
            "--memory-swap-max", "0", "--cpu-max", "50%", "--cpu-weight", "50",
            "--pids-max", "20", "--cpus", "0",
            "-p", "memory.low=8M", "-p", "memory.min=4194304", "-p", "pids.max=30",
            "-p", "cpu.max.burst=1000")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    files = {
        "memory.max": str(64 * MiB),
        "memory.high": str(48 * MiB),
        "memory.swap.max": "0",
        "memory.low": str(8 * MiB),  # the kernel reads 8M itself
        "memory.min": str(4 * MiB),
        "cpu.max": "50000 100000",
        "cpu.max.burst": "1000",
        "cpu.weight": "50",
        "pids.max": "30",  # -p is written after the flags: it wins
        "cpuset.cpus": "0",
    }
    for name, value in files.items():
        assert read(f"{fs}/{name}") == value, name
    got = json.loads(cli("get", "--json", made, *files).stdout)
    assert got == files
    # every limit file that was set shows in get, with the kernel's text
    listed = dict(ln.split(": ", 1) for ln in cli("get", made).stdout.splitlines()
                  if ": " in ln)
    assert all(listed[k] == v for k, v in files.items()), listed

    p = cli("set", made, "-p", "memory.max=128M", "--pids-max", "50",
            "-p", "cpu.max=20000 50000", "--cpu-weight", "200")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    assert read(f"{fs}/memory.max") == str(128 * MiB)
    assert read(f"{fs}/pids.max") == "50"
    assert read(f"{fs}/cpu.max") == "20000 50000"
    assert read(f"{fs}/cpu.weight") == "200"


def test_set_refused_value_puts_back_what_was_written(cg_parent: Parent, made: str) -> None:
    fs = cg_parent.mountpoint + made
    p = cli("create", made, "--memory-max", "64M", "--pids-max", "20", "--cpu-weight", "100")
    assert p.returncode == 0, p.stderr
    # memory.max and pids.max are written, then the kernel refuses cpu.weight 0
    p = cli("set", made, "--memory-max", "96M", "--pids-max", "25", "-p", "cpu.weight=0")
    one_error(p, 1, "cpu.weight")
    assert read(f"{fs}/memory.max") == str(64 * MiB)
    assert read(f"{fs}/pids.max") == "20"
    one_error(cli("set", made, "-p", "memory.current=0"), 1, "read-only")
    one_error(cli("set", made, "--cpu-weight", "0"), 2, "cpu")  # refused before any write


def test_set_names_a_controller_not_enabled(cg_parent: Parent, made: str) -> None:
    """A group whose parent does not enable memory has no memory.max: set says how to
    get it (the writes to the subtree_control files, from the top down), and following
    it works."""
    parent = made
    child = made + "/c"
    assert cli("create", parent).returncode == 0
    Manager.create(child, mountpoint=cg_parent.mountpoint)
    with open(cg_parent.mountpoint + parent + "/cgroup.subtree_control") as f:
        if "memory" in f.read().split():
            pytest.skip("memory is enabled for the children already")
    p = cli("set", child, "--memory-max", "64M")
    one_error(p, 1, "memory controller is not enabled",
              f"echo +memory > {cg_parent.mountpoint}{parent}/cgroup.subtree_control")
    fix = p.stderr.split("groups: ", 1)[1].strip()
    for step in fix.split(" && "):  # as the user would run them
        _, _, target = step.partition(" > ")
        with open(target, "w") as f:
            f.write("+memory")
    assert cli("set", child, "--memory-max", "64M").returncode == 0
    assert read(cg_parent.mountpoint + child + "/memory.max") == str(64 * MiB)


# --- run: what the kernel does with -p ---------------------------------------------------

FORKER = r"""
import os, sys, time
kids = []
try:
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
except BlockingIOError:
    print("fork failed after", len(kids))
    code = 3
else:
    code = 0
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
sys.exit(code)
"""

HOG = "hog = [b'x' * (1 << 20) for _ in range(512)]"  # touches 512 MiB
SPIN = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < {}: pass"


def test_run_pids_max_through_p(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "-p", "pids.max=4",
            "--summary", "--", sys.executable, "-c", FORKER)
    assert p.stdout == "fork failed after 3\n", p.stderr
    assert p.returncode == 3
    assert summary_value(p.stderr, "pids.max hits") == "1 (fork failures, pids.max 4)"


def test_run_memory_max_through_p(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "-p", "memory.max=32M",
            "-p", "memory.swap.max=0", "--summary", "--", sys.executable, "-c", HOG)
    assert p.returncode == 137, p.stderr  # the OOM killer's SIGKILL
    assert summary_value(p.stderr, "OOM kills") == "1"
    assert summary_value(p.stderr, "peak memory").endswith("(memory.max 32.0M)")


def test_run_cpu_max_through_p(cg_parent: Parent, cg_path: str) -> None:
    name = os.path.basename(cg_path)
    p = cli("run", "--parent", cg_parent.group, "--name", name, "-p", "cpu.max=20000 100000",
            "--summary", "--", sys.executable, "-c", SPIN.format(1.5))
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"(\d+) of (\d+) periods, (.*)", summary_value(p.stderr, "CPU throttled"))
    assert m is not None and int(m.group(1)) >= 5, p.stderr


def _block_device() -> Iterator[str]:
    """A disk attached to the VM, else a null_blk device (loaded here, removed after)."""
    disks = sorted(d for d in os.listdir("/sys/block") if d.startswith(("sd", "vd")))
    if disks:
        yield disks[0]
        return
    loaded = False
    if not os.path.exists("/sys/block/nullb0"):
        r = subprocess.run(["modprobe", "null_blk"], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists("/sys/block/nullb0"):
            pytest.skip(f"no disk attached and no null_blk device: {r.stderr.strip()}")
        loaded = True
    try:
        yield "nullb0"
    finally:
        if loaded:
            subprocess.run(["modprobe", "-r", "null_blk"], capture_output=True)


@pytest.fixture
def block_device() -> Iterator[str]:
    yield from _block_device()


def test_io_max_through_flag_and_p(cg_parent: Parent, made: str, block_device: str) -> None:
    dev = read(f"/sys/block/{block_device}/dev")
    fs = cg_parent.mountpoint + made
    assert cli("create", made, "--io-max", f"{dev}:rbps=1M").returncode == 0
    assert read(f"{fs}/io.max") == f"{dev} rbps={MiB} wbps=max riops=max wiops=max"
    p = cli("set", made, "-p", f"io.max={dev} wiops=100")
    assert p.returncode == 0, p.stderr
    assert read(f"{fs}/io.max") == f"{dev} rbps={MiB} wbps=max riops=max wiops=100"
    p = cli("get", made, "io.max")
    assert p.stdout == f"io.max: {dev} rbps={MiB} wbps=max riops=max wiops=100\n"
    assert cli("set", made, "--io-max", f"{dev}:rbps=max,wiops=max").returncode == 0
    assert read(f"{fs}/io.max") == ""


def test_run_io_max_slows_direct_reads(cg_parent: Parent, cg_path: str,
                                      block_device: str) -> None:
    """3 MiB of direct reads at rbps=1M take more than a second (the kernel lets the
    first slice through at once); unlimited they take a fraction of it."""
    name = os.path.basename(cg_path)
    dd = ["dd", f"if=/dev/{block_device}", "of=/dev/null", "bs=64k", "count=48",
          "iflag=direct"]
    t0 = time.monotonic()
    p = cli("run", "--parent", cg_parent.group, "--name", name,
            "-p", f"io.max={read(f'/sys/block/{block_device}/dev')} rbps=1048576", "--", *dd)
    limited = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert limited >= 1.0, f"3 MiB at 1 MiB/s took {limited:.2f} s"


# --- status under load, stat's human view ------------------------------------------------

LOAD = r"""
import os, sys, threading, time
block = b"x" * (48 << 20)
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
with open("/proc/self/exe", "rb") as f:  # some reads for io.stat
    f.read()
print("ready", flush=True)
sys.stdin.read()
"""


def test_status_of_a_group_under_load(cg_parent: Parent, made: str) -> None:
    fs = cg_parent.mountpoint + made
    p = cli("create", made, "--cpu-max", "50%", "--memory-max", "256M", "--pids-max", "20",
            "-p", "memory.high=200M")
    assert p.returncode == 0, p.stderr
    load = subprocess.Popen([*CLI, "exec", made, "--", sys.executable, "-c", LOAD],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert load.stdout is not None and load.stdout.readline() == "ready\n"
        time.sleep(1.5)  # some throttled periods
        p = cli("status", made)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        rows: dict[str, str] = {}
        for ln in out.splitlines()[1:]:
            k, sep, v = ln.partition(": ")
            if sep and k.strip() and " " not in k.strip():
                rows[k.strip()] = v
        assert out.splitlines()[0] == f"● {made}"
        assert rows["Path"] == fs
        assert rows["State"] == "populated, not frozen (type domain)"
        tasks = re.fullmatch(r"1 process, (\d+) threads; pids.current (\d+), pids.max 20",
                             rows["Tasks"])
        assert tasks is not None and int(tasks.group(1)) >= 2, rows["Tasks"]
        cpu = re.match(r"(\S+) \(user \S+, system \S+\); throttled (\d+) of (\d+) periods",
                       rows["CPU"])
        assert cpu is not None and int(cpu.group(2)) >= 3, rows["CPU"]
        mem = re.match(r"([\d.]+)M \((peak [\d.]+[MG], )?max 256\.0M\)", rows["Memory"])
        assert mem is not None and float(mem.group(1)) >= 40, rows["Memory"]
        if "IO" in rows:  # io.stat has a line once the group did IO on a device
            assert re.match(r"read \S+, write \S+ \(\d+ ops\)", rows["IO"]), rows["IO"]
        assert "cpu some avg10" in rows["Pressure"]
        assert "memory some avg10" in out and "io some avg10" in out
        limits = out.split("Limits:")[1].split("Devices:")[0]
        for line in ("cpu.max 50000 100000", "memory.max 256.0M",  # sizes as stat shows
                     "memory.high 200.0M", "pids.max 20"):
            assert line in limits, (line, limits)
        assert "cpu.weight" not in limits  # the default is not listed
        assert rows["Devices"].startswith("not controlled")
        procs = out.split("Processes:\n")[1]
        assert f"{load.pid} {sys.executable} -c" in procs
        # stat: units, the state, and max instead of U64_MAX
        p = cli("stat", made)
        assert p.returncode == 0, p.stderr
        assert "state populated, not frozen" in p.stdout
        assert re.search(r"usage_limit 256\.0M", p.stdout), p.stdout
        assert re.search(r"swap_limit max", p.stdout), p.stdout
        assert not re.search(r"\d{12,}", p.stdout), p.stdout
        # top -b: the memory column of the loaded group
        p = cli("top", "-b", "-n", "2", "--interval", "0.3", made)
        frames = p.stdout.split("\n\n")
        assert len(frames) == 2, p.stdout
        row = next(ln.split() for ln in frames[1].splitlines() if ln.startswith(made))
        assert row[3].endswith("M") and float(row[3][:-1]) >= 40, frames[1]
        assert float(row[2]) <= 75, frames[1]  # cpu.max 50%
    finally:
        assert load.stdin is not None
        load.stdin.close()
        load.wait(timeout=30)


# --- side by side with libcgroup on a cgroup2-only mount ---------------------------------


def test_side_by_side_with_libcgroup(cg_parent: Parent, cg_path: str) -> None:
    from host.test_cli_commands import side_by_side

    side_by_side(cg_parent, cg_path)
