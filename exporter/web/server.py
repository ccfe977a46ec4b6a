"""The exporter's HTTP endpoints.

``/`` landing page, ``/metrics``, ``/probe`` (one job), ``/sd`` (Prometheus HTTP service
discovery), ``/-/healthy``, ``/-/ready`` and ``POST /-/reload``. Each scrape builds its
output fresh, within a deadline taken from Prometheus's
``X-Prometheus-Scrape-Timeout-Seconds`` header minus an offset.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .. import __version__
from ..collect import Exporter, ProbeRefused
from ..config import is_identifier
from ..convocore.trace import ProbeTrace
from ..exposition.negotiation import accepts_gzip, wants_openmetrics
from ..exposition.writer import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Family,
    iter_exposition,
)
from .auth import WWW_AUTHENTICATE
from .debug import probe_report
from .httpserver import TLSThreadingHTTPServer
from .landing import FAVICON, landing_page, refresh_seconds
from .limits import LimitedHandler, Limits, Slots
from .settings import WebHolder
from .stoppable import PromptShutdownMixin

# Named as before the package was regrouped, so that log filters keep working.
log = logging.getLogger("exporter.server")

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
_MIN_DEADLINE = 0.1
_STREAM_CHUNK = 256 * 1024


def scrape_deadline(
    default_timeout: float, offset: float, timeout_header: str | None = None
) -> float:
    """The ``time.monotonic()`` by which a scrape must be answered: Prometheus's
    ``X-Prometheus-Scrape-Timeout-Seconds`` (``default_timeout`` when it is missing or not a
    number of seconds from 0 to an hour) minus ``offset``, and never less than 0.1 s away."""
    timeout = default_timeout
    if timeout_header:
        try:
            value = float(timeout_header)
        except ValueError:
            value = 0.0
        if 0 < value < 3600:
            timeout = value
    return time.monotonic() + max(_MIN_DEADLINE, timeout - offset)


@dataclass
class ServerOptions:
    default_timeout: float = 10.0
    timeout_offset: float = 0.5
    reload: Callable[[], str | None] | None = None
    """Re-reads the config; returns an error message, or None on success. None: there is
    nothing to re-read (``--demo``)."""
    lifecycle: bool = False
    """Whether ``POST /-/reload`` is allowed (``--web.enable-lifecycle``)."""
    telemetry_path: str = "/metrics"
    demo: bool = False
    limits: Limits = field(default_factory=Limits)
    """``--web.read-header-timeout``, ``--web.idle-timeout``, ``--web.max-requests``."""


class Handler(LimitedHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = f"convocore-crawler-exporter/{__version__}"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    # Headers and body leave in two writes. With Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (about 40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http request", extra={"client": self.client_address[0], "line": format % args})

    def limits(self) -> tuple[Limits, Slots]:
        return self.server.options.limits, self.server.slots

    def refuse_busy(self) -> None:
        cap = self.server.options.limits.max_requests
        text = f"Too many requests at once (--web.max-requests {cap}); try again later.\n"
        self._respond(503, text.encode(), headers={"Connection": "close"})

    def _respond(
        self,
        status: int,
        body: bytes | Iterable[bytes],
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The one way every route answers: status, headers, gzip and framing.

        ``bytes`` go out whole with a ``Content-Length`` (gzipped above 1 KiB when the client
        accepts it). An iterable of pieces (an exposition) is streamed with chunked encoding
        and gzipped on the fly, so a large scrape is never held in memory at once; HTTP/1.0
        clients, which know no chunking, get it joined.
        """
        gzipped = accepts_gzip(self.headers.get("Accept-Encoding"))
        if not isinstance(body, bytes) and self.request_version != "HTTP/1.1":
            try:
                body = b"".join(body)
            except Exception as exc:
                self._failed(exc, "answered 500")
                self.close_connection = True
                status, body = 500, b"The exposition failed; see the exporter's log.\n"
                content_type = "text/plain; charset=utf-8"
        if isinstance(body, bytes):
            gzipped = gzipped and len(body) > 1024
            if gzipped:
                body = gzip.compress(body, compresslevel=1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for name, value in self.server.web.current.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzipped else None
        buffer: list[bytes] = []
        size = 0
        pieces = iter(body)
        while True:
            try:
                piece = next(pieces, None)
            except Exception as exc:
                # The status line is out: only an unfinished body can tell the client. Without
                # the terminating chunk it sees a truncated answer (Prometheus: a failed
                # scrape), never a complete-looking one with families missing.
                self._failed(exc, "connection aborted")
                self.close_connection = True
                return
            if piece is None:
                break
            data = piece if compressor is None else compressor.compress(piece)
            buffer.append(data)
            size += len(data)
            if size >= _STREAM_CHUNK:
                self._chunk(buffer[0] if len(buffer) == 1 else b"".join(buffer))
                buffer, size = [], 0
        if compressor is not None:
            buffer.append(compressor.flush())
        self._chunk(b"".join(buffer))
        self.wfile.write(b"0\r\n\r\n")

    def _failed(self, exc: Exception, action: str) -> None:
        log.error(
            "cannot write the exposition",
            extra={
                "path": urlsplit(self.path).path,
                "action": action,
                "error": type(exc).__name__,
                "detail": str(exc),
            },
        )

    def _chunk(self, data: bytes) -> None:
        if len(data) >= _STREAM_CHUNK:  # a large piece as it is, not copied into a frame
            self.wfile.write(b"%x\r\n" % len(data))
            self.wfile.write(data)
            self.wfile.write(b"\r\n")
        elif data:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))

    def _deadline(self) -> float:
        options = self.server.options
        return scrape_deadline(
            options.default_timeout,
            options.timeout_offset,
            self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
        )

    def _admitted(self) -> bool:
        """False (and answered) when the server refuses the request before any route: a
        client certificate without an allowed name (403), or the rate limit (429)."""
        refusal = self.server.refusal(self.connection)
        if refusal is not None:
            self.close_connection = refusal[0] == 403
            self._respond(*refusal)
        return refusal is None

    def _authorized(self) -> bool:
        check = self.server.web.current.authenticate
        if check is None or check(self.headers.get("Authorization")):
            return True
        self._respond(401, b"Unauthorized\n", headers={"WWW-Authenticate": WWW_AUTHENTICATE})
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._admitted():
            return
        url = urlsplit(self.path)
        path = url.path
        if path in ("/-/healthy", "/-/ready"):
            # Open without credentials, so orchestrator probes need none: they reveal
            # nothing and never call upstream.
            self._respond(200, b"Healthy\n" if path == "/-/healthy" else b"Ready\n")
            return
        if not self._authorized():
            return
        if path == self.server.options.telemetry_path:
            self._metrics(parse_qs(url.query))
        elif path == "/probe":
            self._probe(parse_qs(url.query))
        elif path == "/sd":
            self._sd()
        elif path == "/":
            refresh = refresh_seconds(parse_qs(url.query).get("refresh", []))
            self._respond(200, self._landing(refresh), "text/html; charset=utf-8")
        elif path == "/favicon.ico":
            self._respond(200, FAVICON, "image/svg+xml")
        elif path == "/-/reload":
            self._respond(405, b"Use POST to reload the config.\n", headers={"Allow": "POST"})
        else:
            self._respond(404, b"Not found\n")

    def do_POST(self) -> None:
        if not self._admitted():
            return
        if urlsplit(self.path).path != "/-/reload":
            self._respond(405, b"Method not allowed\n", headers={"Allow": "GET"})
            return
        if not self._authorized():
            return
        options = self.server.options
        if not options.lifecycle:
            self._respond(
                403,
                b"Lifecycle API is not enabled: start the exporter with --web.enable-lifecycle "
                b"to reload over HTTP, or send it SIGHUP.\n",
            )
            return
        if options.reload is None:
            self._respond(400, b"Running with --demo: there is no config file to re-read.\n")
            return
        error = options.reload()
        if error is None:
            self._respond(200, b"Config reloaded.\n")
        else:
            self._respond(
                500, f"Reload failed, the last good config keeps serving: {error}\n".encode()
            )

    def do_PUT(self) -> None:
        self.do_POST()

    def _write(self, families: list[Family]) -> None:
        openmetrics = wants_openmetrics(self.headers.get("Accept"))
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        self._respond(200, iter_exposition(families, openmetrics), content_type)

    def _metrics(self, query: dict[str, list[str]]) -> None:
        jobs = query.get("jobs", ["true"])[-1].lower() not in ("false", "0", "no")
        self._write(self.server.exporter.collect(self._deadline(), jobs=jobs).families)

    def _probe(self, query: dict[str, list[str]]) -> None:
        ids: list[str] = []
        for name in ("workspace_id", "job_id"):
            values = query.get(name, [])
            if len(values) != 1 or not is_identifier(values[0]):
                self._respond(
                    400, f"Parameter {name} must be given once, a plain identifier.\n".encode()
                )
                return
            ids.append(values[0])
        workspace_id, job_id = ids
        debug = query.get("debug", ["false"])[-1].lower() in ("true", "1", "yes")
        trace = ProbeTrace() if debug else None
        started = time.monotonic()
        deadline = self._deadline()
        result = self.server.exporter.probe(deadline, workspace_id, job_id, trace)
        if isinstance(result, ProbeRefused):
            self._respond(result.status, f"Unknown probe target: {result.message}.\n".encode())
        elif trace is not None:
            report = probe_report(
                workspace_id,
                job_id,
                trace,
                result,
                seconds=time.monotonic() - started,
                budget=deadline - started,
            )
            self._respond(200, report)
        else:
            self._write(result.families)

    def _sd(self) -> None:
        host = self.headers.get("Host", "")
        if not _HOST.fullmatch(host):
            bound_host, port = self.server.server_address[:2]
            host = f"{bound_host!s}:{port}"
        groups = [
            {
                "targets": [host],
                "labels": {
                    "__param_workspace_id": target.workspace.id,
                    "__param_job_id": target.job_id,
                    "__meta_convocore_workspace_id": target.workspace.id,
                    "__meta_convocore_job_id": target.job_id,
                    "__meta_convocore_job_name": target.name,
                },
            }
            for target in self.server.exporter.targets(self._deadline())
        ]
        self._respond(200, json.dumps(groups).encode(), "application/json")

    def _landing(self, refresh: int) -> bytes:
        options = self.server.options
        return landing_page(self.server.exporter, options.telemetry_path, options.demo, refresh)


class ExporterServer(PromptShutdownMixin, TLSThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        exporter: Exporter,
        options: ServerOptions | None = None,
        web: WebHolder | None = None,
        slots: Slots | None = None,
    ) -> None:
        """``slots``: the requests served at once, shared by every listener of one process."""
        self.exporter = exporter
        self.options = options or ServerOptions()
        self.slots = slots or Slots(self.options.limits.max_requests)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler, web=web)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        scheme = "https" if self.web.tls else "http"
        return f"{scheme}://{shown}:{port}"

    def start(self, poll_interval: float | None = None) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, args=(poll_interval,), name="http", daemon=True
        )
        thread.start()
        return thread
