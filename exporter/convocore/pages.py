"""Statistics over a job's scraped pages, from the page summaries the API lists.

A page summary (``GET .../crawler/jobs/{jobId}/pages``) carries ``id, url, urlHash, title,
description, scrapedAt, imageUrl, userId, mdCharCount, htmlCharCount, failed``; any of them may
be missing, null or of the wrong type. Such a field is left out of the statistics it feeds;
the page itself is still counted as listed. Only the totals are kept, never the summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import as_number, as_timestamp

# Upper bounds of the markdown-characters-per-page buckets (a +Inf bucket follows).
MARKDOWN_BUCKETS: tuple[float, ...] = (0.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
# As prometheus_client writes ``le`` (so queries match either exporter's histograms).
BUCKET_LABELS: tuple[str, ...] = (*(repr(b) for b in MARKDOWN_BUCKETS), "+Inf")

EMPTY_RULE = (
    "not failed, and mdCharCount is 0, or mdCharCount is missing and the title is missing or blank"
)


def _count(value: Any) -> float | None:
    """A character count: a finite JSON number, not negative."""
    number = as_number(value)
    return number if number is not None and number >= 0 else None


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def is_empty(page: dict[str, Any]) -> bool:
    """The empty-page rule: see :data:`EMPTY_RULE`."""
    if page.get("failed") is True:
        return False
    markdown = _count(page.get("mdCharCount"))
    if markdown is not None:
        return markdown == 0
    return _blank(page.get("title"))


def page_key(page: Any) -> str | None:
    """What identifies a page summary in the list: its ``id``, else ``urlHash``, else ``url``."""
    if not isinstance(page, dict):
        return None
    for name in ("id", "urlHash", "url"):
        value = page.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _zeros() -> list[int]:
    return [0] * len(BUCKET_LABELS)


@dataclass(slots=True)
class PageStats:
    """Totals over the page summaries added so far."""

    listed: int = 0
    empty: int = 0
    markdown_chars: float = 0.0
    html_chars: float = 0.0
    markdown_pages: int = 0
    """Pages with a valid ``mdCharCount``: the count of the histogram."""
    buckets: list[int] = field(default_factory=_zeros)
    """Pages per markdown-size bucket, not cumulative; the last is above the largest bound."""
    last_scraped: float | None = None

    def add(self, page: Any) -> None:
        """Count one page summary; a summary that is not an object is only listed."""
        self.listed += 1
        if not isinstance(page, dict):
            return
        if is_empty(page):
            self.empty += 1
        markdown = _count(page.get("mdCharCount"))
        if markdown is not None:
            self.markdown_chars += markdown
            self.markdown_pages += 1
            self.buckets[_bucket(markdown)] += 1
        html = _count(page.get("htmlCharCount"))
        if html is not None:
            self.html_chars += html
        scraped = as_timestamp(page.get("scrapedAt"))
        if scraped is not None and (self.last_scraped is None or scraped > self.last_scraped):
            self.last_scraped = scraped

    def copy(self) -> PageStats:
        return PageStats(
            self.listed,
            self.empty,
            self.markdown_chars,
            self.html_chars,
            self.markdown_pages,
            list(self.buckets),
            self.last_scraped,
        )

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, pages at or below it)`` per bucket, as a histogram's ``_bucket`` series."""
        result: list[tuple[str, int]] = []
        running = 0
        for label, count in zip(BUCKET_LABELS, self.buckets, strict=True):
            running += count
            result.append((label, running))
        return result


def _bucket(value: float) -> int:
    for index, bound in enumerate(MARKDOWN_BUCKETS):
        if value <= bound:
            return index
    return len(MARKDOWN_BUCKETS)
