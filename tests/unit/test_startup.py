"""unit: what the start of ``import cgroup2`` and of the ``cgroup2`` command loads.

Start-up cost is mostly imports (benchmarks/startup.py measures it; issue 21). These
tests pin the import graph, so that a module-level import of a heavy module in the wrong
place fails here instead of slowing every ``cgroup2 get`` in a shell loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from import_probe import among, loaded_modules

#: Never loaded by ``import cgroup2`` or by the command's start (``--version``, ``get``).
HEAVY = (
    "rich",
    "asyncio",
    "ctypes",
    "json",
    "jeepney",
    "typing",
    "dataclasses",
    "inspect",
    "cgroup2.events",
    "cgroup2.oci",
    "cgroup2.systemd",
    "cgroup2.devices",
    "cgroup2.manager",
    "cgroup2.stats",
    "cgroup2.resources",
    "cgroup2.controllers",
    # argparse (with re and gettext) only where cgroup2.cli._lite hands a command line over
    "argparse",
    "re",
    "gettext",
    # enum (Mode, State, ControllerToggle and StatMask are made on first use; signal makes
    # enums: cgroup2._sig), and the modules it imports; contextlib, select
    "enum",
    "signal",
    "functools",
    "collections",
    "types",
    "operator",
    "contextlib",
    "select",
    "math",
    # the completion subcommand's module: only for `cgroup2 completion`
    "cgroup2.cli._completion",
)


def _loaded(code: str, *argv: str) -> set[str]:
    """The modules loaded when ``code`` has run (``sys.argv[1:]`` = ``argv``)."""
    return loaded_modules(code, *argv)[1]


def _heavy(mods: set[str]) -> list[str]:
    return among(mods, HEAVY)


def test_import_cgroup2_loads_no_heavy_module() -> None:
    mods = _loaded("import cgroup2")
    assert _heavy(mods) == []
    assert {m for m in mods if m.startswith("cgroup2.")} == {"cgroup2._lazy", "cgroup2._version"}


def test_version_loads_no_heavy_module() -> None:
    mods = _loaded("from cgroup2.cli import main\nsys.exit(main())", "--version")
    assert "cgroup2.cli" in mods
    assert _heavy(mods) == []


def test_get_loads_no_rich() -> None:
    # a group that is not there: the command still parses, finds the mount and fails to
    # load the group, the path every `get` takes; where no cgroup2 is mounted it fails
    # sooner, which loads less
    mods = _loaded(
        "from cgroup2.cli import main\nsys.exit(main())",
        "get", "/cgroup2-startup-test-no-such-group", "cgroup.max.depth",
    )
    assert "cgroup2.cli._groups" in mods or "cgroup2.paths" in mods
    # get loads the manager (Manager.load) but neither rich nor the statistics types
    allowed = {"cgroup2.manager"}
    assert [m for m in _heavy(mods) if m not in allowed] == []


def test_from_cgroup2_import_manager_loads_no_resource_type() -> None:
    mods = _loaded("from cgroup2 import Manager")
    assert "cgroup2.manager" in mods
    assert [m for m in _heavy(mods) if m != "cgroup2.manager"] == []


def test_run_without_limits_loads_no_argparse() -> None:
    # the group's parent is not there: run parses, finds the mount, and fails before
    # making anything (the path of every run up to the mkdir)
    mods = _loaded(
        "from cgroup2.cli import main\nsys.exit(main())",
        "run", "--parent", "/cgroup2-startup-test-no-such-group", "--", "true",
    )
    assert "cgroup2.cli._run" in mods
    assert not {"argparse", "re", "gettext", "rich"} & mods
    # run loads the manager (Manager.create), without enum, signal, contextlib
    assert [m for m in _heavy(mods) if m != "cgroup2.manager"] == []


def test_completion_loads_its_module() -> None:
    mods = _loaded("from cgroup2.cli import main\nsys.exit(main())", "completion", "bash")
    assert "cgroup2.cli._completion" in mods


def test_help_and_errors_go_to_argparse() -> None:
    mods = _loaded("from cgroup2.cli import main\nsys.exit(main())", "get", "--help")
    assert "argparse" in mods


@pytest.mark.parametrize("name", ["Resources", "Metrics", "StatMask", "EventStream"])
def test_lazy_names_load_their_modules(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         f"import cgroup2, json, sys; v = getattr(cgroup2, {name!r}); "
         "print(json.dumps([v.__module__, v.__name__]))"],
        capture_output=True, text=True, check=True,
    ).stdout
    module, qualname = json.loads(out)
    assert qualname == name and module.startswith("cgroup2.")


def test_moved_types_keep_their_module_names() -> None:
    from cgroup2 import ControllerToggle, Mode, State, StatMask, manager, paths, stats

    assert stats.StatMask is StatMask and StatMask.__module__ == "cgroup2.stats"
    assert paths.CgroupMount.__module__ == "cgroup2.paths"
    assert "CgroupMount" in dir(paths)
    assert paths.Mode is Mode and Mode.__module__ == "cgroup2.paths" and "Mode" in dir(paths)
    for t in (State, ControllerToggle):
        assert getattr(manager, t.__name__) is t and t.__module__ == "cgroup2.manager"
        assert t.__name__ in dir(manager)
    with pytest.raises(AttributeError):
        manager.NoSuchName  # noqa: B018
    with pytest.raises(AttributeError):
        paths.NoSuchName  # noqa: B018


def test_manager_stat_is_made_with_its_default_on_first_use() -> None:
    # Manager.stat's default, StatMask.ALL, is an enum member: the method is made on its
    # first look-up (cgroup2.manager._StatMethod), in a new interpreter here so that the
    # first look-up is this one
    code = (
        "import sys\n"
        "from cgroup2.manager import Manager\n"
        "assert 'enum' not in sys.modules, 'enum'\n"
        "first = type(vars(Manager)['stat']).__name__\n"
        "import inspect, json\n"
        "sig = str(inspect.signature(Manager.stat))\n"
        "from cgroup2 import StatMask\n"
        "print(json.dumps([first, type(vars(Manager)['stat']).__name__, sig,\n"
        "    Manager.stat.__defaults__ == (StatMask.ALL,), Manager.stat.__qualname__,\n"
        "    Manager.stat.__doc__, Manager.stat is vars(Manager)['stat']]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        "_StatMethod", "function",
        "(self, mask: 'StatMask' = <StatMask.ALL: 8191>) -> 'Metrics'",
        True, "Manager.stat", "The group's statistics (see :mod:`cgroup2.stats`).", True,
    ]


def test_manager_stat_refuses_what_is_not_a_mask_and_reads_the_default() -> None:
    from cgroup2 import CgroupError, Manager

    m = Manager("/sys/fs/cgroup", "/cgroup2-startup-test-no-such-group")
    with pytest.raises(CgroupError, match="invalid stat mask 3"):
        m.stat(3)  # type: ignore[arg-type]
    # the default is read: the group is not there, so the read fails (not the mask)
    with pytest.raises(CgroupError) as e:
        m.stat()
    assert "stat mask" not in str(e.value)


SUBCOMMANDS = ("run", "create", "set", "get", "attach", "exec", "ls", "status", "stat", "top",
               "tree", "events", "freeze", "thaw", "kill", "rm", "devices", "completion")


def test_parser_of_one_subcommand_is_the_whole_parsers_part() -> None:
    from cgroup2.cli import build_parser

    full = build_parser()
    assert build_parser(only="").format_help() == full.format_help()

    def choices(p: object) -> dict[str, object]:
        return p._subparsers._group_actions[0].choices  # type: ignore[attr-defined,no-any-return]

    for cmd in SUBCOMMANDS:
        one = choices(build_parser(only=cmd))[cmd]
        assert one.format_help() == choices(full)[cmd].format_help(), cmd  # type: ignore[attr-defined]
    dev = choices(choices(build_parser(only="devices"))["devices"])["check"]
    assert dev.format_help() == choices(choices(full)["devices"])["check"].format_help()  # type: ignore[attr-defined]


@pytest.mark.parametrize("words", [
    ["get", "/a", "memory.max", "--json"],
    ["--mountpoint", "/sys/fs/cgroup", "run", "--memory-max", "1M", "-p", "pids.max=5", "--",
     "true", "-x"],
    ["--mountpoint=/m", "set", "/g", "--cpu-max", "50%", "--device", "allow c 1:3 rw"],
    ["top", "/", "-n", "2", "--json"],
    ["kill", "/g", "-s", "TERM"],
    ["devices", "check", "allow a", "c 1:3 r"],
])
def test_lazy_parser_parses_as_the_whole_one(words: list[str]) -> None:
    from cgroup2.cli import _command_word, build_parser

    only = _command_word(words)
    assert only == next(w for w in words if w in SUBCOMMANDS)
    assert vars(build_parser(only=only).parse_args(words)) == vars(build_parser().parse_args(words))


@pytest.mark.parametrize(("words", "only"), [
    (["--version"], ""), (["-h"], ""), (["--help", "get"], ""), ([], None),
    (["--mount", "/m", "get", "/g"], None), (["--", "get"], None), (["nosuch", "x"], "nosuch"),
])
def test_command_word(words: list[str], only: str | None) -> None:
    from cgroup2.cli import _command_word

    assert _command_word(words) == only


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-5", "40", "132"])
def test_formatter_width_is_argparses(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    import argparse

    from cgroup2.cli import _parser_class

    _Formatter = _parser_class()(prog="cgroup2").formatter_class

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("LINES", raising=False)
    ours, theirs = _Formatter("cgroup2"), argparse.HelpFormatter("cgroup2")
    assert ours._width == theirs._width  # type: ignore[attr-defined]
    assert ours._max_help_position == theirs._max_help_position  # type: ignore[attr-defined]


def test_version_and_get_load_no_shutil() -> None:
    # shutil (bz2, lzma, zlib, fnmatch) only for argparse's terminal width: see _columns
    assert "shutil" not in _loaded("from cgroup2.cli import main\nsys.exit(main())", "--version")
    assert "shutil" not in _loaded(
        "from cgroup2.cli import main\nsys.exit(main())",
        "get", "/cgroup2-startup-test-no-such-group", "cgroup.max.depth",
    )


def test_the_installed_script_loads_no_re() -> None:
    # bin/cgroup2 is what pip installs as the command (setuptools script-files): unlike
    # the wrapper written for an entry point, it imports neither re nor enum
    script = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "cgroup2")
    with open(script) as f:
        code = f.read().replace('if __name__ == "__main__":', "if True:")
    mods = _loaded(code, "--version")
    assert "cgroup2.cli" in mods
    assert not {"re", "enum", "argparse"} & mods


@pytest.mark.parametrize(
    ("argv", "status", "out"),
    [
        (["--version"], 0, "cgroup2 "),
        (["nosuch"], 2, ""),
        (["get"], 2, ""),
        (["--help"], 0, "usage: cgroup2"),
    ],
)
def test_the_command_exits_with_mains_status(argv: list[str], status: int, out: str) -> None:
    r = subprocess.run([sys.executable, "-m", "cgroup2", *argv], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == status, r.stderr
    assert r.stdout.startswith(out)
    assert "Traceback" not in r.stderr


def test_a_failed_flush_of_the_output_is_status_120() -> None:
    # as Python's own exit: the output (buffered for a pipe) could not be written, the
    # reader having gone
    r_fd, w_fd = os.pipe()
    os.close(r_fd)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        r = subprocess.run([sys.executable, "-m", "cgroup2", "--version"], stdout=w_fd,
                           stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    finally:
        os.close(w_fd)
    assert r.returncode == 120, r.stderr
    assert "Traceback" not in r.stderr


def test_atexit_functions_run_before_the_fast_exit() -> None:
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('atexit ran', flush=True))\n"
            "sys.argv[1:] = ['--version']\n"
            "from cgroup2.cli import script\n"
            "script()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.split("\n")[:2] == [r.stdout.split("\n")[0], "atexit ran"]
    assert r.stdout.startswith("cgroup2 ")
