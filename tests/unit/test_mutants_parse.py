"""unit: the shared parsers of controllers/_parse.py off the kernel's exact form (no
newline, spaces around the number), and their messages word for word (survivors of
scripts/mutation)."""

from __future__ import annotations

import pytest

from cgroup2.controllers._parse import (
    U64_MAX,
    invalid_format,
    parse_limit,
    parse_uint,
    parse_value,
)
from cgroup2.errors import InvalidFormatError


@pytest.mark.parametrize(
    ("data", "want"), [(b"12\n", 12), (b"5", 5), (b" 7 \n", 7), (b"0\n\n", 0), (b"\n3", 3)]
)
def test_parse_uint_forms(data: bytes, want: int) -> None:
    assert parse_uint(data, "pids.current") == want


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"12\n", 12),
        (b"5", 5),
        (b" 7 \n", 7),
        (b"max\n", U64_MAX),
        (b"max", U64_MAX),
        (b" max \n", U64_MAX),
    ],
)
def test_parse_limit_forms(data: bytes, want: int) -> None:
    assert parse_limit(data, "memory.max") == want


def _message(call: object) -> str:
    with pytest.raises(InvalidFormatError) as e:
        call()  # type: ignore[operator]
    return str(e.value)


def test_messages_word_for_word() -> None:
    head = "cgroups: parsing file with invalid format failed:"
    assert _message(lambda: parse_uint(b"x\n", "pids.current")) == (
        f"{head} pids.current line 1: 'x\\n': expected an unsigned integer"
    )
    assert _message(lambda: parse_uint(b"-1\n", "pids.current")) == (
        f"{head} pids.current line 1: '-1\\n': expected an unsigned integer"
    )
    assert _message(lambda: parse_limit(b"maxx\n", "memory.max")) == (
        f"{head} memory.max line 1: 'maxx\\n': expected an unsigned integer or 'max'"
    )
    err = invalid_format("memory.stat", 7, b"\xff" + b"a" * 300, "why")
    assert str(err) == f"{head} memory.stat line 7: '\\\\xff{'a' * 199}': why"


def test_parse_value_takes_max_only_for_limits() -> None:
    assert parse_value(b"max") is None
    assert parse_value(b"max", limit=True) == U64_MAX
    assert parse_value(b"42") == 42 and parse_value(b"-1") is None
