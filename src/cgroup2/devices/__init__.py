"""Device access control for cgroup v2: an eBPF program of type CGROUP_DEVICE per group."""

from .rules import DeviceRule

__all__ = ["DeviceRule"]
