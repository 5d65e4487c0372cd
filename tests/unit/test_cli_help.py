"""unit: what the command says to a new user: every command described, every option
helped, a misspelt command or the ``cgset -r`` habit answered with the right form, and
the manual page found and with examples that parse."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from cgroup2.cli import build_parser
from cgroup2.cli._reference import EXAMPLES, commands, manpage

CLI = [sys.executable, "-m", "cgroup2"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("cmd", commands()[1:], ids=lambda c: c.name)
def test_every_command_has_a_description_and_every_option_help(cmd: object) -> None:
    assert cmd.description, cmd.name  # type: ignore[attr-defined]
    assert all(o.help for o in cmd.options), cmd.options  # type: ignore[attr-defined]


def test_timeout_says_its_default() -> None:
    for name in ("freeze", "thaw", "kill"):
        (c,) = [c for c in commands() if c.words == (name,)]
        (t,) = [o for o in c.options if o.names == ("--timeout",)]
        assert "default 10" in t.help


@pytest.mark.parametrize(("typed", "meant"), [("stauts", "status"), ("craete", "create"),
                                              ("evnets", "events")])
def test_a_misspelt_command_gets_a_suggestion(typed: str, meant: str) -> None:
    p = cli(typed, "/")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.endswith(f"did you mean {meant!r}?\n")


def test_no_suggestion_for_a_word_like_no_command() -> None:
    p = cli("xyzzy", "/")
    assert p.returncode == 2 and "did you mean" not in p.stderr


def test_a_bare_file_value_hints_at_p() -> None:
    p = cli("set", "/g", "memory.max=1G")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert p.stderr.rstrip().endswith("(to write a file of the group: -p memory.max=1G)")


def test_man_page_has_examples_that_parse() -> None:
    page = manpage()
    assert ".SH EXAMPLES" in page
    assert page.index(".SH EXAMPLES") < page.index(".SH SEE ALSO")
    lines = [ln for _, ex in EXAMPLES for ln in ex.split("\n")]
    assert len(lines) >= 8
    for line in lines:
        words = shlex.split(line)
        assert words[0] == "cgroup2"
        build_parser().parse_args(words[1:])  # a usage error raises


def test_man_option_shows_the_page() -> None:
    assert shutil.which("man"), "man (Debian package man-db; scripts/test-all installs it)"
    p = cli("--man", env={**os.environ, "MANPAGER": "cat", "PAGER": "cat"})
    assert p.returncode == 0, p.stderr
    assert "NAME" in p.stdout and "EXAMPLES" in p.stdout and "--memory-max" in p.stdout
    assert ".SH" not in p.stdout  # rendered


def test_man_option_without_man_prints_the_page(tmp_path: object) -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    p = cli("--man", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == manpage()


def test_completion_without_a_shell_says_how_to_enable_it() -> None:
    p = cli("completion")
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    assert "source <(cgroup2 completion bash)" in p.stderr and "fish | source" in p.stderr
