"""Helpers of the pressure (PSI trigger) tests of the host and vm tiers: a caller without
root and without capabilities (uid 65534, setuid in a child), in a group it owns."""

from __future__ import annotations

import os
import subprocess

CHILD = r"""
import errno, os, sys
sys.path.insert(0, sys.argv[1])
from cgroup2 import PressureTrigger, PressureTriggerError, EventWatcher
from cgroup2.pressure import has_cap_sys_resource, kernel_version
g = sys.argv[2]
out = {"uid": os.getuid(), "cap": has_cap_sys_resource(), "kernel": list(kernel_version())}
def raw(line):
    try:
        fd = os.open(g + "/cpu.pressure", os.O_RDWR | os.O_NONBLOCK)
    except OSError as e:
        return "open:" + errno.errorcode[e.errno]
    try:
        os.write(fd, line)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)
out["raw_1s"] = raw(b"some 150000 1000000")
out["raw_2s"] = raw(b"some 150000 2000000")
out["raw_full_4s"] = raw(b"full 150000 4000000")
with EventWatcher() as w:
    try:
        w.add_pressure(g, PressureTrigger("cpu", "some", 0.15, 1.0))
        out["lib_1s"] = "ok"
    except PressureTriggerError as e:
        out["lib_1s"] = str(e)
    try:
        w.add_pressure(g, PressureTrigger("cpu", "some", 0.15, 2.0))
        out["lib_2s"] = "ok"
    except PressureTriggerError as e:
        out["lib_2s"] = str(e)
print(repr(out))
"""


def run_unprivileged(group: str, src: str, uid: int = 65534) -> dict[str, object]:
    """Run CHILD as ``uid`` (no capabilities) against ``group``, chowned to it (the
    directory, cgroup.procs and the pressure files); the result it printed."""
    import ast

    for name in ("", "cgroup.procs", "cpu.pressure", "memory.pressure", "io.pressure"):
        os.chown(os.path.join(group, name) if name else group, uid, uid)

    def drop() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    r = subprocess.run(
        ["/usr/bin/python3", "-c", CHILD, os.path.abspath(src), group],
        preexec_fn=drop,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    out = ast.literal_eval(r.stdout.strip().splitlines()[-1])
    assert isinstance(out, dict)
    return out
