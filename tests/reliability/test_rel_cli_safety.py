"""The ``cgroup2`` command on this machine's cgroup2 mount (host tier): signals during
``cgroup2 run``'s set-up, a missing ``--parent``, control characters in what is printed.

Every ``run`` goes below a parent group the test makes itself (``cg_path``, a plain
``mkdir``), so "nothing left behind" is "that parent has no subgroups"; the parent is
removed at the end. Processes are started by the tests and stopped by pid.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from cgtest import remove_tree, subgroups
from reltools import diff, no_leaks, snapshot  # noqa: F401

if TYPE_CHECKING:
    from conftest import Parent

CLI = [sys.executable, "-m", "cgroup2"]


@pytest.fixture
def parent(cg_parent: Parent, cg_path: str) -> Iterator[tuple[str, str]]:
    """A parent group of the test's own: (group path, file system path); removed after."""
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    try:
        yield cg_path, fs
    finally:
        remove_tree(fs)


# --- item 5: signals during set-up -------------------------------------------------------


def _signal_run(
    group: str, name: str, sig: int, *, delay: float | None, fs: str
) -> tuple[int, str, bool]:
    """Start ``cgroup2 run --parent group --name name -- true`` and send ``sig`` to it
    ``delay`` seconds after the start, or (``delay=None``) the moment its group appears.
    (exit status, stderr, whether the signal was sent before it ended)."""
    target = os.path.join(fs, name)
    p = subprocess.Popen(
        [*CLI, "run", "--parent", group, "--name", name, "--", "true"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sent = False
    try:
        if delay is None:
            deadline = time.monotonic() + 10
            while not os.path.lexists(target):
                if p.poll() is not None or time.monotonic() > deadline:
                    break
        else:
            time.sleep(delay)
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
                sent = True
        _, err = p.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        p.wait()
    return p.returncode, err.decode(errors="replace"), sent


@pytest.mark.slow
def test_run_signal_during_setup_leaves_no_group(parent: tuple[str, str]) -> None:
    """Item 5: SIGINT, SIGTERM or SIGHUP at any moment of ``cgroup2 run``'s set-up (swept
    over the whole run, and sent the moment the group's directory appears) leaves no group
    behind, and the exit status says what happened."""
    group, fs = parent
    # How long a run takes here, to sweep the signal over all of it.
    t0 = time.monotonic()
    status, err, _ = _signal_run(group, "calibrate", 0, delay=0.0, fs=fs)
    total = time.monotonic() - t0
    assert status == 0, err
    assert subgroups(fs) == []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    tries: list[tuple[int, float | None]] = []
    steps = 24
    for i in range(steps):
        tries.append((sigs[i % 3], total * 1.1 * i / steps))  # 0 .. 110% of a run
    for i in range(18):
        tries.append((sigs[i % 3], None))  # the moment the group appears
    leaked, bad = [], []
    for n, (sig, delay) in enumerate(tries):
        name = f"job{n}"
        status, err, sent = _signal_run(group, name, sig, delay=delay, fs=fs)
        when = "at mkdir" if delay is None else f"after {delay * 1000:.0f} ms"
        left = subgroups(fs)
        if left:
            leaked.append(f"{signal.Signals(sig).name} {when}: {left} (status {status})")
            for g in left:
                remove_tree(os.path.join(fs, g.split("/")[0]))
        # 0: the command ran to its end first; 128+N: the command was stopped by the
        # signal (or not started); -N: cgroup2 was killed before it made anything.
        ok = {0, 128 + sig, -sig} if sent else {0}
        traceback = "Traceback" in err and not err.rstrip().endswith("KeyboardInterrupt")
        if (
            sent
            and sig == signal.SIGINT
            and "KeyboardInterrupt" in err
            and "cgroup2" not in err
        ):
            # the interpreter itself was interrupted while starting (importing site or
            # runpy), before any of the program ran: CPython exits with status 1 then
            ok.add(1)
        if status not in ok or traceback:
            bad.append(f"{signal.Signals(sig).name} {when}: status {status}: {err.strip()}")
    assert not leaked, f"groups left behind in {len(leaked)} of {len(tries)} tries: {leaked}"
    assert not bad, f"unexpected outcomes: {bad}"


# --- item 6: a missing --parent ----------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("command", [["true"], ["sh", "-c", "exit 3"], ["/nonexistent/cmd"]])
def test_run_refuses_a_missing_parent(parent: tuple[str, str], command: list[str]) -> None:
    """Item 6: ``run --parent /a/b`` where /a/b does not exist is an error naming it, and
    nothing is created (not /a, not /a/b, not the job), whatever the command would do."""
    group, fs = parent
    before = snapshot(fs)
    missing = f"{group}/a/b"
    p = _run("run", "--parent", missing, "--name", "job", "--", *command)
    assert p.returncode == 1, p.stderr
    assert p.stderr == (f"cgroup2: error: parent group {missing} does not exist; create it first\n")
    assert subgroups(fs) == []
    assert diff(before, snapshot(fs)) == []


@pytest.mark.parametrize(
    ("command", "status"), [(["true"], 0), (["sh", "-c", "exit 3"], 3), (["/nonexistent/cmd"], 127)]
)
def test_run_under_an_existing_parent_leaves_it_as_it_was(
    parent: tuple[str, str], command: list[str], status: int
) -> None:
    """Item 6: under an existing ``--parent`` (two levels below the test's group), the job
    is removed when it ends, on success and on failure, and the parents are untouched."""
    group, fs = parent
    os.makedirs(os.path.join(fs, "a", "b"))
    before = snapshot(fs)
    p = _run("run", "--parent", f"{group}/a/b", "--name", "job", "--", *command)
    assert p.returncode == status, p.stderr
    assert sorted(subgroups(fs)) == ["a", "a/b"]
    assert diff(before, snapshot(fs)) == []


# --- item 8: control characters in what is printed ----------------------------------------

#: A group name and a command line that would clear root's screen, set its window title,
#: start a CSI sequence (U+009B, C1) and reverse the text that follows (U+202E).
EVIL_NAME = "evil\x1b[2J\x1b]0;pwn\x07\u009b31m\u202etxt.exe"
EVIL_ARGV0 = "\x1b]0;pwn\x07\x1b[2Jsleep\u009b31m\u202e"
RAW = (b"\x1b", b"\x07", b"\x9b", "\u202e".encode())


def _join(fs_path: str) -> Callable[[], None]:
    def join() -> None:
        with open(os.path.join(fs_path, "cgroup.procs"), "w") as f:
            f.write("0")

    return join


def _cli_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def test_control_characters_are_escaped_in_output(parent: tuple[str, str]) -> None:
    """Item 8: a group whose name holds ESC, BEL, a C1 CSI and U+202E, with a process whose
    argv[0] holds an OSC title sequence: ``tree``, ``top --once``, ``stat`` and ``run
    --summary`` print none of those characters raw, and show them escaped."""
    group, fs = parent
    evil_fs = os.path.join(fs, EVIL_NAME)
    os.mkdir(evil_fs)
    sleep = shutil.which("sleep") or "/bin/sleep"
    proc = subprocess.Popen(
        [EVIL_ARGV0, "30"],
        executable=sleep,
        preexec_fn=_join(evil_fs),
        stdin=subprocess.DEVNULL,
    )
    try:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert f.read().startswith(EVIL_ARGV0.encode())  # the crafted argv[0] is there
        runs = {
            "tree": _cli_bytes("tree", group),
            "top": _cli_bytes("top", "--once", "--interval", "0.1", "--sort", "name", group),
            "stat": _cli_bytes("stat", f"{group}/{EVIL_NAME}"),
            "run": _cli_bytes(
                "run", "--parent", group, "--name", EVIL_NAME + "2", "--summary", "--", "true"
            ),
        }
        for what, p in runs.items():
            assert p.returncode == 0, (what, p.stderr)
            out = p.stdout + p.stderr
            raw = [c for c in RAW if c in out]
            assert not raw, f"{what} printed {raw} raw: {out!r}"
            if what == "top":  # a long group path folds onto further lines of its column
                out = b"".join(ln.split()[0] for ln in out.splitlines()[2:] if ln.split())
            assert b"evil\\x1b[2J\\x1b]0;pwn\\x07\\u009b31m\\u202etxt.exe" in out, (what, out)
        assert b"\\x1b]0;pwn\\x07\\x1b[2Jsleep\\u009b31m\\u202e 30" in runs["tree"].stdout
    finally:
        proc.kill()
        proc.wait()


# --- run --name: one atomic mkdir decides ------------------------------------------------


def _race_pairs(group: str, fs: str, work: str, pairs: int, at_once: int) -> list[str]:
    """``pairs`` pairs of ``cgroup2 run --parent group --name pN`` started together, up to
    ``at_once`` pairs at a time. Each command notes that it started, then waits until the
    test lets it end: once either run of its pair has ended (the refused one), or once
    both have started (a shared group). What went wrong, per pair."""
    wrong: list[str] = []
    for first in range(0, pairs, at_once):
        batch = []
        for i in range(first, min(first + at_once, pairs)):
            d = os.path.join(work, f"p{i}")
            os.mkdir(d)
            script = f"touch {d}/started.$$; while [ ! -e {d}/stop ]; do sleep 0.01; done"
            procs = [
                subprocess.Popen(
                    [*CLI, "run", "--parent", group, "--name", f"p{i}", "--", "sh", "-c", script],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                for _ in range(2)
            ]
            batch.append((i, d, procs))
        try:
            deadline = time.monotonic() + 120  # an upper bound, not a measurement
            while any(p.poll() is None for _, _, procs in batch for p in procs):
                assert time.monotonic() < deadline, "runs did not end"
                for _, d, procs in batch:
                    started = [n for n in os.listdir(d) if n.startswith("started.")]
                    done = any(p.poll() is not None for p in procs)
                    if (done or len(started) == 2) and not os.path.exists(f"{d}/stop"):
                        open(f"{d}/stop", "w").close()
                time.sleep(0.01)
        finally:
            for _, _, procs in batch:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                    p.wait()
        for i, d, procs in batch:
            codes = sorted(p.returncode for p in procs)
            errs = [p.stderr.read().decode() for p in procs if p.stderr is not None]
            for p in procs:
                if p.stderr is not None:
                    p.stderr.close()
            started = [n for n in os.listdir(d) if n.startswith("started.")]
            refused = f"cgroup2: error: group {group}/p{i} exists already; choose another --name\n"
            if codes != [0, 1] or len(started) != 1 or sorted(errs) != ["", refused]:
                wrong.append(f"p{i}: status {codes}, {len(started)} started, stderr {errs}")
    return wrong


@pytest.mark.slow
def test_run_same_name_at_once_exactly_one_runs(
    parent: tuple[str, str], tmp_path: pathlib.Path
) -> None:
    """Two ``run --name X`` with the same ``--parent`` at once: the group's one ``mkdir``
    decides. Exactly one command of each pair runs and ends with status 0; the other run
    fails with the "exists already" error before starting its command, and neither
    touches the other's group (once, both passed a check and shared the group, and the
    first one's removal SIGKILLed the second: status 137)."""
    group, fs = parent
    wrong = _race_pairs(group, fs, str(tmp_path), pairs=50, at_once=5)
    assert wrong == []
    assert subgroups(fs) == []


# --- run with few file descriptors ---------------------------------------------------------


def _run_limited(group: str, nofile: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return subprocess.run(
        [*CLI, "run", "--parent", group, "--name", "job", "--", "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, preexec_fn=limit,
    )


@pytest.mark.parametrize("nofile", [5, 6, 7, 8, 9])
def test_run_with_few_file_descriptors_fails_in_one_line_and_leaves_nothing(
    parent: tuple[str, str], nofile: int
) -> None:
    """Under ``ulimit -n 5`` or ``6`` the run cannot get its descriptors: a one-line error
    naming the limit (it was an OSError traceback, and under 5 the group stayed: the pipe
    made first was not closed, so the removal could not open the parent); with a few more
    it runs. Either way no group is left."""
    group, fs = parent
    p = _run_limited(group, nofile)
    if nofile <= 6 or p.returncode:
        assert p.returncode == 1, p.stderr
        assert p.stderr.startswith("cgroup2: error: ") and p.stderr.count("\n") == 1, p.stderr
        assert "Too many open files" in p.stderr and "ulimit -n" in p.stderr
    else:
        assert p.stderr == ""
    assert subgroups(fs) == []


# --- freeze or kill of the caller's own group -------------------------------------------------


def _in_group(group: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``cgroup2 exec GROUP -- ARGV``: ARGV runs in GROUP (the test itself stays out)."""
    return subprocess.run(
        [*CLI, "exec", group, "--", *argv], capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


def _events(fs: str) -> dict[str, str]:
    with open(os.path.join(fs, "cgroup.events")) as f:
        return dict(line.split() for line in f)


@pytest.mark.parametrize(
    ("op", "where"),
    [("freeze", ""), ("freeze", "/sub"), ("kill", ""), ("kill", "/sub")],
    ids=["freeze-own", "freeze-ancestor", "kill-own", "kill-ancestor"],
)
def test_freeze_or_kill_of_the_callers_own_group_is_refused(
    parent: tuple[str, str], op: str, where: str
) -> None:
    """``cgroup2 exec G -- cgroup2 freeze G`` froze itself and waited for ever (the kill
    killed itself): the caller's own group and its ancestors are refused, with a message,
    and nothing is written."""
    group, fs = parent
    os.makedirs(os.path.join(fs, "g", "sub"))
    g = f"{group}/g"
    try:
        p = _in_group(g + where, *CLI, op, g)
    except subprocess.TimeoutExpired:
        with open(os.path.join(fs, "g", "cgroup.freeze"), "w") as f:
            f.write("0")  # thaw what froze itself (subprocess has killed it)
        pytest.fail(f"'cgroup2 {op}' of its own group did not return")
    assert p.returncode == 1, (p.returncode, p.stderr)
    mine = "it" if not where else f"{g}/sub, below it"
    assert re.fullmatch(
        rf"cgroup2: error: refusing to {op} {g}: this process \(\d+\) runs in {mine}, so it "
        rf"would {op} itself \(--force to do it anyway\)\n",
        p.stderr,
    ), p.stderr
    assert _events(os.path.join(fs, "g")) == {"populated": "0", "frozen": "0"}


def test_rm_kill_of_the_callers_own_group_is_refused(parent: tuple[str, str]) -> None:
    """``rm --kill`` kills first: refused the same way (it has no --force: a group with
    this process in it cannot be removed anyway), and the group stays."""
    group, fs = parent
    os.mkdir(os.path.join(fs, "g"))
    g = f"{group}/g"
    p = _in_group(g, *CLI, "rm", "--kill", g)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert re.fullmatch(
        rf"cgroup2: error: refusing to kill {g}: this process \(\d+\) runs in it, so it "
        rf"would kill itself\n",
        p.stderr,
    ), p.stderr
    assert os.path.isdir(os.path.join(fs, "g"))


def test_kill_of_the_callers_own_group_when_asked_for(parent: tuple[str, str]) -> None:
    """With ``--force`` (``allow_self=True`` in the library) the caller kills the group it
    runs in, itself included: run here in a child process alone in a test group."""
    group, fs = parent
    os.mkdir(os.path.join(fs, "g"))
    g = f"{group}/g"
    p = _in_group(g, *CLI, "kill", "--force", g)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert _events(os.path.join(fs, "g"))["populated"] == "0"
    code = (
        "import sys\n"
        "from cgroup2 import CgroupError, Manager\n"
        f"m = Manager.load({g!r})\n"
        "try:\n"
        "    m.kill()\n"
        "except CgroupError as e:\n"
        "    print(e, flush=True)\n"
        "m.kill(allow_self=True)\n"
        "print('not reached', flush=True)\n"
    )
    p = _in_group(g, sys.executable, "-c", code)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "(allow_self=True to do it anyway)\n" in p.stdout
    assert "not reached" not in p.stdout
    assert _events(os.path.join(fs, "g"))["populated"] == "0"


# --- kill --signal by a user who may not signal the group's processes -------------------------

KILL_AS_USER = "import sys\nfrom cgroup2.cli import main\nsys.exit(main())\n"


def test_kill_signal_not_permitted_signals_nothing_and_says_so(
    parent: tuple[str, str], cg_parent: Parent
) -> None:
    """``cgroup2 kill --signal TERM G`` by a user who may signal one process of G (its
    own) but not the other (root's): the permission of every process is checked first,
    nothing is signalled, and the error is one line naming what was not permitted (it
    was a PermissionError traceback, after the processes before the refused one had been
    signalled)."""
    from delegation_tools import NOBODY, run_as, why_not_usable

    why = why_not_usable()
    if why is not None:
        pytest.skip(why)
    group, fs = parent
    os.mkdir(os.path.join(fs, "g"))
    procs_file = os.path.join(fs, "g", "cgroup.procs")

    def as_nobody() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    # nobody's own process first in the group, then root's: the first would be signalled
    theirs = subprocess.Popen(["sleep", "300"], preexec_fn=as_nobody)
    root = subprocess.Popen(["sleep", "300"])
    try:
        for p in (theirs, root):
            with open(procs_file, "w") as f:
                f.write(str(p.pid))
        r = run_as(NOBODY, KILL_AS_USER, "kill", "--signal", "TERM", f"{group}/g",
                   procs=None, timeout=60)
        assert r.rc == 1, (r.rc, r.err)
        assert "Traceback" not in r.err
        assert r.err.count("\n") == 1 and r.err.startswith("cgroup2: error: "), r.err
        assert (
            f"may not signal 1 of the 2 processes (pid {root.pid}); none was signalled"
            in r.err
        ), r.err
        assert theirs.poll() is None and root.poll() is None  # both alive: nothing sent
    finally:
        for p in (theirs, root):
            p.kill()
            p.wait()


def test_a_refusal_after_the_check_names_what_was_signalled(
    parent: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose credentials change between the permission check and the signal:
    the others are signalled, and the error names the refused pid and the count sent."""
    from reltools import sleeper_in, stop

    import cgroup2.manager as mgr
    from cgroup2 import _fs, _sig
    from cgroup2.errors import KernelError

    _, fs = parent
    g = os.path.join(fs, "g")
    os.mkdir(g)
    a, b = sleeper_in(g), sleeper_in(g)
    real = _sig.pidfd_send_signal
    calls: list[int] = []

    def send(fd: int, sig: int, *args: Any) -> None:
        calls.append(sig)
        if sig and calls.count(sig) == 2:  # the second real signal: refused
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real(fd, sig)

    try:
        monkeypatch.setattr(_sig, "pidfd_send_signal", send)
        with _fs.Dir.open(g) as d, pytest.raises(KernelError) as e:
            mgr.signal_subtree(d, signal.SIGTERM)
        monkeypatch.undo()
        assert e.value.errno == errno.EPERM
        assert "may not signal 1 of the 2 processes" in str(e.value)
        assert str(e.value).endswith("; 1 were signalled)")
        assert calls == [0, 0, signal.SIGTERM, signal.SIGTERM]  # checked first, then sent
        deadline = time.monotonic() + 10  # an upper bound for a SIGTERM to end a sleep
        while a.poll() is None and b.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert {a.poll(), b.poll()} == {-signal.SIGTERM, None}  # one signalled, one not
    finally:
        monkeypatch.undo()
        stop(a)
        stop(b)
