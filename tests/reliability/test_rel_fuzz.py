"""Fuzzing every parser of kernel text: arbitrary bytes, and near-valid text built from the
files' own keys and values, give a parsed result or InvalidFormatError, never another
exception. Where the text is valid by construction, the result must also be what the text
says (a round trip). 2,000 examples per test in CI (HYPOTHESIS_PROFILE=ci).

Parsers that have not landed yet are skipped with a reason.
"""

# ruff: noqa: E501  (tables of strategies read better on one line each)
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from conftest import fuzz_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reltools import no_leaks  # noqa: F401

from cgroup2 import InvalidFormatError

FUZZ = settings(fuzz_settings, suppress_health_check=list(HealthCheck))


def parser(module: str, name: str) -> Callable[..., Any]:
    """``cgroup2.<module>.<name>``, or skip the test when it is not there yet."""
    try:
        mod = importlib.import_module(f"cgroup2.{module}")
    except ImportError:
        pytest.skip(f"cgroup2.{module} has not landed")
    fn = getattr(mod, name, None)
    if fn is None:
        pytest.skip(f"cgroup2.{module}.{name} has not landed")
    return fn  # type: ignore[no-any-return]


def outcome(parse: Callable[..., Any], data: Any, *args: Any, **kw: Any) -> Any:
    """``parse(data)``: its result, or ``None`` when it raised InvalidFormatError (which
    must be a clear message). Any other exception propagates and fails the test."""
    try:
        return parse(data, *args, **kw)
    except InvalidFormatError as e:
        text = str(e)
        assert text.startswith("cgroups: "), text
        return None


# --- near-valid text -------------------------------------------------------------------

DIGITS = st.integers(0, 2**64 + 5).map(lambda n: str(n).encode())
ODD_VALUES = st.sampled_from(
    [b"", b"max", b"-1", b"+5", b"1.5", b"0x10", b"1e3", b" 7", b"\xd9\xa3", b"\xb2", b"NaN",
     b"9" * 5000, b"1_000", b"0.00", b"100.00", b"=", b"1=2"]
)  # fmt: skip
VALUES = st.one_of(DIGITS, DIGITS, ODD_VALUES, st.binary(max_size=6))
SEPS = st.sampled_from([b" ", b" ", b" ", b"\t", b"  ", b"", b"=", b":"])
NEWLINES = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r", b"\n\n", b"\x0b", b"\x00"])


def keyed_lines(keys: list[str]) -> st.SearchStrategy[bytes]:
    """``<key><sep><value>`` lines, keys from the file's own and others."""
    key = st.one_of(
        st.sampled_from([k.encode() for k in keys]), st.binary(min_size=0, max_size=8)
    )
    line = st.builds(lambda k, s, v: k + s + v, key, SEPS, VALUES)
    extra = st.lists(VALUES, max_size=2).map(lambda vs: b"".join(b" " + v for v in vs))
    full = st.builds(lambda ln, x: ln + x, line, extra)
    return st.builds(
        lambda lines, nl, end: nl.join(lines) + end,
        st.lists(full, max_size=12),
        NEWLINES,
        st.sampled_from([b"\n", b"", b"\n\n"]),
    )


def nested_lines(names: list[str], keys: list[str]) -> st.SearchStrategy[bytes]:
    """``<name> <key>=<value> ...`` lines (io.stat, rdma.*, PSI)."""
    pair = st.builds(
        lambda k, s, v: k + s + v,
        st.one_of(st.sampled_from([k.encode() for k in keys]), st.binary(max_size=6)),
        st.sampled_from([b"=", b"=", b"=", b"", b" ", b"=="]),
        VALUES,
    )
    line = st.builds(
        lambda n, ps: n + b"".join(b" " + p for p in ps),
        st.one_of(st.sampled_from([n.encode() for n in names]), st.binary(max_size=8)),
        st.lists(pair, max_size=7),
    )
    return st.builds(lambda ls, nl: nl.join(ls) + b"\n", st.lists(line, max_size=6), NEWLINES)


ANY_BYTES = st.binary(max_size=600)

MEMORY_STAT_KEYS = ["anon", "file", "kernel", "slab", "pgfault", "workingset_refault_anon",
                    "thp_fault_alloc", "percpu", "sock", "shmem"]  # fmt: skip
CPU_STAT_KEYS = ["usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled",
                 "throttled_usec", "nr_bursts", "burst_usec", "core_sched.force_idle_usec"]  # fmt: skip
MEMORY_EVENTS_KEYS = ["low", "high", "max", "oom", "oom_kill", "oom_group_kill", "sock_throttled"]
IO_KEYS = ["rbytes", "wbytes", "rios", "wios", "dbytes", "dios", "cost.vrate", "rlat"]
PSI_KEYS = ["avg10", "avg60", "avg300", "total"]

# (test id, module, function, extra args, near-valid strategy)
FLAT: list[tuple[str, str, str, tuple[Any, ...], st.SearchStrategy[bytes]]] = [
    ("memory.stat", "controllers.memory", "parse_memory_stat", (), keyed_lines(MEMORY_STAT_KEYS)),
    ("cpu.stat", "controllers.cpu", "parse_cpu_stat", (), keyed_lines(CPU_STAT_KEYS)),
    ("memory.events", "controllers.memory", "parse_memory_events", (),
     keyed_lines(MEMORY_EVENTS_KEYS)),
    ("memory.events-stream", "events", "parse_memory_events", (), keyed_lines(MEMORY_EVENTS_KEYS)),
    ("cgroup.events", "events", "parse_cgroup_events", (), keyed_lines(["populated", "frozen"])),
    ("hugetlb.events", "controllers.hugetlb", "parse_hugetlb_events", (), keyed_lines(["max"])),
    ("misc.current", "controllers.misc", "parse_misc", ("misc.current",),
     keyed_lines(["sev", "sev_es", "tdx"])),
    ("misc.max", "controllers.misc", "parse_misc_limit", (), keyed_lines(["sev", "sev_es"])),
    ("io.stat", "controllers.io", "parse_io_stat", (), nested_lines(["8:0", "259:1", "8:", ":0", "a:b"], IO_KEYS)),
    ("rdma.current", "controllers.rdma", "parse_rdma", ("rdma.current",),
     nested_lines(["mlx5_0", "hfi1"], ["hca_handle", "hca_object"])),
    ("rdma.max", "controllers.rdma", "parse_rdma_limit", (),
     nested_lines(["mlx5_0", "hfi1"], ["hca_handle", "hca_object"])),
    ("pressure", "controllers.psi", "parse_pressure", (), nested_lines(["some", "full", "other"], PSI_KEYS)),
    ("pids.current", "controllers._parse", "parse_uint", ("pids.current",), keyed_lines([""])),
    ("memory.max", "controllers._parse", "parse_limit", ("memory.max",), keyed_lines(["", "max"])),
    ("cpuset.cpus.effective", "controllers.cpuset", "parse_cpu_list", (),
     st.lists(st.one_of(DIGITS, ODD_VALUES, st.just(b"0-3"), st.just(b"5-2"), st.just(b"-")),
              max_size=6).map(lambda xs: b",".join(xs) + b"\n")),
]  # fmt: skip


def _resolve(module: str, name: str) -> Callable[..., Any]:
    if name == "parse_misc_limit":
        f = parser(module, "parse_misc")
        return lambda data: f(data, "misc.max", limit=True)
    if name == "parse_rdma_limit":
        f = parser(module, "parse_rdma")
        return lambda data: f(data, "rdma.max", limit=True)
    return parser(module, name)


@pytest.mark.parametrize(("module", "name", "args"), [pytest.param(m, n, a, id=i) for i, m, n, a, _ in FLAT])
@FUZZ
@given(data=ANY_BYTES)
def test_arbitrary_bytes(module: str, name: str, args: tuple[Any, ...], data: bytes) -> None:
    outcome(_resolve(module, name), data, *args)


@pytest.mark.parametrize(
    ("module", "name", "args", "strategy"), [pytest.param(m, n, a, s, id=i) for i, m, n, a, s in FLAT]
)
@FUZZ
@given(data=st.data())
def test_near_valid_text(
    module: str, name: str, args: tuple[Any, ...], strategy: st.SearchStrategy[bytes], data: Any
) -> None:
    text = data.draw(strategy)
    outcome(_resolve(module, name), text, *args)


# --- round trips of valid text ------------------------------------------------------------

KEY = st.from_regex(rb"[a-z][a-z0-9_.]{0,20}", fullmatch=True)
U64 = st.integers(0, 2**64 - 1)


@FUZZ
@given(pairs=st.dictionaries(KEY, U64, max_size=40))
def test_flat_keyed_round_trip(pairs: dict[bytes, int]) -> None:
    parse = parser("controllers.memory", "parse_memory_stat")
    text = b"".join(k + b" " + str(v).encode() + b"\n" for k, v in pairs.items())
    m = parse(text)
    got = {f: getattr(m, f) for f in m.__slots__ if f not in ("other", "psi")}
    for k, v in pairs.items():
        name = k.decode()
        if name in got:
            assert got[name] == v, name
        else:
            assert m.other[name] == v, name
    named = {k for k, v in got.items() if v is not None}
    assert named | set(m.other) == {k.decode() for k in pairs}


@FUZZ
@given(
    devices=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.lists(U64, min_size=6, max_size=6)),
        max_size=5,
    )
)  # fmt: skip
def test_io_stat_round_trip(devices: list[tuple[int, int, list[int]]]) -> None:
    parse = parser("controllers.io", "parse_io_stat")
    keys = ["rbytes", "wbytes", "rios", "wios", "dbytes", "dios"]
    text = b"".join(
        f"{ma}:{mi} " .encode() + " ".join(f"{k}={v}" for k, v in zip(keys, vs, strict=True)).encode() + b"\n"
        for ma, mi, vs in devices
    )  # fmt: skip
    entries = parse(text)
    assert len(entries) == len(devices)
    for e, (ma, mi, vs) in zip(entries, devices, strict=True):
        assert (e.major, e.minor) == (ma, mi)
        assert [getattr(e, k) for k in keys] == vs


@FUZZ
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["some", "full"]),
            st.lists(st.tuples(st.integers(0, 100), st.integers(0, 99)), min_size=3, max_size=3),
            U64,
        ),
        max_size=2,
    )
)  # fmt: skip
def test_pressure_round_trip(lines: list[tuple[str, list[tuple[int, int]], int]]) -> None:
    parse = parser("controllers.psi", "parse_pressure")
    text = "".join(
        f"{kind} " + " ".join(f"{k}={a}.{b:02d}" for k, (a, b) in zip(("avg10", "avg60", "avg300"), avgs, strict=True))
        + f" total={total}\n"
        for kind, avgs, total in lines
    ).encode()  # fmt: skip
    psi = parse(text)
    want: dict[str, Any] = {}
    for kind, avgs, total in lines:
        want[kind] = ([a + b / 100 for a, b in avgs], total)
    for kind in ("some", "full"):
        got = getattr(psi, kind)
        if kind not in want:
            assert got is None
            continue
        avgs, total = want[kind]
        assert got.total == total
        assert [got.avg10, got.avg60, got.avg300] == pytest.approx(avgs)


# --- /proc/<pid>/cgroup and mountinfo (text) --------------------------------------------------

TEXT = st.text(max_size=400)
PATHISH = st.text(
    alphabet=st.sampled_from([*"/abc .:-\\0123456789\t\n\r\x0b\x85\u2028", "\udcff", "é", "²"]),
    max_size=30,
)


def _proc_cgroup_lines() -> st.SearchStrategy[str]:
    line = st.one_of(
        st.builds(lambda p: f"0::{p}", PATHISH),
        st.builds(lambda n, c, p: f"{n}:{c}:{p}", st.integers(0, 13), st.sampled_from(
            ["cpu,cpuacct", "memory", "name=systemd", "", "misc"]), PATHISH),
        PATHISH,
    )  # fmt: skip
    return st.builds("\n".join, st.lists(line, max_size=8))


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_proc_cgroup(kind: str, data: Any) -> None:
    parse = parser("paths", "parse_proc_cgroup")
    text = data.draw(TEXT if kind == "arbitrary" else _proc_cgroup_lines())
    got = outcome(parse, text)
    if got is not None:
        assert isinstance(got, str)
        assert f"0::{got}" in text


def _mountinfo_lines() -> st.SearchStrategy[str]:
    field = st.one_of(PATHISH, st.sampled_from(["/", "/sys/fs/cgroup", "/sys/fs/cgroup/unified",
                                                "a\\040b", "\\134", "\\999", "\\", "\\12", "\\²²²"]))  # fmt: skip
    line = st.builds(
        lambda mid, root, mp, opts, sep, fstype, src, sopts: (
            f"{mid} 25 0:{mid} {root} {mp} {opts}{sep}{fstype} {src} {sopts}"
        ),
        st.integers(0, 999),
        field,
        field,
        st.sampled_from(["rw,nosuid", "rw shared:9", "", "rw master:1 shared:2"]),
        st.sampled_from([" - ", " -", "-", " - - "]),
        st.sampled_from(["cgroup2", "cgroup", "cgroupfs", "tmpfs", "cgroup2 "]),
        st.sampled_from(["cgroup2", "none", ""]),
        st.sampled_from(["rw,nsdelegate", "rw,memory", "", "rw,cpu,cpuacct"]),
    )
    return st.builds("\n".join, st.lists(st.one_of(line, PATHISH), max_size=8))


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_mountinfo(kind: str, data: Any) -> None:
    parse = parser("paths", "parse_mountinfo")
    text = data.draw(TEXT if kind == "arbitrary" else _mountinfo_lines())
    got = outcome(parse, text)
    if got is not None:
        assert isinstance(got, list)
        for m in got:
            assert m.fstype in ("cgroup", "cgroup2")


# --- OCI specs (JSON values) -------------------------------------------------------------------

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=True),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip
OCI_KEYS = {
    "cpu": ["shares", "quota", "period", "cpus", "mems", "idle", "burst", "realtimeRuntime"],
    "memory": ["limit", "reservation", "swap", "kernel", "swappiness", "disableOOMKiller",
               "useHierarchy", "checkBeforeUpdate"],
    "pids": ["limit"],
    "blockIO": ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                "throttleWriteIOPSDevice"],
    "hugepageLimits": [],
    "rdma": [],
    "devices": [],
    "network": ["classID", "priorities"],
    "unified": [],
}  # fmt: skip


def _oci() -> st.SearchStrategy[Any]:
    def section(name: str) -> st.SearchStrategy[Any]:
        keys = OCI_KEYS[name]
        if not keys:
            return JSON
        return st.one_of(st.dictionaries(st.sampled_from(keys), JSON, max_size=4), JSON)

    return st.fixed_dictionaries(
        {}, optional={name: section(name) for name in OCI_KEYS}
    )


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_oci_to_resources(kind: str, data: Any) -> None:
    from cgroup2 import CgroupError, Resources, to_resources

    spec = data.draw(JSON if kind == "arbitrary" else _oci())
    try:
        r = to_resources(spec)
    except CgroupError as e:
        assert str(e).startswith("cgroups: invalid OCI resources: "), str(e)
        return
    assert isinstance(r, Resources)
    r.values()  # what was accepted can be turned into writes
