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
#: The round trips check values, not robustness: fewer examples.
ROUND_TRIP = settings(FUZZ, max_examples=min(300, fuzz_settings.max_examples))


def parser(module: str, name: str) -> Callable[..., Any]:
    """``cgroup2.<module>.<name>``; a missing one (renamed, moved) fails the test: the
    fuzzers name every parser they cover, none may drop out of the run unseen."""
    mod = importlib.import_module(f"cgroup2.{module}")
    fn = getattr(mod, name, None)
    assert fn is not None, f"cgroup2.{module} has no {name}: renamed? update the fuzzer"
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
# The structured inputs are built by a small grammar that reads its choices from a byte
# string that hypothesis draws: one primitive draw per example (fast enough for 2,000
# examples of each of thirty tests), and still shrinkable.

ODD_VALUES = [b"", b"max", b"-1", b"+5", b"1.5", b"0x10", b"1e3", b" 7", b"\xd9\xa3", b"\xb2",
              b"NaN", b"9" * 5000, b"1_000", b"0.00", b"100.00", b"=", b"1=2", b"18446744073709551616"]  # fmt: skip
SEPS = [b" ", b" ", b" ", b"\t", b"  ", b"", b"=", b":"]
NEWLINES = [b"\n", b"\n", b"\n", b"\r\n", b"\r", b"\n\n", b"\x0b", b"\x00"]


class Tape:
    """Choices read from bytes; 0 when the bytes run out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.data)

    def byte(self) -> int:
        v = self.data[self.i] if self.i < len(self.data) else 0
        self.i += 1
        return v

    def pick(self, seq: list[Any]) -> Any:
        return seq[self.byte() % len(seq)]

    def raw(self, n: int) -> bytes:
        out = self.data[self.i : self.i + n]
        self.i += n
        return out

    def number(self) -> bytes:
        return str(int.from_bytes(self.raw(self.byte() % 9), "big")).encode()

    def value(self) -> bytes:
        k = self.byte() % 6
        if k < 3:
            return self.number()
        if k < 5:
            return bytes(self.pick(ODD_VALUES))
        return self.raw(self.byte() % 6)

    def token(self, known: list[bytes]) -> bytes:
        return self.raw(self.byte() % 8) if self.byte() % 5 == 0 else bytes(self.pick(known))


def keyed_lines(keys: list[str]) -> st.SearchStrategy[bytes]:
    """``<key><sep><value>`` lines, keys from the file's own and others."""
    known = [k.encode() for k in keys]

    def build(data: bytes) -> bytes:
        t = Tape(data)
        nl = t.pick(NEWLINES)
        lines = []
        while t.more() and len(lines) < 16:
            line = t.token(known) + t.pick(SEPS) + t.value()
            for _ in range(t.byte() % 4 // 3 * (1 + t.byte() % 2)):
                line += b" " + t.value()
            lines.append(line)
        return nl.join(lines) + t.pick([b"\n", b"", b"\n\n"])

    return st.binary(max_size=160).map(build)


def nested_lines(names: list[str], keys: list[str]) -> st.SearchStrategy[bytes]:
    """``<name> <key>=<value> ...`` lines (io.stat, rdma.*, PSI)."""
    known_names = [n.encode() for n in names]
    known_keys = [k.encode() for k in keys]

    def build(data: bytes) -> bytes:
        t = Tape(data)
        nl = t.pick(NEWLINES)
        lines = []
        while t.more() and len(lines) < 8:
            line = t.token(known_names)
            for _ in range(t.byte() % 8):
                line += b" " + t.token(known_keys) + t.pick([b"=", b"=", b"=", b"", b" ", b"=="])
                line += t.value()
            lines.append(line)
        return nl.join(lines) + b"\n"

    return st.binary(max_size=200).map(build)


def cpu_lists() -> st.SearchStrategy[bytes]:
    def build(data: bytes) -> bytes:
        t = Tape(data)
        parts = []
        while t.more() and len(parts) < 8:
            k = t.byte() % 4
            if k == 0:
                parts.append(t.number() + b"-" + t.number())
            elif k == 1:
                parts.append(t.value())
            else:
                parts.append(str(t.byte()).encode() + b"-" + str(t.byte()).encode())
        return b",".join(parts) + t.pick([b"\n", b""])

    return st.binary(max_size=40).map(build)


ANY_BYTES = st.binary(max_size=400)

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
    ("cpuset.cpus.effective", "controllers.cpuset", "parse_cpu_list", (), cpu_lists()),
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
    outcome(_resolve(module, name), data.draw(strategy), *args)


# --- round trips of valid text ------------------------------------------------------------

KEY = st.from_regex(rb"[a-z][a-z0-9_.]{0,20}", fullmatch=True)
U64 = st.integers(0, 2**64 - 1)


@ROUND_TRIP
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


@ROUND_TRIP
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


@ROUND_TRIP
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

TEXT = st.text(max_size=300)
PATH_PIECES = ["/", "a", "b.slice", " ", ".", "..", ":", "-", "\\", "\\040", "\\134", "\\999",
               "\\008", "\\²²²", "\\12", "\t", "\r", "\x0b", "\x85", "\u2028", "\udcff", "é", "²",
               "/sys/fs/cgroup", "/sys/fs/cgroup/unified", "0::", "\n"]  # fmt: skip


def _path(t: Tape) -> str:
    return "".join(t.pick(PATH_PIECES) for _ in range(t.byte() % 6))


def _proc_cgroup_text(data: bytes) -> str:
    t = Tape(data)
    lines = []
    while t.more() and len(lines) < 8:
        k = t.byte() % 3
        if k == 0:
            lines.append("0::" + _path(t))
        elif k == 1:
            ctl = t.pick(["cpu,cpuacct", "memory", "name=systemd", "", "misc"])
            lines.append(f"{t.byte() % 14}:{ctl}:{_path(t)}")
        else:
            lines.append(_path(t))
    return "\n".join(lines)


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_proc_cgroup(kind: str, data: Any) -> None:
    parse = parser("paths", "parse_proc_cgroup")
    if kind == "arbitrary":
        text = data.draw(TEXT)
    else:
        text = data.draw(st.binary(max_size=80).map(_proc_cgroup_text))
    got = outcome(parse, text)
    if got is not None:
        assert isinstance(got, str)
        assert f"0::{got}" in text


def _mountinfo_text(data: bytes) -> str:
    t = Tape(data)
    lines = []
    while t.more() and len(lines) < 8:
        if t.byte() % 6 == 0:
            lines.append(_path(t))
            continue
        mid = t.byte()
        opts = t.pick(["rw,nosuid", "rw shared:9", "", "rw master:1 shared:2"])
        sep = t.pick([" - ", " - ", " -", "-", " - - "])
        fstype = t.pick(["cgroup2", "cgroup2", "cgroup", "cgroupfs", "tmpfs", "cgroup2 "])
        src = t.pick(["cgroup2", "none", ""])
        sopts = t.pick(["rw,nsdelegate", "rw,memory", "", "rw,cpu,cpuacct"])
        lines.append(f"{mid} 25 0:{mid} {_path(t)} {_path(t)} {opts}{sep}{fstype} {src} {sopts}")
    return "\n".join(lines)


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_mountinfo(kind: str, data: Any) -> None:
    parse = parser("paths", "parse_mountinfo")
    if kind == "arbitrary":
        text = data.draw(TEXT)
    else:
        text = data.draw(st.binary(max_size=120).map(_mountinfo_text))
    got = outcome(parse, text)
    if got is not None:
        assert isinstance(got, list)
        for m in got:
            assert m.fstype in ("cgroup", "cgroup2")


# --- OCI specs (JSON values) -------------------------------------------------------------------

OCI_KEYS = {
    "cpu": ["shares", "quota", "period", "cpus", "mems", "idle", "burst", "realtimeRuntime"],
    "memory": ["limit", "reservation", "swap", "kernel", "swappiness", "disableOOMKiller",
               "useHierarchy", "checkBeforeUpdate"],
    "pids": ["limit"],
    "blockIO": ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                "throttleWriteIOPSDevice"],
    "hugepageLimits": ["pageSize", "limit"],
    "rdma": ["mlx5_0", "hcaHandles", "hcaObjects"],
    "devices": ["allow", "type", "major", "minor", "access"],
    "network": ["classID", "priorities", "name", "priority"],
    "unified": ["memory.high", "pids.max", "cgroup.procs", "../x", "cpu.weight"],
}  # fmt: skip
ALL_KEYS = sorted({k for ks in OCI_KEYS.values() for k in ks} | {"major", "minor", "rate", "x"})
STRINGS = ["", "max", "1G", "rwm", "rw", "c", "b", "a", "x", "2MB", "1GB", "2 MB", "0-3", "3-1",
           "cgroup.procs", "../x", "10", "-1", "a b", "\x00"]  # fmt: skip


def _json(t: Tape, depth: int = 0) -> Any:
    k = t.byte() % (9 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return bool(t.byte() & 1)
    if k in (2, 5):
        n = int.from_bytes(t.raw(t.byte() % 10), "big")
        return -n if t.byte() & 1 else n
    if k == 3:
        return t.pick([0.5, -1.0, 1e300, float("inf"), float("nan"), 100.0, 2.0**64])
    if k == 4:
        return t.pick(STRINGS)
    if k in (6, 7):
        return {t.pick(ALL_KEYS): _json(t, depth + 1) for _ in range(t.byte() % 4)}
    return [_json(t, depth + 1) for _ in range(t.byte() % 4)]


def _oci_spec(data: bytes) -> Any:
    t = Tape(data)
    spec: dict[str, Any] = {}
    for name, keys in OCI_KEYS.items():
        if t.byte() % 3:
            continue
        how = t.byte() % 5
        obj = {t.pick(keys): _json(t, 1) for _ in range(1 + t.byte() % 4)} if keys else {}
        if how == 0:
            spec[name] = _json(t, 1)
        elif name in ("hugepageLimits", "devices"):
            spec[name] = [obj, {t.pick(keys): _json(t, 2) for _ in range(t.byte() % 3)}]
        elif name == "blockIO" and how == 1:
            spec[name] = {"throttleReadBpsDevice": [{"major": _json(t, 2), "minor": 0,
                                                     "rate": _json(t, 2)}]}  # fmt: skip
        else:
            spec[name] = obj
    if t.byte() % 7 == 0:
        return {"ociVersion": "1.0.2", "linux": {"resources": spec}}
    return spec


@pytest.mark.parametrize("kind", ["arbitrary", "near-valid"])
@FUZZ
@given(data=st.data())
def test_oci_to_resources(kind: str, data: Any) -> None:
    from cgroup2 import CgroupError, Resources
    from cgroup2.oci import to_resources

    source = st.binary(max_size=100).map(lambda b: _json(Tape(b)))
    if kind == "near-valid":
        source = st.binary(max_size=200).map(_oci_spec)
    spec = data.draw(source)
    try:
        r = to_resources(spec)
    except CgroupError as e:
        assert str(e).startswith("cgroups: invalid OCI resources: "), str(e)
        return
    assert isinstance(r, Resources)
    r.values()  # what was accepted can be turned into writes
