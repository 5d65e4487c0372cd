"""The Manager's lifecycle and process moves on the real cgroup2 mount, pinned exactly.

What each of ``load``, ``create``, ``new_child``, ``procs``, ``add_proc``, ``move_to`` and
``delete`` does to the groups and processes, and the exact errors of their refusals:
which directories exist afterwards, which subtree_control enables what, which group each
process ends in. A failed ``create`` removes what it made and only that.

Most tests see a group of their own as the mount (``own``: ``Manager(own, "/a")``), so
that everything the library writes, even the mount's "root group", is the test's own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import no_leaks, read_procs, sleeper_in, stop  # noqa: F401

import cgroup2.manager as mgr
from cgroup2 import (
    CgroupDeletedError,
    CgroupError,
    HugeTlbEntry,
    InvalidGroupPathError,
    InvalidPidError,
    KernelError,
    Manager,
    NotCgroup2Error,
    Resources,
)
from cgroup2._fs import Dir

MiB = 1 << 20
HUGE = Resources(hugetlb=[HugeTlbEntry("2MB", 4 * MiB)])


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def subtree_control(path: str) -> list[str]:
    return read(path + "/cgroup.subtree_control").split()


def dirs(path: str) -> list[str]:
    """The child groups of the group at ``path``."""
    return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))


def group_of(pid: int) -> str:
    """The cgroup2 group of ``pid`` (``0::`` line of /proc/PID/cgroup)."""
    for line in read(f"/proc/{pid}/cgroup").splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"no cgroup2 line for {pid}")


@pytest.fixture
def own(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """A group made for the test (without the library), whose directory the test uses as
    the mount point: it offers hugetlb (enabled in the run's parent), enables nothing."""
    if "hugetlb" not in subtree_control(cg_parent.fs_path):
        write(cg_parent.fs_path + "/cgroup.subtree_control", "+hugetlb")
    path = cg_parent.mountpoint + cg_path
    os.mkdir(path)
    try:
        yield path
    finally:
        remove_tree(path)


@pytest.fixture
def sleepers() -> Iterator[Any]:
    """Start ``sleep`` processes inside given groups; each is killed and reaped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(path: str) -> subprocess.Popen[bytes]:
        p = sleeper_in(path)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            stop(p)


# --- load -------------------------------------------------------------------------------


def test_load_gives_the_group_at_its_mount_and_names_what_is_missing(own: str) -> None:
    os.mkdir(own + "/a")
    m = Manager.load("/a", mountpoint=own)
    assert (m.mountpoint, m.group, m.path, m.unit) == (own, "/a", own + "/a", None)
    assert own in mgr._CHECKED_MOUNTS  # checked once, then remembered
    with pytest.raises(CgroupDeletedError) as e:
        Manager.load("/nope", mountpoint=own)
    assert str(e.value) == f"cgroups: group /nope does not exist (no directory {own}/nope)"
    assert (e.value.errno, e.value.path) == (errno.ENOENT, own + "/nope")
    with pytest.raises(CgroupDeletedError) as e:
        Manager.load("/cgroup.procs", mountpoint=own)
    assert str(e.value) == (
        f"cgroups: group /cgroup.procs does not exist ({own}/cgroup.procs is not a group "
        f"directory)"
    )
    assert (e.value.errno, e.value.path) == (errno.ENOTDIR, own + "/cgroup.procs")


@pytest.mark.parametrize(
    ("mountpoint", "what", "err"),
    [
        ("/tmp", "a directory that is not on a cgroup2 file system", None),
        ("/nonexistent-cgroup2-mount", "no such directory", errno.ENOENT),
        ("/proc/self/mountinfo", "not a directory", errno.ENOTDIR),
    ],
)
def test_load_and_create_refuse_a_mountpoint_that_is_not_cgroup2(
    mountpoint: str, what: str, err: int | None
) -> None:
    for op in (Manager.load, Manager.create):
        with pytest.raises(NotCgroup2Error) as e:
            op("/x", mountpoint=mountpoint)
        assert str(e.value) == (
            f"cgroups: invalid mountpoint {mountpoint}: {what} (see /proc/self/mountinfo)"
        )
        assert (e.value.path, e.value.errno) == (mountpoint, err)
        assert mountpoint not in mgr._CHECKED_MOUNTS
    assert not os.path.exists("/tmp/x")


def test_a_mountpoint_this_user_may_not_open_is_named_so(own: str) -> None:
    """A non-root caller given a directory it may not open as the mount."""
    with tempfile.TemporaryDirectory() as closed:
        os.chmod(closed, 0o700)
        with pytest.raises(NotCgroup2Error, match="not on a cgroup2 file system"):
            Manager.load("/x", mountpoint=closed)  # root may open it
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    Manager.load("/x", mountpoint=closed)
                    msg = "loaded"
                except CgroupError as e:
                    msg = f"{type(e).__name__} {e.errno}: {e}"
                os.write(w, msg.encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            report = f.read().decode()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert report == (
        f"NotCgroup2Error {errno.EACCES}: cgroups: invalid mountpoint {closed}: a directory "
        f"this process may not open (Permission denied) (see /proc/self/mountinfo)"
    )


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


def test_every_operation_resolves_from_the_mount_it_was_given(own: str, sleepers: Any) -> None:
    """A group bind-mounted below the cgroup2 mount, given as the mount point: each
    operation opens its groups from there. (From the outermost mount, the path would
    cross the bind mount, which the file layer refuses.)"""
    os.mkdir(own + "/src")
    os.mkdir(own + "/mnt")
    write(own + "/cgroup.subtree_control", "+hugetlb")
    mp, real = own + "/mnt", own + "/src"
    with bound(real, mp):
        a = Manager.create("/a", HUGE, mountpoint=mp)  # the tree: enables hugetlb in mp
        assert subtree_control(real) == ["hugetlb"]
        assert read(real + "/a/hugetlb.2MB.max") == f"{4 * MiB}\n"
        b = Manager.create("/a/b", mountpoint=mp)  # one mkdir
        assert Manager.load("/a/b", mountpoint=mp) == b and os.path.isdir(real + "/a/b")
        c = a.new_child("c")
        assert c.path == mp + "/a/c" and os.path.isdir(real + "/a/c")
        Manager.create("/a", HUGE, mountpoint=mp)  # exists: updated
        with pytest.raises(KernelError):
            Manager.create("/x/y", Resources(unified={"cgroup.max.depth": "bogus"}),
                           mountpoint=mp)
        assert dirs(real) == ["a"]  # what the failed create made was removed
        os.mkdir(own + "/idle")
        p, q = sleepers(own + "/idle"), sleepers(own + "/idle")
        b.add_proc(p.pid)
        b.add_proc(q.pid)
        assert sorted(b.procs()) == sorted([p.pid, q.pid]) == sorted(read_procs(real + "/a/b"))
        b.move_to(c)
        assert sorted(read_procs(real + "/a/c")) == sorted([p.pid, q.pid])
        c.freeze(timeout=30)
        assert read(real + "/a/c/cgroup.events").split()[-1] == "1"
        c.thaw(timeout=30)
        c.kill(timeout=30)
        assert [p.wait(timeout=30), q.wait(timeout=30)] == [-signal.SIGKILL] * 2
        r = sleepers(real + "/a/c")
        a.delete(kill=True)
        assert dirs(real) == [] and r.wait(timeout=30) == -signal.SIGKILL


# --- create -------------------------------------------------------------------------------


def test_create_enables_the_controllers_top_down_and_writes_the_values(own: str) -> None:
    m = Manager.create("/a/b/c", HUGE, mountpoint=own)
    assert (m.mountpoint, m.group, m.path) == (own, "/a/b/c", own + "/a/b/c")
    for ancestor in (own, own + "/a", own + "/a/b"):
        assert subtree_control(ancestor) == ["hugetlb"], ancestor
    assert subtree_control(m.path) == []
    assert read(m.path + "/hugetlb.2MB.max") == f"{4 * MiB}\n"
    # below a parent that enables hugetlb already: the one-mkdir path
    sib = Manager.create("/a/b/d", HUGE, mountpoint=own, exist_ok=False, parents=False)
    assert read(sib.path + "/hugetlb.2MB.max") == f"{4 * MiB}\n"
    # without resources nothing is enabled on the way
    Manager.create("/p/q", mountpoint=own)
    assert subtree_control(own + "/p") == [] and os.path.isdir(own + "/p/q")


def test_create_through_the_tree_with_an_existing_parent_and_parents_false(own: str) -> None:
    """The parent exists but does not enable hugetlb: the general path, which with
    ``parents=False`` accepts the existing ancestors."""
    os.makedirs(own + "/p/x")
    m = Manager.create("/p/q", HUGE, mountpoint=own, exist_ok=False, parents=False)
    assert subtree_control(own + "/p") == ["hugetlb"]
    assert read(m.path + "/hugetlb.2MB.max") == f"{4 * MiB}\n"
    # the existing group is refused untouched, the controllers enabled on the way stay
    initial = read(own + "/p/x/hugetlb.2MB.max")
    assert initial != f"{4 * MiB}\n"
    with pytest.raises(KernelError) as e:
        Manager.create("/p/x", HUGE, mountpoint=own, exist_ok=False)
    assert e.value.errno == errno.EEXIST and e.value.path == own + "/p/x"
    assert str(e.value) == (
        f"cgroups: mkdir {own}/p/x: [Errno 17 EEXIST] File exists (group /p/x exists "
        f"already; it was left as it is)"
    )
    assert read(own + "/p/x/hugetlb.2MB.max") == initial
    # with exist_ok (the default) it is updated
    again = Manager.create("/p/x", HUGE, mountpoint=own)
    assert again.path == own + "/p/x"
    assert read(own + "/p/x/hugetlb.2MB.max") == f"{4 * MiB}\n"


def test_create_without_a_mountpoint_uses_the_default_mount(
    cg_parent: Parent, cg_path: str
) -> None:
    m = Manager.create(cg_path + "/d")
    try:
        assert (m.mountpoint, m.path) == (cg_parent.mountpoint, cg_parent.mountpoint + m.group)
        assert os.path.isdir(m.path)
        # the mount's root group "exists": loaded, nothing is written (no resources)
        top = Manager.create("/")
        assert (top.mountpoint, top.group, top.path) == (m.mountpoint, "/", m.mountpoint)
    finally:
        os.rmdir(m.path)
        os.rmdir(os.path.dirname(m.path))


def test_create_of_an_existing_group_updates_it_once(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both paths: the one mkdir (the parent enables what is needed) and the tree (it
    does not yet: /r enables nothing)."""
    os.makedirs(own + "/r/s")
    updates: list[str] = []
    real = Manager.update

    def counted(self: Manager, resources: Resources | None) -> None:
        updates.append(self.group)
        real(self, resources)

    monkeypatch.setattr(Manager, "update", counted)
    Manager.create("/r/s", HUGE, mountpoint=own)  # the tree: enables hugetlb in / and /r
    assert updates == ["/r/s"] and subtree_control(own + "/r") == ["hugetlb"]
    assert read(own + "/r/s/hugetlb.2MB.max") == f"{4 * MiB}\n"
    write(own + "/r/s/hugetlb.2MB.max", "max")
    Manager.create("/r/s", HUGE, mountpoint=own)  # one mkdir, which finds it
    assert updates == ["/r/s", "/r/s"]
    assert read(own + "/r/s/hugetlb.2MB.max") == f"{4 * MiB}\n"


def test_create_refuses_a_missing_parent_with_parents_false(own: str) -> None:
    for res in (None, HUGE):
        with pytest.raises(CgroupDeletedError) as e:
            Manager.create("/no/x", res, mountpoint=own, parents=False)
        assert str(e.value) == (
            "cgroups: cannot create group /no/x: its parent group /no does not exist; "
            "create it first"
        )
        assert (e.value.errno, e.value.path) == (errno.ENOENT, own + "/no/x")
        assert not os.path.exists(own + "/no")


def test_create_of_the_mount_root_updates_it_or_refuses_with_exist_ok_false(own: str) -> None:
    m = Manager.create("/", HUGE, mountpoint=own)
    assert (m.group, m.path) == ("/", own)
    assert read(own + "/hugetlb.2MB.max") == f"{4 * MiB}\n"
    with pytest.raises(KernelError) as e:
        Manager.create("/", mountpoint=own, exist_ok=False)
    assert e.value.errno == errno.EEXIST
    assert os.path.isdir(own)


def test_create_refuses_a_name_of_an_interface_file_at_any_level(own: str) -> None:
    for group in ("/ok/cgroup.x", "/memory.high/ok", "/cgroup.procs"):
        with pytest.raises(InvalidGroupPathError) as e:
            Manager.create(group, mountpoint=own)
        bad = next(n for n in group.split("/") if "." in n)
        assert f"invalid group name {bad!r}" in str(e.value)
        assert dirs(own) == []


def test_create_refuses_resources_that_are_not_resources_or_a_page_size_not_offered(
    own: str,
) -> None:
    with pytest.raises(CgroupError) as e:
        Manager.create("/a", "hugetlb", mountpoint=own)  # type: ignore[arg-type]
    assert str(e.value) == "cgroups: invalid resources 'hugetlb': must be Resources"
    with pytest.raises(CgroupError) as e:
        Manager.create("/a", Resources(hugetlb=[HugeTlbEntry("4MB", 1)]), mountpoint=own)
    assert f"does not offer it for {own}/a (offers: " in str(e.value)
    assert str(e.value).endswith("; nothing was written")
    assert not os.path.exists(own + "/a") and subtree_control(own) == []


def test_a_failed_create_removes_what_it_made_and_only_that(own: str) -> None:
    """The kernel refuses a mkdir (cgroup.max.depth of an existing group) or a value:
    the directories made by the call go, the existing ones stay."""
    os.mkdir(own + "/a")
    write(own + "/a/cgroup.max.depth", "2")
    with pytest.raises(KernelError) as e:
        Manager.create("/a/x/y/z", HUGE, mountpoint=own)  # z would be 3 levels below a
    assert e.value.errno == errno.EAGAIN and e.value.path == own + "/a/x/y/z"
    assert os.path.isdir(own + "/a") and not os.path.exists(own + "/a/x")
    with pytest.raises(KernelError):
        Manager.create("/a/x/y/z", mountpoint=own)
    assert os.path.isdir(own + "/a") and not os.path.exists(own + "/a/x")
    # one mkdir refused (no descendants allowed): nothing made, the parent stays
    write(own + "/a/cgroup.max.descendants", "0")
    with pytest.raises(KernelError) as e:
        Manager.create("/a/x", mountpoint=own)
    assert e.value.errno == errno.EAGAIN
    assert dirs(own + "/a") == []
    # a value refused: in an existing group the group stays (only what was made goes)
    bad = Resources(unified={"cgroup.max.depth": "bogus"})
    for group in ("/a", "/a/b"):
        write(own + "/a/cgroup.max.descendants", "max")
        os.makedirs(own + "/a/b", exist_ok=True)
        with pytest.raises(KernelError) as e:
            Manager.create(group, bad, mountpoint=own)
        assert e.value.errno == errno.EINVAL
        assert os.path.isdir(own + group)
    with pytest.raises(KernelError):
        Manager.create("/a/new", bad, mountpoint=own)
    assert not os.path.exists(own + "/a/new")
    with pytest.raises(KernelError):
        Manager.create("/n1/n2", Resources(hugetlb=HUGE.hugetlb, unified=bad.unified),
                       mountpoint=own)
    assert not os.path.exists(own + "/n1")


def test_mkdir_note_notes_only_what_it_made(own: str) -> None:
    created: list[str] = []
    with Dir.open(own, own) as d:
        assert mgr._mkdir_note(d, "a", created) is True
        assert created == [own + "/a"] and os.path.isdir(own + "/a")
        assert mgr._mkdir_note(d, "a", created) is False
        assert mgr._mkdir_noted(d, "b", created) is True
        assert mgr._mkdir_noted(d, "b", created) is False
        assert created == [own + "/a", own + "/b"]
        write(own + "/cgroup.max.descendants", "2")
        with pytest.raises(KernelError) as e:
            mgr._mkdir_noted(d, "c", created)
        assert e.value.errno == errno.EAGAIN and created == [own + "/a", own + "/b"]


def test_remove_created_goes_deepest_first_and_past_what_cannot_go(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.makedirs(own + "/a/b/c")
    os.makedirs(own + "/busy")
    p = sleepers(own + "/busy")
    created = [own + "/busy", own + "/a", own + "/a/b", own + "/a/b/c", own + "/gone/x"]
    tries: list[tuple[str, float]] = []
    real = mgr._rmdir_retry

    def retry(d: Dir, name: str, timeout: float = -1) -> None:
        tries.append((name, timeout))
        real(d, name, timeout)

    monkeypatch.setattr(mgr, "_rmdir_retry", retry)
    mgr._remove_created(created, own)
    # deepest first; a busy one is retried for a second only (the caller's error waits)
    assert tries == [("c", 1.0), ("b", 1.0), ("a", 1.0), ("busy", 1.0)]
    assert dirs(own) == ["busy"]
    assert read_procs(own + "/busy") == [p.pid]


def test_update_existing_refuses_a_file_and_a_name_that_vanished(own: str) -> None:
    m = Manager(own, "/cgroup.procs")
    with Dir.open(own, own) as d:
        with pytest.raises(CgroupError) as e:
            m._update_existing(d, "cgroup.procs", None)
        assert str(e.value) == (
            f"cgroups: cannot create group '/cgroup.procs': {own}/cgroup.procs exists and "
            f"is not a group directory (a file of the parent group)"
        )
        with pytest.raises(KernelError) as e:
            m._update_existing(d, "cgroup.procs", None, exist_ok=False)
        assert e.value.errno == errno.EEXIST
        gone = Manager(own, "/gone")
        with pytest.raises(KernelError) as e:
            gone._update_existing(d, "gone", None)
        assert (e.value.errno, e.value.path) == (errno.ENOENT, own + "/gone")
        assert str(e.value).startswith(f"cgroups: stat {own}/gone: [Errno 2 ENOENT]")
        os.mkdir(own + "/g")
        Manager(own, "/g")._update_existing(d, "g", Resources(unified={"cgroup.max.depth": "3"}))
        assert read(own + "/g/cgroup.max.depth") == "3\n"


# --- new_child ----------------------------------------------------------------------------


def test_new_child_below_a_group_and_below_the_mount_root(own: str) -> None:
    top = Manager(own, "/")
    a = top.new_child("a")
    assert (a.mountpoint, a.group, a.path) == (own, "/a", own + "/a")
    assert top.new_child("Xy").path == own + "/Xy"  # a name that starts with X
    b = a.new_child("b", HUGE)
    assert (b.mountpoint, b.group, b.path) == (own, "/a/b", own + "/a/b")
    assert read(b.path + "/hugetlb.2MB.max") == f"{4 * MiB}\n"
    assert a.new_child("b") == b  # exists: loaded
    for bad in ("a/b", "..", ".", "", 5, None):
        with pytest.raises(CgroupError) as e:
            a.new_child(bad)  # type: ignore[arg-type]
        assert str(e.value) == (
            f"cgroups: invalid child name {bad!r}: one path element, no '/', '.' or '..'"
        )
    with pytest.raises(InvalidGroupPathError):
        a.new_child("cgroup.x")
    assert dirs(own + "/a") == ["b"]


# --- processes ----------------------------------------------------------------------------


def test_add_proc_and_procs_of_a_unit_with_its_leaf(own: str, sleepers: Any) -> None:
    """A systemd unit's processes go to (and are read from) its sub-group ``leaf``; a
    group of no unit with a child of that name is its own; threads never go there."""
    for d in ("/u", "/u/leaf", "/plain", "/plain/leaf", "/bare"):
        os.mkdir(own + d)
    unit = Manager(own, "/u", unit="x.scope")
    plain = Manager(own, "/plain")
    bare = Manager(own, "/bare", unit="y.scope")
    a, b, c, d = (sleepers(own) for _ in range(4))
    unit.add_proc(a.pid)
    plain.add_proc(b.pid)
    bare.add_proc(c.pid)
    assert read_procs(own + "/u/leaf") == [a.pid] and read_procs(own + "/u") == []
    assert read_procs(own + "/plain") == [b.pid] and read_procs(own + "/plain/leaf") == []
    assert read_procs(own + "/bare") == [c.pid]
    write(own + "/u/cgroup.procs", str(d.pid))  # one of the unit's group itself
    assert unit.procs() == [d.pid, a.pid]
    unit.add_thread(d.pid)  # the main thread, already in the unit's own group
    assert read_procs(own + "/u") == [d.pid]
    assert plain.procs() == [b.pid] and bare.procs() == [c.pid]
    assert unit.procs(recursive=True) == [d.pid, a.pid]
    for bad in (-1, True, "5", 1.0):
        with pytest.raises(InvalidPidError) as e:
            plain.add_proc(bad)  # type: ignore[arg-type]
        assert str(e.value) == f"cgroups: pid must be greater than 0, got {bad!r}"
        with pytest.raises(InvalidPidError) as e:
            plain.add_thread(bad)  # type: ignore[arg-type]
        assert str(e.value) == f"cgroups: tid must be greater than 0, got {bad!r}"
    # 0 is "the writer" to the kernel: tried in a child, which a wrong check would move
    for add, what in ((plain.add_proc, "pid"), (plain.add_thread, "tid")):
        assert in_child(lambda add=add: add(0)) == (
            f"InvalidPidError: cgroups: {what} must be greater than 0, got 0"
        )
    assert read_procs(own + "/plain") == [b.pid]


def in_child(fn: Any) -> str:
    """What ``fn`` raised in a forked child (``Type: message``), or "returned"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            try:
                fn()
                msg = "returned"
            except BaseException as e:
                msg = f"{type(e).__name__}: {e}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    return report


def test_procs_recursive_lists_every_level(own: str, sleepers: Any) -> None:
    for d in ("/t", "/t/a", "/t/a/deep", "/t/b"):
        os.mkdir(own + d)
    ps = {d: sleepers(own + d).pid for d in ("/t", "/t/a", "/t/a/deep", "/t/b")}
    m = Manager(own, "/t")
    assert m.procs() == [ps["/t"]]
    assert m.procs(recursive=True) == [ps[d] for d in ("/t", "/t/a", "/t/a/deep", "/t/b")]
    assert Manager(own, "/t/a").procs(recursive=True) == [ps["/t/a"], ps["/t/a/deep"]]


def test_subtree_pids_skips_a_group_removed_while_walked(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in ("/t", "/t/a", "/t/b"):
        os.mkdir(own + d)
    p = sleepers(own + "/t/b")
    real = mgr.walk

    def walk_removing_a(top: Dir, **kw: Any) -> Iterator[Any]:
        for item in real(top, **kw):
            if item[1].path == own + "/t/a":
                os.rmdir(own + "/t/a")  # opened, then removed: its files are gone
            yield item

    monkeypatch.setattr(mgr, "walk", walk_removing_a)
    assert Manager(own, "/t").procs(recursive=True) == [p.pid]


def test_a_tree_with_a_threaded_group_is_listed_moved_and_refused_by_its_domain(
    own: str, sleepers: Any
) -> None:
    """A threaded group's cgroup.procs cannot be read (EOPNOTSUPP): its processes are
    those its threaded domain lists, above it in the same subtree."""
    for d in ("/src", "/src/a", "/src/a/t", "/src/b", "/dst"):
        os.mkdir(own + d)
    write(own + "/src/a/t/cgroup.type", "threaded")
    p = sleepers(own + "/src/a/t")
    q = sleepers(own + "/src/b")  # walked after the threaded group
    src, dst = Manager(own, "/src"), Manager(own, "/dst")
    assert src.procs(recursive=True) == [p.pid, q.pid]
    with pytest.raises(CgroupError, match=r"still has processes \(2\)"):
        src.delete()
    with pytest.raises(KernelError) as e:  # the threaded group alone: the kernel's answer
        Manager(own, "/src/a/t").procs(recursive=True)
    assert e.value.errno == errno.EOPNOTSUPP
    src.move_to(dst)
    assert sorted(read_procs(own + "/dst")) == sorted([p.pid, q.pid])
    assert src.procs(recursive=True) == []


def test_move_to_moves_every_process_of_the_subtree(
    cg_parent: Parent, own: str, sleepers: Any
) -> None:
    for d in ("/src", "/src/a", "/src/a/b", "/src2", "/dst"):
        os.mkdir(own + d)
    ps = [sleepers(own + d) for d in ("/src", "/src/a", "/src/a/b")]
    other = sleepers(own + "/src2")
    src, dst = Manager(own, "/src"), Manager(own, "/dst")
    for bad_dest in (src, Manager(own, "/src/a"), Manager(own, "/src/a/b")):
        with pytest.raises(CgroupError) as e:
            src.move_to(bad_dest)
        assert str(e.value) == (
            f"cgroups: cannot move the processes of {src.path} into {bad_dest.path}: the "
            f"destination is inside the group itself; nothing was moved"
        )
    with pytest.raises(CgroupError) as e:
        src.move_to(own + "/dst")  # type: ignore[arg-type]
    assert str(e.value) == f"cgroups: invalid destination {own + '/dst'!r}: must be a Manager"
    assert [read_procs(own + d) for d in ("/src", "/src/a", "/src/a/b")] == [
        [p.pid] for p in ps
    ]
    src.move_to(dst)
    assert sorted(read_procs(own + "/dst")) == sorted(p.pid for p in ps)
    assert src.procs(recursive=True) == []
    assert read_procs(own + "/src2") == [other.pid]  # a name that only starts the same
    Manager(own, "/src2").move_to(Manager(own, "/src/a"))  # into a sibling's child
    assert read_procs(own + "/src/a") == [other.pid]
    assert group_of(other.pid) == own[len(cg_parent.mountpoint):] + "/src/a"


@pytest.mark.parametrize("name", ["gX", "g "])
def test_move_to_into_its_own_child_is_refused_whatever_the_name_ends_with(
    own: str, name: str
) -> None:
    os.makedirs(f"{own}/{name}/in")
    src = Manager(own, "/" + name)
    with pytest.raises(CgroupError, match="the destination is inside the group itself"):
        src.move_to(Manager(own, f"/{name}/in"))


def test_move_to_skips_a_process_that_exited_and_stops_after_100_rounds(
    own: str, sleepers: Any
) -> None:
    for d in ("/src", "/dst", "/busy", "/busy/c"):
        os.mkdir(own + d)
    p = sleepers(own + "/src")
    src, dst = Manager(own, "/src"), Manager(own, "/dst")
    reads: list[bool] = []
    real = src.procs

    def first_lists_an_exited_pid(recursive: bool = False) -> list[int]:
        reads.append(recursive)
        # 4194305: above the largest pid_max, never a process (the write gives ESRCH)
        return [4194305, *real(recursive)] if len(reads) == 1 else real(recursive)

    src.procs = first_lists_an_exited_pid  # type: ignore[method-assign]
    src.move_to(dst)
    assert read_procs(own + "/dst") == [p.pid] and reads == [True, True]
    # a process that is always listed again: the move gives up
    calls: list[int] = []

    def always(recursive: bool = False) -> list[int]:
        calls.append(1)
        return [p.pid]

    src.procs = always  # type: ignore[method-assign]
    with pytest.raises(CgroupError) as e:
        src.move_to(dst)
    assert str(e.value) == f"cgroups: processes of {src.path} kept appearing while moving them"
    assert len(calls) == 100
    # a destination the kernel refuses (it enables a controller for its children)
    write(own + "/cgroup.subtree_control", "+hugetlb")
    write(own + "/busy/cgroup.subtree_control", "+hugetlb")
    with pytest.raises(KernelError) as e:
        dst.move_to(Manager(own, "/busy"))
    assert e.value.errno == errno.EBUSY
    assert read_procs(own + "/dst") == [p.pid]


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_a_whole_empty_tree_and_a_missing_group_is_success(own: str) -> None:
    for d in ("/t/a/b/c", "/t/a/d", "/t/e", "/t2"):
        os.makedirs(own + d)
    Manager(own, "/t").delete()
    assert not os.path.exists(own + "/t") and os.path.isdir(own + "/t2")
    Manager(own, "/t").delete()  # gone: success
    Manager(own, "/t/x/y").delete()  # the parent is gone too
    Manager(own, "/t2").delete()  # an empty leaf
    assert [n for n in os.listdir(own) if "." not in n] == []
    with pytest.raises(KernelError) as e:
        Manager(own, "/cgroup.procs").delete()
    assert (e.value.errno, e.value.path) == (errno.ENOTDIR, own + "/cgroup.procs")
    assert str(e.value).startswith(f"cgroups: rmdir {own}/cgroup.procs: [Errno 20 ENOTDIR]")


def test_delete_of_a_group_another_process_removes_meanwhile_is_success(
    own: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rmdir says EBUSY (a child), then the group is gone before it is opened."""
    os.makedirs(own + "/t/c")
    real = os.rmdir

    def busy_then_gone(name: str, *a: Any, **kw: Any) -> None:
        if name == "t":
            real(own + "/t/c")
            real(own + "/t")
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real(name, *a, **kw)

    monkeypatch.setattr(os, "rmdir", busy_then_gone)
    Manager(own, "/t").delete()
    assert not os.path.exists(own + "/t")


def test_subtree_pids_skips_a_group_whose_files_are_going(
    own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the kernel removes a group its files fail (ENODEV, ENOENT) before the
    directory is gone: no pid is lost there. Other errors are raised."""
    for d in ("/t", "/t/a", "/t/b"):
        os.mkdir(own + d)
    p = sleepers(own + "/t/b")
    real = Dir.read
    err = [errno.ENODEV]

    def going(self: Dir, name: str) -> bytes:
        if self.path == own + "/t/a" and name == "cgroup.procs":
            raise KernelError(err[0], self.file_path(name), op="read")
        return real(self, name)

    monkeypatch.setattr(Dir, "read", going)
    m = Manager(own, "/t")
    assert m.procs(recursive=True) == [p.pid]
    err[0] = errno.ENOENT
    assert m.procs(recursive=True) == [p.pid]
    err[0] = errno.EIO
    with pytest.raises(KernelError) as e:
        m.procs(recursive=True)
    assert e.value.errno == errno.EIO


def test_delete_of_a_populated_tree_is_refused_unless_kill(own: str, sleepers: Any) -> None:
    for d in ("/t/a/b", "/t/c"):
        os.makedirs(own + d)
    ps = [sleepers(own + d) for d in ("/t/a", "/t/a/b", "/t/a/b", "/t/c")]
    m = Manager(own, "/t")
    with pytest.raises(CgroupError) as e:
        m.delete()
    assert str(e.value) == (
        f"cgroups: {own}/t still has processes (4); kill them first or delete(kill=True)"
    )
    assert all(os.path.isdir(own + d) for d in ("/t/a/b", "/t/c"))
    assert all(p.poll() is None for p in ps)
    m.delete(kill=True)
    assert not os.path.exists(own + "/t")
    assert [p.wait(timeout=10) for p in ps] == [-signal.SIGKILL] * 4


def test_rmdir_retry(own: str, sleepers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """EBUSY is retried until the deadline (a group whose processes are exiting); a name
    that is gone is success; another error at once."""
    os.makedirs(own + "/full/c")
    attempts: list[str] = []
    real = os.rmdir

    def counted(name: str, *a: Any, **kw: Any) -> None:
        attempts.append(name)
        real(name, *a, **kw)

    monkeypatch.setattr(os, "rmdir", counted)
    with Dir.open(own, own) as d:
        mgr._rmdir_retry(d, "nosuch")
        with pytest.raises(KernelError) as e:
            mgr._rmdir_retry(d, "full", timeout=0)
        assert (e.value.errno, e.value.path) == (errno.EBUSY, own + "/full")
        assert str(e.value).startswith(f"cgroups: rmdir {own}/full: [Errno 16 EBUSY]")
        assert attempts == ["nosuch", "full"]  # timeout 0: no second try
        attempts.clear()
        with pytest.raises(KernelError):
            mgr._rmdir_retry(d, "full", timeout=0.05)
        assert len(attempts) >= 2
        attempts.clear()
        with pytest.raises(KernelError) as e:
            mgr._rmdir_retry(d, "cgroup.procs", timeout=5)
        assert e.value.errno == errno.ENOTDIR and attempts == ["cgroup.procs"]
        # busy until its process is gone: the first try fails, a later one removes it
        os.mkdir(own + "/busy")
        p = sleepers(own + "/busy")

        def kill_after_first(name: str, *a: Any, **kw: Any) -> None:
            attempts.append(name)
            try:
                real(name, *a, **kw)
            except OSError as e:
                if len(attempts) == 1:
                    assert e.errno == errno.EBUSY
                    stop(p)
                raise

        attempts.clear()
        monkeypatch.setattr(os, "rmdir", kill_after_first)
        mgr._rmdir_retry(d, "busy", timeout=30)
        assert len(attempts) >= 2 and not os.path.exists(own + "/busy")
