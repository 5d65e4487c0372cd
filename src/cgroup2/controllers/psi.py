"""Pressure stall information (PSI): ``cpu.pressure``, ``memory.pressure``, ``io.pressure``.

Not a controller: the kernel gives every group these core files whether or not the cpu,
memory or io controller is enabled (Documentation/accounting/psi.rst). Nothing is written
here; :class:`PSIStats` is what is read. A kernel built without PSI, or booted with
``psi=0``, has no such files (or refuses to read them): the statistic is then ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import _parse
from ._parse import Files, invalid_format, parse_value

__all__ = ["PSIData", "PSIStats", "parse_pressure", "read_pressure"]

# --- what is written ------------------------------------------------------------------
# (nothing: the pressure files are read-only here; triggers are a later feature)

# --- what is read ---------------------------------------------------------------------


@dataclass(slots=True)
class PSIData:
    """One line of a ``<resource>.pressure`` file.

    ``avg10``/``avg60``/``avg300``: the share of wall time (percent, 0..100) in which tasks
    were stalled, averaged over 10 s, 60 s and 300 s; ``total``: the stall time in
    microseconds since the group was made.
    """

    avg10: float
    avg60: float
    avg300: float
    total: int


@dataclass(slots=True)
class PSIStats:
    """A ``<resource>.pressure`` file: ``some`` (at least one task stalled) and ``full``
    (all non-idle tasks stalled). A line the kernel does not print is ``None`` (``full``
    of ``cpu.pressure`` before Linux 5.13)."""

    some: PSIData | None = None
    full: PSIData | None = None


def _avg(v: bytes | None) -> float | None:
    # the kernel prints "%lu.%02lu": digits, a dot, digits
    if v is None:
        return None
    whole, dot, frac = v.partition(b".")
    if not (whole.isdigit() and (not dot or frac.isdigit())):
        return None
    return float(v)


def _line(line: bytes, filename: str, lineno: int) -> PSIData:
    fields = dict(p.partition(b"=")[::2] for p in line.split()[1:])
    a10 = _avg(fields.get(b"avg10"))
    a60 = _avg(fields.get(b"avg60"))
    a300 = _avg(fields.get(b"avg300"))
    total_b = fields.get(b"total")
    total = None if total_b is None else parse_value(total_b)
    if a10 is None or a60 is None or a300 is None or total is None:
        raise invalid_format(
            filename, lineno, line, "expected 'avg10=<x.xx> avg60=<x.xx> avg300=<x.xx> total=<n>'"
        )
    return PSIData(a10, a60, a300, total)


# the kernel's exact form of the file (psi_show(): "%lu.%02lu" averages, "%llu" total)
_AVGS = rb" avg10=(\d+\.\d\d) avg60=(\d+\.\d\d) avg300=(\d+\.\d\d) total=(\d{1,20})\n"
_FILE = re.compile(b"some" + _AVGS + b"full" + _AVGS)


class _Floats(dict[bytes, float]):
    """``float(text)`` remembered: an average is one of 10,001 texts (``0.00``..``100.00``)
    and most are ``0.00``; a dictionary hit costs a fifth of a conversion."""

    def __missing__(self, key: bytes) -> float:
        value = float(key)
        if len(self) < 10_001:
            self[key] = value
        return value


_FLOATS = _Floats()
# The numbers of the last pressure texts parsed (at most 1,024, then forgotten at once):
# most groups are idle at any moment and print the same text (zeros) sample after sample,
# which then costs one dictionary lookup instead of a regular expression match. Only the
# numbers are kept: each call returns new PSIStats and PSIData objects.
_SEEN: dict[bytes, tuple[float, float, float, int, float, float, float, int]] = {}


def parse_pressure(data: bytes, filename: str = "pressure") -> PSIStats:
    """Parse a ``<resource>.pressure`` file: ``some ...`` and ``full ...`` lines.

    Lines other than ``some`` and ``full`` are skipped; extra ``key=value`` pairs are
    ignored; a ``some``/``full`` line without all four numbers is an
    :class:`~cgroup2.errors.InvalidFormatError`.
    """
    seen = _SEEN.get(data)  # a text read before (an idle group's: every number 0)
    if seen is not None:
        a, b, c, d, e, f, g, h = seen
        return PSIStats(PSIData(a, b, c, d), PSIData(e, f, g, h))
    m = _FILE.fullmatch(data)  # the common case, checked strictly in one pass
    if m is not None:
        fl = _FLOATS
        x = m.groups()
        nums = (fl[x[0]], fl[x[1]], fl[x[2]], int(x[3]), fl[x[4]], fl[x[5]], fl[x[6]], int(x[7]))
        limit = _parse.MEMO_LIMIT
        if limit:
            if len(_SEEN) >= limit:
                _SEEN.clear()
            _SEEN[data] = nums
        a, b, c, d, e, f, g, h = nums
        return PSIStats(PSIData(a, b, c, d), PSIData(e, f, g, h))
    some = full = None
    for lineno, line in enumerate(data.splitlines(), 1):
        if line.startswith(b"some "):
            some = _line(line, filename, lineno)
        elif line.startswith(b"full "):
            full = _line(line, filename, lineno)
    return PSIStats(some, full)


_NAMES = {r: f"{r}.pressure" for r in ("cpu", "memory", "io", "irq")}


def read_pressure(d: Files, resource: str) -> PSIStats | None:
    """Read ``<resource>.pressure`` (``cpu``, ``memory``, ``io``); ``None`` when absent."""
    name = _NAMES.get(resource) or f"{resource}.pressure"
    data = d.try_read(name)
    return None if data is None else parse_pressure(data, name)
