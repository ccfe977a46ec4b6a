"""Turning outcomes into metric families.

Each family takes its name, type and help from its
:class:`~exporter.exposition.metrics.MetricDef`, and every label set is rendered by the writer's
:func:`~exporter.exposition.writer.render_labels`. The job families generate their samples
while they are written (see :class:`~exporter.exposition.writer.Family`), so the samples of
10,000 jobs never exist all at once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

from ..convocore.model import STATUSES, Job
from ..convocore.pages import PageStats
from ..exposition import metrics
from ..exposition.writer import Family, Sample, from_client_collector, render_labels
from ..version import build_info
from .pagereads import PageView
from .state import DataLabels, Key, Outcome, Runtime, Target

ProcessCollector = Callable[[], list[Family]]


def family(definition: metrics.MetricDef, samples: Iterable[Sample] | None = None) -> Family:
    return Family(
        definition.name, definition.type, definition.help, [] if samples is None else samples
    )


@functools.cache
def _extra(name: str, value: str) -> str:
    """``,name="value"``: a bounded label (status, reason) appended to a job's label set."""
    return "," + render_labels((name,), (value,))


def _text(value: object) -> str:
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
            _text(job.primary_url),
            _text(job.refresh_rate),
            _text(job.processing_mode),
            _text(job.deep),
            _text(job.use_proxy),
        ),
    )


def data_labels(rt: Runtime, key: Key, labels: str, job: Job) -> DataLabels:
    """The job's failure and agent samples, rendered when ``job`` was not seen before (a new
    fetch or listing parsed it), else as rendered then."""
    known = rt.data_labels.get(key)
    if known is not None and known.job is job:
        return known
    failure: tuple[Sample, ...] = ()
    if job.failure is not None:
        text = render_labels(metrics.JOB_FAILURE_INFO.labels[-1:], (job.failure,))
        failure = (("", f"{labels},{text}", 1.0),)
    agents = tuple(
        ("", labels + "," + render_labels(metrics.JOB_AGENT_INFO.labels[-1:], (agent,)), 1.0)
        for agent in job.agents
    )
    known = rt.data_labels[key] = DataLabels(job, failure, agents)
    return known


def job_families(
    rt: Runtime,
    targets: list[Target],
    outcomes: dict[Key, Outcome],
    pages: dict[Key, PageView] | None = None,
) -> list[Family]:
    """The families of ``targets``, and of their pages lists where ``pages`` has them."""
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
                yield "", labels + _extra("reason", outcome.reason), 1.0

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
                yield "", labels + _extra("status", state), 1.0 if job.status == state else 0.0

    def failures() -> Iterator[Sample]:
        for labels, target, job in jobs:
            if job.failure is not None:
                yield from data_labels(rt, target.key, labels, job).failure

    def agents() -> Iterator[Sample]:
        for labels, target, job in jobs:
            if job.agents:
                yield from data_labels(rt, target.key, labels, job).agents

    def values(read: Callable[[Job], float | bool | int | None]) -> Iterator[Sample]:
        for labels, _, job in jobs:
            value = read(job)
            if value is not None:
                yield "", labels, float(value)

    return [
        family(metrics.UP, up()),
        family(metrics.ERROR_INFO, errors()),
        family(metrics.LAST_SUCCESS, last_success()),
        family(metrics.JOB_INFO, info()),
        family(metrics.JOB_STATUS, status()),
        family(metrics.JOB_FAILURE_INFO, failures()),
        family(metrics.JOB_AGENT_INFO, agents()),
        *(family(d, values(d.read)) for d in metrics.JOB_VALUES),
        *(page_families(rt, targets, pages) if pages else []),
    ]


def page_families(rt: Runtime, targets: list[Target], pages: dict[Key, PageView]) -> list[Family]:
    rows = [(rt.job_labels(t.key), view) for t in targets if (view := pages.get(t.key)) is not None]
    counted = [(labels, view.stats) for labels, view in rows if view.stats is not None]

    def values(read: Callable[[PageStats], float | None]) -> Iterator[Sample]:
        for labels, stats in counted:
            value = read(stats)
            if value is not None:
                yield "", labels, float(value)

    def histogram() -> Iterator[Sample]:
        for labels, stats in counted:
            for bound, count in stats.cumulative():
                yield "_bucket", labels + _extra("le", bound), float(count)
            yield "_gcount", labels, float(stats.markdown_pages)
            yield "_gsum", labels, stats.markdown_chars

    def errors() -> Iterator[Sample]:
        for labels, view in rows:
            if view.error is not None:
                yield "", labels + _extra("reason", view.error), 1.0

    return [
        *(family(d, values(d.read)) for d in metrics.PAGE_VALUES),
        family(metrics.PAGE_MARKDOWN_CHARS, histogram()),
        family(metrics.PAGE_STATS_ERROR_INFO, errors()),
    ]


def discovery_families(rt: Runtime) -> list[Family]:
    """Each discovering workspace's listing health, from memory (no upstream call)."""
    up, errors = family(metrics.DISCOVERY_UP), family(metrics.DISCOVERY_ERROR_INFO)
    for ws in rt.config.workspaces:
        owner = rt.discoveries.get(ws.id)
        if owner is None or (owner.snapshot is None and owner.health.error is None):
            continue
        labels = render_labels(metrics.DISCOVERY_UP.labels, (ws.id,))
        error = owner.health.error
        up.add(labels, 0.0 if error is not None else 1.0)
        if error is not None:
            errors.add(labels + _extra("reason", error), 1.0)
    return [up, errors]


def exporter_families(
    rt: Runtime,
    started: float,
    job_families: list[Family],
    process_collectors: list[ProcessCollector],
) -> list[Family]:
    """The build info, the job families, the exporter's own metrics and the scrape duration."""
    build = family(metrics.BUILD_INFO)
    info = build_info()
    build.add(
        render_labels(
            metrics.BUILD_INFO.labels, (info.version, info.revision, info.python_version)
        ),
        1.0,
    )
    now = time.monotonic()
    for ws in rt.config.workspaces:
        backoff = rt.backoffs.get(ws.id)
        until = backoff.wall_until if backoff is not None and backoff.until > now else 0.0
        rt.own.backoff_until.labels(ws.id).set(until)
    rt.own.show_outage_state(rt.client.transport.outage.current())
    own = from_client_collector(rt.own.registry)
    duration = family(metrics.SCRAPE_DURATION)
    families = [build, *job_families, *discovery_families(rt), *own, duration]
    for produce in process_collectors:
        families.extend(produce())
    duration.add("", time.monotonic() - started)
    return families


def default_process_collectors() -> list[ProcessCollector]:
    return [
        lambda: from_client_collector(PROCESS_COLLECTOR),
        lambda: from_client_collector(PLATFORM_COLLECTOR),
        lambda: from_client_collector(GC_COLLECTOR),
    ]
