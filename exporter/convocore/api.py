"""The Convocore v3 endpoints the exporter reads: one job, a workspace's job list and a job's
scraped-pages list, with what each answer must hold to be used.

Requests go through :class:`exporter.convocore.transport.Transport`; every call returns an
:class:`~exporter.convocore.transport.ApiResult` instead of raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..config import ApiConfig, Secret
from .trace import ProbeTrace
from .transport import ApiResult, Call, RequestObserver, Transport

LIST_PAGE_LIMIT = 100
PAGES_LIMIT = 100

Position = int | str
"""Where a list answer starts: a 1-based page number, or the cursor that asked for it."""


@dataclass(frozen=True, slots=True)
class ListAnswer:
    """One answer of a paged list, in whichever of the three shapes the API answers in.

    - page numbers: ``data: {<field>: [...], total, page, pageSize}``;
    - cursors inside ``data``: ``data: {<field>: [...], nextCursor, hasMore}``;
    - cursors beside an array ``data``: ``data: [...], hasMore, nextCursor, limit``.
    """

    items: list[Any]
    at: Position  # how it was asked: the page number, or the cursor
    first_index: int  # position of items[0] in the whole list, from 0
    page_size: int  # the answer's pageSize (or limit), else the limit asked
    total: int | None  # the answer's total, when it is a whole number
    cursor: bool  # the answer is cursor-paged
    next_cursor: str | None  # cursor-paged: the cursor of the next answer; None at the end

    @property
    def last(self) -> bool:
        """Whether the list ends with this answer."""
        if self.cursor:
            return self.next_cursor is None
        if not self.items:
            return True
        if self.total is not None:
            assert isinstance(self.at, int)
            return self.at * self.page_size >= self.total
        return len(self.items) < self.page_size

    @property
    def pages(self) -> int | None:
        """Page-numbered with a total: how many pages the whole list has."""
        if self.cursor or self.total is None:
            return None
        return max(1, -(-self.total // self.page_size))


def read_list_answer(
    result: ApiResult, field: str, at: Position, first_index: int | None = None
) -> ApiResult:
    """A successful list answer as a :class:`ListAnswer`, or ``invalid_response`` naming what
    does not fit any of the three shapes (or mixes them).

    ``first_index`` is where a cursor-asked answer starts in the list (the walker counts it);
    a page-numbered answer's comes from its page and page size.
    """
    if not result.ok:
        return result
    data, beside = result.data, result.beside or {}
    items: Any

    def bad(detail: str) -> ApiResult:
        return ApiResult(reason="invalid_response", detail=detail)

    if isinstance(data, list):
        items, paging = data, beside
    elif isinstance(data, dict):
        items = data.get(field)
        if not isinstance(items, list):
            return bad(f"{field} is not a list")
        paging = {**beside, **data}
    else:
        return bad("data is neither a list nor an object")
    if "nextCursor" in paging or "hasMore" in paging:
        more, cursor = paging.get("hasMore"), paging.get("nextCursor")
        if more is not None and not isinstance(more, bool):
            return bad("hasMore is not a boolean")
        if cursor is not None and not isinstance(cursor, str):
            return bad("nextCursor is not a string")
        if more is False or not cursor:
            if more is True:
                return bad("hasMore is true but there is no nextCursor")
            cursor = None
        size = _whole(paging.get("limit")) or _whole(paging.get("pageSize"))
        start = first_index if first_index is not None else 0
        return ApiResult(
            data=ListAnswer(items, at, start, size or LIST_PAGE_LIMIT, None, True, cursor)
        )
    if isinstance(data, list):
        if "total" in paging or "page" in paging or "pageSize" in paging:
            return bad("data is a list with page numbers but no cursor")
        return bad("data is a list without hasMore or nextCursor")
    if isinstance(at, str):
        # Asked by cursor, answered without one: the list ends here.
        start = first_index if first_index is not None else 0
        return ApiResult(data=ListAnswer(items, at, start, LIST_PAGE_LIMIT, None, True, None))
    answered = _whole(paging.get("page"))
    if answered is not None and answered != at:
        return bad("answer is for another page")
    size = _whole(paging.get("pageSize"))
    page_size = size if size is not None and size > 0 else LIST_PAGE_LIMIT
    if len(items) > page_size:
        return bad(f"more {field} than pageSize")
    total = _whole(paging.get("total"))
    total = total if total is not None and total >= 0 else None
    answer = ListAnswer(items, at, (at - 1) * page_size, page_size, total, False, None)
    return ApiResult(data=answer)


def list_params(at: Position, limit: int) -> dict[str, str]:
    """The query of one list request: a page number, or (once a cursor was given) the cursor
    passed back verbatim, with no page number."""
    if isinstance(at, str):
        return {"cursor": at, "limit": str(limit)}
    return {"page": str(at), "limit": str(limit)}


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

    def list_answer(
        self,
        workspace_id: str,
        token: Secret,
        at: Position,
        deadline: float,
        *,
        first_index: int | None = None,
    ) -> ApiResult:
        """One answer of the workspace's job list (a :class:`ListAnswer` of raw items)."""
        call = Call(workspace_id, token, deadline)
        params = list_params(at, LIST_PAGE_LIMIT)
        result = self.transport.get(call, self.jobs_url(workspace_id), params)
        return read_list_answer(result, "jobs", at, first_index)

    def list_pages(
        self,
        workspace_id: str,
        token: Secret,
        job_id: str,
        deadline: float,
        *,
        first: Position = 1,
        first_index: int = 0,
        trace: ProbeTrace | None = None,
    ) -> Follow:
        """A job's scraped-pages list followed from ``first`` (a page number, or a cursor
        starting at ``first_index``), page numbers or cursors, as the list answers (see
        :class:`Follow`)."""
        url = self.pages_url(workspace_id, job_id)
        call = Call(workspace_id, token, deadline, trace)

        def ask(at: Position, index: int | None) -> ApiResult:
            result = self.transport.get(call, url, list_params(at, PAGES_LIMIT))
            return read_list_answer(result, "pages", at, index)

        return Follow(ask, first, first_index)


Ask = Callable[[Position, int | None], ApiResult]
"""One request of a list: the answer at a position (a page number, or a cursor and where the
answer it asks for starts in the list), as an :class:`ApiResult` of a :class:`ListAnswer`."""


class Follow:
    """A list followed one answer after another: iterating it asks each answer in turn and
    yields it, until the list ends, an answer fails, or the caller stops asking.

    ``start`` is a position to ask first (a page number, or a cursor starting at
    ``first_index``), or an answer already read, whose successors are followed. The shape
    rules of following are kept here, for every list alike: a cursor is passed back
    verbatim; a repeated cursor, or an answer in another paging than the one before (page
    numbers then cursors), ends the walk as ``invalid_response``. After the loop, ``failed``
    is the failed result that ended it (None when the list ended or the caller stopped), and
    ``answers`` how many answers were read (the answer given as ``start`` not counted).
    """

    def __init__(self, ask: Ask, start: Position | ListAnswer = 1, first_index: int = 0) -> None:
        self._ask = ask
        self._start = start
        self._first_index = first_index
        self.failed: ApiResult | None = None
        self.answers = 0

    def __iter__(self) -> Iterator[ListAnswer]:
        cursors: set[str] = set()
        before: ListAnswer | None = None
        if isinstance(self._start, ListAnswer):
            before = self._start
            at, index = _next(before)
        else:
            at = self._start
            index = self._first_index if isinstance(at, str) else None
        while at is not None:
            if isinstance(at, str):
                if at in cursors:
                    self.failed = ApiResult(reason="invalid_response", detail="nextCursor repeats")
                    return
                cursors.add(at)
            result = self._ask(at, index)
            if not result.ok:
                self.failed = result
                return
            answer: ListAnswer = result.data
            if before is not None and answer.cursor != before.cursor:
                self.failed = ApiResult(
                    reason="invalid_response", detail="the list changed its paging"
                )
                return
            self.answers += 1
            yield answer
            before = answer
            at, index = _next(answer)


def _next(answer: ListAnswer) -> tuple[Position | None, int | None]:
    """Where the answer after ``answer`` is asked, and where it starts; None at the end."""
    if answer.last:
        return None, None
    if answer.next_cursor is not None:
        return answer.next_cursor, answer.first_index + len(answer.items)
    if isinstance(answer.at, int):
        return answer.at + 1, None
    return None, None


def _object_data(result: ApiResult) -> ApiResult:
    """A successful result whose ``data`` is not a JSON object is an ``invalid_response``."""
    if result.ok and not isinstance(result.data, dict):
        return ApiResult(reason="invalid_response", detail="data is not an object")
    return result
