"""The walks over a workspace's job list, off the scrape's deadline.

A *full listing* reads the whole list (at most ``discover_max_pages`` answers); a *refresh*
re-reads only what can have changed since the last snapshot:

- page-numbered lists: the first page (new jobs of a list that puts the newest first), the
  pages where the active jobs stood, and the new pages at the end when the total grew (new
  jobs of a list that puts the oldest first), all at once;
- cursor lists, which can only be read from the head one answer after another: answers
  while each holds an active or a new job;
- then get-job for each active job that none of those answers held (it moved), unless the
  refresh read the whole list (then it is gone), or that would cost more requests than a full
  listing (then :func:`refresh` answers None and the owner makes one instead).

Each request has its own ``api.timeout_seconds``: a walk is not bound to the scrape that
started it. Requests go through :class:`~.slots.ListingSlots` (half of
``api.max_concurrency`` over all workspaces) and the same outage backoff and 429 handling as
every request. A walk only reads: what it gathered is made a snapshot by its owner.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from ...config import Workspace
from ...convocore.api import Follow, ListAnswer, Position
from ...convocore.model import parse_job
from ...convocore.transport import ApiResult
from .. import age
from .slots import stopped
from .snapshot import Gathered, Snapshot

if TYPE_CHECKING:
    from ..state import Runtime

T = TypeVar("T")
_OK = ApiResult(data=None)


def _deadline(rt: Runtime) -> float:
    """One request's deadline, retries included: the walk itself has none."""
    return time.monotonic() + 2 * rt.config.api.timeout_seconds + 1.0


def _ask(rt: Runtime, ws: Workspace, at: Position, first_index: int | None = None) -> ApiResult:
    def call() -> ApiResult:
        return rt.client.list_answer(ws.id, ws.token, at, _deadline(rt), first_index=first_index)

    return rt.listing.run(call)


def _many(
    rt: Runtime,
    calls: Iterable[Callable[[], T]],
    take: Callable[[T], ApiResult | None],
) -> ApiResult:
    """Run ``calls`` within the listing slots, several at once, handing each result to
    ``take`` in this thread as it comes; the first failure (a result ``take`` returns) ends
    the lot, and what was not sent yet is not sent."""
    running: set[concurrent.futures.Future[T]] = set()

    def settle(done: set[concurrent.futures.Future[T]]) -> ApiResult | None:
        running.difference_update(done)
        for future in done:
            if future.cancelled():
                return stopped()
            failed = take(future.result())
            if failed is not None:
                return failed
        return None

    try:
        for call in calls:
            future = rt.listing.submit(call)
            if future is None:
                return stopped()
            running.add(future)
            failed = settle({f for f in running if f.done()})
            if failed is not None:
                return failed
        while running:
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            failed = settle(done)
            if failed is not None:
                return failed
    finally:
        for future in running:
            future.cancel()
    return _OK


def full_listing(rt: Runtime, ws: Workspace) -> tuple[ApiResult, Gathered]:
    """Read the whole list, as far as ``discover_max_pages`` allows."""
    gathered = Gathered(age.horizon(ws), rt.secrets)
    first = _ask(rt, ws, 1)
    if not first.ok:
        return first, gathered
    answer: ListAnswer = first.data
    gathered.add(answer)
    cap = ws.discover_max_pages
    pages = answer.pages
    if pages is None:
        result = _onward(rt, ws, answer, gathered, known={}, counts=(0, 0), go_on=_always)
        return result, gathered
    if pages > cap and answer.total is not None:
        gathered.cut = answer.total - cap * answer.page_size
    gathered.whole = pages <= cap
    return _pages(rt, ws, range(2, min(pages, cap) + 1), gathered), gathered


def _always(_active: int, _new: int) -> bool:
    return True


def _pages(rt: Runtime, ws: Workspace, numbers: Iterable[int], gathered: Gathered) -> ApiResult:
    """Page-numbered answers, several at once."""

    def take(result: ApiResult) -> ApiResult | None:
        if not result.ok:
            return result
        answer: ListAnswer = result.data
        if answer.cursor:
            return ApiResult(reason="invalid_response", detail="the list changed its paging")
        gathered.add(answer)
        return None

    def call(number: int) -> Callable[[], ApiResult]:
        def ask() -> ApiResult:
            return rt.client.list_answer(ws.id, ws.token, number, _deadline(rt))

        return ask

    return _many(rt, [call(n) for n in numbers], take)


def _onward(
    rt: Runtime,
    ws: Workspace,
    answer: ListAnswer,
    gathered: Gathered,
    *,
    known: Mapping[str, object],
    counts: tuple[int, int],
    go_on: Callable[[int, int], bool],
) -> ApiResult:
    """Follow the list one answer after another from ``answer`` (cursors, or page numbers
    without a total) while ``go_on(active, new)`` of the last answer says so (``counts`` are
    those of ``answer``), at most ``discover_max_pages`` answers in all."""
    if answer.last:
        gathered.whole = True
        return _OK
    if not go_on(*counts):
        return _OK
    if gathered.answers >= ws.discover_max_pages:
        gathered.cut = max(gathered.cut, 1)
        return _OK
    follow = Follow(lambda at, index: _ask(rt, ws, at, index), answer)
    for following in follow:
        counts = gathered.add(following, known)
        if following.last:
            gathered.whole = True
            break
        if not go_on(*counts):
            break
        if gathered.answers >= ws.discover_max_pages:
            gathered.cut = max(gathered.cut, 1)
            break
    return follow.failed or _OK


def refresh(
    rt: Runtime, ws: Workspace, before: Snapshot, active: set[str]
) -> tuple[ApiResult, Gathered] | None:
    """Re-read what can have changed since ``before`` for the ``active`` jobs (this shard's);
    None when a full listing is the better buy (the list changed its paging or page size, or
    more active jobs moved than a full listing has pages)."""
    gathered = Gathered(age.horizon(ws), rt.secrets)
    known = before.tallies
    first = _ask(rt, ws, 1)
    if not first.ok:
        return first, gathered
    answer: ListAnswer = first.data
    counts = gathered.add(answer, known)
    if answer.cursor != before.cursor or answer.page_size != before.page_size:
        return None
    pages = answer.pages
    if pages is None:
        result = _onward(
            rt,
            ws,
            answer,
            gathered,
            known=known,
            counts=counts,
            go_on=lambda active, new: active > 0 or new > 0,
        )
    else:
        size = answer.page_size
        wanted = {before.positions[j] // size + 1 for j in active if j in before.positions}
        if before.total is not None and answer.total is not None and answer.total > before.total:
            wanted.update(range(before.total // size + 1, pages + 1))
        cap = min(pages, ws.discover_max_pages)
        numbers = sorted(n for n in wanted if 1 < n <= cap)
        gathered.whole = pages <= ws.discover_max_pages and len(numbers) == pages - 1
        result = _pages(rt, ws, numbers, gathered)
    if not result.ok:
        return result, gathered
    moved = [j for j in active if j not in gathered.tallies]
    if gathered.whole and gathered.consistent:
        return result, gathered  # the whole list was read: the moved ones left it
    full_pages = -(-max(before.total or 0, len(known)) // max(before.page_size, 1))
    if len(moved) > full_pages:
        return None
    return _get_jobs(rt, ws, moved, gathered), gathered


def _get_jobs(rt: Runtime, ws: Workspace, job_ids: list[str], gathered: Gathered) -> ApiResult:
    """Get-job for active jobs no re-read answer held; one that is gone leaves the listing, any
    other failure keeps its last data (the next full listing settles it)."""

    def call(job_id: str) -> Callable[[], tuple[str, ApiResult]]:
        def ask() -> tuple[str, ApiResult]:
            return job_id, rt.client.get_job(ws.id, ws.token, job_id, _deadline(rt))

        return ask

    def take(answered: tuple[str, ApiResult]) -> ApiResult | None:
        job_id, result = answered
        if result.ok:
            gathered.keep(job_id, parse_job(result.data, gathered.secrets), time.time())
        elif result.reason == "not_found":
            gathered.gone.add(job_id)
        return None

    return _many(rt, [call(j) for j in job_ids], take)
