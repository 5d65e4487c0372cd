"""unit: cgroup2.Popen starts its child without preexec_fn (the path a threaded program
can use: no Python code between fork and exec) and places it before the program runs.

An ordinary directory stands in for the group (its ``cgroup.procs`` is a plain file that
records the pid written); the host tier shows the same on a real group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cgroup2
from cgroup2 import Manager
from cgroup2.popen import SHELL, TRAMPOLINE, _argv


def _group(tmp_path: Path) -> Manager:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "cgroup.procs").write_text("")
    (tmp_path / "g" / "cgroup.controllers").write_text("\n")  # read with the usage
    (tmp_path / "g" / "cpu.stat").write_text("usage_usec 5\nuser_usec 3\nsystem_usec 2\n")
    return Manager(str(tmp_path), "/g")


def test_the_child_is_started_without_preexec_fn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    real = subprocess._fork_exec  # type: ignore[attr-defined]

    def spy(*a: Any) -> Any:
        calls.append(a)
        return real(*a)

    monkeypatch.setattr(subprocess, "_fork_exec", spy)
    m = _group(tmp_path)
    marker = tmp_path / "ran"
    # the program reads the group's cgroup.procs as its first act: the pid is there already
    cmd = ["sh", "-c", f'cat "$1" > {marker}', "sh", str(tmp_path / "g" / "cgroup.procs")]
    with cgroup2.Popen(cmd, group=m) as p:
        assert p.wait() == 0
    assert len(calls) == 1
    argv = [os.fsdecode(a) for a in calls[0][0]]
    assert argv[:3] == [SHELL, "-c", TRAMPOLINE]
    assert argv[3].startswith("cgroup2-popen-")  # $0: the token that finds an orphan
    # fork_exec(args, executable_list, close_fds, pass_fds, cwd, env, p2cread, ...,
    # errpipe_write, restore_signals, call_setsid, pgid, gid, groups, uid, umask,
    # preexec_fn, ...): every callable argument is None (preexec_fn is the only one)
    assert not [a for a in calls[0] if callable(a)], "a Python callable reached fork_exec"
    assert marker.read_text() == str(p.pid)
    assert p.args == cmd
    assert (tmp_path / "g").is_dir()  # an existing group is not removed


def test_a_preexec_fn_would_reach_fork_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spy above can see a preexec_fn: subprocess.Popen with one passes a callable."""
    calls: list[tuple[Any, ...]] = []
    real = subprocess._fork_exec  # type: ignore[attr-defined]

    def spy(*a: Any) -> Any:
        calls.append(a)
        return real(*a)

    monkeypatch.setattr(subprocess, "_fork_exec", spy)
    subprocess.run(["true"], preexec_fn=lambda: None, check=True)
    assert [a for a in calls[0] if callable(a)]


def test_popen_is_a_subprocess_popen(tmp_path: Path) -> None:
    m = _group(tmp_path)
    with cgroup2.Popen("echo hi; exit 3", group=m, shell=True, stdout=subprocess.PIPE,
                       text=True) as p:
        assert isinstance(p, subprocess.Popen)
        out, _ = p.communicate()
    assert (out, p.returncode, p.args) == ("hi\n", 3, "echo hi; exit 3")
    assert p.manager is m


def test_argv_as_subprocess_builds_it() -> None:
    assert _argv("ls -l", True, None) == ["/bin/sh", "-c", "ls -l"]
    assert _argv("ls -l", True, "/bin/bash") == ["/bin/bash", "-c", "ls -l"]
    assert _argv(["ls", "-l"], False, None) == ["ls", "-l"]
    assert _argv(["ls", "-l"], False, "/bin/ls") == ["/bin/ls", "-l"]
    assert _argv("ls", False, None) == ["ls"]
    with pytest.raises(IndexError):
        _argv([], False, None)


def test_a_missing_program_raises_as_subprocess_does_before_anything_starts(
    tmp_path: Path,
) -> None:
    m = _group(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        cgroup2.Popen(["no-such-program-xyz"], group=m)
    with pytest.raises(FileNotFoundError) as ref:
        subprocess.Popen(["no-such-program-xyz"])
    assert (e.value.errno, e.value.filename) == (ref.value.errno, ref.value.filename)
    (tmp_path / "noexec").write_text("")
    with pytest.raises(PermissionError):
        cgroup2.Popen([str(tmp_path / "noexec")], group=m)
    with pytest.raises(FileNotFoundError):
        cgroup2.Popen(["./x"], group=m, cwd=str(tmp_path))
    assert (tmp_path / "g" / "cgroup.procs").read_text() == ""  # nothing was placed


def test_a_program_on_the_given_env_path_is_found(tmp_path: Path) -> None:
    m = _group(tmp_path)
    prog = tmp_path / "bin" / "myprog"
    prog.parent.mkdir()
    prog.write_text("#!/bin/sh\necho found\n")
    prog.chmod(0o755)
    env = {"PATH": f"{prog.parent}:/usr/bin:/bin"}
    with cgroup2.Popen(["myprog"], group=m, env=env, stdout=subprocess.PIPE) as p:
        assert p.communicate()[0] == b"found\n"


def test_group_with_resources_or_parent_is_refused(tmp_path: Path) -> None:
    m = _group(tmp_path)
    with pytest.raises(cgroup2.CgroupError, match="existing group"):
        cgroup2.Popen(["true"], cgroup2.Resources(), group=m)
    with pytest.raises(cgroup2.CgroupError, match="existing group"):
        cgroup2.Popen(["true"], group=m, parent="/x")


def test_import_cgroup2_does_not_import_subprocess_machinery() -> None:
    code = "import sys, cgroup2; print('cgroup2.popen' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
    code = "import cgroup2; print(cgroup2.Popen.__module__, cgroup2.run.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["cgroup2.popen", "cgroup2.popen"]
