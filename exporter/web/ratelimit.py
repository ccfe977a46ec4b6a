"""``rate_limit``: a token bucket in front of every request, as in the exporter-toolkit.

The bucket holds up to ``burst`` tokens and starts full; one token comes back every
``interval``. Each request takes one token, or is answered ``429 Too Many Requests`` when
there is none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    interval: float  # seconds between two tokens; 0 turns the limit off
    burst: int  # the bucket's size


class TokenBucket:
    """A thread-safe token bucket; ``clock`` is monotonic seconds."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        if limit.interval <= 0:
            raise ValueError("interval must be positive")
        self.limit = limit
        self._clock = clock
        self._tokens = float(max(limit.burst, 0))
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take a token if there is one."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._last = now
            burst = max(self.limit.burst, 0)
            self._tokens = min(float(burst), self._tokens + elapsed / self.limit.interval)
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
