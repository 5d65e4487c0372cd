"""unit: the Sampler's reading and bookkeeping on ordinary directories standing in for
groups (the kernel's own behaviour is proven by tests/host/test_sampler.py): the same
Metrics as collect() through a Dir, files re-read by pread without reopening, absent files
remembered, files opened afresh when cgroup.controllers changes, long files read whole, a
removed group dropped, groups made below a followed root picked up (inotify works on any
file system), the RLIMIT_NOFILE error and overflow="reopen"; and the parsers' fast paths
(single values, cpu lists) against their strict slow paths."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroup2 import CgroupError, InvalidFormatError, Sampler, StatMask
from cgroup2._fs import Dir
from cgroup2.controllers import _parse, cpuset
from cgroup2.stats import collect

DATA = Path(__file__).parent / "data" / "vm-6.1"


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    """A fake mount holding copies of the VM's captured groups: /group (every controller,
    limits set), /group/work (memory only), /group/oom."""
    shutil.copytree(DATA / "group", tmp_path / "group")
    shutil.copytree(DATA / "work", tmp_path / "group" / "work")
    shutil.copytree(DATA / "oom", tmp_path / "group" / "oom")
    yield tmp_path


_OPENS: list[list[str]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _OPENS and event == "open":
        _OPENS[-1].append(str(args[0]))


def _opens() -> list[str]:
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    got: list[str] = []
    _OPENS.append(got)
    return got


def _stop() -> None:
    _OPENS.pop()


def test_same_metrics_as_collect_through_a_dir(mount: Path) -> None:
    groups = ["/group", "/group/oom", "/group/work"]  # the sampler's order: by path
    for mask in (StatMask.ALL, StatMask.CPU | StatMask.PSI, StatMask.MEMORY, StatMask.HUGETLB):
        with Sampler(groups, mask=mask, mountpoint=str(mount)) as s:
            for _ in range(2):
                got = s.sample()
                assert list(got) == groups
                for g in groups:
                    with Dir.open(f"{mount}{g}") as d:
                        assert got[g] == collect(d, mask), (g, mask)
    # the capture's values really came through (not two empty results)
    with Sampler(["/group"], mountpoint=str(mount)) as s:
        m = s.sample()["/group"]
    assert m.pids is not None and m.pids.limit == 64
    assert m.memory is not None and m.memory.usage_limit == 512 << 20
    assert m.rdma is not None and m.io is not None and m.io.usage


def test_files_are_reread_without_reopening(mount: Path) -> None:
    g = mount / "group" / "work"
    with Sampler(["/group/work"], mask=StatMask.MEMORY_USAGE, mountpoint=str(mount)) as s:
        first = s.sample()["/group/work"]
        assert first.memory is not None
        opened = _opens()
        try:
            s.sample()
        finally:
            _stop()
        assert opened == []
        opened = _opens()
        try:
            with open(g / "memory.current", "r+") as f:  # same inode, new content
                f.write("12345\n")
                f.truncate()
            again = s.sample()["/group/work"]
        finally:
            _stop()
        assert again.memory is not None and again.memory.usage == 12345
        # the sampler opens by name relative to the group's directory fd (the test's own
        # write above went by full path)
        assert [p for p in opened if "/" not in p] == []
        # absent files (no memory.swap.peak in 6.1) are remembered, not tried again
        assert s._groups["/group/work"].fds.get("memory.swap.peak") == -1


def test_controllers_change_reopens_the_files(mount: Path) -> None:
    g = mount / "group" / "work"
    with Sampler(["/group/work"], mask=StatMask.ALL, mountpoint=str(mount)) as s:
        assert s.sample()["/group/work"].pids is None  # memory only
        (g / "pids.current").write_text("3\n")
        (g / "pids.max").write_text("max\n")
        assert s.sample()["/group/work"].pids is None  # controller still off
        with open(g / "cgroup.controllers", "r+") as f:
            f.write("memory pids\n")
        got = s.sample()["/group/work"].pids
        assert got is not None and (got.current, got.limit) == (3, 2**64 - 1)


def test_a_file_longer_than_one_read_is_read_whole(mount: Path) -> None:
    g = mount / "group" / "work"
    lines = "".join(f"key_{i} {i}\n" for i in range(12000))  # > 64 KiB
    assert len(lines) > 1 << 16
    (g / "memory.stat").write_text(lines)
    with Sampler(["/group/work"], mask=StatMask.MEMORY_STAT, mountpoint=str(mount)) as s:
        for _ in range(2):
            m = s.sample()["/group/work"].memory
            assert m is not None and len(m.other) == 12000 and m.other["key_11999"] == 11999
        data = s.read("/group/work", "memory.stat")
        assert data is not None and data.decode() == lines


def test_removed_group_is_dropped(mount: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Sampler(["/group/work", "/group/oom"], mountpoint=str(mount)) as s:
        s.sample()
        before = s.fd_count
        held = s._groups["/group/oom"]
        n = 1 + sum(fd >= 0 for fd in held.fds.values())
        shutil.rmtree(mount / "group" / "oom")
        real = os.pread
        fds = {fd for fd in held.fds.values() if fd >= 0}

        def pread(fd: int, n: int, off: int) -> bytes:
            if fd in fds:  # what kernfs answers for a file of a removed group
                raise OSError(errno.ENODEV, "No such device")
            return real(fd, n, off)

        monkeypatch.setattr(os, "pread", pread)
        got = s.sample()
        assert list(got) == ["/group/work"] and s.groups == ["/group/work"]
        assert s.fd_count == before - n
        with pytest.raises(KeyError):
            s.read("/group/oom", "cgroup.procs")


def test_followed_root_picks_up_new_and_removed_groups(mount: Path) -> None:
    with Sampler(root="/group", mountpoint=str(mount), depth=1) as s:
        assert s.groups == ["/group", "/group/oom", "/group/work"]
        s.sample()
        shutil.copytree(DATA / "work", mount / "group" / "new")  # a group's files too
        os.mkdir(mount / "group" / "new" / "deeper")  # below the depth
        assert set(s.sample()) == {"/group", "/group/new", "/group/oom", "/group/work"}
        shutil.rmtree(mount / "group" / "new")
        assert set(s.sample()) == {"/group", "/group/oom", "/group/work"}
        assert s.fd_count > 0
    assert s.fd_count == 0


def test_rlimit_error_names_the_need_and_the_limit(
    mount: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cgroup2 import sampler

    # a hard limit where the three directories fit (with the spare the sampler leaves for
    # the rest of the program) and no file does
    limit = sampler._SPARE + 3
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limit, limit))
    groups = ["/group", "/group/work", "/group/oom"]
    with Sampler(groups, mountpoint=str(mount)) as s, pytest.raises(CgroupError) as e:
        s.sample()
    text = str(e.value)
    assert f"allows {limit} (hard limit" in text and "3 groups" in text
    assert "need about" in text and "overflow='reopen'" in text
    # reopen: the same Metrics, the files read by open/read/close
    with Sampler(groups, mountpoint=str(mount), overflow="reopen") as s:
        for _ in range(2):
            got = s.sample()
            for g in groups:
                with Dir.open(f"{mount}{g}") as d:
                    assert got[g] == collect(d)
        assert s.fd_count == 3  # the directories only
        # a file read past the budget: its name is checked as Dir checks it, and an
        # absent one is None, as when held
        with pytest.raises(CgroupError, match="invalid file name"):
            s.read("/group", "../group/memory.max")
        assert s.read("/group", "no.such.file") is None
        assert s.read("/group", "cgroup.type") == (mount / "group" / "cgroup.type").read_bytes()
        # a group removed: left out of the sample, as when held
        shutil.rmtree(mount / "group" / "oom")
        assert set(s.sample()) == {"/group", "/group/work"}
        assert s.fd_count == 2
    with pytest.raises(CgroupError):
        Sampler(groups, mountpoint=str(mount), overflow="never")  # type: ignore[arg-type]


def test_bad_arguments_are_refused(mount: Path) -> None:
    with pytest.raises(CgroupError):
        Sampler(["/group"], mountpoint=str(mount), mask=0xFF)  # type: ignore[arg-type]
    with pytest.raises(CgroupError):
        Sampler(root="/group", mountpoint=str(mount), depth=-1)
    with pytest.raises(CgroupError):
        Sampler([42], mountpoint=str(mount))  # type: ignore[list-item]
    with pytest.raises(CgroupError, match="list of group paths"):
        Sampler("/group", mountpoint=str(mount))


def test_a_malformed_file_is_named_as_stat_names_it(mount: Path) -> None:
    (mount / "group" / "work" / "memory.current").write_text("12x\n")
    with (
        Sampler(["/group/work"], mountpoint=str(mount)) as s,
        pytest.raises(InvalidFormatError) as e,
    ):
        s.sample()
    assert f"{mount}/group/work/memory.current line 1" in str(e.value)


# --- the parsers' fast paths --------------------------------------------------------------


def _slow_uint(data: bytes) -> int | None:
    return _parse._uint(data.strip())


@given(st.one_of(st.binary(max_size=30), st.integers(0, 2**70).map(lambda n: b"%d\n" % n)))
def test_single_value_fast_path_is_the_strict_parse(data: bytes) -> None:
    want = _slow_uint(data)
    try:
        got: int | None = _parse.parse_uint(data, "f")
    except InvalidFormatError:
        got = None
    assert got == want
    want_limit = 2**64 - 1 if data.strip() == b"max" else want
    try:
        got = _parse.parse_limit(data, "f")
    except InvalidFormatError:
        got = None
    assert got == want_limit


@given(st.lists(st.integers(0, 300), max_size=20))
def test_cpu_list_cache_gives_what_the_parse_gives(cpus: list[int]) -> None:
    text = ",".join(map(str, cpus)).encode() + b"\n"
    want = tuple(sorted(set(cpus)))
    assert cpuset.parse_cpu_list(text) == want
    assert cpuset.parse_cpu_list(text) == want  # from the cache now
    assert len(cpuset._LISTS) <= 256


def test_positional_construction_follows_the_fields_order() -> None:
    """The flat files' parsers build their dataclasses by position (for speed): the key
    tuples must be the fields' order."""
    from dataclasses import fields

    from cgroup2.controllers.cpu import CPU_STAT_FIELDS, CPUStat
    from cgroup2.controllers.memory import (
        MEMORY_EVENTS_FIELDS,
        MEMORY_STAT_KEYS,
        MemoryEvents,
        MemoryStat,
    )

    names = [f.name for f in fields(MemoryStat)]
    assert names[: len(MEMORY_STAT_KEYS)] == list(MEMORY_STAT_KEYS)
    assert names[len(MEMORY_STAT_KEYS) :] == [
        "usage", "usage_limit", "swap_usage", "swap_limit", "max_usage", "swap_max_usage",
        "psi", "other",
    ]  # fmt: skip
    assert [f.name for f in fields(CPUStat)] == [*CPU_STAT_FIELDS, "psi", "other"]
    assert [f.name for f in fields(MemoryEvents)] == [*MEMORY_EVENTS_FIELDS, "other"]


_KEYS = ("anon", "file", "pgfault")


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*_KEYS, "kernel", "x", "é", ""]),
            st.sampled_from(["1", "0", "18446744073709551615", "max", "-1", "1.5", ""]),
            st.sampled_from([" ", "  ", "\t"]),
        ),
        max_size=8,
    )
)
def test_flat_fields_fast_path_is_the_line_by_line_parse(lines: list[tuple[str, str, str]]) -> None:
    data = "".join(f"{k}{sep}{v}\n" for k, v, sep in lines).encode()
    known = frozenset(_KEYS)
    try:
        got: object = _parse.parse_flat_fields(data, "memory.stat", _KEYS, known)
    except InvalidFormatError:
        got = "error"
    try:
        named, other = _parse._flat_slow(data, "memory.stat", known)
        want: object = (tuple(named.get(k) for k in _KEYS), other)
    except InvalidFormatError:
        want = "error"
    assert got == want
    if got != "error":  # a second time, from what was remembered: the same, new objects
        again = _parse.parse_flat_fields(data, "memory.stat", _KEYS, known)
        assert again == got and again[1] is not got[1]  # type: ignore[index]


def test_pressure_texts_seen_before_give_fresh_equal_objects() -> None:
    from cgroup2.controllers import psi

    text = (
        b"some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\n"
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n"
    )
    first = psi.parse_pressure(text)
    first.some.total = -1  # type: ignore[union-attr]  # a caller may change what it got
    again = psi.parse_pressure(text)
    assert again.some is not None and again.full is not None
    assert (again.some.avg10, again.some.avg60, again.some.total) == (1.5, 0.25, 12345)
    assert again.full.total == 99 and again.some is not first.some
    other = psi.parse_pressure(text.replace(b"total=99", b"total=100"))
    assert other.full is not None and other.full.total == 100
    for i in range(1100):  # bounded
        psi.parse_pressure(text.replace(b"total=99", b"total=%d" % i))
    assert len(psi._SEEN) <= 1024
    with pytest.raises(InvalidFormatError):
        psi.parse_pressure(text.replace(b"total=99", b"total=x"))


def test_flat_texts_seen_before_give_fresh_other_keys() -> None:
    from cgroup2.controllers.memory import parse_memory_stat

    data = (DATA / "group" / "memory.stat").read_bytes()
    first = parse_memory_stat(data)
    first.other["kernel"] = -1  # type: ignore[index]  # a caller may change what it got
    again = parse_memory_stat(data)
    assert again.other["kernel"] != -1 and again == parse_memory_stat(data + b"")
    assert again.anon == first.anon and again.anon is not None
    for i in range(1100):  # bounded
        parse_memory_stat(data + b"x_%d %d\n" % (i, i))
    assert all(len(v) <= 1024 for v in _parse._FIELDS_SEEN.values())
