"""The skip policy of CI: a tier passes only if its tests ran, with the privileges the tier
needs, and every skip is one the tier allows.

    python tests/skip_policy.py TIER JUNIT.xml      (scripts/test-all runs it per tier)

Reads the JUnit XML file pytest wrote for the tier (``--junitxml``) and the tier's entries
in ``tests/skips.toml``. Prints one line ``TIER passed N failed N skipped N`` and then,
for a tier that breaks the policy, every reason: a skip whose message matches no entry
of the tier (each listed with its test), a tier that ran no test, a tier run without its
privileges (the session properties ``tests/conftest.py`` records: euid, CGROUP2_TIER,
PID 1). Exit status 0 when the policy holds, 1 when not, 2 when the file is unreadable.

JUnit XML rather than parsing ``-rs`` lines: it is pytest's structured output, every skip
comes with its full message and its test's name (``-rs`` folds equal reasons together
and cuts long lines to the terminal), and the counts are attributes, not text.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY = os.path.join(HERE, "skips.toml")

#: What each tier must have run with (session properties written by tests/conftest.py).
NEEDS: dict[str, dict[str, str]] = {
    "host": {"euid": "0", "cgroup2_writable": "yes"},
    "vm": {"euid": "0", "tier": "vm", "cgroup2_writable": "yes"},
    "systemd": {"euid": "0", "tier": "systemd", "pid1": "systemd"},
}


@dataclass
class Result:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    skips: list[tuple[str, str]] = field(default_factory=list)  # (test id, message)
    properties: dict[str, str] = field(default_factory=dict)


def read_junit(path: str) -> Result:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    r = Result()
    for suite in suites:
        for p in suite.iter("property"):
            r.properties[p.get("name", "")] = p.get("value", "")
        for case in suite.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                r.failed += 1
            elif "skipped" in kinds:
                r.skipped += 1
                for s in case.iter("skipped"):
                    msg = s.get("message", "")
                    if msg == "collection skipped":  # a module-level skip: reason in the text
                        msg = (s.text or msg).strip()
                    r.skips.append((name.lstrip(":"), msg))
            else:
                r.passed += 1
    return r


def load_policy(tier: str, path: str = POLICY) -> list[dict[str, str]]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    entries = doc.get(tier, [])
    for e in entries:
        if not e.get("reason") or not e.get("why"):
            raise ValueError(f"{path}: every [[{tier}]] entry needs a reason and a why: {e}")
    return list(entries)


def _message(raw: str) -> str:
    """The reason pytest wrote: ``Skipped: REASON`` for pytest.skip(), REASON for a
    skip marker; a module-level skip gives ``('file', line, 'Skipped: REASON')``."""
    m = raw.strip()
    if m.startswith("(") and "Skipped: " in m:
        m = m.split("Skipped: ", 1)[1].rstrip("')\"")
    if m.startswith("Skipped: "):
        m = m[len("Skipped: "):]
    return m


def violations(tier: str, r: Result, entries: list[dict[str, str]]) -> list[str]:
    out: list[str] = []
    if r.passed + r.failed == 0:
        out.append(f"the {tier} tier ran no test (collected {r.skipped}, all skipped)")
    for key, want in NEEDS.get(tier, {}).items():
        got = r.properties.get(key)
        if got != want:
            out.append(
                f"the {tier} tier ran without what it needs: {key} is {got!r}, must be {want!r}"
            )
    for test, raw in r.skips:
        msg = _message(raw)
        if not any(fnmatch.fnmatchcase(msg, e["reason"]) for e in entries):
            out.append(f"skip not allowed on the {tier} tier: {test}: {msg}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    tier, path = argv[1], argv[2]
    try:
        r = read_junit(path)
        entries = load_policy(tier)
    except (OSError, ET.ParseError, ValueError, tomllib.TOMLDecodeError) as e:
        print(f"{tier}: no result to check: {e}")
        return 2
    print(f"{tier} passed {r.passed} failed {r.failed} skipped {r.skipped}")
    bad = violations(tier, r, entries)
    for line in bad:
        print(f"  POLICY: {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
