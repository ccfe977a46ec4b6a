"""Collection: which jobs to export, fetching them within the scrape deadline, and turning
what was fetched into metric families.

State kept between scrapes is only what the metrics need: the last good parsed :class:`Job`
of each target (a few hundred bytes, never the URL arrays), when it was fetched, and the
per-workspace rate-limit backoff. Every series is built fresh on each scrape from that state,
so nothing lingers after a job leaves the config or the API.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

from . import __version__, metrics
from .client import ApiResult, ApiStats, ConvocoreClient
from .config import Config, Workspace, is_identifier
from .exposition import Family, Sample, from_client_collector, render_labels
from .model import STATUSES, Job, parse_job

log = logging.getLogger(__name__)

Key = tuple[str, str]

LIST_PAGE_LIMIT = 100
MAX_LIST_PAGES = 200
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
# Reasons after which the job's last good data is no longer served.
_FORGET_REASONS = frozenset({"not_found"})


@dataclass(slots=True)
class JobState:
    """What is remembered of one job between scrapes."""

    job: Job | None = None
    fetched_at: float | None = None  # monotonic time of the last good fetch
    last_success: float | None = None  # wall-clock time of the last good fetch
    detailed: bool = False  # from get-job (has the URL-array lengths), not only a list item
    down_reason: str | None = None  # outcome of the last scrape, for logging transitions


@dataclass(slots=True)
class Listing:
    """A workspace's jobs as last listed by discovery."""

    jobs: dict[str, Job] = field(default_factory=dict)
    fetched_at: float | None = None
    last_success: float | None = None


@dataclass(slots=True)
class Backoff:
    until: float = 0.0  # monotonic
    wall_until: float = 0.0
    strikes: int = 0


class _Fetch:
    """One upstream fetch, shared by every scrape that overlaps it."""

    __slots__ = ("counted", "future")

    def __init__(self, future: concurrent.futures.Future[ApiResult]) -> None:
        self.future = future
        self.counted = False


@dataclass(frozen=True, slots=True)
class Target:
    workspace: Workspace
    job_id: str
    name: str = ""
    explicit: bool = True

    @property
    def key(self) -> Key:
        return (self.workspace.id, self.job_id)


@dataclass(slots=True)
class Outcome:
    up: bool
    reason: str | None
    job: Job | None
    last_success: float | None


def shard_of(workspace_id: str, job_id: str, total: int) -> int:
    """A stable shard for a job: the same on every replica, run and Python version."""
    digest = hashlib.sha256(f"{workspace_id}/{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


class Runtime:
    """Everything that belongs to one loaded config; a reload replaces it whole."""

    def __init__(self, config: Config, stats: ApiStats) -> None:
        self.config = config
        self.client = ConvocoreClient(config.api, stats)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.api.max_concurrency, thread_name_prefix="upstream"
        )
        self.lock = threading.Lock()
        self.states: dict[Key, JobState] = {}
        self.listings: dict[str, Listing] = {}
        self.backoffs: dict[str, Backoff] = {}
        self.inflight: dict[object, _Fetch] = {}
        self.labels: dict[Key, str] = {}
        self.workspaces = {ws.id: ws for ws in config.workspaces}
        self.explicit: dict[Key, Target] = {
            (ws.id, job.id): Target(ws, job.id, job.name)
            for ws in config.workspaces
            for job in ws.jobs
        }

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def job_labels(self, key: Key) -> str:
        text = self.labels.get(key)
        if text is None:
            text = render_labels(metrics.JOB_LABELS, key)
            self.labels[key] = text
        return text


class Exporter:
    """Holds the current config (swapped atomically on reload) and collects on demand."""

    def __init__(
        self,
        config: Config,
        *,
        shard: int = 0,
        total_shards: int = 1,
        process_collectors: list[Callable[[], list[Family]]] | None = None,
    ) -> None:
        self.stats = ApiStats()
        self.shard = shard
        self.total_shards = total_shards
        self._runtime = Runtime(config, self.stats)
        self._swap_lock = threading.Lock()
        self._process_collectors = process_collectors or []
        self._dropped: dict[str, int] = {}
        self._dropped_keys: set[Key] = set()
        self.reload_success = True
        self.reload_success_time = time.time()

    @property
    def config(self) -> Config:
        return self._runtime.config

    def set_config(self, config: Config) -> None:
        """Start serving ``config``; caches of the old config are dropped."""
        with self._swap_lock:
            old = self._runtime
            self._runtime = Runtime(config, self.stats)
            self.reload_success = True
            self.reload_success_time = time.time()
        old.close()

    def close(self) -> None:
        self._runtime.close()

    # -- which jobs ---------------------------------------------------------------------

    def in_shard(self, key: Key) -> bool:
        return self.total_shards == 1 or shard_of(*key, self.total_shards) == self.shard

    def _discovered_targets(self, rt: Runtime, ws: Workspace) -> list[Target]:
        listing = rt.listings.get(ws.id)
        if listing is None:
            return []
        return [
            Target(ws, job_id, "", explicit=False)
            for job_id in listing.jobs
            if (ws.id, job_id) not in rt.explicit
        ]

    def _select(self, rt: Runtime, now_wall: float) -> list[Target]:
        """Explicit jobs, then discovered ones, filtered by shard, age and ``max_jobs``."""
        selected: list[Target] = []
        for ws in rt.config.workspaces:
            candidates = [rt.explicit[(ws.id, job.id)] for job in ws.jobs]
            if ws.discover:
                candidates.extend(self._discovered_targets(rt, ws))
            candidates = [t for t in candidates if self.in_shard(t.key)]
            if ws.include_finished_for is not None:
                # Only discovered jobs age out: a job listed by hand is always exported.
                horizon = now_wall - ws.include_finished_for
                candidates = [
                    t for t in candidates if t.explicit or not self._finished_before(rt, t, horizon)
                ]
            if ws.max_jobs is not None and len(candidates) > ws.max_jobs:
                candidates = self._cap(rt, ws, candidates, ws.max_jobs)
            selected.extend(candidates)
        return selected

    def _known_job(self, rt: Runtime, target: Target) -> Job | None:
        state = rt.states.get(target.key)
        if state is not None and state.job is not None:
            return state.job
        listing = rt.listings.get(target.workspace.id)
        return listing.jobs.get(target.job_id) if listing else None

    def _finished_before(self, rt: Runtime, target: Target, horizon: float) -> bool:
        job = self._known_job(rt, target)
        if job is None or not job.finished:
            return False
        return job.updated_timestamp is not None and job.updated_timestamp < horizon

    def _cap(self, rt: Runtime, ws: Workspace, targets: list[Target], cap: int) -> list[Target]:
        def rank(target: Target) -> tuple[int, int, float]:
            job = self._known_job(rt, target)
            active = 0 if job is None or not job.finished else 1
            updated = job.updated_timestamp if job and job.updated_timestamp else 0.0
            return (0 if target.explicit else 1, active, -updated)

        ordered = sorted(targets, key=rank)
        kept, dropped = ordered[:cap], ordered[cap:]
        new = [t.key for t in dropped if t.key not in self._dropped_keys]
        if new:
            with rt.lock:
                self._dropped_keys.update(new)
                self._dropped[ws.id] = self._dropped.get(ws.id, 0) + len(new)
            log.warning(
                "max_jobs reached; jobs not exported",
                extra={"workspace_id": ws.id, "dropped": len(new), "max_jobs": cap},
            )
        keep = {t.key for t in kept}
        return [t for t in targets if t.key in keep]

    # -- fetching -----------------------------------------------------------------------

    def _in_backoff(self, rt: Runtime, workspace_id: str, now: float) -> bool:
        backoff = rt.backoffs.get(workspace_id)
        return backoff is not None and backoff.until > now

    def _note_result(self, rt: Runtime, workspace_id: str, result: ApiResult) -> None:
        with rt.lock:
            backoff = rt.backoffs.setdefault(workspace_id, Backoff())
            if result.reason == "rate_limited":
                if result.retry_after is not None:
                    delay = result.retry_after
                else:
                    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**backoff.strikes)
                    delay *= 0.5 + random.random()  # noqa: S311 - jitter, not crypto
                backoff.strikes += 1
                backoff.until = time.monotonic() + delay
                backoff.wall_until = time.time() + delay
            elif result.ok and backoff.until <= time.monotonic():
                # A success that raced a 429 does not end the backoff that 429 started.
                backoff.strikes = 0

    def _fetch_job(self, rt: Runtime, ws: Workspace, job_id: str, deadline: float) -> ApiResult:
        result = rt.client.get_job(ws.id, ws.token, job_id, deadline)
        key = (ws.id, job_id)
        if result.ok:
            try:
                job = parse_job(result.data)
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
        self._note_result(rt, ws.id, result)
        return result

    def _list_jobs(self, rt: Runtime, ws: Workspace, deadline: float) -> ApiResult:
        """Read every page of the workspace's job list (both pagination styles)."""
        jobs: dict[str, Job] = {}
        params: dict[str, str] = {"page": "1", "limit": str(LIST_PAGE_LIMIT)}
        page = 1
        seen_cursors: set[str] = set()
        result = ApiResult(reason="invalid_response")
        for _ in range(MAX_LIST_PAGES):
            result = rt.client.list_jobs(ws.id, ws.token, params, deadline)
            if not result.ok:
                break
            data = result.data
            items = data.get("jobs")
            if not isinstance(items, list):
                result = ApiResult(reason="invalid_response", detail="jobs is not a list")
                break
            for item in items:
                if isinstance(item, dict):
                    job_id = item.get("id")
                    if isinstance(job_id, str) and is_identifier(job_id):
                        jobs[job_id] = parse_job(item)
            cursor = data.get("nextCursor")
            if isinstance(cursor, str) and cursor:
                if data.get("hasMore") is False or cursor in seen_cursors or not items:
                    break
                seen_cursors.add(cursor)
                params = {"cursor": cursor, "limit": str(LIST_PAGE_LIMIT)}
                continue
            if "nextCursor" in data or "hasMore" in data:
                break  # a cursor-style answer without a next cursor is the last page
            if not items:
                break
            total = data.get("total")
            size = data.get("pageSize")
            page_size = size if isinstance(size, int) and size > 0 else len(items)
            if isinstance(total, int) and not isinstance(total, bool):
                if page * page_size >= total:
                    break
            elif len(items) < LIST_PAGE_LIMIT:
                break
            page += 1
            params = {"page": str(page), "limit": str(LIST_PAGE_LIMIT)}
        if result.ok:
            with rt.lock:
                listing = rt.listings.setdefault(ws.id, Listing())
                listing.jobs = jobs
                listing.fetched_at = time.monotonic()
                listing.last_success = time.time()
        self._note_result(rt, ws.id, result)
        return result

    def _start(self, rt: Runtime, key: object, work: Callable[[], ApiResult]) -> _Fetch:
        """Start ``work`` unless the same fetch is already under way (then share it)."""
        with rt.lock:
            fetch = rt.inflight.get(key)
            if fetch is not None:
                return fetch
            future = rt.executor.submit(work)
            fetch = _Fetch(future)
            rt.inflight[key] = fetch

        def done(_: concurrent.futures.Future[ApiResult]) -> None:
            with rt.lock:
                if rt.inflight.get(key) is fetch:
                    del rt.inflight[key]

        future.add_done_callback(done)
        return fetch

    def _count_failure(self, rt: Runtime, fetch: _Fetch | None, ws_id: str, reason: str) -> None:
        if fetch is not None:
            with rt.lock:
                if fetch.counted:
                    return
                fetch.counted = True
        self.stats.count_error(ws_id, reason)

    def _needs_fetch(self, rt: Runtime, state: JobState | None, now: float) -> bool:
        if state is None or state.job is None or state.fetched_at is None or not state.detailed:
            return True
        if state.job.finished and not rt.config.api.refresh_finished:
            return False
        return now - state.fetched_at >= rt.config.api.min_refresh_interval

    def _refresh_listings(
        self, rt: Runtime, deadline: float, only: str | None = None
    ) -> dict[str, _Fetch]:
        fetches: dict[str, _Fetch] = {}
        now = time.monotonic()
        for ws in rt.config.workspaces:
            if only is not None and ws.id != only:
                continue
            if not ws.discover or self._in_backoff(rt, ws.id, now):
                continue
            listing = rt.listings.get(ws.id)
            fresh = (
                listing is not None
                and listing.fetched_at is not None
                and now - listing.fetched_at < rt.config.api.min_refresh_interval
            )
            if not fresh:
                fetches[ws.id] = self._start(
                    rt, ("list", ws.id), functools.partial(self._list_jobs, rt, ws, deadline)
                )
        return fetches

    def _resolve(
        self,
        rt: Runtime,
        targets: list[Target],
        listing_fetches: dict[str, _Fetch],
        deadline: float,
    ) -> dict[Key, Outcome]:
        now = time.monotonic()
        job_fetches: dict[Key, _Fetch] = {}
        outcomes: dict[Key, Outcome] = {}
        for target in targets:
            key = target.key
            ws = target.workspace
            state = rt.states.get(key)
            if not target.explicit:
                continue  # served from the workspace's listing below
            if not self._needs_fetch(rt, state, now):
                assert state is not None
                outcomes[key] = Outcome(True, None, state.job, state.last_success)
            elif self._in_backoff(rt, ws.id, now):
                outcomes[key] = self._down(rt, key, "rate_limited")
            else:
                job_fetches[key] = self._start(
                    rt, key, functools.partial(self._fetch_job, rt, ws, target.job_id, deadline)
                )
        pending = [f.future for f in job_fetches.values()]
        pending.extend(f.future for f in listing_fetches.values())
        if pending:
            concurrent.futures.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        for key, fetch in job_fetches.items():
            outcomes[key] = self._settle(rt, key, fetch)
        listing_reasons: dict[str, str | None] = {}
        for ws_id, fetch in listing_fetches.items():
            listing_reasons[ws_id] = self._settle_listing(rt, ws_id, fetch)
        for target in targets:
            if target.explicit:
                continue
            ws_id = target.workspace.id
            listing = rt.listings.get(ws_id)
            job = listing.jobs.get(target.job_id) if listing else None
            reason = listing_reasons.get(ws_id)
            if reason is None and ws_id not in listing_fetches and self._in_backoff(rt, ws_id, now):
                reason = "rate_limited"
            last = listing.last_success if listing else None
            outcomes[target.key] = Outcome(reason is None, reason, job, last)
        return outcomes

    def _down(self, rt: Runtime, key: Key, reason: str) -> Outcome:
        state = rt.states.get(key)
        if state is None:
            return Outcome(False, reason, None, None)
        return Outcome(False, reason, state.job, state.last_success)

    def _settle(self, rt: Runtime, key: Key, fetch: _Fetch) -> Outcome:
        if not fetch.future.done() or fetch.future.cancelled():  # cancelled: reloaded meanwhile
            self._count_failure(rt, fetch, key[0], "deadline")
            return self._down(rt, key, "deadline")
        try:
            result = fetch.future.result()
        except Exception:
            log.exception("job fetch crashed", extra={"workspace_id": key[0], "job_id": key[1]})
            result = ApiResult(reason="invalid_response", detail="internal error")
        if result.ok:
            state = rt.states.get(key)
            return Outcome(True, None, result.data, state.last_success if state else None)
        reason = result.reason or "invalid_response"
        self._count_failure(rt, fetch, key[0], reason)
        return self._down(rt, key, reason)

    def _settle_listing(self, rt: Runtime, ws_id: str, fetch: _Fetch) -> str | None:
        if not fetch.future.done() or fetch.future.cancelled():
            self._count_failure(rt, fetch, ws_id, "deadline")
            return "deadline"
        try:
            result = fetch.future.result()
        except Exception:
            log.exception("job listing crashed", extra={"workspace_id": ws_id})
            result = ApiResult(reason="invalid_response", detail="internal error")
        if result.ok:
            return None
        reason = result.reason or "invalid_response"
        self._count_failure(rt, fetch, ws_id, reason)
        return reason

    def _log_transitions(self, rt: Runtime, outcomes: dict[Key, Outcome]) -> None:
        changes: list[tuple[Key, str | None, str | None]] = []
        with rt.lock:
            for key, outcome in outcomes.items():
                state = rt.states.get(key)
                if state is None:
                    state = rt.states[key] = JobState()
                if state.down_reason != outcome.reason:
                    changes.append((key, state.down_reason, outcome.reason))
                    state.down_reason = outcome.reason
        for (ws_id, job_id), before, after in changes:
            fields = {"workspace_id": ws_id, "job_id": job_id}
            if after is not None:
                log.warning("job is down", extra={**fields, "reason": after})
            elif before is not None:
                log.info("job is up again", extra={**fields, "previous_reason": before})

    # -- collecting -----------------------------------------------------------------------

    def collect(self, deadline: float, *, jobs: bool = True) -> list[Family]:
        """Fetch what is due and return this scrape's families.

        ``deadline`` is a ``time.monotonic()`` value; jobs not answered by then are down with
        reason ``deadline``. With ``jobs=False`` only the exporter's own metrics are returned
        and nothing is fetched (for setups that scrape the jobs through ``/probe``).
        """
        started = time.monotonic()
        rt = self._runtime
        if not jobs:
            return self._exporter_families(rt, started, [])
        listing_fetches = self._refresh_listings(rt, deadline)
        self._wait(listing_fetches, deadline)  # discovered job sets depend on the listings
        targets = self._select(rt, time.time())
        self._forget_others(rt, {t.key for t in targets})
        outcomes = self._resolve(rt, targets, listing_fetches, deadline)
        self._log_transitions(rt, outcomes)
        return self._exporter_families(rt, started, self._job_families(rt, targets, outcomes))

    @staticmethod
    def _forget_others(rt: Runtime, keep: set[Key]) -> None:
        """Drop the state of jobs no longer exported (gone from the listing, aged out), so
        months of job churn do not grow memory."""
        with rt.lock:
            for key in [k for k in rt.states if k not in keep]:
                del rt.states[key]
                rt.labels.pop(key, None)

    def probe(self, deadline: float, workspace_id: str, job_id: str) -> list[Family] | str:
        """The families of one job (``/probe``), or why that job may not be probed."""
        rt = self._runtime
        ws = rt.workspaces.get(workspace_id)
        if ws is None:
            return f"workspace {workspace_id!r} is not in the config"
        key = (workspace_id, job_id)
        listing_fetches = self._refresh_listings(rt, deadline, only=workspace_id)
        self._wait(listing_fetches, deadline)
        targets = [t for t in self._select(rt, time.time()) if t.key == key]
        if not targets:
            if not ws.allow_unconfigured_probes:
                return (
                    f"job {job_id!r} is not configured or discovered in workspace {workspace_id!r}"
                )
            targets = [Target(ws, job_id, "", explicit=True)]
        outcomes = self._resolve(rt, targets, listing_fetches, deadline)
        self._log_transitions(rt, outcomes)
        return self._job_families(rt, targets, outcomes)

    @staticmethod
    def _wait(fetches: dict[str, _Fetch], deadline: float) -> None:
        if fetches:
            concurrent.futures.wait(
                [f.future for f in fetches.values()],
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def targets(self, deadline: float) -> list[Target]:
        """The jobs this exporter (shard) exports now; refreshes discovery when due (``/sd``)."""
        rt = self._runtime
        fetches = self._refresh_listings(rt, deadline)
        self._wait(fetches, deadline)
        for ws_id, fetch in fetches.items():
            self._settle_listing(rt, ws_id, fetch)
        selected = self._select(rt, time.time())
        # With /probe per job, /metrics may never collect jobs: prune here too.
        self._forget_others(rt, {t.key for t in selected})
        return selected

    def _job_families(
        self, rt: Runtime, targets: list[Target], outcomes: dict[Key, Outcome]
    ) -> list[Family]:
        """Families whose samples are generated while they are written (see ``Family``)."""
        rows = [
            (rt.job_labels(t.key), t, outcome)
            for t in targets
            if (outcome := outcomes.get(t.key)) is not None
        ]
        jobs = [(labels, target, o.job) for labels, target, o in rows if o.job is not None]

        def up() -> Iterator[Sample]:
            for labels, _, outcome in rows:
                yield "", labels, 1.0 if outcome.up else 0.0

        def errors() -> Iterator[Sample]:
            for labels, _, outcome in rows:
                if outcome.reason is not None:
                    yield "", f'{labels},reason="{outcome.reason}"', 1.0

        def last_success() -> Iterator[Sample]:
            for labels, _, outcome in rows:
                if outcome.last_success is not None:
                    yield "", labels, outcome.last_success

        def info() -> Iterator[Sample]:
            for labels, target, job in jobs:
                yield "", labels + "," + _info_labels(target.name, job), 1.0

        def status() -> Iterator[Sample]:
            for labels, _, job in jobs:
                for state in STATUSES:
                    yield "", f'{labels},status="{state}"', 1.0 if job.status == state else 0.0

        def values(read: Callable[[Job], float | bool | int | None]) -> Iterator[Sample]:
            for labels, _, job in jobs:
                value = read(job)
                if value is not None:
                    yield "", labels, float(value)

        return [
            Family(metrics.UP.name, "gauge", metrics.UP.help, up()),
            Family(metrics.ERROR_INFO.name, "gauge", metrics.ERROR_INFO.help, errors()),
            Family(metrics.LAST_SUCCESS.name, "gauge", metrics.LAST_SUCCESS.help, last_success()),
            Family(metrics.JOB_INFO.name, "gauge", metrics.JOB_INFO.help, info()),
            Family(metrics.JOB_STATUS.name, "gauge", metrics.JOB_STATUS.help, status()),
            *(Family(d.name, "gauge", d.help, values(d.read)) for d in metrics.JOB_VALUES),
        ]

    def _exporter_families(
        self, rt: Runtime, started: float, job_families: list[Family]
    ) -> list[Family]:
        build = Family(metrics.BUILD_INFO.name, "gauge", metrics.BUILD_INFO.help)
        build.add(f'version="{__version__}"', 1.0)
        requests_seen, errors_seen, durations = self.stats.snapshot()
        api_errors = Family(metrics.API_ERRORS.name, "counter", metrics.API_ERRORS.help)
        for (ws_id, reason), count in sorted(errors_seen.items()):
            api_errors.add(render_labels(("workspace_id", "reason"), (ws_id, reason)), float(count))
        api_requests = Family(metrics.API_REQUESTS.name, "counter", metrics.API_REQUESTS.help)
        for (ws_id, code), count in sorted(requests_seen.items()):
            api_requests.add(render_labels(("workspace_id", "code"), (ws_id, code)), float(count))
        histogram = Family(metrics.API_DURATION.name, "histogram", metrics.API_DURATION.help)
        bounds = [*(repr(b) for b in self.stats.buckets), "+Inf"]
        for ws_id, (counts, total, count) in sorted(durations.items()):
            ws_labels = render_labels(("workspace_id",), (ws_id,))
            cumulative = 0
            for bound, bucket_count in zip(bounds, counts, strict=True):
                cumulative += bucket_count
                histogram.add(f'{ws_labels},le="{bound}"', float(cumulative), "_bucket")
            histogram.add(ws_labels, float(count), "_count")
            histogram.add(ws_labels, total, "_sum")
        extra = self._scale_families(rt)
        duration = Family(metrics.SCRAPE_DURATION.name, "gauge", metrics.SCRAPE_DURATION.help)
        families = [build, *job_families, api_errors, api_requests, histogram, *extra, duration]
        for produce in self._process_collectors:
            families.extend(produce())
        duration.add("", time.monotonic() - started)
        return families

    def _scale_families(self, rt: Runtime) -> list[Family]:
        now = time.monotonic()
        backoff = Family(metrics.BACKOFF_UNTIL.name, "gauge", metrics.BACKOFF_UNTIL.help)
        dropped = Family(metrics.DROPPED_JOBS.name, "counter", metrics.DROPPED_JOBS.help)
        for ws in rt.config.workspaces:
            labels = render_labels(("workspace_id",), (ws.id,))
            state = rt.backoffs.get(ws.id)
            backoff.add(labels, state.wall_until if state and state.until > now else 0.0)
            if ws.max_jobs is not None:
                dropped.add(labels, float(self._dropped.get(ws.id, 0)))
        reloaded = Family(metrics.RELOAD_SUCCESS.name, "gauge", metrics.RELOAD_SUCCESS.help)
        reloaded.add("", 1.0 if self.reload_success else 0.0)
        reload_time = Family(metrics.RELOAD_TIME.name, "gauge", metrics.RELOAD_TIME.help)
        reload_time.add("", self.reload_success_time)
        return [backoff, dropped, reloaded, reload_time]


def _label(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _info_labels(name: str, job: Job) -> str:
    return render_labels(
        metrics.INFO_LABELS,
        (
            name,
            _label(job.primary_url),
            _label(job.refresh_rate),
            _label(job.processing_mode),
            _label(job.deep),
            _label(job.use_proxy),
        ),
    )


def default_process_collectors() -> list[Callable[[], list[Family]]]:
    return [
        lambda: from_client_collector(PROCESS_COLLECTOR),
        lambda: from_client_collector(PLATFORM_COLLECTOR),
        lambda: from_client_collector(GC_COLLECTOR),
    ]
