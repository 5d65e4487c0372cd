"""host: the modules ``cgroup2 get`` and ``cgroup2 run -- true`` load when they do their
work on a real group (issue 21).

tests/unit/test_startup.py pins what the command's start loads (its modules' imports);
these runs go on to the work itself: the group is read, made, entered by the command and
removed, through code that imports some modules where it needs them. None of that may
load enum (signal makes enums: cgroup2._sig), contextlib, functools, collections, or the
statistics, resource and argument parsing modules, each of which costs a part of the
start-up budget (benchmarks/startup.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import Parent
from import_probe import among, loaded_modules

#: Never loaded by ``get`` or ``run -- true`` on a real group.
NOT_LOADED = (
    "enum",
    "signal",
    "contextlib",
    "functools",
    "collections",
    "types",
    "typing",
    "dataclasses",
    "re",
    "argparse",
    "json",
    "rich",
    "cgroup2.stats",
    "cgroup2.resources",
    "cgroup2.controllers",
    "cgroup2._statmask",
    "cgroup2._enums",
    "cgroup2.cli._completion",
    "math",
)


def _command_modules(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the command as bin/cgroup2 does (``cli.script``); the modules loaded at its
    exit (its atexit functions run before the fast exit)."""
    return loaded_modules("from cgroup2.cli import script\nscript()\n", *argv)


def _loaded(mods: set[str]) -> list[str]:
    return among(mods, NOT_LOADED)


def test_get_on_a_group_loads_no_enum(cg_parent: Parent, cg_path: str) -> None:
    os.mkdir(cg_parent.mountpoint + cg_path)
    try:
        r, mods = _command_modules("get", cg_path, "cgroup.max.depth", "cgroup.type")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "cgroup.max.depth: max\ncgroup.type: domain\n"
        assert "cgroup2.manager" in mods
        assert _loaded(mods) == []
    finally:
        os.rmdir(cg_parent.mountpoint + cg_path)


@pytest.mark.parametrize(
    "cmd",
    [
        ["true"],
        # a process left in the group: run kills it (freeze, kill, wait) before removing
        ["sh", "-c", "sleep 60 & exit 3"],
    ],
)
def test_run_loads_no_enum(cg_parent: Parent, cmd: list[str]) -> None:
    name = f"startup-run-{os.getpid()}-{len(cmd)}"
    r, mods = _command_modules("run", "--parent", cg_parent.group, "--name", name, "--", *cmd)
    assert r.returncode == (0 if cmd == ["true"] else 3), r.stderr
    assert not os.path.exists(f"{cg_parent.fs_path}/{name}")  # made, and removed again
    assert "cgroup2.cli._run" in mods and "cgroup2.manager" in mods
    assert _loaded(mods) == []


def test_startup_benchmark_has_a_row_for_every_command_a_shell_loop_runs() -> None:
    # one round: the rows are there and each command succeeded on a real group (the
    # benchmark stops with status 1 when one fails); the figures are not asserted
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(
        [sys.executable, os.path.join(root, "benchmarks", "startup.py"), "--rounds", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("  cgroup2 ")]
    for cmd in ("get GROUP FILE", "set -p FILE=VALUE GROUP", "exec GROUP -- true", "ls GROUP",
                "status GROUP", "stat --json GROUP", "run -- true"):
        assert any(row.startswith(f"cgroup2 {cmd}") for row in rows), (cmd, r.stdout)
