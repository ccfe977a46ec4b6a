"""Page statistics against the loopback fake: exact values, the cost of each scrape in pages
requests (read once when finished, per interval and incrementally when active, capped), and
failures of the pages list that never take the job down.

Time is the exporter's injected clock, moved by the tests; nothing here sleeps to wait out an
interval.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.config import ConfigError, parse_config
from exporter.exposition import metrics

from .conftest import value
from .fakeapi import TOKEN, FakeConvocore, Fault, envelope, full_job
from .support import Clock, config_yaml

P = "convocore_crawler_"
WS = "ws-123"
JOB = {"workspace_id": WS, "job_id": "job-abc"}
T0 = 1796040000  # a page's scrapedAt, in seconds


def summaries(count: int, start: int = 0, prefix: str = "p") -> list[dict[str, Any]]:
    """``count`` page summaries: every 4th empty (mdCharCount 0), the others 1,000 markdown
    characters; 5,000 HTML characters each; page i scraped at T0 + i seconds (in ms)."""
    pages = []
    for i in range(start, start + count):
        empty = i % 4 == 3
        pages.append(
            {
                "id": f"{prefix}{i}",
                "url": f"https://docs.example.com/{prefix}{i}",
                "urlHash": f"h{prefix}{i}",
                "title": f"Page {i}",
                "description": None,
                "scrapedAt": (T0 + i) * 1000,
                "imageUrl": None,
                "userId": "u-1",
                "mdCharCount": 0 if empty else 1000,
                "htmlCharCount": 5000,
                "failed": False,
            }
        )
    return pages


def expected(count: int, last: int | None = None) -> dict[str, float]:
    """The page values of ``summaries(count)``: by name, without the prefix."""
    empty = sum(1 for i in range(count) if i % 4 == 3)
    return {
        "job_pages_listed": count,
        "job_empty_pages": empty,
        "job_markdown_chars": 1000.0 * (count - empty),
        "job_html_chars": 5000.0 * count,
        "job_last_page_scraped_timestamp_seconds": T0 + (count - 1 if last is None else last),
    }


def page_values(series: dict[Any, float], job: dict[str, str] = JOB) -> dict[str, float | None]:
    return {name: value(series, P + name, **job) for name in expected(1)}


def workspace(extra: str = "", jobs: str = "[job-abc]") -> str:
    return f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: {jobs}\n{extra}"


def page_config(fake: FakeConvocore, extra: str = "    page_stats: true\n", **kw: str) -> str:
    return config_yaml(fake.base_url, workspace(extra, **kw))


def finished(job_id: str = "job-abc", **over: Any) -> dict[str, Any]:
    """A completed job, updated now (within the default include_finished_for)."""
    over.setdefault("ts", int(time.time() * 1000))
    return full_job(job_id, WS, status="completed", done=True, **over)


def error_reasons(series: dict[Any, float], job_id: str = "job-abc") -> list[str]:
    return [
        dict(labels)["reason"]
        for name, labels in series
        if name == P + "page_stats_error_info" and dict(labels)["job_id"] == job_id
    ]


# -- configuration --------------------------------------------------------------------------


def test_page_stats_is_off_by_default_and_configurable():
    base = "workspaces:\n  - id: w\n    token: t\n    jobs: [j]\n"
    (ws,) = parse_config(base, "c.yml", {}).workspaces
    assert (ws.page_stats, ws.page_stats_interval, ws.page_stats_max_pages) == (False, 300.0, 5000)
    text = (
        base + "    page_stats: true\n    page_stats_interval: 90s\n    page_stats_max_pages: 7\n"
    )
    (ws,) = parse_config(text, "c.yml", {}).workspaces
    assert (ws.page_stats, ws.page_stats_interval, ws.page_stats_max_pages) == (True, 90.0, 7)


DURATION = (
    "expected a duration such as 0, 30s, 5m, 1h30m or 7d (whole numbers with units y, w, d, h, "
    "m, s, ms, largest first, each once)"
)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "page_stats: 'yes'",
            "c.yml:5:17: workspaces[0].page_stats: expected true or false, got string 'yes'",
        ),
        (
            "page_stats_interval: 300",
            f"c.yml:5:26: workspaces[0].page_stats_interval: {DURATION}, got number 300",
        ),
        (
            "page_stats_interval: soon",
            f"c.yml:5:26: workspaces[0].page_stats_interval: {DURATION}, got string 'soon'",
        ),
        (
            "page_stats_max_pages: 0",
            "c.yml:5:27: workspaces[0].page_stats_max_pages: expected a whole number from 1 to "
            "1000000, got number 0",
        ),
        (
            "page_stats_max_pages: 1.5",
            "c.yml:5:27: workspaces[0].page_stats_max_pages: expected a whole number, "
            "got number 1.5",
        ),
        (
            "page_stat: true",
            "c.yml:5:5: workspaces[0].page_stat: unknown key; expected one of "
            "allow_unconfigured_probes, discover, discover_grace_period, discover_interval, "
            "discover_max_pages, id, include_finished_for, jobs, max_jobs, page_stats, "
            "page_stats_interval, "
            "page_stats_max_pages, token, token_file",
        ),
    ],
)
def test_invalid_page_stats_keys_are_refused_naming_the_key(line, message):
    text = f"workspaces:\n  - id: w\n    token: t\n    jobs: [j]\n    {line}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", {})
    assert str(caught.value) == message


# -- values ---------------------------------------------------------------------------------


def test_off_the_pages_list_is_never_read(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    series = start_exporter(page_config(fake, extra="")).scrape()
    assert value(series, P + "up", **JOB) == 1
    assert fake.pages_requests(WS, "job-abc") == []
    page_names = {d.name for d in metrics.PAGE_VALUES} | {
        metrics.PAGE_MARKDOWN_CHARS.name + "_bucket",
        metrics.PAGE_STATS_ERROR_INFO.name,
        metrics.PAGE_STATS_TRUNCATED.name,
    }
    assert len(page_names) == 8
    assert not [name for name, _ in series if name in page_names]
    assert value(series, P + "page_stats_truncated_jobs_total", workspace_id=WS) is None


def test_exact_values_of_a_realistic_pages_list(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(250))
    running = start_exporter(page_config(fake))
    series = running.scrape()
    assert page_values(series) == expected(250)
    assert expected(250)["job_empty_pages"] == 62
    buckets = {
        dict(labels)["le"]: v
        for (name, labels), v in series.items()
        if name == P + "job_page_markdown_chars_bucket" and dict(labels)["job_id"] == "job-abc"
    }
    assert buckets == {
        "0.0": 62,
        "100.0": 62,
        "1000.0": 250,
        "10000.0": 250,
        "100000.0": 250,
        "+Inf": 250,
    }
    assert value(series, P + "job_page_markdown_chars_gcount", **JOB) == 250
    assert value(series, P + "job_page_markdown_chars_gsum", **JOB) == 188_000
    assert value(series, P + "up", **JOB) == 1
    assert error_reasons(series) == []
    assert value(series, P + "page_stats_truncated_jobs_total", workspace_id=WS) == 0


def test_openmetrics_serves_a_gauge_histogram(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(10))
    response = start_exporter(page_config(fake)).get(
        headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    histogram = families[P + "job_page_markdown_chars"]
    assert histogram.type == "gaugehistogram"
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.samples}
    assert samples[(P + "job_page_markdown_chars_bucket", "0.0")] == 2
    assert samples[(P + "job_page_markdown_chars_bucket", "+Inf")] == 10
    assert samples[(P + "job_page_markdown_chars_gcount", None)] == 10
    assert samples[(P + "job_page_markdown_chars_gsum", None)] == 8000
    assert families[P + "job_pages_listed"].samples[0].value == 10


def test_missing_and_mistyped_page_fields(fake, start_exporter):
    pages: list[Any] = [
        {"id": "a", "mdCharCount": 500, "htmlCharCount": 900, "scrapedAt": T0 * 1000},
        {"id": "b", "mdCharCount": "500", "htmlCharCount": None, "title": "Has title"},
        {"id": "c", "mdCharCount": None, "title": None, "scrapedAt": "never"},
        {"id": "d", "mdCharCount": 0, "failed": True, "scrapedAt": T0 + 60},  # seconds
        {"id": "e", "mdCharCount": 0, "failed": "yes", "htmlCharCount": -4},
        {},
        None,
        "page",
        {"id": "f", "mdCharCount": 2e5, "htmlCharCount": True, "scrapedAt": [T0]},
    ]
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", pages)
    series = start_exporter(page_config(fake)).scrape()
    assert page_values(series) == {
        "job_pages_listed": 9,
        "job_empty_pages": 3,  # c (no count, no title), e (mistyped failed), {} (nothing)
        "job_markdown_chars": 200_500,
        "job_html_chars": 900,
        "job_last_page_scraped_timestamp_seconds": T0 + 60,
    }
    assert value(series, P + "job_page_markdown_chars_gcount", **JOB) == 4
    bucket = P + "job_page_markdown_chars_bucket"
    assert value(series, bucket, **JOB, le="0.0") == 2
    assert value(series, bucket, **JOB, le="1000.0") == 3
    assert value(series, bucket, **JOB, le="+Inf") == 4
    assert value(series, P + "up", **JOB) == 1


def test_a_job_without_pages_and_without_scraped_at(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", [])
    series = start_exporter(page_config(fake)).scrape()
    values = page_values(series)
    assert values == {
        "job_pages_listed": 0,
        "job_empty_pages": 0,
        "job_markdown_chars": 0,
        "job_html_chars": 0,
        "job_last_page_scraped_timestamp_seconds": None,  # omitted, never 0
    }
    assert fake.pages_requests(WS, "job-abc") == ["1"]


# -- cost -----------------------------------------------------------------------------------


def test_a_finished_job_is_read_once(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(250))
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    first = running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    clock.now += 365 * 86400
    fake.set_pages(WS, "job-abc", summaries(300))  # not read again: finished jobs do not change
    second = running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    assert page_values(second) == page_values(first) == expected(250)
    limits = {
        target.split("limit=")[1]
        for target, _ in fake.log
        if target.startswith(fake.pages_path(WS, "job-abc"))
    }
    assert limits == {"100"}


def test_a_reload_keeps_page_totals_unless_the_page_cap_changed(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(250))
    text = page_config(fake)
    running = start_exporter(text)
    running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    running.exporter.set_config(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    assert running.exporter.memory().page_totals == {(WS, "job-abc")}  # kept
    assert page_values(running.scrape()) == expected(250)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    # Another cap counts the pages another way: read again.
    capped = page_config(fake, "    page_stats: true\n    page_stats_max_pages: 100\n")
    running.exporter.set_config(parse_config(capped, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    assert running.exporter.memory().page_totals == frozenset()  # dropped
    series = running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3", "1"]
    assert value(series, P + "job_pages_listed", **JOB) == 100


def test_an_active_job_is_re_read_per_interval_from_where_it_stopped(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS)})  # processing
    fake.set_pages(WS, "job-abc", summaries(250))
    clock = Clock()
    running = start_exporter(
        page_config(fake, "    page_stats: true\n    page_stats_interval: 5m\n"), clock=clock
    )
    assert page_values(running.scrape()) == expected(250)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    fake.set_pages(WS, "job-abc", summaries(280))
    clock.now += 299
    assert page_values(running.scrape()) == expected(250)  # not due yet
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3"]
    clock.now += 1
    assert page_values(running.scrape()) == expected(280)
    # Only the page holding the last page counted (200-249) and what follows it: page 3.
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "3", "3"]
    fake.set_pages(WS, "job-abc", summaries(430))
    clock.now += 300
    assert page_values(running.scrape()) == expected(430)
    assert fake.pages_requests(WS, "job-abc")[4:] == ["3", "4", "5"]


def test_a_re_read_at_a_page_boundary_re_reads_that_page(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS)})
    fake.set_pages(WS, "job-abc", summaries(200))
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2"]
    clock.now += 300
    assert page_values(running.scrape()) == expected(200)  # nothing new: one request
    assert fake.pages_requests(WS, "job-abc")[2:] == ["2"]
    fake.set_pages(WS, "job-abc", summaries(230))
    clock.now += 300
    assert page_values(running.scrape()) == expected(230)
    assert fake.pages_requests(WS, "job-abc")[3:] == ["2", "3"]


def test_a_list_that_did_not_only_grow_at_its_end_is_read_again_whole(fake, start_exporter):
    """Newest first: the last page counted is no longer where it was, so all is re-read."""
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS)})
    fake.set_pages(WS, "job-abc", list(reversed(summaries(150))))
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    assert page_values(running.scrape()) == expected(150)
    fake.set_pages(WS, "job-abc", list(reversed(summaries(230))))
    clock.now += 300
    assert page_values(running.scrape()) == expected(230)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "2", "1", "2", "3"]


def test_a_job_that_finishes_is_read_once_more_then_never(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS)})
    fake.set_pages(WS, "job-abc", summaries(120))
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    running.scrape()
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(140))
    # Finished: read now, although the interval has not passed.
    assert page_values(running.scrape()) == expected(140)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "2"]
    clock.now += 86400
    running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "2"]


def test_the_page_cap_counts_a_truncated_job_once(fake, start_exporter, captured_logs):
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS), "job-def": finished("job-def")})
    fake.set_pages(WS, "job-abc", summaries(400))
    fake.set_pages(WS, "job-def", summaries(150))  # exactly the cap: not truncated
    clock = Clock()
    running = start_exporter(
        page_config(
            fake, "    page_stats: true\n    page_stats_max_pages: 150\n", jobs="[job-abc, job-def]"
        ),
        clock=clock,
    )
    series = running.scrape()
    assert page_values(series) == expected(150)
    assert page_values(series, {"workspace_id": WS, "job_id": "job-def"}) == expected(150)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2"]
    assert value(series, P + "page_stats_truncated_jobs_total", workspace_id=WS) == 1
    fake.set_pages(WS, "job-abc", summaries(500))
    clock.now += 300
    series = running.scrape()
    assert page_values(series) == expected(150)
    assert fake.pages_requests(WS, "job-abc") == ["1", "2", "2"]
    assert value(series, P + "page_stats_truncated_jobs_total", workspace_id=WS) == 1
    warnings = [line for line in captured_logs if "page_stats_max_pages reached" in line]
    assert len(warnings) == 1 and "job_id=job-abc" in warnings[0]


def test_overlapping_scrapes_share_one_pages_read(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(50))
    fake.fail(
        fake.pages_path(WS, "job-abc"),
        Fault(200, envelope({"pages": summaries(50)}), delay=1.0, times=1),
    )
    running = start_exporter(page_config(fake))
    barrier = threading.Barrier(2)
    results: list[dict[Any, float]] = []

    def scrape() -> None:
        barrier.wait()
        results.append(running.scrape())

    threads = [threading.Thread(target=scrape) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.pages_requests(WS, "job-abc") == ["1"]
    assert [page_values(r) for r in results] == [expected(50), expected(50)]


def test_discovered_finished_jobs_are_read_once(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished(), "job-new": full_job("job-new", WS)})
    fake.set_pages(WS, "job-abc", summaries(30))
    fake.set_pages(WS, "job-new", summaries(3))
    clock = Clock()
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n    page_stats: true\n",
    )
    running = start_exporter(config, clock=clock)
    series = running.scrape()
    assert page_values(series) == expected(30)
    assert page_values(series, {"workspace_id": WS, "job_id": "job-new"}) == expected(3)
    clock.now += 300
    running.scrape()
    assert fake.pages_requests(WS, "job-abc") == ["1"]
    assert fake.pages_requests(WS, "job-new") == ["1", "1"]


def test_probe_serves_the_jobs_page_stats(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(12))
    series = start_exporter(page_config(fake)).scrape(
        "/probe", params={"workspace_id": WS, "job_id": "job-abc"}
    )
    assert page_values(series) == expected(12)


# -- failures -------------------------------------------------------------------------------

FAILURES = {
    "500": (Fault(500, {"message": "boom", "code": "INTERNAL_SERVER_ERROR"}), "server_error"),
    "bad JSON": (Fault(200, b'{"success": true, "data": {"pages": [}'), "invalid_response"),
    "HTML": (Fault(502, "<html>bad gateway</html>"), "server_error"),
    "pages not a list": (Fault(200, envelope({"pages": "none"})), "invalid_response"),
    "data not an object": (Fault(200, envelope([1, 2])), "invalid_response"),
    "another page": (Fault(200, envelope({"pages": [], "page": 4})), "invalid_response"),
    "too many": (
        Fault(200, envelope({"pages": summaries(20), "pageSize": 10})),
        "invalid_response",
    ),
    "404": (Fault(404, {"message": "no", "code": "NOT_FOUND"}), "not_found"),
    "401": (Fault(401, {"message": "no", "code": "UNAUTHORIZED"}), "unauthorized"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_a_failing_pages_list_never_takes_the_job_down(fake, start_exporter, captured_logs, case):
    fault, reason = FAILURES[case]
    fake.set_jobs(
        WS,
        {"job-abc": finished(), "job-ok": finished("job-ok", scrapedPagesNum=7, failedPagesNum=0)},
    )
    fake.fail(fake.pages_path(WS, "job-abc"), fault)
    running = start_exporter(page_config(fake, jobs="[job-abc, job-ok]"))
    series = running.scrape()
    assert value(series, P + "up", **JOB) == 1
    assert value(series, P + "job_scraped_pages", **JOB) == 40
    assert not [k for k in series if k[0] == P + "error_info"]
    assert error_reasons(series) == [reason]
    assert value(series, P + "page_stats_error_info", **JOB, reason=reason) == 1
    assert page_values(series) == dict.fromkeys(expected(1))  # never read: nothing served
    ok = {"workspace_id": WS, "job_id": "job-ok"}
    assert value(series, P + "job_pages_listed", **ok) == 7
    assert error_reasons(series, "job-ok") == []
    assert value(series, P + "api_errors_total", workspace_id=WS, reason=reason) is None
    # The endpoint recovers: the next scrape reads it and the error goes.
    fake.faults.clear()
    series = running.scrape()
    assert error_reasons(series) == []
    assert value(series, P + "job_pages_listed", **JOB) == 43  # 40 scraped + 3 failed
    assert not [line for line in captured_logs if TOKEN in line]


def test_a_failed_re_read_keeps_serving_the_last_good_values(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": full_job("job-abc", WS)})
    fake.set_pages(WS, "job-abc", summaries(60))
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    running.scrape()
    fake.fail(fake.pages_path(WS, "job-abc"), Fault(503, "down"))
    clock.now += 300
    series = running.scrape()
    assert page_values(series) == expected(60)
    assert error_reasons(series) == ["server_error"]
    assert value(series, P + "up", **JOB) == 1
    # Retried at the next scrape (api.min_refresh_interval is 0s here), not after 5 minutes.
    fake.faults.clear()
    fake.set_pages(WS, "job-abc", summaries(70))
    series = running.scrape()
    assert page_values(series) == expected(70)
    assert error_reasons(series) == []


def test_a_failing_pages_list_is_retried_less_and_less_often(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.fail(fake.pages_path(WS, "job-abc"), Fault(404, {"message": "no", "code": "NOT_FOUND"}))
    config = (
        f"api:\n  base_url: {fake.base_url}\n  timeout_seconds: 2\n"
        f"  min_refresh_interval: 10s\nworkspaces:\n"
        + workspace("    page_stats: true\n    page_stats_interval: 30s\n")
    )
    clock = Clock()
    running = start_exporter(config, clock=clock)
    attempts = []
    # Retried after 10 s, then 20 s, then every 30 s (page_stats_interval), not 40 s.
    for step in (0, 9, 1, 19, 1, 29, 1, 29, 1):
        clock.now += step
        series = running.scrape()
        assert error_reasons(series) == ["not_found"]
        assert value(series, P + "up", **JOB) == 1
        attempts.append(len(fake.pages_requests(WS, "job-abc")))
    assert attempts == [1, 1, 2, 2, 3, 3, 4, 4, 5]
    fake.faults.clear()
    clock.now += 30
    series = running.scrape()
    assert error_reasons(series) == []
    assert value(series, P + "job_pages_listed", **JOB) == 43


def test_a_hanging_pages_list_ends_at_the_deadline(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.fail(fake.pages_path(WS, "job-abc"), Fault(hang=True))
    running = start_exporter(page_config(fake))
    series = running.scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert value(series, P + "up", **JOB) == 1
    assert error_reasons(series) == ["deadline"]


def test_a_429_on_pages_backs_off_the_workspace(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished(), "job-def": finished("job-def")})
    fake.fail(
        fake.pages_path(WS, "job-abc"),
        Fault(429, {"message": "slow down", "code": "TOO_MANY_REQUESTS"}, {"Retry-After": "3600"}),
    )
    running = start_exporter(page_config(fake, jobs="[job-abc]"))
    series = running.scrape()
    assert error_reasons(series) == ["rate_limited"]
    assert value(series, P + "up", **JOB) == 1
    until = value(series, P + "backoff_until_timestamp_seconds", workspace_id=WS)
    assert until is not None and until > 0
    # In backoff nothing is asked of the workspace: no pages request, the job served from memory.
    before = len(fake.paths())
    series = running.scrape()
    assert error_reasons(series) == ["rate_limited"]
    assert len(fake.paths()) == before


def test_the_token_never_shows_in_page_stats_logs_or_metrics(fake, start_exporter, captured_logs):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.fail(fake.pages_path(WS, "job-abc"), Fault(500, f"echo {TOKEN}"))
    running = start_exporter(page_config(fake))
    body = running.get().text
    assert "page_stats_error_info" in body
    assert TOKEN not in body
    assert captured_logs and not [line for line in captured_logs if TOKEN in line]
    sent = [headers for target, headers in fake.log if "/pages" in target]
    assert sent and all(h["authorization"] == f"Bearer {TOKEN}" for h in sent)


# -- the demo -------------------------------------------------------------------------------


def test_the_demo_lists_pages_that_agree_with_its_jobs(start_exporter):
    """Each demo job lists its scraped and failed pages; the help center's are mostly empty,
    and the active docs job's list grows with time, read incrementally."""
    from exporter.demo.api import DEMO_TOKEN, DEMO_WORKSPACE, DemoApi, DemoServer, demo_config_yaml

    wall = [1_796_040_000.0]
    server = DemoServer(DemoApi(clock=lambda: wall[0]))
    server.start()
    try:
        config = parse_config(
            demo_config_yaml(server.base_url), "<demo>", {"CONVOCORE_DEMO_TOKEN": DEMO_TOKEN}
        )
        clock = Clock()
        running = start_exporter(config, clock=clock)
        series = running.scrape()
        listed = {}
        for job_id in ("job-docs", "job-blog", "job-help", "job-legacy", "job-pricing"):
            job = {"workspace_id": DEMO_WORKSPACE, "job_id": job_id}
            scraped = value(series, P + "job_scraped_pages", **job)
            failed_pages = value(series, P + "job_failed_pages", **job)
            assert scraped is not None and failed_pages is not None
            listed[job_id] = value(series, P + "job_pages_listed", **job)
            assert listed[job_id] == scraped + failed_pages, job_id
        assert listed == {
            "job-docs": 42,
            "job-blog": 10,
            "job-help": 123,
            "job-legacy": 42,
            "job-pricing": 5,
        }
        help_center = {"workspace_id": DEMO_WORKSPACE, "job_id": "job-help"}
        assert value(series, P + "job_empty_pages", **help_center) == 90
        careers = {"workspace_id": DEMO_WORKSPACE, "job_id": "job-careers"}
        assert value(series, P + "job_pages_listed", **careers) == 0
        wall[0] += 100  # 20 more docs pages (and a failed one)
        clock.now += 10  # the demo's page_stats_interval
        series = running.scrape()
        docs = {"workspace_id": DEMO_WORKSPACE, "job_id": "job-docs"}
        assert value(series, P + "job_pages_listed", **docs) == 63
        assert value(series, P + "job_last_page_scraped_timestamp_seconds", **docs) <= wall[0]
    finally:
        server.shutdown()
        server.server_close()


def test_probe_debug_shows_the_pages_requests_and_why_none_were_made(fake, start_exporter):
    fake.set_jobs(WS, {"job-abc": finished()})
    fake.set_pages(WS, "job-abc", summaries(150))
    running = start_exporter(page_config(fake))
    probe = f"/probe?workspace_id={WS}&job_id=job-abc&debug=true"
    first = running.get(probe).text
    pages_url = f"{fake.base_url}/workspaces/{WS}/crawler/jobs/job-abc/pages"
    for page in (1, 2):
        assert re.search(
            rf"^  \d\. GET {re.escape(pages_url)}\?page={page}&limit=100 -> 200 in [\d.]+s: ok$",
            first,
            re.M,
        ), first
    second = running.get(probe).text
    assert "  - page stats: from memory: the job is finished and its pages were read\n" in second
    assert "/pages?" not in second
    assert 'convocore_crawler_job_pages_listed{workspace_id="ws-123",job_id="job-abc"} 150' in (
        second
    )
    assert TOKEN not in first + second
