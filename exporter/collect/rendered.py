"""Each exported job's lines, rendered once per change and reused by every scrape.

As kube-state-metrics keeps each object's metrics: a job's lines of every per-job family are
rendered (:func:`~exporter.exposition.writer.render_tail`) when what they show changes, and a
scrape writes each family's header and then every job's cached bytes for it
(:class:`~exporter.exposition.writer.Parts`). To keep memory near the size of the data
rather than of the text, a job keeps its label set once and per line only the tail after it
(``} 42\n``); tails that many jobs share (``} 0\n``, ``,status="queued"} 1\n``) are one
object. What a job's lines show comes in four groups, each rendered again only when its own
inputs change:

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..convocore.model import STATUSES, Job
from ..convocore.pages import PageStats
from ..exposition import metrics
from ..exposition.writer import Family, Parts, Sample, render_labels, render_tail, value_tail

if TYPE_CHECKING:
    from .pagereads import PageView
    from .state import Key, Outcome, Target

_EMPTY = b""

# An entry's parts hold one tail per column (a line of a family), in the exposition's order:
# up, error_info | last_success | info, status x5, failure, agents, values x20 | page values
# x5, the page histogram's _bucket, _gcount and _gsum, page_stats_error_info.
_STATE_AT = 0
_SUCCESS_AT = 2
_JOB_AT = 3
_JOB_COLUMNS = 3 + len(STATUSES) + len(metrics.JOB_VALUES)
_PAGE_AT = _JOB_AT + _JOB_COLUMNS
_PAGE_COLUMNS = len(metrics.PAGE_VALUES) + 4
COLUMNS = _PAGE_AT + _PAGE_COLUMNS
_NO_STATE = (_EMPTY, _EMPTY)
_NO_JOB = (_EMPTY,) * _JOB_COLUMNS
_NO_PAGES = (_EMPTY,) * _PAGE_COLUMNS
_FAILURE_LABEL = metrics.JOB_FAILURE_INFO.labels[-1]
_AGENT_LABEL = metrics.JOB_AGENT_INFO.labels[-1]

# Tails many jobs share, one object each: bounded, short ones only.
_SHARED: dict[bytes, bytes] = {}
_SHARED_MAX = 8192
_SHARED_LENGTH = 48


def _shared(tail: bytes) -> bytes:
    if len(tail) > _SHARED_LENGTH:
        return tail
    known = _SHARED.get(tail)
    if known is not None:
        return known
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[tail] = tail
    return tail


@dataclass(frozen=True, slots=True)
class JobLines:
    """One job's rendered lines of every per-job family, and what they were rendered from."""

    head: bytes
    """``{`` and the job's label set, shared by all of its lines."""
    state: tuple[bool, str | None] | None
    success: float | None
    job: Job | None
    name: str
    pages: tuple[PageStats | None, str | None] | None
    parts: tuple[bytes, ...]
    """One tail per column (``b""`` for no line), in the order of :func:`families`."""
    outcome: Outcome | None = None
    """The outcome rendered (never changed once made): the same one again, with the same name
    and no pages, shows the same lines (see :meth:`RenderCache.current`)."""


def _extra(name: str, value: str) -> str:
    return "," + render_labels((name,), (value,))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one(value: float | None) -> bytes:
    """The tail of a job's one line (labels: the job's alone) with ``value``; none for None."""
    return _EMPTY if value is None else value_tail(float(value))


# The last ``last_success`` tail rendered: the jobs of one listing answer were read at the same
# moment, so they render one after another with the same time, and share its tail.
_LAST_SUCCESS: list[tuple[float | None, bytes]] = [(None, _EMPTY)]


def _success(value: float | None) -> bytes:
    known, tail = _LAST_SUCCESS[0]
    if value is None or value != known:
        tail = _one(value)
        _LAST_SUCCESS[0] = (value, tail)
    return tail


def _status_tails() -> dict[tuple[str, bool], bytes]:
    """Each status line's tail, current or not: the same for every job."""
    labels = 'l=""'
    return {
        (state, current): render_tail(
            metrics.JOB_STATUS.name,
            labels,
            (("", labels + _extra("status", state), 1.0 if current else 0.0),),
        )
        for state in STATUSES
        for current in (False, True)
    }


_STATUS_TAILS = _status_tails()
# One object for each outcome state (up, or down and why), not one per job.
_STATES: dict[tuple[bool, str | None], tuple[bool, str | None]] = {
    state: state for state in [(True, None), (False, None)] + [(False, r) for r in metrics.REASONS]
}
_JOB_READS = tuple(d.read for d in metrics.JOB_VALUES)


def _render_state(labels: str, up: bool, reason: str | None) -> tuple[bytes, bytes]:
    error: list[Sample] = []
    if reason is not None:
        error.append(("", labels + _extra("reason", reason), 1.0))
    return (
        _one(1.0 if up else 0.0),
        _shared(render_tail(metrics.ERROR_INFO.name, labels, error)),
    )


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
    parts = [render_tail(metrics.JOB_INFO.name, labels, (("", f"{labels},{info}", 1.0),))]
    parts += (_STATUS_TAILS[state, job.status == state] for state in STATUSES)
    failure: list[Sample] = []
    if job.failure is not None:
        failure.append(("", labels + _extra(_FAILURE_LABEL, job.failure), 1.0))
    parts.append(render_tail(metrics.JOB_FAILURE_INFO.name, labels, failure))
    agents = [("", labels + _extra(_AGENT_LABEL, agent), 1.0) for agent in job.agents]
    parts.append(_shared(render_tail(metrics.JOB_AGENT_INFO.name, labels, agents)))
    for read in _JOB_READS:
        value = read(job)
        parts.append(_EMPTY if value is None else value_tail(float(value)))
    return tuple(parts)


def _render_pages(labels: str, stats: PageStats | None, error: str | None) -> tuple[bytes, ...]:
    parts: list[bytes] = []
    histogram = metrics.PAGE_MARKDOWN_CHARS.name
    if stats is None:
        parts += (_EMPTY,) * (len(metrics.PAGE_VALUES) + 3)
    else:
        parts += (_one(d.read(stats)) for d in metrics.PAGE_VALUES)
        buckets = [
            ("_bucket", labels + _extra("le", bound), float(count))
            for bound, count in stats.cumulative()
        ]
        parts += (
            _shared(render_tail(histogram, labels, buckets)),
            value_tail(float(stats.markdown_pages)),
            value_tail(stats.markdown_chars),
        )
    reason: list[Sample] = []
    if error is not None:
        reason.append(("", labels + _extra("reason", error), 1.0))
    parts.append(_shared(render_tail(metrics.PAGE_STATS_ERROR_INFO.name, labels, reason)))
    return tuple(parts)


class RenderCache:
    """The :class:`JobLines` of each exported job, by key; owned by one
    :class:`~exporter.collect.state.Runtime`."""

    def __init__(self, entries: dict[Key, JobLines] | None = None) -> None:
        self.entries: dict[Key, JobLines] = dict(entries or {})
        self.renders = 0
        """Jobs rendered (new, or changed in any group), for tests and the bench."""

    def current(self, target: Target, outcome: Outcome | None) -> JobLines | None:
        """The job's cached lines when they were rendered from this very ``outcome`` (the
        served ones are kept and reused while the job's data stays the same) for the same name,
        without page totals: a scrape of unchanged jobs then compares nothing. Else None (ask
        :meth:`lines`)."""
        old = self.entries.get(target.key)
        if (
            old is not None
            and old.outcome is outcome
            and old.pages is None
            and old.name is target.name
            and outcome is not None
        ):
            return old
        return None

    def lines(self, target: Target, outcome: Outcome | None, view: PageView | None) -> JobLines:
        """The job's lines for this outcome and page view: the cached ones while nothing they
        show changed, else rendered again (only the groups that changed)."""
        key = target.key
        old = self.entries.get(key)
        state = None
        if outcome is not None:
            state = (outcome.up, outcome.reason)
            state = _STATES.get(state, state)
        success = None if outcome is None else outcome.last_success
        job = None if outcome is None else outcome.job
        name = target.name
        pages = None if view is None else (view.stats, view.error)
        if old is not None:
            same_job = (old.job is job or old.job == job) and (job is None or old.name == name)
            if old.state == state and old.success == success and same_job and old.pages == pages:
                if old.outcome is not outcome:
                    old = JobLines(
                        old.head, state, success, job, name, old.pages, old.parts, outcome
                    )
                    self.entries[key] = old
                return old
            head, parts = old.head, old.parts
        else:
            same_job = False
            parts = (_EMPTY,) * COLUMNS
        # Not kept (memory): rendered again, at a change only.
        labels = render_labels(metrics.JOB_LABELS, key)
        if old is None:
            head = ("{" + labels).encode("utf-8")
        if old is None or old.state != state:
            first = _NO_STATE if state is None else _render_state(labels, *state)
            parts = first + parts[_SUCCESS_AT:]
        if old is None or old.success != success:
            line = _success(success)
            parts = (*parts[:_SUCCESS_AT], line, *parts[_JOB_AT:])
        if not same_job:
            body = _NO_JOB if job is None else _render_job(labels, name, job)
            parts = parts[:_JOB_AT] + body + parts[_PAGE_AT:]
        if old is None or old.pages != pages:
            tail = _NO_PAGES if view is None else _render_pages(labels, view.stats, view.error)
            parts = parts[:_PAGE_AT] + tail
            # A copy: what the next scrape compares with, whatever becomes of the served one.
            pages = None if view is None else (_copy(view.stats), view.error)
        entry = JobLines(head, state, success, job, name, pages, parts, outcome)
        self.entries[key] = entry
        self.renders += 1
        return entry

    def keep_only(self, keep: set[Key]) -> None:
        """Drop the lines of the jobs no longer exported. The dict is built anew (a dict
        never shrinks): a scrape rendering meanwhile may lose its entry to the old one, and
        renders it again next time."""
        entries = self.entries
        if not keep.issuperset(list(entries)):
            self.entries = {k: v for k, v in list(entries.items()) if k in keep}

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
    heads = [entry.head for entry in entries]
    parts = [entry.parts for entry in entries]

    def family(definition: metrics.MetricDef, at: int, count: int = 1) -> Family:
        prefix = definition.name.encode()
        columns = tuple((prefix, _column(parts, at + i)) for i in range(count))
        return Family(
            definition.name, definition.type, definition.help, parts=Parts(heads, columns)
        )

    at = _JOB_AT
    out = [
        family(metrics.UP, _STATE_AT),
        family(metrics.ERROR_INFO, _STATE_AT + 1),
        family(metrics.LAST_SUCCESS, _SUCCESS_AT),
        family(metrics.JOB_INFO, at),
        family(metrics.JOB_STATUS, at + 1, len(STATUSES)),
        family(metrics.JOB_FAILURE_INFO, at + 1 + len(STATUSES)),
        family(metrics.JOB_AGENT_INFO, at + 2 + len(STATUSES)),
        *(family(d, at + 3 + len(STATUSES) + i) for i, d in enumerate(metrics.JOB_VALUES)),
    ]
    if with_pages:
        at = _PAGE_AT
        out += (family(d, at + i) for i, d in enumerate(metrics.PAGE_VALUES))
        at += len(metrics.PAGE_VALUES)
        histogram = metrics.PAGE_MARKDOWN_CHARS
        columns = tuple(
            ((histogram.name + suffix).encode(), _column(parts, at + i))
            for i, suffix in enumerate(("_bucket", "_gcount", "_gsum"))
        )
        out.append(
            Family(histogram.name, histogram.type, histogram.help, parts=Parts(heads, columns))
        )
        out.append(family(metrics.PAGE_STATS_ERROR_INFO, at + 3))
    return out


def _column(parts: list[tuple[bytes, ...]], at: int) -> Callable[[], Sequence[bytes]]:
    """Each job's tail of column ``at``, taken when the family is written."""
    return lambda: list(map(operator.itemgetter(at), parts))
