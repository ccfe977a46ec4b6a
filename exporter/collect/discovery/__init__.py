"""Discovery (``discover: true``): listing a workspace's jobs, and why a failing listing is
not a fleet of failing jobs.

- Each discovering workspace has one owner, :class:`WorkspaceDiscovery` (:mod:`.owner`): it
  decides what is due, runs the walks (:mod:`.walks`) off the scrape's deadline and publishes
  an immutable :class:`Snapshot` (:mod:`.snapshot`) that everyone else only reads.
- The whole list is read every ``discover_interval`` (a *full listing*), and what can have
  changed of it at most every ``api.min_refresh_interval`` (a *refresh*). A job that leaves
  the list is gone from the first scrape after the first good full listing without it, or
  refresh that read the whole list.
- Listing requests take at most half of ``api.max_concurrency`` for all workspaces together
  (:mod:`.slots`).
- When a listing fails (any reason, or it is not asked during the workspace's 429 backoff),
  the discovered jobs keep the last good snapshot's data with ``up`` 1 (their
  ``last_success_timestamp_seconds`` shows its age) until the listing has failed for
  ``discover_grace_period`` in a row; then they are down with the listing's reason, until it
  answers again (:mod:`.serve`).
- Discovery's own health is ``convocore_crawler_discovery_up`` and
  ``convocore_crawler_discovery_error_info`` per workspace, and a failing listing logs one line
  per workspace and change, never one per job.

This package's root imports nothing that imports the runtime, so that the runtime can hold
the owners; :mod:`.serve` (which builds outcomes) is imported by the scrape's modules.
"""

from .derived import Derived
from .owner import (
    IN_PROGRESS,
    INTERNAL_ERROR,
    Walk,
    WorkspaceDiscovery,
    in_flight,
    start_walks,
    wait,
)
from .slots import ListingSlots
from .snapshot import Health, Snapshot

__all__ = [
    "INTERNAL_ERROR",
    "IN_PROGRESS",
    "Derived",
    "Health",
    "ListingSlots",
    "Snapshot",
    "Walk",
    "WorkspaceDiscovery",
    "in_flight",
    "start_walks",
    "wait",
]
