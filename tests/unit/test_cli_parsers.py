"""unit: the parsers and usage errors of issue 15's options (no kernel, no mount)."""

from __future__ import annotations

import argparse
import signal

import pytest

from cgroup2.cli import main
from cgroup2.cli._limits import add_limit_flags, build_resources
from cgroup2.cli._units import (
    UsageError,
    format_limit,
    parse_cpu_max,
    parse_device,
    parse_hugetlb,
    parse_int,
    parse_interval,
    parse_property,
    parse_rule,
    parse_signal,
    parse_timeout,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("memory.max=512M", ("memory.max", "512M")),
        ("cpu.max=50000 100000", ("cpu.max", "50000 100000")),
        ("io.max=8:0 rbps=1048576", ("io.max", "8:0 rbps=1048576")),  # '=' in the value
        (" memory.low =0", ("memory.low", "0")),
        ("memory.high=", ("memory.high", "")),
    ],
)
def test_parse_property(text: str, want: tuple[str, str]) -> None:
    assert parse_property(text) == want


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("memory.max", "FILE=VALUE"),
        ("=1", "FILE=VALUE"),
        ("cgroup.procs=1", "not a limit"),
        ("cgroup.freeze=1", "not a limit"),
        ("cgroup.kill=1", "not a limit"),
        ("cgroup.subtree_control=+cpu", "not a limit"),
        ("../memory.max=1", "'/'"),
        ("a/b=1", "'/'"),
        ("..=1", "'..'"),
    ],
)
def test_parse_property_refuses(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_property(text)


def test_parse_hugetlb() -> None:
    assert parse_hugetlb("2MB=64M") == ("2MB", 64 << 20)
    assert parse_hugetlb("2M=max") == ("2MB", "max")
    assert parse_hugetlb("1GiB=1G") == ("1GB", 1 << 30)
    assert parse_hugetlb("64kb=0") == ("64KB", 0)
    for bad in ("2MB", "=1M", "0MB=1", "2XB=1", "2MB=lots"):
        with pytest.raises(UsageError):
            parse_hugetlb(bad)


def test_parse_signal() -> None:
    assert parse_signal("TERM") == parse_signal("sigterm") == parse_signal("15") == 15
    assert parse_signal("HUP") == signal.SIGHUP
    assert parse_signal("RTMIN+1") == signal.SIGRTMIN + 1
    assert parse_signal("RTMAX") == signal.SIGRTMAX
    for bad in ("0", "65", "NOPE", "SIGNOPE", "RTMIN+x", "-9", ""):
        with pytest.raises(UsageError, match="invalid signal"):
            parse_signal(bad)


def test_intervals_have_a_floor_and_timeouts_are_positive() -> None:
    assert parse_interval("0.05") == 0.05
    assert parse_interval("2") == 2.0
    for bad in ("1e-300", "1e-9", "0.049", "0", "-1", "inf", "nan", "x", "1e6"):
        with pytest.raises(UsageError, match=r"at least 0\.05"):
            parse_interval(bad, "--live")
    assert parse_timeout("0.001") == 0.001
    for bad in ("0", "-1", "inf", "nan", "x"):
        with pytest.raises(UsageError, match="--timeout"):
            parse_timeout(bad)


def test_int_options_name_the_option() -> None:
    with pytest.raises(UsageError, match=r"invalid --cpu-weight 'abc': a whole number"):
        parse_int("abc", "--cpu-weight")
    with pytest.raises(UsageError, match="--depth '-1': at least 0"):
        parse_int("-1", "--depth", low=0)


def test_cpu_max_bare_number_suggests_a_percentage() -> None:
    with pytest.raises(UsageError, match=r"write '50%'"):
        parse_cpu_max("50", cpus=2)
    assert parse_cpu_max("1000", cpus=2) == "1000 100000"  # a quota of 1 ms is fine


def test_device_numbers_beyond_32_bits() -> None:
    with pytest.raises(UsageError) as e:
        parse_rule("allow c 1:99999999999")
    assert "None" not in str(e.value) and "4294967295" in str(e.value)
    assert "'*'" in str(e.value)
    with pytest.raises(UsageError, match="major 4294967296"):
        parse_rule("deny b 4294967296:0")
    assert parse_rule("allow c 4294967295:0 r").major == 2**32 - 1
    with pytest.raises(UsageError, match="larger than"):
        parse_device("c 1:4294967296")


def test_format_limit() -> None:
    assert format_limit(None) == "-"
    assert format_limit(2**64 - 1) == "max"
    assert format_limit(2**63 - 4096) == "max"  # the kernel's "no limit" of huge pages
    assert format_limit(4 << 20) == "4.0M"


def _limits(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_limit_flags(p)
    return p.parse_args(list(argv))


def test_build_resources_properties_after_flags() -> None:
    r, given = build_resources(
        _limits("--hugetlb", "2MB=4M", "-p", "hugetlb.1GB.max=0", "-p", "memory.low=1M",
                "-p", "memory.low=2M", "--pids-max", "9")
    )
    assert [(v.filename, v.value) for v in r.values()] == [
        ("pids.max", "9"),
        ("hugetlb.2MB.max", str(4 << 20)),
        ("hugetlb.1GB.max", "0"),
        ("memory.low", "2M"),  # the last -p of a file counts
    ]
    assert given == ["--pids-max", "--hugetlb", "-p hugetlb.1GB.max", "-p memory.low"]
    assert r.enabled_controllers() == ["pids", "hugetlb", "memory"]


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "/g", "-p", "cgroup.procs=1"],
        ["create", "/g", "-p", "memory.max"],
        ["set", "/g", "--cpu-weight", "abc"],
        ["set", "/g", "--hugetlb", "2MB"],
        ["run", "--cpu-max", "50", "--", "true"],
        ["run", "--live", "1e-300", "--", "true"],
        ["run", "--device", "allow c 1:99999999999", "--", "true"],
        ["run", "--hugetlb", "x=1", "--", "true"],
        ["attach", "/g", "abc"],
        ["attach", "/g", "0"],
        ["attach", "/g"],
        ["kill", "--signal", "NOPE", "/g"],
        ["kill", "--timeout", "0", "/g"],
        ["top", "--interval", "1e-9"],
        ["top", "--json", "--batch"],
        ["top", "-n", "0"],
        ["top", "--depth", "-1"],
        ["events", "--count", "0", "/g"],
        ["get", "/g", "--json", "-v"],
        ["ls", "/a/../b"],
        ["status"],
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cgroup2: error: "), err
    assert "Traceback" not in err


def test_cpu_weight_error_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--cpu-weight", "abc", "--", "true"]) == 2
    assert capsys.readouterr().err == (
        "cgroup2: error: invalid --cpu-weight 'abc': a whole number\n"
    )
