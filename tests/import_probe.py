"""The modules a piece of code loads in a fresh interpreter (tests/unit/test_startup.py,
tests/host/test_startup_imports.py: the import graph of the start-up budget, issue 21)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable


def loaded_modules(code: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``code`` in a new interpreter with ``sys.argv[1:]`` = ``argv``: its result and
    the modules loaded, taken at exit by an atexit function (so that a command's own exit,
    SystemExit or the fast exit of ``cli.script``, which runs atexit, is seen too)."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = os.path.join(tmp, "modules")
        probe = (
            "import atexit, sys\n"
            "def _dump():\n"
            f"    with open({listing!r}, 'w') as f:\n"
            "        f.write('\\n'.join(sorted(sys.modules)))\n"
            "atexit.register(_dump)\n"
            f"sys.argv[1:] = {list(argv)!r}\n" + code
        )
        r = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
        )
        assert os.path.exists(listing), r.stderr
        with open(listing) as f:
            return r, set(f.read().split("\n"))


def among(mods: set[str], names: Iterable[str]) -> list[str]:
    """The modules of ``mods`` that are one of ``names`` or inside one of them."""
    names = tuple(names)
    return sorted(m for m in mods if any(m == n or m.startswith(n + ".") for n in names))
