"""Benchmark: Manager.create + Manager.delete of a group vs the raw mkdir/rmdir pair.

Target (DESIGN.md): <= 1.5x the raw pair, and <= 1.0x containerd/cgroups v2 (Go) doing the
same (``NewManager`` + ``Delete``), measured in the same rounds when a Go toolchain and the
library's source are installed (Debian: ``golang-go`` and
``golang-github-containerd-cgroups-dev``; the program is ``benchmarks/go/create_delete.go``,
built in GOPATH mode against the packaged source). Runs as root on a writable cgroup2
mount, below its own parent group ``cgroup2-bench-<pid>`` which it removes at the end.

    python benchmarks/create_delete.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from cgroup2 import HugeTlbEntry, Manager, Resources, default_mountpoint


_GOPATH = "/usr/share/gocode"
_GO_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go", "create_delete.go")


def build_go(tmp: str) -> str | None:
    """The Go program built in ``tmp``, or None (and why, printed) when it cannot be."""
    go = shutil.which("go")
    if go is None or not os.path.isdir(f"{_GOPATH}/src/github.com/containerd/cgroups/v2"):
        print("containerd/cgroups (Go): not measured (install golang-go and "
              "golang-github-containerd-cgroups-dev)")
        return None
    out = os.path.join(tmp, "create_delete")
    env = dict(os.environ, GO111MODULE="off", GOPATH=_GOPATH, GOCACHE=os.path.join(tmp, "cache"))
    r = subprocess.run([go, "build", "-o", out, _GO_SRC], env=env, capture_output=True,
                       text=True, cwd=tmp)
    if r.returncode != 0:
        print(f"containerd/cgroups (Go): build failed: {r.stderr.strip()[:300]}")
        return None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7, help="rounds of each kind (median taken)")
    ap.add_argument("--n", type=int, default=300, help="groups per round")
    args = ap.parse_args()

    mnt = default_mountpoint()
    parent = f"/cgroup2-bench-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="cgroup2-bench-go-")
    os.mkdir(mnt + parent)
    try:
        raw: list[float] = []
        lib: list[float] = []
        raw_w: list[float] = []
        lib_w: list[float] = []
        with open(f"{mnt}{parent}/cgroup.controllers") as f:  # what the root enables for us
            hugetlb = "hugetlb" in f.read().split()
        if hugetlb:  # the informational case with one limit needs the controller
            with open(f"{mnt}{parent}/cgroup.subtree_control", "w") as f:
                f.write("+hugetlb")
        res = Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)])
        go_prog = build_go(tmp)
        go: list[float] = []
        go_raw: list[float] = []
        for r in range(args.rounds):
            if go_prog is not None:  # the same rounds, interleaved: the same machine load
                out = subprocess.run([go_prog, mnt, parent, str(args.n), str(r)],
                                     capture_output=True, text=True, check=True).stdout
                got = json.loads(out)
                go.append(got["go"])
                go_raw.append(got["go_raw"])
            paths = [f"{mnt}{parent}/raw-{r}-{i}" for i in range(args.n)]
            t = time.perf_counter()
            for p in paths:
                os.mkdir(p)
                os.rmdir(p)
            raw.append((time.perf_counter() - t) / args.n)

            groups = [f"{parent}/lib-{r}-{i}" for i in range(args.n)]
            t = time.perf_counter()
            for g in groups:
                Manager.create(g, mountpoint=mnt).delete()
            lib.append((time.perf_counter() - t) / args.n)

            if hugetlb:
                t = time.perf_counter()
                for p in paths:
                    os.mkdir(p)
                    with open(p + "/hugetlb.2MB.max", "w") as f:
                        f.write("2097152")
                    os.rmdir(p)
                raw_w.append((time.perf_counter() - t) / args.n)
                t = time.perf_counter()
                for g in groups:
                    Manager.create(g, res, mountpoint=mnt).delete()
                lib_w.append((time.perf_counter() - t) / args.n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for name in os.listdir(mnt + parent):
            if os.path.isdir(f"{mnt}{parent}/{name}"):
                os.rmdir(f"{mnt}{parent}/{name}")
        os.rmdir(mnt + parent)
    raw_us = statistics.median(raw) * 1e6
    lib_us = statistics.median(lib) * 1e6
    ratio = lib_us / raw_us
    print(f"raw mkdir+rmdir:              {raw_us:8.1f} us/group (median of {args.rounds})")
    print(f"Manager.create+delete:        {lib_us:8.1f} us/group")
    print(f"ratio: {ratio:.2f}x (target <= 1.5x) {'ok' if ratio <= 1.5 else 'OVER TARGET'}")
    go_ok = True
    if go:
        go_us = statistics.median(go) * 1e6
        go_raw_us = statistics.median(go_raw) * 1e6
        go_ratio = lib_us / go_us
        go_ok = go_ratio <= 1.0
        print(f"containerd/cgroups NewManager+Delete (Go): {go_us:8.1f} us/group "
              f"(its raw pair {go_raw_us:.1f} us)")
        print(f"ratio to Go: {go_ratio:.2f}x (target <= 1.0x) {'ok' if go_ok else 'OVER TARGET'}")
    if hugetlb:
        rw = statistics.median(raw_w) * 1e6
        lw = statistics.median(lib_w) * 1e6
        print(f"with one limit (hugetlb.2MB.max), raw: {rw:8.1f} us, Manager: {lw:8.1f} us, "
              f"ratio {lw / rw:.2f}x (informational)")
    return 0 if ratio <= 1.5 and go_ok else 1


if __name__ == "__main__":
    sys.exit(main())
