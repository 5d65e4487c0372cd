"""``cgroup2 run``: run a command in a new group under limits, and report what it used.

The process machinery: the signals to forward (and SIGCHLD) are blocked, then the command
is forked. The child waits on a pipe until the parent has placed it in the group (by
writing its pid to the group's ``cgroup.procs``, or as the pid of a systemd transient
scope), then restores the signal state it inherited and ``execvp``\\ s the command; an
``exec`` failure comes back over a close-on-exec pipe. So the command's first instruction
already runs under the limits. With ``--systemd --summary`` a second forked process, which
only waits on a pipe, is put in the scope too: systemd removes a scope the moment it is
empty, and this keeps its counters readable until the summary is taken (``pids.max`` is
raised by one for it, so the command gets the limit it asked for).

The parent then waits with ``sigwaitinfo``: SIGCHLD ends the wait, the other signals are
passed on to the child (except those the terminal itself sent to the whole foreground
process group, which the child got already).
"""

from __future__ import annotations

import errno
import os
import sys
import time

from .. import _sig
from .._fs import Dir
from ..errors import CgroupDeletedError, CgroupError
from ..manager import Manager
from ..paths import verify_group_path
from ._limits import (
    Failure,
    add_limit_flags,
    build_resources,
    check_controllers,
    check_writable,
    limits_given,
)
from ._lite import REMAINDER
from ._text import printable
from ._units import UsageError, format_bytes, parse_interval

TYPE_CHECKING = False
if TYPE_CHECKING:  # rich is imported where the summary is drawn (start-up time); the
    # signal functions are those of cgroup2._sig (signal imports enum), contextlib and
    # collections are not imported
    import argparse
    from collections.abc import Sequence

    from rich.console import Console

    from ..resources import Resources
    from ._lite import Subparsers
    from ._pressure import PressureMonitor, PressurePolicy

__all__ = ["FORWARDED", "Failure", "add_parser", "build_resources", "run_command"]

_DESCRIPTION = (
    "Create the group PARENT/NAME (default /cgroup2-run-<pid> directly below the "
    "cgroup2 mount), apply the limits, run CMD in it, and remove the group when CMD "
    "ends (killing what is left in it) unless --keep. With --group, CMD runs in "
    "that existing group instead, which is left as it is. Exits with CMD's status "
    "(128+N when killed by signal N), 127 when CMD is not found, 126 when it cannot "
    "be executed, 1 when the group cannot be made. SIGINT, SIGTERM, SIGHUP and "
    "SIGQUIT are passed on to CMD (those the terminal sends to the whole process "
    "group are not sent twice). With --systemd, CMD runs in the transient scope "
    "NAME.scope in SLICE instead. A limit whose controller the mount lacks is an "
    "error that names the controller."
)


def add_parser(sub: Subparsers, name: str, help: str) -> None:
    """Add the subcommand ``run`` with its arguments."""
    r = sub.add_parser(name, help=help, description=_DESCRIPTION)
    add_limit_flags(r)
    r.add_argument("--name", metavar="NAME", help="the group's name (default cgroup2-run-<pid>)")
    r.add_argument("--parent", metavar="GROUP", help="create the group below GROUP (default /)")
    r.add_argument(
        "--group", metavar="GROUP", help="run in this existing group (not made, not removed)"
    )
    r.add_argument("--keep", action="store_true", help="leave the group when CMD ends")
    r.add_argument("--summary", action="store_true", help="print what CMD used, on stderr")
    r.add_argument(
        "--live",
        type=lambda t: parse_interval(t, "--live"),
        metavar="SEC",
        help="while CMD runs, print its CPU use, memory and tasks every SEC seconds (stderr)",
    )
    r.add_argument(
        "--systemd", action="store_true", help="a systemd transient scope instead of a group"
    )
    r.add_argument("--slice", metavar="SLICE", help="with --systemd: the slice (system.slice)")
    r.add_argument(
        "--user",
        action="store_true",
        help=(
            "a transient scope of the calling user's systemd manager (like systemd-run "
            "--user --scope), delegated; the default without root when no delegated "
            "group is found"
        ),
    )
    r.add_argument(
        "--on-pressure", action="append", type=_on_pressure, metavar="TRIGGER=ACTION",
        help="when the PSI trigger RESOURCE:KIND:STALL:WINDOW fires for CMD's group "
        "(e.g. memory:full:100ms:1s), ACTION it: kill, freeze or signal:SIG (repeatable; "
        "reported in --summary)",
    )
    r.add_argument(
        "--pressure-cooldown", type=lambda t: parse_interval(t, "--pressure-cooldown"),
        default=10.0, metavar="SEC",
        help="after an --on-pressure action, ignore that trigger for SEC seconds (default 10)",
    )
    r.add_argument("cmd", nargs=REMAINDER, metavar="-- CMD ...")


def _on_pressure(text: str) -> PressurePolicy:
    """``--on-pressure``: a trigger and its action (cli/_pressure, imported when used)."""
    from ._pressure import parse_on_pressure

    return parse_on_pressure(text)


#: Signals passed on to the command.
FORWARDED = (_sig.SIGINT, _sig.SIGTERM, _sig.SIGHUP, _sig.SIGQUIT)
_SI_KERNEL = 0x80  # si_code of a signal the kernel sent (e.g. the terminal's ^C)
# Python ignores these at start-up; an exec'd command must get the default back.
_RESET = (*FORWARDED, _sig.SIGPIPE, _sig.SIGXFSZ)

class Live:
    """``--live SEC``: one line of the group's statistics every SEC seconds while CMD runs
    (CPU use since the last line, memory.current, pids.current, throttled periods)."""

    def __init__(self, m: Manager, err: Console, start: float) -> None:
        # Made before CMD starts (``--live`` only): the statistics' modules and rich are
        # imported, the group's files opened and a first sample taken here, so that the
        # first line is printed on time (importing them at the first tick took 3.5 s in
        # an emulated VM on a busy machine) and its CPU share counts from the start.
        from .. import stats  # noqa: F401
        from .._statmask import StatMask
        from ..sampler import Sampler

        self.mask = StatMask.CPU | StatMask.MEMORY_USAGE | StatMask.PIDS
        self.m, self.err, self.start = m, err, start
        self.last_t, self.last_usage = start, 0
        err.is_terminal  # noqa: B018 - makes the Console (imports rich) now, not at a tick
        # the group's files held open: each line is one pread a file (cgroup2.Sampler,
        # whose descriptors are closed with it when this object goes)
        self.sampler: Sampler = Sampler([m], mask=self.mask, follow=False)
        first = self.sampler.sample().get(m.group)
        cpu = first.cpu if first is not None else None
        if cpu is not None and cpu.usage_usec is not None:
            self.last_usage = cpu.usage_usec

    def line(self, now: float) -> str:
        st = self.sampler.sample().get(self.m.group)
        if st is None:
            raise CgroupDeletedError(
                f"cgroups: cgroup deleted: {self.m.path} was removed", path=self.m.path
            )
        cpu, mem, pids = st.cpu, st.memory, st.pids
        usage = cpu.usage_usec if cpu and cpu.usage_usec is not None else None
        parts = [f"t={now - self.start:5.1f}s"]
        if usage is not None and now > self.last_t:
            share = (usage - self.last_usage) / 1e6 / (now - self.last_t)
            parts.append(f"cpu={100 * share:5.1f}%")
            self.last_usage = usage
        if cpu and cpu.nr_throttled is not None:
            parts.append(f"throttled={cpu.nr_throttled}/{cpu.nr_periods}")
        if mem is not None and mem.usage is not None:
            parts.append(f"memory={format_bytes(mem.usage)}")
        if pids is not None:
            parts.append(f"pids={pids.current}")
        self.last_t = now
        return "  ".join(parts)

    def tick(self) -> None:
        try:
            text = self.line(time.monotonic())
        except CgroupError as e:  # the command may have moved or removed its group
            text = f"no statistics: {e}"
        self.err.print(
            f"cgroup2 run: {printable(text)}", highlight=False, markup=False, emoji=False
        )


def exec_candidates(file: str) -> list[str]:
    """The paths ``os.execvp(file, ...)`` tries, in order: ``file`` itself when it names a
    directory, else ``file`` in each directory of ``PATH`` (``os.defpath`` without one),
    as ``os.get_exec_path()`` reads it from ``os.environ``. Found in the parent: in the
    forked child, ``os.execvp`` would import ``warnings`` first (for ``get_exec_path``),
    which takes longer there than the rest of the child's work."""
    if os.path.dirname(file):
        return [file]
    path = os.environ.get("PATH")
    if path is None:
        path = os.defpath
    return [os.path.join(d, file) for d in path.split(os.pathsep)]


def exec_first(candidates: Sequence[str], argv: list[str]) -> None:
    """``os.execv`` of the first of ``candidates`` that can be run, with ``os.execvp``'s
    errors: the first error other than "not found" (ENOENT, ENOTDIR) if any, else the last
    one. Returns only by raising."""
    saved: OSError | None = None
    last: OSError | None = None
    for full in candidates:
        try:
            os.execv(full, argv)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            last = e
            if saved is None:
                saved = e
    raise saved or last or FileNotFoundError(errno.ENOENT, "no path to try", argv[0])


def _child(
    cmd: Sequence[str], go_r: int, err_w: int, old_mask: set[int], candidates: list[str]
) -> None:
    """In the forked child: wait to be placed, restore the signal state, exec. Never returns."""
    code = 127
    try:
        ok = os.read(go_r, 1)
        if ok != b"1":
            os._exit(1)  # the parent could not place us: it reports why
        for s in _RESET:
            _sig.signal(s, _sig.SIG_DFL)
        _sig.pthread_sigmask(_sig.SIG_SETMASK, old_mask)
        exec_first(candidates, list(cmd))
    except OSError as e:
        try:  # noqa: SIM105 - contextlib is not imported (start-up)
            os.write(err_w, str(e.errno or 0).encode())
        except OSError:
            pass
        code = 127 if e.errno == errno.ENOENT else 126
    except BaseException:
        pass
    os._exit(code)


def _why(e: CgroupError) -> str:
    text = str(e).removeprefix("cgroups: ")
    return text.split(": ", 1)[-1] if text.startswith("invalid ") else text


def _drain(sigs: set[int]) -> None:
    """Consume pending blocked signals, so that unblocking them does not act on them."""
    while _sig.sigpending() & sigs:
        _sig.sigtimedwait(sigs, 0)


def run_command(
    args: argparse.Namespace, cmd: Sequence[str], err: Console, *, mountpoint: str
) -> int:
    """Create the group, run ``cmd`` in it, report, clean up; return the exit status.

    The forwarded signals (and SIGCHLD) are blocked before anything is created and stay
    blocked until the group is gone: one that comes during the set-up or the clean-up is
    queued, not acted on half-way (a SIGTERM would otherwise end this process between the
    group's ``mkdir`` and its removal). One that comes before the command is started
    stops the run there: the command is not started, the group is removed, and the exit
    status is 128+N. Pending signals are discarded at the end, before the mask is restored.
    """
    if not cmd:
        raise UsageError("run: no command given (cgroup2 run [OPTIONS] -- CMD ...)")
    # no limit given, no Resources: their types (dataclasses, and re with it) are not
    # imported for a plain run (start-up time)
    resources, given = build_resources(args) if limits_given(args) else (None, [])
    if args.group is not None and resources is not None:
        raise UsageError(
            "run: --group runs CMD in the group as it is; change its limits with "
            "'cgroup2 set' (limit options here make a new group)"
        )
    name = args.name or f"cgroup2-run-{os.getpid()}"
    if "/" in name or name in (".", ".."):
        raise UsageError(f"invalid --name {printable(repr(name))}: one path element")
    try:
        verify_group_path("/" + name)
    except CgroupError as e:
        raise UsageError(f"invalid --name {printable(repr(name))}: {_why(e)}") from None
    sigs = {*FORWARDED, _sig.SIGCHLD}
    # The current mask first: a SIGINT that came before this line raises its
    # KeyboardInterrupt here (CPython runs pending handlers inside pthread_sigmask), while
    # nothing is made yet. Once the second call has returned, no handler is pending.
    old_mask = _sig.pthread_sigmask(_sig.SIG_BLOCK, ())
    try:
        _sig.pthread_sigmask(_sig.SIG_BLOCK, sigs)
        return _run_blocked(args, cmd, err, mountpoint, name, resources, given, sigs, old_mask)
    finally:
        _drain(sigs)
        _sig.pthread_sigmask(_sig.SIG_SETMASK, old_mask)


def _run_blocked(
    args: argparse.Namespace,
    cmd: Sequence[str],
    err: Console,
    mountpoint: str,
    name: str,
    resources: Resources | None,
    given: list[str],
    sigs: set[int],
    old_mask: set[int],
) -> int:
    """:func:`run_command` once the signals are blocked."""
    # --- without root (cli/_rootless): the caller's delegated group, else --user --------
    if getattr(args, "user", False):
        args.systemd = True  # a transient scope of the calling user's systemd manager
    elif args.group is None and args.parent is None and not args.systemd and os.geteuid():
        from ._rootless import rootless_parent

        if resources is None:
            from ..resources import Resources

            resources = Resources()
        found = rootless_parent(mountpoint, resources)
        if found is None:
            args.systemd = args.user = True
        else:
            args.parent = found
    group = None
    if args.group is not None:
        pass  # an existing group: loaded below, neither made nor removed
    elif not args.systemd:
        parent = args.parent or "/"
        group = parent.rstrip("/") + "/" + name
        # Like mkdir without -p: a missing parent is an error, never made (and left).
        if parent != "/" and not os.path.isdir(mountpoint.rstrip("/") + parent):
            raise Failure(f"parent group {printable(parent)} does not exist; create it first")
        check_controllers(mountpoint, given)
        if resources is not None and resources.unified:
            top = mountpoint.rstrip("/") + parent if parent != "/" else mountpoint
            with Dir.open(top, mountpoint) as d:
                check_writable(d, resources)  # the parent has the files of its controllers
        fs = mountpoint.rstrip("/") + group
        if os.path.isdir(fs) and not os.path.islink(fs):
            raise Failure(f"group {printable(group)} exists already; choose another --name")
    pids_extra = 0
    holder: list[tuple[int, int]] = []
    if args.systemd and args.summary:
        # systemd removes a scope as soon as it is empty: a holder process keeps it (and
        # its counters) until the summary is read; pids.max is raised by one for it.
        holder.append((0, 0))
        if (
            resources is not None
            and resources.pids is not None
            and isinstance(resources.pids.max, int)
        ):
            import dataclasses

            from ..controllers.pids import Pids

            resources = dataclasses.replace(resources, pids=Pids(max=resources.pids.max + 1))
            pids_extra = 1
    placed: list[Manager] = []
    monitors: list[PressureMonitor] = []  # --on-pressure (cli/_pressure)
    status = 1
    try:
        if args.group is not None:
            placed.append(Manager.load(args.group, mountpoint=mountpoint))
        elif group is not None:
            placed.append(_create_new(group, resources, mountpoint))
        status, sig, wall = _fork_exec(
            args, cmd, resources, placed, old_mask, holder, err, monitors
        )
        if args.summary and placed:
            from ._summary import collect_summary

            try:
                s = collect_summary(
                    placed[0], status=status, sig=sig, wall=wall, pids_extra=pids_extra
                )
                if monitors:
                    import dataclasses

                    s = dataclasses.replace(s, pressure=monitors[0].report())
                err.print(s.render())
            except CgroupError as e:  # the command may have removed or moved its group
                why = printable(str(e))
                err.print(f"cgroup2 run: no summary: {why}", highlight=False, markup=False)
        return status
    finally:
        _release(holder)
        if placed:
            try:
                _finish(placed[0], args, err)
            except CgroupError as e:
                # the command's status stays the exit status, unless it was 0; a plain
                # line (rich's import may be what fails, e.g. out of file descriptors)
                print(f"cgroup2: error: removing the group: {printable(str(e))}",
                      file=sys.stderr)
                if status == 0:
                    status = 1
                    return status


def _create_new(group: str, resources: Resources | None, mountpoint: str) -> Manager:
    """Make the group with one ``mkdir`` that must create it: a group that exists (another
    run may have made it a moment ago) is never adopted, and so never removed, here."""
    try:
        return Manager.create(
            group, resources, mountpoint=mountpoint, exist_ok=False, parents=False
        )
    except CgroupDeletedError as e:
        parent = group.rpartition("/")[0] or "/"
        if e.errno != errno.ENOENT or os.path.isdir(mountpoint.rstrip("/") + parent):
            raise
        raise Failure(
            f"parent group {printable(parent)} does not exist; create it first"
        ) from None
    except CgroupError as e:
        if e.errno != errno.EEXIST:
            raise
        raise Failure(
            f"group {printable(group)} exists already; choose another --name"
        ) from None


def _start_holder() -> tuple[int, int]:
    """A forked process that only waits for EOF on a pipe: (pid, write end)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(3, r)
            os.closerange(r + 1, 1 << 16)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


def _release(holder: list[tuple[int, int]]) -> None:
    """Let the holder process (if one was started) exit, and reap it."""
    for pid, w in holder:
        if pid > 0:
            os.close(w)
            os.waitpid(pid, 0)
    holder.clear()


def _place(
    args: argparse.Namespace,
    placed: list[Manager],
    pid: int,
    resources: Resources | None,
    holder: list[tuple[int, int]],
) -> None:
    """Put ``pid`` in the group (or start the scope with it); ``placed`` gets the group."""
    if placed:
        placed[0].add_proc(pid)
        return
    create = getattr(Manager, "create_systemd", None)
    if create is None:
        raise Failure("--systemd: this build of cgroup2 has no systemd support")
    unit = args.name or f"cgroup2-run-{os.getpid()}"
    if not unit.endswith(".scope"):
        unit += ".scope"
    user = {"user": True} if getattr(args, "user", False) else {}  # --user
    made: Manager = create(args.slice or "", unit, pid, resources, **user)
    placed.append(made)
    if holder:
        holder[0] = _start_holder()
        made.add_proc(holder[0][0])


def _fork_exec(
    args: argparse.Namespace,
    cmd: Sequence[str],
    resources: Resources | None,
    placed: list[Manager],
    old_mask: set[int],
    holder: list[tuple[int, int]],
    err: Console,
    monitors: list[PressureMonitor] | None = None,
) -> tuple[int, int | None, float]:
    """Fork, place and start the command (signals are blocked by the caller); wait for
    it: (exit status, the signal that killed it, wall time)."""
    sigs = {*FORWARDED, _sig.SIGCHLD}
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    try:
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
    except OSError:  # EMFILE (ulimit -n): the first pipe goes, so the group can be removed
        os.close(go_r)
        os.close(go_w)
        raise
    candidates = exec_candidates(cmd[0])
    start = time.monotonic()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(err_r)
            _child(cmd, go_r, err_w, old_mask, candidates)
        os.close(go_r)
        os.close(err_w)
        live = None
        try:
            _place(args, placed, pid, resources, holder)
            if args.live and placed:  # before CMD starts: its first line comes on time
                live = Live(placed[0], err, start)
        except BaseException:
            os.close(go_w)  # the child reads EOF and exits
            os.close(err_r)
            os.waitpid(pid, 0)
            raise
        pending = _sig.sigpending() & set(FORWARDED)
        if pending:  # asked to stop during the set-up: the command is not started
            os.close(go_w)
            os.close(err_r)
            os.waitpid(pid, 0)
            first = min(pending)
            import signal  # here: it makes enum types (start-up of every run)

            raise Failure(
                f"{signal.Signals(first).name} received before {cmd[0]!r} started; it was not run",
                128 + first,
            )
        if getattr(args, "on_pressure", None) and monitors is not None:
            try:  # the triggers are set before CMD starts: a refused one stops the run here
                from ._pressure import PressureMonitor

                mon = PressureMonitor(placed[0], args.on_pressure, args.pressure_cooldown, err)
                mon.begin()
                monitors.append(mon)
            except BaseException:
                os.close(go_w)
                os.close(err_r)
                os.waitpid(pid, 0)
                raise
        os.write(go_w, b"1")
        os.close(go_w)
        with os.fdopen(err_r, "rb") as f:
            failed = f.read()
        if failed:
            os.waitpid(pid, 0)
            e = int(failed)
            why = f"cannot run {cmd[0]!r}: {os.strerror(e)}"
            raise Failure(why, 127 if e == errno.ENOENT else 126)
        try:
            status = _wait(pid, sigs, live, args.live or 1.0)
        finally:
            for mon in monitors or ():
                mon.end()
        wall = time.monotonic() - start
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            return 128 - code, -code, wall
        return code, None, wall
    finally:
        _drain(sigs)


def _wait(
    pid: int, sigs: set[int], live: Live | None = None, interval: float = 1.0
) -> int:
    """Wait for the child, passing on the forwarded signals (and, with ``live``, printing
    a line of statistics every ``interval`` seconds); its wait status."""
    due = time.monotonic() + interval
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            return status
        if live is None:
            info = _sig.sigwaitinfo(sigs)
        else:
            now = time.monotonic()
            if now >= due:
                live.tick()
                due = max(due + interval, now + interval / 2)
                continue
            got = _sig.sigtimedwait(sigs, due - now)
            if got is None:
                continue
            info = got
        if info.si_signo == _sig.SIGCHLD:
            continue
        if info.si_code == _SI_KERNEL:
            continue  # the terminal sent it to the whole process group: the child has it
        try:  # noqa: SIM105 - contextlib is not imported (start-up)
            os.kill(pid, info.si_signo)
        except ProcessLookupError:
            pass


def _finish(m: Manager, args: argparse.Namespace, err: Console) -> None:
    """Remove the group (killing what is left in it) unless --keep or --group."""
    if args.group is not None:
        return  # not ours: what CMD left there stays, as with exec
    if args.keep:
        err.print(
            f"cgroup2 run: kept group {printable(m.group)} ({printable(m.path)})",
            highlight=False,
            markup=False,
        )
        return
    if args.systemd:
        try:  # noqa: SIM105 - contextlib is not imported (start-up)
            m.kill()  # what CMD left behind; the scope may be gone already
        except CgroupError:
            pass
        try:
            m.delete_systemd()
        except CgroupError:
            if os.path.exists(m.path):
                raise  # systemd stops an empty scope by itself: only a left group is an error
        return
    m.delete(kill=True)
