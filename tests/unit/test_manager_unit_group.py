"""unit: where add_proc and procs go for a systemd unit's group (files in an ordinary
directory stand in for the group; the systemd tier shows it on a real unit)."""

from __future__ import annotations

from pathlib import Path

from cgroup2 import Manager


def _unit_group(tmp_path: Path, leaf: bool) -> Path:
    g = tmp_path / "system.slice" / "x.scope"
    g.mkdir(parents=True)
    (g / "cgroup.procs").write_text("")
    if leaf:
        (g / "leaf").mkdir()
        (g / "leaf" / "cgroup.procs").write_text("")
    return g


def test_add_proc_of_a_unit_with_a_leaf_goes_to_the_leaf(tmp_path: Path) -> None:
    g = _unit_group(tmp_path, leaf=True)
    m = Manager(str(tmp_path), "/system.slice/x.scope", unit="x.scope")
    m.add_proc(4242)
    assert (g / "leaf" / "cgroup.procs").read_text() == "4242"
    assert (g / "cgroup.procs").read_text() == ""
    (g / "cgroup.procs").write_text("7\n")
    (g / "leaf" / "cgroup.procs").write_text("4242\n4243\n")
    assert m.procs() == [7, 4242, 4243]


def test_add_proc_of_a_unit_without_a_leaf_or_of_a_plain_group(tmp_path: Path) -> None:
    g = _unit_group(tmp_path, leaf=False)
    Manager(str(tmp_path), "/system.slice/x.scope", unit="x.scope").add_proc(11)
    assert (g / "cgroup.procs").read_text() == "11"
    (g / "leaf").mkdir()  # a sub-group named leaf of a group that is not a unit's
    (g / "leaf" / "cgroup.procs").write_text("")
    Manager(str(tmp_path), "/system.slice/x.scope").add_proc(12)
    assert (g / "cgroup.procs").read_text() == "12"
    assert (g / "leaf" / "cgroup.procs").read_text() == ""
