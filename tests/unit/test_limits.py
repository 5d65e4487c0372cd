"""The walk and rounding rules of cgroup2.self on made-up trees (no cgroup file read)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cgroup2
from cgroup2.self import Limit, Limits, _group_below, _v1_controllers, collect, parse_cpu_list
from cgroup2.stats import MemoryStat

ALL = frozenset(range(8))
ROOT = {"cgroup.controllers": b"cpuset cpu io memory hugetlb pids\n",
        "cpuset.cpus.effective": b"0-7\n"}


def level(**files: str) -> dict[str, bytes]:
    """A group's files: keyword ``memory_max="..."`` is the file ``memory.max``."""
    out = {"cgroup.type": b"domain\n"}
    for key, value in files.items():
        name = key.replace("_", ".")
        out[name] = value.encode() + b"\n"
    return out


def tree(*levels: dict[str, bytes], names: str = "abcdefgh") -> list[tuple[str, dict[str, bytes]]]:
    out: list[tuple[str, dict[str, bytes]]] = [("/", ROOT)]
    path = ""
    for name, files in zip(names, levels, strict=False):
        path += "/" + name
        out.append((path, files))
    return out


def test_quota_max_at_every_level_is_no_quota() -> None:
    lim = collect(tree(level(cpu_max="max 100000"), level(cpu_max="max 250000")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.cpu_quota is None
    assert lim.cpu_count == 8


def test_quota_is_the_smallest_ratio_whatever_the_periods() -> None:
    # 300000/200000 = 1.5 CPUs above 50000/20000 = 2.5 CPUs: the parent binds
    lim = collect(tree(level(cpu_max="300000 200000"), level(cpu_max="50000 20000")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.cpu_quota == Limit(1.5, "/a")
    assert lim.cpu_count == 2  # 1.5 rounded up


def test_child_quota_tighter_than_parent() -> None:
    lim = collect(tree(level(cpu_max="400000 100000"), level(cpu_max="25000 100000")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.cpu_quota == Limit(0.25, "/a/b")
    assert lim.cpu_count == 1  # never below 1


def test_equal_limits_are_credited_to_the_upper_group() -> None:
    lim = collect(tree(level(memory_max="1000"), level(memory_max="1000")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.memory_max is not None and lim.memory_max.group == "/a"


def test_cpuset_narrower_than_quota() -> None:
    lim = collect(
        tree(level(cpu_max="400000 100000", cpuset_cpus_effective="0-7"),
             level(cpuset_cpus_effective="2-3")),
        affinity=ALL, ancestors_hidden=False,
    )
    assert lim.cpuset == frozenset({2, 3}) and lim.cpuset_group == "/a/b"
    assert lim.cpu_count == 2


def test_affinity_narrower_than_cpuset() -> None:
    lim = collect(tree(level(cpuset_cpus_effective="0-3")),
                  affinity=frozenset({1}), ancestors_hidden=False)
    assert lim.cpuset_group == "/a"
    assert lim.cpu_count == 1


def test_cpuset_source_is_where_the_set_last_narrowed() -> None:
    lim = collect(
        tree(level(cpuset_cpus_effective="0,2-3"), level(cpuset_cpus_effective="0,2-3")),
        affinity=ALL, ancestors_hidden=False,
    )
    assert lim.cpuset == frozenset({0, 2, 3}) and lim.cpuset_group == "/a"


def test_memory_tightest_and_available_from_each_levels_usage() -> None:
    lim = collect(
        tree(level(memory_max="1000", memory_current="900"),
             level(memory_max="2000", memory_high="1500", memory_current="100")),
        affinity=ALL, ancestors_hidden=False,
    )
    assert lim.memory_max == Limit(1000, "/a", 900)
    assert lim.memory_high == Limit(1500, "/a/b", 100)
    # the child's own room is 1400, but its parent has 100 left: the parent binds
    assert lim.memory_available == 100
    assert Limits is type(lim)


def test_memory_usage_above_the_limit_leaves_zero() -> None:
    lim = collect(tree(level(memory_high="100", memory_current="150")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.memory_available == 0


def test_no_memory_limit_is_none() -> None:
    lim = collect(tree(level(memory_max="max", memory_current="5")),
                  affinity=ALL, ancestors_hidden=False)
    assert lim.memory_max is None and lim.memory_available is None


def test_pids_swap_hugetlb_io() -> None:
    lim = collect(
        tree(
            level(pids_max="50", pids_current="7", memory_swap_max="0",
                  hugetlb_2MB_max="4194304", hugetlb_2MB_current="0",
                  hugetlb_2MB_rsvd_max="1",
                  io_max="8:0 rbps=1000 wbps=max riops=max wiops=10"),
            level(pids_max="100", pids_current="3",
                  hugetlb_2MB_max="2097152", hugetlb_2MB_current="0",
                  io_max="8:0 rbps=5000 wbps=max riops=max wiops=5"),
        ),
        affinity=ALL, ancestors_hidden=False,
    )
    assert lim.pids_max == Limit(50, "/a", 7)
    assert lim.pids_max.headroom == 43
    assert lim.memory_swap_max == Limit(0, "/a")
    assert lim.hugetlb == {"2MB": Limit(2097152, "/a/b", 0)}
    assert lim.io == {"8:0 rbps": Limit(1000, "/a"), "8:0 wiops": Limit(5, "/a/b")}


def test_controllers_off_the_cgroup2_hierarchy_are_unseen_not_guessed() -> None:
    levels = [("/", {"cgroup.controllers": b"hugetlb\n"})]
    v1 = {"memory": "memory:/x", "cpu": "cpu:/", "io": "blkio:/"}
    lim = collect(levels, affinity=frozenset({0, 1}), ancestors_hidden=False, v1=v1)
    assert set(lim.unseen) == {"cpu", "cpuset", "memory", "pids", "io"}
    assert "cgroup v1" in lim.unseen["memory"] and "memory:/x" in lim.unseen["memory"]
    assert lim.unseen["pids"] == "not on the cgroup2 hierarchy"
    assert lim.memory_max is None and lim.cpu_quota is None
    assert lim.cpu_count == 2


def test_as_dict_is_json_ready() -> None:
    import json

    lim = collect(tree(level(cpu_max="150000 100000", memory_max="268435456",
                             memory_current="1")),
                  affinity=ALL, ancestors_hidden=True)
    d = json.loads(json.dumps(lim.as_dict()))
    assert d["cpu_count"] == 2 and d["ancestors_hidden"] is True
    assert d["memory_max"] == {"value": 268435456, "group": "/a", "current": 1,
                               "version": 2, "hierarchy": ""}
    assert d["cpu_quota"]["value"] == 1.5


def test_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == frozenset({0, 1, 2, 3, 8, 10, 11})
    assert parse_cpu_list("\n") == frozenset()


@pytest.mark.parametrize(
    ("proc", "root", "group"),
    [("/a/b", "/", "/a/b"), ("/a/b", "/a", "/b"), ("/a", "/a", "/"), ("/", "/", "/")],
)
def test_group_below_mount_root(proc: str, root: str, group: str) -> None:
    assert _group_below(proc, root) == group


def test_group_outside_mount_root_is_refused() -> None:
    with pytest.raises(cgroup2.CgroupError, match="not below the root"):
        _group_below("/ab", "/a")


def test_working_set() -> None:
    assert MemoryStat(usage=100, inactive_file=30).working_set == 70
    assert MemoryStat(usage=10, inactive_file=30).working_set == 0
    assert MemoryStat(usage=None, inactive_file=30).working_set is None


def test_v1_controllers_of_this_process() -> None:
    # whatever the host: a dict of names, io for blkio, no name= hierarchies
    v1 = _v1_controllers()
    assert "blkio" not in v1 and not any(k.startswith("name=") for k in v1)


def test_cpu_count_without_cgroup2_is_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    import cgroup2.self as own

    def missing(*args: object, **kwargs: object) -> None:
        raise cgroup2.MountPointNotExistError("cgroups: no cgroup2 file system")

    monkeypatch.setattr(own, "default_mountpoint", missing)
    assert own.cpu_count() == len(os.sched_getaffinity(0))


def test_self_text_escapes_and_names_what_is_not_seen() -> None:
    from cgroup2.cli._self import _lines

    lim = collect(
        [("/", {"cgroup.controllers": b"cpu\n"}),
         ("/a\x1b[2J", {"cgroup.type": b"domain\n", "cpu.max": b"150000 100000\n"})],
        affinity=frozenset({0, 1, 2}), ancestors_hidden=True, v1={"memory": "memory:/m"},
    )
    text = "\n".join(_lines(lim, {"group": lim.group, "path": "/sys/fs/cgroup" + lim.group,
                                  "os_cpu_count": 3, "pressure": {}}))
    assert "\x1b" not in text
    assert "1.5 CPUs  set by /a" in text and "cpu_count" in text
    assert "memory (not seen)" in text and "cgroup v1" in text
    assert "hide" in text  # the namespace's top is said to hide the ancestors


def test_cpu_count_rounding_up_and_down() -> None:
    lim = collect(tree(level(cpu_max="150000 100000")), affinity=ALL, ancestors_hidden=False)
    assert lim.cpu_count == lim.count_cpus("up") == 2 and lim.count_cpus("down") == 1
    small = collect(tree(level(cpu_max="50000 100000")), affinity=ALL, ancestors_hidden=False)
    assert small.count_cpus("up") == small.count_cpus("down") == 1  # at least one
    with pytest.raises(cgroup2.CgroupError, match="rounding"):
        lim.count_cpus("nearest")


def test_v1_files_under_v2_names(tmp_path: Path) -> None:
    """A v1 group's files as collect() reads them: v1's "no limit" and a quota of -1 are
    ``max``; cpu.shares is never read; the working set comes from memory.stat."""
    import sys

    from cgroup2 import _fs, _v1

    unlimited = sys.maxsize - sys.maxsize % os.sysconf("SC_PAGE_SIZE")
    files = {
        "memory.limit_in_bytes": str(300 << 20), "memory.usage_in_bytes": str(100 << 20),
        "memory.memsw.limit_in_bytes": str(unlimited),
        "memory.soft_limit_in_bytes": str(unlimited),
        "memory.stat": f"cache 1\ntotal_inactive_file {30 << 20}\n",
        "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.shares": "2",
        "cpuset.cpus": "0-3", "pids.max": "max", "pids.current": "3",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    with _fs.Dir.open(str(tmp_path)) as d:
        levels = [("/", {k: v for c in _v1.BOUND
                         for k, v in _v1.level_files(d, c, last=True).items()})]
    assert levels[0][1]["cpu.max"] == b"max 100000"
    assert levels[0][1]["cpuset.cpus.effective"] == b"0-3\n"
    lim = collect(levels, affinity=frozenset(range(8)), ancestors_hidden=False, version=1,
                  hierarchy="/sys/fs/cgroup/memory")
    assert lim.memory_max is not None and lim.memory_max.value == 300 << 20
    assert lim.memory_max.version == 1 and lim.memory_max.hierarchy == "/sys/fs/cgroup/memory"
    assert lim.memory_memsw_max is None and lim.memory_soft_limit is None
    assert lim.memory_available == 200 << 20 and lim.memory_working_set == 70 << 20
    assert lim.cpu_quota is None and lim.cpu_count == 4 and lim.pids_max is None


def _tree_dirs(tmp_path: Path, pid: int) -> None:
    for d in ("a/x/leaf", "b/y/leaf", "a/z"):
        (tmp_path / d).mkdir(parents=True)
    for d in ("a/x/leaf", "b/y/leaf", "a/z"):
        (tmp_path / d / "cgroup.procs").write_text("1\n")
    (tmp_path / "b/y/leaf/cgroup.procs").write_text(f"1\n{pid}\n")


@pytest.mark.parametrize(
    ("proc", "root", "group"),
    [
        ("/leaf", "/../..", "/b/y/leaf"),  # unshare --cgroup without a remount
        ("/", "/../../..", "/b/y/leaf"),
        ("/../leaf", "/../../..", "/b/y/leaf"),  # moved out of the namespace's root
        ("/b/y/leaf", "/", "/b/y/leaf"),
        ("/b/y/leaf", "/b", "/y/leaf"),
    ],
)
def test_locate_finds_the_group_below_the_mount(
    tmp_path: Path, proc: str, root: str, group: str
) -> None:
    from cgroup2 import _fs
    from cgroup2.self import locate

    _tree_dirs(tmp_path, 4242)
    assert locate(proc, root, lambda: _fs.Dir.open(str(tmp_path)), 4242, what="m") == group


@pytest.mark.parametrize(
    ("proc", "root", "why"),
    [
        ("/../../leaf", "/..", "not below the root"),  # above what the mount shows
        ("/x", "/../b", "not below the root"),  # a mount of a sibling sub-tree
        ("/nothere", "/../..", "do not list this process"),
    ],
)
def test_locate_says_what_it_cannot_see(tmp_path: Path, proc: str, root: str, why: str) -> None:
    from cgroup2 import _fs
    from cgroup2.self import locate

    _tree_dirs(tmp_path, 4242)
    with pytest.raises(cgroup2.CgroupError, match=why):
        locate(proc, root, lambda: _fs.Dir.open(str(tmp_path)), 4242, what="m")


LEGACY_MOUNTS = """\
30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
33 30 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
"""


def test_v1_hierarchies_from_proc_cgroup_and_the_mounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Co-mounted controllers share a hierarchy; a named one (name=systemd) is none;
    a controller whose hierarchy is not mounted here has no mount point."""
    from cgroup2 import _mount, _v1

    rows = tuple(_mount._visible_rows(LEGACY_MOUNTS))
    monkeypatch.setattr(_v1, "_mounts", lambda: rows)
    hs = _v1.hierarchies("5:pids:/x\n4:memory:/a/b\n3:cpu,cpuacct:/\n1:name=systemd:/a\n0::/\n")
    assert set(hs) == {"cpu", "cpuacct", "memory", "pids"}
    assert hs["cpu"] is hs["cpuacct"] and hs["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert hs["cpu"].root == "/docker/abc" and hs["memory"].proc_path == "/a/b"
    assert hs["pids"].mountpoint is None
    msg = _v1.unavailable_message(["pids", "memory", "rdma"], "/sys/fs/cgroup/unified",
                                  ["hugetlb"], hs)
    assert msg == (
        "pids is bound to a cgroup v1 hierarchy (pids, not mounted here); memory is bound "
        "to the cgroup v1 hierarchy at /sys/fs/cgroup/memory on this host; cgroup2 manages "
        "only the unified hierarchy — boot with systemd.unified_cgroup_hierarchy=1 (or "
        "cgroup_no_v1=pids,memory) to move them; rdma: not offered by the cgroup2 mount "
        "/sys/fs/cgroup/unified (it offers: hugetlb)"
    )
