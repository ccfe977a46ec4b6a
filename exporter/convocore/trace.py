"""What one ``/probe?debug=true`` did upstream, for the plain-text report.

A :class:`ProbeTrace` is handed down with one probe; the client records every HTTP attempt
in it and the fetch path notes why it did not ask the API (fresh data in memory, a backoff,
a fetch already under way). It never holds a secret: the token travels in a header the trace
does not see, and URLs are recorded without user info.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class Attempt:
    url: str
    status: str
    """The HTTP status code, or ``error`` when no answer came."""
    seconds: float
    reason: str | None
    """None for a usable answer, else the exporter's reason (``not_found`` ...)."""
    detail: str


def safe_url(url: str, params: dict[str, str] | None = None) -> str:
    """``url`` (with ``params``) without user info, for showing."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = parts.query
    if params:
        query = "&".join(q for q in (query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class ProbeTrace:
    """Filled from the fetching thread, read by the request's thread (hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Attempt | str] = []

    def attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self._events.append(attempt)

    def note(self, text: str) -> None:
        with self._lock:
            self._events.append(text)

    def events(self) -> list[Attempt | str]:
        """Attempts and notes, in the order they happened."""
        with self._lock:
            return list(self._events)
