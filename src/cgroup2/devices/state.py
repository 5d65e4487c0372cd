"""cgroup v1's device state: a default and a list of exceptions, changed rule by rule.

cgroup v1 keeps, per group, a default (allow or deny every device) and a list of
*exceptions*, each a device (type ``b`` or ``c``, major and minor, ``None`` for ``*``) with
a set of access bits (``security/device_cgroup.c``). A rule written to ``devices.allow`` or
``devices.deny`` changes that state:

* ``a *:* rwm`` (allow or deny) sets the default and clears the exceptions;
* a rule of the polarity opposite to the default (an allow when the default denies, a deny
  when it allows) adds its bits to the exception of the same device, making it if there is
  none (``dev_exception_add``): ``allow c 1:3 r`` then ``allow c 1:3 w`` is one exception
  ``c 1:3 rw``;
* a rule of the default's polarity takes its bits away from the exception of the same
  device, dropping it when no bit is left (``dev_exception_rm``); it touches no other
  exception. When a wildcard exception that covers the device (``c 1:*`` or ``c *:3`` or
  ``c *:*`` for ``c 1:3``) holds one of those bits, the rule is refused: v1 would leave the
  wildcard in force, so the rule would not do what it says (runc refuses it too).

A rule of type ``a`` that names a number or fewer than all bits (``allow a 1:3 r``) stands
for the same rule on ``b`` and on ``c``; v1 and runc take any ``a`` rule as the reset.

A request (type, major, minor, access) is then decided as v1 does: with a deny default it is
allowed when one exception that covers the device holds *every* requested bit
(``match_exception``); with an allow default it is denied when one exception that covers
the device holds *any* requested bit (``match_exception_partial``).

The state starts as "deny every device, no exceptions", as runc's emulator does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import CgroupError
from .rules import DeviceRule

__all__ = ["DeviceState", "Key"]

#: An exception's device: (type ``"b"``/``"c"``, major, minor), ``None`` for ``*``.
Key = tuple[str, int | None, int | None]

_M32 = 2**32 - 1
_LIST_LINE = r"([abc]) (\*|\d+):(\*|\d+) ([rwm]+)"


def _bits(access: Iterable[str]) -> str:
    """Access letters in the order ``rwm``, each once."""
    s = set(access)
    return "".join(c for c in "rwm" if c in s)


def _order(key: Key) -> tuple[int, int, str]:
    """runc's order of exceptions: by major, minor, type; a wildcard before any number."""
    typ, major, minor = key
    return (-1 if major is None else major, -1 if minor is None else minor, typ)


def _is_reset(rule: DeviceRule) -> bool:
    return (
        rule.type == "a"
        and rule.major is None
        and rule.minor is None
        and (set(rule.access) == set("rwm"))
    )


class DeviceState:
    """A default (``default_allow``) and exceptions (device -> access letters).

    :meth:`of` applies rules from the empty state; :meth:`allows` decides a request;
    :meth:`rules` gives back rules that make this state.
    """

    __slots__ = ("_exceptions", "default_allow")

    def __init__(
        self, default_allow: bool = False, exceptions: Mapping[Key, str] | None = None
    ) -> None:
        self.default_allow = default_allow
        self._exceptions: dict[Key, str] = {}
        for (typ, major, minor), access in (exceptions or {}).items():
            # validated as a rule is: type b or c, numbers in 0..2**32-1, access in rwm
            DeviceRule(True, typ, major, minor, access)
            if typ == "a":
                raise CgroupError(f"cgroups: an exception is of type b or c, not {typ!r}")
            self._exceptions[typ, major, minor] = _bits(access)

    @classmethod
    def of(cls, rules: Iterable[DeviceRule]) -> DeviceState:
        """The state that ``rules`` make, applied in order from "deny every device"."""
        state = cls()
        for rule in rules:
            state.apply(rule)
        return state

    @property
    def exceptions(self) -> dict[Key, str]:
        """A copy of the exceptions, in runc's order (major, minor, type; ``*`` first)."""
        return {k: self._exceptions[k] for k in sorted(self._exceptions, key=_order)}

    def apply(self, rule: DeviceRule) -> None:
        """Change the state as cgroup v1 does when ``rule`` is written.

        Raises :class:`CgroupError`, with the state unchanged, for a rule that would take
        bits away from a device that a wildcard exception grants (or denies) them for.
        """
        if not isinstance(rule, DeviceRule):
            raise CgroupError(f"cgroups: invalid device rule {rule!r}: a DeviceRule is required")
        if _is_reset(rule):
            self.default_allow = rule.allow
            self._exceptions = {}
            return
        types = ("b", "c") if rule.type == "a" else (rule.type,)
        keys = [(t, rule.major, rule.minor) for t in types]
        access = set(rule.access)
        if rule.allow != self.default_allow:
            for key in keys:
                self._exceptions[key] = _bits(access | set(self._exceptions.get(key, "")))
            return
        for key in keys:  # check every key first: nothing changes when one is refused
            self._check_hole(rule, key, access)
        for key in keys:
            left = _bits(set(self._exceptions.get(key, "")) - access)
            if left:
                self._exceptions[key] = left
            else:
                self._exceptions.pop(key, None)

    def _check_hole(self, rule: DeviceRule, key: Key, access: set[str]) -> None:
        typ, major, minor = key
        for wider in ((typ, None, minor), (typ, major, None), (typ, None, None)):
            if wider == key:
                continue
            held = self._exceptions.get(wider, "")
            if access & set(held):
                kind = "allow" if not self.default_allow else "deny"
                raise CgroupError(
                    f"cgroups: device rule {rule} cannot be applied: it would punch a hole "
                    f"in the wildcard exception {kind} {_text(wider)} {held} "
                    f"(cgroup v1 only takes bits from an exception for the same device)"
                )

    def allows(self, type: str, major: int, minor: int, access: str) -> bool:
        """Whether a request for ``access`` (letters of ``rwm``) to ``type major:minor``
        (``type`` ``"b"`` or ``"c"``) is allowed, as cgroup v1 decides it."""
        want = set(access)
        for (typ, ma, mi), held in self._exceptions.items():
            if typ != type or ma not in (None, major) or mi not in (None, minor):
                continue
            if self.default_allow and want & set(held):
                return False
            if not self.default_allow and want <= set(held):
                return True
        return self.default_allow

    def transition(self, target: DeviceState) -> list[DeviceRule]:
        """The fewest rules that turn this state into ``target`` (runc's ``Transition``).

        A reset comes first when the defaults differ, or when this state allows by
        default (v1's ``devices.list`` does not show the deny exceptions of such a group,
        so they cannot be taken away one by one); then the bits each exception loses, then
        the bits each one gains, each in runc's order.
        """
        out: list[DeviceRule] = []
        old = self._exceptions
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(DeviceRule(target.default_allow))
            old = {}
        new = target._exceptions
        for key in sorted(old, key=_order):
            dropped = _bits(set(old[key]) - set(new.get(key, "")))
            if dropped:
                out.append(DeviceRule(target.default_allow, *key, dropped))
        for key in sorted(new, key=_order):
            gained = _bits(set(new[key]) - set(old.get(key, "")))
            if gained:
                out.append(DeviceRule(not target.default_allow, *key, gained))
        return out

    def rules(self) -> list[DeviceRule]:
        """Rules that make this state from any state: the reset (``allow a`` or ``deny
        a``), then one rule per exception (one of type ``a`` for the same exception of
        both types)."""
        start = DeviceState(not self.default_allow)  # so that the reset is always said
        out: list[DeviceRule] = []
        for rule in start.transition(self):
            last = out[-1] if out else None
            if (
                last is not None
                and (last.type, rule.type) == ("b", "c")
                and (last.allow, last.major, last.minor, last.access)
                == (rule.allow, rule.major, rule.minor, rule.access)
            ):
                # the same exception for block and char devices: one rule of type a
                out[-1] = DeviceRule(rule.allow, "a", rule.major, rule.minor, rule.access)
            else:
                out.append(rule)
        return out

    @classmethod
    def from_list(cls, text: str) -> DeviceState:
        """The state a cgroup v1 ``devices.list`` shows (as runc reads it).

        ``devices.list`` lists the allowed exceptions of a deny-by-default group; a group
        that allows by default shows ``a *:* rwm`` and hides its deny exceptions, so it is
        read as "allow every device".
        """
        import re  # on first use: not for every program that compiles rules

        state = cls()
        for n, line in enumerate(text.splitlines(), 1):
            m = re.fullmatch(_LIST_LINE, line)
            if m is None:
                raise CgroupError(
                    f"cgroups: invalid devices.list line {n} {line!r}: expected "
                    f"'TYPE MAJOR:MINOR ACCESS', e.g. 'c 1:3 rwm'"
                )
            typ, major, minor, access = m.groups()
            nums = [None if v == "*" else int(v) for v in (major, minor)]
            if any(v is not None and v > _M32 for v in nums):
                raise CgroupError(
                    f"cgroups: invalid devices.list line {n} {line!r}: a number is larger "
                    f"than {_M32}"
                )
            if typ == "a":
                state.apply(DeviceRule(True))
            else:
                state.apply(DeviceRule(True, typ, nums[0], nums[1], access))
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviceState):
            return NotImplemented
        return (self.default_allow, self._exceptions) == (
            other.default_allow,
            other._exceptions,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        exc = ", ".join(f"{_text(k)} {v}" for k, v in self.exceptions.items())
        return f"DeviceState(default_allow={self.default_allow}, exceptions=[{exc}])"


def _text(key: Key) -> str:
    typ, major, minor = key
    return f"{typ} {'*' if major is None else major}:{'*' if minor is None else minor}"
