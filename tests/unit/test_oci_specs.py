"""unit tier: the config.json files that ``crun spec`` and ``runc spec`` write convert.

The captured files are in tests/data/oci/ (``VERSIONS`` names the tools that wrote them).
The regeneration test runs the tools again in a temporary directory where they exist
and checks that their output converts too, and that it is the captured file when the tool
is the captured version.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cgroup2.devices.rules import DeviceRule
from cgroup2.oci import convert_resources, to_resources

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"

# (file, tool, extra arguments of "<tool> spec")
CAPTURED = [
    ("crun-spec.json", "crun", []),
    ("crun-spec-rootless.json", "crun", ["--rootless"]),
    ("runc-spec.json", "runc", []),
    ("runc-spec-rootless.json", "runc", ["--rootless"]),
]
DENY_ALL = (DeviceRule(False, "a", None, None, "rwm"),)


def _versions() -> dict[str, str]:
    out = {}
    for line in (DATA / "VERSIONS").read_text().splitlines():
        tool, _, version = line.partition(" ")
        out[tool] = version
    return out


def _tool_version(tool: str) -> str:
    first = subprocess.run(
        [tool, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()[0]
    return first.split()[2]  # "crun version 1.8.1", "runc version 1.1.5+ds1"


def _check(config: dict[str, Any]) -> None:
    """What the runtimes' default configs say: deny every device, and nothing else."""
    result = convert_resources(config)
    assert result.warnings == ()
    res = result.resources
    assert res.values() == []
    has_resources = "resources" in config["linux"]
    assert res.devices == (DENY_ALL if has_resources else None)
    if has_resources:
        assert to_resources(config["linux"]["resources"]) == res


@pytest.mark.parametrize(("name", "tool", "args"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_captured_spec_converts(name: str, tool: str, args: list[str]) -> None:
    _check(json.loads((DATA / name).read_text()))


@pytest.mark.parametrize(("name", "tool", "args"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_regenerated_spec_converts(
    name: str, tool: str, args: list[str], tmp_path: Path
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed: cannot regenerate {name}")
    subprocess.run(
        [tool, "spec", *args], cwd=tmp_path, check=True, capture_output=True, timeout=30
    )
    fresh = json.loads((tmp_path / "config.json").read_text())
    _check(fresh)
    if _tool_version(tool) == _versions()[tool]:
        assert fresh == json.loads((DATA / name).read_text()), (
            f"{tool} {_versions()[tool]} wrote something else than tests/data/oci/{name}"
        )
