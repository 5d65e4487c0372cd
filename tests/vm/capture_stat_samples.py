"""Capture real kernel output of every file the stat parsers read (not collected by default).

Run explicitly, with output shown, and extract the samples into tests/unit/data:

    scripts/vm-test tests/vm/capture_stat_samples.py -s -q > /tmp/out.txt
    .venv/bin/python tests/unit/data/extract_samples.py vm-6.1 < /tmp/out.txt

It builds the same loaded group as tests/vm/test_stats.py (every controller, CPU under a
quota, memory, a huge page, direct I/O, an rdma device, an OOM kill in a child group) and
prints each file of the group, of its OOM child and of the root as one line
``CGROUP2-SAMPLE <dir>/<file> <base64>``.
"""

from __future__ import annotations

import base64
import os

import pytest
from conftest import Parent
from test_stats import loaded_group


def _dump(capsys: pytest.CaptureFixture[str], tag: str, path: str) -> int:
    n = 0
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not os.path.isfile(full) or name in ("cgroup.procs", "cgroup.threads"):
            continue
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            continue  # write-only files (memory.reclaim, cgroup.kill)
        with capsys.disabled():
            print(f"CGROUP2-SAMPLE {tag}/{name} {base64.b64encode(data).decode()}")
        n += 1
    return n


def test_capture(cg_parent: Parent, cg_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    with loaded_group(cg_parent, cg_path) as g:
        n = _dump(capsys, "group", g.fs)
        n += _dump(capsys, "work", g.work_fs)
        n += _dump(capsys, "oom", g.oom_fs)
        n += _dump(capsys, "root", cg_parent.mountpoint)
        with capsys.disabled():
            print(f"CGROUP2-SAMPLE-NOTES block={g.block_dev} rdma={g.rdma_dev} {g.notes}")
    assert n > 50
