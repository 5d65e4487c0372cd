"""unit: the parsers of mountinfo, cgroup.procs, pids.events (``run --summary``) and CPU
lists raise only CgroupError (InvalidFormatError), with a message that names the file and
the line, and within a bound of work (issue 13, item 12).

The 2,000-example fuzzing of the same parsers is tests/reliability/test_rel_parsers.py.
"""

from __future__ import annotations

import time

import pytest

from cgroup2 import InvalidFormatError
from cgroup2.cli._run import _pids_max_hits
from cgroup2.controllers.cpuset import parse_cpu_list
from cgroup2.manager import _pids
from cgroup2.paths import parse_mountinfo

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
