"""Drive the command's shell completion as a shell does: bash sources the script that
``cgroup2 completion bash`` prints, sets ``COMP_WORDS``/``COMP_CWORD`` and calls the
completion function that ``complete -p cgroup2`` names; ``COMPREPLY`` is the answer.

The script runs ``cgroup2`` from ``PATH``; here that is a stand-in running
``python -m cgroup2`` with this interpreter, so the tests need no installed command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_DRIVER = r"""
source <(cgroup2 completion bash) || exit 3
spec=$(complete -p cgroup2) || exit 4
fn=${spec#*-F }; fn=${fn%% *}
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" cgroup2 "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def command_shim(directory: Path) -> Path:
    """A ``cgroup2`` program in ``directory`` that runs this interpreter's package."""
    shim = directory / "cgroup2"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m cgroup2 "$@"\n')
    shim.chmod(0o755)
    return directory


def bash_complete(words: list[str], shim_dir: Path) -> list[str]:
    """The completions bash offers for the command line ``words`` (``words[0]`` is
    ``cgroup2``; the last word is the one under the cursor)."""
    env = dict(os.environ, PATH=f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    r = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", _DRIVER, "bash", *words],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert r.returncode == 0, (r.returncode, r.stderr)
    return [line for line in r.stdout.splitlines() if line]
