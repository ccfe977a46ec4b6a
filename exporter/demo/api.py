"""A simulated Convocore v3 API on loopback, for ``--demo`` and the tests' happy path.

It serves the same paths, envelopes and fields as the real API (get-job, the paginated job
list in both styles, a job's scraped pages, the workspace list) with a handful of jobs whose
progress advances with time: two processing, one completed, one failed with a
``resultError``, one cancelled and one queued (the queued one answers in the older shape
without ``status``). They feed two agents: the docs site both, the failed job names its one
agent in the older ``toAgentId`` only, and the queued one feeds none. Each job lists its
scraped and failed pages, oldest first; most pages of the completed help center are empty, as
a JavaScript-rendered site's are.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..web.httpserver import log_request_error
from ..web.stoppable import PromptShutdownMixin
from . import paging

DEMO_WORKSPACE = "ws-demo"
DEMO_TOKEN = "vg_demo_secret_token"  # noqa: S105 - the simulator's own, not a real secret

Answer = tuple[int, dict[str, str], bytes]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _urls(base: str, count: int) -> list[str]:
    return [f"{base}/page-{i}" for i in range(count)]


# Pages per second of the two processing demo jobs, and the pages they start with.
_DOCS_RATE, _DOCS_START = 0.2, 40
_BLOG_RATE, _BLOG_START = 0.1, 10


def _progress(started: float, now: float) -> tuple[int, int]:
    """Pages scraped so far by job-docs and job-blog."""
    elapsed = max(0.0, now - started)
    docs = min(240, _DOCS_START + int(elapsed * _DOCS_RATE))
    blog = min(95, _BLOG_START + int(elapsed * _BLOG_RATE))
    return docs, blog


def _spread(index: int, share: float) -> bool:
    """Picks ``share`` of the indexes, evenly spread."""
    return int((index + 1) * share + 1e-9) > int(index * share + 1e-9)


def page_summaries(
    job_id: str,
    primary: str,
    scraped: int,
    failed: int,
    *,
    first_at: float,
    step: float,
    empty_share: float = 0.0,
) -> list[dict[str, Any]]:
    """A job's pages list, oldest first: ``scraped`` pages and ``failed`` failed ones among
    them, page ``i`` scraped at ``first_at + i * step`` (wall seconds). ``empty_share`` of the
    scraped pages are empty: a title but no text, as a page rendered by JavaScript."""
    total = scraped + failed
    host = primary.split("//", 1)[-1].split("/", 1)[0]
    pages: list[dict[str, Any]] = []
    for i in range(total):
        url = f"{primary}/page-{i}"
        is_failed = failed > 0 and _spread(i, failed / total)
        empty = not is_failed and _spread(i, empty_share)
        markdown = 0 if is_failed or empty else 600 + (i * 7919) % 14_000
        pages.append(
            {
                "id": f"{job_id}-p{i:05d}",
                "url": url,
                "urlHash": hashlib.sha256(url.encode()).hexdigest()[:16],
                "title": None if is_failed else f"{host}: page {i}",
                "description": None if is_failed or empty else f"Page {i} of {host}",
                "scrapedAt": int((first_at + i * step) * 1000),
                "imageUrl": f"{primary}/og/{i}.png" if i % 3 == 0 and not is_failed else None,
                "userId": "user-demo",
                "mdCharCount": markdown,
                "htmlCharCount": 0 if is_failed else 1_400 + markdown * 6,
                "failed": is_failed,
            }
        )
    return pages


def demo_pages(started: float, now: float) -> dict[str, list[dict[str, Any]]]:
    """Each demo job's pages list at wall time ``now``, consistent with :func:`demo_jobs`."""
    docs, blog = _progress(started, now)
    return {
        "job-docs": page_summaries(
            "job-docs",
            "https://docs.example.com",
            docs,
            docs // 20,
            first_at=started - _DOCS_START / _DOCS_RATE,
            step=1 / _DOCS_RATE / 1.05,
            empty_share=0.02,
        ),
        "job-blog": page_summaries(
            "job-blog",
            "https://blog.example.com",
            blog,
            0,
            first_at=started - _BLOG_START / _BLOG_RATE,
            step=1 / _BLOG_RATE,
        ),
        # A help center rendered in the browser: most pages have no text.
        "job-help": page_summaries(
            "job-help",
            "https://help.example.com",
            120,
            3,
            first_at=started - 3500,
            step=20,
            empty_share=0.75,
        ),
        "job-legacy": page_summaries(
            "job-legacy", "https://legacy.example.com", 12, 30, first_at=started - 3000, step=30
        ),
        "job-pricing": page_summaries(
            "job-pricing", "https://example.com/pricing", 5, 0, first_at=started - 2000, step=60
        ),
        "job-careers": [],
    }


def default_pages(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A pages list that fits a job given without one: its scraped and failed pages."""

    def count(name: str) -> int:
        value = job.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return 0
        return int(min(value, 10_000))

    primary = job.get("primaryUrl")
    return page_summaries(
        str(job.get("id", "job")),
        primary if isinstance(primary, str) else "https://example.com",
        count("scrapedPagesNum"),
        count("failedPagesNum"),
        first_at=1_796_040_000.0,
        step=60.0,
    )


def demo_jobs(started: float, now: float) -> dict[str, dict[str, Any]]:
    """The demo workspace's jobs as the API would answer them at wall time ``now``."""
    docs_scraped, blog_scraped = _progress(started, now)

    def job(job_id: str, primary: str, **fields: Any) -> dict[str, Any]:
        scraped = fields.get("scrapedPagesNum", 0)
        body: dict[str, Any] = {
            "id": job_id,
            "workspaceId": DEMO_WORKSPACE,
            "status": "processing",
            "primaryUrl": primary,
            "urls": [primary],
            "crawl": True,
            "crawlOptions": {
                "maxPages": fields.get("pageLimit", 250),
                "urlMatchers": [],
                "unMatchers": [],
                "stayOnDomain": True,
            },
            "useProxy": False,
            "deep": False,
            "refreshRate": "never",
            "toAgentId": "agent-support",
            "toAgentIds": ["agent-support"],
            "done": False,
            "failed": False,
            "isCancelled": False,
            "message": None,
            "resultError": None,
            "createdAt": _iso(started - 3600),
            "ts": int(now * 1000),
            "currentPageIndex": scraped,
            "failedPagesNum": 0,
            "pageLimit": 250,
            "creditsPerPage": 1,
            "activeScrapeUrl": None,
            "crawlerJobId": f"crawler-{job_id}",
            "scrapedUrls": _urls(primary, scraped),
            "scrapedHashes": [f"{i:08x}" for i in range(scraped)],
            "pendingCandidateUrls": [],
            "processedCrawlUrls": _urls(primary, scraped),
            "failedCrawlUrls": [],
            "webhookFinalizedAt": None,
            "processingMode": "standard",
            "crawlerSubmittedAt": _iso(started - 3500),
            "crawlerWebhookUrl": None,
            "crawlerSubmissionEndpoint": None,
            "webhook": None,
        }
        body.update(fields)
        body["estimatedCredits"] = fields.get(
            "estimatedCredits", body["pageLimit"] * body["creditsPerPage"]
        )
        return body

    finished_ts = int((started - 600) * 1000)
    jobs = [
        job(
            "job-docs",
            "https://docs.example.com",
            scrapedPagesNum=docs_scraped,
            failedPagesNum=docs_scraped // 20,
            failedCrawlUrls=_urls("https://docs.example.com/broken", docs_scraped // 20),
            pendingCandidateUrls=_urls("https://docs.example.com/next", 250 - docs_scraped),
            currentPageIndex=docs_scraped + docs_scraped // 20,
            activeScrapeUrl=f"https://docs.example.com/page-{docs_scraped}",
            refreshRate="24h",
            toAgentIds=["agent-support", "agent-sales"],
            webhook={
                "url": "https://hooks.example.com/crawler",
                "events": ["job_completed", "job_failed"],
                "hasSecret": True,
                "hasBearerToken": False,
                "headerKeys": [],
            },
        ),
        job(
            "job-blog",
            "https://blog.example.com",
            deep=True,
            creditsPerPage=10,
            pageLimit=100,
            scrapedPagesNum=blog_scraped,
            currentPageIndex=blog_scraped,
            pendingCandidateUrls=_urls("https://blog.example.com/next", 100 - blog_scraped),
            activeScrapeUrl=f"https://blog.example.com/page-{blog_scraped}",
            processingMode="deep",
            toAgentId="agent-sales",
            toAgentIds=["agent-sales"],
        ),
        job(
            "job-help",
            "https://help.example.com",
            status="completed",
            done=True,
            scrapedPagesNum=120,
            failedPagesNum=3,
            pageLimit=120,
            estimatedCredits=120,
            ts=finished_ts,
            webhookFinalizedAt=_iso(started - 600),
            refreshRate="7d",
        ),
        job(
            "job-legacy",
            "https://legacy.example.com",
            status="failed",
            failed=True,
            done=True,
            scrapedPagesNum=12,
            failedPagesNum=30,
            failedCrawlUrls=_urls("https://legacy.example.com/x", 30),
            message="Crawl failed",
            resultError=(
                "Crawl aborted after 30 failed pages: https://legacy.example.com/x-0 answered "
                "HTTP 403 Forbidden (blocked by the site's firewall)"
            ),
            estimatedCredits=12,
            ts=finished_ts,
        ),
        job(
            "job-pricing",
            "https://example.com/pricing",
            status="cancelled",
            isCancelled=True,
            toAgentId="agent-sales",
            toAgentIds=["agent-sales"],
            scrapedPagesNum=5,
            estimatedCredits=5,
            ts=finished_ts,
        ),
        job(
            "job-careers",
            "https://careers.example.com",
            scrapedPagesNum=0,
            currentPageIndex=0,
            scrapedUrls=[],
            processedCrawlUrls=[],
            scrapedHashes=[],
            processingMode=None,
            toAgentId=None,
            toAgentIds=[],
        ),
    ]
    del jobs[-1]["status"]  # the older answer shape: state derived from the flags
    del jobs[3]["toAgentIds"]  # an older answer naming its one agent in toAgentId only
    return {j["id"]: j for j in jobs}


DEMO_NAMES = {
    "job-docs": "docs-site",
    "job-blog": "blog",
    "job-help": "help-center",
    "job-legacy": "legacy-wiki",
    "job-pricing": "pricing-page",
    "job-careers": "careers",
}

# What a list item lacks compared with a get-job answer (see the API notes).
LIST_ITEM_OMITS = frozenset(
    {
        "scrapedUrls",
        "scrapedHashes",
        "pendingCandidateUrls",
        "processedCrawlUrls",
        "failedCrawlUrls",
        "webhookFinalizedAt",
        "processingMode",
        "crawlerSubmittedAt",
        "crawlerWebhookUrl",
        "crawlerSubmissionEndpoint",
    }
)


def _json(status: int, document: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def _error(status: int, code: str, message: str) -> Answer:
    return _json(status, {"message": message, "code": code, "issues": [{"message": message}]})


class DemoApi:
    """The simulated API's logic, independent of any socket.

    ``jobs`` maps workspace id to a function of wall time giving that workspace's jobs; the
    default is the demo workspace. ``pages`` does the same for the jobs' pages lists; a job
    without one lists :func:`default_pages`. ``pagination`` is the shape of the job list
    (:data:`exporter.demo.paging.STYLES`), ``pages_pagination`` that of the pages lists.
    """

    def __init__(
        self,
        token: str = DEMO_TOKEN,
        *,
        clock: Callable[[], float] = time.time,
        jobs: dict[str, Callable[[float], dict[str, dict[str, Any]]]] | None = None,
        pages: dict[str, Callable[[float], dict[str, list[Any]]]] | None = None,
        pagination: paging.Style = "page",
    ) -> None:
        self.token = token
        self.clock = clock
        started = clock()
        self.jobs = jobs or {DEMO_WORKSPACE: lambda now: demo_jobs(started, now)}
        if pages is None and jobs is None:
            pages = {DEMO_WORKSPACE: lambda now: demo_pages(started, now)}
        self.pages = pages or {}
        self.pagination = pagination
        self.pages_pagination: paging.Style = "page"
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def answer(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        with self._lock:
            self.requests.append(target)
        if method != "GET":
            return _error(405, "METHOD_NOT_SUPPORTED", "only GET is served here")
        if headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "UNAUTHORIZED", "invalid or missing workspace secret")
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if parts[:1] != ["v3"]:
            return _error(404, "NOT_FOUND", "no such route")
        parts = parts[1:]
        if parts == ["workspaces"]:
            return _json(
                200,
                {
                    "success": True,
                    "message": "ok",
                    "data": [{"id": ws, "name": ws} for ws in self.jobs],
                },
            )
        if (
            len(parts) in (4, 5, 6)
            and parts[0] == "workspaces"
            and parts[2:4] == ["crawler", "jobs"]
            and parts[5:] in ([], ["pages"])
        ):
            source = self.jobs.get(parts[1])
            if source is None:
                return _error(404, "NOT_FOUND", "workspace not found")
            now = self.clock()
            jobs = source(now)
            if len(parts) >= 5:
                job = jobs.get(parts[4])
                if job is None:
                    return _error(404, "NOT_FOUND", "crawler job not found")
                if len(parts) == 6:
                    return self._pages(parts[1], parts[4], job, now, query)
                return _json(200, {"success": True, "message": "ok", "data": job})
            return self._list(list(jobs.values()), query)
        return _error(404, "NOT_FOUND", "no such route")

    def _pages(
        self, ws: str, job_id: str, job: dict[str, Any], now: float, query: dict[str, str]
    ) -> Answer:
        source = self.pages.get(ws)
        listed = source(now).get(job_id) if source is not None else None
        try:
            answer = paging.document(
                default_pages(job) if listed is None else listed,
                query,
                self.pages_pagination,
                key="pages",
            )
        except ValueError:
            return _error(400, "BAD_REQUEST", "page, cursor and limit are numbers")
        return _json(200, answer)

    def _list(self, jobs: list[dict[str, Any]], query: dict[str, str]) -> Answer:
        items = [{k: v for k, v in j.items() if k not in LIST_ITEM_OMITS} for j in jobs]
        try:
            answer = paging.document(items, query, self.pagination)
        except ValueError:
            return _error(400, "BAD_REQUEST", "page, cursor and limit are numbers")
        return _json(200, answer)


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status, headers, body = self.server.api.answer(
            "GET", self.path, {k.lower(): v for k, v in self.headers.items()}
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DemoServer(PromptShutdownMixin, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: DemoApi, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The exporter hangs up on a request it no longer needs (a stop, a reload): no
        # traceback on stderr for that.
        log_request_error(client_address)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v3"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="demo-api", daemon=True)
        thread.start()
        return thread


def demo_config_yaml(base_url: str) -> str:
    """The exporter config that ``--demo`` runs with."""
    jobs = "\n".join(
        f"      - id: {job_id}\n        name: {name}" for job_id, name in DEMO_NAMES.items()
    )
    return (
        f"api:\n  base_url: {base_url}\n  timeout_seconds: 5\n  min_refresh_interval: 1s\n"
        f"workspaces:\n  - id: {DEMO_WORKSPACE}\n    token: ${{CONVOCORE_DEMO_TOKEN}}\n"
        f"    page_stats: true\n    page_stats_interval: 10s\n"
        f"    jobs:\n{jobs}\n"
    )
