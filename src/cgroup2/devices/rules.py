"""Device rules: what an OCI ``linux.resources.devices`` entry says, validated."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CgroupError

_MAX_NUM = 2**32 - 1


@dataclass(frozen=True, slots=True)
class DeviceRule:
    """Allow or deny access to devices.

    ``type`` is ``"a"`` (all), ``"b"`` (block) or ``"c"`` (char); ``major``/``minor``
    ``None`` is the wildcard ``*``; ``access`` is a non-empty subset of ``"rwm"``
    (read, write, mknod).

    Rules apply in order as cgroup v1's ``devices.allow``/``devices.deny`` writes do
    (:class:`cgroup2.devices.state.DeviceState`): ``a *:* rwm`` sets the default and
    clears the exceptions; a rule against the default adds its bits to the exception for
    the same device (``allow c 1:3 r`` then ``allow c 1:3 w`` allow ``rw``); a rule with
    the default takes bits from that exception. With a deny default, a request is allowed
    when one exception holds every requested bit (``c 1:* r`` and ``c 1:3 w`` do not
    allow an ``rw`` open of ``c 1:3``); with an allow default, it is denied when one
    exception holds any requested bit. See :mod:`cgroup2.devices.filter`.
    """

    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`CgroupError` naming the rule and the field when it is invalid."""
        if not isinstance(self.allow, bool):
            raise CgroupError(f"cgroups: invalid device rule {self}: allow must be a bool")
        if not isinstance(self.type, str) or self.type not in ("a", "b", "c"):
            raise CgroupError(
                f"cgroups: invalid device rule {self}: type must be 'a', 'b' or 'c'"
            )
        for field in ("major", "minor"):
            v = getattr(self, field)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_NUM:
                raise CgroupError(
                    f"cgroups: invalid device rule {self}: {field} must be None (any) "
                    f"or an int in 0..{_MAX_NUM}"
                )
        if (
            not isinstance(self.access, str)
            or not self.access
            or any(c not in "rwm" for c in self.access)
        ):
            raise CgroupError(
                f"cgroups: invalid device rule {self}: access must be a non-empty "
                f"subset of 'rwm'"
            )

    def __str__(self) -> str:
        verb = "allow" if self.allow else "deny"
        return f"{verb} {self.type} {_num(self.major)}:{_num(self.minor)} {self.access}"


def _num(v: object) -> str:
    return "*" if v is None else str(v)
