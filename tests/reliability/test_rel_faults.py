"""Faults on this machine's real cgroup2 mount: groups removed under a running call,
processes that exit or fork while they are handled, concurrent creation, controllers that
cannot be enabled. Every outcome must be success or a clear CgroupError, with nothing
left behind (the autouse leak check counts fds, threads, children, groups and programs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from conftest import Parent
from reltools import (  # noqa: F401
    PY,
    create_concurrently,
    no_leaks,
    read_procs,
    sleeper_in,
    snapshot,
    spawn_in,
    stop,
    wait_for,
)

from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    HugeTlbEntry,
    KernelError,
    Manager,
    MemoryNotSupportedError,
    Resources,
    State,
)
from cgroup2._fs import Dir

HUGE = "hugetlb.2MB.max"


def _controllers(mnt: str) -> list[str]:
    with open(os.path.join(mnt, "cgroup.controllers")) as f:
        return f.read().split()


@pytest.fixture
def group(cg_parent: Parent, cg_path: str) -> Iterator[Manager]:
    """An existing empty group (made with a plain mkdir), removed afterwards."""
    os.mkdir(cg_parent.mountpoint + cg_path)
    m = Manager.load(cg_path, mountpoint=cg_parent.mountpoint)
    try:
        yield m
    finally:
        from cgtest import remove_tree

        remove_tree(m.path)


# --- the group removed by someone else -------------------------------------------------


_REMOVER = (
    "import os, sys\n"
    "import time\n"
    "for line in sys.stdin:\n"
    "    p, _, wait = line.rstrip('\\n').partition(' ')\n"
    "    end = time.perf_counter() + float(wait or 0)\n"
    "    while time.perf_counter() < end:\n"
    "        pass\n"
    "    if p:\n"
    "        os.rmdir(p)\n"
    "    sys.stdout.write('x'); sys.stdout.flush()\n"
)


def _race_removal(
    mnt: str, base: str, action: Callable[[Manager], object], rounds: int
) -> Counter[str]:
    """At least ``rounds`` times: a fresh group, ``action`` on it while another process
    removes it (a process, not a thread: the GIL would order them), until both paths were
    taken -- the action finished on a group that was still there, and it met the removal
    (CgroupDeletedError, or State.DELETED from state()) -- or 10 x ``rounds`` rounds.

    In turn the action or the removal waits a random time, up to the remover's round
    trip plus twice the action's own time (both measured first), so the removal lands
    before, during and after the action. Returns how often each path was taken; any other
    exception fails the test (it is raised here).
    """
    import subprocess

    rm = subprocess.Popen(
        [PY, "-c", _REMOVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )
    assert rm.stdin is not None and rm.stdout is not None

    def ask(path: str, wait: float = 0.0) -> None:
        assert rm.stdin is not None
        rm.stdin.write(f"{path} {wait:.9f}\n".encode())

    def done() -> None:
        assert rm.stdout is not None
        assert rm.stdout.read(1) == b"x", "the remover process ended"

    outcomes: Counter[str] = Counter()
    try:
        t0 = time.perf_counter()
        for _ in range(5):
            ask("")
            done()
        rtt = (time.perf_counter() - t0) / 5
        probe = f"{mnt}{base}/probe"
        os.mkdir(probe)
        t0 = time.perf_counter()
        action(Manager.load(f"{base}/probe", mountpoint=mnt))
        spread = rtt + 2 * (time.perf_counter() - t0)
        os.rmdir(probe)
        i = 0
        while i < rounds or (min(outcomes["ok"], outcomes["deleted"]) == 0 and i < 10 * rounds):
            path = f"{mnt}{base}/r{i}"
            os.mkdir(path)
            m = Manager.load(f"{base}/r{i}", mountpoint=mnt)
            # half the rounds the action waits, half the remover: removal before,
            # during and after the action
            delay = random.random() * spread
            ask(path, 0.0 if i % 2 else delay)
            start = time.perf_counter() + (delay if i % 2 else 0.0)
            while time.perf_counter() < start:
                pass
            try:
                got = action(m)
                outcomes["deleted" if got is State.DELETED else "ok"] += 1
            except CgroupDeletedError as e:
                assert "deleted" in str(e) and m.path in str(e), str(e)
                outcomes["deleted"] += 1
            finally:
                done()
            assert not os.path.exists(path)
            i += 1
    finally:
        rm.stdin.close()
        rm.wait(10)
        rm.stdout.close()
    return outcomes


def test_removed_before_each_operation(group: Manager) -> None:
    os.rmdir(group.path)
    for name, call in [
        ("stat", group.stat),
        ("procs", group.procs),
        ("procs-recursive", lambda: group.procs(recursive=True)),
        ("freeze", group.freeze),
        ("thaw", group.thaw),
        ("threads", group.threads),
        ("controllers", group.controllers),
        ("add_proc", lambda: group.add_proc(os.getpid())),
        ("update", lambda: group.update(Resources(hugetlb=[HugeTlbEntry("2MB", 0)]))),
        ("kill", group.kill),
    ]:
        with pytest.raises(CgroupDeletedError) as e:
            call()
        assert group.path in str(e.value), (name, str(e.value))
    assert group.state() is State.DELETED
    group.delete()  # a group that is already gone: success


def test_stat_of_an_open_group_removed_mid_read(group: Manager) -> None:
    """stats.collect on a directory fd whose group was removed after it was opened."""
    from cgroup2.stats import collect

    with Dir.open(group.path) as d:
        os.rmdir(group.path)
        with pytest.raises(CgroupDeletedError):
            collect(d)


@pytest.mark.parametrize(
    "op",
    ["stat", "procs", "procs-recursive", "freeze", "thaw", "state", "cgroup-events", "update"],
)
def test_removed_while_running(cg_parent: Parent, group: Manager, op: str) -> None:
    hugetlb = "hugetlb" in _controllers(group.mountpoint)
    if hugetlb:
        for d in (cg_parent.fs_path, group.path):  # the races' groups get hugetlb files
            with open(d + "/cgroup.subtree_control", "w") as f:
                f.write("+hugetlb")
    actions: dict[str, Callable[[Manager], object]] = {
        "stat": lambda m: _whole_stat(m, hugetlb),
        "procs": lambda m: m.procs(),
        "procs-recursive": lambda m: m.procs(recursive=True),
        "freeze": lambda m: m.freeze(timeout=2),
        "thaw": lambda m: m.thaw(timeout=2),
        "state": lambda m: m.state(),
        "cgroup-events": _stream_once,
        "update": lambda m: m.update(Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)])),
    }
    out = _race_removal(cg_parent.mountpoint, group.group, actions[op], rounds=40)
    # both paths were taken: the action finished on a live group, and it met the removal
    # (and said CgroupDeletedError, nothing else)
    assert out["ok"] >= 1 and out["deleted"] >= 1, out


def _whole_stat(m: Manager, hugetlb: bool) -> None:
    """A stat that returns must be whole: a group removed under it raises instead of
    giving sections that read as absent (its files go before its directory)."""
    st = m.stat()
    assert st.cpu is not None and st.cpu.usage_usec is not None, st.cpu
    if hugetlb:
        assert st.hugetlb is not None and all(h.max is not None for h in st.hugetlb), st


def _stream_once(m: Manager) -> None:
    from cgroup2.events import CgroupEventStream

    with CgroupEventStream(m.path, initial=True) as s:
        s.get(timeout=0.01)
        s.get(timeout=0.01)


def test_event_stream_of_a_removed_group_raises_and_closes(group: Manager) -> None:
    from cgroup2.events import CgroupEventStream

    s = CgroupEventStream(group.path)
    with s:
        os.rmdir(group.path)
        with pytest.raises(CgroupDeletedError):
            for _ in range(100):
                s.get(timeout=0.05)
        assert s.ended


def test_recursive_procs_while_subgroups_come_and_go(cg_parent: Parent, group: Manager) -> None:
    """procs(recursive=True) of a group that exists must not fail because a subgroup was
    removed during the walk."""
    stop_flag = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        i = 0
        while not stop_flag.is_set():
            p = f"{group.path}/c{i % 8}"
            try:
                os.mkdir(p)
                os.mkdir(p + "/x")
                os.rmdir(p + "/x")
                os.rmdir(p)
            except OSError as e:  # pragma: no cover - shown if it happens
                errors.append(e)
                return
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    failures: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                assert group.procs(recursive=True) == []
            except CgroupError as e:
                failures[f"{type(e).__name__}: {e}"[:160]] += 1
    finally:
        stop_flag.set()
        t.join()
    assert not errors
    assert not failures, f"procs(recursive=True) of a live group failed: {failures.most_common(3)}"


# --- processes that exit or fork ----------------------------------------------------------


def test_move_to_skips_a_process_that_exited(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    src = Manager.create(cg_path + "-src", mountpoint=mnt)
    dst = Manager.create(cg_path + "-dst", mountpoint=mnt)
    live = sleeper_in(src.path)
    gone = sleeper_in(src.path)
    try:
        assert wait_for(lambda: len(read_procs(src.path)) == 2)
        real = src.procs
        listed: list[int] = []

        def procs_then_exit(recursive: bool = False) -> list[int]:
            pids = real(recursive=recursive)
            if not listed and gone.pid in pids:  # exits between procs() and the write
                listed.extend(pids)
                stop(gone)
            return pids

        src.procs = procs_then_exit  # type: ignore[method-assign]
        src.move_to(dst)
        assert gone.pid in listed
        assert read_procs(dst.path) == [live.pid]
        assert read_procs(src.path) == []
        with pytest.raises(KernelError) as e:
            dst.add_proc(gone.pid)
        assert e.value.errno == errno.ESRCH and "cgroup.procs" in str(e.value)
    finally:
        stop(live)
        stop(gone)
        dst.delete(kill=True)
        src.delete(kill=True)


FORKERS = {
    # a shell that starts a short-lived process in a loop
    "sh-loop": ["sh", "-c", "while :; do /bin/true; done"],
    # fork, the child exits at once, reap; and a grandchild generation
    "py-fork": [
        PY,
        "-c",
        "import os\n"
        "while True:\n"
        "    p = os.fork()\n"
        "    if p == 0:\n"
        "        q = os.fork()\n"
        "        os._exit(0)\n"
        "    os.waitpid(p, 0)\n",
    ],
}


def test_move_to_while_the_group_forks(cg_parent: Parent, cg_path: str) -> None:
    """A process exits (ESRCH) or a new one is born between procs() and each write."""
    mnt = cg_parent.mountpoint
    src = Manager.create(cg_path + "-src", mountpoint=mnt)
    dst = Manager.create(cg_path + "-dst", mountpoint=mnt)
    p = spawn_in(src.path, FORKERS["sh-loop"])
    try:
        for _ in range(10):
            src.move_to(dst)
            assert src.procs(recursive=True) == []
            dst.move_to(src)
            assert dst.procs(recursive=True) == []
    finally:
        stop(p)
        src.delete(kill=True)
        dst.delete(kill=True)


@pytest.mark.parametrize("forker", sorted(FORKERS))
def test_freeze_of_a_forking_group(group: Manager, forker: str) -> None:
    p = spawn_in(group.path, FORKERS[forker])
    try:
        assert wait_for(lambda: len(read_procs(group.path)) >= 1)
        frozen = 0
        for _ in range(3):
            try:
                group.freeze(timeout=5)
            except CgroupError as e:  # allowed: timed out, thawed again, said so
                assert "thawed again" in str(e)
                assert group.state() is State.THAWED
                continue
            frozen += 1
            assert group.state() is State.FROZEN
            first = group.procs()
            time.sleep(0.1)
            assert group.procs() == first, "processes changed in a frozen group"
            group.thaw()
            assert group.state() is State.THAWED
        # a timeout now and then is allowed; never freezing a forking group is not
        assert frozen >= 1, "every freeze of the forking group timed out"
    finally:
        stop(p)
        group.kill()


def test_delete_while_processes_exit(cg_parent: Parent, cg_path: str) -> None:
    """Processes are killed (and not yet gone) when delete runs: EBUSY is retried."""
    mnt = cg_parent.mountpoint
    for i in range(10):
        m = Manager.create(f"{cg_path}-{i}", mountpoint=mnt)
        child = m.new_child("c")
        procs = [sleeper_in(child.path if j % 2 else m.path) for j in range(6)]
        assert wait_for(lambda m=m: len(m.procs(recursive=True)) == 6)
        for p in procs:
            p.send_signal(9)
        try:
            m.delete(kill=True)
            assert not os.path.exists(m.path)
        finally:
            for p in procs:
                stop(p)


def test_delete_right_after_the_last_process_was_reaped(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    for i in range(20):
        m = Manager.create(f"{cg_path}-{i}", mountpoint=mnt)
        procs = [sleeper_in(m.path) for _ in range(3)]
        assert wait_for(lambda m=m: len(m.procs()) == 3)
        for p in procs:
            stop(p)  # SIGKILL and waitpid
        m.delete()
        assert not os.path.exists(m.path)


def test_delete_refuses_a_populated_group(group: Manager) -> None:
    p = sleeper_in(group.path)
    try:
        assert wait_for(lambda: group.procs() == [p.pid])
        with pytest.raises(CgroupError, match="still has processes"):
            group.delete()
        assert os.path.isdir(group.path) and group.procs() == [p.pid]
    finally:
        stop(p)


# --- concurrent creation --------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
def test_create_the_same_group_from_8_threads_and_4_processes(
    cg_parent: Parent, cg_path: str, depth: int
) -> None:
    mnt = cg_parent.mountpoint
    group = cg_path + "".join(f"/d{i}" for i in range(1, depth))
    limit = 2 << 21
    res = Resources(hugetlb=[HugeTlbEntry("2MB", limit)])
    if "hugetlb" not in _controllers(mnt):
        res = Resources()
    for _round in range(5):
        results, codes = create_concurrently(mnt, group, res)
        try:
            errors = [r for r in results if isinstance(r, BaseException)]
            assert not errors, errors
            assert codes == [0, 0, 0, 0]
            assert all(r == results[0] for r in results)
            fs = mnt + group
            assert os.path.isdir(fs)
            with open(fs + "/cgroup.procs") as f:
                assert f.read() == ""
            if res.hugetlb:
                with open(f"{fs}/{HUGE}") as f:
                    assert int(f.read()) == limit
            # exactly the one chain of groups, nothing else
            top = mnt + cg_path
            subs = [os.path.relpath(os.path.join(dp, d), top)
                    for dp, ds, _ in os.walk(top) for d in ds]  # fmt: skip
            assert sorted(subs) == [f"d{i}" if i == 1 else "/".join(
                f"d{k}" for k in range(1, i + 1)) for i in range(1, depth)]  # fmt: skip
        finally:
            Manager.load(cg_path, mountpoint=mnt).delete()


# --- controllers that cannot be enabled -------------------------------------------------


def test_unavailable_controller_named_and_nothing_left(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    if "memory" in _controllers(mnt):
        pytest.skip("needs a mount without the memory controller (the host's hybrid mount)")
    before = snapshot(cg_parent.fs_path)
    with pytest.raises(MemoryNotSupportedError) as e:
        Manager.create(
            cg_path + "/a/b",
            Resources(unified={"memory.high": "1000000"}),
            mountpoint=mnt,
        )
    # where memory is instead: a cgroup v1 hierarchy (a hybrid host), or not on this mount
    assert ("memory is bound to" in str(e.value) and "cgroup v1" in str(e.value)) or (
        f"memory: not offered by the cgroup2 mount {mnt}" in str(e.value))
    assert snapshot(cg_parent.fs_path) == before
    assert not os.path.exists(mnt + cg_path)


def test_controller_refused_by_the_no_internal_process_rule(
    cg_parent: Parent, group: Manager
) -> None:
    """hugetlb is offered, but a group with processes cannot enable it for children
    (EBUSY): the error names the file and the value; no child is left."""
    mnt = cg_parent.mountpoint
    if "hugetlb" not in _controllers(mnt):
        pytest.skip("needs the hugetlb controller")
    p = sleeper_in(group.path)
    try:
        assert wait_for(lambda: group.procs() == [p.pid])
        with pytest.raises(KernelError) as e:
            Manager.create(
                group.group + "/child",
                Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)]),
                mountpoint=mnt,
            )
        assert e.value.errno == errno.EBUSY
        assert "+hugetlb" in str(e.value) and "cgroup.subtree_control" in str(e.value)
        assert not os.path.exists(group.path + "/child")
        with open(group.path + "/cgroup.subtree_control") as f:
            assert f.read().strip() == ""
    finally:
        stop(p)


def test_kernel_refusal_rolls_back_an_update(group: Manager) -> None:
    """The second value is refused by the kernel: the first is put back as it was."""
    mnt_ctl = _controllers(group.mountpoint)
    if "hugetlb" not in mnt_ctl:
        pytest.skip("needs the hugetlb controller")
    before = _limits(snapshot(group.path))
    for bad in ({"cgroup.max.depth": "abc"}, {"cgroup.events": "1"}, {"cpu.stat": "0"}):
        with pytest.raises(KernelError) as e:
            group.update(Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)], unified=bad))
        assert e.value.errno == errno.EINVAL
        assert next(iter(bad)) in str(e.value)
        assert _limits(snapshot(group.path)) == before


def _limits(snap: dict[str, bytes | str]) -> dict[str, bytes | str]:
    """A snapshot with the kernel's two spellings of "no limit" made one: a fresh group's
    hugetlb.<size>.max reads the page counter's maximum, and reads ``max`` once ``max`` (or
    that number) was written."""
    return {
        k: b"max\n" if isinstance(v, bytes) and v.strip().isdigit() and int(v) >= 2**62 else v
        for k, v in snap.items()
    }


def test_kernel_refusal_during_create_leaves_no_group(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with pytest.raises(KernelError):
        Manager.create(cg_path, Resources(unified={"cgroup.max.depth": "-5"}), mountpoint=mnt)
    assert not os.path.exists(mnt + cg_path)
    with pytest.raises(KernelError):
        Manager.create(
            cg_path + "/a/b", Resources(unified={"cgroup.max.descendants": "x"}), mountpoint=mnt
        )
    assert not os.path.exists(mnt + cg_path)


def test_add_proc_of_a_process_that_exited(group: Manager) -> None:
    p = sleeper_in(group.path)
    pid = p.pid
    stop(p)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        pytest.skip("pid was reused at once")
    with pytest.raises(KernelError) as e:
        group.add_proc(pid)
    assert e.value.errno == errno.ESRCH
