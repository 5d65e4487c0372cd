"""The exporter's exposition (cgroup2.exporter) and its HTTP side, without a cgroup mount:
escaping, +Inf, HELP/TYPE, contiguous families, OpenMetrics, content negotiation, the
exporter's own metrics, serialized scrapes, and the command's option parsers."""

from __future__ import annotations

import gzip
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroup2 import Metrics
from cgroup2.cli._export import parse_listen, parse_mask
from cgroup2.cli._units import UsageError
from cgroup2.controllers.memory import MEMORY_STAT_KEYS
from cgroup2.exporter import (
    FAMILIES,
    OPENMETRICS_TYPE,
    TEXT_TYPE,
    Exporter,
    escape_label,
    exposition,
    make_server,
    unescape_label,
    wants_openmetrics,
)
from cgroup2.stats import (
    U64_MAX,
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
    StatMask,
    prometheus_text,
)

if TYPE_CHECKING:
    from cgroup2._httpserve import HTTPServer

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PSI = PSIStats(PSIData(1.5, 2.25, 3.0, 1_000_000), PSIData(0.0, 0.0, 0.0, 0))


def full() -> Metrics:
    mem = {k: i + 1 for i, k in enumerate(MEMORY_STAT_KEYS)}
    mem["inactive_file"] = 30
    return Metrics(
        pids=PidsStat(3, U64_MAX),
        cpu=CPUStat(2_500_000, 2_000_000, 500_000, 10, 2, 30, 0, 0, psi=PSI),
        memory=MemoryStat(
            **mem,
            usage=100,
            usage_limit=U64_MAX,
            swap_usage=0,
            swap_limit=1 << 20,
            max_usage=200,
            swap_max_usage=0,
            psi=PSI,
            other={"kernel": 4096, "zswpin": 3, "brand_new": 1},
        ),
        memory_events=MemoryEvents(0, 1, 2, 3, 4, 5, other={"sock_throttled": 6}),
        rdma=RdmaStat((RdmaStatEntry("mlx5_0", 1, 2),), (RdmaStatEntry("mlx5_0", 10, U64_MAX),)),
        io=IOStat((IOStatEntry(8, 0, 1, 2, 3, 4, 5, 6),), PSI),
        hugetlb=(HugeTlbStat("2MB", 2 << 20, U64_MAX, 0, 2 << 20, U64_MAX),),
    )


LABELS = r'(?:\{(?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*")(?:,[a-z_]+="(?:[^"\\\n]|\\[\\"n])*")*\})?'
SAMPLE = re.compile(rf"^([a-z_][a-z0-9_]*)({LABELS}) (-?[0-9.e+-]+|\+Inf)$")


def parse(text: str, *, openmetrics: bool = False) -> dict[str, float]:
    """A strict reader: every family has HELP then TYPE, then its samples, together; each
    sample line matches the grammar; returns {'name{labels}': value}."""
    lines = text.split("\n")
    assert lines[-1] == "", "the exposition ends with a newline"
    lines.pop()
    if openmetrics:
        assert lines.pop() == "# EOF" and "# EOF" not in lines
    seen: set[str] = set()
    family = kind = ""
    values: dict[str, float] = {}
    i = 0
    while i < len(lines):
        help_, type_ = lines[i], lines[i + 1]
        m = re.fullmatch(r"# HELP ([a-z_][a-z0-9_]*) \S.*", help_)
        assert m, help_
        family = m.group(1)
        assert family not in seen, f"{family} twice: its lines are not contiguous"
        seen.add(family)
        m = re.fullmatch(r"# TYPE ([a-z0-9_]+) (counter|gauge|untyped|unknown)", type_)
        assert m and m.group(1) == family, type_
        kind = m.group(2)
        assert (kind == "unknown") == openmetrics or kind != "untyped"
        i += 2
        n = 0
        while i < len(lines) and not lines[i].startswith("#"):
            s = SAMPLE.match(lines[i])
            assert s, lines[i]
            name = s.group(1)
            if kind == "counter":
                assert name.endswith("_total"), name
                assert (family == name.removesuffix("_total")) == openmetrics, (family, name)
                assert family == name or openmetrics
            else:
                assert name == family, (family, name)
            key = name + s.group(2)
            assert key not in values, f"sample twice: {key}"
            values[key] = float(s.group(3))
            i += 1
            n += 1
        assert n, f"family {family} without samples"
    return values


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def test_escape_label() -> None:
    assert escape_label("/a/b") == "/a/b"
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape_label("/é/\x01\t") == "/é/\x01\t"  # UTF-8 and control bytes as they are
    # bytes that are not UTF-8 are percent-encoded, and so is "%" itself: no two names
    # share a label, and none needs an escape the format lacks (such as \x)
    assert escape_label(_name(b"x\xffy")) == "x%FFy"
    assert escape_label("x%FFy") == "x%25FFy"
    assert escape_label(_name(b"bs\\x41\xff")) == "bs\\\\x41%FF"
    assert escape_label(_name(b"dup\\xff")) != escape_label(_name(b"dup\xff"))
    assert escape_label("\ud800") == "%ED%A0%80"  # a lone surrogate a caller made
    for raw in (b"x\xffy", b"x%FFy", b'a\\b"c\nd\xc3', b"%%25", b"\xed\xa0\x80"):
        assert unescape_label(escape_label(_name(raw))) == raw


_NAME = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
)


@given(names=st.lists(_NAME, min_size=1, max_size=8, unique=True))
def test_any_group_names_round_trip_through_both_formats(names: list[bytes]) -> None:
    """Names of any bytes but / and NUL: the exposition is UTF-8, every label value uses
    only the escapes the formats define, and each group's label gives its bytes back
    (so different names never share a series)."""
    groups = {"/p/" + _name(n): Metrics(pids=PidsStat(i, 10)) for i, n in enumerate(names)}
    for om in (False, True):
        text = exposition(groups, openmetrics=om).encode("utf-8").decode("utf-8")
        values = parse(text, openmetrics=om)
        got = {}
        for key, v in values.items():
            m = re.fullmatch(r'cgroup_pids_current\{group="((?:[^"\\\n]|\\[\\"n])*)"\}', key)
            if m:
                got[unescape_label(m.group(1))] = v
        assert got == {b"/p/" + n: i for i, n in enumerate(names)}


def test_text_format_values_inf_and_conventions() -> None:
    text = exposition({"/a/b": full()}, procs={"/a/b": 2})
    v = parse(text)
    g = '{group="/a/b"}'
    assert v["cgroup_procs" + g] == 2
    assert v["cgroup_pids_current" + g] == 3
    assert v["cgroup_pids_limit" + g] == math.inf
    assert "cgroup_pids_limit" + g + " +Inf" in text.split("\n")
    assert v["cgroup_cpu_usage_seconds_total" + g] == 2.5
    assert v["cgroup_cpu_throttled_seconds_total" + g] == 30e-6
    assert v["cgroup_memory_usage_bytes" + g] == 100
    assert v["cgroup_memory_working_set_bytes" + g] == 70  # 100 - inactive_file 30
    assert v["cgroup_memory_limit_bytes" + g] == math.inf
    assert v["cgroup_memory_swap_limit_bytes" + g] == 1 << 20
    assert v['cgroup_memory_stat_bytes{group="/a/b",key="kernel"}'] == 4096
    assert v['cgroup_memory_stat_events_total{group="/a/b",key="pgfault"}'] == (
        MEMORY_STAT_KEYS.index("pgfault") + 1
    )
    assert v['cgroup_memory_stat{group="/a/b",key="brand_new"}'] == 1
    assert v['cgroup_memory_events_total{group="/a/b",event="oom_kill"}'] == 4
    assert v['cgroup_memory_events_total{group="/a/b",event="sock_throttled"}'] == 6
    assert v['cgroup_io_bytes_total{group="/a/b",device="8:0",op="discard"}'] == 5
    assert v['cgroup_io_ops_total{group="/a/b",device="8:0",op="write"}'] == 4
    assert v['cgroup_rdma_limit{group="/a/b",device="mlx5_0",resource="hca_object"}'] == (math.inf)
    assert v['cgroup_hugetlb_limit_bytes{group="/a/b",pagesize="2MB"}'] == math.inf
    key = 'cgroup_pressure_ratio{group="/a/b",resource="memory",kind="some",window="60s"}'
    assert v[key] == 0.0225
    key = 'cgroup_pressure_stalled_seconds_total{group="/a/b",resource="io",kind="some"}'
    assert v[key] == 1.0
    # every family written has its HELP/TYPE from the table, and the table's type
    for name, (kind, help_) in FAMILIES.items():
        if f"# HELP {name} " in text:
            assert f"# HELP {name} {help_}\n# TYPE {name} {kind}\n" in text
    assert exposition({}) == ""


def test_many_groups_keep_each_family_together_and_escape_group_labels() -> None:
    odd = 'we"ird\\name\nx'
    groups = {"/a": full(), odd: Metrics(pids=PidsStat(1, 5)), "/c": full()}
    text = exposition(groups)
    v = parse(text)  # fails if a family's samples are split by another family
    pids = [line for line in text.split("\n") if line.startswith("cgroup_pids_current{")]
    assert pids == [
        'cgroup_pids_current{group="/a"} 3',
        'cgroup_pids_current{group="we\\"ird\\\\name\\nx"} 1',
        'cgroup_pids_current{group="/c"} 3',
    ]
    assert v['cgroup_pids_limit{group="we\\"ird\\\\name\\nx"}'] == 5
    assert text.count("# TYPE cgroup_pids_current gauge") == 1


def test_openmetrics() -> None:
    text = exposition({"/a": full()}, openmetrics=True, own={"cgroup2_exporter_groups": 1})
    v = parse(text, openmetrics=True)
    assert text.endswith("\n# EOF\n")
    assert "# TYPE cgroup_cpu_usage_seconds counter\n" in text
    assert "# HELP cgroup_cpu_usage_seconds CPU time used" in text
    assert "# TYPE cgroup_cpu_usage_seconds_total" not in text
    assert "# TYPE cgroup_memory_stat unknown\n" in text
    assert v['cgroup_cpu_usage_seconds_total{group="/a"}'] == 2.5
    assert v["cgroup2_exporter_groups"] == 1
    assert exposition({}, openmetrics=True) == "# EOF\n"


def test_stat_prometheus_text_is_the_same_exposition() -> None:
    metrics = {"/a": full(), "/b": Metrics(cpu=CPUStat(usage_usec=1))}
    assert prometheus_text(metrics) == exposition(metrics)
    assert prometheus_text(full(), group="/x") == exposition({"/x": full()})


@pytest.mark.parametrize(
    ("accept", "om"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text; version=1.0.0", True),
        ("text/plain;version=0.0.4", False),
        ("text/plain;q=1,application/openmetrics-text;q=0.5", False),
        ("application/openmetrics-text;q=0", False),
        ("*/*", False),
        ("", False),
        (None, False),
    ],
)
def test_content_negotiation(accept: str | None, om: bool) -> None:
    assert wants_openmetrics(accept) is om


class FakeSampler:
    """Counts its samples and fails if two overlap (the exporter must serialize them)."""

    def __init__(self, groups: Mapping[str, Metrics]) -> None:
        self.groups = dict(groups)
        self.samples = 0
        self.busy = False
        self.overlaps = 0
        self.procs = {g: 1 for g in groups}
        self.gate: threading.Event | None = None

    def sample(self) -> dict[str, Metrics]:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        if self.gate is not None:
            assert self.gate.wait(30)
        time.sleep(0.02)
        self.samples += 1
        self.busy = False
        return dict(self.groups)

    def read(self, group: str, name: str) -> bytes | None:
        assert name == "cgroup.procs"
        return b"".join(b"%d\n" % (100 + i) for i in range(self.procs[group]))

    @property
    def fd_count(self) -> int:
        return 7 * len(self.groups)

    def close(self) -> None:
        pass


def test_exporter_scrape_has_process_counts_and_its_own_cost() -> None:
    fake = FakeSampler({"/a": full(), "/b": Metrics(cpu=CPUStat(usage_usec=5))})
    fake.procs["/b"] = 3
    ex = Exporter(fake)
    v = parse(ex.scrape().decode())
    assert v['cgroup_procs{group="/a"}'] == 1 and v['cgroup_procs{group="/b"}'] == 3
    assert v["cgroup2_exporter_groups"] == 2
    assert v["cgroup2_exporter_open_fds"] == 14
    assert v["cgroup2_exporter_scrapes_total"] == 1
    assert (
        0.02
        <= v["cgroup2_exporter_sample_duration_seconds"]
        <= v["cgroup2_exporter_scrape_duration_seconds"]
    )
    assert v["cgroup2_exporter_cpu_seconds_total"] > 0
    v = parse(ex.scrape(openmetrics=True).decode(), openmetrics=True)
    assert v["cgroup2_exporter_scrapes_total"] == 2
    no = Exporter(FakeSampler({"/a": full()}), procs=False).scrape().decode()
    assert "cgroup_procs" not in no


def test_http_server_negotiates_and_shares_concurrent_scrapes() -> None:
    fake = FakeSampler({"/a": full()})
    server = make_server(Exporter(fake), "127.0.0.1", 0)
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def get(accept: str | None) -> tuple[str, str]:
            req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.headers["Content-Type"], r.read().decode()

        ctype, body = get(PROMETHEUS_ACCEPT)
        assert ctype == OPENMETRICS_TYPE and body.endswith("# EOF\n")
        parse(body, openmetrics=True)
        ctype, body = get(None)
        assert ctype == TEXT_TYPE and "# EOF" not in body
        parse(body)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=10)
        assert e.value.code == 404
        # 6 requests while a sample runs (held until all 6 wait): they share that one
        # sample and get the same body
        before = fake.samples
        fake.gate = threading.Event()
        got: list[str] = []
        threads = [threading.Thread(target=lambda: got.append(get(None)[1])) for _ in range(6)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while len(server._waiting) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server._waiting) == 6
        fake.gate.set()
        for th in threads:
            th.join()
        assert fake.samples == before + 1 and fake.overlaps == 0
        assert len(got) == 6 and len(set(got)) == 1
        # gzip when asked; HEAD; other methods refused
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            parse(gzip.decompress(r.read()).decode())
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip;q=0"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Encoding"] is None
            parse(r.read().decode())
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            assert r.status == 200 and r.read() == b"" and int(r.headers["Content-Length"]) > 0
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x"), timeout=10)
        assert e.value.code == 405
    finally:
        server.shutdown()
        server.server_close()
        t.join()


def test_option_parsers() -> None:
    assert parse_listen("127.0.0.1:9753") == ("127.0.0.1", 9753)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":9753") == ("", 9753)
    for bad in ("9753", "host:", "host:http", "h:70000"):
        with pytest.raises(UsageError):
            parse_listen(bad)
    assert parse_mask("all") == StatMask.ALL
    assert parse_mask("cpu, Memory,psi") == StatMask.CPU | StatMask.MEMORY | StatMask.PSI
    assert parse_mask("io-pressure") == StatMask.IO_PRESSURE
    with pytest.raises(UsageError, match="'cpux'"):
        parse_mask("cpu,cpux")


def test_walker_reads_a_tree_each_sample(tmp_path: Path) -> None:
    """The exporter's last resort (no descriptor held): every group under the root, by
    open/read/close on each sample, with its process count; a group made or removed
    between samples is in or out of the next one."""
    from cgroup2.exporter import Walker

    def group(rel: str, usage: int, pids: list[int]) -> None:
        d = tmp_path / rel.strip("/") if rel != "/" else tmp_path
        d.mkdir(exist_ok=True)
        (d / "cgroup.controllers").write_text("\n")
        (d / "cpu.stat").write_text(f"usage_usec {usage}\nuser_usec {usage}\nsystem_usec 0\n")
        (d / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))

    group("/", 9, [1])
    group("/a", 5, [10, 11])
    group("/a/b", 2, [])
    w = Walker("/", mountpoint=str(tmp_path), mask=StatMask.CPU)
    m = w.sample()
    assert list(m) == ["/", "/a", "/a/b"]
    assert m["/a"].cpu is not None and m["/a"].cpu.usage_usec == 5
    assert w.procs == {"/": 1, "/a": 2, "/a/b": 0}
    assert Walker("/a", mountpoint=str(tmp_path), mask=StatMask.CPU).sample().keys() == {
        "/a",
        "/a/b",
    }
    assert Walker("/", mountpoint=str(tmp_path), mask=StatMask.CPU, depth=1).sample().keys() == {
        "/",
        "/a",
    }
    group("/c", 1, [5])
    v = parse(Exporter(w).scrape().decode())
    assert v['cgroup_procs{group="/c"}'] == 1 and v['cgroup_procs{group="/a"}'] == 2
    assert v['cgroup_cpu_usage_seconds_total{group="/a/b"}'] == 2e-6
    assert v["cgroup2_exporter_groups"] == 4 and v["cgroup2_exporter_open_fds"] == 0


def test_groups_left_out_by_the_sampler_are_counted_and_told_once() -> None:
    fake = FakeSampler({"/a": full()})
    said: list[str] = []
    ex = Exporter(fake, log=said.append)
    v = parse(ex.scrape().decode())
    assert v['cgroup2_exporter_groups_left_out{reason="mount_point"}'] == 0 and said == []
    fake.skipped = {"/a/m": "mount_point"}  # type: ignore[attr-defined]
    for _ in range(3):
        v = parse(ex.scrape().decode())
        assert v['cgroup2_exporter_groups_left_out{reason="mount_point"}'] == 1
    assert len(said) == 1 and "/a/m is a mount point" in said[0]
    fake.skipped = {}  # type: ignore[attr-defined]
    v = parse(ex.scrape(openmetrics=True).decode(), openmetrics=True)
    assert v['cgroup2_exporter_groups_left_out{reason="mount_point"}'] == 0


@pytest.mark.parametrize("unlimited", [U64_MAX, 2**63 - 4096, 2**63 - 2**30, 2**63 - 2**21])
def test_every_kernel_no_limit_is_inf(unlimited: int) -> None:
    """``max`` (U64_MAX) and LONG_MAX rounded down to any page size (hugetlb prints
    9223372036854771712 for no limit on x86-64) are +Inf; a real limit is itself."""
    m = Metrics(
        pids=PidsStat(1, unlimited),
        memory=MemoryStat(usage_limit=unlimited, swap_limit=unlimited),
        rdma=RdmaStat(None, (RdmaStatEntry("mlx5_0", unlimited, unlimited),)),
        hugetlb=(HugeTlbStat("1GB", 0, unlimited, 0, 0, unlimited),),
        misc=(MiscStat("sev", 0, unlimited, 0),),
    )
    for om in (False, True):
        v = parse(exposition({"/a": m}, openmetrics=om), openmetrics=om)
        limits = {k: x for k, x in v.items() if "_limit" in k.split("{")[0]}
        assert len(limits) == 8, limits
        assert all(x == math.inf for x in limits.values()), limits
    real = Metrics(hugetlb=(HugeTlbStat("2MB", 0, 2 << 20, 0, 0, 4 << 20),))
    v = parse(exposition({"/a": real}))
    assert v['cgroup_hugetlb_limit_bytes{group="/a",pagesize="2MB"}'] == 2 << 20


def test_http_server_timeouts_and_cap_close_what_they_should() -> None:
    """A request left half-sent is closed after read_timeout, a kept-alive connection
    after idle_timeout, a client that reads nothing of a large body after write_timeout;
    past max_connections the longest-idle one is evicted. Each close is counted."""
    import socket

    groups = {f"/g{i:05d}": full() for i in range(3000)}  # a body of several MB
    socks: list[socket.socket] = []

    def serve(**kw: float) -> tuple[HTTPServer, threading.Thread]:
        server = make_server(Exporter(FakeSampler(groups)), "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        t.start()
        return server, t

    def connect(port: int) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(60)
        s.connect(("127.0.0.1", port))
        socks.append(s)
        return s

    def closed_by_server(s: socket.socket) -> bool:
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            return False
        return True

    timed, t1 = serve(read_timeout=0.3, idle_timeout=0.6, write_timeout=0.6)
    capped, t2 = serve(max_connections=3, idle_timeout=600.0)
    try:
        port = timed.server_address[1]
        half = connect(port)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line: never ends
        assert closed_by_server(half)
        idle = connect(port)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_by_server(idle)  # the index page, then closed when idle
        slow = connect(port)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 60
        while timed.closed["write_timeout"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        closed = dict(timed.closed)
        assert closed["read_timeout"] == 1 and closed["idle_timeout"] >= 1, closed
        assert closed["write_timeout"] == 1 and closed["evicted"] == 0, closed
        # the cap: the two longest idle go when two more come
        port = capped.server_address[1]
        first = [connect(port) for _ in range(3)]
        more = [connect(port) for _ in range(2)]
        assert closed_by_server(first[0]) and closed_by_server(first[1])
        more[1].sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert closed_by_server(more[1])  # answered, then closed as asked
        assert capped.closed["evicted"] == 2 and capped.closed["idle_timeout"] == 0
    finally:
        for s in socks:
            s.close()
        for server, t in ((timed, t1), (capped, t2)):
            server.shutdown()
            t.join()
            server.server_close()
