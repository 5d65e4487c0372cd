"""unit: what each resource setting writes (golden tables) and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cgroup2 import (
    BFQ,
    CPU,
    IO,
    RDMA,
    CgroupError,
    ControllerToggle,
    CPUMax,
    Entry,
    HugeTlb,
    HugeTlbEntry,
    IOType,
    Memory,
    Pids,
    RDMAEntry,
    Resources,
    State,
)
from cgroup2.controllers.io import WeightDevice
from cgroup2.devices.rules import DeviceRule
from cgroup2.resources import Value

V = Value
MiB = 1 << 20

# (settings, expected [(file, text), ...]) — every entry is one golden case.
GOLDEN: list[tuple[Any, list[tuple[str, str]]]] = [
    # cpu
    (CPU(weight=100), [("cpu.weight", "100")]),
    (CPU(weight=1), [("cpu.weight", "1")]),
    (CPU(weight=10000), [("cpu.weight", "10000")]),
    (CPU(max=CPUMax.new(50000, 100000)), [("cpu.max", "50000 100000")]),
    (CPU(max=CPUMax.new(None, 100000)), [("cpu.max", "max 100000")]),
    (CPU(max=CPUMax.new(-1, 250000)), [("cpu.max", "max 250000")]),
    (CPU(max=CPUMax.new(20000)), [("cpu.max", "20000 100000")]),
    (CPU(max="max"), [("cpu.max", "max")]),
    (CPU(max="30000"), [("cpu.max", "30000")]),
    (CPU(max=""), []),
    (CPU(cpus="0-3,5", mems="0"), [("cpuset.cpus", "0-3,5"), ("cpuset.mems", "0")]),
    (CPU(cpus="", mems=""), []),
    (CPU(idle=True), [("cpu.idle", "1")]),
    (CPU(idle=False), [("cpu.idle", "0")]),
    (CPU(burst=0), [("cpu.max.burst", "0")]),
    (
        CPU(weight=50, max=CPUMax("10000 100000"), cpus="1", mems="0", idle=False, burst=5000),
        [
            ("cpu.weight", "50"),
            ("cpu.max", "10000 100000"),
            ("cpuset.cpus", "1"),
            ("cpuset.mems", "0"),
            ("cpu.idle", "0"),
            ("cpu.max.burst", "5000"),
        ],
    ),
    (CPU(), []),
    # memory
    (Memory(max=512 * MiB), [("memory.max", str(512 * MiB))]),
    (Memory(max=-1), [("memory.max", "max")]),
    (Memory(max="max"), [("memory.max", "max")]),
    (Memory(swap=-1), [("memory.swap.max", "max")]),
    (Memory(swap=0), [("memory.swap.max", "0")]),
    (Memory(low=-1, high=-1, min=-1), [("memory.low", "max"), ("memory.high", "max"),
                                        ("memory.min", "max")]),
    (Memory(min=MiB), [("memory.min", str(MiB))]),
    (Memory(oom_group=True), [("memory.oom.group", "1")]),
    (Memory(oom_group=False), [("memory.oom.group", "0")]),
    (
        Memory(swap=1, max=2, low=3, high=4, min=5, oom_group=True),
        [
            ("memory.swap.max", "1"),
            ("memory.max", "2"),
            ("memory.low", "3"),
            ("memory.high", "4"),
            ("memory.min", "5"),
            ("memory.oom.group", "1"),
        ],
    ),
    (Memory(), []),
    # pids
    (Pids(max=10), [("pids.max", "10")]),
    (Pids(max=-1), [("pids.max", "max")]),
    (Pids(max="max"), [("pids.max", "max")]),
    (Pids(max=0), [("pids.max", "0")]),
    # io
    (IO(bfq=BFQ(weight=100)), [("io.bfq.weight", "100")]),
    (IO(weight=10000), [("io.weight", "10000")]),
    (IO(max=[Entry(IOType.READ_BPS, 8, 0, MiB)]), [("io.max", "8:0 rbps=1048576")]),
    (IO(max=[Entry(IOType.WRITE_BPS, 8, 16, -1)]), [("io.max", "8:16 wbps=max")]),
    (IO(max=[Entry(IOType.READ_IOPS, 253, 1, "max")]), [("io.max", "253:1 riops=max")]),
    (
        IO(
            bfq=BFQ(10),
            max=(Entry("wiops", 8, 0, 100), Entry(IOType.READ_BPS, 8, 0, 1)),
            weight=200,
        ),
        [
            ("io.bfq.weight", "10"),
            ("io.max", "8:0 wiops=100"),
            ("io.max", "8:0 rbps=1"),
            ("io.weight", "200"),
        ],
    ),
    (IO(), []),
    (
        IO(
            weight=100,
            weight_device=[WeightDevice(8, 0, 10000), WeightDevice(259, 3, 1)],
            bfq=BFQ(50),
            bfq_device=(WeightDevice(8, 16, 1000),),
        ),
        [
            ("io.bfq.weight", "50"),
            ("io.bfq.weight", "8:16 1000"),
            ("io.weight", "100"),
            ("io.weight", "8:0 10000"),
            ("io.weight", "259:3 1"),
        ],
    ),
    # rdma
    (
        RDMA(limit=[RDMAEntry("mlx5_0", 2, 2000)]),
        [("rdma.max", "mlx5_0 hca_handle=2 hca_object=2000")],
    ),
    (
        RDMA(limit=[RDMAEntry("rxe0", -1, "max"), RDMAEntry("rxe1", 0, 1)]),
        [
            ("rdma.max", "rxe0 hca_handle=max hca_object=max"),
            ("rdma.max", "rxe1 hca_handle=0 hca_object=1"),
        ],
    ),
    (RDMA(), []),
    # hugetlb
    (HugeTlb([HugeTlbEntry("2MB", 4 * MiB)]), [("hugetlb.2MB.max", str(4 * MiB))]),
    (
        HugeTlb([HugeTlbEntry("1GB", -1), HugeTlbEntry("64KB", "max")]),
        [("hugetlb.1GB.max", "max"), ("hugetlb.64KB.max", "max")],
    ),
    (HugeTlb(), []),
]


@pytest.mark.parametrize(("settings", "expected"), GOLDEN, ids=lambda x: repr(x)[:60])
def test_golden_values(settings: Any, expected: list[tuple[str, str]]) -> None:
    assert [(v.filename, v.value) for v in settings.values()] == expected
    for v in settings.values():
        assert type(v.value) is str  # exactly the text written, never a subclass


def test_resources_order_is_the_references_then_unified_last() -> None:
    r = Resources(
        unified={"memory.swap.max": "0", "cgroup.max.depth": "3"},
        hugetlb=[HugeTlbEntry("2MB", -1)],
        rdma=RDMA([RDMAEntry("mlx5_0", 2, 2000)]),
        io=IO(max=[Entry(IOType.READ_BPS, 8, 0, 1048576)]),
        pids=Pids(-1),
        memory=Memory(max=-1, high=MiB),
        cpu=CPU(weight=100, max=CPUMax.new(50000, 100000), cpus="0-1"),
    )
    assert r.values() == [
        V("cpu.weight", "100"),
        V("cpu.max", "50000 100000"),
        V("cpuset.cpus", "0-1"),
        V("memory.max", "max"),
        V("memory.high", "1048576"),
        V("pids.max", "max"),
        V("io.max", "8:0 rbps=1048576"),
        V("rdma.max", "mlx5_0 hca_handle=2 hca_object=2000"),
        V("hugetlb.2MB.max", "max"),
        V("memory.swap.max", "0"),
        V("cgroup.max.depth", "3"),
    ]
    assert isinstance(r.hugetlb, HugeTlb)
    assert Resources().values() == []


@pytest.mark.parametrize(
    ("resources", "controllers"),
    [
        (Resources(), []),
        (Resources(cpu=CPU(weight=1)), ["cpu"]),
        (Resources(cpu=CPU(max="max")), ["cpu"]),
        (Resources(cpu=CPU(cpus="0")), ["cpuset"]),
        (Resources(cpu=CPU(mems="0")), ["cpuset"]),
        (Resources(cpu=CPU(idle=True, burst=1, cpus="0-1")), ["cpu", "cpuset"]),
        (Resources(cpu=CPU()), []),
        (
            Resources(
                memory=Memory(), pids=Pids(1), io=IO(), rdma=RDMA(), hugetlb=HugeTlb()
            ),
            ["memory", "pids", "io", "rdma", "hugetlb"],
        ),
        (Resources(unified={"misc.max": "res_a 1", "memory.high": "max"}), ["misc", "memory"]),
        (Resources(memory=Memory(), unified={"memory.high": "1", "x.y": "1"}), ["memory"]),
        (Resources(devices=[DeviceRule(allow=False)]), []),
    ],
)
def test_enabled_controllers(resources: Resources, controllers: list[str]) -> None:
    assert resources.enabled_controllers() == controllers


def test_str_forms() -> None:
    assert str(Entry(IOType.READ_BPS, 8, 0, 1048576)) == "8:0 rbps=1048576"
    assert str(RDMAEntry("mlx5_0", 2, 2000)) == "mlx5_0 hca_handle=2 hca_object=2000"
    assert isinstance(CPUMax.new(1000, 1000), str)
    assert CPUMax.new(50000, 100000) == "50000 100000"
    assert CPUMax("max 100000").quota is None and CPUMax("max 100000").period == 100000
    assert CPUMax("5000").quota == 5000 and CPUMax("5000").period is None
    assert Entry("rbps", 8, 0, 1).type is IOType.READ_BPS
    assert [t.value for t in IOType] == ["rbps", "wbps", "riops", "wiops"]
    assert [s.value for s in State] == ["", "thawed", "frozen", "deleted"]
    assert str(State.FROZEN) == "frozen" and State("") is State.UNKNOWN
    assert {t.name for t in ControllerToggle} == {"ENABLE", "DISABLE"}


def test_settings_are_frozen() -> None:
    from dataclasses import FrozenInstanceError

    cpu = CPU(weight=1)
    with pytest.raises(FrozenInstanceError):
        cpu.weight = 2  # type: ignore[misc]
    r = Resources(unified={"memory.high": "1"})
    assert r.unified is not None
    with pytest.raises(TypeError):
        r.unified["memory.high"] = "2"  # type: ignore[index]


# Every refusal: (constructor, the field the message must name, why it must say).
REFUSALS: list[tuple[Callable[[], object], str, str]] = [
    (lambda: CPU(weight=0), "cpu.weight", "out of range 1..10000"),
    (lambda: CPU(weight=10001), "cpu.weight", "out of range"),
    (lambda: CPU(weight=True), "cpu.weight", "must be an int"),
    (lambda: CPU(weight="100"), "cpu.weight", "must be an int"),  # type: ignore[arg-type]
    (lambda: CPU(max="50000 100000 1"), "cpu.max", "expected"),
    (lambda: CPU(max="-1 100000"), "cpu.max", "quota must be"),
    (lambda: CPU(max="500 100000"), "cpu.max", "quota out of range"),
    (lambda: CPU(max="max 10"), "cpu.max", "period out of range"),
    (lambda: CPU(max="max 2000000"), "cpu.max", "period out of range"),
    (lambda: CPU(max="max abc"), "cpu.max", "period must be"),
    (lambda: CPUMax.new(0, 100000), "cpu.max quota", "out of range"),
    (lambda: CPUMax.new(50000, 0), "cpu.max period", "out of range"),
    (lambda: CPUMax.new(-2, 100000), "cpu.max quota", "out of range"),
    (lambda: CPU(cpus="0-3;5"), "cpuset.cpus", "malformed element"),
    (lambda: CPU(cpus="3-0"), "cpuset.cpus", "not ascending"),
    (lambda: CPU(cpus="a"), "cpuset.cpus", "malformed"),
    (lambda: CPU(cpus="0 - 3"), "cpuset.cpus", "malformed"),
    (lambda: CPU(mems="-1"), "cpuset.mems", "malformed"),
    (lambda: CPU(mems=0), "cpuset.mems", "must be a str"),  # type: ignore[arg-type]
    (lambda: CPU(idle=2), "cpu.idle", "must be a bool"),  # type: ignore[arg-type]
    (lambda: CPU(burst=-1), "cpu.max.burst", "out of range"),
    (lambda: Memory(max=-2), "memory.max", "must be >= 0"),
    (lambda: Memory(swap=-5), "memory.swap.max", "must be >= 0"),
    (lambda: Memory(low=-2), "memory.low", "must be >= 0"),
    (lambda: Memory(high=-3), "memory.high", "must be >= 0"),
    (lambda: Memory(min=-4), "memory.min", "must be >= 0"),
    (lambda: Memory(max="1G"), "memory.max", "or 'max'"),
    (lambda: Memory(max=2**64), "memory.max", "maximum"),
    (lambda: Memory(max=1.5), "memory.max", "must be an int"),  # type: ignore[arg-type]
    (lambda: Memory(oom_group=2), "memory.oom.group", "must be a bool"),  # type: ignore[arg-type]
    (lambda: Pids(max=-2), "pids.max", "must be >= 0"),
    (lambda: Pids(max="unlimited"), "pids.max", "or 'max'"),
    (lambda: BFQ(weight=0), "io.bfq.weight", "out of range 1..1000"),
    (lambda: BFQ(weight=1001), "io.bfq.weight", "out of range 1..1000"),
    (lambda: IO(weight=0), "io.weight", "out of range 1..10000"),
    (lambda: IO(weight=10001), "io.weight", "out of range 1..10000"),
    (lambda: WeightDevice(8, 0, 0), "io weight device weight", "out of range 1..10000"),
    (lambda: WeightDevice(8, -1, 5), "io weight device minor", "out of range"),
    (lambda: IO(bfq_device=[WeightDevice(8, 0, 1001)]), "io.bfq.weight weight", "1..1000"),
    (lambda: IO(weight_device=[(8, 0, 5)]), "io.weight", "must be a WeightDevice"),  # type: ignore[list-item]
    (lambda: IO(weight_device="8:0 5"), "io.weight", "sequence of WeightDevice"),  # type: ignore[arg-type]
    (lambda: Entry("xbps", 8, 0, 1), "io.max type", "rbps, wbps, riops, wiops"),  # type: ignore[arg-type]
    (lambda: Entry(IOType.READ_BPS, -1, 0, 1), "io.max major", "out of range"),
    (lambda: Entry(IOType.READ_BPS, 8, 2**32, 1), "io.max minor", "out of range"),
    (lambda: Entry(IOType.READ_BPS, 8, 0, -7), "io.max rate", "must be >= 0"),
    (lambda: IO(max="8:0 rbps=1"), "io.max", "sequence of Entry"),  # type: ignore[arg-type]
    (lambda: IO(max=["8:0 rbps=1"]), "io.max", "must be an Entry"),  # type: ignore[list-item]
    (lambda: RDMAEntry("", 1, 1), "rdma.max device", "non-empty"),
    (lambda: RDMAEntry("mlx 5", 1, 1), "rdma.max device", "without spaces"),
    (lambda: RDMAEntry("mlx5_0", -2, 1), "rdma.max hca_handle", "must be >= 0"),
    (lambda: RDMAEntry("mlx5_0", 1, 2**31), "rdma.max hca_object", "maximum"),
    (lambda: RDMA(limit=[1]), "rdma.max", "must be an RDMAEntry"),  # type: ignore[list-item]
    (lambda: HugeTlbEntry("2M", 1), "hugetlb page size", "e.g. '2MB'"),
    (lambda: HugeTlbEntry("2mb", 1), "hugetlb page size", "e.g. '2MB'"),
    (lambda: HugeTlbEntry("02MB", 1), "hugetlb page size", "e.g. '2MB'"),
    (lambda: HugeTlbEntry("2MB.max", 1), "hugetlb page size", "e.g. '2MB'"),
    (lambda: HugeTlbEntry("2MB", -2), "hugetlb.2MB.max", "must be >= 0"),
    (lambda: HugeTlb(["2MB"]), "hugetlb", "must be a HugeTlbEntry"),  # type: ignore[list-item]
    (lambda: Resources(hugetlb="2MB"), "hugetlb", "sequence"),  # type: ignore[arg-type]
    (lambda: Resources(cpu=Memory()), "cpu", "must be a CPU"),  # type: ignore[arg-type]
    (lambda: Resources(devices=["a *:* rwm"]), "devices", "DeviceRule"),  # type: ignore[list-item]
    (lambda: Resources(unified={"../x": "1"}), "unified key", "no '/'"),
    (lambda: Resources(unified={"a/b": "1"}), "unified key", "no '/'"),
    (lambda: Resources(unified={"memory.max\0": "1"}), "unified key", "NUL"),
    (lambda: Resources(unified={"..": "1"}), "unified key", "no '..'"),
    (lambda: Resources(unified={"memory..max": "1"}), "unified key", "no '..'"),
    (lambda: Resources(unified={"": "1"}), "unified key", "non-empty"),
    (lambda: Resources(unified={"cgroup.procs": "1"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"cgroup.threads": "1"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"cgroup.subtree_control": "+cpu"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"cgroup.kill": "1"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"cgroup.freeze": "1"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"cgroup.type": "threaded"}), "unified key", "not a limit"),
    (lambda: Resources(unified={"memory.max": 5}), "unified['memory.max']", "str"),  # type: ignore[dict-item]
    (lambda: Resources(unified={"memory.max": "1\0"}), "unified['memory.max']", "NUL"),
    (lambda: Resources(unified=[("memory.max", "1")]), "unified", "mapping"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "field", "why"), REFUSALS, ids=[f"{r[1]}:{r[2]}" for r in REFUSALS]
)
def test_refusals_name_field_value_and_why(
    make: Callable[[], object], field: str, why: str
) -> None:
    with pytest.raises(CgroupError) as e:
        make()
    msg = str(e.value)
    assert msg.startswith(f"cgroups: invalid {field} "), msg
    assert why in msg, msg


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 40
    assert len(REFUSALS) >= 40


@pytest.mark.parametrize(
    ("filename", "written", "old", "restore"),
    [
        ("memory.max", "1048576", b"max\n", "max"),
        ("cpu.max", "50000 100000", b"max 100000\n", "max 100000"),
        ("cpuset.cpus", "0-1", b"\n", ""),
        ("io.max", "8:0 rbps=1", b"8:0 rbps=5 wbps=max riops=max wiops=max\n",
         "8:0 rbps=5 wbps=max riops=max wiops=max"),
        ("io.max", "8:16 rbps=1", b"8:0 rbps=5 wbps=max riops=max wiops=max\n",
         "8:16 rbps=max wbps=max riops=max wiops=max"),
        ("rdma.max", "mlx5_0 hca_handle=2 hca_object=2000", b"",
         "mlx5_0 hca_handle=max hca_object=max"),
        ("rdma.max", "rxe0 hca_handle=1 hca_object=1", b"rxe0 hca_handle=3 hca_object=max\n",
         "rxe0 hca_handle=3 hca_object=max"),
        ("io.weight", "200", b"default 100\n8:0 300\n", "default 100"),
        ("io.bfq.weight", "200", b"default 100\n", "default 100"),
        ("io.weight", "8:0 200", b"default 100\n8:0 300\n", "8:0 300"),
        ("io.weight", "8:16 200", b"default 100\n8:0 300\n", "8:16 default"),
        ("io.bfq.weight", "8:0 20", b"default 100\n", "8:0 default"),
        ("memory.oom.group", "1", b"0\n", "0"),
        ("some.multi", "x", b"a 1\nb 2\n", None),  # not a file whose old text can be put back
    ],
)
def test_update_rollback_text(filename: str, written: str, old: bytes, restore: str | None) -> None:
    from cgroup2.manager import _restore_text

    assert _restore_text(filename, written, old) == restore


def test_unified_core_files_need_no_controller() -> None:
    """cpu.stat and the pressure files are in every group: naming one needs no cpu,
    memory or io controller (a hybrid host has none of them on cgroup2)."""
    from cgroup2 import Resources

    for key in ("cpu.stat", "cpu.stat.local", "cpu.pressure", "memory.pressure",
                "io.pressure", "irq.pressure"):
        assert Resources(unified={key: "0"}).enabled_controllers() == [], key
    assert Resources(unified={"cpu.max": "max"}).enabled_controllers() == ["cpu"]
    assert Resources(unified={"memory.high": "1G", "io.stat": "x"}).enabled_controllers() == [
        "memory", "io"
    ]
