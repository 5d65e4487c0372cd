"""host: on a hybrid host, asking cgroup2 for a controller bound to cgroup v1 says where
it is and what to do — every missing controller at once, in the order of the command
line, the same error type from Manager.create and Manager.update — and nothing is made.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import Parent

import cgroup2
from cgroup2 import Memory, Pids, Resources
from cgroup2._v1 import hierarchies
from cgroup2.paths import default_mountpoint

HOW = "cgroup2 manages only the unified hierarchy — boot with systemd.unified_cgroup_hierarchy=1"


def _on_v1(*names: str) -> bool:
    hs = hierarchies()
    mp = default_mountpoint()
    with open(f"{mp}/cgroup.controllers") as f:
        offered = f.read().split()
    return all(n in hs and hs[n].mountpoint and n not in offered for n in names)


pytestmark = pytest.mark.skipif(not _on_v1("memory", "cpu", "pids"),
                                reason="needs memory, cpu and pids bound to cgroup v1")


def _where(c: str) -> str:
    return f"{c} is bound to the cgroup v1 hierarchy at {hierarchies()[c].mountpoint}"


def test_cli_names_every_missing_controller_in_the_order_given(cg_parent: Parent) -> None:
    argv = [sys.executable, "-m", "cgroup2", "run", "--parent", cg_parent.group,
            "--pids-max", "10", "--cpu-max", "50%", "--memory-max", "512M", "--", "true"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    print(f"\n{r.stderr.strip()}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    err = r.stderr
    assert "--pids-max needs pids, --cpu-max needs cpu, --memory-max needs memory" in err
    positions = [err.index(_where(c)) for c in ("pids", "cpu", "memory")]
    assert positions == sorted(positions)
    assert HOW in err and "cgroup_no_v1=pids,cpu,memory) to move them" in err
    assert len(err.strip().splitlines()) == 1
    assert os.listdir(cg_parent.fs_path) == [n for n in os.listdir(cg_parent.fs_path)
                                             if not os.path.isdir(f"{cg_parent.fs_path}/{n}")]


def test_create_and_update_raise_the_same_error(cg_parent: Parent, cg_path: str) -> None:
    mp = cg_parent.mountpoint
    res = Resources(memory=Memory(max=256 << 20), pids=Pids(max=10))
    with pytest.raises(cgroup2.MemoryNotSupportedError) as made:
        cgroup2.Manager.create(cg_path + "/new", res, mountpoint=mp)
    assert not os.path.exists(mp + cg_path)  # nothing made, the missing parent included
    msg = str(made.value)
    assert _where("memory") in msg and _where("pids") in msg and HOW in msg
    assert msg.index(_where("memory")) < msg.index(_where("pids"))

    m = cgroup2.Manager.create(cg_path, mountpoint=mp)
    try:
        with pytest.raises(cgroup2.MemoryNotSupportedError) as updated:
            m.update(Resources(memory=Memory(max=256 << 20)))
        assert str(updated.value) == (
            f"cgroups: {_where('memory')} on this host; {HOW} (or cgroup_no_v1=memory) to "
            f"move it"
        )
        with pytest.raises(cgroup2.PidsNotSupportedError, match=_where("pids")):
            m.update(Resources(pids=Pids(max=10)))
    finally:
        m.delete()
