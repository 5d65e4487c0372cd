"""The exporter's HTTP server: one event loop for every connection, one thread for scrapes.

``http.server.ThreadingHTTPServer`` gives each connection a thread and no timeout: idle
or slow clients pin threads, memory and descriptors until ``accept()`` fails for
everyone. This server is built so that no client can starve the others:

* One thread (the caller of :meth:`HTTPServer.serve_forever`) does all socket I/O with
  ``selectors`` (epoll), non-blocking; one more thread takes the scrapes. Two threads,
  whatever the number of connections.
* At most ``max_connections`` connections. A new one past the cap closes the connection
  idle the longest (no request in progress), or is itself closed when every connection
  is busy. ``accept()`` failing for lack of descriptors does the same, and pauses
  accepting briefly rather than spinning.
* Timeouts: a request must be complete ``read_timeout`` seconds after its first byte;
  a kept-alive connection without a request for ``idle_timeout`` is closed; a response
  the client does not read from for ``write_timeout`` is dropped. Headers are at most
  8 KiB.
* Requests for ``/metrics`` that arrive while a scrape runs share it: one sample, each
  body (text or OpenMetrics, plain or gzip) written once and sent to every waiting
  client from the same ``bytes`` (a slow client holds a reference, not a copy).
* ``gzip`` when the request's ``Accept-Encoding`` allows it (Prometheus asks for it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ._exposition import OPENMETRICS_TYPE, TEXT_TYPE, qvalues, wants_openmetrics
from .errors import CgroupError

__all__ = ["HTTPServer", "accepts_gzip"]


class _Bodies(Protocol):
    """One sample's bodies (:class:`cgroup2.exporter.Scrape`)."""

    def body(self, openmetrics: bool = False, gzip: bool = False) -> bytes: ...
    def drop_metrics(self) -> None: ...


class _Source(Protocol):
    """What the server needs of an :class:`~cgroup2.exporter.Exporter`: a scrape on
    demand, and a place for the server's own values (its connection counts)."""

    extra: Callable[[], Mapping[str, float | Mapping[str, float]]] | None

    def take(self) -> _Bodies: ...


_MAX_HEAD = 8192
_INDEX = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
_READ, _WAIT, _WRITE = 0, 1, 2


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` with q > 0,
    and no ``gzip;q=0``)."""
    if not header:
        return False
    star = False
    for coding, q in qvalues(header):
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


class _Conn:
    """One client connection: its input, the response being sent, its phase and times."""

    __slots__ = ("addr", "head", "inbuf", "keep", "last", "out", "since", "sock", "state")

    def __init__(self, sock: socket.socket, addr: str, now: float) -> None:
        self.sock = sock
        self.addr = addr
        self.inbuf = bytearray()
        self.out: list[memoryview] = []
        self.state = _READ
        self.since = now  # start of this phase (idle, or the first byte of a request)
        self.last = now  # last progress of a response
        self.keep = True
        self.head = False  # a HEAD request: no body sent


class HTTPServer:
    """``GET /metrics`` (and ``HEAD``) for an :class:`~cgroup2.exporter.Exporter`: see
    the module's docstring. :meth:`serve_forever` runs until :meth:`shutdown`;
    :meth:`server_close` releases every descriptor."""

    def __init__(
        self,
        exporter: _Source,
        host: str,
        port: int,
        *,
        verbose: bool = False,
        max_connections: int = 512,
        read_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        write_timeout: float = 30.0,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {max_connections}")
        self.exporter = exporter
        self.verbose = verbose
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(min(max_connections, 4096))
            self.socket.setblocking(False)
        except BaseException:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._conns: dict[int, _Conn] = {}
        self._stop = False
        self._paused_until = 0.0  # accept() paused (out of descriptors) until then
        # the scrape thread: requests wait in _waiting (sequence number, connection,
        # openmetrics, gzip); a round samples once and answers those that came before
        # its sample ended
        self._lock = threading.Lock()
        self._job = threading.Event()
        self._seq = 0
        self._waiting: list[tuple[int, _Conn, bool, bool]] = []
        self._results: list[tuple[int, dict[tuple[bool, bool], bytes], str | None, float]] = []
        self._running = False
        self._worker: threading.Thread | None = None
        #: counts, for the exporter's own metrics
        self.closed: dict[str, int] = {
            "idle_timeout": 0,
            "read_timeout": 0,
            "write_timeout": 0,
            "evicted": 0,
            "refused": 0,
            "bad_request": 0,
        }
        exporter.extra = self._own

    # -- the exporter's own metrics --------------------------------------------------------

    def _own(self) -> Mapping[str, float | Mapping[str, float]]:
        return {
            "cgroup2_exporter_connections": len(self._conns),
            "cgroup2_exporter_connections_closed_total": dict(self.closed),
        }

    # -- the loop --------------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown` (from another thread or a signal handler)."""
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="cgroup2-scrape", daemon=True)
        self._worker.start()
        sel = self._sel
        sel.register(self.socket, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        tick = min(poll_interval, 0.5)
        last_sweep = time.monotonic()
        try:
            while not self._stop:
                for key, mask in sel.select(tick):
                    conn = key.data
                    if conn is None:
                        if key.fileobj is self.socket:
                            self._accept()
                        else:
                            self._wakeup()
                    elif mask & selectors.EVENT_READ:
                        self._readable(conn)
                    elif mask & selectors.EVENT_WRITE:
                        self._writable(conn)
                now = time.monotonic()
                if now - last_sweep >= tick:
                    last_sweep = now
                    self._sweep(now)
        finally:
            for obj in (self.socket, self._wake_r):
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(obj)
            self._job.set()  # the scrape thread sees _stop and ends

    def shutdown(self) -> None:
        """Make :meth:`serve_forever` return (soon: within its poll interval)."""
        self._stop = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")

    def server_close(self) -> None:
        """Close the listening socket and every connection."""
        self._stop = True
        self._job.set()
        for conn in list(self._conns.values()):
            self._close(conn, None)
        self.socket.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(5)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        self._sel.close()

    # -- connections -----------------------------------------------------------------------

    def _accept(self) -> None:
        now = time.monotonic()
        if now < self._paused_until:
            return
        for _ in range(64):
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # out of descriptors: make room by closing the longest-idle client;
                    # with none, stop accepting for a moment (never spin on the error)
                    if not self._evict():
                        self._paused_until = now + 0.25
                        self._sel.unregister(self.socket)
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                raise
            if len(self._conns) >= self.max_connections and not self._evict():
                self.closed["refused"] += 1
                sock.close()
                continue
            sock.setblocking(False)
            where = addr[0] if isinstance(addr, tuple) else str(addr)
            conn = _Conn(sock, where, now)
            self._conns[sock.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _evict(self) -> bool:
        """Close the connection idle the longest (waiting for a request); False if none."""
        oldest: _Conn | None = None
        for conn in self._conns.values():
            if conn.state == _READ and (oldest is None or conn.since < oldest.since):
                oldest = conn
        if oldest is None:
            return False
        self._close(oldest, "evicted")
        return True

    def _close(self, conn: _Conn, why: str | None) -> None:
        if why is not None:
            self.closed[why] += 1
        fd = conn.sock.fileno()
        if fd >= 0:
            self._conns.pop(fd, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn.sock)
        conn.sock.close()
        conn.out = []
        conn.state = -1

    def _sweep(self, now: float) -> None:
        """Close the connections past their timeout; accept again after a pause."""
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            self._sel.register(self.socket, selectors.EVENT_READ, None)
        for conn in list(self._conns.values()):
            if conn.state == _READ:
                if conn.inbuf:
                    if now - conn.since > self.read_timeout:
                        self._close(conn, "read_timeout")
                elif now - conn.since > self.idle_timeout:
                    self._close(conn, "idle_timeout")
            elif conn.state == _WRITE and now - conn.last > self.write_timeout:
                self._close(conn, "write_timeout")

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn, None)
            return
        if not data:
            self._close(conn, None)
            return
        if not conn.inbuf:
            conn.since = time.monotonic()  # the first byte of a request: read_timeout
        conn.inbuf += data
        self._parse(conn)

    def _parse(self, conn: _Conn) -> None:
        end = conn.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.inbuf) > _MAX_HEAD:
                self._error(conn, 431, "request header too large")
            return
        head = bytes(conn.inbuf[:end]).decode("latin-1")
        del conn.inbuf[: end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._error(conn, 400, "bad request line")
            return
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._error(conn, 400, "bad header line")
                return
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        conn.keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            conn.keep = False  # a body we do not read: no second request on this connection
        conn.head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            self._respond(conn, 405, "text/plain; charset=utf-8", b"GET or HEAD\n", allow=True)
            return
        path = target.split("?", 1)[0]
        if path == "/":
            self._respond(conn, 200, "text/html; charset=utf-8", _INDEX)
        elif path == "/metrics":
            om = wants_openmetrics(headers.get("accept"))
            gz = accepts_gzip(headers.get("accept-encoding"))
            self._wait_for_scrape(conn, om, gz)
        else:
            self._respond(conn, 404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

    def _error(self, conn: _Conn, status: int, why: str) -> None:
        self.closed["bad_request"] += 1
        conn.keep = False
        self._respond(conn, status, "text/plain; charset=utf-8", f"{why}\n".encode())

    def _respond(
        self,
        conn: _Conn,
        status: int,
        ctype: str,
        body: bytes,
        *,
        gzip: bool = False,
        allow: bool = False,
    ) -> None:
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            431: "Request Header Fields Too Large",
            500: "Internal Server Error",
        }[status]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
        ]
        if gzip:
            lines.append("Content-Encoding: gzip")
        if status == 200 and ctype != "text/html; charset=utf-8":
            lines.append("Vary: Accept, Accept-Encoding")
        if allow:
            lines.append("Allow: GET, HEAD")
        if not conn.keep:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.out = [memoryview(head)]
        if body and not conn.head:
            conn.out.append(memoryview(body))
        conn.state = _WRITE
        conn.last = time.monotonic()
        self._sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._writable(conn)

    def _writable(self, conn: _Conn) -> None:
        while conn.out:
            try:
                n = conn.sock.send(conn.out[0])
            except BlockingIOError:
                return
            except OSError:
                self._close(conn, None)
                return
            conn.last = time.monotonic()
            if n == len(conn.out[0]):
                conn.out.pop(0)
            else:
                conn.out[0] = conn.out[0][n:]
                return
        if conn.state != _WRITE:
            return
        if not conn.keep:
            self._close(conn, None)
            return
        conn.state = _READ
        conn.since = time.monotonic()
        self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
        if conn.inbuf:  # a request sent before this response ended
            self._parse(conn)

    # -- scrapes ---------------------------------------------------------------------------

    def _wait_for_scrape(self, conn: _Conn, om: bool, gz: bool) -> None:
        conn.state = _WAIT
        self._sel.unregister(conn.sock)  # nothing to read or write until the scrape ends
        with self._lock:
            self._seq += 1
            self._waiting.append((self._seq, conn, om, gz))
            if not self._running:
                self._running = True
                self._job.set()

    def _work(self) -> None:
        """The scrape thread: one round per request for a job; answers go to the loop."""
        while True:
            self._job.wait()
            self._job.clear()
            if self._stop:
                return
            t0 = time.perf_counter()
            scrape: _Bodies | None = None
            error = None
            try:
                scrape = self.exporter.take()
            except CgroupError as e:
                error = f"{e}\n"
            except Exception as e:
                error = f"cgroup2: export: scrape failed: {type(e).__name__}: {e}\n"
            with self._lock:
                cut = self._seq
                wants = {(om, gz) for seq, _, om, gz in self._waiting if seq <= cut}
            bodies: dict[tuple[bool, bool], bytes] = {}
            if scrape is not None:
                try:
                    for om, gz in sorted(wants):
                        bodies[om, gz] = scrape.body(om, gz)
                except Exception as e:
                    error = f"cgroup2: export: scrape failed: {type(e).__name__}: {e}\n"
                scrape.drop_metrics()
            took = time.perf_counter() - t0
            with self._lock:
                self._results.append((cut, bodies, error, took))
            try:
                os.write(self._wake_w, b"r")
            except OSError:
                return

    def _wakeup(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            results, self._results = self._results, []
        for cut, bodies, error, took in results:
            with self._lock:
                mine = [w for w in self._waiting if w[0] <= cut]
                self._waiting = [w for w in self._waiting if w[0] > cut]
                self._running = bool(self._waiting)
                if self._running:
                    self._job.set()
            for _, conn, om, gz in mine:
                if conn.state != _WAIT:
                    continue  # closed meanwhile
                self._conns_register(conn)
                if error is not None:
                    self._respond(conn, 500, "text/plain; charset=utf-8", error.encode())
                    continue
                body = bodies[om, gz]
                ctype = OPENMETRICS_TYPE if om else TEXT_TYPE
                self._respond(conn, 200, ctype, body, gzip=gz)
                if self.verbose:
                    fmt = "openmetrics" if om else "text"
                    enc = ", gzip" if gz else ""
                    sys.stderr.write(f"scrape: {fmt}{enc}, {len(body)} bytes, {took:.3f} s\n")

    def _conns_register(self, conn: _Conn) -> None:
        self._sel.register(conn.sock, selectors.EVENT_WRITE, conn)
