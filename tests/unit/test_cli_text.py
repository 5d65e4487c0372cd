"""unit: control characters are shown escaped wherever the command prints a group name,
a file name or a command line, unambiguously (a backslash that would read as an escape is
doubled)."""

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
        ("\u0080\u009b31m\u009f", "\\u0080\\u009b31m\\u009f"),  # C1, CSI among them
        ("abc\u202etxt.exe", "abc\\u202etxt.exe"),  # right-to-left override
        ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e"
         "\\u200f\\u061c"),  # bidi isolates and marks
        ("\u200b\ufeff\u00ad", "\\u200b\\ufeff\\u00ad"),  # other format characters
        ("\u2028\u2029", "\\u2028\\u2029"),  # line and paragraph separators
        ("\U000e0001", "\\U000e0001"),  # a format character beyond the BMP
        (b"bad\xff\x9b".decode("utf-8", "surrogateescape"), "bad\\xff\\x9b"),  # raw bytes
        ("\ud800", "\\ud800"),  # a lone surrogate that is not an escaped byte
        # a backslash that would read as an escape is doubled: a name spelt \x1b[31m and
        # one holding ESC [31m look different, so do a byte 0xff and the text \xff
        ("\\x1b[31m", "\\\\x1b[31m"),
        ("dup\\xff", "dup\\\\xff"),
        ("a\\u202e b\\U0001f600", "a\\\\u202e b\\\\U0001f600"),
        ("a\\\\b", "a\\\\\\b"),  # a backslash before a backslash
        ("a\\\x1b", "a\\\\\\x1b"),  # a backslash before a character shown escaped
        ("a\\x1", "a\\x1"),  # too short to read as an escape
        ("end\\", "end\\"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def _unescape(t: str) -> str:
    """Read :func:`printable`'s output back: ``\\\\``, ``\\xNN`` (a byte from 0x80),
    ``\\uNNNN``, ``\\UNNNNNNNN``; any other backslash is itself."""
    out, i = [], 0
    while i < len(t):
        if t[i] == "\\" and t[i + 1 : i + 2] == "\\":
            out.append("\\")
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(t[i + 1 : i + 2]) if t[i] == "\\" else None
        digits = t[i + 2 : i + 2 + width] if width else ""
        if width and len(digits) == width and all(c in "0123456789abcdef" for c in digits):
            n = int(digits, 16)
            if width > 2 or not 0x20 <= n < 0x7F:
                out.append(chr(n + 0xDC00 if width == 2 and n >= 0x80 else n))
                i += 2 + width
                continue
        out.append(t[i])
        i += 1
    return "".join(out)


TRICKY = st.text(alphabet=st.sampled_from(
    ["\\", "x", "u", "U", "1", "b", "f", "2", "d", "0", "\x1b", "\x85", "\udcff", "\xad", "é"]))


@given(st.one_of(st.text(), TRICKY))
def test_printable_leaves_no_control_character(s: str) -> None:
    out = printable(s)
    assert not [c for c in out if unicodedata.category(c) in UNSAFE]
    out.encode("utf-8")  # always printable on a UTF-8 terminal (no lone surrogates)
    assert _unescape(out) == s  # unambiguous: read back, it is the name
    if "\\" not in s and all(unicodedata.category(c) not in UNSAFE for c in s):
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
    assert "/g\\x1b[2J\\u202e" in out and "k\\u009b" in out and "v\\x1b" in out


def test_event_line_escapes_the_group() -> None:
    line = event_line("2024-01-01T00:00:00+0000", "/g\x1b]0;x\x07", {"oom": 1, "max": 2})
    assert line == "2024-01-01T00:00:00+0000 /g\\x1b]0;x\\x07 oom=1 max=2"
