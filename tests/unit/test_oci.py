"""unit tier: OCI runtime-spec ``linux.resources`` -> Resources (cgroup2.oci)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroup2 import CgroupError
from cgroup2.devices.rules import DeviceRule
from cgroup2.oci import (
    OCISpecError,
    OCIWarning,
    blkio_weight_to_io_weight,
    convert_resources,
    cpu_shares_to_weight,
    to_resources,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"
M = 1024 * 1024


def written(spec: Any, **kw: Any) -> list[tuple[str, str]]:
    """The (file, text) pairs the conversion of ``spec`` would write."""
    return [(v.filename, v.value) for v in to_resources(spec, **kw).values()]


# --- the table of conversions ----------------------------------------------------------
# (id, linux.resources, keyword options, the files and texts to be written)
CONVERSIONS: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str]]]] = [
    # cpu.shares -> cpu.weight, the log-quadratic map (crun >= 1.23, runc >= 1.3.2)
    ("shares-0-unset", {"cpu": {"shares": 0}}, {}, []),
    ("shares-1", {"cpu": {"shares": 1}}, {}, [("cpu.weight", "1")]),
    ("shares-2", {"cpu": {"shares": 2}}, {}, [("cpu.weight", "1")]),
    ("shares-3", {"cpu": {"shares": 3}}, {}, [("cpu.weight", "2")]),
    ("shares-100", {"cpu": {"shares": 100}}, {}, [("cpu.weight", "17")]),
    ("shares-500", {"cpu": {"shares": 500}}, {}, [("cpu.weight", "58")]),
    ("shares-1000", {"cpu": {"shares": 1000}}, {}, [("cpu.weight", "99")]),
    ("shares-1024", {"cpu": {"shares": 1024}}, {}, [("cpu.weight", "100")]),
    ("shares-2000", {"cpu": {"shares": 2000}}, {}, [("cpu.weight", "170")]),
    ("shares-5000", {"cpu": {"shares": 5000}}, {}, [("cpu.weight", "356")]),
    ("shares-262144", {"cpu": {"shares": 262144}}, {}, [("cpu.weight", "10000")]),
    ("shares-above-max", {"cpu": {"shares": 10**6}}, {}, [("cpu.weight", "10000")]),
    # quota/period -> cpu.max
    ("quota-no-period", {"cpu": {"quota": 50000}}, {}, [("cpu.max", "50000 100000")]),
    (
        "quota-and-period",
        {"cpu": {"quota": 50000, "period": 200000}},
        {},
        [("cpu.max", "50000 200000")],
    ),
    ("quota-1-period", {"cpu": {"quota": -1, "period": 100000}}, {}, [("cpu.max", "max 100000")]),
    ("period-only", {"cpu": {"period": 10000}}, {}, [("cpu.max", "max 10000")]),
    ("quota-minus-1-only", {"cpu": {"quota": -1}}, {}, [("cpu.max", "max 100000")]),
    ("quota-0-unset", {"cpu": {"quota": 0}}, {}, []),
    (
        "cpus-mems",
        {"cpu": {"cpus": "0-1", "mems": "0"}},
        {},
        [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")],
    ),
    ("cpus-empty-unset", {"cpu": {"cpus": "", "mems": ""}}, {}, []),
    ("idle-1", {"cpu": {"idle": 1}}, {}, [("cpu.idle", "1")]),
    ("idle-0", {"cpu": {"idle": 0}}, {}, [("cpu.idle", "0")]),
    (
        "burst",
        {"cpu": {"quota": 50000, "burst": 20000}},
        {},
        [("cpu.max", "50000 100000"), ("cpu.max.burst", "20000")],
    ),
    # memory
    ("limit", {"memory": {"limit": M}}, {}, [("memory.max", str(M))]),
    (
        "limit-minus-1",
        {"memory": {"limit": -1}},
        {},
        [("memory.swap.max", "max"), ("memory.max", "max")],
    ),
    ("limit-0-unset", {"memory": {"limit": 0}}, {}, []),
    ("reservation", {"memory": {"reservation": 512 * 1024}}, {}, [("memory.low", "524288")]),
    ("reservation-minus-1", {"memory": {"reservation": -1}}, {}, [("memory.low", "max")]),
    (
        "swap-minus-1",
        {"memory": {"limit": M, "swap": -1}},
        {},
        [("memory.swap.max", "max"), ("memory.max", str(M))],
    ),
    (
        "swap-equals-limit",
        {"memory": {"limit": M, "swap": M}},
        {},
        [("memory.swap.max", "0"), ("memory.max", str(M))],
    ),
    (
        "swap-3x-limit",
        {"memory": {"limit": M, "swap": 3 * M}},
        {},
        [("memory.swap.max", str(2 * M)), ("memory.max", str(M))],
    ),
    (
        "swap-with-limit-minus-1",
        {"memory": {"limit": -1, "swap": 2 * M}},
        {},
        [("memory.swap.max", "max"), ("memory.max", "max")],
    ),
    ("swap-0-unset", {"memory": {"limit": M, "swap": 0}}, {}, [("memory.max", str(M))]),
    # pids
    ("pids-100", {"pids": {"limit": 100}}, {}, [("pids.max", "100")]),
    ("pids-0-max", {"pids": {"limit": 0}}, {}, [("pids.max", "max")]),
    ("pids-minus-1-max", {"pids": {"limit": -1}}, {}, [("pids.max", "max")]),
    ("pids-absent", {"pids": {}}, {}, []),
    # blockIO weight -> io.bfq.weight as is, or io.weight (bfq=False)
    ("blkio-10-bfq", {"blockIO": {"weight": 10}}, {}, [("io.bfq.weight", "10")]),
    ("blkio-500-bfq", {"blockIO": {"weight": 500}}, {}, [("io.bfq.weight", "500")]),
    ("blkio-1000-bfq", {"blockIO": {"weight": 1000}}, {}, [("io.bfq.weight", "1000")]),
    ("blkio-10-io", {"blockIO": {"weight": 10}}, {"bfq": False}, [("io.weight", "1")]),
    ("blkio-500-io", {"blockIO": {"weight": 500}}, {"bfq": False}, [("io.weight", "4950")]),
    ("blkio-1000-io", {"blockIO": {"weight": 1000}}, {"bfq": False}, [("io.weight", "10000")]),
    ("blkio-100-io", {"blockIO": {"weight": 100}}, {"bfq": False}, [("io.weight", "910")]),
    ("blkio-0-unset", {"blockIO": {"weight": 0}}, {}, []),
    (
        "weight-device-bfq",
        {"blockIO": {"weight": 200, "weightDevice": [
            {"major": 8, "minor": 0, "weight": 300}, {"major": 253, "minor": 16, "weight": 10},
        ]}},
        {},
        [("io.bfq.weight", "200"), ("io.bfq.weight", "8:0 300"), ("io.bfq.weight", "253:16 10")],
    ),
    (
        "weight-device-io",
        {"blockIO": {"weight": 500, "weightDevice": [
            {"major": 8, "minor": 0, "weight": 1000}, {"major": 8, "minor": 16, "weight": 10},
        ]}},
        {"bfq": False},
        [("io.weight", "4950"), ("io.weight", "8:0 10000"), ("io.weight", "8:16 1")],
    ),
    (
        "weight-device-0-unset",
        {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}},
        {},
        [],
    ),
    (
        "throttles-in-spec-order",
        {
            "blockIO": {
                "throttleReadBpsDevice": [
                    {"major": 8, "minor": 0, "rate": 1048576},
                    {"major": 8, "minor": 16, "rate": 2048},
                ],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 524288}],
                "throttleReadIOPSDevice": [{"major": 253, "minor": 1, "rate": 1000}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 500}],
            }
        },
        {},
        [
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:16 rbps=2048"),
            ("io.max", "8:0 wbps=524288"),
            ("io.max", "253:1 riops=1000"),
            ("io.max", "8:0 wiops=500"),
        ],
    ),
    (
        "throttle-minus-1-max",
        {"blockIO": {"throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]}},
        {},
        [("io.max", "8:0 wbps=max")],
    ),
    # hugetlb
    (
        "hugetlb",
        {
            "hugepageLimits": [
                {"pageSize": "2MB", "limit": 20 * M},
                {"pageSize": "1GB", "limit": 0},
                {"pageSize": "64KB", "limit": -1},
            ]
        },
        {},
        [("hugetlb.2MB.max", str(20 * M)), ("hugetlb.1GB.max", "0"), ("hugetlb.64KB.max", "max")],
    ),
    # rdma
    (
        "rdma",
        {"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}}},
        {},
        [("rdma.max", "mlx5_0 hca_handle=3 hca_object=10000")],
    ),
    (
        "rdma-handles-only",
        {"rdma": {"rxe0": {"hcaHandles": 2}}},
        {},
        [("rdma.max", "rxe0 hca_handle=2 hca_object=max")],
    ),
    # unified, written last
    (
        "unified-last",
        {"unified": {"memory.high": "5M", "cpu.weight.nice": "5"}, "pids": {"limit": 7}},
        {},
        [("pids.max", "7"), ("memory.high", "5M"), ("cpu.weight.nice", "5")],
    ),
    ("empty", {}, {}, []),
    ("nulls", {"cpu": None, "memory": None, "devices": None, "unified": None}, {}, []),
    ("whole-config-no-linux", {"ociVersion": "1.0.2", "process": {}}, {}, []),
    (
        "whole-config",
        {"ociVersion": "1.0.2", "linux": {"resources": {"pids": {"limit": 9}}}},
        {},
        [("pids.max", "9")],
    ),
]


@pytest.mark.parametrize(
    ("spec", "options", "expected"),
    [pytest.param(s, o, e, id=i) for i, s, o, e in CONVERSIONS],
)
def test_conversion_table(
    spec: dict[str, Any], options: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert written(spec, **options) == expected


def test_table_is_big_enough() -> None:
    assert len(CONVERSIONS) >= 40


DEVICES: list[tuple[str, dict[str, Any], DeviceRule]] = [
    ("deny-all", {"allow": False, "access": "rwm"}, DeviceRule(False, "a", None, None, "rwm")),
    (
        "null-char",
        {"allow": True, "type": "c", "major": 1, "minor": 3},
        DeviceRule(True, "c", 1, 3),
    ),
    (
        "pty-any-minor",
        {"allow": True, "type": "c", "major": 136, "access": "rw"},
        DeviceRule(True, "c", 136, None, "rw"),
    ),
    (
        "null-major-is-wildcard",
        {"allow": True, "type": "b", "major": None, "minor": 5, "access": "r"},
        DeviceRule(True, "b", None, 5, "r"),
    ),
    (
        "minus-1-is-wildcard",
        {"allow": False, "type": "c", "major": -1, "minor": -1, "access": "m"},
        DeviceRule(False, "c", None, None, "m"),
    ),
    ("type-absent-is-all", {"allow": True}, DeviceRule(True, "a", None, None, "rwm")),
]


@pytest.mark.parametrize(("entry", "rule"), [pytest.param(e, r, id=i) for i, e, r in DEVICES])
def test_device_rules(entry: dict[str, Any], rule: DeviceRule) -> None:
    res = to_resources({"devices": [entry]})
    assert res.devices == (rule,)
    assert res.values() == []  # device rules are a program, not files


def test_device_rules_keep_their_order() -> None:
    entries = [e for _, e, _ in DEVICES]
    assert to_resources({"devices": entries}).devices == tuple(r for _, _, r in DEVICES)


def test_empty_device_list_says_nothing() -> None:
    assert to_resources({"devices": []}).devices is None


# --- the formulas ----------------------------------------------------------------------


@given(st.integers(min_value=2, max_value=2**18))
def test_shares_to_weight_is_monotonic_and_in_range(shares: int) -> None:
    w = cpu_shares_to_weight(shares)
    assert 1 <= w <= 10000
    assert cpu_shares_to_weight(shares + 1) >= w
    # the defining property: the smallest integer >= 10 ** exponent
    log = math.log2(shares)
    exact = 10 ** ((log * log + 125 * log) / 612 - 7 / 34)
    assert w - 1 < exact <= w + 1e-9


@given(st.integers(min_value=10, max_value=1000))
def test_blkio_to_io_weight_is_linear_and_in_range(w: int) -> None:
    io = blkio_weight_to_io_weight(w)
    assert 1 <= io <= 10000
    assert io == 1 + (w - 10) * 9999 // 990
    if w < 1000:
        assert blkio_weight_to_io_weight(w + 1) > io


# --- bad input: each error names the JSON path and the value ----------------------------
R = "linux.resources"
BAD: list[tuple[str, Any, str]] = [
    ("shares-string", {"cpu": {"shares": "1024"}}, f"{R}.cpu.shares"),
    ("shares-bool", {"cpu": {"shares": True}}, f"{R}.cpu.shares"),
    ("shares-negative", {"cpu": {"shares": -5}}, f"{R}.cpu.shares"),
    ("shares-too-big", {"cpu": {"shares": 2**64}}, f"{R}.cpu.shares"),
    ("quota-minus-2", {"cpu": {"quota": -2}}, f"{R}.cpu.quota"),
    ("quota-float", {"cpu": {"quota": 1.5}}, f"{R}.cpu.quota"),
    ("quota-below-1ms", {"cpu": {"quota": 100}}, f"{R}.cpu.quota"),
    ("period-below-1ms", {"cpu": {"quota": 5000, "period": 500}}, f"{R}.cpu.period"),
    ("period-above-1s", {"cpu": {"period": 2_000_000}}, f"{R}.cpu.period"),
    ("idle-2", {"cpu": {"idle": 2}}, f"{R}.cpu.idle"),
    ("cpus-garbage", {"cpu": {"cpus": "0-a"}}, f"{R}.cpu.cpus"),
    ("cpus-int", {"cpu": {"cpus": 5}}, f"{R}.cpu.cpus"),
    ("mems-descending", {"cpu": {"mems": "3-1"}}, f"{R}.cpu.mems"),
    ("realtime-string", {"cpu": {"realtimeRuntime": "x"}}, f"{R}.cpu.realtimeRuntime"),
    ("burst-negative", {"cpu": {"burst": -1}}, f"{R}.cpu.burst"),
    ("cpu-not-object", {"cpu": [1]}, f"{R}.cpu"),
    ("limit-minus-5", {"memory": {"limit": -5}}, f"{R}.memory.limit"),
    ("limit-bool", {"memory": {"limit": True}}, f"{R}.memory.limit"),
    ("limit-string", {"memory": {"limit": "1G"}}, f"{R}.memory.limit"),
    ("swap-below-limit", {"memory": {"limit": 2 * M, "swap": M}}, f"{R}.memory.swap"),
    ("swap-without-limit", {"memory": {"swap": M}}, f"{R}.memory.swap"),
    ("reservation-string", {"memory": {"reservation": "1G"}}, f"{R}.memory.reservation"),
    ("oom-killer-string", {"memory": {"disableOOMKiller": "yes"}}, f"{R}.memory.disableOOMKiller"),
    ("swappiness-negative", {"memory": {"swappiness": -1}}, f"{R}.memory.swappiness"),
    ("memory-not-object", {"memory": 5}, f"{R}.memory"),
    ("pids-minus-2", {"pids": {"limit": -2}}, f"{R}.pids.limit"),
    ("pids-string", {"pids": {"limit": "10"}}, f"{R}.pids.limit"),
    ("pids-too-big", {"pids": {"limit": 2**40}}, f"{R}.pids.limit"),
    ("blkio-weight-5", {"blockIO": {"weight": 5}}, f"{R}.blockIO.weight"),
    ("blkio-weight-2000", {"blockIO": {"weight": 2000}}, f"{R}.blockIO.weight"),
    ("blkio-weight-bool", {"blockIO": {"weight": True}}, f"{R}.blockIO.weight"),
    ("leaf-weight-5", {"blockIO": {"leafWeight": 5}}, f"{R}.blockIO.leafWeight"),
    (
        "throttle-rate-negative",
        {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -3}]}},
        f"{R}.blockIO.throttleReadBpsDevice[0].rate",
    ),
    (
        "throttle-major-missing",
        {
            "blockIO": {
                "throttleWriteIOPSDevice": [
                    {"major": 8, "minor": 0, "rate": 1},
                    {"minor": 0, "rate": 1},
                ]
            }
        },
        f"{R}.blockIO.throttleWriteIOPSDevice[1].major",
    ),
    (
        "throttle-rate-missing",
        {"blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0}]}},
        f"{R}.blockIO.throttleReadIOPSDevice[0].rate",
    ),
    (
        "throttle-not-array",
        {"blockIO": {"throttleReadBpsDevice": "8:0 100"}},
        f"{R}.blockIO.throttleReadBpsDevice",
    ),
    (
        "weight-device-minor-negative",
        {"blockIO": {"weightDevice": [{"major": 8, "minor": -1, "weight": 100}]}},
        f"{R}.blockIO.weightDevice[0].minor",
    ),
    (
        "page-size-bad",
        {"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
        f"{R}.hugepageLimits[0].pageSize",
    ),
    (
        "hugetlb-limit-negative",
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": -7}]},
        f"{R}.hugepageLimits[1].limit",
    ),
    (
        "hugetlb-duplicate",
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "2MB", "limit": 2}]},
        f"{R}.hugepageLimits[1].pageSize",
    ),
    (
        "rdma-negative",
        {"rdma": {"mlx5_0": {"hcaHandles": -4}}},
        f'{R}.rdma["mlx5_0"].hcaHandles',
    ),
    (
        "rdma-too-big",
        {"rdma": {"mlx5_0": {"hcaObjects": 2**31}}},
        f'{R}.rdma["mlx5_0"]',
    ),
    ("rdma-not-object", {"rdma": ["mlx5_0"]}, f"{R}.rdma"),
    ("device-type-x", {"devices": [{"allow": True, "type": "x"}]}, f"{R}.devices[0].type"),
    ("device-allow-missing", {"devices": [{"type": "a"}]}, f"{R}.devices[0].allow"),
    ("device-allow-int", {"devices": [{"allow": 1}]}, f"{R}.devices[0].allow"),
    (
        "device-access-x",
        {"devices": [{"allow": False}, {"allow": True, "access": "rwx"}]},
        f"{R}.devices[1].access",
    ),
    ("device-access-empty", {"devices": [{"allow": True, "access": ""}]}, f"{R}.devices[0].access"),
    ("device-major-minus-2", {"devices": [{"allow": True, "major": -2}]}, f"{R}.devices[0].major"),
    ("devices-not-array", {"devices": {"allow": True}}, f"{R}.devices"),
    ("class-id-negative", {"network": {"classID": -1}}, f"{R}.network.classID"),
    ("unified-int", {"unified": {"memory.max": 5}}, f'{R}.unified["memory.max"]'),
    ("unified-dotdot", {"unified": {"../x": "1"}}, f'{R}.unified["../x"]'),
    ("unified-procs", {"unified": {"cgroup.procs": "1"}}, f'{R}.unified["cgroup.procs"]'),
    ("resources-not-object", {"linux": {"resources": []}}, R),
    ("linux-not-object", {"ociVersion": "1.0.2", "linux": 5}, "linux"),
    ("spec-not-object", [1, 2], R),
]


@pytest.mark.parametrize(("spec", "path"), [pytest.param(s, p, id=i) for i, s, p in BAD])
def test_bad_input_names_json_path(spec: Any, path: str) -> None:
    with pytest.raises(OCISpecError) as info:
        to_resources(spec)
    err = info.value
    assert isinstance(err, CgroupError)
    assert err.json_path == path
    assert f"{path} = " in str(err)
    assert repr(err.json_value)[:40] in str(err)


def test_bad_input_table_is_big_enough() -> None:
    assert len(BAD) >= 40


# --- what has no cgroup v2 file: warnings, not failures ---------------------------------
WARNED: list[tuple[str, dict[str, Any], str]] = [
    ("realtime-runtime", {"cpu": {"realtimeRuntime": 950000}}, f"{R}.cpu.realtimeRuntime"),
    ("realtime-period", {"cpu": {"realtimePeriod": 1000000}}, f"{R}.cpu.realtimePeriod"),
    ("kernel", {"memory": {"kernel": M}}, f"{R}.memory.kernel"),
    ("kernel-tcp", {"memory": {"kernelTCP": M}}, f"{R}.memory.kernelTCP"),
    ("swappiness", {"memory": {"swappiness": 60}}, f"{R}.memory.swappiness"),
    ("disable-oom", {"memory": {"disableOOMKiller": True}}, f"{R}.memory.disableOOMKiller"),
    ("use-hierarchy", {"memory": {"useHierarchy": False}}, f"{R}.memory.useHierarchy"),
    ("check-before", {"memory": {"checkBeforeUpdate": True}}, f"{R}.memory.checkBeforeUpdate"),
    ("limit-0", {"memory": {"limit": 0}}, f"{R}.memory.limit"),
    ("leaf-weight", {"blockIO": {"leafWeight": 500}}, f"{R}.blockIO.leafWeight"),
    (
        "weight-device-leaf-weight",
        {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 300}]}},
        f"{R}.blockIO.weightDevice[0].leafWeight",
    ),
    ("class-id", {"network": {"classID": 1048577}}, f"{R}.network.classID"),
    (
        "priorities",
        {"network": {"priorities": [{"name": "eth0", "priority": 5}]}},
        f"{R}.network.priorities",
    ),
    ("unknown-key", {"cpu": {"shares": 1024, "turbo": 1}}, f"{R}.cpu.turbo"),
    ("unknown-section", {"intelRdt": {}}, f"{R}.intelRdt"),
]


@pytest.mark.parametrize(("spec", "path"), [pytest.param(s, p, id=i) for i, s, p in WARNED])
def test_no_v2_file_is_a_warning(spec: dict[str, Any], path: str) -> None:
    result = convert_resources(spec)
    assert [w.path for w in result.warnings] == [path]
    out: list[OCIWarning] = []
    to_resources(spec, warnings=out)
    assert out == list(result.warnings)
    assert str(out[0]).startswith(f"{path} = ")


def test_v2_behaviour_values_are_not_warned() -> None:
    spec = {
        "memory": {"disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": False},
        "cpu": {"realtimeRuntime": 0, "realtimePeriod": 0},
        "blockIO": {"leafWeight": 0},
    }
    assert convert_resources(spec).warnings == ()


def test_to_resources_without_warning_list_still_converts() -> None:
    res = to_resources({"memory": {"limit": M, "kernel": M}})
    assert [(v.filename, v.value) for v in res.values()] == [("memory.max", str(M))]


def test_whole_config_and_resources_give_the_same() -> None:
    config = json.loads((DATA / "all-fields.json").read_text())
    assert to_resources(config) == to_resources(config["linux"]["resources"])


def test_all_fields_spec() -> None:
    config = json.loads((DATA / "all-fields.json").read_text())
    result = convert_resources(config)
    assert [(v.filename, v.value) for v in result.resources.values()] == [
        ("cpu.weight", "100"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("cpu.idle", "0"),
        ("cpu.max.burst", "10000"),
        ("memory.swap.max", str(256 * M)),
        ("memory.max", str(512 * M)),
        ("memory.low", str(256 * M)),
        ("pids.max", "32"),
        ("io.bfq.weight", "500"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wbps=524288"),
        ("io.max", "8:0 riops=1000"),
        ("io.max", "8:0 wiops=500"),
        ("rdma.max", "mlx5_0 hca_handle=3 hca_object=10000"),
        ("hugetlb.2MB.max", str(20 * M)),
        ("hugetlb.1GB.max", "0"),
        ("memory.high", "402653184"),
        ("memory.oom.group", "1"),
    ]
    assert result.resources.devices == (
        DeviceRule(False),
        DeviceRule(True, "c", 1, 3),
        DeviceRule(True, "c", 136, None, "rw"),
        DeviceRule(True, "b", 8, 0, "r"),
    )
    assert sorted(w.path for w in result.warnings) == sorted(
        [
            f"{R}.memory.kernel",
            f"{R}.memory.kernelTCP",
            f"{R}.memory.swappiness",
            f"{R}.network.classID",
            f"{R}.network.priorities",
        ]
    )
    assert result.resources.enabled_controllers() == [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "io",
        "rdma",
        "hugetlb",
    ]


def test_conversion_is_immutable_and_input_untouched() -> None:
    spec: dict[str, Any] = {"unified": {"memory.high": "5M"}, "devices": [{"allow": True}]}
    before = json.dumps(spec, sort_keys=True)
    res = to_resources(spec)
    assert json.dumps(spec, sort_keys=True) == before
    spec["unified"]["memory.high"] = "6M"
    assert res.unified is not None and res.unified["memory.high"] == "5M"


# --- robustness: any JSON anywhere gives a conversion or an OCISpecError ----------------
_KEYS = st.sampled_from(
    [
        *("major", "minor", "rate", "weight", "allow", "type", "access", "pageSize"),
        *("limit", "hcaHandles", "hcaObjects", "name", "priority", "mlx5_0", "memory.max"),
    ]
) | st.text(max_size=6)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)
_PLACES = [
    (section, key)
    for section, keys in {
        "cpu": ["shares", "quota", "period", "burst", "cpus", "mems", "idle", "realtimeRuntime"],
        "memory": ["limit", "reservation", "swap", "kernel", "swappiness", "disableOOMKiller"],
        "pids": ["limit"],
        "blockIO": ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice"],
        "network": ["classID", "priorities"],
    }.items()
    for key in keys
]


@given(
    st.sampled_from(_PLACES),
    _JSON,
    st.sampled_from(["hugepageLimits", "rdma", "devices", "unified", "cpu", "memory"]),
    _JSON,
)
def test_any_json_converts_or_names_its_path(
    place: tuple[str, str], value: Any, section: str, whole: Any
) -> None:
    for spec in ({place[0]: {place[1]: value}}, {section: whole}):
        try:
            to_resources(spec)
        except OCISpecError as e:
            assert e.json_path.startswith(R)
            assert e.json_path in str(e)
