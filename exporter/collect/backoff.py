"""A workspace's rate-limit backoff after a 429: every request to the workspace (get-job,
pages reads, listings) notes its result here, and none is asked while the backoff lasts."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..convocore.transport import ApiResult

if TYPE_CHECKING:
    from .state import Runtime

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


@dataclass(slots=True)
class Backoff:
    """A workspace's rate-limit backoff after a 429."""

    until: float = 0.0  # monotonic
    wall_until: float = 0.0
    strikes: int = 0


def in_backoff(rt: Runtime, workspace_id: str, now: float) -> bool:
    backoff = rt.backoffs.get(workspace_id)
    return backoff is not None and backoff.until > now


def note_result(rt: Runtime, workspace_id: str, result: ApiResult) -> None:
    if result.ok:
        known = rt.backoffs.get(workspace_id)
        if known is not None and known.strikes == 0:
            return  # nothing to end (read without the lock: a 429 meanwhile keeps its strike)
    with rt.lock:
        backoff = rt.backoffs.setdefault(workspace_id, Backoff())
        if result.reason == "rate_limited":
            if result.retry_after is not None:
                delay = result.retry_after
            else:
                delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**backoff.strikes)
                delay *= 0.5 + random.random()  # noqa: S311 - jitter, not crypto
            backoff.strikes += 1
            backoff.until = time.monotonic() + delay
            backoff.wall_until = time.time() + delay
        elif result.ok and backoff.until <= time.monotonic():
            # A success that raced a 429 does not end the backoff that 429 started.
            backoff.strikes = 0
