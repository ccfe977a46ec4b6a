"""A Convocore crawler job, parsed leniently from the API's JSON.

Every field may be missing, null or of the wrong type in a real answer; such a field becomes
``None`` here and its metric is omitted for that job, never exported as 0. Only what the
metrics need is kept: the URL arrays are reduced to their lengths at parse time, so a job of
thousands of URLs costs a few hundred bytes of memory once parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "failed", "cancelled")
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})

# Label values taken from the API are capped so a lying upstream cannot blow up a series.
MAX_LABEL_CHARS = 1024

# Values above this are Unix milliseconds (1e11 s is the year 5138).
_MILLIS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True)
class Job:
    """The metric-relevant fields of one crawler job; ``None`` means missing or invalid."""

    status: str
    done: bool | None = None
    failed: bool | None = None
    cancelled: bool | None = None
    scraped_pages: float | None = None
    failed_pages: float | None = None
    current_page_index: float | None = None
    page_limit: float | None = None
    max_pages: float | None = None
    credits_per_page: float | None = None
    estimated_credits: float | None = None
    seed_urls: int | None = None
    scraped_urls: int | None = None
    pending_candidate_urls: int | None = None
    processed_crawl_urls: int | None = None
    failed_crawl_urls: int | None = None
    created_timestamp: float | None = None
    updated_timestamp: float | None = None
    submitted_timestamp: float | None = None
    webhook_finalized_timestamp: float | None = None
    webhook_configured: bool | None = None
    primary_url: str | None = None
    refresh_rate: str | None = None
    processing_mode: str | None = None
    deep: bool | None = None
    use_proxy: bool | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def as_number(value: Any) -> float | None:
    """A finite JSON number; booleans and numeric strings are wrong types."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond the range of a float
        return None
    return number if math.isfinite(number) else None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:MAX_LABEL_CHARS]


def as_length(value: Any) -> int | None:
    return len(value) if isinstance(value, list) else None


def as_timestamp(value: Any) -> float | None:
    """Unix seconds from an ISO 8601 string (no zone means UTC) or a JSON number.

    A number above 1e11 is taken as milliseconds.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            return moment.timestamp()
        except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range by the zone
            return None
    number = as_number(value)
    if number is None or number < 0:
        return None
    return number / 1000.0 if number > _MILLIS_THRESHOLD else number


def _webhook_configured(data: dict[str, Any]) -> bool | None:
    if "webhook" not in data:
        return None
    webhook = data["webhook"]
    if webhook is None:
        return False
    if not isinstance(webhook, dict):
        return None
    url = webhook.get("url")
    return isinstance(url, str) and bool(url.strip())


def derive_status(
    reported: Any,
    *,
    done: bool | None,
    failed: bool | None,
    cancelled: bool | None,
    progressed: bool,
) -> str:
    """The job's state: the reported ``status`` when known, else derived from the flags."""
    if isinstance(reported, str):
        normalized = reported.strip().lower()
        if normalized in STATUSES:
            return normalized
    if cancelled:
        return "cancelled"
    if failed:
        return "failed"
    if done:
        return "completed"
    if progressed:
        return "processing"
    return "queued"


def parse_job(data: dict[str, Any]) -> Job:
    """Build a :class:`Job` from the ``data`` object of a get-job or list answer."""
    done = as_bool(data.get("done"))
    failed = as_bool(data.get("failed"))
    cancelled = as_bool(data.get("isCancelled"))
    scraped = as_number(data.get("scrapedPagesNum"))
    failed_pages = as_number(data.get("failedPagesNum"))
    current = as_number(data.get("currentPageIndex"))
    active = data.get("activeScrapeUrl")
    progressed = any(v is not None and v > 0 for v in (current, scraped, failed_pages)) or (
        isinstance(active, str) and bool(active.strip())
    )
    status = derive_status(
        data.get("status"), done=done, failed=failed, cancelled=cancelled, progressed=progressed
    )
    options = data.get("crawlOptions")
    max_pages = as_number(options.get("maxPages")) if isinstance(options, dict) else None
    return Job(
        status=status,
        done=done,
        failed=failed,
        cancelled=cancelled,
        scraped_pages=scraped,
        failed_pages=failed_pages,
        current_page_index=current,
        page_limit=as_number(data.get("pageLimit")),
        max_pages=max_pages,
        credits_per_page=as_number(data.get("creditsPerPage")),
        estimated_credits=as_number(data.get("estimatedCredits")),
        seed_urls=as_length(data.get("urls")),
        scraped_urls=as_length(data.get("scrapedUrls")),
        pending_candidate_urls=as_length(data.get("pendingCandidateUrls")),
        processed_crawl_urls=as_length(data.get("processedCrawlUrls")),
        failed_crawl_urls=as_length(data.get("failedCrawlUrls")),
        created_timestamp=as_timestamp(data.get("createdAt")),
        updated_timestamp=as_timestamp(data.get("ts")),
        submitted_timestamp=as_timestamp(data.get("crawlerSubmittedAt")),
        webhook_finalized_timestamp=as_timestamp(data.get("webhookFinalizedAt")),
        webhook_configured=_webhook_configured(data),
        primary_url=as_label(data.get("primaryUrl")),
        refresh_rate=as_label(data.get("refreshRate")),
        processing_mode=as_label(data.get("processingMode")),
        deep=as_bool(data.get("deep")),
        use_proxy=as_bool(data.get("useProxy")),
    )
