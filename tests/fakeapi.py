"""A programmable stand-in for Convocore on loopback.

By default it answers like the real API from a dict of jobs per workspace (the same logic as
the demo simulator). Tests replace the answer for one path with a :class:`Fault` to play a
broken, slow, rate-limited or lying upstream: any status, headers and body, a delay before
answering, a body trickled byte by byte, a connection reset mid-body, or no answer at all.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.demo.api import DemoApi

TOKEN = "vg_test_secret_0123456789abcdef"


@dataclass
class Fault:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between body bytes
    head_trickle: float = 0.0  # seconds between bytes of the status line, headers and body
    reset_after: int | None = None  # bytes of body sent before an RST
    hang: bool = False  # accept, read the request, never answer
    times: int | None = None  # answer like this this many times, then normally
    length: bool = True  # send Content-Length; else the body ends when the connection closes

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "message": "ok", "data": data}


class FakeConvocore(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, jobs: dict[str, dict[str, dict[str, Any]]] | None = None, **kw: Any):
        self.jobs: dict[str, dict[str, dict[str, Any]]] = jobs if jobs is not None else {}
        self.api = DemoApi(
            TOKEN,
            jobs={ws: self._source(ws) for ws in self.jobs} if jobs is not None else None,
            **kw,
        )
        self.page_lists: dict[str, dict[str, list[Any]]] = {}
        self.faults: dict[str, Fault] = {}
        self.chaos: Callable[[str], Fault | None] | None = None
        """Asked for a fault for each request that has none set (the target, with its query)."""
        self.tokens: set[str] = set()
        """Secrets accepted besides the API's own (``api.token``): a rotation under way."""
        self.log: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.latency = 0.0
        """Seconds every request waits before it is answered (a slow API)."""
        self.answering = 0
        self.peak = 0
        """The most requests being answered at once."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and aborted writes are what these tests play

    def _source(self, ws: str) -> Callable[[float], dict[str, dict[str, Any]]]:
        return lambda _now: self.jobs.get(ws, {})

    def set_jobs(self, ws: str, jobs: dict[str, dict[str, Any]]) -> None:
        self.jobs[ws] = jobs
        self.api.jobs[ws] = self._source(ws)

    def set_pages(self, ws: str, job: str, pages: list[Any]) -> None:
        """The job's pages list from now on (else one fitting its scraped and failed pages)."""
        self.page_lists.setdefault(ws, {})[job] = pages
        self.api.pages[ws] = lambda _now: self.page_lists.get(ws, {})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v3"

    def job_path(self, ws: str, job: str) -> str:
        return f"/v3/workspaces/{ws}/crawler/jobs/{job}"

    def pages_path(self, ws: str, job: str) -> str:
        return self.job_path(ws, job) + "/pages"

    def pages_requests(self, ws: str, job: str) -> list[str]:
        """The ``page`` parameter of each pages request for the job, in order."""
        path = self.pages_path(ws, job)
        with self.lock:
            targets = [urlsplit(target) for target, _ in self.log]
        return [parse_qs(url.query).get("page", ["?"])[-1] for url in targets if url.path == path]

    def fail(self, path: str, fault: Fault) -> None:
        with self.lock:
            self.faults[path] = fault

    def paths(self) -> list[str]:
        with self.lock:
            return [urlsplit(target).path for target, _ in self.log]

    def queries(self, path: str) -> list[str]:
        """The query string of each request for ``path``, in order."""
        with self.lock:
            targets = [urlsplit(target) for target, _ in self.log]
        return [url.query for url in targets if url.path == path]

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths() if p == path)

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeConvocore
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.answering += 1
            self.server.peak = max(self.server.peak, self.server.answering)
        try:
            if self.server.latency and self.server.release.wait(self.server.latency):
                return
            self._answer()
        finally:
            with self.server.lock:
                self.server.answering -= 1

    def _answer(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.log.append((self.path, headers))
            fault = self.server.faults.get(path)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.server.faults[path]
        chaos = self.server.chaos
        if fault is None and chaos is not None:
            fault = chaos(self.path)
        if fault is None:
            if headers.get("authorization", "").removeprefix("Bearer ") in self.server.tokens:
                headers["authorization"] = f"Bearer {self.server.api.token}"
            status, extra, body = self.server.api.answer("GET", self.path, headers)
            fault = Fault(status=status, body=body, headers=extra)
        self._play(fault)

    def _play(self, fault: Fault) -> None:
        if fault.hang:
            self.server.release.wait(60)
            self.close_connection = True
            return
        if fault.delay and self.server.release.wait(fault.delay):
            return
        body = fault.payload()
        if fault.head_trickle:
            self._trickle_all(fault, body)
            return
        self.send_response(fault.status)
        headers = {"Content-Type": "application/json", **fault.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if not fault.length:
            self.send_header("Connection", "close")
            self.close_connection = True
        elif "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault.reset_after is not None:
            self.wfile.write(body[: fault.reset_after])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault.trickle:
            for i in range(len(body)):
                if self.server.release.wait(fault.trickle):
                    return
                try:
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return
            return
        try:
            self.wfile.write(body)
        except OSError:
            return

    def _trickle_all(self, fault: Fault, body: bytes) -> None:
        head = [f"HTTP/1.1 {fault.status} Whatever"]
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        head += [f"{name}: {value}" for name, value in {**headers, **fault.headers}.items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.close_connection = True
        for i in range(len(raw)):
            if self.server.release.wait(fault.head_trickle):
                return
            try:
                self.wfile.write(raw[i : i + 1])
            except OSError:
                return


def full_job(job_id: str = "job-abc", workspace_id: str = "ws-123", **over: Any) -> dict[str, Any]:
    """A realistic get-job ``data`` object with every documented field set."""
    job: dict[str, Any] = {
        "id": job_id,
        "workspaceId": workspace_id,
        "status": "processing",
        "primaryUrl": "https://docs.example.com",
        "urls": ["https://docs.example.com", "https://docs.example.com/guide"],
        "crawl": True,
        "crawlOptions": {
            "maxPages": 250,
            "urlMatchers": ["/docs/*"],
            "unMatchers": [],
            "stayOnDomain": True,
        },
        "useProxy": True,
        "deep": False,
        "refreshRate": "24h",
        "toAgentId": "agent-1",
        "toAgentIds": ["agent-1"],
        "done": False,
        "failed": False,
        "isCancelled": False,
        "message": "Crawling",
        "resultError": None,
        "createdAt": "2026-11-01T10:00:00Z",
        "ts": 1796040000123,
        "currentPageIndex": 43,
        "scrapedPagesNum": 40,
        "failedPagesNum": 3,
        "pageLimit": 200,
        "creditsPerPage": 1,
        "estimatedCredits": 200,
        "activeScrapeUrl": "https://docs.example.com/page-43",
        "crawlerJobId": "crawler-1",
        "scrapedUrls": [f"https://docs.example.com/p{i}" for i in range(40)],
        "scrapedHashes": [f"h{i}" for i in range(40)],
        "pendingCandidateUrls": [f"https://docs.example.com/n{i}" for i in range(17)],
        "processedCrawlUrls": [f"https://docs.example.com/p{i}" for i in range(43)],
        "failedCrawlUrls": ["https://docs.example.com/x1", "https://docs.example.com/x2", "x3"],
        "webhookFinalizedAt": None,
        "processingMode": "standard",
        "crawlerSubmittedAt": "2026-11-01T10:00:05.500+00:00",
        "crawlerWebhookUrl": None,
        "crawlerSubmissionEndpoint": None,
        "webhook": {
            "url": "https://hooks.example.com/x",
            "events": ["job_completed"],
            "hasSecret": True,
            "hasBearerToken": False,
            "headerKeys": [],
        },
    }
    job.update(over)
    return job
