"""unit: the public API of ``cgroup2`` and what ``import cgroup2`` loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cgroup2


def test_every_public_name_resolves() -> None:
    for name in cgroup2.__all__:
        assert getattr(cgroup2, name) is not None, name
    assert set(cgroup2.__all__) <= set(dir(cgroup2))
    with pytest.raises(AttributeError, match="no_such_name"):
        cgroup2.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_lazy_names_are_the_modules_own() -> None:
    from cgroup2 import devices, events, manager

    assert cgroup2.EventStream is events.EventStream
    assert cgroup2.Manager is manager.Manager
    assert cgroup2.DeviceRule is devices.DeviceRule is devices.rules.DeviceRule
    assert devices.device_filter is devices.filter.device_filter
    assert devices.BPFError is devices.bpf.BPFError


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(json.loads(out))


def test_import_loads_only_what_managing_groups_needs() -> None:
    # every public name is imported on first use: the package itself loads nothing more
    # (tests/unit/test_startup.py pins the rest of the start-up)
    mods = _loaded_after("import cgroup2")
    assert {m for m in mods if m.startswith("cgroup2.")} == {"cgroup2._lazy", "cgroup2._version"}
    mods = _loaded_after("from cgroup2 import Manager")
    for heavy in ("asyncio", "cgroup2.events", "cgroup2.oci", "cgroup2.devices.bpf",
                  "cgroup2.devices.asm", "cgroup2.devices.emulator", "cgroup2.systemd", "ctypes"):
        assert heavy not in mods, heavy
    assert "cgroup2.manager" in mods
    mods = _loaded_after("from cgroup2.devices import device_filter")
    assert "cgroup2.devices.filter" in mods and "asyncio" not in mods
