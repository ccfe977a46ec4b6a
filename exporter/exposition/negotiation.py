"""What a client accepts: ``Accept`` and ``Accept-Encoding`` with their q-values (RFC 9110
section 12), parsed once and the same way for both headers."""

from __future__ import annotations

OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text"
_TEXT_MEDIA_RANGES = frozenset({"text/plain", "text/*", "*/*"})

Entry = tuple[str, float]
"""A media type (or content coding), lower-cased, and its quality."""


def entries(header: str | None) -> list[Entry]:
    """The header's entries in the order written; a q-value that does not parse or lies
    outside 0..1 counts as 0 (not acceptable)."""
    parsed: list[Entry] = []
    for part in (header or "").split(","):
        value, *params = (piece.strip() for piece in part.split(";"))
        if not value:
            continue
        quality = 1.0
        for param in params:
            name, _, text = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(text.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        parsed.append((value.lower(), quality))
    return parsed


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip: ``gzip;q=0`` refuses it; without a
    ``gzip`` entry, ``*`` decides."""
    explicit: float | None = None
    wildcard: float | None = None
    for coding, quality in entries(header):
        if coding in ("gzip", "x-gzip"):
            explicit = quality if explicit is None else max(explicit, quality)
        elif coding == "*":
            wildcard = quality
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


def wants_openmetrics(accept: str | None) -> bool:
    """Whether the ``Accept`` header prefers OpenMetrics to the text format.

    The acceptable entries are taken by quality, highest first (ties in the order written,
    as client_golang negotiates): the first that is OpenMetrics (any version; this exporter
    writes 1.0.0) or that the text format satisfies (``text/plain``, ``text/*``, ``*/*``)
    decides. Without either, the text format.
    """
    ranked = sorted((e for e in entries(accept) if e[1] > 0), key=lambda e: -e[1])
    for media, _ in ranked:
        if media == OPENMETRICS_MEDIA_TYPE:
            return True
        if media in _TEXT_MEDIA_RANGES:
            return False
    return False
