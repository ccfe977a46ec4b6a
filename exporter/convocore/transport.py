"""Sending one GET to the Convocore API: bounded in time and size, retried at most once.

Every request returns an :class:`ApiResult` instead of raising: either the envelope's ``data``
or one of the bounded failure reasons of :data:`exporter.exposition.metrics.REASONS`. The
workspace secret travels only in the ``Authorization`` header to the configured API origin;
redirects are followed by hand, and only within that origin. What the endpoints are and what
their answers must hold is :mod:`exporter.convocore.api`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, requote_uri, urldefragauth

from .. import __version__
from ..config import ApiConfig, Secret
from .neterrors import api_host, classify
from .outage import OutageBackoff
from .trace import Attempt, ProbeTrace, safe_url
from .watchdog import Guard, WatchedAdapter, arm, guard_this_thread

# Named as before the package was regrouped, so that log filters keep working.
log = logging.getLogger("exporter.client")

USER_AGENT = f"convocore-crawler-exporter/{__version__}"
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
QUICK_RETRY_DELAY = 0.1
_MAX_RETRY_AFTER = 24 * 3600.0
# Beyond an attempt's own deadline, so that socket timeouts and the between-chunk checks,
# which give the precise reason, normally come first.
_WATCHDOG_GRACE = 0.05
_NO_RETRY = {
    "rate_limited": "(no Retry-After that fits before the deadline)",
    "connection": "(no time left before the deadline)",
    "server_error": "(no time left before the deadline)",
}


@dataclass(frozen=True, slots=True)
class ApiResult:
    """The outcome of one API call, after retries."""

    data: Any = None
    reason: str | None = None
    detail: str = ""
    retry_after: float | None = None
    cause: str | None = None
    """Set when no usable HTTP answer came: one of :data:`exporter.convocore.neterrors.CAUSES`
    (``dns``, ``refused`` ...), for the logs; never a label value."""
    held: bool = False
    """Not sent at all: the API host is in outage backoff (:mod:`.outage`)."""
    beside: dict[str, Any] | None = None
    """The envelope's paging fields beside ``data`` (:data:`PAGING_FIELDS`), when it has any:
    where a cursor-paged list answers ``hasMore`` and ``nextCursor``."""

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Call:
    """What every request of one API call carries: whose it is and how long it may take."""

    workspace_id: str
    token: Secret
    deadline: float
    """``time.monotonic()`` by which the call, retries and redirects included, must end."""
    trace: ProbeTrace | None = None
    """``/probe?debug=true``: receives every HTTP attempt and the retry decision."""


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


class _OneOriginAdapter(WatchedAdapter):
    """requests' adapter, for requests that go to one origin with the same settings each time:
    the connection pool (a lookup that parses the URL and builds a pool key) and the form of
    the request line (a path, or the whole URL through a plain-HTTP proxy) are found once, by
    requests' own methods, for URLs under ``prefix``; anything else takes requests' way."""

    def __init__(self, prefix: str | None, pool_size: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._prefix = prefix
        self._pool: Any = None
        self._whole_url: bool | None = None
        self._verified: Any = None
        # Where the path starts in such a URL (requests' path_url would parse it each time).
        origin = ""
        if prefix is not None:
            parts = urlsplit(prefix)
            origin = f"{parts.scheme}://{parts.netloc}"
        self._path_at = len(origin) if prefix is not None and prefix.startswith(origin) else -1

    def _ours(self, request: requests.PreparedRequest) -> bool:
        url = request.url
        return self._prefix is not None and url is not None and url.startswith(self._prefix)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        if not self._ours(request):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        pool = self._pool
        if pool is None or pool.pool is None:  # urllib3 empties ``pool`` when it is closed
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pool = pool
        return pool

    def request_url(
        self, request: requests.PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        if not self._ours(request):
            return super().request_url(request, proxies)
        if self._whole_url is None:
            self._whole_url = super().request_url(request, proxies) != request.path_url
        if self._whole_url:
            return str(urldefragauth(str(request.url)))
        return request.path_url if self._path_at < 0 else str(request.url)[self._path_at :]

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # Sets the pool's TLS settings, after two stat() calls on the CA bundle: once per pool.
        if conn is not self._verified:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            if conn is self._pool:
                self._verified = conn

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        # requests' own, but for the cookies of the answer: never sent back, so never parsed.
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = str(req.url)
        response.request = req
        response.connection = self
        return response

    def close(self) -> None:
        self._pool = self._verified = None  # a request after a reload's close: a new pool
        super().close()


class _Headers(CaseInsensitiveDict[str]):
    """requests' header dict with a cheaper ``copy``: urllib3 copies a request's headers for
    every request (to add a pool's proxy headers to the copy), and requests' own ``copy``
    builds the new dict one header at a time in Python."""

    def copy(self) -> _Headers:
        headers = _Headers.__new__(_Headers)
        vars(headers)["_store"] = vars(self)["_store"].copy()  # lower name: (name, value)
        return headers


class Sender:
    """requests' connection pool to the API origin, with everything that does not change
    between requests worked out once, when the config is loaded.

    ``Session.request`` redoes per call what is fixed for an exporter that calls one origin
    with fixed headers: it reads the proxy and CA-bundle variables of the environment
    (``merge_environment_settings``, a walk over all of ``os.environ``), merges the session's
    headers, cookies, auth and hooks into a new request, and parses the URL again. Here the
    environment is read once for the API's base URL (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``: a reload builds
    a new one), the headers of each token are built once, and each request is a prepared
    request handed straight to the adapter with the same arguments every time. No cookies are
    kept or sent (the API authenticates with the bearer token alone) and ``~/.netrc`` is
    never read.
    """

    def __init__(self, base_url: str, pool_size: int) -> None:
        # Only to read the environment exactly as requests does (NO_PROXY included), once.
        session = requests.Session()
        settings = session.merge_environment_settings(base_url, {}, None, None, None)
        session.close()
        self.proxies: dict[str, str] = dict(settings["proxies"])
        verify = settings["verify"]
        self.verify: bool | str = True if verify is None else verify
        fixed = default_headers()
        fixed.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._fixed = fixed
        self._headers: dict[Secret, CaseInsensitiveDict[str]] = {}
        # URLs under the base URL are built already quoted (api.py); when requests would
        # leave the base URL as it is, it leaves such a URL as it is too, but for requoting,
        # unless a path segment starts with a dot (it removes dot segments) or the URL has a
        # query already.
        probe = requests.PreparedRequest()
        probe.prepare_url(base_url, None)
        self._prefix = base_url + "/" if probe.url == base_url else None
        self._adapter = _OneOriginAdapter(self._prefix, pool_size)

    def headers(self, token: Secret) -> CaseInsensitiveDict[str]:
        """The headers of every request made with ``token``, in requests' order: built once
        and shared (nothing below the adapter changes them)."""
        headers = self._headers.get(token)
        if headers is None:
            headers = _Headers(self._fixed)
            headers["Authorization"] = "Bearer " + token.reveal()
            self._headers[token] = headers
        return headers

    def prepare(
        self, token: Secret, url: str, params: dict[str, str] | None = None
    ) -> requests.PreparedRequest:
        """The GET requests would prepare for ``url`` and ``params`` with ``token``."""
        request = requests.PreparedRequest()
        request.method = "GET"
        prefix = self._prefix
        if (
            prefix is not None
            and url.startswith(prefix)
            and "/." not in url[len(prefix) - 1 :]
            and "?" not in url
        ):
            request.url = requote_uri(f"{url}?{urlencode(params)}" if params else url)
        else:
            request.prepare_url(url, params)
        request.headers = self.headers(token)
        return request

    def send(
        self, token: Secret, url: str, params: dict[str, str] | None, timeout: float
    ) -> requests.Response:
        """One GET, its body left unread (``stream``); no retries, no redirects followed."""
        return self._adapter.send(
            self.prepare(token, url, params),
            stream=True,
            timeout=(timeout, timeout),
            verify=self.verify,
            cert=None,
            proxies=self.proxies,
        )

    def close(self) -> None:
        self._adapter.close()


class Transport:
    """One pooled connection set to the API origin, shared by every workspace and thread."""

    def __init__(
        self,
        api: ApiConfig,
        observer: RequestObserver,
        *,
        quick_retry_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.observer = observer
        self.host = api_host(api.base_url)
        self.outage = OutageBackoff(self.host, api.max_concurrency, clock=clock)
        """Handed on to the transport of a reloaded config for the same origin."""
        self.quick_retry_delay = (
            QUICK_RETRY_DELAY if quick_retry_delay is None else quick_retry_delay
        )
        self._in_flight: set[Guard] = set()
        self._in_flight_lock = threading.Lock()
        self._aborted = False
        self._sender = Sender(api.base_url, max(api.max_concurrency, 4))

    def close(self, *, abort: bool = False) -> None:
        """Release the connection pool. ``abort`` also cuts the requests in flight, and
        refuses new ones, so that a process stopping need not wait for a slow API (the
        interpreter joins the worker threads on exit)."""
        if abort:
            self.outage.close()
            with self._in_flight_lock:
                self._aborted = True
                guards = list(self._in_flight)
            for guard in guards:
                guard.expire()
        self._sender.close()

    def get(self, call: Call, url: str, params: dict[str, str] | None = None) -> ApiResult:
        """GET with at most one retry: on connection errors and 5xx, and on 429 when the
        server's ``Retry-After`` fits before the deadline. 4xx is never retried. Nothing is
        sent while the host is in outage backoff.

        ``call.trace`` receives every HTTP attempt and the retry decision.
        """
        deadline, trace = call.deadline, call.trace
        result = self._send(call, url, params)
        retry = False
        if result.held:
            return result
        if result.reason in ("connection", "server_error"):
            retry = deadline - time.monotonic() > self.quick_retry_delay * 2
            wait = self.quick_retry_delay * (0.5 + random.random())  # noqa: S311 - jitter
        elif result.reason == "rate_limited" and result.retry_after is not None:
            wait = result.retry_after
            retry = time.monotonic() + wait < deadline - 0.05
        if retry:
            log.debug(
                "retrying upstream request",
                extra={"workspace_id": call.workspace_id, "reason": result.reason},
            )
            if trace is not None:
                trace.note(f"retrying in {wait:.3f}s after {result.reason}")
            time.sleep(wait)
            result = self._send(call, url, params)
        elif trace is not None and result.reason is not None:
            why = _NO_RETRY.get(result.reason, "(this kind of failure is never retried)")
            trace.note(f"not retried: {result.reason} {why}")
        return result

    def _send(self, call: Call, url: str, params: dict[str, str] | None) -> ApiResult:
        """One attempt, when the outage backoff lets it go (see :mod:`.outage`)."""
        ticket, held = self.outage.admit(call.deadline)
        if held is not None:
            if call.trace is not None:
                call.trace.note(f"not sent: the API host is in outage backoff ({held})")
            return ApiResult(reason=held, detail="not sent: outage backoff", held=True)
        result = self._attempt(call, url, params)
        self.outage.settle(ticket, result.reason, result.cause)
        return result

    def _attempt(self, call: Call, url: str, params: dict[str, str] | None) -> ApiResult:
        deadline, trace = call.deadline, call.trace
        target = url

        def observe(code: str, started: float, result: ApiResult | None) -> None:
            seconds = time.monotonic() - started
            self.observer.observe_request(call.workspace_id, code, seconds)
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
                response = self._sender.send(call.token, target, params, limit)
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
                        "workspace_id": call.workspace_id,
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
        # A body sent as is with its length is whole once that many bytes are read: no read
        # for the end of it (the connection is back in the pool either way).
        whole = (
            int(declared)
            if declared.isdigit() and not response.headers.get("Content-Encoding")
            else -1
        )
        try:
            while True:
                if time.monotonic() >= stop_at:
                    return self._timeout_result(own_deadline, deadline)
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) == whole:
                    break
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


# Paging fields a list answer may carry beside ``data`` (see ConvocoreClient.list_answer).
PAGING_FIELDS = ("hasMore", "nextCursor", "limit", "total", "page", "pageSize")


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
    if len(document) == 2:  # success and data alone: a get-job answer
        return ApiResult(data=document["data"])
    beside = {k: document[k] for k in PAGING_FIELDS if k in document}
    return ApiResult(data=document["data"], beside=beside or None)
