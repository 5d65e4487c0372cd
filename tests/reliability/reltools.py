"""Helpers of the reliability suite: the leak check, group snapshots, child processes.

Like ``cgtest``, nothing here uses the library under test to observe the kernel: the leak
check and the snapshots read ``/proc`` and cgroupfs directly, so a broken library cannot
hide its own leaks. Test modules take the autouse fixture with
``from reltools import no_leaks  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cgtest import subgroups

# --- leaks ----------------------------------------------------------------------------

_NR_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
_BPF_PROG_QUERY = 16
_BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type


def attached_device_programs(fs_path: str) -> int:
    """How many ``BPF_PROG_TYPE_CGROUP_DEVICE`` programs are attached to the group at
    ``fs_path`` (``bpf(BPF_PROG_QUERY)``; the group's own, not the effective ones).

    Uses ``cgroup2.devices.bpf.query`` when the library has it, else the system call
    here. -1 when the kernel cannot tell (no bpf(2) on this machine).
    """
    try:
        from cgroup2.devices import bpf

        query = getattr(bpf, "query", None)
    except ImportError:
        query = None
    fd = os.open(fs_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if query is not None:
            return len(query(fd))
        if _NR_BPF is None:
            return -1
        attr = (ctypes.c_uint8 * 128)()
        ctypes.c_uint32.from_buffer(attr, 0).value = fd
        ctypes.c_uint32.from_buffer(attr, 4).value = _BPF_CGROUP_DEVICE
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(_NR_BPF, _BPF_PROG_QUERY, ctypes.byref(attr), ctypes.sizeof(attr))
        if rc != 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
                return -1
            raise OSError(err, os.strerror(err), fs_path)
        return int(ctypes.c_uint32.from_buffer(attr, 24).value)
    finally:
        os.close(fd)


def open_fds() -> dict[int, str]:
    """This process's open descriptors and what they point to."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def child_pids() -> set[int]:
    """The live children of every thread of this process."""
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/children") as f:
            out.update(int(x) for x in f.read().split())
    return out


def _tree_programs(fs_path: str) -> dict[str, int]:
    out = {}
    for rel in ["", *subgroups(fs_path)]:
        with contextlib.suppress(FileNotFoundError):
            n = attached_device_programs(os.path.join(fs_path, rel) if rel else fs_path)
            if n > 0:
                out[rel or "."] = n
    return out


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves more fds, threads, child processes, groups under the run's
    parent, or device programs attached in the parent's tree, than it found."""
    parent = request.getfixturevalue("cg_parent") if "cg_parent" in request.fixturenames else None
    gc.collect()
    fds = open_fds()
    threads = {t.ident for t in threading.enumerate()}
    children = child_pids()
    groups = set(subgroups(parent.fs_path)) if parent is not None else set()
    progs = _tree_programs(parent.fs_path) if parent is not None else {}
    yield
    gc.collect()
    problems = []
    deadline = time.monotonic() + 2.0
    while True:
        new_fds = {k: v for k, v in open_fds().items() if k not in fds or fds[k] != v}
        new_threads = [
            t.name for t in threading.enumerate() if t.ident not in threads and t.is_alive()
        ]
        new_children = child_pids() - children
        if not (new_fds or new_threads or new_children) or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # a thread or child that is on its way out
    if new_fds:
        problems.append(f"file descriptors leaked: {new_fds}")
    if new_threads:
        problems.append(f"threads left running: {new_threads}")
    if new_children:
        problems.append(f"child processes left running: {sorted(new_children)}")
        for pid in new_children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if parent is not None:
        left = sorted(set(subgroups(parent.fs_path)) - groups)
        if left:
            problems.append(f"groups left under {parent.fs_path}: {left}")
        now = _tree_programs(parent.fs_path)
        grown = {k: v for k, v in now.items() if v > progs.get(k, 0)}
        if grown:
            problems.append(f"device programs left attached: {grown}")
    if problems:
        pytest.fail("; ".join(problems))


# --- snapshots ------------------------------------------------------------------------

#: Files whose content the kernel changes by itself (time, pressure, usage).
VOLATILE = ("pressure", ".stat", ".stat.local", ".current", ".peak")


def snapshot(fs_path: str) -> dict[str, bytes | str]:
    """Every readable file of the group at ``fs_path`` and of the groups below it
    (``name`` -> content), the subgroups (``name/`` -> ``"dir"``), and files that cannot
    be read (-> the errno name). Files that the kernel changes on its own are left out.
    ``{}`` when the group does not exist.
    """
    out: dict[str, bytes | str] = {}
    if not os.path.isdir(fs_path):
        return out
    for dirpath, dirnames, filenames in os.walk(fs_path):
        rel = os.path.relpath(dirpath, fs_path)
        prefix = "" if rel == "." else rel + "/"
        for d in dirnames:
            out[prefix + d + "/"] = "dir"
        for f in filenames:
            if f.endswith(VOLATILE):
                continue
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    out[prefix + f] = fh.read()
            except OSError as e:
                out[prefix + f] = errno.errorcode.get(e.errno or 0, "?")
    return out


def diff(before: dict[str, bytes | str], after: dict[str, bytes | str]) -> list[str]:
    """What changed between two snapshots, one line per file."""
    out = []
    for k in sorted(before.keys() | after.keys()):
        a, b = before.get(k), after.get(k)
        if a != b:
            out.append(f"{k}: {a!r} -> {b!r}")
    return out


# --- processes ------------------------------------------------------------------------

PY = sys.executable


def spawn_in(fs_path: str, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` already inside the group at ``fs_path`` (the child writes its own pid
    to ``cgroup.procs`` before exec), so it never runs outside the group."""
    procs = os.path.join(fs_path, "cgroup.procs")

    def join() -> None:
        with open(procs, "w") as f:
            f.write("0")

    return subprocess.Popen(argv, preexec_fn=join, stdin=subprocess.DEVNULL)


def sleeper_in(fs_path: str) -> subprocess.Popen[bytes]:
    return spawn_in(fs_path, ["sleep", "60"])


def stop(p: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``p`` (started by this test) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        p.kill()
    p.wait(timeout=10)


def read_procs(fs_path: str) -> list[int]:
    with open(os.path.join(fs_path, "cgroup.procs")) as f:
        return [int(x) for x in f.read().split()]


def create_concurrently(
    mnt: str, group: str, resources: Any, threads: int = 8, processes: int = 4
) -> tuple[list[Any], list[int]]:
    """``Manager.create(group, resources)`` at the same moment from ``threads`` threads of
    this process and ``processes`` forked children.

    Returns what each thread got (a Manager or the exception) and the children's exit
    codes (0: created; 1: failed, with the error on stderr).
    """
    from cgroup2 import Manager

    go_r, go_w = os.pipe()
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.read(go_r, 1)
                Manager.create(group, resources, mountpoint=mnt)
                code = 0
            except BaseException as e:
                os.write(2, f"create in child {os.getpid()}: {type(e).__name__}: {e}\n".encode())
            finally:
                os._exit(code)
        pids.append(pid)
    barrier = threading.Barrier(threads + 1)
    results: list[Any] = []

    def create() -> None:
        barrier.wait()
        try:
            results.append(Manager.create(group, resources, mountpoint=mnt))
        except BaseException as e:
            results.append(e)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for t in workers:
        t.start()
    os.close(go_r)
    os.write(go_w, b"x" * processes)
    barrier.wait()
    os.close(go_w)
    for t in workers:
        t.join()
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    return results, codes


def wait_for(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def made_group(cg_parent: Any, cg_path: str) -> Iterator[Any]:
    """A group ``<cg_path>/g`` made by the library for the test, its tree removed after."""
    from cgtest import remove_tree

    from cgroup2 import Manager

    m = Manager.create(cg_path + "/g", mountpoint=cg_parent.mountpoint)
    try:
        yield m
    finally:
        remove_tree(cg_parent.mountpoint + cg_path)
