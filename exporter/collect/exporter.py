"""The exporter: the config in force (swapped atomically on reload), and what a scrape,
a probe and service discovery ask of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..convocore.trace import ProbeTrace
from . import discovery, fetch, pipeline, targets, totals
from .families import ProcessCollector, exporter_families, job_families
from .own import OwnMetrics
from .pagereads import PageView
from .results import ProbeRefused, ScrapeResult
from .state import Key, Outcome, Runtime, Target
from .totals import WorkspaceTotals


@dataclass(frozen=True, slots=True)
class TargetView:
    """One exported job as the landing page and ``--once`` show it."""

    workspace_id: str
    job_id: str
    name: str
    status: str | None
    up: bool
    reason: str | None
    last_success: float | None
    failure: str | None = None
    """The job's failure text as exported on ``convocore_crawler_job_failure_info``."""
    read: bool = True
    """Whether a scrape, a probe or the start-up read has settled this job yet; until then
    the page says it is being read."""
    scraped_pages: float | None = None
    failed_pages: float | None = None
    page_limit: float | None = None
    """The job's effective page cap (``pageLimit``)."""
    max_pages: float | None = None
    """The cap the job asked for (``crawlOptions.maxPages``)."""
    estimated_credits: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryView:
    """What the exporter holds between scrapes for the config in force, read at one moment:
    which jobs and workspaces it remembers, and how many upstream fetches are under way."""

    jobs: frozenset[Key]
    """The jobs whose last outcome and data are kept (``(workspace_id, job_id)``)."""
    listings: frozenset[str]
    """The workspaces whose discovery listing is kept."""
    page_totals: frozenset[Key]
    """The jobs whose page statistics are kept."""
    fetches_in_flight: int
    """Upstream fetches and listing walks started and not yet settled."""
    listed_jobs: dict[str, int]
    """Per discovering workspace, the jobs whose whole listed data is kept (not those past
    ``include_finished_for``, of which only a tally is kept: see ``JobTally``)."""
    rendered: frozenset[Key] = frozenset()
    """The jobs whose rendered lines are kept (see ``collect.rendered``)."""
    renders: int = 0
    """How many times a job's lines were rendered (new or changed) since the config in force
    was loaded."""
    derived: int = 0
    """How many times what scrapes serve of a discovery snapshot (its targets, its outcomes)
    was derived from it since the config in force was loaded: once per snapshot (and listing
    state), not once per scrape."""


class Exporter:
    """Holds the current config (swapped atomically on reload) and collects on demand."""

    def __init__(
        self,
        config: Config,
        *,
        shard: int = 0,
        total_shards: int = 1,
        process_collectors: list[ProcessCollector] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.own = OwnMetrics()
        self.sharding = targets.Sharding(shard, total_shards)
        # When page stats are due, how long a listing has failed, the outage backoff's
        # pauses; tests move it instead of sleeping.
        self._clock = clock
        self._runtime = Runtime(config, self.own, clock)
        self._swap_lock = threading.Lock()
        self._process_collectors = process_collectors or []
        self._totals = totals.Totals(self.sharding)

    @property
    def config(self) -> Config:
        return self._runtime.config

    def set_config(self, config: Config) -> None:
        """Start serving ``config``, keeping what the old one knew of the same workspaces."""
        with self._swap_lock:
            old = self._runtime
            new = Runtime(config, self.own, self._clock)
            new.carry_over(old)
            self._runtime = new
        old.close()

    def close(self) -> None:
        """For good: upstream requests still in flight are cut (a reload lets them finish)."""
        self._runtime.close(abort=True)

    def collect(self, deadline: float, *, jobs: bool = True) -> ScrapeResult:
        """Fetch what is due and return this scrape's families and each job's outcome.

        ``deadline`` is a ``time.monotonic()`` value; jobs not answered by then are down with
        reason ``deadline``. With ``jobs=False`` only the exporter's own metrics are returned
        and nothing is fetched (for setups that scrape the jobs through ``/probe``).
        """
        started = time.monotonic()
        rt = self._runtime
        if not jobs:
            sums = totals.families(self._totals.of(rt).values())
            return ScrapeResult(exporter_families(rt, started, sums, self._process_collectors))
        selected, outcomes, pages = self._read(rt, deadline)
        families = job_families(rt, selected, outcomes, pages)
        families += totals.families(self._totals.of(rt).values())
        return ScrapeResult(
            exporter_families(rt, started, families, self._process_collectors), selected, outcomes
        )

    def read_unread(self, deadline: float) -> int:
        """What a scrape would read of the jobs no scrape has settled yet, and nothing else:
        the listings of workspaces none of whose jobs was read, and the jobs (and their
        pages) never read, within ``deadline``, as :meth:`collect` reads them (shared
        fetches, backoff, the deadline). Jobs read before are left to the scrapes and
        ``api.min_refresh_interval``. Returns how many jobs were settled (see
        :class:`~.warmup.WarmUp`)."""
        _, outcomes, _ = self._read(self._runtime, deadline, unread_only=True)
        return len(outcomes)

    def _read(
        self, rt: Runtime, deadline: float, *, unread_only: bool = False
    ) -> tuple[list[Target], dict[Key, Outcome], dict[Key, PageView]]:
        """A scrape's reading: the listings that are due, then the jobs exported (all of
        them, or with ``unread_only`` those with nothing settled yet), within ``deadline``."""
        with rt.lock:
            settled = frozenset(rt.states) if unread_only else frozenset()
        if unread_only:
            # The listings of workspaces none of whose jobs was read; the others keep to
            # their cadence, which the scrapes follow.
            read = {ws_id for ws_id, _ in settled}
            walks = [
                walk
                for ws in rt.config.workspaces
                if ws.discover and ws.id not in read
                for walk in discovery.start_walks(rt, deadline, ws.id, self._owns)
            ]
        else:
            walks = discovery.start_walks(rt, deadline, None, self._owns)
        explicit = [
            t for t in rt.explicit.values() if self.sharding.owns(t.key) and t.key not in settled
        ]
        begun = pipeline.begin(rt, explicit, deadline)
        discovery.wait(rt, walks, deadline)
        selected = targets.select(rt, self.sharding)
        fetch.forget_others(rt, {t.key for t in selected})
        if unread_only:
            selected = [t for t in selected if t.key not in settled]
        outcomes, pages = pipeline.run(rt, selected, deadline, begun=begun)
        return selected, outcomes, pages

    def probe(
        self,
        deadline: float,
        workspace_id: str,
        job_id: str,
        trace: ProbeTrace | None = None,
    ) -> ScrapeResult | ProbeRefused:
        """The families and the outcome of one job (``/probe``), or why that job may not be
        probed.

        ``trace`` collects what was asked upstream, for ``/probe?debug=true``.
        """
        rt = self._runtime
        ws = rt.workspaces.get(workspace_id)
        if ws is None:
            return ProbeRefused(
                "unknown_workspace", f"workspace {workspace_id!r} is not in the config"
            )
        key = (workspace_id, job_id)
        self._discover(rt, deadline, workspace_id)
        selected = [t for t in targets.select(rt, self.sharding) if t.key == key]
        if not selected:
            if not ws.allow_unconfigured_probes:
                return ProbeRefused(
                    "unknown_job",
                    f"job {job_id!r} is not configured or discovered in workspace {workspace_id!r}",
                )
            selected = [Target(ws, job_id, "", explicit=True)]
        outcomes, pages = pipeline.run(rt, selected, deadline, trace)
        return ScrapeResult(job_families(rt, selected, outcomes, pages), selected, outcomes)

    def _discover(self, rt: Runtime, deadline: float, only: str | None = None) -> None:
        """Start the listing walks that are due and wait for them within ``deadline``."""
        walks = discovery.start_walks(rt, deadline, only, self._owns)
        discovery.wait(rt, walks, deadline)

    def _owns(self, workspace_id: str, job_id: str) -> bool:
        return self.sharding.owns((workspace_id, job_id))

    def targets(self, deadline: float) -> list[Target]:
        """The jobs this exporter (shard) exports now; refreshes discovery when due (``/sd``)."""
        rt = self._runtime
        self._discover(rt, deadline)
        selected = targets.select(rt, self.sharding)
        # With /probe per job, /metrics may never collect jobs: prune here too.
        fetch.forget_others(rt, {t.key for t in selected})
        return selected

    def overview(self) -> list[TargetView]:
        """What the last scrapes saw of each exported job, from memory (no upstream calls)."""
        rt = self._runtime
        views: list[TargetView] = []
        for target in targets.select(rt, self.sharding):
            state = rt.states.get(target.key)
            job = targets.known_job(rt, target)
            if not target.explicit:
                snapshot = rt.snapshot(target.workspace.id)
                last = snapshot.last_success if snapshot else None
            else:
                last = state.last_success if state else None
            reason = state.down_reason if state else None
            views.append(
                TargetView(
                    target.workspace.id,
                    target.job_id,
                    target.name,
                    job.status if job else None,
                    state is not None and reason is None and job is not None,
                    reason,
                    last,
                    job.failure if job else None,
                    read=state is not None,
                    scraped_pages=job.scraped_pages if job else None,
                    failed_pages=job.failed_pages if job else None,
                    page_limit=job.page_limit if job else None,
                    max_pages=job.max_pages if job else None,
                    estimated_credits=job.estimated_credits if job else None,
                )
            )
        return views

    def totals(self) -> dict[str, WorkspaceTotals]:
        """Each workspace's totals from memory (no upstream calls): the numbers ``/metrics``
        serves now. A discovering workspace is missing until its first listing completed."""
        return self._totals.of(self._runtime)

    def memory(self) -> MemoryView:
        """What is remembered now, from memory (no upstream calls)."""
        rt = self._runtime
        snapshots = {ws_id: rt.snapshot(ws_id) for ws_id in rt.discoveries}
        listed = {ws_id: s for ws_id, s in snapshots.items() if s is not None}
        with rt.lock:
            return MemoryView(
                frozenset(rt.states),
                frozenset(listed),
                frozenset(rt.pages),
                len(rt.inflight) + discovery.in_flight(rt),
                {ws_id: len(snapshot.jobs) for ws_id, snapshot in listed.items()},
                frozenset(rt.rendered.entries),
                rt.rendered.renders,
                rt.derived.builds,
            )
