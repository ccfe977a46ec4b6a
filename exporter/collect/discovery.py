"""Discovery (``discover: true``): listing a workspace's jobs, and why a failing listing is
not a fleet of failing jobs.

- The listing is re-read at most every ``api.min_refresh_interval``; a job that leaves it is
  gone from the first scrape after the first good listing without it.
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

from ..config import Workspace, is_identifier
from ..convocore.model import Job, parse_job
from ..convocore.trace import ProbeTrace
from ..convocore.transport import ApiResult
from .fetch import count_failure, in_backoff, note_result, overdue, result_of, start, wait
from .state import Fetch, Key, Listing, Outcome, Runtime, Target

log = logging.getLogger("exporter.collect")


def _list_jobs(rt: Runtime, ws: Workspace, deadline: float) -> ApiResult:
    """Every job of the workspace (the client follows the pagination), kept as the listing."""
    result = rt.client.list_jobs(ws.id, ws.token, deadline)
    if result.ok:
        jobs: dict[str, Job] = {}
        for item in result.data:
            if is_identifier(item["id"]):
                jobs[item["id"]] = parse_job(item, rt.secrets)
        with rt.lock:
            listing = rt.listings.setdefault(ws.id, Listing())
            listing.jobs = jobs
            listing.fetched_at = time.monotonic()
            listing.last_success = time.time()
        result = ApiResult(data=None)
    note_result(rt, ws.id, result)
    return result


def refresh(rt: Runtime, deadline: float, only: str | None = None) -> dict[str, Fetch]:
    """Start listing the discovering workspaces whose listing is due (or share a running one).

    A listing due while its workspace is in backoff after a 429 is not asked: that counts as
    a failed listing (``rate_limited``)."""
    fetches: dict[str, Fetch] = {}
    now = time.monotonic()
    for ws in rt.config.workspaces:
        if not ws.discover or (only is not None and ws.id != only):
            continue
        listing = rt.listings.get(ws.id)
        fresh = (
            listing is not None
            and listing.fetched_at is not None
            and now - listing.fetched_at < rt.config.api.min_refresh_interval
        )
        if fresh:
            continue
        if in_backoff(rt, ws.id, now):
            _record(rt, ws, ApiResult(reason="rate_limited", detail="in backoff after a 429"))
            continue
        work = functools.partial(_list_jobs, rt, ws, deadline)
        fetches[ws.id] = start(rt, ("list", ws.id), work, deadline)
    return fetches


def wait_and_settle(rt: Runtime, fetches: dict[str, Fetch], deadline: float) -> None:
    """Wait for the listings within ``deadline`` (not for an overdue one) and note how each
    went. The discovered jobs depend on them, so this comes before the jobs are selected."""
    now = time.monotonic()
    wait([f for ws, f in fetches.items() if overdue(rt, ("list", ws), f, now) is None], deadline)
    for ws_id, fetch in fetches.items():
        ws = rt.workspaces.get(ws_id)
        if ws is None:
            continue
        result = result_of(fetch, "job listing", {"workspace_id": ws_id})
        if not fetch.future.done():
            with rt.lock:  # not waited for (overdue), or still running at the deadline
                reason = rt.overdue.get(("list", ws_id), "deadline")
            result = ApiResult(reason=reason, detail="no answer yet")
        if not result.ok:
            if result.reason is None:
                result = ApiResult(reason="invalid_response", detail=result.detail)
            count_failure(rt, fetch, ws_id, result.reason or "invalid_response")
        _record(rt, ws, result)


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
    if after is not None and after != before:
        fields["reason"] = after
        if result.cause is not None:
            fields.update(host=rt.client.host, cause=result.cause, detail=result.detail)
        log.warning(
            "job listing failed; the discovered jobs keep the last listing for up to "
            "discover_grace_period",
            extra={**fields, "discover_grace_period": ws.discover_grace_period},
        )
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
        if expired[ws.id]:
            reason = listing.error or "invalid_response"
            result[target.key] = Outcome(
                False, reason, job, listing.last_success, listing.failed, quiet=True
            )
        else:
            result[target.key] = Outcome(True, None, job, listing.last_success, quiet=True)
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
