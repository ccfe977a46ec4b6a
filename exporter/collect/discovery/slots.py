"""Listing's share of the upstream requests: at most half of ``api.max_concurrency`` in
flight for every discovering workspace together, the other half left to the scrapes' get-job
and pages requests."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

from ...convocore.transport import ApiResult

T = TypeVar("T")


def stopped() -> ApiResult:
    return ApiResult(reason="deadline", detail="the config was reloaded or the exporter stopped")


class ListingSlots:
    """Runs discovery's requests (list answers, a refresh's get-job) on the request executor,
    at most ``width`` at once over all workspaces: a walk waits for a slot before it sends."""

    def __init__(self, executor: concurrent.futures.Executor, width: int) -> None:
        self.width = width
        self._executor = executor
        self._slots = threading.BoundedSemaphore(width)

    def submit(self, call: Callable[[], T]) -> concurrent.futures.Future[T] | None:
        """Start ``call`` once a slot is free (waiting for it); None when the executor was shut
        down (a reload or stop). The slot is freed when the call ends or is cancelled."""
        self._slots.acquire()
        try:
            future = self._executor.submit(call)
        except RuntimeError:
            self._slots.release()
            return None
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def run(self, call: Callable[[], ApiResult]) -> ApiResult:
        """``call``'s result, within a slot."""
        future = self.submit(call)
        if future is None:
            return stopped()
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            return stopped()
