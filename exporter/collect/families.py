"""Turning outcomes into metric families.

Each family takes its name, type and help from its
:class:`~exporter.exposition.metrics.MetricDef`, and every label set is rendered by the writer's
:func:`~exporter.exposition.writer.render_labels`. Two kinds of family (see
:class:`~exporter.exposition.writer.Family`): the per-job ones write each job's lines as
rendered when the job last changed (:mod:`.rendered`), so a scrape of unchanged jobs formats
nothing; the others (the exporter's own, per workspace) are few samples, built plainly at
every scrape.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

from ..exposition import metrics
from ..exposition.writer import Family, Sample, from_client_collector, render_labels
from ..version import build_info
from . import rendered
from .pagereads import PageView
from .state import Key, Outcome, Runtime, Target

ProcessCollector = Callable[[], list[Family]]


def family(definition: metrics.MetricDef, samples: Iterable[Sample] | None = None) -> Family:
    return Family(
        definition.name, definition.type, definition.help, [] if samples is None else samples
    )


@functools.cache
def _extra(name: str, value: str) -> str:
    """``,name="value"``: a bounded label (status, reason) appended to a job's label set."""
    return "," + render_labels((name,), (value,))


def job_families(
    rt: Runtime,
    targets: list[Target],
    outcomes: dict[Key, Outcome],
    pages: dict[Key, PageView] | None = None,
) -> list[Family]:
    """The families of ``targets``, and of their pages lists where ``pages`` has them: each
    job's lines as rendered when it last changed (see :mod:`.rendered`)."""
    views = pages or {}
    cache = rt.rendered
    lines, current = cache.lines, cache.current
    entries: list[rendered.JobLines] = []
    for target in targets:
        outcome = outcomes.get(target.key)
        view = views.get(target.key) if views else None
        if view is None and (entry := current(target, outcome)) is not None:
            entries.append(entry)
        elif outcome is not None or view is not None:
            entries.append(lines(target, outcome, view))
    return rendered.families(entries, bool(pages))


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
