"""cgroup2: manage Linux cgroup v2 (the unified hierarchy) from Python.

The public API. The documentation's page "Coming from containerd/cgroups"
(``docs/containerd.md``) names the reference (containerd/cgroups v2) that each one
stands for.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_names
from ._version import __version__ as __version__
from .controllers.cpu import CPU, CPUMax
from .controllers.hugetlb import HugeTlb, HugeTlbEntry
from .controllers.io import BFQ, IO, Entry, IOType, WeightDevice
from .controllers.memory import Memory
from .controllers.pids import Pids
from .controllers.rdma import RDMA, RDMAEntry
from .devices.rules import DeviceRule
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
    MountPointError,
    MountPointNotExistError,
    NoCgroupMountDestinationError,
    NotCgroup2Error,
    PidsNotSupportedError,
    TreeLimitError,
    ignore_not_exist,
)
from .manager import ControllerToggle, Manager, State
from .paths import (
    Mode,
    default_mountpoint,
    mode,
    nested_group_path,
    pid_group_path,
    verify_group_path,
)
from .resources import Resources, Value
from .stats import (
    U64_MAX,
    CpusetStat,
    CPUStat,
    HugeTlbStat,
    IOStat,
    IOStatEntry,
    MemoryEvents,
    MemoryStat,
    Metrics,
    MiscStat,
    PidsStat,
    PSIData,
    PSIStats,
    RdmaStat,
    RdmaStatEntry,
    StatMask,
    prometheus_text,
)

if TYPE_CHECKING:
    from .devices import (
        BPFError,
        Program,
        ProgramEmulator,
        device_filter,
        emulate,
        load_attach_device_filter,
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
    from .oci import OCIConversion, OCISpecError, OCIWarning, convert_resources, to_resources
    from .popen import CompletedRun, Popen, Usage, run

# imported on first use, so that ``import cgroup2`` stays cheap for a program that only
# creates groups and reads statistics (the CLI starts faster too)
_LAZY = {
    "BPFError": "devices",
    "Program": "devices",
    "ProgramEmulator": "devices",
    "device_filter": "devices",
    "emulate": "devices",
    "load_attach_device_filter": "devices",
    "CgroupEvents": "events",
    "CgroupEventStream": "events",
    "Event": "events",
    "EventStream": "events",
    "EventWatcher": "events",
    "Notice": "events",
    "NoticeKind": "events",
    "memory_event_fd": "events",
    "OCIConversion": "oci",
    "OCISpecError": "oci",
    "OCIWarning": "oci",
    "convert_resources": "oci",
    "to_resources": "oci",
    "CompletedRun": "popen",
    "Popen": "popen",
    "Usage": "popen",
    "run": "popen",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

__all__ = [
    "BFQ",
    "CPU",
    "IO",
    "RDMA",
    "U64_MAX",
    "BPFError",
    "CPUMax",
    "CPUNotSupportedError",
    "CPUStat",
    "CgroupDeletedError",
    "CgroupError",
    "CgroupEventStream",
    "CgroupEvents",
    "CompletedRun",
    "ControllerToggle",
    "CpusetStat",
    "DeviceRule",
    "Entry",
    "Event",
    "EventStream",
    "EventWatcher",
    "FreezerNotSupportedError",
    "HugeTlb",
    "HugeTlbEntry",
    "HugeTlbStat",
    "IOStat",
    "IOStatEntry",
    "IOType",
    "InvalidFormatError",
    "InvalidGroupPathError",
    "InvalidPidError",
    "KernelError",
    "Manager",
    "Memory",
    "MemoryEvents",
    "MemoryNotSupportedError",
    "MemoryStat",
    "Metrics",
    "MiscStat",
    "Mode",
    "MountPointError",
    "MountPointNotExistError",
    "NoCgroupMountDestinationError",
    "NotCgroup2Error",
    "Notice",
    "NoticeKind",
    "OCIConversion",
    "OCISpecError",
    "OCIWarning",
    "PSIData",
    "PSIStats",
    "Pids",
    "PidsNotSupportedError",
    "PidsStat",
    "Popen",
    "Program",
    "ProgramEmulator",
    "RDMAEntry",
    "RdmaStat",
    "RdmaStatEntry",
    "Resources",
    "StatMask",
    "State",
    "TreeLimitError",
    "Usage",
    "Value",
    "WeightDevice",
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
    "prometheus_text",
    "run",
    "to_resources",
    "verify_group_path",
]
