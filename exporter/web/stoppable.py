"""A ``socketserver`` loop that stops at once when asked, instead of at its next poll.

``socketserver.BaseServer.serve_forever`` notices ``shutdown()`` only when its ``select``
times out (every ``poll_interval``, 0.5 s by default), so stopping a server costs up to half a
second, per server. Here the loop also waits on one end of a socket pair; ``shutdown()``
writes to the other end, which wakes it immediately.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Any


class PromptShutdownMixin:
    """Mix in before a ``socketserver`` server class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_write.setblocking(False)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        super().__init__(*args, **kwargs)

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until :meth:`shutdown`. ``poll_interval`` is accepted for compatibility and
        only bounds how often ``service_actions`` runs."""
        server: Any = self
        handle = server._handle_request_noblock
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(server, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is server and not self._stopping.is_set():
                            handle()
                    server.service_actions()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it has returned (prompt, not polled)."""
        self._stopping.set()
        # A full buffer means the loop is already being woken; closed means it is gone.
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()  # type: ignore[misc]
        self._wake_read.close()
        self._wake_write.close()
