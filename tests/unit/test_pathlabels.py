"""Labels from a group's path (cgroup2.pathlabels): each layout of tests/export_tools.py,
the site's own rules, and their exposition."""

from __future__ import annotations

import re

import pytest
from export_tools import LAYOUTS

from cgroup2 import Metrics
from cgroup2.errors import CgroupError
from cgroup2.exporter import exposition
from cgroup2.pathlabels import PathLabels, parse_label_rule, path_labels
from cgroup2.stats import CPUStat


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_builtin_labels_of_each_layout(layout: str) -> None:
    path, want = LAYOUTS[layout]
    assert path_labels("/parent/" + path) == want
    # the groups above the deepest have the labels of their own level only
    assert path_labels("/parent") == {}


def test_rules_and_their_text() -> None:
    rule = parse_label_rule(r"tenant=/tenants/([^/]+)")
    whole = parse_label_rule(r"env=prod|staging")
    labels = PathLabels([rule, whole])
    assert labels("/tenants/acme/system.slice/x.service") == (',unit="x.service",tenant="acme"')
    assert labels('/tenants/a"b/prod') == ',tenant="a\\"b",env="prod"'
    assert labels("/none") == ""
    assert PathLabels(builtin=False)("/system.slice/x.service") == ""
    for bad in ("noequals", "1x=a", "__x=a", "group=a", "unit=a", "x=(", "x y=a"):
        with pytest.raises(CgroupError, match="invalid --label"):
            parse_label_rule(bad)


def test_labels_follow_the_group_label_in_every_sample() -> None:
    path = "/" + LAYOUTS["docker-scope"][0]
    text = exposition({path: Metrics(cpu=CPUStat(usage_usec=1, nr_periods=2))}, labels=PathLabels())
    samples = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert len(samples) == 2
    for ln in samples:
        assert re.search(
            rf'\{{group="{re.escape(path)}",unit="[^"]+",container_id="[0-9a-f]{{64}}"\}}', ln
        ), ln
