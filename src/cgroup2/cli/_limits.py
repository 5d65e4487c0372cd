"""The limit options shared by ``run``, ``create`` and ``set``, and the Resources they make.

The named flags (``--memory-max 512M``, ``--cpu-max 50%``...) are parsed into the library's
validated types; ``-p/--property FILE=VALUE`` gives the exact text for any limit file of
the group and goes to ``Resources.unified`` (so the library's refusals apply: no
``cgroup.procs``, no ``/``...). ``-p`` files are written after the flags' files.
"""

from __future__ import annotations

import os
import stat
import sys

from .._fs import Dir
from ..errors import CgroupError
from ._text import printable
from ._units import (
    Failure,
    UsageError,
    parse_cpu_max,
    parse_hugetlb,
    parse_int,
    parse_io_max,
    parse_property,
    parse_rule,
    parse_size,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where used: the flags are added on every start of the command
    import argparse
    from collections.abc import Callable, Sequence

    from ..resources import Resources

__all__ = [
    "OPTION_CONTROLLER",
    "Failure",
    "add_limit_flags",
    "build_resources",
    "check_controllers",
    "check_writable",
]

#: The controller each option needs, to name it when the mount lacks the controller.
OPTION_CONTROLLER = {
    "--memory-max": "memory",
    "--memory-high": "memory",
    "--memory-swap-max": "memory",
    "--cpu-max": "cpu",
    "--cpu-weight": "cpu",
    "--cpus": "cpuset",
    "--pids-max": "pids",
    "--io-max": "io",
    "--hugetlb": "hugetlb",
}


def _typed(parse: Callable[[str, str], object], option: str) -> Callable[[str], object]:
    """An argparse ``type`` that names ``option`` in its error."""

    def convert(text: str) -> object:
        return parse(text, option)

    convert.__name__ = option.lstrip("-").replace("-", "_")
    return convert


def _pids_max(text: str) -> int | str:
    if text == "max":
        return "max"
    if text.isdigit():
        return int(text)
    raise UsageError(f"invalid --pids-max {text!r}: a number of tasks or 'max'")


def add_limit_flags(p: argparse.ArgumentParser) -> None:
    """The limit options, as ``run``, ``create`` and ``set`` take them."""
    g = p.add_argument_group("limits")
    g.add_argument("--memory-max", metavar="SIZE", help="memory.max, e.g. 512M (1024-based)")
    g.add_argument("--memory-high", metavar="SIZE", help="memory.high (throttle above it)")
    g.add_argument("--memory-swap-max", metavar="SIZE", help="memory.swap.max (0: no swap)")
    g.add_argument("--cpu-max", metavar="CPU", help="cpu.max: 50%%, 150%%, QUOTA/PERIOD, max")
    g.add_argument(
        "--cpu-weight",
        metavar="N",
        type=_typed(lambda t, o: parse_int(t, o), "--cpu-weight"),
        help="cpu.weight, 1..10000",
    )
    g.add_argument("--pids-max", metavar="N", type=_pids_max, help="pids.max: tasks, or max")
    g.add_argument("--cpus", metavar="LIST", help="cpuset.cpus, e.g. 0-1")
    g.add_argument(
        "--io-max",
        metavar="DEV:KEY=V[,..]",
        type=parse_io_max,
        action="append",
        help="io.max, DEV is MAJ:MIN or /dev/X; keys rbps wbps riops wiops (repeatable)",
    )
    g.add_argument(
        "--hugetlb",
        metavar="SIZE=LIMIT",
        type=parse_hugetlb,
        action="append",
        help="hugetlb.<SIZE>.max, e.g. 2MB=64M or 1GB=max (repeatable)",
    )
    g.add_argument(
        "--device",
        metavar="RULE",
        type=parse_rule,
        action="append",
        help="device rule 'allow|deny [a|b|c] [MAJ:MIN] [rwm]', applied in order as cgroup "
        "v1 applies them ('deny a' first for an allow list; rules for one device add up) "
        "(repeatable)",
    )
    g.add_argument(
        "-p",
        "--property",
        metavar="FILE=VALUE",
        type=parse_property,
        action="append",
        help="write VALUE to the group's limit file FILE, e.g. -p memory.low=64M or "
        "-p 'cpu.max=20000 100000' (repeatable; written after the options above)",
    )


#: The options of add_limit_flags that set a limit (their Namespace names).
_LIMIT_DESTS = (
    "memory_max", "memory_high", "memory_swap_max", "cpu_max", "cpu_weight", "cpus",
    "pids_max", "io_max", "hugetlb", "device", "property",
)


def limits_given(args: argparse.Namespace) -> bool:
    """Whether any limit option was given (without making a Resources)."""
    return any(getattr(args, name, None) not in (None, [], ()) for name in _LIMIT_DESTS)


def build_resources(args: argparse.Namespace) -> tuple[Resources, list[str]]:
    """The limits of the options, and the options that were given (for error messages;
    a ``-p`` file is given as ``-p FILE``)."""
    # each controller's module where its options were given (start-up time)
    from ..resources import Resources

    given: list[str] = []
    memory = cpu = pids = io = None
    hugetlb = devices = unified = None
    try:
        sizes = {
            opt: parse_size(text, opt)
            for opt, text in (
                ("--memory-max", args.memory_max),
                ("--memory-high", args.memory_high),
                ("--memory-swap-max", args.memory_swap_max),
            )
            if text is not None
        }
        if sizes:
            from ..controllers.memory import Memory

            memory = Memory(
                max=sizes.get("--memory-max"),
                high=sizes.get("--memory-high"),
                swap=sizes.get("--memory-swap-max"),
            )
            given += list(sizes)
        if args.cpu_max is not None or args.cpu_weight is not None or args.cpus is not None:
            from ..controllers.cpu import CPU

            cpu = CPU(
                max=None if args.cpu_max is None else parse_cpu_max(args.cpu_max),
                weight=args.cpu_weight,
                cpus=args.cpus,
            )
            given += [
                o
                for o, v in (
                    ("--cpu-max", args.cpu_max),
                    ("--cpu-weight", args.cpu_weight),
                    ("--cpus", args.cpus),
                )
                if v is not None
            ]
        if args.pids_max is not None:
            from ..controllers.pids import Pids

            pids = Pids(max=args.pids_max)
            given.append("--pids-max")
        if args.io_max:
            from ..controllers.io import IO, Entry

            entries: list[Entry] = [e for spec in args.io_max for e in spec]
            io = IO(max=tuple(entries))
            given.append("--io-max")
        if args.hugetlb:
            from ..controllers.hugetlb import HugeTlb, HugeTlbEntry

            hugetlb = HugeTlb(HugeTlbEntry(size, limit) for size, limit in args.hugetlb)
            given.append("--hugetlb")
        if args.device:
            devices = list(args.device)
        if args.property:
            unified = dict(args.property)  # the last -p of a file counts
            given += [f"-p {k}" for k in unified]
        return (
            Resources(
                cpu=cpu,
                memory=memory,
                pids=pids,
                io=io,
                hugetlb=hugetlb,
                devices=devices,
                unified=unified,
            ),
            given,
        )
    except CgroupError as e:
        raise UsageError(str(e).removeprefix("cgroups: ")) from None


def _controller(option: str) -> str | None:
    if option.startswith("-p "):
        from ..resources import CONTROLLERS

        prefix = option[3:].split(".", 1)[0]
        return prefix if prefix in CONTROLLERS else None
    return OPTION_CONTROLLER.get(option)


def check_controllers(mountpoint: str, given: Sequence[str]) -> None:
    """Refuse options whose controller the cgroup2 mount does not offer: every one at
    once, in the order of the command line, each controller with where it is instead
    (a cgroup v1 hierarchy on a hybrid host) and how to move it."""
    with Dir.open(mountpoint, mountpoint) as d:
        have = d.read("cgroup.controllers").decode().split()
    words = sys.argv[1:]

    def position(opt: str) -> int:
        first = opt.split(" ", 1)[0] if not opt.startswith("-p ") else opt[3:]
        for i, w in enumerate(words):
            if w == first or w.startswith(first + "="):
                return i
        return len(words)

    missing = [(opt, c) for opt in given if (c := _controller(opt)) is not None
               and c not in have]
    if not missing:
        return
    from .._v1 import unavailable_message

    missing.sort(key=lambda m: position(m[0]))
    controllers = list(dict.fromkeys(c for _, c in missing))
    needs = ", ".join(f"{printable(opt)} needs {c}" for opt, c in missing)
    raise Failure(f"{needs}: {printable(unavailable_message(controllers, mountpoint, have))}")


def check_writable(d: Dir, resources: Resources) -> None:
    """Refuse a ``-p`` file that the group ``d`` has read-only (a statistic such as
    ``memory.current``: the kernel would answer EINVAL, which does not say why). A file
    ``d`` lacks is left to the library's check."""
    for name in resources.unified or ():
        try:
            st = os.stat(name, dir_fd=d.fd, follow_symlinks=False)
        except OSError:
            continue
        if not st.st_mode & stat.S_IWUSR:
            raise Failure(
                f"-p {printable(name)}: the file is read-only (a statistic or state, not a "
                f"limit); nothing was changed"
            )
