"""Benchmark: device_filter() of 1,000 rules, and loading/attaching the program.

Target (DESIGN.md): compiling 1,000 rules takes milliseconds and the kernel's verifier
accepts the program. Prints the median of each step: compile (rules -> Program), encode
(Program -> bytes), the emulator (one decision), BPF_PROG_LOAD (the kernel's verifier and
JIT), and apply_device_rules (compile + load + attach-replacing) on a group, with the
verifier's own statistics and the ratio of our Python time to the kernel's load time.
Load and attach need root (and, for attach, a writable cgroup2 mount: it works below its
own parent group ``cgroup2-bench-dev-<pid>``, removed at the end).

    python benchmarks/device_filter.py [--rules 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable

from cgroup2 import DeviceRule, default_mountpoint
from cgroup2._fs import Dir
from cgroup2.devices import (
    ProgramEmulator,
    apply_device_rules,
    attached_programs,
    device_filter,
    load_program,
)
from cgroup2.devices.bpf import verifier_stats


def random_rules(n: int, seed: int = 1) -> list[DeviceRule]:
    """``n`` allow rules from "deny all" (rules for one device merge, as in cgroup v1: with
    random numbers nearly every rule is its own exception and block), mixed access, none
    a catch-all."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        t = rng.choice("abc")
        major = rng.choice([None, rng.randrange(512)])
        minor = rng.choice([None, rng.randrange(1 << 20)])
        if major is None and minor is None:  # b/c *:* rules would merge into a catch-all
            continue
        access = rng.choice(["r", "w", "m", "rw", "rm", "wm", "rwm"])
        out.append(DeviceRule(True, t, major, minor, access))
    return out


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    rules = random_rules(args.rules)
    program, license = device_filter(rules)
    compile_ms = median_ms(lambda: device_filter(rules), args.rounds)
    encode_ms = median_ms(program.encode, args.rounds)
    emu = ProgramEmulator(program)
    rng = random.Random(2)
    devices = [
        (rng.choice("bc"), rng.randrange(4096), rng.randrange(1 << 20), rng.choice(["r", "rw"]))
        for _ in range(200)
    ]
    emulate_ms = median_ms(lambda: [emu.allows(*dev) for dev in devices], args.rounds) / 200
    print(f"rules: {len(rules)}  instructions: {len(program)}  bytes: {len(program) * 8}")
    print(f"device_filter (compile):      {compile_ms:8.2f} ms")
    print(f"Program.encode:               {encode_ms:8.2f} ms")
    print(f"emulator, one decision:       {emulate_ms:8.2f} ms (mean of 200 random devices)")

    if os.geteuid() != 0:
        print("not root: BPF_PROG_LOAD and attach skipped")
        return 0

    def load() -> None:
        os.close(load_program(program, license))

    load_ms = median_ms(load, args.rounds)
    stats = verifier_stats(program, license).splitlines()
    print(f"BPF_PROG_LOAD (verifier+JIT): {load_ms:8.2f} ms")
    print(f"verifier: {stats[-1] if stats else '?'}")
    print(f"ratio compile / kernel load:  {compile_ms / load_ms:8.3f}")

    mnt = default_mountpoint()
    name = f"cgroup2-bench-dev-{os.getpid()}"
    with Dir.open(mnt) as root:
        root.mkdir(name)
        try:
            with root.child(name) as d:
                apply_ms = median_ms(lambda: apply_device_rules(d, rules), args.rounds)
                small = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")]
                small_ms = median_ms(lambda: apply_device_rules(d, small), args.rounds * 3)
                n = len(attached_programs(d.fd))
                print(f"apply_device_rules, {len(rules)} rules: {apply_ms:8.2f} ms "
                      f"(compile + load + replace)")
                print(f"apply_device_rules, 2 rules:    {small_ms:8.2f} ms")
                print(f"programs attached after {args.rounds * 4} applies: {n}")
        finally:
            root.rmdir(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
