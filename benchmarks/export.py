"""Benchmark of ``cgroup2 export``: one full scrape of /metrics, and the exporter's CPU.

    sudo .venv/bin/python benchmarks/export.py [--groups N] [--mask PARTS] [--interval SEC]
                                               [--intervals K] [--writers-only | --no-writers]
                                               [--sleepers N]
    sudo .venv/bin/python benchmarks/export.py --groups 100000 --sleepers 0 --no-writers

Makes its own parent group ``cgroup2-bench-export-<pid>`` directly under the cgroup2 mount
with N child groups (default 10,000; the first 200 with a sleeping process each), starts
``cgroup2 export --root <parent>`` as a child process on a free 127.0.0.1 port, and:

1. scrape: the wall time of full scrapes of ``/metrics`` (the body read to its end), in
   OpenMetrics as Prometheus asks for it and in the text format, after the first (which
   opens the files), and the size of the body gzip-compressed (as Prometheus asks for it);
   the bound is 1.0 s for 10,000 groups, 10 s (Prometheus's default timeout) for 100,000;
   the exporter's peak RSS;
2. CPU: the exporter's user+system time (``/proc/PID/stat``) over K scrape intervals of
   SEC seconds (default 2 of 15 s, a gzip scrape at the start of each), as a share of one
   core; the bound is 5 %;
3. writers: this project's exposition (``cgroup2.exporter.exposition``) against the
   ``prometheus-client`` package (when it can be imported) writing the same samples, on
   the Metrics of the same groups and on N synthetic groups with every part filled (what
   a group with every controller has), text and OpenMetrics.

Everything made is removed at the end, also on failure; the exporter is stopped by its pid.
Prints one line per figure and ``ok``/``OVER`` against the bounds (exit status 1 if over).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from cgroup2 import StatMask, default_mountpoint
from cgroup2.controllers._parse import U64_MAX
from cgroup2.controllers.memory import MEMORY_STAT_KEYS
from cgroup2.exporter import FAMILIES, Walker, exposition
from cgroup2.stats import (
    CpusetStat,
    CPUStat,
    HugeTlbStat,
    IOStat,
    IOStatEntry,
    MemoryEvents,
    MemoryStat,
    Metrics,
    MiscStat,
    PidsStat,
    PSIData,
    PSIStats,
    RdmaStat,
    RdmaStatEntry,
)

ACCEPT_PROMETHEUS = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
SCRAPE_BOUND = 1.0  # seconds, for 10,000 groups
CPU_BOUND = 0.05  # of one core, at a 15 s interval
FLAT_BOUND = 10.0  # seconds, for 100,000 groups (Prometheus's default scrape timeout)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@contextlib.contextmanager
def bench_parent(groups: int, sleepers: int = 200) -> Iterator[str]:
    """The benchmark's parent group (its path below the mount) with ``groups`` children."""
    mnt = default_mountpoint()
    group = f"/cgroup2-bench-export-{os.getpid()}"
    parent = mnt.rstrip("/") + group
    os.mkdir(parent)
    pids: list[int] = []
    names = [f"g{i:05d}" for i in range(groups)]
    made: list[str] = []
    try:
        for n in names:
            os.mkdir(f"{parent}/{n}")
            made.append(n)
        for n in names[:sleepers]:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    _write(f"{parent}/{n}/cgroup.procs", "0")
                    signal.pause()
                finally:
                    os._exit(0)
            pids.append(pid)
        yield group
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for n in made:
            for _ in range(100):
                try:
                    os.rmdir(f"{parent}/{n}")
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        os.rmdir(parent)


@contextlib.contextmanager
def exporter(root: str, mask: str) -> Iterator[tuple[int, int, str]]:
    """``cgroup2 export`` on a free port: (pid, port, what it said on stderr)."""
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cgroup2",
            "export",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            "--mask",
            mask,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = []
        assert p.stderr is not None
        while True:
            line = p.stderr.readline()
            if not line:
                raise RuntimeError(f"the exporter ended: {''.join(said)}")
            said.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m:
                break
        yield p.pid, int(m.group(1)), "".join(said)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def scrape(
    port: int, accept: str = ACCEPT_PROMETHEUS, *, gzip: bool = False
) -> tuple[float, bytes, str]:
    """One GET /metrics: (wall seconds, body as sent, content type); with ``gzip`` the
    request accepts it, as Prometheus's does."""
    headers = {"Accept": accept}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
        ctype = r.headers["Content-Type"]
        if gzip:
            assert r.headers["Content-Encoding"] == "gzip"
    return time.perf_counter() - t, body, ctype


def peak_rss_mb(pid: int) -> float:
    """The peak resident set of process ``pid`` (VmHWM of /proc/PID/status), MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (/proc/PID/stat utime, stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the same samples written by prometheus-client -----------------------------------------


def _samples(group: str, m: Metrics) -> Iterator[tuple[str, dict[str, str], float]]:
    """Every sample of one group: (family name as exported, labels, value)."""
    g = {"group": group}

    def lim(v: int) -> float:
        return float("inf") if v == U64_MAX else v

    def psi(resource: str, p: PSIStats | None) -> Iterator[tuple[str, dict[str, str], float]]:
        for kind, d in (("some", p.some), ("full", p.full)) if p else ():
            if d is None:
                continue
            lb = {**g, "resource": resource, "kind": kind}
            yield "cgroup_pressure_stalled_seconds_total", lb, d.total / 1e6
            for w, a in (("10s", d.avg10), ("60s", d.avg60), ("300s", d.avg300)):
                yield "cgroup_pressure_ratio", {**lb, "window": w}, round(a / 100, 6)

    if m.pids:
        if m.pids.current is not None:
            yield "cgroup_pids_current", g, m.pids.current
        if m.pids.limit is not None:
            yield "cgroup_pids_limit", g, lim(m.pids.limit)
    if c := m.cpu:
        for name, v, scale in (
            ("usage_seconds", c.usage_usec, 1e6),
            ("user_seconds", c.user_usec, 1e6),
            ("system_seconds", c.system_usec, 1e6),
            ("periods", c.nr_periods, 1),
            ("throttled_periods", c.nr_throttled, 1),
            ("throttled_seconds", c.throttled_usec, 1e6),
            ("bursts", c.nr_bursts, 1),
            ("burst_seconds", c.burst_usec, 1e6),
        ):
            if v is not None:
                yield f"cgroup_cpu_{name}_total", g, v / scale if scale != 1 else v
        yield from psi("cpu", c.psi)
    if mem := m.memory:
        for name, v in (
            ("usage_bytes", mem.usage),
            ("working_set_bytes", mem.working_set),
            ("limit_bytes", mem.usage_limit),
            ("peak_bytes", mem.max_usage),
            ("swap_usage_bytes", mem.swap_usage),
            ("swap_limit_bytes", mem.swap_limit),
            ("swap_peak_bytes", mem.swap_max_usage),
        ):
            if v is not None:
                yield f"cgroup_memory_{name}", g, lim(v) if "limit" in name else v
        keys = [(k, getattr(mem, k)) for k in MEMORY_STAT_KEYS] + list(mem.other.items())
        for k, v in keys:
            if v is not None:
                yield "cgroup_memory_stat_bytes", {**g, "key": k}, v
        yield from psi("memory", mem.psi)
    if ev := m.memory_events:
        for k in ("low", "high", "max", "oom", "oom_kill", "oom_group_kill"):
            if (v := getattr(ev, k)) is not None:
                yield "cgroup_memory_events_total", {**g, "event": k}, v
    if io := m.io:
        for e in io.usage or ():
            dev = {**g, "device": f"{e.major}:{e.minor}"}
            for op, b, n in (
                ("read", e.rbytes, e.rios),
                ("write", e.wbytes, e.wios),
                ("discard", e.dbytes, e.dios),
            ):
                if b is not None:
                    yield "cgroup_io_bytes_total", {**dev, "op": op}, b
                if n is not None:
                    yield "cgroup_io_ops_total", {**dev, "op": op}, n
        yield from psi("io", io.psi)
    for h in m.hugetlb or ():
        ps = {**g, "pagesize": h.pagesize}
        for name, v in (
            ("usage_bytes", h.current),
            ("limit_bytes", h.max),
            ("failcnt_total", h.failcnt),
            ("reserved_bytes", h.rsvd_current),
            ("reserved_limit_bytes", h.rsvd_max),
        ):
            if v is not None:
                yield f"cgroup_hugetlb_{name}", ps, lim(v) if "limit" in name else v
    for x in m.misc or ():
        res = {**g, "resource": x.name}
        for name, v in (("current", x.current), ("limit", x.max), ("failcnt_total", x.failcnt)):
            if v is not None:
                yield f"cgroup_misc_{name}", res, lim(v) if name == "limit" else v
    if cs := m.cpuset:
        yield "cgroup_cpuset_cpus_effective", g, len(cs.cpus_effective)
        yield "cgroup_cpuset_mems_effective", g, len(cs.mems_effective)


def client_text(metrics: dict[str, Metrics], openmetrics: bool) -> bytes:
    """The exposition of ``metrics`` by prometheus-client: a custom collector's metric
    families (one per name, samples added in group order), ``generate_latest``."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.metrics_core import UnknownMetricFamily
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    class Collector:
        def collect(self) -> Iterator[Any]:
            fams: dict[str, Any] = {}
            for group, m in metrics.items():
                for name, labels, value in _samples(group, m):
                    fam = fams.get(name)
                    if fam is None:
                        kind, help_ = FAMILIES[name]
                        cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}.get(
                            kind, UnknownMetricFamily
                        )
                        fam = fams[name] = cls(name, help_, labels=list(labels))
                    fam.add_metric(list(labels.values()), value)
            yield from fams.values()

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector())  # type: ignore[arg-type]
    return om_latest(reg) if openmetrics else generate_latest(reg)


def synthetic(n: int) -> dict[str, Metrics]:
    """``n`` groups with every part filled, as a group with every controller reads."""
    psi = PSIStats(PSIData(1.5, 2.25, 3.0, 1_000_000), PSIData(0.5, 0.25, 0.0, 500_000))
    out = {}
    for i in range(n):
        mem = {k: i * 7 + j for j, k in enumerate(MEMORY_STAT_KEYS)}
        out[f"/system.slice/job-{i}.service"] = Metrics(
            pids=PidsStat(3, U64_MAX),
            cpu=CPUStat(i * 1000 + 17, 2_000_000, 500_000, 10, 2, 30, 0, 0, psi=psi),
            memory=MemoryStat(
                **mem,
                usage=100 << 20,
                usage_limit=U64_MAX,
                swap_usage=0,
                swap_limit=U64_MAX,
                max_usage=200 << 20,
                swap_max_usage=0,
                psi=psi,
                other={"kernel": 4096, "percpu": 512, "zswpin": 3, "pgscan_kswapd": 9},
            ),
            memory_events=MemoryEvents(0, 1, 2, 3, 4, 5),
            rdma=RdmaStat(
                (RdmaStatEntry("mlx5_0", 1, 2),), (RdmaStatEntry("mlx5_0", 10, U64_MAX),)
            ),
            io=IOStat((IOStatEntry(8, 0, 1, 2, 3, 4, 5, 6),), psi),
            hugetlb=(HugeTlbStat("2MB", 2 << 20, 8 << 20, 0, 2 << 20, U64_MAX),),
            misc=(MiscStat("sev", 1, 5, 0),),
            cpuset=CpusetStat((0, 1), (0,)),
        )
    return out


def writers(label: str, metrics: dict[str, Metrics]) -> None:
    for om in (False, True):
        fmt = "OpenMetrics" if om else "text"
        t = time.perf_counter()
        own = exposition(metrics, openmetrics=om).encode()
        t_own = time.perf_counter() - t
        nl = b"\n"
        lines = own.count(nl) - own.count(nl + b"#")
        line = f"writers {label} {fmt}: own {t_own:.3f} s ({len(own) / 1e6:.1f} MB, {lines} lines)"
        try:
            t = time.perf_counter()
            theirs = client_text(metrics, om)
            t_client = time.perf_counter() - t
        except ImportError:
            print(line + "; prometheus-client not installed")
            continue
        print(
            f"{line}; prometheus-client {t_client:.3f} s ({len(theirs) / 1e6:.1f} MB): "
            f"own is {t_client / t_own:.1f}x faster"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--mask", default="all")
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--intervals", type=int, default=2)
    ap.add_argument("--scrapes", type=int, default=3)
    ap.add_argument("--writers-only", action="store_true", help="only the writers, synthetic")
    ap.add_argument("--no-writers", action="store_true", help="no comparison of the writers")
    ap.add_argument("--sleepers", type=int, default=200, help="groups with a process")
    args = ap.parse_args()
    n = args.groups
    if args.writers_only:
        writers(f"{n} synthetic groups, every part", synthetic(n))
        return 0
    over = False
    with bench_parent(n, args.sleepers) as root:
        t = time.perf_counter()
        with exporter(root, args.mask) as (pid, port, said):
            start = time.perf_counter() - t
            note = said.strip().replace("\n", " / ")
            print(f"exporter: {n} groups, --mask {args.mask}, ready in {start:.2f} s: {note}")
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            print(
                f"RLIMIT_NOFILE of this process: soft {soft}, hard {hard} (the exporter's "
                f"descriptors held are printed with each scrape)"
            )
            walls = []
            for accept in (ACCEPT_PROMETHEUS, "text/plain"):
                for _ in range(args.scrapes):
                    wall, body, ctype = scrape(port, accept)
                    walls.append(wall)
                m = re.search(rb"^cgroup2_exporter_groups (\d+)", body, re.M)
                fds = re.search(rb"^cgroup2_exporter_open_fds (\d+)", body, re.M)
                print(
                    f"scrape ({ctype.split(';')[0]}): {min(walls[-args.scrapes :]):.3f} s "
                    f"best, {max(walls[-args.scrapes :]):.3f} s worst of {args.scrapes}; "
                    f"{len(body) / 1e6:.1f} MB, groups {m and int(m.group(1))}, held fds "
                    f"{fds and int(fds.group(1))}"
                )
            gz_walls = []
            for _ in range(args.scrapes):
                wall, gz_body, _ = scrape(port, gzip=True)
                gz_walls.append(wall)
            print(
                f"scrape (OpenMetrics, gzip): {min(gz_walls):.3f} s best, {max(gz_walls):.3f} s "
                f"worst of {args.scrapes}; gzip body {len(gz_body) / 1e6:.2f} MB "
                f"({len(gz_body) / len(body):.1%} of the text body)"
            )
            worst = max(walls)
            if n == 10_000 or n == 100_000:
                bound = SCRAPE_BOUND if n == 10_000 else FLAT_BOUND
                ok = worst <= bound
                over |= not ok
                verdict = f"(bound {bound:g} s for {n:,} groups): {'ok' if ok else 'OVER'}"
            else:
                verdict = "(the bounds are for 10,000 and 100,000 groups)"
            print(f"full scrape wall: {worst:.3f} s worst, {min(walls):.3f} s best {verdict}")
            print(f"exporter peak RSS (VmHWM): {peak_rss_mb(pid):.0f} MB")
            time.sleep(1.0)
            c0, w0 = cpu_seconds(pid), time.perf_counter()
            for _ in range(args.intervals):
                t = time.perf_counter()
                scrape(port, gzip=True)  # as Prometheus asks
                time.sleep(max(0.0, args.interval - (time.perf_counter() - t)))
            cpu, wall = cpu_seconds(pid) - c0, time.perf_counter() - w0
            share = cpu / wall
            ok = share <= CPU_BOUND
            over |= not ok
            print(
                f"exporter CPU at a {args.interval:g} s scrape interval: {cpu:.2f} s in "
                f"{wall:.1f} s = {share:.1%} of one core (bound {CPU_BOUND:.0%}): "
                f"{'ok' if ok else 'OVER'}"
            )
            print(f"exporter peak RSS (VmHWM) at the end: {peak_rss_mb(pid):.0f} MB")
        if not args.no_writers:
            mask = StatMask(0)
            for word in args.mask.split(","):
                mask |= StatMask[word.strip().upper()]
            real = Walker(root, mountpoint=default_mountpoint(), mask=mask).sample()
            writers(f"{len(real)} real groups", real)
    if not args.no_writers:
        writers(f"{n} synthetic groups, every part", synthetic(n))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
