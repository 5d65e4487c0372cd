"""cgroup2: manage Linux cgroup v2 (the unified hierarchy) from Python.

The public API; see the project's API table for the names of the reference
(containerd/cgroups v2) that each one stands for.
"""

from .controllers.cpu import CPU, CPUMax
from .controllers.hugetlb import HugeTlb, HugeTlbEntry
from .controllers.io import BFQ, IO, Entry, IOType
from .controllers.memory import Memory
from .controllers.pids import Pids
from .controllers.rdma import RDMA, RDMAEntry
from .devices import (
    BPFError,
    DeviceRule,
    Program,
    ProgramEmulator,
    device_filter,
    emulate,
    load_attach_device_filter,
)
from .errors import (
    CgroupDeletedError,
    CgroupError,
    CPUNotSupportedError,
    FreezerNotSupportedError,
    InvalidFormatError,
    InvalidGroupPathError,
    InvalidPidError,
    KernelError,
    MemoryNotSupportedError,
    MountPointNotExistError,
    NoCgroupMountDestinationError,
    PidsNotSupportedError,
    ignore_not_exist,
)
from .events import (
    CgroupEvents,
    CgroupEventStream,
    Event,
    EventStream,
    EventWatcher,
    Notice,
    NoticeKind,
    memory_event_fd,
)
from .manager import ControllerToggle, Manager, State
from .oci import OCIConversion, OCISpecError, OCIWarning, convert_resources, to_resources
from .paths import (
    Mode,
    default_mountpoint,
    mode,
    nested_group_path,
    pid_group_path,
    verify_group_path,
)
from .resources import Resources, Value

__all__ = [
    "BFQ",
    "CPU",
    "IO",
    "RDMA",
    "BPFError",
    "CPUMax",
    "CPUNotSupportedError",
    "CgroupDeletedError",
    "CgroupError",
    "CgroupEventStream",
    "CgroupEvents",
    "ControllerToggle",
    "DeviceRule",
    "Entry",
    "Event",
    "EventStream",
    "EventWatcher",
    "FreezerNotSupportedError",
    "HugeTlb",
    "HugeTlbEntry",
    "IOType",
    "InvalidFormatError",
    "InvalidGroupPathError",
    "InvalidPidError",
    "KernelError",
    "Manager",
    "Memory",
    "MemoryNotSupportedError",
    "Mode",
    "MountPointNotExistError",
    "NoCgroupMountDestinationError",
    "Notice",
    "NoticeKind",
    "OCIConversion",
    "OCISpecError",
    "OCIWarning",
    "Pids",
    "PidsNotSupportedError",
    "Program",
    "ProgramEmulator",
    "RDMAEntry",
    "Resources",
    "State",
    "Value",
    "convert_resources",
    "default_mountpoint",
    "device_filter",
    "emulate",
    "ignore_not_exist",
    "load_attach_device_filter",
    "memory_event_fd",
    "mode",
    "nested_group_path",
    "pid_group_path",
    "to_resources",
    "verify_group_path",
]
