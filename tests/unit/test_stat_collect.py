"""unit: collect() over a copy of a real group's files (captured in the vm tier).

A directory holding the captured files stands in for the group (``Dir`` opens any
directory): this checks which files each mask reads, that each is read once, and how
absent files, malformed files and a removed directory come out. That the kernel really
fills these files is the business of the vm and host tiers.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from cgroup2 import CgroupDeletedError, InvalidFormatError, StatMask
from cgroup2._fs import Dir
from cgroup2.controllers import hugetlb
from cgroup2.stats import U64_MAX, collect

VM_GROUP = Path(__file__).parent / "data" / "vm-6.1" / "group"


class CountingDir(Dir):
    """A Dir that records every file it is asked for."""

    def __init__(self, fd: int, path: str) -> None:
        super().__init__(fd, path)
        self.asked: list[str] = []

    @classmethod
    def at(cls, path: Path) -> CountingDir:
        d = Dir.open(str(path))
        fd, d.fd = d.fd, -1
        return cls(fd, str(path))

    def read(self, name: str) -> bytes:
        self.asked.append(name)
        return super().read(name)

    def try_read(self, name: str) -> bytes | None:
        self.asked.append(name)
        return super().try_read(name)


@pytest.fixture
def group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not VM_GROUP.is_dir():
        pytest.fail(f"missing captured samples {VM_GROUP}")
    g = tmp_path / "g"
    shutil.copytree(VM_GROUP, g)
    sizes = sorted(
        {p.name.split(".")[1] for p in g.glob("hugetlb.*.max")},
        key=lambda s: int(s[:-2]) << {"KB": 0, "MB": 10, "GB": 20}[s[-2:]],
    )
    monkeypatch.setattr(hugetlb, "page_sizes", lambda: tuple(sizes))
    return g


EXPECTED = {
    StatMask.PIDS: {"pids.current", "pids.max"},
    StatMask.CPU: {"cpu.stat"},
    StatMask.MEMORY_STAT: {"memory.stat"},
    StatMask.MEMORY_USAGE: {
        "memory.current",
        "memory.max",
        "memory.peak",
        "memory.swap.current",
        "memory.swap.max",
        "memory.swap.peak",
    },
    StatMask.MEMORY_EVENTS: {"memory.events"},
    StatMask.IO: {"io.stat"},
    StatMask.RDMA: {"rdma.current", "rdma.max"},
    StatMask.MISC: {"misc.current", "misc.max", "misc.events"},
    StatMask.CPUSET: {"cpuset.cpus.effective", "cpuset.mems.effective"},
    StatMask.CPU_PRESSURE: {"cpu.pressure"},
    StatMask.MEMORY_PRESSURE: {"memory.pressure"},
    StatMask.IO_PRESSURE: {"io.pressure"},
}


def _hugetlb_files(g: Path) -> set[str]:
    out = set()
    for size in hugetlb.page_sizes():
        out |= {f"hugetlb.{size}.{x}" for x in ("current", "max", "events", "rsvd.current")}
        out.add(f"hugetlb.{size}.rsvd.max")
    return out


@pytest.mark.parametrize("part", [*EXPECTED, StatMask.HUGETLB], ids=lambda m: m.name)
def test_each_mask_reads_only_its_files(group: Path, part: StatMask) -> None:
    want = _hugetlb_files(group) if part is StatMask.HUGETLB else EXPECTED[part]
    if not part & (StatMask.CPU | StatMask.PSI):  # a controller's files: which are on?
        want = want | {"cgroup.controllers"}
    with CountingDir.at(group) as d:
        collect(d, part)
    assert set(d.asked) == want


def test_all_reads_each_file_once(group: Path) -> None:
    with CountingDir.at(group) as d:
        m = collect(d)
    counts = Counter(d.asked)
    assert max(counts.values()) == 1, counts
    want = set().union(*EXPECTED.values()) | _hugetlb_files(group) | {"cgroup.controllers"}
    assert set(counts) == want
    # and everything read is there
    assert m.pids is not None and m.pids.limit == 64
    assert m.cpu is not None and m.cpu.psi is not None and m.cpu.nr_throttled
    assert m.memory is not None and m.memory.usage_limit == 512 << 20 and m.memory.psi
    assert m.memory_events is not None and m.memory_events.oom_kill
    assert m.io is not None and m.io.usage and m.io.psi is not None
    assert m.rdma is not None and m.rdma.limit is not None
    assert m.hugetlb and m.hugetlb[0].pagesize == "2MB" and m.hugetlb[0].max == 8 << 20
    assert m.misc is not None and m.cpuset is not None and m.cpuset.cpus_effective == (0, 1)


def test_absent_controllers_are_none_and_not_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group with only the core files: cpu.stat and PSI; no other file is tried."""
    monkeypatch.setattr(hugetlb, "page_sizes", lambda: ("2MB", "1GB"))
    (tmp_path / "cgroup.controllers").write_bytes(b"\n")
    (tmp_path / "cgroup.type").write_bytes(b"domain\n")
    (tmp_path / "cpu.stat").write_bytes(b"usage_usec 10\nuser_usec 6\nsystem_usec 4\n")
    (tmp_path / "cpu.pressure").write_bytes(
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    with CountingDir.at(tmp_path) as d:
        m = collect(d)
    assert m.cpu is not None and m.cpu.usage_usec == 10 and m.cpu.nr_periods is None
    assert m.cpu.psi is not None and m.cpu.psi.some is not None and m.cpu.psi.some.total == 5
    assert m.pids is None and m.memory_events is None and m.rdma is None
    assert m.hugetlb is None and m.misc is None and m.cpuset is None
    assert m.memory is None and m.io is None  # no memory.pressure / io.pressure here
    assert sorted(d.asked) == [
        "cgroup.controllers",
        "cpu.pressure",
        "cpu.stat",
        "io.pressure",
        "memory.pressure",
    ]


def test_max_is_u64_max(group: Path) -> None:
    (group / "pids.max").write_bytes(b"max\n")
    (group / "memory.max").write_bytes(b"max\n")
    with Dir.open(str(group)) as d:
        m = collect(d, StatMask.PIDS | StatMask.MEMORY_USAGE)
    assert m.pids is not None and m.pids.limit == U64_MAX == 2**64 - 1
    assert m.memory is not None and m.memory.usage_limit == U64_MAX


def test_malformed_file_names_the_full_path(group: Path) -> None:
    (group / "memory.stat").write_bytes(b"anon 1\nfile 2\nshmem lots\n")
    with Dir.open(str(group)) as d, pytest.raises(InvalidFormatError) as e:
        collect(d)
    assert e.value.path == f"{group}/memory.stat"
    assert f"{group}/memory.stat line 3: 'shmem lots'" in str(e.value)


def test_removed_directory_raises_deleted(group: Path) -> None:
    with Dir.open(str(group)) as d:
        shutil.rmtree(group)
        with pytest.raises(CgroupDeletedError):
            collect(d)


# --- a stat racing the group's removal ---------------------------------------------------
# rmdir removes each controller's files, then the core files, then the directory: a stat
# in between finds files missing in a directory that is still there. Here the files are
# removed by hand and Dir.gone (the wait for the directory to go) is observed.


@pytest.fixture
def gone_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def gone(self: Dir, delays: tuple[float, ...] = ()) -> bool:
        calls.append(self.path)
        return True

    monkeypatch.setattr(Dir, "gone", gone)
    return calls


def test_controller_files_gone_under_a_live_directory_raise(
    group: Path, gone_calls: list[str]
) -> None:
    for f in group.glob("pids.*"):
        f.unlink()  # pids is still in cgroup.controllers: the removal has begun
    with Dir.open(str(group)) as d, pytest.raises(CgroupDeletedError, match="removed"):
        collect(d)
    assert gone_calls == [str(group)]


def test_core_files_gone_raise(group: Path, gone_calls: list[str]) -> None:
    for f in group.glob("cgroup.type"):
        f.unlink()
    (group / "cpu.pressure").unlink()
    with Dir.open(str(group)) as d, pytest.raises(CgroupDeletedError):
        collect(d, StatMask.CPU | StatMask.CPU_PRESSURE)
    assert gone_calls == [str(group)]


def test_an_optional_file_missing_is_not_a_removal(group: Path, gone_calls: list[str]) -> None:
    """memory.swap.peak (Linux 6.5) is absent from this 6.1 capture; memory.peak and
    hugetlb's rsvd files are optional too: none of them is a sign of removal."""
    (group / "memory.peak").unlink()
    for f in group.glob("hugetlb.*.rsvd.*"):
        f.unlink()
    with Dir.open(str(group)) as d:
        m = collect(d)
        assert d.absent > 0
    assert gone_calls == []
    assert m.memory is not None and m.memory.max_usage is None and m.hugetlb is not None


def test_without_the_wait_the_result_stands(group: Path) -> None:
    """A controller file really missing (no removal): after the bounded wait the metrics
    come back with that section absent, as for any absent file."""
    for f in group.glob("misc.*"):
        f.unlink()
    with Dir.open(str(group)) as d:
        m = collect(d, StatMask.MISC)
    assert m.misc is None
