"""vm tier: memory events from a real OOM kill (the VM has the memory controller).

A child process moves itself into a group whose ``memory.max`` is 16 MiB and then
allocates (and touches) memory until the kernel's OOM killer kills it. It is the group's
only process, so its death also empties the group: the OOM kill of the last process
(containerd/cgroups#374) must be reported before the stream ends.
"""

from __future__ import annotations

import asyncio
import os
import select
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
from conftest import Parent

from cgroup2 import Event, EventStream, EventWatcher
from cgroup2._fs import Dir
from cgroup2.events import CgroupEvents, NoticeKind, memory_event_fd

LIMIT = 16 << 20
# The child joins the group itself (raw write of "0" to cgroup.procs), then touches
# memory until it is killed.
CHILD = r"""
import os, sys
fd = os.open(sys.argv[1] + "/cgroup.procs", os.O_WRONLY)
os.write(fd, b"0")
os.close(fd)
hog = []
for _ in range(1024):
    hog.append(b"x" * (1 << 20))
sys.exit(3)  # not killed: the limit did not work
"""


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """A group with memory.max = 16 MiB and no swap; removed at the end."""
    from cgtest import remove_tree

    with Dir.open(cg_parent.mountpoint) as root:
        if b"memory" not in root.read("cgroup.controllers").split():
            pytest.skip("the mount has no memory controller")
        root.write("cgroup.subtree_control", "+memory")
    fs = cg_parent.mountpoint + cg_path
    with Dir.open(cg_parent.fs_path) as parent:
        parent.write("cgroup.subtree_control", "+memory")
        parent.mkdir(os.path.basename(cg_path))
    try:
        with Dir.open(fs) as d:
            d.write("memory.max", str(LIMIT))
            if d.exists("memory.swap.max"):
                d.write("memory.swap.max", "0")
        yield fs
    finally:
        remove_tree(fs)


def _hog(group: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-S", "-c", CHILD, group])


def _oom_checks(events: list[Event], child: subprocess.Popen[bytes]) -> None:
    assert child.wait(30) == -9, "the child was not killed by the OOM killer"
    assert events, "no memory event was reported"
    last = events[-1]
    assert last.oom_kill == 1 and last.oom >= 1 and last.max >= 1, events
    # counts only grow; after the kill the victim may still hit memory.max while it exits
    assert all(a.max <= b.max and a.oom_kill <= b.oom_kill for a, b in pairwise(events))


def _until_end(s: EventStream, timeout: float = 60) -> list[Event]:
    """Every event of ``s`` until it ends (the group empties); fails after ``timeout`` s."""
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while not s.ended:
        assert time.monotonic() < deadline, f"stream did not end; got {got}"
        e = s.get(timeout=deadline - time.monotonic())
        if e is not None:
            got.append(e)
    return got


def test_oom_kill_is_reported_then_stream_ends(group: str) -> None:
    with EventStream(group) as s:
        child = _hog(group)
        got = _until_end(s)
        _oom_checks(got, child)
        assert s.cgroup == CgroupEvents(False)


class KernelLog:
    """``/dev/kmsg`` from now on, with its clock mapped to ``CLOCK_MONOTONIC``.

    A marker line is written at a known monotonic time and read back with the kernel's
    own time stamp: their difference maps the time stamp of any later record. Writes to
    /dev/kmsg are rate limited (10 per 5 s, and the VM's init writes some at boot), so
    the marker is tried again for a while; ``offset_ns`` stays ``None`` if it never shows.
    """

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.offset_ns: int | None = None
        for attempt in range(8):
            marker = f"cgroup2-test-clock-{os.getpid()}-{attempt}"
            t0 = time.monotonic_ns()
            os.write(self.fd, f"<6>{marker}\n".encode())
            t1 = time.monotonic_ns()
            found = [t for t, msg in self.records() if msg == marker]
            if found:
                self.offset_ns = (t0 + t1) // 2 - found[0]
                return
            time.sleep(1)

    def records(self) -> list[tuple[int, str]]:
        """(monotonic ns by the kernel's clock, message) of the records not read yet."""
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return out
            except BrokenPipeError:  # records were overwritten: go on with the rest
                continue
            head, _, msg = rec.partition(";")
            out.append((int(head.split(",")[2]) * 1000, msg.strip()))

    def killed_at(self, pid: int) -> int | None:
        """CLOCK_MONOTONIC ns of the OOM killer's 'Killed process <pid>' line."""
        for ts, msg in self.records():
            if f"Killed process {pid} " in msg and self.offset_ns is not None:
                return ts + self.offset_ns
        return None

    def close(self) -> None:
        os.close(self.fd)


LATENCY_MS = 250


def _oom_latency_sample(group: str) -> tuple[float, float | None]:
    """One OOM kill in ``group`` watched through ``async for``: (the Event's delay after
    the victim's exit, after the kernel's 'Killed process' line or None), in ms."""
    log = KernelLog()

    async def main() -> tuple[list[tuple[Event, int]], int, subprocess.Popen[bytes]]:
        loop = asyncio.get_running_loop()
        got: list[tuple[Event, int]] = []
        async with EventStream(group) as s:
            child = _hog(group)
            pidfd = os.pidfd_open(child.pid)
            exited: asyncio.Future[int] = loop.create_future()

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(time.monotonic_ns())

            loop.add_reader(pidfd, on_exit)
            try:
                async for e in s:
                    got.append((e, time.monotonic_ns()))
                exit_ns = await asyncio.wait_for(exited, 30)
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
        return got, exit_ns, child

    try:
        got, exit_ns, child = asyncio.run(asyncio.wait_for(main(), 90))
        _oom_checks([e for e, _ in got], child)
        killed_ns = log.killed_at(child.pid)
    finally:
        log.close()
    report_ns = next(t for e, t in got if e.oom_kill >= 1)
    exit_ms = (report_ns - exit_ns) / 1e6
    delta_ms = None if killed_ns is None else (report_ns - killed_ns) / 1e6
    if delta_ms is not None:
        assert delta_ms > -50, "the kernel log clock mapping is off"
    return exit_ms, delta_ms


def test_oom_kill_async_for_and_latency(group: str) -> None:
    """An OOM kill is reported within LATENCY_MS of the victim's exit (and of the kernel's
    log line). Typically under 10 ms; one sample on an emulated VM of a busy 2-core host
    can stall for longer than the bound, so up to three OOM kills are tried, each in a
    fresh subgroup: it passes on the first within the bound and fails if none is (a
    stream that polls, or reports late, misses it every time)."""
    from cgtest import remove_tree

    with Dir.open(group) as d:
        d.write("cgroup.subtree_control", "+memory")
        d.write("memory.max", "max")  # the subgroup's own limit is the one hit
    samples: list[tuple[float, float | None]] = []
    for i in range(3):
        sub = f"{group}/try{i}"
        os.mkdir(sub)
        try:
            with Dir.open(sub) as d:
                d.write("memory.max", str(LIMIT))
                if d.exists("memory.swap.max"):
                    d.write("memory.swap.max", "0")
            samples.append(_oom_latency_sample(sub))
        finally:
            remove_tree(sub)
        exit_ms, delta_ms = samples[-1]
        print(f"\nOOM kill {i + 1}: the Event {exit_ms:+.2f} ms after the victim's exit, "
              f"{'?' if delta_ms is None else f'{delta_ms:+.2f}'} ms after 'Killed process'")
        if exit_ms < LATENCY_MS and (delta_ms is None or delta_ms < LATENCY_MS):
            return
    pytest.fail(f"no OOM kill of {len(samples)} was reported within {LATENCY_MS} ms: {samples}")


def test_watcher_reports_memory_before_populated_0(group: str) -> None:
    with EventWatcher() as w:
        first = w.add(group, memory=True)
        assert first.memory is not None and first.memory.oom_kill == 0
        child = _hog(group)
        kinds: list[tuple[NoticeKind, bool, int]] = []
        deadline = time.monotonic() + 60
        while not kinds or kinds[-1][:2] != (NoticeKind.CGROUP, False):
            assert time.monotonic() < deadline, kinds
            for n in w.poll(deadline - time.monotonic()):
                assert n.memory is not None
                kinds.append((n.kind, n.cgroup.populated, n.memory.oom_kill))
        assert child.wait(30) == -9
        # the oom_kill count is reported while or before the group reads empty
        assert (NoticeKind.MEMORY, True, 1) in kinds or (NoticeKind.MEMORY, False, 1) in kinds
        assert kinds[-1] == (NoticeKind.CGROUP, False, 1)


def test_memory_event_fd_becomes_readable(group: str) -> None:
    fd, wd = memory_event_fd(group)
    try:
        assert select.select([fd], [], [], 0)[0] == []
        child = _hog(group)
        assert select.select([fd], [], [], 30)[0] == [fd], "no inotify event"
        data = os.read(fd, 4096)
        ev_wd, mask, _cookie, _len = struct.unpack_from("iIII", data)
        assert ev_wd == wd and mask & 0x2  # IN_MODIFY
        assert child.wait(30) == -9
    finally:
        os.close(fd)


GROUP_CHILD = r"""
import os, sys
fd = os.open(sys.argv[1] + "/cgroup.procs", os.O_WRONLY)
os.write(fd, b"0")
os.close(fd)
if os.fork() == 0:
    import signal
    signal.pause()  # a bystander: killed with the group
hog = []
for _ in range(1024):
    hog.append(b"x" * (1 << 20))
sys.exit(3)
"""


def test_oom_group_kill_counts(group: str) -> None:
    with Dir.open(group) as d:
        if not d.exists("memory.oom.group") or b"oom_group_kill" not in d.read("memory.events"):
            pytest.skip("the kernel has no memory.oom.group or no oom_group_kill count")
        d.write("memory.oom.group", "1")
    with EventStream(group) as s:
        child = subprocess.Popen([sys.executable, "-S", "-c", GROUP_CHILD, group])
        got = _until_end(s)
    assert child.wait(30) == -9
    last = got[-1]
    # the kernel counts the victim once more when it kills the rest of the group
    assert last.oom_group_kill == 1 and last.oom_kill >= 2, got
