"""unit: OCI ``linux.resources`` conversion, branch by branch, against a recorded outcome.

Each case is a spec; its outcome (the :class:`Resources` repr and every warning, or the
error's type and exact message) is pinned in ``tests/unit/data/oci-outcomes.json``, so
that a mutant of ``cgroup2/oci.py`` that changes a value, a JSON path, a bound, a
warning or a word of a message is caught (``scripts/mutation``). The figures were read
against the runtime-spec (config-linux.md) and runc's conversion when recorded. After a
deliberate change, regenerate with ``CGROUP2_UPDATE_OCI=1 pytest
tests/unit/test_mutants_oci.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from cgroup2 import CgroupError
from cgroup2.oci import (
    OCISpecError,
    blkio_weight_to_io_weight,
    convert_resources,
    cpu_shares_to_weight,
    to_resources,
)

DATA = Path(__file__).parent / "data" / "oci-outcomes.json"
R = "x" * 100


def dev(**kw: Any) -> dict[str, Any]:
    return {"major": 8, "minor": 0, **kw}


# name -> (spec, bfq)
CASES: dict[str, tuple[Any, bool]] = {
    # --- the whole config, or linux.resources -----------------------------------------
    "config": ({"ociVersion": "1.0.2", "linux": {"resources": {"pids": {"limit": 5}}}}, True),
    "config no linux": ({"ociVersion": "1.0.2"}, True),
    "config process only": ({"process": {}, "linux": {}}, True),
    "config linux only": ({"linux": {"resources": {"pids": {"limit": 3}}}}, True),
    "config linux null resources": ({"linux": {"resources": None}}, True),
    "config linux not object": ({"linux": 5}, True),
    "config resources not object": ({"linux": {"resources": [1]}}, True),
    "spec not object": ([1], True),
    "spec mapping proxy": (MappingProxyType({"pids": {"limit": 7}}), True),
    "empty": ({}, True),
    "unknown key": ({"memroy": {}, "pids": {"limit": 1, "max": 2}}, True),
    "non-string key": ({1: 2}, True),
    "long value": ({"pids": {"limit": R}}, True),
    # --- cpu --------------------------------------------------------------------------
    "cpu empty": ({"cpu": {}}, True),
    "cpu null": ({"cpu": None}, True),
    "cpu list": ({"cpu": [1]}, True),
    "cpu shares": ({"cpu": {"shares": 1024}}, True),
    "cpu shares 2": ({"cpu": {"shares": 2}}, True),
    "cpu shares 3": ({"cpu": {"shares": 3}}, True),
    "cpu shares 262143": ({"cpu": {"shares": 262143}}, True),
    "cpu shares 262144": ({"cpu": {"shares": 262144}}, True),
    "cpu shares huge": ({"cpu": {"shares": 2**64 - 1}}, True),
    "cpu shares 2**64": ({"cpu": {"shares": 2**64}}, True),
    "cpu shares 0": ({"cpu": {"shares": 0}}, True),
    "cpu shares -1": ({"cpu": {"shares": -1}}, True),
    "cpu shares bool": ({"cpu": {"shares": True}}, True),
    "cpu shares float": ({"cpu": {"shares": 1.5}}, True),
    "cpu quota": ({"cpu": {"quota": 50000}}, True),
    "cpu quota period": ({"cpu": {"quota": 50000, "period": 20000}}, True),
    "cpu quota -1 period": ({"cpu": {"quota": -1, "period": 20000}}, True),
    "cpu quota 0 period": ({"cpu": {"quota": 0, "period": 20000}}, True),
    "cpu quota -1": ({"cpu": {"quota": -1}}, True),
    "cpu quota -2": ({"cpu": {"quota": -2}}, True),
    "cpu quota small": ({"cpu": {"quota": 999}}, True),
    "cpu quota huge": ({"cpu": {"quota": 2**63 - 1}}, True),
    "cpu quota 2**63": ({"cpu": {"quota": 2**63}}, True),
    "cpu period": ({"cpu": {"period": 20000}}, True),
    "cpu period small": ({"cpu": {"period": 999}}, True),
    "cpu period 0": ({"cpu": {"period": 0}}, True),
    "cpu period -1": ({"cpu": {"period": -1}}, True),
    "cpu burst": ({"cpu": {"burst": 1000}}, True),
    "cpu burst 0": ({"cpu": {"burst": 0}}, True),
    "cpu burst and quota": ({"cpu": {"quota": 50000, "burst": 60000}}, True),
    "cpu idle 1": ({"cpu": {"idle": 1}}, True),
    "cpu idle 0": ({"cpu": {"idle": 0}}, True),
    "cpu idle 2": ({"cpu": {"idle": 2}}, True),
    "cpu idle -1": ({"cpu": {"idle": -1}}, True),
    "cpu cpus": ({"cpu": {"cpus": "0, 1-2"}}, True),
    "cpu mems": ({"cpu": {"mems": "0"}}, True),
    "cpu cpus empty": ({"cpu": {"cpus": "", "mems": ","}}, True),
    "cpu cpus bad": ({"cpu": {"cpus": "0-x"}}, True),
    "cpu mems bad": ({"cpu": {"mems": "2-1"}}, True),
    "cpu cpus int": ({"cpu": {"cpus": 1}}, True),
    "cpu realtime": ({"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000}}, True),
    "cpu realtime 0": ({"cpu": {"realtimeRuntime": 0, "realtimePeriod": 0}}, True),
    "cpu realtime -1": ({"cpu": {"realtimeRuntime": -1, "realtimePeriod": -1}}, True),
    "cpu realtime -2": ({"cpu": {"realtimeRuntime": -2}}, True),
    "cpu realtime period -2": ({"cpu": {"realtimePeriod": -2}}, True),
    "cpu all": (
        {
            "cpu": {
                "shares": 512,
                "quota": 20000,
                "period": 50000,
                "burst": 10000,
                "idle": 0,
                "cpus": "1",
                "mems": "0",
            }
        },
        True,
    ),
    # --- memory -----------------------------------------------------------------------
    "memory empty": ({"memory": {}}, True),
    "memory not object": ({"memory": 5}, True),
    "memory limit": ({"memory": {"limit": 1 << 20}}, True),
    "memory limit -1": ({"memory": {"limit": -1}}, True),
    "memory limit -2": ({"memory": {"limit": -2}}, True),
    "memory limit 0": ({"memory": {"limit": 0}}, True),
    "memory limit 0 swap": ({"memory": {"limit": 0, "swap": 100}}, True),
    "memory reservation": ({"memory": {"reservation": 4096}}, True),
    "memory reservation 0": ({"memory": {"reservation": 0}}, True),
    "memory reservation -1": ({"memory": {"reservation": -1}}, True),
    "memory swap": ({"memory": {"limit": 100, "swap": 300}}, True),
    "memory swap equal": ({"memory": {"limit": 100, "swap": 100}}, True),
    "memory swap below": ({"memory": {"limit": 200, "swap": 100}}, True),
    "memory swap -1": ({"memory": {"limit": 200, "swap": -1}}, True),
    "memory swap limit -1": ({"memory": {"limit": -1, "swap": 300}}, True),
    "memory swap no limit": ({"memory": {"swap": 300}}, True),
    "memory swap -1 no limit": ({"memory": {"swap": -1}}, True),
    "memory swap 0": ({"memory": {"limit": 100, "swap": 0}}, True),
    "memory swap 0 limit -1": ({"memory": {"limit": -1, "swap": 0}}, True),
    "memory kernel": ({"memory": {"kernel": 5, "kernelTCP": -1}}, True),
    "memory kernel -2": ({"memory": {"kernelTCP": -2}}, True),
    "memory swappiness": ({"memory": {"swappiness": 60}}, True),
    "memory swappiness -1": ({"memory": {"swappiness": -1}}, True),
    "memory bools default": (
        {"memory": {"disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": False}},
        True,
    ),
    "memory bools": (
        {"memory": {"disableOOMKiller": True, "useHierarchy": False, "checkBeforeUpdate": True}},
        True,
    ),
    "memory bool not bool": ({"memory": {"useHierarchy": 1}}, True),
    "memory all": ({"memory": {"limit": 1000, "reservation": 500, "swap": 3000}}, True),
    "memory limit huge": ({"memory": {"limit": 2**63}}, True),
    # --- pids -------------------------------------------------------------------------
    "pids": ({"pids": {"limit": 10}}, True),
    "pids 0": ({"pids": {"limit": 0}}, True),
    "pids -1": ({"pids": {"limit": -1}}, True),
    "pids -2": ({"pids": {"limit": -2}}, True),
    "pids null": ({"pids": {"limit": None}}, True),
    "pids empty": ({"pids": {}}, True),
    "pids not object": ({"pids": "x"}, True),
    "pids huge": ({"pids": {"limit": 2**63 - 1}}, True),
    # --- blockIO ----------------------------------------------------------------------
    "blkio empty": ({"blockIO": {}}, True),
    "blkio weight bfq": ({"blockIO": {"weight": 500}}, True),
    "blkio weight io": ({"blockIO": {"weight": 500}}, False),
    "blkio weight 10 io": ({"blockIO": {"weight": 10}}, False),
    "blkio weight 1000 io": ({"blockIO": {"weight": 1000}}, False),
    "blkio weight 0": ({"blockIO": {"weight": 0}}, True),
    "blkio weight 9": ({"blockIO": {"weight": 9}}, True),
    "blkio weight 1001": ({"blockIO": {"weight": 1001}}, True),
    "blkio weight 65536": ({"blockIO": {"weight": 65536}}, True),
    "blkio leaf": ({"blockIO": {"leafWeight": 300}}, True),
    "blkio leaf 0": ({"blockIO": {"leafWeight": 0}}, True),
    "blkio leaf bad": ({"blockIO": {"leafWeight": 5}}, True),
    "blkio weightDevice bfq": (
        {"blockIO": {"weightDevice": [dev(weight=200), dev(minor=16, weight=0, leafWeight=20)]}},
        True,
    ),
    "blkio weightDevice io": (
        {"blockIO": {"weightDevice": [dev(weight=200), dev(major=9, weight=1000)]}},
        False,
    ),
    "blkio weightDevice leaf only": ({"blockIO": {"weightDevice": [dev(leafWeight=20)]}}, True),
    "blkio weightDevice null": ({"blockIO": {"weightDevice": [None]}}, True),
    "blkio weightDevice not list": ({"blockIO": {"weightDevice": {"major": 8}}}, True),
    "blkio weightDevice str": ({"blockIO": {"weightDevice": "8:0 100"}}, True),
    "blkio weightDevice tuple": ({"blockIO": {"weightDevice": (dev(weight=100),)}}, True),
    "blkio weightDevice no major": ({"blockIO": {"weightDevice": [{"minor": 0}]}}, True),
    "blkio weightDevice no minor": ({"blockIO": {"weightDevice": [{"major": 8}]}}, True),
    "blkio weightDevice bad weight": ({"blockIO": {"weightDevice": [dev(weight=5)]}}, True),
    "blkio weightDevice unknown": ({"blockIO": {"weightDevice": [dev(weight=100, x=1)]}}, True),
    "blkio weightDevice major 2**32": (
        {"blockIO": {"weightDevice": [dev(major=2**32, weight=100)]}},
        True,
    ),
    "blkio weightDevice minor -1": ({"blockIO": {"weightDevice": [dev(minor=-1)]}}, True),
    "blkio throttles": (
        {
            "blockIO": {
                "throttleReadBpsDevice": [dev(rate=100), dev(minor=1, rate=-1)],
                "throttleWriteBpsDevice": [dev(rate=200)],
                "throttleReadIOPSDevice": [dev(rate=300)],
                "throttleWriteIOPSDevice": [dev(rate=400)],
            }
        },
        True,
    ),
    "blkio throttle rate 0": ({"blockIO": {"throttleWriteBpsDevice": [dev(rate=0)]}}, True),
    "blkio throttle no rate": ({"blockIO": {"throttleReadIOPSDevice": [dev()]}}, True),
    "blkio throttle rate -2": ({"blockIO": {"throttleWriteIOPSDevice": [dev(rate=-2)]}}, True),
    "blkio throttle null": ({"blockIO": {"throttleReadBpsDevice": [None]}}, True),
    "blkio throttle unknown": ({"blockIO": {"throttleReadBpsDevice": [dev(rate=1, w=2)]}}, True),
    "blkio throttle str": ({"blockIO": {"throttleReadBpsDevice": [5]}}, True),
    "blkio all io": (
        {
            "blockIO": {
                "weight": 100,
                "weightDevice": [dev(weight=50)],
                "throttleReadBpsDevice": [dev(rate=1 << 20)],
            }
        },
        False,
    ),
    # --- hugepageLimits ---------------------------------------------------------------
    "hugetlb": (
        {
            "hugepageLimits": [
                {"pageSize": "2MB", "limit": 1 << 21},
                {"pageSize": "1GB", "limit": -1},
            ]
        },
        True,
    ),
    "hugetlb empty": ({"hugepageLimits": []}, True),
    "hugetlb null": ({"hugepageLimits": None}, True),
    "hugetlb KB TB": (
        {"hugepageLimits": [{"pageSize": "64KB", "limit": 0}, {"pageSize": "16TB", "limit": 1}]},
        True,
    ),
    "hugetlb size bad": ({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}, True),
    "hugetlb size 02MB": ({"hugepageLimits": [{"pageSize": "02MB", "limit": 1}]}, True),
    "hugetlb size suffix": ({"hugepageLimits": [{"pageSize": "2MBx", "limit": 1}]}, True),
    "hugetlb size prefix": ({"hugepageLimits": [{"pageSize": "x2MB", "limit": 1}]}, True),
    "hugetlb size missing": ({"hugepageLimits": [{"limit": 1}]}, True),
    "hugetlb twice": (
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "2MB", "limit": 2}]},
        True,
    ),
    "hugetlb no limit": ({"hugepageLimits": [{"pageSize": "2MB"}]}, True),
    "hugetlb limit -2": ({"hugepageLimits": [{"pageSize": "2MB", "limit": -2}]}, True),
    "hugetlb null item": ({"hugepageLimits": [None]}, True),
    "hugetlb not list": ({"hugepageLimits": {"pageSize": "2MB"}}, True),
    "hugetlb unknown": ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1, "x": 0}]}, True),
    # --- rdma -------------------------------------------------------------------------
    "rdma": ({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}}}, True),
    "rdma handles only": ({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, True),
    "rdma objects only": ({"rdma": {"mlx5_1": {"hcaObjects": 9}}}, True),
    "rdma -1": ({"rdma": {"mlx5_0": {"hcaHandles": -1, "hcaObjects": -1}}}, True),
    "rdma neither": ({"rdma": {"mlx5_0": {}, "mlx5_1": {"hcaHandles": 1}}}, True),
    "rdma only neither": ({"rdma": {"mlx5_0": {}}}, True),
    "rdma empty": ({"rdma": {}}, True),
    "rdma null": ({"rdma": None}, True),
    "rdma list": ({"rdma": [1]}, True),
    "rdma empty name": ({"rdma": {"": {"hcaHandles": 1}}}, True),
    "rdma int name": ({"rdma": {5: {"hcaHandles": 1}}}, True),
    "rdma null limits": ({"rdma": {"mlx5_0": None}}, True),
    "rdma limits list": ({"rdma": {"mlx5_0": [1]}}, True),
    "rdma space name": ({"rdma": {"a b": {"hcaHandles": 1}}}, True),
    "rdma handles 2**32": ({"rdma": {"mlx5_0": {"hcaHandles": 2**32}}}, True),
    "rdma unknown": ({"rdma": {"mlx5_0": {"hcaHandles": 1, "x": 1}}}, True),
    # --- devices ----------------------------------------------------------------------
    "devices": (
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": True, "type": "b", "major": -1, "minor": -1},
                {"allow": True, "type": "", "major": 5, "access": "m"},
                {"allow": False, "type": "a", "minor": 2**32 - 1},
            ]
        },
        True,
    ),
    "devices empty": ({"devices": []}, True),
    "devices null item": ({"devices": [None]}, True),
    "devices no allow": ({"devices": [{"type": "c"}]}, True),
    "devices allow int": ({"devices": [{"allow": 1}]}, True),
    "devices type x": ({"devices": [{"allow": True, "type": "x"}]}, True),
    "devices type int": ({"devices": [{"allow": True, "type": 1}]}, True),
    "devices access empty": ({"devices": [{"allow": True, "access": ""}]}, True),
    "devices access x": ({"devices": [{"allow": True, "access": "rx"}]}, True),
    "devices major -2": ({"devices": [{"allow": True, "major": -2}]}, True),
    "devices minor 2**32": ({"devices": [{"allow": True, "minor": 2**32}]}, True),
    "devices unknown": ({"devices": [{"allow": True, "path": "/dev/null"}]}, True),
    "devices not list": ({"devices": {"allow": True}}, True),
    # --- network ----------------------------------------------------------------------
    "network": (
        {"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]}},
        True,
    ),
    "network empty": ({"network": {}}, True),
    "network classID bad": ({"network": {"classID": -1}}, True),
    "network priorities bad": ({"network": {"priorities": [5]}}, True),
    "network priority name": ({"network": {"priorities": [{"name": 5, "priority": 1}]}}, True),
    "network priority bad": ({"network": {"priorities": [{"name": "a", "priority": -1}]}}, True),
    "network priorities empty": ({"network": {"priorities": []}}, True),
    "network unknown": ({"network": {"classID": 1, "x": 1}}, True),
    # --- unified ----------------------------------------------------------------------
    "unified": ({"unified": {"memory.high": "max", "io.latency": "8:0 target=10"}}, True),
    "unified empty": ({"unified": {}}, True),
    "unified not object": ({"unified": ["memory.high"]}, True),
    "unified int key": ({"unified": {5: "1"}}, True),
    "unified bad key": ({"unified": {"../x": "1"}}, True),
    "unified int value": ({"unified": {"memory.high": 5}}, True),
    # --- errors raised by the types, named by the JSON path -----------------------------
    "cpu burst too big": ({"cpu": {"burst": 2**63}}, True),
    "cpu mems int": ({"cpu": {"mems": 0}}, True),
    "cpu quota 1": ({"cpu": {"quota": 1}}, True),
    "rdma objects -2": ({"rdma": {"mlx5_0": {"hcaObjects": -2}}}, True),
    "blkio weightDevice leaf bad": ({"blockIO": {"weightDevice": [dev(leafWeight=5)]}}, True),
    "blkio not object": ({"blockIO": 5}, True),
    "blkio unknown": ({"blockIO": {"x": 1}}, True),
    "hugetlb size int": ({"hugepageLimits": [{"pageSize": 5, "limit": 1}]}, True),
    "devices access int": ({"devices": [{"allow": True, "access": 5}]}, True),
    "devices access X": ({"devices": [{"allow": True, "access": "X"}]}, True),
    "config process key": ({"process": {"args": ["sh"]}}, True),
    "value shown whole at 80": ({"pids": {"limit": "y" * 78}}, True),
    "value cut at 81": ({"pids": {"limit": "y" * 79}}, True),
    "pids limit huge": ({"pids": {"limit": 2**63}}, True),
    "cpu quota period too big": ({"cpu": {"quota": 50000, "period": 2_000_000}}, True),
}


def _outcome(spec: Any, bfq: bool) -> dict[str, Any]:
    try:
        got = convert_resources(spec, bfq=bfq)
    except OCISpecError as e:
        return {
            "error": type(e).__name__,
            "message": str(e),
            "path": e.json_path,
            "value": repr(e.json_value),
        }
    except CgroupError as e:
        return {"error": type(e).__name__, "message": str(e)}
    return {
        "resources": repr(got.resources),
        "warnings": [[w.path, repr(w.value), w.reason, str(w)] for w in got.warnings],
    }


def test_outcomes() -> None:
    got = {name: _outcome(*case) for name, case in CASES.items()}
    if os.environ.get("CGROUP2_UPDATE_OCI") == "1":
        DATA.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    want = json.loads(DATA.read_text())
    assert set(got) == set(want), "cases added or removed: regenerate the file"
    for name in CASES:
        assert got[name] == want[name], name


def test_to_resources_is_convert_resources() -> None:
    spec: Mapping[str, Any] = {"memory": {"kernel": 5, "limit": 10}, "pids": {"limit": 2}}
    out: list[Any] = ["kept"]
    res = to_resources(spec, warnings=out)
    conv = convert_resources(spec)
    assert res == conv.resources and out == ["kept", *conv.warnings]
    assert to_resources(spec) == res
    assert to_resources({"blockIO": {"weight": 100}}, bfq=False).io.weight == 910  # type: ignore[union-attr]
    assert convert_resources({}).warnings == ()


@pytest.mark.parametrize(
    ("shares", "weight"),
    [
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (10, 4),
        (100, 17),
        (512, 59),
        (1024, 100),
        (2048, 174),
        (10000, 627),
        (100000, 4340),
        (262143, 10000),
        (262144, 10000),
        (2**40, 10000),
    ],
)
def test_cpu_shares_to_weight(shares: int, weight: int) -> None:
    # ceil(10 ** ((L*L + 125*L) / 612 - 7/34)), L = log2(shares) (crun, runc >= 1.3.2),
    # computed apart from the library; 2 -> 1, 1024 -> 100, 262144 -> 10000 are theirs
    assert cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize(
    ("w", "want"), [(0, 0), (10, 1), (11, 11), (100, 910), (500, 4950), (999, 9989), (1000, 10000)]
)
def test_blkio_weight_to_io_weight(w: int, want: int) -> None:
    assert blkio_weight_to_io_weight(w) == want


@pytest.mark.parametrize(
    ("w", "message"),
    [
        (9, "cgroups: invalid blkio weight 9: out of range 10..1000 (0: not set)"),
        (1001, "cgroups: invalid blkio weight 1001: out of range 10..1000 (0: not set)"),
        (-1, "cgroups: invalid blkio weight -1: out of range 10..1000 (0: not set)"),
        (True, "cgroups: invalid blkio weight True: must be an int"),
        ("5", "cgroups: invalid blkio weight '5': must be an int"),
    ],
)
def test_blkio_weight_refusals(w: object, message: str) -> None:
    with pytest.raises(CgroupError) as e:
        blkio_weight_to_io_weight(w)  # type: ignore[arg-type]
    assert str(e.value) == message
