"""Helpers of the systemd tier: systemctl, an agent process, units to clean up."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)


def show(unit: str) -> dict[str, list[str]]:
    """``systemctl show UNIT``: every property, a list per key (some repeat)."""
    out: dict[str, list[str]] = {}
    for line in systemctl("show", unit).stdout.splitlines():
        k, _, v = line.partition("=")
        out.setdefault(k, []).append(v)
    return out


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


AGENT = r"""
import os, subprocess, sys
print("ready", flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "open":
        try:
            os.close(os.open(arg, os.O_RDONLY))
            print("ok", flush=True)
        except OSError as e:
            print("errno", e.errno, flush=True)
    elif cmd == "hog":
        code = "b = b'\\1' * " + arg + "; print('survived')"
        p = subprocess.run([sys.executable, "-c", code], capture_output=True)
        print("rc", p.returncode, flush=True)
    elif cmd == "readrate":  # DEVICE WARM SECONDS: direct reads, bytes/s after WARM s
        import mmap, time
        dev, warm, secs = arg.split()
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
        size = os.lseek(fd, 0, os.SEEK_END)
        buf = mmap.mmap(-1, 65536)
        t0 = time.monotonic()
        off = n = 0
        counting = None
        while True:
            now = time.monotonic()
            if counting is None and now - t0 >= float(warm):
                counting, n = now, 0
            if counting is not None and now - counting >= float(secs):
                break
            got = os.preadv(fd, [buf], off)
            n += got
            off = (off + got) % (size - 65536)
        os.close(fd)
        print("rate", round(n / (time.monotonic() - counting)), flush=True)
    elif cmd == "cgroup":
        with open("/proc/self/cgroup") as f:
            print(f.read().strip().split("::", 1)[1], flush=True)
"""


class Agent:
    """A process (not in any unit of ours yet) that does what it is told, to show what
    the kernel lets a process in a unit's group do."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", AGENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line(60) == "ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the agent did not answer")
        return self.proc.stdout.readline().strip()

    def ask(self, cmd: str, timeout: float = 120) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._line(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Units:
    """Names of units a test started; stopped and reset at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> str:
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        for name in reversed(self.names):
            systemctl("stop", name)
            systemctl("reset-failed", name)


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{time.monotonic_ns() % 100000}"
