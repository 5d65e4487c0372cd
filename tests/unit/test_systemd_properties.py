"""Resources -> systemd unit properties: the mapping table, the bitmask, devices, plans."""

from __future__ import annotations

from typing import Any

import pytest

from cgroup2 import BFQ, CPU, IO, RDMA, CgroupError, Entry, IOType, Memory, Pids, RDMAEntry
from cgroup2.controllers.cpu import CPUMax
from cgroup2.controllers.hugetlb import HugeTlbEntry
from cgroup2.devices.rules import DeviceRule
from cgroup2.resources import Resources, Value
from cgroup2.systemd.properties import (
    INFINITY,
    Property,
    cpu_bitmask,
    device_settings,
    plan,
    resource_settings,
    unit_properties,
    value_setting,
)

INF = 2**64 - 1
assert INFINITY == INF


def props_of(resources: Resources) -> tuple[list[tuple[str, str, Any]], list[tuple[str, str]]]:
    settings, rest = resource_settings(resources)
    props = [(p.name, p.signature, p.value) for s in settings for p in s.properties]
    return props, [(v.filename, v.value) for v in rest]


# (resources, the properties sent, the files left for the sub-group)
TABLE: list[tuple[str, Resources, list[tuple[str, str, Any]], list[tuple[str, str]]]] = [
    ("memory.max bytes", Resources(memory=Memory(max=104857600)),
     [("MemoryMax", "t", 104857600)], []),
    ("memory.max -1 is infinity", Resources(memory=Memory(max=-1)),
     [("MemoryMax", "t", INF)], []),
    ("memory.max 'max' is infinity", Resources(memory=Memory(max="max")),
     [("MemoryMax", "t", INF)], []),
    ("memory.min", Resources(memory=Memory(min=1 << 20)), [("MemoryMin", "t", 1 << 20)], []),
    ("memory.low", Resources(memory=Memory(low=2 << 20)), [("MemoryLow", "t", 2 << 20)], []),
    ("memory.high", Resources(memory=Memory(high=3 << 20)), [("MemoryHigh", "t", 3 << 20)], []),
    ("memory.swap.max", Resources(memory=Memory(swap=0)), [("MemorySwapMax", "t", 0)], []),
    ("memory.swap.max max", Resources(memory=Memory(swap=-1)),
     [("MemorySwapMax", "t", INF)], []),
    ("memory.oom.group: no property", Resources(memory=Memory(oom_group=True)),
     [], [("memory.oom.group", "1")]),
    ("cpu.weight", Resources(cpu=CPU(weight=250)), [("CPUWeight", "t", 250)], []),
    ("cpu.max quota+period", Resources(cpu=CPU(max=CPUMax.new(50000, 100000))),
     [("CPUQuotaPerSecUSec", "t", 500000), ("CPUQuotaPeriodUSec", "t", 100000)], []),
    ("cpu.max max", Resources(cpu=CPU(max="max")), [("CPUQuotaPerSecUSec", "t", INF)], []),
    ("cpu.max max with period", Resources(cpu=CPU(max="max 50000")),
     [("CPUQuotaPerSecUSec", "t", INF), ("CPUQuotaPeriodUSec", "t", 50000)], []),
    ("cpu.max rounds up to 10 ms", Resources(cpu=CPU(max="12345 100000")),
     [("CPUQuotaPerSecUSec", "t", 130000), ("CPUQuotaPeriodUSec", "t", 100000)], []),
    ("cpu.max 2 CPUs", Resources(cpu=CPU(max="200000 100000")),
     [("CPUQuotaPerSecUSec", "t", 2000000), ("CPUQuotaPeriodUSec", "t", 100000)], []),
    ("cpu.max quota alone: default period", Resources(cpu=CPU(max="25000")),
     [("CPUQuotaPerSecUSec", "t", 250000)], []),
    ("cpu.max odd period", Resources(cpu=CPU(max="10000 20000")),
     [("CPUQuotaPerSecUSec", "t", 500000), ("CPUQuotaPeriodUSec", "t", 20000)], []),
    ("cpuset.cpus", Resources(cpu=CPU(cpus="0-1")), [("AllowedCPUs", "ay", b"\x03")], []),
    ("cpuset.mems", Resources(cpu=CPU(mems="0")), [("AllowedMemoryNodes", "ay", b"\x01")], []),
    ("cpu.idle: no property", Resources(cpu=CPU(idle=True)), [], [("cpu.idle", "1")]),
    ("cpu.max.burst: no property", Resources(cpu=CPU(burst=1000)),
     [], [("cpu.max.burst", "1000")]),
    ("pids.max", Resources(pids=Pids(max=5)), [("TasksMax", "t", 5)], []),
    ("pids.max max", Resources(pids=Pids(max=-1)), [("TasksMax", "t", INF)], []),
    ("pids.max 0: systemd refuses TasksMax=0", Resources(pids=Pids(max=0)),
     [], [("pids.max", "0")]),
    ("io.weight", Resources(io=IO(weight=500)), [("IOWeight", "t", 500)], []),
    ("io.bfq.weight: no property", Resources(io=IO(bfq=BFQ(weight=300))),
     [], [("io.bfq.weight", "300")]),
    ("io.max rbps", Resources(io=IO(max=[Entry(IOType.READ_BPS, 8, 0, 1048576)])),
     [("IOReadBandwidthMax", "a(st)", [("/dev/block/8:0", 1048576)])], []),
    ("io.max wbps", Resources(io=IO(max=[Entry(IOType.WRITE_BPS, 7, 1, 4096)])),
     [("IOWriteBandwidthMax", "a(st)", [("/dev/block/7:1", 4096)])], []),
    ("io.max riops", Resources(io=IO(max=[Entry(IOType.READ_IOPS, 259, 3, 100)])),
     [("IOReadIOPSMax", "a(st)", [("/dev/block/259:3", 100)])], []),
    ("io.max wiops max", Resources(io=IO(max=[Entry(IOType.WRITE_IOPS, 8, 16, -1)])),
     [("IOWriteIOPSMax", "a(st)", [("/dev/block/8:16", INF)])], []),
    ("hugetlb: no property",
     Resources(hugetlb=[HugeTlbEntry("2MB", 4 << 20)]), [], [("hugetlb.2MB.max", "4194304")]),
    ("rdma: no property", Resources(rdma=RDMA(limit=[RDMAEntry("rxe0", 10, 20)])),
     [], [("rdma.max", "rxe0 hca_handle=10 hca_object=20")]),
    ("unified memory.high", Resources(unified={"memory.high": "max"}),
     [("MemoryHigh", "t", INF)], []),
    ("unified io.weight per device", Resources(unified={"io.weight": "8:0 200"}),
     [("IODeviceWeight", "a(st)", [("/dev/block/8:0", 200)])], []),
    ("unified io.weight default", Resources(unified={"io.weight": "default 50"}),
     [("IOWeight", "t", 50)], []),
    ("unified io.max, two keys", Resources(unified={"io.max": "8:0 rbps=10 wiops=max"}),
     [("IOReadBandwidthMax", "a(st)", [("/dev/block/8:0", 10)]),
      ("IOWriteIOPSMax", "a(st)", [("/dev/block/8:0", INF)])], []),
    ("unified cpuset.cpus", Resources(unified={"cpuset.cpus": "1,3"}),
     [("AllowedCPUs", "ay", b"\x0a")], []),
    ("unified file systemd lacks", Resources(unified={"memory.oom.group": "1"}),
     [], [("memory.oom.group", "1")]),
    ("unified text systemd cannot parse", Resources(unified={"memory.max": "1G"}),
     [], [("memory.max", "1G")]),
    ("unified misc.max", Resources(unified={"misc.max": "res_a 1"}),
     [], [("misc.max", "res_a 1")]),
]


@pytest.mark.parametrize(
    ("resources", "want_props", "want_rest"),
    [pytest.param(r, p, s, id=name) for name, r, p, s in TABLE],
)
def test_mapping_table(
    resources: Resources,
    want_props: list[tuple[str, str, Any]],
    want_rest: list[tuple[str, str]],
) -> None:
    props, rest = props_of(resources)
    assert props == want_props
    assert rest == want_rest


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 25


def test_everything_at_once_keeps_the_order_of_values() -> None:
    r = Resources(
        cpu=CPU(weight=100, max="50000 100000", cpus="0"),
        memory=Memory(max=1 << 30, high=1 << 29, swap=0),
        pids=Pids(max=10),
        io=IO(weight=100),
    )
    props, rest = props_of(r)
    assert [p[0] for p in props] == [
        "CPUWeight",
        "CPUQuotaPerSecUSec",
        "CPUQuotaPeriodUSec",
        "AllowedCPUs",
        "MemorySwapMax",
        "MemoryMax",
        "MemoryHigh",
        "TasksMax",
        "IOWeight",
    ]
    assert rest == []


def test_rounded_quota_carries_a_note() -> None:
    (s,), _ = resource_settings(Resources(cpu=CPU(max="12345 100000")))
    assert "13000" in s.note
    (s,), _ = resource_settings(Resources(cpu=CPU(max="50000 100000")))
    assert s.note == ""


def test_settings_keep_the_kernel_values_they_stand_for() -> None:
    (s,), _ = resource_settings(Resources(memory=Memory(max=4096)))
    assert s.values == (Value("memory.max", "4096"),)


# --- bitmask ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("", b""),
        ("0", b"\x01"),
        ("1", b"\x02"),
        ("7", b"\x80"),
        ("8", b"\x00\x01"),
        ("0-3,5", b"\x2f"),
        ("0-7", b"\xff"),
        ("0-8", b"\xff\x01"),
        ("1,3,9-10", b"\x0a\x06"),
        ("63", b"\x00" * 7 + b"\x80"),
        ("3,1,3", b"\x0a"),
    ],
)
def test_cpu_bitmask(text: str, mask: bytes) -> None:
    assert cpu_bitmask(text) == mask


def test_cpu_bitmask_matches_a_set_of_bits() -> None:
    cpus = {0, 2, 17, 18, 19, 40}
    mask = cpu_bitmask("0,2,17-19,40")
    got = {i * 8 + b for i, byte in enumerate(mask) for b in range(8) if byte >> b & 1}
    assert got == cpus
    assert len(mask) == 40 // 8 + 1


@pytest.mark.parametrize("bad", ["a", "1-", "3-1", "1;2", "-1", "8192"])
def test_cpu_bitmask_refuses(bad: str) -> None:
    with pytest.raises(CgroupError, match="cpu list"):
        cpu_bitmask(bad)


# --- devices ---------------------------------------------------------------------------

PROC_DEVICES = """Character devices:
  1 mem
  4 /dev/vc/0
  5 /dev/tty
136 pts

Block devices:
  7 loop
  8 sd
"""


def dev_props(rules: list[DeviceRule]) -> tuple[str, list[tuple[str, str]]]:
    s = device_settings(rules, PROC_DEVICES)
    policy, reset, *rest = s.properties
    assert (policy.name, policy.signature) == ("DevicePolicy", "s")
    # the list is reset first, then the entries are added
    assert (reset.name, reset.signature, reset.value) == ("DeviceAllow", "a(ss)", [])
    assert len(rest) <= 1
    for p in rest:
        assert (p.name, p.signature) == ("DeviceAllow", "a(ss)") and p.value
    return policy.value, rest[0].value if rest else []


def test_devices_deny_all_then_allow() -> None:
    policy, allow = dev_props(
        [
            DeviceRule(False),
            DeviceRule(True, "c", 1, 3, "rw"),
            DeviceRule(True, "c", 136, None, "rwm"),
            DeviceRule(True, "b", None, None, "r"),
            DeviceRule(True, "b", 7, None, "mr"),
        ]
    )
    assert policy == "strict"
    # one entry per exception, in runc's order (major, minor, type; '*' first)
    assert allow == [
        ("block-*", "r"),
        ("/dev/char/1:3", "rw"),
        ("block-loop", "rm"),
        ("char-pts", "rwm"),
    ]


def test_devices_rules_for_one_device_merge_as_for_the_program() -> None:
    """The rules mean for systemd what they mean for the eBPF program (cgroup v1's
    state): rules for one device add up, a deny takes bits from that device, and with
    no leading 'a' rule the default is to deny."""
    r = DeviceRule
    assert dev_props([r(False), r(True, "c", 1, 3, "r"), r(True, "c", 1, 3, "w")]) == (
        "strict",
        [("/dev/char/1:3", "rw")],
    )
    assert dev_props([r(False), r(True, "c", 1, 3, "rw"), r(False, "c", 1, 3, "w")]) == (
        "strict",
        [("/dev/char/1:3", "r")],
    )
    assert dev_props([r(True, "c", 1, 3, "r")]) == ("strict", [("/dev/char/1:3", "r")])
    assert dev_props([r(False, "c", 1, 3)]) == ("strict", [])
    assert dev_props([r(True), r(False, "c", 1, 3, "w"), r(True, "c", 1, 3, "w")]) == (
        "auto",
        [],
    )


def test_devices_type_a_names_both_kinds() -> None:
    _, allow = dev_props([DeviceRule(False), DeviceRule(True, "a", 5, 0, "r")])
    assert allow == [("/dev/char/5:0", "r"), ("/dev/block/5:0", "r")]


def test_devices_allow_all_is_auto_with_an_empty_list() -> None:
    assert dev_props([DeviceRule(False), DeviceRule(True, "c", 1, 3), DeviceRule(True)]) == (
        "auto",
        [],
    )
    assert dev_props([]) == ("auto", [])


def test_devices_harmless_deny_after_allow() -> None:
    policy, allow = dev_props(
        [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r"), DeviceRule(False, "c", 1, 5, "rw")]
    )
    assert (policy, allow) == ("strict", [("/dev/char/1:3", "r")])


@pytest.mark.parametrize(
    ("rules", "why"),
    [
        ([DeviceRule(True), DeviceRule(False, "c", 1, 3)], "allow-all"),
        ([DeviceRule(False), DeviceRule(True, "c", 1, None), DeviceRule(False, "c", 1, 3, "w")],
         "punch a hole in the wildcard exception allow c 1:\\* rwm"),
        ([DeviceRule(False), DeviceRule(True, "c", 250, None)], "no char driver name"),
        ([DeviceRule(False), DeviceRule(True, "c", None, 3)], "minor number"),
    ],
)
def test_devices_systemd_cannot_say(rules: list[DeviceRule], why: str) -> None:
    with pytest.raises(CgroupError, match=why):
        device_settings(rules, PROC_DEVICES)


def test_devices_in_resources() -> None:
    settings, rest = resource_settings(
        Resources(devices=[DeviceRule(False), DeviceRule(True, "c", 1, 3, "rwm")])
    )
    assert rest == []
    assert [(p.name, p.value) for p in settings[0].properties] == [
        ("DevicePolicy", "strict"),
        ("DeviceAllow", []),
        ("DeviceAllow", [("/dev/char/1:3", "rwm")]),
    ]


# --- unit properties and plans ----------------------------------------------------------


def test_scope_properties() -> None:
    props = {p.name: (p.signature, p.value) for p in unit_properties("a.scope", "x.slice", 42)}
    assert props == {
        "Description": ("s", "cgroup a.scope"),
        "DefaultDependencies": ("b", False),
        "Slice": ("s", "x.slice"),
        "Delegate": ("b", True),
        "PIDs": ("au", [42]),
        "MemoryAccounting": ("b", True),
        "CPUAccounting": ("b", True),
        "IOAccounting": ("b", True),
        "TasksAccounting": ("b", True),
    }


def test_slice_properties_use_wants_and_no_delegate() -> None:
    props = {p.name: p.value for p in unit_properties("my-group.slice", "system.slice", -1)}
    assert props["Wants"] == ["system.slice"]
    assert "Slice" not in props and "Delegate" not in props and "PIDs" not in props


def test_dbus_form() -> None:
    assert Property("TasksMax", "t", 5).dbus() == ("TasksMax", ("t", 5))


def test_plan_gates_on_the_version() -> None:
    r = Resources(memory=Memory(min=4096, max=8192), cpu=CPU(cpus="0", max="50000 100000"))
    settings, rest = resource_settings(r)
    p = plan(unit_properties("a.scope", "s.slice", 1), settings, rest, version=239)
    names = [x.name for x in p.properties]
    assert "MemoryMax" in names and "MemoryMin" not in names
    assert "AllowedCPUs" not in names
    # the quota and its period go together: both out when the period is unknown
    assert "CPUQuotaPerSecUSec" not in names and "CPUQuotaPeriodUSec" not in names
    assert [(v.filename, v.value) for v in p.subgroup] == [
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0"),
        ("memory.min", "4096"),
    ]
    assert len(p.warnings) == 3
    p = plan(unit_properties("a.scope", "s.slice", 1), settings, rest, version=252)
    assert p.subgroup == () and p.warnings == ()


def test_plan_drops_refused_properties() -> None:
    settings, rest = resource_settings(Resources(memory=Memory(max=8192), pids=Pids(max=3)))
    base = unit_properties("a.scope", "s.slice", 1)
    p = plan(base, settings, rest, version=252, refused={"TasksMax", "Delegate"})
    names = [x.name for x in p.properties]
    assert "TasksMax" not in names and "Delegate" not in names and "MemoryMax" in names
    assert [(v.filename, v.value) for v in p.subgroup] == [("pids.max", "3")]
    assert any("Delegate" in w for w in p.warnings)
    assert any("TasksMax" in w and "refused" in w for w in p.warnings)


def test_plan_refused_device_rules_cannot_fall_back() -> None:
    settings, rest = resource_settings(Resources(devices=[DeviceRule(False)]))
    with pytest.raises(CgroupError, match="DeviceAllow"):
        plan([], settings, rest, version=252, refused={"DeviceAllow"})


def test_value_setting_unknown_file() -> None:
    assert value_setting(Value("cgroup.max.depth", "3")) is None
    assert value_setting(Value("cpu.weight", "0")) is None  # out of systemd's range
    assert value_setting(Value("io.max", "sda rbps=1")) is None


def test_bad_resources() -> None:
    with pytest.raises(CgroupError, match="must be Resources"):
        resource_settings({"memory": 1})  # type: ignore[arg-type]
