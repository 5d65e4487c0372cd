"""The hugetlb controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ._values import Value, invalid, limit_text

# The kernel names page sizes as "<n>KB", "<n>MB" or "<n>GB" (hugetlb.2MB.max).
_PAGE_SIZE = re.compile(r"[1-9][0-9]*(KB|MB|GB|TB)")


@dataclass(frozen=True, slots=True)
class HugeTlbEntry:
    """``hugetlb.<huge_page_size>.max``: a limit in bytes (``-1``/``"max"``: none).

    ``huge_page_size`` is the kernel's name of the size, such as ``"2MB"`` or ``"1GB"``;
    whether this kernel offers it is checked when a group is created or updated.
    """

    huge_page_size: str
    limit: int | str

    def __post_init__(self) -> None:
        if not isinstance(self.huge_page_size, str) or not _PAGE_SIZE.fullmatch(
            self.huge_page_size
        ):
            raise invalid(
                "hugetlb page size", self.huge_page_size, "expected the kernel's form, e.g. '2MB'"
            )
        limit_text(self.filename, self.limit)

    @property
    def filename(self) -> str:
        return f"hugetlb.{self.huge_page_size}.max"


class HugeTlb(tuple[HugeTlbEntry, ...]):
    """The hugetlb settings of a group: a sequence of :class:`HugeTlbEntry`."""

    __slots__ = ()

    def __new__(cls, entries: Iterable[HugeTlbEntry] = ()) -> HugeTlb:
        items = tuple(entries)
        for e in items:
            if not isinstance(e, HugeTlbEntry):
                raise invalid("hugetlb", e, "must be a HugeTlbEntry")
        return super().__new__(cls, items)

    def values(self) -> list[Value]:
        """The files and texts to write: hugetlb.<size>.max per entry."""
        return [Value(e.filename, limit_text(e.filename, e.limit)) for e in self]


# --- what is read ---------------------------------------------------------------------
import functools  # noqa: E402
import os  # noqa: E402

from ._parse import Files, parse_flat, parse_limit, parse_uint, parse_value  # noqa: E402

_HUGEPAGES = "/sys/kernel/mm/hugepages"


def page_size_name(size_kb: int) -> str:
    """The kernel's name of a huge page size in the hugetlb files: 2048 kB -> ``2MB``."""
    if size_kb >= 1 << 20:
        return f"{size_kb >> 20}GB"
    if size_kb >= 1 << 10:
        return f"{size_kb >> 10}MB"
    return f"{size_kb}KB"


@functools.cache
def page_sizes() -> tuple[str, ...]:
    """The huge page sizes of this kernel, smallest first (from ``/sys/kernel/mm/hugepages``,
    read once per process: the set is fixed at boot)."""
    try:
        names = os.listdir(_HUGEPAGES)
    except OSError:
        return ()
    sizes = []
    for n in names:  # "hugepages-2048kB"
        if n.startswith("hugepages-") and n.endswith("kB") and n[10:-2].isdigit():
            sizes.append(int(n[10:-2]))
    return tuple(page_size_name(s) for s in sorted(sizes))


@dataclass(slots=True)
class HugeTlbStat:
    """The hugetlb files of one page size (``pagesize``, e.g. ``"2MB"``), in bytes.

    ``current``: ``hugetlb.<size>.current``; ``max``: ``hugetlb.<size>.max`` (``U64_MAX``
    for ``max``); ``failcnt``: the ``max`` count of ``hugetlb.<size>.events`` (allocations
    refused by the limit); ``rsvd_current``/``rsvd_max``: ``hugetlb.<size>.rsvd.current``
    and ``.rsvd.max`` (reservations, Linux 5.7+). ``None``: the kernel has no such file.

    Without a limit the kernel prints ``max`` (``U64_MAX`` here) only when its page
    counter's maximum is a whole number of huge pages; else it prints that maximum
    itself (``2**63 - 4096`` bytes on x86-64, seen for 1GB pages and for ``rsvd.max``),
    which is reported as printed, as containerd does.
    """

    pagesize: str
    current: int | None = None
    max: int | None = None
    failcnt: int | None = None
    rsvd_current: int | None = None
    rsvd_max: int | None = None


_EVENTS = frozenset(("max",))


def parse_hugetlb_events(data: bytes, filename: str = "hugetlb.events") -> int | None:
    """The ``max`` count of a ``hugetlb.<size>.events`` file (``max <n>``)."""
    parts = data.split()
    if len(parts) == 2 and parts[0] == b"max" and (n := parse_value(parts[1])) is not None:
        return n  # the kernel's one line
    named, _ = parse_flat(data, filename, _EVENTS)
    return named.get("max")


@functools.cache
def _names(size: str) -> tuple[str, str, str, str, str]:
    p = f"hugetlb.{size}."
    return p + "current", p + "max", p + "events", p + "rsvd.current", p + "rsvd.max"


def read_hugetlb(d: Files) -> tuple[HugeTlbStat, ...] | None:
    """Read the hugetlb files of every page size; ``None`` when the controller is off."""
    out: list[HugeTlbStat] = []
    for size in page_sizes():
        cur_f, max_f, events_f, rsvd_f, rsvd_max_f = _names(size)
        data = d.try_read(cur_f)
        if data is None:
            if not out:
                return None  # the first size stands for the rest: controller off
            continue
        current = parse_uint(data, cur_f)
        data = d.try_read(max_f)
        limit = None if data is None else parse_limit(data, max_f)
        data = d.try_read(events_f)
        failcnt = None if data is None else parse_hugetlb_events(data, events_f)
        rsvd = rsvd_max = None
        if (data := d.try_read(rsvd_f)) is not None:
            rsvd = parse_uint(data, rsvd_f)
            if (data := d.try_read(rsvd_max_f)) is not None:
                rsvd_max = parse_limit(data, rsvd_max_f)
        out.append(HugeTlbStat(size, current, limit, failcnt, rsvd, rsvd_max))
    return tuple(out) if out else None
