"""A threading HTTP server that does each TLS handshake in the connection's own thread, and
never prints a traceback: a failed connection is one structured log line."""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .settings import WebHolder

log = logging.getLogger(__name__)

DEFAULT_HANDSHAKE_TIMEOUT = 10.0


class TLSThreadingHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that does each TLS handshake in the connection's own thread.

    The accepting thread never waits on a client: a client that connects and never completes
    its handshake occupies only its own thread, and only for ``handshake_timeout`` seconds in
    all. The TLS context, the client certificate check and the rate limit are read from the
    ``web`` holder for every new connection or request, so a reload may replace them; with no
    TLS context the server speaks plain HTTP.
    """

    def __init__(
        self,
        server_address: tuple[str, int] | tuple[str, int, int, int],
        request_handler_class: Callable[[Any, Any, Any], BaseHTTPRequestHandler],
        *,
        web: WebHolder | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        bind_and_activate: bool = True,
    ) -> None:
        if handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive")
        self.web = web or WebHolder()
        self.handshake_timeout = handshake_timeout
        super().__init__(server_address, request_handler_class, bind_and_activate)

    def refusal(self, connection: Any) -> tuple[int, bytes] | None:
        """The answer to a request this server refuses before any route, or None.

        In the exporter-toolkit's order: a client certificate without an allowed name (403),
        then the rate limit (429).
        """
        settings = self.web.current
        if settings.client_allowed is not None and not settings.client_allowed(connection):
            return 403, b"Forbidden\n"
        if settings.limiter is not None and not settings.limiter.allow():
            return 429, b"Too Many Requests\n"
        return None

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        context = self.web.current.ssl_context
        if context is None:
            super().process_request_thread(request, client_address)
            return
        try:
            connection = _server_handshake(request, context, self.handshake_timeout)
        except (OSError, ValueError) as err:
            log.debug(
                "TLS handshake failed", extra={"client": _host(client_address), "error": str(err)}
            )
            self.shutdown_request(request)
            return
        super().process_request_thread(connection, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log_request_error(client_address)


def log_request_error(client_address: Any) -> None:
    """One log line instead of socketserver's traceback on stderr, for the exception being
    handled (a server's ``handle_error``).

    A client that goes away (a reset, a broken pipe, a TLS alert, a timeout) is routine: a
    debug line. Anything else is a fault of the server, logged as an error, still without
    a traceback that could carry request data into the logs.
    """
    err = sys.exc_info()[1]
    client = _host(client_address)
    if isinstance(err, OSError):
        log.debug(
            "client connection failed",
            extra={"client": client, "error": type(err).__name__, "detail": _reason(err)},
        )
        return
    log.error(
        "request failed",
        extra={
            "client": client,
            "error": type(err).__name__ if err is not None else "unknown",
            "detail": str(err) if err is not None else "",
        },
    )


def _reason(err: OSError) -> str:
    if isinstance(err, ssl.SSLError) and err.reason:
        return str(err.reason)
    return err.strerror or str(err)


def _server_handshake(
    sock: socket.socket, context: ssl.SSLContext, timeout: float
) -> ssl.SSLSocket:
    """Wrap an accepted socket and complete the handshake within ``timeout`` seconds in all."""
    previous_timeout = sock.gettimeout()
    conn = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        conn.setblocking(False)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            while True:
                try:
                    conn.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    events = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    events = selectors.EVENT_WRITE
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no TLS handshake within {timeout:g}s")
                selector.register(conn, events)
                ready = selector.select(remaining)
                selector.unregister(conn)
                if not ready:
                    raise TimeoutError(f"no TLS handshake within {timeout:g}s")
        conn.settimeout(previous_timeout)
    except ssl.SSLError as err:
        if err.reason == "HTTP_REQUEST":
            _answer_plain_http(conn)
        conn.close()
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _answer_plain_http(conn: ssl.SSLSocket) -> None:
    """Tell a client that spoke plain HTTP to the TLS port what went wrong, as Go servers do."""
    body = b"Client sent an HTTP request to an HTTPS server.\n"
    head = (
        b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.socket(fileno=conn.detach()) as raw:
        try:
            raw.settimeout(1.0)
            raw.sendall(head + body)
        except OSError:
            pass


def _host(client_address: Any) -> str:
    if isinstance(client_address, tuple) and client_address:
        return str(client_address[0])
    return str(client_address)
