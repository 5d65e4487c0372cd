"""Device access control for cgroup v2: an eBPF program of type CGROUP_DEVICE per group.

:class:`DeviceState` applies :class:`DeviceRule`\\ s as cgroup v1 does; :func:`device_filter`
compiles them into a :class:`Program` (one block per exception of that state);
:class:`ProgramEmulator` / :func:`emulate` run a program without a kernel;
:func:`load_attach_device_filter` and :func:`apply_device_rules` load it with ``bpf(2)``
and attach it to a group's directory, replacing this library's previous program there.
"""

from .._lazy import lazy_names
from .rules import DeviceRule as DeviceRule

# the assembler, the bpf(2) wrappers and the emulator are imported on first use: a
# program that only states rules (Resources(devices=...)) does not pay for them. _LAZY
# drives the loading, __all__ and dir(); mypy reads the imports below (the same names)
_LAZY = {
    "asm": ("Assembler", "Instruction", "Program"),
    "bpf": (
        "PROG_NAME", "AttachedFilter", "BPFError", "ProgInfo", "apply_device_rules",
        "attached_programs", "detach_device_filters", "load_attach_device_filter",
        "load_program", "program_instructions",
    ),
    "emulator": ("EmulatorError", "ProgramEmulator", "emulate"),
    "filter": ("LICENSE", "device_filter"),
    "state": ("DeviceState",),
}

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy reads it so)
if TYPE_CHECKING:
    from .asm import Assembler as Assembler
    from .asm import Instruction as Instruction
    from .asm import Program as Program
    from .bpf import PROG_NAME as PROG_NAME
    from .bpf import AttachedFilter as AttachedFilter
    from .bpf import BPFError as BPFError
    from .bpf import ProgInfo as ProgInfo
    from .bpf import apply_device_rules as apply_device_rules
    from .bpf import attached_programs as attached_programs
    from .bpf import detach_device_filters as detach_device_filters
    from .bpf import load_attach_device_filter as load_attach_device_filter
    from .bpf import load_program as load_program
    from .bpf import program_instructions as program_instructions
    from .emulator import EmulatorError as EmulatorError
    from .emulator import ProgramEmulator as ProgramEmulator
    from .emulator import emulate as emulate
    from .filter import LICENSE as LICENSE
    from .filter import device_filter as device_filter
    from .state import DeviceState as DeviceState
else:
    __getattr__, __dir__, _names = lazy_names(__name__, _LAZY, globals())
    __all__ = sorted(["DeviceRule", *_names])
    del _names, lazy_names
