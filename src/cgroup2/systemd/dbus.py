"""A small blocking D-Bus client for systemd's manager, on jeepney's message layer.

Two ways in, tried in this order:

* the system bus (``/run/dbus/system_bus_socket``, or ``DBUS_SYSTEM_BUS_ADDRESS``): the
  client says ``Hello``, checks that systemd owns ``org.freedesktop.systemd1`` there (during
  boot the bus can be up before systemd joins it, and a call would hang waiting for bus
  activation), and adds a match rule for the manager's ``JobRemoved`` signal;
* systemd's private socket ``/run/systemd/private`` (root only): a direct peer-to-peer
  connection to PID 1, as ``systemctl`` uses when no bus daemon runs (early boot, minimal
  containers). There is no bus there: no ``Hello``, no names, no match rules; signals
  arrive directly (``Subscribe()`` is called all the same: it is a no-op on a direct
  connection, which systemd subscribes by default).

On both, the client calls ``Subscribe()`` so that systemd emits job signals, and waits for
a job by reading messages until ``JobRemoved`` names the job's object path (the match is
installed before the job is started, so the signal cannot be missed).
"""

from __future__ import annotations

import os
import socket
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Any

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    HeaderFields,
    Message,
    MessageType,
    Parser,
    new_method_call,
)
from jeepney.auth import BEGIN, Authenticator  # type: ignore[import-untyped]
from jeepney.bus_messages import MatchRule, message_bus  # type: ignore[import-untyped]

from ..errors import CgroupError

__all__ = [
    "PRIVATE_SOCKET",
    "SYSTEM_BUS_SOCKET",
    "Connection",
    "SystemdError",
    "connect",
    "connect_user",
    "user_bus_candidates",
]

SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"
PRIVATE_SOCKET = "/run/systemd/private"

_SYSTEMD = "org.freedesktop.systemd1"
_MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
_PROPS_IFACE = "org.freedesktop.DBus.Properties"

#: Seconds to wait for a method reply.
CALL_TIMEOUT = 25.0
#: Seconds without a reply after which the peer is pinged (then again every _NUDGE_EVERY).
_NUDGE_AFTER = 0.5
_NUDGE_EVERY = 3.0


class SystemdError(CgroupError):
    """systemd (or the bus) answered a call with a D-Bus error.

    ``name`` is the D-Bus error name (e.g. ``org.freedesktop.systemd1.UnitExists``),
    ``message`` systemd's text; ``method`` the call that failed.
    """

    def __init__(self, name: str, message: str, *, method: str = "") -> None:
        self.name = name
        self.message = message
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"cgroups: systemd: {where}{name}: {message}")


@dataclass(frozen=True, slots=True)
class JobResult:
    """What ``JobRemoved`` said about a job: its unit and result (``done``, ``failed``,
    ``canceled``, ``timeout``, ``dependency``, ``skipped``)."""

    job: str
    unit: str
    result: str


def _address_path(address: str) -> str | None:
    """The socket path of a ``unix:path=...`` D-Bus address (the first one listed)."""
    for entry in address.split(";"):
        kind, _, params = entry.partition(":")
        if kind != "unix":
            continue
        for kv in params.split(","):
            k, _, v = kv.partition("=")
            if k == "path" and v:
                return _unescape(v)
    return None


def _unescape(v: str) -> str:
    return urllib.parse.unquote_to_bytes(v).decode("utf-8", "surrogateescape")


class Connection:
    """One authenticated D-Bus connection (to the bus daemon or straight to systemd).

    ``direct`` is true for the peer-to-peer connection to systemd's private socket.
    Signals that arrive while waiting for a reply are kept for :meth:`wait_job`.
    """

    def __init__(self, path: str, *, direct: bool, timeout: float = 2.0) -> None:
        self.path = path
        self.direct = direct
        self._parser = Parser()
        self._serial = 0
        self._signals: deque[Message] = deque(maxlen=4096)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            # Linux: the peer learns our uid from SO_PEERCRED; EXTERNAL auth sends it.
            self.sock.sendall(b"\0")
            auth = Authenticator(inc_null_byte=False)
            for req in auth:
                self.sock.sendall(req)
                data = self.sock.recv(1024)
                if not data:
                    raise ConnectionResetError(f"{path} closed the connection during auth")
                auth.feed(data)
            self.sock.sendall(BEGIN)
            self.sock.settimeout(None)
            if not direct:
                self.call(message_bus.Hello(), timeout=timeout)
                # The bus may be up before systemd has joined it (early boot): a call to
                # org.freedesktop.systemd1 would then wait for bus activation, so make
                # sure systemd owns its name first (this call never activates anything).
                self.call(message_bus.GetNameOwner(_SYSTEMD), timeout=timeout)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- messages ---------------------------------------------------------------------

    def _send(self, msg: Message) -> int:
        self._serial += 1
        self.sock.sendall(msg.serialise(serial=self._serial))
        return self._serial

    def _receive(self, deadline: float) -> Message:
        while True:
            msg = self._parser.get_next_message()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as e:
                raise ConnectionError(f"D-Bus connection {self.path}: {e}") from None
            finally:
                self.sock.settimeout(None)
            if not data:
                raise ConnectionError(f"D-Bus connection {self.path} was closed by the peer")
            self._parser.add_data(data)

    def call(self, msg: Message, *, timeout: float = CALL_TIMEOUT) -> tuple[Any, ...]:
        """Send a method call and return the reply's body; a D-Bus error raises
        :class:`SystemdError`, no reply in ``timeout`` seconds raises one too."""
        serial = self._send(msg)
        method = str(msg.header.fields.get(HeaderFields.member, ""))
        start = time.monotonic()
        deadline = start + timeout
        nudge = start + _NUDGE_AFTER
        nudges = 0
        while True:
            try:
                reply = self._receive(min(deadline, nudge))
            except TimeoutError:
                now = time.monotonic()
                if now >= deadline:
                    raise SystemdError(
                        "timeout",
                        f"no reply within {timeout} s on {self.path} "
                        f"({'direct' if self.direct else 'bus'}; {nudges} pings sent)",
                        method=method,
                    ) from None
                # Seen in a container booted with systemd: now and then a call on a fresh
                # direct connection gets no answer until more bytes arrive. A Ping (whose
                # answer is dropped) is harmless and gets the peer to read again.
                self._send(_ping())
                nudges += 1
                nudge = now + _NUDGE_EVERY
                continue
            if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                if reply.header.message_type is MessageType.signal:
                    self._signals.append(reply)
                continue
            if reply.header.message_type is MessageType.error:
                name = str(reply.header.fields.get(HeaderFields.error_name, "unknown"))
                text = str(reply.body[0]) if reply.body else ""
                raise SystemdError(name, text, method=method)
            body: tuple[Any, ...] = reply.body
            return body

    def wait_job(self, job: str, timeout: float) -> JobResult:
        """Wait for the manager's ``JobRemoved`` signal of ``job`` (an object path)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._signals:
                msg = self._signals.popleft()
                r = _job_removed(msg)
                if r is not None and r.job == job:
                    return r
            try:
                msg = self._receive(deadline)
            except TimeoutError:
                raise SystemdError(
                    "timeout", f"job {job} did not finish within {timeout} s", method="JobRemoved"
                ) from None
            if msg.header.message_type is MessageType.signal:
                self._signals.append(msg)

    # --- systemd's manager ------------------------------------------------------------

    def manager_call(
        self, method: str, signature: str | None = None, body: tuple[Any, ...] = ()
    ) -> tuple[Any, ...]:
        """Call a method of systemd's manager object and return the reply's body."""
        addr = DBusAddress(_MANAGER_PATH, bus_name=_SYSTEMD, interface=MANAGER_IFACE)
        return self.call(new_method_call(addr, method, signature, body))

    def get_property(self, path: str, interface: str, name: str) -> Any:
        """``org.freedesktop.DBus.Properties.Get`` of an object of systemd; the value of
        the variant."""
        addr = DBusAddress(path, bus_name=_SYSTEMD, interface=_PROPS_IFACE)
        (variant,) = self.call(new_method_call(addr, "Get", "ss", (interface, name)))
        return variant[1]

    def subscribe(self) -> None:
        """Ask systemd for job and unit signals; on the bus also add the match rule."""
        if not self.direct:
            rule = MatchRule(
                type="signal",
                sender=_SYSTEMD,
                interface=MANAGER_IFACE,
                member="JobRemoved",
                path=_MANAGER_PATH,
            )
            self.call(message_bus.AddMatch(rule))
        self.manager_call("Subscribe")


def _ping() -> Message:
    """``org.freedesktop.DBus.Peer.Ping`` to systemd (its reply is ignored)."""
    addr = DBusAddress(_MANAGER_PATH, bus_name=_SYSTEMD, interface="org.freedesktop.DBus.Peer")
    return new_method_call(addr, "Ping")


def _job_removed(msg: Message) -> JobResult | None:
    f = msg.header.fields
    if f.get(HeaderFields.member) != "JobRemoved" or f.get(HeaderFields.interface) != MANAGER_IFACE:
        return None
    _id, job, unit, result = msg.body
    return JobResult(str(job), str(unit), str(result))


def _first_that_answers(
    candidates: list[tuple[str, bool]], timeout: float, what: str, hint: str = ""
) -> Connection:
    """A connection on the first of ``candidates`` (socket path, direct) that answers;
    else a :class:`SystemdError` (``NoServer``) naming ``what`` and each place tried."""
    tried: list[str] = []
    for path, direct in candidates:
        if not os.path.exists(path):
            tried.append(f"{path}: missing")
            continue
        try:
            return Connection(path, direct=direct, timeout=timeout)
        except (OSError, SystemdError, ValueError) as e:
            tried.append(f"{path}: {e}")
        except Exception as e:  # jeepney's AuthenticationError and the like
            tried.append(f"{path}: {type(e).__name__}: {e}")
    raise SystemdError(
        "org.freedesktop.DBus.Error.NoServer",
        f"cannot reach {what} (" + "; ".join(tried) + ")" + hint,
        method="connect",
    )


def connect(*, timeout: float = 2.0) -> Connection:
    """Connect to systemd: through the system bus when it is up, else straight to PID 1
    on its private socket (root only). Raises :class:`SystemdError` when neither works."""
    env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    bus = (_address_path(env) if env else None) or SYSTEM_BUS_SOCKET
    return _first_that_answers([(bus, False), (PRIVATE_SOCKET, True)], timeout, "systemd")


# --- the calling user's systemd manager (systemd --user, in user@UID.service) ---------


def user_bus_candidates(
    env: dict[str, str] | None = None, uid: int | None = None
) -> list[tuple[str, bool]]:
    """Where the calling user's systemd manager is reached, in order: (socket path,
    direct). ``$DBUS_SESSION_BUS_ADDRESS`` (a ``unix:path=`` address), else
    ``$XDG_RUNTIME_DIR/bus`` (the user's bus daemon), else the manager's private socket
    ``/run/user/UID/systemd/private`` (``$XDG_RUNTIME_DIR/systemd/private``): a direct
    D-Bus connection without a bus daemon, no ``Hello``, as ``systemctl --user`` uses it.
    """
    e = os.environ if env is None else env
    me = os.geteuid() if uid is None else uid
    out: list[tuple[str, bool]] = []
    session = e.get("DBUS_SESSION_BUS_ADDRESS")
    path = _address_path(session) if session else None
    if path:
        out.append((path, False))
    runtime = e.get("XDG_RUNTIME_DIR") or f"/run/user/{me}"
    out.append((os.path.join(runtime, "bus"), False))
    out.append((os.path.join(runtime, "systemd/private"), True))
    fallback = f"/run/user/{me}/systemd/private"
    if (fallback, True) not in out:
        out.append((fallback, True))
    return out


def connect_user(*, timeout: float = 2.0) -> Connection:
    """Connect to the calling user's systemd manager (:func:`user_bus_candidates`, the
    first that answers). Raises :class:`SystemdError` naming each place tried."""
    return _first_that_answers(
        user_bus_candidates(),
        timeout,
        "the user's systemd manager",
        "; it runs as user@UID.service while the user is logged in, or always with "
        "'loginctl enable-linger USER'",
    )
