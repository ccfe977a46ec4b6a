"""The Convocore v3 endpoints the exporter reads: one job, a workspace's job list and a job's
scraped-pages list, with what each answer must hold to be used.

Requests go through :class:`exporter.convocore.transport.Transport`; every call returns an
:class:`~exporter.convocore.transport.ApiResult` instead of raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..config import ApiConfig, Secret
from .trace import ProbeTrace
from .transport import ApiResult, Call, RequestObserver, Transport

LIST_PAGE_LIMIT = 100
MAX_LIST_PAGES = 200
PAGES_LIMIT = 100


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


class ConvocoreClient:
    """The API's endpoints over one :class:`Transport`."""

    def __init__(
        self,
        api: ApiConfig,
        observer: RequestObserver,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` times the outage backoff's pauses (tests move it instead of sleeping)."""
        self.api = api
        self.transport = transport or Transport(api, observer, clock=clock)
        self.host = self.transport.host

    def close(self, *, abort: bool = False) -> None:
        """Release the connection pool; ``abort`` also cuts the requests in flight."""
        self.transport.close(abort=abort)

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
        call = Call(workspace_id, token, deadline, trace)
        result = _object_data(self.transport.get(call, url))
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
        call = Call(workspace_id, token, deadline)
        for _ in range(MAX_LIST_PAGES):
            result = _listing(self.transport.get(call, url, params), "jobs")
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
        call = Call(workspace_id, token, deadline, trace)
        for count in range(1, max_requests + 1):
            params = {"page": str(page), "limit": str(PAGES_LIMIT)}
            result = _listing(self.transport.get(call, url, params), "pages")
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
