"""The command's output streams as rich Consoles, made on first use.

Importing rich costs more than most commands do: ``get``, ``ls``, ``stat --json`` and
the like write plain lines to ``console.file`` and never need it. A :class:`LazyConsole`
answers ``file`` itself (the stream, as ``Console.file`` does) and makes the real
Console, with the options the command has always used, only when anything else is asked
of it (``print``, ``width``, ``is_terminal``...).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from rich.console import Console

    _Base = Console
else:
    _Base = object

__all__ = ["WIDE", "LazyConsole", "make_console"]

#: The width on a pipe or file: lines are never wrapped or cut there.
WIDE = 4096


def make_console(*, stderr: bool = False) -> Console:
    """The command's Console for stdout (or stderr): no highlighting; on a pipe or file
    lines are never wrapped or cut (a terminal gets its own width)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else WIDE)


class LazyConsole(_Base):
    """A stand-in for :func:`make_console`'s Console that makes it on first use."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None
        self._file: IO[str] | None = None

    @property
    def file(self) -> IO[str]:
        """The stream written to (``Console.file``), without making the Console."""
        if self._console is not None:
            return self._console.file
        if self._file is not None:
            return self._file
        return sys.stderr if self._stderr else sys.stdout

    @file.setter
    def file(self, new_file: IO[str]) -> None:
        if self._console is not None:
            self._console.file = new_file
        self._file = new_file

    def __getattr__(self, name: str) -> Any:
        # only names not found on the instance come here: the real Console's
        if name.startswith("_"):
            raise AttributeError(name)
        if self._console is None:
            self._console = make_console(stderr=self._stderr)
            if self._file is not None:
                self._console.file = self._file
        return getattr(self._console, name)
