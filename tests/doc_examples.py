"""The examples of README.md, docs/quickstart.md and docs/guides/*.md, and where each runs.

Every code block of those pages is an example. :data:`WHERE` says, for each, the tier whose
test runs it (``host`` or ``vm``: tests/host/test_doc_examples.py,
tests/vm/test_doc_examples.py), or why no test runs it as written and which tier's tests
show what it shows. tests/unit/test_doc_examples.py checks that every block has an entry
and every entry a block. A block runs adapted, by :func:`adapt` alone: group paths below
the test's own group, placeholders of the reader's job (``./job``, ``make -j4``) as
``true``, the pid ``4242`` as a process of the test's.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/quickstart.md",
         *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "guides").glob("*.md"))]


@dataclass(frozen=True)
class Example:
    page: str
    lang: str
    text: str

    @property
    def key(self) -> tuple[str, str]:
        """(page, the block's first line): what :data:`WHERE` is keyed by."""
        return self.page, self.text.split("\n", 1)[0]


def examples() -> list[Example]:
    out = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.S | re.M):
            out.append(Example(page, m.group(1), m.group(2)))
        # a table's examples: the last column of a row, a command in code
        for m in re.finditer(r"^\|.*\| `(cgroup2 [^`]*)` \|$", text, re.M):
            out.append(Example(page, "sh", m.group(1)))
    return out


#: Group paths of the examples, put below the test's group.
_GROUPS = r"/(?:jobs|system\.slice|user\.slice|containers|ci)\b"
_SH_JOBS = {"./job": "true", "./build.sh": "true", "./server": "true", "make -j4": "true"}
# a job the python examples wait on (its memory events) lives a few seconds: the event
# stream ends when the group empties after it was seen populated
_PY_JOBS = {'["./job"]': '["sleep", "5"]', '["make", "-j4"]': '["true"]', '"./job"': '"true"',
            '["./server"]': '["sleep", "60"]'}


def adapt(ex: Example) -> str:
    """The example as a test runs it: sh with ``cgroup2`` the command of this checkout and
    ``$BASE`` the test's group; python with ``BASE`` that group."""
    text = ex.text
    if ex.lang == "sh":
        text = text.replace("\\\n", " ")
        for job, stand_in in _SH_JOBS.items():
            text = text.replace(job, stand_in)
        text = re.sub(r"(?<![\w.])" + _GROUPS, lambda m: "$BASE" + m.group(0), text)
        # a new group of 'run' goes below the test's group too, not below the mount's root
        text = re.sub(r"\bcgroup2 run (?!--systemd)", "cgroup2 run --parent $BASE ", text)
        # top of the whole mount: of the test's group (the mount's groups are not the test's)
        text = re.sub(r"^(cgroup2 top\b[^#\n]*?)(\s*#.*)?$",
                      lambda m: m.group(1) + " $BASE" + (m.group(2) or ""), text, flags=re.M)
        return text.replace(" 4242", " $SLEEPER")
    for job, stand_in in _PY_JOBS.items():
        text = text.replace(job, stand_in)
    return re.sub(r'"(' + _GROUPS + r'[^"]*)"', r'BASE + "\1"', text)


HOST, VM = "host", "vm"
_FOREVER = "runs until it is stopped"
#: (page, first line) -> the tier whose test runs it, or why none does as written (and
#: the tier whose tests show the same).
WHERE: dict[tuple[str, str], str] = {
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/cgroup2 "
     'run --live 0.5 --summary --device "deny a" --device "allow c 1:3 rw" --device '
     '"allow c 1:5 r" -- sh -c "head -c 1G /dev/zero | md5sum; head -c 16 /dev/urandom '
     '>/dev/null || echo /dev/urandom: denied"'):
        "installs the package (the package tier installs the wheel into a fresh venv); its "
        "'cgroup2 run' runs in the host tier: tests/host/test_doc_examples.py::"
        "test_readme_first_command",
    ("README.md", "from cgroup2 import CPU, CPUMax, DeviceRule, Memory, Pids, Popen, Resources"):
        VM,
    # README's table of commands, in its order (the vm tier runs them one after another)
    ("README.md", "cgroup2 run --memory-max 512M --cpu-max 50% --summary -- make -j4"): VM,
    ("README.md", "cgroup2 create --parents --memory-max 1G --pids-max 256 /jobs/job-1"): VM,
    ("README.md", "cgroup2 set --pids-max 128 /jobs/job-1"): VM,
    ("README.md", "cgroup2 get /jobs/job-1 memory.max pids.max"): VM,
    ("README.md", "cgroup2 attach /jobs/job-1 4242"): VM,
    ("README.md", "cgroup2 exec /jobs/job-1 -- ./job"): VM,
    ("README.md", "cgroup2 ls -r /system.slice"): HOST,
    ("README.md", "cgroup2 status /system.slice"): HOST,
    ("README.md", "cgroup2 stat --json /jobs/job-1"): VM,
    ("README.md", "cgroup2 top --sort memory"): VM,
    ("README.md", "cgroup2 export --listen 127.0.0.1:9753 --root /system.slice"): HOST,
    ("README.md", "cgroup2 tree /system.slice"): HOST,
    ("README.md", "cgroup2 events --json /jobs/job-1"): VM,
    ("README.md", "cgroup2 freeze /jobs/job-1"): VM,
    ("README.md", "cgroup2 thaw /jobs/job-1"): VM,
    ("README.md", "cgroup2 kill /jobs/job-1"): VM,
    ("README.md", "cgroup2 rm -r --kill /jobs"): VM,
    ("README.md", "cgroup2 self --json"): HOST,
    ("README.md", 'cgroup2 devices check "deny a; allow c 1:3 rw" "c 1:3 r"'): HOST,
    ("docs/quickstart.md",
     "from cgroup2 import CPU, CPUMax, DeviceRule, Manager, Memory, Pids, Popen, Resources"): VM,
    ("docs/quickstart.md",
     "cgroup2 run --memory-max 512M --cpu-max 50% --pids-max 64 --live 1 --summary -- make -j4"):
        VM,
    ("docs/quickstart.md", "cgroup2 create --parents --memory-max 1G --pids-max 256 /jobs/job-1"):
        VM,
    ("docs/quickstart.md", "cgroup2 ls -r /jobs"): VM,
    ("docs/quickstart.md", "cgroup2 freeze /jobs/job-1"): VM,
    ("docs/quickstart.md", 'cgroup2 devices check "deny a; allow c 1:3 rw" "c 1:3 rw"     # allow'):
        HOST,
    ("docs/quickstart.md", "source <(cgroup2 completion bash)     # zsh: the same after "
     "compinit; fish: cgroup2 completion fish | source"):
        "changes the shell it runs in: the unit tier loads the scripts in bash, zsh and fish "
        "(tests/unit/test_release.py), the host tier completes in bash "
        "(tests/host/test_completion.py)",
    ("docs/guides/devices.md", "from cgroup2 import DeviceRule, Manager, Resources"): HOST,
    ("docs/guides/devices.md", "from cgroup2 import device_filter"): HOST,
    ("docs/guides/devices.md", 'cgroup2 devices check "deny a; allow c 1:3 rw; allow c 1:5 r" '
     '"c 1:5 w"   # deny, exit 1'): HOST,
    ("docs/guides/events.md", "from cgroup2 import Manager"):
        f"{_FOREVER} (the group's job ends): the vm tier's tests/vm/test_events.py",
    ("docs/guides/events.md", "async def watch(m):"): VM,
    ("docs/guides/events.md", "from cgroup2 import EventWatcher, Manager"):
        f"{_FOREVER} (the groups are removed): tests/host/test_events.py and the vm tier's "
        "tests/vm/test_events.py",
    ("docs/guides/events.md", "cgroup2 events /jobs/job-1 --initial --json    # one JSON object "
     "a line"): VM,
    ("docs/guides/limits.md", "from cgroup2 import ("):
        "needs the RDMA device mlx5_0 and the block device 8:0: the vm tier's "
        "tests/vm/test_limits.py writes and reads back each field on its own devices",
    ("docs/guides/limits.md", 'm = Manager.load("/jobs/job-2")'):
        "continues the example above: tests/vm/test_limits.py (update)",
    ("docs/guides/limits.md", "m.add_proc(pid)            # the process and all its threads "
     "(cgroup.procs)"):
        "a list of calls on a group the reader has (pid, /jobs/other): "
        "tests/host/test_manager.py runs each",
    ("docs/guides/monitoring.md", "cgroup2 export --listen 127.0.0.1:9753 --root /system.slice"):
        HOST,
    ("docs/guides/monitoring.md", "scrape_configs:"):
        "Prometheus's configuration: the host tier's tests/host/test_export.py scrapes the "
        "exporter with a real Prometheus",
    ("docs/guides/monitoring.md", 'rate(cgroup_cpu_usage_seconds_total{group=~"/system.slice/.*"}'
     "[1m])   # CPUs in use"):
        "PromQL for the reader's dashboards: tests/host/test_export.py checks the metric "
        "names with promtool",
    ("docs/guides/monitoring.md", "sum by (pod_uid) (rate(cgroup_cpu_usage_seconds_total"
     '{container_id!=""}[1m]))'):
        "PromQL for the reader's dashboards: tests/host/test_export.py checks the exporter's "
        "labels and metric names",
    ("docs/guides/monitoring.md", "[Service]"):
        "a systemd unit file: the systemd tier runs units (tests/systemd/)",
    ("docs/guides/monitoring.md", "from cgroup2 import Sampler"):
        f"{_FOREVER} (serve_forever): tests/host/test_export.py serves and scrapes",
    ("docs/guides/oci.md", "import json"):
        "needs an OCI bundle's config.json: tests/unit/test_oci.py converts specs, the vm "
        "tier's tests/vm/test_oci.py writes them",
    ("docs/guides/pressure.md", "from cgroup2 import Manager, PressureTrigger"):
        f"{_FOREVER} (pressure comes): tests/host/test_pressure.py",
    ("docs/guides/pressure.md", "cgroup2 events --pressure memory:some:300ms:2s /jobs/batch"):
        HOST,
    ("docs/guides/pressure.md", "cgroup2 run --memory-high 64M --summary --on-pressure "
     "memory:full:200ms:2s=kill -- ./build.sh"): VM,
    ("docs/guides/running.md", "cgroup2 run --memory-max 512M --cpu-max 50% --pids-max 64 "
     "--summary -- make -j4"): VM,
    ("docs/guides/running.md", 'cgroup2 run --live 0.5 --summary --device "deny a" --device '
     '"allow c 1:3 rw" \\'): HOST,
    ("docs/guides/running.md", "from cgroup2 import CPU, CPUMax, Memory, Pids, Resources, run"):
        VM,
    ("docs/guides/running.md", "import cgroup2"): VM,
    ("docs/guides/running.md", "import asyncio"): VM,
    ("docs/guides/stats.md", "from cgroup2 import Manager"): HOST,
    ("docs/guides/stats.md", "from cgroup2 import StatMask"): HOST,
    ("docs/guides/stats.md", "import time"):
        f"{_FOREVER} (a loop): tests/host/test_sampler.py samples the same way",
    ("docs/guides/stats.md", "from cgroup2 import Manager, stats"): HOST,
    ("docs/guides/stats.md", "cgroup2 stat /system.slice               # a readable summary"):
        HOST,
    ("docs/guides/systemd.md", "import os"):
        "needs systemd as PID 1: the systemd tier (tests/systemd/)",
    ("docs/guides/systemd.md", "cgroup2 run --systemd --slice batch.slice --memory-max 256M -- "
     "./job"):
        "needs systemd as PID 1: the systemd tier (tests/systemd/)",
}


#: Commands that run until they are stopped: run for a few seconds, then sent SIGINT.
_UNTIL_STOPPED = re.compile(r"^cgroup2 (top|events|export --listen)\b")


def commands(script: str) -> list[str]:
    """The command lines of an adapted sh block (comments and blank lines left out)."""
    return [ln for ln in script.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]


def expected_status(line: str) -> int:
    """0, or the status the line's comment says (``# deny, exit 1``)."""
    m = re.search(r"#.*\bexit (\d+)", line)
    return int(m.group(1)) if m else 0


#: What a page takes the reader to have made already, made before its examples run.
BEFORE = {
    "docs/guides/events.md": "cgroup2 create --memory-max 1G $BASE/jobs/job-1",
}


def run_page(page: str, tier: str, base: str, env: dict[str, str]) -> list[str]:
    """Run the examples of ``page`` that :data:`WHERE` gives to ``tier``, in their order
    (the python blocks in one interpreter, as a reader continues one session; then each
    command line of the sh blocks); ``base`` is the test's group. What failed, as text."""
    mine = [e for e in examples() if e.page == page and WHERE[e.key] == tier]
    # 'cgroup2' is this checkout's command, also where another program runs it (timeout)
    bin_dir = tempfile.mkdtemp(prefix="cgroup2-doc-examples-")
    with open(f"{bin_dir}/cgroup2", "w") as f:
        f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cgroup2 "$@"\n')
    os.chmod(f"{bin_dir}/cgroup2", 0o755)
    env = {**env, "BASE": base, "PY": sys.executable,
           "PATH": bin_dir + os.pathsep + env.get("PATH", os.defpath)}
    try:
        return _run(page, mine, env)
    finally:
        shutil.rmtree(bin_dir)


def _run(page: str, mine: list[Example], env: dict[str, str]) -> list[str]:
    failed = []
    if page in BEFORE:
        subprocess.run(["bash", "-c", BEFORE[page]], check=True, timeout=300, env=env)
    program = "".join(adapt(e) + "\n" for e in mine if e.lang == "python")
    if program:
        r = subprocess.run([sys.executable, "-c", "import os\nBASE = os.environ['BASE']\n" +
                            program], capture_output=True, text=True, timeout=300, env=env)
        if r.returncode != 0:
            failed.append(f"{page} python: status {r.returncode}: {r.stderr[-1500:]}")
    for e in mine:
        if e.lang != "sh":
            continue
        for line in commands(adapt(e)):
            forever = _UNTIL_STOPPED.match(line.lstrip())
            cmd = f"timeout -s INT 4 {line}" if forever else line
            r = subprocess.run(
                ["bash", "-c", cmd],
                capture_output=True, text=True, timeout=300, env=env,
            )
            want = {0, 124} if forever else {expected_status(line)}
            if r.returncode not in want:
                failed.append(f"{page}: {line}: status {r.returncode}: {r.stderr[-1500:]}")
    return failed


def pages_of(tier: str) -> list[str]:
    return sorted({e.page for e in examples() if WHERE[e.key] == tier})


def setup(fs: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The groups the examples name, below the test's group at ``fs`` (``jobs``,
    ``jobs/batch``, ``system.slice``, ``user.slice``), and a process in ``system.slice``
    (``$SLEEPER``, for ``attach``); the caller stops it and removes the groups."""
    for d in ("jobs", "jobs/batch", "system.slice", "user.slice"):
        os.mkdir(f"{fs}/{d}")
    p = subprocess.Popen(["sleep", "600"])
    with open(f"{fs}/system.slice/cgroup.procs", "w") as f:
        f.write(str(p.pid))
    return p, {**os.environ, "SLEEPER": str(p.pid)}
