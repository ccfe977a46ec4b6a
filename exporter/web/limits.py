"""What a connection may cost: the request head read within a time limit, idle keep-alive
connections closed, and a cap on the requests served at once.

- ``--web.read-header-timeout``: a request's line and headers must arrive within this, from
  the connection's start (after the TLS handshake, which has its own limit) or, on a kept-alive
  connection, from the first byte of the request. Past it the connection is closed, with
  ``408 Request Timeout`` when part of a head had come. The limit is on the whole head, not
  on each read: a client trickling a byte at a time is cut at the same moment.
- ``--web.idle-timeout``: a kept-alive connection waits this long for its next request, and
  an answer waits this long for the client to take each part of it; then the connection is
  closed.
- ``--web.max-requests``: at most this many requests are served at once; one more is answered
  ``503 Service Unavailable`` at once, and its connection closed. ``/-/healthy`` and
  ``/-/ready`` are never refused (an orchestrator's probes must not fail because the exporter
  is busy).

A value of 0 turns the limit off.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

DEFAULT_READ_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_MAX_REQUESTS = 40
ALWAYS_SERVED = frozenset({"/-/healthy", "/-/ready"})


@dataclass(frozen=True)
class Limits:
    read_header_timeout: float = DEFAULT_READ_HEADER_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_requests: int = DEFAULT_MAX_REQUESTS


class Slots:
    """The requests being served at once, up to ``cap`` (0: no cap)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.busy = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.cap and self.busy >= self.cap:
                return False
            self.busy += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.busy -= 1


class _DeadlineReader(io.RawIOBase):
    """The connection's reading side, failing with ``TimeoutError`` once ``deadline`` (a
    ``time.monotonic()`` value, or None for no limit) has passed, however the bytes trickle."""

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock = sock
        self.timeout = timeout  # for each read when there is no deadline
        self.deadline: float | None = None
        self.received = 0  # bytes read since the deadline was set

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self.sock.settimeout(self.timeout)
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request head not read in time")
            self.sock.settimeout(remaining)
        count = self.sock.recv_into(buffer)
        self.received += count
        return count


_TIMEOUT_BODY = b"Request Timeout: the request head did not arrive in time.\n"
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class LimitedHandler(BaseHTTPRequestHandler):
    """A request handler that keeps to :class:`Limits`; the server supplies them through
    :meth:`limits`."""

    def limits(self) -> tuple[Limits, Slots]:
        raise NotImplementedError

    def refuse_busy(self) -> None:
        """Answer a request beyond ``max_requests`` (the connection is closed after)."""
        raise NotImplementedError

    def setup(self) -> None:
        super().setup()
        limits, _ = self.limits()
        self._reader = _DeadlineReader(self.connection, limits.idle_timeout or None)
        self.rfile.close()  # the base class's reader, replaced
        self._buffered = io.BufferedReader(self._reader)
        self.rfile = self._buffered
        self._requests = 0
        self._slot = False

    def handle_one_request(self) -> None:
        limits, slots = self.limits()
        reader = self._reader
        if self._requests and not self._next_request_came(limits.idle_timeout):
            self.close_connection = True
            return
        self._requests += 1
        reader.received = 0
        reader.deadline = (
            time.monotonic() + limits.read_header_timeout if limits.read_header_timeout else None
        )
        try:
            super().handle_one_request()
        finally:
            if self._slot:
                self._slot = False
                slots.give_back()
        if reader.deadline is not None and reader.deadline <= time.monotonic():
            # The head did not come in time (the base class closes the connection).
            self.close_connection = True
            if reader.received:
                self._answer_timeout()
        reader.deadline = None

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        limits, slots = self.limits()
        self._reader.deadline = None  # the head is in; the answer's writes wait idle_timeout
        self.connection.settimeout(limits.idle_timeout or None)
        if urlsplit(self.path).path in ALWAYS_SERVED:
            return True
        if not slots.take():
            self.close_connection = True
            self.refuse_busy()
            return False
        self._slot = True
        return True

    def _next_request_came(self, idle_timeout: float) -> bool:
        """Wait for the first byte of the next request on a kept-alive connection."""
        self._reader.deadline = time.monotonic() + idle_timeout if idle_timeout else None
        try:
            return bool(self._buffered.peek(1))
        except OSError:  # TimeoutError included: idle for too long
            return False
        finally:
            self._reader.deadline = None

    def _answer_timeout(self) -> None:
        try:
            self.connection.settimeout(1.0)
            self.connection.sendall(_TIMEOUT_ANSWER)
        except OSError:
            pass
