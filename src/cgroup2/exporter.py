"""The Prometheus exposition of :class:`~cgroup2.stats.Metrics`, served by ``cgroup2 export``.

:func:`exposition` writes the text format (0.0.4) or OpenMetrics 1.0 of many groups (the
writer is :mod:`cgroup2._exposition`, shared with :func:`cgroup2.stats.prometheus_text`;
its conventions are there); :class:`Exporter` puts a sampler
(:class:`cgroup2.sampler.Sampler`: held descriptors, one ``pread`` per file) behind it, one
scrape one ``sample()``, with the exporter's own cost; :func:`make_server` serves it over
HTTP (``GET /metrics``) from the standard library.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from ._exposition import (
    FAMILIES,
    OPENMETRICS_TYPE,
    TEXT_TYPE,
    _headers,
    escape_label,
    exposition,
    unescape_label,
    wants_openmetrics,
)
from ._exposition import qvalues as qvalues
from ._fs import Dir
from ._statmask import StatMask
from .errors import CgroupDeletedError, CgroupError
from .stats import Metrics

if TYPE_CHECKING:
    from ._httpserve import HTTPServer

__all__ = [
    "FAMILIES",
    "OPENMETRICS_TYPE",
    "TEXT_TYPE",
    "Exporter",
    "SamplerLike",
    "Scrape",
    "Walker",
    "escape_label",
    "exposition",
    "make_server",
    "unescape_label",
    "wants_openmetrics",
]

#: gzip level of compressed bodies: 1, the fastest (10,000 groups: see the guide's Cost)
GZIP_LEVEL = 1


class SamplerLike(Protocol):
    """What :class:`Exporter` needs of a sampler (:class:`cgroup2.sampler.Sampler`)."""

    def sample(self) -> Mapping[str, Metrics]: ...

    @property
    def fd_count(self) -> int: ...

    def close(self) -> None: ...


class Walker:
    """The sampler of last resort: every group under ``root`` (to ``depth`` levels below
    it) walked and read by ``open``/``read``/``close`` on each sample, as ``stat()`` reads
    a group, holding no descriptor between samples.

    For a tree too big for descriptors held (:class:`cgroup2.sampler.Sampler` needs one
    for each group's directory and each file the mask reads, and ``RLIMIT_NOFILE``'s hard
    limit may be lower than that). :meth:`sample` also counts each group's processes
    (the lines of ``cgroup.procs``), kept in :attr:`procs`.
    """

    def __init__(
        self,
        root: str,
        *,
        mountpoint: str,
        mask: StatMask = StatMask.ALL,
        depth: int | None = None,
    ) -> None:
        self.mountpoint = mountpoint.rstrip("/")
        self.root = root
        self.mask = mask
        self.depth = depth
        self.procs: dict[str, int] = {}

    fd_count = 0

    def sample(self) -> dict[str, Metrics]:
        """``{group path: Metrics}`` of every group under the root, in walk order (depth
        first, by name); a group removed during the walk is left out."""
        from ._fs import walk
        from .stats import collect

        out: dict[str, Metrics] = {}
        procs: dict[str, int] = {}
        cut = len(self.mountpoint)
        top = self.mountpoint + (self.root if self.root != "/" else "")
        with Dir.open(top or "/", self.mountpoint) as d:
            for _, g, _, depth in walk(d):
                if self.depth is not None and depth > self.depth:
                    continue  # (walk() has no pruning: its max_depth is an error bound)
                group = g.path[cut:] or "/"
                try:
                    out[group] = collect(g, self.mask)
                    data = g.try_read("cgroup.procs")
                except CgroupDeletedError:
                    out.pop(group, None)
                    continue
                except CgroupError as e:
                    if e.errno in (errno.ENODEV, errno.ENOENT):
                        out.pop(group, None)
                        continue
                    if e.errno != errno.EOPNOTSUPP:  # a threaded group's cgroup.procs
                        raise
                    data = None
                if data is not None:
                    procs[group] = data.count(b"\n")
        self.procs = procs
        return out

    def close(self) -> None:
        """Nothing is held; for the same use as a sampler."""


def _process_counts(sampler: SamplerLike, groups: Iterable[str]) -> dict[str, int]:
    """Each group's process count (lines of ``cgroup.procs``): a :class:`Walker` counted
    them in its walk; a :class:`~cgroup2.sampler.Sampler` reads the file by ``pread`` on
    a descriptor it holds from the first read on (``Sampler.read``). A group removed since
    the sample, or a threaded one (no process list), has no count."""
    if isinstance(sampler, Walker):
        return sampler.procs
    read = getattr(sampler, "read", None)
    out: dict[str, int] = {}
    if read is None:
        return out
    for g in groups:
        try:
            data = read(g, "cgroup.procs")
        except (KeyError, CgroupDeletedError):
            continue
        except CgroupError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT, errno.EOPNOTSUPP):
                continue
            raise
        if data is not None:
            out[g] = data.count(b"\n")
    return out


class Exporter:
    """One scrape, one ``sampler.sample()``: the exposition of what it read, each group's
    process count (``cgroup_procs``, with ``procs``) and the exporter's own cost. Scrapes
    are serialized (one lock): a sampler is not shared by two samples at once.

    Groups the sampler left out (its ``skipped``: a mount point met while following) are
    counted in ``cgroup2_exporter_groups_left_out`` and, once each, told to ``log``."""

    def __init__(
        self,
        sampler: SamplerLike,
        *,
        procs: bool = True,
        log: Callable[[str], object] | None = None,
        labels: Callable[[str], str] | None = None,
    ) -> None:
        self.sampler = sampler
        self.procs = procs
        self.labels = labels
        self.scrapes = 0
        self.last_groups = 0
        self._log = log
        self._told: set[str] = set()
        #: more values of the exporter's own families (the server's connection counts)
        self.extra: Callable[[], Mapping[str, float | Mapping[str, float]]] | None = None
        self._lock = threading.Lock()

    def _left_out(self) -> dict[str, float]:
        """``reason -> count`` of the groups the sampler left out; each new one logged."""
        skipped: Mapping[str, str] = getattr(self.sampler, "skipped", None) or {}
        counts: dict[str, float] = {"mount_point": 0, "max_depth": 0, "max_groups": 0}
        for path, why in skipped.items():
            counts[why] = counts.get(why, 0) + 1
            if why == "mount_point" and path not in self._told and self._log is not None:
                self._log(
                    f"cgroup2: export: {path} is a mount point (something was mounted there "
                    f"after the exporter started): not exported, nor anything below it"
                )
        for why, flag in (("max_depth", "--max-depth"), ("max_groups", "--max-groups")):
            if counts[why] and why not in self._told and self._log is not None:
                self._log(
                    f"cgroup2: export: groups left out past {flag} (counted in "
                    f'cgroup2_exporter_groups_left_out{{reason="{why}"}})'
                )
        self._told = set(skipped) | {why for why in ("max_depth", "max_groups") if counts[why]}
        return counts

    def take(self) -> Scrape:
        """Sample every group now: a :class:`Scrape`, whose bodies are written on demand
        and kept (every client of that moment gets the same bytes)."""
        with self._lock:
            t0 = time.perf_counter()
            metrics = self.sampler.sample()
            counts = _process_counts(self.sampler, metrics) if self.procs else None
            t1 = time.perf_counter()
            self.scrapes += 1
            self.last_groups = len(metrics)
            cpu = os.times()
            own: dict[str, float | Mapping[str, float]] = {
                "cgroup2_exporter_sample_duration_seconds": round(t1 - t0, 6),
                "cgroup2_exporter_groups": len(metrics),
                "cgroup2_exporter_groups_left_out": self._left_out(),
                "cgroup2_exporter_groups_held": getattr(
                    self.sampler, "held_count", len(metrics) if self.sampler.fd_count else 0
                ),
                "cgroup2_exporter_groups_reopened": getattr(
                    self.sampler, "reopened_count", 0 if self.sampler.fd_count else len(metrics)
                ),
                "cgroup2_exporter_open_fds": self.sampler.fd_count,
                "cgroup2_exporter_scrapes_total": self.scrapes,
                "cgroup2_exporter_cpu_seconds_total": round(cpu.user + cpu.system, 3),
            }
            if self.extra is not None:
                own.update(self.extra())
            return Scrape(metrics, counts, own, t0, self.labels)

    def scrape(self, *, openmetrics: bool = False) -> bytes:
        """Sample every group and return the exposition, UTF-8."""
        return self.take().body(openmetrics)


class Scrape:
    """One sample of every group and the bodies written from it: text or OpenMetrics,
    plain or gzip, each written once (on first demand) and then shared."""

    def __init__(
        self,
        metrics: Mapping[str, Metrics],
        procs: Mapping[str, int] | None,
        own: Mapping[str, float | Mapping[str, float]],
        t0: float,
        labels: Callable[[str], str] | None = None,
    ) -> None:
        self.labels = labels
        self.metrics = metrics
        self.procs = procs
        self.own = own
        self.t0 = t0
        self._bodies: dict[tuple[bool, bool], bytes] = {}
        self._lock = threading.Lock()

    def body(self, openmetrics: bool = False, gzip: bool = False) -> bytes:
        """The exposition in that format (UTF-8), gzip-compressed with ``gzip``."""
        key = (openmetrics, gzip)
        with self._lock:
            data = self._bodies.get(key)
            if data is None:
                data = self._write(openmetrics, gzip)
                self._bodies[key] = data
            return data

    def _write(self, openmetrics: bool, gz: bool) -> bytes:
        if gz:
            import gzip

            plain = self._bodies.get((openmetrics, False)) or self._write(openmetrics, False)
            return gzip.compress(plain, compresslevel=GZIP_LEVEL, mtime=0)
        text = exposition(
            self.metrics,
            openmetrics=openmetrics,
            procs=self.procs,
            own=self.own,
            labels=self.labels,
        )
        took = round(time.perf_counter() - self.t0, 6)
        line = f"cgroup2_exporter_scrape_duration_seconds {took!r}\n"
        head = _headers("cgroup2_exporter_scrape_duration_seconds", openmetrics)
        if openmetrics:
            text = text.removesuffix("# EOF\n") + head + line + "# EOF\n"
        else:
            text += head + line
        return text.encode("utf-8")

    def drop_metrics(self) -> None:
        """Forget the sample (the bodies written stay): its memory is freed early."""
        self.metrics = {}
        self.procs = None


def make_server(
    exporter: Exporter,
    host: str = "127.0.0.1",
    port: int = 9753,
    *,
    verbose: bool = False,
    max_connections: int = 512,
    read_timeout: float = 10.0,
    idle_timeout: float = 60.0,
    write_timeout: float = 30.0,
) -> HTTPServer:
    """An HTTP server (not started: call ``serve_forever()``) answering ``GET /metrics``
    with a scrape of ``exporter`` (:mod:`cgroup2._httpserve`): one thread for every
    connection's I/O and one for the scrapes, whatever the number of clients; at most
    ``max_connections`` at once (past it the longest-idle one is closed, or the new one
    when none is idle); a request must arrive within ``read_timeout`` seconds of its first
    byte, a kept-alive connection is closed after ``idle_timeout`` without one, and a
    response whose client reads nothing for ``write_timeout`` is dropped. Requests that
    arrive while a scrape runs share it; gzip when the client accepts it."""
    from ._httpserve import HTTPServer as _HTTPServer

    return _HTTPServer(
        exporter,
        host,
        port,
        verbose=verbose,
        max_connections=max_connections,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        write_timeout=write_timeout,
    )
