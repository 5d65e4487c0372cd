"""unit: each controller's reader on a whole group directory (files in an ordinary
directory stand in for the kernel's): every file's value lands in its field, a limit
file reads "max" as U64_MAX, an absent file leaves exactly its part out, and a bad file
is named in the error. Written against mutants that survived (scripts/mutation)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgroup2 import InvalidFormatError
from cgroup2._fs import Dir
from cgroup2.controllers.cpu import read_cpu
from cgroup2.controllers.cpuset import read_cpuset
from cgroup2.controllers.hugetlb import page_sizes, read_hugetlb
from cgroup2.controllers.memory import read_memory
from cgroup2.controllers.misc import read_misc
from cgroup2.controllers.rdma import read_rdma
from cgroup2.stats import U64_MAX

PSI = (
    "some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
)


def _group(tmp_path: Path, files: dict[str, str]) -> Path:
    g = tmp_path / "g"
    g.mkdir(exist_ok=True)
    for name, text in files.items():
        (g / name).write_text(text)
    return g


def _read(g: Path, reader: Callable[..., Any], **kw: Any) -> Any:
    with Dir.open(str(g)) as d:
        return reader(d, **kw)


def _bad(name: str, good: str) -> str:
    """A malformed version of ``good``: a number that is not one, in each file's shape."""
    if name.endswith(".pressure"):
        return "some avg10=x avg60=2.00 avg300=3.00 total=4\n"
    first = good.splitlines()[0]
    if "=" in first:  # rdma: DEVICE key=value...
        return first.split()[0] + " hca_handle=-1 hca_object=3\n"
    if " " in first:  # flat keyed: KEY VALUE
        return first.split()[0] + " -1\n"
    return "-1\n"


def _each_file_named_when_bad(
    tmp_path: Path, files: dict[str, str], reader: Callable[..., Any], bad: str | None = None
) -> None:
    for name in files:
        g = _group(tmp_path, {**files, name: bad or _bad(name, files[name])})
        with pytest.raises(InvalidFormatError) as e:
            _read(g, reader)
        # the file by its exact name, as the parse error puts it
        assert f"failed: {name} line " in str(e.value), (name, str(e.value))
        (g / name).write_text(files[name])


MEMORY = {
    "memory.stat": "anon 10\nfile 20\nkernel 30\n",
    "memory.current": "100\n",
    "memory.max": "200\n",
    "memory.peak": "150\n",
    "memory.swap.current": "5\n",
    "memory.swap.max": "max\n",
    "memory.swap.peak": "7\n",
    "memory.pressure": PSI,
}


def test_memory_every_file(tmp_path: Path) -> None:
    g = _group(tmp_path, MEMORY)
    m = _read(g, read_memory)
    assert (m.anon, m.file, m.other) == (10, 20, {"kernel": 30})
    assert (m.usage, m.usage_limit, m.max_usage) == (100, 200, 150)
    assert (m.swap_usage, m.swap_limit, m.swap_max_usage) == (5, U64_MAX, 7)
    assert m.psi is not None and m.psi.some.total == 4 and m.psi.full.total == 5
    (g / "memory.max").write_text("max\n")
    (g / "memory.swap.max").write_text("9\n")
    m = _read(g, read_memory)
    assert (m.usage_limit, m.swap_limit) == (U64_MAX, 9)
    _each_file_named_when_bad(tmp_path, MEMORY, read_memory)


def test_memory_absent_files(tmp_path: Path) -> None:
    g = _group(tmp_path, MEMORY)
    (g / "memory.swap.current").unlink()  # no swap accounting: no swap file is read
    m = _read(g, read_memory)
    assert (m.swap_usage, m.swap_limit, m.swap_max_usage) == (None, None, None)
    assert m.usage == 100
    for name in ("memory.peak", "memory.max"):
        (g / name).unlink()
    m = _read(g, read_memory)
    assert (m.usage, m.usage_limit, m.max_usage) == (100, None, None)
    (g / "memory.current").unlink()  # the root: stat only
    m = _read(g, read_memory)
    assert m.usage is None and m.anon == 10
    m = _read(g, read_memory, stat=False)  # nothing asked that is there, but pressure
    assert m is not None and m.anon is None and m.psi is not None
    assert _read(g, read_memory, stat=False, pressure=False) is None
    (g / "memory.stat").unlink()  # controller off: nothing else is tried
    (g / "memory.current").write_text("100\n")
    m = _read(g, read_memory, pressure=False)
    assert m is None
    m = _read(g, read_memory, stat=False, pressure=False)
    assert m is not None and m.usage == 100


MISC = {
    "misc.current": "sev 1\nsev_es 0\n",
    "misc.max": "sev 4\nsev_es max\ntdx 2\n",
    "misc.events": "sev.max 3\nsev_es.max 0\n",
}


def test_misc_every_file(tmp_path: Path) -> None:
    g = _group(tmp_path, MISC)
    got = _read(g, read_misc)
    assert [(x.name, x.current, x.max, x.failcnt) for x in got] == [
        ("sev", 1, 4, 3),
        ("sev_es", 0, U64_MAX, 0),
        ("tdx", None, 2, None),  # listed in misc.max only: after misc.current's
    ]
    _each_file_named_when_bad(tmp_path, MISC, read_misc)
    (g / "misc.max").unlink()
    (g / "misc.events").unlink()
    got = _read(g, read_misc)
    assert [(x.name, x.current, x.max, x.failcnt) for x in got] == [
        ("sev", 1, None, None),
        ("sev_es", 0, None, None),
    ]
    (g / "misc.current").unlink()
    assert _read(g, read_misc) is None


def test_misc_current_refuses_max(tmp_path: Path) -> None:
    g = _group(tmp_path, {**MISC, "misc.current": "sev max\n"})
    with pytest.raises(InvalidFormatError, match=r"misc\.current"):
        _read(g, read_misc)


def test_hugetlb_every_file(tmp_path: Path) -> None:
    sizes = page_sizes()
    assert sizes, "this machine lists no huge page size"
    files: dict[str, str] = {}
    for i, s in enumerate(sizes):
        files |= {
            f"hugetlb.{s}.current": f"{10 + i}\n",
            f"hugetlb.{s}.max": "max\n" if i else "4194304\n",
            f"hugetlb.{s}.events": f"max {i + 1}\n",
            f"hugetlb.{s}.rsvd.current": f"{20 + i}\n",
            f"hugetlb.{s}.rsvd.max": "max\n" if i else "8388608\n",
        }
    g = _group(tmp_path, files)
    got = _read(g, read_hugetlb)
    assert [(h.pagesize, h.current, h.max, h.failcnt, h.rsvd_current, h.rsvd_max)
            for h in got] == [
        (s, 10 + i, U64_MAX if i else 4194304, i + 1, 20 + i, U64_MAX if i else 8388608)
        for i, s in enumerate(sizes)
    ]
    _each_file_named_when_bad(tmp_path, files, read_hugetlb)
    first = sizes[0]
    (g / f"hugetlb.{first}.rsvd.max").unlink()
    (g / f"hugetlb.{first}.events").unlink()
    (g / f"hugetlb.{first}.max").unlink()
    h = _read(g, read_hugetlb)[0]
    assert (h.current, h.max, h.failcnt, h.rsvd_current, h.rsvd_max) == (10, None, None, 20, None)
    (g / f"hugetlb.{first}.rsvd.current").unlink()
    h = _read(g, read_hugetlb)[0]
    assert (h.rsvd_current, h.rsvd_max) == (None, None)
    if len(sizes) > 1:  # a later size missing is left out; the first missing: controller off
        (g / f"hugetlb.{sizes[1]}.current").unlink()
        assert [h.pagesize for h in _read(g, read_hugetlb)] == [first, *sizes[2:]]
    (g / f"hugetlb.{first}.current").unlink()
    assert _read(g, read_hugetlb) is None


def test_cpu_stat_and_pressure(tmp_path: Path) -> None:
    files = {"cpu.stat": "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_bursts 1\nextra 9\n",
             "cpu.pressure": PSI}
    g = _group(tmp_path, files)
    c = _read(g, read_cpu)
    assert (c.usage_usec, c.user_usec, c.system_usec, c.nr_bursts) == (7, 5, 2, 1)
    assert c.other == {"extra": 9} and c.psi.some.avg10 == 1.0
    _each_file_named_when_bad(tmp_path, files, read_cpu)
    c = _read(g, read_cpu, pressure=False)
    assert c.psi is None and c.usage_usec == 7
    c = _read(g, read_cpu, stat=False)
    assert c.usage_usec is None and c.psi is not None
    assert _read(g, read_cpu, stat=False, pressure=False) is None
    (g / "cpu.stat").unlink()
    c = _read(g, read_cpu)
    assert c is not None and c.usage_usec is None and c.psi is not None
    (g / "cpu.pressure").unlink()
    assert _read(g, read_cpu) is None


def test_cpuset_effective_lists(tmp_path: Path) -> None:
    files = {"cpuset.cpus.effective": "0-2,5\n", "cpuset.mems.effective": "0,1\n"}
    g = _group(tmp_path, files)
    c = _read(g, read_cpuset)
    assert (c.cpus_effective, c.mems_effective) == ((0, 1, 2, 5), (0, 1))
    _each_file_named_when_bad(tmp_path, files, read_cpuset, bad="0-x\n")
    (g / "cpuset.mems.effective").unlink()
    assert _read(g, read_cpuset).mems_effective == ()
    (g / "cpuset.cpus.effective").unlink()
    assert _read(g, read_cpuset) is None


def test_rdma_current_and_max(tmp_path: Path) -> None:
    files = {"rdma.current": "mlx5_0 hca_handle=2 hca_object=3\n",
             "rdma.max": "mlx5_0 hca_handle=10 hca_object=max\n"}
    g = _group(tmp_path, files)
    r = _read(g, read_rdma)
    ((cur,), (lim,)) = r.current, r.limit
    assert (cur.device, cur.hca_handles, cur.hca_objects) == ("mlx5_0", 2, 3)
    assert (lim.device, lim.hca_handles, lim.hca_objects) == ("mlx5_0", 10, U64_MAX)
    _each_file_named_when_bad(tmp_path, files, read_rdma)
    g2 = _group(tmp_path, {**files, "rdma.current": "mlx5_0 hca_handle=max hca_object=3\n"})
    with pytest.raises(InvalidFormatError, match=r"rdma\.current"):
        _read(g2, read_rdma)
    (g / "rdma.current").write_text(files["rdma.current"])
    (g / "rdma.max").unlink()
    assert _read(g, read_rdma).limit is None
    (g / "rdma.current").unlink()
    assert _read(g, read_rdma) is None
