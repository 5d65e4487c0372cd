"""What the written parts of the controllers share: :class:`Value` and the limit checks.

Every check raises a :class:`~cgroup2.errors.CgroupError` that names the field, the value
and why it is refused, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CgroupError

__all__ = [
    "NO_LIMIT_MIN",
    "U32_MAX",
    "U64_MAX",
    "Value",
    "int_in",
    "invalid",
    "is_int",
    "is_no_limit",
    "limit_text",
]

U64_MAX = 2**64 - 1
#: The smallest value that means "no limit" when the kernel prints a number for ``max``:
#: a page counter's maximum (``LONG_MAX`` bytes) rounded down to a whole number of huge
#: pages, e.g. ``hugetlb.<size>.max`` = 9223372036854771712 (``2**63 - 4096``) on x86-64.
#: Every rounding of it for any page size is above this; no real limit is near it.
NO_LIMIT_MIN = 2**62


def is_no_limit(value: int) -> bool:
    """Whether a limit read from the kernel means "no limit" (``max``): ``U64_MAX``, or
    ``LONG_MAX`` rounded down to a page size (:data:`NO_LIMIT_MIN` and above)."""
    return value >= NO_LIMIT_MIN
U32_MAX = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Value:
    """One write: the exact text ``value`` goes to the group's file ``filename``."""

    filename: str
    value: str


def invalid(field: str, value: object, why: str) -> CgroupError:
    """The error for a refused setting: ``cgroups: invalid <field> <value>: <why>``."""
    return CgroupError(f"cgroups: invalid {field} {value!r}: {why}")


def is_int(v: object) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(v, int) and not isinstance(v, bool)


def int_in(field: str, value: object, lo: int, hi: int) -> int:
    """``value`` when it is an int in ``lo..hi``, else a refusal naming the range."""
    if not is_int(value):
        raise invalid(field, value, f"must be an int in {lo}..{hi}")
    assert isinstance(value, int)
    if not lo <= value <= hi:
        raise invalid(field, value, f"out of range {lo}..{hi}")
    return value


def limit_text(field: str, value: object, *, hi: int = U64_MAX) -> str:
    """The text of a limit: an int in ``0..hi`` as itself; ``-1`` or ``"max"`` as ``max``."""
    if value == "max" or (is_int(value) and value == -1):
        return "max"
    if not is_int(value):
        raise invalid(field, value, "must be an int (>= 0, or -1 for no limit) or 'max'")
    assert isinstance(value, int)
    if value < 0:
        raise invalid(field, value, "a limit must be >= 0 (or -1 / 'max' for no limit)")
    if value > hi:
        raise invalid(field, value, f"larger than the kernel's maximum {hi}")
    return str(value)
