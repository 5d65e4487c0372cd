"""Bad input to every public entry point: a CgroupError subclass with a clear message,
raised before anything is written.

Each case runs against a real group on this machine's cgroup2 mount (the host tier):
``ctx.group`` exists (made by the test with a plain ``mkdir``), ``ctx.fresh`` is a path
below it that does not. The run's parent group (every file, every subgroup) and the
mount root's ``cgroup.subtree_control`` are snapshotted before and after the call and
must be unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Parent
from reltools import diff, no_leaks, snapshot  # noqa: F401

import cgroup2
from cgroup2 import (
    BFQ,
    CPU,
    IO,
    CgroupError,
    ControllerToggle,
    CPUMax,
    Entry,
    HugeTlb,
    HugeTlbEntry,
    InvalidGroupPathError,
    InvalidPidError,
    Manager,
    Memory,
    MemoryNotSupportedError,
    Pids,
    RDMAEntry,
    Resources,
    paths,
)
from cgroup2.devices.rules import DeviceRule
from cgroup2.oci import OCISpecError, to_resources


@dataclass(frozen=True)
class Ctx:
    mnt: str
    group: str  # an existing group, below the run's parent
    fresh: str  # a path below ``group`` that does not exist

    def m(self) -> Manager:
        return Manager.load(self.group, mountpoint=self.mnt)

    def create(self, resources: Resources) -> Manager:
        """``Manager.create`` of the fresh path with ``resources``."""
        return Manager.create(self.fresh, resources, mountpoint=self.mnt)


Fn = Callable[[Ctx], Any]
#: (id, the call, the error class, a regular expression the message must match)
CASES: list[tuple[str, Fn, type[CgroupError], str]] = []


def case(name: str, exc: type[CgroupError], msg: str) -> Callable[[Fn], Fn]:
    def deco(fn: Fn) -> Fn:
        CASES.append((name, fn, exc, msg))
        return fn

    return deco


def bad(name: str, exc: type[CgroupError], msg: str, fn: Fn) -> None:
    CASES.append((name, fn, exc, msg))


# --- group paths: verify_group_path, create, load, new_child -------------------------
BAD_GROUPS: list[tuple[str, object, str]] = [
    ("relative", "a/b", "must start with '/'"),
    ("empty", "", "must start with '/'"),
    ("dotdot-escape", "/../etc", "not clean"),
    ("dotdot-inner", "/a/../b", "not clean"),
    ("dot", "/a/./b", "not clean"),
    ("double-slash", "//a", "not clean"),
    ("trailing-slash", "/a/", "not clean"),
    ("fs-path", "/sys/fs/cgroup/x", "not the file system path"),
    ("nul", "/a\0b", "NUL"),
    ("newline", "/a\nb", "newline"),
    ("int", 42, "not a str"),
    ("bytes", b"/a", "not a str"),
    ("none", None, "not a str"),
]
for _id, _g, _msg in BAD_GROUPS:
    bad(f"verify_group_path-{_id}", InvalidGroupPathError, _msg,
        lambda c, g=_g: paths.verify_group_path(g))  # fmt: skip
    bad(f"create-{_id}", InvalidGroupPathError, _msg,
        lambda c, g=_g: Manager.create(g, mountpoint=c.mnt))  # fmt: skip
for _id, _g, _msg in BAD_GROUPS[:4]:
    bad(f"load-{_id}", InvalidGroupPathError, _msg,
        lambda c, g=_g: Manager.load(g, mountpoint=c.mnt))  # fmt: skip

BAD_CHILDREN: list[tuple[str, object, type[CgroupError], str]] = [
    ("dotdot", "..", CgroupError, "invalid child name"),
    ("dot", ".", CgroupError, "invalid child name"),
    ("slash", "a/b", CgroupError, "invalid child name"),
    ("absolute", "/etc", CgroupError, "invalid child name"),
    ("empty", "", CgroupError, "invalid child name"),
    ("newline", "a\nb", InvalidGroupPathError, "newline"),
    ("nul", "a\0b", InvalidGroupPathError, "NUL"),
    ("int", 7, CgroupError, "invalid child name"),
]
for _id, _name, _exc, _msg in BAD_CHILDREN:
    bad(f"new_child-{_id}", _exc, _msg, lambda c, n=_name: c.m().new_child(n))

bad("create-relative-mountpoint", CgroupError, "must be absolute",
    lambda c: Manager.create(c.fresh, mountpoint="sys/fs/cgroup"))  # fmt: skip
bad("create-resources-wrong-type", CgroupError, "must be Resources",
    lambda c: Manager.create(c.fresh, {"pids": 5}, mountpoint=c.mnt))  # type: ignore[arg-type]  # fmt: skip
bad("update-resources-wrong-type", CgroupError, "must be Resources",
    lambda c: c.m().update("memory.max=1"))  # type: ignore[arg-type]  # fmt: skip
bad("load-missing", cgroup2.CgroupDeletedError, "does not exist",
    lambda c: Manager.load(c.fresh, mountpoint=c.mnt))  # fmt: skip

# --- pids ----------------------------------------------------------------------------
for _id, _pid in [("zero", 0), ("negative", -1), ("bool", True), ("str", "1"), ("float", 1.0)]:
    bad(f"add_proc-{_id}", InvalidPidError, "greater than 0",
        lambda c, p=_pid: c.m().add_proc(p))  # fmt: skip
bad("add_thread-zero", InvalidPidError, "tid must be greater than 0", lambda c: c.m().add_thread(0))
bad("pid_group_path-zero", InvalidPidError, "greater than 0", lambda c: paths.pid_group_path(0))
bad("pid_group_path-str", InvalidPidError, "greater than 0",
    lambda c: paths.pid_group_path("self"))  # type: ignore[arg-type]  # fmt: skip

# --- controllers, type, move ------------------------------------------------------------
for _id, _cs in [("injection", ["cpu -memory"]), ("path", ["../x"]), ("empty", [""]),
                 ("not-str", [5]), ("plus-prefix", ["+cpu"])]:  # fmt: skip
    bad(f"toggle-{_id}", CgroupError, "invalid controller name",
        lambda c, cs=_cs: c.m().toggle_controllers(cs, ControllerToggle.ENABLE))  # fmt: skip
bad("toggle-bad-toggle", CgroupError, "invalid toggle",
    lambda c: c.m().toggle_controllers(["hugetlb"], "+"))  # type: ignore[arg-type]  # fmt: skip
bad("toggle-unavailable-memory", MemoryNotSupportedError, r"memory(: not offered| is bound to)",
    lambda c: c.m().toggle_controllers(["memory"], ControllerToggle.ENABLE))  # fmt: skip
bad("set_cgroup_type-domain", CgroupError, "only switch a group to 'threaded'",
    lambda c: c.m().set_cgroup_type("domain"))  # fmt: skip
bad("move_to-not-manager", CgroupError, "must be a Manager",
    lambda c: c.m().move_to(c.group))  # type: ignore[arg-type]  # fmt: skip

# --- resources: the dataclasses' own validation --------------------------------------
R: list[tuple[str, Callable[[], object], str]] = [
    ("cpu-weight-0", lambda: CPU(weight=0), r"cpu\.weight 0: out of range 1\.\.10000"),
    ("cpu-weight-10001", lambda: CPU(weight=10001), "out of range 1..10000"),
    ("cpu-weight-bool", lambda: CPU(weight=True), "must be an int"),
    ("cpu-weight-float", lambda: CPU(weight=1.5), "must be an int"),  # type: ignore[arg-type]
    ("cpu-max-garbage", lambda: CPU(max="abc"), "cpu.max 'abc'"),
    ("cpu-max-period-small", lambda: CPU(max="50000 10"), "period out of range"),
    ("cpu-max-3-fields", lambda: CPU(max="1 2 3"), "expected"),
    ("cpu-max-negative", lambda: CPU(max="-1 100000"), "quota must be"),
    ("cpumax-new-quota-0", lambda: CPUMax.new(0), "out of range"),
    ("cpu-cpus-descending", lambda: CPU(cpus="3-1"), "not ascending"),
    ("cpu-cpus-letters", lambda: CPU(cpus="a"), "malformed element"),
    ("cpu-cpus-newline", lambda: CPU(cpus="0\n1"), "newline inside the list"),
    ("cpu-mems-int", lambda: CPU(mems=5), "must be a str"),  # type: ignore[arg-type]
    ("cpu-idle-2", lambda: CPU(idle=2), "must be a bool"),  # type: ignore[arg-type]
    ("cpu-burst-negative", lambda: CPU(burst=-1), "out of range"),
    ("memory-max-minus-2", lambda: Memory(max=-2), "must be >= 0"),
    ("memory-max-suffix", lambda: Memory(max="1G"), "must be an int"),
    ("memory-max-2**64", lambda: Memory(max=2**64), "larger than the kernel's maximum"),
    ("memory-low-bool", lambda: Memory(low=True), "must be an int"),
    ("memory-oom-group-2", lambda: Memory(oom_group=2), "must be a bool"),  # type: ignore[arg-type]
    ("pids-max-minus-5", lambda: Pids(max=-5), "must be >= 0"),
    ("pids-max-2**31", lambda: Pids(max=2**31), "larger than"),
    ("pids-max-word", lambda: Pids(max="unlimited"), "must be an int"),
    ("io-weight-0", lambda: IO(weight=0), "out of range"),
    ("bfq-weight-1001", lambda: BFQ(weight=1001), "out of range 1..1000"),
    ("io-bfq-int", lambda: IO(bfq=5), "must be a BFQ"),  # type: ignore[arg-type]
    ("io-max-str", lambda: IO(max="8:0 rbps=1"), "must be a sequence"),  # type: ignore[arg-type]
    ("entry-type", lambda: Entry("xbps", 8, 0, 1), "must be one of"),  # type: ignore[arg-type]
    ("entry-major-negative", lambda: Entry("rbps", -1, 0, 1), "io.max major"),  # type: ignore[arg-type]
    ("entry-rate-minus-3", lambda: Entry("rbps", 8, 0, -3), "must be >= 0"),  # type: ignore[arg-type]
    ("rdma-device-space", lambda: RDMAEntry("mlx 5", 1, 1), "without spaces"),
    ("rdma-device-empty", lambda: RDMAEntry("", 1, 1), "non-empty"),
    ("rdma-handles-2**31", lambda: RDMAEntry("mlx5_0", 2**31, 1), "larger than"),
    ("hugetlb-size-form", lambda: HugeTlbEntry("2M", 1), "expected the kernel's form"),
    ("hugetlb-size-path", lambda: HugeTlbEntry("../2MB", 1), "expected the kernel's form"),
    ("hugetlb-limit", lambda: HugeTlbEntry("2MB", -2), "must be >= 0"),
    ("hugetlb-seq-item", lambda: HugeTlb(["2MB"]), "must be a HugeTlbEntry"),  # type: ignore[list-item]
    ("device-allow-str", lambda: DeviceRule(allow="yes"), "allow must be a bool"),  # type: ignore[arg-type]
    ("device-type", lambda: DeviceRule(True, type="x"), "type must be"),
    ("device-major", lambda: DeviceRule(True, "c", -1), "major must be"),
    ("device-access", lambda: DeviceRule(True, "c", 1, 3, "rwx"), "access must be"),
    ("device-access-empty", lambda: DeviceRule(True, "c", 1, 3, ""), "access must be"),
    ("resources-cpu-str", lambda: Resources(cpu="max"), "must be a CPU"),  # type: ignore[arg-type]
    ("resources-devices-item", lambda: Resources(devices=["a *:* rwm"]), "must be a DeviceRule"),  # type: ignore[list-item]
]
for _id, _make, _msg in R:
    # the settings refuse themselves when they are made: no Manager call can see them
    bad(f"resources-{_id}", CgroupError, _msg, lambda c, mk=_make: mk())

# --- unified: keys naming other files, values that cannot be written -----------------
UNIFIED: list[tuple[str, dict[Any, Any], str]] = [
    ("procs", {"cgroup.procs": "1"}, "not a limit of the group"),
    ("threads", {"cgroup.threads": "1"}, "not a limit of the group"),
    ("subtree", {"cgroup.subtree_control": "+hugetlb"}, "not a limit of the group"),
    ("kill", {"cgroup.kill": "1"}, "not a limit of the group"),
    ("freeze", {"cgroup.freeze": "1"}, "not a limit of the group"),
    ("type", {"cgroup.type": "threaded"}, "not a limit of the group"),
    ("dotdot", {"../cgroup.procs": "1"}, r"no '/'"),
    ("dotdot-only", {"..": "1"}, r"no '\.\.'"),
    ("dot", {".": "1"}, r"no '\.\.'"),
    ("slash", {"sub/pids.max": "1"}, r"no '/'"),
    ("absolute", {"/etc/passwd": "x"}, r"no '/'"),
    ("empty", {"": "1"}, "non-empty file name"),
    ("key-int", {5: "1"}, "non-empty file name"),
    ("value-int", {"pids.max": 5}, "must be a str"),
    ("value-nul", {"hugetlb.2MB.max": "1\0"}, "without NUL"),
]
for _id, _u, _msg in UNIFIED:
    bad(f"unified-{_id}", CgroupError, _msg,
        lambda c, u=_u: c.create(Resources(unified=u)))  # fmt: skip
bad("unified-not-mapping", CgroupError, "must be a mapping",
    lambda c: Resources(unified=[("pids.max", "1")]))  # type: ignore[arg-type]  # fmt: skip
bad("unified-missing-file", CgroupError, "has no file 'nosuch.file'.*nothing was written",
    lambda c: c.m().update(Resources(unified={"nosuch.file": "1"})))  # fmt: skip
bad("unified-missing-file-create", CgroupError, "has no file 'nosuch.file'",
    lambda c: c.create(Resources(unified={"nosuch.file": "1"})))  # fmt: skip
bad("unified-memory-unavailable", MemoryNotSupportedError, r"memory(: not offered| is bound to)",
    lambda c: c.create(Resources(unified={"memory.max": "1"})))  # fmt: skip
bad("create-memory-unavailable", MemoryNotSupportedError, r"memory(: not offered| is bound to)",
    lambda c: c.create(Resources(memory=Memory(max=1 << 30))))  # fmt: skip
bad("create-cpu-unavailable", cgroup2.CPUNotSupportedError, r"cpu(: not offered| is bound to)",
    lambda c: c.create(Resources(cpu=CPU(weight=50))))  # fmt: skip
bad("create-pids-unavailable", cgroup2.PidsNotSupportedError, r"pids(: not offered| is bound to)",
    lambda c: c.create(Resources(pids=Pids(max=10))))  # fmt: skip
bad("hugetlb-size-not-offered", CgroupError, "does not offer it",
    lambda c: c.m().update(Resources(hugetlb=[HugeTlbEntry("4MB", 1 << 22)])))  # fmt: skip
bad("hugetlb-size-not-offered-create", CgroupError, "does not offer it",
    lambda c: Manager.create(c.fresh, Resources(hugetlb=[HugeTlbEntry("4MB", 1)]),
                             mountpoint=c.mnt))  # fmt: skip

# --- OCI specs -----------------------------------------------------------------------
OCI: list[tuple[str, object, str]] = [
    ("not-object", "memory=1G", r"linux\.resources = 'memory=1G': must be a JSON object"),
    ("linux-not-object", {"linux": []}, r"^cgroups: invalid OCI resources: linux = \[\]"),
    ("memory-limit-str", {"memory": {"limit": "1G"}}, r"memory\.limit = '1G'"),
    ("memory-limit-bool", {"memory": {"limit": True}}, r"memory\.limit = True"),
    ("memory-swap-below-limit", {"memory": {"limit": 100, "swap": 50}}, "must be >= memory.limit"),
    ("memory-limit-minus-2", {"memory": {"limit": -2}}, r"memory\.limit = -2"),
    ("cpu-shares-negative", {"cpu": {"shares": -5}}, r"cpu\.shares = -5"),
    ("cpu-quota-float", {"cpu": {"quota": 1.5}}, r"cpu\.quota = 1\.5"),
    ("cpu-period-huge", {"cpu": {"quota": 50000, "period": 2**40}}, r"cpu"),
    ("cpu-cpus-bad", {"cpu": {"cpus": "0-"}}, r"cpu\.cpus"),
    ("pids-limit-str", {"pids": {"limit": "x"}}, r"pids\.limit = 'x'"),
    ("blkio-weight-5", {"blockIO": {"weight": 5}}, r"blockIO\.weight = 5"),
    ("blkio-device-no-major", {"blockIO": {"throttleReadBpsDevice": [{"minor": 0, "rate": 1}]}},
     r"major.*is required"),
    ("hugepage-no-limit", {"hugepageLimits": [{"pageSize": "2MB"}]}, r"limit.*is required"),
    ("hugepage-bad-size", {"hugepageLimits": [{"pageSize": "2 MB", "limit": 1}]}, "pageSize"),
    ("rdma-empty-device", {"rdma": {"": {"hcaHandles": 1}}}, "device name"),
    ("devices-type-x", {"devices": [{"allow": True, "type": "x"}]}, r"devices\[0\]"),
    ("devices-no-allow", {"devices": [{"type": "c"}]}, r"allow.*is required"),
    ("devices-access", {"devices": [{"allow": True, "access": "rwz"}]}, "subset of 'rwm'"),
    ("unified-procs", {"unified": {"cgroup.procs": "1"}}, "not a limit of the group"),
    ("unified-escape", {"unified": {"../../etc/x": "1"}}, r"no '/'"),
    ("unified-value-int", {"unified": {"pids.max": 1}}, "must be a string"),
]
for _id, _spec, _msg in OCI:
    bad(f"oci-{_id}", OCISpecError, _msg, lambda c, s=_spec: to_resources(s))  # type: ignore[arg-type]


# --- freezer, stats, events, devices --------------------------------------------------
for _op in ("freeze", "thaw", "kill"):
    bad(f"{_op}-timeout-str", CgroupError, "timeout",
        lambda c, op=_op: getattr(c.m(), op)(timeout="5"))  # fmt: skip
    bad(f"{_op}-timeout-negative", CgroupError, "timeout",
        lambda c, op=_op: getattr(c.m(), op)(timeout=-1))  # fmt: skip
bad("stat-mask-str", CgroupError, "mask", lambda c: c.m().stat("all"))  # type: ignore[arg-type]
bad("stat-mask-int", CgroupError, "mask", lambda c: c.m().stat(3))  # type: ignore[arg-type]
bad("create-over-interface-file", CgroupError, "cgroup.procs",
    lambda c: Manager.create(c.group + "/cgroup.procs", mountpoint=c.mnt))  # fmt: skip
bad("create-below-interface-file", CgroupError, "cgroup.procs",
    lambda c: Manager.create(c.group + "/cgroup.procs/x", mountpoint=c.mnt))  # fmt: skip
bad("load-interface-file", cgroup2.CgroupDeletedError, "not a group directory",
    lambda c: Manager.load(c.group + "/cgroup.procs", mountpoint=c.mnt))  # fmt: skip
bad("toggle-str-not-list", CgroupError, "invalid controllers|sequence|list",
    lambda c: c.m().toggle_controllers("hugetlb", ControllerToggle.ENABLE))  # fmt: skip


def _events(name: str) -> Any:
    from cgroup2 import events

    return getattr(events, name)


bad("event_stream-relative", CgroupError, "not an absolute path",
    lambda c: _events("EventStream")("relative/path"))  # fmt: skip
bad("event_stream-missing", cgroup2.CgroupDeletedError, "does not exist",
    lambda c: _events("EventStream")(c.mnt + c.fresh))  # fmt: skip
bad("cgroup_event_stream-int", CgroupError, "not an absolute path",
    lambda c: _events("CgroupEventStream")(5))  # fmt: skip
bad("events-no-memory-controller", MemoryNotSupportedError, "memory",
    lambda c: c.m().events())  # fmt: skip
bad("memory_event_fd-no-memory-controller", MemoryNotSupportedError, "memory",
    lambda c: c.m().memory_event_fd())  # fmt: skip


def _watch_poll(c: Ctx, timeout: object) -> None:
    with _events("EventWatcher")() as w:
        w.poll(timeout)


bad("watcher-poll-timeout-str", CgroupError, "timeout", lambda c: _watch_poll(c, "1"))


def _device_filter(rules: object) -> Any:
    from cgroup2.devices import device_filter

    return device_filter(rules)  # type: ignore[arg-type]


def _attach(c: Ctx, license: object, fd: int | None) -> None:
    from cgroup2.devices import DeviceRule as Rule
    from cgroup2.devices import load_attach_device_filter

    prog, lic = _device_filter([Rule(True)])
    dfd = os.open(c.mnt + c.group, os.O_RDONLY | os.O_DIRECTORY)
    try:
        lic = license if license else lic
        detach = load_attach_device_filter(prog, lic, dfd if fd is None else fd)  # type: ignore[arg-type]
        detach()  # (only reached if the call wrongly succeeded)
    finally:
        os.close(dfd)


bad("device_filter-int-rule", CgroupError, "DeviceRule is required", lambda c: _device_filter([1]))
bad("device_filter-str", CgroupError, "DeviceRule", lambda c: _device_filter("a *:* rwm"))
bad("device_filter-none", CgroupError, "rules", lambda c: _device_filter(None))
bad("load_attach-license-int", CgroupError, "license", lambda c: _attach(c, 5, None))
bad("load_attach-closed-fd", CgroupError, "EBADF", lambda c: _attach(c, None, 99999))
bad("load_attach-not-a-group", CgroupError, "BPF", lambda c: _attach(c, None, 0))
bad("resources-devices-and-bad-unified", CgroupError, "not a limit",
    lambda c: c.m().update(Resources(devices=[DeviceRule(False, "c", 1, 3)],
                                     unified={"cgroup.procs": "1"})))  # fmt: skip

bad("update-devices-missing-file", CgroupError, "has no file 'nosuch.file'",
    lambda c: c.m().update(Resources(devices=[DeviceRule(False, "c", 1, 3)],
                                     unified={"nosuch.file": "1"})))  # fmt: skip
bad("create-devices-missing-file", CgroupError, "has no file 'nosuch.file'",
    lambda c: c.create(Resources(devices=[DeviceRule(True)],
                                 unified={"nosuch.file": "1"})))  # fmt: skip
bad("update-devices-kernel-refuses", cgroup2.KernelError, "cgroup.max.depth",
    lambda c: c.m().update(Resources(devices=[DeviceRule(False, "c", 1, 3)],
                                     unified={"cgroup.max.depth": "x"})))  # fmt: skip


#: Cases that show an open defect: expected to fail until the owner fixes it (strict, so a
#: fix turns them into failures that say "now remove the mark").
KNOWN: dict[str, str] = {}


# --- the test ------------------------------------------------------------------------


@pytest.fixture
def ctx(cg_parent: Parent, cg_path: str) -> Any:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        yield Ctx(cg_parent.mountpoint, cg_path, cg_path + "/fresh")
    finally:
        os.rmdir(fs)


def _root_subtree(mnt: str) -> str:
    with open(os.path.join(mnt, "cgroup.subtree_control")) as f:
        return f.read()


#: Cases that need a controller to be missing from the mount (this host's hybrid mount
#: offers hugetlb only); elsewhere they are skipped.
NEEDS_ABSENT = {
    "toggle-unavailable-memory": "memory",
    "unified-memory-unavailable": "memory",
    "create-memory-unavailable": "memory",
    "create-cpu-unavailable": "cpu",
    "create-pids-unavailable": "pids",
    "events-no-memory-controller": "memory",
    "memory_event_fd-no-memory-controller": "memory",
}


def _params() -> list[Any]:
    out = []
    for name, fn, exc, msg in CASES:
        marks = []
        if name in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[name]))
        out.append(pytest.param(fn, exc, msg, NEEDS_ABSENT.get(name), id=name, marks=marks))
    return out


@pytest.mark.parametrize(("fn", "exc", "msg", "absent"), _params())
def test_bad_input_refused_before_any_write(
    cg_parent: Parent, ctx: Ctx, fn: Fn, exc: type[CgroupError], msg: str, absent: str | None
) -> None:
    if absent is not None:
        with open(os.path.join(ctx.mnt, "cgroup.controllers")) as f:
            if absent in f.read().split():
                pytest.skip(f"needs a mount without the {absent} controller")
    root = _root_subtree(ctx.mnt)
    before = snapshot(cg_parent.fs_path)
    assert ctx.group.rsplit("/", 1)[1] + "/" in before
    with pytest.raises(CgroupError) as e:
        fn(ctx)
    after = snapshot(cg_parent.fs_path)
    assert isinstance(e.value, exc), f"{type(e.value).__name__} is not a {exc.__name__}: {e.value}"
    text = str(e.value)
    assert text.startswith("cgroups: "), text
    assert re.search(msg, text), f"message {text!r} does not say {msg!r}"
    assert diff(before, after) == [], "written although the input was refused"
    assert _root_subtree(ctx.mnt) == root


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60, len(CASES)
    assert len({c[0] for c in CASES}) == len(CASES), "duplicate case ids"
    assert set(KNOWN) <= {c[0] for c in CASES}
    assert set(NEEDS_ABSENT) <= {c[0] for c in CASES}
