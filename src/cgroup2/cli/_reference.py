"""The command's reference, generated from its argparse parser: the man page ``cgroup2(1)``
(roff) and the CLI reference page of the documentation (Markdown).

One source of truth: every subcommand, option, usage line and help text comes from
:func:`cgroup2.cli.build_parser` when the page is made (the man page when the package is
built, ``setup.py``; the Markdown when the documentation is built, ``docs/hooks.py``), so a
new subcommand or option appears in both without an edit here. The conventions (group
paths, sizes, exit status) come from the docstring of :mod:`cgroup2.cli`.

``python -m cgroup2.cli._reference man|markdown`` prints either.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

from ._completion import _subparsers

__all__ = ["Command", "Option", "commands", "conventions", "manpage", "markdown"]


@dataclass(frozen=True, slots=True)
class Option:
    """One argument of a command, as its help shows it."""

    names: tuple[str, ...]  # the option strings (``--sort``), or ``()`` for a positional
    invocation: str  # ``--iterations N, -n N``, ``--sort {cpu,memory}``, ``GROUP``
    help: str  # the help text, with ``(default: X)`` added where the parser has one


@dataclass(frozen=True, slots=True)
class Command:
    """The top-level command (``words == ()``) or one subcommand (``("devices", "check")``)."""

    words: tuple[str, ...]
    summary: str  # the line in its parent's list of commands
    usage: str  # one line, without ``usage:``
    description: str
    positionals: tuple[Option, ...]
    options: tuple[Option, ...]
    subcommands: tuple[str, ...]  # names, for a command that has its own subcommands

    @property
    def name(self) -> str:
        return " ".join(("cgroup2", *self.words))


def _usage(p: argparse.ArgumentParser) -> str:
    f = argparse.HelpFormatter(p.prog, width=100_000)
    f.add_usage(p.usage, p._actions, p._mutually_exclusive_groups, prefix="")
    return " ".join(f.format_help().split())


def _option(p: argparse.ArgumentParser, a: argparse.Action) -> Option:
    f = argparse.HelpFormatter(p.prog, width=100_000)
    text = f._expand_help(a) if a.help else ""
    if not text and a.metavar == "GROUP":
        text = "a group path (see the conventions)"
    elif not text and a.nargs == argparse.REMAINDER:
        text = "the command to run and its arguments"
    d = a.default
    if (
        d not in (None, False, argparse.SUPPRESS)
        and a.nargs != argparse.REMAINDER
        and "default" not in text
    ):
        text = f"{text} (default: {d})".strip()
    return Option(tuple(a.option_strings), f._format_action_invocation(a), text)


def _walk(
    p: argparse.ArgumentParser, words: tuple[str, ...], summary: str
) -> Iterator[Command]:
    sub = _subparsers(p)
    positionals: list[Option] = []
    options: list[Option] = []
    for a in p._actions:
        if a is sub or a.help == argparse.SUPPRESS:
            continue
        if words and isinstance(a, argparse._HelpAction):
            continue  # -h/--help: said once, for the top-level command
        (options if a.option_strings else positionals).append(_option(p, a))
    helps = {c.dest: c.help or "" for c in sub._choices_actions} if sub else {}
    names = tuple(helps) if sub else ()
    yield Command(
        words=words,
        summary=summary,
        usage=_usage(p),
        description=p.description or "",
        positionals=tuple(positionals),
        options=tuple(options),
        subcommands=names,
    )
    if sub:
        for name in names:
            yield from _walk(sub.choices[name], (*words, name), helps[name])


def commands(parser: argparse.ArgumentParser | None = None) -> list[Command]:
    """The top-level command, then every subcommand depth first, in the parser's order
    (hidden ones, ``help=argparse.SUPPRESS``, left out)."""
    if parser is None:
        from . import build_parser

        parser = build_parser()
    return list(_walk(parser, (), ""))


def conventions() -> str:
    """The conventions part of :mod:`cgroup2.cli`'s docstring (group paths, sizes, exit
    status), or ``""`` when it has none. It is written as Markdown-compatible text."""
    from .. import cli

    doc = cli.__doc__ or ""
    _, found, rest = doc.partition("Conventions:")
    # Sphinx roles (:mod:`x`, :func:`~x`) as plain code
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"``\1``", rest.strip()) if found else ""


def _version() -> str:
    from .._version import __version__

    return __version__


# ---- roff ------------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, ``code`` in bold, no line
    starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"``(.+?)``", r"\\fB\1\\fR", text)
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def _roff_paragraphs(text: str) -> list[str]:
    """Paragraphs and ``* `` bullet lists (as the docstrings write them) as roff."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        items = re.split(r"(?m)^\* ", block)
        if len(items) > 1:
            if items[0].strip():
                out += [".PP", _roff(" ".join(items[0].split()))]
            for item in items[1:]:
                out += [".IP \\(bu 2", _roff(" ".join(item.split()))]
        else:
            out += [".PP", _roff(" ".join(block.split()))]
    return out


def _roff_options(opts: tuple[Option, ...]) -> list[str]:
    out: list[str] = []
    for o in opts:
        out += [".TP", "\\fB" + _roff(o.invocation) + "\\fR", _roff(o.help or "")]
    return out


#: The man page's EXAMPLES: (what it does, the command line).
EXAMPLES = (
    ("Run a build under a memory and CPU limit, with its statistics while it runs and at "
     "the end; the group is removed when it ends:",
     "cgroup2 run --memory-max 512M --cpu-max 50% --live 1 --summary -- make -j4"),
    ("Make a group with limits, change one, read them back:",
     "cgroup2 create --parents --memory-max 1G /jobs/job-1\n"
     "cgroup2 set -p memory.max=2G /jobs/job-1\n"
     "cgroup2 get /jobs/job-1 memory.max pids.max"),
    ("Run a command in the group, look at it, and remove it with what runs in it:",
     "cgroup2 exec /jobs/job-1 -- ./job\n"
     "cgroup2 status /jobs/job-1\n"
     "cgroup2 rm -r --kill /jobs"),
    ("Allow only /dev/null and /dev/zero (an eBPF device filter):",
     'cgroup2 run --device "deny a" --device "allow c 1:3 rw" --device "allow c 1:5 r" '
     "-- ./job"),
    ("Kill a job when its group stalls on memory for 200 ms in 2 s:",
     "cgroup2 run --on-pressure memory:full:200ms:2s=kill -- ./job"),
    ("Groups by memory use, refreshed; statistics as JSON:",
     "cgroup2 top --sort memory\n"
     "cgroup2 stat --json /jobs/job-1"),
)


def show_man() -> int:
    """``cgroup2 --man``: this page through ``man -l`` (the installed one, else one made
    from the parser); without ``man``, the page's roff on standard output. For an install
    whose ``bin`` is not on ``PATH`` (a venv not activated), where ``man cgroup2`` does not
    find the page."""
    import shutil
    import subprocess
    import tempfile

    installed = os.path.join(sys.prefix, "share", "man", "man1", "cgroup2.1")
    page = None if os.path.exists(installed) else manpage()
    if shutil.which("man") is None:
        if page is None:
            with open(installed, encoding="utf-8") as f:
                page = f.read()
        sys.stdout.write(page)
        return 0
    sys.stdout.flush()
    if page is None:
        return subprocess.run(["man", "-l", installed], check=False).returncode
    with tempfile.NamedTemporaryFile("w", suffix=".1", encoding="utf-8") as f:
        f.write(page)
        f.flush()
        return subprocess.run(["man", "-l", f.name], check=False).returncode


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def manpage(parser: argparse.ArgumentParser | None = None) -> str:
    """The man page ``cgroup2(1)`` in roff, from the parser (default: the command's)."""
    cmds = commands(parser)
    top = cmds[0]
    lines = [
        '.TH CGROUP2 1 "" "cgroup2 ' + _roff(_version()) + '" "User Commands"',
        ".nh",  # no hyphenation: option names are copied from the page
        ".ad l",
        ".SH NAME",
        "cgroup2 \\- " + _roff(_lower_first(top.description.rstrip(".")) or "cgroup v2"),
        ".SH SYNOPSIS",
        _roff(top.usage),
        ".SH DESCRIPTION",
        ".PP",
        _roff(top.description),
        ".PP",
        "Commands: " + ", ".join("\\fB" + _roff(c.name[8:]) + "\\fR" for c in cmds[1:]) + ".",
        "Each is described under COMMANDS; every command takes \\fB\\-h\\fR for its help.",
    ]
    conv = conventions()
    if conv:
        lines += [".SH CONVENTIONS", *_roff_paragraphs(conv)]
    lines += [".SH OPTIONS", *_roff_options(top.positionals + top.options), ".SH COMMANDS"]
    for c in cmds[1:]:
        lines += [".SS " + '"' + _roff(c.name) + '"', _roff(c.summary)]
        lines += [".PP", ".RS 4", _roff(c.usage), ".RE"]
        if c.description:
            lines += _roff_paragraphs(c.description)
        if c.subcommands:
            lines += [".PP", "Commands: " + ", ".join(_roff(s) for s in c.subcommands) + "."]
        lines += _roff_options(c.positionals + c.options)
    lines += [".SH EXAMPLES"]
    for what, example in EXAMPLES:
        lines += [".PP", _roff(what), ".RS 4", ".nf", _roff(example), ".fi", ".RE"]
    lines += [
        ".SH FILES",
        ".TP",
        ".I /proc/self/mountinfo",
        "where the cgroup2 mount is found (unless \\fB\\-\\-mountpoint\\fR).",
        ".SH SEE ALSO",
        ".BR cgroups (7),",
        ".BR systemd.resource\\-control (5),",
        ".BR systemd\\-run (1)",
    ]
    return "\n".join(lines) + "\n"


# ---- Markdown --------------------------------------------------------------------------


def _md(text: str) -> str:
    """Plain help text as Markdown text: what Markdown would read as markup escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def _md_prose(text: str) -> str:
    """A description: Markdown escapes, keeping ``code`` (the docstrings' form) as code."""
    parts = re.split(r"(``.+?``)", text)
    return "".join(p if p.startswith("``") else _md(p) for p in parts)


def _md_options(title: str, opts: tuple[Option, ...]) -> list[str]:
    if not opts:
        return []
    out = [f"**{title}**", ""]
    for o in opts:
        out += [f"`{o.invocation}`", f":   {_md_prose(o.help) or '&nbsp;'}", ""]
    return out


def markdown(parser: argparse.ArgumentParser | None = None, *, level: int = 2) -> str:
    """The CLI reference as Markdown (headings from ``level``; definition lists need the
    ``def_list`` extension)."""
    cmds = commands(parser)
    h = "#" * level
    top = cmds[0]
    out = [
        "| command | what it does |",
        "|---|---|",
        *(f"| [`{c.name}`](#{_anchor(c)}) | {_md(c.summary)} |" for c in cmds[1:]),
        "",
        f"{h} `cgroup2`",
        "",
        _md_prose(top.description),
        "",
        "```text",
        _wrap(top.usage),
        "```",
        "",
        *_md_options("Options", top.options),
    ]
    conv = conventions()
    if conv:
        out += [f"{h} Conventions", "", conv, ""]
    for c in cmds[1:]:
        out += [f"{h} `{c.name}` {{#{_anchor(c)}}}", "", _md_prose(c.summary), "", "```text",
                _wrap(c.usage), "```", ""]
        if c.description:
            out += [_md_prose(c.description), ""]
        if c.subcommands:
            out += ["Commands: " + ", ".join(f"[`{s}`](#{_anchor(c, s)})"
                                             for s in c.subcommands) + ".", ""]
        out += _md_options("Arguments", c.positionals)
        out += _md_options("Options", c.options)
    return "\n".join(out)


def _wrap(usage: str) -> str:
    return textwrap.fill(usage, 88, subsequent_indent="    ", break_on_hyphens=False,
                         break_long_words=False)


def _anchor(c: Command, *more: str) -> str:
    return "-".join(("cgroup2", *c.words, *more))


def main(argv: list[str] | None = None) -> int:
    what = (sys.argv[1:] if argv is None else argv) or ["man"]
    if what[0] not in ("man", "markdown"):
        print("usage: python -m cgroup2.cli._reference man|markdown", file=sys.stderr)
        return 2
    sys.stdout.write(manpage() if what[0] == "man" else markdown() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
