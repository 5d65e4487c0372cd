"""The systemd tier: tests that need systemd as PID 1 (run by scripts/systemd-test, in a
container booted by systemd-nspawn inside the VM).

Every test here is skipped, with the reason, where PID 1 is not systemd or we are not
root: these tests never pass without having talked to a real systemd. Units the tests
start are stopped (and reset) at the end, also on failure; processes they start are
killed by pid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sdtools import Agent, Units


def _pid1() -> str:
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError as e:
        return f"unknown ({e})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = None
    if os.environ.get("CGROUP2_TIER") != "systemd":
        why = (
            "runs only in the container that scripts/systemd-test boots (CGROUP2_TIER="
            "systemd): it starts and stops units of the systemd it finds"
        )
    elif _pid1() != "systemd":
        why = f"needs systemd as PID 1 (PID 1 is {_pid1()!r}): run scripts/systemd-test"
    elif os.geteuid() != 0:
        why = "needs root (systemd's private socket and the system bus are root's)"
    if why is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def agent() -> Iterator[Agent]:
    a = Agent()
    try:
        yield a
    finally:
        a.kill()


@pytest.fixture
def units() -> Iterator[Units]:
    u = Units()
    try:
        yield u
    finally:
        u.cleanup()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """On failures in this tier, show the end of systemd's journal."""
    if os.environ.get("CGROUP2_TIER") != "systemd" or not terminalreporter.stats.get("failed"):
        return
    import subprocess

    out = subprocess.run(
        ["journalctl", "-b", "--no-pager", "-n", "60"], capture_output=True, text=True
    ).stdout
    terminalreporter.write_sep("-", "systemd journal (last 60 lines)")
    terminalreporter.write(out)
