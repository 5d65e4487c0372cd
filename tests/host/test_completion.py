"""host: group paths complete from this machine's cgroup2 mount, in bash as a user's shell
runs the completion (``cgroup2 completion bash``, ``COMP_WORDS``/``COMP_CWORD``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from shells import bash_complete, command_shim

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def groups(cg_parent, cg_path: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``cg_path`` with the subgroups ``alpha`` (holding ``x``), ``alps`` and ``beta``."""
    fs = cg_parent.mountpoint + cg_path
    made = [fs, f"{fs}/alpha", f"{fs}/alpha/x", f"{fs}/alps", f"{fs}/beta"]
    try:
        for d in made:
            os.mkdir(d)
        yield cg_path
    finally:
        for d in reversed(made):
            if os.path.isdir(d):
                os.rmdir(d)


def test_group_paths_complete_in_bash(cg_parent, groups: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shim = command_shim(tmp_path)
    assert bash_complete(["cgroup2", "stat", f"{groups}/al"], shim) == [
        f"{groups}/alpha/", f"{groups}/alps"
    ]
    assert bash_complete(["cgroup2", "tree", f"{groups}/b"], shim) == [f"{groups}/beta"]
    assert bash_complete(["cgroup2", "rm", f"{groups}/alpha/"], shim) == [f"{groups}/alpha/x"]
    # the run's parent group is listed from the mount root
    top = groups.rsplit("/", 1)[0]
    assert f"{top}/" in bash_complete(["cgroup2", "stat", top], shim)
    # an option taking a group, and the file system form of the path
    assert bash_complete(["cgroup2", "run", "--parent", f"{groups}/be"], shim) == [
        f"{groups}/beta"
    ]
    fs = cg_parent.mountpoint.rstrip("/") + groups
    assert bash_complete(["cgroup2", "stat", f"{fs}/alph"], shim) == [f"{fs}/alpha/"]


def test_group_files_complete_in_bash(groups: str, tmp_path: Path) -> None:
    """``get GROUP <TAB>`` offers the group's files (not the current directory's);
    ``set GROUP -p <TAB>`` its limit files as FILE=; ``events --pressure`` a trigger's
    start."""
    shim = command_shim(tmp_path)
    got = bash_complete(["cgroup2", "get", groups, "cgroup.ma"], shim)
    assert got == ["cgroup.max.depth", "cgroup.max.descendants"], got
    got = bash_complete(["cgroup2", "get", groups, "cgroup.procs", "cgroup.ma"], shim)
    assert got == ["cgroup.max.depth", "cgroup.max.descendants"], got
    got = bash_complete(["cgroup2", "set", groups, "-p", "cgroup.max.d"], shim)
    assert got == ["cgroup.max.depth=", "cgroup.max.descendants="], got
    assert bash_complete(["cgroup2", "events", "--pressure", "mem"], shim) == [
        "memory:some:", "memory:full:"
    ]
    # a group that is not there: nothing, never the files of the current directory
    assert bash_complete(["cgroup2", "get", f"{groups}/none", ""], shim) == []
