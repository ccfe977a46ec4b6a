"""Discovery (``discover: true``): listing a workspace's jobs, and why a failing listing is
not a fleet of failing jobs.

- The whole list is read every ``discover_interval``, and what can have changed of it at
  most every ``api.min_refresh_interval`` (see :mod:`.walks`), off the scrape's deadline: a
  walk still running at the deadline goes on and is used when it ends. A job that leaves the
  list is gone from the first scrape after the first good full listing without it.
- When a listing fails (any reason, or it is not asked during the workspace's 429 backoff),
  the discovered jobs keep the last good listing's data with ``up`` 1 (their
  ``last_success_timestamp_seconds`` shows its age) until the listing has failed for
  ``discover_grace_period`` in a row; then they are down with the listing's reason, until it
  answers again.
- Discovery's own health is ``convocore_crawler_discovery_up`` and
  ``convocore_crawler_discovery_error_info`` per workspace, and a failing listing logs one line
  per workspace and change, never one per job.
"""

from __future__ import annotations

import functools
import logging
import time

from ..config import Workspace
from ..convocore.trace import ProbeTrace
from ..convocore.transport import ApiResult
from . import walks
from .fetch import count_failure, in_backoff, note_result, overdue, start, wait
from .state import Fetch, Key, Listing, Outcome, Runtime, Target
from .targets import Sharding

log = logging.getLogger("exporter.collect")

# Discovery's reason while a workspace's first listing has not completed yet.
IN_PROGRESS = "listing_in_progress"


def _walk(rt: Runtime, ws: Workspace, full: bool, active: set[str]) -> ApiResult:
    """One walk of the workspace's list (see :mod:`.walks`), applied to its listing."""
    with rt.lock:
        listing = rt.listings.setdefault(ws.id, Listing())
    result, gathered, was_full = walks.walk(rt, ws, listing, active, full)
    if rt.closed:
        return result  # a reload or stop cut it short: the new config walks again
    if result.ok:
        _apply(rt, ws, listing, gathered, was_full)
    else:
        if result.reason is None:
            result = ApiResult(reason="invalid_response", detail=result.detail)
        count_failure(rt, None, ws.id, result.reason or "invalid_response")
    note_result(rt, ws.id, result)
    _record(rt, ws, result)
    return result


def _apply(rt: Runtime, ws: Workspace, listing: Listing, got: walks.Gathered, full: bool) -> None:
    """A full walk replaces what is known (or adds to it, when the list's total changed while
    it was read: a job may then have slipped between two pages); a refresh adds to it."""
    now = rt.clock()
    cut_before = listing.cut
    with rt.lock:
        if full and len(got.totals) <= 1:
            listing.jobs, listing.seen, listing.aged = got.jobs, got.seen, got.aged
            listing.positions = got.positions
            listing.tallies = got.tallies
        else:
            for job_id in got.aged | got.gone:
                listing.jobs.pop(job_id, None)
                listing.seen.pop(job_id, None)
                listing.positions.pop(job_id, None)
            listing.aged |= got.aged
            listing.aged -= got.gone
            tallies = {j: t for j, t in listing.tallies.items() if j not in got.gone}
            tallies.update(got.tallies)
            listing.tallies = tallies  # a new dict: readers of the old one keep a whole one
            listing.jobs.update(got.jobs)
            listing.seen.update(got.seen)
            for job_id, job in got.jobs.items():
                if job.finished:
                    listing.positions.pop(job_id, None)
            listing.positions.update(got.positions)
        listing.cursor, listing.page_size = got.cursor, got.page_size
        if got.totals:
            listing.total = max(got.totals)
        if full:
            listing.fetched_at = now
            listing.cut = got.cut
        listing.refreshed_at = now
        listing.last_success = time.time()
    if full and got.cut > cut_before:
        rt.own.discovery_truncated.labels(ws.id).inc(got.cut - cut_before)
        if cut_before == 0:
            log.warning(
                "discover_max_pages reached; the listing's later jobs are not exported",
                extra={
                    "workspace_id": ws.id,
                    "left_out": got.cut,
                    "discover_max_pages": ws.discover_max_pages,
                },
            )


def _due(rt: Runtime, ws: Workspace, listing: Listing | None, now: float) -> bool | None:
    """Whether a full walk (True) or a refresh (False) is due, or nothing (None)."""
    if listing is None or listing.fetched_at is None:
        return True
    if now - listing.fetched_at >= ws.discover_interval:
        return True
    if (
        listing.refreshed_at is None
        or now - listing.refreshed_at >= rt.config.api.min_refresh_interval
    ):
        return False
    return None


def refresh(
    rt: Runtime, deadline: float, only: str | None = None, sharding: Sharding | None = None
) -> dict[str, Fetch]:
    """Start the walks that are due of the discovering workspaces (or share one under way).

    A walk due while its workspace is in backoff after a 429 is not started: that counts as a
    failed listing (``rate_limited``). ``sharding`` picks the active jobs a refresh re-reads."""
    fetches: dict[str, Fetch] = {}
    now = time.monotonic()
    for ws in rt.config.workspaces:
        if not ws.discover or (only is not None and ws.id != only):
            continue
        listing = rt.listings.get(ws.id)
        with rt.lock:
            running = rt.inflight.get(("list", ws.id))
        if running is not None and running.running:
            fetches[ws.id] = running
            continue
        full = _due(rt, ws, listing, rt.clock())
        if full is None:
            continue
        if in_backoff(rt, ws.id, now):
            _record(rt, ws, ApiResult(reason="rate_limited", detail="in backoff after a 429"))
            continue
        active: set[str] = set()
        if listing is not None and not full:
            with rt.lock:
                active = {
                    job_id
                    for job_id, job in listing.jobs.items()
                    if not job.finished and (sharding is None or sharding.owns((ws.id, job_id)))
                }
        work = functools.partial(_walk, rt, ws, full, active)
        fetch = start(rt, ("list", ws.id), work, deadline, rt.walkers)
        if not full or listing is None or listing.fetched_at is None:
            fetches[ws.id] = fetch
        # else: a full listing after the first runs in the background; the scrape serves the
        # last one (and the walk notes how it went itself).
    return fetches


def wait_and_settle(rt: Runtime, fetches: dict[str, Fetch], deadline: float) -> None:
    """Wait for the walks within ``deadline`` (not for an overdue one). The discovered jobs
    depend on them, so this comes before the jobs are selected.

    A walk notes how it went itself when it ends, whoever waits for it. One still running at
    the deadline goes on: later scrapes serve the last complete listing meanwhile, and the
    first one after it ends uses it. Until a workspace's first listing is complete, its
    discovery is down with reason ``listing_in_progress``."""
    now = time.monotonic()
    wait([f for ws, f in fetches.items() if overdue(rt, ("list", ws), f, now) is None], deadline)
    for ws_id, fetch in fetches.items():
        ws = rt.workspaces.get(ws_id)
        listing = rt.listings.get(ws_id)
        if ws is None or fetch.future.done():
            continue
        first = listing is None or listing.fetched_at is None
        if first and (listing is None or listing.error in (None, IN_PROGRESS)):
            _record(rt, ws, ApiResult(reason=IN_PROGRESS, detail="the first listing runs"))


def _record(rt: Runtime, ws: Workspace, result: ApiResult) -> None:
    with rt.lock:
        listing = rt.listings.setdefault(ws.id, Listing())
        before = listing.error
        if result.ok:
            listing.error = listing.failed = listing.failing_since = None
            listing.expired = False
        else:
            listing.error = result.reason or "invalid_response"
            listing.failed = result
            if listing.failing_since is None:
                listing.failing_since = rt.clock()
        after = listing.error
    fields: dict[str, object] = {"workspace_id": ws.id}
    if after == IN_PROGRESS and before is None:
        log.info(
            "first job listing under way; its jobs are exported once it is complete",
            extra=fields,
        )
    elif after is not None and after != before:
        fields["reason"] = after
        if result.cause is not None:
            fields.update(host=rt.client.host, cause=result.cause, detail=result.detail)
        log.warning(
            "job listing failed; the discovered jobs keep the last listing for up to "
            "discover_grace_period",
            extra={**fields, "discover_grace_period": ws.discover_grace_period},
        )
    elif after is None and before == IN_PROGRESS:
        log.info("first job listing complete", extra={**fields, "jobs": len(listing.jobs)})
    elif after is None and before is not None:
        log.info("job listing answers again", extra={**fields, "previous_reason": before})


def outcomes(
    rt: Runtime, targets: list[Target], trace: ProbeTrace | None = None
) -> dict[Key, Outcome]:
    """The outcome of each discovered target, from its workspace's listing."""
    now = rt.clock()
    result: dict[Key, Outcome] = {}
    expired: dict[str, bool] = {}
    for target in targets:
        if target.explicit:
            continue
        ws = target.workspace
        listing = rt.listings.get(ws.id)
        if listing is None:
            continue
        if ws.id not in expired:
            expired[ws.id] = _expired(rt, ws, listing, now)
        job = listing.jobs.get(target.job_id)
        read_at = listing.seen.get(target.job_id, listing.last_success)
        if expired[ws.id]:
            reason = listing.error or "invalid_response"
            result[target.key] = Outcome(False, reason, job, read_at, listing.failed, quiet=True)
        else:
            result[target.key] = Outcome(True, None, job, read_at, quiet=True)
        if trace is not None:
            trace.note(_served(listing, expired[ws.id], now))
    return result


def _expired(rt: Runtime, ws: Workspace, listing: Listing, now: float) -> bool:
    """Whether the listing has failed for ``discover_grace_period``; logged once per spell."""
    with rt.lock:
        since = listing.failing_since
        if listing.error is None or since is None:
            return False
        if now - since < ws.discover_grace_period:
            return False
        first = not listing.expired
        listing.expired = True
        count = len(listing.jobs)
    if first:
        log.warning(
            "job listing failing for longer than discover_grace_period; its discovered jobs "
            "are down",
            extra={
                "workspace_id": ws.id,
                "reason": listing.error,
                "discover_grace_period": ws.discover_grace_period,
                "jobs": count,
            },
        )
    return True


def _served(listing: Listing, expired: bool, now: float) -> str:
    text = "served from the workspace's job listing (discover: true)"
    if listing.error is None or listing.failing_since is None:
        return text
    failing = now - listing.failing_since
    if expired:
        return f"{text}; down: the listing has failed for {failing:.0f}s ({listing.error})"
    return f"{text}; the listing has failed for {failing:.0f}s ({listing.error}), within grace"
