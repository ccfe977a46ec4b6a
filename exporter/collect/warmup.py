"""The first read: right after start-up, and after a reload that brings jobs never read, the
exporter reads them once in the background, so the landing page shows real states within
seconds and Prometheus's first scrape is served from memory.

It costs the API nothing a scrape would not: it is the reading of a scrape
(:meth:`Exporter.read_unread`), with the scrape deadline, the shared in-flight fetches and the
backoffs, limited to what no scrape has read yet. A scrape that comes while it runs shares its
fetches; one that comes after it, within ``api.min_refresh_interval``, asks the API nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .exporter import Exporter

log = logging.getLogger("exporter.collect")


class WarmUp:
    """Owns the background first reads of one exporter: at most one runs at a time, and a
    request made while one runs is served by one more run after it."""

    def __init__(self, exporter: Exporter, deadline: Callable[[], float]) -> None:
        """``deadline`` gives a scrape's deadline (a ``time.monotonic()`` value) from now."""
        self._exporter = exporter
        self._deadline = deadline
        self._lock = threading.Lock()
        self._due: str | None = None  # the trigger of the run asked for and not yet begun
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def start(self, trigger: str) -> None:
        """Read what was never read, in the background (``trigger`` is logged: start-up,
        reload)."""
        with self._lock:
            self._due = trigger
            self._idle.clear()
            if self._thread is not None:
                return  # the running thread takes it up when its run ends
            self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)
            self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Whether every run asked for has ended within ``timeout`` seconds (for tests)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                trigger = self._due
                self._due = None
                if trigger is None:
                    self._thread = None
                    self._idle.set()
                    return
            started = time.monotonic()
            try:
                jobs = self._exporter.read_unread(self._deadline())
            except Exception:  # the scrapes read these jobs anyway: log and carry on
                log.exception("first read failed", extra={"trigger": trigger})
                continue
            (log.info if jobs else log.debug)(
                "first read done",
                extra={
                    "trigger": trigger,
                    "jobs": jobs,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
