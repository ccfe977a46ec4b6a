"""The exporter's own metrics: prometheus_client objects in a private registry.

Counters and histograms of the exporter's own work (requests to the API, failed fetches,
jobs dropped by ``max_jobs``) and the backoff gauge are kept here; each takes its name, help
and labels from its :class:`~exporter.exposition.metrics.MetricDef`. The registry is bridged
into the fast writer on every scrape
(:func:`exporter.exposition.writer.from_client_collector`); the job families, which are many,
stay on the fast writer alone.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..config import Config
from ..convocore import outage
from ..exposition import metrics
from ..exposition.writer import counter, gauge


class OwnMetrics:
    """The exporter's own metrics; also the client's :class:`RequestObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.api_errors = counter(metrics.API_ERRORS, self.registry)
        self.api_requests = counter(metrics.API_REQUESTS, self.registry)
        self.api_duration = Histogram(
            metrics.API_DURATION.name,
            metrics.API_DURATION.help,
            metrics.API_DURATION.labels,
            registry=self.registry,
            buckets=metrics.API_DURATION_BUCKETS,
        )
        self.backoff_until = gauge(metrics.BACKOFF_UNTIL, self.registry)
        self.outage_state = gauge(metrics.API_OUTAGE_STATE, self.registry)
        for state in outage.STATES:
            self.outage_state.labels(state).set(1 if state == "normal" else 0)
        self.dropped_jobs = counter(metrics.DROPPED_JOBS, self.registry)
        self.page_stats_truncated = counter(metrics.PAGE_STATS_TRUNCATED, self.registry)
        self.discovery_truncated = counter(metrics.DISCOVERY_TRUNCATED, self.registry)
        self._discovering: set[str] = set()
        self._requests: dict[tuple[str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._dropped: set[str] = set()  # the workspaces with a series of each counter
        self._truncated: set[str] = set()

    def observe_request(self, workspace_id: str, code: str, seconds: float) -> None:
        # The children looked up once per label set (their series are never removed): labels()
        # checks and locks at every call, on every upstream request.
        counted = self._requests.get((workspace_id, code))
        if counted is None:
            counted = self._requests[workspace_id, code] = self.api_requests.labels(
                workspace_id, code
            )
        counted.inc()
        timed = self._durations.get(workspace_id)
        if timed is None:
            timed = self._durations[workspace_id] = self.api_duration.labels(workspace_id)
        timed.observe(seconds)

    def show_outage_state(self, current: str) -> None:
        for state in outage.STATES:
            self.outage_state.labels(state).set(1 if state == current else 0)

    def count_error(self, workspace_id: str, reason: str) -> None:
        self.api_errors.labels(workspace_id, reason).inc()

    def start_runtime(self, config: Config) -> None:
        """A new config is in force: the series that belong to the old one go.

        The backoff gauge, the ``max_jobs`` drop counter and the page-stats and discovery
        truncation counters describe the config's workspaces: a workspace that left the
        config (or turned the feature off) loses its series, one that stays keeps counting
        (a counter never goes back), as request and error counters do across reloads.
        """
        self.backoff_until.clear()
        for ws in config.workspaces:
            self.backoff_until.labels(ws.id).set(0)
        _keep_series(
            self.dropped_jobs, self._dropped, {ws.id for ws in config.workspaces if ws.max_jobs}
        )
        _keep_series(
            self.page_stats_truncated,
            self._truncated,
            {ws.id for ws in config.workspaces if ws.page_stats},
        )
        _keep_series(
            self.discovery_truncated,
            self._discovering,
            {ws.id for ws in config.workspaces if ws.discover},
        )


def _keep_series(family: Counter, have: set[str], wanted: set[str]) -> None:
    """The per-workspace series of ``family``: exactly ``wanted`` (``have`` tracks them)."""
    for ws_id in have - wanted:
        family.remove(ws_id)
    for ws_id in wanted - have:
        family.labels(ws_id)
    have.clear()
    have.update(wanted)
