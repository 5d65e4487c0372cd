"""Benchmark: Manager.create + Manager.delete of a group vs the raw mkdir/rmdir pair.

Target (DESIGN.md): <= 1.5x. Runs as root on a writable cgroup2 mount, below its own
parent group ``cgroup2-bench-<pid>`` which it removes at the end.

    python benchmarks/create_delete.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from cgroup2 import HugeTlbEntry, Manager, Resources, default_mountpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7, help="rounds of each kind (median taken)")
    ap.add_argument("--n", type=int, default=300, help="groups per round")
    args = ap.parse_args()

    mnt = default_mountpoint()
    parent = f"/cgroup2-bench-{os.getpid()}"
    os.mkdir(mnt + parent)
    try:
        raw: list[float] = []
        lib: list[float] = []
        raw_w: list[float] = []
        lib_w: list[float] = []
        with open(f"{mnt}/cgroup.controllers") as f:
            hugetlb = "hugetlb" in f.read().split()
        if hugetlb:  # the informational case with one limit needs the controller
            with open(f"{mnt}{parent}/cgroup.subtree_control", "w") as f:
                f.write("+hugetlb")
        res = Resources(hugetlb=[HugeTlbEntry("2MB", 1 << 21)])
        for r in range(args.rounds):
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
    if hugetlb:
        rw = statistics.median(raw_w) * 1e6
        lw = statistics.median(lib_w) * 1e6
        print(f"with one limit (hugetlb.2MB.max), raw: {rw:8.1f} us, Manager: {lw:8.1f} us, "
              f"ratio {lw / rw:.2f}x (informational)")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
