"""Fetching within the scrape deadline: one shared in-flight fetch per job or pages read, and
settling what came back into an :class:`Outcome` (discovery's walks are its owners', see
:mod:`.discovery`; the rate-limit backoff is :mod:`.backoff`)."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Iterable

from ..config import Workspace
from ..convocore.model import Job, parse_job
from ..convocore.trace import ProbeTrace
from ..convocore.transport import ApiResult
from .backoff import in_backoff, note_result
from .state import Fetch, JobState, Key, Outcome, Runtime, Target

log = logging.getLogger("exporter.collect")

# Reasons after which the job's last good data is no longer served.
_FORGET_REASONS = frozenset({"not_found"})


def _fetch_job(
    rt: Runtime, ws: Workspace, job_id: str, deadline: float, trace: ProbeTrace | None = None
) -> ApiResult:
    result = rt.client.get_job(ws.id, ws.token, job_id, deadline, trace)
    key = (ws.id, job_id)
    if result.ok:
        try:
            job = parse_job(result.data, rt.secrets)
        except Exception:  # a parser bug must not take the scrape down
            log.exception("cannot parse job", extra={"workspace_id": ws.id, "job_id": job_id})
            result = ApiResult(reason="invalid_response", detail="unparseable job")
        else:
            with rt.lock:
                state = rt.states.setdefault(key, JobState())
                state.job = job
                state.fetched_at = time.monotonic()
                state.last_success = time.time()
                state.detailed = True
            result = ApiResult(data=job)
    elif result.reason in _FORGET_REASONS:
        with rt.lock:
            known = rt.states.get(key)
            if known is not None:
                known.job = None
    note_result(rt, ws.id, result)
    return result


def start(
    rt: Runtime,
    key: object,
    work: Callable[[], ApiResult],
    deadline: float,
    due: Callable[[], bool] | None = None,
) -> Fetch | None:
    """Start ``work`` on the runtime's request executor unless the same fetch is already
    under way (then share it); with ``due``, only while ``due()`` still says so, asked under
    the runtime's lock (else None). A caller decides that a read is due before it calls;
    meanwhile another thread's read of the same thing can end (its fetch leaves
    ``rt.inflight`` once it stored what it read), and starting a second one then would read
    it all again.

    ``deadline`` is the starting scrape's, which ``work`` keeps to. A fetch still queued past
    the deadline of the scrape that started it would only answer ``deadline``: it is
    replaced by a new one.
    """
    now = time.monotonic()
    with rt.lock:
        stale = rt.inflight.get(key)
        if stale is not None and (stale.running or stale.deadline > now):
            return stale
        if due is not None and not due():
            return None
        fetch = Fetch(deadline)
        try:
            fetch.future = rt.executor.submit(fetch.run, work)
        except RuntimeError:
            # A reload or stop shut this config's executor mid-scrape: read as the deadline.
            fetch.future = concurrent.futures.Future()
            fetch.future.cancel()
            return fetch
        rt.inflight[key] = fetch

    def done(future: concurrent.futures.Future[ApiResult]) -> None:
        result = None if future.cancelled() or future.exception() else future.result()
        with rt.lock:
            if rt.inflight.get(key) is fetch:
                del rt.inflight[key]
            if result is not None and result.cause == "timeout":
                rt.overdue[key] = result.reason or "timeout"
            elif result is not None or not future.cancelled():
                rt.overdue.pop(key, None)

    if stale is not None:
        stale.future.cancel()
    fetch.future.add_done_callback(done)
    return fetch


def overdue(rt: Runtime, key: object, fetch: Fetch, now: float) -> str | None:
    """Why a scrape does not wait for ``fetch`` (the reason it reports), or None.

    A fetch is not waited for when the last fetch of the same key timed out in flight (the
    API did not answer it within a deadline), or when it is itself still running from a
    scrape that has already given up on it.
    """
    with rt.lock:
        reason = rt.overdue.get(key)
    if reason is None and fetch.running and fetch.deadline <= now:
        reason = "deadline"
    return reason


def count_failure(rt: Runtime, fetch: Fetch | None, ws_id: str, reason: str) -> None:
    if fetch is not None:
        with rt.lock:
            if fetch.counted:
                return
            fetch.counted = True
    rt.own.count_error(ws_id, reason)


def _needs_fetch(rt: Runtime, state: JobState | None, now: float) -> bool:
    if state is None or state.job is None or state.fetched_at is None or not state.detailed:
        return True
    if state.job.finished and not rt.config.api.refresh_finished:
        return False
    return now - state.fetched_at >= rt.config.api.min_refresh_interval


def begin_job(
    rt: Runtime,
    target: Target,
    deadline: float,
    trace: ProbeTrace | None = None,
    now: float | None = None,
) -> Outcome | Fetch:
    """An explicit job's outcome when it needs no fetch (fresh in memory, or the workspace is
    in backoff), else its fetch, started or shared. ``trace`` is told which and why; ``now``
    (``time.monotonic()``) lets a scrape of many jobs read the clock once."""
    if now is None:
        now = time.monotonic()
    key = target.key
    ws = target.workspace
    state = rt.states.get(key)
    if not _needs_fetch(rt, state, now):
        assert state is not None and state.fetched_at is not None and state.job is not None
        if trace is not None:
            trace.note(_from_memory(rt, state, now))
        return _served(state, state.job)
    if in_backoff(rt, ws.id, now):
        if trace is not None:
            trace.note("not fetched: the workspace is in backoff after a 429")
        return _down(rt, key, "rate_limited")
    work = functools.partial(_fetch_job, rt, ws, target.job_id, deadline, trace)
    fetch = start(rt, ("job", *key), work, deadline)
    assert fetch is not None  # no due test: always a fetch
    return fetch


def wait(fetches: Iterable[Fetch], deadline: float) -> None:
    futures = [f.future for f in fetches]
    if futures:
        concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()))


def _from_memory(rt: Runtime, state: JobState, now: float) -> str:
    assert state.job is not None and state.fetched_at is not None
    age = now - state.fetched_at
    if state.job.finished and not rt.config.api.refresh_finished:
        why = f"the job is {state.job.status} and api.refresh_finished is false"
    else:
        why = f"api.min_refresh_interval is {rt.config.api.min_refresh_interval:g}s"
    return f"served from memory, fetched {age:.1f}s ago: {why}"


def _served(state: JobState, job: Job) -> Outcome:
    """``job`` up, as last served while it and its last success are the same."""
    served = state.served
    if served is None or served.job is not job or served.last_success != state.last_success:
        served = state.served = Outcome(True, None, job, state.last_success)
    return served


def _down(rt: Runtime, key: Key, reason: str, failed: ApiResult | None = None) -> Outcome:
    state = rt.states.get(key)
    if state is None:
        return Outcome(False, reason, None, None, failed)
    return Outcome(False, reason, state.job, state.last_success, failed)


def result_of(fetch: Fetch, what: str, fields: dict[str, str]) -> ApiResult:
    """The fetch's result; ``deadline`` when it is still running or was cancelled (a reload)."""
    if not fetch.future.done() or fetch.future.cancelled():
        return ApiResult(reason="deadline")
    try:
        return fetch.future.result()
    except Exception:
        log.exception(f"{what} crashed", extra=fields)
        return ApiResult(reason="invalid_response", detail="internal error")


def settle_job(rt: Runtime, key: Key, fetch: Fetch, pending: str = "deadline") -> Outcome:
    """The job's outcome from its fetch; down with reason ``pending`` when it has not
    answered (yet)."""
    if fetch.future.done():
        result = result_of(fetch, "job fetch", {"workspace_id": key[0], "job_id": key[1]})
    else:
        result = ApiResult(reason=pending, detail="no answer yet")
    if result.ok:
        state = rt.states.get(key)
        if state is None:
            return Outcome(True, None, result.data, None)
        return _served(state, result.data)
    reason = result.reason or "invalid_response"
    count_failure(rt, fetch, key[0], reason)
    return _down(rt, key, reason, result)


def log_transitions(rt: Runtime, outcomes: dict[Key, Outcome]) -> None:
    """Log a job going down or coming back, once per change, not once per scrape."""
    changes: list[tuple[Key, str | None, Outcome]] = []
    with rt.lock:
        for key, outcome in outcomes.items():
            state = rt.states.get(key)
            if state is None:
                state = rt.states[key] = JobState()
            if state.down_reason != outcome.reason:
                if not outcome.quiet:
                    changes.append((key, state.down_reason, outcome))
                state.down_reason = outcome.reason
    for (ws_id, job_id), before, outcome in changes:
        fields = {"workspace_id": ws_id, "job_id": job_id}
        failed = outcome.failed
        if outcome.reason is not None:
            fields["reason"] = outcome.reason
            if failed is not None and failed.cause is not None:
                # No HTTP answer: which host, and why (the request's path is at debug level).
                fields.update(host=rt.client.host, cause=failed.cause, detail=failed.detail)
            log.warning("job is down", extra=fields)
        elif before is not None:
            log.info("job is up again", extra={**fields, "previous_reason": before})


def forget_others(rt: Runtime, keep: set[Key]) -> None:
    """Drop the state of jobs no longer exported (gone from the listing, aged out), so
    months of job churn do not grow memory."""
    with rt.lock:
        for key in rt.states.keys() - keep:
            del rt.states[key]
        for key in rt.pages.keys() - keep:
            del rt.pages[key]
            rt.truncated.get(key[0], set()).discard(key[1])
    rt.rendered.keep_only(keep)
