"""unit: every stat parser, fed arbitrary bytes, gives a result or InvalidFormatError.

The number of examples per parser is the active hypothesis profile's (100, or 300 with
``HYPOTHESIS_PROFILE=ci``): the 2,000-example runs of every parser are the reliability
suite's (tests/reliability); ``CGROUP2_STAT_FUZZ_EXAMPLES=N`` overrides it for these tests.
Inputs are a mix of raw bytes and lines built from the tokens the kernel prints (keys,
numbers, ``max``, ``=``, ``:``), so that both the happy paths and the error paths run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cgroup2 import InvalidFormatError
from cgroup2.controllers import _parse
from cgroup2.controllers.cpu import parse_cpu_stat
from cgroup2.controllers.cpuset import parse_cpu_list
from cgroup2.controllers.hugetlb import parse_hugetlb_events
from cgroup2.controllers.io import parse_io_stat
from cgroup2.controllers.memory import (
    MEMORY_STAT_KEYS,
    parse_memory_events,
    parse_memory_stat,
)
from cgroup2.controllers.misc import parse_misc
from cgroup2.controllers.psi import parse_pressure
from cgroup2.controllers.rdma import parse_rdma
from cgroup2.stats import StatMask, collect

_n = os.environ.get("CGROUP2_STAT_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_n)) if _n else settings()

_TOKENS = [
    *(k.encode() for k in MEMORY_STAT_KEYS),
    *(
        b"usage_usec user_usec system_usec nr_periods nr_throttled throttled_usec nr_bursts "
        b"burst_usec low high max oom oom_kill oom_group_kill some full avg10 avg60 avg300 "
        b"total rbytes wbytes rios wios dbytes dios hca_handle hca_object mlx5_0 sev 8:0 "
        b"259:1 0 1 42 18446744073709551615 18446744073709551616 -1 1.5 0.00 12.34 +3 1_0 "
        b"nan inf \xff\xfe \xd9\xa0 0-3 5 7-2 , 0-1,4"
    ).split(),
]
_SEPS = [b" ", b"=", b":", b"\t", b".", b"-", b",", b"", b"  "]


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(_TOKENS) | st.binary(max_size=6), max_size=8))
    out = b""
    for p in parts:
        out += p + draw(st.sampled_from(_SEPS))
    return out


_TEXT = st.lists(_line(), max_size=12).map(lambda ls: b"\n".join(ls) + b"\n")
DATA = st.one_of(st.binary(max_size=300), _TEXT)


def _total(fn: Callable[[bytes], Any], data: bytes) -> None:
    try:
        fn(data)
    except InvalidFormatError as e:
        assert "line" in str(e) or "invalid format" in str(e)


@FUZZ
@given(DATA)
# the counts of two lines (two spaces, two newlines, four fields) in another shape
@example(b"a 1 b\n2\n")
@example(b"anon 1 file\n2\n")
@example(b"anon 1\nfile 2\n")
def test_flat_fast_path_equals_line_by_line(data: bytes) -> None:
    known = frozenset(MEMORY_STAT_KEYS)
    try:
        fast = _parse.parse_flat(data, "memory.stat", known)
    except InvalidFormatError:
        fast = None
    try:
        slow = _parse._flat_slow(data, "memory.stat", known)
    except InvalidFormatError:
        slow = None
    assert fast == slow


@FUZZ
@given(DATA)
def test_memory_stat(data: bytes) -> None:
    _total(parse_memory_stat, data)


@FUZZ
@given(DATA)
def test_cpu_stat(data: bytes) -> None:
    _total(parse_cpu_stat, data)


@FUZZ
@given(DATA)
def test_memory_events(data: bytes) -> None:
    _total(parse_memory_events, data)


@FUZZ
@given(DATA)
def test_pressure(data: bytes) -> None:
    _total(parse_pressure, data)


@FUZZ
@given(DATA)
def test_io_stat(data: bytes) -> None:
    _total(parse_io_stat, data)


@FUZZ
@given(DATA, st.booleans())
def test_rdma(data: bytes, limit: bool) -> None:
    _total(lambda b: parse_rdma(b, "rdma.max", limit=limit), data)


@FUZZ
@given(DATA, st.booleans())
def test_misc(data: bytes, limit: bool) -> None:
    _total(lambda b: parse_misc(b, "misc.max", limit=limit), data)


@FUZZ
@given(DATA)
def test_hugetlb_events(data: bytes) -> None:
    _total(parse_hugetlb_events, data)


@FUZZ
@given(DATA)
def test_cpu_list(data: bytes) -> None:
    _total(parse_cpu_list, data)


@FUZZ
@given(DATA)
def test_single_values(data: bytes) -> None:
    _total(lambda b: _parse.parse_uint(b, "pids.current"), data)
    _total(lambda b: _parse.parse_limit(b, "pids.max"), data)


class _FuzzDir:
    """A stand-in for a group directory with every controller, whose every statistics
    file holds the same bytes."""

    path = "/fuzz"
    absent = 0  # every file is there

    def __init__(self, data: bytes) -> None:
        self.data = data

    def file_path(self, name: str) -> str:
        return f"{self.path}/{name}"

    def try_read(self, name: str) -> bytes:
        if name == "cgroup.controllers":
            return b"cpuset cpu io memory hugetlb pids rdma misc\n"
        return self.data

    read = try_read


@FUZZ
@given(DATA)
def test_collect_whole(data: bytes) -> None:
    """collect() over a directory of garbage: Metrics or InvalidFormatError naming a path."""
    try:
        m = collect(_FuzzDir(data), StatMask.ALL)  # type: ignore[arg-type]
    except InvalidFormatError as e:
        assert e.path is not None and e.path.startswith("/fuzz")
        assert "/fuzz/" in str(e)
        return
    m.to_json()


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(MEMORY_STAT_KEYS) | st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
        st.integers(0, 2**64 - 1),
        max_size=60,
    )
)
def test_memory_stat_round_trip(values: dict[str, int]) -> None:
    text = "".join(f"{k} {v}\n" for k, v in values.items()).encode()
    m = parse_memory_stat(text)
    for k, v in values.items():
        got = getattr(m, k) if k in MEMORY_STAT_KEYS else m.other[k]
        assert got == v


def test_flat_white_space_is_what_str_split_splits_on() -> None:
    # the fast path's shape check keeps the ASCII characters str.split() splits on
    white = {chr(c) for c in range(128) if chr(c).isspace()}
    assert set(_parse._ASCII_WHITE) == white
    assert "".join(chr(c) for c in range(128)).translate(_parse._NOT_WHITE) == "".join(
        sorted(white)
    )
