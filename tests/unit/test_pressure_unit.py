"""unit: PSI trigger validation, the kernel's per-version rules, parsing of the command
line forms, and the pieces that need no kernel (reading a pressure file by pread)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from cgroup2 import (
    CgroupError,
    EventWatcher,
    InvalidFormatError,
    PressureEvent,
    PressureTrigger,
    PressureTriggerError,
)
from cgroup2.pressure import (
    has_cap_sys_resource,
    kernel_version,
    open_trigger,
    read_event,
    unprivileged_rule,
)

# --- what every kernel refuses -----------------------------------------------------------


def test_defaults_and_line() -> None:
    t = PressureTrigger("memory")
    assert (t.kind, t.stall, t.window) == ("some", 0.15, 1.0)
    assert t.line() == b"some 150000 1000000"
    assert t.filename == "memory.pressure"
    assert str(t) == "memory:some:150ms:1s"
    assert PressureTrigger("io", "full", 0.0001, 10).line() == b"full 100 10000000"
    assert str(PressureTrigger("cpu", "some", 0.0005, 2.5)) == "cpu:some:500us:2500ms"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("disk",), "resource 'disk'"),
        (("memory", "most"), "kind must be"),
        (("irq", "some"), "only a 'full' line"),
        (("memory", "some", 0.1, 0.4), "outside 0.5 s .. 10 s"),
        (("memory", "some", 0.1, 10.5), "outside 0.5 s .. 10 s"),
        (("memory", "some", 0.0, 1.0), "must be above 0"),
        (("memory", "some", 1.5, 1.0), "at most the window"),
        (("memory", "some", True, 1.0), "not a number"),
        (("memory", "some", float("nan"), 1.0), "not a number"),
        (("memory", "some", 0.1, "1s"), "not a number"),
    ],
)
def test_refused_when_made(args: tuple[object, ...], words: str) -> None:
    with pytest.raises(PressureTriggerError, match=words):
        PressureTrigger(*args)  # type: ignore[arg-type]


def test_bounds_are_inclusive() -> None:
    assert PressureTrigger("memory", "some", 0.5, 0.5).line() == b"some 500000 500000"
    assert PressureTrigger("memory", "full", 10, 10).line() == b"full 10000000 10000000"
    assert PressureTrigger("irq", "full", 0.1, 1).filename == "irq.pressure"


def test_is_an_error_of_the_package() -> None:
    assert issubclass(PressureTriggerError, CgroupError)


def test_hashable_and_equal_by_value() -> None:
    a = PressureTrigger("memory", "some", 0.15, 1)
    b = PressureTrigger.parse("memory:some:150ms:1s")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


# --- the command line form ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        ("memory:some:150ms:1s", b"some 150000 1000000"),
        ("cpu:full:0.2:2", b"full 200000 2000000"),
        ("io:some:500us:2s", b"some 500 2000000"),
        ("io:150ms:1s", b"some 150000 1000000"),
        ("irq:150ms:1s", b"full 150000 1000000"),
        ("memory:full:1.5s:10s", b"full 1500000 10000000"),
    ],
)
def test_parse(spec: str, line: bytes) -> None:
    assert PressureTrigger.parse(spec).line() == line


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("memory", "RESOURCE:KIND:STALL:WINDOW"),
        ("memory:some:1:2:3", "RESOURCE:KIND:STALL:WINDOW"),
        ("memory:some:150xs:1s", "stall '150xs' is not a duration"),
        ("memory:some:150ms:-1s", "window '-1s' is not a duration"),
        ("memory:some:150ms:100ms", "outside 0.5 s"),
        ("mem:some:150ms:1s", "resource 'mem'"),
    ],
)
def test_parse_refuses(spec: str, words: str) -> None:
    with pytest.raises(PressureTriggerError, match=words):
        PressureTrigger.parse(spec)


# --- the rules of a kernel and a caller --------------------------------------------------


def test_unprivileged_windows_since_6_5_and_6_1_42() -> None:
    one = PressureTrigger("memory", "some", 0.15, 1.0)
    with pytest.raises(PressureTriggerError) as e:
        one.check(privileged=False, kernel=(6, 5))
    assert "multiple of 2 s" in str(e.value) and "CAP_SYS_RESOURCE" in str(e.value)
    one.check(privileged=True, kernel=(6, 18, 0))  # privileged: any window in range
    one.check(privileged=False, kernel=(6, 1, 41))  # before the backport: no rule
    with pytest.raises(PressureTriggerError, match="multiple of 2 s"):
        one.check(privileged=False, kernel=(6, 1, 42))  # the 6.1 stable backport
    one.check(privileged=False, kernel=(5, 15, 0))  # before the change
    one.check(privileged=False, kernel=(6, 3, 0))  # not known here: the kernel decides
    for w in (2, 4, 6, 8, 10):
        PressureTrigger("memory", "some", 0.15, w).check(privileged=False, kernel=(6, 18))
    for w in (0.5, 3, 2.5, 9):
        with pytest.raises(PressureTriggerError, match="multiple of 2 s"):
            PressureTrigger("memory", "some", 0.15, w).check(privileged=False, kernel=(6, 18))


def test_cpu_full_and_irq_need_their_kernels() -> None:
    with pytest.raises(PressureTriggerError, match=r"since Linux 5\.13"):
        PressureTrigger("cpu", "full").check(privileged=True, kernel=(5, 12))
    PressureTrigger("cpu", "full").check(privileged=True, kernel=(5, 13))
    with pytest.raises(PressureTriggerError, match=r"since Linux 6\.1"):
        PressureTrigger("irq", "full").check(privileged=True, kernel=(5, 15))
    PressureTrigger("irq", "full").check(privileged=True, kernel=(6, 1))


def test_cap_sys_resource_from_capeff() -> None:
    with_cap = b"Name:\tx\nCapEff:\t000001ffffffffff\n"
    without = b"Name:\tx\nCapEff:\t000001fffeffffff\n"  # bit 24 clear (this host's root)
    assert has_cap_sys_resource(with_cap) is True
    assert has_cap_sys_resource(without) is False
    assert has_cap_sys_resource(b"CapEff:\t0000000001000000\n") is True
    assert has_cap_sys_resource(b"CapEff:\t0000000000000000\n") is False


def test_kernel_version_and_the_rule_by_version() -> None:
    major, minor, patch = kernel_version()
    assert major >= 4 and minor >= 0 and patch >= 0
    assert unprivileged_rule((6, 18, 4)) is True and unprivileged_rule((6, 5)) is True
    assert unprivileged_rule((6, 1, 192)) is True and unprivileged_rule((6, 1, 0)) is False
    assert unprivileged_rule((6, 0, 9)) is False and unprivileged_rule((5, 10, 200)) is False
    assert unprivileged_rule((6, 4, 3)) is None


def test_kernel_version_takes_debians_stable_release(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = os.uname_result(
        ("Linux", "h", "6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026)", "x")
    )
    monkeypatch.setattr(os, "uname", lambda: fake)
    assert kernel_version() == (6, 1, 192)
    fake = os.uname_result(("Linux", "h", "6.18.44-fc-v657", "#1 SMP", "x86_64"))
    assert kernel_version() == (6, 18, 44)


# --- reading, without a kernel -----------------------------------------------------------

SAMPLE = (
    b"some avg10=1.50 avg60=0.25 avg300=0.05 total=123456\n"
    b"full avg10=0.75 avg60=0.10 avg300=0.01 total=654\n"
)


def test_read_event_takes_the_kind_line(tmp_path: Path) -> None:
    f = tmp_path / "memory.pressure"
    f.write_bytes(SAMPLE)
    fd = os.open(f, os.O_RDONLY)
    try:
        some = read_event(fd, "/g", PressureTrigger("memory", "some"))
        full = read_event(fd, "/g", PressureTrigger("memory", "full"))
    finally:
        os.close(fd)
    assert (some.avg10, some.avg60, some.total) == (1.5, 0.25, 123456)
    assert (full.avg10, full.avg60, full.total) == (0.75, 0.1, 654)
    assert isinstance(some, PressureEvent) and some.path == "/g" and some.kind == "some"


def test_add_pressure_failing_after_the_open_leaks_nothing(tmp_path: Path) -> None:
    # a regular file takes the write (over its first line, so that the read that follows
    # fails): the fd opened for the trigger must be closed, nothing kept
    g = tmp_path / "g"
    g.mkdir()
    (g / "memory.pressure").write_bytes(SAMPLE)
    before = set(os.listdir("/proc/self/fd"))
    with EventWatcher() as w:
        t = PressureTrigger("memory", "some", 0.15, 2.0)
        with pytest.raises(InvalidFormatError, match=r"memory\.pressure"):
            w.add_pressure(str(g), t)
        assert w.pressure_triggers() == []
        with pytest.raises(PressureTriggerError, match=r"has no io\.pressure"):
            w.add_pressure(str(g), PressureTrigger("io", "some", 0.15, 2.0))
        with pytest.raises(CgroupError, match="not an absolute path"):
            w.add_pressure("g", t)
    assert set(os.listdir("/proc/self/fd")) == before


def test_open_trigger_refuses_what_the_kernel_would_before_opening(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="not a PressureTrigger"):
        open_trigger(str(tmp_path), "memory:some:150ms:1s")  # type: ignore[arg-type]


# --- the command line ----------------------------------------------------------------------


def test_on_pressure_actions() -> None:
    import signal

    from cgroup2.cli._pressure import parse_on_pressure, parse_trigger

    p = parse_on_pressure("memory:full:100ms:2s=kill")
    assert (p.action, str(p.trigger)) == ("kill", "memory:full:100ms:2s")
    assert parse_on_pressure("cpu:some:1s:2s=freeze").action == "freeze"
    s = parse_on_pressure("io:some:200ms:2s=signal:TERM")
    assert (s.action, s.sig) == ("signal", signal.SIGTERM)
    assert str(s) == "io:some:200ms:2s=signal:SIGTERM"
    assert parse_on_pressure("io:some:200ms:2s=signal:9").sig == 9
    for bad, words in (
        ("memory:full:100ms:2s", "TRIGGER=ACTION"),
        ("memory:full:100ms:2s=explode", "not one of kill, freeze, signal:SIG"),
        ("memory:full:100ms:2s=signal:NOPE", "invalid signal"),
        ("memory:full:100ms:20s=kill", "outside 0.5 s"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            parse_on_pressure(bad)
    assert str(parse_trigger("memory:some:150ms:2s")) == "memory:some:150ms:2s"


def test_parser_takes_the_options() -> None:
    from cgroup2.cli import build_parser

    a = build_parser().parse_args(["events", "--pressure", "memory:some:150ms:2s", "/g"])
    assert [str(t) for t in a.pressure] == ["memory:some:150ms:2s"]
    a = build_parser().parse_args(
        [
            "run",
            "--on-pressure",
            "memory:full:100ms:2s=kill",
            "--pressure-cooldown",
            "3",
            "--",
            "true",
        ]
    )
    assert a.pressure_cooldown == 3.0 and a.on_pressure[0].action == "kill"


def test_summary_row_names_the_action() -> None:
    from cgroup2.cli._summary import Summary

    s = Summary(group="/g", status=137, signal=9, wall_sec=1.0, pressure="kill at 1.00s: x")
    assert ("pressure", "kill at 1.00s: x") in s.rows()
    assert "pressure" not in dict(Summary(group="/g", status=0, signal=None, wall_sec=1).rows())


# --- numbers too large for a float or an int of microseconds -----------------------------

HUGE = "9" * 400


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (f"memory:some:{HUGE}ms:2s", r"stall '9+\.\.\.9+ms' is above 10 s"),
        (f"memory:some:150ms:{HUGE}", r"window '9+\.\.\.9+' is above 10 s"),
        (f"memory:some:150ms:{HUGE}.5us", r"window '9+\.\.\.9+\.5us' is above 10 s"),
    ],
    ids=["stall", "window", "window-us"],
)
def test_parse_refuses_huge_numbers_with_the_bound(spec: str, words: str) -> None:
    with pytest.raises(PressureTriggerError, match=words) as e:
        PressureTrigger.parse(spec)
    assert len(str(e.value)) < 200  # the number is elided: the message stays a line


@pytest.mark.parametrize(
    ("stall", "window", "words"),
    [
        (0.15, 1e308, "window 1e\\+308 s is outside 0.5 s .. 10 s"),
        (0.15, 10**400, r"window 1000+\.\.\.0+ s is outside 0.5 s .. 10 s"),
        (10**400, 1.0, r"stall 1000+\.\.\.0+ s must be above 0 and at most the window"),
        (-1e308, 1.0, "stall -1e\\+308 s must be above 0"),
        (-(10**400), 1.0, "must be above 0"),
    ],
    ids=["float-window", "int-window", "int-stall", "negative-float", "negative-int"],
)
def test_refuses_huge_numbers_when_made(stall: float, window: float, words: str) -> None:
    with pytest.raises(PressureTriggerError, match=words):
        PressureTrigger("memory", "some", stall, window)


@pytest.mark.parametrize(
    "argv",
    [
        ["events", "--pressure", f"memory:some:{HUGE}ms:2s", "/"],
        ["run", "--on-pressure", f"memory:some:150ms:{HUGE}s=kill", "--", "true"],
    ],
    ids=["events", "run"],
)
def test_the_command_refuses_huge_numbers_in_one_line(argv: list[str]) -> None:
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "cgroup2", *argv], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2, p.stderr
    assert "is above 10 s (the kernel's largest window)" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("cgroup2")
