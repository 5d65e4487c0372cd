"""``cgroup2 run --summary``: what the command used, read from its group when it has
ended (imported only with ``--summary``: its dataclass is not made on every run)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from .._fs import Dir
from .._statmask import StatMask
from ..manager import Manager
from ._text import printable
from ._units import format_bytes, format_usec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["Summary", "collect_summary"]


@dataclass(frozen=True, slots=True)
class Summary:
    """What ``--summary`` reports; ``None`` where the kernel has no such file."""

    group: str
    status: int
    signal: int | None
    wall_sec: float
    user_usec: int | None = None
    system_usec: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_usec: int | None = None
    memory_peak: int | None = None
    memory_max: int | None = None
    oom: int | None = None
    oom_kill: int | None = None
    pids_max: int | None = None
    pids_max_hits: int | None = None
    pressure: str | None = None  # --on-pressure: what was done (None: no policy given)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines; the labels are stable (tests and scripts read them)."""
        out: list[tuple[str, str]] = []
        if self.signal is not None:
            name = signal.Signals(self.signal).name
            out.append(("exit status", f"{self.status} (killed by {name})"))
        else:
            out.append(("exit status", str(self.status)))
        out.append(("wall time", f"{self.wall_sec:.3f}s"))
        out.append(("CPU user", format_usec(self.user_usec)))
        out.append(("CPU system", format_usec(self.system_usec)))
        if self.nr_throttled is not None:
            out.append((
                "CPU throttled",
                f"{self.nr_throttled} of {self.nr_periods} periods, "
                f"{format_usec(self.throttled_usec)}",
            ))
        else:
            out.append(("CPU throttled", "- (no cpu controller)"))
        no_mem = "- (no memory controller)"
        if self.memory_peak is None:
            out.append(("peak memory", no_mem))
        else:
            lim = self.memory_max
            limit = "" if lim in (None, 2**64 - 1) else f" (memory.max {format_bytes(lim)})"
            out.append(("peak memory", format_bytes(self.memory_peak) + limit))
        out.append(("OOM kills", no_mem if self.oom_kill is None else str(self.oom_kill)))
        if self.pids_max_hits is None:
            out.append(("pids.max hits", "- (no pids controller)"))
        else:
            plim = "" if self.pids_max in (None, 2**64 - 1) else f", pids.max {self.pids_max}"
            out.append(("pids.max hits", f"{self.pids_max_hits} (fork failures{plim})"))
        if self.pressure is not None:
            out.append(("pressure", self.pressure))
        return out

    def render(self) -> RenderableType:
        """A title line and one ``label  value`` line per row (no padding after)."""
        from rich.text import Text

        text = Text(f"cgroup2 run: group {printable(self.group)}", style="bold")
        width = max(len(k) for k, _ in self.rows()) + 2
        for k, v in self.rows():
            text.append("\n")
            text.append(k.ljust(width), style="bold")
            text.append(v)
        return text


def _pids_max_hits(d: Dir) -> int | None:
    """``max`` of ``pids.events`` (:func:`cgroup2.controllers.pids.read_pids_max_hits`)."""
    from ..controllers.pids import read_pids_max_hits

    return read_pids_max_hits(d)


def collect_summary(
    m: Manager, *, status: int, sig: int | None, wall: float, pids_extra: int = 0
) -> Summary:
    """Read the group's counters once its command has ended (``pids_extra``: tasks of
    ours that the limit was raised for, not shown)."""
    st = m.stat(StatMask.CPU | StatMask.MEMORY_USAGE | StatMask.MEMORY_EVENTS | StatMask.PIDS)
    with Dir.open(m.path, m.mountpoint) as d:
        hits = _pids_max_hits(d)
    cpu, mem, ev, pids = st.cpu, st.memory, st.memory_events, st.pids
    return Summary(
        group=m.group,
        status=status,
        signal=sig,
        wall_sec=wall,
        user_usec=cpu.user_usec if cpu else None,
        system_usec=cpu.system_usec if cpu else None,
        nr_periods=cpu.nr_periods if cpu else None,
        nr_throttled=cpu.nr_throttled if cpu else None,
        throttled_usec=cpu.throttled_usec if cpu else None,
        memory_peak=mem.max_usage if mem else None,
        memory_max=mem.usage_limit if mem else None,
        oom=ev.oom if ev else None,
        oom_kill=ev.oom_kill if ev else None,
        pids_max=(
            pids.limit - pids_extra
            if pids and pids.limit is not None and pids.limit != 2**64 - 1
            else (pids.limit if pids else None)
        ),
        pids_max_hits=hits,
    )
