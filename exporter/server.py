"""The exporter's HTTP endpoints.

``/`` landing page, ``/metrics``, ``/probe`` (one job), ``/sd`` (Prometheus HTTP service
discovery), ``/-/healthy``, ``/-/ready`` and ``POST /-/reload``. Each scrape builds its
output fresh, within a deadline taken from Prometheus's
``X-Prometheus-Scrape-Timeout-Seconds`` header minus an offset.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import __version__
from .collect import Exporter
from .config import is_identifier
from .exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Family,
    iter_exposition,
    wants_openmetrics,
)
from .webconfig import WWW_AUTHENTICATE, TLSThreadingHTTPServer

log = logging.getLogger(__name__)

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
_MIN_DEADLINE = 0.1
_STREAM_CHUNK = 256 * 1024


@dataclass
class ServerOptions:
    default_timeout: float = 10.0
    timeout_offset: float = 0.5
    reload: Callable[[], str | None] | None = None
    """Re-reads the config; returns an error message, or None on success."""


class Handler(BaseHTTPRequestHandler):
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

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        accept_encoding = self.headers.get("Accept-Encoding", "")
        if len(body) > 1024 and "gzip" in accept_encoding.lower():
            body = gzip.compress(body, compresslevel=1)
            headers = {**(headers or {}), "Content-Encoding": "gzip"}
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for name, value in self.server.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _deadline(self) -> float:
        options = self.server.options
        timeout = options.default_timeout
        header = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
        if header:
            try:
                value = float(header)
            except ValueError:
                value = 0.0
            if 0 < value < 3600:
                timeout = value
        return time.monotonic() + max(_MIN_DEADLINE, timeout - options.timeout_offset)

    def _authorized(self) -> bool:
        check = self.server.authenticate
        if check is None or check(self.headers.get("Authorization")):
            return True
        self._send(
            401,
            b"Unauthorized\n",
            headers={"WWW-Authenticate": WWW_AUTHENTICATE},
        )
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path in ("/-/healthy", "/-/ready"):
            # Open without credentials, so orchestrator probes need none: they reveal
            # nothing and never call upstream.
            self._send(200, b"Healthy\n" if path == "/-/healthy" else b"Ready\n")
            return
        if not self._authorized():
            return
        if path == "/metrics":
            self._metrics(parse_qs(url.query))
        elif path == "/probe":
            self._probe(parse_qs(url.query))
        elif path == "/sd":
            self._sd()
        elif path == "/":
            self._send(200, self._landing(), "text/html; charset=utf-8")
        elif path == "/-/reload":
            self._send(405, b"Use POST to reload the config.\n", headers={"Allow": "POST"})
        else:
            self._send(404, b"Not found\n")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/-/reload":
            self._send(405, b"Method not allowed\n", headers={"Allow": "GET"})
            return
        if not self._authorized():
            return
        reload = self.server.options.reload
        if reload is None:
            self._send(400, b"This exporter has no config file to reload.\n")
            return
        error = reload()
        if error is None:
            self._send(200, b"Config reloaded.\n")
        else:
            self._send(
                500, f"Reload failed, the last good config keeps serving: {error}\n".encode()
            )

    def do_PUT(self) -> None:
        self.do_POST()

    def _write(self, families: list[Family]) -> None:
        """Stream the exposition with chunked encoding (whole, for HTTP/1.0 clients), so a
        large scrape is never held in memory at once."""
        openmetrics = wants_openmetrics(self.headers.get("Accept"))
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        pieces = iter_exposition(families, openmetrics)
        if self.request_version != "HTTP/1.1":
            self._send(200, b"".join(pieces), content_type)
            return
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "").lower()
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzipped else None
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        if compressor is not None:
            self.send_header("Content-Encoding", "gzip")
        for name, value in self.server.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        buffer: list[bytes] = []
        size = 0
        for piece in pieces:
            data = piece if compressor is None else compressor.compress(piece)
            buffer.append(data)
            size += len(data)
            if size >= _STREAM_CHUNK:
                self._chunk(b"".join(buffer))
                buffer, size = [], 0
        if compressor is not None:
            buffer.append(compressor.flush())
        self._chunk(b"".join(buffer))
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))

    def _metrics(self, query: dict[str, list[str]]) -> None:
        jobs = query.get("jobs", ["true"])[-1].lower() not in ("false", "0", "no")
        self._write(self.server.exporter.collect(self._deadline(), jobs=jobs))

    def _probe(self, query: dict[str, list[str]]) -> None:
        ids: list[str] = []
        for name in ("workspace_id", "job_id"):
            values = query.get(name, [])
            if len(values) != 1 or not is_identifier(values[0]):
                self._send(
                    400, f"Parameter {name} must be given once, a plain identifier.\n".encode()
                )
                return
            ids.append(values[0])
        workspace_id, job_id = ids
        result = self.server.exporter.probe(self._deadline(), workspace_id, job_id)
        if isinstance(result, str):
            self._send(404, f"Unknown probe target: {result}.\n".encode())
            return
        self._write(result)

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
        self._send(200, json.dumps(groups).encode(), "application/json")

    def _landing(self) -> bytes:
        config = self.server.exporter.config
        rows = []
        for ws in config.workspaces:
            jobs = ", ".join(
                html.escape(job.id + (f" ({job.name})" if job.name else "")) for job in ws.jobs
            )
            if ws.discover:
                jobs = (jobs + "; " if jobs else "") + "discovers the workspace's jobs"
            rows.append(f"<tr><td>{html.escape(ws.id)}</td><td>{jobs}</td></tr>")
        page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Convocore crawler exporter</title></head>
<body>
<h1>Convocore crawler exporter</h1>
<p>Version {html.escape(__version__)}. API: {html.escape(config.api.base_url)}</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="sd">Service discovery targets</a></li>
<li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li>
</ul>
<h2>Configured targets</h2>
<table><tr><th>Workspace</th><th>Jobs</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
        return page.encode()


class ExporterServer(TLSThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        exporter: Exporter,
        options: ServerOptions | None = None,
        authenticate: Callable[[str | None], bool] | None = None,
        extra_headers: dict[str, str] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.exporter = exporter
        self.options = options or ServerOptions()
        self.authenticate = authenticate
        self.extra_headers = extra_headers or {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler, ssl_context=ssl_context)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{shown}:{port}"

    def start(self, poll_interval: float = 0.5) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, args=(poll_interval,), name="http", daemon=True
        )
        thread.start()
        return thread
