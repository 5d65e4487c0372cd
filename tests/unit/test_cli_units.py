"""unit: the command line's value parsers and formatters, and its usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroup2 import CPUMax, Entry, IOType
from cgroup2.cli import main
from cgroup2.cli._units import (
    SUFFIXES,
    UsageError,
    format_bytes,
    format_usec,
    parse_cpu_max,
    parse_device,
    parse_io_max,
    parse_rule,
    parse_rules,
    parse_size,
)
from cgroup2.devices import DeviceRule


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0", 0),
        ("4096", 4096),
        ("1K", 1024),
        ("512M", 512 * 2**20),
        ("512m", 512 * 2**20),
        ("2G", 2 * 2**30),
        ("1T", 2**40),
        ("1.5G", 3 * 2**29),
        ("64MiB", 64 * 2**20),
        ("64MB", 64 * 2**20),
        ("max", "max"),
        ("infinity", "max"),
    ],
)
def test_parse_size(text: str, want: int | str) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "M", "-5", "1.5.2K", "12Q", "1e6", "0x10", "5 K B"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=2**20), st.sampled_from(sorted(SUFFIXES)))
def test_parse_size_is_binary(n: int, suffix: str) -> None:
    assert parse_size(f"{n}{suffix}") == n * 1024 ** " KMGT".index(suffix or " ")


@pytest.mark.parametrize(
    ("text", "cpus", "want"),
    [
        ("50%", 1, "50000 100000"),
        ("100%", 1, "100000 100000"),
        ("150%", 2, "150000 100000"),
        ("2.5%", 1, "2500 100000"),
        ("max", 1, "max 100000"),
        ("20000/50000", 1, "20000 50000"),
        ("20000 50000", 1, "20000 50000"),
        ("20000", 1, "20000 100000"),
    ],
)
def test_parse_cpu_max(text: str, cpus: int, want: str) -> None:
    got = parse_cpu_max(text, cpus=cpus)
    assert isinstance(got, CPUMax) and got == want


@pytest.mark.parametrize(
    ("text", "cpus", "why"),
    [
        ("150%", 1, "at most 100%"),
        ("0%", 2, "above 0%"),
        ("0.5%", 2, "at least 1%"),
        ("fifty%", 2, "expected"),
        ("10 20 30", 2, "expected"),
        ("500/100000", 2, "out of range"),
    ],
)
def test_parse_cpu_max_refuses(text: str, cpus: int, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_cpu_max(text, cpus=cpus)


def test_parse_io_max() -> None:
    assert parse_io_max("8:0:rbps=1M,wiops=100") == [
        Entry(IOType.READ_BPS, 8, 0, 2**20),
        Entry(IOType.WRITE_IOPS, 8, 0, 100),
    ]
    assert parse_io_max("253:16:wbps=max") == [Entry(IOType.WRITE_BPS, 253, 16, "max")]
    assert str(parse_io_max("8:0:rbps=1K")[0]) == "8:0 rbps=1024"


@pytest.mark.parametrize(
    "text", ["8:0", "rbps=1M", "8:0:xbps=1", "8:0:riops=1K", "sda:rbps=1", "/dev/null:rbps=1"]
)
def test_parse_io_max_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_io_max(text)


def test_parse_rules() -> None:
    assert parse_rule("deny a") == DeviceRule(allow=False)
    assert parse_rule("allow c 1:3 rw") == DeviceRule(True, "c", 1, 3, "rw")
    assert parse_rule("ALLOW  b 8:*  r") == DeviceRule(True, "b", 8, None, "r")
    assert parse_rule("allow c *:* m") == DeviceRule(True, "c", None, None, "m")
    assert parse_rules("deny a; allow c 1:3 rw\nallow c 1:5") == [
        DeviceRule(False),
        DeviceRule(True, "c", 1, 3, "rw"),
        DeviceRule(True, "c", 1, 5, "rwm"),
    ]
    for bad in ("permit a", "allow x 1:3", "allow c 1:3 rx", "allow c 1", ";"):
        with pytest.raises(UsageError):
            parse_rules(bad)
    assert parse_device("c 1:3 rw") == ("c", 1, 3, "rw")
    assert parse_device("b 8:0") == ("b", 8, 0, "rwm")
    with pytest.raises(UsageError):
        parse_device("a 1:3")


def test_format() -> None:
    assert format_bytes(None) == "-"
    assert format_bytes(512) == "512B"
    assert format_bytes(1536) == "1.5K"
    assert format_bytes(3 * 2**30) == "3.0G"
    assert format_bytes(2**64 - 1) == "max"
    assert format_usec(None) == "-"
    assert format_usec(0) == "0"
    assert format_usec(999) == "999us"
    assert format_usec(2500) == "2.5ms"
    assert format_usec(1_234_567) == "1.235s"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["stat"],
        ["stat", "/g", "--json", "--prometheus"],
        ["top", "--sort", "colour"],
        ["top", "--interval", "0"],
        ["run", "--cpu-max", "fifty", "--", "true"],
        ["run", "--memory-max", "lots", "--", "true"],
        ["run", "--pids-max", "-3", "--", "true"],
        ["run", "--io-max", "8:0:zz=1", "--", "true"],
        ["run", "--device", "permit all", "--", "true"],
        ["run", "--summary"],
        ["run", "--name", "a/b", "--", "true"],
        ["stat", "/a/../b"],
        ["devices", "check", "deny a"],
        ["devices", "check", "deny a", "x 1:3"],
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cgroup2: error: "), err


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cgroup2", *args], capture_output=True, text=True, timeout=60
    )


def test_usage_error_as_a_subprocess() -> None:
    p = _cli("run", "--cpu-max", "150", "--pids-max", "many", "--", "true")
    assert p.returncode == 2
    assert p.stderr == "cgroup2: error: invalid --pids-max 'many': a number of tasks or 'max'\n"
    assert p.stdout == ""


@pytest.mark.parametrize(
    ("rules", "device", "verdict"),
    [
        ("deny a; allow c 1:3 rw", "c 1:3 rw", "allow"),
        ("deny a; allow c 1:3 rw", "c 1:3 r", "allow"),
        ("deny a; allow c 1:3 r", "c 1:3 rw", "deny"),  # every requested bit must be allowed
        ("deny a; allow c 1:3 rw", "c 1:5 r", "deny"),
        ("deny a; allow c 1:3 rw", "b 1:3 r", "deny"),
        ("allow a; deny c 1:* w", "c 1:9 r", "allow"),
        ("allow a; deny c 1:* w", "c 1:9 rw", "deny"),
        ("deny a; allow c 1:3 r; allow c 1:3 w", "c 1:3 rw", "allow"),  # one device: merged
        ("deny a; allow c 1:* r; allow c 1:3 w", "c 1:3 rw", "deny"),  # not across devices
        ("deny a; allow c 1:3 rw; deny c 1:3 w", "c 1:3 r", "allow"),  # a deny takes bits
        ("deny a; allow c 1:3 rw; deny c 1:3 w", "c 1:3 w", "deny"),
        ("allow a; deny c 1:3 rw; allow c 1:3 r", "c 1:3 r", "allow"),
        ("deny c 5:1; allow c *:* rwm", "c 5:1 r", "allow"),
        ("allow b 8:0 r", "c 1:3 r", "deny"),  # no match denies
    ],
)
def test_devices_check(rules: str, device: str, verdict: str) -> None:
    p = _cli("devices", "check", rules, device)
    assert (p.stdout, p.returncode) == (verdict + "\n", 0 if verdict == "allow" else 1), p.stderr


def test_devices_check_refuses_a_hole_in_a_wildcard_exception() -> None:
    """cgroup v1 takes bits only from the exception for the same device: the deny would
    leave c 5:1 allowed by ``c *:*``; a usage error (status 2), not a verdict."""
    p = _cli("devices", "check", "allow c *:* rwm; deny c 5:1", "c 5:1 r")
    assert (p.stdout, p.returncode) == ("", 2)
    assert p.stderr == (
        "cgroup2: error: device rule deny c 5:1 rwm cannot be applied: it would punch a "
        "hole in the wildcard exception allow c *:* rwm (cgroup v1 only takes bits from "
        "an exception for the same device)\n"
    )
