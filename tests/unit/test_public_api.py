"""unit: the names ``cgroup2`` exports, exactly, and the names that left its top level
(still importable for one release, with a DeprecationWarning naming their module)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import cgroup2

#: The public face: what ``from cgroup2 import *`` gives. A change here is an API change
#: (CHANGELOG.md, and the reference pages under docs/reference/).
PUBLIC = {
    # the manager
    "Manager", "State", "ControllerToggle",
    # resources and their parts, and the values they write
    "Resources", "Value", "CPU", "CPUMax", "Memory", "Pids", "IO", "BFQ", "Entry", "IOType",
    "RDMA", "RDMAEntry", "HugeTlb", "HugeTlbEntry", "DeviceRule",
    # processes in a group of their own
    "run", "Popen",
    # statistics
    "Metrics", "MemoryStat", "StatMask", "Sampler",
    # events and pressure
    "Event", "EventStream", "EventWatcher", "PressureTrigger", "PressureEvent",
    # the program's own group and limits; the mount and group paths
    "current", "limits", "cpu_count", "memory_available",
    "default_mountpoint", "mode", "Mode", "verify_group_path", "nested_group_path",
    "pid_group_path",
    # OCI conversion and the device filter of the reference
    "to_resources", "device_filter", "load_attach_device_filter", "Program",
    # the errors a caller catches
    "CgroupError", "KernelError", "DelegationError", "CgroupDeletedError", "NotCgroup2Error",
    "MountPointError", "MountPointNotExistError", "InvalidGroupPathError", "InvalidPidError",
    "InvalidFormatError", "CPUNotSupportedError", "MemoryNotSupportedError",
    "PidsNotSupportedError", "FreezerNotSupportedError", "PressureTriggerError",
    "NoCgroupMountDestinationError", "ignore_not_exist",
}  # fmt: skip

#: The names the API contract requires at the top level: the Python names of the
#: reference's table (containerd/cgroups v2, docs/containerd.md) and of the names added
#: after it (successor, second wave). Each is public, typed, and imports without a warning.
CONTRACT = {
    "InvalidPidError", "MountPointNotExistError", "InvalidFormatError",
    "FreezerNotSupportedError", "MemoryNotSupportedError", "PidsNotSupportedError",
    "CPUNotSupportedError", "CgroupDeletedError", "NoCgroupMountDestinationError",
    "InvalidGroupPathError", "CgroupError", "ignore_not_exist", "verify_group_path",
    "nested_group_path", "pid_group_path", "Manager", "Metrics", "EventStream", "Event",
    "Resources", "Value", "CPU", "CPUMax", "Memory", "Pids", "IO", "BFQ", "Entry", "IOType",
    "RDMA", "RDMAEntry", "HugeTlb", "HugeTlbEntry", "DeviceRule", "State",
    "ControllerToggle", "to_resources", "device_filter", "Program",
    "load_attach_device_filter",
    # the successor and the second wave
    "StatMask", "mode", "Mode", "default_mountpoint", "Sampler", "PressureTrigger",
    "PressureEvent", "EventWatcher", "current", "limits", "cpu_count", "memory_available",
    "MemoryStat",
}  # fmt: skip

#: Names that left the top level, and the module each is imported from now.
MOVED = {
    **dict.fromkeys(["BPFError", "ProgramEmulator", "emulate"], "cgroup2.devices"),
    **dict.fromkeys(["OCIConversion", "OCISpecError", "OCIWarning", "convert_resources"],
                    "cgroup2.oci"),
    **dict.fromkeys(
        ["U64_MAX", "CPUStat", "CpusetStat", "HugeTlbStat", "IOStat", "IOStatEntry",
         "MemoryEvents", "MiscStat", "PidsStat", "PSIData", "PSIStats", "RdmaStat",
         "RdmaStatEntry", "prometheus_text"], "cgroup2.stats"),
    **dict.fromkeys(
        ["CgroupEvents", "CgroupEventStream", "Notice", "NoticeKind", "PressureEventStream",
         "memory_event_fd"], "cgroup2.events"),
    **dict.fromkeys(["CompletedRun", "Usage"], "cgroup2.popen"),
    **dict.fromkeys(["Limit", "Limits"], "cgroup2.self"),
    "WeightDevice": "cgroup2.controllers.io",
    "TreeLimitError": "cgroup2.errors",
}  # fmt: skip


def test_the_exported_names_are_pinned() -> None:
    assert set(cgroup2.__all__) == PUBLIC
    assert len(cgroup2.__all__) == len(PUBLIC) <= 60
    assert cgroup2.__all__ == sorted(cgroup2.__all__)
    assert not PUBLIC & set(MOVED)


def test_the_contract_names_are_top_level_without_a_warning() -> None:
    assert CONTRACT <= PUBLIC, sorted(CONTRACT - PUBLIC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ns: dict[str, object] = {}
        exec(f"from cgroup2 import {', '.join(sorted(CONTRACT))}", ns)
    assert all(ns[name] is getattr(cgroup2, name) for name in CONTRACT)


def test_every_exported_name_imports_from_its_module() -> None:
    for name in cgroup2.__all__:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = getattr(cgroup2, name)
        assert value is not None, name
        module = getattr(value, "__module__", None)
        if module is not None:  # a class or function: the module that defines it
            assert module.startswith("cgroup2."), (name, module)
    assert set(cgroup2.__all__) <= set(dir(cgroup2))


def test_star_import_gives_exactly_the_public_names() -> None:
    ns: dict[str, object] = {}
    exec("from cgroup2 import *", ns)
    assert set(ns) - {"__builtins__"} == PUBLIC


def test_what_mypy_reads_names_the_same_names() -> None:
    # the TYPE_CHECKING imports of __init__.py (all mypy sees) and _PUBLIC (what runs):
    # each public name is imported once, as itself, from the module _PUBLIC names
    tree = ast.parse(Path(cgroup2.__file__).read_text())
    block = next(n for n in tree.body
                 if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: import it `as {alias.name}`"
            assert alias.name not in typed, alias.name
            typed[alias.name] = node.module
    run = {name: module for module, names in cgroup2._PUBLIC.items() for name in names}
    assert typed == run


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_moved_name_still_imports_with_a_warning_naming_its_module(name: str) -> None:
    new = importlib.import_module(MOVED[name])
    assert name in new.__all__
    with pytest.warns(DeprecationWarning, match=rf"`from {MOVED[name]} import {name}`") as w:
        value = getattr(cgroup2, name)
    assert value is getattr(new, name)
    assert [x.filename for x in w] == [__file__]  # the caller's line
    assert name not in cgroup2.__all__ and name not in dir(cgroup2)
    assert name not in vars(cgroup2)  # not kept: every use warns


def test_from_import_of_a_moved_name_warns_once_at_the_import() -> None:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        from cgroup2 import NoticeKind  # type: ignore[attr-defined]  # noqa: F401
    assert len(w) == 1 and w[0].category is DeprecationWarning
    assert w[0].filename == __file__
    assert "cgroup2.events" in str(w[0].message)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        cgroup2.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        from cgroup2 import no_such_name  # type: ignore[attr-defined]  # noqa: F401


def test_a_moved_name_is_an_error_with_warnings_as_errors() -> None:
    r = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "from cgroup2 import Usage"],
        capture_output=True, text=True,
    )
    assert r.returncode == 1
    assert "use `from cgroup2.popen import Usage`" in r.stderr


_USER = '''\
import cgroup2
from cgroup2 import (CPU, CPUMax, Manager, Memory, MemoryStat, Pids, Resources, StatMask,
                     device_filter, run, to_resources)
from cgroup2.popen import Usage

res = Resources(cpu=CPU(max=CPUMax.new(50_000, 100_000)), memory=Memory(max=1 << 30),
                pids=Pids(max=64))
m: Manager = Manager.create("/jobs/a", res)
mem: MemoryStat | None = m.stat(StatMask.MEMORY).memory
code: int = run(["true"], res).returncode
usage: Usage = run(["true"]).usage
n: int = cgroup2.cpu_count()
program, license = device_filter([])
spec: Resources = to_resources({})
bad: str = cgroup2.cpu_count()
from cgroup2 import Usage as TopUsage
'''


def test_a_user_module_type_checks_against_the_public_names(tmp_path: Path) -> None:
    # mypy --strict sees every public name with its type (the TYPE_CHECKING imports), and
    # not the moved ones: for a type checker they are already where they went
    user = tmp_path / "user.py"
    user.write_text(_USER)
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(user)],
        capture_output=True, text=True, cwd=root, timeout=600,
    )
    errors = [ln.split(": error: ", 1)[1] for ln in r.stdout.splitlines() if ": error: " in ln]
    assert len(errors) == 2, r.stdout + r.stderr
    assert errors[0].startswith('Incompatible types in assignment (expression has type "int",')
    assert errors[1].startswith('Module "cgroup2" has no attribute "Usage"')
