"""What the collector remembers between scrapes, and who owns it.

Everything that belongs to one loaded config lives in a :class:`Runtime`; a reload builds a
new one, so caches, backoffs, in-flight fetches and the ``max_jobs`` bookkeeping of the old
config go with it. Only what the metrics need is kept: the last good parsed :class:`Job` of
each target (never the URL arrays), when it was fetched, and the per-workspace backoff.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..config import Config, Workspace
from ..convocore.api import ConvocoreClient, Position
from ..convocore.model import Job
from ..convocore.pages import PageStats
from ..convocore.transport import ApiResult
from . import affinity
from .backoff import Backoff
from .discovery import Derived, ListingSlots, Snapshot, WorkspaceDiscovery
from .own import OwnMetrics
from .rendered import RenderCache

Key = tuple[str, str]


@dataclass(slots=True)
class JobState:
    """What is remembered of one job between scrapes."""

    job: Job | None = None
    fetched_at: float | None = None  # monotonic time of the last good fetch
    last_success: float | None = None  # wall-clock time of the last good fetch
    detailed: bool = False  # from get-job (has the URL-array lengths), not only a list item
    down_reason: str | None = None  # outcome of the last scrape, for logging transitions
    served: Outcome | None = None
    """The last up outcome served from ``job``: served again, the same object, while the data
    stays the same, so the render cache takes its lines without comparing them."""


@dataclass(slots=True)
class PageState:
    """What is kept of one job's pages list between reads (``page_stats: true``): the totals,
    and where the next read may resume (see :mod:`.pagereads`)."""

    stats: PageStats | None = None  # served: every page counted by the last good read
    base: PageStats | None = None  # the pages before resume_at
    resume_at: Position = 1  # the API answer holding the last page counted: page or cursor
    resume_index: int = 0  # ... and where in the whole list that answer starts
    page_size: int = 0
    counted: int = 0
    anchor: str | None = None  # the id of the last page counted
    read_at: float | None = None  # Runtime.clock time of the last good read
    attempted_at: float | None = None  # ... and of the last read started
    final: bool = False  # read after the job was known finished: never read again
    error: str | None = None  # why the last read failed
    failures: int = 0  # reads failed in a row


_UNSUBMITTED: concurrent.futures.Future[ApiResult] = concurrent.futures.Future()


class Fetch:
    """One upstream fetch, shared by every scrape that overlaps it."""

    __slots__ = ("counted", "deadline", "future", "running")

    def __init__(self, deadline: float) -> None:
        # The future it runs under, set once the executor takes it (fetch.start); this shared
        # placeholder until then is never waited on.
        self.future: concurrent.futures.Future[ApiResult] = _UNSUBMITTED
        self.deadline = deadline  # of the scrape that started it, which the fetch keeps to
        self.running = False  # a worker has taken it up (it is no longer queued)
        self.counted = False  # its failure was counted once, whoever settled it first

    def run(self, work: Callable[[], ApiResult]) -> ApiResult:
        self.running = True
        return work()


@dataclass(frozen=True, slots=True)
class Target:
    """A job to export: configured by hand (``explicit``) or found by discovery."""

    workspace: Workspace
    job_id: str
    name: str = ""
    explicit: bool = True
    key: Key = field(init=False, repr=False, compare=False)
    """``(workspace_id, job_id)``: made once, as a scrape asks it of every job several times."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.workspace.id, self.job_id))


@dataclass(slots=True)
class Outcome:
    """One scrape's answer for one job: up or why not, and the data to serve."""

    up: bool
    reason: str | None
    job: Job | None
    last_success: float | None
    failed: ApiResult | None = None
    """The failed fetch behind ``reason``, when there was one (what the log line says)."""
    quiet: bool = False
    """A change of ``up`` that is logged once for the workspace, not per job (discovery)."""


class Runtime:
    """Everything that belongs to one loaded config; a reload replaces it, keeping what
    :meth:`carry_over` says."""

    def __init__(
        self, config: Config, own: OwnMetrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.own = own
        self.clock = clock  # for the page-stats intervals; tests move it instead of sleeping
        self.client = ConvocoreClient(config.api, own, clock=clock)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.api.max_concurrency,
            thread_name_prefix="upstream",
            initializer=affinity.pin,
            initargs=(affinity.request_cpus(config.api.request_cpus),),
        )
        # Discovery's walks over job listings, which hand their requests to ``executor``
        # through ``listing``: half of max_concurrency for every workspace together.
        self.listing = ListingSlots(self.executor, max(1, config.api.max_concurrency // 2))
        self.walkers = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(8, sum(ws.discover for ws in config.workspaces))),
            thread_name_prefix="listing",
        )
        self.lock = threading.Lock()
        self.closed = False  # a reload replaced this runtime, or the exporter stopped
        self.states: dict[Key, JobState] = {}
        # The one owner of each discovering workspace's listing.
        self.discoveries: dict[str, WorkspaceDiscovery] = {
            ws.id: WorkspaceDiscovery(ws) for ws in config.workspaces if ws.discover
        }
        # What scrapes derive from those listings' snapshots, once per snapshot.
        self.derived = Derived()
        self.backoffs: dict[str, Backoff] = {}
        self.inflight: dict[object, Fetch] = {}
        # Fetch keys whose last fetch timed out in flight, with its reason: scrapes do not
        # wait for them again until one answers (see collect.pipeline).
        self.overdue: dict[object, str] = {}
        # Each exported job's lines, rendered when it last changed (see collect.rendered).
        self.rendered = RenderCache()
        # Replaced in every text taken from the API (longest first: see model.redact).
        self.secrets: tuple[str, ...] = tuple(
            sorted(
                {value for ws in config.workspaces if (value := ws.token.reveal())},
                key=len,
                reverse=True,
            )
        )
        # Jobs left out by max_jobs, per workspace: counted once each while they stay out.
        self.dropped: dict[str, set[str]] = {}
        self.pages: dict[Key, PageState] = {}
        # Jobs whose pages were cut at page_stats_max_pages, per workspace: counted once each.
        self.truncated: dict[str, set[str]] = {}
        self.workspaces = {ws.id: ws for ws in config.workspaces}
        self.explicit: dict[Key, Target] = {
            (ws.id, job.id): Target(ws, job.id, job.name)
            for ws in config.workspaces
            for job in ws.jobs
        }
        own.start_runtime(config)

    def carry_over(self, old: Runtime) -> None:
        """Keep what ``old`` (the config before a reload) learned of the workspaces this config
        reads from the same API: the jobs (so finished ones are not fetched again), discovery
        listings, rate-limit and outage backoffs, overdue fetches, the jobs ``max_jobs`` left
        out and page totals (unless the page cap changed). A new token for a workspace keeps
        them too: the data is the workspace's, not the token's. Copies, since fetches of the
        old config may still finish and update its own."""
        if old.config.api.base_url != self.config.api.base_url:
            return
        self.client.transport.outage = old.client.transport.outage
        same_cap = {
            ws_id
            for ws_id, ws in self.workspaces.items()
            if ws.page_stats
            and ws_id in old.workspaces
            and old.workspaces[ws_id].page_stats_max_pages == ws.page_stats_max_pages
        }
        with old.lock:
            self.states = {k: replace(v) for k, v in old.states.items() if k[0] in self.workspaces}
            for ws_id, owner in self.discoveries.items():
                if ws_id in old.discoveries:
                    owner.adopt(old.discoveries[ws_id])
            self.backoffs = {k: replace(v) for k, v in old.backoffs.items() if k in self.workspaces}
            self.dropped = {k: set(v) for k, v in old.dropped.items() if k in self.workspaces}
            kept = self.workspaces
            self.overdue = {k: v for k, v in old.overdue.items() if _workspace_of(k) in kept}
            self.pages = {k: replace(v) for k, v in old.pages.items() if k[0] in same_cap}
            self.truncated = {k: set(v) for k, v in old.truncated.items() if k in same_cap}
            self.rendered = old.rendered.copy(self.workspaces)

    def snapshot(self, workspace_id: str) -> Snapshot | None:
        """The workspace's last good listing as its discovery published it; None without
        discovery or before its first listing. Immutable: read it freely."""
        owner = self.discoveries.get(workspace_id)
        return owner.snapshot if owner is not None else None

    def close(self, *, abort: bool = False) -> None:
        """Stop fetching for this config; ``abort`` (the exporter stopping, not a reload)
        also cuts the upstream requests in flight."""
        self.closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.walkers.shutdown(wait=False, cancel_futures=True)
        self.client.close(abort=abort)


def _workspace_of(key: object) -> object:
    """The workspace of a fetch key: ``("job", ws, job)`` or ``("pages", ws, job)``."""
    return key[1] if isinstance(key, tuple) and len(key) > 1 else None
