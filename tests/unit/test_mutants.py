"""unit: tests written against mutants that survived every tier (issue 19, and
scripts/mutation). Files in an ordinary directory stand in for the group; where the
kernel's way of writing a file matters (io.max merges the keys written into the
device's line), a small stand-in of the kernel's write does it."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cgroup2 import (
    IO,
    Entry,
    HugeTlbEntry,
    InvalidFormatError,
    IOType,
    KernelError,
    Manager,
    Resources,
)
from cgroup2._fs import Dir

IO_MAX_DEFAULT = "8:0 rbps=max wbps=max riops=max wiops=max"


def _kernel_like_write(monkeypatch: pytest.MonkeyPatch, refuse: str) -> list[tuple[str, str]]:
    """Dir.write as the kernel does it for io.max (one line per device, the keys
    written replace those keys only) and refusing every write to ``refuse``. Returns the
    log of writes, in order."""
    log: list[tuple[str, str]] = []
    real = Dir.write

    def write(self: Dir, name: str, value: str) -> None:
        log.append((name, value))
        if name == refuse:
            raise KernelError(errno.EINVAL, self.file_path(name), op="write", value=value)
        if name == "io.max":
            dev, *kv = value.split()
            lines = {}
            with open(self.file_path(name)) as f:
                for line in f.read().splitlines():
                    d, *rest = line.split()
                    lines[d] = dict(x.split("=") for x in rest)
            cur = lines.setdefault(dev, dict.fromkeys(("rbps", "wbps", "riops", "wiops"), "max"))
            cur.update(dict(x.split("=") for x in kv))
            with open(self.file_path(name), "w") as f:
                f.writelines(f"{d} " + " ".join(f"{k}={v}" for k, v in c.items()) + "\n"
                             for d, c in lines.items())
            return
        real(self, name, value)

    monkeypatch.setattr(Dir, "write", write)
    return log


def test_update_rolls_back_in_reverse_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two io.max writes for one device, then a refused write: undoing them in the
    order they were written would put back the state between the two (rbps=1M);
    undone last-first, the device's line is what it was."""
    g = tmp_path / "g"
    g.mkdir()
    (g / "io.max").write_text(IO_MAX_DEFAULT + "\n")
    (g / "hugetlb.2MB.max").write_text("max\n")
    log = _kernel_like_write(monkeypatch, refuse="hugetlb.2MB.max")  # written after io.max
    m = Manager(str(tmp_path), "/g")
    io = IO(max=[Entry(IOType.READ_BPS, 8, 0, 1 << 20), Entry(IOType.WRITE_BPS, 8, 0, 2 << 20)])
    with pytest.raises(KernelError):
        m.update(Resources(io=io, hugetlb=[HugeTlbEntry("2MB", 0)]))
    assert (g / "io.max").read_text() == IO_MAX_DEFAULT + "\n"
    io_writes = [v for n, v in log if n == "io.max"]
    assert io_writes[:2] == ["8:0 rbps=1048576", "8:0 wbps=2097152"]
    # the undo: the second write's old line first, then the first's
    assert io_writes[2:] == ["8:0 rbps=1048576 wbps=max riops=max wiops=max", IO_MAX_DEFAULT]


def test_create_refuses_a_page_size_before_changing_any_ancestor(tmp_path: Path) -> None:
    """A huge page size the kernel does not offer is refused before anything is made or
    enabled: no directory, and the mount root's cgroup.subtree_control as it was (a later
    check of the group's files gives the same message, but only after the ancestors'
    controllers were enabled and the directories made)."""
    from cgroup2 import CgroupError
    from cgroup2.controllers.hugetlb import page_sizes

    offered = page_sizes()
    assert offered, "this machine lists no huge page size in /sys/kernel/mm/hugepages"
    bad = next(s for s in ("64KB", "32MB", "16GB", "2MB", "1GB") if s not in offered)
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids hugetlb\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    with pytest.raises(CgroupError) as e:
        Manager.create(
            "/a/b", Resources(hugetlb=[HugeTlbEntry(bad, 0)]), mountpoint=str(tmp_path)
        )
    assert f"invalid hugetlb page size {bad!r}" in str(e.value)
    assert "nothing was written" in str(e.value)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["cgroup.controllers", "cgroup.subtree_control"]
    assert (tmp_path / "cgroup.subtree_control").read_text() == ""


def test_run_summary_shows_pids_max_without_the_holder(tmp_path: Path) -> None:
    """cgroup2 run --systemd raises pids.max by one for its holder process (it keeps the
    scope alive); the summary shows the limit the user asked for, and "max" stays max."""
    from cgroup2.cli._summary import collect_summary

    g = tmp_path / "g"
    g.mkdir()
    (g / "cgroup.controllers").write_text("pids\n")
    (g / "cpu.stat").write_text("usage_usec 10\nuser_usec 6\nsystem_usec 4\n")
    (g / "pids.current").write_text("1\n")
    (g / "pids.events").write_text("max 2\n")
    (g / "pids.max").write_text("17\n")
    m = Manager(str(tmp_path), "/g")
    s = collect_summary(m, status=0, sig=None, wall=0.5, pids_extra=1)
    assert (s.pids_max, s.pids_max_hits, s.user_usec) == (16, 2, 6)
    assert collect_summary(m, status=0, sig=None, wall=0.5).pids_max == 17
    (g / "pids.max").write_text("max\n")
    assert collect_summary(m, status=0, sig=None, wall=0.5, pids_extra=1).pids_max == 2**64 - 1


# --- messages and names the kernel-facing code prints (mutants of text survived) ---------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x04, "Add32Imm"), (0x0C, "Add32Reg"), (0x07, "AddImm"), (0x0F, "AddReg"),
        (0x74, "RSh32Imm"), (0x7F, "RShReg"), (0xB4, "Mov32Imm"), (0xBC, "Mov32Reg"),
        (0x55, "JNEImm"), (0x5D, "JNEReg"), (0x56, "JNE32Imm"), (0x5E, "JNE32Reg"),
        (0x16, "JEq32Imm"), (0x1E, "JEq32Reg"), (0x95, "Exit"), (0x85, "Call"),
        (0x61, "LdXMemW"), (0x79, "LdXMemDW"),
        (0xFF, "Unknown(0xff)"), (0xE4, "Unknown(0xe4)"), (0xE6, "Unknown(0xe6)"),
    ],
)
def test_opcode_names(code: int, name: str) -> None:
    """eBPF opcodes by the reference's names (class | op | source): the 32-bit ALU and
    JMP32 classes carry "32", the X source "Reg", the K source "Imm"."""
    from cgroup2.devices.asm import opcode_name

    assert opcode_name(code) == name


def test_rdma_limit_must_be_a_sequence_of_entries() -> None:
    from cgroup2 import RDMA, CgroupError

    for bad, msg in [
        ("x", "cgroups: invalid rdma.max 'x': must be a sequence of RDMAEntry"),
        (5, "cgroups: invalid rdma.max 5: must be a sequence of RDMAEntry"),
        ([1], "cgroups: invalid rdma.max 1: must be an RDMAEntry"),
    ]:
        with pytest.raises(CgroupError) as e:
            RDMA(limit=bad)  # type: ignore[arg-type]
        assert str(e.value) == msg


def test_cpu_list_numbers() -> None:
    from cgroup2.controllers.cpuset import parse_cpu_list

    assert parse_cpu_list(b"007,10,8191\n") == (7, 10, 8191)
    assert parse_cpu_list(b"000000000001") == (1,)  # leading zeros do not count
    head = "cgroups: parsing file with invalid format failed: cpuset.cpus.effective line 1:"
    tail = (
        "is too large: CPU and memory node numbers must be below 8192 "
        "(the kernel's largest NR_CPUS)"
    )
    for text, shown in [
        ("8192", "8192"),
        ("9" * 20, "9" * 20),  # shown whole up to 20 digits
        ("9" * 21, "9" * 20 + "..."),
    ]:
        with pytest.raises(InvalidFormatError) as e:
            parse_cpu_list(text.encode())
        assert str(e.value) == f"{head} {text!r}: {shown} {tail}"


@pytest.mark.parametrize(
    "line",
    [
        "some avg10=1.00 avg60=2.00 avg300=3.00",
        "some avg10=1.00 avg60=2.00 total=3",
        "some avg10=1.00 avg300=2.00 total=3",
        "some avg60=1.00 avg300=2.00 total=3",
    ],
)
def test_pressure_line_needs_every_field(line: str) -> None:
    from cgroup2.controllers.psi import parse_pressure

    with pytest.raises(InvalidFormatError) as e:
        parse_pressure(line.encode() + b"\n", "io.pressure")
    assert str(e.value) == (
        f"cgroups: parsing file with invalid format failed: io.pressure line 1: {line!r}: "
        "expected 'avg10=<x.xx> avg60=<x.xx> avg300=<x.xx> total=<n>'"
    )
