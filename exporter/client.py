"""HTTP access to the Convocore v3 API: GET only, bounded in time and size.

Every call returns an :class:`ApiResult` instead of raising: either the envelope's ``data``
or one of the bounded failure reasons of :data:`exporter.metrics.REASONS`. The workspace
secret travels only in the ``Authorization`` header to the configured API origin; redirects
are followed by hand, and only within that origin.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.adapters
from requests.auth import AuthBase

from . import __version__
from .config import ApiConfig, Secret
from .neterrors import api_host, classify
from .trace import Attempt, ProbeTrace, safe_url
from .watchdog import Guard, WatchedAdapter, arm, guard_this_thread

log = logging.getLogger(__name__)

USER_AGENT = f"convocore-crawler-exporter/{__version__}"
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
_QUICK_RETRY_DELAY = 0.1
_MAX_RETRY_AFTER = 24 * 3600.0
# Beyond an attempt's own deadline, so that socket timeouts and the between-chunk checks,
# which give the precise reason, normally come first.
_WATCHDOG_GRACE = 0.05
_NO_RETRY = {
    "rate_limited": "(no Retry-After that fits before the deadline)",
    "connection": "(no time left before the deadline)",
    "server_error": "(no time left before the deadline)",
}
LIST_PAGE_LIMIT = 100
MAX_LIST_PAGES = 200
PAGES_LIMIT = 100


@dataclass(frozen=True, slots=True)
class ApiResult:
    """The outcome of one API call, after retries."""

    data: Any = None
    reason: str | None = None
    detail: str = ""
    retry_after: float | None = None
    cause: str | None = None
    """Set when no usable HTTP answer came: one of :data:`exporter.neterrors.CAUSES`
    (``dns``, ``refused`` ...), for the logs; never a label value."""

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class PagesBatch:
    """One answer of a job's scraped-pages list: the summaries and where they sit in it."""

    page: int  # 1-based, as asked and answered
    page_size: int  # the answer's pageSize, else the limit asked
    total: int | None  # the answer's total, when it is a whole number
    items: list[Any]  # the summaries as listed (not all need be objects)

    @property
    def first_index(self) -> int:
        """Position of ``items[0]`` in the whole list, from 0."""
        return (self.page - 1) * self.page_size

    @property
    def last(self) -> bool:
        """Whether the list ends with this answer."""
        if not self.items:
            return True
        if self.total is not None:
            return self.page * self.page_size >= self.total
        return len(self.items) < self.page_size


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Bearer(AuthBase):
    """Sets the Authorization header; also stops requests from consulting ~/.netrc."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._token.reveal()
        return request

    def __repr__(self) -> str:
        return "_Bearer(<redacted>)"


class RequestObserver(Protocol):
    """Where the client reports each HTTP request it makes (the exporter's own metrics)."""

    def observe_request(self, workspace_id: str, code: str, seconds: float) -> None: ...


def reason_for_status(status: int) -> str:
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "bad_request"
    if status >= 500:
        return "server_error"
    return "invalid_response"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return min(max(moment.timestamp() - wall, 0.0), _MAX_RETRY_AFTER)


def _same_origin(a: str, b: str) -> bool:
    left, right = urlsplit(a), urlsplit(b)
    return (left.scheme, left.hostname, left.port) == (right.scheme, right.hostname, right.port)


class ConvocoreClient:
    """One pooled connection set to the API, shared by every workspace and thread."""

    def __init__(self, api: ApiConfig, observer: RequestObserver) -> None:
        self.api = api
        self.observer = observer
        self.host = api_host(api.base_url)
        self._in_flight: set[Guard] = set()
        self._in_flight_lock = threading.Lock()
        self._aborted = False
        self._session = requests.Session()
        adapter = WatchedAdapter(
            pool_connections=4, pool_maxsize=max(api.max_concurrency, 4), max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # requests reads the proxy and CA-bundle variables of the environment on every call
        # (a walk over all of os.environ, a quarter of a request's CPU time). Every call goes
        # to the one API origin, so read them once here; a config reload builds a new client.
        settings = self._session.merge_environment_settings(api.base_url, {}, None, None, None)
        self._proxies = dict(settings["proxies"])
        verify = settings["verify"]
        self._verify: bool | str = True if verify is None else verify
        self._session.trust_env = False

    def close(self, *, abort: bool = False) -> None:
        """Release the connection pool. ``abort`` also cuts the requests in flight, and
        refuses new ones, so that a process stopping need not wait for a slow API (the
        interpreter joins the worker threads on exit)."""
        if abort:
            with self._in_flight_lock:
                self._aborted = True
                guards = list(self._in_flight)
            for guard in guards:
                guard.expire()
        self._session.close()

    def job_url(self, workspace_id: str, job_id: str) -> str:
        return (
            f"{self.api.base_url}/workspaces/{quote(workspace_id, safe='')}"
            f"/crawler/jobs/{quote(job_id, safe='')}"
        )

    def jobs_url(self, workspace_id: str) -> str:
        return f"{self.api.base_url}/workspaces/{quote(workspace_id, safe='')}/crawler/jobs"

    def pages_url(self, workspace_id: str, job_id: str) -> str:
        return self.job_url(workspace_id, job_id) + "/pages"

    def get_job(
        self,
        workspace_id: str,
        token: Secret,
        job_id: str,
        deadline: float,
        trace: ProbeTrace | None = None,
    ) -> ApiResult:
        """The ``data`` object of one job, validated to be an object for that job."""
        url = self.job_url(workspace_id, job_id)
        result = _object_data(self.get(workspace_id, token, url, None, deadline, trace=trace))
        if not result.ok:
            return result
        answered_id = result.data.get("id")
        if isinstance(answered_id, str) and answered_id != job_id:
            return ApiResult(reason="invalid_response", detail="answer is for another job")
        return result

    def list_jobs(self, workspace_id: str, token: Secret, deadline: float) -> ApiResult:
        """Every job of the workspace, following either pagination style the API speaks.

        ``data`` is the list of raw job items (objects with a string ``id``). Cursor style
        (``nextCursor``/``hasMore``) is followed while the answer has a new cursor; page style
        (``page``/``pageSize``/``total``) until ``page * pageSize >= total`` or a short or empty
        page. At most :data:`MAX_LIST_PAGES` pages are read; a repeated cursor ends the walk.
        """
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"page": "1", "limit": str(LIST_PAGE_LIMIT)}
        page = 1
        seen_cursors: set[str] = set()
        url = self.jobs_url(workspace_id)
        for _ in range(MAX_LIST_PAGES):
            result = _listing(self.get(workspace_id, token, url, params, deadline), "jobs")
            if not result.ok:
                return result
            data = result.data
            batch = data["jobs"]
            items.extend(
                item for item in batch if isinstance(item, dict) and isinstance(item.get("id"), str)
            )
            cursor = data.get("nextCursor")
            if isinstance(cursor, str) and cursor:
                if data.get("hasMore") is False or cursor in seen_cursors or not batch:
                    break
                seen_cursors.add(cursor)
                params = {"cursor": cursor, "limit": str(LIST_PAGE_LIMIT)}
                continue
            if "nextCursor" in data or "hasMore" in data or not batch:
                break  # a cursor-style answer without a next cursor is the last page
            total = data.get("total")
            size = data.get("pageSize")
            page_size = size if isinstance(size, int) and size > 0 else len(batch)
            if isinstance(total, int) and not isinstance(total, bool):
                if page * page_size >= total:
                    break
            elif len(batch) < LIST_PAGE_LIMIT:
                break
            page += 1
            params = {"page": str(page), "limit": str(LIST_PAGE_LIMIT)}
        return ApiResult(data=items)

    def list_pages(
        self,
        workspace_id: str,
        token: Secret,
        job_id: str,
        deadline: float,
        consume: Callable[[PagesBatch], bool],
        *,
        first_page: int = 1,
        max_requests: int = MAX_LIST_PAGES,
        trace: ProbeTrace | None = None,
    ) -> ApiResult:
        """Walk a job's scraped-pages list (page numbers, ``limit`` :data:`PAGES_LIMIT`) from
        ``first_page``, handing each answer to ``consume``.

        The walk ends when ``consume`` returns False, when the list ends (``page * pageSize >=
        total``, or a short or empty page without ``total``), or after ``max_requests``
        answers. Each answer must be ``{pages: [...], ...}`` for the page asked; ``data`` is the
        number of answers read.
        """
        url = self.pages_url(workspace_id, job_id)
        page = first_page
        for count in range(1, max_requests + 1):
            params = {"page": str(page), "limit": str(PAGES_LIMIT)}
            result = _listing(
                self.get(workspace_id, token, url, params, deadline, trace=trace), "pages"
            )
            if not result.ok:
                return result
            data = result.data
            items = data["pages"]
            answered = _whole(data.get("page"))
            if answered is not None and answered != page:
                return ApiResult(reason="invalid_response", detail="answer is for another page")
            size = _whole(data.get("pageSize"))
            total = _whole(data.get("total"))
            page_size = size if size is not None and size > 0 else PAGES_LIMIT
            if len(items) > page_size:
                return ApiResult(reason="invalid_response", detail="more pages than pageSize")
            batch = PagesBatch(
                page=page,
                page_size=page_size,
                total=total if total is not None and total >= 0 else None,
                items=items,
            )
            if not consume(batch) or batch.last:
                return ApiResult(data=count)
            page += 1
        return ApiResult(data=max_requests)

    def get(
        self,
        workspace_id: str,
        token: Secret,
        url: str,
        params: dict[str, str] | None,
        deadline: float,
        *,
        trace: ProbeTrace | None = None,
    ) -> ApiResult:
        """GET with at most one retry: on connection errors and 5xx, and on 429 when the
        server's ``Retry-After`` fits before the deadline. 4xx is never retried.

        ``trace`` (``/probe?debug=true``) receives every HTTP attempt and the retry decision.
        """
        result = self._attempt(workspace_id, token, url, params, deadline, trace=trace)
        retry = False
        if result.reason in ("connection", "server_error"):
            retry = deadline - time.monotonic() > _QUICK_RETRY_DELAY * 2
            wait = _QUICK_RETRY_DELAY * (0.5 + random.random())  # noqa: S311 - jitter
        elif result.reason == "rate_limited" and result.retry_after is not None:
            wait = result.retry_after
            retry = time.monotonic() + wait < deadline - 0.05
        if retry:
            log.debug(
                "retrying upstream request",
                extra={"workspace_id": workspace_id, "reason": result.reason},
            )
            if trace is not None:
                trace.note(f"retrying in {wait:.3f}s after {result.reason}")
            time.sleep(wait)
            result = self._attempt(workspace_id, token, url, params, deadline, trace=trace)
        elif trace is not None and result.reason is not None:
            why = _NO_RETRY.get(result.reason, "(this kind of failure is never retried)")
            trace.note(f"not retried: {result.reason} {why}")
        return result

    def _attempt(
        self,
        workspace_id: str,
        token: Secret,
        url: str,
        params: dict[str, str] | None,
        deadline: float,
        *,
        trace: ProbeTrace | None = None,
    ) -> ApiResult:
        target = url
        auth = _Bearer(token)

        def observe(code: str, started: float, result: ApiResult | None) -> None:
            seconds = time.monotonic() - started
            self.observer.observe_request(workspace_id, code, seconds)
            if trace is not None:
                reason: str | None = "redirect"
                detail = "followed: same API origin"
                if result is not None:
                    reason, detail = result.reason, result.detail
                trace.attempt(Attempt(safe_url(target, params), code, seconds, reason, detail))

        for _ in range(_MAX_REDIRECTS + 1):
            started = time.monotonic()
            remaining = deadline - started
            if remaining <= 0:
                return ApiResult(reason="deadline", detail="scrape deadline reached")
            limit = min(self.api.timeout_seconds, remaining)
            own_deadline = started + self.api.timeout_seconds
            code = "error"
            guard = arm(min(own_deadline, deadline) + _WATCHDOG_GRACE)
            with self._in_flight_lock:
                if self._aborted:
                    guard.disarm()
                    return ApiResult(reason="connection", detail="exporter stopping")
                self._in_flight.add(guard)
            guard_this_thread(guard)
            response: requests.Response | None = None
            try:
                response = self._session.get(
                    target,
                    params=params,
                    auth=auth,
                    timeout=(limit, limit),
                    stream=True,
                    allow_redirects=False,
                    proxies=self._proxies,
                    verify=self._verify,
                )
                code = str(response.status_code)
                result = self._read(response, own_deadline, deadline)
            except requests.exceptions.Timeout:
                result = self._timeout_result(own_deadline, deadline)
            except requests.exceptions.RequestException as exc:
                cause, detail = classify(exc)
                result = ApiResult(reason="connection", detail=detail, cause=cause)
            finally:
                # Disarmed before the connection goes back to the pool.
                guard.disarm()
                guard_this_thread(None)
                with self._in_flight_lock:
                    self._in_flight.discard(guard)
                if response is not None:
                    response.close()
            if guard.fired and not result.ok:
                # The watchdog cut the connection: whatever error that caused is a timeout.
                result = self._timeout_result(own_deadline, deadline)
            elif response is not None and 300 <= response.status_code < 400:
                location = response.headers.get("Location")
                if response.status_code != 304 and location:
                    next_url = urljoin(target, location)
                    if _same_origin(next_url, self.api.base_url):
                        observe(code, started, None)
                        target, params = next_url, None
                        continue
                    result = ApiResult(
                        reason="invalid_response", detail="redirect off the API host"
                    )
            if result.cause is not None:
                log.debug(
                    "upstream request failed",
                    extra={
                        "workspace_id": workspace_id,
                        "host": self.host,
                        "path": urlsplit(target).path,
                        "reason": result.reason,
                        "cause": result.cause,
                        "detail": result.detail,
                    },
                )
            observe(code, started, result)
            return result
        return ApiResult(reason="invalid_response", detail="too many redirects")

    def _timeout_result(self, own_deadline: float, deadline: float) -> ApiResult:
        if deadline <= own_deadline and time.monotonic() >= deadline - 0.01:
            return ApiResult(reason="deadline", detail="scrape deadline reached", cause="timeout")
        return ApiResult(
            reason="timeout", detail="upstream did not answer in time", cause="timeout"
        )

    def _read(self, response: requests.Response, own_deadline: float, deadline: float) -> ApiResult:
        status = response.status_code
        if 300 <= status < 400:
            return ApiResult(reason="invalid_response", detail=f"HTTP {status}")
        if status >= 400 or status < 200:
            retry_after = None
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return ApiResult(
                reason=reason_for_status(status), detail=f"HTTP {status}", retry_after=retry_after
            )
        cap = self.api.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            return ApiResult(reason="invalid_response", detail="answer larger than the size cap")
        body = bytearray()
        stop_at = min(own_deadline, deadline)
        try:
            while True:
                if time.monotonic() >= stop_at:
                    return self._timeout_result(own_deadline, deadline)
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > cap:
                    return ApiResult(
                        reason="invalid_response", detail="answer larger than the size cap"
                    )
        except requests.exceptions.Timeout:
            return self._timeout_result(own_deadline, deadline)
        except Exception as exc:  # urllib3 protocol, decode and socket errors mid-body
            name = type(exc).__name__
            if "Timeout" in name:
                return self._timeout_result(own_deadline, deadline)
            if "Decod" in name:
                return ApiResult(reason="invalid_response", detail="undecodable body")
            cause, detail = classify(exc)
            return ApiResult(
                reason="connection", detail=f"body interrupted ({detail})", cause=cause
            )
        return parse_envelope(bytes(body))


def _object_data(result: ApiResult) -> ApiResult:
    """A successful result whose ``data`` is not a JSON object is an ``invalid_response``."""
    if result.ok and not isinstance(result.data, dict):
        return ApiResult(reason="invalid_response", detail="data is not an object")
    return result


def _listing(result: ApiResult, field: str) -> ApiResult:
    """One answer of a list endpoint: ``data`` must be an object whose ``field`` is a list."""
    result = _object_data(result)
    if result.ok and not isinstance(result.data.get(field), list):
        return ApiResult(reason="invalid_response", detail=f"{field} is not a list")
    return result


def parse_envelope(body: bytes) -> ApiResult:
    """The ``data`` of a ``{"success": true, "data": ...}`` envelope, or ``invalid_response``."""
    try:
        document = json.loads(body)
    except RecursionError:
        return ApiResult(reason="invalid_response", detail="JSON nested too deeply")
    except ValueError:
        return ApiResult(reason="invalid_response", detail="not valid JSON")
    if not isinstance(document, dict):
        return ApiResult(reason="invalid_response", detail="JSON is not an object")
    if document.get("success") is not True:
        return ApiResult(reason="invalid_response", detail="success is not true")
    if "data" not in document:
        return ApiResult(reason="invalid_response", detail="no data in the answer")
    return ApiResult(data=document["data"])
