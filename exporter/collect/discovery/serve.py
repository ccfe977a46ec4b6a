"""What a scrape serves of discovery: each discovered job's outcome from its workspace's
snapshot, and its health within ``discover_grace_period``. Reads only."""

from __future__ import annotations

from collections.abc import Mapping

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


def _served_outcomes(rt: Runtime, ws_id: str, now: float) -> _Served | None:
    """The outcome of each job of the workspace's snapshot (those listed by hand too: never
    asked), the listing's health and whether it is past its grace; None before the first
    listing."""
    owner = rt.discoveries.get(ws_id)
    snapshot = owner.snapshot if owner is not None else None
    if owner is None or snapshot is None:
        return None
    expired = owner.expired(rt, now)
    health = owner.health
    failed = (health.error or "invalid_response", health.failed) if expired else None

    def make() -> dict[Key, Outcome]:
        last, seen = snapshot.last_success, snapshot.seen
        return {
            (ws_id, job_id): _outcome(job, seen.get(job_id, last), failed)
            for job_id, job in snapshot.jobs.items()
        }

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
