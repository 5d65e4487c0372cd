"""Fuzzing the parsers of issue 13, item 12: /proc/self/mountinfo, ``cgroup.procs``,
``pids.events`` (what ``cgroup2 run --summary`` reads) and the kernel's CPU lists. Any
input gives a result or a CgroupError (InvalidFormatError for what is read), never
another exception, and each call is fast. 2,000 examples per test in CI
(HYPOTHESIS_PROFILE=ci).

Item 13: the CPU lists of ``CPU(cpus=...)``, OCI ``cpu.cpus`` and the systemd bitmask are
compared with a line-by-line transcription of the kernel's ``bitmap_parselist``
(lib/bitmap-str.c): a list is taken exactly when the kernel takes it (but for the
documented refusals), it means the same CPUs, and the text written means them again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from conftest import fuzz_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reltools import no_leaks  # noqa: F401

from cgroup2 import CPU, CgroupError
from cgroup2.cli._summary import _pids_max_hits
from cgroup2.controllers.cpuset import CPU_LIST_LIMIT, parse_cpu_list
from cgroup2.manager import _pids
from cgroup2.oci import to_resources
from cgroup2.paths import parse_mountinfo
from cgroup2.systemd import cpu_bitmask

FUZZ = settings(fuzz_settings, suppress_health_check=list(HealthCheck))
#: CPU seconds per call (of this thread: a loaded machine does not stretch it), far
#: below the seconds of an unbounded parse.
FAST = 0.5


def total(parse: Callable[..., Any], data: Any) -> Any:
    """``parse(data)``: its result, or ``None`` for a CgroupError with a clear message.
    Any other exception fails the test, and so does a slow call."""
    t = time.thread_time()
    try:
        return parse(data)
    except CgroupError as e:
        assert str(e).startswith("cgroups: "), str(e)
        return None
    finally:
        assert time.thread_time() - t < FAST


NUMBERS = st.one_of(
    st.integers(0, 2**70).map(str),
    st.sampled_from(["", "-1", "+5", "1_0", "0x10", "9" * 5000, "٣", "²", " 7", "max"]),
)
TEXT = st.text(max_size=400)


# --- mountinfo --------------------------------------------------------------------------


@st.composite
def mountinfo_lines(draw: st.DrawFn) -> str:
    """Lines shaped like mountinfo's, with odd device numbers and field counts."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        dev = f"{draw(NUMBERS)}{draw(st.sampled_from([':', '', '::']))}{draw(NUMBERS)}"
        head = ["30", "24", dev, draw(st.sampled_from(["/", "/a\\040b", "\\"])), "/sys/fs/cgroup"]
        head = [*head[: draw(st.sampled_from([5, 5, 5, 2]))], "rw"]
        head += draw(st.lists(st.sampled_from(["rw", "shared:9"]), max_size=2))
        tail = ["cgroup2", "cgroup2", "rw"][: draw(st.sampled_from([3, 3, 3, 1]))]
        fstype = draw(st.sampled_from(["cgroup2", "cgroup", "cgroupx", "ext4"]))
        lines.append(" ".join(head) + " - " + " ".join([fstype, *tail[1:]]))
    return "\n".join(lines)


@FUZZ
@given(TEXT)
def test_mountinfo_any_text(text: str) -> None:
    total(parse_mountinfo, text)


@FUZZ
@given(mountinfo_lines())
def test_mountinfo_near_valid(text: str) -> None:
    total(parse_mountinfo, text)


# --- cgroup.procs -----------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_procs_any_bytes(data: bytes) -> None:
    total(_pids, data)


@FUZZ
@given(st.lists(NUMBERS, max_size=20), st.sampled_from(["\n", " ", "\r\n", "\t"]))
def test_procs_near_valid(words: list[str], sep: str) -> None:
    data = sep.join(words).encode()
    got = total(_pids, data)
    if all(w.isascii() and w.isdigit() and len(w) <= 10 for w in words):
        assert got == [int(w) for w in words if w]


# --- pids.events --------------------------------------------------------------------------


class FakeDir:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def try_read(self, name: str) -> bytes | None:
        assert name == "pids.events"
        return self.data


@FUZZ
@given(st.binary(max_size=400))
def test_pids_events_any_bytes(data: bytes) -> None:
    total(_pids_max_hits, FakeDir(data))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["max", "max.imposed", "", "x"]), NUMBERS), max_size=5))
def test_pids_events_near_valid(pairs: list[tuple[str, str]]) -> None:
    total(_pids_max_hits, FakeDir("".join(f"{k} {v}\n" for k, v in pairs).encode()))


# --- CPU lists --------------------------------------------------------------------------


@st.composite
def cpu_lists(draw: st.DrawFn, repeats: tuple[int, ...] = (1, 1, 2, 200, 2000)) -> bytes:
    """Lists with numbers small and large, ranges, strides, blanks and empty items."""
    items = []
    for _ in range(draw(st.integers(0, 8))):
        lo = draw(st.sampled_from([0, 1, 7, 8191, 8192, 65536, 2**32, 2**64]))
        hi = lo + draw(st.sampled_from([0, 1, 8191, 65536]))
        shape = draw(st.integers(0, 3))
        item = [f"{lo}", f"{lo}-{hi}", f"{lo}-{hi}:{draw(NUMBERS)}/{draw(NUMBERS)}", ""][shape]
        item += draw(st.sampled_from(["", " ", "\t"]))
        items += [item] * draw(st.sampled_from(repeats))
    return ",".join(items).encode() + draw(st.sampled_from([b"", b"\n"]))


@FUZZ
@given(st.binary(max_size=400))
def test_cpu_list_any_bytes(data: bytes) -> None:
    total(parse_cpu_list, data)


@FUZZ
@given(cpu_lists())
def test_cpu_list_near_valid(data: bytes) -> None:
    got = total(parse_cpu_list, data)
    if got is not None:
        assert list(got) == sorted(set(got)) and all(0 <= n < 8192 for n in got)


# --- item 13: CPU lists as the kernel reads them ---------------------------------------------


def kernel_parselist(text: str, nbits: int = CPU_LIST_LIMIT) -> set[int] | None:
    """lib/bitmap-str.c ``bitmap_parselist`` on ``text``: the set, or ``None`` where the
    kernel returns -EINVAL, -ERANGE or -EOVERFLOW. Without the newer kernels' ``N`` and
    ``all``. The string ends at NUL or newline (``end_of_str``)."""
    s = text + "\0"
    space = " \t\n\v\f\r"  # the kernel's isspace() of ASCII

    def end_of_str(c: str) -> bool:
        return c in "\0\n"

    def end_of_region_(c: str) -> bool:  # __end_of_region
        return c in space or c == ","

    def end_of_region(c: str) -> bool:
        return end_of_region_(c) or end_of_str(c)

    def getnum(i: int) -> tuple[int, int] | None:
        j = i
        while s[j] in "0123456789":
            j += 1
        digits = s[i:j].lstrip("0") or "0"
        if j == i or len(digits) > 10 or int(digits) >= 1 << 32:
            return None
        return int(digits), j

    bits: set[int] = set()
    i = 0
    while True:
        while end_of_region_(s[i]):  # bitmap_find_region
            i += 1
        if end_of_str(s[i]):
            return bits
        r = getnum(i)  # bitmap_parse_region
        if r is None:
            return None
        start, i = r
        last = False
        if end_of_region(s[i]):
            end = start
            off = group = end + 1
            last = end_of_str(s[i])
        else:
            if s[i] != "-":
                return None
            r = getnum(i + 1)
            if r is None:
                return None
            end, i = r
            if end_of_region(s[i]):
                off = group = end + 1
                last = end_of_str(s[i])
            else:
                if s[i] != ":":
                    return None
                r = getnum(i + 1)
                if r is None:
                    return None
                off, i = r
                if s[i] != "/":
                    return None
                r = getnum(i + 1)
                if r is None:
                    return None
                group, i = r
        if start > end or group == 0 or off > group or end >= nbits:  # bitmap_check_region
            return None
        for first in range(start, end + 1, group):  # bitmap_set_region
            bits.update(range(first, min(end + 1, first + off)))
        if last:
            return bits


def bits_of(mask: bytes) -> set[int]:
    return {i * 8 + b for i, byte in enumerate(mask) for b in range(8) if byte >> b & 1}


def refused_here(text: str) -> bool:
    """The documented refusals beyond the kernel's: a newline or NUL inside the list (the
    kernel stops reading there and drops the rest)."""
    inner = text.strip(" \t\n\v\f\r")
    return "\n" in inner or "\0" in inner


LIST_CHARS = st.sampled_from([*"0123456789,-:/ \t\n\r\v\f", "\0", "N", "x", "٣"])
LIST_TEXT = st.one_of(
    st.text(LIST_CHARS, max_size=30),
    cpu_lists(repeats=(1, 1, 2, 3)).map(lambda b: b.decode()),
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 9), st.integers(0, 9)),
        max_size=5,
    ).map(lambda xs: ",".join(f"{a}-{a + b}:{c}/{d}" for a, b, c, d in xs)),
)


@FUZZ
@given(LIST_TEXT)
def test_cpu_lists_are_read_as_the_kernel_reads_them(text: str) -> None:
    kernel = kernel_parselist(text)
    bitmask = total(cpu_bitmask, text)
    if refused_here(text) or kernel is None:
        assert bitmask is None, (text, kernel)
        return
    assert bitmask is not None and bits_of(bitmask) == kernel, text


@FUZZ
@given(LIST_TEXT)
def test_cpu_list_written_is_what_the_kernel_reads_back(text: str) -> None:
    kernel = kernel_parselist(text)
    got = total(lambda t: CPU(cpus=t, mems=t).values(), text)
    if text == "":
        assert got == []  # not set: nothing written
        return
    if refused_here(text) or not kernel:  # None: refused; empty: names no CPU
        assert got is None, (text, kernel)
        return
    assert got is not None
    for v in got:
        assert kernel_parselist(v.value) == kernel, (text, v)
        # the kernel's own form: ascending, with adjacent numbers joined
        nums = sorted(kernel)
        assert v.value.count(",") == sum(1 for a, b in itertools.pairwise(nums) if b != a + 1)


@FUZZ
@given(LIST_TEXT)
def test_oci_cpus_as_the_kernel_reads_them(text: str) -> None:
    kernel = kernel_parselist(text)
    got = total(lambda t: to_resources({"cpu": {"cpus": t}}).values(), text)
    if refused_here(text) or kernel is None:
        assert got is None, (text, kernel)
    elif not kernel:
        assert got == [], text  # names no CPU: not written
    else:
        assert got is not None and [kernel_parselist(v.value) for v in got] == [kernel]
