"""Running Python code as an unprivileged user inside a delegated group (host, vm tiers).

The child is forked by root, writes its own pid to the ``cgroup.procs`` it is given
(still root), drops to the user (``setgroups``, ``setgid``, ``setuid``) and execs
Debian's ``/usr/bin/python3`` (the default interpreter may live under /root, which other
users cannot read) with the project's ``src`` and the virtual environment's
site-packages on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PY = "/usr/bin/python3"
NOBODY = 65534


def site_packages() -> str:
    """The site-packages of the interpreter running the tests (pure-Python rich, jeepney)."""
    for p in sys.path:
        if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "rich")):
            return p
    return ""


def unprivileged_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": "/",
        "LANG": "C.UTF-8",
        "PYTHONPATH": f"{SRC}:{site_packages()}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "200",
    }
    env.update(extra or {})
    return env


def why_not_usable() -> str | None:
    """Why a child cannot run as an unprivileged user here, or None."""
    if os.geteuid() != 0:
        return "not root: cannot start a process as another user"
    if not os.access(PY, os.X_OK):
        return f"{PY} is missing (Debian's python3 runs the unprivileged side)"
    for p in (ROOT, SRC):
        if not os.stat(p).st_mode & 0o005:
            return f"{p} is not readable by other users"
    return None


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def json(self) -> object:
        assert self.rc == 0, f"exit {self.rc}\nstdout: {self.out}\nstderr: {self.err}"
        return json.loads(self.out.strip().splitlines()[-1])


def run_as(
    uid: int,
    code: str,
    *args: str,
    procs: str | None,
    gid: int | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Result:
    """Run ``python3 -c code args...`` as ``uid``, placed first (by root) in the group
    whose ``cgroup.procs`` file path is ``procs``."""
    g = gid if gid is not None else uid

    def drop() -> None:
        if procs is not None:
            with open(procs, "w") as f:
                f.write("0")
        os.setgroups([])
        os.setgid(g)
        os.setuid(uid)

    p = subprocess.run(
        [PY, "-c", code, *args],
        preexec_fn=drop,
        env=unprivileged_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )
    return Result(p.returncode, p.stdout, p.stderr)


@contextlib.contextmanager
def spare_user(name: str = "cg2deleg") -> Iterator[int]:
    """A user made with useradd for the test and removed after; its uid is yielded.
    Where useradd is missing or fails (a read-only /etc), nobody (65534), said on stdout."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        subprocess.run(["userdel", name], check=False, capture_output=True)
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=False,
        capture_output=True,
        text=True,
    ) if os.path.exists("/usr/sbin/useradd") else None
    if made is None or made.returncode != 0:
        why = "missing" if made is None else f"exit {made.returncode}: {made.stderr.strip()}"
        print(f"useradd {name}: {why}; using nobody ({NOBODY})")
        yield NOBODY
        return
    try:
        yield pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
