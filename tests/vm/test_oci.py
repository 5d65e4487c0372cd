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

from cgroup2 import Manager, Resources, to_resources
from cgroup2.resources import Value

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


_IO_MAX_KEYS = ("rbps", "wbps", "riops", "wiops")  # the order io.max shows them in


def _expected(values: list[Value]) -> dict[str, str]:
    """What each file reads back after ``values`` were written to a new group."""
    out: dict[str, str] = {}
    io_max: dict[str, dict[str, str]] = {}
    for v in values:
        if v.filename == "io.max":
            dev, setting = v.value.split(" ")
            key, rate = setting.split("=")
            io_max.setdefault(dev, {})[key] = rate
        elif v.filename in ("io.weight", "io.bfq.weight"):
            out[v.filename] = f"default {v.value}"
        else:
            out[v.filename] = v.value
    if io_max:
        out["io.max"] = "\n".join(
            f"{dev} " + " ".join(f"{k}={lim.get(k, 'max')}" for k in _IO_MAX_KEYS)
            for dev, lim in io_max.items()
        )
    return out


@contextlib.contextmanager
def _created(group: str, res: Resources, mountpoint: str) -> Iterator[Manager]:
    m = Manager.create(group, res, mountpoint=mountpoint)
    try:
        yield m
    finally:
        m.delete(kill=True)


def _assert_reads_back(m: Manager, res: Resources) -> dict[str, str]:
    expected = _expected(res.values())
    got = {name: _read(os.path.join(m.path, name)) for name in expected}
    assert got == expected
    return got


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


def _devices_supported() -> str | None:
    from cgroup2 import devices

    if getattr(devices, "apply_device_rules", None) is None:
        return "cgroup2.devices has no apply_device_rules yet (device rules not implemented)"
    return None


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
    spec = dict(SPEC)
    if os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        spec["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * M}]
    warnings: list[Any] = []
    res = to_resources(spec, warnings=warnings)
    assert [w.path for w in warnings] == ["linux.resources.memory.kernel"]
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        got = _assert_reads_back(m, res)
    # what the conversion promised, spelled out (the table test has the formulas)
    assert got["cpu.weight"] == "356"
    assert got["cpu.max"] == "50000 100000"
    assert got["memory.swap.max"] == str(32 * M)
    assert got["memory.max"] == str(64 * M)
    assert got["memory.low"] == str(16 * M)
    assert got["pids.max"] == "20"


def test_limit_minus_one_reads_back_max(cg_parent: Parent, cg_path: str) -> None:
    res = to_resources({"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}})
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        got = _assert_reads_back(m, res)
    assert got == {
        "memory.swap.max": "max",
        "memory.max": "max",
        "pids.max": "max",
        "cpu.max": "max 100000",
    }


def _io_spec(major: int, minor: int) -> dict[str, Any]:
    dev = {"major": major, "minor": minor}
    return {
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{**dev, "rate": 1048576}],
            "throttleWriteBpsDevice": [{**dev, "rate": 524288}],
            "throttleReadIOPSDevice": [{**dev, "rate": 1000}],
            "throttleWriteIOPSDevice": [{**dev, "rate": 500}],
        }
    }


def test_io_weight_and_max_read_back(cg_parent: Parent, cg_path: str) -> None:
    dev = _block_device()
    if dev is None:
        pytest.skip(f"no disk in /sys/block ({os.listdir('/sys/block')}): io.max needs one")
    _enable_in_root(cg_parent, ["io"])
    if not os.path.exists(os.path.join(cg_parent.fs_path, "io.weight")):
        pytest.skip("this kernel has no io.weight (no blk-iocost)")
    print(f"io device {dev} of {sorted(os.listdir('/sys/block'))}")
    res = to_resources(_io_spec(*dev), bfq=False)
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        got = _assert_reads_back(m, res)
    major, minor = dev
    assert got["io.weight"] == "default 4950"
    assert got["io.max"] == f"{major}:{minor} rbps=1048576 wbps=524288 riops=1000 wiops=500"


def test_io_bfq_weight_reads_back(cg_parent: Parent, cg_path: str) -> None:
    dev = _block_device()
    if dev is None:
        pytest.skip(f"no disk in /sys/block ({os.listdir('/sys/block')}): io.max needs one")
    _enable_in_root(cg_parent, ["io"])
    bfq_file = os.path.join(cg_parent.fs_path, "io.bfq.weight")
    if not os.path.exists(bfq_file) and os.environ.get("CGROUP2_TIER") == "vm":
        # the VM's kernel has BFQ as a module; loading it adds io.bfq.weight to groups
        subprocess.run(["modprobe", "bfq"], capture_output=True, timeout=60, check=False)
    if not os.path.exists(bfq_file):
        pytest.skip("the BFQ scheduler is not loaded in this kernel: no io.bfq.weight")
    res = to_resources(_io_spec(*dev))
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        got = _assert_reads_back(m, res)
    assert got["io.bfq.weight"] == "default 500"


def test_device_rules_are_enforced(cg_parent: Parent, cg_path: str) -> None:
    why = _devices_supported()
    if why:
        pytest.skip(why)
    spec = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ],
        "pids": {"limit": 10},
    }
    res = to_resources(spec)
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        _assert_reads_back(m, res)
        assert _in_group(m, _open_errno("/dev/null")) == 0
        assert _in_group(m, _open_errno("/dev/zero")) == errno.EPERM


@pytest.mark.parametrize(
    "name",
    ["crun-spec.json", "crun-spec-rootless.json", "runc-spec.json", "runc-spec-rootless.json"],
)
def test_runtime_default_specs_apply(cg_parent: Parent, cg_path: str, name: str) -> None:
    config = json.loads((DATA / name).read_text())
    res = to_resources(config)
    if res.devices is not None:
        why = _devices_supported()
        if why:
            pytest.skip(why)
    with _created(cg_path, res, cg_parent.mountpoint) as m:
        assert os.path.isdir(m.path)
        _assert_reads_back(m, res)
        if res.devices is not None:  # the runtimes' default: deny every device
            assert _in_group(m, _open_errno("/dev/null")) == errno.EPERM
        else:
            assert _in_group(m, _open_errno("/dev/null")) == 0
