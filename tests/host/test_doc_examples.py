"""host: the examples of README.md, the Quickstart and the guides that this machine's
cgroup2 mount can run (tests/doc_examples.py says which), adapted to the test's group."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cgtest import remove_tree
from conftest import Parent
from doc_examples import HOST, ROOT, pages_of, run_page, setup


@pytest.fixture
def base(cg_parent: Parent, cg_path: str) -> Iterator[tuple[str, dict[str, str]]]:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    sleeper, env = setup(fs)
    try:
        yield cg_path, env
    finally:
        sleeper.kill()
        sleeper.wait()
        remove_tree(fs)


@pytest.mark.parametrize("page", pages_of(HOST))
def test_examples_of_the_page_run(page: str, base: tuple[str, dict[str, str]]) -> None:
    group, env = base
    assert run_page(page, HOST, group, env) == []


def test_readme_first_command(cg_path: str, cg_parent: Parent) -> None:
    """README's first command, after its install step: the device filter lets /dev/zero be
    read and refuses /dev/urandom."""
    line = (ROOT / "README.md").read_text().split("```sh\n", 1)[1].split("\n", 1)[0]
    run = line.split(" && .venv/bin/cgroup2 ", 1)[1]
    assert run.startswith("run --live 0.5 --summary --device")
    os.mkdir(cg_parent.mountpoint + cg_path)
    try:
        r = subprocess.run(
            ["bash", "-c", f'"$PY" -m cgroup2 run --parent "$BASE" {run.removeprefix("run ")}'],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PY": sys.executable, "BASE": cg_path},
        )
    finally:
        remove_tree(cg_parent.mountpoint + cg_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("/dev/urandom: denied\n") and "-\n" in r.stdout, r.stdout
    assert "cgroup2 run: t=" in r.stderr and "wall time" in r.stderr, r.stderr
