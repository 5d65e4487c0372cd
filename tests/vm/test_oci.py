"""vm tier: OCI ``linux.resources`` converted by to_resources and applied by Manager.create.

Every file the conversion promised is read back from the kernel (plain reads, not the
library), and the device rules are shown by what a process in the group may open.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Parent

from cgroup2 import Manager, Resources
from cgroup2.oci import to_resources

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"
M = 1024 * 1024


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _enable_in_root(parent: Parent, controllers: list[str]) -> None:
    """Enable controllers in the mount root and the run's parent (the VM is ours)."""
    for d in (parent.mountpoint, parent.fs_path):
        have = _read(os.path.join(d, "cgroup.subtree_control")).split()
        missing = [c for c in controllers if c not in have]
        if missing:
            with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                f.write(" ".join("+" + c for c in missing))


@contextlib.contextmanager
def _created(group: str, res: Resources, mountpoint: str) -> Iterator[Manager]:
    m = Manager.create(group, res, mountpoint=mountpoint)
    try:
        yield m
    finally:
        m.delete(kill=True)


def _assert_files(m: Manager, expected: dict[str, str]) -> None:
    """Each file reads what the test spells out (from the spec and the conversion's
    documented formulas, not from the library's own values(): that would be circular).
    The files a spec does not set keep the kernel's defaults."""
    got = {name: _read(os.path.join(m.path, name)) for name in expected}
    assert got == expected


def _block_device() -> tuple[int, int] | None:
    """major:minor of a whole disk of this machine, from /sys/block/*/dev (an optical
    drive only when there is nothing else)."""
    paths = sorted(glob.glob("/sys/block/*/dev"), key=lambda p: (p.startswith("/sys/block/sr"), p))
    for path in paths:
        name = path.split("/")[3]
        if name.startswith(("loop", "ram", "zram")):
            continue  # not disks: throttling them shows nothing real
        major, minor = _read(path).split(":")
        return int(major), int(minor)
    return None


def _disks() -> list[str]:
    return sorted(os.listdir("/sys/block"))


def _in_group(m: Manager, action: Callable[[], int]) -> int:
    """Run ``action`` in a child process moved into ``m``; return its result (0..255)."""
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 255
        try:
            os.close(go_w)
            os.close(res_r)
            os.read(go_r, 1)
            code = action()
            os.write(res_w, bytes([code]))
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(res_w)
    try:
        m.add_proc(pid)
        os.write(go_w, b"g")
        out = os.read(res_r, 1)
    finally:
        os.close(go_w)
        os.close(res_r)
        os.waitpid(pid, 0)
    assert out, "the child reported nothing"
    return out[0]


def _open_errno(path: str) -> Callable[[], int]:
    def action() -> int:
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError as e:
            return e.errno or 254
        os.close(fd)
        return 0

    return action


SPEC: dict[str, Any] = {
    "cpu": {
        "shares": 5000,
        "quota": 50000,
        "burst": 10000,
        "cpus": "0",
        "mems": "0",
        "idle": 0,
    },
    "memory": {"limit": 64 * M, "reservation": 16 * M, "swap": 96 * M, "kernel": -1},
    "pids": {"limit": 20},
    "unified": {"memory.high": str(48 * M)},
}


def test_cpu_memory_pids_read_back(cg_parent: Parent, cg_path: str) -> None:
    spec = {**SPEC, "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * M}]}
    warnings: list[Any] = []
    res = to_resources(spec, warnings=warnings)
    assert [w.path for w in warnings] == ["linux.resources.memory.kernel"]
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        # what the conversion promised, spelled out (the unit tier's table test has the
        # formulas): shares 5000 -> weight 356 (crun >= 1.23), swap is memory+swap in
        # OCI (96M - 64M), reservation is memory.low
        _assert_files(m, {
            "cpu.weight": "356",
            "cpu.max": "50000 100000",
            "cpu.max.burst": "10000",
            "cpu.idle": "0",
            "cpuset.cpus": "0",
            "cpuset.mems": "0",
            "memory.max": str(64 * M),
            "memory.swap.max": str(32 * M),
            "memory.low": str(16 * M),
            "memory.high": str(48 * M),
            "pids.max": "20",
            "hugetlb.2MB.max": str(4 * M),
            # not in the spec: the kernel's defaults stay
            "memory.min": "0",
        })


def test_limit_minus_one_reads_back_max(cg_parent: Parent, cg_path: str) -> None:
    res = to_resources({"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}})
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        _assert_files(m, {
            "memory.swap.max": "max",
            "memory.max": "max",
            "pids.max": "max",
            "cpu.max": "max 100000",
        })


def _io_spec(major: int, minor: int) -> dict[str, Any]:
    dev = {"major": major, "minor": minor}
    return {
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{**dev, "rate": 1048576}],
            "throttleWriteBpsDevice": [{**dev, "rate": 524288}],
            "throttleReadIOPSDevice": [{**dev, "rate": 1000}],
            "throttleWriteIOPSDevice": [{**dev, "rate": 500}],
            "weightDevice": [{**dev, "weight": 300}],
        }
    }


def test_io_max_read_back(cg_parent: Parent, cg_path: str) -> None:
    """io.max from the throttle lists; io.weight from weight (500 -> 4950: 1 + (w - 10) *
    9999 / 990). weightDevice goes to io.weight only where blk-iocost runs on the disk
    (the bfq test below shows it end to end): not asked for here."""
    dev = _block_device()
    assert dev is not None, f"the vm tier has a disk (--disk): /sys/block has {_disks()}"
    _enable_in_root(cg_parent, ["io"])
    spec = _io_spec(*dev)
    del spec["blockIO"]["weightDevice"]
    res = to_resources(spec, bfq=False)
    major, minor = dev
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        _assert_files(m, {
            "io.weight": "default 4950",
            "io.max": f"{major}:{minor} rbps=1048576 wbps=524288 riops=1000 wiops=500",
        })


def test_io_bfq_weight_and_weight_device(cg_parent: Parent, cg_path: str) -> None:
    """With BFQ as the disk's scheduler: blockIO.weight and weightDevice as written in
    the spec (BFQ's scale is OCI's), the device's line in io.bfq.weight."""
    dev = _block_device()
    assert dev is not None, f"the vm tier has a disk (--disk): /sys/block has {_disks()}"
    _enable_in_root(cg_parent, ["io"])
    subprocess.run(["modprobe", "bfq"], capture_output=True, timeout=60, check=False)
    sched = f"/sys/dev/block/{dev[0]}:{dev[1]}/queue/scheduler"
    before = _read(sched)
    with open(sched, "w") as f:
        f.write("bfq")
    try:
        assert "[bfq]" in _read(sched)
        assert os.path.exists(os.path.join(cg_parent.fs_path, "io.bfq.weight"))
        res = to_resources(_io_spec(*dev))
        major, minor = dev
        with _created(cg_path, res, cg_parent.mountpoint) as m:
            _assert_files(m, {
                "io.bfq.weight": f"default 500\n{major}:{minor} 300",
                "io.max": f"{major}:{minor} rbps=1048576 wbps=524288 riops=1000 wiops=500",
            })
    finally:
        with open(sched, "w") as f:
            f.write(before.split("[", 1)[1].split("]", 1)[0])


def test_device_rules_are_enforced(cg_parent: Parent, cg_path: str) -> None:
    spec = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ],
        "pids": {"limit": 10},
    }
    res = to_resources(spec)
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        _assert_files(m, {"pids.max": "10"})
        assert _in_group(m, _open_errno("/dev/null")) == 0
        assert _in_group(m, _open_errno("/dev/zero")) == errno.EPERM


@pytest.mark.parametrize(
    "name",
    ["crun-spec.json", "crun-spec-rootless.json", "runc-spec.json", "runc-spec-rootless.json"],
)
def test_runtime_default_specs_apply(cg_parent: Parent, cg_path: str, name: str) -> None:
    config = json.loads((DATA / name).read_text())
    res = to_resources(config)
    # the runtimes' default specs set devices only (runc's rootless one: nothing)
    assert (res.devices is not None) == (name != "runc-spec-rootless.json")
    _enable_in_root(cg_parent, ["pids", "memory", "cpu"])
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        assert os.path.isdir(m.path)
        _assert_files(m, {"pids.max": "max", "memory.max": "max", "cpu.max": "max 100000"})
        if res.devices is not None:  # the runtimes' default: deny every device
            assert _in_group(m, _open_errno("/dev/null")) == errno.EPERM
        else:
            assert _in_group(m, _open_errno("/dev/null")) == 0
