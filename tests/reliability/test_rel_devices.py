"""Device filters under concurrency, on this machine's cgroup2 mount (eBPF device programs
attach to groups of the host mount and are enforced there).

Two processes set the device filter of one group at once. The interleaving that stacks
two programs is forced: each process, after it has listed the programs attached to the
group and before it attaches its own, waits (up to a bound) until the other process has
listed them too. Without a lock both see the same list and both attach; with the lock the
second process cannot list before the first has attached, its wait runs out, and it then
finds and replaces the first one's program.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Parent
from reltools import attached_device_programs, no_leaks  # noqa: F401

from cgroup2 import DeviceRule
from cgroup2.devices import (
    PROG_NAME,
    AttachedFilter,
    attached_programs,
    detach_device_filters,
    device_filter,
    load_attach_device_filter,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")

# argv: group path, this process's name, the other's name, a directory for the meeting
# files, the seconds to wait for the other. Prints what this process saw.
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[6])
from cgroup2 import DeviceRule, device_filter
from cgroup2.devices import bpf

path, me, other, meet, wait = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
real_ours = bpf._ours
seen = {}

def ours_then_meet(dir_fd, name):
    fds = real_ours(dir_fd, name)
    if "listed" not in seen:
        seen["listed"] = len(fds)
        open(os.path.join(meet, me), "w").close()
        deadline = time.monotonic() + wait
        while not os.path.exists(os.path.join(meet, other)):
            if time.monotonic() > deadline:
                seen["waited_out"] = True
                break
            time.sleep(0.005)
        else:
            seen["waited_out"] = False
    return fds

bpf._ours = ours_then_meet
fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
program, license = device_filter([DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")])
bpf.load_attach_device_filter(program, license, fd).close()  # stays attached
os.close(fd)
print(json.dumps(seen))
"""

WAIT = 1.5  # how long a process waits for the other at the meeting point, in seconds


def _race(fs_path: str, meet: Path) -> list[dict[str, object]]:
    """Run the two processes; return what each saw (in the order they were started)."""
    meet.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, fs_path, me, other, str(meet), str(WAIT), SRC],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    results = []
    try:
        for c in children:
            results.append(c.communicate(timeout=60))
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
            c.communicate()
    out = []
    for c, (stdout, stderr) in zip(children, results, strict=True):
        assert c.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


@contextmanager
def _group(fs_path: str) -> Iterator[int]:
    """Make the group; yield its directory fd; detach our programs and remove it."""
    os.mkdir(fs_path)
    try:
        fd = os.open(fs_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            try:
                detach_device_filters(fd)
            finally:
                os.close(fd)
    finally:
        os.rmdir(fs_path)


def _attach(fd: int, rules: list[DeviceRule]) -> None:
    program, license = device_filter(rules)
    attached = load_attach_device_filter(program, license, fd)
    assert isinstance(attached, AttachedFilter)
    attached.close()  # the program stays attached


@pytest.mark.parametrize("before", [0, 1], ids=["none-attached", "one-attached"])
def test_concurrent_filter_updates_leave_one_program(
    cg_parent: Parent, cg_path: str, tmp_path: Path, before: int
) -> None:
    """issue 13 item 9: both interleavings, "none attached yet -> both attach" and "both
    replace the same program -> the second gets ENOENT -> attaches", end with exactly one
    program of this library on the group."""
    fs_path = cg_parent.mountpoint + cg_path
    with _group(fs_path) as fd:
        if before:
            _attach(fd, [DeviceRule(False)])
        assert attached_device_programs(fs_path) == before
        seen = _race(fs_path, tmp_path / "meet")
        assert attached_device_programs(fs_path) == 1, seen
        assert len([p for p in attached_programs(fd) if p.name == PROG_NAME]) == 1
        # serialised: one process listed, could not be met, attached; the other listed
        # only after that, and saw exactly one program (which it replaced)
        assert sorted(bool(s["waited_out"]) for s in seen) == [False, True], seen
        first = next(s for s in seen if s["waited_out"])
        second = next(s for s in seen if not s["waited_out"])
        assert first["listed"] == before and second["listed"] == 1, seen


OPENS = r"""
import json, os
out = []
for flags in (os.O_RDWR, os.O_RDONLY, os.O_WRONLY):
    try:
        os.close(os.open("/dev/null", flags))
        out.append(0)
    except OSError as e:
        out.append(e.errno)
print(json.dumps(out))
"""


def test_access_bits_do_not_add_up_across_rules(cg_parent: Parent, cg_path: str) -> None:
    """issue 13 item 10, on the kernel: ``deny a``, ``allow c 1:* r``, ``allow c 1:3 w``
    refuse open("/dev/null", O_RDWR) (no one rule grants both bits) and allow O_RDONLY
    and O_WRONLY."""
    fs_path = cg_parent.mountpoint + cg_path
    with _group(fs_path) as fd:
        _attach(
            fd,
            [
                DeviceRule(False),
                DeviceRule(True, "c", 1, None, "r"),
                DeviceRule(True, "c", 1, 3, "w"),
            ],
        )
        procs = os.path.join(fs_path, "cgroup.procs")

        def join() -> None:
            with open(procs, "w") as f:
                f.write("0")

        out = subprocess.run(
            [sys.executable, "-c", OPENS],
            preexec_fn=join,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert json.loads(out) == [errno.EPERM, 0, 0]
