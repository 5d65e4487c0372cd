"""host: cgroup2.Sampler on this machine's cgroup2 mount (kernel 6.18, hybrid: hugetlb and
the core files). What the kernel shows: the second and later samples of unchanged groups
make no open and no close system call (strace, and an audit hook in the process); removed
groups are dropped with their descriptors; new groups under the root are picked up; the
same Metrics as stat(); RLIMIT_NOFILE raised or a clear error."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Parent

from cgroup2 import CgroupDeletedError, CgroupError, Manager, Metrics, Sampler, StatMask

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _fds() -> set[int]:
    """The descriptors open in this process now (the listing's own fd left out)."""
    with os.scandir("/proc/self/fd") as it:
        fds = {int(e.name) for e in it}
    return {fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")}


def _rmdir(path: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def tree(
    mountpoint: str, group: str, children: int = 4, *, sleeper: bool = True
) -> Iterator[tuple[list[str], int]]:
    """``group`` with ``children`` empty children g0.. (hugetlb enabled for the group and
    them when the mount has it) and, with ``sleeper``, one more child ``busy`` holding a sleeping
    process. Yields (child group paths, pid or 0). Everything is removed afterwards."""
    fs = mountpoint + group
    os.mkdir(fs)
    pid = 0
    names = [f"g{i}" for i in range(children)]
    try:
        for level in (os.path.dirname(fs), fs):  # the run's parent (ours) and the group
            with open(level + "/cgroup.controllers") as f:
                if "hugetlb" in f.read().split():
                    with open(level + "/cgroup.subtree_control", "w") as f:
                        f.write("+hugetlb")
        for n in names:
            os.mkdir(f"{fs}/{n}")
        if sleeper:
            os.mkdir(fs + "/busy")
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    os.close(r)
                    with open(fs + "/busy/cgroup.procs", "w") as f:
                        f.write("0")
                    os.write(w, b"1")
                    signal.pause()
                finally:
                    os._exit(0)
            os.close(w)
            assert os.read(r, 1) == b"1"
            os.close(r)
            names.append("busy")
        yield [f"{group}/{n}" for n in names], pid
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for dirpath, dirs, _ in sorted(os.walk(fs), key=lambda t: -t[0].count("/")):
            for d in dirs:
                _rmdir(os.path.join(dirpath, d))
        _rmdir(fs)


def _stable(m: Metrics) -> dict[str, object]:
    """``m`` as a dict without what changes between two reads of a busy group (CPU time,
    pressure stall totals and averages)."""
    d = m.to_dict()
    for part in ("cpu", "memory", "io"):
        if part in d:
            d[part].pop("psi", None)
    d.pop("cpu", None)
    return d


def test_sample_equals_stat_field_by_field(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path) as (children, _pid), Sampler(root=cg_path, mountpoint=mnt) as s:
        assert s.groups == [cg_path, *sorted(children)]
        for _ in range(2):  # the first sample opens the files, the second preads them
            got = s.sample()
            assert list(got) == s.groups
            for g in got:
                want = Manager.load(g, mountpoint=mnt).stat()
                if g.endswith("/busy") or g == cg_path:
                    # a process runs there: CPU and pressure move between two reads
                    assert _stable(got[g]) == _stable(want), g
                    assert got[g].cpu is not None and want.cpu is not None
                    assert got[g].cpu.usage_usec is not None
                else:
                    assert got[g] == want, g  # idle: every field, counters included
        parts = {k for k, v in got[f"{cg_path}/g0"].to_dict().items() if v}
        assert {"cpu", "memory", "io"} <= parts  # the core files were read
    # the same through managers and a smaller mask
    with tree(mnt, cg_path, sleeper=False) as (children, _):
        managers = [Manager.load(g, mountpoint=mnt) for g in children]
        mask = StatMask.CPU | StatMask.HUGETLB
        with Sampler(managers, mask=mask) as s:
            got = s.sample()
            assert list(got) == children
            for m in managers:
                assert got[m.group] == m.stat(mask)


_SINKS: list[list[str]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _SINKS and event == "open":
        _SINKS[-1].append(str(args[0]))


@contextlib.contextmanager
def counted() -> Iterator[tuple[list[str], list[int]]]:
    """The ``open`` audit events and the ``os.close`` calls inside the block."""
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    opened: list[str] = []
    closed: list[int] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    _SINKS.append(opened)
    os.close = close
    try:
        yield opened, closed
    finally:
        os.close = real_close
        _SINKS.pop()


def test_later_samples_open_and_close_nothing_in_process(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path) as (children, _pid), Sampler(root=cg_path, mountpoint=mnt) as s:
        with counted() as (opened, closed):
            s.sample()
            s.read(f"{cg_path}/busy", "cgroup.procs")
        assert opened, "the first sample opens the files (the hook sees os.open)"
        held = s.fd_count
        with counted() as (opened, closed):
            for _ in range(5):
                got = s.sample()
                assert s.read(f"{cg_path}/busy", "cgroup.procs") is not None
        assert opened == [] and closed == []
        assert len(got) == len(children) + 1 and s.fd_count == held


_CHILD = """
import os, sys
sys.path.insert(0, {src!r})
from cgroup2 import Sampler
with Sampler(root={group!r}, mountpoint={mnt!r}) as s:
    s.sample()
    s.read({busy!r}, "cgroup.procs")
    os.path.exists("/cgroup2-sampler-mark-begin")
    for _ in range(5):
        assert len(s.sample()) == {n}
        s.read({busy!r}, "cgroup.procs")
    os.path.exists("/cgroup2-sampler-mark-end")
"""


def test_later_samples_make_no_open_or_close_syscall_under_strace(
    cg_parent: Parent, cg_path: str, tmp_path: str
) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is installed by scripts/test-all (the host tier's proof)"
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path) as (children, _pid):
        code = _CHILD.format(
            src=SRC, group=cg_path, mnt=mnt, busy=f"{cg_path}/busy", n=len(children) + 1
        )
        out = os.path.join(str(tmp_path), "trace")
        subprocess.run(
            [strace, "-f", "-qq", "-o", out, "-e", "trace=%file,%desc", sys.executable, "-c", code],
            check=True,
            timeout=120,
        )
    with open(out) as f:
        lines = f.read().splitlines()
    begin = next(i for i, x in enumerate(lines) if "cgroup2-sampler-mark-begin" in x)
    end = next(i for i, x in enumerate(lines) if "cgroup2-sampler-mark-end" in x)
    between = lines[begin + 1 : end]
    calls = [re.sub(r"^\d+\s+", "", x).split("(", 1)[0] for x in between]
    assert calls, "the samples between the marks were traced"
    assert calls.count("pread64") >= 5 * (len(children) + 1) * 4, calls
    opens_closes = [x for x in between if re.match(r"^\d+\s+(open|openat|openat2|close)\(", x)]
    assert opens_closes == []
    # and before the marks the files were opened (the trace sees them at all)
    assert any("cpu.stat" in x and "openat(" in x for x in lines[:begin])


def test_removed_group_is_dropped_and_its_descriptors_closed(
    cg_parent: Parent, cg_path: str
) -> None:
    mnt = cg_parent.mountpoint
    before = _fds()
    # following the root (inotify) and, explicitly, without following (read: ENODEV)
    with (
        tree(mnt, cg_path, sleeper=False) as (children, _),
        Sampler(root=cg_path, mountpoint=mnt) as follow,
        Sampler(children, mountpoint=mnt, follow=False) as plain,
    ):
        for s in (follow, plain):
            s.sample()
        held = (follow.fd_count, plain.fd_count)
        open_now = _fds()
        _rmdir(mnt + children[0])
        got_f, got_p = follow.sample(), plain.sample()
        assert children[0] not in got_f and children[0] not in got_p
        assert children[1] in got_f and children[1] in got_p
        assert children[0] not in follow.groups and children[0] not in plain.groups
        freed = (held[0] - follow.fd_count, held[1] - plain.fd_count)
        assert freed[0] > 1 and freed[1] > 1  # the directory and its files
        assert freed[0] == freed[1]
        assert len(open_now - _fds()) == freed[0] + freed[1]  # really closed
        # a group removed between samples of an explicit sampler stays out
        assert children[0] not in plain.sample()
    assert _fds() == before  # nothing leaked once the samplers are closed


def test_new_groups_under_the_root_appear_in_the_next_sample(
    cg_parent: Parent, cg_path: str
) -> None:
    mnt = cg_parent.mountpoint
    with (
        tree(mnt, cg_path, children=2, sleeper=False) as (children, _),
        Sampler(root=cg_path, mountpoint=mnt) as s,
        Sampler(root=cg_path, mountpoint=mnt, depth=1) as shallow,
        Sampler(root=cg_path, mountpoint=mnt, follow=False) as fixed,
    ):
        for x in (s, shallow, fixed):
            x.sample()
        os.mkdir(f"{mnt}{cg_path}/new")
        os.mkdir(f"{mnt}{cg_path}/new/deeper")
        os.mkdir(f"{mnt}{cg_path}/g0/sub")
        got = s.sample()
        assert {f"{cg_path}/new", f"{cg_path}/new/deeper", f"{cg_path}/g0/sub"} <= set(got)
        assert (
            got[f"{cg_path}/new/deeper"]
            == Manager.load(f"{cg_path}/new/deeper", mountpoint=mnt).stat()
        )
        got = shallow.sample()
        assert f"{cg_path}/new" in got
        assert f"{cg_path}/new/deeper" not in got and f"{cg_path}/g0/sub" not in got
        assert set(fixed.sample()) == {cg_path, *children}
        # made and removed again between two samples: gone, its descriptors closed
        n = s.fd_count
        _rmdir(f"{mnt}{cg_path}/new/deeper")
        os.mkdir(f"{mnt}{cg_path}/flash")
        _rmdir(f"{mnt}{cg_path}/flash")
        got = s.sample()
        assert f"{cg_path}/new/deeper" not in got and f"{cg_path}/flash" not in got
        assert f"{cg_path}/new" in got and s.fd_count < n
        # a whole subtree removed
        _rmdir(f"{mnt}{cg_path}/g0/sub")
        _rmdir(f"{mnt}{cg_path}/new")
        assert set(s.sample()) == {cg_path, *children}


def test_controllers_enabled_later_are_read(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with open(cg_parent.fs_path + "/cgroup.controllers") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip(
                "hugetlb is not enabled for this run's parent: the mount root's "
                "cgroup.subtree_control lacks +hugetlb, and the host's root is not ours to change"
            )
    with tree(mnt, cg_path, children=1, sleeper=False) as (children, _):
        with open(mnt + cg_path + "/cgroup.subtree_control", "w") as f:
            f.write("-hugetlb")
        with Sampler(children, mountpoint=mnt) as s:
            assert s.sample()[children[0]].hugetlb is None
            with open(mnt + cg_path + "/cgroup.subtree_control", "w") as f:
                f.write("+hugetlb")
            got = s.sample()[children[0]]
            assert got.hugetlb is not None
            assert got == Manager.load(children[0], mountpoint=mnt).stat()
            with open(mnt + cg_path + "/cgroup.subtree_control", "w") as f:
                f.write("-hugetlb")
            assert s.sample()[children[0]].hugetlb is None


def test_close_releases_every_descriptor(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path) as (children, _):
        before = _fds()
        s = Sampler(root=cg_path, mountpoint=mnt)
        s.sample()
        s.read(children[0], "cgroup.procs")
        assert len(_fds() - before) == s.fd_count > 2 * len(children)
        s.close()
        assert _fds() == before and s.fd_count == 0
        s.close()  # idempotent
        with pytest.raises(CgroupError):
            s.sample()
        with pytest.raises(CgroupDeletedError):
            Sampler([f"{cg_path}/missing"], mountpoint=mnt)
        assert _fds() == before


_LIMIT_CHILD = """
import resource, sys
sys.path.insert(0, {src!r})
from cgroup2 import CgroupError, Manager, Sampler
soft, hard = {soft}, {hard}
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
try:
    with Sampler(root={group!r}, mountpoint={mnt!r}, overflow={overflow!r}) as s:
        got = s.sample()
        again = s.sample()
        assert got == again or len(got) == len(again)
        for g in {check!r}:
            assert got[g] == Manager.load(g, mountpoint={mnt!r}).stat(), g
        print("ok", len(got), s.fd_count, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
except CgroupError as e:
    print("error", e)
"""


def _limited(mnt: str, group: str, check: list[str], soft: int, hard: int, overflow: str) -> str:
    code = _LIMIT_CHILD.format(
        src=SRC, group=group, mnt=mnt, soft=soft, hard=hard, overflow=overflow, check=check
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return r.stdout.strip()


def test_rlimit_nofile_is_raised_or_named(cg_parent: Parent, cg_path: str) -> None:
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path, children=60, sleeper=False) as (children, _):
        idle = children[:3]
        # soft limit low, hard limit high enough: the sampler raises the soft limit
        out = _limited(mnt, cg_path, idle, 100, 4000, "error")
        ok, n, fds, soft = out.split()
        assert ok == "ok" and int(n) == 61 and int(fds) > 61 * 2
        assert 100 < int(soft) <= 4000 and int(soft) >= int(fds)
        # the hard limit too low: a clear error with the count needed and the limit
        out = _limited(mnt, cg_path, idle, 100, 150, "error")
        assert out.startswith("error"), out
        m = re.search(r"need about (\d+) open descriptors .* allows 150 \(hard limit", out)
        assert m, out
        assert int(fds) <= int(m.group(1)) <= int(fds) + 100  # the held ones, and spare
        # overflow="reopen": the files past the limit are read by open/read/close
        out = _limited(mnt, cg_path, [*idle, children[-1]], 100, 150, "reopen")
        ok, n, fds, soft = out.split()
        assert ok == "ok" and int(n) == 61 and int(fds) <= 150 and int(soft) == 150


def test_top_once_through_the_sampler_counts_tasks_below(cg_parent: Parent, cg_path: str) -> None:
    from cgroup2.cli._top import sample, sampler

    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path) as _, sampler(mnt, cg_path) as held:
        first = sample(mnt, cg_path, 0, using=held)
        assert list(first) == [cg_path]
        assert first[cg_path].tasks == 1  # the sleeper, one level below the depth shown
        os.mkdir(f"{mnt}{cg_path}/later")
        got = sample(mnt, cg_path, None, using=held)
        assert f"{cg_path}/later" in got and got[f"{cg_path}/busy"].tasks == 1
        assert got[f"{cg_path}/busy"].cpu_usec is not None


_MOUNT_CHILD = """
import json, os, subprocess, sys
sys.path.insert(0, {src!r})
from cgroup2 import Sampler
mnt, a, b = {mnt!r}, {a!r}, {b!r}
out = {{}}
with Sampler(root=a, mountpoint=mnt) as s:
    out["before"] = sorted(s.sample())
    # after the sampler started: a new group a/m, and b (with b/x, b/y) mounted onto it
    os.mkdir(mnt + a + "/m")
    subprocess.run(["mount", "--bind", mnt + b, mnt + a + "/m"], check=True)
    out["listed"] = sorted(e.name for e in os.scandir(mnt + a + "/m") if e.is_dir())
    out["after"] = sorted(s.sample())
    out["skipped"] = getattr(s, "skipped", None)
    # a group made in the mounted tree: not sampled either
    os.mkdir(mnt + b + "/z")
    out["later"] = sorted(s.sample())
    held = [os.readlink(f"/proc/self/fd/{{fd}}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{{fd}}")]
    # (a held fd of the mounted tree reads as its path there)
    out["held_below_m"] = [p for p in held if (p + "/").startswith(mnt + a + "/m/")]
    r = subprocess.run(["umount", mnt + a + "/m"], capture_output=True, text=True)
    out["umount"] = [r.returncode, r.stderr.strip()]
    if r.returncode:
        subprocess.run(["umount", "-l", mnt + a + "/m"])
    os.rmdir(mnt + b + "/z")
    os.rmdir(mnt + a + "/m")
    out["removed"] = sorted(s.sample())
    out["skipped_after"] = getattr(s, "skipped", None)
print(json.dumps(out))
"""


def test_follow_never_goes_below_a_mount_point_made_after_start(
    cg_parent: Parent, cg_path: str
) -> None:
    """A group of the test bind-mounted under the followed root after the sampler started
    (in a private mount namespace): the mounted tree's groups are never sampled, the
    mount point is named in ``skipped``, nothing on the mounted tree is held (umount
    succeeds), and the group under it is followed again once it is unmounted and removed."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private mount namespace")
    mnt = cg_parent.mountpoint
    a, b = f"{cg_path}/a", f"{cg_path}/b"
    os.mkdir(mnt + cg_path)
    try:
        for g in (a, f"{a}/g0", b, f"{b}/x", f"{b}/y"):
            os.mkdir(mnt + g)
        code = _MOUNT_CHILD.format(src=SRC, mnt=mnt, a=a, b=b)
        r = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        import json

        out = json.loads(r.stdout)
        assert out["before"] == [a, f"{a}/g0"]
        assert out["listed"] == ["x", "y"]  # the mount was there when sampled
        assert out["umount"] == [0, ""]  # nothing held on the mounted tree (no EBUSY)
        assert out["after"] == [a, f"{a}/g0"], out
        assert out["skipped"] == {f"{a}/m": "mount_point"}
        assert out["later"] == [a, f"{a}/g0"]
        assert out["held_below_m"] == []
        assert out["removed"] == [a, f"{a}/g0"] and out["skipped_after"] == {}
    finally:
        for g in (f"{b}/z", f"{b}/x", f"{b}/y", b, f"{a}/m", f"{a}/g0", a, cg_path):
            with contextlib.suppress(FileNotFoundError):
                _rmdir(mnt + g)


_BUDGET_CHILD = """
import os, resource, sys
sys.path.insert(0, {src!r})
from cgroup2 import Manager, Sampler
resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))
mnt, root = {mnt!r}, {group!r}
with Sampler(root=root, mountpoint=mnt, overflow="reopen") as s:
    first = s.sample()
    print("first", len(first), s.held_count, s.reopened_count, s.fd_count)
    for i in range(100):
        os.mkdir(f"{{mnt}}{{root}}/later{{i:03d}}")
    second = s.sample()
    print("second", len(second), s.held_count, s.reopened_count, s.fd_count)
    for g in (root + "/g199", root + "/later099"):
        assert second[g].cpu == Manager.load(g, mountpoint=mnt).stat().cpu, g
    assert s.read(root + "/later099", "cgroup.procs") == b""
    os.rmdir(f"{{mnt}}{{root}}/later050")
    third = s.sample()
    print("third", len(third), root + "/later050" in third)
"""


def test_groups_past_the_descriptor_budget_are_read_not_dropped(
    cg_parent: Parent, cg_path: str
) -> None:
    """Under a hard RLIMIT_NOFILE of 150, 200 groups and then 100 more made while
    following: every group is in every sample (those past the budget read by
    open/read/close, the same values), none is dropped, the descriptors stay under the
    limit."""
    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path, children=200, sleeper=False):
        try:
            code = _BUDGET_CHILD.format(src=SRC, mnt=mnt, group=cg_path)
            r = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
            )
            assert r.returncode == 0, r.stdout + r.stderr
            lines = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()}
            n, held, reopened, fds = map(int, lines["first"])
            assert n == 201 and held + reopened == 201 and reopened > 0 and fds <= 150
            n, held, reopened, fds = map(int, lines["second"])
            assert n == 301 and held + reopened == 301 and fds <= 150
            assert lines["third"] == ["300", "False"]
        finally:
            for i in range(100):
                with contextlib.suppress(FileNotFoundError):
                    _rmdir(f"{mnt}{cg_path}/later{i:03d}")


def test_top_shows_a_tree_larger_than_the_descriptor_limit(cg_parent: Parent, cg_path: str) -> None:
    import json
    import resource

    mnt = cg_parent.mountpoint

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))

    with tree(mnt, cg_path, children=200, sleeper=False):
        r = subprocess.run(
            [sys.executable, "-m", "cgroup2", "top", "--once", "--json", cg_path],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": SRC},
            preexec_fn=limit,
        )
        assert r.returncode == 0, r.stderr
        frame = json.loads(r.stdout.splitlines()[0])
        rows = frame.get("groups", frame.get("rows"))
        assert rows is not None and len(rows) == 201, list(frame)


def test_top_depth_limits_what_is_held_and_still_counts_tasks_below(
    cg_parent: Parent, cg_path: str
) -> None:
    from cgroup2.cli._top import sample, sampler

    mnt = cg_parent.mountpoint
    with tree(mnt, cg_path, children=30) as _:
        with sampler(mnt, cg_path) as everything:
            sample(mnt, cg_path, None, using=everything)
            all_fds = everything.fd_count
        with sampler(mnt, cg_path, 0) as held:
            got = sample(mnt, cg_path, 0, using=held)
            assert held.groups == [cg_path] and held.held_count == 1
            assert list(got) == [cg_path]
            assert got[cg_path].tasks == 1  # the sleeper, one level below: not held
            print(f"\ndescriptors held: {held.fd_count} with --depth 0, {all_fds} without")
            assert held.fd_count * 10 < all_fds
