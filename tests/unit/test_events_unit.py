"""unit: the memory.events / cgroup.events parsers, the watcher's read logic on plain files,
the stream's end rules with a scripted watcher, and memory_event_fd's inotify flags."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import select
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cgroup2
from cgroup2 import events
from cgroup2.errors import (
    CgroupDeletedError,
    CgroupError,
    InvalidFormatError,
    KernelError,
    MemoryNotSupportedError,
)
from cgroup2.events import (
    CgroupEvents,
    CgroupEventStream,
    Event,
    EventStream,
    EventWatcher,
    Notice,
    NoticeKind,
    _inotify,
    memory_event_fd,
    parse_cgroup_events,
    parse_memory_events,
    streams,
    watcher,
)

KERNEL_6_1 = b"low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n"


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# --- parsers ---------------------------------------------------------------------------


def test_memory_events_of_a_real_kernel() -> None:
    assert parse_memory_events(KERNEL_6_1) == Event(0, 0, 17, 1, 1, 0)


def test_memory_events_before_5_17_and_with_new_keys() -> None:
    old = b"low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n"
    assert parse_memory_events(old) == Event(1, 2, 3, 4, 5, 0)
    new = KERNEL_6_1 + b"sock_throttled 9\n"
    assert parse_memory_events(new) == Event(0, 0, 17, 1, 1, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"low 0\nhigh 0\nmax 0\noom 0\n",  # oom_kill missing
        b"low 0\nhigh x\nmax 0\noom 0\noom_kill 0\n",
        b"low -1\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        b"low 0 1\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    ],
)
def test_memory_events_malformed(data: bytes) -> None:
    with pytest.raises(InvalidFormatError, match=r"memory\.events"):
        parse_memory_events(data)


@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6),
    st.permutations(["low", "high", "max", "oom", "oom_kill", "oom_group_kill"]),
)
def test_memory_events_any_order_any_count(counts: list[int], keys: list[str]) -> None:
    by_key = dict(zip(keys, counts, strict=True))
    data = "".join(f"{k} {by_key[k]}\n" for k in keys).encode()
    assert parse_memory_events(data) == Event(**by_key)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"populated 0\nfrozen 0\n", CgroupEvents(False, False)),
        (b"populated 1\nfrozen 1\n", CgroupEvents(True, True)),
        (b"populated 1\n", CgroupEvents(True, False)),  # before Linux 5.2
        (b"frozen 1\nnew_key 7\npopulated 0\n", CgroupEvents(False, True)),
    ],
)
def test_cgroup_events(data: bytes, want: CgroupEvents) -> None:
    assert parse_cgroup_events(data) == want


@pytest.mark.parametrize(
    "data", [b"", b"frozen 0\n", b"populated 2\nfrozen 0\n", b"populated\nfrozen 0\n"]
)
def test_cgroup_events_malformed(data: bytes) -> None:
    with pytest.raises(InvalidFormatError, match=r"cgroup\.events"):
        parse_cgroup_events(data)


def test_public_names() -> None:
    for name in ("Event", "EventStream", "EventWatcher"):
        assert getattr(cgroup2, name) is getattr(events, name)
        assert name in cgroup2.__all__
    for name in ("memory_event_fd", "CgroupEvents", "CgroupEventStream", "Notice", "NoticeKind"):
        assert name in events.__all__ and name not in cgroup2.__all__
    assert Event(1, 2, 3, 4, 5).oom_group_kill == 0
    with pytest.raises(AttributeError):
        Event(1, 2, 3, 4, 5).oom = 9  # type: ignore[misc]


# --- the watcher's read logic, on plain files --------------------------------------------


class _Files:
    """A watcher whose one group ``<tmp>/grp`` is a plain directory: its kept fds are
    plain files (not in the epoll); the removal watch on ``<tmp>`` is real inotify."""

    def __init__(self, tmp: Path, cg: bytes, mem: bytes | None) -> None:
        self.dir = tmp / "grp"
        self.dir.mkdir()
        self.cg, self.mem = self.dir / "cgroup.events", self.dir / "memory.events"
        self.cg.write_bytes(cg)
        self.watcher = EventWatcher(_wakes=False)
        w = watcher._Watch(str(self.dir))
        w.wd = _inotify.add_watch(self.watcher._ino, str(tmp), _inotify.IN_CHILD_GONE, str(tmp))
        self.watcher._dirs[w.wd] = {b"grp": w}
        w.cfd = os.open(self.cg, os.O_RDONLY | os.O_CLOEXEC)
        w.craw = cg
        w.cstate = parse_cgroup_events(cg)
        if mem is not None:
            self.mem.write_bytes(mem)
            w.mfd = os.open(self.mem, os.O_RDONLY | os.O_CLOEXEC)
            w.mraw = mem
            w.mem = parse_memory_events(mem)
        self.watcher._watches[w.path] = w
        self.watcher._fds[w.cfd] = (w, False)
        if w.mfd >= 0:
            self.watcher._fds[w.mfd] = (w, True)
        self.w = w

    def wake(self, *which: str) -> list[Notice]:
        fd = {"cg": self.w.cfd, "mem": self.w.mfd}
        return self.watcher._read_ready([(fd[x], select.EPOLLPRI) for x in which])


@pytest.fixture
def files(tmp_path: Path) -> Iterator[_Files]:
    mem = KERNEL_6_1.replace(b"oom_kill 1", b"oom_kill 0")
    f = _Files(tmp_path, b"populated 1\nfrozen 0\n", mem)
    yield f
    f.watcher.close()


def test_oom_kill_of_last_process_is_reported_before_populated_0(files: _Files) -> None:
    # Both files changed; only cgroup.events' wake has been seen so far (containerd#374).
    files.mem.write_bytes(KERNEL_6_1)
    files.cg.write_bytes(b"populated 0\nfrozen 0\n")
    out = files.wake("cg", "mem")
    assert [n.kind for n in out] == [NoticeKind.MEMORY, NoticeKind.CGROUP]
    assert out[0].memory is not None and out[0].memory.oom_kill == 1
    assert out[1].cgroup == CgroupEvents(False, False) and out[1].memory == out[0].memory


def test_unchanged_wakes_are_not_reported(files: _Files) -> None:
    assert files.wake("cg", "mem") == []
    files.cg.write_bytes(b"populated 1\nfrozen 1\n")
    (n,) = files.wake("cg")
    assert n.kind is NoticeKind.CGROUP and n.cgroup.frozen and n.time_ns > 0


def test_unchanged_wake_is_reported_to_streams(files: _Files) -> None:
    files.watcher._wakes = True
    (n,) = files.wake("cg")
    assert n.kind is NoticeKind.CGROUP and n.cgroup == CgroupEvents(True, False)


def test_removed_group_is_reported_once_and_dropped(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.pread

    def gone(fd: int, n: int, off: int) -> bytes:
        if fd in (files.w.cfd, files.w.mfd):
            raise OSError(errno.ENODEV, "No such device")
        return real(fd, n, off)

    before = len(_fds())
    monkeypatch.setattr(os, "pread", gone)
    cfd, mfd = files.w.cfd, files.w.mfd
    out = files.wake("cg", "mem")
    assert [n.kind for n in out] == [NoticeKind.DELETED]
    assert len(files.watcher) == 0 and files.w.path not in files.watcher
    assert len(_fds()) == before - 2
    for fd in (cfd, mfd):
        with pytest.raises(OSError):
            os.fstat(fd)


def _enodev(monkeypatch: pytest.MonkeyPatch, fds: tuple[int, ...]) -> None:
    real = os.pread

    def gone(fd: int, n: int, off: int) -> bytes:
        if fd in fds:
            raise OSError(errno.ENODEV, "No such device")
        return real(fd, n, off)

    monkeypatch.setattr(os, "pread", gone)


def test_memory_events_removed_alone_is_not_a_removal(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The memory controller disabled for the group: only memory.events goes away.
    _enodev(monkeypatch, (files.w.mfd,))
    mfd = files.w.mfd
    files.cg.write_bytes(b"populated 1\nfrozen 1\n")
    out = files.wake("mem")
    assert [(n.kind, n.cgroup.frozen) for n in out] == [(NoticeKind.CGROUP, True)]
    assert len(files.watcher) == 1 and files.w.mfd == -1 and mfd not in files.watcher._fds
    assert files.w.mem is not None  # the last counts read
    files.cg.write_bytes(b"populated 0\nfrozen 1\n")
    assert [n.kind for n in files.wake("cg")] == [NoticeKind.CGROUP]


def test_removal_is_seen_through_the_parent_watch(
    files: _Files, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling").rmdir()  # not watched: a hint that reads nothing new
    assert files.watcher.poll(1) == []
    assert len(files.watcher) == 1
    _enodev(monkeypatch, (files.w.cfd, files.w.mfd))
    for f in files.dir.iterdir():
        f.unlink()
    files.dir.rmdir()
    (n,) = files.watcher.poll(1)
    assert n.kind is NoticeKind.DELETED and n.path == str(files.dir)
    assert len(files.watcher) == 0 and files.watcher._dirs == {}


def test_lost_inotify_events_mean_every_group_is_read_again(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    overflow = _inotify.EVENT.pack(-1, _inotify.IN_Q_OVERFLOW, 0, 0)
    reads = [overflow]

    def read(fd: int, n: int) -> bytes:
        assert fd == files.watcher._ino
        if reads:
            return reads.pop()
        raise BlockingIOError

    monkeypatch.setattr(os, "read", read)
    files.cg.write_bytes(b"populated 1\nfrozen 1\n")  # a change whose wake was not seen
    out: list[Notice] = []
    files.watcher._read_removals(out)
    assert [(n.kind, n.cgroup.frozen) for n in out] == [(NoticeKind.CGROUP, True)]
    reads.append(overflow)
    _enodev(monkeypatch, (files.w.cfd, files.w.mfd))
    out.clear()
    files.watcher._read_removals(out)
    assert [n.kind for n in out] == [NoticeKind.DELETED]


def test_other_read_errors_name_the_file(files: _Files, monkeypatch: pytest.MonkeyPatch) -> None:
    def eio(fd: int, n: int, off: int) -> bytes:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "pread", eio)
    with pytest.raises(KernelError, match=r"memory\.events.*EIO"):
        files.wake("mem")


# --- the watcher's checks ----------------------------------------------------------------


def test_add_refuses_relative_missing_and_plain_files(tmp_path: Path) -> None:
    before = _fds()
    with EventWatcher() as w:
        with pytest.raises(CgroupError, match="absolute"):
            w.add("relative/group")
        with pytest.raises(CgroupDeletedError):
            w.add(str(tmp_path / "missing"))
        with pytest.raises(CgroupError, match="root group"):
            w.add(str(tmp_path))  # no cgroup.events
        (tmp_path / "cgroup.events").write_bytes(b"populated 0\nfrozen 0\n")
        with pytest.raises(MemoryNotSupportedError, match=r"memory\.events"):
            w.add(str(tmp_path), memory=True)
        with pytest.raises(KernelError, match="epoll_ctl"):  # a plain file cannot be polled
            w.add(str(tmp_path))
        assert len(w) == 0
    assert _fds() == before
    with pytest.raises(CgroupError, match="closed"):
        w.poll(0)


def test_poll_times_out_empty() -> None:
    with EventWatcher() as w:
        assert w.poll(0) == []
        assert w.poll(0.01) == []
        assert w.remove("/nowhere") is False
        with pytest.raises(CgroupError):
            EventWatcher(max_events=0)


# --- the streams' end rules, with a scripted watcher ----------------------------------------

P = "/sys/fs/cgroup/g"
E0 = Event(0, 0, 0, 0, 0)
E1 = Event(0, 0, 5, 1, 0)
E2 = Event(0, 0, 9, 1, 1)
ON = CgroupEvents(True)
OFF = CgroupEvents(False)


def _n(kind: NoticeKind, cg: CgroupEvents, mem: Event | None = E0) -> Notice:
    return Notice(P, kind, cg, mem, 1)


class FakeWatcher:
    """Hands out scripted notice batches; records that it was closed."""

    script: ClassVar[list[list[Notice]]] = []
    first = _n(NoticeKind.ADDED, ON)
    instances: ClassVar[list[FakeWatcher]] = []

    def __init__(self, **kw: object) -> None:
        self.batches = list(self.script)
        self.closed = False
        self.instances.append(self)

    def add(
        self, path: str, *, memory: bool | None = None, mountpoint: str | None = None
    ) -> Notice:
        return self.first

    def state(self, path: str) -> Notice:
        return self.first

    def poll(self, timeout: float | None = None) -> list[Notice]:
        assert not self.closed
        if self.batches:
            return self.batches.pop(0)
        if timeout is None:
            raise AssertionError("the stream would wait forever")
        return []

    async def wait_readable(self) -> None:
        if not self.batches:
            raise AssertionError("the stream would wait forever")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeWatcher]:
    monkeypatch.setattr(streams, "EventWatcher", FakeWatcher)
    FakeWatcher.first = _n(NoticeKind.ADDED, ON)
    FakeWatcher.script = []
    FakeWatcher.instances = []
    return FakeWatcher


def test_stream_yields_changes_and_ends_when_emptied(fake: type[FakeWatcher]) -> None:
    fake.script = [
        [_n(NoticeKind.MEMORY, ON, E1)],
        [_n(NoticeKind.MEMORY, ON, E1)],  # same counts again: not yielded twice
        [_n(NoticeKind.MEMORY, ON, E2), _n(NoticeKind.CGROUP, OFF, E2)],
        [_n(NoticeKind.MEMORY, OFF, Event(0, 0, 99, 1, 1))],  # after the end: never read
    ]
    with EventStream(P) as s:
        assert list(s) == [E1, E2]
        assert s.ended and fake.instances[0].closed
        assert list(s) == []


def test_stream_made_before_the_first_process_waits_for_it(fake: type[FakeWatcher]) -> None:
    fake.first = _n(NoticeKind.ADDED, OFF)
    fake.script = [
        [_n(NoticeKind.CGROUP, CgroupEvents(False, True))],  # frozen: not an end
        [_n(NoticeKind.CGROUP, ON)],
        [_n(NoticeKind.MEMORY, ON, E2)],
        [_n(NoticeKind.CGROUP, OFF, E2)],
    ]
    assert list(EventStream(P)) == [E2]


def test_stream_ends_on_a_populated_bounce(fake: type[FakeWatcher]) -> None:
    # populated 0 -> 1 -> 0 within one notification interval: one wake, no change seen.
    fake.first = _n(NoticeKind.ADDED, OFF)
    fake.script = [[_n(NoticeKind.MEMORY, OFF, E2), _n(NoticeKind.CGROUP, OFF, E2)]]
    assert list(EventStream(P)) == [E2]
    fake.script = [[_n(NoticeKind.CGROUP, OFF, E0)]]
    assert list(CgroupEventStream(P)) == [ON, OFF]


def test_stream_raises_when_group_removed_after_pending_items(fake: type[FakeWatcher]) -> None:
    fake.first = _n(NoticeKind.ADDED, OFF)
    fake.script = [[_n(NoticeKind.MEMORY, OFF, E1), _n(NoticeKind.DELETED, OFF, E1)]]
    s = EventStream(P, initial=True)
    assert next(s) == E0
    assert next(s) == E1
    with pytest.raises(CgroupDeletedError, match="removed"):
        next(s)
    assert fake.instances[0].closed
    with pytest.raises(StopIteration):
        next(s)


def test_stream_get_times_out(fake: type[FakeWatcher]) -> None:
    s = EventStream(P)
    assert s.get(timeout=0.01) is None and not s.ended
    s.close()
    assert s.get(timeout=0) is None and s.ended


def test_cgroup_stream_reports_populated_and_frozen(fake: type[FakeWatcher]) -> None:
    fake.first = _n(NoticeKind.ADDED, OFF, None)
    fake.script = [
        [_n(NoticeKind.CGROUP, ON, None)],
        [_n(NoticeKind.CGROUP, CgroupEvents(True, True), None)],
        [_n(NoticeKind.CGROUP, ON, None)],
        [_n(NoticeKind.CGROUP, OFF, None)],
    ]
    assert list(CgroupEventStream(P, initial=True)) == [
        OFF,
        ON,
        CgroupEvents(True, True),
        ON,
        OFF,
    ]


def test_stream_async(fake: type[FakeWatcher]) -> None:
    fake.script = [[], [_n(NoticeKind.MEMORY, ON, E1)], [_n(NoticeKind.CGROUP, OFF, E1)]]

    async def main() -> list[Event]:
        async with EventStream(P) as s:
            return [e async for e in s]

    assert asyncio.run(main()) == [E1]


# --- memory_event_fd ---------------------------------------------------------------------


def test_memory_event_fd_flags_and_readiness(tmp_path: Path) -> None:
    f = tmp_path / "memory.events"
    f.write_bytes(KERNEL_6_1)
    fd, wd = memory_event_fd(str(tmp_path))
    try:
        assert wd >= 1
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
        with f.open("ab") as w:
            w.write(b"x")
        assert select.select([fd], [], [], 2)[0] == [fd]
    finally:
        os.close(fd)


def test_memory_event_fd_failures_close_the_fd(tmp_path: Path) -> None:
    before = _fds()
    with pytest.raises(MemoryNotSupportedError, match=r"memory\.events"):
        memory_event_fd(str(tmp_path))
    with pytest.raises(CgroupDeletedError):
        memory_event_fd(str(tmp_path / "gone"))
    with pytest.raises(CgroupError, match="absolute"):
        memory_event_fd("not/absolute")
    assert _fds() == before
