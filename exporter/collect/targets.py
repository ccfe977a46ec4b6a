"""Which jobs this exporter exports: configured and discovered ones, filtered by shard, by age
(``include_finished_for``) and capped by ``max_jobs``."""

from __future__ import annotations

import hashlib
import logging

from ..config import Workspace
from ..convocore.model import Job
from . import age
from .discovery import serve
from .state import Key, Runtime, Target

log = logging.getLogger("exporter.collect")


def shard_of(workspace_id: str, job_id: str, total: int) -> int:
    """A stable shard for a job: the same on every replica, run and Python version."""
    digest = hashlib.sha256(f"{workspace_id}/{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


class Sharding:
    """This replica's share of the jobs (``--shard`` of ``--total-shards``)."""

    def __init__(self, shard: int = 0, total: int = 1) -> None:
        self.shard = shard
        self.total = total

    def owns(self, key: Key) -> bool:
        return self.total == 1 or shard_of(*key, self.total) == self.shard


def select(rt: Runtime, sharding: Sharding) -> list[Target]:
    """Explicit jobs, then discovered ones, filtered by shard, age and ``max_jobs``."""
    selected: list[Target] = []
    for ws in rt.config.workspaces:
        candidates = [rt.explicit[(ws.id, job.id)] for job in ws.jobs]
        if ws.discover:
            candidates.extend(_discovered(rt, ws))
        if sharding.total > 1:
            candidates = [t for t in candidates if sharding.owns(t.key)]
        horizon = age.horizon(ws)
        if horizon is not None:
            # Only discovered jobs age out: a job listed by hand is always exported.
            candidates = [t for t in candidates if t.explicit or not _past(rt, t, horizon)]
        if ws.max_jobs is not None:
            candidates = _cap(rt, ws, candidates, ws.max_jobs)
        selected.extend(candidates)
    return selected


def _discovered(rt: Runtime, ws: Workspace) -> list[Target]:
    snapshot = rt.snapshot(ws.id)
    return [] if snapshot is None else serve.targets(rt, ws, snapshot)


def known_job(rt: Runtime, target: Target) -> Job | None:
    """The freshest data known of ``target``: its last get-job, else its list item."""
    state = rt.states.get(target.key)
    if state is not None and state.job is not None:
        return state.job
    snapshot = rt.snapshot(target.workspace.id)
    return snapshot.jobs.get(target.job_id) if snapshot else None


def _past(rt: Runtime, target: Target, horizon: float) -> bool:
    job = known_job(rt, target)
    return job is not None and age.past(job, horizon)


def _cap(rt: Runtime, ws: Workspace, targets: list[Target], cap: int) -> list[Target]:
    """At most ``cap`` jobs: explicit first, then active, then the most recently updated.

    A job left out is counted once in ``dropped_jobs_total``; the bookkeeping forgets a job
    that leaves the candidates (gone from the listing, aged out), and a reload resets it.
    """
    candidates = {t.job_id for t in targets}
    with rt.lock:
        dropped = rt.dropped.setdefault(ws.id, set())
        dropped &= candidates
    if len(targets) <= cap:
        return targets

    def rank(target: Target) -> tuple[int, int, float]:
        job = known_job(rt, target)
        active = 0 if job is None or not job.finished else 1
        updated = job.updated_timestamp if job and job.updated_timestamp else 0.0
        return (0 if target.explicit else 1, active, -updated)

    ordered = sorted(targets, key=rank)
    keep = {t.job_id for t in ordered[:cap]}
    left_out = {t.job_id for t in ordered[cap:]}
    with rt.lock:
        new = left_out - dropped
        dropped |= new
    if new:
        rt.own.dropped_jobs.labels(ws.id).inc(len(new))
        log.warning(
            "max_jobs reached; jobs not exported",
            extra={"workspace_id": ws.id, "dropped": len(new), "max_jobs": cap},
        )
    return [t for t in targets if t.job_id in keep]
