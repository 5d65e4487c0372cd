"""host: the file layer and mount discovery on this machine's real cgroup2 mount."""

from __future__ import annotations

import errno
import os

import pytest
from conftest import Parent

from cgroup2 import CgroupDeletedError, KernelError, Mode, default_mountpoint, mode
from cgroup2._fs import Dir


def test_mount_discovery_matches_mountinfo(cg_parent: Parent) -> None:
    assert default_mountpoint() == cg_parent.mountpoint
    assert mode() in (Mode.UNIFIED, Mode.HYBRID)


def test_kernel_refusal_names_file_value_errno(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    with Dir.open(cg_parent.fs_path) as parent:
        parent.mkdir(os.path.basename(cg_path))
        try:
            with parent.child(os.path.basename(cg_path)) as d:
                assert b"populated 0" in d.read("cgroup.events")
                with pytest.raises(KernelError) as e:
                    d.write("cgroup.freeze", "bogus")
                assert e.value.errno == errno.EINVAL
                assert f"{fs}/cgroup.freeze" in str(e.value) and "'bogus'" in str(e.value)
                d.write("cgroup.freeze", "1")
                assert d.read("cgroup.freeze") == b"1\n"
                d.write("cgroup.freeze", "0")
        finally:
            os.rmdir(os.path.basename(cg_path), dir_fd=parent.fd)


def test_group_removed_under_an_open_dir(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    d = Dir.open(fs)
    try:
        os.rmdir(fs)
        with pytest.raises(CgroupDeletedError):
            d.read("cgroup.procs")
        with pytest.raises(CgroupDeletedError):
            d.write("cgroup.procs", "0")
    finally:
        d.close()


def test_no_symlinks_can_be_planted(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        with pytest.raises(OSError):
            os.symlink("/etc/passwd", fs + "/evil")
    finally:
        os.rmdir(fs)
