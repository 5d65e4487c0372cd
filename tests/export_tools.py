"""Helpers of the exporter tests (host and vm tiers): ``cgroup2 export`` and a Prometheus
server started as child processes on free 127.0.0.1 ports and stopped by their pids,
scrapes, Prometheus HTTP API queries, and processes placed in groups."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
#: the Accept header Prometheus 2.x sends
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
SRC = str(Path(__file__).resolve().parent.parent / "src")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(p: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM to the child ``p`` (by its pid), SIGKILL after 10 s; reaped."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait()


@contextlib.contextmanager
def exporter(root: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``cgroup2 export --root ROOT --listen 127.0.0.1:0 ARGS``: (process, port), when it
    serves; stopped at the end."""
    env = {**os.environ, "PYTHONPATH": SRC}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cgroup2",
            "export",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            *args,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert p.stderr is not None
        said = []
        port = 0
        deadline = time.monotonic() + 120
        while not port and time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            said.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            port = int(m.group(1)) if m else 0
        assert port, f"cgroup2 export did not start: {''.join(said)}"
        yield p, port
    finally:
        stop(p)


def scrape(port: int, accept: str | None = None) -> tuple[float, str, str]:
    """GET /metrics: (wall seconds, content type, body)."""
    headers = {"Accept": accept} if accept else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read().decode()
        ctype = r.headers["Content-Type"]
    return time.perf_counter() - t, ctype, body


def sample_value(body: str, name: str, labels: str = "") -> float | None:
    """The value of the sample ``name{labels}`` (labels exactly as written) in ``body``."""
    key = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in body.split("\n"):
        if line.startswith(key):
            return float(line[len(key) :])
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (/proc/PID/stat utime, stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Prometheus:
    """A Prometheus server scraping ``targets`` every second, on a free 127.0.0.1 port,
    its storage in ``tmp``; started by :meth:`start`, stopped by pid in :meth:`stop`."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.config = tmp / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: cgroup2\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.log = tmp / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus ended: {self.log.read_text()[-2000:]}"
            ready = f"http://127.0.0.1:{self.port}/-/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in 60 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def query(self, promql: str) -> list[dict[str, object]]:
        """The instant vector of ``promql`` (GET /api/v1/query)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=10) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        result: list[dict[str, object]] = answer["data"]["result"]
        return result

    def value(self, promql: str, timeout: float = 60.0) -> float:
        """The single value of ``promql`` once Prometheus has one (polled until it does)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                assert len(result) == 1, result
                value = result[0]["value"]
                assert isinstance(value, list)
                return float(value[1])
            if time.monotonic() > deadline:
                raise AssertionError(f"no series for {promql} in {timeout:g} s")
            time.sleep(0.25)


def run_in_group(fs_path: str, code: str) -> subprocess.Popen[bytes]:
    """``python -c CODE`` started inside the group at ``fs_path`` (it joins the group
    before executing, so everything it runs is charged there)."""

    def join() -> None:
        with open(os.path.join(fs_path, "cgroup.procs"), "w") as f:
            f.write("0")

    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=join)


# -- the layouts the exporter's path labels know (tests/unit/test_pathlabels.py, host) ------

CID = "4f1c5d2b9a8e7f60112233445566778899aabbccddeeff00112233445566aabb"
UID = "0f5e3a52-6f0c-4a55-9c3e-2b8d1c7e9f10"
UID_ = UID.replace("-", "_")
#: layout -> (group path below a parent, the labels expected on its deepest group)
LAYOUTS: dict[str, tuple[str, dict[str, str]]] = {
    "systemd-service": ("system.slice/nginx.service", {"unit": "nginx.service"}),
    "systemd-session": (
        "user.slice/user-1000.slice/session-3.scope",
        {"unit": "session-3.scope"},
    ),
    "docker-scope": (
        f"system.slice/docker-{CID}.scope",
        {"unit": f"docker-{CID}.scope", "container_id": CID},
    ),
    "docker-cgroupfs": (f"docker/{CID}", {"container_id": CID}),
    "libpod-scope": (
        f"machine.slice/libpod-{CID}.scope",
        {"unit": f"libpod-{CID}.scope", "container_id": CID},
    ),
    "k8s-burstable-containerd": (
        f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
        f"cri-containerd-{CID}.scope",
        {
            "unit": f"cri-containerd-{CID}.scope",
            "container_id": CID,
            "pod_uid": UID,
            "qos": "burstable",
        },
    ),
    "k8s-besteffort-crio": (
        f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/"
        f"crio-{CID}.scope",
        {"unit": f"crio-{CID}.scope", "container_id": CID, "pod_uid": UID, "qos": "besteffort"},
    ),
    "k8s-guaranteed-systemd": (
        f"kubepods.slice/kubepods-pod{UID_}.slice",
        {"unit": f"kubepods-pod{UID_}.slice", "pod_uid": UID, "qos": "guaranteed"},
    ),
    "k8s-qos-slice": (
        "kubepods.slice/kubepods-besteffort.slice",
        {"unit": "kubepods-besteffort.slice", "qos": "besteffort"},
    ),
    "k8s-cgroupfs-burstable": (
        f"kubepods/burstable/pod{UID}/{CID}",
        {"pod_uid": UID, "qos": "burstable"},
    ),
    "k8s-cgroupfs-guaranteed": (f"kubepods/pod{UID}", {"pod_uid": UID, "qos": "guaranteed"}),
    "slurm-v1-layout": (
        "slurm/uid_1000/job_42/step_0",
        {"slurm_uid": "1000", "slurm_job": "42", "slurm_step": "0"},
    ),
    "slurm-batch": (
        "slurm/uid_1000/job_42/step_batch",
        {"slurm_uid": "1000", "slurm_job": "42", "slurm_step": "batch"},
    ),
    "slurmstepd-scope": (
        "system.slice/slurmstepd.scope/job_43/step_extern",
        {"unit": "slurmstepd.scope", "slurm_job": "43", "slurm_step": "extern"},
    ),
    "no-layout": ("jobs/job_7/step_1", {}),
}
