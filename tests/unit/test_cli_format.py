"""unit: what the commands compute and print, from given numbers (no kernel)."""

from __future__ import annotations

import signal

import pytest

from cgroup2.cli import _group_path
from cgroup2.cli._summary import Summary
from cgroup2.cli._top import GroupSample, rows
from cgroup2.cli._units import UsageError


def s(group: str, tasks: int, cpu: int | None, mem: int | None = None,
      rb: int | None = None, wb: int | None = None) -> GroupSample:
    return GroupSample(group, tasks, cpu, mem, rb, wb)


def test_top_rates_and_sorting() -> None:
    before = {"/a": s("/a", 1, 1_000_000, 10, 0, 0), "/b": s("/b", 5, 0, 99, None, None)}
    after = {
        "/a": s("/a", 1, 1_500_000, 10, 4096, 2048),
        "/b": s("/b", 5, 100_000, 99, None, None),
        "/c": s("/c", 2, 7, None, None, None),  # new: no rate yet
    }
    r = {x.group: x for x in rows(before, after, 0.5, "cpu")}
    assert r["/a"].cpu_percent == pytest.approx(100.0)  # 0.5 s of CPU in 0.5 s
    assert r["/b"].cpu_percent == pytest.approx(20.0)
    assert r["/c"].cpu_percent is None
    assert r["/a"].read_rate == 8192 and r["/a"].write_rate == 4096
    assert r["/a"].io_rate == 12288 and r["/b"].io_rate is None
    order = {k: [x.group for x in rows(before, after, 0.5, k)]
             for k in ("cpu", "memory", "io", "tasks", "name")}
    assert order == {
        "cpu": ["/a", "/b", "/c"],
        "memory": ["/b", "/a", "/c"],
        "io": ["/a", "/b", "/c"],
        "tasks": ["/b", "/c", "/a"],
        "name": ["/a", "/b", "/c"],
    }


def test_top_counter_going_backwards_is_zero() -> None:
    # a group removed and made again between two samples: its counters start over
    r = rows({"/a": s("/a", 1, 900)}, {"/a": s("/a", 1, 100)}, 1.0, "cpu")
    assert r[0].cpu_percent == 0.0


def test_summary_rows() -> None:
    full = Summary(
        group="/g", status=137, signal=signal.SIGKILL, wall_sec=1.5, user_usec=250_000,
        system_usec=1_500, nr_periods=15, nr_throttled=12, throttled_usec=1_200_000,
        memory_peak=32 << 20, memory_max=32 << 20, oom=1, oom_kill=1, pids_max=4,
        pids_max_hits=3,
    )
    assert dict(full.rows()) == {
        "exit status": "137 (killed by SIGKILL)",
        "wall time": "1.500s",
        "CPU user": "250.0ms",
        "CPU system": "1.5ms",
        "CPU throttled": "12 of 15 periods, 1.200s",
        "peak memory": "32.0M (memory.max 32.0M)",
        "OOM kills": "1",
        "pids.max hits": "3 (fork failures, pids.max 4)",
    }
    bare = Summary(group="/g", status=0, signal=None, wall_sec=0.01, pids_max_hits=0,
                   pids_max=2**64 - 1, memory_peak=4096, memory_max=2**64 - 1)
    d = dict(bare.rows())
    assert d["exit status"] == "0"
    assert d["CPU throttled"] == "- (no cpu controller)"
    assert d["peak memory"] == "4.0K"
    assert d["OOM kills"] == "- (no memory controller)"
    assert d["pids.max hits"] == "0 (fork failures)"
    text = full.render().plain  # type: ignore[union-attr]
    assert text.splitlines()[0] == "cgroup2 run: group /g"
    assert all(line == line.rstrip() for line in text.splitlines())


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("a/b", "/a/b"),
        ("/a/b/", "/a/b"),
        ("/sys/fs/cgroup/a", "/a"),
        ("/sys/fs/cgroup", "/"),
    ],
)
def test_group_path(text: str, want: str) -> None:
    assert _group_path(text, "/sys/fs/cgroup") == want


@pytest.mark.parametrize("text", ["/a/../b", "/a//b", "/a/./b"])
def test_group_path_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="not clean"):
        _group_path(text, "/sys/fs/cgroup")
