"""OCI runtime-spec ``linux.resources`` -> :class:`~cgroup2.resources.Resources`.

:func:`to_resources` takes the ``linux.resources`` object of a runtime-spec
``config.json`` (as parsed by :func:`json.load`), or the whole config, and returns the
cgroup v2 settings it stands for. :func:`convert_resources` returns the same together
with the list of :class:`OCIWarning` s: the settings that have no cgroup v2 file and were
left out (``memory.kernel``, ``network.classID``, ...).

The conversions (kernel files in brackets):

- ``cpu.shares`` -> ``cpu.weight``: ``ceil(10 ** ((L*L + 125*L) / 612 - 7/34))`` with
  ``L = log2(shares)``, the formula of crun >= 1.23 and runc >= 1.3.2 (1024 -> 100,
  2 -> 1, 262144 -> 10000); 0 is "not set", <= 2 is 1, >= 262144 is 10000.
- ``cpu.quota``/``cpu.period`` -> ``cpu.max`` ``"<quota> <period>"``; quota -1, 0 or
  absent is ``max``, an absent period is the kernel's default 100000.
- ``memory.limit`` -> ``memory.max``, ``memory.reservation`` -> ``memory.low``;
  ``memory.swap`` is memory+swap, so ``memory.swap.max = swap - limit`` (``max`` when
  either is -1; swap < limit is refused; limit -1 with no swap makes swap ``max`` too,
  as runc does). 0 is "not set", as runc reads it.
- ``pids.limit`` -> ``pids.max``; 0 and -1 are ``max`` (runc).
- ``blockIO.weight`` (10..1000) -> ``io.bfq.weight`` unchanged, or with ``bfq=False``
  -> ``io.weight`` as ``1 + (w - 10) * 9999 // 990`` for kernels without BFQ; the four
  throttle lists -> ``io.max`` entries, in the spec's order.
- ``hugepageLimits`` -> ``hugetlb.<size>.max``; ``rdma`` -> ``rdma.max`` (an absent
  ``hcaHandles`` or ``hcaObjects`` is written as ``max``); ``devices``
  -> :class:`~cgroup2.devices.rules.DeviceRule` s; ``unified`` -> ``Resources.unified``.

Which weight file: a group has ``io.bfq.weight`` only while the kernel has the BFQ
scheduler (module ``bfq``) loaded, and ``io.weight`` only with blk-iocost. The choice is
the caller's (``bfq=``), made for the kernel the settings go to: for example convert with
``bfq=os.path.exists(parent + "/io.bfq.weight")``. ``blockIO.weightDevice`` (per-device
weights) follows the same choice: ``IO.bfq_device`` unchanged, or ``IO.weight_device``
converted by the same formula (the kernel takes these lines only for a device that runs
BFQ, or has iocost enabled, respectively).

Bad input (a wrong JSON type, a bool where a number belongs, a negative number other than
-1, an unknown device type, ...) raises :class:`OCISpecError`, which names the JSON path
(``linux.resources.memory.limit``) and the value. Unknown properties are ignored with a
warning, as the runtime-spec requires of readers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .controllers.cpu import CPU, CPUMax
from .controllers.cpuset import cpu_list_mask
from .controllers.hugetlb import HugeTlb, HugeTlbEntry
from .controllers.io import BFQ, IO, Entry, IOType, WeightDevice
from .controllers.memory import Memory
from .controllers.pids import Pids
from .controllers.rdma import RDMA, RDMAEntry
from .devices.rules import DeviceRule
from .errors import CgroupError
from .resources import Resources, check_unified_key

__all__ = [
    "OCIConversion",
    "OCISpecError",
    "OCIWarning",
    "blkio_weight_to_io_weight",
    "convert_resources",
    "cpu_shares_to_weight",
    "to_resources",
]

_ROOT = "linux.resources"

# Integer kinds of the runtime-spec schema: (lowest, highest).
_U16 = (0, 2**16 - 1)
_U32 = (0, 2**32 - 1)
_U64 = (0, 2**64 - 1)
_I64 = (-(2**63), 2**63 - 1)

_SHARES_MIN = 2  # the kernel's cpu.shares range (cgroup v1) ...
_SHARES_MAX = 262_144  # ... 2..2**18
_WEIGHT_MAX = 10_000  # cpu.weight / io.weight range 1..10000
_BLKIO_MIN = 10  # blkio.weight range (cgroup v1) ...
_BLKIO_MAX = 1000  # ... 10..1000


class OCISpecError(CgroupError):
    """A ``linux.resources`` setting that cannot be converted.

    ``json_path`` is where it is (``linux.resources.memory.limit``), ``json_value`` what
    was found there.
    """

    def __init__(self, json_path: str, json_value: object, why: str) -> None:
        shown = _show(json_value)
        super().__init__(f"cgroups: invalid OCI resources: {json_path} = {shown}: {why}")
        self.json_path = json_path
        self.json_value = json_value


@dataclass(frozen=True, slots=True)
class OCIWarning:
    """A setting that was left out of the conversion: ``path`` = ``value``: ``reason``."""

    path: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"{self.path} = {_show(self.value)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class OCIConversion:
    """The result of :func:`convert_resources`: the settings and what was left out."""

    resources: Resources
    warnings: tuple[OCIWarning, ...] = ()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- the conversion formulas ----------------------------------------------------------


def cpu_shares_to_weight(shares: int) -> int:
    """``cpu.weight`` (1..10000) for cgroup v1 ``cpu.shares`` (2..262144); 0 is 0 (unset).

    The log-quadratic map of crun >= 1.23 / runc >= 1.3.2: with ``L = log2(shares)``,
    ``ceil(10 ** ((L*L + 125*L) / 612 - 7/34))``. It keeps the defaults (1024 -> 100)
    and both ends (2 -> 1, 262144 -> 10000).
    """
    if shares == 0:
        return 0
    if shares <= _SHARES_MIN:
        return 1
    if shares >= _SHARES_MAX:
        return _WEIGHT_MAX
    log = math.log2(shares)
    exponent = (log * log + 125 * log) / 612 - 7 / 34
    return min(_WEIGHT_MAX, math.ceil(10**exponent))


def blkio_weight_to_io_weight(weight: int) -> int:
    """``io.weight`` (1..10000) for a BFQ / blkio weight (10..1000), linearly; 0 is 0
    (unset: no ``io.weight`` is written, as in runc).

    ``1 + (w - 10) * 9999 // 990``: 10 -> 1, 500 -> 4950, 1000 -> 10000. A weight outside
    10..1000 (and not 0) is a :class:`~cgroup2.errors.CgroupError`.
    """
    if not isinstance(weight, int) or isinstance(weight, bool):
        raise CgroupError(f"cgroups: invalid blkio weight {weight!r}: must be an int")
    if weight == 0:
        return 0
    if not _BLKIO_MIN <= weight <= _BLKIO_MAX:
        raise CgroupError(
            f"cgroups: invalid blkio weight {weight}: out of range "
            f"{_BLKIO_MIN}..{_BLKIO_MAX} (0: not set)"
        )
    return 1 + (weight - _BLKIO_MIN) * 9999 // (_BLKIO_MAX - _BLKIO_MIN)


# --- JSON walking ---------------------------------------------------------------------

_T = TypeVar("_T")

_KNOWN: dict[str, frozenset[str]] = {
    "": frozenset(
        (
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "network",
            "rdma",
            "unified",
        )
    ),
    "cpu": frozenset(
        (
            "shares",
            "quota",
            "burst",
            "period",
            "realtimeRuntime",
            "realtimePeriod",
            "cpus",
            "mems",
            "idle",
        )
    ),
    "memory": frozenset(
        (
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        )
    ),
    "pids": frozenset(("limit",)),
    "blockIO": frozenset(
        (
            "weight",
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        )
    ),
    "weightDevice": frozenset(("major", "minor", "weight", "leafWeight")),
    "throttle": frozenset(("major", "minor", "rate")),
    "hugepageLimits": frozenset(("pageSize", "limit")),
    "rdma": frozenset(("hcaHandles", "hcaObjects")),
    "devices": frozenset(("allow", "type", "major", "minor", "access")),
    "network": frozenset(("classID", "priorities")),
}

_THROTTLES = (
    ("throttleReadBpsDevice", IOType.READ_BPS),
    ("throttleWriteBpsDevice", IOType.WRITE_BPS),
    ("throttleReadIOPSDevice", IOType.READ_IOPS),
    ("throttleWriteIOPSDevice", IOType.WRITE_IOPS),
)

_PAGE_SIZE = re.compile(r"[1-9][0-9]*(KB|MB|GB|TB)")
_NO_FILE = "cgroup v2 has no file for this; left out"


class _Walker:
    """Reads one ``linux.resources`` object, checking every value it takes."""

    def __init__(self) -> None:
        self.warnings: list[OCIWarning] = []

    def warn(self, path: str, value: object, reason: str) -> None:
        self.warnings.append(OCIWarning(path, value, reason))

    def obj(self, value: object, path: str, kind: str) -> Mapping[str, Any] | None:
        """``value`` as a JSON object (``None`` for absent/null); warns of unknown keys."""
        if value is None:
            return None
        if type(value) is not dict and not isinstance(value, Mapping):
            raise OCISpecError(path, value, "must be a JSON object")
        known = _KNOWN[kind]
        for key in value:
            if not isinstance(key, str):
                raise OCISpecError(path, value, f"key {key!r} is not a string")
            if key not in known:
                self.warn(f"{path}.{key}", value[key], "unknown property; ignored")
        return value

    def array(self, value: object, path: str) -> Sequence[Any]:
        if value is None:
            return ()
        if type(value) is list:
            return value
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise OCISpecError(path, value, "must be a JSON array")
        return value

    def int_(
        self,
        value: object,
        path: str,
        bounds: tuple[int, int],
        *,
        minus_one: bool = False,
    ) -> int | None:
        """An integer of the schema's kind; ``None`` for absent/null.

        Negative numbers are refused, except -1 where ``minus_one`` (it means "no limit").
        """
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise OCISpecError(path, value, "must be an integer")
        lo, hi = bounds
        if value < 0 and not (minus_one and value == -1):
            why = "negative values other than -1 are refused" if minus_one else "must be >= 0"
            raise OCISpecError(path, value, why)
        if value != -1 and not lo <= value <= hi:
            raise OCISpecError(path, value, f"out of range {lo}..{hi}")
        return value

    def bool_(self, value: object, path: str) -> bool | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise OCISpecError(path, value, "must be true or false")
        return value

    def str_(self, value: object, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise OCISpecError(path, value, "must be a string")
        return value

    # --- the sections ----------------------------------------------------------------

    def resources(self, spec: Mapping[str, Any], *, bfq: bool) -> Resources:
        res = self.obj(spec, _ROOT, "")
        assert res is not None
        r = _ROOT
        cpu = self.cpu(res.get("cpu"), f"{r}.cpu")
        memory = self.memory(res.get("memory"), f"{r}.memory")
        pids = self.pids(res.get("pids"), f"{r}.pids")
        io = self.block_io(res.get("blockIO"), f"{r}.blockIO", bfq=bfq)
        hugetlb = self.hugetlb(res.get("hugepageLimits"), f"{r}.hugepageLimits")
        rdma = self.rdma(res.get("rdma"), f"{r}.rdma")
        devices = self.devices(res.get("devices"), f"{r}.devices")
        self.network(res.get("network"), f"{r}.network")
        unified = self.unified(res.get("unified"), f"{r}.unified")
        return _build(
            r,
            res,
            lambda: Resources(
                cpu=cpu,
                memory=memory,
                pids=pids,
                io=io,
                rdma=rdma,
                hugetlb=hugetlb,
                devices=devices,
                unified=unified,
            ),
        )

    def cpu(self, value: object, path: str) -> CPU | None:
        c = self.obj(value, path, "cpu")
        if c is None:
            return None
        shares = self.int_(c.get("shares"), f"{path}.shares", _U64)
        quota = self.int_(c.get("quota"), f"{path}.quota", _I64, minus_one=True)
        period = self.int_(c.get("period"), f"{path}.period", _U64)
        burst = self.int_(c.get("burst"), f"{path}.burst", _U64)
        idle = self.int_(c.get("idle"), f"{path}.idle", _I64)
        cpus = _cpu_list(self.str_(c.get("cpus"), f"{path}.cpus"))
        mems = _cpu_list(self.str_(c.get("mems"), f"{path}.mems"))
        for key, bounds in (("realtimeRuntime", _I64), ("realtimePeriod", _U64)):
            rt = self.int_(c.get(key), f"{path}.{key}", bounds, minus_one=True)
            if rt:
                self.warn(f"{path}.{key}", rt, f"{_NO_FILE} (real-time groups are v1 only)")
        if idle is not None and idle not in (0, 1):
            raise OCISpecError(f"{path}.idle", idle, "must be 0 or 1")

        weight = cpu_shares_to_weight(shares) if shares else None
        cpu_max: CPUMax | None = None
        if period:
            _build(f"{path}.period", period, lambda: CPUMax.new(None, period))
        if quota or period:
            q = quota if quota and quota > 0 else None
            where = f"{path}.quota" if q is not None else f"{path}.period"
            cpu_max = _build(where, q if q is not None else period, lambda: CPUMax.new(q, period))
        if not any(v is not None for v in (weight, cpu_max, burst, idle)) and not (cpus or mems):
            return None
        _check(f"{path}.burst", burst, lambda: CPU(burst=burst))
        _check(f"{path}.cpus", cpus, lambda: CPU(cpus=cpus))
        _check(f"{path}.mems", mems, lambda: CPU(mems=mems))
        return _build(
            path,
            c,
            lambda: CPU(
                weight=weight,
                max=cpu_max,
                cpus=cpus or None,
                mems=mems or None,
                idle=None if idle is None else idle == 1,
                burst=burst,
            ),
        )

    def memory(self, value: object, path: str) -> Memory | None:
        m = self.obj(value, path, "memory")
        if m is None:
            return None
        limit = self.int_(m.get("limit"), f"{path}.limit", _I64, minus_one=True)
        reservation = self.int_(m.get("reservation"), f"{path}.reservation", _I64, minus_one=True)
        swap = self.int_(m.get("swap"), f"{path}.swap", _I64, minus_one=True)
        for key in ("kernel", "kernelTCP"):
            v = self.int_(m.get(key), f"{path}.{key}", _I64, minus_one=True)
            if v is not None:
                why = f"{_NO_FILE} (kernel memory is counted in memory.max)"
                self.warn(f"{path}.{key}", v, why)
        swappiness = self.int_(m.get("swappiness"), f"{path}.swappiness", _U64)
        if swappiness is not None:
            self.warn(f"{path}.swappiness", swappiness, f"{_NO_FILE} (no per-group swappiness)")
        for key, v2 in (
            ("disableOOMKiller", False),
            ("useHierarchy", True),
            ("checkBeforeUpdate", False),
        ):
            b = self.bool_(m.get(key), f"{path}.{key}")
            if b is not None and b != v2:
                why = {
                    "disableOOMKiller": _NO_FILE + " (the OOM killer cannot be turned off)",
                    "useHierarchy": "cgroup v2 is always hierarchical; ignored",
                    "checkBeforeUpdate": "ignored (no usage check before an update)",
                }[key]
                self.warn(f"{path}.{key}", b, why)

        if limit == 0:
            self.warn(f"{path}.limit", 0, "0 is taken as 'not set' (as runc does); left out")
            limit = None
        if reservation == 0:
            reservation = None
        swap_max = _swap_max(path, limit, swap)
        if limit is None and reservation is None and swap_max is None:
            return None
        _check(f"{path}.limit", limit, lambda: Memory(max=limit))
        _check(f"{path}.reservation", reservation, lambda: Memory(low=reservation))
        return _build(path, m, lambda: Memory(swap=swap_max, max=limit, low=reservation))

    def pids(self, value: object, path: str) -> Pids | None:
        p = self.obj(value, path, "pids")
        if p is None:
            return None
        limit = self.int_(p.get("limit"), f"{path}.limit", _I64, minus_one=True)
        if limit is None:
            return None
        n = -1 if limit <= 0 else limit  # runc: 0 and -1 are both "no limit"
        return _build(f"{path}.limit", limit, lambda: Pids(n))

    def block_io(self, value: object, path: str, *, bfq: bool) -> IO | None:
        b = self.obj(value, path, "blockIO")
        if b is None:
            return None
        weight = self._blkio_weight(b.get("weight"), f"{path}.weight")
        leaf = self._blkio_weight(b.get("leafWeight"), f"{path}.leafWeight")
        if leaf:
            self.warn(f"{path}.leafWeight", leaf, f"{_NO_FILE} (leaf weights were CFQ's)")
        bfq_devices: list[WeightDevice] = []
        io_devices: list[WeightDevice] = []
        for i, d in enumerate(self.array(b.get("weightDevice"), f"{path}.weightDevice")):
            p = f"{path}.weightDevice[{i}]"
            dev = self.obj(d, p, "weightDevice")
            if dev is None:
                raise OCISpecError(p, d, "must be a JSON object")
            major, minor = self._major_minor(dev, p)
            w = self._blkio_weight(dev.get("weight"), f"{p}.weight")
            lw = self._blkio_weight(dev.get("leafWeight"), f"{p}.leafWeight")
            if w:
                if bfq:
                    bfq_devices.append(_build(p, d, WeightDevice, major, minor, w))
                else:
                    io_devices.append(
                        _build(p, d, WeightDevice, major, minor, blkio_weight_to_io_weight(w))
                    )
            if lw:
                self.warn(f"{p}.leafWeight", lw, f"{_NO_FILE} (leaf weights were CFQ's)")
        entries: list[Entry] = []
        for key, kind in _THROTTLES:
            for i, t in enumerate(self.array(b.get(key), f"{path}.{key}")):
                p = f"{path}.{key}[{i}]"
                dev = self.obj(t, p, "throttle")
                if dev is None:
                    raise OCISpecError(p, t, "must be a JSON object")
                major, minor = self._major_minor(dev, p)
                rate = self.int_(dev.get("rate"), f"{p}.rate", _U64, minus_one=True)
                if rate is None:
                    raise OCISpecError(f"{p}.rate", None, "is required")
                entries.append(_build(p, t, Entry, kind, major, minor, rate))
        bfq_w: BFQ | None = None
        io_w: int | None = None
        if weight:
            if bfq:
                bfq_w = _build(f"{path}.weight", weight, lambda: BFQ(weight))
            else:
                io_w = blkio_weight_to_io_weight(weight)
        if bfq_w is None and io_w is None and not entries and not bfq_devices and not io_devices:
            return None
        return _build(
            path,
            b,
            lambda: IO(
                bfq=bfq_w,
                max=tuple(entries),
                weight=io_w,
                weight_device=tuple(io_devices),
                bfq_device=tuple(bfq_devices),
            ),
        )

    def _blkio_weight(self, value: object, path: str) -> int | None:
        w = self.int_(value, path, _U16)
        if w is None or w == 0:  # 0: not set (runc)
            return None
        if not _BLKIO_MIN <= w <= _BLKIO_MAX:
            raise OCISpecError(path, w, f"out of range {_BLKIO_MIN}..{_BLKIO_MAX} (0: not set)")
        return w

    def _major_minor(self, dev: Mapping[str, Any], path: str) -> tuple[int, int]:
        major = self.int_(dev.get("major"), f"{path}.major", _U32)
        minor = self.int_(dev.get("minor"), f"{path}.minor", _U32)
        if major is None:
            raise OCISpecError(f"{path}.major", None, "is required")
        if minor is None:
            raise OCISpecError(f"{path}.minor", None, "is required")
        return major, minor

    def hugetlb(self, value: object, path: str) -> HugeTlb | None:
        items = self.array(value, path)
        if not items:
            return None
        entries: list[HugeTlbEntry] = []
        seen: set[str] = set()
        for i, h in enumerate(items):
            p = f"{path}[{i}]"
            e = self.obj(h, p, "hugepageLimits")
            if e is None:
                raise OCISpecError(p, h, "must be a JSON object")
            size = self.str_(e.get("pageSize"), f"{p}.pageSize")
            if size is None or not _PAGE_SIZE.fullmatch(size):
                raise OCISpecError(
                    f"{p}.pageSize", size, "must be the kernel's size name, e.g. '2MB', '1GB'"
                )
            if size in seen:
                raise OCISpecError(f"{p}.pageSize", size, "the same page size twice")
            seen.add(size)
            limit = self.int_(e.get("limit"), f"{p}.limit", _U64, minus_one=True)
            if limit is None:
                raise OCISpecError(f"{p}.limit", None, "is required")
            entries.append(_build(p, h, HugeTlbEntry, size, limit))
        return HugeTlb(entries)

    def rdma(self, value: object, path: str) -> RDMA | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise OCISpecError(path, value, "must be a JSON object (device name -> limits)")
        entries: list[RDMAEntry] = []
        for device, limits in value.items():
            p = f'{path}["{device}"]'
            if not isinstance(device, str) or not device:
                raise OCISpecError(p, device, "the device name must be a non-empty string")
            e = self.obj(limits, p, "rdma")
            if e is None:
                raise OCISpecError(p, limits, "must be a JSON object")
            handles = self.int_(e.get("hcaHandles"), f"{p}.hcaHandles", _U32, minus_one=True)
            objects = self.int_(e.get("hcaObjects"), f"{p}.hcaObjects", _U32, minus_one=True)
            if handles is None and objects is None:
                self.warn(p, limits, "neither hcaHandles nor hcaObjects; left out")
                continue
            h = -1 if handles is None else handles
            o = -1 if objects is None else objects
            entries.append(_build(p, limits, RDMAEntry, device, h, o))
        return RDMA(tuple(entries)) if entries else None

    def devices(self, value: object, path: str) -> tuple[DeviceRule, ...] | None:
        items = self.array(value, path)
        if not items:
            return None  # absent or empty: nothing is said about devices
        rules: list[DeviceRule] = []
        for i, d in enumerate(items):
            p = f"{path}[{i}]"
            e = self.obj(d, p, "devices")
            if e is None:
                raise OCISpecError(p, d, "must be a JSON object")
            allow = self.bool_(e.get("allow"), f"{p}.allow")
            if allow is None:
                raise OCISpecError(f"{p}.allow", None, "is required (true or false)")
            kind = self.str_(e.get("type"), f"{p}.type")
            if kind is None or kind == "":
                kind = "a"
            if kind not in ("a", "b", "c"):
                raise OCISpecError(
                    f"{p}.type", kind, "unknown device type (a: all, b: block, c: char)"
                )
            major = self.int_(e.get("major"), f"{p}.major", _U32, minus_one=True)
            minor = self.int_(e.get("minor"), f"{p}.minor", _U32, minus_one=True)
            access = self.str_(e.get("access"), f"{p}.access")
            if access is None:
                access = "rwm"
            if not access or any(ch not in "rwm" for ch in access):
                raise OCISpecError(f"{p}.access", access, "must be a non-empty subset of 'rwm'")
            mj = None if major is None or major == -1 else major
            mn = None if minor is None or minor == -1 else minor
            rules.append(_build(p, d, DeviceRule, allow, kind, mj, mn, access))
        return tuple(rules)

    def network(self, value: object, path: str) -> None:
        n = self.obj(value, path, "network")
        if n is None:
            return
        class_id = self.int_(n.get("classID"), f"{path}.classID", _U32)
        if class_id is not None:
            self.warn(f"{path}.classID", class_id, f"{_NO_FILE} (net_cls is v1 only)")
        prios = self.array(n.get("priorities"), f"{path}.priorities")
        for i, pr in enumerate(prios):
            p = f"{path}.priorities[{i}]"
            if not isinstance(pr, Mapping):
                raise OCISpecError(p, pr, "must be a JSON object")
            self.str_(pr.get("name"), f"{p}.name")
            self.int_(pr.get("priority"), f"{p}.priority", _U32)
        if prios:
            self.warn(f"{path}.priorities", list(prios), f"{_NO_FILE} (net_prio is v1 only)")

    def unified(self, value: object, path: str) -> dict[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise OCISpecError(path, value, "must be a JSON object (file name -> value)")
        out: dict[str, str] = {}
        for name, text in value.items():
            p = f'{path}["{name}"]'
            if not isinstance(name, str):
                raise OCISpecError(p, name, "the file name must be a string")
            _build(p, name, check_unified_key, name)
            if not isinstance(text, str):
                raise OCISpecError(p, text, "must be a string")
            out[name] = text
        return out or None


def _swap_max(path: str, limit: int | None, swap: int | None) -> int | None:
    """``memory.swap.max`` from OCI ``swap`` (memory+swap) and ``limit``."""
    if swap is None or swap == 0:
        # runc: memory unlimited and swap unset means swap unlimited too
        return -1 if limit == -1 else None
    if swap == -1 or limit == -1:
        return -1
    if limit is None:
        raise OCISpecError(
            f"{path}.swap", swap, "is memory+swap: it needs memory.limit to be set as well"
        )
    if swap < limit:
        raise OCISpecError(
            f"{path}.swap",
            swap,
            f"is memory+swap and must be >= memory.limit ({limit}), or -1 for no limit",
        )
    return swap - limit


def _build(path: str, value: object, make: Callable[..., _T], *args: Any) -> _T:
    """``make(*args)``; a CgroupError it raises names the JSON ``path`` and ``value``."""
    try:
        return make(*args)
    except OCISpecError:
        raise
    except CgroupError as e:
        raise OCISpecError(path, value, str(e).removeprefix("cgroups: ")) from e


def _cpu_list(text: str | None) -> str | None:
    """``cpu.cpus``/``cpu.mems``: ``None`` for a list that names no CPU (``""``, ``","``:
    runc writes no file for ``""``, and the kernel takes ``","`` as the empty set, which
    for a new group is its parent's CPUs, as if not written); else the text, which
    :class:`CPU` checks and writes in the kernel's form (``"0, 1"`` -> ``"0-1"``)."""
    if text is None:
        return None
    try:
        return text if cpu_list_mask(text) else None
    except ValueError:
        return text  # refused by CPU, with the reason


def _check(path: str, value: object, make: Callable[[], object]) -> None:
    if value is not None:
        _build(path, value, make)


def _resources_of(spec: object) -> Mapping[str, Any]:
    """``spec`` itself, or ``spec["linux"]["resources"]`` for a whole config."""
    if not isinstance(spec, Mapping):
        raise OCISpecError(_ROOT, spec, "must be a JSON object (linux.resources or config)")
    if "linux" in spec or "ociVersion" in spec or "process" in spec:
        linux = spec.get("linux")
        if linux is None:
            return {}
        if not isinstance(linux, Mapping):
            raise OCISpecError("linux", linux, "must be a JSON object")
        res = linux.get("resources")
        if res is None:
            return {}
        if not isinstance(res, Mapping):
            raise OCISpecError(_ROOT, res, "must be a JSON object")
        return res
    return spec


def convert_resources(spec: Mapping[str, Any], *, bfq: bool = True) -> OCIConversion:
    """Convert OCI ``linux.resources`` (or a whole ``config.json``) to cgroup v2 settings.

    Returns the :class:`~cgroup2.resources.Resources` and the :class:`OCIWarning` s of
    what was left out. ``bfq=True`` puts ``blockIO.weight`` in ``io.bfq.weight``
    unchanged; ``bfq=False`` puts it in ``io.weight`` (1..10000) for kernels without
    the BFQ scheduler. Raises :class:`OCISpecError` (a CgroupError) on bad input.
    """
    walker = _Walker()
    resources = walker.resources(_resources_of(spec), bfq=bfq)
    return OCIConversion(resources, tuple(walker.warnings))


def to_resources(
    spec: Mapping[str, Any],
    *,
    bfq: bool = True,
    warnings: list[OCIWarning] | None = None,
) -> Resources:
    """The cgroup v2 :class:`~cgroup2.resources.Resources` of OCI ``linux.resources``.

    ``spec`` is the ``linux.resources`` object of a runtime-spec ``config.json`` as
    parsed JSON, or the whole config. Settings without a cgroup v2 file are left out and,
    when a ``warnings`` list is given, described in it. See :func:`convert_resources`.
    """
    result = convert_resources(spec, bfq=bfq)
    if warnings is not None:
        warnings.extend(result.warnings)
    return result.resources
