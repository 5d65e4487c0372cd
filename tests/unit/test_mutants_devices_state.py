"""unit: what the tables of runc and the property tests leave open in ``devices/state.py``
and the compiler's comments: refusals word for word, runc's order of exceptions and of a
transition's rules, the bounds of ``devices.list`` numbers, ``a`` lines of a list."""

from __future__ import annotations

from typing import Any

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import device_filter
from cgroup2.devices.state import DeviceState


def _refusal(make: Any) -> str:
    with pytest.raises(CgroupError) as e:
        make()
    return str(e.value)


@pytest.mark.parametrize(
    ("exceptions", "message"),
    [
        (
            {("a", 1, 3): "r"},
            "cgroups: an exception is of type b or c, not 'a'",
        ),
        (
            {("c", 2**32, 3): "r"},
            "cgroups: invalid device rule allow c 4294967296:3 r: major must be None (any) "
            "or an int in 0..4294967295",
        ),
        (
            {("c", 1, -1): "r"},
            "cgroups: invalid device rule allow c 1:-1 r: minor must be None (any) or an "
            "int in 0..4294967295",
        ),
        (
            {("c", 1, 3): "rx"},
            "cgroups: invalid device rule allow c 1:3 rx: access must be a non-empty "
            "subset of 'rwm'",
        ),
    ],
)
def test_exceptions_are_validated(exceptions: dict[Any, str], message: str) -> None:
    assert _refusal(lambda: DeviceState(False, exceptions)) == message


def test_apply_refuses_what_is_not_a_rule() -> None:
    assert _refusal(lambda: DeviceState().apply("allow a")) == (  # type: ignore[arg-type]
        "cgroups: invalid device rule 'allow a': a DeviceRule is required"
    )


def test_exceptions_in_runcs_order_a_wildcard_before_0() -> None:
    keys = [("c", 0, 5), ("c", None, 5), ("b", 1, 0), ("b", 1, None), ("c", 0, 0), ("b", 0, 5)]
    state = DeviceState(False, dict.fromkeys(keys, "r"))
    assert list(state.exceptions) == [
        ("c", None, 5),
        ("c", 0, 0),
        ("b", 0, 5),
        ("c", 0, 5),
        ("b", 1, None),
        ("b", 1, 0),
    ]


def test_dropped_bits_in_runcs_order() -> None:
    """The losses are written in runc's order too (by major first: c 1:1 before b 5:5,
    a wildcard before a number), also where keys differ only in a wildcard."""
    source = DeviceState(False, {("b", 5, 5): "r", ("c", 1, 3): "r", ("c", 1, None): "r"})
    assert [str(r) for r in source.transition(DeviceState(False))] == [
        "deny c 1:* r",
        "deny c 1:3 r",
        "deny b 5:5 r",
    ]


def test_list_numbers_up_to_2_32_minus_1() -> None:
    state = DeviceState.from_list("c 4294967295:4294967295 r")
    assert state.exceptions == {("c", 2**32 - 1, 2**32 - 1): "r"}
    assert _refusal(lambda: DeviceState.from_list("c 1:3 r\nc 4294967296:1 r")) == (
        "cgroups: invalid devices.list line 2 'c 4294967296:1 r': a number is larger than "
        "4294967295"
    )
    assert _refusal(lambda: DeviceState.from_list("c 1:3 r\n\n")) == (
        "cgroups: invalid devices.list line 2 '': expected 'TYPE MAJOR:MINOR ACCESS', "
        "e.g. 'c 1:3 rwm'"
    )


def test_an_a_line_of_a_list_is_allow_all() -> None:
    """runc reads any ``a`` line of ``devices.list`` as "allow every device"."""
    assert DeviceState.from_list("c 1:3 r\na 1:2 r") == DeviceState(True)


def test_the_hole_message_names_the_wildcard() -> None:
    state = DeviceState(True, {("b", None, 0): "rw"})
    assert _refusal(lambda: state.apply(DeviceRule(True, "b", 8, 0, "w"))) == (
        "cgroups: device rule allow b 8:0 w cannot be applied: it would punch a hole in the "
        "wildcard exception deny b *:0 rw (cgroup v1 only takes bits from an exception for "
        "the same device)"
    )
    assert state == DeviceState(True, {("b", None, 0): "rw"})


def test_rules_say_the_reset_and_merge_b_and_c() -> None:
    state = DeviceState(False, {("b", 1, None): "r", ("c", 1, None): "r", ("c", 2, 2): "w"})
    assert [str(r) for r in state.rules()] == [
        "deny a *:* rwm",
        "allow a 1:* r",
        "allow c 2:2 w",
    ]
    assert DeviceState.of(state.rules()) == state
    assert [str(r) for r in DeviceState(True).rules()] == ["allow a *:* rwm"]
    assert repr(state) == (
        "DeviceState(default_allow=False, exceptions=[b 1:* r, c 1:* r, c 2:2 w])"
    )


def test_program_comments_name_wildcards() -> None:
    dump = device_filter(
        [
            DeviceRule(False),
            DeviceRule(True, "c", None, None, "r"),
            DeviceRule(True, "b", 7, None, "w"),
            DeviceRule(True, "b", None, 7, "m"),
        ]
    )
    lines = dump[0].dump().splitlines()
    comments = [ln for ln in lines if ln.startswith("// exception")]
    assert comments == [
        "// exception 0: allow c *:* r",
        "// exception 1: allow b *:7 m",
        "// exception 2: allow b 7:* w",
    ]


def test_a_hole_under_a_wider_wildcard_of_a_wildcard_rule() -> None:
    """``c *:3`` lies under ``c *:*``: the check goes on past the rule's own key."""
    state = DeviceState(False, {("c", None, None): "rw"})
    assert "wildcard exception allow c *:* rw" in _refusal(
        lambda: state.apply(DeviceRule(False, "c", None, 3, "w"))
    )
    assert "wildcard exception allow c *:* rw" in _refusal(
        lambda: state.apply(DeviceRule(False, "c", 3, None, "w"))
    )
