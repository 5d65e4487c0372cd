"""host: every example of README's command table, run on this machine in order: it works,
or (on a hybrid host, for a controller bound to cgroup v1) fails with one line that names
the v1 hierarchy and how to move the controller.

The examples are read from README.md and adapted only where they would reach outside the
run's own groups or never end: ``/jobs`` and ``/system.slice`` become groups below the
test's own group, ``make -j4`` and ``./job`` become ``true``, pid 4242 a ``sleep`` the
test started, ``top`` and ``export`` print one frame (``--once``; ``top`` of the test's
group, not of the whole tree, where other runs' groups come and go), ``events`` stops after
its first line (``--initial --count 1``), and ``source <(...)`` runs the command alone.
Where ``create --memory-max`` is refused, the group is made without the limit for the
examples after it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cgtest import remove_tree
from conftest import Parent

README = Path(__file__).resolve().parents[2] / "README.md"
V1_MESSAGE = re.compile(
    r"is bound to the cgroup v1 hierarchy at /\S+ on this host; cgroup2 manages only the "
    r"unified hierarchy — boot with systemd\.unified_cgroup_hierarchy=1 \(or cgroup_no_v1="
)


def _examples() -> list[str]:
    section = README.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in section.splitlines():
        if line.startswith("| `cgroup2"):
            out.append(line.strip().strip("|").split("|")[-1].strip().strip("`"))
    return out


def _adapt(example: str, group: str, pid: int) -> list[str]:
    if example.startswith("source <("):
        example = example[len("source <("):-1]
    argv = shlex.split(example)
    out = []
    for word in argv:
        if word.startswith("/jobs"):
            word = group + word
        elif word == "/system.slice":
            word = group + "/system.slice"
        elif word in ("make", "./job"):
            word = "true"
        elif word == "-j4":
            continue
        elif word == "4242":
            word = str(pid)
        out.append(word)
    if out[1] in ("top", "export"):
        out.insert(2, "--once")
        if out[1] == "top":  # not the whole tree: other runs' groups come and go there
            out.append(group)
        if "--listen" in out:
            i = out.index("--listen")
            del out[i:i + 2]
    if out[1] == "events":
        out[2:2] = ["--initial", "--count", "1"]
    if out[1] == "run":
        out[2:2] = ["--parent", group]
    return out


def test_readme_examples_work_or_name_the_v1_hierarchy(cg_parent: Parent, cg_path: str) -> None:
    examples = _examples()
    assert len(examples) >= 20, examples
    fs = cg_parent.mountpoint + cg_path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="200")
    os.mkdir(fs)
    os.mkdir(fs + "/system.slice")
    os.mkdir(fs + "/system.slice/a.service")
    sleeper = subprocess.Popen(["sleep", "300"])
    results = []
    try:
        for example in examples:
            argv = _adapt(example, cg_path, sleeper.pid)
            r = subprocess.run([sys.executable, "-m", "cgroup2", *argv[1:]],
                               capture_output=True, text=True, timeout=120, env=env,
                               stdin=subprocess.DEVNULL)
            ok = r.returncode == 0
            v1 = not ok and bool(V1_MESSAGE.search(r.stderr)) and r.stderr.count("\n") == 1
            results.append((example, " ".join(argv), r.returncode, ok or v1,
                            r.stderr.strip()))
            if argv[1] == "create" and not ok:  # the limit refused: the group without it
                subprocess.run([sys.executable, "-m", "cgroup2", "create", "--parents",
                                argv[-1]], check=True, env=env, capture_output=True)
            if argv[1] == "attach" and ok and sleeper.poll() is not None:
                break
    finally:
        sleeper.kill()
        sleeper.wait()
        if os.path.exists(fs):
            remove_tree(fs)
    print()
    for example, ran, rc, good, err in results:
        how = "works" if rc == 0 else ("names v1" if good else "FAILS")
        print(f"{how:9} rc={rc}  {example}" + ("" if ran == example else f"   (ran: {ran})"))
        if rc:
            print(f"          {err[:300]}")
    bad = [(e, err) for e, _, _, good, err in results if not good]
    assert bad == [], bad
    assert len(results) == len(examples)
    assert all("Traceback" not in err for *_, err in results)


@pytest.mark.parametrize("example", ["cgroup2 get /jobs/job-1 memory.max pids.max"])
def test_adapt_keeps_paths_below_the_test_group(example: str) -> None:
    argv = _adapt(example, "/cgroup2-test-1-x/t", 1)
    assert argv[2] == "/cgroup2-test-1-x/t/jobs/job-1"
