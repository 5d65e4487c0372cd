"""cgroup2: manage Linux cgroup v2 (the unified hierarchy) from Python.

The public face: the manager, resources and their parts, processes run in a group,
statistics and sampling, events, the program's own limits, the errors to catch, and every
name of the reference (containerd/cgroups v2: the path helpers, ``Value``,
``to_resources``, the device filter). The objects that other calls return (the parts of
the statistics, the notices and streams of :mod:`cgroup2.events`, the result of
:func:`run`, :class:`cgroup2.self.Limits`) and the rest of the device filter
(:mod:`cgroup2.devices`), OCI conversion (:mod:`cgroup2.oci`) and systemd
(:mod:`cgroup2.systemd`) are imported from their modules. The documentation's page
"Coming from containerd/cgroups" (``docs/containerd.md``) names the reference that each
name stands for.
"""

from ._lazy import lazy_names
from ._version import __version__ as __version__

# Each public name is imported from its module on first use (PEP 562), so that ``import
# cgroup2`` costs next to nothing and a program loads only the modules it uses. _PUBLIC
# drives the loading, __all__ and dir(); mypy reads the imports below, which must name the
# same names (tests/unit/test_package.py checks that they do).
_PUBLIC = {
    "controllers.cpu": ("CPU", "CPUMax"),
    "controllers.hugetlb": ("HugeTlb", "HugeTlbEntry"),
    "controllers.io": ("BFQ", "IO", "Entry", "IOType"),
    "controllers.memory": ("Memory",),
    "controllers.pids": ("Pids",),
    "controllers.rdma": ("RDMA", "RDMAEntry"),
    "devices": ("Program", "device_filter", "load_attach_device_filter"),
    "devices.rules": ("DeviceRule",),
    "errors": (
        "CgroupDeletedError", "CgroupError", "CPUNotSupportedError", "DelegationError",
        "FreezerNotSupportedError", "InvalidFormatError", "InvalidGroupPathError",
        "InvalidPidError", "KernelError", "MemoryNotSupportedError", "MountPointError",
        "MountPointNotExistError", "NoCgroupMountDestinationError", "NotCgroup2Error",
        "PidsNotSupportedError", "PressureTriggerError", "ignore_not_exist",
    ),
    "events": ("Event", "EventStream", "EventWatcher"),
    "manager": ("ControllerToggle", "Manager", "State"),
    "oci": ("to_resources",),
    "paths": (
        "Mode", "default_mountpoint", "mode", "nested_group_path", "pid_group_path",
        "verify_group_path",
    ),
    "popen": ("Popen", "run"),
    "pressure": ("PressureEvent", "PressureTrigger"),
    "resources": ("Resources", "Value"),
    "sampler": ("Sampler",),
    "self": ("cpu_count", "current", "limits", "memory_available"),
    "stats": ("MemoryStat", "Metrics", "StatMask"),
}

# Names that left the top level: still resolved, with a DeprecationWarning naming the
# module to import them from, until the next release.
_MOVED = {
    "controllers.io": ("WeightDevice",),
    "devices": ("BPFError", "ProgramEmulator", "emulate"),
    "errors": ("TreeLimitError",),
    "events": (
        "CgroupEvents", "CgroupEventStream", "Notice", "NoticeKind", "PressureEventStream",
        "memory_event_fd",
    ),
    "oci": ("OCIConversion", "OCISpecError", "OCIWarning", "convert_resources"),
    "popen": ("CompletedRun", "Usage"),
    "self": ("Limit", "Limits"),
    "stats": (
        "U64_MAX", "CpusetStat", "CPUStat", "HugeTlbStat", "IOStat", "IOStatEntry",
        "MemoryEvents", "MiscStat", "PidsStat", "PSIData", "PSIStats", "RdmaStat",
        "RdmaStatEntry", "prometheus_text",
    ),
}

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy reads it so)
if TYPE_CHECKING:
    from .controllers.cpu import CPU as CPU
    from .controllers.cpu import CPUMax as CPUMax
    from .controllers.hugetlb import HugeTlb as HugeTlb
    from .controllers.hugetlb import HugeTlbEntry as HugeTlbEntry
    from .controllers.io import BFQ as BFQ
    from .controllers.io import IO as IO
    from .controllers.io import Entry as Entry
    from .controllers.io import IOType as IOType
    from .controllers.memory import Memory as Memory
    from .controllers.pids import Pids as Pids
    from .controllers.rdma import RDMA as RDMA
    from .controllers.rdma import RDMAEntry as RDMAEntry
    from .devices import Program as Program
    from .devices import device_filter as device_filter
    from .devices import load_attach_device_filter as load_attach_device_filter
    from .devices.rules import DeviceRule as DeviceRule
    from .errors import CgroupDeletedError as CgroupDeletedError
    from .errors import CgroupError as CgroupError
    from .errors import CPUNotSupportedError as CPUNotSupportedError
    from .errors import DelegationError as DelegationError
    from .errors import FreezerNotSupportedError as FreezerNotSupportedError
    from .errors import InvalidFormatError as InvalidFormatError
    from .errors import InvalidGroupPathError as InvalidGroupPathError
    from .errors import InvalidPidError as InvalidPidError
    from .errors import KernelError as KernelError
    from .errors import MemoryNotSupportedError as MemoryNotSupportedError
    from .errors import MountPointError as MountPointError
    from .errors import MountPointNotExistError as MountPointNotExistError
    from .errors import NoCgroupMountDestinationError as NoCgroupMountDestinationError
    from .errors import NotCgroup2Error as NotCgroup2Error
    from .errors import PidsNotSupportedError as PidsNotSupportedError
    from .errors import PressureTriggerError as PressureTriggerError
    from .errors import ignore_not_exist as ignore_not_exist
    from .events import Event as Event
    from .events import EventStream as EventStream
    from .events import EventWatcher as EventWatcher
    from .manager import ControllerToggle as ControllerToggle
    from .manager import Manager as Manager
    from .manager import State as State
    from .oci import to_resources as to_resources
    from .paths import Mode as Mode
    from .paths import default_mountpoint as default_mountpoint
    from .paths import mode as mode
    from .paths import nested_group_path as nested_group_path
    from .paths import pid_group_path as pid_group_path
    from .paths import verify_group_path as verify_group_path
    from .popen import Popen as Popen
    from .popen import run as run
    from .pressure import PressureEvent as PressureEvent
    from .pressure import PressureTrigger as PressureTrigger
    from .resources import Resources as Resources
    from .resources import Value as Value
    from .sampler import Sampler as Sampler
    from .self import cpu_count as cpu_count
    from .self import current as current
    from .self import limits as limits
    from .self import memory_available as memory_available
    from .stats import MemoryStat as MemoryStat
    from .stats import Metrics as Metrics
    from .stats import StatMask as StatMask
else:  # hidden from mypy: a name that is not public (or a moved one) is an error there
    __getattr__, __dir__, __all__ = lazy_names(__name__, _PUBLIC, globals(), _MOVED)
    del lazy_names
