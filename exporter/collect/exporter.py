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
from .results import ProbeRefused, ScrapeResult
from .state import Key, Runtime, Target
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
    """Upstream fetches started and not yet settled."""
    listed_jobs: dict[str, int]
    """Per discovering workspace, the jobs whose listed data is kept (not those past
    ``include_finished_for``, which are kept as their tallies alone: see ``JobTally``)."""


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
        listings = discovery.refresh(rt, deadline, None, self.sharding)
        explicit = [t for t in rt.explicit.values() if self.sharding.owns(t.key)]
        begun = pipeline.begin(rt, explicit, deadline)
        discovery.wait_and_settle(rt, listings, deadline)
        selected = targets.select(rt, self.sharding, time.time())
        fetch.forget_others(rt, {t.key for t in selected})
        outcomes, pages = pipeline.run(rt, selected, deadline, begun=begun)
        families = job_families(rt, selected, outcomes, pages)
        families += totals.families(self._totals.of(rt).values())
        return ScrapeResult(
            exporter_families(rt, started, families, self._process_collectors), selected, outcomes
        )

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
        selected = [t for t in targets.select(rt, self.sharding, time.time()) if t.key == key]
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
        fetches = discovery.refresh(rt, deadline, only, self.sharding)
        discovery.wait_and_settle(rt, fetches, deadline)

    def targets(self, deadline: float) -> list[Target]:
        """The jobs this exporter (shard) exports now; refreshes discovery when due (``/sd``)."""
        rt = self._runtime
        self._discover(rt, deadline)
        selected = targets.select(rt, self.sharding, time.time())
        # With /probe per job, /metrics may never collect jobs: prune here too.
        fetch.forget_others(rt, {t.key for t in selected})
        return selected

    def overview(self) -> list[TargetView]:
        """What the last scrapes saw of each exported job, from memory (no upstream calls)."""
        rt = self._runtime
        views: list[TargetView] = []
        for target in targets.select(rt, self.sharding, time.time()):
            state = rt.states.get(target.key)
            job = targets.known_job(rt, target)
            if not target.explicit:
                listing = rt.listings.get(target.workspace.id)
                last = listing.last_success if listing else None
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
        with rt.lock:
            return MemoryView(
                frozenset(rt.states),
                frozenset(rt.listings),
                frozenset(rt.pages),
                len(rt.inflight),
                {ws_id: len(listing.jobs) for ws_id, listing in rt.listings.items()},
            )
