"""The Manager's freezer, kill and signal fallback on the real cgroup2 mount, pinned exactly.

``freeze``/``thaw`` return once ``cgroup.events`` says so, and undo a freeze that did not
complete; ``kill`` empties a nested tree through ``cgroup.kill`` and through the fallback
of kernels without it (freeze, SIGKILL each process, thaw; or, without a freezer, SIGKILL
until none is left), which the tests choose by the module's file names
(``manager.KILL``/``manager.FREEZE`` set to a name the group does not have).
``signal_subtree`` counts and signals exactly the processes still in the subtree, never
this process, and none at all when one of them may not be signalled.

Only the tests' own groups and processes are frozen, killed or signalled. A test that
needs the caller inside the group forks a child that joins it; the parent watches the
group's ``frozen`` state and thaws it, so that a broken refusal cannot leave it frozen.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import no_leaks, read_procs, sleeper_in, stop, wait_for  # noqa: F401

import cgroup2.manager as mgr
from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    FreezerNotSupportedError,
    KernelError,
    Manager,
    MountPointError,
)
from cgroup2._fs import Dir

NOBODY = 65534


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def events(path: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in read(path + "/cgroup.events").splitlines())


@pytest.fixture
def own(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """A group made for the test (without the library); ``own + "/g"`` and below are its
    groups, and ``own`` itself can be given as the mount point."""
    path = cg_parent.mountpoint + cg_path
    os.mkdir(path)
    try:
        yield path
    finally:
        write(path + "/cgroup.freeze", "0")
        remove_tree(path)


@pytest.fixture
def sleepers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``sleep`` processes inside given groups; each is killed and reaped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(path: str, uid: int | None = None) -> subprocess.Popen[bytes]:
        if uid is None:
            p = sleeper_in(path)
        else:
            def join_as() -> None:
                write(path + "/cgroup.procs", "0")
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

            p = subprocess.Popen(["sleep", "60"], preexec_fn=join_as, stdin=subprocess.DEVNULL)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            stop(p)


def tree(own: str, *groups: str) -> None:
    for g in groups:
        os.makedirs(own + g)


def in_group(path: str, fn: Callable[[], object]) -> tuple[str | None, int, bool]:
    """Run ``fn`` in a forked child that first joins the group at ``path``.

    Returns what it reported (``repr`` of the result, or ``Type: message`` of its
    exception; None when it died first), its exit status, and whether the group was
    frozen meanwhile: a frozen group is thawed at once, so the child always ends.

    (A test that uses it also calls the same functions itself: mutation testing runs a
    mutant only against the tests that reached it, which calls in a child do not record.)
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(r)
            write(path + "/cgroup.procs", "0")
            try:
                msg = repr(fn())
            except BaseException as e:
                msg = f"{type(e).__name__}: {e}"
            os.write(w, msg.encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    ev = os.open(path + "/cgroup.events", os.O_RDONLY)
    froze = ended = False
    chunks: list[bytes] = []
    try:
        poll = select.poll()
        poll.register(r, select.POLLIN)
        poll.register(ev, select.POLLPRI)
        deadline = time.monotonic() + 60  # an upper bound for a child that reports at once
        while time.monotonic() < deadline:
            if b"frozen 1" in os.pread(ev, 4096, 0):
                froze = True
                write(path + "/cgroup.freeze", "0")
            if any(fd == r for fd, _ in poll.poll(1000)):
                data = os.read(r, 65536)
                if not data:  # the child has exited
                    ended = True
                    break
                chunks.append(data)
    finally:
        os.close(ev)
        os.close(r)
        if not ended:
            write(path + "/cgroup.freeze", "0")
            os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    return (b"".join(chunks).decode() if chunks else None), os.waitstatus_to_exitcode(
        status), froze


# --- refusals before anything is written --------------------------------------------------


@pytest.mark.parametrize("op", ["freeze", "thaw", "kill"])
def test_a_bad_timeout_is_refused_first_even_for_the_root(own: str, op: str) -> None:
    tree(own, "/g")
    for m in (Manager(own, "/"), Manager(own, "/g")):
        for bad in (-1, float("inf"), float("nan"), "1", True, None):
            with pytest.raises(CgroupError) as e:
                getattr(m, op)(bad)
            assert str(e.value) == (
                f"cgroups: invalid {op} timeout {bad!r}: a number of seconds >= 0"
            )
    assert read(own + "/g/cgroup.freeze") == "0\n" and read(own + "/cgroup.freeze") == "0\n"


def test_the_root_group_of_the_mount_is_refused_by_every_operation(
    own: str, sleepers: Any
) -> None:
    tree(own, "/g")
    p = sleepers(own + "/g")
    root = Manager(own, "/")
    ops: dict[str, Callable[[], object]] = {
        "freeze": root.freeze,
        "thaw": root.thaw,
        "kill": root.kill,
        "delete": root.delete,
        "move the processes out of": lambda: root.move_to(Manager(own, "/g")),
    }
    for op, call in ops.items():
        with pytest.raises(MountPointError) as e:
            call()
        assert str(e.value) == (
            f"cgroups: refusing to {op} the root group {own} (it holds every process and "
            f"group of the mount)"
        )
        assert e.value.path == own
    assert p.poll() is None and read_procs(own + "/g") == [p.pid]
    assert read(own + "/cgroup.freeze") == "0\n" and os.path.isdir(own + "/g")


def test_kill_and_freeze_refuse_the_callers_group_unless_allow_self(
    cg_parent: Parent, cg_path: str, own: str
) -> None:
    mnt = cg_parent.mountpoint
    tree(own, "/g/c")
    g = Manager(mnt, cg_path + "/g")
    for where, op in ((own + "/g", "kill"), (own + "/g/c", "freeze")):
        report, status, froze = in_group(where, lambda op=op: getattr(g, op)())  # type: ignore[misc]
        assert report is not None and status == 0 and not froze
        inside = "in it" if where == own + "/g" else f"in {g.group}/c, below it"
        assert report.startswith(f"CgroupError: cgroups: refusing to {op} {g.group}: this ")
        assert report.endswith(
            f"runs {inside}, so it would {op} itself (allow_self=True to do it anyway)"
        )
    report, status, froze = in_group(own + "/g", lambda: g.kill(allow_self=True))
    assert (report, status) == (None, -signal.SIGKILL)  # cgroup.kill took the caller too
    report, status, froze = in_group(own + "/g", lambda: g.freeze(1.0, allow_self=True))
    assert froze and status == 0
    in_process(g)


def in_process(g: Manager) -> None:
    """freeze, thaw and kill of ``g`` by this process, which is not in it."""
    g.freeze(30)
    g.thaw(30)
    g.kill(30)
    assert events(g.path) == {"populated": "0", "frozen": "0"}


@contextlib.contextmanager
def bound(src: str, dst: str) -> Iterator[None]:
    """Bind-mount the test's group ``src`` onto its group ``dst``; unmounted at the end."""
    r = subprocess.run(["mount", "--bind", src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        yield
    finally:
        r = subprocess.run(["umount", dst], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", dst], check=True)


def test_a_mount_root_is_refused_by_what_it_is_without_the_group_path_check(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second check, on the directory opened: with the refusal of the group "/"
    switched off, the root of a (bind) mount is still refused by each operation."""
    tree(own, "/src", "/mnt", "/x")
    p = sleepers(own + "/src")
    with bound(own + "/src", own + "/mnt"):
        monkeypatch.setattr(Manager, "_refuse_root", lambda self, op: None)
        root = Manager(own + "/mnt", "/")
        ops: dict[str, Callable[[], object]] = {
            # (allow_self: the caller's group is looked up in the mount table, where this
            # bind mount may not be yet)
            "kill": lambda: root.kill(allow_self=True),
            "freeze": lambda: root.freeze(allow_self=True),
            "thaw": root.thaw,
            "move the processes out of": lambda: root.move_to(Manager(own, "/x")),
        }
        for op, call in ops.items():
            with pytest.raises(MountPointError) as e:
                call()
            assert str(e.value) == (
                f"cgroups: refusing to {op} {own}/mnt: it is a mount point (a group is "
                f"mounted there), not a group of its own (that would reach every process "
                f"or group below the mount)"
            )
    assert p.poll() is None and read_procs(own + "/src") == [p.pid]
    assert read(own + "/src/cgroup.freeze") == "0\n"


def test_the_callers_group_is_refused_also_below_a_mount_point_that_is_a_group(
    own: str,
) -> None:
    """The mount point given is a group directory below the cgroup2 mount (``own``): the
    caller's group is still recognised as this group, or below it."""
    tree(own, "/g/c")
    g = Manager(own, "/g")
    for where, op in ((own + "/g", "kill"), (own + "/g/c", "freeze")):
        report, status, froze = in_group(where, lambda op=op: getattr(g, op)(5.0))  # type: ignore[misc]
        inside = "in it" if where == own + "/g" else "in /g/c, below it"
        assert (status, froze) == (0, False) and report is not None, (op, report, status)
        assert report.startswith("CgroupError: cgroups: refusing to " + op + " /g: this "), report
        assert report.endswith(
            f"runs {inside}, so it would {op} itself (allow_self=True to do it anyway)"
        )
    in_process(g)


# --- freeze and thaw ----------------------------------------------------------------------


def test_freeze_and_thaw_return_when_the_kernel_says_so(own: str, sleepers: Any) -> None:
    tree(own, "/g/c")
    ps = [sleepers(own + "/g"), sleepers(own + "/g/c")]
    g = Manager(own, "/g")
    g.freeze(timeout=30)
    assert read(own + "/g/cgroup.freeze") == "1\n" and events(own + "/g")["frozen"] == "1"
    # (the child's own file can follow its parent's by some microseconds)
    assert wait_for(lambda: events(own + "/g/c")["frozen"] == "1", 30)
    g.thaw(timeout=30)
    assert read(own + "/g/cgroup.freeze") == "0\n" and events(own + "/g")["frozen"] == "0"
    assert wait_for(lambda: events(own + "/g/c")["frozen"] == "0", 30)
    assert all(p.poll() is None for p in ps)


def test_default_timeouts_and_the_events_waited_for(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    sleepers(own + "/g")
    waits: list[tuple[str, bytes, bytes, float]] = []
    real = mgr._wait_event

    def recorded(d: Dir, key: bytes, want: bytes, timeout: float) -> bool:
        waits.append((d.path, key, want, timeout))
        return real(d, key, want, timeout)

    monkeypatch.setattr(mgr, "_wait_event", recorded)
    g = Manager(own, "/g")
    g.freeze()
    g.thaw()
    g.kill()
    path = own + "/g"
    assert waits == [
        (path, b"frozen", b"1", 5.0), (path, b"frozen", b"0", 5.0),
        (path, b"populated", b"0", 10.0),
    ]


def test_a_freeze_that_does_not_complete_is_undone(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    sleepers(own + "/g")
    monkeypatch.setattr(mgr, "_wait_event", lambda d, key, want, timeout: False)
    g = Manager(own, "/g")
    with pytest.raises(CgroupError) as e:
        g.freeze(timeout=0.5)
    assert str(e.value) == (
        f"cgroups: freezing {g.path} did not complete within 0.5 s (cgroup.events never "
        f"said 'frozen 1'); the group was thawed again"
    )
    assert read(own + "/g/cgroup.freeze") == "0\n"
    with pytest.raises(CgroupError) as e:
        g.kill(timeout=2.5)
    assert str(e.value) == f"cgroups: {g.path} still has processes 2.5 s after SIGKILL"


def test_a_thaw_below_a_frozen_group_times_out(own: str, sleepers: Any) -> None:
    tree(own, "/g/c")
    sleepers(own + "/g/c")
    g, c = Manager(own, "/g"), Manager(own, "/g/c")
    g.freeze(timeout=30)
    c.freeze(timeout=30)
    with pytest.raises(CgroupError) as e:
        c.thaw(timeout=0.2)
    assert str(e.value) == (
        f"cgroups: thawing {c.path} did not complete within 0.2 s (an ancestor may be "
        f"frozen)"
    )
    assert read(c.path + "/cgroup.freeze") == "0\n" and read(g.path + "/cgroup.freeze") == "1\n"
    assert events(c.path)["frozen"] == "1"
    g.thaw(timeout=30)
    assert wait_for(lambda: events(c.path)["frozen"] == "0", 30)  # it follows its parent


def test_a_group_without_the_freezer_is_refused(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    monkeypatch.setattr(mgr, "FREEZE", "cgroup.nofreeze")
    g = Manager(own, "/g")
    for op in (g.freeze, g.thaw):
        with pytest.raises(FreezerNotSupportedError) as e:
            op()
        assert str(e.value) == (
            f"cgroups: {g.path} has no cgroup.nofreeze (kernel without the v2 freezer)"
        )
    assert read(own + "/g/cgroup.freeze") == "0\n"


def test_freeze_of_a_group_removed_after_it_was_opened(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    real = Dir.refuse_mount_root

    def check_then_remove(self: Dir, op: str) -> None:
        real(self, op)
        os.rmdir(self.path)  # removed by another process right after the open

    monkeypatch.setattr(Dir, "refuse_mount_root", check_then_remove)
    g = Manager(own, "/g")
    for op in (g.freeze, g.thaw):
        os.makedirs(own + "/g", exist_ok=True)
        with pytest.raises(CgroupDeletedError) as e:
            op()
        assert str(e.value) == (
            f"cgroups: cgroup deleted: {own}/g was removed (looking for cgroup.freeze)"
        )
        assert (e.value.errno, e.value.path) == (errno.ENOENT, own + "/g/cgroup.freeze")


# --- kill ---------------------------------------------------------------------------------

NESTED = ("/g", "/g/a", "/g/a/b", "/g/c")


def fill(own: str, sleepers: Any) -> list[subprocess.Popen[bytes]]:
    tree(own, "/g/a/b", "/g/c")
    return [sleepers(own + d) for d in (*NESTED, "/g/a/b")]


def test_kill_empties_a_nested_tree_through_cgroup_kill(own: str, sleepers: Any) -> None:
    ps = fill(own, sleepers)
    tree(own, "/other")
    other = sleepers(own + "/other")
    Manager(own, "/g").kill(timeout=30)
    assert events(own + "/g")["populated"] == "0"  # it returned once the group was empty
    assert [p.wait(timeout=30) for p in ps] == [-signal.SIGKILL] * len(ps)
    assert all(os.path.isdir(own + d) for d in NESTED)
    assert other.poll() is None


def counted_signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Record each ``_signal_subtree`` round of the fallback: (signal, any found)."""
    rounds: list[tuple[int, bool]] = []
    real = mgr._signal_subtree

    def counted(d: Dir, sig: int) -> bool:
        found = real(d, sig)
        rounds.append((sig, found))
        return found

    monkeypatch.setattr(mgr, "_signal_subtree", counted)
    return rounds


def test_kill_without_cgroup_kill_freezes_signals_once_and_thaws(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ps = fill(own, sleepers)
    monkeypatch.setattr(mgr, "KILL", "cgroup.nokill")
    rounds = counted_signals(monkeypatch)
    waits: list[tuple[bytes, bytes, float]] = []
    real = mgr._wait_event

    def recorded(d: Dir, key: bytes, want: bytes, timeout: float) -> bool:
        waits.append((key, want, timeout))
        return real(d, key, want, timeout)

    monkeypatch.setattr(mgr, "_wait_event", recorded)
    Manager(own, "/g").kill(timeout=30)
    assert rounds == [(signal.SIGKILL, True)]  # frozen: none could fork, one round
    assert waits == [(b"frozen", b"1", 30), (b"frozen", b"0", 30), (b"populated", b"0", 30)]
    assert events(own + "/g")["populated"] == "0"
    assert read(own + "/g/cgroup.freeze") == "0\n" and events(own + "/g")["frozen"] == "0"
    assert [p.wait(timeout=30) for p in ps] == [-signal.SIGKILL] * len(ps)


def test_kill_without_cgroup_kill_or_freezer_signals_until_none_is_left(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ps = fill(own, sleepers)
    monkeypatch.setattr(mgr, "KILL", "cgroup.nokill")
    monkeypatch.setattr(mgr, "FREEZE", "cgroup.nofreeze")
    rounds = counted_signals(monkeypatch)
    Manager(own, "/g").kill(timeout=30)
    assert events(own + "/g")["populated"] == "0"
    assert [p.wait(timeout=30) for p in ps] == [-signal.SIGKILL] * len(ps)
    assert rounds[-1] == (signal.SIGKILL, False)  # the round that found none was the last
    assert all(r == (signal.SIGKILL, True) for r in rounds[:-1]) and len(rounds) >= 2


def test_kill_without_cgroup_kill_by_a_caller_inside_it_with_allow_self(
    cg_parent: Parent, cg_path: str, own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``allow_self`` where the kernel has no cgroup.kill: the caller is not frozen (it
    could never thaw itself again); the others are killed, then the caller, as
    cgroup.kill does."""
    tree(own, "/g/c")
    p = sleepers(own + "/g/c")
    monkeypatch.setattr(mgr, "KILL", "cgroup.nokill")
    g = Manager(cg_parent.mountpoint, cg_path + "/g")
    report, status, froze = in_group(own + "/g", lambda: g.kill(2.0, allow_self=True))
    assert (report, status, froze) == (None, -signal.SIGKILL, False)
    assert p.wait(timeout=30) == -signal.SIGKILL
    assert events(own + "/g")["populated"] == "0" and read(own + "/g/cgroup.freeze") == "0\n"
    q = sleepers(own + "/g/c")
    g.kill(30)  # by this process, outside: frozen, signalled, thawed
    assert q.wait(timeout=30) == -signal.SIGKILL and read(own + "/g/cgroup.freeze") == "0\n"


def test_kill_without_cgroup_kill_or_freezer_gives_up_after_100_rounds(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subtree that has processes again after each round (here: a round that always
    says it found some) is signalled 100 times, then kill() waits for the group."""
    tree(own, "/g")
    monkeypatch.setattr(mgr, "KILL", "cgroup.nokill")
    monkeypatch.setattr(mgr, "FREEZE", "cgroup.nofreeze")
    rounds: list[int] = []
    monkeypatch.setattr(mgr, "_signal_subtree", lambda d, sig: rounds.append(sig) or True)
    Manager(own, "/g").kill(timeout=30)
    assert rounds == [signal.SIGKILL] * 100


# --- signal_subtree -----------------------------------------------------------------------


def test_signal_subtree_signals_each_process_of_the_tree(own: str, sleepers: Any) -> None:
    ps = fill(own, sleepers)
    tree(own, "/empty/x")
    with Dir.open(own + "/empty", own) as d:
        assert mgr.signal_subtree(d, signal.SIGTERM) == (0, 0)
        assert mgr._signal_subtree(d, signal.SIGTERM) is False
    with Dir.open(own + "/g/c", own) as d:
        assert mgr._signal_subtree(d, signal.SIGTERM) is True
    assert ps[3].wait(timeout=30) == -signal.SIGTERM
    with Dir.open(own + "/g", own) as d:
        assert mgr.signal_subtree(d, signal.SIGTERM) == (4, 4)
    assert [p.wait(timeout=30) for p in ps] == [-signal.SIGTERM] * len(ps)


def test_signal_subtree_never_signals_the_caller(own: str, sleepers: Any) -> None:
    tree(own, "/g")
    p = sleepers(own + "/g")

    def signal_own_group(sig: int = 0) -> tuple[int, int]:
        with Dir.open(own + "/g", own) as d:
            return mgr.signal_subtree(d, sig)

    assert signal_own_group() == (1, 1)  # from outside, signal 0 (a probe) is not sent
    report, status, _ = in_group(own + "/g", lambda: signal_own_group(signal.SIGTERM))
    assert (report, status) == ("(1, 1)", 0)
    assert p.wait(timeout=30) == -signal.SIGTERM


def test_signal_subtree_counts_pids_that_ended_before_or_while_signalled(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    a, b = sleepers(own + "/g"), sleepers(own + "/g")
    real = mgr._subtree_pids
    reads: list[list[int]] = []

    def first_lists_a_pid_gone(d: Dir) -> list[int]:
        # 4194305: above the largest pid_max, never a process (as one that ended)
        pids = real(d)
        reads.append(pids)
        return [4194305, *pids] if len(reads) == 1 else pids

    monkeypatch.setattr(mgr, "_subtree_pids", first_lists_a_pid_gone)
    with Dir.open(own + "/g", own) as d:
        assert mgr.signal_subtree(d, 0) == (3, 2)  # found 3, sent 2 (signal 0: a probe)
    assert len(reads) == 2

    def second_read_outlives_a(d: Dir) -> list[int]:
        pids = real(d)
        reads.append(pids)
        if len(reads) == 4:  # held and listed, then ended and reaped before the signal
            stop(a)
        return pids

    monkeypatch.setattr(mgr, "_subtree_pids", second_read_outlives_a)
    with Dir.open(own + "/g", own) as d:
        assert mgr.signal_subtree(d, signal.SIGTERM) == (2, 1)
    assert a.returncode == -signal.SIGKILL and b.wait(timeout=30) == -signal.SIGTERM


def test_signal_subtree_signals_none_when_one_may_not_be_signalled(
    own: str, sleepers: Any
) -> None:
    tree(own, "/g")
    mine = sleepers(own + "/g", uid=NOBODY)
    roots = sleepers(own + "/g")

    def as_nobody() -> tuple[int, int]:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        with Dir.open(own + "/g") as d:
            return mgr.signal_subtree(d, signal.SIGTERM)

    with Dir.open(own + "/g") as d:
        assert mgr.signal_subtree(d, 0) == (2, 2)  # root may: the probe passes
    report, status, _ = in_group(own, as_nobody)
    assert status == 0
    assert report == (
        f"KernelError: cgroups: send SIGTERM to the processes of {own}/g: [Errno 1 EPERM] "
        f"Operation not permitted (this user may not signal 1 of the 2 processes (pid "
        f"{roots.pid}); none was signalled)"
    )
    assert mine.poll() is None and roots.poll() is None


def test_signal_subtree_names_a_refusal_after_some_were_signalled(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that change between the check and the signal: the refusal names what
    was signalled (the second pass is made to report one pid refused)."""
    tree(own, "/g")
    a, b = sleepers(own + "/g"), sleepers(own + "/g")
    real = mgr._not_permitted

    def second_pass_refuses_a(held: dict[int, int], sig: int) -> tuple[list[int], int]:
        denied, ended = real(held, sig if sig == 0 else 0)
        return ([a.pid, *denied] if sig else denied), ended

    monkeypatch.setattr(mgr, "_not_permitted", second_pass_refuses_a)
    with Dir.open(own + "/g", own) as d, pytest.raises(KernelError) as e:
        mgr.signal_subtree(d, signal.SIGTERM)
    assert e.value.errno == errno.EPERM
    assert str(e.value) == (
        f"cgroups: send SIGTERM to the processes of {own}/g: [Errno 1 EPERM] Operation not "
        f"permitted (this user may not signal 1 of the 2 processes (pid {a.pid}); 1 were "
        f"signalled)"
    )
    assert a.poll() is None and b.poll() is None


# --- _wait_event --------------------------------------------------------------------------


def test_wait_event_returns_on_the_event_or_false_at_the_deadline(
    own: str, sleepers: Any
) -> None:
    tree(own, "/g")
    with Dir.open(own + "/g", own) as d:
        assert mgr._wait_event(d, b"populated", b"0", 0) is True
        assert mgr._wait_event(d, b"frozen", b"0", 0) is True
        assert mgr._wait_event(d, b"frozen", b"1", 0) is False
        p = sleepers(own + "/g")
        assert mgr._wait_event(d, b"populated", b"1", 0) is True
        assert mgr._wait_event(d, b"populated", b"0", 0.2) is False
        ender = threading.Timer(0.2, stop, (p,))
        ender.start()
        try:
            assert mgr._wait_event(d, b"populated", b"0", 120) is True
        finally:
            ender.join()
        assert p.returncode == -signal.SIGKILL


def test_wait_event_on_a_group_removed_while_waiting(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    real = Dir.open_fd

    def open_then_remove(self: Dir, name: str) -> int:
        fd = real(self, name)
        os.rmdir(self.path)
        return fd

    monkeypatch.setattr(Dir, "open_fd", open_then_remove)
    with Dir.open(own + "/g", own) as d, pytest.raises(CgroupDeletedError) as e:
        mgr._wait_event(d, b"frozen", b"1", 30)
    assert str(e.value) == f"cgroups: cgroup deleted: {own}/g was removed (read cgroup.events)"
    assert e.value.errno == errno.ENODEV


def test_wait_event_sleeps_in_poll_between_reads(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(own, "/g")
    reads: list[int] = []
    real = os.pread

    def counted(fd: int, n: int, offset: int) -> bytes:
        reads.append(offset)
        return real(fd, n, offset)

    with Dir.open(own + "/g", own) as d:
        monkeypatch.setattr(os, "pread", counted)
        assert mgr._wait_event(d, b"frozen", b"1", 0.3) is False
        monkeypatch.undo()
    # one read, a wait in poll until the deadline, one or a few more reads (not a spin)
    assert 2 <= len(reads) <= 10 and set(reads) == {0}


def test_wait_event_waits_out_its_last_second(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a second left (a clock of the test's) when the event comes: it is waited for."""
    tree(own, "/g")
    p = sleepers(own + "/g")
    calls: list[int] = []

    def clock() -> float:
        calls.append(1)
        if len(calls) == 2:
            stop(p)  # the group empties now
        return 1000.0 if len(calls) == 1 else 1000.0 + 10 - 0.5

    with Dir.open(own + "/g", own) as d:
        monkeypatch.setattr(time, "monotonic", clock)
        try:
            assert mgr._wait_event(d, b"populated", b"0", 10) is True
        finally:
            monkeypatch.undo()
    assert len(calls) >= 2 and p.returncode == -signal.SIGKILL
