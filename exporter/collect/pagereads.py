"""Page statistics (``page_stats: true``): when a job's scraped-pages list is read, and how
much of it.

- A finished job's pages are read once after the job is known to be finished (from this
  scrape's get-job or listing), then served from memory for good.
- An active job's pages are re-read at most every ``page_stats_interval``. A re-read resumes
  at the API page holding the last page counted, onto the totals of the pages before it,
  when that last page is still there under the same id (the list only grew at its end);
  otherwise it reads the whole list again.
- At most ``page_stats_max_pages`` pages are counted per job; a job with more is counted once
  in ``page_stats_truncated_jobs_total``.
- A job's read starts as soon as that job's get-job has answered (or its data came from memory
  or its listing), within the same scrape; see :mod:`.pipeline`.
- Reads go through the same executor (``api.max_concurrency``), scrape deadline, per-workspace
  429 backoff and in-flight sharing as get-job. A failed read is retried at a later scrape,
  after ``api.min_refresh_interval`` doubled with each failure in a row (at most
  ``page_stats_interval``); meanwhile the last good totals are served and the failure shows
  on ``page_stats_error_info``. It never marks the job down.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

from ..config import Workspace
from ..convocore.api import PAGES_LIMIT, ListAnswer, Position
from ..convocore.pages import PageStats, page_key
from ..convocore.trace import ProbeTrace
from ..convocore.transport import ApiResult
from .backoff import in_backoff, note_result
from .fetch import result_of, start
from .state import Fetch, Key, Outcome, PageState, Runtime, Target

log = logging.getLogger("exporter.collect")

# A walk reads at least this many answers before it stops as truncated, whatever the cap.
_MIN_REQUESTS = 200


@dataclass(frozen=True, slots=True)
class PageView:
    """What one scrape serves of a job's pages: the last good totals and the last failure."""

    stats: PageStats | None
    error: str | None


@dataclass(frozen=True, slots=True)
class _Resume:
    """Where an incremental read starts, copied from the job's :class:`PageState`."""

    base: PageStats
    at: Position
    index: int
    page_size: int
    anchor_index: int
    anchor: str


def _resume_point(state: PageState) -> _Resume | None:
    if state.stats is None or state.base is None or state.anchor is None or state.counted < 1:
        return None
    return _Resume(
        state.base,
        state.resume_at,
        state.resume_index,
        state.page_size,
        state.counted - 1,
        state.anchor,
    )


class _Walk:
    """One walk over the pages list, adding what it reads onto the totals it starts from."""

    def __init__(self, cap: int, resume: _Resume | None) -> None:
        self.cap = cap
        self.resume = resume
        self.stats = resume.base.copy() if resume else PageStats()
        self.counted = self.stats.listed
        self.page_size = resume.page_size if resume else 0
        # Where the next read resumes: the last API page with a counted page, and the totals
        # of the pages before it.
        self.resume_at: Position = resume.at if resume else 1
        self.resume_index = resume.index if resume else 0
        self.base = self.stats.copy()
        self.last_key: str | None = None
        self.verified = resume is None
        self.restart = False  # the list is not what the resume point expects: read it all
        self.truncated = False
        self.ended = False

    def consume(self, batch: ListAnswer) -> bool:
        if self.page_size and batch.page_size != self.page_size:
            self.restart = True
            return False
        self.page_size = batch.page_size
        self.ended = batch.last
        if batch.items:
            self.resume_at = batch.at
            self.resume_index = batch.first_index
            self.base = self.stats.copy()
        for offset, item in enumerate(batch.items):
            if self.resume is not None and batch.first_index + offset == self.resume.anchor_index:
                if page_key(item) != self.resume.anchor:
                    self.restart = True
                    return False
                self.verified = True
            if self.counted >= self.cap:
                self.truncated = True
                return False
            self.stats.add(item)
            self.counted += 1
            self.last_key = page_key(item)
        if self.counted >= self.cap and not batch.last:
            self.truncated = True
            return False
        return True

    def done(self) -> bool:
        """Whether the walk counted the list, as far as the cap allows."""
        if not self.verified:
            self.restart = True
        return not self.restart


def _walk(
    rt: Runtime,
    ws: Workspace,
    job_id: str,
    deadline: float,
    resume: _Resume | None,
    *,
    trace: ProbeTrace | None,
) -> tuple[ApiResult, _Walk]:
    walk = _Walk(ws.page_stats_max_pages, resume)
    bound = max(math.ceil(ws.page_stats_max_pages / PAGES_LIMIT) + 2, _MIN_REQUESTS)
    answers = rt.client.list_pages(
        ws.id,
        ws.token,
        job_id,
        deadline,
        first=walk.resume_at,
        first_index=walk.resume_index,
        trace=trace,
    )
    for answer in answers:
        if not walk.consume(answer) or answers.answers >= bound:
            break
    result = answers.failed or ApiResult(data=answers.answers)
    if result.ok and not walk.ended and not walk.truncated and not walk.restart:
        walk.truncated = True  # stopped by the request bound: counted as far as it went
    return result, walk


def _read(
    rt: Runtime,
    ws: Workspace,
    job_id: str,
    finished: bool,
    deadline: float,
    *,
    trace: ProbeTrace | None = None,
) -> ApiResult:
    key = (ws.id, job_id)
    with rt.lock:
        state = rt.pages.setdefault(key, PageState())
        state.attempted_at = rt.clock()
        resume = _resume_point(state)
    result, walk = _walk(rt, ws, job_id, deadline, resume, trace=trace)
    if result.ok and not walk.done() and resume is not None:
        if trace is not None:
            trace.note("page stats: the pages list changed before the last page counted")
        result, walk = _walk(rt, ws, job_id, deadline, None, trace=trace)
    if result.ok and not walk.done():
        result = ApiResult(reason="invalid_response", detail="pageSize changed during the read")
    note_result(rt, ws.id, result)
    new_truncation = False
    with rt.lock:
        before = state.error
        if not result.ok:
            state.error = result.reason or "invalid_response"
            state.failures += 1
        else:
            state.stats = walk.stats
            state.base = None if finished else walk.base
            state.resume_at = walk.resume_at
            state.resume_index = walk.resume_index
            state.page_size = walk.page_size
            state.counted = walk.counted
            state.anchor = walk.last_key
            state.read_at = rt.clock()
            state.final = finished
            state.error = None
            state.failures = 0
            if walk.truncated:
                seen = rt.truncated.setdefault(ws.id, set())
                new_truncation = job_id not in seen
                seen.add(job_id)
    fields = {"workspace_id": ws.id, "job_id": job_id}
    if state.error is not None and state.error != before:
        log.warning("cannot read the job's pages list", extra={**fields, "reason": state.error})
    elif state.error is None and before is not None:
        log.info("the job's pages list is read again", extra={**fields, "previous_reason": before})
    if new_truncation:
        rt.own.page_stats_truncated.labels(ws.id).inc()
        log.warning(
            "page_stats_max_pages reached; the job's later pages are not counted",
            extra={**fields, "page_stats_max_pages": ws.page_stats_max_pages},
        )
    return result


def _due(rt: Runtime, ws: Workspace, finished: bool, state: PageState | None, now: float) -> bool:
    if state is None or state.attempted_at is None:
        return True
    if state.error is not None:
        # Retried after api.min_refresh_interval, doubling with each failure in a row up to
        # page_stats_interval: a list that keeps failing (a 404) costs no more than an active one.
        wait = rt.config.api.min_refresh_interval * 2.0 ** min(max(state.failures - 1, 0), 30)
        return now - state.attempted_at >= min(wait, ws.page_stats_interval)
    if finished:
        return not state.final
    if state.read_at is None:
        return True  # the first read is still under way: share it
    return now - state.read_at >= ws.page_stats_interval


def _why_not(ws: Workspace, state: PageState | None, now: float) -> str:
    """Why a probe did not read the pages list, for ``/probe?debug=true``."""
    if state is None or state.attempted_at is None:
        return "page stats: not read"
    if state.error is not None:
        return f"page stats: not read again yet after failing ({state.error})"
    if state.final:
        return "page stats: from memory: the job is finished and its pages were read"
    age = now - (state.read_at or state.attempted_at)
    interval = f"{ws.page_stats_interval:g}s"
    return f"page stats: from memory, read {age:.0f}s ago: page_stats_interval is {interval}"


class Reads:
    """One scrape's pages reads, started job by job as soon as each job's outcome is known
    (so a slow get-job delays only its own job's read). ``trace`` (one
    ``/probe?debug=true``) gets the pages requests and why none were made."""

    def __init__(self, rt: Runtime, deadline: float, trace: ProbeTrace | None = None) -> None:
        self.rt = rt
        self.deadline = deadline
        self.trace = trace
        self.now = rt.clock()
        self.wanted: list[Key] = []
        self.fetches: dict[Key, Fetch] = {}
        self.errors: dict[Key, str] = {}

    def start(self, target: Target, outcome: Outcome) -> Fetch | None:
        """Start the job's read if it is due (or share the one under way); None when there is
        nothing to wait for. A job without data (never fetched) has no page stats."""
        rt, ws, trace = self.rt, target.workspace, self.trace
        if not ws.page_stats or outcome.job is None:
            return None
        key = target.key
        self.wanted.append(key)
        finished = outcome.job.finished
        state = rt.pages.get(key)
        if not _due(rt, ws, finished, state, self.now):
            if trace is not None:
                trace.note(_why_not(ws, state, self.now))
            return None
        if in_backoff(rt, ws.id, time.monotonic()):
            self.errors[key] = "rate_limited"
            if trace is not None:
                trace.note("page stats: not read: the workspace is in backoff after a 429")
            return None
        work = functools.partial(_read, rt, ws, target.job_id, finished, self.deadline, trace=trace)

        def still_due() -> bool:  # asked under rt.lock: another scrape's read may have ended
            return _due(rt, ws, finished, rt.pages.get(key), self.now)

        fetch = start(rt, ("pages", *key), work, self.deadline, still_due)
        if fetch is None:
            if trace is not None:
                trace.note(_why_not(ws, rt.pages.get(key), self.now))
            return None
        self.fetches[key] = fetch
        return fetch

    def views(self) -> dict[Key, PageView]:
        """What each job of a ``page_stats`` workspace serves: the last good totals, and the
        failure of this scrape's read (``deadline`` for one still running)."""
        rt = self.rt
        for key, fetch in self.fetches.items():
            if fetch.future.done():
                fields = {"workspace_id": key[0], "job_id": key[1]}
                result = result_of(fetch, "pages read", fields)
                if not result.ok:
                    self.errors[key] = result.reason or "invalid_response"
            else:
                with rt.lock:
                    pending = rt.overdue.get(("pages", *key), "deadline")
                self.errors[key] = pending
        views: dict[Key, PageView] = {}
        with rt.lock:
            for key in self.wanted:
                state = rt.pages.get(key)
                error = self.errors.get(key) or (state.error if state else None)
                if state is not None or error is not None:
                    views[key] = PageView(state.stats if state else None, error)
        return views
