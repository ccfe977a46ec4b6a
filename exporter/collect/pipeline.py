"""One scrape's fetches as a pipeline, so that a slow, hung or failing job delays only itself.

- Each job's pages read (``page_stats: true``) starts as soon as that job's own outcome is
  known: at once for a job served from memory or from its workspace's listing, else when its
  get-job answers. Reads still running at the deadline go on; the next scrape shares them and
  serves what they read.
- A job whose last fetch timed out in flight (the API did not answer it within a deadline),
  or whose fetch is still running from a scrape that already gave up on it, is *overdue*: its
  fetch is started (or shared) as usual, but the scrape does not wait for it. The scrape ends
  as soon as every other job is settled; if the overdue job answered by then it counts,
  otherwise it is down at once with the reason of its timeout (``deadline`` or ``timeout``).
  A hung job thus costs one deadline, not every scrape. An answer, even a late one, ends it.
  The same holds for pages reads and for discovery listings.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time

from ..convocore.trace import ProbeTrace
from ..convocore.transport import ApiResult
from .discovery import serve
from .fetch import begin_job, log_transitions, overdue, settle_job
from .pagereads import PageView, Reads
from .state import Fetch, Key, Outcome, Runtime, Target


def begin(rt: Runtime, targets: list[Target], deadline: float) -> dict[Key, Outcome | Fetch]:
    """Start the explicit targets' get-job requests (or take them from memory), before the
    scrape waits for its discovery listings: a listing slower than the deadline then costs the
    configured jobs nothing. Hand the result to :func:`run` as ``begun``."""
    now = time.monotonic()
    return {t.key: begin_job(rt, t, deadline, now=now) for t in targets if t.explicit}


def run(
    rt: Runtime,
    targets: list[Target],
    deadline: float,
    trace: ProbeTrace | None = None,
    begun: dict[Key, Outcome | Fetch] | None = None,
) -> tuple[dict[Key, Outcome], dict[Key, PageView]]:
    """Each target's outcome and pages, within ``deadline``; the job transitions logged.
    ``begun`` holds what :func:`begin` already started."""
    answered: queue.SimpleQueue[tuple[str, Key]] = queue.SimpleQueue()
    waiting: set[tuple[str, Key]] = set()  # what the scrape waits for, one answer at a time
    counted = Countdown()  # and what it waits for all together (nothing follows them)
    reads = Reads(rt, deadline, trace)
    now = time.monotonic()

    def follow(kind: str, key: Key, fetch: Fetch, then: bool = True) -> None:
        """Wait for ``fetch`` unless it is overdue; ``then``: the scrape acts on its answer
        as soon as it comes (a job whose pages read follows it), else only counts it."""
        tag = (kind, key)
        reason = overdue(rt, (kind, *key), fetch, now)
        if reason is not None:
            if trace is not None:
                trace.note(f"not waited for: a fetch of this {_WHAT[kind]} is overdue ({reason})")
            if then:
                fetch.future.add_done_callback(lambda _: answered.put(tag))
        elif then:
            waiting.add(tag)
            fetch.future.add_done_callback(lambda _: answered.put(tag))
        else:
            counted.expect(fetch.future)

    def settled(target: Target, outcome: Outcome) -> None:
        outcomes[target.key] = outcome
        fetch = reads.start(target, outcome)
        if fetch is not None:
            follow("pages", target.key, fetch)

    outcomes: dict[Key, Outcome] = {}
    jobs: dict[Key, tuple[Target, Fetch]] = {}
    served = serve.outcomes(rt, targets, trace)
    if any(ws.page_stats for ws in rt.config.workspaces if ws.discover):
        by_key = {t.key: t for t in targets}
        for key, outcome in served.items():
            settled(by_key[key], outcome)
    else:  # no pages read follows a listed job: their outcomes as they are
        outcomes.update(served)
    for target in targets:
        if not target.explicit:
            continue
        started = (begun or {}).get(target.key) or begin_job(rt, target, deadline, trace)
        if isinstance(started, Outcome):
            settled(target, started)
        else:
            jobs[target.key] = (target, started)
            follow("job", target.key, started, then=target.workspace.page_stats)
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            tag = answered.get(timeout=remaining)
        except queue.Empty:
            break
        waiting.discard(tag)
        kind, key = tag
        if kind == "job" and key not in outcomes:
            target, fetch = jobs[key]
            settled(target, settle_job(rt, key, fetch))
    counted.wait(deadline - time.monotonic())
    for key, (_, fetch) in jobs.items():
        if key not in outcomes:
            with rt.lock:
                pending = rt.overdue.get(("job", *key), "deadline")
            outcomes[key] = settle_job(rt, key, fetch, pending)
    log_transitions(rt, outcomes)
    return outcomes, reads.views()


_WHAT = {"job": "job", "pages": "job's pages list"}


class Countdown:
    """Fetches waited for all together: the waiting thread wakes once, when the last one
    answers (or at the deadline), not once per answer, which on 32 request threads would
    cost it a thread switch and a turn of the GIL for every request."""

    __slots__ = ("_all_in", "_left", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left = 0
        self._all_in = threading.Event()
        self._all_in.set()

    def expect(self, future: concurrent.futures.Future[ApiResult]) -> None:
        with self._lock:
            self._left += 1
            if self._left == 1:  # Event.clear takes the event's own lock: only when it was set
                self._all_in.clear()
        future.add_done_callback(self._answered)

    def _answered(self, _: object) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._all_in.set()

    def wait(self, timeout: float) -> None:
        if timeout > 0:
            self._all_in.wait(timeout)
