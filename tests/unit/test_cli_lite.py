"""unit: the small parser (cgroup2.cli._lite) answers as argparse does, or hands over.

The command parses each command line first with the LiteParser built from the same
declarations as the argparse parser; where it raises Fallback, argparse parses. So for
any words, the LiteParser must either give exactly argparse's Namespace, or raise
Fallback: never a different answer, and never an answer where argparse fails. The
common forms (run, get, set, --version) must not fall back: that is the start-up time
it exists for.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgroup2.cli import _command_word, _parser_class, build_parser
from cgroup2.cli._limits import _LIMIT_DESTS, add_limit_flags, limits_given
from cgroup2.cli._lite import _ATOMS, Fallback, LiteParser, _match


def _argparse(words: list[str]) -> tuple[str, Any]:
    """("ok", vars) / ("exit", (code, stdout)) / ("error", message) of argparse."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            ns = build_parser(only=_command_word(words)).parse_args(words)
    except SystemExit as e:
        return "exit", (e.code, out.getvalue())
    except Exception as e:  # UsageError from _Parser.error, or a type's own error
        return "error", str(e)
    return "ok", vars(ns)


def _lite(words: list[str]) -> tuple[str, Any]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            ns = build_parser(only=_command_word(words), lite=True).parse_args(words)
    except Fallback:
        return "fallback", None
    except SystemExit as e:
        return "exit", (e.code, out.getvalue())
    return "ok", vars(ns)


def _agrees(words: list[str]) -> str:
    """Check one command line; the LiteParser's kind of answer."""
    kind, got = _lite(words)
    if kind == "fallback":
        return kind
    want = _argparse(words)
    assert (kind, got) == want, words
    return kind


# --- the common forms are parsed by the small parser, as argparse parses them ---------

COMMON = [
    ["--version"],
    ["run", "--", "true"],
    ["run", "true"],
    ["run", "--summary", "--memory-max", "64M", "--pids-max", "16", "--", "sh", "-c", "x"],
    ["run", "--memory-max=64M", "--cpu-max", "50%", "-p", "pids.max=5", "--", "true", "-x"],
    ["run", "--group", "/g", "--", "true"],
    ["run", "--parent", "/p", "--name", "n", "--keep", "--", "true"],
    ["run", "--live", "1", "--", "true"],
    ["run", "--device", "allow c 1:3 rw", "--device", "deny a", "--", "true"],
    ["run", "--hugetlb", "2MB=4M", "--", "true"],
    ["--mountpoint", "/sys/fs/cgroup", "run", "--", "true"],
    ["--mountpoint=/m", "get", "/g", "memory.max"],
    ["get", "/g", "memory.max", "pids.max"],
    ["get", "--json", "/g"],
    ["get", "/g", "cgroup.procs", "--json"],
    ["get", "-v", "/g", "cgroup.procs"],
    ["set", "/g", "--memory-max", "1G"],
    ["create", "/g", "--parents", "--pids-max", "max"],
    ["attach", "/g", "1", "2"],
    ["exec", "/g", "--", "true"],
    ["ls", "-r", "/g"],
    ["ls"],
    ["stat", "--json", "/g"],
    ["status", "/g"],
    ["freeze", "/g"],
    ["kill", "/g", "-s", "TERM"],
    ["rm", "/g", "--kill", "--recursive"],
    ["tree", "/", "--json"],
    ["top", "/", "-n", "2", "--json"],
    ["events", "/g", "--count", "1"],
    ["devices", "check", "allow a", "c 1:3 r"],
    ["completion", "bash", "--", "get", ""],
    ["completion"],  # parsed; the command says how to name the shell
    ["self", "--json"],
    ["get", "--", "/g"],  # argparse drops the "--" of a positional's words
]


@pytest.mark.parametrize("words", COMMON, ids=[" ".join(w) for w in COMMON])
def test_common_forms_need_no_argparse(words: list[str]) -> None:
    assert _agrees(words) in ("ok", "exit")


def test_version_prints_what_argparse_prints() -> None:
    assert _lite(["--version"]) == _argparse(["--version"])
    kind, (code, text) = _lite(["--version"])
    assert kind == "exit" and code == 0 and text.startswith("cgroup2 ")


# --- what the small parser leaves to argparse -----------------------------------------

HANDED_OVER = [
    ["-h"],
    ["get", "--help"],
    ["get"],  # a required argument missing: argparse's error
    ["nosuch"],
    ["get", "/g", "--jso"],  # an abbreviation
    ["get", "/g", "--bogus"],
    ["get", "--json", "-v", "/g"],  # not allowed together
    ["get", "-v", "--json", "/g"],
    ["ls", "-rj"],  # combined short flags
    ["kill", "/g", "-sTERM"],  # a short option's value attached
    ["run", "--memory-max"],  # expected one argument
    ["run", "--memory-max", "--", "true"],
    ["run", "--live", "0", "--", "true"],  # the type refuses it: argparse words the error
    ["run", "--keep=yes", "--", "true"],
    ["top", "--sort", "nosuch"],  # not a choice
    ["get", "/g", "--json", "x"],  # argparse: 'unrecognized arguments: x'
    [],
]


@pytest.mark.parametrize("words", HANDED_OVER, ids=[" ".join(w) or "(none)" for w in HANDED_OVER])
def test_rare_forms_and_errors_go_to_argparse(words: list[str]) -> None:
    assert _lite(words) == ("fallback", None)


# --- any words: the same answer, or handed over ---------------------------------------


def _vocabulary() -> Iterator[str]:
    p = build_parser()
    seen: set[str] = set()
    stack = [p]
    while stack:
        q = stack.pop()
        for a in q._actions:
            for s in a.option_strings:
                if s not in seen:
                    seen.add(s)
                    yield s
            choices = getattr(a, "choices", None) or ()
            for name in choices:
                if isinstance(name, str) and name not in seen:
                    seen.add(name)
                    yield name
                sub = choices[name] if isinstance(choices, dict) else None
                if hasattr(sub, "_actions"):
                    stack.append(sub)


WORDS = [
    *sorted(_vocabulary()),
    "--", "-", "/g", "g", "1", "0", "-1", "50%", "64M", "x=y", "pids.max=5", "TERM", "cpu",
    "true", "sh", "-c", "bash", "allow a", "c 1:3 r", "", "--json=1", "--name=n", "a b",
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=8))
def test_any_words_same_answer_or_handed_over(words: list[str]) -> None:
    _agrees(words)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["run", "get", "set", "create", "ls", "attach", "exec", "kill", "top"]),
    st.lists(st.sampled_from(WORDS), max_size=8),
)
def test_any_words_after_a_subcommand(cmd: str, words: list[str]) -> None:
    _agrees([cmd, *words])


# --- pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nargs", "pattern", "want"),
    [
        (None, "A", [0, 1, 0]),
        (None, "-A-", [1, 1, 1]),
        (None, "O", None),
        ("?", "", [0, 0, 0]),
        ("*", "AAOA", [0, 2]),
        ("+", "A-AA", [0, 1, 3]),
        ("+", "", None),
        ("...", "A-OA", [4]),
        ("A...", "AOA", [0, 1, 2]),
    ],
)
def test_match_is_argparses_regular_expression(
    nargs: Any, pattern: str, want: list[int] | None
) -> None:
    import re

    assert _match(_ATOMS[nargs], pattern) == want
    regex = {None: "(-*)(A)(-*)", "?": "(-*)(A?)(-*)", "*": "(-*)([A-]*)",
             "+": "(-*)(A)([A-]*)", "...": "([-AO]*)", "A...": "(-*)(A)([-AO]*)"}[nargs]
    m = re.match(regex, pattern)
    assert (None if m is None else [len(g) for g in m.groups()]) == want


def test_limit_options_are_all_known_to_limits_given() -> None:
    # run without any limit option makes no Resources: every limit flag must be listed
    p = _parser_class()(prog="x")
    add_limit_flags(p)
    dests = {a.dest for a in p._actions if a.dest != "help"}
    assert dests == set(_LIMIT_DESTS)
    ns = p.parse_args([])
    assert not limits_given(ns)
    for a in p._actions:
        if a.dest == "help":
            continue
        value = "1" if a.type is None else {"pids_max": "5", "cpu_weight": "5"}.get(a.dest)
        if value is None:
            continue
        one = p.parse_args([a.option_strings[0], value])
        assert limits_given(one), a.dest


def test_lite_parser_records_only_what_it_can_parse() -> None:
    p = LiteParser(prog="x")
    p.add_argument("--n", action="count")
    p.add_argument("--c", action="store_const", const=1)
    with pytest.raises(Fallback):
        p.parse_args(["--n"])
    with pytest.raises(Fallback):
        p.parse_args(["--c"])
    assert vars(p.parse_args([])) == {"n": None, "c": None}
