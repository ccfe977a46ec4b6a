"""Each exported job's lines, rendered once per change and reused by every scrape.

As kube-state-metrics keeps each object's metrics: a job's lines of every per-job family are
rendered (:func:`~exporter.exposition.writer.render_lines`) when what they show changes, and a
scrape writes each family's header and then every job's cached bytes for it. What a job's
lines show comes in four groups, each rendered again only when its own inputs change:

- ``up`` and ``error_info``: the outcome's up and reason;
- ``last_success_timestamp_seconds``: its time (which moves at every fetch or listing);
- the job's data families (info, status, failure, agents, values): the parsed :class:`Job`
  and the configured name;
- the page families: the page totals and the page error.

An entry is immutable and replaced whole, so scrapes that overlap (or a reload's old and new
runtimes) never see a job half updated; an entry leaves with its job
(:meth:`RenderCache.keep_only`), so memory follows the jobs exported.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..convocore.model import STATUSES, Job
from ..convocore.pages import PageStats
from ..exposition import metrics
from ..exposition.writer import Family, Sample, render_labels, render_lines

if TYPE_CHECKING:
    from .pagereads import PageView
    from .state import Key, Outcome, Target

_EMPTY = b""

# Where each family's lines sit in an entry's parts, in the order of the exposition.
_STATE = (metrics.UP, metrics.ERROR_INFO)
_JOB = (
    metrics.JOB_INFO,
    metrics.JOB_STATUS,
    metrics.JOB_FAILURE_INFO,
    metrics.JOB_AGENT_INFO,
    *metrics.JOB_VALUES,
)
_PAGE_SLOTS = len(metrics.PAGE_VALUES) + 4  # the values, the histogram's three, the error
_STATE_AT, _SUCCESS_AT, _JOB_AT = 0, len(_STATE), len(_STATE) + 1
_PAGE_AT = _JOB_AT + len(_JOB)
SLOTS = _PAGE_AT + _PAGE_SLOTS
_NO_STATE = (_EMPTY,) * len(_STATE)
_NO_JOB = (_EMPTY,) * len(_JOB)
_NO_PAGES = (_EMPTY,) * _PAGE_SLOTS
_FAILURE_LABEL = metrics.JOB_FAILURE_INFO.labels[-1]
_AGENT_LABEL = metrics.JOB_AGENT_INFO.labels[-1]


@dataclass(frozen=True, slots=True)
class JobLines:
    """One job's rendered lines of every per-job family, and what they were rendered from."""

    labels: str
    """``workspace_id="...",job_id="..."``, shared by all of the job's series."""
    state: tuple[bool, str | None] | None
    success: float | None
    job: Job | None
    name: str
    pages: tuple[PageStats | None, str | None] | None
    parts: tuple[bytes, ...]
    """One per family (``b""`` for no line), in the order of :func:`families`."""


def _extra(name: str, value: str) -> str:
    return "," + render_labels((name,), (value,))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render_state(labels: str, up: bool, reason: str | None) -> tuple[bytes, ...]:
    error = () if reason is None else (("", labels + _extra("reason", reason), 1.0),)
    return (
        render_lines(metrics.UP.name, (("", labels, 1.0 if up else 0.0),)),
        render_lines(metrics.ERROR_INFO.name, error),
    )


def _render_success(labels: str, when: float | None) -> bytes:
    if when is None:
        return _EMPTY
    return render_lines(metrics.LAST_SUCCESS.name, (("", labels, when),))


def _render_job(labels: str, name: str, job: Job) -> tuple[bytes, ...]:
    info = render_labels(
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
    status = [
        ("", labels + _extra("status", state), 1.0 if job.status == state else 0.0)
        for state in STATUSES
    ]
    failure: list[Sample] = []
    if job.failure is not None:
        failure.append(("", labels + _extra(_FAILURE_LABEL, job.failure), 1.0))
    agents = [("", labels + _extra(_AGENT_LABEL, agent), 1.0) for agent in job.agents]
    parts = [
        render_lines(metrics.JOB_INFO.name, (("", f"{labels},{info}", 1.0),)),
        render_lines(metrics.JOB_STATUS.name, status),
        render_lines(metrics.JOB_FAILURE_INFO.name, failure),
        render_lines(metrics.JOB_AGENT_INFO.name, agents),
    ]
    for definition in metrics.JOB_VALUES:
        value = definition.read(job)
        parts.append(
            _EMPTY
            if value is None
            else render_lines(definition.name, (("", labels, float(value)),))
        )
    return tuple(parts)


def _render_pages(labels: str, stats: PageStats | None, error: str | None) -> tuple[bytes, ...]:
    parts: list[bytes] = []
    histogram = metrics.PAGE_MARKDOWN_CHARS.name
    if stats is None:
        parts += (_EMPTY,) * (len(metrics.PAGE_VALUES) + 3)
    else:
        for definition in metrics.PAGE_VALUES:
            value = definition.read(stats)
            parts.append(
                _EMPTY
                if value is None
                else render_lines(definition.name, (("", labels, float(value)),))
            )
        buckets = [
            ("_bucket", labels + _extra("le", bound), float(count))
            for bound, count in stats.cumulative()
        ]
        parts += (
            render_lines(histogram, buckets),
            render_lines(histogram, (("_gcount", labels, float(stats.markdown_pages)),)),
            render_lines(histogram, (("_gsum", labels, stats.markdown_chars),)),
        )
    reason = () if error is None else (("", labels + _extra("reason", error), 1.0),)
    parts.append(render_lines(metrics.PAGE_STATS_ERROR_INFO.name, reason))
    return tuple(parts)


class RenderCache:
    """The :class:`JobLines` of each exported job, by key; owned by one
    :class:`~exporter.collect.state.Runtime`."""

    def __init__(self, entries: dict[Key, JobLines] | None = None) -> None:
        self.entries: dict[Key, JobLines] = dict(entries or {})
        self.renders = 0
        """Jobs rendered (new, or changed in any group), for tests and the bench."""

    def lines(self, target: Target, outcome: Outcome | None, view: PageView | None) -> JobLines:
        """The job's lines for this outcome and page view: the cached ones while nothing they
        show changed, else rendered again (only the groups that changed)."""
        key = target.key
        old = self.entries.get(key)
        state = None if outcome is None else (outcome.up, outcome.reason)
        success = None if outcome is None else outcome.last_success
        job = None if outcome is None else outcome.job
        name = target.name
        pages = None if view is None else (view.stats, view.error)
        if old is not None:
            same_job = (old.job is job or old.job == job) and (job is None or old.name == name)
            if old.state == state and old.success == success and same_job and old.pages == pages:
                return old
            labels = old.labels
            parts = old.parts
        else:
            same_job = False
            labels = render_labels(metrics.JOB_LABELS, key)
            parts = (_EMPTY,) * SLOTS
        if old is None or old.state != state:
            head = _NO_STATE if state is None else _render_state(labels, *state)
            parts = head + parts[_SUCCESS_AT:]
        if old is None or old.success != success:
            line = _render_success(labels, success)
            parts = (*parts[:_SUCCESS_AT], line, *parts[_JOB_AT:])
        if not same_job:
            body = _NO_JOB if job is None else _render_job(labels, name, job)
            parts = parts[:_JOB_AT] + body + parts[_PAGE_AT:]
        if old is None or old.pages != pages:
            tail = _NO_PAGES if view is None else _render_pages(labels, view.stats, view.error)
            parts = parts[:_PAGE_AT] + tail
            # A copy: what the next scrape compares with, whatever becomes of the served one.
            pages = None if view is None else (_copy(view.stats), view.error)
        entry = JobLines(labels, state, success, job, name, pages, parts)
        self.entries[key] = entry
        self.renders += 1
        return entry

    def keep_only(self, keep: set[Key]) -> None:
        """Drop the lines of the jobs no longer exported."""
        for key in list(self.entries):
            if key not in keep:
                self.entries.pop(key, None)

    def copy(self, workspaces: Iterable[str]) -> RenderCache:
        """The entries of ``workspaces``, for a reloaded config's runtime (entries are
        immutable: sharing them is safe)."""
        kept = set(workspaces)
        return RenderCache({k: v for k, v in list(self.entries.items()) if k[0] in kept})


def _copy(stats: PageStats | None) -> PageStats | None:
    return None if stats is None else stats.copy()


def families(entries: list[JobLines], with_pages: bool) -> list[Family]:
    """The per-job families over ``entries`` (in the order of the exposition), each writing
    every entry's cached lines; the page families only ``with_pages``."""
    parts = [entry.parts for entry in entries]

    def column(at: int) -> Iterator[bytes]:
        return map(operator.itemgetter(at), parts)

    out = [
        *(_family(d, column(i)) for i, d in enumerate(_STATE)),
        _family(metrics.LAST_SUCCESS, column(_SUCCESS_AT)),
        *(_family(d, column(_JOB_AT + i)) for i, d in enumerate(_JOB)),
    ]
    if with_pages:
        values = len(metrics.PAGE_VALUES)
        histogram = metrics.PAGE_MARKDOWN_CHARS
        out += [
            *(_family(d, column(_PAGE_AT + i)) for i, d in enumerate(metrics.PAGE_VALUES)),
            Family(
                histogram.name,
                histogram.type,
                histogram.help,
                parts=tuple(column(_PAGE_AT + values + i) for i in range(3)),
            ),
            _family(metrics.PAGE_STATS_ERROR_INFO, column(_PAGE_AT + values + 3)),
        ]
    return out


def _family(definition: metrics.MetricDef, parts: Iterable[bytes]) -> Family:
    return Family(definition.name, definition.type, definition.help, parts=(parts,))
