"""The one owner of a discovering workspace's listing: :class:`WorkspaceDiscovery`.

Once per cycle it decides from its snapshot what is due (a full listing, a refresh, or
nothing), runs it on a walker thread, and publishes the result as a new immutable
:class:`~.snapshot.Snapshot` swapped in whole, with the listing's
:class:`~.snapshot.Health`. Nothing else changes either. It decides the scrape's wait rule
too: a scrape waits up to its deadline for a workspace's first listing and for refreshes,
never for a later full listing (a refresh that turns into one included), nor for a walk a
scrape already gave up on, nor after a walk that timed out in flight until one answers.

Its errors are its own: a walk that raises is logged once (with the workspace and the
exception's type), counted on ``convocore_crawler_api_errors_total{reason="internal_error"}``
and shown as ``discovery_up`` 0 with reason ``internal_error``; the next cycle tries again.
"""

from __future__ import annotations

import concurrent.futures
import enum
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...config import Workspace
from ...convocore.transport import ApiResult
from ..backoff import in_backoff, note_result
from . import walks
from .snapshot import Gathered, Health, Snapshot, merged, replaced

if TYPE_CHECKING:
    from ..state import Runtime

log = logging.getLogger("exporter.collect")

IN_PROGRESS = "listing_in_progress"
"""Discovery's reason while a workspace's first listing has not completed yet."""
INTERNAL_ERROR = "internal_error"
"""Discovery's reason after a walk that raised (a bug, not the API)."""


class Plan(enum.Enum):
    FULL_LISTING = "full listing"
    REFRESH = "refresh"


class Walk:
    """One walk under way, as the scrapes see it."""

    __slots__ = ("background", "deadline", "first", "settled")

    def __init__(self, deadline: float, *, first: bool, background: bool) -> None:
        self.deadline = deadline  # of the scrape that started it
        self.first = first  # the workspace's first listing
        self.background = background  # a full listing after the first: nobody waits for it
        self.settled = threading.Event()  # it ended, or went on in the background

    def go_background(self) -> None:
        self.background = True
        self.settled.set()


class WorkspaceDiscovery:
    """A discovering workspace's listing, its walks and their health."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._health = Health()
        self._walk: Walk | None = None
        # The last walk timed out in flight: scrapes do not wait for the next until one answers.
        self._timed_out = False

    @property
    def snapshot(self) -> Snapshot | None:
        """The last good listing, or None before the first."""
        return self._snapshot

    @property
    def health(self) -> Health:
        return self._health

    @property
    def walking(self) -> bool:
        return self._walk is not None

    def adopt(self, old: WorkspaceDiscovery) -> None:
        """Carry over what ``old`` (the same workspace under the config before a reload)
        published: its snapshot and health. A walk of ``old`` still running ends there."""
        with old._lock:
            self._snapshot, self._health = old._snapshot, old._health
            self._timed_out = old._timed_out

    def _plan(self, rt: Runtime, snapshot: Snapshot | None) -> Plan | None:
        if snapshot is None:
            return Plan.FULL_LISTING
        now = rt.clock()
        if now - snapshot.listed_at >= self.ws.discover_interval:
            return Plan.FULL_LISTING
        if now - snapshot.refreshed_at >= rt.config.api.min_refresh_interval:
            return Plan.REFRESH
        return None

    def start(self, rt: Runtime, deadline: float, owns: Callable[[str], bool]) -> Walk | None:
        """Start what is due this cycle, or share the walk under way; the walk, or None.

        A walk due while the workspace is in backoff after a 429 is not started: that counts
        as a failed listing (``rate_limited``). ``owns`` picks the active jobs a refresh
        re-reads (this shard's)."""
        with self._lock:
            if self._walk is not None:
                return self._walk
            snapshot = self._snapshot
            plan = self._plan(rt, snapshot)
            if plan is None:
                return None
            walk: Walk | None = None
            if not in_backoff(rt, self.ws.id, time.monotonic()):
                walk = self._walk = Walk(
                    deadline,
                    first=snapshot is None,
                    background=plan is Plan.FULL_LISTING and snapshot is not None,
                )
        if walk is None:
            self._record(rt, ApiResult(reason="rate_limited", detail="in backoff after a 429"))
            return None
        active: set[str] = set()
        if plan is Plan.REFRESH and snapshot is not None:
            active = {j for j, job in snapshot.jobs.items() if not job.finished and owns(j)}
        try:
            future = rt.walkers.submit(self._run, rt, walk, plan, snapshot, active)
        except RuntimeError:  # a reload or stop shut this config's walkers
            self._end(walk)
            return None
        future.add_done_callback(functools.partial(self._cancelled, walk))
        return walk

    def _cancelled(self, walk: Walk, future: concurrent.futures.Future[None]) -> None:
        if future.cancelled():
            self._end(walk)

    def waits(self, walk: Walk, now: float) -> bool:
        """Whether a scrape at ``now`` waits for ``walk`` (within its deadline)."""
        if walk.background or walk.settled.is_set():
            return False
        return not self._timed_out and walk.deadline > now

    def pending(self, rt: Runtime, walk: Walk) -> None:
        """A scrape's deadline passed with ``walk`` under way: the first listing shows as
        ``listing_in_progress`` (unless an earlier one failed, whose reason stays). Decided
        under the lock, so that a walk ending meanwhile is never shown as still running."""
        if not walk.first:
            return
        with self._lock:
            if walk.settled.is_set() or self._snapshot is not None:
                return
            if self._health.error is not None:
                return  # already in progress, or the reason of an earlier failure
            self._health = Health(IN_PROGRESS, None, rt.clock())
        log.info(
            "first job listing under way; its jobs are exported once it is complete",
            extra={"workspace_id": self.ws.id},
        )

    def _end(self, walk: Walk) -> None:
        with self._lock:
            if self._walk is walk:
                self._walk = None
        walk.settled.set()

    def _run(
        self,
        rt: Runtime,
        walk: Walk,
        plan: Plan,
        before: Snapshot | None,
        active: set[str],
    ) -> None:
        try:
            try:
                result, snapshot, full = self._walk_once(rt, walk, plan, before, active)
            except Exception:
                log.exception(
                    "job listing crashed; it is tried again at the next cycle",
                    extra={"workspace_id": self.ws.id},
                )
                result = ApiResult(reason=INTERNAL_ERROR, detail="the walk raised")
                snapshot, full = None, False
            if rt.closed:
                return  # a reload or stop cut it short: the new config walks again
            if snapshot is not None:
                self._publish(rt, before, snapshot, counted_cut=full)
            else:
                rt.own.count_error(self.ws.id, result.reason or "invalid_response")
            note_result(rt, self.ws.id, result)
            with self._lock:
                self._timed_out = result.cause == "timeout"
            self._record(rt, result)
        finally:
            self._end(walk)

    def _walk_once(
        self,
        rt: Runtime,
        walk: Walk,
        plan: Plan,
        before: Snapshot | None,
        active: set[str],
    ) -> tuple[ApiResult, Snapshot | None, bool]:
        """The plan's walk: its result, the snapshot it makes when it answered, and whether
        it was a full listing."""
        got: Gathered | None = None
        if plan is Plan.REFRESH and before is not None:
            refreshed = walks.refresh(rt, self.ws, before, active)
            if refreshed is None:  # a full listing is the better buy, in the background
                walk.go_background()
                plan = Plan.FULL_LISTING
            else:
                result, got = refreshed
        if plan is Plan.FULL_LISTING:
            result, got = walks.full_listing(rt, self.ws)
        assert got is not None
        if not result.ok:
            if result.reason is None:
                result = ApiResult(reason="invalid_response", detail=result.detail)
            return result, None, plan is Plan.FULL_LISTING
        at = rt.clock()
        if got.consistent and (plan is Plan.FULL_LISTING or got.whole):
            # A full listing, or a refresh that read the whole list, which is one: a job
            # missing from it is gone.
            return result, replaced(got, at), plan is Plan.FULL_LISTING
        # The list moved while a full listing read it (a job may have slipped between two
        # pages), or a refresh read part of it: what was read goes over what was known.
        full = plan is Plan.FULL_LISTING
        return result, merged(got, at, before, full=full), full

    def _publish(
        self, rt: Runtime, before: Snapshot | None, snapshot: Snapshot, *, counted_cut: bool
    ) -> None:
        with self._lock:
            self._snapshot = snapshot
        cut_before = before.cut if before is not None else 0
        if counted_cut and snapshot.cut > cut_before:
            rt.own.discovery_truncated.labels(self.ws.id).inc(snapshot.cut - cut_before)
            if cut_before == 0:
                log.warning(
                    "discover_max_pages reached; the listing's later jobs are not exported",
                    extra={
                        "workspace_id": self.ws.id,
                        "left_out": snapshot.cut,
                        "discover_max_pages": self.ws.discover_max_pages,
                    },
                )

    def _record(self, rt: Runtime, result: ApiResult) -> None:
        """The listing's health after ``result``, and one log line per change."""
        with self._lock:
            before = self._health
            if result.ok:
                self._health = Health()
            else:
                since = before.failing_since
                self._health = Health(
                    result.reason or "invalid_response",
                    result,
                    rt.clock() if since is None else since,
                    before.expired,
                )
            after = self._health.error
        fields: dict[str, object] = {"workspace_id": self.ws.id}
        if after is not None and after != before.error:
            fields["reason"] = after
            if result.cause is not None:
                fields.update(host=rt.client.host, cause=result.cause, detail=result.detail)
            log.warning(
                "job listing failed; the discovered jobs keep the last listing for up to "
                "discover_grace_period",
                extra={**fields, "discover_grace_period": self.ws.discover_grace_period},
            )
        elif after is None and before.error == IN_PROGRESS:
            jobs = len(self._snapshot.jobs) if self._snapshot is not None else 0
            log.info("first job listing complete", extra={**fields, "jobs": jobs})
        elif after is None and before.error is not None:
            log.info("job listing answers again", extra={**fields, "previous_reason": before.error})

    def expired(self, rt: Runtime, now: float) -> bool:
        """Whether the listing has failed for ``discover_grace_period``; logged once per
        spell."""
        with self._lock:
            health = self._health
            since = health.failing_since
            if health.error is None or since is None:
                return False
            if now - since < self.ws.discover_grace_period:
                return False
            first = not health.expired
            self._health = Health(health.error, health.failed, since, expired=True)
            count = len(self._snapshot.jobs) if self._snapshot is not None else 0
        if first:
            log.warning(
                "job listing failing for longer than discover_grace_period; its discovered "
                "jobs are down",
                extra={
                    "workspace_id": self.ws.id,
                    "reason": health.error,
                    "discover_grace_period": self.ws.discover_grace_period,
                    "jobs": count,
                },
            )
        return True


def start_walks(
    rt: Runtime, deadline: float, only: str | None, owns: Callable[[str, str], bool]
) -> list[tuple[WorkspaceDiscovery, Walk]]:
    """Start the walks that are due of the discovering workspaces (or share those under
    way); ``only`` one workspace (``/probe``)."""
    started: list[tuple[WorkspaceDiscovery, Walk]] = []
    for ws_id, owner in rt.discoveries.items():
        if only is not None and ws_id != only:
            continue
        walk = owner.start(rt, deadline, functools.partial(owns, ws_id))
        if walk is not None:
            started.append((owner, walk))
    return started


def wait(rt: Runtime, started: list[tuple[WorkspaceDiscovery, Walk]], deadline: float) -> None:
    """Wait within ``deadline`` for the walks a scrape waits for (see
    :meth:`WorkspaceDiscovery.waits`). The discovered jobs depend on them, so this comes
    before the jobs are selected. A walk still running at the deadline goes on: later scrapes
    serve the last snapshot meanwhile, and the first one after it ends uses it."""
    now = time.monotonic()
    for walk in [w for o, w in started if o.waits(w, now)]:
        walk.settled.wait(max(0.0, deadline - time.monotonic()))
    for owner, walk in started:
        owner.pending(rt, walk)


def in_flight(rt: Runtime) -> int:
    """How many walks are under way."""
    return sum(owner.walking for owner in rt.discoveries.values())
