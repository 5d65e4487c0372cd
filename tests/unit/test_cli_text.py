"""unit: control characters are shown escaped wherever the command prints a group name,
a file name or a command line (issue 13 item 8)."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from cgroup2.cli._cmds import event_line, stat_tree
from cgroup2.cli._text import printable
from cgroup2.cli._top import Row, table

UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain-name.scope", "plain-name.scope"),
        ("é 中文 🙂 a\\b", "é 中文 🙂 a\\b"),  # printable text and backslashes stay
        ("dev-disk-by\\x2duuid.mount", "dev-disk-by\\x2duuid.mount"),  # systemd's escapes
        ("\x1b[2J\x1b]0;pwn\x07", "\\x1b[2J\\x1b]0;pwn\\x07"),  # C0
        ("a\tb\nc\rd\0", "a\\x09b\\x0ac\\x0dd\\x00"),
        ("\x7f", "\\x7f"),  # DEL
        ("\u0080\u009b31m\u009f", "\\x80\\x9b31m\\x9f"),  # C1, CSI among them
        ("abc\u202etxt.exe", "abc\\u202etxt.exe"),  # right-to-left override
        ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e"
         "\\u200f\\u061c"),  # bidi isolates and marks
        ("\u200b\ufeff\u00ad", "\\u200b\\ufeff\\xad"),  # other format characters
        ("\u2028\u2029", "\\u2028\\u2029"),  # line and paragraph separators
        ("\U000e0001", "\\U000e0001"),  # a format character beyond the BMP
        (b"bad\xff\x9b".decode("utf-8", "surrogateescape"), "bad\\xff\\x9b"),  # raw bytes
        ("\ud800", "\\ud800"),  # a lone surrogate that is not an escaped byte
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@given(st.text())
def test_printable_leaves_no_control_character(s: str) -> None:
    out = printable(s)
    assert not [c for c in out if unicodedata.category(c) in UNSAFE]
    out.encode("utf-8")  # always printable on a UTF-8 terminal (no lone surrogates)
    if all(unicodedata.category(c) not in UNSAFE for c in s):
        assert out == s


def _render(renderable: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=4096, color_system=None).print(renderable)
    return buf.getvalue()


def test_top_table_escapes_and_takes_no_markup() -> None:
    rows = [Row("/x\x1b]0;pwn\x07[bold]y[/]", 1, None, None, None, None)]
    out = _render(table(rows, title="t\x1b", plain=True))
    assert "\x1b" not in out and "\x07" not in out
    assert "/x\\x1b]0;pwn\\x07[bold]y[/]" in out  # rich markup shown as it is, not read
    assert "t\\x1b" in out


def test_stat_tree_escapes() -> None:
    out = _render(stat_tree("/g\x1b[2J\u202e", {"k\x9b": "v\x1b", "n": {"m\x07": 1}}))
    assert not any(c in out for c in "\x1b\x07\x9b\u202e")
    assert "/g\\x1b[2J\\u202e" in out and "k\\x9b" in out and "v\\x1b" in out


def test_event_line_escapes_the_group() -> None:
    line = event_line("2024-01-01T00:00:00+0000", "/g\x1b]0;x\x07", {"oom": 1, "max": 2})
    assert line == "2024-01-01T00:00:00+0000 /g\\x1b]0;x\\x07 oom=1 max=2"
