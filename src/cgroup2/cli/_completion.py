"""``cgroup2 completion bash|zsh|fish``: shell completion, computed from the parser.

The scripts are thin: on each completion request the shell runs
``cgroup2 completion SHELL -- WORD...`` with the words of the command line (the last one
is the word under the cursor, maybe empty), and this module answers from
:func:`cgroup2.cli.build_parser`, the same parser that parses the command. So every
subcommand, option and choice completes without anything to regenerate, and group paths
complete from the cgroup2 mount (found as the command finds it, or ``--mountpoint`` from
the command line), listed through :mod:`cgroup2._fs` (no mount point crossed).

The answer is one line naming what the shell should complete itself (``files``, ``dirs``,
``commands``, or an empty line for nothing), then one candidate a line; for zsh and fish a
candidate is ``value<TAB>description``. A candidate ending in ``/`` is a group with
subgroups: the shell adds no space after it.
"""

from __future__ import annotations

import sys

from ._lite import REMAINDER

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, argparse, collections are not imported on the command's start
    import argparse
    from collections.abc import Sequence
    from typing import TextIO, TypeVar

    _P = TypeVar("_P", bound=argparse.ArgumentParser)

__all__ = ["SHELLS", "add_parser", "candidates", "group_candidates", "run", "script"]

SHELLS = ("bash", "zsh", "fish")
#: Group paths offered at most for one request, and how many of them are checked for
#: subgroups (a trailing ``/``).
MAX_GROUPS = 2000
MAX_CHECKED = 200

_DESCRIPTION = (
    "Print the completion script for SHELL. Enable it for the current shell with "
    "'source <(cgroup2 completion bash)' (bash), 'source <(cgroup2 completion zsh)' (zsh, "
    "after compinit) or 'cgroup2 completion fish | source' (fish); for every new shell, "
    "save the output as /etc/bash_completion.d/cgroup2, as _cgroup2 in a directory of "
    "$fpath, or as ~/.config/fish/completions/cgroup2.fish. Subcommands, options, their "
    "choices and group paths (read from the cgroup2 mount) complete. With '-- WORD ...', "
    "print the candidates for the last WORD of a command line instead (what the scripts "
    "run)."
)


def add_parser(sub: argparse._SubParsersAction[_P], name: str, help: str) -> None:
    """Add the subcommand ``completion`` with its arguments."""
    c = sub.add_parser(name, help=help, description=_DESCRIPTION)
    c.add_argument(
        "shell", choices=SHELLS, metavar="SHELL", nargs="?", help="bash, zsh or fish"
    )
    c.add_argument(
        "words",
        nargs=REMAINDER,
        metavar="-- WORD ...",
        help="the words after 'cgroup2' of a command line being completed",
    )


# ---- what to offer ---------------------------------------------------------------------

Candidates = tuple[str, list[tuple[str, str]]]  # (what the shell completes, [(value, help)])


def _subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction[
    argparse.ArgumentParser
] | None:
    import argparse

    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a
    return None


def _takes_value(a: argparse.Action) -> bool:
    return a.nargs != 0


def _value_kind(a: argparse.Action) -> str:
    """What a value of ``a`` is: ``choices``, ``group``, ``dirs``, ``files``, ``command``,
    or ``""`` (free text: nothing to offer)."""
    import argparse

    if a.choices is not None and not isinstance(a, argparse._SubParsersAction):
        return "choices"
    if a.nargs == argparse.REMAINDER:
        return "command"
    metavar = a.metavar if isinstance(a.metavar, str) else ""
    if metavar == "GROUP":
        return "group"
    if metavar in ("DIR", "DIRECTORY"):
        return "dirs"
    if metavar in ("FILE", "PATH"):
        return "files"
    return ""


#: ``events --pressure`` and ``run --on-pressure``: the RESOURCE:KIND: a trigger starts with.
_TRIGGER_HEADS = ("cpu:some:", "cpu:full:", "memory:some:", "memory:full:", "io:some:",
                  "io:full:", "irq:full:")


def _group_files(group: str | None, mountpoint: str | None, cur: str, *,
                 limits: bool) -> list[tuple[str, str]]:
    """The files of ``group`` starting with ``cur`` (``limits``: its limit files, each as
    ``FILE=``); nothing when no group was given or it cannot be read."""
    if group is None:
        return []
    from .._fs import Dir
    from ..errors import CgroupError
    from ..paths import default_mountpoint

    try:
        mnt = (mountpoint or default_mountpoint()).rstrip("/")
        rel = group[len(mnt):] if mnt and group.startswith(mnt + "/") else group
        with Dir.open(mnt or "/") as d:
            for n in (x for x in rel.split("/") if x):
                nxt = d.child(n)
                d.close()
                d = nxt
            try:
                if limits:
                    from ._groups import limit_files

                    names = [n + "=" for n in limit_files(d)]
                else:
                    import os

                    with os.scandir(d.fd) as it:
                        names = sorted(e.name for e in it if not e.is_dir(follow_symlinks=False))
            finally:
                d.close()
    except (CgroupError, OSError):
        return []
    return [(n, "") for n in names if n.startswith(cur)]


def _value(
    a: argparse.Action, cur: str, mountpoint: str | None, group: str | None = None
) -> Candidates:
    if a.metavar == "FILE" and a.dest == "files":  # get GROUP FILE...
        return "", _group_files(group, mountpoint, cur, limits=False)
    if a.dest == "property":  # -p FILE=VALUE
        return "", _group_files(group, mountpoint, cur, limits=True)
    if a.dest in ("pressure", "on_pressure"):
        return "", [(h, "") for h in _TRIGGER_HEADS if h.startswith(cur)]
    kind = _value_kind(a)
    if kind == "choices":
        return "", [(str(c), "") for c in (a.choices or ()) if str(c).startswith(cur)]
    if kind == "group":
        return "", [(g, "") for g in group_candidates(cur, mountpoint)]
    if kind == "command":
        return "commands", []
    return (kind if kind in ("dirs", "files") else ""), []


def _options(p: argparse.ArgumentParser, cur: str) -> list[tuple[str, str]]:
    import argparse

    out = []
    for a in p._actions:
        if a.help == argparse.SUPPRESS:
            continue
        for s in a.option_strings:
            if s.startswith(cur) and (s.startswith("--") or cur in ("", "-") or cur == s):
                out.append((s, a.help or ""))
    return out


def candidates(parser: argparse.ArgumentParser, words: Sequence[str]) -> Candidates:
    """What completes the last of ``words`` (the words after ``cgroup2``; the last one is
    the word under the cursor) on the command line ``parser`` parses."""
    import argparse

    *before, cur = list(words) or [""]
    p = parser
    mountpoint: str | None = None
    group: str | None = None  # the GROUP given, for the completion of its files
    npos = 0  # positionals given to the current (sub)command
    i = 0
    while i < len(before):
        w = before[i]
        positionals = [a for a in p._actions if not a.option_strings]
        if w == "--" or (
            not w.startswith("-") and npos < len(positionals)
            and positionals[npos].nargs == argparse.REMAINDER
        ):
            # the rest is a command line of its own (``run -- CMD ...``)
            rest = before[i + 1 :] if w == "--" else before[i:]
            return ("commands" if not rest else "files"), []
        if w.startswith("-") and w != "-":
            name, eq, _ = w.partition("=")
            a = p._option_string_actions.get(name)
            if a is not None and _takes_value(a) and not eq:
                i += 1
                if a.dest == "mountpoint" and i < len(before):
                    mountpoint = before[i]
            i += 1
            continue
        sub = _subparsers(p)
        if sub is not None and w in sub.choices:
            p, npos = sub.choices[w], 0
        else:
            if npos < len(positionals) and positionals[npos].metavar == "GROUP":
                group = w
            npos += 1
        i += 1
    # the word under the cursor: an option's value, an option, a subcommand, a positional
    if before and before[-1].startswith("-") and "=" not in before[-1]:
        a = p._option_string_actions.get(before[-1])
        if a is not None and _takes_value(a):
            return _value(a, cur, mountpoint, group)
    if cur.startswith("-"):
        return "", _options(p, cur)
    sub = _subparsers(p)
    if sub is not None:
        helps = {c.dest: c.help or "" for c in sub._choices_actions}
        return "", [(n, helps.get(n, "")) for n in sub.choices if n.startswith(cur)]
    positionals = [a for a in p._actions if not a.option_strings]
    if npos < len(positionals):
        return _value(positionals[npos], cur, mountpoint, group)
    if positionals and positionals[-1].nargs in ("*", "+"):  # get GROUP FILE FILE...
        return _value(positionals[-1], cur, mountpoint, group)
    return "", []


def group_candidates(prefix: str, mountpoint: str | None = None) -> list[str]:
    """The group paths that start with ``prefix``, written as the prefix is (``/a/b``,
    ``a/b``, or ``<mount>/a/b``); one with subgroups ends in ``/``. Nothing (never an
    error) where there is no cgroup2 mount or the parent group cannot be read."""
    from .._fs import Dir
    from ..errors import CgroupError
    from ..paths import default_mountpoint

    try:
        mnt = (mountpoint or default_mountpoint()).rstrip("/") or "/"
    except CgroupError:
        return []
    rel = prefix
    if mnt != "/" and (prefix == mnt or prefix.startswith(mnt + "/")):
        rel = prefix[len(mnt) :]
    base, _, part = rel.rpartition("/")
    names = [n for n in base.split("/") if n]
    if any(n in (".", "..") for n in names):
        return []
    # what each candidate starts with (nothing typed yet: the absolute form)
    head = prefix[: len(prefix) - len(part)] if prefix else "/"
    out: list[str] = []
    try:
        d = Dir.open(mnt, mnt)
        try:
            for n in names:
                nxt = d.child(n)
                d.close()
                d = nxt
            entries = sorted(
                (e for e in d.subdir_entries() if e[0].startswith(part)), key=lambda e: e[0]
            )[:MAX_GROUPS]
            for k, (name, _) in enumerate(entries):
                more = ""
                if k < MAX_CHECKED and len(entries) <= MAX_CHECKED:
                    try:
                        with d.child(name) as c:
                            more = "/" if c.subdir_entries() else ""
                    except CgroupError:
                        pass
                out.append(head + name + more)
        finally:
            d.close()
    except CgroupError:
        return out
    return out


# ---- the scripts -----------------------------------------------------------------------

_BASH = r"""# bash completion for cgroup2 (made by: cgroup2 completion bash)
_cgroup2() {
    local cur=${COMP_WORDS[COMP_CWORD]} what line
    local -a out
    mapfile -t out < <(command cgroup2 completion bash -- "${COMP_WORDS[@]:1:COMP_CWORD}" \
        2>/dev/null)
    what=${out[0]-}
    COMPREPLY=()
    case $what in
        files|dirs)
            mapfile -t COMPREPLY < <(compgen "-${what:0:1}" -- "$cur")
            compopt -o filenames 2>/dev/null
            return ;;
        commands) mapfile -t COMPREPLY < <(compgen -c -- "$cur"); return ;;
    esac
    for line in "${out[@]:1}"; do
        COMPREPLY+=("$line")
        [[ $line == */ || $line == *= || $line == *: ]] && compopt -o nospace 2>/dev/null
    done
}
complete -F _cgroup2 cgroup2
"""

_ZSH = r"""#compdef cgroup2
# zsh completion for cgroup2 (made by: cgroup2 completion zsh)
_cgroup2() {
    local -a out vals descs dirs
    local line v
    out=("${(@f)$(command cgroup2 completion zsh -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    case ${out[1]} in
        files) _files; return ;;
        dirs) _files -/; return ;;
        commands) _command_names -e; return ;;
    esac
    for line in "${(@)out[2,-1]}"; do
        [[ -z $line ]] && continue
        v=${line%%$'\t'*}
        if [[ $v == */ || $v == *= || $v == *: ]]; then
            dirs+=("$v")
        else
            vals+=("$v")
            if [[ $line == *$'\t'* && -n ${line#*$'\t'} ]]; then
                descs+=("$v -- ${line#*$'\t'}")
            else
                descs+=("$v")
            fi
        fi
    done
    (( ${#vals} )) && compadd -l -d descs -a vals
    (( ${#dirs} )) && compadd -S '' -a dirs
    return 0
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _cgroup2 "$@"
else
    compdef _cgroup2 cgroup2
fi
"""

_FISH = r"""# fish completion for cgroup2 (made by: cgroup2 completion fish)
function __cgroup2_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l cur (commandline -ct)
    set -l out (command cgroup2 completion fish -- $words "$cur" 2>/dev/null)
    switch "$out[1]"
        case files
            __fish_complete_path "$cur"
        case dirs
            __fish_complete_directories "$cur"
        case commands
            complete -C "$cur"
        case '*'
            printf '%s\n' $out[2..-1]
    end
end
complete -c cgroup2 -f -a '(__cgroup2_complete)'
"""


def script(shell: str) -> str:
    """The completion script for ``shell`` (``bash``, ``zsh`` or ``fish``)."""
    return {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}[shell]


def _only(words: Sequence[str]) -> str | None:
    """The subcommand whose arguments completing the last of ``words`` needs, as
    :func:`cgroup2.cli.build_parser` takes it: ``""`` for none (the first word), None for
    all (a command line it cannot tell). Only that command's module is imported."""
    from . import COMMANDS, _command_word

    before = words[:-1]
    if not before:
        return ""
    word = _command_word(before)
    return word if word in {name for name, _, _ in COMMANDS} else None


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``cgroup2 completion SHELL [-- WORD ...]``."""
    from . import build_parser

    out = out or sys.stdout
    if args.shell is None:
        from ._units import UsageError

        raise UsageError(
            "completion: name the shell: 'source <(cgroup2 completion bash)' (bash), "
            "'source <(cgroup2 completion zsh)' (zsh) or 'cgroup2 completion fish | source' "
            "(fish) enables completion in this shell"
        )
    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        out.write(script(args.shell))
        return 0
    what, found = candidates(build_parser(only=_only(words)), words)
    lines = [what]
    for value, text in found:
        if args.shell == "bash" or not text:
            lines.append(value)
        else:
            lines.append(value + "\t" + " ".join(text.split()))
    out.write("\n".join(lines) + "\n")
    return 0
