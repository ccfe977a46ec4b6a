"""Discovery's walks over a workspace's job list, off the scrape's deadline.

A *full* walk reads the whole list (at most ``discover_max_pages`` answers) and replaces what
is known of the workspace's jobs; a *refresh* re-reads only what can have changed since:

- page-numbered lists: the first page (new jobs of a list that puts the newest first), the
  pages where the active jobs stood, and the new pages at the end when the total grew (new
  jobs of a list that puts the oldest first), all at once;
- cursor lists, which can only be read from the head one answer after another: answers
  while each holds an active or a new job;
- then get-job for each active job that none of those answers held (it moved), unless that
  would cost more requests than a full walk, which is then made instead.

Each request has its own ``api.timeout_seconds``: a walk is not bound to the scrape that
started it. Page-numbered answers are asked several at once, within half of
``api.max_concurrency`` (the other half stays free for the scrape's get-job requests), and go
through the same outage backoff and 429 handling as every request.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from ..config import Workspace, is_identifier
from ..convocore.api import ListAnswer, Position
from ..convocore.model import Job, JobTally, parse_job
from ..convocore.transport import ApiResult
from .state import Listing, Runtime

T = TypeVar("T")


@dataclass(slots=True)
class Gathered:
    """What one walk read, before it is applied to the workspace's :class:`Listing`."""

    horizon: float | None  # finished before this (wall time): kept as a tally only
    secrets: tuple[str, ...]  # redacted from a job's failure text
    jobs: dict[str, Job] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    aged: set[str] = field(default_factory=set)
    tallies: dict[str, JobTally] = field(default_factory=dict)  # every job read, aged included
    positions: dict[str, int] = field(default_factory=dict)
    totals: set[int] = field(default_factory=set)  # every total the answers gave
    cursor: bool = False
    page_size: int = 0
    answers: int = 0
    cut: int = 0  # jobs left out at discover_max_pages (at least 1 for a cut cursor list)
    gone: set[str] = field(default_factory=set)  # get-job answered not_found

    def add(self, answer: ListAnswer, known: set[str] | None = None) -> tuple[int, int]:
        """Keep an answer's jobs, and where its active ones stand; how many of them are active,
        and how many are not in ``known``."""
        self.answers += 1
        self.cursor = answer.cursor
        self.page_size = answer.page_size
        if answer.total is not None:
            self.totals.add(answer.total)
        now = time.time()
        active = new = 0
        for offset, item in enumerate(answer.items):
            job_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(job_id, str) or not is_identifier(job_id):
                continue
            job = parse_job(item, self.secrets)
            self.keep(job_id, job, now)
            if not job.finished:
                self.positions[job_id] = answer.first_index + offset
                active += 1
            if known is not None and job_id not in known:
                new += 1
        return active, new

    def keep(self, job_id: str, job: Job, now: float) -> None:
        self.tallies[job_id] = JobTally.of(job)
        if (
            self.horizon is not None
            and job.finished
            and job.updated_timestamp is not None
            and job.updated_timestamp < self.horizon
        ):
            self.aged.add(job_id)
            self.jobs.pop(job_id, None)
            return
        self.aged.discard(job_id)
        self.jobs[job_id] = job
        self.seen[job_id] = now


def _deadline(rt: Runtime) -> float:
    """One request's deadline, retries included: the walk itself has none."""
    return time.monotonic() + 2 * rt.config.api.timeout_seconds + 1.0


def _stopped() -> ApiResult:
    return ApiResult(reason="deadline", detail="the config was reloaded or the exporter stopped")


def _ask(rt: Runtime, ws: Workspace, at: Position, first_index: int | None = None) -> ApiResult:
    return rt.client.list_answer(ws.id, ws.token, at, _deadline(rt), first_index=first_index)


def _many(
    rt: Runtime,
    calls: Iterable[Callable[[], T]],
    take: Callable[[T], ApiResult | None],
) -> ApiResult:
    """Run ``calls`` on the request executor, at most half of ``api.max_concurrency`` at once,
    handing each result to ``take`` in this thread as it comes; the first failure (a result
    ``take`` returns) ends the lot, and what was not sent yet is not sent."""
    width = max(1, rt.config.api.max_concurrency // 2)
    pending = collections.deque(calls)
    running: set[concurrent.futures.Future[T]] = set()
    try:
        while pending or running:
            while pending and len(running) < width:
                try:
                    running.add(rt.executor.submit(pending.popleft()))
                except RuntimeError:
                    return _stopped()
            done, running = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                if future.cancelled():
                    return _stopped()
                failed = take(future.result())
                if failed is not None:
                    return failed
    finally:
        for future in running:
            future.cancel()
    return ApiResult(data=None)


def walk(
    rt: Runtime, ws: Workspace, listing: Listing, active: set[str], full: bool
) -> tuple[ApiResult, Gathered, bool]:
    """A refresh of ``listing`` for the ``active`` jobs (this shard's), or a full walk when
    ``full`` or when a refresh would cost more; and whether it was full."""
    if not full:
        refreshed = _refresh(rt, ws, listing, active)
        if refreshed is not None:
            return (*refreshed, False)
    gathered = Gathered(_horizon(ws), rt.secrets)
    return _full(rt, ws, gathered), gathered, True


def _full(rt: Runtime, ws: Workspace, gathered: Gathered) -> ApiResult:
    """Read the whole list into ``gathered``, as far as ``discover_max_pages`` allows."""
    first = _ask(rt, ws, 1)
    if not first.ok:
        return first
    answer: ListAnswer = first.data
    gathered.add(answer)
    cap = ws.discover_max_pages
    pages = answer.pages
    if pages is None:
        return _onward(
            rt, ws, answer, gathered, known=set(), counts=(0, 0), go_on=lambda _a, _n: True
        )
    if pages > cap and answer.total is not None:
        gathered.cut = answer.total - cap * answer.page_size
    return _pages(rt, ws, range(2, min(pages, cap) + 1), gathered)


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

    return _many(rt, [functools.partial(_ask, rt, ws, n) for n in numbers], take)


def _onward(
    rt: Runtime,
    ws: Workspace,
    answer: ListAnswer,
    gathered: Gathered,
    *,
    known: set[str],
    counts: tuple[int, int],
    go_on: Callable[[int, int], bool],
) -> ApiResult:
    """Follow the list one answer after another from ``answer`` (cursors, or page numbers
    without a total) while ``go_on(active, new)`` of the last answer says so (``counts`` are
    those of ``answer``), at most ``discover_max_pages`` answers in all. A repeated cursor is
    ``invalid_response``."""
    seen_cursors: set[str] = set()
    while not answer.last and go_on(*counts):
        if gathered.answers >= ws.discover_max_pages:
            gathered.cut = max(gathered.cut, 1)
            break
        if answer.next_cursor is not None:
            if answer.next_cursor in seen_cursors:
                return ApiResult(reason="invalid_response", detail="nextCursor repeats")
            seen_cursors.add(answer.next_cursor)
            result = _ask(rt, ws, answer.next_cursor, answer.first_index + len(answer.items))
        else:
            assert isinstance(answer.at, int)
            result = _ask(rt, ws, answer.at + 1)
        if not result.ok:
            return result
        if result.data.cursor != answer.cursor:
            return ApiResult(reason="invalid_response", detail="the list changed its paging")
        answer = result.data
        counts = gathered.add(answer, known)
    return ApiResult(data=None)


def _refresh(
    rt: Runtime, ws: Workspace, listing: Listing, active: set[str]
) -> tuple[ApiResult, Gathered] | None:
    """Re-read what can have changed; None when a full walk is the better buy (the list
    changed its paging or page size, or more active jobs moved than a full walk has pages)."""
    gathered = Gathered(_horizon(ws), rt.secrets)
    known = set(listing.jobs) | listing.aged
    first = _ask(rt, ws, 1)
    if not first.ok:
        return first, gathered
    answer: ListAnswer = first.data
    counts = gathered.add(answer, known)
    if answer.cursor != listing.cursor or answer.page_size != listing.page_size:
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
        wanted = {listing.positions[j] // size + 1 for j in active if j in listing.positions}
        if listing.total is not None and answer.total is not None and answer.total > listing.total:
            wanted.update(range(listing.total // size + 1, pages + 1))
        cap = min(pages, ws.discover_max_pages)
        result = _pages(rt, ws, sorted(n for n in wanted if 1 < n <= cap), gathered)
    if not result.ok:
        return result, gathered
    moved = [j for j in active if j not in gathered.jobs and j not in gathered.aged]
    full_pages = -(-max(listing.total or 0, len(known)) // max(listing.page_size, 1))
    if len(moved) > full_pages:
        return None
    return _get_jobs(rt, ws, moved, gathered), gathered


def _get_jobs(rt: Runtime, ws: Workspace, job_ids: list[str], gathered: Gathered) -> ApiResult:
    """Get-job for active jobs no re-read answer held; one that is gone leaves the listing, any
    other failure keeps its last data (the next full walk settles it)."""

    def call(job_id: str) -> tuple[str, ApiResult]:
        return job_id, rt.client.get_job(ws.id, ws.token, job_id, _deadline(rt))

    def take(answered: tuple[str, ApiResult]) -> ApiResult | None:
        job_id, result = answered
        if result.ok:
            gathered.keep(job_id, parse_job(result.data, gathered.secrets), time.time())
        elif result.reason == "not_found":
            gathered.gone.add(job_id)
        return None

    return _many(rt, [functools.partial(call, j) for j in job_ids], take)


def _horizon(ws: Workspace) -> float | None:
    if ws.include_finished_for is None:
        return None
    return time.time() - ws.include_finished_for
