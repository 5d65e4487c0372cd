"""Parsing and formatting of the command line's values: sizes, CPU shares, IO limits, rules.

Every parser raises :class:`UsageError` with a one-line reason; the command turns it into
``cgroup2: error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import stat as _stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where a value is parsed: the parser is built on every start
    from ..controllers.cpu import CPUMax
    from ..controllers.io import Entry
    from ..devices.rules import DeviceRule

__all__ = [
    "MIN_INTERVAL",
    "Failure",
    "UsageError",
    "format_bytes",
    "format_limit",
    "format_usec",
    "limit_line",
    "parse_count",
    "parse_cpu_max",
    "parse_device",
    "parse_hugetlb",
    "parse_int",
    "parse_interval",
    "parse_io_max",
    "parse_property",
    "parse_rule",
    "parse_rules",
    "parse_signal",
    "parse_size",
    "parse_timeout",
    "shown_limit",
]

#: Size suffixes: binary multiples (1024-based), as systemd reads MemoryMax= and friends.
SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Patterns are compiled on first use (re's cache), not when the command starts.
_SIZE = r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?"
_PERIOD = 100_000  # microseconds: the kernel's default cpu.max period
_MIN_QUOTA = 1000  # microseconds: the smallest cpu.max quota the kernel takes
_MAX_NUMBER = 2**32 - 1  # device major and minor numbers of a device rule


#: The shortest refresh interval of ``top`` and ``run --live``, in seconds: a shorter one
#: would only re-read the tree in a loop (and 1e-300 is no interval at all).
MIN_INTERVAL = 0.05
_MAX_SECONDS = 1e6


class UsageError(Exception):
    """A value on the command line is wrong (exit status 2)."""


class Failure(Exception):
    """The command could not do its job (exit status 1, or ``status`` when given).

    Here, beside UsageError, so that the command's start catches it without importing
    :mod:`cgroup2.cli._limits`; that module exports it too."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def parse_int(text: str, option: str, *, low: int | None = None) -> int:
    """A whole number for ``option`` (named in the error), at least ``low``."""
    import re  # on first use: not on every start of the command

    t = text.strip()
    if not re.fullmatch(r"[+-]?\d+", t):
        raise UsageError(f"invalid {option} {text!r}: a whole number")
    n = int(t)
    if low is not None and n < low:
        raise UsageError(f"invalid {option} {text!r}: at least {low}")
    return n


def parse_count(text: str, option: str) -> int:
    """A count of at least 1 (``-n 3``, ``--count 1``)."""
    return parse_int(text, option, low=1)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        return float("nan")  # math.nan, without importing math (start-up)
    return v


def parse_interval(text: str, option: str = "--interval") -> float:
    """A refresh interval in seconds: at least :data:`MIN_INTERVAL`, below 1e6."""
    v = _seconds(text)
    if not MIN_INTERVAL <= v < _MAX_SECONDS:
        raise UsageError(
            f"invalid interval {option} {text!r}: seconds, at least {MIN_INTERVAL:g} and "
            f"less than {_MAX_SECONDS:g}"
        )
    return v


def parse_timeout(text: str, option: str = "--timeout") -> float:
    """A timeout in seconds: more than 0, below 1e6."""
    v = _seconds(text)
    if not 0 < v < _MAX_SECONDS:
        raise UsageError(
            f"invalid {option} {text!r}: seconds, more than 0 and less than {_MAX_SECONDS:g}"
        )
    return v


def parse_signal(text: str) -> int:
    """A signal by name (``TERM``, ``SIGTERM``, ``term``, ``RTMIN+2``) or number (``15``)."""
    import signal  # here: making its enums is a part of the command's start-up

    t = text.strip().upper()
    n: int | None = None
    if t.isdigit():
        n = int(t)
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        base, plus, off = name.partition("+")
        if base in ("SIGRTMIN", "SIGRTMAX") and (not plus or off.isdigit()):
            k = int(off) if plus else 0
            n = signal.SIGRTMIN + k if base == "SIGRTMIN" else signal.SIGRTMAX - k
        elif name in signal.Signals.__members__:
            n = int(signal.Signals[name])
    if n is None or not 1 <= n <= signal.SIGRTMAX:
        raise UsageError(
            f"invalid signal {text!r}: a name such as TERM, HUP, SIGUSR1 or RTMIN+1, or a "
            f"number 1..{int(signal.SIGRTMAX)}"
        )
    return n


def parse_property(text: str) -> tuple[str, str]:
    """``-p FILE=VALUE``: a limit file of the group and the exact text to write to it.

    FILE is checked as ``Resources.unified`` checks its keys (one file of the group, not
    one of the files that are not limits: ``cgroup.procs``, ``cgroup.freeze``...)."""
    from ..errors import CgroupError
    from ..resources import NOT_LIMITS, check_unified_key

    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise UsageError(
            f"invalid property {text!r}: expected FILE=VALUE, e.g. memory.max=512M"
        )
    if key in NOT_LIMITS:
        raise UsageError(
            f"invalid property {text!r}: {key} is not a limit of the group (processes: "
            f"cgroup2 attach or exec; freezing: freeze/thaw; killing: kill; controllers are "
            f"enabled for the limits given)"
        )
    try:
        check_unified_key(key)
    except CgroupError as e:
        raise UsageError(f"invalid property {text!r}: {_why(e)}") from None
    return key, value


_PAGE = r"(\d+)\s*([KMGT])(?:I?B)?"


def parse_hugetlb(text: str) -> tuple[str, int | str]:
    """``--hugetlb SIZE=LIMIT``: a huge page size as the kernel names it (``2MB``; ``2M``
    and ``2MiB`` are read the same) and a limit in bytes (``64M``) or ``max``."""
    import re  # on first use: not on every start of the command

    size, eq, limit = text.partition("=")
    m = re.fullmatch(_PAGE, size.strip(), re.IGNORECASE)
    if not eq or m is None or int(m.group(1)) == 0:
        raise UsageError(
            f"invalid --hugetlb {text!r}: expected PAGESIZE=LIMIT, e.g. 2MB=64M or 1GB=max"
        )
    name = f"{int(m.group(1))}{m.group(2).upper()}B"
    return name, parse_size(limit, f"--hugetlb limit of {name}")


def parse_size(text: str, what: str = "size") -> int | str:
    """Bytes from ``512``, ``512K``, ``1.5G``, ``2T`` (1024-based; ``KiB``/``KB`` are read
    as ``K``), or ``"max"`` for no limit."""
    import re  # on first use: not on every start of the command

    t = text.strip()
    if t.lower() in ("max", "infinity", "-1"):
        return "max"
    m = re.fullmatch(_SIZE, t, re.IGNORECASE)
    if m is None:
        raise UsageError(
            f"invalid {what} {text!r}: expected bytes with an optional K/M/G/T suffix "
            f"(1024-based), e.g. 512M, or 'max'"
        )
    number, suffix = m.group(1), m.group(2).upper()
    mult = SUFFIXES[suffix]
    if "." in number:
        whole, frac = number.split(".")
        value = int(whole) * mult + int(frac) * mult // 10 ** len(frac)
    else:
        value = int(number) * mult
    return int(value)


def parse_cpu_max(text: str, *, cpus: int | None = None) -> CPUMax:
    """``cpu.max`` from ``50%`` (of one CPU: quota 50000 of period 100000), ``150%`` (more
    than one CPU, refused beyond the CPUs this process may use), ``QUOTA/PERIOD`` or
    ``QUOTA PERIOD`` in microseconds, or ``max``."""
    from ..controllers.cpu import CPUMax

    t = text.strip()
    if t == "max":
        return CPUMax.new(None, _PERIOD)
    if t.endswith("%"):
        try:
            pct = float(t[:-1])
        except ValueError:
            raise UsageError(f"invalid CPU limit {text!r}: expected e.g. 50% or 150%") from None
        n = cpus if cpus is not None else len(os.sched_getaffinity(0))
        if not 0 < pct <= 100 * n:
            raise UsageError(
                f"invalid CPU limit {text!r}: must be above 0% and at most {100 * n}% "
                f"({n} CPU{'s' if n != 1 else ''} here)"
            )
        quota = round(pct * _PERIOD / 100)
        if quota < 1000:
            raise UsageError(f"invalid CPU limit {text!r}: at least 1% (the kernel's 1 ms)")
        return CPUMax.new(quota, _PERIOD)
    parts = t.replace("/", " ").split()
    if len(parts) == 1 and parts[0].isdigit() and int(parts[0]) < _MIN_QUOTA:
        raise UsageError(
            f"invalid CPU limit {text!r}: a bare number is a quota in microseconds per "
            f"100 ms period (at least {_MIN_QUOTA}); for a share of one CPU write '{t}%'"
        )
    if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
        try:
            return CPUMax.new(int(parts[0]), int(parts[1]) if len(parts) == 2 else None)
        except Exception as e:
            raise UsageError(f"invalid CPU limit {text!r}: {_why(e)}") from None
    raise UsageError(
        f"invalid CPU limit {text!r}: expected a percentage (50%), QUOTA/PERIOD in "
        f"microseconds, or 'max'"
    )


def _why(e: BaseException) -> str:
    s = str(e)
    return s.split(": ", 2)[-1] if s.startswith("cgroups: ") else s


def _device_numbers(dev: str) -> tuple[int, int]:
    """``MAJ:MIN``, or the device numbers of a block device node such as ``/dev/sda``."""
    import re  # on first use: not on every start of the command

    if dev.startswith("/"):
        try:
            st = os.stat(dev)
        except OSError as e:
            raise UsageError(f"invalid device {dev!r}: {e.strerror}") from None
        if not _stat.S_ISBLK(st.st_mode):
            raise UsageError(f"invalid device {dev!r}: not a block device")
        return os.major(st.st_rdev), os.minor(st.st_rdev)
    m = re.fullmatch(r"(\d+):(\d+)", dev)
    if m is None:
        raise UsageError(f"invalid device {dev!r}: expected MAJ:MIN or a /dev path")
    return int(m.group(1)), int(m.group(2))


def parse_io_max(text: str) -> list[Entry]:
    """``io.max`` entries from ``DEV:KEY=VALUE[,KEY=VALUE...]``.

    DEV is ``MAJ:MIN`` or a block device path; KEY is ``rbps``/``wbps`` (a size, K/M/G
    suffixes allowed) or ``riops``/``wiops`` (a count); VALUE ``max`` removes the limit.
    Example: ``8:0:rbps=1M,wiops=100``.
    """
    from ..controllers.io import Entry, IOType

    head, eq, _ = text.partition("=")
    if not eq or ":" not in head:
        raise UsageError(f"invalid IO limit {text!r}: expected DEV:KEY=VALUE[,KEY=VALUE...]")
    dev, _, _ = head.rpartition(":")
    major, minor = _device_numbers(dev)
    limits = text[len(dev) + 1 :]
    out = []
    for item in limits.split(","):
        key, eq, value = item.partition("=")
        try:
            kind = IOType(key.strip())
        except ValueError:
            raise UsageError(
                f"invalid IO limit {text!r}: unknown key {key!r} (rbps, wbps, riops, wiops)"
            ) from None
        if not eq:
            raise UsageError(f"invalid IO limit {text!r}: {key} needs =VALUE")
        if kind in (IOType.READ_BPS, IOType.WRITE_BPS):
            rate: int | str = parse_size(value, f"{key} value")
        elif value.strip() == "max":
            rate = "max"
        elif value.strip().isdigit():
            rate = int(value)
        else:
            raise UsageError(f"invalid IO limit {text!r}: {key} must be a count or 'max'")
        try:
            out.append(Entry(kind, major, minor, rate))
        except Exception as e:
            raise UsageError(f"invalid IO limit {text!r}: {_why(e)}") from None
    return out


_NUM = r"(\d+|\*)"
_RULE = rf"(allow|deny)(?:\s+([abc]))?(?:\s+{_NUM}:{_NUM})?(?:\s+([rwm]+))?"


def parse_rule(text: str) -> DeviceRule:
    """One device rule: ``allow|deny [a|b|c] [MAJ:MIN] [ACCESS]``.

    Omitted parts are wildcards: type ``a`` (all), ``*:*``, access ``rwm``. ``*`` stands
    for any major or minor. Examples: ``deny a``, ``allow c 1:3 rw``, ``allow b 8:* r``.
    """
    import re  # on first use: not on every start of the command

    from ..devices.rules import DeviceRule

    t = " ".join(text.split())
    m = re.fullmatch(_RULE, t, re.IGNORECASE)
    if m is None:
        raise UsageError(
            f"invalid device rule {text!r}: expected 'allow|deny [a|b|c] [MAJ:MIN] [rwm]', "
            f"e.g. 'allow c 1:3 rw'"
        )
    verb, typ, major, minor, access = m.groups()
    for what, v in (("major", major), ("minor", minor)):
        if v not in (None, "*") and int(v) > _MAX_NUMBER:
            raise UsageError(
                f"invalid device rule {text!r}: {what} {v} is larger than {_MAX_NUMBER} "
                f"(write '*' for any {what})"
            )
    try:
        return DeviceRule(
            allow=verb.lower() == "allow",
            type=(typ or "a").lower(),
            major=None if major in (None, "*") else int(major),
            minor=None if minor in (None, "*") else int(minor),
            access=(access or "rwm").lower(),
        )
    except Exception as e:
        raise UsageError(f"invalid device rule {text!r}: {_why(e)}") from None


def parse_rules(text: str) -> list[DeviceRule]:
    """Rules separated by ``;`` or newlines, e.g. ``"deny a; allow c 1:3 rw"``."""
    import re  # on first use: not on every start of the command

    parts = [p.strip() for p in re.split(r"[;\n]", text)]
    rules = [parse_rule(p) for p in parts if p]
    if not rules:
        raise UsageError(f"invalid device rules {text!r}: no rule given")
    return rules


_DEVICE = r"([bc])\s+(\d+):(\d+)(?:\s+([rwm]+))?"


def parse_device(text: str) -> tuple[str, int, int, str]:
    """A device access to check: ``TYPE MAJ:MIN [ACCESS]`` (``c 1:3 rw``; access
    defaults to ``rwm``) -> (type, major, minor, access)."""
    import re  # on first use: not on every start of the command

    m = re.fullmatch(_DEVICE, " ".join(text.split()), re.IGNORECASE)
    if m is None:
        raise UsageError(
            f"invalid device {text!r}: expected 'b|c MAJ:MIN [rwm]', e.g. 'c 1:3 rw'"
        )
    typ, major, minor, access = m.groups()
    for what, v in (("major", major), ("minor", minor)):
        if int(v) > _MAX_NUMBER:
            raise UsageError(f"invalid device {text!r}: {what} {v} is larger than {_MAX_NUMBER}")
    return typ.lower(), int(major), int(minor), (access or "rwm").lower()


def format_bytes(n: int | None) -> str:
    """``1.5M``-style (1024-based), ``-`` for unknown."""
    if n is None:
        return "-"
    if n >= 2**63:
        return "max"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}B"  # not reached


#: A limit at or above this many bytes is shown as ``max``: the kernel prints a limit
#: that is not set as ``max`` or, where its maximum is not a whole number of pages (huge
#: pages), as a number just below 2**63.
_NO_LIMIT = 2**62


def format_limit(n: int | None) -> str:
    """A byte limit: ``max`` when it is none, else :func:`format_bytes`."""
    if n is not None and n >= _NO_LIMIT:
        return "max"
    return format_bytes(n)


#: Limit files whose value is a number of bytes or ``max`` (besides hugetlb's).
_BYTE_LIMITS = frozenset({
    "memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max",
    "memory.swap.high", "memory.zswap.max",
})


def _hugetlb_limit(name: str) -> bool:
    return name.startswith("hugetlb.") and name.endswith(".max")


def shown_limit(name: str, text: str) -> str:
    """The text of limit file ``name`` as ``get`` shows it: the file's own text, except a
    huge page limit that is not set (the kernel prints the largest multiple of the page
    size below 2**63 there, where other files print ``max``): ``max``, as it is written."""
    if _hugetlb_limit(name) and text.isdigit() and int(text) >= _NO_LIMIT:
        return "max"
    return text


def limit_line(name: str, line: str) -> str:
    """One line of limit file ``name`` as ``status`` shows it: a byte limit with its unit
    as ``stat`` shows it (``32.0M``), ``max`` for none; other files' lines unchanged."""
    if (name in _BYTE_LIMITS or _hugetlb_limit(name)) and line.isdigit():
        return format_limit(int(line))
    return line


def format_usec(us: int | None) -> str:
    """Microseconds as ``1.234s`` / ``12ms`` / ``0``; ``-`` for unknown."""
    if us is None:
        return "-"
    if us == 0:
        return "0"
    if us < 1000:
        return f"{us}us"
    if us < 1_000_000:
        return f"{us / 1000:.1f}ms"
    return f"{us / 1_000_000:.3f}s"
