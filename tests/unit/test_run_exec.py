"""unit: cgroup2 run finds the command as os.execvp does (cli/_run.exec_candidates and
exec_first), with the PATH read in the parent: what runs, and the error when nothing can."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cgroup2.cli._run import exec_candidates, exec_first


def _outcome(monkeypatch: pytest.MonkeyPatch, path: str | None, how: str, file: str) -> int:
    """In a child: exec ``file`` (``true`` prints nothing and exits 0; a script exits 7)
    by ``how``; the exit status, or 100 + errno when the exec failed."""
    if path is None:
        monkeypatch.delenv("PATH", raising=False)
    else:
        monkeypatch.setenv("PATH", path)
    candidates = exec_candidates(file)  # in the parent, as run does
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if how == "execvp":
                os.execvp(file, [file])
            else:
                exec_first(candidates, [file])
        except OSError as e:
            os._exit(100 + (e.errno or 0))
        os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _script(d: Path, name: str, mode: int) -> None:
    p = d / name
    p.write_text("#!/bin/sh\nexit 7\n")
    p.chmod(mode)


@pytest.mark.parametrize("file", ["true", "seven", "noexec", "nosuch", "sub"])
@pytest.mark.parametrize("order", ["a:b", "b:a", "a:missing:b", ":a", "a::b"])
def test_same_outcome_as_execvp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, file: str, order: str
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _script(a, "noexec", 0o644)  # found, not executable: EACCES, the search goes on
    _script(b, "seven", 0o755)
    _script(b, "noexec", 0o755)
    (a / "sub").mkdir()  # a directory of the command's name: EACCES
    os.symlink("/bin/true", b / "true")
    path = ":".join(str(tmp_path / x) if x else "" for x in order.split(":"))
    monkeypatch.chdir(tmp_path)  # an empty PATH element is the working directory
    want = _outcome(monkeypatch, path, "execvp", file)
    assert _outcome(monkeypatch, path, "first", file) == want


def test_a_path_with_a_slash_is_run_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _script(tmp_path, "s", stat.S_IRWXU)
    assert exec_candidates(str(tmp_path / "s")) == [str(tmp_path / "s")]
    assert _outcome(monkeypatch, "/nonexistent", "first", str(tmp_path / "s")) == 7
    assert _outcome(monkeypatch, "/nonexistent", "first", str(tmp_path / "x")) == 100 + 2


def test_no_path_is_the_default_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH", raising=False)
    assert exec_candidates("true") == [os.path.join(d, "true") for d in os.defpath.split(":")]
    want = _outcome(monkeypatch, None, "execvp", "true")
    assert _outcome(monkeypatch, None, "first", "true") == want
