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
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.adapters
from requests.auth import AuthBase

from . import __version__
from .config import ApiConfig, Secret
from .metrics import API_DURATION_BUCKETS

log = logging.getLogger(__name__)

USER_AGENT = f"convocore-crawler-exporter/{__version__}"
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
_QUICK_RETRY_DELAY = 0.1
_MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ApiResult:
    """The outcome of one API call, after retries."""

    data: Any = None
    reason: str | None = None
    detail: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


class _Bearer(AuthBase):
    """Sets the Authorization header; also stops requests from consulting ~/.netrc."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._token.reveal()
        return request

    def __repr__(self) -> str:
        return "_Bearer(<redacted>)"


class ApiStats:
    """Thread-safe counters of upstream requests, their durations, and failed fetches."""

    def __init__(self, buckets: tuple[float, ...] = API_DURATION_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        # workspace -> (per-bucket counts (non-cumulative, +Inf last), sum, count)
        self.durations: dict[str, tuple[list[int], float, int]] = {}

    def observe_request(self, workspace_id: str, code: str, seconds: float) -> None:
        with self._lock:
            key = (workspace_id, code)
            self.requests[key] = self.requests.get(key, 0) + 1
            counts, total, count = self.durations.get(
                workspace_id, ([0] * (len(self.buckets) + 1), 0.0, 0)
            )
            index = len(self.buckets)
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    index = i
                    break
            counts[index] += 1
            self.durations[workspace_id] = (counts, total + seconds, count + 1)

    def count_error(self, workspace_id: str, reason: str) -> None:
        with self._lock:
            key = (workspace_id, reason)
            self.errors[key] = self.errors.get(key, 0) + 1

    def snapshot(
        self,
    ) -> tuple[
        dict[tuple[str, str], int],
        dict[tuple[str, str], int],
        dict[str, tuple[list[int], float, int]],
    ]:
        with self._lock:
            return (
                dict(self.requests),
                dict(self.errors),
                {k: (list(c), s, n) for k, (c, s, n) in self.durations.items()},
            )


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

    def __init__(self, api: ApiConfig, stats: ApiStats) -> None:
        self.api = api
        self.stats = stats
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=max(api.max_concurrency, 4), max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self._session.close()

    def job_url(self, workspace_id: str, job_id: str) -> str:
        return (
            f"{self.api.base_url}/workspaces/{quote(workspace_id, safe='')}"
            f"/crawler/jobs/{quote(job_id, safe='')}"
        )

    def jobs_url(self, workspace_id: str) -> str:
        return f"{self.api.base_url}/workspaces/{quote(workspace_id, safe='')}/crawler/jobs"

    def get_job(self, workspace_id: str, token: Secret, job_id: str, deadline: float) -> ApiResult:
        """The ``data`` object of one job, validated to be an object for that job."""
        result = self.get(workspace_id, token, self.job_url(workspace_id, job_id), None, deadline)
        if not result.ok:
            return result
        if not isinstance(result.data, dict):
            return ApiResult(reason="invalid_response", detail="data is not an object")
        answered_id = result.data.get("id")
        if isinstance(answered_id, str) and answered_id != job_id:
            return ApiResult(reason="invalid_response", detail="answer is for another job")
        return result

    def list_jobs(
        self,
        workspace_id: str,
        token: Secret,
        params: dict[str, str],
        deadline: float,
    ) -> ApiResult:
        """One page of the workspace's job list; ``data`` is the envelope's data object."""
        result = self.get(workspace_id, token, self.jobs_url(workspace_id), params, deadline)
        if result.ok and not isinstance(result.data, dict):
            return ApiResult(reason="invalid_response", detail="data is not an object")
        return result

    def get(
        self,
        workspace_id: str,
        token: Secret,
        url: str,
        params: dict[str, str] | None,
        deadline: float,
    ) -> ApiResult:
        """GET with at most one retry: on connection errors and 5xx, and on 429 when the
        server's ``Retry-After`` fits before the deadline. 4xx is never retried."""
        result = self._attempt(workspace_id, token, url, params, deadline)
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
            time.sleep(wait)
            result = self._attempt(workspace_id, token, url, params, deadline)
        return result

    def _attempt(
        self,
        workspace_id: str,
        token: Secret,
        url: str,
        params: dict[str, str] | None,
        deadline: float,
    ) -> ApiResult:
        target = url
        auth = _Bearer(token)
        for _ in range(_MAX_REDIRECTS + 1):
            started = time.monotonic()
            remaining = deadline - started
            if remaining <= 0:
                return ApiResult(reason="deadline", detail="scrape deadline reached")
            limit = min(self.api.timeout_seconds, remaining)
            own_deadline = started + self.api.timeout_seconds
            code = "error"
            try:
                response = self._session.get(
                    target,
                    params=params,
                    auth=auth,
                    timeout=(limit, limit),
                    stream=True,
                    allow_redirects=False,
                )
            except requests.exceptions.Timeout:
                result = self._timeout_result(own_deadline, deadline)
            except requests.exceptions.RequestException as exc:
                result = ApiResult(reason="connection", detail=type(exc).__name__)
            else:
                code = str(response.status_code)
                try:
                    result = self._read(response, own_deadline, deadline)
                finally:
                    response.close()
                if 300 <= response.status_code < 400 and response.status_code != 304:
                    location = response.headers.get("Location")
                    if location:
                        next_url = urljoin(target, location)
                        if _same_origin(next_url, self.api.base_url):
                            self.stats.observe_request(
                                workspace_id, code, time.monotonic() - started
                            )
                            target, params = next_url, None
                            continue
                    result = ApiResult(
                        reason="invalid_response", detail="redirect off the API host"
                    )
            self.stats.observe_request(workspace_id, code, time.monotonic() - started)
            return result
        return ApiResult(reason="invalid_response", detail="too many redirects")

    def _timeout_result(self, own_deadline: float, deadline: float) -> ApiResult:
        if deadline <= own_deadline and time.monotonic() >= deadline - 0.01:
            return ApiResult(reason="deadline", detail="scrape deadline reached")
        return ApiResult(reason="timeout", detail="upstream did not answer in time")

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
            return ApiResult(reason="connection", detail=f"body interrupted ({name})")
        return parse_envelope(bytes(body))


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
