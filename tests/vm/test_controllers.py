"""vm tier: the kernel of a VM with every controller at /sys/fs/cgroup."""

from __future__ import annotations

import errno
import os

from conftest import Parent

ALL = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}


def test_all_controllers_available(cg_parent: Parent) -> None:
    with open(os.path.join(cg_parent.mountpoint, "cgroup.controllers")) as f:
        have = set(f.read().split())
    assert have >= ALL, f"missing controllers: {ALL - have}"


def test_pids_max_makes_fourth_fork_fail(cg_parent: Parent, cg_path: str) -> None:
    from cgtest import remove_tree

    mnt = cg_parent.mountpoint
    with open(os.path.join(mnt, "cgroup.subtree_control"), "w") as f:
        f.write("+pids")
    with open(cg_parent.fs_path + "/cgroup.subtree_control", "w") as f:
        f.write("+pids")
    fs = mnt + cg_path
    os.mkdir(fs)
    try:
        with open(fs + "/pids.max", "w") as f:
            f.write("3")
        r, w = os.pipe()
        leader = os.fork()
        if leader == 0:  # pragma: no cover - child
            os.close(r)
            try:
                with open(fs + "/cgroup.procs", "w") as f:
                    f.write("0")
                kids = []
                result = 0
                for _ in range(3):  # the leader is task 1; forks 2 and 3 succeed
                    try:
                        pid = os.fork()
                    except OSError as e:
                        result = e.errno or -1
                        break
                    if pid == 0:
                        os.pause()
                    kids.append(pid)
                os.write(w, f"{len(kids)} {result}".encode())
            finally:
                os._exit(0)
        os.close(w)
        out = os.read(r, 100).decode().split()
        os.close(r)
        os.waitpid(leader, 0)
        assert out == ["2", str(errno.EAGAIN)], out
    finally:
        remove_tree(fs)
