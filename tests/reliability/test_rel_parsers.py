"""Fuzzing the parsers of issue 13, item 12: /proc/self/mountinfo, ``cgroup.procs``,
``pids.events`` (what ``cgroup2 run --summary`` reads) and the kernel's CPU lists. Any
input gives a result or a CgroupError (InvalidFormatError for what is read), never
another exception, and each call is fast. 2,000 examples per test in CI
(HYPOTHESIS_PROFILE=ci).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from conftest import fuzz_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reltools import no_leaks  # noqa: F401

from cgroup2 import CgroupError
from cgroup2.cli._run import _pids_max_hits
from cgroup2.controllers.cpuset import parse_cpu_list
from cgroup2.manager import _pids
from cgroup2.paths import parse_mountinfo

FUZZ = settings(fuzz_settings, suppress_health_check=list(HealthCheck))
#: Per call: generous for a loaded CI machine, far below the seconds of an unbounded parse.
FAST = 0.5


def total(parse: Callable[..., Any], data: Any) -> Any:
    """``parse(data)``: its result, or ``None`` for a CgroupError with a clear message.
    Any other exception fails the test, and so does a slow call."""
    t = time.perf_counter()
    try:
        return parse(data)
    except CgroupError as e:
        assert str(e).startswith("cgroups: "), str(e)
        return None
    finally:
        assert time.perf_counter() - t < FAST


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
def cpu_lists(draw: st.DrawFn) -> bytes:
    """Lists with numbers small and large, ranges, strides, blanks and empty items."""
    items = []
    for _ in range(draw(st.integers(0, 8))):
        lo = draw(st.sampled_from([0, 1, 7, 8191, 8192, 65536, 2**32, 2**64]))
        hi = lo + draw(st.sampled_from([0, 1, 8191, 65536]))
        shape = draw(st.integers(0, 3))
        item = [f"{lo}", f"{lo}-{hi}", f"{lo}-{hi}:{draw(NUMBERS)}/{draw(NUMBERS)}", ""][shape]
        item += draw(st.sampled_from(["", " ", "\t"]))
        items += [item] * draw(st.sampled_from([1, 1, 2, 200, 2000]))
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
