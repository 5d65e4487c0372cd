"""The cpuset controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------

def cpu_list_text(field: str, value: object) -> str:
    """Check a ``cpuset.cpus``/``cpuset.mems`` list such as ``"0-3,5"``; return it.

    The kernel's list format: comma-separated numbers and ``a-b`` ranges with ``a <= b``.
    """
    from ._values import invalid

    if not isinstance(value, str):
        raise invalid(field, value, "must be a str such as '0-3,5'")
    for part in value.split(","):
        lo, dash, hi = part.partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            raise invalid(
                field, value, f"malformed element {part!r}: expected N or N-M, e.g. '0-3,5'"
            )
        if dash and int(lo) > int(hi):
            raise invalid(field, value, f"range {part!r} is not ascending")
    return value


# --- what is read ---------------------------------------------------------------------
from dataclasses import dataclass as _dataclass  # noqa: E402

from .._fs import Dir  # noqa: E402
from ._parse import invalid_format, parse_value  # noqa: E402


@_dataclass(slots=True)
class CpusetStat:
    """``cpuset.cpus.effective`` and ``cpuset.mems.effective``: the CPUs and memory nodes
    the group's tasks may really use (granted by the parent), as sorted numbers."""

    cpus_effective: tuple[int, ...] = ()
    mems_effective: tuple[int, ...] = ()


def parse_cpu_list(data: bytes, filename: str = "cpuset.cpus.effective") -> tuple[int, ...]:
    """Parse the kernel's list format (``0-3,5``; empty for none) into sorted numbers."""
    text = data.strip()
    if not text:
        return ()
    out: set[int] = set()
    for part in text.split(b","):
        lo_b, dash, hi_b = part.partition(b"-")
        lo = parse_value(lo_b)
        hi = parse_value(hi_b) if dash else lo
        if lo is None or hi is None or hi < lo or hi - lo > 1 << 16:
            bad = part[:40] + (b"..." if len(part) > 40 else b"")
            raise invalid_format(filename, 1, data, f"bad element {bad!r}: expected N or N-M")
        out.update(range(lo, hi + 1))
    return tuple(sorted(out))


def read_cpuset(d: Dir) -> CpusetStat | None:
    """Read ``cpuset.cpus.effective`` and ``cpuset.mems.effective``; ``None`` when the
    cpuset controller is off."""
    data = d.try_read("cpuset.cpus.effective")
    if data is None:
        return None
    cpus = parse_cpu_list(data)
    data = d.try_read("cpuset.mems.effective")
    mems = () if data is None else parse_cpu_list(data, "cpuset.mems.effective")
    return CpusetStat(cpus, mems)
