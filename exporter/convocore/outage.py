"""The outage backoff of the API host: when every recent request failed, stop sending a full
round of requests per scrape.

- **normal**: every request is sent. Requests that get no usable answer from the host (refused
  or reset connections, 5xx answers such as a proxy's HTML 502, timeouts) are counted; any
  other answer (a job, a 404, a 429 ...) resets the count. :data:`THRESHOLD` of them in a row
  start a backoff.
- **backoff**: no request is sent; each is answered at once with the reason of the failures
  (``server_error``, ``connection``, ``timeout``). The pause doubles with each backoff in a
  row, from :data:`BASE_SECONDS` to at most :data:`MAX_SECONDS`, with jitter (as the 429
  backoff of a workspace).
- **probing**: after the pause, :data:`PROBES` requests go out. Each success lets two more
  go (the next round is twice as large, as TCP's slow start), and requests wait for their turn
  within their deadline; a failure starts the next, longer backoff. Once as many requests as
  ``api.max_concurrency`` have succeeded, it is back to normal.

One instance per API origin (a config reload for the same origin keeps it).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

log = logging.getLogger("exporter.client")

THRESHOLD = 10
BASE_SECONDS = 1.0
MAX_SECONDS = 30.0
PROBES = 2
STATES: tuple[str, ...] = ("normal", "backoff", "probing")
# Failures that say the host itself is not answering, rather than answering no.
OUTAGE_REASONS = frozenset({"connection", "server_error", "timeout"})


def is_outage(reason: str | None, cause: str | None) -> bool:
    """Whether a request's result counts towards an outage: no usable answer from the host
    (a request cut at the scrape's deadline while waiting for one counts, as a timeout)."""
    return reason in OUTAGE_REASONS or (reason == "deadline" and cause == "timeout")


class OutageBackoff:
    """Thread-safe; :meth:`admit` before each request, :meth:`settle` after it."""

    def __init__(
        self,
        host: str,
        full: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.host = host
        self.full = max(full, PROBES)
        self._clock = clock
        self._jitter = jitter
        self._cond = threading.Condition()
        self.state = "normal"
        self.reason = "connection"  # of the failures behind the backoff
        self.until = 0.0  # clock time the backoff ends
        self.wall_until = 0.0
        self._failures = 0  # outage failures in a row (normal)
        self._strikes = 0  # backoffs in a row
        self._slots = 0  # requests that may still go out (probing)
        self._succeeded = 0  # successes since probing began
        self._epoch = 0  # bumped on every change of state; a request belongs to one
        self._since = 0.0  # when the backoff began, for the log
        self._closed = False

    def current(self) -> str:
        """The state as a metric shows it: a backoff whose pause is over is probing (its next
        request is a probe)."""
        with self._cond:
            if self.state == "backoff" and self._clock() >= self.until:
                return "probing"
            return self.state

    def admit(self, deadline: float) -> tuple[int, str | None]:
        """``(ticket, None)`` when the request may go (waiting for a turn while probing, until
        ``deadline``, a ``time.monotonic()`` value), else ``(ticket, reason)``."""
        with self._cond:
            while True:
                if self._closed:
                    return self._epoch, "connection"
                if self.state == "backoff":
                    if self._clock() < self.until:
                        return self._epoch, self.reason
                    self._enter("probing")
                    self._slots, self._succeeded = PROBES, 0
                if self.state == "normal":
                    return self._epoch, None
                if self._slots > 0:
                    self._slots -= 1
                    return self._epoch, None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._epoch, self.reason
                self._cond.wait(remaining)

    def close(self) -> None:
        """The exporter is stopping: requests waiting for a turn give up at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def settle(self, ticket: int, reason: str | None, cause: str | None) -> None:
        """Note how an admitted request went (``reason`` None: a usable answer)."""
        failed = is_outage(reason, cause)
        with self._cond:
            if ticket != self._epoch:
                return  # sent before the last change of state: it says nothing of the new one
            if reason == "deadline" and cause is None:
                # Never sent (no time was left): it says nothing; its turn goes to another.
                if self.state == "probing":
                    self._slots += 1
                    self._cond.notify()
                return
            if self.state == "normal":
                self._failures = self._failures + 1 if failed else 0
                if self._failures >= THRESHOLD:
                    self._back_off(reason or "connection")
            elif self.state == "probing":
                if failed:
                    self._back_off(reason or "connection")
                else:
                    self._slots += 2
                    self._succeeded += 1
                    if self._succeeded >= self.full:
                        self._recovered()
                    self._cond.notify_all()

    def _enter(self, state: str) -> None:
        self.state = state
        self._epoch += 1
        self._cond.notify_all()

    def _back_off(self, reason: str) -> None:
        first = self._strikes == 0
        delay = min(MAX_SECONDS, BASE_SECONDS * 2**self._strikes) * (0.5 + self._jitter())
        self._strikes += 1
        self.reason = reason
        self.until = self._clock() + delay
        self.wall_until = time.time() + delay
        self._enter("backoff")
        if first:
            self._since = self._clock()
            log.warning(
                "the API host is failing; requests are held back, a few probes at growing "
                "intervals",
                extra={"host": self.host, "reason": self.reason, "failures": THRESHOLD},
            )

    def _recovered(self) -> None:
        held = self._clock() - self._since
        self._strikes = self._failures = 0
        self._enter("normal")
        log.info(
            "the API host answers again; requests are sent again",
            extra={"host": self.host, "held_seconds": round(held, 1)},
        )
