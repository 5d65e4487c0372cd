"""unit: every code block of README.md, the Quickstart and the guides is run by a test of
the tier that can run it, or says why not and which tier's tests show the same
(tests/doc_examples.py)."""

from __future__ import annotations

from doc_examples import HOST, VM, WHERE, adapt, examples


def test_every_example_has_a_place_and_every_place_an_example() -> None:
    keys = [e.key for e in examples()]
    assert len(keys) >= 40
    assert len(set(keys)) == len(keys), "two blocks of a page start alike"
    assert [k for k in keys if k not in WHERE] == []
    assert [k for k in WHERE if k not in keys] == []


def test_a_place_is_a_tier_or_a_reason_naming_one() -> None:
    for key, where in WHERE.items():
        if where in (HOST, VM):
            continue
        assert any(t in where for t in ("host tier", "vm tier", "unit tier", "systemd tier",
                                        "package tier", "tests/")), (key, where)


def test_adapting_changes_group_paths_and_placeholders_only() -> None:
    for e in examples():
        if WHERE[e.key] not in (HOST, VM):
            continue
        text = adapt(e)
        for path in ("/jobs", "/system.slice", "/user.slice"):
            assert path not in text.replace("$BASE" + path, "").replace(
                'BASE + "' + path, ""), (e.key, text)
        assert "./job" not in text and "make -j4" not in text
