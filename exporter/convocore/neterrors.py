"""What failed when a request to the API got no HTTP answer, in words a log reader can act on.

requests wraps urllib3's exceptions, which wrap the socket's and the TLS layer's; the cause is
read from the whole chain. Causes and details are bounded words and exception class names,
never an exception's message: those quote the URL with its query.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

CAUSES: tuple[str, ...] = ("dns", "refused", "tls", "timeout", "reset", "other")

# In order: the first that matches anywhere in the chain decides (a TLS handshake cut by a
# reset is a TLS failure; a refused connection inside a timeout wrapper is refused).
_KINDS: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("dns", (socket.gaierror, urllib3.exceptions.NameResolutionError)),
    ("tls", (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError)),
    ("refused", (ConnectionRefusedError,)),
    (
        "timeout",
        (TimeoutError, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout),
    ),
    ("reset", (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: ``__cause__``, ``__context__``, urllib3's
    ``reason`` and exceptions passed as arguments, outermost first."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        )
        pending.extend(item for item in linked if isinstance(item, BaseException))


def classify(exc: BaseException) -> tuple[str, str]:
    """``(cause, detail)``: one of :data:`CAUSES`, and the class name of the innermost
    exception that shows the cause (with the TLS library's reason code for TLS, such as
    ``CERTIFICATE_VERIFY_FAILED``)."""
    chain = list(_chain(exc))
    cause, shown = "other", chain[-1]
    for name, kinds in _KINDS:
        matching = [e for e in chain if isinstance(e, kinds)]
        if matching:
            cause, shown = name, matching[-1]
            break
    detail = type(shown).__name__
    if isinstance(shown, ssl.SSLError) and isinstance(shown.reason, str) and shown.reason:
        detail += f" ({shown.reason})"
    return cause, detail


def api_host(url: str) -> str:
    """The host of ``url`` as a log shows it: ``host`` or ``host:port``, never user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host
