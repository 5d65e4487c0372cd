"""Names of a package imported on first use (PEP 562), so that importing the package
does not import every module behind its public names.

This module is imported by ``import cgroup2``, so it imports nothing itself at run time
(``typing`` and ``collections.abc`` cost more than all of it; see
``benchmarks/startup.py``)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any


def lazy_names(
    package: str,
    table: Mapping[str, Sequence[str]],
    namespace: dict[str, Any],
    moved: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """The module ``__getattr__``, ``__dir__`` and ``__all__`` of ``package``.

    ``table`` maps a submodule to the public names it defines; a name, once imported, is
    kept in ``namespace`` (the package's globals), so later look-ups do not come here.
    ``moved`` maps a submodule to names that left the package's public face: each still
    resolves, with a :class:`DeprecationWarning` naming the submodule, and is neither
    kept nor listed by ``dir()``.
    """
    where = {name: module for module, names in table.items() for name in names}
    old = {name: module for module, names in (moved or {}).items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            module = old.get(name)
            if module is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            if sys._getframe(1).f_code.co_name != "_handle_fromlist":
                # (``from package import name`` asks twice: importlib's hasattr, then the
                # import itself; the warning is given once, for the import)
                _deprecated(package, module, name)
        full = f"{package}.{module}"
        __import__(full)
        value = getattr(sys.modules[full], name)
        if name in where:
            namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__, sorted(where)


def _deprecated(package: str, module: str, name: str) -> None:
    """Warn, at the caller's line, that ``package.name`` is imported from
    ``package.module`` now."""
    import warnings

    warnings.warn(
        f"{package}.{name} is deprecated and leaves {package}'s top level in the next "
        f"release: use `from {package}.{module} import {name}`",
        DeprecationWarning,
        stacklevel=3,
    )
