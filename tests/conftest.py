"""Fixtures for the tiers that need a real cgroup2 mount (host, vm, systemd, reliability).

``cg_parent`` makes one parent group per test run, named for the run, directly under the
cgroup2 mount. At the end it removes everything below it, also when tests failed, and fails
the run if a test left a group behind. ``cg_path`` gives each test a fresh group path below
that parent (not yet created) and checks after the test that it is gone.
"""

from __future__ import annotations

import itertools
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cgtest import RUN_PREFIX, remove_tree, subgroups, writable_mount
from hypothesis import HealthCheck, settings

# Hypothesis profiles: "dev" (default, quick) and "ci" (HYPOTHESIS_PROFILE=ci, as .ci/run
# sets). Tests that must run a fixed number of examples in CI (the parser fuzzers: 2,000)
# use ``fuzz_settings``.
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
FUZZ_EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 200
fuzz_settings = settings(max_examples=FUZZ_EXAMPLES, deadline=None)

@pytest.fixture(scope="session", autouse=True)
def _tier_properties(record_testsuite_property: Callable[[str, object], None]) -> None:
    """What this run had, for the skip policy (tests/skip_policy.py reads it from the
    JUnit XML file): the effective uid, the tier (CGROUP2_TIER), PID 1, and whether a
    group can be made on the cgroup2 mount."""
    try:
        with open("/proc/1/comm") as f:
            pid1 = f.read().strip()
    except OSError as e:
        pid1 = f"unreadable ({e.strerror})"
    mnt, _ = writable_mount()
    record_testsuite_property("euid", str(os.geteuid()))
    record_testsuite_property("tier", os.environ.get("CGROUP2_TIER", ""))
    record_testsuite_property("pid1", pid1)
    record_testsuite_property("cgroup2_writable", "yes" if mnt else "no")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_fs_check: a unit test that keeps the file layer's cgroup2 check"
    )


@pytest.fixture(autouse=True)
def _unit_fake_trees(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests use fake group directories under /tmp; the library opens a directory
    only on a cgroup2 file system (cgroup2._fs), so for a unit test it takes /tmp's file
    system too. Other tiers, and unit tests marked ``real_fs_check``, keep the rule."""
    path = str(request.node.path)
    if f"{os.sep}unit{os.sep}" not in path or request.node.get_closest_marker("real_fs_check"):
        yield
        return
    from cgroup2 import _fs

    tmp = tempfile.gettempdir()
    dev = os.stat(tmp).st_dev
    added = dev not in _fs._cgroup2_devs
    _fs._cgroup2_devs.add(dev)
    # a fake tree's paths resolve from the temporary directory, as a group's from its mount
    real = _fs._outermost_mount

    def outermost(path: str) -> str | None:
        return tmp if path.startswith(tmp + "/") else real(path)

    _fs._outermost_mount = outermost  # type: ignore[assignment]
    try:
        yield
    finally:
        _fs._outermost_mount = real  # type: ignore[assignment]
        if added:
            _fs._cgroup2_devs.discard(dev)


_leftovers: list[str] = []
_counter = itertools.count()


@dataclass(frozen=True)
class Parent:
    mountpoint: str
    group: str  # the group path below the mount, e.g. "/cgroup2-test-123-ab12cd"

    @property
    def fs_path(self) -> str:
        return self.mountpoint + self.group


@pytest.fixture(scope="session")
def cg_parent() -> Iterator[Parent]:
    mnt, why = writable_mount()
    if mnt is None:
        pytest.skip(f"needs a writable cgroup2 mount: {why}")
    name = f"{RUN_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    parent = Parent(mnt, "/" + name)
    os.mkdir(parent.fs_path)
    try:
        yield parent
    finally:
        left = subgroups(parent.fs_path)
        remove_tree(parent.fs_path)
        if left:
            _leftovers.extend(f"{parent.group}/{x}" for x in left)
        assert not os.path.exists(parent.fs_path), f"{parent.fs_path} could not be removed"


@pytest.fixture
def cg_path(cg_parent: Parent, request: pytest.FixtureRequest) -> Iterator[str]:
    """A group path below the run's parent, unique to this test; must be gone afterwards."""
    safe = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    group = f"{cg_parent.group}/{safe}-{next(_counter)}"
    yield group
    fs = cg_parent.mountpoint + group
    if os.path.exists(fs):
        left = [group] + [f"{group}/{x}" for x in subgroups(fs)]
        remove_tree(fs)
        _leftovers.extend(left)
        pytest.fail(f"test left groups behind: {left}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _leftovers:
        print(f"\nFAIL: groups left behind by tests (removed now): {_leftovers}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
