"""vm tier: ``cgroup2 export`` on 1,000 groups with every controller (the VM's kernel has
them all): the scrape's wall time against ``Manager.stat()`` of the same groups in the same
(emulated, many times slower) VM, descriptors held,
``promtool check metrics`` on that output, and the working set of a group whose process
holds a known amount of anonymous memory (the kernel's ``memory.current`` less
``inactive_file``, as kubelet and cAdvisor count it)."""

from __future__ import annotations

import os
import subprocess
import time

from conftest import Parent
from export_tools import (
    PROMETHEUS_ACCEPT,
    PROMTOOL,
    cpu_seconds,
    exporter,
    run_in_group,
    sample_value,
    scrape,
)

from cgroup2 import Manager

CONTROLLERS = ("cpu", "io", "memory", "pids", "hugetlb", "cpuset", "rdma", "misc")
GROUPS = 1000
TOUCH = 48 << 20  # bytes of anonymous memory the holder keeps
HOLD_CODE = (
    f"import mmap, time\nm = mmap.mmap(-1, {TOUCH})\n"
    f"for i in range(0, {TOUCH}, 4096): m[i] = 1\nprint('ready', flush=True)\ntime.sleep(600)\n"
)


def _enable(path: str) -> None:
    with open(os.path.join(path, "cgroup.controllers")) as f:
        have = f.read().split()
    with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
        f.write(" ".join(f"+{c}" for c in CONTROLLERS if c in have))


def _rmdirs(paths: list[str]) -> None:
    for p in reversed(paths):
        for _ in range(200):
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def test_export_of_1000_groups_with_every_controller(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    _enable(mnt)
    _enable(cg_parent.fs_path)
    fs = mnt + cg_path
    os.mkdir(fs)
    made = [fs]
    holder: subprocess.Popen[bytes] | None = None
    try:
        _enable(fs)
        for i in range(GROUPS):
            os.mkdir(f"{fs}/g{i:04d}")
            made.append(f"{fs}/g{i:04d}")
        holder = run_in_group(f"{fs}/g0000", HOLD_CODE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(f"{fs}/g0000/memory.current") as f:
                if int(f.read()) >= TOUCH:
                    break
            time.sleep(0.2)
        # the floor in this VM: Manager.stat() of the same groups, one after another
        managers = [Manager.load(cg_path)] + [
            Manager.load(f"{cg_path}/g{i:04d}") for i in range(GROUPS)
        ]
        t = time.perf_counter()
        for m in managers:
            m.stat()
        t_stat = time.perf_counter() - t
        with exporter(cg_path) as (exp, port):
            walls = []
            for _ in range(2):
                wall, _, body = scrape(port, PROMETHEUS_ACCEPT)
                walls.append(wall)
            c0 = cpu_seconds(exp.pid)
            _, _, text = scrape(port)
            c1 = cpu_seconds(exp.pid)
        sampled = sample_value(text, "cgroup2_exporter_sample_duration_seconds")
        took = sample_value(text, "cgroup2_exporter_scrape_duration_seconds")
        print(
            f"\nvm: {GROUPS + 1} groups, every controller: Manager.stat() of each {t_stat:.2f} s; "
            f"scrapes {', '.join(f'{w:.2f}' for w in walls)} s ({len(body) / 1e6:.1f} MB; "
            f"sample {sampled} s of {took} s in the exporter); CPU per scrape "
            f"{c1 - c0:.2f} s (the guest's accounting); "
            f"{sample_value(text, 'cgroup2_exporter_open_fds')} descriptors held"
        )
        assert sample_value(text, "cgroup2_exporter_groups") == GROUPS + 1
        # held, not reopened: the VM's root may lift the hard RLIMIT_NOFILE (4096 here)
        fds = sample_value(text, "cgroup2_exporter_open_fds")
        assert fds is not None and fds >= 20 * (GROUPS + 1), fds
        # a whole scrape (held descriptors, then the exposition of ~150 lines a group and
        # its transfer) costs at most half a stat() of each group by open/read/close in the
        # same VM (measured: a quarter, 7.5 s against 29.8 s; with the files reopened on
        # each scrape instead, as past a 4096 descriptor limit, it was 18 s and more)
        assert min(walls) <= 0.5 * t_stat, (walls, t_stat)
        # every controller's families are there, for the groups made here
        g = f'group="{cg_path}/g0001"'
        for name in (
            "cgroup_pids_current",
            "cgroup_memory_usage_bytes",
            "cgroup_memory_working_set_bytes",
            "cgroup_cpu_usage_seconds_total",
        ):
            assert sample_value(text, name, g) is not None, name
        assert sample_value(text, "cgroup_memory_limit_bytes", g) == float("inf")
        assert sample_value(text, "cgroup_pids_limit", g) == float("inf")
        # the holder's group: its process, and its anonymous memory in the working set
        g0 = f'group="{cg_path}/g0000"'
        assert sample_value(text, "cgroup_procs", g0) == 1
        assert sample_value(text, "cgroup_pids_current", g0) == 1
        ws = sample_value(text, "cgroup_memory_working_set_bytes", g0)
        usage = sample_value(text, "cgroup_memory_usage_bytes", g0)
        assert ws is not None and usage is not None
        assert TOUCH <= ws <= usage, (ws, usage)
        r = subprocess.run(
            [PROMTOOL, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        if holder is not None:
            holder.wait()
        _rmdirs(made)
