"""unit: the exact message of every refusal of a bad value (Resources, the controllers'
types, OCI conversion), against tests/unit/data/messages.json.

The messages are what a user reads to fix the call: each names the field or spec path,
shows the value (cut at 80 characters) and says what is allowed. Pinned exactly, so that
a mutant that changes a name, a bound or a word is caught (scripts/mutation). After a
deliberate change of a message, regenerate with ``CGROUP2_UPDATE_MESSAGES=1 pytest
tests/unit/test_messages.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgroup2 import (
    BFQ,
    CPU,
    IO,
    RDMA,
    CgroupError,
    CPUMax,
    Entry,
    HugeTlbEntry,
    IOType,
    Memory,
    Pids,
    RDMAEntry,
    Resources,
)
from cgroup2.controllers.io import WeightDevice
from cgroup2.oci import to_resources

DATA = Path(__file__).parent / "data" / "messages.json"
LONG = "x" * 100

CASES: dict[str, Callable[[], Any]] = {
    "cpu.max empty is unset": lambda: CPU(max="").max,
    "cpu.max int": lambda: CPU(max=5),  # type: ignore[arg-type]
    "cpu.max text": lambda: CPU(max="abc"),
    "cpu.max quota 0": lambda: CPUMax.new(0, 100000),
    "cpu.max period 0": lambda: CPUMax.new(1000, 0),
    "cpu.weight 0": lambda: CPU(weight=0),
    "cpu.weight 10001": lambda: CPU(weight=10001),
    "cpu.weight str": lambda: CPU(weight="5"),  # type: ignore[arg-type]
    "cpu.burst -1": lambda: CPU(burst=-1),
    "cpu.idle 2": lambda: CPU(idle=2),  # type: ignore[arg-type]
    "cpus int": lambda: CPU(cpus=5),  # type: ignore[arg-type]
    "cpus bad": lambda: CPU(cpus="0-x"),
    "cpus none named": lambda: CPU(cpus=","),
    "mems none named": lambda: CPU(mems=","),
    "cpus too large": lambda: CPU(cpus="9000"),
    "cpus long": lambda: CPU(cpus="1" * 90),
    "memory.max text": lambda: Memory(max="x"),
    "memory.max -2": lambda: Memory(max=-2),
    "memory.max 2^64": lambda: Memory(max=2**64),
    "memory.max float": lambda: Memory(max=1.5),  # type: ignore[arg-type]
    "memory.swap text": lambda: Memory(swap="lots"),
    "memory.low -3": lambda: Memory(low=-3),
    "memory.min bool": lambda: Memory(min=True),
    "memory.oom_group 2": lambda: Memory(oom_group=2),  # type: ignore[arg-type]
    "pids.max -2": lambda: Pids(max=-2),
    "pids.max text": lambda: Pids(max="many"),
    "pids values max": lambda: [(v.filename, v.value) for v in Pids(max=-1).values()],
    "pids values 0": lambda: [(v.filename, v.value) for v in Pids(max=0).values()],
    "io.bfq int": lambda: IO(bfq=5),  # type: ignore[arg-type]
    "io.bfq weight 0": lambda: BFQ(0),
    "io.weight 0": lambda: IO(weight=0),
    "io.max list": lambda: IO(max="8:0 rbps=1"),  # type: ignore[arg-type]
    "io.max item": lambda: IO(max=[5]),  # type: ignore[list-item]
    "io.weight_device item": lambda: IO(weight_device=[5]),  # type: ignore[list-item]
    "io entry type": lambda: Entry("xbps", 8, 0, 1),  # type: ignore[arg-type]
    "io entry major": lambda: Entry(IOType.READ_BPS, -1, 0, 1),
    "io entry minor": lambda: Entry(IOType.READ_BPS, 8, 2**32, 1),
    "io entry rate": lambda: Entry(IOType.READ_BPS, 8, 0, -5),
    "io entry str": lambda: str(Entry(IOType.WRITE_IOPS, 8, 16, 100)),
    "io entry str max": lambda: str(Entry(IOType.WRITE_IOPS, 8, 16, "max")),
    "weight device 0": lambda: WeightDevice(8, 0, 0),
    "weight device major": lambda: WeightDevice(-1, 0, 100),
    "rdma limit str": lambda: RDMA(limit="x"),  # type: ignore[arg-type]
    "rdma entry device": lambda: RDMAEntry("", 1, 1),
    "rdma entry device space": lambda: RDMAEntry("a b", 1, 1),
    "rdma entry handles": lambda: RDMAEntry("mlx5_0", -2, 1),
    "rdma entry objects": lambda: RDMAEntry("mlx5_0", 1, "many"),  # type: ignore[arg-type]
    "hugetlb size": lambda: HugeTlbEntry("3XB", 1),
    "hugetlb limit": lambda: HugeTlbEntry("2MB", -2),
    "hugetlb size long": lambda: HugeTlbEntry(LONG, 1),
    "resources hugetlb type": lambda: Resources(hugetlb=5),  # type: ignore[arg-type]
    "resources unified key": lambda: Resources(unified={"../x": "1"}),
    "resources unified value": lambda: Resources(unified={"memory.max": 5}),  # type: ignore[dict-item]
    "oci major missing": lambda: to_resources(
        {"blockIO": {"throttleReadBpsDevice": [{"minor": 0, "rate": 1}]}}),
    "oci minor missing": lambda: to_resources(
        {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}}),
    "oci major type": lambda: to_resources(
        {"blockIO": {"throttleReadBpsDevice": [{"major": "8", "minor": 0, "rate": 1}]}}),
    "oci swap without limit": lambda: to_resources({"memory": {"swap": 100}}),
    "oci swap below limit": lambda: to_resources({"memory": {"limit": 200, "swap": 100}}),
    "oci swap -1": lambda: [(v.filename, v.value) for v in to_resources(
        {"memory": {"limit": 200, "swap": -1}}).values()],
    "oci long value": lambda: to_resources({"pids": {"limit": LONG}}),
    "oci bool": lambda: to_resources({"memory": {"disableOOMKiller": "yes"}}),
    "oci blkio weight 5": lambda: to_resources({"blockIO": {"weight": 5}}),
    "oci blkio weight 1001": lambda: to_resources({"blockIO": {"weight": 1001}}),
    "oci blkio weights": lambda: [[(v.filename, v.value) for v in to_resources(
        {"blockIO": {"weight": w}}, bfq=False).values()] for w in (10, 100, 1000)],
    "oci shares": lambda: [[(v.filename, v.value) for v in to_resources(
        {"cpu": {"shares": s}}).values()] for s in (2, 1024, 262144)],
    "oci shares 1": lambda: to_resources({"cpu": {"shares": 1}}),
    "oci shares 0": lambda: [(v.filename, v.value) for v in to_resources(
        {"cpu": {"shares": 0}}).values()],
    "oci unknown key": lambda: to_resources({"memroy": {}}),
    "oci not an object": lambda: to_resources({"memory": 5}),
    "oci warning": lambda: [str(w) for w in _warnings({"memory": {"kernel": 5}})],
    "oci rdma": lambda: to_resources({"rdma": {"mlx5_0": {"hcaHandles": -1}}}),
    "oci hugepage size": lambda: to_resources({"hugepageLimits": [{"pageSize": "2XB",
                                                                  "limit": 1}]}),
}


def _warnings(spec: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    to_resources(spec, warnings=out)
    return out


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        got = call()
    except CgroupError as e:
        return {"error": type(e).__name__, "message": str(e)}
    return {"value": repr(got)}


def test_messages() -> None:
    got = {name: _outcome(call) for name, call in CASES.items()}
    if os.environ.get("CGROUP2_UPDATE_MESSAGES") == "1":
        DATA.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    want = json.loads(DATA.read_text())
    assert set(got) == set(want), "cases added or removed: regenerate the file"
    for name in CASES:
        assert got[name] == want[name], name


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_is_an_error_or_a_value(name: str) -> None:
    """No case raises anything but a CgroupError."""
    _outcome(CASES[name])
