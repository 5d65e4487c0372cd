"""The Prometheus text format (0.0.4) and OpenMetrics 1.0 of group statistics: the one
writer, for ``cgroup2 export`` (:mod:`cgroup2.exporter`) and
:func:`cgroup2.stats.prometheus_text`.

Conventions (Prometheus's): every family is named ``cgroup_...``, has one HELP and one TYPE
line, and its samples follow them together (a family's lines must be contiguous); every
sample carries a ``group`` label with the group's path below the mount (``/a/b``; bytes
that are not UTF-8 and ``%`` percent-encoded, then ``\\``, ``"`` and newline escaped: see
:func:`escape_label`); counters end in ``_total`` (in OpenMetrics the TYPE and HELP
lines name the family without it); times are seconds, sizes bytes, PSI averages ratios
(0..1); a ``max`` limit is ``+Inf``. Absent values are left out and a family without
samples is not written.

The writer reads a group's statistics through :class:`Sample` (what it uses of
:class:`cgroup2.stats.Metrics`), so that :mod:`cgroup2.stats` can call it without this
module importing it. It is this project's own, not the ``prometheus-client`` package: on
10,000 groups it writes the same samples several times faster (``benchmarks/export.py``
measures both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from .controllers._values import NO_LIMIT_MIN
from .controllers.cpu import CPUStat
from .controllers.cpuset import CpusetStat
from .controllers.hugetlb import HugeTlbStat
from .controllers.io import IOStat
from .controllers.memory import MEMORY_STAT_KEYS, MemoryEvents, MemoryStat
from .controllers.misc import MiscStat
from .controllers.pids import PidsStat
from .controllers.psi import PSIStats
from .controllers.rdma import RdmaStat

__all__ = [
    "FAMILIES",
    "OPENMETRICS_TYPE",
    "TEXT_TYPE",
    "Sample",
    "escape_label",
    "exposition",
    "qvalues",
    "unescape_label",
    "wants_openmetrics",
]


class Sample(Protocol):
    """What the writer reads of one group's statistics (:class:`cgroup2.stats.Metrics`)."""

    @property
    def pids(self) -> PidsStat | None: ...
    @property
    def cpu(self) -> CPUStat | None: ...
    @property
    def memory(self) -> MemoryStat | None: ...
    @property
    def memory_events(self) -> MemoryEvents | None: ...
    @property
    def rdma(self) -> RdmaStat | None: ...
    @property
    def io(self) -> IOStat | None: ...
    @property
    def hugetlb(self) -> tuple[HugeTlbStat, ...] | None: ...
    @property
    def misc(self) -> tuple[MiscStat, ...] | None: ...
    @property
    def cpuset(self) -> CpusetStat | None: ...


#: Content types of the two formats.
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# memory.stat keys that are sizes in bytes (Documentation/admin-guide/cgroup-v2.rst); the
# others are event counts (the prefixes below) or, if unknown, exported untyped.
# fmt: off
_MEMORY_BYTES = frozenset(
    (
        "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
        "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
        "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
        "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
        "slab_unreclaimable", "slab", "hugetlb",
    )
)
# fmt: on
_MEMORY_EVENT_PREFIXES = ("pg", "workingset_", "thp_", "zswp", "pswp", "numa_", "swpin", "swpout")
_MEMORY_EVENTS_NAMED = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")

#: name -> (type, help); the order here is the order of the output.
FAMILIES: dict[str, tuple[str, str]] = {
    "cgroup_procs": ("gauge", "Processes in the group itself (lines of cgroup.procs)."),
    "cgroup_pids_current": ("gauge", "Tasks in the group and below (pids.current)."),
    "cgroup_pids_limit": ("gauge", "Task limit (pids.max); +Inf for max."),
    "cgroup_cpu_usage_seconds_total": ("counter", "CPU time used (cpu.stat usage_usec)."),
    "cgroup_cpu_user_seconds_total": ("counter", "CPU time in user mode (cpu.stat user_usec)."),
    "cgroup_cpu_system_seconds_total": (
        "counter",
        "CPU time in kernel mode (cpu.stat system_usec).",
    ),
    "cgroup_cpu_periods_total": ("counter", "Enforcement periods elapsed (cpu.stat nr_periods)."),
    "cgroup_cpu_throttled_periods_total": (
        "counter",
        "Periods in which the group was throttled (cpu.stat nr_throttled).",
    ),
    "cgroup_cpu_throttled_seconds_total": ("counter", "Time throttled (cpu.stat throttled_usec)."),
    "cgroup_cpu_bursts_total": ("counter", "Periods with a burst (cpu.stat nr_bursts)."),
    "cgroup_cpu_burst_seconds_total": ("counter", "Time spent bursting (cpu.stat burst_usec)."),
    "cgroup_memory_usage_bytes": ("gauge", "Memory in use (memory.current)."),
    "cgroup_memory_working_set_bytes": (
        "gauge",
        "Memory in use less inactive file pages (memory.current - memory.stat inactive_file).",
    ),
    "cgroup_memory_limit_bytes": ("gauge", "Memory limit (memory.max); +Inf for max."),
    "cgroup_memory_peak_bytes": ("gauge", "Peak memory in use (memory.peak)."),
    "cgroup_memory_swap_usage_bytes": ("gauge", "Swap in use (memory.swap.current)."),
    "cgroup_memory_swap_limit_bytes": ("gauge", "Swap limit (memory.swap.max); +Inf for max."),
    "cgroup_memory_swap_peak_bytes": ("gauge", "Peak swap in use (memory.swap.peak)."),
    "cgroup_memory_stat_bytes": ("gauge", "A size from memory.stat, by key."),
    "cgroup_memory_stat_events_total": ("counter", "An event count from memory.stat, by key."),
    "cgroup_memory_stat": ("untyped", "Another memory.stat key this library does not classify."),
    "cgroup_memory_events_total": ("counter", "Memory events (memory.events), by event."),
    "cgroup_io_bytes_total": ("counter", "Bytes transferred (io.stat rbytes/wbytes/dbytes)."),
    "cgroup_io_ops_total": ("counter", "Operations (io.stat rios/wios/dios)."),
    "cgroup_rdma_current": ("gauge", "RDMA resources in use (rdma.current)."),
    "cgroup_rdma_limit": ("gauge", "RDMA resource limit (rdma.max); +Inf for max."),
    "cgroup_hugetlb_usage_bytes": ("gauge", "Huge pages in use (hugetlb.<size>.current)."),
    "cgroup_hugetlb_limit_bytes": ("gauge", "Huge page limit (hugetlb.<size>.max); +Inf for max."),
    "cgroup_hugetlb_failcnt_total": (
        "counter",
        "Allocations refused by the limit (hugetlb.<size>.events max).",
    ),
    "cgroup_hugetlb_reserved_bytes": (
        "gauge",
        "Huge pages reserved (hugetlb.<size>.rsvd.current).",
    ),
    "cgroup_hugetlb_reserved_limit_bytes": (
        "gauge",
        "Huge page reservation limit (hugetlb.<size>.rsvd.max); +Inf for max.",
    ),
    "cgroup_misc_current": ("gauge", "Misc resource in use (misc.current)."),
    "cgroup_misc_limit": ("gauge", "Misc resource limit (misc.max); +Inf for max."),
    "cgroup_misc_failcnt_total": ("counter", "Charges refused by the limit (misc.events)."),
    "cgroup_cpuset_cpus_effective": ("gauge", "CPUs the group may use (cpuset.cpus.effective)."),
    "cgroup_cpuset_mems_effective": (
        "gauge",
        "Memory nodes the group may use (cpuset.mems.effective).",
    ),
    "cgroup_pressure_stalled_seconds_total": (
        "counter",
        "Time with tasks stalled on a resource (<resource>.pressure total).",
    ),
    "cgroup_pressure_ratio": (
        "gauge",
        "Share of time stalled, averaged over a window (<resource>.pressure avg10/60/300).",
    ),
    # the exporter's own cost (written by Exporter.scrape, last)
    "cgroup2_exporter_scrape_duration_seconds": (
        "gauge",
        "Wall time of this scrape until this line: the sample and its exposition.",
    ),
    "cgroup2_exporter_sample_duration_seconds": (
        "gauge",
        "Wall time of this scrape's sample (one pread per held file).",
    ),
    "cgroup2_exporter_groups": ("gauge", "Groups sampled by this scrape."),
    "cgroup2_exporter_groups_left_out": (
        "gauge",
        "Subtrees under the root not sampled, by reason (mount_point: something is mounted "
        "there, never entered; max_depth, max_groups: past those bounds); the groups below "
        "the top of each are not counted.",
    ),
    "cgroup2_exporter_groups_held": (
        "gauge",
        "Groups whose directory and files are held open (one pread a file a scrape).",
    ),
    "cgroup2_exporter_groups_reopened": (
        "gauge",
        "Groups past the descriptor budget, read by open/read/close on each scrape.",
    ),
    "cgroup2_exporter_open_fds": (
        "gauge",
        "Descriptors of group files the exporter holds open between scrapes.",
    ),
    "cgroup2_exporter_scrapes_total": ("counter", "Scrapes served since the exporter started."),
    "cgroup2_exporter_connections": ("gauge", "HTTP connections open now."),
    "cgroup2_exporter_connections_closed_total": (
        "counter",
        "HTTP connections the exporter closed, by reason (timeouts, evicted or refused "
        "past the connection cap, bad requests).",
    ),
    "cgroup2_exporter_cpu_seconds_total": (
        "counter",
        "CPU time (user and system) of the exporter process since it started.",
    ),
}

_INF = "+Inf"


_PERCENT = re.compile("[%\ud800-\udfff]")


def _percent(m: re.Match[str]) -> str:
    c = m.group()
    if c == "%":
        return "%25"
    if "\udc80" <= c <= "\udcff":  # a byte that is not UTF-8, as surrogateescape reads it
        return f"%{ord(c) - 0xDC00:02X}"
    # another lone surrogate (only a Python caller makes one): its bytes
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))


def escape_label(value: str) -> str:
    """A label value as the exposition writes it between quotes: valid UTF-8 for any name,
    and a different text for every different name (injective), so that no name can break
    a scrape or share another's series.

    Two steps, reversible in this order: (1) the bytes of a name that are not UTF-8
    (read with ``surrogateescape``, as the library reads names) are written ``%XX`` (two
    upper-case hex digits), and a ``%`` itself ``%25``: percent-encoding of exactly those
    bytes, so ``urllib.parse.unquote_to_bytes`` of the label (once the format's escapes are
    undone) gives the name's bytes back; every other character, control characters
    included, is itself. (2) The escapes the text format and OpenMetrics define, and no
    other: ``\\`` -> ``\\\\``, ``"`` -> ``\\"``, newline -> ``\\n``.
    """
    if "%" in value or not value.isascii():
        try:
            value.encode("utf-8")
            if "%" in value:
                value = value.replace("%", "%25")
        except UnicodeEncodeError:
            value = _PERCENT.sub(_percent, value)
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def unescape_label(text: str) -> bytes:
    """The name's bytes back from a label value as :func:`escape_label` wrote it (with the
    format's escapes still in: ``\\\\``, ``\\"``, ``\\n``)."""
    from urllib.parse import unquote_to_bytes

    plain = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text, flags=re.S)
    return unquote_to_bytes(plain.encode("utf-8"))


def _lim(v: int) -> str | int:
    """A limit's value: ``+Inf`` for every "no limit" of the kernel (``max``, and the
    ``LONG_MAX`` rounded to a page size that hugetlb prints: 9223372036854771712)."""
    return _INF if v >= NO_LIMIT_MIN else v


# (resource, kind) -> the label text after the group of the stall counter and of the
# three averages (the same few strings for every group)
_PSI_LABELS = {
    (r, k): (
        f',resource="{r}",kind="{k}"}} ',
        f',resource="{r}",kind="{k}",window="10s"}} ',
        f',resource="{r}",kind="{k}",window="60s"}} ',
        f',resource="{r}",kind="{k}",window="300s"}} ',
    )
    for r in ("cpu", "memory", "io")
    for k in ("some", "full")
}
# a PSI average (percent, two decimals as the kernel prints them) -> its ratio's text;
# few values occur (most are 0.00), so each is formatted once
_RATIO: dict[float, str] = {}


def _ratio(avg: float) -> str:
    text = _RATIO.get(avg)
    if text is None:
        text = repr(round(avg / 100, 6))
        if len(_RATIO) < 65536:
            _RATIO[avg] = text
    return text


def _psi(out: dict[str, list[str]], g: str, resource_: str, psi: PSIStats | None) -> None:
    if psi is None:
        return
    pre = "{" + g
    for kind, d in (("some", psi.some), ("full", psi.full)):
        if d is None:
            continue
        stall, w10, w60, w300 = _PSI_LABELS[resource_, kind]
        total = d.total
        out["cgroup_pressure_stalled_seconds_total"].append(
            f"cgroup_pressure_stalled_seconds_total{pre}{stall}{total / 1e6 if total else 0.0!r}"
        )
        # the three windows in one entry (the entries are joined by newlines)
        out["cgroup_pressure_ratio"].append(
            f"cgroup_pressure_ratio{pre}{w10}{_ratio(d.avg10)}\n"
            f"cgroup_pressure_ratio{pre}{w60}{_ratio(d.avg60)}\n"
            f"cgroup_pressure_ratio{pre}{w300}{_ratio(d.avg300)}"
        )


# memory.stat key -> (family, the key's label text); filled on first use of each key
_MEMORY_KEY: dict[str, tuple[str, str]] = {}


def _memory_key(key: str) -> tuple[str, str]:
    hit = _MEMORY_KEY.get(key)
    if hit is None:
        if key in _MEMORY_BYTES:
            name = "cgroup_memory_stat_bytes"
        elif key.startswith(_MEMORY_EVENT_PREFIXES):
            name = "cgroup_memory_stat_events_total"
        else:
            name = "cgroup_memory_stat"
        hit = (name, f',key="{escape_label(key)}"}} ')
        if len(_MEMORY_KEY) < 4096:
            _MEMORY_KEY[key] = hit
    return hit


def _group(out: dict[str, list[str]], g: str, m: Sample) -> None:
    """Append the samples of one group (label text ``g``) to the families in ``out``."""
    if (p := m.pids) is not None:
        if p.current is not None:
            out["cgroup_pids_current"].append(f"cgroup_pids_current{{{g}}} {p.current}")
        if p.limit is not None:
            out["cgroup_pids_limit"].append(f"cgroup_pids_limit{{{g}}} {_lim(p.limit)}")
    if (c := m.cpu) is not None:
        if (v := c.usage_usec) is not None:
            out["cgroup_cpu_usage_seconds_total"].append(
                f"cgroup_cpu_usage_seconds_total{{{g}}} {v / 1e6!r}"
            )
        if (v := c.user_usec) is not None:
            out["cgroup_cpu_user_seconds_total"].append(
                f"cgroup_cpu_user_seconds_total{{{g}}} {v / 1e6!r}"
            )
        if (v := c.system_usec) is not None:
            out["cgroup_cpu_system_seconds_total"].append(
                f"cgroup_cpu_system_seconds_total{{{g}}} {v / 1e6!r}"
            )
        if (v := c.nr_periods) is not None:
            out["cgroup_cpu_periods_total"].append(f"cgroup_cpu_periods_total{{{g}}} {v}")
        if (v := c.nr_throttled) is not None:
            out["cgroup_cpu_throttled_periods_total"].append(
                f"cgroup_cpu_throttled_periods_total{{{g}}} {v}"
            )
        if (v := c.throttled_usec) is not None:
            out["cgroup_cpu_throttled_seconds_total"].append(
                f"cgroup_cpu_throttled_seconds_total{{{g}}} {v / 1e6!r}"
            )
        if (v := c.nr_bursts) is not None:
            out["cgroup_cpu_bursts_total"].append(f"cgroup_cpu_bursts_total{{{g}}} {v}")
        if (v := c.burst_usec) is not None:
            out["cgroup_cpu_burst_seconds_total"].append(
                f"cgroup_cpu_burst_seconds_total{{{g}}} {v / 1e6!r}"
            )
        _psi(out, g, "cpu", c.psi)
    if (mem := m.memory) is not None:
        for name, v, limit in (
            ("cgroup_memory_usage_bytes", mem.usage, False),
            ("cgroup_memory_working_set_bytes", mem.working_set, False),
            ("cgroup_memory_limit_bytes", mem.usage_limit, True),
            ("cgroup_memory_peak_bytes", mem.max_usage, False),
            ("cgroup_memory_swap_usage_bytes", mem.swap_usage, False),
            ("cgroup_memory_swap_limit_bytes", mem.swap_limit, True),
            ("cgroup_memory_swap_peak_bytes", mem.swap_max_usage, False),
        ):
            if v is not None:
                out[name].append(f"{name}{{{g}}} {_lim(v) if limit else v}")
        pre = "{" + g
        for key in MEMORY_STAT_KEYS:
            if (v := getattr(mem, key)) is not None:
                name, tail = _memory_key(key)
                out[name].append(f"{name}{pre}{tail}{v}")
        for key, v in mem.other.items():
            name, tail = _memory_key(key)
            out[name].append(f"{name}{pre}{tail}{v}")
        _psi(out, g, "memory", mem.psi)
    if (ev := m.memory_events) is not None:
        lines = out["cgroup_memory_events_total"]
        for key in _MEMORY_EVENTS_NAMED:
            if (v := getattr(ev, key)) is not None:
                lines.append(f'cgroup_memory_events_total{{{g},event="{key}"}} {v}')
        for key, v in ev.other.items():
            lines.append(f'cgroup_memory_events_total{{{g},event="{escape_label(key)}"}} {v}')
    if (io := m.io) is not None:
        nbytes, ops = out["cgroup_io_bytes_total"], out["cgroup_io_ops_total"]
        for e in io.usage or ():
            dev = f'{g},device="{e.major}:{e.minor}"'
            for op, b, n in (
                ("read", e.rbytes, e.rios),
                ("write", e.wbytes, e.wios),
                ("discard", e.dbytes, e.dios),
            ):
                if b is not None:
                    nbytes.append(f'cgroup_io_bytes_total{{{dev},op="{op}"}} {b}')
                if n is not None:
                    ops.append(f'cgroup_io_ops_total{{{dev},op="{op}"}} {n}')
        _psi(out, g, "io", io.psi)
    if (r := m.rdma) is not None:
        for name, entries in (("cgroup_rdma_current", r.current), ("cgroup_rdma_limit", r.limit)):
            lines = out[name]
            for re_ in entries or ():
                dev = f'{g},device="{escape_label(re_.device)}"'
                if (v := re_.hca_handles) is not None:
                    lines.append(f'{name}{{{dev},resource="hca_handle"}} {_lim(v)}')
                if (v := re_.hca_objects) is not None:
                    lines.append(f'{name}{{{dev},resource="hca_object"}} {_lim(v)}')
    for h in m.hugetlb or ():
        ps = f'{g},pagesize="{escape_label(h.pagesize)}"'
        for name, v, limit in (
            ("cgroup_hugetlb_usage_bytes", h.current, False),
            ("cgroup_hugetlb_limit_bytes", h.max, True),
            ("cgroup_hugetlb_failcnt_total", h.failcnt, False),
            ("cgroup_hugetlb_reserved_bytes", h.rsvd_current, False),
            ("cgroup_hugetlb_reserved_limit_bytes", h.rsvd_max, True),
        ):
            if v is not None:
                out[name].append(f"{name}{{{ps}}} {_lim(v) if limit else v}")
    for x in m.misc or ():
        res = f'{g},resource="{escape_label(x.name)}"'
        for name, v, limit in (
            ("cgroup_misc_current", x.current, False),
            ("cgroup_misc_limit", x.max, True),
            ("cgroup_misc_failcnt_total", x.failcnt, False),
        ):
            if v is not None:
                out[name].append(f"{name}{{{res}}} {_lim(v) if limit else v}")
    if (cs := m.cpuset) is not None:
        out["cgroup_cpuset_cpus_effective"].append(
            f"cgroup_cpuset_cpus_effective{{{g}}} {len(cs.cpus_effective)}"
        )
        out["cgroup_cpuset_mems_effective"].append(
            f"cgroup_cpuset_mems_effective{{{g}}} {len(cs.mems_effective)}"
        )


def _headers(name: str, openmetrics: bool) -> str:
    kind, help_ = FAMILIES[name]
    if openmetrics:
        family = name.removesuffix("_total") if kind == "counter" else name
        kind = "unknown" if kind == "untyped" else kind
        return f"# HELP {family} {help_}\n# TYPE {family} {kind}\n"
    return f"# HELP {name} {help_}\n# TYPE {name} {kind}\n"


def exposition(
    metrics: Mapping[str, Sample] | Iterable[tuple[str, Sample]],
    *,
    openmetrics: bool = False,
    procs: Mapping[str, int] | None = None,
    own: Mapping[str, float | Mapping[str, float]] | None = None,
    labels: Callable[[str], str] | None = None,
) -> str:
    """The exposition of many groups: ``metrics`` maps a group path to its
    :class:`~cgroup2.stats.Metrics`; ``procs`` (optional) a group path to its process count
    (``cgroup_procs``); ``own`` (optional) values of the ``cgroup2_exporter_*`` families
    (a mapping for a family with a ``reason`` label: reason -> value); ``labels``
    (optional) gives the text of more labels of a group (``,unit="x.service"``: see
    :class:`cgroup2.pathlabels.PathLabels`), written after its ``group`` label.

    The text format 0.0.4 by default (``""`` when there is no sample); with
    ``openmetrics``, OpenMetrics 1.0 (counter families named without ``_total`` in HELP
    and TYPE, ``unknown`` for untyped, ending with ``# EOF``).
    """
    items = metrics.items() if isinstance(metrics, Mapping) else metrics
    out: dict[str, list[str]] = {name: [] for name in FAMILIES}
    nprocs = out["cgroup_procs"]
    for group, m in items:
        g = f'group="{escape_label(group)}"'
        if labels is not None:
            g += labels(group)
        if procs is not None and (n := procs.get(group)) is not None:
            nprocs.append(f"cgroup_procs{{{g}}} {n}")
        _group(out, g, m)
    for name, v in (own or {}).items():
        if isinstance(v, Mapping):
            out[name].extend(f'{name}{{reason="{k}"}} {n}' for k, n in v.items())
        else:
            out[name].append(f"{name} {v!r}" if isinstance(v, float) else f"{name} {v}")
    parts: list[str] = []
    for name, lines in out.items():
        if lines:
            parts.append(_headers(name, openmetrics))
            lines.append("")  # the last sample's newline
            parts.append("\n".join(lines))
    if openmetrics:
        parts.append("# EOF\n")
    return "".join(parts)


def qvalues(header: str) -> Iterator[tuple[str, float]]:
    """The items of an HTTP header with ``q`` weights (``Accept``, ``Accept-Encoding``):
    each lower-cased token with its weight (1.0 when none is given, 0.0 when unreadable)."""
    for item in header.split(","):
        token, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        yield token.lower(), q


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an HTTP ``Accept`` header prefers OpenMetrics to the text format (by its
    ``q`` weights; Prometheus asks for ``application/openmetrics-text`` first)."""
    if not accept:
        return False
    best_om = best_text = -1.0
    for media, q in qvalues(accept):
        if media == "application/openmetrics-text":
            best_om = max(best_om, q)
        elif media in ("text/plain", "text/*", "*/*"):
            best_text = max(best_text, q)
    return best_om > 0 and best_om >= best_text
