"""Pressure (PSI) triggers on the command line: ``events --pressure`` and
``run --on-pressure`` (the policy: kill, freeze or signal the job's group when a trigger
fires, at most once per cool-down).

A trigger is ``RESOURCE:KIND:STALL:WINDOW`` (:meth:`cgroup2.pressure.PressureTrigger.parse`),
a policy that and ``=ACTION``. The policy's triggers are set on the job's group before the
command starts (so a refused trigger stops the run before anything runs) and watched by
one thread on one epoll while it runs.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import dataclass, field

from .._fs import Dir
from ..errors import CgroupError
from ..pressure import PressureEvent, PressureTrigger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rich.console import Console

    from ..events import EventWatcher
    from ..manager import Manager

__all__ = ["PressureMonitor", "PressurePolicy", "parse_on_pressure", "parse_trigger"]

ACTIONS = ("kill", "freeze", "signal:SIG")


def parse_trigger(text: str) -> PressureTrigger:
    """argparse type of ``--pressure``: a :class:`PressureTrigger` (the rules of every
    kernel; those of this kernel and caller are checked when the trigger is set)."""
    try:
        t = PressureTrigger.parse(text)
    except CgroupError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("cgroups: ")) from None
    return t


@dataclass(frozen=True, slots=True)
class PressurePolicy:
    """``--on-pressure TRIGGER=ACTION``: ``action`` is ``kill``, ``freeze`` or
    ``signal`` (with ``sig``)."""

    trigger: PressureTrigger
    action: str
    sig: int = 0

    def __str__(self) -> str:
        act = f"signal:{_signame(self.sig)}" if self.action == "signal" else self.action
        return f"{self.trigger}={act}"


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def parse_on_pressure(text: str) -> PressurePolicy:
    """argparse type of ``--on-pressure``: ``RESOURCE:KIND:STALL:WINDOW=ACTION``."""
    spec, eq, action = text.rpartition("=")
    if not eq:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected TRIGGER=ACTION, e.g. memory:full:100ms:1s=kill "
            f"(actions: {', '.join(ACTIONS)})"
        )
    trigger = parse_trigger(spec)
    if action in ("kill", "freeze"):
        return PressurePolicy(trigger, action)
    kind, colon, sig = action.partition(":")
    if kind == "signal" and colon:
        from ._units import UsageError, parse_signal

        try:
            return PressurePolicy(trigger, "signal", parse_signal(sig))
        except UsageError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    raise argparse.ArgumentTypeError(
        f"{text!r}: action {action!r} is not one of {', '.join(ACTIONS)}"
    )


@dataclass(slots=True)
class Action:
    """One action taken: when (seconds since the start), by which policy, on what event."""

    at: float
    policy: PressurePolicy
    event: PressureEvent
    result: str


@dataclass(slots=True)
class PressureMonitor:
    """The policies of one run: their triggers on the job's group, watched by a thread.

    A firing within ``cooldown`` seconds of the policy's last action is counted but not
    acted on (one burst, one action).
    """

    m: Manager
    policies: list[PressurePolicy]
    cooldown: float
    err: Console
    start: float = field(default_factory=time.monotonic)
    actions: list[Action] = field(default_factory=list)
    fired: int = 0
    _watcher: EventWatcher | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _last: dict[PressureTrigger, float] = field(default_factory=dict)

    def begin(self) -> None:
        """Set every trigger (raises, with nothing left open, if one is refused) and start
        the watching thread."""
        from ..events import EventWatcher

        w = EventWatcher()
        try:
            for p in self.policies:
                if (self.m.path, p.trigger) not in w.pressure_triggers():
                    w.add_pressure(self.m.path, p.trigger)
        except BaseException:
            w.close()
            raise
        self._watcher = w
        self._thread = threading.Thread(target=self._loop, name="cgroup2-pressure", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from ..events import NoticeKind

        w = self._watcher
        assert w is not None
        try:
            while not self._stop.is_set() and w.pressure_triggers():
                for n in w.poll(0.25):
                    if n.pressure is not None and n.kind is NoticeKind.PRESSURE:
                        self._fired(n.pressure)
        except CgroupError as e:
            self._say(f"pressure watch ended: {e}")

    def _fired(self, ev: PressureEvent) -> None:
        self.fired += 1
        now = time.monotonic()
        for p in self.policies:
            if p.trigger != ev.trigger:
                continue
            last = self._last.get(p.trigger)
            if last is not None and now - last < self.cooldown:
                continue
            self._last[p.trigger] = now
            result = self._act(p)
            self.actions.append(Action(now - self.start, p, ev, result))
            self._say(
                f"{p.trigger} fired (avg10={ev.avg10:.2f} avg60={ev.avg60:.2f} "
                f"total={ev.total}us): {result}"
            )

    def _act(self, p: PressurePolicy) -> str:
        try:
            if p.action == "kill":
                self.m.kill()
                return "killed the group"
            if p.action == "freeze":
                self.m.freeze()
                return "froze the group"
            from ..manager import signal_subtree

            with Dir.open(self.m.path, self.m.mountpoint) as d:
                _, sent = signal_subtree(d, p.sig)
            return f"sent {_signame(p.sig)} to {sent} processes"
        except CgroupError as e:
            return f"{p.action} failed: {e}"

    def _say(self, text: str) -> None:
        from ._text import printable

        self.err.print(f"cgroup2 run: {printable(text)}", highlight=False, markup=False)

    def end(self) -> None:
        """Stop the thread and close every trigger fd."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._watcher is not None:
            self._watcher.close()

    def report(self) -> str:
        """The summary's ``pressure`` row."""
        if not self.actions:
            return f"no action ({self.fired} firings of {', '.join(map(str, self.policies))})"
        a = self.actions[0]
        more = f"; {len(self.actions)} actions in all" if len(self.actions) > 1 else ""
        return (
            f"{a.policy.action} at {a.at:.2f}s: {a.policy.trigger} fired "
            f"(avg10={a.event.avg10:.2f}%, total stall {a.event.total / 1e6:.2f}s){more}, "
            f"{self.fired} firings"
        )
