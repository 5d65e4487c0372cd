"""host tier: ``cgroup2 export`` scraped by a real Prometheus (Debian's package), its output
checked by ``promtool check metrics``, groups followed as they come and go, and its cost on
1,000 groups (scrape wall time; CPU at a 15 s scrape interval).

Every server is a child process on a free 127.0.0.1 port, stopped by its pid in a
``finally``; every group is made below the run's parent and removed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Parent
from export_tools import (
    LAYOUTS,
    PROMETHEUS,
    PROMETHEUS_ACCEPT,
    PROMTOOL,
    SRC,
    Prometheus,
    cpu_seconds,
    exporter,
    run_in_group,
    sample_value,
    scrape,
    stop,
)

BURN = 0.6  # CPU seconds the burner spends in its group
# (a check of the CPU time is a system call: the loop makes one each 100,000 steps)
BURN_CODE = f"import time\nwhile time.process_time() < {BURN}:\n    for _ in range(100_000): pass\n"
SLEEP_CODE = "import time\ntime.sleep(600)\n"

needs_prometheus = pytest.mark.skipif(
    not (os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK)),
    reason="needs Debian's prometheus package (scripts/test-all installs it)",
)


def _rmdirs(fs: str, names: list[str]) -> None:
    for n in reversed(names):
        path = os.path.join(fs, n) if n else fs
        for _ in range(200):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def _once(root: str, *args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "cgroup2", "export", "--once", "--root", root, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC},
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@needs_prometheus
def test_prometheus_scrapes_the_exporter(cg_parent: Parent, cg_path: str, tmp_path: Path) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    made = [""]
    procs: list[subprocess.Popen[bytes]] = []
    prom = None
    try:
        for n in ("burn", "idle", 'odd "name"'):
            os.mkdir(os.path.join(fs, n))
            made.append(n)
        burner = run_in_group(f"{fs}/burn", BURN_CODE)
        procs.append(burner)
        procs.extend(run_in_group(f"{fs}/idle", SLEEP_CODE) for _ in range(3))
        assert burner.wait(60) == 0
        with exporter(cg_path, "-v") as (exp, port):
            prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"])
            prom.start()
            job = 'job="cgroup2"'
            # a scrape that succeeded, in the format Prometheus asked for (OpenMetrics)
            deadline = time.monotonic() + 60
            while prom.value(f"up{{{job}}}") != 1 and time.monotonic() < deadline:
                time.sleep(0.25)
            assert prom.value(f"up{{{job}}}") == 1, (tmp_path / "prometheus.log").read_text()
            burned = prom.value(f'cgroup_cpu_usage_seconds_total{{group="{cg_path}/burn"}}')
            assert BURN <= burned <= BURN + 0.5, burned
            user = prom.value(f'cgroup_cpu_user_seconds_total{{group="{cg_path}/burn"}}')
            assert 0.5 * BURN <= user <= burned
            assert prom.value(f'cgroup_procs{{group="{cg_path}/idle"}}') == 3
            assert prom.value(f'cgroup_procs{{group="{cg_path}/burn"}}') == 0
            # the label of a name with a quote and a space came through escaped and back
            odd = cg_path.replace("\\", "\\\\") + '/odd \\"name\\"'
            assert prom.value(f'cgroup_procs{{group="{odd}"}}') == 0
            assert prom.value(f"cgroup2_exporter_groups{{{job}}}") == 4
            assert prom.value(f"cgroup2_exporter_open_fds{{{job}}}") >= 4
            assert prom.value(f"scrape_samples_scraped{{{job}}}") > 4 * 10
            # the counter grows between scrapes as the group uses CPU: a new process
            procs.append(run_in_group(f"{fs}/idle", BURN_CODE))
            assert procs[-1].wait(60) == 0
            deadline = time.monotonic() + 30
            q = f'cgroup_cpu_usage_seconds_total{{group="{cg_path}/idle"}}'
            while prom.value(q) < BURN and time.monotonic() < deadline:
                time.sleep(0.25)
            assert prom.value(q) >= BURN
            # the scrape that saw the CPU may have been taken while the burner was still
            # in the group: the count goes back to 3 at a later scrape
            n = f'cgroup_procs{{group="{cg_path}/idle"}}'
            while prom.value(n) != 3 and time.monotonic() < deadline:
                time.sleep(0.25)
            assert prom.value(n) == 3
            assert exp.poll() is None
            # what it served Prometheus (-v logs each scrape): OpenMetrics, as it asked
            prom.stop()
            stop(exp)
            assert exp.stderr is not None
            log = exp.stderr.read()
            assert exp.returncode == 0, log
            assert "scrape: openmetrics," in log and "scrape: text," not in log, log
    finally:
        if prom is not None:
            prom.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        _rmdirs(fs, made)


@needs_prometheus
def test_promtool_checks_the_text_format(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    made = ["", "a", "a/b", "c"]
    try:
        for n in made[1:]:
            os.mkdir(os.path.join(fs, n))
        text = _once(cg_path)
        for g in ("", "/a", "/a/b", "/c"):
            assert sample_value(text, "cgroup_procs", f'group="{cg_path}{g}"') == 0
        r = subprocess.run(
            [PROMTOOL, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        # promtool reads the text format only: it says so on OpenMetrics (its counter HELP
        # and TYPE lines name the family without _total, which the text format reads as
        # another family); Prometheus itself reads OpenMetrics (the test above)
        om = _once(cg_path, "--openmetrics")
        assert om.endswith("# EOF\n")
        assert "# TYPE cgroup_cpu_usage_seconds counter\n" in om
        assert _once(cg_path, "--depth", "1").count("cgroup_procs{") == 3
    finally:
        _rmdirs(fs, made)


def test_exporter_follows_groups_made_and_removed(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    made = [""]
    try:
        with exporter(cg_path) as (_, port):
            _, _, body = scrape(port)
            assert sample_value(body, "cgroup2_exporter_groups") == 1
            os.mkdir(f"{fs}/new")
            made.append("new")
            _, _, body = scrape(port)
            assert sample_value(body, "cgroup_procs", f'group="{cg_path}/new"') == 0
            assert sample_value(body, "cgroup2_exporter_groups") == 2
            os.rmdir(f"{fs}/new")
            made.pop()
            _, ctype, body = scrape(port, PROMETHEUS_ACCEPT)
            assert ctype.startswith("application/openmetrics-text; version=1.0.0")
            assert f'group="{cg_path}/new"' not in body
            assert sample_value(body, "cgroup2_exporter_groups") == 1
    finally:
        _rmdirs(fs, made)


GROUPS = 1000
#: the target is 1.5 s for 10,000 groups on the host; 1,000 groups get 0.6 s of the
#: exporter's CPU time (4x a tenth of it: room for a slow machine, none for a scrape
#: gone linear in something else, or one that walks the tree and reopens every file each
#: time). CPU time, not wall time: two busy neighbours stretch the one, not the other.
SCRAPE_BOUND = 0.6


def test_cost_on_1000_groups(cg_parent: Parent, cg_path: str) -> None:
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    names = [f"g{i:04d}" for i in range(GROUPS)]
    made = [""]
    try:
        for n in names:
            os.mkdir(f"{fs}/{n}")
            made.append(n)
        with exporter(cg_path) as (exp, port):
            walls, cpus = [], []
            for _ in range(3):
                c = cpu_seconds(exp.pid)
                wall, _, body = scrape(port, PROMETHEUS_ACCEPT)
                cpus.append(cpu_seconds(exp.pid) - c)
                walls.append(wall)
            assert sample_value(body, "cgroup2_exporter_groups") == GROUPS + 1
            held = sample_value(body, "cgroup2_exporter_open_fds")
            assert held is not None and held >= GROUPS  # descriptors held, not reopened
            print(f"\nscrape of {GROUPS + 1} groups: {', '.join(f'{w:.3f}' for w in walls)} s"
                  f" (CPU {', '.join(f'{c:.2f}' for c in cpus)} s)")
            assert min(cpus) <= SCRAPE_BOUND, (cpus, walls)
            # CPU at a 15 s scrape interval: one scrape's CPU plus 15 s of idling
            c0 = cpu_seconds(exp.pid)
            scrape(port, PROMETHEUS_ACCEPT)
            c1 = cpu_seconds(exp.pid)
            time.sleep(3.0)
            idle = (cpu_seconds(exp.pid) - c1) * 5
            share = ((c1 - c0) + idle) / 15.0
            print(f"CPU per scrape {c1 - c0:.2f} s, idle {idle:.2f} s per 15 s: {share:.1%}")
            assert share <= 0.10 * GROUPS / 10_000 * 4, share
    finally:
        _rmdirs(fs, made)


#: names the kernel accepts that a writer can get wrong: backslashes (with what looks like
#: an escape after them), quotes, control bytes (the kernel refuses a newline in a name:
#: EINVAL), bytes that are not UTF-8 (alone,
#: and as the text of their percent-encoding), "%", UTF-8, and the longest name (255 bytes)
HOSTILE = [
    b"bs\\x41\xff",
    b"dup\\xff",
    b"dup\xff",
    b"dup%FF",
    b'q"uo\\"te',
    b"ctl\x01\x02\t\r\x1b[31m",
    b"\xc3\x28\xa0\xa1",
    b"\xed\xa0\x80",
    "ünïcødé ☃".encode(),
    b"%",
    b"L" * 254 + b"\xff",
    b"\\" * 255,
]


@needs_prometheus
def test_hostile_names_pass_promtool_and_prometheus_queries_each_group(
    cg_parent: Parent, cg_path: str, tmp_path: Path
) -> None:
    """Groups with the names above: ``promtool check metrics`` accepts a scrape, and a real
    Prometheus holds one series per group, found by its label value (percent-encoded bytes
    that are not UTF-8, then the format's escapes) and giving the name's bytes back."""
    import json
    import re
    from urllib.parse import unquote_to_bytes

    fs = os.fsencode(cg_parent.mountpoint + cg_path)
    os.mkdir(fs)
    made: list[bytes] = []
    prom = None
    try:
        for n in HOSTILE:
            os.mkdir(fs + b"/" + n)
            made.append(n)
        once = subprocess.run(  # bytes: text mode would read the \r in a name as a newline
            [sys.executable, "-m", "cgroup2", "export", "--once", "--root", cg_path],
            capture_output=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": SRC},
            check=True,
        )
        r = subprocess.run(
            [PROMTOOL, "check", "metrics"],
            input=once.stdout,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        text = once.stdout.decode("utf-8")
        from cgroup2.exporter import escape_label, unescape_label

        assert sample_value(text, "cgroup2_exporter_groups") == len(HOSTILE) + 1
        with exporter(cg_path) as (_, port):
            prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"])
            prom.start()
            base = os.fsencode(cg_path)
            for n in HOSTILE:
                label = escape_label(os.fsdecode(base + b"/" + n))
                # what Prometheus stores: the label with the format's escapes undone
                value = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], label)
                assert unescape_label(label) == base + b"/" + n
                # a PromQL string literal (Go's escapes: JSON's are a subset)
                q = f"cgroup_procs{{group={json.dumps(value, ensure_ascii=False)}}}"
                assert prom.value(q) == 0, n
                (series,) = prom.query(q)
                metric = series["metric"]
                assert isinstance(metric, dict)
                assert unquote_to_bytes(metric["group"]) == base + b"/" + n
            assert prom.value('count(cgroup_procs{job="cgroup2"})') == len(HOSTILE) + 1
    finally:
        if prom is not None:
            prom.stop()
        for n in reversed(made):
            os.rmdir(fs + b"/" + n)
        os.rmdir(fs)


def _status(pid: int) -> dict[str, int]:
    """VmRSS (KiB) and Threads of process ``pid`` (/proc/PID/status)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return out


def _raise_nofile(n: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"needs {n} descriptors in the test process (hard limit {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def test_idle_and_never_reading_clients_do_not_starve_the_exporter(
    cg_parent: Parent, cg_path: str
) -> None:
    """2,000 idle TCP connections and 40 clients that send ``GET /metrics`` and never read
    (their receive buffers tiny): a real client still gets a whole scrape, the exporter's
    threads stay at its two (I/O loop, scrapes) whatever the clients, its RSS under twice
    its idle value, and it does not spin (its CPU over the hold is a small share)."""
    import socket

    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    names = [""] + [f"g{i:03d}" for i in range(300)]  # a body of about 1 MB
    made = [""]
    socks: list[socket.socket] = []
    _raise_nofile(2600)
    try:
        for n in names[1:]:
            os.mkdir(f"{fs}/{n}")
            made.append(n)
        with exporter(cg_path, "--max-connections", "256") as (exp, port):
            _, _, body = scrape(port)
            _, _, body = scrape(port)
            assert sample_value(body, "cgroup2_exporter_groups") == len(names)
            idle = _status(exp.pid)
            for _ in range(2000):
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                socks.append(s)
            request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            for _ in range(40):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(30)
                s.connect(("127.0.0.1", port))
                s.sendall(request)
                socks.append(s)
            c0, t0 = cpu_seconds(exp.pid), time.monotonic()
            time.sleep(2.0)
            held = _status(exp.pid)
            # a real client, now
            wall, _, body = scrape(port)
            assert sample_value(body, "cgroup2_exporter_groups") == len(names)
            c1, t1 = cpu_seconds(exp.pid), time.monotonic()
            after = _status(exp.pid)
            closed = {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in body.split("\n")
                if line.startswith("cgroup2_exporter_connections_closed_total{")
            }
            print(
                f"\nidle: RSS {idle['VmRSS']} KiB, {idle['Threads']} threads; under 2,000 "
                f"idle and 40 unread clients: RSS {held['VmRSS']}-{after['VmRSS']} KiB, "
                f"{max(held['Threads'], after['Threads'])} threads; a scrape took {wall:.3f} s; "
                f"exporter CPU {c1 - c0:.2f} s in {t1 - t0:.2f} s; closed {closed}"
            )
            assert wall < 30  # bounded (the 1 s is the goal: see the print)
            assert max(held["Threads"], after["Threads"]) <= 3
            assert max(held["VmRSS"], after["VmRSS"]) < 2 * idle["VmRSS"]
            assert (c1 - c0) < 0.5 * (t1 - t0)  # no spinning on accept() or the clients
            assert closed["evicted"] + closed["refused"] >= 2040 - 256
            assert exp.poll() is None
    finally:
        for s in socks:
            s.close()
        _rmdirs(fs, made)


def test_export_past_the_descriptor_limit_exports_every_group(
    cg_parent: Parent, cg_path: str
) -> None:
    """Under a hard RLIMIT_NOFILE of 200 (the sampler keeping --max-connections + 64 back),
    every one of 301 groups is in the scrape; the exporter's own metrics say how many are
    held and how many read by open/read/close."""
    import resource

    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    made = [""]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    try:
        for i in range(300):
            os.mkdir(f"{fs}/g{i:03d}")
            made.append(f"g{i:03d}")
        r = subprocess.run(
            [sys.executable, "-m", "cgroup2", "export", "--once", "--root", cg_path,
             "--max-connections", "16"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": SRC},
            preexec_fn=limit,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        body = r.stdout
        assert sample_value(body, "cgroup2_exporter_groups") == 301
        assert body.count("cgroup_procs{") == 301
        held = sample_value(body, "cgroup2_exporter_groups_held")
        reopened = sample_value(body, "cgroup2_exporter_groups_reopened")
        print(f"\n301 groups under a limit of 200: {held:g} held, {reopened:g} reopened")
        assert held is not None and reopened is not None
        assert held + reopened == 301 and held > 0 and reopened > 0
        fds = sample_value(body, "cgroup2_exporter_open_fds")
        assert fds is not None and fds <= 200 - 16 - 64 + 1  # (and the inotify fd)
    finally:
        _rmdirs(fs, made)


def test_max_depth_and_max_groups_leave_out_and_count(cg_parent: Parent, cg_path: str) -> None:
    """A chain 40 levels deep and 20 flat groups: --max-depth (default 32) and
    --max-groups bound what is exported, and cgroup2_exporter_groups_left_out says how
    many subtrees were left out and why."""
    fs = cg_parent.mountpoint + cg_path
    os.mkdir(fs)
    chain = ["chain"]
    for _ in range(39):
        chain.append(chain[-1] + "/c")
    flat = [f"flat/f{i:02d}" for i in range(20)]
    made = ["", *chain, "flat", *flat]
    try:
        for n in made[1:]:
            os.mkdir(f"{fs}/{n}")

        def left(body: str, why: str) -> float | None:
            return sample_value(body, "cgroup2_exporter_groups_left_out", f'reason="{why}"')

        body = _once(cg_path)  # default --max-depth 32: the chain to level 32
        assert sample_value(body, "cgroup2_exporter_groups") == 1 + 32 + 21
        assert left(body, "max_depth") == 1 and left(body, "max_groups") == 0
        body = _once(cg_path, "--max-depth", "2")
        assert sample_value(body, "cgroup2_exporter_groups") == 1 + 2 + 21
        assert left(body, "max_depth") == 1
        body = _once(cg_path, "--max-depth", "1")
        assert sample_value(body, "cgroup2_exporter_groups") == 3
        assert left(body, "max_depth") == 1 + 20
        body = _once(cg_path, "--max-groups", "10")
        assert sample_value(body, "cgroup2_exporter_groups") == 10
        assert body.count("cgroup_procs{") == 10
        assert left(body, "max_groups") is not None and left(body, "max_groups") >= 1
        r = subprocess.run(
            [sys.executable, "-m", "cgroup2", "export", "--once", "--max-groups", "0"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC},
        )  # fmt: skip
        assert r.returncode == 2 and "--max-groups" in r.stderr and "Traceback" not in r.stderr
        for bad in ("x=(", "group=a", "9x=a"):
            r = subprocess.run(
                [sys.executable, "-m", "cgroup2", "export", "--once", "--label", bad],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "PYTHONPATH": SRC},
            )  # fmt: skip
            assert r.returncode == 2 and "invalid --label" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    finally:
        _rmdirs(fs, made)


def test_unlimited_hugetlb_is_inf_on_this_kernel(cg_parent: Parent, cg_path: str) -> None:
    """This kernel prints 9223372036854771712 (LONG_MAX rounded down to the page size) in
    an unlimited group's hugetlb.<size>.max: the exposition says +Inf, never the number."""
    fs = cg_parent.mountpoint + cg_path
    with open(cg_parent.fs_path + "/cgroup.controllers") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip("hugetlb is not enabled for this run's parent (the host's choice)")
    with open(cg_parent.fs_path + "/cgroup.subtree_control", "w") as f:
        f.write("+hugetlb")
    os.mkdir(fs)
    try:
        sizes = sorted(
            n[len("hugetlb.") : -len(".max")]
            for n in os.listdir(fs)
            if n.startswith("hugetlb.") and n.endswith(".max") and ".rsvd." not in n
        )
        assert sizes, os.listdir(fs)
        raw = {s: Path(f"{fs}/hugetlb.{s}.max").read_text().strip() for s in sizes}
        print(f"\nhugetlb.<size>.max as the kernel prints it: {raw}")
        body = _once(cg_path)
        for s in sizes:
            for fam in ("cgroup_hugetlb_limit_bytes", "cgroup_hugetlb_reserved_limit_bytes"):
                v = sample_value(body, fam, f'group="{cg_path}",pagesize="{s}"')
                assert v == float("inf"), (fam, s, v)
        assert "9223372036854771712" not in body
        r = subprocess.run(
            [sys.executable, "-m", "cgroup2", "exec", cg_path, "--", sys.executable, "-m",
             "cgroup2", "self"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "8388608" not in r.stdout, r.stdout
    finally:
        _rmdirs(fs, [""])


def _labels_of(body: str, family: str, group: str) -> dict[str, str]:
    """The labels of the sample of ``family`` whose group label is ``group``."""
    import re

    for line in body.split("\n"):
        if line.startswith(family + "{") and f'{{group="{group}"' in line:
            return dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', line.split("} ")[0]))
    raise AssertionError(f"no {family} sample of {group}")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fleet_labels_of_each_layout(cg_parent: Parent, cg_path: str, layout: str) -> None:
    """Groups made with the exact names of each manager's layout: the exporter labels
    the deepest with what the layout says (unit, container, pod and QoS, Slurm job), and
    a site's --label rule adds its own."""
    path, want = LAYOUTS[layout]
    fs = cg_parent.mountpoint + cg_path
    parts = path.split("/")
    made = [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]
    try:
        for n in made:
            os.mkdir(f"{fs}/{n}" if n else fs)
        body = _once(cg_path, "--label", r"site=^/(cgroup2-test)-")
        got = _labels_of(body, "cgroup_procs", f"{cg_path}/{path}")
        assert got == {"group": f"{cg_path}/{path}", **want, "site": "cgroup2-test"}
        top = _labels_of(body, "cgroup_procs", cg_path)
        assert top == {"group": cg_path, "site": "cgroup2-test"}
        plain = _once(cg_path, "--no-path-labels")
        assert _labels_of(plain, "cgroup_procs", f"{cg_path}/{path}") == {
            "group": f"{cg_path}/{path}"
        }
    finally:
        _rmdirs(fs, made)
