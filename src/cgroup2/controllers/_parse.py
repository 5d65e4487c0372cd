"""What the read parts of the controllers share: tolerant, strict, one-pass parsers.

The kernel's cgroup files come in a few shapes (Documentation/admin-guide/cgroup-v2.rst,
"Interface Files"): a single value (``pids.current``), a limit that may be ``max``
(``memory.max``), flat keyed lines ``<key> <value>`` (``memory.stat``, ``cpu.stat``) and
nested keyed lines ``<name> <key>=<value> ...`` (``io.stat``, ``rdma.current``,
``cpu.pressure``). The parsers here take the bytes of one whole file (read once, in binary)
and follow two rules:

* tolerant of what they do not know: an unknown key is kept (when its value is a number)
  or skipped, an odd line whose key is unknown is skipped, blank lines are skipped;
* strict on what they do know: a known key whose value is not an unsigned decimal (or
  ``max`` where a limit is allowed) raises :class:`~cgroup2.errors.InvalidFormatError`
  naming the file, the line number and the line.

Conventions of every statistic: ``None`` means *absent* (the controller is not enabled in
the group, or the kernel has no such file or key); a limit of ``max`` is :data:`U64_MAX`
(``2**64 - 1``, what containerd reports as ``math.MaxUint64``).
"""

from __future__ import annotations

from itertools import repeat
from typing import Protocol

from ..errors import InvalidFormatError
from ._values import U64_MAX

__all__ = [
    "U64_MAX",
    "Files",
    "decode_key",
    "invalid_format",
    "parse_flat",
    "parse_flat_fields",
    "parse_limit",
    "parse_uint",
    "parse_value",
]

_MAX = b"max"


class Files(Protocol):
    """Where the readers (``read_cpu``, ``read_memory``, ...) get a group's files from.

    :class:`cgroup2._fs.Dir` opens, reads and closes the file each time (``stat()``);
    the sampler's group (:mod:`cgroup2.sampler`) keeps each file open and re-reads it
    with one ``pread`` at offset 0. Both give the same bytes, so one parser serves both.
    """

    def try_read(self, name: str) -> bytes | None:
        """The whole content of file ``name``, or ``None`` when the kernel has no such
        file here (a controller that is off, an older kernel)."""
        ...


def decode_key(key: bytes) -> str:
    """A key as text; bytes that are not UTF-8 become ``\\xNN`` escapes (never raises)."""
    return key.decode("utf-8", "backslashreplace")


def invalid_format(filename: str, lineno: int, line: bytes, why: str) -> InvalidFormatError:
    """The error for a malformed line: names the file, the line number and the line."""
    text = line[:200].decode("utf-8", "backslashreplace")
    return InvalidFormatError(
        f"cgroups: parsing file with invalid format failed: {filename} line {lineno}: "
        f"{text!r}: {why}",
        path=filename,
    )


def _uint(value: bytes) -> int | None:
    """``value`` as an unsigned decimal, or ``None`` when it is not one."""
    if value.isdigit():  # ASCII digits only: no sign, space, '_' or other digits
        try:
            return int(value)
        except ValueError:  # more digits than int() converts
            return None
    return None


def parse_uint(data: bytes, filename: str) -> int:
    """A file holding one unsigned decimal and a newline (``pids.current``)."""
    if data[-1:] == b"\n" and data[:-1].isdigit() and len(data) < 4000:
        return int(data)  # the kernel's form: digits and a newline (int() skips it)
    v = _uint(data.strip())
    if v is None:
        raise invalid_format(filename, 1, data, "expected an unsigned integer")
    return v


def parse_limit(data: bytes, filename: str) -> int:
    """A file holding an unsigned decimal or ``max`` (:data:`U64_MAX`): ``memory.max``."""
    if data[-1:] == b"\n" and data[:-1].isdigit() and len(data) < 4000:
        return int(data)  # the kernel's form: digits and a newline (int() skips it)
    value = data.strip()
    if value == _MAX:
        return U64_MAX
    v = _uint(value)
    if v is None:
        raise invalid_format(filename, 1, data, "expected an unsigned integer or 'max'")
    return v


def parse_value(value: bytes, *, limit: bool = False) -> int | None:
    """One value of a keyed line: an unsigned decimal (or ``max`` when ``limit``)."""
    if limit and value == _MAX:
        return U64_MAX
    return _uint(value)


def _flat_slow(
    data: bytes, filename: str, known: frozenset[str]
) -> tuple[dict[str, int], dict[str, int]]:
    named: dict[str, int] = {}
    other: dict[str, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        key = decode_key(parts[0])
        v = _uint(parts[1]) if len(parts) == 2 else None
        if v is None:
            if key in known:
                raise invalid_format(filename, lineno, line, "expected '<key> <unsigned integer>'")
            continue  # an odd line with a key we do not know: skipped
        if key in known:
            named[key] = v
        else:
            other[key] = v
    return named, other


# str.translate table that deletes every ASCII character but white space (what str.split()
# splits on): what is left of a flat file of n lines of the kernel's shape is " \n" * n
_ASCII_WHITE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_NOT_WHITE = dict.fromkeys(c for c in range(128) if chr(c) not in _ASCII_WHITE)


def _flat_nums(data: bytes) -> dict[str, int] | None:
    """Every line of a flat keyed file as ``{key: value}``, when the file has the kernel's
    exact shape; else ``None`` (the line-by-line pass then decides)."""
    try:
        text = data.decode("ascii")
        n = text.count("\n")
        tokens = text.split()
        values = tokens[1::2]
        if (
            len(tokens) != 2 * n
            # one space then one newline on each line, no other white space
            or text.translate(_NOT_WHITE) != " \n" * n
            or not "".join(values).isdigit()
        ):
            return None
        return dict(zip(tokens[::2], map(int, values)))  # noqa: B905 (lengths checked above)
    except ValueError:  # also UnicodeDecodeError, and int()'s digit limit
        return None


def parse_flat(
    data: bytes, filename: str, known: frozenset[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """A flat keyed file (``<key> <uint>`` lines): ``(known keys, other keys)``.

    ``known`` holds the kernel's keys that have a field of their own (of the same
    name). Other keys go to the second mapping when their value is an unsigned decimal;
    else their line is skipped. The common case runs in C: one ASCII decode and one
    ``split`` of the whole file, its shape checked without a loop (``n`` newlines, ``2n``
    fields, and what ``translate`` leaves of it, its white space, is ``" \\n" * n``); any
    irregularity falls back to a line-by-line pass that names the bad line.
    """
    nums = _flat_nums(data)
    if nums is None:
        return _flat_slow(data, filename, known)
    present = known.intersection(nums)
    return dict(zip(present, map(nums.pop, present))), nums  # noqa: B905 (one key, one value)


# The values of the last flat texts parsed, per set of field keys (at most 1,024 each, then
# forgotten at once): an idle group's cpu.stat and memory.stat read the same sample after
# sample, and a text seen before costs one hash and a copy of its other keys.
_FIELDS_SEEN: dict[frozenset[str], dict[bytes, tuple[tuple[int | None, ...], dict[str, int]]]] = {}
#: How many texts of a kind are remembered (flat files here, pressure files in ``psi``);
#: 0 turns the memo off (benchmarks/stat.py measures the parse of new texts so).
MEMO_LIMIT = 1024


def parse_flat_fields(
    data: bytes, filename: str, keys: tuple[str, ...], known: frozenset[str]
) -> tuple[tuple[int | None, ...], dict[str, int]]:
    """:func:`parse_flat` for a dataclass built by position: the values of ``keys`` in
    their order (``None`` for a key the file lacks), and the other keys (a new dict).

    Built for speed: ``MemoryStat(**named)`` matched 31 keywords, which the file's own
    (not interned) strings make a string comparison each, against 39 parameters; the
    values by position cost a third of that. ``known`` is ``frozenset(keys)``. A text
    parsed before (of the last 1,024 per ``known``) is not parsed again.
    """
    seen = _FIELDS_SEEN.get(known)
    if seen is None:
        seen = _FIELDS_SEEN.setdefault(known, {})
    hit = seen.get(data)
    if hit is not None:
        return hit[0], dict(hit[1])
    nums = _flat_nums(data)
    if nums is None:
        named, other = _flat_slow(data, filename, known)
        return tuple(map(named.pop, keys, repeat(None))), other
    # what is left once the fields' keys are taken out are the other keys
    values = tuple(map(nums.pop, keys, repeat(None)))
    if MEMO_LIMIT:
        if len(seen) >= MEMO_LIMIT:
            seen.clear()
        seen[data] = (values, dict(nums))
    return values, nums
