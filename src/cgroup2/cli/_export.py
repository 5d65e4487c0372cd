"""``cgroup2 export``: a Prometheus exporter of every group under a root.

``GET /metrics`` answers with one :meth:`cgroup2.sampler.Sampler.sample` of the groups
under ``--root`` (followed as groups come and go), written by :mod:`cgroup2.exporter`:
the text format 0.0.4, or OpenMetrics 1.0 when the scraper's ``Accept`` header prefers it
(Prometheus does). ``--once`` prints one scrape on standard output and exits (for
``promtool check metrics``, cron or a node-exporter textfile).

The sampler holds a descriptor for each group's directory and each file the mask reads
(the hard ``RLIMIT_NOFILE`` is lifted to ``fs.nr_open`` first where CAP_SYS_RESOURCE
allows). Files past the limit are read by ``open``/``read``/``close`` on each scrape
(``Sampler(overflow="reopen")``); when even the group directories do not fit, the command
says so on stderr and walks the tree on each scrape (:class:`cgroup2.exporter.Walker`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from types import FrameType

from .._statmask import StatMask
from ..errors import CgroupError
from ._units import UsageError, parse_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..exporter import SamplerLike
    from ..pathlabels import PathLabels
    from ._lite import Subparsers

__all__ = ["add_parser", "cmd_export", "parse_listen", "parse_mask"]

_DESCRIPTION = (
    "Serve GET /metrics over HTTP: one sample of every group under --root (groups "
    "that appear and disappear are followed) a scrape, read through descriptors "
    "held open (one pread per file), in the Prometheus text format, or OpenMetrics "
    "when the scraper asks for it. Metrics are named cgroup_..., with a group "
    "label; cgroup2_exporter_... are the exporter's own cost. Runs until SIGINT or "
    "SIGTERM. See the monitoring guide."
)


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``export`` with its arguments."""
    ex = sub.add_parser(name, help=help, description=_DESCRIPTION)
    ex.add_argument(
        "--listen", type=parse_listen, default=("127.0.0.1", 9753), metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:9753; port 0: any free port)",
    )
    ex.add_argument("--root", metavar="GROUP", default="/", help="groups under GROUP (default /)")
    ex.add_argument(
        "--mask", type=parse_mask, default=None, metavar="PARTS",
        help="what to read, comma-separated: pids, cpu, memory, memory_stat, "
        "memory_usage, memory_events, io, rdma, hugetlb, misc, cpuset, psi, "
        "cpu_pressure, memory_pressure, io_pressure, all (default all)",
    )
    ex.add_argument(
        "--depth", type=lambda v: parse_int(v, "--depth", low=0), metavar="N",
        help="levels below --root (default: all)",
    )
    ex.add_argument("--no-procs", action="store_true", help="no process counts (cgroup.procs)")
    ex.add_argument(
        "--label", action="append", default=[], metavar="NAME=REGEX",
        help="another label of each group: the first group of REGEX (or its whole "
        "match) searched in the group's path; repeatable",
    )
    ex.add_argument(
        "--no-path-labels", action="store_true",
        help="no built-in labels from the path (unit, container_id, pod_uid, qos, "
        "slurm_uid, slurm_job, slurm_step)",
    )
    ex.add_argument(
        "--max-depth", type=lambda v: parse_int(v, "--max-depth", low=0), default=32,
        metavar="N",
        help="groups more than N levels below --root are left out and counted in "
        "cgroup2_exporter_groups_left_out (default 32: the body stays linear in size)",
    )
    ex.add_argument(
        "--max-groups", type=lambda v: parse_int(v, "--max-groups", low=1),
        default=1_000_000, metavar="N",
        help="at most N groups; the rest are left out and counted (default 1000000)",
    )
    ex.add_argument(
        "--max-connections", type=lambda v: parse_int(v, "--max-connections", low=1),
        default=512, metavar="N",
        help="clients served at once (default 512; past it the longest-idle one is "
        "closed); descriptors for them are kept back from the sampler",
    )
    ex.add_argument("--once", action="store_true", help="print one scrape and exit")
    ex.add_argument("--openmetrics", action="store_true", help="with --once: OpenMetrics text")
    ex.add_argument("-v", "--verbose", action="store_true", help="log each request on stderr")


def parse_mask(text: str) -> StatMask:
    """``cpu,memory,psi``: StatMask members by name (any case), joined by commas."""
    mask = StatMask(0)
    for word in text.split(","):
        name = word.strip().upper().replace("-", "_")
        if name == "ALL" or (name and name in StatMask.__members__):
            mask |= StatMask[name]
        else:
            raise UsageError(
                f"invalid --mask {text!r}: {word.strip()!r} is not one of "
                f"{', '.join(n for n in StatMask.__members__).lower()}"
            )
    return mask


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9753`` for IPv6; ``:9753`` for every address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"invalid --listen {text!r}: HOST:PORT, e.g. 127.0.0.1:9753")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _lift_nofile_hard_limit() -> None:
    """With CAP_SYS_RESOURCE, raise the hard ``RLIMIT_NOFILE`` to the kernel's
    ``fs.nr_open`` (the sampler raises the soft limit itself as it needs descriptors):
    a process started without systemd's ``LimitNOFILE=`` has a hard limit of 4096.
    Without the capability the limit stays as it is."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        with open("/proc/sys/fs/nr_open") as f:
            nr_open = int(f.read())
    except (OSError, ValueError):
        return
    if hard != resource.RLIM_INFINITY and hard < nr_open:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, nr_open))


def _labels(args: argparse.Namespace) -> PathLabels | None:
    """The labels from the path: the built-in rules and each ``--label NAME=REGEX``
    (checked before anything is opened)."""
    from ..pathlabels import PathLabels, parse_label_rule

    rules = []
    for text in getattr(args, "label", None) or ():
        try:
            rules.append(parse_label_rule(text))
        except CgroupError as e:
            raise UsageError(f"export: {e}") from None
    builtin = not getattr(args, "no_path_labels", False)
    return PathLabels(rules, builtin=builtin) if rules or builtin else None


def _spare(args: argparse.Namespace) -> int:
    """Descriptors the sampler leaves free: one per connection served, and 64 more."""
    return getattr(args, "max_connections", 512) + 64


def _walk_depth(args: argparse.Namespace) -> int | None:
    """The walker's depth: --depth, bounded by --max-depth."""
    bounds = [d for d in (args.depth, getattr(args, "max_depth", None)) if d is not None]
    return min(bounds) if bounds else None


def _make_sampler(args: argparse.Namespace, group: str, mountpoint: str) -> SamplerLike:
    """A :class:`~cgroup2.sampler.Sampler` of the groups under ``group``; files past the
    descriptor limit are read by open/read/close (``overflow="reopen"``); when even the
    group directories do not fit, a :class:`~cgroup2.exporter.Walker`."""
    from ..exporter import Walker
    from ..manager import Manager
    from ..sampler import Sampler

    root = Manager.load(group, mountpoint=mountpoint)
    _lift_nofile_hard_limit()
    try:
        return Sampler(
            root=root,
            mask=args.mask,
            depth=args.depth,
            overflow="reopen",
            spare=_spare(args),
            max_depth=getattr(args, "max_depth", None),
            max_groups=getattr(args, "max_groups", None),
        )
    except CgroupError as e:
        if "RLIMIT_NOFILE" not in str(e):
            raise
        _say_walking(e)
    return Walker(group, mountpoint=mountpoint, mask=args.mask, depth=_walk_depth(args))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _say_walking(e: CgroupError) -> None:
    print(
        f"cgroup2: export: {str(e).removeprefix('cgroups: ')}; walking the groups and "
        f"reading them by open/read/close on each scrape instead",
        file=sys.stderr,
    )


def cmd_export(args: argparse.Namespace, group: str, mountpoint: str) -> int:
    """Serve ``/metrics`` until SIGINT or SIGTERM (exit status 0), or print one scrape."""
    from ..exporter import Exporter, Walker, make_server

    if args.mask is None:
        args.mask = StatMask.ALL
    if args.openmetrics and not args.once:
        raise UsageError("export: --openmetrics is for --once (a scraper asks for it itself)")
    host, port = args.listen
    labels = _labels(args)
    sampler = _make_sampler(args, group, mountpoint)
    try:
        exporter = Exporter(sampler, procs=not args.no_procs, log=_say, labels=labels)
        try:
            body = exporter.scrape(openmetrics=args.openmetrics)  # also opens the files
        except CgroupError as e:
            if "RLIMIT_NOFILE" not in str(e):
                raise
            _say_walking(e)
            sampler.close()
            sampler = Walker(group, mountpoint=mountpoint, mask=args.mask, depth=_walk_depth(args))
            exporter = Exporter(sampler, procs=not args.no_procs, log=_say, labels=labels)
            body = exporter.scrape(openmetrics=args.openmetrics)
        if args.once:
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
            return 0
        try:
            server = make_server(
                exporter, host, port, verbose=args.verbose, max_connections=args.max_connections
            )
        except OSError as e:
            raise UsageError(f"export: cannot listen on {host}:{port}: {e.strerror}") from None
        old = signal.signal(signal.SIGTERM, _stop)
        try:
            where = f"[{host}]" if ":" in host else host
            print(
                f"cgroup2: export: serving http://{where}:{server.server_address[1]}/metrics "
                f"({exporter.last_groups} group{'' if exporter.last_groups == 1 else 's'} "
                f"under {group})",
                file=sys.stderr,
                flush=True,
            )
            server.serve_forever(poll_interval=0.5)
        except (_Stop, KeyboardInterrupt):
            pass
        finally:
            signal.signal(signal.SIGTERM, old)
            server.server_close()
        return 0
    finally:
        sampler.close()
