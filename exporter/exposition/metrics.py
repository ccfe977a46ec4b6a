"""The single definition of every metric the exporter serves.

The collector builds its output from these definitions and ``docs/metrics.md`` (and the
metrics section of the README) is generated from them by ``python -m exporter.docs``; a test
keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..convocore import outage
from ..convocore.model import ELLIPSIS, MAX_AGENTS, MAX_FAILURE_CHARS, REDACTED, Job
from ..convocore.pages import EMPTY_RULE, PageStats

PREFIX = "convocore_crawler_"
JOB_LABELS: tuple[str, ...] = ("workspace_id", "job_id")

MetricType = Literal["gauge", "counter", "histogram", "gaugehistogram"]


@dataclass(frozen=True)
class MetricDef:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    source: str
    """Where the value comes from, for the docs."""


@dataclass(frozen=True)
class JobValueDef(MetricDef):
    """A per-job gauge read from one field of a :class:`Job`; omitted when the field is None."""

    read: Callable[[Job], float | bool | int | None] = lambda job: None


_Def = TypeVar("_Def", bound=MetricDef)


def _per_job_gauge(
    cls: type[_Def], name: str, help_text: str, source: str, read: Callable[[Any], object]
) -> _Def:
    """A gauge per job (``workspace_id``, ``job_id``) whose value ``read`` takes from what
    the exporter keeps of the job."""
    return cls(
        name=PREFIX + name,
        type="gauge",
        help=help_text,
        labels=JOB_LABELS,
        source=source,
        read=read,  # type: ignore[call-arg]
    )


def _job_value(
    name: str, help_text: str, source: str, read: Callable[[Job], object]
) -> JobValueDef:
    return _per_job_gauge(JobValueDef, name, help_text, source, read)


INFO_LABELS: tuple[str, ...] = (
    "name",
    "primary_url",
    "refresh_rate",
    "processing_mode",
    "deep",
    "use_proxy",
)

JOB_INFO = MetricDef(
    PREFIX + "job_info",
    "gauge",
    "Metadata of a crawler job; always 1. Empty label where unknown.",
    (*JOB_LABELS, *INFO_LABELS),
    "`name` from the config; `primaryUrl`, `refreshRate`, `processingMode`, `deep`, `useProxy`",
)
JOB_STATUS = MetricDef(
    PREFIX + "job_status",
    "gauge",
    "1 for the job's current state, 0 for the others.",
    (*JOB_LABELS, "status"),
    "`status`, or derived from `isCancelled` > `failed` > `done` > progress > queued "
    "when absent or unknown",
)
JOB_FAILURE_INFO = MetricDef(
    PREFIX + "job_failure_info",
    "gauge",
    "The job's failure text, as Convocore gives it; always 1, present only while the job has "
    f"one. Cleaned to one line and cut to {MAX_FAILURE_CHARS} characters.",
    (*JOB_LABELS, "result_error"),
    "`resultError` when a string with more than blanks (`message` is not read): control "
    "characters and runs of whitespace become one space, each configured workspace secret "
    f"becomes `{REDACTED}`, and a longer text is cut to {MAX_FAILURE_CHARS} characters, the "
    f"last an ellipsis (`{ELLIPSIS}`)",
)
JOB_AGENT_INFO = MetricDef(
    PREFIX + "job_agent_info",
    "gauge",
    "An agent whose knowledge base the job feeds; always 1, one series per agent.",
    (*JOB_LABELS, "agent_id"),
    "each string of `toAgentIds`, else `toAgentId` when that list is missing or names none; "
    f"duplicates collapsed, at most {MAX_AGENTS} per job",
)

JOB_VALUES: tuple[JobValueDef, ...] = (
    _job_value(
        "job_done",
        "1 when the job reports done, else 0. The raw flag: a failed job reports done too.",
        "`done`",
        lambda j: j.done,
    ),
    _job_value(
        "job_failed",
        "1 when the job reports failed, else 0. A failed job also reports done (job_done 1).",
        "`failed`",
        lambda j: j.failed,
    ),
    _job_value(
        "job_cancelled",
        "1 when the job was cancelled, else 0.",
        "`isCancelled`",
        lambda j: j.cancelled,
    ),
    _job_value(
        "job_scraped_pages",
        "Pages scraped so far.",
        "`scrapedPagesNum`",
        lambda j: j.scraped_pages,
    ),
    _job_value(
        "job_failed_pages",
        "Pages that failed so far.",
        "`failedPagesNum`",
        lambda j: j.failed_pages,
    ),
    _job_value(
        "job_current_page_index",
        "Progress index of the page being worked on.",
        "`currentPageIndex`",
        lambda j: j.current_page_index,
    ),
    _job_value(
        "job_page_limit", "Effective page cap of the job.", "`pageLimit`", lambda j: j.page_limit
    ),
    _job_value(
        "job_max_pages",
        "Requested page cap of the job.",
        "`crawlOptions.maxPages`",
        lambda j: j.max_pages,
    ),
    _job_value(
        "job_credits_per_page",
        "Credits billed per page (1 regular, 10 deep).",
        "`creditsPerPage`",
        lambda j: j.credits_per_page,
    ),
    _job_value(
        "job_estimated_credits",
        "Credits the job is estimated to cost (1000 credits = 1 USD).",
        "`estimatedCredits`",
        lambda j: j.estimated_credits,
    ),
    _job_value("job_seed_urls", "Number of seed URLs.", "length of `urls`", lambda j: j.seed_urls),
    _job_value(
        "job_scraped_urls",
        "Number of scraped URLs tracked by the job.",
        "length of `scrapedUrls`",
        lambda j: j.scraped_urls,
    ),
    _job_value(
        "job_pending_candidate_urls",
        "Number of candidate URLs waiting to be crawled.",
        "length of `pendingCandidateUrls`",
        lambda j: j.pending_candidate_urls,
    ),
    _job_value(
        "job_processed_crawl_urls",
        "Number of URLs the crawler has processed.",
        "length of `processedCrawlUrls`",
        lambda j: j.processed_crawl_urls,
    ),
    _job_value(
        "job_failed_crawl_urls",
        "Number of URLs the crawler failed on.",
        "length of `failedCrawlUrls`",
        lambda j: j.failed_crawl_urls,
    ),
    _job_value(
        "job_created_timestamp_seconds",
        "When the job was created, in Unix seconds.",
        "`createdAt`",
        lambda j: j.created_timestamp,
    ),
    _job_value(
        "job_updated_timestamp_seconds",
        "When the job was last updated, in Unix seconds.",
        "`ts` (milliseconds when above 1e11)",
        lambda j: j.updated_timestamp,
    ),
    _job_value(
        "job_submitted_timestamp_seconds",
        "When the job was submitted to the crawler, in Unix seconds.",
        "`crawlerSubmittedAt`",
        lambda j: j.submitted_timestamp,
    ),
    _job_value(
        "job_webhook_finalized_timestamp_seconds",
        "When the job's webhook delivery was finalized, in Unix seconds.",
        "`webhookFinalizedAt`",
        lambda j: j.webhook_finalized_timestamp,
    ),
    _job_value(
        "job_webhook_configured",
        "1 when the job has a webhook URL, else 0.",
        "`webhook.url` non-empty; 0 when `webhook` is null or has no url",
        lambda j: j.webhook_configured,
    ),
)


@dataclass(frozen=True)
class PageValueDef(MetricDef):
    """A per-job gauge read from the job's :class:`PageStats`; omitted when None."""

    read: Callable[[PageStats], float | None] = lambda stats: None


_PAGES_SOURCE = "the job's pages list (`page_stats: true`)"


def _page_value(
    name: str, help_text: str, source: str, read: Callable[[PageStats], object]
) -> PageValueDef:
    return _per_job_gauge(PageValueDef, name, help_text, source, read)


PAGE_VALUES: tuple[PageValueDef, ...] = (
    _page_value(
        "job_pages_listed",
        "Scraped pages the API lists for the job (read up to page_stats_max_pages).",
        f"number of entries of {_PAGES_SOURCE}",
        lambda s: s.listed,
    ),
    _page_value(
        "job_empty_pages",
        f"Listed pages that are empty: {EMPTY_RULE}.",
        f"`failed`, `mdCharCount`, `title` of {_PAGES_SOURCE}",
        lambda s: s.empty,
    ),
    _page_value(
        "job_markdown_chars",
        "Markdown characters of the listed pages, summed (pages without a count add 0).",
        f"`mdCharCount` of {_PAGES_SOURCE}",
        lambda s: s.markdown_chars,
    ),
    _page_value(
        "job_html_chars",
        "HTML characters of the listed pages, summed (pages without a count add 0).",
        f"`htmlCharCount` of {_PAGES_SOURCE}",
        lambda s: s.html_chars,
    ),
    _page_value(
        "job_last_page_scraped_timestamp_seconds",
        "When the job's most recently scraped listed page was scraped, in Unix seconds.",
        f"largest `scrapedAt` of {_PAGES_SOURCE} (milliseconds when above 1e11)",
        lambda s: s.last_scraped,
    ),
)
PAGE_MARKDOWN_CHARS = MetricDef(
    PREFIX + "job_page_markdown_chars",
    "gaugehistogram",
    "Listed pages by their markdown characters (pages with a valid mdCharCount).",
    JOB_LABELS,
    f"`mdCharCount` of {_PAGES_SOURCE}; buckets 0, 100, 1000, 10000, 100000",
)
PAGE_STATS_ERROR_INFO = MetricDef(
    PREFIX + "page_stats_error_info",
    "gauge",
    "Why the job's pages list could not be read; present only while its last read failed "
    "(the job's up is not affected).",
    (*JOB_LABELS, "reason"),
    "the exporter (`page_stats: true`)",
)
PAGE_STATS_TRUNCATED = MetricDef(
    PREFIX + "page_stats_truncated_jobs_total",
    "counter",
    "Distinct jobs whose pages were counted only up to the workspace's page_stats_max_pages.",
    ("workspace_id",),
    "the exporter (`page_stats: true`)",
)

# A workspace's totals (see collect/totals.py): over every job its listing holds, those past
# include_finished_for included, and its configured jobs, each job once.
_TOTALS_OVER = (
    "over every job the workspace's listing holds (those past include_finished_for included) "
    "and its configured jobs, each once; with --total-shards, over this replica's jobs"
)
_TOTALS_SOURCE = "the exporter: the workspace's job listing (`discover: true`) and configured jobs"
WORKSPACE_JOBS = MetricDef(
    PREFIX + "workspace_jobs",
    "gauge",
    f"Jobs of the workspace in each status (0 included), {_TOTALS_OVER}.",
    ("workspace_id", "status"),
    f"{_TOTALS_SOURCE}: each job's status as `convocore_crawler_job_status` reads it",
)
WORKSPACE_ESTIMATED_CREDITS = MetricDef(
    PREFIX + "workspace_estimated_credits",
    "gauge",
    f"Estimated credits of the workspace's jobs summed (1000 credits = 1 USD), {_TOTALS_OVER}.",
    ("workspace_id",),
    f"{_TOTALS_SOURCE}: `estimatedCredits` (a job without one adds 0)",
)
WORKSPACE_SCRAPED_PAGES = MetricDef(
    PREFIX + "workspace_scraped_pages",
    "gauge",
    f"Pages scraped by the workspace's jobs summed, {_TOTALS_OVER}.",
    ("workspace_id",),
    f"{_TOTALS_SOURCE}: `scrapedPagesNum` (a job without one adds 0)",
)
WORKSPACE_FAILED_PAGES = MetricDef(
    PREFIX + "workspace_failed_pages",
    "gauge",
    f"Pages failed by the workspace's jobs summed, {_TOTALS_OVER}.",
    ("workspace_id",),
    f"{_TOTALS_SOURCE}: `failedPagesNum` (a job without one adds 0)",
)
AGENT_JOBS = MetricDef(
    PREFIX + "agent_jobs",
    "gauge",
    "Jobs feeding the agent in each status (0 included), a job feeding two agents counting for "
    f"each, {_TOTALS_OVER}.",
    ("workspace_id", "agent_id", "status"),
    f"{_TOTALS_SOURCE}: `toAgentIds`, else `toAgentId`, as `convocore_crawler_job_agent_info` "
    "reads them",
)
AGENT_ESTIMATED_CREDITS = MetricDef(
    PREFIX + "agent_estimated_credits",
    "gauge",
    f"Estimated credits of the jobs feeding the agent summed, {_TOTALS_OVER}.",
    ("workspace_id", "agent_id"),
    f"{_TOTALS_SOURCE}: `estimatedCredits` of the jobs feeding the agent",
)
TOTALS: tuple[MetricDef, ...] = (
    WORKSPACE_JOBS,
    WORKSPACE_ESTIMATED_CREDITS,
    WORKSPACE_SCRAPED_PAGES,
    WORKSPACE_FAILED_PAGES,
    AGENT_JOBS,
    AGENT_ESTIMATED_CREDITS,
)

DISCOVERY_UP = MetricDef(
    PREFIX + "discovery_up",
    "gauge",
    "1 when the workspace's last job listing answered, else 0; its discovered jobs stay up "
    "until it has failed for discover_grace_period.",
    ("workspace_id",),
    "the exporter (workspaces with `discover: true`, once listed)",
)
DISCOVERY_TRUNCATED = MetricDef(
    PREFIX + "discovery_truncated_jobs_total",
    "counter",
    "Jobs the workspace's job listing left unread because it stopped at discover_max_pages, "
    "counted once each while they stay out (by the total the list reports; a cursor-paged list "
    "reports none and counts 1).",
    ("workspace_id",),
    "the exporter (workspaces with `discover: true`)",
)
DISCOVERY_ERROR_INFO = MetricDef(
    PREFIX + "discovery_error_info",
    "gauge",
    "Why the workspace's last job listing failed; present only while its discovery_up is 0.",
    ("workspace_id", "reason"),
    "the exporter (workspaces with `discover: true`)",
)

UP = MetricDef(
    PREFIX + "up",
    "gauge",
    "1 when this scrape got a valid answer for the job from the API, else 0.",
    JOB_LABELS,
    "the exporter",
)
ERROR_INFO = MetricDef(
    PREFIX + "error_info",
    "gauge",
    "Why the job is down; present only while its up is 0.",
    (*JOB_LABELS, "reason"),
    "the exporter",
)
LAST_SUCCESS = MetricDef(
    PREFIX + "last_success_timestamp_seconds",
    "gauge",
    "When the job was last fetched successfully from the API, in Unix seconds.",
    JOB_LABELS,
    "the exporter (absent until the first success)",
)
API_ERRORS = MetricDef(
    PREFIX + "api_errors_total",
    "counter",
    "Job fetches that failed after retries, by reason.",
    ("workspace_id", "reason"),
    "the exporter",
)
API_REQUESTS = MetricDef(
    PREFIX + "api_requests_total",
    "counter",
    "HTTP requests made to the Convocore API, by status code (error when none).",
    ("workspace_id", "code"),
    "the exporter",
)
API_DURATION = MetricDef(
    PREFIX + "api_request_duration_seconds",
    "histogram",
    "Duration of HTTP requests made to the Convocore API.",
    ("workspace_id",),
    "the exporter",
)
SCRAPE_DURATION = MetricDef(
    PREFIX + "scrape_duration_seconds",
    "gauge",
    "How long this scrape took to collect, in seconds.",
    (),
    "the exporter",
)
BUILD_INFO = MetricDef(
    PREFIX + "exporter_build_info",
    "gauge",
    "The exporter's version, the revision it was built from and the Python running it; always 1.",
    ("version", "revision", "pythonversion"),
    "the exporter",
)

BACKOFF_UNTIL = MetricDef(
    PREFIX + "backoff_until_timestamp_seconds",
    "gauge",
    "Until when the exporter holds back from the workspace after a 429, in Unix seconds "
    "(0 when not backing off).",
    ("workspace_id",),
    "the exporter (`Retry-After`, else exponential backoff with jitter)",
)
API_OUTAGE_STATE = MetricDef(
    PREFIX + "api_outage_state",
    "gauge",
    "1 for the state of the outage backoff of the API host, 0 for the others: normal (every "
    "request sent), backoff (none sent until the next probe), probing (a few sent, more as "
    "they succeed).",
    ("state",),
    f"the exporter (after {outage.THRESHOLD} requests in a row without a usable answer; see "
    "docs/reliability.md)",
)
DROPPED_JOBS = MetricDef(
    PREFIX + "dropped_jobs_total",
    "counter",
    "Distinct jobs left out because the workspace's max_jobs was reached.",
    ("workspace_id",),
    "the exporter (workspaces with `max_jobs`)",
)
RELOAD_SUCCESS = MetricDef(
    PREFIX + "config_last_reload_successful",
    "gauge",
    "1 when the last config reload succeeded, else 0.",
    (),
    "the exporter",
)
RELOAD_TIME = MetricDef(
    PREFIX + "config_last_reload_success_timestamp_seconds",
    "gauge",
    "When the config was last loaded successfully, in Unix seconds.",
    (),
    "the exporter",
)

# Reasons a job is down; bounded so they are safe as label values.
REASONS: tuple[str, ...] = (
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "bad_request",
    "server_error",
    "timeout",
    "connection",
    "invalid_response",
    "deadline",
    "internal_error",
)

API_DURATION_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Every definition, in the order of the exposition.
ALL: list[MetricDef] = [
    BUILD_INFO,
    UP,
    ERROR_INFO,
    LAST_SUCCESS,
    JOB_INFO,
    JOB_STATUS,
    JOB_FAILURE_INFO,
    JOB_AGENT_INFO,
    *JOB_VALUES,
    *PAGE_VALUES,
    PAGE_MARKDOWN_CHARS,
    PAGE_STATS_ERROR_INFO,
    *TOTALS,
    DISCOVERY_UP,
    DISCOVERY_ERROR_INFO,
    DISCOVERY_TRUNCATED,
    PAGE_STATS_TRUNCATED,
    API_ERRORS,
    API_REQUESTS,
    API_DURATION,
    BACKOFF_UNTIL,
    API_OUTAGE_STATE,
    DROPPED_JOBS,
    RELOAD_SUCCESS,
    RELOAD_TIME,
    SCRAPE_DURATION,
]
