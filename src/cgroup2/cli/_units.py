"""Parsing and formatting of the command line's values: sizes, CPU shares, IO limits, rules.

Every parser raises :class:`UsageError` with a one-line reason; the command turns it into
``cgroup2: error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import re
import stat as _stat

from ..controllers.cpu import CPUMax
from ..controllers.io import Entry, IOType
from ..devices.rules import DeviceRule

__all__ = [
    "UsageError",
    "format_bytes",
    "format_usec",
    "parse_cpu_max",
    "parse_device",
    "parse_io_max",
    "parse_rule",
    "parse_rules",
    "parse_size",
]

#: Size suffixes: binary multiples (1024-based), as systemd reads MemoryMax= and friends.
SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_PERIOD = 100_000  # microseconds: the kernel's default cpu.max period


class UsageError(Exception):
    """A value on the command line is wrong (exit status 2)."""


def parse_size(text: str, what: str = "size") -> int | str:
    """Bytes from ``512``, ``512K``, ``1.5G``, ``2T`` (1024-based; ``KiB``/``KB`` are read
    as ``K``), or ``"max"`` for no limit."""
    t = text.strip()
    if t.lower() in ("max", "infinity", "-1"):
        return "max"
    m = _SIZE.fullmatch(t)
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
_RULE = re.compile(
    rf"(allow|deny)(?:\s+([abc]))?(?:\s+{_NUM}:{_NUM})?(?:\s+([rwm]+))?", re.IGNORECASE
)


def parse_rule(text: str) -> DeviceRule:
    """One device rule: ``allow|deny [a|b|c] [MAJ:MIN] [ACCESS]``.

    Omitted parts are wildcards: type ``a`` (all), ``*:*``, access ``rwm``. ``*`` stands
    for any major or minor. Examples: ``deny a``, ``allow c 1:3 rw``, ``allow b 8:* r``.
    """
    t = " ".join(text.split())
    m = _RULE.fullmatch(t)
    if m is None:
        raise UsageError(
            f"invalid device rule {text!r}: expected 'allow|deny [a|b|c] [MAJ:MIN] [rwm]', "
            f"e.g. 'allow c 1:3 rw'"
        )
    verb, typ, major, minor, access = m.groups()
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
    parts = [p.strip() for p in re.split(r"[;\n]", text)]
    rules = [parse_rule(p) for p in parts if p]
    if not rules:
        raise UsageError(f"invalid device rules {text!r}: no rule given")
    return rules


_DEVICE = re.compile(r"([bc])\s+(\d+):(\d+)(?:\s+([rwm]+))?", re.IGNORECASE)


def parse_device(text: str) -> tuple[str, int, int, str]:
    """A device access to check: ``TYPE MAJ:MIN [ACCESS]`` (``c 1:3 rw``; access
    defaults to ``rwm``) -> (type, major, minor, access)."""
    m = _DEVICE.fullmatch(" ".join(text.split()))
    if m is None:
        raise UsageError(
            f"invalid device {text!r}: expected 'b|c MAJ:MIN [rwm]', e.g. 'c 1:3 rw'"
        )
    typ, major, minor, access = m.groups()
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
