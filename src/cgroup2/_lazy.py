"""Names of a package imported on first use (PEP 562), so that importing the package
does not import every module behind its public names.

This module is imported by ``import cgroup2``, so it imports nothing itself at run time
(``typing`` and ``collections.abc`` cost more than all of it; see
``benchmarks/startup.py``)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_names(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``: ``table`` maps a public
    name to the submodule that defines it; a name, once imported, is kept in
    ``namespace`` (the package's globals), so later look-ups do not come here."""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = f"{package}.{module}"
        __import__(full)
        value = getattr(sys.modules[full], name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
