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
    if n <= 0xFF:
        return f"\\x{n:02x}"
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def printable(s: str) -> str:
    """``s`` with every control, format, separator (other than space) and surrogate
    character shown as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``; a byte that was not
    UTF-8 (decoded with ``surrogateescape``) as ``\\xNN``. Other text, backslashes
    included, is unchanged (a systemd name keeps its ``\\x2d``)."""
    if s.isprintable():  # the common case; implies none of the characters above
        return s
    import unicodedata

    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in s)
