"""A hard stop for each upstream request attempt.

Socket timeouts bound each ``recv()``, not a whole answer: a server that trickles its status
line and headers a byte at a time would hold a worker thread in ``http.client`` for as long as
it likes. Here one thread keeps the deadlines of all attempts in flight and shuts down the
socket of any attempt that outlives its own. A request thread arms a :class:`Guard`, names it
with :func:`guard_this_thread`, and the connections of :class:`WatchedAdapter` attach their
socket to it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

import requests.adapters
import urllib3.connection
import urllib3.connectionpool


class Guard:
    """One attempt's hard stop: the socket it reads from is shut down when time is up."""

    __slots__ = ("_lock", "_sock", "active", "at", "fired")

    def __init__(self, at: float) -> None:
        self.at = at
        self.active = True
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.active:
                return
            if self.fired:
                _shut(sock)
            else:
                self._sock = sock

    def expire(self) -> None:
        with self._lock:
            if not self.active:
                return
            self.fired = True
            sock, self._sock = self._sock, None
        if sock is not None:
            _shut(sock)

    def disarm(self) -> None:
        with self._lock:
            self.active = False
            self._sock = None


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS sockets: it wakes a thread blocked in recv()
    # on that socket without touching the TLS object that thread is using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """The one thread that shuts down the sockets of attempts that outlive their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, at: float) -> Guard:
        guard = Guard(at)
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._seq), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="upstream-watchdog", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is guard:
                self._cond.notify()
        return guard

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, guard = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            guard.expire()


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


def arm(at: float) -> Guard:
    """A guard that shuts down the socket attached to it at ``at`` (``time.monotonic()``)."""
    return _WATCHDOG.arm(at)


def guard_this_thread(guard: Guard | None) -> None:
    """The guard the connections of this thread's next request attach their socket to."""
    _CURRENT.guard = guard


def _watch(sock: socket.socket | None) -> None:
    guard: Guard | None = getattr(_CURRENT, "guard", None)
    if guard is not None and sock is not None:
        guard.attach(sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections put their socket under the current attempt's guard."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The connections made through an HTTP proxy (``HTTP_PROXY``, ``HTTPS_PROXY``) are
        watched too; a SOCKS proxy's have classes of their own and are not."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
