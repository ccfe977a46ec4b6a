"""A Convocore crawler job, parsed leniently from the API's JSON.

Every field may be missing, null or of the wrong type in a real answer; such a field becomes
``None`` here and its metric is omitted for that job, never exported as 0. Only what the
metrics need is kept: the URL arrays are reduced to their lengths at parse time, so a job of
thousands of URLs costs a few hundred bytes of memory once parsed.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "failed", "cancelled")
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})

# Label values taken from the API are capped so a lying upstream cannot blow up a series.
MAX_LABEL_CHARS = 1024

# The job's failure text (``resultError``) becomes a label value: cleaned, then cut to this
# many characters, the last of them an ellipsis when it was cut.
MAX_FAILURE_CHARS = 300
ELLIPSIS = "\u2026"
# What replaces a configured secret found in a text taken from the API.
REDACTED = "<redacted>"
# Agents named by one job, at most: a lying upstream cannot blow up the series.
MAX_AGENTS = 100
# Of a longer text only this much is cleaned (after the secrets are replaced in all of it).
_SCAN_CHARS = 64 * 1024
# Control characters (C0, DEL, C1) and whitespace, in runs; a lone surrogate (JSON allows
# "\ud800") cannot be written as UTF-8.
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")

# Values many jobs share (a status, a refresh rate, an agent's id, a job's agents) are kept as
# one object, not one per job: short ones, and a bounded number of them.
_COMMON: dict[object, object] = {status: status for status in STATUSES}
_COMMON_MAX = 4096
_COMMON_CHARS = 64
_NUMBERS: dict[int, float] = {}
_COMMON_NUMBER = 1_000_000

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
    failure: str | None = None
    """The failure text (``resultError``) as exported: see :func:`failure_text`."""
    agents: tuple[str, ...] = ()
    """The agents whose knowledge bases the job feeds (``toAgentIds``, else ``toAgentId``)."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True, slots=True)
class JobTally:
    """What a workspace's totals need of one job, and no more: kept for every listed job,
    those past ``include_finished_for`` included, in place of a whole :class:`Job`."""

    status: str
    estimated_credits: float | None = None
    scraped_pages: float | None = None
    failed_pages: float | None = None
    agents: tuple[str, ...] = ()
    updated_timestamp: float | None = None

    @classmethod
    def of(cls, job: Job) -> JobTally:
        # Interned: 100,000 tallies share a handful of status and agent strings.
        return cls(
            sys.intern(job.status),
            job.estimated_credits,
            job.scraped_pages,
            job.failed_pages,
            tuple(sys.intern(agent) for agent in job.agents),
            job.updated_timestamp,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def as_number(value: Any) -> float | None:
    """A finite JSON number; booleans and numeric strings are wrong types."""
    kind = type(value)
    if kind is float:  # what JSON gives, first: checked in the fewest steps
        return value if -math.inf < value < math.inf else None
    if kind is int and -_COMMON_NUMBER < value < _COMMON_NUMBER:
        # Counts and limits many jobs share (0, 250): one float each, as for texts.
        known = _NUMBERS.get(value)
        if known is None:
            known = float(value)
            if len(_NUMBERS) < _COMMON_MAX:
                _NUMBERS[value] = known
        return known
    if kind is bool or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond the range of a float
        return None
    return number if math.isfinite(number) else None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_Shared = TypeVar("_Shared", str, tuple[str, ...])


def common(value: _Shared) -> _Shared:
    """``value``, or the equal object kept for values many jobs share (a short text, or a
    few agents), so that 100,000 jobs do not each hold their own copy."""
    if type(value) is tuple:
        if len(value) > 4 or any(len(item) > _COMMON_CHARS for item in value):
            return value
    elif len(value) > _COMMON_CHARS:
        return value
    known = _COMMON.get(value)
    if known is not None:
        return cast("_Shared", known)
    if len(_COMMON) < _COMMON_MAX:
        _COMMON[value] = value
    return value


def as_label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:MAX_LABEL_CHARS]


def _common_label(value: Any) -> str | None:
    label = as_label(value)
    return None if label is None else common(label)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by :data:`REDACTED` (longest first, so a
    secret holding another is replaced whole)."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clean_text(text: str, limit: int) -> str:
    """``text`` safe for a label value and one line of a page: each run of control characters
    and whitespace becomes one space (none at either end), a lone surrogate becomes U+FFFD, and
    a text longer than ``limit`` characters is cut to ``limit`` ending in an ellipsis."""
    cut = len(text) > _SCAN_CHARS
    if cut:
        text = text[:_SCAN_CHARS]
    text = _BLANKS.sub(" ", text).strip()
    text = _SURROGATES.sub("\ufffd", text)
    if cut or len(text) > limit:
        text = text[: limit - 1].rstrip() + ELLIPSIS
    return text


def failure_text(value: Any, secrets: Sequence[str] = ()) -> str | None:
    """The job's failure text as exported: None unless ``value`` is a string with something
    besides blanks in it; else the configured ``secrets`` replaced (in the whole text, before
    it is cut), cleaned and cut to :data:`MAX_FAILURE_CHARS` by :func:`clean_text`."""
    if not isinstance(value, str):
        return None
    text = clean_text(redact(value, secrets), MAX_FAILURE_CHARS)
    return text or None


def agent_ids(many: Any, one: Any) -> tuple[str, ...]:
    """The agents a job feeds: the strings of ``toAgentIds`` (``many``), or ``toAgentId``
    (``one``) when that list is missing or names none; each cleaned as a label value, blanks
    left out, duplicates collapsed (first seen first), at most :data:`MAX_AGENTS`."""
    named: dict[str, None] = {}
    for candidate in many if isinstance(many, list) else ():
        if isinstance(candidate, str) and (agent := clean_text(candidate, MAX_LABEL_CHARS)):
            named[agent] = None
            if len(named) == MAX_AGENTS:
                break
    if not named and isinstance(one, str) and (agent := clean_text(one, MAX_LABEL_CHARS)):
        named[common(agent)] = None
    return common(tuple(named))


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
            return common(normalized)
    if cancelled:
        return "cancelled"
    if failed:
        return "failed"
    if done:
        return "completed"
    if progressed:
        return "processing"
    return "queued"


def parse_job(data: dict[str, Any], secrets: Sequence[str] = ()) -> Job:
    """Build a :class:`Job` from the ``data`` object of a get-job or list answer.

    ``secrets`` (the configured workspace secrets, longest first) are replaced by
    :data:`REDACTED` in the text taken from the answer.
    """
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
        refresh_rate=_common_label(data.get("refreshRate")),
        processing_mode=_common_label(data.get("processingMode")),
        deep=as_bool(data.get("deep")),
        use_proxy=as_bool(data.get("useProxy")),
        failure=failure_text(data.get("resultError"), secrets),
        agents=agent_ids(data.get("toAgentIds"), data.get("toAgentId")),
    )
