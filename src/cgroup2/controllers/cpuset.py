"""The cpuset controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

import re

# --- the kernel's list format ---------------------------------------------------------

#: CPU and memory node numbers are below this: the largest ``NR_CPUS`` a kernel can be
#: built with (``CONFIG_NR_CPUS`` is at most 8192, on x86_64 with ``MAXSMP``; other
#: architectures allow fewer, and ``MAX_NUMNODES`` is smaller still). The kernel refuses a
#: number beyond its bitmap (``-ERANGE``), so no list it takes names a larger one.
CPU_LIST_LIMIT = 8192
#: The longest list text: cpuset's ``max_write_len`` for ``cpuset.cpus`` with 8192 CPUs,
#: ``100 + 6 * NR_CPUS`` bytes (the kernel refuses a longer write).
CPU_LIST_MAX_LEN = 100 + 6 * CPU_LIST_LIMIT

_BLANKS = " \t\n\v\f\r"  # the kernel's isspace() of ASCII
_SEPARATORS = re.compile(r"[,\t\v\f\r ]+")
_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+)/([0-9]+))?)?")
_ONES = re.compile("1+")


class _ListError(ValueError):
    """Why a list is refused; each caller turns it into its own CgroupError."""


def _number(digits: str, limit: int) -> int:
    n = digits.lstrip("0") or "0"
    if len(n) > 10 or int(n) >= limit:
        shown = digits if len(digits) <= 20 else digits[:20] + "..."
        if limit == CPU_LIST_LIMIT:
            raise _ListError(
                f"{shown} is too large: CPU and memory node numbers must be below "
                f"{CPU_LIST_LIMIT} (the kernel's largest NR_CPUS)"
            )
        raise _ListError(f"{shown} is out of range 0..{limit - 1}")
    return int(n)


def cpu_list_mask(text: str) -> int:
    """The CPUs (or memory nodes) of a list in the kernel's format, as a mask: bit ``n``
    is CPU ``n``. Raises ``ValueError`` saying why a list is refused.

    The format is the kernel's ``bitmap_parselist`` (lib/bitmap-str.c), what
    ``cpuset.cpus`` and ``cpuset.mems`` take:

    * items ``N``, ``N-M`` (``N <= M``) and ``N-M:A/B``: of each group of ``B`` numbers
      from ``N`` up to ``M``, the first ``A`` (``0 < B``, ``A <= B``): ``0-7:2/4`` is
      ``0-1,4-5``;
    * separated by commas and blanks (space, tab, ``\\v``, ``\\f``, ``\\r``); empty items
      and blanks at either end are skipped, as the kernel (and runc's ``RangeToBits``)
      do: ``"0, 1"``, ``",0,1,"`` and ``"0\\t1"`` are all ``0-1``;
    * numbers are decimal, leading zeros allowed.

    Refused beyond the kernel's own refusals: numbers from :data:`CPU_LIST_LIMIT` up (a
    bound of the kernel's, see there); texts longer than :data:`CPU_LIST_MAX_LEN`; a
    newline inside the list (the kernel stops reading there and silently drops the rest);
    ``N`` and ``all`` (newer kernels' names for the last and for all CPUs, whose meaning
    depends on the machine and the kernel version: write the numbers).

    The work is bounded: a text of at most :data:`CPU_LIST_MAX_LEN` characters, each item
    a few operations on an integer of at most :data:`CPU_LIST_LIMIT` bits.
    """
    if len(text) > CPU_LIST_MAX_LEN:
        raise _ListError(f"longer than {CPU_LIST_MAX_LEN} characters (the kernel's limit)")
    text = text.strip(_BLANKS)
    if "\n" in text:
        raise _ListError("a newline inside the list (the kernel stops reading at it)")
    mask = 0
    no_blanks = text.isprintable() and " " not in text  # tab, \\v, \\f, \\r: not printable
    for item in text.split(",") if no_blanks else _SEPARATORS.split(text):
        lo_s, dash, hi_s = item.partition("-")
        if lo_s.isdigit() and lo_s.isascii() and (not dash or (hi_s.isdigit() and hi_s.isascii())):
            # the common items, N and N-M, without a regex
            lo = int(lo_s) if len(lo_s) < 5 else CPU_LIST_LIMIT
            if lo >= CPU_LIST_LIMIT:
                lo = _number(lo_s, CPU_LIST_LIMIT)
            hi = (int(hi_s) if len(hi_s) < 5 else CPU_LIST_LIMIT) if dash else lo
            if hi >= CPU_LIST_LIMIT:
                hi = _number(hi_s, CPU_LIST_LIMIT)
            if lo > hi:
                raise _ListError(f"range {item!r} is not ascending")
            mask |= ((1 << (hi - lo + 1)) - 1) << lo
        elif item:
            mask |= _stride(item)
    return mask


def _stride(item: str) -> int:
    """The mask of an ``N-M:A/B`` item (or the error of a malformed one)."""
    m = _ITEM.fullmatch(item)
    if m is None or m.group(3) is None:
        shown = item if len(item) <= 40 else item[:40] + "..."
        why = f"malformed element {shown!r}: expected N or N-M (or N-M:A/B), e.g. '0-3,5'"
        if "N" in item or item.lower().startswith("all"):
            why += "; 'N' and 'all' depend on the machine: write the numbers"
        raise _ListError(why)
    lo_s, hi_s, used_s, group_s = m.groups()
    lo, hi = _number(lo_s, CPU_LIST_LIMIT), _number(hi_s, CPU_LIST_LIMIT)
    if lo > hi:
        raise _ListError(f"range {item!r} is not ascending")
    used, group = _number(used_s, 1 << 32), _number(group_s, 1 << 32)
    if group == 0 or used > group:
        raise _ListError(f"range {item!r}: N-M:A/B needs 0 < B and A <= B")
    span = hi - lo + 1
    if group >= span:  # one group
        return ((1 << min(used, span)) - 1) << lo
    # A ones every B bits: (2**A - 1) * (1 + 2**B + 2**2B + ...), cut after M
    n = (span + group - 1) // group
    bits = ((1 << used) - 1) * (((1 << (n * group)) - 1) // ((1 << group) - 1))
    return (bits & ((1 << span) - 1)) << lo


def cpu_list_text_of(mask: int) -> str:
    """The kernel's own form of a mask (as it prints ``cpuset.cpus``): ascending, adjacent
    numbers joined into ranges, ``"0-3,5"``; ``""`` for none."""
    return ",".join(
        str(m.start()) if m.end() - m.start() == 1 else f"{m.start()}-{m.end() - 1}"
        for m in _ONES.finditer(bin(mask)[:1:-1])
    )


def cpu_list_numbers(mask: int) -> tuple[int, ...]:
    """The numbers of a mask, ascending."""
    out: list[int] = []
    base = 0
    while mask:
        low = (mask & -mask).bit_length() - 1  # the lowest set bit
        mask >>= low
        run = (~mask & (mask + 1)).bit_length() - 1  # the ones from there
        out.extend(range(base + low, base + low + run))
        mask >>= run
        base += low + run
    return tuple(out)


# --- what is written ------------------------------------------------------------------


def cpu_list_text(field: str, value: object) -> str:
    """Check a ``cpuset.cpus``/``cpuset.mems`` list such as ``"0-3,5"``; return the text to
    write: the kernel's own form of it (:func:`cpu_list_text_of`).

    The list is read as the kernel reads it (:func:`cpu_list_mask`): ``"0, 1"``,
    ``",0,1,"`` and ``"0\\t1"`` are written ``"0-1"``, ``"0-7:2/4"`` is written
    ``"0-1,4-5"``. A list that names no CPU (``","``) is refused: the callers leave ``""``
    unwritten, and the kernel would take such a list as the empty set.
    """
    from ._values import invalid

    if not isinstance(value, str):
        raise invalid(field, value, "must be a str such as '0-3,5'")
    try:
        mask = cpu_list_mask(value)
    except _ListError as e:
        raise invalid(field, value, str(e)) from None
    if not mask:
        what = "memory node" if field.endswith("mems") else "CPU"
        raise invalid(field, value, f"names no {what}: use '' or None to leave it unset")
    return cpu_list_text_of(mask)


# --- what is read ---------------------------------------------------------------------
from dataclasses import dataclass as _dataclass  # noqa: E402

from ._parse import Files, invalid_format  # noqa: E402


@_dataclass(slots=True)
class CpusetStat:
    """``cpuset.cpus.effective`` and ``cpuset.mems.effective``: the CPUs and memory nodes
    the group's tasks may really use (granted by the parent), as sorted numbers."""

    cpus_effective: tuple[int, ...] = ()
    mems_effective: tuple[int, ...] = ()


_LISTS: dict[bytes, tuple[int, ...]] = {}  # list texts seen -> their numbers (immutable)


def parse_cpu_list(data: bytes, filename: str = "cpuset.cpus.effective") -> tuple[int, ...]:
    """Parse the kernel's list format (``0-3,5``; empty for none) into sorted numbers.

    The rules are :func:`cpu_list_mask`'s, so numbers are below :data:`CPU_LIST_LIMIT`
    and the work is bounded whatever the file holds. A machine has few distinct lists
    (every group of a host often reads ``0-N``): the numbers of up to 256 texts are
    remembered, and a text seen before costs one dictionary lookup.
    """
    got = _LISTS.get(data)
    if got is not None:
        return got
    try:
        got = cpu_list_numbers(cpu_list_mask(data.decode("ascii")))
        if len(_LISTS) < 256 and len(data) <= 256:
            _LISTS[data] = got
        return got
    except UnicodeDecodeError:
        raise invalid_format(filename, 1, data, "not ASCII") from None
    except _ListError as e:
        raise invalid_format(filename, 1, data, str(e)) from None


def read_cpuset(d: Files) -> CpusetStat | None:
    """Read ``cpuset.cpus.effective`` and ``cpuset.mems.effective``; ``None`` when the
    cpuset controller is off."""
    data = d.try_read("cpuset.cpus.effective")
    if data is None:
        return None
    cpus = parse_cpu_list(data)
    data = d.try_read("cpuset.mems.effective")
    mems = () if data is None else parse_cpu_list(data, "cpuset.mems.effective")
    return CpusetStat(cpus, mems)
