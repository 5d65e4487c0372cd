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
from collections.abc import Callable

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


def raw_pairs(paths: list[str]) -> None:
    for p in paths:
        os.mkdir(p)
        os.rmdir(p)


def raw_limited(paths: list[str]) -> None:
    for p in paths:
        os.mkdir(p)
        with open(p + "/hugetlb.2MB.max", "w") as f:
            f.write("2097152")
        os.rmdir(p)


def lib_pairs(groups: list[str], mnt: str, res: Resources | None) -> None:
    for g in groups:
        Manager.create(g, res, mountpoint=mnt).delete()


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
        # seconds per pair, by kind: wall time and CPU time (user+system of the process:
        # what a loaded machine stretches least)
        times: dict[str, list[float]] = {}

        def timed(kind: str, loop: Callable[..., None], *loop_args: object) -> None:
            c, t = time.process_time(), time.perf_counter()
            loop(*loop_args)
            times.setdefault(kind, []).append((time.perf_counter() - t) / args.n)
            times.setdefault(kind + " cpu", []).append((time.process_time() - c) / args.n)

        with open(f"{mnt}{parent}/cgroup.controllers") as f:  # what the root enables for us
            hugetlb = "hugetlb" in f.read().split()
        if hugetlb:  # the informational case with one limit needs the controller
            with open(f"{mnt}{parent}/cgroup.subtree_control", "w") as f:
                f.write("+hugetlb")
        res = Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)])
        go_prog = build_go(tmp)
        for r in range(args.rounds):
            if go_prog is not None:  # the same rounds, interleaved: the same machine load
                out = subprocess.run([go_prog, mnt, parent, str(args.n), str(r)],
                                     capture_output=True, text=True, check=True).stdout
                for k, v in json.loads(out).items():
                    times.setdefault(k.replace("_cpu", " cpu"), []).append(v)
            paths = [f"{mnt}{parent}/raw-{r}-{i}" for i in range(args.n)]
            groups = [f"{parent}/lib-{r}-{i}" for i in range(args.n)]

            timed("raw", raw_pairs, paths)
            timed("lib", lib_pairs, groups, mnt, None)
            if hugetlb:
                timed("raw limited", raw_limited, paths)
                timed("lib limited", lib_pairs, groups, mnt, res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for name in os.listdir(mnt + parent):
            if os.path.isdir(f"{mnt}{parent}/{name}"):
                os.rmdir(f"{mnt}{parent}/{name}")
        os.rmdir(mnt + parent)
    us = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    print(f"median of {args.rounds} rounds of {args.n} pairs, us per pair (wall / CPU)")
    print(f"raw mkdir+rmdir (Python):           {us['raw']:8.1f} / {us['raw cpu']:8.1f}")
    print(f"Manager.create+delete:              {us['lib']:8.1f} / {us['lib cpu']:8.1f}")
    ratio = us["lib"] / us["raw"]
    ratio_cpu = us["lib cpu"] / us["raw cpu"]
    ok = ratio <= 1.5 or ratio_cpu <= 1.5
    print(f"ratio to raw: wall {ratio:.2f}x, CPU {ratio_cpu:.2f}x (target <= 1.5x) "
          f"{'ok' if ok else 'OVER TARGET'}")
    if "go" in us:
        print(f"containerd/cgroups (Go) NewManager+Delete: {us['go']:8.1f} / {us['go cpu']:8.1f}"
              f"  (its raw pair {us['go_raw']:.1f} / {us['go_raw cpu']:.1f})")
        go_ratio = us["lib"] / us["go"]
        go_cpu = us["lib cpu"] / us["go cpu"]
        go_ok = go_cpu <= 1.0
        ok = ok and go_ok
        print(f"ratio to Go: wall {go_ratio:.2f}x, CPU {go_cpu:.2f}x (target <= 1.0x in CPU "
              f"time) {'ok' if go_ok else 'OVER TARGET'}")
    if hugetlb:
        print(f"with one limit (hugetlb.2MB.max), raw: {us['raw limited']:8.1f} / "
              f"{us['raw limited cpu']:8.1f}, Manager: {us['lib limited']:8.1f} / "
              f"{us['lib limited cpu']:8.1f} (informational)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
