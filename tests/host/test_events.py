"""host: cgroup.events changes seen through one epoll on this machine's cgroup2 mount.

The host's cgroup2 mount has no memory controller, so here only ``cgroup.events``
(populated, frozen) is watched; memory events are proven in the vm tier.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import CgroupDeletedError, EventStream, EventWatcher, MemoryNotSupportedError
from cgroup2._fs import Dir
from cgroup2.events import CgroupEvents, CgroupEventStream, Notice, NoticeKind, memory_event_fd

N = 1000


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """The test's group, created; removed at the end (with anything left in it)."""
    from cgtest import remove_tree

    fs = cg_parent.mountpoint + cg_path
    with Dir.open(cg_parent.fs_path) as d:
        d.mkdir(os.path.basename(cg_path))
    try:
        yield fs
    finally:
        remove_tree(fs)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "120"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def _move(group: str, pid: int) -> None:
    with Dir.open(group) as d:
        d.write("cgroup.procs", str(pid))


def _collect(
    w: EventWatcher, seen: dict[str, list[Notice]], done: object, timeout: float = 10.0
) -> None:
    """Poll until ``done()`` is true, filing notices by group."""
    assert callable(done)
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        assert left > 0, "timed out waiting for the kernel's notifications"
        for n in w.poll(left):
            seen.setdefault(n.path, []).append(n)


def test_watcher_1000_groups_populated_frozen_deleted(
    group: str, sleeper: subprocess.Popen[bytes]
) -> None:
    names = [f"g{i}" for i in range(N)]
    paths = [f"{group}/{x}" for x in names]
    with Dir.open(group) as d:
        for x in names:
            d.mkdir(x)
    before = _fds()
    w = EventWatcher()
    try:
        for p in paths:
            first = w.add(p)
            assert first.kind is NoticeKind.ADDED
            assert first.cgroup == CgroupEvents(False, False)
        assert len(w) == N
        # one kept fd per group; one epoll and one inotify fd (removals) for all of them
        assert len(_fds()) == len(before) + N + 2

        # populated 0 -> 1 -> 0 everywhere: one process walks through the groups, so each
        # group gets it (populated 1) and then loses it (populated 0) to the next one.
        seen: dict[str, list[Notice]] = {}

        def populated_seen(p: str) -> bool:
            return any(n.cgroup.populated for n in seen.get(p, ()))

        for p in paths:
            _move(p, sleeper.pid)
            _collect(w, seen, lambda p=p: populated_seen(p))  # type: ignore[misc]
        sleeper.kill()
        sleeper.wait()

        def all_emptied() -> bool:
            return all(p in seen and not seen[p][-1].cgroup.populated for p in paths)

        _collect(w, seen, all_emptied)
        for p in paths:
            states = [n.cgroup.populated for n in seen[p]]
            assert states == [True, False], (p, seen[p])
            assert {n.kind for n in seen[p]} == {NoticeKind.CGROUP}

        # frozen: freeze all, then thaw all, without reading in between.
        for want in (True, False):
            seen.clear()
            t0 = time.monotonic_ns()
            for p in paths:
                with Dir.open(p) as d:
                    d.write("cgroup.freeze", "1" if want else "0")

            def all_frozen(want: bool = want) -> bool:
                return all(p in seen and seen[p][-1].cgroup.frozen is want for p in paths)

            _collect(w, seen, all_frozen)
            assert all(len(seen[p]) == 1 and seen[p][0].time_ns > t0 for p in paths)

        # removal: every group is reported once as DELETED and dropped.
        seen.clear()
        with Dir.open(group) as d:
            for x in names:
                os.rmdir(x, dir_fd=d.fd)
        _collect(w, seen, lambda: len(seen) == N)
        assert all([n.kind for n in seen[p]] == [NoticeKind.DELETED] for p in paths)
        assert len(w) == 0
        assert len(_fds()) == len(before) + 2  # the epoll and the inotify fd alone
    finally:
        w.close()
    assert _fds() == before


def test_watcher_add_remove_and_callback(group: str, sleeper: subprocess.Popen[bytes]) -> None:
    got: list[Notice] = []
    before = _fds()
    with EventWatcher(callback=got.append) as w:
        w.add(group)
        assert group in w and w.state(group).cgroup == CgroupEvents(False)
        with pytest.raises(Exception, match="already watched"):
            w.add(group + "/")
        _move(group, sleeper.pid)
        out = w.poll(5)
        assert got == out and out[0].cgroup.populated
        assert w.remove(group) is True and group not in w
        sleeper.kill()
        sleeper.wait()
        assert w.poll(0.05) == []  # no longer watched: nothing reported
        assert w.remove(group) is False
    assert _fds() == before


def test_watcher_async_queue_and_async_for(group: str) -> None:
    threads = threading.active_count()

    async def main() -> tuple[Notice, Notice]:
        with EventWatcher() as w:
            w.add(group)
            q = w.attach()
            with Dir.open(group) as d:
                d.write("cgroup.freeze", "1")
            a = await asyncio.wait_for(q.get(), 5)
            assert threading.active_count() == threads  # no thread behind the queue
            w.detach()
            with Dir.open(group) as d:
                d.write("cgroup.freeze", "0")
            async for b in w:
                return a, b
        raise AssertionError("unreachable")

    a, b = asyncio.run(main())
    assert a.cgroup.frozen and not b.cgroup.frozen


def test_cgroup_stream_follows_a_process_and_ends(
    group: str, sleeper: subprocess.Popen[bytes]
) -> None:
    before = _fds()
    with CgroupEventStream(group, initial=True) as s:
        assert s.get(0) == CgroupEvents(False)
        _move(group, sleeper.pid)
        assert s.get(5) == CgroupEvents(True)
        with Dir.open(group) as d:
            d.write("cgroup.freeze", "1")
            assert s.get(5) == CgroupEvents(True, True)
            d.write("cgroup.freeze", "0")
            assert s.get(5) == CgroupEvents(True, False)
        sleeper.kill()
        sleeper.wait()
        assert list(s) == [CgroupEvents(False)]
        assert s.ended
        assert _fds() == before  # an ended stream has closed its descriptors
    assert _fds() == before


def test_cgroup_stream_async(group: str, sleeper: subprocess.Popen[bytes]) -> None:
    async def main() -> list[CgroupEvents]:
        out = []
        async with CgroupEventStream(group) as s:
            _move(group, sleeper.pid)
            async for state in s:
                out.append(state)
                if state.populated:
                    sleeper.kill()
        return out

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [CgroupEvents(True), CgroupEvents(False)]
    sleeper.wait()


def test_stream_raises_when_group_removed(group: str) -> None:
    s = CgroupEventStream(group)
    with Dir.open(os.path.dirname(group)) as parent:
        os.rmdir(os.path.basename(group), dir_fd=parent.fd)
    with pytest.raises(CgroupDeletedError, match="removed"):
        s.get(5)
    assert s.ended
    s.close()


def test_memory_events_absent_on_this_mount(group: str) -> None:
    with Dir.open(group) as d:
        if d.exists("memory.events"):
            pytest.skip("this mount has the memory controller (the vm tier covers it)")
    before = _fds()
    with pytest.raises(MemoryNotSupportedError, match=r"memory\.events"):
        EventStream(group)
    with pytest.raises(MemoryNotSupportedError, match=r"memory\.events"):
        memory_event_fd(group)
    with EventWatcher() as w, pytest.raises(MemoryNotSupportedError):
        w.add(group, memory=True)
    assert _fds() == before


def test_close_ends_a_waiting_async_for(group: str) -> None:
    before = _fds()

    async def main() -> list[Notice]:
        w = EventWatcher()
        w.add(group)
        got: list[Notice] = []

        async def consume() -> None:
            async for n in w:
                got.append(n)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # the consumer is waiting on the epoll fd now
        w.close()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(main()) == []
    assert _fds() == before
