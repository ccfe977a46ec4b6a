"""What a scrape serves of discovery: each discovered job's outcome from its workspace's
snapshot, and its health within ``discover_grace_period``. Reads only."""

from __future__ import annotations

from collections.abc import Mapping

from ...config import Workspace
from ...convocore.model import Job
from ...convocore.trace import ProbeTrace
from ...convocore.transport import ApiResult
from ..state import Key, Outcome, Runtime, Target
from .snapshot import Health, Snapshot


def outcomes(
    rt: Runtime, targets: list[Target], trace: ProbeTrace | None = None
) -> dict[Key, Outcome]:
    """The outcome of each discovered target, from its workspace's snapshot: up with the
    listed data, or down with the listing's reason once it has failed for
    ``discover_grace_period``. The outcomes of a snapshot are made once per snapshot and
    listing state (see :mod:`.derived`), and shared by the scrapes that serve it."""
    now = rt.clock()
    result: dict[Key, Outcome] = {}
    served: dict[str, _Served | None] = {}
    for target in targets:
        if target.explicit:
            continue
        ws_id = target.workspace.id
        if ws_id not in served:
            served[ws_id] = _served_outcomes(rt, ws_id, now)
        known = served[ws_id]
        if known is None:
            continue
        outcome = known[0].get(target.key)
        if outcome is None:
            # Selected from the snapshot before: a new one was published since.
            outcome = _outcome(None, known[3].last_success, known[4])
        result[target.key] = outcome
        if trace is not None:
            trace.note(_served(known[1], known[2], now))
    return result


_Served = tuple[Mapping[Key, Outcome], Health, bool, Snapshot, tuple[str, ApiResult | None] | None]
"""A workspace's outcomes by key, its listing's health, whether past its grace, the snapshot
served, and the reason and failed result the jobs are down with (None: up)."""


def _outcome(
    job: Job | None, read_at: float, failed: tuple[str, ApiResult | None] | None
) -> Outcome:
    if failed is None:
        return Outcome(True, None, job, read_at, quiet=True)
    return Outcome(False, failed[0], job, read_at, failed[1], quiet=True)


def targets(rt: Runtime, ws: Workspace, snapshot: Snapshot) -> list[Target]:
    """The workspace's discovered targets (its listed jobs not configured by hand), made once
    per snapshot and shared by the scrapes that serve it (read-only). A job listed before
    keeps its :class:`Target`, and so its key, from one snapshot to the next."""

    def make(previous: list[Target] | None) -> list[Target]:
        known = {t.job_id: t for t in previous or ()}
        explicit = rt.explicit
        made: list[Target] = []
        for job_id in snapshot.jobs:
            target = known.get(job_id)
            if target is None:
                if (ws.id, job_id) in explicit:
                    continue
                target = Target(ws, job_id, "", explicit=False)
            made.append(target)
        return made

    return rt.derived.get(("targets", ws.id), snapshot, make)


def _served_outcomes(rt: Runtime, ws_id: str, now: float) -> _Served | None:
    """The outcome of each discovered job of the workspace's snapshot, the listing's health
    and whether it is past its grace; None before the first listing."""
    owner = rt.discoveries.get(ws_id)
    snapshot = owner.snapshot if owner is not None else None
    if owner is None or snapshot is None:
        return None
    expired = owner.expired(rt, now)
    health = owner.health
    failed = (health.error or "invalid_response", health.failed) if expired else None

    def make(previous: dict[Key, Outcome] | None) -> dict[Key, Outcome]:
        # A job whose served data did not change keeps its Outcome: the render cache then
        # knows it unchanged at a glance.
        last, seen, jobs = snapshot.last_success, snapshot.seen, snapshot.jobs
        kept = previous or {}
        made: dict[Key, Outcome] = {}
        reason, result = failed if failed is not None else (None, None)
        for target in targets(rt, owner.ws, snapshot):
            job = jobs.get(target.job_id)
            read_at = seen.get(target.job_id, last)
            old = kept.get(target.key)
            if (
                old is None
                or old.job is not job
                or old.last_success != read_at
                or old.reason != reason
                or old.failed is not result
            ):
                old = _outcome(job, read_at, failed)
            made[target.key] = old
        return made

    served = rt.derived.get(("outcomes", ws_id), snapshot, make, (failed,))
    return served, health, expired, snapshot, failed


def _served(health: Health, expired: bool, now: float) -> str:
    text = "served from the workspace's job listing (discover: true)"
    if health.error is None or health.failing_since is None:
        return text
    failing = now - health.failing_since
    if expired:
        return f"{text}; down: the listing has failed for {failing:.0f}s ({health.error})"
    return f"{text}; the listing has failed for {failing:.0f}s ({health.error}), within grace"
