"""unit: Metrics.to_dict()/to_json() and the Prometheus text exposition."""

from __future__ import annotations

import json
import math
import re

from cgroup2 import Metrics
from cgroup2.controllers.memory import MEMORY_STAT_KEYS
from cgroup2.stats import (
    U64_MAX,
    CpusetStat,
    CPUStat,
    HugeTlbStat,
    IOStat,
    IOStatEntry,
    MemoryEvents,
    MemoryStat,
    MiscStat,
    PidsStat,
    PSIData,
    PSIStats,
    RdmaStat,
    RdmaStatEntry,
    prometheus_text,
)

# The field names of containerd's io.containerd.cgroups.v2 metrics messages (the facts
# the JSON must carry).
PROTO = {
    "Metrics": {"pids", "cpu", "memory", "rdma", "io", "hugetlb", "memory_events"},
    "PidsStat": {"current", "limit"},
    "CPUStat": {
        "usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled",
        "throttled_usec", "psi", "nr_bursts", "burst_usec",
    },
    "MemoryStat": {
        *MEMORY_STAT_KEYS, "usage", "usage_limit", "swap_usage", "swap_limit", "max_usage",
        "swap_max_usage", "psi",
    },
    "MemoryEvents": {"low", "high", "max", "oom", "oom_kill"},
    "RdmaStat": {"current", "limit"},
    "RdmaEntry": {"device", "hca_handles", "hca_objects"},
    "IOStat": {"usage", "psi"},
    "IOEntry": {"major", "minor", "rbytes", "wbytes", "rios", "wios"},
    "HugeTlbStat": {"current", "max", "pagesize"},
    "PSIStats": {"some", "full"},
    "PSIData": {"avg10", "avg60", "avg300", "total"},
}

PSI = PSIStats(PSIData(1.5, 2.25, 0.0, 1_000_000), PSIData(0.0, 0.0, 0.0, 0))


def full_metrics() -> Metrics:
    mem = {k: i for i, k in enumerate(MEMORY_STAT_KEYS)}
    return Metrics(
        pids=PidsStat(3, U64_MAX),
        cpu=CPUStat(
            usage_usec=2_500_000, user_usec=2_000_000, system_usec=500_000, nr_periods=10,
            nr_throttled=2, throttled_usec=30, nr_bursts=0, burst_usec=0, psi=PSI,
            other={"nice_usec": 5},
        ),
        memory=MemoryStat(
            **mem, usage=100, usage_limit=U64_MAX, swap_usage=0, swap_limit=U64_MAX,
            max_usage=200, swap_max_usage=0, psi=PSI, other={"kernel": 4096, "zswpin": 3,
                                                              "brand_new": 1},
        ),
        memory_events=MemoryEvents(0, 1, 2, 3, 4, 5),
        rdma=RdmaStat(
            (RdmaStatEntry("mlx5_0", 1, 2),), (RdmaStatEntry("mlx5_0", 10, U64_MAX),)
        ),
        io=IOStat((IOStatEntry(8, 0, 1, 2, 3, 4, 5, 6, {"cost.vrate": 99.5}),), PSI),
        hugetlb=(HugeTlbStat("2MB", 2 << 20, 8 << 20, 0, 2 << 20, U64_MAX),),
        misc=(MiscStat("sev", 1, 5, 0),),
        cpuset=CpusetStat((0, 1), (0,)),
    )


def test_to_dict_has_every_proto_field_with_its_name() -> None:
    d = full_metrics().to_dict()
    assert PROTO["Metrics"] <= set(d)
    assert PROTO["PidsStat"] == set(d["pids"])
    assert PROTO["CPUStat"] <= set(d["cpu"])
    assert PROTO["MemoryStat"] <= set(d["memory"])
    assert PROTO["MemoryEvents"] <= set(d["memory_events"])
    assert PROTO["RdmaStat"] == set(d["rdma"])
    assert PROTO["RdmaEntry"] == set(d["rdma"]["limit"][0])
    assert PROTO["IOStat"] == set(d["io"])
    assert PROTO["IOEntry"] <= set(d["io"]["usage"][0])
    assert PROTO["HugeTlbStat"] <= set(d["hugetlb"][0])
    assert PROTO["PSIStats"] == set(d["cpu"]["psi"]) == set(d["io"]["psi"])
    assert PROTO["PSIData"] == set(d["memory"]["psi"]["some"])
    # values, max, and the keys beyond the proto
    assert d["pids"] == {"current": 3, "limit": 2**64 - 1}
    assert d["cpu"]["nice_usec"] == 5 and d["memory"]["kernel"] == 4096
    assert d["memory_events"]["oom_group_kill"] == 5
    assert d["io"]["usage"][0]["dbytes"] == 5 and d["io"]["usage"][0]["cost.vrate"] == 99.5
    assert d["hugetlb"][0] == {
        "pagesize": "2MB", "current": 2 << 20, "max": 8 << 20, "failcnt": 0,
        "rsvd_current": 2 << 20, "rsvd_max": U64_MAX,
    }
    assert d["misc"] == [{"name": "sev", "current": 1, "max": 5, "failcnt": 0}]
    assert d["cpuset"] == {"cpus_effective": [0, 1], "mems_effective": [0]}


def test_absent_is_left_out_and_json_round_trips() -> None:
    m = Metrics(cpu=CPUStat(usage_usec=1))
    assert m.to_dict() == {"cpu": {"usage_usec": 1}}
    full = full_metrics()
    assert json.loads(full.to_json()) == full.to_dict()


SAMPLE = re.compile(
    r'^(cgroup_[a-z0-9_]+)\{group="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*\} '
    r"(-?[0-9.e+-]+|\+Inf)$"
)


def parse_exposition(text: str) -> tuple[dict[str, str], list[tuple[str, str, float]]]:
    """A strict reader of what prometheus_text writes: types by family, and samples."""
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples = []
    seen_done: set[str] = set()
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helps, f"HELP twice for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name in helps and name not in types
            assert kind in ("counter", "gauge", "untyped")
            types[name] = kind
            if current is not None:
                seen_done.add(current)
            current = name
        else:
            mt = SAMPLE.match(line)
            assert mt, line
            name = mt.group(1)
            assert name == current and name not in seen_done, f"{name} not grouped"
            samples.append((name, line, float(mt.group(2))))
    return types, samples


def test_prometheus_one_group() -> None:
    text = prometheus_text(full_metrics(), group="/a/b")
    types, samples = parse_exposition(text)
    for name, kind in types.items():
        assert (kind == "counter") == name.endswith("_total"), name
    values = {line.rsplit(" ", 1)[0]: v for _, line, v in samples}
    assert values['cgroup_pids_limit{group="/a/b"}'] == math.inf
    assert values['cgroup_cpu_usage_seconds_total{group="/a/b"}'] == 2.5
    assert values['cgroup_memory_stat_bytes{group="/a/b",key="kernel"}'] == 4096
    assert values['cgroup_memory_stat_events_total{group="/a/b",key="zswpin"}'] == 3
    assert values['cgroup_memory_stat{group="/a/b",key="brand_new"}'] == 1
    assert values['cgroup_memory_events_total{group="/a/b",event="oom_kill"}'] == 4
    assert values['cgroup_io_bytes_total{group="/a/b",device="8:0",op="write"}'] == 2
    assert values['cgroup_rdma_limit{group="/a/b",device="mlx5_0",resource="hca_object"}'] == (
        math.inf
    )
    assert values['cgroup_hugetlb_usage_bytes{group="/a/b",pagesize="2MB"}'] == 2 << 20
    key = 'cgroup_pressure_ratio{group="/a/b",resource="cpu",kind="some",window="60s"}'
    assert values[key] == 0.0225
    key = 'cgroup_pressure_stalled_seconds_total{group="/a/b",resource="io",kind="some"}'
    assert values[key] == 1.0
    assert text.endswith("\n")


def test_prometheus_many_groups_share_families_and_escape_labels() -> None:
    odd = 'we"ird\\name\nx'
    text = prometheus_text({"/a": full_metrics(), odd: Metrics(pids=PidsStat(1, 5))})
    _, samples = parse_exposition(text)
    pids = [line for name, line, _ in samples if name == "cgroup_pids_current"]
    assert pids == [
        'cgroup_pids_current{group="/a"} 3',
        'cgroup_pids_current{group="we\\"ird\\\\name\\nx"} 1',
    ]
    assert text.count("# TYPE cgroup_pids_current gauge") == 1
    assert prometheus_text({}) == ""
