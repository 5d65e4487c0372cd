"""unit: the user's documentation speaks to users: no project-internal references (issue
numbers, module paths of private modules, "the anchor"), and its code examples import
only what they use."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from cgroup2.cli._reference import manpage

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if p.name != "changelog.md"]  # the changelog quotes history
INTERNAL = re.compile(r"\bissue \d+|\banchor's\b")
#: the man page is for users of the command: no module of its implementation either
MAN_INTERNAL = re.compile(r"\bissue \d+|\banchor's\b|cgroup2\.cli\._\w+")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_have_no_internal_words(page: pathlib.Path) -> None:
    found = INTERNAL.findall(page.read_text())
    assert not found, found


def test_man_page_has_no_internal_words() -> None:
    found = MAN_INTERNAL.findall(manpage())
    assert not found, found


def python_blocks(page: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_import_only_what_they_use(page: pathlib.Path) -> None:
    for block in python_blocks(page):
        tree = ast.parse(block)
        imported = {
            (a.asname or a.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom | ast.Import)
            for a in node.names
        }
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        used |= {n.value.id for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        assert imported <= used, (page.name, sorted(imported - used))
