"""What a scrape serves of discovery: each discovered job's outcome from its workspace's
snapshot, and its health within ``discover_grace_period``. Reads only."""

from __future__ import annotations

from ...convocore.trace import ProbeTrace
from ..state import Key, Outcome, Runtime, Target
from .snapshot import Health


def outcomes(
    rt: Runtime, targets: list[Target], trace: ProbeTrace | None = None
) -> dict[Key, Outcome]:
    """The outcome of each discovered target, from its workspace's snapshot: up with the
    listed data, or down with the listing's reason once it has failed for
    ``discover_grace_period``."""
    now = rt.clock()
    result: dict[Key, Outcome] = {}
    expired: dict[str, bool] = {}
    for target in targets:
        if target.explicit:
            continue
        ws = target.workspace
        owner = rt.discoveries.get(ws.id)
        snapshot = owner.snapshot if owner is not None else None
        if owner is None or snapshot is None:
            continue
        if ws.id not in expired:
            expired[ws.id] = owner.expired(rt, now)
        health = owner.health
        job = snapshot.jobs.get(target.job_id)
        read_at = snapshot.seen.get(target.job_id, snapshot.last_success)
        if expired[ws.id]:
            reason = health.error or "invalid_response"
            result[target.key] = Outcome(False, reason, job, read_at, health.failed, quiet=True)
        else:
            result[target.key] = Outcome(True, None, job, read_at, quiet=True)
        if trace is not None:
            trace.note(_served(health, expired[ws.id], now))
    return result


def _served(health: Health, expired: bool, now: float) -> str:
    text = "served from the workspace's job listing (discover: true)"
    if health.error is None or health.failing_since is None:
        return text
    failing = now - health.failing_since
    if expired:
        return f"{text}; down: the listing has failed for {failing:.0f}s ({health.error})"
    return f"{text}; the listing has failed for {failing:.0f}s ({health.error}), within grace"
