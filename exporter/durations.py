"""Durations as Prometheus writes them (``30s``, ``1h30m``, ``7d``), for the config files and
the flags alike."""

from __future__ import annotations

import re

# [0-9], not \d: int() would also take other scripts' digits. "ms" before "m".
_DURATION_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")
# Milliseconds per unit, largest first: the order a duration writes its units in.
DURATION_UNITS: dict[str, int] = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
_DURATION_RANK = {unit: rank for rank, unit in enumerate(DURATION_UNITS)}
# Go's time.Duration (int64 nanoseconds, about 292 years), as Prometheus refuses beyond it.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000
DURATION_RULE = "whole numbers with units y, w, d, h, m, s, ms, largest first, each once"


class DurationError(ValueError):
    """A text that is not a duration; ``str()`` says why."""


def parse_duration(text: str) -> float:
    """Seconds in a duration as Prometheus reads it (prometheus/common ``model.ParseDuration``).

    Whole numbers with units y w d h m s ms, largest first and each at most once: ``30s``,
    ``1h30m``, ``7d``, ``250ms``; ``0`` alone is zero. ``1s1m``, ``5m5m``, ``1.5h``, ``-1s``
    and the empty text are refused, as is anything beyond Go's ``time.Duration`` (292 years).
    """
    if text == "0":
        return 0.0
    if not text:
        raise DurationError("not a duration: empty")
    pos = 0
    last = -1
    total = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise DurationError(f"not a duration: {text!r} ({DURATION_RULE})")
        digits, unit = match.groups()
        rank = _DURATION_RANK[unit]
        if rank <= last:
            raise DurationError(f"not a duration: {text!r} ({DURATION_RULE})")
        last = rank
        if len(digits.lstrip("0")) > 19:  # more than int64 holds; int() of it stays cheap
            raise DurationError(f"duration out of range: {text!r}")
        total += int(digits) * DURATION_UNITS[unit]
        pos = match.end()
    if total > MAX_DURATION_MS:
        raise DurationError(f"duration out of range: {text!r}")
    return total / 1000
