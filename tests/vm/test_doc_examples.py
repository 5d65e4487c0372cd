"""vm: the examples of README.md, the Quickstart and the guides that need the controllers
the host lacks (tests/doc_examples.py says which), adapted to the test's group."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cgtest import remove_tree
from conftest import Parent
from doc_examples import VM, pages_of, run_page, setup


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


@pytest.mark.parametrize("page", pages_of(VM))
def test_examples_of_the_page_run(page: str, base: tuple[str, dict[str, str]]) -> None:
    group, env = base
    assert run_page(page, VM, group, env) == []
