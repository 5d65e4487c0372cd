"""unit: the stat parsers on real kernel output (tests/unit/data) and on the odd cases.

tests/unit/data/vm-6.1 was captured in the vm tier by tests/vm/capture_stat_samples.py
(a group with every controller under load, its OOM-killed child, the root);
tests/unit/data/host-6.18 is the root of this project's host (kernel 6.18).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cgroup2 import InvalidFormatError
from cgroup2.controllers import _parse
from cgroup2.controllers.cpu import parse_cpu_stat
from cgroup2.controllers.cpuset import parse_cpu_list
from cgroup2.controllers.hugetlb import page_size_name, parse_hugetlb_events
from cgroup2.controllers.io import parse_io_stat
from cgroup2.controllers.memory import (
    MEMORY_STAT_KEYS,
    parse_memory_events,
    parse_memory_stat,
)
from cgroup2.controllers.misc import parse_misc
from cgroup2.controllers.psi import PSIData, parse_pressure
from cgroup2.controllers.rdma import RdmaStatEntry, parse_rdma
from cgroup2.stats import U64_MAX

DATA = Path(__file__).parent / "data"
VM = DATA / "vm-6.1"
HOST = DATA / "host-6.18"


def sample(*parts: str) -> bytes:
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"missing captured sample {p}")
    return p.read_bytes()


# --- real kernel output -------------------------------------------------------------------


def test_cpu_stat_vm_group() -> None:
    c = parse_cpu_stat(sample("vm-6.1", "group", "cpu.stat"))
    assert c.usage_usec is not None and c.user_usec is not None and c.system_usec is not None
    assert c.usage_usec > 0
    # usage is user + system, to the rounding of the two
    assert abs(c.usage_usec - c.user_usec - c.system_usec) <= 2
    assert c.nr_periods and c.nr_throttled and c.throttled_usec  # under a 20% quota
    assert c.nr_bursts == 0 and c.burst_usec == 0


def test_cpu_stat_without_the_controller() -> None:
    """The OOM child has no cpu controller: the core keys only, the rest None."""
    c = parse_cpu_stat(sample("vm-6.1", "oom", "cpu.stat"))
    assert c.usage_usec is not None and c.nr_periods is None and c.nr_bursts is None


def test_cpu_stat_host_6_18_unknown_key_kept() -> None:
    c = parse_cpu_stat(sample("host-6.18", "root", "cpu.stat"))
    assert c.usage_usec is not None and c.usage_usec > 0
    assert "nice_usec" in c.other  # a key the reference never knew


def test_memory_stat_vm_group() -> None:
    data = sample("vm-6.1", "group", "memory.stat")
    m = parse_memory_stat(data)
    keys = [line.split()[0].decode() for line in data.splitlines()]
    # every key the kernel printed is somewhere: a named field or other
    for k in keys:
        if k in MEMORY_STAT_KEYS:
            assert getattr(m, k) is not None, k
        else:
            assert k in m.other, k
    assert m.anon is not None and m.anon >= 40 << 20  # the worker's 48 MiB
    assert m.pgfault is not None and m.pgfault > 0
    assert m.workingset_refault is None  # split into _anon/_file since Linux 5.9
    assert "workingset_refault_anon" in m.other
    assert len(keys) > 31


def test_memory_events_vm() -> None:
    ev = parse_memory_events(sample("vm-6.1", "oom", "memory.events"))
    assert ev.oom_kill == 1 and ev.oom is not None and ev.oom >= 1
    assert ev.max is not None and ev.max >= 1 and ev.oom_group_kill == 0


def test_memory_single_values_vm() -> None:
    assert _parse.parse_uint(sample("vm-6.1", "group", "memory.current"), "memory.current") > 0
    assert _parse.parse_limit(sample("vm-6.1", "group", "memory.max"), "memory.max") == 512 << 20
    assert _parse.parse_limit(sample("vm-6.1", "group", "memory.high"), "memory.high") == U64_MAX
    assert _parse.parse_uint(sample("vm-6.1", "group", "memory.peak"), "memory.peak") > 0


def test_pressure_files() -> None:
    for tier, d in (("vm-6.1", "group"), ("vm-6.1", "root"), ("host-6.18", "root")):
        for res in ("cpu", "memory", "io"):
            p = parse_pressure(sample(tier, d, f"{res}.pressure"))
            assert p.some is not None and p.full is not None, (tier, d, res)
            assert 0 <= p.some.avg10 <= 100 and p.some.total >= 0


def test_io_stat_vm() -> None:
    entries = parse_io_stat(sample("vm-6.1", "group", "io.stat"))
    assert entries, "the worker did direct I/O"
    e = max(entries, key=lambda e: e.wbytes or 0)
    assert e.wbytes is not None and e.wbytes >= 8 << 20
    assert e.rbytes is not None and e.rbytes >= 8 << 20
    assert e.dbytes is not None and e.dios is not None


def test_rdma_vm() -> None:
    data = sample("vm-6.1", "group", "rdma.max")
    limits = parse_rdma(data, "rdma.max", limit=True)
    cur = parse_rdma(sample("vm-6.1", "group", "rdma.current"), "rdma.current")
    if not data.strip():
        pytest.skip("the capture VM had no rdma device (see the capture notes)")
    assert RdmaStatEntry("cg2rxe0", 10, U64_MAX) in limits
    assert [c.device for c in cur] == [x.device for x in limits]


def test_hugetlb_vm() -> None:
    files = sorted(p.name for p in (VM / "group").glob("hugetlb.*.current"))
    assert "hugetlb.2MB.current" in files
    assert _parse.parse_uint(sample("vm-6.1", "group", "hugetlb.2MB.current"), "x") == 2 << 20
    assert _parse.parse_limit(sample("vm-6.1", "group", "hugetlb.2MB.max"), "x") == 8 << 20
    assert parse_hugetlb_events(sample("vm-6.1", "group", "hugetlb.2MB.events")) == 0
    assert _parse.parse_limit(sample("vm-6.1", "group", "hugetlb.2MB.rsvd.max"), "x") == U64_MAX


def test_misc_vm() -> None:
    for name in ("misc.current", "misc.max", "misc.events"):
        got = parse_misc(sample("vm-6.1", "group", name), name, limit=name == "misc.max")
        assert isinstance(got, dict)


def test_cpuset_vm() -> None:
    assert parse_cpu_list(sample("vm-6.1", "group", "cpuset.cpus.effective")) == (0, 1)
    assert parse_cpu_list(sample("vm-6.1", "group", "cpuset.mems.effective")) == (0,)


def test_cpuset_bad_element_is_named_briefly() -> None:
    with pytest.raises(InvalidFormatError, match=r"malformed element '0-x': expected N or N-M"):
        parse_cpu_list(b"1,0-x\n")
    huge = b"9" * 5000
    with pytest.raises(InvalidFormatError) as e:
        parse_cpu_list(b"0," + huge + b"\n")
    assert len(str(e.value)) < 400 and "cpuset.cpus.effective line 1" in str(e.value)


def test_pids_vm() -> None:
    assert _parse.parse_uint(sample("vm-6.1", "group", "pids.current"), "pids.current") == 1
    assert _parse.parse_limit(sample("vm-6.1", "group", "pids.max"), "pids.max") == 64


# --- odd and malformed input --------------------------------------------------------------


def test_flat_odd_lines_of_unknown_keys_are_skipped() -> None:
    data = b"anon 4096\n\nweird\nnew_key 7\nanother 1 2\nfuture_float 0.5\nfile 8192\n"
    m = parse_memory_stat(data)
    assert m.anon == 4096 and m.file == 8192
    assert dict(m.other) == {"new_key": 7}


@pytest.mark.parametrize(
    ("data", "lineno"),
    [
        (b"anon 4096\nfile x12\n", 2),
        (b"anon -1\n", 1),
        (b"anon 1_000\n", 1),
        (b"anon\n", 1),
        (b"usage 1\nanon 1 2\n", 2),
        (b"anon " + b"9" * 5000 + b"\n", 1),
    ],
)
def test_flat_malformed_known_key_names_file_and_line(data: bytes, lineno: int) -> None:
    with pytest.raises(InvalidFormatError) as e:
        parse_memory_stat(data)
    assert f"memory.stat line {lineno}:" in str(e.value)


def test_single_value_files() -> None:
    assert _parse.parse_uint(b"42\n", "pids.current") == 42
    assert _parse.parse_limit(b"max\n", "pids.max") == U64_MAX
    assert _parse.parse_limit(b"18446744073709551615\n", "memory.max") == U64_MAX
    for bad in (b"", b"\n", b"-1\n", b"max\n", b"1 2\n", b"0x10\n"):
        with pytest.raises(InvalidFormatError, match=r"pids\.current"):
            _parse.parse_uint(bad, "pids.current")
    with pytest.raises(InvalidFormatError, match=r"memory\.max line 1"):
        _parse.parse_limit(b"maximum\n", "memory.max")


def test_pressure_cases() -> None:
    p = parse_pressure(b"some avg10=1.50 avg60=0.00 avg300=0.10 total=12345\n")
    assert p.some == PSIData(1.5, 0.0, 0.1, 12345) and p.full is None
    p = parse_pressure(b"some avg10=0.00 avg60=0.00 avg300=0.00 total=1 extra=9\nfoo bar\n")
    assert p.some is not None and p.some.total == 1
    for bad in (b"some avg10=nan avg60=0.00 avg300=0.00 total=1\n", b"full avg10=1.00\n"):
        with pytest.raises(InvalidFormatError, match="line 1"):
            parse_pressure(bad, "cpu.pressure")


def test_io_stat_cases() -> None:
    (e,) = parse_io_stat(
        b"8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.vrate=100.00 cost.usage=7 x=?\n"
    )
    assert (e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios, e.dbytes, e.dios) == (
        8, 16, 1, 2, 3, 4, 5, 6
    )
    assert dict(e.other) == {"cost.vrate": 100.0, "cost.usage": 7}
    (old,) = parse_io_stat(b"8:0 rbytes=1 wbytes=2 rios=3 wios=4\n")
    assert old.dbytes is None
    with pytest.raises(InvalidFormatError, match=r"io\.stat line 2"):
        parse_io_stat(b"8:0 rbytes=1\nsda rbytes=1\n")
    with pytest.raises(InvalidFormatError, match="rbytes"):
        parse_io_stat(b"8:0 rbytes=-1\n")


def test_rdma_cases() -> None:
    assert parse_rdma(b"mlx4_0 hca_handle=2 hca_object=max\n", "rdma.max", limit=True) == (
        RdmaStatEntry("mlx4_0", 2, U64_MAX),
    )
    with pytest.raises(InvalidFormatError):
        parse_rdma(b"mlx4_0 hca_handle=max hca_object=1\n", "rdma.current")


def test_misc_cases() -> None:
    assert parse_misc(b"sev 3\nsev_es max\n", "misc.max", limit=True) == {
        "sev": 3,
        "sev_es": U64_MAX,
    }
    assert parse_misc(b"sev.max 2\n", "misc.events") == {"sev.max": 2}
    with pytest.raises(InvalidFormatError):
        parse_misc(b"sev\n", "misc.current")


def test_cpu_list_cases() -> None:
    assert parse_cpu_list(b"0-2,5,7-8\n") == (0, 1, 2, 5, 7, 8)
    assert parse_cpu_list(b"\n") == ()
    assert parse_cpu_list(b"1,,2\n") == (1, 2)  # empty items are skipped, as the kernel does
    for bad in (b"3-1\n", b"a\n", b"1;2\n", b"-1\n"):
        with pytest.raises(InvalidFormatError):
            parse_cpu_list(bad)


def test_page_size_names() -> None:
    assert page_size_name(2048) == "2MB"
    assert page_size_name(1 << 20) == "1GB"
    assert page_size_name(64) == "64KB"
    assert page_size_name(32 << 10) == "32MB"


def test_host_hugepage_sizes_sample() -> None:
    names = sample("host-6.18", "hugepages.txt").decode().split()
    sizes = sorted(int(n[len("hugepages-") : -2]) for n in names)
    assert [page_size_name(s) for s in sizes] == ["2MB", "1GB"]


def test_samples_are_present() -> None:
    assert VM.is_dir() and len(os.listdir(VM / "group")) > 30


def test_pressure_averages_are_exact_and_their_cache_bounded() -> None:
    from cgroup2.controllers import psi

    for i in range(0, 12_000, 7):  # past 100.00 too: the kernel never prints it, the cache holds
        avg = f"{i // 100}.{i % 100:02d}".encode()
        data = (b"some avg10=" + avg + b" avg60=0.00 avg300=1.50 total=9\n"
                b"full avg10=0.00 avg60=" + avg + b" avg300=0.00 total=3\n")
        p = psi.parse_pressure(data)
        assert p.some is not None and p.full is not None
        assert p.some.avg10 == p.full.avg60 == float(avg) and p.some.avg300 == 1.5
        assert (p.some.total, p.full.total) == (9, 3)
    assert len(psi._FLOATS) <= 10_001
