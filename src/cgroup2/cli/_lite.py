"""A small parser for the command lines that need no more than a parse: argparse's
semantics, without importing argparse.

Importing argparse (with ``re`` and ``gettext``) and building its parser cost more than the
rest of a ``cgroup2 get`` or ``cgroup2 run -- true`` (``benchmarks/startup.py``). The
command's arguments are declared once, in :func:`cgroup2.cli.build_parser`; built with
:class:`LiteParser` instead of argparse's class, the same declarations give this parser.
It follows argparse's algorithm (the pattern of ``O``/``A``/``-`` per word, the greedy
matching of the positionals' ``nargs``, the same defaults and actions) for what it takes:
exact option names, ``--opt=VALUE``, ``store``/``store_true``/``append``/``version``
actions and the subcommand. Anything else raises :class:`Fallback`, and the caller parses
the same words with argparse, which then gives help, abbreviations, combined short
flags and every error message: this parser never prints an error of its own, and
``tests/unit/test_cli_lite.py`` checks that its answers equal argparse's.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    #: What ``add_subparsers()`` gives (argparse's, or :class:`LiteParser`'s): a command
    #: module's ``add_parser`` adds its subcommand to it.
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["REMAINDER", "SUPPRESS", "Fallback", "LiteParser", "Namespace"]

REMAINDER = "..."  # argparse.REMAINDER
SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS
_PARSER = "A..."  # argparse.PARSER
_INF = 1 << 30


class Fallback(Exception):
    """The words need argparse: help, an error, or a form this parser does not take."""


class Namespace:
    """The parsed arguments, as attributes (what argparse's ``Namespace`` holds)."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"

    __hash__ = None  # type: ignore[assignment]


#: Each positional ``nargs`` as argparse's pattern: (characters, least, most) atoms,
#: matched greedily in turn over the words' pattern (argparse's regular expressions).
_ATOMS: dict[Any, tuple[tuple[str, int, int], ...]] = {
    None: (("-", 0, _INF), ("A", 1, 1), ("-", 0, _INF)),
    "?": (("-", 0, _INF), ("A", 0, 1), ("-", 0, _INF)),
    "*": (("-", 0, _INF), ("A-", 0, _INF)),
    "+": (("-", 0, _INF), ("A", 1, 1), ("A-", 0, _INF)),
    REMAINDER: (("-AO", 0, _INF),),
    _PARSER: (("-", 0, _INF), ("A", 1, 1), ("-AO", 0, _INF)),
}


def _match(atoms: Sequence[tuple[str, int, int]], pattern: str) -> list[int] | None:
    """The length each atom takes in a greedy, backtracking match of a prefix of
    ``pattern`` (as ``re.match`` of the atoms' expression would), or None."""
    counts = [0] * len(atoms)

    def at(i: int, pos: int) -> bool:
        if i == len(atoms):
            return True
        chars, least, most = atoms[i]
        n = 0
        while n < most and pos + n < len(pattern) and pattern[pos + n] in chars:
            n += 1
        while n >= least:
            counts[i] = n
            if at(i + 1, pos + n):
                return True
            n -= 1
        return False

    return counts if at(0, 0) else None


class _Action:
    __slots__ = ("choices", "const", "default", "dest", "kind", "nargs", "option_strings",
                 "parser", "required", "type", "version")

    def __init__(self, names: Sequence[str], kwargs: dict[str, Any]) -> None:
        kind = kwargs.pop("action", None) or "store"
        self.option_strings = [n for n in names if n.startswith("-")]
        if self.option_strings:
            long = [n for n in self.option_strings if n.startswith("--")]
            first = (long or self.option_strings)[0]
            dest = first.lstrip("-").replace("-", "_")
        else:
            dest = names[0]
        self.dest: str = kwargs.pop("dest", None) or dest
        self.nargs: Any = kwargs.pop("nargs", None)
        self.type: Callable[[str], Any] | None = kwargs.pop("type", None)
        self.choices: Any = kwargs.pop("choices", None)
        self.version: str | None = kwargs.pop("version", None)
        self.parser: LiteParser | None = None
        self.const: Any = None
        for k in ("help", "metavar"):
            kwargs.pop(k, None)
        if kind == "store_true":
            default: Any = False
            self.const, self.nargs = True, 0
        elif kind == "store_false":
            default, self.const, self.nargs = True, False, 0
        elif kind in ("help", "version"):
            default, self.nargs = SUPPRESS, 0
            self.dest = SUPPRESS
        else:
            default = None
        self.default: Any = kwargs.pop("default", default)
        if self.option_strings:
            self.required = bool(kwargs.pop("required", False))
        else:
            # argparse: a positional is required unless '?' or '*' with a default
            self.required = self.nargs not in ("?", "*") or (
                self.nargs == "*" and "default" not in kwargs
            )
        known = ("store", "store_true", "store_false", "append", "help", "version")
        const = kwargs.pop("const", None)
        # options take one value or none here; const and any other keyword: argparse
        unsupported = (
            (self.option_strings and self.nargs not in (None, 0)) or const is not None or kwargs
        )
        self.kind = "unsupported" if kind not in known or unsupported else kind


class _Group:
    """A mutually exclusive group: its arguments belong to the parser too."""

    def __init__(self, parser: LiteParser, required: bool) -> None:
        self._parser = parser
        self.required = required
        self.actions: list[_Action] = []

    def add_argument(self, *names: str, **kwargs: Any) -> _Action:
        a = self._parser.add_argument(*names, **kwargs)
        self.actions.append(a)
        return a


class _Subparsers:
    """``add_subparsers()``: a positional action that hands the rest to a subparser."""

    def __init__(self, action: _Action) -> None:
        self._action = action
        self.parsers: dict[str, LiteParser] = {}
        self.required = False

    def add_parser(self, name: str, **kwargs: Any) -> LiteParser:
        if "aliases" in kwargs:
            self._action.kind = "unsupported"
        p = LiteParser(prog=name, add_help=kwargs.get("add_help", True))
        self.parsers[name] = p
        return p


class LiteParser:
    """The part of ``argparse.ArgumentParser`` that :func:`cgroup2.cli.build_parser` uses,
    recorded; :meth:`parse_args` parses as argparse would or raises :class:`Fallback`."""

    def __init__(self, prog: str | None = None, *, add_help: bool = True, **kwargs: Any) -> None:
        self.prog = prog or ""
        self._actions: list[_Action] = []
        self._options: dict[str, _Action] = {}
        self._groups: list[_Group] = []
        self._subparsers: list[_Subparsers] = []
        if add_help:
            self.add_argument("-h", "--help", action="help")

    def add_argument(self, *names: str, **kwargs: Any) -> _Action:
        a = _Action(names, dict(kwargs))
        self._actions.append(a)
        for name in a.option_strings:
            self._options[name] = a
        return a

    def add_argument_group(self, *args: Any, **kwargs: Any) -> LiteParser:
        return self

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Group:
        g = _Group(self, bool(kwargs.get("required")))
        self._groups.append(g)
        return g

    def add_subparsers(self, *, dest: str | None = None, **kwargs: Any) -> _Subparsers:
        a = _Action([dest or SUPPRESS], {"nargs": _PARSER})
        a.required = False
        sub = _Subparsers(a)
        a.kind = "parser"
        a.parser = self
        self._actions.append(a)
        self._subparsers.append(sub)
        return sub

    def set_defaults(self, **kwargs: Any) -> None:
        raise NotImplementedError("set_defaults: not used by the command")

    # --- parsing ----------------------------------------------------------------------

    def parse_args(self, words: Sequence[str]) -> argparse.Namespace:
        """``words`` parsed as ``argparse.ArgumentParser.parse_args`` would (the same
        Namespace), or :class:`Fallback` where argparse would print (help, version
        aside: that is printed here) or fail, or the words need what this parser lacks."""
        ns = Namespace()
        extras = self._parse(list(words), ns)
        if extras:
            raise Fallback("unrecognized arguments")
        return ns  # type: ignore[return-value]

    def _classify(self, word: str) -> tuple[_Action, str | None] | None:
        """``(action, explicit value)`` of an option word; None for a positional word."""
        if not word.startswith("-") or word == "-":
            return None
        a = self._options.get(word)
        if a is not None:
            return a, None
        if "=" in word:
            name, _, value = word.partition("=")
            a = self._options.get(name)
            if a is not None:
                return a, value
        # an abbreviation, a negative number, a word with a space, an unknown option, a
        # short option with its value attached or flags combined: argparse decides
        raise Fallback(word)

    def _parse(self, words: list[str], ns: Namespace) -> list[str]:
        for a in self._actions:
            if a.dest != SUPPRESS and not hasattr(ns, a.dest) and a.default != SUPPRESS:
                setattr(ns, a.dest, a.default)
        conflicts: dict[int, list[_Action]] = {}
        for g in self._groups:
            for a in g.actions:
                conflicts.setdefault(id(a), []).extend(x for x in g.actions if x is not a)

        options: dict[int, tuple[_Action, str | None]] = {}
        parts: list[str] = []
        has_parser = any(a.kind == "parser" for a in self._actions)
        for i, word in enumerate(words):
            if word == "--":
                parts.append("-")
                parts.extend("A" * (len(words) - i - 1))
                break
            if has_parser and "A" in parts:
                parts.append("A" if not word.startswith("-") else "O")
                if word.startswith("-"):
                    # after the subcommand's name every word is the subparser's: it
                    # classifies them; here they only need to be matched by its pattern
                    options[i] = (_NOT_MINE, None)
                continue
            opt = self._classify(word)
            if opt is None:
                parts.append("A")
            else:
                options[i] = opt
                parts.append("O")
        pattern = "".join(parts)

        seen: set[int] = set()
        non_default: set[int] = set()
        positionals = [a for a in self._actions if not a.option_strings]
        extras: list[str] = []

        def take(a: _Action, strings: list[str]) -> None:
            seen.add(id(a))
            value = self._values(a, strings)
            if value is not a.default:
                non_default.add(id(a))
                for c in conflicts.get(id(a), ()):
                    if id(c) in non_default:
                        raise Fallback("not allowed with")
            if value is not SUPPRESS:
                self._act(a, ns, value)

        def consume_optional(start: int) -> int:
            a, explicit = options[start]
            if a is _NOT_MINE:
                raise Fallback("an option where argparse decides")
            if explicit is not None:
                if a.nargs != None:  # noqa: E711 (argparse: one value, not 0)
                    raise Fallback("ignored explicit argument")
                take(a, [explicit])
                return start + 1
            if a.nargs == 0:
                take(a, [])
                return start + 1
            if pattern[start + 1 : start + 2] != "A":
                raise Fallback("expected one argument")
            take(a, [words[start + 1]])
            return start + 2

        def consume_positionals(start: int) -> int:
            rest = pattern[start:]
            counts: list[int] | None = None
            for n in range(len(positionals), 0, -1):
                atoms = [x for p in positionals[:n] for x in _ATOMS[p.nargs]]
                flat = _match(atoms, rest)
                if flat is not None:
                    counts, k = [], 0
                    for p in positionals[:n]:
                        size = len(_ATOMS[p.nargs])
                        counts.append(sum(flat[k : k + size]))
                        k += size
                    break
            if counts is None:
                return start
            for p, count in zip(positionals, counts, strict=False):
                take(p, words[start : start + count])
                start += count
            del positionals[: len(counts)]
            return start

        start = 0
        last_option = max(options) if options else -1
        while start <= last_option:
            nxt = min(i for i in options if i >= start)
            if start != nxt:
                end = consume_positionals(start)
                if end > start:
                    start = end
                    continue
                start = end
            if start not in options:
                extras.extend(words[start:nxt])
                start = nxt
            start = consume_optional(start)
        stop = consume_positionals(start)
        extras.extend(words[stop:])

        for a in self._actions:
            if id(a) in seen:
                continue
            if a.required or (a.kind == "parser" and self._subparsers[0].required):
                raise Fallback("the following arguments are required")
            if (
                isinstance(a.default, str)
                and a.dest != SUPPRESS
                and a.default is getattr(ns, a.dest, None)
                and a.default != SUPPRESS
            ):
                setattr(ns, a.dest, self._convert(a, a.default))
        for g in self._groups:
            if g.required and not any(id(a) in non_default for a in g.actions):
                raise Fallback("one of the arguments is required")
        return extras

    def _convert(self, a: _Action, text: Any) -> Any:
        if a.type is None:
            return text
        try:
            return a.type(text)
        except Exception:
            raise Fallback("invalid value") from None

    def _check(self, a: _Action, value: Any) -> None:
        if a.choices is not None and value not in a.choices:
            raise Fallback("invalid choice")

    def _values(self, a: _Action, strings: list[str]) -> Any:
        if a.nargs not in (_PARSER, REMAINDER) and "--" in strings:
            strings = list(strings)
            strings.remove("--")
        if a.kind in ("help", "unsupported"):
            raise Fallback(a.kind)
        if a.nargs == 0:
            return a.const if a.kind != "version" else a.version
        if not strings and a.nargs == "?":
            value = a.default  # a positional's (options take one value here)
            if isinstance(value, str):
                value = self._convert(a, value)
                self._check(a, value)
            return value
        if not strings and a.nargs == "*" and not a.option_strings:
            value = a.default if a.default is not None else strings
            self._check(a, value)
            return value
        if len(strings) == 1 and a.nargs in (None, "?"):
            value = self._convert(a, strings[0])
            self._check(a, value)
            return value
        if a.nargs == REMAINDER:
            return [self._convert(a, v) for v in strings]
        if a.nargs == _PARSER:
            values = [self._convert(a, v) for v in strings]
            self._check(a, values[0])
            return values
        values = [self._convert(a, v) for v in strings]
        for v in values:
            self._check(a, v)
        return values

    def _act(self, a: _Action, ns: Namespace, value: Any) -> None:
        if a.kind == "version":
            import sys

            sys.stdout.write(str(value).replace("%(prog)s", self.prog).strip() + "\n")
            raise SystemExit(0)
        if a.kind == "append":
            items = list(getattr(ns, a.dest, None) or [])
            items.append(value)
            setattr(ns, a.dest, items)
        elif a.kind == "parser":
            name, rest = value[0], value[1:]
            if a.dest != SUPPRESS:
                setattr(ns, a.dest, name)
            sub = self._subparsers[0].parsers.get(name)
            if sub is None:
                raise Fallback("invalid choice")
            inner = Namespace()
            extras = sub._parse(rest, inner)
            vars(ns).update(vars(inner))
            if extras:
                raise Fallback("unrecognized arguments")
        else:
            setattr(ns, a.dest, value)


#: An option word that belongs to the subparser (seen by the parent after the name).
_NOT_MINE = _Action(["--"], {})
