"""What discovery publishes of a workspace: an immutable :class:`Snapshot` of its listing,
swapped in whole by the workspace's owner after each good walk, and the listing's
:class:`Health`. Readers (scrapes, ``/sd``, ``/probe``, the landing page) take one and never
see it change; nothing but the owner makes a new one."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ...config import is_identifier
from ...convocore.api import ListAnswer
from ...convocore.model import Job, JobTally, parse_job
from ...convocore.transport import ApiResult
from .. import age


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Snapshot:
    """A workspace's jobs as its last good listing (full or refresh) left them.

    ``tallies`` holds every listed job, those past ``include_finished_for`` included; ``jobs``
    the exportable ones (active, or finished within the horizon) whole, with ``seen`` the
    wall time each was last read; ``positions`` where each active job stood in the list (for
    the next refresh). The mappings are read-only views of dicts nobody keeps a hand on."""

    jobs: Mapping[str, Job]
    tallies: Mapping[str, JobTally]
    seen: Mapping[str, float]
    positions: Mapping[str, int]
    cursor: bool  # the list answers with cursors (else page numbers)
    page_size: int
    total: int | None  # as the last page-numbered answer said
    listed_at: float  # Runtime.clock time of the last full listing
    refreshed_at: float  # ... and of the last listing, full or refresh
    last_success: float  # wall time of the last good listing, full or refresh
    cut: int = 0  # jobs the last full listing left out at discover_max_pages


@dataclass(frozen=True, slots=True)
class Health:
    """How the workspace's listing goes: answering (``error`` None), or why not since when."""

    error: str | None = None  # the discovery_error_info reason; None while it answers
    failed: ApiResult | None = None  # the failed result behind it, for the log
    failing_since: float | None = None  # Runtime.clock time of the first failure in a row
    expired: bool = False  # failing for longer than discover_grace_period (logged once)


@dataclass(slots=True)
class Gathered:
    """What one walk read, before the owner makes a :class:`Snapshot` of it. Kept by the walk
    alone while it runs."""

    horizon: float | None  # finished before this (wall time): a tally only
    secrets: tuple[str, ...]  # redacted from a job's failure text
    jobs: dict[str, Job] = field(default_factory=dict)
    tallies: dict[str, JobTally] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    totals: set[int] = field(default_factory=set)  # every total the answers gave
    cursor: bool = False
    page_size: int = 0
    answers: int = 0
    cut: int = 0  # jobs left out at discover_max_pages (at least 1 for a cut cursor list)
    gone: set[str] = field(default_factory=set)  # get-job answered not_found
    whole: bool = False  # the walk read the whole list, to its end

    def add(self, answer: ListAnswer, known: Mapping[str, object] | None = None) -> tuple[int, int]:
        """Keep an answer's jobs, and where its active ones stand; how many of them are active,
        and how many are not in ``known``."""
        self.answers += 1
        self.cursor = answer.cursor
        self.page_size = answer.page_size
        if answer.total is not None:
            self.totals.add(answer.total)
        now = time.time()
        active = new = 0
        for offset, item in enumerate(answer.items):
            job_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(job_id, str) or not is_identifier(job_id):
                continue
            job = parse_job(item, self.secrets)
            self.keep(job_id, job, now)
            if not job.finished:
                self.positions[job_id] = answer.first_index + offset
                active += 1
            if known is not None and job_id not in known:
                new += 1
        return active, new

    def keep(self, job_id: str, job: Job, now: float) -> None:
        self.tallies[job_id] = JobTally.of(job)
        if age.past(job, self.horizon):
            self.jobs.pop(job_id, None)
            self.seen.pop(job_id, None)
            return
        self.jobs[job_id] = job
        self.seen[job_id] = now

    @property
    def consistent(self) -> bool:
        """Whether the list held still while it was read: its total, when it gave one, did
        not change (else a job may have slipped between two pages read at once)."""
        return len(self.totals) <= 1


def replaced(got: Gathered, at: float) -> Snapshot:
    """The snapshot of a walk that read the whole list, still: what it read, alone."""
    return Snapshot(
        MappingProxyType(got.jobs),
        MappingProxyType(got.tallies),
        MappingProxyType(got.seen),
        MappingProxyType(got.positions),
        got.cursor,
        got.page_size,
        max(got.totals) if got.totals else None,
        listed_at=at,
        refreshed_at=at,
        last_success=time.time(),
        cut=got.cut,
    )


def merged(got: Gathered, at: float, before: Snapshot | None, *, full: bool) -> Snapshot:
    """The snapshot of a refresh (or of a full listing during which the list moved): what it
    read over ``before``, less the jobs get-job said are gone."""
    old = before
    jobs = dict(old.jobs) if old else {}
    tallies = dict(old.tallies) if old else {}
    seen = dict(old.seen) if old else {}
    positions = dict(old.positions) if old else {}
    for job_id in got.gone:
        for kept in (jobs, tallies, seen, positions):
            kept.pop(job_id, None)
    for job_id, tally in got.tallies.items():
        tallies[job_id] = tally
        job = got.jobs.get(job_id)
        if job is None:
            jobs.pop(job_id, None)
            seen.pop(job_id, None)
        else:
            jobs[job_id] = job
            seen[job_id] = got.seen[job_id]
        if tally.finished:
            positions.pop(job_id, None)
    positions.update(got.positions)
    total = max(got.totals) if got.totals else (old.total if old else None)
    return Snapshot(
        MappingProxyType(jobs),
        MappingProxyType(tallies),
        MappingProxyType(seen),
        MappingProxyType(positions),
        got.cursor,
        got.page_size,
        total,
        listed_at=at if full or old is None else old.listed_at,
        refreshed_at=at,
        last_success=time.time(),
        cut=got.cut if full or old is None else old.cut,
    )
