"""Text for a terminal: control characters shown escaped.

Group names, file names and command lines come from other users (a delegated user names
its groups, any user chooses its command line). Printed raw, ``ESC [ 2 J`` clears root's
screen and ``ESC ] 0 ; ... BEL`` sets its window title; U+009B starts the same sequences on
terminals that read C1 controls, and U+202E reverses the text that follows. So everything
the command prints that it did not write itself goes through :func:`printable` (as
``systemd-cgls`` and ``ls -b`` do).
"""

from __future__ import annotations

__all__ = ["printable"]

#: Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width characters),
#: surrogate, and line and paragraph separator characters.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(c: str) -> str:
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (os's "surrogateescape")
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x80:
        return f"\\x{n:02x}"
    if n <= 0xFFFF:  # C1 controls too: \x80-\xff stand for bytes only
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


_HEX = frozenset("0123456789abcdefABCDEF")


def _looks_escaped(s: str, i: int, unsafe: list[bool]) -> bool:
    """Would ``s[i:]``, after a backslash, read as one of :func:`_escape`'s escapes (or
    start with a backslash when shown)?"""
    if i >= len(s):
        return False
    c = s[i]
    if c == "\\" or unsafe[i]:
        return True
    width = {"x": 2, "u": 4, "U": 8}.get(c)
    if width is None:
        return False
    digits = s[i + 1 : i + 1 + width]
    if len(digits) < width or not set(digits) <= _HEX:
        return False
    # \xNN is written for C0, DEL and bytes that were not UTF-8 only (a systemd name's
    # \x2d stays as it is)
    return width > 2 or not 0x20 <= int(digits, 16) < 0x7F


def printable(s: str) -> str:
    """``s`` with every control, format, separator (other than space) and surrogate
    character shown as ``\\xNN`` (below U+0080), ``\\uNNNN`` or ``\\UNNNNNNNN``; a byte
    that was not UTF-8 (decoded with ``surrogateescape``) as ``\\xNN``. A backslash that
    would otherwise read as the start of such an escape (followed by one, by a backslash,
    or by a character shown escaped) is shown as ``\\\\``, so that a name spelt
    ``\\x1b`` and one holding ESC look different; other text, other backslashes included,
    is unchanged (a systemd name keeps its ``\\x2d``)."""
    if s.isprintable() and "\\" not in s:  # the common case
        return s
    import unicodedata

    unsafe = [unicodedata.category(c) in _UNSAFE for c in s]
    out = []
    for i, c in enumerate(s):
        if unsafe[i]:
            out.append(_escape(c))
        elif c == "\\" and _looks_escaped(s, i + 1, unsafe):
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)
