"""A griffe extension for the API reference: the docstrings' Sphinx roles as Markdown.

The library's docstrings name other objects the Sphinx way (:class:`Resources`,
:meth:`~cgroup2.Manager.stat`). Here a role naming a public name of ``cgroup2`` becomes a
link to its entry in the reference, and any other role plain code, so that no role is
shown as raw text.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import cgroup2

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")
_PUBLIC = set(cgroup2.__all__)


def _replace(m: re.Match[str]) -> str:
    tilde, target = m.groups()
    target = target.strip()
    shown = target.rsplit(".", 1)[-1] if tilde else target
    # cgroup2.resources.Resources and cgroup2.Resources are one entry: drop module names
    parts = target.removeprefix("cgroup2.").split(".")
    while len(parts) > 1 and parts[0] not in _PUBLIC and parts[0][:1].islower():
        parts.pop(0)
    if parts[0] in _PUBLIC and len(parts) <= 2:
        return f"[`{shown}`][cgroup2.{'.'.join(parts)}]"
    return f"`{shown}`"


def convert(text: str) -> str:
    """Sphinx roles in ``text`` as Markdown links or code."""
    return _ROLE.sub(_replace, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
