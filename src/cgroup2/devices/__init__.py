"""Device access control for cgroup v2: an eBPF program of type CGROUP_DEVICE per group.

:class:`DeviceState` applies :class:`DeviceRule`\\ s as cgroup v1 does; :func:`device_filter`
compiles them into a :class:`Program` (one block per exception of that state);
:class:`ProgramEmulator` / :func:`emulate` run a program without a kernel;
:func:`load_attach_device_filter` and :func:`apply_device_rules` load it with ``bpf(2)``
and attach it to a group's directory, replacing this library's previous program there.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from .rules import DeviceRule

if TYPE_CHECKING:
    from .asm import Assembler, Instruction, Program
    from .bpf import (
        PROG_NAME,
        AttachedFilter,
        BPFError,
        ProgInfo,
        apply_device_rules,
        attached_programs,
        detach_device_filters,
        load_attach_device_filter,
        load_program,
        program_instructions,
    )
    from .emulator import EmulatorError, ProgramEmulator, emulate
    from .filter import LICENSE, device_filter
    from .state import DeviceState

# the assembler, the bpf(2) wrappers and the emulator are imported on first use: a
# program that only states rules (Resources(devices=...)) does not pay for them
_LAZY = {
    "Assembler": "asm",
    "Instruction": "asm",
    "Program": "asm",
    "PROG_NAME": "bpf",
    "AttachedFilter": "bpf",
    "BPFError": "bpf",
    "ProgInfo": "bpf",
    "apply_device_rules": "bpf",
    "attached_programs": "bpf",
    "detach_device_filters": "bpf",
    "load_attach_device_filter": "bpf",
    "load_program": "bpf",
    "program_instructions": "bpf",
    "EmulatorError": "emulator",
    "ProgramEmulator": "emulator",
    "emulate": "emulator",
    "LICENSE": "filter",
    "device_filter": "filter",
    "DeviceState": "state",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "LICENSE",
    "PROG_NAME",
    "Assembler",
    "AttachedFilter",
    "BPFError",
    "DeviceRule",
    "DeviceState",
    "EmulatorError",
    "Instruction",
    "ProgInfo",
    "Program",
    "ProgramEmulator",
    "apply_device_rules",
    "attached_programs",
    "detach_device_filters",
    "device_filter",
    "emulate",
    "load_attach_device_filter",
    "load_program",
    "program_instructions",
]
