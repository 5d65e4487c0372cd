"""vm tier: the reliability checks that need controllers the host's hybrid mount lacks
(memory, pids, cpu): memory event streams of removed groups, rollback of a refused update
across controllers, stat races with every controller on, concurrent creation that enables
controllers in the ancestors. The leak check of tests/reliability runs here too.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Iterator

import pytest
from conftest import Parent

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
from reltools import create_concurrently, no_leaks, snapshot  # noqa: F401

from cgroup2 import (
    CPU,
    CgroupDeletedError,
    KernelError,
    Manager,
    Memory,
    Pids,
    Resources,
)

NEEDED = ("memory", "pids", "cpu")


@pytest.fixture
def mnt(cg_parent: Parent) -> Iterator[str]:
    with open(os.path.join(cg_parent.mountpoint, "cgroup.controllers")) as f:
        have = f.read().split()
    missing = [c for c in NEEDED if c not in have]
    if missing:
        pytest.skip(f"needs the {', '.join(missing)} controllers (the vm tier)")
    # the VM's mount root is ours to change (see the house rules)
    for d in (cg_parent.mountpoint, cg_parent.fs_path):
        with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
            f.write(" ".join("+" + c for c in NEEDED))
    yield cg_parent.mountpoint


RES = Resources(
    memory=Memory(max=256 << 20, high=200 << 20),
    pids=Pids(max=100),
    cpu=CPU(weight=50, max="50000 100000"),
)


def test_memory_event_stream_of_a_removed_group(mnt: str, cg_path: str) -> None:
    from cgroup2.events import EventStream

    m = Manager.create(cg_path, RES, mountpoint=mnt)
    s = EventStream(m.path)
    with s:
        os.rmdir(m.path)
        with pytest.raises(CgroupDeletedError):
            for _ in range(100):
                s.get(timeout=0.05)
    assert not os.path.exists(m.path)


def test_refused_update_rolls_back_every_controller(mnt: str, cg_path: str) -> None:
    m = Manager.create(cg_path, RES, mountpoint=mnt)
    try:
        before = snapshot(m.path)
        new = Resources(
            memory=Memory(max=128 << 20, high=100 << 20, low=1 << 20),
            pids=Pids(max=5),
            cpu=CPU(weight=200, max="20000 100000"),
            unified={"memory.swap.max": "garbage"},
        )
        with pytest.raises(KernelError) as e:
            m.update(new)
        assert e.value.errno == errno.EINVAL and "memory.swap.max" in str(e.value)
        assert snapshot(m.path) == before
    finally:
        m.delete()


def test_stat_while_the_group_is_removed(mnt: str, cg_path: str) -> None:
    base = Manager.create(cg_path, mountpoint=mnt)
    with open(base.path + "/cgroup.subtree_control", "w") as f:
        f.write(" ".join("+" + c for c in NEEDED))
    outcomes = {"ok": 0, "deleted": 0}
    try:
        for i in range(25):
            m = Manager.create(f"{cg_path}/r{i}", RES, mountpoint=mnt)
            go = threading.Barrier(2)

            def remove(path: str = m.path, go: threading.Barrier = go) -> None:
                go.wait()
                os.rmdir(path)

            t = threading.Thread(target=remove)
            t.start()
            try:
                go.wait()
                st = m.stat()
                # a stat that returns is whole: a removal under it raises instead
                assert st.memory is not None and st.pids is not None and st.cpu is not None
                outcomes["ok"] += 1
            except CgroupDeletedError:
                outcomes["deleted"] += 1
            finally:
                t.join()
    finally:
        base.delete()
    assert sum(outcomes.values()) == 25


def test_concurrent_create_enabling_controllers(mnt: str, cg_path: str) -> None:
    group = cg_path + "/a/b"
    results, codes = create_concurrently(mnt, group, RES)
    try:
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert codes == [0, 0, 0, 0]
        fs = mnt + group
        with open(fs + "/memory.max") as f:
            assert int(f.read()) == 256 << 20
        with open(fs + "/pids.max") as f:
            assert f.read().strip() == "100"
        with open(mnt + cg_path + "/a/cgroup.subtree_control") as f:
            assert set(f.read().split()) >= set(NEEDED)
    finally:
        Manager.load(cg_path, mountpoint=mnt).delete()
