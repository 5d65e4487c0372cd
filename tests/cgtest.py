"""Helpers shared by the tiers that use a real cgroup2 mount.

The clean-up here does not use the library under test: it must work when the library is
broken. It only ever touches the run's own parent group and what is below it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

# A run's parents are named cgroup2-test-[<CGROUP2_TEST_RUN>-]<pid>-<random>: scripts/test-all
# sets CGROUP2_TEST_RUN, so that its check for groups left behind counts its own only (other
# runs on a shared machine have parents of their own meanwhile).
_RUN = os.environ.get("CGROUP2_TEST_RUN", "")
RUN_PREFIX = f"cgroup2-test-{_RUN}-" if _RUN.isalnum() else "cgroup2-test-"


def find_cgroup2_mount() -> str | None:
    """The cgroup2 mount point from /proc/self/mountinfo (prefer /sys/fs/cgroup)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            if tail.split(" ", 1)[0] == "cgroup2":
                found.append(head.split(" ")[4])
    for p in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if p in found:
            return p
    return found[0] if found else None


def writable_mount() -> tuple[str | None, str]:
    """(mount, "") when a group can be made there, else (None, why not)."""
    mnt = find_cgroup2_mount()
    if mnt is None:
        return None, "no cgroup2 file system is mounted (see /proc/self/mountinfo)"
    if os.geteuid() != 0:
        return None, f"not root: cannot create groups under {mnt}"
    if not os.access(mnt, os.W_OK):
        return None, f"{mnt} is not writable"
    return mnt, ""


def _kill_group(path: str) -> None:
    kill = os.path.join(path, "cgroup.kill")
    with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.freeze"), "w") as f:
        f.write("0")
    if os.path.exists(kill):
        with contextlib.suppress(OSError), open(kill, "w") as f:
            f.write("1")
    else:
        with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs")) as f:
            for pid in f.read().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def _populated(path: str) -> bool:
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            return "populated 1" in f.read()
    except FileNotFoundError:
        return False


def _dirs_below(path: str) -> list[str]:
    """Every directory below ``path``, parents before children, without recursion (a
    tree of any depth), never into a mount point (a test may mount onto its groups)."""
    out: list[str] = []
    todo = [path]
    top_dev = os.stat(path).st_dev
    while todo:
        cur = todo.pop()
        try:
            with os.scandir(cur) as it:
                names = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for d in names:
            if os.path.ismount(d) or os.stat(d).st_dev != top_dev:
                continue
            out.append(d)
            todo.append(d)
    return out


def remove_tree(path: str, timeout: float = 10.0) -> None:
    """Kill every process below ``path`` and remove the groups, deepest first."""
    if not os.path.isdir(path):
        return
    below = _dirs_below(path)
    below.sort(key=lambda d: d.count("/"), reverse=True)
    for d in [*below, path]:
        _kill_group(d)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                if _populated(d):
                    _kill_group(d)
                time.sleep(0.01)


def subgroups(path: str) -> list[str]:
    """Every group below ``path``, as paths relative to it."""
    if not os.path.isdir(path):
        return []
    return sorted(os.path.relpath(d, path) for d in _dirs_below(path))
