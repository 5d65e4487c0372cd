"""Reliability: how the Sampler opens, walks, follows and drops groups, on the real cgroup2
mount, in this process (so that each check reaches the code it pins).

What is pinned: the exact set of groups sampled and skipped (with why), as groups are made
and removed at several depths while following, and under the bounds; the descriptors held
(directories, files, and the inotify watches as the kernel lists them in
``/proc/self/fdinfo``), also with the inotify fd at descriptor 0; groups past the
descriptor budget (``overflow="reopen"`` with ``spare`` taking all but a few of
``RLIMIT_NOFILE``) opened again from their nearest held group (also under a mount made
over the root's path, and deeper than PATH_MAX), or from the mount by path and checked
to be the same directory, each closed by the sampler itself (``Dir``'s finalizer
disabled); mount points met while following (bind mounts of the test's own groups inside
its group, unmounted by the test, in the host's mount namespace as test_rel_door.py does:
the checks run in this process); a sampler whose mount is a bind mount of a group (paths
``/``, ``/a``); lost inotify events (``IN_Q_OVERFLOW``: the queue filled by making and
removing a group 8,400 times) and the rescan after them; a watch the kernel drops
(``IN_IGNORED``, made by removing the watch from the sampler's inotify fd); groups removed
between a listing and the open, or between the events and the read (removed by the test
at that moment through a wrapper of the listing or of ``collect``: the kernel's answers
are real).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from cgtest import remove_tree
from conftest import Parent
from reltools import no_leaks, open_fds  # noqa: F401

from cgroup2 import CgroupDeletedError, Manager, Metrics, Sampler, StatMask, stats
from cgroup2._fs import Dir

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.inotify_rm_watch.restype = ctypes.c_int

# --- helpers ------------------------------------------------------------------------------


def _key(g: str) -> tuple[str, ...]:
    return tuple(g.split("/"))


def _order(groups: list[str]) -> list[str]:
    """``groups`` in the sampler's order (path order, component by component)."""
    return sorted(groups, key=_key)


def _mkdirs(mnt: str, *groups: str) -> None:
    for g in groups:
        os.mkdir(mnt + g)


def _rmdirs(mnt: str, *groups: str) -> None:
    for g in groups:
        os.rmdir(mnt + g)


def _stat(mnt: str, group: str) -> Metrics:
    return Manager.load(group, mountpoint=mnt).stat()


def _watched(s: Sampler) -> set[str]:
    """The groups whose directory the sampler watches (its own record)."""
    return {g.group for g in s._wds.values()}


def _kernel_watches(s: Sampler) -> set[int]:
    """The watch descriptors the kernel has on the sampler's inotify fd."""
    with open(f"/proc/self/fdinfo/{s._ino}") as f:
        return {int(w, 16) for w in re.findall(r"^inotify wd:([0-9a-f]+)", f.read(), re.M)}


def _watches_agree(s: Sampler) -> None:
    """Every watch the sampler keeps is one the kernel has, and the other way round."""
    assert _kernel_watches(s) == set(s._wds)
    assert all(g.wd == wd for wd, g in s._wds.items())


_LISTINGS: list[list[object]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _LISTINGS and event == "os.scandir":
        _LISTINGS[-1].append(args[0])


@contextlib.contextmanager
def listed() -> Iterator[list[object]]:
    """The directories listed (``os.scandir``) inside the block."""
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    got: list[object] = []
    _LISTINGS.append(got)
    try:
        yield got
    finally:
        _LISTINGS.pop()


def _umount(target: str) -> str:
    """Unmount ``target``; the error of a plain umount ("" if it worked): then lazily."""
    r = subprocess.run(["umount", target], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", target], check=True)
        return r.stderr.strip() or f"umount exited {r.returncode}"
    return ""


@contextlib.contextmanager
def bound(source: str, target: str) -> Iterator[None]:
    """``source`` (a group of the test) bind-mounted onto ``target`` (another group of the
    test) for the block; a plain umount after it must work (nothing held on it)."""
    r = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot bind-mount the test's own group: {r.stderr}"
    ok = False
    try:
        yield
        ok = True
    finally:
        err = _umount(target)
    if ok:
        assert err == "", f"umount {target}: {err} (something is held on the mounted tree)"


@pytest.fixture
def hard() -> Iterator[int]:
    """The hard RLIMIT_NOFILE; the soft limit (which a sampler may raise) is put back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard != resource.RLIM_INFINITY  # Linux caps it at fs.nr_open
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def no_finalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dir's finalizer made a no-op: a directory the sampler opens and does not close
    itself stays open (and the leak check of the test reports it)."""
    monkeypatch.setattr(Dir, "__del__", lambda self: None)


@pytest.fixture
def top(cg_parent: Parent, cg_path: str) -> Iterator[str]:
    """``cg_path`` made; its tree removed afterwards (after any mount in it is undone)."""
    mnt = cg_parent.mountpoint
    os.mkdir(mnt + cg_path)
    try:
        yield cg_path
    finally:
        remove_tree(mnt + cg_path)


# --- following ----------------------------------------------------------------------------


def test_follow_adds_and_drops_groups_at_every_depth(cg_parent: Parent, top: str) -> None:
    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, f"{r}/a", f"{r}/a/x")
    start = [r, f"{r}/a", f"{r}/a/x"]
    with (
        Sampler(root=r, mountpoint=mnt) as s,
        Sampler(root=r, mountpoint=mnt, depth=2) as s2,
    ):
        for x in (s, s2):
            assert list(x.sample()) == start
        assert _watched(s) == set(start) and _watched(s2) == {r, f"{r}/a"}
        # made after the start, three levels deep, and below a group two levels down (a
        # name ending in X: names are taken whole from the event)
        made = [f"{r}/n1", f"{r}/n1/n2", f"{r}/n1/n2/n3", f"{r}/a/x/boX"]
        _mkdirs(mnt, *made)
        with listed() as scans:
            got = s.sample()
        assert list(got) == s.groups == _order(start + made)
        assert len(scans) == len(made)  # each new group listed once, nothing else
        for g in made:
            assert got[g] == _stat(mnt, g), g
        with listed() as scans:
            got2 = s2.sample()
        assert list(got2) == _order([*start, f"{r}/n1", f"{r}/n1/n2"])
        assert len(scans) == 1  # n1 (n2 is at the depth: held, not listed)
        assert _watched(s) == set(s.groups) and _watched(s2) == {r, f"{r}/a", f"{r}/n1"}
        for x in (s, s2):
            _watches_agree(x)
        with Sampler(root=r, mountpoint=mnt) as fresh:
            fresh.sample()
            assert fresh.groups == s.groups and fresh.fd_count == s.fd_count
        # removed: out of the next sample, their descriptors and watches gone
        _rmdirs(mnt, f"{r}/n1/n2/n3", f"{r}/n1/n2", f"{r}/a/x/boX")
        with listed() as scans:
            assert list(s.sample()) == _order([*start, f"{r}/n1"])
        assert scans == []
        assert list(s2.sample()) == _order([*start, f"{r}/n1"])
        for x in (s, s2):
            _watches_agree(x)
        assert _watched(s) == set(s.groups)
        with Sampler(root=r, mountpoint=mnt) as fresh:
            fresh.sample()
            assert fresh.groups == s.groups and fresh.fd_count == s.fd_count
        # nothing changed: nothing listed, nothing opened
        with listed() as scans:
            s.sample()
        assert scans == []
        _rmdirs(mnt, f"{r}/n1")


def test_bounds_leave_out_exactly_what_is_past_them_and_say_why(
    cg_parent: Parent, top: str
) -> None:
    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, *(f"{r}/{g}" for g in ("a", "a/x", "a/x/y", "b", "b/z")))
    with (
        Sampler(root=r, mountpoint=mnt, max_depth=1) as sd,
        Sampler(root=r, mountpoint=mnt, max_groups=3) as sg,
        Sampler(root=r, mountpoint=mnt, max_depth=0) as s0,
    ):
        assert sd.groups == [r, f"{r}/a", f"{r}/b"]
        assert sd.skipped == {f"{r}/a/x": "max_depth", f"{r}/b/z": "max_depth"}
        # the first three in walk order (depth first, by name); the top of each subtree
        # left out is named
        assert sg.groups == [r, f"{r}/a", f"{r}/a/x"]
        assert sg.skipped == {f"{r}/a/x/y": "max_groups", f"{r}/b": "max_groups"}
        assert s0.groups == [r] and s0.skipped == {f"{r}/a": "max_depth", f"{r}/b": "max_depth"}
        # a group a bound leaves out but asked for by name is sampled, not named as skipped
        with Sampler([f"{r}/b", f"{r}/a/x/y"], root=r, mountpoint=mnt, max_groups=2) as se:
            assert se.groups == [r, f"{r}/a", f"{r}/a/x/y", f"{r}/b"]
            assert se.skipped == {f"{r}/a/x": "max_groups"}
        for x in (sd, sg, s0):
            assert list(x.sample()) == x.groups
        # while following: the same bounds for groups made later
        _mkdirs(mnt, f"{r}/c", f"{r}/a/n")
        sd.sample()
        sg.sample()
        assert sd.groups == [r, f"{r}/a", f"{r}/b", f"{r}/c"]
        assert sd.skipped == {
            f"{r}/a/x": "max_depth", f"{r}/b/z": "max_depth", f"{r}/a/n": "max_depth"
        }
        assert sg.groups == [r, f"{r}/a", f"{r}/a/x"]
        assert sg.skipped == {
            f"{r}/a/x/y": "max_groups",
            f"{r}/b": "max_groups",
            f"{r}/c": "max_groups",
            f"{r}/a/n": "max_groups",
        }
        # removed: no longer named
        _rmdirs(mnt, f"{r}/c", f"{r}/a/n")
        sd.sample()
        sg.sample()
        assert sd.groups == [r, f"{r}/a", f"{r}/b"]
        assert sd.skipped == {f"{r}/a/x": "max_depth", f"{r}/b/z": "max_depth"}
        assert sg.skipped == {f"{r}/a/x/y": "max_groups", f"{r}/b": "max_groups"}


def test_a_missing_root_is_an_error_and_nothing_is_left_open(cg_parent: Parent, top: str) -> None:
    mnt = cg_parent.mountpoint
    for follow in (True, False):
        with pytest.raises(CgroupDeletedError):
            Sampler(root=f"{top}/missing", mountpoint=mnt, follow=follow)
        with pytest.raises(CgroupDeletedError):
            Sampler([top, f"{top}/missing"], mountpoint=mnt, follow=follow)


def test_a_sampler_whose_inotify_fd_is_0_follows(cg_parent: Parent, top: str) -> None:
    """A program that closed its standard input gets descriptor 0 for the inotify fd."""
    import cgroup2.events  # noqa: F401  (its import opens files: before fd 0 is free)

    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, f"{r}/a")
    stdin = os.dup(0)
    os.close(0)
    try:
        s = Sampler(root=r, mountpoint=mnt)
    except BaseException:
        os.dup2(stdin, 0)
        os.close(stdin)
        raise
    try:
        assert s._ino == 0 and s.fd_count == 3
        assert _watched(s) == {r, f"{r}/a"}
        _watches_agree(s)
        _mkdirs(mnt, f"{r}/n", f"{r}/a/m")
        assert list(s.sample()) == [r, f"{r}/a", f"{r}/a/m", f"{r}/n"]
        _watches_agree(s)
        _rmdirs(mnt, f"{r}/a/m", f"{r}/n")
        assert list(s.sample()) == [r, f"{r}/a"]
        _watches_agree(s)  # the watches of the groups dropped are removed
    finally:
        s.close()
        os.dup2(stdin, 0)
        os.close(stdin)


# --- past the descriptor budget -----------------------------------------------------------


@pytest.mark.usefixtures("no_finalizer")
def test_groups_past_the_budget_are_read_through_the_nearest_held_group(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """``spare`` leaves the sampler two descriptors: the root and the first group below it
    are held, the rest (and every file) is opened, read and closed on each sample, through
    the nearest held group, child by child."""
    mnt, r = cg_parent.mountpoint, top
    tree = [r, f"{r}/a", f"{r}/a/x", f"{r}/a/x/y", f"{r}/b"]
    _mkdirs(mnt, *tree[1:])
    before = open_fds()
    s = Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 2)
    try:
        new = sorted(p for fd, p in open_fds().items() if before.get(fd) != p)
        assert new == sorted([mnt + r, mnt + f"{r}/a", "anon_inode:inotify"])
        with Sampler(
            root=r, mountpoint=mnt, overflow="reopen", spare=hard - 2, follow=False
        ) as fixed:
            for x in (s, fixed):
                assert x.groups == tree
                assert (x.held_count, x.reopened_count) == (2, 3)
            assert (s.fd_count, fixed.fd_count) == (3, 2)
            for _ in range(2):  # the second sample reads the held ones through them again
                for x in (s, fixed):
                    got = x.sample()
                    assert list(got) == tree
                    for g in tree:
                        assert got[g] == _stat(mnt, g), g
            assert (s.fd_count, fixed.fd_count) == (3, 2)  # no file fits: none is held
            for g in (f"{r}/a/x/y", f"{r}/b", r):
                assert s.read(g, "cgroup.procs") == b""
            # made while following, below groups past the budget: past it too
            _mkdirs(mnt, f"{r}/a/x/new")
            got = s.sample()
            assert list(got) == _order([*tree, f"{r}/a/x/new"])
            assert got[f"{r}/a/x/new"] == _stat(mnt, f"{r}/a/x/new")
            assert (s.held_count, s.reopened_count, s.fd_count) == (2, 4, 3)
            # a group past the budget removed (no event for the fixed one: its open fails)
            _rmdirs(mnt, f"{r}/b")
            assert list(s.sample()) == _order([*tree[:-1], f"{r}/a/x/new"])
            assert list(fixed.sample()) == tree[:-1]
            # a held group removed with the groups below it, past the budget
            _rmdirs(mnt, f"{r}/a/x/new", f"{r}/a/x/y", f"{r}/a/x", f"{r}/a")
            assert list(fixed.sample()) == [r] and fixed.groups == [r]
            assert (fixed.held_count, fixed.reopened_count, fixed.fd_count) == (1, 0, 1)
            assert list(s.sample()) == [r]
            assert (s.held_count, s.reopened_count, s.fd_count) == (1, 0, 2)
            _watches_agree(s)
    finally:
        s.close()


@pytest.mark.usefixtures("no_finalizer")
def test_a_root_past_the_budget_is_opened_by_its_path_and_checked(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """``spare`` takes every descriptor: nothing is held, the root is opened from the
    mount by its path on each sample and must be the directory found at the start."""
    mnt, r = cg_parent.mountpoint, top
    tree = [r, f"{r}/a", f"{r}/a/b"]
    _mkdirs(mnt, *tree[1:])
    mask = StatMask.CPU | StatMask.PIDS
    with (
        Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard, follow=False) as s,
        Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard) as f,
        Sampler(
            root=r, mountpoint=mnt, overflow="reopen", spare=hard, follow=False, mask=mask
        ) as sm,
    ):
        assert (s.held_count, s.reopened_count, s.fd_count) == (0, 3, 0)
        assert (f.held_count, f.fd_count) == (0, 1)  # the inotify fd
        for x in (s, f):
            got = x.sample()
            assert list(got) == tree
            for g in tree:
                assert got[g] == _stat(mnt, g), g
        got = sm.sample()  # (the mask is the sampler's)
        assert list(got) == tree
        for g in tree:
            assert got[g] == Manager.load(g, mountpoint=mnt).stat(mask), g
            assert got[g].memory is None and got[g].cpu is not None
        assert s.read(f"{r}/a/b", "cgroup.procs") == b""
        # followed below a root past the budget
        _mkdirs(mnt, f"{r}/n", f"{r}/a/b/c")
        got = f.sample()
        assert list(got) == _order([*tree, f"{r}/n", f"{r}/a/b/c"])
        assert got[f"{r}/a/b/c"] == _stat(mnt, f"{r}/a/b/c")
        # the root removed and made again under its name: not the group sampled
        _rmdirs(mnt, f"{r}/a/b/c", f"{r}/a/b", f"{r}/a", f"{r}/n", r)
        os.mkdir(mnt + r)
        with pytest.raises(CgroupDeletedError) as e:
            s.read(r, "cgroup.procs")
        assert e.value.errno == errno.ENOENT and e.value.path == mnt + r
        assert str(e.value) == f"cgroups: cgroup deleted: {mnt + r} was removed"
        assert s.groups == [] and s.sample() == {}
        assert f.sample() == {} and f.groups == []


def test_a_mount_over_the_root_does_not_hide_the_groups_past_the_budget(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """The groups past the budget are opened from the held root's descriptor, not by
    path: another group mounted over the root's path later changes nothing sampled."""
    mnt = cg_parent.mountpoint
    r, o = f"{top}/r", f"{top}/o"
    tree = [r, f"{r}/a", f"{r}/a/b", f"{r}/c"]
    _mkdirs(mnt, *tree, o, f"{o}/x")
    with Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 1) as s:
        assert (s.held_count, s.reopened_count) == (1, 3)
        first = s.sample()
        assert list(first) == tree
        with bound(mnt + o, mnt + r):
            assert os.path.isdir(mnt + r + "/x")  # the path now leads to o
            again = s.sample()
            assert again == first and s.skipped == {}
            assert s.read(f"{r}/a/b", "cgroup.procs") == b""


def test_groups_deeper_than_a_path_can_name_are_sampled_and_kept(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """Groups whose path is longer than PATH_MAX: opened child by child from the held
    root, sampled as the held ones are, and a path the kernel cannot look up
    (ENAMETOOLONG) is not taken for a group removed."""
    mnt, r = cg_parent.mountpoint, top
    name = "d" * 200
    fds = [os.open(mnt + r, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(22):
            os.mkdir(name, dir_fd=fds[-1])
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        deep = r + f"/{name}" * 22
        assert len(mnt + deep) > 4096
        with (
            Sampler(root=r, mountpoint=mnt) as held,
            Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 1) as s,
        ):
            assert (s.held_count, s.reopened_count) == (1, 22)
            got = s.sample()
            assert len(got) == 23 and got == held.sample()
            # the deepest group's watch dropped (IN_IGNORED): its path cannot be looked
            # up, which is not a removal
            assert _libc.inotify_rm_watch(s._ino, s._groups[deep].wd) == 0
            assert s.sample() == got and deep in s.groups
            _watches_agree(s)
    finally:
        for i in range(len(fds) - 1, 0, -1):
            os.close(fds[i])
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(name, dir_fd=fds[i - 1])
        os.close(fds[0])


# --- mount points -------------------------------------------------------------------------


def test_mount_points_met_while_following_are_skipped_not_entered(
    cg_parent: Parent, top: str, hard: int
) -> None:
    mnt = cg_parent.mountpoint
    r, o = f"{top}/r", f"{top}/o"
    _mkdirs(mnt, r, f"{r}/g0", f"{r}/g1", o, f"{o}/x", f"{o}/y")
    with (
        Sampler(root=r, mountpoint=mnt) as s,
        # the root held, g0 and g1 past the budget
        Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 1) as su,
    ):
        for x in (s, su):
            x.sample()
        # made after the start: n, with m (o is mounted there) and z after it
        _mkdirs(mnt, f"{r}/n", f"{r}/n/m", f"{r}/n/z")
        with bound(mnt + o, mnt + f"{r}/n/m"):
            assert sorted(os.listdir(mnt + f"{r}/n/m"))[-2:] == ["x", "y"]
            for x in (s, su):
                got = x.sample()
                assert list(got) == [r, f"{r}/g0", f"{r}/g1", f"{r}/n", f"{r}/n/z"], x
                assert x.skipped == {f"{r}/n/m": "mount_point"}
            # a group made in the mounted tree: not sampled either
            _mkdirs(mnt, f"{o}/w")
            assert list(s.sample()) == [r, f"{r}/g0", f"{r}/g1", f"{r}/n", f"{r}/n/z"]
            below = mnt + f"{r}/n/m"
            held = [p for p in open_fds().values() if p == below or p.startswith(below + "/")]
            assert held == []
            _rmdirs(mnt, f"{o}/w")
        # unmounted and removed: no longer named
        _rmdirs(mnt, f"{r}/n/m")
        for x in (s, su):
            assert list(x.sample()) == [r, f"{r}/g0", f"{r}/g1", f"{r}/n", f"{r}/n/z"]
            assert x.skipped == {}
        # o mounted onto g1, a group past the budget: opened again on each sample, it is
        # now a mount point: skipped and named (the held one is read through its fd)
        with bound(mnt + o, mnt + f"{r}/g1"):
            got = su.sample()
            assert list(got) == [r, f"{r}/g0", f"{r}/n", f"{r}/n/z"]
            assert su.skipped == {f"{r}/g1": "mount_point"}
            assert f"{r}/g1" in s.sample()
        _watches_agree(s)
        _watches_agree(su)


def test_a_sampler_on_a_mount_of_a_group_walks_it_from_its_root(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """Group ``g`` of the test bind-mounted onto ``m`` (inside the test's group): a sampler
    whose mount is ``m`` sees ``/``, ``/a``... and opens them from ``m``, never from the
    outer cgroup2 mount (through which ``m`` is a mount point)."""
    mnt = cg_parent.mountpoint
    g, m = f"{top}/g", f"{top}/m"
    mp = mnt + m
    _mkdirs(mnt, g, f"{g}/a", f"{g}/a/b", m)

    def real(p: str) -> str:  # a group of the sampler on m, as a group of the outer mount
        return g if p == "/" else g + p

    with (
        bound(mnt + g, mp), Sampler(root="/", mountpoint=mp) as s,
        Sampler(["/a/b", "/a", "/a/b"], mountpoint=mp) as ex,
        Sampler(root="/", mountpoint=mp, overflow="reopen", spare=hard, follow=False) as un,
    ):
        assert s.groups == un.groups == ["/", "/a", "/a/b"]
        assert ex.groups == ["/a", "/a/b"] and ex.fd_count == 2
        assert (un.held_count, un.fd_count) == (0, 0)
        for x in (s, ex, un):
            got = x.sample()
            assert list(got) == x.groups
            for p in got:
                assert got[p] == _stat(mnt, real(p)), p
        assert un.read("/a/b", "cgroup.procs") == b""
        _mkdirs(mnt, f"{g}/new", f"{g}/a/boX")
        assert s.groups == ["/", "/a", "/a/b"]
        got = s.sample()
        assert list(got) == ["/", "/a", "/a/b", "/a/boX", "/new"]
        assert got["/new"] == _stat(mnt, f"{g}/new")
        _rmdirs(mnt, f"{g}/new")
        assert list(s.sample()) == ["/", "/a", "/a/b", "/a/boX"]
        _watches_agree(s)
        assert _watched(s) == set(s.groups)
        with Sampler(root="/", mountpoint=mp) as fresh:
            fresh.sample()
            assert fresh.fd_count == s.fd_count


# --- lost events --------------------------------------------------------------------------

_CHURN = 8400  # mkdir + rmdir: 16,800 events, more than fs.inotify.max_queued_events


def _overflow(fs_dir: str) -> None:
    """Fill the inotify queue of every sampler watching ``fs_dir`` (IN_Q_OVERFLOW)."""
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        assert int(f.read()) < 2 * _CHURN
    churn = fs_dir + "/churn"
    for _ in range(_CHURN):
        os.mkdir(churn)
        os.rmdir(churn)


def test_lost_events_are_made_up_for_by_a_rescan(
    cg_parent: Parent, top: str, hard: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inotify queue of every sampler overflows; what happened meanwhile (groups
    made, removed, removed and made again under the same name, below and past the
    bounds) is what the next sample holds, as a fresh sampler would, and following goes
    on from there. The skipped names are those still true."""
    mnt = cg_parent.mountpoint
    r, e = f"{top}/g", f"{top}/e"
    rel = ["a", "a/x", "a0", "b", "b/p", "b/p2", "b/q", "b/q/c1", "b/q/c2", "d", "gone",
           "gone/sub", "re", "u"]
    _mkdirs(mnt, r, *(f"{r}/{x}" for x in rel), e, f"{e}/k")
    real_listing = Dir.subdir_entries
    victims: dict[str, str] = {}

    def listing(self: Dir) -> list[tuple[str, int]]:
        out = real_listing(self)
        victim = victims.pop(self.path, None)
        if victim is not None:
            os.rmdir(victim)  # listed, its siblings not yet
        return out

    monkeypatch.setattr(Dir, "subdir_entries", listing)
    with contextlib.ExitStack() as stack:
        s = stack.enter_context(Sampler([e], root=r, mountpoint=mnt))
        s2 = stack.enter_context(Sampler(root=r, mountpoint=mnt, depth=2))
        # r and r/a held, the rest past the budget
        su = stack.enter_context(
            Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 2)
        )
        # b, p, p2 and (asked for) q/c1: q is left out until p and p2 go
        sb = stack.enter_context(
            Sampler([f"{r}/b/q/c1"], root=f"{r}/b", mountpoint=mnt, max_groups=3)
        )
        sw = stack.enter_context(Sampler(root=r, mountpoint=mnt, max_depth=1))
        samplers = (su, s, s2, sb, sw)
        for x in samplers:
            x.sample()
        assert sb.groups == [f"{r}/b", f"{r}/b/p", f"{r}/b/p2", f"{r}/b/q/c1"]
        assert sb.skipped == {f"{r}/b/q": "max_groups"}
        assert sw.groups == [r, *(f"{r}/{x}" for x in ("a", "a0", "b", "d", "gone", "re", "u"))]
        assert sw.skipped == {
            f"{r}/{x}": "max_depth" for x in ("a/x", "b/p", "b/p2", "b/q", "gone/sub")
        }
        # removed while the events arrive: dropped, and forgotten by its parent
        _rmdirs(mnt, f"{r}/re")
        for x in samplers:
            x.sample()
            assert f"{r}/re" not in x.groups
        # sw no longer watches a (so it will not list it again)
        assert _libc.inotify_rm_watch(sw._ino, sw._groups[f"{r}/a"].wd) == 0
        _overflow(mnt + f"{r}/b")  # every sampler watches b
        # lost: made, removed, removed and made again, past a bound
        _mkdirs(mnt, f"{r}/re", f"{r}/new", f"{r}/new/deeper", f"{r}/a/x/w", f"{r}/d/t")
        _mkdirs(mnt, f"{e}/k2")
        _rmdirs(mnt, f"{r}/gone/sub", f"{r}/gone", f"{r}/u", f"{r}/b/p", f"{r}/b/p2")
        os.mkdir(mnt + f"{r}/u")
        after = ["a", "a/x", "a/x/w", "b", "b/q", "b/q/c1", "b/q/c2", "d", "d/t", "new",
                 "new/deeper", "re", "u"]
        want = [r, *(f"{r}/{x}" for x in after)]
        # su: a0 (past the budget, listed after r) is removed once the rescan lists r
        victims[mnt + r] = mnt + f"{r}/a0"
        got = su.sample()
        assert victims == {}
        assert list(got) == want
        assert got[f"{r}/new/deeper"] == _stat(mnt, f"{r}/new/deeper")
        assert got[f"{r}/u"] == _stat(mnt, f"{r}/u")
        assert (su.held_count, su.reopened_count) == (2, len(want) - 2)
        with listed() as scans:
            got = s.sample()
        assert len(scans) >= len(want) - 3  # every watched group listed again: the rescan
        assert list(got) == _order([e, *want])
        assert got[f"{r}/u"] == _stat(mnt, f"{r}/u")
        assert list(s2.sample()) == [x for x in want if x.count("/") - r.count("/") <= 2]
        # q fits now: opened, with c1 (asked for) and c2 (past the bound again) below it
        assert list(sb.sample()) == [f"{r}/b", f"{r}/b/q", f"{r}/b/q/c1"]
        assert sb.skipped == {f"{r}/b/q/c2": "max_groups"}
        # a/x stays named (a was not listed), b/p and b/p2 are gone, gone/sub with gone;
        # d/t and new/deeper are past max_depth
        assert list(sw.sample()) == [r, *(f"{r}/{x}" for x in ("a", "b", "d", "new", "re", "u"))]
        assert sw.skipped == {
            f"{r}/{x}": "max_depth" for x in ("a/x", "b/q", "d/t", "new/deeper")
        }
        for x in (su, s, s2):
            assert x.skipped == {}
        for x in samplers:
            _watches_agree(x)
        assert _watched(s) == set(want)
        with Sampler([e], root=r, mountpoint=mnt) as fresh:
            fresh.sample()
            assert fresh.groups == s.groups and fresh.fd_count == s.fd_count
        # following goes on from what the rescan found (the group made again included),
        # and lists nothing but the new groups
        _mkdirs(mnt, f"{r}/u/kid", f"{r}/new/deeper/z")
        with listed() as scans:
            got = s.sample()
        assert len(scans) == 2
        assert {f"{r}/u/kid", f"{r}/new/deeper/z"} <= got.keys()
        assert {f"{r}/u/kid", f"{r}/new/deeper/z"} <= su.sample().keys()
        got = s2.sample()
        assert f"{r}/u/kid" in got and f"{r}/new/deeper/z" not in got
        sw.sample()
        assert sw.skipped[f"{r}/u/kid"] == "max_depth"
        _rmdirs(mnt, f"{r}/u/kid", f"{r}/new/deeper/z", f"{r}/a/x/w")
        for x in samplers:
            assert f"{r}/u/kid" not in x.sample()
            _watches_agree(x)


def test_lost_events_below_the_root_of_a_mount(cg_parent: Parent, top: str) -> None:
    """As above, for a sampler whose mount is a bind mount of a group (paths ``/x``)."""
    mnt = cg_parent.mountpoint
    g, m = f"{top}/g", f"{top}/m"
    mp = mnt + m
    _mkdirs(mnt, g, *(f"{g}/{x}" for x in ("p", "q", "re", "z")), m)
    with (
        bound(mnt + g, mp),
        Sampler(root="/", mountpoint=mp) as sr,
        Sampler(root="/", mountpoint=mp, max_depth=0) as s0,
    ):
        for x in (sr, s0):
            x.sample()
        assert sr.groups == ["/", "/p", "/q", "/re", "/z"]
        assert s0.groups == ["/"]
        assert s0.skipped == {p: "max_depth" for p in ("/p", "/q", "/re", "/z")}
        _rmdirs(mnt, f"{g}/re")
        for x in (sr, s0):
            x.sample()
        assert sr.groups == ["/", "/p", "/q", "/z"]
        assert s0.skipped == {p: "max_depth" for p in ("/p", "/q", "/z")}
        _overflow(mnt + g)
        _mkdirs(mnt, f"{g}/re", f"{g}/new", f"{g}/q/w")
        _rmdirs(mnt, f"{g}/p")
        got = sr.sample()
        assert list(got) == ["/", "/new", "/q", "/q/w", "/re", "/z"]
        assert got["/q/w"] == _stat(mnt, f"{g}/q/w")
        assert list(s0.sample()) == ["/"]
        assert s0.skipped == {p: "max_depth" for p in ("/new", "/q", "/re", "/z")}
        for x in (sr, s0):
            _watches_agree(x)
        with Sampler(root="/", mountpoint=mp) as fresh:
            fresh.sample()
            assert fresh.groups == sr.groups and fresh.fd_count == sr.fd_count
        _mkdirs(mnt, f"{g}/re/k")
        assert "/re/k" in sr.sample()


# --- a watch the kernel drops (IN_IGNORED) ------------------------------------------------


def test_a_watch_the_kernel_drops_is_forgotten_and_the_events_after_it_are_read(
    cg_parent: Parent, top: str, hard: int
) -> None:
    """The kernel drops a watch (``IN_IGNORED``) when it goes away; the test removes it
    from the sampler's inotify fd to make one. A group still there is kept, a group gone
    is dropped; the events read with it are not lost."""
    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, f"{r}/a", f"{r}/b")
    with (
        Sampler(root=r, mountpoint=mnt) as s,
        # the root held; a, b and later groups past the budget (watched all the same)
        Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 1) as su,
    ):
        for x in (s, su):
            x.sample()
            assert _watched(x) == {r, f"{r}/a", f"{r}/b"}
            assert x._groups[r].wd == 1  # (the first watch of an inotify fd)
            # a's watch dropped, then a group made: both read in one sample
            assert _libc.inotify_rm_watch(x._ino, x._groups[f"{r}/a"].wd) == 0
        _mkdirs(mnt, f"{r}/c")
        for x in (s, su):
            assert list(x.sample()) == [r, f"{r}/a", f"{r}/b", f"{r}/c"]
            _watches_agree(x)
            assert _watched(x) == {r, f"{r}/b", f"{r}/c"}
            # the drop as the last event read
            assert _libc.inotify_rm_watch(x._ino, x._groups[f"{r}/b"].wd) == 0
            assert list(x.sample()) == [r, f"{r}/a", f"{r}/b", f"{r}/c"]
            _watches_agree(x)
            assert _watched(x) == {r, f"{r}/c"}
        # a, no longer watched, removed: its parent's event drops it; the parent is
        # still followed
        _rmdirs(mnt, f"{r}/a")
        for x in (s, su):
            assert list(x.sample()) == [r, f"{r}/b", f"{r}/c"]
            _watches_agree(x)
        _mkdirs(mnt, f"{r}/d")
        for x in (s, su):
            assert list(x.sample()) == [r, f"{r}/b", f"{r}/c", f"{r}/d"]
        # the root removed, then its watch dropped: gone at once
        _rmdirs(mnt, f"{r}/b", f"{r}/c", f"{r}/d")
        for x in (s, su):
            assert list(x.sample()) == [r]
        os.rmdir(mnt + r)
        for x in (s, su):
            assert _libc.inotify_rm_watch(x._ino, x._groups[r].wd) == 0
            assert x.sample() == {} and x.groups == []
            assert _kernel_watches(x) == set() and x._wds == {}
        assert s.fd_count == 1 and su.fd_count == 1  # the inotify fds


# --- removed at the wrong moment ----------------------------------------------------------


def test_groups_removed_between_the_listing_and_the_open_are_left_out(
    cg_parent: Parent, top: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, f"{r}/a", f"{r}/b", f"{r}/c")
    real = Dir.subdir_entries
    victims: dict[str, str] = {mnt + r: mnt + f"{r}/b"}

    def listing(self: Dir) -> list[tuple[str, int]]:
        out = real(self)
        victim = victims.pop(self.path, None)
        if victim is not None:
            os.rmdir(victim)  # listed, not opened yet
        return out

    monkeypatch.setattr(Dir, "subdir_entries", listing)
    with Sampler(root=r, mountpoint=mnt) as s:
        assert victims == {}
        assert s.groups == [r, f"{r}/a", f"{r}/c"]
        # while following: a group made with children, one removed once it is listed
        _mkdirs(mnt, f"{r}/n", f"{r}/n/p", f"{r}/n/q", f"{r}/n/s")
        victims[mnt + f"{r}/n"] = mnt + f"{r}/n/q"
        assert list(s.sample()) == [r, f"{r}/a", f"{r}/c", f"{r}/n", f"{r}/n/p", f"{r}/n/s"]
        assert list(s.sample()) == [r, f"{r}/a", f"{r}/c", f"{r}/n", f"{r}/n/p", f"{r}/n/s"]
        assert s.skipped == {}
        _watches_agree(s)


def test_groups_removed_while_a_sample_reads_them(
    cg_parent: Parent, top: str, hard: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group removed after the events were read and before its files are: left out of
    that sample; the drop of its watch (an event for a watch no longer known) does not
    hide the events read after it."""
    mnt, r = cg_parent.mountpoint, top
    _mkdirs(mnt, f"{r}/a", f"{r}/b", f"{r}/v")
    real = stats.collect
    actions: dict[str, Callable[[], None]] = {}

    def hooked(d: object, *args: object) -> Metrics:
        act = actions.pop(str(getattr(d, "path", "")), None)
        if act is not None:
            act()
        return real(d, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(stats, "collect", hooked)
    with (
        Sampler(root=r, mountpoint=mnt) as s,
        Sampler(root=r, mountpoint=mnt, overflow="reopen", spare=hard - 1, follow=False) as su,
    ):
        for x in (s, su):
            x.sample()
        # s: a removed as it is read, a group made as b is read (after a's drop)
        actions[mnt + f"{r}/a"] = lambda: os.rmdir(mnt + f"{r}/a")
        actions[mnt + f"{r}/b"] = lambda: os.mkdir(mnt + f"{r}/new")
        got = s.sample()
        assert actions == {}
        assert list(got) == [r, f"{r}/b", f"{r}/v"]
        assert list(s.sample()) == [r, f"{r}/b", f"{r}/new", f"{r}/v"]
        _watches_agree(s)
        # su: v, past the budget, removed once its directory is open again
        actions[mnt + f"{r}/v"] = lambda: os.rmdir(mnt + f"{r}/v")
        got = su.sample()
        assert actions == {}
        assert list(got) == [r, f"{r}/b"] and su.groups == [r, f"{r}/b"]
