"""unit: the parsers of mountinfo, cgroup.procs, pids.events (``run --summary``) and CPU
lists raise only CgroupError (InvalidFormatError), with a message that names the file and
the line, and within a bound of work (issue 13, item 12); CPU lists that the kernel takes
(blanks, empty items, strides) are taken by ``CPU(cpus=...)``, OCI ``cpu.cpus`` and the
systemd bitmask, and written in the kernel's own form; blkio weights convert as runc's
(issue 13, item 13).

The 2,000-example fuzzing of the same parsers, and the comparison of the CPU lists with
the kernel's ``bitmap_parselist``, are tests/reliability/test_rel_parsers.py.
"""

from __future__ import annotations

import time

import pytest

from cgroup2 import CPU, CgroupError, InvalidFormatError
from cgroup2.cli._summary import _pids_max_hits
from cgroup2.controllers.cpuset import parse_cpu_list
from cgroup2.manager import _pids
from cgroup2.oci import OCISpecError, blkio_weight_to_io_weight, to_resources
from cgroup2.paths import parse_mountinfo
from cgroup2.systemd import cpu_bitmask

MOUNT = "30 24 0:{dev} / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"


class FakeDir:
    """The one method of ``Dir`` that ``_pids_max_hits`` uses: ``try_read``."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def try_read(self, name: str) -> bytes | None:
        return self.files.get(name)


# --- mountinfo --------------------------------------------------------------------------


def test_mountinfo_device_number() -> None:
    (m,) = parse_mountinfo(MOUNT.format(dev="27"))
    assert m.device == 27  # makedev(0, 27)


@pytest.mark.parametrize("dev", ["99999999999999999999", "4294967296", "9" * 5000])
def test_mountinfo_huge_device_number_is_invalid_format(dev: str) -> None:
    text = "1 2 8:1 / / rw - ext4 /dev/sda1 rw\n" + MOUNT.replace("0:{dev}", f"{dev}:{dev}")
    with pytest.raises(InvalidFormatError, match="line 2") as e:
        parse_mountinfo(text)
    assert "device number" in str(e.value) and len(str(e.value)) < 500


# --- cgroup.procs -----------------------------------------------------------------------


def test_pids_parse() -> None:
    assert _pids(b"1\n22\n333\n") == [1, 22, 333]
    assert _pids(b"") == []


@pytest.mark.parametrize("bad", [b"12\nabc\n", b"-1\n", b"+5\n", b"1_0\n", b"9" * 5000 + b"\n"])
def test_pids_non_number_is_invalid_format(bad: bytes) -> None:
    with pytest.raises(InvalidFormatError, match=r"cgroup\.procs line") as e:
        _pids(bad)
    assert len(str(e.value)) < 500


def test_pids_names_the_bad_line() -> None:
    with pytest.raises(InvalidFormatError, match=r"cgroup\.procs line 2: 'abc'"):
        _pids(b"12\nabc\n13\n")


# --- run --summary: pids.events ------------------------------------------------------------


def test_pids_max_hits() -> None:
    assert _pids_max_hits(FakeDir({"pids.events": b"max 3\n"})) == 3  # type: ignore[arg-type]
    assert _pids_max_hits(FakeDir({})) is None  # type: ignore[arg-type]
    assert _pids_max_hits(FakeDir({"pids.events": b""})) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [b"max x\n", b"max -1\n", b"max\n", b"max " + b"9" * 5000])
def test_pids_max_hits_non_number_is_invalid_format(bad: bytes) -> None:
    d = FakeDir({"pids.events": b"max_other 1\n" + bad})
    with pytest.raises(InvalidFormatError, match=r"pids\.events line 2") as e:
        _pids_max_hits(d)  # type: ignore[arg-type]
    assert len(str(e.value)) < 500


# --- CPU lists: the kernel's bound ----------------------------------------------------------


def test_cpu_list_many_huge_ranges_are_refused_fast() -> None:
    data = b",".join([b"0-65536"] * 200) + b"\n"
    t = time.perf_counter()
    with pytest.raises(InvalidFormatError, match="8192"):
        parse_cpu_list(data)
    assert time.perf_counter() - t < 0.1


def test_cpu_list_bound_is_the_kernels() -> None:
    assert parse_cpu_list(b"8191\n") == (8191,)
    assert len(parse_cpu_list(b"0-8191\n")) == 8192
    for bad in (b"8192\n", b"0-8192\n", b"4294967296\n"):
        with pytest.raises(InvalidFormatError, match="below 8192"):
            parse_cpu_list(bad)


def test_cpu_list_total_work_is_bounded() -> None:
    # the longest text the kernel takes (cpuset's max_write_len for 8192 CPUs), all ranges
    data = b",".join([b"0-8191"] * (49_252 // 7))
    t = time.perf_counter()
    assert len(parse_cpu_list(data)) == 8192
    assert time.perf_counter() - t < 1.0
    with pytest.raises(InvalidFormatError, match="longer than"):
        parse_cpu_list(data + b",0-8191" * 10)


# --- item 13: the lists the kernel takes --------------------------------------------------
# (text, what is written: the kernel's own form, as it prints cpuset.cpus back)
KERNEL_LISTS = [
    ("0, 1", "0-1"),
    (",0,1,", "0-1"),
    ("1, 2, 1-2", "1-2"),
    ("0\t1", "0-1"),
    (" 0-1 ", "0-1"),
    ("0 1", "0-1"),
    ("3,1,3", "1,3"),
    ("0-3,5", "0-3,5"),
    ("007", "7"),
    ("0-7:2/4", "0-1,4-5"),
    ("0-9:1/3", "0,3,6,9"),
    ("2-5:8/8", "2-5"),
    ("0-8191", "0-8191"),
]


@pytest.mark.parametrize(("text", "kernel"), KERNEL_LISTS)
def test_cpu_takes_what_the_kernel_takes_and_writes_its_form(text: str, kernel: str) -> None:
    values = CPU(cpus=text, mems=text).values()
    assert [(v.filename, v.value) for v in values] == [
        ("cpuset.cpus", kernel),
        ("cpuset.mems", kernel),
    ]


@pytest.mark.parametrize(("text", "kernel"), KERNEL_LISTS)
def test_oci_cpus_takes_what_the_kernel_takes(text: str, kernel: str) -> None:
    got = to_resources({"cpu": {"cpus": text, "mems": text}}).values()
    assert [(v.filename, v.value) for v in got] == [
        ("cpuset.cpus", kernel),
        ("cpuset.mems", kernel),
    ]


@pytest.mark.parametrize(("text", "kernel"), KERNEL_LISTS)
def test_systemd_bitmask_takes_what_the_kernel_takes(text: str, kernel: str) -> None:
    assert cpu_bitmask(text) == cpu_bitmask(kernel)
    want = {n for part in kernel.split(",") for n in _range(part)}
    mask = cpu_bitmask(text)
    assert {i * 8 + b for i, byte in enumerate(mask) for b in range(8) if byte >> b & 1} == want


def _range(part: str) -> range:
    lo, _, hi = part.partition("-")
    return range(int(lo), int(hi or lo) + 1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("3-1", "not ascending"),
        ("0 - 3", "malformed"),  # the kernel: "-" is not a number (-EINVAL)
        ("-1", "malformed"),
        ("0x1", "malformed"),
        ("1;2", "malformed"),
        ("0-7:5/4", "A <= B"),  # the kernel: -EINVAL
        ("0-7:1/0", "0 < B"),
        ("8192", "below 8192"),  # beyond any kernel's bitmap: -ERANGE
        ("0-99999999999", "below 8192"),
        ("N", "write the numbers"),  # newer kernels only, and machine-dependent
        ("all", "write the numbers"),
        ("0\n1", "newline"),  # the kernel stops at a newline and drops the rest
        ("٣", "malformed"),
    ],
)
def test_cpu_list_refusals_say_why(text: str, why: str) -> None:
    with pytest.raises(CgroupError, match=why):
        CPU(cpus=text)
    with pytest.raises(CgroupError, match="cpu list"):
        cpu_bitmask(text)
    with pytest.raises(OCISpecError, match=r"cpu\.cpus"):
        to_resources({"cpu": {"cpus": text}})


@pytest.mark.parametrize("text", [",", " , ", "\t", "0-7:0/4"])
def test_cpu_list_naming_no_cpu(text: str) -> None:
    # CPU: "" means "not written"; a list that names no CPU is refused rather than
    # written (the kernel would empty the set, which this API does not express)
    with pytest.raises(CgroupError, match="names no CPU"):
        CPU(cpus=text)
    assert cpu_bitmask(text) == b""  # no property sent
    # OCI: as runc, a list without CPUs leaves cpuset alone when the group is made
    assert to_resources({"cpu": {"cpus": text}}).values() == []


# --- item 13: blkio weights ------------------------------------------------------------


def test_blkio_weight_zero_is_unset() -> None:
    assert blkio_weight_to_io_weight(0) == 0  # runc: no io.weight written


@pytest.mark.parametrize("w", [1, 5, 9, 1001, 65535, -1])
def test_blkio_weight_out_of_range_is_refused(w: int) -> None:
    with pytest.raises(CgroupError, match=r"10\.\.1000"):
        blkio_weight_to_io_weight(w)


def test_blkio_weight_ends() -> None:
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(500) == 4950
    assert blkio_weight_to_io_weight(1000) == 10000
