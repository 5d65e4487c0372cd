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
