"""Configured jobs become exact series; a broken answer marks only its job down."""

from __future__ import annotations

import platform
import time
from typing import Any

import pytest

from exporter.collect import Exporter, JobOutcome, ProbeRefused
from exporter.config import parse_config
from exporter.exposition.writer import write_text
from exporter.version import build_info

from .conftest import names, parse_exposition, value
from .fakeapi import TOKEN, FakeConvocore, Fault, envelope, full_job
from .support import config_yaml

WS = "ws-123"
P = "convocore_crawler_"
CREATED = 1793527200.0  # 2026-11-01T10:00:00Z


def two_jobs(fake: FakeConvocore, **over: Any) -> str:
    fake.set_jobs(
        WS, {"job-abc": full_job(**over), "job-ok": full_job("job-ok", scrapedPagesNum=7)}
    )
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n"
        "    jobs:\n      - id: job-abc\n        name: docs-site\n      - job-ok\n",
    )


def test_every_metric_of_a_realistic_job_is_exact(fake, start_exporter):
    exporter = start_exporter(two_jobs(fake))
    before = time.time()
    series = exporter.scrape()
    after = time.time()
    job = {"workspace_id": WS, "job_id": "job-abc"}
    expected = {
        "job_done": 0,
        "job_failed": 0,
        "job_cancelled": 0,
        "job_scraped_pages": 40,
        "job_failed_pages": 3,
        "job_current_page_index": 43,
        "job_page_limit": 200,
        "job_max_pages": 250,
        "job_credits_per_page": 1,
        "job_estimated_credits": 200,
        "job_seed_urls": 2,
        "job_scraped_urls": 40,
        "job_pending_candidate_urls": 17,
        "job_processed_crawl_urls": 43,
        "job_failed_crawl_urls": 3,
        "job_created_timestamp_seconds": CREATED,
        "job_updated_timestamp_seconds": 1796040000.123,
        "job_submitted_timestamp_seconds": CREATED + 5.5,
        "job_webhook_configured": 1,
        "up": 1,
    }
    for name, want in expected.items():
        assert value(series, P + name, **job) == want, name
    # Absent in the answer (null): omitted, never 0.
    assert value(series, P + "job_webhook_finalized_timestamp_seconds", **job) is None
    info = {
        **job,
        "name": "docs-site",
        "primary_url": "https://docs.example.com",
        "refresh_rate": "24h",
        "processing_mode": "standard",
        "deep": "false",
        "use_proxy": "true",
    }
    assert value(series, P + "job_info", **info) == 1
    assert value(series, P + "job_agent_info", **job, agent_id="agent-1") == 1
    # resultError is null: no failure text.
    assert not [k for k in series if k[0] == P + "job_failure_info"]
    for state in ("queued", "processing", "completed", "failed", "cancelled"):
        want = 1 if state == "processing" else 0
        assert value(series, P + "job_status", **job, status=state) == want
    assert not [k for k in series if k[0] == P + "error_info"]
    last = value(series, P + "last_success_timestamp_seconds", **job)
    assert last is not None and before <= last <= after
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-ok") == 7
    assert value(series, P + "api_requests_total", workspace_id=WS, code="200") == 2
    assert value(series, P + "api_request_duration_seconds_count", workspace_id=WS) == 2
    build = [labels for name, labels in series if name == P + "exporter_build_info"]
    assert len(build) == 1 and series[(P + "exporter_build_info", build[0])] == 1
    assert dict(build[0]) == {
        "version": "0.1.0",
        "revision": build_info().revision,
        "pythonversion": platform.python_version(),
    }
    assert not [k for k in series if k[0].endswith("_created")]


def test_job_series_per_job_count(fake, start_exporter):
    series = start_exporter(two_jobs(fake)).scrape()
    info = [k for k in series if k[0] == P + "job_info"]
    assert len(info) == 2
    assert names(series) == {
        P + n
        for n in (
            "job_info",
            "job_status",
            "job_agent_info",
            "job_done",
            "job_failed",
            "job_cancelled",
            "job_scraped_pages",
            "job_failed_pages",
            "job_current_page_index",
            "job_page_limit",
            "job_max_pages",
            "job_credits_per_page",
            "job_estimated_credits",
            "job_seed_urls",
            "job_scraped_urls",
            "job_pending_candidate_urls",
            "job_processed_crawl_urls",
            "job_failed_crawl_urls",
            "job_created_timestamp_seconds",
            "job_updated_timestamp_seconds",
            "job_submitted_timestamp_seconds",
            "job_webhook_configured",
        )
    }


FIELDS = {
    "done": "job_done",
    "failed": "job_failed",
    "isCancelled": "job_cancelled",
    "scrapedPagesNum": "job_scraped_pages",
    "failedPagesNum": "job_failed_pages",
    "currentPageIndex": "job_current_page_index",
    "pageLimit": "job_page_limit",
    "creditsPerPage": "job_credits_per_page",
    "estimatedCredits": "job_estimated_credits",
    "urls": "job_seed_urls",
    "scrapedUrls": "job_scraped_urls",
    "pendingCandidateUrls": "job_pending_candidate_urls",
    "processedCrawlUrls": "job_processed_crawl_urls",
    "failedCrawlUrls": "job_failed_crawl_urls",
    "createdAt": "job_created_timestamp_seconds",
    "ts": "job_updated_timestamp_seconds",
    "crawlerSubmittedAt": "job_submitted_timestamp_seconds",
    "webhookFinalizedAt": "job_webhook_finalized_timestamp_seconds",
}


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("kind", ["missing", "null", "wrong_type"])
def test_a_missing_or_mistyped_field_is_omitted_and_the_rest_exported(
    fake, start_exporter, field, kind
):
    data = full_job(webhookFinalizedAt="2026-11-02T00:00:00Z")
    if kind == "missing":
        del data[field]
    elif kind == "null":
        data[field] = None
    else:
        # A numeric string for numbers, a number for flags, lists and timestamps.
        data[field] = {
            bool: 1,
            int: "42",
            list: "not-a-list",
            str: True,
        }[type(data[field])]
    fake.set_jobs(WS, {"job-abc": data})
    series = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-abc]\n"
        )
    ).scrape()
    job = {"workspace_id": WS, "job_id": "job-abc"}
    assert value(series, P + FIELDS[field], **job) is None
    assert value(series, P + "up", **job) == 1
    assert value(series, P + "job_scraped_pages", **job) == (
        None if field == "scrapedPagesNum" else 40
    )
    assert value(series, P + "job_status", **job, status="processing") == 1
    exported = {n for n in names(series)}
    assert len(exported) == 22  # every other job series is still there


def test_max_pages_and_webhook_shapes(fake, start_exporter):
    fake.set_jobs(
        WS,
        {
            "a": full_job("a", crawlOptions="oops", webhook=None),
            "b": full_job("b", crawlOptions={"maxPages": "250"}, webhook={}),
            "c": full_job("c", webhook={"url": ""}),
            "d": {k: v for k, v in full_job("d").items() if k != "webhook"},
        },
    )
    series = start_exporter(
        config_yaml(
            fake.base_url,
            f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [a, b, c, d]\n",
        )
    ).scrape()
    for job_id, webhook in (("a", 0), ("b", 0), ("c", 0), ("d", None)):
        labels = {"workspace_id": WS, "job_id": job_id}
        assert value(series, P + "job_webhook_configured", **labels) == webhook, job_id
        if job_id in "ab":
            assert value(series, P + "job_max_pages", **labels) is None
    assert value(series, P + "job_max_pages", workspace_id=WS, job_id="c") == 250


@pytest.mark.parametrize(
    ("over", "status"),
    [
        ({"status": None, "done": True, "failed": True, "isCancelled": True}, "cancelled"),
        ({"status": None, "done": True, "failed": True, "isCancelled": False}, "failed"),
        ({"status": "weird", "done": True, "failed": False, "isCancelled": False}, "completed"),
        (
            {
                "status": None,
                "currentPageIndex": 0,
                "scrapedPagesNum": 0,
                "failedPagesNum": 0,
                "activeScrapeUrl": "https://x",
            },
            "processing",
        ),
        (
            {
                "status": None,
                "currentPageIndex": 0,
                "scrapedPagesNum": 0,
                "failedPagesNum": 1,
                "activeScrapeUrl": None,
            },
            "processing",
        ),
        (
            {
                "status": None,
                "currentPageIndex": 0,
                "scrapedPagesNum": 0,
                "failedPagesNum": 0,
                "activeScrapeUrl": None,
            },
            "queued",
        ),
        ({"status": "COMPLETED", "done": False}, "completed"),
        ({"status": "failed", "done": True}, "failed"),
    ],
)
def test_status_reported_or_derived(fake, start_exporter, over, status):
    data = full_job(**over)
    if over.get("status") is None:
        del data["status"]
    fake.set_jobs(WS, {"job-abc": data})
    series = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-abc]\n"
        )
    ).scrape()
    got = {
        dict(labels)["status"]: v
        for (name, labels), v in series.items()
        if name == P + "job_status"
    }
    assert got == {
        s: (1 if s == status else 0)
        for s in ("queued", "processing", "completed", "failed", "cancelled")
    }


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("2026-11-01T10:00:00Z", CREATED),
        ("2026-11-01T10:00:00", CREATED),  # no zone: UTC
        ("2026-11-01T12:00:00+02:00", CREATED),
        ("2026-11-01T10:00:00.250Z", CREATED + 0.25),
        (CREATED, CREATED),  # seconds
        (int(CREATED * 1000), CREATED),  # milliseconds
        (CREATED * 1000 + 500, CREATED + 0.5),
        ("yesterday", None),
        ("1793527200", None),  # a numeric string is not a timestamp
        (True, None),
    ],
)
def test_timestamps(fake, start_exporter, raw, seconds):
    fake.set_jobs(WS, {"job-abc": full_job(createdAt=raw, ts=raw)})
    series = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-abc]\n"
        )
    ).scrape()
    job = {"workspace_id": WS, "job_id": "job-abc"}
    assert value(series, P + "job_created_timestamp_seconds", **job) == seconds
    assert value(series, P + "job_updated_timestamp_seconds", **job) == seconds


HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"

ERRORS = [
    ("unauthorized", Fault(401, {"message": "no", "code": "UNAUTHORIZED"}), 1),
    ("forbidden", Fault(403, {"message": "no", "code": "FORBIDDEN"}), 1),
    ("not_found", Fault(404, {"message": "no", "code": "NOT_FOUND"}), 1),
    ("rate_limited", Fault(429, {"message": "slow down"}), 1),
    ("rate_limited", Fault(429, {"message": "slow down"}, {"Retry-After": "3600"}), 1),
    ("bad_request", Fault(400, {"message": "bad"}), 1),
    ("bad_request", Fault(418, "teapot", {"Content-Type": "text/plain"}), 1),
    ("server_error", Fault(500, HTML, {"Content-Type": "text/html"}), 2),
    ("server_error", Fault(503, HTML, {"Content-Type": "text/html"}), 2),
    ("invalid_response", Fault(200, "{not json"), 1),
    ("invalid_response", Fault(200, "[1, 2]"), 1),
    ("invalid_response", Fault(200, {"success": False, "message": "nope"}), 1),
    ("invalid_response", Fault(200, {"success": True, "message": "ok", "data": None}), 1),
    ("invalid_response", Fault(200, {"success": True, "message": "ok", "data": [1]}), 1),
    ("invalid_response", Fault(200, envelope(full_job("another-job"))), 1),
    ("invalid_response", Fault(200, b"\xff\xfe\xfa not utf-8"), 1),
    ("invalid_response", Fault(302, "", {"Location": "https://elsewhere.example/v3/x"}), 1),
    ("connection", Fault(200, envelope(full_job()), reset_after=10), 2),
]


@pytest.mark.parametrize(("reason", "fault", "attempts"), ERRORS)
def test_an_upstream_error_marks_only_that_job_down(fake, start_exporter, reason, fault, attempts):
    config = two_jobs(fake)
    fake.fail(fake.job_path(WS, "job-abc"), fault)
    exporter = start_exporter(config)
    series = exporter.scrape()
    bad = {"workspace_id": WS, "job_id": "job-abc"}
    good = {"workspace_id": WS, "job_id": "job-ok"}
    assert value(series, P + "up", **bad) == 0
    assert value(series, P + "error_info", **bad, reason=reason) == 1
    assert len([k for k in series if k[0] == P + "error_info"]) == 1
    assert value(series, P + "job_scraped_pages", **bad) is None
    assert value(series, P + "last_success_timestamp_seconds", **bad) is None
    assert value(series, P + "up", **good) == 1
    assert value(series, P + "job_scraped_pages", **good) == 7
    assert value(series, P + "api_errors_total", workspace_id=WS, reason=reason) == 1
    assert fake.count(fake.job_path(WS, "job-abc")) == attempts
    assert fake.count(fake.job_path(WS, "job-ok")) == 1


def test_a_retry_after_that_fits_the_deadline_is_honoured(fake, start_exporter):
    config = two_jobs(fake)
    fake.fail(fake.job_path(WS, "job-abc"), Fault(429, {"m": 1}, {"Retry-After": "1"}, times=1))
    series = start_exporter(config).scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    assert value(series, P + "up", workspace_id=WS, job_id="job-abc") == 1
    assert value(series, P + "api_requests_total", workspace_id=WS, code="429") == 1
    assert value(series, P + "api_requests_total", workspace_id=WS, code="200") == 2
    assert fake.count(fake.job_path(WS, "job-abc")) == 2


def test_a_quick_retry_recovers_a_single_5xx(fake, start_exporter):
    config = two_jobs(fake)
    fake.fail(fake.job_path(WS, "job-abc"), Fault(502, HTML, times=1))
    series = start_exporter(config).scrape()
    assert value(series, P + "up", workspace_id=WS, job_id="job-abc") == 1
    assert value(series, P + "api_requests_total", workspace_id=WS, code="502") == 1
    assert value(series, P + "api_errors_total", workspace_id=WS, reason="server_error") is None


def test_a_slow_answer_past_the_deadline_is_down_and_the_scrape_answers(fake, start_exporter):
    config = two_jobs(fake)
    fake.fail(fake.job_path(WS, "job-abc"), Fault(hang=True))
    exporter = start_exporter(config)
    started = time.monotonic()
    series = exporter.scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    elapsed = time.monotonic() - started
    assert value(series, P + "up", workspace_id=WS, job_id="job-abc") == 0
    assert (
        value(series, P + "error_info", workspace_id=WS, job_id="job-abc", reason="deadline") == 1
    )
    assert value(series, P + "up", workspace_id=WS, job_id="job-ok") == 1
    assert value(series, P + "api_errors_total", workspace_id=WS, reason="deadline") == 1
    # The deadline is the header minus the 0.5 s offset; the answer cannot come before it.
    assert elapsed >= 1.0


def test_a_request_timeout_is_timeout(fake, start_exporter):
    config = two_jobs(fake).replace("timeout_seconds: 2", "timeout_seconds: 0.3")
    fake.fail(fake.job_path(WS, "job-abc"), Fault(hang=True))
    series = start_exporter(config).scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
    assert value(series, P + "error_info", workspace_id=WS, job_id="job-abc", reason="timeout") == 1


def test_an_oversized_answer_is_refused_without_reading_it_whole(fake, start_exporter):
    config = two_jobs(fake).replace(
        "min_refresh_interval: 0s\n", "min_refresh_interval: 0s\n  max_response_bytes: 4096\n"
    )
    big = envelope(full_job(scrapedUrls=["https://x.example/" + "a" * 100] * 1000))
    fake.fail(fake.job_path(WS, "job-abc"), Fault(200, big))
    # And one that does not announce its length.
    fake.fail(
        fake.job_path(WS, "job-ok"),
        Fault(200, big, length=False),
    )
    series = start_exporter(config).scrape()
    for job_id in ("job-abc", "job-ok"):
        labels = {"workspace_id": WS, "job_id": job_id}
        assert value(series, P + "error_info", **labels, reason="invalid_response") == 1


def test_connection_refused_is_connection(start_exporter):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = config_yaml(
        f"http://127.0.0.1:{port}/v3", "  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n"
    )
    series = start_exporter(config).scrape()
    assert value(series, P + "error_info", workspace_id="w", job_id="j", reason="connection") == 1
    assert value(series, P + "api_requests_total", workspace_id="w", code="error") == 2


def test_ids_are_url_encoded_and_sent_with_the_bearer_token(fake, start_exporter):
    fake.set_jobs("ws:1", {"job.a:b": full_job("job.a:b", "ws:1")})
    config = config_yaml(
        fake.base_url, '  - id: "ws:1"\n    token: ${CONVOCORE_TOKEN}\n    jobs: ["job.a:b"]\n'
    )
    series = start_exporter(config).scrape()
    assert value(series, P + "up", workspace_id="ws:1", job_id="job.a:b") == 1
    target, headers = fake.log[0]
    assert target == "/v3/workspaces/ws%3A1/crawler/jobs/job.a%3Ab"
    assert headers["authorization"].startswith("Bearer vg_test_secret")
    assert headers["user-agent"].startswith("convocore-crawler-exporter/")


def test_a_down_job_keeps_its_last_good_values_until_it_is_gone(fake, start_exporter):
    config = two_jobs(fake)
    running = start_exporter(config)
    first = running.scrape()
    bad = {"workspace_id": WS, "job_id": "job-abc"}
    last = value(first, P + "last_success_timestamp_seconds", **bad)
    fake.fail(fake.job_path(WS, "job-abc"), Fault(503, HTML))
    series = running.scrape()
    assert value(series, P + "up", **bad) == 0
    assert value(series, P + "error_info", **bad, reason="server_error") == 1
    assert value(series, P + "job_scraped_pages", **bad) == 40
    assert value(series, P + "last_success_timestamp_seconds", **bad) == last
    fake.fail(fake.job_path(WS, "job-abc"), Fault(404, {"message": "gone"}))
    series = running.scrape()
    assert value(series, P + "error_info", **bad, reason="not_found") == 1
    assert value(series, P + "job_scraped_pages", **bad) is None
    assert [k for k in series if k[0] == P + "job_info" and ("job_id", "job-abc") in k[1]] == []
    assert value(series, P + "last_success_timestamp_seconds", **bad) == last
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-ok") == 7


def test_a_scrape_that_outlives_its_config_reads_as_cut_short(fake):
    # A reload or a stop closes the config's fetching while a scrape of it still runs: what
    # that scrape would still fetch reads as cut by the deadline, and it raises nothing.
    exporter = Exporter(parse_config(two_jobs(fake), "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    exporter.close()
    result = exporter.collect(time.monotonic() + 5)
    assert result.outcomes == (
        JobOutcome(WS, "job-abc", up=False, reason="deadline"),
        JobOutcome(WS, "job-ok", up=False, reason="deadline"),
    )
    series = parse_exposition(write_text(result.families).decode())
    for job_id in ("job-abc", "job-ok"):
        assert value(series, P + "up", workspace_id=WS, job_id=job_id) == 0
        assert (
            value(series, P + "error_info", workspace_id=WS, job_id=job_id, reason="deadline") == 1
        )
    assert fake.paths() == []


def test_a_scrape_and_a_probe_return_each_jobs_outcome_beside_the_families(fake):
    exporter = Exporter(parse_config(two_jobs(fake), "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    fake.fail(fake.job_path(WS, "job-abc"), Fault(404, {"message": "gone"}, times=None))
    try:
        result = exporter.collect(time.monotonic() + 5)
        assert result.outcomes == (
            JobOutcome(WS, "job-abc", up=False, reason="not_found"),
            JobOutcome(WS, "job-ok", up=True, reason=None),
        )
        assert result.down == (result.outcomes[0],)
        series = parse_exposition(write_text(result.families).decode())
        assert value(series, P + "up", workspace_id=WS, job_id="job-abc") == 0
        assert value(series, P + "up", workspace_id=WS, job_id="job-ok") == 1

        probed = exporter.probe(time.monotonic() + 5, WS, "job-ok")
        assert not isinstance(probed, ProbeRefused)
        assert probed.outcomes == (JobOutcome(WS, "job-ok", up=True, reason=None),)
        assert probed.down == ()
        series = parse_exposition(write_text(probed.families).decode())
        assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-ok") == 7

        # Only the exporter's own metrics: no job, no outcome.
        assert exporter.collect(time.monotonic() + 5, jobs=False).outcomes == ()

        calls = len(fake.paths())
        assert exporter.probe(time.monotonic() + 5, "ws-other", "job-ok") == ProbeRefused(
            "unknown_workspace", "workspace 'ws-other' is not in the config", 404
        )
        assert exporter.probe(time.monotonic() + 5, WS, "job-new") == ProbeRefused(
            "unknown_job",
            f"job 'job-new' is not configured or discovered in workspace '{WS}'",
            404,
        )
        assert len(fake.paths()) == calls  # a refused probe asks nothing upstream
    finally:
        exporter.close()


def test_the_scrape_waits_once_for_every_job_fetch_together_and_not_past_its_deadline():
    from concurrent.futures import Future

    from exporter.collect.pipeline import Countdown

    countdown = Countdown()
    countdown.wait(5)  # nothing expected: no wait at all
    futures: list[Future[Any]] = [Future(), Future()]
    for future in futures:
        countdown.expect(future)
    started = time.monotonic()
    countdown.wait(0.05)  # one still running: the deadline ends the wait
    assert time.monotonic() - started >= 0.05
    futures[0].set_result(None)
    futures[1].set_result(None)
    started = time.monotonic()
    countdown.wait(30)  # all answered: at once
    assert time.monotonic() - started < 10
    done: Future[Any] = Future()
    done.set_result(None)
    countdown.expect(done)  # an answer already in counts at once
    countdown.wait(30)
