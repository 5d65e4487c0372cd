"""cgroup2: manage Linux cgroup v2 (the unified hierarchy) from Python.

The public API; see the project's API table for the names of the reference
(containerd/cgroups v2) that each one stands for.
"""

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
from .paths import (
    Mode,
    default_mountpoint,
    mode,
    nested_group_path,
    pid_group_path,
    verify_group_path,
)

__all__ = [
    "CPUNotSupportedError",
    "CgroupDeletedError",
    "CgroupError",
    "FreezerNotSupportedError",
    "InvalidFormatError",
    "InvalidGroupPathError",
    "InvalidPidError",
    "KernelError",
    "MemoryNotSupportedError",
    "Mode",
    "MountPointNotExistError",
    "NoCgroupMountDestinationError",
    "PidsNotSupportedError",
    "default_mountpoint",
    "ignore_not_exist",
    "mode",
    "nested_group_path",
    "pid_group_path",
    "verify_group_path",
]
